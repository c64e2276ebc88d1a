//! `DefaultTolerationSeconds`: pods that do not tolerate the `node.kubernetes.io/not-ready`
//! and `node.kubernetes.io/unreachable` NoExecute taints get tolerations for them with
//! `tolerationSeconds: 300`, on create and update, as upstream's plugin with its default
//! flags does. It changes nothing else and refuses nothing.

use serde_json::{Value, json};

use super::common::is;
use super::{Operation, Plugin};
use crate::registry::Resource;
use crate::status::ApiError;
use crate::store::GenericStore;

/// The taint of nodes that are not ready.
pub const TAINT_NODE_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint of nodes the node controller cannot reach.
pub const TAINT_NODE_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// `--default-not-ready-toleration-seconds` and `--default-unreachable-toleration-seconds`.
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// The plugin.
pub(super) struct DefaultTolerationSeconds;

/// Whether a toleration tolerates the NoExecute taint `key` (an empty key or effect matches
/// everything).
fn tolerates(toleration: &Value, key: &str) -> bool {
    let field = |f: &str| toleration.get(f).and_then(Value::as_str).unwrap_or("");
    (field("key") == key || field("key").is_empty())
        && (field("effect") == "NoExecute" || field("effect").is_empty())
}

/// Adds the missing default tolerations to a pod.
fn add_default_tolerations(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let existing: Vec<Value> = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut tolerations = existing.clone();
    for key in [TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE] {
        if !existing.iter().any(|t| tolerates(t, key)) {
            tolerations.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
            }));
        }
    }
    if tolerations.len() != existing.len() {
        spec.insert("tolerations".into(), Value::Array(tolerations));
    }
}

impl Plugin for DefaultTolerationSeconds {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    fn mutate(
        &self,
        _store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if !is(resource, "", "pods") || !matches!(operation, Operation::Create | Operation::Update) {
            return Ok(());
        }
        add_default_tolerations(object);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_missing_tolerations_only() {
        let mut pod = json!({"spec": {"containers": [{"name": "c"}]}});
        add_default_tolerations(&mut pod);
        assert_eq!(
            pod["spec"]["tolerations"],
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ])
        );
        let before = pod.clone();
        add_default_tolerations(&mut pod);
        assert_eq!(pod, before, "idempotent");

        let mut custom = json!({"spec": {"tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}
        ]}});
        add_default_tolerations(&mut custom);
        let tolerations = custom["spec"]["tolerations"].as_array().unwrap();
        assert_eq!(tolerations.len(), 2);
        assert_eq!(tolerations[0]["tolerationSeconds"], 10);
        assert_eq!(tolerations[1]["key"], "node.kubernetes.io/unreachable");

        // A toleration of everything covers both.
        let mut all = json!({"spec": {"tolerations": [{"operator": "Exists"}]}});
        add_default_tolerations(&mut all);
        assert_eq!(all["spec"]["tolerations"].as_array().unwrap().len(), 1);
    }
}
