//! The `ResourceQuota` admission plugin against the API server in-process: refusals with
//! upstream's messages, `status.used` charged on admission, scopes, dry runs. Quota status is
//! set through the status subresource, as the resourcequota controller would.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestServer;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ResourceQuota};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

async fn quota(server: &TestServer, name: &str, spec: Value, used: Value) -> Api<ResourceQuota> {
    let mut status = json!({"hard": spec["hard"].clone()});
    status["used"] = used;
    let status = json!({ "status": status });
    let quotas: Api<ResourceQuota> = Api::namespaced(server.client.clone(), "default");
    let mut object = json!({"metadata": {"name": name}});
    object["spec"] = spec;
    let quota: ResourceQuota = serde_json::from_value(object).unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    quotas
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
    quotas
}

fn pod(name: &str, extra: Value) -> Pod {
    let mut spec = json!({"containers": [{"name": "c", "image": "nginx"}]});
    if let Value::Object(extra) = extra {
        spec.as_object_mut().unwrap().extend(extra);
    }
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn used(quota: &ResourceQuota) -> Value {
    serde_json::to_value(quota.status.as_ref().unwrap().used.as_ref().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_charges_used_and_refuses_beyond_hard() {
    let server = TestServer::start().await;
    let quotas = quota(
        &server,
        "q",
        json!({"hard": {"pods": "1", "count/configmaps": "2"}}),
        json!({"pods": "0", "count/configmaps": "0"}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("a", json!({})))
        .await
        .unwrap();
    assert_eq!(
        used(&quotas.get("q").await.unwrap()),
        json!({"pods": "1", "count/configmaps": "0"})
    );

    let err = api_error(pods.create(&PostParams::default(), &pod("b", json!({}))).await);
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        err.message,
        "pods \"b\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"
    );

    // A dry run is checked but charges nothing.
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    let cm =
        |name: &str| -> ConfigMap { serde_json::from_value(json!({"metadata": {"name": name}})).unwrap() };
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    cms.create(&dry, &cm("dry")).await.unwrap();
    assert_eq!(used(&quotas.get("q").await.unwrap())["count/configmaps"], "0");
    cms.create(&PostParams::default(), &cm("one")).await.unwrap();
    cms.create(&PostParams::default(), &cm("two")).await.unwrap();
    let err = api_error(cms.create(&PostParams::default(), &cm("three")).await);
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "configmaps \"three\" is forbidden: exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=2, limited: count/configmaps=2"
    );
    assert_eq!(used(&quotas.get("q").await.unwrap())["count/configmaps"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compute_quota_requires_limits_and_counts_requests() {
    let server = TestServer::start().await;
    let quotas = quota(
        &server,
        "compute",
        json!({"hard": {"limits.cpu": "1", "requests.memory": "1Gi"}}),
        json!({"limits.cpu": "0", "requests.memory": "0"}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    let err = api_error(pods.create(&PostParams::default(), &pod("bare", json!({}))).await);
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "pods \"bare\" is forbidden: failed quota: compute: must specify limits.cpu for: c; requests.memory for: c"
    );
    let sized = |name: &str, cpu: &str| {
        pod(
            name,
            json!({"containers": [{"name": "c", "image": "nginx", "resources": {
                "limits": {"cpu": cpu, "memory": "512Mi"}
            }}]}),
        )
    };
    pods.create(&PostParams::default(), &sized("small", "600m"))
        .await
        .unwrap();
    assert_eq!(
        used(&quotas.get("compute").await.unwrap()),
        json!({"limits.cpu": "600m", "requests.memory": "512Mi"})
    );
    let err = api_error(pods.create(&PostParams::default(), &sized("big", "500m")).await);
    assert_eq!(
        err.message,
        "pods \"big\" is forbidden: exceeded quota: compute, requested: limits.cpu=500m, used: limits.cpu=600m, limited: limits.cpu=1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_quota_counts_only_matching_pods() {
    let server = TestServer::start().await;
    let quotas = quota(
        &server,
        "terminating",
        json!({"hard": {"pods": "1"}, "scopes": ["Terminating"]}),
        json!({"pods": "0"}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    // Not terminating: not counted, however many.
    for name in ["long-a", "long-b"] {
        pods.create(&PostParams::default(), &pod(name, json!({})))
            .await
            .unwrap();
    }
    assert_eq!(
        used(&quotas.get("terminating").await.unwrap()),
        json!({"pods": "0"})
    );
    let deadline = json!({"activeDeadlineSeconds": 60});
    pods.create(&PostParams::default(), &pod("short-a", deadline.clone()))
        .await
        .unwrap();
    assert_eq!(
        used(&quotas.get("terminating").await.unwrap()),
        json!({"pods": "1"})
    );
    let err = api_error(
        pods.create(&PostParams::default(), &pod("short-b", deadline))
            .await,
    );
    assert_eq!(
        err.message,
        "pods \"short-b\" is forbidden: exceeded quota: terminating, requested: pods=1, used: pods=1, limited: pods=1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_without_usage_refuses_until_counted() {
    let server = TestServer::start().await;
    let quotas: Api<ResourceQuota> = Api::namespaced(server.client.clone(), "default");
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "fresh"}, "spec": {"hard": {"pods": "5"}}
    }))
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    // Until the status has hard limits, the quota constrains nothing (upstream matches on
    // `status.hard`).
    pods.create(&PostParams::default(), &pod("early", json!({})))
        .await
        .unwrap();
    let hard_only = json!({"status": {"hard": {"pods": "5"}}});
    quotas
        .patch_status("fresh", &PatchParams::default(), &Patch::Merge(hard_only))
        .await
        .unwrap();
    let err = api_error(pods.create(&PostParams::default(), &pod("a", json!({}))).await);
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "pods \"a\" is forbidden: status unknown for quota: fresh, resources: pods"
    );
}
