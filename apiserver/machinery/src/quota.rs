//! ResourceQuota usage, as upstream's quota evaluators compute it (k8s.io/apiserver
//! pkg/quota/v1 and kubernetes pkg/quota/v1/evaluator/core): what an object consumes, which
//! quotas it counts against (resources and scopes), the constraints a pod must meet, and the
//! admission check with upstream's messages.
//!
//! Shared by the API server's `ResourceQuota` admission plugin and the resourcequota
//! controller, so both count alike. Pure: the caller passes objects and the current time; it
//! reads and writes nothing.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaim, Pod, PodAffinityTerm, ResourceQuota, ScopedResourceSelectorRequirement,
    Service,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use crate::validation::{ParsedQuantity, QuantityFormat, parse_quantity};

/// Amounts by resource name (upstream's `ResourceList`).
pub type ResourceList = BTreeMap<String, ParsedQuantity>;

/// Why usage cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    /// The object does not decode as its kind.
    #[error("the object cannot be decoded: {0}")]
    Decode(#[from] serde_json::Error),
}

const STORAGE_CLASS_SUFFIX: &str = ".storageclass.storage.k8s.io/";

/// A resource list of the API, its unparsable quantities left out.
pub fn parse_list(list: Option<&BTreeMap<String, Quantity>>) -> ResourceList {
    list.into_iter()
        .flatten()
        .filter_map(|(k, v)| parse_quantity(v.0.trim()).ok().map(|q| (k.clone(), q)))
        .collect()
}

/// The API form of a resource list.
pub fn to_api(list: &ResourceList) -> BTreeMap<String, Quantity> {
    list.iter()
        .map(|(k, v)| (k.clone(), Quantity(v.to_string())))
        .collect()
}

fn one() -> ParsedQuantity {
    ParsedQuantity::from_i64(1, QuantityFormat::DecimalSI)
}

/// Upstream's `quota.Add`.
pub fn add(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let mut out = a.clone();
    for (k, v) in b {
        let sum = match a.get(k) {
            Some(left) => left.add(v),
            None => v.clone(),
        };
        out.insert(k.clone(), sum);
    }
    out
}

/// Upstream's `quota.SubtractWithNonNegativeResult`.
pub fn subtract_non_negative(a: &ResourceList, b: &ResourceList) -> ResourceList {
    let zero = ParsedQuantity::zero();
    let mut out = ResourceList::new();
    for (k, v) in a {
        let mut diff = v.sub(b.get(k).unwrap_or(&zero));
        if diff.sign() < 0 {
            diff = ParsedQuantity::zero();
        }
        out.insert(k.clone(), diff);
    }
    for k in b.keys().filter(|k| !a.contains_key(*k)) {
        out.insert(k.clone(), ParsedQuantity::zero());
    }
    out
}

/// Upstream's `quota.Mask`: only the named resources.
pub fn mask<'a>(list: &ResourceList, names: impl IntoIterator<Item = &'a String>) -> ResourceList {
    names
        .into_iter()
        .filter_map(|k| list.get(k).map(|v| (k.clone(), v.clone())))
        .collect()
}

/// Upstream's `quota.Equals`: the same names with equal values.
pub fn equals(a: &ResourceList, b: &ResourceList) -> bool {
    a.len() == b.len() && a.iter().all(|(k, v)| b.get(k) == Some(v))
}

/// Upstream's `quota.LessThanOrEqual`: whether every value of `a` is within `b` (a name absent
/// from `b` is unbounded), and the names that are not.
pub fn less_than_or_equal(a: &ResourceList, b: &ResourceList) -> (bool, Vec<String>) {
    let exceeded: Vec<String> = a
        .iter()
        .filter(|(k, v)| b.get(*k).is_some_and(|limit| *v > limit))
        .map(|(k, _)| k.clone())
        .collect();
    (exceeded.is_empty(), exceeded)
}

/// Upstream's `prettyPrint`: `name=value` sorted by name, joined by commas.
pub fn pretty_print(list: &ResourceList) -> String {
    list.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Upstream's `ObjectCountQuotaResourceNameFor`: `count/<resource>[.<group>]`.
pub fn object_count_name(group: &str, resource: &str) -> String {
    if group.is_empty() {
        format!("count/{resource}")
    } else {
        format!("count/{resource}.{group}")
    }
}

/// Which evaluator counts a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Pods,
    Services,
    PersistentVolumeClaims,
    /// Object counting: `count/<resource>` and the legacy alias, if any.
    Count(Vec<String>),
}

/// The evaluator of one group/resource (upstream's registry entry: the special evaluators of
/// pods, services and claims; object counting with the legacy names of configmaps, secrets,
/// replicationcontrollers and resourcequotas; object counting for every other resource).
#[derive(Clone, Debug)]
pub struct Evaluator {
    kind: Kind,
}

/// What an admission request is, as far as quota cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A create.
    Create,
    /// An update (or patch) of the object or of `subresource`.
    Update,
}

impl Evaluator {
    /// The evaluator for `group`/`resource`.
    pub fn for_resource(group: &str, resource: &str) -> Evaluator {
        let kind = match (group, resource) {
            ("", "pods") => Kind::Pods,
            ("", "services") => Kind::Services,
            ("", "persistentvolumeclaims") => Kind::PersistentVolumeClaims,
            _ => {
                let mut names = vec![object_count_name(group, resource)];
                if group.is_empty()
                    && matches!(
                        resource,
                        "configmaps" | "secrets" | "replicationcontrollers" | "resourcequotas"
                    )
                {
                    names.push(resource.to_owned());
                }
                Kind::Count(names)
            }
        };
        Evaluator { kind }
    }

    /// Whether a request may change usage (upstream's `Handles`).
    pub fn handles(
        &self,
        operation: Operation,
        subresource: &str,
        object: &Value,
        old: Option<&Value>,
    ) -> bool {
        match &self.kind {
            Kind::Pods => match (subresource, operation) {
                ("", Operation::Create) => true,
                ("", Operation::Update) => {
                    let terminating = |v: &Value| {
                        serde_json::from_value::<Pod>(v.clone()).is_ok_and(|p| is_terminating(&p))
                    };
                    old.is_some_and(|old| terminating(old) != terminating(object))
                }
                ("resize", Operation::Update) => true,
                _ => false,
            },
            Kind::Services => subresource.is_empty(),
            Kind::PersistentVolumeClaims => subresource.is_empty(),
            Kind::Count(_) => subresource.is_empty() && operation == Operation::Create,
        }
    }

    /// The names among `names` this evaluator measures (upstream's `MatchingResources`).
    pub fn matching_resources<'a>(&self, names: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        names
            .into_iter()
            .filter(|name| self.measures(name))
            .cloned()
            .collect()
    }

    fn measures(&self, name: &str) -> bool {
        match &self.kind {
            Kind::Pods => {
                matches!(
                    name,
                    "count/pods"
                        | "cpu"
                        | "memory"
                        | "ephemeral-storage"
                        | "requests.cpu"
                        | "requests.memory"
                        | "requests.ephemeral-storage"
                        | "limits.cpu"
                        | "limits.memory"
                        | "limits.ephemeral-storage"
                        | "pods"
                ) || name.starts_with("hugepages-")
                    || name.starts_with("requests.hugepages-")
                    || is_extended_resource_for_quota(name)
            }
            Kind::Services => matches!(
                name,
                "count/services" | "services" | "services.nodeports" | "services.loadbalancers"
            ),
            Kind::PersistentVolumeClaims => {
                matches!(
                    name,
                    "count/persistentvolumeclaims" | "persistentvolumeclaims" | "requests.storage"
                ) || name.ends_with(".storageclass.storage.k8s.io/persistentvolumeclaims")
                    || name.ends_with(".storageclass.storage.k8s.io/requests.storage")
            }
            Kind::Count(names) => names.iter().any(|n| n == name),
        }
    }

    /// What the object consumes (upstream's `Usage`); `now` decides whether a pod past its
    /// deletion grace period still counts.
    pub fn usage(&self, object: &Value, now: jiff::Timestamp) -> Result<ResourceList, QuotaError> {
        Ok(match &self.kind {
            Kind::Pods => pod_usage(&serde_json::from_value(object.clone())?, now),
            Kind::Services => service_usage(&serde_json::from_value(object.clone())?),
            Kind::PersistentVolumeClaims => pvc_usage(&serde_json::from_value(object.clone())?),
            Kind::Count(names) => names.iter().map(|n| (n.clone(), one())).collect(),
        })
    }

    /// Whether one scope selector selects the object (upstream's `MatchesScopeFunc`).
    pub fn matches_scope(&self, selector: &ScopedResourceSelectorRequirement, object: &Value) -> bool {
        match &self.kind {
            Kind::Pods => serde_json::from_value::<Pod>(object.clone())
                .is_ok_and(|pod| pod_matches_scope(selector, &pod)),
            Kind::PersistentVolumeClaims => serde_json::from_value::<PersistentVolumeClaim>(object.clone())
                .is_ok_and(|pvc| pvc_matches_scope(selector, &pvc)),
            _ => false,
        }
    }

    /// Whether the quota counts the object: it limits a resource this evaluator measures and
    /// every scope selects the object (upstream's `Matches`).
    pub fn matches(&self, quota: &ResourceQuota, object: &Value) -> bool {
        let hard = quota.status.as_ref().and_then(|s| s.hard.as_ref());
        let limits_any = hard.into_iter().flatten().any(|(name, _)| self.measures(name));
        limits_any
            && scope_selectors(quota)
                .iter()
                .all(|s| self.matches_scope(s, object))
    }

    /// What the object must specify for the quota's resources (upstream's `Constraints`):
    /// `must specify limits.cpu for: c; requests.memory for: c,d`.
    pub fn constraints(&self, required: &[String], object: &Value) -> Result<(), String> {
        if self.kind != Kind::Pods {
            return Ok(());
        }
        let Ok(pod) = serde_json::from_value::<Pod>(object.clone()) else {
            return Ok(());
        };
        let Some(spec) = pod.spec.as_ref() else {
            return Ok(());
        };
        if pod_level_resources_set(&pod) {
            return Ok(());
        }
        const VALIDATED: [&str; 6] = [
            "cpu",
            "memory",
            "requests.cpu",
            "requests.memory",
            "limits.cpu",
            "limits.memory",
        ];
        let required: BTreeSet<&str> = required
            .iter()
            .map(String::as_str)
            .filter(|r| VALIDATED.contains(r))
            .collect();
        let mut missing: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for container in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let resources = container.resources.as_ref();
            let usage = compute_usage(
                &parse_list(resources.and_then(|r| r.requests.as_ref())),
                &parse_list(resources.and_then(|r| r.limits.as_ref())),
            );
            for name in &required {
                if !usage.contains_key(*name) {
                    missing.entry(name).or_default().insert(container.name.clone());
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let parts: Vec<String> = missing
            .iter()
            .map(|(name, containers)| {
                format!(
                    "{name} for: {}",
                    containers.iter().cloned().collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        Err(format!("must specify {}", parts.join("; ")))
    }
}

/// A quota's scopes and scope selector as selector requirements.
pub fn scope_selectors(quota: &ResourceQuota) -> Vec<ScopedResourceSelectorRequirement> {
    let spec = quota.spec.as_ref();
    let mut out: Vec<ScopedResourceSelectorRequirement> = spec
        .and_then(|s| s.scopes.as_ref())
        .into_iter()
        .flatten()
        .map(|scope| ScopedResourceSelectorRequirement {
            scope_name: scope.clone(),
            operator: "Exists".into(),
            values: None,
        })
        .collect();
    out.extend(
        spec.and_then(|s| s.scope_selector.as_ref())
            .and_then(|s| s.match_expressions.clone())
            .into_iter()
            .flatten(),
    );
    out
}

fn is_extended_resource_for_quota(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("requests.") else {
        return false;
    };
    let native = !rest.contains('/') || rest.contains("kubernetes.io/");
    !native || rest.starts_with("deviceclass.resource.kubernetes.io/")
}

/// Upstream's `podComputeUsageHelper`.
fn compute_usage(requests: &ResourceList, limits: &ResourceList) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("pods".into(), one());
    for (base, request_name, limit_name) in [
        ("cpu", "requests.cpu", "limits.cpu"),
        ("memory", "requests.memory", "limits.memory"),
        (
            "ephemeral-storage",
            "requests.ephemeral-storage",
            "limits.ephemeral-storage",
        ),
    ] {
        if let Some(request) = requests.get(base) {
            out.insert(base.into(), request.clone());
            out.insert(request_name.into(), request.clone());
        }
        if let Some(limit) = limits.get(base) {
            out.insert(limit_name.into(), limit.clone());
        }
    }
    for (name, request) in requests {
        if name.starts_with("hugepages-") {
            out.insert(name.clone(), request.clone());
            out.insert(format!("requests.{name}"), request.clone());
        }
        let native = !name.contains('/') || name.contains("kubernetes.io/");
        let extended = !native && !name.starts_with("requests.");
        if extended || name.starts_with("deviceclass.resource.kubernetes.io/") {
            out.insert(format!("requests.{name}"), request.clone());
        }
    }
    out
}

/// Whether the pod sets pod-level CPU or memory (upstream's `IsPodLevelResourcesSet`).
fn pod_level_resources_set(pod: &Pod) -> bool {
    let Some(resources) = pod.spec.as_ref().and_then(|s| s.resources.as_ref()) else {
        return false;
    };
    [&resources.requests, &resources.limits]
        .into_iter()
        .flatten()
        .any(|list| list.keys().any(|k| k == "cpu" || k == "memory"))
}

/// Whether the pod has an active deadline (the `Terminating` scope).
fn is_terminating(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.active_deadline_seconds)
        .is_some_and(|d| d >= 0)
}

/// Upstream's QoS `BestEffort`: no container (nor the pod) requests or limits CPU or memory.
fn is_best_effort(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    let sets = |lists: [Option<&BTreeMap<String, Quantity>>; 2]| {
        lists.into_iter().flatten().any(|list| {
            list.iter().any(|(k, v)| {
                (k == "cpu" || k == "memory") && parse_quantity(v.0.trim()).is_ok_and(|q| !q.is_zero())
            })
        })
    };
    if let Some(r) = spec.resources.as_ref()
        && sets([r.requests.as_ref(), r.limits.as_ref()])
    {
        return false;
    }
    !spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .filter_map(|c| c.resources.as_ref())
        .any(|r| sets([r.requests.as_ref(), r.limits.as_ref()]))
}

/// Upstream's `ScopedResourceSelectorRequirementsAsSelector` applied to the one label the
/// scope offers (`key=value`, or none).
fn selector_matches(selector: &ScopedResourceSelectorRequirement, value: Option<&str>) -> bool {
    let values = selector.values.as_deref().unwrap_or_default();
    match selector.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        _ => false,
    }
}

fn cross_namespace(term: &PodAffinityTerm) -> bool {
    term.namespaces.as_ref().is_some_and(|n| !n.is_empty()) || term.namespace_selector.is_some()
}

fn uses_cross_namespace_affinity(pod: &Pod) -> bool {
    let Some(affinity) = pod.spec.as_ref().and_then(|s| s.affinity.as_ref()) else {
        return false;
    };
    let terms =
        |required: Option<&Vec<PodAffinityTerm>>,
         preferred: Option<&Vec<k8s_openapi::api::core::v1::WeightedPodAffinityTerm>>| {
            required.into_iter().flatten().any(cross_namespace)
                || preferred
                    .into_iter()
                    .flatten()
                    .any(|w| cross_namespace(&w.pod_affinity_term))
        };
    affinity.pod_affinity.as_ref().is_some_and(|a| {
        terms(
            a.required_during_scheduling_ignored_during_execution.as_ref(),
            a.preferred_during_scheduling_ignored_during_execution.as_ref(),
        )
    }) || affinity.pod_anti_affinity.as_ref().is_some_and(|a| {
        terms(
            a.required_during_scheduling_ignored_during_execution.as_ref(),
            a.preferred_during_scheduling_ignored_during_execution.as_ref(),
        )
    })
}

fn pod_matches_scope(selector: &ScopedResourceSelectorRequirement, pod: &Pod) -> bool {
    match selector.scope_name.as_str() {
        "Terminating" => is_terminating(pod),
        "NotTerminating" => !is_terminating(pod),
        "BestEffort" => is_best_effort(pod),
        "NotBestEffort" => !is_best_effort(pod),
        "PriorityClass" => {
            let class = pod
                .spec
                .as_ref()
                .and_then(|s| s.priority_class_name.as_deref())
                .filter(|c| !c.is_empty());
            selector_matches(selector, class)
        }
        "CrossNamespacePodAffinity" => uses_cross_namespace_affinity(pod),
        _ => false,
    }
}

fn pvc_matches_scope(selector: &ScopedResourceSelectorRequirement, pvc: &PersistentVolumeClaim) -> bool {
    if selector.scope_name != "VolumeAttributesClass" {
        return false;
    }
    let names: BTreeSet<&str> = [
        pvc.spec
            .as_ref()
            .and_then(|s| s.volume_attributes_class_name.as_deref()),
        pvc.status
            .as_ref()
            .and_then(|s| s.current_volume_attributes_class_name.as_deref()),
    ]
    .into_iter()
    .flatten()
    .filter(|n| !n.is_empty())
    .collect();
    if selector.operator == "Exists" {
        return !names.is_empty();
    }
    if names.is_empty() {
        return selector_matches(selector, None);
    }
    names.iter().any(|n| selector_matches(selector, Some(n)))
}

/// Whether a pod still counts: not terminal, not past its deletion grace period (upstream's
/// `QuotaV1Pod`).
pub fn pod_counts(pod: &Pod, now: jiff::Timestamp) -> bool {
    if matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed" | "Succeeded")
    ) {
        return false;
    }
    if let (Some(deleted), Some(grace)) = (
        pod.metadata.deletion_timestamp.as_ref(),
        pod.metadata.deletion_grace_period_seconds,
    ) && let Ok(deadline) = deleted.0.checked_add(jiff::SignedDuration::from_secs(grace))
        && now > deadline
    {
        return false;
    }
    true
}

fn container_list(container: &Container, limits: bool) -> ResourceList {
    let resources = container.resources.as_ref();
    parse_list(resources.and_then(|r| {
        if limits {
            r.limits.as_ref()
        } else {
            r.requests.as_ref()
        }
    }))
}

fn max_into(target: &mut ResourceList, other: &ResourceList) {
    for (k, v) in other {
        match target.get(k) {
            Some(current) if current >= v => {}
            _ => {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Upstream's `resource.PodRequests` / `PodLimits`: app and sidecar containers summed, init
/// containers at most, pod-level CPU and memory replacing the containers', plus overhead
/// (added to limits only where a limit is set).
fn pod_resources(pod: &Pod, limits: bool) -> ResourceList {
    let Some(spec) = pod.spec.as_ref() else {
        return ResourceList::new();
    };
    let mut total = ResourceList::new();
    for container in &spec.containers {
        total = add(&total, &container_list(container, limits));
    }
    let mut sidecars = ResourceList::new();
    let mut init_max = ResourceList::new();
    for container in spec.init_containers.iter().flatten() {
        let own = container_list(container, limits);
        let effective = if container.restart_policy.as_deref() == Some("Always") {
            total = add(&total, &own);
            sidecars = add(&sidecars, &own);
            sidecars.clone()
        } else {
            add(&own, &sidecars)
        };
        max_into(&mut init_max, &effective);
    }
    max_into(&mut total, &init_max);
    let pod_level = spec.resources.as_ref().map(|r| {
        parse_list(if limits {
            r.limits.as_ref()
        } else {
            r.requests.as_ref()
        })
    });
    for (k, v) in pod_level.iter().flatten() {
        if k == "cpu" || k == "memory" {
            total.insert(k.clone(), v.clone());
        }
    }
    let overhead = parse_list(spec.overhead.as_ref());
    if limits {
        for (k, v) in &overhead {
            if let Some(limit) = total.get(k) {
                let sum = limit.add(v);
                total.insert(k.clone(), sum);
            }
        }
    } else {
        total = add(&total, &overhead);
    }
    total
}

/// Upstream's `PodUsageFunc`.
pub fn pod_usage(pod: &Pod, now: jiff::Timestamp) -> ResourceList {
    let mut out = ResourceList::new();
    out.insert("count/pods".into(), one());
    if !pod_counts(pod, now) {
        return out;
    }
    add(
        &out,
        &compute_usage(&pod_resources(pod, false), &pod_resources(pod, true)),
    )
}

fn service_usage(service: &Service) -> ResourceList {
    let spec = service.spec.as_ref();
    let ports = spec.and_then(|s| s.ports.as_ref()).map_or(0, Vec::len) as i64;
    let count = |n: i64| ParsedQuantity::from_i64(n, QuantityFormat::DecimalSI);
    let (node_ports, load_balancers) = match spec.and_then(|s| s.type_.as_deref()) {
        Some("NodePort") => (ports, 0),
        Some("LoadBalancer") => {
            let node_ports = if spec.and_then(|s| s.allocate_load_balancer_node_ports) == Some(false) {
                spec.and_then(|s| s.ports.as_ref())
                    .into_iter()
                    .flatten()
                    .filter(|p| p.node_port.is_some_and(|n| n != 0))
                    .count() as i64
            } else {
                ports
            };
            (node_ports, 1)
        }
        _ => (0, 0),
    };
    ResourceList::from([
        ("count/services".into(), one()),
        ("services".into(), one()),
        ("services.loadbalancers".into(), count(load_balancers)),
        ("services.nodeports".into(), count(node_ports)),
    ])
}

fn pvc_usage(pvc: &PersistentVolumeClaim) -> ResourceList {
    let mut out = ResourceList::from([
        ("persistentvolumeclaims".into(), one()),
        ("count/persistentvolumeclaims".into(), one()),
    ]);
    let class = pvc
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .or_else(|| {
            pvc.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("volume.beta.kubernetes.io/storage-class").cloned())
        })
        .unwrap_or_default();
    if !class.is_empty() {
        out.insert(
            format!("{class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"),
            one(),
        );
    }
    let round = |q: &ParsedQuantity| {
        let mut q = q.clone();
        q.round_up(0);
        q
    };
    let requested = pvc
        .spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| parse_quantity(q.0.trim()).ok())
        .map(|q| round(&q));
    let allocated = pvc
        .status
        .as_ref()
        .and_then(|s| s.allocated_resources.as_ref())
        .and_then(|r| r.get("storage"))
        .and_then(|q| parse_quantity(q.0.trim()).ok());
    let storage = match (requested, allocated) {
        (Some(requested), Some(allocated)) if allocated > requested => Some(round(&allocated)),
        (requested, _) => requested,
    };
    if let Some(storage) = storage {
        if !class.is_empty() {
            out.insert(
                format!("{class}{STORAGE_CLASS_SUFFIX}requests.storage"),
                storage.clone(),
            );
        }
        out.insert("requests.storage".into(), storage);
    }
    out
}

/// An admission request, as the check sees it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// Create or update.
    pub operation: Operation,
    /// The subresource, empty for the object itself.
    pub subresource: &'a str,
    /// The object as it will be stored.
    pub object: &'a Value,
    /// The stored object, on update.
    pub old: Option<&'a Value>,
}

/// Why a request is refused: the message of upstream's `admission.NewForbidden`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// Upstream's `CheckRequest` (without limited resources, which the default configuration does
/// not set): for each quota the request counts against, the quota's new `status.used`, by
/// index into `quotas`. A quota the request does not change is not returned.
pub fn check_request(
    evaluator: &Evaluator,
    quotas: &[ResourceQuota],
    request: Request<'_>,
    now: jiff::Timestamp,
) -> Result<Vec<(usize, ResourceList)>, Refusal> {
    let mut interesting = Vec::new();
    for (index, quota) in quotas.iter().enumerate() {
        if !evaluator.matches(quota, request.object) {
            continue;
        }
        let name = quota.metadata.name.as_deref().unwrap_or_default();
        let status = quota.status.as_ref();
        let hard_names: Vec<String> = status
            .and_then(|s| s.hard.as_ref())
            .into_iter()
            .flatten()
            .map(|(k, _)| k.clone())
            .collect();
        let restricted = evaluator.matching_resources(&hard_names);
        if let Err(why) = evaluator.constraints(&restricted, request.object) {
            return Err(Refusal(format!("failed quota: {name}: {why}")));
        }
        let used = status.and_then(|s| s.used.as_ref());
        let unknown: Vec<&String> = restricted
            .iter()
            .filter(|r| !used.is_some_and(|u| u.contains_key(*r)))
            .collect();
        if !unknown.is_empty() {
            let mut names: Vec<&str> = restricted.iter().map(String::as_str).collect();
            names.sort_unstable();
            return Err(Refusal(format!(
                "status unknown for quota: {name}, resources: {}",
                names.join(",")
            )));
        }
        interesting.push(index);
    }
    if interesting.is_empty() {
        return Ok(Vec::new());
    }
    let usage = |v: &Value| evaluator.usage(v, now).map_err(|err| Refusal(err.to_string()));
    let input = usage(request.object)?;
    let negative: Vec<&str> = input
        .iter()
        .filter(|(_, v)| v.sign() < 0)
        .map(|(k, _)| k.as_str())
        .collect();
    if !negative.is_empty() {
        return Err(Refusal(format!(
            "quota usage is negative for resource(s): {}",
            negative.join(",")
        )));
    }
    let mut deltas: BTreeMap<usize, ResourceList> = interesting.iter().map(|&i| (i, input.clone())).collect();
    if request.operation == Operation::Update {
        let Some(old) = request.old else {
            return Err(Refusal(
                "unable to get previous usage since prior version of object was not found".into(),
            ));
        };
        let has_version = old
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty());
        if has_version {
            let delta = subtract_non_negative(&input, &usage(old)?);
            for &index in &interesting {
                if evaluator.matches(&quotas[index], old) {
                    deltas.insert(index, delta.clone());
                }
            }
        }
    }
    let mut out = Vec::new();
    for (index, delta) in deltas {
        let delta: ResourceList = delta.into_iter().filter(|(_, v)| !v.is_zero()).collect();
        if delta.is_empty() {
            continue;
        }
        let quota = &quotas[index];
        let status = quota.status.as_ref();
        let hard = parse_list(status.and_then(|s| s.hard.as_ref()));
        let used = parse_list(status.and_then(|s| s.used.as_ref()));
        let requested = mask(&delta, hard.keys());
        let new_used = add(&used, &requested);
        if request.subresource != "status" {
            let masked = mask(&new_used, requested.keys());
            let (allowed, exceeded) = less_than_or_equal(&masked, &hard);
            if !allowed {
                return Err(Refusal(format!(
                    "exceeded quota: {}, requested: {}, used: {}, limited: {}",
                    quota.metadata.name.as_deref().unwrap_or_default(),
                    pretty_print(&mask(&requested, &exceeded)),
                    pretty_print(&mask(&used, &exceeded)),
                    pretty_print(&mask(&hard, &exceeded)),
                )));
            }
        }
        out.push((index, new_used));
    }
    Ok(out)
}

/// Upstream's `CalculateUsage` for one evaluator: what the objects of one resource in the
/// quota's namespace consume of the quota's resources (zero for each resource the evaluator
/// measures), or `None` when the evaluator measures none of them.
pub fn usage_of<'a>(
    evaluator: &Evaluator,
    quota: &ResourceQuota,
    objects: impl IntoIterator<Item = &'a Value>,
    now: jiff::Timestamp,
) -> Option<ResourceList> {
    let hard = quota.spec.as_ref().and_then(|s| s.hard.as_ref());
    let names: Vec<String> = hard.into_iter().flatten().map(|(k, _)| k.clone()).collect();
    let measured = evaluator.matching_resources(&names);
    if measured.is_empty() {
        return None;
    }
    let selectors = scope_selectors(quota);
    let mut used: ResourceList = measured
        .iter()
        .map(|k| (k.clone(), ParsedQuantity::zero()))
        .collect();
    for object in objects {
        if selectors.iter().all(|s| evaluator.matches_scope(s, object))
            && let Ok(usage) = evaluator.usage(object, now)
        {
            used = add(&used, &usage);
        }
    }
    Some(mask(&used, &measured))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    fn now() -> jiff::Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn list(pairs: &[(&str, &str)]) -> ResourceList {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), parse_quantity(v).unwrap()))
            .collect()
    }

    fn quota(name: &str, hard: &[(&str, &str)], used: &[(&str, &str)], spec: Value) -> ResourceQuota {
        let hard: BTreeMap<&str, &str> = hard.iter().copied().collect();
        let used: BTreeMap<&str, &str> = used.iter().copied().collect();
        let mut spec = spec;
        spec["hard"] = json!(hard);
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns"},
            "spec": spec,
            "status": {"hard": hard, "used": used},
        }))
        .unwrap()
    }

    fn pod(containers: Value, extra: Value) -> Value {
        let mut spec = serde_json::Map::new();
        spec.insert("containers".into(), containers);
        if let Value::Object(extra) = extra {
            spec.extend(extra);
        }
        json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": spec})
    }

    fn create(object: &Value) -> Request<'_> {
        Request {
            operation: Operation::Create,
            subresource: "",
            object,
            old: None,
        }
    }

    #[test]
    fn adds_and_subtracts_quantities() {
        let q = |s: &str| parse_quantity(s).unwrap();
        assert_eq!(q("500m").add(&q("500m")).to_string(), "1");
        assert_eq!(q("1Gi").add(&q("1Gi")).to_string(), "2Gi");
        assert_eq!(ParsedQuantity::zero().add(&q("1Gi")).to_string(), "1Gi");
        assert_eq!(q("1").sub(&q("250m")).to_string(), "750m");
        assert_eq!(q("1").sub(&q("2")).to_string(), "-1");
        assert_eq!(q("100m").add(&q("-300m")).to_string(), "-200m");
    }

    #[test]
    fn pod_usage_follows_init_sidecar_and_overhead_rules() {
        let p: Pod = serde_json::from_value(pod(
            json!([{"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m"}}}]),
            json!({
                "initContainers": [
                    {"name": "init", "resources": {"requests": {"cpu": "500m"}}},
                    {"name": "side", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m", "memory": "16Mi"}}}
                ],
                "overhead": {"cpu": "10m"}
            }),
        ))
        .unwrap();
        let usage = pod_usage(&p, now());
        // max(init 500m, app 100m + sidecar 50m) + overhead 10m
        assert_eq!(usage["requests.cpu"].to_string(), "510m");
        assert_eq!(usage["cpu"].to_string(), "510m");
        assert_eq!(usage["requests.memory"].to_string(), "80Mi");
        assert_eq!(usage["limits.cpu"].to_string(), "210m");
        assert_eq!(usage["pods"].to_string(), "1");
        assert_eq!(usage["count/pods"].to_string(), "1");
        assert!(!usage.contains_key("limits.memory"));
    }

    #[test]
    fn terminal_pods_count_only_as_objects() {
        let mut value = pod(json!([{"name": "a"}]), json!({}));
        value["status"] = json!({"phase": "Succeeded"});
        let usage = pod_usage(&serde_json::from_value(value).unwrap(), now());
        assert_eq!(usage, list(&[("count/pods", "1")]));
        let mut value = pod(json!([{"name": "a"}]), json!({}));
        value["metadata"]["deletionTimestamp"] = json!("2025-12-31T23:59:00Z");
        value["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        let usage = pod_usage(&serde_json::from_value(value).unwrap(), now());
        assert!(!usage.contains_key("pods"));
    }

    #[test]
    fn service_and_claim_usage() {
        let svc: Service = serde_json::from_value(json!({
            "spec": {"type": "LoadBalancer", "ports": [{"port": 80}, {"port": 443}]}
        }))
        .unwrap();
        let usage = service_usage(&svc);
        assert_eq!(
            pretty_print(&usage),
            "count/services=1,services=1,services.loadbalancers=1,services.nodeports=2"
        );
        let pvc: PersistentVolumeClaim = serde_json::from_value(json!({
            "spec": {"storageClassName": "gold", "resources": {"requests": {"storage": "1500m"}}}
        }))
        .unwrap();
        let usage = pvc_usage(&pvc);
        assert_eq!(usage["requests.storage"].to_string(), "2");
        assert_eq!(
            usage["gold.storageclass.storage.k8s.io/requests.storage"].to_string(),
            "2"
        );
        assert_eq!(
            usage["gold.storageclass.storage.k8s.io/persistentvolumeclaims"].to_string(),
            "1"
        );
    }

    #[test]
    fn exceeded_quota_message() {
        let evaluator = Evaluator::for_resource("", "pods");
        let quotas = [quota("q", &[("pods", "1")], &[("pods", "1")], json!({}))];
        let object = pod(json!([{"name": "c"}]), json!({}));
        let err = check_request(&evaluator, &quotas, create(&object), now()).unwrap_err();
        assert_eq!(
            err.0,
            "exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1"
        );
    }

    #[test]
    fn admitted_request_increments_used() {
        let evaluator = Evaluator::for_resource("", "configmaps");
        let quotas = [quota(
            "q",
            &[("configmaps", "3"), ("count/configmaps", "3"), ("pods", "2")],
            &[("configmaps", "1"), ("count/configmaps", "1"), ("pods", "0")],
            json!({}),
        )];
        let object = json!({"metadata": {"name": "c"}});
        let out = check_request(&evaluator, &quotas, create(&object), now()).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(pretty_print(&out[0].1), "configmaps=2,count/configmaps=2,pods=0");
    }

    #[test]
    fn missing_limits_fail_the_quota() {
        let evaluator = Evaluator::for_resource("", "pods");
        let quotas = [quota(
            "compute",
            &[("limits.cpu", "2"), ("requests.memory", "1Gi")],
            &[("limits.cpu", "0"), ("requests.memory", "0")],
            json!({}),
        )];
        let object = pod(
            json!([{"name": "c"}, {"name": "d", "resources": {"limits": {"cpu": "1"}}}]),
            json!({}),
        );
        let err = check_request(&evaluator, &quotas, create(&object), now()).unwrap_err();
        assert_eq!(
            err.0,
            "failed quota: compute: must specify limits.cpu for: c; requests.memory for: c,d"
        );
    }

    #[test]
    fn status_unknown_until_the_controller_counts() {
        let evaluator = Evaluator::for_resource("", "pods");
        let quotas = [quota("q", &[("pods", "2")], &[], json!({}))];
        let object = pod(json!([{"name": "c"}]), json!({}));
        let err = check_request(&evaluator, &quotas, create(&object), now()).unwrap_err();
        assert_eq!(err.0, "status unknown for quota: q, resources: pods");
    }

    #[test]
    fn scopes_select_pods() {
        let evaluator = Evaluator::for_resource("", "pods");
        let best_effort = pod(json!([{"name": "c"}]), json!({}));
        let burstable = pod(
            json!([{"name": "c", "resources": {"requests": {"cpu": "1"}}}]),
            json!({"activeDeadlineSeconds": 10, "priorityClassName": "high"}),
        );
        let scoped = |scopes: Value| quota("q", &[("pods", "1")], &[("pods", "0")], scopes);
        let q = scoped(json!({"scopes": ["BestEffort"]}));
        assert!(evaluator.matches(&q, &best_effort));
        assert!(!evaluator.matches(&q, &burstable));
        let q = scoped(json!({"scopes": ["NotBestEffort", "Terminating"]}));
        assert!(!evaluator.matches(&q, &best_effort));
        assert!(evaluator.matches(&q, &burstable));
        let q = scoped(json!({"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}
        ]}}));
        assert!(evaluator.matches(&q, &burstable));
        assert!(!evaluator.matches(&q, &best_effort));
        let q = scoped(json!({"scopeSelector": {"matchExpressions": [
            {"scopeName": "PriorityClass", "operator": "NotIn", "values": ["high"]}
        ]}}));
        assert!(evaluator.matches(&q, &best_effort));
        // Object counts never match a scoped quota.
        let cm = Evaluator::for_resource("", "configmaps");
        let q = quota(
            "q",
            &[("configmaps", "1")],
            &[("configmaps", "0")],
            json!({"scopes": ["BestEffort"]}),
        );
        assert!(!cm.matches(&q, &json!({"metadata": {"name": "c"}})));
    }

    #[test]
    fn controller_usage_counts_matching_objects() {
        let evaluator = Evaluator::for_resource("", "pods");
        let q = quota(
            "q",
            &[("pods", "5"), ("requests.cpu", "4"), ("configmaps", "2")],
            &[],
            json!({}),
        );
        let running = pod(
            json!([{"name": "c", "resources": {"requests": {"cpu": "250m"}}}]),
            json!({}),
        );
        let mut done = running.clone();
        done["status"] = json!({"phase": "Failed"});
        let used = usage_of(&evaluator, &q, [&running, &running, &done], now()).unwrap();
        assert_eq!(pretty_print(&used), "pods=2,requests.cpu=500m");
        let none = usage_of(&evaluator, &q, [], now()).unwrap();
        assert_eq!(pretty_print(&none), "pods=0,requests.cpu=0");
        let services = Evaluator::for_resource("", "services");
        assert!(usage_of(&services, &q, [], now()).is_none());
    }

    #[test]
    fn generic_object_counts() {
        let evaluator = Evaluator::for_resource("apps", "deployments");
        assert_eq!(
            evaluator.matching_resources(&["count/deployments.apps".to_owned(), "pods".to_owned()]),
            ["count/deployments.apps"]
        );
        let usage = evaluator.usage(&json!({}), now()).unwrap();
        assert_eq!(pretty_print(&usage), "count/deployments.apps=1");
    }
}
