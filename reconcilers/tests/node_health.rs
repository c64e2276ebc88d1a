//! Node health with simulated nodes: a healthy idle cluster makes no node writes; a node whose
//! kubelet stops goes Unknown after the grace period, gets the unreachable taints, its pods are
//! marked not ready, and those tolerating the taint only briefly are evicted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Cluster, eventually};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use rudder_noded::simulated::{Config, SimulatedNodes};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn condition<'a>(node: &'a Node, kind: &str) -> Option<&'a k8s_openapi::api::core::v1::NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

fn taint_keys(node: &Node) -> Vec<String> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect()
}

fn pod_on(name: &str, node: &str, tolerations: &serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "app", "image": "nginx"}],
            "tolerations": tolerations,
        },
    }))
    .unwrap()
}

async fn node_versions(api: &Api<Node>) -> BTreeMap<String, String> {
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| (n.name_any(), n.resource_version().unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_nodes_go_unknown_get_tainted_and_lose_their_pods() {
    let cluster = Cluster::start(&["nodelifecycle", "taint-eviction-controller"]).await;
    let stop = CancellationToken::new();
    let config = Config {
        count: 2,
        ..Config::default()
    };
    let sim = SimulatedNodes::start(cluster.client.clone(), config, stop.clone())
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    eventually("untainted nodes", 30, || async {
        let list = nodes.list(&ListParams::default()).await.unwrap().items;
        list.iter().all(|n| taint_keys(n).is_empty()).then_some(())
    })
    .await;

    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let brief = json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                        "effect": "NoExecute", "tolerationSeconds": 3}]);
    let forever =
        json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"}]);
    for (name, tolerations) in [("brief", brief), ("forever", forever)] {
        pods.create(
            &PostParams::default(),
            &pod_on(name, "sim-node-0001", &tolerations),
        )
        .await
        .unwrap();
    }
    eventually("pods running", 30, || async {
        let list = pods.list(&ListParams::default()).await.unwrap().items;
        let running = list
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        (running == 2).then_some(())
    })
    .await;

    // Healthy and idle: Lease renewals (every 10 s) wake the controller but nodes are not
    // written.
    let before = node_versions(&nodes).await;
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(node_versions(&nodes).await, before);

    assert!(sim.stop_node("sim-node-0001"));
    let stopped = std::time::Instant::now();
    let node = eventually("the node Unknown and tainted", 90, || async {
        let node = nodes.get("sim-node-0001").await.unwrap();
        let keys = taint_keys(&node);
        (condition(&node, "Ready")?.status == "Unknown"
            && keys.contains(&"node.kubernetes.io/unreachable:NoExecute".to_owned()))
        .then_some(node)
    })
    .await;
    // Not before the 50 s grace period (less the up to 10 s since the last renewal).
    assert!(
        stopped.elapsed() >= Duration::from_secs(38),
        "{:?}",
        stopped.elapsed()
    );
    let ready = condition(&node, "Ready").unwrap();
    assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(
        ready.message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );
    for kind in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        assert_eq!(condition(&node, kind).unwrap().status, "Unknown", "{kind}");
    }
    assert_eq!(condition(&node, "NetworkUnavailable").unwrap().status, "False");
    assert!(
        taint_keys(&node).contains(&"node.kubernetes.io/unreachable:NoSchedule".to_owned()),
        "{:?}",
        taint_keys(&node)
    );
    // The healthy node is left alone.
    let other = nodes.get("sim-node-0002").await.unwrap();
    assert_eq!(condition(&other, "Ready").unwrap().status, "True");
    assert!(taint_keys(&other).is_empty());

    // Its pods are not ready; the one tolerating the taint for 3 s is evicted after them.
    let forever = eventually("forever not ready", 20, || async {
        let pod = pods.get("forever").await.unwrap();
        let ready = pod
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Ready")?
            .clone();
        (ready.status == "False").then_some(pod)
    })
    .await;
    assert!(forever.metadata.deletion_timestamp.is_none());
    let tainted_at = std::time::Instant::now();
    let brief = eventually("brief evicted", 20, || async {
        let pod = pods.get("brief").await.ok()?;
        pod.metadata.deletion_timestamp.is_some().then_some(pod)
    })
    .await;
    assert!(tainted_at.elapsed() <= Duration::from_secs(5));
    let target = brief
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "DisruptionTarget"))
        .cloned()
        .unwrap();
    assert_eq!(target.reason.as_deref(), Some("DeletionByTaintManager"));
    assert_eq!(
        target.message.as_deref(),
        Some("Taint manager: deleting due to NoExecute taint")
    );
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), "default");
    let notes = eventually("eviction events", 10, || async {
        let list = events.list(&ListParams::default()).await.unwrap().items;
        let notes: Vec<String> = list
            .iter()
            .filter(|e| e.reason.as_deref() == Some("TaintManagerEviction"))
            .filter_map(|e| e.note.clone())
            .collect();
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert_eq!(notes, ["Marking for deletion Pod default/brief"]);
    assert!(
        pods.get("forever")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );

    stop.cancel();
    sim.join().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_get_pod_cidrs_and_simulated_pods_take_addresses_from_them() {
    let cluster = Cluster::start(&["node-ipam-controller"]).await;
    let stop = CancellationToken::new();
    let config = Config {
        count: 3,
        ..Config::default()
    };
    let sim = SimulatedNodes::start(cluster.client.clone(), config, stop.clone())
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let cidrs = eventually("pod CIDRs", 30, || async {
        let list = nodes.list(&ListParams::default()).await.unwrap().items;
        let cidrs: Vec<(String, String)> = list
            .iter()
            .filter_map(|n| {
                let spec = n.spec.as_ref()?;
                let cidr = spec.pod_cidr.clone()?;
                assert_eq!(spec.pod_cidrs.as_deref(), Some(std::slice::from_ref(&cidr)));
                Some((n.name_any(), cidr))
            })
            .collect();
        (cidrs.len() == 3).then_some(cidrs)
    })
    .await;
    let mut ranges: Vec<&str> = cidrs.iter().map(|(_, c)| c.as_str()).collect();
    ranges.sort_unstable();
    assert_eq!(ranges, ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]);

    // A pod on a node takes its address from the node's range.
    let (node, cidr) = cidrs.iter().find(|(n, _)| n == "sim-node-0003").unwrap().clone();
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    pods.create(&PostParams::default(), &pod_on("addressed", &node, &json!([])))
        .await
        .unwrap();
    let ip = eventually("a pod IP", 30, || async {
        pods.get("addressed").await.unwrap().status?.pod_ip
    })
    .await;
    let prefix = cidr.trim_end_matches("0/24");
    assert!(ip.starts_with(prefix), "{ip} not in {cidr}");

    // A deleted node's range is free; a new node gets the next one.
    nodes.delete("sim-node-0001", &Default::default()).await.unwrap();
    let extra: Node = serde_json::from_value(json!({"metadata": {"name": "extra"}})).unwrap();
    nodes.create(&PostParams::default(), &extra).await.unwrap();
    let assigned = eventually("the new node's CIDR", 30, || async {
        nodes.get("extra").await.unwrap().spec?.pod_cidr
    })
    .await;
    assert_eq!(assigned, "10.244.3.0/24");

    stop.cancel();
    sim.join().await;
    cluster.stop().await;
}
