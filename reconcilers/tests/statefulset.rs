//! The StatefulSet controller against the in-process API server: ordered and parallel pod
//! management, identities, revisions and rolling updates with partitions, OnDelete,
//! volumeClaimTemplates and their retention policy, failed pods, history, events and status.
//! A test kubelet (`common::kubelet`) reports pods ready since there are no nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::kubelet::{self, Kubelet};
use common::{Cluster, eventually};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};

struct Env {
    cluster: Cluster,
    sets: Api<StatefulSet>,
    pods: Api<Pod>,
    claims: Api<PersistentVolumeClaim>,
    revisions: Api<ControllerRevision>,
    namespace: String,
}

async fn env(namespace: &str) -> Env {
    let cluster = Cluster::start(&["statefulset"]).await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": namespace}})).unwrap(),
        )
        .await
        .unwrap();
    Env {
        sets: Api::namespaced(cluster.client.clone(), namespace),
        pods: Api::namespaced(cluster.client.clone(), namespace),
        claims: Api::namespaced(cluster.client.clone(), namespace),
        revisions: Api::namespaced(cluster.client.clone(), namespace),
        namespace: namespace.to_owned(),
        cluster,
    }
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

fn stateful_set(name: &str, replicas: i32, extra: serde_json::Value) -> StatefulSet {
    let mut value = serde_json::json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": "nginx",
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}
            }
        }
    });
    merge(&mut value, extra);
    serde_json::from_value(value).unwrap()
}

impl Env {
    async fn create(&self, set: &StatefulSet) {
        self.sets.create(&PostParams::default(), set).await.unwrap();
    }

    /// The names of the live (not terminating) pods of the namespace, sorted.
    async fn pod_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| p.name_any())
            .collect();
        names.sort();
        names
    }

    async fn wait_pods(&self, expected: &[&str]) {
        eventually(&format!("pods {expected:?}"), 30, || async {
            (self.pod_names().await == expected).then_some(())
        })
        .await;
    }

    /// Asserts that the pods stay `expected` for a while (nothing more is created).
    async fn stays(&self, expected: &[&str]) {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            assert_eq!(self.pod_names().await, expected);
        }
    }

    async fn set_image(&self, name: &str, image: &str) {
        let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}});
        self.sets
            .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .unwrap();
    }

    async fn patch_spec(&self, name: &str, spec: serde_json::Value) {
        self.sets
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": spec })),
            )
            .await
            .unwrap();
    }

    async fn image_of(&self, pod: &str) -> String {
        self.pods.get(pod).await.unwrap().spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    }

    async fn wait_images(&self, expected: &[(&str, &str)]) {
        eventually(&format!("images {expected:?}"), 30, || async {
            for (pod, image) in expected {
                let pod = self.pods.get_opt(pod).await.unwrap()?;
                if pod.metadata.deletion_timestamp.is_some()
                    || pod.spec.unwrap().containers[0].image.as_deref() != Some(*image)
                {
                    return None;
                }
            }
            Some(())
        })
        .await;
    }

    async fn wait_status(&self, name: &str, check: impl Fn(&StatefulSet) -> bool) -> StatefulSet {
        eventually("the set's status", 30, || async {
            let set = self.sets.get(name).await.unwrap();
            check(&set).then_some(set)
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

    async fn revisions(&self) -> Vec<ControllerRevision> {
        let mut list = self.revisions.list(&ListParams::default()).await.unwrap().items;
        list.sort_by_key(|r| r.revision);
        list
    }
}

fn status(set: &StatefulSet) -> k8s_openapi::api::apps::v1::StatefulSetStatus {
    set.status.clone().unwrap_or_default()
}

fn complete(set: &StatefulSet, replicas: i32) -> bool {
    let s = status(set);
    s.replicas == replicas
        && s.ready_replicas == Some(replicas)
        && s.available_replicas == Some(replicas)
        && s.updated_replicas == Some(replicas)
        && s.current_replicas == Some(replicas)
        && s.current_revision.is_some()
        && s.current_revision == s.update_revision
        && s.observed_generation == set.metadata.generation
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_ready_creates_in_order_and_removes_in_reverse() {
    let env = env("ordered").await;
    env.create(&stateful_set("web", 3, serde_json::json!({}))).await;
    // One pod at a time: web-1 waits until web-0 is Running and Ready.
    env.wait_pods(&["web-0"]).await;
    env.stays(&["web-0"]).await;
    kubelet::mark_ready(&env.pods, "web-0").await;
    env.wait_pods(&["web-0", "web-1"]).await;
    env.stays(&["web-0", "web-1"]).await;
    kubelet::mark_ready(&env.pods, "web-1").await;
    env.wait_pods(&["web-0", "web-1", "web-2"]).await;
    kubelet::mark_ready(&env.pods, "web-2").await;
    let set = env.wait_status("web", |s| complete(s, 3)).await;
    assert_eq!(status(&set).collision_count, Some(0));

    // The identity of each pod.
    let pod = env.pods.get("web-1").await.unwrap();
    let labels = pod.labels();
    assert_eq!(labels["statefulset.kubernetes.io/pod-name"], "web-1");
    assert_eq!(labels["apps.kubernetes.io/pod-index"], "1");
    assert_eq!(
        labels["controller-revision-hash"],
        status(&set).update_revision.unwrap()
    );
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
    let spec = pod.spec.unwrap();
    assert_eq!(spec.hostname.as_deref(), Some("web-1"));
    assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
    let owner = &pod.metadata.owner_references.unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("StatefulSet", "web"));
    assert_eq!(owner.controller, Some(true));

    // One revision, named by its hash, labelled with the template labels.
    let revisions = env.revisions().await;
    assert_eq!(revisions.len(), 1);
    let revision = &revisions[0];
    assert_eq!(revision.revision, 1);
    let hash = &revision.labels()["controller.kubernetes.io/hash"];
    assert_eq!(revision.name_any(), format!("web-{hash}"));
    assert_eq!(revision.labels()["app"], "web");
    let data = revision.data.as_ref().unwrap().0.clone();
    assert_eq!(data["spec"]["template"]["$patch"], "replace");
    assert_eq!(
        data["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1"
    );

    // Scale down: the highest ordinal goes first, and only while the others are healthy.
    env.patch_spec("web", serde_json::json!({"replicas": 1})).await;
    env.wait_pods(&["web-0"]).await;
    env.wait_status("web", |s| complete(s, 1)).await;
    assert_eq!(
        env.events("SuccessfulCreate").await,
        [
            "Create Pod web-0 in StatefulSet web successful",
            "Create Pod web-1 in StatefulSet web successful",
            "Create Pod web-2 in StatefulSet web successful",
        ]
    );
    assert_eq!(
        env.events("SuccessfulDelete").await,
        [
            "Delete Pod web-2 in StatefulSet web successful",
            "Delete Pod web-1 in StatefulSet web successful",
        ]
    );
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_down_halts_on_an_unhealthy_pod() {
    let env = env("halt").await;
    let kubelet = Kubelet::start(env.cluster.client.clone(), "halt");
    env.create(&stateful_set("web", 3, serde_json::json!({}))).await;
    env.wait_status("web", |s| complete(s, 3)).await;
    kubelet.set(false);
    // web-0 becomes unready: nothing is removed while a lower pod is unhealthy.
    let patch = serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    env.pods
        .patch_status("web-0", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    env.wait_status("web", |s| status(s).ready_replicas == Some(2))
        .await;
    env.patch_spec("web", serde_json::json!({"replicas": 1})).await;
    env.stays(&["web-0", "web-1", "web-2"]).await;
    kubelet.set(true);
    env.wait_pods(&["web-0"]).await;
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_creates_and_removes_at_once_from_start_ordinal() {
    let env = env("parallel").await;
    env.create(&stateful_set(
        "db",
        3,
        serde_json::json!({"spec": {"podManagementPolicy": "Parallel", "ordinals": {"start": 5}}}),
    ))
    .await;
    // No pod is ready, yet all are created.
    env.wait_pods(&["db-5", "db-6", "db-7"]).await;
    env.wait_status("db", |s| {
        status(s).replicas == 3 && status(s).ready_replicas.is_none()
    })
    .await;
    env.patch_spec("db", serde_json::json!({"replicas": 1})).await;
    env.wait_pods(&["db-5"]).await;
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_update_goes_down_from_the_partition() {
    let env = env("rolling").await;
    let _kubelet = Kubelet::start(env.cluster.client.clone(), "rolling");
    env.create(&stateful_set(
        "web",
        3,
        serde_json::json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}}),
    ))
    .await;
    let before = env.wait_status("web", |s| complete(s, 3)).await;
    let first = status(&before).current_revision.unwrap();
    env.set_image("web", "nginx:2").await;
    // Only ordinals at or above the partition are updated.
    env.wait_images(&[("web-2", "nginx:2")]).await;
    let set = env
        .wait_status("web", |s| {
            let st = status(s);
            st.updated_replicas == Some(1) && st.ready_replicas == Some(3)
        })
        .await;
    let st = status(&set);
    assert_eq!(st.current_revision.as_deref(), Some(first.as_str()));
    assert_ne!(st.update_revision, st.current_revision);
    assert_eq!(st.current_replicas, Some(2));
    env.stays(&["web-0", "web-1", "web-2"]).await;
    assert_eq!(env.image_of("web-0").await, "nginx:1");
    assert_eq!(env.image_of("web-1").await, "nginx:1");

    env.patch_spec(
        "web",
        serde_json::json!({"updateStrategy": {"rollingUpdate": {"partition": 0}}}),
    )
    .await;
    let set = env.wait_status("web", |s| complete(s, 3)).await;
    env.wait_images(&[("web-0", "nginx:2"), ("web-1", "nginx:2"), ("web-2", "nginx:2")])
        .await;
    let st = status(&set);
    assert_ne!(st.current_revision.as_deref(), Some(first.as_str()));
    // Replaced from the highest ordinal down.
    assert_eq!(
        env.events("SuccessfulDelete").await,
        [
            "Delete Pod web-2 in StatefulSet web successful",
            "Delete Pod web-1 in StatefulSet web successful",
            "Delete Pod web-0 in StatefulSet web successful",
        ]
    );
    let revisions = env.revisions().await;
    let numbers: Vec<i64> = revisions.iter().map(|r| r.revision).collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(revisions[1].name_any(), st.update_revision.clone().unwrap());

    // Back to the first template: the old revision is renumbered, not duplicated.
    env.set_image("web", "nginx:1").await;
    env.wait_images(&[("web-0", "nginx:1"), ("web-1", "nginx:1"), ("web-2", "nginx:1")])
        .await;
    let set = env.wait_status("web", |s| complete(s, 3)).await;
    assert_eq!(status(&set).current_revision.as_deref(), Some(first.as_str()));
    let revisions = env.revisions().await;
    let numbered: Vec<(String, i64)> = revisions.iter().map(|r| (r.name_any(), r.revision)).collect();
    assert_eq!(numbered.len(), 2);
    assert_eq!(numbered[1], (first, 3));
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_waits_for_pods_to_be_deleted() {
    let env = env("ondelete").await;
    let _kubelet = Kubelet::start(env.cluster.client.clone(), "ondelete");
    env.create(&stateful_set(
        "web",
        2,
        serde_json::json!({"spec": {"updateStrategy": {"type": "OnDelete"}}}),
    ))
    .await;
    env.wait_status("web", |s| complete(s, 2)).await;
    env.set_image("web", "nginx:2").await;
    env.wait_status("web", |s| {
        let st = status(s);
        st.update_revision != st.current_revision && s.metadata.generation == st.observed_generation
    })
    .await;
    env.stays(&["web-0", "web-1"]).await;
    assert_eq!(env.image_of("web-1").await, "nginx:1");
    env.pods.delete("web-1", &DeleteParams::default()).await.unwrap();
    env.wait_images(&[("web-1", "nginx:2")]).await;
    assert_eq!(env.image_of("web-0").await, "nginx:1");
    let set = env
        .wait_status("web", |s| {
            status(s).updated_replicas == Some(1) && status(s).ready_replicas == Some(2)
        })
        .await;
    assert_eq!(status(&set).current_replicas, Some(1));
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_pods_are_replaced() {
    let env = env("failed").await;
    let _kubelet = Kubelet::start(env.cluster.client.clone(), "failed");
    env.create(&stateful_set("web", 2, serde_json::json!({}))).await;
    env.wait_status("web", |s| complete(s, 2)).await;
    let old = env.pods.get("web-1").await.unwrap().metadata.uid.unwrap();
    let patch = serde_json::json!({"status": {"phase": "Failed"}});
    env.pods
        .patch_status("web-1", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    eventually("web-1 replaced", 30, || async {
        let pod = env.pods.get_opt("web-1").await.unwrap()?;
        (pod.metadata.uid.as_deref() != Some(old.as_str())).then_some(())
    })
    .await;
    env.wait_status("web", |s| complete(s, 2)).await;
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_created_before_pods_and_owned_per_retention_policy() {
    let env = env("claims").await;
    let _kubelet = Kubelet::start(env.cluster.client.clone(), "claims");
    env.create(&stateful_set(
        "web",
        2,
        serde_json::json!({"spec": {
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
            "volumeClaimTemplates": [{
                "metadata": {"name": "www", "labels": {"tier": "storage"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
            }]
        }}),
    ))
    .await;
    env.wait_status("web", |s| complete(s, 2)).await;
    let set = env.sets.get("web").await.unwrap();
    let set_uid = set.metadata.uid.clone().unwrap();
    for ordinal in 0..2 {
        let claim = env.claims.get(&format!("www-web-{ordinal}")).await.unwrap();
        let labels: BTreeMap<String, String> = claim.labels().clone();
        assert_eq!(labels["app"], "web");
        assert_eq!(labels["tier"], "storage");
        let pod = env.pods.get(&format!("web-{ordinal}")).await.unwrap();
        let volume = pod
            .spec
            .unwrap()
            .volumes
            .unwrap()
            .into_iter()
            .find(|v| v.name == "www")
            .unwrap();
        assert_eq!(
            volume.persistent_volume_claim.unwrap().claim_name,
            format!("www-web-{ordinal}")
        );
    }
    // While in range, a claim is owned by the set (whenDeleted: Delete).
    let owners = |claim: PersistentVolumeClaim| -> Vec<(String, String, Option<bool>)> {
        claim
            .metadata
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.kind, r.uid, r.controller))
            .collect()
    };
    eventually("claims owned by the set", 30, || async {
        let claim = env.claims.get("www-web-1").await.unwrap();
        (owners(claim) == [("StatefulSet".to_owned(), set_uid.clone(), Some(true))]).then_some(())
    })
    .await;
    assert_eq!(
        env.events("SuccessfulCreate").await[..2],
        [
            "Create Claim www-web-0 Pod web-0 in StatefulSet web success",
            "Create Pod web-0 in StatefulSet web successful",
        ]
    );
    // Scaled down (whenScaled: Delete), the claim is handed to its pod before the pod goes,
    // so the garbage collector removes it with the pod.
    let pod_uid = env.pods.get("web-1").await.unwrap().metadata.uid.unwrap();
    env.patch_spec("web", serde_json::json!({"replicas": 1})).await;
    env.wait_pods(&["web-0"]).await;
    let claim = env.claims.get("www-web-1").await.unwrap();
    assert_eq!(owners(claim), [("Pod".to_owned(), pod_uid, Some(true))]);
    let claim = env.claims.get("www-web-0").await.unwrap();
    assert_eq!(owners(claim), [("StatefulSet".to_owned(), set_uid, Some(true))]);
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_pruned_to_the_limit() {
    let env = env("history").await;
    let _kubelet = Kubelet::start(env.cluster.client.clone(), "history");
    env.create(&stateful_set(
        "web",
        1,
        serde_json::json!({"spec": {"revisionHistoryLimit": 1}}),
    ))
    .await;
    env.wait_status("web", |s| complete(s, 1)).await;
    for image in ["nginx:2", "nginx:3", "nginx:4"] {
        env.set_image("web", image).await;
        env.wait_images(&[("web-0", image)]).await;
        env.wait_status("web", |s| {
            complete(s, 1) && s.metadata.generation == status(s).observed_generation
        })
        .await;
    }
    // The live revision and one more.
    let revisions = eventually("pruned history", 30, || async {
        let revisions = env.revisions().await;
        (revisions.len() == 2).then_some(revisions)
    })
    .await;
    let numbers: Vec<i64> = revisions.iter().map(|r| r.revision).collect();
    assert_eq!(numbers, [3, 4]);
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_ready_seconds_holds_the_next_pod_until_available() {
    let env = env("minready").await;
    let _kubelet = Kubelet::start(env.cluster.client.clone(), "minready");
    env.create(&stateful_set(
        "web",
        2,
        serde_json::json!({"spec": {"minReadySeconds": 2}}),
    ))
    .await;
    env.wait_status("web", |s| {
        let st = status(s);
        st.ready_replicas == Some(1) && st.available_replicas == Some(0)
    })
    .await;
    // Ready but not yet available: web-1 waits.
    assert_eq!(env.pod_names().await, ["web-0"]);
    env.wait_pods(&["web-0", "web-1"]).await;
    let set = env.wait_status("web", |s| complete(s, 2)).await;
    let ready_since = |pod: &Pod| {
        pod.status
            .as_ref()
            .unwrap()
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap()
            .last_transition_time
            .clone()
            .unwrap()
            .0
    };
    let first = env.pods.get("web-0").await.unwrap();
    let second = env.pods.get("web-1").await.unwrap();
    let created = second.metadata.creation_timestamp.unwrap().0;
    assert!(
        created.duration_since(ready_since(&first)).as_secs() >= 2,
        "web-1 created before web-0 was available"
    );
    assert_eq!(status(&set).available_replicas, Some(2));
    env.cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_stateful_set_writes_nothing() {
    let env = env("idle").await;
    let _kubelet = Kubelet::start(env.cluster.client.clone(), "idle");
    env.create(&stateful_set(
        "web",
        2,
        serde_json::json!({"spec": {"volumeClaimTemplates": [{
            "metadata": {"name": "www"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
        }]}}),
    ))
    .await;
    env.wait_status("web", |s| complete(s, 2)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let versions = || async {
        let mut all = BTreeMap::new();
        for s in env.sets.list(&ListParams::default()).await.unwrap().items {
            all.insert(format!("sts/{}", s.name_any()), s.resource_version().unwrap());
        }
        for p in env.pods.list(&ListParams::default()).await.unwrap().items {
            all.insert(format!("pod/{}", p.name_any()), p.resource_version().unwrap());
        }
        for c in env.claims.list(&ListParams::default()).await.unwrap().items {
            all.insert(format!("pvc/{}", c.name_any()), c.resource_version().unwrap());
        }
        for r in env.revisions.list(&ListParams::default()).await.unwrap().items {
            all.insert(format!("rev/{}", r.name_any()), r.resource_version().unwrap());
        }
        all
    };
    let before = versions().await;
    assert_eq!(before.len(), 1 + 2 + 2 + 1, "{before:?}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(versions().await, before, "an idle stateful set changed something");
    env.cluster.stop().await;
}
