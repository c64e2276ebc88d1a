//! The apps/v1 Deployment, ReplicaSet and ControllerRevision: defaults, registry strategies and
//! validation.
//!
//! Ports `SetDefaults_Deployment` / `SetDefaults_ReplicaSet` with the generated template
//! defaults (pkg/apis/apps/v1), pkg/registry/apps/{deployment,replicaset,controllerrevision}/
//! strategy.go (status reset, generation 1 and bumped on spec changes (and, for Deployments,
//! annotation changes), status kept on update, the status strategies, warnings) and the
//! matching parts of pkg/apis/apps/validation (`ValidateDeployment*`, `ValidateReplicaSet*`,
//! `ValidatePodTemplateSpecForReplicaSet`, strategies and int-or-percent rules,
//! `ValidateControllerRevision*`). StatefulSets and DaemonSets live in [`super::stateful_set`]
//! and [`super::daemon_set`].

use k8s_openapi::api::apps::v1::{
    ControllerRevision, Deployment, DeploymentSpec, DeploymentStatus, DeploymentStrategy, ReplicaSet,
    ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::pod_spec::{
    PodValidationOptions, default_pod_template_spec, drop_disabled_template_fields, none_if_empty,
    none_if_false, none_if_zero, pod_template_warnings, str_of, validate_pod_template_spec,
};
use super::workload_shared::{
    bump_generation, collision_count_errors, dns_label_name_warning, go_bad, go_int_or_string, go_obj,
    go_str, immutable_selector, int_or_percent_value, int_or_string_bad, meta_path, nonnegative_opt,
    not_more_than_100_percent, present_selector, selector_bad, selector_is_empty, selector_matches_template,
    selector_mismatch, validate_positive_int_or_percent,
};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::selectors::labels::Selector;
use crate::strategy::KindStrategy;
use crate::validation::{
    LabelSelectorValidationOptions, name_is_dns_subdomain, validate_label_selector,
    validate_nonnegative_field, validate_object_meta, validate_object_meta_update,
};

const ROLLING_UPDATE: &str = "RollingUpdate";
const RECREATE: &str = "Recreate";

// ---------------------------------------------------------------------------------------------
// Shared by the replica-set-like kinds
// ---------------------------------------------------------------------------------------------

/// The selector checks of Deployments and ReplicaSets: required, valid, non-empty; returns the
/// parsed selector when it converts (a nil selector matches nothing).
pub(super) fn validate_required_selector(
    selector: &LabelSelector,
    path: &Path,
    empty_message: &str,
    errs: &mut ErrorList,
) -> Option<Selector> {
    let selector = present_selector(selector);
    match selector {
        None => errs.push(FieldError::required(path, "")),
        Some(s) => {
            errs.extend(validate_label_selector(
                Some(s),
                LabelSelectorValidationOptions::default(),
                path,
            ));
            if selector_is_empty(s) {
                errs.push(FieldError::invalid(path, selector_bad(Some(s)), empty_message));
            }
        }
    }
    Selector::from_optional_label_selector(selector).ok()
}

/// Upstream's `ValidatePodTemplateSpecForReplicaSet` (also used for Deployments).
pub(super) fn validate_template_for_replica_set(
    template: &PodTemplateSpec,
    selector: &Selector,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if !selector.is_empty() && !selector_matches_template(selector, template) {
        errs.push(selector_mismatch(path, template));
    }
    errs.extend(validate_pod_template_spec(template, path, opts));
    let spec = template.spec.as_ref();
    let restart_policy = spec.map(|s| str_of(&s.restart_policy)).unwrap_or_default();
    if restart_policy != "Always" {
        errs.push(FieldError::not_supported(
            &path.child("spec").child("restartPolicy"),
            restart_policy,
            &["Always"],
        ));
    }
    if spec.is_some_and(|s| s.active_deadline_seconds.is_some()) {
        errs.push(FieldError::forbidden(
            &path.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in ReplicaSet is not Supported",
        ));
    }
    errs
}

fn invalid_selector(selector: &LabelSelector, path: &Path) -> FieldError {
    FieldError::invalid(
        path,
        selector_bad(present_selector(selector)),
        "invalid label selector",
    )
}

// ---------------------------------------------------------------------------------------------
// Deployment
// ---------------------------------------------------------------------------------------------

/// `SetObjectDefaults_Deployment`: replicas 1, a RollingUpdate strategy with 25% surge and
/// unavailability, revisionHistoryLimit 10, progressDeadlineSeconds 600, the template defaults;
/// plus Go's encoding of the zero values (`status: {}`, no `minReadySeconds: 0`).
pub fn default_deployment(deployment: &mut Deployment) {
    let spec = deployment.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    let strategy = spec.strategy.get_or_insert_with(Default::default);
    none_if_empty(&mut strategy.type_);
    let strategy_type = strategy.type_.get_or_insert_with(|| ROLLING_UPDATE.to_owned());
    if strategy_type == ROLLING_UPDATE {
        let rolling = strategy.rolling_update.get_or_insert_with(Default::default);
        rolling
            .max_unavailable
            .get_or_insert_with(|| IntOrString::String("25%".to_owned()));
        rolling
            .max_surge
            .get_or_insert_with(|| IntOrString::String("25%".to_owned()));
    }
    spec.revision_history_limit.get_or_insert(10);
    spec.progress_deadline_seconds.get_or_insert(600);
    none_if_zero(&mut spec.min_ready_seconds);
    none_if_false(&mut spec.paused);
    default_pod_template_spec(&mut spec.template);
    deployment.status.get_or_insert_with(Default::default);
}

fn go_deployment_strategy(strategy: &DeploymentStrategy) -> BadValue {
    let rolling = strategy
        .rolling_update
        .as_ref()
        .map_or(super::go_repr::GoValue::Null, |r| {
            go_obj(vec![
                (
                    "MaxUnavailable",
                    go_int_or_string(r.max_unavailable.as_ref(), false),
                ),
                ("MaxSurge", go_int_or_string(r.max_surge.as_ref(), false)),
            ])
        });
    go_bad(&go_obj(vec![
        ("Type", go_str(str_of(&strategy.type_))),
        ("RollingUpdate", rolling),
    ]))
}

/// Upstream's `ValidateRollingUpdateDeployment`.
fn validate_rolling_update_deployment(rolling: &RollingUpdateDeployment, path: &Path) -> ErrorList {
    let zero = IntOrString::Int(0);
    let max_unavailable = rolling.max_unavailable.as_ref().unwrap_or(&zero);
    let max_surge = rolling.max_surge.as_ref().unwrap_or(&zero);
    let mut errs = validate_positive_int_or_percent(max_unavailable, &path.child("maxUnavailable"));
    errs.extend(validate_positive_int_or_percent(
        max_surge,
        &path.child("maxSurge"),
    ));
    if int_or_percent_value(max_unavailable) == 0 && int_or_percent_value(max_surge) == 0 {
        errs.push(FieldError::invalid(
            &path.child("maxUnavailable"),
            int_or_string_bad(max_unavailable),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    errs.extend(not_more_than_100_percent(
        max_unavailable,
        &path.child("maxUnavailable"),
    ));
    errs
}

/// Upstream's `ValidateDeploymentStrategy`.
fn validate_deployment_strategy(strategy: &DeploymentStrategy, path: &Path) -> ErrorList {
    match str_of(&strategy.type_) {
        RECREATE => match strategy.rolling_update {
            Some(_) => vec![FieldError::forbidden(
                &path.child("rollingUpdate"),
                "may not be specified when strategy `type` is 'Recreate'",
            )],
            None => Vec::new(),
        },
        ROLLING_UPDATE => match &strategy.rolling_update {
            None => vec![FieldError::required(
                &path.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )],
            Some(rolling) => validate_rolling_update_deployment(rolling, &path.child("rollingUpdate")),
        },
        _ => vec![FieldError::not_supported(
            path,
            go_deployment_strategy(strategy),
            &[RECREATE, ROLLING_UPDATE],
        )],
    }
}

/// Upstream's `ValidateDeploymentSpec`.
pub fn validate_deployment_spec(
    spec: &DeploymentSpec,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = nonnegative_opt(spec.replicas, &path.child("replicas"));
    let selector_path = path.child("selector");
    match validate_required_selector(
        &spec.selector,
        &selector_path,
        "empty selector is invalid for deployment",
        &mut errs,
    ) {
        None => errs.push(invalid_selector(&spec.selector, &selector_path)),
        Some(selector) => errs.extend(validate_template_for_replica_set(
            &spec.template,
            &selector,
            &path.child("template"),
            opts,
        )),
    }
    let strategy = spec.strategy.clone().unwrap_or_default();
    errs.extend(validate_deployment_strategy(&strategy, &path.child("strategy")));
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    errs.extend(validate_nonnegative_field(
        i64::from(min_ready),
        &path.child("minReadySeconds"),
    ));
    if let Some(limit) = spec.revision_history_limit {
        errs.extend(validate_nonnegative_field(
            i64::from(limit),
            &path.child("revisionHistoryLimit"),
        ));
    }
    if let Some(deadline) = spec.progress_deadline_seconds {
        let deadline_path = path.child("progressDeadlineSeconds");
        errs.extend(validate_nonnegative_field(i64::from(deadline), &deadline_path));
        if deadline <= min_ready {
            errs.push(FieldError::invalid(
                &deadline_path,
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

/// Upstream's `ValidateDeploymentStatus`.
pub fn validate_deployment_status(status: &DeploymentStatus, path: &Path) -> ErrorList {
    let replicas = status.replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let mut errs = validate_nonnegative_field(
        status.observed_generation.unwrap_or(0),
        &path.child("observedGeneration"),
    );
    errs.extend(nonnegative_opt(status.replicas, &path.child("replicas")));
    errs.extend(nonnegative_opt(
        status.updated_replicas,
        &path.child("updatedReplicas"),
    ));
    errs.extend(nonnegative_opt(
        status.ready_replicas,
        &path.child("readyReplicas"),
    ));
    errs.extend(nonnegative_opt(
        status.available_replicas,
        &path.child("availableReplicas"),
    ));
    errs.extend(nonnegative_opt(
        status.unavailable_replicas,
        &path.child("unavailableReplicas"),
    ));
    if let Some(terminating) = status.terminating_replicas {
        errs.extend(validate_nonnegative_field(
            i64::from(terminating),
            &path.child("terminatingReplicas"),
        ));
    }
    if let Some(collisions) = status.collision_count {
        errs.extend(validate_nonnegative_field(
            i64::from(collisions),
            &path.child("collisionCount"),
        ));
    }
    let msg = "cannot be greater than status.replicas";
    if updated > replicas {
        errs.push(FieldError::invalid(&path.child("updatedReplicas"), updated, msg));
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

fn deployment_template(d: &Deployment) -> Option<&PodTemplateSpec> {
    d.spec.as_ref().map(|s| &s.template)
}

impl KindStrategy for Deployment {
    fn apply_defaults(&mut self) {
        default_deployment(self);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(DeploymentStatus::default());
        self.metadata.generation = Some(1);
        if let Some(spec) = &mut self.spec {
            drop_disabled_template_fields(&mut spec.template, None);
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
        if let Some(spec) = &mut self.spec {
            drop_disabled_template_fields(&mut spec.template, deployment_template(old));
        }
        let changed = self.spec != old.spec || self.metadata.annotations != old.metadata.annotations;
        bump_generation(&mut self.metadata, &old.metadata, changed);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
        self.metadata.labels.clone_from(&old.metadata.labels);
    }

    fn validate(&self) -> ErrorList {
        let opts = PodValidationOptions::for_template(None);
        let mut errs = validate_object_meta(&self.metadata, true, name_is_dns_subdomain, &meta_path());
        errs.extend(validate_deployment_spec(
            &self.spec.clone().unwrap_or_default(),
            &Path::new("spec"),
            &opts,
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let opts = PodValidationOptions::for_template(deployment_template(old));
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        let spec = self.spec.clone().unwrap_or_default();
        let old_spec = old.spec.clone().unwrap_or_default();
        errs.extend(validate_deployment_spec(&spec, &Path::new("spec"), &opts));
        errs.extend(immutable_selector(
            present_selector(&spec.selector),
            present_selector(&old_spec.selector),
            &Path::new("spec").child("selector"),
        ));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        let status = self.status.clone().unwrap_or_default();
        errs.extend(validate_deployment_status(&status, &Path::new("status")));
        errs.extend(collision_count_errors(
            status.collision_count,
            old.status.as_ref().and_then(|s| s.collision_count),
        ));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = dns_label_name_warning(&self.metadata).into_iter().collect();
        if let Some(template) = deployment_template(self) {
            warnings.extend(pod_template_warnings(
                &Path::new("spec").child("template"),
                template,
            ));
        }
        warnings
    }
}

// ---------------------------------------------------------------------------------------------
// ReplicaSet
// ---------------------------------------------------------------------------------------------

/// `SetObjectDefaults_ReplicaSet`: replicas 1 and the template defaults; plus Go's encoding of
/// the zero values (`status: {replicas: 0}`).
pub fn default_replica_set(rs: &mut ReplicaSet) {
    let spec = rs.spec.get_or_insert_with(Default::default);
    spec.replicas.get_or_insert(1);
    none_if_zero(&mut spec.min_ready_seconds);
    default_pod_template_spec(spec.template.get_or_insert_with(Default::default));
    rs.status.get_or_insert_with(Default::default);
}

/// Upstream's `ValidateReplicaSetSpec`.
pub fn validate_replica_set_spec(
    spec: &ReplicaSetSpec,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = nonnegative_opt(spec.replicas, &path.child("replicas"));
    errs.extend(nonnegative_opt(
        spec.min_ready_seconds,
        &path.child("minReadySeconds"),
    ));
    let selector_path = path.child("selector");
    match validate_required_selector(
        &spec.selector,
        &selector_path,
        "empty selector is invalid for deployment",
        &mut errs,
    ) {
        None => errs.push(invalid_selector(&spec.selector, &selector_path)),
        Some(selector) => errs.extend(validate_template_for_replica_set(
            &spec.template.clone().unwrap_or_default(),
            &selector,
            &path.child("template"),
            opts,
        )),
    }
    errs
}

/// Upstream's `ValidateReplicaSetStatus`.
pub fn validate_replica_set_status(status: &ReplicaSetStatus, path: &Path) -> ErrorList {
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
    if let Some(terminating) = status.terminating_replicas {
        errs.extend(validate_nonnegative_field(
            i64::from(terminating),
            &path.child("terminatingReplicas"),
        ));
    }
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

fn replica_set_template(rs: &ReplicaSet) -> Option<&PodTemplateSpec> {
    rs.spec.as_ref().and_then(|s| s.template.as_ref())
}

impl KindStrategy for ReplicaSet {
    fn apply_defaults(&mut self) {
        default_replica_set(self);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(ReplicaSetStatus::default());
        self.metadata.generation = Some(1);
        if let Some(template) = self.spec.as_mut().and_then(|s| s.template.as_mut()) {
            drop_disabled_template_fields(template, None);
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
        if let Some(template) = self.spec.as_mut().and_then(|s| s.template.as_mut()) {
            drop_disabled_template_fields(template, replica_set_template(old));
        }
        let changed = self.spec != old.spec;
        bump_generation(&mut self.metadata, &old.metadata, changed);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        let opts = PodValidationOptions::for_template(None);
        let mut errs = validate_object_meta(&self.metadata, true, name_is_dns_subdomain, &meta_path());
        errs.extend(validate_replica_set_spec(
            &self.spec.clone().unwrap_or_default(),
            &Path::new("spec"),
            &opts,
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let opts = PodValidationOptions::for_template(replica_set_template(old));
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        let spec = self.spec.clone().unwrap_or_default();
        let old_spec = old.spec.clone().unwrap_or_default();
        errs.extend(validate_replica_set_spec(&spec, &Path::new("spec"), &opts));
        errs.extend(immutable_selector(
            present_selector(&spec.selector),
            present_selector(&old_spec.selector),
            &Path::new("spec").child("selector"),
        ));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        errs.extend(validate_replica_set_status(
            &self.status.clone().unwrap_or_default(),
            &Path::new("status"),
        ));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = dns_label_name_warning(&self.metadata).into_iter().collect();
        if let Some(template) = replica_set_template(self) {
            warnings.extend(pod_template_warnings(
                &Path::new("spec").child("template"),
                template,
            ));
        }
        warnings
    }
}

// ---------------------------------------------------------------------------------------------
// ControllerRevision
// ---------------------------------------------------------------------------------------------

fn data_of(revision: &ControllerRevision) -> Option<&Value> {
    revision.data.as_ref().map(|d| &d.0).filter(|v| !v.is_null())
}

/// Upstream's `validateControllerRevision`.
fn validate_controller_revision(revision: &ControllerRevision) -> ErrorList {
    let mut errs = validate_object_meta(&revision.metadata, true, name_is_dns_subdomain, &meta_path());
    errs.extend(validate_nonnegative_field(
        revision.revision,
        &Path::new("revision"),
    ));
    errs
}

impl KindStrategy for ControllerRevision {
    fn validate(&self) -> ErrorList {
        let mut errs = validate_controller_revision(self);
        let data_path = Path::new("data");
        match data_of(self) {
            None => errs.push(FieldError::required(&data_path, "data is mandatory")),
            Some(Value::Object(_)) => {}
            Some(_) => errs.push(FieldError::required(
                &data_path,
                "data must be a valid JSON object",
            )),
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        errs.extend(validate_controller_revision(self));
        let (new_data, old_data) = (data_of(self), data_of(old));
        if new_data != old_data {
            errs.push(FieldError::invalid(
                &Path::new("data"),
                BadValue::Json(new_data.cloned().unwrap_or(Value::Null)),
                crate::validation::FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::workload_shared::testing::{Gvk, defaulted_pod_spec, stored};
    use crate::strategy::UpdateTarget;

    const DEPLOYMENT: Gvk = Gvk("apps", "v1", "Deployment");
    const REPLICA_SET: Gvk = Gvk("apps", "v1", "ReplicaSet");
    const REVISION: Gvk = Gvk("apps", "v1", "ControllerRevision");

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}
                }
            }
        })
    }

    #[test]
    fn deployment_defaults_like_kube_apiserver() {
        let out = DEPLOYMENT.created(deployment());
        assert_eq!(
            out,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default", "generation": 1},
                "spec": {
                    "progressDeadlineSeconds": 600,
                    "replicas": 1,
                    "revisionHistoryLimit": 10,
                    "selector": {"matchLabels": {"app": "web"}},
                    "strategy": {
                        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                        "type": "RollingUpdate"
                    },
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": defaulted_pod_spec("nginx", "Always", "Always")
                    }
                },
                "status": {}
            })
        );
    }

    #[test]
    fn deployment_keeps_explicit_values_and_recreate() {
        let mut d = deployment();
        d["spec"]["replicas"] = json!(0);
        d["spec"]["strategy"] = json!({"type": "Recreate"});
        d["spec"]["minReadySeconds"] = json!(0);
        d["spec"]["paused"] = json!(false);
        let out = DEPLOYMENT.created(d);
        assert_eq!(out["spec"]["replicas"], json!(0));
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        assert!(out["spec"].get("minReadySeconds").is_none());
        assert!(out["spec"].get("paused").is_none());
    }

    fn check(gvk: Gvk, mutate: impl Fn(&mut Value), base: &Value, expected: &[&str]) {
        let mut object = base.clone();
        mutate(&mut object);
        assert_eq!(gvk.create_errors(object), expected);
    }

    type Case = (Box<dyn Fn(&mut Value)>, Vec<&'static str>);

    #[test]
    fn deployment_validation() {
        let base = deployment();
        let cases: Vec<Case> = vec![
            (Box::new(|_| {}), vec![]),
            (
                Box::new(|d| d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"})),
                vec![
                    "spec.template.metadata.labels: Invalid value: {\"app\":\"other\"}: `selector` does not match template `labels`",
                ],
            ),
            (
                Box::new(|d| {
                    d["spec"].as_object_mut().unwrap().remove("selector");
                }),
                vec![
                    "spec.selector: Required value",
                    "spec.template.metadata.labels: Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`",
                ],
            ),
            (
                Box::new(|d| d["spec"]["selector"] = json!({"matchLabels": {}})),
                vec!["spec.selector: Invalid value: {}: empty selector is invalid for deployment"],
            ),
            (
                Box::new(|d| d["spec"]["replicas"] = json!(-1)),
                vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (
                Box::new(|d| {
                    d["spec"]["strategy"] = json!({"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}});
                }),
                vec![
                    "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"0%\": may not be 0 when `maxSurge` is 0",
                ],
            ),
            (
                Box::new(|d| {
                    d["spec"]["strategy"] =
                        json!({"rollingUpdate": {"maxSurge": "x", "maxUnavailable": "150%"}});
                }),
                vec![
                    "spec.strategy.rollingUpdate.maxSurge: Invalid value: \"x\": a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                    "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: \"150%\": must not be greater than 100%",
                ],
            ),
            (
                Box::new(|d| d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {}})),
                vec![
                    "spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'",
                ],
            ),
            (
                Box::new(|d| d["spec"]["strategy"] = json!({"type": "Blue"})),
                vec![
                    "spec.strategy: Unsupported value: {\"Type\":\"Blue\",\"RollingUpdate\":null}: supported values: \"Recreate\", \"RollingUpdate\"",
                ],
            ),
            (
                Box::new(|d| {
                    d["spec"]["minReadySeconds"] = json!(700);
                    d["spec"]["revisionHistoryLimit"] = json!(-2);
                }),
                vec![
                    "spec.revisionHistoryLimit: Invalid value: -2: must be greater than or equal to 0",
                    "spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds",
                ],
            ),
            (
                Box::new(|d| {
                    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
                    d["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
                }),
                vec![
                    "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                    "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
                ],
            ),
            (
                Box::new(|d| d["metadata"]["name"] = json!("Web")),
                vec![
                    "metadata.name: Invalid value: \"Web\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ],
            ),
        ];
        for (mutate, expected) in cases {
            check(DEPLOYMENT, mutate, &base, &expected);
        }
    }

    #[test]
    fn deployment_updates() {
        let old = stored(DEPLOYMENT.created(deployment()));
        // Status is kept, generation bumps on spec and annotation changes only.
        let mut new = old.clone();
        new["status"] = json!({"replicas": 5});
        new["metadata"]["labels"] = json!({"a": "b"});
        let out = DEPLOYMENT.updated(new.clone(), &old, UpdateTarget::Main);
        assert_eq!(out["metadata"]["generation"], json!(1));
        assert_eq!(out["status"], json!({}));
        new["metadata"]["annotations"] = json!({"x": "y"});
        let out = DEPLOYMENT.updated(new.clone(), &old, UpdateTarget::Main);
        assert_eq!(out["metadata"]["generation"], json!(2));
        new["spec"]["replicas"] = json!(3);
        let out = DEPLOYMENT.updated(new, &old, UpdateTarget::Main);
        assert_eq!(out["metadata"]["generation"], json!(2));
        assert_eq!(out["spec"]["replicas"], json!(3));

        // The selector is immutable.
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "x"}});
        new["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "tier": "x"});
        assert_eq!(
            DEPLOYMENT.update_errors(new, &old, UpdateTarget::Main),
            [
                "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"web\",\"tier\":\"x\"}}: field is immutable"
            ]
        );

        // The status endpoint keeps spec and labels, and validates the status.
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(9);
        new["metadata"]["labels"] = json!({"x": "y"});
        new["status"] =
            json!({"replicas": 2, "readyReplicas": 1, "availableReplicas": 1, "observedGeneration": 1});
        let out = DEPLOYMENT.updated(new.clone(), &old, UpdateTarget::Status);
        assert_eq!(out["spec"]["replicas"], json!(1));
        assert!(out["metadata"].get("labels").is_none());
        assert_eq!(out["status"]["replicas"], json!(2));
        new["status"] = json!({"replicas": 1, "readyReplicas": 2, "availableReplicas": 3});
        assert_eq!(
            DEPLOYMENT.update_errors(new.clone(), &old, UpdateTarget::Status),
            [
                "status.readyReplicas: Invalid value: 2: cannot be greater than status.replicas",
                "status.availableReplicas: Invalid value: 3: cannot be greater than status.replicas",
                "status.availableReplicas: Invalid value: 3: cannot be greater than readyReplicas",
            ]
        );
        let mut with_collisions = old;
        with_collisions["status"] = json!({"collisionCount": 2});
        new["status"] = json!({"collisionCount": 1});
        assert_eq!(
            DEPLOYMENT.update_errors(new, &with_collisions, UpdateTarget::Status),
            ["status.collisionCount: Invalid value: 1: cannot be decremented"]
        );
    }

    #[test]
    fn deployment_name_warning() {
        let mut d = deployment();
        d["metadata"]["name"] = json!("web.v1");
        let warnings = DEPLOYMENT.warnings(&DEPLOYMENT.created(d));
        assert_eq!(
            warnings,
            [
                "metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [must not contain dots]"
            ]
        );
    }

    fn replica_set() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "rs", "namespace": "default"},
            "spec": {
                "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}
                }
            }
        })
    }

    #[test]
    fn replica_set_defaults_and_validation() {
        let out = REPLICA_SET.created(replica_set());
        assert_eq!(
            out,
            json!({
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": "rs", "namespace": "default", "generation": 1},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": defaulted_pod_spec("nginx:1.27", "IfNotPresent", "Always")
                    }
                },
                "status": {"replicas": 0}
            })
        );
        let base = replica_set();
        check(
            REPLICA_SET,
            |r| r["spec"]["selector"] = json!({"matchExpressions": [{"key": "app", "operator": "Has"}]}),
            &base,
            &[
                "spec.selector.matchExpressions[0].operator: Invalid value: \"Has\": not a valid selector operator",
                "spec.selector: Invalid value: {\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"Has\"}]}: invalid label selector",
            ],
        );
        check(
            REPLICA_SET,
            |r| r["spec"]["minReadySeconds"] = json!(-1),
            &base,
            &["spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0"],
        );
        assert!(REPLICA_SET.supported_fields().is_empty());
    }

    #[test]
    fn replica_set_updates() {
        let old = stored(REPLICA_SET.created(replica_set()));
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(4);
        new["status"] = json!({"replicas": 3});
        let out = REPLICA_SET.updated(new, &old, UpdateTarget::Main);
        assert_eq!(out["metadata"]["generation"], json!(2));
        assert_eq!(out["status"], json!({"replicas": 0}));
        let mut status = old.clone();
        status["status"] = json!({"replicas": 2, "fullyLabeledReplicas": 3});
        status["spec"]["replicas"] = json!(8);
        assert_eq!(
            REPLICA_SET.update_errors(status.clone(), &old, UpdateTarget::Status),
            ["status.fullyLabeledReplicas: Invalid value: 3: cannot be greater than status.replicas"]
        );
        status["status"] = json!({"replicas": 2});
        let out = REPLICA_SET.updated(status, &old, UpdateTarget::Status);
        assert_eq!(out["spec"]["replicas"], json!(1));
        assert_eq!(out["status"], json!({"replicas": 2}));
    }

    #[test]
    fn controller_revision_rules() {
        let revision = json!({
            "apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": "web-5d9f", "namespace": "default"},
            "data": {"spec": {"template": {}}}, "revision": 1
        });
        let out = REVISION.created(revision.clone());
        assert_eq!(out, revision);
        let mut bad = revision.clone();
        bad["revision"] = json!(-1);
        bad["data"] = json!("text");
        assert_eq!(
            REVISION.create_errors(bad),
            [
                "revision: Invalid value: -1: must be greater than or equal to 0",
                "data: Required value: data must be a valid JSON object",
            ]
        );
        let mut missing = revision;
        missing.as_object_mut().unwrap().remove("data");
        assert_eq!(
            REVISION.create_errors(missing),
            ["data: Required value: data is mandatory"]
        );
        let old = stored(out);
        let mut new = old.clone();
        new["data"] = json!({"a": 1});
        assert_eq!(
            REVISION.update_errors(new, &old, UpdateTarget::Main),
            ["data: Invalid value: {\"a\":1}: field is immutable"]
        );
    }
}
