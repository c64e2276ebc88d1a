//! Printers of the core (`v1`) kinds: pods, pod templates, replication controllers,
//! services, endpoints, nodes, events (core and `events.k8s.io`), namespaces, secrets,
//! service accounts, persistent volumes and claims, component statuses, config maps and
//! resource quotas.

use serde_json::Value;

use super::format::{
    age, arr_at, at, cell, containers, format_labels, int_at, load_balancer_ingress, map_at, name, opt_bool,
    opt_str, present, quantity, since, str_at, time_at,
};

/// `status.reason` of pods on an unreachable node (`pkg/util/node.NodeUnreachablePodReason`).
const NODE_UNREACHABLE_POD_REASON: &str = "NodeLost";

/// Keeps the later of two restart times (`metav1.Time.Before`; `None` is the zero time).
fn later(current: Option<i64>, candidate: Option<i64>) -> Option<i64> {
    match (current, candidate) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (None, b) => b,
        (a, None) => a,
    }
}

/// The finish time of a container status's last termination, if it has one.
fn last_termination(status: &Value) -> Option<Option<i64>> {
    let terminated = at(status, &["lastState", "terminated"]);
    (!terminated.is_null()).then(|| time_at(terminated, &["finishedAt"]))
}

fn is_restartable_init_container(container: Option<&Value>) -> bool {
    container.is_some_and(|c| str_at(c, &["restartPolicy"]) == "Always")
}

/// `printPod`.
pub(super) fn pod(pod: &Value, now: i64) -> Vec<Value> {
    let spec = at(pod, &["spec"]);
    let status = at(pod, &["status"]);
    let mut restarts: i64 = 0;
    let mut restartable_init_restarts: i64 = 0;
    let mut total = arr_at(spec, &["containers"]).len();
    let mut ready = 0usize;
    let mut last_restart: Option<i64> = None;
    let mut last_restartable_init_restart: Option<i64> = None;

    let phase = str_at(status, &["phase"]);
    let mut reason = phase.to_owned();
    if !str_at(status, &["reason"]).is_empty() {
        reason = str_at(status, &["reason"]).to_owned();
    }
    let conditions = arr_at(status, &["conditions"]);
    for condition in conditions {
        if str_at(condition, &["type"]) == "PodScheduled"
            && str_at(condition, &["reason"]) == "SchedulingGated"
        {
            reason = "SchedulingGated".to_owned();
        }
    }

    let init_containers = arr_at(spec, &["initContainers"]);
    let init_container = |name: &str| {
        init_containers
            .iter()
            .rev()
            .find(|c| str_at(c, &["name"]) == name)
    };
    total += init_containers
        .iter()
        .filter(|c| is_restartable_init_container(Some(c)))
        .count();

    let mut initializing = false;
    for (i, container) in arr_at(status, &["initContainerStatuses"]).iter().enumerate() {
        restarts += int_at(container, &["restartCount"]);
        if let Some(finished) = last_termination(container) {
            last_restart = later(last_restart, finished);
        }
        let restartable = is_restartable_init_container(init_container(str_at(container, &["name"])));
        if restartable {
            restartable_init_restarts += int_at(container, &["restartCount"]);
            if let Some(finished) = last_termination(container) {
                last_restartable_init_restart = later(last_restartable_init_restart, finished);
            }
        }
        let terminated = at(container, &["state", "terminated"]);
        let waiting = at(container, &["state", "waiting"]);
        if !terminated.is_null() && int_at(terminated, &["exitCode"]) == 0 {
            continue;
        }
        if restartable && opt_bool(container, &["started"]) == Some(true) {
            if opt_bool(container, &["ready"]) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if !terminated.is_null() {
            let terminated_reason = str_at(terminated, &["reason"]);
            reason = if terminated_reason.is_empty() {
                let signal = int_at(terminated, &["signal"]);
                if signal != 0 {
                    format!("Init:Signal:{signal}")
                } else {
                    format!("Init:ExitCode:{}", int_at(terminated, &["exitCode"]))
                }
            } else {
                format!("Init:{terminated_reason}")
            };
        } else if !waiting.is_null()
            && !str_at(waiting, &["reason"]).is_empty()
            && str_at(waiting, &["reason"]) != "PodInitializing"
        {
            reason = format!("Init:{}", str_at(waiting, &["reason"]));
        } else {
            reason = format!("Init:{i}/{}", init_containers.len());
        }
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .find(|c| str_at(c, &["type"]) == "Initialized")
        .is_some_and(|c| str_at(c, &["status"]) == "True");
    if !initializing || initialized {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        let mut error_reason = String::new();
        for container in arr_at(status, &["containerStatuses"]).iter().rev() {
            restarts += int_at(container, &["restartCount"]);
            if let Some(finished) = last_termination(container) {
                last_restart = later(last_restart, finished);
            }
            let waiting = at(container, &["state", "waiting"]);
            let terminated = at(container, &["state", "terminated"]);
            if !waiting.is_null() && !str_at(waiting, &["reason"]).is_empty() {
                reason = str_at(waiting, &["reason"]).to_owned();
            } else if !terminated.is_null() {
                let terminated_reason = str_at(terminated, &["reason"]);
                let signal = int_at(terminated, &["signal"]);
                let exit_code = int_at(terminated, &["exitCode"]);
                reason = if !terminated_reason.is_empty() {
                    terminated_reason.to_owned()
                } else if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!("ExitCode:{exit_code}")
                };
                if exit_code != 0 {
                    error_reason = reason.clone();
                }
            } else if opt_bool(container, &["ready"]) == Some(true)
                && present(container, &["state", "running"])
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" {
            let pod_ready = conditions
                .iter()
                .any(|c| str_at(c, &["type"]) == "Ready" && str_at(c, &["status"]) == "True");
            if has_running && pod_ready {
                reason = "Running".to_owned();
            } else if !error_reason.is_empty() {
                reason = error_reason;
            } else if has_running {
                reason = "NotReady".to_owned();
            }
        }
    }

    let deleting = present(pod, &["metadata", "deletionTimestamp"]);
    if deleting && str_at(status, &["reason"]) == NODE_UNREACHABLE_POD_REASON {
        reason = "Unknown".to_owned();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".to_owned();
    }

    let restarts_text = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    // v1 -> internal conversion: `podIP` wins over `podIPs[0]`.
    let pod_ip = opt_str(status, &["podIP"])
        .filter(|ip| !ip.is_empty())
        .or_else(|| arr_at(status, &["podIPs"]).first().map(|ip| str_at(ip, &["ip"])))
        .unwrap_or("");
    let or_none = |text: &str| {
        if text.is_empty() {
            "<none>".to_owned()
        } else {
            text.to_owned()
        }
    };
    let gates = arr_at(spec, &["readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_owned()
    } else {
        let true_conditions = gates
            .iter()
            .filter(|gate| {
                conditions
                    .iter()
                    .find(|c| str_at(c, &["type"]) == str_at(gate, &["conditionType"]))
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{true_conditions}/{}", gates.len())
    };
    vec![
        cell(name(pod)),
        cell(format!("{ready}/{total}")),
        cell(reason),
        cell(restarts_text),
        age(pod, now),
        cell(or_none(pod_ip)),
        cell(or_none(str_at(spec, &["nodeName"]))),
        cell(or_none(str_at(status, &["nominatedNodeName"]))),
        cell(readiness_gates),
    ]
}

/// `printPodTemplate`.
pub(super) fn pod_template(template: &Value, _now: i64) -> Vec<Value> {
    let (names, images) = containers(arr_at(template, &["template", "spec", "containers"]));
    vec![
        cell(name(template)),
        cell(names),
        cell(images),
        cell(format_labels(map_at(
            template,
            &["template", "metadata", "labels"],
        ))),
    ]
}

/// `printReplicationController`.
pub(super) fn replication_controller(rc: &Value, now: i64) -> Vec<Value> {
    let (names, images) = containers(arr_at(rc, &["spec", "template", "spec", "containers"]));
    vec![
        cell(name(rc)),
        Value::from(int_at(rc, &["spec", "replicas"])),
        Value::from(int_at(rc, &["status", "replicas"])),
        Value::from(int_at(rc, &["status", "readyReplicas"])),
        age(rc, now),
        cell(names),
        cell(images),
        cell(format_labels(map_at(rc, &["spec", "selector"]))),
    ]
}

/// `getServiceExternalIP` (wide).
fn service_external_ip(service: &Value) -> String {
    let external: Vec<&str> = arr_at(service, &["spec", "externalIPs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    match str_at(service, &["spec", "type"]) {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_owned()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_ingress(at(service, &["status", "loadBalancer"]));
            if !external.is_empty() {
                let mut results: Vec<&str> = Vec::new();
                if !lb.is_empty() {
                    results.extend(lb.split(','));
                }
                results.extend(external);
                return results.join(",");
            }
            if lb.is_empty() { "<pending>".to_owned() } else { lb }
        }
        "ExternalName" => str_at(service, &["spec", "externalName"]).to_owned(),
        _ => "<unknown>".to_owned(),
    }
}

/// `makePortString`.
fn service_ports(ports: &[Value]) -> String {
    ports
        .iter()
        .map(|port| {
            let number = int_at(port, &["port"]);
            let protocol = str_at(port, &["protocol"]);
            let node_port = int_at(port, &["nodePort"]);
            if node_port > 0 {
                format!("{number}:{node_port}/{protocol}")
            } else {
                format!("{number}/{protocol}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `printService`.
pub(super) fn service(service: &Value, now: i64) -> Vec<Value> {
    let cluster_ip = arr_at(service, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let mut ports = service_ports(arr_at(service, &["spec", "ports"]));
    if ports.is_empty() {
        ports = "<none>".to_owned();
    }
    vec![
        cell(name(service)),
        cell(str_at(service, &["spec", "type"])),
        cell(cluster_ip),
        cell(service_external_ip(service)),
        cell(ports),
        age(service, now),
        cell(format_labels(map_at(service, &["spec", "selector"]))),
    ]
}

/// `net.JoinHostPort`.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `formatEndpoints` with all ports.
fn format_endpoints(endpoints: &Value) -> String {
    const MAX: usize = 3;
    let subsets = arr_at(endpoints, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_owned();
    }
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for subset in subsets {
        let addresses = arr_at(subset, &["addresses"]);
        let ports = arr_at(subset, &["ports"]);
        if ports.is_empty() {
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(address, &["ip"]).to_owned());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for address in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(address, &["ip"]), int_at(port, &["port"])));
            }
        }
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", count.saturating_sub(MAX))
    } else {
        joined
    }
}

/// `printEndpoints`.
pub(super) fn endpoints(endpoints: &Value, now: i64) -> Vec<Value> {
    vec![
        cell(name(endpoints)),
        cell(format_endpoints(endpoints)),
        age(endpoints, now),
    ]
}

/// `printNode`.
pub(super) fn node(node: &Value, now: i64) -> Vec<Value> {
    // The last condition of each type wins, as in upstream's map.
    let ready = arr_at(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready");
    let mut status: Vec<&str> = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if opt_bool(node, &["spec", "unschedulable"]) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<&str> = map_at(node, &["metadata", "labels"])
        .into_iter()
        .flatten()
        .filter_map(|(key, value)| {
            if let Some(role) = key.strip_prefix("node-role.kubernetes.io/") {
                (!role.is_empty()).then_some(role)
            } else if key == "kubernetes.io/role" {
                value.as_str().filter(|v| !v.is_empty())
            } else {
                None
            }
        })
        .collect();
    roles.sort_unstable();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_owned()
    } else {
        roles.join(",")
    };
    let info = at(node, &["status", "nodeInfo"]);
    let unknown = |field: &str| {
        let text = str_at(info, &[field]);
        if text.is_empty() {
            "<unknown>".to_owned()
        } else {
            text.to_owned()
        }
    };
    let address = |kind: &str| {
        arr_at(node, &["status", "addresses"])
            .iter()
            .find(|a| str_at(a, &["type"]) == kind)
            .map_or_else(|| "<none>".to_owned(), |a| str_at(a, &["address"]).to_owned())
    };
    vec![
        cell(name(node)),
        cell(status.join(",")),
        cell(roles),
        age(node, now),
        cell(str_at(info, &["kubeletVersion"])),
        cell(address("InternalIP")),
        cell(address("ExternalIP")),
        cell(unknown("osImage")),
        cell(unknown("kernelVersion")),
        cell(unknown("containerRuntimeVersion")),
    ]
}

/// `printEvent` on a core `v1` Event.
pub(super) fn event(event: &Value, now: i64) -> Vec<Value> {
    let first_timestamp = time_at(event, &["firstTimestamp"]);
    let first = match first_timestamp {
        Some(t) => since(Some(t), now),
        None => since(time_at(event, &["eventTime"]), now),
    };
    let mut last = match time_at(event, &["lastTimestamp"]) {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = int_at(event, &["count"]);
    let series = at(event, &["series"]);
    if !series.is_null() {
        last = since(time_at(series, &["lastObservedTime"]), now);
        count = int_at(series, &["count"]);
    } else if count == 0 {
        count = 1;
    }
    let involved = at(event, &["involvedObject"]);
    let kind = str_at(involved, &["kind"]).to_lowercase();
    let target = match str_at(involved, &["name"]) {
        "" => kind,
        object => format!("{kind}/{object}"),
    };
    let first_non_empty = |a: &str, b: &str| if a.is_empty() { b.to_owned() } else { a.to_owned() };
    let component = first_non_empty(
        str_at(event, &["source", "component"]),
        str_at(event, &["reportingComponent"]),
    );
    let instance = first_non_empty(
        str_at(event, &["source", "host"]),
        str_at(event, &["reportingInstance"]),
    );
    let source = if instance.is_empty() {
        component
    } else {
        format!("{component}, {instance}")
    };
    vec![
        cell(last),
        cell(str_at(event, &["type"])),
        cell(str_at(event, &["reason"])),
        cell(target),
        cell(str_at(involved, &["fieldPath"])),
        cell(source),
        cell(str_at(event, &["message"]).trim()),
        cell(first),
        Value::from(count),
        cell(name(event)),
    ]
}

/// `printEvent` on an `events.k8s.io/v1` Event, converted to the core shape first as
/// upstream converts it to the internal type.
pub(super) fn events_v1_event(object: &Value, now: i64) -> Vec<Value> {
    let mut value = object.clone();
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".to_owned(), Value::from("events.k8s.io/v1"));
        map.insert("kind".to_owned(), Value::from("Event"));
    }
    match crate::convert::events_v1_to_core_event(value) {
        Ok(core) => event(&core, now),
        Err(_) => event(&Value::Null, now),
    }
}

/// `printNamespace`.
pub(super) fn namespace(namespace: &Value, now: i64) -> Vec<Value> {
    vec![
        cell(name(namespace)),
        cell(str_at(namespace, &["status", "phase"])),
        age(namespace, now),
    ]
}

/// `printSecret` (`stringData` merges into `data`, as the v1 conversion does).
pub(super) fn secret(secret: &Value, now: i64) -> Vec<Value> {
    let mut keys: Vec<&String> = map_at(secret, &["data"])
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .collect();
    keys.extend(
        map_at(secret, &["stringData"])
            .into_iter()
            .flatten()
            .map(|(k, _)| k),
    );
    keys.sort_unstable();
    keys.dedup();
    vec![
        cell(name(secret)),
        cell(str_at(secret, &["type"])),
        Value::from(keys.len()),
        age(secret, now),
    ]
}

/// `printServiceAccount`.
pub(super) fn service_account(account: &Value, now: i64) -> Vec<Value> {
    vec![cell(name(account)), age(account, now)]
}

/// `helper.GetAccessModesAsString`.
fn access_modes(modes: &[Value]) -> String {
    let has = |mode: &str| modes.iter().any(|m| m.as_str() == Some(mode));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// `volume.beta.kubernetes.io/storage-class`, which wins over the field.
const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

fn beta_storage_class(object: &Value) -> Option<&str> {
    map_at(object, &["metadata", "annotations"])
        .and_then(|a| a.get(BETA_STORAGE_CLASS_ANNOTATION))
        .map(|v| v.as_str().unwrap_or(""))
}

fn terminating_phase(object: &Value) -> &str {
    if present(object, &["metadata", "deletionTimestamp"]) {
        "Terminating"
    } else {
        str_at(object, &["status", "phase"])
    }
}

/// `printPersistentVolume`.
pub(super) fn persistent_volume(volume: &Value, now: i64) -> Vec<Value> {
    let claim = at(volume, &["spec", "claimRef"]);
    let claim = if claim.is_null() {
        String::new()
    } else {
        format!("{}/{}", str_at(claim, &["namespace"]), str_at(claim, &["name"]))
    };
    let class = beta_storage_class(volume).unwrap_or_else(|| str_at(volume, &["spec", "storageClassName"]));
    vec![
        cell(name(volume)),
        cell(quantity(at(volume, &["spec", "capacity", "storage"]))),
        cell(access_modes(arr_at(volume, &["spec", "accessModes"]))),
        cell(str_at(volume, &["spec", "persistentVolumeReclaimPolicy"])),
        cell(terminating_phase(volume)),
        cell(claim),
        cell(class),
        cell(opt_str(volume, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        cell(str_at(volume, &["status", "reason"])),
        age(volume, now),
        cell(opt_str(volume, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ]
}

/// `printPersistentVolumeClaim`.
pub(super) fn persistent_volume_claim(claim: &Value, now: i64) -> Vec<Value> {
    let volume_name = str_at(claim, &["spec", "volumeName"]);
    let (capacity, modes) = if volume_name.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(at(claim, &["status", "capacity", "storage"])),
            access_modes(arr_at(claim, &["status", "accessModes"])),
        )
    };
    let class = beta_storage_class(claim)
        .or_else(|| opt_str(claim, &["spec", "storageClassName"]))
        .unwrap_or("");
    vec![
        cell(name(claim)),
        cell(terminating_phase(claim)),
        cell(volume_name),
        cell(capacity),
        cell(modes),
        cell(class),
        cell(opt_str(claim, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        age(claim, now),
        cell(opt_str(claim, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ]
}

/// `printComponentStatus`.
pub(super) fn component_status(status: &Value, _now: i64) -> Vec<Value> {
    let healthy = arr_at(status, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Healthy");
    let (state, message, error) = match healthy {
        Some(c) => (
            if str_at(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            str_at(c, &["message"]),
            str_at(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    vec![cell(name(status)), cell(state), cell(message), cell(error)]
}

/// `printConfigMap`.
pub(super) fn config_map(map: &Value, now: i64) -> Vec<Value> {
    let count =
        map_at(map, &["data"]).map_or(0, |m| m.len()) + map_at(map, &["binaryData"]).map_or(0, |m| m.len());
    vec![cell(name(map)), Value::from(count), age(map, now)]
}

/// `printResourceQuota`.
pub(super) fn resource_quota(quota: &Value, now: i64) -> Vec<Value> {
    let hard = map_at(quota, &["status", "hard"]);
    let mut resources: Vec<&String> = hard.into_iter().flatten().map(|(k, _)| k).collect();
    resources.sort_unstable();
    let mut requests = String::new();
    let mut limits = String::new();
    for resource in resources {
        let used = quantity(at(quota, &["status", "used", resource]));
        let limit = quantity(at(quota, &["status", "hard", resource]));
        let pieces: Vec<&str> = resource.split('.').collect();
        let column = if pieces.len() > 1 && pieces[0] == "limits" {
            &mut limits
        } else {
            &mut requests
        };
        column.push_str(&format!("{resource}: {used}/{limit}, "));
    }
    vec![
        cell(name(quota)),
        cell(requests.strip_suffix(", ").unwrap_or(&requests)),
        cell(limits.strip_suffix(", ").unwrap_or(&limits)),
        age(quota, now),
    ]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::format::parse_time;

    #[test]
    fn restarts_show_the_last_termination() {
        let now = parse_time("2024-01-01T01:00:00Z").unwrap() / 1_000_000;
        let pod = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"containers": [{"name": "a"}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "a", "ready": true, "restartCount": 3,
                "state": {"running": {}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-01-01T00:55:00Z"}},
            }]},
        });
        let cells = super::pod(&pod, now);
        assert_eq!(
            cells[..5],
            [
                json!("web"),
                json!("1/1"),
                json!("Running"),
                json!("3 (5m ago)"),
                json!("60m")
            ]
        );
    }
}
