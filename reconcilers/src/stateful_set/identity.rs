//! A StatefulSet pod's identity and storage (upstream: stateful_set_utils.go): ordinals parsed
//! from names, pod and claim names, the identity labels, hostname and subdomain, the claims
//! of volumeClaimTemplates, the owner references the PVC retention policy asks for, and
//! readiness as the controller counts it. Pure: no I/O.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

use crate::harness::ReconcileError;
use crate::pods;

/// The label naming a pod's StatefulSet identity.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The label holding a pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// The label holding the revision a pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";

const RETAIN: &str = "Retain";
const DELETE: &str = "Delete";

/// The parent name and ordinal in a pod name `<parent>-<ordinal>` (upstream's regexp
/// `(.*)-([0-9]+)$`), or `None` when the name has no ordinal that fits an int32.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, i64)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let ordinal: i32 = digits.parse().ok()?;
    Some((parent, i64::from(ordinal)))
}

/// The pod's ordinal, -1 when it has none.
pub fn ordinal(pod: &Pod) -> i64 {
    pod.metadata
        .name
        .as_deref()
        .and_then(parent_and_ordinal)
        .map_or(-1, |(_, o)| o)
}

fn set_name(set: &StatefulSet) -> &str {
    set.metadata.name.as_deref().unwrap_or("")
}

/// `spec.replicas` (default 1).
pub fn replicas(set: &StatefulSet) -> i64 {
    i64::from(set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))
}

/// The first ordinal (`spec.ordinals.start`, default 0).
pub fn start_ordinal(set: &StatefulSet) -> i64 {
    i64::from(
        set.spec
            .as_ref()
            .and_then(|s| s.ordinals.as_ref())
            .and_then(|o| o.start)
            .unwrap_or(0),
    )
}

/// The last ordinal (inclusive).
pub fn end_ordinal(set: &StatefulSet) -> i64 {
    start_ordinal(set) + replicas(set) - 1
}

/// Whether the pod's ordinal is one the set keeps.
pub fn in_ordinal_range(pod: &Pod, set: &StatefulSet) -> bool {
    let o = ordinal(pod);
    o >= start_ordinal(set) && o <= end_ordinal(set)
}

/// `<set>-<ordinal>`.
pub fn pod_name(set: &StatefulSet, ordinal: i64) -> String {
    format!("{}-{ordinal}", set_name(set))
}

/// `<claim>-<set>-<ordinal>`.
pub fn claim_name(set: &StatefulSet, claim: &PersistentVolumeClaim, ordinal: i64) -> String {
    format!(
        "{}-{}-{ordinal}",
        claim.metadata.name.as_deref().unwrap_or(""),
        set_name(set)
    )
}

/// Whether the pod's name makes it a member of the set.
pub fn is_member_of(set: &StatefulSet, pod: &Pod) -> bool {
    pod.metadata
        .name
        .as_deref()
        .and_then(parent_and_ordinal)
        .is_some_and(|(parent, _)| parent == set_name(set))
}

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// Upstream's identityMatches.
pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let Some((parent, o)) = pod.metadata.name.as_deref().and_then(parent_and_ordinal) else {
        return false;
    };
    let name = pod.metadata.name.as_deref().unwrap_or("");
    parent == set_name(set)
        && name == pod_name(set, o)
        && pod.metadata.namespace == set.metadata.namespace
        && label(pod, POD_NAME_LABEL) == Some(name)
}

fn claim_templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
    set.spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_deref())
        .unwrap_or(&[])
}

/// Upstream's storageMatches: the pod mounts every claim of the templates under its name.
pub fn storage_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let o = ordinal(pod);
    if o < 0 {
        return false;
    }
    let volumes: BTreeMap<&str, &Volume> = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .map(|v| (v.name.as_str(), v))
        .collect();
    claim_templates(set).iter().all(|claim| {
        let name = claim.metadata.name.as_deref().unwrap_or("");
        volumes
            .get(name)
            .and_then(|v| v.persistent_volume_claim.as_ref())
            .is_some_and(|c| c.claim_name == claim_name(set, claim, o))
    })
}

/// Upstream's getPersistentVolumeClaims: the claims of the pod's ordinal, keyed by template
/// name, in template order. Their labels are the template's plus the selector's matchLabels.
pub fn claims_for(set: &StatefulSet, pod_ordinal: i64) -> Vec<(String, PersistentVolumeClaim)> {
    let match_labels = set
        .spec
        .as_ref()
        .and_then(|s| s.selector.match_labels.clone())
        .unwrap_or_default();
    claim_templates(set)
        .iter()
        .map(|template| {
            let mut claim = template.clone();
            claim.metadata.name = Some(claim_name(set, template, pod_ordinal));
            claim.metadata.namespace = set.metadata.namespace.clone();
            let mut labels = claim.metadata.labels.take().unwrap_or_default();
            labels.extend(match_labels.clone());
            claim.metadata.labels = (!labels.is_empty()).then_some(labels);
            (template.metadata.name.clone().unwrap_or_default(), claim)
        })
        .collect()
}

/// Upstream's updateStorage: the claims' volumes first, then the pod's other volumes.
pub fn update_storage(set: &StatefulSet, pod: &mut Pod) {
    let claims = claims_for(set, ordinal(pod));
    if claims.is_empty() {
        return;
    }
    let spec = pod.spec.get_or_insert_with(Default::default);
    let current = spec.volumes.take().unwrap_or_default();
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(name, claim)| Volume {
            name: name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.metadata.name.clone().unwrap_or_default(),
                read_only: None,
            }),
            ..Volume::default()
        })
        .collect();
    volumes.extend(
        current
            .into_iter()
            .filter(|v| !claims.iter().any(|(name, _)| *name == v.name)),
    );
    spec.volumes = Some(volumes);
}

/// Upstream's updateIdentity: name, namespace and the identity labels.
pub fn update_identity(set: &StatefulSet, pod: &mut Pod) {
    let o = ordinal(pod);
    let name = pod_name(set, o);
    pod.metadata.name = Some(name.clone());
    pod.metadata.namespace = set.metadata.namespace.clone();
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.into(), name);
    labels.insert(POD_INDEX_LABEL.into(), o.to_string());
}

/// Upstream's newStatefulSetPod at `revision`: the template's pod with the ordinal's identity,
/// hostname, subdomain and claims.
pub fn new_pod(set: &StatefulSet, ordinal: i64, revision: &str) -> Result<Pod, ReconcileError> {
    let spec = set
        .spec
        .as_ref()
        .ok_or_else(|| ReconcileError::Invalid("the StatefulSet has no spec".into()))?;
    let namespace = set.metadata.namespace.clone().unwrap_or_default();
    let mut pod = pods::pod_from_template(
        &spec.template,
        &namespace,
        set_name(set),
        pods::controller_ref(set),
    )?;
    pod.metadata.name = Some(pod_name(set, ordinal));
    update_identity(set, &mut pod);
    let pod_spec = pod.spec.get_or_insert_with(Default::default);
    pod_spec.hostname = pod.metadata.name.clone();
    pod_spec.subdomain = spec.service_name.clone().filter(|s| !s.is_empty());
    update_storage(set, &mut pod);
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(REVISION_LABEL.into(), revision.to_owned());
    Ok(pod)
}

/// The revision label of a pod ("" without one).
pub fn pod_revision(pod: &Pod) -> &str {
    label(pod, REVISION_LABEL).unwrap_or("")
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// Whether the API server holds the pod (it has a phase).
pub fn is_created(pod: &Pod) -> bool {
    !phase(pod).is_empty()
}

/// Whether the pod is Pending.
pub fn is_pending(pod: &Pod) -> bool {
    phase(pod) == "Pending"
}

/// Whether the pod finished (Failed or Succeeded): it is replaced.
pub fn is_finished(pod: &Pod) -> bool {
    matches!(phase(pod), "Failed" | "Succeeded")
}

/// Whether the pod is being deleted.
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// Running and Ready.
pub fn is_running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && pods::is_ready(pod)
}

/// Upstream's isUnavailable: not available, or terminating.
pub fn is_unavailable(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    !pods::is_available(pod, min_ready_seconds, now) || is_terminating(pod)
}

/// The set's retention policy (whenDeleted, whenScaled), Retain when unset.
pub fn retention_policy(set: &StatefulSet) -> (&str, &str) {
    let policy = set
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    (
        policy.and_then(|p| p.when_deleted.as_deref()).unwrap_or(RETAIN),
        policy.and_then(|p| p.when_scaled.as_deref()).unwrap_or(RETAIN),
    )
}

/// Whether `when_scaled` is Delete.
pub fn deletes_when_scaled(set: &StatefulSet) -> bool {
    retention_policy(set).1 == DELETE
}

fn matches_ref(reference: &OwnerReference, name: Option<&str>, api_version: &str, kind: &str) -> bool {
    reference.api_version == api_version && reference.kind == kind && Some(reference.name.as_str()) == name
}

fn matches_set(reference: &OwnerReference, set: &StatefulSet) -> bool {
    matches_ref(reference, set.metadata.name.as_deref(), "apps/v1", "StatefulSet")
}

fn matches_pod(reference: &OwnerReference, pod: &Pod) -> bool {
    matches_ref(reference, pod.metadata.name.as_deref(), "v1", "Pod")
}

fn uid(meta: &ObjectMeta) -> &str {
    meta.uid.as_deref().unwrap_or("")
}

fn refs(claim: &PersistentVolumeClaim) -> &[OwnerReference] {
    claim.metadata.owner_references.as_deref().unwrap_or(&[])
}

fn has_owner_ref(claim: &PersistentVolumeClaim, owner: &ObjectMeta) -> bool {
    refs(claim).iter().any(|r| r.uid == uid(owner))
}

/// Upstream's hasStaleOwnerRef for the set or the pod.
fn has_stale_ref(
    claim: &PersistentVolumeClaim,
    matches: impl Fn(&OwnerReference) -> bool,
    owner: &ObjectMeta,
) -> bool {
    refs(claim)
        .iter()
        .find(|r| matches(r))
        .is_some_and(|r| r.uid != uid(owner))
}

/// Whether the claim has an owner reference to `pod` with another UID (a predecessor's).
pub fn has_stale_pod_ref(claim: &PersistentVolumeClaim, pod: &Pod) -> bool {
    has_stale_ref(claim, |r| matches_pod(r, pod), &pod.metadata)
}

/// Upstream's hasUnexpectedController.
pub fn has_unexpected_controller(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    let (deleted, scaled) = retention_policy(set);
    if deleted == RETAIN && scaled == RETAIN {
        return false;
    }
    for reference in refs(claim) {
        if matches_set(reference, set) {
            if reference.uid != uid(&set.metadata) {
                return true;
            }
            continue;
        }
        if matches_pod(reference, pod) {
            if reference.uid != uid(&pod.metadata) {
                return true;
            }
            continue;
        }
        if reference.controller == Some(true) {
            return true;
        }
    }
    false
}

fn has_non_controller_owner(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    refs(claim)
        .iter()
        .any(|r| (r.uid == uid(&set.metadata) || r.uid == uid(&pod.metadata)) && r.controller != Some(true))
}

/// Upstream's isClaimOwnerUpToDate.
pub fn claim_owner_up_to_date(claim: &PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) -> bool {
    if has_stale_ref(claim, |r| matches_set(r, set), &set.metadata) || has_stale_pod_ref(claim, pod) {
        return true;
    }
    if has_unexpected_controller(claim, set, pod) {
        return !(has_owner_ref(claim, &set.metadata) || has_owner_ref(claim, &pod.metadata));
    }
    if has_non_controller_owner(claim, set, pod) {
        return false;
    }
    let set_ref = has_owner_ref(claim, &set.metadata);
    let pod_ref = has_owner_ref(claim, &pod.metadata);
    let scaled_down = !in_ordinal_range(pod, set);
    match retention_policy(set) {
        (RETAIN, DELETE) => !set_ref && scaled_down == pod_ref,
        (DELETE, RETAIN) => set_ref && !pod_ref,
        (DELETE, DELETE) => scaled_down != set_ref && scaled_down == pod_ref,
        // Retain/Retain, and unknown policies treated as Retain.
        _ => !set_ref && !pod_ref,
    }
}

/// A controller reference to the pod (apiVersion v1, kind Pod).
fn pod_controller_ref(pod: &Pod) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: uid(&pod.metadata).to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Upstream's updateClaimOwnerRefForSetAndPod: the claim's owner references as the retention
/// policy wants them.
pub fn update_claim_owner_refs(claim: &mut PersistentVolumeClaim, set: &StatefulSet, pod: &Pod) {
    let unexpected = has_unexpected_controller(claim, set, pod);
    let mut references: Vec<OwnerReference> = refs(claim)
        .iter()
        .filter(|r| !matches_set(r, set) && !matches_pod(r, pod))
        .cloned()
        .collect();
    if !unexpected {
        let scaled_down = !in_ordinal_range(pod, set);
        let add = |references: &mut Vec<OwnerReference>, reference: OwnerReference| {
            if !references.iter().any(|r| r.uid == reference.uid) {
                references.push(reference);
            }
        };
        match retention_policy(set) {
            (DELETE, RETAIN) => add(&mut references, pods::controller_ref(set)),
            (RETAIN, DELETE) if scaled_down => add(&mut references, pod_controller_ref(pod)),
            (DELETE, DELETE) if scaled_down => add(&mut references, pod_controller_ref(pod)),
            (DELETE, DELETE) => add(&mut references, pods::controller_ref(set)),
            _ => {}
        }
    }
    claim.metadata.owner_references = (!references.is_empty()).then_some(references);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(policy: Option<(&str, &str)>) -> StatefulSet {
        let mut spec = serde_json::json!({
            "replicas": 2,
            "serviceName": "svc",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}],
                    "volumes": [{"name": "tmp", "emptyDir": {}}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "www", "labels": {"tier": "db"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]
        });
        if let Some((deleted, scaled)) = policy {
            spec["persistentVolumeClaimRetentionPolicy"] =
                serde_json::json!({"whenDeleted": deleted, "whenScaled": scaled});
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
            "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn ordinals_like_upstreams_regexp() {
        assert_eq!(parent_and_ordinal("web-0"), Some(("web", 0)));
        assert_eq!(parent_and_ordinal("my-web-12"), Some(("my-web", 12)));
        assert_eq!(parent_and_ordinal("web"), None);
        assert_eq!(parent_and_ordinal("web-x"), None);
        assert_eq!(parent_and_ordinal("web-99999999999"), None);
    }

    #[test]
    fn new_pods_carry_identity_and_claims() {
        let set = set(None);
        let pod = new_pod(&set, 1, "web-abc").unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web-1"));
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[POD_NAME_LABEL], "web-1");
        assert_eq!(labels[POD_INDEX_LABEL], "1");
        assert_eq!(labels[REVISION_LABEL], "web-abc");
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-1"));
        assert_eq!(spec.subdomain.as_deref(), Some("svc"));
        let volumes: Vec<_> = spec.volumes.iter().flatten().map(|v| v.name.as_str()).collect();
        assert_eq!(volumes, ["www", "tmp"]);
        assert!(identity_matches(&set, &pod));
        assert!(storage_matches(&set, &pod));
        let claims = claims_for(&set, 1);
        assert_eq!(claims[0].1.metadata.name.as_deref(), Some("www-web-1"));
        let claim_labels = claims[0].1.metadata.labels.as_ref().unwrap();
        assert_eq!(claim_labels["app"], "web");
        assert_eq!(claim_labels["tier"], "db");
    }

    #[test]
    fn claim_owners_follow_the_retention_policy() {
        let mut pod = new_pod(&set(None), 1, "r").unwrap();
        pod.metadata.uid = Some("pod-uid".into());
        let claim = || claims_for(&set(None), 1).remove(0).1;
        let owners = |policy: (&str, &str), replicas: i32| {
            let mut set = set(Some(policy));
            set.spec.as_mut().unwrap().replicas = Some(replicas);
            let mut claim = claim();
            update_claim_owner_refs(&mut claim, &set, &pod);
            assert!(claim_owner_up_to_date(&claim, &set, &pod));
            claim
                .metadata
                .owner_references
                .unwrap_or_default()
                .into_iter()
                .map(|r| r.kind)
                .collect::<Vec<_>>()
        };
        assert!(owners((RETAIN, RETAIN), 2).is_empty());
        assert_eq!(owners((DELETE, RETAIN), 2), ["StatefulSet"]);
        assert!(owners((RETAIN, DELETE), 2).is_empty());
        assert_eq!(owners((RETAIN, DELETE), 1), ["Pod"]);
        assert_eq!(owners((DELETE, DELETE), 2), ["StatefulSet"]);
        assert_eq!(owners((DELETE, DELETE), 1), ["Pod"]);
    }
}
