//! Printers of the workload kinds: deployments, replica sets, daemon sets, stateful sets,
//! controller revisions, jobs, cron jobs, horizontal pod autoscalers and pod disruption
//! budgets.

use serde_json::Value;

use super::format::{
    age, arr_at, at, bool_ptr, cell, containers, format_label_selector, format_labels,
    human_duration_between, int_at, int_of, label_selector, map_at, name, opt_bool, opt_str, present,
    quantity, since, str_at, time_at,
};

/// `printDeployment`.
pub(super) fn deployment(deployment: &Value, now: i64) -> Vec<Value> {
    let selector =
        label_selector(at(deployment, &["spec", "selector"])).unwrap_or_else(|| "<invalid>".to_owned());
    let (names, images) = containers(arr_at(deployment, &["spec", "template", "spec", "containers"]));
    vec![
        cell(name(deployment)),
        cell(format!(
            "{}/{}",
            int_at(deployment, &["status", "readyReplicas"]),
            int_at(deployment, &["spec", "replicas"])
        )),
        Value::from(int_at(deployment, &["status", "updatedReplicas"])),
        Value::from(int_at(deployment, &["status", "availableReplicas"])),
        age(deployment, now),
        cell(names),
        cell(images),
        cell(selector),
    ]
}

/// `printReplicaSet`.
pub(super) fn replica_set(set: &Value, now: i64) -> Vec<Value> {
    let (names, images) = containers(arr_at(set, &["spec", "template", "spec", "containers"]));
    vec![
        cell(name(set)),
        Value::from(int_at(set, &["spec", "replicas"])),
        Value::from(int_at(set, &["status", "replicas"])),
        Value::from(int_at(set, &["status", "readyReplicas"])),
        age(set, now),
        cell(names),
        cell(images),
        cell(format_label_selector(at(set, &["spec", "selector"]))),
    ]
}

/// `printDaemonSet`.
pub(super) fn daemon_set(set: &Value, now: i64) -> Vec<Value> {
    let (names, images) = containers(arr_at(set, &["spec", "template", "spec", "containers"]));
    vec![
        cell(name(set)),
        Value::from(int_at(set, &["status", "desiredNumberScheduled"])),
        Value::from(int_at(set, &["status", "currentNumberScheduled"])),
        Value::from(int_at(set, &["status", "numberReady"])),
        Value::from(int_at(set, &["status", "updatedNumberScheduled"])),
        Value::from(int_at(set, &["status", "numberAvailable"])),
        cell(format_labels(map_at(
            set,
            &["spec", "template", "spec", "nodeSelector"],
        ))),
        age(set, now),
        cell(names),
        cell(images),
        cell(format_label_selector(at(set, &["spec", "selector"]))),
    ]
}

/// `printStatefulSet`.
pub(super) fn stateful_set(set: &Value, now: i64) -> Vec<Value> {
    let (names, images) = containers(arr_at(set, &["spec", "template", "spec", "containers"]));
    vec![
        cell(name(set)),
        cell(format!(
            "{}/{}",
            int_at(set, &["status", "readyReplicas"]),
            int_at(set, &["spec", "replicas"])
        )),
        age(set, now),
        cell(names),
        cell(images),
    ]
}

/// `printControllerRevision`.
pub(super) fn controller_revision(revision: &Value, now: i64) -> Vec<Value> {
    let controller = arr_at(revision, &["metadata", "ownerReferences"])
        .iter()
        .find(|r| opt_bool(r, &["controller"]) == Some(true));
    let controller_name = match controller {
        None => "<none>".to_owned(),
        Some(owner) => {
            let api_version = str_at(owner, &["apiVersion"]);
            let group = api_version.split_once('/').map_or("", |(g, _)| g);
            let kind = str_at(owner, &["kind"]);
            let owner_name = str_at(owner, &["name"]);
            if group.is_empty() && kind.is_empty() {
                owner_name.to_owned()
            } else if group.is_empty() {
                format!("{}/{owner_name}", kind.to_lowercase())
            } else {
                format!("{}/{owner_name}", format!("{kind}.{group}").to_lowercase())
            }
        }
    };
    vec![
        cell(name(revision)),
        cell(controller_name),
        Value::from(int_at(revision, &["revision"])),
        age(revision, now),
    ]
}

/// Whether the first condition of `kind` is true (`hasJobCondition`).
fn has_condition(object: &Value, kind: &str) -> bool {
    arr_at(object, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == kind)
        .is_some_and(|c| str_at(c, &["status"]) == "True")
}

/// `printJob`.
pub(super) fn job(job: &Value, now: i64) -> Vec<Value> {
    let succeeded = int_at(job, &["status", "succeeded"]);
    let completions = match int_of(at(job, &["spec", "completions"])) {
        Some(completions) => format!("{succeeded}/{completions}"),
        None => {
            let parallelism = int_at(job, &["spec", "parallelism"]);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        time_at(job, &["status", "startTime"]),
        time_at(job, &["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration_between(start, now.saturating_mul(1_000_000)),
        (Some(start), Some(end)) => human_duration_between(start, end),
    };
    let status = if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if present(job, &["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else if has_condition(job, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (names, images) = containers(arr_at(job, &["spec", "template", "spec", "containers"]));
    vec![
        cell(name(job)),
        cell(status),
        cell(completions),
        cell(duration),
        age(job, now),
        cell(names),
        cell(images),
        cell(format_label_selector(at(job, &["spec", "selector"]))),
    ]
}

/// `printCronJob`.
pub(super) fn cron_job(cron_job: &Value, now: i64) -> Vec<Value> {
    let last_schedule = match time_at(cron_job, &["status", "lastScheduleTime"]) {
        Some(t) => since(Some(t), now),
        None if present(cron_job, &["status", "lastScheduleTime"]) => since(None, now),
        None => "<none>".to_owned(),
    };
    let job_spec = at(cron_job, &["spec", "jobTemplate", "spec"]);
    let (names, images) = containers(arr_at(job_spec, &["template", "spec", "containers"]));
    vec![
        cell(name(cron_job)),
        cell(str_at(cron_job, &["spec", "schedule"])),
        cell(opt_str(cron_job, &["spec", "timeZone"]).unwrap_or("<none>")),
        cell(bool_ptr(opt_bool(cron_job, &["spec", "suspend"]))),
        Value::from(arr_at(cron_job, &["status", "active"]).len()),
        cell(last_schedule),
        age(cron_job, now),
        cell(names),
        cell(images),
        cell(format_label_selector(at(job_spec, &["selector"]))),
    ]
}

/// `(*resource.Quantity).String()` of an optional quantity: `<nil>` when absent.
fn quantity_ptr(value: &Value) -> String {
    if value.is_null() {
        "<nil>".to_owned()
    } else {
        quantity(value)
    }
}

/// One metric of `formatHPAMetrics`.
fn hpa_metric(spec: &Value, status: Option<&Value>) -> String {
    // The status of the same type at the same index, as upstream matches them.
    let current_of = |field: &str| status.map(|s| at(s, &[field])).filter(|v| !v.is_null());
    let value_or_average = |field: &str| {
        let source = at(spec, &[field]);
        let current = current_of(field);
        if present(source, &["target", "averageValue"]) {
            let current = current
                .map(|c| at(c, &["current", "averageValue"]))
                .filter(|v| !v.is_null())
                .map_or_else(|| "<unknown>".to_owned(), quantity_ptr);
            format!(
                "{current}/{} (avg)",
                quantity_ptr(at(source, &["target", "averageValue"]))
            )
        } else {
            let current = current.map_or_else(
                || "<unknown>".to_owned(),
                |c| quantity_ptr(at(c, &["current", "value"])),
            );
            format!("{current}/{}", quantity_ptr(at(source, &["target", "value"])))
        }
    };
    let resource = |field: &str| {
        let source = at(spec, &[field]);
        let current = current_of(field);
        let resource_name = str_at(source, &["name"]);
        if present(source, &["target", "averageValue"]) {
            let current = current.map_or_else(
                || "<unknown>".to_owned(),
                |c| quantity_ptr(at(c, &["current", "averageValue"])),
            );
            format!(
                "{resource_name}: {current}/{}",
                quantity_ptr(at(source, &["target", "averageValue"]))
            )
        } else {
            let current = current
                .and_then(|c| int_of(at(c, &["current", "averageUtilization"])))
                .map_or_else(|| "<unknown>".to_owned(), |u| format!("{u}%"));
            let target = int_of(at(source, &["target", "averageUtilization"]))
                .map_or_else(|| "<auto>".to_owned(), |u| format!("{u}%"));
            format!("{resource_name}: {current}/{target}")
        }
    };
    match str_at(spec, &["type"]) {
        "External" => value_or_average("external"),
        "Object" => value_or_average("object"),
        "Pods" => {
            let current = current_of("pods").map_or_else(
                || "<unknown>".to_owned(),
                |c| quantity_ptr(at(c, &["current", "averageValue"])),
            );
            format!(
                "{current}/{}",
                quantity_ptr(at(spec, &["pods", "target", "averageValue"]))
            )
        }
        "Resource" => resource("resource"),
        "ContainerResource" => resource("containerResource"),
        _ => "<unknown type>".to_owned(),
    }
}

/// `formatHPAMetrics`.
fn hpa_metrics(hpa: &Value) -> String {
    const MAX: usize = 2;
    let specs = arr_at(hpa, &["spec", "metrics"]);
    if specs.is_empty() {
        return "<none>".to_owned();
    }
    let statuses = arr_at(hpa, &["status", "currentMetrics"]);
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| hpa_metric(spec, statuses.get(i)))
        .collect();
    if list.len() > MAX {
        format!("{} + {} more...", list[..MAX].join(", "), list.len() - MAX)
    } else {
        list.join(", ")
    }
}

/// `printHorizontalPodAutoscaler` (an `autoscaling/v1` object is converted to v2 first).
pub(super) fn horizontal_pod_autoscaler(object: &Value, now: i64) -> Vec<Value> {
    let converted;
    let hpa = if str_at(object, &["apiVersion"]) == "autoscaling/v1" {
        converted = crate::convert::hpa_v1_to_v2(object.clone()).unwrap_or(Value::Null);
        &converted
    } else {
        object
    };
    let target = at(hpa, &["spec", "scaleTargetRef"]);
    let min_pods =
        int_of(at(hpa, &["spec", "minReplicas"])).map_or_else(|| "<unset>".to_owned(), |m| m.to_string());
    vec![
        cell(name(object)),
        cell(format!(
            "{}/{}",
            str_at(target, &["kind"]),
            str_at(target, &["name"])
        )),
        cell(hpa_metrics(hpa)),
        cell(min_pods),
        Value::from(int_at(hpa, &["spec", "maxReplicas"])),
        Value::from(int_at(hpa, &["status", "currentReplicas"])),
        age(object, now),
    ]
}

/// `printPodDisruptionBudget`.
pub(super) fn pod_disruption_budget(budget: &Value, now: i64) -> Vec<Value> {
    let bound = |field: &str| {
        let value = at(budget, &["spec", field]);
        if value.is_null() {
            "N/A".to_owned()
        } else {
            super::format::int_or_string(value)
        }
    };
    vec![
        cell(name(budget)),
        cell(bound("minAvailable")),
        cell(bound("maxUnavailable")),
        Value::from(int_at(budget, &["status", "disruptionsAllowed"])),
        age(budget, now),
    ]
}
