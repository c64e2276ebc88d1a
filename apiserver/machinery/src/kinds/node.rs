//! The Node strategy.
//!
//! Ports `SetDefaults_NodeStatus` and the resource-list rounding of zz_generated.defaults.go,
//! the `podCIDR`/`podCIDRs` conversion of pkg/apis/core/v1/conversion.go, pkg/registry/core/node/
//! strategy.go (status kept by the main resource, spec by the status subresource, dropped
//! fields, warnings, selectable `spec.unschedulable`) and `ValidateNode`, `ValidateNodeUpdate`
//! of pkg/apis/core/validation/validation.go.
//!
//! Upstream writes `spec`, `status.daemonEndpoints` (with its `Port: 0`) and the string fields
//! of `status.nodeInfo` even when empty; the defaults here do the same.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    ConfigMapNodeConfigSource, DaemonEndpoint, Node, NodeConfigSource, NodeDaemonEndpoints, NodeSpec,
    NodeStatus, NodeSystemInfo, Taint,
};

use super::core_shared::{json_str, list_of, meta_path, parse_resource_list, str_of};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{
    STRICT_IP_CIDR_VALIDATION, get_warnings_for_cidr, is_config_map_key, is_dual_stack_cidr_strings,
    is_valid_cidr_for_legacy_field, is_valid_label_value, name_errors, name_is_dns_subdomain,
    validate_label_name, validate_namespace_name, validate_object_meta, validate_object_meta_update,
    validate_positive_field, validate_resource_quantity_value,
};

use super::quota::default_resource_list;

const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
const FEATURE_NAME_MAX_LENGTH: usize = 253;

/// The `podCIDR`/`podCIDRs` round trip through the internal type, which has only the list:
/// a singular value that disagrees with the list wins, and the singular is the list's first.
fn normalize_pod_cidrs(spec: &mut NodeSpec) {
    let single = str_of(&spec.pod_cidr).to_owned();
    let list = list_of(&spec.pod_cidrs);
    if !single.is_empty() && (list.is_empty() || list[0] != single) {
        spec.pod_cidrs = Some(vec![single]);
    }
    spec.pod_cidr = list_of(&spec.pod_cidrs).first().cloned();
    if spec.pod_cidrs.as_ref().is_some_and(Vec::is_empty) {
        spec.pod_cidrs = None;
    }
}

/// A taint as Go's JSON encoder writes the internal type.
fn taint_json(taint: &Taint) -> String {
    let time_added = taint
        .time_added
        .as_ref()
        .and_then(|t| serde_json::to_string(t).ok())
        .unwrap_or_else(|| "null".to_owned());
    format!(
        "{{\"Key\":{},\"Value\":{},\"Effect\":{},\"TimeAdded\":{time_added}}}",
        json_str(&taint.key),
        json_str(str_of(&taint.value)),
        json_str(&taint.effect)
    )
}

fn validate_taints(taints: &[Taint], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut unique: BTreeSet<(&str, &str)> = BTreeSet::new();
    for (i, taint) in taints.iter().enumerate() {
        let item = path.index(i);
        errs.extend(validate_label_name(&taint.key, &item.child("key")));
        let value = str_of(&taint.value);
        let value_errs = is_valid_label_value(value);
        if !value_errs.is_empty() {
            errs.push(FieldError::invalid(
                &item.child("value"),
                value,
                value_errs.join(";"),
            ));
        }
        let effect = taint.effect.as_str();
        if effect.is_empty() {
            errs.push(FieldError::required(&item.child("effect"), ""));
        } else if !TAINT_EFFECTS.contains(&effect) {
            errs.push(FieldError::not_supported(
                &item.child("effect"),
                effect,
                TAINT_EFFECTS,
            ));
        }
        if !unique.insert((effect, taint.key.as_str())) {
            let mut dup = FieldError::duplicate(&item, BadValue::Plain(taint_json(taint)));
            dup.detail = "taints must be unique by key and effect pair".to_owned();
            errs.push(dup);
        }
    }
    errs
}

fn validate_node_resources(node: &Node) -> ErrorList {
    let mut errs = ErrorList::new();
    let status = node.status.as_ref();
    for (name, list) in [
        ("capacity", status.and_then(|s| s.capacity.clone())),
        ("allocatable", status.and_then(|s| s.allocatable.clone())),
    ] {
        // Upstream's path is `status.capacity.<name>`, not a map key.
        let base = Path::new("status").child(name);
        let list = Some(list.unwrap_or_default());
        let (values, parse_errs) = parse_resource_list(&list, &base);
        errs.extend(parse_errs);
        for (key, value) in &values {
            errs.extend(validate_resource_quantity_value(key, value, &base.child(key)));
        }
    }
    errs
}

fn is_feature_name(name: &str) -> bool {
    let mut segments = name.split('/');
    let first_ok = segments.next().is_some_and(|first| {
        first.as_bytes().first().is_some_and(u8::is_ascii_uppercase)
            && first.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    first_ok
        && segments.all(|s| {
            s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
                && s.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

fn validate_declared_features(features: &[String], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, feature) in features.iter().enumerate() {
        if feature.len() > FEATURE_NAME_MAX_LENGTH {
            errs.push(FieldError::invalid(
                &path.index(i),
                feature.as_str(),
                format!("invalid feature name {feature:?}: must be no more than {FEATURE_NAME_MAX_LENGTH} characters"),
            ));
        } else if !is_feature_name(feature) {
            errs.push(FieldError::invalid(
                &path.index(i),
                feature.as_str(),
                format!("invalid feature name {feature:?}: must start with an UpperCamelCase segment, with subsequent segments separated by '/' (e.g., MyFeature or MyFeature/mySubFeature), and contain only alphanumeric characters and slashes"),
            ));
        }
        if let Some(next) = features.get(i + 1) {
            if feature == next {
                errs.push(FieldError::duplicate(&path.index(i + 1), next.as_str()));
            } else if feature > next {
                errs.push(FieldError::invalid(
                    &path.index(i + 1),
                    next.as_str(),
                    "list must be sorted alphabetically",
                ));
            }
        }
    }
    errs
}

fn declared_features(node: &Node) -> &[String] {
    node.status
        .as_ref()
        .map_or(&[], |s| list_of(&s.declared_features))
}

/// Upstream's `ValidateNode`.
fn validate_node(node: &Node) -> ErrorList {
    let meta = meta_path();
    let mut errs = validate_object_meta(&node.metadata, false, name_is_dns_subdomain, &meta);
    let spec = node.spec.as_ref();
    let taints = spec.map_or(&[][..], |s| list_of(&s.taints));
    if !taints.is_empty() {
        // Upstream's path is `metadata.taints`.
        errs.extend(validate_taints(taints, &meta.child("taints")));
    }
    errs.extend(validate_node_resources(node));
    let swap = node
        .status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .and_then(|i| i.swap.as_ref())
        .and_then(|s| s.capacity);
    if let Some(capacity) = swap {
        errs.extend(validate_positive_field(
            capacity,
            &meta.child("nodeSwapStatus").child("capacity"),
        ));
    }
    errs.extend(validate_declared_features(
        declared_features(node),
        &Path::new("status").child("declaredFeatures"),
    ));
    let cidrs = spec.map_or(&[][..], |s| list_of(&s.pod_cidrs));
    if !cidrs.is_empty() {
        let path = Path::new("spec").child("podCIDRs");
        for (i, cidr) in cidrs.iter().enumerate() {
            errs.extend(is_valid_cidr_for_legacy_field(
                &path.index(i),
                cidr,
                STRICT_IP_CIDR_VALIDATION,
                &[],
            ));
        }
        if cidrs.len() > 1 {
            match is_dual_stack_cidr_strings(cidrs) {
                None => errs.push(FieldError::internal(
                    &path,
                    "invalid PodCIDRs. failed to check with dual stack with error:invalid CIDR address",
                )),
                Some(dual) if !dual || cidrs.len() > 2 => errs.push(FieldError::invalid(
                    &path,
                    crate::field::json_value(&cidrs),
                    "may specify no more than one CIDR for each IP family",
                )),
                Some(_) => {}
            }
        }
    }
    errs
}

fn config_source_json(source: &NodeConfigSource) -> String {
    let config_map = source.config_map.as_ref().map_or_else(
        || "null".to_owned(),
        |c| {
            format!(
                "{{\"Namespace\":{},\"Name\":{},\"UID\":{},\"ResourceVersion\":{},\"KubeletConfigKey\":{}}}",
                json_str(&c.namespace),
                json_str(&c.name),
                json_str(str_of(&c.uid)),
                json_str(str_of(&c.resource_version)),
                json_str(&c.kubelet_config_key)
            )
        },
    );
    format!("{{\"ConfigMap\":{config_map}}}")
}

fn validate_config_map_source(source: &ConfigMapNodeConfigSource, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if source.namespace.is_empty() {
        errs.push(FieldError::required(&path.child("namespace"), ""));
    } else {
        errs.extend(name_errors(
            &path.child("namespace"),
            &source.namespace,
            validate_namespace_name(&source.namespace, false),
        ));
    }
    if source.name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        errs.extend(name_errors(
            &path.child("name"),
            &source.name,
            name_is_dns_subdomain(&source.name, false),
        ));
    }
    if source.kubelet_config_key.is_empty() {
        errs.push(FieldError::required(&path.child("kubeletConfigKey"), ""));
    } else {
        errs.extend(name_errors(
            &path.child("kubeletConfigKey"),
            &source.kubelet_config_key,
            is_config_map_key(&source.kubelet_config_key),
        ));
    }
    errs
}

/// `validateNodeConfigSourceSpec` (`in_status` false) and `validateNodeConfigSourceStatus`.
fn validate_config_source(source: &NodeConfigSource, in_status: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    match &source.config_map {
        Some(config_map) => {
            let cm_path = path.child("configMap");
            let uid = str_of(&config_map.uid);
            let resource_version = str_of(&config_map.resource_version);
            if in_status {
                if uid.is_empty() {
                    errs.push(FieldError::required(&cm_path.child("uid"), ""));
                }
                if resource_version.is_empty() {
                    errs.push(FieldError::required(&cm_path.child("resourceVersion"), ""));
                }
            } else {
                if !uid.is_empty() {
                    errs.push(FieldError::forbidden(
                        &cm_path.child("uid"),
                        "uid must not be set in spec",
                    ));
                }
                if !resource_version.is_empty() {
                    errs.push(FieldError::forbidden(
                        &cm_path.child("resourceVersion"),
                        "resourceVersion must not be set in spec",
                    ));
                }
            }
            errs.extend(validate_config_map_source(config_map, &cm_path));
        }
        None => errs.push(FieldError::invalid(
            path,
            BadValue::Plain(config_source_json(source)),
            "exactly one reference subfield must be non-nil",
        )),
    }
    errs
}

/// Upstream's `ValidateNodeUpdate`.
fn validate_node_update(node: &Node, old: &Node) -> ErrorList {
    let mut errs = validate_object_meta_update(&node.metadata, &old.metadata, &meta_path());
    errs.extend(validate_node_resources(node));
    errs.extend(validate_declared_features(
        declared_features(node),
        &Path::new("status").child("declaredFeatures"),
    ));
    let status = node.status.as_ref();
    let mut addresses = BTreeSet::new();
    for (i, address) in status
        .map_or(&[][..], |s| list_of(&s.addresses))
        .iter()
        .enumerate()
    {
        if !addresses.insert((address.type_.as_str(), address.address.as_str())) {
            errs.push(FieldError::duplicate(
                &Path::new("status").child("addresses").index(i),
                BadValue::Plain(format!(
                    "{{\"Type\":{},\"Address\":{}}}",
                    json_str(&address.type_),
                    json_str(&address.address)
                )),
            ));
        }
    }
    let spec = node.spec.as_ref();
    let old_spec = old.spec.as_ref();
    let old_cidrs = old_spec.map_or(&[][..], |s| list_of(&s.pod_cidrs));
    let new_cidrs = spec.map_or(&[][..], |s| list_of(&s.pod_cidrs));
    if !old_cidrs.is_empty() {
        let forbidden = || {
            FieldError::forbidden(
                &Path::new("spec").child("podCIDRs"),
                "node updates may not change podCIDR except from \"\" to valid",
            )
        };
        if old_cidrs.len() != new_cidrs.len() {
            errs.push(forbidden());
        } else {
            for (old_cidr, new_cidr) in old_cidrs.iter().zip(new_cidrs) {
                if old_cidr != new_cidr {
                    errs.push(forbidden());
                }
            }
        }
    }
    let old_provider = old_spec.map_or("", |s| str_of(&s.provider_id));
    if !old_provider.is_empty() && old_provider != spec.map_or("", |s| str_of(&s.provider_id)) {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("providerID"),
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    if let Some(source) = spec.and_then(|s| s.config_source.as_ref()) {
        errs.extend(validate_config_source(
            source,
            false,
            &Path::new("spec").child("configSource"),
        ));
    }
    if let Some(config) = status.and_then(|s| s.config.as_ref()) {
        let path = Path::new("status").child("config");
        for (name, source) in [
            ("assigned", &config.assigned),
            ("active", &config.active),
            ("lastKnownGood", &config.last_known_good),
        ] {
            if let Some(source) = source {
                errs.extend(validate_config_source(source, true, &path.child(name)));
            }
        }
    }
    let taints = spec.map_or(&[][..], |s| list_of(&s.taints));
    if !taints.is_empty() {
        errs.extend(validate_taints(taints, &meta_path().child("taints")));
    }
    if spec.map_or("", |s| str_of(&s.external_id)) != old_spec.map_or("", |s| str_of(&s.external_id)) {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("externalID"),
            "may not be updated",
        ));
    }
    errs
}

impl KindStrategy for Node {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(NodeSpec::default);
        normalize_pod_cidrs(spec);
        let status = self.status.get_or_insert_with(NodeStatus::default);
        if status.allocatable.is_none() && status.capacity.is_some() {
            status.allocatable.clone_from(&status.capacity);
        }
        default_resource_list(&mut status.capacity);
        default_resource_list(&mut status.allocatable);
        let endpoints = status
            .daemon_endpoints
            .get_or_insert_with(NodeDaemonEndpoints::default);
        endpoints
            .kubelet_endpoint
            .get_or_insert_with(DaemonEndpoint::default);
        status.node_info.get_or_insert_with(NodeSystemInfo::default);
    }

    fn prepare_for_create(&mut self) {
        if let Some(spec) = self.spec.as_mut() {
            spec.config_source = None;
        }
        if let Some(status) = self.status.as_mut() {
            status.config = None;
            // NodeDeclaredFeatures is alpha and off.
            status.declared_features = None;
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
        let old_source = old.spec.as_ref().is_some_and(|s| s.config_source.is_some());
        if !old_source && let Some(spec) = self.spec.as_mut() {
            spec.config_source = None;
        }
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
        let old_config = old.status.as_ref().is_some_and(|s| s.config.is_some());
        if !old_config && let Some(status) = self.status.as_mut() {
            status.config = None;
        }
    }

    fn validate(&self) -> ErrorList {
        validate_node(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_node(self);
        errs.extend(validate_node_update(self, old));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        validate_node_update(self, old)
    }

    /// Upstream gives these on create and main-resource updates, not status updates.
    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let Some(spec) = &self.spec else {
            return warnings;
        };
        if spec.config_source.is_some() {
            warnings.push("spec.configSource: the feature is removed".to_owned());
        }
        if !str_of(&spec.external_id).is_empty() {
            warnings
                .push("spec.externalID: this field is deprecated, and is unused by Kubernetes".to_owned());
        }
        let path = Path::new("spec").child("podCIDRs");
        for (i, cidr) in list_of(&spec.pod_cidrs).iter().enumerate() {
            warnings.extend(get_warnings_for_cidr(&path.index(i), cidr));
        }
        warnings
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        let unschedulable = self.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false);
        vec![("spec.unschedulable", unschedulable.to_string())]
    }

    const SELECTABLE_FIELDS: &'static [&'static str] = &["spec.unschedulable"];
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::core_shared::testing::{
        create, create_errors, fields, update, update_errors, warnings,
    };
    use crate::strategy::UpdateTarget;

    #[test]
    fn created_node_as_kube_apiserver_returns_it() {
        let out = create(
            "Node",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                   "spec": {"podCIDR": "10.244.0.0/24"},
                   "status": {"capacity": {"cpu": "4", "memory": "8192Mi"}}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                "spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24"]},
                "status": {
                    "capacity": {"cpu": "4", "memory": "8Gi"},
                    "allocatable": {"cpu": "4", "memory": "8Gi"},
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                    "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "", "osImage": "",
                                 "containerRuntimeVersion": "", "kubeletVersion": "", "kubeProxyVersion": "",
                                 "operatingSystem": "", "architecture": ""}
                }
            })
        );
        assert_eq!(fields("Node", &out), [("spec.unschedulable", "false".to_owned())]);
    }

    #[test]
    fn validation() {
        let cases = [
            (
                json!({"metadata": {"name": "n"}, "spec": {"taints": [
                    {"key": "a", "effect": "NoSchedule"},
                    {"key": "a", "value": "-x", "effect": "NoSchedule"},
                    {"key": "b", "effect": "Sometimes"},
                    {"key": "c", "effect": ""}
                ]}}),
                vec![
                    "metadata.taints[1].value: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                    "metadata.taints[1]: Duplicate value: {\"Key\":\"a\",\"Value\":\"-x\",\"Effect\":\"NoSchedule\",\"TimeAdded\":null}: taints must be unique by key and effect pair",
                    "metadata.taints[2].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"",
                    "metadata.taints[3].effect: Required value",
                ],
            ),
            (
                json!({"metadata": {"name": "n"}, "spec": {"podCIDRs": ["10.0.0.0/24", "10.1.0.0/24"]},
                       "status": {"capacity": {"cpu": "-1", "pods": "1.5"}}}),
                vec![
                    "status.capacity.cpu: Invalid value: \"-1\": must be greater than or equal to 0",
                    "status.capacity.pods: Invalid value: \"1500m\": must be an integer",
                    "status.allocatable.cpu: Invalid value: \"-1\": must be greater than or equal to 0",
                    "status.allocatable.pods: Invalid value: \"1500m\": must be an integer",
                    "spec.podCIDRs: Invalid value: [\"10.0.0.0/24\",\"10.1.0.0/24\"]: may specify no more than one CIDR for each IP family",
                ],
            ),
            (
                json!({"metadata": {"name": "n", "namespace": "x"}, "spec": {"podCIDR": "10.0.0.0/33"}}),
                vec![
                    "metadata.namespace: Forbidden: not allowed on this type",
                    "spec.podCIDRs[0]: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                ],
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(create_errors("Node", object.clone()), expected, "{object}");
        }
    }

    #[test]
    fn updates() {
        let mut old = create(
            "Node",
            json!({"metadata": {"name": "n"}, "spec": {"podCIDRs": ["10.0.0.0/24"], "providerID": "p1", "externalID": "e"}}),
        )
        .unwrap();
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["spec"]["podCIDR"] = json!("10.1.0.0/24");
        new["spec"]["podCIDRs"] = json!(["10.1.0.0/24"]);
        new["spec"]["providerID"] = json!("p2");
        new["spec"]["externalID"] = json!("f");
        new["spec"]["configSource"] =
            json!({"configMap": {"namespace": "ns", "name": "c", "kubeletConfigKey": "k"}});
        assert_eq!(
            update_errors("Node", new, &old, UpdateTarget::Main),
            [
                "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid",
                "spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid",
                "spec.externalID: Forbidden: may not be updated",
            ]
        );
        // Status goes through the status subresource only.
        let mut new = old.clone();
        new["spec"]["unschedulable"] = json!(true);
        new["status"]["addresses"] = json!([{"type": "InternalIP", "address": "10.0.0.1"}]);
        let out = update("Node", new.clone(), &old, UpdateTarget::Main).unwrap();
        assert_eq!(
            (&out["spec"]["unschedulable"], out["status"].get("addresses")),
            (&json!(true), None)
        );
        let out = update("Node", new, &old, UpdateTarget::Status).unwrap();
        assert_eq!(out["spec"].get("unschedulable"), None);
        assert_eq!(
            out["status"]["addresses"],
            json!([{"type": "InternalIP", "address": "10.0.0.1"}])
        );
        let mut new = old.clone();
        new["status"]["addresses"] = json!([{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "InternalIP", "address": "10.0.0.1"}]);
        assert_eq!(
            update_errors("Node", new, &old, UpdateTarget::Status),
            ["status.addresses[1]: Duplicate value: {\"Type\":\"InternalIP\",\"Address\":\"10.0.0.1\"}"]
        );
        assert_eq!(
            warnings(
                "Node",
                &json!({"metadata": {"name": "n"}, "spec": {"externalID": "x", "podCIDRs": ["10.0.0.1/24"]}})
            ),
            [
                "spec.externalID: this field is deprecated, and is unused by Kubernetes",
                "spec.podCIDRs[0]: CIDR value \"10.0.0.1/24\" is ambiguous in this context (should be \"10.0.0.0/24\" or \"10.0.0.1/32\"?)",
            ]
        );
    }
}
