//! `TaintNodesByCondition`: a new Node gets the `node.kubernetes.io/not-ready:NoSchedule`
//! taint, which the node lifecycle controller removes once the node reports Ready. It only
//! acts on Node creation and refuses nothing.

use serde_json::{Value, json};

use super::common::is;
use super::default_toleration_seconds::TAINT_NODE_NOT_READY;
use super::{Operation, Plugin};
use crate::registry::Resource;
use crate::status::ApiError;
use crate::store::GenericStore;

/// The plugin.
pub(super) struct TaintNodesByCondition;

/// Adds the not-ready taint unless a taint with the same key and effect exists
/// (upstream's `Taint.MatchTaint`).
fn add_not_ready_taint(node: &mut Value) {
    let Some(map) = node.as_object_mut() else { return };
    let spec = map.entry("spec").or_insert_with(|| json!({}));
    let Some(spec) = spec.as_object_mut() else { return };
    let mut taints = spec
        .get("taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let matches = |t: &Value| {
        t.get("key").and_then(Value::as_str) == Some(TAINT_NODE_NOT_READY)
            && t.get("effect").and_then(Value::as_str) == Some("NoSchedule")
    };
    if taints.iter().any(matches) {
        return;
    }
    taints.push(json!({"key": TAINT_NODE_NOT_READY, "effect": "NoSchedule"}));
    spec.insert("taints".into(), Value::Array(taints));
}

impl Plugin for TaintNodesByCondition {
    fn name(&self) -> &'static str {
        "TaintNodesByCondition"
    }

    fn mutate(
        &self,
        _store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if is(resource, "", "nodes") && operation == Operation::Create {
            add_not_ready_taint(object);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_nodes_are_not_ready() {
        let mut node = json!({"metadata": {"name": "n"}});
        add_not_ready_taint(&mut node);
        assert_eq!(
            node["spec"]["taints"],
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
        );
        add_not_ready_taint(&mut node);
        assert_eq!(node["spec"]["taints"].as_array().unwrap().len(), 1);
        let mut other = json!({"spec": {"taints": [{"key": "a", "value": "b", "effect": "NoExecute"}]}});
        add_not_ready_taint(&mut other);
        assert_eq!(other["spec"]["taints"].as_array().unwrap().len(), 2);
    }
}
