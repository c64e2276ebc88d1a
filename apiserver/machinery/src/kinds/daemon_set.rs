//! The apps/v1 DaemonSet: defaults, registry strategy and validation.
//!
//! Ports `SetDefaults_DaemonSet` with the generated template defaults, the v1 conversion of
//! the internal `templateGeneration` (the `deprecated.daemonset.template.generation`
//! annotation, always written), pkg/registry/apps/daemonset/strategy.go (status reset,
//! generation and template generation 1 on create, both bumped on template changes and the
//! generation on other spec changes, status kept, the status strategy, warnings) and
//! `ValidateDaemonSet*` of pkg/apis/apps/validation (selector, template, update strategy with
//! its surge/unavailability rules, immutable selector, status counters).

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetStatus, DaemonSetUpdateStrategy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::go_repr::GoValue;
use super::pod_spec::{
    PodValidationOptions, default_pod_template_spec, drop_disabled_template_fields, none_if_empty,
    none_if_zero, pod_template_warnings, str_of, validate_pod_template_spec,
};
use super::workload_shared::{
    bump_generation, collision_count_errors, go_bad, go_int_or_string, go_obj, go_str, immutable_selector,
    int_or_percent_value, int_or_string_bad, meta_path, nonnegative_opt, not_more_than_100_percent,
    present_selector, selector_bad, selector_is_empty, selector_matches_template, selector_mismatch,
    validate_positive_int_or_percent,
};
use crate::field::{ErrorList, FieldError, Path};
use crate::selectors::labels::Selector;
use crate::strategy::KindStrategy;
use crate::validation::{
    LabelSelectorValidationOptions, label_selector_has_invalid_label_value, name_is_dns_subdomain,
    validate_label_selector, validate_nonnegative_field, validate_object_meta, validate_object_meta_update,
};

const ROLLING_UPDATE: &str = "RollingUpdate";
const ON_DELETE: &str = "OnDelete";

/// The annotation carrying the internal `spec.templateGeneration` in apps/v1.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// `SetObjectDefaults_DaemonSet`: a RollingUpdate strategy with maxUnavailable 1 and maxSurge
/// 0, revisionHistoryLimit 10, the template defaults; plus Go's encoding of zero values.
pub fn default_daemon_set(ds: &mut DaemonSet) {
    let spec = ds.spec.get_or_insert_with(Default::default);
    let strategy = spec.update_strategy.get_or_insert_with(Default::default);
    none_if_empty(&mut strategy.type_);
    let strategy_type = strategy.type_.get_or_insert_with(|| ROLLING_UPDATE.to_owned());
    if strategy_type == ROLLING_UPDATE {
        let rolling = strategy.rolling_update.get_or_insert_with(Default::default);
        rolling.max_unavailable.get_or_insert(IntOrString::Int(1));
        rolling.max_surge.get_or_insert(IntOrString::Int(0));
    }
    spec.revision_history_limit.get_or_insert(10);
    none_if_zero(&mut spec.min_ready_seconds);
    default_pod_template_spec(&mut spec.template);
    ds.status.get_or_insert_with(Default::default);
}

/// The internal template generation: the annotation's value (0 when absent or not a number).
fn template_generation(meta: &ObjectMeta) -> i64 {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(TEMPLATE_GENERATION_ANNOTATION))
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(0)
}

fn set_template_generation(meta: &mut ObjectMeta, generation: i64) {
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(TEMPLATE_GENERATION_ANNOTATION.to_owned(), generation.to_string());
}

fn go_update_strategy(strategy: &DaemonSetUpdateStrategy) -> GoValue {
    let rolling = strategy.rolling_update.as_ref().map_or(GoValue::Null, |r| {
        go_obj(vec![
            (
                "MaxUnavailable",
                go_int_or_string(r.max_unavailable.as_ref(), false),
            ),
            ("MaxSurge", go_int_or_string(r.max_surge.as_ref(), false)),
        ])
    });
    go_obj(vec![
        ("Type", go_str(str_of(&strategy.type_))),
        ("RollingUpdate", rolling),
    ])
}

/// Upstream's `ValidateDaemonSetUpdateStrategy` with `ValidateRollingUpdateDaemonSet`.
fn validate_update_strategy(strategy: &DaemonSetUpdateStrategy, path: &Path) -> ErrorList {
    match str_of(&strategy.type_) {
        ON_DELETE => Vec::new(),
        ROLLING_UPDATE => {
            let Some(rolling) = &strategy.rolling_update else {
                return vec![FieldError::required(&path.child("rollingUpdate"), "")];
            };
            let path = path.child("rollingUpdate");
            let zero = IntOrString::Int(0);
            let max_unavailable = rolling.max_unavailable.as_ref().unwrap_or(&zero);
            let max_surge = rolling.max_surge.as_ref().unwrap_or(&zero);
            let mut errs = validate_positive_int_or_percent(max_unavailable, &path.child("maxUnavailable"));
            errs.extend(validate_positive_int_or_percent(
                max_surge,
                &path.child("maxSurge"),
            ));
            errs.extend(not_more_than_100_percent(
                max_unavailable,
                &path.child("maxUnavailable"),
            ));
            errs.extend(not_more_than_100_percent(max_surge, &path.child("maxSurge")));
            let has_unavailable = int_or_percent_value(max_unavailable) != 0;
            let has_surge = int_or_percent_value(max_surge) != 0;
            if has_unavailable && has_surge {
                errs.push(FieldError::invalid(
                    &path.child("maxSurge"),
                    int_or_string_bad(max_surge),
                    "may not be set when maxUnavailable is non-zero",
                ));
            } else if !has_unavailable && !has_surge {
                errs.push(FieldError::required(
                    &path.child("maxUnavailable"),
                    "cannot be 0 when maxSurge is 0",
                ));
            }
            errs
        }
        _ => vec![FieldError::not_supported(
            path,
            go_bad(&go_update_strategy(strategy)),
            &[ROLLING_UPDATE, ON_DELETE],
        )],
    }
}

/// Upstream's `ValidateDaemonSetSpec` (`template_generation` is the internal field).
pub fn validate_daemon_set_spec(
    spec: &DaemonSetSpec,
    template_generation: i64,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let selector_opts = LabelSelectorValidationOptions {
        allow_invalid_label_value_in_selector: opts.allow_invalid_label_value_in_selector,
        ..Default::default()
    };
    let selector = present_selector(&spec.selector);
    let selector_path = path.child("selector");
    let mut errs = validate_label_selector(selector, selector_opts, &selector_path);
    let template_path = path.child("template");
    if let Ok(parsed) = Selector::from_optional_label_selector(selector)
        && !selector_matches_template(&parsed, &spec.template)
    {
        errs.push(selector_mismatch(&template_path, &spec.template));
    }
    if let Some(s) = selector.filter(|s| selector_is_empty(s)) {
        errs.push(FieldError::invalid(
            &selector_path,
            selector_bad(Some(s)),
            "empty selector is invalid for daemonset",
        ));
    }
    errs.extend(validate_pod_template_spec(&spec.template, &template_path, opts));
    let pod = spec.template.spec.clone().unwrap_or_default();
    let restart_policy = str_of(&pod.restart_policy);
    if restart_policy != "Always" {
        errs.push(FieldError::not_supported(
            &template_path.child("spec").child("restartPolicy"),
            restart_policy,
            &["Always"],
        ));
    }
    if pod.active_deadline_seconds.is_some() {
        errs.push(FieldError::forbidden(
            &template_path.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    errs.extend(nonnegative_opt(
        spec.min_ready_seconds,
        &path.child("minReadySeconds"),
    ));
    errs.extend(validate_nonnegative_field(
        template_generation,
        &path.child("templateGeneration"),
    ));
    errs.extend(validate_update_strategy(
        &spec.update_strategy.clone().unwrap_or_default(),
        &path.child("updateStrategy"),
    ));
    if let Some(limit) = spec.revision_history_limit {
        errs.extend(validate_nonnegative_field(
            i64::from(limit),
            &path.child("revisionHistoryLimit"),
        ));
    }
    errs
}

/// Upstream's `validateDaemonSetStatus`.
pub fn validate_daemon_set_status(status: &DaemonSetStatus, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (name, value) in [
        ("currentNumberScheduled", status.current_number_scheduled),
        ("numberMisscheduled", status.number_misscheduled),
        ("desiredNumberScheduled", status.desired_number_scheduled),
        ("numberReady", status.number_ready),
    ] {
        errs.extend(validate_nonnegative_field(i64::from(value), &path.child(name)));
    }
    errs.extend(validate_nonnegative_field(
        status.observed_generation.unwrap_or(0),
        &path.child("observedGeneration"),
    ));
    for (name, value) in [
        ("updatedNumberScheduled", status.updated_number_scheduled),
        ("numberAvailable", status.number_available),
        ("numberUnavailable", status.number_unavailable),
    ] {
        errs.extend(nonnegative_opt(value, &path.child(name)));
    }
    if let Some(collisions) = status.collision_count {
        errs.extend(validate_nonnegative_field(
            i64::from(collisions),
            &path.child("collisionCount"),
        ));
    }
    errs
}

fn spec_of(ds: &DaemonSet) -> DaemonSetSpec {
    ds.spec.clone().unwrap_or_default()
}

impl KindStrategy for DaemonSet {
    fn apply_defaults(&mut self) {
        default_daemon_set(self);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(DaemonSetStatus::default());
        self.metadata.generation = Some(1);
        let generation = template_generation(&self.metadata).max(1);
        set_template_generation(&mut self.metadata, generation);
        if let Some(spec) = &mut self.spec {
            drop_disabled_template_fields(&mut spec.template, None);
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        if let Some(spec) = &mut self.spec {
            drop_disabled_template_fields(&mut spec.template, old.spec.as_ref().map(|s| &s.template));
        }
        self.status.clone_from(&old.status);
        let mut generation = template_generation(&old.metadata);
        let template_changed =
            self.spec.as_ref().map(|s| &s.template) != old.spec.as_ref().map(|s| &s.template);
        if template_changed {
            generation += 1;
        }
        let changed = template_changed || self.spec != old.spec;
        bump_generation(&mut self.metadata, &old.metadata, changed);
        set_template_generation(&mut self.metadata, generation);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
        set_template_generation(&mut self.metadata, template_generation(&old.metadata));
    }

    fn validate(&self) -> ErrorList {
        let opts = PodValidationOptions::for_template(None);
        let mut errs = validate_object_meta(&self.metadata, true, name_is_dns_subdomain, &meta_path());
        errs.extend(validate_daemon_set_spec(
            &spec_of(self),
            template_generation(&self.metadata),
            &Path::new("spec"),
            &opts,
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let spec = spec_of(self);
        let old_spec = spec_of(old);
        let mut opts = PodValidationOptions::for_template(Some(&old_spec.template));
        opts.allow_invalid_label_value_in_selector = opts.allow_invalid_label_value_in_selector
            || label_selector_has_invalid_label_value(present_selector(&old_spec.selector));
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        errs.extend(immutable_selector(
            present_selector(&spec.selector),
            present_selector(&old_spec.selector),
            &Path::new("spec").child("selector"),
        ));
        errs.extend(validate_daemon_set_spec(
            &spec,
            template_generation(&self.metadata),
            &Path::new("spec"),
            &opts,
        ));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        let status = self.status.clone().unwrap_or_default();
        errs.extend(validate_daemon_set_status(&status, &Path::new("status")));
        errs.extend(collision_count_errors(
            status.collision_count,
            old.status.as_ref().and_then(|s| s.collision_count),
        ));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        pod_template_warnings(&Path::new("spec").child("template"), &spec_of(self).template)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::workload_shared::testing::{Gvk, defaulted_pod_spec, stored};
    use crate::strategy::UpdateTarget;

    const DS: Gvk = Gvk("apps", "v1", "DaemonSet");

    fn ds() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "kube-system"},
            "spec": {
                "selector": {"matchLabels": {"app": "agent"}},
                "template": {
                    "metadata": {"labels": {"app": "agent"}},
                    "spec": {"containers": [{"name": "c", "image": "agent:v1"}]}
                }
            }
        })
    }

    #[test]
    fn defaults_like_kube_apiserver() {
        assert_eq!(
            DS.created(ds()),
            json!({
                "apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {
                    "name": "agent", "namespace": "kube-system", "generation": 1,
                    "annotations": {"deprecated.daemonset.template.generation": "1"}
                },
                "spec": {
                    "revisionHistoryLimit": 10,
                    "selector": {"matchLabels": {"app": "agent"}},
                    "template": {
                        "metadata": {"labels": {"app": "agent"}},
                        "spec": defaulted_pod_spec("agent:v1", "IfNotPresent", "Always")
                    },
                    "updateStrategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}, "type": "RollingUpdate"}
                },
                "status": {
                    "currentNumberScheduled": 0, "desiredNumberScheduled": 0,
                    "numberMisscheduled": 0, "numberReady": 0
                }
            })
        );
    }

    #[test]
    fn validation() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"updateStrategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}}),
                vec![
                    "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: 1: may not be set when maxUnavailable is non-zero",
                ],
            ),
            (
                json!({"updateStrategy": {"rollingUpdate": {"maxSurge": "0%", "maxUnavailable": 0}}}),
                vec![
                    "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0",
                ],
            ),
            (
                json!({"updateStrategy": {"rollingUpdate": {"maxSurge": "200%", "maxUnavailable": -1}}}),
                vec![
                    "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: -1: must be greater than or equal to 0",
                    "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: \"200%\": must not be greater than 100%",
                    "spec.updateStrategy.rollingUpdate.maxSurge: Invalid value: \"200%\": may not be set when maxUnavailable is non-zero",
                ],
            ),
            (
                json!({"updateStrategy": {"type": "Never"}}),
                vec![
                    "spec.updateStrategy: Unsupported value: {\"Type\":\"Never\",\"RollingUpdate\":null}: supported values: \"RollingUpdate\", \"OnDelete\"",
                ],
            ),
            (
                json!({"selector": {"matchLabels": {"app": "x"}}, "minReadySeconds": -3}),
                vec![
                    "spec.template.metadata.labels: Invalid value: {\"app\":\"agent\"}: `selector` does not match template `labels`",
                    "spec.minReadySeconds: Invalid value: -3: must be greater than or equal to 0",
                ],
            ),
            (
                json!({"selector": {"matchExpressions": []}}),
                vec!["spec.selector: Invalid value: {}: empty selector is invalid for daemonset"],
            ),
        ];
        for (patch, expected) in cases {
            let mut object = ds();
            for (k, v) in patch.as_object().unwrap() {
                object["spec"][k] = v.clone();
            }
            assert_eq!(DS.create_errors(object), expected, "{patch}");
        }
        let mut no_selector = ds();
        no_selector["spec"].as_object_mut().unwrap().remove("selector");
        assert_eq!(
            DS.create_errors(no_selector),
            [
                "spec.template.metadata.labels: Invalid value: {\"app\":\"agent\"}: `selector` does not match template `labels`"
            ]
        );
    }

    #[test]
    fn updates_track_template_generation() {
        let old = stored(DS.created(ds()));
        let mut new = old.clone();
        new["spec"]["minReadySeconds"] = json!(5);
        new["metadata"]["annotations"]["deprecated.daemonset.template.generation"] = json!("7");
        let out = DS.updated(new, &old, UpdateTarget::Main);
        assert_eq!(out["metadata"]["generation"], json!(2));
        assert_eq!(
            out["metadata"]["annotations"],
            json!({"deprecated.daemonset.template.generation": "1"})
        );

        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:v2");
        let out = DS.updated(new, &old, UpdateTarget::Main);
        assert_eq!(out["metadata"]["generation"], json!(2));
        assert_eq!(
            out["metadata"]["annotations"],
            json!({"deprecated.daemonset.template.generation": "2"})
        );

        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "agent", "x": "y"}});
        new["spec"]["template"]["metadata"]["labels"]["x"] = json!("y");
        assert_eq!(
            DS.update_errors(new, &old, UpdateTarget::Main),
            [
                "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"agent\",\"x\":\"y\"}}: field is immutable"
            ]
        );

        let mut status = old.clone();
        status["status"] = json!({"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": -1});
        status["spec"]["minReadySeconds"] = json!(9);
        assert_eq!(
            DS.update_errors(status.clone(), &old, UpdateTarget::Status),
            ["status.numberReady: Invalid value: -1: must be greater than or equal to 0"]
        );
        status["status"]["numberReady"] = json!(1);
        let out = DS.updated(status, &old, UpdateTarget::Status);
        assert!(out["spec"].get("minReadySeconds").is_none());
        assert_eq!(out["status"]["numberReady"], json!(1));
    }
}
