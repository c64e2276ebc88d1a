//! The garbage collector: background, foreground and orphaning deletion, dangling owner
//! references, cluster-scoped owners and invalid cross-namespace references.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Cluster, eventually};
use k8s_openapi::api::core::v1::{ConfigMap, Event, Secret};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use serde_json::{Value, json};

fn owner_ref(kind: &str, name: &str, uid: &str, block: bool) -> Value {
    json!({"apiVersion": if kind == "ClusterRole" { "rbac.authorization.k8s.io/v1" } else { "v1" },
           "kind": kind, "name": name, "uid": uid, "blockOwnerDeletion": block})
}

async fn configmap(api: &Api<ConfigMap>, name: &str, owners: Vec<Value>, finalizers: &[&str]) -> String {
    let object: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": owners, "finalizers": finalizers},
        "data": {"k": "v"},
    }))
    .unwrap();
    api.create(&PostParams::default(), &object)
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap()
}

async fn secret(api: &Api<Secret>, name: &str, owners: Vec<Value>) -> String {
    let object: Secret =
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": owners}})).unwrap();
    api.create(&PostParams::default(), &object)
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap()
}

async fn gone<K>(api: &Api<K>, name: &str, what: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(what, 30, || async {
        api.get_opt(name).await.unwrap().is_none().then_some(())
    })
    .await;
}

fn policy(p: PropagationPolicy) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(p),
        ..Default::default()
    }
}

async fn remove_finalizers(api: &Api<ConfigMap>, name: &str) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_deletion_removes_a_chain_of_dependents() {
    let cluster = Cluster::start(&["garbage-collector-controller"]).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let owner = configmap(&configmaps, "owner", vec![], &[]).await;
    let child = configmap(
        &configmaps,
        "child",
        vec![owner_ref("ConfigMap", "owner", &owner, false)],
        &[],
    )
    .await;
    configmap(
        &configmaps,
        "grandchild",
        vec![owner_ref("ConfigMap", "child", &child, false)],
        &[],
    )
    .await;
    secret(
        &secrets,
        "child-secret",
        vec![owner_ref("ConfigMap", "owner", &owner, false)],
    )
    .await;
    // An object with a live owner is left alone.
    let keeper = configmap(&configmaps, "keeper", vec![], &[]).await;
    configmap(
        &configmaps,
        "kept",
        vec![owner_ref("ConfigMap", "keeper", &keeper, false)],
        &[],
    )
    .await;

    configmaps
        .delete("owner", &policy(PropagationPolicy::Background))
        .await
        .unwrap();
    gone(&configmaps, "owner", "the owner").await;
    gone(&configmaps, "child", "the dependent ConfigMap").await;
    gone(&secrets, "child-secret", "the dependent Secret").await;
    gone(&configmaps, "grandchild", "the dependent of the dependent").await;
    assert!(configmaps.get_opt("kept").await.unwrap().is_some());
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let cluster = Cluster::start(&["garbage-collector-controller"]).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "default");
    let owner = configmap(&configmaps, "owner", vec![], &[]).await;
    // A blocking dependent that holds on with its own finalizer, and its own blocking
    // dependent; a non-blocking dependent.
    let held = configmap(
        &configmaps,
        "held",
        vec![owner_ref("ConfigMap", "owner", &owner, true)],
        &["example.com/hold"],
    )
    .await;
    configmap(
        &configmaps,
        "held-child",
        vec![owner_ref("ConfigMap", "held", &held, true)],
        &[],
    )
    .await;
    configmap(
        &configmaps,
        "loose",
        vec![owner_ref("ConfigMap", "owner", &owner, false)],
        &[],
    )
    .await;

    configmaps
        .delete("owner", &policy(PropagationPolicy::Foreground))
        .await
        .unwrap();
    // The dependents are deleted (in the foreground, since their owner waits for them);
    // the held one stays, and so does the owner, with the foregroundDeletion finalizer.
    gone(&configmaps, "loose", "the non-blocking dependent").await;
    gone(&configmaps, "held-child", "the dependent of the held dependent").await;
    let held_now = eventually("the held dependent being deleted", 30, || async {
        let cm = configmaps.get("held").await.unwrap();
        cm.metadata.deletion_timestamp.is_some().then_some(cm)
    })
    .await;
    assert!(
        held_now
            .metadata
            .finalizers
            .unwrap()
            .contains(&"example.com/hold".to_owned())
    );
    let waiting = configmaps.get("owner").await.unwrap();
    assert!(waiting.metadata.deletion_timestamp.is_some());
    assert_eq!(waiting.metadata.finalizers.unwrap(), ["foregroundDeletion"]);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(
        configmaps.get_opt("owner").await.unwrap().is_some(),
        "the owner waits while a blocking dependent exists"
    );

    remove_finalizers(&configmaps, "held").await;
    gone(&configmaps, "held", "the released dependent").await;
    gone(&configmaps, "owner", "the owner").await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_deletion_keeps_dependents_without_the_reference() {
    let cluster = Cluster::start(&["garbage-collector-controller"]).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    let owner = configmap(&configmaps, "owner", vec![], &[]).await;
    let other = configmap(&configmaps, "other-owner", vec![], &[]).await;
    configmap(
        &configmaps,
        "child",
        vec![
            owner_ref("ConfigMap", "owner", &owner, true),
            owner_ref("ConfigMap", "other-owner", &other, false),
        ],
        &[],
    )
    .await;
    secret(
        &secrets,
        "child-secret",
        vec![owner_ref("ConfigMap", "owner", &owner, false)],
    )
    .await;

    configmaps
        .delete("owner", &policy(PropagationPolicy::Orphan))
        .await
        .unwrap();
    gone(&configmaps, "owner", "the orphaning owner").await;
    let child = configmaps.get("child").await.unwrap();
    let refs = child.metadata.owner_references.unwrap();
    assert_eq!(refs.len(), 1, "only the reference to the deleted owner goes");
    assert_eq!(refs[0].uid, other);
    let orphan = secrets.get("child-secret").await.unwrap();
    assert!(orphan.metadata.owner_references.unwrap_or_default().is_empty());
    // They stay: nothing deletes orphans later.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(secrets.get_opt("child-secret").await.unwrap().is_some());
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dangling_references_and_cluster_scoped_owners() {
    let cluster = Cluster::start(&["garbage-collector-controller"]).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "default");
    // An owner that never existed: the dependent goes.
    secret(
        &secrets,
        "dangling",
        vec![owner_ref(
            "ConfigMap",
            "nobody",
            "00000000-0000-0000-0000-000000000000",
            false,
        )],
    )
    .await;
    gone(&secrets, "dangling", "the dependent of a missing owner").await;

    // A cluster-scoped object cannot be owned by a namespaced one: such a reference is never
    // acted upon.
    let roles: Api<ClusterRole> = Api::all(cluster.client.clone());
    roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "misowned", "ownerReferences": [
                owner_ref("ConfigMap", "nobody", "11111111-1111-1111-1111-111111111111", false)
            ]}}))
            .unwrap(),
        )
        .await
        .unwrap();

    // A cluster-scoped owner of a namespaced dependent.
    let role = roles
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "gc-owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let role_uid = role.metadata.uid.unwrap();
    configmap(
        &configmaps,
        "owned-by-role",
        vec![owner_ref("ClusterRole", "gc-owner", &role_uid, false)],
        &[],
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(configmaps.get_opt("owned-by-role").await.unwrap().is_some());
    roles.delete("gc-owner", &DeleteParams::default()).await.unwrap();
    gone(
        &configmaps,
        "owned-by-role",
        "the dependent of the cluster-scoped owner",
    )
    .await;
    assert!(roles.get_opt("misowned").await.unwrap().is_some());

    // A reference to a namespaced owner in another namespace is invalid: it does not exist
    // in the dependent's namespace, so the dependent goes, with a warning event.
    let public: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "kube-public");
    let elsewhere = configmap(&public, "elsewhere", vec![], &[]).await;
    configmap(
        &configmaps,
        "misled",
        vec![owner_ref("ConfigMap", "elsewhere", &elsewhere, false)],
        &[],
    )
    .await;
    gone(
        &configmaps,
        "misled",
        "the dependent of an owner in another namespace",
    )
    .await;
    assert!(public.get_opt("elsewhere").await.unwrap().is_some());
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), "default");
    let event = eventually("the OwnerRefInvalidNamespace event", 30, || async {
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("OwnerRefInvalidNamespace"))
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(
        event.message.as_deref(),
        Some(
            format!(
                "ownerRef [v1/ConfigMap, namespace: default, name: elsewhere, uid: {elsewhere}] does not exist in namespace \"default\""
            )
            .as_str()
        )
    );
    assert_eq!(event.involved_object.name.as_deref(), Some("misled"));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_of_a_new_custom_resource_are_collected_before_the_next_discovery_period() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::core::{ApiResource, DynamicObject};
    let cluster = Cluster::start(&["garbage-collector-controller"]).await;
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "default");
    // The collector is running (its first discovery pass is behind it).
    let owner = configmap(&configmaps, "owner", vec![], &[]).await;
    configmap(
        &configmaps,
        "child",
        vec![owner_ref("ConfigMap", "owner", &owner, false)],
        &[],
    )
    .await;
    configmaps
        .delete("owner", &DeleteParams::default())
        .await
        .unwrap();
    gone(&configmaps, "child", "the warm-up dependent").await;

    // A kind discovery has not seen yet.
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let crd = serde_json::from_value(json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
    .unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap();
    eventually("the CRD Established", 30, || async {
        let crd = crds.get("widgets.example.com").await.unwrap();
        let conditions = crd.status?.conditions?;
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
            .then_some(())
    })
    .await;
    let resource = ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let widgets: Api<DynamicObject> = Api::namespaced_with(cluster.client.clone(), "default", &resource);
    let widget = widgets
        .create(
            &PostParams::default(),
            &DynamicObject::new("w1", &resource).within("default"),
        )
        .await
        .unwrap();
    let uid = widget.metadata.uid.unwrap();
    configmap(
        &configmaps,
        "w1-child",
        vec![json!({"apiVersion": "example.com/v1", "kind": "Widget", "name": "w1", "uid": uid})],
        &[],
    )
    .await;
    widgets.delete("w1", &DeleteParams::default()).await.unwrap();
    // Sooner than the 30 s discovery period: the unknown kind asked for a discovery pass.
    eventually("the custom resource's dependent collected", 15, || async {
        configmaps
            .get_opt("w1-child")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    cluster.stop().await;
}
