//! The deployment controller with the replica set controller against the in-process API
//! server; a test kubelet (`common::kubelet`) reports pods ready since there are no nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::kubelet::{self, Kubelet};
use common::{Cluster, eventually};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};

const REVISION: &str = "deployment.kubernetes.io/revision";

struct Env {
    cluster: Cluster,
    deployments: Api<Deployment>,
    sets: Api<ReplicaSet>,
    pods: Api<Pod>,
    namespace: String,
}

async fn env(namespace: &str) -> Env {
    let cluster = Cluster::start(&["deployment", "replicaset"]).await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}})).unwrap(),
        )
        .await
        .unwrap();
    Env {
        deployments: Api::namespaced(cluster.client.clone(), namespace),
        sets: Api::namespaced(cluster.client.clone(), namespace),
        pods: Api::namespaced(cluster.client.clone(), namespace),
        namespace: namespace.to_owned(),
        cluster,
    }
}

fn deployment(name: &str, replicas: i32, extra: serde_json::Value) -> Deployment {
    let mut value = serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}
            }
        }
    });
    merge(&mut value, extra);
    serde_json::from_value(value).unwrap()
}

fn merge(target: &mut serde_json::Value, patch: serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(t), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (t, p) => *t = p,
    }
}

impl Env {
    async fn replica_sets(&self) -> Vec<ReplicaSet> {
        let mut list = self.sets.list(&ListParams::default()).await.unwrap().items;
        list.sort_by_key(|rs| rs.metadata.creation_timestamp.as_ref().map(|t| t.0));
        list
    }

    async fn set_image(&self, name: &str, image: &str) {
        let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
        self.deployments
            .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .unwrap();
    }

    async fn wait_complete(&self, name: &str, replicas: i32) -> Deployment {
        eventually("a complete rollout", 30, || async {
            let d = self.deployments.get(name).await.unwrap();
            let status = d.status.clone()?;
            let progressing = status
                .conditions
                .as_ref()?
                .iter()
                .find(|c| c.type_ == "Progressing")?
                .clone();
            (status.updated_replicas == Some(replicas)
                && status.replicas == Some(replicas)
                && status.available_replicas == Some(replicas)
                && status.observed_generation == d.metadata.generation
                && progressing.reason.as_deref() == Some("NewReplicaSetAvailable"))
            .then_some(d)
        })
        .await
    }

    async fn events(&self, reason: &str) -> Vec<String> {
        let api: Api<Event> = Api::namespaced(self.cluster.client.clone(), &self.namespace);
        let mut list: Vec<Event> = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .collect();
        list.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
        list.into_iter().filter_map(|e| e.note).collect()
    }
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().unwrap().replicas.unwrap()
}

fn image(rs: &ReplicaSet) -> String {
    rs.spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_creates_a_hashed_replica_set_and_becomes_available() {
    let env = env("create").await;
    let _kubelet = Kubelet::start(env.cluster.client.clone(), "create");
    env.deployments
        .create(
            &PostParams::default(),
            &deployment("web", 3, serde_json::json!({})),
        )
        .await
        .unwrap();
    let d = env.wait_complete("web", 3).await;
    let sets = env.replica_sets().await;
    assert_eq!(sets.len(), 1);
    let rs = &sets[0];
    let hash = rs.labels()["pod-template-hash"].clone();
    assert_eq!(rs.name_any(), format!("web-{hash}"));
    assert!(
        hash.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{hash}"
    );
    let annotations = rs.annotations();
    assert_eq!(annotations[REVISION], "1");
    assert_eq!(annotations["deployment.kubernetes.io/desired-replicas"], "3");
    // maxSurge 25% of 3 rounds up to 1.
    assert_eq!(annotations["deployment.kubernetes.io/max-replicas"], "4");
    let spec = rs.spec.as_ref().unwrap();
    assert_eq!(
        spec.selector.match_labels.as_ref().unwrap()["pod-template-hash"],
        hash
    );
    let owner = &rs.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller, owner.block_owner_deletion),
        ("Deployment", Some(true), Some(true))
    );
    let pods = env
        .pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p.labels()["pod-template-hash"] == hash));
    assert!(
        pods.iter()
            .all(|p| p.name_any().starts_with(&format!("web-{hash}-")))
    );

    assert_eq!(d.annotations()[REVISION], "1");
    let status = d.status.unwrap();
    assert_eq!(status.ready_replicas, Some(3));
    assert_eq!(status.unavailable_replicas, None);
    let conditions = status.conditions.unwrap();
    let available = conditions.iter().find(|c| c.type_ == "Available").unwrap();
    assert_eq!(
        (
            available.status.as_str(),
            available.reason.as_deref(),
            available.message.as_deref()
        ),
        (
            "True",
            Some("MinimumReplicasAvailable"),
            Some("Deployment has minimum availability.")
        )
    );
    let progressing = conditions.iter().find(|c| c.type_ == "Progressing").unwrap();
    assert_eq!(
        progressing.message.clone().unwrap(),
        format!("ReplicaSet \"web-{hash}\" has successfully progressed.")
    );
    let scaling = env.events("ScalingReplicaSet").await;
    assert_eq!(scaling, [format!("Scaled up replica set web-{hash} from 0 to 3")]);

    // Scaling the deployment scales its replica set, with an event.
    env.deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    env.wait_complete("web", 5).await;
    let rs = env.sets.get(&format!("web-{hash}")).await.unwrap();
    assert_eq!(rs.annotations()["deployment.kubernetes.io/desired-replicas"], "5");
    assert!(
        env.events("ScalingReplicaSet")
            .await
            .contains(&format!("Scaled up replica set web-{hash} from 3 to 5"))
    );
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_respects_max_surge_and_max_unavailable() {
    let env = env("rolling").await;
    let strategy = serde_json::json!({"spec": {"strategy": {"type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}}});
    env.deployments
        .create(&PostParams::default(), &deployment("web", 4, strategy))
        .await
        .unwrap();
    eventually("4 pods", 20, || async {
        (kubelet::mark_all_ready(&env.pods, "app=web").await == 0
            && env
                .pods
                .list(&ListParams::default().labels("app=web"))
                .await
                .unwrap()
                .items
                .len()
                == 4)
            .then_some(())
    })
    .await;
    env.wait_complete("web", 4).await;
    env.set_image("web", "busybox:2").await;

    // Step by step: only pods we mark ready become available. At every observed point the
    // replica sets hold at most 4 + 1 pods, and at least 4 - 1 ready pods are kept.
    let mut steps = 0;
    loop {
        let sets = env.replica_sets().await;
        let total: i32 = sets.iter().map(spec_replicas).sum();
        assert!(total <= 5, "maxSurge exceeded: {total}");
        let ready = env
            .pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| kubelet::is_ready(p) && p.metadata.deletion_timestamp.is_none())
            .count();
        assert!(ready >= 3, "maxUnavailable exceeded: {ready} ready");
        let new = sets.iter().find(|rs| image(rs) == "busybox:2");
        if let Some(new) = new
            && spec_replicas(new) == 4
            && sets
                .iter()
                .filter(|rs| image(rs) == "busybox:1")
                .all(|rs| spec_replicas(rs) == 0)
            && new.status.as_ref().and_then(|s| s.available_replicas) == Some(4)
        {
            break;
        }
        // One kubelet step: the pending pods start.
        kubelet::mark_all_ready(&env.pods, "app=web").await;
        steps += 1;
        assert!(steps < 200, "the rollout does not finish");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let d = env.wait_complete("web", 4).await;
    assert_eq!(d.annotations()[REVISION], "2");
    let sets = env.replica_sets().await;
    assert_eq!(sets.len(), 2);
    let new = sets.iter().find(|rs| image(rs) == "busybox:2").unwrap();
    assert_eq!(new.annotations()[REVISION], "2");
    let scaling = env.events("ScalingReplicaSet").await;
    assert!(
        scaling
            .iter()
            .any(|m| m.starts_with(&format!("Scaled up replica set {} from 0 to", new.name_any()))),
        "{scaling:?}"
    );
    assert!(
        scaling
            .iter()
            .any(|m| m.starts_with("Scaled down replica set web-")),
        "{scaling:?}"
    );
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_removes_old_pods_before_creating_new_ones() {
    let env = env("recreate").await;
    let _kubelet = Kubelet::start(env.cluster.client.clone(), "recreate");
    env.deployments
        .create(
            &PostParams::default(),
            &deployment(
                "db",
                2,
                serde_json::json!({"spec": {"strategy": {"type": "Recreate"}}}),
            ),
        )
        .await
        .unwrap();
    env.wait_complete("db", 2).await;
    env.set_image("db", "busybox:2").await;
    // While any old pod exists, no new pod exists.
    for _ in 0..100 {
        let pods = env
            .pods
            .list(&ListParams::default().labels("app=db"))
            .await
            .unwrap()
            .items;
        let images: Vec<String> = pods
            .iter()
            .map(|p| p.spec.as_ref().unwrap().containers[0].image.clone().unwrap())
            .collect();
        assert!(
            !(images.iter().any(|i| i == "busybox:1") && images.iter().any(|i| i == "busybox:2")),
            "old and new pods together: {images:?}"
        );
        if images.len() == 2 && images.iter().all(|i| i == "busybox:2") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    env.wait_complete("db", 2).await;
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_deployments_do_not_roll_out_and_undo_restores_a_revision() {
    let env = env("pause").await;
    let _kubelet = Kubelet::start(env.cluster.client.clone(), "pause");
    env.deployments
        .create(
            &PostParams::default(),
            &deployment("web", 2, serde_json::json!({})),
        )
        .await
        .unwrap();
    env.wait_complete("web", 2).await;
    let first = env.replica_sets().await[0].clone();

    env.deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    env.set_image("web", "busybox:2").await;
    eventually("the paused condition", 20, || async {
        let d = env.deployments.get("web").await.unwrap();
        let status = d.status?;
        let c = status
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Progressing")?;
        (c.reason.as_deref() == Some("DeploymentPaused")
            && c.status == "Unknown"
            && c.message.as_deref() == Some("Deployment is paused")
            && status.observed_generation == d.metadata.generation)
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.replica_sets().await.len(), 1, "no rollout while paused");

    env.deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"paused": false}})),
        )
        .await
        .unwrap();
    env.wait_complete("web", 2).await;
    assert_eq!(env.replica_sets().await.len(), 2);

    // What `kubectl rollout undo` does: put revision 1's template back (without its hash).
    let mut template = first.spec.clone().unwrap().template.unwrap();
    template
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .remove("pod-template-hash");
    env.deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(serde_json::json!([
                    {"op": "replace", "path": "/spec/template", "value": template}
                ]))
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    let d = env.wait_complete("web", 2).await;
    assert_eq!(d.annotations()[REVISION], "3");
    let sets = env.replica_sets().await;
    assert_eq!(sets.len(), 2, "the old replica set is reused");
    let reused = env.sets.get(&first.name_any()).await.unwrap();
    assert_eq!(spec_replicas(&reused), 2);
    assert_eq!(reused.annotations()[REVISION], "3");
    assert_eq!(
        reused.annotations()["deployment.kubernetes.io/revision-history"],
        "1"
    );
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_limit_removes_the_oldest_replica_sets() {
    let env = env("history").await;
    let _kubelet = Kubelet::start(env.cluster.client.clone(), "history");
    env.deployments
        .create(
            &PostParams::default(),
            &deployment("web", 1, serde_json::json!({"spec": {"revisionHistoryLimit": 1}})),
        )
        .await
        .unwrap();
    env.wait_complete("web", 1).await;
    for version in 2..=4 {
        env.set_image("web", &format!("busybox:{version}")).await;
        env.wait_complete("web", 1).await;
    }
    let sets = eventually("two replica sets left", 20, || async {
        let sets = env.replica_sets().await;
        (sets.len() == 2).then_some(sets)
    })
    .await;
    let mut images: Vec<String> = sets.iter().map(image).collect();
    images.sort();
    assert_eq!(images, ["busybox:3", "busybox:4"]);
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_during_a_rollout_is_proportional() {
    let env = env("proportional").await;
    let strategy = serde_json::json!({"spec": {"strategy": {"type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}}});
    env.deployments
        .create(&PostParams::default(), &deployment("web", 10, strategy))
        .await
        .unwrap();
    eventually("10 ready pods", 20, || async {
        kubelet::mark_all_ready(&env.pods, "app=web").await;
        let d = env.deployments.get("web").await.unwrap();
        (d.status?.available_replicas == Some(10)).then_some(())
    })
    .await;
    // The new pods never become ready: the rollout stops at 13 pods, 5 new and 8 old.
    env.set_image("web", "busybox:2").await;
    let sizes = || async {
        let sets = env.replica_sets().await;
        let old: i32 = sets
            .iter()
            .filter(|rs| image(rs) == "busybox:1")
            .map(spec_replicas)
            .sum();
        let new: i32 = sets
            .iter()
            .filter(|rs| image(rs) == "busybox:2")
            .map(spec_replicas)
            .sum();
        (old, new)
    };
    eventually("a stuck rollout", 20, || async {
        (sizes().await == (8, 5)).then_some(())
    })
    .await;
    // 10 -> 20: 10 more replicas plus the surge, shared by the sizes 8:5 (upstream gives
    // 8 * 23 / 13 = 14.15 -> 14 to the old one and the rest, 9, to the new one).
    env.deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 20}})),
        )
        .await
        .unwrap();
    eventually("proportional sizes", 20, || async {
        (sizes().await == (14, 9)).then_some(())
    })
    .await;
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_deployment_writes_nothing() {
    let env = env("idle").await;
    let _kubelet = Kubelet::start(env.cluster.client.clone(), "idle");
    env.deployments
        .create(
            &PostParams::default(),
            &deployment("web", 3, serde_json::json!({"spec": {"minReadySeconds": 1}})),
        )
        .await
        .unwrap();
    env.wait_complete("web", 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let versions = || async {
        let mut all = BTreeMap::new();
        for d in env.deployments.list(&ListParams::default()).await.unwrap().items {
            all.insert(format!("deploy/{}", d.name_any()), d.resource_version().unwrap());
        }
        for rs in env.sets.list(&ListParams::default()).await.unwrap().items {
            all.insert(format!("rs/{}", rs.name_any()), rs.resource_version().unwrap());
        }
        for pod in env.pods.list(&ListParams::default()).await.unwrap().items {
            all.insert(format!("pod/{}", pod.name_any()), pod.resource_version().unwrap());
        }
        all
    };
    let before = versions().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(versions().await, before, "an idle deployment changed something");
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_rollout_exceeds_its_progress_deadline() {
    let env = env("deadline").await;
    env.deployments
        .create(
            &PostParams::default(),
            &deployment(
                "web",
                2,
                serde_json::json!({"spec": {"progressDeadlineSeconds": 2}}),
            ),
        )
        .await
        .unwrap();
    // No pod ever becomes ready: after two seconds without progress the condition turns.
    let condition = eventually("ProgressDeadlineExceeded", 20, || async {
        let d = env.deployments.get("web").await.unwrap();
        d.status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
    })
    .await;
    assert_eq!(condition.status, "False");
    let rs = env.replica_sets().await.remove(0);
    assert_eq!(
        condition.message.unwrap(),
        format!("ReplicaSet \"{}\" has timed out progressing.", rs.name_any())
    );
    let d = env.deployments.get("web").await.unwrap();
    let available = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Available")
        .unwrap();
    assert_eq!(
        (available.status.as_str(), available.reason.as_deref()),
        ("False", Some("MinimumReplicasUnavailable"))
    );
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deprecated_rollback_annotation_rolls_back() {
    let env = env("rollbackto").await;
    let _kubelet = Kubelet::start(env.cluster.client.clone(), "rollbackto");
    env.deployments
        .create(
            &PostParams::default(),
            &deployment("web", 1, serde_json::json!({})),
        )
        .await
        .unwrap();
    env.wait_complete("web", 1).await;
    env.set_image("web", "busybox:2").await;
    env.wait_complete("web", 1).await;
    let annotate = |value: &str| serde_json::json!({"metadata": {"annotations": {"deprecated.deployment.rollback.to": value}}});
    // 0: the previous revision.
    env.deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(annotate("0")))
        .await
        .unwrap();
    let d = env.wait_complete("web", 1).await;
    let template = d.spec.unwrap().template;
    assert_eq!(
        template.spec.unwrap().containers[0].image.as_deref(),
        Some("busybox:1")
    );
    assert!(
        !template
            .metadata
            .unwrap()
            .labels
            .unwrap()
            .contains_key("pod-template-hash")
    );
    assert!(
        !d.metadata
            .annotations
            .unwrap()
            .contains_key("deprecated.deployment.rollback.to")
    );
    assert!(
        env.events("DeploymentRollback")
            .await
            .contains(&"Rolled back deployment \"web\" to revision 1".to_owned())
    );
    // An unknown revision is reported and cleared.
    env.deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(annotate("42")))
        .await
        .unwrap();
    eventually("the request cleared", 20, || async {
        let d = env.deployments.get("web").await.unwrap();
        (!d.annotations().contains_key("deprecated.deployment.rollback.to")).then_some(())
    })
    .await;
    assert_eq!(
        env.events("DeploymentRollbackRevisionNotFound").await,
        ["Unable to find the revision to rollback to."]
    );
    env.cluster.stop().await;
}
