//! The apps/v1 StatefulSet: defaults, registry strategy and validation.
//!
//! Ports `SetDefaults_StatefulSet` with the generated template and volume-claim-template
//! defaults (the claim templates also print `apiVersion: v1` / `kind: PersistentVolumeClaim`,
//! as upstream's conversion writes them), pkg/registry/apps/statefulset/strategy.go (status
//! reset, generation, the `maxUnavailable` of the disabled MaxUnavailableStatefulSet gate
//! dropped, status kept, the status strategy, warnings) and `ValidateStatefulSet*` of
//! pkg/apis/apps/validation (pod management and update strategies, claim retention policy,
//! claim templates, service name, selector, the template as the controller will stamp it, and
//! the update rule that only some spec fields may change).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetSpec, StatefulSetStatus, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::go_repr::GoValue;
use super::pod_spec::{
    PodValidationOptions, default_pod_template_spec, drop_disabled_template_fields, is_empty_opt,
    none_if_empty, none_if_zero, pod_template_warnings, str_of, validate_pod_specific_annotations,
    validate_pod_template_spec,
};
use super::workload_shared::{
    bump_generation, collision_count_errors, go_bad, go_int, go_int_or_string, go_obj, go_str,
    int_or_percent_value, int_or_string_bad, meta_path, nonnegative_opt, not_more_than_100_percent,
    present_selector, selector_bad, selector_is_empty, selector_matches_template, selector_mismatch,
    validate_positive_int_or_percent,
};
use crate::field::{ErrorList, FieldError, Path};
use crate::selectors::labels::Selector;
use crate::strategy::KindStrategy;
use crate::validation::{
    LabelSelectorValidationOptions, name_is_dns_label, parse_quantity, validate_annotations,
    validate_dns1123_label, validate_label_selector, validate_labels, validate_nonnegative_field,
    validate_object_meta, validate_object_meta_update,
};

const ROLLING_UPDATE: &str = "RollingUpdate";
const ON_DELETE: &str = "OnDelete";
const ORDERED_READY: &str = "OrderedReady";
const PARALLEL: &str = "Parallel";
const RETAIN: &str = "Retain";
const DELETE: &str = "Delete";

/// `SetObjectDefaults_StatefulSet`: podManagementPolicy OrderedReady, a RollingUpdate strategy
/// with partition 0, the Retain claim retention policy, replicas 1, revisionHistoryLimit 10,
/// the template and claim template defaults; plus Go's encoding of zero values.
pub fn default_stateful_set(sts: &mut StatefulSet) {
    let spec = sts.spec.get_or_insert_with(Default::default);
    none_if_empty(&mut spec.pod_management_policy);
    spec.pod_management_policy
        .get_or_insert_with(|| ORDERED_READY.to_owned());
    let strategy = spec.update_strategy.get_or_insert_with(Default::default);
    none_if_empty(&mut strategy.type_);
    if strategy.type_.is_none() {
        strategy.type_ = Some(ROLLING_UPDATE.to_owned());
        strategy.rolling_update.get_or_insert_with(Default::default);
    }
    if strategy.type_.as_deref() == Some(ROLLING_UPDATE)
        && let Some(rolling) = &mut strategy.rolling_update
    {
        rolling.partition.get_or_insert(0);
    }
    let policy = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(Default::default);
    none_if_empty(&mut policy.when_deleted);
    none_if_empty(&mut policy.when_scaled);
    policy.when_deleted.get_or_insert_with(|| RETAIN.to_owned());
    policy.when_scaled.get_or_insert_with(|| RETAIN.to_owned());
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit.get_or_insert(10);
    none_if_zero(&mut spec.min_ready_seconds);
    none_if_empty(&mut spec.service_name);
    is_empty_opt(&mut spec.volume_claim_templates);
    default_pod_template_spec(&mut spec.template);
    for claim in spec.volume_claim_templates.iter_mut().flatten() {
        KindStrategy::apply_defaults(claim);
    }
    sts.status
        .get_or_insert_with(Default::default)
        .available_replicas
        .get_or_insert(0);
}

fn go_rolling_update(strategy: &StatefulSetUpdateStrategy) -> GoValue {
    strategy.rolling_update.as_ref().map_or(GoValue::Null, |r| {
        go_obj(vec![
            ("Partition", go_int(i64::from(r.partition.unwrap_or(0)))),
            (
                "MaxUnavailable",
                go_int_or_string(r.max_unavailable.as_ref(), true),
            ),
        ])
    })
}

fn go_update_strategy(strategy: &StatefulSetUpdateStrategy) -> GoValue {
    go_obj(vec![
        ("Type", go_str(str_of(&strategy.type_))),
        ("RollingUpdate", go_rolling_update(strategy)),
    ])
}

fn validate_update_strategy(strategy: &StatefulSetUpdateStrategy, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let strategy_path = path.child("updateStrategy");
    match str_of(&strategy.type_) {
        "" => errs.push(FieldError::required(&strategy_path, "")),
        ON_DELETE => {
            if strategy.rolling_update.is_some() {
                errs.push(FieldError::invalid(
                    &strategy_path.child("rollingUpdate"),
                    go_bad(&go_rolling_update(strategy)),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        ROLLING_UPDATE => {
            if let Some(rolling) = &strategy.rolling_update {
                let rolling_path = strategy_path.child("rollingUpdate");
                errs.extend(nonnegative_opt(
                    rolling.partition,
                    &rolling_path.child("partition"),
                ));
                if let Some(max) = &rolling.max_unavailable {
                    let max_path = rolling_path.child("maxUnavailable");
                    errs.extend(validate_positive_int_or_percent(max, &max_path));
                    if int_or_percent_value(max) == 0 {
                        errs.push(FieldError::invalid(
                            &max_path,
                            int_or_string_bad(max),
                            "cannot be 0",
                        ));
                    }
                    errs.extend(not_more_than_100_percent(max, &max_path));
                }
            }
        }
        _ => errs.push(FieldError::invalid(
            &strategy_path,
            go_bad(&go_update_strategy(strategy)),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    errs
}

fn validate_retention_policy_type(value: Option<&String>, path: &Path) -> ErrorList {
    match value.map(String::as_str).unwrap_or_default() {
        RETAIN | DELETE => Vec::new(),
        other => vec![FieldError::not_supported(path, other, &[RETAIN, DELETE])],
    }
}

/// The claim template errors of `ValidatePersistentVolumeClaimSpec`, at
/// `<path>[i].spec`: the claim kind's own validation, with its metadata errors left out.
fn validate_volume_claim_templates(templates: &[PersistentVolumeClaim], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, template) in templates.iter().enumerate() {
        let claim = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("claim".to_owned()),
                namespace: Some("default".to_owned()),
                ..Default::default()
            },
            spec: template.spec.clone(),
            status: None,
        };
        let prefix = path.index(i).child("spec");
        for mut err in KindStrategy::validate(&claim) {
            let Some(rest) = err.field.strip_prefix("spec") else {
                continue;
            };
            err.field = format!("{prefix}{rest}");
            errs.push(err);
        }
    }
    errs
}

/// Upstream's `volumesToAddForTemplates` merged into the template's volumes, as
/// `ValidateStatefulSetSpec` does before validating the template.
fn template_to_validate(spec: &StatefulSetSpec) -> PodTemplateSpec {
    let mut template = spec.template.clone();
    let claims = spec.volume_claim_templates.as_deref().unwrap_or_default();
    let Some(pod) = template.spec.as_mut() else {
        return template;
    };
    pod.subdomain = None;
    pod.hostname = None;
    if claims.is_empty() {
        return template;
    }
    let mut added: BTreeMap<String, Volume> = BTreeMap::new();
    for claim in claims {
        let name = str_of(&claim.metadata.name).to_owned();
        added.insert(
            name.clone(),
            Volume {
                name: name.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: name,
                    read_only: None,
                }),
                ..Default::default()
            },
        );
    }
    let mut volumes: Vec<Volume> = Vec::new();
    let existing = pod.volumes.take().unwrap_or_default();
    let names: Vec<String> = added.keys().cloned().collect();
    volumes.extend(added.into_values());
    volumes.extend(existing.into_iter().filter(|v| !names.contains(&v.name)));
    pod.volumes = Some(volumes);
    template
}

/// Options of [`validate_stateful_set_spec`].
#[derive(Clone, Copy, Debug, Default)]
pub struct StatefulSetValidationOptions {
    /// Accept an invalid `serviceName` (immutable, so tolerated on update).
    pub allow_invalid_service_name: bool,
    /// Skip the template validation (the old object's template was already invalid).
    pub skip_validate_pod_template_spec: bool,
    /// Skip the claim templates (immutable, so tolerated on update).
    pub skip_validate_volume_claim_templates: bool,
}

/// Upstream's `ValidatePodTemplateSpecForStatefulSet`.
fn validate_template_for_stateful_set(
    template: &PodTemplateSpec,
    selector: &Selector,
    path: &Path,
    opts: &PodValidationOptions,
    set_opts: StatefulSetValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if !selector.is_empty() && !selector_matches_template(selector, template) {
        errs.push(selector_mismatch(path, template));
    }
    if !set_opts.skip_validate_pod_template_spec {
        errs.extend(validate_pod_template_spec(template, path, opts));
    }
    let meta = template.metadata.clone().unwrap_or_default();
    errs.extend(validate_labels(meta.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs.extend(validate_pod_specific_annotations(
        meta.annotations.as_ref(),
        &template.spec.clone().unwrap_or_default(),
        &path.child("annotations"),
        opts,
    ));
    errs
}

/// Upstream's `ValidateStatefulSetSpec`.
pub fn validate_stateful_set_spec(
    spec: &StatefulSetSpec,
    path: &Path,
    opts: &PodValidationOptions,
    set_opts: StatefulSetValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    match str_of(&spec.pod_management_policy) {
        "" => errs.push(FieldError::required(&path.child("podManagementPolicy"), "")),
        ORDERED_READY | PARALLEL => {}
        other => errs.push(FieldError::invalid(
            &path.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    errs.extend(validate_update_strategy(
        &spec.update_strategy.clone().unwrap_or_default(),
        path,
    ));
    if let Some(policy) = &spec.persistent_volume_claim_retention_policy {
        let policy_path = path.child("persistentVolumeClaimRetentionPolicy");
        errs.extend(validate_retention_policy_type(
            policy.when_deleted.as_ref(),
            &policy_path.child("whenDeleted"),
        ));
        errs.extend(validate_retention_policy_type(
            policy.when_scaled.as_ref(),
            &policy_path.child("whenScaled"),
        ));
    }
    if !set_opts.skip_validate_volume_claim_templates {
        errs.extend(validate_volume_claim_templates(
            spec.volume_claim_templates.as_deref().unwrap_or_default(),
            &path.child("volumeClaimTemplates"),
        ));
    }
    errs.extend(nonnegative_opt(spec.replicas, &path.child("replicas")));
    errs.extend(nonnegative_opt(
        spec.min_ready_seconds,
        &path.child("minReadySeconds"),
    ));
    if let Some(ordinals) = &spec.ordinals {
        errs.extend(nonnegative_opt(ordinals.start, &path.child("ordinals.start")));
    }
    let service_name = str_of(&spec.service_name);
    if !set_opts.allow_invalid_service_name && !service_name.is_empty() {
        errs.extend(validate_dns1123_label(service_name, &path.child("serviceName")));
    }
    let selector_path = path.child("selector");
    let selector = present_selector(&spec.selector);
    match selector {
        None => errs.push(FieldError::required(&selector_path, "")),
        Some(s) => {
            errs.extend(validate_label_selector(
                Some(s),
                LabelSelectorValidationOptions::default(),
                &selector_path,
            ));
            if selector_is_empty(s) {
                errs.push(FieldError::invalid(
                    &selector_path,
                    selector_bad(Some(s)),
                    "empty selector is invalid for statefulset",
                ));
            }
        }
    }
    match Selector::from_optional_label_selector(selector) {
        Err(_) => errs.push(FieldError::invalid(&selector_path, selector_bad(selector), "")),
        Ok(selector) => errs.extend(validate_template_for_stateful_set(
            &template_to_validate(spec),
            &selector,
            &path.child("template"),
            opts,
            set_opts,
        )),
    }
    let pod = spec.template.spec.clone().unwrap_or_default();
    let restart_policy = str_of(&pod.restart_policy);
    if restart_policy != "Always" {
        errs.push(FieldError::not_supported(
            &path.child("template").child("spec").child("restartPolicy"),
            restart_policy,
            &["Always"],
        ));
    }
    if pod.active_deadline_seconds.is_some() {
        errs.push(FieldError::forbidden(
            &path
                .child("template")
                .child("spec")
                .child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    errs
}

/// Upstream's `ValidateStatefulSetStatus`.
pub fn validate_stateful_set_status(status: &StatefulSetStatus, path: &Path) -> ErrorList {
    let replicas = status.replicas;
    let ready = status.ready_replicas.unwrap_or(0);
    let current = status.current_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let mut errs = validate_nonnegative_field(i64::from(replicas), &path.child("replicas"));
    errs.extend(validate_nonnegative_field(
        i64::from(ready),
        &path.child("readyReplicas"),
    ));
    errs.extend(validate_nonnegative_field(
        i64::from(current),
        &path.child("currentReplicas"),
    ));
    errs.extend(validate_nonnegative_field(
        i64::from(updated),
        &path.child("updatedReplicas"),
    ));
    errs.extend(validate_nonnegative_field(
        i64::from(available),
        &path.child("availableReplicas"),
    ));
    if let Some(generation) = status.observed_generation {
        errs.extend(validate_nonnegative_field(
            generation,
            &path.child("observedGeneration"),
        ));
    }
    if let Some(collisions) = status.collision_count {
        errs.extend(validate_nonnegative_field(
            i64::from(collisions),
            &path.child("collisionCount"),
        ));
    }
    let msg = "cannot be greater than status.replicas";
    for (name, value) in [
        ("readyReplicas", ready),
        ("currentReplicas", current),
        ("updatedReplicas", updated),
        ("availableReplicas", available),
    ] {
        if value > replicas {
            errs.push(FieldError::invalid(&path.child(name), value, msg));
        }
    }
    if available > ready {
        errs.push(FieldError::invalid(
            &path.child("availableReplicas"),
            available,
            "cannot be greater than status.readyReplicas",
        ));
    }
    errs
}

fn spec_of(sts: &StatefulSet) -> StatefulSetSpec {
    sts.spec.clone().unwrap_or_default()
}

/// `dropStatefulSetDisabledFields` with MaxUnavailableStatefulSet off (its 1.35 default).
fn drop_disabled_fields(sts: &mut StatefulSet, old: Option<&StatefulSet>) {
    let old_in_use = old
        .and_then(|o| o.spec.as_ref())
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref())
        .is_some_and(|r| r.max_unavailable.is_some());
    if old_in_use {
        return;
    }
    if let Some(rolling) = sts
        .spec
        .as_mut()
        .and_then(|s| s.update_strategy.as_mut())
        .and_then(|s| s.rolling_update.as_mut())
    {
        rolling.max_unavailable = None;
    }
}

/// `GetWarningsForPersistentVolumeClaimSpec`: fractional storage sizes. Upstream names the
/// path `spec.volumeClaimTemplates[i]` on create and `spec.volumeClaimTemplates[i].Spec` on
/// update; the create form is used here.
fn claim_template_warnings(templates: &[PersistentVolumeClaim]) -> Vec<String> {
    let mut warnings = Vec::new();
    for (i, template) in templates.iter().enumerate() {
        let path = Path::new("spec").child("volumeClaimTemplates").index(i);
        let resources = template.spec.as_ref().and_then(|s| s.resources.as_ref());
        for (name, list) in [
            ("requests", resources.and_then(|r| r.requests.as_ref())),
            ("limits", resources.and_then(|r| r.limits.as_ref())),
        ] {
            let Some(quantity) = list.and_then(|l| l.get("storage")) else {
                continue;
            };
            let Ok(parsed) = parse_quantity(quantity.0.trim()) else {
                continue;
            };
            if parsed.milli_value() % 1000 != 0 {
                warnings.push(format!(
                    "{}: fractional byte value {:?} is invalid, must be an integer",
                    path.child("resources").child(name).key("storage"),
                    parsed.to_string()
                ));
            }
        }
    }
    warnings
}

const UPDATE_FORBIDDEN: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

impl KindStrategy for StatefulSet {
    fn apply_defaults(&mut self) {
        default_stateful_set(self);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(StatefulSetStatus {
            available_replicas: Some(0),
            ..Default::default()
        });
        self.metadata.generation = Some(1);
        drop_disabled_fields(self, None);
        if let Some(spec) = &mut self.spec {
            drop_disabled_template_fields(&mut spec.template, None);
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
        drop_disabled_fields(self, Some(old));
        if let Some(spec) = &mut self.spec {
            drop_disabled_template_fields(&mut spec.template, old.spec.as_ref().map(|s| &s.template));
        }
        let changed = self.spec != old.spec;
        bump_generation(&mut self.metadata, &old.metadata, changed);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        let opts = PodValidationOptions::for_template(None);
        let mut errs = validate_object_meta(&self.metadata, true, name_is_dns_label, &meta_path());
        errs.extend(validate_stateful_set_spec(
            &spec_of(self),
            &Path::new("spec"),
            &opts,
            StatefulSetValidationOptions::default(),
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let spec = spec_of(self);
        let old_spec = spec_of(old);
        let opts = PodValidationOptions::for_template(Some(&old_spec.template));
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        let mut set_opts = StatefulSetValidationOptions {
            allow_invalid_service_name: true,
            skip_validate_pod_template_spec: false,
            skip_validate_volume_claim_templates: true,
        };
        if !validate_stateful_set_spec(&old_spec, &Path::root(), &opts, set_opts).is_empty() {
            set_opts.skip_validate_pod_template_spec = true;
        }
        errs.extend(validate_stateful_set_spec(
            &spec,
            &Path::new("spec"),
            &opts,
            set_opts,
        ));
        let mut clone = spec;
        clone.replicas = old_spec.replicas;
        clone.template.clone_from(&old_spec.template);
        clone.update_strategy.clone_from(&old_spec.update_strategy);
        clone.min_ready_seconds = old_spec.min_ready_seconds;
        clone.ordinals.clone_from(&old_spec.ordinals);
        clone.revision_history_limit = old_spec.revision_history_limit;
        clone
            .persistent_volume_claim_retention_policy
            .clone_from(&old_spec.persistent_volume_claim_retention_policy);
        if clone != old_spec {
            errs.push(FieldError::forbidden(&Path::new("spec"), UPDATE_FORBIDDEN));
        }
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let status = self.status.clone().unwrap_or_default();
        let mut errs = validate_stateful_set_status(&status, &Path::new("status"));
        errs.extend(validate_object_meta_update(
            &self.metadata,
            &old.metadata,
            &meta_path(),
        ));
        errs.extend(collision_count_errors(
            status.collision_count,
            old.status.as_ref().and_then(|s| s.collision_count),
        ));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        let spec = spec_of(self);
        let mut warnings = pod_template_warnings(&Path::new("spec").child("template"), &spec.template);
        warnings.extend(claim_template_warnings(
            spec.volume_claim_templates.as_deref().unwrap_or_default(),
        ));
        if spec.revision_history_limit.is_some_and(|l| l < 0) {
            warnings.push(
                "spec.revisionHistoryLimit: a negative value retains all historical revisions; a value >= 0 is recommended"
                    .to_owned(),
            );
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::workload_shared::testing::{Gvk, defaulted_pod_spec, stored};
    use crate::strategy::UpdateTarget;

    const STS: Gvk = Gvk("apps", "v1", "StatefulSet");

    fn sts() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": {
                    "metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "c", "image": "postgres:17"}]}
                }
            }
        })
    }

    #[test]
    fn defaults_like_kube_apiserver() {
        let mut object = sts();
        object["spec"]["volumeClaimTemplates"] = json!([{
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
        }]);
        let out = STS.created(object);
        assert_eq!(
            out,
            json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": "db", "namespace": "default", "generation": 1},
                "spec": {
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                    "podManagementPolicy": "OrderedReady",
                    "replicas": 1,
                    "revisionHistoryLimit": 10,
                    "selector": {"matchLabels": {"app": "db"}},
                    "serviceName": "db",
                    "template": {
                        "metadata": {"labels": {"app": "db"}},
                        "spec": defaulted_pod_spec("postgres:17", "IfNotPresent", "Always")
                    },
                    "updateStrategy": {"rollingUpdate": {"partition": 0}, "type": "RollingUpdate"},
                    "volumeClaimTemplates": [{
                        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                            "volumeMode": "Filesystem"
                        },
                        "status": {"phase": "Pending"}
                    }]
                },
                "status": {"availableReplicas": 0, "replicas": 0}
            })
        );
    }

    #[test]
    fn drops_max_unavailable_of_the_disabled_gate() {
        let mut object = sts();
        object["spec"]["updateStrategy"] =
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}});
        let out = STS.created(object);
        assert_eq!(
            out["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
    }

    #[test]
    fn validation() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"podManagementPolicy": "Random"}),
                vec![
                    "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
                ],
            ),
            (
                json!({"updateStrategy": {"type": "Sometimes"}}),
                vec![
                    "spec.updateStrategy: Invalid value: {\"Type\":\"Sometimes\",\"RollingUpdate\":null}: must be 'RollingUpdate' or 'OnDelete'",
                ],
            ),
            (
                json!({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}}),
                vec![
                    "spec.updateStrategy.rollingUpdate: Invalid value: {\"Partition\":1,\"MaxUnavailable\":null}: only allowed for updateStrategy 'RollingUpdate'",
                ],
            ),
            (
                json!({"updateStrategy": {"rollingUpdate": {"partition": -1}}}),
                vec![
                    "spec.updateStrategy.rollingUpdate.partition: Invalid value: -1: must be greater than or equal to 0",
                ],
            ),
            (
                json!({"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Keep"}}),
                vec![
                    "spec.persistentVolumeClaimRetentionPolicy.whenDeleted: Unsupported value: \"Keep\": supported values: \"Retain\", \"Delete\"",
                ],
            ),
            (
                json!({"serviceName": "DB"}),
                vec![
                    "spec.serviceName: Invalid value: \"DB\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
            (
                json!({"replicas": -1, "ordinals": {"start": -2}}),
                vec![
                    "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                    "spec.ordinals.start: Invalid value: -2: must be greater than or equal to 0",
                ],
            ),
            (
                json!({"selector": {"matchLabels": {"app": "other"}}}),
                vec![
                    "spec.template.metadata.labels: Invalid value: {\"app\":\"db\"}: `selector` does not match template `labels`",
                ],
            ),
            (
                json!({"selector": {"matchLabels": {}}}),
                vec!["spec.selector: Invalid value: {}: empty selector is invalid for statefulset"],
            ),
            (
                json!({"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}]}),
                vec![
                    "spec.volumeClaimTemplates[0].spec.accessModes: Required value: at least 1 access mode is required",
                ],
            ),
        ];
        for (patch, expected) in cases {
            let mut object = sts();
            for (k, v) in patch.as_object().unwrap() {
                object["spec"][k] = v.clone();
            }
            assert_eq!(STS.create_errors(object), expected, "{patch}");
        }
        let mut bad_name = sts();
        bad_name["metadata"]["name"] = json!("db.v1");
        assert_eq!(
            STS.create_errors(bad_name),
            ["metadata.name: Invalid value: \"db.v1\": must not contain dots"]
        );
        // Claim template volumes are known to the template; hostname and subdomain are ignored.
        let mut mounts = sts();
        mounts["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]);
        mounts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] =
            json!([{"name": "data", "mountPath": "/data"}]);
        mounts["spec"]["template"]["spec"]["hostname"] = json!("Not_A_Name");
        assert_eq!(STS.create_errors(mounts), Vec::<String>::new());
    }

    #[test]
    fn duplicates_template_label_errors_like_upstream() {
        let mut object = sts();
        object["spec"]["template"]["metadata"]["labels"]["bad key"] = json!("x");
        let errs = STS.create_errors(object);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0], errs[1]);
        assert!(errs[0].starts_with("spec.template.labels: Invalid value: \"bad key\""));
    }

    #[test]
    fn updates() {
        let old = stored(STS.created(sts()));
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("postgres:18");
        new["status"] = json!({"replicas": 9});
        let out = STS.updated(new, &old, UpdateTarget::Main);
        assert_eq!(out["metadata"]["generation"], json!(2));
        assert_eq!(out["status"], json!({"availableReplicas": 0, "replicas": 0}));

        let mut new = old.clone();
        new["spec"]["serviceName"] = json!("other");
        new["spec"]["podManagementPolicy"] = json!("Parallel");
        assert_eq!(
            STS.update_errors(new, &old, UpdateTarget::Main),
            [
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
            ]
        );

        let mut status = old.clone();
        status["spec"]["replicas"] = json!(5);
        status["status"] = json!({"replicas": 2, "readyReplicas": 1, "availableReplicas": 2});
        assert_eq!(
            STS.update_errors(status.clone(), &old, UpdateTarget::Status),
            ["status.availableReplicas: Invalid value: 2: cannot be greater than status.readyReplicas"]
        );
        status["status"] = json!({"replicas": 2, "readyReplicas": 2, "availableReplicas": 2});
        let out = STS.updated(status, &old, UpdateTarget::Status);
        assert_eq!(out["spec"]["replicas"], json!(1));
        assert_eq!(out["status"]["readyReplicas"], json!(2));
    }

    #[test]
    fn warns_about_negative_history_and_fractional_claims() {
        let mut object = sts();
        object["spec"]["revisionHistoryLimit"] = json!(-1);
        object["spec"]["volumeClaimTemplates"] = json!([{
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1500m"}}}
        }]);
        let out = STS.created(object);
        assert_eq!(
            STS.warnings(&out),
            [
                "spec.volumeClaimTemplates[0].resources.requests[storage]: fractional byte value \"1500m\" is invalid, must be an integer",
                "spec.revisionHistoryLimit: a negative value retains all historical revisions; a value >= 0 is recommended",
            ]
        );
    }
}
