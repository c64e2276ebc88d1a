//! The strategy of core/v1 Event.
//!
//! Ports pkg/registry/core/event/strategy.go (create on update, selectable fields) and the
//! validation a core/v1 request gets from pkg/apis/core/validation/events.go: only the legacy
//! rules (`legacyValidateEvent`), which tie the involved object's namespace to the event's and,
//! for events with an `eventTime`, require the reporting controller and instance, action and
//! reason. The stricter rules of `events.k8s.io` requests belong to that group's kind.
//!
//! Upstream writes the non-omitempty `reportingComponent` and `reportingInstance` and the
//! struct `source` even when empty; the defaults here do the same. (Its zero timestamps,
//! written as `null`, stay absent.)

use k8s_openapi::api::core::v1::{Event, EventSource};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;

use super::core_shared::str_of;
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{is_dns1123_subdomain, validate_qualified_name};

const REPORTING_INSTANCE_LENGTH_LIMIT: usize = 128;
const ACTION_LENGTH_LIMIT: usize = 128;
const REASON_LENGTH_LIMIT: usize = 128;
const NOTE_LENGTH_LIMIT: usize = 1024;
/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds.
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

fn is_zero(time: Option<&MicroTime>) -> bool {
    time.is_none_or(|t| t.0.as_second() == GO_ZERO_TIME_SECONDS)
}

fn too_long(path: &str, limit: usize) -> FieldError {
    FieldError::invalid(
        &Path::new(path),
        "",
        format!("can have at most {limit} characters"),
    )
}

/// Upstream's `legacyValidateEvent` for a core/v1 request.
fn validate_event(event: &Event) -> ErrorList {
    let mut errs = ErrorList::new();
    let namespace = str_of(&event.metadata.namespace);
    let involved_namespace = str_of(&event.involved_object.namespace);
    let namespace_mismatch = || {
        FieldError::invalid(
            &Path::new("involvedObject").child("namespace"),
            involved_namespace,
            "does not match event.namespace",
        )
    };
    if is_zero(event.event_time.as_ref()) {
        if involved_namespace.is_empty() {
            if !namespace.is_empty() && namespace != "default" {
                errs.push(namespace_mismatch());
            }
        } else if namespace != involved_namespace {
            errs.push(namespace_mismatch());
        }
    } else {
        if involved_namespace.is_empty() && namespace != "default" && namespace != "kube-system" {
            errs.push(namespace_mismatch());
        }
        let controller = str_of(&event.reporting_component);
        let controller_path = Path::new("reportingComponent");
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
        if str_of(&event.message).len() > NOTE_LENGTH_LIMIT {
            errs.push(too_long("message", NOTE_LENGTH_LIMIT));
        }
    }
    for msg in is_dns1123_subdomain(namespace) {
        errs.push(FieldError::invalid(&Path::new("namespace"), namespace, msg));
    }
    errs
}

impl KindStrategy for Event {
    fn apply_defaults(&mut self) {
        self.source.get_or_insert_with(EventSource::default);
        self.reporting_component.get_or_insert_with(String::new);
        self.reporting_instance.get_or_insert_with(String::new);
    }

    fn validate(&self) -> ErrorList {
        validate_event(self)
    }

    fn validate_update(&self, _old: &Self) -> ErrorList {
        validate_event(self)
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        let involved = &self.involved_object;
        let component = self.source.as_ref().map_or("", |s| str_of(&s.component));
        let source = if component.is_empty() {
            str_of(&self.reporting_component)
        } else {
            component
        };
        vec![
            ("involvedObject.kind", str_of(&involved.kind).to_owned()),
            ("involvedObject.namespace", str_of(&involved.namespace).to_owned()),
            ("involvedObject.name", str_of(&involved.name).to_owned()),
            ("involvedObject.uid", str_of(&involved.uid).to_owned()),
            (
                "involvedObject.apiVersion",
                str_of(&involved.api_version).to_owned(),
            ),
            (
                "involvedObject.resourceVersion",
                str_of(&involved.resource_version).to_owned(),
            ),
            (
                "involvedObject.fieldPath",
                str_of(&involved.field_path).to_owned(),
            ),
            ("reason", str_of(&self.reason).to_owned()),
            ("reportingComponent", str_of(&self.reporting_component).to_owned()),
            ("source", source.to_owned()),
            ("type", str_of(&self.type_).to_owned()),
        ]
    }

    const SELECTABLE_FIELDS: &'static [&'static str] = &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];

    const ALLOW_CREATE_ON_UPDATE: bool = true;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::core_shared::testing::{create, create_errors, fields};

    #[test]
    fn created_event_as_kube_apiserver_returns_it() {
        let out = create(
            "Event",
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "ns"},
                   "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"},
                   "reason": "Started", "message": "hi", "type": "Normal", "count": 1,
                   "source": {"component": "kubelet"}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": "e1", "namespace": "ns"},
                "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"},
                "reason": "Started", "message": "hi", "type": "Normal", "count": 1,
                "source": {"component": "kubelet"},
                "reportingComponent": "", "reportingInstance": ""
            })
        );
        assert_eq!(
            fields("Event", &out)
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .collect::<Vec<_>>(),
            [
                ("involvedObject.kind", "Pod".to_owned()),
                ("involvedObject.namespace", "ns".to_owned()),
                ("involvedObject.name", "p".to_owned()),
                ("reason", "Started".to_owned()),
                ("source", "kubelet".to_owned()),
                ("type", "Normal".to_owned()),
            ]
        );
    }

    #[test]
    fn validation() {
        let long = "x".repeat(129);
        let cases = [
            (
                json!({"metadata": {"name": "e", "namespace": "ns"}, "involvedObject": {"namespace": "other"}}),
                vec!["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"],
            ),
            (
                json!({"metadata": {"name": "e", "namespace": "ns"}, "involvedObject": {}}),
                vec!["involvedObject.namespace: Invalid value: \"\": does not match event.namespace"],
            ),
            (
                json!({"metadata": {"name": "e", "namespace": "default"}, "involvedObject": {}}),
                vec![],
            ),
            (
                json!({"metadata": {"name": "e", "namespace": "ns"}, "involvedObject": {"namespace": "ns"},
                       "eventTime": "2024-01-01T00:00:00.000000Z", "reportingInstance": long, "reason": "r"}),
                vec![
                    "reportingComponent: Required value",
                    "reportingComponent: Invalid value: \"\": name part must be non-empty",
                    "reportingComponent: Invalid value: \"\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                    "reportingInstance: Invalid value: \"\": can have at most 128 characters",
                    "action: Required value",
                ],
            ),
            (
                json!({"metadata": {"name": "e", "namespace": "ns"}, "involvedObject": {"namespace": "ns"},
                       "eventTime": "2024-01-01T00:00:00.000000Z", "reportingComponent": "example.com/ctl",
                       "reportingInstance": "i", "action": "A", "reason": "R"}),
                vec![],
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(create_errors("Event", object.clone()), expected, "{object}");
        }
    }
}
