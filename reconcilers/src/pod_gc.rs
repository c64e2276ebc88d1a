//! The pod garbage collector (upstream: pkg/controller/podgc): every 20 s, from reflector
//! stores of pods and nodes, it deletes terminated pods beyond the threshold (oldest first,
//! evicted first), terminating pods on not-ready nodes tainted out-of-service, pods bound to
//! nodes that have been gone for 40 s (confirmed by a live GET), and terminating pods never
//! scheduled. A pod not yet finished is first marked Failed (with a DisruptionTarget condition
//! for orphans) and then deleted with a zero grace period. An idle cluster gets no writes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, PodCondition};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::harness::{Context, ReconcileError, is_not_found};

/// The controller's name in `--controllers`.
pub const NAME: &str = "pod-garbage-collector-controller";
/// kube-controller-manager's `--terminated-pod-gc-threshold` default.
const TERMINATED_POD_THRESHOLD: usize = 12500;
/// How often the collector looks.
const CHECK_PERIOD: Duration = Duration::from_secs(20);
/// How long a node must be missing before its pods are orphans.
const QUARANTINE: Duration = Duration::from_secs(40);
const OUT_OF_SERVICE_TAINT: &str = "node.kubernetes.io/out-of-service";

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (nodes, node_writer) = reflector::store::<Node>();
    let pod_stream = reflector::reflector(
        pod_writer,
        watcher(
            Api::<Pod>::all(context.client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .for_each(|_| async {});
    let node_stream = reflector::reflector(
        node_writer,
        watcher(
            Api::<Node>::all(context.client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .for_each(|_| async {});
    let collector = async {
        if pods.wait_until_ready().await.is_err() || nodes.wait_until_ready().await.is_err() {
            return;
        }
        let mut missing_since: HashMap<String, Instant> = HashMap::new();
        loop {
            let span = tracing::info_span!("reconcile", controller = NAME);
            if let Err(err) = collect(&context, &pods, &nodes, &mut missing_since)
                .instrument(span)
                .await
            {
                tracing::debug!(controller = NAME, error = %err, "pod garbage collection failed");
            }
            tokio::time::sleep(CHECK_PERIOD).await;
        }
    };
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = pod_stream => {}
        () = node_stream => {}
        () = collector => {}
    }
}

fn is_terminated(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, None | Some("Pending" | "Running" | "Unknown"))
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default()
}

fn is_evicted(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Failed")
        && status.and_then(|s| s.reason.as_deref()) == Some("Evicted")
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// Evicted pods first, then oldest first, then by name.
fn by_eviction_and_age(a: &Arc<Pod>, b: &Arc<Pod>) -> std::cmp::Ordering {
    is_evicted(b)
        .cmp(&is_evicted(a))
        .then_with(|| a.metadata.creation_timestamp.cmp(&b.metadata.creation_timestamp))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

async fn collect(
    context: &Context,
    pods: &Store<Pod>,
    nodes: &Store<Node>,
    missing_since: &mut HashMap<String, Instant>,
) -> Result<(), ReconcileError> {
    let pods = pods.state();
    let nodes: HashMap<String, Arc<Node>> = nodes.state().into_iter().map(|n| (n.name_any(), n)).collect();
    let mut first_error = None;
    let mut note = |result: Result<(), ReconcileError>| {
        if let Err(err) = result {
            first_error.get_or_insert(err);
        }
    };

    let mut terminated: Vec<Arc<Pod>> = pods.iter().filter(|p| is_terminated(p)).cloned().collect();
    if terminated.len() > TERMINATED_POD_THRESHOLD {
        terminated.sort_by(by_eviction_and_age);
        let excess = terminated.len() - TERMINATED_POD_THRESHOLD;
        for pod in &terminated[..excess] {
            note(fail_and_delete(context, pod, None).await);
        }
    }

    let mut terminating: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some())
        .filter(|p| {
            nodes.get(node_name(p)).is_some_and(|node| {
                let tainted = node
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|t| t.iter().any(|t| t.key == OUT_OF_SERVICE_TAINT));
                !node_ready(node) && tainted
            })
        })
        .cloned()
        .collect();
    terminating.sort_by(by_eviction_and_age);
    for pod in &terminating {
        note(fail_and_delete(context, pod, None).await);
    }

    // Nodes missing from the store are quarantined, then confirmed gone with a live GET.
    let missing: HashSet<&str> = pods
        .iter()
        .map(|p| node_name(p))
        .filter(|n| !n.is_empty() && !nodes.contains_key(*n))
        .collect();
    missing_since.retain(|name, _| missing.contains(name.as_str()));
    let now = Instant::now();
    let mut deleted_nodes = HashSet::new();
    for name in missing {
        let since = *missing_since.entry(name.to_owned()).or_insert(now);
        if now.duration_since(since) < QUARANTINE {
            continue;
        }
        match Api::<Node>::all(context.client.clone()).get(name).await {
            Err(err) if is_not_found(&err) => {
                deleted_nodes.insert(name.to_owned());
            }
            Err(err) => note(Err(err.into())),
            Ok(_) => {}
        }
    }
    for pod in pods.iter().filter(|p| deleted_nodes.contains(node_name(p))) {
        let condition = PodCondition {
            type_: "DisruptionTarget".into(),
            status: "True".into(),
            reason: Some("DeletionByPodGC".into()),
            message: Some("PodGC: node no longer exists".into()),
            ..Default::default()
        };
        note(fail_and_delete(context, pod, Some(condition)).await);
    }

    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some() && node_name(p).is_empty())
    {
        note(fail_and_delete(context, pod, None).await);
    }
    first_error.map_or(Ok(()), Err)
}

/// Marks an unfinished pod Failed (with `condition`), then deletes it with no grace period.
async fn fail_and_delete(
    context: &Context,
    pod: &Pod,
    condition: Option<PodCondition>,
) -> Result<(), ReconcileError> {
    let name = pod.name_any();
    let namespace = pod.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(context.client.clone(), &namespace);
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if !matches!(phase, Some("Succeeded" | "Failed")) {
        let mut status = pod.status.clone().unwrap_or_default();
        status.phase = Some("Failed".into());
        if let Some(mut condition) = condition {
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
                Some(existing) if existing.status == condition.status => {
                    existing.reason = condition.reason;
                    existing.message = condition.message;
                }
                Some(existing) => {
                    condition.last_transition_time = Some(
                        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
                    );
                    *existing = condition;
                }
                None => {
                    condition.last_transition_time = Some(
                        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
                    );
                    conditions.push(condition);
                }
            }
        }
        let patch = serde_json::json!({
            "metadata": {"uid": pod.metadata.uid},
            "status": status,
        });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => return Ok(()),
            Err(err) => return Err(err.into()),
        }
    }
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {
            tracing::info!(pod = %format!("{namespace}/{name}"), "pod garbage collected");
            Ok(())
        }
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}
