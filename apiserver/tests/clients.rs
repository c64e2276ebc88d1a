//! kube-rs clients against the server: typed CRUD of many kinds, a reflector that survives a
//! restart and a 410, discovery of every group, and a metadata-only watcher.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fmt::Debug;
use std::time::Duration;

use common::TestServer;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::{NamespaceResourceScope, serde::de::DeserializeOwned};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde_json::json;

/// Create, get, list, patch and delete one object of `K` in `namespace`.
async fn crud<K>(client: &kube::Client, namespace: &str, object: serde_json::Value)
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let kind = K::kind(&()).to_string();
    let typed: K = serde_json::from_value(object).unwrap();
    let name = typed.name_any();
    let created = api
        .create(&PostParams::default(), &typed)
        .await
        .unwrap_or_else(|e| panic!("creating {kind}: {e}"));
    assert!(created.meta().uid.is_some(), "{kind}");
    let got = api.get(&name).await.unwrap();
    assert_eq!(got.meta().uid, created.meta().uid, "{kind}");
    let listed = api.list(&ListParams::default()).await.unwrap();
    assert!(listed.items.iter().any(|i| i.name_any() == name), "{kind} list");
    let patched = api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await
        .unwrap_or_else(|e| panic!("patching {kind}: {e}"));
    assert_eq!(
        patched.labels().get("touched").map(String::as_str),
        Some("yes"),
        "{kind}"
    );
    // Background propagation: batch/v1 Jobs and v1 ReplicationControllers would otherwise
    // default to orphaning, which waits for the garbage collector.
    api.delete(&name, &DeleteParams::background().grace_period(0))
        .await
        .unwrap();
    assert!(api.get_opt(&name).await.unwrap().is_none(), "{kind} deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_of_many_kinds() {
    use k8s_openapi::api::{apps, batch, coordination, core, discovery, networking, policy, rbac};
    let server = TestServer::start().await;
    let c = &server.client;
    let pod_template = json!({
        "metadata": {"labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    });
    crud::<ConfigMap>(
        c,
        "default",
        json!({"metadata": {"name": "cm"}, "data": {"a": "b"}}),
    )
    .await;
    crud::<core::v1::Secret>(
        c,
        "default",
        json!({"metadata": {"name": "s"}, "stringData": {"a": "b"}}),
    )
    .await;
    crud::<core::v1::ServiceAccount>(c, "default", json!({"metadata": {"name": "sa"}})).await;
    crud::<core::v1::Service>(
        c,
        "default",
        json!({"metadata": {"name": "svc"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}}),
    )
    .await;
    crud::<core::v1::Pod>(
        c,
        "default",
        json!({"metadata": {"name": "pod"}, "spec": pod_template["spec"]}),
    )
    .await;
    crud::<apps::v1::Deployment>(c, "default", json!({"metadata": {"name": "deploy"}, "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": pod_template}})).await;
    crud::<apps::v1::StatefulSet>(c, "default", json!({"metadata": {"name": "sts"}, "spec": {"serviceName": "svc", "selector": {"matchLabels": {"app": "x"}}, "template": pod_template}})).await;
    crud::<apps::v1::DaemonSet>(c, "default", json!({"metadata": {"name": "ds"}, "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": pod_template}})).await;
    let mut job_template = pod_template.clone();
    job_template["spec"]["restartPolicy"] = json!("Never");
    crud::<batch::v1::Job>(
        c,
        "default",
        json!({"metadata": {"name": "job"}, "spec": {"template": job_template}}),
    )
    .await;
    crud::<batch::v1::CronJob>(c, "default", json!({"metadata": {"name": "cron"}, "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": job_template}}}})).await;
    crud::<rbac::v1::Role>(c, "default", json!({"metadata": {"name": "role"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})).await;
    crud::<rbac::v1::RoleBinding>(c, "default", json!({"metadata": {"name": "rb"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "role"}, "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "default"}]})).await;
    crud::<coordination::v1::Lease>(
        c,
        "default",
        json!({"metadata": {"name": "lease"}, "spec": {"holderIdentity": "me"}}),
    )
    .await;
    crud::<networking::v1::NetworkPolicy>(
        c,
        "default",
        json!({"metadata": {"name": "np"}, "spec": {"podSelector": {}}}),
    )
    .await;
    crud::<policy::v1::PodDisruptionBudget>(c, "default", json!({"metadata": {"name": "pdb"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "x"}}}})).await;
    crud::<discovery::v1::EndpointSlice>(c, "default", json!({"metadata": {"name": "eps"}, "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}]})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_every_group() {
    let server = TestServer::start().await;
    let discovery = kube::discovery::Discovery::new(server.client.clone())
        .run()
        .await
        .unwrap();
    let found: Vec<String> = discovery.groups().map(|g| g.name().to_owned()).collect();
    for group in rudder_machinery::resources::GROUPS {
        assert!(
            found.iter().any(|g| g == group.name),
            "{} missing from {found:?}",
            group.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_watcher_sees_changes() {
    let server = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    // An Api of PartialObjectMeta makes metadata-only lists and watches.
    let metadata: Api<kube::core::PartialObjectMeta<ConfigMap>> =
        Api::namespaced(server.client.clone(), "default");
    let mut events = watcher(metadata, watcher::Config::default())
        .applied_objects()
        .boxed();
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "meta"}, "data": {"big": "x"}})).unwrap(),
    )
    .await
    .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let object = events.try_next().await.unwrap().unwrap();
            if object.name_any() == "meta" {
                return object;
            }
        }
    })
    .await
    .unwrap();
    assert!(seen.metadata.uid.is_some());
}

/// Waits until `store` satisfies `check`.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_survives_restart_and_410() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::start_with(tempfile::tempdir().unwrap(), |c| c.secure_port = port).await;
    let client = server.client.clone();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let (reader, writer) = reflector::store();
    let stream = reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .default_backoff()
        .applied_objects();
    let driver = tokio::spawn(async move {
        let mut stream = stream.boxed();
        while stream.next().await.is_some() {}
    });
    let new =
        |name: &str| -> ConfigMap { serde_json::from_value(json!({"metadata": {"name": name}})).unwrap() };
    api.create(&PostParams::default(), &new("before")).await.unwrap();
    let names = |reader: &reflector::Store<ConfigMap>| -> Vec<String> {
        let mut names: Vec<String> = reader.state().iter().map(|c| c.name_any()).collect();
        names.sort();
        names
    };
    eventually("the first object", || {
        names(&reader).contains(&"before".to_owned())
    })
    .await;

    // Restart on the same port; change things while the reflector is disconnected and
    // compact the history past its resourceVersion, so its next watch gets 410 Gone.
    let dir = server.stop().await;
    let server = TestServer::start_with(dir, |c| c.secure_port = port).await;
    let offline: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    offline.delete("before", &DeleteParams::default()).await.unwrap();
    offline
        .create(&PostParams::default(), &new("after"))
        .await
        .unwrap();
    let store = server.running().store();
    store.compact(store.current_revision()).await.unwrap();

    eventually("a relist after the restart and 410", || {
        let names = names(&reader);
        names.contains(&"after".to_owned()) && !names.contains(&"before".to_owned())
    })
    .await;
    offline
        .create(&PostParams::default(), &new("live"))
        .await
        .unwrap();
    eventually("live events after the relist", || {
        names(&reader).contains(&"live".to_owned())
    })
    .await;
    driver.abort();
}
