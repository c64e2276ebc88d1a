//! `NamespaceLifecycle`: objects may only be created in namespaces that exist and are not
//! terminating; the system namespaces cannot be deleted.

use serde_json::Value;

use super::{Operation, Plugin};
use crate::object;
use crate::registry::Resource;
use crate::status::{ApiError, GroupResource};
use crate::store::GenericStore;

/// Namespaces that can never be deleted.
pub const IMMORTAL_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// The plugin.
pub(super) struct NamespaceLifecycle;

impl Plugin for NamespaceLifecycle {
    fn name(&self) -> &'static str {
        "NamespaceLifecycle"
    }

    fn validate(
        &self,
        store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let is_namespace = resource.group.is_empty() && resource.resource == "namespaces";
        if is_namespace
            && operation == Operation::Delete
            && IMMORTAL_NAMESPACES.contains(&object::name(object))
        {
            return Err(ApiError::forbidden(
                resource.group_resource(),
                object::name(object),
                "this namespace may not be deleted",
            ));
        }
        if operation != Operation::Create || !resource.namespaced {
            return Ok(());
        }
        let namespace = object::namespace(object);
        let namespaces = GroupResource {
            group: "",
            resource: "namespaces",
        };
        let key = format!("/core/namespaces/{namespace}");
        let stored = store.storage().get(&key).map_err(ApiError::internal)?;
        let Some(stored) = stored else {
            return Err(ApiError::not_found(namespaces, namespace));
        };
        let phase = serde_json::from_slice::<Value>(&stored.value)
            .ok()
            .and_then(|ns| {
                ns.pointer("/status/phase")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        if phase.as_deref() == Some("Terminating") {
            let mut error = ApiError::forbidden(
                resource.group_resource(),
                object::name(object),
                &format!(
                    "unable to create new content in namespace {namespace} because it is being terminated"
                ),
            );
            if let Some(details) = error.details.as_mut() {
                details.causes = Some(vec![
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause {
                        reason: Some("NamespaceTerminating".into()),
                        message: Some(format!("namespace {namespace} is being terminated")),
                        field: Some("metadata.namespace".into()),
                    },
                ]);
            }
            return Err(error);
        }
        Ok(())
    }
}
