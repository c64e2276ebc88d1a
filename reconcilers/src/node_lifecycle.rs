//! The node lifecycle controller's NoSchedule tainting pass (upstream:
//! pkg/controller/nodelifecycle, `doNoScheduleTaintingPass`): a node carries exactly the
//! `NoSchedule` taints its conditions call for (`not-ready`, `unreachable`, `memory-pressure`,
//! `disk-pressure`, `pid-pressure`, `network-unavailable`) and `unschedulable` when cordoned.
//! This is what lifts the `not-ready` taint the TaintNodesByCondition admission plugin puts
//! on new nodes once they report Ready.
//!
//! Health monitoring from node Leases (marking silent nodes Unknown) and NoExecute eviction
//! are not done here yet. It only changes node taints, never other taints or fields.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_conflict, is_not_found};

/// The controller's name in `--controllers`.
pub const NAME: &str = "nodelifecycle";

const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// The taint a condition in a status calls for.
fn condition_taint(kind: &str, status: &str) -> Option<&'static str> {
    match (kind, status) {
        ("Ready", "False") => Some("node.kubernetes.io/not-ready"),
        ("Ready", "Unknown") => Some("node.kubernetes.io/unreachable"),
        ("MemoryPressure", "True") => Some("node.kubernetes.io/memory-pressure"),
        ("DiskPressure", "True") => Some("node.kubernetes.io/disk-pressure"),
        ("PIDPressure", "True") => Some("node.kubernetes.io/pid-pressure"),
        ("NetworkUnavailable", "True") => Some("node.kubernetes.io/network-unavailable"),
        _ => None,
    }
}

/// Taint keys this pass owns.
fn owned(key: &str) -> bool {
    key == UNSCHEDULABLE
        || [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
            "node.kubernetes.io/memory-pressure",
            "node.kubernetes.io/disk-pressure",
            "node.kubernetes.io/pid-pressure",
            "node.kubernetes.io/network-unavailable",
        ]
        .contains(&key)
}

/// The node's taints after the pass, or `None` when they are already right.
fn desired_taints(node: &Node) -> Option<Vec<Taint>> {
    let mut wanted: Vec<&str> = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| condition_taint(&c.type_, &c.status))
        .collect();
    if node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
        wanted.push(UNSCHEDULABLE);
    }
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let is_owned = |t: &Taint| t.effect == "NoSchedule" && owned(&t.key);
    let present: Vec<&str> = current
        .iter()
        .filter(|t| is_owned(t))
        .map(|t| t.key.as_str())
        .collect();
    if wanted.len() == present.len() && wanted.iter().all(|k| present.contains(k)) {
        return None;
    }
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut taints: Vec<Taint> = current
        .iter()
        .filter(|t| !is_owned(t) || wanted.contains(&t.key.as_str()))
        .cloned()
        .collect();
    for key in wanted {
        if !present.contains(&key) {
            taints.push(Taint {
                key: key.to_owned(),
                effect: "NoSchedule".to_owned(),
                time_added: Some(now.clone()),
                value: None,
            });
        }
    }
    Some(taints)
}

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let nodes: Api<Node> = Api::all(context.client.clone());
    let controller = Controller::new(nodes, watcher::Config::default());
    harness::run(NAME, controller, context, shutdown, reconcile).await;
}

async fn reconcile(node: Arc<Node>, context: Arc<Context>) -> Result<Action, ReconcileError> {
    let Some(taints) = desired_taints(&node) else {
        return Ok(Action::await_change());
    };
    let api: Api<Node> = Api::all(context.client.clone());
    let mut next = (*node).clone();
    next.spec.get_or_insert_with(Default::default).taints = (!taints.is_empty()).then_some(taints);
    // Conditioned on the version read: a concurrent change makes this fail and re-run.
    match api.replace(&node.name_any(), &PostParams::default(), &next).await {
        Ok(_) => Ok(Action::await_change()),
        Err(err) if is_not_found(&err) || is_conflict(&err) => Ok(Action::await_change()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use super::*;

    fn node(ready: &str, taints: serde_json::Value, unschedulable: bool) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"},
            "spec": {"taints": taints, "unschedulable": unschedulable},
            "status": {"conditions": [{"type": "Ready", "status": ready}]},
        }))
        .unwrap()
    }

    #[test]
    fn taints_follow_conditions() {
        let not_ready = serde_json::json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                                          {"key": "dedicated", "value": "x", "effect": "NoSchedule"}]);
        let taints = desired_taints(&node("True", not_ready.clone(), false)).unwrap();
        assert_eq!(taints.len(), 1);
        assert_eq!(taints[0].key, "dedicated");
        assert!(desired_taints(&node("False", not_ready.clone(), false)).is_none());
        let taints = desired_taints(&node("Unknown", not_ready, true)).unwrap();
        let keys: Vec<&str> = taints.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(
            keys,
            ["dedicated", "node.kubernetes.io/unreachable", UNSCHEDULABLE]
        );
    }
}
