//! The DaemonSet controller with the scheduler and simulated nodes: one pod per eligible node
//! (taints, tolerations, nodeSelector), pods pinned by node affinity with the default
//! tolerations, status, revisions, rolling updates, OnDelete and failed pods.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::{Cluster, eventually};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use rudder_noded::simulated::{Config, SimulatedNodes};
use serde_json::json;
use tokio_util::sync::CancellationToken;

struct Setup {
    cluster: Cluster,
    nodes: Vec<String>,
    _sim: SimulatedNodes,
    stop: CancellationToken,
}

async fn cluster(count: usize) -> Setup {
    let cluster = Cluster::start(&["daemonset", "scheduler", "nodelifecycle"]).await;
    let stop = CancellationToken::new();
    let config = Config {
        count,
        ..Config::default()
    };
    let sim = SimulatedNodes::start(cluster.client.clone(), config, stop.clone())
        .await
        .unwrap();
    let api: Api<Node> = Api::all(cluster.client.clone());
    // New nodes are tainted not-ready until the node lifecycle controller sees them Ready.
    eventually("untainted nodes", 30, || async {
        let nodes = api.list(&ListParams::default()).await.unwrap().items;
        let untainted = nodes
            .iter()
            .filter(|n| {
                n.spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_none_or(Vec::is_empty)
            })
            .count();
        (untainted == count).then_some(())
    })
    .await;
    let nodes = sim.names().to_vec();
    Setup {
        cluster,
        nodes,
        _sim: sim,
        stop,
    }
}

impl Setup {
    async fn stop(self) {
        self.stop.cancel();
        self.cluster.stop().await;
    }
}

fn daemon_set(name: &str, spec: &serde_json::Value) -> DaemonSet {
    let mut pod_spec = spec.get("pod").cloned().unwrap_or_else(|| json!({}));
    pod_spec["containers"] = json!([{"name": "agent", "image": "agent:1"}]);
    let mut ds = json!({
        "metadata": {"name": name},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec},
        }
    });
    if let Some(strategy) = spec.get("updateStrategy") {
        ds["spec"]["updateStrategy"] = strategy.clone();
    }
    serde_json::from_value(ds).unwrap()
}

/// The nodes of the DaemonSet's running (not deleting) pods, once they are exactly `expected`
/// and all Running.
async fn pods_on(client: &kube::Client, app: &str, expected: &[&str]) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    eventually(&format!("{app} pods on {expected:?}"), 60, || async {
        let pods = api
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .unwrap()
            .items;
        let live: Vec<Pod> = pods
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let nodes: Vec<String> = live
            .iter()
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect();
        let running = live
            .iter()
            .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
        let distinct: BTreeSet<String> = nodes.iter().cloned().collect();
        (running && nodes.len() == live.len() && nodes.len() == distinct.len() && distinct == expected)
            .then_some(live)
    })
    .await
}

/// Waits for the status counts (desired, current, misscheduled, ready, updated, available).
async fn status_is(client: &kube::Client, name: &str, counts: [i32; 6]) -> DaemonSet {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    eventually(&format!("{name} status {counts:?}"), 60, || async {
        let ds = api.get(name).await.unwrap();
        let s = ds.status.clone()?;
        let got = [
            s.desired_number_scheduled,
            s.current_number_scheduled,
            s.number_misscheduled,
            s.number_ready,
            s.updated_number_scheduled.unwrap_or(0),
            s.number_available.unwrap_or(0),
        ];
        (got == counts && s.observed_generation == ds.metadata.generation).then_some(ds)
    })
    .await
}

async fn taint(client: &kube::Client, node: &str, taints: serde_json::Value) {
    let api: Api<Node> = Api::all(client.clone());
    api.patch(
        node,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"taints": taints}})),
    )
    .await
    .unwrap();
}

async fn label(client: &kube::Client, node: &str, value: Option<&str>) {
    let api: Api<Node> = Api::all(client.clone());
    let patch = json!({"metadata": {"labels": {"disk": value}}});
    api.patch(node, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

async fn event_notes(client: &kube::Client, reason: &str) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.note)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pod_per_node_pinned_by_affinity_and_taints_respected() {
    let setup = cluster(3).await;
    let client = setup.cluster.client.clone();
    let nodes: Vec<&str> = setup.nodes.iter().map(String::as_str).collect();
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &daemon_set("agent", &json!({})))
        .await
        .unwrap();
    let pods = pods_on(&client, "agent", &nodes).await;
    let ds = status_is(&client, "agent", [3, 3, 0, 3, 3, 3]).await;
    assert_eq!(ds.status.as_ref().unwrap().number_unavailable, None);

    // Pods are left to the scheduler, pinned by a required node affinity, with the
    // controller's default tolerations and the revision labels.
    let revisions: Api<ControllerRevision> = Api::namespaced(client.clone(), "default");
    let history = revisions
        .list(&ListParams::default().labels("app=agent"))
        .await
        .unwrap()
        .items;
    assert_eq!(history.len(), 1);
    let hash = history[0].labels()["controller-revision-hash"].clone();
    assert_eq!(history[0].name_any(), format!("agent-{hash}"));
    assert_eq!(history[0].revision, 1);
    for pod in &pods {
        assert!(pod.name_any().starts_with("agent-"));
        assert_eq!(pod.labels()["controller-revision-hash"], hash);
        assert_eq!(pod.labels()["pod-template-generation"], "1");
        let spec = serde_json::to_value(pod.spec.as_ref().unwrap()).unwrap();
        let node = pod.spec.as_ref().unwrap().node_name.clone().unwrap();
        assert_eq!(
            spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
            json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]})
        );
        let keys: Vec<&str> = spec["tolerations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["key"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "node.kubernetes.io/not-ready",
                "node.kubernetes.io/unreachable",
                "node.kubernetes.io/disk-pressure",
                "node.kubernetes.io/memory-pressure",
                "node.kubernetes.io/pid-pressure",
                "node.kubernetes.io/unschedulable"
            ]
        );
        assert!(spec["tolerations"][0].get("tolerationSeconds").is_none());
    }
    let created = event_notes(&client, "SuccessfulCreate").await;
    assert_eq!(
        created
            .iter()
            .filter(|n| n.starts_with("Created pod: agent-"))
            .count(),
        3
    );

    // NoSchedule: the running pod stays (as upstream, the taint alone does not wake the
    // controller: nothing is to be done), but no new one comes once it is gone.
    taint(
        &client,
        nodes[0],
        json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    pods_on(&client, "agent", &nodes).await;
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let on_first = pods
        .iter()
        .find(|p| p.spec.as_ref().unwrap().node_name.as_deref() == Some(nodes[0]))
        .unwrap();
    pod_api
        .delete(&on_first.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    pods_on(&client, "agent", &nodes[1..]).await;
    status_is(&client, "agent", [2, 2, 0, 2, 2, 2]).await;

    // NoExecute: the controller deletes its pod from the node.
    taint(
        &client,
        nodes[1],
        json!([{"key": "dedicated", "value": "db", "effect": "NoExecute"}]),
    )
    .await;
    pods_on(&client, "agent", &nodes[2..]).await;
    status_is(&client, "agent", [1, 1, 0, 1, 1, 1]).await;
    let deleted = event_notes(&client, "SuccessfulDelete").await;
    assert!(
        deleted.iter().any(|n| n.starts_with("Deleted pod: agent-")),
        "{deleted:?}"
    );

    // A DaemonSet tolerating the taints runs everywhere.
    let tolerant = daemon_set(
        "tolerant",
        &json!({"pod": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]}}),
    );
    api.create(&PostParams::default(), &tolerant).await.unwrap();
    pods_on(&client, "tolerant", &nodes).await;

    // Taints gone: the pods come back.
    taint(&client, nodes[0], json!(null)).await;
    taint(&client, nodes[1], json!(null)).await;
    pods_on(&client, "agent", &nodes).await;
    status_is(&client, "agent", [3, 3, 0, 3, 3, 3]).await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_selector_limits_nodes_and_failed_pods_are_replaced() {
    let setup = cluster(3).await;
    let client = setup.cluster.client.clone();
    let nodes: Vec<&str> = setup.nodes.iter().map(String::as_str).collect();
    label(&client, nodes[0], Some("ssd")).await;
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let ds = daemon_set("ssd", &json!({"pod": {"nodeSelector": {"disk": "ssd"}}}));
    api.create(&PostParams::default(), &ds).await.unwrap();
    pods_on(&client, "ssd", &nodes[..1]).await;
    status_is(&client, "ssd", [1, 1, 0, 1, 1, 1]).await;
    label(&client, nodes[1], Some("ssd")).await;
    pods_on(&client, "ssd", &nodes[..2]).await;
    // A node that no longer matches loses its pod.
    label(&client, nodes[0], None).await;
    let pods = pods_on(&client, "ssd", &nodes[1..2]).await;
    status_is(&client, "ssd", [1, 1, 0, 1, 1, 1]).await;

    // A failed daemon pod is killed and replaced, with upstream's event.
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let failed = pods[0].name_any();
    pod_api
        .patch_status(
            &failed,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Failed"}})),
        )
        .await
        .unwrap();
    let replaced = eventually("the failed pod replaced", 60, || async {
        let pods = pods_on(&client, "ssd", &nodes[1..2]).await;
        (pods[0].name_any() != failed).then_some(pods)
    })
    .await;
    assert_eq!(replaced.len(), 1);
    let notes = event_notes(&client, "FailedDaemonPod").await;
    assert_eq!(
        notes,
        [format!(
            "Found failed daemon pod default/{failed} on node {}, will try to kill it",
            nodes[1]
        )]
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_on_delete_and_history() {
    let setup = cluster(3).await;
    let client = setup.cluster.client.clone();
    let nodes: Vec<&str> = setup.nodes.iter().map(String::as_str).collect();
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    let ds = daemon_set(
        "roll",
        &json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}},
               "pod": {}}),
    );
    api.create(&PostParams::default(), &ds).await.unwrap();
    pods_on(&client, "roll", &nodes).await;
    status_is(&client, "roll", [3, 3, 0, 3, 3, 3]).await;

    let set_image = |image: &'static str| {
        let api = api.clone();
        async move {
            let patch =
                json!({"spec": {"template": {"spec": {"containers": [{"name": "agent", "image": image}]}}}});
            api.patch("roll", &PatchParams::default(), &Patch::Strategic(patch))
                .await
                .unwrap();
        }
    };
    let revisions: Api<ControllerRevision> = Api::namespaced(client.clone(), "default");
    let images = |pods: &[Pod]| -> BTreeSet<String> {
        pods.iter()
            .map(|p| p.spec.as_ref().unwrap().containers[0].image.clone().unwrap())
            .collect()
    };

    set_image("agent:2").await;
    let ds = status_is(&client, "roll", [3, 3, 0, 3, 3, 3]).await;
    let pods = pods_on(&client, "roll", &nodes).await;
    assert_eq!(images(&pods), BTreeSet::from(["agent:2".to_owned()]));
    assert_eq!(ds.status.unwrap().observed_generation, Some(2));
    for pod in &pods {
        assert_eq!(pod.labels()["pod-template-generation"], "2");
    }
    let mut history = revisions
        .list(&ListParams::default().labels("app=roll"))
        .await
        .unwrap()
        .items;
    history.sort_by_key(|r| r.revision);
    assert_eq!(history.iter().map(|r| r.revision).collect::<Vec<_>>(), [1, 2]);
    let data = &history[1].data.as_ref().unwrap().0;
    assert_eq!(data["spec"]["template"]["$patch"], "replace");
    assert_eq!(
        data["spec"]["template"]["spec"]["containers"][0]["image"],
        "agent:2"
    );
    assert_eq!(
        pods[0].labels()["controller-revision-hash"],
        history[1].labels()["controller-revision-hash"]
    );

    // Surge: new pods start beside the old ones.
    let strategy =
        json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}}});
    api.patch("roll", &PatchParams::default(), &Patch::Merge(strategy))
        .await
        .unwrap();
    set_image("agent:3").await;
    status_is(&client, "roll", [3, 3, 0, 3, 3, 3]).await;
    let pods = pods_on(&client, "roll", &nodes).await;
    assert_eq!(images(&pods), BTreeSet::from(["agent:3".to_owned()]));

    // Back to the first template: its revision is reused with a new number.
    set_image("agent:1").await;
    status_is(&client, "roll", [3, 3, 0, 3, 3, 3]).await;
    let mut history = revisions
        .list(&ListParams::default().labels("app=roll"))
        .await
        .unwrap()
        .items;
    history.sort_by_key(|r| r.revision);
    assert_eq!(history.iter().map(|r| r.revision).collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(
        history[2].name_any(),
        format!("roll-{}", history[2].labels()["controller-revision-hash"])
    );

    // OnDelete: a new template waits for pods to be deleted.
    let on_delete = json!({"spec": {"updateStrategy": {"type": "OnDelete", "rollingUpdate": null}}});
    api.patch("roll", &PatchParams::default(), &Patch::Merge(on_delete))
        .await
        .unwrap();
    set_image("agent:4").await;
    status_is(&client, "roll", [3, 3, 0, 3, 0, 3]).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let pods = pods_on(&client, "roll", &nodes).await;
    assert_eq!(images(&pods), BTreeSet::from(["agent:1".to_owned()]));
    let pod_api: Api<Pod> = Api::namespaced(client.clone(), "default");
    pod_api
        .delete(&pods[0].name_any(), &DeleteParams::default())
        .await
        .unwrap();
    status_is(&client, "roll", [3, 3, 0, 3, 1, 3]).await;
    let pods = pods_on(&client, "roll", &nodes).await;
    assert_eq!(
        images(&pods),
        BTreeSet::from(["agent:1".to_owned(), "agent:4".to_owned()])
    );
    setup.stop().await;
}
