//! The default scheduling profile's filters and scores, over the cache: NodeUnschedulable,
//! NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread and
//! InterPodAffinity filters (in upstream's order, with its reasons), and the LeastAllocated,
//! BalancedAllocation, NodeAffinity, TaintToleration, PodTopologySpread and InterPodAffinity
//! scores with upstream's weights. Per-pod work (spread counts, affinity counts) is done once
//! per scheduling attempt in [`Prepared::new`]. It does no I/O.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    NodeSelectorRequirement, NodeSelectorTerm, Pod, PodAffinityTerm, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::cache::{Cache, HostPort, NodeInfo, PodInfo, Resources, pod_requests};
use super::image_locality;
use super::listers::Listers;

/// The best score a plugin gives a node.
pub const MAX_NODE_SCORE: i64 = 100;

/// Score weights of upstream's default profile (apis/config/v1 `getDefaultPlugins`);
/// NodeResourcesFit, NodeResourcesBalancedAllocation and ImageLocality weigh 1.
const WEIGHT_TAINT_TOLERATION: i64 = 3;
const WEIGHT_NODE_AFFINITY: i64 = 2;
const WEIGHT_POD_TOPOLOGY_SPREAD: i64 = 2;
const WEIGHT_INTER_POD_AFFINITY: i64 = 2;

const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
const LABEL_ZONE: &str = "topology.kubernetes.io/zone";

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

/// Whether a node, seen through its labels and name, matches a node selector term (a term
/// without requirements matches none).
pub(crate) fn node_term_matches<'a>(
    term: &NodeSelectorTerm,
    label: impl Fn(&str) -> Option<&'a str>,
    name: &str,
) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions.iter().all(|r| requirement_matches(r, label(&r.key)))
        && fields.iter().all(|r| {
            let value = (r.key == "metadata.name").then_some(name);
            requirement_matches(r, value)
        })
}

fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo, name: &str) -> bool {
    node_term_matches(term, |key| node.label(key), name)
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

/// Whether the node has a NoSchedule or NoExecute taint the tolerations do not tolerate.
fn untolerated(node: &NodeInfo, tolerations: &[Toleration]) -> bool {
    node.taints()
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .any(|taint| !tolerations.iter().any(|t| tolerates(t, taint)))
}

/// The namespaces a pod affinity term of the incoming pod selects, resolved once per
/// attempt as upstream's PreFilter does: the listed ones, those the `namespaceSelector`
/// selects (an empty one selects every namespace), or, with neither, the pod's own.
struct TermNamespaces {
    all: bool,
    names: HashSet<String>,
}

impl TermNamespaces {
    fn resolve(term: &PodAffinityTerm, owner_namespace: &str, listers: &Listers) -> TermNamespaces {
        let mut names: HashSet<String> = term.namespaces.iter().flatten().cloned().collect();
        let mut all = false;
        match &term.namespace_selector {
            None if names.is_empty() => {
                names.insert(owner_namespace.to_owned());
            }
            None => {}
            Some(selector) if selector_is_empty(selector) => all = true,
            Some(selector) => {
                for namespace in listers
                    .namespaces
                    .state_filter(|n| selector_matches(Some(selector), n.metadata.labels.as_ref()))
                {
                    names.extend(namespace.metadata.name.clone());
                }
            }
        }
        TermNamespaces { all, names }
    }

    fn contains(&self, namespace: &str) -> bool {
        self.all || self.names.contains(namespace)
    }
}

/// Whether a label selector has no requirements (it selects everything).
fn selector_is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && selector.match_expressions.as_ref().is_none_or(Vec::is_empty)
}

/// Whether an existing pod's affinity term (the pod in `owner_namespace`) selects the
/// incoming pod, whose namespace has `namespace_labels`.
fn existing_term_selects(
    term: &PodAffinityTerm,
    owner_namespace: &str,
    pod: &Pod,
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
    let listed = term.namespaces.as_deref().unwrap_or(&[]);
    let namespace_ok = if listed.is_empty() && term.namespace_selector.is_none() {
        namespace == owner_namespace
    } else {
        listed.iter().any(|n| n == namespace)
            || term
                .namespace_selector
                .as_ref()
                .is_some_and(|s| selector_matches(Some(s), namespace_labels))
    };
    namespace_ok && selector_matches(term.label_selector.as_ref(), pod.metadata.labels.as_ref())
}

/// A topology spread constraint as the plugin applies it (upstream's
/// `topologySpreadConstraint`).
#[derive(Clone, Debug)]
struct Constraint {
    key: String,
    max_skew: i64,
    selector: Option<LabelSelector>,
    min_domains: i64,
    /// nodeAffinityPolicy Honor (the default): only nodes matching the pod's node affinity count.
    honor_affinity: bool,
    /// nodeTaintsPolicy Honor (default Ignore): only nodes whose taints the pod tolerates count.
    honor_taints: bool,
}

impl Constraint {
    /// Upstream's `matchNodeInclusionPolicies`.
    fn includes(&self, pod: &Pod, node: &NodeInfo, name: &str) -> bool {
        (!self.honor_affinity || node_affinity_matches(pod, node, name))
            && (!self.honor_taints || !untolerated(node, tolerations(pod)))
    }

    /// Upstream's `countPodsMatchSelector`: live pods of the namespace the selector matches
    /// (an empty selector counts none).
    fn count<'p>(&self, pods: impl Iterator<Item = &'p Arc<PodInfo>>, namespace: &str) -> i64 {
        if self.selector.as_ref().is_some_and(selector_is_empty) {
            return 0;
        }
        pods.filter(|p| {
            p.namespace() == namespace
                && p.pod.metadata.deletion_timestamp.is_none()
                && selector_matches(self.selector.as_ref(), p.labels())
        })
        .count() as i64
    }
}

/// The pod's own constraints with `whenUnsatisfiable` = `action`, `matchLabelKeys` merged
/// into their selectors.
fn pod_constraints(pod: &Pod, action: &str) -> Vec<Constraint> {
    pod.spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| c.when_unsatisfiable == action)
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
            Constraint {
                key: c.topology_key.clone(),
                max_skew: i64::from(c.max_skew),
                selector,
                min_domains: i64::from(c.min_domains.unwrap_or(1)),
                honor_affinity: c.node_affinity_policy.as_deref() != Some("Ignore"),
                honor_taints: c.node_taints_policy.as_deref() == Some("Honor"),
            }
        })
        .collect()
}

/// The system default constraints (upstream's `defaultingType: System`), for pods without
/// constraints of their own: ScheduleAnyway, maxSkew 3 per node and 5 per zone, over the
/// selector of the pod's Services and controller. Scoring only.
fn default_constraints(pod: &Pod, listers: &Listers) -> Vec<Constraint> {
    let has_own = pod
        .spec
        .as_ref()
        .and_then(|s| s.topology_spread_constraints.as_ref())
        .is_some_and(|c| !c.is_empty());
    if has_own {
        return Vec::new();
    }
    let Some(selector) = listers.default_selector(pod) else {
        return Vec::new();
    };
    [(LABEL_HOSTNAME, 3), (LABEL_ZONE, 5)]
        .into_iter()
        .map(|(key, max_skew)| Constraint {
            key: key.to_owned(),
            max_skew,
            selector: Some(selector.clone()),
            min_domains: 1,
            honor_affinity: true,
            honor_taints: false,
        })
        .collect()
}

/// A hard topology spread constraint with the matching pods counted per domain.
struct Spread {
    constraint: Constraint,
    self_match: i64,
    counts: HashMap<String, i64>,
    min: i64,
}

impl Spread {
    /// The smallest count over the domains with `value`'s count raised by `extra`
    /// (upstream's critical paths after `AddPod`).
    fn min_with(&self, value: &str, extra: i64) -> i64 {
        if extra == 0 || (self.counts.len() as i64) < self.constraint.min_domains {
            return self.min;
        }
        let mut counts = self.counts.clone();
        *counts.entry(value.to_owned()).or_insert(0) += extra;
        counts.values().copied().min().unwrap_or(0)
    }
}

/// Counts per (topology value) of pods matching one pod affinity term.
struct TermCounts {
    term: PodAffinityTerm,
    namespaces: TermNamespaces,
    counts: HashMap<String, i64>,
    weight: i64,
}

impl TermCounts {
    fn matches(&self, pod: &Pod) -> bool {
        self.namespaces
            .contains(pod.metadata.namespace.as_deref().unwrap_or(""))
            && selector_matches(self.term.label_selector.as_ref(), pod.metadata.labels.as_ref())
    }

    fn count_in(&self, node: &NodeInfo) -> i64 {
        node.label(&self.term.topology_key)
            .map_or(0, |v| self.counts.get(v).copied().unwrap_or(0))
    }
}

/// What one scheduling attempt of a pod precomputes.
pub struct Prepared<'a> {
    pub pod: &'a Pod,
    cache: &'a Cache,
    key: String,
    priority: i32,
    namespace_labels: Option<BTreeMap<String, String>>,
    pub requests: Resources,
    pub non_zero: Resources,
    pub ports: Vec<HostPort>,
    hard_spread: Vec<Spread>,
    soft_spread: Vec<Constraint>,
    system_defaulted: bool,
    existing_anti: HashMap<(String, String), i64>,
    affinity: Vec<TermCounts>,
    affinity_self_ok: bool,
    anti_affinity: Vec<TermCounts>,
    preferred: Vec<TermCounts>,
}

fn node_has_keys(node: &NodeInfo, constraints: &[Constraint]) -> bool {
    constraints.iter().all(|c| node.label(&c.key).is_some())
}

/// Upstream's PodTopologySpread PreFilter: counts of matching pods per domain over every
/// node that has all the keys, for each constraint the nodes its inclusion policies admit.
fn hard_spread(pod: &Pod, cache: &Cache) -> Vec<Spread> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
    let constraints = pod_constraints(pod, "DoNotSchedule");
    if constraints.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<Spread> = constraints
        .into_iter()
        .map(|constraint| Spread {
            self_match: i64::from(selector_matches(
                constraint.selector.as_ref(),
                pod.metadata.labels.as_ref(),
            )),
            constraint,
            counts: HashMap::new(),
            min: 0,
        })
        .collect();
    let all: Vec<Constraint> = out.iter().map(|s| s.constraint.clone()).collect();
    for name in &cache.order {
        let Some(node) = cache.nodes.get(name) else {
            continue;
        };
        if !node_has_keys(node, &all) {
            continue;
        }
        for spread in &mut out {
            if !spread.constraint.includes(pod, node, name) {
                continue;
            }
            let value = node.label(&spread.constraint.key).unwrap_or("").to_owned();
            let matching = spread.constraint.count(node.pods.values(), namespace);
            *spread.counts.entry(value).or_insert(0) += matching;
        }
    }
    for spread in &mut out {
        let domains = spread.counts.len() as i64;
        spread.min = if domains < spread.constraint.min_domains {
            0
        } else {
            spread.counts.values().copied().min().unwrap_or(0)
        };
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
    let mut counts = TermCounts {
        term: term.clone(),
        namespaces: TermNamespaces::resolve(term, namespace, &cache.listers),
        counts: HashMap::new(),
        weight,
    };
    for info in cache.pods.values() {
        if !counts.matches(&info.pod) {
            continue;
        }
        if let Some(value) = cache
            .nodes
            .get(&info.node)
            .and_then(|n| n.label(&term.topology_key))
        {
            *counts.counts.entry(value.to_owned()).or_insert(0) += 1;
        }
    }
    counts
}

/// Counts for the pod's required affinity terms: a placed pod counts only if it matches
/// every term (upstream's `updateWithAffinityTerms`).
fn count_affinity(terms: &[PodAffinityTerm], namespace: &str, cache: &Cache) -> Vec<TermCounts> {
    let mut out: Vec<TermCounts> = terms
        .iter()
        .map(|term| TermCounts {
            term: term.clone(),
            namespaces: TermNamespaces::resolve(term, namespace, &cache.listers),
            counts: HashMap::new(),
            weight: 1,
        })
        .collect();
    if out.is_empty() {
        return out;
    }
    for info in cache.pods.values() {
        if !out.iter().all(|t| t.matches(&info.pod)) {
            continue;
        }
        let Some(node) = cache.nodes.get(&info.node) else {
            continue;
        };
        for term in &mut out {
            if let Some(value) = node.label(&term.term.topology_key) {
                *term.counts.entry(value.to_owned()).or_insert(0) += 1;
            }
        }
    }
    out
}

/// The priority of a pod (0 without one).
pub fn priority_of(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

impl<'a> Prepared<'a> {
    pub fn new(pod: &'a Pod, cache: &'a Cache) -> Prepared<'a> {
        let (requests, non_zero) = pod_requests(pod);
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
        let namespace_labels = cache.listers.namespace_labels(namespace);
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
                if existing_term_selects(term, existing.namespace(), pod, namespace_labels.as_ref())
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
        let affinity = count_affinity(&required_affinity, namespace, cache);
        // The first pod of a group that selects itself may go anywhere.
        let affinity_self_ok =
            affinity.iter().all(|t| t.counts.is_empty()) && affinity.iter().all(|t| t.matches(pod));
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
        let own_soft = pod_constraints(pod, "ScheduleAnyway");
        let has_own = pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .is_some_and(|c| !c.is_empty());
        let (soft_spread, system_defaulted) = if has_own {
            (own_soft, false)
        } else {
            (default_constraints(pod, &cache.listers), true)
        };
        Prepared {
            pod,
            cache,
            key: crate::pods::key(pod),
            priority: priority_of(pod),
            namespace_labels,
            ports: super::cache::host_ports(pod),
            requests,
            non_zero,
            hard_spread: hard_spread(pod, cache),
            soft_spread,
            system_defaulted,
            existing_anti,
            affinity,
            affinity_self_ok,
            anti_affinity,
            preferred,
        }
    }

    /// Runs the filters with the pods nominated to the node that are at least as important
    /// as this one counted in, then, if that passed and there were any, without them
    /// (upstream's `RunFilterPluginsWithNominatedPods`): a preemptor's room is kept for it,
    /// and a pod that needs the nominated pods (affinity) does not count on them.
    pub fn filter(&self, name: &str, node: &NodeInfo) -> Result<(), Failure> {
        let nominated: Vec<&Arc<PodInfo>> = self
            .cache
            .nominated
            .get(name)
            .into_iter()
            .flat_map(|pods| pods.values())
            .filter(|p| p.key != self.key && priority_of(&p.pod) >= self.priority)
            .collect();
        if nominated.is_empty() {
            return self.filter_with(name, node, &[]);
        }
        let mut with = node.clone();
        for pod in &nominated {
            with.add_pod(Arc::clone(pod));
        }
        self.filter_with(name, &with, &nominated)?;
        self.filter_with(name, node, &[])
    }

    /// Runs the filters in upstream's order; the first failing one decides. `extra` are pods
    /// added to the node for this check (already in `node`), which the precomputed spread
    /// and affinity counts do not include.
    fn filter_with(&self, name: &str, node: &NodeInfo, extra: &[&Arc<PodInfo>]) -> Result<(), Failure> {
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
        if untolerated(node, tolerations) {
            return Err(Failure::one(Code::Unresolvable, REASON_TAINTS));
        }
        if !node_affinity_matches(self.pod, node, name) {
            return Err(Failure::one(Code::Unresolvable, REASON_AFFINITY));
        }
        if self.ports_conflict(node) {
            return Err(Failure::one(Code::Unschedulable, REASON_PORTS));
        }
        self.fits(node)?;
        self.spread_fits(name, node, extra)?;
        self.inter_pod_fits(node, extra)
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

    fn spread_fits(&self, name: &str, node: &NodeInfo, extra: &[&Arc<PodInfo>]) -> Result<(), Failure> {
        let namespace = self.pod.metadata.namespace.as_deref().unwrap_or("");
        for spread in &self.hard_spread {
            let constraint = &spread.constraint;
            let Some(value) = node.label(&constraint.key) else {
                return Err(Failure::one(Code::Unresolvable, REASON_SPREAD_LABEL));
            };
            let mut count = spread.counts.get(value).copied().unwrap_or(0);
            let mut min = spread.min;
            if !extra.is_empty() && constraint.includes(self.pod, node, name) {
                let added = extra
                    .iter()
                    .filter(|p| {
                        p.namespace() == namespace
                            && selector_matches(constraint.selector.as_ref(), p.labels())
                    })
                    .count() as i64;
                count += added;
                min = spread.min_with(value, added);
            }
            if count + spread.self_match - min > constraint.max_skew {
                return Err(Failure::one(Code::Unschedulable, REASON_SPREAD));
            }
        }
        Ok(())
    }

    fn inter_pod_fits(&self, node: &NodeInfo, extra: &[&Arc<PodInfo>]) -> Result<(), Failure> {
        if !self.affinity.is_empty() {
            let extra_matching = extra
                .iter()
                .any(|p| self.affinity.iter().all(|t| t.matches(&p.pod)));
            let mut present = true;
            for term in &self.affinity {
                if node.label(&term.term.topology_key).is_none() {
                    return Err(Failure::one(Code::Unresolvable, REASON_POD_AFFINITY));
                }
                if term.count_in(node) <= 0 && !extra_matching {
                    present = false;
                }
            }
            // With no matching pod anywhere, a pod matching its own terms may go first.
            let first_of_group = self.affinity_self_ok && !extra_matching;
            if !present && !first_of_group {
                return Err(Failure::one(Code::Unresolvable, REASON_POD_AFFINITY));
            }
        }
        for term in &self.anti_affinity {
            if node.label(&term.term.topology_key).is_some()
                && (term.count_in(node) > 0 || extra.iter().any(|p| term.matches(&p.pod)))
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
        for pod in extra {
            let (required, _) = affinity_terms(&pod.pod, true);
            if required.iter().any(|term| {
                node.label(&term.topology_key).is_some()
                    && existing_term_selects(term, pod.namespace(), self.pod, self.namespace_labels.as_ref())
            }) {
                return Err(Failure::one(Code::Unschedulable, REASON_EXISTING_ANTI_AFFINITY));
            }
        }
        Ok(())
    }

    /// PodTopologySpread's raw scores (upstream's PreScore and Score): `None` for nodes it
    /// ignores, and nothing at all when the pod has no soft constraints.
    fn spread_scores(&self, nodes: &[(&str, &NodeInfo)]) -> Option<Vec<Option<i64>>> {
        let constraints = &self.soft_spread;
        if constraints.is_empty() || nodes.is_empty() {
            return None;
        }
        let namespace = self.pod.metadata.namespace.as_deref().unwrap_or("");
        let require_all = !self.system_defaulted;
        let ignored: Vec<bool> = nodes
            .iter()
            .map(|(_, node)| require_all && !node_has_keys(node, constraints))
            .collect();
        let considered = ignored.iter().filter(|i| !**i).count();
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
        for ((_, node), ignored) in nodes.iter().zip(&ignored) {
            if *ignored {
                continue;
            }
            for (constraint, counts) in constraints.iter().zip(counts.iter_mut()) {
                if constraint.key != LABEL_HOSTNAME {
                    let value = node.label(&constraint.key).unwrap_or("");
                    counts.entry(value.to_owned()).or_insert(0);
                }
            }
        }
        let weights: Vec<f64> = constraints
            .iter()
            .zip(&counts)
            .map(|(c, counts)| {
                let size = if c.key == LABEL_HOSTNAME {
                    considered
                } else {
                    counts.len()
                };
                ((size + 2) as f64).ln()
            })
            .collect();
        let zoned = constraints.iter().any(|c| c.key != LABEL_HOSTNAME);
        if zoned {
            for name in &self.cache.order {
                let Some(node) = self.cache.nodes.get(name) else {
                    continue;
                };
                if require_all && !node_has_keys(node, constraints) {
                    continue;
                }
                for (constraint, counts) in constraints.iter().zip(counts.iter_mut()) {
                    if constraint.key == LABEL_HOSTNAME || !constraint.includes(self.pod, node, name) {
                        continue;
                    }
                    let value = node.label(&constraint.key).unwrap_or("");
                    if let Some(count) = counts.get_mut(value) {
                        *count += constraint.count(node.pods.values(), namespace);
                    }
                }
            }
        }
        let scores = nodes
            .iter()
            .zip(&ignored)
            .map(|((_, node), ignored)| {
                if *ignored {
                    return None;
                }
                let mut score = 0.0;
                for ((constraint, counts), weight) in constraints.iter().zip(&counts).zip(&weights) {
                    let Some(value) = node.label(&constraint.key) else {
                        continue;
                    };
                    let count = if constraint.key == LABEL_HOSTNAME {
                        constraint.count(node.pods.values(), namespace)
                    } else {
                        counts.get(value).copied().unwrap_or(0)
                    };
                    score += count as f64 * weight + (constraint.max_skew - 1) as f64;
                }
                Some(score.round() as i64)
            })
            .collect();
        Some(scores)
    }

    /// InterPodAffinity's raw scores per topology pair (upstream's PreScore): the pod's
    /// preferred terms over the pods already placed, and the placed pods' required affinity
    /// (weight 1) and preferred terms over the pod. `None` when nothing applies.
    fn affinity_topology_scores(&self) -> Option<HashMap<String, HashMap<String, i64>>> {
        let mut scores: HashMap<String, HashMap<String, i64>> = HashMap::new();
        let mut add = |key: &str, value: &str, amount: i64| {
            *scores
                .entry(key.to_owned())
                .or_default()
                .entry(value.to_owned())
                .or_insert(0) += amount;
        };
        for term in &self.preferred {
            for (value, count) in &term.counts {
                add(&term.term.topology_key, value, count * term.weight);
            }
        }
        for key in &self.cache.affinity_pods {
            let Some(existing) = self.cache.pods.get(key) else {
                continue;
            };
            let Some(node) = self.cache.nodes.get(&existing.node) else {
                continue;
            };
            if node.labels().is_none_or(BTreeMap::is_empty) {
                continue;
            }
            let labels = self.namespace_labels.as_ref();
            let owner = existing.namespace();
            let (required, preferred) = affinity_terms(&existing.pod, false);
            let (_, preferred_anti) = affinity_terms(&existing.pod, true);
            let weighted = required
                .iter()
                .map(|t| (1i64, t))
                .chain(preferred.iter().map(|(w, t)| (i64::from(*w), t)))
                .chain(preferred_anti.iter().map(|(w, t)| (-i64::from(*w), t)));
            for (weight, term) in weighted {
                if existing_term_selects(term, owner, self.pod, labels)
                    && let Some(value) = node.label(&term.topology_key)
                {
                    add(&term.topology_key, value, weight);
                }
            }
        }
        if self.preferred.is_empty() && scores.is_empty() {
            return None;
        }
        Some(scores)
    }

    /// Scores the feasible nodes (weights of upstream's default profile) and returns the
    /// total per node, in the order given.
    pub fn score(&self, nodes: &[(&str, &NodeInfo)]) -> Vec<i64> {
        let mut totals = vec![0i64; nodes.len()];
        let mut affinity = Vec::with_capacity(nodes.len());
        let mut taints = Vec::with_capacity(nodes.len());
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
        let total_nodes = self.cache.order.len();
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
            // ImageLocality, weight 1.
            if let Some(object) = node.node.as_deref() {
                totals[i] += image_locality::score(self.pod, object, &self.cache.images, total_nodes);
            }
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
        }
        // NodeAffinity (weight 2): scaled to the best node.
        let max = affinity.iter().copied().max().unwrap_or(0);
        if max > 0 {
            for (total, score) in totals.iter_mut().zip(&affinity) {
                *total += WEIGHT_NODE_AFFINITY * (score * MAX_NODE_SCORE / max);
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
            *total += WEIGHT_TAINT_TOLERATION * normalized;
        }
        // PodTopologySpread (weight 2): fewer matching pods in the domains is better; nodes
        // it ignores score 0.
        if let Some(spread) = self.spread_scores(nodes) {
            let max = spread.iter().flatten().copied().max().unwrap_or(0);
            let min = spread.iter().flatten().copied().min().unwrap_or(0);
            for (total, score) in totals.iter_mut().zip(&spread) {
                let normalized = match score {
                    None => 0,
                    Some(_) if max == 0 => MAX_NODE_SCORE,
                    Some(score) => MAX_NODE_SCORE * (max + min - score) / max,
                };
                *total += WEIGHT_POD_TOPOLOGY_SPREAD * normalized;
            }
        }
        // InterPodAffinity (weight 2): min-max normalized.
        if let Some(topology) = self.affinity_topology_scores() {
            let inter: Vec<i64> = nodes
                .iter()
                .map(|(_, node)| {
                    topology
                        .iter()
                        .filter_map(|(key, values)| node.label(key).and_then(|v| values.get(v)))
                        .sum()
                })
                .collect();
            let max = inter.iter().copied().max().unwrap_or(0);
            let min = inter.iter().copied().min().unwrap_or(0);
            if max > min {
                for (total, score) in totals.iter_mut().zip(&inter) {
                    let normalized =
                        (MAX_NODE_SCORE as f64 * ((score - min) as f64 / (max - min) as f64)) as i64;
                    *total += WEIGHT_INTER_POD_AFFINITY * normalized;
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
        cache.add_pod("default/x".into(), Arc::new(existing), "a".into());
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
            Arc::new(pod(json!({"containers": [{"name": "c"}]}))),
            "a".into(),
        );
        let prepared = Prepared::new(&spread, &cache);
        assert_eq!(
            prepared.filter("a", &cache.nodes["a"]).err().map(|f| f.reasons),
            Some(vec![REASON_SPREAD.to_owned()])
        );
        assert!(prepared.filter("b", &cache.nodes["b"]).is_ok());
    }

    fn apply<K>(writer: &mut kube::runtime::reflector::store::Writer<K>, value: serde_json::Value)
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + 'static,
        K::DynamicType: Eq + std::hash::Hash + Clone,
    {
        let object: K = serde_json::from_value(value).unwrap();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(object));
    }

    fn hosts(names: &[&str]) -> Cache {
        let nodes: Vec<serde_json::Value> = names
            .iter()
            .map(|n| node(n, json!({"kubernetes.io/hostname": n}), json!({})))
            .collect();
        cache_with(&nodes)
    }

    fn place(cache: &mut Cache, name: &str, node: &str, value: serde_json::Value) {
        let mut pod: Pod = serde_json::from_value(value).unwrap();
        pod.metadata.name = Some(name.to_owned());
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        cache.add_pod(format!("{namespace}/{name}"), Arc::new(pod), node.to_owned());
    }

    fn feasible(cache: &Cache) -> Vec<(&str, &NodeInfo)> {
        cache
            .order
            .iter()
            .map(|n| (n.as_str(), &cache.nodes[n]))
            .collect()
    }

    #[test]
    fn system_default_spread_scores_pods_of_a_replica_set_apart() {
        let (listers, mut writers) = Listers::new();
        apply(
            &mut writers.replica_sets,
            json!({"metadata": {"name": "rs", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}}}),
        );
        let mut cache = hosts(&["a", "b"]);
        cache.listers = listers;
        let owned = json!({"metadata": {"namespace": "default", "labels": {"app": "web"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
                                 "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "c"}]}});
        place(&mut cache, "x", "a", owned.clone());
        place(&mut cache, "y", "a", owned.clone());
        let incoming: Pod = serde_json::from_value(owned.clone()).unwrap();
        let prepared = Prepared::new(&incoming, &cache);
        assert!(prepared.system_defaulted);
        assert_eq!(prepared.soft_spread.len(), 2);
        // Without zones the zone constraint is skipped per node, not the node ignored:
        // a has 2 matching pods, b none; weight ln(2 + 2). Raw: a = round(2 * 1.386 + 2) = 5,
        // b = 2; normalized: a = 100 * (5 + 2 - 5) / 5 = 40, b = 100.
        let spread = prepared.spread_scores(&feasible(&cache)).unwrap();
        assert_eq!(spread, vec![Some(5), Some(2)]);
        let scores = prepared.score(&feasible(&cache));
        assert!(scores[1] > scores[0], "{scores:?}");
        // A pod of nothing has no default constraints; one with its own keeps those only.
        let plain = pod(json!({"containers": [{"name": "c"}]}));
        let prepared = Prepared::new(&plain, &cache);
        assert!(prepared.soft_spread.is_empty());
        assert!(prepared.spread_scores(&feasible(&cache)).is_none());
        let mut own = owned;
        own["spec"]["topologySpreadConstraints"] = json!([{"maxSkew": 1, "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "web"}}}]);
        let own: Pod = serde_json::from_value(own).unwrap();
        let prepared = Prepared::new(&own, &cache);
        assert!(prepared.soft_spread.is_empty());
        assert!(!prepared.system_defaulted);
    }

    #[test]
    fn soft_spread_ignores_nodes_without_the_key_for_the_pods_own_constraints() {
        let mut cache = cache_with(&[
            node("a", json!({"zone": "z1"}), json!({})),
            node("b", json!({"zone": "z2"}), json!({})),
            node("c", json!({}), json!({})),
        ]);
        let web = json!({"metadata": {"namespace": "default", "labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c"}]}});
        place(&mut cache, "x", "a", web);
        let incoming = pod(
            json!({"containers": [{"name": "c"}], "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
             "labelSelector": {"matchLabels": {"app": "web"}}}]}),
        );
        let prepared = Prepared::new(&incoming, &cache);
        // ln(2 + 2) * 1 + 0 = 1.39 -> 1 for z1, 0 for z2; c is ignored.
        assert_eq!(
            prepared.spread_scores(&feasible(&cache)).unwrap(),
            vec![Some(1), Some(0), None]
        );
    }

    #[test]
    fn inclusion_policies_choose_the_nodes_spread_counts() {
        let mut cache = cache_with(&[
            node(
                "a",
                json!({"zone": "z1"}),
                json!({"taints": [{"key": "k", "effect": "NoSchedule"}]}),
            ),
            node("b", json!({"zone": "z2"}), json!({})),
        ]);
        let web = json!({"metadata": {"namespace": "default", "labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c"}]}});
        place(&mut cache, "x", "b", web);
        let spread = |policy: &str| {
            pod(
                json!({"containers": [{"name": "c"}], "topologySpreadConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                 "nodeTaintsPolicy": policy, "labelSelector": {"matchLabels": {"app": "web"}}}]}),
            )
        };
        // Ignore (the default): the tainted zone z1 counts with 0 pods, so b (skew 2) fails.
        let ignore = spread("Ignore");
        let prepared = Prepared::new(&ignore, &cache);
        assert_eq!(
            prepared.filter("b", &cache.nodes["b"]).err().map(|f| f.reasons),
            Some(vec![REASON_SPREAD.to_owned()])
        );
        // Honor: z1 is not a domain, b is the only one and fits.
        let honor = spread("Honor");
        let prepared = Prepared::new(&honor, &cache);
        assert!(prepared.filter("b", &cache.nodes["b"]).is_ok());
        // nodeAffinityPolicy Ignore counts nodes the pod's selector excludes.
        let mut cache = cache_with(&[
            node("a", json!({"zone": "z1", "pool": "x"}), json!({})),
            node("b", json!({"zone": "z2", "pool": "y"}), json!({})),
        ]);
        place(
            &mut cache,
            "x",
            "b",
            json!({"metadata": {"namespace": "default", "labels": {"app": "web"}},
                                           "spec": {"containers": [{"name": "c"}]}}),
        );
        let affinity = |policy: &str| {
            pod(
                json!({"containers": [{"name": "c"}], "nodeSelector": {"pool": "y"},
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
                "whenUnsatisfiable": "DoNotSchedule", "nodeAffinityPolicy": policy,
                "labelSelector": {"matchLabels": {"app": "web"}}}]}),
            )
        };
        let honor = affinity("Honor");
        assert!(
            Prepared::new(&honor, &cache)
                .filter("b", &cache.nodes["b"])
                .is_ok()
        );
        let ignore = affinity("Ignore");
        assert!(
            Prepared::new(&ignore, &cache)
                .filter("b", &cache.nodes["b"])
                .is_err()
        );
    }

    #[test]
    fn namespace_selectors_choose_the_namespaces_of_affinity_terms() {
        let (listers, mut writers) = Listers::new();
        apply(
            &mut writers.namespaces,
            json!({"metadata": {"name": "team-a", "labels": {"team": "a"}}}),
        );
        apply(
            &mut writers.namespaces,
            json!({"metadata": {"name": "team-b", "labels": {"team": "b"}}}),
        );
        let mut cache = hosts(&["a", "b", "c"]);
        cache.listers = listers;
        let web = |ns: &str| json!({"metadata": {"namespace": ns, "labels": {"app": "web"}}, "spec": {"containers": [{"name": "c"}]}});
        place(&mut cache, "x", "a", web("team-a"));
        place(&mut cache, "y", "b", web("team-b"));
        let anti = |namespace_selector: serde_json::Value| {
            let mut term = json!({"labelSelector": {"matchLabels": {"app": "web"}},
                                  "topologyKey": "kubernetes.io/hostname"});
            if !namespace_selector.is_null() {
                term["namespaceSelector"] = namespace_selector;
            }
            pod(json!({"containers": [{"name": "c"}],
                "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}}))
        };
        let fits = |pod: &Pod| -> Vec<bool> {
            let prepared = Prepared::new(pod, &cache);
            ["a", "b", "c"]
                .iter()
                .map(|n| prepared.filter(n, &cache.nodes[*n]).is_ok())
                .collect()
        };
        // No selector: only the pod's own namespace (default), where there is no web pod.
        assert_eq!(fits(&anti(serde_json::Value::Null)), [true, true, true]);
        // An empty selector: every namespace.
        assert_eq!(fits(&anti(json!({}))), [false, false, true]);
        // A selector: the namespaces whose labels match.
        assert_eq!(
            fits(&anti(json!({"matchLabels": {"team": "b"}}))),
            [true, false, true]
        );
        // Existing pods' terms are matched against the incoming pod's namespace labels.
        let mut cache2 = hosts(&["a", "b"]);
        cache2.listers = cache.listers.clone();
        place(
            &mut cache2,
            "guard",
            "a",
            json!({"metadata": {"namespace": "team-b", "labels": {"app": "guard"}},
            "spec": {"containers": [{"name": "c"}], "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "web"}},
                "namespaceSelector": {"matchLabels": {"team": "a"}}, "topologyKey": "kubernetes.io/hostname"}]}}}}),
        );
        let from_a: Pod = serde_json::from_value(web("team-a")).unwrap();
        let prepared = Prepared::new(&from_a, &cache2);
        assert_eq!(
            prepared.filter("a", &cache2.nodes["a"]).err().map(|f| f.reasons),
            Some(vec![REASON_EXISTING_ANTI_AFFINITY.to_owned()])
        );
        let from_b: Pod = serde_json::from_value(web("team-b")).unwrap();
        assert!(
            Prepared::new(&from_b, &cache2)
                .filter("a", &cache2.nodes["a"])
                .is_ok()
        );
    }

    #[test]
    fn nominated_pods_of_equal_or_higher_priority_keep_their_room() {
        let mut cache = hosts(&["a"]);
        let sized = |priority: i32, cpu: &str| -> Pod {
            serde_json::from_value(json!({"metadata": {"name": format!("p{priority}"), "namespace": "default",
                "labels": {"app": "web"}},
                "spec": {"priority": priority, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}}))
            .unwrap()
        };
        let preemptor = Arc::new(sized(100, "1500m"));
        cache.nominate("default/p100", &preemptor, Some("a"));
        // A lower-priority pod may not take the nominated room (2 CPUs, 1.5 nominated).
        let low = sized(10, "1");
        assert_eq!(
            Prepared::new(&low, &cache)
                .filter("a", &cache.nodes["a"])
                .err()
                .map(|f| f.reasons),
            Some(vec!["Insufficient cpu".to_owned()])
        );
        // A small one still fits beside it.
        let small = sized(10, "500m");
        assert!(
            Prepared::new(&small, &cache)
                .filter("a", &cache.nodes["a"])
                .is_ok()
        );
        // A more important pod ignores the nomination, and so does the preemptor itself.
        let high = sized(1000, "1");
        assert!(
            Prepared::new(&high, &cache)
                .filter("a", &cache.nodes["a"])
                .is_ok()
        );
        assert!(
            Prepared::new(&preemptor, &cache)
                .filter("a", &cache.nodes["a"])
                .is_ok()
        );
        // Required affinity to the nominated pod alone does not pass (the second run).
        let follower: Pod = serde_json::from_value(json!({"metadata": {"name": "f", "namespace": "default"},
            "spec": {"priority": 10, "containers": [{"name": "c"}], "affinity": {"podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "web"}},
                "topologyKey": "kubernetes.io/hostname"}]}}}}))
        .unwrap();
        assert_eq!(
            Prepared::new(&follower, &cache)
                .filter("a", &cache.nodes["a"])
                .err()
                .map(|f| f.reasons),
            Some(vec![REASON_POD_AFFINITY.to_owned()])
        );
        cache.unnominate("default/p100");
        assert!(Prepared::new(&low, &cache).filter("a", &cache.nodes["a"]).is_ok());
    }

    #[test]
    fn weights_are_upstreams() {
        // One node tainted PreferNoSchedule, the other preferred by node affinity and holding
        // the image: TaintToleration 3 * 100, NodeAffinity 2 * 100, ImageLocality.
        let mut a = node("a", json!({"disk": "ssd"}), json!({}));
        a["status"]["images"] = json!([{"names": ["big:1"], "sizeBytes": 1000i64 * 1024 * 1024}]);
        let b = node(
            "b",
            json!({}),
            json!({"taints": [{"key": "k", "effect": "PreferNoSchedule"}]}),
        );
        let cache = cache_with(&[a, b]);
        let incoming = pod(
            json!({"containers": [{"name": "c", "image": "big:1"}], "affinity": {"nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 5, "preference": {
                "matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}}}),
        );
        let prepared = Prepared::new(&incoming, &cache);
        let scores = prepared.score(&feasible(&cache));
        // Resources score the same on both nodes; ImageLocality: 1000 MB on one of two nodes
        // = 500 MB, 100 * (500 - 23) / (1000 - 23) = 48.
        assert_eq!(scores[0] - scores[1], 3 * 100 + 2 * 100 + 48);
    }
}
