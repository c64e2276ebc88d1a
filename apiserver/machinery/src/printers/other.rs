//! Printers of the remaining groups: networking, RBAC bindings, certificates, coordination,
//! storage, scheduling, node, discovery, admission registration, flow control, dynamic
//! resource allocation, and kube-aggregator's APIService table.

use serde_json::Value;

use super::format::{
    age, arr_at, at, cell, format_label_selector, go_label_selector_string, human_duration, int_at, int_of,
    list_with_more, load_balancer_ingress, map_at, name, opt_bool, opt_str, present, str_at,
};

/// Columns with only the name and the age (`printDeviceClass`, `printResourceClaimTemplate`).
pub(super) fn name_and_age(object: &Value, now: i64) -> Vec<Value> {
    vec![cell(name(object)), age(object, now)]
}

/// `formatHosts`.
fn ingress_hosts(rules: &[Value]) -> String {
    const MAX: usize = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, &["host"]);
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_owned();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - MAX)
    } else {
        joined
    }
}

/// `printIngress`.
pub(super) fn ingress(ingress: &Value, now: i64) -> Vec<Value> {
    let ports = if arr_at(ingress, &["spec", "tls"]).is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        cell(name(ingress)),
        cell(opt_str(ingress, &["spec", "ingressClassName"]).unwrap_or("<none>")),
        cell(ingress_hosts(arr_at(ingress, &["spec", "rules"]))),
        cell(load_balancer_ingress(at(ingress, &["status", "loadBalancer"]))),
        cell(ports),
        age(ingress, now),
    ]
}

/// `printIngressClass`.
pub(super) fn ingress_class(class: &Value, now: i64) -> Vec<Value> {
    let parameters = at(class, &["spec", "parameters"]);
    let parameters = if parameters.is_null() {
        "<none>".to_owned()
    } else {
        let mut text = str_at(parameters, &["kind"]).to_owned();
        if let Some(group) = opt_str(parameters, &["apiGroup"]) {
            text = format!("{text}.{group}");
        }
        format!("{text}/{}", str_at(parameters, &["name"]))
    };
    vec![
        cell(name(class)),
        cell(str_at(class, &["spec", "controller"])),
        cell(parameters),
        age(class, now),
    ]
}

/// `printNetworkPolicy`.
pub(super) fn network_policy(policy: &Value, now: i64) -> Vec<Value> {
    // `&obj.Spec.PodSelector` is never nil: an absent selector is the empty one.
    let selector = match at(policy, &["spec", "podSelector"]) {
        Value::Null => Value::Object(serde_json::Map::new()),
        other => other.clone(),
    };
    vec![
        cell(name(policy)),
        cell(format_label_selector(&selector)),
        age(policy, now),
    ]
}

/// `printServiceCIDR`.
pub(super) fn service_cidr(cidr: &Value, now: i64) -> Vec<Value> {
    let cidrs: Vec<&str> = arr_at(cidr, &["spec", "cidrs"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    vec![cell(name(cidr)), cell(cidrs.join(",")), age(cidr, now)]
}

/// `printIPAddress` (upstream prints an AGE cell without a column for it).
pub(super) fn ip_address(address: &Value, now: i64) -> Vec<Value> {
    let parent = at(address, &["spec", "parentRef"]);
    let parent = if parent.is_null() {
        "<none>".to_owned()
    } else {
        let group = str_at(parent, &["group"]);
        let resource = str_at(parent, &["resource"]);
        let mut text = if group.is_empty() {
            resource.to_lowercase()
        } else {
            format!("{resource}.{group}").to_lowercase()
        };
        let namespace = str_at(parent, &["namespace"]);
        if !namespace.is_empty() {
            text = format!("{text}/{namespace}");
        }
        format!("{text}/{}", str_at(parent, &["name"]))
    };
    vec![cell(name(address)), cell(parent), age(address, now)]
}

/// `printRoleBinding` and `printClusterRoleBinding`.
pub(super) fn role_binding(binding: &Value, now: i64) -> Vec<Value> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut accounts = Vec::new();
    for subject in arr_at(binding, &["subjects"]) {
        let subject_name = str_at(subject, &["name"]);
        match str_at(subject, &["kind"]) {
            "ServiceAccount" => accounts.push(format!("{}/{subject_name}", str_at(subject, &["namespace"]))),
            "User" => users.push(subject_name.to_owned()),
            "Group" => groups.push(subject_name.to_owned()),
            _ => {}
        }
    }
    vec![
        cell(name(binding)),
        cell(format!(
            "{}/{}",
            str_at(binding, &["roleRef", "kind"]),
            str_at(binding, &["roleRef", "name"])
        )),
        age(binding, now),
        cell(users.join(", ")),
        cell(groups.join(", ")),
        cell(accounts.join(", ")),
    ]
}

/// `extractCSRStatus`.
fn csr_status(csr: &Value) -> String {
    let conditions = arr_at(csr, &["status", "conditions"]);
    let has = |kind: &str| conditions.iter().any(|c| str_at(c, &["type"]) == kind);
    let mut status = if has("Denied") {
        "Denied".to_owned()
    } else if has("Approved") {
        "Approved".to_owned()
    } else {
        "Pending".to_owned()
    };
    if has("Failed") {
        status.push_str(",Failed");
    }
    if !str_at(csr, &["status", "certificate"]).is_empty() {
        status.push_str(",Issued");
    }
    status
}

/// `printCertificateSigningRequest`.
pub(super) fn certificate_signing_request(csr: &Value, now: i64) -> Vec<Value> {
    let signer = match str_at(csr, &["spec", "signerName"]) {
        "" => "<none>",
        signer => signer,
    };
    let duration =
        int_of(at(csr, &["spec", "expirationSeconds"])).map_or_else(|| "<none>".to_owned(), human_duration);
    vec![
        cell(name(csr)),
        age(csr, now),
        cell(signer),
        cell(str_at(csr, &["spec", "username"])),
        cell(duration),
        cell(csr_status(csr)),
    ]
}

/// `printLease`.
pub(super) fn lease(lease: &Value, now: i64) -> Vec<Value> {
    vec![
        cell(name(lease)),
        cell(str_at(lease, &["spec", "holderIdentity"])),
        age(lease, now),
    ]
}

/// `storageutil.IsDefaultAnnotation`.
fn is_default_class(class: &Value) -> bool {
    let annotations = map_at(class, &["metadata", "annotations"]);
    [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|key| annotations.and_then(|a| a.get(*key)).and_then(Value::as_str) == Some("true"))
}

/// `printStorageClass`.
pub(super) fn storage_class(class: &Value, now: i64) -> Vec<Value> {
    let mut class_name = name(class).to_owned();
    if is_default_class(class) {
        class_name.push_str(" (default)");
    }
    vec![
        cell(class_name),
        cell(str_at(class, &["provisioner"])),
        cell(opt_str(class, &["reclaimPolicy"]).unwrap_or("Delete")),
        cell(opt_str(class, &["volumeBindingMode"]).unwrap_or("Immediate")),
        Value::from(opt_bool(class, &["allowVolumeExpansion"]).unwrap_or(false)),
        age(class, now),
    ]
}

/// `printVolumeAttributesClass`.
pub(super) fn volume_attributes_class(class: &Value, now: i64) -> Vec<Value> {
    vec![
        cell(name(class)),
        cell(str_at(class, &["driverName"])),
        age(class, now),
    ]
}

/// `printVolumeAttachment`.
pub(super) fn volume_attachment(attachment: &Value, now: i64) -> Vec<Value> {
    vec![
        cell(name(attachment)),
        cell(str_at(attachment, &["spec", "attacher"])),
        cell(str_at(attachment, &["spec", "source", "persistentVolumeName"])),
        cell(str_at(attachment, &["spec", "nodeName"])),
        Value::from(opt_bool(attachment, &["status", "attached"]).unwrap_or(false)),
        age(attachment, now),
    ]
}

/// `printCSINode`.
pub(super) fn csi_node(node: &Value, now: i64) -> Vec<Value> {
    vec![
        cell(name(node)),
        Value::from(arr_at(node, &["spec", "drivers"]).len()),
        age(node, now),
    ]
}

/// `printCSIDriver`.
pub(super) fn csi_driver(driver: &Value, now: i64) -> Vec<Value> {
    let spec = at(driver, &["spec"]);
    let modes: Vec<&str> = arr_at(spec, &["volumeLifecycleModes"])
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let modes = if modes.is_empty() {
        "<none>".to_owned()
    } else {
        modes.join(",")
    };
    let token_requests = match at(spec, &["tokenRequests"]) {
        Value::Array(requests) => requests
            .iter()
            .map(|r| str_at(r, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
        _ => "<unset>".to_owned(),
    };
    vec![
        cell(name(driver)),
        Value::from(opt_bool(spec, &["attachRequired"]).unwrap_or(true)),
        Value::from(opt_bool(spec, &["podInfoOnMount"]).unwrap_or(false)),
        Value::from(opt_bool(spec, &["storageCapacity"]).unwrap_or(false)),
        cell(token_requests),
        Value::from(opt_bool(spec, &["requiresRepublish"]).unwrap_or(false)),
        cell(modes),
        age(driver, now),
    ]
}

/// `printPriorityClass`.
pub(super) fn priority_class(class: &Value, now: i64) -> Vec<Value> {
    vec![
        cell(name(class)),
        Value::from(int_at(class, &["value"])),
        Value::from(opt_bool(class, &["globalDefault"]).unwrap_or(false)),
        age(class, now),
        cell(str_at(class, &["preemptionPolicy"])),
    ]
}

/// `printRuntimeClass`.
pub(super) fn runtime_class(class: &Value, now: i64) -> Vec<Value> {
    vec![
        cell(name(class)),
        cell(str_at(class, &["handler"])),
        age(class, now),
    ]
}

/// `printEndpointSlice`.
pub(super) fn endpoint_slice(slice: &Value, now: i64) -> Vec<Value> {
    let ports: Vec<String> = arr_at(slice, &["ports"])
        .iter()
        .map(
            |port| match (int_of(at(port, &["port"])), opt_str(port, &["name"])) {
                (Some(number), _) => number.to_string(),
                (None, Some(port_name)) => port_name.to_owned(),
                (None, None) => "*".to_owned(),
            },
        )
        .collect();
    let addresses: Vec<String> = arr_at(slice, &["endpoints"])
        .iter()
        .flat_map(|endpoint| arr_at(endpoint, &["addresses"]))
        .map(|address| address.as_str().unwrap_or("").to_owned())
        .collect();
    vec![
        cell(name(slice)),
        cell(str_at(slice, &["addressType"])),
        cell(list_with_more(&ports, 3)),
        cell(list_with_more(&addresses, 3)),
        age(slice, now),
    ]
}

/// `printMutatingWebhook` and `printValidatingWebhook`.
pub(super) fn webhook_configuration(configuration: &Value, now: i64) -> Vec<Value> {
    vec![
        cell(name(configuration)),
        Value::from(arr_at(configuration, &["webhooks"]).len()),
        age(configuration, now),
    ]
}

/// `printValidatingAdmissionPolicy`.
pub(super) fn validating_admission_policy(policy: &Value, now: i64) -> Vec<Value> {
    let param_kind = at(policy, &["spec", "paramKind"]);
    let param_kind = if param_kind.is_null() {
        "<unset>".to_owned()
    } else {
        format!(
            "{}/{}",
            str_at(param_kind, &["apiVersion"]),
            str_at(param_kind, &["kind"])
        )
    };
    vec![
        cell(name(policy)),
        Value::from(arr_at(policy, &["spec", "validations"]).len()),
        cell(param_kind),
        age(policy, now),
    ]
}

/// `printValidatingAdmissionPolicyBinding`.
pub(super) fn validating_admission_policy_binding(binding: &Value, now: i64) -> Vec<Value> {
    let param_ref = at(binding, &["spec", "paramRef"]);
    let mut param = "<unset>".to_owned();
    if !param_ref.is_null() {
        let ref_name = str_at(param_ref, &["name"]);
        if !ref_name.is_empty() {
            param = match str_at(param_ref, &["namespace"]) {
                "" => format!("*/{ref_name}"),
                namespace => format!("{namespace}/{ref_name}"),
            };
        } else if present(param_ref, &["selector"]) {
            param = go_label_selector_string(at(param_ref, &["selector"]));
        }
    }
    vec![
        cell(name(binding)),
        cell(str_at(binding, &["spec", "policyName"])),
        cell(param),
        age(binding, now),
    ]
}

/// `printFlowSchema`.
pub(super) fn flow_schema(schema: &Value, now: i64) -> Vec<Value> {
    let distinguisher = at(schema, &["spec", "distinguisherMethod"]);
    let distinguisher = if distinguisher.is_null() {
        "<none>"
    } else {
        str_at(distinguisher, &["type"])
    };
    let dangling = arr_at(schema, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Dangling")
        .map_or("?", |c| str_at(c, &["status"]));
    vec![
        cell(name(schema)),
        cell(str_at(schema, &["spec", "priorityLevelConfiguration", "name"])),
        Value::from(int_at(schema, &["spec", "matchingPrecedence"])),
        cell(distinguisher),
        age(schema, now),
        cell(dangling),
    ]
}

/// `printPriorityLevelConfiguration`.
pub(super) fn priority_level_configuration(configuration: &Value, now: i64) -> Vec<Value> {
    let none = || cell("<none>");
    let (mut shares, mut queues, mut hand_size, mut queue_length_limit) = (none(), none(), none(), none());
    let limited = at(configuration, &["spec", "limited"]);
    if !limited.is_null() {
        shares = Value::from(int_at(limited, &["nominalConcurrencyShares"]));
        let queuing = at(limited, &["limitResponse", "queuing"]);
        if !queuing.is_null() {
            queues = Value::from(int_at(queuing, &["queues"]));
            hand_size = Value::from(int_at(queuing, &["handSize"]));
            queue_length_limit = Value::from(int_at(queuing, &["queueLengthLimit"]));
        }
    }
    vec![
        cell(name(configuration)),
        cell(str_at(configuration, &["spec", "type"])),
        shares,
        queues,
        hand_size,
        queue_length_limit,
        age(configuration, now),
    ]
}

/// `printResourceClaim` (`resourceClaimState`).
pub(super) fn resource_claim(claim: &Value, now: i64) -> Vec<Value> {
    let deleted = present(claim, &["metadata", "deletionTimestamp"]);
    let mut states = Vec::new();
    if deleted {
        states.push("deleted");
    }
    if !present(claim, &["status", "allocation"]) {
        if !deleted {
            states.push("pending");
        }
    } else {
        states.push("allocated");
        if !arr_at(claim, &["status", "reservedFor"]).is_empty() {
            states.push("reserved");
        }
    }
    vec![cell(name(claim)), cell(states.join(",")), age(claim, now)]
}

/// `printResourceSlice`.
pub(super) fn resource_slice(slice: &Value, now: i64) -> Vec<Value> {
    vec![
        cell(name(slice)),
        cell(str_at(slice, &["spec", "nodeName"])),
        cell(str_at(slice, &["spec", "driver"])),
        cell(str_at(slice, &["spec", "pool", "name"])),
        age(slice, now),
    ]
}

/// kube-aggregator's APIService `ConvertToTable`.
pub(super) fn api_service(service: &Value, now: i64) -> Vec<Value> {
    let reference = at(service, &["spec", "service"]);
    let reference = if reference.is_null() {
        "Local".to_owned()
    } else {
        format!(
            "{}/{}",
            str_at(reference, &["namespace"]),
            str_at(reference, &["name"])
        )
    };
    let available = arr_at(service, &["status", "conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Available");
    let status = match available {
        None => "Unknown".to_owned(),
        Some(c) => {
            let status = str_at(c, &["status"]);
            let reason = str_at(c, &["reason"]);
            if status == "True" || reason.is_empty() {
                status.to_owned()
            } else {
                format!("{status} ({reason})")
            }
        }
    };
    vec![
        cell(name(service)),
        cell(reference),
        cell(status),
        age(service, now),
    ]
}
