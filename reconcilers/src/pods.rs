//! What the workload controllers share about pods and owned objects (upstream:
//! pkg/controller/controller_utils.go and controller_ref_manager.go): label selectors, pod
//! readiness and availability, the deletion ranking, pods from templates, adoption and release
//! through controller references, creation/deletion expectations and the template hash.
//! It talks to the API server only for adoption and release; it owns no watch.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

use crate::harness::{ReconcileError, is_not_found};

/// The label a deployment adds to its replica sets' pods.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The annotation that makes a pod cheaper or dearer to delete.
const DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// How long an unfulfilled expectation blocks a sync (upstream's ExpectationsTimeout).
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);

/// A label selector, ready to match label sets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selector {
    requirements: Vec<(String, Op, Vec<String>)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

impl Selector {
    /// A selector from a `metav1.LabelSelector`, or why it is invalid.
    pub fn from_label_selector(selector: &LabelSelector) -> Result<Selector, String> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push((key.clone(), Op::In, vec![value.clone()]));
        }
        for expression in selector.match_expressions.iter().flatten() {
            let op = match expression.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                other => return Err(format!("{other:?} is not a valid label selector operator")),
            };
            requirements.push((
                expression.key.clone(),
                op,
                expression.values.clone().unwrap_or_default(),
            ));
        }
        Ok(Selector { requirements })
    }

    /// A selector matching exactly these labels (a ReplicationController's selector).
    pub fn from_map(labels: &BTreeMap<String, String>) -> Selector {
        Selector {
            requirements: labels
                .iter()
                .map(|(k, v)| (k.clone(), Op::In, vec![v.clone()]))
                .collect(),
        }
    }

    /// Whether the selector selects nothing in particular (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|(key, op, values)| {
            let value = labels.get(key);
            match op {
                Op::In => value.is_some_and(|v| values.contains(v)),
                Op::NotIn => value.is_none_or(|v| !values.contains(v)),
                Op::Exists => value.is_some(),
                Op::DoesNotExist => value.is_none(),
            }
        })
    }
}

/// Whether the pod still counts: not finished and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    phase != Some("Succeeded") && phase != Some("Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// Whether the pod is being deleted but has not finished.
pub fn is_terminating(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_some() && phase != Some("Succeeded") && phase != Some("Failed")
}

/// When the pod became ready, if it is ready.
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| t.0))
}

/// Whether the pod's Ready condition is true.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Whether the pod has been ready for at least `min_ready_seconds` at `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => since
            .checked_add(jiff_seconds(min_ready_seconds))
            .is_ok_and(|at| at < now),
    }
}

/// When the next ready but not yet available pod becomes available, from `now`.
pub fn next_availability_check(pods: &[&Pod], min_ready_seconds: i32, now: Timestamp) -> Option<Duration> {
    pods.iter()
        .filter(|pod| !is_available(pod, min_ready_seconds, now))
        .filter_map(|pod| ready_since(pod).flatten())
        .filter_map(|since| since.checked_add(jiff_seconds(min_ready_seconds)).ok())
        .map(|at| {
            let wait = at.duration_since(now).as_secs_f64().max(0.0);
            Duration::from_secs_f64(wait) + Duration::from_millis(10)
        })
        .min()
}

fn jiff_seconds(seconds: i32) -> k8s_openapi::jiff::SignedDuration {
    k8s_openapi::jiff::SignedDuration::from_secs(i64::from(seconds))
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 3,
    }
}

fn deletion_cost(pod: &Pod) -> i32 {
    pod.annotations()
        .get(DELETION_COST)
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0)
}

fn max_restarts(pod: &Pod) -> (i32, i32) {
    let Some(status) = pod.status.as_ref() else {
        return (0, 0);
    };
    let regular = status
        .container_statuses
        .iter()
        .flatten()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0);
    let sidecars: HashSet<&str> = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    let sidecar = status
        .init_container_statuses
        .iter()
        .flatten()
        .filter(|c| sidecars.contains(c.name.as_str()))
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0);
    (regular, sidecar)
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Upstream's logarithmic comparison of two ages: the difference of their base-2 ranks.
fn log_rank_diff(t1: Timestamp, t2: Timestamp, now: Timestamp) -> i64 {
    let rank = |t: Timestamp| {
        let nanos = now.duration_since(t).as_nanos();
        if nanos > 0 {
            #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
            let r = (nanos as f64).log2() as i64;
            r
        } else {
            -1
        }
    };
    rank(t1) - rank(t2)
}

/// Compares two times upstream's way: zero first, then the later one.
fn after_or_zero(t1: Option<Timestamp>, t2: Option<Timestamp>) -> bool {
    match (t1, t2) {
        (None, _) | (_, None) => t1.is_none(),
        (Some(a), Some(b)) => a > b,
    }
}

/// Upstream's ActivePodsWithRanks ordering: the pods to delete first compare smaller.
/// `rank` counts the related active pods on the same node.
pub fn deletion_order(a: (&Pod, usize), b: (&Pod, usize), now: Timestamp) -> Ordering {
    let less = |(i, ri): (&Pod, usize), (j, rj): (&Pod, usize)| -> bool {
        let (ni, nj) = (node_name(i), node_name(j));
        if ni != nj && (ni.is_empty() || nj.is_empty()) {
            return ni.is_empty();
        }
        if phase_ordinal(i) != phase_ordinal(j) {
            return phase_ordinal(i) < phase_ordinal(j);
        }
        if is_ready(i) != is_ready(j) {
            return !is_ready(i);
        }
        if deletion_cost(i) != deletion_cost(j) {
            return deletion_cost(i) < deletion_cost(j);
        }
        if ri != rj {
            return ri > rj;
        }
        if is_ready(i) && is_ready(j) {
            let (t1, t2) = (ready_since(i).flatten(), ready_since(j).flatten());
            if t1 != t2 {
                return match (t1, t2) {
                    (Some(t1), Some(t2)) => match log_rank_diff(t1, t2, now) {
                        0 => i.metadata.uid < j.metadata.uid,
                        d => d < 0,
                    },
                    _ => after_or_zero(t1, t2),
                };
            }
        }
        let (ri, rj) = (max_restarts(i), max_restarts(j));
        if ri.0 != rj.0 {
            return ri.0 > rj.0;
        }
        if ri.1 != rj.1 {
            return ri.1 > rj.1;
        }
        let (c1, c2) = (
            i.metadata.creation_timestamp.as_ref().map(|t| t.0),
            j.metadata.creation_timestamp.as_ref().map(|t| t.0),
        );
        if c1 != c2 {
            return match (c1, c2) {
                (Some(c1), Some(c2)) => match log_rank_diff(c1, c2, now) {
                    0 => i.metadata.uid < j.metadata.uid,
                    d => d < 0,
                },
                _ => after_or_zero(c1, c2),
            };
        }
        false
    };
    if less(a, b) {
        Ordering::Less
    } else if less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// The `n` pods to delete first among `pods`, ranked against the active `related` pods.
pub fn pods_to_delete<'a>(pods: &[&'a Pod], related: &[&Pod], n: usize) -> Vec<&'a Pod> {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for pod in related.iter().filter(|p| is_active(p)) {
        *on_node.entry(node_name(pod)).or_default() += 1;
    }
    let now = Timestamp::now();
    let mut ranked: Vec<(&Pod, usize)> = pods
        .iter()
        .map(|pod| (*pod, on_node.get(node_name(pod)).copied().unwrap_or(0)))
        .collect();
    if n < ranked.len() {
        ranked.sort_by(|a, b| deletion_order(*a, *b, now));
    }
    ranked.into_iter().take(n).map(|(pod, _)| pod).collect()
}

/// The controller reference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// A controller reference to `owner` (controller and blockOwnerDeletion true).
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// A pod for `template` owned by `owner`, named `<prefix>-` plus a server-generated suffix.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    namespace: &str,
    prefix: &str,
    owner: OwnerReference,
) -> Result<Pod, ReconcileError> {
    let meta = template.metadata.clone().unwrap_or_default();
    if meta.labels.as_ref().is_none_or(BTreeMap::is_empty) {
        return Err(ReconcileError::Invalid("unable to create pods, no labels".into()));
    }
    // Upstream falls back to the bare name when `<name>-` is not a valid generateName.
    let generate_name = if prefix.len() < 253 {
        format!("{prefix}-")
    } else {
        prefix.to_owned()
    };
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace: Some(namespace.to_owned()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        status: None,
    })
}

/// Upstream's ControllerRefManager for one owner: claims the objects its selector matches.
pub struct RefManager<'a, O: Resource<DynamicType = ()>> {
    /// The owner (as cached).
    pub owner: &'a O,
    /// Its selector.
    pub selector: &'a Selector,
    /// A fresh read of the owner, done at most once, before the first adoption.
    pub fresh: Box<
        dyn Fn() -> futures_util::future::BoxFuture<'a, Result<Option<O>, kube::Error>> + Send + Sync + 'a,
    >,
    checked: bool,
}

impl<'a, O: Resource<DynamicType = ()>> RefManager<'a, O> {
    /// A manager for `owner`; `fresh` reads it again from the API server.
    pub fn new(
        owner: &'a O,
        selector: &'a Selector,
        fresh: Box<
            dyn Fn() -> futures_util::future::BoxFuture<'a, Result<Option<O>, kube::Error>>
                + Send
                + Sync
                + 'a,
        >,
    ) -> Self {
        RefManager {
            owner,
            selector,
            fresh,
            checked: false,
        }
    }

    async fn can_adopt(&mut self) -> Result<(), ReconcileError> {
        if self.checked {
            return Ok(());
        }
        let kind = O::kind(&());
        let namespace = self.owner.meta().namespace.clone().unwrap_or_default();
        let name = self.owner.meta().name.clone().unwrap_or_default();
        let fresh = (self.fresh)().await?;
        let Some(fresh) = fresh else {
            return Err(ReconcileError::Invalid(format!(
                "original {kind} {namespace}/{name} is gone"
            )));
        };
        if fresh.meta().uid != self.owner.meta().uid {
            return Err(ReconcileError::Invalid(format!(
                "original {kind} {namespace}/{name} is gone: got uid {}, wanted {}",
                fresh.meta().uid.clone().unwrap_or_default(),
                self.owner.meta().uid.clone().unwrap_or_default()
            )));
        }
        if let Some(at) = &fresh.meta().deletion_timestamp {
            return Err(ReconcileError::Invalid(format!(
                "{kind} {namespace}/{name} has just been deleted at {}",
                at.0
            )));
        }
        self.checked = true;
        Ok(())
    }

    /// Claims `objects`: keeps the owned ones that match, adopts matching orphans and releases
    /// owned ones that no longer match. Returns the claimed objects.
    pub async fn claim<C>(&mut self, api: &Api<C>, objects: Vec<C>) -> Result<Vec<C>, ReconcileError>
    where
        C: Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let owner_uid = self.owner.meta().uid.clone();
        let owner_deleting = self.owner.meta().deletion_timestamp.is_some();
        let mut claimed = Vec::new();
        for object in objects {
            let meta = object.meta();
            let matches = self
                .selector
                .matches(meta.labels.as_ref().unwrap_or(&BTreeMap::new()));
            let name = meta.name.clone().unwrap_or_default();
            let uid = meta.uid.clone().unwrap_or_default();
            if let Some(reference) = controller_of(meta) {
                if Some(&reference.uid) != owner_uid.as_ref() {
                    continue;
                }
                if matches {
                    claimed.push(object);
                } else if !owner_deleting {
                    let patch = serde_json::json!({"metadata": {
                        "ownerReferences": [{"$patch": "delete", "uid": reference.uid}],
                        "uid": uid,
                    }});
                    match api
                        .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
                        .await
                    {
                        Ok(_) => {}
                        Err(err) if is_not_found(&err) => {}
                        Err(kube::Error::Api(status)) if status.code == 422 => {}
                        Err(err) => return Err(err.into()),
                    }
                }
                continue;
            }
            if owner_deleting || !matches || meta.deletion_timestamp.is_some() {
                continue;
            }
            if meta.namespace != self.owner.meta().namespace {
                continue;
            }
            self.can_adopt().await?;
            let patch = serde_json::json!({"metadata": {
                "ownerReferences": [controller_ref(self.owner)],
                "uid": uid,
            }});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                Ok(adopted) => claimed.push(adopted),
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(claimed)
    }
}

/// Upstream's UIDTrackingControllerExpectations: what a controller is waiting to see in its
/// pod cache before it may act again for an owner, so a sync never acts on a stale cache.
#[derive(Default)]
pub struct Expectations {
    entries: Mutex<HashMap<String, Expectation>>,
}

struct Expectation {
    adds: i64,
    deletes: HashSet<String>,
    since: Instant,
}

impl Expectations {
    /// Whether the owner `key` (its UID) may sync: nothing pending, or pending too long.
    pub fn satisfied(&self, key: &str) -> bool {
        let Ok(entries) = self.entries.lock() else {
            return true;
        };
        entries
            .get(key)
            .is_none_or(|e| (e.adds <= 0 && e.deletes.is_empty()) || e.since.elapsed() > EXPECTATIONS_TIMEOUT)
    }

    /// Expects `adds` creations for `key`.
    pub fn expect_creations(&self, key: &str, adds: usize) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                key.to_owned(),
                Expectation {
                    adds: i64::try_from(adds).unwrap_or(i64::MAX),
                    deletes: HashSet::new(),
                    since: Instant::now(),
                },
            );
        }
    }

    /// Expects the deletion of these pods (namespace/name keys) for `key`.
    pub fn expect_deletions(&self, key: &str, pods: HashSet<String>) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(
                key.to_owned(),
                Expectation {
                    adds: 0,
                    deletes: pods,
                    since: Instant::now(),
                },
            );
        }
    }

    /// One creation for `key` was seen (or will never be).
    pub fn creation_observed(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock()
            && let Some(entry) = entries.get_mut(key)
        {
            entry.adds -= 1;
        }
    }

    /// The deletion of `pod` for `key` was seen (or will never be).
    pub fn deletion_observed(&self, key: &str, pod: &str) {
        if let Ok(mut entries) = self.entries.lock()
            && let Some(entry) = entries.get_mut(key)
        {
            entry.deletes.remove(pod);
        }
    }

    /// Records what a pod watch event tells the controller of kind `kind`: a new pod is a
    /// creation, a pod gone or being deleted a deletion. `known` says whether the cache
    /// already held the pod before the event.
    pub fn observe(&self, kind: &str, event: &watcher::Event<Pod>, known: impl Fn(&Pod) -> bool) {
        let (pod, deleted) = match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => (pod, false),
            watcher::Event::Delete(pod) => (pod, true),
            watcher::Event::Init | watcher::Event::InitDone => return,
        };
        let Some(owner) = controller_of(&pod.metadata).filter(|r| r.kind == kind) else {
            return;
        };
        let namespace = pod.namespace().unwrap_or_default();
        let key = owner.uid.clone();
        let pod_key = format!("{namespace}/{}", pod.name_any());
        if deleted || pod.metadata.deletion_timestamp.is_some() {
            self.deletion_observed(&key, &pod_key);
        } else if !known(pod) {
            self.creation_observed(&key);
        }
    }
}

/// Upstream's ComputeHash: FNV-32a of the pod template (as go-spew prints the Go struct, see
/// [`crate::template_hash`]) and the collision count, written with the safe alphabet.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut write = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u32::from(*byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    let json = serde_json::to_value(template).unwrap_or_default();
    match crate::template_hash::spew(&json) {
        Some(printed) => write(printed.as_bytes()),
        // Something the Go printer cannot be reproduced for: still a stable hash.
        None => write(json.to_string().as_bytes()),
    }
    if let Some(count) = collision_count {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&count.to_le_bytes());
        write(&bytes);
    }
    safe_encode(&hash.to_string())
}

/// Upstream's rand.SafeEncodeString: maps each byte onto an alphabet without vowels or
/// look-alike characters.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// A pod's `namespace/name`, the key controllers queue and index pods by.
pub fn key(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

/// A `metav1.Time` for now.
pub fn now() -> Time {
    Time(Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn selectors_match_like_upstream() {
        let selector: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]
        }))
        .unwrap();
        let s = Selector::from_label_selector(&selector).unwrap();
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
        };
        assert!(s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "api")])));
    }

    #[test]
    fn safe_encoding_and_fnv_like_upstream() {
        // rand.SafeEncodeString("12345") in Go.
        assert_eq!(safe_encode("12345"), "56789");
        let template: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .unwrap();
        let a = template_hash(&template, None);
        assert_ne!(a, template_hash(&template, Some(1)));
        assert_eq!(a, template_hash(&template, None));
        assert!(a.len() <= 10);
    }

    #[test]
    fn deletion_ranking_prefers_unscheduled_pending_unready_pods() {
        let unscheduled =
            pod(serde_json::json!({"metadata": {"name": "a", "uid": "1"}, "spec": {"containers": []}}));
        let pending = pod(serde_json::json!({"metadata": {"name": "b", "uid": "2"},
            "spec": {"nodeName": "n", "containers": []}, "status": {"phase": "Pending"}}));
        let running = pod(serde_json::json!({"metadata": {"name": "c", "uid": "3"},
            "spec": {"nodeName": "n", "containers": []}, "status": {"phase": "Running"}}));
        let ready = pod(serde_json::json!({"metadata": {"name": "d", "uid": "4"},
            "spec": {"nodeName": "n", "containers": []}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}));
        let cheap = pod(serde_json::json!({"metadata": {"name": "e", "uid": "5",
            "annotations": {DELETION_COST: "-10"}},
            "spec": {"nodeName": "n", "containers": []}, "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}));
        let pods = [&ready, &running, &cheap, &pending, &unscheduled];
        let order: Vec<_> = pods_to_delete(&pods, &[], 4)
            .iter()
            .map(|p| p.name_any())
            .collect();
        assert_eq!(order, ["a", "b", "c", "e"]);
    }

    #[test]
    fn expectations_wait_for_the_cache() {
        let expectations = Expectations::default();
        assert!(expectations.satisfied("u"), "no expectation, free to sync");
        expectations.expect_creations("u", 2);
        assert!(!expectations.satisfied("u"));
        let owned = |name: &str| {
            pod(
                serde_json::json!({"metadata": {"name": name, "namespace": "ns", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "u", "controller": true}]}}),
            )
        };
        // An update of a pod the cache already knew is no creation; another kind's pod neither.
        expectations.observe("ReplicaSet", &watcher::Event::Apply(owned("a")), |_| true);
        expectations.observe(
            "ReplicationController",
            &watcher::Event::Apply(owned("a")),
            |_| false,
        );
        assert!(!expectations.satisfied("u"));
        expectations.observe("ReplicaSet", &watcher::Event::Apply(owned("a")), |_| false);
        assert!(!expectations.satisfied("u"));
        expectations.observe("ReplicaSet", &watcher::Event::InitApply(owned("b")), |_| false);
        assert!(expectations.satisfied("u"));

        expectations.expect_deletions("u", ["ns/a".to_owned(), "ns/b".to_owned()].into());
        expectations.observe("ReplicaSet", &watcher::Event::Delete(owned("a")), |_| true);
        assert!(!expectations.satisfied("u"));
        let mut terminating = owned("b");
        terminating.metadata.deletion_timestamp = Some(now());
        expectations.observe("ReplicaSet", &watcher::Event::Apply(terminating), |_| true);
        assert!(expectations.satisfied("u"));
    }

    #[test]
    fn availability_respects_min_ready_seconds() {
        let ready = pod(
            serde_json::json!({"metadata": {"name": "d"}, "status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}),
        );
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert!(is_available(&ready, 0, at("2024-01-01T00:00:00Z")));
        assert!(!is_available(&ready, 10, at("2024-01-01T00:00:05Z")));
        assert!(is_available(&ready, 10, at("2024-01-01T00:00:11Z")));
    }
}
