//! `Priority`: a new pod gets `spec.priority` (and `spec.preemptionPolicy`) from its
//! PriorityClass, or from the global default class, or 0; a pod naming an unknown class or
//! giving a priority of its own that differs is refused. Updates keep the values of the old
//! pod. PriorityClasses are checked so that only one is the global default.
//!
//! It reads PriorityClasses and writes nothing else.

use serde_json::{Value, json};

use super::common::{forbidden, get, is, list};
use super::{Operation, Plugin};
use crate::object;
use crate::registry::Resource;
use crate::status::ApiError;
use crate::store::GenericStore;

const PRIORITY_CLASSES: (&str, &str, &str) = ("scheduling.k8s.io", "v1", "priorityclasses");
/// The priority of pods when no class is named and none is the global default.
const DEFAULT_PRIORITY_WHEN_NO_DEFAULT_CLASS_EXISTS: i64 = 0;
/// PriorityClass defaulting of `preemptionPolicy`.
const PREEMPT_LOWER_PRIORITY: &str = "PreemptLowerPriority";

/// The plugin.
pub(super) struct Priority;

/// A PriorityClass's value and preemption policy (defaulted as upstream stores it).
fn class_values(class: &Value) -> (i64, String) {
    let value = class.get("value").and_then(Value::as_i64).unwrap_or(0);
    let policy = class
        .get("preemptionPolicy")
        .and_then(Value::as_str)
        .unwrap_or(PREEMPT_LOWER_PRIORITY)
        .to_owned();
    (value, policy)
}

/// Upstream's `getDefaultPriorityClass`: among global defaults, the one with the lowest value.
fn default_class(classes: &[Value]) -> Option<&Value> {
    classes
        .iter()
        .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
        .min_by_key(|c| c.get("value").and_then(Value::as_i64).unwrap_or(0))
}

/// Computes the priority of a new pod; `Err` carries the reason a pod is forbidden.
fn admit_new_pod(
    pod: &mut Value,
    lookup: &dyn Fn(&str) -> Result<Option<Value>, ApiError>,
    classes: &dyn Fn() -> Result<Vec<Value>, ApiError>,
) -> Result<Result<(), String>, ApiError> {
    let class_name = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let (name, priority, policy) = if class_name.is_empty() {
        let all = classes().map_err(|err| {
            ApiError::internal(format!("failed to get default priority class: {}", err.message))
        })?;
        match default_class(&all) {
            Some(class) => {
                let (value, policy) = class_values(class);
                (object::name(class).to_owned(), value, Some(policy))
            }
            None => (
                String::new(),
                DEFAULT_PRIORITY_WHEN_NO_DEFAULT_CLASS_EXISTS,
                Some(PREEMPT_LOWER_PRIORITY.to_owned()),
            ),
        }
    } else {
        let class = lookup(&class_name).map_err(|err| {
            ApiError::internal(format!(
                "failed to get PriorityClass with name {class_name}: {}",
                err.message
            ))
        })?;
        let Some(class) = class else {
            return Ok(Err(format!("no PriorityClass with name {class_name} was found")));
        };
        let (value, policy) = class_values(&class);
        (class_name, value, Some(policy))
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(Ok(()));
    };
    if !name.is_empty() {
        spec.insert("priorityClassName".into(), Value::String(name));
    }
    if let Some(given) = spec.get("priority").and_then(Value::as_i64)
        && given != priority
    {
        return Ok(Err(format!(
            "the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
        )));
    }
    spec.insert("priority".into(), json!(priority));
    if let Some(policy) = policy {
        if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str)
            && given != policy
        {
            return Ok(Err(format!(
                "the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
            )));
        }
        spec.insert("preemptionPolicy".into(), Value::String(policy));
    }
    Ok(Ok(()))
}

/// On update, values the new pod lacks are kept from the old one.
fn keep_old_values(pod: &mut Value, old: &Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for field in ["priority", "preemptionPolicy"] {
        let missing = spec.get(field).is_none_or(Value::is_null);
        if let Some(value) = old.pointer(&format!("/spec/{field}")).filter(|v| !v.is_null())
            && missing
        {
            spec.insert(field.to_owned(), value.clone());
        }
    }
}

impl Plugin for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    fn mutate(
        &self,
        store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if !is(resource, "", "pods") {
            return Ok(());
        }
        match (operation, old) {
            (Operation::Update, Some(old)) => {
                keep_old_values(object, old);
                Ok(())
            }
            (Operation::Create, _) => {
                let lookup = |name: &str| get(store, PRIORITY_CLASSES, "", name);
                let classes = || list(store, PRIORITY_CLASSES, None);
                let mut pod = object.clone();
                match admit_new_pod(&mut pod, &lookup, &classes)? {
                    Ok(()) => {
                        *object = pod;
                        Ok(())
                    }
                    Err(why) => Err(forbidden(resource, object, &why)),
                }
            }
            _ => Ok(()),
        }
    }

    fn validate(
        &self,
        store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if !is(resource, "scheduling.k8s.io", "priorityclasses")
            || !matches!(operation, Operation::Create | Operation::Update)
            || object.get("globalDefault").and_then(Value::as_bool) != Some(true)
        {
            return Ok(());
        }
        let classes = list(store, PRIORITY_CLASSES, None).map_err(|err| {
            ApiError::internal(format!("failed to get default priority class: {}", err.message))
        })?;
        if let Some(existing) = default_class(&classes) {
            let other = object::name(existing);
            if operation == Operation::Create || other != object::name(object) {
                return Err(forbidden(
                    resource,
                    object,
                    &format!(
                        "PriorityClass {other} is already marked as default. Only one default can exist"
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pod: &mut Value, classes: Vec<Value>) -> Result<(), String> {
        let lookup_classes = classes.clone();
        let lookup = move |name: &str| Ok(lookup_classes.iter().find(|c| object::name(c) == name).cloned());
        let all = move || Ok(classes.clone());
        admit_new_pod(pod, &lookup, &all).unwrap()
    }

    #[test]
    fn priority_comes_from_the_class_or_defaults() {
        let mut pod = json!({"spec": {"containers": []}});
        run(&mut pod, vec![]).unwrap();
        assert_eq!(pod["spec"]["priority"], 0);
        assert_eq!(pod["spec"]["preemptionPolicy"], "PreemptLowerPriority");
        assert!(pod["spec"].get("priorityClassName").is_none());

        let high = json!({"metadata": {"name": "high"}, "value": 1000, "preemptionPolicy": "Never"});
        let default = json!({"metadata": {"name": "normal"}, "value": 10, "globalDefault": true});
        let mut pod = json!({"spec": {"priorityClassName": "high"}});
        run(&mut pod, vec![high.clone(), default.clone()]).unwrap();
        assert_eq!(
            (
                pod["spec"]["priority"].clone(),
                pod["spec"]["preemptionPolicy"].clone()
            ),
            (json!(1000), json!("Never"))
        );

        let mut pod = json!({"spec": {}});
        run(&mut pod, vec![high.clone(), default]).unwrap();
        assert_eq!(pod["spec"]["priorityClassName"], "normal");
        assert_eq!(pod["spec"]["priority"], 10);

        let mut pod = json!({"spec": {"priorityClassName": "nope"}});
        assert_eq!(
            run(&mut pod, vec![]).unwrap_err(),
            "no PriorityClass with name nope was found"
        );
        let mut pod = json!({"spec": {"priorityClassName": "high", "priority": 5}});
        assert_eq!(
            run(&mut pod, vec![high]).unwrap_err(),
            "the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"
        );
    }

    #[test]
    fn updates_keep_old_values() {
        let old = json!({"spec": {"priority": 7, "preemptionPolicy": "Never"}});
        let mut new = json!({"spec": {}});
        keep_old_values(&mut new, &old);
        assert_eq!(new["spec"], json!({"priority": 7, "preemptionPolicy": "Never"}));
    }
}
