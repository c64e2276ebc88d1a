//! Rolling updates of daemon pods (upstream: pkg/controller/daemon/update.go `rollingUpdate`):
//! with maxSurge 0, old pods are deleted while at most maxUnavailable daemon pods are
//! unavailable; with maxSurge, new pods start beside the old ones, which go once the new ones
//! are available. Pure: it decides which pods to delete and which nodes get a pod.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::{PodsByNode, min_ready_seconds, placement, template_generation};
use crate::harness::ReconcileError;
use crate::int_or_percent::scaled_or_zero;
use crate::pods;

/// Whether the strategy is RollingUpdate (the default).
pub fn is_rolling(ds: &DaemonSet) -> bool {
    strategy_type(ds) == "RollingUpdate"
}

fn strategy_type(ds: &DaemonSet) -> &str {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

/// Upstream's `SurgeCount`.
fn surge_count(ds: &DaemonSet, to_schedule: i32) -> Result<i32, ReconcileError> {
    if !is_rolling(ds) {
        return Ok(0);
    }
    let rolling = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    scaled_or_zero(rolling.and_then(|r| r.max_surge.as_ref()), to_schedule, true)
}

/// Upstream's `UnavailableCount`.
fn unavailable_count(ds: &DaemonSet, to_schedule: i32) -> Result<i32, ReconcileError> {
    if !is_rolling(ds) {
        return Ok(0);
    }
    let Some(rolling) = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref())
    else {
        return Ok(0);
    };
    scaled_or_zero(rolling.max_unavailable.as_ref(), to_schedule, true)
}

/// Upstream's `AllowsSurge`.
pub fn allows_surge(ds: &DaemonSet) -> bool {
    surge_count(ds, 1).is_ok_and(|n| n > 0)
}

/// Upstream's `findUpdatedPodsOnNode`: the node's one new and one old pod (not being deleted),
/// or `None` when it has more of either.
fn updated_pods_on_node<'a>(
    ds: &DaemonSet,
    pods: &'a [Pod],
    hash: &str,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let generation = template_generation(ds);
    let (mut new, mut old) = (None, None);
    for pod in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        let slot = if placement::is_updated(pod, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(pod);
    }
    Some((new, old))
}

/// Upstream's `rollingUpdate`: the pods to delete and the nodes that get a new pod.
pub fn rolling_update(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    mut by_node: PodsByNode,
    hash: &str,
    now: Timestamp,
) -> Result<(Vec<String>, Vec<String>), ReconcileError> {
    let Some(spec) = ds.spec.as_ref() else {
        return Ok((Vec::new(), Vec::new()));
    };
    // Upstream's updatedDesiredNodeCounts: every node that should run a pod takes part.
    let mut desired = 0;
    for node in nodes {
        if placement::node_should_run(node, &spec.template).should_run {
            desired += 1;
            by_node.entry(node.name_any()).or_default();
        }
    }
    let mut max_unavailable = unavailable_count(ds, desired).map_err(|e| {
        ReconcileError::Invalid(format!(
            "couldn't get unavailable numbers: invalid value for MaxUnavailable: {e}"
        ))
    })?;
    let max_surge = surge_count(ds, desired).map_err(|e| {
        ReconcileError::Invalid(format!(
            "couldn't get unavailable numbers: invalid value for MaxSurge: {e}"
        ))
    })?;
    if desired > 0 && max_unavailable == 0 && max_surge == 0 {
        max_unavailable = 1;
    }
    let min_ready = min_ready_seconds(ds);
    let available = |pod: &Pod| pods::is_available(pod, min_ready, now);
    let node_fits = |name: &str| {
        nodes
            .iter()
            .find(|n| n.name_any() == name)
            .is_some_and(|n| placement::node_should_run(n, &spec.template).should_run)
    };

    if max_surge == 0 {
        let mut unavailable = 0;
        let mut allowed: Vec<String> = Vec::new();
        let mut candidates: Vec<String> = Vec::new();
        for pods in by_node.values() {
            let Some((new, old)) = updated_pods_on_node(ds, pods, hash) else {
                // Excess pods: the manage pass deals with them first.
                unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => unavailable += 1,
                (Some(new), None) => {
                    if !available(new) {
                        unavailable += 1;
                    }
                }
                (None, Some(old)) => {
                    if !available(old) {
                        // Replacing an unavailable pod costs no availability.
                        allowed.push(old.name_any());
                        unavailable += 1;
                    } else if unavailable < max_unavailable {
                        candidates.push(old.name_any());
                    }
                }
            }
        }
        let remaining = usize::try_from(max_unavailable - unavailable)
            .unwrap_or(0)
            .min(candidates.len());
        allowed.extend(candidates.into_iter().take(remaining));
        return Ok((allowed, Vec::new()));
    }

    let mut old_to_delete: Vec<String> = Vec::new();
    let mut should_not_run: Vec<String> = Vec::new();
    let mut candidate_nodes: Vec<String> = Vec::new();
    let mut allowed_nodes: Vec<String> = Vec::new();
    let mut surge = 0;
    let mut available_count = 0;
    for (node, pods) in &by_node {
        let Some((new, old)) = updated_pods_on_node(ds, pods, hash) else {
            surge += 1;
            continue;
        };
        if let Some(pod) = old.or(new)
            && available(pod)
        {
            available_count += 1;
        }
        match (new, old) {
            (_, None) => {}
            (None, Some(old)) => {
                if !available(old) {
                    if node_fits(node) {
                        allowed_nodes.push(node.clone());
                    } else {
                        old_to_delete.push(old.name_any());
                    }
                } else if !node_fits(node) {
                    should_not_run.push(old.name_any());
                } else if surge < max_surge {
                    candidate_nodes.push(node.clone());
                }
            }
            (Some(new), Some(old)) => {
                if available(new) {
                    old_to_delete.push(old.name_any());
                } else {
                    surge += 1;
                }
            }
        }
    }
    // Pods on nodes that no longer fit go while enough others are available.
    let deletable = usize::try_from(available_count - desired)
        .unwrap_or(0)
        .min(should_not_run.len());
    old_to_delete.extend(should_not_run.into_iter().take(deletable));
    let remaining = usize::try_from(max_surge - surge)
        .unwrap_or(0)
        .min(candidate_nodes.len());
    allowed_nodes.extend(candidate_nodes.into_iter().take(remaining));
    Ok((old_to_delete, allowed_nodes))
}

#[cfg(test)]
mod tests {
    use super::super::pods_by_node;
    use super::super::tests::{daemon_set, node, pod};
    use super::*;
    use serde_json::json;

    const T: &str = "2024-01-01T00:00:00Z";

    fn now() -> Timestamp {
        "2024-01-02T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn max_unavailable_limits_replacements() {
        let ds = daemon_set(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}));
        let nodes: Vec<_> = ["a", "b", "c", "d"].iter().map(|n| node(n, json!([]))).collect();
        let pods = [
            pod("pa", "a", "old", "Running", true, T),
            pod("pb", "b", "old", "Running", true, T),
            pod("pc", "c", "old", "Running", true, T),
            pod("pd", "d", "new", "Running", true, T),
        ];
        let (delete, create) = rolling_update(&ds, &nodes, pods_by_node(&pods, false), "new", now()).unwrap();
        assert_eq!(delete, ["pa", "pb"]);
        assert!(create.is_empty());
        // A new pod not yet available uses up one of the two.
        let pods = [
            pod("pa", "a", "old", "Running", true, T),
            pod("pb", "b", "old", "Running", true, T),
            pod("pc", "c", "new", "Pending", false, T),
        ];
        let (delete, _) = rolling_update(&ds, &nodes, pods_by_node(&pods, false), "new", now()).unwrap();
        // Node d has no pod at all: unavailable too.
        assert!(delete.is_empty(), "{delete:?}");
        // An unavailable old pod is always replaced.
        let pods = [
            pod("pa", "a", "old", "Running", false, T),
            pod("pb", "b", "new", "Running", true, T),
            pod("pc", "c", "new", "Running", true, T),
            pod("pd", "d", "new", "Running", true, T),
        ];
        let one = daemon_set(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}}));
        let (delete, _) = rolling_update(&one, &nodes, pods_by_node(&pods, false), "new", now()).unwrap();
        assert_eq!(delete, ["pa"]);
    }

    #[test]
    fn max_surge_starts_new_pods_first() {
        let ds = daemon_set(
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}),
        );
        let nodes: Vec<_> = ["a", "b"].iter().map(|n| node(n, json!([]))).collect();
        let pods = [
            pod("pa", "a", "old", "Running", true, T),
            pod("pb", "b", "old", "Running", true, T),
        ];
        let (delete, create) = rolling_update(&ds, &nodes, pods_by_node(&pods, false), "new", now()).unwrap();
        assert!(delete.is_empty());
        assert_eq!(create, ["a"]);
        let pods = [
            pod("pa", "a", "old", "Running", true, T),
            pod("na", "a", "new", "Running", true, T),
            pod("pb", "b", "old", "Running", true, T),
        ];
        let (delete, create) = rolling_update(&ds, &nodes, pods_by_node(&pods, false), "new", now()).unwrap();
        assert_eq!(delete, ["pa"]);
        assert_eq!(create, ["b"]);
    }

    #[test]
    fn on_delete_never_surges() {
        let ds = daemon_set(json!({"type": "OnDelete", "rollingUpdate": {"maxSurge": 1}}));
        assert!(!allows_surge(&ds));
        assert!(!is_rolling(&ds));
    }
}
