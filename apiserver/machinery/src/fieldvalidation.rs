//! Server-side field validation (`fieldValidation=Strict|Warn|Ignore`): the unknown and
//! duplicate fields of a request body, found and worded as upstream's strict decoders find and
//! word them, and the `Warning` headers that carry them (and any other warning) back.
//!
//! Upstream decodes a JSON body with sigs.k8s.io/json's `UnmarshalStrict` into the typed
//! object. That decoder walks the document in order and records, deduplicated and at most 100:
//! `unknown field "spec.foo"` for a key the struct does not have (its value is skipped) and
//! `duplicate field "metadata.name"` for a struct field or map key seen twice. Paths join keys
//! with `.` and show list indexes as `[0]` (`spec.containers[0].foo`); map keys are part of
//! the path (`metadata.labels.a`); types with their own `UnmarshalJSON` (`RawExtension`,
//! `Quantity`, `IntOrString`, `Time`, apiextensions `JSON`, ...) are never looked into; paths
//! are quoted with Go's `strconv.Quote`. [`json_strict_errors`] reproduces this walk over the
//! raw body, driven by the built-in [`Schema`].
//!
//! YAML bodies are first converted to JSON (which sorts keys and keeps the last of duplicate
//! keys), then decoded as above; duplicate keys are reported by yaml.v2's strict mode as one
//! error, `yaml: unmarshal errors:\n  line 4: key "name" already set in map` (see
//! [`yaml_duplicate_keys`]). A strategic merge patch is checked for duplicates only (it is
//! decoded into a map), and its result by the unstructured converter, whose paths leave out
//! map keys and whose errors are sorted ([`unknown_fields_unstructured`]). A JSON merge patch
//! result is re-encoded with sorted keys and decoded as a body ([`unknown_fields`]); a JSON
//! patch is decoded into its operations ([`json_patch_strict_errors`]).

use std::collections::HashSet;

use serde_json::Value;

use crate::schema::{Item, Schema, Shape};

/// The `fieldValidation` directive of a create, update or patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Directive {
    /// Unknown and duplicate fields are dropped silently.
    Ignore,
    /// They are dropped and reported as warnings (the default).
    Warn,
    /// They fail the request.
    Strict,
}

impl Directive {
    /// The values upstream accepts, as its `NotSupported` error lists them.
    pub const SUPPORTED: [&'static str; 4] = ["", "Ignore", "Strict", "Warn"];

    /// Parses the query parameter; empty is upstream's default, `Warn`.
    pub fn parse(value: &str) -> Option<Directive> {
        match value {
            "" | "Warn" => Some(Directive::Warn),
            "Ignore" => Some(Directive::Ignore),
            "Strict" => Some(Directive::Strict),
            _ => None,
        }
    }

    /// Whether unknown and duplicate fields are looked for at all.
    pub fn checks(self) -> bool {
        self != Directive::Ignore
    }
}

/// The definitions whose Go types decode themselves from any JSON: nothing inside them is
/// unknown or checked for duplicates.
const OPAQUE_DEFINITIONS: &[&str] = &[
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrArray",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrBool",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaPropsOrStringArray",
];

/// At most this many strict errors are kept (sigs.k8s.io/json).
const MAX_STRICT_ERRORS: usize = 100;

/// Deeper documents are not looked into (serde_json refuses them anyway).
const MAX_DEPTH: usize = 1000;

/// The Go type a JSON value is decoded into.
#[derive(Clone, Copy, Debug)]
enum Target<'s> {
    /// A struct: keys outside its properties are unknown.
    Struct(&'s str),
    /// A map: any key, duplicates reported, values of the item type.
    Map(ItemTarget<'s>),
    /// A slice of the item type.
    Slice(ItemTarget<'s>),
    /// `interface{}`: any key, duplicates reported everywhere below.
    Any,
    /// A primitive or a type with its own `UnmarshalJSON`: not looked into.
    Opaque,
    /// A JSON patch: a list of operations.
    PatchOps,
    /// One JSON patch operation (`op`, `path`, `from`, and `value` of any type).
    PatchOp,
}

/// The element type of a map or slice.
#[derive(Clone, Copy, Debug)]
enum ItemTarget<'s> {
    Ref(&'s str),
    Primitive,
}

impl<'s> ItemTarget<'s> {
    fn target(self, schema: &'s Schema) -> Target<'s> {
        match self {
            ItemTarget::Ref(name) => definition_target(name, schema),
            ItemTarget::Primitive => Target::Opaque,
        }
    }
}

fn definition_target<'s>(name: &'s str, schema: &'s Schema) -> Target<'s> {
    match schema.definition(name) {
        Some(definition) if definition.scalar_type.is_none() && !OPAQUE_DEFINITIONS.contains(&name) => {
            Target::Struct(name)
        }
        _ => Target::Opaque,
    }
}

fn item_target(item: &Item) -> ItemTarget<'_> {
    match item {
        Item::Ref(name) => ItemTarget::Ref(name),
        Item::Primitive(_) => ItemTarget::Primitive,
    }
}

/// The target of property `key` of struct `definition`, if the struct has it.
fn property_target<'s>(definition: &str, key: &str, schema: &'s Schema) -> Option<Target<'s>> {
    let property = schema.property(definition, key)?;
    Some(match &property.shape {
        Shape::Object(name) => definition_target(name, schema),
        Shape::Array(item) => Target::Slice(item_target(item)),
        Shape::Map(item) => Target::Map(item_target(item)),
        Shape::Primitive(..) => Target::Opaque,
    })
}

/// The JSON patch operation field `key`, if it is one.
fn patch_op_target(key: &str) -> Option<Target<'static>> {
    match key {
        "op" | "path" | "from" => Some(Target::Opaque),
        "value" => Some(Target::Any),
        _ => None,
    }
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

fn push_index(path: &mut String, index: usize) {
    path.push('[');
    path.push_str(&index.to_string());
    path.push(']');
}

fn child_path(path: &str, key: &str) -> String {
    let mut child = path.to_owned();
    push_key(&mut child, key);
    child
}

// ---------------------------------------------------------------------------------------------
// Messages

/// Upstream's message for an unknown field found by the JSON decoder.
pub fn unknown_field_message(path: &str) -> String {
    format!("unknown field {}", go_quote(path))
}

/// Upstream's message for a duplicate field found by the JSON decoder.
pub fn duplicate_field_message(path: &str) -> String {
    format!("duplicate field {}", go_quote(path))
}

/// The error of a request that failed field validation, from its strict errors in order.
pub fn strict_decoding_error(errors: &[String]) -> String {
    format!("strict decoding error: {}", errors.join(", "))
}

/// The warnings of strict errors (upstream's `addStrictDecodingWarnings`): each error is one
/// warning, except that yaml.v2's multi-line error gives one warning per line.
pub fn strict_warnings(errors: &[String]) -> Vec<String> {
    const SHORT_PREFIX: &str = "yaml: unmarshal errors:\n";
    const LONG_PREFIX: &str = "error converting YAML to JSON: yaml: unmarshal errors:\n";
    let mut warnings = Vec::new();
    for error in errors {
        match error
            .strip_prefix(SHORT_PREFIX)
            .or_else(|| error.strip_prefix(LONG_PREFIX))
        {
            Some(rest) => warnings.extend(rest.split('\n').map(|line| line.trim().to_owned())),
            None => warnings.push(error.clone()),
        }
    }
    warnings
}

/// Go's `strconv.Quote`: double quotes, `\"` and `\\`, printable characters as they are, the
/// others escaped.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if is_go_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII space;
/// not controls, format characters, private use, other spaces or line separators.
fn is_go_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let code = c as u32;
    !matches!(
        code,
        0xAD | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xE000..=0xF8FF
            | 0xFDD0..=0xFDEF
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0xFFFE..=0xFFFF
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
            | 0xF0000..
    )
}

// ---------------------------------------------------------------------------------------------
// Walks of decoded values

/// The unknown fields of `value` decoded as `definition`, as upstream's JSON decoder reports
/// them, in the order of the value's keys (sorted, as after upstream's YAML-to-JSON or merge
/// patch re-encoding). Paths show map keys and list indexes: `spec.containers[0].foo`.
pub fn unknown_fields(value: &Value, definition: &str, schema: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    let mut path = String::new();
    walk_value(
        value,
        definition_target(definition, schema),
        schema,
        true,
        &mut path,
        &mut out,
        0,
    );
    out
}

/// The unknown fields of `value` converted to `definition` by upstream's unstructured
/// converter (`FromUnstructuredWithValidation`, used for the result of a strategic merge
/// patch): map keys are left out of the paths, and the messages (`unknown field "<path>"`,
/// unquoted) are sorted.
pub fn unknown_fields_unstructured(value: &Value, definition: &str, schema: &Schema) -> Vec<String> {
    let mut paths = Vec::new();
    let mut path = String::new();
    walk_value(
        value,
        definition_target(definition, schema),
        schema,
        false,
        &mut path,
        &mut paths,
        0,
    );
    let mut messages: Vec<String> = paths
        .into_iter()
        .map(|path| format!("unknown field \"{path}\""))
        .collect();
    messages.sort();
    messages
}

fn walk_value(
    value: &Value,
    target: Target<'_>,
    schema: &Schema,
    map_keys: bool,
    path: &mut String,
    out: &mut Vec<String>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    let len = path.len();
    match (value, target) {
        (Value::Object(map), Target::Struct(definition)) => {
            for (key, child) in map {
                match property_target(definition, key, schema) {
                    Some(child_target) => {
                        push_key(path, key);
                        walk_value(child, child_target, schema, map_keys, path, out, depth + 1);
                        path.truncate(len);
                    }
                    None => out.push(child_path(path, key)),
                }
            }
        }
        (Value::Object(map), Target::Map(item)) => {
            for (key, child) in map {
                if map_keys {
                    push_key(path, key);
                }
                walk_value(child, item.target(schema), schema, map_keys, path, out, depth + 1);
                path.truncate(len);
            }
        }
        (Value::Array(items), Target::Slice(item)) => {
            for (index, child) in items.iter().enumerate() {
                push_index(path, index);
                walk_value(child, item.target(schema), schema, map_keys, path, out, depth + 1);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The raw JSON walk

/// The strict errors of a JSON body decoded as `definition`, in document order: unknown and
/// duplicate fields, deduplicated, at most 100 (upstream's `UnmarshalStrict` into the type).
/// Empty when the body is not valid JSON (decoding reports that).
pub fn json_strict_errors(bytes: &[u8], definition: &str, schema: &Schema) -> Vec<String> {
    strict_walk(bytes, definition_target(definition, schema), schema)
        .iter()
        .map(StrictError::message)
        .collect()
}

/// The strict errors of a JSON patch (upstream decodes it into its operations), each prefixed
/// `json patch ` as upstream prefixes them: `json patch unknown field "[0].foo"`.
pub fn json_patch_strict_errors(bytes: &[u8]) -> Vec<String> {
    strict_walk(bytes, Target::PatchOps, Schema::builtin())
        .iter()
        .map(|error| format!("json patch {}", error.message()))
        .collect()
}

/// The paths of the duplicate keys of a JSON document decoded into `map[string]interface{}`
/// (how upstream reads merge and strategic merge patches): every object at every depth, map
/// keys and list indexes in the path (`metadata.labels.a`, `spec.containers[1].name`), in
/// document order, without repeats.
pub fn duplicate_fields(bytes: &[u8]) -> Vec<String> {
    strict_walk(bytes, Target::Any, Schema::builtin())
        .into_iter()
        .map(|error| error.path)
        .collect()
}

/// The strict errors of a merge or strategic merge patch body: its duplicate fields.
pub fn patch_duplicate_errors(bytes: &[u8]) -> Vec<String> {
    duplicate_fields(bytes)
        .iter()
        .map(|path| duplicate_field_message(path))
        .collect()
}

/// One strict error of the JSON decoder.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct StrictError {
    unknown: bool,
    path: String,
}

impl StrictError {
    fn message(&self) -> String {
        if self.unknown {
            unknown_field_message(&self.path)
        } else {
            duplicate_field_message(&self.path)
        }
    }
}

fn strict_walk(bytes: &[u8], target: Target<'_>, schema: &Schema) -> Vec<StrictError> {
    let mut walker = JsonWalker {
        bytes,
        pos: 0,
        schema,
        saved: Vec::new(),
        seen: HashSet::new(),
    };
    let mut path = String::new();
    match walker.value(target, &mut path, 0) {
        Some(()) => walker.saved,
        None => Vec::new(),
    }
}

struct JsonWalker<'b, 's> {
    bytes: &'b [u8],
    pos: usize,
    schema: &'s Schema,
    saved: Vec<StrictError>,
    seen: HashSet<StrictError>,
}

impl<'s> JsonWalker<'_, 's> {
    fn save(&mut self, unknown: bool, path: String) {
        let error = StrictError { unknown, path };
        if self.saved.len() >= MAX_STRICT_ERRORS || self.seen.contains(&error) {
            return;
        }
        self.seen.insert(error.clone());
        self.saved.push(error);
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.ws();
        (self.peek() == Some(byte)).then(|| self.pos += 1)
    }

    /// One value at the current position, decoded into `target`.
    fn value(&mut self, target: Target<'s>, path: &mut String, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match (self.peek()?, target) {
            (b'{', Target::Struct(_) | Target::Map(_) | Target::Any | Target::PatchOp) => {
                self.object(target, path, depth)
            }
            (b'[', Target::Slice(_) | Target::Any | Target::PatchOps) => self.array(target, path, depth),
            _ => self.skip(depth),
        }
    }

    fn object(&mut self, target: Target<'s>, path: &mut String, depth: usize) -> Option<()> {
        self.pos += 1;
        let len = path.len();
        let mut seen_keys: HashSet<String> = HashSet::new();
        self.ws();
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.ws();
            let key = self.string()?;
            self.expect(b':')?;
            let child = match target {
                Target::Struct(definition) => property_target(definition, &key, self.schema),
                Target::PatchOp => patch_op_target(&key),
                Target::Map(item) => Some(item.target(self.schema)),
                _ => Some(Target::Any),
            };
            match child {
                Some(child) => {
                    if !seen_keys.insert(key.clone()) {
                        self.save(false, child_path(path, &key));
                    }
                    push_key(path, &key);
                    let walked = self.value(child, path, depth + 1);
                    path.truncate(len);
                    walked?;
                }
                None => {
                    self.save(true, child_path(path, &key));
                    self.ws();
                    self.skip(depth + 1)?;
                }
            }
            self.ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn array(&mut self, target: Target<'s>, path: &mut String, depth: usize) -> Option<()> {
        self.pos += 1;
        let len = path.len();
        let item = match target {
            Target::Slice(item) => item.target(self.schema),
            Target::PatchOps => Target::PatchOp,
            _ => Target::Any,
        };
        self.ws();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(());
        }
        let mut index = 0;
        loop {
            push_index(path, index);
            let walked = self.value(item, path, depth + 1);
            path.truncate(len);
            walked?;
            index += 1;
            self.ws();
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Skips one value.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.pos += 1;
                self.ws();
                if self.peek()? == close {
                    self.pos += 1;
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.ws();
                        self.string()?;
                        self.expect(b':')?;
                    }
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.pos += 1,
                        c if c == close => {
                            self.pos += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => {
                let start = self.pos;
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                {
                    self.pos += 1;
                }
                (self.pos > start).then_some(())
            }
        }
    }

    /// A string at the current position, unescaped (invalid UTF-8 and lone surrogates become
    /// U+FFFD, as in Go).
    fn string(&mut self) -> Option<String> {
        if self.peek()? != b'"' {
            return None;
        }
        self.pos += 1;
        let mut raw: Vec<u8> = Vec::new();
        loop {
            let byte = self.peek()?;
            self.pos += 1;
            match byte {
                b'"' => return Some(String::from_utf8_lossy(&raw).into_owned()),
                b'\\' => {
                    let escape = self.peek()?;
                    self.pos += 1;
                    let c = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    let mut buf = [0; 4];
                    raw.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                _ => raw.push(byte),
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.pos..self.pos + 4)?;
        let text = std::str::from_utf8(digits).ok()?;
        let code = u32::from_str_radix(text, 16).ok()?;
        self.pos += 4;
        Some(code)
    }

    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first)
            && self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u".as_slice())
        {
            let saved = self.pos;
            self.pos += 2;
            if let Some(second) = self.hex4()
                && (0xDC00..0xE000).contains(&second)
            {
                let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                return Some(char::from_u32(code).unwrap_or('\u{FFFD}'));
            }
            self.pos = saved;
        }
        Some(char::from_u32(first).unwrap_or('\u{FFFD}'))
    }
}

// ---------------------------------------------------------------------------------------------
// YAML duplicate keys

/// A YAML node, as a YAML parser read it, for the duplicate key check.
#[derive(Clone, Debug, PartialEq)]
pub enum YamlNode {
    /// A scalar.
    Scalar {
        /// Its line (1-based).
        line: usize,
        /// Its text after unescaping.
        text: String,
        /// Whether it is a plain (unquoted, untagged) scalar, whose type yaml.v2 resolves.
        plain: bool,
    },
    /// A sequence.
    Sequence {
        /// The line it starts on.
        line: usize,
        /// Its items.
        items: Vec<YamlNode>,
    },
    /// A mapping.
    Mapping {
        /// The line it starts on.
        line: usize,
        /// Its entries in document order, duplicates included.
        entries: Vec<(YamlNode, YamlNode)>,
    },
}

impl YamlNode {
    fn line(&self) -> usize {
        match self {
            YamlNode::Scalar { line, .. }
            | YamlNode::Sequence { line, .. }
            | YamlNode::Mapping { line, .. } => *line,
        }
    }
}

/// A mapping key as yaml.v2 decodes it into `interface{}`: keys are equal when their Go
/// values are.
#[derive(Clone, Debug, PartialEq)]
enum YamlKey {
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(String),
    Other,
}

impl YamlKey {
    /// Go's `%#v` of the key.
    fn go_syntax(&self) -> String {
        match self {
            YamlKey::Null => "<nil>".to_owned(),
            YamlKey::Bool(b) => b.to_string(),
            YamlKey::Int(i) => i.to_string(),
            YamlKey::Float(bits) => go_float(f64::from_bits(*bits)),
            YamlKey::Str(s) => go_quote(s),
            YamlKey::Other => String::new(),
        }
    }
}

/// yaml.v2's resolution of a plain scalar (YAML 1.1 booleans, `~`/`null`, integers in bases
/// 2, 8, 10 and 16 with `_` separators, floats including `.inf` and `.nan`).
fn resolve_plain(text: &str) -> YamlKey {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return YamlKey::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "true" | "True" | "TRUE" => {
            return YamlKey::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "false" | "False" | "FALSE" => {
            return YamlKey::Bool(false);
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return YamlKey::Float(f64::INFINITY.to_bits());
        }
        "-.inf" | "-.Inf" | "-.INF" => return YamlKey::Float(f64::NEG_INFINITY.to_bits()),
        ".nan" | ".NaN" | ".NAN" => return YamlKey::Float(f64::NAN.to_bits()),
        _ => {}
    }
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    if let Some(int) = parse_go_int(&plain) {
        return YamlKey::Int(int);
    }
    if is_yaml_float(text)
        && let Ok(float) = plain.parse::<f64>()
    {
        return YamlKey::Float(float.to_bits());
    }
    YamlKey::Str(text.to_owned())
}

/// Go's `strconv.ParseInt(s, 0, 64)`: an optional sign, then `0x`, `0o`, `0b`, a leading `0`
/// (octal) or decimal digits.
fn parse_go_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, text.get(1..)?),
        b'+' => (false, text.get(1..)?),
        _ => (false, text),
    };
    let lower = digits.to_ascii_lowercase();
    let (radix, body) = if let Some(hex) = lower.strip_prefix("0x") {
        (16, hex.to_owned())
    } else if let Some(octal) = lower.strip_prefix("0o") {
        (8, octal.to_owned())
    } else if let Some(binary) = lower.strip_prefix("0b") {
        (2, binary.to_owned())
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, lower.get(1..)?.to_owned())
    } else {
        (10, lower)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i128::from_str_radix(&body, radix).ok()?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).ok()
}

/// yaml.v2's float pattern: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    if matches!(bytes.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == bytes.len()
}

fn yaml_key(node: &YamlNode) -> YamlKey {
    match node {
        YamlNode::Scalar {
            text, plain: true, ..
        } => resolve_plain(text),
        YamlNode::Scalar { text, .. } => YamlKey::Str(text.clone()),
        _ => YamlKey::Other,
    }
}

/// The duplicate keys of a YAML document as yaml.v2's strict mode reports them, one
/// `line <n>: key <key> already set in map` per repeat, `<n>` the line of the repeated value
/// and `<key>` Go's `%#v` of the key (`"name"`, `1`, `true`). Errors inside a value come before
/// the error of its own key. Merge keys (`<<`) set their keys into the mapping like any other.
pub fn yaml_duplicate_keys(root: &YamlNode) -> Vec<String> {
    let mut errors = Vec::new();
    yaml_walk(root, &mut errors, 0);
    errors
}

/// yaml.v2's strict error for the lines of [`yaml_duplicate_keys`] (none when empty).
pub fn yaml_strict_error(lines: &[String]) -> Option<String> {
    (!lines.is_empty()).then(|| format!("yaml: unmarshal errors:\n  {}", lines.join("\n  ")))
}

fn yaml_walk(node: &YamlNode, errors: &mut Vec<String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match node {
        YamlNode::Scalar { .. } => {}
        YamlNode::Sequence { items, .. } => {
            for item in items {
                yaml_walk(item, errors, depth + 1);
            }
        }
        YamlNode::Mapping { entries, .. } => {
            let mut keys: Vec<YamlKey> = Vec::new();
            yaml_mapping_into(entries, &mut keys, errors, depth);
        }
    }
}

fn yaml_mapping_into(
    entries: &[(YamlNode, YamlNode)],
    keys: &mut Vec<YamlKey>,
    errors: &mut Vec<String>,
    depth: usize,
) {
    for (key, value) in entries {
        if matches!(key, YamlNode::Scalar { text, plain: true, .. } if text == "<<") {
            match value {
                YamlNode::Mapping { entries, .. } => yaml_mapping_into(entries, keys, errors, depth + 1),
                YamlNode::Sequence { items, .. } => {
                    // Earlier mappings take precedence: yaml.v2 merges them last.
                    for item in items.iter().rev() {
                        if let YamlNode::Mapping { entries, .. } = item {
                            yaml_mapping_into(entries, keys, errors, depth + 1);
                        }
                    }
                }
                YamlNode::Scalar { .. } => {}
            }
            continue;
        }
        let key = yaml_key(key);
        yaml_walk(value, errors, depth + 1);
        if key == YamlKey::Other {
            continue;
        }
        let repeated = keys.iter().any(|seen| match (seen, &key) {
            (YamlKey::Float(a), YamlKey::Float(b)) => f64::from_bits(*a) == f64::from_bits(*b),
            (a, b) => a == b,
        });
        if repeated {
            errors.push(format!(
                "line {}: key {} already set in map",
                value.line(),
                key.go_syntax()
            ));
        } else {
            keys.push(key);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Go's rendering of a decoded patch

/// Go's `fmt.Sprintf("%+v", v)` of a JSON document decoded into `map[string]interface{}`
/// (integers kept as `int64`): `map[metadata:map[name:a] spec:map[replicas:2]]`, keys sorted,
/// list items separated by spaces, `<nil>` for null.
pub fn go_value(value: &Value) -> String {
    let mut out = String::new();
    write_go_value(value, &mut out, 0);
    out
}

fn write_go_value(value: &Value, out: &mut String, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_i64() {
            Some(int) => out.push_str(&int.to_string()),
            None => out.push_str(&go_float(n.as_f64().unwrap_or(0.0))),
        },
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_go_value(item, out, depth + 1);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(key);
                out.push(':');
                write_go_value(item, out, depth + 1);
            }
            out.push(']');
        }
    }
}

/// Go's `%v` of a `float64` (`strconv.FormatFloat(f, 'g', -1, 64)`): the shortest
/// representation, in exponent form when the exponent is below -4 or at least 6 (`1e+06`,
/// `1.5e-05`, `123456`).
fn go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    // Rust's `{:e}` is the shortest round-trip form too: `1.5e-5`.
    let scientific = format!("{value:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        return format!("{value}");
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

// ---------------------------------------------------------------------------------------------
// Warning headers

/// Upstream's limit on the runes of all warnings of a response; beyond it, every warning is
/// cut to [`TRUNCATE_ITEM_RUNES`] and later ones are dropped once the limit is reached again.
const TRUNCATE_AT_TOTAL_RUNES: usize = 4 * 1024;
/// The length warnings are cut to when truncating.
const TRUNCATE_ITEM_RUNES: usize = 256;

/// The `Warning` header value of one warning: `299 - "<text>"` with `"` and `\` escaped; none
/// for text with control characters (upstream's `NewWarningHeader`).
pub fn warning_header(text: &str) -> Option<String> {
    if text.chars().any(char::is_control) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str("299 - \"");
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// The `Warning` headers of a response carrying `warnings` in order, as upstream's warning
/// recorder writes them: empty and repeated texts dropped; when all texts exceed 4096 runes,
/// each is cut to 256 runes and those past the limit are left out.
pub fn warning_headers(warnings: &[String]) -> Vec<String> {
    let mut recorded: HashSet<&str> = HashSet::new();
    let mut ordered: Vec<&str> = Vec::new();
    let mut headers = Vec::new();
    let mut written = 0;
    let mut truncating = false;
    let cut = |text: &str| -> (String, usize) {
        let runes = text.chars().count();
        if runes > TRUNCATE_ITEM_RUNES {
            (
                text.chars().take(TRUNCATE_ITEM_RUNES).collect(),
                TRUNCATE_ITEM_RUNES,
            )
        } else {
            (text.to_owned(), runes)
        }
    };
    for text in warnings {
        if text.is_empty() {
            continue;
        }
        if written >= TRUNCATE_AT_TOTAL_RUNES && truncating {
            break;
        }
        if !recorded.insert(text.as_str()) {
            continue;
        }
        ordered.push(text);
        let (text, runes) = if truncating {
            cut(text)
        } else {
            (text.clone(), text.chars().count())
        };
        let Some(header) = warning_header(&text) else {
            continue;
        };
        if written + runes <= TRUNCATE_AT_TOTAL_RUNES || truncating {
            written += runes;
            headers.push(header);
            continue;
        }
        truncating = true;
        written = 0;
        headers.clear();
        for earlier in &ordered {
            let (text, runes) = cut(earlier);
            if let Some(header) = warning_header(&text) {
                written += runes;
                headers.push(header);
            }
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const POD: &str = "io.k8s.api.core.v1.Pod";
    const CRD: &str = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition";

    fn strict(body: &str, definition: &str) -> Vec<String> {
        json_strict_errors(body.as_bytes(), definition, Schema::builtin())
    }

    #[test]
    fn directives_parse_with_warn_as_default() {
        assert_eq!(Directive::parse(""), Some(Directive::Warn));
        assert_eq!(Directive::parse("Warn"), Some(Directive::Warn));
        assert_eq!(Directive::parse("Strict"), Some(Directive::Strict));
        assert_eq!(Directive::parse("Ignore"), Some(Directive::Ignore));
        assert_eq!(Directive::parse("strict"), None);
        assert!(!Directive::Ignore.checks());
        assert!(Directive::Warn.checks() && Directive::Strict.checks());
    }

    #[test]
    fn unknown_and_duplicate_fields_of_a_pod_in_document_order() {
        let body = r#"{"apiVersion":"v1","kind":"Pod",
            "metadata":{"name":"a","labels":{"x":"1","x":"2"},"name":"b"},
            "spec":{"foo":1,
                "containers":[{"name":"c","image":"i","bar":{"baz":1,"baz":2}},
                              {"name":"d","ports":[{"containerPort":80,"qux":true}]}],
                "nodeSelector":{"k":"v","k":"w"},
                "foo":2},
            "status":{"phase":"Running","phase":"Failed"},
            "extra":1}"#;
        assert_eq!(
            strict(body, POD),
            [
                r#"duplicate field "metadata.labels.x""#,
                r#"duplicate field "metadata.name""#,
                r#"unknown field "spec.foo""#,
                r#"unknown field "spec.containers[0].bar""#,
                r#"unknown field "spec.containers[1].ports[0].qux""#,
                r#"duplicate field "spec.nodeSelector.k""#,
                r#"duplicate field "status.phase""#,
                r#"unknown field "extra""#,
            ]
        );
        assert!(
            strict(
                r#"{"apiVersion":"v1","kind":"Pod","spec":{"containers":[]}}"#,
                POD
            )
            .is_empty()
        );
    }

    #[test]
    fn repeated_structs_are_walked_again_and_errors_deduplicated() {
        assert_eq!(
            strict(r#"{"spec":{"x":1},"spec":{"x":2}}"#, POD),
            [r#"unknown field "spec.x""#, r#"duplicate field "spec""#]
        );
        // A repeated unknown key is one unknown field, not a duplicate.
        assert_eq!(
            strict(r#"{"spec":{"foo":{"a":1,"a":2},"foo":3}}"#, POD),
            [r#"unknown field "spec.foo""#]
        );
    }

    #[test]
    fn self_decoding_types_are_not_looked_into() {
        let revision = r#"{"data":{"anything":1,"anything":{"x":1}},"revision":1,"zz":1}"#;
        assert_eq!(
            strict(revision, "io.k8s.api.apps.v1.ControllerRevision"),
            [r#"unknown field "zz""#]
        );
        let pod = r#"{"spec":{"containers":[{"resources":{"limits":{"cpu":{"a":1,"a":1}}},
            "livenessProbe":{"httpGet":{"port":{"x":1}}}}]},
            "metadata":{"creationTimestamp":{"y":1},"managedFields":[{"fieldsV1":{"f:a":{},"f:a":{}}}]}}"#;
        assert!(strict(pod, POD).is_empty(), "{:?}", strict(pod, POD));
        // Values of the wrong shape are type errors for the decoder, not strict errors.
        assert!(
            strict(
                r#"{"spec":{"containers":{"a":{"b":1}}},"metadata":[{"x":1}]}"#,
                POD
            )
            .is_empty()
        );
    }

    #[test]
    fn maps_of_structs_show_their_keys_except_in_the_unstructured_converter() {
        let crd = json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {"a": {"type": "string", "bogus": 1}}}}}]}});
        let body = crd.to_string();
        assert_eq!(
            strict(&body, CRD),
            [r#"unknown field "spec.versions[0].schema.openAPIV3Schema.properties.a.bogus""#]
        );
        assert_eq!(
            unknown_fields(&crd, CRD, Schema::builtin()),
            ["spec.versions[0].schema.openAPIV3Schema.properties.a.bogus"]
        );
        assert_eq!(
            unknown_fields_unstructured(&crd, CRD, Schema::builtin()),
            [r#"unknown field "spec.versions[0].schema.openAPIV3Schema.properties.bogus""#]
        );
    }

    #[test]
    fn unknown_fields_of_values_follow_the_sorted_keys() {
        let pod = json!({
            "zz": 1,
            "metadata": {"name": "a", "labels": {"any": "thing"}, "nope": true},
            "spec": {"foo": 1, "containers": [{"name": "c"}, {"name": "d", "bar": 2}]},
        });
        assert_eq!(
            unknown_fields(&pod, POD, Schema::builtin()),
            ["metadata.nope", "spec.containers[1].bar", "spec.foo", "zz"]
        );
        assert_eq!(
            unknown_fields_unstructured(&pod, POD, Schema::builtin()),
            [
                r#"unknown field "metadata.nope""#,
                r#"unknown field "spec.containers[1].bar""#,
                r#"unknown field "spec.foo""#,
                r#"unknown field "zz""#,
            ]
        );
    }

    #[test]
    fn duplicates_of_untyped_documents_at_every_depth() {
        let body = br#"{"a":{"b":1,"b":{"c":[{"d":1,"d":2}]}},"e":[[{"f":1,"f":1}]],"a":3,"a":4}"#;
        assert_eq!(duplicate_fields(body), ["a.b", "a.b.c[0].d", "e[0][0].f", "a"]);
        assert_eq!(
            patch_duplicate_errors(br#"{"metadata":{"labels":{"a":"1","a":"2"}}}"#),
            [r#"duplicate field "metadata.labels.a""#]
        );
        assert!(duplicate_fields(br#"{"a":1,"b":{"a":1}}"#).is_empty());
        assert!(duplicate_fields(b"{not json").is_empty());
        // Escaped keys are compared and shown unescaped.
        assert_eq!(duplicate_fields(br#"{"\u0041":1,"A":2}"#), ["A"]);
    }

    #[test]
    fn json_patch_operations_are_typed() {
        let body = br#"[{"op":"add","path":"/x","value":{"k":1,"k":2},"foo":1,"op":"replace"},
                        {"op":"remove","path":"/y","from":"","bar":[1]}]"#;
        assert_eq!(
            json_patch_strict_errors(body),
            [
                r#"json patch duplicate field "[0].value.k""#,
                r#"json patch unknown field "[0].foo""#,
                r#"json patch duplicate field "[0].op""#,
                r#"json patch unknown field "[1].bar""#,
            ]
        );
    }

    #[test]
    fn at_most_a_hundred_errors_are_kept() {
        let fields: Vec<String> = (0..150).map(|i| format!("\"f{i}\":1")).collect();
        let body = format!("{{\"spec\":{{{}}}}}", fields.join(","));
        let errors = strict(&body, POD);
        assert_eq!(errors.len(), 100);
        assert_eq!(errors[99], r#"unknown field "spec.f99""#);
    }

    #[test]
    fn paths_are_quoted_as_go_quotes_them() {
        assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(
            go_quote("é\n\t\u{1}\u{7f}\u{a0}\u{200b}😀"),
            r#""é\n\t\x01\x7f\u00a0\u200b😀""#
        );
        assert_eq!(
            strict(r#"{"spec":{"fo\"o":1,"ba\nr":2}}"#, POD),
            [r#"unknown field "spec.fo\"o""#, r#"unknown field "spec.ba\nr""#]
        );
        assert_eq!(
            strict_decoding_error(&[
                r#"unknown field "spec.foo""#.into(),
                r#"duplicate field "a""#.into()
            ]),
            r#"strict decoding error: unknown field "spec.foo", duplicate field "a""#
        );
    }

    fn scalar(line: usize, text: &str) -> YamlNode {
        YamlNode::Scalar {
            line,
            text: text.into(),
            plain: true,
        }
    }

    fn quoted(line: usize, text: &str) -> YamlNode {
        YamlNode::Scalar {
            line,
            text: text.into(),
            plain: false,
        }
    }

    #[test]
    fn yaml_duplicate_keys_as_yaml_v2_reports_them() {
        // metadata:            1
        //   name: a            2
        //   name: b            3
        //   labels:            4
        //     x: "1"           5
        //     x:               6
        //       deep: 1        7
        //       deep: 2        8
        // 1: one               9
        // "1": string one      10
        // 0x1: hex one         11
        // yes: true            12
        // true: again          13
        let labels = YamlNode::Mapping {
            line: 5,
            entries: vec![
                (scalar(5, "x"), quoted(5, "1")),
                (
                    scalar(6, "x"),
                    YamlNode::Mapping {
                        line: 7,
                        entries: vec![
                            (scalar(7, "deep"), scalar(7, "1")),
                            (scalar(8, "deep"), scalar(8, "2")),
                        ],
                    },
                ),
            ],
        };
        let metadata = YamlNode::Mapping {
            line: 2,
            entries: vec![
                (scalar(2, "name"), scalar(2, "a")),
                (scalar(3, "name"), scalar(3, "b")),
                (scalar(4, "labels"), labels),
            ],
        };
        let root = YamlNode::Mapping {
            line: 1,
            entries: vec![
                (scalar(1, "metadata"), metadata),
                (scalar(9, "1"), scalar(9, "one")),
                (quoted(10, "1"), scalar(10, "string one")),
                (scalar(11, "0x1"), scalar(11, "hex one")),
                (scalar(12, "yes"), scalar(12, "true")),
                (scalar(13, "true"), scalar(13, "again")),
            ],
        };
        let lines = yaml_duplicate_keys(&root);
        assert_eq!(
            lines,
            [
                r#"line 3: key "name" already set in map"#,
                r#"line 8: key "deep" already set in map"#,
                r#"line 7: key "x" already set in map"#,
                "line 11: key 1 already set in map",
                "line 13: key true already set in map",
            ]
        );
        let error = yaml_strict_error(&lines).unwrap();
        assert!(
            error.starts_with("yaml: unmarshal errors:\n  line 3: key \"name\" already set in map\n  line 8")
        );
        assert_eq!(
            strict_warnings(std::slice::from_ref(&error))[..2],
            [lines[0].clone(), lines[1].clone()]
        );
        assert_eq!(
            strict_warnings(&[
                format!("error converting YAML to JSON: {error}"),
                "unknown field \"a\"".into()
            ])
            .len(),
            6
        );
        assert_eq!(yaml_strict_error(&[]), None);
    }

    #[test]
    fn yaml_merge_keys_set_keys_like_any_other() {
        let base = YamlNode::Mapping {
            line: 2,
            entries: vec![(scalar(2, "a"), scalar(2, "1"))],
        };
        let root = YamlNode::Mapping {
            line: 1,
            entries: vec![(scalar(1, "<<"), base), (scalar(3, "a"), scalar(3, "2"))],
        };
        assert_eq!(
            yaml_duplicate_keys(&root),
            [r#"line 3: key "a" already set in map"#]
        );
    }

    #[test]
    fn yaml_plain_scalars_resolve_as_yaml_v2_resolves_them() {
        assert_eq!(resolve_plain("~"), YamlKey::Null);
        assert_eq!(resolve_plain("On"), YamlKey::Bool(true));
        assert_eq!(resolve_plain("1_000"), YamlKey::Int(1000));
        assert_eq!(resolve_plain("010"), YamlKey::Int(8));
        assert_eq!(resolve_plain("-0b11"), YamlKey::Int(-3));
        assert_eq!(resolve_plain("1.5"), YamlKey::Float(1.5f64.to_bits()));
        assert_eq!(resolve_plain("1e3"), YamlKey::Float(1000f64.to_bits()));
        assert_eq!(resolve_plain("1.2.3"), YamlKey::Str("1.2.3".into()));
        assert_eq!(resolve_plain("name"), YamlKey::Str("name".into()));
        assert_eq!(YamlKey::Float(1.5f64.to_bits()).go_syntax(), "1.5");
        assert_eq!(YamlKey::Null.go_syntax(), "<nil>");
    }

    #[test]
    fn patches_render_as_go_maps() {
        let patch =
            json!({"spec": {"replicas": 2, "x": [1, "a", null, true, 1.5]}, "metadata": {"name": "a"}});
        assert_eq!(
            go_value(&patch),
            "map[metadata:map[name:a] spec:map[replicas:2 x:[1 a <nil> true 1.5]]]"
        );
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(1e100), "1e+100");
        assert_eq!(go_float(-2.5), "-2.5");
    }

    #[test]
    fn warning_headers_escape_deduplicate_and_truncate() {
        assert_eq!(
            warning_header(r#"he said "hi" \o/ é"#).unwrap(),
            r#"299 - "he said \"hi\" \\o/ é""#
        );
        assert_eq!(warning_header("line\nbreak"), None);
        let warnings: Vec<String> = ["a", "", "b", "a", "bad\u{7}", "c"].map(String::from).to_vec();
        assert_eq!(
            warning_headers(&warnings),
            [r#"299 - "a""#, r#"299 - "b""#, r#"299 - "c""#]
        );
        let long: Vec<String> = (0..20).map(|i| format!("{i:03}{}", "x".repeat(297))).collect();
        let headers = warning_headers(&long);
        assert_eq!(headers.len(), 16);
        assert!(
            headers.iter().all(|h| h.chars().count() == 256 + 8),
            "{}",
            headers[0].len()
        );
        assert!(headers[15].starts_with("299 - \"015"));
        let fits: Vec<String> = (0..13).map(|i| format!("{i:03}{}", "x".repeat(297))).collect();
        assert!(warning_headers(&fits).iter().all(|h| h.len() == 300 + 8));
    }
}
