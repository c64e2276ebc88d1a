//! The HorizontalPodAutoscaler of autoscaling/v2 and autoscaling/v1: defaults, registry
//! strategy and validation.
//!
//! Ports `SetDefaults_HorizontalPodAutoscaler` of both versions (v1: minReplicas 1; v2:
//! minReplicas 1, the 80% CPU utilization metric, the scale-up / scale-down behavior rules
//! filled in when a behavior is given), pkg/registry/autoscaling/horizontalpodautoscaler/
//! strategy.go (status reset on create, status kept on update, the status strategy, the
//! validation options derived from the old object) and pkg/apis/autoscaling/validation
//! (`ValidateHorizontalPodAutoscaler*`: replica bounds, scale target, metrics, behavior).
//! Upstream validates the internal type; a v1 object is validated through its v2 form
//! ([`crate::convert::hpa_v1_to_v2`]), so both versions report the same errors. Feature gates
//! are at their 1.35 defaults (HPAScaleToZero off, HPAConfigurableTolerance on).

use k8s_openapi::api::autoscaling::v1 as autoscaling_v1;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, HorizontalPodAutoscalerStatus,
    MetricIdentifier, MetricSpec, MetricTarget, ResourceMetricSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::workload_shared::meta_path;
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{
    is_valid_path_segment_name, name_is_dns_subdomain, parse_quantity_field,
    validate_container_resource_name, validate_dns1123_label, validate_nonnegative_field,
    validate_nonnegative_quantity, validate_object_meta, validate_object_meta_update,
};

/// The default CPU utilization target of an HPA without metrics.
const DEFAULT_CPU_UTILIZATION: i32 = 80;
const MAX_PERIOD_SECONDS: i32 = 1800;
const MAX_STABILIZATION_WINDOW_SECONDS: i32 = 3600;
const METRIC_SOURCE_TYPES: &[&str] = &["ContainerResource", "External", "Object", "Pods", "Resource"];
const SELECT_POLICIES: &[&str] = &["Disabled", "Max", "Min"];
const POLICY_TYPES: &[&str] = &["Percent", "Pods"];

// ---------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------

fn policy(type_: &str, value: i32) -> HPAScalingPolicy {
    HPAScalingPolicy {
        type_: type_.to_owned(),
        value,
        period_seconds: 15,
    }
}

/// `copyHPAScalingRules` of the given rules over `defaults`.
fn fill_rules(from: Option<HPAScalingRules>, mut defaults: HPAScalingRules) -> HPAScalingRules {
    let Some(from) = from else {
        return defaults;
    };
    if from.select_policy.is_some() {
        defaults.select_policy = from.select_policy;
    }
    if from.stabilization_window_seconds.is_some() {
        defaults.stabilization_window_seconds = from.stabilization_window_seconds;
    }
    if from.policies.is_some() {
        defaults.policies = from.policies;
    }
    if from.tolerance.is_some() {
        defaults.tolerance = from.tolerance;
    }
    defaults
}

/// `SetDefaults_HorizontalPodAutoscalerBehavior`: unset scaling rule fields take the defaults
/// (scale up: no stabilization, the max of 4 pods or 100% per 15s; scale down: 100% per 15s).
fn default_behavior(behavior: &mut HorizontalPodAutoscalerBehavior) {
    let up = HPAScalingRules {
        stabilization_window_seconds: Some(0),
        select_policy: Some("Max".to_owned()),
        policies: Some(vec![policy("Pods", 4), policy("Percent", 100)]),
        tolerance: None,
    };
    let down = HPAScalingRules {
        stabilization_window_seconds: None,
        select_policy: Some("Max".to_owned()),
        policies: Some(vec![policy("Percent", 100)]),
        tolerance: None,
    };
    behavior.scale_up = Some(fill_rules(behavior.scale_up.take(), up));
    behavior.scale_down = Some(fill_rules(behavior.scale_down.take(), down));
}

/// `SetObjectDefaults_HorizontalPodAutoscaler` of autoscaling/v2; plus `status` always printed.
pub fn default_hpa_v2(hpa: &mut HorizontalPodAutoscaler) {
    let spec = hpa.spec.get_or_insert_with(Default::default);
    spec.min_replicas.get_or_insert(1);
    if spec.metrics.as_ref().is_none_or(Vec::is_empty) {
        spec.metrics = Some(vec![MetricSpec {
            type_: "Resource".to_owned(),
            resource: Some(ResourceMetricSource {
                name: "cpu".to_owned(),
                target: MetricTarget {
                    type_: "Utilization".to_owned(),
                    average_utilization: Some(DEFAULT_CPU_UTILIZATION),
                    ..Default::default()
                },
            }),
            ..Default::default()
        }]);
    }
    if let Some(behavior) = &mut spec.behavior {
        default_behavior(behavior);
    }
    hpa.status.get_or_insert_with(Default::default);
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Upstream's `CrossVersionObjectReferenceValidationOptions`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReferenceOptions {
    /// Accept an empty API group.
    pub allow_empty_api_group: bool,
    /// Skip the apiVersion check.
    pub allow_invalid_api_version: bool,
}

/// Upstream's `HorizontalPodAutoscalerSpecValidationOptions`.
#[derive(Clone, Copy, Debug)]
pub struct HpaValidationOptions {
    /// The lowest accepted `minReplicas`.
    pub min_replicas_lower_bound: i32,
    /// Options of `scaleTargetRef`.
    pub scale_target_ref: ReferenceOptions,
    /// Options of the described objects of object metrics.
    pub object_metrics: ReferenceOptions,
}

/// Upstream's `ValidateAPIVersion` (`schema.ParseGroupVersion` plus the group rule).
fn api_version_error(reference: &CrossVersionObjectReference, opts: ReferenceOptions) -> Option<String> {
    if opts.allow_invalid_api_version {
        return None;
    }
    let api_version = reference.api_version.as_deref().unwrap_or_default();
    let group = if api_version.is_empty() || api_version == "/" {
        ""
    } else {
        match api_version.matches('/').count() {
            0 => "",
            1 => api_version.split('/').next().unwrap_or_default(),
            _ => return Some(format!("unexpected GroupVersion string: {api_version}")),
        }
    };
    if !opts.allow_empty_api_group && group.is_empty() {
        return Some("apiVersion must specify API group".to_owned());
    }
    None
}

/// Upstream's `ValidateCrossVersionObjectReference`.
fn validate_reference(
    reference: &CrossVersionObjectReference,
    path: &Path,
    opts: ReferenceOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    for (name, value) in [("kind", &reference.kind), ("name", &reference.name)] {
        if value.is_empty() {
            errs.push(FieldError::required(&path.child(name), ""));
        } else {
            errs.extend(
                is_valid_path_segment_name(value)
                    .into_iter()
                    .map(|msg| FieldError::invalid(&path.child(name), value.as_str(), msg)),
            );
        }
    }
    if let Some(err) = api_version_error(reference, opts) {
        errs.push(FieldError::invalid(
            &path.child("apiVersion"),
            reference.api_version.as_deref().unwrap_or_default(),
            err,
        ));
    }
    errs
}

fn validate_metric_identifier(id: &MetricIdentifier, path: &Path) -> ErrorList {
    let name_path = path.child("name");
    if id.name.is_empty() {
        return vec![FieldError::required(&name_path, "must specify a metric name")];
    }
    is_valid_path_segment_name(&id.name)
        .into_iter()
        .map(|msg| FieldError::invalid(&name_path, id.name.as_str(), msg))
        .collect()
}

fn positive_quantity(quantity: &Quantity, path: &Path, errs: &mut ErrorList) {
    match parse_quantity_field(quantity, path) {
        Err(err) => errs.push(err),
        Ok(parsed) if parsed.sign() != 1 => {
            errs.push(FieldError::invalid(path, parsed.to_string(), "must be positive"));
        }
        Ok(_) => {}
    }
}

/// Upstream's `validateMetricTarget`.
fn validate_metric_target(target: &MetricTarget, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if target.type_.is_empty() {
        errs.push(FieldError::required(
            &path.child("type"),
            "must specify a metric target type",
        ));
    }
    if !matches!(target.type_.as_str(), "Utilization" | "Value" | "AverageValue") {
        errs.push(FieldError::invalid(
            &path.child("type"),
            target.type_.as_str(),
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    if let Some(value) = &target.value {
        positive_quantity(value, &path.child("value"), &mut errs);
    }
    if let Some(value) = &target.average_value {
        positive_quantity(value, &path.child("averageValue"), &mut errs);
    }
    if let Some(utilization) = target.average_utilization.filter(|u| *u < 1) {
        errs.push(FieldError::invalid(
            &path.child("averageUtilization"),
            utilization,
            "must be greater than 0",
        ));
    }
    errs
}

/// Upstream's `validateMetricSpec`.
fn validate_metric_spec(spec: &MetricSpec, path: &Path, opts: ReferenceOptions) -> ErrorList {
    let mut errs = ErrorList::new();
    let type_path = path.child("type");
    if spec.type_.is_empty() {
        errs.push(FieldError::required(
            &type_path,
            "must specify a metric source type",
        ));
    }
    if !METRIC_SOURCE_TYPES.contains(&spec.type_.as_str()) {
        errs.push(FieldError::not_supported(
            &type_path,
            spec.type_.as_str(),
            METRIC_SOURCE_TYPES,
        ));
    }
    let mut present: Vec<&str> = Vec::new();
    if let Some(src) = &spec.object {
        present.push("object");
        if present.len() == 1 {
            let p = path.child("object");
            errs.extend(validate_reference(
                &src.described_object,
                &p.child("describedObject"),
                opts,
            ));
            errs.extend(validate_metric_identifier(&src.metric, &p.child("metric")));
            errs.extend(validate_metric_target(&src.target, &p.child("target")));
            if src.target.value.is_none() && src.target.average_value.is_none() {
                errs.push(FieldError::required(
                    &p.child("target").child("averageValue"),
                    "must set either a target value or averageValue",
                ));
            }
        }
    }
    if let Some(src) = &spec.external {
        present.push("external");
        if present.len() == 1 {
            let p = path.child("external");
            errs.extend(validate_metric_identifier(&src.metric, &p.child("metric")));
            errs.extend(validate_metric_target(&src.target, &p.child("target")));
            if src.target.value.is_none() && src.target.average_value.is_none() {
                errs.push(FieldError::required(
                    &p.child("target").child("averageValue"),
                    "must set either a target value for metric or a per-pod target",
                ));
            }
            if src.target.value.is_some() && src.target.average_value.is_some() {
                errs.push(FieldError::forbidden(
                    &p.child("target").child("value"),
                    "may not set both a target value for metric and a per-pod target",
                ));
            }
        }
    }
    if let Some(src) = &spec.pods {
        present.push("pods");
        if present.len() == 1 {
            let p = path.child("pods");
            errs.extend(validate_metric_identifier(&src.metric, &p.child("metric")));
            errs.extend(validate_metric_target(&src.target, &p.child("target")));
            if src.target.average_value.is_none() {
                errs.push(FieldError::required(
                    &p.child("target").child("averageValue"),
                    "must specify a positive target averageValue",
                ));
            }
        }
    }
    if let Some(src) = &spec.resource {
        present.push("resource");
        if present.len() == 1 {
            let p = path.child("resource");
            if src.name.is_empty() {
                errs.push(FieldError::required(
                    &p.child("name"),
                    "must specify a resource name",
                ));
            }
            errs.extend(validate_utilization_target(&src.target, &p.child("target")));
        }
    }
    if let Some(src) = &spec.container_resource {
        present.push("containerResource");
        if present.len() == 1 {
            let p = path.child("containerResource");
            if src.name.is_empty() {
                errs.push(FieldError::required(
                    &p.child("name"),
                    "must specify a resource name",
                ));
            } else {
                errs.extend(validate_container_resource_name(&src.name, &p.child("name")));
            }
            if src.container.is_empty() {
                errs.push(FieldError::required(
                    &p.child("container"),
                    "must specify a container",
                ));
            } else {
                errs.extend(validate_dns1123_label(&src.container, &p.child("container")));
            }
            errs.extend(validate_utilization_target(&src.target, &p.child("target")));
        }
    }
    let expected = match spec.type_.as_str() {
        "Object" => Some(("object", spec.object.is_some())),
        "Pods" => Some(("pods", spec.pods.is_some())),
        "Resource" => Some(("resource", spec.resource.is_some())),
        "External" => Some(("external", spec.external.is_some())),
        "ContainerResource" => Some(("containerResource", spec.container_resource.is_some())),
        _ => None,
    };
    let mut expected_field = "";
    match expected {
        Some((field, populated)) => {
            if !populated {
                errs.push(FieldError::required(
                    &path.child(field),
                    "must populate information for the given metric source",
                ));
            }
            expected_field = field;
        }
        None => errs.push(FieldError::not_supported(
            &type_path,
            spec.type_.as_str(),
            METRIC_SOURCE_TYPES,
        )),
    }
    if present.len() != 1 {
        // Upstream iterates a set here; the order of several extra sources is unspecified.
        for field in present.into_iter().filter(|f| *f != expected_field) {
            errs.push(FieldError::forbidden(
                &path.child(field),
                "must populate the given metric source only",
            ));
        }
    }
    errs
}

/// The target rules of resource and container resource metrics.
fn validate_utilization_target(target: &MetricTarget, path: &Path) -> ErrorList {
    let mut errs = validate_metric_target(target, path);
    if target.average_utilization.is_none() && target.average_value.is_none() {
        errs.push(FieldError::required(
            &path.child("averageUtilization"),
            "must set either a target raw value or a target utilization",
        ));
    }
    if target.average_utilization.is_some() && target.average_value.is_some() {
        errs.push(FieldError::forbidden(
            &path.child("averageValue"),
            "may not set both a target raw value and a target utilization",
        ));
    }
    errs
}

/// Upstream's `validateMetrics`.
fn validate_metrics(
    metrics: &[MetricSpec],
    path: &Path,
    min_replicas: Option<i32>,
    opts: ReferenceOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut object_or_external = false;
    for (i, metric) in metrics.iter().enumerate() {
        errs.extend(validate_metric_spec(metric, &path.index(i), opts));
        object_or_external |= matches!(metric.type_.as_str(), "Object" | "External");
    }
    if min_replicas == Some(0) && !object_or_external {
        errs.push(FieldError::forbidden(
            path,
            "must specify at least one Object or External metric to support scaling to zero replicas",
        ));
    }
    errs
}

/// Upstream's `validateScalingRules`.
fn validate_scaling_rules(rules: Option<&HPAScalingRules>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(rules) = rules else {
        return errs;
    };
    if let Some(window) = rules.stabilization_window_seconds {
        let window_path = path.child("stabilizationWindowSeconds");
        if window < 0 {
            errs.push(FieldError::invalid(
                &window_path,
                window,
                "must be greater than or equal to zero",
            ));
        }
        if window > MAX_STABILIZATION_WINDOW_SECONDS {
            errs.push(FieldError::invalid(
                &window_path,
                window,
                format!("must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"),
            ));
        }
    }
    if let Some(select) = rules
        .select_policy
        .as_deref()
        .filter(|s| !SELECT_POLICIES.contains(s))
    {
        errs.push(FieldError::not_supported(
            &path.child("selectPolicy"),
            select,
            SELECT_POLICIES,
        ));
    }
    let policies_path = path.child("policies");
    let policies = rules.policies.as_deref().unwrap_or_default();
    if policies.is_empty() {
        errs.push(FieldError::required(
            &policies_path,
            "must specify at least one Policy",
        ));
    }
    for (i, policy) in policies.iter().enumerate() {
        let p = policies_path.index(i);
        if !POLICY_TYPES.contains(&policy.type_.as_str()) {
            errs.push(FieldError::not_supported(
                &p.child("type"),
                policy.type_.as_str(),
                POLICY_TYPES,
            ));
        }
        if policy.value <= 0 {
            errs.push(FieldError::invalid(
                &p.child("value"),
                policy.value,
                "must be greater than zero",
            ));
        }
        if policy.period_seconds <= 0 {
            errs.push(FieldError::invalid(
                &p.child("periodSeconds"),
                policy.period_seconds,
                "must be greater than zero",
            ));
        }
        if policy.period_seconds > MAX_PERIOD_SECONDS {
            errs.push(FieldError::invalid(
                &p.child("periodSeconds"),
                policy.period_seconds,
                format!("must be less than or equal to {MAX_PERIOD_SECONDS}"),
            ));
        }
    }
    if let Some(tolerance) = &rules.tolerance {
        let tolerance_path = path.child("tolerance");
        match parse_quantity_field(tolerance, &tolerance_path) {
            Err(err) => errs.push(err),
            Ok(parsed) => errs.extend(validate_nonnegative_quantity(&parsed, &tolerance_path)),
        }
    }
    errs
}

/// Upstream's `validateHorizontalPodAutoscalerSpec`.
pub fn validate_hpa_spec(
    spec: &HorizontalPodAutoscalerSpec,
    path: &Path,
    opts: &HpaValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(min) = spec.min_replicas.filter(|m| *m < opts.min_replicas_lower_bound) {
        errs.push(FieldError::invalid(
            &path.child("minReplicas"),
            min,
            format!(
                "must be greater than or equal to {}",
                opts.min_replicas_lower_bound
            ),
        ));
    }
    if spec.max_replicas < 1 {
        errs.push(FieldError::invalid(
            &path.child("maxReplicas"),
            spec.max_replicas,
            "must be greater than 0",
        ));
    }
    if spec.min_replicas.is_some_and(|min| spec.max_replicas < min) {
        errs.push(FieldError::invalid(
            &path.child("maxReplicas"),
            spec.max_replicas,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    errs.extend(validate_reference(
        &spec.scale_target_ref,
        &path.child("scaleTargetRef"),
        opts.scale_target_ref,
    ));
    errs.extend(validate_metrics(
        spec.metrics.as_deref().unwrap_or_default(),
        &path.child("metrics"),
        spec.min_replicas,
        opts.object_metrics,
    ));
    if let Some(behavior) = &spec.behavior {
        let behavior_path = path.child("behavior");
        errs.extend(validate_scaling_rules(
            behavior.scale_up.as_ref(),
            &behavior_path.child("scaleUp"),
        ));
        errs.extend(validate_scaling_rules(
            behavior.scale_down.as_ref(),
            &behavior_path.child("scaleDown"),
        ));
    }
    errs
}

/// `validationOptionsForHorizontalPodAutoscaler`.
fn hpa_options(new: &HorizontalPodAutoscaler, old: Option<&HorizontalPodAutoscaler>) -> HpaValidationOptions {
    let spec = new.spec.clone().unwrap_or_default();
    let old_spec = old.and_then(|o| o.spec.clone());
    let mut opts = HpaValidationOptions {
        min_replicas_lower_bound: 1,
        scale_target_ref: ReferenceOptions::default(),
        object_metrics: ReferenceOptions {
            allow_empty_api_group: true,
            allow_invalid_api_version: false,
        },
    };
    if old_spec.as_ref().is_some_and(|s| s.min_replicas == Some(0)) {
        opts.min_replicas_lower_bound = 0;
    }
    let same_target = old_spec.as_ref().is_some_and(|s| {
        s.scale_target_ref.api_version == spec.scale_target_ref.api_version
            && s.scale_target_ref.kind == spec.scale_target_ref.kind
    });
    if same_target {
        opts.scale_target_ref.allow_invalid_api_version = true;
    } else if spec.scale_target_ref.kind == "ReplicationController" {
        opts.scale_target_ref.allow_empty_api_group = true;
    }
    if let Some(old_spec) = &old_spec {
        let invalid_object_metric = old_spec.metrics.iter().flatten().any(|m| {
            m.type_ == "Object"
                && m.object
                    .as_ref()
                    .is_some_and(|o| api_version_error(&o.described_object, opts.object_metrics).is_some())
        });
        if invalid_object_metric {
            opts.object_metrics.allow_invalid_api_version = true;
        }
    }
    opts
}

fn validate_hpa(hpa: &HorizontalPodAutoscaler, old: Option<&HorizontalPodAutoscaler>) -> ErrorList {
    let opts = hpa_options(hpa, old);
    let mut errs = match old {
        None => validate_object_meta(&hpa.metadata, true, name_is_dns_subdomain, &meta_path()),
        Some(old) => validate_object_meta_update(&hpa.metadata, &old.metadata, &meta_path()),
    };
    errs.extend(validate_hpa_spec(
        &hpa.spec.clone().unwrap_or_default(),
        &Path::new("spec"),
        &opts,
    ));
    errs
}

fn validate_hpa_status(current: i32, desired: i32) -> ErrorList {
    let mut errs =
        validate_nonnegative_field(i64::from(current), &Path::new("status").child("currentReplicas"));
    errs.extend(validate_nonnegative_field(
        i64::from(desired),
        &Path::new("status").child("desiredReplicas"),
    ));
    errs
}

impl KindStrategy for HorizontalPodAutoscaler {
    fn apply_defaults(&mut self) {
        default_hpa_v2(self);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(HorizontalPodAutoscalerStatus::default());
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        validate_hpa(self, None)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        validate_hpa(self, Some(old))
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        let status = self.status.clone().unwrap_or_default();
        errs.extend(validate_hpa_status(
            status.current_replicas.unwrap_or(0),
            status.desired_replicas,
        ));
        errs
    }
}

// ---------------------------------------------------------------------------------------------
// autoscaling/v1
// ---------------------------------------------------------------------------------------------

/// The v2 form of a v1 object, as upstream converts it to the internal type.
fn as_v2(hpa: &autoscaling_v1::HorizontalPodAutoscaler) -> Result<HorizontalPodAutoscaler, FieldError> {
    let internal = |err: String| FieldError::internal(&Path::root(), err);
    let value = serde_json::to_value(hpa).map_err(|err| internal(err.to_string()))?;
    let converted = crate::convert::hpa_v1_to_v2(value).map_err(|err| internal(err.to_string()))?;
    serde_json::from_value(converted).map_err(|err| internal(err.to_string()))
}

/// A v1 object through the internal type and back, as upstream serves it: the conversion
/// adds the default CPU utilization target of an object without metrics.
fn round_trip(
    hpa: &autoscaling_v1::HorizontalPodAutoscaler,
) -> Option<autoscaling_v1::HorizontalPodAutoscaler> {
    let value = serde_json::to_value(hpa).ok()?;
    let v2 = crate::convert::hpa_v1_to_v2(value).ok()?;
    let v1 = crate::convert::hpa_v2_to_v1(v2).ok()?;
    serde_json::from_value(v1).ok()
}

/// `SetObjectDefaults_HorizontalPodAutoscaler` of autoscaling/v1 (minReplicas 1), then the
/// round trip through the internal type (the 80% CPU target of an object without metrics);
/// plus `status` always printed.
pub fn default_hpa_v1(hpa: &mut autoscaling_v1::HorizontalPodAutoscaler) {
    hpa.spec
        .get_or_insert_with(Default::default)
        .min_replicas
        .get_or_insert(1);
    if let Some(converted) = round_trip(hpa) {
        *hpa = converted;
    }
    hpa.status.get_or_insert_with(Default::default);
}

impl KindStrategy for autoscaling_v1::HorizontalPodAutoscaler {
    fn apply_defaults(&mut self) {
        default_hpa_v1(self);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(autoscaling_v1::HorizontalPodAutoscalerStatus::default());
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        match as_v2(self) {
            Ok(hpa) => validate_hpa(&hpa, None),
            Err(err) => vec![err],
        }
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        match (as_v2(self), as_v2(old)) {
            (Ok(hpa), Ok(old)) => validate_hpa(&hpa, Some(&old)),
            (Err(err), _) | (_, Err(err)) => vec![err],
        }
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        let status = self.status.clone().unwrap_or_default();
        errs.extend(validate_hpa_status(
            status.current_replicas,
            status.desired_replicas,
        ));
        errs
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::workload_shared::testing::{Gvk, stored};
    use crate::strategy::UpdateTarget;

    const V2: Gvk = Gvk("autoscaling", "v2", "HorizontalPodAutoscaler");
    const V1: Gvk = Gvk("autoscaling", "v1", "HorizontalPodAutoscaler");

    fn hpa(version: &str) -> Value {
        json!({
            "apiVersion": format!("autoscaling/{version}"), "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "maxReplicas": 10
            }
        })
    }

    #[test]
    fn v2_defaults_like_kube_apiserver() {
        assert_eq!(
            V2.created(hpa("v2")),
            json!({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {
                    "maxReplicas": 10,
                    "metrics": [{
                        "resource": {"name": "cpu", "target": {"averageUtilization": 80, "type": "Utilization"}},
                        "type": "Resource"
                    }],
                    "minReplicas": 1,
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
                },
                "status": {"desiredReplicas": 0}
            })
        );
    }

    #[test]
    fn v2_behavior_defaults() {
        let mut h = hpa("v2");
        h["spec"]["behavior"] = json!({"scaleDown": {"stabilizationWindowSeconds": 60}});
        let out = V2.created(h);
        assert_eq!(
            out["spec"]["behavior"],
            json!({
                "scaleDown": {
                    "policies": [{"periodSeconds": 15, "type": "Percent", "value": 100}],
                    "selectPolicy": "Max",
                    "stabilizationWindowSeconds": 60
                },
                "scaleUp": {
                    "policies": [
                        {"periodSeconds": 15, "type": "Pods", "value": 4},
                        {"periodSeconds": 15, "type": "Percent", "value": 100}
                    ],
                    "selectPolicy": "Max",
                    "stabilizationWindowSeconds": 0
                }
            })
        );
    }

    #[test]
    fn v1_defaults_like_kube_apiserver() {
        assert_eq!(
            V1.created(hpa("v1")),
            json!({
                "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {
                    "maxReplicas": 10,
                    "minReplicas": 1,
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "targetCPUUtilizationPercentage": 80
                },
                "status": {"currentReplicas": 0, "desiredReplicas": 0}
            })
        );
    }

    fn check(gvk: Gvk, version: &str, mutate: impl Fn(&mut Value), expected: &[&str]) {
        let mut h = hpa(version);
        mutate(&mut h);
        assert_eq!(gvk.create_errors(h), expected);
    }

    #[test]
    fn validation_of_both_versions() {
        for (gvk, version) in [(V2, "v2"), (V1, "v1")] {
            check(
                gvk,
                version,
                |h| {
                    h["spec"]["minReplicas"] = json!(0);
                    h["spec"]["maxReplicas"] = json!(0);
                },
                &[
                    "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
                    "spec.maxReplicas: Invalid value: 0: must be greater than 0",
                    "spec.metrics: Forbidden: must specify at least one Object or External metric to support scaling to zero replicas",
                ],
            );
            check(
                gvk,
                version,
                |h| {
                    h["spec"]["minReplicas"] = json!(5);
                    h["spec"]["maxReplicas"] = json!(3);
                },
                &["spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`"],
            );
            check(
                gvk,
                version,
                |h| h["spec"]["scaleTargetRef"] = json!({"apiVersion": "v1", "kind": "", "name": "a/b"}),
                &[
                    "spec.scaleTargetRef.kind: Required value",
                    "spec.scaleTargetRef.name: Invalid value: \"a/b\": may not contain '/'",
                    "spec.scaleTargetRef.apiVersion: Invalid value: \"v1\": apiVersion must specify API group",
                ],
            );
        }
        check(
            V1,
            "v1",
            |h| h["spec"]["targetCPUUtilizationPercentage"] = json!(0),
            &["spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0"],
        );
        check(
            V1,
            "v1",
            |h| {
                h["spec"]["scaleTargetRef"] =
                    json!({"apiVersion": "v1", "kind": "ReplicationController", "name": "rc"});
            },
            &[],
        );
        check(
            V2,
            "v2",
            |h| {
                h["spec"]["metrics"] = json!([
                    {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "Value"}}},
                    {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "0", "averageUtilization": 50}}},
                    {"type": "Object"},
                    {"type": "", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": "-1"}}},
                    {"type": "ContainerResource", "containerResource": {"name": "cpu", "container": "", "target": {"type": "Utilization", "averageUtilization": 60}}, "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}
                ]);
            },
            &[
                "spec.metrics[0].pods.target.averageValue: Required value: must specify a positive target averageValue",
                "spec.metrics[1].resource.target.averageValue: Invalid value: \"0\": must be positive",
                "spec.metrics[1].resource.target.averageValue: Forbidden: may not set both a target raw value and a target utilization",
                "spec.metrics[2].object: Required value: must populate information for the given metric source",
                "spec.metrics[3].type: Required value: must specify a metric source type",
                "spec.metrics[3].type: Unsupported value: \"\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\"",
                "spec.metrics[3].external.target.value: Invalid value: \"-1\": must be positive",
                "spec.metrics[3].type: Unsupported value: \"\": supported values: \"ContainerResource\", \"External\", \"Object\", \"Pods\", \"Resource\"",
                "spec.metrics[4].resource: Forbidden: must populate the given metric source only",
            ],
        );
        check(
            V2,
            "v2",
            |h| {
                h["spec"]["behavior"] = json!({
                    "scaleUp": {"stabilizationWindowSeconds": 4000, "selectPolicy": "Avg", "policies": []},
                    "scaleDown": {"policies": [{"type": "Nodes", "value": 0, "periodSeconds": 2000}], "tolerance": "-0.1"}
                });
            },
            &[
                "spec.behavior.scaleUp.stabilizationWindowSeconds: Invalid value: 4000: must be less than or equal to 3600",
                "spec.behavior.scaleUp.selectPolicy: Unsupported value: \"Avg\": supported values: \"Disabled\", \"Max\", \"Min\"",
                "spec.behavior.scaleUp.policies: Required value: must specify at least one Policy",
                "spec.behavior.scaleDown.policies[0].type: Unsupported value: \"Nodes\": supported values: \"Percent\", \"Pods\"",
                "spec.behavior.scaleDown.policies[0].value: Invalid value: 0: must be greater than zero",
                "spec.behavior.scaleDown.policies[0].periodSeconds: Invalid value: 2000: must be less than or equal to 1800",
                "spec.behavior.scaleDown.tolerance: Invalid value: \"-100m\": must be greater than or equal to 0",
            ],
        );
    }

    #[test]
    fn updates_keep_status_and_tolerate_the_old_target() {
        for (gvk, version) in [(V2, "v2"), (V1, "v1")] {
            let mut created = hpa(version);
            created["spec"]["scaleTargetRef"]["apiVersion"] = json!("v1");
            created["spec"]["scaleTargetRef"]["kind"] = json!("ReplicationController");
            let old = stored(gvk.created(created));
            let mut new = old.clone();
            new["spec"]["maxReplicas"] = json!(20);
            new["status"]["desiredReplicas"] = json!(3);
            let out = gvk.updated(new, &old, UpdateTarget::Main);
            assert_eq!(out["spec"]["maxReplicas"], json!(20));
            assert_eq!(out["status"]["desiredReplicas"], json!(0));
            assert!(out["metadata"].get("generation").is_none());

            let mut status = old.clone();
            status["spec"]["maxReplicas"] = json!(30);
            status["status"]["desiredReplicas"] = json!(-1);
            assert_eq!(
                gvk.update_errors(status.clone(), &old, UpdateTarget::Status),
                ["status.desiredReplicas: Invalid value: -1: must be greater than or equal to 0"]
            );
            status["status"]["desiredReplicas"] = json!(2);
            let out = gvk.updated(status, &old, UpdateTarget::Status);
            assert_eq!(out["spec"]["maxReplicas"], json!(10));
            assert_eq!(out["status"]["desiredReplicas"], json!(2));
        }
    }
}
