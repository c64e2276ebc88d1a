//! The PersistentVolumeClaim protection controller (upstream: pkg/controller/volume/pvcprotection):
//! keeps the `kubernetes.io/pvc-protection` finalizer on claims, and removes it from a claim
//! being deleted once no pod uses it: no scheduled pod in its namespace names it as a volume
//! (a pod's generic ephemeral claim stops counting once the pod is shut down). The pod cache
//! is asked first, then a live list of the namespace's pods, as upstream does.
//!
//! It only adds and removes that finalizer; it never deletes anything.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use futures_util::{StreamExt, future, stream};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_not_found};
use crate::pods::controller_of;

/// The controller's name in `--controllers`.
pub const NAME: &str = "persistentvolumeclaim-protection-controller";
/// The finalizer this controller owns.
pub(crate) const FINALIZER: &str = "kubernetes.io/pvc-protection";

/// Runs the controller.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let seen = Arc::new(Mutex::new(
        std::collections::HashMap::<(String, String), String>::new(),
    ));
    let pod_events = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(pod_writer)
        .filter_map(|event| future::ready(event.ok()))
        .flat_map(move |event| stream::iter(claims_for(&event, &seen)));
    let controller = Controller::new(
        Api::<PersistentVolumeClaim>::all(client),
        watcher::Config::default(),
    )
    .reconcile_on(pod_events);
    harness::run(NAME, controller, context, shutdown, move |claim, context| {
        let pods = pods.clone();
        async move { reconcile(claim, context, pods).await }
    })
    .await;
}

/// The claims to look at again for a pod event (upstream's enqueuePVCs): those of a pod that
/// is deleted, finished or not scheduled, and those of a pod replaced by one of the same name.
fn claims_for(
    event: &watcher::Event<Pod>,
    seen: &Mutex<std::collections::HashMap<(String, String), String>>,
) -> Vec<ObjectRef<PersistentVolumeClaim>> {
    let (pod, deleted) = match event {
        watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => (pod, false),
        watcher::Event::Delete(pod) => (pod, true),
        watcher::Event::Init | watcher::Event::InitDone => return Vec::new(),
    };
    let key = (pod.namespace().unwrap_or_default(), pod.name_any());
    let uid = pod.uid().unwrap_or_default();
    let replaced = match seen.lock() {
        Ok(mut seen) if deleted => {
            seen.remove(&key);
            false
        }
        Ok(mut seen) => seen.insert(key, uid.clone()).is_some_and(|old| old != uid),
        Err(_) => false,
    };
    let scheduled = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    if !deleted && !replaced && !is_terminated(pod) && scheduled {
        return Vec::new();
    }
    let namespace = pod.namespace().unwrap_or_default();
    claim_names(pod)
        .into_iter()
        .map(|name| ObjectRef::new(&name).within(&namespace))
        .collect()
}

/// The claims a pod's volumes name: `persistentVolumeClaim` claims and the `<pod>-<volume>`
/// claims of generic ephemeral volumes.
fn claim_names(pod: &Pod) -> BTreeSet<String> {
    let pod_name = pod.name_any();
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|volume| {
            if let Some(claim) = &volume.persistent_volume_claim {
                Some(claim.claim_name.clone())
            } else {
                volume
                    .ephemeral
                    .as_ref()
                    .map(|_| format!("{pod_name}-{}", volume.name))
            }
        })
        .collect()
}

/// Upstream's IsPodTerminated: the pod finished, or is being deleted with every container
/// stopped.
fn is_terminated(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    if matches!(
        status.and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    ) {
        return true;
    }
    pod.metadata.deletion_timestamp.is_some()
        && status.is_some_and(|s| {
            s.container_statuses
                .iter()
                .flatten()
                .chain(s.init_container_statuses.iter().flatten())
                .chain(s.ephemeral_container_statuses.iter().flatten())
                .all(|c| {
                    c.state
                        .as_ref()
                        .is_some_and(|state| state.terminated.is_some() || state.waiting.is_some())
                })
        })
}

/// Whether the kubelet is done with the pod or it was force-deleted.
fn is_shut_down(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some() && pod.metadata.deletion_grace_period_seconds == Some(0)
}

/// Upstream's podUsesPVC: a scheduled pod naming the claim, or whose ephemeral volume
/// created it and which is not shut down.
fn uses_claim(pod: &Pod, claim: &PersistentVolumeClaim) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    if spec.node_name.as_deref().is_none_or(str::is_empty) {
        return false;
    }
    let claim_name = claim.name_any();
    let pod_name = pod.name_any();
    spec.volumes.iter().flatten().any(|volume| {
        if volume
            .persistent_volume_claim
            .as_ref()
            .is_some_and(|c| c.claim_name == claim_name)
        {
            return true;
        }
        volume.ephemeral.is_some()
            && !is_shut_down(pod)
            && format!("{pod_name}-{}", volume.name) == claim_name
            && claim.metadata.namespace == pod.metadata.namespace
            && controller_of(&claim.metadata)
                .is_some_and(|owner| Some(&owner.uid) == pod.metadata.uid.as_ref())
    })
}

fn has_finalizer(claim: &PersistentVolumeClaim) -> bool {
    claim.finalizers().iter().any(|f| f == FINALIZER)
}

async fn reconcile(
    claim: Arc<PersistentVolumeClaim>,
    context: Arc<Context>,
    pods: Store<Pod>,
) -> Result<Action, ReconcileError> {
    let deleting = claim.meta().deletion_timestamp.is_some();
    if deleting && has_finalizer(&claim) {
        if pods.wait_until_ready().await.is_err() {
            return Ok(Action::await_change());
        }
        if in_use(&claim, &context, &pods).await? {
            tracing::debug!("keeping the claim because it is being used");
            return Ok(Action::await_change());
        }
        let mut next = (*claim).clone();
        next.metadata.finalizers = Some(
            claim
                .finalizers()
                .iter()
                .filter(|f| *f != FINALIZER)
                .cloned()
                .collect(),
        );
        return write(&claim, next, &context).await;
    }
    if !deleting && !has_finalizer(&claim) {
        let mut next = (*claim).clone();
        next.metadata
            .finalizers
            .get_or_insert_with(Vec::new)
            .push(FINALIZER.to_owned());
        return write(&claim, next, &context).await;
    }
    Ok(Action::await_change())
}

/// Whether a pod uses the claim: in the cache, else in a live list of the namespace's pods.
async fn in_use(
    claim: &PersistentVolumeClaim,
    context: &Context,
    pods: &Store<Pod>,
) -> Result<bool, ReconcileError> {
    let namespace = claim.namespace().unwrap_or_default();
    let cached = pods
        .state()
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .any(|p| uses_claim(p, claim));
    if cached {
        return Ok(true);
    }
    let api: Api<Pod> = Api::namespaced(context.client.clone(), &namespace);
    let live = api.list(&ListParams::default()).await?;
    Ok(live.items.iter().any(|p| uses_claim(p, claim)))
}

async fn write(
    claim: &PersistentVolumeClaim,
    mut next: PersistentVolumeClaim,
    context: &Context,
) -> Result<Action, ReconcileError> {
    next.metadata.managed_fields = None;
    let api: Api<PersistentVolumeClaim> =
        Api::namespaced(context.client.clone(), &claim.namespace().unwrap_or_default());
    match api
        .replace(&claim.name_any(), &PostParams::default(), &next)
        .await
    {
        Ok(_) => Ok(Action::await_change()),
        Err(err) if is_not_found(&err) => Ok(Action::await_change()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(node: Option<&str>, volumes: &serde_json::Value, deleting: Option<i64>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "pod-uid",
                "deletionTimestamp": deleting.map(|_| "2024-01-01T00:00:00Z"),
                "deletionGracePeriodSeconds": deleting},
            "spec": {"nodeName": node, "containers": [], "volumes": volumes},
        }))
        .unwrap()
    }

    fn claim(name: &str, owner: Option<&str>) -> PersistentVolumeClaim {
        let owners: Vec<serde_json::Value> = owner
            .map(
                |uid| json!({"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": uid, "controller": true}),
            )
            .into_iter()
            .collect();
        serde_json::from_value(
            json!({"metadata": {"name": name, "namespace": "ns", "ownerReferences": owners}}),
        )
        .unwrap()
    }

    #[test]
    fn only_scheduled_pods_use_claims() {
        let volumes = json!([{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}]);
        assert!(uses_claim(&pod(Some("n"), &volumes, None), &claim("c", None)));
        assert!(!uses_claim(&pod(None, &volumes, None), &claim("c", None)));
        assert!(!uses_claim(
            &pod(Some("n"), &volumes, None),
            &claim("other", None)
        ));
        // A claim volume keeps its claim while the pod is being deleted.
        assert!(uses_claim(&pod(Some("n"), &volumes, Some(0)), &claim("c", None)));
    }

    #[test]
    fn ephemeral_claims_are_released_by_shut_down_pods() {
        let volumes = json!([{"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}}]);
        let owned = claim("p-scratch", Some("pod-uid"));
        assert!(uses_claim(&pod(Some("n"), &volumes, None), &owned));
        assert!(uses_claim(&pod(Some("n"), &volumes, Some(30)), &owned));
        assert!(!uses_claim(&pod(Some("n"), &volumes, Some(0)), &owned));
        // A claim of that name the pod did not create is not its ephemeral volume.
        assert!(!uses_claim(
            &pod(Some("n"), &volumes, None),
            &claim("p-scratch", Some("someone-else"))
        ));
    }
}
