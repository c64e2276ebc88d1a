//! Cost of CEL rules, approximating cel-go's cost model as apiextensions-apiserver uses it:
//! a static estimate from the schema's size limits (`maxItems`, `maxLength`,
//! `maxProperties`, else what fits in a 3 MiB request) checked against the per-expression
//! and per-CRD limits when a CRD is written, and the same estimate over the sizes of the
//! actual object as the runtime cost of each evaluation, charged against the per-call limit
//! and the per-object budget.
//!
//! cel-rust does not meter evaluation, so the runtime cost is an upper bound computed before
//! evaluating: it does not see short-circuits.

use std::collections::{BTreeMap, HashMap};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use serde_json::Value as Json;

use super::value::{additional_schema, escape, items_schema};

/// Upstream's `MaxRequestSizeBytes`.
const MAX_REQUEST: u64 = 3 * 1024 * 1024;

/// The size facts of a value, from its schema or from the value itself.
#[derive(Clone, Debug, Default)]
pub(super) enum Shape {
    /// Nothing known: sized as the largest string.
    #[default]
    Unknown,
    /// A string, bytes or scalar of at most `len` characters.
    Scalar { len: u64 },
    /// A list of at most `len` elements.
    List { len: u64, elem: Box<Shape> },
    /// A map of at most `len` entries.
    Map { len: u64, value: Box<Shape> },
    /// An object with known fields (escaped names).
    Object { fields: BTreeMap<String, Shape> },
}

impl Shape {
    fn len(&self) -> u64 {
        match self {
            Shape::Unknown => MAX_REQUEST - 2,
            Shape::Scalar { len } | Shape::List { len, .. } | Shape::Map { len, .. } => *len,
            Shape::Object { fields } => fields.len() as u64,
        }
    }

    /// The shape of an element: list items, map keys (bounded by the longest Kubernetes name)
    /// or, for a string, its parts.
    fn element(&self) -> Shape {
        match self {
            Shape::List { elem, .. } => (**elem).clone(),
            Shape::Map { .. } | Shape::Object { .. } => Shape::Scalar { len: 253 },
            Shape::Scalar { len } => Shape::Scalar { len: *len },
            Shape::Unknown => Shape::Unknown,
        }
    }

    fn field(&self, name: &str) -> Shape {
        match self {
            Shape::Object { fields } => fields.get(name).cloned().unwrap_or_default(),
            Shape::Map { value, .. } => (**value).clone(),
            _ => Shape::Unknown,
        }
    }

    /// The larger of two shapes (for list elements of different sizes).
    fn merge(self, other: Shape) -> Shape {
        match (self, other) {
            (Shape::Scalar { len: a }, Shape::Scalar { len: b }) => Shape::Scalar { len: a.max(b) },
            (Shape::List { len: a, elem: x }, Shape::List { len: b, elem: y }) => Shape::List {
                len: a.max(b),
                elem: Box::new(x.merge(*y)),
            },
            (Shape::Map { len: a, value: x }, Shape::Map { len: b, value: y }) => Shape::Map {
                len: a.max(b),
                value: Box::new(x.merge(*y)),
            },
            (Shape::Object { fields: mut a }, Shape::Object { fields: b }) => {
                for (name, shape) in b {
                    let merged = match a.remove(&name) {
                        Some(existing) => existing.merge(shape),
                        None => shape,
                    };
                    a.insert(name, merged);
                }
                Shape::Object { fields: a }
            }
            (Shape::Unknown, other) | (other, Shape::Unknown) => match other {
                Shape::Scalar { .. } => Shape::Unknown,
                o => o,
            },
            (a, _) => a,
        }
    }
}

/// The smallest serialized size of a value of `schema` (upstream's `MinSerializedSize`).
fn min_size(schema: &JSONSchemaProps) -> u64 {
    if schema.x_kubernetes_int_or_string == Some(true) {
        return 1;
    }
    match schema.type_.as_deref() {
        Some("object") if schema.properties.is_some() => {
            let required = schema.required.as_deref().unwrap_or_default();
            let mut size = 2;
            for (name, prop) in schema.properties.iter().flatten() {
                if required.contains(name) && prop.default.is_none() {
                    size += name.len() as u64 + min_size(prop) + 4;
                }
            }
            size
        }
        Some("boolean") => 4,
        Some("integer") | Some("number") => 1,
        _ => 2,
    }
}

fn positive(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The upper bounds a schema sets, or what fits in a request (upstream's `SchemaDeclType`).
pub(super) fn schema_shape(schema: &JSONSchemaProps) -> Shape {
    if schema.x_kubernetes_int_or_string == Some(true) {
        return Shape::Scalar { len: MAX_REQUEST - 2 };
    }
    match schema.type_.as_deref() {
        Some("array") => match items_schema(schema) {
            Some(items) => Shape::List {
                len: schema
                    .max_items
                    .map_or((MAX_REQUEST - 2) / (min_size(items) + 1), positive),
                elem: Box::new(schema_shape(items)),
            },
            None => Shape::Unknown,
        },
        Some("object") => {
            if let Some(values) = additional_schema(schema) {
                return Shape::Map {
                    len: schema
                        .max_properties
                        .map_or((MAX_REQUEST - 2) / (min_size(values) + 6), positive),
                    value: Box::new(schema_shape(values)),
                };
            }
            let mut fields = BTreeMap::new();
            for (name, prop) in schema.properties.iter().flatten() {
                if let Some(escaped) = escape(name) {
                    fields.insert(escaped, schema_shape(prop));
                }
            }
            Shape::Object { fields }
        }
        Some("string") => {
            let len = match (schema.max_length, &schema.enum_) {
                (Some(max), _) => positive(max) * 4,
                (None, Some(values)) if !values.is_empty() => values
                    .iter()
                    .filter_map(|v| v.0.as_str().map(|s| s.len() as u64))
                    .max()
                    .unwrap_or(0),
                _ => MAX_REQUEST - 2,
            };
            Shape::Scalar { len }
        }
        Some(_) => Shape::Scalar { len: 1 },
        None => Shape::Unknown,
    }
}

/// How many times a rule at a node of `schema` may run for one object, when its ancestors do
/// not bound it (upstream's `maxCardinality`).
pub(super) fn unbounded_cardinality(schema: &JSONSchemaProps) -> u64 {
    MAX_REQUEST / (min_size(schema) + 1)
}

/// The sizes of an actual value.
pub(super) fn value_shape(value: &Json) -> Shape {
    match value {
        Json::String(s) => Shape::Scalar {
            len: s.chars().count() as u64,
        },
        Json::Array(items) => Shape::List {
            len: items.len() as u64,
            elem: Box::new(
                items
                    .iter()
                    .map(value_shape)
                    .reduce(Shape::merge)
                    .unwrap_or(Shape::Scalar { len: 0 }),
            ),
        },
        Json::Object(fields) => Shape::Object {
            fields: fields
                .iter()
                .filter_map(|(k, v)| escape(k).map(|e| (e, value_shape(v))))
                .collect(),
        },
        _ => Shape::Scalar { len: 1 },
    }
}

/// The map-shaped view of an object (for `additionalProperties` objects, whose keys are not
/// escaped): keeps the object form, which `field` reads the same way.
fn tenth(len: u64) -> u64 {
    len.div_ceil(10)
}

/// The estimated cost of `expr` with `vars` bound to their shapes.
pub(super) fn estimate(expr: &IdedExpr, vars: &HashMap<String, Shape>) -> u64 {
    let mut scope = vars.clone();
    walk(expr, &mut scope).0
}

fn walk(expr: &IdedExpr, vars: &mut HashMap<String, Shape>) -> (u64, Shape) {
    match &expr.expr {
        Expr::Unspecified => (0, Shape::Unknown),
        Expr::Literal(literal) => {
            let len = match literal {
                cel::common::ast::LiteralValue::String(text) => text.chars().count() as u64,
                _ => 1,
            };
            (0, Shape::Scalar { len })
        }
        Expr::Ident(name) => (1, vars.get(name).cloned().unwrap_or_default()),
        Expr::Select(select) => {
            let (cost, shape) = walk(&select.operand, vars);
            (cost.saturating_add(1), shape.field(&select.field))
        }
        Expr::List(list) => {
            let mut cost: u64 = 10;
            let mut elem: Option<Shape> = None;
            for e in &list.elements {
                let (c, s) = walk(e, vars);
                cost = cost.saturating_add(c);
                elem = Some(match elem {
                    Some(prev) => prev.merge(s),
                    None => s,
                });
            }
            let len = list.elements.len() as u64;
            (
                cost,
                Shape::List {
                    len,
                    elem: Box::new(elem.unwrap_or_default()),
                },
            )
        }
        Expr::Map(map) => {
            let mut cost: u64 = 30;
            for entry in &map.entries {
                match &entry.expr {
                    EntryExpr::MapEntry(e) => {
                        cost = cost
                            .saturating_add(walk(&e.key, vars).0)
                            .saturating_add(walk(&e.value, vars).0);
                    }
                    EntryExpr::StructField(f) => cost = cost.saturating_add(walk(&f.value, vars).0),
                }
            }
            (cost, Shape::Unknown)
        }
        Expr::Struct(s) => {
            let mut cost: u64 = 40;
            for entry in &s.entries {
                if let EntryExpr::StructField(f) = &entry.expr {
                    cost = cost.saturating_add(walk(&f.value, vars).0);
                }
            }
            (cost, Shape::Unknown)
        }
        Expr::Comprehension(c) => {
            let (range_cost, range) = walk(&c.iter_range, vars);
            let (init_cost, _) = walk(&c.accu_init, vars);
            let saved: Vec<(String, Option<Shape>)> =
                [Some(&c.iter_var), c.iter_var2.as_ref(), Some(&c.accu_var)]
                    .into_iter()
                    .flatten()
                    .map(|n| (n.clone(), vars.get(n).cloned()))
                    .collect();
            let (first, second) = match (&range, &c.iter_var2) {
                (Shape::List { elem, .. }, None) => ((**elem).clone(), Shape::Unknown),
                (Shape::List { elem, .. }, Some(_)) => (Shape::Scalar { len: 1 }, (**elem).clone()),
                (other, _) => (other.element(), other.field("")),
            };
            vars.insert(c.iter_var.clone(), first);
            if let Some(v2) = &c.iter_var2 {
                vars.insert(v2.clone(), second);
            }
            // The accumulator starts small; its growth is charged by the step.
            vars.insert(
                c.accu_var.clone(),
                Shape::List {
                    len: 0,
                    elem: Box::new(Shape::Unknown),
                },
            );
            let (cond_cost, _) = walk(&c.loop_cond, vars);
            let (step_cost, step_shape) = walk(&c.loop_step, vars);
            let (result_cost, _) = walk(&c.result, vars);
            for (name, previous) in saved {
                match previous {
                    Some(shape) => vars.insert(name, shape),
                    None => vars.remove(&name),
                };
            }
            let per_item = cond_cost.saturating_add(step_cost);
            let cost = range_cost
                .saturating_add(init_cost)
                .saturating_add(range.len().saturating_mul(per_item))
                .saturating_add(result_cost);
            let shape = match step_shape {
                Shape::List { elem, .. } => Shape::List {
                    len: range.len(),
                    elem,
                },
                other => other,
            };
            (cost, shape)
        }
        Expr::Call(call) => {
            let mut cost: u64 = 0;
            let target = call.target.as_ref().map(|t| {
                let (c, s) = walk(t, vars);
                cost = cost.saturating_add(c);
                s
            });
            let mut args = Vec::with_capacity(call.args.len());
            let name = call.func_name.as_str();
            if name == "_?_:_" && call.args.len() == 3 {
                let (c0, _) = walk(&call.args[0], vars);
                let (c1, s1) = walk(&call.args[1], vars);
                let (c2, s2) = walk(&call.args[2], vars);
                return (c0.saturating_add(c1.max(c2)), s1.merge(s2));
            }
            for a in &call.args {
                let (c, s) = walk(a, vars);
                cost = cost.saturating_add(c);
                args.push(s);
            }
            let subject = target.or_else(|| args.first().cloned()).unwrap_or_default();
            let (own, shape) = call_cost(name, &subject, &args);
            (cost.saturating_add(own), shape)
        }
    }
}

fn call_cost(name: &str, subject: &Shape, args: &[Shape]) -> (u64, Shape) {
    let len = subject.len();
    match name {
        "_&&_"
        | "_||_"
        | "!_"
        | "@not_strictly_false"
        | "has"
        | "size"
        | "_<_"
        | "_<=_"
        | "_>_"
        | "_>=_"
        | "-_"
        | "_-_"
        | "_*_"
        | "_/_"
        | "_%_"
        | "int"
        | "uint"
        | "double"
        | "bool"
        | "type"
        | "dyn" => (1, Shape::Scalar { len: 1 }),
        "_[_]" | "_[?_]" => (1, subject.element().merge(subject.field(""))),
        "_==_" | "_!=_" => (
            1 + tenth(len.min(args.get(1).map_or(len, Shape::len))),
            Shape::Scalar { len: 1 },
        ),
        "_+_" => {
            let other = args.get(1).map_or(0, Shape::len);
            let shape = match subject {
                Shape::List { len, elem } => Shape::List {
                    len: len.saturating_add(other),
                    elem: elem.clone(),
                },
                _ => Shape::Scalar {
                    len: len.saturating_add(other),
                },
            };
            (1 + tenth(len.saturating_add(other)), shape)
        }
        // At most `len` parts, together no longer than the string: sized as if each were one
        // character, so that iterating over them costs about as much as over the string.
        "split" => (
            1 + tenth(len),
            Shape::List {
                len,
                elem: Box::new(Shape::Scalar { len: 1 }),
            },
        ),
        "contains" | "startsWith" | "endsWith" | "lowerAscii" | "upperAscii" | "trim" | "reverse"
        | "charAt" | "indexOf" | "lastIndexOf" | "substring" | "replace" | "join" | "string" | "isSorted"
        | "sum" | "min" | "max" | "url" | "isURL" | "format" | "quote" => (1 + tenth(len), subject.clone()),
        "_in_" => (1 + args.get(1).map_or(0, Shape::len), Shape::Scalar { len: 1 }),
        "matches" | "find" | "findAll" => {
            let pattern = args.last().map_or(1, Shape::len).max(1);
            (
                1 + tenth(len).saturating_mul(pattern.div_ceil(4).max(1)),
                subject.clone(),
            )
        }
        "sets.contains" | "sets.equivalent" | "sets.intersects" => {
            let other = args.get(1).map_or(0, Shape::len);
            (1 + len.saturating_mul(other), Shape::Scalar { len: 1 })
        }
        "sort" | "distinct" | "flatten" | "slice" => (1 + len.saturating_mul(2), subject.clone()),
        // Other functions (`value()`, `orValue()`, conversions...) return at most their
        // subject.
        _ => (1, subject.clone()),
    }
}
