//! Preemption (upstream: framework/preemption and the DefaultPreemption plugin), decided on
//! the cache: on the nodes where the pod failed only for reasons eviction can cure, remove
//! every lower-priority pod, check the pod fits, then give back as many victims as still let
//! it fit, most important first, those whose eviction would violate a PodDisruptionBudget
//! before the others (upstream's `filterPodsWithPDBViolation`). The node chosen
//! (`pickOneNodeForPreemption`) has the fewest PDB violations, then the least important,
//! cheapest, fewest victims. It decides; the caller deletes victims and nominates the node.
//! It does no I/O.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::cache::{Cache, PodInfo};
use super::plugins::{Prepared, selector_matches};

/// The victims to evict from `node` so the pod fits there.
#[derive(Debug)]
pub struct Victims {
    pub node: String,
    pub pods: Vec<Arc<PodInfo>>,
}

fn priority(pod: &PodInfo) -> i32 {
    pod.pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// Why the pod may not preempt, in upstream's words (`PodEligibleToPreemptOthers`).
pub fn ineligible(prepared: &Prepared<'_>, cache: &Cache) -> Option<&'static str> {
    let pod = prepared.pod;
    if pod.spec.as_ref().and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
        return Some("not eligible due to preemptionPolicy=Never.");
    }
    let nominated = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())?;
    let own = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
    let node = cache.nodes.get(nominated)?;
    node.pods
        .values()
        .any(|p| p.pod.metadata.deletion_timestamp.is_some() && priority(p) < own)
        .then_some("not eligible due to a terminating pod on the nominated node.")
}

/// Splits `pods` (most important first) into those whose eviction would violate a
/// PodDisruptionBudget and the others, keeping their order (upstream's
/// `filterPodsWithPDBViolation`; a PDB with a null or empty selector matches nothing).
fn split_by_pdb(
    pods: Vec<Arc<PodInfo>>,
    pdbs: &[Arc<PodDisruptionBudget>],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: HashMap<usize, i32> = pdbs
        .iter()
        .enumerate()
        .map(|(i, pdb)| (i, pdb.status.as_ref().map_or(0, |s| s.disruptions_allowed)))
        .collect();
    let (mut violating, mut fine) = (Vec::new(), Vec::new());
    for pod in pods {
        let meta = &pod.pod.metadata;
        let mut violates = false;
        for (i, pdb) in pdbs.iter().enumerate() {
            if pdb.metadata.namespace != meta.namespace {
                continue;
            }
            let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
            let empty = selector.is_none_or(|s| {
                s.match_labels.as_ref().is_none_or(|m| m.is_empty())
                    && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
            });
            if empty || !selector_matches(selector, meta.labels.as_ref()) {
                continue;
            }
            // Already being disrupted: counted in the budget.
            let name = meta.name.as_deref().unwrap_or("");
            if pdb
                .status
                .as_ref()
                .and_then(|s| s.disrupted_pods.as_ref())
                .is_some_and(|d| d.contains_key(name))
            {
                continue;
            }
            if let Some(left) = allowed.get_mut(&i) {
                *left -= 1;
                if *left < 0 {
                    violates = true;
                }
            }
        }
        if violates {
            violating.push(pod);
        } else {
            fine.push(pod);
        }
    }
    (violating, fine)
}

/// The best node to preempt on among `candidates` (nodes that failed for curable reasons).
pub fn select(
    prepared: &Prepared<'_>,
    cache: &Cache,
    pdbs: &[Arc<PodDisruptionBudget>],
    candidates: &[String],
) -> Option<Victims> {
    let own = prepared.pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
    let mut best: Option<((usize, i32, i64, usize), Victims)> = None;
    for name in candidates {
        let Some(node) = cache.nodes.get(name) else {
            continue;
        };
        let mut lower: Vec<Arc<PodInfo>> = node
            .pods
            .values()
            .filter(|p| priority(p) < own && p.pod.metadata.deletion_timestamp.is_none())
            .cloned()
            .collect();
        if lower.is_empty() {
            continue;
        }
        let mut trial = node.clone();
        for pod in &lower {
            trial.remove_pod(&pod.key);
        }
        if prepared.filter(name, &trial).is_err() {
            continue;
        }
        // Reprieve the most important first, those protected by a PDB before the others: a
        // pod stays if the preemptor still fits.
        lower.sort_by(|a, b| priority(b).cmp(&priority(a)).then_with(|| a.key.cmp(&b.key)));
        let (violating, fine) = split_by_pdb(lower, pdbs);
        let mut victims = Vec::new();
        let mut violations = 0;
        for (pod, protected) in violating
            .into_iter()
            .map(|p| (p, true))
            .chain(fine.into_iter().map(|p| (p, false)))
        {
            trial.add_pod(pod.clone());
            if prepared.filter(name, &trial).is_err() {
                trial.remove_pod(&pod.key);
                victims.push(pod);
                if protected {
                    violations += 1;
                }
            }
        }
        let rank = (
            violations,
            victims.iter().map(|p| priority(p)).max().unwrap_or(i32::MIN),
            victims.iter().map(|p| i64::from(priority(p))).sum::<i64>(),
            victims.len(),
        );
        if best.as_ref().is_none_or(|(current, _)| rank < *current) {
            best = Some((
                rank,
                Victims {
                    node: name.clone(),
                    pods: victims,
                },
            ));
        }
    }
    best.map(|(_, victims)| victims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, app: &str) -> Arc<PodInfo> {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        }))
        .unwrap();
        Arc::new(PodInfo::new(format!("default/{name}"), Arc::new(pod), "n".into()))
    }

    fn pdb(app: &str, allowed: i32, disrupted: &[&str]) -> Arc<PodDisruptionBudget> {
        let disrupted: serde_json::Map<String, serde_json::Value> = disrupted
            .iter()
            .map(|n| ((*n).to_owned(), serde_json::json!("2026-01-01T00:00:00Z")))
            .collect();
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": app, "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": app}}},
                "status": {"disruptionsAllowed": allowed, "currentHealthy": 0, "desiredHealthy": 0,
                           "expectedPods": 0, "disruptedPods": disrupted},
            }))
            .unwrap(),
        )
    }

    fn names(pods: &[Arc<PodInfo>]) -> Vec<&str> {
        pods.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn pods_beyond_a_budget_violate_it_like_upstream() {
        let pods = vec![
            info("a", "db"),
            info("b", "db"),
            info("c", "web"),
            info("d", "db"),
        ];
        let (violating, fine) = split_by_pdb(pods.clone(), &[pdb("db", 1, &[])]);
        assert_eq!(names(&violating), ["default/b", "default/d"]);
        assert_eq!(names(&fine), ["default/a", "default/c"]);
        // Pods already being disrupted are counted in the budget already.
        let (violating, _) = split_by_pdb(pods.clone(), &[pdb("db", 0, &["a", "b"])]);
        assert_eq!(names(&violating), ["default/d"]);
        // An empty selector matches nothing.
        let mut empty = (*pdb("db", 0, &[])).clone();
        empty.spec.as_mut().unwrap().selector = Some(Default::default());
        let (violating, _) = split_by_pdb(pods, &[Arc::new(empty)]);
        assert!(violating.is_empty());
    }
}
