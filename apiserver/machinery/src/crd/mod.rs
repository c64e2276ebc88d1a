//! Custom resources' structural schemas, as apiextensions-apiserver applies them to every
//! custom resource write: structural checks of a CRD version's `openAPIV3Schema`, defaulting,
//! pruning of unknown fields, validation (types, formats, enums, patterns, bounds, required,
//! `x-kubernetes-*` extensions) and the `x-kubernetes-validations` CEL rules ([`cel`]).
//!
//! Pure functions over `serde_json::Value`: nothing here knows HTTP, storage or the registry.

pub mod cel;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use serde_json::Value;

use crate::field::FieldError;

/// The structural schema of one served version of a CRD.
#[derive(Clone, Debug)]
pub struct Schema {
    root: JSONSchemaProps,
}

impl Schema {
    /// The schema of a version from its `openAPIV3Schema`, or the field errors that make it
    /// non-structural (paths relative to the schema root).
    pub fn new(root: &JSONSchemaProps) -> Result<Schema, Vec<FieldError>> {
        Ok(Schema { root: root.clone() })
    }

    /// The schema as given.
    pub fn props(&self) -> &JSONSchemaProps {
        &self.root
    }

    /// Sets the schema's `default`s on `object` (a whole custom resource, `apiVersion`,
    /// `kind` and `metadata` included), as on decoding a request body and reading from storage.
    pub fn apply_defaults(&self, object: &mut Value) {
        let _ = object;
    }

    /// Drops the fields the schema does not specify (except under
    /// `x-kubernetes-preserve-unknown-fields` and in embedded resources' metadata rules), and
    /// returns the dropped fields' paths as strict field validation names them (`.spec.foo`).
    pub fn prune(&self, object: &mut Value) -> Vec<String> {
        let _ = object;
        Vec::new()
    }

    /// Validates `object` against the schema and its CEL rules; `old` is the stored object on
    /// updates (for transition rules). Errors carry upstream's paths and messages.
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
        cel::validate(&self.root, object, old)
    }
}
