//! The strategy of apiregistration.k8s.io/v1 APIService, with its status subresource.
//!
//! Ports k8s.io/kube-aggregator: pkg/apis/apiregistration/v1/defaults.go (service port 443),
//! pkg/registry/apiservice/strategy.go (status reset, the `Available` condition of local
//! services, conditional updates, status updates that keep spec and labels) and
//! pkg/apis/apiregistration/validation/validation.go: the name is `version.group`, group and
//! version formats, priorities, local services without CA bundles, service references.
//!
//! Upstream stamps the `Available` condition of a local APIService with the creation time;
//! the strategy knows no clock, so the condition is written without `lastTransitionTime` and
//! the API server may fill it in.

use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::{
    APIService, APIServiceCondition, APIServiceSpec, APIServiceStatus,
};

use super::api_shared::{generic_meta, generic_meta_update, meta_path};
use super::core_shared::{list_of, str_of};
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{
    is_dns1035_label, is_dns1123_subdomain, is_valid_path_segment_name, is_valid_port_num,
};

const CONDITION_STATUSES: &[&str] = &["True", "False", "Unknown"];

/// The name rule of an APIService: a path segment equal to `version.group`.
fn name_errors(name: &str, required: &str) -> Vec<String> {
    let minimal = is_valid_path_segment_name(name);
    if !minimal.is_empty() {
        return minimal;
    }
    if name != required {
        return vec![format!("must be `spec.version+\".\"+spec.group`: {required:?}")];
    }
    Vec::new()
}

fn spec_of(service: &APIService) -> APIServiceSpec {
    service.spec.clone().unwrap_or_default()
}

fn validate_api_service(service: &APIService) -> ErrorList {
    let spec = spec_of(service);
    let group = str_of(&spec.group);
    let version = str_of(&spec.version);
    let required = format!("{version}.{group}");
    // apimachinery's object-meta checks with the name rule above (which needs the spec).
    let meta_path = meta_path();
    let mut errs = ErrorList::new();
    let generate_name = str_of(&service.metadata.generate_name);
    if !generate_name.is_empty() {
        for msg in name_errors(generate_name, &required) {
            errs.push(FieldError::invalid(
                &meta_path.child("generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = str_of(&service.metadata.name);
    if name.is_empty() {
        errs.push(FieldError::required(
            &meta_path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_errors(name, &required) {
            errs.push(FieldError::invalid(&meta_path.child("name"), name, msg));
        }
    }
    let name_fields = ["metadata.name", "metadata.generateName"];
    errs.extend(
        generic_meta(&service.metadata, false, |_, _| Vec::new())
            .into_iter()
            .filter(|e| !name_fields.contains(&e.field.as_str())),
    );

    let spec_path = Path::new("spec");
    if group.is_empty() && version != "v1" {
        errs.push(FieldError::required(
            &spec_path.child("group"),
            "only v1 may have an empty group and it better be legacy kube",
        ));
    }
    if !group.is_empty() {
        for msg in is_dns1123_subdomain(group) {
            errs.push(FieldError::invalid(&spec_path.child("group"), group, msg));
        }
    }
    for msg in is_dns1035_label(version) {
        errs.push(FieldError::invalid(&spec_path.child("version"), version, msg));
    }
    if !(1..=20000).contains(&spec.group_priority_minimum) {
        errs.push(FieldError::invalid(
            &spec_path.child("groupPriorityMinimum"),
            spec.group_priority_minimum,
            "must be positive and less than 20000",
        ));
    }
    if !(1..=1000).contains(&spec.version_priority) {
        errs.push(FieldError::invalid(
            &spec_path.child("versionPriority"),
            spec.version_priority,
            "must be positive and less than 1000",
        ));
    }
    let ca_bundle_len = spec.ca_bundle.as_ref().map_or(0, |b| b.0.len());
    let insecure = spec.insecure_skip_tls_verify.unwrap_or_default();
    let Some(reference) = &spec.service else {
        if ca_bundle_len != 0 {
            errs.push(FieldError::invalid(
                &spec_path.child("caBundle"),
                format!("{ca_bundle_len} bytes"),
                "local APIServices may not have a caBundle",
            ));
        }
        if insecure {
            errs.push(FieldError::invalid(
                &spec_path.child("insecureSkipTLSVerify"),
                insecure,
                "local APIServices may not have insecureSkipTLSVerify",
            ));
        }
        return errs;
    };
    let service_path = spec_path.child("service");
    if str_of(&reference.namespace).is_empty() {
        errs.push(FieldError::required(&service_path.child("namespace"), ""));
    }
    if str_of(&reference.name).is_empty() {
        errs.push(FieldError::required(&service_path.child("name"), ""));
    }
    let port = reference.port.unwrap_or_default();
    let port_errs = is_valid_port_num(i64::from(port));
    if !port_errs.is_empty() {
        errs.push(FieldError::invalid(
            &service_path.child("port"),
            port,
            format!("port is not valid: {}", port_errs.join(", ")),
        ));
    }
    if insecure && ca_bundle_len > 0 {
        errs.push(FieldError::invalid(
            &spec_path.child("insecureSkipTLSVerify"),
            insecure,
            "may not be true if caBundle is present",
        ));
    }
    errs
}

fn validate_status(service: &APIService) -> ErrorList {
    let path = Path::new("status").child("conditions");
    let conditions = service
        .status
        .as_ref()
        .map_or(&[][..], |s| list_of(&s.conditions));
    conditions
        .iter()
        .enumerate()
        .filter(|(_, c)| !CONDITION_STATUSES.contains(&c.status.as_str()))
        .map(|(i, c)| {
            FieldError::not_supported(
                &path.index(i).child("status"),
                c.status.as_str(),
                CONDITION_STATUSES,
            )
        })
        .collect()
}

impl KindStrategy for APIService {
    /// The spec and status are non-pointer structs upstream: always written.
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(APIServiceSpec::default);
        if let Some(service) = &mut spec.service {
            service.port.get_or_insert(443);
        }
        self.status.get_or_insert_with(APIServiceStatus::default);
    }

    fn prepare_for_create(&mut self) {
        let mut status = APIServiceStatus::default();
        if self.spec.as_ref().is_none_or(|s| s.service.is_none()) {
            status.conditions = Some(vec![APIServiceCondition {
                type_: "Available".to_owned(),
                status: "True".to_owned(),
                reason: Some("Local".to_owned()),
                message: Some("Local APIServices are always available".to_owned()),
                last_transition_time: None,
            }]);
        }
        self.status = Some(status);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
        self.metadata.labels.clone_from(&old.metadata.labels);
        self.metadata.annotations.clone_from(&old.metadata.annotations);
        self.metadata.finalizers.clone_from(&old.metadata.finalizers);
        self.metadata
            .owner_references
            .clone_from(&old.metadata.owner_references);
    }

    fn validate(&self) -> ErrorList {
        validate_api_service(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = generic_meta_update(&self.metadata, &old.metadata);
        errs.extend(validate_api_service(self));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let mut errs = generic_meta_update(&self.metadata, &old.metadata);
        errs.extend(validate_status(self));
        errs
    }

    const ALLOW_UNCONDITIONAL_UPDATE: bool = false;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::api_shared::testing::{check_create_cases, create, update};
    use crate::strategy::UpdateTarget;

    const API: &str = "apiregistration.k8s.io/v1";

    #[test]
    fn defaults_and_status() {
        let remote = create(json!({"apiVersion": API, "kind": "APIService", "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100,
                "service": {"namespace": "kube-system", "name": "metrics-server"}, "insecureSkipTLSVerify": true},
            "status": {"conditions": [{"type": "Available", "status": "True"}]}}))
        .unwrap();
        assert_eq!(
            remote,
            json!({
                "apiVersion": API, "kind": "APIService", "metadata": {"name": "v1beta1.metrics.k8s.io"},
                "spec": {"group": "metrics.k8s.io", "groupPriorityMinimum": 100, "insecureSkipTLSVerify": true,
                    "service": {"name": "metrics-server", "namespace": "kube-system", "port": 443},
                    "version": "v1beta1", "versionPriority": 100},
                "status": {}
            })
        );
        let local = create(json!({"apiVersion": API, "kind": "APIService", "metadata": {"name": "v1.example.com"},
            "spec": {"group": "example.com", "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15}}))
        .unwrap();
        assert_eq!(
            local["status"],
            json!({"conditions": [{"message": "Local APIServices are always available", "reason": "Local", "status": "True", "type": "Available"}]})
        );
        let mut old = remote;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["status"] = json!({"conditions": [{"type": "Available", "status": "False"}]});
        new["spec"]["versionPriority"] = json!(5);
        let status = update(new, &old, UpdateTarget::Status).unwrap();
        assert_eq!(status["spec"]["versionPriority"], json!(100));
        assert_eq!(status["status"]["conditions"][0]["status"], json!("False"));
    }

    #[test]
    fn validation() {
        check_create_cases(&[
            (
                json!({"apiVersion": API, "kind": "APIService", "metadata": {"name": "v1.wrong.io"},
                    "spec": {"group": "example.com", "version": "v1", "groupPriorityMinimum": 0, "versionPriority": 1001,
                        "caBundle": "AAAA", "insecureSkipTLSVerify": true}}),
                vec![
                    "metadata.name: Invalid value: \"v1.wrong.io\": must be `spec.version+\".\"+spec.group`: \"v1.example.com\"",
                    "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000",
                    "spec.versionPriority: Invalid value: 1001: must be positive and less than 1000",
                    "spec.caBundle: Invalid value: \"3 bytes\": local APIServices may not have a caBundle",
                    "spec.insecureSkipTLSVerify: Invalid value: true: local APIServices may not have insecureSkipTLSVerify",
                ],
            ),
            (
                json!({"apiVersion": API, "kind": "APIService", "metadata": {"name": "V2."},
                    "spec": {"version": "V2", "groupPriorityMinimum": 1, "versionPriority": 1,
                        "service": {"port": 0}}}),
                vec![
                    "spec.group: Required value: only v1 may have an empty group and it better be legacy kube",
                    "spec.version: Invalid value: \"V2\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                    "spec.service.namespace: Required value",
                    "spec.service.name: Required value",
                    "spec.service.port: Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive",
                ],
            ),
        ]);
    }
}
