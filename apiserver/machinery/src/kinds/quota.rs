//! The strategies of the namespace policy kinds: LimitRange and ResourceQuota.
//!
//! Ports `SetDefaults_LimitRangeItem` and the resource-list rounding of
//! zz_generated.defaults.go, pkg/registry/core/{limitrange,resourcequota}/strategy.go (status
//! reset and status subresource, the request-above-limit warnings), and `ValidateLimitRange`,
//! `ValidateResourceQuota*` of pkg/apis/core/validation/validation.go.
//!
//! An unparsable quantity is rejected by upstream's decoder (400); here it becomes an
//! `Invalid` error of its field.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, ResourceQuota, ResourceQuotaSpec, ResourceQuotaStatus, ScopeSelector,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::core_shared::{json_str, json_str_list, list_of, meta_path, parse_resource_list, str_of};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{
    FIELD_IMMUTABLE_ERROR_MSG, ParsedQuantity, QuantityFormat, is_overcommit_allowed, is_qualified_name,
    is_resource_quota_scope_valid_for_resource, is_standard_limit_range_type,
    is_standard_quota_resource_name, is_standard_resource_quota_scope, name_errors, name_is_dns_subdomain,
    parse_quantity, set_defaults_resource_list, validate_container_resource_name, validate_object_meta,
    validate_object_meta_update, validate_resource_name, validate_resource_quantity,
    validate_resource_quota_resource_name,
};

type ResourceList = Option<BTreeMap<String, Quantity>>;

/// `SetDefaults_ResourceList`, and an empty list left out as upstream's encoder leaves it out.
pub(super) fn default_resource_list(list: &mut ResourceList) {
    set_defaults_resource_list(list);
    if list.as_ref().is_some_and(BTreeMap::is_empty) {
        *list = None;
    }
}

// LimitRange

/// `SetDefaults_LimitRangeItem`: container limits default to the max, requests to the default
/// limit and then to the min.
fn default_limit_range_item(item: &mut LimitRangeItem) {
    if item.type_ == "Container" {
        let mut default = item.default.take().unwrap_or_default();
        let mut default_request = item.default_request.take().unwrap_or_default();
        for (key, value) in item.max.iter().flatten() {
            default.entry(key.clone()).or_insert_with(|| value.clone());
        }
        for (key, value) in &default {
            default_request
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
        for (key, value) in item.min.iter().flatten() {
            default_request
                .entry(key.clone())
                .or_insert_with(|| value.clone());
        }
        item.default = Some(default);
        item.default_request = Some(default_request);
    }
    for list in [
        &mut item.max,
        &mut item.min,
        &mut item.default,
        &mut item.default_request,
        &mut item.max_limit_request_ratio,
    ] {
        default_resource_list(list);
    }
}

fn validate_limit_range_type_name(value: &str, path: &Path) -> ErrorList {
    let errs = name_errors(path, value, is_qualified_name(value));
    if !errs.is_empty() {
        return errs;
    }
    if !value.contains('/') && !is_standard_limit_range_type(value) {
        return vec![FieldError::invalid(
            path,
            value,
            "must be a standard limit type or fully qualified",
        )];
    }
    errs
}

fn validate_limit_range_resource_name(limit_type: &str, value: &str, path: &Path) -> ErrorList {
    match limit_type {
        "Pod" | "Container" => validate_container_resource_name(value, path),
        _ => validate_resource_name(value, path),
    }
}

/// A quantity as a bad value: upstream renders the `Quantity` as its JSON string.
fn quantity_value(q: &ParsedQuantity) -> BadValue {
    BadValue::Str(q.to_string())
}

/// Go's `%f`.
fn go_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        }
    } else {
        format!("{value:.6}")
    }
}

/// `resource.MaxMilliValue`.
const MAX_MILLI_VALUE: i64 = i64::MAX / 1000;

fn validate_limit_range_item(limit: &LimitRangeItem, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let limit_type = limit.type_.as_str();
    let mut keys = BTreeSet::new();
    let parsed = |list: &ResourceList, name: &str, errs: &mut ErrorList, keys: &mut BTreeSet<String>| {
        let list_path = path.child(name);
        for key in list.iter().flatten().map(|(k, _)| k) {
            errs.extend(validate_limit_range_resource_name(
                limit_type,
                key,
                &list_path.key(key),
            ));
            keys.insert(key.clone());
        }
        let (values, parse_errs) = parse_resource_list(list, &list_path);
        errs.extend(parse_errs);
        values
    };
    let max = parsed(&limit.max, "max", &mut errs, &mut keys);
    let min = parsed(&limit.min, "min", &mut errs, &mut keys);
    let (mut defaults, mut default_requests) = (BTreeMap::new(), BTreeMap::new());
    if limit_type == "Pod" {
        if limit.default.as_ref().is_some_and(|d| !d.is_empty()) {
            errs.push(FieldError::forbidden(
                &path.child("default"),
                "may not be specified when `type` is 'Pod'",
            ));
        }
        if limit.default_request.as_ref().is_some_and(|d| !d.is_empty()) {
            errs.push(FieldError::forbidden(
                &path.child("defaultRequest"),
                "may not be specified when `type` is 'Pod'",
            ));
        }
    } else {
        defaults = parsed(&limit.default, "default", &mut errs, &mut keys);
        default_requests = parsed(&limit.default_request, "defaultRequest", &mut errs, &mut keys);
    }
    if limit_type == "PersistentVolumeClaim" {
        let has = |list: &ResourceList| list.as_ref().is_some_and(|l| l.contains_key("storage"));
        if !has(&limit.min) && !has(&limit.max) {
            errs.push(FieldError::required(
                &path.child("limits"),
                "either minimum or maximum storage value is required, but neither was provided",
            ));
        }
    }
    let ratios = parsed(
        &limit.max_limit_request_ratio,
        "maxLimitRequestRatio",
        &mut errs,
        &mut keys,
    );
    let one = ParsedQuantity::from_i64(1, QuantityFormat::DecimalSI);
    for key in &keys {
        let (min_q, max_q, default_q, request_q, ratio_q) = (
            min.get(key),
            max.get(key),
            defaults.get(key),
            default_requests.get(key),
            ratios.get(key),
        );
        if let (Some(min_q), Some(max_q)) = (min_q, max_q)
            && min_q > max_q
        {
            errs.push(FieldError::invalid(
                &path.child("min").key(key),
                quantity_value(min_q),
                format!("min value {min_q} is greater than max value {max_q}"),
            ));
        }
        if let (Some(request_q), Some(min_q)) = (request_q, min_q)
            && min_q > request_q
        {
            errs.push(FieldError::invalid(
                &path.child("defaultRequest").key(key),
                quantity_value(request_q),
                format!("min value {min_q} is greater than default request value {request_q}"),
            ));
        }
        if let (Some(request_q), Some(max_q)) = (request_q, max_q)
            && request_q > max_q
        {
            errs.push(FieldError::invalid(
                &path.child("defaultRequest").key(key),
                quantity_value(request_q),
                format!("default request value {request_q} is greater than max value {max_q}"),
            ));
        }
        if let (Some(request_q), Some(default_q)) = (request_q, default_q)
            && request_q > default_q
        {
            errs.push(FieldError::invalid(
                &path.child("defaultRequest").key(key),
                quantity_value(request_q),
                format!("default request value {request_q} is greater than default limit value {default_q}"),
            ));
        }
        if let (Some(default_q), Some(min_q)) = (default_q, min_q)
            && min_q > default_q
        {
            errs.push(FieldError::invalid(
                &path.child("default").key(key),
                quantity_value(min_q),
                format!("min value {min_q} is greater than default value {default_q}"),
            ));
        }
        if let (Some(default_q), Some(max_q)) = (default_q, max_q)
            && default_q > max_q
        {
            errs.push(FieldError::invalid(
                &path.child("default").key(key),
                quantity_value(max_q),
                format!("default value {default_q} is greater than max value {max_q}"),
            ));
        }
        if let Some(ratio_q) = ratio_q {
            if *ratio_q < one {
                errs.push(FieldError::invalid(
                    &path.child("maxLimitRequestRatio").key(key),
                    quantity_value(ratio_q),
                    format!("ratio {ratio_q} is less than 1"),
                ));
            }
            if let (Some(min_q), Some(max_q)) = (min_q, max_q) {
                #[allow(clippy::cast_precision_loss)]
                let (ratio, limit) = {
                    let (mut ratio, mut min_v, mut max_v) =
                        (ratio_q.value() as f64, min_q.value(), max_q.value());
                    if ratio_q.value() < MAX_MILLI_VALUE && min_v < MAX_MILLI_VALUE && max_v < MAX_MILLI_VALUE
                    {
                        ratio = ratio_q.milli_value() as f64 / 1000.0;
                        min_v = min_q.milli_value();
                        max_v = max_q.milli_value();
                    }
                    (ratio, max_v as f64 / min_v as f64)
                };
                if ratio > limit {
                    errs.push(FieldError::invalid(
                        &path.child("maxLimitRequestRatio").key(key),
                        quantity_value(ratio_q),
                        format!("ratio {ratio_q} is greater than max/min = {}", go_float(limit)),
                    ));
                }
            }
        }
        if let (Some(default_q), Some(request_q)) = (default_q, request_q)
            && !is_overcommit_allowed(key)
            && default_q != request_q
        {
            errs.push(FieldError::invalid(
                &path.child("defaultRequest").key(key),
                quantity_value(request_q),
                format!("default value {default_q} must equal to defaultRequest value {request_q} in {key}"),
            ));
        }
    }
    errs
}

/// Upstream's `ValidateLimitRange` (used for updates too, without the metadata update rules).
fn validate_limit_range(lr: &LimitRange) -> ErrorList {
    let mut errs = validate_object_meta(&lr.metadata, true, name_is_dns_subdomain, &meta_path());
    let path = Path::new("spec").child("limits");
    let mut types = BTreeSet::new();
    let limits = lr.spec.as_ref().map_or(&[][..], |s| s.limits.as_slice());
    for (i, limit) in limits.iter().enumerate() {
        let item_path = path.index(i);
        errs.extend(validate_limit_range_type_name(
            &limit.type_,
            &item_path.child("type"),
        ));
        if !types.insert(limit.type_.as_str()) {
            errs.push(FieldError::duplicate(
                &item_path.child("type"),
                limit.type_.as_str(),
            ));
        }
        errs.extend(validate_limit_range_item(limit, &item_path));
    }
    errs
}

impl KindStrategy for LimitRange {
    fn apply_defaults(&mut self) {
        for item in self.spec.iter_mut().flat_map(|s| s.limits.iter_mut()) {
            default_limit_range_item(item);
        }
    }

    fn validate(&self) -> ErrorList {
        validate_limit_range(self)
    }

    fn validate_update(&self, _old: &Self) -> ErrorList {
        validate_limit_range(self)
    }

    const ALLOW_CREATE_ON_UPDATE: bool = true;
}

// ResourceQuota

fn hard_names(spec: &ResourceQuotaSpec) -> Vec<&str> {
    spec.hard.iter().flatten().map(|(k, _)| k.as_str()).collect()
}

/// The internal `ScopeSelector` as Go's JSON encoder writes it.
fn scope_selector_json(selector: &ScopeSelector) -> String {
    let expressions: Vec<String> = list_of(&selector.match_expressions)
        .iter()
        .map(|e| {
            format!(
                "{{\"ScopeName\":{},\"Operator\":{},\"Values\":{}}}",
                json_str(&e.scope_name),
                json_str(&e.operator),
                json_str_list(&e.values)
            )
        })
        .collect();
    let expressions = if selector.match_expressions.is_none() {
        "null".to_owned()
    } else {
        format!("[{}]", expressions.join(","))
    };
    format!("{{\"MatchExpressions\":{expressions}}}")
}

const INVALID_SCOPE_PAIRS: &[(&str, &str)] =
    &[("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating")];

fn validate_resource_quota_scopes(spec: &ResourceQuotaSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let scopes = list_of(&spec.scopes);
    if scopes.is_empty() {
        return errs;
    }
    let scopes_path = path.child("scopes");
    let rendered = || BadValue::Plain(json_str_list(&spec.scopes));
    let hard = hard_names(spec);
    for scope in scopes {
        if !is_standard_resource_quota_scope(scope) {
            errs.push(FieldError::invalid(&scopes_path, rendered(), "unsupported scope"));
        }
        for name in &hard {
            if is_standard_quota_resource_name(name)
                && !is_resource_quota_scope_valid_for_resource(scope, name)
            {
                errs.push(FieldError::invalid(
                    &scopes_path,
                    rendered(),
                    "unsupported scope applied to resource",
                ));
            }
        }
    }
    for (a, b) in INVALID_SCOPE_PAIRS {
        if scopes.iter().any(|s| s == a) && scopes.iter().any(|s| s == b) {
            errs.push(FieldError::invalid(
                &scopes_path,
                rendered(),
                "conflicting scopes",
            ));
        }
    }
    errs
}

fn validate_scope_selector(spec: &ResourceQuotaSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(selector) = &spec.scope_selector else {
        return errs;
    };
    let expr_path = path.child("scopeSelector").child("matchExpressions");
    let hard = hard_names(spec);
    let mut scopes = BTreeSet::new();
    for req in list_of(&selector.match_expressions) {
        let scope = req.scope_name.as_str();
        if !is_standard_resource_quota_scope(scope) {
            errs.push(FieldError::invalid(
                &expr_path.child("scopeName"),
                scope,
                "unsupported scope",
            ));
        }
        for name in &hard {
            if is_standard_quota_resource_name(name)
                && !is_resource_quota_scope_valid_for_resource(scope, name)
            {
                errs.push(FieldError::invalid(
                    &expr_path,
                    BadValue::Plain(scope_selector_json(selector)),
                    "unsupported scope applied to resource",
                ));
            }
        }
        let operator = req.operator.as_str();
        if matches!(
            scope,
            "BestEffort" | "NotBestEffort" | "Terminating" | "NotTerminating" | "CrossNamespacePodAffinity"
        ) && operator != "Exists"
        {
            errs.push(FieldError::invalid(
                &expr_path.child("operator"),
                operator,
                "must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
            ));
        }
        let values = list_of(&req.values);
        match operator {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        &expr_path.child("values"),
                        "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::invalid(
                        &expr_path.child("values"),
                        BadValue::Plain(json_str_list(&req.values)),
                        "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                &expr_path.child("operator"),
                operator,
                "not a valid selector operator",
            )),
        }
        scopes.insert(scope);
    }
    for (a, b) in INVALID_SCOPE_PAIRS {
        if scopes.contains(a) && scopes.contains(b) {
            errs.push(FieldError::invalid(
                &expr_path,
                BadValue::Plain(json_str_list(&spec.scopes)),
                "conflicting scopes",
            ));
        }
    }
    errs
}

fn validate_quota_list(list: &ResourceList, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (name, value) in list.iter().flatten() {
        let item_path = path.key(name);
        errs.extend(validate_resource_quota_resource_name(name, &item_path));
        errs.extend(validate_resource_quantity(name, value, &item_path));
    }
    errs
}

fn validate_quota_spec(spec: Option<&ResourceQuotaSpec>) -> ErrorList {
    let path = Path::new("spec");
    let Some(spec) = spec else {
        return Vec::new();
    };
    let mut errs = validate_quota_list(&spec.hard, &path.child("hard"));
    errs.extend(validate_resource_quota_scopes(spec, &path));
    errs.extend(validate_scope_selector(spec, &path));
    errs
}

fn validate_quota_status(status: Option<&ResourceQuotaStatus>) -> ErrorList {
    let path = Path::new("status");
    let Some(status) = status else {
        return Vec::new();
    };
    let mut errs = validate_quota_list(&status.hard, &path.child("hard"));
    errs.extend(validate_quota_list(&status.used, &path.child("used")));
    errs
}

fn scopes(quota: &ResourceQuota) -> &[String] {
    quota.spec.as_ref().map_or(&[], |s| list_of(&s.scopes))
}

impl KindStrategy for ResourceQuota {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(ResourceQuotaSpec::default);
        default_resource_list(&mut spec.hard);
        let status = self.status.get_or_insert_with(ResourceQuotaStatus::default);
        default_resource_list(&mut status.hard);
        default_resource_list(&mut status.used);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(ResourceQuotaStatus::default());
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        let mut errs = validate_object_meta(&self.metadata, true, name_is_dns_subdomain, &meta_path());
        errs.extend(validate_quota_spec(self.spec.as_ref()));
        errs.extend(validate_quota_status(self.status.as_ref()));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        errs.extend(validate_quota_spec(self.spec.as_ref()));
        let new_scopes: BTreeSet<&String> = scopes(self).iter().collect();
        let old_scopes: BTreeSet<&String> = scopes(old).iter().collect();
        if new_scopes != old_scopes {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("scopes"),
                BadValue::Plain(json_str_list(&self.spec.as_ref().and_then(|s| s.scopes.clone()))),
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        if str_of(&self.metadata.resource_version).is_empty() {
            errs.push(FieldError::required(&Path::new("resourceVersion"), ""));
        }
        errs.extend(validate_quota_status(self.status.as_ref()));
        errs
    }

    /// Upstream warns on create only (see `warnings_on_update`).
    fn warnings_on_update(&self) -> Vec<String> {
        Vec::new()
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let Some(hard) = self.spec.as_ref().and_then(|s| s.hard.as_ref()) else {
            return warnings;
        };
        let parse = |name: &str| hard.get(name).and_then(|q| parse_quantity(q.0.trim()).ok());
        for resource in ["cpu", "memory", "storage", "ephemeral-storage"] {
            let mut request_name = format!("requests.{resource}");
            let mut request = parse(&request_name);
            if request.is_none() && (resource == "cpu" || resource == "memory") {
                request = parse(resource);
                if request.is_some() {
                    request_name = resource.to_owned();
                }
            }
            let limit_name = format!("limits.{resource}");
            if let (Some(request), Some(limit)) = (request, parse(&limit_name))
                && request > limit
            {
                warnings.push(format!(
                    "ResourceQuota {request_name} ({request}) should be less than {limit_name} ({limit})"
                ));
            }
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::core_shared::testing::{create, create_errors, update, update_errors, warnings};
    use crate::strategy::UpdateTarget;

    #[test]
    fn limit_range_defaults() {
        let out = create(
            "LimitRange",
            json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "l", "namespace": "ns"},
                   "spec": {"limits": [
                       {"type": "Container", "max": {"cpu": "2", "memory": "1024Mi"}, "min": {"cpu": "0.0001"}, "default": {"cpu": "1"}},
                       {"type": "Pod", "max": {"cpu": "4"}}
                   ]}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"],
            json!({"limits": [
                {"type": "Container", "max": {"cpu": "2", "memory": "1Gi"}, "min": {"cpu": "1m"},
                 "default": {"cpu": "1", "memory": "1Gi"}, "defaultRequest": {"cpu": "1", "memory": "1Gi"}},
                {"type": "Pod", "max": {"cpu": "4"}}
            ]})
        );
    }

    #[test]
    fn limit_range_validation() {
        let lr = |limits: serde_json::Value| json!({"metadata": {"name": "l", "namespace": "ns"}, "spec": {"limits": limits}});
        let cases = [
            (
                lr(
                    json!([{"type": "Pod", "default": {"cpu": "1"}, "max": {"pods": "1"}}, {"type": "Pod"}, {"type": "Weird"}]),
                ),
                vec![
                    "spec.limits[0].max[pods]: Invalid value: \"pods\": must be a standard resource for containers",
                    "spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'",
                    "spec.limits[1].type: Duplicate value: \"Pod\"",
                    "spec.limits[2].type: Invalid value: \"Weird\": must be a standard limit type or fully qualified",
                ],
            ),
            (
                lr(
                    json!([{"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}, "maxLimitRequestRatio": {"cpu": "500m"}}]),
                ),
                vec![
                    "spec.limits[0].min[cpu]: Invalid value: \"2\": min value 2 is greater than max value 1",
                    "spec.limits[0].defaultRequest[cpu]: Invalid value: \"1\": min value 2 is greater than default request value 1",
                    "spec.limits[0].default[cpu]: Invalid value: \"2\": min value 2 is greater than default value 1",
                    "spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: \"500m\": ratio 500m is less than 1",
                ],
            ),
            (
                lr(
                    json!([{"type": "Container", "min": {"memory": "1Gi"}, "max": {"memory": "2Gi"}, "maxLimitRequestRatio": {"memory": "3"}}]),
                ),
                vec![
                    "spec.limits[0].maxLimitRequestRatio[memory]: Invalid value: \"3\": ratio 3 is greater than max/min = 2.000000",
                ],
            ),
            (
                lr(
                    json!([{"type": "Container", "default": {"example.com/gpu": "2"}, "defaultRequest": {"example.com/gpu": "1"}}]),
                ),
                vec![
                    "spec.limits[0].defaultRequest[example.com/gpu]: Invalid value: \"1\": default value 2 must equal to defaultRequest value 1 in example.com/gpu",
                ],
            ),
            (
                lr(json!([{"type": "PersistentVolumeClaim", "max": {"cpu": "x"}}])),
                vec![
                    "spec.limits[0].max[cpu]: Invalid value: \"x\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    "spec.limits[0].limits: Required value: either minimum or maximum storage value is required, but neither was provided",
                ],
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(create_errors("LimitRange", object.clone()), expected, "{object}");
        }
    }

    #[test]
    fn resource_quota_defaults_and_status() {
        let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "ns"},
                           "spec": {"hard": {"pods": "10", "requests.memory": "1024Mi", "limits.memory": "512Mi"}},
                           "status": {"used": {"pods": "3"}}});
        let out = create("ResourceQuota", quota).unwrap();
        assert_eq!(
            out,
            json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "ns"},
                   "spec": {"hard": {"limits.memory": "512Mi", "pods": "10", "requests.memory": "1Gi"}},
                   "status": {}})
        );
        assert_eq!(
            warnings("ResourceQuota", &out),
            ["ResourceQuota requests.memory (1Gi) should be less than limits.memory (512Mi)"]
        );
        let mut old = out;
        old["metadata"]["resourceVersion"] = json!("2");
        // The main resource keeps the status; the status endpoint keeps the spec.
        let mut new = old.clone();
        new["status"] = json!({"hard": {"pods": "10"}});
        new["spec"]["hard"]["pods"] = json!("20");
        assert_eq!(
            update("ResourceQuota", new.clone(), &old, UpdateTarget::Main).unwrap()["status"],
            json!({})
        );
        let out = update("ResourceQuota", new, &old, UpdateTarget::Status).unwrap();
        assert_eq!(out["spec"]["hard"]["pods"], json!("10"));
        assert_eq!(out["status"], json!({"hard": {"pods": "10"}}));
        let mut new = old.clone();
        new["status"] = json!({"used": {"pods": "1500m", "foo": "1"}});
        assert_eq!(
            update_errors("ResourceQuota", new, &old, UpdateTarget::Status),
            [
                "status.used[foo]: Invalid value: \"foo\": must be a standard resource type or fully qualified",
                "status.used[foo]: Invalid value: \"foo\": must be a standard resource for quota",
                "status.used[pods]: Invalid value: \"1500m\": must be an integer",
            ]
        );
        let mut new = old.clone();
        new["spec"]["scopes"] = json!(["Terminating"]);
        assert_eq!(
            update_errors("ResourceQuota", new, &old, UpdateTarget::Main),
            ["spec.scopes: Invalid value: [\"Terminating\"]: field is immutable"]
        );
    }

    #[test]
    fn resource_quota_validation() {
        let rq =
            |spec: serde_json::Value| json!({"metadata": {"name": "q", "namespace": "ns"}, "spec": spec});
        let cases = [
            (
                rq(json!({"hard": {"cpu": "-1", "pods": "1.5"}})),
                vec![
                    "spec.hard[cpu]: Invalid value: \"-1\": must be greater than or equal to 0",
                    "spec.hard[pods]: Invalid value: \"1500m\": must be an integer",
                ],
            ),
            (
                rq(json!({"hard": {"pods": "1"}, "scopes": ["BestEffort", "NotBestEffort", "Everything"]})),
                vec![
                    "spec.scopes: Invalid value: [\"BestEffort\",\"NotBestEffort\",\"Everything\"]: unsupported scope",
                    "spec.scopes: Invalid value: [\"BestEffort\",\"NotBestEffort\",\"Everything\"]: conflicting scopes",
                ],
            ),
            (
                rq(
                    json!({"hard": {"cpu": "1"}, "scopeSelector": {"matchExpressions": [
                        {"scopeName": "BestEffort", "operator": "In", "values": ["x"]},
                        {"scopeName": "PriorityClass", "operator": "Exists", "values": ["a"]},
                        {"scopeName": "Nope", "operator": "Near"}
                    ]}}),
                ),
                vec![
                    "spec.scopeSelector.matchExpressions: Invalid value: {\"MatchExpressions\":[{\"ScopeName\":\"BestEffort\",\"Operator\":\"In\",\"Values\":[\"x\"]},{\"ScopeName\":\"PriorityClass\",\"Operator\":\"Exists\",\"Values\":[\"a\"]},{\"ScopeName\":\"Nope\",\"Operator\":\"Near\",\"Values\":null}]}: unsupported scope applied to resource",
                    "spec.scopeSelector.matchExpressions.operator: Invalid value: \"In\": must be 'Exists' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity",
                    "spec.scopeSelector.matchExpressions.values: Invalid value: [\"a\"]: must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector",
                    "spec.scopeSelector.matchExpressions.scopeName: Invalid value: \"Nope\": unsupported scope",
                    "spec.scopeSelector.matchExpressions.operator: Invalid value: \"Near\": not a valid selector operator",
                ],
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(
                create_errors("ResourceQuota", object.clone()),
                expected,
                "{object}"
            );
        }
    }
}
