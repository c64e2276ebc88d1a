//! Request bodies: read with upstream's size limit, decoded from JSON or YAML, and checked for
//! unknown and duplicate fields as `fieldValidation` asks (see
//! [`rudder_machinery::fieldvalidation`]).

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use rudder_machinery::field::{FieldError, Path};
use rudder_machinery::fieldvalidation::{self as fv, Directive, YamlNode};
use rudder_machinery::schema::Schema;
use serde_json::Value;
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};

use crate::api::negotiation::{BodyFormat, PatchFormat};
use crate::api::query::Query;
use crate::http::BodyStream;
use crate::registry::Resource;
use crate::status::ApiError;

/// kube-apiserver's `--max-request-body-bytes` default: 3 MiB.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Reads the whole body; 413 beyond [`MAX_BODY_BYTES`].
pub async fn read(mut body: BodyStream) -> Result<Bytes, ApiError> {
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|err| ApiError::bad_request(format!("error reading the request body: {err}")))?;
        if out.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::too_large(MAX_BODY_BYTES));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// Decodes a JSON, YAML or protobuf document into a JSON value.
pub fn decode(bytes: &[u8], format: BodyFormat) -> Result<Value, ApiError> {
    match format {
        BodyFormat::Protobuf => rudder_machinery::protobuf::decode(bytes)
            .map(|(_, _, value)| value)
            .map_err(|err| ApiError::bad_request(err.to_string())),
        BodyFormat::Json => serde_json::from_slice(bytes).map_err(|err| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {err}"))
        }),
        BodyFormat::Yaml => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| ApiError::bad_request("error converting YAML to JSON: the body is not UTF-8"))?;
            // Upstream's YAML-to-JSON conversion keeps the last of repeated keys; strict field
            // validation reports them (`yaml_strict_error`).
            let mut options = serde_saphyr::Options::default();
            options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
            serde_saphyr::from_str_with_options::<Value>(text, options)
                .map_err(|err| ApiError::bad_request(format!("error converting YAML to JSON: {err}")))
        }
    }
}

/// Decodes the body of a create or update: an object of `api_version`/`kind`, which may
/// leave both out.
pub fn decode_object(
    bytes: &[u8],
    format: BodyFormat,
    api_version: &str,
    kind: &str,
) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("Object 'Kind' is missing in ''"));
    }
    let mut object = decode(bytes, format)?;
    let Some(map) = object.as_object_mut() else {
        return Err(ApiError::bad_request(format!(
            "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
            json_type(&object)
        )));
    };
    let body_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let body_kind = map.get("kind").and_then(Value::as_str).unwrap_or("").to_owned();
    if !body_version.is_empty() && body_version != api_version {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({body_version}) does not match the expected API version ({api_version})"
        )));
    }
    if !body_kind.is_empty() && body_kind != kind {
        let version = api_version.rsplit('/').next().unwrap_or(api_version);
        return Err(ApiError::bad_request(format!(
            "{body_kind} in version {version:?} cannot be handled as a {kind}: no kind {body_kind:?} is registered for version {api_version:?}"
        )));
    }
    map.insert("apiVersion".into(), Value::String(api_version.to_owned()));
    map.insert("kind".into(), Value::String(kind.to_owned()));
    Ok(object)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The `fieldValidation` parameter of a create, update or patch: `Warn` when absent, the
/// error of values upstream does not know.
pub fn field_validation(query: &Query) -> Result<Directive, FieldError> {
    let value = query.get("fieldValidation").unwrap_or("");
    Directive::parse(value)
        .ok_or_else(|| FieldError::not_supported(&Path::new("fieldValidation"), value, &Directive::SUPPORTED))
}

/// The applied configuration of a server-side apply body (YAML, of which JSON is a subset):
/// a map, as upstream's `yaml.Unmarshal` into `map[string]interface{}` (empty for an empty
/// body); 400 `error decoding YAML: ...` otherwise.
pub fn decode_apply(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    let value = decode(bytes, BodyFormat::Yaml)
        .map_err(|err| ApiError::bad_request(format!("error decoding YAML: {}", err.message)))?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Null => Ok(Value::Object(serde_json::Map::new())),
        other => Err(ApiError::bad_request(format!(
            "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_type(&other)
        ))),
    }
}

/// The strict error of an apply body (duplicate keys, as yaml.v2's strict mode reports them
/// through sigs.k8s.io/yaml), checked under `Strict` and `Warn`.
pub fn apply_strict_error(directive: Directive, bytes: &[u8]) -> Option<String> {
    if !directive.checks() {
        return None;
    }
    let duplicates = std::str::from_utf8(bytes)
        .ok()
        .and_then(yaml_tree)
        .map(|root| fv::yaml_duplicate_keys(&root))
        .unwrap_or_default();
    fv::yaml_strict_error(&duplicates).map(|error| format!("error converting YAML to JSON: {error}"))
}

/// The schema definition of the objects of `resource`.
fn definition(resource: &Resource) -> Option<&'static str> {
    Schema::builtin().kind_definition(&resource.group, &resource.version, &resource.kind)
}

/// Whether `object` decodes into the kind's type. Upstream reports a body that does not (a
/// type error) with the decoder's error alone, never with its strict errors.
fn decodes(resource: &Resource, object: &Value) -> bool {
    resource
        .ops()
        .is_none_or(|ops| ops.normalize(object.clone()).is_ok())
}

/// The strict errors of a create or update body of `format` decoded into `object`.
fn body_strict_errors(bytes: &[u8], format: BodyFormat, object: &Value, definition: &str) -> Vec<String> {
    let schema = Schema::builtin();
    match format {
        BodyFormat::Json => fv::json_strict_errors(bytes, definition, schema),
        BodyFormat::Yaml => {
            let duplicates = std::str::from_utf8(bytes)
                .ok()
                .and_then(yaml_tree)
                .map(|root| fv::yaml_duplicate_keys(&root))
                .unwrap_or_default();
            fv::yaml_strict_error(&duplicates)
                .into_iter()
                .chain(
                    fv::unknown_fields(object, definition, schema)
                        .iter()
                        .map(|path| fv::unknown_field_message(path)),
                )
                .collect()
        }
        BodyFormat::Protobuf => Vec::new(),
    }
}

/// The strict errors of a custom resource body: duplicate fields, then the fields pruning
/// drops (upstream's `schemaCoercingDecoder`).
fn custom_strict_errors(
    custom: &crate::crd::CustomStrategy,
    bytes: &[u8],
    format: BodyFormat,
    object: &Value,
) -> Vec<String> {
    let duplicates = match format {
        BodyFormat::Json => fv::duplicate_fields(bytes),
        BodyFormat::Yaml => std::str::from_utf8(bytes)
            .ok()
            .and_then(yaml_tree)
            .map(|root| fv::yaml_duplicate_keys(&root))
            .and_then(|lines| fv::yaml_strict_error(&lines))
            .into_iter()
            .collect(),
        BodyFormat::Protobuf => Vec::new(),
    };
    duplicates
        .into_iter()
        .chain(custom_unknown_fields(custom, object))
        .collect()
}

/// The unknown fields of a custom resource as strict errors.
fn custom_unknown_fields(custom: &crate::crd::CustomStrategy, object: &Value) -> Vec<String> {
    let mut pruned = object.clone();
    custom
        .prune(&mut pruned)
        .iter()
        .map(|path| fv::unknown_field_message(path.trim_start_matches('.')))
        .collect()
}

/// Field validation of a create or update body: its warnings under `Warn`, upstream's 400
/// under `Strict` (`Pod in version "v1" cannot be handled as a Pod: strict decoding error:
/// unknown field "spec.foo"`), nothing under `Ignore`.
pub fn check_body_fields(
    resource: &Resource,
    directive: Directive,
    bytes: &[u8],
    format: BodyFormat,
    object: &Value,
) -> Result<Vec<String>, ApiError> {
    if !directive.checks() {
        return Ok(Vec::new());
    }
    let errors = match (resource.custom(), definition(resource)) {
        (Some(custom), _) => custom_strict_errors(custom, bytes, format, object),
        (None, Some(definition)) => body_strict_errors(bytes, format, object, definition),
        (None, None) => return Ok(Vec::new()),
    };
    if errors.is_empty() || !decodes(resource, object) {
        return Ok(Vec::new());
    }
    match directive {
        Directive::Strict => Err(ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: {}",
            fv::strict_decoding_error(&errors),
            kind = resource.kind,
            version = resource.version,
        ))),
        _ => Ok(fv::strict_warnings(&errors)),
    }
}

/// The strict errors of a patch body, before it is applied: the operations of a JSON patch
/// (unknown and duplicate fields), the duplicate fields of the other kinds.
pub fn patch_body_errors(directive: Directive, format: PatchFormat, bytes: &[u8]) -> Vec<String> {
    match format {
        _ if !directive.checks() => Vec::new(),
        PatchFormat::Json => fv::json_patch_strict_errors(bytes),
        PatchFormat::Merge | PatchFormat::Strategic => fv::patch_duplicate_errors(bytes),
        PatchFormat::Apply => Vec::new(),
    }
}

/// Field validation of a patched object: the patch body's errors and the unknown fields of
/// the result, as warnings under `Warn`; under `Strict` upstream's 422 `"" is invalid: patch:
/// Invalid value: "<patch>": strict decoding error: ...`, the value being the patch as Go
/// prints a map (strategic merge patch) or the patched object's JSON (the others).
pub fn check_patched_fields(
    resource: &Resource,
    directive: Directive,
    format: PatchFormat,
    body_errors: &[String],
    document: &Value,
    patched: &Value,
) -> Result<Vec<String>, ApiError> {
    if !directive.checks() {
        return Ok(Vec::new());
    }
    let schema = Schema::builtin();
    let unknown = match definition(resource) {
        None => match resource.custom() {
            Some(custom) => custom_unknown_fields(custom, patched),
            None => Vec::new(),
        },
        Some(definition) if format == PatchFormat::Strategic => {
            fv::unknown_fields_unstructured(patched, definition, schema)
        }
        Some(definition) => fv::unknown_fields(patched, definition, schema)
            .iter()
            .map(|path| fv::unknown_field_message(path))
            .collect(),
    };
    let errors: Vec<String> = body_errors.iter().cloned().chain(unknown).collect();
    if errors.is_empty() || !decodes(resource, patched) {
        return Ok(Vec::new());
    }
    if directive != Directive::Strict {
        return Ok(fv::strict_warnings(&errors));
    }
    let value = if format == PatchFormat::Strategic {
        fv::go_value(document)
    } else {
        go_json(patched)
    };
    let error = FieldError::invalid(&Path::new("patch"), value, fv::strict_decoding_error(&errors));
    Err(ApiError::invalid("", "", "", &[error]))
}

/// JSON as Go's `json.Marshal` writes it: compact, with `<`, `>`, `&`, U+2028 and U+2029
/// escaped (they only occur inside strings).
fn go_json(value: &Value) -> String {
    let json = value.to_string();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The most nodes (aliases expanded) a YAML body's tree may have for the duplicate key check.
const MAX_YAML_NODES: usize = 1 << 20;

/// A YAML collection being read.
enum Open {
    Sequence {
        line: usize,
        anchor: usize,
        items: Vec<YamlNode>,
    },
    Mapping {
        line: usize,
        anchor: usize,
        entries: Vec<(YamlNode, YamlNode)>,
        key: Option<YamlNode>,
    },
}

/// The first document of a YAML body as a tree for the duplicate key check, aliases expanded
/// (yaml.v2 decodes an alias as its anchored node again, at the alias's line); `None` when it
/// does not parse or is too large.
fn yaml_tree(text: &str) -> Option<YamlNode> {
    let mut anchors: HashMap<usize, (YamlNode, usize)> = HashMap::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut nodes = 0usize;
    for event in Parser::new_from_str(text) {
        let (event, span) = event.ok()?;
        let line = span.start.line();
        let (node, anchor, size) = match event {
            Event::Scalar(value, style, anchor, tag) => {
                let node = YamlNode::Scalar {
                    line,
                    text: value.into_owned(),
                    plain: style == ScalarStyle::Plain && tag.is_none(),
                };
                (node, anchor, 1)
            }
            Event::SequenceStart(_, anchor, _) => {
                stack.push(Open::Sequence {
                    line,
                    anchor,
                    items: Vec::new(),
                });
                continue;
            }
            Event::MappingStart(_, anchor, _) => {
                stack.push(Open::Mapping {
                    line,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                });
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop()? {
                Open::Sequence { line, anchor, items } => (YamlNode::Sequence { line, items }, anchor, 1),
                Open::Mapping {
                    line,
                    anchor,
                    entries,
                    ..
                } => (YamlNode::Mapping { line, entries }, anchor, 1),
            },
            Event::Alias(id) => {
                let (target, size) = anchors.get(&id)?;
                (at_line(target.clone(), line), 0, *size)
            }
            Event::UnresolvedAlias(_) => return None,
            Event::DocumentEnd | Event::StreamEnd => return None,
            _ => continue,
        };
        nodes = nodes.checked_add(size)?;
        if nodes > MAX_YAML_NODES {
            return None;
        }
        if anchor != 0 {
            anchors.insert(anchor, (node.clone(), size_of_tree(&node)));
        }
        match stack.last_mut() {
            None => return Some(node),
            Some(Open::Sequence { items, .. }) => items.push(node),
            Some(Open::Mapping { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
    None
}

/// `node` with its own line replaced.
fn at_line(node: YamlNode, at: usize) -> YamlNode {
    match node {
        YamlNode::Scalar { text, plain, .. } => YamlNode::Scalar {
            line: at,
            text,
            plain,
        },
        YamlNode::Sequence { items, .. } => YamlNode::Sequence { line: at, items },
        YamlNode::Mapping { entries, .. } => YamlNode::Mapping { line: at, entries },
    }
}

fn size_of_tree(node: &YamlNode) -> usize {
    let mut size = 0usize;
    let mut pending = vec![node];
    while let Some(node) = pending.pop() {
        size += 1;
        match node {
            YamlNode::Scalar { .. } => {}
            YamlNode::Sequence { items, .. } => pending.extend(items),
            YamlNode::Mapping { entries, .. } => {
                for (k, v) in entries {
                    pending.push(k);
                    pending.push(v);
                }
            }
        }
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_json_and_yaml_objects() {
        let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n";
        let object = decode_object(yaml, BodyFormat::Yaml, "v1", "ConfigMap").unwrap();
        assert_eq!(object["metadata"]["name"], "a");
        let bare = decode_object(
            br#"{"metadata":{"name":"a"}}"#,
            BodyFormat::Json,
            "v1",
            "ConfigMap",
        )
        .unwrap();
        assert_eq!(
            bare["kind"], "ConfigMap",
            "apiVersion and kind default to the endpoint's"
        );
        let wrong = decode_object(
            br#"{"apiVersion":"apps/v1","kind":"ConfigMap"}"#,
            BodyFormat::Json,
            "v1",
            "ConfigMap",
        );
        assert_eq!(
            wrong.unwrap_err().message,
            "the API version in the data (apps/v1) does not match the expected API version (v1)"
        );
        assert_eq!(
            decode_object(b"{", BodyFormat::Json, "v1", "ConfigMap")
                .unwrap_err()
                .code
                .as_u16(),
            400
        );
        assert_eq!(
            decode_object(b"[1]", BodyFormat::Json, "v1", "ConfigMap")
                .unwrap_err()
                .code
                .as_u16(),
            400
        );
    }

    /// yaml.v2's strict errors for this document, from upstream's `YAMLToJSONStrict`.
    const DUPLICATES: &str = "metadata:
  name: a
  name: b
  labels:
    x: \"1\"
    x:
      deep: 1
      deep: 2
1: one
\"1\": string one
0x1: hex one
yes: true
true: again
list:
- a: 1
  a: 2
- &anc {b: 1, b: 2}
- *anc
base: &base
  k: 1
merged:
  <<: *base
  k: 2
empty:
empty:
nested:
  inner:
    z: 1
nested:
  q: 1
";

    #[test]
    fn yaml_duplicates_are_reported_with_yaml_v2_lines() {
        let root = yaml_tree(DUPLICATES).unwrap();
        let lines = fv::yaml_duplicate_keys(&root);
        assert_eq!(
            fv::yaml_strict_error(&lines).unwrap(),
            "yaml: unmarshal errors:\n  line 3: key \"name\" already set in map\n  line 8: key \"deep\" already set in map\n  line 7: key \"x\" already set in map\n  line 11: key 1 already set in map\n  line 13: key true already set in map\n  line 16: key \"a\" already set in map\n  line 17: key \"b\" already set in map\n  line 17: key \"b\" already set in map\n  line 23: key \"k\" already set in map\n  line 25: key \"empty\" already set in map\n  line 30: key \"nested\" already set in map"
        );
        // The body itself decodes, the last of repeated keys winning.
        let object = decode(DUPLICATES.as_bytes(), BodyFormat::Yaml).unwrap();
        assert_eq!(object["metadata"]["name"], "b");
        assert_eq!(object["nested"], serde_json::json!({"q": 1}));
        assert!(yaml_tree("a: [").is_none());
        assert!(fv::yaml_duplicate_keys(&yaml_tree("a: 1\n---\na: 2\n").unwrap()).is_empty());
    }

    #[test]
    fn yaml_alias_bombs_are_not_expanded() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
        }
        assert!(yaml_tree(&text).is_none());
    }

    #[test]
    fn field_validation_values() {
        let query = |raw: &str| Query::parse(raw);
        assert_eq!(field_validation(&query("")).unwrap(), Directive::Warn);
        assert_eq!(
            field_validation(&query("fieldValidation=Strict&fieldValidation=Ignore")).unwrap(),
            Directive::Strict
        );
        let error = field_validation(&query("fieldValidation=strict")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "fieldValidation: Unsupported value: \"strict\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
        );
    }

    #[test]
    fn go_json_escapes_html() {
        assert_eq!(
            go_json(&serde_json::json!({"a": "<b>&\u{2028}"})),
            r#"{"a":"\u003cb\u003e\u0026\u2028"}"#
        );
    }
}
