//! Structural pruning and defaulting of custom resources, as apiextensions-apiserver's
//! `schema/pruning` and `schema/defaulting` do on every decode: unknown fields dropped (with
//! the paths strict field validation reports), nulls of non-nullable fields without defaults
//! dropped, then `default`s set (inside items and `additionalProperties` too).
//!
//! Pure functions over `serde_json::Value` and the schema.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use serde_json::Value;

use super::validate::{additional_schema, items_schema};

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn preserves_unknown(schema: &JSONSchemaProps) -> bool {
    schema.x_kubernetes_preserve_unknown_fields == Some(true)
}

fn embedded(schema: &JSONSchemaProps) -> bool {
    schema.x_kubernetes_embedded_resource == Some(true)
}

fn property<'a>(schema: &'a JSONSchemaProps, key: &str) -> Option<&'a JSONSchemaProps> {
    schema.properties.as_ref().and_then(|p| p.get(key))
}

/// The path of a child field, as upstream's `UnknownFieldPathOptions` joins them.
fn key_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// Upstream's `PruneWithOptions`: drops what `schema` does not specify from `object` and
/// returns the dropped fields' paths, sorted (`spec.foo`, `spec.items[0].bar`). With
/// `resource_root`, `apiVersion`, `kind` and `metadata` of the object are kept.
pub fn prune(object: &mut Value, schema: &JSONSchemaProps, resource_root: bool) -> Vec<String> {
    let mut paths = Vec::new();
    if resource_root && !embedded(schema) {
        let mut root = schema.clone();
        root.x_kubernetes_embedded_resource = Some(true);
        prune_value(object, Some(&root), "", &mut paths);
    } else {
        prune_value(object, Some(schema), "", &mut paths);
    }
    paths.sort();
    paths
}

fn prune_value(value: &mut Value, schema: Option<&JSONSchemaProps>, path: &str, paths: &mut Vec<String>) {
    if let Some(s) = schema
        && preserves_unknown(s)
    {
        skip_prune(value, s, path, paths);
        return;
    }
    match value {
        Value::Object(map) => {
            let Some(s) = schema else {
                for key in map.keys() {
                    paths.push(key_path(path, key));
                }
                map.clear();
                return;
            };
            let mut dropped = Vec::new();
            for (key, child) in map.iter_mut() {
                if embedded(s) && META_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                if let Some(p) = property(s, key) {
                    prune_value(child, Some(p), &key_path(path, key), paths);
                } else if s.additional_properties.is_some() {
                    prune_value(child, additional_schema(s), &key_path(path, key), paths);
                } else {
                    if !META_FIELDS.contains(&key.as_str()) || !path.is_empty() {
                        paths.push(key_path(path, key));
                    }
                    dropped.push(key.clone());
                }
            }
            for key in dropped {
                map.remove(&key);
            }
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(items_schema);
            for (i, item) in items.iter_mut().enumerate() {
                prune_value(item, item_schema, &format!("{path}[{i}]"), paths);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`: unknown fields stay, known ones are pruned by
/// their schemas.
fn skip_prune(value: &mut Value, schema: &JSONSchemaProps, path: &str, paths: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if embedded(schema) && META_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                if let Some(p) = property(schema, key) {
                    prune_value(child, Some(p), &key_path(path, key), paths);
                } else if schema.additional_properties.is_some() {
                    prune_value(child, additional_schema(schema), &key_path(path, key), paths);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = items_schema(schema) {
                for (i, item) in items.iter_mut().enumerate() {
                    skip_prune(item, item_schema, &format!("{path}[{i}]"), paths);
                }
            }
        }
        _ => {}
    }
}

fn nullable(schema: &JSONSchemaProps) -> bool {
    schema.nullable == Some(true)
}

fn default_of(schema: &JSONSchemaProps) -> Option<&Value> {
    schema.default.as_ref().map(|d| &d.0).filter(|d| !d.is_null())
}

fn field_schema<'a>(schema: Option<&'a JSONSchemaProps>, key: &str) -> Option<&'a JSONSchemaProps> {
    let s = schema?;
    property(s, key).or_else(|| additional_schema(s))
}

/// Upstream's `PruneNonNullableNullsWithoutDefaults`: drops `null` fields whose schema is
/// neither nullable nor defaulted.
pub fn prune_non_nullable_nulls(value: &mut Value, schema: Option<&JSONSchemaProps>) {
    match value {
        Value::Object(map) => {
            map.retain(|key, child| {
                let s = field_schema(schema, key);
                !(child.is_null() && s.is_some_and(|s| !nullable(s) && default_of(s).is_none()))
            });
            for (key, child) in map.iter_mut() {
                prune_non_nullable_nulls(child, field_schema(schema, key));
            }
        }
        Value::Array(items) => {
            let item_schema = schema.and_then(items_schema);
            for item in items {
                prune_non_nullable_nulls(item, item_schema);
            }
        }
        _ => {}
    }
}

fn non_nullable_null(value: &Value, schema: Option<&JSONSchemaProps>) -> bool {
    value.is_null() && schema.is_some_and(|s| !nullable(s))
}

/// Upstream's `Default`: missing fields (and non-nullable nulls) with a `default` get it,
/// recursively, in properties, list items and map values.
pub fn apply_defaults(value: &mut Value, schema: &JSONSchemaProps) {
    match value {
        Value::Object(map) => {
            for (key, property) in schema.properties.iter().flatten() {
                let Some(default) = default_of(property) else {
                    continue;
                };
                let missing = map.get(key).is_none_or(|v| non_nullable_null(v, Some(property)));
                if missing {
                    map.insert(key.clone(), default.clone());
                }
            }
            let additional = additional_schema(schema);
            for (key, child) in map.iter_mut() {
                if let Some(property) = property(schema, key) {
                    apply_defaults(child, property);
                } else if let Some(additional) = additional {
                    if non_nullable_null(child, Some(additional)) {
                        *child = default_of(additional).cloned().unwrap_or(Value::Null);
                    }
                    apply_defaults(child, additional);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = items_schema(schema) {
                for item in items {
                    if non_nullable_null(item, Some(item_schema)) {
                        *item = default_of(item_schema).cloned().unwrap_or(Value::Null);
                    }
                    apply_defaults(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

/// Upstream's `PruneDefaults`: the `default`s of a schema pruned by the schema at their place,
/// as the API server does once when it builds a CRD version's structural schema.
pub fn prune_defaults(schema: &mut JSONSchemaProps, resource_root: bool) {
    if let Some(default) = schema.default.as_mut().map(|d| &mut d.0)
        && !default.is_null()
    {
        let mut pruned = default.clone();
        let local = schema.clone();
        prune(&mut pruned, &local, resource_root);
        if let Some(d) = schema.default.as_mut() {
            d.0 = pruned;
        }
    }
    for property in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        prune_defaults(property, false);
    }
    if let Some(
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrArray::Schema(
            items,
        ),
    ) = schema.items.as_mut()
    {
        prune_defaults(items, false);
    }
    if let Some(
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaPropsOrBool::Schema(
            additional,
        ),
    ) = schema.additional_properties.as_mut()
    {
        prune_defaults(additional, false);
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::needless_pass_by_value
    )]

    use serde_json::json;

    use super::*;

    fn schema(value: Value) -> JSONSchemaProps {
        serde_json::from_value(value).unwrap()
    }

    fn check_prune(schema_json: Value, resource_root: bool, object: Value, expected: Value, pruned: &[&str]) {
        let schema = schema(schema_json);
        let mut object = object;
        assert_eq!(prune(&mut object, &schema, resource_root), pruned);
        assert_eq!(object, expected);
    }

    #[test]
    fn prunes_like_upstream() {
        // Cases of upstream's pkg/apiserver/schema/pruning TestPrune.
        check_prune(json!({"items": {}}), false, json!([1, 2]), json!([1, 2]), &[]);
        check_prune(
            json!({"items": {"properties": {"a": {}, "c": {}}}}),
            false,
            json!([{"a": 1}, {"b": 1}, {"a": 1, "b": 2, "c": 3}]),
            json!([{"a": 1}, {}, {"a": 1, "c": 3}]),
            &["[1].b", "[2].b"],
        );
        check_prune(
            json!({"properties": {
                "array": {"items": {"properties": {"a": {}, "c": {}}}},
                "specified": {"properties": {"a": {}, "c": {}}},
            }}),
            false,
            json!({"array": [{"a": 1}, {"b": 1}, {"a": 1, "b": 2, "c": 3}], "unspecified": {"a": 1}, "specified": {"a": 1, "b": 2, "c": 3}}),
            json!({"array": [{"a": 1}, {}, {"a": 1, "c": 3}], "specified": {"a": 1, "c": 3}}),
            &["array[1].b", "array[2].b", "specified.b", "unspecified"],
        );
        check_prune(
            json!({"properties": {"a": {}, "c": {"additionalProperties": {"type": "integer"}}}}),
            false,
            json!({"a": 1, "b": 1, "c": {"a": 1, "b": 2, "c": {"a": 1}}}),
            json!({"a": 1, "c": {"a": 1, "b": 2, "c": {}}}),
            &["b", "c.c.a"],
        );
        check_prune(
            json!({"properties": {"a": {}, "c": {"additionalProperties": false}}}),
            false,
            json!({"a": 1, "b": 1, "c": {"a": 1, "b": 2, "c": {"a": 1, "apiVersion": "unknown"}}}),
            json!({"a": 1, "c": {"a": 1, "b": 2, "c": {}}}),
            &["b", "c.c.a", "c.c.apiVersion"],
        );
    }

    #[test]
    fn keeps_meta_fields_of_roots_and_embedded_resources() {
        check_prune(
            json!({"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object"}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"known": {"type": "object"}}},
            }}),
            true,
            json!({
                "apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
                "spec": {"replicas": 1, "foo": 2, "metadata": {}},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "extra": true, "spec": {"x": 1}},
                "free": {"anything": [1], "known": {"dropped": 1}},
                "status": {},
            }),
            json!({
                "apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a"},
                "spec": {"replicas": 1},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
                "free": {"anything": [1], "known": {}},
            }),
            &[
                "free.known.dropped",
                "spec.foo",
                "spec.metadata",
                "status",
                "template.extra",
                "template.spec.x",
            ],
        );
    }

    #[test]
    fn prunes_non_nullable_nulls_without_defaults() {
        let schema = schema(json!({"properties": {
            "a": {"type": "string"},
            "b": {"type": "string", "nullable": true},
            "c": {"type": "string", "default": "x"},
            "m": {"additionalProperties": {"type": "string"}},
            "l": {"items": {"type": "object", "properties": {"d": {"type": "integer"}}}},
        }}));
        let mut object =
            json!({"a": null, "b": null, "c": null, "u": null, "m": {"k": null}, "l": [{"d": null}]});
        prune_non_nullable_nulls(&mut object, Some(&schema));
        assert_eq!(
            object,
            json!({"b": null, "c": null, "u": null, "m": {}, "l": [{}]})
        );
    }

    #[test]
    fn defaults_like_upstream() {
        // Cases of upstream's pkg/apiserver/schema/defaulting TestDefault.
        let schema = schema(json!({"properties": {
            "a": {"type": "string", "default": "A"},
            "b": {"type": "string", "default": "B", "nullable": true},
            "c": {"type": "string", "default": "C"},
            "obj": {"type": "object", "default": {}, "properties": {"x": {"type": "integer", "default": 1}}},
            "list": {"items": {"type": "object", "default": {"k": "d"}, "properties": {"y": {"type": "string", "default": "Y"}}}},
            "map": {"additionalProperties": {"type": "object", "default": {"z": 0}, "properties": {"w": {"default": "W"}}}},
        }}));
        let mut object =
            json!({"b": null, "c": null, "list": [{}, null, {"y": "set"}], "map": {"k": null, "j": {}}});
        apply_defaults(&mut object, &schema);
        assert_eq!(
            object,
            json!({
                "a": "A",
                "b": null,
                "c": "C",
                "obj": {"x": 1},
                "list": [{"y": "Y"}, {"k": "d", "y": "Y"}, {"y": "set"}],
                "map": {"k": {"z": 0, "w": "W"}, "j": {"w": "W"}},
            })
        );
    }

    #[test]
    fn prunes_defaults_by_their_schema() {
        let mut schema = schema(json!({"type": "object", "properties": {"spec": {
            "type": "object",
            "default": {"known": 1, "unknown": 2},
            "properties": {"known": {"type": "integer"}},
        }}}));
        prune_defaults(&mut schema, true);
        let spec = &schema.properties.as_ref().unwrap()["spec"];
        assert_eq!(spec.default.as_ref().unwrap().0, json!({"known": 1}));
    }
}
