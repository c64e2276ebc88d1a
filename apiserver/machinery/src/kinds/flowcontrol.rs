//! The strategies of flowcontrol.apiserver.k8s.io/v1: FlowSchema and
//! PriorityLevelConfiguration, with their status subresources.
//!
//! Ports pkg/apis/flowcontrol/v1/defaults.go (matchingPrecedence 1000; nominal concurrency
//! shares 30 and lendable percent 0 of limited levels, 0 and 0 of exempt ones; queuing hand
//! size 8, 64 queues, queue length limit 50), pkg/registry/flowcontrol/*/strategy.go
//! (generation, status reset, status updates that keep spec and metadata) and
//! pkg/apis/flowcontrol/validation/validation.go, except the rule that the mandatory objects
//! (`exempt`, `catch-all`) keep upstream's fixed specs.

use std::collections::BTreeSet;

use k8s_openapi::api::flowcontrol::v1::{
    FlowSchema, FlowSchemaSpec, FlowSchemaStatus, LimitResponse, LimitedPriorityLevelConfiguration,
    NonResourcePolicyRule, PolicyRulesWithSubjects, PriorityLevelConfiguration,
    PriorityLevelConfigurationSpec, PriorityLevelConfigurationStatus, QueuingConfiguration,
    ResourcePolicyRule, Subject,
};

use super::api_shared::{bump_generation, core_meta, differs, init_generation};
use super::core_shared::{json_str, list_of, str_of};
use crate::field::{BadValue, ErrorList, FieldError, Path, json_value};
use crate::strategy::KindStrategy;
use crate::validation::{name_is_dns_subdomain, validate_namespace_name, validate_service_account_name};

const DEFAULT_MATCHING_PRECEDENCE: i32 = 1000;
const MAX_MATCHING_PRECEDENCE: i32 = 10000;
const DEFAULT_HAND_SIZE: i32 = 8;
const DEFAULT_QUEUES: i32 = 64;
const DEFAULT_QUEUE_LENGTH_LIMIT: i32 = 50;
const DEFAULT_NOMINAL_CONCURRENCY_SHARES: i32 = 30;
const MAX_QUEUES: i32 = 10_000_000;
const MAX_HASH_BITS: f64 = 60.0;
const DISTINGUISHER_METHODS: &[&str] = &["ByNamespace", "ByUser"];
const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "proxy",
    "update",
    "watch",
];
const SUBJECT_KINDS: &[&str] = &["Group", "ServiceAccount", "User"];
const ENABLEMENTS: &[&str] = &["Exempt", "Limited"];
const LIMIT_RESPONSE_TYPES: &[&str] = &["Queue", "Reject"];
const PRESERVE_ZERO_SHARES_ANNOTATION: &str = "flowcontrol.k8s.io/v1beta3-preserve-zero-concurrency-shares";
const NS_ERR_INTRO: &str = "each member of this list must be '*' or a DNS-1123 label; ";

fn has_wildcard(items: &[String]) -> bool {
    items.iter().any(|i| i == "*")
}

fn validate_verbs(verbs: &[String], path: &Path) -> ErrorList {
    if verbs.is_empty() {
        return vec![FieldError::required(
            path,
            "verbs must contain at least one value",
        )];
    }
    if has_wildcard(verbs) {
        if verbs.len() > 1 {
            return vec![FieldError::invalid(
                path,
                json_value(&verbs),
                "if '*' is present, must not specify other verbs",
            )];
        }
        return Vec::new();
    }
    if verbs.iter().any(|v| !VERBS.contains(&v.as_str())) {
        return vec![FieldError::not_supported(path, json_value(&verbs), VERBS)];
    }
    Vec::new()
}

/// Upstream's `ValidateNonResourceURLPath`.
fn validate_non_resource_url(url: &str, path: &Path) -> Option<FieldError> {
    let invalid = |msg: &str| Some(FieldError::invalid(path, url, msg));
    if url.is_empty() {
        return invalid("must not be empty");
    }
    if url == "/" {
        return None;
    }
    if !url.starts_with('/') {
        return invalid("must start with slash");
    }
    if url.contains(' ') {
        return invalid("must not contain white-space");
    }
    if url.contains("//") {
        return invalid("must not contain double slash");
    }
    let wildcards = url.matches('*').count();
    if wildcards > 1 || (wildcards == 1 && !url.ends_with("/*")) {
        return invalid("wildcard can only do suffix matching");
    }
    None
}

fn validate_resource_rule(rule: &ResourcePolicyRule, path: &Path) -> ErrorList {
    let mut errs = validate_verbs(&rule.verbs, &path.child("verbs"));
    if rule.api_groups.is_empty() {
        errs.push(FieldError::required(
            &path.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    } else if rule.api_groups.len() > 1 && has_wildcard(&rule.api_groups) {
        errs.push(FieldError::invalid(
            &path.child("apiGroups"),
            json_value(&rule.api_groups),
            "if '*' is present, must not specify other api groups",
        ));
    }
    if rule.resources.is_empty() {
        errs.push(FieldError::required(
            &path.child("resources"),
            "resource rules must supply at least one resource",
        ));
    } else if rule.resources.len() > 1 && has_wildcard(&rule.resources) {
        errs.push(FieldError::invalid(
            &path.child("resources"),
            json_value(&rule.resources),
            "if '*' is present, must not specify other resources",
        ));
    }
    let namespaces = list_of(&rule.namespaces);
    let ns_path = path.child("namespaces");
    if namespaces.is_empty() && !rule.cluster_scope.unwrap_or_default() {
        errs.push(FieldError::required(
            &ns_path,
            "resource rules that are not cluster scoped must supply at least one namespace",
        ));
    } else if has_wildcard(namespaces) {
        if namespaces.len() > 1 {
            errs.push(FieldError::invalid(
                &ns_path,
                json_value(&namespaces),
                "if '*' is present, must not specify other namespaces",
            ));
        }
    } else {
        for (i, namespace) in namespaces.iter().enumerate() {
            for msg in validate_namespace_name(namespace, false) {
                errs.push(FieldError::invalid(
                    &ns_path.index(i),
                    namespace.as_str(),
                    format!("{NS_ERR_INTRO}{msg}"),
                ));
            }
        }
    }
    errs
}

fn validate_non_resource_rule(rule: &NonResourcePolicyRule, path: &Path) -> ErrorList {
    let mut errs = validate_verbs(&rule.verbs, &path.child("verbs"));
    let urls_path = path.child("nonResourceURLs");
    if rule.non_resource_urls.is_empty() {
        errs.push(FieldError::required(
            &urls_path,
            "nonResourceURLs must contain at least one value",
        ));
    } else if has_wildcard(&rule.non_resource_urls) {
        if rule.non_resource_urls.len() > 1 {
            errs.push(FieldError::invalid(
                &urls_path,
                json_value(&rule.non_resource_urls),
                "if '*' is present, must not specify other non-resource URLs",
            ));
        }
    } else {
        for (i, url) in rule.non_resource_urls.iter().enumerate() {
            errs.extend(validate_non_resource_url(url, &urls_path.index(i)));
        }
    }
    errs
}

fn validate_subject(subject: &Subject, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let forbid = |errs: &mut ErrorList, present: bool, field: &str, kind: &str| {
        if present {
            errs.push(FieldError::forbidden(
                &path.child(field),
                format!("{field} is forbidden when subject kind is not '{kind}'"),
            ));
        }
    };
    match subject.kind.as_str() {
        "ServiceAccount" => {
            let sa_path = path.child("serviceAccount");
            match &subject.service_account {
                None => errs.push(FieldError::required(
                    &sa_path,
                    "serviceAccount is required when subject kind is 'ServiceAccount'",
                )),
                Some(sa) => {
                    if sa.name.is_empty() {
                        errs.push(FieldError::required(&sa_path.child("name"), ""));
                    } else if sa.name != "*" {
                        for msg in validate_service_account_name(&sa.name, false) {
                            errs.push(FieldError::invalid(&sa_path.child("name"), sa.name.as_str(), msg));
                        }
                    }
                    if sa.namespace.is_empty() {
                        errs.push(FieldError::required(
                            &sa_path.child("namespace"),
                            "must specify namespace for service account",
                        ));
                    } else {
                        for msg in validate_namespace_name(&sa.namespace, false) {
                            errs.push(FieldError::invalid(
                                &sa_path.child("namespace"),
                                sa.namespace.as_str(),
                                msg,
                            ));
                        }
                    }
                }
            }
            forbid(&mut errs, subject.user.is_some(), "user", "User");
            forbid(&mut errs, subject.group.is_some(), "group", "Group");
        }
        "User" => {
            match &subject.user {
                None => errs.push(FieldError::required(
                    &path.child("user"),
                    "user is required when subject kind is 'User'",
                )),
                Some(user) if user.name.is_empty() => {
                    errs.push(FieldError::required(&path.child("user").child("name"), ""));
                }
                Some(_) => {}
            }
            forbid(
                &mut errs,
                subject.service_account.is_some(),
                "serviceAccount",
                "ServiceAccount",
            );
            forbid(&mut errs, subject.group.is_some(), "group", "Group");
        }
        "Group" => {
            match &subject.group {
                None => errs.push(FieldError::required(
                    &path.child("group"),
                    "group is required when subject kind is 'Group'",
                )),
                Some(group) if group.name.is_empty() => {
                    errs.push(FieldError::required(&path.child("group").child("name"), ""));
                }
                Some(_) => {}
            }
            forbid(
                &mut errs,
                subject.service_account.is_some(),
                "serviceAccount",
                "ServiceAccount",
            );
            forbid(&mut errs, subject.user.is_some(), "user", "User");
        }
        other => errs.push(FieldError::not_supported(
            &path.child("kind"),
            other,
            SUBJECT_KINDS,
        )),
    }
    errs
}

fn validate_rule(rule: &PolicyRulesWithSubjects, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if rule.subjects.is_empty() {
        errs.push(FieldError::required(
            &path.child("subjects"),
            "subjects must contain at least one value",
        ));
    }
    for (i, subject) in rule.subjects.iter().enumerate() {
        errs.extend(validate_subject(subject, &path.child("subjects").index(i)));
    }
    let resource_rules = list_of(&rule.resource_rules);
    let non_resource_rules = list_of(&rule.non_resource_rules);
    if resource_rules.is_empty() && non_resource_rules.is_empty() {
        errs.push(FieldError::required(
            path,
            "at least one of resourceRules and nonResourceRules has to be non-empty",
        ));
    }
    for (i, r) in resource_rules.iter().enumerate() {
        errs.extend(validate_resource_rule(r, &path.child("resourceRules").index(i)));
    }
    for (i, r) in non_resource_rules.iter().enumerate() {
        errs.extend(validate_non_resource_rule(
            r,
            &path.child("nonResourceRules").index(i),
        ));
    }
    errs
}

fn validate_flow_schema_spec(name: &str, spec: &FlowSchemaSpec) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    let precedence = spec.matching_precedence.unwrap_or_default();
    let precedence_path = path.child("matchingPrecedence");
    if precedence <= 0 {
        errs.push(FieldError::invalid(
            &precedence_path,
            precedence,
            "must be a positive value",
        ));
    }
    if precedence > MAX_MATCHING_PRECEDENCE {
        errs.push(FieldError::invalid(
            &precedence_path,
            precedence,
            format!("must not be greater than {MAX_MATCHING_PRECEDENCE}"),
        ));
    }
    if precedence == 1 && name != "exempt" {
        errs.push(FieldError::invalid(
            &precedence_path,
            precedence,
            "only the schema named 'exempt' may have matchingPrecedence 1",
        ));
    }
    if let Some(method) = &spec.distinguisher_method
        && !DISTINGUISHER_METHODS.contains(&method.type_.as_str())
    {
        errs.push(FieldError::not_supported(
            &path.child("distinguisherMethod").child("type"),
            BadValue::Plain(format!("{{\"Type\":{}}}", json_str(&method.type_))),
            DISTINGUISHER_METHODS,
        ));
    }
    let level = &spec.priority_level_configuration.name;
    let level_path = path.child("priorityLevelConfiguration").child("name");
    if level.is_empty() {
        errs.push(FieldError::required(
            &level_path,
            "must reference a priority level",
        ));
    } else {
        for msg in name_is_dns_subdomain(level, false) {
            errs.push(FieldError::invalid(&level_path, level.as_str(), msg));
        }
    }
    for (i, rule) in list_of(&spec.rules).iter().enumerate() {
        errs.extend(validate_rule(rule, &path.child("rules").index(i)));
    }
    errs
}

fn validate_condition_types<'a>(types: impl Iterator<Item = &'a str>) -> ErrorList {
    let path = Path::new("status").child("conditions");
    let mut errs = ErrorList::new();
    let mut seen = BTreeSet::new();
    for (i, type_) in types.enumerate() {
        if !seen.insert(type_) {
            errs.push(FieldError::duplicate(&path.index(i).child("type"), type_));
        }
        if type_.is_empty() {
            errs.push(FieldError::required(&path.index(i).child("type"), ""));
        }
    }
    errs
}

fn validate_flow_schema_status(fs: &FlowSchema) -> ErrorList {
    let conditions = fs.status.as_ref().map_or(&[][..], |s| list_of(&s.conditions));
    validate_condition_types(conditions.iter().map(|c| str_of(&c.type_)))
}

fn validate_flow_schema(fs: &FlowSchema) -> ErrorList {
    let mut errs = core_meta(&fs.metadata, false, name_is_dns_subdomain);
    errs.extend(validate_flow_schema_spec(
        str_of(&fs.metadata.name),
        &fs.spec.clone().unwrap_or_default(),
    ));
    errs.extend(validate_flow_schema_status(fs));
    errs
}

impl KindStrategy for FlowSchema {
    /// The spec and status are non-pointer structs upstream: always written.
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(FlowSchemaSpec::default);
        if spec.matching_precedence.unwrap_or_default() == 0 {
            spec.matching_precedence = Some(DEFAULT_MATCHING_PRECEDENCE);
        }
        self.status.get_or_insert_with(FlowSchemaStatus::default);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(FlowSchemaStatus::default());
        init_generation(&mut self.metadata);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        bump_generation(&mut self.metadata, &old.metadata, differs(&self.spec, &old.spec));
        self.status.clone_from(&old.status);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        let managed_fields = self.metadata.managed_fields.take();
        self.metadata = old.metadata.clone();
        self.metadata.managed_fields = managed_fields;
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        validate_flow_schema(self)
    }

    fn validate_update(&self, _old: &Self) -> ErrorList {
        validate_flow_schema(self)
    }

    fn validate_status_update(&self, _old: &Self) -> ErrorList {
        validate_flow_schema_status(self)
    }
}

// PriorityLevelConfiguration

fn validate_queuing(queuing: &QueuingConfiguration, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let limit = queuing.queue_length_limit.unwrap_or_default();
    if limit <= 0 {
        errs.push(FieldError::invalid(
            &path.child("queueLengthLimit"),
            limit,
            "must be positive",
        ));
    }
    let queues = queuing.queues.unwrap_or_default();
    if queues <= 0 {
        errs.push(FieldError::invalid(
            &path.child("queues"),
            queues,
            "must be positive",
        ));
    } else if queues > MAX_QUEUES {
        errs.push(FieldError::invalid(
            &path.child("queues"),
            queues,
            format!("must not be greater than {MAX_QUEUES}"),
        ));
    }
    let hand_size = queuing.hand_size.unwrap_or_default();
    let hand_path = path.child("handSize");
    if hand_size <= 0 {
        errs.push(FieldError::invalid(&hand_path, hand_size, "must be positive"));
    } else if hand_size > queues {
        errs.push(FieldError::invalid(
            &hand_path,
            hand_size,
            format!("should not be greater than queues ({queues})"),
        ));
    } else if (f64::from(queues).log2() * f64::from(hand_size)).ceil() > MAX_HASH_BITS {
        errs.push(FieldError::invalid(
            &hand_path,
            hand_size,
            format!(
                "required entropy bits of deckSize {queues} and handSize {hand_size} should not be greater than {MAX_HASH_BITS}"
            ),
        ));
    }
    errs
}

fn validate_limit_response(response: &LimitResponse, path: &Path) -> ErrorList {
    match response.type_.as_str() {
        "Reject" if response.queuing.is_some() => vec![FieldError::forbidden(
            &path.child("queuing"),
            "must be nil if limited.limitResponse.type is not Limited",
        )],
        "Reject" => Vec::new(),
        "Queue" => match &response.queuing {
            None => vec![FieldError::required(
                &path.child("queuing"),
                "must not be empty if limited.limitResponse.type is Limited",
            )],
            Some(queuing) => validate_queuing(queuing, &path.child("queuing")),
        },
        other => vec![FieldError::not_supported(
            &path.child("type"),
            other,
            LIMIT_RESPONSE_TYPES,
        )],
    }
}

fn validate_lendable(percent: Option<i32>, path: &Path) -> ErrorList {
    match percent {
        Some(p) if !(0..=100).contains(&p) => vec![FieldError::invalid(
            &path.child("lendablePercent"),
            p,
            "must be between 0 and 100, inclusive",
        )],
        _ => Vec::new(),
    }
}

fn validate_limited(limited: &LimitedPriorityLevelConfiguration, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let shares = limited.nominal_concurrency_shares.unwrap_or_default();
    if shares < 0 {
        errs.push(FieldError::invalid(
            &path.child("nominalConcurrencyShares"),
            shares,
            "must be a non-negative integer",
        ));
    }
    errs.extend(validate_limit_response(
        &limited.limit_response.clone().unwrap_or_default(),
        &path.child("limitResponse"),
    ));
    errs.extend(validate_lendable(limited.lendable_percent, path));
    if let Some(limit) = limited.borrowing_limit_percent.filter(|l| *l < 0) {
        errs.push(FieldError::invalid(
            &path.child("borrowingLimitPercent"),
            limit,
            "if specified, must be a non-negative integer",
        ));
    }
    errs
}

fn validate_priority_level_spec(name: &str, spec: &PriorityLevelConfigurationSpec) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    if (name == "exempt") != (spec.type_ == "Exempt") {
        errs.push(FieldError::invalid(
            &path.child("type"),
            spec.type_.as_str(),
            "must be 'Exempt' if and only if `name` is 'exempt'",
        ));
    }
    match spec.type_.as_str() {
        "Exempt" => {
            if spec.limited.is_some() {
                errs.push(FieldError::forbidden(
                    &path.child("limited"),
                    "must be nil if the type is not Limited",
                ));
            }
            if let Some(exempt) = &spec.exempt {
                let exempt_path = path.child("exempt");
                if let Some(shares) = exempt.nominal_concurrency_shares.filter(|s| *s < 0) {
                    errs.push(FieldError::invalid(
                        &exempt_path.child("nominalConcurrencyShares"),
                        shares,
                        "must be a non-negative integer",
                    ));
                }
                errs.extend(validate_lendable(exempt.lendable_percent, &exempt_path));
            }
        }
        "Limited" => {
            if spec.exempt.is_some() {
                errs.push(FieldError::forbidden(
                    &path.child("exempt"),
                    "must be nil if the type is Limited",
                ));
            }
            match &spec.limited {
                None => errs.push(FieldError::required(
                    &path.child("limited"),
                    "must not be empty when type is Limited",
                )),
                Some(limited) => errs.extend(validate_limited(limited, &path.child("limited"))),
            }
        }
        other => errs.push(FieldError::not_supported(&path.child("type"), other, ENABLEMENTS)),
    }
    errs
}

fn validate_priority_level_status(pl: &PriorityLevelConfiguration) -> ErrorList {
    let conditions = pl.status.as_ref().map_or(&[][..], |s| list_of(&s.conditions));
    validate_condition_types(conditions.iter().map(|c| str_of(&c.type_)))
}

fn validate_priority_level(pl: &PriorityLevelConfiguration) -> ErrorList {
    let mut errs = core_meta(&pl.metadata, false, name_is_dns_subdomain);
    let annotated = pl
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(PRESERVE_ZERO_SHARES_ANNOTATION));
    if annotated {
        errs.push(FieldError::forbidden(
            &Path::new("metadata").child("annotations"),
            format!("annotation '{PRESERVE_ZERO_SHARES_ANNOTATION}' is forbidden"),
        ));
    }
    errs.extend(validate_priority_level_spec(
        str_of(&pl.metadata.name),
        &pl.spec.clone().unwrap_or_default(),
    ));
    errs.extend(validate_priority_level_status(pl));
    errs
}

impl KindStrategy for PriorityLevelConfiguration {
    /// The spec, status and a limited level's limit response are non-pointer structs
    /// upstream: always written.
    fn apply_defaults(&mut self) {
        let spec = self
            .spec
            .get_or_insert_with(PriorityLevelConfigurationSpec::default);
        if let Some(limited) = &mut spec.limited {
            limited
                .nominal_concurrency_shares
                .get_or_insert(DEFAULT_NOMINAL_CONCURRENCY_SHARES);
            limited.lendable_percent.get_or_insert(0);
            let response = limited.limit_response.get_or_insert_with(LimitResponse::default);
            if let Some(queuing) = &mut response.queuing {
                for (field, default) in [
                    (&mut queuing.hand_size, DEFAULT_HAND_SIZE),
                    (&mut queuing.queues, DEFAULT_QUEUES),
                    (&mut queuing.queue_length_limit, DEFAULT_QUEUE_LENGTH_LIMIT),
                ] {
                    if field.unwrap_or_default() == 0 {
                        *field = Some(default);
                    }
                }
            }
        }
        if let Some(exempt) = &mut spec.exempt {
            exempt.nominal_concurrency_shares.get_or_insert(0);
            exempt.lendable_percent.get_or_insert(0);
        }
        self.status
            .get_or_insert_with(PriorityLevelConfigurationStatus::default);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(PriorityLevelConfigurationStatus::default());
        init_generation(&mut self.metadata);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        bump_generation(&mut self.metadata, &old.metadata, differs(&self.spec, &old.spec));
        self.status.clone_from(&old.status);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        let managed_fields = self.metadata.managed_fields.take();
        self.metadata = old.metadata.clone();
        self.metadata.managed_fields = managed_fields;
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        validate_priority_level(self)
    }

    fn validate_update(&self, _old: &Self) -> ErrorList {
        validate_priority_level(self)
    }

    fn validate_status_update(&self, _old: &Self) -> ErrorList {
        validate_priority_level_status(self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::api_shared::testing::{check_create_cases, create, update, update_errors};
    use crate::strategy::UpdateTarget;

    const API: &str = "flowcontrol.apiserver.k8s.io/v1";

    #[test]
    fn defaults() {
        let fs = create(json!({"apiVersion": API, "kind": "FlowSchema", "metadata": {"name": "fs"},
            "spec": {"priorityLevelConfiguration": {"name": "pl"}}, "status": {"conditions": [{"type": "Dangling"}]}}))
        .unwrap();
        assert_eq!(
            fs,
            json!({"apiVersion": API, "kind": "FlowSchema", "metadata": {"name": "fs", "generation": 1},
                "spec": {"matchingPrecedence": 1000, "priorityLevelConfiguration": {"name": "pl"}}, "status": {}})
        );
        let pl = create(
            json!({"apiVersion": API, "kind": "PriorityLevelConfiguration", "metadata": {"name": "pl"},
            "spec": {"type": "Limited", "limited": {"limitResponse": {"type": "Queue", "queuing": {}}}}}),
        )
        .unwrap();
        assert_eq!(
            pl,
            json!({"apiVersion": API, "kind": "PriorityLevelConfiguration", "metadata": {"name": "pl", "generation": 1},
                "spec": {"type": "Limited", "limited": {
                    "lendablePercent": 0,
                    "limitResponse": {"queuing": {"handSize": 8, "queueLengthLimit": 50, "queues": 64}, "type": "Queue"},
                    "nominalConcurrencyShares": 30
                }},
                "status": {}})
        );
        let exempt = create(
            json!({"apiVersion": API, "kind": "PriorityLevelConfiguration", "metadata": {"name": "exempt"},
            "spec": {"type": "Exempt", "exempt": {}}}),
        )
        .unwrap();
        assert_eq!(
            exempt["spec"],
            json!({"type": "Exempt", "exempt": {"lendablePercent": 0, "nominalConcurrencyShares": 0}})
        );
        // Status updates keep the spec; main updates keep the status.
        let mut old = fs;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["spec"]["matchingPrecedence"] = json!(500);
        new["status"] = json!({"conditions": [{"type": "Dangling", "status": "False"}]});
        let status = update(new.clone(), &old, UpdateTarget::Status).unwrap();
        assert_eq!(status["spec"]["matchingPrecedence"], json!(1000));
        assert_eq!(status["status"]["conditions"][0]["status"], json!("False"));
        let main = update(new, &old, UpdateTarget::Main).unwrap();
        assert_eq!(main["status"], json!({}));
        assert_eq!(main["metadata"]["generation"], json!(2));
        let mut dup = old.clone();
        dup["status"] = json!({"conditions": [{"type": "A"}, {"type": "A"}]});
        assert_eq!(
            update_errors(dup, &old, UpdateTarget::Status),
            ["status.conditions[1].type: Duplicate value: \"A\""]
        );
    }

    #[test]
    fn validation() {
        check_create_cases(&[
            (
                json!({"apiVersion": API, "kind": "FlowSchema", "metadata": {"name": "fs"},
                    "spec": {"matchingPrecedence": 1, "distinguisherMethod": {"type": "ByGroup"}, "priorityLevelConfiguration": {"name": ""},
                        "rules": [{"subjects": [{"kind": "ServiceAccount", "serviceAccount": {"name": "", "namespace": ""}, "user": {"name": "u"}},
                                                {"kind": "Robot"}],
                                   "resourceRules": [{"verbs": ["get", "fly"], "apiGroups": ["*", "apps"], "resources": ["pods"], "namespaces": ["Bad"]}],
                                   "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["/a/*/b", "x"]}]}]}}),
                vec![
                    "spec.matchingPrecedence: Invalid value: 1: only the schema named 'exempt' may have matchingPrecedence 1",
                    "spec.distinguisherMethod.type: Unsupported value: {\"Type\":\"ByGroup\"}: supported values: \"ByNamespace\", \"ByUser\"",
                    "spec.priorityLevelConfiguration.name: Required value: must reference a priority level",
                    "spec.rules[0].subjects[0].serviceAccount.name: Required value",
                    "spec.rules[0].subjects[0].serviceAccount.namespace: Required value: must specify namespace for service account",
                    "spec.rules[0].subjects[0].user: Forbidden: user is forbidden when subject kind is not 'User'",
                    "spec.rules[0].subjects[1].kind: Unsupported value: \"Robot\": supported values: \"Group\", \"ServiceAccount\", \"User\"",
                    "spec.rules[0].resourceRules[0].verbs: Unsupported value: [\"get\",\"fly\"]: supported values: \"create\", \"delete\", \"deletecollection\", \"get\", \"list\", \"patch\", \"proxy\", \"update\", \"watch\"",
                    "spec.rules[0].resourceRules[0].apiGroups: Invalid value: [\"*\",\"apps\"]: if '*' is present, must not specify other api groups",
                    "spec.rules[0].resourceRules[0].namespaces[0]: Invalid value: \"Bad\": each member of this list must be '*' or a DNS-1123 label; a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                    "spec.rules[0].nonResourceRules[0].nonResourceURLs[0]: Invalid value: \"/a/*/b\": wildcard can only do suffix matching",
                    "spec.rules[0].nonResourceRules[0].nonResourceURLs[1]: Invalid value: \"x\": must start with slash",
                ],
            ),
            (
                json!({"apiVersion": API, "kind": "PriorityLevelConfiguration", "metadata": {"name": "pl",
                    "annotations": {"flowcontrol.k8s.io/v1beta3-preserve-zero-concurrency-shares": ""}},
                    "spec": {"type": "Limited", "exempt": {}, "limited": {"lendablePercent": 101, "borrowingLimitPercent": -1,
                        "limitResponse": {"type": "Queue", "queuing": {"queues": 128, "handSize": 9}}}}}),
                vec![
                    "metadata.annotations: Forbidden: annotation 'flowcontrol.k8s.io/v1beta3-preserve-zero-concurrency-shares' is forbidden",
                    "spec.exempt: Forbidden: must be nil if the type is Limited",
                    "spec.limited.limitResponse.queuing.handSize: Invalid value: 9: required entropy bits of deckSize 128 and handSize 9 should not be greater than 60",
                    "spec.limited.lendablePercent: Invalid value: 101: must be between 0 and 100, inclusive",
                    "spec.limited.borrowingLimitPercent: Invalid value: -1: if specified, must be a non-negative integer",
                ],
            ),
            (
                json!({"apiVersion": API, "kind": "PriorityLevelConfiguration", "metadata": {"name": "exempt"},
                    "spec": {"type": "Limited", "limited": {}}}),
                vec![
                    "spec.type: Invalid value: \"Limited\": must be 'Exempt' if and only if `name` is 'exempt'",
                    "spec.limited.limitResponse.type: Unsupported value: \"\": supported values: \"Queue\", \"Reject\"",
                ],
            ),
        ]);
    }
}
