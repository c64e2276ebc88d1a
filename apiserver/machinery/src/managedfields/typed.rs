//! Schema-driven operations on values (sigs.k8s.io/structured-merge-diff/v6/typed):
//! validation, the set of fields a value sets, comparison of two values, merge of an applied
//! configuration into a live object, removal of fields, and reconciliation of a field set
//! with a changed schema.
//!
//! Each operation walks a value and its type together. Where the type allows several kinds
//! (untyped values), the value decides ("deduction"). Atomic lists and maps, scalars, and
//! lists and maps empty on both sides, are leaves. Associative list items are identified by
//! their key fields (missing keys take the key field's default) or, in sets, by their value;
//! items of atomic lists by position.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map as JsonMap, Value};

use super::fieldpath::{Path, PathElement, Set};
use super::schema::{
    Atom, ElementRelationship, List, Map, Resolved, Scalar, TypeRef, TypeSource, UNTYPED_DEDUCED, describe,
    resolve,
};
use super::value;

/// One validation error: where (a path string such as `.spec.containers[name="a"]`) and
/// what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// The path, empty at the root.
    pub path: String,
    /// The message.
    pub message: String,
}

/// Validation errors, displayed as upstream's `ValidationErrors`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.0.as_slice() {
            return write!(f, "{only}");
        }
        write!(f, "errors:")?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl ValidationErrors {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn push(&mut self, path: &[PathElement], message: String) {
        self.0.push(ValidationError {
            path: Path(path.to_vec()).to_string(),
            message,
        });
    }
}

/// Which part of an atom applies to a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deduced {
    Scalar,
    List,
    Map,
    Full,
}

fn deduce(atom: &Atom, v: Option<&Value>) -> Deduced {
    match v {
        Some(v) if value::is_scalar(v) && atom.scalar.is_some() => Deduced::Scalar,
        Some(Value::Array(_)) if atom.list.is_some() => Deduced::List,
        Some(Value::Object(_)) if atom.map.is_some() => Deduced::Map,
        _ => Deduced::Full,
    }
}

/// The handler an atom (as deduced) dispatches to: maps first, then scalars, then lists.
enum Handler<'a> {
    Scalar(Scalar),
    List(&'a List, ElementRelationship),
    Map(&'a Map, ElementRelationship),
}

fn pick<'a>(resolved: &Resolved<'a>, deduced: Deduced) -> Option<Handler<'a>> {
    let map = || resolved.map().map(|(m, er)| Handler::Map(m, er));
    let list = || resolved.list().map(|(l, er)| Handler::List(l, er));
    let scalar = || resolved.scalar().map(Handler::Scalar);
    match deduced {
        Deduced::Scalar => scalar(),
        Deduced::List => list(),
        Deduced::Map => map(),
        Deduced::Full => map().or_else(scalar).or_else(list),
    }
}

fn no_type_error(tr: &TypeRef) -> String {
    let name = tr.named.clone().unwrap_or_else(|| "inlined type".to_string());
    format!("schema error: no type found matching: {name}")
}

fn invalid_atom_error(tr: &TypeRef) -> String {
    format!("schema error: invalid atom: {}", describe(tr))
}

/// Go's `%v` of a value (`&{...}` around the unstructured value).
fn go_v(v: &Value) -> String {
    format!("&{{{}}}", go_v_inner(v))
}

fn go_v_inner(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => i.to_string(),
            _ => value::go_format_float_v(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(go_v_inner).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => format!(
            "map[{}]",
            map.iter()
                .map(|(k, v)| format!("{k}:{}", go_v_inner(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Go's `%#v` of a value (`&value.valueUnstructured{Value:...}`).
fn go_sharp_v(v: &Value) -> String {
    format!("&value.valueUnstructured{{Value:{}}}", go_sharp_v_inner(v))
}

fn go_sharp_v_inner(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".to_string(),
        Value::String(s) => value::go_quote(s),
        Value::Array(items) => format!(
            "[]interface {{}}{{{}}}",
            items.iter().map(go_sharp_v_inner).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "map[string]interface {{}}{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}:{}", value::go_quote(k), go_sharp_v_inner(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => go_v_inner(other),
    }
}

/// Go's `%T` of an unstructured value.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// `validateScalar`.
fn validate_scalar(t: Scalar, v: Option<&Value>, prefix: &str) -> Option<String> {
    let v = v?;
    if v.is_null() {
        return None;
    }
    match t {
        Scalar::Numeric if !v.is_number() => Some(format!(
            "{prefix}expected numeric (int or float), got {}",
            go_type(v)
        )),
        Scalar::String if !v.is_string() => Some(format!("{prefix}expected string, got {}", go_sharp_v(v))),
        Scalar::Boolean if !v.is_boolean() => Some(format!("{prefix}expected boolean, got {}", go_v(v))),
        Scalar::Untyped if !value::is_scalar(v) => {
            Some(format!("{prefix}expected any scalar, got {}", go_v(v)))
        }
        _ => None,
    }
}

/// Go's `%q` of a list of strings.
fn go_quote_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| value::go_quote(s))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// `listItemToPathElement`: how an item of an associative list is identified.
pub fn list_item_element(
    types: &dyn TypeSource,
    list: &List,
    relationship: ElementRelationship,
    child: &Value,
) -> Result<PathElement, String> {
    if relationship != ElementRelationship::Associative {
        return Err("invalid indexing of non-associative list".to_string());
    }
    if list.keys.is_empty() {
        return match child {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".to_string())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".to_string()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".to_string())
            }
            scalar => Ok(PathElement::Value(scalar.clone())),
        };
    }
    let map = match child {
        Value::Null => return Err("associative list with keys may not have a null element".to_string()),
        Value::Object(map) => map,
        _ => return Err("associative list with keys may not have non-map elements".to_string()),
    };
    let mut fields = Vec::new();
    for key in &list.keys {
        if let Some(v) = map.get(key) {
            fields.push((key.clone(), v.clone()));
            continue;
        }
        let default = match resolve(types, &list.element_type) {
            None => {
                return Err(format!(
                    "couldn't find default value for {key}: invalid elementType for list"
                ));
            }
            Some(r) => match r.atom.map.as_ref() {
                None => {
                    return Err(format!(
                        "couldn't find default value for {key}: associative list may not have non-map types"
                    ));
                }
                Some(m) => m.find_field(key).and_then(|f| f.default.clone()),
            },
        };
        if let Some(default) = default
            && !default.is_null()
        {
            fields.push((key.clone(), default));
        }
    }
    if fields.is_empty() {
        return Err(format!(
            "associative list with keys has an element that omits all key fields {} (and doesn't have default values for any key fields)",
            go_quote_list(&list.keys)
        ));
    }
    Ok(PathElement::key(fields))
}

/// Validates `v` against `tr` (`TypedValue.Validate`); duplicates in associative lists are
/// errors unless `allow_duplicates`.
pub fn validate(types: &dyn TypeSource, tr: &TypeRef, v: &Value, allow_duplicates: bool) -> ValidationErrors {
    let mut errs = ValidationErrors::default();
    validate_node(types, tr, v, allow_duplicates, &mut Vec::new(), &mut errs);
    errs
}

fn validate_node(
    types: &dyn TypeSource,
    tr: &TypeRef,
    v: &Value,
    allow_duplicates: bool,
    path: &mut Vec<PathElement>,
    errs: &mut ValidationErrors,
) {
    let Some(resolved) = resolve(types, tr) else {
        errs.push(path, no_type_error(tr));
        return;
    };
    match pick(&resolved, deduce(resolved.atom, Some(v))) {
        None => errs.push(path, invalid_atom_error(tr)),
        Some(Handler::Scalar(t)) => {
            if let Some(e) = validate_scalar(t, Some(v), "") {
                errs.push(path, e);
            }
        }
        Some(Handler::List(list, er)) => {
            let items = match v {
                Value::Null => return,
                Value::Array(items) => items,
                other => return errs.push(path, format!("expected list, got {}", go_v(other))),
            };
            let mut observed: Vec<PathElement> = Vec::new();
            for (i, child) in items.iter().enumerate() {
                let pe = if er != ElementRelationship::Associative {
                    PathElement::Index(i as i64)
                } else {
                    match list_item_element(types, list, er, child) {
                        Ok(pe) => pe,
                        Err(e) => return errs.push(path, format!("element {i}: {e}")),
                    }
                };
                match observed.binary_search(&pe) {
                    Ok(_) => {
                        if !allow_duplicates {
                            errs.push(path, format!("duplicate entries for key {pe}"));
                        }
                    }
                    Err(at) => observed.insert(at, pe.clone()),
                }
                path.push(pe);
                validate_node(types, &list.element_type, child, allow_duplicates, path, errs);
                path.pop();
            }
        }
        Some(Handler::Map(map, _)) => {
            let fields = match v {
                Value::Null => return,
                Value::Object(fields) => fields,
                other => return errs.push(path, format!("expected map, got {}", go_v(other))),
            };
            for (key, child) in fields {
                let child_tr = match map.find_field(key) {
                    Some(f) => &f.type_ref,
                    None if map.element_type.is_empty() => {
                        path.push(PathElement::field(key));
                        errs.push(path, "field not declared in schema".to_string());
                        path.pop();
                        return;
                    }
                    None => &map.element_type,
                };
                path.push(PathElement::field(key));
                validate_node(types, child_tr, child, allow_duplicates, path, errs);
                path.pop();
            }
        }
    }
}

/// The fields `v` sets (`TypedValue.ToFieldSet`).
pub fn to_field_set(types: &dyn TypeSource, tr: &TypeRef, v: &Value) -> Result<Set, ValidationErrors> {
    let mut set = Set::new();
    let mut errs = ValidationErrors::default();
    field_set_node(types, tr, v, &mut Vec::new(), &mut set, &mut errs);
    if errs.is_empty() { Ok(set) } else { Err(errs) }
}

fn field_set_node(
    types: &dyn TypeSource,
    tr: &TypeRef,
    v: &Value,
    path: &mut Vec<PathElement>,
    set: &mut Set,
    errs: &mut ValidationErrors,
) {
    let Some(resolved) = resolve(types, tr) else {
        return errs.push(path, no_type_error(tr));
    };
    match pick(&resolved, deduce(resolved.atom, Some(v))) {
        None => errs.push(path, invalid_atom_error(tr)),
        Some(Handler::Scalar(_)) => set.insert(path),
        Some(Handler::List(list, er)) => {
            if er == ElementRelationship::Atomic {
                return set.insert(path);
            }
            let Value::Array(items) = v else {
                return;
            };
            let pes: Vec<Option<PathElement>> = items
                .iter()
                .map(|c| list_item_element(types, list, er, c).ok())
                .collect();
            let mut seen: Vec<&PathElement> = Vec::new();
            let mut duplicates: Vec<&PathElement> = Vec::new();
            for pe in pes.iter().flatten() {
                match seen.binary_search(&pe) {
                    Ok(_) => {
                        if let Err(at) = duplicates.binary_search(&pe) {
                            path.push(pe.clone());
                            set.insert(path);
                            path.pop();
                            duplicates.insert(at, pe);
                        }
                    }
                    Err(at) => seen.insert(at, pe),
                }
            }
            for (child, pe) in items.iter().zip(pes.iter()) {
                let Some(pe) = pe else {
                    continue;
                };
                if duplicates.binary_search(&pe).is_ok() {
                    continue;
                }
                path.push(pe.clone());
                field_set_node(types, &list.element_type, child, path, set, errs);
                set.insert(path);
                path.pop();
            }
        }
        Some(Handler::Map(map, er)) => {
            if er == ElementRelationship::Atomic {
                return set.insert(path);
            }
            let Value::Object(fields) = v else {
                return;
            };
            for (key, child) in fields {
                path.push(PathElement::field(key));
                field_set_node(types, map.type_of(key), child, path, set, errs);
                let empty = match child {
                    Value::Null => true,
                    Value::Object(m) => m.is_empty(),
                    _ => false,
                };
                if empty || map.find_field(key).is_none() {
                    set.insert(path);
                }
                path.pop();
            }
        }
    }
}

/// What changed from one value to another (`typed.Comparison`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// Fields present before only.
    pub removed: Set,
    /// Leaves present on both sides with different values.
    pub modified: Set,
    /// Fields present after only.
    pub added: Set,
}

impl Comparison {
    /// Applies a reset-fields filter (`Comparison.FilterFields` with an exclude filter).
    pub fn exclude(&mut self, ignored: &Set) {
        self.removed = self.removed.recursive_difference(ignored);
        self.modified = self.modified.recursive_difference(ignored);
        self.added = self.added.recursive_difference(ignored);
    }
}

/// Compares `lhs` to `rhs` (`TypedValue.Compare`).
pub fn compare(
    types: &dyn TypeSource,
    tr: &TypeRef,
    lhs: &Value,
    rhs: &Value,
) -> Result<Comparison, ValidationErrors> {
    let mut walker = Comparer {
        types,
        comparison: Comparison::default(),
        errs: ValidationErrors::default(),
    };
    walker.node(tr, Some(lhs), Some(rhs), &mut Vec::new());
    if walker.errs.is_empty() {
        Ok(walker.comparison)
    } else {
        Err(walker.errs)
    }
}

struct Comparer<'a> {
    types: &'a dyn TypeSource,
    comparison: Comparison,
    errs: ValidationErrors,
}

impl Comparer<'_> {
    fn node(&mut self, tr: &TypeRef, lhs: Option<&Value>, rhs: Option<&Value>, path: &mut Vec<PathElement>) {
        if lhs.is_none() && rhs.is_none() {
            return self
                .errs
                .push(path, "at least one of lhs and rhs must be provided".to_string());
        }
        let Some(resolved) = resolve(self.types, tr) else {
            return self.errs.push(path, no_type_error(tr));
        };
        let alhs = deduce(resolved.atom, lhs);
        let arhs = deduce(resolved.atom, rhs);
        let mut in_leaf = false;
        if rhs.is_none() {
            self.handle(&resolved, alhs, tr, lhs, rhs, path, &mut in_leaf);
        } else if lhs.is_none() || alhs == arhs {
            self.handle(&resolved, arhs, tr, lhs, rhs, path, &mut in_leaf);
        } else {
            let mut other_leaf = false;
            self.handle(&resolved, alhs, tr, lhs, rhs, path, &mut other_leaf);
            self.handle(&resolved, arhs, tr, lhs, rhs, path, &mut in_leaf);
        }
        if !in_leaf {
            if lhs.is_none() {
                self.comparison.added.insert(path);
            } else if rhs.is_none() {
                self.comparison.removed.insert(path);
            }
        }
    }

    fn leaf(&mut self, lhs: Option<&Value>, rhs: Option<&Value>, path: &[PathElement], in_leaf: &mut bool) {
        if *in_leaf {
            return;
        }
        *in_leaf = true;
        match (lhs, rhs) {
            (None, _) => self.comparison.added.insert(path),
            (_, None) => self.comparison.removed.insert(path),
            (Some(l), Some(r)) => {
                if !value::equals(r, l) {
                    self.comparison.modified.insert(path);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle(
        &mut self,
        resolved: &Resolved<'_>,
        deduced: Deduced,
        tr: &TypeRef,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        path: &mut Vec<PathElement>,
        in_leaf: &mut bool,
    ) {
        match pick(resolved, deduced) {
            None => self.errs.push(path, invalid_atom_error(tr)),
            Some(Handler::Scalar(t)) => {
                let lerr = validate_scalar(t, lhs, "lhs: ");
                let rerr = validate_scalar(t, rhs, "rhs: ");
                if let (Some(l), Some(r)) = (lerr, rerr) {
                    self.errs.push(path, l);
                    self.errs.push(path, r);
                    return;
                }
                self.leaf(lhs, rhs, path, in_leaf);
            }
            Some(Handler::List(list, er)) => {
                let l = lhs.and_then(Value::as_array);
                let r = rhs.and_then(Value::as_array);
                let empty = l.is_none_or(Vec::is_empty) && r.is_none_or(Vec::is_empty);
                if er == ElementRelationship::Atomic || empty {
                    return self.leaf(lhs, rhs, path, in_leaf);
                }
                if l.is_none() && r.is_none() {
                    return;
                }
                self.list_items(list, er, l, r, path);
            }
            Some(Handler::Map(map, er)) => {
                let l = lhs.and_then(Value::as_object);
                let r = rhs.and_then(Value::as_object);
                let empty = l.is_none_or(JsonMap::is_empty) && r.is_none_or(JsonMap::is_empty);
                if er == ElementRelationship::Atomic || empty {
                    return self.leaf(lhs, rhs, path, in_leaf);
                }
                if l.is_none() && r.is_none() {
                    return;
                }
                for (key, lv, rv) in zip_maps(l, r) {
                    path.push(PathElement::field(key));
                    self.node(map.type_of(key), lv, rv, path);
                    path.pop();
                }
            }
        }
    }

    fn list_items(
        &mut self,
        list: &List,
        er: ElementRelationship,
        lhs: Option<&Vec<Value>>,
        rhs: Option<&Vec<Value>>,
        path: &mut Vec<PathElement>,
    ) {
        let mut all: Vec<PathElement> = Vec::new();
        let mut lvalues: BTreeMap<PathElement, Vec<&Value>> = BTreeMap::new();
        for (i, child) in lhs.into_iter().flatten().enumerate() {
            match list_item_element(self.types, list, er, child) {
                Err(e) => self.errs.push(path, format!("element {i}: {e}")),
                Ok(pe) => {
                    let entry = lvalues.entry(pe.clone()).or_default();
                    if entry.is_empty() {
                        all.push(pe);
                    }
                    entry.push(child);
                }
            }
        }
        let mut rvalues: BTreeMap<PathElement, Vec<&Value>> = BTreeMap::new();
        for (i, child) in rhs.into_iter().flatten().enumerate() {
            match list_item_element(self.types, list, er, child) {
                Err(e) => self.errs.push(path, format!("element {i}: {e}")),
                Ok(pe) => {
                    let entry = rvalues.entry(pe.clone()).or_default();
                    if entry.is_empty() && !lvalues.contains_key(&pe) {
                        all.push(pe);
                    }
                    entry.push(child);
                }
            }
        }
        for pe in all {
            let l = lvalues.get(&pe).map(Vec::as_slice).unwrap_or_default();
            let r = rvalues.get(&pe).map(Vec::as_slice).unwrap_or_default();
            path.push(pe);
            match (l.len(), r.len()) {
                (0, 0) => {
                    path.pop();
                    return;
                }
                (a, b) if a <= 1 && b <= 1 => {
                    self.node(&list.element_type, l.first().copied(), r.first().copied(), path);
                }
                (a, b) if a >= 2 && b >= 2 => {
                    let same = a == b && l.iter().zip(r).all(|(x, y)| value::equals(x, y));
                    if !same {
                        self.comparison.modified.insert(path);
                    }
                }
                (a, _) if a >= 2 => {
                    if let Some(first) = r.first() {
                        self.node(&list.element_type, None, Some(first), path);
                    }
                    self.comparison.removed.insert(path);
                }
                _ => {
                    if let Some(first) = l.first() {
                        self.node(&list.element_type, Some(first), None, path);
                    }
                    self.comparison.added.insert(path);
                }
            }
            path.pop();
        }
    }
}

/// The keys of two maps with the value on each side.
fn zip_maps<'v>(
    l: Option<&'v JsonMap<String, Value>>,
    r: Option<&'v JsonMap<String, Value>>,
) -> Vec<(&'v String, Option<&'v Value>, Option<&'v Value>)> {
    let mut out = Vec::new();
    if let Some(l) = l {
        for (k, v) in l {
            out.push((k, Some(v), r.and_then(|r| r.get(k))));
        }
    }
    if let Some(r) = r {
        for (k, v) in r {
            if l.is_none_or(|l| !l.contains_key(k)) {
                out.push((k, None, Some(v)));
            }
        }
    }
    out
}

/// Merges `rhs` (an applied configuration) into `lhs` (the live object): `lhs.Merge(rhs)`,
/// keeping the right-hand side's leaves. Associative lists keep the live order, with the
/// applied items in their applied order.
pub fn merge(
    types: &dyn TypeSource,
    tr: &TypeRef,
    lhs: &Value,
    rhs: &Value,
) -> Result<Value, ValidationErrors> {
    let mut merger = Merger {
        types,
        errs: ValidationErrors::default(),
    };
    let out = merger.node(tr, Some(lhs), Some(rhs), &mut Vec::new());
    if merger.errs.is_empty() {
        Ok(out.unwrap_or(Value::Null))
    } else {
        Err(merger.errs)
    }
}

struct Merger<'a> {
    types: &'a dyn TypeSource,
    errs: ValidationErrors,
}

/// The state of one node of the merge: whether it was a leaf, and its output.
#[derive(Default)]
struct MergeState {
    in_leaf: bool,
    out: Option<Value>,
}

impl Merger<'_> {
    fn node(
        &mut self,
        tr: &TypeRef,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        path: &mut Vec<PathElement>,
    ) -> Option<Value> {
        if lhs.is_none() && rhs.is_none() {
            self.errs
                .push(path, "at least one of lhs and rhs must be provided".to_string());
            return None;
        }
        let Some(resolved) = resolve(self.types, tr) else {
            self.errs.push(path, no_type_error(tr));
            return None;
        };
        let alhs = deduce(resolved.atom, lhs);
        let arhs = deduce(resolved.atom, rhs);
        let mut state = MergeState::default();
        if rhs.is_none() {
            self.handle(&resolved, alhs, tr, lhs, rhs, path, &mut state);
        } else if lhs.is_none() || alhs == arhs {
            self.handle(&resolved, arhs, tr, lhs, rhs, path, &mut state);
        } else {
            let mut other = MergeState::default();
            self.handle(&resolved, alhs, tr, lhs, rhs, path, &mut other);
            self.handle(&resolved, arhs, tr, lhs, rhs, path, &mut state);
        }
        state.out
    }

    fn leaf(lhs: Option<&Value>, rhs: Option<&Value>, state: &mut MergeState) {
        if state.in_leaf {
            return;
        }
        state.in_leaf = true;
        state.out = rhs.or(lhs).cloned();
    }

    #[allow(clippy::too_many_arguments)]
    fn handle(
        &mut self,
        resolved: &Resolved<'_>,
        deduced: Deduced,
        tr: &TypeRef,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        path: &mut Vec<PathElement>,
        state: &mut MergeState,
    ) {
        match pick(resolved, deduced) {
            None => self.errs.push(path, invalid_atom_error(tr)),
            Some(Handler::Scalar(t)) => {
                let lerr = validate_scalar(t, lhs, "lhs: ");
                let rerr = validate_scalar(t, rhs, "rhs: ");
                if let (Some(l), Some(r)) = (lerr, rerr) {
                    self.errs.push(path, l);
                    self.errs.push(path, r);
                    return;
                }
                Self::leaf(lhs, rhs, state);
            }
            Some(Handler::List(list, er)) => {
                let l = lhs.and_then(Value::as_array);
                let r = rhs.and_then(Value::as_array);
                let empty = l.is_none_or(Vec::is_empty) && r.is_none_or(Vec::is_empty);
                if er == ElementRelationship::Atomic || empty {
                    return Self::leaf(lhs, rhs, state);
                }
                if l.is_none() && r.is_none() {
                    return;
                }
                if let Some(out) = self.list_items(list, er, l, r, path) {
                    state.out = Some(out);
                }
            }
            Some(Handler::Map(map, er)) => {
                let l = lhs.and_then(Value::as_object);
                let r = rhs.and_then(Value::as_object);
                let empty = l.is_none_or(JsonMap::is_empty) && r.is_none_or(JsonMap::is_empty);
                if er == ElementRelationship::Atomic || empty {
                    return Self::leaf(lhs, rhs, state);
                }
                if l.is_none() && r.is_none() {
                    return;
                }
                let mut out = JsonMap::new();
                for (key, lv, rv) in zip_maps(l, r) {
                    path.push(PathElement::field(key));
                    if let Some(v) = self.node(map.type_of(key), lv, rv, path) {
                        out.insert(key.clone(), v);
                    }
                    path.pop();
                }
                if !out.is_empty() {
                    state.out = Some(Value::Object(out));
                }
            }
        }
    }

    /// `indexListPathElements`: the elements in order, and the value of each (`null` for a
    /// duplicated element when duplicates are allowed).
    fn index(
        &mut self,
        list: &List,
        er: ElementRelationship,
        items: Option<&Vec<Value>>,
        allow_duplicates: bool,
        path: &[PathElement],
    ) -> (Vec<PathElement>, BTreeMap<PathElement, Value>, bool) {
        let mut pes = Vec::new();
        let mut observed: BTreeMap<PathElement, Value> = BTreeMap::new();
        let mut failed = false;
        for (i, child) in items.into_iter().flatten().enumerate() {
            let pe = match list_item_element(self.types, list, er, child) {
                Ok(pe) => pe,
                Err(e) => {
                    self.errs.push(path, format!("element {i}: {e}"));
                    failed = true;
                    continue;
                }
            };
            if observed.contains_key(&pe) {
                if !allow_duplicates {
                    self.errs.push(path, format!("duplicate entries for key {pe}"));
                    failed = true;
                    continue;
                }
                observed.insert(pe.clone(), Value::Null);
            } else {
                observed.insert(pe.clone(), child.clone());
            }
            pes.push(pe);
        }
        (pes, observed, failed)
    }

    fn list_items(
        &mut self,
        list: &List,
        er: ElementRelationship,
        lhs: Option<&Vec<Value>>,
        rhs: Option<&Vec<Value>>,
        path: &mut Vec<PathElement>,
    ) -> Option<Value> {
        let (rhs_pes, observed_rhs, rfailed) = self.index(list, er, rhs, false, path);
        let (lhs_pes, observed_lhs, lfailed) = self.index(list, er, lhs, true, path);
        if rfailed || lfailed {
            return None;
        }
        let mut shared: std::collections::VecDeque<&PathElement> = rhs_pes
            .iter()
            .filter(|pe| observed_lhs.contains_key(pe))
            .collect();
        let mut next_shared = shared.pop_front();
        let mut merged_rhs: Vec<PathElement> = Vec::new();
        let mut out = Vec::new();
        let (llen, rlen) = (lhs_pes.len(), rhs_pes.len());
        let (mut li, mut ri) = (0, 0);
        // The errors of list items are dropped, as upstream drops them.
        let mut item =
            |me: &mut Self, pe: &PathElement, l: Option<&Value>, r: Option<&Value>, out: &mut Vec<Value>| {
                let saved = me.errs.0.len();
                path.push(pe.clone());
                if let Some(v) = me.node(&list.element_type, l, r, path) {
                    out.push(v);
                }
                path.pop();
                me.errs.0.truncate(saved);
            };
        let mark = |merged: &mut Vec<PathElement>, pe: &PathElement| {
            if let Err(at) = merged.binary_search(pe) {
                merged.insert(at, pe.clone());
            }
        };
        while li < llen || ri < rlen {
            if li < llen && ri < rlen {
                let pe = &lhs_pes[li];
                if *pe == rhs_pes[ri] {
                    mark(&mut merged_rhs, pe);
                    item(self, pe, observed_lhs.get(pe), observed_rhs.get(pe), &mut out);
                    li += 1;
                    ri += 1;
                    next_shared = shared.pop_front();
                    continue;
                }
                if observed_rhs.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                    li += 1;
                    continue;
                }
            }
            if li < llen {
                let pe = &lhs_pes[li];
                if !observed_rhs.contains_key(pe) {
                    let child = lhs.and_then(|l| l.get(li));
                    item(self, pe, child, None, &mut out);
                    li += 1;
                    continue;
                } else if merged_rhs.binary_search(pe).is_ok() {
                    li += 1;
                }
            }
            if ri < rlen {
                let pe = &rhs_pes[ri];
                mark(&mut merged_rhs, pe);
                item(self, pe, observed_lhs.get(pe), observed_rhs.get(pe), &mut out);
                ri += 1;
                if next_shared == Some(pe) {
                    next_shared = shared.pop_front();
                }
            }
        }
        if out.is_empty() {
            None
        } else {
            Some(Value::Array(out))
        }
    }
}

/// Removes the fields of `to_remove` from `v` (`TypedValue.RemoveItems`). Lists and maps
/// left empty become `null`, as upstream leaves them.
pub fn remove_items(types: &dyn TypeSource, tr: &TypeRef, v: &Value, to_remove: &Set) -> Value {
    let Some(resolved) = resolve(types, tr) else {
        return Value::Null;
    };
    match pick(&resolved, deduce(resolved.atom, Some(v))) {
        None => Value::Null,
        Some(Handler::Scalar(_)) => v.clone(),
        Some(Handler::List(list, er)) => {
            let Value::Array(items) = v else {
                return Value::Null;
            };
            if items.is_empty() || er == ElementRelationship::Atomic {
                return Value::Null;
            }
            let mut out = Vec::new();
            for child in items {
                let Ok(pe) = list_item_element(types, list, er, child) else {
                    out.push(child.clone());
                    continue;
                };
                if to_remove.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match to_remove.child(&pe).filter(|s| !s.is_empty()) {
                    Some(sub) => out.push(remove_items(types, &list.element_type, child, sub)),
                    None => out.push(child.clone()),
                }
            }
            if out.is_empty() {
                Value::Null
            } else {
                Value::Array(out)
            }
        }
        Some(Handler::Map(map, er)) => {
            let Value::Object(fields) = v else {
                return Value::Null;
            };
            if fields.is_empty() || er == ElementRelationship::Atomic {
                return Value::Null;
            }
            let mut out = JsonMap::new();
            for (key, child) in fields {
                let pe = PathElement::field(key);
                if to_remove.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match to_remove.child(&pe).filter(|s| !s.is_empty()) {
                    Some(sub) => out.insert(key.clone(), remove_items(types, map.type_of(key), child, sub)),
                    None => out.insert(key.clone(), child.clone()),
                };
            }
            if out.is_empty() {
                Value::Null
            } else {
                Value::Object(out)
            }
        }
    }
}

/// `Set.EnsureNamedFieldsAreMembers`: also makes members of the named fields (struct fields,
/// not map entries) that have children in the set.
pub fn ensure_named_fields_are_members(types: &dyn TypeSource, tr: &TypeRef, set: &Set) -> Set {
    let resolved = resolve(types, tr);
    let map = resolved.and_then(|r| r.atom.map.as_ref());
    let list = resolved.and_then(|r| r.atom.list.as_ref());
    let mut members: Vec<PathElement> = set.members().to_vec();
    let empty = TypeRef::default();
    let children = set.map_children(|pe, child| {
        let child_tr = match (pe, map, list) {
            (PathElement::Field(name), Some(m), _) => m.type_of(name),
            (PathElement::Key(_), _, Some(l)) => &l.element_type,
            _ => &empty,
        };
        ensure_named_fields_are_members(types, child_tr, child)
    });
    if let Some(m) = map {
        for (pe, _) in set.children() {
            if let PathElement::Field(name) = pe
                && m.find_field(name).is_some()
                && let Err(at) = members.binary_search(pe)
            {
                members.insert(at, pe.clone());
            }
        }
    }
    Set::from_parts(members, children)
}

/// `typed.ReconcileFieldSetWithSchema`: ownership recorded granularly inside what the schema
/// now says is atomic becomes ownership of the atomic field. `Ok(None)` when nothing changes.
pub fn reconcile_field_set(types: &dyn TypeSource, tr: &TypeRef, set: &Set) -> Result<Option<Set>, String> {
    let mut r = Reconciler {
        types,
        to_remove: Set::new(),
        to_add: Set::new(),
        errs: Vec::new(),
        changed: false,
    };
    r.node(tr, Some(set), false, &mut Vec::new());
    if !r.errs.is_empty() {
        let errs = ValidationErrors(
            r.errs
                .into_iter()
                .map(|message| ValidationError {
                    path: String::new(),
                    message,
                })
                .collect(),
        );
        return Err(format!("errors reconciling field set with schema: {errs}"));
    }
    if !r.changed {
        return Ok(None);
    }
    Ok(Some(set.recursive_difference(&r.to_remove).union(&r.to_add)))
}

struct Reconciler<'a> {
    types: &'a dyn TypeSource,
    to_remove: Set,
    to_add: Set,
    errs: Vec<String>,
    changed: bool,
}

fn is_untyped_deduced_map(m: &Map) -> bool {
    let deduced_ref = match &m.element_type.named {
        Some(name) => name == UNTYPED_DEDUCED,
        None => m
            .element_type
            .inlined
            .as_ref()
            .is_some_and(|a| a.scalar == Some(Scalar::Untyped)),
    };
    deduced_ref && m.fields().is_empty()
}

impl Reconciler<'_> {
    fn replace(&mut self, path: &[PathElement]) {
        self.to_remove.insert(path);
        self.to_add.insert(path);
        self.changed = true;
    }

    fn node(&mut self, tr: &TypeRef, set: Option<&Set>, is_atomic: bool, path: &mut Vec<PathElement>) {
        let Some(resolved) = resolve(self.types, tr) else {
            self.errs.push(format!("could not resolve {}", describe(tr)));
            return;
        };
        match pick(&resolved, Deduced::Full) {
            None => self.errs.push(invalid_atom_error(tr)),
            Some(Handler::Scalar(_)) => {}
            Some(Handler::List(list, er)) => {
                if !is_atomic && er == ElementRelationship::Atomic {
                    return self.replace(path);
                }
                if let Some(set) = set {
                    self.items(set, path, |_| Some(&list.element_type));
                }
            }
            Some(Handler::Map(map, er)) => {
                if is_untyped_deduced_map(map) {
                    return;
                }
                if !is_atomic && er == ElementRelationship::Atomic {
                    if set.is_some_and(|s| s.size() > 0) {
                        self.replace(path);
                    }
                    return;
                }
                if let Some(set) = set {
                    self.items(set, path, |pe| {
                        let tr = match pe {
                            PathElement::Field(name) => map.type_of(name),
                            _ => &map.element_type,
                        };
                        if tr.is_empty() { None } else { Some(tr) }
                    });
                }
            }
        }
    }

    fn items<'t>(
        &mut self,
        set: &Set,
        path: &mut Vec<PathElement>,
        type_at: impl Fn(&PathElement) -> Option<&'t TypeRef>,
    ) {
        let mut visit = |me: &mut Self, pe: &PathElement, is_member: bool| {
            let Some(tr) = type_at(pe) else {
                return;
            };
            let child = set.child(pe);
            path.push(pe.clone());
            me.node(tr, child, is_member && child.is_none(), path);
            path.pop();
        };
        for (pe, _) in set.children() {
            if set.members().binary_search(pe).is_err() {
                visit(self, pe, false);
            }
        }
        for pe in set.members() {
            visit(self, pe, true);
        }
    }
}
