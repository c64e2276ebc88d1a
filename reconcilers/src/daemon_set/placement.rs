//! Where daemon pods belong (upstream: `NodeShouldRunDaemonPod` and pkg/controller/daemon/util):
//! the node predicates (node name, nodeSelector and required node affinity, taints against
//! tolerations), the tolerations every daemon pod gets, the node affinity that pins a pod to its
//! node, and the node a pod is meant for. Pure functions over API objects; no I/O.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec,
    PodTemplateSpec, Taint, Toleration,
};

/// The label holding the template hash of a daemon pod's revision.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";
/// The label holding the DaemonSet's template generation.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// The DaemonSet annotation holding its template generation.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// Whether a node should run a daemon pod, as upstream's `NodeShouldRunDaemonPod`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fit {
    /// A daemon pod should be started on the node when it has none.
    pub should_run: bool,
    /// A daemon pod already on the node may stay.
    pub should_continue_running: bool,
}

/// Upstream's `NodeShouldRunDaemonPod` for the DaemonSet's pod template.
pub fn node_should_run(node: &Node, template: &PodTemplateSpec) -> Fit {
    const NO: Fit = Fit {
        should_run: false,
        should_continue_running: false,
    };
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let mut spec = template.spec.clone().unwrap_or_default();
    if spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && n != name)
    {
        return NO;
    }
    add_default_tolerations(&mut spec);
    if !node_affinity_matches(&spec, node) {
        return NO;
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    let tolerations = spec.tolerations.as_deref().unwrap_or(&[]);
    let untolerated = |effects: &[&str]| {
        taints
            .iter()
            .filter(|t| effects.contains(&t.effect.as_str()))
            .any(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
    };
    if untolerated(&["NoExecute", "NoSchedule"]) {
        // Running daemon pods stay unless a NoExecute taint is not tolerated.
        return Fit {
            should_run: false,
            should_continue_running: !untolerated(&["NoExecute"]),
        };
    }
    Fit {
        should_run: true,
        should_continue_running: true,
    }
}

/// Upstream's `Toleration.ToleratesTaint` (without the alpha comparison operators).
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty())
        && effect != taint.effect
    {
        return false;
    }
    if let Some(key) = toleration.key.as_deref().filter(|k| !k.is_empty())
        && key != taint.key
    {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or_default() {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
        }
        "Exists" => true,
        _ => false,
    }
}

/// Whether the node satisfies the spec's nodeSelector and required node affinity (upstream's
/// `GetRequiredNodeAffinity(pod).Match(node)`, parse errors counting as no match).
pub fn node_affinity_matches(spec: &PodSpec, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    for (key, value) in spec.node_selector.iter().flatten() {
        if labels.get(key) != Some(value) {
            return false;
        }
    }
    let Some(required) = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())
    else {
        return true;
    };
    let name = node.metadata.name.as_deref().unwrap_or_default();
    required
        .node_selector_terms
        .iter()
        .any(|term| term_matches(term, labels, name))
}

/// A node selector term: its expressions and fields all match; a term without any matches
/// nothing.
fn term_matches(term: &NodeSelectorTerm, labels: &BTreeMap<String, String>, name: &str) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    expressions
        .iter()
        .all(|r| label_requirement_matches(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| field_requirement_matches(r, name))
}

fn label_requirement_matches(requirement: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = requirement.values.as_deref().unwrap_or(&[]);
    match requirement.operator.as_str() {
        "In" if !values.is_empty() => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" if !values.is_empty() => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" if values.is_empty() => value.is_some(),
        "DoesNotExist" if values.is_empty() => value.is_none(),
        operator @ ("Gt" | "Lt") if values.len() == 1 => {
            let (Some(actual), Ok(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values[0].parse::<i64>(),
            ) else {
                return false;
            };
            if operator == "Gt" {
                actual > bound
            } else {
                actual < bound
            }
        }
        _ => false,
    }
}

/// Field requirements: only `metadata.name` with `In` or `NotIn` and one value.
fn field_requirement_matches(requirement: &NodeSelectorRequirement, name: &str) -> bool {
    let values = requirement.values.as_deref().unwrap_or(&[]);
    if requirement.key != "metadata.name" || values.len() != 1 {
        return false;
    }
    match requirement.operator.as_str() {
        "In" => values[0] == name,
        "NotIn" => values[0] != name,
        _ => false,
    }
}

/// Upstream's `AddOrUpdateDaemonPodTolerations`: daemon pods tolerate the node conditions
/// (without tolerationSeconds) and unschedulable nodes; host-network pods a missing network.
pub fn add_default_tolerations(spec: &mut PodSpec) {
    let exists = |key: &str, effect: &str| Toleration {
        key: Some(key.to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some(effect.to_owned()),
        ..Toleration::default()
    };
    let mut defaults = vec![
        exists("node.kubernetes.io/not-ready", "NoExecute"),
        exists("node.kubernetes.io/unreachable", "NoExecute"),
        exists("node.kubernetes.io/disk-pressure", "NoSchedule"),
        exists("node.kubernetes.io/memory-pressure", "NoSchedule"),
        exists("node.kubernetes.io/pid-pressure", "NoSchedule"),
        exists("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        defaults.push(exists("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    for toleration in defaults {
        add_or_update_toleration(spec, toleration);
    }
}

/// Upstream's `AddOrUpdateTolerationInPodSpec`: a toleration with the same key, operator,
/// value and effect is replaced in place, else the toleration is appended.
fn add_or_update_toleration(spec: &mut PodSpec, toleration: Toleration) {
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    let same = |t: &Toleration| {
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        s(&t.key) == s(&toleration.key)
            && s(&t.effect) == s(&toleration.effect)
            && s(&t.operator) == s(&toleration.operator)
            && s(&t.value) == s(&toleration.value)
    };
    let mut replaced = false;
    for existing in tolerations.iter_mut().filter(|t| same(t)) {
        *existing = toleration.clone();
        replaced = true;
    }
    if !replaced {
        tolerations.push(toleration);
    }
}

/// Upstream's `CreatePodTemplate`: the template with the default tolerations and the
/// generation and revision hash labels.
pub fn pod_template(template: &PodTemplateSpec, generation: Option<i64>, hash: &str) -> PodTemplateSpec {
    let mut template = template.clone();
    add_default_tolerations(template.spec.get_or_insert_with(PodSpec::default));
    let labels = template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(BTreeMap::new);
    if let Some(generation) = generation {
        labels.insert(TEMPLATE_GENERATION_LABEL.to_owned(), generation.to_string());
    }
    if !hash.is_empty() {
        labels.insert(REVISION_HASH_LABEL.to_owned(), hash.to_owned());
    }
    template
}

/// Upstream's `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity becomes the
/// one term `metadata.name In [node]`; preferred terms and other affinities stay.
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let term = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".to_owned(),
            operator: "In".to_owned(),
            values: Some(vec![node.to_owned()]),
        }]),
        match_expressions: None,
    };
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
    match node_affinity
        .required_during_scheduling_ignored_during_execution
        .as_mut()
    {
        Some(required) => required.node_selector_terms = vec![term],
        None => {
            node_affinity.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
                node_selector_terms: vec![term],
            });
        }
    }
    affinity
}

/// Upstream's `GetTargetNodeName`: the pod's node, else the node its required affinity pins it
/// to (`metadata.name In [one node]`).
pub fn target_node(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    if let Some(name) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(name.to_owned());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    for term in terms {
        for requirement in term.match_fields.iter().flatten() {
            if requirement.key == "metadata.name" && requirement.operator == "In" {
                let values = requirement.values.as_deref().unwrap_or(&[]);
                return match values {
                    [one] => Some(one.clone()),
                    _ => None,
                };
            }
        }
    }
    None
}

/// Upstream's `podByCreationTimestampAndPhase`: scheduled pods first, then the oldest, then by
/// name.
pub fn by_creation_and_phase(a: &Pod, b: &Pod) -> Ordering {
    let scheduled = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty())
    };
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    scheduled(b)
        .cmp(&scheduled(a))
        .then_with(|| created(a).cmp(&created(b)))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// Upstream's `IsPodUpdated`: the pod carries the current revision hash or template generation.
pub fn is_updated(pod: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let label = |key: &str| {
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .map(String::as_str)
    };
    let generation_matches =
        generation.is_some_and(|g| label(TEMPLATE_GENERATION_LABEL) == Some(g.to_string().as_str()));
    let hash_matches = !hash.is_empty() && label(REVISION_HASH_LABEL) == Some(hash);
    hash_matches || generation_matches
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(value: serde_json::Value) -> Node {
        serde_json::from_value(value).unwrap()
    }

    fn template(spec: serde_json::Value) -> PodTemplateSpec {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "c", "image": "i"}]);
        serde_json::from_value(json!({"metadata": {"labels": {"app": "d"}}, "spec": spec})).unwrap()
    }

    fn fit(should_run: bool, should_continue_running: bool) -> Fit {
        Fit {
            should_run,
            should_continue_running,
        }
    }

    #[test]
    fn taints_decide_like_node_should_run_daemon_pod() {
        let plain = template(json!({}));
        let tainted = |effect: &str| {
            node(
                json!({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "k", "value": "v", "effect": effect}]}}),
            )
        };
        assert_eq!(
            node_should_run(&node(json!({"metadata": {"name": "n"}})), &plain),
            fit(true, true)
        );
        assert_eq!(node_should_run(&tainted("NoSchedule"), &plain), fit(false, true));
        assert_eq!(node_should_run(&tainted("NoExecute"), &plain), fit(false, false));
        assert_eq!(
            node_should_run(&tainted("PreferNoSchedule"), &plain),
            fit(true, true)
        );
        let tolerant = template(json!({"tolerations": [{"key": "k", "operator": "Equal", "value": "v"}]}));
        assert_eq!(node_should_run(&tainted("NoExecute"), &tolerant), fit(true, true));
        let wrong_value = template(json!({"tolerations": [{"key": "k", "value": "x"}]}));
        assert_eq!(
            node_should_run(&tainted("NoSchedule"), &wrong_value),
            fit(false, true)
        );
        // The default tolerations: unschedulable and not-ready nodes still run daemon pods.
        let cordoned = node(
            json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true, "taints": [
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
            {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}}),
        );
        assert_eq!(node_should_run(&cordoned, &plain), fit(true, true));
        let network = node(json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"}]}}));
        assert_eq!(node_should_run(&network, &plain), fit(false, true));
        assert_eq!(
            node_should_run(&network, &template(json!({"hostNetwork": true}))),
            fit(true, true)
        );
    }

    #[test]
    fn selectors_affinity_and_node_name() {
        let labelled = node(json!({"metadata": {"name": "n1", "labels": {"disk": "ssd", "cores": "8"}}}));
        let other = node(json!({"metadata": {"name": "n2", "labels": {"disk": "hdd"}}}));
        let selected = template(json!({"nodeSelector": {"disk": "ssd"}}));
        assert!(node_should_run(&labelled, &selected).should_run);
        assert_eq!(node_should_run(&other, &selected), fit(false, false));
        let affinity = template(
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}]},
                                  {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}}}}),
        );
        assert!(node_should_run(&labelled, &affinity).should_run);
        assert!(node_should_run(&other, &affinity).should_run);
        let named = template(json!({"nodeName": "n1"}));
        assert!(node_should_run(&labelled, &named).should_run);
        assert_eq!(node_should_run(&other, &named), fit(false, false));
    }

    #[test]
    fn default_tolerations_replace_matching_ones() {
        let mut spec: PodSpec = serde_json::from_value(json!({"containers": [], "tolerations": [
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "mine", "operator": "Exists"}]}))
        .unwrap();
        add_default_tolerations(&mut spec);
        let tolerations = serde_json::to_value(&spec.tolerations).unwrap();
        assert_eq!(
            tolerations,
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
                {"key": "mine", "operator": "Exists"},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
                {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
            ])
        );
    }

    #[test]
    fn pods_are_pinned_and_found_on_their_node() {
        let existing: Affinity = serde_json::from_value(json!({"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {
                "matchExpressions": [{"key": "zone", "operator": "Exists"}]}}]}}))
        .unwrap();
        let pinned = serde_json::to_value(pin_to_node(Some(existing), "n1")).unwrap();
        assert_eq!(
            pinned["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"],
            json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]})
        );
        assert_eq!(
            pinned["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"],
            1
        );
        let pod = Pod {
            spec: Some(PodSpec {
                affinity: Some(pin_to_node(None, "n7")),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        assert_eq!(target_node(&pod).as_deref(), Some("n7"));
        assert_eq!(target_node(&Pod::default()), None);
    }

    #[test]
    fn templates_carry_generation_and_hash() {
        let labelled = pod_template(&template(json!({})), Some(3), "abc");
        let labels = labelled.metadata.unwrap().labels.unwrap();
        assert_eq!(labels[TEMPLATE_GENERATION_LABEL], "3");
        assert_eq!(labels[REVISION_HASH_LABEL], "abc");
        assert_eq!(labels["app"], "d");
        let pod: Pod =
            serde_json::from_value(json!({"metadata": {"labels": {TEMPLATE_GENERATION_LABEL: "3"}}}))
                .unwrap();
        assert!(is_updated(&pod, "other", Some(3)));
        assert!(!is_updated(&pod, "other", Some(4)));
        assert!(!is_updated(&pod, "other", None));
    }
}
