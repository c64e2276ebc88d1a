//! Bytes on the wire: messages written as gogo-protobuf writes them (fields in number order,
//! map entries sorted by key with key and value always written, repeated scalars unpacked
//! unless declared packed), the `k8s\0` + `runtime.Unknown` envelope, and watch frames.

use prost::bytes::Bytes;
use prost::encoding::{WireType, encode_key, encode_varint};
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage, Value as PbValue};

use super::registry::{META, Registry};
use super::{MAGIC, ProtobufError};

const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";

/// The parts of a decoded envelope.
#[derive(Debug)]
pub(super) struct Envelope {
    pub api_version: String,
    pub kind: String,
    pub raw: Bytes,
}

/// Writes a message.
pub(super) fn encode_message(message: &DynamicMessage) -> Result<Vec<u8>, ProtobufError> {
    let mut buf = Vec::new();
    write_message(message, &mut buf)?;
    Ok(buf)
}

fn write_message(message: &DynamicMessage, buf: &mut Vec<u8>) -> Result<(), ProtobufError> {
    for (field, value) in message.fields() {
        write_field(&field, value, buf)?;
    }
    Ok(())
}

fn write_field(field: &FieldDescriptor, value: &PbValue, buf: &mut Vec<u8>) -> Result<(), ProtobufError> {
    let number = field.number();
    let kind = field.kind();
    match value {
        PbValue::List(items) if field.is_packed() => {
            let mut packed = Vec::new();
            for item in items {
                write_packed_scalar(item, &mut packed).ok_or_else(|| mismatch(field))?;
            }
            encode_key(number, WireType::LengthDelimited, buf);
            encode_varint(packed.len() as u64, buf);
            buf.extend_from_slice(&packed);
        }
        PbValue::List(items) => {
            for item in items {
                write_value(number, &kind, item, buf).ok_or_else(|| mismatch(field))??;
            }
        }
        PbValue::Map(entries) => {
            let Kind::Message(entry) = &kind else {
                return Err(mismatch(field));
            };
            let key_field = entry.map_entry_key_field();
            let value_field = entry.map_entry_value_field();
            let mut sorted: Vec<(&MapKey, &PbValue)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            for (key, item) in sorted {
                let mut body = Vec::new();
                write_value(
                    key_field.number(),
                    &key_field.kind(),
                    &map_key_value(key),
                    &mut body,
                )
                .ok_or_else(|| mismatch(field))??;
                write_value(value_field.number(), &value_field.kind(), item, &mut body)
                    .ok_or_else(|| mismatch(field))??;
                encode_key(number, WireType::LengthDelimited, buf);
                encode_varint(body.len() as u64, buf);
                buf.extend_from_slice(&body);
            }
        }
        value => write_value(number, &kind, value, buf).ok_or_else(|| mismatch(field))??,
    }
    Ok(())
}

fn mismatch(field: &FieldDescriptor) -> ProtobufError {
    ProtobufError::Encode {
        path: field.full_name().to_string(),
        reason: "value does not match the field type".to_string(),
    }
}

fn map_key_value(key: &MapKey) -> PbValue {
    match key {
        MapKey::Bool(b) => PbValue::Bool(*b),
        MapKey::I32(n) => PbValue::I32(*n),
        MapKey::I64(n) => PbValue::I64(*n),
        MapKey::U32(n) => PbValue::U32(*n),
        MapKey::U64(n) => PbValue::U64(*n),
        MapKey::String(s) => PbValue::String(s.clone()),
    }
}

fn zigzag32(n: i32) -> u64 {
    u64::from(((n << 1) ^ (n >> 31)).cast_unsigned())
}

fn zigzag64(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)).cast_unsigned()
}

/// Writes one value with its key; `None` when the value does not fit the kind.
fn write_value(
    number: u32,
    kind: &Kind,
    value: &PbValue,
    buf: &mut Vec<u8>,
) -> Option<Result<(), ProtobufError>> {
    match (kind, value) {
        (Kind::Message(_), PbValue::Message(inner)) => {
            let mut body = Vec::new();
            if let Err(err) = write_message(inner, &mut body) {
                return Some(Err(err));
            }
            encode_key(number, WireType::LengthDelimited, buf);
            encode_varint(body.len() as u64, buf);
            buf.extend_from_slice(&body);
        }
        (Kind::String, PbValue::String(text)) => {
            encode_key(number, WireType::LengthDelimited, buf);
            encode_varint(text.len() as u64, buf);
            buf.extend_from_slice(text.as_bytes());
        }
        (Kind::Bytes, PbValue::Bytes(bytes)) => {
            encode_key(number, WireType::LengthDelimited, buf);
            encode_varint(bytes.len() as u64, buf);
            buf.extend_from_slice(bytes);
        }
        (kind, value) => {
            let wire_type = match kind {
                Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => WireType::SixtyFourBit,
                Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => WireType::ThirtyTwoBit,
                _ => WireType::Varint,
            };
            let mut scalar = Vec::new();
            write_scalar(kind, value, &mut scalar)?;
            encode_key(number, wire_type, buf);
            buf.extend_from_slice(&scalar);
        }
    }
    Some(Ok(()))
}

/// Writes a scalar's payload (no key); `None` when the value does not fit the kind.
fn write_scalar(kind: &Kind, value: &PbValue, buf: &mut Vec<u8>) -> Option<()> {
    match (kind, value) {
        (Kind::Bool, PbValue::Bool(b)) => encode_varint(u64::from(*b), buf),
        // Negative int32 values are sign-extended to ten bytes, as Go writes them.
        (Kind::Int32, PbValue::I32(n)) => encode_varint(i64::from(*n).cast_unsigned(), buf),
        (Kind::Int64, PbValue::I64(n)) => encode_varint(n.cast_unsigned(), buf),
        (Kind::Uint32, PbValue::U32(n)) => encode_varint(u64::from(*n), buf),
        (Kind::Uint64, PbValue::U64(n)) => encode_varint(*n, buf),
        (Kind::Sint32, PbValue::I32(n)) => encode_varint(zigzag32(*n), buf),
        (Kind::Sint64, PbValue::I64(n)) => encode_varint(zigzag64(*n), buf),
        (Kind::Enum(_), PbValue::EnumNumber(n)) => encode_varint(i64::from(*n).cast_unsigned(), buf),
        (Kind::Fixed32, PbValue::U32(n)) => buf.extend_from_slice(&n.to_le_bytes()),
        (Kind::Sfixed32, PbValue::I32(n)) => buf.extend_from_slice(&n.to_le_bytes()),
        (Kind::Float, PbValue::F32(f)) => buf.extend_from_slice(&f.to_le_bytes()),
        (Kind::Fixed64, PbValue::U64(n)) => buf.extend_from_slice(&n.to_le_bytes()),
        (Kind::Sfixed64, PbValue::I64(n)) => buf.extend_from_slice(&n.to_le_bytes()),
        (Kind::Double, PbValue::F64(f)) => buf.extend_from_slice(&f.to_le_bytes()),
        _ => return None,
    }
    Some(())
}

fn write_packed_scalar(value: &PbValue, buf: &mut Vec<u8>) -> Option<()> {
    let kind = match value {
        PbValue::Bool(_) => Kind::Bool,
        PbValue::I32(_) => Kind::Int32,
        PbValue::I64(_) => Kind::Int64,
        PbValue::U32(_) => Kind::Uint32,
        PbValue::U64(_) => Kind::Uint64,
        PbValue::F32(_) => Kind::Float,
        PbValue::F64(_) => Kind::Double,
        _ => return None,
    };
    write_scalar(&kind, value, buf)
}

/// The envelope: `k8s\0` and a `runtime.Unknown` naming apiVersion and kind around `raw`.
pub(super) fn envelope(
    registry: &Registry,
    api_version: &str,
    kind: &str,
    raw: Vec<u8>,
) -> Result<Vec<u8>, ProtobufError> {
    let unknown_desc = registry.message(UNKNOWN)?.desc.clone();
    let type_meta_desc = registry
        .message("k8s.io.apimachinery.pkg.runtime.TypeMeta")?
        .desc
        .clone();
    let mut type_meta = DynamicMessage::new(type_meta_desc);
    set(
        &mut type_meta,
        "apiVersion",
        PbValue::String(api_version.to_string()),
    )?;
    set(&mut type_meta, "kind", PbValue::String(kind.to_string()))?;
    let mut unknown = DynamicMessage::new(unknown_desc);
    set(&mut unknown, "typeMeta", PbValue::Message(type_meta))?;
    set(&mut unknown, "raw", PbValue::Bytes(raw.into()))?;
    set(&mut unknown, "contentEncoding", PbValue::String(String::new()))?;
    set(&mut unknown, "contentType", PbValue::String(String::new()))?;
    let mut out = MAGIC.to_vec();
    write_message(&unknown, &mut out)?;
    Ok(out)
}

fn set(message: &mut DynamicMessage, name: &str, value: PbValue) -> Result<(), ProtobufError> {
    message
        .try_set_field_by_name(name, value)
        .map_err(|err| ProtobufError::Encode {
            path: format!("{}.{name}", message.descriptor().full_name()),
            reason: err.to_string(),
        })
}

/// Reads the envelope of a body.
pub(super) fn parse_envelope(bytes: &[u8]) -> Result<Envelope, ProtobufError> {
    let Some(body) = bytes.strip_prefix(&MAGIC) else {
        return Err(ProtobufError::BadMagic);
    };
    let registry = Registry::get()?;
    let unknown = DynamicMessage::decode(registry.message(UNKNOWN)?.desc.clone(), body)
        .map_err(|err| ProtobufError::BadEnvelope(err.to_string()))?;
    let text = |message: &DynamicMessage, name: &str| {
        message
            .get_field_by_name(name)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    };
    let (api_version, kind) = match unknown.get_field_by_name("typeMeta").as_deref() {
        Some(PbValue::Message(type_meta)) => (text(type_meta, "apiVersion"), text(type_meta, "kind")),
        _ => (String::new(), String::new()),
    };
    let raw = unknown
        .get_field_by_name("raw")
        .and_then(|v| v.as_bytes().cloned())
        .unwrap_or_default();
    Ok(Envelope {
        api_version,
        kind,
        raw,
    })
}

/// A watch frame: the 4-byte big-endian length and a bare `meta.v1.WatchEvent` whose
/// `object.raw` is the enveloped object.
pub(super) fn watch_frame(
    registry: &Registry,
    event_type: &str,
    embedded: Vec<u8>,
) -> Result<Vec<u8>, ProtobufError> {
    let event_desc = registry.message(&format!("{META}.WatchEvent"))?.desc.clone();
    let raw_desc = registry
        .message("k8s.io.apimachinery.pkg.runtime.RawExtension")?
        .desc
        .clone();
    let mut object = DynamicMessage::new(raw_desc);
    set(&mut object, "raw", PbValue::Bytes(embedded.into()))?;
    let mut event = DynamicMessage::new(event_desc);
    set(&mut event, "type", PbValue::String(event_type.to_string()))?;
    set(&mut event, "object", PbValue::Message(object))?;
    let body = encode_message(&event)?;
    let length = u32::try_from(body.len()).map_err(|_| ProtobufError::Encode {
        path: "watch event".to_string(),
        reason: "frame too large".to_string(),
    })?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Reads a watch frame: the event type and the enveloped object bytes.
pub(super) fn parse_watch_frame(registry: &Registry, frame: &[u8]) -> Result<(String, Bytes), ProtobufError> {
    let Some((length, body)) = frame.split_first_chunk::<4>() else {
        return Err(ProtobufError::BadEnvelope(
            "watch frame shorter than its length prefix".to_string(),
        ));
    };
    let length = u32::from_be_bytes(*length) as usize;
    if body.len() != length {
        return Err(ProtobufError::BadEnvelope(format!(
            "watch frame announces {length} bytes but has {}",
            body.len()
        )));
    }
    let event = DynamicMessage::decode(
        registry.message(&format!("{META}.WatchEvent"))?.desc.clone(),
        body,
    )
    .map_err(|err| ProtobufError::BadEnvelope(err.to_string()))?;
    let event_type = event
        .get_field_by_name("type")
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let raw = match event.get_field_by_name("object").as_deref() {
        Some(PbValue::Message(object)) => object
            .get_field_by_name("raw")
            .and_then(|v| v.as_bytes().cloned())
            .unwrap_or_default(),
        _ => Bytes::new(),
    };
    Ok((event_type, raw))
}
