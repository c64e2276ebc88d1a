//! The default scheduling profile's filters and scores, over the cache: NodeUnschedulable,
//! NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread and
//! InterPodAffinity filters (in upstream's order, with its reasons), and the LeastAllocated,
//! BalancedAllocation, NodeAffinity, TaintToleration, PodTopologySpread and InterPodAffinity
//! scores with upstream's weights. Per-pod work (spread counts, affinity counts) is done once
//! per scheduling attempt in [`Prepared::new`]. It does no I/O.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    NodeSelectorRequirement, NodeSelectorTerm, Pod, PodAffinityTerm, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::cache::{Cache, HostPort, NodeInfo, Resources, pod_requests};

/// The best score a plugin gives a node.
pub const MAX_NODE_SCORE: i64 = 100;

/// Whether preemption could make a failing node fit (upstream's Unschedulable) or not
/// (UnschedulableAndUnresolvable).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    Unschedulable,
    Unresolvable,
}

/// Why a node does not fit.
#[derive(Clone, Debug)]
pub struct Failure {
    pub code: Code,
    pub reasons: Vec<String>,
}

impl Failure {
    fn one(code: Code, reason: &str) -> Failure {
        Failure {
            code,
            reasons: vec![reason.to_owned()],
        }
    }
}

pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
pub const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
pub const REASON_TAINTS: &str = "node(s) had untolerated taint(s)";
pub const REASON_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
pub const REASON_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
pub const REASON_SPREAD: &str = "node(s) didn't match pod topology spread constraints";
pub const REASON_SPREAD_LABEL: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";
pub const REASON_EXISTING_ANTI_AFFINITY: &str = "node(s) didn't satisfy existing pods anti-affinity rules";
pub const REASON_POD_AFFINITY: &str = "node(s) didn't match pod affinity rules";
pub const REASON_POD_ANTI_AFFINITY: &str = "node(s) didn't match pod anti-affinity rules";

/// Whether `labels` satisfy a label selector (a null selector matches nothing, an empty one
/// everything).
pub fn selector_matches(selector: Option<&LabelSelector>, labels: Option<&BTreeMap<String, String>>) -> bool {
    let Some(selector) = selector else { return false };
    let get = |key: &str| labels.and_then(|l| l.get(key));
    for (key, value) in selector.match_labels.iter().flatten() {
        if get(key) != Some(value) {
            return false;
        }
    }
    for requirement in selector.match_expressions.iter().flatten() {
        let values = requirement.values.as_deref().unwrap_or(&[]);
        let value = get(&requirement.key);
        let ok = match requirement.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

fn requirement_matches(requirement: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = requirement.values.as_deref().unwrap_or(&[]);
    match requirement.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(actual), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|v| v.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if requirement.operator == "Gt" {
                actual > bound
            } else {
                actual < bound
            }
        }
        _ => false,
    }
}

/// Whether the node matches a node selector term (a term without requirements matches none).
fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo, name: &str) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions
        .iter()
        .all(|r| requirement_matches(r, node.label(&r.key)))
        && fields.iter().all(|r| {
            let value = (r.key == "metadata.name").then_some(name);
            requirement_matches(r, value)
        })
}

/// Whether the node satisfies the pod's nodeSelector and required node affinity.
pub fn node_affinity_matches(pod: &Pod, node: &NodeInfo, name: &str) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    for (key, value) in spec.node_selector.iter().flatten() {
        if node.label(key) != Some(value.as_str()) {
            return false;
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref());
    match required {
        Some(selector) => selector
            .node_selector_terms
            .iter()
            .any(|term| term_matches(term, node, name)),
        None => true,
    }
}

/// Upstream's `Toleration.ToleratesTaint`.
pub(crate) fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref()
        && !effect.is_empty()
        && effect != taint.effect
    {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" => toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
}

/// The namespaces a pod affinity term selects, relative to the pod that has it.
fn term_namespace_matches(term: &PodAffinityTerm, owner_namespace: &str, namespace: &str) -> bool {
    let listed = term.namespaces.as_deref().unwrap_or(&[]);
    if !listed.is_empty() {
        return listed.iter().any(|n| n == namespace)
            || term
                .namespace_selector
                .as_ref()
                .is_some_and(|s| s.match_labels.is_none() && s.match_expressions.is_none());
    }
    match &term.namespace_selector {
        // An empty selector selects every namespace; other selectors need namespace labels,
        // which the scheduler does not watch: they select the pod's own namespace.
        Some(selector) if selector.match_labels.is_none() && selector.match_expressions.is_none() => true,
        _ => namespace == owner_namespace,
    }
}

fn term_matches_pod(term: &PodAffinityTerm, owner_namespace: &str, pod: &Pod) -> bool {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
    term_namespace_matches(term, owner_namespace, namespace)
        && selector_matches(term.label_selector.as_ref(), pod.metadata.labels.as_ref())
}

/// A topology spread constraint with its counts per domain.
struct Spread {
    key: String,
    max_skew: i64,
    selector: Option<LabelSelector>,
    self_match: i64,
    counts: HashMap<String, i64>,
    min: i64,
    /// Scoring weight (soft constraints).
    weight: f64,
}

/// Counts per (topology value) of pods matching one pod affinity term.
struct TermCounts {
    key: String,
    counts: HashMap<String, i64>,
    weight: i64,
}

/// What one scheduling attempt of a pod precomputes.
pub struct Prepared<'a> {
    pub pod: &'a Pod,
    pub requests: Resources,
    pub non_zero: Resources,
    pub ports: Vec<HostPort>,
    hard_spread: Vec<Spread>,
    soft_spread: Vec<Spread>,
    existing_anti: HashMap<(String, String), i64>,
    affinity: Vec<TermCounts>,
    affinity_self_ok: bool,
    anti_affinity: Vec<TermCounts>,
    preferred: Vec<TermCounts>,
}

fn node_has_spread_keys(node: &NodeInfo, constraints: &[Spread]) -> bool {
    constraints.iter().all(|c| node.label(&c.key).is_some())
}

fn spread_constraints(pod: &Pod, cache: &Cache, hard: bool) -> Vec<Spread> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
    let wanted = if hard { "DoNotSchedule" } else { "ScheduleAnyway" };
    let mut out: Vec<Spread> = pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.when_unsatisfiable == wanted)
        .map(|c| {
            let mut selector = c.label_selector.clone();
            if let Some(selector) = selector.as_mut() {
                for key in c.match_label_keys.iter().flatten() {
                    if let Some(value) = pod.metadata.labels.as_ref().and_then(|l| l.get(key)) {
                        selector
                            .match_labels
                            .get_or_insert_with(Default::default)
                            .insert(key.clone(), value.clone());
                    }
                }
            }
            let self_match = i64::from(selector_matches(selector.as_ref(), pod.metadata.labels.as_ref()));
            Spread {
                key: c.topology_key.clone(),
                max_skew: i64::from(c.max_skew),
                selector,
                self_match,
                counts: HashMap::new(),
                min: 0,
                weight: 0.0,
            }
        })
        .collect();
    if out.is_empty() {
        return out;
    }
    let min_domains: Vec<i64> = pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.when_unsatisfiable == wanted)
        .map(|c| i64::from(c.min_domains.unwrap_or(1)))
        .collect();
    for name in &cache.order {
        let Some(node) = cache.nodes.get(name) else {
            continue;
        };
        if !node_affinity_matches(pod, node, name) || !node_has_spread_keys(node, &out) {
            continue;
        }
        for constraint in &mut out {
            let value = node.label(&constraint.key).unwrap_or("").to_owned();
            let matching = node
                .pods
                .values()
                .filter(|p| {
                    p.namespace() == namespace
                        && p.pod.metadata.deletion_timestamp.is_none()
                        && selector_matches(constraint.selector.as_ref(), p.labels())
                })
                .count() as i64;
            *constraint.counts.entry(value).or_insert(0) += matching;
        }
    }
    for (constraint, min_domains) in out.iter_mut().zip(min_domains) {
        let domains = constraint.counts.len() as i64;
        constraint.min = if domains < min_domains {
            0
        } else {
            constraint.counts.values().copied().min().unwrap_or(0)
        };
        constraint.weight = ((domains + 2) as f64).ln();
    }
    out
}

fn affinity_terms(pod: &Pod, anti: bool) -> (Vec<PodAffinityTerm>, Vec<(i32, PodAffinityTerm)>) {
    let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
    if anti {
        let anti = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        (
            anti.and_then(|a| a.required_during_scheduling_ignored_during_execution.clone())
                .unwrap_or_default(),
            anti.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())
                .into_iter()
                .flatten()
                .map(|w| (w.weight, w.pod_affinity_term.clone()))
                .collect(),
        )
    } else {
        let aff = affinity.and_then(|a| a.pod_affinity.as_ref());
        (
            aff.and_then(|a| a.required_during_scheduling_ignored_during_execution.clone())
                .unwrap_or_default(),
            aff.and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_ref())
                .into_iter()
                .flatten()
                .map(|w| (w.weight, w.pod_affinity_term.clone()))
                .collect(),
        )
    }
}

fn count_term(term: &PodAffinityTerm, namespace: &str, cache: &Cache, weight: i64) -> TermCounts {
    let mut counts = HashMap::new();
    for info in cache.pods.values() {
        if !term_matches_pod(term, namespace, &info.pod) {
            continue;
        }
        if let Some(value) = cache
            .nodes
            .get(&info.node)
            .and_then(|n| n.label(&term.topology_key))
        {
            *counts.entry(value.to_owned()).or_insert(0) += 1;
        }
    }
    TermCounts {
        key: term.topology_key.clone(),
        counts,
        weight,
    }
}

impl<'a> Prepared<'a> {
    pub fn new(pod: &'a Pod, cache: &Cache) -> Prepared<'a> {
        let (requests, non_zero) = pod_requests(pod);
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
        let mut existing_anti = HashMap::new();
        for key in &cache.anti_affinity_pods {
            let Some(existing) = cache.pods.get(key) else {
                continue;
            };
            let Some(node) = cache.nodes.get(&existing.node) else {
                continue;
            };
            let (required, _) = affinity_terms(&existing.pod, true);
            for term in &required {
                if term_matches_pod(term, existing.namespace(), pod)
                    && let Some(value) = node.label(&term.topology_key)
                {
                    *existing_anti
                        .entry((term.topology_key.clone(), value.to_owned()))
                        .or_insert(0) += 1;
                }
            }
        }
        let (required_affinity, preferred_affinity) = affinity_terms(pod, false);
        let (required_anti, preferred_anti) = affinity_terms(pod, true);
        let affinity: Vec<TermCounts> = required_affinity
            .iter()
            .map(|t| count_term(t, namespace, cache, 1))
            .collect();
        // The first pod of a group that selects itself may go anywhere.
        let affinity_self_ok = affinity.iter().all(|t| t.counts.is_empty())
            && required_affinity
                .iter()
                .all(|t| term_matches_pod(t, namespace, pod));
        let anti_affinity = required_anti
            .iter()
            .map(|t| count_term(t, namespace, cache, 1))
            .collect();
        let preferred = preferred_affinity
            .iter()
            .map(|(w, t)| count_term(t, namespace, cache, i64::from(*w)))
            .chain(
                preferred_anti
                    .iter()
                    .map(|(w, t)| count_term(t, namespace, cache, -i64::from(*w))),
            )
            .collect();
        Prepared {
            pod,
            ports: super::cache::host_ports(pod),
            requests,
            non_zero,
            hard_spread: spread_constraints(pod, cache, true),
            soft_spread: spread_constraints(pod, cache, false),
            existing_anti,
            affinity,
            affinity_self_ok,
            anti_affinity,
            preferred,
        }
    }

    /// Runs the filters in upstream's order; the first failing one decides.
    pub fn filter(&self, name: &str, node: &NodeInfo) -> Result<(), Failure> {
        let tolerations = tolerations(self.pod);
        if node.unschedulable() {
            let taint = Taint {
                key: "node.kubernetes.io/unschedulable".to_owned(),
                effect: "NoSchedule".to_owned(),
                ..Taint::default()
            };
            if !tolerations.iter().any(|t| tolerates(t, &taint)) {
                return Err(Failure::one(Code::Unresolvable, REASON_UNSCHEDULABLE));
            }
        }
        if let Some(wanted) = self.pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
            && !wanted.is_empty()
            && wanted != name
        {
            return Err(Failure::one(Code::Unresolvable, REASON_NODE_NAME));
        }
        let untolerated = node
            .taints()
            .iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .any(|taint| !tolerations.iter().any(|t| tolerates(t, taint)));
        if untolerated {
            return Err(Failure::one(Code::Unresolvable, REASON_TAINTS));
        }
        if !node_affinity_matches(self.pod, node, name) {
            return Err(Failure::one(Code::Unresolvable, REASON_AFFINITY));
        }
        if self.ports_conflict(node) {
            return Err(Failure::one(Code::Unschedulable, REASON_PORTS));
        }
        self.fits(node)?;
        self.spread_fits(node)?;
        self.inter_pod_fits(node)
    }

    fn ports_conflict(&self, node: &NodeInfo) -> bool {
        self.ports.iter().any(|(protocol, ip, port)| {
            node.ports.keys().any(|(p, used_ip, used)| {
                p == protocol && used == port && (used_ip == ip || used_ip == "0.0.0.0" || ip == "0.0.0.0")
            })
        })
    }

    fn fits(&self, node: &NodeInfo) -> Result<(), Failure> {
        let mut reasons = Vec::new();
        if node.pods.len() as i64 + 1 > node.allocatable.pods {
            reasons.push("Too many pods".to_owned());
        }
        let wanted = &self.requests;
        if !wanted.is_zero() {
            let (have, used) = (&node.allocatable, &node.requested);
            if wanted.milli_cpu > 0 && have.milli_cpu - used.milli_cpu < wanted.milli_cpu {
                reasons.push("Insufficient cpu".to_owned());
            }
            if wanted.memory > 0 && have.memory - used.memory < wanted.memory {
                reasons.push("Insufficient memory".to_owned());
            }
            if wanted.ephemeral_storage > 0
                && have.ephemeral_storage - used.ephemeral_storage < wanted.ephemeral_storage
            {
                reasons.push("Insufficient ephemeral-storage".to_owned());
            }
            for (resource, amount) in &wanted.scalar {
                let free = have.scalar.get(resource).copied().unwrap_or(0)
                    - used.scalar.get(resource).copied().unwrap_or(0);
                if *amount > 0 && free < *amount {
                    reasons.push(format!("Insufficient {resource}"));
                }
            }
        }
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(Failure {
                code: Code::Unschedulable,
                reasons,
            })
        }
    }

    fn spread_fits(&self, node: &NodeInfo) -> Result<(), Failure> {
        for constraint in &self.hard_spread {
            let Some(value) = node.label(&constraint.key) else {
                return Err(Failure::one(Code::Unresolvable, REASON_SPREAD_LABEL));
            };
            let count = constraint.counts.get(value).copied().unwrap_or(0);
            if count + constraint.self_match - constraint.min > constraint.max_skew {
                return Err(Failure::one(Code::Unschedulable, REASON_SPREAD));
            }
        }
        Ok(())
    }

    fn inter_pod_fits(&self, node: &NodeInfo) -> Result<(), Failure> {
        if !self.affinity_self_ok {
            for term in &self.affinity {
                let present = node
                    .label(&term.key)
                    .is_some_and(|value| term.counts.get(value).copied().unwrap_or(0) > 0);
                if !present {
                    return Err(Failure::one(Code::Unresolvable, REASON_POD_AFFINITY));
                }
            }
        }
        for term in &self.anti_affinity {
            if node
                .label(&term.key)
                .is_some_and(|value| term.counts.get(value).copied().unwrap_or(0) > 0)
            {
                return Err(Failure::one(Code::Unschedulable, REASON_POD_ANTI_AFFINITY));
            }
        }
        if !self.existing_anti.is_empty()
            && self
                .existing_anti
                .keys()
                .any(|(key, value)| node.label(key) == Some(value.as_str()))
        {
            return Err(Failure::one(Code::Unschedulable, REASON_EXISTING_ANTI_AFFINITY));
        }
        Ok(())
    }

    /// Scores the feasible nodes (weights of upstream's default profile) and returns the
    /// total per node, in the order given.
    pub fn score(&self, nodes: &[(&str, &NodeInfo)]) -> Vec<i64> {
        let mut totals = vec![0i64; nodes.len()];
        let mut affinity = Vec::with_capacity(nodes.len());
        let mut taints = Vec::with_capacity(nodes.len());
        let mut spread = Vec::with_capacity(nodes.len());
        let mut inter = Vec::with_capacity(nodes.len());
        let preferred_node_terms = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|a| a.preferred_during_scheduling_ignored_during_execution.as_deref())
            .unwrap_or(&[]);
        let prefer_tolerations: Vec<&Toleration> = tolerations(self.pod)
            .iter()
            .filter(|t| {
                t.effect
                    .as_deref()
                    .is_none_or(|e| e.is_empty() || e == "PreferNoSchedule")
            })
            .collect();
        for (i, (name, node)) in nodes.iter().enumerate() {
            // NodeResourcesFit (LeastAllocated) and BalancedAllocation, weight 1 each.
            let cpu_requested = node.non_zero_requested.milli_cpu + self.non_zero.milli_cpu;
            let mem_requested = node.non_zero_requested.memory + self.non_zero.memory;
            let pairs = [
                (cpu_requested, node.allocatable.milli_cpu),
                (mem_requested, node.allocatable.memory),
            ];
            let mut least = 0;
            let mut weights = 0;
            let mut fractions = Vec::with_capacity(2);
            for (requested, allocatable) in pairs {
                if allocatable == 0 {
                    continue;
                }
                least += if requested > allocatable {
                    0
                } else {
                    (allocatable - requested) * MAX_NODE_SCORE / allocatable
                };
                weights += 1;
                fractions.push((requested as f64 / allocatable as f64).min(1.0));
            }
            if weights > 0 {
                totals[i] += least / weights;
            }
            let std = match fractions.as_slice() {
                [a, b] => ((a - b) / 2.0).abs(),
                _ => 0.0,
            };
            totals[i] += ((1.0 - std) * MAX_NODE_SCORE as f64) as i64;
            affinity.push(
                preferred_node_terms
                    .iter()
                    .filter(|t| term_matches(&t.preference, node, name))
                    .map(|t| i64::from(t.weight))
                    .sum::<i64>(),
            );
            taints.push(
                node.taints()
                    .iter()
                    .filter(|t| t.effect == "PreferNoSchedule")
                    .filter(|taint| !prefer_tolerations.iter().any(|t| tolerates(t, taint)))
                    .count() as i64,
            );
            spread.push(
                self.soft_spread
                    .iter()
                    .map(|c| {
                        let count = node
                            .label(&c.key)
                            .map_or(0, |v| c.counts.get(v).copied().unwrap_or(0));
                        (count as f64 + (c.max_skew - 1) as f64) * c.weight
                    })
                    .sum::<f64>()
                    .round() as i64,
            );
            inter.push(
                self.preferred
                    .iter()
                    .map(|t| {
                        node.label(&t.key)
                            .map_or(0, |v| t.counts.get(v).copied().unwrap_or(0) * t.weight)
                    })
                    .sum::<i64>(),
            );
        }
        // NodeAffinity (weight 2): scaled to the best node.
        let max = affinity.iter().copied().max().unwrap_or(0);
        if max > 0 {
            for (total, score) in totals.iter_mut().zip(&affinity) {
                *total += 2 * (score * MAX_NODE_SCORE / max);
            }
        }
        // TaintToleration (weight 3): fewer intolerable PreferNoSchedule taints is better.
        let max = taints.iter().copied().max().unwrap_or(0);
        for (total, score) in totals.iter_mut().zip(&taints) {
            let normalized = if max > 0 {
                MAX_NODE_SCORE - score * MAX_NODE_SCORE / max
            } else {
                MAX_NODE_SCORE
            };
            *total += 3 * normalized;
        }
        // PodTopologySpread (weight 2): fewer matching pods in the domain is better.
        if !self.soft_spread.is_empty() {
            let max = spread.iter().copied().max().unwrap_or(0);
            let min = spread.iter().copied().min().unwrap_or(0);
            for (total, score) in totals.iter_mut().zip(&spread) {
                let normalized = if max == 0 {
                    MAX_NODE_SCORE
                } else {
                    MAX_NODE_SCORE * (max + min - score) / max
                };
                *total += 2 * normalized;
            }
        }
        // InterPodAffinity (weight 2): min-max normalized.
        if !self.preferred.is_empty() {
            let max = inter.iter().copied().max().unwrap_or(0);
            let min = inter.iter().copied().min().unwrap_or(0);
            if max > min {
                for (total, score) in totals.iter_mut().zip(&inter) {
                    *total += 2 * (MAX_NODE_SCORE * (score - min) / (max - min));
                }
            }
        }
        totals
    }
}

#[cfg(test)]
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}}, "spec": spec})).unwrap()
    }

    fn cache_with(nodes: &[serde_json::Value]) -> Cache {
        let mut cache = Cache::default();
        for node in nodes {
            cache.set_node(serde_json::from_value(node.clone()).unwrap());
        }
        cache
    }

    fn node(name: &str, labels: serde_json::Value, spec: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": spec,
               "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"}}})
    }

    #[test]
    fn selectors_and_tolerations() {
        let selector: LabelSelector = serde_json::from_value(
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}),
        )
        .unwrap();
        let labels: BTreeMap<String, String> = [("app".to_owned(), "web".to_owned())].into();
        assert!(selector_matches(Some(&selector), Some(&labels)));
        assert!(!selector_matches(None, Some(&labels)));
        assert!(selector_matches(Some(&LabelSelector::default()), None));
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            time_added: None,
        };
        let exists: Toleration = serde_json::from_value(json!({"operator": "Exists"})).unwrap();
        let wrong: Toleration = serde_json::from_value(json!({"key": "k", "value": "x"})).unwrap();
        assert!(tolerates(&exists, &taint));
        assert!(!tolerates(&wrong, &taint));
    }

    #[test]
    fn filters_give_upstream_reasons() {
        let cache = cache_with(&[
            node(
                "a",
                json!({"zone": "z1"}),
                json!({"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}),
            ),
            node("b", json!({"zone": "z2"}), json!({"unschedulable": true})),
            node("c", json!({"zone": "z3"}), json!({})),
        ]);
        let big = pod(
            json!({"containers": [{"name": "c", "resources": {"requests": {"cpu": "3", "memory": "1Gi"}}}]}),
        );
        let prepared = Prepared::new(&big, &cache);
        let result = |name: &str| prepared.filter(name, &cache.nodes[name]).err().map(|f| f.reasons);
        assert_eq!(result("a"), Some(vec![REASON_TAINTS.to_owned()]));
        assert_eq!(result("b"), Some(vec![REASON_UNSCHEDULABLE.to_owned()]));
        assert_eq!(result("c"), Some(vec!["Insufficient cpu".to_owned()]));
        let picky = pod(json!({"containers": [{"name": "c"}], "nodeSelector": {"zone": "z9"}}));
        let prepared = Prepared::new(&picky, &cache);
        assert_eq!(
            prepared.filter("c", &cache.nodes["c"]).err().map(|f| f.reasons),
            Some(vec![REASON_AFFINITY.to_owned()])
        );
    }

    #[test]
    fn anti_affinity_and_spread() {
        let mut cache = cache_with(&[
            node("a", json!({"kubernetes.io/hostname": "a"}), json!({})),
            node("b", json!({"kubernetes.io/hostname": "b"}), json!({})),
        ]);
        let existing = pod(json!({"containers": [{"name": "c"}]}));
        cache.add_pod("default/x".into(), std::sync::Arc::new(existing), "a".into());
        let anti = pod(
            json!({"containers": [{"name": "c"}], "affinity": {"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}}),
        );
        let prepared = Prepared::new(&anti, &cache);
        assert_eq!(
            prepared.filter("a", &cache.nodes["a"]).err().map(|f| f.reasons),
            Some(vec![REASON_POD_ANTI_AFFINITY.to_owned()])
        );
        assert!(prepared.filter("b", &cache.nodes["b"]).is_ok());
        let spread = pod(
            json!({"containers": [{"name": "c"}], "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": {"app": "web"}}}]}),
        );
        cache.add_pod(
            "default/y".into(),
            std::sync::Arc::new(pod(json!({"containers": [{"name": "c"}]}))),
            "a".into(),
        );
        let prepared = Prepared::new(&spread, &cache);
        assert_eq!(
            prepared.filter("a", &cache.nodes["a"]).err().map(|f| f.reasons),
            Some(vec![REASON_SPREAD.to_owned()])
        );
        assert!(prepared.filter("b", &cache.nodes["b"]).is_ok());
    }
}
