//! The strategy of events.k8s.io/v1 Event.
//!
//! events.k8s.io Events are stored as core/v1 Events (the API server converts them), but a
//! request through this group gets the stricter validation of `ValidateEventCreate` and
//! `ValidateEventUpdate` (pkg/apis/core/validation/events.go) for `events.k8s.io/v1`: the
//! legacy rules with the `reportingController` field name, object metadata, a required
//! `eventTime`, a `Normal` or `Warning` type, unset deprecated fields, series rules, and on
//! update the immutability of everything but the series and metadata. Errors use upstream's
//! paths, which are the internal (core) field names: `involvedObject`, `message`, `source`,
//! `firstTimestamp`, `lastTimestamp` and `count` stand for `regarding`, `note`,
//! `deprecatedSource`, `deprecatedFirstTimestamp`, `deprecatedLastTimestamp` and
//! `deprecatedCount`. Also ports the strategy (create on update) and the field label
//! conversions of pkg/apis/events/v1 (selectable fields).

use k8s_openapi::api::core::v1::{EventSource, ObjectReference};
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};

use super::api_shared::{core_meta, core_meta_update, differs};
use super::core_shared::{json_str, str_of};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{
    FIELD_IMMUTABLE_ERROR_MSG, is_dns1123_subdomain, name_is_dns_subdomain, validate_qualified_name,
};

const REPORTING_INSTANCE_LENGTH_LIMIT: usize = 128;
const ACTION_LENGTH_LIMIT: usize = 128;
const REASON_LENGTH_LIMIT: usize = 128;
const NOTE_LENGTH_LIMIT: usize = 1024;
/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

fn is_zero_micro(time: Option<&MicroTime>) -> bool {
    time.is_none_or(|t| t.0.as_second() == GO_ZERO_TIME_SECONDS)
}

fn is_zero_time(time: Option<&Time>) -> bool {
    time.is_none_or(|t| t.0.as_second() == GO_ZERO_TIME_SECONDS)
}

fn too_long(path: &str, limit: usize) -> FieldError {
    FieldError::invalid(
        &Path::new(path),
        "",
        format!("can have at most {limit} characters"),
    )
}

fn regarding(event: &Event) -> ObjectReference {
    event.regarding.clone().unwrap_or_default()
}

fn source(event: &Event) -> EventSource {
    event.deprecated_source.clone().unwrap_or_default()
}

/// Upstream's `legacyValidateEvent` for an events.k8s.io request.
fn legacy_validate(event: &Event) -> ErrorList {
    let mut errs = ErrorList::new();
    let namespace = str_of(&event.metadata.namespace);
    let regarding = regarding(event);
    let involved_namespace = str_of(&regarding.namespace);
    let mismatch = || {
        FieldError::invalid(
            &Path::new("involvedObject").child("namespace"),
            involved_namespace,
            "does not match event.namespace",
        )
    };
    if is_zero_micro(event.event_time.as_ref()) {
        if involved_namespace.is_empty() {
            if !namespace.is_empty() && namespace != "default" {
                errs.push(mismatch());
            }
        } else if namespace != involved_namespace {
            errs.push(mismatch());
        }
    } else {
        if involved_namespace.is_empty() && namespace != "default" && namespace != "kube-system" {
            errs.push(mismatch());
        }
        let controller = str_of(&event.reporting_controller);
        let controller_path = Path::new("reportingController");
        if controller.is_empty() {
            errs.push(FieldError::required(&controller_path, ""));
        }
        errs.extend(validate_qualified_name(controller, &controller_path));
        let instance = str_of(&event.reporting_instance);
        if instance.is_empty() {
            errs.push(FieldError::required(&Path::new("reportingInstance"), ""));
        }
        if instance.len() > REPORTING_INSTANCE_LENGTH_LIMIT {
            errs.push(too_long("reportingInstance", REPORTING_INSTANCE_LENGTH_LIMIT));
        }
        let action = str_of(&event.action);
        if action.is_empty() {
            errs.push(FieldError::required(&Path::new("action"), ""));
        }
        if action.len() > ACTION_LENGTH_LIMIT {
            errs.push(too_long("action", ACTION_LENGTH_LIMIT));
        }
        let reason = str_of(&event.reason);
        if reason.is_empty() {
            errs.push(FieldError::required(&Path::new("reason"), ""));
        }
        if reason.len() > REASON_LENGTH_LIMIT {
            errs.push(too_long("reason", REASON_LENGTH_LIMIT));
        }
        if str_of(&event.note).len() > NOTE_LENGTH_LIMIT {
            errs.push(too_long("message", NOTE_LENGTH_LIMIT));
        }
    }
    for msg in is_dns1123_subdomain(namespace) {
        errs.push(FieldError::invalid(&Path::new("namespace"), namespace, msg));
    }
    errs
}

/// Upstream's `validateV1EventSeries`. (A series without `lastObservedTime` is rejected
/// while decoding.)
fn validate_series(series: Option<&EventSeries>) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(series) = series {
        if series.count < 2 {
            errs.push(FieldError::invalid(
                &Path::new("series.count"),
                "",
                "should be at least 2",
            ));
        }
        if is_zero_micro(Some(&series.last_observed_time)) {
            errs.push(FieldError::required(&Path::new("series.lastObservedTime"), ""));
        }
    }
    errs
}

fn validate_create(event: &Event) -> ErrorList {
    let mut errs = legacy_validate(event);
    errs.extend(core_meta(&event.metadata, true, name_is_dns_subdomain));
    errs.extend(validate_series(event.series.as_ref()));
    if is_zero_micro(event.event_time.as_ref()) {
        errs.push(FieldError::required(&Path::new("eventTime"), ""));
    }
    let type_ = str_of(&event.type_);
    if type_ != "Normal" && type_ != "Warning" {
        errs.push(FieldError::invalid(
            &Path::new("type"),
            "",
            format!("has invalid value: {type_}"),
        ));
    }
    if !is_zero_time(event.deprecated_first_timestamp.as_ref()) {
        errs.push(FieldError::invalid(
            &Path::new("firstTimestamp"),
            "",
            "needs to be unset",
        ));
    }
    if !is_zero_time(event.deprecated_last_timestamp.as_ref()) {
        errs.push(FieldError::invalid(
            &Path::new("lastTimestamp"),
            "",
            "needs to be unset",
        ));
    }
    if event.deprecated_count.unwrap_or_default() != 0 {
        errs.push(FieldError::invalid(&Path::new("count"), "", "needs to be unset"));
    }
    let source = source(event);
    if !str_of(&source.component).is_empty() || !str_of(&source.host).is_empty() {
        errs.push(FieldError::invalid(&Path::new("source"), "", "needs to be unset"));
    }
    errs
}

/// An object reference as upstream's error renders the internal Go struct (no JSON tags).
fn object_reference_value(reference: Option<&ObjectReference>) -> BadValue {
    let Some(r) = reference else {
        return BadValue::Plain("null".to_owned());
    };
    BadValue::Plain(format!(
        "{{\"Kind\":{},\"Namespace\":{},\"Name\":{},\"UID\":{},\"APIVersion\":{},\"ResourceVersion\":{},\"FieldPath\":{}}}",
        json_str(str_of(&r.kind)),
        json_str(str_of(&r.namespace)),
        json_str(str_of(&r.name)),
        json_str(str_of(&r.uid)),
        json_str(str_of(&r.api_version)),
        json_str(str_of(&r.resource_version)),
        json_str(str_of(&r.field_path)),
    ))
}

/// A timestamp as Go's encoder writes a `metav1.Time` or `MicroTime` (`null` when zero).
fn time_value<T: serde::Serialize>(time: Option<&T>, zero: bool) -> BadValue {
    match time {
        Some(t) if !zero => BadValue::Plain(serde_json::to_string(t).unwrap_or_else(|_| "null".to_owned())),
        _ => BadValue::Plain("null".to_owned()),
    }
}

fn immutable(errs: &mut ErrorList, changed: bool, path: &str, value: impl Into<BadValue>) {
    if changed {
        errs.push(FieldError::invalid(
            &Path::new(path),
            value,
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
}

/// A `metav1.Time` for comparison (`None` for Go's zero time).
fn time_key(time: Option<&Time>) -> Option<i64> {
    if is_zero_time(time) {
        return None;
    }
    time.map(|t| t.0.as_second())
}

/// The event time truncated to microseconds (`None` for Go's zero time).
fn micros(time: Option<&MicroTime>) -> Option<i128> {
    if is_zero_micro(time) {
        return None;
    }
    time.map(|t| t.0.as_nanosecond() / 1000)
}

fn validate_update(new: &Event, old: &Event) -> ErrorList {
    let mut errs = legacy_validate(new);
    errs.extend(core_meta_update(&new.metadata, &old.metadata));
    if differs(&new.series, &old.series) {
        errs.extend(validate_series(new.series.as_ref()));
    }
    let (new_regarding, old_regarding) = (regarding(new), regarding(old));
    immutable(
        &mut errs,
        new_regarding != old_regarding,
        "involvedObject",
        object_reference_value(Some(&new_regarding)),
    );
    let reason = str_of(&new.reason);
    let reason_changed = reason != str_of(&old.reason);
    immutable(&mut errs, reason_changed, "reason", reason);
    immutable(
        &mut errs,
        str_of(&new.note) != str_of(&old.note),
        "message",
        str_of(&new.note),
    );
    let (new_source, old_source) = (source(new), source(old));
    immutable(
        &mut errs,
        str_of(&new_source.component) != str_of(&old_source.component)
            || str_of(&new_source.host) != str_of(&old_source.host),
        "source",
        BadValue::Plain(format!(
            "{{\"Component\":{},\"Host\":{}}}",
            json_str(str_of(&new_source.component)),
            json_str(str_of(&new_source.host))
        )),
    );
    for (path, new_time, old_time) in [
        (
            "firstTimestamp",
            &new.deprecated_first_timestamp,
            &old.deprecated_first_timestamp,
        ),
        (
            "lastTimestamp",
            &new.deprecated_last_timestamp,
            &old.deprecated_last_timestamp,
        ),
    ] {
        let zero = is_zero_time(new_time.as_ref());
        immutable(
            &mut errs,
            time_key(new_time.as_ref()) != time_key(old_time.as_ref()),
            path,
            time_value(new_time.as_ref(), zero),
        );
    }
    let count = new.deprecated_count.unwrap_or_default();
    immutable(
        &mut errs,
        count != old.deprecated_count.unwrap_or_default(),
        "count",
        count,
    );
    immutable(&mut errs, reason_changed, "reason", reason);
    let type_ = str_of(&new.type_);
    immutable(&mut errs, type_ != str_of(&old.type_), "type", type_);
    if micros(new.event_time.as_ref()) != micros(old.event_time.as_ref()) {
        let zero = is_zero_micro(new.event_time.as_ref());
        errs.push(FieldError::invalid(
            &Path::new("eventTime"),
            time_value(new.event_time.as_ref(), zero),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    let action = str_of(&new.action);
    immutable(&mut errs, action != str_of(&old.action), "action", action);
    immutable(
        &mut errs,
        new.related != old.related,
        "related",
        object_reference_value(new.related.as_ref()),
    );
    let controller = str_of(&new.reporting_controller);
    immutable(
        &mut errs,
        controller != str_of(&old.reporting_controller),
        "reportingController",
        controller,
    );
    let instance = str_of(&new.reporting_instance);
    immutable(
        &mut errs,
        instance != str_of(&old.reporting_instance),
        "reportingInstance",
        instance,
    );
    errs
}

impl KindStrategy for Event {
    /// `regarding` and `deprecatedSource` are non-pointer structs upstream: always written.
    fn apply_defaults(&mut self) {
        self.regarding.get_or_insert_with(ObjectReference::default);
        self.deprecated_source.get_or_insert_with(EventSource::default);
    }

    fn validate(&self) -> ErrorList {
        validate_create(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        validate_update(self, old)
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        let r = regarding(self);
        vec![
            ("reason", str_of(&self.reason).to_owned()),
            ("regarding.kind", str_of(&r.kind).to_owned()),
            ("regarding.namespace", str_of(&r.namespace).to_owned()),
            ("regarding.name", str_of(&r.name).to_owned()),
            ("regarding.uid", str_of(&r.uid).to_owned()),
            ("regarding.apiVersion", str_of(&r.api_version).to_owned()),
            (
                "regarding.resourceVersion",
                str_of(&r.resource_version).to_owned(),
            ),
            ("regarding.fieldPath", str_of(&r.field_path).to_owned()),
            (
                "reportingController",
                str_of(&self.reporting_controller).to_owned(),
            ),
            ("type", str_of(&self.type_).to_owned()),
        ]
    }

    const SELECTABLE_FIELDS: &'static [&'static str] = &[
        "reason",
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "regarding.apiVersion",
        "regarding.resourceVersion",
        "regarding.fieldPath",
        "reportingController",
        "type",
    ];

    const ALLOW_CREATE_ON_UPDATE: bool = true;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::api_shared::testing::{check_create_cases, fields, update_errors};
    use crate::strategy::UpdateTarget;

    const API: &str = "events.k8s.io/v1";

    fn event() -> serde_json::Value {
        json!({"apiVersion": API, "kind": "Event", "metadata": {"name": "e1", "namespace": "ns"},
            "eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "example.com/ctl",
            "reportingInstance": "ctl-1", "action": "Scale", "reason": "Scaled", "type": "Normal",
            "regarding": {"kind": "Deployment", "namespace": "ns", "name": "web"}, "note": "scaled up"})
    }

    #[test]
    fn validation() {
        let mut bad = event();
        bad["eventTime"] = serde_json::Value::Null;
        bad["type"] = json!("Info");
        bad["deprecatedCount"] = json!(3);
        bad["deprecatedSource"] = json!({"component": "kubelet"});
        bad["regarding"]["namespace"] = json!("other");
        bad["series"] = json!({"count": 1, "lastObservedTime": "2024-01-01T00:00:00.000000Z"});
        let mut missing = event();
        for field in ["reportingController", "reportingInstance", "action", "reason"] {
            missing.as_object_mut().unwrap().remove(field);
        }
        check_create_cases(&[
            (event(), vec![]),
            (
                bad,
                vec![
                    "involvedObject.namespace: Invalid value: \"other\": does not match event.namespace",
                    "series.count: Invalid value: \"\": should be at least 2",
                    "eventTime: Required value",
                    "type: Invalid value: \"\": has invalid value: Info",
                    "count: Invalid value: \"\": needs to be unset",
                    "source: Invalid value: \"\": needs to be unset",
                ],
            ),
            (
                missing,
                vec![
                    "reportingController: Required value",
                    "reportingController: Invalid value: \"\": name part must be non-empty",
                    "reportingController: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                    "reportingInstance: Required value",
                    "action: Required value",
                    "reason: Required value",
                ],
            ),
        ]);
        assert_eq!(fields(&event())[1], ("regarding.kind", "Deployment".to_owned()));
    }

    #[test]
    fn updates() {
        let mut old = event();
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["series"] = json!({"count": 2, "lastObservedTime": "2024-01-01T00:01:00.000000Z"});
        assert!(update_errors(new, &old, UpdateTarget::Main).is_empty());
        let mut new = old.clone();
        new["note"] = json!("changed");
        new["regarding"]["name"] = json!("api");
        new["eventTime"] = json!("2024-01-02T00:00:00.000000Z");
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            [
                "involvedObject: Invalid value: {\"Kind\":\"Deployment\",\"Namespace\":\"ns\",\"Name\":\"api\",\"UID\":\"\",\"APIVersion\":\"\",\"ResourceVersion\":\"\",\"FieldPath\":\"\"}: field is immutable",
                "message: Invalid value: \"changed\": field is immutable",
                "eventTime: Invalid value: \"2024-01-02T00:00:00.000000Z\": field is immutable",
            ]
        );
    }
}
