//! Protobuf round trips without the bytes: the JSON an object comes back as when it is encoded
//! to its message and decoded again ([`super::encode`] then [`super::decode`]), that is the
//! JSON `encoding/json` writes for the Go object it unmarshals into, computed in one pass over
//! the JSON with the same registry, facts and special-type rules.
//!
//! It must never give a value the real round trip would not: whatever it does not handle (the
//! `JSONSchemaProps` unions, named slices, `omitzero` structs other than times, deeply nested
//! embedded JSON) and every error it meets are left to the real round trip, which also decides
//! whether the object converts at all.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use prost_reflect::Value as PbValue;
use serde_json::{Map, Value};

use super::from_json::{self, present};
use super::registry::{self, Elem, FieldInfo, MessageInfo, Registry, Shape, Special};
use super::{special, to_json};
use crate::validation::quantity::canonical_quantity_string;

/// A value the direct conversion leaves to the real round trip.
struct Unhandled;

type Result<T> = std::result::Result<T, Unhandled>;

/// Embedded JSON nested deeper than this goes through the real round trip (whose JSON
/// parser refuses nesting beyond 128).
const MAX_EMBEDDED_DEPTH: usize = 100;

/// The object as it comes back from a protobuf round trip as group/version/kind (apiVersion
/// and kind set as decoding sets them); `None` when the round trip fails (no such kind, a value
/// that does not fit it).
pub fn round_trip(object: &Value, group: &str, version: &str, kind: &str) -> Option<Value> {
    if let Ok(value) = direct(object, group, version, kind) {
        return Some(value);
    }
    let bytes = super::encode(object, group, version, kind).ok()?;
    super::decode(&bytes).ok().map(|(_, _, value)| value)
}

fn direct(object: &Value, group: &str, version: &str, kind: &str) -> Result<Value> {
    let registry = Registry::get().map_err(|_| Unhandled)?;
    let info = registry.kind_message(group, version, kind).ok_or(Unhandled)?;
    if registry::is_unversioned(kind) {
        return Err(Unhandled);
    }
    let mut value = message(registry, info, present(Some(object)))?;
    let Value::Object(map) = &mut value else {
        return Err(Unhandled);
    };
    map.insert(
        "apiVersion".to_string(),
        Value::String(super::api_version(group, version)),
    );
    map.insert("kind".to_string(), Value::String(kind.to_string()));
    Ok(value)
}

/// A message from its JSON (`None`: Go's zero value of the struct).
fn message(registry: &Registry, info: &MessageInfo, value: Option<&Value>) -> Result<Value> {
    if let Some(special) = info.special {
        return special_value(special, value);
    }
    let object = match value {
        None => None,
        Some(Value::Object(map)) => Some(map),
        Some(_) => return Err(Unhandled),
    };
    let mut map = Map::new();
    fields_into(registry, info, object, &mut map)?;
    Ok(Value::Object(map))
}

/// Adds the fields of a (non-special) message to `out`; returns whether the JSON object had
/// any of them (an inlined pointer struct is set only then).
fn fields_into(
    registry: &Registry,
    info: &MessageInfo,
    object: Option<&Map<String, Value>>,
    out: &mut Map<String, Value>,
) -> Result<bool> {
    let mut found = false;
    for field in &info.fields {
        if field.facts.inline {
            let Shape::Single(Elem::Message(index)) = &field.shape else {
                return Err(Unhandled);
            };
            let mut inner = Map::new();
            let inner_found = fields_into(registry, registry.info(*index), object, &mut inner)?;
            if inner_found || !field.facts.pointer {
                out.extend(inner);
            }
            found |= inner_found;
            continue;
        }
        let value = present(object.and_then(|object| object.get(&field.json)));
        found |= value.is_some();
        if let Some(converted) = field_value(registry, field, value)? {
            out.insert(field.json.clone(), converted);
        }
    }
    Ok(found)
}

/// One field, `None` when Go leaves it out.
fn field_value(registry: &Registry, info: &FieldInfo, value: Option<&Value>) -> Result<Option<Value>> {
    let facts = &info.facts;
    match &info.shape {
        Shape::Map { key, value: elem } => {
            let Some(value) = value else {
                return Ok(to_json::nil(facts));
            };
            let Value::Object(object) = value else {
                return Err(Unhandled);
            };
            if object.is_empty() {
                return Ok(to_json::nil(facts));
            }
            let mut map = Map::new();
            for (name, item) in object {
                let converted = element(registry, elem, present(Some(item)))?;
                let key = from_json::map_key(key, name).map_err(|_| Unhandled)?;
                map.insert(to_json::map_key(&key), converted);
            }
            Ok(Some(Value::Object(map)))
        }
        Shape::List(elem) => {
            let Some(value) = value else {
                return Ok(to_json::nil(facts));
            };
            let Value::Array(items) = value else {
                return Err(Unhandled);
            };
            if items.is_empty() {
                return Ok(to_json::nil(facts));
            }
            let items = items
                .iter()
                .map(|item| element(registry, elem, present(Some(item))))
                .collect::<Result<Vec<_>>>()?;
            Ok(Some(Value::Array(items)))
        }
        Shape::Single(Elem::Message(index)) => {
            let child = registry.info(*index);
            if child.special == Some(Special::List) {
                return Err(Unhandled);
            }
            if value.is_none() && facts.pointer {
                return Ok(to_json::nil(facts));
            }
            let json = message(registry, child, value)?;
            if facts.omitzero {
                match child.special {
                    Some(Special::Time | Special::MicroTime) if json.is_null() => return Ok(None),
                    Some(Special::Time | Special::MicroTime) => {}
                    _ => return Err(Unhandled),
                }
            }
            Ok(Some(json))
        }
        Shape::Single(Elem::Bytes) => {
            let Some(value) = value else {
                return Ok(to_json::nil(facts));
            };
            let PbValue::Bytes(bytes) = from_json::bytes(value).map_err(|_| Unhandled)? else {
                return Err(Unhandled);
            };
            if bytes.is_empty() && facts.omits_empty() {
                return Ok(None);
            }
            Ok(Some(Value::String(BASE64.encode(bytes))))
        }
        Shape::Single(Elem::Scalar(kind)) => {
            let scalar = match value {
                None if facts.pointer => return Ok(to_json::nil(facts)),
                None => PbValue::default_value(kind),
                Some(value) => from_json::scalar(kind, value).map_err(|_| Unhandled)?,
            };
            if !facts.pointer && facts.omits_empty() && scalar.is_default(kind) {
                return Ok(None);
            }
            to_json::scalar_value(&scalar).map(Some).ok_or(Unhandled)
        }
    }
}

/// A list item or map value (`None`: JSON `null`, Go's zero value).
fn element(registry: &Registry, elem: &Elem, value: Option<&Value>) -> Result<Value> {
    match elem {
        Elem::Message(index) => {
            let child = registry.info(*index);
            if child.special == Some(Special::List) {
                return Err(Unhandled);
            }
            message(registry, child, value)
        }
        Elem::Bytes => match value {
            None => Ok(Value::String(String::new())),
            Some(value) => match from_json::bytes(value).map_err(|_| Unhandled)? {
                PbValue::Bytes(bytes) => Ok(Value::String(BASE64.encode(bytes))),
                _ => Err(Unhandled),
            },
        },
        Elem::Scalar(kind) => {
            let scalar = match value {
                None => PbValue::default_value(kind),
                Some(value) => from_json::scalar(kind, value).map_err(|_| Unhandled)?,
            };
            to_json::scalar_value(&scalar).ok_or(Unhandled)
        }
    }
}

/// A special message from its JSON, as encoding and decoding it give it back.
fn special_value(special: Special, value: Option<&Value>) -> Result<Value> {
    match special {
        Special::Time | Special::MicroTime => {
            let Some(value) = value else {
                return Ok(Value::Null);
            };
            let Value::String(text) = value else {
                return Err(Unhandled);
            };
            let (seconds, nanos) = special::parse_time(text).map_err(|_| Unhandled)?;
            if special::is_zero_time(seconds, nanos) {
                return Ok(Value::Null);
            }
            let text =
                special::format_time(seconds, nanos, special == Special::MicroTime).map_err(|_| Unhandled)?;
            Ok(text.map_or(Value::Null, Value::String))
        }
        Special::Duration => {
            let nanos = match value {
                None => 0,
                Some(Value::String(text)) => special::parse_duration(text).map_err(|_| Unhandled)?,
                Some(_) => return Err(Unhandled),
            };
            Ok(Value::String(special::format_duration(nanos)))
        }
        Special::Quantity => {
            let text = match value {
                None => "0".to_string(),
                Some(Value::String(text)) => text.clone(),
                Some(Value::Number(number)) => number.to_string(),
                Some(_) => return Err(Unhandled),
            };
            // Encoding writes the canonical form (or the text it could not parse), decoding
            // canonicalizes what it reads.
            let written = canonical_quantity_string(text.trim()).unwrap_or(text);
            canonical_quantity_string(&written)
                .map(Value::String)
                .map_err(|_| Unhandled)
        }
        Special::IntOrString => match value {
            None => Ok(Value::from(0)),
            Some(Value::String(text)) => Ok(Value::String(text.clone())),
            Some(number @ Value::Number(_)) => {
                let n = from_json::integer(number).ok_or(Unhandled)?;
                i32::try_from(n).map(Value::from).map_err(|_| Unhandled)
            }
            Some(_) => Err(Unhandled),
        },
        Special::RawJson => match value {
            None => Ok(Value::Null),
            Some(value) if depth(value) <= MAX_EMBEDDED_DEPTH => Ok(value.clone()),
            Some(_) => Err(Unhandled),
        },
        Special::PropsOrArray | Special::PropsOrBool | Special::PropsOrStringArray | Special::List => {
            Err(Unhandled)
        }
    }
}

/// How deeply arrays and objects nest in a value.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use prost_reflect::Kind;
    use serde_json::json;

    use super::*;

    /// The real round trip: encoded to bytes and decoded.
    fn through_bytes(object: &Value, group: &str, version: &str, kind: &str) -> Option<Value> {
        let bytes = super::super::encode(object, group, version, kind).ok()?;
        super::super::decode(&bytes).ok().map(|(_, _, value)| value)
    }

    /// Asserts the direct conversion handles the object and agrees with the bytes.
    fn assert_direct(object: &Value, group: &str, version: &str, kind: &str) {
        let expected = through_bytes(object, group, version, kind);
        let Ok(actual) = direct(object, group, version, kind) else {
            panic!("{group}/{version} {kind} not handled: {object}");
        };
        assert_eq!(Some(actual), expected, "{group}/{version} {kind}: {object}");
    }

    /// Asserts the public conversion agrees with the bytes (directly or not).
    fn assert_same(object: &Value, group: &str, version: &str, kind: &str) {
        assert_eq!(
            round_trip(object, group, version, kind),
            through_bytes(object, group, version, kind),
            "{group}/{version} {kind}: {object}"
        );
    }

    /// Which sample a generated value is: every field set to a typical value, to a zero
    /// value, or to JSON `null`.
    #[derive(Clone, Copy, PartialEq)]
    enum Sample {
        Full,
        Zero,
        Null,
    }

    fn scalar_sample(kind: &Kind, sample: Sample) -> Value {
        match (kind, sample) {
            (_, Sample::Null) => Value::Null,
            (Kind::Bool, Sample::Full) => json!(true),
            (Kind::Bool, Sample::Zero) => json!(false),
            (Kind::String, Sample::Full) => json!("text"),
            (Kind::String, Sample::Zero) => json!(""),
            (Kind::Double | Kind::Float, Sample::Full) => json!(1.5),
            (_, Sample::Full) => json!(7),
            (_, Sample::Zero) => json!(0),
        }
    }

    fn elem_sample(registry: &Registry, elem: &Elem, sample: Sample, depth: usize) -> Value {
        match elem {
            Elem::Message(index) => message_sample(registry, registry.info(*index), sample, depth),
            Elem::Bytes if sample == Sample::Full => json!("AAECAw=="),
            Elem::Bytes if sample == Sample::Zero => json!(""),
            Elem::Bytes => Value::Null,
            Elem::Scalar(kind) => scalar_sample(kind, sample),
        }
    }

    /// A JSON value for every field of a message, down to `depth` levels of messages.
    fn message_sample(registry: &Registry, info: &MessageInfo, sample: Sample, depth: usize) -> Value {
        if let Some(special) = info.special {
            return match (special, sample) {
                (_, Sample::Null) => Value::Null,
                (Special::Time, Sample::Full) => json!("2024-01-02T03:04:05.678Z"),
                (Special::MicroTime, Sample::Full) => json!("2024-01-02T03:04:05.678901Z"),
                (Special::Time | Special::MicroTime, Sample::Zero) => json!("0001-01-01T00:00:00Z"),
                (Special::Duration, Sample::Full) => json!("1m30.5s"),
                (Special::Duration, Sample::Zero) => json!("0s"),
                (Special::Quantity, Sample::Full) => json!("1.5Gi"),
                (Special::Quantity, Sample::Zero) => json!("0"),
                (Special::IntOrString, Sample::Full) => json!("25%"),
                (Special::IntOrString, Sample::Zero) => json!(0),
                (Special::RawJson, Sample::Full) => json!({"f:a": {".": {}}, "b": [1, 2.5, "c"]}),
                (Special::RawJson, Sample::Zero) => json!({}),
                (Special::List, Sample::Full) => json!(["a", "b"]),
                (Special::List, Sample::Zero) => json!([]),
                (_, Sample::Full) => json!({"type": "string"}),
                (_, Sample::Zero) => json!(false),
            };
        }
        if depth == 0 {
            return json!({});
        }
        let mut map = Map::new();
        for field in &info.fields {
            let value = match &field.shape {
                Shape::Single(Elem::Message(index)) if field.facts.inline => {
                    let inner = message_sample(registry, registry.info(*index), sample, depth);
                    if let Value::Object(inner) = inner {
                        map.extend(inner);
                    }
                    continue;
                }
                Shape::Single(elem) => elem_sample(registry, elem, sample, depth - 1),
                Shape::List(_) if sample == Sample::Null => Value::Null,
                Shape::List(_) if sample == Sample::Zero => json!([]),
                Shape::List(elem) => json!([
                    elem_sample(registry, elem, Sample::Full, depth - 1),
                    elem_sample(registry, elem, Sample::Zero, depth - 1),
                    elem_sample(registry, elem, Sample::Null, depth - 1)
                ]),
                Shape::Map { .. } if sample == Sample::Null => Value::Null,
                Shape::Map { .. } if sample == Sample::Zero => json!({}),
                Shape::Map { value, .. } => json!({
                    "a": elem_sample(registry, value, Sample::Full, depth - 1),
                    "b": elem_sample(registry, value, Sample::Zero, depth - 1),
                    "c": elem_sample(registry, value, Sample::Null, depth - 1)
                }),
            };
            map.insert(field.json.clone(), value);
        }
        Value::Object(map)
    }

    /// Every served kind, with every field set, zero or null (and none at all): the direct
    /// conversion gives exactly what the bytes give, and handles every kind but the custom
    /// resource definitions' schema unions.
    #[test]
    fn round_trip_without_bytes_matches_the_bytes_for_every_kind() {
        let registry = Registry::get().unwrap();
        let mut handled = 0;
        for resource in crate::resources::RESOURCES.iter().filter(|r| !r.kind.is_empty()) {
            let (group, version, kind) = (resource.group, resource.version, resource.kind);
            let Some(info) = registry.kind_message(group, version, kind) else {
                continue;
            };
            let api_version = super::super::api_version(group, version);
            for sample in [Sample::Full, Sample::Zero, Sample::Null] {
                for depth in [1, 3, 8] {
                    let mut object = message_sample(registry, info, sample, depth);
                    object["apiVersion"] = json!(api_version);
                    object["kind"] = json!(kind);
                    if direct(&object, group, version, kind).is_ok() {
                        assert_direct(&object, group, version, kind);
                        handled += 1;
                    } else {
                        assert_same(&object, group, version, kind);
                    }
                }
            }
            assert_direct(
                &json!({"apiVersion": api_version, "kind": kind}),
                group,
                version,
                kind,
            );
        }
        assert!(handled > 500, "{handled}");
    }

    #[test]
    fn round_trip_without_bytes_matches_the_bytes_for_a_pod() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "n", "creationTimestamp": "2024-01-02T03:04:05.5Z",
                         "labels": {"a": "b"}, "annotations": {}, "finalizers": [],
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "n",
                                              "uid": "u", "controller": false}],
                         "managedFields": [{"manager": "m", "operation": "Update", "apiVersion": "v1",
                                            "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                                            "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:a": {}}}}}],
                         "unknown": 1},
            "spec": {
                "containers": [{
                    "name": "c", "image": "i",
                    "resources": {"limits": {"cpu": "1500m", "memory": "1Gi"},
                                  "requests": {"cpu": "0.5", "memory": 1024}},
                    "ports": [{"containerPort": 80.0, "protocol": null}],
                    "env": [{"name": "E", "value": ""}],
                    "livenessProbe": {"httpGet": {"port": "http", "path": "/"}},
                    "readinessProbe": {"tcpSocket": {"port": 8080}},
                    "securityContext": {"privileged": false}
                }],
                "nodeName": "",
                "securityContext": {"runAsUser": 0},
                "terminationGracePeriodSeconds": 30,
                "volumes": [{"name": "v", "emptyDir": {"sizeLimit": " 64Mi "}},
                            {"name": "w", "secret": {"secretName": "s", "defaultMode": 420}},
                            {"name": "x"}],
                "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 300}]
            },
            "status": {"startTime": "2024-01-02T03:04:07Z", "phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null}]}
        });
        assert_direct(&pod, "", "v1", "Pod");
        let empty = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {}, "spec": {}, "status": {}});
        assert_direct(&empty, "", "v1", "Pod");
    }

    /// What the direct conversion cannot do, or what fails, goes through the bytes (and fails
    /// where they fail).
    #[test]
    fn round_trip_without_bytes_leaves_the_rest_to_the_bytes() {
        let cases = [
            json!({"apiVersion": "v1", "kind": "Pod",
                   "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "lots"}}}]}}),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"creationTimestamp": "yesterday"}}),
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"priority": "high"}}),
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": {}}}),
            json!({"apiVersion": "v1", "kind": "Pod", "spec": "none"}),
            json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "not base64!"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "spec": {"strategy": {"rollingUpdate": {"maxSurge": 1e12}}}}),
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
                       "type": "object", "additionalProperties": false,
                       "properties": {"a": {"type": "array", "items": {"type": "string"}}}}}}]}}),
        ];
        for case in &cases {
            let (group, version) = case["apiVersion"]
                .as_str()
                .unwrap()
                .split_once('/')
                .unwrap_or(("", "v1"));
            let kind = case["kind"].as_str().unwrap();
            assert!(direct(case, group, version, kind).is_err(), "{case}");
            assert_same(case, group, version, kind);
        }
        let mut deep = json!(1);
        for _ in 0..(MAX_EMBEDDED_DEPTH + 30) {
            deep = json!([deep]);
        }
        let event = json!({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"managedFields": [{"fieldsV1": deep}]}});
        assert!(direct(&event, "", "v1", "ConfigMap").is_err());
        assert_same(&event, "", "v1", "ConfigMap");
        assert_eq!(
            round_trip(&json!({"kind": "Widget"}), "example.com", "v1", "Widget"),
            None
        );
    }
}
