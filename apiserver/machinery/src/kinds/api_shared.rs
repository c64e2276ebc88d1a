//! Helpers shared by the strategies of the non-core API groups (rbac, networking, storage,
//! scheduling, coordination, discovery, certificates, events, admissionregistration, node,
//! flowcontrol, resource, apiregistration): metadata validation in the two flavours upstream
//! uses, generation bookkeeping, small field checks, and the group-aware test helpers.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Serialize;

use super::core_shared::{json_str, json_str_list};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::validation::{
    ValidateNameFn, validate_object_meta, validate_object_meta_accessor,
    validate_object_meta_accessor_update, validate_object_meta_update,
};

/// The `metadata` path.
pub(super) fn meta_path() -> Path {
    Path::new("metadata")
}

/// Core's `ValidateObjectMeta` at `metadata` (used by the groups whose validation builds on
/// core's: rbac, networking, storage, scheduling, coordination, discovery, node, ...).
pub(super) fn core_meta(meta: &ObjectMeta, namespaced: bool, name_fn: ValidateNameFn) -> ErrorList {
    validate_object_meta(meta, namespaced, name_fn, &meta_path())
}

/// Core's `ValidateObjectMetaUpdate` at `metadata`.
pub(super) fn core_meta_update(new: &ObjectMeta, old: &ObjectMeta) -> ErrorList {
    validate_object_meta_update(new, old, &meta_path())
}

/// apimachinery's `ValidateObjectMetaAccessor` at `metadata` (flowcontrol, apiregistration,
/// admissionregistration's policies).
pub(super) fn generic_meta(meta: &ObjectMeta, namespaced: bool, name_fn: ValidateNameFn) -> ErrorList {
    validate_object_meta_accessor(meta, namespaced, name_fn, &meta_path())
}

/// apimachinery's `ValidateObjectMetaAccessorUpdate` at `metadata`.
pub(super) fn generic_meta_update(new: &ObjectMeta, old: &ObjectMeta) -> ErrorList {
    validate_object_meta_accessor_update(new, old, &meta_path())
}

/// A new object of a kind that tracks its generation starts at 1.
pub(super) fn init_generation(meta: &mut ObjectMeta) {
    meta.generation = Some(1);
}

/// Bumps the generation when `changed` (the spec differs from the old object's).
pub(super) fn bump_generation(meta: &mut ObjectMeta, old: &ObjectMeta, changed: bool) {
    if changed {
        meta.generation = Some(old.generation.unwrap_or_default() + 1);
    }
}

/// apimachinery's `ResetObjectMetaForStatus`: a status update keeps the deletion timestamp,
/// generation, self link, labels, annotations, finalizers and owner references of the old
/// object.
pub(super) fn reset_meta_for_status(meta: &mut ObjectMeta, old: &ObjectMeta) {
    meta.deletion_timestamp.clone_from(&old.deletion_timestamp);
    meta.generation = old.generation;
    meta.self_link.clone_from(&old.self_link);
    meta.labels.clone_from(&old.labels);
    meta.annotations.clone_from(&old.annotations);
    meta.finalizers.clone_from(&old.finalizers);
    meta.owner_references.clone_from(&old.owner_references);
}

/// Whether two values serialize to different JSON (a deep comparison for types without
/// `PartialEq` on the whole object, and one that ignores `None` against absent).
pub(super) fn differs<T: Serialize>(a: &T, b: &T) -> bool {
    serde_json::to_value(a).ok() != serde_json::to_value(b).ok()
}

/// A label selector as Go's JSON encoder writes it (`matchLabels` before `matchExpressions`,
/// `null` for none): the bad value of errors about whole selectors.
pub(super) fn go_label_selector(selector: Option<&LabelSelector>) -> BadValue {
    let Some(selector) = selector else {
        return BadValue::Plain("null".to_owned());
    };
    let mut fields = Vec::new();
    if let Some(labels) = selector.match_labels.as_ref().filter(|l| !l.is_empty()) {
        let entries: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
            .collect();
        fields.push(format!("\"matchLabels\":{{{}}}", entries.join(",")));
    }
    if let Some(expressions) = selector.match_expressions.as_ref().filter(|e| !e.is_empty()) {
        let items: Vec<String> = expressions
            .iter()
            .map(|e| {
                let mut item = format!(
                    "{{\"key\":{},\"operator\":{}",
                    json_str(&e.key),
                    json_str(&e.operator)
                );
                if e.values.as_ref().is_some_and(|v| !v.is_empty()) {
                    item.push_str(&format!(",\"values\":{}", json_str_list(&e.values)));
                }
                item.push('}');
                item
            })
            .collect();
        fields.push(format!("\"matchExpressions\":[{}]", items.join(",")));
    }
    BadValue::Plain(format!("{{{}}}", fields.join(",")))
}

/// apimachinery's `ValidateConditions` for `metav1.Condition` lists: unique types, and per
/// condition a label-name type, a known status, a non-negative observed generation, a
/// transition time, a well-formed reason and a bounded message.
pub(super) fn validate_meta_conditions(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    path: &Path,
) -> ErrorList {
    const MAX_REASON_LEN: usize = 1024;
    const MAX_MESSAGE_LEN: usize = 32 * 1024;
    let mut errs = ErrorList::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, condition) in conditions.iter().enumerate() {
        let path = path.index(i);
        if !seen.insert(condition.type_.as_str()) {
            errs.push(FieldError::duplicate(
                &path.child("type"),
                condition.type_.as_str(),
            ));
        }
        errs.extend(crate::validation::validate_label_name(
            &condition.type_,
            &path.child("type"),
        ));
        if !["False", "True", "Unknown"].contains(&condition.status.as_str()) {
            errs.push(FieldError::not_supported(
                &path.child("status"),
                condition.status.as_str(),
                &["False", "True", "Unknown"],
            ));
        }
        if let Some(generation) = condition.observed_generation.filter(|g| *g < 0) {
            errs.push(FieldError::invalid(
                &path.child("observedGeneration"),
                generation,
                "must be greater than or equal to zero",
            ));
        }
        if condition.last_transition_time.0.as_second() == GO_ZERO_TIME_SECONDS {
            errs.push(FieldError::required(&path.child("lastTransitionTime"), ""));
        }
        if condition.reason.is_empty() {
            errs.push(FieldError::required(&path.child("reason"), ""));
        } else {
            if !is_condition_reason(&condition.reason) {
                errs.push(FieldError::invalid(
                    &path.child("reason"),
                    condition.reason.as_str(),
                    crate::validation::regex_error(
                        "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'",
                        "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?",
                        &["my_name", "MY_NAME", "MyName", "ReasonA,ReasonB", "ReasonA:ReasonB"],
                    ),
                ));
            }
            if condition.reason.len() > MAX_REASON_LEN {
                errs.push(FieldError::too_long(&path.child("reason"), MAX_REASON_LEN));
            }
        }
        if condition.message.len() > MAX_MESSAGE_LEN {
            errs.push(FieldError::too_long(&path.child("message"), MAX_MESSAGE_LEN));
        }
    }
    errs
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds.
pub(super) const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// `[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?`
fn is_condition_reason(reason: &str) -> bool {
    let bytes = reason.as_bytes();
    let Some((first, rest)) = bytes.split_first() else {
        return false;
    };
    if !first.is_ascii_alphabetic() {
        return false;
    }
    let middle_ok = rest
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b',' | b':'));
    let last_ok = rest
        .last()
        .is_none_or(|b| b.is_ascii_alphanumeric() || *b == b'_');
    middle_ok && last_ok
}

/// Node labels upstream warns about (pkg/api/node/util.go).
pub(super) const DEPRECATED_NODE_LABELS: &[(&str, &str)] = &[
    (
        "beta.kubernetes.io/arch",
        "deprecated since v1.14; use \"kubernetes.io/arch\" instead",
    ),
    (
        "beta.kubernetes.io/os",
        "deprecated since v1.14; use \"kubernetes.io/os\" instead",
    ),
    (
        "failure-domain.beta.kubernetes.io/region",
        "deprecated since v1.17; use \"topology.kubernetes.io/region\" instead",
    ),
    (
        "failure-domain.beta.kubernetes.io/zone",
        "deprecated since v1.17; use \"topology.kubernetes.io/zone\" instead",
    ),
    (
        "beta.kubernetes.io/instance-type",
        "deprecated since v1.17; use \"node.kubernetes.io/instance-type\" instead",
    ),
    ("app.kubernetes.io/created-by", "deprecated since v1.9"),
    (
        "scheduler.alpha.kubernetes.io/preferAvoidPods",
        "deprecated since v1.22; use Taints and Tolerations instead",
    ),
    (
        "node-role.kubernetes.io/master",
        "use \"node-role.kubernetes.io/control-plane\" instead",
    ),
];

/// The deprecation message of a node label, if it is deprecated.
pub(super) fn deprecated_node_label(key: &str) -> Option<&'static str> {
    DEPRECATED_NODE_LABELS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, msg)| *msg)
}

/// Upstream's `GetWarningsForNodeSelector` for a label selector at `path`.
pub(super) fn node_selector_warnings(selector: Option<&LabelSelector>, path: &Path) -> Vec<String> {
    let Some(selector) = selector else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    for (i, expression) in selector.match_expressions.iter().flatten().enumerate() {
        if let Some(msg) = deprecated_node_label(&expression.key) {
            warnings.push(format!(
                "{}: {} is {msg}",
                path.child("matchExpressions").index(i).child("key"),
                expression.key
            ));
        }
    }
    for key in selector.match_labels.iter().flat_map(|m| m.keys()) {
        if let Some(msg) = deprecated_node_label(key) {
            warnings.push(format!("{}: {msg}", path.child("matchLabels").child(key)));
        }
    }
    warnings
}

#[cfg(test)]
pub(super) mod testing {
    //! Running the type-erased pipelines of a kind of any group and rendering their errors.

    use serde_json::Value;

    use crate::field::ErrorList;
    use crate::kinds::ops;
    use crate::strategy::{PipelineError, UpdateTarget};

    /// Every error as upstream renders it (`path: body`).
    pub fn rendered(errs: &ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn split(api_version: &str) -> (&str, &str) {
        api_version.split_once('/').unwrap_or(("", api_version))
    }

    fn errors(result: Result<Value, PipelineError>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(PipelineError::Invalid(errs)) => rendered(&errs),
            Err(PipelineError::Decode(err)) => vec![format!("decode: {err}")],
        }
    }

    fn kind_of(object: &Value) -> (String, String, String) {
        let api_version = object["apiVersion"].as_str().unwrap();
        let (group, version) = split(api_version);
        (
            group.to_owned(),
            version.to_owned(),
            object["kind"].as_str().unwrap().to_owned(),
        )
    }

    /// The create pipeline of the object's kind (from its `apiVersion` and `kind`).
    pub fn create(object: Value) -> Result<Value, PipelineError> {
        let (group, version, kind) = kind_of(&object);
        let ops = ops(&group, &version, &kind).unwrap();
        (ops.create)(object)
    }

    /// The errors of creating `object`.
    pub fn create_errors(object: Value) -> Vec<String> {
        errors(create(object))
    }

    /// The update pipeline of the object's kind.
    pub fn update(new: Value, old: &Value, target: UpdateTarget) -> Result<Value, PipelineError> {
        let (group, version, kind) = kind_of(&new);
        let ops = ops(&group, &version, &kind).unwrap();
        (ops.update)(new, old, target)
    }

    /// The errors of updating `old` to `new`.
    pub fn update_errors(new: Value, old: &Value, target: UpdateTarget) -> Vec<String> {
        errors(update(new, old, target))
    }

    /// The warnings of an object.
    pub fn warnings(object: &Value) -> Vec<String> {
        let (group, version, kind) = kind_of(object);
        let ops = ops(&group, &version, &kind).unwrap();
        (ops.warnings)(object)
    }

    /// The kind-specific selectable fields of an object.
    pub fn fields(object: &Value) -> Vec<(&'static str, String)> {
        let (group, version, kind) = kind_of(object);
        let ops = ops(&group, &version, &kind).unwrap();
        (ops.selectable_fields)(object)
    }

    /// Asserts the errors of creating each object.
    pub fn check_create_cases(cases: &[(Value, Vec<&str>)]) {
        for (object, expected) in cases {
            assert_eq!(&create_errors(object.clone()), expected, "{object}");
        }
    }
}
