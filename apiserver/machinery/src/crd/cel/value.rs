//! Custom resource values as CEL sees them: a JSON value converted by its structural schema
//! (integers and doubles by `type`, int-or-string, objects with escaped property names, maps
//! from `additionalProperties`, embedded resources' `apiVersion`, `kind` and `metadata`), as
//! apiextensions-apiserver's `UnstructuredToVal` and `SchemaDeclType` do.
//!
//! Pure conversion: no evaluation happens here.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use cel::Value;
use cel::objects::{Key, Map};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value as Json;

/// The schema of a list's items, if it has one.
pub(super) fn items_schema(schema: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match schema.items.as_ref()? {
        JSONSchemaPropsOrArray::Schema(items) => Some(items),
        JSONSchemaPropsOrArray::Schemas(list) => list.first(),
    }
}

/// The schema of a map's values, if `additionalProperties` gives one.
pub(super) fn additional_schema(schema: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match schema.additional_properties.as_ref()? {
        JSONSchemaPropsOrBool::Schema(values) => Some(values),
        JSONSchemaPropsOrBool::Bool(_) => None,
    }
}

/// CEL's reserved words (cel-go's `parser.reservedIds`): not usable as identifiers.
pub const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// The CEL field name of a property (upstream's `Escape`), or `None` when a property cannot be
/// named in CEL (it is then invisible to rules).
pub fn escape(ident: &str) -> Option<String> {
    let first = ident.chars().next()?;
    if first.is_ascii_digit() {
        return None;
    }
    if RESERVED.contains(&ident) {
        return Some(format!("__{ident}__"));
    }
    let mut out = String::with_capacity(ident.len());
    let mut chars = ident.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

fn is_object_with_fields(schema: &JSONSchemaProps) -> bool {
    schema.properties.is_some() || schema.x_kubernetes_embedded_resource == Some(true)
}

/// Converts `value` by `schema`; `resource_root` adds the `apiVersion`, `kind` and
/// `metadata.name`/`generateName` every resource has.
pub fn to_cel(value: &Json, schema: &JSONSchemaProps, resource_root: bool) -> Value {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => number(n, schema),
        Json::String(s) => string(s, schema),
        Json::Array(items) => {
            let item_schema = items_schema(schema);
            Value::List(Arc::new(
                items
                    .iter()
                    .map(|item| match item_schema {
                        Some(s) => to_cel(item, s, s.x_kubernetes_embedded_resource == Some(true)),
                        None => dynamic(item),
                    })
                    .collect(),
            ))
        }
        Json::Object(fields) => {
            let mut map = HashMap::with_capacity(fields.len());
            if resource_root || is_object_with_fields(schema) {
                let embedded = resource_root || schema.x_kubernetes_embedded_resource == Some(true);
                let properties = schema.properties.as_ref();
                for (name, field) in fields {
                    let Some(escaped) = escape(name) else { continue };
                    match properties.and_then(|p| p.get(name)) {
                        _ if embedded && (name == "apiVersion" || name == "kind") => {
                            if let Json::String(s) = field {
                                map.insert(Key::from(escaped), Value::from(s.clone()));
                            }
                        }
                        _ if embedded && name == "metadata" => {
                            map.insert(Key::from(escaped), metadata(field));
                        }
                        Some(field_schema) => {
                            let embedded_field = field_schema.x_kubernetes_embedded_resource == Some(true);
                            map.insert(Key::from(escaped), to_cel(field, field_schema, embedded_field));
                        }
                        None => {}
                    }
                }
            } else if let Some(values) = additional_schema(schema) {
                let embedded = values.x_kubernetes_embedded_resource == Some(true);
                for (name, field) in fields {
                    map.insert(Key::from(name.clone()), to_cel(field, values, embedded));
                }
            } else {
                for (name, field) in fields {
                    map.insert(Key::from(name.clone()), dynamic(field));
                }
            }
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}

/// The metadata CEL sees of an embedded resource: `name` and `generateName`.
fn metadata(value: &Json) -> Value {
    let mut map = HashMap::new();
    if let Json::Object(fields) = value {
        for name in ["name", "generateName"] {
            if let Some(Json::String(s)) = fields.get(name) {
                map.insert(Key::from(name.to_owned()), Value::from(s.clone()));
            }
        }
    }
    Value::Map(Map { map: Arc::new(map) })
}

fn number(n: &serde_json::Number, schema: &JSONSchemaProps) -> Value {
    let as_double = schema.type_.as_deref() == Some("number");
    if !as_double {
        if let Some(i) = n.as_i64() {
            return Value::Int(i);
        }
        if let Some(f) = n.as_f64()
            && schema.type_.as_deref() == Some("integer")
            && f.fract() == 0.0
            && f.abs() < 9.2e18
        {
            #[allow(clippy::cast_possible_truncation)]
            return Value::Int(f as i64);
        }
    }
    Value::Float(n.as_f64().unwrap_or(f64::NAN))
}

fn string(s: &str, schema: &JSONSchemaProps) -> Value {
    if schema.type_.as_deref() == Some("string")
        && schema.format.as_deref() == Some("byte")
        && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s)
    {
        return Value::Bytes(Arc::new(bytes));
    }
    Value::from(s.to_owned())
}

/// A value without schema (under `x-kubernetes-preserve-unknown-fields`): JSON types.
pub fn dynamic(value: &Json) -> Value {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::from(s.clone()),
        Json::Array(items) => Value::List(Arc::new(items.iter().map(dynamic).collect())),
        Json::Object(fields) => Value::Map(Map {
            map: Arc::new(
                fields
                    .iter()
                    .map(|(k, v)| (Key::from(k.clone()), dynamic(v)))
                    .collect(),
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn escapes_like_upstream() {
        assert_eq!(escape("namespace").as_deref(), Some("__namespace__"));
        assert_eq!(escape("self").as_deref(), Some("self"));
        assert_eq!(escape("a-b.c/d").as_deref(), Some("a__dash__b__dot__c__slash__d"));
        assert_eq!(escape("a__b").as_deref(), Some("a__underscores__b"));
        assert_eq!(escape("1abc"), None);
        assert_eq!(escape("a@b"), None);
        assert_eq!(escape(""), None);
    }
}
