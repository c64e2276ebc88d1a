//! The taint eviction controller (`taint-eviction-controller`; upstream:
//! pkg/controller/tainteviction): pods on a node with NoExecute taints they do not tolerate
//! are deleted at once; pods tolerating them for `tolerationSeconds` are deleted that long
//! after the controller first saw them so (the shortest of the tolerations used; tolerations
//! without seconds tolerate forever). Before a deletion the pod gets the `DisruptionTarget`
//! condition (`DeletionByTaintManager`) and a `TaintManagerEviction` event ("Marking for
//! deletion Pod ns/name"); a scheduled deletion whose taints go away is cancelled
//! ("Cancelling deletion of Pod ns/name").
//!
//! Scheduled deletions are requeues of the pod at the exact instant, kept in memory as
//! upstream's timed workers are (a restarted controller starts counting afresh). It deletes
//! pods and writes their `DisruptionTarget` condition, nothing else; it never changes taints.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Taint, Toleration};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_not_found};
use crate::scheduler::plugins::tolerates;

/// The controller's name in `--controllers`.
pub const NAME: &str = "taint-eviction-controller";
/// The component named in its events.
const COMPONENT: &str = "taint-eviction-controller";

/// A deletion waiting for its time.
#[derive(Clone, Debug)]
struct Scheduled {
    uid: String,
    /// When the pod was first seen tolerating the taints for a while.
    start: Timestamp,
}

struct State {
    nodes: Store<Node>,
    scheduled: Mutex<HashMap<String, Scheduled>>,
    recorder: Recorder,
}

fn no_execute_taints(node: &Node) -> Vec<Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "NoExecute")
        .cloned()
        .collect()
}

/// Upstream's GetMatchingTolerations: whether every taint is tolerated, and the first
/// toleration of each.
fn matching_tolerations<'a>(taints: &[Taint], tolerations: &'a [Toleration]) -> Option<Vec<&'a Toleration>> {
    taints
        .iter()
        .map(|taint| tolerations.iter().find(|t| tolerates(t, taint)))
        .collect()
}

/// Upstream's getMinTolerationTime: the shortest `tolerationSeconds` (zero when one is zero or
/// less, or there are no tolerations), `None` for forever.
fn min_toleration(tolerations: &[&Toleration]) -> Option<Duration> {
    if tolerations.is_empty() {
        return Some(Duration::ZERO);
    }
    tolerations
        .iter()
        .filter_map(|t| t.toleration_seconds)
        .map(|seconds| Duration::from_secs(u64::try_from(seconds).unwrap_or(0)))
        .min()
}

/// What to do with a pod on a node with these NoExecute taints.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// No deletion (no taints, or tolerated forever).
    Keep,
    /// Delete after this long.
    DeleteAfter(Duration),
}

fn decide(taints: &[Taint], tolerations: &[Toleration]) -> Decision {
    if taints.is_empty() {
        return Decision::Keep;
    }
    let Some(used) = matching_tolerations(taints, tolerations) else {
        return Decision::DeleteAfter(Duration::ZERO);
    };
    match min_toleration(&used) {
        Some(after) => Decision::DeleteAfter(after),
        None => Decision::Keep,
    }
}

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let (nodes, node_writer) = reflector::store::<Node>();
    let node_events = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(node_writer)
        .touched_objects();
    let controller = Controller::new(
        Api::<Pod>::all(client),
        watcher::Config::default().fields("spec.nodeName!="),
    );
    let pods = controller.store();
    // Nodes with NoExecute taints now or at their last change: only their pods need a look.
    let tainted: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    let controller = controller.watches_stream(node_events, move |node: Node| {
        let name = node.name_any();
        let has_taints = !no_execute_taints(&node).is_empty();
        let relevant = match tainted.lock() {
            Ok(mut tainted) if has_taints => {
                tainted.insert(name.clone());
                true
            }
            Ok(mut tainted) => tainted.remove(&name),
            Err(_) => true,
        };
        if !relevant {
            return Vec::new();
        }
        pods.state()
            .iter()
            .filter(|pod| pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str()))
            .map(|pod| ObjectRef::from_obj(pod.as_ref()))
            .collect()
    });
    let state = Arc::new(State {
        nodes,
        scheduled: Mutex::new(HashMap::new()),
        recorder: context.recorder(COMPONENT),
    });
    harness::run(NAME, controller, context, shutdown, move |pod, context| {
        let state = state.clone();
        async move { Box::pin(reconcile(pod, context, state)).await }
    })
    .await;
}

fn reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Pod".to_owned()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

impl State {
    async fn event(&self, pod: &Pod, note: String) {
        let event = Event {
            type_: EventType::Normal,
            reason: "TaintManagerEviction".to_owned(),
            note: Some(note),
            action: "TaintManagerEviction".to_owned(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, &reference(pod)).await {
            tracing::debug!(error = %err, "publishing the TaintManagerEviction event failed");
        }
    }

    /// Forgets a scheduled deletion; says so in an event when there was one.
    async fn cancel(&self, pod: &Pod) {
        let key = crate::pods::key(pod);
        let removed = self.scheduled.lock().ok().and_then(|mut s| s.remove(&key));
        if removed.is_some() {
            tracing::info!(pod = %key, "cancelling the taint eviction");
            self.event(pod, format!("Cancelling deletion of Pod {key}")).await;
        }
    }

    /// When the pod's deletion falls due, counting from when it was first scheduled.
    fn schedule(&self, pod: &Pod, after: Duration, now: Timestamp) -> Timestamp {
        let uid = pod.uid().unwrap_or_default();
        let Ok(mut scheduled) = self.scheduled.lock() else {
            return now;
        };
        let entry = scheduled
            .entry(crate::pods::key(pod))
            .or_insert_with(|| Scheduled {
                uid: uid.clone(),
                start: now,
            });
        if entry.uid != uid {
            *entry = Scheduled { uid, start: now };
        }
        entry.start + SignedDuration::try_from(after).unwrap_or(SignedDuration::ZERO)
    }
}

async fn reconcile(
    pod: Arc<Pod>,
    context: Arc<Context>,
    state: Arc<State>,
) -> Result<Action, ReconcileError> {
    if pod.metadata.deletion_timestamp.is_some() {
        if let Ok(mut scheduled) = state.scheduled.lock() {
            scheduled.remove(&crate::pods::key(&pod));
        }
        return Ok(Action::await_change());
    }
    let taints = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .and_then(|node| state.nodes.get(&ObjectRef::new(node)))
        .map(|node| no_execute_taints(&node))
        .unwrap_or_default();
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    let now = Timestamp::now();
    let due = match decide(&taints, tolerations) {
        Decision::Keep => {
            state.cancel(&pod).await;
            return Ok(Action::await_change());
        }
        Decision::DeleteAfter(Duration::ZERO) => now,
        Decision::DeleteAfter(after) => state.schedule(&pod, after, now),
    };
    if due > now {
        let wait = due.duration_since(now).unsigned_abs();
        return Ok(Action::requeue(wait + Duration::from_millis(10)));
    }
    evict(&pod, &context, &state).await?;
    Ok(Action::await_change())
}

/// Upstream's deletion: the event, the `DisruptionTarget` condition, then the deletion.
async fn evict(pod: &Pod, context: &Context, state: &State) -> Result<(), ReconcileError> {
    let key = crate::pods::key(pod);
    tracing::info!(pod = %key, "deleting a pod for a NoExecute taint");
    state.event(pod, format!("Marking for deletion Pod {key}")).await;
    let api: Api<Pod> = Api::namespaced(context.client.clone(), &pod.namespace().unwrap_or_default());
    let name = pod.name_any();
    let has_condition = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter().any(|c| {
                c.type_ == "DisruptionTarget"
                    && c.status == "True"
                    && c.reason.as_deref() == Some("DeletionByTaintManager")
            })
        });
    if !has_condition {
        let now = Timestamp::now();
        let patch = json!({"status": {"conditions": [{
            "type": "DisruptionTarget",
            "status": "True",
            "observedGeneration": pod.metadata.generation,
            "lastProbeTime": null,
            "lastTransitionTime": Timestamp::from_second(now.as_second()).unwrap_or(now).to_string(),
            "reason": "DeletionByTaintManager",
            "message": "Taint manager: deleting due to NoExecute taint",
        }]}});
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => return Ok(()),
            Err(err) => return Err(err.into()),
        }
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: pod.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => {}
        Err(err) if is_not_found(&err) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(err) => return Err(err.into()),
    }
    if let Ok(mut scheduled) = state.scheduled.lock() {
        scheduled.remove(&key);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taints(value: serde_json::Value) -> Vec<Taint> {
        serde_json::from_value(value).unwrap()
    }

    fn tolerations(value: serde_json::Value) -> Vec<Toleration> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn decisions_as_upstream() {
        let unreachable = taints(json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]));
        assert_eq!(decide(&[], &[]), Decision::Keep);
        assert_eq!(decide(&unreachable, &[]), Decision::DeleteAfter(Duration::ZERO));
        let for_5s = tolerations(json!([
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5},
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ]));
        assert_eq!(
            decide(&unreachable, &for_5s),
            Decision::DeleteAfter(Duration::from_secs(5))
        );
        let forever = tolerations(json!([{"operator": "Exists"}]));
        assert_eq!(decide(&unreachable, &forever), Decision::Keep);
        let negative = tolerations(json!([
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": -1},
        ]));
        assert_eq!(
            decide(&unreachable, &negative),
            Decision::DeleteAfter(Duration::ZERO)
        );
        let both = taints(json!([
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
            {"key": "dedicated", "value": "x", "effect": "NoExecute"},
        ]));
        assert_eq!(decide(&both, &for_5s), Decision::DeleteAfter(Duration::ZERO));
    }
}
