//! Field paths and sets of fields (sigs.k8s.io/structured-merge-diff/v6/fieldpath).
//!
//! A [`PathElement`] selects a child: a field of a map or struct (`f:name`), the item of an
//! associative list with key fields (`k:{"name":"a"}`), the item of a set (`v:"a"`) or the
//! item of an atomic list by position (`i:0`). A [`Set`] is a trie of such elements: its
//! members are the fields in the set, its children the fields some of whose descendants are.
//!
//! Elements are ordered as upstream orders them (fields, then keys, then values, then
//! indexes; each by its own order), and [`Set::to_json`] writes FieldsV1 byte for byte as
//! upstream does: members and children merged in that order, `"."` first for a field that is
//! both a member and has children, strings escaped as json-iterator escapes them.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

use super::value;

/// One step of a path.
#[derive(Clone, Debug)]
pub enum PathElement {
    /// A field of a map or struct.
    Field(String),
    /// An item of an associative list, by its key fields (sorted by name).
    Key(Vec<(String, Value)>),
    /// An item of a set (an associative list of scalars), by its value.
    Value(Value),
    /// An item of an atomic list, by position.
    Index(i64),
}

impl PathElement {
    /// A field element.
    pub fn field(name: &str) -> PathElement {
        PathElement::Field(name.to_string())
    }

    /// A key element; the fields are sorted by name.
    pub fn key(mut fields: Vec<(String, Value)>) -> PathElement {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    fn variant(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The field name, for field elements.
    pub fn as_field(&self) -> Option<&str> {
        match self {
            PathElement::Field(name) => Some(name),
            _ => None,
        }
    }

    /// The element as a FieldsV1 key (`f:name`, `k:{...}`, `v:...`, `i:0`), before the JSON
    /// string escaping of the key itself.
    pub fn serialize(&self) -> String {
        let mut out = String::new();
        match self {
            PathElement::Field(name) => {
                out.push_str("f:");
                out.push_str(name);
            }
            PathElement::Key(fields) => {
                out.push_str("k:{");
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    value::write_json_string(&mut out, name);
                    out.push(':');
                    value::write_json_value(&mut out, v);
                }
                out.push('}');
            }
            PathElement::Value(v) => {
                out.push_str("v:");
                value::write_json_value(&mut out, v);
            }
            PathElement::Index(i) => {
                out.push_str("i:");
                out.push_str(&i.to_string());
            }
        }
        out
    }

    /// Parses a FieldsV1 key. `Ok(None)` for an unknown element type (upstream skips those).
    pub fn deserialize(s: &str) -> Result<Option<PathElement>, String> {
        let bytes = s.as_bytes();
        if bytes.len() < 2 {
            return Err("key must be 2 characters long:".to_string());
        }
        if bytes[1] != b':' {
            return Err(format!("missing colon: {s}"));
        }
        let rest = &s[2..];
        match bytes[0] {
            b'f' => Ok(Some(PathElement::Field(rest.to_string()))),
            b'v' => {
                let v: Value = serde_json::from_str(rest).map_err(|e| e.to_string())?;
                Ok(Some(PathElement::Value(v)))
            }
            b'k' => {
                let map: Map<String, Value> = serde_json::from_str(rest).map_err(|e| e.to_string())?;
                Ok(Some(PathElement::key(map.into_iter().collect())))
            }
            b'i' => {
                let i: i64 = rest.parse().map_err(|e: std::num::ParseIntError| {
                    format!("strconv.Atoi: parsing {}: {}", value::go_quote(rest), e)
                })?;
                Ok(Some(PathElement::Index(i)))
            }
            _ => Ok(None),
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.as_bytes().cmp(b.as_bytes()),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b.iter()) {
                    let c = an
                        .as_bytes()
                        .cmp(bn.as_bytes())
                        .then_with(|| value::compare(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => value::compare(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.variant().cmp(&other.variant()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PathElement::Key(a), PathElement::Key(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((an, av), (bn, bv))| an == bn && value::equals(av, bv))
            }
            (PathElement::Value(a), PathElement::Value(b)) => value::equals(a, b),
            _ => self.cmp(other) == Ordering::Equal,
        }
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    /// `PathElement.String`: `.name`, `[name="a",port=80]`, `[="a"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(n, v)| format!("{n}={}", value::to_smd_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", value::to_smd_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the root of an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    /// A path of field names.
    pub fn fields(names: &[&str]) -> Path {
        Path(names.iter().map(|n| PathElement::field(n)).collect())
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

/// A set of fields: a trie of path elements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set {
    /// Fields in the set, sorted.
    members: Vec<PathElement>,
    /// Fields with descendants in the set, sorted; never empty sets.
    children: Vec<(PathElement, Set)>,
}

fn find_child<'a>(children: &'a [(PathElement, Set)], pe: &PathElement) -> Option<&'a Set> {
    children
        .binary_search_by(|(c, _)| c.cmp(pe))
        .ok()
        .map(|i| &children[i].1)
}

impl Set {
    /// The empty set.
    pub fn new() -> Set {
        Set::default()
    }

    /// A set of the given paths.
    pub fn from_paths(paths: &[Path]) -> Set {
        let mut set = Set::new();
        for p in paths {
            set.insert(&p.0);
        }
        set
    }

    /// The members (fields in the set) at this level.
    pub fn members(&self) -> &[PathElement] {
        &self.members
    }

    /// The children (fields with descendants in the set) at this level.
    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &Set)> {
        self.children.iter().map(|(pe, s)| (pe, s))
    }

    /// Adds the field at `path` (its parents are not added). The empty path is ignored: no
    /// one owns the whole object.
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        if rest.is_empty() {
            if let Err(i) = self.members.binary_search(first) {
                self.members.insert(i, first.clone());
            }
            return;
        }
        let i = match self.children.binary_search_by(|(c, _)| c.cmp(first)) {
            Ok(i) => i,
            Err(i) => {
                self.children.insert(i, (first.clone(), Set::new()));
                i
            }
        };
        self.children[i].1.insert(rest);
    }

    /// Whether the field at `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        match path.split_first() {
            None => false,
            Some((first, [])) => self.members.binary_search(first).is_ok(),
            Some((first, rest)) => find_child(&self.children, first).is_some_and(|c| c.has(rest)),
        }
    }

    /// Whether the set has no member at any level.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.iter().all(|(_, s)| s.is_empty())
    }

    /// The number of members at all levels.
    pub fn size(&self) -> usize {
        self.members.len() + self.children.iter().map(|(_, s)| s.size()).sum::<usize>()
    }

    /// The subset under `pe` (without the prefix); empty if none.
    pub fn with_prefix(&self, pe: &PathElement) -> Set {
        find_child(&self.children, pe).cloned().unwrap_or_default()
    }

    /// The subset under `pe`, borrowed.
    pub fn child(&self, pe: &PathElement) -> Option<&Set> {
        find_child(&self.children, pe)
    }

    /// Members of `self` or `other`.
    pub fn union(&self, other: &Set) -> Set {
        let members = merge_sorted(&self.members, &other.members, true, true);
        let mut children = Vec::with_capacity(self.children.len().max(other.children.len()));
        let (mut i, mut j) = (0, 0);
        while i < self.children.len() && j < other.children.len() {
            match self.children[i].0.cmp(&other.children[j].0) {
                Ordering::Less => {
                    children.push(self.children[i].clone());
                    i += 1;
                }
                Ordering::Greater => {
                    children.push(other.children[j].clone());
                    j += 1;
                }
                Ordering::Equal => {
                    children.push((
                        self.children[i].0.clone(),
                        self.children[i].1.union(&other.children[j].1),
                    ));
                    i += 1;
                    j += 1;
                }
            }
        }
        children.extend_from_slice(&self.children[i..]);
        children.extend_from_slice(&other.children[j..]);
        Set { members, children }
    }

    /// Members in both sets.
    pub fn intersection(&self, other: &Set) -> Set {
        let members = merge_sorted(&self.members, &other.members, false, false);
        let mut children = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < self.children.len() && j < other.children.len() {
            match self.children[i].0.cmp(&other.children[j].0) {
                Ordering::Less => i += 1,
                Ordering::Greater => j += 1,
                Ordering::Equal => {
                    let res = self.children[i].1.intersection(&other.children[j].1);
                    if !res.is_empty() {
                        children.push((self.children[i].0.clone(), res));
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        Set { members, children }
    }

    /// Members of `self` not in `other` (a parent minus its child is still the parent).
    pub fn difference(&self, other: &Set) -> Set {
        let members = difference_sorted(&self.members, &other.members);
        let mut children = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < self.children.len() && j < other.children.len() {
            match self.children[i].0.cmp(&other.children[j].0) {
                Ordering::Less => {
                    children.push(self.children[i].clone());
                    i += 1;
                }
                Ordering::Greater => j += 1,
                Ordering::Equal => {
                    let diff = self.children[i].1.difference(&other.children[j].1);
                    if !diff.is_empty() {
                        children.push((self.children[i].0.clone(), diff));
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        children.extend_from_slice(&self.children[i..]);
        Set { members, children }
    }

    /// Members of `self` not in `other`, removing also every descendant of a member of
    /// `other`.
    pub fn recursive_difference(&self, other: &Set) -> Set {
        let members = difference_sorted(&self.members, &other.members);
        let mut children = Vec::new();
        let (mut i, mut j) = (0, 0);
        let removed = |pe: &PathElement| other.members.binary_search(pe).is_ok();
        while i < self.children.len() && j < other.children.len() {
            match self.children[i].0.cmp(&other.children[j].0) {
                Ordering::Less => {
                    if !removed(&self.children[i].0) {
                        children.push(self.children[i].clone());
                    }
                    i += 1;
                }
                Ordering::Greater => j += 1,
                Ordering::Equal => {
                    if !removed(&self.children[i].0) {
                        let diff = self.children[i].1.recursive_difference(&other.children[j].1);
                        if !diff.is_empty() {
                            children.push((self.children[i].0.clone(), diff));
                        }
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        for child in &self.children[i..] {
            if !removed(&child.0) {
                children.push(child.clone());
            }
        }
        Set { members, children }
    }

    /// Only the leaf members (members that have no children).
    pub fn leaves(&self) -> Set {
        let members = self
            .members
            .iter()
            .filter(|m| find_child(&self.children, m).is_none())
            .cloned()
            .collect();
        let children = self
            .children
            .iter()
            .map(|(pe, s)| (pe.clone(), s.leaves()))
            .collect();
        Set { members, children }
    }

    /// Every member path, in preorder (members of a level, then its children).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(Path(p));
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Adds `pe` as a member (used when rebuilding sets level by level).
    pub(crate) fn insert_member(&mut self, pe: PathElement) {
        if let Err(i) = self.members.binary_search(&pe) {
            self.members.insert(i, pe);
        }
    }

    /// Maps each child set (used by schema-driven transformations).
    pub(crate) fn map_children(
        &self,
        mut f: impl FnMut(&PathElement, &Set) -> Set,
    ) -> Vec<(PathElement, Set)> {
        self.children
            .iter()
            .map(|(pe, s)| (pe.clone(), f(pe, s)))
            .collect()
    }

    /// Builds a set from sorted parts.
    pub(crate) fn from_parts(members: Vec<PathElement>, children: Vec<(PathElement, Set)>) -> Set {
        Set { members, children }
    }

    /// The set as FieldsV1 JSON, byte for byte as upstream writes it.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        self.emit(false, &mut out);
        out.push('}');
        out
    }

    fn emit(&self, include_self: bool, out: &mut String) {
        let mut first = true;
        let mut pre = |out: &mut String| {
            if first {
                first = false;
            } else {
                out.push(',');
            }
        };
        if include_self && !(self.members.is_empty() && self.children.is_empty()) {
            pre(out);
            out.push_str("\".\":{}");
        }
        let (mut mi, mut ci) = (0, 0);
        while mi < self.members.len() || ci < self.children.len() {
            let order = match (self.members.get(mi), self.children.get(ci)) {
                (Some(m), Some((c, _))) => m.cmp(c),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            pre(out);
            match order {
                Ordering::Less => {
                    value::write_json_string(out, &self.members[mi].serialize());
                    out.push_str(":{}");
                    mi += 1;
                }
                Ordering::Greater => {
                    let (pe, child) = &self.children[ci];
                    value::write_json_string(out, &pe.serialize());
                    out.push_str(":{");
                    child.emit(false, out);
                    out.push('}');
                    ci += 1;
                }
                Ordering::Equal => {
                    let (pe, child) = &self.children[ci];
                    value::write_json_string(out, &pe.serialize());
                    out.push_str(":{");
                    child.emit(true, out);
                    out.push('}');
                    mi += 1;
                    ci += 1;
                }
            }
        }
    }

    /// The set as a JSON value (the `fieldsV1` of a managedFields entry).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.to_json()).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// Parses FieldsV1 (`Set.FromJSON`): `"."` marks a member that also has children,
    /// elements of unknown types are skipped.
    pub fn from_value(v: &Value) -> Result<Set, String> {
        match v {
            Value::Null => Ok(Set::new()),
            Value::Object(map) => Ok(read_v1(map)?.0.unwrap_or_default()),
            other => Err(format!(
                "ReadMapCB: expect {{ or n, but found {}",
                first_char(other)
            )),
        }
    }
}

fn first_char(v: &Value) -> char {
    v.to_string().chars().next().unwrap_or(' ')
}

/// `readIterV1`: the children of one level, and whether the level itself is a member.
fn read_v1(map: &Map<String, Value>) -> Result<(Option<Set>, bool), String> {
    let mut children: Option<Set> = None;
    let mut is_member = false;
    for (key, v) in map {
        if key == "." {
            is_member = true;
            continue;
        }
        let pe = match PathElement::deserialize(key) {
            Ok(Some(pe)) => pe,
            Ok(None) => continue,
            Err(e) => return Err(format!("parsing key as path element: {e}")),
        };
        let (grandchildren, child_is_member) = match v {
            Value::Null => (None, true),
            Value::Object(m) => read_v1(m)?,
            other => {
                return Err(format!(
                    "ReadMapCB: expect {{ or n, but found {}",
                    first_char(other)
                ));
            }
        };
        if child_is_member {
            children.get_or_insert_with(Set::new).insert_member(pe.clone());
        }
        if let Some(g) = grandchildren {
            let set = children.get_or_insert_with(Set::new);
            match set.children.binary_search_by(|(c, _)| c.cmp(&pe)) {
                Ok(i) => set.children[i].1 = g,
                Err(i) => set.children.insert(i, (pe, g)),
            }
        }
    }
    if children.is_none() {
        is_member = true;
    }
    Ok((children, is_member))
}

/// Sorted merge of two sorted lists: the elements of both, plus those only in `a` (`only_a`)
/// and those only in `b` (`only_b`).
fn merge_sorted(a: &[PathElement], b: &[PathElement], only_a: bool, only_b: bool) -> Vec<PathElement> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Less => {
                if only_a {
                    out.push(a[i].clone());
                }
                i += 1;
            }
            Ordering::Greater => {
                if only_b {
                    out.push(b[j].clone());
                }
                j += 1;
            }
            Ordering::Equal => {
                out.push(a[i].clone());
                i += 1;
                j += 1;
            }
        }
    }
    if only_a {
        out.extend_from_slice(&a[i..]);
    }
    if only_b {
        out.extend_from_slice(&b[j..]);
    }
    out
}

fn difference_sorted(a: &[PathElement], b: &[PathElement]) -> Vec<PathElement> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            Ordering::Less => {
                out.push(a[i].clone());
                i += 1;
            }
            Ordering::Greater => j += 1,
            Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(s: &str) -> Set {
        Set::from_value(&serde_json::from_str(s).unwrap()).unwrap()
    }

    fn key(name: &str, v: Value) -> PathElement {
        PathElement::key(vec![(name.to_string(), v)])
    }

    /// Upstream's `TestSerializeV1GoldenData`: parsing and writing reproduces the bytes.
    #[test]
    fn serialize_golden_data() {
        let examples = [
            r#"{"f:aaa":{},"f:aab":{},"f:aac":{},"f:aad":{},"f:aae":{},"f:aaf":{},"k:{\"name\":\"first\"}":{},"k:{\"name\":\"second\"}":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{},"k:{\"port\":443,\"protocol\":\"udp\"}":{},"v:1":{},"v:2":{},"v:3":{},"v:\"aa\"":{},"v:\"ab\"":{},"v:true":{},"i:1":{},"i:2":{},"i:3":{},"i:4":{}}"#,
            r#"{"f:aaa":{"k:{\"name\":\"second\"}":{"v:3":{"f:aab":{}}},"v:3":{},"v:true":{}},"f:aab":{"f:aaa":{},"f:aaf":{"k:{\"port\":443,\"protocol\":\"udp\"}":{"k:{\"port\":443,\"protocol\":\"tcp\"}":{}}},"k:{\"name\":\"first\"}":{}},"f:aac":{"f:aaa":{"v:1":{}},"f:aac":{},"v:3":{"k:{\"name\":\"second\"}":{}}},"f:aad":{"f:aac":{"v:1":{}},"f:aaf":{"k:{\"name\":\"first\"}":{"k:{\"name\":\"first\"}":{}}},"i:1":{"i:1":{},"i:3":{"v:true":{}}}},"f:aae":{"f:aae":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"k:{\"port\":443,\"protocol\":\"udp\"}":{}},"i:4":{"f:aaf":{}}},"f:aaf":{"i:1":{"f:aac":{}},"i:2":{},"i:3":{}},"k:{\"name\":\"first\"}":{"f:aad":{"f:aaf":{}}},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"f:aaa":{"f:aad":{}}},"k:{\"port\":443,\"protocol\":\"udp\"}":{"f:aac":{},"k:{\"name\":\"first\"}":{"i:3":{}},"k:{\"port\":443,\"protocol\":\"udp\"}":{"i:4":{}}},"v:1":{"f:aac":{"i:4":{}},"f:aaf":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{}},"v:2":{"f:aad":{"f:aaf":{}},"i:1":{}},"v:3":{"f:aaa":{},"k:{\"name\":\"first\"}":{},"i:2":{}},"v:\"aa\"":{"f:aab":{"f:aaf":{}},"f:aae":{},"k:{\"name\":\"first\"}":{"f:aad":{}},"i:2":{}},"v:\"ab\"":{"f:aaf":{"i:4":{}},"k:{\"port\":443,\"protocol\":\"tcp\"}":{},"k:{\"port\":443,\"protocol\":\"udp\"}":{},"v:1":{"k:{\"port\":443,\"protocol\":\"udp\"}":{}},"i:1":{"f:aae":{"i:4":{}}}},"v:true":{"k:{\"name\":\"second\"}":{"f:aaa":{}},"i:2":{"k:{\"port\":443,\"protocol\":\"tcp\"}":{}}},"i:1":{"i:3":{"f:aaf":{}}},"i:2":{"f:aae":{},"k:{\"port\":443,\"protocol\":\"tcp\"}":{"v:1":{}}},"i:3":{"f:aab":{"v:true":{"v:\"aa\"":{}}},"f:aaf":{},"i:1":{}},"i:4":{"v:\"aa\"":{"f:aab":{"k:{\"name\":\"second\"}":{}}}}}"#,
        ];
        for example in examples {
            assert_eq!(parse(example).to_json(), example);
        }
    }

    /// Upstream's `TestDropUnknown`.
    #[test]
    fn unknown_elements_are_dropped() {
        assert_eq!(parse(r#"{"f:aaa":{},"r:aab":{}}"#).to_json(), r#"{"f:aaa":{}}"#);
    }

    #[test]
    fn dot_marks_members_with_children() {
        let set = parse(r#"{"f:a":{".":{},"f:b":{}},"f:c":{"f:d":{}}}"#);
        assert!(set.has(&[PathElement::field("a")]));
        assert!(set.has(&[PathElement::field("a"), PathElement::field("b")]));
        assert!(!set.has(&[PathElement::field("c")]));
        assert_eq!(set.to_json(), r#"{"f:a":{".":{},"f:b":{}},"f:c":{"f:d":{}}}"#);
        assert!(Set::from_value(&json!({"f:a": 1})).is_err());
        assert!(Set::from_value(&json!({"k:{": {}})).is_err());
    }

    #[test]
    fn set_operations() {
        let a = Path(vec![PathElement::field("a")]);
        let ab = Path(vec![PathElement::field("a"), PathElement::field("b")]);
        let ac = Path(vec![PathElement::field("a"), PathElement::field("c")]);
        let x = Path(vec![
            PathElement::field("x"),
            key("name", json!("n")),
            PathElement::field("y"),
        ]);
        let s1 = Set::from_paths(&[a.clone(), ab.clone(), x.clone()]);
        let s2 = Set::from_paths(&[ab.clone(), ac.clone()]);
        assert_eq!(
            s1.union(&s2),
            Set::from_paths(&[a.clone(), ab.clone(), ac, x.clone()])
        );
        assert_eq!(s1.intersection(&s2), Set::from_paths(std::slice::from_ref(&ab)));
        assert_eq!(s1.difference(&s2), Set::from_paths(&[a.clone(), x.clone()]));
        // parent - child = parent; child - parent = nothing (recursively)
        assert_eq!(
            Set::from_paths(std::slice::from_ref(&ab))
                .difference(&Set::from_paths(std::slice::from_ref(&a)))
                .size(),
            1
        );
        assert!(
            Set::from_paths(std::slice::from_ref(&ab))
                .recursive_difference(&Set::from_paths(std::slice::from_ref(&a)))
                .is_empty()
        );
        assert_eq!(s1.leaves(), Set::from_paths(&[ab.clone(), x.clone()]));
        assert_eq!(s1.paths(), vec![a, ab, x.clone()]);
        assert_eq!(x.to_string(), ".x[name=\"n\"].y");
        assert_eq!(s1.size(), 3);
    }

    #[test]
    fn element_order_and_strings() {
        let mut elems = [
            PathElement::Index(1),
            PathElement::Value(json!("aa")),
            PathElement::Value(json!(true)),
            PathElement::Value(json!(1)),
            PathElement::key(vec![
                ("port".into(), json!(443)),
                ("protocol".into(), json!("tcp")),
            ]),
            key("name", json!("first")),
            PathElement::field("b"),
            PathElement::field("a"),
        ];
        elems.sort();
        let strings: Vec<String> = elems.iter().map(PathElement::serialize).collect();
        assert_eq!(
            strings,
            vec![
                "f:a",
                "f:b",
                "k:{\"name\":\"first\"}",
                "k:{\"port\":443,\"protocol\":\"tcp\"}",
                "v:1",
                "v:\"aa\"",
                "v:true",
                "i:1"
            ]
        );
        assert_eq!(PathElement::Value(json!("x")).to_string(), "[=\"x\"]");
        assert_eq!(PathElement::Index(3).to_string(), "[3]");
        assert_eq!(key("a<b", json!("c&d")).serialize(), "k:{\"a<b\":\"c\\u0026d\"}");
        let mut set = Set::new();
        set.insert(&[key("a<b", json!("c&d"))]);
        assert_eq!(set.to_json(), r#"{"k:{\"a<b\":\"c\\u0026d\"}":{}}"#);
    }
}
