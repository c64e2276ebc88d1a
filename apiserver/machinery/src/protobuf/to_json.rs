//! Decoded messages to JSON: the JSON Go's `encoding/json` writes for the Go object the
//! message decodes into (field names, inlined structs, `omitempty`/`omitzero`, nil slices and
//! maps, zero values of absent non-pointer fields, and the special types).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost_reflect::{DynamicMessage, MapKey, Value as PbValue};
use serde_json::{Map, Number, Value};

use super::ProtobufError;
use super::registry::{Elem, FieldFacts, FieldInfo, MessageInfo, Registry, Shape, Special};
use super::special;
use crate::validation::quantity::canonical_quantity_string;

/// The JSON of a message described by `info`.
pub(super) fn message(
    registry: &Registry,
    info: &MessageInfo,
    message: &DynamicMessage,
) -> Result<Value, ProtobufError> {
    if let Some(special) = info.special {
        return special_value(registry, special, info, message);
    }
    let mut map = Map::new();
    fields_into(registry, info, message, &mut map)?;
    Ok(Value::Object(map))
}

/// Adds the JSON fields of a (non-special) message to `map`.
fn fields_into(
    registry: &Registry,
    info: &MessageInfo,
    message: &DynamicMessage,
    map: &mut Map<String, Value>,
) -> Result<(), ProtobufError> {
    for field in &info.fields {
        if field.facts.inline {
            if let (Shape::Single(Elem::Message(index)), true) = (
                &field.shape,
                !field.facts.pointer || message.has_field(&field.field),
            ) && let PbValue::Message(inner) = message.get_field(&field.field).as_ref()
            {
                fields_into(registry, registry.info(*index), inner, map)?;
            }
            continue;
        }
        if let Some(value) = field_value(registry, message, field)? {
            map.insert(field.json.clone(), value);
        }
    }
    Ok(())
}

/// What Go writes for an unset slice, map or pointer: nothing with `omitempty`, else `null`.
pub(super) fn nil(facts: &FieldFacts) -> Option<Value> {
    if facts.omits_empty() {
        None
    } else {
        Some(Value::Null)
    }
}

/// The JSON of one field, `None` when Go leaves it out.
fn field_value(
    registry: &Registry,
    message: &DynamicMessage,
    info: &FieldInfo,
) -> Result<Option<Value>, ProtobufError> {
    let facts = &info.facts;
    match &info.shape {
        Shape::Map { value: elem, .. } => {
            let value = message.get_field(&info.field);
            let Some(entries) = value.as_map() else {
                return Err(decode_error(info, "not a map"));
            };
            if entries.is_empty() {
                return Ok(nil(facts));
            }
            let mut map = Map::new();
            for (key, item) in entries {
                map.insert(map_key(key), element(registry, elem, item)?);
            }
            Ok(Some(Value::Object(map)))
        }
        Shape::List(elem) => {
            let value = message.get_field(&info.field);
            let Some(items) = value.as_list() else {
                return Err(decode_error(info, "not a list"));
            };
            if items.is_empty() {
                return Ok(nil(facts));
            }
            let items = items
                .iter()
                .map(|item| element(registry, elem, item))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(Value::Array(items)))
        }
        Shape::Single(Elem::Message(index)) => {
            let present = message.has_field(&info.field);
            let child = registry.info(*index);
            if child.special == Some(Special::List) {
                // A named slice: nil when absent, else (even empty) its items.
                if !present {
                    return Ok(nil(facts));
                }
                let value = message.get_field(&info.field);
                let PbValue::Message(inner) = value.as_ref() else {
                    return Err(decode_error(info, "not a message"));
                };
                return Ok(match list_wrapper(registry, child, inner)? {
                    Value::Null if facts.omits_empty() => None,
                    Value::Null => Some(Value::Array(Vec::new())),
                    items => Some(items),
                });
            }
            if !present && facts.pointer {
                return Ok(nil(facts));
            }
            let value = message.get_field(&info.field);
            let PbValue::Message(inner) = value.as_ref() else {
                return Err(decode_error(info, "not a message"));
            };
            let json = self::message(registry, child, inner)?;
            if facts.omitzero && is_zero_struct(child.special, inner, &json) {
                return Ok(None);
            }
            Ok(Some(json))
        }
        Shape::Single(Elem::Bytes) => {
            if !message.has_field(&info.field) {
                return Ok(nil(facts));
            }
            let value = message.get_field(&info.field);
            let bytes = value.as_bytes().map(|b| b.as_ref()).unwrap_or_default();
            if bytes.is_empty() && facts.omits_empty() {
                return Ok(None);
            }
            Ok(Some(Value::String(BASE64.encode(bytes))))
        }
        Shape::Single(Elem::Scalar(kind)) => {
            let present = message.has_field(&info.field);
            if !present && facts.pointer {
                return Ok(nil(facts));
            }
            let value = message.get_field(&info.field);
            let zero = !present || value.is_default(kind);
            if zero && !facts.pointer && facts.omits_empty() {
                return Ok(None);
            }
            scalar_value(value.as_ref())
                .map(Some)
                .ok_or_else(|| decode_error(info, "unexpected value"))
        }
    }
}

/// Whether a non-pointer struct is Go's zero value (for `omitzero`).
fn is_zero_struct(special: Option<Special>, message: &DynamicMessage, json: &Value) -> bool {
    match special {
        Some(Special::Time | Special::MicroTime) => json.is_null(),
        _ => is_zero_message(message),
    }
}

fn is_zero_message(message: &DynamicMessage) -> bool {
    message.fields().all(|(field, value)| match value {
        PbValue::Message(inner) => is_zero_message(inner),
        PbValue::List(items) => items.is_empty(),
        PbValue::Map(entries) => entries.is_empty(),
        other => other.is_default(&field.kind()),
    })
}

/// The JSON of a list item or map value (always present: never omitted).
fn element(registry: &Registry, elem: &Elem, value: &PbValue) -> Result<Value, ProtobufError> {
    match (elem, value) {
        (Elem::Message(index), PbValue::Message(inner)) => {
            let child = registry.info(*index);
            if child.special == Some(Special::List) {
                // Go decodes a list item or map value into a fresh non-nil slice.
                let items = list_wrapper(registry, child, inner)?;
                Ok(if items.is_null() {
                    Value::Array(Vec::new())
                } else {
                    items
                })
            } else {
                message(registry, child, inner)
            }
        }
        (Elem::Bytes, PbValue::Bytes(bytes)) => Ok(Value::String(BASE64.encode(bytes))),
        (_, value) => scalar_value(value).ok_or_else(|| ProtobufError::Decode {
            message: format!("{elem:?}"),
            reason: "unexpected value".to_string(),
        }),
    }
}

/// A named-slice wrapper: its items, `null` when it has none.
fn list_wrapper(
    registry: &Registry,
    info: &MessageInfo,
    message: &DynamicMessage,
) -> Result<Value, ProtobufError> {
    let Some(FieldInfo {
        field,
        shape: Shape::List(elem),
        ..
    }) = info.fields.first()
    else {
        return Err(ProtobufError::Decode {
            message: info.desc.full_name().to_string(),
            reason: "list wrapper without items".to_string(),
        });
    };
    let value = message.get_field(field);
    let items = value.as_list().unwrap_or(&[]);
    if items.is_empty() {
        return Ok(Value::Null);
    }
    Ok(Value::Array(
        items
            .iter()
            .map(|item| element(registry, elem, item))
            .collect::<Result<_, _>>()?,
    ))
}

pub(super) fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(n) => n.to_string(),
        MapKey::I64(n) => n.to_string(),
        MapKey::U32(n) => n.to_string(),
        MapKey::U64(n) => n.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

/// The JSON of a scalar as Go writes it (integral floats without a fraction).
pub(super) fn scalar_value(value: &PbValue) -> Option<Value> {
    Some(match value {
        PbValue::Bool(b) => Value::Bool(*b),
        PbValue::I32(n) => Value::from(*n),
        PbValue::I64(n) => Value::from(*n),
        PbValue::U32(n) => Value::from(*n),
        PbValue::U64(n) => Value::from(*n),
        PbValue::EnumNumber(n) => Value::from(*n),
        PbValue::F32(f) => float(f64::from(*f))?,
        PbValue::F64(f) => float(*f)?,
        PbValue::String(s) => Value::String(s.clone()),
        PbValue::Bytes(b) => Value::String(BASE64.encode(b)),
        PbValue::Message(_) | PbValue::List(_) | PbValue::Map(_) => return None,
    })
}

/// A float as Go's `encoding/json` writes it: integral values without a fraction.
fn float(f: f64) -> Option<Value> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if f.fract() == 0.0 && f.abs() <= EXACT {
        #[allow(clippy::cast_possible_truncation)]
        return Some(Value::from(f as i64));
    }
    Number::from_f64(f).map(Value::Number)
}

fn decode_error(info: &FieldInfo, reason: &str) -> ProtobufError {
    ProtobufError::Decode {
        message: info.field.full_name().to_string(),
        reason: reason.to_string(),
    }
}

fn get<'a>(message: &'a DynamicMessage, name: &str) -> Option<std::borrow::Cow<'a, PbValue>> {
    message.get_field_by_name(name)
}

fn has(message: &DynamicMessage, name: &str) -> bool {
    message.has_field_by_name(name)
}

/// The JSON of a special message.
fn special_value(
    registry: &Registry,
    special: Special,
    info: &MessageInfo,
    message: &DynamicMessage,
) -> Result<Value, ProtobufError> {
    let fail = |reason: String| ProtobufError::Decode {
        message: info.desc.full_name().to_string(),
        reason,
    };
    match special {
        Special::Time | Special::MicroTime => {
            // An empty message is the zero time (Go's Time.Unmarshal of no bytes).
            if !has(message, "seconds") && !has(message, "nanos") {
                return Ok(Value::Null);
            }
            let seconds = get(message, "seconds").and_then(|v| v.as_i64()).unwrap_or(0);
            let nanos = get(message, "nanos").and_then(|v| v.as_i32()).unwrap_or(0);
            let text = special::format_time(seconds, nanos, special == Special::MicroTime).map_err(fail)?;
            Ok(text.map_or(Value::Null, Value::String))
        }
        Special::Duration => {
            let nanos = get(message, "duration").and_then(|v| v.as_i64()).unwrap_or(0);
            Ok(Value::String(special::format_duration(nanos)))
        }
        Special::Quantity => {
            if !has(message, "string") {
                return Ok(Value::String("0".to_string()));
            }
            let text = get(message, "string")
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            canonical_quantity_string(&text)
                .map(Value::String)
                .map_err(|err| fail(format!("{text:?}: {err}")))
        }
        Special::IntOrString => match get(message, "type").and_then(|v| v.as_i64()).unwrap_or(0) {
            0 => Ok(Value::from(
                get(message, "intVal").and_then(|v| v.as_i32()).unwrap_or(0),
            )),
            1 => Ok(Value::String(
                get(message, "strVal")
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            )),
            other => Err(fail(format!("impossible IntOrString.Type {other}"))),
        },
        Special::RawJson => {
            let Some(field) = info.fields.first() else {
                return Err(fail("no raw field".to_string()));
            };
            let value = message.get_field(&field.field);
            raw_json(value.as_bytes().map(|b| b.as_ref()).unwrap_or_default()).map_err(fail)
        }
        Special::PropsOrArray => {
            let schemas = get(message, "jSONSchemas");
            if let Some(items) = schemas
                .as_ref()
                .and_then(|v| v.as_list())
                .filter(|items| !items.is_empty())
            {
                let items = items
                    .iter()
                    .map(|item| schema_value(registry, info, item))
                    .collect::<Result<_, _>>()?;
                return Ok(Value::Array(items));
            }
            schema_or_null(registry, info, message)
        }
        Special::PropsOrBool => {
            if has(message, "schema") {
                return schema_or_null(registry, info, message);
            }
            Ok(Value::Bool(
                get(message, "allows").and_then(|v| v.as_bool()).unwrap_or(false),
            ))
        }
        Special::PropsOrStringArray => {
            let property = get(message, "property");
            if let Some(items) = property
                .as_ref()
                .and_then(|v| v.as_list())
                .filter(|items| !items.is_empty())
            {
                return Ok(Value::Array(items.iter().filter_map(scalar_value).collect()));
            }
            schema_or_null(registry, info, message)
        }
        Special::List => list_wrapper(registry, info, message),
    }
}

/// A `JSONSchemaProps` held by a `JSONSchemaPropsOr*` union.
fn schema_value(registry: &Registry, union: &MessageInfo, value: &PbValue) -> Result<Value, ProtobufError> {
    let schema = union.fields.iter().find(|field| field.field.name() == "schema");
    match (schema.map(|field| &field.shape), value) {
        (Some(Shape::Single(Elem::Message(index))), PbValue::Message(inner)) => {
            message(registry, registry.info(*index), inner)
        }
        _ => Ok(Value::Null),
    }
}

/// The `schema` field of a `JSONSchemaPropsOr*` union, `null` when unset.
fn schema_or_null(
    registry: &Registry,
    union: &MessageInfo,
    message: &DynamicMessage,
) -> Result<Value, ProtobufError> {
    if !has(message, "schema") {
        return Ok(Value::Null);
    }
    match get(message, "schema") {
        Some(value) => schema_value(registry, union, &value),
        None => Ok(Value::Null),
    }
}

/// Embedded JSON bytes (or a nested protobuf object) as a value; `null` when empty.
fn raw_json(raw: &[u8]) -> Result<Value, String> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(&super::MAGIC) {
        return super::decode(raw)
            .map(|(_, _, value)| value)
            .map_err(|err| err.to_string());
    }
    serde_json::from_slice(raw).map_err(|err| format!("embedded JSON: {err}"))
}
