//! The core/v1 Pod: defaults, registry strategy and validation.
//!
//! Ports `SetObjectDefaults_Pod` (pod-only defaults on top of [`default_pod_spec`]: requests
//! from limits, pod-level resources, `enableServiceLinks`, host-network ports, the v1
//! conversion quirks), pkg/registry/core/pod/strategy.go (create: status reset to `Pending`
//! with the QoS class, generation 1, disabled fields dropped, the scheduling-gated condition,
//! `matchLabelKeys` merged into selectors, AppArmor annotations copied to fields; update:
//! status kept, generation bumped on spec changes; the status strategy; graceful deletion as
//! `CheckGracefulDelete`; selectable fields) and `ValidatePodCreate`, `ValidatePodUpdate` (with
//! its "pod updates may not change fields" diff, see [`super::go_repr`]) and
//! `ValidatePodStatusUpdate`. Service account, tolerations and priority defaults come from
//! admission plugins, not from here.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{AppArmorProfile, Container, Pod, PodCondition, PodSpec, PodStatus};

use super::go_repr::{bad_struct_list, render_typed_value, unified_diff};
use super::pod_spec::{
    APPARMOR_ANNOTATION_KEY_PREFIX, MIRROR_POD_ANNOTATION_KEY, PodValidationOptions, compute_pod_qos,
    default_pod_level_resources, default_pod_spec, drop_disabled_pod_spec_fields,
    drop_init_container_annotations, merge_match_label_keys, pod_spec_warnings, str_of,
    validate_apparmor_annotations_and_fields_match, validate_apparmor_profile_field,
    validate_containers_only_for_pod, validate_pod_spec, validate_pod_specific_annotations,
    validate_seccomp_annotations_and_fields, validate_tolerations,
};
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::{DeletePlan, KindStrategy};
use crate::validation::{
    STRICT_IP_CIDR_VALIDATION, bad_value, inclusive_range_error, is_dns1123_label, is_dual_stack_ip_strings,
    is_valid_group_id, is_valid_ip_for_legacy_field, is_valid_user_id, name_errors, name_is_dns_subdomain,
    set_defaults_resource_list, validate_immutable_field, validate_object_meta, validate_object_meta_update,
    validate_qualified_name,
};

/// The fields a Pod can be selected by, beyond `metadata.name` and `metadata.namespace`
/// (`spec.host` is upstream's alias of `spec.nodeName`).
pub const POD_SELECTABLE_FIELDS: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
    "spec.host",
];

const UPDATABLE_POD_SPEC_FIELDS: &[&str] = &[
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

/// Upstream's `GetPodQOS`: the recorded class, else [`compute_pod_qos`].
pub fn pod_qos_class(pod: &Pod) -> &str {
    match pod.status.as_ref().map(|s| str_of(&s.qos_class)) {
        Some(class) if !class.is_empty() => class,
        _ => pod.spec.as_ref().map_or("BestEffort", compute_pod_qos),
    }
}

// ---------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------

fn requests_from_limits(containers: &mut [Container]) {
    for c in containers {
        let Some(resources) = &mut c.resources else {
            continue;
        };
        let Some(limits) = resources.limits.clone() else {
            continue;
        };
        let requests = resources.requests.get_or_insert_with(BTreeMap::new);
        for (name, value) in limits {
            requests.entry(name).or_insert(value);
        }
    }
}

/// `SetObjectDefaults_Pod`, with the v1 → internal → v1 round trip of upstream's storage.
pub fn default_pod(pod: &mut Pod) {
    drop_init_container_annotations(&mut pod.metadata);
    let spec = pod.spec.get_or_insert_with(Default::default);
    // Conversion of a Pod forces a negative grace period to 1.
    if spec.termination_grace_period_seconds.is_some_and(|g| g < 0) {
        spec.termination_grace_period_seconds = Some(1);
    }
    // SetDefaults_Pod.
    requests_from_limits(&mut spec.containers);
    requests_from_limits(spec.init_containers.as_deref_mut().unwrap_or_default());
    default_pod_level_resources(spec);
    spec.enable_service_links.get_or_insert(true);
    if spec.host_network == Some(true) {
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            for port in c.ports.iter_mut().flatten() {
                if port.host_port.unwrap_or(0) == 0 {
                    port.host_port = Some(port.container_port);
                }
            }
        }
    }
    default_pod_spec(spec);
    let status = pod.status.get_or_insert_with(Default::default);
    default_pod_status(status);
}

fn default_pod_status(status: &mut PodStatus) {
    for cs in status
        .container_statuses
        .iter_mut()
        .chain(status.init_container_statuses.iter_mut())
        .chain(status.ephemeral_container_statuses.iter_mut())
        .flatten()
    {
        set_defaults_resource_list(&mut cs.allocated_resources);
        if let Some(r) = &mut cs.resources {
            set_defaults_resource_list(&mut r.limits);
            set_defaults_resource_list(&mut r.requests);
        }
    }
    set_defaults_resource_list(&mut status.allocated_resources);
    if let Some(r) = &mut status.resources {
        set_defaults_resource_list(&mut r.limits);
        set_defaults_resource_list(&mut r.requests);
    }
    // v1 podIP and podIPs: podIP wins when they differ, podIPs[0] is printed as podIP.
    let pod_ip = str_of(&status.pod_ip).to_owned();
    if !pod_ip.is_empty() {
        let ips = status.pod_ips.get_or_insert_with(Vec::new);
        if ips.first().is_none_or(|first| first.ip != pod_ip) {
            *ips = vec![k8s_openapi::api::core::v1::PodIP { ip: pod_ip }];
        }
    }
    if let Some(first) = status.pod_ips.as_ref().and_then(|ips| ips.first()) {
        status.pod_ip = Some(first.ip.clone());
    }
    if status.pod_ips.as_ref().is_some_and(Vec::is_empty) {
        status.pod_ips = None;
    }
    for s in [
        &mut status.phase,
        &mut status.message,
        &mut status.reason,
        &mut status.nominated_node_name,
        &mut status.host_ip,
        &mut status.pod_ip,
        &mut status.qos_class,
        &mut status.resize,
    ] {
        super::pod_spec::none_if_empty(s);
    }
    if status.observed_generation == Some(0) {
        status.observed_generation = None;
    }
}

// ---------------------------------------------------------------------------------------------
// Strategy helpers
// ---------------------------------------------------------------------------------------------

fn drop_disabled_pod_fields(pod: &mut Pod, old: Option<&Pod>) {
    if let Some(spec) = &mut pod.spec {
        drop_disabled_pod_spec_fields(spec, old.and_then(|o| o.spec.as_ref()));
    }
    let old_status = old.and_then(|o| o.status.as_ref());
    if let Some(status) = &mut pod.status {
        if old_status.is_none_or(|s| s.resources.is_none() && s.allocated_resources.is_none()) {
            status.resources = None;
            status.allocated_resources = None;
        }
        if old_status.is_none_or(|s| s.extended_resource_claim_status.is_none()) {
            status.extended_resource_claim_status = None;
        }
        for cs in status
            .container_statuses
            .iter_mut()
            .chain(status.init_container_statuses.iter_mut())
            .chain(status.ephemeral_container_statuses.iter_mut())
            .flatten()
        {
            cs.allocated_resources_status = None;
        }
    }
}

/// `applySchedulingGatedCondition`. The transition time is the creation time (upstream uses
/// the clock at the same moment).
fn apply_scheduling_gated_condition(pod: &mut Pod) {
    let gated = pod
        .spec
        .as_ref()
        .is_some_and(|s| s.scheduling_gates.as_ref().is_some_and(|g| !g.is_empty()));
    if !gated {
        return;
    }
    let now = pod.metadata.creation_timestamp.clone();
    let status = pod.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if conditions.iter().any(|c| c.type_ == "PodScheduled") {
        return;
    }
    conditions.push(PodCondition {
        type_: "PodScheduled".to_owned(),
        status: "False".to_owned(),
        reason: Some("SchedulingGated".to_owned()),
        message: Some("Scheduling is blocked due to non-empty scheduling gates".to_owned()),
        last_transition_time: now,
        ..Default::default()
    });
}

fn apparmor_field_for_annotation(annotation: &str) -> Option<AppArmorProfile> {
    match annotation {
        "unconfined" => Some(AppArmorProfile {
            type_: "Unconfined".to_owned(),
            localhost_profile: None,
        }),
        "runtime/default" => Some(AppArmorProfile {
            type_: "RuntimeDefault".to_owned(),
            localhost_profile: None,
        }),
        other => other
            .strip_prefix("localhost/")
            .filter(|p| !p.is_empty())
            .map(|p| AppArmorProfile {
                type_: "Localhost".to_owned(),
                localhost_profile: Some(p.to_owned()),
            }),
    }
}

/// `applyAppArmorVersionSkew`: a container AppArmor annotation without a field becomes the
/// field (unless it equals the pod-level profile).
fn apply_apparmor_version_skew(pod: &mut Pod) {
    let Some(spec) = &mut pod.spec else {
        return;
    };
    if spec.os.as_ref().is_some_and(|o| o.name == "windows") {
        return;
    }
    let Some(annotations) = pod.metadata.annotations.as_ref() else {
        return;
    };
    let pod_profile = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.app_armor_profile.clone());
    let apply = |name: &str, sc: &mut Option<k8s_openapi::api::core::v1::SecurityContext>| {
        let Some(annotation) = annotations.get(&format!("{APPARMOR_ANNOTATION_KEY_PREFIX}{name}")) else {
            return;
        };
        if sc.as_ref().is_some_and(|s| s.app_armor_profile.is_some()) {
            return;
        }
        let field = apparmor_field_for_annotation(annotation)
            .filter(|f| validate_apparmor_profile_field(Some(f), &Path::root()).is_empty());
        if let Some(field) = field
            && pod_profile.as_ref() != Some(&field)
        {
            sc.get_or_insert_with(Default::default).app_armor_profile = Some(field);
        }
    };
    for c in spec.init_containers.iter_mut().flatten() {
        apply(&c.name, &mut c.security_context);
    }
    for c in &mut spec.containers {
        apply(&c.name, &mut c.security_context);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        apply(&c.name, &mut c.security_context);
    }
}

/// `preserveOldObservedGeneration`.
fn preserve_old_observed_generation(status: &mut PodStatus, old: Option<&PodStatus>) {
    let Some(old) = old else {
        return;
    };
    if status.observed_generation.unwrap_or(0) == 0 {
        status.observed_generation = old.observed_generation;
    }
    let mut old_generations: BTreeMap<&str, Vec<Option<i64>>> = BTreeMap::new();
    for c in old.conditions.iter().flatten() {
        old_generations
            .entry(c.type_.as_str())
            .or_default()
            .push(c.observed_generation);
    }
    let mut used: BTreeMap<String, usize> = BTreeMap::new();
    for c in status.conditions.iter_mut().flatten() {
        let index = used.entry(c.type_.clone()).or_insert(0);
        let old_generation = old_generations
            .get(c.type_.as_str())
            .and_then(|g| g.get(*index))
            .copied()
            .flatten();
        *index += 1;
        if c.observed_generation.unwrap_or(0) == 0 {
            c.observed_generation = old_generation.filter(|g| *g != 0);
        }
    }
}

fn options(old: Option<&Pod>) -> PodValidationOptions {
    PodValidationOptions {
        resource_is_pod: true,
        ..PodValidationOptions::for_pod_spec(old.and_then(|o| o.spec.as_ref()), old.map(|o| &o.metadata))
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Upstream's `validatePodMetadataAndSpec`.
fn validate_pod_metadata_and_spec(pod: &Pod, spec: &PodSpec, opts: &PodValidationOptions) -> ErrorList {
    let meta_path = Path::new("metadata");
    let spec_path = Path::new("spec");
    let mut errs = validate_object_meta(&pod.metadata, true, name_is_dns_subdomain, &meta_path);
    errs.extend(validate_pod_specific_annotations(
        pod.metadata.annotations.as_ref(),
        spec,
        &meta_path.child("annotations"),
        opts,
    ));
    errs.extend(validate_pod_spec(spec, &pod.metadata, &spec_path, opts));
    if str_of(&spec.service_account_name).is_empty() {
        for (vi, volume) in spec.volumes.iter().flatten().enumerate() {
            let Some(projected) = &volume.projected else {
                continue;
            };
            let path = spec_path.child("volumes").index(vi).child("projected");
            for (si, source) in projected.sources.iter().flatten().enumerate() {
                if source.service_account_token.is_some() {
                    errs.push(FieldError::forbidden(
                        &path.child("sources").index(si).child("serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    errs.extend(validate_containers_only_for_pod(spec, &spec_path));
    errs
}

/// Upstream's `ValidatePodCreate`.
pub fn validate_pod_create(pod: &Pod, opts: &PodValidationOptions) -> ErrorList {
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let spec_path = Path::new("spec");
    let mut errs = validate_pod_metadata_and_spec(pod, spec, opts);
    if spec.ephemeral_containers.as_ref().is_some_and(|e| !e.is_empty()) {
        errs.push(FieldError::forbidden(
            &spec_path.child("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    if !str_of(&spec.node_name).is_empty() && spec.scheduling_gates.as_ref().is_some_and(|g| !g.is_empty()) {
        errs.push(FieldError::forbidden(
            &spec_path.child("nodeName"),
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs.extend(validate_seccomp_annotations_and_fields(
        Some(&pod.metadata),
        spec,
        &spec_path,
    ));
    errs.extend(validate_apparmor_annotations_and_fields_match(
        Some(&pod.metadata),
        spec,
        &spec_path,
    ));
    errs
}

/// Upstream's `ValidatePodSpecificAnnotationUpdates`.
fn validate_pod_specific_annotation_updates(
    new: &Pod,
    old: &Pod,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let empty = BTreeMap::new();
    let new_annotations = new.metadata.annotations.as_ref().unwrap_or(&empty);
    let old_annotations = old.metadata.annotations.as_ref().unwrap_or(&empty);
    for (key, old_value) in old_annotations {
        if new_annotations.get(key) == Some(old_value) {
            continue;
        }
        if key.starts_with(APPARMOR_ANNOTATION_KEY_PREFIX) {
            errs.push(FieldError::forbidden(
                &path.key(key),
                "may not remove or update AppArmor annotations",
            ));
        }
        if key == MIRROR_POD_ANNOTATION_KEY {
            errs.push(FieldError::forbidden(
                &path.key(key),
                "may not remove or update mirror pod annotation",
            ));
        }
    }
    for key in new_annotations.keys() {
        if old_annotations.contains_key(key) {
            continue;
        }
        if key.starts_with(APPARMOR_ANNOTATION_KEY_PREFIX) {
            errs.push(FieldError::forbidden(
                &path.key(key),
                "may not add AppArmor annotations",
            ));
        }
        if key == MIRROR_POD_ANNOTATION_KEY {
            errs.push(FieldError::forbidden(
                &path.key(key),
                "may not add mirror pod annotation",
            ));
        }
    }
    let empty_spec = PodSpec::default();
    errs.extend(validate_pod_specific_annotations(
        new.metadata.annotations.as_ref(),
        new.spec.as_ref().unwrap_or(&empty_spec),
        path,
        opts,
    ));
    errs
}

/// `ValidateContainerUpdates`: same number of containers, images set and trimmed. Returns
/// whether validation must stop.
fn validate_container_updates(
    new: &[Container],
    old: &[Container],
    path: &Path,
    errs: &mut ErrorList,
) -> bool {
    if new.len() != old.len() {
        errs.push(FieldError::forbidden(
            path,
            "pod updates may not add or remove containers",
        ));
        return true;
    }
    for (i, c) in new.iter().enumerate() {
        let image = str_of(&c.image);
        if image.is_empty() {
            errs.push(FieldError::required(&path.index(i).child("image"), ""));
        }
        if image.trim().len() != image.len() {
            errs.push(FieldError::invalid(
                &path.index(i).child("image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
    }
    false
}

/// `validateOnlyAddedTolerations`.
fn validate_only_added_tolerations(
    new: &PodSpec,
    old: &PodSpec,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let new_tolerations = new.tolerations.as_deref().unwrap_or_default();
    for old_t in old.tolerations.iter().flatten() {
        let found = new_tolerations.iter().any(|n| {
            let mut clone = old_t.clone();
            clone.toleration_seconds = n.toleration_seconds;
            clone == *n
        });
        if !found {
            return vec![FieldError::forbidden(
                path,
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    validate_tolerations(new_tolerations, path, opts)
}

/// `validateOnlyDeletedSchedulingGates`.
fn validate_only_deleted_scheduling_gates(new: &PodSpec, old: &PodSpec, path: &Path) -> ErrorList {
    let old_names: BTreeSet<&str> = old
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| g.name.as_str())
        .collect();
    let mut added: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, gate) in new.scheduling_gates.iter().flatten().enumerate() {
        added.insert(gate.name.as_str(), i);
    }
    added
        .into_iter()
        .filter(|(name, _)| !old_names.contains(name))
        .map(|(name, i)| {
            FieldError::forbidden(
                &path.index(i).child("name"),
                format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            )
        })
        .collect()
}

fn node_selector_terms(spec: &PodSpec) -> Option<Vec<k8s_openapi::api::core::v1::NodeSelectorTerm>> {
    spec.affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref())
        .map(|r| r.node_selector_terms.clone())
}

/// `validateNodeAffinityMutation` for gated pods: only additions to existing terms.
fn validate_node_affinity_mutation(new: &PodSpec, old: &PodSpec, path: &Path) -> ErrorList {
    let Some(old_terms) = node_selector_terms(old) else {
        return Vec::new();
    };
    let new_terms = node_selector_terms(new).unwrap_or_default();
    let terms_path = path
        .child("requiredDuringSchedulingIgnoredDuringExecution")
        .child("nodeSelectorTerms");
    if !old_terms.is_empty() && old_terms.len() != new_terms.len() {
        return vec![FieldError::invalid(
            &terms_path,
            bad_struct_list("NodeSelectorTerm", &new_terms),
            "no additions/deletions to non-empty NodeSelectorTerms list are allowed",
        )];
    }
    let mut errs = ErrorList::new();
    for (i, (old_term, new_term)) in old_terms.iter().zip(&new_terms).enumerate() {
        let only_additions =
            |old: &Option<Vec<k8s_openapi::api::core::v1::NodeSelectorRequirement>>,
             new: &Option<Vec<k8s_openapi::api::core::v1::NodeSelectorRequirement>>| {
                let (old, new) = (
                    old.as_deref().unwrap_or_default(),
                    new.as_deref().unwrap_or_default(),
                );
                old.is_empty() || (new.len() >= old.len() && new[..old.len()] == *old)
            };
        let old_empty = old_term.match_expressions.as_ref().is_none_or(Vec::is_empty)
            && old_term.match_fields.as_ref().is_none_or(Vec::is_empty);
        let new_empty = new_term.match_expressions.as_ref().is_none_or(Vec::is_empty)
            && new_term.match_fields.as_ref().is_none_or(Vec::is_empty);
        let ok = (new_empty || !old_empty)
            && only_additions(&old_term.match_expressions, &new_term.match_expressions)
            && only_additions(&old_term.match_fields, &new_term.match_fields);
        if !ok {
            errs.push(FieldError::invalid(
                &terms_path.index(i),
                super::go_repr::bad_struct("NodeSelectorTerm", new_term),
                "only additions are allowed (no mutations or deletions)",
            ));
        }
    }
    errs
}

/// Upstream's `ValidatePodUpdate`: metadata, the new pod as on create, and only the updatable
/// spec fields changed (images, activeDeadlineSeconds, added tolerations, removed scheduling
/// gates, a negative grace period set to 1, node selector/affinity additions of gated pods).
pub fn validate_pod_update(new: &Pod, old: &Pod, opts: &PodValidationOptions) -> ErrorList {
    let meta_path = Path::new("metadata");
    let spec_path = Path::new("spec");
    let empty = PodSpec::default();
    let new_spec = new.spec.as_ref().unwrap_or(&empty);
    let old_spec = old.spec.as_ref().unwrap_or(&empty);
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, &meta_path);
    errs.extend(validate_pod_metadata_and_spec(new, new_spec, opts));
    errs.extend(validate_pod_specific_annotation_updates(
        new,
        old,
        &meta_path.child("annotations"),
        opts,
    ));
    if validate_container_updates(
        &new_spec.containers,
        &old_spec.containers,
        &spec_path.child("containers"),
        &mut errs,
    ) {
        return errs;
    }
    let (new_init, old_init) = (
        new_spec.init_containers.as_deref().unwrap_or_default(),
        old_spec.init_containers.as_deref().unwrap_or_default(),
    );
    if validate_container_updates(new_init, old_init, &spec_path.child("initContainers"), &mut errs) {
        return errs;
    }
    let deadline_path = spec_path.child("activeDeadlineSeconds");
    match (new_spec.active_deadline_seconds, old_spec.active_deadline_seconds) {
        (Some(new_deadline), old_deadline) => {
            if !(0..=i64::from(i32::MAX)).contains(&new_deadline) {
                errs.push(FieldError::invalid(
                    &deadline_path,
                    new_deadline,
                    inclusive_range_error(0, i64::from(i32::MAX)),
                ));
                return errs;
            }
            if old_deadline.is_some_and(|o| o < new_deadline) {
                errs.push(FieldError::invalid(
                    &deadline_path,
                    new_deadline,
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            &deadline_path,
            crate::field::BadValue::Plain("null".to_owned()),
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }
    errs.extend(validate_only_added_tolerations(
        new_spec,
        old_spec,
        &spec_path.child("tolerations"),
        opts,
    ));
    errs.extend(validate_only_deleted_scheduling_gates(
        new_spec,
        old_spec,
        &spec_path.child("schedulingGates"),
    ));
    if new_spec == old_spec {
        return errs;
    }
    let mut munged = new_spec.clone();
    for (c, o) in munged.containers.iter_mut().zip(&old_spec.containers) {
        c.image = o.image.clone();
    }
    for (c, o) in munged.init_containers.iter_mut().flatten().zip(old_init) {
        c.image = o.image.clone();
    }
    munged.active_deadline_seconds = old_spec.active_deadline_seconds;
    munged.scheduling_gates = old_spec.scheduling_gates.clone();
    munged.tolerations = old_spec.tolerations.clone();
    if old_spec.termination_grace_period_seconds.is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old_spec.termination_grace_period_seconds;
    }
    if old_spec.scheduling_gates.as_ref().is_some_and(|g| !g.is_empty()) {
        if munged.node_selector != old_spec.node_selector {
            let empty_map = BTreeMap::new();
            let new_selector = munged.node_selector.as_ref().unwrap_or(&empty_map);
            let changed = old_spec
                .node_selector
                .iter()
                .flatten()
                .any(|(k, v)| new_selector.get(k) != Some(v));
            if changed {
                errs.push(FieldError::invalid(
                    &spec_path.child("nodeSelector"),
                    bad_value(new_selector),
                    "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                ));
            }
            munged.node_selector = old_spec.node_selector.clone();
        }
        let old_node_affinity = old_spec.affinity.as_ref().and_then(|a| a.node_affinity.clone());
        let munged_node_affinity = munged.affinity.as_ref().and_then(|a| a.node_affinity.clone());
        if old_node_affinity != munged_node_affinity {
            errs.extend(validate_node_affinity_mutation(
                &munged,
                old_spec,
                &spec_path.child("affinity").child("nodeAffinity"),
            ));
            match &mut munged.affinity {
                None if old_node_affinity.is_none() => {}
                None => {
                    munged.affinity = Some(k8s_openapi::api::core::v1::Affinity {
                        node_affinity: old_node_affinity,
                        ..Default::default()
                    });
                }
                Some(a)
                    if old_spec.affinity.is_none()
                        && a.pod_affinity.is_none()
                        && a.pod_anti_affinity.is_none() =>
                {
                    munged.affinity = None;
                }
                Some(a) => a.node_affinity = old_node_affinity,
            }
        }
    }
    if munged != *old_spec {
        let diff = unified_diff(
            &render_typed_value("PodSpec", old_spec),
            &render_typed_value("PodSpec", &munged),
        );
        errs.push(FieldError::forbidden(
            &spec_path,
            format!(
                "pod updates may not change fields other than {}\n{diff}",
                UPDATABLE_POD_SPEC_FIELDS.join(",")
            ),
        ));
    }
    errs
}

fn terminated_exit_code(status: &k8s_openapi::api::core::v1::ContainerStatus) -> Option<i32> {
    status
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| t.exit_code)
}

/// `ContainerShouldRestart` of pkg/api/v1/pod.
fn container_should_restart(c: &Container, spec: &PodSpec, exit_code: i32) -> bool {
    if let Some(policy) = &c.restart_policy {
        for rule in c.restart_policy_rules.iter().flatten() {
            let Some(codes) = &rule.exit_codes else {
                continue;
            };
            let matched = codes.values.iter().flatten().any(|v| *v == exit_code);
            let applies = match codes.operator.as_str() {
                "In" => matched,
                "NotIn" => !matched,
                _ => false,
            };
            if applies {
                if rule.action == "Restart" {
                    return true;
                }
                break;
            }
        }
        match policy.as_str() {
            "Always" => return true,
            "OnFailure" => return exit_code != 0,
            "Never" => return false,
            _ => {}
        }
    }
    match str_of(&spec.restart_policy) {
        "OnFailure" => exit_code != 0,
        "Never" => false,
        _ => true,
    }
}

fn validate_state_transitions(
    new: &[k8s_openapi::api::core::v1::ContainerStatus],
    old: &[k8s_openapi::api::core::v1::ContainerStatus],
    containers: &[Container],
    spec: &PodSpec,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, old_status) in old.iter().enumerate() {
        let Some(exit_code) = terminated_exit_code(old_status) else {
            continue;
        };
        if let Some(new_status) = new.iter().find(|n| n.name == old_status.name)
            && terminated_exit_code(new_status).is_none()
        {
            let allowed = containers
                .iter()
                .find(|c| c.name == old_status.name)
                .is_some_and(|c| container_should_restart(c, spec, exit_code));
            if !allowed {
                errs.push(FieldError::forbidden(
                    &path.index(i).child("state"),
                    "may not be transitioned to non-terminated state",
                ));
            }
        }
    }
    errs
}

fn validate_ips(
    ips: &[String],
    old: &[String],
    path: &Path,
    errs: &mut ErrorList,
    value: crate::field::BadValue,
) {
    for (i, ip) in ips.iter().enumerate() {
        errs.extend(is_valid_ip_for_legacy_field(
            &path.index(i),
            ip,
            STRICT_IP_CIDR_VALIDATION,
            old,
        ));
    }
    if ips.len() > 1 {
        let dual = is_dual_stack_ip_strings(ips);
        if dual.is_none() {
            errs.push(FieldError::internal(path, "failed to check for dual stack"));
        }
        if dual != Some(true) || ips.len() > 2 {
            errs.push(FieldError::invalid(
                path,
                value,
                "may specify no more than one IP for each IP family",
            ));
        }
    }
}

/// Upstream's `ValidatePodStatusUpdate`.
pub fn validate_pod_status_update(new: &Pod, old: &Pod, opts: &PodValidationOptions) -> ErrorList {
    let meta_path = Path::new("metadata");
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, &meta_path);
    errs.extend(validate_pod_specific_annotation_updates(
        new,
        old,
        &meta_path.child("annotations"),
        opts,
    ));
    let status_path = Path::new("status");
    let empty_status = PodStatus::default();
    let status = new.status.as_ref().unwrap_or(&empty_status);
    let old_status = old.status.as_ref().unwrap_or(&empty_status);
    let empty_spec = PodSpec::default();
    let spec = new.spec.as_ref().unwrap_or(&empty_spec);
    let old_spec = old.spec.as_ref().unwrap_or(&empty_spec);
    for (i, c) in status.conditions.iter().flatten().enumerate() {
        let cp = status_path.child("conditions").index(i);
        if let Some(g) = c.observed_generation
            && g < 0
        {
            errs.push(FieldError::invalid(
                &cp.child("observedGeneration"),
                g,
                "must be a non-negative integer",
            ));
        }
        if !["PodScheduled", "Ready", "Initialized"].contains(&c.type_.as_str()) {
            errs.extend(validate_qualified_name(&c.type_, &cp.child("Type")));
        }
    }
    if str_of(&spec.node_name) != str_of(&old_spec.node_name) {
        errs.push(FieldError::forbidden(
            &status_path.child("nodeName"),
            "may not be changed directly",
        ));
    }
    let nominated = str_of(&status.nominated_node_name);
    if nominated != str_of(&old_status.nominated_node_name) && !nominated.is_empty() {
        errs.extend(name_errors(
            &status_path.child("nominatedNodeName"),
            nominated,
            name_is_dns_subdomain(nominated, false),
        ));
    }
    if !str_of(&old_spec.node_name).is_empty()
        && !nominated.is_empty()
        && nominated != str_of(&old_status.nominated_node_name)
    {
        errs.push(FieldError::forbidden(
            &status_path.child("nominatedNodeName"),
            "may not be set on pods that are already bound to a node",
        ));
    }
    if let Some(g) = status.observed_generation
        && g < 0
    {
        errs.push(FieldError::invalid(
            &status_path.child("observedGeneration"),
            g,
            "must be a non-negative integer",
        ));
    }
    errs.extend(validate_immutable_field(
        str_of(&status.qos_class),
        str_of(&old_status.qos_class),
        &status_path.child("qosClass"),
    ));
    let empty = Vec::new();
    let all_could_restart = opts.allow_restart_all_containers
        && spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .any(|c| {
                c.restart_policy_rules
                    .iter()
                    .flatten()
                    .any(|r| r.action == "RestartAllContainers")
            });
    if !all_could_restart {
        errs.extend(validate_state_transitions(
            status.container_statuses.as_ref().unwrap_or(&empty),
            old_status.container_statuses.as_ref().unwrap_or(&empty),
            &old_spec.containers,
            old_spec,
            &status_path.child("containerStatuses"),
        ));
        errs.extend(validate_state_transitions(
            status.init_container_statuses.as_ref().unwrap_or(&empty),
            old_status.init_container_statuses.as_ref().unwrap_or(&empty),
            old_spec.init_containers.as_deref().unwrap_or_default(),
            old_spec,
            &status_path.child("initContainerStatuses"),
        ));
    }
    for (i, old_cs) in old_status
        .ephemeral_container_statuses
        .iter()
        .flatten()
        .enumerate()
    {
        if terminated_exit_code(old_cs).is_none() {
            continue;
        }
        for new_cs in status.ephemeral_container_statuses.iter().flatten() {
            if new_cs.name == old_cs.name && terminated_exit_code(new_cs).is_none() {
                errs.push(FieldError::forbidden(
                    &status_path
                        .child("ephemeralContainerStatuses")
                        .index(i)
                        .child("state"),
                    "may not be transitioned to non-terminated state",
                ));
            }
        }
    }
    let claim_names: BTreeSet<&str> = spec
        .resource_claims
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    let mut seen = BTreeSet::new();
    for (i, cs) in status.resource_claim_statuses.iter().flatten().enumerate() {
        let p = status_path.child("resourceClaimStatuses").index(i).child("name");
        if !claim_names.contains(cs.name.as_str()) {
            errs.push(FieldError::invalid(
                &p,
                cs.name.as_str(),
                "must match the name of an entry in `spec.resourceClaims`",
            ));
        }
        if !seen.insert(cs.name.as_str()) {
            errs.push(FieldError::duplicate(&p, cs.name.as_str()));
        }
        if let Some(name) = &cs.resource_claim_name {
            errs.extend(name_errors(&p, name, name_is_dns_subdomain(name, false)));
        }
    }
    let pod_ips: Vec<String> = status.pod_ips.iter().flatten().map(|p| p.ip.clone()).collect();
    let old_pod_ips: Vec<String> = old_status
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.clone())
        .collect();
    validate_ips(
        &pod_ips,
        &old_pod_ips,
        &status_path.child("podIPs"),
        &mut errs,
        bad_struct_list("PodIP", status.pod_ips.as_deref().unwrap_or_default()),
    );
    let host_ips: Vec<String> = status.host_ips.iter().flatten().map(|p| p.ip.clone()).collect();
    if let Some(first) = host_ips.first() {
        if str_of(&status.host_ip) != first {
            errs.push(FieldError::invalid(
                &status_path.child("hostIPs").index(0).child("ip"),
                first.as_str(),
                "must be equal to `hostIP`",
            ));
        }
        let old_host_ips: Vec<String> = old_status
            .host_ips
            .iter()
            .flatten()
            .map(|p| p.ip.clone())
            .collect();
        validate_ips(
            &host_ips,
            &old_host_ips,
            &status_path.child("hostIPs"),
            &mut errs,
            bad_struct_list("HostIP", status.host_ips.as_deref().unwrap_or_default()),
        );
    }
    let windows = spec.os.as_ref().is_some_and(|o| o.name == "windows");
    for (list, name) in [
        (&status.container_statuses, "containerStatuses"),
        (&status.init_container_statuses, "initContainerStatuses"),
        (&status.ephemeral_container_statuses, "ephemeralContainerStatuses"),
    ] {
        for (i, cs) in list.iter().flatten().enumerate() {
            let Some(user) = &cs.user else {
                continue;
            };
            let up = status_path.child(name).index(i).child("user").child("linux");
            if windows {
                if user.linux.is_some() {
                    errs.push(FieldError::forbidden(&up, "cannot be set for a windows pod"));
                }
                continue;
            }
            let Some(linux) = &user.linux else {
                continue;
            };
            for msg in is_valid_user_id(linux.uid) {
                errs.push(FieldError::invalid(&up.child("uid"), linux.uid, msg));
            }
            for msg in is_valid_group_id(linux.gid) {
                errs.push(FieldError::invalid(&up.child("gid"), linux.gid, msg));
            }
            for (g, gid) in linux.supplemental_groups.iter().flatten().enumerate() {
                for msg in is_valid_group_id(*gid) {
                    errs.push(FieldError::invalid(
                        &up.child("supplementalGroups").index(g),
                        *gid,
                        msg,
                    ));
                }
            }
        }
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// The strategy
// ---------------------------------------------------------------------------------------------

impl KindStrategy for Pod {
    fn apply_defaults(&mut self) {
        default_pod(self);
    }

    fn prepare_for_create(&mut self) {
        self.metadata.generation = Some(1);
        let qos = pod_qos_class(self).to_owned();
        self.status = Some(PodStatus {
            phase: Some("Pending".to_owned()),
            qos_class: Some(qos),
            ..Default::default()
        });
        drop_disabled_pod_fields(self, None);
        apply_scheduling_gated_condition(self);
        let labels = self.metadata.labels.clone();
        if let Some(spec) = &mut self.spec {
            merge_match_label_keys(spec, labels.as_ref());
        }
        apply_apparmor_version_skew(self);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status = old.status.clone();
        drop_disabled_pod_fields(self, Some(old));
        if self.spec != old.spec {
            self.metadata.generation = Some(self.metadata.generation.unwrap_or(0) + 1);
        }
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec = old.spec.clone();
        self.metadata.owner_references = old.metadata.owner_references.clone();
        let status = self.status.get_or_insert_with(Default::default);
        if str_of(&status.qos_class).is_empty() {
            status.qos_class = old.status.as_ref().and_then(|s| s.qos_class.clone());
        }
        preserve_old_observed_generation(status, old.status.as_ref());
        drop_disabled_pod_fields(self, Some(old));
    }

    fn validate(&self) -> ErrorList {
        validate_pod_create(self, &options(None))
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        validate_pod_update(self, old, &options(Some(old)))
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        validate_pod_status_update(self, old, &options(Some(old)))
    }

    /// `CheckGracefulDelete`: the requested grace period, else the pod's
    /// `terminationGracePeriodSeconds`; immediate for unscheduled or terminated pods; a
    /// negative period becomes 1.
    fn before_delete(&mut self, requested: Option<i64>) -> DeletePlan {
        let spec = self.spec.as_ref();
        let mut period = requested
            .or_else(|| spec.and_then(|s| s.termination_grace_period_seconds))
            .unwrap_or(0);
        if spec.is_none_or(|s| str_of(&s.node_name).is_empty()) {
            period = 0;
        }
        let phase = self.status.as_ref().map(|s| str_of(&s.phase)).unwrap_or_default();
        if phase == "Failed" || phase == "Succeeded" {
            period = 0;
        }
        if period < 0 {
            period = 1;
        }
        if period == 0 {
            DeletePlan::Now
        } else {
            DeletePlan::Graceful(period)
        }
    }

    /// Upstream skips warnings on pod updates (`WarningsOnUpdate` returns nil).
    fn warnings_on_update(&self) -> Vec<String> {
        Vec::new()
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let name = str_of(&self.metadata.name);
        let msgs = is_dns1123_label(name);
        if !msgs.is_empty() {
            warnings.push(format!(
                "metadata.name: this is used in the Pod's hostname, which can result in surprising behavior; a DNS label is recommended: [{}]",
                msgs.join(" ")
            ));
        }
        if let Some(spec) = &self.spec {
            warnings.extend(pod_spec_warnings(None, spec, Some(&self.metadata)));
        }
        warnings
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        let empty_spec = PodSpec::default();
        let spec = self.spec.as_ref().unwrap_or(&empty_spec);
        let empty_status = PodStatus::default();
        let status = self.status.as_ref().unwrap_or(&empty_status);
        let pod_ip = status
            .pod_ips
            .as_ref()
            .and_then(|ips| ips.first())
            .map_or_else(|| str_of(&status.pod_ip).to_owned(), |ip| ip.ip.clone());
        vec![
            ("spec.nodeName", str_of(&spec.node_name).to_owned()),
            ("spec.restartPolicy", str_of(&spec.restart_policy).to_owned()),
            ("spec.schedulerName", str_of(&spec.scheduler_name).to_owned()),
            (
                "spec.serviceAccountName",
                str_of(&spec.service_account_name).to_owned(),
            ),
            ("spec.hostNetwork", spec.host_network.unwrap_or(false).to_string()),
            ("status.phase", str_of(&status.phase).to_owned()),
            ("status.podIP", pod_ip),
            ("status.podIPs", String::new()),
            (
                "status.nominatedNodeName",
                str_of(&status.nominated_node_name).to_owned(),
            ),
            ("spec.host", str_of(&spec.node_name).to_owned()),
        ]
    }

    const SELECTABLE_FIELDS: &'static [&'static str] = POD_SELECTABLE_FIELDS;
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::strategy::{KindOps, PipelineError, UpdateTarget};

    fn ops() -> KindOps {
        KindOps::of::<Pod>()
    }

    /// The store's create path without admission: normalize, then create.
    fn create(value: Value) -> Result<Value, PipelineError> {
        (ops().create)((ops().normalize)(value)?)
    }

    fn errors(result: Result<Value, PipelineError>) -> Vec<String> {
        match result {
            Err(PipelineError::Invalid(errs)) => errs.iter().map(ToString::to_string).collect(),
            Ok(_) => Vec::new(),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn base() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "nginx", "namespace": "default"},
            "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}
        })
    }

    /// `base()` with each `(pointer, value)` set (`null` removes the field).
    fn pod(changes: &[(&str, Value)]) -> Value {
        let mut value = base();
        for (pointer, new) in changes {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let target = value.pointer_mut(parent).unwrap();
            match (target, key.parse::<usize>()) {
                (Value::Array(items), Ok(i)) if i < items.len() => items[i] = new.clone(),
                (Value::Array(items), Ok(_)) => items.push(new.clone()),
                (Value::Object(map), _) if new.is_null() => {
                    map.remove(key);
                }
                (Value::Object(map), _) => {
                    map.insert(key.to_owned(), new.clone());
                }
                (other, _) => panic!("cannot set {pointer} in {other}"),
            }
        }
        value
    }

    /// Creates the pod and asserts the exact rendered causes of the 422.
    fn check(changes: &[(&str, Value)], expected: &[&str]) {
        let got = errors(create(pod(changes)));
        assert_eq!(got, expected, "changes: {changes:?}");
    }

    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    #[test]
    fn defaults_a_minimal_pod_like_kube_apiserver() {
        let out = create(base()).unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "nginx", "namespace": "default", "generation": 1},
                "spec": {
                    "containers": [{
                        "image": "nginx",
                        "imagePullPolicy": "Always",
                        "name": "nginx",
                        "resources": {},
                        "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "dnsPolicy": "ClusterFirst",
                    "enableServiceLinks": true,
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30
                },
                "status": {"phase": "Pending", "qosClass": "BestEffort"}
            })
        );
    }

    #[test]
    fn defaults_containers_probes_env_and_volumes() {
        let input = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "serviceAccountName": "default",
                "hostNetwork": false,
                "containers": [{
                    "name": "app", "image": "registry.k8s.io/app:1.0",
                    "args": [],
                    "ports": [{"containerPort": 8080}],
                    "env": [
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}
                    ],
                    "resources": {"limits": {"cpu": "0.5", "memory": "128Mi"}},
                    "livenessProbe": {"httpGet": {"port": 8080}},
                    "readinessProbe": {"tcpSocket": {"port": "http"}, "initialDelaySeconds": 5},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": false}]
                }],
                "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
                "volumes": [
                    {"name": "config", "configMap": {"name": "app-config"}},
                    {"name": "secret", "secret": {"secretName": "s"}},
                    {"name": "scratch"},
                    {"name": "host", "hostPath": {"path": "/var/log"}},
                    {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                    {"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}
                ]
            }
        });
        let out = create(input).unwrap();
        assert_eq!(
            out["spec"],
            json!({
                "containers": [{
                    "name": "app", "image": "registry.k8s.io/app:1.0", "imagePullPolicy": "IfNotPresent",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "env": [
                        {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"divisor": "0", "resource": "limits.cpu"}}}
                    ],
                    "resources": {
                        "limits": {"cpu": "500m", "memory": "128Mi"},
                        "requests": {"cpu": "500m", "memory": "128Mi"}
                    },
                    "livenessProbe": {
                        "failureThreshold": 3,
                        "httpGet": {"path": "/", "port": 8080, "scheme": "HTTP"},
                        "periodSeconds": 10, "successThreshold": 1, "timeoutSeconds": 1
                    },
                    "readinessProbe": {
                        "failureThreshold": 3, "initialDelaySeconds": 5, "periodSeconds": 10,
                        "successThreshold": 1, "tcpSocket": {"port": "http"}, "timeoutSeconds": 1
                    },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "volumeMounts": [{"mountPath": "/etc/app", "name": "config"}]
                }],
                "initContainers": [{
                    "name": "init", "image": "busybox", "command": ["true"], "imagePullPolicy": "Always",
                    "resources": {}, "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "volumes": [
                    {"name": "config", "configMap": {"defaultMode": 420, "name": "app-config"}},
                    {"name": "secret", "secret": {"defaultMode": 420, "secretName": "s"}},
                    {"name": "scratch", "emptyDir": {}},
                    {"name": "host", "hostPath": {"path": "/var/log", "type": ""}},
                    {"name": "info", "downwardAPI": {"defaultMode": 420, "items": [
                        {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}, "path": "labels"}
                    ]}},
                    {"name": "token", "projected": {"defaultMode": 420, "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3600, "path": "token"}}
                    ]}}
                ],
                "dnsPolicy": "ClusterFirst",
                "enableServiceLinks": true,
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "serviceAccount": "default",
                "serviceAccountName": "default",
                "terminationGracePeriodSeconds": 30
            })
        );
        assert_eq!(
            out["status"],
            json!({"phase": "Pending", "qosClass": "Burstable"})
        );
    }

    #[test]
    fn computes_qos_classes() {
        let resources = |r: Value| pod(&[("/spec/containers/0/resources", r)]);
        let qos = |v: Value| create(v).unwrap()["status"]["qosClass"].clone();
        assert_eq!(
            qos(resources(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
            json!("Guaranteed")
        );
        assert_eq!(
            qos(resources(
                json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}})
            )),
            json!("Burstable")
        );
        assert_eq!(
            qos(resources(json!({"requests": {"memory": "1Gi"}}))),
            json!("Burstable")
        );
        assert_eq!(
            qos(resources(
                json!({"requests": {"example.com/gpu": "1"}, "limits": {"example.com/gpu": "1"}})
            )),
            json!("BestEffort")
        );
        // A class recorded by the client is kept, as upstream evaluates GetPodQOS first.
        let mut recorded = base();
        recorded["status"] = json!({"qosClass": "Guaranteed", "phase": "Running"});
        assert_eq!(
            create(recorded).unwrap()["status"],
            json!({"phase": "Pending", "qosClass": "Guaranteed"})
        );
    }

    #[test]
    fn defaults_host_network_ports_and_keeps_pod_only_conversions() {
        let out = create(pod(&[
            ("/spec/hostNetwork", json!(true)),
            ("/spec/terminationGracePeriodSeconds", json!(-5)),
            ("/spec/containers/0/ports", json!([{"containerPort": 80}])),
            ("/spec/serviceAccount", json!("legacy")),
            (
                "/metadata/annotations",
                json!({"pod.beta.kubernetes.io/init-containers": "[]", "keep": "me"}),
            ),
        ]))
        .unwrap();
        assert_eq!(
            out["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "hostPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(out["spec"]["terminationGracePeriodSeconds"], json!(1));
        assert_eq!(out["spec"]["serviceAccountName"], json!("legacy"));
        assert_eq!(out["spec"]["serviceAccount"], json!("legacy"));
        assert_eq!(out["metadata"]["annotations"], json!({"keep": "me"}));
    }

    #[test]
    fn rejects_invalid_pods_with_upstream_causes() {
        check(
            &[("/spec/containers", json!([]))],
            &["spec.containers: Required value"],
        );
        check(
            &[("/spec/containers/0/image", Value::Null)],
            &["spec.containers[0].image: Required value"],
        );
        check(
            &[("/spec/containers/0/name", json!("Nginx"))],
            &[&format!(
                "spec.containers[0].name: Invalid value: \"Nginx\": {LABEL_MSG}"
            )],
        );
        check(
            &[("/metadata/name", json!("Bad_Name"))],
            &[&format!(
                "metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}"
            )],
        );
        check(
            &[("/spec/containers/1", json!({"name": "nginx", "image": "nginx"}))],
            &["spec.containers[1].name: Duplicate value: \"nginx\""],
        );
        check(
            &[(
                "/spec/initContainers",
                json!([{"name": "nginx", "image": "busybox"}]),
            )],
            &["spec.initContainers[0].name: Duplicate value: \"nginx\""],
        );
        check(
            &[(
                "/spec/containers/0/ports",
                json!([{"containerPort": 0}, {"containerPort": 70000, "protocol": "HTTP", "name": "web"}, {"containerPort": 81, "name": "web"}]),
            )],
            &[
                "spec.containers[0].ports[0].containerPort: Required value",
                "spec.containers[0].ports[1].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.containers[0].ports[2].name: Duplicate value: \"web\"",
            ],
        );
        check(
            &[(
                "/spec/containers/0/env",
                json!([{"name": ""}, {"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
            )],
            &[
                "spec.containers[0].env[0].name: Required value",
                "spec.containers[0].env[1].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty",
            ],
        );
        check(
            &[(
                "/spec/containers/0/env",
                json!([{"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "spec.foo"}}}, {"name": "R", "valueFrom": {"fieldRef": {"fieldPath": "spec.restartPolicy"}}}]),
            )],
            &[
                "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value: \"spec.foo\": error converting fieldPath: field label not supported: spec.foo",
                "spec.containers[0].env[1].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.restartPolicy\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\"",
            ],
        );
        check(
            &[("/spec/containers/0/envFrom", json!([{"prefix": "X_"}]))],
            &[
                "spec.containers[0].envFrom: Invalid value: \"\": must specify one of: `configMapRef` or `secretRef`",
            ],
        );
        check(
            &[(
                "/spec/containers/0/volumeMounts",
                json!([{"name": "data", "mountPath": "/data"}]),
            )],
            &["spec.containers[0].volumeMounts[0].name: Not found: \"data\""],
        );
        check(
            &[(
                "/spec/volumes",
                json!([{"name": "v", "emptyDir": {}}, {"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}, "hostPath": {"path": "/x"}}, {"name": "c", "configMap": {}}]),
            )],
            &[
                "spec.volumes[1].name: Duplicate value: \"v\"",
                "spec.volumes[2].hostPath: Forbidden: may not specify more than 1 volume type",
                "spec.volumes[3].configMap.name: Required value",
            ],
        );
        check(
            &[(
                "/spec/volumes",
                json!([{"name": "h", "hostPath": {"path": "/x", "type": "Dir"}}]),
            )],
            &[
                "spec.volumes[0].hostPath.type: Unsupported value: \"Dir\": supported values: \"\", \"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", \"FileOrCreate\", \"Socket\"",
            ],
        );
        check(
            &[("/spec/restartPolicy", json!("Sometimes"))],
            &[
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ],
        );
        check(
            &[("/spec/dnsPolicy", json!("Foo"))],
            &[
                "spec.dnsPolicy: Unsupported value: \"Foo\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
            ],
        );
        check(
            &[("/spec/dnsPolicy", json!("None"))],
            &["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"],
        );
        check(
            &[(
                "/spec/containers/0/resources",
                json!({"limits": {"cpu": "1"}, "requests": {"cpu": "2", "memory": "-1"}}),
            )],
            &[
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
                "spec.containers[0].resources.requests[memory]: Invalid value: \"-1\": must be greater than or equal to 0",
            ],
        );
        check(
            &[("/spec/containers/0/resources", json!({"limits": {"pods": "1"}}))],
            // Requests are defaulted from limits first, as upstream does.
            &[
                "spec.containers[0].resources.limits[pods]: Invalid value: \"pods\": must be a standard resource for containers",
                "spec.containers[0].resources.requests[pods]: Invalid value: \"pods\": must be a standard resource for containers",
            ],
        );
        check(
            &[
                (
                    "/spec/containers/0/livenessProbe",
                    json!({"exec": {"command": ["true"]}, "successThreshold": 2}),
                ),
                ("/spec/containers/0/readinessProbe", json!({"periodSeconds": -1})),
            ],
            &[
                "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
                "spec.containers[0].readinessProbe: Required value: must specify a handler type",
                "spec.containers[0].readinessProbe.periodSeconds: Invalid value: -1: must be greater than or equal to 0",
            ],
        );
        check(
            &[(
                "/spec/containers/0/lifecycle",
                json!({"preStop": {"httpGet": {"port": 0}, "exec": {"command": ["x"]}}}),
            )],
            &[
                "spec.containers[0].lifecycle.preStop.httpGet: Forbidden: may not specify more than 1 handler type",
            ],
        );
        check(
            &[(
                "/spec/initContainers",
                json!([{"name": "init", "image": "busybox", "livenessProbe": {"exec": {"command": ["true"]}}}]),
            )],
            &[
                "spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always",
            ],
        );
        check(
            &[("/spec/containers/0/imagePullPolicy", json!("Sometimes"))],
            &[
                "spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
            ],
        );
        check(
            &[("/spec/containers/0/image", json!(" nginx"))],
            &[
                "spec.containers[0].image: Invalid value: \" nginx\": must not have leading or trailing whitespace",
            ],
        );
        check(
            &[("/spec/activeDeadlineSeconds", json!(0))],
            &["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"],
        );
        check(
            &[(
                "/spec/tolerations",
                json!([{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "value": "v", "effect": "NoSchedule", "tolerationSeconds": 5}]),
            )],
            &[
                "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                "spec.tolerations[1].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set",
                "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
            ],
        );
        check(
            &[
                ("/spec/hostNetwork", json!(true)),
                (
                    "/spec/containers/0/ports",
                    json!([{"containerPort": 80, "hostPort": 81}]),
                ),
            ],
            &[
                "spec.containers[0].ports[0].hostPort: Invalid value: 81: must match `containerPort` when `hostNetwork` is true",
            ],
        );
        check(
            &[("/spec/serviceAccountName", json!("Bad"))],
            &[&format!(
                "spec.serviceAccountName: Invalid value: \"Bad\": {SUBDOMAIN_MSG}"
            )],
        );
        check(
            &[(
                "/spec/ephemeralContainers",
                json!([{"name": "debug", "image": "busybox"}]),
            )],
            &["spec.ephemeralContainers: Forbidden: cannot be set on create"],
        );
        check(
            &[(
                "/spec/volumes",
                json!([{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]),
            )],
            &[
                "spec.volumes[0].projected.sources[0].serviceAccountToken: Forbidden: must not be specified when serviceAccountName is not set",
            ],
        );
        check(
            &[
                ("/spec/nodeName", json!("node-1")),
                ("/spec/schedulingGates", json!([{"name": "example.com/gate"}])),
            ],
            &["spec.nodeName: Forbidden: cannot be set until all schedulingGates have been cleared"],
        );
        check(
            &[
                (
                    "/spec/securityContext",
                    json!({"runAsUser": -1, "sysctls": [{"name": "net.core.somaxconn", "value": "1"}]}),
                ),
                ("/spec/hostNetwork", json!(true)),
            ],
            &[
                "spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
                "spec.securityContext.sysctls[0].name: Invalid value: \"net.core.somaxconn\": may not be specified when 'hostNetwork' is true",
            ],
        );
        check(
            &[(
                "/spec/containers/0/securityContext",
                json!({"privileged": true, "allowPrivilegeEscalation": false}),
            )],
            &[
                "spec.containers[0].securityContext: Invalid value: {\"Capabilities\":null,\"Privileged\":true,\"SELinuxOptions\":null,\"WindowsOptions\":null,\"RunAsUser\":null,\"RunAsGroup\":null,\"RunAsNonRoot\":null,\"ReadOnlyRootFilesystem\":null,\"AllowPrivilegeEscalation\":false,\"ProcMount\":null,\"SeccompProfile\":null,\"AppArmorProfile\":null}: cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ],
        );
    }

    #[test]
    fn reports_several_problems_in_upstream_order() {
        check(
            &[
                ("/metadata/name", json!("UPPER")),
                ("/spec/restartPolicy", json!("Sometimes")),
                ("/spec/containers/0/image", Value::Null),
                ("/spec/volumes", json!([{"name": "a_b", "emptyDir": {}}])),
            ],
            &[
                &format!("metadata.name: Invalid value: \"UPPER\": {SUBDOMAIN_MSG}"),
                &format!("spec.volumes[0].name: Invalid value: \"a_b\": {LABEL_MSG}"),
                "spec.containers[0].image: Required value",
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ],
        );
    }

    fn push(list: &mut Value, item: Value) {
        list.as_array_mut().unwrap().push(item);
    }

    fn stored(changes: &[(&str, Value)]) -> Value {
        let mut value = create(pod(changes)).unwrap();
        value["metadata"]["resourceVersion"] = json!("7");
        value
    }

    fn update(old: &Value, edit: impl FnOnce(&mut Value)) -> Result<Value, PipelineError> {
        let mut new = old.clone();
        edit(&mut new);
        (ops().update)((ops().normalize)(new)?, old, UpdateTarget::Main)
    }

    #[test]
    fn allows_image_updates_and_bumps_the_generation() {
        let old = stored(&[]);
        let out = update(&old, |p| {
            p["spec"]["containers"][0]["image"] = json!("nginx:1.27");
            p["status"] = json!({"phase": "Running"});
        })
        .unwrap();
        assert_eq!(out["spec"]["containers"][0]["image"], json!("nginx:1.27"));
        assert_eq!(out["metadata"]["generation"], json!(2));
        // Status is not changed through the main resource; the pull policy was defaulted once.
        assert_eq!(
            out["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        assert_eq!(out["spec"]["containers"][0]["imagePullPolicy"], json!("Always"));
        let same = update(&old, |_| {}).unwrap();
        assert_eq!(same["metadata"]["generation"], json!(1));
    }

    #[test]
    fn forbids_other_spec_changes_with_upstreams_diff() {
        let old = stored(&[]);
        let errs = errors(update(&old, |p| p["spec"]["restartPolicy"] = json!("Never")));
        assert_eq!(errs.len(), 1);
        let expected_head = "spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n@@ ";
        assert!(errs[0].starts_with(expected_head), "{}", errs[0]);
        assert!(
            errs[0].contains("  \"EphemeralContainers\": null,\n- \"RestartPolicy\": \"Always\",\n+ \"RestartPolicy\": \"Never\",\n  \"TerminationGracePeriodSeconds\": 30,\n"),
            "{}",
            errs[0]
        );
        assert_eq!(
            errors(update(&old, |p| push(
                &mut p["spec"]["containers"],
                json!({"name": "b", "image": "b"})
            ))),
            ["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
    }

    #[test]
    fn applies_upstreams_update_rules() {
        let old = stored(&[
            ("/spec/activeDeadlineSeconds", json!(100)),
            (
                "/spec/tolerations",
                json!([{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10}]),
            ),
            ("/spec/schedulingGates", json!([{"name": "example.com/a"}])),
        ]);
        assert_eq!(
            errors(update(&old, |p| p["spec"]["activeDeadlineSeconds"] = json!(200))),
            ["spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"]
        );
        assert_eq!(
            errors(update(&old, |p| p["spec"]["activeDeadlineSeconds"] = Value::Null)),
            [
                "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"
            ]
        );
        let shorter = update(&old, |p| {
            p["spec"]["activeDeadlineSeconds"] = json!(50);
            p["spec"]["tolerations"][0]["tolerationSeconds"] = json!(5);
            push(
                &mut p["spec"]["tolerations"],
                json!({"key": "other", "operator": "Exists"}),
            );
            p["spec"]["schedulingGates"] = json!([]);
        })
        .unwrap();
        assert_eq!(shorter["spec"]["activeDeadlineSeconds"], json!(50));
        assert_eq!(shorter["metadata"]["generation"], json!(2));
        assert_eq!(
            errors(update(&old, |p| p["spec"]["tolerations"][0]["key"] = json!("changed"))),
            [
                "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
            ]
        );
        assert_eq!(
            errors(update(&old, |p| push(
                &mut p["spec"]["schedulingGates"],
                json!({"name": "example.com/b"})
            ))),
            [
                "spec.schedulingGates[1].name: Forbidden: only deletion is allowed, but found new scheduling gate 'example.com/b'"
            ]
        );
        // Gated pods may gain node selector entries but not change existing ones.
        let gated = stored(&[
            ("/spec/schedulingGates", json!([{"name": "example.com/a"}])),
            ("/spec/nodeSelector", json!({"zone": "a"})),
        ]);
        let added = update(&gated, |p| p["spec"]["nodeSelector"]["disk"] = json!("ssd")).unwrap();
        assert_eq!(added["spec"]["nodeSelector"], json!({"disk": "ssd", "zone": "a"}));
        assert_eq!(
            errors(update(&gated, |p| p["spec"]["nodeSelector"] = json!({"zone": "b"}))),
            [
                "spec.nodeSelector: Invalid value: {\"zone\":\"b\"}: only additions to spec.nodeSelector are allowed (no mutations or deletions)"
            ]
        );
    }

    #[test]
    fn status_updates_keep_the_spec_and_check_the_status() {
        let old = stored(&[
            ("/spec/nodeName", json!("node-1")),
            ("/spec/restartPolicy", json!("Never")),
        ]);
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("ignored");
        new["status"] = json!({
            "phase": "Running",
            "podIP": "10.0.0.5",
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "bad type", "status": "True"}]
        });
        let errs = errors((ops().update)(new.clone(), &old, UpdateTarget::Status));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with(
            "status.conditions[1].Type: Invalid value: \"bad type\": name part must consist of"
        ));
        new["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
        let out = (ops().update)(new.clone(), &old, UpdateTarget::Status).unwrap();
        assert_eq!(out["spec"], old["spec"]);
        assert_eq!(out["status"]["podIPs"], json!([{"ip": "10.0.0.5"}]));
        assert_eq!(
            out["status"]["qosClass"],
            json!("BestEffort"),
            "the QoS class is backfilled"
        );
        new["status"]["qosClass"] = json!("Guaranteed");
        assert_eq!(
            errors((ops().update)(new.clone(), &old, UpdateTarget::Status)),
            ["status.qosClass: Invalid value: \"Guaranteed\": field is immutable"]
        );
        // A terminated container of a Never pod may not run again.
        let mut terminated = old;
        terminated["status"]["containerStatuses"] = json!([{"name": "nginx", "image": "nginx", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0}}}]);
        let mut running = terminated.clone();
        running["status"]["containerStatuses"][0]["state"] = json!({"running": {}});
        assert_eq!(
            errors((ops().update)(running, &terminated, UpdateTarget::Status)),
            ["status.containerStatuses[0].state: Forbidden: may not be transitioned to non-terminated state"]
        );
    }

    #[test]
    fn plans_graceful_deletion_like_check_graceful_delete() {
        let plan = |changes: &[(&str, Value)], requested: Option<i64>| {
            let value = stored(changes);
            (ops().before_delete)(value, requested).unwrap().0
        };
        let scheduled = [("/spec/nodeName", json!("node-1"))];
        assert_eq!(plan(&[], None), DeletePlan::Now, "unscheduled pods go at once");
        assert_eq!(plan(&[], Some(30)), DeletePlan::Now);
        assert_eq!(plan(&scheduled, None), DeletePlan::Graceful(30));
        assert_eq!(plan(&scheduled, Some(5)), DeletePlan::Graceful(5));
        assert_eq!(plan(&scheduled, Some(0)), DeletePlan::Now);
        assert_eq!(plan(&scheduled, Some(-3)), DeletePlan::Graceful(1));
        assert_eq!(
            plan(
                &[
                    scheduled[0].clone(),
                    ("/spec/terminationGracePeriodSeconds", json!(0))
                ],
                None
            ),
            DeletePlan::Now
        );
        let mut done = stored(&scheduled);
        done["status"]["phase"] = json!("Succeeded");
        assert_eq!((ops().before_delete)(done, None).unwrap().0, DeletePlan::Now);
    }

    #[test]
    fn exposes_upstreams_selectable_fields() {
        let value = stored(&[("/spec/nodeName", json!("node-1"))]);
        let fields = (ops().selectable_fields)(&value);
        let get = |name: &str| fields.iter().find(|(f, _)| *f == name).map(|(_, v)| v.clone());
        assert_eq!(get("spec.nodeName").as_deref(), Some("node-1"));
        assert_eq!(get("spec.host").as_deref(), Some("node-1"));
        assert_eq!(get("spec.hostNetwork").as_deref(), Some("false"));
        assert_eq!(get("status.phase").as_deref(), Some("Pending"));
        assert_eq!(get("spec.schedulerName").as_deref(), Some("default-scheduler"));
        assert!(ops().supported_fields.contains(&"status.nominatedNodeName"));
    }

    #[test]
    fn adds_the_scheduling_gated_condition_and_merges_match_label_keys() {
        let mut value = pod(&[
            ("/spec/schedulingGates", json!([{"name": "example.com/gate"}])),
            ("/metadata/labels", json!({"app": "web"})),
            (
                "/spec/topologySpreadConstraints",
                json!([{
                    "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"tier": "fe"}}, "matchLabelKeys": ["app"]
                }]),
            ),
        ]);
        value["metadata"]["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
        let out = create(value).unwrap();
        assert_eq!(
            out["status"]["conditions"],
            json!([{
                "type": "PodScheduled", "status": "False", "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates",
                "lastTransitionTime": "2025-01-01T00:00:00Z"
            }])
        );
        assert_eq!(
            out["spec"]["topologySpreadConstraints"][0]["labelSelector"],
            json!({"matchLabels": {"tier": "fe"}, "matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]})
        );
    }

    #[test]
    fn warns_like_upstream() {
        let value = create(pod(&[
            ("/metadata/name", json!("web.v1")),
            ("/spec/nodeSelector", json!({"beta.kubernetes.io/os": "linux"})),
            (
                "/spec/containers/0/env",
                json!([{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]),
            ),
        ]))
        .unwrap();
        let warnings = (ops().warnings)(&value);
        assert_eq!(
            warnings,
            [
                "metadata.name: this is used in the Pod's hostname, which can result in surprising behavior; a DNS label is recommended: [must not contain dots]",
                "spec.nodeSelector[beta.kubernetes.io/os]: deprecated since v1.14; use \"kubernetes.io/os\" instead",
                "spec.containers[0].env[1]: hides previous definition of \"A\", which may be dropped when using apply",
            ]
        );
    }

    #[test]
    fn defaults_pod_level_requests_from_containers_and_limits() {
        let out = create(pod(&[
            ("/spec/resources", json!({"limits": {"cpu": "1", "memory": "1Gi"}})),
            (
                "/spec/containers/0/resources",
                json!({"requests": {"cpu": "100m", "memory": "128Mi"}}),
            ),
            (
                "/spec/containers/1",
                json!({"name": "b", "image": "b", "resources": {"requests": {"cpu": "150m", "memory": "128Mi"}}}),
            ),
        ]))
        .unwrap();
        assert_eq!(
            out["spec"]["resources"],
            json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "250m", "memory": "256Mi"}})
        );
        assert_eq!(out["status"]["qosClass"], json!("Burstable"));
        check(
            &[
                (
                    "/spec/resources",
                    json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}}),
                ),
                (
                    "/spec/containers/0/resources",
                    json!({"requests": {"cpu": "200m"}, "limits": {"cpu": "2"}}),
                ),
            ],
            &[
                "spec.resources.requests[cpu]: Invalid value: \"100m\": must be greater than or equal to aggregate container requests of 200m",
                "spec.resources.containers[0][cpu].limits: Invalid value: \"2\": must be less than or equal to pod limits of 1",
            ],
        );
    }

    #[test]
    fn validates_ephemeral_container_fields_through_the_shared_validator() {
        let spec: PodSpec = serde_json::from_value(json!({
            "containers": [{"name": "app", "image": "nginx", "terminationMessagePolicy": "File", "imagePullPolicy": "Always"}],
            "ephemeralContainers": [{
                "name": "debug", "image": "busybox", "targetContainerName": "missing",
                "terminationMessagePolicy": "File", "imagePullPolicy": "Always",
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "x"}]
            }],
            "volumes": [{"name": "v", "emptyDir": {}}],
            "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "terminationGracePeriodSeconds": 30
        }))
        .unwrap();
        let errs = validate_pod_spec(
            &spec,
            &ObjectMetaForTest::default(),
            &Path::new("spec"),
            &PodValidationOptions::default(),
        );
        assert_eq!(
            errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "spec.ephemeralContainers[0].targetContainerName: Not found: \"missing\"",
                "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container",
            ]
        );
    }

    type ObjectMetaForTest = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
}
