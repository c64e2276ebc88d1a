//! `LimitRanger`: the LimitRanges of a namespace give new pods' containers default resource
//! requests and limits (recorded in the `kubernetes.io/limit-ranger` annotation), and bound
//! the resources of new pods (per Container and per Pod: min, max, max limit/request ratio)
//! and of PersistentVolumeClaims (min and max storage), with upstream's messages.
//!
//! LimitRanges are read as upstream stores them: their Container items defaulted
//! (`default` from `max`, `defaultRequest` from `default` and `min`) and quantities
//! canonical. A pod's requests default to its limits before the LimitRange defaults apply,
//! as upstream's Pod defaulting has done by then. It reads LimitRanges and writes nothing
//! else.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, LimitRange, LimitRangeItem, PersistentVolumeClaim, Pod, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use rudder_machinery::validation::{ParsedQuantity, parse_quantity, set_defaults_resource_list};
use serde_json::Value;

use super::common::{aggregate, decode, encode, forbidden, is, list};
use super::{Operation, Plugin};
use crate::object;
use crate::registry::Resource;
use crate::status::ApiError;
use crate::store::GenericStore;

/// The annotation recording what the plugin set.
pub const LIMIT_RANGER_ANNOTATION: &str = "kubernetes.io/limit-ranger";
/// Upstream's `resource.MaxMilliValue`.
const MAX_MILLI_VALUE: i64 = i64::MAX / 1000;

type Quantities = BTreeMap<String, Quantity>;

/// The plugin.
pub(super) struct LimitRanger;

/// A LimitRange item as upstream stores it: defaulted and canonical.
fn stored_item(item: &LimitRangeItem) -> LimitRangeItem {
    let mut item = item.clone();
    for list in [
        &mut item.default,
        &mut item.default_request,
        &mut item.max,
        &mut item.min,
        &mut item.max_limit_request_ratio,
    ] {
        set_defaults_resource_list(list);
    }
    if item.type_ == "Container" {
        let mut default = item.default.clone().unwrap_or_default();
        for (k, v) in item.max.iter().flatten() {
            default.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let mut default_request = item.default_request.clone().unwrap_or_default();
        for (k, v) in default.iter().chain(item.min.iter().flatten()) {
            default_request.entry(k.clone()).or_insert_with(|| v.clone());
        }
        item.default = Some(default);
        item.default_request = Some(default_request);
    }
    item
}

fn items(range: &LimitRange) -> Vec<LimitRangeItem> {
    range
        .spec
        .iter()
        .flat_map(|s| s.limits.iter())
        .map(stored_item)
        .collect()
}

/// Upstream's `defaultContainerResourceRequirements`.
fn default_requirements(range: &LimitRange) -> (Quantities, Quantities) {
    let (mut requests, mut limits) = (Quantities::new(), Quantities::new());
    for item in items(range).iter().filter(|i| i.type_ == "Container") {
        requests.extend(item.default_request.clone().unwrap_or_default());
        limits.extend(item.default.clone().unwrap_or_default());
    }
    (requests, limits)
}

/// Upstream's `SetDefaults_Pod` for resources: requests default to limits.
fn default_requests_to_limits(container: &mut Container) {
    let Some(resources) = container.resources.as_mut() else {
        return;
    };
    let Some(limits) = resources.limits.clone() else {
        return;
    };
    let requests = resources.requests.get_or_insert_with(Quantities::new);
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

/// Upstream's `mergeContainerResources`: returns the annotation parts.
fn merge_container(
    container: &mut Container,
    requests: &Quantities,
    limits: &Quantities,
    prefix: &str,
) -> Vec<String> {
    let resources = container
        .resources
        .get_or_insert_with(ResourceRequirements::default);
    let mut set_limits = Vec::new();
    for (k, v) in limits {
        let target = resources.limits.get_or_insert_with(Quantities::new);
        if !target.contains_key(k) {
            target.insert(k.clone(), v.clone());
            set_limits.push(k.clone());
        }
    }
    let mut set_requests = Vec::new();
    for (k, v) in requests {
        let target = resources.requests.get_or_insert_with(Quantities::new);
        if !target.contains_key(k) {
            target.insert(k.clone(), v.clone());
            set_requests.push(k.clone());
        }
    }
    if resources.limits.as_ref().is_some_and(BTreeMap::is_empty) {
        resources.limits = None;
    }
    if resources.requests.as_ref().is_some_and(BTreeMap::is_empty) {
        resources.requests = None;
    }
    let mut notes = Vec::new();
    if !set_requests.is_empty() {
        set_requests.sort();
        notes.push(format!(
            "{} request for {prefix} {}",
            set_requests.join(", "),
            container.name
        ));
    }
    if !set_limits.is_empty() {
        set_limits.sort();
        notes.push(format!(
            "{} limit for {prefix} {}",
            set_limits.join(", "),
            container.name
        ));
    }
    notes
}

/// Upstream's `PodMutateLimitFunc` for one LimitRange.
fn mutate_pod(range: &LimitRange, pod: &mut Pod) {
    let (requests, limits) = default_requirements(range);
    let Some(spec) = pod.spec.as_mut() else { return };
    let mut notes = Vec::new();
    for container in &mut spec.containers {
        notes.extend(merge_container(container, &requests, &limits, "container"));
    }
    for container in spec.init_containers.iter_mut().flatten() {
        notes.extend(merge_container(container, &requests, &limits, "init container"));
    }
    if !notes.is_empty() {
        pod.metadata.annotations.get_or_insert_with(BTreeMap::new).insert(
            LIMIT_RANGER_ANNOTATION.to_owned(),
            format!("LimitRanger plugin set: {}", notes.join("; ")),
        );
    }
}

type Parsed = BTreeMap<String, ParsedQuantity>;

fn parsed(list: Option<&Quantities>) -> Parsed {
    list.into_iter()
        .flatten()
        .filter_map(|(k, v)| parse_quantity(v.0.trim()).ok().map(|q| (k.clone(), q)))
        .collect()
}

/// Upstream's `requestLimitEnforcedValues`.
fn enforced_values(
    request: Option<&ParsedQuantity>,
    limit: Option<&ParsedQuantity>,
    enforced: &ParsedQuantity,
) -> (i64, i64, i64) {
    let value = |q: Option<&ParsedQuantity>| q.map_or(0, ParsedQuantity::value);
    let milli = |q: Option<&ParsedQuantity>| q.map_or(0, ParsedQuantity::milli_value);
    let (r, l, e) = (value(request), value(limit), enforced.value());
    if r <= MAX_MILLI_VALUE && l <= MAX_MILLI_VALUE && e <= MAX_MILLI_VALUE {
        return (milli(request), milli(limit), enforced.milli_value());
    }
    (r, l, e)
}

fn min_constraint(
    kind: &str,
    name: &str,
    enforced: &ParsedQuantity,
    requests: &Parsed,
    limits: &Parsed,
) -> Option<String> {
    let (request, limit) = (requests.get(name), limits.get(name));
    let (r, l, e) = enforced_values(request, limit, enforced);
    let Some(request) = request else {
        return Some(format!(
            "minimum {name} usage per {kind} is {enforced}.  No request is specified"
        ));
    };
    if r < e {
        return Some(format!(
            "minimum {name} usage per {kind} is {enforced}, but request is {request}"
        ));
    }
    if let Some(limit) = limit
        && l < e
    {
        return Some(format!(
            "minimum {name} usage per {kind} is {enforced}, but limit is {limit}"
        ));
    }
    None
}

fn max_request_constraint(
    kind: &str,
    name: &str,
    enforced: &ParsedQuantity,
    requests: &Parsed,
) -> Option<String> {
    let request = requests.get(name);
    let (r, _, e) = enforced_values(request, None, enforced);
    let Some(request) = request else {
        return Some(format!(
            "maximum {name} usage per {kind} is {enforced}.  No request is specified"
        ));
    };
    (r > e).then(|| format!("maximum {name} usage per {kind} is {enforced}, but request is {request}"))
}

fn max_constraint(
    kind: &str,
    name: &str,
    enforced: &ParsedQuantity,
    requests: &Parsed,
    limits: &Parsed,
) -> Option<String> {
    let (request, limit) = (requests.get(name), limits.get(name));
    let (r, l, e) = enforced_values(request, limit, enforced);
    let Some(limit) = limit else {
        return Some(format!(
            "maximum {name} usage per {kind} is {enforced}.  No limit is specified"
        ));
    };
    if l > e {
        return Some(format!(
            "maximum {name} usage per {kind} is {enforced}, but limit is {limit}"
        ));
    }
    if let Some(request) = request
        && r > e
    {
        return Some(format!(
            "maximum {name} usage per {kind} is {enforced}, but request is {request}"
        ));
    }
    None
}

fn ratio_constraint(
    kind: &str,
    name: &str,
    enforced: &ParsedQuantity,
    requests: &Parsed,
    limits: &Parsed,
) -> Option<String> {
    let (request, limit) = (requests.get(name), limits.get(name));
    let (r, l, _) = enforced_values(request, limit, enforced);
    if request.is_none() || r == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"
        ));
    }
    if limit.is_none() || l == 0 {
        return Some(format!(
            "{name} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"
        ));
    }
    let displayed = l as f64 / r as f64;
    let (mut observed, mut max) = (displayed, enforced.value() as f64);
    if enforced.value() <= MAX_MILLI_VALUE {
        observed *= 1000.0;
        max = enforced.milli_value() as f64;
    }
    (observed > max).then(|| {
        format!(
            "{name} max limit to request ratio per {kind} is {enforced}, but provided ratio is {displayed:.6}"
        )
    })
}

/// Min, max and ratio of one item against one set of requests and limits.
fn check(item: &LimitRangeItem, requests: &Parsed, limits: &Parsed, errors: &mut Vec<String>) {
    let kind = item.type_.as_str();
    for (name, q) in parsed(item.min.as_ref()) {
        errors.extend(min_constraint(kind, &name, &q, requests, limits));
    }
    for (name, q) in parsed(item.max.as_ref()) {
        errors.extend(max_constraint(kind, &name, &q, requests, limits));
    }
    for (name, q) in parsed(item.max_limit_request_ratio.as_ref()) {
        errors.extend(ratio_constraint(kind, &name, &q, requests, limits));
    }
}

fn add(a: &ParsedQuantity, b: &ParsedQuantity) -> ParsedQuantity {
    let milli = a.milli_value().saturating_add(b.milli_value());
    if milli % 1000 == 0 {
        return ParsedQuantity::from_i64(milli / 1000, a.format());
    }
    parse_quantity(&format!("{milli}m")).unwrap_or_else(|_| ParsedQuantity::zero())
}

fn add_list(list: &mut Parsed, other: &Parsed) {
    for (k, v) in other {
        let sum = match list.get(k) {
            Some(existing) => add(existing, v),
            None => v.clone(),
        };
        list.insert(k.clone(), sum);
    }
}

fn max_list(list: &mut Parsed, other: &Parsed) {
    for (k, v) in other {
        if list.get(k).is_none_or(|existing| v > existing) {
            list.insert(k.clone(), v.clone());
        }
    }
}

/// Upstream's `podRequests` / `podLimits` (restartable init containers, pod-level resources).
fn pod_totals(pod: &Pod, pick: fn(&ResourceRequirements) -> Option<&Quantities>) -> Parsed {
    let Some(spec) = pod.spec.as_ref() else {
        return Parsed::new();
    };
    let of = |c: &Container| parsed(c.resources.as_ref().and_then(pick));
    let mut total = Parsed::new();
    for container in &spec.containers {
        add_list(&mut total, &of(container));
    }
    let (mut restartable, mut init) = (Parsed::new(), Parsed::new());
    for container in spec.init_containers.iter().flatten() {
        let own = of(container);
        let effective = if container.restart_policy.as_deref() == Some("Always") {
            add_list(&mut total, &own);
            add_list(&mut restartable, &own);
            restartable.clone()
        } else {
            let mut sum = Parsed::new();
            add_list(&mut sum, &own);
            add_list(&mut sum, &restartable);
            sum
        };
        max_list(&mut init, &effective);
    }
    max_list(&mut total, &init);
    // PodLevelResources (beta, on by default): pod-level cpu and memory win.
    for (k, v) in parsed(spec.resources.as_ref().and_then(pick)) {
        if k == "cpu" || k == "memory" {
            total.insert(k, v);
        }
    }
    total
}

/// Upstream's `PodValidateLimitFunc` for one LimitRange.
fn validate_pod(range: &LimitRange, pod: &Pod) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(spec) = pod.spec.as_ref() else {
        return errors;
    };
    for item in items(range) {
        if item.type_ == "Container" {
            for container in spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
            {
                let resources = container.resources.as_ref();
                let requests = parsed(resources.and_then(|r| r.requests.as_ref()));
                let limits = parsed(resources.and_then(|r| r.limits.as_ref()));
                check(&item, &requests, &limits, &mut errors);
            }
        }
        if item.type_ == "Pod" {
            let requests = pod_totals(pod, |r| r.requests.as_ref());
            let limits = pod_totals(pod, |r| r.limits.as_ref());
            check(&item, &requests, &limits, &mut errors);
        }
    }
    errors
}

/// Upstream's `PersistentVolumeClaimValidateLimitFunc`.
fn validate_claim(range: &LimitRange, claim: &PersistentVolumeClaim) -> Vec<String> {
    let mut errors = Vec::new();
    let requests = parsed(
        claim
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref()),
    );
    for item in items(range).iter().filter(|i| i.type_ == "PersistentVolumeClaim") {
        for (name, q) in parsed(item.min.as_ref()) {
            errors.extend(min_constraint(&item.type_, &name, &q, &requests, &Parsed::new()));
        }
        for (name, q) in parsed(item.max.as_ref()) {
            errors.extend(max_request_constraint(&item.type_, &name, &q, &requests));
        }
    }
    errors
}

fn limit_ranges(store: &GenericStore, namespace: &str) -> Result<Vec<LimitRange>, ApiError> {
    list(store, ("", "v1", "limitranges"), Some(namespace))?
        .iter()
        .map(decode)
        .collect()
}

/// Upstream's `SupportsAttributes` (without the `resize` subresource): pod creates, claim
/// creates and updates; nothing for objects being deleted.
fn applies(resource: &Resource, operation: Operation, old: Option<&Value>) -> bool {
    if old.is_some_and(|o| object::deletion_timestamp(o).is_some()) {
        return false;
    }
    (is(resource, "", "pods") && operation == Operation::Create)
        || (is(resource, "", "persistentvolumeclaims")
            && matches!(operation, Operation::Create | Operation::Update))
}

impl Plugin for LimitRanger {
    fn name(&self) -> &'static str {
        "LimitRanger"
    }

    fn mutate(
        &self,
        store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if !applies(resource, operation, old) || !is(resource, "", "pods") {
            return Ok(());
        }
        let ranges = limit_ranges(store, object::namespace(object))?;
        if ranges.is_empty() {
            return Ok(());
        }
        let mut pod: Pod = decode(object)?;
        if let Some(spec) = pod.spec.as_mut() {
            for container in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                default_requests_to_limits(container);
            }
        }
        for range in &ranges {
            mutate_pod(range, &mut pod);
        }
        encode(&pod, object)
    }

    fn validate(
        &self,
        store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if !applies(resource, operation, old) {
            return Ok(());
        }
        let ranges = limit_ranges(store, object::namespace(object))?;
        if ranges.is_empty() {
            return Ok(());
        }
        let is_pod = is(resource, "", "pods");
        let (pod, claim) = if is_pod {
            (Some(decode::<Pod>(object)?), None)
        } else {
            (None, Some(decode::<PersistentVolumeClaim>(object)?))
        };
        for range in &ranges {
            let errors = match (&pod, &claim) {
                (Some(pod), _) => validate_pod(range, pod),
                (_, Some(claim)) => validate_claim(range, claim),
                _ => Vec::new(),
            };
            if !errors.is_empty() {
                return Err(forbidden(resource, object, &aggregate(&errors)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn range(limits: &Value) -> LimitRange {
        serde_json::from_value(json!({"metadata": {"name": "lr"}, "spec": {"limits": limits}})).unwrap()
    }

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn defaults_requests_and_limits_with_the_annotation() {
        let lr = range(
            &json!([{"type": "Container", "default": {"cpu": "0.5", "memory": "512Mi"},
            "defaultRequest": {"cpu": "100m"}}]),
        );
        let mut p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "app", "resources": {"limits": {"memory": "1Gi"}}}],
            "initContainers": [{"name": "setup"}],
        }}));
        for container in p.spec.as_mut().unwrap().containers.iter_mut() {
            default_requests_to_limits(container);
        }
        mutate_pod(&lr, &mut p);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v["spec"]["containers"][0]["resources"],
            json!({"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "1Gi"}})
        );
        assert_eq!(
            v["spec"]["initContainers"][0]["resources"],
            json!({"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "512Mi"}})
        );
        assert_eq!(
            v["metadata"]["annotations"][LIMIT_RANGER_ANNOTATION],
            "LimitRanger plugin set: cpu request for container app; cpu limit for container app; cpu, memory request for init container setup; cpu, memory limit for init container setup"
        );
    }

    #[test]
    fn max_defaults_the_limit() {
        let lr = range(&json!([{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]));
        let (requests, limits) = default_requirements(&lr);
        assert_eq!(limits.get("cpu").map(|q| q.0.as_str()), Some("2"));
        assert_eq!(requests.get("cpu").map(|q| q.0.as_str()), Some("2"));
        assert_eq!(requests.get("memory").map(|q| q.0.as_str()), Some("64Mi"));
    }

    #[test]
    fn enforces_min_max_and_ratio() {
        let lr = range(
            &json!([{"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "100Mi"},
            "maxLimitRequestRatio": {"cpu": "2"}}]),
        );
        let p = pod(json!({"spec": {"containers": [{"name": "c", "resources": {
            "limits": {"cpu": "1500m", "memory": "50Mi"}, "requests": {"cpu": "500m", "memory": "50Mi"}}}]}}));
        assert_eq!(
            validate_pod(&lr, &p),
            vec![
                "minimum memory usage per Container is 100Mi, but request is 50Mi".to_owned(),
                "maximum cpu usage per Container is 1, but limit is 1500m".to_owned(),
                "cpu max limit to request ratio per Container is 2, but provided ratio is 3.000000"
                    .to_owned(),
            ]
        );
        let none = pod(json!({"spec": {"containers": [{"name": "c"}]}}));
        assert_eq!(
            validate_pod(&lr, &none)[0],
            "minimum memory usage per Container is 100Mi.  No request is specified"
        );
        assert_eq!(
            validate_pod(&lr, &none)[1],
            "maximum cpu usage per Container is 1.  No limit is specified"
        );
    }

    #[test]
    fn pod_totals_sum_containers() {
        let lr = range(&json!([{"type": "Pod", "max": {"memory": "1Gi"}}]));
        let p = pod(json!({"spec": {"containers": [
            {"name": "a", "resources": {"limits": {"memory": "768Mi"}, "requests": {"memory": "768Mi"}}},
            {"name": "b", "resources": {"limits": {"memory": "768Mi"}, "requests": {"memory": "768Mi"}}},
        ]}}));
        assert_eq!(
            validate_pod(&lr, &p),
            vec!["maximum memory usage per Pod is 1Gi, but limit is 1536Mi".to_owned()]
        );
    }

    #[test]
    fn claims_are_bounded() {
        let lr = range(
            &json!([{"type": "PersistentVolumeClaim", "max": {"storage": "10Gi"}, "min": {"storage": "1Gi"}}]),
        );
        let claim: PersistentVolumeClaim =
            serde_json::from_value(json!({"spec": {"resources": {"requests": {"storage": "20Gi"}}}}))
                .unwrap();
        assert_eq!(
            validate_claim(&lr, &claim),
            vec!["maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi".to_owned()]
        );
    }
}
