//! A stand-in for the kubelet in tests while there are no nodes: marks pods Running and Ready
//! (phase, Ready condition, pod IP) through `pods/status`, as a kubelet would report them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};

/// Whether the pod reports Ready=True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Reports `pod` as running and ready now.
pub async fn mark_ready(api: &Api<Pod>, pod: &str) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let ip = format!(
        "10.244.0.{}",
        1 + (pod.len() * 7 + pod.bytes().map(usize::from).sum::<usize>()) % 250
    );
    let patch = serde_json::json!({"status": {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "True", "lastTransitionTime": now},
            {"type": "Ready", "status": "True", "lastTransitionTime": now},
        ],
    }});
    match api
        .patch_status(pod, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(err) => panic!("marking {pod} ready: {err}"),
    }
}

/// Marks every pod of the namespace matching `selector` (a label selector string) ready.
pub async fn mark_all_ready(api: &Api<Pod>, selector: &str) -> usize {
    let pods = api.list(&ListParams::default().labels(selector)).await.unwrap();
    let mut marked = 0;
    for pod in pods
        .items
        .iter()
        .filter(|p| !is_ready(p) && p.metadata.deletion_timestamp.is_none())
    {
        mark_ready(api, &pod.name_any()).await;
        marked += 1;
    }
    marked
}

/// A background kubelet for one namespace: every new pod becomes ready shortly after it is
/// created, while `enabled`.
pub struct Kubelet {
    pub enabled: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Kubelet {
    pub fn start(client: kube::Client, namespace: &str) -> Kubelet {
        let api: Api<Pod> = Api::namespaced(client, namespace);
        let enabled = Arc::new(AtomicBool::new(true));
        let on = enabled.clone();
        let task = tokio::spawn(async move {
            loop {
                if on.load(Ordering::Relaxed) {
                    mark_all_ready(&api, "").await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Kubelet { enabled, task }
    }

    pub fn set(&self, enabled: bool) {
        self.enabled.store(enabled, Ordering::Relaxed);
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}
