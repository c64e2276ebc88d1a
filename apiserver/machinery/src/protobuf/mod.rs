//! The Kubernetes protobuf wire format (`application/vnd.kubernetes.protobuf`) of every
//! built-in kind, list kind, `Status`, watch event and meta.k8s.io type, converted to and from
//! the JSON values the API server holds.
//!
//! # The format (k8s.io/apimachinery/pkg/runtime/serializer/protobuf)
//!
//! A body is the magic `k8s\0` followed by a `runtime.Unknown` message: `typeMeta`
//! (`apiVersion`, `kind`), `raw` (the object's own message), `contentEncoding` and
//! `contentType` (both empty). A watch stream is a sequence of frames, each a 4-byte
//! big-endian length and a bare `meta.v1.WatchEvent` message (the stream serializer is the
//! raw one: no magic, no envelope), whose `object.raw` is the enveloped object.
//!
//! # The mapping to JSON
//!
//! Messages are described by a descriptor set compiled from upstream's own `generated.proto`
//! files (`generated/k8s.pb`, written by `hack/gen-protobuf.sh`), walked with
//! `prost-reflect`. What the .proto files cannot say comes from the Go types, read by
//! reflection by the same generator (`generated/k8s-pb-fields.json`): the JSON name where it
//! differs (`$ref`, `x-kubernetes-*`, inlined embedded structs such as a `Volume`'s
//! `VolumeSource`), and whether a Go field is a pointer, `omitempty` or `omitzero`. With
//! those, the conversions are exactly Go's:
//!
//! - decoding gives the JSON `encoding/json` writes for the Go object the bytes decode into
//!   (absent non-pointer scalars are zero values, nil slices and maps of fields without
//!   `omitempty` are `null`, ...), so a protobuf body reaches the server as the same JSON a
//!   Go client would have sent;
//! - encoding gives byte for byte what gogo-protobuf writes for the Go object the JSON
//!   unmarshals into: fields in number order, non-pointer scalars and structs always, map
//!   entries sorted by key, repeated scalars unpacked.
//!
//! Special types: `meta.v1.Time` (RFC 3339, seconds) and `MicroTime` (microseconds) are
//! `{seconds, nanos}`; `Duration` is nanoseconds (Go duration strings in JSON);
//! `resource.Quantity` is its canonical string; `intstr.IntOrString` is a number or a string;
//! `runtime.RawExtension`, `meta.v1.FieldsV1` and apiextensions `JSON` carry JSON bytes (a
//! nested `k8s\0` envelope is decoded too); `bytes` fields are base64 strings; the
//! `JSONSchemaPropsOr*` unions and the named-slice wrappers (`Verbs`, `ExtraValue`) take
//! their Go JSON shapes.
//!
//! # Limits
//!
//! Only GA group versions are compiled in (what a default v1.35 server serves). `meta.v1.Table`
//! has no protobuf message upstream either (kube-apiserver serves it as JSON only). JSON
//! embedded in a `RawExtension`, `FieldsV1` or `JSON` is written compactly with sorted keys
//! (a `serde_json::Value` keeps no key order), where Go copies the bytes it was sent. A
//! quantity that does not parse is written as it is rather than refused.
//!
//! The module is pure: the descriptor set and the Go facts are compiled in and parsed once.

mod from_json;
mod registry;
mod special;
mod to_json;
mod view;
mod wire;

#[cfg(test)]
mod tests;

use serde_json::Value;

pub use registry::message_name;
pub use view::round_trip;

/// The media type of the protobuf encoding.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The media type of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// The four bytes every protobuf body starts with.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// Why bytes or a value could not be converted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    /// The body does not start with `k8s\0`.
    #[error("provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]")]
    BadMagic,
    /// The envelope (or a watch frame) is malformed or names no kind.
    #[error("invalid protobuf envelope: {0}")]
    BadEnvelope(String),
    /// No protobuf message exists for the kind (custom resources, unserved versions).
    #[error("no kind {kind:?} is registered for version {api_version:?}")]
    UnknownKind {
        /// The `apiVersion` asked for.
        api_version: String,
        /// The kind asked for.
        kind: String,
    },
    /// The object's bytes are not a valid message of its kind.
    #[error("failed to decode {message}: {reason}")]
    Decode {
        /// The message (or field path) that failed.
        message: String,
        /// What was wrong.
        reason: String,
    },
    /// The JSON value does not fit the kind's message.
    #[error("failed to encode {path}: {reason}")]
    Encode {
        /// The JSON path of the offending value.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The compiled-in descriptors could not be loaded (a build defect).
    #[error("invalid protobuf descriptors: {0}")]
    Descriptors(String),
}

/// Decodes a request body: returns (apiVersion, kind, object as JSON with apiVersion/kind set).
pub fn decode(bytes: &[u8]) -> Result<(String, String, Value), ProtobufError> {
    let envelope = wire::parse_envelope(bytes)?;
    if envelope.kind.is_empty() {
        return Err(ProtobufError::BadEnvelope("Object 'Kind' is missing".to_string()));
    }
    let (group, version) = split_api_version(&envelope.api_version)?;
    let value = decode_object(&envelope.raw, group, version, &envelope.kind)?;
    Ok((envelope.api_version, envelope.kind, value))
}

/// Decodes a body whose envelope may lack apiVersion/kind, as the given default kind (clients send typeMeta; handle both).
///
/// What the envelope names wins; missing parts are filled from the defaults as upstream's
/// `gvkWithDefaults` does (a missing kind; a missing group and version; a missing version of
/// the default group).
pub fn decode_as(bytes: &[u8], group: &str, version: &str, kind: &str) -> Result<Value, ProtobufError> {
    let envelope = wire::parse_envelope(bytes)?;
    let (mut actual_group, mut actual_version) = split_api_version(&envelope.api_version)?;
    let actual_kind = if envelope.kind.is_empty() {
        kind
    } else {
        envelope.kind.as_str()
    };
    if actual_version.is_empty() && actual_group.is_empty() {
        actual_group = group;
        actual_version = version;
    }
    if actual_version.is_empty() && actual_group == group {
        actual_version = version;
    }
    decode_object(&envelope.raw, actual_group, actual_version, actual_kind)
}

/// Encodes an object (or list, or Status) of group/version/kind into the k8s envelope.
///
/// The envelope names `group/version` (`v1` for the core group), except for the unversioned
/// kinds (`Status`, `APIVersions`, `APIGroupList`, `APIGroup`, `APIResourceList`), which
/// kube-apiserver always writes as `v1`. The value's own `apiVersion` and `kind` are ignored.
pub fn encode(value: &Value, group: &str, version: &str, kind: &str) -> Result<Vec<u8>, ProtobufError> {
    let registry = registry::Registry::get()?;
    let info = registry
        .kind_message(group, version, kind)
        .ok_or_else(|| unknown_kind(group, version, kind))?;
    let message = from_json::object(registry, info, value)?;
    let raw = wire::encode_message(&message)?;
    let api_version = if registry::is_unversioned(kind) {
        "v1".to_string()
    } else {
        api_version(group, version)
    };
    wire::envelope(registry, &api_version, kind, raw)
}

/// Encodes one watch event frame (length prefix included) for `event_type` and an object of group/version/kind.
pub fn encode_watch_event(
    event_type: &str,
    object: &Value,
    group: &str,
    version: &str,
    kind: &str,
) -> Result<Vec<u8>, ProtobufError> {
    let registry = registry::Registry::get()?;
    let embedded = encode(object, group, version, kind)?;
    wire::watch_frame(registry, event_type, embedded)
}

/// Decodes one watch event frame (length prefix included): returns the event type and the
/// object as JSON with apiVersion/kind set.
pub fn decode_watch_event(frame: &[u8]) -> Result<(String, Value), ProtobufError> {
    let registry = registry::Registry::get()?;
    let (event_type, raw) = wire::parse_watch_frame(registry, frame)?;
    let (_, _, object) = decode(&raw)?;
    Ok((event_type, object))
}

/// Whether a kind has a protobuf message (custom resources do not).
///
/// The meta kinds every group version registers (`Status`, `WatchEvent`, `DeleteOptions`
/// and the other options) are the same message in any group version.
pub fn supports(group: &str, version: &str, kind: &str) -> bool {
    registry::Registry::get().is_ok_and(|registry| registry.kind_message(group, version, kind).is_some())
}

/// Decodes an object's own message bytes as group/version/kind, with apiVersion/kind set.
fn decode_object(raw: &[u8], group: &str, version: &str, kind: &str) -> Result<Value, ProtobufError> {
    let registry = registry::Registry::get()?;
    let info = registry
        .kind_message(group, version, kind)
        .ok_or_else(|| unknown_kind(group, version, kind))?;
    let message = prost_reflect::DynamicMessage::decode(info.desc.clone(), raw).map_err(|err| {
        ProtobufError::Decode {
            message: info.desc.full_name().to_string(),
            reason: err.to_string(),
        }
    })?;
    let mut value = to_json::message(registry, info, &message)?;
    if let Value::Object(map) = &mut value {
        map.insert(
            "apiVersion".to_string(),
            Value::String(api_version(group, version)),
        );
        map.insert("kind".to_string(), Value::String(kind.to_string()));
    }
    Ok(value)
}

fn unknown_kind(group: &str, version: &str, kind: &str) -> ProtobufError {
    ProtobufError::UnknownKind {
        api_version: api_version(group, version),
        kind: kind.to_string(),
    }
}

/// `group/version`, or `version` for the core group.
fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Splits an apiVersion as `schema.ParseGroupVersion` does.
fn split_api_version(api_version: &str) -> Result<(&str, &str), ProtobufError> {
    if api_version.is_empty() || api_version == "/" {
        return Ok(("", ""));
    }
    match api_version.split_once('/') {
        None => Ok(("", api_version)),
        Some((group, version)) if !version.contains('/') => Ok((group, version)),
        Some(_) => Err(ProtobufError::BadEnvelope(format!(
            "unexpected GroupVersion string: {api_version}"
        ))),
    }
}
