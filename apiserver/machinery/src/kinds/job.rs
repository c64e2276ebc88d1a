//! The batch/v1 Job: defaults, registry strategy and validation.
//!
//! Ports `SetDefaults_Job` with the generated pod-failure-policy and template defaults
//! (pkg/apis/batch/v1), pkg/registry/batch/job/strategy.go (selector generation with the
//! `controller-uid` / `job-name` labels unless `manualSelector`, status reset, generation,
//! validation options from the old object, status kept, the status strategy with the
//! JobManagedBy-era status rules, `status.successful` as a selectable field, warnings),
//! pkg/api/job (warnings) and the Job half of pkg/apis/batch/validation (`ValidateJob*`,
//! pod failure and success policies, indexed-job rules, immutable fields and template).
//! Feature gates are fixed at their 1.35 defaults. The job-spec validation is shared with
//! CronJob job templates ([`super::cron_job`]).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::batch::v1::{
    Job, JobCondition, JobSpec, JobStatus, PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
    PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule, SuccessPolicy, SuccessPolicyRule,
    UncountedTerminatedPods,
};
use k8s_openapi::api::core::v1::{Affinity, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::go_repr::GoValue;
use super::pod_spec::{
    PodValidationOptions, default_pod_template_spec, drop_disabled_template_fields, pod_template_warnings,
    str_of, validate_pod_template_spec,
};
use super::workload_shared::{
    bump_generation, dns_label_name_warning, go_bad, go_int, go_obj, go_opt_int, go_opt_str, go_pod_template,
    go_str, immutable_selector, meta_path, opt_bad, selector_bad, selector_matches_template,
    selector_mismatch,
};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::selectors::labels::Selector;
use crate::strategy::KindStrategy;
use crate::validation::{
    FIELD_IMMUTABLE_ERROR_MSG, LabelSelectorValidationOptions, bad_value, is_dns1123_label,
    is_domain_prefixed_path, label_selector_has_invalid_label_value, name_is_dns_subdomain,
    validate_immutable_field, validate_label_selector, validate_nonnegative_field, validate_object_meta,
    validate_object_meta_update, validate_qualified_name,
};

/// The legacy job-name label of generated selectors.
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";
/// The legacy controller-uid label of generated selectors.
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
/// The job-name label of generated selectors.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// The controller-uid label of generated selectors.
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";

const NON_INDEXED: &str = "NonIndexed";
const INDEXED: &str = "Indexed";

const MAX_PARALLELISM_FOR_INDEXED_JOB: i32 = 100_000;
const MAX_FAILED_INDEXES_FOR_INDEXED_JOB: i32 = 100_000;
const COMPLETIONS_SOFT_LIMIT: i32 = 100_000;
const PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS: i32 = 10_000;
const MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS: i32 = 10_000;
const MAX_POD_FAILURE_POLICY_RULES: usize = 20;
const MAX_ON_EXIT_CODES_VALUES: usize = 255;
const MAX_ON_POD_CONDITIONS_PATTERNS: usize = 20;
const MAX_MANAGED_BY_LENGTH: usize = 63;
const MAX_SUCCEEDED_INDEXES_LENGTH: usize = 64 * 1024;
const MAX_SUCCESS_POLICY_RULES: usize = 20;

const POD_FAILURE_POLICY_ACTIONS: &[&str] = &["Count", "FailIndex", "FailJob", "Ignore"];
const EXIT_CODES_OPERATORS: &[&str] = &["In", "NotIn"];
const CONDITION_STATUSES: &[&str] = &["False", "True", "Unknown"];

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quoted_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

// ---------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------

/// The defaults of a job spec embedded in a Job or a CronJob job template that come from the
/// generated code: pod failure policy patterns (`status: "True"`) and the pod template.
pub fn default_job_spec_nested(spec: &mut JobSpec) {
    if let Some(policy) = &mut spec.pod_failure_policy {
        for rule in &mut policy.rules {
            for pattern in rule.on_pod_conditions.iter_mut().flatten() {
                if str_of(&pattern.status).is_empty() {
                    pattern.status = Some("True".to_owned());
                }
            }
        }
    }
    default_pod_template_spec(&mut spec.template);
}

/// Job labels default to the template's (`SetDefaults_Job`).
fn default_job_labels(job: &mut Job) {
    let labels = job
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone());
    if let Some(labels) = labels
        && job.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty)
    {
        job.metadata.labels = Some(labels).filter(|l| !l.is_empty());
    }
}

/// `SetObjectDefaults_Job`: completions and parallelism 1 (parallelism alone when completions
/// is set), backoffLimit 6 (MaxInt32 with a per-index limit), labels from the template,
/// completionMode NonIndexed, suspend false, podReplacementPolicy (Failed with a pod failure
/// policy, else TerminatingOrFailed), manualSelector false, the nested defaults; plus
/// `status: {}`.
pub fn default_job(job: &mut Job) {
    let spec = job.spec.get_or_insert_with(Default::default);
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
        spec.parallelism = Some(1);
    }
    spec.parallelism.get_or_insert(1);
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    spec.completion_mode.get_or_insert_with(|| NON_INDEXED.to_owned());
    spec.suspend.get_or_insert(false);
    if spec.pod_replacement_policy.is_none() {
        spec.pod_replacement_policy = Some(
            if spec.pod_failure_policy.is_some() {
                "Failed"
            } else {
                "TerminatingOrFailed"
            }
            .to_owned(),
        );
    }
    spec.manual_selector.get_or_insert(false);
    default_job_labels(job);
    if let Some(spec) = &mut job.spec {
        default_job_spec_nested(spec);
    }
    job.status.get_or_insert_with(Default::default);
}

/// `generateSelector`: the job-name and controller-uid labels (legacy and prefixed) on the
/// template, and the prefixed controller-uid in the selector.
fn generate_selector(job: &mut Job) {
    let name = str_of(&job.metadata.name).to_owned();
    let uid = str_of(&job.metadata.uid).to_owned();
    let Some(spec) = &mut job.spec else {
        return;
    };
    let labels = spec
        .template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default);
    for key in [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL] {
        labels.entry(key.to_owned()).or_insert_with(|| name.clone());
    }
    for key in [LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL] {
        labels.entry(key.to_owned()).or_insert_with(|| uid.clone());
    }
    spec.selector
        .get_or_insert_with(Default::default)
        .match_labels
        .get_or_insert_with(Default::default)
        .entry(CONTROLLER_UID_LABEL.to_owned())
        .or_insert(uid);
}

// ---------------------------------------------------------------------------------------------
// Go renderings of internal types
// ---------------------------------------------------------------------------------------------

fn go_exit_codes(req: &PodFailurePolicyOnExitCodesRequirement) -> GoValue {
    let values = if req.values.is_empty() {
        GoValue::Null
    } else {
        GoValue::Arr(req.values.iter().map(|v| go_int(i64::from(*v))).collect())
    };
    go_obj(vec![
        ("ContainerName", go_opt_str(req.container_name.as_ref())),
        ("Operator", go_str(&req.operator)),
        ("Values", values),
    ])
}

fn go_pattern(pattern: &PodFailurePolicyOnPodConditionsPattern) -> GoValue {
    go_obj(vec![
        ("Type", go_str(&pattern.type_)),
        ("Status", go_str(str_of(&pattern.status))),
    ])
}

fn go_rule(rule: &PodFailurePolicyRule) -> GoValue {
    let patterns = match rule.on_pod_conditions.as_deref() {
        None | Some([]) => GoValue::Null,
        Some(items) => GoValue::Arr(items.iter().map(go_pattern).collect()),
    };
    go_obj(vec![
        ("Action", go_str(&rule.action)),
        (
            "OnExitCodes",
            rule.on_exit_codes.as_ref().map_or(GoValue::Null, go_exit_codes),
        ),
        ("OnPodConditions", patterns),
    ])
}

fn go_pod_failure_policy(policy: Option<&PodFailurePolicy>) -> GoValue {
    policy.map_or(GoValue::Null, |p| {
        let rules = if p.rules.is_empty() {
            GoValue::Null
        } else {
            GoValue::Arr(p.rules.iter().map(go_rule).collect())
        };
        go_obj(vec![("Rules", rules)])
    })
}

fn go_success_rule(rule: &SuccessPolicyRule) -> GoValue {
    go_obj(vec![
        ("SucceededIndexes", go_opt_str(rule.succeeded_indexes.as_ref())),
        ("SucceededCount", go_opt_int(rule.succeeded_count)),
    ])
}

fn go_success_policy(policy: Option<&SuccessPolicy>) -> GoValue {
    policy.map_or(GoValue::Null, |p| {
        let rules = if p.rules.is_empty() {
            GoValue::Null
        } else {
            GoValue::Arr(p.rules.iter().map(go_success_rule).collect())
        };
        go_obj(vec![("Rules", rules)])
    })
}

fn go_uncounted(pods: &UncountedTerminatedPods) -> GoValue {
    let list = |items: &Option<Vec<String>>| match items {
        None => GoValue::Null,
        Some(items) => GoValue::Arr(items.iter().map(|s| go_str(s)).collect()),
    };
    go_obj(vec![
        ("Succeeded", list(&pods.succeeded)),
        ("Failed", list(&pods.failed)),
    ])
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Upstream's `JobValidationOptions`.
#[derive(Clone, Copy, Debug)]
pub struct JobValidationOptions {
    /// The pod template options.
    pub pod: PodValidationOptions,
    /// Scheduling directives of the template may change (suspended, never started job).
    pub allow_mutable_scheduling_directives: bool,
    /// The prefixed generated labels are required on the template.
    pub require_prefixed_labels: bool,
}

/// `validationOptionsForJob` (with MutablePodResourcesForSuspendedJobs and
/// MutableSchedulingDirectivesForSuspendedJobs off).
fn job_options(old: Option<&Job>) -> JobValidationOptions {
    let old_template = old.and_then(|o| o.spec.as_ref()).map(|s| &s.template);
    let mut opts = JobValidationOptions {
        pod: PodValidationOptions::for_template(old_template),
        allow_mutable_scheduling_directives: false,
        require_prefixed_labels: true,
    };
    if let Some(old) = old {
        let spec = old.spec.clone().unwrap_or_default();
        opts.pod.allow_invalid_label_value_in_selector = opts.pod.allow_invalid_label_value_in_selector
            || label_selector_has_invalid_label_value(spec.selector.as_ref());
        let suspended = spec.suspend == Some(true);
        let not_started = old.status.as_ref().is_none_or(|s| s.start_time.is_none());
        opts.allow_mutable_scheduling_directives = suspended && not_started;
        let labels = spec.template.metadata.as_ref().and_then(|m| m.labels.as_ref());
        opts.require_prefixed_labels =
            labels.is_some_and(|l| l.contains_key(JOB_NAME_LABEL) && l.contains_key(CONTROLLER_UID_LABEL));
    }
    opts
}

/// Upstream's `ValidateHasLabel`.
fn validate_has_label(meta: &ObjectMeta, path: &Path, key: &str, expected: &str) -> ErrorList {
    let path = path.child("labels").key(key);
    let detail = format!("must be '{expected}'");
    match meta.labels.as_ref().and_then(|l| l.get(key)) {
        None => vec![FieldError::required(&path, detail)],
        Some(actual) if actual != expected => {
            vec![FieldError::invalid(&path, opt_bad(meta.labels.as_ref()), detail)]
        }
        Some(_) => Vec::new(),
    }
}

/// Upstream's `validateGeneratedSelector`.
fn validate_generated_selector(job: &Job, validate_batch_labels: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(spec) = &job.spec else {
        return errs;
    };
    if spec.manual_selector == Some(true) {
        return errs;
    }
    let Some(selector) = &spec.selector else {
        return errs;
    };
    let uid = str_of(&job.metadata.uid);
    let name = str_of(&job.metadata.name);
    if uid.is_empty() {
        errs.push(FieldError::required(&meta_path().child("uid"), ""));
    }
    let template_meta = spec.template.metadata.clone().unwrap_or_default();
    let meta_path = Path::new("spec").child("template").child("metadata");
    errs.extend(validate_has_label(
        &template_meta,
        &meta_path,
        LEGACY_CONTROLLER_UID_LABEL,
        uid,
    ));
    errs.extend(validate_has_label(
        &template_meta,
        &meta_path,
        LEGACY_JOB_NAME_LABEL,
        name,
    ));
    let mut expected = BTreeMap::new();
    if validate_batch_labels {
        errs.extend(validate_has_label(
            &template_meta,
            &meta_path,
            CONTROLLER_UID_LABEL,
            uid,
        ));
        errs.extend(validate_has_label(
            &template_meta,
            &meta_path,
            JOB_NAME_LABEL,
            name,
        ));
        expected.insert(CONTROLLER_UID_LABEL.to_owned(), uid.to_owned());
        expected.insert(JOB_NAME_LABEL.to_owned(), name.to_owned());
    }
    expected.insert(LEGACY_CONTROLLER_UID_LABEL.to_owned(), uid.to_owned());
    expected.insert(LEGACY_JOB_NAME_LABEL.to_owned(), name.to_owned());
    if let Ok(parsed) = Selector::from_label_selector(selector)
        && !parsed.matches(&expected)
    {
        errs.push(FieldError::invalid(
            &Path::new("spec").child("selector"),
            selector_bad(Some(selector)),
            "`selector` not auto-generated",
        ));
    }
    errs
}

fn nonnegative_if_set(value: Option<i64>, path: &Path) -> ErrorList {
    value.map_or_else(Vec::new, |v| validate_nonnegative_field(v, path))
}

/// Upstream's `validateJobSpec`: everything but the selector (shared with job templates).
pub fn validate_job_spec_common(spec: &JobSpec, path: &Path, opts: &PodValidationOptions) -> ErrorList {
    let mut errs = ErrorList::new();
    errs.extend(nonnegative_if_set(
        spec.parallelism.map(i64::from),
        &path.child("parallelism"),
    ));
    errs.extend(nonnegative_if_set(
        spec.completions.map(i64::from),
        &path.child("completions"),
    ));
    errs.extend(nonnegative_if_set(
        spec.active_deadline_seconds,
        &path.child("activeDeadlineSeconds"),
    ));
    errs.extend(nonnegative_if_set(
        spec.backoff_limit.map(i64::from),
        &path.child("backoffLimit"),
    ));
    errs.extend(nonnegative_if_set(
        spec.ttl_seconds_after_finished.map(i64::from),
        &path.child("ttlSecondsAfterFinished"),
    ));
    errs.extend(nonnegative_if_set(
        spec.backoff_limit_per_index.map(i64::from),
        &path.child("backoffLimitPerIndex"),
    ));
    if let Some(max_failed) = spec.max_failed_indexes {
        errs.extend(validate_nonnegative_field(
            i64::from(max_failed),
            &path.child("maxFailedIndexes"),
        ));
        if spec.backoff_limit_per_index.is_none() {
            errs.push(FieldError::required(
                &path.child("backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
    }
    if let Some(managed_by) = &spec.managed_by {
        errs.extend(is_domain_prefixed_path(&path.child("managedBy"), managed_by));
        if managed_by.len() > MAX_MANAGED_BY_LENGTH {
            errs.push(FieldError::too_long(
                &path.child("managedBy"),
                MAX_MANAGED_BY_LENGTH,
            ));
        }
    }
    let mode = spec.completion_mode.as_deref();
    if let Some(mode) = mode {
        if mode != NON_INDEXED && mode != INDEXED {
            errs.push(FieldError::not_supported(
                &path.child("completionMode"),
                mode,
                &[NON_INDEXED, INDEXED],
            ));
        }
        if mode == INDEXED {
            errs.extend(validate_indexed_limits(spec, path));
        }
    }
    if matches!(mode, None | Some(NON_INDEXED)) {
        if let Some(per_index) = spec.backoff_limit_per_index {
            errs.push(FieldError::invalid(
                &path.child("backoffLimitPerIndex"),
                per_index,
                "requires indexed completion mode",
            ));
        }
        if let Some(max_failed) = spec.max_failed_indexes {
            errs.push(FieldError::invalid(
                &path.child("maxFailedIndexes"),
                max_failed,
                "requires indexed completion mode",
            ));
        }
    }
    if let Some(policy) = &spec.pod_failure_policy {
        errs.extend(validate_pod_failure_policy(
            spec,
            policy,
            &path.child("podFailurePolicy"),
        ));
    }
    if let Some(policy) = &spec.success_policy {
        if mode != Some(INDEXED) {
            errs.push(FieldError::invalid(
                &path.child("successPolicy"),
                go_bad(&go_success_policy(Some(policy))),
                "requires indexed completion mode",
            ));
        } else {
            errs.extend(validate_success_policy(
                spec,
                policy,
                &path.child("successPolicy"),
            ));
        }
    }
    errs.extend(validate_pod_replacement_policy(
        spec,
        &path.child("podReplacementPolicy"),
    ));
    let template_path = path.child("template");
    errs.extend(validate_pod_template_spec(&spec.template, &template_path, opts));
    let restart_policy = spec
        .template
        .spec
        .as_ref()
        .map(|s| str_of(&s.restart_policy))
        .unwrap_or_default();
    let restart_path = template_path.child("spec").child("restartPolicy");
    if restart_policy == "Always" || restart_policy.is_empty() {
        errs.push(FieldError::required(
            &restart_path,
            "valid values: \"OnFailure\", \"Never\"",
        ));
    } else if restart_policy != "OnFailure" && restart_policy != "Never" {
        errs.push(FieldError::not_supported(
            &restart_path,
            restart_policy,
            &["OnFailure", "Never"],
        ));
    } else if spec.pod_failure_policy.is_some() && restart_policy != "Never" {
        errs.push(FieldError::invalid(
            &restart_path,
            restart_policy,
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
    errs
}

fn validate_indexed_limits(spec: &JobSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if spec.completions.is_none() {
        errs.push(FieldError::required(
            &path.child("completions"),
            "when completion mode is Indexed",
        ));
    }
    if let Some(parallelism) = spec.parallelism.filter(|p| *p > MAX_PARALLELISM_FOR_INDEXED_JOB) {
        errs.push(FieldError::invalid(
            &path.child("parallelism"),
            parallelism,
            format!("must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed"),
        ));
    }
    if let (Some(completions), Some(max_failed)) = (spec.completions, spec.max_failed_indexes)
        && max_failed > completions
    {
        errs.push(FieldError::invalid(
            &path.child("maxFailedIndexes"),
            max_failed,
            "must be less than or equal to completions",
        ));
    }
    if let Some(max_failed) = spec
        .max_failed_indexes
        .filter(|m| *m > MAX_FAILED_INDEXES_FOR_INDEXED_JOB)
    {
        errs.push(FieldError::invalid(
            &path.child("maxFailedIndexes"),
            max_failed,
            format!("must be less than or equal to {MAX_FAILED_INDEXES_FOR_INDEXED_JOB}"),
        ));
    }
    if spec.completions.is_some_and(|c| c > COMPLETIONS_SOFT_LIMIT) && spec.backoff_limit_per_index.is_some()
    {
        if spec.max_failed_indexes.is_none() {
            errs.push(FieldError::required(
                &path.child("maxFailedIndexes"),
                format!("must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}"),
            ));
        }
        if let Some(parallelism) = spec
            .parallelism
            .filter(|p| *p > PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS)
        {
            errs.push(FieldError::invalid(
                &path.child("parallelism"),
                parallelism,
                format!("must be less than or equal to {PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS} when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"),
            ));
        }
        if let Some(max_failed) = spec
            .max_failed_indexes
            .filter(|m| *m > MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS)
        {
            errs.push(FieldError::invalid(
                &path.child("maxFailedIndexes"),
                max_failed,
                format!("must be less than or equal to {MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS} when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"),
            ));
        }
    }
    errs
}

fn validate_pod_failure_policy(spec: &JobSpec, policy: &PodFailurePolicy, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let rules_path = path.child("rules");
    if policy.rules.len() > MAX_POD_FAILURE_POLICY_RULES {
        errs.push(FieldError::too_many(
            &rules_path,
            Some(policy.rules.len()),
            MAX_POD_FAILURE_POLICY_RULES,
        ));
    }
    let pod = spec.template.spec.clone().unwrap_or_default();
    let container_names: BTreeSet<&str> = pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
        .map(|c| c.name.as_str())
        .collect();
    for (i, rule) in policy.rules.iter().enumerate() {
        errs.extend(validate_pod_failure_policy_rule(
            spec,
            rule,
            &rules_path.index(i),
            &container_names,
        ));
    }
    errs
}

fn validate_pod_failure_policy_rule(
    spec: &JobSpec,
    rule: &PodFailurePolicyRule,
    path: &Path,
    container_names: &BTreeSet<&str>,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let action_path = path.child("action");
    if rule.action.is_empty() {
        errs.push(FieldError::required(
            &action_path,
            format!("valid values: {}", go_quoted_list(POD_FAILURE_POLICY_ACTIONS)),
        ));
    } else if rule.action == "FailIndex" {
        if spec.backoff_limit_per_index.is_none() {
            errs.push(FieldError::invalid(
                &action_path,
                rule.action.as_str(),
                "requires the backoffLimitPerIndex to be set",
            ));
        }
    } else if !POD_FAILURE_POLICY_ACTIONS.contains(&rule.action.as_str()) {
        errs.push(FieldError::not_supported(
            &action_path,
            rule.action.as_str(),
            POD_FAILURE_POLICY_ACTIONS,
        ));
    }
    let patterns = rule.on_pod_conditions.as_deref().unwrap_or_default();
    if let Some(exit_codes) = &rule.on_exit_codes {
        errs.extend(validate_on_exit_codes(
            exit_codes,
            &path.child("onExitCodes"),
            container_names,
        ));
    }
    if !patterns.is_empty() {
        errs.extend(validate_on_pod_conditions(
            patterns,
            &path.child("onPodConditions"),
        ));
    }
    if rule.on_exit_codes.is_some() && !patterns.is_empty() {
        errs.push(FieldError::invalid(
            path,
            BadValue::Omitted,
            "specifying both OnExitCodes and OnPodConditions is not supported",
        ));
    }
    if rule.on_exit_codes.is_none() && patterns.is_empty() {
        errs.push(FieldError::invalid(
            path,
            BadValue::Omitted,
            "specifying one of OnExitCodes and OnPodConditions is required",
        ));
    }
    errs
}

fn validate_on_pod_conditions(patterns: &[PodFailurePolicyOnPodConditionsPattern], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if patterns.len() > MAX_ON_POD_CONDITIONS_PATTERNS {
        errs.push(FieldError::too_many(
            path,
            Some(patterns.len()),
            MAX_ON_POD_CONDITIONS_PATTERNS,
        ));
    }
    for (j, pattern) in patterns.iter().enumerate() {
        let pattern_path = path.index(j);
        errs.extend(validate_qualified_name(
            &pattern.type_,
            &pattern_path.child("type"),
        ));
        let status = str_of(&pattern.status);
        let status_path = pattern_path.child("status");
        if status.is_empty() {
            errs.push(FieldError::required(
                &status_path,
                format!("valid values: {}", go_quoted_list(CONDITION_STATUSES)),
            ));
        } else if !CONDITION_STATUSES.contains(&status) {
            errs.push(FieldError::not_supported(
                &status_path,
                status,
                CONDITION_STATUSES,
            ));
        }
    }
    errs
}

fn validate_on_exit_codes(
    req: &PodFailurePolicyOnExitCodesRequirement,
    path: &Path,
    container_names: &BTreeSet<&str>,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let operator_path = path.child("operator");
    if req.operator.is_empty() {
        errs.push(FieldError::required(
            &operator_path,
            format!("valid values: {}", go_quoted_list(EXIT_CODES_OPERATORS)),
        ));
    } else if !EXIT_CODES_OPERATORS.contains(&req.operator.as_str()) {
        errs.push(FieldError::not_supported(
            &operator_path,
            req.operator.as_str(),
            EXIT_CODES_OPERATORS,
        ));
    }
    if let Some(name) = &req.container_name
        && !container_names.contains(name.as_str())
    {
        errs.push(FieldError::invalid(
            &path.child("containerName"),
            name.as_str(),
            "must be one of the container or initContainer names in the pod template",
        ));
    }
    let values_path = path.child("values");
    if req.values.is_empty() {
        errs.push(FieldError::invalid(
            &values_path,
            BadValue::Plain("null".to_owned()),
            "at least one value is required",
        ));
    } else if req.values.len() > MAX_ON_EXIT_CODES_VALUES {
        errs.push(FieldError::too_many(
            &values_path,
            Some(req.values.len()),
            MAX_ON_EXIT_CODES_VALUES,
        ));
    }
    let mut ordered = true;
    let mut seen = BTreeSet::new();
    for (j, value) in req.values.iter().enumerate() {
        let value_path = values_path.index(j);
        if req.operator == "In" && *value == 0 {
            errs.push(FieldError::invalid(
                &value_path,
                *value,
                "must not be 0 for the In operator",
            ));
        }
        if !seen.insert(*value) {
            errs.push(FieldError::duplicate(&value_path, *value));
        }
        if j > 0 && req.values[j - 1] > *value {
            ordered = false;
        }
    }
    if !ordered {
        errs.push(FieldError::invalid(
            &values_path,
            bad_value(&req.values),
            "must be ordered",
        ));
    }
    errs
}

fn validate_success_policy(spec: &JobSpec, policy: &SuccessPolicy, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let rules_path = path.child("rules");
    if policy.rules.is_empty() {
        errs.push(FieldError::required(
            &rules_path,
            "at least one rules must be specified when the successPolicy is specified",
        ));
    }
    if policy.rules.len() > MAX_SUCCESS_POLICY_RULES {
        errs.push(FieldError::too_many(
            &rules_path,
            Some(policy.rules.len()),
            MAX_SUCCESS_POLICY_RULES,
        ));
    }
    let completions = spec.completions.unwrap_or(0);
    for (i, rule) in policy.rules.iter().enumerate() {
        let rule_path = rules_path.index(i);
        if rule.succeeded_count.is_none() && rule.succeeded_indexes.is_none() {
            errs.push(FieldError::required(
                &rule_path,
                "at least one of succeededCount or succeededIndexes must be specified",
            ));
        }
        let mut total = 0;
        if let Some(indexes) = &rule.succeeded_indexes {
            let indexes_path = rule_path.child("succeededIndexes");
            if indexes.len() > MAX_SUCCEEDED_INDEXES_LENGTH {
                errs.push(FieldError::too_long(&indexes_path, MAX_SUCCEEDED_INDEXES_LENGTH));
            }
            match validate_indexes_format(indexes, completions) {
                Ok(count) => total = count,
                Err(err) => errs.push(FieldError::invalid(
                    &indexes_path,
                    indexes.as_str(),
                    format!("error parsing succeededIndexes: {err}"),
                )),
            }
        }
        if let Some(count) = rule.succeeded_count {
            let count_path = rule_path.child("succeededCount");
            errs.extend(validate_nonnegative_field(i64::from(count), &count_path));
            if count > completions {
                errs.push(FieldError::invalid(
                    &count_path,
                    count,
                    format!(
                        "must be less than or equal to {completions} (the number of specified completions)"
                    ),
                ));
            }
            if rule.succeeded_indexes.is_some() && i64::from(count) > total {
                errs.push(FieldError::invalid(
                    &count_path,
                    count,
                    format!("must be less than or equal to {total} (the number of indexes in the specified succeededIndexes field)"),
                ));
            }
        }
    }
    errs
}

fn validate_pod_replacement_policy(spec: &JobSpec, path: &Path) -> ErrorList {
    let Some(policy) = spec.pod_replacement_policy.as_deref() else {
        return Vec::new();
    };
    if spec.pod_failure_policy.is_some() {
        if policy != "Failed" {
            return vec![FieldError::not_supported(path, policy, &["Failed"])];
        }
    } else if policy != "Failed" && policy != "TerminatingOrFailed" {
        return vec![FieldError::not_supported(
            path,
            policy,
            &["Failed", "TerminatingOrFailed"],
        )];
    }
    Vec::new()
}

/// Go's `strconv.Atoi` as the index parser uses it.
fn go_atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax".to_owned());
    }
    s.parse::<i64>().map_err(|_| "value out of range".to_owned())
}

/// Upstream's `parseIndexInterval`.
fn parse_index_interval(interval: &str, completions: i32) -> Result<(i64, i64), String> {
    let limits: Vec<&str> = interval.split('-').collect();
    if limits.len() > 2 {
        return Err(format!(
            "the fragment {interval:?} violates the requirement that an index interval can have at most two parts separated by '-'"
        ));
    }
    let parse = |s: &str| -> Result<i64, String> {
        let x = go_atoi(s).map_err(|_| format!("cannot convert string to integer for index: {s:?}"))?;
        if x >= i64::from(completions) {
            return Err(format!("too large index: {s:?}"));
        }
        Ok(x)
    };
    let x = parse(limits[0])?;
    if let Some(second) = limits.get(1) {
        let y = parse(second)?;
        if x >= y {
            return Err(format!("non-increasing order, previous: {x}, current: {y}"));
        }
        return Ok((x, y));
    }
    Ok((x, x))
}

/// Upstream's `validateIndexesFormat`: the number of indexes of a valid index list.
pub fn validate_indexes_format(indexes: &str, completions: i32) -> Result<i64, String> {
    if indexes.is_empty() {
        return Ok(0);
    }
    let mut last: Option<i64> = None;
    let mut total = 0;
    for interval in indexes.split(',') {
        let (x, y) = parse_index_interval(interval, completions)?;
        if let Some(last) = last
            && last >= x
        {
            return Err(format!("non-increasing order, previous: {last}, current: {x}"));
        }
        total += y - x + 1;
        last = Some(y);
    }
    Ok(total)
}

/// Upstream's `validateFailedIndexesNotOverlapCompleted`.
fn failed_indexes_overlap(completed: &str, failed: &str, completions: i32) -> Option<String> {
    if completed.is_empty() || failed.is_empty() {
        return None;
    }
    let completed: Vec<&str> = completed.split(',').collect();
    let failed: Vec<&str> = failed.split(',').collect();
    let (mut ci, mut fi) = (0, 0);
    let mut c = parse_index_interval(completed[0], completions);
    let mut f = parse_index_interval(failed[0], completions);
    while ci < completed.len() && fi < failed.len() {
        match (&c, &f) {
            (Err(_), _) => {
                ci += 1;
                if ci < completed.len() {
                    c = parse_index_interval(completed[ci], completions);
                }
            }
            (_, Err(_)) => {
                fi += 1;
                if fi < failed.len() {
                    f = parse_index_interval(failed[fi], completions);
                }
            }
            (Ok((cx, cy)), Ok((fx, fy))) => {
                if cx <= fy && fx <= cy {
                    return Some(format!(
                        "failedIndexes and completedIndexes overlap at index: {}",
                        (*cx).max(*fx)
                    ));
                }
                if cx <= fx {
                    ci += 1;
                    if ci < completed.len() {
                        c = parse_index_interval(completed[ci], completions);
                    }
                } else {
                    fi += 1;
                    if fi < failed.len() {
                        f = parse_index_interval(failed[fi], completions);
                    }
                }
            }
        }
    }
    None
}

/// Upstream's `ValidateJobSpec`: [`validate_job_spec_common`] plus the selector.
pub fn validate_job_spec(spec: &JobSpec, path: &Path, opts: &PodValidationOptions) -> ErrorList {
    let mut errs = validate_job_spec_common(spec, path, opts);
    let selector_path = path.child("selector");
    match &spec.selector {
        None => errs.push(FieldError::required(&selector_path, "")),
        Some(selector) => errs.extend(validate_label_selector(
            Some(selector),
            LabelSelectorValidationOptions {
                allow_invalid_label_value_in_selector: opts.allow_invalid_label_value_in_selector,
                ..Default::default()
            },
            &selector_path,
        )),
    }
    if let Ok(selector) = Selector::from_optional_label_selector(spec.selector.as_ref())
        && !selector_matches_template(&selector, &spec.template)
    {
        errs.push(selector_mismatch(&path.child("template"), &spec.template));
    }
    errs
}

/// Upstream's `ValidateJob`.
fn validate_job(job: &Job, opts: &JobValidationOptions) -> ErrorList {
    let mut errs = validate_object_meta(&job.metadata, true, name_is_dns_subdomain, &meta_path());
    errs.extend(validate_generated_selector(job, opts.require_prefixed_labels));
    let spec = job.spec.clone().unwrap_or_default();
    errs.extend(validate_job_spec(&spec, &Path::new("spec"), &opts.pod));
    if spec.completion_mode.as_deref() == Some(INDEXED)
        && let Some(completions) = spec.completions.filter(|c| *c > 0)
    {
        let name = str_of(&job.metadata.name);
        let hostname = format!("{name}-{}", completions - 1);
        if !is_dns1123_label(&hostname).is_empty() {
            errs.push(FieldError::invalid(
                &meta_path().child("name"),
                name,
                format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
    errs
}

/// Upstream's `validatePodTemplateUpdate` (with AllowMutablePodResources off: the template is
/// immutable, up to the scheduling directives of a suspended job that never started).
fn validate_pod_template_update(
    spec: &JobSpec,
    old_spec: &JobSpec,
    path: &Path,
    opts: &JobValidationOptions,
) -> ErrorList {
    let template = &spec.template;
    let mut old_template = old_spec.template.clone();
    if opts.allow_mutable_scheduling_directives {
        relax_scheduling_directives(template, &mut old_template);
    }
    if *template != old_template {
        return vec![FieldError::invalid(
            &path.child("template"),
            go_bad(&go_pod_template(template)),
            FIELD_IMMUTABLE_ERROR_MSG,
        )];
    }
    Vec::new()
}

fn relax_scheduling_directives(template: &PodTemplateSpec, old: &mut PodTemplateSpec) {
    let new_spec = template.spec.clone().unwrap_or_default();
    let old_spec = old.spec.get_or_insert_with(Default::default);
    match (&new_spec.affinity, &mut old_spec.affinity) {
        (None, Some(old_affinity)) => {
            old_affinity.node_affinity = None;
            if *old_affinity == Affinity::default() {
                old_spec.affinity = None;
            }
        }
        (Some(new_affinity), None) => {
            old_spec.affinity = Some(Affinity {
                node_affinity: new_affinity.node_affinity.clone(),
                ..Default::default()
            });
        }
        (Some(new_affinity), Some(old_affinity)) => {
            old_affinity.node_affinity.clone_from(&new_affinity.node_affinity);
        }
        (None, None) => {}
    }
    old_spec.node_selector.clone_from(&new_spec.node_selector);
    old_spec.tolerations.clone_from(&new_spec.tolerations);
    old_spec.scheduling_gates.clone_from(&new_spec.scheduling_gates);
    let new_meta = template.metadata.clone().unwrap_or_default();
    let old_meta = old.metadata.get_or_insert_with(Default::default);
    old_meta.annotations = new_meta.annotations;
    old_meta.labels = new_meta.labels;
}

/// Upstream's `validateCompletions`.
fn validate_completions(spec: &JobSpec, old_spec: &JobSpec, path: &Path) -> ErrorList {
    if spec.completion_mode.as_deref() != Some(INDEXED) {
        return validate_immutable_field(&spec.completions, &old_spec.completions, path);
    }
    if spec.completions == old_spec.completions {
        return Vec::new();
    }
    let Some(completions) = spec.completions else {
        return Vec::new();
    };
    if Some(completions) != spec.parallelism {
        return vec![FieldError::invalid(
            path,
            completions,
            "can only be modified in tandem with spec.parallelism",
        )];
    }
    Vec::new()
}

/// Upstream's `ValidateJobSpecUpdate`.
fn validate_job_spec_update(spec: &JobSpec, old_spec: &JobSpec, opts: &JobValidationOptions) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = validate_job_spec(spec, &path, &opts.pod);
    errs.extend(validate_completions(spec, old_spec, &path.child("completions")));
    errs.extend(immutable_selector(
        spec.selector.as_ref(),
        old_spec.selector.as_ref(),
        &path.child("selector"),
    ));
    errs.extend(validate_pod_template_update(spec, old_spec, &path, opts));
    errs.extend(validate_immutable_field(
        &spec.completion_mode,
        &old_spec.completion_mode,
        &path.child("completionMode"),
    ));
    if spec.pod_failure_policy != old_spec.pod_failure_policy {
        errs.push(FieldError::invalid(
            &path.child("podFailurePolicy"),
            go_bad(&go_pod_failure_policy(spec.pod_failure_policy.as_ref())),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    errs.extend(validate_immutable_field(
        &spec.backoff_limit_per_index,
        &old_spec.backoff_limit_per_index,
        &path.child("backoffLimitPerIndex"),
    ));
    errs.extend(validate_immutable_field(
        &spec.managed_by,
        &old_spec.managed_by,
        &path.child("managedBy"),
    ));
    if spec.success_policy != old_spec.success_policy {
        errs.push(FieldError::invalid(
            &path.child("successPolicy"),
            go_bad(&go_success_policy(spec.success_policy.as_ref())),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Status
// ---------------------------------------------------------------------------------------------

fn conditions(job: &Job) -> &[JobCondition] {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
}

/// Upstream's `IsConditionTrue`.
fn condition_true(job: &Job, condition: &str) -> bool {
    conditions(job)
        .iter()
        .any(|c| c.type_ == condition && c.status == "True")
}

fn condition_false(job: &Job, condition: &str) -> bool {
    conditions(job)
        .iter()
        .any(|c| c.type_ == condition && c.status == "False")
}

fn is_finished(job: &Job) -> bool {
    condition_true(job, "Complete") || condition_true(job, "Failed")
}

/// Upstream's `JobStatusValidationOptions` as `getStatusValidationOptions` computes them with
/// JobManagedBy on.
#[derive(Clone, Copy, Debug, Default)]
struct StatusOptions {
    reject_decreasing_succeeded: bool,
    reject_invalid_completed_indexes: bool,
    reject_invalid_failed_indexes: bool,
    reject_failed_indexes_overlapping_completed: bool,
    reject_completed_indexes_for_non_indexed: bool,
    reject_failed_indexes_without_backoff_per_index: bool,
    reject_failed_without_failure_target: bool,
    reject_complete_without_success_criteria: bool,
    reject_finished_with_active: bool,
    reject_finished_without_start_time: bool,
    reject_finished_with_uncounted: bool,
    reject_start_time_update_unsuspended: bool,
    reject_completion_before_start: bool,
    reject_complete_without_completion_time: bool,
    reject_not_complete_with_completion_time: bool,
    reject_complete_with_failed: bool,
    reject_complete_with_failure_target: bool,
    reject_more_ready_than_active: bool,
    reject_finished_with_terminating: bool,
}

fn status_options(new: &Job, old: &Job) -> StatusOptions {
    let spec = new.spec.clone().unwrap_or_default();
    let status = new.status.clone().unwrap_or_default();
    let old_status = old.status.clone().unwrap_or_default();
    let is_indexed = spec.completion_mode.as_deref() == Some(INDEXED);
    let changed = |c: &str| condition_true(old, c) != condition_true(new, c);
    let finished_changed = is_finished(old) != is_finished(new);
    let complete_changed = changed("Complete");
    let failed_changed = changed("Failed");
    let failure_target_changed = changed("FailureTarget");
    let success_criteria_changed = changed("SuccessCriteriaMet");
    let completed_indexes_changed =
        str_of(&old_status.completed_indexes) != str_of(&status.completed_indexes);
    let failed_indexes_changed = old_status.failed_indexes != status.failed_indexes;
    let active_changed = old_status.active.unwrap_or(0) != status.active.unwrap_or(0);
    let start_time_changed = old_status.start_time != status.start_time;
    let completion_time_changed = old_status.completion_time != status.completion_time;
    let uncounted_changed = old_status.uncounted_terminated_pods != status.uncounted_terminated_pods;
    let ready_changed = old_status.ready != status.ready;
    let terminating_changed = old_status.terminating != status.terminating;
    let suspended_zero = spec.suspend == Some(true) && spec.completions == Some(0);
    let resuming = condition_true(old, "Suspended") && condition_false(new, "Suspended");
    StatusOptions {
        reject_decreasing_succeeded: !is_indexed || spec.completions != spec.parallelism,
        reject_invalid_completed_indexes: completed_indexes_changed,
        reject_invalid_failed_indexes: failed_indexes_changed,
        reject_completed_indexes_for_non_indexed: completed_indexes_changed,
        reject_failed_indexes_without_backoff_per_index: failed_indexes_changed,
        reject_failed_indexes_overlapping_completed: failed_indexes_changed || completed_indexes_changed,
        reject_failed_without_failure_target: failed_changed || failed_indexes_changed,
        reject_complete_without_success_criteria: complete_changed || success_criteria_changed,
        reject_finished_with_active: finished_changed || active_changed,
        reject_finished_without_start_time: (finished_changed || start_time_changed) && !suspended_zero,
        reject_finished_with_uncounted: finished_changed || uncounted_changed,
        reject_start_time_update_unsuspended: start_time_changed && !resuming,
        reject_completion_before_start: start_time_changed || completion_time_changed,
        reject_not_complete_with_completion_time: complete_changed || completion_time_changed,
        reject_complete_without_completion_time: complete_changed || completion_time_changed,
        reject_complete_with_failed: complete_changed || failed_changed,
        reject_complete_with_failure_target: complete_changed || failure_target_changed,
        reject_more_ready_than_active: ready_changed || active_changed,
        reject_finished_with_terminating: finished_changed || terminating_changed,
    }
}

fn validate_uids(uids: &Option<Vec<String>>, path: &Path, seen: &mut BTreeSet<String>, errs: &mut ErrorList) {
    for (i, uid) in uids.iter().flatten().enumerate() {
        let p = path.index(i);
        if uid.is_empty() {
            errs.push(FieldError::invalid(&p, "", "must not be empty"));
        } else if !seen.insert(uid.clone()) {
            errs.push(FieldError::duplicate(&p, uid.as_str()));
        }
    }
}

/// Upstream's `validateJobStatus`.
fn validate_job_status(job: &Job, opts: &StatusOptions) -> ErrorList {
    let path = Path::new("status");
    let status = job.status.clone().unwrap_or_default();
    let spec = job.spec.clone().unwrap_or_default();
    let active = status.active.unwrap_or(0);
    let mut errs = validate_nonnegative_field(i64::from(active), &path.child("active"));
    errs.extend(validate_nonnegative_field(
        i64::from(status.succeeded.unwrap_or(0)),
        &path.child("succeeded"),
    ));
    errs.extend(validate_nonnegative_field(
        i64::from(status.failed.unwrap_or(0)),
        &path.child("failed"),
    ));
    errs.extend(nonnegative_if_set(
        status.ready.map(i64::from),
        &path.child("ready"),
    ));
    errs.extend(nonnegative_if_set(
        status.terminating.map(i64::from),
        &path.child("terminating"),
    ));
    if let Some(pods) = &status.uncounted_terminated_pods {
        let uncounted = path.child("uncountedTerminatedPods");
        let mut seen = BTreeSet::new();
        validate_uids(
            &pods.succeeded,
            &uncounted.child("succeeded"),
            &mut seen,
            &mut errs,
        );
        validate_uids(&pods.failed, &uncounted.child("failed"), &mut seen, &mut errs);
    }
    let complete = condition_true(job, "Complete");
    let failed = condition_true(job, "Failed");
    let failure_target = condition_true(job, "FailureTarget");
    let success_criteria = condition_true(job, "SuccessCriteriaMet");
    let finished = is_finished(job);
    let conditions_path = path.child("conditions");
    let condition_error = |detail: &str| FieldError::invalid(&conditions_path, BadValue::Omitted, detail);
    if opts.reject_complete_with_failed && complete && failed {
        errs.push(condition_error(
            "cannot set Complete=True and Failed=true conditions",
        ));
    }
    if opts.reject_complete_with_failure_target && complete && failure_target {
        errs.push(condition_error(
            "cannot set Complete=True and FailureTarget=true conditions",
        ));
    }
    if opts.reject_not_complete_with_completion_time
        && let Some(time) = &status.completion_time
        && !complete
    {
        errs.push(FieldError::invalid(
            &path.child("completionTime"),
            bad_value(time),
            "cannot set completionTime when there is no Complete=True condition",
        ));
    }
    if opts.reject_complete_without_completion_time && status.completion_time.is_none() && complete {
        errs.push(FieldError::required(
            &path.child("completionTime"),
            "completionTime is required for Complete jobs",
        ));
    }
    if opts.reject_completion_before_start
        && let (Some(start), Some(completion)) = (&status.start_time, &status.completion_time)
        && completion.0 < start.0
    {
        errs.push(FieldError::invalid(
            &path.child("completionTime"),
            bad_value(completion),
            "must be equal to or after `startTime`",
        ));
    }
    if opts.reject_failed_without_failure_target && failed && !failure_target {
        errs.push(condition_error(
            "cannot set Failed=True condition without the FailureTarget=true condition",
        ));
    }
    if opts.reject_complete_without_success_criteria && complete && !success_criteria {
        errs.push(condition_error(
            "cannot set Complete=True condition without the SuccessCriteriaMet=true condition",
        ));
    }
    if opts.reject_finished_with_active && active > 0 && finished {
        errs.push(FieldError::invalid(
            &path.child("active"),
            active,
            "active>0 is invalid for finished job",
        ));
    }
    if opts.reject_finished_without_start_time && status.start_time.is_none() && finished {
        errs.push(FieldError::required(
            &path.child("startTime"),
            "startTime is required for finished job",
        ));
    }
    if opts.reject_finished_with_uncounted
        && finished
        && let Some(pods) = &status.uncounted_terminated_pods
        && pods.failed.iter().flatten().count() + pods.succeeded.iter().flatten().count() > 0
    {
        errs.push(FieldError::invalid(
            &path.child("uncountedTerminatedPods"),
            go_bad(&go_uncounted(pods)),
            "must be empty for finished job",
        ));
    }
    let completed_indexes = str_of(&status.completed_indexes);
    if opts.reject_invalid_completed_indexes
        && let Some(completions) = spec.completions
        && let Err(err) = validate_indexes_format(completed_indexes, completions)
    {
        errs.push(FieldError::invalid(
            &path.child("completedIndexes"),
            completed_indexes,
            format!("error parsing completedIndexes: {err}"),
        ));
    }
    if opts.reject_invalid_failed_indexes
        && let (Some(completions), Some(_), Some(failed_indexes)) = (
            spec.completions,
            spec.backoff_limit_per_index,
            &status.failed_indexes,
        )
        && let Err(err) = validate_indexes_format(failed_indexes, completions)
    {
        errs.push(FieldError::invalid(
            &path.child("failedIndexes"),
            failed_indexes.as_str(),
            format!("error parsing failedIndexes: {err}"),
        ));
    }
    let is_indexed = spec.completion_mode.as_deref() == Some(INDEXED);
    if opts.reject_completed_indexes_for_non_indexed && !completed_indexes.is_empty() && !is_indexed {
        errs.push(FieldError::invalid(
            &path.child("completedIndexes"),
            completed_indexes,
            "cannot set non-empty completedIndexes when non-indexed completion mode",
        ));
    }
    if opts.reject_failed_indexes_without_backoff_per_index
        && spec.backoff_limit_per_index.is_none()
        && let Some(failed_indexes) = &status.failed_indexes
    {
        errs.push(FieldError::invalid(
            &path.child("failedIndexes"),
            failed_indexes.as_str(),
            "cannot set non-null failedIndexes when backoffLimitPerIndex is null",
        ));
    }
    if opts.reject_failed_indexes_overlapping_completed
        && let (Some(completions), Some(failed_indexes)) = (spec.completions, &status.failed_indexes)
        && let Some(err) = failed_indexes_overlap(completed_indexes, failed_indexes, completions)
    {
        errs.push(FieldError::invalid(
            &path.child("failedIndexes"),
            failed_indexes.as_str(),
            err,
        ));
    }
    if opts.reject_finished_with_terminating
        && let Some(terminating) = status.terminating.filter(|t| *t > 0)
        && finished
    {
        errs.push(FieldError::invalid(
            &path.child("terminating"),
            terminating,
            "terminating>0 is invalid for finished job",
        ));
    }
    if opts.reject_more_ready_than_active
        && let Some(ready) = status.ready.filter(|r| *r > active)
    {
        errs.push(FieldError::invalid(
            &path.child("ready"),
            ready,
            "cannot set more ready pods than active",
        ));
    }
    if success_criteria && failed {
        errs.push(condition_error(
            "cannot set SuccessCriteriaMet=True and Failed=true conditions",
        ));
    }
    if success_criteria && failure_target {
        errs.push(condition_error(
            "cannot set SuccessCriteriaMet=True and FailureTarget=true conditions",
        ));
    }
    if spec.success_policy.is_some() && !success_criteria && complete {
        errs.push(condition_error(
            "cannot set Complete=True for Job with SuccessPolicy unless SuccessCriteriaMet=True",
        ));
    }
    errs
}

/// Upstream's `ValidateJobStatusUpdate`.
fn validate_job_status_update(job: &Job, old: &Job, opts: &StatusOptions) -> ErrorList {
    let path = Path::new("status");
    let mut errs = validate_job_status(job, opts);
    for condition in ["Failed", "Complete", "FailureTarget"] {
        if condition_true(old, condition) && !condition_true(job, condition) {
            errs.push(FieldError::invalid(
                &path.child("conditions"),
                BadValue::Omitted,
                format!("cannot disable the terminal {condition}=True condition"),
            ));
        }
    }
    let status = job.status.clone().unwrap_or_default();
    let old_status = old.status.clone().unwrap_or_default();
    let failed = status.failed.unwrap_or(0);
    if failed < old_status.failed.unwrap_or(0) {
        errs.push(FieldError::invalid(
            &path.child("failed"),
            failed,
            "cannot decrease the failed counter",
        ));
    }
    let succeeded = status.succeeded.unwrap_or(0);
    if opts.reject_decreasing_succeeded && succeeded < old_status.succeeded.unwrap_or(0) {
        errs.push(FieldError::invalid(
            &path.child("succeeded"),
            succeeded,
            "cannot decrease the succeeded counter",
        ));
    }
    if let (Some(new_time), Some(old_time)) = (&status.completion_time, &old_status.completion_time)
        && new_time != old_time
    {
        errs.push(FieldError::invalid(
            &path.child("completionTime"),
            bad_value(new_time),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    let suspended = job.spec.as_ref().and_then(|s| s.suspend) == Some(true);
    if opts.reject_start_time_update_unsuspended
        && old_status.start_time.is_some()
        && old_status.start_time != status.start_time
        && !suspended
    {
        errs.push(FieldError::required(
            &path.child("startTime"),
            "startTime cannot be removed for unsuspended job",
        ));
    }
    let old_met = condition_true(old, "SuccessCriteriaMet");
    let new_met = condition_true(job, "SuccessCriteriaMet");
    if old_met && !new_met {
        errs.push(FieldError::invalid(
            &path.child("conditions"),
            BadValue::Omitted,
            "cannot disable the SuccessCriteriaMet=True condition",
        ));
    }
    if condition_true(old, "Complete") && !old_met && new_met {
        errs.push(FieldError::invalid(
            &path.child("conditions"),
            BadValue::Omitted,
            "cannot set SuccessCriteriaMet=True for Job already has Complete=true conditions",
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Warnings and the strategy
// ---------------------------------------------------------------------------------------------

/// Upstream's `WarningsForJobSpec`.
pub fn job_spec_warnings(path: &Path, spec: &JobSpec) -> Vec<String> {
    let mut warnings = Vec::new();
    if spec.completion_mode.as_deref() == Some(INDEXED) {
        let completions = spec.completions.unwrap_or(0);
        let parallelism = spec.parallelism.unwrap_or(0);
        if completions > COMPLETIONS_SOFT_LIMIT && parallelism > PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS {
            warnings.push(format!(
                "{path}: In Indexed Jobs with a number of completions higher than 10^5 and a parallelism higher than 10^4, Kubernetes might not be able to track completedIndexes when a big number of indexes fail"
            ));
        }
    }
    warnings.extend(pod_template_warnings(&path.child("template"), &spec.template));
    warnings
}

impl KindStrategy for Job {
    fn apply_defaults(&mut self) {
        default_job(self);
    }

    fn prepare_for_create(&mut self) {
        if self.spec.as_ref().and_then(|s| s.manual_selector) != Some(true) {
            generate_selector(self);
        }
        self.status = Some(JobStatus::default());
        self.metadata.generation = Some(1);
        if let Some(spec) = &mut self.spec {
            drop_disabled_template_fields(&mut spec.template, None);
        }
        // Upstream returns the object decoded from storage, defaulted again: the job's labels
        // default to the template's, which now carry the generated ones.
        default_job_labels(self);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
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
        validate_job(self, &job_options(None))
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let opts = job_options(Some(old));
        let mut errs = validate_job(self, &opts);
        errs.extend(validate_object_meta_update(
            &self.metadata,
            &old.metadata,
            &meta_path(),
        ));
        errs.extend(validate_job_spec_update(
            &self.spec.clone().unwrap_or_default(),
            &old.spec.clone().unwrap_or_default(),
            &opts,
        ));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let opts = status_options(self, old);
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        errs.extend(validate_job_status_update(self, old, &opts));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = dns_label_name_warning(&self.metadata).into_iter().collect();
        warnings.extend(job_spec_warnings(
            &Path::new("spec"),
            &self.spec.clone().unwrap_or_default(),
        ));
        warnings
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        let succeeded = self.status.as_ref().and_then(|s| s.succeeded).unwrap_or(0);
        vec![("status.successful", succeeded.to_string())]
    }

    const SELECTABLE_FIELDS: &'static [&'static str] = &["status.successful"];
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::workload_shared::testing::{Gvk, defaulted_pod_spec, stored};
    use crate::strategy::UpdateTarget;

    const JOB: Gvk = Gvk("batch", "v1", "Job");
    const UID: &str = "0b5c1a3e-6f2d-4c1b-9a7e-2d3f4e5a6b7c";

    fn job() -> Value {
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": UID},
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "c", "image": "perl:5.34"}], "restartPolicy": "Never"}
                }
            }
        })
    }

    #[test]
    fn defaults_like_kube_apiserver() {
        let generated = json!({
            "batch.kubernetes.io/controller-uid": UID,
            "batch.kubernetes.io/job-name": "pi",
            "controller-uid": UID,
            "job-name": "pi"
        });
        assert_eq!(
            JOB.created(job()),
            json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {
                    "name": "pi", "namespace": "default", "uid": UID, "generation": 1,
                    "labels": generated
                },
                "spec": {
                    "backoffLimit": 6,
                    "completionMode": "NonIndexed",
                    "completions": 1,
                    "manualSelector": false,
                    "parallelism": 1,
                    "podReplacementPolicy": "TerminatingOrFailed",
                    "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": UID}},
                    "suspend": false,
                    "template": {
                        "metadata": {"labels": generated},
                        "spec": defaulted_pod_spec("perl:5.34", "IfNotPresent", "Never")
                    }
                },
                "status": {}
            })
        );
    }

    #[test]
    fn defaults_depend_on_other_fields() {
        let mut j = job();
        j["spec"]["completions"] = json!(5);
        j["spec"]["completionMode"] = json!("Indexed");
        j["spec"]["backoffLimitPerIndex"] = json!(1);
        j["spec"]["podFailurePolicy"] =
            json!({"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]});
        j["metadata"]["labels"] = json!({"team": "a"});
        let out = JOB.created(j);
        assert_eq!(out["spec"]["parallelism"], json!(1));
        assert_eq!(out["spec"]["backoffLimit"], json!(2147483647));
        assert_eq!(out["spec"]["podReplacementPolicy"], json!("Failed"));
        assert_eq!(
            out["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"],
            json!([{"type": "DisruptionTarget", "status": "True"}])
        );
        assert_eq!(out["metadata"]["labels"], json!({"team": "a"}));
    }

    #[test]
    fn manual_selectors_are_kept() {
        let mut j = job();
        j["spec"]["manualSelector"] = json!(true);
        j["spec"]["selector"] = json!({"matchLabels": {"app": "pi"}});
        j["spec"]["template"]["metadata"] = json!({"labels": {"app": "pi"}});
        let out = JOB.created(j);
        assert_eq!(out["spec"]["selector"], json!({"matchLabels": {"app": "pi"}}));
        assert_eq!(out["metadata"]["labels"], json!({"app": "pi"}));
        let mut mismatch = out;
        mismatch["spec"]["selector"] = json!({"matchLabels": {"app": "other"}});
        assert_eq!(
            JOB.create_errors(mismatch),
            [
                "spec.template.metadata.labels: Invalid value: {\"app\":\"pi\"}: `selector` does not match template `labels`"
            ]
        );
    }

    fn check(mutate: impl Fn(&mut Value), expected: &[&str]) {
        let mut j = job();
        mutate(&mut j);
        assert_eq!(JOB.create_errors(j), expected);
    }

    #[test]
    fn validation() {
        check(
            |j| j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always"),
            &["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""],
        );
        check(
            |j| {
                j["spec"]["parallelism"] = json!(-1);
                j["spec"]["completions"] = json!(-2);
                j["spec"]["backoffLimit"] = json!(-3);
                j["spec"]["activeDeadlineSeconds"] = json!(-4);
                j["spec"]["ttlSecondsAfterFinished"] = json!(-5);
            },
            &[
                "spec.parallelism: Invalid value: -1: must be greater than or equal to 0",
                "spec.completions: Invalid value: -2: must be greater than or equal to 0",
                "spec.activeDeadlineSeconds: Invalid value: -4: must be greater than or equal to 0",
                "spec.backoffLimit: Invalid value: -3: must be greater than or equal to 0",
                "spec.ttlSecondsAfterFinished: Invalid value: -5: must be greater than or equal to 0",
            ],
        );
        check(
            |j| j["spec"]["completionMode"] = json!("Sometimes"),
            &[
                "spec.completionMode: Unsupported value: \"Sometimes\": supported values: \"NonIndexed\", \"Indexed\"",
            ],
        );
        check(
            |j| {
                j["spec"]["completionMode"] = json!("Indexed");
                j["spec"]["parallelism"] = json!(2);
            },
            &["spec.completions: Required value: when completion mode is Indexed"],
        );
        check(
            |j| {
                j["spec"]["maxFailedIndexes"] = json!(1);
            },
            &[
                "spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified",
                "spec.maxFailedIndexes: Invalid value: 1: requires indexed completion mode",
            ],
        );
        check(
            |j| {
                j["spec"]["completionMode"] = json!("Indexed");
                j["spec"]["completions"] = json!(3);
                j["metadata"]["name"] =
                    json!("a-very-long-name-that-is-just-about-at-the-dns-label-limit-xyz");
            },
            &[
                "metadata.name: Invalid value: \"a-very-long-name-that-is-just-about-at-the-dns-label-limit-xyz\": will not able to create pod with invalid DNS label: a-very-long-name-that-is-just-about-at-the-dns-label-limit-xyz-2",
            ],
        );
        check(
            |j| {
                j["spec"]["podFailurePolicy"] = json!({"rules": [
                    {"action": "Explode", "onExitCodes": {"operator": "In", "values": [3, 0, 3], "containerName": "x"}},
                    {"action": "FailIndex", "onPodConditions": [{"type": "Ready", "status": "Maybe"}]},
                    {"action": "", "onExitCodes": {"operator": "Is", "values": [1]}, "onPodConditions": [{"type": "Ready"}]},
                    {"action": "Ignore"}
                ]});
            },
            &[
                "spec.podFailurePolicy.rules[0].action: Unsupported value: \"Explode\": supported values: \"Count\", \"FailIndex\", \"FailJob\", \"Ignore\"",
                "spec.podFailurePolicy.rules[0].onExitCodes.containerName: Invalid value: \"x\": must be one of the container or initContainer names in the pod template",
                "spec.podFailurePolicy.rules[0].onExitCodes.values[1]: Invalid value: 0: must not be 0 for the In operator",
                "spec.podFailurePolicy.rules[0].onExitCodes.values[2]: Duplicate value: 3",
                "spec.podFailurePolicy.rules[0].onExitCodes.values: Invalid value: [3,0,3]: must be ordered",
                "spec.podFailurePolicy.rules[1].action: Invalid value: \"FailIndex\": requires the backoffLimitPerIndex to be set",
                "spec.podFailurePolicy.rules[1].onPodConditions[0].status: Unsupported value: \"Maybe\": supported values: \"False\", \"True\", \"Unknown\"",
                "spec.podFailurePolicy.rules[2].action: Required value: valid values: [\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]",
                "spec.podFailurePolicy.rules[2].onExitCodes.operator: Unsupported value: \"Is\": supported values: \"In\", \"NotIn\"",
                "spec.podFailurePolicy.rules[2]: Invalid value: specifying both OnExitCodes and OnPodConditions is not supported",
                "spec.podFailurePolicy.rules[3]: Invalid value: specifying one of OnExitCodes and OnPodConditions is required",
            ],
        );
        check(
            |j| {
                j["spec"]["podFailurePolicy"] = json!({"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1]}}]});
                j["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
                j["spec"]["podReplacementPolicy"] = json!("TerminatingOrFailed");
            },
            &[
                "spec.podReplacementPolicy: Unsupported value: \"TerminatingOrFailed\": supported values: \"Failed\"",
                "spec.template.spec.restartPolicy: Invalid value: \"OnFailure\": only \"Never\" is supported when podFailurePolicy is specified",
            ],
        );
        check(
            |j| j["spec"]["successPolicy"] = json!({"rules": [{"succeededCount": 1}]}),
            &[
                "spec.successPolicy: Invalid value: {\"Rules\":[{\"SucceededIndexes\":null,\"SucceededCount\":1}]}: requires indexed completion mode",
            ],
        );
        check(
            |j| {
                j["spec"]["completionMode"] = json!("Indexed");
                j["spec"]["completions"] = json!(5);
                j["spec"]["successPolicy"] =
                    json!({"rules": [{"succeededIndexes": "0-2,2", "succeededCount": 6}, {}]});
            },
            &[
                "spec.successPolicy.rules[0].succeededIndexes: Invalid value: \"0-2,2\": error parsing succeededIndexes: non-increasing order, previous: 2, current: 2",
                "spec.successPolicy.rules[0].succeededCount: Invalid value: 6: must be less than or equal to 5 (the number of specified completions)",
                "spec.successPolicy.rules[0].succeededCount: Invalid value: 6: must be less than or equal to 0 (the number of indexes in the specified succeededIndexes field)",
                "spec.successPolicy.rules[1]: Required value: at least one of succeededCount or succeededIndexes must be specified",
            ],
        );
        check(
            |j| j["spec"]["managedBy"] = json!("kueue"),
            &[
                "spec.managedBy: Invalid value: \"kueue\": must be a domain-prefixed path (such as \"acme.io/foo\")",
            ],
        );
        check(
            |j| {
                j["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
            },
            &[
                "spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"x\",\"batch.kubernetes.io/controller-uid\":\"0b5c1a3e-6f2d-4c1b-9a7e-2d3f4e5a6b7c\"}}: `selector` not auto-generated",
                "spec.template.metadata.labels: Invalid value: {\"batch.kubernetes.io/controller-uid\":\"0b5c1a3e-6f2d-4c1b-9a7e-2d3f4e5a6b7c\",\"batch.kubernetes.io/job-name\":\"pi\",\"controller-uid\":\"0b5c1a3e-6f2d-4c1b-9a7e-2d3f4e5a6b7c\",\"job-name\":\"pi\"}: `selector` does not match template `labels`",
            ],
        );
        check(
            |j| j["spec"]["template"]["metadata"] = json!({"labels": {"job-name": "other"}}),
            &[
                "spec.template.metadata.labels[job-name]: Invalid value: {\"batch.kubernetes.io/controller-uid\":\"0b5c1a3e-6f2d-4c1b-9a7e-2d3f4e5a6b7c\",\"batch.kubernetes.io/job-name\":\"pi\",\"controller-uid\":\"0b5c1a3e-6f2d-4c1b-9a7e-2d3f4e5a6b7c\",\"job-name\":\"other\"}: must be 'pi'",
            ],
        );
    }

    #[test]
    fn updates() {
        let old = stored(JOB.created(job()));
        // Metadata changes keep the generation; parallelism changes bump it.
        let mut new = old.clone();
        new["metadata"]["annotations"] = json!({"a": "b"});
        new["status"] = json!({"active": 3});
        let out = JOB.updated(new.clone(), &old, UpdateTarget::Main);
        assert_eq!(out["metadata"]["generation"], json!(1));
        assert_eq!(out["status"], json!({}));
        new["spec"]["parallelism"] = json!(3);
        let out = JOB.updated(new, &old, UpdateTarget::Main);
        assert_eq!(out["metadata"]["generation"], json!(2));

        let mut new = old.clone();
        new["spec"]["completions"] = json!(2);
        new["spec"]["completionMode"] = json!("Indexed");
        assert_eq!(
            JOB.update_errors(new, &old, UpdateTarget::Main),
            [
                "spec.completions: Invalid value: 2: can only be modified in tandem with spec.parallelism",
                "spec.completionMode: Invalid value: \"Indexed\": field is immutable",
            ]
        );

        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.36");
        let errs = JOB.update_errors(new, &old, UpdateTarget::Main);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with(
                "spec.template: Invalid value: {\"labels\":{\"batch.kubernetes.io/controller-uid\""
            ),
            "{errs:?}"
        );
        assert!(errs[0].contains("\"Image\":\"perl:5.36\""), "{errs:?}");
        assert!(errs[0].ends_with("}: field is immutable"), "{errs:?}");

        // A suspended job that never started may change its scheduling directives.
        let mut suspended = old;
        suspended["spec"]["suspend"] = json!(true);
        let mut new = suspended.clone();
        new["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        assert_eq!(
            JOB.update_errors(new, &suspended, UpdateTarget::Main),
            Vec::<String>::new()
        );
    }

    #[test]
    fn status_updates() {
        let old = stored(JOB.created(job()));
        let mut new = old.clone();
        new["spec"]["parallelism"] = json!(9);
        new["status"] = json!({"active": 1, "ready": 1, "startTime": "2025-01-01T00:00:00Z"});
        let out = JOB.updated(new, &old, UpdateTarget::Status);
        assert_eq!(out["spec"]["parallelism"], json!(1));
        assert_eq!(out["status"]["active"], json!(1));

        let mut new = old.clone();
        new["status"] = json!({
            "active": 1, "ready": 2, "succeeded": 1,
            "conditions": [{"type": "Complete", "status": "True"}],
            "uncountedTerminatedPods": {"succeeded": ["a", "a", ""]}
        });
        assert_eq!(
            JOB.update_errors(new, &old, UpdateTarget::Status),
            [
                "status.uncountedTerminatedPods.succeeded[1]: Duplicate value: \"a\"",
                "status.uncountedTerminatedPods.succeeded[2]: Invalid value: \"\": must not be empty",
                "status.completionTime: Required value: completionTime is required for Complete jobs",
                "status.conditions: Invalid value: cannot set Complete=True condition without the SuccessCriteriaMet=true condition",
                "status.active: Invalid value: 1: active>0 is invalid for finished job",
                "status.startTime: Required value: startTime is required for finished job",
                "status.uncountedTerminatedPods: Invalid value: {\"Succeeded\":[\"a\",\"a\",\"\"],\"Failed\":null}: must be empty for finished job",
                "status.ready: Invalid value: 2: cannot set more ready pods than active",
            ]
        );

        let mut counted = old.clone();
        counted["status"] = json!({"succeeded": 2, "failed": 1});
        let mut new = old;
        new["status"] = json!({"succeeded": 1});
        assert_eq!(
            JOB.update_errors(new, &counted, UpdateTarget::Status),
            [
                "status.failed: Invalid value: 0: cannot decrease the failed counter",
                "status.succeeded: Invalid value: 1: cannot decrease the succeeded counter",
            ]
        );
    }

    #[test]
    fn selects_by_succeeded_pods() {
        let value = json!({"metadata": {"name": "a"}, "status": {"succeeded": 2}});
        assert_eq!(JOB.fields(&value), [("status.successful", "2".to_owned())]);
        assert_eq!(JOB.supported_fields(), ["status.successful"]);
    }

    #[test]
    fn indexes_format() {
        assert_eq!(super::validate_indexes_format("0,2-4", 5), Ok(4));
        assert_eq!(
            super::validate_indexes_format("1-2-3", 5),
            Err("the fragment \"1-2-3\" violates the requirement that an index interval can have at most two parts separated by '-'".to_owned())
        );
        assert_eq!(
            super::validate_indexes_format("x", 5),
            Err("cannot convert string to integer for index: \"x\"".to_owned())
        );
        assert_eq!(
            super::validate_indexes_format("7", 5),
            Err("too large index: \"7\"".to_owned())
        );
        assert_eq!(
            super::failed_indexes_overlap("0-3", "3,5", 10),
            Some("failedIndexes and completedIndexes overlap at index: 3".to_owned())
        );
    }
}
