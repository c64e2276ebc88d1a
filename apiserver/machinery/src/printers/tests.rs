//! The printers against upstream's own cases: `testdata/upstream-printers.json` holds every
//! object the tests of upstream's `printers_test.go` (v1.35.4) print, converted to the served
//! version, with the clock of the run and the cells upstream's printers produced for it (wide,
//! as the server prints), recorded by running those tests with the printers instrumented.

use serde_json::{Value, json};

use super::*;

#[test]
fn upstream_printer_cases() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("testdata/upstream-printers.json")).unwrap();
    assert!(cases.len() > 250, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let group = case["group"].as_str().unwrap();
        let resource = case["resource"].as_str().unwrap();
        let now = case["now"].as_i64().unwrap();
        let cells = row(group, resource, &case["object"], now);
        if Value::from(cells.clone()) != case["cells"] {
            failures.push(format!(
                "{} {}:\n  object: {}\n  expected: {}\n  actual:   {}",
                case["printer"],
                resource,
                case["object"],
                case["cells"],
                Value::from(cells)
            ));
        }
        let conditions = row_conditions(group, resource, &case["object"]);
        let expected = case.get("conditions").cloned().unwrap_or(json!([]));
        if Value::from(conditions.clone()) != expected {
            failures.push(format!(
                "{} conditions: expected {expected}, got {}",
                case["printer"],
                Value::from(conditions)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_row_fits_its_columns() {
    for info in crate::resources::RESOURCES {
        let object = json!({"metadata": {"name": "x", "creationTimestamp": "2024-01-01T00:00:00Z"}});
        let cells = row(info.group, info.resource, &object, 1_704_067_260);
        let columns = columns(info.group, info.resource);
        let name_column = columns.iter().position(|c| c.format == "name").unwrap();
        // Upstream's IPAddress printer adds an AGE cell it has no column for.
        let extra = usize::from((info.group, info.resource) == ("networking.k8s.io", "ipaddresses"));
        assert_eq!(
            cells.len(),
            columns.len() + extra,
            "{}/{}",
            info.group,
            info.resource
        );
        assert_eq!(cells[name_column], "x", "{}", info.resource);
    }
}

#[test]
fn pod_columns_and_row() {
    let names: Vec<&str> = columns("", "pods").iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "Name",
            "Ready",
            "Status",
            "Restarts",
            "Age",
            "IP",
            "Node",
            "Nominated Node",
            "Readiness Gates"
        ]
    );
    let priorities: Vec<i32> = columns("", "pods").iter().map(|c| c.priority).collect();
    assert_eq!(priorities, [0, 0, 0, 0, 0, 1, 1, 1, 1]);
    assert_eq!(columns("", "pods")[0].format, "name");
    let pod = json!({
        "metadata": {"name": "web", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "web", "image": "nginx"}]},
        "status": {"phase": "Pending"},
    });
    assert_eq!(
        row("", "pods", &pod, 1_704_067_202),
        [
            json!("web"),
            json!("0/1"),
            json!("Pending"),
            json!("0"),
            json!("2s"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>"),
            json!("<none>")
        ]
    );
}

#[test]
fn default_table_for_resources_without_a_printer() {
    for (group, resource) in [
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("", "limitranges"),
        ("storage.k8s.io", "csistoragecapacities"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
    ] {
        let names: Vec<(&str, &str)> = columns(group, resource)
            .iter()
            .map(|c| (c.name, c.type_))
            .collect();
        assert_eq!(names, [("Name", "string"), ("Created At", "date")], "{resource}");
    }
    let role = json!({"metadata": {"name": "reader", "creationTimestamp": "2024-01-01T00:00:00Z"}});
    assert_eq!(
        row("rbac.authorization.k8s.io", "roles", &role, 0),
        [json!("reader"), json!("2024-01-01T00:00:00Z")]
    );
    assert_eq!(
        row("", "limitranges", &json!({"metadata": {"name": "l"}}), 0),
        [json!("l"), json!("0001-01-01T00:00:00Z")]
    );
}

#[test]
fn api_services_events_v1_and_autoscaling_v1() {
    let now = 1_704_067_200 + 600;
    let service = json!({
        "metadata": {"name": "v1.apps", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"group": "apps", "version": "v1"},
        "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]},
    });
    assert_eq!(
        row("apiregistration.k8s.io", "apiservices", &service, now),
        [
            json!("v1.apps"),
            json!("Local"),
            json!("False (MissingEndpoints)"),
            json!("10m")
        ]
    );

    let event = json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default"},
        "eventTime": "2024-01-01T00:05:00.000000Z",
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
        "action": "Pulling",
        "reason": "Pulling",
        "regarding": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
        "note": "Pulling image \"nginx\" ",
        "type": "Normal",
    });
    assert_eq!(
        row("events.k8s.io", "events", &event, now),
        [
            json!("5m"),
            json!("Normal"),
            json!("Pulling"),
            json!("pod/web"),
            json!("spec.containers{web}"),
            json!("kubelet, node-1"),
            json!("Pulling image \"nginx\""),
            json!("5m"),
            json!(1),
            json!("web.1")
        ]
    );

    let hpa = json!({
        "apiVersion": "autoscaling/v1",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"}, "minReplicas": 1, "maxReplicas": 5},
        "status": {"currentReplicas": 2, "desiredReplicas": 2},
    });
    assert_eq!(
        row("autoscaling", "horizontalpodautoscalers", &hpa, now),
        [
            json!("web"),
            json!("Deployment/web"),
            json!("cpu: <unknown>/80%"),
            json!("1"),
            json!(5),
            json!(2),
            json!("10m")
        ]
    );
}

#[test]
fn tables_only_where_upstream_has_a_convertor() {
    assert!(has_table("", "pods"));
    assert!(has_table("rbac.authorization.k8s.io", "roles"));
    assert!(!has_table("authentication.k8s.io", "tokenreviews"));
    assert!(!has_table("authorization.k8s.io", "subjectaccessreviews"));
    assert!(!has_table("", "bindings"));
}
