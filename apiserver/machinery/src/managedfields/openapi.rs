//! Types from OpenAPI v3 schemas, as kube-openapi's `schemaconv.ToSchemaFromOpenAPI` builds
//! them for the API server's type converter.
//!
//! - `type: object` is a map: `properties` are its fields (with their `default`),
//!   `additionalProperties` its element type; with neither (or with
//!   `x-kubernetes-preserve-unknown-fields`), elements are of the deduced type.
//!   `x-kubernetes-map-type` (`atomic`/`granular`) sets its relationship; on a property
//!   referring to a named type, it overrides the named type's.
//! - `type: array` is a list: `x-kubernetes-list-type` `atomic`, `set` or `map` (with
//!   `x-kubernetes-list-map-keys`); without it, `x-kubernetes-patch-strategy: merge` makes it
//!   associative (keyed by `x-kubernetes-patch-merge-key` if any); otherwise atomic.
//! - Scalars: `integer`/`number` numeric, `string` (no format or `byte`) string, other
//!   string formats (`date-time`, `int-or-string`, ...) untyped, `boolean` boolean.
//! - No type: untyped (scalar, list or map, as the value is), e.g. `IntOrString` and
//!   `x-kubernetes-int-or-string`.
//! - `Quantity` is an untyped scalar and `RawExtension` untyped atomic, whatever their
//!   schemas say.
//! - `$ref` (or an `allOf` of one `$ref`) names a type by the last segment of the reference.

use std::collections::HashMap;

use serde_json::{Map as JsonMap, Value, json};

use super::schema::{
    Atom, ElementRelationship, List, Map, Scalar, StructField, TypeRef, TypeSource, UNTYPED_ATOMIC,
    UNTYPED_DEDUCED, untyped_atomic,
};

const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
const RAW_EXTENSION: &str = "io.k8s.apimachinery.pkg.runtime.RawExtension";
const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// A set of named types converted from OpenAPI v3 definitions.
#[derive(Debug, Default)]
pub struct Types {
    types: HashMap<String, Atom>,
    fallback: Option<&'static Types>,
}

impl TypeSource for Types {
    fn named(&self, name: &str) -> Option<&Atom> {
        self.types
            .get(name)
            .or_else(|| self.fallback.and_then(|f| f.named(name)))
    }
}

impl Types {
    /// Converts OpenAPI v3 definitions (`components.schemas`: name to schema), as
    /// `NewTypeConverter(openapiSpec, preserveUnknownFields)` does. Errors list every
    /// definition that does not convert (unknown list or map types, arrays without items).
    pub fn from_openapi_v3(
        definitions: &JsonMap<String, Value>,
        preserve_unknown_fields: bool,
    ) -> Result<Types, String> {
        let mut types = HashMap::new();
        let mut errors = Vec::new();
        let mut names: Vec<&String> = definitions.keys().collect();
        names.sort();
        for name in names {
            let Some(spec) = definitions.get(name) else {
                continue;
            };
            if spec
                .get("$ref")
                .and_then(Value::as_str)
                .is_some_and(|r| !r.is_empty())
            {
                continue;
            }
            let atom = if name == QUANTITY {
                Atom {
                    scalar: Some(Scalar::Untyped),
                    ..Atom::default()
                }
            } else if name == RAW_EXTENSION {
                untyped_atomic().clone()
            } else {
                let mut conv = Converter {
                    preserve_unknown_fields,
                    name: name.clone(),
                    errors: &mut errors,
                };
                conv.visit_spec(spec)
            };
            if !atom.is_empty() {
                types.insert(name.clone(), atom);
            }
        }
        if errors.is_empty() {
            Ok(Types {
                types,
                fallback: None,
            })
        } else {
            Err(errors.join("\n"))
        }
    }

    /// The types of a custom resource version, as the apiextensions server builds them for
    /// apply: the structural schema (`openAPIV3Schema`, `None` for none) with
    /// `apiVersion`, `kind` and `metadata` (a reference to `ObjectMeta`) added at the root
    /// and in every `x-kubernetes-embedded-resource`, converted with the CRD's
    /// `preserveUnknownFields`, named `root`; meta types come from `builtin`.
    pub fn for_custom_resource(
        schema: Option<&Value>,
        preserve_unknown_fields: bool,
        builtin: &'static Types,
    ) -> Result<Types, String> {
        let mut root = match schema {
            Some(schema) => {
                let mut root = schema.clone();
                set_property(
                    &mut root,
                    "metadata",
                    json!({"$ref": format!("#/components/schemas/{OBJECT_META}")}),
                );
                set_property(&mut root, "apiVersion", json!({"type": "string"}));
                set_property(&mut root, "kind", json!({"type": "string"}));
                add_embedded_properties(&mut root);
                root
            }
            None => json!({"type": "object"}),
        };
        if let Some(obj) = root.as_object_mut() {
            obj.remove("$ref");
        }
        let mut definitions = JsonMap::new();
        definitions.insert(CUSTOM_RESOURCE_ROOT.to_string(), root);
        let mut types = Types::from_openapi_v3(&definitions, preserve_unknown_fields)?;
        types.fallback = Some(builtin);
        Ok(types)
    }

    /// The names of the types (for tests and diagnostics).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.keys().map(String::as_str)
    }
}

/// The name of a custom resource's root type in [`Types::for_custom_resource`].
pub const CUSTOM_RESOURCE_ROOT: &str = "root";

fn set_property(schema: &mut Value, name: &str, property: Value) {
    if let Some(obj) = schema.as_object_mut() {
        let props = obj.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            props.insert(name.to_string(), property);
        }
    }
}

/// `addEmbeddedProperties`: `apiVersion`, `kind` and `metadata` in embedded resources.
fn add_embedded_properties(schema: &mut Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        for (_, prop) in props.iter_mut() {
            add_embedded_properties(prop);
        }
    }
    if let Some(items) = obj.get_mut("items") {
        add_embedded_properties(items);
    }
    if let Some(additional) = obj.get_mut("additionalProperties")
        && additional.is_object()
    {
        add_embedded_properties(additional);
    }
    if obj.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true)) {
        set_property(schema, "apiVersion", json!({"type": "string"}));
        set_property(schema, "kind", json!({"type": "string"}));
        set_property(
            schema,
            "metadata",
            json!({"$ref": format!("#/components/schemas/{OBJECT_META}")}),
        );
    }
}

struct Converter<'e> {
    preserve_unknown_fields: bool,
    name: String,
    errors: &'e mut Vec<String>,
}

fn ext<'v>(spec: &'v Value, name: &str) -> Option<&'v Value> {
    spec.get(name)
}

impl Converter<'_> {
    fn report(&mut self, message: &str) {
        self.errors.push(format!("{}: {message}", self.name));
    }

    fn visit_spec(&mut self, spec: &Value) -> Atom {
        if ext(spec, "x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
            self.preserve_unknown_fields = true;
        }
        self.parse_schema(spec)
    }

    fn parse_schema(&mut self, spec: &Value) -> Atom {
        let typ = match spec.get("type") {
            Some(Value::String(s)) => s.as_str(),
            Some(Value::Array(types)) => types.first().and_then(Value::as_str).unwrap_or(""),
            _ => "",
        };
        match typ {
            "" => Atom {
                scalar: Some(Scalar::Untyped),
                list: Some(self.parse_list(spec)),
                map: Some(self.parse_object(spec)),
            },
            "object" => Atom {
                map: Some(self.parse_object(spec)),
                ..Atom::default()
            },
            "array" => Atom {
                list: Some(self.parse_list(spec)),
                ..Atom::default()
            },
            "integer" | "number" => scalar(Scalar::Numeric),
            "string" => match spec.get("format").and_then(Value::as_str).unwrap_or("") {
                "" | "byte" => scalar(Scalar::String),
                _ => scalar(Scalar::Untyped),
            },
            "boolean" => scalar(Scalar::Boolean),
            other => {
                self.report(&format!("unrecognized type: '{other}'"));
                scalar(Scalar::Untyped)
            }
        }
    }

    fn make_ref(&mut self, spec: &Value) -> TypeRef {
        let mut reference = spec.get("$ref").and_then(Value::as_str).unwrap_or("");
        if reference.is_empty()
            && let Some([only]) = spec.get("allOf").and_then(Value::as_array).map(Vec::as_slice)
        {
            reference = only.get("$ref").and_then(Value::as_str).unwrap_or("");
        }
        let name = reference.rsplit('/').next().unwrap_or("");
        if !name.is_empty() {
            let relationship = match self.map_relationship(spec) {
                ElementRelationship::Unset => None,
                er => Some(er),
            };
            return TypeRef {
                named: Some(name.to_string()),
                inlined: None,
                relationship,
            };
        }
        let mut inner = Converter {
            preserve_unknown_fields: self.preserve_unknown_fields,
            name: format!("inlined in {}", self.name),
            errors: self.errors,
        };
        TypeRef::inline(inner.visit_spec(spec))
    }

    fn map_relationship(&mut self, spec: &Value) -> ElementRelationship {
        match ext(spec, "x-kubernetes-map-type") {
            None => ElementRelationship::Unset,
            Some(Value::String(s)) if s == "atomic" => ElementRelationship::Atomic,
            Some(Value::String(s)) if s == "granular" => ElementRelationship::Separable,
            Some(other) => {
                self.report(&format!("unknown map type {}", display(other)));
                ElementRelationship::Unset
            }
        }
    }

    fn parse_object(&mut self, spec: &Value) -> Map {
        let mut fields = Vec::new();
        let properties = spec.get("properties").and_then(Value::as_object);
        if let Some(props) = properties {
            for (name, member) in props {
                fields.push(StructField {
                    name: name.clone(),
                    type_ref: self.make_ref(member),
                    default: member.get("default").cloned(),
                });
            }
        }
        let no_properties = properties.is_none_or(JsonMap::is_empty);
        let element_type = match spec.get("additionalProperties") {
            None | Some(Value::Null) => {
                if self.preserve_unknown_fields || no_properties {
                    TypeRef::named(UNTYPED_DEDUCED)
                } else {
                    TypeRef::default()
                }
            }
            Some(Value::Bool(true)) => TypeRef::named(UNTYPED_DEDUCED),
            Some(Value::Bool(false)) => TypeRef::default(),
            Some(schema) => self.make_ref(schema),
        };
        let relationship = self.map_relationship(spec);
        Map::new(fields, element_type, relationship)
    }

    fn parse_list(&mut self, spec: &Value) -> List {
        let (relationship, keys) = self.list_relationship(spec);
        let element_type = match spec.get("items") {
            Some(items @ Value::Object(_)) => self.make_ref(items),
            Some(Value::Array(items)) if items.len() == 1 => self.make_ref(&items[0]),
            Some(_) => {
                self.report("structural schema arrays must have exactly one member subtype");
                TypeRef::named(UNTYPED_DEDUCED)
            }
            None => {
                if spec
                    .get("type")
                    .is_some_and(|t| t.as_str().is_some_and(|t| !t.is_empty()))
                {
                    self.report("`items` must be specified on arrays");
                }
                TypeRef::named(UNTYPED_ATOMIC)
            }
        };
        List {
            element_type,
            element_relationship: relationship,
            keys,
        }
    }

    fn list_relationship(&mut self, spec: &Value) -> (ElementRelationship, Vec<String>) {
        if let Some(val) = ext(spec, "x-kubernetes-list-type") {
            return match val.as_str() {
                Some("atomic") => (ElementRelationship::Atomic, Vec::new()),
                Some("set") => (ElementRelationship::Associative, Vec::new()),
                Some("map") => match ext(spec, "x-kubernetes-list-map-keys") {
                    None => {
                        self.report("missing map keys");
                        (ElementRelationship::Associative, Vec::new())
                    }
                    Some(Value::Array(keys)) => (
                        ElementRelationship::Associative,
                        keys.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect(),
                    ),
                    Some(other) => {
                        self.report(&format!("uninterpreted map keys: {}", display(other)));
                        (ElementRelationship::Associative, Vec::new())
                    }
                },
                _ => {
                    self.report(&format!("unknown list type {}", display(val)));
                    (ElementRelationship::Atomic, Vec::new())
                }
            };
        }
        if let Some(val) = ext(spec, "x-kubernetes-patch-strategy") {
            return match val.as_str() {
                Some("merge" | "merge,retainKeys") => match ext(spec, "x-kubernetes-patch-merge-key") {
                    Some(Value::String(key)) => (ElementRelationship::Associative, vec![key.clone()]),
                    Some(other) => {
                        self.report(&format!("uninterpreted merge key: {}", display(other)));
                        (ElementRelationship::Associative, Vec::new())
                    }
                    None => (ElementRelationship::Associative, Vec::new()),
                },
                Some("retainKeys") => (ElementRelationship::Atomic, Vec::new()),
                _ => {
                    self.report(&format!("unknown patch strategy {}", display(val)));
                    (ElementRelationship::Atomic, Vec::new())
                }
            };
        }
        (ElementRelationship::Atomic, Vec::new())
    }
}

fn scalar(s: Scalar) -> Atom {
    Atom {
        scalar: Some(s),
        ..Atom::default()
    }
}

fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::managedfields::schema::resolve;

    #[test]
    fn converts_lists_maps_and_scalars() {
        let defs = json!({
            "T": {
                "type": "object",
                "properties": {
                    "atomicList": {"type": "array", "items": {"type": "string"}},
                    "set": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                    "keyed": {"type": "array", "items": {"$ref": "#/components/schemas/Item"},
                              "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "port"]},
                    "merge": {"type": "array", "items": {"$ref": "#/components/schemas/Item"},
                              "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "selector": {"allOf": [{"$ref": "#/components/schemas/Item"}], "x-kubernetes-map-type": "atomic"},
                    "ios": {"x-kubernetes-int-or-string": true},
                    "time": {"type": "string", "format": "date-time"}
                }
            },
            "Item": {"type": "object", "properties": {"name": {"type": "string", "default": ""}, "port": {"type": "integer"}}},
            QUANTITY: {"type": "string"}
        });
        let types = Types::from_openapi_v3(defs.as_object().unwrap(), false).unwrap();
        let t = types.named("T").unwrap().map.as_ref().unwrap();
        assert!(t.element_type.is_empty());
        let list = |name: &str| {
            t.find_field(name)
                .unwrap()
                .type_ref
                .inlined
                .as_ref()
                .unwrap()
                .list
                .clone()
                .unwrap()
        };
        assert_eq!(
            list("atomicList").element_relationship,
            ElementRelationship::Atomic
        );
        assert_eq!(list("set").element_relationship, ElementRelationship::Associative);
        assert_eq!(list("keyed").keys, vec!["name", "port"]);
        assert_eq!(list("merge").keys, vec!["name"]);
        let selector = &t.find_field("selector").unwrap().type_ref;
        assert_eq!(selector.relationship, Some(ElementRelationship::Atomic));
        let resolved = resolve(&types, selector).unwrap();
        assert_eq!(resolved.map().unwrap().1, ElementRelationship::Atomic);
        let ios = t.find_field("ios").unwrap().type_ref.inlined.as_ref().unwrap();
        assert!(ios.scalar.is_some() && ios.list.is_some() && ios.map.is_some());
        let item = types.named("Item").unwrap().map.as_ref().unwrap();
        assert_eq!(item.find_field("name").unwrap().default, Some(json!("")));
        assert_eq!(types.named(QUANTITY).unwrap().scalar, Some(Scalar::Untyped));
    }

    #[test]
    fn reports_bad_extensions() {
        let defs =
            json!({"T": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "bogus"}});
        let err = Types::from_openapi_v3(defs.as_object().unwrap(), false).unwrap_err();
        assert_eq!(err, "T: unknown list type bogus");
    }
}
