//! The resourcequota controller against an in-process cluster: `status.hard` follows the
//! spec, `status.used` counts what exists and is replenished on deletion and when pods finish.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Cluster, eventually};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ResourceQuota};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

async fn create<K>(api: &Api<K>, value: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &serde_json::from_value(value).unwrap())
        .await
        .unwrap()
}

async fn wait_used(quotas: &Api<ResourceQuota>, what: &str, expected: &Value) {
    eventually(what, 20, || async {
        let quota = quotas.get("q").await.unwrap();
        let status = serde_json::to_value(quota.status?).unwrap();
        (status["used"] == *expected).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_follows_creates_deletes_and_finished_pods() {
    let cluster = Cluster::start(&["resourcequota-controller"]).await;
    let client = cluster.client.clone();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "default");
    create(&cms, json!({"metadata": {"name": "before"}})).await;
    create(
        &quotas,
        json!({"metadata": {"name": "q"}, "spec": {"hard": {
            "pods": "3", "count/configmaps": "5", "requests.cpu": "2"
        }}}),
    )
    .await;
    // The ConfigMap that existed before, and kube-root-ca.crt is not there (no publisher).
    wait_used(
        &quotas,
        "initial usage",
        &json!({"pods": "0", "count/configmaps": "1", "requests.cpu": "0"}),
    )
    .await;
    let hard = quotas.get("q").await.unwrap().status.unwrap().hard.unwrap();
    assert_eq!(
        serde_json::to_value(hard).unwrap(),
        json!({"pods": "3", "count/configmaps": "5", "requests.cpu": "2"})
    );

    create(
        &pods,
        json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "250m"}}}
        ]}}),
    )
    .await;
    create(&cms, json!({"metadata": {"name": "after"}})).await;
    wait_used(
        &quotas,
        "usage after creates",
        &json!({"pods": "1", "count/configmaps": "2", "requests.cpu": "250m"}),
    )
    .await;

    // Deleted objects and finished pods are given back.
    cms.delete("before", &DeleteParams::default()).await.unwrap();
    pods.patch_status(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
    )
    .await
    .unwrap();
    wait_used(
        &quotas,
        "usage after delete and completion",
        &json!({"pods": "0", "count/configmaps": "1", "requests.cpu": "0"}),
    )
    .await;

    // A changed spec changes the status' hard limits and drops usage no longer limited.
    quotas
        .patch(
            "q",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"hard": {"pods": "3", "count/configmaps": "5", "requests.cpu": null}}}),
            ),
        )
        .await
        .unwrap();
    wait_used(
        &quotas,
        "usage after spec change",
        &json!({"pods": "0", "count/configmaps": "1"}),
    )
    .await;
    cluster.stop().await;
}
