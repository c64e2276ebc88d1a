//! Preemption (upstream: framework/preemption and the DefaultPreemption plugin), decided on
//! the cache: on the nodes where the pod failed only for reasons eviction can cure, remove
//! every lower-priority pod, check the pod fits, then give back as many victims as still let
//! it fit, most important first. The node chosen has the least important, cheapest, fewest
//! victims (upstream's order without PodDisruptionBudgets, which are not consulted yet).
//! It decides; the caller deletes victims and nominates the node. It does no I/O.

use std::sync::Arc;

use super::cache::{Cache, PodInfo};
use super::plugins::Prepared;

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

/// The best node to preempt on among `candidates` (nodes that failed for curable reasons).
pub fn select(prepared: &Prepared<'_>, cache: &Cache, candidates: &[String]) -> Option<Victims> {
    let own = prepared.pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
    let mut best: Option<((i32, i64, usize), Victims)> = None;
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
        // Reprieve the most important first: a pod stays if the preemptor still fits.
        lower.sort_by(|a, b| priority(b).cmp(&priority(a)).then_with(|| a.key.cmp(&b.key)));
        let mut victims = Vec::new();
        for pod in lower {
            trial.add_pod(pod.clone());
            if prepared.filter(name, &trial).is_err() {
                trial.remove_pod(&pod.key);
                victims.push(pod);
            }
        }
        let rank = (
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
