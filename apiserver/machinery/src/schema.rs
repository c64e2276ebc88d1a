//! Structural facts of the built-in types, from upstream's OpenAPI spec: the shape of every
//! property (object, list, map, primitive), patch strategies and merge keys, list types and
//! map keys, map types. Strategic merge patch and server-side apply are driven by these facts,
//! never by guesses.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

static SCHEMA_JSON: &str = include_str!("generated/schema.json");

/// All definitions of the built-in API.
#[derive(Debug)]
pub struct Schema {
    definitions: HashMap<String, Definition>,
    kinds: HashMap<String, String>,
}

/// One OpenAPI definition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Definition {
    /// Properties by JSON name.
    pub props: BTreeMap<String, Property>,
    /// `x-kubernetes-map-type` of the definition itself (`atomic` or `granular`).
    pub map_type: Option<String>,
    /// Required properties.
    pub required: Vec<String>,
    /// For non-object definitions (Quantity, IntOrString, Time): their type.
    pub scalar_type: Option<String>,
    /// Their format (`int-or-string`, `date-time`, ...).
    pub format: Option<String>,
}

/// What a value is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// An object of the named definition.
    Object(String),
    /// A list of items.
    Array(Item),
    /// A map from strings to values.
    Map(Item),
    /// A primitive (`string`, `integer`, `boolean`, `number`) with an optional format.
    Primitive(String, Option<String>),
}

/// The element type of a list or map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    /// An object (or special scalar) definition.
    Ref(String),
    /// A primitive type.
    Primitive(String),
}

/// One property of a definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// Its shape.
    pub shape: Shape,
    /// `x-kubernetes-patch-strategy`, comma-separated (`merge`, `retainKeys`, `merge,retainKeys`).
    pub patch_strategy: Option<String>,
    /// `x-kubernetes-patch-merge-key`.
    pub merge_key: Option<String>,
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub list_type: Option<String>,
    /// `x-kubernetes-list-map-keys`.
    pub list_map_keys: Vec<String>,
    /// `x-kubernetes-map-type`: `atomic` or `granular`.
    pub map_type: Option<String>,
}

impl Property {
    /// Whether the patch strategy includes `strategy` (`merge`, `retainKeys`, `replace`).
    pub fn has_patch_strategy(&self, strategy: &str) -> bool {
        self.patch_strategy
            .as_deref()
            .is_some_and(|s| s.split(',').any(|part| part.trim() == strategy))
    }

    /// The definition of the objects this property holds (directly, or as list/map items).
    pub fn item_definition(&self) -> Option<&str> {
        match &self.shape {
            Shape::Object(name) | Shape::Array(Item::Ref(name)) | Shape::Map(Item::Ref(name)) => Some(name),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct RawSchema {
    definitions: HashMap<String, RawDefinition>,
    kinds: HashMap<String, String>,
}

#[derive(Deserialize)]
struct RawDefinition {
    #[serde(default)]
    props: BTreeMap<String, RawProperty>,
    #[serde(default)]
    mt: Option<String>,
    #[serde(default)]
    req: Vec<String>,
    #[serde(default, rename = "type")]
    scalar_type: Option<String>,
    #[serde(default)]
    format: Option<String>,
}

#[derive(Deserialize)]
struct RawProperty {
    t: String,
    #[serde(default)]
    r: Option<String>,
    #[serde(default)]
    p: Option<String>,
    #[serde(default)]
    f: Option<String>,
    #[serde(default)]
    ps: Option<String>,
    #[serde(default)]
    mk: Option<String>,
    #[serde(default)]
    lt: Option<String>,
    #[serde(default)]
    lk: Vec<String>,
    #[serde(default)]
    mt: Option<String>,
}

impl RawProperty {
    fn into_property(self) -> Property {
        let item = || match (&self.r, &self.p) {
            (Some(r), _) => Item::Ref(r.clone()),
            (None, p) => Item::Primitive(p.clone().unwrap_or_default()),
        };
        let shape = match self.t.as_str() {
            "o" => Shape::Object(self.r.clone().unwrap_or_default()),
            "a" => Shape::Array(item()),
            "m" => Shape::Map(item()),
            _ => Shape::Primitive(self.p.clone().unwrap_or_default(), self.f.clone()),
        };
        Property {
            shape,
            patch_strategy: self.ps,
            merge_key: self.mk,
            list_type: self.lt,
            list_map_keys: self.lk,
            map_type: self.mt,
        }
    }
}

impl Schema {
    /// The schema of the built-in API (parsed once, on first use).
    pub fn builtin() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| Schema::parse(SCHEMA_JSON).unwrap_or_else(|_| Schema::empty()))
    }

    fn empty() -> Schema {
        Schema {
            definitions: HashMap::new(),
            kinds: HashMap::new(),
        }
    }

    /// Parses the generated schema facts.
    pub fn parse(json: &str) -> Result<Schema, serde_json::Error> {
        let raw: RawSchema = serde_json::from_str(json)?;
        let definitions = raw
            .definitions
            .into_iter()
            .map(|(name, def)| {
                let definition = Definition {
                    props: def
                        .props
                        .into_iter()
                        .map(|(k, v)| (k, v.into_property()))
                        .collect(),
                    map_type: def.mt,
                    required: def.req,
                    scalar_type: def.scalar_type,
                    format: def.format,
                };
                (name, definition)
            })
            .collect();
        Ok(Schema {
            definitions,
            kinds: raw.kinds,
        })
    }

    /// The definition named `name` (e.g. `io.k8s.api.core.v1.PodSpec`).
    pub fn definition(&self, name: &str) -> Option<&Definition> {
        self.definitions.get(name)
    }

    /// The definition name of a group/version/kind (group empty for core).
    pub fn kind_definition(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .get(&format!("{group}/{version}/{kind}"))
            .map(String::as_str)
    }

    /// The property `name` of definition `definition`.
    pub fn property(&self, definition: &str, name: &str) -> Option<&Property> {
        self.definitions.get(definition)?.props.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_of_the_pod_spec() {
        let schema = Schema::builtin();
        let pod = schema.kind_definition("", "v1", "Pod").unwrap();
        assert_eq!(pod, "io.k8s.api.core.v1.Pod");
        let spec = schema.property(pod, "spec").unwrap();
        assert_eq!(spec.shape, Shape::Object("io.k8s.api.core.v1.PodSpec".into()));
        let containers = schema
            .property("io.k8s.api.core.v1.PodSpec", "containers")
            .unwrap();
        assert!(containers.has_patch_strategy("merge"));
        assert_eq!(containers.merge_key.as_deref(), Some("name"));
        assert_eq!(containers.item_definition(), Some("io.k8s.api.core.v1.Container"));
        let volumes = schema.property("io.k8s.api.core.v1.PodSpec", "volumes").unwrap();
        assert!(volumes.has_patch_strategy("retainKeys"));
        let selector = schema
            .property("io.k8s.api.core.v1.PodSpec", "nodeSelector")
            .unwrap();
        assert_eq!(selector.shape, Shape::Map(Item::Primitive("string".into())));
        let quantity = schema
            .definition("io.k8s.apimachinery.pkg.api.resource.Quantity")
            .unwrap();
        assert_eq!(quantity.scalar_type.as_deref(), Some("string"));
        let labels = schema
            .definition("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")
            .unwrap();
        assert_eq!(labels.map_type.as_deref(), Some("atomic"));
    }
}
