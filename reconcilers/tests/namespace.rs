//! The namespace controller: a deleted namespace is emptied, reports what remains in its
//! conditions, and disappears once its content is gone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Cluster, eventually};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, NamespaceCondition, Pod, Secret, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

async fn create<K>(api: &Api<K>, value: serde_json::Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &serde_json::from_value(value).unwrap())
        .await
        .unwrap();
}

fn condition<'a>(namespace: &'a Namespace, kind: &str) -> Option<&'a NamespaceCondition> {
    namespace
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

async fn release<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_namespace_is_emptied_and_removed() {
    let cluster = Cluster::start(&["namespace"]).await;
    let client = cluster.client.clone();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    create(&namespaces, json!({"metadata": {"name": "doomed"}})).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "doomed");
    let services: Api<Service> = Api::namespaced(client.clone(), "doomed");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "doomed");
    create(
        &configmaps,
        json!({"metadata": {"name": "plain"}, "data": {"a": "b"}}),
    )
    .await;
    create(
        &configmaps,
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    create(
        &secrets,
        json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}),
    )
    .await;
    create(
        &services,
        json!({"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}),
    )
    .await;
    create(
        &pods,
        json!({"metadata": {"name": "p", "finalizers": ["example.com/hold"]},
               "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await;

    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = namespaces.get("doomed").await.unwrap();
    assert_eq!(
        terminating.status.as_ref().unwrap().phase.as_deref(),
        Some("Terminating")
    );

    // Pods go first: while the held pod remains, the rest is untouched.
    let pod = eventually("the pod being deleted", 30, || async {
        let pod = pods.get("p").await.unwrap();
        pod.metadata.deletion_timestamp.is_some().then_some(pod)
    })
    .await;
    assert!(pod.metadata.finalizers.is_some());
    let ns = eventually("the conditions of the first pass", 30, || async {
        let ns = namespaces.get("doomed").await.unwrap();
        condition(&ns, "NamespaceDeletionDiscoveryFailure")
            .is_some()
            .then_some(ns)
    })
    .await;
    let discovery = condition(&ns, "NamespaceDeletionDiscoveryFailure").unwrap();
    assert_eq!(discovery.status, "False");
    assert_eq!(discovery.reason.as_deref(), Some("ResourcesDiscovered"));
    assert!(configmaps.get_opt("plain").await.unwrap().is_some());
    release(&pods, "p").await;

    // Then everything else; the held ConfigMap remains and the conditions say so.
    let ns = eventually("the remaining content reported", 60, || async {
        let ns = namespaces.get("doomed").await.unwrap();
        let remaining = condition(&ns, "NamespaceContentRemaining")?;
        (remaining.status == "True").then_some(ns)
    })
    .await;
    let remaining = condition(&ns, "NamespaceContentRemaining").unwrap();
    assert_eq!(remaining.reason.as_deref(), Some("SomeResourcesRemain"));
    assert_eq!(
        remaining.message.as_deref(),
        Some("Some resources are remaining: configmaps. has 1 resource instances")
    );
    let finalizers = condition(&ns, "NamespaceFinalizersRemaining").unwrap();
    assert_eq!(finalizers.status, "True");
    assert_eq!(finalizers.reason.as_deref(), Some("SomeFinalizersRemain"));
    assert_eq!(
        finalizers.message.as_deref(),
        Some(
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        )
    );
    assert!(secrets.get_opt("s").await.unwrap().is_none());
    assert!(services.get_opt("web").await.unwrap().is_none());
    assert!(configmaps.get_opt("plain").await.unwrap().is_none());
    assert_eq!(ns.spec.unwrap().finalizers.unwrap(), ["kubernetes"]);

    release(&configmaps, "held").await;
    eventually("the namespace to disappear", 60, || async {
        namespaces
            .get_opt("doomed")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_namespace_goes_after_the_grace_period_and_others_stay() {
    let cluster = Cluster::start(&["namespace"]).await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    create(&namespaces, json!({"metadata": {"name": "empty"}})).await;
    create(&namespaces, json!({"metadata": {"name": "kept"}})).await;
    let started = std::time::Instant::now();
    namespaces
        .delete("empty", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the namespace to disappear", 30, || async {
        namespaces.get_opt("empty").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(4),
        "the controller waits for the deletion grace period first"
    );
    let kept = namespaces.get("kept").await.unwrap();
    assert_eq!(kept.status.unwrap().phase.as_deref(), Some("Active"));
    assert!(kept.metadata.deletion_timestamp.is_none());
    cluster.stop().await;
}
