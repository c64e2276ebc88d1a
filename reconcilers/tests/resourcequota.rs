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

/// A ConfigMap created while its namespace's new quota is first counted (admission does not
/// charge a quota before its `status.hard` exists) is counted all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_racing_a_new_quotas_first_count_are_counted() {
    let cluster = Cluster::start(&["resourcequota-controller"]).await;
    let client = cluster.client.clone();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let names: Vec<String> = (0..20).map(|i| format!("race-{i}")).collect();
    for name in &names {
        create(&namespaces, json!({"metadata": {"name": name}})).await;
    }
    futures_util::future::join_all(names.iter().map(|name| {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), name);
        let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), name);
        async move {
            let quota = json!({"metadata": {"name": "q"}, "spec": {"hard": {"count/configmaps": "5"}}});
            let quota = create(&quotas, quota);
            let cm = async {
                // Lands while the controller lists, or just after.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                create(&cms, json!({"metadata": {"name": "c"}})).await
            };
            tokio::join!(quota, cm);
        }
    }))
    .await;
    for name in &names {
        let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), name);
        wait_used(&quotas, name, &json!({"count/configmaps": "1"})).await;
    }
}
