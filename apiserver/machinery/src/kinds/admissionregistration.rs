//! The strategies of admissionregistration.k8s.io/v1: MutatingWebhookConfiguration,
//! ValidatingWebhookConfiguration, ValidatingAdmissionPolicy (with its status subresource)
//! and ValidatingAdmissionPolicyBinding.
//!
//! Ports pkg/apis/admissionregistration/v1/defaults.go (failurePolicy `Fail`, matchPolicy
//! `Equivalent`, empty namespace and object selectors, timeoutSeconds 10,
//! reinvocationPolicy `Never`, rule scope `*`, service port 443), the strategies of
//! pkg/registry/admissionregistration (generation, status reset, conditional updates) and
//! pkg/apis/admissionregistration/validation/validation.go without its CEL compilation:
//! webhook names, rules, side effects, timeouts, selectors, client configs (URL and
//! service), admission review versions, match conditions; policy failure policies, param
//! kinds, match constraints, validations, audit annotations and variables; bindings' policy
//! names, param refs, match resources and validation actions.

use std::collections::BTreeSet;

use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MatchResources, MutatingWebhook, MutatingWebhookConfiguration, NamedRuleWithOperations,
    ParamKind, ParamRef, RuleWithOperations, ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
    ValidatingAdmissionPolicyBindingSpec, ValidatingAdmissionPolicySpec, ValidatingAdmissionPolicyStatus,
    ValidatingWebhook, ValidatingWebhookConfiguration, Validation, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::api_shared::{
    bump_generation, differs, generic_meta, init_generation, reset_meta_for_status, validate_meta_conditions,
};
use super::core_shared::{list_of, str_of};
use crate::field::{ErrorList, FieldError, Path, json_value};
use crate::strategy::KindStrategy;
use crate::validation::{
    LabelSelectorValidationOptions, is_dns1035_label, is_dns1123_subdomain, is_fully_qualified_name,
    is_valid_port_num, name_is_dns_subdomain, parse_group_version, validate_label_selector,
    validate_path_segment_name, validate_qualified_name,
};

const FAILURE_POLICIES: &[&str] = &["Fail", "Ignore"];
const MATCH_POLICIES: &[&str] = &["Equivalent", "Exact"];
const SIDE_EFFECT_CLASSES: &[&str] = &["None", "NoneOnDryRun", "Some", "Unknown"];
const NO_SIDE_EFFECT_CLASSES: &[&str] = &["None", "NoneOnDryRun"];
const OPERATIONS: &[&str] = &["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
const REINVOCATION_POLICIES: &[&str] = &["IfNeeded", "Never"];
const SCOPES: &[&str] = &["*", "Cluster", "Namespaced"];
const ACCEPTED_REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];
const VALIDATION_ACTIONS: &[&str] = &["Audit", "Deny", "Warn"];
const POLICY_REASONS: &[&str] = &["Forbidden", "Invalid", "RequestEntityTooLarge"];
const MAX_AUDIT_ANNOTATIONS: usize = 20;
const MAX_AUDIT_ANNOTATION_VALUE_EXPRESSION_LENGTH: usize = 5 * 1024;

/// Upstream's `validationOptions` (without the CEL environments).
#[derive(Clone, Copy)]
struct Options {
    ignore_match_conditions: bool,
    require_no_side_effects: bool,
    require_recognized_admission_review_version: bool,
    require_unique_webhook_names: bool,
    allow_invalid_label_value_in_selector: bool,
}

impl Options {
    fn create() -> Options {
        Options {
            ignore_match_conditions: false,
            require_no_side_effects: true,
            require_recognized_admission_review_version: true,
            require_unique_webhook_names: true,
            allow_invalid_label_value_in_selector: false,
        }
    }
}

fn invalid_each(path: &Path, value: &str, messages: Vec<String>) -> ErrorList {
    messages
        .into_iter()
        .map(|msg| FieldError::invalid(path, value, msg))
        .collect()
}

// Rules

fn has_wildcard(items: &[String]) -> bool {
    items.iter().any(|i| i == "*")
}

fn validate_resources(resources: &[String], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if resources.is_empty() {
        errs.push(FieldError::required(path, ""));
    }
    let mut with_wildcard_subresources = BTreeSet::new();
    let mut subresources_with_wildcard_resource = BTreeSet::new();
    let (mut double_wildcard, mut single_wildcard, mut without_subresource) = (false, false, false);
    for (i, res_sub) in resources.iter().enumerate() {
        if res_sub.is_empty() {
            errs.push(FieldError::required(&path.index(i), ""));
            continue;
        }
        if res_sub == "*/*" {
            double_wildcard = true;
        }
        if res_sub == "*" {
            single_wildcard = true;
        }
        let Some((res, sub)) = res_sub.split_once('/') else {
            without_subresource = res_sub != "*";
            continue;
        };
        if with_wildcard_subresources.contains(res) {
            errs.push(FieldError::invalid(
                &path.index(i),
                res_sub.as_str(),
                format!("if '{res}/*' is present, must not specify {res_sub}"),
            ));
        }
        if subresources_with_wildcard_resource.contains(sub) {
            errs.push(FieldError::invalid(
                &path.index(i),
                res_sub.as_str(),
                format!("if '*/{sub}' is present, must not specify {res_sub}"),
            ));
        }
        if sub == "*" {
            with_wildcard_subresources.insert(res);
        }
        if res == "*" {
            subresources_with_wildcard_resource.insert(sub);
        }
    }
    if resources.len() > 1 && double_wildcard {
        errs.push(FieldError::invalid(
            path,
            json_value(&resources),
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single_wildcard && without_subresource {
        errs.push(FieldError::invalid(
            path,
            json_value(&resources),
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
    errs
}

/// Upstream's `validateRuleWithOperations` (with `validateRule`, subresources allowed).
fn validate_rule_with_operations(
    operations: &Option<Vec<String>>,
    api_groups: &Option<Vec<String>>,
    api_versions: &Option<Vec<String>>,
    resources: &Option<Vec<String>>,
    scope: &Option<String>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let operations = list_of(operations);
    let operations_path = path.child("operations");
    if operations.is_empty() {
        errs.push(FieldError::required(&operations_path, ""));
    }
    if operations.len() > 1 && has_wildcard(operations) {
        errs.push(FieldError::invalid(
            &operations_path,
            json_value(&operations),
            "if '*' is present, must not specify other operations",
        ));
    }
    for (i, operation) in operations.iter().enumerate() {
        if !OPERATIONS.contains(&operation.as_str()) {
            errs.push(FieldError::not_supported(
                &operations_path.index(i),
                operation.as_str(),
                OPERATIONS,
            ));
        }
    }
    let groups = list_of(api_groups);
    if groups.is_empty() {
        errs.push(FieldError::required(&path.child("apiGroups"), ""));
    }
    if groups.len() > 1 && has_wildcard(groups) {
        errs.push(FieldError::invalid(
            &path.child("apiGroups"),
            json_value(&groups),
            "if '*' is present, must not specify other API groups",
        ));
    }
    let versions = list_of(api_versions);
    if versions.is_empty() {
        errs.push(FieldError::required(&path.child("apiVersions"), ""));
    }
    if versions.len() > 1 && has_wildcard(versions) {
        errs.push(FieldError::invalid(
            &path.child("apiVersions"),
            json_value(&versions),
            "if '*' is present, must not specify other API versions",
        ));
    }
    for (i, version) in versions.iter().enumerate() {
        if version.is_empty() {
            errs.push(FieldError::required(&path.child("apiVersions").index(i), ""));
        }
    }
    errs.extend(validate_resources(list_of(resources), &path.child("resources")));
    if let Some(scope) = scope
        && !SCOPES.contains(&scope.as_str())
    {
        errs.push(FieldError::not_supported(
            &path.child("scope"),
            scope.as_str(),
            SCOPES,
        ));
    }
    errs
}

fn validate_rule(rule: &RuleWithOperations, path: &Path) -> ErrorList {
    validate_rule_with_operations(
        &rule.operations,
        &rule.api_groups,
        &rule.api_versions,
        &rule.resources,
        &rule.scope,
        path,
    )
}

fn validate_named_rule(rule: &NamedRuleWithOperations, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names = BTreeSet::new();
    for (i, name) in list_of(&rule.resource_names).iter().enumerate() {
        let name_path = path.child("resourceNames").index(i);
        errs.extend(invalid_each(
            &name_path,
            name,
            validate_path_segment_name(name, false),
        ));
        if !names.insert(name.as_str()) {
            errs.push(FieldError::duplicate(&name_path, name.as_str()));
        }
    }
    errs.extend(validate_rule_with_operations(
        &rule.operations,
        &rule.api_groups,
        &rule.api_versions,
        &rule.resources,
        &rule.scope,
        path,
    ));
    errs
}

// Webhooks

fn validate_admission_review_versions(
    versions: &[String],
    require_recognized: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if versions.is_empty() {
        errs.push(FieldError::required(
            path,
            format!("must specify one of {}", ACCEPTED_REVIEW_VERSIONS.join(", ")),
        ));
        return errs;
    }
    let mut seen = BTreeSet::new();
    let mut has_accepted = false;
    for (i, version) in versions.iter().enumerate() {
        if !seen.insert(version.as_str()) {
            errs.push(FieldError::invalid(
                &path.index(i),
                version.as_str(),
                "duplicate version",
            ));
            continue;
        }
        errs.extend(invalid_each(&path.index(i), version, is_dns1035_label(version)));
        if ACCEPTED_REVIEW_VERSIONS.contains(&version.as_str()) {
            has_accepted = true;
        }
    }
    if require_recognized && !has_accepted {
        errs.push(FieldError::invalid(
            path,
            json_value(&versions),
            format!(
                "must include at least one of {}",
                ACCEPTED_REVIEW_VERSIONS.join(", ")
            ),
        ));
    }
    errs
}

/// The parts of a URL that upstream's `ValidateWebhookURL` looks at, as Go's `url.Parse`
/// splits them.
struct UrlParts<'a> {
    scheme: String,
    host: &'a str,
    user: Option<&'a str>,
    query: &'a str,
    fragment: &'a str,
}

fn split_url(url: &str) -> UrlParts<'_> {
    let (rest, fragment) = url.split_once('#').unwrap_or((url, ""));
    let (rest, scheme) = match rest.split_once(':') {
        Some((scheme, after))
            if scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            (after, scheme.to_ascii_lowercase())
        }
        _ => (rest, String::new()),
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (host, user) = match rest.strip_prefix("//") {
        Some(authority) => {
            let authority = authority.split('/').next().unwrap_or_default();
            match authority.rsplit_once('@') {
                Some((user, host)) => (host, Some(user)),
                None => (authority, None),
            }
        }
        None => ("", None),
    };
    UrlParts {
        scheme,
        host,
        user,
        query,
        fragment,
    }
}

fn validate_webhook_url(url: &str, path: &Path) -> ErrorList {
    const FORM: &str = "; desired format: https://host[/path]";
    let parts = split_url(url);
    let mut errs = ErrorList::new();
    if parts.scheme != "https" {
        errs.push(FieldError::invalid(
            path,
            parts.scheme.as_str(),
            format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    if parts.host.is_empty() {
        errs.push(FieldError::invalid(
            path,
            parts.host,
            format!("host must be specified{FORM}"),
        ));
    }
    if let Some(user) = parts.user {
        errs.push(FieldError::invalid(
            path,
            user,
            "user information is not permitted in the URL",
        ));
    }
    if !parts.fragment.is_empty() {
        errs.push(FieldError::invalid(
            path,
            parts.fragment,
            "fragments are not permitted in the URL",
        ));
    }
    if !parts.query.is_empty() {
        errs.push(FieldError::invalid(
            path,
            parts.query,
            "query parameters are not permitted in the URL",
        ));
    }
    errs
}

fn validate_webhook_service(
    namespace: &str,
    name: &str,
    service_path: Option<&str>,
    port: i32,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    if namespace.is_empty() {
        errs.push(FieldError::required(&path.child("namespace"), ""));
    }
    let port_errs = is_valid_port_num(i64::from(port));
    if !port_errs.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("port"),
            port,
            format!("port is not valid: {}", port_errs.join(", ")),
        ));
    }
    let Some(url_path) = service_path else {
        return errs;
    };
    if url_path == "/" || url_path.is_empty() {
        return errs;
    }
    let field = path.child("path");
    if url_path == "//" {
        errs.push(FieldError::invalid(
            &field,
            url_path,
            "segment[0] may not be empty",
        ));
        return errs;
    }
    if !url_path.starts_with('/') {
        errs.push(FieldError::invalid(&field, url_path, "must start with a '/'"));
    }
    let mut to_check = url_path.get(1..).unwrap_or_default();
    to_check = to_check.strip_suffix('/').unwrap_or(to_check);
    for (i, step) in to_check.split('/').enumerate() {
        if step.is_empty() {
            errs.push(FieldError::invalid(
                &field,
                url_path,
                format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for failure in is_dns1123_subdomain(step) {
            errs.push(FieldError::invalid(
                &field,
                url_path,
                format!("segment[{i}]: {failure}"),
            ));
        }
    }
    errs
}

fn validate_client_config(config: &WebhookClientConfig, path: &Path) -> ErrorList {
    let path = path.child("clientConfig");
    match (&config.url, &config.service) {
        (Some(url), None) => validate_webhook_url(url, &path.child("url")),
        (None, Some(service)) => validate_webhook_service(
            &service.namespace,
            &service.name,
            service.path.as_deref(),
            service.port.unwrap_or_default(),
            &path.child("service"),
        ),
        _ => vec![FieldError::required(
            &path,
            "exactly one of url or service is required",
        )],
    }
}

fn validate_match_conditions(conditions: &[MatchCondition], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if conditions.len() > 64 {
        errs.push(FieldError::too_many(path, Some(conditions.len()), 64));
    }
    let mut names = BTreeSet::new();
    for (i, condition) in conditions.iter().enumerate() {
        let path = path.index(i);
        if condition.expression.trim().is_empty() {
            errs.push(FieldError::required(&path.child("expression"), ""));
        }
        if condition.name.is_empty() {
            errs.push(FieldError::required(&path.child("name"), ""));
        } else {
            errs.extend(validate_qualified_name(&condition.name, &path.child("name")));
            if !names.insert(condition.name.as_str()) {
                errs.push(FieldError::duplicate(
                    &path.child("name"),
                    condition.name.as_str(),
                ));
            }
        }
    }
    errs
}

/// The fields shared by mutating and validating webhooks.
struct Hook<'a> {
    name: &'a str,
    rules: &'a Option<Vec<RuleWithOperations>>,
    failure_policy: &'a Option<String>,
    match_policy: &'a Option<String>,
    side_effects: &'a str,
    timeout_seconds: Option<i32>,
    namespace_selector: Option<&'a LabelSelector>,
    object_selector: Option<&'a LabelSelector>,
    reinvocation_policy: Option<&'a Option<String>>,
    client_config: &'a WebhookClientConfig,
    match_conditions: &'a Option<Vec<MatchCondition>>,
    admission_review_versions: &'a [String],
}

impl<'a> From<&'a ValidatingWebhook> for Hook<'a> {
    fn from(h: &'a ValidatingWebhook) -> Self {
        Hook {
            name: &h.name,
            rules: &h.rules,
            failure_policy: &h.failure_policy,
            match_policy: &h.match_policy,
            side_effects: &h.side_effects,
            timeout_seconds: h.timeout_seconds,
            namespace_selector: h.namespace_selector.as_ref(),
            object_selector: h.object_selector.as_ref(),
            reinvocation_policy: None,
            client_config: &h.client_config,
            match_conditions: &h.match_conditions,
            admission_review_versions: &h.admission_review_versions,
        }
    }
}

impl<'a> From<&'a MutatingWebhook> for Hook<'a> {
    fn from(h: &'a MutatingWebhook) -> Self {
        Hook {
            name: &h.name,
            rules: &h.rules,
            failure_policy: &h.failure_policy,
            match_policy: &h.match_policy,
            side_effects: &h.side_effects,
            timeout_seconds: h.timeout_seconds,
            namespace_selector: h.namespace_selector.as_ref(),
            object_selector: h.object_selector.as_ref(),
            reinvocation_policy: Some(&h.reinvocation_policy),
            client_config: &h.client_config,
            match_conditions: &h.match_conditions,
            admission_review_versions: &h.admission_review_versions,
        }
    }
}

fn validate_webhook(hook: &Hook<'_>, opts: Options, path: &Path) -> ErrorList {
    let mut errs = is_fully_qualified_name(&path.child("name"), hook.name);
    for (i, rule) in list_of(hook.rules).iter().enumerate() {
        errs.extend(validate_rule(rule, &path.child("rules").index(i)));
    }
    if let Some(policy) = hook.failure_policy
        && !FAILURE_POLICIES.contains(&policy.as_str())
    {
        errs.push(FieldError::not_supported(
            &path.child("failurePolicy"),
            policy.as_str(),
            FAILURE_POLICIES,
        ));
    }
    if let Some(policy) = hook.match_policy
        && !MATCH_POLICIES.contains(&policy.as_str())
    {
        errs.push(FieldError::not_supported(
            &path.child("matchPolicy"),
            policy.as_str(),
            MATCH_POLICIES,
        ));
    }
    let allowed = if opts.require_no_side_effects {
        NO_SIDE_EFFECT_CLASSES
    } else {
        SIDE_EFFECT_CLASSES
    };
    if hook.side_effects.is_empty() {
        errs.push(FieldError::required(
            &path.child("sideEffects"),
            format!("must specify one of {}", allowed.join(", ")),
        ));
    } else if !allowed.contains(&hook.side_effects) {
        errs.push(FieldError::not_supported(
            &path.child("sideEffects"),
            hook.side_effects,
            allowed,
        ));
    }
    if let Some(timeout) = hook.timeout_seconds.filter(|t| !(1..=30).contains(t)) {
        errs.push(FieldError::invalid(
            &path.child("timeoutSeconds"),
            timeout,
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    let selector_opts = LabelSelectorValidationOptions {
        allow_invalid_label_value_in_selector: opts.allow_invalid_label_value_in_selector,
        ..Default::default()
    };
    if let Some(selector) = hook.namespace_selector {
        errs.extend(validate_label_selector(
            Some(selector),
            selector_opts,
            &path.child("namespaceSelector"),
        ));
    }
    if let Some(selector) = hook.object_selector {
        errs.extend(validate_label_selector(
            Some(selector),
            selector_opts,
            &path.child("objectSelector"),
        ));
    }
    if let Some(Some(policy)) = hook.reinvocation_policy
        && !REINVOCATION_POLICIES.contains(&policy.as_str())
    {
        errs.push(FieldError::not_supported(
            &path.child("reinvocationPolicy"),
            policy.as_str(),
            REINVOCATION_POLICIES,
        ));
    }
    errs.extend(validate_client_config(hook.client_config, path));
    if !opts.ignore_match_conditions {
        errs.extend(validate_match_conditions(
            list_of(hook.match_conditions),
            &path.child("matchConditions"),
        ));
    }
    errs
}

fn validate_webhooks(hooks: &[Hook<'_>], opts: Options) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names = BTreeSet::new();
    for (i, hook) in hooks.iter().enumerate() {
        let path = Path::new("webhooks").index(i);
        errs.extend(validate_webhook(hook, opts, &path));
        errs.extend(validate_admission_review_versions(
            hook.admission_review_versions,
            opts.require_recognized_admission_review_version,
            &path.child("admissionReviewVersions"),
        ));
        if opts.require_unique_webhook_names && !hook.name.is_empty() && !names.insert(hook.name) {
            errs.push(FieldError::duplicate(&path.child("name"), hook.name));
        }
    }
    errs
}

/// Upstream's update options, computed from the old webhooks.
fn update_options(new: &[Hook<'_>], old: &[Hook<'_>]) -> Options {
    let ignore_match_conditions = new.len() == old.len()
        && new
            .iter()
            .zip(old)
            .all(|(n, o)| list_of(n.match_conditions) == list_of(o.match_conditions));
    let require_no_side_effects = old
        .iter()
        .all(|h| NO_SIDE_EFFECT_CLASSES.contains(&h.side_effects));
    let require_recognized_admission_review_version = old.iter().all(|h| {
        h.admission_review_versions.is_empty()
            || h.admission_review_versions
                .iter()
                .any(|v| ACCEPTED_REVIEW_VERSIONS.contains(&v.as_str()))
    });
    let mut names = BTreeSet::new();
    let require_unique_webhook_names = old.iter().all(|h| names.insert(h.name));
    let allow_invalid_label_value_in_selector = old.iter().any(|h| {
        [h.namespace_selector, h.object_selector]
            .into_iter()
            .flatten()
            .any(|s| {
                !validate_label_selector(Some(s), LabelSelectorValidationOptions::default(), &Path::root())
                    .is_empty()
            })
    });
    Options {
        ignore_match_conditions,
        require_no_side_effects,
        require_recognized_admission_review_version,
        require_unique_webhook_names,
        allow_invalid_label_value_in_selector,
    }
}

fn default_rule_scope(scope: &mut Option<String>) {
    if scope.is_none() {
        *scope = Some("*".to_owned());
    }
}

fn default_common(
    failure_policy: &mut Option<String>,
    match_policy: &mut Option<String>,
    namespace_selector: &mut Option<LabelSelector>,
    object_selector: &mut Option<LabelSelector>,
    timeout_seconds: &mut Option<i32>,
    client_config: &mut WebhookClientConfig,
    rules: &mut Option<Vec<RuleWithOperations>>,
) {
    failure_policy.get_or_insert_with(|| "Fail".to_owned());
    match_policy.get_or_insert_with(|| "Equivalent".to_owned());
    namespace_selector.get_or_insert_with(LabelSelector::default);
    object_selector.get_or_insert_with(LabelSelector::default);
    timeout_seconds.get_or_insert(10);
    if let Some(service) = &mut client_config.service {
        service.port.get_or_insert(443);
    }
    for rule in rules.iter_mut().flatten() {
        default_rule_scope(&mut rule.scope);
    }
}

impl KindStrategy for ValidatingWebhookConfiguration {
    fn apply_defaults(&mut self) {
        for hook in self.webhooks.iter_mut().flatten() {
            default_common(
                &mut hook.failure_policy,
                &mut hook.match_policy,
                &mut hook.namespace_selector,
                &mut hook.object_selector,
                &mut hook.timeout_seconds,
                &mut hook.client_config,
                &mut hook.rules,
            );
        }
    }

    fn prepare_for_create(&mut self) {
        init_generation(&mut self.metadata);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        bump_generation(
            &mut self.metadata,
            &old.metadata,
            differs(&self.webhooks, &old.webhooks),
        );
    }

    fn validate(&self) -> ErrorList {
        let hooks: Vec<Hook<'_>> = list_of(&self.webhooks).iter().map(Hook::from).collect();
        let mut errs = generic_meta(&self.metadata, false, name_is_dns_subdomain);
        errs.extend(validate_webhooks(&hooks, Options::create()));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let hooks: Vec<Hook<'_>> = list_of(&self.webhooks).iter().map(Hook::from).collect();
        let old_hooks: Vec<Hook<'_>> = list_of(&old.webhooks).iter().map(Hook::from).collect();
        let mut errs = generic_meta(&self.metadata, false, name_is_dns_subdomain);
        errs.extend(validate_webhooks(&hooks, update_options(&hooks, &old_hooks)));
        errs
    }

    const ALLOW_UNCONDITIONAL_UPDATE: bool = false;
}

impl KindStrategy for MutatingWebhookConfiguration {
    fn apply_defaults(&mut self) {
        for hook in self.webhooks.iter_mut().flatten() {
            default_common(
                &mut hook.failure_policy,
                &mut hook.match_policy,
                &mut hook.namespace_selector,
                &mut hook.object_selector,
                &mut hook.timeout_seconds,
                &mut hook.client_config,
                &mut hook.rules,
            );
            hook.reinvocation_policy.get_or_insert_with(|| "Never".to_owned());
        }
    }

    fn prepare_for_create(&mut self) {
        init_generation(&mut self.metadata);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        bump_generation(
            &mut self.metadata,
            &old.metadata,
            differs(&self.webhooks, &old.webhooks),
        );
    }

    fn validate(&self) -> ErrorList {
        let hooks: Vec<Hook<'_>> = list_of(&self.webhooks).iter().map(Hook::from).collect();
        let mut errs = generic_meta(&self.metadata, false, name_is_dns_subdomain);
        errs.extend(validate_webhooks(&hooks, Options::create()));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let hooks: Vec<Hook<'_>> = list_of(&self.webhooks).iter().map(Hook::from).collect();
        let old_hooks: Vec<Hook<'_>> = list_of(&old.webhooks).iter().map(Hook::from).collect();
        let mut errs = generic_meta(&self.metadata, false, name_is_dns_subdomain);
        errs.extend(validate_webhooks(&hooks, update_options(&hooks, &old_hooks)));
        errs
    }

    const ALLOW_UNCONDITIONAL_UPDATE: bool = false;
}

// Policies

fn default_match_resources(resources: &mut MatchResources) {
    resources
        .match_policy
        .get_or_insert_with(|| "Equivalent".to_owned());
    resources
        .namespace_selector
        .get_or_insert_with(LabelSelector::default);
    resources
        .object_selector
        .get_or_insert_with(LabelSelector::default);
    for rule in resources
        .resource_rules
        .iter_mut()
        .flatten()
        .chain(resources.exclude_resource_rules.iter_mut().flatten())
    {
        default_rule_scope(&mut rule.scope);
    }
}

fn validate_match_resources(resources: &MatchResources, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    match &resources.match_policy {
        None => errs.push(FieldError::required(&path.child("matchPolicy"), "")),
        Some(policy) if !MATCH_POLICIES.contains(&policy.as_str()) => errs.push(FieldError::not_supported(
            &path.child("matchPolicy"),
            policy.as_str(),
            MATCH_POLICIES,
        )),
        Some(_) => {}
    }
    for (field, selector) in [
        ("namespaceSelector", &resources.namespace_selector),
        ("objectSelector", &resources.object_selector),
    ] {
        match selector {
            None => errs.push(FieldError::required(&path.child(field), "")),
            Some(selector) => errs.extend(validate_label_selector(
                Some(selector),
                LabelSelectorValidationOptions::default(),
                &path.child(field),
            )),
        }
    }
    for (i, rule) in list_of(&resources.resource_rules).iter().enumerate() {
        errs.extend(validate_named_rule(rule, &path.child("resourceRules").index(i)));
    }
    for (i, rule) in list_of(&resources.exclude_resource_rules).iter().enumerate() {
        errs.extend(validate_named_rule(
            rule,
            &path.child("excludeResourceRules").index(i),
        ));
    }
    errs
}

fn validate_param_kind(kind: &ParamKind, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let api_version = str_of(&kind.api_version);
    let version_path = path.child("apiVersion");
    if api_version.is_empty() {
        errs.push(FieldError::required(&version_path, ""));
    } else {
        match parse_group_version(api_version) {
            None => errs.push(FieldError::invalid(
                &version_path,
                api_version,
                format!("unexpected GroupVersion string: {api_version}"),
            )),
            Some((group, version)) => {
                if !group.is_empty() {
                    let group_errs = is_dns1123_subdomain(group);
                    if !group_errs.is_empty() {
                        errs.push(FieldError::invalid(&version_path, group, group_errs.join(",")));
                    }
                }
                if version.is_empty() {
                    errs.push(FieldError::invalid(
                        &version_path,
                        api_version,
                        "version must be specified",
                    ));
                } else {
                    let version_errs = is_dns1035_label(version);
                    if !version_errs.is_empty() {
                        errs.push(FieldError::invalid(
                            &version_path,
                            version,
                            version_errs.join(","),
                        ));
                    }
                }
            }
        }
    }
    let kind_value = str_of(&kind.kind);
    if kind_value.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    } else {
        let kind_errs = is_dns1035_label(&kind_value.to_lowercase());
        if !kind_errs.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("kind"),
                kind_value,
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    kind_errs.join(",")
                ),
            ));
        }
    }
    errs
}

fn is_cel_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c == '_' || c.is_ascii_alphabetic());
    first_ok
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !crate::crd::cel::RESERVED.contains(&name)
}

fn has_newlines(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

fn validate_validation(validation: &Validation, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if validation.expression.trim().is_empty() {
        errs.push(FieldError::required(
            &path.child("expression"),
            "expression is not specified",
        ));
    }
    let message_expression = str_of(&validation.message_expression);
    if !message_expression.is_empty() && message_expression.trim().is_empty() {
        errs.push(FieldError::invalid(
            &path.child("messageExpression"),
            message_expression,
            "must be non-empty if specified",
        ));
    }
    let message = str_of(&validation.message);
    let trimmed = message.trim();
    if !message.is_empty() && trimmed.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("message"),
            message,
            "must be non-empty if specified",
        ));
    } else if has_newlines(trimmed) {
        errs.push(FieldError::invalid(
            &path.child("message"),
            message,
            "must not contain line breaks",
        ));
    }
    if let Some(reason) = &validation.reason
        && !POLICY_REASONS.contains(&reason.as_str())
    {
        errs.push(FieldError::not_supported(
            &path.child("reason"),
            reason.as_str(),
            POLICY_REASONS,
        ));
    }
    errs
}

fn validate_policy_spec(
    name: &str,
    spec: &ValidatingAdmissionPolicySpec,
    ignore_match_conditions: bool,
) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    match &spec.failure_policy {
        None => errs.push(FieldError::required(&path.child("failurePolicy"), "")),
        Some(policy) if !FAILURE_POLICIES.contains(&policy.as_str()) => errs.push(FieldError::not_supported(
            &path.child("failurePolicy"),
            policy.as_str(),
            FAILURE_POLICIES,
        )),
        Some(_) => {}
    }
    if let Some(kind) = &spec.param_kind {
        errs.extend(validate_param_kind(kind, &path.child("paramKind")));
    }
    match &spec.match_constraints {
        None => errs.push(FieldError::required(&path.child("matchConstraints"), "")),
        Some(constraints) => {
            errs.extend(validate_match_resources(
                constraints,
                &path.child("matchConstraints"),
            ));
            if list_of(&constraints.resource_rules).is_empty() {
                errs.push(FieldError::required(
                    &path.child("matchConstraints").child("resourceRules"),
                    "",
                ));
            }
        }
    }
    if !ignore_match_conditions {
        errs.extend(validate_match_conditions(
            list_of(&spec.match_conditions),
            &path.child("matchConditions"),
        ));
    }
    for (i, variable) in list_of(&spec.variables).iter().enumerate() {
        let var_path = path.child("variables").index(i);
        if variable.name.trim().is_empty() {
            errs.push(FieldError::required(
                &var_path.child("name"),
                "name is not specified",
            ));
        } else if !is_cel_identifier(&variable.name) {
            errs.push(FieldError::invalid(
                &var_path.child("name"),
                variable.name.as_str(),
                "must be a valid CEL identifier",
            ));
        }
        if variable.expression.trim().is_empty() {
            errs.push(FieldError::required(
                &var_path.child("expression"),
                "expression is not specified",
            ));
        }
    }
    let validations = list_of(&spec.validations);
    let annotations = list_of(&spec.audit_annotations);
    if validations.is_empty() && annotations.is_empty() {
        let msg = "validations or auditAnnotations must contain at least one item";
        errs.push(FieldError::required(&path.child("validations"), msg));
        errs.push(FieldError::required(&path.child("auditAnnotations"), msg));
        return errs;
    }
    for (i, validation) in validations.iter().enumerate() {
        errs.extend(validate_validation(
            validation,
            &path.child("validations").index(i),
        ));
    }
    let annotations_path = path.child("auditAnnotations");
    if annotations.len() > MAX_AUDIT_ANNOTATIONS {
        errs.push(FieldError::invalid(
            &annotations_path,
            json_value(&annotations),
            format!("must not have more than {MAX_AUDIT_ANNOTATIONS} auditAnnotations"),
        ));
    }
    let mut keys = BTreeSet::new();
    for (i, annotation) in annotations.iter().enumerate() {
        let a_path = annotations_path.index(i);
        if name.is_empty() {
            errs.push(FieldError::invalid(
                &a_path.child("key"),
                annotation.key.as_str(),
                "requires metadata.name be non-empty",
            ));
        } else {
            errs.extend(validate_qualified_name(
                &format!("{name}/{}", annotation.key),
                &a_path.child("key"),
            ));
        }
        let value = annotation.value_expression.trim();
        if value.is_empty() {
            errs.push(FieldError::required(
                &a_path.child("valueExpression"),
                "valueExpression is not specified",
            ));
        } else if value.len() > MAX_AUDIT_ANNOTATION_VALUE_EXPRESSION_LENGTH {
            errs.push(FieldError::required(
                &a_path.child("valueExpression"),
                format!("must not exceed {MAX_AUDIT_ANNOTATION_VALUE_EXPRESSION_LENGTH} bytes in length"),
            ));
        }
        if !keys.insert(annotation.key.as_str()) {
            errs.push(FieldError::duplicate(
                &a_path.child("key"),
                annotation.key.as_str(),
            ));
        }
    }
    errs
}

fn policy_spec(policy: &ValidatingAdmissionPolicy) -> ValidatingAdmissionPolicySpec {
    policy.spec.clone().unwrap_or_default()
}

fn validate_policy(policy: &ValidatingAdmissionPolicy, ignore_match_conditions: bool) -> ErrorList {
    let mut errs = generic_meta(&policy.metadata, false, name_is_dns_subdomain);
    errs.extend(validate_policy_spec(
        str_of(&policy.metadata.name),
        &policy_spec(policy),
        ignore_match_conditions,
    ));
    errs
}

fn validate_policy_status(status: Option<&ValidatingAdmissionPolicyStatus>) -> ErrorList {
    let path = Path::new("status");
    let Some(status) = status else {
        return Vec::new();
    };
    let mut errs = ErrorList::new();
    if let Some(type_checking) = &status.type_checking {
        let warnings_path = path.child("typeChecking").child("expressionWarnings");
        for (i, warning) in list_of(&type_checking.expression_warnings).iter().enumerate() {
            let w_path = warnings_path.index(i);
            if warning.warning.is_empty() {
                errs.push(FieldError::required(&w_path.child("warning"), ""));
            }
            if warning.field_ref.trim().is_empty() {
                errs.push(FieldError::required(&w_path.child("fieldRef"), ""));
            }
        }
    }
    errs.extend(validate_meta_conditions(
        list_of(&status.conditions),
        &path.child("conditions"),
    ));
    errs
}

impl KindStrategy for ValidatingAdmissionPolicy {
    /// The spec and status are non-pointer structs upstream: always written.
    fn apply_defaults(&mut self) {
        let spec = self
            .spec
            .get_or_insert_with(ValidatingAdmissionPolicySpec::default);
        spec.failure_policy.get_or_insert_with(|| "Fail".to_owned());
        if let Some(constraints) = &mut spec.match_constraints {
            default_match_resources(constraints);
        }
        self.status
            .get_or_insert_with(ValidatingAdmissionPolicyStatus::default);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(ValidatingAdmissionPolicyStatus::default());
        init_generation(&mut self.metadata);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
        bump_generation(&mut self.metadata, &old.metadata, differs(&self.spec, &old.spec));
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
        reset_meta_for_status(&mut self.metadata, &old.metadata);
    }

    fn validate(&self) -> ErrorList {
        validate_policy(self, false)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let (new_spec, old_spec) = (policy_spec(self), policy_spec(old));
        let ignore = new_spec.param_kind == old_spec.param_kind
            && list_of(&new_spec.match_conditions) == list_of(&old_spec.match_conditions);
        validate_policy(self, ignore)
    }

    fn validate_status_update(&self, _old: &Self) -> ErrorList {
        validate_policy_status(self.status.as_ref())
    }

    const ALLOW_UNCONDITIONAL_UPDATE: bool = false;
}

// Bindings

fn validate_param_ref(param_ref: &ParamRef, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = str_of(&param_ref.name);
    if !name.is_empty() {
        errs.extend(invalid_each(
            &path.child("name"),
            name,
            validate_path_segment_name(name, false),
        ));
        if param_ref.selector.is_some() {
            errs.push(FieldError::forbidden(
                &path.child("name"),
                "name and selector are mutually exclusive",
            ));
        }
    }
    if let Some(selector) = &param_ref.selector {
        errs.extend(validate_label_selector(
            Some(selector),
            LabelSelectorValidationOptions::default(),
            &path.child("selector"),
        ));
        if !name.is_empty() {
            errs.push(FieldError::forbidden(
                &path.child("selector"),
                "name and selector are mutually exclusive",
            ));
        }
    }
    if name.is_empty() && param_ref.selector.is_none() {
        errs.push(FieldError::required(
            path,
            "one of name or selector must be specified",
        ));
    }
    let action_path = path.child("parameterNotFoundAction");
    match str_of(&param_ref.parameter_not_found_action) {
        "" => errs.push(FieldError::required(&action_path, "")),
        "Deny" | "Allow" => {}
        other => errs.push(FieldError::not_supported(&action_path, other, &["Deny", "Allow"])),
    }
    errs
}

fn validate_validation_actions(actions: &[String], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = BTreeSet::new();
    for (i, action) in actions.iter().enumerate() {
        if !VALIDATION_ACTIONS.contains(&action.as_str()) {
            errs.push(FieldError::not_supported(
                &path.index(i),
                action.as_str(),
                VALIDATION_ACTIONS,
            ));
        }
        if !seen.insert(action.as_str()) {
            errs.push(FieldError::duplicate(&path.index(i), action.as_str()));
        }
    }
    if seen.contains("Deny") && seen.contains("Warn") {
        errs.push(FieldError::invalid(
            path,
            json_value(&actions),
            "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
        ));
    }
    if seen.is_empty() {
        errs.push(FieldError::required(
            path,
            "at least one validation action is required",
        ));
    }
    errs
}

fn validate_binding(binding: &ValidatingAdmissionPolicyBinding) -> ErrorList {
    let mut errs = generic_meta(&binding.metadata, false, name_is_dns_subdomain);
    let spec = binding.spec.clone().unwrap_or_default();
    let path = Path::new("spec");
    let policy_name = str_of(&spec.policy_name);
    if policy_name.is_empty() {
        errs.push(FieldError::required(&path.child("policyName"), ""));
    } else {
        errs.extend(invalid_each(
            &path.child("policyName"),
            policy_name,
            name_is_dns_subdomain(policy_name, false),
        ));
    }
    if let Some(param_ref) = &spec.param_ref {
        errs.extend(validate_param_ref(param_ref, &path.child("paramRef")));
    }
    if let Some(resources) = &spec.match_resources {
        errs.extend(validate_match_resources(resources, &path.child("matchResources")));
    }
    errs.extend(validate_validation_actions(
        list_of(&spec.validation_actions),
        &path.child("validationActions"),
    ));
    errs
}

impl KindStrategy for ValidatingAdmissionPolicyBinding {
    fn apply_defaults(&mut self) {
        let spec = self
            .spec
            .get_or_insert_with(ValidatingAdmissionPolicyBindingSpec::default);
        if let Some(resources) = &mut spec.match_resources {
            default_match_resources(resources);
        }
    }

    fn prepare_for_create(&mut self) {
        init_generation(&mut self.metadata);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        bump_generation(&mut self.metadata, &old.metadata, differs(&self.spec, &old.spec));
    }

    fn validate(&self) -> ErrorList {
        validate_binding(self)
    }

    fn validate_update(&self, _old: &Self) -> ErrorList {
        validate_binding(self)
    }

    const ALLOW_UNCONDITIONAL_UPDATE: bool = false;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::api_shared::testing::{check_create_cases, create, update, update_errors};
    use crate::strategy::UpdateTarget;

    const API: &str = "admissionregistration.k8s.io/v1";

    #[test]
    fn webhook_defaults() {
        let out = create(json!({"apiVersion": API, "kind": "MutatingWebhookConfiguration", "metadata": {"name": "m"},
            "webhooks": [{"name": "m.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                "clientConfig": {"service": {"namespace": "ns", "name": "svc"}},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}]}]}))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": API, "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": "m", "generation": 1},
                "webhooks": [{
                    "admissionReviewVersions": ["v1"],
                    "clientConfig": {"service": {"name": "svc", "namespace": "ns", "port": 443}},
                    "failurePolicy": "Fail",
                    "matchPolicy": "Equivalent",
                    "name": "m.example.com",
                    "namespaceSelector": {},
                    "objectSelector": {},
                    "reinvocationPolicy": "Never",
                    "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "*"}],
                    "sideEffects": "None",
                    "timeoutSeconds": 10
                }]
            })
        );
        let validating = create(json!({"apiVersion": API, "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "v"},
            "webhooks": [{"name": "v.example.com", "sideEffects": "NoneOnDryRun", "admissionReviewVersions": ["v1", "v1beta1"],
                "clientConfig": {"url": "https://example.com/validate"}}]}))
        .unwrap();
        assert_eq!(
            validating["webhooks"][0],
            json!({
                "admissionReviewVersions": ["v1", "v1beta1"],
                "clientConfig": {"url": "https://example.com/validate"},
                "failurePolicy": "Fail", "matchPolicy": "Equivalent", "name": "v.example.com",
                "namespaceSelector": {}, "objectSelector": {}, "sideEffects": "NoneOnDryRun", "timeoutSeconds": 10
            })
        );
        let mut old = validating;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["webhooks"][0]["timeoutSeconds"] = json!(5);
        assert_eq!(
            update(new, &old, UpdateTarget::Main).unwrap()["metadata"]["generation"],
            json!(2)
        );
    }

    #[test]
    fn webhook_validation() {
        check_create_cases(&[(
            json!({"apiVersion": API, "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "v"},
            "webhooks": [
                {"name": "hook", "sideEffects": "Some", "admissionReviewVersions": ["v2", "v2"], "timeoutSeconds": 31,
                 "failurePolicy": "Maybe", "clientConfig": {"url": "http://u:p@/x?q=1#f"},
                 "rules": [{"operations": ["*", "PATCH"], "apiGroups": [], "apiVersions": ["v1", ""], "resources": ["*/*", "pods"], "scope": "Global"}],
                 "matchConditions": [{"name": "", "expression": " "}]},
                {"name": "a.b.c", "admissionReviewVersions": ["v1"], "clientConfig": {"service": {"namespace": "", "name": "s", "port": 0, "path": "/a//B"}}},
                {"name": "a.b.c", "sideEffects": "None", "admissionReviewVersions": ["v1"], "clientConfig": {}}
            ]}),
            vec![
                "webhooks[0].name: Invalid value: \"hook\": should be a domain with at least three segments separated by dots",
                "webhooks[0].rules[0].operations: Invalid value: [\"*\",\"PATCH\"]: if '*' is present, must not specify other operations",
                "webhooks[0].rules[0].operations[1]: Unsupported value: \"PATCH\": supported values: \"*\", \"CONNECT\", \"CREATE\", \"DELETE\", \"UPDATE\"",
                "webhooks[0].rules[0].apiGroups: Required value",
                "webhooks[0].rules[0].apiVersions[1]: Required value",
                "webhooks[0].rules[0].resources: Invalid value: [\"*/*\",\"pods\"]: if '*/*' is present, must not specify other resources",
                "webhooks[0].rules[0].scope: Unsupported value: \"Global\": supported values: \"*\", \"Cluster\", \"Namespaced\"",
                "webhooks[0].failurePolicy: Unsupported value: \"Maybe\": supported values: \"Fail\", \"Ignore\"",
                "webhooks[0].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"",
                "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
                "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
                "webhooks[0].clientConfig.url: Invalid value: \"\": host must be specified; desired format: https://host[/path]",
                "webhooks[0].clientConfig.url: Invalid value: \"u:p\": user information is not permitted in the URL",
                "webhooks[0].clientConfig.url: Invalid value: \"f\": fragments are not permitted in the URL",
                "webhooks[0].clientConfig.url: Invalid value: \"q=1\": query parameters are not permitted in the URL",
                "webhooks[0].matchConditions[0].expression: Required value",
                "webhooks[0].matchConditions[0].name: Required value",
                "webhooks[0].admissionReviewVersions[1]: Invalid value: \"v2\": duplicate version",
                "webhooks[0].admissionReviewVersions: Invalid value: [\"v2\",\"v2\"]: must include at least one of v1, v1beta1",
                "webhooks[1].sideEffects: Required value: must specify one of None, NoneOnDryRun",
                "webhooks[1].clientConfig.service.namespace: Required value",
                "webhooks[1].clientConfig.service.port: Invalid value: 0: port is not valid: must be between 1 and 65535, inclusive",
                "webhooks[1].clientConfig.service.path: Invalid value: \"/a//B\": segment[1] may not be empty",
                "webhooks[1].clientConfig.service.path: Invalid value: \"/a//B\": segment[2]: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "webhooks[2].clientConfig: Required value: exactly one of url or service is required",
                "webhooks[2].name: Duplicate value: \"a.b.c\"",
            ],
        )]);
        // An old webhook with side effects allows them on update.
        let old = json!({"apiVersion": API, "kind": "MutatingWebhookConfiguration", "metadata": {"name": "m", "resourceVersion": "1"},
            "webhooks": [{"name": "m.example.com", "sideEffects": "Unknown", "admissionReviewVersions": ["v1"],
                "clientConfig": {"url": "https://example.com"}}]});
        assert!(update_errors(old.clone(), &old, UpdateTarget::Main).is_empty());
    }

    #[test]
    fn policies_and_bindings() {
        let policy = create(json!({"apiVersion": API, "kind": "ValidatingAdmissionPolicy", "metadata": {"name": "p"},
            "spec": {"matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"]}]},
                "validations": [{"expression": "object.spec.replicas <= 5"}]},
            "status": {"observedGeneration": 3}}))
        .unwrap();
        assert_eq!(
            policy,
            json!({
                "apiVersion": API, "kind": "ValidatingAdmissionPolicy", "metadata": {"name": "p", "generation": 1},
                "spec": {
                    "failurePolicy": "Fail",
                    "matchConstraints": {
                        "matchPolicy": "Equivalent", "namespaceSelector": {}, "objectSelector": {},
                        "resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["deployments"], "scope": "*"}]
                    },
                    "validations": [{"expression": "object.spec.replicas <= 5"}]
                },
                "status": {}
            })
        );
        let mut old = policy;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["status"] = json!({"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "Maybe", "reason": "", "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z"}]});
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Status),
            [
                "status.conditions[0].status: Unsupported value: \"Maybe\": supported values: \"False\", \"True\", \"Unknown\"",
                "status.conditions[0].reason: Required value",
            ]
        );
        check_create_cases(&[
            (
                json!({"apiVersion": API, "kind": "ValidatingAdmissionPolicy", "metadata": {"name": "p"},
                    "spec": {"failurePolicy": "Never", "paramKind": {"apiVersion": "a/b/c", "kind": "Bad_Kind"},
                        "variables": [{"name": "in", "expression": "1"}],
                        "validations": [{"expression": " ", "message": "a\nb", "reason": "Teapot"}]}}),
                vec![
                    "spec.failurePolicy: Unsupported value: \"Never\": supported values: \"Fail\", \"Ignore\"",
                    "spec.paramKind.apiVersion: Invalid value: \"a/b/c\": unexpected GroupVersion string: a/b/c",
                    "spec.paramKind.kind: Invalid value: \"Bad_Kind\": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                    "spec.matchConstraints: Required value",
                    "spec.variables[0].name: Invalid value: \"in\": must be a valid CEL identifier",
                    "spec.validations[0].expression: Required value: expression is not specified",
                    "spec.validations[0].message: Invalid value: \"a\\nb\": must not contain line breaks",
                    "spec.validations[0].reason: Unsupported value: \"Teapot\": supported values: \"Forbidden\", \"Invalid\", \"RequestEntityTooLarge\"",
                ],
            ),
            (
                json!({"apiVersion": API, "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "b"},
                    "spec": {"policyName": "p", "validationActions": ["Deny", "Warn", "Deny"],
                        "paramRef": {"name": "x", "selector": {}}}}),
                vec![
                    "spec.paramRef.name: Forbidden: name and selector are mutually exclusive",
                    "spec.paramRef.selector: Forbidden: name and selector are mutually exclusive",
                    "spec.paramRef.parameterNotFoundAction: Required value",
                    "spec.validationActions[2]: Duplicate value: \"Deny\"",
                    "spec.validationActions: Invalid value: [\"Deny\",\"Warn\",\"Deny\"]: must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
                ],
            ),
            (
                json!({"apiVersion": API, "kind": "ValidatingAdmissionPolicyBinding", "metadata": {"name": "b"}, "spec": {}}),
                vec![
                    "spec.policyName: Required value",
                    "spec.validationActions: Required value: at least one validation action is required",
                ],
            ),
        ]);
    }
}
