//! The real node's registration against an in-process API server: the Node with the host's
//! capacity and healthy conditions, its Lease, and a second registration taking over the Node
//! an earlier run left.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::Server;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;
use rudder_noded::node::{HostFacts, NodeConfig, register};
use tokio_util::sync::CancellationToken;

fn config(dir: &std::path::Path) -> NodeConfig {
    NodeConfig {
        name: "real-node".to_owned(),
        data_dir: dir.to_owned(),
        node_ip: Some("10.9.8.7".parse().unwrap()),
        labels: BTreeMap::from([(
            "node-role.kubernetes.io/control-plane".to_owned(),
            "true".to_owned(),
        )]),
        taints: Vec::new(),
        kubelet_port: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_registers_with_the_hosts_capacity_and_holds_its_lease() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let registered = register(server.client.clone(), config(dir.path()), stop.clone())
        .await
        .unwrap();

    let nodes: Api<Node> = Api::all(server.client.clone());
    let node = nodes.get("real-node").await.unwrap();
    let facts = HostFacts::gather(dir.path(), None).unwrap();
    let status = node.status.clone().unwrap();
    let capacity = status.capacity.unwrap();
    assert_eq!(capacity["cpu"].0, facts.cpus.to_string());
    assert_eq!(capacity["memory"].0, format!("{}Ki", facts.memory_bytes / 1024));
    assert_eq!(capacity["pods"].0, "110");
    let ready = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("True", Some("KubeletReady"))
    );
    let addresses: Vec<String> = status
        .addresses
        .unwrap()
        .into_iter()
        .map(|a| format!("{}={}", a.type_, a.address))
        .collect();
    assert_eq!(addresses, ["InternalIP=10.9.8.7", "Hostname=real-node"]);
    let info = status.node_info.unwrap();
    assert_eq!(info.operating_system, "linux");
    assert!(
        info.container_runtime_version.starts_with("rudder://"),
        "{info:?}"
    );
    assert!(!info.kernel_version.is_empty());
    let labels = node.metadata.labels.clone().unwrap();
    assert_eq!(labels["node-role.kubernetes.io/control-plane"], "true");
    assert_eq!(labels["kubernetes.io/os"], "linux");

    let leases: Api<Lease> = Api::namespaced(server.client.clone(), "kube-node-lease");
    let lease = leases.get("real-node").await.unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("real-node"));
    assert_eq!(spec.lease_duration_seconds, Some(40));
    let owner = &lease.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Node", node.metadata.uid.as_deref().unwrap())
    );

    // A restart takes over the same Node and Lease.
    stop.cancel();
    registered.join().await;
    let stop = CancellationToken::new();
    let again = register(server.client.clone(), config(dir.path()), stop.clone())
        .await
        .unwrap();
    assert_eq!(again.node.metadata.uid, node.metadata.uid);
    let renewed = leases.get("real-node").await.unwrap();
    assert!(renewed.spec.unwrap().renew_time.unwrap().0 >= spec.renew_time.unwrap().0);
    stop.cancel();
    again.join().await;
    server.stop().await;
}
