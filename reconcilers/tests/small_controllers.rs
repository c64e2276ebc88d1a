//! The small controllers: cluster role aggregation, the pod garbage collector and the
//! disruption controller, each against an in-process cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Cluster, eventually};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

async fn create<K>(api: &Api<K>, value: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &serde_json::from_value(value).unwrap())
        .await
        .unwrap()
}

fn has_resource(role: &ClusterRole, resource: &str) -> bool {
    role.rules
        .iter()
        .flatten()
        .any(|r| r.resources.iter().flatten().any(|x| x == resource))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_cluster_roles_collect_the_rules_of_selected_roles() {
    let cluster = Cluster::start(&["clusterrole-aggregation"]).await;
    let roles: Api<ClusterRole> = Api::all(cluster.client.clone());
    let label = "rbac.authorization.k8s.io/aggregate-to-test-view";
    create(
        &roles,
        json!({
            "metadata": {"name": "test-view"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]},
        }),
    )
    .await;
    create(
        &roles,
        json!({
            "metadata": {"name": "widgets-view", "labels": {label: "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list"]}],
        }),
    )
    .await;
    create(
        &roles,
        json!({
            "metadata": {"name": "unrelated"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
        }),
    )
    .await;
    eventually("widgets aggregated into test-view", 20, || async {
        let role = roles.get("test-view").await.unwrap();
        has_resource(&role, "widgets").then_some(())
    })
    .await;
    // A second selected role joins; the unrelated one never does.
    create(
        &roles,
        json!({
            "metadata": {"name": "gadgets-view", "labels": {label: "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": ["gadgets"], "verbs": ["get"]}],
        }),
    )
    .await;
    let role = eventually("gadgets aggregated into test-view", 20, || async {
        let role = roles.get("test-view").await.unwrap();
        has_resource(&role, "gadgets").then_some(role)
    })
    .await;
    let resources: Vec<String> = role
        .rules
        .iter()
        .flatten()
        .flat_map(|r| r.resources.clone().unwrap_or_default())
        .collect();
    assert_eq!(resources, ["gadgets", "widgets"]);
    let managers: Vec<String> = role
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.iter().any(|m| m == "clusterrole-aggregation-controller"),
        "{managers:?}"
    );
    // Removing the label takes the rules away again.
    let widgets = roles.get("widgets-view").await.unwrap();
    let mut widgets = widgets;
    widgets.metadata.labels = None;
    roles
        .replace("widgets-view", &PostParams::default(), &widgets)
        .await
        .unwrap();
    eventually("widgets no longer aggregated", 20, || async {
        let role = roles.get("test-view").await.unwrap();
        (!has_resource(&role, "widgets") && has_resource(&role, "gadgets")).then_some(())
    })
    .await;
    cluster.stop().await;
}

fn pod_condition(pod: &Pod, kind: &str) -> Option<(String, Option<String>)> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)?;
    Some((condition.status.clone(), condition.reason.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_gc_collects_orphaned_and_unscheduled_terminating_pods() {
    let cluster = Cluster::start(&["pod-garbage-collector-controller"]).await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let container = json!([{"name": "c", "image": "busybox"}]);
    // Finalizers keep the pods visible after the collector deletes them.
    create(
        &pods,
        json!({
            "metadata": {"name": "unscheduled", "finalizers": ["example.com/hold"]},
            "spec": {"containers": container},
        }),
    )
    .await;
    create(
        &pods,
        json!({
            "metadata": {"name": "orphan", "finalizers": ["example.com/hold"]},
            "spec": {"containers": container, "nodeName": "ghost"},
        }),
    )
    .await;
    create(
        &pods,
        json!({"metadata": {"name": "pending"}, "spec": {"containers": container}}),
    )
    .await;
    pods.delete("unscheduled", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the unscheduled terminating pod marked Failed", 30, || async {
        let pod = pods.get("unscheduled").await.unwrap();
        (pod.status.as_ref()?.phase.as_deref() == Some("Failed")).then_some(())
    })
    .await;
    let pod = eventually("the orphan marked Failed and deleted", 70, || async {
        let pod = pods.get("orphan").await.unwrap();
        pod.metadata.deletion_timestamp.is_some().then_some(pod)
    })
    .await;
    assert_eq!(pod.status.as_ref().unwrap().phase.as_deref(), Some("Failed"));
    assert_eq!(
        pod_condition(&pod, "DisruptionTarget"),
        Some(("True".into(), Some("DeletionByPodGC".into())))
    );
    // A pending pod that is neither orphaned nor terminating stays untouched.
    let pending = pods.get("pending").await.unwrap();
    assert!(pending.metadata.deletion_timestamp.is_none());
    cluster.stop().await;
}
