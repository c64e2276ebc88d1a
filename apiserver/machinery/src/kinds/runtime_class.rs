//! The strategy of node.k8s.io/v1 RuntimeClass (in its own file, since `node.rs` holds the
//! core Node).
//!
//! Ports pkg/registry/node/runtimeclass/strategy.go (create on update, no unconditional
//! updates, deprecated node label warnings) and `ValidateRuntimeClass*` of
//! pkg/apis/node/validation/validation.go: the handler (a DNS label, immutable), the overhead
//! (container resource rules) and the scheduling node selector and tolerations.

use std::collections::{BTreeSet, HashSet};

use k8s_openapi::api::core::v1::{ResourceRequirements, Toleration};
use k8s_openapi::api::node::v1::RuntimeClass;

use super::api_shared::{deprecated_node_label, generic_meta, generic_meta_update};
use super::core_shared::{json_str, list_of, str_of};
use super::pod_container::validate_container_resource_requirements;
use super::pod_spec::{PodValidationOptions, validate_tolerations};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{
    canonicalize_quantity, name_is_dns_label, name_is_dns_subdomain, validate_immutable_field,
    validate_labels,
};

/// A toleration as upstream's error renders the internal Go struct (no JSON tags).
fn toleration_value(t: &Toleration) -> BadValue {
    let seconds = t
        .toleration_seconds
        .map_or_else(|| "null".to_owned(), |s| s.to_string());
    BadValue::Plain(format!(
        "{{\"Key\":{},\"Operator\":{},\"Value\":{},\"Effect\":{},\"TolerationSeconds\":{seconds}}}",
        json_str(str_of(&t.key)),
        json_str(str_of(&t.operator)),
        json_str(str_of(&t.value)),
        json_str(str_of(&t.effect)),
    ))
}

fn validate_runtime_class(rc: &RuntimeClass) -> ErrorList {
    let mut errs = generic_meta(&rc.metadata, false, name_is_dns_subdomain);
    errs.extend(
        name_is_dns_label(&rc.handler, false)
            .into_iter()
            .map(|msg| FieldError::invalid(&Path::new("handler"), rc.handler.as_str(), msg)),
    );
    if let Some(overhead) = &rc.overhead {
        let requirements = ResourceRequirements {
            limits: overhead.pod_fixed.clone(),
            ..Default::default()
        };
        errs.extend(validate_container_resource_requirements(
            &requirements,
            &BTreeSet::new(),
            &Path::new("overhead"),
            &PodValidationOptions::default(),
        ));
    }
    if let Some(scheduling) = &rc.scheduling {
        let path = Path::new("scheduling");
        if let Some(selector) = &scheduling.node_selector {
            errs.extend(validate_labels(Some(selector), &path.child("nodeSelector")));
        }
        let tolerations = list_of(&scheduling.tolerations);
        let tolerations_path = path.child("tolerations");
        errs.extend(validate_tolerations(
            tolerations,
            &tolerations_path,
            &PodValidationOptions::default(),
        ));
        let mut seen = HashSet::new();
        for (i, t) in tolerations.iter().enumerate() {
            let key = (
                str_of(&t.key),
                str_of(&t.operator),
                str_of(&t.value),
                str_of(&t.effect),
            );
            if !seen.insert(key) {
                errs.push(FieldError::duplicate(
                    &tolerations_path.index(i),
                    toleration_value(t),
                ));
            }
        }
    }
    errs
}

impl KindStrategy for RuntimeClass {
    fn apply_defaults(&mut self) {
        if let Some(overhead) = &mut self.overhead {
            for quantity in overhead.pod_fixed.iter_mut().flat_map(|m| m.values_mut()) {
                canonicalize_quantity(quantity);
            }
        }
    }

    fn validate(&self) -> ErrorList {
        validate_runtime_class(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_runtime_class(self);
        errs.extend(generic_meta_update(&self.metadata, &old.metadata));
        errs.extend(validate_immutable_field(
            self.handler.as_str(),
            old.handler.as_str(),
            &Path::new("handler"),
        ));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        let selector = self.scheduling.as_ref().and_then(|s| s.node_selector.as_ref());
        selector
            .into_iter()
            .flatten()
            .filter_map(|(key, _)| {
                deprecated_node_label(key).map(|msg| format!("scheduling.nodeSelector: {msg}"))
            })
            .collect()
    }

    const ALLOW_CREATE_ON_UPDATE: bool = true;
    const ALLOW_UNCONDITIONAL_UPDATE: bool = false;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::api_shared::testing::{check_create_cases, create, update_errors, warnings};
    use crate::strategy::UpdateTarget;

    const API: &str = "node.k8s.io/v1";

    #[test]
    fn runtime_class() {
        let rc = json!({"apiVersion": API, "kind": "RuntimeClass", "metadata": {"name": "gvisor"}, "handler": "runsc",
            "overhead": {"podFixed": {"cpu": "0.25", "memory": "120Mi"}},
            "scheduling": {"nodeSelector": {"beta.kubernetes.io/os": "linux"}}});
        let out = create(rc).unwrap();
        assert_eq!(
            out["overhead"],
            json!({"podFixed": {"cpu": "250m", "memory": "120Mi"}})
        );
        assert_eq!(
            warnings(&out),
            ["scheduling.nodeSelector: deprecated since v1.14; use \"kubernetes.io/os\" instead"]
        );
        check_create_cases(&[(
            json!({"apiVersion": API, "kind": "RuntimeClass", "metadata": {"name": "x"}, "handler": "Run.SC",
                "scheduling": {"tolerations": [{"key": "a", "operator": "Exists"}, {"key": "a", "operator": "Exists"}]}}),
            vec![
                "handler: Invalid value: \"Run.SC\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                "scheduling.tolerations[1]: Duplicate value: {\"Key\":\"a\",\"Operator\":\"Exists\",\"Value\":\"\",\"Effect\":\"\",\"TolerationSeconds\":null}",
            ],
        )]);
        let mut old = out;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["handler"] = json!("runc");
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            ["handler: Invalid value: \"runc\": field is immutable"]
        );
    }
}
