//! The type system of structured-merge-diff (sigs.k8s.io/structured-merge-diff/v6/schema)
//! and the [`TypeSource`] trait through which the engine finds types.
//!
//! A type is an [`Atom`]: a scalar, a list, a map, or (for untyped values) several of these,
//! the value deciding which applies. Lists are atomic (replaced as a whole) or associative
//! (sets of scalars, or maps keyed by some of their fields); maps are separable (granular,
//! the default) or atomic. Structs are maps with named fields; a struct without an element
//! type refuses undeclared fields. Two common types always exist: `__untyped_atomic_` and
//! `__untyped_deduced_` (what kube-openapi's converter adds to every schema).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Value, json};

/// The name of the untyped atomic type.
pub const UNTYPED_ATOMIC: &str = "__untyped_atomic_";
/// The name of the untyped deduced type (maps of it are granular).
pub const UNTYPED_DEDUCED: &str = "__untyped_deduced_";

/// A scalar type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar {
    /// Integers and floats.
    Numeric,
    /// Strings.
    String,
    /// Booleans.
    Boolean,
    /// Any scalar.
    Untyped,
}

/// How the items of a list or map relate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ElementRelationship {
    /// Not set (maps: granular).
    #[default]
    Unset,
    /// A set or a map-keyed list: items are owned individually.
    Associative,
    /// Replaced and owned as a whole.
    Atomic,
    /// Fields are owned individually (`x-kubernetes-map-type: granular`).
    Separable,
}

/// A reference to a type: named, inlined, or empty (no type); with an optional override of
/// the element relationship of the named type (`x-kubernetes-map-type` on a property).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TypeRef {
    /// The name of a type.
    pub named: Option<String>,
    /// An inlined type.
    pub inlined: Option<Box<Atom>>,
    /// Overrides the element relationship of the referenced map (or list).
    pub relationship: Option<ElementRelationship>,
}

impl TypeRef {
    /// A reference by name.
    pub fn named(name: &str) -> TypeRef {
        TypeRef {
            named: Some(name.to_string()),
            ..TypeRef::default()
        }
    }

    /// An inlined type.
    pub fn inline(atom: Atom) -> TypeRef {
        TypeRef {
            inlined: Some(Box::new(atom)),
            ..TypeRef::default()
        }
    }

    /// Whether this is the empty reference (no type at all).
    pub fn is_empty(&self) -> bool {
        self.named.is_none()
            && self.relationship.is_none()
            && self.inlined.as_deref().is_none_or(Atom::is_empty)
    }
}

/// A type: at least one of scalar, list or map.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Atom {
    /// Scalar.
    pub scalar: Option<Scalar>,
    /// List.
    pub list: Option<List>,
    /// Map or struct.
    pub map: Option<Map>,
}

impl Atom {
    /// Whether no kind is set.
    pub fn is_empty(&self) -> bool {
        self.scalar.is_none() && self.list.is_none() && self.map.is_none()
    }
}

/// A list type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct List {
    /// The type of the items.
    pub element_type: TypeRef,
    /// Atomic or associative.
    pub element_relationship: ElementRelationship,
    /// Key fields of an associative list of maps.
    pub keys: Vec<String>,
}

/// A map or struct type.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Map {
    fields: Vec<StructField>,
    index: HashMap<String, usize>,
    /// The type of fields not listed (empty: such fields are not allowed).
    pub element_type: TypeRef,
    /// Granular (unset or separable) or atomic.
    pub element_relationship: ElementRelationship,
}

impl Map {
    /// A map with these named fields.
    pub fn new(
        fields: Vec<StructField>,
        element_type: TypeRef,
        element_relationship: ElementRelationship,
    ) -> Map {
        let index = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i))
            .collect();
        Map {
            fields,
            index,
            element_type,
            element_relationship,
        }
    }

    /// The named fields.
    pub fn fields(&self) -> &[StructField] {
        &self.fields
    }

    /// The named field `name`.
    pub fn find_field(&self, name: &str) -> Option<&StructField> {
        self.index.get(name).map(|&i| &self.fields[i])
    }

    /// The type of the field or element `name`: the named field's, else the element type.
    pub fn type_of(&self, name: &str) -> &TypeRef {
        self.find_field(name).map_or(&self.element_type, |f| &f.type_ref)
    }
}

/// A named field of a struct.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StructField {
    /// Its name.
    pub name: String,
    /// Its type.
    pub type_ref: TypeRef,
    /// Its OpenAPI default (used for the key fields of associative lists).
    pub default: Option<Value>,
}

/// Where the engine finds types, and how objects of those types are seen.
///
/// Built-in kinds use [`super::builtin::BuiltinTypes`] (upstream's OpenAPI v3 definitions,
/// objects seen as Go's typed structs encode them); custom resources can use
/// [`super::openapi::Types::for_custom_resource`] built from a CRD's structural schema.
pub trait TypeSource: Sync {
    /// The type named `name` (`io.k8s.api.apps.v1.Deployment`), if known.
    fn named(&self, name: &str) -> Option<&Atom>;

    /// How upstream's type converter sees `object`: a typed Go object is seen as
    /// `encoding/json` renders it (zero values of non-`omitempty` fields, empty structs,
    /// `null` for nil slices and pointers without `omitempty`). `None`: as it is (unstructured
    /// objects, which custom resources are).
    fn typed_view(&self, object: &Value) -> Option<Value> {
        let _ = object;
        None
    }

    /// The live object of a create (`Creater.New(kind)` converted to the request's version):
    /// for unstructured objects, just `apiVersion` and `kind`.
    fn new_object(&self, api_version: &str, kind: &str) -> Value {
        json!({"apiVersion": api_version, "kind": kind})
    }
}

fn common_atoms() -> &'static (Atom, Atom) {
    static ATOMS: OnceLock<(Atom, Atom)> = OnceLock::new();
    ATOMS.get_or_init(|| {
        let atomic = Atom {
            scalar: Some(Scalar::Untyped),
            list: Some(List {
                element_type: TypeRef::named(UNTYPED_ATOMIC),
                element_relationship: ElementRelationship::Atomic,
                keys: Vec::new(),
            }),
            map: Some(Map::new(
                Vec::new(),
                TypeRef::named(UNTYPED_ATOMIC),
                ElementRelationship::Atomic,
            )),
        };
        let deduced = Atom {
            scalar: Some(Scalar::Untyped),
            list: Some(List {
                element_type: TypeRef::named(UNTYPED_ATOMIC),
                element_relationship: ElementRelationship::Atomic,
                keys: Vec::new(),
            }),
            map: Some(Map::new(
                Vec::new(),
                TypeRef::named(UNTYPED_DEDUCED),
                ElementRelationship::Separable,
            )),
        };
        (atomic, deduced)
    })
}

/// The untyped atomic atom (`__untyped_atomic_`).
pub fn untyped_atomic() -> &'static Atom {
    &common_atoms().0
}

/// The untyped deduced atom (`__untyped_deduced_`).
pub fn untyped_deduced() -> &'static Atom {
    &common_atoms().1
}

fn empty_atom() -> &'static Atom {
    static EMPTY: Atom = Atom {
        scalar: None,
        list: None,
        map: None,
    };
    &EMPTY
}

/// A type reference resolved to its atom, with the relationship override applied.
#[derive(Clone, Copy, Debug)]
pub struct Resolved<'a> {
    /// The atom.
    pub atom: &'a Atom,
    relationship: Option<ElementRelationship>,
}

impl<'a> Resolved<'a> {
    /// The map part and its effective element relationship.
    pub fn map(&self) -> Option<(&'a Map, ElementRelationship)> {
        self.atom
            .map
            .as_ref()
            .map(|m| (m, self.relationship.unwrap_or(m.element_relationship)))
    }

    /// The list part and its effective element relationship (the override applies to the
    /// list only when there is no map part, as upstream's `Schema.Resolve`).
    pub fn list(&self) -> Option<(&'a List, ElementRelationship)> {
        self.atom.list.as_ref().map(|l| {
            let er = if self.atom.map.is_none() {
                self.relationship.unwrap_or(l.element_relationship)
            } else {
                l.element_relationship
            };
            (l, er)
        })
    }

    /// The scalar part.
    pub fn scalar(&self) -> Option<Scalar> {
        self.atom.scalar
    }
}

/// `Schema.Resolve`: `None` when the named type is unknown, or an override is set on a type
/// that is neither a map nor a list.
pub fn resolve<'a>(types: &'a dyn TypeSource, tr: &'a TypeRef) -> Option<Resolved<'a>> {
    let atom: &'a Atom = match (&tr.named, &tr.inlined) {
        (Some(name), _) => match name.as_str() {
            UNTYPED_ATOMIC => untyped_atomic(),
            UNTYPED_DEDUCED => untyped_deduced(),
            other => types.named(other)?,
        },
        (None, Some(atom)) => atom,
        (None, None) => empty_atom(),
    };
    if tr.relationship.is_some() && atom.map.is_none() && atom.list.is_none() {
        return None;
    }
    Some(Resolved {
        atom,
        relationship: tr.relationship,
    })
}

/// The name of a type reference in error messages (`named type: X` or `inlined`).
pub fn describe(tr: &TypeRef) -> String {
    match &tr.named {
        Some(name) => format!("named type: {name}"),
        None => "inlined".to_string(),
    }
}
