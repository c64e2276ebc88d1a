//! The disruption controller (upstream: pkg/controller/disruption): the status of every
//! PodDisruptionBudget (expectedPods, currentHealthy, desiredHealthy, disruptionsAllowed,
//! observedGeneration, the `DisruptionAllowed` condition), computed from the pods its selector
//! matches and, for percentages and `maxUnavailable`, from the scale of their controllers
//! (Deployment through its ReplicaSet, ReplicaSet, ReplicationController, StatefulSet, else
//! any resource with a `scale` subresource). Entries the eviction subresource adds to
//! `disruptedPods` are dropped once the pod is deleted or two minutes have passed, with a
//! requeue at that expiry. It also resets `DisruptionTarget` conditions left on pods that
//! were never deleted.
//!
//! It writes only PodDisruptionBudget status and that pod condition; whether an eviction is
//! allowed is decided by the eviction subresource from the status written here.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, future, stream};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, PodCondition, ReplicationController};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DynamicObject, GroupVersionKind, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_conflict, is_not_found};
use crate::int_or_percent::scaled_value;
use crate::pods::{self, Selector, controller_of};

/// The controller's name in `--controllers`.
pub const NAME: &str = "disruption-controller";
/// The event source upstream's disruption controller reports as.
const COMPONENT: &str = "controllermanager";
/// How long an eviction's entry in `disruptedPods` waits for the pod's deletion.
const DELETION_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a `DisruptionTarget` condition may stay on a pod that is not being deleted.
const STALE_POD_DISRUPTION_TIMEOUT: Duration = Duration::from_secs(120);
/// Slack after an expiry, so the requeued sync sees it passed.
const EXPIRY_SLACK: Duration = Duration::from_millis(10);

/// The budget's condition and its reasons.
const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
const SUFFICIENT_PODS: &str = "SufficientPods";
const INSUFFICIENT_PODS: &str = "InsufficientPods";
const SYNC_FAILED: &str = "SyncFailed";
const DISRUPTION_TARGET: &str = "DisruptionTarget";
/// The reason of the kubelet's `DisruptionTarget` conditions, which never go stale.
const TERMINATION_BY_KUBELET: &str = "TerminationByKubelet";

/// Why a budget's status could not be computed; the message becomes the `SyncFailed`
/// condition's.
#[derive(Debug, Error)]
enum SyncError {
    /// An API call failed.
    #[error("{}", api_message(.0))]
    Kube(#[from] kube::Error),
    /// The budget or its pods' controllers cannot be counted (upstream's message).
    #[error("{0}")]
    Invalid(String),
}

fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

struct State {
    pods: Store<Pod>,
    replica_sets: Store<ReplicaSet>,
    deployments: Store<Deployment>,
    replication_controllers: Store<ReplicationController>,
    stateful_sets: Store<StatefulSet>,
}

/// Runs the budget status controller and the stale `DisruptionTarget` cleanup.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (replica_sets, rs_writer) = reflector::store::<ReplicaSet>();
    let (deployments, deployment_writer) = reflector::store::<Deployment>();
    let (replication_controllers, rc_writer) = reflector::store::<ReplicationController>();
    let (stateful_sets, ss_writer) = reflector::store::<StatefulSet>();
    let (stale_sender, stale_receiver) = mpsc::unbounded_channel::<Pod>();

    let controller = Controller::new(
        Api::<PodDisruptionBudget>::all(client.clone()),
        watcher::Config::default(),
    );
    let budgets = controller.store();
    let mapper = PodBudgets::default();
    let pod_events = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(pod_writer)
        .filter_map(|event| future::ready(event.ok()))
        .flat_map(move |event| {
            if let watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) = &event
                && stale_disruption_wait(pod, Timestamp::now()).is_some()
            {
                let _ = stale_sender.send(pod.clone());
            }
            stream::iter(mapper.budgets_for(&event, &budgets))
        });
    let controller = controller.reconcile_on(pod_events);
    let state = Arc::new(State {
        pods: pods.clone(),
        replica_sets,
        deployments,
        replication_controllers,
        stateful_sets,
    });
    let budgets_sync = harness::run(
        NAME,
        controller,
        context.clone(),
        shutdown.clone(),
        move |pdb, context| {
            let state = state.clone();
            async move { Box::pin(reconcile(pdb, context, state)).await }
        },
    );

    let stale_triggers = stream::unfold(stale_receiver, |mut receiver| async move {
        receiver.recv().await.map(|pod| (Ok(pod), receiver))
    });
    let stale_cleanup = harness::run(
        "disruption-stale-pod-disruption",
        Controller::for_stream(stale_triggers, pods),
        context.clone(),
        shutdown.clone(),
        |pod, context| async move { reset_stale_condition(pod, context).await },
    );

    let caches = future::join4(
        drive(Api::<ReplicaSet>::all(client.clone()), rs_writer),
        drive(Api::<Deployment>::all(client.clone()), deployment_writer),
        drive(Api::<ReplicationController>::all(client.clone()), rc_writer),
        drive(Api::<StatefulSet>::all(client), ss_writer),
    );
    tokio::select! {
        _ = future::join(budgets_sync, stale_cleanup) => {}
        _ = caches => {}
        () = shutdown.cancelled() => {}
    }
}

/// Keeps a reflector store of `api` up to date.
async fn drive<K>(api: Api<K>, writer: reflector::store::Writer<K>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .for_each(|_| future::ready(()))
        .await;
}

// ---------------------------------------------------------------------------------------------
// Pods to budgets.

/// The budget's pod selector: `None` selects nothing, an empty selector every pod of the
/// namespace (policy/v1).
fn budget_selector(pdb: &PodDisruptionBudget) -> Result<Option<Selector>, String> {
    match pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        None => Ok(None),
        Some(selector) => Selector::from_label_selector(selector).map(Some),
    }
}

fn selects(pdb: &PodDisruptionBudget, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
    pdb.metadata.namespace.as_deref() == Some(namespace)
        && budget_selector(pdb).is_ok_and(|s| s.is_some_and(|s| s.matches(labels)))
}

/// Maps pod events to the budgets selecting the pod's old or new labels.
#[derive(Default)]
struct PodBudgets {
    labels: Mutex<HashMap<(String, String), BTreeMap<String, String>>>,
}

impl PodBudgets {
    fn budgets_for(
        &self,
        event: &watcher::Event<Pod>,
        budgets: &Store<PodDisruptionBudget>,
    ) -> Vec<ObjectRef<PodDisruptionBudget>> {
        let (pod, deleted) = match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => (pod, false),
            watcher::Event::Delete(pod) => (pod, true),
            watcher::Event::Init | watcher::Event::InitDone => return Vec::new(),
        };
        let namespace = pod.namespace().unwrap_or_default();
        let key = (namespace.clone(), pod.name_any());
        let new = pod.metadata.labels.clone().unwrap_or_default();
        let old = match self.labels.lock() {
            Ok(mut labels) if deleted => labels.remove(&key),
            Ok(mut labels) => labels.insert(key, new.clone()),
            Err(_) => None,
        };
        budgets
            .state()
            .iter()
            .filter(|pdb| {
                selects(pdb, &namespace, &new)
                    || old.as_ref().is_some_and(|old| selects(pdb, &namespace, old))
            })
            .map(|pdb| ObjectRef::from_obj(pdb.as_ref()))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The budget's status.

async fn reconcile(
    pdb: Arc<PodDisruptionBudget>,
    context: Arc<Context>,
    state: Arc<State>,
) -> Result<Action, ReconcileError> {
    let ready = future::join5(
        state.pods.wait_until_ready(),
        state.replica_sets.wait_until_ready(),
        state.deployments.wait_until_ready(),
        state.replication_controllers.wait_until_ready(),
        state.stateful_sets.wait_until_ready(),
    )
    .await;
    if ready.0.is_err() || ready.1.is_err() || ready.2.is_err() || ready.3.is_err() || ready.4.is_err() {
        return Ok(Action::await_change());
    }
    match try_sync(&pdb, &context, &state).await {
        Ok(recheck) => {
            Ok(recheck.map_or_else(Action::await_change, |wait| Action::requeue(wait + EXPIRY_SLACK)))
        }
        // A stale budget: synced again on the watch event, without the fail-safe.
        Err(SyncError::Kube(err)) if is_conflict(&err) => Err(err.into()),
        Err(err) => {
            tracing::warn!(error = %err, "failed to sync the PodDisruptionBudget");
            fail_safe(&pdb, &context, &err.to_string()).await?;
            Ok(Action::await_change())
        }
    }
}

/// Upstream's trySync: the status from the pods; when the next `disruptedPods` entry expires.
async fn try_sync(
    pdb: &PodDisruptionBudget,
    context: &Context,
    state: &State,
) -> Result<Option<Duration>, SyncError> {
    let reference = pdb.object_ref(&());
    let selector = match budget_selector(pdb) {
        Ok(selector) => selector,
        Err(err) => {
            context
                .publish(
                    COMPONENT,
                    &reference,
                    EventType::Warning,
                    "NoPods",
                    format!("Failed to get pods: {err}"),
                )
                .await;
            return Err(SyncError::Invalid(err));
        }
    };
    let namespace = pdb.namespace().unwrap_or_default();
    let empty = BTreeMap::new();
    let mut pods: Vec<Arc<Pod>> = match &selector {
        None => Vec::new(),
        Some(selector) => state
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace.as_str()))
            .filter(|p| selector.matches(p.metadata.labels.as_ref().unwrap_or(&empty)))
            .collect(),
    };
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    if pods.is_empty() {
        context
            .publish(
                COMPONENT,
                &reference,
                EventType::Normal,
                "NoPods",
                "No matching pods found".to_owned(),
            )
            .await;
    }
    let counts = match expected_pod_count(pdb, &pods, context, state).await {
        Ok(counts) => counts,
        Err(err) => {
            context
                .publish(
                    COMPONENT,
                    &reference,
                    EventType::Warning,
                    "CalculateExpectedPodCountFailed",
                    format!("Failed to calculate the number of expected pods: {err}"),
                )
                .await;
            return Err(err);
        }
    };
    if !counts.unmanaged.is_empty() {
        tracing::debug!(pods = ?counts.unmanaged, "found unmanaged pods associated with this PDB");
        let selector = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
        context
            .publish(
                COMPONENT,
                &reference,
                EventType::Warning,
                "UnmanagedPods",
                format!(
                    "Pods selected by this PodDisruptionBudget (selector: {}) were found to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.",
                    go_selector(selector)
                ),
            )
            .await;
    }
    let now = Timestamp::now();
    let (disrupted, recheck, expired) = disrupted_pods(pdb, &pods, now);
    for pod in expired {
        // Upstream prints the budget's namespace twice.
        context
            .publish(
                COMPONENT,
                &pod.object_ref(&()),
                EventType::Warning,
                "NotDeleted",
                format!("Pod was expected by PDB {namespace}/{namespace} to be deleted but it wasn't"),
            )
            .await;
    }
    let healthy = current_healthy(&pods, &disrupted, now);
    update_status(
        pdb,
        context,
        healthy,
        counts.desired_healthy,
        counts.expected,
        disrupted,
    )
    .await?;
    Ok(recheck.map(|at| left(at, now)))
}

/// Now, in the whole seconds a `metav1.Time` keeps.
fn now_seconds() -> Time {
    let now = Timestamp::now();
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// How long from `now` until `at`; zero once past.
fn left(at: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

fn plus(time: Timestamp, duration: Duration) -> Timestamp {
    SignedDuration::try_from(duration)
        .ok()
        .and_then(|d| time.checked_add(d).ok())
        .unwrap_or(time)
}

/// A `*metav1.LabelSelector` as Go's `%v` prints it.
fn go_selector(selector: Option<&LabelSelector>) -> String {
    let Some(selector) = selector else {
        return "nil".to_owned();
    };
    let labels: String = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}: {v},"))
        .collect();
    let expressions: String = selector
        .match_expressions
        .iter()
        .flatten()
        .map(|e| {
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                e.key,
                e.operator,
                e.values.as_deref().unwrap_or_default().join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"
    )
}

/// What the budget expects: the pod count, how many must be healthy, the unmanaged pods.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    expected: i32,
    desired_healthy: i32,
    unmanaged: Vec<String>,
}

/// Upstream's getExpectedPodCount.
async fn expected_pod_count(
    pdb: &PodDisruptionBudget,
    pods: &[Arc<Pod>],
    context: &Context,
    state: &State,
) -> Result<Counts, SyncError> {
    let spec = pdb.spec.as_ref();
    if let Some(max_unavailable) = spec.and_then(|s| s.max_unavailable.as_ref()) {
        let (expected, unmanaged) = expected_scale(pods, context, state).await?;
        let max_unavailable = scaled_value(max_unavailable, expected, true).map_err(SyncError::Invalid)?;
        return Ok(Counts {
            expected,
            desired_healthy: expected.saturating_sub(max_unavailable).max(0),
            unmanaged,
        });
    }
    match spec.and_then(|s| s.min_available.as_ref()) {
        None => Ok(Counts::default()),
        Some(IntOrString::Int(min)) => Ok(Counts {
            expected: i32::try_from(pods.len()).unwrap_or(i32::MAX),
            desired_healthy: *min,
            unmanaged: Vec::new(),
        }),
        Some(percent @ IntOrString::String(_)) => {
            let (expected, unmanaged) = expected_scale(pods, context, state).await?;
            Ok(Counts {
                expected,
                desired_healthy: scaled_value(percent, expected, true).map_err(SyncError::Invalid)?,
                unmanaged,
            })
        }
    }
}

/// Upstream's getExpectedScale: the summed scale of the pods' controllers, and the pods
/// without a controller.
async fn expected_scale(
    pods: &[Arc<Pod>],
    context: &Context,
    state: &State,
) -> Result<(i32, Vec<String>), SyncError> {
    let mut scales: BTreeMap<String, i32> = BTreeMap::new();
    let mut unmanaged = Vec::new();
    for pod in pods {
        let Some(reference) = controller_of(&pod.metadata) else {
            unmanaged.push(pod.name_any());
            continue;
        };
        if scales.contains_key(&reference.uid) {
            continue;
        }
        let namespace = pod.namespace().unwrap_or_default();
        match controller_scale(reference, &namespace, context, state).await? {
            Some((uid, scale)) => {
                scales.insert(uid, scale);
            }
            None => {
                return Err(SyncError::Invalid(format!(
                    "found no controllers for pod {:?}",
                    pod.name_any()
                )));
            }
        }
    }
    let expected = scales
        .values()
        .fold(0i32, |sum, scale| sum.saturating_add(*scale));
    Ok((expected, unmanaged))
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
fn group_version(api_version: &str) -> Result<(&str, &str), SyncError> {
    match api_version.split_once('/') {
        None => Ok(("", api_version)),
        Some((group, version)) if !version.contains('/') => Ok((group, version)),
        Some(_) => Err(SyncError::Invalid(format!(
            "unexpected GroupVersion string: {api_version}"
        ))),
    }
}

/// Whether `reference` names `kind` in one of `groups` (upstream's verifyGroupKind).
fn is_kind(reference: &OwnerReference, kind: &str, groups: &[&str]) -> Result<bool, SyncError> {
    let (group, _) = group_version(&reference.api_version)?;
    Ok(reference.kind == kind && groups.contains(&group))
}

/// The controller a pod's controller reference names and its scale, as upstream's finders
/// try them: ReplicationController, the Deployment of a ReplicaSet, a ReplicaSet not
/// controlled by a Deployment, StatefulSet, then the `scale` subresource of anything else.
async fn controller_scale(
    reference: &OwnerReference,
    namespace: &str,
    context: &Context,
    state: &State,
) -> Result<Option<(String, i32)>, SyncError> {
    let uid_matches = |uid: Option<&String>| uid == Some(&reference.uid);
    let key = |name: &str| (name.to_owned(), namespace.to_owned());
    if is_kind(reference, "ReplicationController", &[""])? {
        let (name, ns) = key(&reference.name);
        if let Some(rc) = state
            .replication_controllers
            .get(&ObjectRef::new(&name).within(&ns))
            .filter(|rc| uid_matches(rc.metadata.uid.as_ref()))
        {
            let replicas = rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            return Ok(Some((reference.uid.clone(), replicas)));
        }
    }
    if is_kind(reference, "ReplicaSet", &["apps", "extensions"])? {
        let (name, ns) = key(&reference.name);
        if let Some(rs) = state
            .replica_sets
            .get(&ObjectRef::new(&name).within(&ns))
            .filter(|rs| uid_matches(rs.metadata.uid.as_ref()))
        {
            match controller_of(&rs.metadata) {
                Some(owner) if is_kind(owner, "Deployment", &["apps", "extensions"])? => {
                    if let Some(deployment) = state
                        .deployments
                        .get(&ObjectRef::new(&owner.name).within(&ns))
                        .filter(|d| d.metadata.uid.as_ref() == Some(&owner.uid))
                    {
                        let replicas = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                        return Ok(Some((owner.uid.clone(), replicas)));
                    }
                }
                // A replica set of a deployment is never counted on its own.
                Some(owner) if owner.kind == "Deployment" => {}
                _ => {
                    let replicas = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                    return Ok(Some((reference.uid.clone(), replicas)));
                }
            }
        }
    }
    if is_kind(reference, "StatefulSet", &["apps"])? {
        let (name, ns) = key(&reference.name);
        if let Some(set) = state
            .stateful_sets
            .get(&ObjectRef::new(&name).within(&ns))
            .filter(|s| uid_matches(s.metadata.uid.as_ref()))
        {
            let replicas = set.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            return Ok(Some((reference.uid.clone(), replicas)));
        }
    }
    scale_of(reference, namespace, context).await
}

/// The scale of any resource through its `scale` subresource (upstream's getScaleController).
async fn scale_of(
    reference: &OwnerReference,
    namespace: &str,
    context: &Context,
) -> Result<Option<(String, i32)>, SyncError> {
    let (group, version) = group_version(&reference.api_version)?;
    let gvk = GroupVersionKind::gvk(group, version, &reference.kind);
    let no_match = || {
        let version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        SyncError::Invalid(format!(
            "no matches for kind {:?} in version {version:?}",
            reference.kind
        ))
    };
    let (resource, capabilities) = match kube::discovery::pinned_kind(&context.client, &gvk).await {
        Ok(found) => found,
        Err(kube::Error::Discovery(_)) => return Err(no_match()),
        Err(err) if is_not_found(&err) => return Err(no_match()),
        Err(err) => return Err(err.into()),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(context.client.clone(), namespace, &resource);
    match api.get_scale(&reference.name).await {
        Ok(scale) => {
            if scale.metadata.uid.as_deref() != Some(reference.uid.as_str()) {
                return Ok(None);
            }
            let replicas = scale.spec.and_then(|s| s.replicas).unwrap_or(0);
            Ok(Some((reference.uid.clone(), replicas)))
        }
        Err(err) if is_not_found(&err) => {
            if capabilities
                .subresources
                .iter()
                .any(|(sub, _)| sub.plural == "scale")
            {
                return Ok(None);
            }
            let group_resource = if resource.group.is_empty() {
                resource.plural.clone()
            } else {
                format!("{}.{}", resource.plural, resource.group)
            };
            Err(SyncError::Invalid(format!(
                "{group_resource} does not implement the scale subresource"
            )))
        }
        Err(err) => Err(err.into()),
    }
}

/// Upstream's buildDisruptedPodMap: the entries of pods still waiting for their deletion, the
/// earliest expiry among them, and the pods whose entry expired.
fn disrupted_pods(
    pdb: &PodDisruptionBudget,
    pods: &[Arc<Pod>],
    now: Timestamp,
) -> (BTreeMap<String, Time>, Option<Timestamp>, Vec<Arc<Pod>>) {
    let mut kept = BTreeMap::new();
    let mut recheck: Option<Timestamp> = None;
    let mut expired = Vec::new();
    let Some(recorded) = pdb.status.as_ref().and_then(|s| s.disrupted_pods.as_ref()) else {
        return (kept, recheck, expired);
    };
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(time) = recorded.get(&pod.name_any()) else {
            continue;
        };
        let expected_deletion = plus(time.0, DELETION_TIMEOUT);
        if expected_deletion < now {
            expired.push(pod.clone());
        } else {
            recheck = Some(recheck.map_or(expected_deletion, |r| r.min(expected_deletion)));
            kept.insert(pod.name_any(), time.clone());
        }
    }
    (kept, recheck, expired)
}

/// Upstream's countHealthyPods: ready pods neither being deleted nor about to be.
fn current_healthy(pods: &[Arc<Pod>], disrupted: &BTreeMap<String, Time>, now: Timestamp) -> i32 {
    let healthy = pods
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter(|pod| {
            disrupted
                .get(&pod.name_any())
                .is_none_or(|time| plus(time.0, DELETION_TIMEOUT) <= now)
        })
        .filter(|pod| pods::is_ready(pod))
        .count();
    i32::try_from(healthy).unwrap_or(i32::MAX)
}

/// Upstream's SetStatusCondition: the transition time changes only with the status.
fn set_condition(conditions: &mut Vec<Condition>, mut condition: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            if existing.status != condition.status {
                existing.status = condition.status;
                existing.last_transition_time = condition.last_transition_time;
            }
            existing.reason = condition.reason;
            existing.message = condition.message;
            existing.observed_generation = condition.observed_generation;
        }
        None => {
            condition.last_transition_time = now_seconds();
            conditions.push(condition);
        }
    }
}

/// The `DisruptionAllowed` condition for the status's `disruptionsAllowed`.
fn allowed_condition(status: &PodDisruptionBudgetStatus) -> Condition {
    let (state, reason) = if status.disruptions_allowed > 0 {
        ("True", SUFFICIENT_PODS)
    } else {
        ("False", INSUFFICIENT_PODS)
    };
    Condition {
        type_: DISRUPTION_ALLOWED.to_owned(),
        status: state.to_owned(),
        reason: reason.to_owned(),
        message: String::new(),
        observed_generation: status.observed_generation,
        last_transition_time: now_seconds(),
    }
}

/// Upstream's ConditionsAreUpToDate.
fn conditions_up_to_date(pdb: &PodDisruptionBudget) -> bool {
    let Some(status) = pdb.status.as_ref() else {
        return false;
    };
    let Some(condition) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == DISRUPTION_ALLOWED)
    else {
        return false;
    };
    if status.observed_generation != pdb.metadata.generation {
        return false;
    }
    let wanted = allowed_condition(status);
    condition.status == wanted.status && condition.reason == wanted.reason
}

/// The status upstream's updatePdbStatus writes, or `None` when the current one is up to date.
fn next_status(
    pdb: &PodDisruptionBudget,
    current_healthy: i32,
    desired_healthy: i32,
    expected: i32,
    disrupted: BTreeMap<String, Time>,
) -> Option<PodDisruptionBudgetStatus> {
    // A budget matching no pods yet is safe when its first pods appear before this runs.
    let mut allowed = current_healthy - desired_healthy;
    if expected <= 0 || allowed <= 0 {
        allowed = 0;
    }
    let old = pdb.status.clone().unwrap_or_default();
    let old_disrupted = old.disrupted_pods.clone().unwrap_or_default();
    if old.current_healthy == current_healthy
        && old.desired_healthy == desired_healthy
        && old.expected_pods == expected
        && old.disruptions_allowed == allowed
        && old_disrupted == disrupted
        && old.observed_generation == pdb.metadata.generation
        && conditions_up_to_date(pdb)
    {
        return None;
    }
    let mut status = PodDisruptionBudgetStatus {
        current_healthy,
        desired_healthy,
        expected_pods: expected,
        disruptions_allowed: allowed,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: pdb.metadata.generation,
        conditions: old.conditions,
    };
    let mut conditions = status.conditions.take().unwrap_or_default();
    set_condition(&mut conditions, allowed_condition(&status));
    status.conditions = Some(conditions);
    Some(status)
}

async fn update_status(
    pdb: &PodDisruptionBudget,
    context: &Context,
    current_healthy: i32,
    desired_healthy: i32,
    expected: i32,
    disrupted: BTreeMap<String, Time>,
) -> Result<(), SyncError> {
    let Some(status) = next_status(pdb, current_healthy, desired_healthy, expected, disrupted) else {
        return Ok(());
    };
    write_status(pdb, context, status).await
}

async fn write_status(
    pdb: &PodDisruptionBudget,
    context: &Context,
    status: PodDisruptionBudgetStatus,
) -> Result<(), SyncError> {
    let mut next = pdb.clone();
    next.status = Some(status);
    next.metadata.managed_fields = None;
    let api: Api<PodDisruptionBudget> =
        Api::namespaced(context.client.clone(), &pdb.namespace().unwrap_or_default());
    match api
        .replace_status(&pdb.name_any(), &PostParams::default(), &next)
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Upstream's failSafe: no disruptions allowed, with the reason the sync failed.
async fn fail_safe(
    pdb: &PodDisruptionBudget,
    context: &Context,
    message: &str,
) -> Result<(), ReconcileError> {
    let mut status = pdb.status.clone().unwrap_or_default();
    let old = status.clone();
    status.disruptions_allowed = 0;
    let mut conditions = status.conditions.take().unwrap_or_default();
    set_condition(
        &mut conditions,
        Condition {
            type_: DISRUPTION_ALLOWED.to_owned(),
            status: "False".to_owned(),
            reason: SYNC_FAILED.to_owned(),
            message: message.to_owned(),
            observed_generation: status.observed_generation,
            last_transition_time: now_seconds(),
        },
    );
    status.conditions = Some(conditions);
    if status == old {
        return Ok(());
    }
    match write_status(pdb, context, status).await {
        Ok(()) => Ok(()),
        Err(SyncError::Kube(err)) => Err(err.into()),
        Err(SyncError::Invalid(message)) => Err(ReconcileError::Invalid(message)),
    }
}

// ---------------------------------------------------------------------------------------------
// Stale DisruptionTarget conditions.

/// How long until the pod's `DisruptionTarget` condition counts as stale (zero: now), or
/// `None` if it has none that can go stale: the pod is being deleted or finished, or the
/// kubelet set it.
fn stale_disruption_wait(pod: &Pod, now: Timestamp) -> Option<Duration> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    if matches!(status.phase.as_deref(), Some("Succeeded" | "Failed")) {
        return None;
    }
    let condition = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == DISRUPTION_TARGET)?;
    if condition.status != "True" || condition.reason.as_deref() == Some(TERMINATION_BY_KUBELET) {
        return None;
    }
    let since = condition.last_transition_time.as_ref().map_or(now, |t| t.0);
    Some(left(plus(since, STALE_POD_DISRUPTION_TIMEOUT), now))
}

/// Upstream's syncStalePodDisruption: sets a stale `DisruptionTarget` condition to False.
async fn reset_stale_condition(pod: Arc<Pod>, context: Arc<Context>) -> Result<Action, ReconcileError> {
    let Some(wait) = stale_disruption_wait(&pod, Timestamp::now()) else {
        return Ok(Action::await_change());
    };
    if !wait.is_zero() {
        return Ok(Action::requeue(wait + EXPIRY_SLACK));
    }
    let mut next = (*pod).clone();
    next.metadata.managed_fields = None;
    if let Some(condition) = next
        .status
        .as_mut()
        .and_then(|s| s.conditions.as_mut())
        .and_then(|c| c.iter_mut().find(|c| c.type_ == DISRUPTION_TARGET))
    {
        *condition = PodCondition {
            type_: DISRUPTION_TARGET.to_owned(),
            status: "False".to_owned(),
            observed_generation: pod.metadata.generation,
            last_transition_time: Some(now_seconds()),
            ..PodCondition::default()
        };
    }
    let api: Api<Pod> = Api::namespaced(context.client.clone(), &pod.namespace().unwrap_or_default());
    match api
        .replace_status(&pod.name_any(), &PostParams::default(), &next)
        .await
    {
        Ok(_) => {
            tracing::info!(pod = %pods::key(&pod), "reset stale DisruptionTarget condition to False");
            Ok(Action::await_change())
        }
        Err(err) if is_not_found(&err) => Ok(Action::await_change()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pdb(value: serde_json::Value) -> PodDisruptionBudget {
        serde_json::from_value(value).unwrap()
    }

    fn pod(name: &str, ready: bool) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns"},
                "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
            }))
            .unwrap(),
        )
    }

    #[test]
    fn status_allows_disruptions_only_above_the_desired_count() {
        let budget = pdb(json!({"metadata": {"name": "b", "namespace": "ns", "generation": 2}}));
        let status = next_status(&budget, 3, 2, 3, BTreeMap::new()).unwrap();
        assert_eq!(status.disruptions_allowed, 1);
        assert_eq!(status.observed_generation, Some(2));
        let condition = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (condition.status.as_str(), condition.reason.as_str()),
            ("True", SUFFICIENT_PODS)
        );
        // Expected pods of zero allow nothing, whatever the counts.
        let status = next_status(&budget, 3, 0, 0, BTreeMap::new()).unwrap();
        assert_eq!(status.disruptions_allowed, 0);
        assert_eq!(status.conditions.unwrap()[0].reason, INSUFFICIENT_PODS);
        // An up-to-date status is not written again.
        let mut written = budget.clone();
        written.status = next_status(&budget, 3, 2, 3, BTreeMap::new());
        assert!(next_status(&written, 3, 2, 3, BTreeMap::new()).is_none());
        assert!(next_status(&written, 2, 2, 3, BTreeMap::new()).is_some());
    }

    #[test]
    fn disrupted_pods_expire_after_two_minutes() {
        let now: Timestamp = "2024-01-01T00:10:00Z".parse().unwrap();
        let budget = pdb(json!({
            "metadata": {"name": "b", "namespace": "ns"},
            "status": {"disruptedPods": {
                "fresh": "2024-01-01T00:09:30Z",
                "old": "2024-01-01T00:07:00Z",
                "gone": "2024-01-01T00:09:50Z",
            }, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0, "disruptionsAllowed": 0},
        }));
        let pods = vec![pod("fresh", true), pod("old", true), pod("other", true)];
        let (kept, recheck, expired) = disrupted_pods(&budget, &pods, now);
        assert_eq!(kept.keys().collect::<Vec<_>>(), vec!["fresh"]);
        assert_eq!(recheck, Some("2024-01-01T00:11:30Z".parse().unwrap()));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].name_any(), "old");
        // A pod about to be deleted is not healthy; the others count if ready.
        let pods = vec![pod("fresh", true), pod("old", true), pod("unready", false)];
        assert_eq!(current_healthy(&pods, &kept, now), 1);
    }

    #[test]
    fn stale_disruption_target_waits_two_minutes_unless_kubelet_set_it() {
        let now: Timestamp = "2024-01-01T00:10:00Z".parse().unwrap();
        let pod = |reason: &str, since: &str, deleting: bool| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": "p", "namespace": "ns",
                    "deletionTimestamp": if deleting { Some("2024-01-01T00:00:00Z") } else { None }},
                "status": {"phase": "Running", "conditions": [
                    {"type": "DisruptionTarget", "status": "True", "reason": reason, "lastTransitionTime": since}
                ]},
            }))
            .unwrap()
        };
        assert_eq!(
            stale_disruption_wait(&pod("EvictionByEvictionAPI", "2024-01-01T00:09:00Z", false), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            stale_disruption_wait(&pod("EvictionByEvictionAPI", "2024-01-01T00:00:00Z", false), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            stale_disruption_wait(&pod("TerminationByKubelet", "2024-01-01T00:00:00Z", false), now),
            None
        );
        assert_eq!(
            stale_disruption_wait(&pod("EvictionByEvictionAPI", "2024-01-01T00:00:00Z", true), now),
            None
        );
    }

    #[test]
    fn selectors_print_as_go_does() {
        let selector: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web", "a": "b"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["x", "y"]}],
        }))
        .unwrap();
        assert_eq!(
            go_selector(Some(&selector)),
            "&LabelSelector{MatchLabels:map[string]string{a: b,app: web,},MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:tier,Operator:In,Values:[x y],},},}"
        );
    }
}
