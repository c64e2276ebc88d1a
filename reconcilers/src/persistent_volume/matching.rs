//! The pure rules of volume binding shared by the binder controller and the scheduler
//! (upstream: component-helpers/storage/volume and the binder's `index.go`): the storage class
//! of a claim or volume, whether a volume is bound to a claim, access and volume mode checks,
//! volume node affinity, and the choice of the best matching volume (smallest capacity, from
//! the access-mode group with the fewest modes first). It does no I/O.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::scheduler::plugins::{node_term_matches, selector_matches};

/// The claim finished binding.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// The binding was made by the controller, not the user.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// The node the scheduler chose for a delayed-binding claim.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// The provisioner asked to provision the claim.
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// The deprecated form of [`ANN_STORAGE_PROVISIONER`], still set.
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// The provisioner that created a volume.
pub const ANN_DYNAMICALLY_PROVISIONED: &str = "pv.kubernetes.io/provisioned-by";
/// A volume migrated to a CSI driver.
pub const ANN_MIGRATED_TO: &str = "pv.kubernetes.io/migrated-to";
/// The deprecated storage class annotation, which wins over `storageClassName`.
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";
/// Marks the default storage class.
const DEFAULT_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";

fn annotation<'a>(annotations: Option<&'a BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    annotations?.get(key).map(String::as_str)
}

/// Whether the claim names a class at all (an empty name counts).
pub fn claim_has_class(claim: &PersistentVolumeClaim) -> bool {
    annotation(claim.metadata.annotations.as_ref(), BETA_STORAGE_CLASS).is_some()
        || claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_ref())
            .is_some()
}

/// The claim's class, `""` for none.
pub fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    annotation(claim.metadata.annotations.as_ref(), BETA_STORAGE_CLASS)
        .or_else(|| claim.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()))
        .unwrap_or("")
}

/// The volume's class, `""` for none.
pub fn volume_class(volume: &PersistentVolume) -> &str {
    annotation(volume.metadata.annotations.as_ref(), BETA_STORAGE_CLASS)
        .or_else(|| volume.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()))
        .unwrap_or("")
}

/// Whether the class is marked default.
pub fn is_default_class(class: &StorageClass) -> bool {
    let annotations = class.metadata.annotations.as_ref();
    annotation(annotations, DEFAULT_CLASS) == Some("true")
        || annotation(annotations, BETA_DEFAULT_CLASS) == Some("true")
}

/// The default class: of several, the newest, then the first by name (upstream's
/// `GetDefaultClass`).
pub fn default_class<'a>(classes: impl IntoIterator<Item = &'a StorageClass>) -> Option<&'a StorageClass> {
    classes
        .into_iter()
        .filter(|c| is_default_class(c))
        .max_by(|a, b| {
            a.metadata
                .creation_timestamp
                .cmp(&b.metadata.creation_timestamp)
                .then_with(|| b.metadata.name.cmp(&a.metadata.name))
        })
}

/// Whether a class delays binding until a pod is scheduled; an error when the class has no
/// binding mode.
pub fn is_delay_binding(class: Option<&StorageClass>) -> Result<bool, String> {
    let Some(class) = class else { return Ok(false) };
    match class.volume_binding_mode.as_deref() {
        None => Err(format!(
            "VolumeBindingMode not set for StorageClass {:?}",
            class.metadata.name.as_deref().unwrap_or("")
        )),
        Some(mode) => Ok(mode == "WaitForFirstConsumer"),
    }
}

/// The `namespace/name` key of a claim.
pub fn claim_key(claim: &PersistentVolumeClaim) -> String {
    format!(
        "{}/{}",
        claim.metadata.namespace.as_deref().unwrap_or(""),
        claim.metadata.name.as_deref().unwrap_or("")
    )
}

/// The volume's claim reference.
pub fn claim_ref(volume: &PersistentVolume) -> Option<&ObjectReference> {
    volume.spec.as_ref()?.claim_ref.as_ref()
}

/// Whether the volume is bound (or pre-bound, without a UID) to the claim.
pub fn is_bound_to(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(reference) = claim_ref(volume) else {
        return false;
    };
    if reference.name != claim.metadata.name || reference.namespace != claim.metadata.namespace {
        return false;
    }
    let uid = reference.uid.as_deref().unwrap_or("");
    uid.is_empty() || Some(uid) == claim.metadata.uid.as_deref()
}

/// The reference a volume keeps to its claim (as client-go's `GetReference`).
pub fn reference_to(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("PersistentVolumeClaim".to_owned()),
        name: claim.metadata.name.clone(),
        namespace: claim.metadata.namespace.clone(),
        uid: claim.metadata.uid.clone(),
        resource_version: claim.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// Whether the volume modes differ (absent means Filesystem).
pub fn volume_mode_mismatch(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    let claim_mode = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem");
    let volume_mode = volume
        .spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem");
    claim_mode != volume_mode
}

fn claim_modes(claim: &PersistentVolumeClaim) -> &[String] {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or(&[])
}

fn volume_modes(volume: &PersistentVolume) -> &[String] {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or(&[])
}

/// Whether the volume offers every access mode the claim asks for.
pub fn access_modes_match(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    let offered = volume_modes(volume);
    claim_modes(claim).iter().all(|m| offered.contains(m))
}

/// Bytes of a quantity (rounded up), for comparing sizes.
pub fn quantity_bytes(quantity: &Quantity) -> Option<f64> {
    let text = quantity.0.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let multiplier = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => 10f64.powi(exponent.strip_prefix(['e', 'E'])?.parse().ok()?),
    };
    Some((number * multiplier).ceil())
}

/// The storage the claim requests, in bytes (0 when unset).
pub fn requested_bytes(claim: &PersistentVolumeClaim) -> f64 {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(quantity_bytes)
        .unwrap_or(0.0)
}

/// The volume's capacity, in bytes (0 when unset).
pub fn capacity_bytes(volume: &PersistentVolume) -> f64 {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.capacity.as_ref())
        .and_then(|c| c.get("storage"))
        .and_then(quantity_bytes)
        .unwrap_or(0.0)
}

/// Whether the volume's required node affinity admits a node with these labels and name.
pub fn node_affinity_admits(
    volume: &PersistentVolume,
    labels: Option<&BTreeMap<String, String>>,
    name: &str,
) -> bool {
    let Some(required) = volume
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    else {
        return true;
    };
    required
        .node_selector_terms
        .iter()
        .any(|t| node_term_matches(t, |key| labels.and_then(|l| l.get(key)).map(String::as_str), name))
}

/// A node volumes are matched against: its labels and name.
pub struct NodeView<'a> {
    pub name: &'a str,
    pub labels: Option<&'a BTreeMap<String, String>>,
}

/// Upstream's `FindMatchingVolume` over one group of volumes: a volume pre-bound to the claim
/// wins (unless its node affinity rejects the node), else the smallest available one that
/// fits. Without a node, delayed binding matches only pre-bound volumes.
pub fn find_matching<'a>(
    claim: &PersistentVolumeClaim,
    volumes: impl IntoIterator<Item = &'a PersistentVolume>,
    node: Option<&NodeView<'_>>,
    excluded: &BTreeSet<String>,
    delay_binding: bool,
) -> Option<&'a PersistentVolume> {
    let requested = requested_bytes(claim);
    let class = claim_class(claim);
    let claim_vac = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_attributes_class_name.as_deref())
        .unwrap_or("");
    let selector = claim.spec.as_ref().and_then(|s| s.selector.as_ref());
    let mut smallest: Option<(&PersistentVolume, f64)> = None;
    for volume in volumes {
        if volume
            .metadata
            .name
            .as_ref()
            .is_some_and(|n| excluded.contains(n))
        {
            continue;
        }
        if claim_ref(volume).is_some() && !is_bound_to(volume, claim) {
            continue;
        }
        let capacity = capacity_bytes(volume);
        if capacity < requested || volume_mode_mismatch(claim, volume) {
            continue;
        }
        let volume_vac = volume
            .spec
            .as_ref()
            .and_then(|s| s.volume_attributes_class_name.as_deref())
            .unwrap_or("");
        if claim_vac != volume_vac || volume.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let affinity_ok = node.is_none_or(|n| node_affinity_admits(volume, n.labels, n.name));
        if is_bound_to(volume, claim) {
            return affinity_ok.then_some(volume);
        }
        if node.is_none() && delay_binding {
            continue;
        }
        let phase = volume.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase != Some("Available") {
            continue;
        }
        if selector.is_some_and(|s| !selector_matches(Some(s), volume.metadata.labels.as_ref())) {
            continue;
        }
        if volume_class(volume) != class || !affinity_ok {
            continue;
        }
        if node.is_some() && !access_modes_match(claim, volume) {
            continue;
        }
        if smallest.is_none_or(|(_, size)| size > capacity) {
            smallest = Some((volume, capacity));
        }
    }
    smallest.map(|(v, _)| v)
}

/// Upstream's `findBestMatchForClaim`: volumes grouped by their set of access modes; the
/// groups offering every requested mode are searched, fewest modes first.
pub fn find_best_match<'a>(
    claim: &PersistentVolumeClaim,
    volumes: &'a [impl AsRef<PersistentVolume>],
    node: Option<&NodeView<'_>>,
    excluded: &BTreeSet<String>,
    delay_binding: bool,
) -> Option<&'a PersistentVolume> {
    let mut groups: BTreeMap<BTreeSet<&str>, Vec<&PersistentVolume>> = BTreeMap::new();
    for volume in volumes {
        let volume = volume.as_ref();
        let modes: BTreeSet<&str> = volume_modes(volume).iter().map(String::as_str).collect();
        groups.entry(modes).or_default().push(volume);
    }
    let wanted = claim_modes(claim);
    let mut candidates: Vec<(&BTreeSet<&str>, &Vec<&PersistentVolume>)> = groups
        .iter()
        .filter(|(modes, _)| wanted.iter().all(|m| modes.contains(m.as_str())))
        .collect();
    candidates.sort_by_key(|(modes, _)| modes.len());
    candidates
        .into_iter()
        .find_map(|(_, group)| find_matching(claim, group.iter().copied(), node, excluded, delay_binding))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn volume(name: &str, size: &str, modes: &[&str], extra: serde_json::Value) -> PersistentVolume {
        let mut value = json!({
            "metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": modes, "hostPath": {"path": "/tmp"}},
            "status": {"phase": "Available"},
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

    fn claim(size: &str, modes: &[&str], extra: serde_json::Value) -> PersistentVolumeClaim {
        let mut value = json!({
            "metadata": {"name": "c", "namespace": "default", "uid": "u1"},
            "spec": {"accessModes": modes, "resources": {"requests": {"storage": size}}, "storageClassName": ""},
        });
        merge(&mut value, extra);
        serde_json::from_value(value).unwrap()
    }

    fn best(claim: &PersistentVolumeClaim, volumes: &[PersistentVolume]) -> Option<String> {
        let volumes: Vec<std::sync::Arc<PersistentVolume>> =
            volumes.iter().cloned().map(std::sync::Arc::new).collect();
        find_best_match(claim, &volumes, None, &BTreeSet::new(), false).and_then(|v| v.metadata.name.clone())
    }

    #[test]
    fn smallest_fitting_volume_of_the_narrowest_mode_group() {
        let volumes = [
            volume("big", "10Gi", &["ReadWriteOnce"], json!({})),
            volume("small", "1Gi", &["ReadWriteOnce"], json!({})),
            volume("tiny", "500Mi", &["ReadWriteOnce"], json!({})),
            volume("rwx", "1Gi", &["ReadWriteOnce", "ReadWriteMany"], json!({})),
        ];
        assert_eq!(
            best(&claim("1G", &["ReadWriteOnce"], json!({})), &volumes).as_deref(),
            Some("small")
        );
        assert_eq!(
            best(&claim("1G", &["ReadWriteMany"], json!({})), &volumes).as_deref(),
            Some("rwx")
        );
        assert_eq!(
            best(&claim("20Gi", &["ReadWriteOnce"], json!({})), &volumes),
            None
        );
    }

    #[test]
    fn class_selector_mode_and_prebinding() {
        let volumes = [
            volume(
                "fast",
                "1Gi",
                &["ReadWriteOnce"],
                json!({"spec": {"storageClassName": "fast"}}),
            ),
            volume(
                "labelled",
                "2Gi",
                &["ReadWriteOnce"],
                json!({"metadata": {"labels": {"tier": "gold"}}}),
            ),
            volume(
                "block",
                "1Gi",
                &["ReadWriteOnce"],
                json!({"spec": {"volumeMode": "Block"}}),
            ),
            volume(
                "reserved",
                "5Gi",
                &["ReadWriteOnce"],
                json!({"spec": {"claimRef": {"namespace": "default", "name": "other"}}}),
            ),
        ];
        let fast = claim(
            "1Gi",
            &["ReadWriteOnce"],
            json!({"spec": {"storageClassName": "fast"}}),
        );
        assert_eq!(best(&fast, &volumes).as_deref(), Some("fast"));
        let gold = claim(
            "1Gi",
            &["ReadWriteOnce"],
            json!({"spec": {"selector": {"matchLabels": {"tier": "gold"}}}}),
        );
        assert_eq!(best(&gold, &volumes).as_deref(), Some("labelled"));
        let block = claim(
            "1Gi",
            &["ReadWriteOnce"],
            json!({"spec": {"volumeMode": "Block"}}),
        );
        assert_eq!(best(&block, &volumes).as_deref(), Some("block"));
        let mut other = claim("1Gi", &["ReadWriteOnce"], json!({}));
        other.metadata.name = Some("other".into());
        assert_eq!(best(&other, &volumes).as_deref(), Some("reserved"));
    }

    #[test]
    fn delayed_binding_needs_a_node_that_the_affinity_admits() {
        let affinity = json!({"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}
        ]}}}});
        let volumes = [std::sync::Arc::new(volume(
            "local",
            "1Gi",
            &["ReadWriteOnce"],
            affinity,
        ))];
        let claim = claim("1Gi", &["ReadWriteOnce"], json!({}));
        let none = BTreeSet::new();
        assert!(find_best_match(&claim, &volumes, None, &none, true).is_none());
        let labels = BTreeMap::from([("kubernetes.io/hostname".to_owned(), "n1".to_owned())]);
        let n1 = NodeView {
            name: "n1",
            labels: Some(&labels),
        };
        assert!(find_best_match(&claim, &volumes, Some(&n1), &none, true).is_some());
        let other = BTreeMap::from([("kubernetes.io/hostname".to_owned(), "n2".to_owned())]);
        let n2 = NodeView {
            name: "n2",
            labels: Some(&other),
        };
        assert!(find_best_match(&claim, &volumes, Some(&n2), &none, true).is_none());
    }
}
