//! JSON to messages: the message gogo-protobuf writes for the Go object the JSON unmarshals
//! into. A field is set (and so written) when Go writes it: non-pointer scalars and structs
//! always (absent or `null` JSON gives the zero value), pointers, bytes and named slices when
//! the JSON has them, list items and map entries as they are. Unknown JSON fields are ignored,
//! as Go's decoder ignores them.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, Value as PbValue};
use serde_json::{Map, Value};

use super::ProtobufError;
use super::registry::{Elem, FieldInfo, MessageInfo, Registry, Shape, Special};
use super::special;
use crate::validation::quantity::canonical_quantity_string;

/// Why a value could not be converted, and where (innermost segment first: the path is
/// built while unwinding, so conversion pays nothing for it).
pub(super) struct Failure {
    reversed_path: Vec<String>,
    reason: String,
}

pub(super) type Result<T> = std::result::Result<T, Failure>;

fn fail(reason: impl Into<String>) -> Failure {
    Failure {
        reversed_path: Vec::new(),
        reason: reason.into(),
    }
}

trait At<T> {
    /// Adds a path segment (`.name`, `[3]`, `["key"]`) to a failure.
    fn at(self, segment: impl FnOnce() -> String) -> Result<T>;
}

impl<T> At<T> for Result<T> {
    fn at(self, segment: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|mut failure| {
            failure.reversed_path.push(segment());
            failure
        })
    }
}

/// The message of a top-level object.
pub(super) fn object(
    registry: &Registry,
    info: &MessageInfo,
    value: &Value,
) -> std::result::Result<DynamicMessage, ProtobufError> {
    message(registry, info, present(Some(value))).map_err(|failure| {
        let path: String = failure.reversed_path.iter().rev().map(String::as_str).collect();
        ProtobufError::Encode {
            path: if path.is_empty() {
                "object".to_string()
            } else {
                path
            },
            reason: failure.reason,
        }
    })
}

/// `null` is absent (Go leaves the field at its zero value or nil).
pub(super) fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

/// A message from a JSON value (`None`: Go's zero value of the struct).
fn message(registry: &Registry, info: &MessageInfo, value: Option<&Value>) -> Result<DynamicMessage> {
    if let Some(special) = info.special {
        return special_message(registry, special, info, value);
    }
    let object = match value {
        None => None,
        Some(Value::Object(map)) => Some(map),
        Some(other) => return Err(fail(format!("expected an object, got {}", type_name(other)))),
    };
    let mut message = DynamicMessage::new(info.desc.clone());
    fill(registry, info, &mut message, object)?;
    Ok(message)
}

/// Sets the fields of a (non-special) message from a JSON object; returns whether the object
/// had any of them.
fn fill(
    registry: &Registry,
    info: &MessageInfo,
    message: &mut DynamicMessage,
    object: Option<&Map<String, Value>>,
) -> Result<bool> {
    let mut found = false;
    for field in &info.fields {
        if field.facts.inline {
            let Shape::Single(Elem::Message(index)) = &field.shape else {
                return Err(fail(format!(
                    "inlined field {} is not a message",
                    field.field.name()
                )));
            };
            let inner_info = registry.info(*index);
            let mut inner = DynamicMessage::new(inner_info.desc.clone());
            let inner_found = fill(registry, inner_info, &mut inner, object)?;
            if inner_found || !field.facts.pointer {
                set(message, &field.field, PbValue::Message(inner))?;
            }
            found |= inner_found;
            continue;
        }
        let value = present(object.and_then(|object| object.get(&field.json)));
        found |= value.is_some();
        if let Some(converted) = field_value(registry, field, value).at(|| format!(".{}", field.json))? {
            set(message, &field.field, converted).at(|| format!(".{}", field.json))?;
        }
    }
    Ok(found)
}

fn set(message: &mut DynamicMessage, field: &FieldDescriptor, value: PbValue) -> Result<()> {
    message
        .try_set_field(field, value)
        .map_err(|err| fail(err.to_string()))
}

/// The value of one field, `None` when Go leaves it unset.
fn field_value(registry: &Registry, info: &FieldInfo, value: Option<&Value>) -> Result<Option<PbValue>> {
    match &info.shape {
        Shape::Map { key, value: elem } => {
            let Some(value) = value else { return Ok(None) };
            let Value::Object(object) = value else {
                return Err(fail(format!("expected an object, got {}", type_name(value))));
            };
            let mut map = HashMap::with_capacity(object.len());
            for (name, item) in object {
                let converted = element(registry, elem, present(Some(item))).at(|| format!("[{name:?}]"))?;
                map.insert(map_key(key, name).at(|| format!("[{name:?}]"))?, converted);
            }
            Ok((!map.is_empty()).then_some(PbValue::Map(map)))
        }
        Shape::List(elem) => {
            let Some(value) = value else { return Ok(None) };
            let list = list(registry, elem, value)?;
            Ok((!list.is_empty()).then_some(PbValue::List(list)))
        }
        Shape::Single(Elem::Message(index)) => {
            let child = registry.info(*index);
            if child.special == Some(Special::List) {
                // A named slice: written when non-nil, even empty.
                return value
                    .map(|value| list_wrapper(registry, child, value).map(PbValue::Message))
                    .transpose();
            }
            if value.is_none() && info.facts.pointer {
                return Ok(None);
            }
            message(registry, child, value).map(|message| Some(PbValue::Message(message)))
        }
        Shape::Single(Elem::Bytes) => value.map(bytes).transpose(),
        Shape::Single(Elem::Scalar(kind)) => match value {
            Some(value) => scalar(kind, value).map(Some),
            None if info.facts.pointer => Ok(None),
            None => Ok(Some(PbValue::default_value(kind))),
        },
    }
}

/// The items of a JSON array.
fn list(registry: &Registry, elem: &Elem, value: &Value) -> Result<Vec<PbValue>> {
    let Value::Array(items) = value else {
        return Err(fail(format!("expected an array, got {}", type_name(value))));
    };
    let mut list = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        list.push(element(registry, elem, present(Some(item))).at(|| format!("[{index}]"))?);
    }
    Ok(list)
}

/// A list item or map value (`None`: JSON `null`, Go's zero value).
fn element(registry: &Registry, elem: &Elem, value: Option<&Value>) -> Result<PbValue> {
    match elem {
        Elem::Message(index) => {
            let child = registry.info(*index);
            if child.special == Some(Special::List) {
                let empty = Value::Array(Vec::new());
                return list_wrapper(registry, child, value.unwrap_or(&empty)).map(PbValue::Message);
            }
            message(registry, child, value).map(PbValue::Message)
        }
        Elem::Bytes => match value {
            Some(value) => bytes(value),
            None => Ok(PbValue::Bytes(Default::default())),
        },
        Elem::Scalar(kind) => match value {
            Some(value) => scalar(kind, value),
            None => Ok(PbValue::default_value(kind)),
        },
    }
}

/// A named-slice wrapper from a JSON array.
fn list_wrapper(registry: &Registry, info: &MessageInfo, value: &Value) -> Result<DynamicMessage> {
    let Some(FieldInfo {
        field,
        shape: Shape::List(elem),
        ..
    }) = info.fields.first()
    else {
        return Err(fail(format!("{} has no items", info.desc.full_name())));
    };
    let items = list(registry, elem, value)?;
    let mut message = DynamicMessage::new(info.desc.clone());
    if !items.is_empty() {
        set(&mut message, field, PbValue::List(items))?;
    }
    Ok(message)
}

pub(super) fn bytes(value: &Value) -> Result<PbValue> {
    let Value::String(text) = value else {
        return Err(fail(format!(
            "expected a base64 string, got {}",
            type_name(value)
        )));
    };
    BASE64
        .decode(text)
        .map(|decoded| PbValue::Bytes(decoded.into()))
        .map_err(|err| fail(format!("illegal base64 data: {err}")))
}

pub(super) fn map_key(kind: &Kind, key: &str) -> Result<MapKey> {
    let bad = || fail(format!("bad map key {key:?}"));
    Ok(match kind {
        Kind::String => MapKey::String(key.to_string()),
        Kind::Bool => MapKey::Bool(key.parse().map_err(|_| bad())?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(key.parse().map_err(|_| bad())?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(key.parse().map_err(|_| bad())?),
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(key.parse().map_err(|_| bad())?),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(key.parse().map_err(|_| bad())?),
        _ => return Err(bad()),
    })
}

/// An integer from a JSON number (integral floats too).
pub(super) fn integer(value: &Value) -> Option<i128> {
    let Value::Number(number) = value else { return None };
    if let Some(n) = number.as_i64() {
        return Some(i128::from(n));
    }
    if let Some(n) = number.as_u64() {
        return Some(i128::from(n));
    }
    let f = number.as_f64()?;
    #[allow(clippy::cast_possible_truncation)]
    (f.fract() == 0.0 && f.abs() < 1e19).then_some(f as i128)
}

pub(super) fn scalar(kind: &Kind, value: &Value) -> Result<PbValue> {
    let mismatch = |expected: &str| fail(format!("expected {expected}, got {}", type_name(value)));
    let int = || integer(value).ok_or_else(|| mismatch("an integer"));
    let out_of_range = |_| fail(format!("number {value} out of range"));
    Ok(match kind {
        Kind::Bool => PbValue::Bool(value.as_bool().ok_or_else(|| mismatch("a boolean"))?),
        Kind::String => PbValue::String(value.as_str().ok_or_else(|| mismatch("a string"))?.to_string()),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            PbValue::I32(i32::try_from(int()?).map_err(out_of_range)?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            PbValue::I64(i64::try_from(int()?).map_err(out_of_range)?)
        }
        Kind::Uint32 | Kind::Fixed32 => PbValue::U32(u32::try_from(int()?).map_err(out_of_range)?),
        Kind::Uint64 | Kind::Fixed64 => PbValue::U64(u64::try_from(int()?).map_err(out_of_range)?),
        Kind::Double => PbValue::F64(value.as_f64().ok_or_else(|| mismatch("a number"))?),
        #[allow(clippy::cast_possible_truncation)]
        Kind::Float => PbValue::F32(value.as_f64().ok_or_else(|| mismatch("a number"))? as f32),
        Kind::Enum(_) => PbValue::EnumNumber(i32::try_from(int()?).map_err(out_of_range)?),
        Kind::Bytes => return bytes(value),
        Kind::Message(_) => return Err(mismatch("a message")),
    })
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The field of a special message by name.
fn named<'a>(info: &'a MessageInfo, name: &str) -> Result<&'a FieldInfo> {
    info.fields
        .iter()
        .find(|field| field.field.name() == name)
        .ok_or_else(|| fail(format!("{} has no field {name}", info.desc.full_name())))
}

fn set_named(message: &mut DynamicMessage, info: &MessageInfo, name: &str, value: PbValue) -> Result<()> {
    set(message, &named(info, name)?.field, value)
}

/// The `JSONSchemaProps` message a `JSONSchemaPropsOr*` union holds.
fn schema(registry: &Registry, union: &MessageInfo, value: &Value) -> Result<PbValue> {
    let Shape::Single(Elem::Message(index)) = &named(union, "schema")?.shape else {
        return Err(fail("schema is not a message"));
    };
    message(registry, registry.info(*index), Some(value)).map(PbValue::Message)
}

/// A special message from its JSON (`None`: the zero value Go writes for an unset non-pointer
/// field).
fn special_message(
    registry: &Registry,
    special: Special,
    info: &MessageInfo,
    value: Option<&Value>,
) -> Result<DynamicMessage> {
    let mut message = DynamicMessage::new(info.desc.clone());
    match special {
        Special::Time | Special::MicroTime => {
            let Some(value) = value else { return Ok(message) };
            let Value::String(text) = value else {
                return Err(fail(format!(
                    "expected a timestamp string, got {}",
                    type_name(value)
                )));
            };
            let (seconds, nanos) = special::parse_time(text).map_err(fail)?;
            // Go writes nothing for the zero time (Time.Marshal returns no bytes).
            if !special::is_zero_time(seconds, nanos) {
                set_named(&mut message, info, "seconds", PbValue::I64(seconds))?;
                set_named(&mut message, info, "nanos", PbValue::I32(nanos))?;
            }
        }
        Special::Duration => {
            let nanos = match value {
                None => 0,
                Some(Value::String(text)) => special::parse_duration(text).map_err(fail)?,
                Some(other) => {
                    return Err(fail(format!(
                        "expected a duration string, got {}",
                        type_name(other)
                    )));
                }
            };
            set_named(&mut message, info, "duration", PbValue::I64(nanos))?;
        }
        Special::Quantity => {
            let text = match value {
                None => "0".to_string(),
                Some(Value::String(text)) => text.clone(),
                Some(Value::Number(number)) => number.to_string(),
                Some(other) => {
                    return Err(fail(format!(
                        "expected a quantity string, got {}",
                        type_name(other)
                    )));
                }
            };
            // Go writes the canonical form; a string it could not parse is kept as written.
            let canonical = canonical_quantity_string(text.trim()).unwrap_or(text);
            set_named(&mut message, info, "string", PbValue::String(canonical))?;
        }
        Special::IntOrString => {
            let (kind, int_val, str_val) = match value {
                None => (0, 0, String::new()),
                Some(Value::String(text)) => (1, 0, text.clone()),
                Some(number @ Value::Number(_)) => {
                    let n = integer(number).ok_or_else(|| fail("expected an integer or a string"))?;
                    (
                        0,
                        i32::try_from(n).map_err(|_| fail(format!("number {n} out of range")))?,
                        String::new(),
                    )
                }
                Some(other) => {
                    return Err(fail(format!(
                        "expected an integer or a string, got {}",
                        type_name(other)
                    )));
                }
            };
            set_named(&mut message, info, "type", PbValue::I64(kind))?;
            set_named(&mut message, info, "intVal", PbValue::I32(int_val))?;
            set_named(&mut message, info, "strVal", PbValue::String(str_val))?;
        }
        Special::RawJson => {
            if let Some(value) = value {
                let raw = serde_json::to_vec(value).map_err(|err| fail(err.to_string()))?;
                let Some(field) = info.fields.first() else {
                    return Err(fail(format!("{} has no raw field", info.desc.full_name())));
                };
                set(&mut message, &field.field, PbValue::Bytes(raw.into()))?;
            }
        }
        Special::PropsOrArray => match value {
            Some(object @ Value::Object(_)) => {
                let schema = schema(registry, info, object)?;
                set_named(&mut message, info, "schema", schema)?;
            }
            Some(array @ Value::Array(_)) => {
                let field = named(info, "jSONSchemas")?;
                let Shape::List(elem) = &field.shape else {
                    return Err(fail("jSONSchemas is not a list"));
                };
                let items = list(registry, elem, array)?;
                if !items.is_empty() {
                    set(&mut message, &field.field, PbValue::List(items))?;
                }
            }
            // Go's UnmarshalJSON leaves anything else at the zero value.
            _ => {}
        },
        Special::PropsOrBool => {
            let allows = match value {
                None | Some(Value::Bool(false)) => false,
                Some(Value::Bool(true)) => true,
                Some(object @ Value::Object(_)) => {
                    let schema = schema(registry, info, object)?;
                    set_named(&mut message, info, "schema", schema)?;
                    true
                }
                Some(_) => return Err(fail("boolean or JSON schema expected")),
            };
            set_named(&mut message, info, "allows", PbValue::Bool(allows))?;
        }
        Special::PropsOrStringArray => match value {
            Some(object @ Value::Object(_)) => {
                let schema = schema(registry, info, object)?;
                set_named(&mut message, info, "schema", schema)?;
            }
            Some(array @ Value::Array(_)) => {
                let items = list(registry, &Elem::Scalar(Kind::String), array)?;
                if !items.is_empty() {
                    set_named(&mut message, info, "property", PbValue::List(items))?;
                }
            }
            _ => {}
        },
        Special::List => {
            if let Some(value) = value {
                return list_wrapper(registry, info, value);
            }
        }
    }
    Ok(message)
}
