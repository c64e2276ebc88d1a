//! The pod spec shared by pods and every kind with a pod template (ReplicationControllers,
//! PodTemplates, and the apps and batch workloads): scheme defaults, the encoding round trip,
//! fields of disabled features, validation options, validation, QoS class and warnings.
//!
//! Ports pkg/apis/core/v1 (`SetDefaults_PodSpec` and the generated nested defaults, the
//! v1 ⇄ internal conversion quirks: `serviceAccount` as an alias of `serviceAccountName`, Go
//! `omitempty` dropping empty values, init-container annotations), pkg/api/pod
//! (`DropDisabledPodFields`, `GetValidationOptionsFromPodSpecAndMeta`, warnings),
//! pkg/apis/core/helper/qos, and the spec half of pkg/apis/core/validation (`ValidatePodSpec`,
//! `ValidatePodTemplateSpec`, security contexts, affinity, tolerations, DNS, topology spread,
//! pod-level resources, pod-specific annotations). Feature gates are fixed at their 1.35
//! defaults. Containers live in [`super::pod_container`], volumes in [`super::pod_volume`].
//!
//! The public entry points other kinds reuse: [`default_pod_spec`],
//! [`default_pod_template_spec`], [`drop_disabled_template_fields`], [`validate_pod_spec`],
//! [`validate_pod_template_spec`], [`PodValidationOptions::for_template`],
//! [`pod_template_warnings`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Affinity, AppArmorProfile, Container, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
    PodAffinityTerm, PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile,
    Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};

use super::go_repr::bad_struct;
use super::pod_container::{
    default_container, default_ephemeral_container, is_restartable_init_container, normalize_resources,
    validate_container_only_for_pod, validate_containers, validate_ephemeral_containers,
    validate_init_containers, validate_pod_resource_name, validate_resource_requirements,
    validate_windows_security_context_options,
};
use super::pod_volume::{default_volume, validate_volumes};
use crate::field::{ErrorList, FieldError, Path};
use crate::validation::{
    LabelSelectorValidationOptions, QuantityFormat, STRICT_IP_CIDR_VALIDATION, bad_value,
    get_warnings_for_ip, inclusive_range_error, is_dns1123_subdomain_with_underscore,
    is_huge_page_resource_name, is_overcommit_allowed, is_valid_group_id, is_valid_ip_for_legacy_field,
    is_valid_label_value, is_valid_user_id, name_errors, name_is_dns_label, name_is_dns_subdomain,
    parse_quantity, set_defaults_resource_list, validate_annotations, validate_dns1123_label,
    validate_dns1123_subdomain, validate_label_name, validate_label_selector, validate_labels,
    validate_namespace_name, validate_positive_field, validate_qualified_name, validate_service_account_name,
};

/// The annotation kubelets set on mirror pods.
pub const MIRROR_POD_ANNOTATION_KEY: &str = "kubernetes.io/config.mirror";
/// The legacy tolerations annotation.
pub const TOLERATIONS_ANNOTATION_KEY: &str = "scheduler.alpha.kubernetes.io/tolerations";
/// The pod deletion cost annotation.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";
/// The legacy pod seccomp annotation.
pub const SECCOMP_POD_ANNOTATION_KEY: &str = "seccomp.security.alpha.kubernetes.io/pod";
/// The prefix of the legacy container seccomp annotations.
pub const SECCOMP_CONTAINER_ANNOTATION_KEY_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";
/// The prefix of the deprecated container AppArmor annotations.
pub const APPARMOR_ANNOTATION_KEY_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

// ---------------------------------------------------------------------------------------------
// Small helpers shared by the pod modules
// ---------------------------------------------------------------------------------------------

/// An optional string as Go's non-pointer string.
pub fn str_of(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or_default()
}

/// Go's `omitempty` on a string: an empty string is not encoded.
pub fn none_if_empty(value: &mut Option<String>) {
    if value.as_deref() == Some("") {
        *value = None;
    }
}

/// Go's `omitempty` on a bool: `false` is not encoded.
pub fn none_if_false(value: &mut Option<bool>) {
    if *value == Some(false) {
        *value = None;
    }
}

/// Go's `omitempty` on an integer: `0` is not encoded.
pub fn none_if_zero(value: &mut Option<i32>) {
    if *value == Some(0) {
        *value = None;
    }
}

/// Go's `omitempty` on a slice: an empty slice is not encoded.
pub fn is_empty_opt<T>(value: &mut Option<Vec<T>>) {
    if value.as_ref().is_some_and(Vec::is_empty) {
        *value = None;
    }
}

fn none_if_empty_map<K, V>(value: &mut Option<BTreeMap<K, V>>) {
    if value.as_ref().is_some_and(BTreeMap::is_empty) {
        *value = None;
    }
}

/// `path` under an optional prefix (upstream calls `Child` on a nil path for pods).
fn under(prefix: Option<&Path>, name: &str) -> Path {
    match prefix {
        Some(p) => p.child(name),
        None => Path::new(name),
    }
}

/// Upstream's `validatePathNoBacksteps`: no `..` element.
pub fn validate_path_no_backsteps(target: &str, path: &Path) -> ErrorList {
    if target.split('/').any(|part| part == "..") {
        return vec![FieldError::invalid(path, target, "must not contain '..'")];
    }
    Vec::new()
}

/// Upstream's `validateLocalDescendingPath`: relative, no `..` element.
pub fn validate_local_descending_path(target: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    errs.extend(validate_path_no_backsteps(target, path));
    errs
}

/// Upstream's `ValidateLocalNonReservedPath`: also not starting with `..`.
pub fn validate_local_non_reserved_path(target: &str, path: &Path) -> ErrorList {
    let mut errs = validate_local_descending_path(target, path);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(path, target, "must not start with '..'"));
    }
    errs
}

/// Upstream's `validateSeccompProfileField`.
pub fn validate_seccomp_profile_field(profile: Option<&SeccompProfile>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(profile) = profile else {
        return errs;
    };
    match profile.type_.as_str() {
        "Localhost" | "RuntimeDefault" | "Unconfined" => {}
        "" => errs.push(FieldError::required(
            &path.child("type"),
            "type is required when seccompProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    if profile.type_ == "Localhost" {
        match &profile.localhost_profile {
            None => errs.push(FieldError::required(
                &path.child("localhostProfile"),
                "must be set when seccomp type is Localhost",
            )),
            Some(local) => errs.extend(validate_local_descending_path(
                local,
                &path.child("localhostProfile"),
            )),
        }
    } else if profile.localhost_profile.is_some() {
        errs.push(FieldError::invalid(
            &path.child("localhostProfile"),
            bad_struct("Profile", profile),
            "can only be set when seccomp type is Localhost",
        ));
    }
    errs
}

/// Upstream's `ValidateAppArmorProfileField`.
pub fn validate_apparmor_profile_field(profile: Option<&AppArmorProfile>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(profile) = profile else {
        return errs;
    };
    match profile.type_.as_str() {
        "Localhost" => match &profile.localhost_profile {
            None => errs.push(FieldError::required(
                &path.child("localhostProfile"),
                "must be set when AppArmor type is Localhost",
            )),
            Some(local) => {
                if local.trim() != local {
                    errs.push(FieldError::invalid(
                        &path.child("localhostProfile"),
                        local.as_str(),
                        "must not be padded with whitespace",
                    ));
                } else if local.is_empty() {
                    errs.push(FieldError::required(
                        &path.child("localhostProfile"),
                        "must be set when AppArmor type is Localhost",
                    ));
                }
                if local.len() > 4095 {
                    errs.push(FieldError::too_long(&path.child("localhostProfile"), 4095));
                }
            }
        },
        "RuntimeDefault" | "Unconfined" => {
            if let Some(local) = &profile.localhost_profile {
                errs.push(FieldError::invalid(
                    &path.child("localhostProfile"),
                    local.as_str(),
                    "can only be set when AppArmor type is Localhost",
                ));
            }
        }
        "" => errs.push(FieldError::required(
            &path.child("type"),
            "type is required when appArmorProfile is set",
        )),
        other => errs.push(FieldError::not_supported(
            &path.child("type"),
            other,
            &["Localhost", "RuntimeDefault", "Unconfined"],
        )),
    }
    errs
}

/// Every container of a spec with its path, in upstream's `VisitContainersWithPath` order
/// (init, regular, ephemeral).
pub fn visit_containers(spec: &PodSpec, spec_path: &Path) -> Vec<(Container, Path)> {
    let mut out = Vec::new();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        out.push((c.clone(), spec_path.child("initContainers").index(i)));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        out.push((c.clone(), spec_path.child("containers").index(i)));
    }
    for (i, c) in spec.ephemeral_containers.iter().flatten().enumerate() {
        out.push((
            super::pod_container::ephemeral_as_container(c),
            spec_path.child("ephemeralContainers").index(i),
        ));
    }
    out
}

fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
}

// ---------------------------------------------------------------------------------------------
// Validation options
// ---------------------------------------------------------------------------------------------

/// Upstream's `PodValidationOptions`: relaxations that depend on feature gates (fixed at their
/// 1.35 defaults) and on what an old object already uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodValidationOptions {
    /// Accept an invalid pod deletion cost annotation.
    pub allow_invalid_pod_deletion_cost: bool,
    /// Accept invalid label values in pod affinity selectors.
    pub allow_invalid_label_value_in_selector: bool,
    /// Accept hugepage quantities that are not a multiple of the page size.
    pub allow_indivisible_huge_pages_values: bool,
    /// Accept invalid topology spread label selectors.
    pub allow_invalid_topology_spread_constraint_label_selector: bool,
    /// Accept non-local projected token paths.
    pub allow_non_local_projected_token_path: bool,
    /// Accept namespaced sysctls with host network or IPC.
    pub allow_namespaced_sysctls_for_host_net_and_host_ipc: bool,
    /// The object is a Pod (not a template).
    pub resource_is_pod: bool,
    /// Relaxed environment variable names.
    pub allow_relaxed_environment_variable_validation: bool,
    /// Relaxed DNS search domains.
    pub allow_relaxed_dns_search_validation: bool,
    /// A zero sleep in lifecycle handlers.
    pub allow_pod_lifecycle_sleep_action_zero_value: bool,
    /// Only the `Recursive` SELinux change policy.
    pub allow_only_recursive_selinux_change_policy: bool,
    /// Pod-level resources are validated.
    pub pod_level_resources_enabled: bool,
    /// Resize policies on sidecars.
    pub allow_sidecar_resize_policy: bool,
    /// Invalid label values in required node affinity.
    pub allow_invalid_label_value_in_required_node_affinity: bool,
    /// The old pod fails the current matchLabelKeys validation (use the legacy one).
    pub old_pod_violates_match_label_keys_validation: bool,
    /// `fileKeyRef` environment variables.
    pub allow_env_files_validation: bool,
    /// Container restart policies and rules.
    pub allow_container_restart_policy_rules: bool,
    /// User namespaces with volume devices.
    pub allow_user_namespaces_with_volume_devices: bool,
    /// `Lt`/`Gt` toleration operators.
    pub allow_taint_toleration_comparison_operators: bool,
    /// User namespaces with host network.
    pub allow_user_namespaces_host_network_support: bool,
    /// The `RestartAllContainers` restart rule action.
    pub allow_restart_all_containers: bool,
}

impl Default for PodValidationOptions {
    fn default() -> Self {
        PodValidationOptions {
            allow_invalid_pod_deletion_cost: false,
            allow_invalid_label_value_in_selector: false,
            allow_indivisible_huge_pages_values: false,
            allow_invalid_topology_spread_constraint_label_selector: false,
            allow_non_local_projected_token_path: false,
            allow_namespaced_sysctls_for_host_net_and_host_ipc: false,
            resource_is_pod: false,
            allow_relaxed_environment_variable_validation: true,
            allow_relaxed_dns_search_validation: true,
            allow_pod_lifecycle_sleep_action_zero_value: true,
            allow_only_recursive_selinux_change_policy: true,
            pod_level_resources_enabled: true,
            allow_sidecar_resize_policy: true,
            allow_invalid_label_value_in_required_node_affinity: false,
            old_pod_violates_match_label_keys_validation: false,
            allow_env_files_validation: true,
            allow_container_restart_policy_rules: true,
            allow_user_namespaces_with_volume_devices: false,
            allow_taint_toleration_comparison_operators: false,
            allow_user_namespaces_host_network_support: false,
            allow_restart_all_containers: false,
        }
    }
}

impl PodValidationOptions {
    /// Upstream's `GetValidationOptionsFromPodSpecAndMeta` (without `resource_is_pod`).
    pub fn for_pod_spec(old: Option<&PodSpec>, old_meta: Option<&ObjectMeta>) -> Self {
        let mut opts = PodValidationOptions::default();
        if let Some(old) = old {
            opts.allow_only_recursive_selinux_change_policy = old
                .security_context
                .as_ref()
                .is_none_or(|sc| sc.se_linux_change_policy.is_none());
            opts.allow_taint_toleration_comparison_operators = old
                .tolerations
                .iter()
                .flatten()
                .any(|t| matches!(str_of(&t.operator), "Lt" | "Gt"));
            opts.allow_indivisible_huge_pages_values = uses_indivisible_huge_pages(old);
            opts.allow_invalid_label_value_in_selector = has_invalid_label_value_in_affinity_selector(old);
            opts.allow_invalid_label_value_in_required_node_affinity =
                has_invalid_label_value_in_required_node_affinity(old);
            opts.allow_invalid_topology_spread_constraint_label_selector =
                old.topology_spread_constraints.iter().flatten().any(|c| {
                    !validate_label_selector(
                        c.label_selector.as_ref(),
                        LabelSelectorValidationOptions::default(),
                        &Path::root(),
                    )
                    .is_empty()
                });
            opts.old_pod_violates_match_label_keys_validation =
                old.topology_spread_constraints.iter().flatten().any(|c| {
                    !validate_match_label_keys_and_mismatch_label_keys(
                        &Path::root(),
                        c.match_label_keys.as_deref().unwrap_or_default(),
                        &[],
                        c.label_selector.as_ref(),
                    )
                    .is_empty()
                });
            opts.allow_non_local_projected_token_path = old
                .volumes
                .iter()
                .flatten()
                .filter_map(|v| v.projected.as_ref())
                .flat_map(|p| p.sources.iter().flatten())
                .filter_map(|s| s.service_account_token.as_ref())
                .any(|t| !validate_local_non_reserved_path(&t.path, &Path::root()).is_empty());
            opts.allow_namespaced_sysctls_for_host_net_and_host_ipc = old
                .security_context
                .iter()
                .flat_map(|sc| sc.sysctls.iter().flatten())
                .any(|s| host_sysctl_error(&s.name, old, &Path::root()).is_some());
            opts.allow_restart_all_containers = all_containers(old).any(|c| {
                c.restart_policy_rules
                    .iter()
                    .flatten()
                    .any(|r| r.action == "RestartAllContainers")
            }) || old.init_containers.iter().flatten().any(|c| {
                is_restartable_init_container(c)
                    && c.restart_policy_rules.as_ref().is_some_and(|r| !r.is_empty())
            });
            opts.allow_user_namespaces_with_volume_devices = old.host_users == Some(false)
                && all_containers(old).any(|c| c.volume_devices.as_ref().is_some_and(|d| !d.is_empty()));
            opts.allow_user_namespaces_host_network_support =
                old.host_users == Some(false) && old.host_network == Some(true);
        }
        if let Some(old_meta) = old_meta {
            opts.allow_invalid_pod_deletion_cost = deletion_cost(old_meta.annotations.as_ref()).is_err();
        }
        opts
    }

    /// Upstream's `GetValidationOptionsFromPodTemplate`.
    pub fn for_template(old: Option<&PodTemplateSpec>) -> Self {
        PodValidationOptions::for_pod_spec(
            old.and_then(|t| t.spec.as_ref()),
            old.and_then(|t| t.metadata.as_ref()),
        )
    }
}

fn uses_indivisible_huge_pages(spec: &PodSpec) -> bool {
    let check = |r: &ResourceRequirements| {
        r.limits
            .iter()
            .chain(r.requests.iter())
            .flatten()
            .any(|(name, q)| {
                is_huge_page_resource_name(name)
                    && !validate_resource_requirements(
                        &ResourceRequirements {
                            limits: Some(BTreeMap::from([(name.clone(), q.clone())])),
                            ..Default::default()
                        },
                        |_, _| Vec::new(),
                        &BTreeSet::new(),
                        &Path::root(),
                        &PodValidationOptions::default(),
                    )
                    .iter()
                    .any(|e| e.detail.contains("is not positive integer multiple of"))
            })
    };
    all_containers(spec).any(|c| c.resources.as_ref().is_some_and(check))
        || spec.resources.as_ref().is_some_and(check)
}

fn has_invalid_label_value_in_affinity_selector(spec: &PodSpec) -> bool {
    let Some(affinity) = &spec.affinity else {
        return false;
    };
    let terms: Vec<&PodAffinityTerm> = [
        affinity.pod_affinity.as_ref().map(|a| {
            (
                &a.required_during_scheduling_ignored_during_execution,
                &a.preferred_during_scheduling_ignored_during_execution,
            )
        }),
        affinity.pod_anti_affinity.as_ref().map(|a| {
            (
                &a.required_during_scheduling_ignored_during_execution,
                &a.preferred_during_scheduling_ignored_during_execution,
            )
        }),
    ]
    .into_iter()
    .flatten()
    .flat_map(|(required, preferred)| {
        required
            .iter()
            .flatten()
            .chain(preferred.iter().flatten().map(|w| &w.pod_affinity_term))
    })
    .collect();
    terms
        .into_iter()
        .any(|t| !validate_pod_affinity_term_selector(t, false, &Path::root()).is_empty())
}

fn has_invalid_label_value_in_required_node_affinity(spec: &PodSpec) -> bool {
    spec.affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref())
        .is_some_and(|s| {
            s.node_selector_terms
                .iter()
                .flat_map(|t| t.match_expressions.iter().flatten())
                .flat_map(|e| e.values.iter().flatten())
                .any(|v| !is_valid_label_value(v).is_empty())
        })
}

fn deletion_cost(annotations: Option<&BTreeMap<String, String>>) -> Result<i32, ()> {
    let Some(value) = annotations.and_then(|a| a.get(POD_DELETION_COST)) else {
        return Ok(0);
    };
    let first_ok = match value.as_bytes().first() {
        Some(b'-') => true,
        Some(b'0') => value == "0",
        Some(b'1'..=b'9') => true,
        _ => false,
    };
    if !first_ok {
        return Err(());
    }
    value.parse::<i32>().map_err(|_| ())
}

// ---------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------

/// The annotations upstream drops from pods and pod templates on conversion.
const INIT_CONTAINER_ANNOTATIONS: &[&str] = &[
    "pod.beta.kubernetes.io/init-containers",
    "pod.alpha.kubernetes.io/init-containers",
    "pod.beta.kubernetes.io/init-container-statuses",
    "pod.alpha.kubernetes.io/init-container-statuses",
];

/// Upstream's `dropInitContainerAnnotations` (applied on every conversion of a pod or a
/// pod template).
pub fn drop_init_container_annotations(meta: &mut ObjectMeta) {
    if let Some(annotations) = &mut meta.annotations {
        for key in INIT_CONTAINER_ANNOTATIONS {
            annotations.remove(*key);
        }
    }
}

/// Scheme defaults of a pod spec, as `SetObjectDefaults_*` applies them to every embedded
/// spec: `SetDefaults_PodSpec` (dnsPolicy `ClusterFirst`, restartPolicy `Always`,
/// `securityContext: {}`, terminationGracePeriodSeconds 30, schedulerName
/// `default-scheduler`), then the defaults of volumes, init, regular and ephemeral containers
/// and resource lists. Also applies the v1 → internal → v1 round trip of upstream's storage
/// (`serviceAccount` mirrors `serviceAccountName`, empty optional fields are dropped).
/// `SetDefaults_Pod` (pod-only defaults) is applied by the Pod kind on top.
pub fn default_pod_spec(spec: &mut PodSpec) {
    normalize_pod_spec(spec);
    if str_of(&spec.dns_policy).is_empty() {
        spec.dns_policy = Some("ClusterFirst".to_owned());
    }
    if str_of(&spec.restart_policy).is_empty() {
        spec.restart_policy = Some("Always".to_owned());
    }
    spec.security_context.get_or_insert_with(Default::default);
    spec.termination_grace_period_seconds.get_or_insert(30);
    if str_of(&spec.scheduler_name).is_empty() {
        spec.scheduler_name = Some("default-scheduler".to_owned());
    }
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        default_container(c);
    }
    for c in &mut spec.containers {
        default_container(c);
    }
    for e in spec.ephemeral_containers.iter_mut().flatten() {
        default_ephemeral_container(e);
    }
    set_defaults_resource_list(&mut spec.overhead);
    if let Some(resources) = &mut spec.resources {
        set_defaults_resource_list(&mut resources.limits);
        set_defaults_resource_list(&mut resources.requests);
    }
}

/// [`default_pod_spec`] of a template, plus what upstream always prints for it
/// (`metadata: {}`, a spec) and the init-container annotations it drops.
pub fn default_pod_template_spec(template: &mut PodTemplateSpec) {
    let meta = template.metadata.get_or_insert_with(Default::default);
    drop_init_container_annotations(meta);
    none_if_empty_map(&mut meta.labels);
    none_if_empty_map(&mut meta.annotations);
    default_pod_spec(template.spec.get_or_insert_with(Default::default));
}

fn normalize_pod_spec(spec: &mut PodSpec) {
    if str_of(&spec.service_account_name).is_empty() {
        spec.service_account_name = spec.service_account.clone();
    }
    none_if_empty(&mut spec.service_account_name);
    spec.service_account = spec.service_account_name.clone();
    for s in [
        &mut spec.dns_policy,
        &mut spec.restart_policy,
        &mut spec.node_name,
        &mut spec.hostname,
        &mut spec.subdomain,
        &mut spec.scheduler_name,
        &mut spec.priority_class_name,
    ] {
        none_if_empty(s);
    }
    for b in [&mut spec.host_network, &mut spec.host_pid, &mut spec.host_ipc] {
        none_if_false(b);
    }
    is_empty_opt(&mut spec.volumes);
    is_empty_opt(&mut spec.init_containers);
    is_empty_opt(&mut spec.ephemeral_containers);
    is_empty_opt(&mut spec.image_pull_secrets);
    is_empty_opt(&mut spec.tolerations);
    is_empty_opt(&mut spec.host_aliases);
    is_empty_opt(&mut spec.readiness_gates);
    is_empty_opt(&mut spec.topology_spread_constraints);
    is_empty_opt(&mut spec.scheduling_gates);
    is_empty_opt(&mut spec.resource_claims);
    none_if_empty_map(&mut spec.node_selector);
    none_if_empty_map(&mut spec.overhead);
    for t in spec.tolerations.iter_mut().flatten() {
        for s in [&mut t.key, &mut t.operator, &mut t.value, &mut t.effect] {
            none_if_empty(s);
        }
    }
    if let Some(resources) = &mut spec.resources {
        normalize_resources(resources);
    }
    if let Some(sc) = &mut spec.security_context {
        is_empty_opt(&mut sc.supplemental_groups);
        is_empty_opt(&mut sc.sysctls);
    }
}

/// Pod-level resource defaulting (`defaultHugePagePodLimits`, `defaultPodRequests`), part of
/// `SetDefaults_Pod` with pod-level resources on.
pub fn default_pod_level_resources(spec: &mut PodSpec) {
    let aggregated_limits = aggregate_container_resources(spec, |r| r.limits.as_ref());
    let aggregated_requests = aggregate_container_resources(spec, |r| r.requests.as_ref());
    let Some(resources) = &mut spec.resources else {
        return;
    };
    let has_limits = resources.limits.as_ref().is_some_and(|l| !l.is_empty());
    let has_requests = resources.requests.as_ref().is_some_and(|r| !r.is_empty());
    if has_limits || has_requests {
        let mut limits = resources.limits.clone().unwrap_or_default();
        for (name, agg) in &aggregated_limits {
            if !is_supported_pod_level(name) || !is_huge_page_resource_name(name) {
                continue;
            }
            if resources.requests.as_ref().is_some_and(|r| r.contains_key(name)) {
                continue;
            }
            limits
                .entry(name.clone())
                .or_insert_with(|| k8s_openapi::apimachinery::pkg::api::resource::Quantity(agg.to_string()));
        }
        if !limits.is_empty() {
            resources.limits = Some(limits);
        }
    }
    let Some(limits) = resources.limits.clone().filter(|l| !l.is_empty()) else {
        return;
    };
    let mut requests = resources.requests.clone().unwrap_or_default();
    for (name, agg) in &aggregated_requests {
        if !requests.contains_key(name) && is_supported_pod_level(name) && is_overcommit_allowed(name) {
            requests.insert(
                name.clone(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity(agg.to_string()),
            );
        }
    }
    for (name, limit) in &limits {
        if !requests.contains_key(name) && is_supported_pod_level(name) {
            requests.insert(name.clone(), limit.clone());
        }
    }
    if !requests.is_empty() {
        resources.requests = Some(requests);
    }
}

fn is_supported_pod_level(name: &str) -> bool {
    super::pod_container::is_supported_pod_level_resource(name)
}

// ---------------------------------------------------------------------------------------------
// Quantity sums (QoS and pod-level resources)
// ---------------------------------------------------------------------------------------------

/// A sum of quantities in milli units, printed in the format of the quantity it started from,
/// as upstream's `Quantity.Add` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MilliSum {
    /// The value in milli units.
    pub milli: i128,
    /// Whether it prints with binary suffixes.
    pub binary: bool,
}

impl MilliSum {
    fn of(q: &k8s_openapi::apimachinery::pkg::api::resource::Quantity) -> Option<MilliSum> {
        let parsed = parse_quantity(q.0.trim()).ok()?;
        Some(MilliSum {
            milli: i128::from(parsed.milli_value()),
            binary: parsed.format() == QuantityFormat::BinarySI,
        })
    }
}

impl std::fmt::Display for MilliSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = if self.milli % 1000 != 0 {
            format!("{}m", self.milli)
        } else {
            let value = self.milli / 1000;
            if self.binary && value != 0 && value % 1024 == 0 {
                format!("{}Ki", value / 1024)
            } else {
                value.to_string()
            }
        };
        let canonical = parse_quantity(&text).map(|q| q.canonical()).unwrap_or(text);
        f.write_str(&canonical)
    }
}

fn add_list(list: &mut BTreeMap<String, MilliSum>, new: &BTreeMap<String, MilliSum>) {
    for (name, q) in new {
        list.entry(name.clone())
            .and_modify(|v| v.milli += q.milli)
            .or_insert(*q);
    }
}

fn max_list(list: &mut BTreeMap<String, MilliSum>, new: &BTreeMap<String, MilliSum>) {
    for (name, q) in new {
        match list.get(name) {
            Some(v) if q.milli <= v.milli => {}
            _ => {
                list.insert(name.clone(), *q);
            }
        }
    }
}

fn sums(
    list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> BTreeMap<String, MilliSum> {
    list.into_iter()
        .flatten()
        .filter_map(|(k, v)| MilliSum::of(v).map(|s| (k.clone(), s)))
        .collect()
}

/// Upstream's `AggregateContainerRequests` / `AggregateContainerLimits`: regular containers
/// and sidecars summed, then the maximum with each init container's use.
pub fn aggregate_container_resources(
    spec: &PodSpec,
    pick: fn(
        &ResourceRequirements,
    ) -> Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> BTreeMap<String, MilliSum> {
    let of = |c: &Container| sums(c.resources.as_ref().and_then(pick));
    let mut total = BTreeMap::new();
    for c in &spec.containers {
        add_list(&mut total, &of(c));
    }
    let mut restartable = BTreeMap::new();
    let mut init = BTreeMap::new();
    for c in spec.init_containers.iter().flatten() {
        let own = of(c);
        let use_now = if is_restartable_init_container(c) {
            add_list(&mut total, &own);
            add_list(&mut restartable, &own);
            restartable.clone()
        } else {
            let mut tmp = own;
            add_list(&mut tmp, &restartable);
            tmp
        };
        max_list(&mut init, &use_now);
    }
    max_list(&mut total, &init);
    total
}

// ---------------------------------------------------------------------------------------------
// QoS
// ---------------------------------------------------------------------------------------------

/// Upstream's `ComputePodQOS`: `BestEffort` without cpu/memory requests or limits,
/// `Guaranteed` when every container (or the pod level) limits cpu and memory and requests
/// equal limits, else `Burstable`.
pub fn compute_pod_qos(spec: &PodSpec) -> &'static str {
    let qos = |name: &str| name == "cpu" || name == "memory";
    let positive = |list: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >|
     -> BTreeMap<String, i128> {
        sums(list)
            .into_iter()
            .filter(|(k, v)| qos(k) && v.milli > 0)
            .map(|(k, v)| (k, v.milli))
            .collect()
    };
    let mut requests: BTreeMap<String, i128> = BTreeMap::new();
    let mut limits: BTreeMap<String, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let add = |into: &mut BTreeMap<String, i128>, from: BTreeMap<String, i128>| {
        for (k, v) in from {
            *into.entry(k).or_insert(0) += v;
        }
    };
    if let Some(resources) = &spec.resources {
        if resources.requests.as_ref().is_some_and(|r| !r.is_empty()) {
            add(&mut requests, positive(resources.requests.as_ref()));
        }
        if resources.limits.as_ref().is_some_and(|l| !l.is_empty()) {
            let found = positive(resources.limits.as_ref());
            if !(found.contains_key("cpu") && found.contains_key("memory")) {
                guaranteed = false;
            }
            add(&mut limits, found);
        }
    } else {
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let r = c.resources.as_ref();
            add(&mut requests, positive(r.and_then(|r| r.requests.as_ref())));
            let found = positive(r.and_then(|r| r.limits.as_ref()));
            if !(found.contains_key("cpu") && found.contains_key("memory")) {
                guaranteed = false;
            }
            add(&mut limits, found);
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests.iter().any(|(k, v)| limits.get(k) != Some(v)) {
        guaranteed = false;
    }
    if guaranteed && requests.len() == limits.len() {
        return "Guaranteed";
    }
    "Burstable"
}

// ---------------------------------------------------------------------------------------------
// Fields of disabled features (pkg/api/pod DropDisabledPodFields, 1.35 defaults)
// ---------------------------------------------------------------------------------------------

/// Upstream's `dropDisabledFields` with 1.35's default feature gates: cluster trust bundle and
/// pod certificate projections, `workloadRef` and container stop signals are dropped unless
/// the old spec already uses them.
pub fn drop_disabled_pod_spec_fields(spec: &mut PodSpec, old: Option<&PodSpec>) {
    let projections = |s: &PodSpec| {
        s.volumes
            .iter()
            .flatten()
            .filter_map(|v| v.projected.as_ref())
            .flat_map(|p| p.sources.iter().flatten())
            .map(|src| (src.cluster_trust_bundle.is_some(), src.pod_certificate.is_some()))
            .fold((false, false), |acc, x| (acc.0 || x.0, acc.1 || x.1))
    };
    let (old_ctb, old_cert) = old.map(projections).unwrap_or_default();
    for source in spec
        .volumes
        .iter_mut()
        .flatten()
        .filter_map(|v| v.projected.as_mut())
        .flat_map(|p| p.sources.iter_mut().flatten())
    {
        if !old_ctb {
            source.cluster_trust_bundle = None;
        }
        if !old_cert {
            source.pod_certificate = None;
        }
    }
    if old.is_none_or(|o| o.workload_ref.is_none()) {
        spec.workload_ref = None;
    }
    let stop_signals_in_use = old.is_some_and(|o| {
        all_containers(o)
            .chain(std::iter::empty())
            .any(|c| c.lifecycle.as_ref().is_some_and(|l| l.stop_signal.is_some()))
            || o.ephemeral_containers
                .iter()
                .flatten()
                .any(|c| c.lifecycle.as_ref().is_some_and(|l| l.stop_signal.is_some()))
    });
    if !stop_signals_in_use {
        let wipe = |lifecycle: &mut Option<k8s_openapi::api::core::v1::Lifecycle>| {
            if let Some(l) = lifecycle
                && l.stop_signal.take().is_some()
                && l.post_start.is_none()
                && l.pre_stop.is_none()
            {
                *lifecycle = None;
            }
        };
        for c in spec.init_containers.iter_mut().flatten() {
            wipe(&mut c.lifecycle);
        }
        for c in &mut spec.containers {
            wipe(&mut c.lifecycle);
        }
        for c in spec.ephemeral_containers.iter_mut().flatten() {
            wipe(&mut c.lifecycle);
        }
    }
}

/// Upstream's `DropDisabledTemplateFields`.
pub fn drop_disabled_template_fields(template: &mut PodTemplateSpec, old: Option<&PodTemplateSpec>) {
    if let Some(spec) = &mut template.spec {
        drop_disabled_pod_spec_fields(spec, old.and_then(|o| o.spec.as_ref()));
    }
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// The internal pod security context: v1 keeps the host namespace switches on the spec.
fn effective_security_context(spec: &PodSpec) -> PodSecurityContext {
    spec.security_context.clone().unwrap_or_default()
}

/// Upstream's `ValidatePodSpec`. `meta` is the pod's metadata (for generic ephemeral volume
/// claim names and static pods); templates pass an empty one, as upstream passes nil.
pub fn validate_pod_spec(
    spec: &PodSpec,
    meta: &ObjectMeta,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if spec.termination_grace_period_seconds.is_none() {
        errs.push(FieldError::required(
            &path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let grace = spec.termination_grace_period_seconds;
    let host_users = spec.host_users.unwrap_or(true);
    let (volumes, volume_errs) = validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        Some(meta),
        &path.child("volumes"),
        opts,
    );
    errs.extend(volume_errs);
    let claims = spec.resource_claims.as_deref().unwrap_or_default();
    let claim_names: BTreeSet<String> = claims
        .iter()
        .filter(|c| !c.name.is_empty())
        .map(|c| c.name.clone())
        .collect();
    errs.extend(validate_pod_resource_claims(
        meta,
        spec,
        &path.child("resourceClaims"),
    ));
    let restart_policy = str_of(&spec.restart_policy);
    let os = spec.os.as_ref().map(|o| o.name.as_str());
    let init = spec.init_containers.as_deref().unwrap_or_default();
    errs.extend(validate_containers(
        &spec.containers,
        os,
        &volumes,
        &claim_names,
        grace,
        &path.child("containers"),
        opts,
        restart_policy,
        host_users,
    ));
    errs.extend(validate_init_containers(
        init,
        os,
        &spec.containers,
        &volumes,
        &claim_names,
        grace,
        &path.child("initContainers"),
        opts,
        restart_policy,
        host_users,
    ));
    errs.extend(validate_ephemeral_containers(
        spec.ephemeral_containers.as_deref().unwrap_or_default(),
        &spec.containers,
        init,
        &volumes,
        &claim_names,
        &path.child("ephemeralContainers"),
        opts,
        restart_policy,
        host_users,
    ));
    if opts.pod_level_resources_enabled {
        errs.extend(validate_pod_resources(spec, &claim_names, path, opts));
    }
    errs.extend(validate_pod_host_network_deps(spec, path, opts));
    errs.extend(validate_restart_policy(
        restart_policy,
        &path.child("restartPolicy"),
    ));
    errs.extend(validate_dns_policy(
        str_of(&spec.dns_policy),
        &path.child("dnsPolicy"),
    ));
    errs.extend(validate_labels(
        spec.node_selector.as_ref(),
        &path.child("nodeSelector"),
    ));
    errs.extend(validate_pod_spec_security_context(
        spec,
        &path.child("securityContext"),
        opts,
    ));
    if let Some(affinity) = &spec.affinity {
        errs.extend(validate_affinity(affinity, opts, &path.child("affinity")));
    }
    errs.extend(validate_pod_dns_config(spec, &path.child("dnsConfig"), opts));
    for (i, gate) in spec.readiness_gates.iter().flatten().enumerate() {
        errs.extend(validate_qualified_name(
            &gate.condition_type,
            &path.child("readinessGates").index(i).child("conditionType"),
        ));
    }
    let mut seen_gates = BTreeSet::new();
    for (i, gate) in spec.scheduling_gates.iter().flatten().enumerate() {
        let p = path.child("schedulingGates").index(i);
        errs.extend(validate_qualified_name(&gate.name, &p));
        if !seen_gates.insert(gate.name.as_str()) {
            errs.push(FieldError::duplicate(&p, gate.name.as_str()));
        }
    }
    errs.extend(validate_topology_spread_constraints(
        spec.topology_spread_constraints.as_deref().unwrap_or_default(),
        &path.child("topologySpreadConstraints"),
        opts,
    ));
    errs.extend(validate_windows_host_process_pod(spec, path));
    errs.extend(validate_host_users(spec, path, opts));
    errs.extend(validate_pod_hostname_override(spec, path));
    let service_account = str_of(&spec.service_account_name);
    if !service_account.is_empty() {
        errs.extend(name_errors(
            &path.child("serviceAccountName"),
            service_account,
            validate_service_account_name(service_account, false),
        ));
    }
    let node_name = str_of(&spec.node_name);
    if !node_name.is_empty() {
        errs.extend(name_errors(
            &path.child("nodeName"),
            node_name,
            name_is_dns_subdomain(node_name, false),
        ));
    }
    if let Some(deadline) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&deadline)
    {
        errs.push(FieldError::invalid(
            &path.child("activeDeadlineSeconds"),
            deadline,
            inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    let hostname = str_of(&spec.hostname);
    if !hostname.is_empty() {
        errs.extend(validate_dns1123_label(hostname, &path.child("hostname")));
    }
    let subdomain = str_of(&spec.subdomain);
    if !subdomain.is_empty() {
        errs.extend(validate_dns1123_label(subdomain, &path.child("subdomain")));
    }
    if let Some(tolerations) = spec.tolerations.as_deref().filter(|t| !t.is_empty()) {
        errs.extend(validate_tolerations(
            tolerations,
            &path.child("tolerations"),
            opts,
        ));
    }
    for (i, alias) in spec.host_aliases.iter().flatten().enumerate() {
        let p = path.child("hostAliases").index(i);
        errs.extend(is_valid_ip_for_legacy_field(
            &p.child("ip"),
            &alias.ip,
            STRICT_IP_CIDR_VALIDATION,
            &[],
        ));
        for (j, hostname) in alias.hostnames.iter().flatten().enumerate() {
            errs.extend(validate_dns1123_subdomain(
                hostname,
                &p.child("hostnames").index(j),
            ));
        }
    }
    let priority_class = str_of(&spec.priority_class_name);
    if !priority_class.is_empty() {
        errs.extend(name_errors(
            &path.child("priorityClassName"),
            priority_class,
            name_is_dns_subdomain(priority_class, false),
        ));
    }
    if let Some(runtime_class) = &spec.runtime_class_name {
        errs.extend(name_errors(
            &path.child("runtimeClassName"),
            runtime_class,
            name_is_dns_subdomain(runtime_class, false),
        ));
    }
    if let Some(policy) = &spec.preemption_policy {
        let p = path.child("preemptionPolicy");
        match policy.as_str() {
            "PreemptLowerPriority" | "Never" => {}
            "" => errs.push(FieldError::required(&p, "")),
            other => errs.push(FieldError::not_supported(
                &p,
                other,
                &["PreemptLowerPriority", "Never"],
            )),
        }
    }
    if let Some(overhead) = &spec.overhead {
        errs.extend(super::pod_container::validate_container_resource_requirements(
            &ResourceRequirements {
                limits: Some(overhead.clone()),
                ..Default::default()
            },
            &BTreeSet::new(),
            &path.child("overhead"),
            opts,
        ));
    }
    if let Some(os) = &spec.os {
        let os_path = path.child("os");
        if os.name.is_empty() {
            errs.push(FieldError::required(&os_path.child("name"), ""));
        } else if os.name != "linux" && os.name != "windows" {
            errs.push(FieldError::not_supported(
                &os_path,
                os.name.as_str(),
                &["linux", "windows"],
            ));
        } else if os.name == "linux" {
            errs.extend(validate_linux(spec, path));
        } else {
            errs.extend(validate_windows(spec, path));
        }
    }
    if let Some(workload) = &spec.workload_ref {
        let p = path.child("workloadRef");
        errs.extend(name_errors(
            &p.child("name"),
            &workload.name,
            name_is_dns_subdomain(&workload.name, false),
        ));
        errs.extend(name_errors(
            &p.child("podGroup"),
            &workload.pod_group,
            name_is_dns_label(&workload.pod_group, false),
        ));
        let key = str_of(&workload.pod_group_replica_key);
        if !key.is_empty() {
            errs.extend(name_errors(
                &p.child("podGroupReplicaKey"),
                key,
                name_is_dns_label(key, false),
            ));
        }
    }
    errs.extend(validate_file_key_ref_volumes(spec, path));
    errs
}

fn validate_restart_policy(policy: &str, path: &Path) -> ErrorList {
    match policy {
        "Always" | "OnFailure" | "Never" => Vec::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["Always", "OnFailure", "Never"],
        )],
    }
}

fn validate_dns_policy(policy: &str, path: &Path) -> ErrorList {
    match policy {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => Vec::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )],
    }
}

fn validate_pod_resource_claims(meta: &ObjectMeta, spec: &PodSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names = BTreeSet::new();
    let mirror = meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION_KEY));
    for (i, claim) in spec.resource_claims.iter().flatten().enumerate() {
        if mirror {
            errs.push(FieldError::forbidden(
                &Path::root(),
                "static pods do not support resource claims",
            ));
            continue;
        }
        let p = path.index(i);
        if claim.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else if names.contains(claim.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), claim.name.as_str()));
        } else {
            errs.extend(validate_dns1123_label(&claim.name, &p.child("name")));
            names.insert(claim.name.as_str());
        }
        match (&claim.resource_claim_name, &claim.resource_claim_template_name) {
            (Some(_), Some(_)) => errs.push(FieldError::invalid(
                &p,
                bad_struct("PodResourceClaim", claim),
                "at most one of `resourceClaimName` or `resourceClaimTemplateName` may be specified",
            )),
            (None, None) => errs.push(FieldError::invalid(
                &p,
                bad_struct("PodResourceClaim", claim),
                "must specify one of: `resourceClaimName`, `resourceClaimTemplateName`",
            )),
            _ => {}
        }
        if let Some(name) = &claim.resource_claim_name {
            errs.extend(name_errors(
                &p.child("resourceClaimName"),
                name,
                name_is_dns_subdomain(name, false),
            ));
        }
        if let Some(name) = &claim.resource_claim_template_name {
            errs.extend(name_errors(
                &p.child("resourceClaimTemplateName"),
                name,
                name_is_dns_subdomain(name, false),
            ));
        }
    }
    errs
}

fn validate_pod_resources(
    spec: &PodSpec,
    claim_names: &BTreeSet<String>,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let Some(resources) = &spec.resources else {
        return Vec::new();
    };
    let rp = path.child("resources");
    if spec.os.as_ref().is_some_and(|o| o.name == "windows") {
        return vec![FieldError::forbidden(&rp, "may not be set for a windows pod")];
    }
    let mut errs = ErrorList::new();
    if resources.claims.is_some() {
        errs.push(FieldError::forbidden(
            &rp.child("claims"),
            "claims may not be set for Resources at pod-level",
        ));
    }
    errs.extend(validate_resource_requirements(
        resources,
        validate_pod_resource_name,
        claim_names,
        &rp,
        opts,
    ));
    // validatePodResourceConsistency
    let pod_requests = sums(resources.requests.as_ref());
    let pod_limits = sums(resources.limits.as_ref());
    for (name, ctr) in aggregate_container_resources(spec, |r| r.requests.as_ref()) {
        if let Some(pod) = pod_requests.get(&name)
            && ctr.milli > pod.milli
        {
            errs.push(FieldError::invalid(
                &rp.child("requests").key(&name),
                pod.to_string(),
                format!("must be greater than or equal to aggregate container requests of {ctr}"),
            ));
        }
    }
    for (name, ctr) in aggregate_container_resources(spec, |r| r.limits.as_ref()) {
        if !is_huge_page_resource_name(&name) {
            continue;
        }
        if let Some(pod) = pod_limits.get(&name)
            && ctr.milli > pod.milli
        {
            errs.push(FieldError::invalid(
                &rp.child("limits").key(&name),
                pod.to_string(),
                format!("must be greater than or equal to aggregate container limits of {ctr}"),
            ));
        }
    }
    for (i, c) in spec.containers.iter().enumerate() {
        for (name, limit) in sums(c.resources.as_ref().and_then(|r| r.limits.as_ref())) {
            if let Some(pod) = pod_limits.get(&name)
                && limit.milli > pod.milli
            {
                errs.push(FieldError::invalid(
                    &rp.child("containers").index(i).key(&name).child("limits"),
                    limit.to_string(),
                    format!("must be less than or equal to pod limits of {pod}"),
                ));
            }
        }
    }
    errs
}

fn validate_pod_host_network_deps(spec: &PodSpec, path: &Path, opts: &PodValidationOptions) -> ErrorList {
    let mut errs = ErrorList::new();
    if spec.host_network != Some(true) {
        return errs;
    }
    let cp = path.child("containers");
    for (i, c) in spec.containers.iter().enumerate() {
        for (j, port) in c.ports.iter().flatten().enumerate() {
            let host_port = port.host_port.unwrap_or(0);
            if (opts.resource_is_pod || host_port != 0) && host_port != port.container_port {
                errs.push(FieldError::invalid(
                    &cp.index(i).child("ports").index(j).child("hostPort"),
                    host_port,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
    }
    errs
}

/// Whether a sysctl name matches upstream's `SysctlContainSlashFmt` (at most 253 bytes).
pub fn is_valid_sysctl_name(name: &str) -> bool {
    if name.len() > 253 {
        return false;
    }
    let segment_ok = |s: &str| {
        let b = s.as_bytes();
        !b.is_empty()
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && (b[b.len() - 1].is_ascii_lowercase() || b[b.len() - 1].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
    };
    name.split(['.', '/']).all(segment_ok)
}

/// `NormalizeName` of a sysctl: `net/ipv4/conf/eno2.100/rp_filter` ->
/// `net.ipv4.conf.eno2/100.rp_filter` (names whose first separator is a slash swap slashes and
/// dots).
pub fn normalize_sysctl_name(name: &str) -> String {
    match name.find(['.', '/']) {
        Some(i) if name.as_bytes()[i] == b'/' => name
            .chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect(),
        _ => name.to_owned(),
    }
}

/// `GetNamespace` of a sysctl: `Some("Net")`, `Some("IPC")`, or `None`.
pub fn sysctl_namespace(name: &str) -> Option<&'static str> {
    let mut normalized = normalize_sysctl_name(name);
    if let Some(i) = normalized.find('*') {
        normalized.truncate(i);
    }
    const IPC: &[&str] = &[
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
        "kernel.shm",
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.msg",
    ];
    if IPC.contains(&normalized.as_str()) {
        return Some("IPC");
    }
    if normalized.starts_with("net.") {
        return Some("Net");
    }
    if normalized.starts_with("fs.mqueue.") {
        return Some("IPC");
    }
    None
}

fn host_sysctl_error(name: &str, spec: &PodSpec, path: &Path) -> Option<FieldError> {
    match sysctl_namespace(name) {
        Some("Net") if spec.host_network == Some(true) => Some(FieldError::invalid(
            path,
            name,
            "may not be specified when 'hostNetwork' is true",
        )),
        Some("IPC") if spec.host_ipc == Some(true) => Some(FieldError::invalid(
            path,
            name,
            "may not be specified when 'hostIPC' is true",
        )),
        _ => None,
    }
}

fn validate_pod_spec_security_context(spec: &PodSpec, path: &Path, opts: &PodValidationOptions) -> ErrorList {
    let mut errs = ErrorList::new();
    let sc = effective_security_context(spec);
    if let Some(fs_group) = sc.fs_group {
        for msg in is_valid_group_id(fs_group) {
            errs.push(FieldError::invalid(&path.child("fsGroup"), fs_group, msg));
        }
    }
    if let Some(uid) = sc.run_as_user {
        for msg in is_valid_user_id(uid) {
            errs.push(FieldError::invalid(&path.child("runAsUser"), uid, msg));
        }
    }
    if let Some(gid) = sc.run_as_group {
        for msg in is_valid_group_id(gid) {
            errs.push(FieldError::invalid(&path.child("runAsGroup"), gid, msg));
        }
    }
    for (g, gid) in sc.supplemental_groups.iter().flatten().enumerate() {
        for msg in is_valid_group_id(*gid) {
            errs.push(FieldError::invalid(
                &path.child("supplementalGroups").index(g),
                *gid,
                msg,
            ));
        }
    }
    if spec.share_process_namespace == Some(true) && spec.host_pid == Some(true) {
        errs.push(FieldError::invalid(
            &path.child("shareProcessNamespace"),
            true,
            "ShareProcessNamespace and HostPID cannot both be enabled",
        ));
    }
    let sysctl_path = path.child("sysctls");
    let mut names = BTreeSet::new();
    for (i, s) in sc.sysctls.iter().flatten().enumerate() {
        let p = sysctl_path.index(i).child("name");
        if s.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else if !is_valid_sysctl_name(&s.name) {
            errs.push(FieldError::invalid(
                &p,
                s.name.as_str(),
                "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$",
            ));
        } else if names.contains(s.name.as_str()) {
            errs.push(FieldError::duplicate(&p, s.name.as_str()));
        }
        if !opts.allow_namespaced_sysctls_for_host_net_and_host_ipc
            && let Some(err) = host_sysctl_error(&s.name, spec, &p)
        {
            errs.push(err);
        }
        names.insert(s.name.as_str());
    }
    if let Some(policy) = &sc.fs_group_change_policy
        && policy != "OnRootMismatch"
        && policy != "Always"
    {
        errs.push(FieldError::not_supported(
            &path.child("fsGroupChangePolicy"),
            policy.as_str(),
            &["Always", "OnRootMismatch"],
        ));
    }
    errs.extend(validate_seccomp_profile_field(
        sc.seccomp_profile.as_ref(),
        &path.child("seccompProfile"),
    ));
    errs.extend(validate_windows_security_context_options(
        sc.windows_options.as_ref(),
        &path.child("windowsOptions"),
    ));
    errs.extend(validate_apparmor_profile_field(
        sc.app_armor_profile.as_ref(),
        &path.child("appArmorProfile"),
    ));
    if let Some(policy) = &sc.supplemental_groups_policy
        && policy != "Merge"
        && policy != "Strict"
    {
        errs.push(FieldError::not_supported(
            &path.child("supplementalGroupsPolicy"),
            policy.as_str(),
            &["Merge", "Strict"],
        ));
    }
    if let Some(policy) = &sc.se_linux_change_policy {
        let p = path.child("seLinuxChangePolicy");
        if opts.allow_only_recursive_selinux_change_policy {
            if policy != "Recursive" {
                errs.push(FieldError::not_supported(&p, policy.as_str(), &["Recursive"]));
            }
        } else if policy != "Recursive" && policy != "MountOption" {
            errs.push(FieldError::not_supported(
                &p,
                policy.as_str(),
                &["MountOption", "Recursive"],
            ));
        }
    }
    errs
}

fn validate_affinity(affinity: &Affinity, opts: &PodValidationOptions, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(node) = &affinity.node_affinity {
        let np = path.child("nodeAffinity");
        if let Some(required) = &node.required_during_scheduling_ignored_during_execution {
            errs.extend(validate_node_selector(
                required,
                opts.allow_invalid_label_value_in_required_node_affinity,
                &np.child("requiredDuringSchedulingIgnoredDuringExecution"),
            ));
        }
        let pp = np.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (i, term) in node
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .enumerate()
        {
            if term.weight <= 0 || term.weight > 100 {
                errs.push(FieldError::invalid(
                    &pp.index(i).child("weight"),
                    term.weight,
                    "must be in the range 1-100",
                ));
            }
            errs.extend(validate_node_selector_term(
                &term.preference,
                true,
                &pp.index(i).child("preference"),
            ));
        }
    }
    let allow = opts.allow_invalid_label_value_in_selector;
    for (affinity_terms, name) in [
        (
            affinity.pod_affinity.as_ref().map(|a| {
                (
                    &a.required_during_scheduling_ignored_during_execution,
                    &a.preferred_during_scheduling_ignored_during_execution,
                )
            }),
            "podAffinity",
        ),
        (
            affinity.pod_anti_affinity.as_ref().map(|a| {
                (
                    &a.required_during_scheduling_ignored_during_execution,
                    &a.preferred_during_scheduling_ignored_during_execution,
                )
            }),
            "podAntiAffinity",
        ),
    ] {
        let Some((required, preferred)) = affinity_terms else {
            continue;
        };
        let ap = path.child(name);
        let rp = ap.child("requiredDuringSchedulingIgnoredDuringExecution");
        for (i, term) in required.iter().flatten().enumerate() {
            errs.extend(validate_pod_affinity_term(term, allow, &rp.index(i)));
        }
        let wp = ap.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (j, weighted) in preferred.iter().flatten().enumerate() {
            if weighted.weight <= 0 || weighted.weight > 100 {
                errs.push(FieldError::invalid(
                    &wp.index(j).child("weight"),
                    weighted.weight,
                    "must be in the range 1-100",
                ));
            }
            errs.extend(validate_pod_affinity_term(
                &weighted.pod_affinity_term,
                allow,
                &wp.index(j).child("podAffinityTerm"),
            ));
        }
    }
    errs
}

fn validate_node_selector(selector: &NodeSelector, allow_invalid: bool, path: &Path) -> ErrorList {
    let tp = path.child("nodeSelectorTerms");
    if selector.node_selector_terms.is_empty() {
        return vec![FieldError::required(
            &tp,
            "must have at least one node selector term",
        )];
    }
    selector
        .node_selector_terms
        .iter()
        .enumerate()
        .flat_map(|(i, term)| validate_node_selector_term(term, allow_invalid, &tp.index(i)))
        .collect()
}

/// Upstream's `ValidateNodeSelectorTerm`.
pub fn validate_node_selector_term(term: &NodeSelectorTerm, allow_invalid: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (j, req) in term.match_expressions.iter().flatten().enumerate() {
        errs.extend(validate_node_selector_requirement(
            req,
            allow_invalid,
            &path.child("matchExpressions").index(j),
        ));
    }
    for (j, req) in term.match_fields.iter().flatten().enumerate() {
        let p = path.child("matchFields").index(j);
        let values = req.values.as_deref().unwrap_or_default();
        match req.operator.as_str() {
            "In" | "NotIn" => {
                if values.len() != 1 {
                    errs.push(FieldError::required(
                        &p.child("values"),
                        "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                &p.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        if req.key == "metadata.name" {
            for (k, v) in values.iter().enumerate() {
                errs.extend(name_errors(
                    &p.child("values").index(k),
                    v,
                    name_is_dns_subdomain(v, false),
                ));
            }
        } else {
            errs.push(FieldError::invalid(
                &p.child("key"),
                req.key.as_str(),
                "not a valid field selector key",
            ));
        }
    }
    errs
}

fn validate_node_selector_requirement(
    req: &NodeSelectorRequirement,
    allow_invalid: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = req.values.as_deref().unwrap_or_default();
    match req.operator.as_str() {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(FieldError::forbidden(
                    &path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        other => errs.push(FieldError::invalid(
            &path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    errs.extend(validate_label_name(&req.key, &path.child("key")));
    if !allow_invalid {
        for (i, v) in values.iter().enumerate() {
            for msg in is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    &path.child("values").index(i),
                    v.as_str(),
                    msg,
                ));
            }
        }
    }
    errs
}

fn validate_pod_affinity_term_selector(
    term: &PodAffinityTerm,
    allow_invalid: bool,
    path: &Path,
) -> ErrorList {
    let opts = LabelSelectorValidationOptions {
        allow_invalid_label_value_in_selector: allow_invalid,
        ..Default::default()
    };
    let mut errs = validate_label_selector(term.label_selector.as_ref(), opts, &path.child("labelSelector"));
    errs.extend(validate_label_selector(
        term.namespace_selector.as_ref(),
        opts,
        &path.child("namespaceSelector"),
    ));
    errs
}

fn validate_pod_affinity_term(term: &PodAffinityTerm, allow_invalid: bool, path: &Path) -> ErrorList {
    let mut errs = validate_pod_affinity_term_selector(term, allow_invalid, path);
    for name in term.namespaces.iter().flatten() {
        errs.extend(name_errors(
            &path.child("namespace"),
            name,
            validate_namespace_name(name, false),
        ));
    }
    errs.extend(validate_match_label_keys_and_mismatch_label_keys(
        path,
        term.match_label_keys.as_deref().unwrap_or_default(),
        term.mismatch_label_keys.as_deref().unwrap_or_default(),
        term.label_selector.as_ref(),
    ));
    if term.topology_key.is_empty() {
        errs.push(FieldError::required(
            &path.child("topologyKey"),
            "can not be empty",
        ));
    }
    errs.extend(validate_label_name(
        &term.topology_key,
        &path.child("topologyKey"),
    ));
    errs
}

fn validate_label_keys(path: &Path, keys: &[String], selector: Option<&LabelSelector>) -> ErrorList {
    if keys.is_empty() {
        return Vec::new();
    }
    if selector.is_none() {
        return vec![FieldError::forbidden(
            path,
            "must not be specified when labelSelector is not set",
        )];
    }
    keys.iter()
        .enumerate()
        .flat_map(|(i, key)| validate_label_name(key, &path.index(i)))
        .collect()
}

/// Upstream's `ValidateMatchLabelKeysAndMismatchLabelKeys`.
pub fn validate_match_label_keys_and_mismatch_label_keys(
    path: &Path,
    match_keys: &[String],
    mismatch_keys: &[String],
    selector: Option<&LabelSelector>,
) -> ErrorList {
    let mut errs = validate_label_keys(&path.child("matchLabelKeys"), match_keys, selector);
    errs.extend(validate_label_keys(
        &path.child("mismatchLabelKeys"),
        mismatch_keys,
        selector,
    ));
    if let Some(selector) = selector {
        let index: BTreeMap<&str, usize> = match_keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        let mut keys: BTreeSet<&str> = selector
            .match_labels
            .iter()
            .flat_map(|m| m.keys().map(String::as_str))
            .collect();
        for expr in selector.match_expressions.iter().flatten() {
            if let Some(i) = index.get(expr.key.as_str())
                && keys.contains(expr.key.as_str())
            {
                errs.push(FieldError::invalid(
                    &path.index(*i),
                    expr.key.as_str(),
                    "exists in both matchLabelKeys and labelSelector",
                ));
            }
            keys.insert(expr.key.as_str());
        }
    }
    let mismatch: BTreeSet<&str> = mismatch_keys.iter().map(String::as_str).collect();
    for (i, key) in match_keys.iter().enumerate() {
        if mismatch.contains(key.as_str()) {
            errs.push(FieldError::invalid(
                &path.child("matchLabelKeys").index(i),
                key.as_str(),
                "exists in both matchLabelKeys and mismatchLabelKeys",
            ));
        }
    }
    errs
}

/// Upstream's legacy `ValidateMatchLabelKeysInTopologySpread`.
fn validate_match_label_keys_in_topology_spread(
    path: &Path,
    keys: &[String],
    selector: Option<&LabelSelector>,
) -> ErrorList {
    if keys.is_empty() {
        return Vec::new();
    }
    let mut errs = ErrorList::new();
    let mut selector_keys = BTreeSet::new();
    match selector {
        Some(s) => {
            selector_keys.extend(s.match_labels.iter().flat_map(|m| m.keys().map(String::as_str)));
            selector_keys.extend(s.match_expressions.iter().flatten().map(|e| e.key.as_str()));
        }
        None => errs.push(FieldError::forbidden(
            path,
            "must not be specified when labelSelector is not set",
        )),
    }
    for (i, key) in keys.iter().enumerate() {
        errs.extend(validate_label_name(key, &path.index(i)));
        if selector_keys.contains(key.as_str()) {
            errs.push(FieldError::invalid(
                &path.index(i),
                key.as_str(),
                "exists in both matchLabelKeys and labelSelector",
            ));
        }
    }
    errs
}

fn validate_topology_spread_constraints(
    constraints: &[TopologySpreadConstraint],
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, c) in constraints.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_positive_field(
            i64::from(c.max_skew),
            &p.child("maxSkew"),
        ));
        if c.topology_key.is_empty() {
            errs.push(FieldError::required(&p.child("topologyKey"), "can not be empty"));
        }
        if c.when_unsatisfiable != "DoNotSchedule" && c.when_unsatisfiable != "ScheduleAnyway" {
            errs.push(FieldError::not_supported(
                &p.child("whenUnsatisfiable"),
                c.when_unsatisfiable.as_str(),
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
        if constraints[i + 1..]
            .iter()
            .any(|r| r.topology_key == c.topology_key && r.when_unsatisfiable == c.when_unsatisfiable)
        {
            errs.push(FieldError::duplicate(
                &p.child("{topologyKey, whenUnsatisfiable}"),
                format!("{{{}, {}}}", c.topology_key, c.when_unsatisfiable),
            ));
        }
        if let Some(min_domains) = c.min_domains {
            let mp = p.child("minDomains");
            errs.extend(validate_positive_field(i64::from(min_domains), &mp));
            if c.when_unsatisfiable != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    &mp,
                    min_domains,
                    format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {}",
                        c.when_unsatisfiable
                    ),
                ));
            }
        }
        for (policy, name) in [
            (&c.node_affinity_policy, "nodeAffinityPolicy"),
            (&c.node_taints_policy, "nodeTaintsPolicy"),
        ] {
            if let Some(policy) = policy
                && policy != "Honor"
                && policy != "Ignore"
            {
                errs.push(FieldError::not_supported(
                    &p.child(name),
                    policy.as_str(),
                    &["Honor", "Ignore"],
                ));
            }
        }
        let keys = c.match_label_keys.as_deref().unwrap_or_default();
        if opts.old_pod_violates_match_label_keys_validation {
            errs.extend(validate_match_label_keys_in_topology_spread(
                &p.child("matchLabelKeys"),
                keys,
                c.label_selector.as_ref(),
            ));
        } else {
            errs.extend(validate_match_label_keys_and_mismatch_label_keys(
                &p,
                keys,
                &[],
                c.label_selector.as_ref(),
            ));
        }
        if !opts.allow_invalid_topology_spread_constraint_label_selector {
            errs.extend(validate_label_selector(
                c.label_selector.as_ref(),
                LabelSelectorValidationOptions::default(),
                &p.child("labelSelector"),
            ));
        }
    }
    errs
}

fn validate_pod_dns_config(spec: &PodSpec, path: &Path, opts: &PodValidationOptions) -> ErrorList {
    let mut errs = ErrorList::new();
    let config = spec.dns_config.as_ref();
    if str_of(&spec.dns_policy) == "None" {
        let Some(config) = config else {
            return vec![FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )];
        };
        if config.nameservers.as_ref().is_none_or(Vec::is_empty) {
            return vec![FieldError::required(
                &path.child("nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )];
        }
    }
    let Some(config) = config else {
        return errs;
    };
    let nameservers = config.nameservers.as_deref().unwrap_or_default();
    if nameservers.len() > 3 {
        errs.push(FieldError::invalid(
            &path.child("nameservers"),
            bad_value(nameservers),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        errs.extend(is_valid_ip_for_legacy_field(
            &path.child("nameservers").index(i),
            ns,
            STRICT_IP_CIDR_VALIDATION,
            &[],
        ));
    }
    let searches = config.searches.as_deref().unwrap_or_default();
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            bad_value(searches),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(FieldError::invalid(
            &path.child("searches"),
            bad_value(searches),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        let p = path.child("searches").index(i);
        if opts.allow_relaxed_dns_search_validation {
            if search != "." {
                let s = search.strip_suffix('.').unwrap_or(search);
                errs.extend(name_errors(&p, s, is_dns1123_subdomain_with_underscore(s)));
            }
        } else {
            let s = search.strip_suffix('.').unwrap_or(search);
            errs.extend(validate_dns1123_subdomain(s, &p));
        }
    }
    for (i, option) in config.options.iter().flatten().enumerate() {
        if str_of(&option.name).is_empty() {
            errs.push(FieldError::required(
                &path.child("options").index(i),
                "must not be empty",
            ));
        }
    }
    errs
}

/// Upstream's `ValidateTolerations`.
pub fn validate_tolerations(
    tolerations: &[Toleration],
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let (key, operator, value, effect) = (
            str_of(&t.key),
            str_of(&t.operator),
            str_of(&t.value),
            str_of(&t.effect),
        );
        if !key.is_empty() {
            errs.extend(validate_label_name(key, &p.child("key")));
        }
        if key.is_empty() && operator != "Exists" {
            errs.push(FieldError::invalid(
                &p.child("operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                &p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match operator {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(&p.child("operator"), value, msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        &p.child("operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            "Lt" | "Gt" => {
                if !opts.allow_taint_toleration_comparison_operators {
                    errs.push(FieldError::not_supported(
                        &p.child("operator"),
                        operator,
                        &["Equal", "Exists", "Lt", "Gt"],
                    ));
                } else if value.parse::<i64>().is_err()
                    || !value.bytes().all(|b| b.is_ascii_digit() || b == b'-')
                {
                    errs.push(FieldError::invalid(
                        &p.child("value"),
                        value,
                        "must be a valid decimal integer",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                &p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect) {
            errs.push(FieldError::not_supported(
                &p.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

fn validate_windows_host_process_pod(spec: &PodSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let pod_host_process = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.windows_options.as_ref())
        .and_then(|w| w.host_process);
    let mut count = 0;
    let mut host_process_count = 0;
    for (c, cp) in visit_containers(spec, path) {
        count += 1;
        let container_host_process = c
            .security_context
            .as_ref()
            .and_then(|sc| sc.windows_options.as_ref())
            .and_then(|w| w.host_process);
        if let (Some(pod), Some(ctr)) = (pod_host_process, container_host_process)
            && pod != ctr
        {
            errs.push(FieldError::invalid(
                &cp.child("securityContext")
                    .child("windowsOptions")
                    .child("hostProcess"),
                ctr,
                format!("pod hostProcess value must be identical if both are specified, was {pod}"),
            ));
        }
        match (container_host_process, pod_host_process) {
            (Some(true), _) | (None, Some(true)) => host_process_count += 1,
            _ => {}
        }
    }
    if host_process_count > 0 {
        if host_process_count != count {
            errs.push(FieldError::invalid(
                path,
                "",
                "If pod contains any hostProcess containers then all containers must be HostProcess containers",
            ));
        }
        let host_network = spec.host_network.unwrap_or(false);
        if !host_network {
            errs.push(FieldError::invalid(
                &path.child("hostNetwork"),
                host_network,
                "hostNetwork must be true if pod contains any hostProcess containers",
            ));
        }
    }
    errs
}

fn validate_host_users(spec: &PodSpec, path: &Path, opts: &PodValidationOptions) -> ErrorList {
    let mut errs = ErrorList::new();
    if spec.host_users != Some(false) {
        return errs;
    }
    if !opts.allow_user_namespaces_host_network_support && spec.host_network == Some(true) {
        errs.push(FieldError::forbidden(
            &path.child("hostNetwork"),
            "when `hostUsers` is false",
        ));
    }
    if spec.host_pid == Some(true) {
        errs.push(FieldError::forbidden(
            &path.child("HostPID"),
            "when `hostUsers` is false",
        ));
    }
    if spec.host_ipc == Some(true) {
        errs.push(FieldError::forbidden(
            &path.child("HostIPC"),
            "when `hostUsers` is false",
        ));
    }
    if !opts.allow_user_namespaces_with_volume_devices {
        for (c, cp) in visit_containers(spec, path) {
            if c.volume_devices.as_ref().is_some_and(|d| !d.is_empty()) {
                errs.push(FieldError::forbidden(
                    &cp.child("volumeDevices"),
                    "when `hostUsers` is false",
                ));
            }
        }
    }
    errs
}

fn validate_pod_hostname_override(spec: &PodSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(hostname) = &spec.hostname_override else {
        return errs;
    };
    let p = path.child("hostnameOverride");
    if spec.set_hostname_as_fqdn == Some(true) {
        errs.push(FieldError::forbidden(
            &p,
            "may not be specified when setHostnameAsFQDN is true",
        ));
    }
    if spec.host_network == Some(true) {
        errs.push(FieldError::forbidden(
            &p,
            "may not be specified when hostNetwork is true",
        ));
    }
    if hostname.len() > 64 {
        errs.push(FieldError::too_long(&p, 64));
    }
    errs.extend(validate_dns1123_subdomain(hostname, &p));
    errs
}

fn validate_file_key_ref_volumes(spec: &PodSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let volumes: BTreeMap<&str, bool> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| (v.name.as_str(), v.empty_dir.is_some()))
        .collect();
    for (c, cp) in visit_containers(spec, path) {
        for (j, env) in c.env.iter().flatten().enumerate() {
            let Some(file) = env.value_from.as_ref().and_then(|f| f.file_key_ref.as_ref()) else {
                continue;
            };
            let p = cp
                .child("env")
                .index(j)
                .child("valueFrom")
                .child("fileKeyRef")
                .child("volumeName");
            match volumes.get(file.volume_name.as_str()) {
                None => errs.push(FieldError::not_found(&p, file.volume_name.as_str())),
                Some(false) => errs.push(FieldError::invalid(
                    &p,
                    file.volume_name.as_str(),
                    "referenced volume must be of type emptyDir",
                )),
                Some(true) => {}
            }
        }
    }
    errs
}

fn validate_linux(spec: &PodSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if spec
        .security_context
        .as_ref()
        .is_some_and(|sc| sc.windows_options.is_some())
    {
        errs.push(FieldError::forbidden(
            &path.child("securityContext").child("windowsOptions"),
            "windows options cannot be set for a linux pod",
        ));
    }
    for (c, cp) in visit_containers(spec, path) {
        if c.security_context
            .as_ref()
            .is_some_and(|sc| sc.windows_options.is_some())
        {
            errs.push(FieldError::forbidden(
                &cp.child("securityContext").child("windowsOptions"),
                "windows options cannot be set for a linux pod",
            ));
        }
    }
    errs
}

fn validate_windows(spec: &PodSpec, path: &Path) -> ErrorList {
    const MSG: &str = "cannot be set for a windows pod";
    let mut errs = ErrorList::new();
    if let Some(sc) = &spec.security_context {
        let sp = path.child("securityContext");
        let checks = [
            (sc.app_armor_profile.is_some(), sp.child("appArmorProfile")),
            (sc.se_linux_options.is_some(), sp.child("seLinuxOptions")),
            (spec.host_users.is_some(), path.child("hostUsers")),
            (spec.host_pid == Some(true), path.child("hostPID")),
            (spec.host_ipc == Some(true), path.child("hostIPC")),
            (sc.seccomp_profile.is_some(), sp.child("seccompProfile")),
            (sc.fs_group.is_some(), sp.child("fsGroup")),
            (
                sc.fs_group_change_policy.is_some(),
                sp.child("fsGroupChangePolicy"),
            ),
            (
                sc.sysctls.as_ref().is_some_and(|s| !s.is_empty()),
                sp.child("sysctls"),
            ),
            (
                spec.share_process_namespace.is_some(),
                path.child("shareProcessNamespace"),
            ),
            (sc.run_as_user.is_some(), sp.child("runAsUser")),
            (sc.run_as_group.is_some(), sp.child("runAsGroup")),
            (sc.supplemental_groups.is_some(), sp.child("supplementalGroups")),
            (
                sc.supplemental_groups_policy.is_some(),
                sp.child("supplementalGroupsPolicy"),
            ),
            (
                sc.se_linux_change_policy.is_some(),
                sp.child("seLinuxChangePolicy"),
            ),
        ];
        for (set, p) in checks {
            if set {
                errs.push(FieldError::forbidden(&p, MSG));
            }
        }
    }
    for (c, cp) in visit_containers(spec, path) {
        let Some(sc) = &c.security_context else {
            continue;
        };
        let sp = cp.child("securityContext");
        let checks = [
            (sc.app_armor_profile.is_some(), "appArmorProfile"),
            (sc.se_linux_options.is_some(), "seLinuxOptions"),
            (sc.seccomp_profile.is_some(), "seccompProfile"),
            (sc.capabilities.is_some(), "capabilities"),
            (sc.read_only_root_filesystem.is_some(), "readOnlyRootFilesystem"),
            (sc.privileged.is_some(), "privileged"),
            (
                sc.allow_privilege_escalation.is_some(),
                "allowPrivilegeEscalation",
            ),
            (sc.proc_mount.is_some(), "procMount"),
            (sc.run_as_user.is_some(), "runAsUser"),
            (sc.run_as_group.is_some(), "runAsGroup"),
        ];
        for (set, name) in checks {
            if set {
                errs.push(FieldError::forbidden(&sp.child(name), MSG));
            }
        }
    }
    errs
}

/// Upstream's `ValidatePodSpecificAnnotations`: mirror pods need a node, the legacy
/// tolerations annotation, the deletion cost, seccomp and AppArmor annotations.
pub fn validate_pod_specific_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    spec: &PodSpec,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(annotations) = annotations else {
        return errs;
    };
    if let Some(value) = annotations.get(MIRROR_POD_ANNOTATION_KEY)
        && str_of(&spec.node_name).is_empty()
    {
        errs.push(FieldError::invalid(
            &path.key(MIRROR_POD_ANNOTATION_KEY),
            value.as_str(),
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    if let Some(raw) = annotations
        .get(TOLERATIONS_ANNOTATION_KEY)
        .filter(|v| !v.is_empty())
    {
        match serde_json::from_str::<Vec<Toleration>>(raw) {
            Err(err) => errs.push(FieldError::invalid(
                path,
                TOLERATIONS_ANNOTATION_KEY,
                err.to_string(),
            )),
            Ok(tolerations) if !tolerations.is_empty() => {
                errs.extend(validate_tolerations(
                    &tolerations,
                    &path.child(TOLERATIONS_ANNOTATION_KEY),
                    opts,
                ));
            }
            Ok(_) => {}
        }
    }
    if !opts.allow_invalid_pod_deletion_cost && deletion_cost(Some(annotations)).is_err() {
        errs.push(FieldError::invalid(
            &path.key(POD_DELETION_COST),
            annotations.get(POD_DELETION_COST).map_or("", String::as_str),
            "must be a 32bit integer",
        ));
    }
    if let Some(profile) = annotations.get(SECCOMP_POD_ANNOTATION_KEY) {
        errs.extend(validate_seccomp_profile_annotation(
            profile,
            &path.child(SECCOMP_POD_ANNOTATION_KEY),
        ));
    }
    for (key, profile) in annotations {
        if key.starts_with(SECCOMP_CONTAINER_ANNOTATION_KEY_PREFIX) {
            errs.extend(validate_seccomp_profile_annotation(profile, &path.child(key)));
        }
    }
    for (key, profile) in annotations {
        let Some(container) = key.strip_prefix(APPARMOR_ANNOTATION_KEY_PREFIX) else {
            continue;
        };
        if !visit_containers(spec, &Path::new("spec"))
            .iter()
            .any(|(c, _)| c.name == container)
        {
            errs.push(FieldError::invalid(
                &path.key(key),
                container,
                "container not found",
            ));
        }
        if !(profile.is_empty()
            || profile == "runtime/default"
            || profile == "unconfined"
            || profile.starts_with("localhost/"))
        {
            errs.push(FieldError::invalid(
                &path.key(key),
                profile.as_str(),
                format!("invalid AppArmor profile name: {profile:?}"),
            ));
        }
    }
    errs
}

fn validate_seccomp_profile_annotation(profile: &str, path: &Path) -> ErrorList {
    if ["runtime/default", "docker/default", "unconfined"].contains(&profile) {
        return Vec::new();
    }
    if let Some(local) = profile.strip_prefix("localhost/") {
        return validate_local_descending_path(local, path);
    }
    vec![FieldError::invalid(
        path,
        profile,
        "must be a valid seccomp profile",
    )]
}

fn seccomp_annotation_mismatch(annotation: &str, field: &SeccompProfile, path: &Path) -> Option<FieldError> {
    match field.type_.as_str() {
        "Unconfined" if annotation != "unconfined" => Some(FieldError::forbidden(
            &path.child("type"),
            "seccomp type in annotation and field must match",
        )),
        "RuntimeDefault" if annotation != "runtime/default" && annotation != "docker/default" => {
            Some(FieldError::forbidden(
                &path.child("type"),
                "seccomp type in annotation and field must match",
            ))
        }
        "Localhost" => match annotation.strip_prefix("localhost/") {
            None => Some(FieldError::forbidden(
                &path.child("type"),
                "seccomp type in annotation and field must match",
            )),
            Some(local) if field.localhost_profile.as_deref() != Some(local) => Some(FieldError::forbidden(
                &path.child("localhostProfile"),
                "seccomp profile in annotation and field must match",
            )),
            Some(_) => None,
        },
        _ => None,
    }
}

/// Upstream's `validateSeccompAnnotationsAndFields`: annotation and field agree.
pub fn validate_seccomp_annotations_and_fields(
    meta: Option<&ObjectMeta>,
    spec: &PodSpec,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let annotations = meta.and_then(|m| m.annotations.as_ref());
    let Some(annotations) = annotations else {
        return errs;
    };
    if let Some(field) = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.seccomp_profile.as_ref())
        && let Some(annotation) = annotations.get(SECCOMP_POD_ANNOTATION_KEY)
    {
        errs.extend(seccomp_annotation_mismatch(
            annotation,
            field,
            &path.child("securityContext").child("seccompProfile"),
        ));
    }
    for (c, cp) in visit_containers(spec, path) {
        let Some(field) = c
            .security_context
            .as_ref()
            .and_then(|sc| sc.seccomp_profile.as_ref())
        else {
            continue;
        };
        if let Some(annotation) =
            annotations.get(&format!("{SECCOMP_CONTAINER_ANNOTATION_KEY_PREFIX}{}", c.name))
        {
            errs.extend(seccomp_annotation_mismatch(
                annotation,
                field,
                &cp.child("securityContext").child("seccompProfile"),
            ));
        }
    }
    errs
}

/// Upstream's `validateAppArmorAnnotationsAndFieldsMatchOnCreate`.
pub fn validate_apparmor_annotations_and_fields_match(
    meta: Option<&ObjectMeta>,
    spec: &PodSpec,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if spec.os.as_ref().is_some_and(|o| o.name == "windows") {
        return errs;
    }
    let Some(annotations) = meta.and_then(|m| m.annotations.as_ref()) else {
        return errs;
    };
    let pod_profile = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.app_armor_profile.as_ref());
    for (c, cp) in visit_containers(spec, path) {
        let profile = c
            .security_context
            .as_ref()
            .and_then(|sc| sc.app_armor_profile.as_ref())
            .or(pod_profile);
        let Some(profile) = profile else {
            continue;
        };
        let Some(annotation) = annotations.get(&format!("{APPARMOR_ANNOTATION_KEY_PREFIX}{}", c.name)) else {
            continue;
        };
        let ap = cp.child("securityContext").child("appArmorProfile");
        let mismatch = |errs: &mut ErrorList| {
            errs.push(FieldError::forbidden(
                &ap.child("type"),
                "apparmor type in annotation and field must match",
            ));
        };
        match profile.type_.as_str() {
            "Unconfined" if annotation != "unconfined" => mismatch(&mut errs),
            "RuntimeDefault" if annotation != "runtime/default" => mismatch(&mut errs),
            "Localhost" => match annotation.strip_prefix("localhost/") {
                None => mismatch(&mut errs),
                Some(local) if profile.localhost_profile.as_deref() != Some(local) => {
                    errs.push(FieldError::forbidden(
                        &ap.child("localhostProfile"),
                        "apparmor profile in annotation and field must match",
                    ));
                }
                Some(_) => {}
            },
            _ => {}
        }
    }
    errs
}

/// Upstream's `ValidatePodTemplateSpec`: template labels and annotations (reported on
/// `<path>.labels` / `<path>.annotations`, as upstream does), pod-specific annotations, the
/// spec, annotation/field consistency, and no ephemeral containers.
pub fn validate_pod_template_spec(
    template: &PodTemplateSpec,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let empty_meta = ObjectMeta::default();
    let meta = template.metadata.as_ref().unwrap_or(&empty_meta);
    let empty_spec = PodSpec::default();
    let spec = template.spec.as_ref().unwrap_or(&empty_spec);
    let mut errs = validate_labels(meta.labels.as_ref(), &path.child("labels"));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs.extend(validate_pod_specific_annotations(
        meta.annotations.as_ref(),
        spec,
        &path.child("annotations"),
        opts,
    ));
    let spec_path = path.child("spec");
    errs.extend(validate_pod_spec(spec, &ObjectMeta::default(), &spec_path, opts));
    errs.extend(validate_seccomp_annotations_and_fields(
        Some(meta),
        spec,
        &spec_path,
    ));
    errs.extend(validate_apparmor_annotations_and_fields_match(
        Some(meta),
        spec,
        &spec_path,
    ));
    if spec.ephemeral_containers.as_ref().is_some_and(|e| !e.is_empty()) {
        errs.push(FieldError::forbidden(
            &spec_path.child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// Pod-only container checks of a whole spec (`validateContainersOnlyForPod`).
pub fn validate_containers_only_for_pod(spec: &PodSpec, spec_path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, c) in spec.containers.iter().enumerate() {
        errs.extend(validate_container_only_for_pod(
            c,
            &spec_path.child("containers").index(i),
        ));
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        errs.extend(validate_container_only_for_pod(
            c,
            &spec_path.child("initContainers").index(i),
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Warnings (pkg/api/pod/warnings.go)
// ---------------------------------------------------------------------------------------------

const DEPRECATED_NODE_LABELS: &[(&str, &str)] = &[
    (
        "beta.kubernetes.io/arch",
        "deprecated since v1.14; use \"kubernetes.io/arch\" instead",
    ),
    (
        "beta.kubernetes.io/os",
        "deprecated since v1.14; use \"kubernetes.io/os\" instead",
    ),
    (
        "failure-domain.beta.kubernetes.io/region",
        "deprecated since v1.17; use \"topology.kubernetes.io/region\" instead",
    ),
    (
        "failure-domain.beta.kubernetes.io/zone",
        "deprecated since v1.17; use \"topology.kubernetes.io/zone\" instead",
    ),
    (
        "beta.kubernetes.io/instance-type",
        "deprecated since v1.17; use \"node.kubernetes.io/instance-type\" instead",
    ),
    ("app.kubernetes.io/created-by", "deprecated since v1.9"),
    (
        "scheduler.alpha.kubernetes.io/preferAvoidPods",
        "deprecated since v1.22; use Taints and Tolerations instead",
    ),
    (
        "node-role.kubernetes.io/master",
        "use \"node-role.kubernetes.io/control-plane\" instead",
    ),
];

fn deprecated_node_label(key: &str) -> Option<&'static str> {
    DEPRECATED_NODE_LABELS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, m)| *m)
}

const DEPRECATED_ANNOTATIONS: &[(&str, &str)] = &[
    (
        "scheduler.alpha.kubernetes.io/critical-pod",
        "non-functional in v1.16+; use the \"priorityClassName\" field instead",
    ),
    (
        "security.alpha.kubernetes.io/sysctls",
        "non-functional in v1.11+; use the \"sysctls\" field instead",
    ),
    (
        "security.alpha.kubernetes.io/unsafe-sysctls",
        "non-functional in v1.11+; use the \"sysctls\" field instead",
    ),
];

fn fractional(
    list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
    name: &str,
) -> Option<String> {
    let q = parse_quantity(list?.get(name)?.0.trim()).ok()?;
    (q.milli_value() % 1000 != 0).then(|| q.to_string())
}

/// The warnings of a pod (`prefix` None) or a pod template (`prefix` its path), as upstream's
/// `warningsForPodSpecAndMeta` returns them (overlapping volume paths and PVC spec warnings are
/// not reported).
pub fn pod_spec_warnings(prefix: Option<&Path>, spec: &PodSpec, meta: Option<&ObjectMeta>) -> Vec<String> {
    let mut warnings = Vec::new();
    let spec_path = under(prefix, "spec");
    let annotations_path = under(prefix, "metadata").child("annotations");
    let annotations = meta.and_then(|m| m.annotations.as_ref());
    for key in spec.node_selector.iter().flat_map(|m| m.keys()) {
        if let Some(msg) = deprecated_node_label(key) {
            warnings.push(format!("{}: {msg}", spec_path.child("nodeSelector").key(key)));
        }
    }
    if let Some(node) = spec.affinity.as_ref().and_then(|a| a.node_affinity.as_ref()) {
        let np = spec_path.child("affinity").child("nodeAffinity");
        let mut term_warnings = |term: &NodeSelectorTerm, p: Path| {
            for (i, e) in term.match_expressions.iter().flatten().enumerate() {
                if let Some(msg) = deprecated_node_label(&e.key) {
                    warnings.push(format!(
                        "{}: {} is {msg}",
                        p.child("matchExpressions").index(i).child("key"),
                        e.key
                    ));
                }
            }
        };
        if let Some(required) = &node.required_during_scheduling_ignored_during_execution {
            let tp = np
                .child("requiredDuringSchedulingIgnoredDuringExecution")
                .child("nodeSelectorTerms");
            for (i, term) in required.node_selector_terms.iter().enumerate() {
                term_warnings(term, tp.index(i));
            }
        }
        let pp = np.child("preferredDuringSchedulingIgnoredDuringExecution");
        for (i, term) in node
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .enumerate()
        {
            term_warnings(&term.preference, pp.index(i).child("preference"));
        }
    }
    for (i, t) in spec.topology_spread_constraints.iter().flatten().enumerate() {
        let tp = spec_path.child("topologySpreadConstraints").index(i);
        if let Some(msg) = deprecated_node_label(&t.topology_key) {
            warnings.push(format!(
                "{}: {} is {msg}",
                tp.child("topologyKey"),
                t.topology_key
            ));
        }
        if t.label_selector.is_none() {
            warnings.push(format!(
                "{}: a null labelSelector results in matching no pod",
                tp.child("labelSelector")
            ));
        }
    }
    for (key, msg) in DEPRECATED_ANNOTATIONS {
        if annotations.is_some_and(|a| a.contains_key(*key)) {
            warnings.push(format!("{}: {msg}", annotations_path.key(key)));
        }
    }
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let vp = spec_path.child("volumes").index(i);
        let deprecated = [
            (
                v.photon_persistent_disk.is_some(),
                "photonPersistentDisk",
                "deprecated in v1.11, non-functional in v1.16+",
            ),
            (
                v.git_repo.is_some(),
                "gitRepo",
                "deprecated in v1.11, and disabled by default in v1.33+",
            ),
            (
                v.scale_io.is_some(),
                "scaleIO",
                "deprecated in v1.16, non-functional in v1.22+",
            ),
            (
                v.flocker.is_some(),
                "flocker",
                "deprecated in v1.22, non-functional in v1.25+",
            ),
            (
                v.storageos.is_some(),
                "storageOS",
                "deprecated in v1.22, non-functional in v1.25+",
            ),
            (
                v.quobyte.is_some(),
                "quobyte",
                "deprecated in v1.22, non-functional in v1.25+",
            ),
            (
                v.glusterfs.is_some(),
                "glusterfs",
                "deprecated in v1.25, non-functional in v1.26+",
            ),
            (
                v.cephfs.is_some(),
                "cephfs",
                "deprecated in v1.28, non-functional in v1.31+",
            ),
            (
                v.rbd.is_some(),
                "rbd",
                "deprecated in v1.28, non-functional in v1.31+",
            ),
        ];
        for (set, name, msg) in deprecated {
            if set {
                warnings.push(format!("{}: {msg}", vp.child(name)));
            }
        }
    }
    let mut ips = BTreeSet::new();
    let aliases = spec.host_aliases.as_deref().unwrap_or_default();
    if aliases.len() > 1 {
        for (i, alias) in aliases.iter().enumerate() {
            if !ips.insert(alias.ip.as_str()) {
                warnings.push(format!(
                    "{}: duplicate ip {:?}",
                    spec_path.child("hostAliases").index(i).child("ip"),
                    alias.ip
                ));
            }
        }
    }
    let secrets = spec.image_pull_secrets.as_deref().unwrap_or_default();
    let mut secret_names = BTreeSet::new();
    if secrets.len() > 1 {
        for (i, s) in secrets.iter().enumerate() {
            if !secret_names.insert(s.name.as_str()) {
                warnings.push(format!(
                    "{}: duplicate name {:?}",
                    spec_path.child("imagePullSecrets").index(i).child("name"),
                    s.name
                ));
            }
        }
    }
    for (i, s) in secrets.iter().enumerate() {
        if s.name.is_empty() {
            warnings.push(format!(
                "{}: invalid empty name {:?}",
                spec_path.child("imagePullSecrets").index(i).child("name"),
                s.name
            ));
        }
    }
    for name in ["memory", "ephemeral-storage"] {
        if let Some(value) = fractional(spec.overhead.as_ref(), name) {
            warnings.push(format!(
                "{}: fractional byte value {value:?} is invalid, must be an integer",
                spec_path.child("overhead").key(name)
            ));
        }
    }
    if spec
        .security_context
        .as_ref()
        .is_none_or(|sc| sc.seccomp_profile.is_none())
        && annotations.is_some_and(|a| a.contains_key(SECCOMP_POD_ANNOTATION_KEY))
    {
        warnings.push(format!(
            "{}: non-functional in v1.27+; use the \"seccompProfile\" field instead",
            annotations_path.key(SECCOMP_POD_ANNOTATION_KEY)
        ));
    }
    let containers = visit_containers(spec, &spec_path);
    for (c, cp) in &containers {
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION_KEY_PREFIX}{}", c.name);
        if c.security_context
            .as_ref()
            .is_none_or(|sc| sc.seccomp_profile.is_none())
            && annotations.is_some_and(|a| a.contains_key(&key))
        {
            warnings.push(format!(
                "{}: non-functional in v1.27+; use the \"seccompProfile\" field instead",
                annotations_path.key(&key)
            ));
        }
        let resources = c.resources.as_ref();
        for name in ["memory", "ephemeral-storage"] {
            for (list, list_name) in [
                (resources.and_then(|r| r.limits.as_ref()), "limits"),
                (resources.and_then(|r| r.requests.as_ref()), "requests"),
            ] {
                if let Some(value) = fractional(list, name) {
                    warnings.push(format!(
                        "{}: fractional byte value {value:?} is invalid, must be an integer",
                        cp.child("resources").child(list_name).key(name)
                    ));
                }
            }
        }
        let env = c.env.as_deref().unwrap_or_default();
        if env.len() > 1 {
            let mut names = BTreeSet::new();
            for (i, item) in env.iter().enumerate() {
                if names.insert(item.name.as_str()) {
                    continue;
                }
                let reference = format!("$({})", item.name);
                let value = str_of(&item.value);
                if item.value_from.is_some() || value == reference || !value.contains(&reference) {
                    warnings.push(format!(
                        "{}: hides previous definition of {:?}, which may be dropped when using apply",
                        cp.child("env").index(i),
                        item.name
                    ));
                }
            }
        }
    }
    let mut all_ports: BTreeMap<String, Vec<(Path, k8s_openapi::api::core::v1::ContainerPort)>> =
        BTreeMap::new();
    for (c, cp) in &containers {
        for (i, port) in c.ports.iter().flatten().enumerate() {
            let pp = cp.child("ports").index(i);
            let (host_ip, host_port) = (str_of(&port.host_ip), port.host_port.unwrap_or(0));
            if !host_ip.is_empty() && host_port == 0 {
                warnings.push(format!(
                    "{pp}: hostIP set without hostPort: {{Name:{} HostPort:{host_port} ContainerPort:{} Protocol:{} HostIP:{host_ip}}}",
                    str_of(&port.name),
                    port.container_port,
                    str_of(&port.protocol)
                ));
            }
            let key = format!("{}/{}", port.container_port, str_of(&port.protocol));
            let others = all_ports.entry(key).or_default();
            for (other_path, other) in others.iter() {
                let (other_ip, other_port) = (str_of(&other.host_ip), other.host_port.unwrap_or(0));
                if host_ip == other_ip && host_port == other_port {
                    warnings.push(format!("{pp}: duplicate port definition with {other_path}"));
                } else if host_port == 0 || other_port == 0 {
                    warnings.push(format!("{pp}: overlapping port definition with {other_path}"));
                } else if host_port == other_port && (host_ip.is_empty() != other_ip.is_empty()) {
                    warnings.push(format!(
                        "{pp}: dangerously ambiguous port definition with {other_path}"
                    ));
                }
            }
            others.push((pp, port.clone()));
        }
    }
    let mut port_names: BTreeMap<String, Path> = BTreeMap::new();
    for (c, cp) in &containers {
        for (i, port) in c.ports.iter().flatten().enumerate() {
            let name = str_of(&port.name);
            if name.is_empty() {
                continue;
            }
            let pp = cp.child("ports").index(i);
            match port_names.get(name) {
                Some(other) => warnings.push(format!(
                    "{pp}: duplicate port name {name:?} with {other}, services and probes that select ports by name will use {other}"
                )),
                None => {
                    port_names.insert(name.to_owned(), pp);
                }
            }
        }
    }
    if spec.termination_grace_period_seconds.is_some_and(|g| g < 0) {
        warnings.push(format!(
            "{}: must be >= 0; negative values are invalid and will be treated as 1",
            spec_path.child("terminationGracePeriodSeconds")
        ));
    }
    if let Some(affinity) = &spec.affinity {
        for (terms, name) in [
            (
                affinity.pod_affinity.as_ref().map(|a| {
                    (
                        &a.required_during_scheduling_ignored_during_execution,
                        &a.preferred_during_scheduling_ignored_during_execution,
                    )
                }),
                "podAffinity",
            ),
            (
                affinity.pod_anti_affinity.as_ref().map(|a| {
                    (
                        &a.required_during_scheduling_ignored_during_execution,
                        &a.preferred_during_scheduling_ignored_during_execution,
                    )
                }),
                "podAntiAffinity",
            ),
        ] {
            let Some((required, preferred)) = terms else {
                continue;
            };
            let ap = spec_path.child("affinity").child(name);
            for (i, t) in required.iter().flatten().enumerate() {
                if t.label_selector.is_none() {
                    warnings.push(format!(
                        "{}: a null labelSelector results in matching no pod",
                        ap.child("requiredDuringSchedulingIgnoredDuringExecution")
                            .index(i)
                            .child("labelSelector")
                    ));
                }
            }
            for (i, t) in preferred.iter().flatten().enumerate() {
                if t.pod_affinity_term.label_selector.is_none() {
                    warnings.push(format!(
                        "{}: a null labelSelector results in matching no pod",
                        ap.child("preferredDuringSchedulingIgnoredDuringExecution")
                            .index(i)
                            .child("podAffinityTerm")
                            .child("labelSelector")
                    ));
                }
            }
        }
    }
    for (i, ns) in spec
        .dns_config
        .iter()
        .flat_map(|c| c.nameservers.iter().flatten())
        .enumerate()
    {
        warnings.extend(get_warnings_for_ip(
            &spec_path.child("dnsConfig").child("nameservers").index(i),
            ns,
        ));
    }
    for (i, alias) in aliases.iter().enumerate() {
        warnings.extend(get_warnings_for_ip(
            &spec_path.child("hostAliases").index(i).child("ip"),
            &alias.ip,
        ));
    }
    warnings
}

/// `GetWarningsForPodTemplate`.
pub fn pod_template_warnings(path: &Path, template: &PodTemplateSpec) -> Vec<String> {
    let empty = PodSpec::default();
    pod_spec_warnings(
        Some(path),
        template.spec.as_ref().unwrap_or(&empty),
        template.metadata.as_ref(),
    )
}

// ---------------------------------------------------------------------------------------------
// Create-time mutations of pods (pkg/registry/core/pod/strategy.go)
// ---------------------------------------------------------------------------------------------

fn apply_label_keys(
    selector: &mut LabelSelector,
    keys: &[String],
    operator: &str,
    labels: &BTreeMap<String, String>,
) {
    for key in keys {
        if let Some(value) = labels.get(key) {
            selector
                .match_expressions
                .get_or_insert_with(Vec::new)
                .push(LabelSelectorRequirement {
                    key: key.clone(),
                    operator: operator.to_owned(),
                    values: Some(vec![value.clone()]),
                });
        }
    }
}

fn apply_match_label_keys_to_term(term: &mut PodAffinityTerm, labels: &BTreeMap<String, String>) {
    let match_keys = term.match_label_keys.clone().unwrap_or_default();
    let mismatch_keys = term.mismatch_label_keys.clone().unwrap_or_default();
    if match_keys.is_empty() && mismatch_keys.is_empty() {
        return;
    }
    let Some(selector) = &mut term.label_selector else {
        return;
    };
    apply_label_keys(selector, &match_keys, "In", labels);
    apply_label_keys(selector, &mismatch_keys, "NotIn", labels);
}

/// `mutatePodAffinity` and `mutateTopologySpreadConstraints`: `matchLabelKeys` and
/// `mismatchLabelKeys` become selector requirements with the pod's label values.
pub fn merge_match_label_keys(spec: &mut PodSpec, labels: Option<&BTreeMap<String, String>>) {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    if let Some(affinity) = &mut spec.affinity {
        let groups = [
            affinity.pod_affinity.as_mut().map(|a| {
                (
                    &mut a.preferred_during_scheduling_ignored_during_execution,
                    &mut a.required_during_scheduling_ignored_during_execution,
                )
            }),
            affinity.pod_anti_affinity.as_mut().map(|a| {
                (
                    &mut a.preferred_during_scheduling_ignored_during_execution,
                    &mut a.required_during_scheduling_ignored_during_execution,
                )
            }),
        ];
        for (preferred, required) in groups.into_iter().flatten() {
            for w in preferred.iter_mut().flatten() {
                apply_match_label_keys_to_term(&mut w.pod_affinity_term, labels);
            }
            for t in required.iter_mut().flatten() {
                apply_match_label_keys_to_term(t, labels);
            }
        }
    }
    for c in spec.topology_spread_constraints.iter_mut().flatten() {
        let keys = c.match_label_keys.clone().unwrap_or_default();
        if keys.is_empty() {
            continue;
        }
        if let Some(selector) = &mut c.label_selector {
            apply_label_keys(selector, &keys, "In", labels);
        }
    }
}
