//! The replica set and replication controller controllers (upstream: pkg/controller/replicaset
//! and pkg/controller/replication, which shares its code): keep `spec.replicas` active pods
//! of the template, adopt and release pods by selector, and report status. One generic
//! implementation over [`Replicated`]; it never changes an owner's spec.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{TryStreamExt, future};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ReplicationController};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_not_found};
use crate::pods::{self, Expectations, RefManager, Selector, controller_of};

/// The replica set controller's name in `--controllers`.
pub const NAME: &str = "replicaset-controller";
/// The replication controller controller's name in `--controllers`.
pub const RC_NAME: &str = "replicationcontroller-controller";
/// The most pods one sync creates or deletes (upstream's BurstReplicas).
const BURST_REPLICAS: usize = 500;

/// What the controller needs of a ReplicaSet or a ReplicationController.
pub trait Replicated:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The reporting component of its events.
    const COMPONENT: &'static str;
    /// Whether its status has `terminatingReplicas`.
    const TERMINATING_REPLICAS: bool;
    /// Its pod selector.
    fn selector(&self) -> Result<Selector, String>;
    /// Desired replicas.
    fn replicas(&self) -> i32;
    /// Seconds a pod must be ready to be available.
    fn min_ready_seconds(&self) -> i32;
    /// The pod template.
    fn template(&self) -> Option<&PodTemplateSpec>;
}

impl Replicated for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    const TERMINATING_REPLICAS: bool = true;
    fn selector(&self) -> Result<Selector, String> {
        self.spec.as_ref().map_or(Ok(Selector::default()), |s| {
            Selector::from_label_selector(&s.selector)
        })
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
}

impl Replicated for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";
    const TERMINATING_REPLICAS: bool = false;
    fn selector(&self) -> Result<Selector, String> {
        let labels = self
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        Ok(Selector::from_map(&labels))
    }
    fn replicas(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
    }
    fn min_ready_seconds(&self) -> i32 {
        self.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
    }
    fn template(&self) -> Option<&PodTemplateSpec> {
        self.spec.as_ref()?.template.as_ref()
    }
}

/// The status both kinds share, in their JSON form.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", default)]
struct ReplicaStatus {
    replicas: i32,
    fully_labeled_replicas: Option<i32>,
    ready_replicas: Option<i32>,
    available_replicas: Option<i32>,
    terminating_replicas: Option<i32>,
    observed_generation: Option<i64>,
    conditions: Vec<serde_json::Value>,
}

impl ReplicaStatus {
    fn of<K: Serialize>(object: &K) -> ReplicaStatus {
        serde_json::to_value(object)
            .ok()
            .and_then(|v| v.get("status").cloned())
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default()
    }

    /// A merge patch setting this status; zero counts are omitted as upstream's JSON omits
    /// them.
    fn patch(&self, terminating: bool) -> serde_json::Value {
        let count = |n: Option<i32>| match n {
            Some(n) if n != 0 => serde_json::json!(n),
            _ => serde_json::Value::Null,
        };
        let mut status = serde_json::json!({
            "replicas": self.replicas,
            "fullyLabeledReplicas": count(self.fully_labeled_replicas),
            "readyReplicas": count(self.ready_replicas),
            "availableReplicas": count(self.available_replicas),
            "observedGeneration": self.observed_generation,
            "conditions": if self.conditions.is_empty() { serde_json::Value::Null } else { self.conditions.clone().into() },
        });
        if terminating {
            status["terminatingReplicas"] = serde_json::json!(self.terminating_replicas);
        }
        serde_json::json!({ "status": status })
    }

    fn same_counts(&self, other: &ReplicaStatus) -> bool {
        let n = |v: Option<i32>| v.unwrap_or(0);
        self.replicas == other.replicas
            && n(self.fully_labeled_replicas) == n(other.fully_labeled_replicas)
            && n(self.ready_replicas) == n(other.ready_replicas)
            && n(self.available_replicas) == n(other.available_replicas)
            && self.terminating_replicas == other.terminating_replicas
            && self.conditions == other.conditions
    }
}

/// What one controller instance keeps between reconciles.
struct State<K: Replicated> {
    pods: Store<Pod>,
    owners: Store<K>,
    expectations: Expectations,
    /// Reports events as this component.
    recorder: Arc<Context>,
}

/// Runs the replica set controller.
pub(crate) async fn run_replica_sets(context: Arc<Context>, shutdown: CancellationToken) {
    run::<ReplicaSet>(NAME, context, shutdown).await;
}

/// Runs the replication controller controller.
pub(crate) async fn run_replication_controllers(context: Arc<Context>, shutdown: CancellationToken) {
    run::<ReplicationController>(RC_NAME, context, shutdown).await;
}

async fn run<K: Replicated>(name: &'static str, context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let (pods, writer) = reflector::store::<Pod>();
    let controller = Controller::new(Api::<K>::all(client.clone()), watcher::Config::default());
    let owners = controller.store();
    let state = Arc::new(State {
        pods: pods.clone(),
        owners: owners.clone(),
        expectations: Expectations::default(),
        recorder: context.clone(),
    });
    let observer = state.clone();
    let kind = K::kind(&()).into_owned();
    // Expectations are settled from the raw events, before the cache applies them, so a new
    // pod is told apart from an update of one already known.
    let pod_events = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .inspect_ok(move |event| {
            observer
                .expectations
                .observe(&kind, event, |pod| pods.get(&ObjectRef::from_obj(pod)).is_some());
        })
        .reflect(writer)
        .touched_objects();
    let controller = controller.watches_stream(pod_events, move |pod: Pod| owners_of_pod(&owners, &pod));
    harness::run(name, controller, context, shutdown, move |object, context| {
        let state = state.clone();
        async move { Box::pin(reconcile(object, context, state)).await }
    })
    .await;
}

/// The owners to sync for a pod event: its controller, or for an orphan every owner in its
/// namespace whose selector matches it.
fn owners_of_pod<K: Replicated>(owners: &Store<K>, pod: &Pod) -> Vec<ObjectRef<K>> {
    let namespace = pod.namespace().unwrap_or_default();
    if let Some(reference) = controller_of(&pod.metadata) {
        if reference.kind == K::kind(&()) {
            return vec![ObjectRef::new(&reference.name).within(&namespace)];
        }
        return Vec::new();
    }
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    owners
        .state()
        .iter()
        .filter(|o| o.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|o| o.selector().is_ok_and(|s| !s.is_empty() && s.matches(labels)))
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

async fn reconcile<K: Replicated>(
    owner: Arc<K>,
    context: Arc<Context>,
    state: Arc<State<K>>,
) -> Result<Action, ReconcileError> {
    if state.pods.wait_until_ready().await.is_err() {
        return Ok(Action::await_change());
    }
    let namespace = owner.namespace().unwrap_or_default();
    let name = owner.name_any();
    // Expectations are kept per owner UID: an owner deleted and created again starts afresh.
    let key = owner.meta().uid.clone().unwrap_or_default();
    let needs_sync = state.expectations.satisfied(&key);
    let selector = match owner.selector() {
        Ok(selector) => selector,
        Err(err) => {
            tracing::warn!(error = %err, "invalid selector");
            return Ok(Action::await_change());
        }
    };
    let uid = owner.meta().uid.clone();
    let candidates: Vec<Pod> = state
        .pods
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|p| controller_of(&p.metadata).is_none_or(|r| Some(&r.uid) == uid.as_ref()))
        .map(|p| (**p).clone())
        .collect();
    let (active, terminating): (Vec<Pod>, Vec<Pod>) = candidates.into_iter().partition(pods::is_active);
    let pod_api: Api<Pod> = Api::namespaced(context.client.clone(), &namespace);
    let owner_api: Api<K> = Api::namespaced(context.client.clone(), &namespace);
    let fresh_name = name.clone();
    let mut manager = RefManager::new(
        owner.as_ref(),
        &selector,
        Box::new(move || {
            let api = owner_api.clone();
            let name = fresh_name.clone();
            Box::pin(async move { api.get_opt(&name).await })
        }),
    );
    let active = manager.claim(&pod_api, active).await?;
    let terminating: Vec<Pod> = terminating
        .into_iter()
        .filter(pods::is_terminating)
        .filter(|p| controller_of(&p.metadata).is_some_and(|r| Some(&r.uid) == uid.as_ref()))
        .filter(|p| selector.matches(p.metadata.labels.as_ref().unwrap_or(&BTreeMap::new())))
        .collect();

    let mut manage_error = None;
    if needs_sync && owner.meta().deletion_timestamp.is_none() {
        manage_error = Box::pin(manage_replicas(owner.as_ref(), &active, &context, &state, &key))
            .await
            .err();
    }

    let now = Timestamp::now();
    let old = ReplicaStatus::of(owner.as_ref());
    let status = calculate_status(
        owner.as_ref(),
        &active,
        &terminating,
        manage_error.as_ref(),
        &old,
        now,
    );
    let generation = owner.meta().generation;
    if !(old.same_counts(&status) && old.observed_generation == generation) {
        let mut status = status.clone();
        status.observed_generation = generation;
        let api: Api<K> = Api::namespaced(context.client.clone(), &namespace);
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(status.patch(K::TERMINATING_REPLICAS)),
            )
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => return Ok(Action::await_change()),
            Err(err) => return Err(err.into()),
        }
    }
    if let Some(err) = manage_error {
        return Err(err);
    }
    let min_ready = owner.min_ready_seconds();
    if min_ready > 0 && status.ready_replicas != status.available_replicas {
        let refs: Vec<&Pod> = active.iter().collect();
        let wait = pods::next_availability_check(&refs, min_ready, now)
            .unwrap_or(Duration::from_secs(u64::try_from(min_ready).unwrap_or(1)));
        return Ok(Action::requeue(wait));
    }
    Ok(Action::await_change())
}

fn calculate_status<K: Replicated>(
    owner: &K,
    active: &[Pod],
    terminating: &[Pod],
    manage_error: Option<&ReconcileError>,
    old: &ReplicaStatus,
    now: Timestamp,
) -> ReplicaStatus {
    let template_labels = owner
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let template_selector = Selector::from_map(&template_labels);
    let empty = BTreeMap::new();
    let mut fully_labeled = 0;
    let mut ready = 0;
    let mut available = 0;
    for pod in active {
        if template_selector.matches(pod.metadata.labels.as_ref().unwrap_or(&empty)) {
            fully_labeled += 1;
        }
        if pods::is_ready(pod) {
            ready += 1;
            if pods::is_available(pod, owner.min_ready_seconds(), now) {
                available += 1;
            }
        }
    }
    let mut conditions = old.conditions.clone();
    let failure = conditions
        .iter()
        .position(|c| c.get("type").and_then(|t| t.as_str()) == Some("ReplicaFailure"));
    match (manage_error, failure) {
        (Some(err), None) => {
            let diff = i64::try_from(active.len()).unwrap_or(i64::MAX) - i64::from(owner.replicas());
            let reason = match diff {
                d if d < 0 => "FailedCreate",
                d if d > 0 => "FailedDelete",
                _ => "",
            };
            let message = match err {
                ReconcileError::Kube(err) => api_message(err),
                other => other.to_string(),
            };
            conditions.push(serde_json::json!({
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": pods::now(),
                "reason": reason,
                "message": message,
            }));
        }
        (None, Some(index)) => {
            conditions.remove(index);
        }
        _ => {}
    }
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    ReplicaStatus {
        replicas: count(active.len()),
        fully_labeled_replicas: Some(fully_labeled),
        ready_replicas: Some(ready),
        available_replicas: Some(available),
        terminating_replicas: K::TERMINATING_REPLICAS.then(|| count(terminating.len())),
        observed_generation: old.observed_generation,
        conditions,
    }
}

async fn publish<K: Replicated>(state: &State<K>, owner: &K, type_: EventType, reason: &str, note: String) {
    state
        .recorder
        .publish(K::COMPONENT, &owner.object_ref(&()), type_, reason, note)
        .await;
}

async fn manage_replicas<K: Replicated>(
    owner: &K,
    active: &[Pod],
    context: &Context,
    state: &State<K>,
    key: &str,
) -> Result<(), ReconcileError> {
    let namespace = owner.namespace().unwrap_or_default();
    let name = owner.name_any();
    let pod_api: Api<Pod> = Api::namespaced(context.client.clone(), &namespace);
    let desired = usize::try_from(owner.replicas()).unwrap_or(0);
    if active.len() < desired {
        let Some(template) = owner.template() else {
            return Err(ReconcileError::Invalid("the pod template is missing".into()));
        };
        let count = (desired - active.len()).min(BURST_REPLICAS);
        let pod = pods::pod_from_template(template, &namespace, &name, pods::controller_ref(owner))?;
        state.expectations.expect_creations(key, count);
        // Slow start: batches of 1, 2, 4, ... so a failing template costs one error, not many.
        let mut remaining = count;
        let mut batch = 1usize.min(remaining);
        let mut created = 0usize;
        let mut first_error = None;
        let params = PostParams::default();
        while batch > 0 {
            let results = future::join_all((0..batch).map(|_| pod_api.create(&params, &pod))).await;
            for result in results {
                match result {
                    Ok(created_pod) => {
                        created += 1;
                        publish(
                            state,
                            owner,
                            EventType::Normal,
                            "SuccessfulCreate",
                            format!("Created pod: {}", created_pod.name_any()),
                        )
                        .await;
                    }
                    Err(err) => {
                        if namespace_terminating(&err) {
                            // Pods cannot be created in a terminating namespace; nothing to report.
                            first_error.get_or_insert(None);
                            continue;
                        }
                        publish(
                            state,
                            owner,
                            EventType::Warning,
                            "FailedCreate",
                            format!("Error creating: {}", api_message(&err)),
                        )
                        .await;
                        first_error.get_or_insert(Some(err));
                    }
                }
            }
            if first_error.is_some() {
                break;
            }
            remaining -= batch;
            batch = (batch * 2).min(remaining);
        }
        for _ in created..count {
            state.expectations.creation_observed(key);
        }
        return match first_error.flatten() {
            Some(err) => Err(err.into()),
            None => Ok(()),
        };
    }
    if active.len() > desired {
        let count = (active.len() - desired).min(BURST_REPLICAS);
        let related = related_pods(owner, state);
        let related: Vec<&Pod> = related.iter().map(AsRef::as_ref).collect();
        let candidates: Vec<&Pod> = active.iter().collect();
        let victims = pods::pods_to_delete(&candidates, &related, count);
        let keys: HashSet<String> = victims
            .iter()
            .map(|p| format!("{namespace}/{}", p.name_any()))
            .collect();
        state.expectations.expect_deletions(key, keys);
        let results = future::join_all(victims.iter().map(|pod| {
            let api = pod_api.clone();
            let pod_name = pod.name_any();
            async move {
                (
                    pod_name.clone(),
                    api.delete(&pod_name, &DeleteParams::default()).await,
                )
            }
        }))
        .await;
        let mut first_error = None;
        for (pod_name, result) in results {
            match result {
                Ok(_) => {
                    publish(
                        state,
                        owner,
                        EventType::Normal,
                        "SuccessfulDelete",
                        format!("Deleted pod: {pod_name}"),
                    )
                    .await;
                }
                Err(err) => {
                    state
                        .expectations
                        .deletion_observed(key, &format!("{namespace}/{pod_name}"));
                    if is_not_found(&err) {
                        continue;
                    }
                    publish(
                        state,
                        owner,
                        EventType::Warning,
                        "FailedDelete",
                        format!("Error deleting: {}", api_message(&err)),
                    )
                    .await;
                    first_error.get_or_insert(err);
                }
            }
        }
        if let Some(err) = first_error {
            return Err(err.into());
        }
    }
    Ok(())
}

fn namespace_terminating(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.details.as_ref().is_some_and(|d| {
        d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
    }))
}

/// The pods of every owner that shares this owner's controller (the replica sets of one
/// deployment), for ranking pods by how doubled-up their node is; none without a controller.
fn related_pods<K: Replicated>(owner: &K, state: &State<K>) -> Vec<Arc<Pod>> {
    let namespace = owner.namespace();
    let Some(parent) = controller_of(owner.meta()).map(|r| r.uid.clone()) else {
        return Vec::new();
    };
    let siblings: Vec<Selector> = state
        .owners
        .state()
        .iter()
        .filter(|o| o.namespace() == namespace)
        .filter(|o| controller_of(o.meta()).is_some_and(|r| r.uid == parent))
        .filter_map(|o| o.selector().ok())
        .collect();
    let empty = BTreeMap::new();
    state
        .pods
        .state()
        .into_iter()
        .filter(|p| p.namespace() == namespace)
        .filter(|p| {
            let labels = p.metadata.labels.as_ref().unwrap_or(&empty);
            siblings.iter().any(|s| s.matches(labels))
        })
        .collect()
}
