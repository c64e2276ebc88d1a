//! The replica set and replication controller controllers against the in-process API server;
//! a test kubelet (`common::kubelet`) reports pods ready since there are no nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::kubelet;
use common::{Cluster, eventually};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{LimitRange, Namespace, Pod, ReplicationController};
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

async fn namespace(cluster: &Cluster, name: &str) {
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
}

fn replica_set(name: &str, replicas: i32) -> ReplicaSet {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": "web"}, "annotations": {"note": "kept"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }
        }
    }))
    .unwrap()
}

async fn owned_pods(api: &Api<Pod>, selector: &str) -> Vec<Pod> {
    api.list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

async fn events(cluster: &Cluster, namespace: &str, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(cluster.client.clone(), namespace);
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_set_creates_scales_and_reports_status() {
    let cluster = Cluster::start(&["replicaset"]).await;
    namespace(&cluster, "rs").await;
    let sets: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), "rs");
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "rs");
    let rs = sets
        .create(&PostParams::default(), &replica_set("web", 3))
        .await
        .unwrap();

    let created = eventually("3 pods", 20, || async {
        let list = owned_pods(&pods, "app=web").await;
        (list.len() == 3).then_some(list)
    })
    .await;
    for pod in &created {
        let name = pod.name_any();
        assert!(
            name.starts_with("web-") && name.len() == "web-".len() + 5,
            "{name}"
        );
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(pod.labels()["tier"], "web");
        assert_eq!(pod.annotations()["note"], "kept");
        let owner = &pod.owner_references()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("ReplicaSet", "web"));
        assert_eq!(owner.uid, rs.uid().unwrap());
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));
    }
    let status = eventually("status of 3 replicas", 20, || async {
        let status = sets.get("web").await.unwrap().status.unwrap();
        (status.replicas == 3 && status.observed_generation == Some(1)).then_some(status)
    })
    .await;
    assert_eq!(status.fully_labeled_replicas, Some(3));
    assert_eq!(status.ready_replicas, None);
    assert_eq!(status.terminating_replicas, Some(0));

    // Two pods become ready: they are counted, and scaling down removes the unready one.
    for pod in &created[..2] {
        kubelet::mark_ready(&pods, &pod.name_any()).await;
    }
    eventually("2 ready and available", 20, || async {
        let status = sets.get("web").await.unwrap().status.unwrap();
        (status.ready_replicas == Some(2) && status.available_replicas == Some(2)).then_some(())
    })
    .await;
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    let left = eventually("2 pods", 20, || async {
        let list = owned_pods(&pods, "app=web").await;
        (list.len() == 2).then_some(list)
    })
    .await;
    assert!(left.iter().all(kubelet::is_ready), "the unready pod goes first");
    eventually("status of 2 replicas at generation 2", 20, || async {
        let status = sets.get("web").await.unwrap().status.unwrap();
        (status.replicas == 2 && status.observed_generation == Some(2)).then_some(())
    })
    .await;

    // Deleted pods are replaced.
    pods.delete(&left[0].name_any(), &DeleteParams::default())
        .await
        .unwrap();
    eventually("a replacement", 20, || async {
        let list = owned_pods(&pods, "app=web").await;
        (list.len() == 2 && list.iter().all(|p| p.name_any() != left[0].name_any())).then_some(())
    })
    .await;

    let creates = events(&cluster, "rs", "SuccessfulCreate").await;
    assert!(creates.len() >= 4, "{creates:?}");
    let note = creates[0].note.clone().unwrap();
    assert!(note.starts_with("Created pod: web-"), "{note}");
    assert_eq!(
        creates[0].reporting_controller.as_deref(),
        Some("replicaset-controller")
    );
    let deletes = events(&cluster, "rs", "SuccessfulDelete").await;
    assert!(deletes[0].note.clone().unwrap().starts_with("Deleted pod: web-"));
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_are_adopted_and_mismatches_released() {
    let cluster = Cluster::start(&["replicaset"]).await;
    namespace(&cluster, "adopt").await;
    let sets: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), "adopt");
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "adopt");
    let orphan: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "orphan", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &orphan).await.unwrap();
    let rs = sets
        .create(&PostParams::default(), &replica_set("web", 2))
        .await
        .unwrap();
    eventually("the orphan adopted and one more pod", 20, || async {
        let list = owned_pods(&pods, "app=web").await;
        let adopted = list.iter().any(|p| {
            p.name_any() == "orphan"
                && p.owner_references()
                    .first()
                    .is_some_and(|o| o.uid == rs.uid().unwrap())
        });
        (adopted && list.len() == 2).then_some(())
    })
    .await;

    // A pod relabelled out of the selector is released and replaced.
    pods.patch(
        "orphan",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .unwrap();
    eventually("release and replacement", 20, || async {
        let released = pods.get("orphan").await.unwrap();
        let list = owned_pods(&pods, "app=web").await;
        (released.owner_references().is_empty() && list.len() == 2).then_some(())
    })
    .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_reconciles_never_over_create() {
    let cluster = Cluster::start(&["replicaset"]).await;
    namespace(&cluster, "burst").await;
    let sets: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), "burst");
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "burst");
    sets.create(&PostParams::default(), &replica_set("many", 30))
        .await
        .unwrap();
    // Pod events arrive while creations are in flight; every status write and pod event
    // wakes the controller again. The count must rise to 30 and never beyond.
    let mut seen = 0;
    for _ in 0..100 {
        seen = owned_pods(&pods, "app=many").await.len();
        assert!(seen <= 30, "over-created: {seen}");
        if seen == 30 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, 30);
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(owned_pods(&pods, "app=many").await.len(), 30);
    assert!(
        events(&cluster, "burst", "SuccessfulDelete").await.is_empty(),
        "nothing had to be deleted"
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_failures_set_replica_failure_and_events() {
    let cluster = Cluster::start(&["replicaset"]).await;
    namespace(&cluster, "limits").await;
    let limits: Api<LimitRange> = Api::namespaced(cluster.client.clone(), "limits");
    limits
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "small"},
                "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let sets: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), "limits");
    let mut rs = replica_set("big", 2);
    rs.spec
        .as_mut()
        .unwrap()
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .resources = Some(serde_json::from_value(serde_json::json!({"limits": {"cpu": "2"}})).unwrap());
    sets.create(&PostParams::default(), &rs).await.unwrap();
    let condition = eventually("ReplicaFailure", 20, || async {
        let status = sets.get("big").await.unwrap().status?;
        status
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "ReplicaFailure")
    })
    .await;
    assert_eq!(condition.reason.as_deref(), Some("FailedCreate"));
    let message = condition.message.unwrap();
    assert!(message.contains("forbidden"), "{message}");
    let failures = eventually("FailedCreate events", 20, || async {
        let list = events(&cluster, "limits", "FailedCreate").await;
        (!list.is_empty()).then_some(list)
    })
    .await;
    assert!(failures[0].note.clone().unwrap().starts_with("Error creating: "));
    assert_eq!(failures[0].type_.as_deref(), Some("Warning"));

    // Once pods can be created, the condition goes away.
    limits.delete("small", &DeleteParams::default()).await.unwrap();
    eventually("recovery", 30, || async {
        let status = sets.get("big").await.unwrap().status?;
        (status.replicas == 2 && status.conditions.unwrap_or_default().is_empty()).then_some(())
    })
    .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_controllers_share_the_replica_set_logic() {
    let cluster = Cluster::start(&["replicationcontroller"]).await;
    namespace(&cluster, "rc").await;
    let controllers: Api<ReplicationController> = Api::namespaced(cluster.client.clone(), "rc");
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "rc");
    let rc: ReplicationController = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "legacy"},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": {"app": "legacy"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }
        }
    }))
    .unwrap();
    controllers.create(&PostParams::default(), &rc).await.unwrap();
    let list = eventually("2 pods", 20, || async {
        let list = owned_pods(&pods, "app=legacy").await;
        (list.len() == 2).then_some(list)
    })
    .await;
    assert_eq!(list[0].owner_references()[0].kind, "ReplicationController");
    kubelet::mark_all_ready(&pods, "app=legacy").await;
    let status = eventually("ready status", 20, || async {
        let status = controllers.get("legacy").await.unwrap().status.unwrap();
        (status.ready_replicas == Some(2)).then_some(status)
    })
    .await;
    assert_eq!(status.available_replicas, Some(2));
    assert_eq!(status.fully_labeled_replicas, Some(2));
    let labels: BTreeMap<String, String> = list[0].labels().clone();
    assert_eq!(labels["app"], "legacy");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_become_available_after_min_ready_seconds() {
    let cluster = Cluster::start(&["replicaset"]).await;
    namespace(&cluster, "slow").await;
    let sets: Api<ReplicaSet> = Api::namespaced(cluster.client.clone(), "slow");
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "slow");
    let mut rs = replica_set("web", 1);
    rs.spec.as_mut().unwrap().min_ready_seconds = Some(2);
    sets.create(&PostParams::default(), &rs).await.unwrap();
    eventually("a pod", 20, || async {
        (owned_pods(&pods, "app=web").await.len() == 1).then_some(())
    })
    .await;
    kubelet::mark_all_ready(&pods, "app=web").await;
    eventually("ready, not yet available", 20, || async {
        let status = sets.get("web").await.unwrap().status.unwrap();
        (status.ready_replicas == Some(1) && status.available_replicas.is_none()).then_some(())
    })
    .await;
    // Nothing changes in the cluster: the controller wakes itself when the pod becomes available.
    eventually("available", 10, || async {
        let status = sets.get("web").await.unwrap().status.unwrap();
        (status.available_replicas == Some(1)).then_some(())
    })
    .await;
    cluster.stop().await;
}
