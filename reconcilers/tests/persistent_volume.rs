//! The persistent volume binder against a real API server: binding to the smallest matching
//! volume, pre-binding by `volumeName`, claims that match nothing, reclaim policies, and
//! WaitForFirstConsumer claims bound after the scheduler places their pod.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Cluster, eventually};
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const BINDER: &str = "persistentvolume-binder-controller";

fn volume(name: &str, size: &str, extra: serde_json::Value) -> PersistentVolume {
    let mut value = json!({
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": size},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": format!("/tmp/{name}")},
        },
    });
    merge(&mut value, extra);
    serde_json::from_value(value).unwrap()
}

fn claim(name: &str, size: &str, extra: serde_json::Value) -> PersistentVolumeClaim {
    let mut value = json!({
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": size}},
            "storageClassName": "",
        },
    });
    merge(&mut value, extra);
    serde_json::from_value(value).unwrap()
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    match (into, from) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

fn phase_of_claim(claim: &PersistentVolumeClaim) -> Option<String> {
    claim.status.as_ref()?.phase.clone()
}

fn phase_of_volume(volume: &PersistentVolume) -> Option<String> {
    volume.status.as_ref()?.phase.clone()
}

fn annotation(meta: &kube::api::ObjectMeta, key: &str) -> Option<String> {
    meta.annotations.as_ref()?.get(key).cloned()
}

async fn bound_claim(claims: &Api<PersistentVolumeClaim>, name: &str) -> PersistentVolumeClaim {
    eventually(&format!("claim {name} bound"), 30, || async {
        let claim = claims.get(name).await.unwrap();
        (phase_of_claim(&claim).as_deref() == Some("Bound")).then_some(claim)
    })
    .await
}

async fn volume_in_phase(volumes: &Api<PersistentVolume>, name: &str, phase: &str) -> PersistentVolume {
    eventually(&format!("volume {name} {phase}"), 30, || async {
        let volume = volumes.get(name).await.unwrap();
        (phase_of_volume(&volume).as_deref() == Some(phase)).then_some(volume)
    })
    .await
}

/// Waits for an event about `name` with `reason` and returns its note.
async fn event_note(client: &kube::Client, namespace: &str, name: &str, reason: &str) -> String {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    eventually(&format!("{reason} event for {name}"), 30, || async {
        let list = events.list(&ListParams::default()).await.unwrap().items;
        list.into_iter()
            .find(|e| {
                e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                    && e.reason.as_deref() == Some(reason)
            })
            .and_then(|e| e.note)
    })
    .await
}

#[tokio::test]
async fn claims_bind_to_the_smallest_matching_volume() {
    let cluster = Cluster::start(&[BINDER]).await;
    let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), "default");
    let pp = PostParams::default();
    volumes
        .create(&pp, &volume("big", "10Gi", json!({})))
        .await
        .unwrap();
    volumes
        .create(&pp, &volume("small", "1Gi", json!({})))
        .await
        .unwrap();
    volumes
        .create(&pp, &volume("tiny", "100Mi", json!({})))
        .await
        .unwrap();
    volume_in_phase(&volumes, "tiny", "Available").await;
    let created = claims
        .create(&pp, &claim("data", "500Mi", json!({})))
        .await
        .unwrap();

    let bound = bound_claim(&claims, "data").await;
    let spec = bound.spec.as_ref().unwrap();
    assert_eq!(spec.volume_name.as_deref(), Some("small"));
    assert_eq!(
        annotation(&bound.metadata, "pv.kubernetes.io/bind-completed").as_deref(),
        Some("yes")
    );
    assert_eq!(
        annotation(&bound.metadata, "pv.kubernetes.io/bound-by-controller").as_deref(),
        Some("yes")
    );
    let status = bound.status.as_ref().unwrap();
    assert_eq!(status.capacity.as_ref().unwrap()["storage"].0, "1Gi");
    assert_eq!(
        status.access_modes.as_deref(),
        Some(&["ReadWriteOnce".to_owned()][..])
    );

    let small = volume_in_phase(&volumes, "small", "Bound").await;
    let reference = small.spec.as_ref().unwrap().claim_ref.as_ref().unwrap();
    assert_eq!(reference.kind.as_deref(), Some("PersistentVolumeClaim"));
    assert_eq!(reference.namespace.as_deref(), Some("default"));
    assert_eq!(reference.name.as_deref(), Some("data"));
    assert_eq!(reference.uid, created.metadata.uid);
    assert_eq!(
        annotation(&small.metadata, "pv.kubernetes.io/bound-by-controller").as_deref(),
        Some("yes")
    );
    assert!(
        small
            .status
            .as_ref()
            .unwrap()
            .last_phase_transition_time
            .is_some()
    );
    assert_eq!(
        phase_of_volume(&volumes.get("big").await.unwrap()).as_deref(),
        Some("Available")
    );
    cluster.stop().await;
}

#[tokio::test]
async fn volume_name_and_claim_ref_prebind() {
    let cluster = Cluster::start(&[BINDER]).await;
    let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), "default");
    let pp = PostParams::default();
    volumes
        .create(&pp, &volume("small", "1Gi", json!({})))
        .await
        .unwrap();
    volumes
        .create(&pp, &volume("chosen", "5Gi", json!({})))
        .await
        .unwrap();
    volumes
        .create(
            &pp,
            &volume(
                "reserved",
                "5Gi",
                json!({"spec": {"claimRef": {"namespace": "default", "name": "owner"}}}),
            ),
        )
        .await
        .unwrap();
    volume_in_phase(&volumes, "reserved", "Available").await;

    // A claim naming its volume gets it, though a smaller one would fit.
    claims
        .create(
            &pp,
            &claim("named", "1Gi", json!({"spec": {"volumeName": "chosen"}})),
        )
        .await
        .unwrap();
    let named = bound_claim(&claims, "named").await;
    assert_eq!(named.spec.unwrap().volume_name.as_deref(), Some("chosen"));
    assert_eq!(
        annotation(&named.metadata, "pv.kubernetes.io/bound-by-controller"),
        None
    );
    let chosen = volume_in_phase(&volumes, "chosen", "Bound").await;
    assert_eq!(
        annotation(&chosen.metadata, "pv.kubernetes.io/bound-by-controller").as_deref(),
        Some("yes")
    );

    // A volume reserved for a claim goes to it and to no other.
    claims
        .create(&pp, &claim("other", "1Gi", json!({})))
        .await
        .unwrap();
    assert_eq!(
        bound_claim(&claims, "other")
            .await
            .spec
            .unwrap()
            .volume_name
            .as_deref(),
        Some("small")
    );
    claims
        .create(&pp, &claim("owner", "1Gi", json!({})))
        .await
        .unwrap();
    assert_eq!(
        bound_claim(&claims, "owner")
            .await
            .spec
            .unwrap()
            .volume_name
            .as_deref(),
        Some("reserved")
    );
    let reserved = volume_in_phase(&volumes, "reserved", "Bound").await;
    assert_eq!(
        annotation(&reserved.metadata, "pv.kubernetes.io/bound-by-controller"),
        None
    );
    assert!(reserved.spec.unwrap().claim_ref.unwrap().uid.is_some());

    // Naming a volume that does not satisfy the claim leaves it Pending with VolumeMismatch.
    volumes
        .create(&pp, &volume("tiny", "10Mi", json!({})))
        .await
        .unwrap();
    claims
        .create(
            &pp,
            &claim("greedy", "1Gi", json!({"spec": {"volumeName": "tiny"}})),
        )
        .await
        .unwrap();
    let note = event_note(&cluster.client, "default", "greedy", "VolumeMismatch").await;
    assert_eq!(
        note,
        "Cannot bind to requested volume \"tiny\": requested PV is too small"
    );
    assert_eq!(
        phase_of_claim(&claims.get("greedy").await.unwrap()).as_deref(),
        Some("Pending")
    );
    cluster.stop().await;
}

#[tokio::test]
async fn unmatched_claims_stay_pending_with_an_event() {
    let cluster = Cluster::start(&[BINDER]).await;
    let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), "default");
    let pp = PostParams::default();
    volumes
        .create(
            &pp,
            &volume("fast-1", "1Gi", json!({"spec": {"storageClassName": "fast"}})),
        )
        .await
        .unwrap();
    claims
        .create(&pp, &claim("plain", "1Gi", json!({})))
        .await
        .unwrap();
    let note = event_note(&cluster.client, "default", "plain", "FailedBinding").await;
    assert_eq!(
        note,
        "no persistent volumes available for this claim and no storage class is set"
    );
    assert_eq!(
        phase_of_claim(&claims.get("plain").await.unwrap()).as_deref(),
        Some("Pending")
    );
    assert_eq!(
        phase_of_volume(&volumes.get("fast-1").await.unwrap()).as_deref(),
        Some("Available")
    );

    // A class with an external provisioner gets the claim handed to it.
    let classes: Api<StorageClass> = Api::all(cluster.client.clone());
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": "ext"}, "provisioner": "example.com/csi", "volumeBindingMode": "Immediate",
    }))
    .unwrap();
    classes.create(&pp, &class).await.unwrap();
    claims
        .create(
            &pp,
            &claim("external", "1Gi", json!({"spec": {"storageClassName": "ext"}})),
        )
        .await
        .unwrap();
    let note = event_note(&cluster.client, "default", "external", "ExternalProvisioning").await;
    assert!(note.starts_with(
        "Waiting for a volume to be created either by the external provisioner 'example.com/csi'"
    ));
    let external = claims.get("external").await.unwrap();
    assert_eq!(
        annotation(&external.metadata, "volume.kubernetes.io/storage-provisioner").as_deref(),
        Some("example.com/csi")
    );

    // A matching volume appearing later is bound without any resync.
    volumes
        .create(&pp, &volume("plain-1", "2Gi", json!({})))
        .await
        .unwrap();
    assert_eq!(
        bound_claim(&claims, "plain")
            .await
            .spec
            .unwrap()
            .volume_name
            .as_deref(),
        Some("plain-1")
    );
    cluster.stop().await;
}

/// Deletes a claim, doing the PVC protection controller's part.
async fn delete_claim(claims: &Api<PersistentVolumeClaim>, name: &str) {
    claims.delete(name, &DeleteParams::default()).await.unwrap();
    let patch = json!({"metadata": {"finalizers": null}});
    let _ = claims
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await;
}

#[tokio::test]
async fn released_volumes_follow_their_reclaim_policy() {
    let cluster = Cluster::start(&[BINDER]).await;
    let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), "default");
    let pp = PostParams::default();
    volumes
        .create(
            &pp,
            &volume(
                "kept",
                "1Gi",
                json!({"spec": {"persistentVolumeReclaimPolicy": "Retain"}}),
            ),
        )
        .await
        .unwrap();
    claims
        .create(&pp, &claim("a", "1Gi", json!({"spec": {"volumeName": "kept"}})))
        .await
        .unwrap();
    bound_claim(&claims, "a").await;
    volume_in_phase(&volumes, "kept", "Bound").await;
    delete_claim(&claims, "a").await;
    let kept = volume_in_phase(&volumes, "kept", "Released").await;
    assert_eq!(kept.spec.unwrap().claim_ref.unwrap().name.as_deref(), Some("a"));

    // A released volume is not bound again.
    claims.create(&pp, &claim("b", "1Gi", json!({}))).await.unwrap();
    let note = event_note(&cluster.client, "default", "b", "FailedBinding").await;
    assert_eq!(
        note,
        "no persistent volumes available for this claim and no storage class is set"
    );

    volumes
        .create(
            &pp,
            &volume(
                "doomed",
                "1Gi",
                // ReadWriteMany only, so the still-pending claim b cannot take it before c does.
                json!({"spec": {"persistentVolumeReclaimPolicy": "Delete", "accessModes": ["ReadWriteMany"]}}),
            ),
        )
        .await
        .unwrap();
    claims
        .create(
            &pp,
            &claim(
                "c",
                "1Gi",
                json!({"spec": {"volumeName": "doomed", "accessModes": ["ReadWriteMany"]}}),
            ),
        )
        .await
        .unwrap();
    bound_claim(&claims, "c").await;
    delete_claim(&claims, "c").await;
    volume_in_phase(&volumes, "doomed", "Failed").await;
    let note = event_note(&cluster.client, "default", "doomed", "VolumeFailedDelete").await;
    assert_eq!(
        note,
        "error getting deleter volume plugin for volume \"doomed\": no volume plugin matched"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn wait_for_first_consumer_binds_on_the_pods_node() {
    let cluster = Cluster::start(&[BINDER, "scheduler", "nodelifecycle"]).await;
    let stop = tokio_util::sync::CancellationToken::new();
    let config = rudder_noded::simulated::Config {
        count: 3,
        ..rudder_noded::simulated::Config::default()
    };
    let _sim = rudder_noded::simulated::SimulatedNodes::start(cluster.client.clone(), config, stop.clone())
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let names: Vec<String> = eventually("three untainted nodes", 30, || async {
        let list = nodes.list(&ListParams::default()).await.unwrap().items;
        let ready: Vec<String> = list
            .iter()
            .filter(|n| {
                n.spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_none_or(Vec::is_empty)
            })
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        (ready.len() == 3).then_some(ready)
    })
    .await;
    let pp = PostParams::default();
    let classes: Api<StorageClass> = Api::all(cluster.client.clone());
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": "local"},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
    }))
    .unwrap();
    classes.create(&pp, &class).await.unwrap();
    let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
    // One local volume, on the second node only.
    let local = volume(
        "local-1",
        "1Gi",
        json!({"spec": {
            "storageClassName": "local",
            "hostPath": null,
            "local": {"path": "/mnt/disk1"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [names[1]]}
            ]}]}},
        }}),
    );
    volumes.create(&pp, &local).await.unwrap();
    volume_in_phase(&volumes, "local-1", "Available").await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), "default");
    claims
        .create(
            &pp,
            &claim(
                "local-data",
                "1Gi",
                json!({"spec": {"storageClassName": "local"}}),
            ),
        )
        .await
        .unwrap();
    let note = event_note(&cluster.client, "default", "local-data", "WaitForFirstConsumer").await;
    assert_eq!(note, "waiting for first consumer to be created before binding");
    assert_eq!(
        phase_of_claim(&claims.get("local-data").await.unwrap()).as_deref(),
        Some("Pending")
    );

    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "consumer"},
        "spec": {
            "containers": [{"name": "app", "image": "nginx"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "local-data"}}],
        },
    }))
    .unwrap();
    pods.create(&pp, &pod).await.unwrap();
    let node = eventually("consumer scheduled", 30, || async {
        pods.get("consumer").await.unwrap().spec?.node_name
    })
    .await;
    assert_eq!(node, names[1]);
    let bound = bound_claim(&claims, "local-data").await;
    assert_eq!(bound.spec.unwrap().volume_name.as_deref(), Some("local-1"));
    volume_in_phase(&volumes, "local-1", "Bound").await;

    // A pod whose claim is missing cannot be scheduled.
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "orphan"},
        "spec": {
            "containers": [{"name": "app", "image": "nginx"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "missing"}}],
        },
    }))
    .unwrap();
    pods.create(&pp, &orphan).await.unwrap();
    let note = event_note(&cluster.client, "default", "orphan", "FailedScheduling").await;
    assert!(
        note.starts_with("0/3 nodes are available: persistentvolumeclaim \"missing\" not found."),
        "{note}"
    );
    stop.cancel();
    cluster.stop().await;
}
