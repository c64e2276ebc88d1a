//! `DefaultStorageClass`: a new PersistentVolumeClaim that names no StorageClass (neither
//! `spec.storageClassName`, even empty, nor the beta annotation) gets the default one — the
//! newest StorageClass annotated `storageclass.kubernetes.io/is-default-class: "true"` (or the
//! beta annotation). It only acts on creation and refuses nothing.

use serde_json::{Value, json};

use super::common::{is, list, newest_first};
use super::{Operation, Plugin};
use crate::object;
use crate::registry::Resource;
use crate::status::ApiError;
use crate::store::GenericStore;

/// The annotation marking the default StorageClass.
pub const IS_DEFAULT_STORAGE_CLASS: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_IS_DEFAULT_STORAGE_CLASS: &str = "storageclass.beta.kubernetes.io/is-default-class";
/// The beta annotation naming a claim's class.
const BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

/// The plugin.
pub(super) struct DefaultStorageClass;

/// Upstream's `PersistentVolumeClaimHasClass`.
fn has_class(claim: &Value) -> bool {
    object::annotations(claim).contains_key(BETA_STORAGE_CLASS)
        || claim
            .pointer("/spec/storageClassName")
            .is_some_and(|v| !v.is_null())
}

/// Upstream's `GetDefaultClass`: the newest class marked default.
fn default_class(mut classes: Vec<Value>) -> Option<String> {
    classes.retain(|class| {
        let annotations = object::annotations(class);
        annotations.get(IS_DEFAULT_STORAGE_CLASS).map(String::as_str) == Some("true")
            || annotations.get(BETA_IS_DEFAULT_STORAGE_CLASS).map(String::as_str) == Some("true")
    });
    newest_first(&mut classes);
    classes.first().map(|c| object::name(c).to_owned())
}

impl Plugin for DefaultStorageClass {
    fn name(&self) -> &'static str {
        "DefaultStorageClass"
    }

    fn mutate(
        &self,
        store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if !is(resource, "", "persistentvolumeclaims") || operation != Operation::Create || has_class(object)
        {
            return Ok(());
        }
        let classes = list(store, ("storage.k8s.io", "v1", "storageclasses"), None)?;
        let Some(class) = default_class(classes) else {
            return Ok(());
        };
        tracing::debug!(claim = %object::name(object), %class, "defaulting storage class");
        if let Some(map) = object.as_object_mut() {
            let spec = map.entry("spec").or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                spec.insert("storageClassName".into(), Value::String(class));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_newest_default() {
        let classes = vec![
            json!({"metadata": {"name": "slow", "creationTimestamp": "2024-01-01T00:00:00Z",
                "annotations": {IS_DEFAULT_STORAGE_CLASS: "true"}}}),
            json!({"metadata": {"name": "fast", "creationTimestamp": "2025-01-01T00:00:00Z",
                "annotations": {BETA_IS_DEFAULT_STORAGE_CLASS: "true"}}}),
            json!({"metadata": {"name": "other", "creationTimestamp": "2026-01-01T00:00:00Z"}}),
        ];
        assert_eq!(default_class(classes).as_deref(), Some("fast"));
        assert_eq!(default_class(vec![json!({"metadata": {"name": "x"}})]), None);
    }

    #[test]
    fn an_empty_class_name_is_a_choice() {
        assert!(has_class(&json!({"spec": {"storageClassName": ""}})));
        assert!(has_class(
            &json!({"metadata": {"annotations": {BETA_STORAGE_CLASS: "x"}}, "spec": {}})
        ));
        assert!(!has_class(&json!({"spec": {}})));
    }
}
