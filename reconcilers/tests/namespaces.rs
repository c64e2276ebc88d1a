//! Per-namespace controllers: the default ServiceAccount and the root CA ConfigMap.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Cluster, eventually};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_namespace_gets_a_default_service_account_and_the_root_ca() {
    let cluster = Cluster::start(&["serviceaccount", "root-ca-certificate-publisher-controller"]).await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "team"}})).unwrap(),
        )
        .await
        .unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), "team");
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "team");
    eventually("the default service account", 20, || async {
        accounts.get_opt("default").await.unwrap()
    })
    .await;
    let ca = eventually("the root CA", 20, || async {
        configmaps.get_opt("kube-root-ca.crt").await.unwrap()
    })
    .await;
    assert!(ca.data.unwrap()["ca.crt"].starts_with("-----BEGIN CERTIFICATE-----"));

    // Deleted or changed, they come back as they were.
    accounts
        .delete("default", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the recreated service account", 20, || async {
        accounts.get_opt("default").await.unwrap()
    })
    .await;
    configmaps
        .patch(
            "kube-root-ca.crt",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"ca.crt": "tampered"}})),
        )
        .await
        .unwrap();
    eventually("the restored CA", 20, || async {
        let cm = configmaps.get("kube-root-ca.crt").await.unwrap();
        cm.data.unwrap()["ca.crt"].starts_with("-----BEGIN").then_some(())
    })
    .await;
    for system in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let api: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), system);
        eventually("system namespace accounts", 20, || async {
            api.get_opt("default").await.unwrap()
        })
        .await;
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_election_takes_the_lease() {
    let cluster = Cluster::start(&[]).await;
    let client = cluster.client.clone();
    let stop = tokio_util::sync::CancellationToken::new();
    rudder_reconcilers::leader::acquire(&client, "test-lease", "first", &stop)
        .await
        .unwrap();
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), "kube-system");
    let lease = leases.get("test-lease").await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("first"));
    // A second candidate does not get it while the first renews.
    let second = tokio_util::sync::CancellationToken::new();
    let attempt = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        rudder_reconcilers::leader::acquire(&client, "test-lease", "second", &second),
    )
    .await;
    assert!(attempt.is_err(), "the second candidate must keep waiting");
    stop.cancel();
    second.cancel();
    cluster.stop().await;
}
