//! Helpers shared by the strategies of the workload kinds (apps, batch, autoscaling, policy):
//! int-or-percent rules, selector/template matching, generation bookkeeping, Go-style renderings
//! of internal structs quoted in field errors, the DNS-label name warning, and the test
//! helpers of those modules.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;
use serde_json::Value;

use super::go_repr::{GoValue, compact, render};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::selectors::labels::Selector;
use crate::validation::{bad_value, is_dns1123_label, is_valid_percent, validate_nonnegative_field};

/// The `metadata` path.
pub(super) fn meta_path() -> Path {
    Path::new("metadata")
}

/// A selector upstream would see as nil: the v1 types make some selectors required, so a
/// missing one decodes as an empty struct; without `matchLabels` and `matchExpressions` it is
/// taken as absent.
pub(super) fn present_selector(selector: &LabelSelector) -> Option<&LabelSelector> {
    if selector.match_labels.is_none() && selector.match_expressions.is_none() {
        return None;
    }
    Some(selector)
}

/// Whether a present selector has neither labels nor expressions
/// (`len(MatchLabels)+len(MatchExpressions) == 0`).
pub(super) fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && selector.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

/// A bad value for an optional value: `null` when absent, else its JSON.
pub(super) fn opt_bad<T: Serialize>(value: Option<&T>) -> BadValue {
    match value {
        None => BadValue::Plain("null".to_owned()),
        Some(v) => bad_value(v),
    }
}

/// The labels of a template (`nil` when absent).
pub(super) fn template_labels(template: &PodTemplateSpec) -> Option<&BTreeMap<String, String>> {
    template.metadata.as_ref().and_then(|m| m.labels.as_ref())
}

/// Whether `selector` matches the labels of `template`.
pub(super) fn selector_matches_template(selector: &Selector, template: &PodTemplateSpec) -> bool {
    let empty = BTreeMap::new();
    selector.matches(template_labels(template).unwrap_or(&empty))
}

/// The "`selector` does not match template `labels`" error at `<template>.metadata.labels`.
pub(super) fn selector_mismatch(template_path: &Path, template: &PodTemplateSpec) -> FieldError {
    FieldError::invalid(
        &template_path.child("metadata").child("labels"),
        opt_bad(template_labels(template)),
        "`selector` does not match template `labels`",
    )
}

/// Sets the generation of an updated object: the old one, plus one when `changed`.
pub(super) fn bump_generation(meta: &mut ObjectMeta, old: &ObjectMeta, changed: bool) {
    let old_generation = old.generation.unwrap_or(0);
    meta.generation = Some(if changed {
        old_generation + 1
    } else {
        old_generation
    });
}

/// Upstream's `IsDecremented` of two optional counters.
pub(super) fn is_decremented(new: Option<i32>, old: Option<i32>) -> bool {
    match (new, old) {
        (None, Some(_)) => true,
        (Some(n), Some(o)) => n < o,
        _ => false,
    }
}

/// The "cannot be decremented" error of `status.collisionCount`.
pub(super) fn collision_count_errors(new: Option<i32>, old: Option<i32>) -> ErrorList {
    if is_decremented(new, old) {
        return vec![FieldError::invalid(
            &Path::new("status").child("collisionCount"),
            new.unwrap_or(0),
            "cannot be decremented",
        )];
    }
    Vec::new()
}

/// `value >= 0` of an optional (zero when absent) field.
pub(super) fn nonnegative_opt(value: Option<i32>, path: &Path) -> ErrorList {
    validate_nonnegative_field(i64::from(value.unwrap_or(0)), path)
}

/// The warning upstream gives for names that are not DNS labels (they end up in pod names and
/// hostnames).
pub(super) fn dns_label_name_warning(meta: &ObjectMeta) -> Option<String> {
    let msgs = is_dns1123_label(meta.name.as_deref().unwrap_or_default());
    if msgs.is_empty() {
        return None;
    }
    Some(format!(
        "metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [{}]",
        msgs.join(" ")
    ))
}

// ---------------------------------------------------------------------------------------------
// Int-or-percent values (pkg/apis/apps/validation)
// ---------------------------------------------------------------------------------------------

/// The bad value of an `IntOrString` (its JSON: a number or a quoted string).
pub(super) fn int_or_string_bad(value: &IntOrString) -> BadValue {
    match value {
        IntOrString::Int(i) => BadValue::from(*i),
        IntOrString::String(s) => BadValue::from(s.as_str()),
    }
}

/// Go's `strconv.Atoi` success (used by `IntOrString.IntValue`).
fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// `IntOrString.IntValue()`: the int, or the string parsed as an int (0 when it is not one).
fn int_value(value: &IntOrString) -> i64 {
    match value {
        IntOrString::Int(i) => i64::from(*i),
        IntOrString::String(s) => go_atoi(s).unwrap_or(0),
    }
}

/// Upstream's `getPercentValue`: the number of a valid percent string.
fn percent_value(value: &IntOrString) -> Option<i64> {
    match value {
        IntOrString::String(s) if is_valid_percent(s).is_empty() => {
            Some(s.trim_end_matches('%').parse::<i64>().unwrap_or(0))
        }
        _ => None,
    }
}

/// Upstream's `getIntOrPercentValue`.
pub(super) fn int_or_percent_value(value: &IntOrString) -> i64 {
    percent_value(value).unwrap_or_else(|| int_value(value))
}

/// Upstream's `ValidatePositiveIntOrPercent`.
pub(super) fn validate_positive_int_or_percent(value: &IntOrString, path: &Path) -> ErrorList {
    match value {
        IntOrString::String(s) => is_valid_percent(s)
            .into_iter()
            .map(|msg| FieldError::invalid(path, s.as_str(), msg))
            .collect(),
        IntOrString::Int(i) => validate_nonnegative_field(i64::from(*i), path),
    }
}

/// Upstream's `IsNotMoreThan100Percent`.
pub(super) fn not_more_than_100_percent(value: &IntOrString, path: &Path) -> ErrorList {
    match percent_value(value) {
        Some(p) if p > 100 => vec![FieldError::invalid(
            path,
            int_or_string_bad(value),
            "must not be greater than 100%",
        )],
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Go renderings of internal structs
// ---------------------------------------------------------------------------------------------

/// A Go object with its fields in declaration order.
pub(super) fn go_obj(fields: Vec<(&str, GoValue)>) -> GoValue {
    GoValue::Obj(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// A Go string.
pub(super) fn go_str(value: &str) -> GoValue {
    GoValue::Str(value.to_owned())
}

/// A Go `*string` (`null` when absent).
pub(super) fn go_opt_str(value: Option<&String>) -> GoValue {
    value.map_or(GoValue::Null, |s| go_str(s))
}

/// A Go integer.
pub(super) fn go_int(value: i64) -> GoValue {
    GoValue::Num(value.to_string())
}

/// A Go `*int32` (`null` when absent).
pub(super) fn go_opt_int(value: Option<i32>) -> GoValue {
    value.map_or(GoValue::Null, |v| go_int(i64::from(v)))
}

/// A Go `intstr.IntOrString`; `pointer` decides whether absence is `null` or the zero `0`.
pub(super) fn go_int_or_string(value: Option<&IntOrString>, pointer: bool) -> GoValue {
    match value {
        None if pointer => GoValue::Null,
        None => go_int(0),
        Some(IntOrString::Int(i)) => go_int(i64::from(*i)),
        Some(IntOrString::String(s)) => go_str(s),
    }
}

/// A JSON value as Go's encoder prints the same data (maps with sorted keys).
pub(super) fn go_json(value: &Value) -> GoValue {
    match value {
        Value::Null => GoValue::Null,
        Value::Bool(b) => GoValue::Bool(*b),
        Value::Number(n) => GoValue::Num(n.to_string()),
        Value::String(s) => GoValue::Str(s.clone()),
        Value::Array(items) => GoValue::Arr(items.iter().map(go_json).collect()),
        Value::Object(map) => {
            let mut entries: Vec<(String, GoValue)> =
                map.iter().map(|(k, v)| (k.clone(), go_json(v))).collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            GoValue::Obj(entries)
        }
    }
}

/// A `metav1.LabelSelector` as Go's encoder prints it: `matchLabels` before
/// `matchExpressions`, empty lists and maps omitted.
pub(super) fn go_selector(selector: &LabelSelector) -> GoValue {
    let mut fields = Vec::new();
    if let Some(labels) = selector.match_labels.as_ref().filter(|l| !l.is_empty()) {
        let entries = labels.iter().map(|(k, v)| (k.clone(), go_str(v))).collect();
        fields.push(("matchLabels".to_owned(), GoValue::Obj(entries)));
    }
    if let Some(exprs) = selector.match_expressions.as_ref().filter(|e| !e.is_empty()) {
        let items = exprs
            .iter()
            .map(|e| {
                let mut req = vec![
                    ("key".to_owned(), go_str(&e.key)),
                    ("operator".to_owned(), go_str(&e.operator)),
                ];
                if let Some(values) = e.values.as_ref().filter(|v| !v.is_empty()) {
                    req.push((
                        "values".to_owned(),
                        GoValue::Arr(values.iter().map(|v| go_str(v)).collect()),
                    ));
                }
                GoValue::Obj(req)
            })
            .collect();
        fields.push(("matchExpressions".to_owned(), GoValue::Arr(items)));
    }
    GoValue::Obj(fields)
}

/// The bad value of a `*metav1.LabelSelector` (`null` when absent).
pub(super) fn selector_bad(selector: Option<&LabelSelector>) -> BadValue {
    go_bad(&selector.map_or(GoValue::Null, go_selector))
}

/// `ValidateImmutableField` of a selector.
pub(super) fn immutable_selector(
    new: Option<&LabelSelector>,
    old: Option<&LabelSelector>,
    path: &Path,
) -> ErrorList {
    if new == old {
        return Vec::new();
    }
    vec![FieldError::invalid(
        path,
        selector_bad(new),
        crate::validation::FIELD_IMMUTABLE_ERROR_MSG,
    )]
}

/// A bad value quoting a Go rendering.
pub(super) fn go_bad(value: &GoValue) -> BadValue {
    BadValue::Plain(compact(value))
}

/// The internal `core.PodTemplateSpec` as Go's encoder prints it: the embedded object meta's
/// fields (JSON tags, omitempty) followed by `Spec` with Go field names.
pub(super) fn go_pod_template(template: &PodTemplateSpec) -> GoValue {
    let meta = template
        .metadata
        .as_ref()
        .map_or(Value::Null, |m| serde_json::to_value(m).unwrap_or(Value::Null));
    let mut fields = Vec::new();
    for key in [
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
    ] {
        if let Some(value) = meta.get(key).filter(|v| !v.is_null()) {
            fields.push((key.to_owned(), go_json(value)));
        }
    }
    let spec = template.spec.as_ref().map_or_else(
        || Value::Object(serde_json::Map::new()),
        |s| serde_json::to_value(s).unwrap_or(Value::Null),
    );
    fields.push(("Spec".to_owned(), render("PodSpec", &spec)));
    GoValue::Obj(fields)
}

#[cfg(test)]
pub(super) mod testing {
    //! Running the type-erased pipelines of a workload kind and rendering their errors.

    use serde_json::Value;

    use crate::kinds::ops;
    use crate::strategy::{KindOps, PipelineError, UpdateTarget};

    /// A group, version and kind.
    #[derive(Clone, Copy, Debug)]
    pub struct Gvk(pub &'static str, pub &'static str, pub &'static str);

    impl Gvk {
        fn ops(self) -> KindOps {
            ops(self.0, self.1, self.2).unwrap()
        }

        /// The create pipeline as the store runs it: normalize, then create.
        pub fn create(self, object: Value) -> Result<Value, PipelineError> {
            let ops = self.ops();
            (ops.create)((ops.normalize)(object)?)
        }

        /// The created object (panics on errors).
        pub fn created(self, object: Value) -> Value {
            match self.create(object) {
                Ok(v) => v,
                Err(err) => panic!("create failed: {err:?}"),
            }
        }

        /// The errors of creating `object` (empty when it succeeds).
        pub fn create_errors(self, object: Value) -> Vec<String> {
            errors(self.create(object))
        }

        /// The update pipeline as the store runs it: normalize, then update.
        pub fn update(self, new: Value, old: &Value, target: UpdateTarget) -> Result<Value, PipelineError> {
            let ops = self.ops();
            (ops.update)((ops.normalize)(new)?, old, target)
        }

        /// The updated object (panics on errors).
        pub fn updated(self, new: Value, old: &Value, target: UpdateTarget) -> Value {
            match self.update(new, old, target) {
                Ok(v) => v,
                Err(err) => panic!("update failed: {err:?}"),
            }
        }

        /// The errors of an update (empty when it succeeds).
        pub fn update_errors(self, new: Value, old: &Value, target: UpdateTarget) -> Vec<String> {
            errors(self.update(new, old, target))
        }

        /// The warnings of an object.
        pub fn warnings(self, object: &Value) -> Vec<String> {
            (self.ops().warnings)(object)
        }

        /// The kind-specific selectable fields of an object.
        pub fn fields(self, object: &Value) -> Vec<(&'static str, String)> {
            (self.ops().selectable_fields)(object)
        }

        /// The names of the kind-specific selectable fields.
        pub fn supported_fields(self) -> &'static [&'static str] {
            self.ops().supported_fields
        }
    }

    /// Every error as upstream renders it (`path: body`); decode errors prefixed `decode:`.
    pub fn errors(result: Result<Value, PipelineError>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(PipelineError::Invalid(errs)) => errs.iter().map(ToString::to_string).collect(),
            Err(PipelineError::Decode(err)) => vec![format!("decode: {err}")],
        }
    }

    /// A stored object: `resourceVersion` set as the store sets it.
    pub fn stored(mut object: Value) -> Value {
        object["metadata"]["resourceVersion"] = Value::String("7".to_owned());
        object
    }

    /// The defaulted spec of a single-container template, as upstream prints it.
    pub fn defaulted_pod_spec(image: &str, pull: &str, restart: &str) -> Value {
        serde_json::json!({
            "containers": [{
                "name": "c", "image": image, "imagePullPolicy": pull,
                "resources": {}, "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File"
            }],
            "dnsPolicy": "ClusterFirst", "restartPolicy": restart,
            "schedulerName": "default-scheduler", "securityContext": {},
            "terminationGracePeriodSeconds": 30
        })
    }
}
