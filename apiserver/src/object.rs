//! Accessors for the metadata of objects held as JSON, the form the generic store works on.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// `metadata` of an object, if it is an object with metadata.
pub fn meta(object: &Value) -> Option<&Map<String, Value>> {
    object.get("metadata")?.as_object()
}

/// `metadata` of an object, created if missing; `None` if the value is not a JSON object.
pub fn meta_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = object.as_object_mut()?;
    let entry = map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut()
}

/// A string field of `metadata` (empty when missing).
pub fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    meta(object)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.name`.
pub fn name(object: &Value) -> &str {
    meta_str(object, "name")
}

/// `metadata.namespace`.
pub fn namespace(object: &Value) -> &str {
    meta_str(object, "namespace")
}

/// `metadata.uid`.
pub fn uid(object: &Value) -> &str {
    meta_str(object, "uid")
}

/// `metadata.resourceVersion`.
pub fn resource_version(object: &Value) -> &str {
    meta_str(object, "resourceVersion")
}

/// `metadata.deletionTimestamp`, if set.
pub fn deletion_timestamp(object: &Value) -> Option<&str> {
    meta(object)
        .and_then(|m| m.get("deletionTimestamp"))
        .and_then(Value::as_str)
}

/// `metadata.deletionGracePeriodSeconds`, if set.
pub fn deletion_grace_period(object: &Value) -> Option<i64> {
    meta(object)
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64)
}

/// `metadata.labels`.
pub fn labels(object: &Value) -> BTreeMap<String, String> {
    string_map(meta(object).and_then(|m| m.get("labels")))
}

/// `metadata.annotations`.
pub fn annotations(object: &Value) -> BTreeMap<String, String> {
    string_map(meta(object).and_then(|m| m.get("annotations")))
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.finalizers`.
pub fn finalizers(object: &Value) -> Vec<String> {
    meta(object)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Replaces `metadata.finalizers` (removing the field when empty).
pub fn set_finalizers(object: &mut Value, finalizers: &[String]) {
    let Some(meta) = meta_mut(object) else { return };
    if finalizers.is_empty() {
        meta.remove("finalizers");
    } else {
        meta.insert("finalizers".into(), Value::from(finalizers.to_vec()));
    }
}

/// Sets a string field of `metadata`.
pub fn set_meta_str(object: &mut Value, field: &str, value: &str) {
    if let Some(meta) = meta_mut(object) {
        meta.insert(field.to_owned(), Value::String(value.to_owned()));
    }
}

/// Removes a field of `metadata`.
pub fn remove_meta(object: &mut Value, field: &str) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove(field);
    }
}

/// `apiVersion` and `kind`.
pub fn type_meta(object: &Value) -> (&str, &str) {
    (
        object.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
        object.get("kind").and_then(Value::as_str).unwrap_or(""),
    )
}

/// Sets `apiVersion` and `kind` (first, as Kubernetes serializes them).
pub fn set_type_meta(object: &mut Value, api_version: &str, kind: &str) {
    if let Value::Object(map) = object {
        map.insert("apiVersion".into(), Value::String(api_version.to_owned()));
        map.insert("kind".into(), Value::String(kind.to_owned()));
    }
}

/// The value at a dotted path (`spec.nodeName`), if present.
pub fn get_path<'a>(object: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(object, |value, key| value.get(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_writes_metadata() {
        let mut pod = json!({"metadata": {"name": "p", "labels": {"app": "web"}, "finalizers": ["a"]}});
        assert_eq!(name(&pod), "p");
        assert_eq!(namespace(&pod), "");
        assert_eq!(labels(&pod).get("app").map(String::as_str), Some("web"));
        set_finalizers(&mut pod, &[]);
        assert!(finalizers(&pod).is_empty());
        assert!(meta(&pod).unwrap().get("finalizers").is_none());
        set_meta_str(&mut pod, "uid", "u");
        assert_eq!(uid(&pod), "u");
        let mut bare = json!({});
        set_meta_str(&mut bare, "name", "x");
        assert_eq!(name(&bare), "x");
        assert!(meta_mut(&mut json!(3)).is_none());
        assert_eq!(
            get_path(&json!({"spec": {"nodeName": "n"}}), &["spec", "nodeName"]),
            Some(&json!("n"))
        );
    }
}
