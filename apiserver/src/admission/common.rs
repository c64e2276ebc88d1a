//! What the admission plugins share: reads of other objects straight from storage (the
//! plugins' listers, always up to date here), typed views of the object under admission, and
//! upstream's admission error shapes (`admission.NewForbidden`, `utilerrors.NewAggregate`).
//!
//! It only reads: plugins must not write other objects from here (the one plugin that does,
//! `ResourceQuota`, writes quota status itself).

use std::sync::LazyLock;

use rudder_storage::ListOptions;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::object;
use crate::registry::{Registry, Resource};
use crate::status::ApiError;
use crate::store::GenericStore;

/// The built-in resources, to find where other objects are stored.
static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::builtin);

/// Whether `resource` is `group`/`name`.
pub(super) fn is(resource: &Resource, group: &str, name: &str) -> bool {
    resource.group == group && resource.resource == name
}

/// A built-in resource.
pub(super) fn resource(group: &str, version: &str, name: &str) -> Result<std::sync::Arc<Resource>, ApiError> {
    REGISTRY
        .find(group, version, name)
        .ok_or_else(|| ApiError::internal(format!("resource {name} is not registered")))
}

/// One object, `None` when it does not exist.
pub(super) fn get(
    store: &GenericStore,
    (group, version, name): (&str, &str, &str),
    namespace: &str,
    object_name: &str,
) -> Result<Option<Value>, ApiError> {
    let resource = resource(group, version, name)?;
    store.get_opt(&resource, namespace, object_name)
}

/// Every object of a resource in a namespace (or all of them), in key order.
pub(super) fn list(
    store: &GenericStore,
    (group, version, name): (&str, &str, &str),
    namespace: Option<&str>,
) -> Result<Vec<Value>, ApiError> {
    let resource = resource(group, version, name)?;
    let prefix = resource.prefix(namespace);
    let page = store
        .storage()
        .list(&ListOptions {
            prefix: &prefix,
            ..Default::default()
        })
        .map_err(ApiError::internal)?;
    let mut items = Vec::with_capacity(page.items.len());
    for kv in page.items {
        let mut item: Value = serde_json::from_slice(&kv.value)
            .map_err(|err| ApiError::internal(format!("stored object is corrupt: {err}")))?;
        object::set_meta_str(&mut item, "resourceVersion", &kv.mod_revision.to_string());
        items.push(item);
    }
    Ok(items)
}

/// The object under admission as its type.
pub(super) fn decode<T: DeserializeOwned>(object: &Value) -> Result<T, ApiError> {
    serde_json::from_value(object.clone())
        .map_err(|err| ApiError::bad_request(format!("the object cannot be decoded: {err}")))
}

/// Writes the typed object back.
pub(super) fn encode<T: Serialize>(typed: &T, object: &mut Value) -> Result<(), ApiError> {
    *object = serde_json::to_value(typed).map_err(ApiError::internal)?;
    Ok(())
}

/// Upstream's `admission.NewForbidden`: the name is the object's, or its `generateName`, or
/// `Unknown`.
pub(super) fn forbidden(resource: &Resource, object: &Value, why: &str) -> ApiError {
    let name = match (object::name(object), object::meta_str(object, "generateName")) {
        ("", "") => "Unknown",
        ("", generate) => generate,
        (name, _) => name,
    };
    ApiError::forbidden(resource.group_resource(), name, why)
}

/// Upstream's `utilerrors.NewAggregate(errs).Error()`: one message as is, several (without
/// duplicates) in brackets.
pub(super) fn aggregate(messages: &[String]) -> String {
    if messages.len() == 1 {
        return messages[0].clone();
    }
    let mut seen: Vec<&str> = Vec::new();
    for message in messages {
        if !seen.contains(&message.as_str()) {
            seen.push(message);
        }
    }
    if seen.len() == 1 {
        return seen[0].to_owned();
    }
    format!("[{}]", seen.join(", "))
}

/// Orders objects newest first by `creationTimestamp`, then by name (upstream's choice among
/// several default classes).
pub(super) fn newest_first(objects: &mut [Value]) {
    let created = |o: &Value| {
        object::meta_str(o, "creationTimestamp")
            .parse::<jiff::Timestamp>()
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
    };
    objects.sort_by(|a, b| {
        created(b)
            .cmp(&created(a))
            .then_with(|| object::name(a).cmp(object::name(b)))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aggregates_like_upstream() {
        assert_eq!(aggregate(&["a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "a".into()]), "a");
        assert_eq!(aggregate(&["a".into(), "b".into(), "a".into()]), "[a, b]");
    }

    #[test]
    fn newest_class_first() {
        let mut classes = vec![
            json!({"metadata": {"name": "b", "creationTimestamp": "2024-01-01T00:00:00Z"}}),
            json!({"metadata": {"name": "c", "creationTimestamp": "2025-01-01T00:00:00Z"}}),
            json!({"metadata": {"name": "a", "creationTimestamp": "2024-01-01T00:00:00Z"}}),
        ];
        newest_first(&mut classes);
        let names: Vec<&str> = classes.iter().map(object::name).collect();
        assert_eq!(names, ["c", "a", "b"]);
    }
}
