//! The core/v1 ReplicationController: defaults, registry strategy and validation.
//!
//! Ports `SetObjectDefaults_ReplicationController` (selector and metadata labels defaulted
//! from the template's labels, `replicas: 1`, the template defaulted like any pod spec),
//! pkg/registry/core/replicationcontroller/strategy.go (status reset on create, generation
//! 1 and bumped on spec changes, status kept on update, the status strategy, the
//! non-convertible selector check, `status.replicas` as a selectable field, warnings) and
//! `ValidateReplicationController` (+Update, +StatusUpdate).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ReplicationController, ReplicationControllerSpec, ReplicationControllerStatus,
};

use super::pod_spec::{
    PodValidationOptions, default_pod_template_spec, drop_disabled_template_fields, pod_template_warnings,
    str_of, validate_pod_template_spec,
};
use crate::field::{BadValue, ErrorList, ErrorType, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{
    bad_value, is_dns1123_label, name_is_dns_subdomain, validate_nonnegative_field, validate_object_meta,
    validate_object_meta_update,
};

/// `SetDefaults_ReplicationController` and the declarative `replicas: 1`.
pub fn default_replication_controller(rc: &mut ReplicationController) {
    let spec = rc.spec.get_or_insert_with(Default::default);
    let labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    // An empty map is not printed, so only non-empty labels make a visible difference.
    if let Some(labels) = labels.filter(|l| !l.is_empty()) {
        if spec.selector.as_ref().is_none_or(BTreeMap::is_empty) {
            spec.selector = Some(labels.clone());
        }
        if rc.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty) {
            rc.metadata.labels = Some(labels);
        }
    }
    spec.replicas.get_or_insert(1);
    if spec.min_ready_seconds == Some(0) {
        spec.min_ready_seconds = None;
    }
    if spec.selector.as_ref().is_some_and(BTreeMap::is_empty) {
        spec.selector = None;
    }
    if let Some(template) = &mut spec.template {
        default_pod_template_spec(template);
    }
    rc.status.get_or_insert_with(Default::default);
}

fn selector_matches(selector: &BTreeMap<String, String>, labels: Option<&BTreeMap<String, String>>) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Upstream's `ValidateReplicationControllerSpec` (with `ValidatePodTemplateSpecForRC`).
pub fn validate_replication_controller_spec(
    spec: &ReplicationControllerSpec,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = validate_nonnegative_field(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        &path.child("minReadySeconds"),
    );
    let empty = BTreeMap::new();
    let selector = spec.selector.as_ref().unwrap_or(&empty);
    if selector.is_empty() {
        errs.push(FieldError::required(&path.child("selector"), ""));
    }
    match spec.replicas {
        None => errs.push(FieldError::required(&path.child("replicas"), "")),
        Some(replicas) => errs.extend(validate_nonnegative_field(
            i64::from(replicas),
            &path.child("replicas"),
        )),
    }
    let template_path = path.child("template");
    let Some(template) = &spec.template else {
        errs.push(FieldError::required(&template_path, ""));
        return errs;
    };
    let template_labels = template.metadata.as_ref().and_then(|m| m.labels.as_ref());
    if !selector.is_empty() && !selector_matches(selector, template_labels) {
        errs.push(FieldError::invalid(
            &template_path.child("metadata").child("labels"),
            template_labels.map_or(BadValue::Plain("null".to_owned()), bad_value),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template_spec(template, &template_path, opts));
    let template_spec = template.spec.as_ref();
    let restart_policy = template_spec
        .map(|s| str_of(&s.restart_policy))
        .unwrap_or_default();
    if restart_policy != "Always" {
        errs.push(FieldError::not_supported(
            &template_path.child("spec").child("restartPolicy"),
            restart_policy,
            &["Always"],
        ));
    }
    if template_spec.is_some_and(|s| s.active_deadline_seconds.is_some()) {
        errs.push(FieldError::forbidden(
            &template_path.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicationController is not Supported",
        ));
    }
    errs
}

/// Upstream's `ValidateReplicationControllerStatus`.
pub fn validate_replication_controller_status(
    status: &ReplicationControllerStatus,
    path: &Path,
) -> ErrorList {
    let replicas = status.replicas;
    let fully_labeled = status.fully_labeled_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let mut errs = validate_nonnegative_field(i64::from(replicas), &path.child("replicas"));
    errs.extend(validate_nonnegative_field(
        i64::from(fully_labeled),
        &path.child("fullyLabeledReplicas"),
    ));
    errs.extend(validate_nonnegative_field(
        i64::from(ready),
        &path.child("readyReplicas"),
    ));
    errs.extend(validate_nonnegative_field(
        i64::from(available),
        &path.child("availableReplicas"),
    ));
    errs.extend(validate_nonnegative_field(
        status.observed_generation.unwrap_or(0),
        &path.child("observedGeneration"),
    ));
    let msg = "cannot be greater than status.replicas";
    if fully_labeled > replicas {
        errs.push(FieldError::invalid(
            &path.child("fullyLabeledReplicas"),
            fully_labeled,
            msg,
        ));
    }
    if ready > replicas {
        errs.push(FieldError::invalid(&path.child("readyReplicas"), ready, msg));
    }
    if available > replicas {
        errs.push(FieldError::invalid(
            &path.child("availableReplicas"),
            available,
            msg,
        ));
    }
    if available > ready {
        errs.push(FieldError::invalid(
            &path.child("availableReplicas"),
            available,
            "cannot be greater than readyReplicas",
        ));
    }
    errs
}

fn spec_of(rc: &ReplicationController) -> ReplicationControllerSpec {
    rc.spec.clone().unwrap_or_default()
}

const NON_CONVERTIBLE_PREFIX: &str = "non-convertible.kubernetes.io";

impl KindStrategy for ReplicationController {
    fn apply_defaults(&mut self) {
        default_replication_controller(self);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(ReplicationControllerStatus::default());
        self.metadata.generation = Some(1);
        if let Some(template) = self.spec.as_mut().and_then(|s| s.template.as_mut()) {
            drop_disabled_template_fields(template, None);
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status = old.status.clone();
        let old_template = old.spec.as_ref().and_then(|s| s.template.as_ref());
        if let Some(template) = self.spec.as_mut().and_then(|s| s.template.as_mut()) {
            drop_disabled_template_fields(template, old_template);
        }
        if self.spec != old.spec {
            self.metadata.generation = Some(old.metadata.generation.unwrap_or(0) + 1);
        }
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec = old.spec.clone();
    }

    fn validate(&self) -> ErrorList {
        let opts = PodValidationOptions::for_template(None);
        // Upstream validates the generated name, not generateName, for this kind.
        let mut meta = self.metadata.clone();
        meta.generate_name = None;
        let mut errs = validate_object_meta(&meta, true, name_is_dns_subdomain, &Path::new("metadata"));
        errs.extend(validate_replication_controller_spec(
            &spec_of(self),
            &Path::new("spec"),
            &opts,
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let opts = PodValidationOptions::for_template(old.spec.as_ref().and_then(|s| s.template.as_ref()));
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &Path::new("metadata"));
        let spec = spec_of(self);
        errs.extend(validate_replication_controller_spec(
            &spec,
            &Path::new("spec"),
            &opts,
        ));
        let old_spec = spec_of(old);
        for (key, value) in old.metadata.annotations.iter().flatten() {
            let Some((prefix, broken)) = key.split_once('/') else {
                continue;
            };
            if !prefix.starts_with(NON_CONVERTIBLE_PREFIX) || broken.contains('/') {
                continue;
            }
            if broken.contains("selector") {
                if spec.selector != old_spec.selector {
                    errs.push(FieldError::invalid(
                        &Path::new("spec").child("selector"),
                        bad_value(&spec.selector),
                        "cannot update non-convertible selector",
                    ));
                }
            } else {
                errs.push(FieldError {
                    error_type: ErrorType::NotFound,
                    field: broken.to_owned(),
                    bad_value: BadValue::Str(value.clone()),
                    detail: "unknown non-convertible field".to_owned(),
                });
            }
        }
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &Path::new("metadata"));
        errs.extend(validate_replication_controller_status(
            &self.status.clone().unwrap_or_default(),
            &Path::new("status"),
        ));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let msgs = is_dns1123_label(str_of(&self.metadata.name));
        if !msgs.is_empty() {
            warnings.push(format!(
                "metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [{}]",
                msgs.join(" ")
            ));
        }
        if let Some(template) = self.spec.as_ref().and_then(|s| s.template.as_ref()) {
            warnings.extend(pod_template_warnings(
                &Path::new("spec").child("template"),
                template,
            ));
        }
        warnings
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        let replicas = self.status.as_ref().map_or(0, |s| s.replicas);
        vec![("status.replicas", replicas.to_string())]
    }

    const SELECTABLE_FIELDS: &'static [&'static str] = &["status.replicas"];
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::strategy::{KindOps, PipelineError, UpdateTarget};

    fn ops() -> KindOps {
        KindOps::of::<k8s_openapi::api::core::v1::ReplicationController>()
    }

    fn create(value: Value) -> Result<Value, PipelineError> {
        (ops().create)((ops().normalize)(value)?)
    }

    fn errors(result: Result<Value, PipelineError>) -> Vec<String> {
        match result {
            Err(PipelineError::Invalid(errs)) => errs.iter().map(ToString::to_string).collect(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn rc(template_labels: &Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "ReplicationController",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"template": {
                "metadata": {"labels": template_labels},
                "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
            }}
        })
    }

    #[test]
    fn defaults_selector_labels_replicas_and_template() {
        let out = create(rc(&json!({"app": "web"}))).unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1", "kind": "ReplicationController",
                "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "generation": 1},
                "spec": {
                    "replicas": 1,
                    "selector": {"app": "web"},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {
                            "containers": [{
                                "name": "nginx", "image": "nginx", "imagePullPolicy": "Always",
                                "resources": {}, "terminationMessagePath": "/dev/termination-log",
                                "terminationMessagePolicy": "File"
                            }],
                            "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                            "schedulerName": "default-scheduler", "securityContext": {},
                            "terminationGracePeriodSeconds": 30
                        }
                    }
                },
                "status": {"replicas": 0}
            })
        );
    }

    #[test]
    fn keeps_an_explicit_selector_and_labels() {
        let mut value = rc(&json!({"app": "web", "tier": "fe"}));
        value["spec"]["selector"] = json!({"app": "web"});
        value["spec"]["replicas"] = json!(3);
        value["metadata"]["labels"] = json!({"owner": "me"});
        let out = create(value).unwrap();
        assert_eq!(out["spec"]["selector"], json!({"app": "web"}));
        assert_eq!(out["spec"]["replicas"], json!(3));
        assert_eq!(out["metadata"]["labels"], json!({"owner": "me"}));
    }

    #[test]
    fn validates_like_upstream() {
        let mut mismatch = rc(&json!({"app": "web"}));
        mismatch["spec"]["selector"] = json!({"app": "other"});
        mismatch["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        mismatch["spec"]["replicas"] = json!(-1);
        assert_eq!(
            errors(create(mismatch)),
            [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ]
        );
        let no_template = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {}});
        assert_eq!(
            errors(create(no_template)),
            ["spec.selector: Required value", "spec.template: Required value"]
        );
    }

    #[test]
    fn updates_keep_status_and_bump_generation() {
        let old = create(rc(&json!({"app": "web"}))).unwrap();
        let mut old_stored = old;
        old_stored["metadata"]["resourceVersion"] = json!("5");
        old_stored["status"] = json!({"replicas": 2, "readyReplicas": 2});
        let mut new = old_stored.clone();
        new["spec"]["replicas"] = json!(4);
        new["status"] = json!({"replicas": 9});
        let out = (ops().update)((ops().normalize)(new).unwrap(), &old_stored, UpdateTarget::Main).unwrap();
        assert_eq!(out["metadata"]["generation"], json!(2));
        assert_eq!(out["status"], json!({"replicas": 2, "readyReplicas": 2}));

        let mut status = old_stored.clone();
        status["spec"]["replicas"] = json!(7);
        status["status"] = json!({"replicas": 1, "readyReplicas": 2});
        assert_eq!(
            errors((ops().update)(status, &old_stored, UpdateTarget::Status)),
            ["status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas"]
        );
    }

    #[test]
    fn selects_by_status_replicas() {
        let value = json!({"metadata": {"name": "a"}, "status": {"replicas": 3}});
        assert_eq!(
            (ops().selectable_fields)(&value),
            [("status.replicas", "3".to_owned())]
        );
        assert_eq!(ops().supported_fields, ["status.replicas"]);
    }
}
