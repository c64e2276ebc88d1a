//! Custom resources' structural schemas, as apiextensions-apiserver applies them to every
//! custom resource write: structural checks of a CRD version's `openAPIV3Schema`, defaulting,
//! pruning of unknown fields, validation (types, formats, enums, patterns, bounds, required,
//! `x-kubernetes-*` extensions) and the `x-kubernetes-validations` CEL rules ([`cel`]).
//!
//! Pure functions over `serde_json::Value`: nothing here knows HTTP, storage or the registry.

pub mod cel;
pub mod formats;
pub mod prune;
pub mod structural;
pub mod validate;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use serde_json::Value;

use crate::field::{FieldError, Path};

/// The structural schema of one served version of a CRD.
#[derive(Clone, Debug)]
pub struct Schema {
    root: JSONSchemaProps,
    /// The CEL rules, compiled once.
    rules: std::sync::Arc<cel::Rules>,
}

impl Schema {
    /// The schema of a version from its `openAPIV3Schema`, or the field errors that make it
    /// non-structural (paths relative to the schema root).
    pub fn new(root: &JSONSchemaProps) -> Result<Schema, Vec<FieldError>> {
        let errs = structural::validate_structural(root, &Path::root());
        if !errs.is_empty() {
            return Err(errs);
        }
        let mut root = root.clone();
        prune::prune_defaults(&mut root, true);
        let rules = std::sync::Arc::new(cel::Rules::new(&root));
        Ok(Schema { root, rules })
    }

    /// The schema as given (with its `default`s pruned, as upstream stores them).
    pub fn props(&self) -> &JSONSchemaProps {
        &self.root
    }

    /// Sets the schema's `default`s on `object` (a whole custom resource, `apiVersion`,
    /// `kind` and `metadata` included), as on decoding a request body and reading from storage.
    pub fn apply_defaults(&self, object: &mut Value) {
        prune::apply_defaults(object, &self.root);
    }

    /// Drops the fields the schema does not specify (except under
    /// `x-kubernetes-preserve-unknown-fields`, and `apiVersion`, `kind` and `metadata` of the
    /// object and of embedded resources), then the `null`s of non-nullable fields without a
    /// default, as upstream's decoder does; returns the dropped fields' paths, sorted, as
    /// upstream reports them (`spec.foo`, `spec.items[0].bar`; strict field validation shows
    /// them as `unknown field "spec.foo"`).
    pub fn prune(&self, object: &mut Value) -> Vec<String> {
        let paths = prune::prune(object, &self.root, true);
        prune::prune_non_nullable_nulls(object, Some(&self.root));
        paths
    }

    /// Validates `object` against the schema and its CEL rules; `old` is the stored object on
    /// updates (for transition rules, and for ratcheting: errors of values unchanged from
    /// `old` are not reported). Errors carry upstream's paths and messages, in upstream's
    /// order: schema, embedded resources, list sets and maps, CEL rules (skipped with one
    /// error when an earlier error blocks them).
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let root = Path::root();
        let mut errs = validate::validate_against_schema(&self.root, object, old, &root);
        errs.extend(validate::validate_embedded_resources(&self.root, object, &root));
        errs.extend(self.list_errors(object, old));
        self.with_rules(errs, object, old)
    }

    /// Validates an update through the `status` subresource, as upstream's status strategy:
    /// the `status` schema against `.status` (paths under `status`, messages relative to
    /// it), list sets and maps, and the CEL rules.
    pub fn validate_status(&self, object: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if let (Some(status), Some(schema)) = (
            object.get("status"),
            self.root.properties.as_ref().and_then(|p| p.get("status")),
        ) {
            errs.extend(validate::validate_against_schema(
                schema,
                status,
                old.get("status"),
                &Path::new("status"),
            ));
        }
        errs.extend(self.list_errors(object, Some(old)));
        self.with_rules(errs, object, Some(old))
    }

    /// List set and map errors of `object`, unless `old` already had some (ratcheting).
    fn list_errors(&self, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
        let root = Path::root();
        let Some(map) = object.as_object() else {
            return Vec::new();
        };
        let old_valid = old
            .and_then(Value::as_object)
            .is_none_or(|old| validate::validate_list_sets_and_maps(&self.root, old, &root).is_empty());
        if old_valid {
            validate::validate_list_sets_and_maps(&self.root, map, &root)
        } else {
            Vec::new()
        }
    }

    fn with_rules(&self, mut errs: Vec<FieldError>, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
        if self.rules.is_empty() {
            return errs;
        }
        if errs.iter().any(validate::is_blocking) {
            errs.push(validate::rules_not_checked());
        } else {
            errs.extend(self.rules.validate(object, old));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use serde_json::json;

    use super::*;

    fn schema(value: Value) -> Schema {
        Schema::new(&serde_json::from_value(value).unwrap()).unwrap()
    }

    #[test]
    fn rejects_non_structural_schemas() {
        let errs =
            Schema::new(&serde_json::from_value(json!({"properties": {"a": {}}})).unwrap()).unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            vec![
                "properties[a].type: Required value: must not be empty for specified object fields",
                "type: Required value: must not be empty at the root",
            ]
        );
    }

    #[test]
    fn validates_prunes_and_defaults_a_custom_resource() {
        let s = schema(json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["replicas"], "properties": {
                "replicas": {"type": "integer", "maximum": 10},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "ports": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}},
            }},
        }}));
        let mut object = json!({
            "apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"},
            "spec": {"replicas": "many", "foo": 1, "ports": [1, 1]},
        });
        assert_eq!(s.prune(&mut object), vec!["spec.foo"]);
        s.apply_defaults(&mut object);
        assert_eq!(object["spec"]["mode"], "a");
        let shown: Vec<String> = s
            .validate(&object, None)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            vec![
                r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
                "spec.ports[1]: Duplicate value: 1",
            ]
        );
    }

    #[test]
    fn blocking_errors_skip_the_rules() {
        let s = schema(json!({"type": "object", "properties": {
            "spec": {"type": "object", "x-kubernetes-validations": [{"rule": "true"}], "properties": {
                "n": {"type": "integer"},
            }},
        }}));
        let shown: Vec<String> = s
            .validate(&json!({"spec": {"n": "x"}}), None)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            vec![
                r#"spec.n: Invalid value: "string": spec.n in body must be of type integer: "string""#,
                "<nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation",
            ]
        );
    }

    #[test]
    fn validates_status_updates_under_status() {
        let s = schema(json!({"type": "object", "properties": {
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        }}));
        let shown: Vec<String> = s
            .validate_status(&json!({"status": {"ready": 1}}), &json!({}))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            vec![
                r#"status.ready: Invalid value: "integer": ready in body must be of type boolean: "integer""#
            ]
        );
    }
}
