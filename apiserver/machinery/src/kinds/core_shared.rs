//! Small helpers shared by the strategies of the core/v1 kinds other than pods (namespaces,
//! config, services, events, quota, nodes, volumes): optional-field access, Go-style JSON
//! renderings of bad values, resource-list parsing, and the test helpers of those modules.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::field::{ErrorList, Path};
use crate::validation::{ParsedQuantity, parse_quantity_field};

/// The `metadata` path.
pub(super) fn meta_path() -> Path {
    Path::new("metadata")
}

/// The value of an optional string, empty when absent (Go's zero value).
pub(super) fn str_of(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or_default()
}

/// The elements of an optional list, empty when absent.
pub(super) fn list_of<T>(value: &Option<Vec<T>>) -> &[T] {
    value.as_deref().unwrap_or_default()
}

/// A string quoted as Go's JSON encoder quotes it.
pub(super) fn json_str(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A list of strings as Go's JSON encoder writes a slice (`null` when absent).
pub(super) fn json_str_list(value: &Option<Vec<String>>) -> String {
    match value {
        None => "null".to_owned(),
        Some(items) => {
            let quoted: Vec<String> = items.iter().map(|s| json_str(s)).collect();
            format!("[{}]", quoted.join(","))
        }
    }
}

/// Parses every quantity of a resource list; unparsable ones become `Invalid` errors of their
/// key (upstream rejects them while decoding the request) and are left out of the result.
pub(super) fn parse_resource_list(
    list: &Option<BTreeMap<String, Quantity>>,
    path: &Path,
) -> (BTreeMap<String, ParsedQuantity>, ErrorList) {
    let mut parsed = BTreeMap::new();
    let mut errs = ErrorList::new();
    for (key, quantity) in list.iter().flatten() {
        match parse_quantity_field(quantity, &path.key(key)) {
            Ok(q) => {
                parsed.insert(key.clone(), q);
            }
            Err(err) => errs.push(err),
        }
    }
    (parsed, errs)
}

#[cfg(test)]
pub(super) mod testing {
    //! Running the type-erased pipelines of a kind and rendering their errors.

    use serde_json::Value;

    use crate::field::ErrorList;
    use crate::kinds::ops;
    use crate::strategy::{PipelineError, UpdateTarget};

    /// Every error as upstream renders it (`path: body`).
    pub fn rendered(errs: &ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn errors(result: Result<Value, PipelineError>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(PipelineError::Invalid(errs)) => rendered(&errs),
            Err(PipelineError::Decode(err)) => vec![format!("decode: {err}")],
        }
    }

    /// The core/v1 create pipeline of `kind`: the stored object.
    pub fn create(kind: &str, object: Value) -> Result<Value, PipelineError> {
        let ops = ops("", "v1", kind).unwrap();
        (ops.create)(object)
    }

    /// The errors of creating `object`.
    pub fn create_errors(kind: &str, object: Value) -> Vec<String> {
        errors(create(kind, object))
    }

    /// The core/v1 update pipeline of `kind`.
    pub fn update(kind: &str, new: Value, old: &Value, target: UpdateTarget) -> Result<Value, PipelineError> {
        let ops = ops("", "v1", kind).unwrap();
        (ops.update)(new, old, target)
    }

    /// The errors of updating `old` to `new`.
    pub fn update_errors(kind: &str, new: Value, old: &Value, target: UpdateTarget) -> Vec<String> {
        errors(update(kind, new, old, target))
    }

    /// The object as the server would store it after decoding and defaulting.
    pub fn normalize(kind: &str, object: Value) -> Value {
        let ops = ops("", "v1", kind).unwrap();
        (ops.normalize)(object).unwrap()
    }

    /// The warnings of an object.
    pub fn warnings(kind: &str, object: &Value) -> Vec<String> {
        let ops = ops("", "v1", kind).unwrap();
        (ops.warnings)(object)
    }

    /// The kind-specific selectable fields of an object.
    pub fn fields(kind: &str, object: &Value) -> Vec<(&'static str, String)> {
        let ops = ops("", "v1", kind).unwrap();
        (ops.selectable_fields)(object)
    }
}
