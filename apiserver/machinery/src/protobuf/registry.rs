//! The compiled-in descriptor set of the built-in API and the Go facts beside it, loaded once;
//! which message each group/version/kind is, and how each message field maps to JSON.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use serde::Deserialize;

use super::ProtobufError;

/// Upstream's generated.proto files of the GA group versions, compiled by `hack/gen-protobuf.sh`.
static DESCRIPTORS: &[u8] = include_bytes!("../generated/k8s.pb");

/// What the Go types say of each message (see `hack/gen-protobuf.sh`).
static GO_FACTS: &str = include_str!("../generated/k8s-pb-fields.json");

/// The protobuf package of meta.k8s.io/v1.
pub(super) const META: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";
const RUNTIME: &str = "k8s.io.apimachinery.pkg.runtime";
const APIEXTENSIONS: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1";

/// Kinds registered in every group version by `metav1.AddToGroupVersion`: the same message
/// in any of them.
const META_KINDS: &[&str] = &[
    "Status",
    "WatchEvent",
    "DeleteOptions",
    "ListOptions",
    "GetOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "APIVersions",
    "APIGroupList",
    "APIGroup",
    "APIResourceList",
];

/// Kinds registered as unversioned: always written as `v1`.
const UNVERSIONED_KINDS: &[&str] = &[
    "Status",
    "APIVersions",
    "APIGroupList",
    "APIGroup",
    "APIResourceList",
];

/// Groups with protobuf messages that no server resource lists: the AdmissionReview types
/// and aggregated discovery.
const EXTRA_GROUPS: &[&str] = &["admission.k8s.io", "apidiscovery.k8s.io"];

/// Whether a kind is written with apiVersion `v1` whatever the group version asked for.
pub(super) fn is_unversioned(kind: &str) -> bool {
    UNVERSIONED_KINDS.contains(&kind)
}

/// Messages whose JSON is not their fields'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Special {
    /// `meta.v1.Time`: an RFC 3339 string with seconds, `null` when zero.
    Time,
    /// `meta.v1.MicroTime`: an RFC 3339 string with microseconds, `null` when zero.
    MicroTime,
    /// `meta.v1.Duration`: a Go duration string.
    Duration,
    /// `resource.Quantity`: its canonical string.
    Quantity,
    /// `intstr.IntOrString`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension`, `meta.v1.FieldsV1`, apiextensions `JSON`: embedded JSON bytes.
    RawJson,
    /// `JSONSchemaPropsOrArray`: a schema or an array of schemas.
    PropsOrArray,
    /// `JSONSchemaPropsOrBool`: a schema or a boolean.
    PropsOrBool,
    /// `JSONSchemaPropsOrStringArray`: a schema or an array of strings.
    PropsOrStringArray,
    /// A Go named slice (`Verbs`, `ExtraValue`): a message wrapping `repeated items`, a JSON
    /// array.
    List,
}

/// How one message field maps to its Go struct field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct FieldFacts {
    /// The JSON name, where it differs from the protobuf name.
    pub json: Option<String>,
    /// The Go field is a pointer (a nil pointer is absent; a set one is present).
    pub pointer: bool,
    /// `omitempty`.
    pub omitempty: bool,
    /// `omitzero`.
    pub omitzero: bool,
    /// An embedded struct whose fields are inlined into the parent's JSON object.
    pub inline: bool,
}

impl FieldFacts {
    /// For fields the Go facts do not cover: present in protobuf if and only if present in
    /// JSON.
    const UNKNOWN: FieldFacts = FieldFacts {
        json: None,
        pointer: true,
        omitempty: true,
        omitzero: false,
        inline: false,
    };

    /// Parses the generator's flags: letters (`p`ointer, `o`mitempty, `z` omitzero,
    /// `i`nline), then `=jsonName` where the names differ.
    fn parse(flags: &str) -> FieldFacts {
        let (letters, json) = match flags.split_once('=') {
            Some((letters, json)) => (letters, Some(json.to_string())),
            None => (flags, None),
        };
        FieldFacts {
            json,
            pointer: letters.contains('p'),
            omitempty: letters.contains('o'),
            omitzero: letters.contains('z'),
            inline: letters.contains('i'),
        }
    }

    /// Whether an empty or zero value is left out of JSON.
    pub fn omits_empty(&self) -> bool {
        self.omitempty || self.omitzero
    }
}

#[derive(Deserialize)]
struct GoFactsFile {
    messages: HashMap<String, HashMap<String, String>>,
    lists: Vec<String>,
    custom: Vec<String>,
    kinds: Vec<String>,
}

/// The index of a message in [`Registry::messages`].
pub(super) type MessageIndex = usize;

/// What a value of a field (or a list item, or a map value) is.
#[derive(Clone, Debug)]
pub(super) enum Elem {
    /// A message.
    Message(MessageIndex),
    /// `bytes`: a base64 string in JSON.
    Bytes,
    /// Any other scalar.
    Scalar(Kind),
}

/// The shape of a field.
#[derive(Clone, Debug)]
pub(super) enum Shape {
    /// `map<key, value>`.
    Map { key: Kind, value: Elem },
    /// `repeated`.
    List(Elem),
    /// A singular field.
    Single(Elem),
}

/// One field of a message, ready for conversion.
#[derive(Debug)]
pub(super) struct FieldInfo {
    /// The field's descriptor.
    pub field: FieldDescriptor,
    /// Its JSON name (meaningless for inlined fields).
    pub json: String,
    /// What the Go struct field is.
    pub facts: FieldFacts,
    /// Its shape.
    pub shape: Shape,
}

/// One message, ready for conversion.
#[derive(Debug)]
pub(super) struct MessageInfo {
    /// The message's descriptor.
    pub desc: MessageDescriptor,
    /// Its JSON shape when not its fields'.
    pub special: Option<Special>,
    /// Its fields in number order.
    pub fields: Vec<FieldInfo>,
}

/// The loaded descriptors and facts.
#[derive(Debug)]
pub(super) struct Registry {
    messages: Vec<MessageInfo>,
    by_name: HashMap<String, MessageIndex>,
    kinds: HashSet<String>,
}

static REGISTRY: OnceLock<Result<Registry, ProtobufError>> = OnceLock::new();

fn load_error(message: impl Into<String>) -> ProtobufError {
    ProtobufError::Descriptors(message.into())
}

impl Registry {
    /// The registry, loaded on first use.
    pub fn get() -> Result<&'static Registry, ProtobufError> {
        REGISTRY
            .get_or_init(Registry::load)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn load() -> Result<Registry, ProtobufError> {
        let pool = DescriptorPool::decode(DESCRIPTORS).map_err(|err| load_error(err.to_string()))?;
        let facts: GoFactsFile = serde_json::from_str(GO_FACTS).map_err(|err| load_error(err.to_string()))?;
        let mut special: HashMap<String, Special> = [
            (format!("{META}.Time"), Special::Time),
            (format!("{META}.MicroTime"), Special::MicroTime),
            (format!("{META}.Duration"), Special::Duration),
            (format!("{META}.FieldsV1"), Special::RawJson),
            (
                "k8s.io.apimachinery.pkg.api.resource.Quantity".to_string(),
                Special::Quantity,
            ),
            (
                "k8s.io.apimachinery.pkg.util.intstr.IntOrString".to_string(),
                Special::IntOrString,
            ),
            (format!("{RUNTIME}.RawExtension"), Special::RawJson),
            (format!("{APIEXTENSIONS}.JSON"), Special::RawJson),
            (
                format!("{APIEXTENSIONS}.JSONSchemaPropsOrArray"),
                Special::PropsOrArray,
            ),
            (
                format!("{APIEXTENSIONS}.JSONSchemaPropsOrBool"),
                Special::PropsOrBool,
            ),
            (
                format!("{APIEXTENSIONS}.JSONSchemaPropsOrStringArray"),
                Special::PropsOrStringArray,
            ),
        ]
        .into_iter()
        .collect();
        for name in facts.lists {
            special.insert(name, Special::List);
        }
        // Every Go type that marshals its own JSON must be one this module knows.
        if let Some(name) = facts.custom.iter().find(|name| !special.contains_key(*name)) {
            return Err(load_error(format!("no JSON mapping for {name}")));
        }
        let by_name: HashMap<String, MessageIndex> = pool
            .all_messages()
            .enumerate()
            .map(|(index, desc)| (desc.full_name().to_string(), index))
            .collect();
        let elem = |kind: Kind| -> Result<Elem, ProtobufError> {
            Ok(match kind {
                Kind::Message(desc) => Elem::Message(
                    *by_name
                        .get(desc.full_name())
                        .ok_or_else(|| load_error(format!("no {}", desc.full_name())))?,
                ),
                Kind::Bytes => Elem::Bytes,
                kind => Elem::Scalar(kind),
            })
        };
        let mut messages = Vec::with_capacity(by_name.len());
        for desc in pool.all_messages() {
            let go_fields = facts.messages.get(desc.full_name());
            let mut fields = Vec::with_capacity(desc.fields().len());
            for field in desc.fields() {
                let facts = match go_fields.and_then(|fields| fields.get(&field.number().to_string())) {
                    Some(flags) => FieldFacts::parse(flags),
                    None => FieldFacts::UNKNOWN,
                };
                let shape = if field.is_map() {
                    let Kind::Message(entry) = field.kind() else {
                        return Err(load_error(format!("map {} without entry", field.full_name())));
                    };
                    Shape::Map {
                        key: entry.map_entry_key_field().kind(),
                        value: elem(entry.map_entry_value_field().kind())?,
                    }
                } else if field.is_list() {
                    Shape::List(elem(field.kind())?)
                } else {
                    Shape::Single(elem(field.kind())?)
                };
                if facts.inline && !matches!(shape, Shape::Single(Elem::Message(_))) {
                    return Err(load_error(format!(
                        "inlined {} is not a message",
                        field.full_name()
                    )));
                }
                let json = facts.json.clone().unwrap_or_else(|| field.name().to_string());
                fields.push(FieldInfo {
                    field,
                    json,
                    facts,
                    shape,
                });
            }
            let special = special.get(desc.full_name()).copied();
            messages.push(MessageInfo {
                desc,
                special,
                fields,
            });
        }
        Ok(Registry {
            messages,
            by_name,
            kinds: facts.kinds.into_iter().collect(),
        })
    }

    /// A message by index.
    pub fn info(&self, index: MessageIndex) -> &MessageInfo {
        &self.messages[index]
    }

    /// A message by full name.
    pub fn message(&self, name: &str) -> Result<&MessageInfo, ProtobufError> {
        self.by_name
            .get(name)
            .map(|index| &self.messages[*index])
            .ok_or_else(|| load_error(format!("no message {name}")))
    }

    /// The message of a group/version/kind, if it is a registered kind.
    pub fn kind_message(&self, group: &str, version: &str, kind: &str) -> Option<&MessageInfo> {
        let name = message_name(group, version, kind)?;
        if !self.kinds.contains(&name) {
            return None;
        }
        self.message(&name).ok()
    }

    /// Every message (for tests).
    #[cfg(test)]
    pub fn messages(&self) -> &[MessageInfo] {
        &self.messages
    }
}

/// The protobuf message name of a group/version/kind (`k8s.io.api.core.v1.ConfigMap`), by
/// go-to-protobuf's naming (the Go package path), for the built-in groups only; whether such
/// a message exists is [`super::supports`]'s question.
pub fn message_name(group: &str, version: &str, kind: &str) -> Option<String> {
    let simple = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric());
    if !simple(version) || !simple(kind) {
        return None;
    }
    if META_KINDS.contains(&kind) {
        return Some(format!("{META}.{kind}"));
    }
    let package = match group {
        "" => "k8s.io.api.core".to_string(),
        "meta.k8s.io" => "k8s.io.apimachinery.pkg.apis.meta".to_string(),
        "apiextensions.k8s.io" => "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions".to_string(),
        "apiregistration.k8s.io" => "k8s.io.kube_aggregator.pkg.apis.apiregistration".to_string(),
        _ if is_builtin_group(group) => {
            let label = group.split('.').next().unwrap_or(group);
            format!("k8s.io.api.{label}")
        }
        _ => return None,
    };
    Some(format!("{package}.{version}.{kind}"))
}

/// Whether a group is one of upstream's (custom resources never are).
fn is_builtin_group(group: &str) -> bool {
    EXTRA_GROUPS.contains(&group) || crate::resources::GROUPS.iter().any(|info| info.name == group)
}
