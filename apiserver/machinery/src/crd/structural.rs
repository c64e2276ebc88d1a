//! Whether a CRD version's `openAPIV3Schema` is structural, as apiextensions-apiserver's
//! `schema.ValidateStructural` decides: types everywhere, `items` for arrays, no
//! `additionalProperties` at the root, only value validations inside `allOf`/`anyOf`/`oneOf`/
//! `not` (and only for fields the structural part specifies), metadata limited to `name` and
//! `generateName`, consistent `x-kubernetes-*` extensions. Messages and paths are upstream's.
//!
//! Pure: reads a schema, returns field errors.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray,
};

use super::validate::{additional_schema, items_schema};
use crate::field::{FieldError, Path};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

/// Upstream's `ValidateStructural`: the errors that make `schema` non-structural, sorted by
/// their text, with paths under `path`.
pub fn validate_structural(schema: &JSONSchemaProps, path: &Path) -> Vec<FieldError> {
    let mut errs = invariants(schema, Level::Root, path);
    errs.extend(completeness(schema, path, path));
    errs.sort_by_key(ToString::to_string);
    errs
}

fn type_of(schema: &JSONSchemaProps) -> &str {
    schema.type_.as_deref().unwrap_or_default()
}

fn flag(value: Option<bool>) -> bool {
    value == Some(true)
}

fn properties(schema: &JSONSchemaProps) -> impl Iterator<Item = (&String, &JSONSchemaProps)> {
    schema.properties.iter().flatten()
}

/// `anyOf: [{type: integer}, {type: string}]`, exactly.
fn is_int_or_string_any_of(any_of: Option<&Vec<JSONSchemaProps>>) -> bool {
    let only_type = |s: &JSONSchemaProps, t: &str| {
        *s == JSONSchemaProps {
            type_: Some(t.to_owned()),
            ..JSONSchemaProps::default()
        }
    };
    matches!(any_of.map(Vec::as_slice), Some([a, b]) if only_type(a, "integer") && only_type(b, "string"))
}

fn invariants(s: &JSONSchemaProps, level: Level, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let t = type_of(s);
    if t == "array" && s.items.is_none() {
        errs.push(FieldError::required(&path.child("items"), "must be specified"));
    }
    if let Some(items) = items_schema(s) {
        errs.extend(invariants(items, Level::Item, &path.child("items")));
    }
    for (key, property) in properties(s) {
        errs.extend(invariants(
            property,
            Level::Field,
            &path.child("properties").key(key),
        ));
    }
    if s.additional_properties.is_some() {
        if level == Level::Root {
            errs.push(FieldError::forbidden(
                &path.child("additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let Some(additional) = additional_schema(s) {
            errs.extend(invariants(
                additional,
                Level::Field,
                &path.child("additionalProperties"),
            ));
        }
    }
    let int_or_string = flag(s.x_kubernetes_int_or_string);
    let preserve = flag(s.x_kubernetes_preserve_unknown_fields);
    let embedded = flag(s.x_kubernetes_embedded_resource);
    if int_or_string && preserve {
        errs.push(FieldError::invalid(
            &path.child("x-kubernetes-preserve-unknown-fields"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        errs.push(FieldError::invalid(
            &path.child("x-kubernetes-embedded-resource"),
            true,
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = is_int_or_string_any_of(s.any_of.as_ref());
    let skip_first_all_of_any_of = s
        .all_of
        .as_ref()
        .and_then(|all| all.first())
        .is_some_and(|first| is_int_or_string_any_of(first.any_of.as_ref()));
    errs.extend(value_validation(s, skip_any_of, skip_first_all_of_any_of, path));

    let check_metadata = level == Level::Root || embedded;
    if embedded && t != "object" {
        if t.is_empty() {
            errs.push(FieldError::required(
                &path.child("type"),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        } else {
            errs.push(FieldError::invalid(
                &path.child("type"),
                t,
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
    } else if t.is_empty() && !int_or_string && !preserve {
        let detail = match level {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(&path.child("type"), detail));
    }
    if embedded && s.additional_properties.is_some() {
        errs.push(FieldError::forbidden(
            &path.child("additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if level == Level::Root && !t.is_empty() && t != "object" {
        errs.push(FieldError::invalid(
            &path.child("type"),
            t,
            "must be object at the root",
        ));
    }
    let props = s.properties.as_ref();
    for meta_field in ["kind", "apiVersion"] {
        if let Some(p) = props.and_then(|p| p.get(meta_field))
            && check_metadata
            && type_of(p) != "string"
        {
            errs.push(FieldError::invalid(
                &path.child("properties").key(meta_field).child("type"),
                type_of(p),
                "must be string",
            ));
        }
    }
    if let Some(metadata) = props.and_then(|p| p.get("metadata")) {
        let meta_path = path.child("properties").key("metadata");
        if check_metadata && type_of(metadata) != "object" {
            errs.push(FieldError::invalid(
                &meta_path.child("type"),
                type_of(metadata),
                "must be object",
            ));
        }
        if level == Level::Root && !metadata_is_implicit(metadata) {
            errs.push(FieldError::forbidden(
                &meta_path,
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    if embedded && !preserve && props.is_none_or(|p| p.is_empty()) {
        errs.push(FieldError::required(
            &path.child("properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
    errs
}

/// The root's `metadata` schema sets nothing but its type, a default and the `name` and
/// `generateName` properties.
fn metadata_is_implicit(metadata: &JSONSchemaProps) -> bool {
    let mut rest = metadata.clone();
    rest.type_ = None;
    rest.default = None;
    if let Some(p) = &rest.properties {
        let only_names = p.keys().all(|k| k == "name" || k == "generateName");
        if only_names && !p.is_empty() {
            rest.properties = None;
        }
    }
    rest == JSONSchemaProps::default()
}

/// Upstream's `validateValueValidation`: the nested schemas of `anyOf`, `allOf`, `oneOf` and
/// `not`, and a compilable `pattern`.
fn value_validation(
    s: &JSONSchemaProps,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !skip_any_of {
        for (i, nested) in s.any_of.iter().flatten().enumerate() {
            errs.extend(nested_value_validation(
                nested,
                false,
                &path.child("anyOf").index(i),
            ));
        }
    }
    for (i, nested) in s.all_of.iter().flatten().enumerate() {
        let skip = skip_first_all_of_any_of && i == 0;
        errs.extend(nested_value_validation(
            nested,
            skip,
            &path.child("allOf").index(i),
        ));
    }
    for (i, nested) in s.one_of.iter().flatten().enumerate() {
        errs.extend(nested_value_validation(
            nested,
            false,
            &path.child("oneOf").index(i),
        ));
    }
    if let Some(not) = &s.not {
        errs.extend(nested_value_validation(not, false, &path.child("not")));
    }
    if let Some(pattern) = s.pattern.as_deref().filter(|p| !p.is_empty())
        && let Err(e) = regex::Regex::new(pattern)
    {
        errs.push(FieldError::invalid(
            &path.child("pattern"),
            pattern,
            format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
    errs
}

/// Upstream's `validateNestedValueValidation`: inside a logical junctor only value
/// validations are allowed.
fn nested_value_validation(v: &JSONSchemaProps, skip_any_of: bool, path: &Path) -> Vec<FieldError> {
    let mut errs = value_validation(v, skip_any_of, false, path);
    if let Some(items) = items_schema(v) {
        errs.extend(nested_value_validation(items, false, &path.child("items")));
    }
    for (key, property) in properties(v) {
        errs.extend(nested_value_validation(
            property,
            false,
            &path.child("properties").key(key),
        ));
    }
    let forbid = |errs: &mut Vec<FieldError>, set: bool, name: &str, detail: &str| {
        if set {
            errs.push(FieldError::forbidden(&path.child(name), detail));
        }
    };
    forbid(
        &mut errs,
        !type_of(v).is_empty(),
        "type",
        "must be empty to be structural",
    );
    forbid(
        &mut errs,
        v.additional_properties.is_some(),
        "additionalProperties",
        "must be undefined to be structural",
    );
    forbid(
        &mut errs,
        v.default.is_some(),
        "default",
        "must be undefined to be structural",
    );
    forbid(
        &mut errs,
        v.title.as_deref().is_some_and(|t| !t.is_empty()),
        "title",
        "must be empty to be structural",
    );
    forbid(
        &mut errs,
        v.description.as_deref().is_some_and(|d| !d.is_empty()),
        "description",
        "must be empty to be structural",
    );
    forbid(
        &mut errs,
        flag(v.nullable),
        "nullable",
        "must be false to be structural",
    );
    forbid(
        &mut errs,
        flag(v.x_kubernetes_preserve_unknown_fields),
        "x-kubernetes-preserve-unknown-fields",
        "must be false to be structural",
    );
    forbid(
        &mut errs,
        flag(v.x_kubernetes_embedded_resource),
        "x-kubernetes-embedded-resource",
        "must be false to be structural",
    );
    forbid(
        &mut errs,
        flag(v.x_kubernetes_int_or_string),
        "x-kubernetes-int-or-string",
        "must be false to be structural",
    );
    forbid(
        &mut errs,
        v.x_kubernetes_list_map_keys
            .as_ref()
            .is_some_and(|k| !k.is_empty()),
        "x-kubernetes-list-map-keys",
        "must be empty to be structural",
    );
    forbid(
        &mut errs,
        v.x_kubernetes_list_type.is_some(),
        "x-kubernetes-list-type",
        "must be undefined to be structural",
    );
    forbid(
        &mut errs,
        v.x_kubernetes_map_type.is_some(),
        "x-kubernetes-map-type",
        "must be undefined to be structural",
    );
    forbid(
        &mut errs,
        v.x_kubernetes_validations.as_ref().is_some_and(|r| !r.is_empty()),
        "x-kubernetes-validations",
        "must be empty to be structural",
    );
    if v.properties.as_ref().is_some_and(|p| p.contains_key("metadata")) {
        errs.push(FieldError::forbidden(
            &path.child("properties").key("metadata"),
            "must not be specified in a nested context",
        ));
    }
    errs
}

/// Upstream's `validateStructuralCompleteness`: every field a value validation names is
/// specified by the structural part of the schema.
fn completeness(s: &JSONSchemaProps, s_path: &Path, v_path: &Path) -> Vec<FieldError> {
    junctor_completeness(s, Some(s), s_path, v_path)
}

fn junctor_completeness(
    v: &JSONSchemaProps,
    s: Option<&JSONSchemaProps>,
    s_path: &Path,
    v_path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(not) = &v.not {
        errs.extend(nested_completeness(not, s, s_path, &v_path.child("not")));
    }
    for (name, list) in [("allOf", &v.all_of), ("anyOf", &v.any_of), ("oneOf", &v.one_of)] {
        for (i, nested) in list.iter().flatten().enumerate() {
            errs.extend(nested_completeness(
                nested,
                s,
                s_path,
                &v_path.child(name).index(i),
            ));
        }
    }
    errs
}

fn nested_completeness(
    v: &JSONSchemaProps,
    s: Option<&JSONSchemaProps>,
    s_path: &Path,
    v_path: &Path,
) -> Vec<FieldError> {
    let Some(s) = s else {
        return vec![FieldError::required(
            s_path,
            format!("because it is defined in {v_path}"),
        )];
    };
    let mut errs = junctor_completeness(v, Some(s), s_path, v_path);
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &v.items {
        errs.extend(nested_completeness(
            items,
            items_schema(s),
            &s_path.child("items"),
            &v_path.child("items"),
        ));
    }
    for (key, v_field) in properties(v) {
        let v_field_path = v_path.child("properties").key(key);
        match s.properties.as_ref().and_then(|p| p.get(key)) {
            Some(s_field) => errs.extend(nested_completeness(
                v_field,
                Some(s_field),
                &s_path.child("properties").key(key),
                &v_field_path,
            )),
            None => errs.push(FieldError::required(
                &s_path.child("properties").key(key),
                format!("because it is defined in {v_field_path}"),
            )),
        }
    }
    errs
}

/// Upstream's `defaulting.ValidateDefaults` for a structural schema: every `default` (outside
/// embedded resources' metadata) is pruned and valid against its schema. CEL rules on
/// defaults are not evaluated here.
pub fn validate_defaults(schema: &JSONSchemaProps, path: &Path) -> Vec<FieldError> {
    let mut root = schema.clone();
    root.x_kubernetes_embedded_resource = Some(true);
    defaults_of(&root, path, false)
}

fn defaults_of(s: &JSONSchemaProps, path: &Path, inside_meta: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let embedded = flag(s.x_kubernetes_embedded_resource);
    let inside_meta = inside_meta && !embedded;
    if let Some(default) = s.default.as_ref().map(|d| &d.0).filter(|d| !d.is_null())
        && !inside_meta
    {
        let default_path = path.child("default");
        let mut pruned = default.clone();
        super::prune::prune(&mut pruned, s, embedded);
        if &pruned != default {
            errs.push(FieldError::invalid(
                &default_path,
                super::validate::bad_value_of(default),
                "must not have unknown fields",
            ));
        }
        let embedded_errs = if embedded {
            super::validate::validate_embedded_resources(s, default, &default_path)
        } else {
            let mut plain = s.clone();
            plain.x_kubernetes_embedded_resource = None;
            super::validate::validate_embedded_resources(&plain, default, &default_path)
        };
        if embedded_errs.is_empty() {
            errs.extend(super::validate::validate_against_schema(
                s,
                default,
                None,
                &default_path,
            ));
        } else {
            errs.extend(embedded_errs);
        }
    }
    if let Some(items) = items_schema(s) {
        errs.extend(defaults_of(items, &path.child("items"), inside_meta));
    }
    for (key, property) in properties(s) {
        let sub_inside_meta =
            inside_meta || (embedded && ["metadata", "apiVersion", "kind"].contains(&key.as_str()));
        errs.extend(defaults_of(
            property,
            &path.child("properties").key(key),
            sub_inside_meta,
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use serde_json::{Value, json};

    use super::*;

    fn errors(schema: &Value) -> Vec<String> {
        let schema: JSONSchemaProps = serde_json::from_value(schema.clone()).unwrap();
        validate_structural(&schema, &Path::new("spec.validation.openAPIV3Schema"))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn accepts_structural_schemas() {
        let schema = json!({
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": {"type": "object", "properties": {
                    "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "list": {"type": "array", "items": {"type": "string"}},
                    "free": {"x-kubernetes-preserve-unknown-fields": true},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
                    "choice": {"type": "string", "oneOf": [{"pattern": "^a"}, {"pattern": "^b"}]},
                }},
            },
        });
        assert_eq!(errors(&schema), Vec::<String>::new());
    }

    #[test]
    fn reports_what_makes_a_schema_non_structural() {
        let p = "spec.validation.openAPIV3Schema";
        assert_eq!(
            errors(
                &json!({"properties": {"a": {}, "l": {"type": "array"}}, "additionalProperties": {"type": "string"}})
            ),
            vec![
                format!("{p}.additionalProperties: Forbidden: must not be used at the root"),
                format!(
                    "{p}.properties[a].type: Required value: must not be empty for specified object fields"
                ),
                format!("{p}.properties[l].items: Required value: must be specified"),
                format!("{p}.type: Required value: must not be empty at the root"),
            ]
        );
        assert_eq!(
            errors(&json!({"type": "object", "properties": {
                "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
                "kind": {"type": "integer"},
                "e": {"type": "object", "x-kubernetes-embedded-resource": true},
                "s": {"type": "string", "allOf": [{"type": "string", "default": "x", "nullable": true, "properties": {"metadata": {}}}]},
            }})),
            vec![
                format!(
                    "{p}.properties[e].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields"
                ),
                format!("{p}.properties[kind].type: Invalid value: \"integer\": must be string"),
                format!(
                    "{p}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
                ),
                format!("{p}.properties[s].allOf[0].default: Forbidden: must be undefined to be structural"),
                format!("{p}.properties[s].allOf[0].nullable: Forbidden: must be false to be structural"),
                format!(
                    "{p}.properties[s].allOf[0].properties[metadata]: Forbidden: must not be specified in a nested context"
                ),
                format!("{p}.properties[s].allOf[0].type: Forbidden: must be empty to be structural"),
            ]
        );
    }

    #[test]
    fn value_validations_need_structural_fields() {
        // Upstream's TestValidateStructuralCompleteness.
        let schema: JSONSchemaProps = serde_json::from_value(json!({
            "additionalProperties": {"type": "object", "properties": {"bar": {"type": "string"}}},
            "allOf": [{"properties": {"foo": {"minLength": 2}}}],
        }))
        .unwrap();
        let errs: Vec<String> = completeness(&schema, &Path::root(), &Path::root())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            vec!["properties[foo]: Required value: because it is defined in allOf[0].properties[foo]"]
        );
    }

    #[test]
    fn defaults_must_be_pruned_and_valid() {
        let schema: JSONSchemaProps = serde_json::from_value(json!({"type": "object", "properties": {
            "a": {"type": "integer", "default": "x"},
            "b": {"type": "object", "properties": {"k": {"type": "string"}}, "default": {"k": "v", "u": 1}},
            "c": {"type": "array", "items": {"type": "string", "maxLength": 1, "default": "long"}},
            "ok": {"type": "string", "default": "fine"},
        }}))
        .unwrap();
        let errs: Vec<String> = validate_defaults(&schema, &Path::new("spec.validation.openAPIV3Schema"))
            .iter()
            .map(ToString::to_string)
            .collect();
        let p = "spec.validation.openAPIV3Schema";
        assert_eq!(
            errs,
            vec![
                format!(
                    r#"{p}.properties[a].default: Invalid value: "string":  in body must be of type integer: "string""#
                ),
                format!(
                    r#"{p}.properties[b].default: Invalid value: {{"k":"v","u":1}}: must not have unknown fields"#
                ),
                format!("{p}.properties[c].items.default: Too long: may not be more than 1 byte"),
            ]
        );
    }
}
