//! Conversions between the versions of a kind that share one storage, the analogue of the
//! conversion functions kube-apiserver registers in its scheme.
//!
//! It owns two GA conversions, each in both directions, on JSON objects:
//!
//! - `HorizontalPodAutoscaler` between `autoscaling/v2` (the stored version) and
//!   `autoscaling/v1` (upstream's `pkg/apis/autoscaling/v1/conversion.go` composed with the
//!   identity conversion of v2 through the internal type). What v1 cannot express (metrics
//!   other than the CPU utilization target, all current metrics, conditions, behavior) rides in
//!   the `autoscaling.alpha.kubernetes.io/*` annotations with upstream's exact encodings, so
//!   v2 -> v1 -> v2 keeps everything upstream keeps.
//! - `Event` between `v1` (core, the stored version) and `events.k8s.io/v1`
//!   (upstream's `pkg/apis/events/v1/conversion.go`).
//!
//! Metadata passes through verbatim (only the round-trip annotations change). Everything else
//! is encoded as Rudder encodes every object, through the k8s-openapi types: an absent optional
//! field stays absent where upstream's encoder writes `null` (a zero timestamp) or `{}` (an
//! empty event source). The annotation payloads, which clients see as opaque strings, are
//! byte-for-byte what Go writes. Quantities are carried as written (upstream re-emits a
//! non-canonical quantity in canonical form).
//!
//! Conversion applies no scheme defaults: `minReplicas` (v1 and v2) and the v2 `behavior` rules
//! are defaulting, run by the strategy of the version an object is decoded as; the only default
//! here is the one upstream applies in conversion, the 80% CPU utilization target of a v1
//! object without any metric.

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::{v1 as autoscaling_v1, v2 as autoscaling_v2};
use k8s_openapi::api::core::v1 as core_v1;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, Time};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why an object could not be converted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The input is not a valid object of the source type: not a JSON object, another
    /// `apiVersion` or `kind`, or a field of the wrong type.
    #[error("not a valid {kind}: {reason}")]
    Invalid {
        /// The source type, e.g. `autoscaling/v2 HorizontalPodAutoscaler`.
        kind: &'static str,
        /// What the decoder reported.
        reason: String,
    },
    /// The converted object could not be encoded (not expected with valid input).
    #[error("cannot encode the converted {kind}: {reason}")]
    Encode {
        /// The target type.
        kind: &'static str,
        /// What the encoder reported.
        reason: String,
    },
}

const HPA_V1: &str = "autoscaling/v1 HorizontalPodAutoscaler";
const HPA_V2: &str = "autoscaling/v2 HorizontalPodAutoscaler";
const CORE_EVENT: &str = "v1 Event";
const EVENTS_EVENT: &str = "events.k8s.io/v1 Event";

/// Metric specs other than the CPU utilization target, as a JSON list of v1 `MetricSpec`.
const METRIC_SPECS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// All current metrics, as a JSON list of v1 `MetricStatus`.
const METRIC_STATUSES_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// The status conditions, as a JSON list of v1 `HorizontalPodAutoscalerCondition`.
const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// The behavior, as JSON of upstream's internal type (Go field names, no JSON tags).
const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// Reserved by upstream for the scaling tolerances; never written, always dropped.
const TOLERANCE_SCALE_DOWN_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/scale-down-tolerance";
/// Reserved by upstream for the scaling tolerances; never written, always dropped.
const TOLERANCE_SCALE_UP_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/scale-up-tolerance";

/// Upstream's `DropRoundTripHorizontalPodAutoscalerAnnotations` set.
const ROUND_TRIP_ANNOTATIONS: [&str; 6] = [
    METRIC_SPECS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
    TOLERANCE_SCALE_DOWN_ANNOTATION,
    TOLERANCE_SCALE_UP_ANNOTATION,
    METRIC_STATUSES_ANNOTATION,
    CONDITIONS_ANNOTATION,
];

/// The CPU utilization target upstream gives a v1 object without any metric.
const DEFAULT_CPU_UTILIZATION: i32 = 80;
const RESOURCE_METRIC: &str = "Resource";
const RESOURCE_CPU: &str = "cpu";
const ZERO_QUANTITY: &str = "0";

// ---------------------------------------------------------------------------------------------
// HorizontalPodAutoscaler
// ---------------------------------------------------------------------------------------------

/// Converts an `autoscaling/v2` HorizontalPodAutoscaler to `autoscaling/v1`.
///
/// The first CPU metric with a utilization target becomes `spec.targetCPUUtilizationPercentage`;
/// every other metric, every current metric, the conditions and the behavior go into the
/// round-trip annotations (any stale ones on the input are dropped first).
pub fn hpa_v2_to_v1(object: Value) -> Result<Value, ConvertError> {
    let (mut metadata, hpa) = decode::<autoscaling_v2::HorizontalPodAutoscaler>(object, HPA_V2)?;
    let mut annotations = Vec::new();

    let spec = match hpa.spec {
        None => None,
        Some(spec) => {
            let metrics = spec.metrics.unwrap_or_default();
            let others: Vec<GoMetricSpec> = metrics
                .iter()
                .filter(|metric| cpu_utilization_target(metric).is_none())
                .map(go_metric_spec)
                .collect();
            if !others.is_empty() {
                annotations.push((METRIC_SPECS_ANNOTATION, go_json(&others, HPA_V1)?));
            }
            if let Some(behavior) = &spec.behavior {
                annotations.push((BEHAVIOR_ANNOTATION, go_json(&go_behavior(behavior), HPA_V1)?));
            }
            Some(autoscaling_v1::HorizontalPodAutoscalerSpec {
                max_replicas: spec.max_replicas,
                min_replicas: spec.min_replicas,
                scale_target_ref: autoscaling_v1::CrossVersionObjectReference {
                    api_version: spec.scale_target_ref.api_version,
                    kind: spec.scale_target_ref.kind,
                    name: spec.scale_target_ref.name,
                },
                target_cpu_utilization_percentage: metrics.iter().find_map(cpu_utilization_target),
            })
        }
    };

    let status = match hpa.status {
        None => None,
        Some(status) => {
            let current = status.current_metrics.unwrap_or_default();
            if !current.is_empty() {
                let encoded: Vec<GoMetricStatus> = current.iter().map(go_metric_status).collect();
                annotations.push((METRIC_STATUSES_ANNOTATION, go_json(&encoded, HPA_V1)?));
            }
            let conditions = status.conditions.unwrap_or_default();
            if !conditions.is_empty() {
                let encoded: Vec<GoCondition> = conditions.iter().map(go_condition).collect();
                annotations.push((CONDITIONS_ANNOTATION, go_json(&encoded, HPA_V1)?));
            }
            Some(autoscaling_v1::HorizontalPodAutoscalerStatus {
                // Upstream keeps the last CPU utilization it sees.
                current_cpu_utilization_percentage: current.iter().rev().find_map(cpu_utilization_current),
                current_replicas: status.current_replicas.unwrap_or(0),
                desired_replicas: status.desired_replicas,
                last_scale_time: status.last_scale_time,
                observed_generation: status.observed_generation,
            })
        }
    };

    replace_round_trip_annotations(&mut metadata, annotations);
    let converted = autoscaling_v1::HorizontalPodAutoscaler {
        metadata: Default::default(),
        spec,
        status,
    };
    encode(&converted, metadata, HPA_V1)
}

/// Converts an `autoscaling/v1` HorizontalPodAutoscaler to `autoscaling/v2`.
///
/// `spec.targetCPUUtilizationPercentage` becomes a CPU utilization metric placed after the
/// metrics of the annotation; without any metric the target is 80%. Current metrics,
/// conditions and behavior come from their annotations when those decode (an annotation that
/// does not decode is ignored, as upstream does), and all round-trip annotations are dropped.
pub fn hpa_v1_to_v2(object: Value) -> Result<Value, ConvertError> {
    let (mut metadata, hpa) = decode::<autoscaling_v1::HorizontalPodAutoscaler>(object, HPA_V1)?;
    let annotations = hpa.metadata.annotations.unwrap_or_default();
    let annotation = |name: &str| -> Option<Value> {
        annotations
            .get(name)
            .and_then(|text| serde_json::from_str(text).ok())
    };

    let spec = hpa.spec.unwrap_or_default();
    let mut metrics: Vec<autoscaling_v2::MetricSpec> = spec
        .target_cpu_utilization_percentage
        .map(cpu_utilization_metric)
        .into_iter()
        .collect();
    if let Some(others) = annotation(METRIC_SPECS_ANNOTATION).and_then(|v| list(&v, metric_spec).ok()) {
        metrics = others.into_iter().chain(metrics).collect();
    }
    if metrics.is_empty() {
        metrics.push(cpu_utilization_metric(DEFAULT_CPU_UTILIZATION));
    }
    let behavior = annotation(BEHAVIOR_ANNOTATION)
        .and_then(|v| behavior(&v).ok())
        .flatten();

    let mut status = hpa
        .status
        .map(|status| autoscaling_v2::HorizontalPodAutoscalerStatus {
            conditions: None,
            current_metrics: status
                .current_cpu_utilization_percentage
                .map(|percentage| vec![cpu_utilization_status(percentage)]),
            // `currentReplicas` is optional in v2 and upstream omits a zero.
            current_replicas: Some(status.current_replicas).filter(|&replicas| replicas != 0),
            desired_replicas: status.desired_replicas,
            last_scale_time: status.last_scale_time,
            observed_generation: status.observed_generation,
        });
    // The annotation has more than `currentCPUUtilizationPercentage`: it replaces it.
    if let Some(current) = annotation(METRIC_STATUSES_ANNOTATION).and_then(|v| list(&v, metric_status).ok()) {
        let current = non_empty(current);
        if current.is_some() || status.is_some() {
            status.get_or_insert_with(Default::default).current_metrics = current;
        }
    }
    if let Some(conditions) = annotation(CONDITIONS_ANNOTATION).and_then(|v| list(&v, condition).ok()) {
        let conditions = non_empty(conditions);
        if conditions.is_some() || status.is_some() {
            status.get_or_insert_with(Default::default).conditions = conditions;
        }
    }

    replace_round_trip_annotations(&mut metadata, Vec::new());
    let converted = autoscaling_v2::HorizontalPodAutoscaler {
        metadata: Default::default(),
        spec: Some(autoscaling_v2::HorizontalPodAutoscalerSpec {
            behavior,
            max_replicas: spec.max_replicas,
            metrics: Some(metrics),
            min_replicas: spec.min_replicas,
            scale_target_ref: autoscaling_v2::CrossVersionObjectReference {
                api_version: spec.scale_target_ref.api_version,
                kind: spec.scale_target_ref.kind,
                name: spec.scale_target_ref.name,
            },
        }),
        status,
    };
    encode(&converted, metadata, HPA_V2)
}

/// The percentage of a metric v1 can carry as `targetCPUUtilizationPercentage`.
fn cpu_utilization_target(metric: &autoscaling_v2::MetricSpec) -> Option<i32> {
    if metric.type_ != RESOURCE_METRIC {
        return None;
    }
    let resource = metric.resource.as_ref()?;
    if resource.name != RESOURCE_CPU {
        return None;
    }
    resource.target.average_utilization
}

/// The percentage of a current metric v1 can carry as `currentCPUUtilizationPercentage`.
fn cpu_utilization_current(metric: &autoscaling_v2::MetricStatus) -> Option<i32> {
    if metric.type_ != RESOURCE_METRIC {
        return None;
    }
    let resource = metric.resource.as_ref()?;
    if resource.name != RESOURCE_CPU {
        return None;
    }
    resource.current.average_utilization
}

fn cpu_utilization_metric(percentage: i32) -> autoscaling_v2::MetricSpec {
    autoscaling_v2::MetricSpec {
        type_: RESOURCE_METRIC.to_owned(),
        resource: Some(autoscaling_v2::ResourceMetricSource {
            name: RESOURCE_CPU.to_owned(),
            target: autoscaling_v2::MetricTarget {
                type_: "Utilization".to_owned(),
                average_utilization: Some(percentage),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

fn cpu_utilization_status(percentage: i32) -> autoscaling_v2::MetricStatus {
    autoscaling_v2::MetricStatus {
        type_: RESOURCE_METRIC.to_owned(),
        resource: Some(autoscaling_v2::ResourceMetricStatus {
            name: RESOURCE_CPU.to_owned(),
            current: autoscaling_v2::MetricValueStatus {
                average_utilization: Some(percentage),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

// --- v1 annotation payloads, encoded as Go's encoding/json writes the v1 types -----------------
//
// Fields are declared in Go's order; `skip_serializing_if` marks Go's `omitempty` on pointers,
// maps, slices and strings. A quantity that is absent in a non-pointer Go field is the zero
// quantity, which Go writes as "0".

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoMetricSpec {
    #[serde(rename = "type")]
    type_: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<GoObjectMetricSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pods: Option<GoPodsMetricSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<GoResourceMetricSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_resource: Option<GoResourceMetricSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external: Option<GoExternalMetricSource>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoCrossVersionObjectReference {
    kind: String,
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    api_version: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoObjectMetricSource {
    target: GoCrossVersionObjectReference,
    metric_name: String,
    target_value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<GoLabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    average_value: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoPodsMetricSource {
    metric_name: String,
    target_average_value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<GoLabelSelector>,
}

/// v1 `ResourceMetricSource`, and `ContainerResourceMetricSource` when `container` is set.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoResourceMetricSource {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_average_utilization: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_average_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoExternalMetricSource {
    metric_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric_selector: Option<GoLabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_average_value: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoMetricStatus {
    #[serde(rename = "type")]
    type_: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<GoObjectMetricStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pods: Option<GoPodsMetricStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<GoResourceMetricStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_resource: Option<GoResourceMetricStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external: Option<GoExternalMetricStatus>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoObjectMetricStatus {
    target: GoCrossVersionObjectReference,
    metric_name: String,
    current_value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<GoLabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    average_value: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoPodsMetricStatus {
    metric_name: String,
    current_average_value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<GoLabelSelector>,
}

/// v1 `ResourceMetricStatus`, and `ContainerResourceMetricStatus` when `container` is set.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoResourceMetricStatus {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_average_utilization: Option<i32>,
    current_average_value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoExternalMetricStatus {
    metric_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric_selector: Option<GoLabelSelector>,
    current_value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_average_value: Option<String>,
}

/// `metav1.LabelSelector` as Go writes it (matchLabels first).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoLabelSelector {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    match_labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    match_expressions: Vec<GoLabelSelectorRequirement>,
}

#[derive(Serialize)]
struct GoLabelSelectorRequirement {
    key: String,
    operator: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    values: Vec<String>,
}

/// v1 `HorizontalPodAutoscalerCondition`; a zero `lastTransitionTime` is written as `null`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GoCondition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    last_transition_time: Option<Time>,
    #[serde(skip_serializing_if = "String::is_empty")]
    reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
}

/// Upstream's internal `HorizontalPodAutoscalerBehavior`: Go field names, nil as `null`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GoBehavior {
    scale_up: Option<GoScalingRules>,
    scale_down: Option<GoScalingRules>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GoScalingRules {
    stabilization_window_seconds: Option<i32>,
    select_policy: Option<String>,
    policies: Option<Vec<GoScalingPolicy>>,
    tolerance: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct GoScalingPolicy {
    #[serde(rename = "Type")]
    type_: String,
    value: i32,
    period_seconds: i32,
}

fn quantity_or_zero(quantity: Option<&Quantity>) -> String {
    quantity.map_or_else(|| ZERO_QUANTITY.to_owned(), |q| q.0.clone())
}

fn quantity_string(quantity: Option<&Quantity>) -> Option<String> {
    quantity.map(|q| q.0.clone())
}

fn go_reference(reference: &autoscaling_v2::CrossVersionObjectReference) -> GoCrossVersionObjectReference {
    GoCrossVersionObjectReference {
        kind: reference.kind.clone(),
        name: reference.name.clone(),
        api_version: reference.api_version.clone().unwrap_or_default(),
    }
}

fn go_selector(selector: Option<&LabelSelector>) -> Option<GoLabelSelector> {
    selector.map(|selector| GoLabelSelector {
        match_labels: selector.match_labels.clone().unwrap_or_default(),
        match_expressions: selector
            .match_expressions
            .iter()
            .flatten()
            .map(|requirement| GoLabelSelectorRequirement {
                key: requirement.key.clone(),
                operator: requirement.operator.clone(),
                values: requirement.values.clone().unwrap_or_default(),
            })
            .collect(),
    })
}

fn go_metric_spec(metric: &autoscaling_v2::MetricSpec) -> GoMetricSpec {
    GoMetricSpec {
        type_: metric.type_.clone(),
        object: metric.object.as_ref().map(|source| GoObjectMetricSource {
            target: go_reference(&source.described_object),
            metric_name: source.metric.name.clone(),
            target_value: quantity_or_zero(source.target.value.as_ref()),
            selector: go_selector(source.metric.selector.as_ref()),
            average_value: quantity_string(source.target.average_value.as_ref()),
        }),
        pods: metric.pods.as_ref().map(|source| GoPodsMetricSource {
            metric_name: source.metric.name.clone(),
            target_average_value: quantity_or_zero(source.target.average_value.as_ref()),
            selector: go_selector(source.metric.selector.as_ref()),
        }),
        resource: metric.resource.as_ref().map(|source| GoResourceMetricSource {
            name: source.name.clone(),
            target_average_utilization: source.target.average_utilization,
            target_average_value: quantity_string(source.target.average_value.as_ref()),
            container: None,
        }),
        container_resource: metric
            .container_resource
            .as_ref()
            .map(|source| GoResourceMetricSource {
                name: source.name.clone(),
                target_average_utilization: source.target.average_utilization,
                target_average_value: quantity_string(source.target.average_value.as_ref()),
                container: Some(source.container.clone()),
            }),
        external: metric.external.as_ref().map(|source| GoExternalMetricSource {
            metric_name: source.metric.name.clone(),
            metric_selector: go_selector(source.metric.selector.as_ref()),
            target_value: quantity_string(source.target.value.as_ref()),
            target_average_value: quantity_string(source.target.average_value.as_ref()),
        }),
    }
}

fn go_metric_status(metric: &autoscaling_v2::MetricStatus) -> GoMetricStatus {
    GoMetricStatus {
        type_: metric.type_.clone(),
        object: metric.object.as_ref().map(|status| GoObjectMetricStatus {
            target: go_reference(&status.described_object),
            metric_name: status.metric.name.clone(),
            current_value: quantity_or_zero(status.current.value.as_ref()),
            selector: go_selector(status.metric.selector.as_ref()),
            average_value: quantity_string(status.current.average_value.as_ref()),
        }),
        pods: metric.pods.as_ref().map(|status| GoPodsMetricStatus {
            metric_name: status.metric.name.clone(),
            current_average_value: quantity_or_zero(status.current.average_value.as_ref()),
            selector: go_selector(status.metric.selector.as_ref()),
        }),
        resource: metric.resource.as_ref().map(|status| GoResourceMetricStatus {
            name: status.name.clone(),
            current_average_utilization: status.current.average_utilization,
            current_average_value: quantity_or_zero(status.current.average_value.as_ref()),
            container: None,
        }),
        container_resource: metric
            .container_resource
            .as_ref()
            .map(|status| GoResourceMetricStatus {
                name: status.name.clone(),
                current_average_utilization: status.current.average_utilization,
                current_average_value: quantity_or_zero(status.current.average_value.as_ref()),
                container: Some(status.container.clone()),
            }),
        external: metric.external.as_ref().map(|status| GoExternalMetricStatus {
            metric_name: status.metric.name.clone(),
            metric_selector: go_selector(status.metric.selector.as_ref()),
            current_value: quantity_or_zero(status.current.value.as_ref()),
            current_average_value: quantity_string(status.current.average_value.as_ref()),
        }),
    }
}

fn go_condition(condition: &autoscaling_v2::HorizontalPodAutoscalerCondition) -> GoCondition {
    GoCondition {
        type_: condition.type_.clone(),
        status: condition.status.clone(),
        last_transition_time: condition.last_transition_time.clone(),
        reason: condition.reason.clone().unwrap_or_default(),
        message: condition.message.clone().unwrap_or_default(),
    }
}

fn go_behavior(behavior: &autoscaling_v2::HorizontalPodAutoscalerBehavior) -> GoBehavior {
    let rules = |rules: &autoscaling_v2::HPAScalingRules| GoScalingRules {
        stabilization_window_seconds: rules.stabilization_window_seconds,
        select_policy: rules.select_policy.clone(),
        policies: rules.policies.as_ref().map(|policies| {
            policies
                .iter()
                .map(|policy| GoScalingPolicy {
                    type_: policy.type_.clone(),
                    value: policy.value,
                    period_seconds: policy.period_seconds,
                })
                .collect()
        }),
        tolerance: quantity_string(rules.tolerance.as_ref()),
    };
    GoBehavior {
        scale_up: behavior.scale_up.as_ref().map(rules),
        scale_down: behavior.scale_down.as_ref().map(rules),
    }
}

/// Encodes like Go's `json.Marshal`: serde_json writes the same bytes except that Go also
/// escapes `<`, `>`, `&`, U+2028 and U+2029 (which only occur inside strings).
fn go_json<T: Serialize>(value: &T, kind: &'static str) -> Result<String, ConvertError> {
    let text = serde_json::to_string(value).map_err(|err| ConvertError::Encode {
        kind,
        reason: err.to_string(),
    })?;
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("\\u003c"),
            '>' => escaped.push_str("\\u003e"),
            '&' => escaped.push_str("\\u0026"),
            '\u{2028}' => escaped.push_str("\\u2028"),
            '\u{2029}' => escaped.push_str("\\u2029"),
            c => escaped.push(c),
        }
    }
    Ok(escaped)
}

// --- v1 annotation payloads, decoded as Go's encoding/json reads the v1 types -----------------
//
// Go matches keys case-insensitively (preferring an exact match), treats `null` as absent,
// and fails the whole document on a value of the wrong type; a failed annotation is ignored
// by the caller, as upstream ignores it.

/// A value of the wrong type somewhere in an annotation.
struct Malformed;

type Decoded<T> = Result<T, Malformed>;

fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .get(name)
        .or_else(|| {
            object
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value)
        })
        .filter(|value| !value.is_null())
}

fn as_object(value: Option<&Value>) -> Decoded<Option<&Map<String, Value>>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(object)) => Ok(Some(object)),
        Some(_) => Err(Malformed),
    }
}

fn as_array(value: Option<&Value>) -> Decoded<Option<&Vec<Value>>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(Malformed),
    }
}

fn as_string(value: Option<&Value>) -> Decoded<Option<String>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(Malformed),
    }
}

/// A Go `string`: absent is empty.
fn string_field(object: &Map<String, Value>, name: &str) -> Decoded<String> {
    Ok(as_string(field(object, name))?.unwrap_or_default())
}

/// A Go `int32`: an integer literal in range, nothing else.
fn i32_field(object: &Map<String, Value>, name: &str) -> Decoded<Option<i32>> {
    match field(object, name) {
        None => Ok(None),
        Some(Value::Number(number)) => number
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Some)
            .ok_or(Malformed),
        Some(_) => Err(Malformed),
    }
}

/// A `resource.Quantity`: a string, or a bare number (Go parses the literal either way).
fn quantity_field(object: &Map<String, Value>, name: &str) -> Decoded<Option<Quantity>> {
    match field(object, name) {
        None => Ok(None),
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(Some(Quantity(text.trim().to_owned()))),
        Some(Value::Number(number)) => Ok(Some(Quantity(number.to_string()))),
        Some(_) => Err(Malformed),
    }
}

/// A non-pointer `resource.Quantity`: absent is the zero quantity.
fn quantity_or_zero_field(object: &Map<String, Value>, name: &str) -> Decoded<Quantity> {
    Ok(quantity_field(object, name)?.unwrap_or_else(|| Quantity(ZERO_QUANTITY.to_owned())))
}

/// A `metav1.Time`: an RFC 3339 string.
fn time_field(object: &Map<String, Value>, name: &str) -> Decoded<Option<Time>> {
    match field(object, name) {
        None => Ok(None),
        Some(value @ Value::String(_)) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|_| Malformed),
        Some(_) => Err(Malformed),
    }
}

/// A list of strings; Go reads a `null` element as the empty string.
fn strings(value: Option<&Value>) -> Decoded<Vec<String>> {
    as_array(value)?
        .into_iter()
        .flatten()
        .map(|item| Ok(as_string(Some(item))?.unwrap_or_default()))
        .collect()
}

/// A `*metav1.LabelSelector`; empty lists and maps are left out, as Go omits them.
fn selector_field(object: &Map<String, Value>, name: &str) -> Decoded<Option<LabelSelector>> {
    let Some(selector) = as_object(field(object, name))? else {
        return Ok(None);
    };
    let mut match_labels = BTreeMap::new();
    for (key, value) in as_object(field(selector, "matchLabels"))?.into_iter().flatten() {
        match_labels.insert(key.clone(), as_string(Some(value))?.unwrap_or_default());
    }
    let mut match_expressions = Vec::new();
    for item in as_array(field(selector, "matchExpressions"))?
        .into_iter()
        .flatten()
    {
        let requirement = as_object(Some(item))?;
        let empty = Map::new();
        let requirement = requirement.unwrap_or(&empty);
        match_expressions.push(LabelSelectorRequirement {
            key: string_field(requirement, "key")?,
            operator: string_field(requirement, "operator")?,
            values: non_empty(strings(field(requirement, "values"))?),
        });
    }
    Ok(Some(LabelSelector {
        match_labels: Some(match_labels).filter(|labels| !labels.is_empty()),
        match_expressions: non_empty(match_expressions),
    }))
}

fn reference_field(
    object: &Map<String, Value>,
    name: &str,
) -> Decoded<autoscaling_v2::CrossVersionObjectReference> {
    let empty = Map::new();
    let reference = as_object(field(object, name))?.unwrap_or(&empty);
    Ok(autoscaling_v2::CrossVersionObjectReference {
        api_version: Some(string_field(reference, "apiVersion")?).filter(|v| !v.is_empty()),
        kind: string_field(reference, "kind")?,
        name: string_field(reference, "name")?,
    })
}

/// A JSON list (or `null`) of items decoded by `item`; a `null` item is the zero item.
fn list<T>(value: &Value, item: fn(&Map<String, Value>) -> Decoded<T>) -> Decoded<Vec<T>> {
    let empty = Map::new();
    as_array(Some(value))?
        .into_iter()
        .flatten()
        .map(|element| item(as_object(Some(element))?.unwrap_or(&empty)))
        .collect()
}

/// Decodes a v1 `MetricSpec` and converts it to the internal (= v2) type.
fn metric_spec(object: &Map<String, Value>) -> Decoded<autoscaling_v2::MetricSpec> {
    let object_source = match as_object(field(object, "object"))? {
        None => None,
        Some(source) => {
            let average_value = quantity_field(source, "averageValue")?;
            Some(autoscaling_v2::ObjectMetricSource {
                described_object: reference_field(source, "target")?,
                metric: autoscaling_v2::MetricIdentifier {
                    name: string_field(source, "metricName")?,
                    selector: selector_field(source, "selector")?,
                },
                target: autoscaling_v2::MetricTarget {
                    type_: if average_value.is_none() {
                        "Value"
                    } else {
                        "AverageValue"
                    }
                    .to_owned(),
                    value: Some(quantity_or_zero_field(source, "targetValue")?),
                    average_value,
                    average_utilization: None,
                },
            })
        }
    };
    let pods = match as_object(field(object, "pods"))? {
        None => None,
        Some(source) => Some(autoscaling_v2::PodsMetricSource {
            metric: autoscaling_v2::MetricIdentifier {
                name: string_field(source, "metricName")?,
                selector: selector_field(source, "selector")?,
            },
            target: autoscaling_v2::MetricTarget {
                type_: "AverageValue".to_owned(),
                average_value: Some(quantity_or_zero_field(source, "targetAverageValue")?),
                ..Default::default()
            },
        }),
    };
    let resource = match as_object(field(object, "resource"))? {
        None => None,
        Some(source) => Some(autoscaling_v2::ResourceMetricSource {
            name: string_field(source, "name")?,
            target: resource_target(source)?,
        }),
    };
    let container_resource = match as_object(field(object, "containerResource"))? {
        None => None,
        Some(source) => Some(autoscaling_v2::ContainerResourceMetricSource {
            container: string_field(source, "container")?,
            name: string_field(source, "name")?,
            target: resource_target(source)?,
        }),
    };
    let external = match as_object(field(object, "external"))? {
        None => None,
        Some(source) => {
            let value = quantity_field(source, "targetValue")?;
            Some(autoscaling_v2::ExternalMetricSource {
                metric: autoscaling_v2::MetricIdentifier {
                    name: string_field(source, "metricName")?,
                    selector: selector_field(source, "metricSelector")?,
                },
                target: autoscaling_v2::MetricTarget {
                    type_: if value.is_none() { "AverageValue" } else { "Value" }.to_owned(),
                    value,
                    average_value: quantity_field(source, "targetAverageValue")?,
                    average_utilization: None,
                },
            })
        }
    };
    Ok(autoscaling_v2::MetricSpec {
        type_: string_field(object, "type")?,
        object: object_source,
        pods,
        resource,
        container_resource,
        external,
    })
}

/// The target of a v1 (container) resource metric: a utilization if one is given.
fn resource_target(source: &Map<String, Value>) -> Decoded<autoscaling_v2::MetricTarget> {
    let average_utilization = i32_field(source, "targetAverageUtilization")?;
    Ok(autoscaling_v2::MetricTarget {
        type_: if average_utilization.is_none() {
            "AverageValue"
        } else {
            "Utilization"
        }
        .to_owned(),
        average_utilization,
        average_value: quantity_field(source, "targetAverageValue")?,
        value: None,
    })
}

/// Decodes a v1 `MetricStatus` and converts it to the internal (= v2) type.
fn metric_status(object: &Map<String, Value>) -> Decoded<autoscaling_v2::MetricStatus> {
    let object_status = match as_object(field(object, "object"))? {
        None => None,
        Some(status) => Some(autoscaling_v2::ObjectMetricStatus {
            current: autoscaling_v2::MetricValueStatus {
                value: Some(quantity_or_zero_field(status, "currentValue")?),
                average_value: quantity_field(status, "averageValue")?,
                average_utilization: None,
            },
            described_object: reference_field(status, "target")?,
            metric: autoscaling_v2::MetricIdentifier {
                name: string_field(status, "metricName")?,
                selector: selector_field(status, "selector")?,
            },
        }),
    };
    let pods = match as_object(field(object, "pods"))? {
        None => None,
        Some(status) => Some(autoscaling_v2::PodsMetricStatus {
            current: autoscaling_v2::MetricValueStatus {
                average_value: Some(quantity_or_zero_field(status, "currentAverageValue")?),
                ..Default::default()
            },
            metric: autoscaling_v2::MetricIdentifier {
                name: string_field(status, "metricName")?,
                selector: selector_field(status, "selector")?,
            },
        }),
    };
    let resource = match as_object(field(object, "resource"))? {
        None => None,
        Some(status) => Some(autoscaling_v2::ResourceMetricStatus {
            current: resource_current(status)?,
            name: string_field(status, "name")?,
        }),
    };
    let container_resource = match as_object(field(object, "containerResource"))? {
        None => None,
        Some(status) => Some(autoscaling_v2::ContainerResourceMetricStatus {
            container: string_field(status, "container")?,
            current: resource_current(status)?,
            name: string_field(status, "name")?,
        }),
    };
    let external = match as_object(field(object, "external"))? {
        None => None,
        Some(status) => Some(autoscaling_v2::ExternalMetricStatus {
            current: autoscaling_v2::MetricValueStatus {
                value: Some(quantity_or_zero_field(status, "currentValue")?),
                average_value: quantity_field(status, "currentAverageValue")?,
                average_utilization: None,
            },
            metric: autoscaling_v2::MetricIdentifier {
                name: string_field(status, "metricName")?,
                selector: selector_field(status, "metricSelector")?,
            },
        }),
    };
    Ok(autoscaling_v2::MetricStatus {
        type_: string_field(object, "type")?,
        object: object_status,
        pods,
        resource,
        container_resource,
        external,
    })
}

/// The current value of a v1 (container) resource metric; the average value is always set.
fn resource_current(status: &Map<String, Value>) -> Decoded<autoscaling_v2::MetricValueStatus> {
    Ok(autoscaling_v2::MetricValueStatus {
        average_utilization: i32_field(status, "currentAverageUtilization")?,
        average_value: Some(quantity_or_zero_field(status, "currentAverageValue")?),
        value: None,
    })
}

/// Decodes a v1 `HorizontalPodAutoscalerCondition`.
fn condition(object: &Map<String, Value>) -> Decoded<autoscaling_v2::HorizontalPodAutoscalerCondition> {
    Ok(autoscaling_v2::HorizontalPodAutoscalerCondition {
        last_transition_time: time_field(object, "lastTransitionTime")?,
        message: Some(string_field(object, "message")?).filter(|m| !m.is_empty()),
        reason: Some(string_field(object, "reason")?).filter(|r| !r.is_empty()),
        status: string_field(object, "status")?,
        type_: string_field(object, "type")?,
    })
}

/// Decodes upstream's internal `HorizontalPodAutoscalerBehavior`; a behavior without rules is
/// none, as upstream compares it with the zero value.
fn behavior(value: &Value) -> Decoded<Option<autoscaling_v2::HorizontalPodAutoscalerBehavior>> {
    let Some(object) = as_object(Some(value))? else {
        return Ok(None);
    };
    let scale_up = scaling_rules(field(object, "ScaleUp"))?;
    let scale_down = scaling_rules(field(object, "ScaleDown"))?;
    if scale_up.is_none() && scale_down.is_none() {
        return Ok(None);
    }
    Ok(Some(autoscaling_v2::HorizontalPodAutoscalerBehavior {
        scale_down,
        scale_up,
    }))
}

fn scaling_rules(value: Option<&Value>) -> Decoded<Option<autoscaling_v2::HPAScalingRules>> {
    let Some(rules) = as_object(value)? else {
        return Ok(None);
    };
    let policies = match as_array(field(rules, "Policies"))? {
        None => None,
        Some(items) => {
            let empty = Map::new();
            let mut policies = Vec::with_capacity(items.len());
            for item in items {
                let policy = as_object(Some(item))?.unwrap_or(&empty);
                policies.push(autoscaling_v2::HPAScalingPolicy {
                    period_seconds: i32_field(policy, "PeriodSeconds")?.unwrap_or(0),
                    type_: string_field(policy, "Type")?,
                    value: i32_field(policy, "Value")?.unwrap_or(0),
                });
            }
            // v2 omits an empty list.
            non_empty(policies)
        }
    };
    Ok(Some(autoscaling_v2::HPAScalingRules {
        policies,
        select_policy: as_string(field(rules, "SelectPolicy"))?,
        stabilization_window_seconds: i32_field(rules, "StabilizationWindowSeconds")?,
        tolerance: quantity_field(rules, "Tolerance")?,
    }))
}

// ---------------------------------------------------------------------------------------------
// Event
// ---------------------------------------------------------------------------------------------

/// Converts a core `v1` Event to `events.k8s.io/v1`.
///
/// `involvedObject` becomes `regarding`, `message` becomes `note`, `reportingComponent`
/// becomes `reportingController`, and `source`, `firstTimestamp`, `lastTimestamp` and
/// `count` become their `deprecated*` fields; the rest keeps its name.
pub fn core_event_to_events_v1(object: Value) -> Result<Value, ConvertError> {
    let (metadata, event) = decode::<core_v1::Event>(object, CORE_EVENT)?;
    let series = event.series.map(|series| {
        // events.k8s.io requires both fields; Go writes a zero count as 0.
        let mut fields = Map::new();
        fields.insert("count".to_owned(), Value::from(series.count.unwrap_or(0)));
        if let Some(time) = series.last_observed_time {
            fields.insert("lastObservedTime".to_owned(), to_json(&time, EVENTS_EVENT)?);
        }
        Ok::<_, ConvertError>(Value::Object(fields))
    });

    let mut out = Fields::new("events.k8s.io/v1", "Event", metadata, EVENTS_EVENT);
    out.put("eventTime", event.event_time)?;
    out.put("series", series.transpose()?)?;
    out.put("reportingController", event.reporting_component)?;
    out.put("reportingInstance", event.reporting_instance)?;
    out.put("action", event.action)?;
    out.put("reason", event.reason)?;
    out.put("regarding", Some(event.involved_object))?;
    out.put("related", event.related)?;
    out.put("note", event.message)?;
    out.put("type", event.type_)?;
    out.put("deprecatedSource", event.source)?;
    out.put("deprecatedFirstTimestamp", event.first_timestamp)?;
    out.put("deprecatedLastTimestamp", event.last_timestamp)?;
    out.put("deprecatedCount", event.count)?;
    Ok(out.finish())
}

/// Converts an `events.k8s.io/v1` Event to core `v1`, the inverse of
/// [`core_event_to_events_v1`].
pub fn events_v1_to_core_event(object: Value) -> Result<Value, ConvertError> {
    let (metadata, event) = decode::<k8s_openapi::api::events::v1::Event>(object, EVENTS_EVENT)?;
    let series = event.series.map(|series| core_v1::EventSeries {
        // The core count is optional and Go omits a zero.
        count: Some(series.count).filter(|&count| count != 0),
        last_observed_time: Some(series.last_observed_time),
    });

    let mut out = Fields::new("v1", "Event", metadata, CORE_EVENT);
    out.put("involvedObject", Some(event.regarding.unwrap_or_default()))?;
    out.put("reason", event.reason)?;
    out.put("message", event.note)?;
    out.put("source", event.deprecated_source)?;
    out.put("firstTimestamp", event.deprecated_first_timestamp)?;
    out.put("lastTimestamp", event.deprecated_last_timestamp)?;
    out.put("count", event.deprecated_count)?;
    out.put("type", event.type_)?;
    out.put("eventTime", event.event_time)?;
    out.put("series", series)?;
    out.put("action", event.action)?;
    out.put("related", event.related)?;
    out.put("reportingComponent", event.reporting_controller)?;
    out.put("reportingInstance", event.reporting_instance)?;
    Ok(out.finish())
}

/// An object under construction, field by field.
struct Fields {
    map: Map<String, Value>,
    kind: &'static str,
}

impl Fields {
    fn new(api_version: &str, kind: &str, metadata: Value, target: &'static str) -> Fields {
        let mut map = Map::new();
        map.insert("apiVersion".to_owned(), Value::from(api_version));
        map.insert("kind".to_owned(), Value::from(kind));
        map.insert("metadata".to_owned(), metadata);
        Fields { map, kind: target }
    }

    /// Sets `name` if `value` is present.
    fn put<T: Serialize>(&mut self, name: &str, value: Option<T>) -> Result<(), ConvertError> {
        if let Some(value) = value {
            self.map.insert(name.to_owned(), to_json(&value, self.kind)?);
        }
        Ok(())
    }

    fn finish(self) -> Value {
        Value::Object(self.map)
    }
}

// ---------------------------------------------------------------------------------------------
// Shared
// ---------------------------------------------------------------------------------------------

/// Decodes `object` as `T`, keeping its metadata verbatim (an empty object when absent).
fn decode<T: DeserializeOwned>(object: Value, kind: &'static str) -> Result<(Value, T), ConvertError> {
    let metadata = match object.get("metadata") {
        Some(Value::Object(metadata)) => Value::Object(metadata.clone()),
        _ => Value::Object(Map::new()),
    };
    let typed = serde_json::from_value(object).map_err(|err| ConvertError::Invalid {
        kind,
        reason: err.to_string(),
    })?;
    Ok((metadata, typed))
}

/// Encodes a converted object with the given metadata in place of its own.
fn encode<T: Serialize>(object: &T, metadata: Value, kind: &'static str) -> Result<Value, ConvertError> {
    let mut value = to_json(object, kind)?;
    if let Value::Object(fields) = &mut value {
        fields.insert("metadata".to_owned(), metadata);
    }
    Ok(value)
}

fn to_json<T: Serialize>(value: &T, kind: &'static str) -> Result<Value, ConvertError> {
    serde_json::to_value(value).map_err(|err| ConvertError::Encode {
        kind,
        reason: err.to_string(),
    })
}

/// Drops every round-trip annotation from `metadata` and adds `annotations`. Metadata is left
/// untouched when there is nothing to drop or add; an emptied map is removed, as Go omits it.
fn replace_round_trip_annotations(metadata: &mut Value, annotations: Vec<(&'static str, String)>) {
    let Value::Object(metadata) = metadata else {
        return;
    };
    let mut current = match metadata.get("annotations") {
        Some(Value::Object(current)) => current.clone(),
        _ => Map::new(),
    };
    let before = current.len();
    current.retain(|key, _| !ROUND_TRIP_ANNOTATIONS.contains(&key.as_str()));
    if current.len() == before && annotations.is_empty() {
        return;
    }
    for (key, value) in annotations {
        current.insert(key.to_owned(), Value::String(value));
    }
    if current.is_empty() {
        metadata.remove("annotations");
    } else {
        metadata.insert("annotations".to_owned(), Value::Object(current));
    }
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    Some(items).filter(|items| !items.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn metadata() -> Value {
        json!({
            "name": "web",
            "namespace": "default",
            "uid": "0b4f6d3e-6a4c-4f0e-9d1e-2f6b1c9a7e11",
            "resourceVersion": "42",
            "generation": 3,
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {"app": "web"},
            "annotations": {"team": "storefront"},
        })
    }

    fn with_annotations(extra: &Value) -> Value {
        let mut metadata = metadata();
        let mut annotations = json!({"team": "storefront"});
        for (key, value) in extra.as_object().unwrap() {
            annotations[key] = value.clone();
        }
        metadata["annotations"] = annotations;
        metadata
    }

    /// A v2 object using every metric source, both scaling directions, all status fields.
    fn rich_v2() -> Value {
        json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": metadata(),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 10,
                "metrics": [
                    {"type": "Object", "object": {
                        "describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
                        "metric": {"name": "requests-per-second", "selector": {"matchLabels": {"verb": "GET"}}},
                        "target": {"type": "Value", "value": "10k"},
                    }},
                    {"type": "Pods", "pods": {
                        "metric": {"name": "packets-per-second"},
                        "target": {"type": "AverageValue", "averageValue": "1k"},
                    }},
                    {"type": "External", "external": {
                        "metric": {"name": "queue_messages_ready", "selector": {"matchExpressions": [
                            {"key": "queue", "operator": "In", "values": ["worker"]},
                            {"key": "tier", "operator": "Exists"},
                        ]}},
                        "target": {"type": "AverageValue", "averageValue": "30"},
                    }},
                    {"type": "External", "external": {
                        "metric": {"name": "backlog"},
                        "target": {"type": "Value", "value": "100"},
                    }},
                    {"type": "ContainerResource", "containerResource": {
                        "name": "memory",
                        "container": "app",
                        "target": {"type": "Utilization", "averageUtilization": 60},
                    }},
                    {"type": "Resource", "resource": {
                        "name": "memory",
                        "target": {"type": "AverageValue", "averageValue": "500Mi"},
                    }},
                    {"type": "Resource", "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 50},
                    }},
                ],
                "behavior": {
                    "scaleUp": {
                        "stabilizationWindowSeconds": 0,
                        "selectPolicy": "Max",
                        "policies": [
                            {"type": "Pods", "value": 4, "periodSeconds": 15},
                            {"type": "Percent", "value": 100, "periodSeconds": 15},
                        ],
                        "tolerance": "50m",
                    },
                    "scaleDown": {
                        "selectPolicy": "Min",
                        "policies": [{"type": "Percent", "value": 10, "periodSeconds": 60}],
                    },
                },
            },
            "status": {
                "observedGeneration": 3,
                "lastScaleTime": "2024-05-01T10:05:00Z",
                "currentReplicas": 3,
                "desiredReplicas": 4,
                "currentMetrics": [
                    {"type": "Object", "object": {
                        "describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main"},
                        "metric": {"name": "requests-per-second"},
                        "current": {"value": "9k"},
                    }},
                    {"type": "Pods", "pods": {
                        "metric": {"name": "packets-per-second"},
                        "current": {"averageValue": "900"},
                    }},
                    {"type": "External", "external": {
                        "metric": {"name": "queue_messages_ready"},
                        "current": {"value": "25", "averageValue": "5"},
                    }},
                    {"type": "ContainerResource", "containerResource": {
                        "name": "memory",
                        "container": "app",
                        "current": {"averageUtilization": 55, "averageValue": "300Mi"},
                    }},
                    {"type": "Resource", "resource": {
                        "name": "cpu",
                        "current": {"averageUtilization": 62, "averageValue": "310m"},
                    }},
                ],
                "conditions": [
                    {"type": "AbleToScale", "status": "True", "lastTransitionTime": "2024-05-01T10:00:00Z",
                     "reason": "ReadyForNewScale", "message": "recommended size matches current size"},
                    {"type": "ScalingActive", "status": "True", "lastTransitionTime": "2024-05-01T10:01:00Z",
                     "reason": "ValidMetricFound", "message": "the HPA was able to compute the replica count"},
                    {"type": "ScalingLimited", "status": "False", "lastTransitionTime": "2024-05-01T10:02:00Z",
                     "reason": "DesiredWithinRange"},
                ],
            },
        })
    }

    #[test]
    fn hpa_v2_to_v1_produces_upstream_json() {
        let v2 = json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": metadata(),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 2,
                "maxReplicas": 10,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}},
                    {"type": "Pods", "pods": {
                        "metric": {"name": "packets-per-second", "selector": {"matchLabels": {"b": "2", "a": "1"}}},
                        "target": {"type": "AverageValue", "averageValue": "1k"},
                    }},
                ],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300, "policies": [
                    {"type": "Percent", "value": 10, "periodSeconds": 60},
                ]}},
            },
            "status": {
                "observedGeneration": 3,
                "lastScaleTime": "2024-05-01T10:05:00Z",
                "currentReplicas": 3,
                "desiredReplicas": 4,
                "currentMetrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 62}}},
                ],
                "conditions": [
                    {"type": "AbleToScale", "status": "True", "lastTransitionTime": "2024-05-01T10:00:00Z",
                     "reason": "ReadyForNewScale", "message": "recommended size matches current size"},
                ],
            },
        });
        let v1 = hpa_v2_to_v1(v2).unwrap();
        assert_eq!(
            v1,
            json!({
                "apiVersion": "autoscaling/v1",
                "kind": "HorizontalPodAutoscaler",
                "metadata": with_annotations(&json!({
                    "autoscaling.alpha.kubernetes.io/metrics":
                        r#"[{"type":"Pods","pods":{"metricName":"packets-per-second","targetAverageValue":"1k","selector":{"matchLabels":{"a":"1","b":"2"}}}}]"#,
                    "autoscaling.alpha.kubernetes.io/behavior":
                        r#"{"ScaleUp":null,"ScaleDown":{"StabilizationWindowSeconds":300,"SelectPolicy":null,"Policies":[{"Type":"Percent","Value":10,"PeriodSeconds":60}],"Tolerance":null}}"#,
                    "autoscaling.alpha.kubernetes.io/current-metrics":
                        r#"[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":62,"currentAverageValue":"0"}}]"#,
                    "autoscaling.alpha.kubernetes.io/conditions":
                        r#"[{"type":"AbleToScale","status":"True","lastTransitionTime":"2024-05-01T10:00:00Z","reason":"ReadyForNewScale","message":"recommended size matches current size"}]"#,
                })),
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 2,
                    "maxReplicas": 10,
                    "targetCPUUtilizationPercentage": 50,
                },
                "status": {
                    "observedGeneration": 3,
                    "lastScaleTime": "2024-05-01T10:05:00Z",
                    "currentReplicas": 3,
                    "desiredReplicas": 4,
                    "currentCPUUtilizationPercentage": 62,
                },
            })
        );
    }

    #[test]
    fn hpa_v2_to_v1_encodes_every_metric_source_like_go() {
        let v1 = hpa_v2_to_v1(rich_v2()).unwrap();
        let annotations = &v1["metadata"]["annotations"];
        assert_eq!(
            annotations[METRIC_SPECS_ANNOTATION],
            concat!(
                r#"[{"type":"Object","object":{"target":{"kind":"Ingress","name":"main","apiVersion":"networking.k8s.io/v1"},"metricName":"requests-per-second","targetValue":"10k","selector":{"matchLabels":{"verb":"GET"}}}},"#,
                r#"{"type":"Pods","pods":{"metricName":"packets-per-second","targetAverageValue":"1k"}},"#,
                r#"{"type":"External","external":{"metricName":"queue_messages_ready","metricSelector":{"matchExpressions":[{"key":"queue","operator":"In","values":["worker"]},{"key":"tier","operator":"Exists"}]},"targetAverageValue":"30"}},"#,
                r#"{"type":"External","external":{"metricName":"backlog","targetValue":"100"}},"#,
                r#"{"type":"ContainerResource","containerResource":{"name":"memory","targetAverageUtilization":60,"container":"app"}},"#,
                r#"{"type":"Resource","resource":{"name":"memory","targetAverageValue":"500Mi"}}]"#,
            )
        );
        assert_eq!(
            annotations[METRIC_STATUSES_ANNOTATION],
            concat!(
                r#"[{"type":"Object","object":{"target":{"kind":"Ingress","name":"main","apiVersion":"networking.k8s.io/v1"},"metricName":"requests-per-second","currentValue":"9k"}},"#,
                r#"{"type":"Pods","pods":{"metricName":"packets-per-second","currentAverageValue":"900"}},"#,
                r#"{"type":"External","external":{"metricName":"queue_messages_ready","currentValue":"25","currentAverageValue":"5"}},"#,
                r#"{"type":"ContainerResource","containerResource":{"name":"memory","currentAverageUtilization":55,"currentAverageValue":"300Mi","container":"app"}},"#,
                r#"{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":62,"currentAverageValue":"310m"}}]"#,
            )
        );
        assert_eq!(
            annotations[BEHAVIOR_ANNOTATION],
            concat!(
                r#"{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15},{"Type":"Percent","Value":100,"PeriodSeconds":15}],"Tolerance":"50m"},"#,
                r#""ScaleDown":{"StabilizationWindowSeconds":null,"SelectPolicy":"Min","Policies":[{"Type":"Percent","Value":10,"PeriodSeconds":60}],"Tolerance":null}}"#,
            )
        );
        assert_eq!(
            annotations[CONDITIONS_ANNOTATION],
            concat!(
                r#"[{"type":"AbleToScale","status":"True","lastTransitionTime":"2024-05-01T10:00:00Z","reason":"ReadyForNewScale","message":"recommended size matches current size"},"#,
                r#"{"type":"ScalingActive","status":"True","lastTransitionTime":"2024-05-01T10:01:00Z","reason":"ValidMetricFound","message":"the HPA was able to compute the replica count"},"#,
                r#"{"type":"ScalingLimited","status":"False","lastTransitionTime":"2024-05-01T10:02:00Z","reason":"DesiredWithinRange"}]"#,
            )
        );
        assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 62);
    }

    #[test]
    fn hpa_v2_v1_v2_round_trip_keeps_everything() {
        let v2 = rich_v2();
        let back = hpa_v1_to_v2(hpa_v2_to_v1(v2.clone()).unwrap()).unwrap();
        assert_eq!(back, v2);
    }

    #[test]
    fn hpa_v1_v2_v1_round_trip_keeps_everything() {
        // A v1 object as upstream serves it, annotations included.
        let v1 = json!({
            "apiVersion": "autoscaling/v1",
            "kind": "HorizontalPodAutoscaler",
            "metadata": with_annotations(&json!({
                "autoscaling.alpha.kubernetes.io/metrics":
                    r#"[{"type":"Pods","pods":{"metricName":"packets-per-second","targetAverageValue":"1k"}}]"#,
                "autoscaling.alpha.kubernetes.io/behavior":
                    r#"{"ScaleUp":{"StabilizationWindowSeconds":0,"SelectPolicy":"Max","Policies":[{"Type":"Pods","Value":4,"PeriodSeconds":15}],"Tolerance":null},"ScaleDown":null}"#,
                "autoscaling.alpha.kubernetes.io/current-metrics":
                    r#"[{"type":"Resource","resource":{"name":"cpu","currentAverageUtilization":40,"currentAverageValue":"0"}}]"#,
                "autoscaling.alpha.kubernetes.io/conditions":
                    r#"[{"type":"AbleToScale","status":"True","lastTransitionTime":"2024-05-01T10:00:00Z","reason":"ReadyForNewScale"}]"#,
            })),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1,
                "maxReplicas": 5,
                "targetCPUUtilizationPercentage": 70,
            },
            "status": {
                "observedGeneration": 2,
                "lastScaleTime": "2024-05-01T10:05:00Z",
                "currentReplicas": 2,
                "desiredReplicas": 2,
                "currentCPUUtilizationPercentage": 40,
            },
        });
        let v2 = hpa_v1_to_v2(v1.clone()).unwrap();
        assert_eq!(hpa_v2_to_v1(v2).unwrap(), v1);

        // And one that never had v2-only data.
        let plain = json!({
            "apiVersion": "autoscaling/v1",
            "kind": "HorizontalPodAutoscaler",
            "metadata": metadata(),
            "spec": {
                "scaleTargetRef": {"kind": "ReplicaSet", "name": "web"},
                "minReplicas": 1,
                "maxReplicas": 3,
                "targetCPUUtilizationPercentage": 80,
            },
            "status": {"currentReplicas": 1, "desiredReplicas": 1},
        });
        assert_eq!(hpa_v2_to_v1(hpa_v1_to_v2(plain.clone()).unwrap()).unwrap(), plain);
    }

    #[test]
    fn hpa_v1_to_v2_produces_upstream_json() {
        let v1 = json!({
            "apiVersion": "autoscaling/v1",
            "kind": "HorizontalPodAutoscaler",
            "metadata": metadata(),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1,
                "maxReplicas": 5,
                "targetCPUUtilizationPercentage": 70,
            },
            "status": {"currentReplicas": 2, "desiredReplicas": 3, "currentCPUUtilizationPercentage": 40},
        });
        assert_eq!(
            hpa_v1_to_v2(v1).unwrap(),
            json!({
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": metadata(),
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 1,
                    "maxReplicas": 5,
                    "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                    ],
                },
                "status": {
                    "currentReplicas": 2,
                    "desiredReplicas": 3,
                    "currentMetrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}},
                    ],
                },
            })
        );
    }

    #[test]
    fn hpa_v1_without_target_gets_the_conversion_default_only() {
        // The 80% CPU target is applied by conversion; minReplicas and behavior defaults are
        // left to defaulting.
        let v1 = json!({
            "apiVersion": "autoscaling/v1",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4},
        });
        assert_eq!(
            hpa_v1_to_v2(v1).unwrap(),
            json!({
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web"},
                "spec": {
                    "scaleTargetRef": {"kind": "Deployment", "name": "web"},
                    "maxReplicas": 4,
                    "metrics": [
                        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
                    ],
                },
            })
        );
    }

    #[test]
    fn hpa_v1_annotation_metrics_come_before_the_cpu_target() {
        let v1 = json!({
            "apiVersion": "autoscaling/v1",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "annotations": {
                "autoscaling.alpha.kubernetes.io/metrics":
                    r#"[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"1Gi"}},{"type":"Object","object":{"target":{"kind":"Service","name":"svc"},"metricName":"hits","targetValue":"5","averageValue":"1"}},{"type":"External","external":{"metricName":"queue","targetAverageValue":"2"}}]"#,
            }},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 4, "targetCPUUtilizationPercentage": 60},
        });
        assert_eq!(
            hpa_v1_to_v2(v1).unwrap()["spec"]["metrics"],
            json!([
                {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}},
                {"type": "Object", "object": {
                    "describedObject": {"kind": "Service", "name": "svc"},
                    "metric": {"name": "hits"},
                    "target": {"type": "AverageValue", "value": "5", "averageValue": "1"},
                }},
                {"type": "External", "external": {
                    "metric": {"name": "queue"},
                    "target": {"type": "AverageValue", "averageValue": "2"},
                }},
                {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
            ])
        );
    }

    #[test]
    fn hpa_v2_only_the_first_cpu_utilization_becomes_the_v1_target() {
        // Upstream's TestConversionWithCPUAverageValueAndUtilizationBoth.
        let v2 = json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "web"},
                "minReplicas": 1,
                "maxReplicas": 3,
                "metrics": [
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "300m"}}},
                    {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
                ],
            },
        });
        assert_eq!(
            hpa_v2_to_v1(v2).unwrap(),
            json!({
                "apiVersion": "autoscaling/v1",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web", "annotations": {
                    "autoscaling.alpha.kubernetes.io/metrics":
                        r#"[{"type":"Resource","resource":{"name":"cpu","targetAverageValue":"300m"}}]"#,
                }},
                "spec": {
                    "scaleTargetRef": {"kind": "Deployment", "name": "web"},
                    "minReplicas": 1,
                    "maxReplicas": 3,
                    "targetCPUUtilizationPercentage": 70,
                },
            })
        );
    }

    #[test]
    fn hpa_round_trip_annotations_never_leak() {
        // Stale annotations on a v2 object are dropped before v1 sets its own.
        let mut v2 = json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "annotations": {
                "autoscaling.alpha.kubernetes.io/metrics": "[]",
                "autoscaling.alpha.kubernetes.io/scale-up-tolerance": "0.1",
                "autoscaling.alpha.kubernetes.io/scale-down-tolerance": "0.1",
            }},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "web"},
                "maxReplicas": 3,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
            },
        });
        let v1 = hpa_v2_to_v1(v2.clone()).unwrap();
        assert_eq!(v1["metadata"], json!({"name": "web"}));

        // Annotations on a v1 object are consumed, garbage ones ignored, none reach v2.
        v2["metadata"]["annotations"] = json!({
            "keep": "me",
            "autoscaling.alpha.kubernetes.io/metrics": "not json",
            "autoscaling.alpha.kubernetes.io/current-metrics": r#"{"type":"Pods"}"#,
            "autoscaling.alpha.kubernetes.io/conditions": r#"[{"type":"AbleToScale","status":1}]"#,
            "autoscaling.alpha.kubernetes.io/behavior": r#"{"ScaleUp":{"Policies":"many"}}"#,
        });
        let mut v1 = hpa_v2_to_v1(v2).unwrap();
        v1["metadata"]["annotations"] = json!({
            "keep": "me",
            "autoscaling.alpha.kubernetes.io/metrics": "not json",
            "autoscaling.alpha.kubernetes.io/current-metrics": r#"{"type":"Pods"}"#,
            "autoscaling.alpha.kubernetes.io/conditions": r#"[{"type":"AbleToScale","status":1}]"#,
            "autoscaling.alpha.kubernetes.io/behavior": r#"{"ScaleUp":{"Policies":"many"}}"#,
        });
        v1["status"] =
            json!({"currentReplicas": 1, "desiredReplicas": 1, "currentCPUUtilizationPercentage": 20});
        assert_eq!(
            hpa_v1_to_v2(v1).unwrap(),
            json!({
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web", "annotations": {"keep": "me"}},
                "spec": {
                    "scaleTargetRef": {"kind": "Deployment", "name": "web"},
                    "maxReplicas": 3,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}],
                },
                "status": {
                    "currentReplicas": 1,
                    "desiredReplicas": 1,
                    "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 20}}}],
                },
            })
        );
    }

    #[test]
    fn hpa_annotations_escape_and_decode_like_go() {
        let v2 = json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3},
            "status": {"desiredReplicas": 1, "conditions": [
                {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric",
                 "message": "a < b && c > d"},
            ]},
        });
        let v1 = hpa_v2_to_v1(v2).unwrap();
        assert_eq!(
            v1["metadata"]["annotations"][CONDITIONS_ANNOTATION],
            r#"[{"type":"ScalingActive","status":"False","lastTransitionTime":null,"reason":"FailedGetResourceMetric","message":"a \u003c b \u0026\u0026 c \u003e d"}]"#
        );
        let v2 = hpa_v1_to_v2(v1).unwrap();
        assert_eq!(
            v2["status"]["conditions"],
            json!([{"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric",
                    "message": "a < b && c > d"}])
        );

        // Go matches field names case-insensitively; a behavior without rules is none.
        let v1 = |behavior: &str| {
            json!({
                "apiVersion": "autoscaling/v1",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "web", "annotations": {BEHAVIOR_ANNOTATION: behavior}},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3},
            })
        };
        let v2 = hpa_v1_to_v2(v1(r#"{"scaleUp":{"selectPolicy":"Disabled","policies":[]}}"#)).unwrap();
        assert_eq!(
            v2["spec"]["behavior"],
            json!({"scaleUp": {"selectPolicy": "Disabled"}})
        );
        for empty in ["{}", r#"{"ScaleUp":null,"ScaleDown":null}"#, "null"] {
            let v2 = hpa_v1_to_v2(v1(empty)).unwrap();
            assert_eq!(v2["spec"].get("behavior"), None, "{empty}");
        }
    }

    #[test]
    fn hpa_rejects_objects_of_another_type() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        assert!(matches!(
            hpa_v2_to_v1(pod.clone()),
            Err(ConvertError::Invalid { kind: HPA_V2, .. })
        ));
        assert!(matches!(
            hpa_v1_to_v2(pod),
            Err(ConvertError::Invalid { kind: HPA_V1, .. })
        ));
        let v1_as_v2 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler"});
        assert!(hpa_v2_to_v1(v1_as_v2).is_err());
        let bad_spec = json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "spec": {"maxReplicas": "ten"}});
        assert!(hpa_v2_to_v1(bad_spec).is_err());
        assert!(hpa_v1_to_v2(json!(["not", "an", "object"])).is_err());
    }

    fn core_event() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": "web-1.17c8b2a1f0e4d3c2",
                "namespace": "default",
                "uid": "7d0a3c5e-1b2f-4e6a-8c9d-0e1f2a3b4c5d",
                "resourceVersion": "1234",
                "creationTimestamp": "2024-05-01T10:00:00Z",
            },
            "involvedObject": {
                "kind": "Pod",
                "namespace": "default",
                "name": "web-1",
                "uid": "11111111-2222-3333-4444-555555555555",
                "apiVersion": "v1",
                "resourceVersion": "1200",
                "fieldPath": "spec.containers{app}",
            },
            "reason": "BackOff",
            "message": "Back-off restarting failed container",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": "2024-05-01T10:00:00Z",
            "lastTimestamp": "2024-05-01T10:04:00Z",
            "count": 5,
            "type": "Warning",
            "eventTime": "2024-05-01T10:00:00.123456Z",
            "series": {"count": 5, "lastObservedTime": "2024-05-01T10:04:00.000000Z"},
            "action": "Restarting",
            "related": {"kind": "Node", "name": "node-1", "apiVersion": "v1"},
            "reportingComponent": "kubelet",
            "reportingInstance": "node-1",
        })
    }

    #[test]
    fn core_event_to_events_v1_produces_upstream_json() {
        let event = core_event();
        let converted = core_event_to_events_v1(event.clone()).unwrap();
        assert_eq!(
            converted,
            json!({
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": event["metadata"],
                "eventTime": "2024-05-01T10:00:00.123456Z",
                "series": {"count": 5, "lastObservedTime": "2024-05-01T10:04:00.000000Z"},
                "reportingController": "kubelet",
                "reportingInstance": "node-1",
                "action": "Restarting",
                "reason": "BackOff",
                "regarding": event["involvedObject"],
                "related": {"kind": "Node", "name": "node-1", "apiVersion": "v1"},
                "note": "Back-off restarting failed container",
                "type": "Warning",
                "deprecatedSource": {"component": "kubelet", "host": "node-1"},
                "deprecatedFirstTimestamp": "2024-05-01T10:00:00Z",
                "deprecatedLastTimestamp": "2024-05-01T10:04:00Z",
                "deprecatedCount": 5,
            })
        );
        assert_eq!(events_v1_to_core_event(converted).unwrap(), event);
    }

    #[test]
    fn events_v1_to_core_event_produces_upstream_json() {
        let event = json!({
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": "web.17c8b2a1", "namespace": "default", "resourceVersion": "9", "uid": "e-1"},
            "eventTime": "2024-05-01T10:00:00.000000Z",
            "reportingController": "example.com/web-controller",
            "reportingInstance": "web-controller-0",
            "action": "Reconcile",
            "reason": "Synced",
            "regarding": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "default", "name": "web"},
            "note": "synced 3 replicas",
            "type": "Normal",
        });
        let converted = events_v1_to_core_event(event.clone()).unwrap();
        assert_eq!(
            converted,
            json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": event["metadata"],
                "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": "default", "name": "web"},
                "reason": "Synced",
                "message": "synced 3 replicas",
                "type": "Normal",
                "eventTime": "2024-05-01T10:00:00.000000Z",
                "action": "Reconcile",
                "reportingComponent": "example.com/web-controller",
                "reportingInstance": "web-controller-0",
            })
        );
        assert_eq!(core_event_to_events_v1(converted).unwrap(), event);
    }

    #[test]
    fn events_round_trip_both_ways() {
        let core = core_event();
        assert_eq!(
            events_v1_to_core_event(core_event_to_events_v1(core.clone()).unwrap()).unwrap(),
            core
        );
        let events = core_event_to_events_v1(core).unwrap();
        assert_eq!(
            core_event_to_events_v1(events_v1_to_core_event(events.clone()).unwrap()).unwrap(),
            events
        );

        // A legacy event with only the old fields.
        let legacy = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "n.1", "namespace": "kube-system"},
            "involvedObject": {"kind": "Node", "name": "n"},
            "reason": "Starting",
            "source": {"component": "kube-proxy"},
            "firstTimestamp": "2024-05-01T10:00:00Z",
            "lastTimestamp": "2024-05-01T10:00:00Z",
            "count": 1,
        });
        let events = core_event_to_events_v1(legacy.clone()).unwrap();
        assert_eq!(
            events,
            json!({
                "apiVersion": "events.k8s.io/v1",
                "kind": "Event",
                "metadata": {"name": "n.1", "namespace": "kube-system"},
                "reason": "Starting",
                "regarding": {"kind": "Node", "name": "n"},
                "deprecatedSource": {"component": "kube-proxy"},
                "deprecatedFirstTimestamp": "2024-05-01T10:00:00Z",
                "deprecatedLastTimestamp": "2024-05-01T10:00:00Z",
                "deprecatedCount": 1,
            })
        );
        assert_eq!(events_v1_to_core_event(events).unwrap(), legacy);
    }

    #[test]
    fn events_edge_cases() {
        // No regarding: the core involvedObject is required, so it is empty.
        let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}, "reason": "R"});
        assert_eq!(
            events_v1_to_core_event(event).unwrap(),
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {}, "reason": "R"})
        );
        // A core series without a count gets the required zero count.
        let core = json!({
            "apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {},
            "series": {"lastObservedTime": "2024-05-01T10:00:00.000000Z"},
        });
        let events = core_event_to_events_v1(core.clone()).unwrap();
        assert_eq!(
            events["series"],
            json!({"count": 0, "lastObservedTime": "2024-05-01T10:00:00.000000Z"})
        );
        assert_eq!(events_v1_to_core_event(events).unwrap(), core);
    }

    #[test]
    fn events_reject_objects_of_another_type() {
        let core = core_event();
        assert!(matches!(
            events_v1_to_core_event(core.clone()),
            Err(ConvertError::Invalid {
                kind: EVENTS_EVENT,
                ..
            })
        ));
        let events = core_event_to_events_v1(core).unwrap();
        assert!(matches!(
            core_event_to_events_v1(events),
            Err(ConvertError::Invalid { kind: CORE_EVENT, .. })
        ));
        let bad = json!({"apiVersion": "v1", "kind": "Event", "count": "many"});
        let err = core_event_to_events_v1(bad).unwrap_err();
        assert!(err.to_string().starts_with("not a valid v1 Event: "), "{err}");
    }
}
