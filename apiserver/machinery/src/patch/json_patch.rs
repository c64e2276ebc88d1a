//! JSON Patch (RFC 6902, `application/json-patch+json`) with the behaviour and error messages of
//! `gopkg.in/evanphx/json-patch.v4` v4.13.0 as kube-apiserver v1.35 configures it (negative
//! indices allowed, copies limited to 3 MiB, at most 10000 operations).
//!
//! Deliberate upstream quirks kept: the first segment of a path is ignored (`a/b` means `/b`),
//! `add` with an empty path fails, `replace` of a missing object key adds it (only a missing
//! parent or array index fails), `copy` from a missing object key copies `null`, a `test` of a
//! missing key against `null` (or without a value) passes, and `-1` addresses the last element.

use serde_json::{Map, Value};

use super::PatchError;

/// The most operations kube-apiserver accepts in one JSON patch (`maxJSONPatchOperations`).
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The most bytes `copy` operations may add in one JSON patch (`JSONPatchMaxCopyBytes`, 3 MiB).
pub const MAX_JSON_PATCH_COPY_BYTES: usize = 3 * 1024 * 1024;

const ERR_MISSING: &str = "missing value";
const ERR_INVALID_INDEX: &str = "invalid index referenced";
const ERR_TEST_FAILED: &str = "test failed";

/// Applies a JSON patch document (a list of operations) to `document`.
///
/// Errors as kube-apiserver classifies them: a patch that is not a list of objects is
/// [`PatchError::BadRequest`] (Go's decoding message), more than [`MAX_JSON_PATCH_OPERATIONS`]
/// operations is [`PatchError::RequestEntityTooLarge`], and every failure while applying (missing
/// path, failed `test`, bad index, unknown `op`) is [`PatchError::Unprocessable`] carrying the
/// library's message, e.g. `add operation does not apply: doc is missing path: "/a/b": missing
/// value` or `testing value /a failed: test failed`. A `null` patch changes nothing.
pub fn apply_json_patch(document: &Value, patch: &Value) -> Result<Value, PatchError> {
    let operations = decode_patch(patch)?;
    if operations.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::RequestEntityTooLarge(format!(
            "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
            operations.len()
        )));
    }
    if !matches!(document, Value::Object(_) | Value::Array(_)) {
        return Err(PatchError::Unprocessable(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.partialDoc",
            json_kind(document)
        )));
    }
    let mut doc = document.clone();
    let mut copied = 0usize;
    for operation in operations {
        apply_operation(&mut doc, operation, &mut copied).map_err(PatchError::Unprocessable)?;
    }
    Ok(doc)
}

/// What Go's decoder calls a JSON value in "cannot unmarshal X into ..." messages.
fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `jsonpatch.DecodePatch`: a list whose elements are objects (or `null`, an operation without
/// fields).
fn decode_patch(patch: &Value) -> Result<Vec<Option<&Map<String, Value>>>, PatchError> {
    match patch {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => {
            let mut operations = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::Object(op) => operations.push(Some(op)),
                    Value::Null => operations.push(None),
                    other => {
                        return Err(PatchError::BadRequest(format!(
                            "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                            json_kind(other)
                        )));
                    }
                }
            }
            Ok(operations)
        }
        other => Err(PatchError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
            json_kind(other)
        ))),
    }
}

/// One operation's fields, read the way `jsonpatch.Operation` reads them.
struct Operation<'a> {
    fields: Option<&'a Map<String, Value>>,
}

impl<'a> Operation<'a> {
    fn field(&self, name: &str) -> Option<&'a Value> {
        self.fields
            .and_then(|fields| fields.get(name))
            .filter(|v| !v.is_null())
    }

    /// `Operation.Kind`: the `op` string, or `unknown`.
    fn kind(&self) -> &'a str {
        match self.field("op") {
            Some(Value::String(op)) => op,
            _ => "unknown",
        }
    }

    /// A string field; `Err(None)` when it is absent or null, `Err(Some(message))` when it is not
    /// a string.
    fn string(&self, name: &str) -> Result<&'a str, Option<String>> {
        match self.field(name) {
            None => Err(None),
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(Some(format!(
                "json: cannot unmarshal {} into Go value of type string",
                json_kind(other)
            ))),
        }
    }

    /// `Operation.Path` with its error message.
    fn path(&self) -> Result<&'a str, String> {
        self.string("path")
            .map_err(|e| e.unwrap_or_else(|| format!("operation missing path field: {ERR_MISSING}")))
    }

    /// `Operation.From` with its error message.
    fn from(&self) -> Result<&'a str, String> {
        self.string("from")
            .map_err(|e| e.unwrap_or_else(|| format!("operation, missing from field: {ERR_MISSING}")))
    }

    /// The `value` member: `None` when absent, `Some(Null)` when null.
    fn value(&self) -> Option<&'a Value> {
        self.fields.and_then(|fields| fields.get("value"))
    }

    /// The value an `add` or `replace` stores: absent and null both store `null`.
    fn value_or_null(&self) -> Value {
        self.value().cloned().unwrap_or(Value::Null)
    }
}

fn apply_operation(
    doc: &mut Value,
    fields: Option<&Map<String, Value>>,
    copied: &mut usize,
) -> Result<(), String> {
    let op = Operation { fields };
    match op.kind() {
        "add" => add(doc, &op),
        "remove" => remove(doc, &op),
        "replace" => replace(doc, &op),
        "move" => move_value(doc, &op),
        "test" => test(doc, &op),
        "copy" => copy(doc, &op, copied),
        other => Err(format!("Unexpected kind: {other}")),
    }
}

fn add(doc: &mut Value, op: &Operation<'_>) -> Result<(), String> {
    let path = op
        .path()
        .map_err(|_| format!("add operation failed to decode path: {ERR_MISSING}"))?;
    let Some((container, key)) = find_object(doc, path) else {
        return Err(format!(
            "add operation does not apply: doc is missing path: \"{path}\": {ERR_MISSING}"
        ));
    };
    container_add(container, &key, op.value_or_null())
        .map_err(|e| format!("error in add for path: '{path}': {e}"))
}

fn remove(doc: &mut Value, op: &Operation<'_>) -> Result<(), String> {
    let path = op
        .path()
        .map_err(|_| format!("remove operation failed to decode path: {ERR_MISSING}"))?;
    let Some((container, key)) = find_object(doc, path) else {
        return Err(format!(
            "remove operation does not apply: doc is missing path: \"{path}\": {ERR_MISSING}"
        ));
    };
    container_remove(container, &key).map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn replace(doc: &mut Value, op: &Operation<'_>) -> Result<(), String> {
    let path = op
        .path()
        .map_err(|e| format!("replace operation failed to decode path: {e}"))?;
    if path.is_empty() {
        // The whole document; upstream formats a nil error with %w here.
        return match op.value() {
            Some(value @ (Value::Object(_) | Value::Array(_))) => {
                *doc = value.clone();
                Ok(())
            }
            _ => Err("replace operation value must be object or array: %!w(<nil>)".to_string()),
        };
    }
    let Some((container, key)) = find_object(doc, path) else {
        return Err(format!(
            "replace operation does not apply: doc is missing path: {path}: {ERR_MISSING}"
        ));
    };
    if container_get(container, &key).is_err() {
        return Err(format!(
            "replace operation does not apply: doc is missing key: {path}: {ERR_MISSING}"
        ));
    }
    container_set(container, &key, op.value_or_null())
        .map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn move_value(doc: &mut Value, op: &Operation<'_>) -> Result<(), String> {
    let from = op
        .from()
        .map_err(|e| format!("move operation failed to decode from: {e}"))?;
    let Some((container, key)) = find_object(doc, from) else {
        return Err(format!(
            "move operation does not apply: doc is missing from path: {from}: {ERR_MISSING}"
        ));
    };
    let value = container_get(container, &key)
        .map_err(|e| format!("error in move for path: '{key}': {e}"))?
        .cloned();
    container_remove(container, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;

    let path = op
        .path()
        .map_err(|e| format!("move operation failed to decode path: {e}"))?;
    let Some((container, key)) = find_object(doc, path) else {
        return Err(format!(
            "move operation does not apply: doc is missing destination path: {path}: {ERR_MISSING}"
        ));
    };
    container_add(container, &key, value.unwrap_or(Value::Null))
        .map_err(|e| format!("error in move for path: '{path}': {e}"))
}

fn test(doc: &mut Value, op: &Operation<'_>) -> Result<(), String> {
    let path = op
        .path()
        .map_err(|e| format!("test operation failed to decode path: {e}"))?;
    let failed = || format!("testing value {path} failed: {ERR_TEST_FAILED}");
    if path.is_empty() {
        return match op.value() {
            Some(value) if value == &*doc => Ok(()),
            _ => Err(failed()),
        };
    }
    let Some((container, key)) = find_object(doc, path) else {
        return Err(format!(
            "test operation does not apply: is missing path: {path}: {ERR_MISSING}"
        ));
    };
    let current = container_get(container, &key)
        .map_err(|e| format!("error in test for path: '{path}': {e}"))?
        .filter(|v| !v.is_null());
    // A missing or null value matches an absent or null `value`; anything else compares as
    // JSON (numbers by representation: 1 and 1.0 differ, as they do upstream).
    match (current, op.value()) {
        (None, None | Some(Value::Null)) => Ok(()),
        (Some(current), Some(expected)) if current == expected => Ok(()),
        _ => Err(failed()),
    }
}

fn copy(doc: &mut Value, op: &Operation<'_>, copied: &mut usize) -> Result<(), String> {
    let from = op
        .from()
        .map_err(|e| format!("copy operation failed to decode from: {e}"))?;
    let Some((container, key)) = find_object(doc, from) else {
        return Err(format!(
            "copy operation does not apply: doc is missing from path: {from}: {ERR_MISSING}"
        ));
    };
    let value = container_get(container, &key)
        .map_err(|e| format!("error in copy for from: '{from}': {e}"))?
        .cloned();

    let path = op
        .path()
        .map_err(|_| format!("copy operation failed to decode path: {ERR_MISSING}"))?;
    let Some((container, key)) = find_object(doc, path) else {
        return Err(format!(
            "copy operation does not apply: doc is missing destination path: {path}: {ERR_MISSING}"
        ));
    };
    // Upstream counts the bytes of the copied value as Go's encoder writes it; a missing or null
    // source is a nil node of size zero.
    *copied += match &value {
        None | Some(Value::Null) => 0,
        Some(v) => go_json_len(v),
    };
    if *copied > MAX_JSON_PATCH_COPY_BYTES {
        return Err(format!(
            "Unable to complete the copy, the accumulated size increase of copy is {copied}, \
             exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}"
        ));
    }
    container_add(container, &key, value.unwrap_or(Value::Null))
        .map_err(|e| format!("error while adding value during copy: {e}"))
}

/// RFC 6901 unescaping, left to right: `~1` is `/`, `~0` is `~`.
fn decode_key(token: &str) -> String {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.peek() {
                Some('1') => {
                    chars.next();
                    out.push('/');
                    continue;
                }
                Some('0') => {
                    chars.next();
                    out.push('~');
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// `findObject`: the container holding the last token of `path` and that token, unescaped.
/// The first segment (before the first `/`) is ignored, as upstream ignores it; intermediate
/// tokens must name existing objects or arrays.
fn find_object<'d>(doc: &'d mut Value, path: &str) -> Option<(&'d mut Value, String)> {
    let segments: Vec<&str> = path.split('/').collect();
    if segments.len() < 2 {
        return None;
    }
    let (last, parents) = segments[1..].split_last()?;
    let mut current = doc;
    for part in parents {
        let key = decode_key(part);
        let next = match current {
            Value::Object(map) => map.get_mut(&key)?,
            Value::Array(items) => {
                let index = array_get_index(items.len(), &key).ok()?;
                items.get_mut(index)?
            }
            _ => return None,
        };
        if !matches!(next, Value::Object(_) | Value::Array(_)) {
            return None;
        }
        current = next;
    }
    Some((current, decode_key(last)))
}

fn invalid_index(index: i64) -> String {
    format!("Unable to access invalid index: {index}: {ERR_INVALID_INDEX}")
}

/// `strconv.Atoi` with Go's error messages.
fn atoi(s: &str) -> Result<i64, String> {
    let syntax = || {
        format!(
            "strconv.Atoi: parsing {}: invalid syntax",
            super::strategic::go_quote(s)
        )
    };
    let range = || {
        format!(
            "strconv.Atoi: parsing {}: value out of range",
            super::strategic::go_quote(s)
        )
    };
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return Err(syntax());
    }
    let mut magnitude: u64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return Err(syntax());
        }
        magnitude = magnitude
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(b - b'0')))
            .ok_or_else(range)?;
    }
    if negative {
        match i64::try_from(magnitude) {
            Ok(m) => Ok(-m),
            Err(_) if magnitude == 1u64 << 63 => Ok(i64::MIN),
            Err(_) => Err(range()),
        }
    } else {
        i64::try_from(magnitude).map_err(|_| range())
    }
}

/// `partialArray.get`'s index resolution: negative indices count from the end.
fn array_get_index(len: usize, key: &str) -> Result<usize, String> {
    let len = len as i64;
    let mut index = atoi(key)?;
    if index < 0 {
        if index < -len {
            return Err(invalid_index(index));
        }
        index += len;
    }
    if index >= len {
        return Err(invalid_index(index));
    }
    Ok(index as usize)
}

/// `container.get`: an object's member (`None` when missing, which is not an error) or an array's
/// element.
fn container_get<'c>(container: &'c Value, key: &str) -> Result<Option<&'c Value>, String> {
    match container {
        Value::Object(map) => Ok(map.get(key)),
        Value::Array(items) => {
            let index = array_get_index(items.len(), key)?;
            Ok(items.get(index))
        }
        _ => Ok(None),
    }
}

/// `container.add`: sets an object member, or inserts into an array (`-` appends).
fn container_add(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            if key == "-" {
                items.push(value);
                return Ok(());
            }
            let mut index =
                atoi(key).map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            let size = items.len() as i64 + 1;
            if index >= size {
                return Err(invalid_index(index));
            }
            if index < 0 {
                if index < -size {
                    return Err(invalid_index(index));
                }
                index += size;
            }
            items.insert(index as usize, value);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `container.set`: replaces an object member or an existing array element.
fn container_set(container: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match container {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            let index = array_get_index(items.len(), key)?;
            if let Some(slot) = items.get_mut(index) {
                *slot = value;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `container.remove`: deletes an existing object member or array element.
fn container_remove(container: &mut Value, key: &str) -> Result<(), String> {
    match container {
        Value::Object(map) => match map.remove(key) {
            Some(_) => Ok(()),
            None => Err(format!("Unable to remove nonexistent key: {key}: {ERR_MISSING}")),
        },
        Value::Array(items) => {
            let len = items.len() as i64;
            let mut index = atoi(key)?;
            if index >= len {
                return Err(invalid_index(index));
            }
            if index < 0 {
                if index < -len {
                    return Err(invalid_index(index));
                }
                index += len;
            }
            items.remove(index as usize);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The length of `value` as Go's `json.Marshal` writes it (HTML characters escaped).
fn go_json_len(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(n) => {
            if n.is_f64() {
                let f = n.as_f64().unwrap_or(0.0);
                let abs = f.abs();
                if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
                    // Go writes 1e+21 where Rust writes 1e21.
                    let s = format!("{f:e}");
                    s.len() + usize::from(!s.contains("e-"))
                } else {
                    format!("{f}").len()
                }
            } else {
                n.to_string().len()
            }
        }
        Value::String(s) => {
            2 + s
                .chars()
                .map(|c| match c {
                    '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
                    '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => 6,
                    c if (c as u32) < 0x20 => 6,
                    c => c.len_utf8(),
                })
                .sum::<usize>()
        }
        Value::Array(items) => {
            2 + items.iter().map(go_json_len).sum::<usize>() + items.len().saturating_sub(1)
        }
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| go_json_len(&Value::String(k.clone())) + 1 + go_json_len(v))
                .sum::<usize>()
                + map.len().saturating_sub(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[track_caller]
    #[allow(clippy::needless_pass_by_value)]
    fn check(doc: Value, patch: Value, expected: Value) {
        match apply_json_patch(&doc, &patch) {
            Ok(result) => assert_eq!(result, expected, "patch {patch}"),
            Err(e) => panic!("patch {patch} failed: {e}"),
        }
    }

    #[track_caller]
    #[allow(clippy::needless_pass_by_value)]
    fn check_err(doc: Value, patch: Value, expected: PatchError) {
        assert_eq!(apply_json_patch(&doc, &patch), Err(expected), "patch {patch}");
    }

    #[track_caller]
    #[allow(clippy::needless_pass_by_value)]
    fn check_fails(doc: Value, patch: Value, message: &str) {
        check_err(doc, patch, PatchError::Unprocessable(message.to_string()));
    }

    #[test]
    fn upstream_cases() {
        // evanphx/json-patch patch_test.go `Cases`.
        check(
            json!({"foo": ["bar"]}),
            json!([{"op": "copy", "path": "/foo/0", "from": "/foo"}]),
            json!({"foo": [["bar"], "bar"]}),
        );
        check(
            json!({"foo": ["bar", "qux", "baz"]}),
            json!([{"op": "remove", "path": "/foo/-2"}]),
            json!({"foo": ["bar", "baz"]}),
        );
        check(
            json!({"foo": []}),
            json!([{"op": "add", "path": "/foo/-1", "value": "qux"}]),
            json!({"foo": ["qux"]}),
        );
        check(
            json!({"bar": [{"baz": null}]}),
            json!([{"op": "replace", "path": "/bar/0/baz", "value": 1}]),
            json!({"bar": [{"baz": 1}]}),
        );
        check(
            json!({"bar": [{"baz": 1}]}),
            json!([{"op": "replace", "path": "/bar/0/baz", "value": null}]),
            json!({"bar": [{"baz": null}]}),
        );
        check(
            json!({"bar": [null]}),
            json!([{"op": "replace", "path": "/bar/0", "value": 1}]),
            json!({"bar": [1]}),
        );
        check(
            json!({"bar": [1]}),
            json!([{"op": "replace", "path": "/bar/0", "value": null}]),
            json!({"bar": [null]}),
        );
        check(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": "qux"}]),
            json!({"baz": "qux", "foo": "bar"}),
        );
        check(
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
            json!({"foo": ["bar", "qux", "baz"]}),
        );
        check(
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/-1", "value": "qux"}]),
            json!({"foo": ["bar", "baz", "qux"]}),
        );
        check(
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "remove", "path": "/baz"}]),
            json!({"foo": "bar"}),
        );
        check(
            json!({"foo": ["bar", "qux", "baz"]}),
            json!([{"op": "remove", "path": "/foo/1"}]),
            json!({"foo": ["bar", "baz"]}),
        );
        check(
            json!({"baz": "qux", "foo": "bar"}),
            json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
            json!({"baz": "boo", "foo": "bar"}),
        );
        check(
            json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
            json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
        );
        check(
            json!({"foo": ["all", "grass", "cows", "eat"]}),
            json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
            json!({"foo": ["all", "cows", "eat", "grass"]}),
        );
        check(
            json!({"foo": ["all", "grass", "cows", "eat"]}),
            json!([{"op": "move", "from": "/foo/1", "path": "/foo/2"}]),
            json!({"foo": ["all", "cows", "grass", "eat"]}),
        );
        check(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}]),
            json!({"foo": "bar", "child": {"grandchild": {}}}),
        );
        check(
            json!({"foo": ["bar"]}),
            json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
            json!({"foo": ["bar", ["abc", "def"]]}),
        );
        check(
            json!({"foo": "bar", "qux": {"baz": 1, "bar": null}}),
            json!([{"op": "remove", "path": "/qux/bar"}]),
            json!({"foo": "bar", "qux": {"baz": 1}}),
        );
        check(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz", "value": null}]),
            json!({"baz": null, "foo": "bar"}),
        );
        check(
            json!({"foo": ["bar", "qux", "baz"]}),
            json!([{"op": "replace", "path": "/foo/1", "value": "bum"}]),
            json!({"foo": ["bar", "bum", "baz"]}),
        );
        check(
            json!([{"foo": ["bar", "qux", "baz"]}]),
            json!([{"op": "replace", "path": "/0/foo/0", "value": "bum"}]),
            json!([{"foo": ["bum", "qux", "baz"]}]),
        );
        check(
            json!([{"foo": ["bar", "qux", "baz"], "bar": ["qux", "baz"]}]),
            json!([{"op": "copy", "from": "/0/foo/0", "path": "/0/bar/0"}]),
            json!([{"foo": ["bar", "qux", "baz"], "bar": ["bar", "qux", "baz"]}]),
        );
        check(
            json!([{"foo": {"bar": ["qux", "baz"]}, "baz": {"qux": "bum"}}]),
            json!([{"op": "copy", "from": "/0/foo/bar", "path": "/0/baz/bar"}]),
            json!([{"baz": {"bar": ["qux", "baz"], "qux": "bum"}, "foo": {"bar": ["qux", "baz"]}}]),
        );
        check(
            json!({"id": "a", "parentID": "p"}),
            json!([{"op": "test", "path": "", "value": {"id": "a", "parentID": "p"}},
                   {"op": "replace", "path": "", "value": {"id": "b", "originalID": "bar", "parentID": "p"}}]),
            json!({"id": "b", "originalID": "bar", "parentID": "p"}),
        );
    }

    #[test]
    fn escapes_and_special_tokens() {
        check(
            json!({"a/b": 1, "m~n": 2}),
            json!([{"op": "replace", "path": "/a~1b", "value": 3}, {"op": "remove", "path": "/m~0n"}]),
            json!({"a/b": 3}),
        );
        // `~01` is `~1`, not `/`: unescaping is a single left-to-right pass.
        check(
            json!({"~1": 1}),
            json!([{"op": "remove", "path": "/~01"}]),
            json!({}),
        );
        // `/` addresses the empty key; the first segment of a path is ignored.
        check(
            json!({}),
            json!([{"op": "add", "path": "/", "value": 1}]),
            json!({"": 1}),
        );
        check(
            json!({"a": {}}),
            json!([{"op": "add", "path": "x/b", "value": 1}]),
            json!({"a": {}, "b": 1}),
        );
        // Indices are parsed like strconv.Atoi: a sign and leading zeros are accepted.
        check(
            json!({"a": [1, 2, 3]}),
            json!([{"op": "remove", "path": "/a/+01"}]),
            json!({"a": [1, 3]}),
        );
        check(
            json!({"a": [[1, 2]]}),
            json!([{"op": "add", "path": "/a/-1/-", "value": 3}]),
            json!({"a": [[1, 2, 3]]}),
        );
    }

    #[test]
    fn quirks_kept_from_upstream() {
        // replace of a missing object member adds it (only the parent must exist).
        check(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "/b", "value": 2}]),
            json!({"a": 1, "b": 2}),
        );
        // copy from a missing member copies null.
        check(
            json!({"a": 1}),
            json!([{"op": "copy", "from": "/missing", "path": "/b"}]),
            json!({"a": 1, "b": null}),
        );
        // add without a value adds null.
        check(
            json!({}),
            json!([{"op": "add", "path": "/a"}]),
            json!({"a": null}),
        );
        // A null patch changes nothing.
        check(json!({"a": 1}), Value::Null, json!({"a": 1}));
        check(json!({"a": 1}), json!([]), json!({"a": 1}));
    }

    #[test]
    fn test_operation() {
        let doc = json!({"baz": "qux", "foo": ["a", 2, "c"], "n": null, "o": {}, "l": []});
        check(
            doc.clone(),
            json!([{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}]),
            doc.clone(),
        );
        check(
            doc.clone(),
            json!([{"op": "test", "path": "/missing", "value": null}]),
            doc.clone(),
        );
        check(
            doc.clone(),
            json!([{"op": "test", "path": "/missing"}]),
            doc.clone(),
        );
        check(
            doc.clone(),
            json!([{"op": "test", "path": "/n", "value": null}]),
            doc.clone(),
        );
        check(
            doc.clone(),
            json!([{"op": "test", "path": "/o", "value": {}}]),
            doc.clone(),
        );
        check(
            json!({"baz/foo": "qux"}),
            json!([{"op": "test", "path": "/baz~1foo", "value": "qux"}]),
            json!({"baz/foo": "qux"}),
        );
        check_fails(
            doc.clone(),
            json!([{"op": "test", "path": "/baz", "value": "bar"}]),
            "testing value /baz failed: test failed",
        );
        check_fails(
            doc.clone(),
            json!([{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": "c"}]),
            "testing value /foo/1 failed: test failed",
        );
        check_fails(
            doc.clone(),
            json!([{"op": "test", "path": "/missing", "value": 42}]),
            "testing value /missing failed: test failed",
        );
        check_fails(
            doc.clone(),
            json!([{"op": "test", "path": "/o", "value": null}]),
            "testing value /o failed: test failed",
        );
        check_fails(
            doc.clone(),
            json!([{"op": "test", "path": "/l"}]),
            "testing value /l failed: test failed",
        );
        check_fails(
            doc.clone(),
            json!([{"op": "test", "path": "/foo/1", "value": 2.0}]),
            "testing value /foo/1 failed: test failed",
        );
        check_fails(
            doc.clone(),
            json!([{"op": "test", "path": "", "value": null}]),
            "testing value  failed: test failed",
        );
        check_fails(
            doc.clone(),
            json!([{"op": "test", "path": "/foo/9", "value": 1}]),
            "error in test for path: '/foo/9': Unable to access invalid index: 9: invalid index referenced",
        );
        check_fails(
            doc,
            json!([{"op": "test", "path": "/x/y", "value": 1}]),
            "test operation does not apply: is missing path: /x/y: missing value",
        );
    }

    #[test]
    fn application_failures_are_unprocessable() {
        check_fails(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]),
            "add operation does not apply: doc is missing path: \"/baz/bat\": missing value",
        );
        check_fails(
            json!({"a": {"b": {"d": 1}}}),
            json!([{"op": "remove", "path": "/a/b/c"}]),
            "error in remove for path: '/a/b/c': Unable to remove nonexistent key: c: missing value",
        );
        check_fails(
            json!({"a": {"b": {"d": 1}}}),
            json!([{"op": "move", "from": "/a/b/c", "path": "/a/b/e"}]),
            "error in move for path: 'c': Unable to remove nonexistent key: c: missing value",
        );
        check_fails(
            json!({"a": {"b": [1]}}),
            json!([{"op": "remove", "path": "/a/b/1"}]),
            "error in remove for path: '/a/b/1': Unable to access invalid index: 1: invalid index referenced",
        );
        check_fails(
            json!({"a": {"b": [1]}}),
            json!([{"op": "move", "from": "/a/b/1", "path": "/a/b/2"}]),
            "error in move for path: '1': Unable to access invalid index: 1: invalid index referenced",
        );
        check_fails(
            json!({"foo": "bar"}),
            json!([{"op": "add", "pathz": "/baz", "value": "qux"}]),
            "add operation failed to decode path: missing value",
        );
        check_fails(
            json!({"foo": "bar"}),
            json!([{"op": "add", "path": "", "value": "qux"}]),
            "add operation does not apply: doc is missing path: \"\": missing value",
        );
        check_fails(
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "replace", "path": "/foo/2", "value": "bum"}]),
            "replace operation does not apply: doc is missing key: /foo/2: missing value",
        );
        check_fails(
            json!({"foo": ["bar", "baz"]}),
            json!([{"op": "add", "path": "/foo/-4", "value": "bum"}]),
            "error in add for path: '/foo/-4': Unable to access invalid index: -4: invalid index referenced",
        );
        check_fails(
            json!({"name": {"foo": "bat"}}),
            json!([{"op": "replace", "path": "/foo/bar", "value": "baz"}]),
            "replace operation does not apply: doc is missing path: /foo/bar: missing value",
        );
        check_fails(
            json!({"foo": ["bar"]}),
            json!([{"op": "add", "path": "/foo/2", "value": "bum"}]),
            "error in add for path: '/foo/2': Unable to access invalid index: 2: invalid index referenced",
        );
        check_fails(
            json!({"foo": []}),
            json!([{"op": "remove", "path": "/foo/-"}]),
            "error in remove for path: '/foo/-': strconv.Atoi: parsing \"-\": invalid syntax",
        );
        check_fails(
            json!({"foo": []}),
            json!([{"op": "remove", "path": "/foo/-1"}]),
            "error in remove for path: '/foo/-1': Unable to access invalid index: -1: invalid index referenced",
        );
        check_fails(
            json!({"foo": ["bar"]}),
            json!([{"op": "remove", "path": "/foo/-2"}]),
            "error in remove for path: '/foo/-2': Unable to access invalid index: -2: invalid index referenced",
        );
        check_fails(
            json!({}),
            json!([{"op": null, "path": ""}]),
            "Unexpected kind: unknown",
        );
        check_fails(
            json!({}),
            json!([{"op": "frobnicate", "path": "/a"}]),
            "Unexpected kind: frobnicate",
        );
        check_fails(json!({}), json!([null]), "Unexpected kind: unknown");
        check_fails(
            json!({}),
            json!([{"op": "add", "path": null}]),
            "add operation failed to decode path: missing value",
        );
        check_fails(
            json!({}),
            json!([{"op": "replace", "path": 5, "value": 1}]),
            "replace operation failed to decode path: json: cannot unmarshal number into Go value of type string",
        );
        check_fails(
            json!({}),
            json!([{"op": "copy", "from": null}]),
            "copy operation failed to decode from: operation, missing from field: missing value",
        );
        check_fails(
            json!({"foo": ["bar"]}),
            json!([{"op": "copy", "path": "/foo/6666666666", "from": "/"}]),
            "error while adding value during copy: Unable to access invalid index: 6666666666: invalid index referenced",
        );
        check_fails(
            json!({"foo": ["bar"]}),
            json!([{"op": "copy", "path": "/foo/2", "from": "/foo/0"}]),
            "error while adding value during copy: Unable to access invalid index: 2: invalid index referenced",
        );
        check_fails(
            json!({"foo": ["all", "grass", "cows", "eat"]}),
            json!([{"op": "move", "from": "/foo/1", "path": "/foo/4"}]),
            "error in move for path: '/foo/4': Unable to access invalid index: 4: invalid index referenced",
        );
        check_fails(
            json!({"a": [1]}),
            json!([{"op": "add", "path": "/a/x", "value": 1}]),
            "error in add for path: '/a/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax",
        );
        check_fails(
            json!({"a": [1]}),
            json!([{"op": "remove", "path": "/a/99999999999999999999"}]),
            "error in remove for path: '/a/99999999999999999999': strconv.Atoi: parsing \"99999999999999999999\": value out of range",
        );
        check_fails(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "", "value": 1}]),
            "replace operation value must be object or array: %!w(<nil>)",
        );
        check_fails(
            json!({"a": 1}),
            json!([{"op": "add", "path": "/a/b", "value": 1}]),
            "add operation does not apply: doc is missing path: \"/a/b\": missing value",
        );
        check_fails(
            json!({"a": {}}),
            json!([{"op": "move", "from": "/a", "path": "/a/b"}]),
            "move operation does not apply: doc is missing destination path: /a/b: missing value",
        );
        // An operation failing leaves nothing half applied.
        check_fails(
            json!({"a": 1}),
            json!([{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 2}]),
            "testing value /a failed: test failed",
        );
    }

    #[test]
    fn malformed_documents_are_bad_requests() {
        check_err(
            json!({}),
            json!({"op": "add"}),
            PatchError::BadRequest(
                "json: cannot unmarshal object into Go value of type jsonpatch.Patch".into(),
            ),
        );
        check_err(
            json!({}),
            json!("x"),
            PatchError::BadRequest(
                "json: cannot unmarshal string into Go value of type jsonpatch.Patch".into(),
            ),
        );
        check_err(
            json!({}),
            json!([{"op": "add", "path": "/a", "value": 1}, 5]),
            PatchError::BadRequest(
                "json: cannot unmarshal number into Go value of type jsonpatch.Operation".into(),
            ),
        );
    }

    #[test]
    fn limits() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
            .collect();
        let err = apply_json_patch(&json!({"a": 1}), &Value::Array(ops)).unwrap_err();
        assert_eq!(
            err,
            PatchError::RequestEntityTooLarge(
                "The allowed maximum operations in a JSON patch is 10000, got 10001".into()
            )
        );
        assert_eq!(
            err.message(),
            "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"
        );

        // Each copy of a 1 MiB string adds its encoded size (with quotes); the third crosses 3 MiB.
        let big = "A".repeat(1024 * 1024);
        let copy = json!({"op": "copy", "from": "/s", "path": "/c"});
        assert!(apply_json_patch(&json!({"s": big}), &json!([copy, copy])).is_ok());
        assert_eq!(
            apply_json_patch(&json!({"s": big}), &json!([copy, copy, copy])),
            Err(PatchError::Unprocessable(format!(
                "Unable to complete the copy, the accumulated size increase of copy is {}, exceeding the limit {}",
                3 * (1024 * 1024 + 2),
                MAX_JSON_PATCH_COPY_BYTES
            )))
        );
    }

    #[test]
    fn go_encoded_lengths() {
        assert_eq!(
            go_json_len(&json!({"a": [1, "x<", null, true]})),
            r#"{"a":[1,"x\u003c",null,true]}"#.len()
        );
        assert_eq!(go_json_len(&json!(1.5)), 3);
        assert_eq!(go_json_len(&json!(1e21)), "1e+21".len());
        assert_eq!(go_json_len(&json!(1e-7)), "1e-7".len());
    }
}
