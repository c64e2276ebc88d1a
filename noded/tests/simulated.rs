//! Simulated nodes against an in-process API server: registration, Leases, running pods,
//! run-to-completion pods, deletion, and a node made to look dead.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Server, eventually};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use rudder_noded::simulated::{Config, SimulatedNodes};
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn start(server: &Server, count: usize) -> (SimulatedNodes, CancellationToken) {
    let stop = CancellationToken::new();
    let config = Config {
        count,
        ..Config::default()
    };
    let nodes = SimulatedNodes::start(server.client.clone(), config, stop.clone())
        .await
        .unwrap();
    (nodes, stop)
}

fn condition<'a>(node: &'a Node, kind: &str) -> &'a k8s_openapi::api::core::v1::NodeCondition {
    let conditions = node.status.as_ref().unwrap().conditions.as_ref().unwrap();
    conditions.iter().find(|c| c.type_ == kind).unwrap()
}

fn renewed(lease: &Lease) -> jiff::Timestamp {
    lease.spec.as_ref().unwrap().renew_time.as_ref().unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_ready_and_renew_their_leases_until_stopped() {
    let server = Server::start().await;
    let (sim, stop) = start(&server, 3).await;
    assert_eq!(sim.names(), ["sim-node-0001", "sim-node-0002", "sim-node-0003"]);
    let nodes: Api<Node> = Api::all(server.client.clone());
    let node = nodes.get("sim-node-0002").await.unwrap();
    let ready = condition(&node, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("True", Some("KubeletReady"))
    );
    assert_eq!(
        condition(&node, "MemoryPressure").reason.as_deref(),
        Some("KubeletHasSufficientMemory")
    );
    assert_eq!(condition(&node, "DiskPressure").status, "False");
    assert_eq!(
        condition(&node, "PIDPressure").reason.as_deref(),
        Some("KubeletHasSufficientPID")
    );
    assert_eq!(condition(&node, "NetworkUnavailable").status, "False");
    let labels = node.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["kubernetes.io/hostname"], "sim-node-0002");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    let status = node.status.as_ref().unwrap();
    let allocatable = status.allocatable.as_ref().unwrap();
    assert_eq!(allocatable["cpu"].0, "32");
    assert_eq!(allocatable["pods"].0, "110");
    let addresses = status.addresses.as_ref().unwrap();
    assert_eq!(
        (addresses[0].type_.as_str(), addresses[0].address.as_str()),
        ("InternalIP", "198.18.0.2")
    );
    assert_eq!(status.node_info.as_ref().unwrap().operating_system, "linux");

    let leases: Api<Lease> = Api::namespaced(server.client.clone(), "kube-node-lease");
    let first = leases.get("sim-node-0001").await.unwrap();
    let spec = first.spec.as_ref().unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("sim-node-0001"));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    let owner = &first.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", "sim-node-0001")
    );
    let before = renewed(&first);
    eventually("a lease renewal", 15, || async {
        (renewed(&leases.get("sim-node-0001").await.unwrap()) > before).then_some(())
    })
    .await;

    // A stopped node no longer renews; the others go on.
    assert!(sim.stop_node("sim-node-0003"));
    assert!(!sim.stop_node("no-such-node"));
    // The round that renewed sim-node-0001 may still be writing sim-node-0003's Lease (the
    // renewals of a round land in any order): let it finish before reading the last renewal.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let dead = renewed(&leases.get("sim-node-0003").await.unwrap());
    let alive = renewed(&leases.get("sim-node-0001").await.unwrap());
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(renewed(&leases.get("sim-node-0003").await.unwrap()), dead);
    assert!(renewed(&leases.get("sim-node-0001").await.unwrap()) > alive);
    stop.cancel();
    sim.join().await;
    server.stop().await;
}

fn pod(name: &str, node: &str, restart: &str, annotations: &serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "nodeName": node,
            "restartPolicy": restart,
            "initContainers": [{"name": "setup", "image": "busybox"}],
            "containers": [{"name": "app", "image": "nginx:1.27"}],
        },
    }))
    .unwrap()
}

async fn phase_of(api: &Api<Pod>, name: &str, phase: &str) -> Pod {
    eventually(&format!("{name} {phase}"), 20, || async {
        let pod = api.get(name).await.unwrap();
        (pod.status.as_ref()?.phase.as_deref() == Some(phase)).then_some(pod)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_pods_run_finish_and_are_finalized() {
    let server = Server::start().await;
    let (sim, stop) = start(&server, 2).await;
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    let params = PostParams::default();
    pods.create(&params, &pod("web", "sim-node-0002", "Always", &json!({})))
        .await
        .unwrap();
    pods.create(&params, &pod("ok", "sim-node-0001", "Never", &json!({})))
        .await
        .unwrap();
    let failing = json!({"sim.rudder.dev/exit-code": "3", "sim.rudder.dev/duration": "300ms"});
    pods.create(&params, &pod("bad", "sim-node-0001", "Never", &failing))
        .await
        .unwrap();
    // A pod on a node that is not simulated is left alone.
    pods.create(&params, &pod("elsewhere", "real-node", "Always", &json!({})))
        .await
        .unwrap();

    let web = phase_of(&pods, "web", "Running").await;
    let status = web.status.as_ref().unwrap();
    let ip: std::net::Ipv4Addr = status.pod_ip.as_deref().unwrap().parse().unwrap();
    // No node IPAM here: the node's own fallback /24, outside the cluster CIDR.
    assert_eq!(ip.octets()[..3], [100, 64, 1], "the second node's /24: {ip}");
    assert_eq!(status.host_ip.as_deref(), Some("198.18.0.2"));
    let conditions = status.conditions.as_ref().unwrap();
    let kinds: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled"
        ]
    );
    assert!(conditions.iter().all(|c| c.status == "True"));
    let container = &status.container_statuses.as_ref().unwrap()[0];
    assert!(container.ready && container.started == Some(true));
    assert!(
        container
            .container_id
            .as_deref()
            .unwrap()
            .starts_with("containerd://")
    );
    assert!(container.image_id.starts_with("docker.io/library/nginx@sha256:"));
    assert_eq!(container.image, "docker.io/library/nginx:1.27");
    assert!(
        container
            .state
            .as_ref()
            .unwrap()
            .running
            .as_ref()
            .unwrap()
            .started_at
            .is_some()
    );
    let init = &status.init_container_statuses.as_ref().unwrap()[0];
    assert_eq!(
        init.state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("Completed")
    );

    let ok = phase_of(&pods, "ok", "Succeeded").await;
    let ready = ok
        .status
        .as_ref()
        .unwrap()
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("False", Some("PodCompleted"))
    );
    let bad = phase_of(&pods, "bad", "Failed").await;
    let terminated = bad.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .terminated
        .clone()
        .unwrap();
    assert_eq!(
        (terminated.exit_code, terminated.reason.as_deref()),
        (3, Some("Error"))
    );

    // Deleting a running pod: the node terminates it and removes it for good.
    pods.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("web deleted", 20, || async {
        pods.get_opt("web").await.unwrap().is_none().then_some(())
    })
    .await;
    let elsewhere = pods.get("elsewhere").await.unwrap();
    assert_eq!(elsewhere.status.unwrap().phase.as_deref(), Some("Pending"));
    stop.cancel();
    sim.join().await;
    server.stop().await;
}

/// With `wait_for_pod_cidr` (as in `rudder server`, which runs node IPAM), a pod bound to a node
/// without `spec.podCIDR` waits, and runs with an address from the range once it is set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_wait_for_the_nodes_pod_cidr_when_asked_to() {
    let server = Server::start().await;
    let stop = CancellationToken::new();
    let config = Config {
        count: 1,
        wait_for_pod_cidr: true,
        ..Config::default()
    };
    let sim = SimulatedNodes::start(server.client.clone(), config, stop.clone())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    pods.create(
        &PostParams::default(),
        &pod("early", "sim-node-0001", "Always", &json!({})),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status = pods.get("early").await.unwrap().status.unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Pending"), "{status:?}");
    assert_eq!(status.pod_ip, None);

    let nodes: Api<Node> = Api::all(server.client.clone());
    let cidr = json!({"spec": {"podCIDR": "10.244.7.0/24", "podCIDRs": ["10.244.7.0/24"]}});
    nodes
        .patch(
            "sim-node-0001",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&cidr),
        )
        .await
        .unwrap();
    let running = phase_of(&pods, "early", "Running").await;
    let ip = running.status.unwrap().pod_ip.unwrap();
    assert!(ip.starts_with("10.244.7."), "{ip}");
    stop.cancel();
    sim.join().await;
    server.stop().await;
}
