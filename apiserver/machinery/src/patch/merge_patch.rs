//! JSON Merge Patch (RFC 7386, `application/merge-patch+json`) as `jsonpatch.MergePatch` of
//! `gopkg.in/evanphx/json-patch.v4` applies it in kube-apiserver: `null` deletes a member,
//! objects merge recursively, everything else replaces; `null`s inside values that are added or
//! that replace a non-object are pruned from objects (also objects nested in lists), while a
//! non-object replacing an object is taken as it is.

use serde_json::{Map, Value};

use super::PatchError;

/// `jsonpatch.ErrBadJSONPatch`.
const ERR_BAD_JSON_PATCH: &str = "Invalid JSON Patch";
/// `jsonpatch.ErrBadJSONDoc`.
const ERR_BAD_JSON_DOC: &str = "Invalid JSON Document";

/// Applies a merge patch. A patch that is neither an object nor a list replaces the document
/// (RFC 7386); kube-apiserver refuses such patches instead, see [`try_apply_merge_patch`].
pub fn apply_merge_patch(document: &Value, patch: &Value) -> Value {
    match (document, patch) {
        (Value::Object(doc), Value::Object(patch)) => {
            let mut doc = doc.clone();
            merge_objects(&mut doc, patch);
            Value::Object(doc)
        }
        (_, Value::Object(_) | Value::Array(_)) => pruned(patch.clone()),
        (_, other) => other.clone(),
    }
}

/// Applies a merge patch with kube-apiserver's checks: a `null` or scalar patch is
/// [`PatchError::BadRequest`] `Invalid JSON Patch`, a `null` document is the unclassified (500)
/// `Invalid JSON Document`. A list patch replaces the whole document (the caller's decoding of
/// the result into an object then fails, as upstream's does).
pub fn try_apply_merge_patch(document: &Value, patch: &Value) -> Result<Value, PatchError> {
    if document.is_null() {
        return Err(PatchError::Internal(ERR_BAD_JSON_DOC.to_string()));
    }
    match patch {
        Value::Object(_) | Value::Array(_) => Ok(apply_merge_patch(document, patch)),
        _ => Err(PatchError::BadRequest(ERR_BAD_JSON_PATCH.to_string())),
    }
}

/// `mergeDocs`: applies each member of `patch` to `doc`.
fn merge_objects(doc: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            doc.remove(key);
            continue;
        }
        match doc.get_mut(key) {
            Some(current) if !current.is_null() => {
                let merged = merge_value(current.take(), value);
                *current = merged;
            }
            _ => {
                doc.insert(key.clone(), pruned(value.clone()));
            }
        }
    }
}

/// `merge`: an object patch merges into an object; a non-object current value is replaced by the
/// pruned patch; a non-object patch replaces an object as it is.
fn merge_value(current: Value, patch: &Value) -> Value {
    match (current, patch) {
        (Value::Object(mut current), Value::Object(patch)) => {
            merge_objects(&mut current, patch);
            Value::Object(current)
        }
        (Value::Object(_), patch) => patch.clone(),
        (_, patch) => pruned(patch.clone()),
    }
}

/// `pruneNulls`: removes `null` members of objects, recursively, also inside lists (whose own
/// `null` elements stay).
fn pruned(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, pruned(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(pruned).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[track_caller]
    #[allow(clippy::needless_pass_by_value)]
    fn check(doc: Value, patch: Value, expected: Value) {
        assert_eq!(apply_merge_patch(&doc, &patch), expected, "patch {patch}");
        assert_eq!(try_apply_merge_patch(&doc, &patch), Ok(expected), "patch {patch}");
    }

    #[test]
    fn rfc7386_examples() {
        let doc = json!({"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"},
            "tags": ["example", "sample"], "content": "This will be unchanged"});
        let patch = json!({"title": "Hello!", "phoneNumber": "+01-123-456-7890",
            "author": {"familyName": null}, "tags": ["example"]});
        check(
            doc,
            patch,
            json!({"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"],
            "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"}),
        );

        check(json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"}));
        check(json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"}));
        check(json!({"a": "b"}), json!({"a": null}), json!({}));
        check(json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"}));
        check(json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"}));
        check(json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]}));
        check(
            json!({"a": {"b": "c"}}),
            json!({"a": {"b": "d", "c": null}}),
            json!({"a": {"b": "d"}}),
        );
        check(json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]}));
        check(json!({"e": null}), json!({"a": 1}), json!({"a": 1, "e": null}));
        check(
            json!({}),
            json!({"a": {"bb": {"ccc": null}}}),
            json!({"a": {"bb": {}}}),
        );
        check(
            json!({"a": "x"}),
            json!({"a": {"b": null, "c": 1}}),
            json!({"a": {"c": 1}}),
        );
    }

    #[test]
    fn nulls_are_pruned_as_upstream_prunes_them() {
        // Added values and values replacing non-objects lose their null members, also inside lists.
        check(
            json!({}),
            json!({"a": [{"b": null, "c": 1}, null]}),
            json!({"a": [{"c": 1}, null]}),
        );
        check(json!({"a": [1]}), json!({"a": [{"b": null}]}), json!({"a": [{}]}));
        check(json!({"a": null}), json!({"a": {"b": null}}), json!({"a": {}}));
        // A list replacing an object is taken as it is.
        check(
            json!({"a": {"x": 1}}),
            json!({"a": [{"b": null}]}),
            json!({"a": [{"b": null}]}),
        );
    }

    #[test]
    fn non_object_patches() {
        // A list replaces the document (pruned); kube-apiserver then fails to decode it.
        check(json!({"a": 1}), json!([{"a": null}, 1]), json!([{}, 1]));
        check(json!([1]), json!({"a": null, "b": 1}), json!({"b": 1}));
        assert_eq!(apply_merge_patch(&json!({"a": 1}), &json!("x")), json!("x"));
        for patch in [Value::Null, json!("x"), json!(1), json!(true)] {
            assert_eq!(
                try_apply_merge_patch(&json!({"a": 1}), &patch),
                Err(PatchError::BadRequest("Invalid JSON Patch".into()))
            );
        }
        assert_eq!(
            try_apply_merge_patch(&Value::Null, &json!({})),
            Err(PatchError::Internal("Invalid JSON Document".into()))
        );
    }
}
