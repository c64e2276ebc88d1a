//! The DaemonSet controller (upstream: pkg/controller/daemon): one daemon pod on every node
//! that should run one ([`placement`]), created pinned to its node by a required node affinity
//! and left to the default scheduler; pods on nodes that no longer qualify deleted, failed daemon
//! pods killed and recreated with backoff; ControllerRevisions named by template hash
//! ([`revisions`]); RollingUpdate with maxUnavailable or maxSurge, and OnDelete ([`update`]);
//! status and events as upstream. It never changes a DaemonSet's spec and never binds pods.

mod placement;
mod revisions;
mod update;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{TryStreamExt, future};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_not_found};
use crate::pods::{self, Expectations, RefManager, Selector, controller_of};
use placement::Fit;

/// The controller's name in `--controllers`.
pub const NAME: &str = "daemonset-controller";
const COMPONENT: &str = "daemonset-controller";
const KIND: &str = "DaemonSet";
/// The most pods one sync creates or deletes (upstream's BurstReplicas).
const BURST_REPLICAS: usize = 250;
/// The first delay before a failed daemon pod on a node is killed again, and the longest.
const FAILED_POD_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(15 * 60));

const SELECTING_ALL: &str = "SelectingAll";
const FAILED_DAEMON_POD: &str = "FailedDaemonPod";
const SUCCEEDED_DAEMON_POD: &str = "SucceededDaemonPod";

/// What the controller keeps between reconciles.
struct State {
    pods: Store<Pod>,
    nodes: Store<Node>,
    revisions: Store<ControllerRevision>,
    /// Pod creations each DaemonSet (by UID) waits to see.
    creations: Expectations,
    /// Pod deletions each DaemonSet (by UID) waits to see.
    deletions: Expectations,
    failed_pods: Mutex<Backoff>,
}

impl State {
    fn satisfied(&self, key: &str) -> bool {
        self.creations.satisfied(key) && self.deletions.satisfied(key)
    }
}

/// Runs the DaemonSet controller.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (nodes, node_writer) = reflector::store::<Node>();
    let (revisions, revision_writer) = reflector::store::<ControllerRevision>();
    let controller = Controller::new(Api::<DaemonSet>::all(client.clone()), watcher::Config::default());
    let daemon_sets = controller.store();
    let state = Arc::new(State {
        pods: pods.clone(),
        nodes,
        revisions,
        creations: Expectations::default(),
        deletions: Expectations::default(),
        failed_pods: Mutex::new(Backoff::default()),
    });
    let observer = state.clone();
    let known = pods.clone();
    // Expectations are settled from the raw events, before the cache applies them, so a new
    // pod is told apart from an update of one already known.
    let pod_events = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .inspect_ok(move |event| {
            let seen = |pod: &Pod| known.get(&ObjectRef::from_obj(pod)).is_some();
            observer.creations.observe(KIND, event, seen);
            observer.deletions.observe(KIND, event, seen);
        })
        .reflect(pod_writer)
        .touched_objects();
    let mut placements = NodePlacements::default();
    let node_events = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(node_writer)
        .try_filter_map(move |event| future::ready(Ok(placements.changed(event))));
    let revision_events = watcher(
        Api::<ControllerRevision>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(revision_writer)
    .touched_objects();
    let owners = daemon_sets.clone();
    let (node_owners, node_pods) = (daemon_sets.clone(), pods.clone());
    let controller = controller
        .watches_stream(pod_events, move |pod: Pod| daemon_sets_of_pod(&owners, &pod))
        .watches_stream(node_events, move |node: Node| {
            daemon_sets_for_node(&node_owners, &node_pods, &node)
        })
        .owns_stream(revision_events);
    harness::run(NAME, controller, context, shutdown, move |object, context| {
        let state = state.clone();
        async move { Box::pin(reconcile(object, context, state)).await }
    })
    .await;
}

/// The DaemonSets to sync for a pod event: its controller, or for an orphan every DaemonSet
/// in its namespace whose selector matches it.
fn daemon_sets_of_pod(daemon_sets: &Store<DaemonSet>, pod: &Pod) -> Vec<ObjectRef<DaemonSet>> {
    let namespace = pod.namespace().unwrap_or_default();
    if let Some(reference) = controller_of(&pod.metadata) {
        if reference.kind == KIND {
            return vec![ObjectRef::new(&reference.name).within(&namespace)];
        }
        return Vec::new();
    }
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    daemon_sets
        .state()
        .iter()
        .filter(|ds| ds.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|ds| selector_of(ds).is_ok_and(|s| !s.is_empty() && s.matches(labels)))
        .map(|ds| ObjectRef::from_obj(ds.as_ref()))
        .collect()
}

/// The labels and taints of every node last seen: upstream ignores node updates that change
/// neither (`shouldIgnoreNodeUpdate`).
#[derive(Default)]
struct NodePlacements {
    seen: HashMap<String, Placement>,
}

/// What of a node decides where daemon pods go: its labels and taints.
type Placement = (Option<BTreeMap<String, String>>, Option<Vec<Taint>>);

impl NodePlacements {
    /// The node of a watch event when its labels or taints differ from the last time it was
    /// seen (or it is new); deleted nodes are forgotten.
    fn changed(&mut self, event: watcher::Event<Node>) -> Option<Node> {
        let node = match event {
            watcher::Event::Apply(node) | watcher::Event::InitApply(node) => node,
            watcher::Event::Delete(node) => {
                self.seen.remove(&node.name_any());
                return None;
            }
            watcher::Event::Init | watcher::Event::InitDone => return None,
        };
        let placement = (
            node.metadata.labels.clone().filter(|l| !l.is_empty()),
            node.spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .filter(|t| !t.is_empty()),
        );
        (self.seen.insert(node.name_any(), placement.clone()) != Some(placement)).then_some(node)
    }
}

/// Upstream's `syncNodeUpdate`: the DaemonSets a node change matters to (a pod to create or
/// delete there, or a misscheduled count to recompute).
fn daemon_sets_for_node(
    daemon_sets: &Store<DaemonSet>,
    pods: &Store<Pod>,
    node: &Node,
) -> Vec<ObjectRef<DaemonSet>> {
    let name = node.name_any();
    let mut scheduled: HashSet<(String, String)> = HashSet::new();
    for pod in pods.state() {
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(name.as_str()) {
            continue;
        }
        if let Some(reference) = controller_of(&pod.metadata).filter(|r| r.kind == KIND) {
            scheduled.insert((pod.namespace().unwrap_or_default(), reference.name.clone()));
        }
    }
    daemon_sets
        .state()
        .iter()
        .filter(|ds| {
            let Some(spec) = ds.spec.as_ref() else {
                return false;
            };
            let fit = placement::node_should_run(node, &spec.template);
            let has_pod = scheduled.contains(&(ds.namespace().unwrap_or_default(), ds.name_any()));
            let misscheduled = ds.status.as_ref().is_some_and(|s| s.number_misscheduled > 0);
            let create = fit.should_run && !has_pod;
            let delete = !fit.should_continue_running && has_pod;
            let recount = has_pod && misscheduled;
            create || delete || recount
        })
        .map(|ds| ObjectRef::from_obj(ds.as_ref()))
        .collect()
}

fn selector_of(ds: &DaemonSet) -> Result<Selector, String> {
    ds.spec.as_ref().map_or(Ok(Selector::default()), |s| {
        Selector::from_label_selector(&s.selector)
    })
}

/// The DaemonSet's template generation annotation (none when absent or not a number).
fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.annotations()
        .get(placement::TEMPLATE_GENERATION_ANNOTATION)
        .and_then(|g| g.parse().ok())
}

fn min_ready_seconds(ds: &DaemonSet) -> i32 {
    ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0)
}

fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// An event to publish about a DaemonSet.
struct Note {
    type_: EventType,
    reason: &'static str,
    message: String,
}

async fn publish(context: &Context, ds: &DaemonSet, note: Note) {
    context
        .publish(
            COMPONENT,
            &ds.object_ref(&()),
            note.type_,
            note.reason,
            note.message,
        )
        .await;
}

/// The pods of one sync, grouped by the node they are meant for.
type PodsByNode = BTreeMap<String, Vec<Pod>>;

/// Upstream's `getNodesToDaemonPods`: claimed pods by target node; finished pods being deleted
/// are left out unless `include_deleted_terminal`.
fn pods_by_node(pods: &[Pod], include_deleted_terminal: bool) -> PodsByNode {
    let mut by_node = PodsByNode::new();
    for pod in pods {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let terminal = matches!(phase, Some("Succeeded" | "Failed"));
        if !include_deleted_terminal && terminal && pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if let Some(node) = placement::target_node(pod) {
            by_node.entry(node).or_default().push(pod.clone());
        }
    }
    by_node
}

async fn reconcile(
    ds: Arc<DaemonSet>,
    context: Arc<Context>,
    state: Arc<State>,
) -> Result<Action, ReconcileError> {
    if state.pods.wait_until_ready().await.is_err()
        || state.nodes.wait_until_ready().await.is_err()
        || state.revisions.wait_until_ready().await.is_err()
    {
        return Ok(Action::await_change());
    }
    let Some(spec) = ds.spec.as_ref() else {
        return Ok(Action::await_change());
    };
    let selector_empty = spec.selector.match_labels.as_ref().is_none_or(BTreeMap::is_empty)
        && spec.selector.match_expressions.as_ref().is_none_or(Vec::is_empty);
    if selector_empty {
        let note = Note {
            type_: EventType::Warning,
            reason: SELECTING_ALL,
            message: "This daemon set is selecting all pods. A non-empty selector is required.".into(),
        };
        publish(&context, &ds, note).await;
        return Ok(Action::await_change());
    }
    // The history of a DaemonSet being deleted may already be gone or orphaned: its status
    // cannot be computed reliably, so nothing is done.
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let selector = match selector_of(&ds) {
        Ok(selector) => selector,
        Err(err) => {
            tracing::warn!(error = %err, "invalid selector");
            return Ok(Action::await_change());
        }
    };
    let key = ds.meta().uid.clone().unwrap_or_default();
    let pods = claim_pods(&ds, &selector, &context, &state).await?;
    let (current, old) = revisions::construct(&ds, &selector, &pods, &context, &state.revisions).await?;
    let hash = current
        .labels()
        .get(placement::REVISION_HASH_LABEL)
        .cloned()
        .unwrap_or_default();
    let nodes: Vec<Arc<Node>> = state.nodes.state();
    let mut requeue = None;
    if !state.satisfied(&key) {
        // Only the status: the controller has not acted on this generation.
        requeue = update_status(&ds, &nodes, &pods, &hash, false, &context).await?;
        return Ok(requeue.map_or_else(Action::await_change, Action::requeue));
    }
    let result = Box::pin(update_daemon_set(
        &ds, &nodes, &pods, &hash, &old, &context, &state, &key,
    ))
    .await;
    let status = update_status(&ds, &nodes, &pods, &hash, true, &context).await;
    let delay = match (result, status) {
        (Err(err), Err(status_err)) => {
            tracing::warn!(error = %status_err, "updating the status");
            return Err(err);
        }
        (Err(err), _) | (_, Err(err)) => return Err(err),
        (Ok(a), Ok(b)) => [a, b].into_iter().flatten().min(),
    };
    requeue = requeue.or(delay);
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Upstream's `getDaemonPods`: the pods of the namespace this DaemonSet owns or may adopt,
/// claimed by its selector.
async fn claim_pods(
    ds: &DaemonSet,
    selector: &Selector,
    context: &Context,
    state: &State,
) -> Result<Vec<Pod>, ReconcileError> {
    let namespace = ds.namespace().unwrap_or_default();
    let uid = ds.meta().uid.clone();
    let candidates: Vec<Pod> = state
        .pods
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|p| controller_of(&p.metadata).is_none_or(|r| Some(&r.uid) == uid.as_ref()))
        .map(|p| (**p).clone())
        .collect();
    let api: Api<Pod> = Api::namespaced(context.client.clone(), &namespace);
    let mut manager = ref_manager(ds, selector, context);
    manager.claim(&api, candidates).await
}

/// A claim manager for `ds`, re-reading it once before the first adoption.
fn ref_manager<'a>(
    ds: &'a DaemonSet,
    selector: &'a Selector,
    context: &Context,
) -> RefManager<'a, DaemonSet> {
    let api: Api<DaemonSet> = Api::namespaced(context.client.clone(), &ds.namespace().unwrap_or_default());
    let name = ds.name_any();
    RefManager::new(
        ds,
        selector,
        Box::new(move || {
            let api = api.clone();
            let name = name.clone();
            Box::pin(async move { api.get_opt(&name).await })
        }),
    )
}

/// Upstream's `updateDaemonSet`: manage, then roll out when nothing is pending, then prune the
/// history. Returns when to look again.
#[allow(clippy::too_many_arguments)]
async fn update_daemon_set(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    pods: &[Pod],
    hash: &str,
    old: &[ControllerRevision],
    context: &Context,
    state: &State,
    key: &str,
) -> Result<Option<Duration>, ReconcileError> {
    let by_node = pods_by_node(pods, false);
    let plan = {
        let Ok(mut backoff) = state.failed_pods.lock() else {
            return Err(ReconcileError::Invalid(
                "the failed pod backoff is poisoned".into(),
            ));
        };
        manage(
            ds,
            nodes,
            &by_node,
            hash,
            Timestamp::now(),
            &mut backoff,
            Instant::now(),
        )
    };
    for note in plan.notes {
        publish(context, ds, note).await;
    }
    Box::pin(sync_nodes(
        ds,
        plan.delete,
        plan.create,
        hash,
        context,
        state,
        key,
    ))
    .await?;

    if state.satisfied(key) && update::is_rolling(ds) {
        let (delete, create) = update::rolling_update(ds, nodes, by_node, hash, Timestamp::now())?;
        Box::pin(sync_nodes(ds, delete, create, hash, context, state, key)).await?;
    }
    revisions::cleanup(ds, old, pods, context).await?;
    Ok(plan.requeue)
}

/// What one manage pass does.
#[derive(Default)]
struct Plan {
    /// Nodes that need a daemon pod.
    create: Vec<String>,
    /// Names of pods to delete.
    delete: Vec<String>,
    notes: Vec<Note>,
    /// When a failed pod in backoff may be killed.
    requeue: Option<Duration>,
}

/// Upstream's `manage` (without the I/O): what to create and delete on every node.
fn manage(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    by_node: &PodsByNode,
    hash: &str,
    now: Timestamp,
    backoff: &mut Backoff,
    instant: Instant,
) -> Plan {
    let mut plan = Plan::default();
    let Some(spec) = ds.spec.as_ref() else {
        return plan;
    };
    backoff.gc(instant);
    for node in nodes {
        let fit = placement::node_should_run(node, &spec.template);
        pods_should_be_on_node(ds, node, fit, by_node, hash, now, backoff, instant, &mut plan);
    }
    // Unscheduled pods meant for nodes that no longer exist: nothing else would delete them.
    let existing: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
    for (node, pods) in by_node {
        if existing.contains(node) {
            continue;
        }
        for pod in pods {
            if pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_none_or(str::is_empty)
            {
                plan.delete.push(pod.name_any());
            }
        }
    }
    plan
}

/// Upstream's `podsShouldBeOnNode`.
#[allow(clippy::too_many_arguments)]
fn pods_should_be_on_node(
    ds: &DaemonSet,
    node: &Node,
    fit: Fit,
    by_node: &PodsByNode,
    hash: &str,
    now: Timestamp,
    backoff: &mut Backoff,
    instant: Instant,
    plan: &mut Plan,
) {
    let node_name = node.name_any();
    let daemon_pods = by_node.get(&node_name);
    match daemon_pods {
        None if fit.should_run => plan.create.push(node_name),
        _ if fit.should_continue_running => {
            let mut running: Vec<&Pod> = Vec::new();
            for pod in daemon_pods.into_iter().flatten() {
                if pod.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let namespace = pod.namespace().unwrap_or_default();
                let pod_name = pod.name_any();
                match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
                    Some("Failed") => {
                        // Kubelets may reject daemon pods over and over: back off per node.
                        let observed = ds
                            .status
                            .as_ref()
                            .and_then(|s| s.observed_generation)
                            .unwrap_or(0);
                        let key = format!(
                            "{}/{observed}/{node_name}",
                            ds.meta().uid.clone().unwrap_or_default()
                        );
                        if let Some(delay) = backoff.in_backoff(&key, instant) {
                            plan.requeue = Some(plan.requeue.map_or(delay, |d| d.min(delay)));
                            continue;
                        }
                        backoff.next(&key, instant);
                        plan.notes.push(Note {
                            type_: EventType::Warning,
                            reason: FAILED_DAEMON_POD,
                            message: format!(
                                "Found failed daemon pod {namespace}/{pod_name} on node {node_name}, will try to kill it"
                            ),
                        });
                        plan.delete.push(pod_name);
                    }
                    Some("Succeeded") => {
                        plan.notes.push(Note {
                            type_: EventType::Normal,
                            reason: SUCCEEDED_DAEMON_POD,
                            message: format!(
                                "Found succeeded daemon pod {namespace}/{pod_name} on node {node_name}, will try to delete it"
                            ),
                        });
                        plan.delete.push(pod_name);
                    }
                    _ => running.push(pod),
                }
            }
            running.sort_by(|a, b| placement::by_creation_and_phase(a, b));
            if !update::allows_surge(ds) {
                // Without surge, only the oldest pod stays.
                plan.delete.extend(running.iter().skip(1).map(|p| p.name_any()));
                return;
            }
            if running.len() <= 1 {
                if running.is_empty() && fit.should_run {
                    plan.create.push(node_name);
                }
                return;
            }
            // With surge, an old and a new pod may both run while the new one is not yet
            // available and the old one still ready; every other pod goes.
            let mut oldest_new: Option<&Pod> = None;
            let mut oldest_old: Option<&Pod> = None;
            for pod in running {
                let new = pod
                    .labels()
                    .get(placement::REVISION_HASH_LABEL)
                    .map(String::as_str)
                    == Some(hash);
                let slot = if new { &mut oldest_new } else { &mut oldest_old };
                if slot.is_none() {
                    *slot = Some(pod);
                } else {
                    plan.delete.push(pod.name_any());
                }
            }
            if let (Some(new), Some(old)) = (oldest_new, oldest_old)
                && (!pods::is_ready(old) || pods::is_available(new, min_ready_seconds(ds), now))
            {
                plan.delete.push(old.name_any());
            }
        }
        Some(pods) if !fit.should_continue_running => {
            plan.delete.extend(
                pods.iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .map(|p| p.name_any()),
            );
        }
        _ => {}
    }
}

/// Upstream's `syncNodes`: deletes the named pods and creates a daemon pod on each node, in
/// slow-start batches, with expectations set first.
async fn sync_nodes(
    ds: &DaemonSet,
    delete: Vec<String>,
    create: Vec<String>,
    hash: &str,
    context: &Context,
    state: &State,
    key: &str,
) -> Result<(), ReconcileError> {
    let namespace = ds.namespace().unwrap_or_default();
    let create: Vec<String> = create.into_iter().take(BURST_REPLICAS).collect();
    let delete: Vec<String> = delete.into_iter().take(BURST_REPLICAS).collect();
    state.creations.expect_creations(key, create.len());
    state.deletions.expect_deletions(
        key,
        delete.iter().map(|name| format!("{namespace}/{name}")).collect(),
    );
    if create.is_empty() && delete.is_empty() {
        return Ok(());
    }
    let api: Api<Pod> = Api::namespaced(context.client.clone(), &namespace);
    let Some(spec) = ds.spec.as_ref() else {
        return Ok(());
    };
    let template = placement::pod_template(&spec.template, template_generation(ds), hash);
    let owner = pods::controller_ref(ds);
    let mut errors: Vec<kube::Error> = Vec::new();

    // Slow start: batches of 1, 2, 4, ... so a failing template costs one error, not many.
    let mut position = 0;
    let mut batch = create.len().min(1);
    while batch > 0 {
        let mut pods_to_create = Vec::with_capacity(batch);
        for node in &create[position..position + batch] {
            let mut template = template.clone();
            if let Some(spec) = template.spec.as_mut() {
                spec.affinity = Some(placement::pin_to_node(spec.affinity.take(), node));
            }
            pods_to_create.push(pods::pod_from_template(
                &template,
                &namespace,
                &ds.name_any(),
                owner.clone(),
            )?);
        }
        let params = PostParams::default();
        let results = future::join_all(pods_to_create.iter().map(|pod| api.create(&params, pod))).await;
        let failures_before = errors.len();
        for result in results {
            match result {
                Ok(pod) => {
                    let note = Note {
                        type_: EventType::Normal,
                        reason: "SuccessfulCreate",
                        message: format!("Created pod: {}", pod.name_any()),
                    };
                    publish(context, ds, note).await;
                }
                Err(err) => {
                    state.creations.creation_observed(key);
                    if namespace_terminating(&err) {
                        // Pods cannot be created in a terminating namespace; nothing to report.
                        continue;
                    }
                    let note = Note {
                        type_: EventType::Warning,
                        reason: "FailedCreate",
                        message: format!("Error creating: {}", api_message(&err)),
                    };
                    publish(context, ds, note).await;
                    errors.push(err);
                }
            }
        }
        position += batch;
        let remaining = create.len() - position;
        if errors.len() > failures_before && remaining > 0 {
            // The pods never attempted are not expected; the next sync retries them.
            for _ in 0..remaining {
                state.creations.creation_observed(key);
            }
            break;
        }
        batch = (batch * 2).min(remaining);
    }

    let results = future::join_all(delete.iter().map(|name| {
        let api = api.clone();
        async move { (name, api.delete(name, &DeleteParams::default()).await) }
    }))
    .await;
    for (name, result) in results {
        match result {
            Ok(_) => {
                let note = Note {
                    type_: EventType::Normal,
                    reason: "SuccessfulDelete",
                    message: format!("Deleted pod: {name}"),
                };
                publish(context, ds, note).await;
            }
            Err(err) => {
                state
                    .deletions
                    .deletion_observed(key, &format!("{namespace}/{name}"));
                if is_not_found(&err) {
                    continue;
                }
                let note = Note {
                    type_: EventType::Warning,
                    reason: "FailedDelete",
                    message: format!("Error deleting: {}", api_message(&err)),
                };
                publish(context, ds, note).await;
                errors.push(err);
            }
        }
    }
    match errors.into_iter().next() {
        Some(err) => Err(err.into()),
        None => Ok(()),
    }
}

fn namespace_terminating(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.details.as_ref().is_some_and(|d| {
        d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
    }))
}

/// The counts of a DaemonSet's status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    desired: i32,
    current: i32,
    misscheduled: i32,
    ready: i32,
    updated: i32,
    available: i32,
    unavailable: i32,
}

/// Upstream's `updateDaemonSetStatus` counting: per node, the oldest daemon pod decides.
fn count(ds: &DaemonSet, nodes: &[Arc<Node>], by_node: &PodsByNode, hash: &str, now: Timestamp) -> Counts {
    let mut counts = Counts::default();
    let Some(spec) = ds.spec.as_ref() else {
        return counts;
    };
    let generation = template_generation(ds);
    for node in nodes {
        let fit = placement::node_should_run(node, &spec.template);
        let pods = by_node.get(&node.name_any()).filter(|p| !p.is_empty());
        if !fit.should_run {
            if pods.is_some() {
                counts.misscheduled += 1;
            }
            continue;
        }
        counts.desired += 1;
        let Some(pods) = pods else {
            continue;
        };
        counts.current += 1;
        let Some(pod) = pods.iter().min_by(|a, b| placement::by_creation_and_phase(a, b)) else {
            continue;
        };
        if pods::is_ready(pod) {
            counts.ready += 1;
            if pods::is_available(pod, spec.min_ready_seconds.unwrap_or(0), now) {
                counts.available += 1;
            }
        }
        if placement::is_updated(pod, hash, generation) {
            counts.updated += 1;
        }
    }
    counts.unavailable = counts.desired - counts.available;
    counts
}

/// Writes the status when it changed; returns when availability must be checked again.
async fn update_status(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    pods: &[Pod],
    hash: &str,
    observe_generation: bool,
    context: &Context,
) -> Result<Option<Duration>, ReconcileError> {
    let counts = count(ds, nodes, &pods_by_node(pods, false), hash, Timestamp::now());
    let old = ds.status.clone().unwrap_or_default();
    let old_counts = Counts {
        desired: old.desired_number_scheduled,
        current: old.current_number_scheduled,
        misscheduled: old.number_misscheduled,
        ready: old.number_ready,
        updated: old.updated_number_scheduled.unwrap_or(0),
        available: old.number_available.unwrap_or(0),
        unavailable: old.number_unavailable.unwrap_or(0),
    };
    let generation = ds.metadata.generation.unwrap_or(0);
    if counts != old_counts || old.observed_generation.unwrap_or(0) < generation {
        // Zero optional counts are omitted, as upstream's JSON omits them.
        let optional = |n: i32| if n == 0 { serde_json::Value::Null } else { n.into() };
        let mut status = serde_json::json!({
            "desiredNumberScheduled": counts.desired,
            "currentNumberScheduled": counts.current,
            "numberMisscheduled": counts.misscheduled,
            "numberReady": counts.ready,
            "updatedNumberScheduled": optional(counts.updated),
            "numberAvailable": optional(counts.available),
            "numberUnavailable": optional(counts.unavailable),
        });
        if observe_generation {
            status["observedGeneration"] = generation.into();
        }
        let api: Api<DaemonSet> =
            Api::namespaced(context.client.clone(), &ds.namespace().unwrap_or_default());
        let patch = serde_json::json!({ "status": status });
        match api
            .patch_status(&ds.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => return Err(err.into()),
        }
    }
    let min_ready = min_ready_seconds(ds);
    Ok((min_ready > 0 && counts.ready != counts.available)
        .then(|| Duration::from_secs(u64::try_from(min_ready).unwrap_or(1))))
}

/// client-go's flowcontrol.Backoff as the controller uses it for failed pods: per key, a delay
/// doubling from 1 s to 15 min since the last kill, forgotten after twice the maximum.
#[derive(Default)]
struct Backoff {
    entries: HashMap<String, (Duration, Instant)>,
}

impl Backoff {
    /// The current delay when `key` was bumped less than that delay ago.
    fn in_backoff(&self, key: &str, now: Instant) -> Option<Duration> {
        let (delay, at) = self.entries.get(key)?;
        (now.saturating_duration_since(*at) < *delay).then_some(*delay)
    }

    /// Bumps the delay of `key`.
    fn next(&mut self, key: &str, now: Instant) {
        let (initial, max) = FAILED_POD_BACKOFF;
        let entry = self
            .entries
            .entry(key.to_owned())
            .or_insert((Duration::ZERO, now));
        let expired = now.saturating_duration_since(entry.1) > max * 2;
        entry.0 = if entry.0.is_zero() || expired {
            initial
        } else {
            (entry.0 * 2).min(max)
        };
        entry.1 = now;
    }

    /// Forgets the keys not bumped for twice the maximum delay.
    fn gc(&mut self, now: Instant) {
        let (_, max) = FAILED_POD_BACKOFF;
        self.entries
            .retain(|_, (_, at)| now.saturating_duration_since(*at) <= max * 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[allow(clippy::needless_pass_by_value)]
    pub(super) fn daemon_set(strategy: serde_json::Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "d", "namespace": "ns", "uid": "u1", "generation": 1,
                "annotations": {"deprecated.daemonset.template.generation": "1"}},
            "spec": {"selector": {"matchLabels": {"app": "d"}}, "updateStrategy": strategy,
                "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
        }))
        .unwrap()
    }

    #[allow(clippy::needless_pass_by_value)]
    pub(super) fn node(name: &str, taints: serde_json::Value) -> Arc<Node> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"taints": taints}})).unwrap(),
        )
    }

    pub(super) fn pod(name: &str, node: &str, hash: &str, phase: &str, ready: bool, created: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "creationTimestamp": created,
                "labels": {"app": "d", "controller-revision-hash": hash}},
            "spec": {"nodeName": node, "containers": []},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                "lastTransitionTime": "2024-01-01T00:00:00Z"}]}
        }))
        .unwrap()
    }

    fn plan(ds: &DaemonSet, nodes: &[Arc<Node>], pods: &[Pod], backoff: &mut Backoff, at: Instant) -> Plan {
        manage(
            ds,
            nodes,
            &pods_by_node(pods, false),
            "new",
            "2024-01-02T00:00:00Z".parse().unwrap(),
            backoff,
            at,
        )
    }

    #[test]
    fn manage_creates_on_fitting_nodes_and_deletes_elsewhere() {
        let ds = daemon_set(json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}));
        let nodes = [
            node("a", json!([])),
            node("b", json!([{"key": "k", "effect": "NoSchedule"}])),
            node("c", json!([{"key": "k", "effect": "NoExecute"}])),
            node("d", json!([])),
        ];
        let t = "2024-01-01T00:00:00Z";
        let pods = [
            pod("on-b", "b", "new", "Running", true, t),
            pod("on-c", "c", "new", "Running", true, t),
            pod("d-1", "d", "new", "Running", true, t),
            pod("d-2", "d", "new", "Running", true, "2024-01-01T00:00:01Z"),
            pod("gone", "", "new", "Pending", false, t),
        ];
        let mut gone = pods[4].clone();
        gone.spec.as_mut().unwrap().affinity = Some(placement::pin_to_node(None, "x"));
        let pods = [
            pods[0].clone(),
            pods[1].clone(),
            pods[2].clone(),
            pods[3].clone(),
            gone,
        ];
        let mut backoff = Backoff::default();
        let plan = plan(&ds, &nodes, &pods, &mut backoff, Instant::now());
        assert_eq!(plan.create, ["a"]);
        // The NoSchedule node keeps its pod; the NoExecute one does not; the youngest duplicate
        // goes; the pod for a vanished node goes.
        assert_eq!(plan.delete, ["on-c", "d-2", "gone"]);
        let counts = count(
            &ds,
            &nodes,
            &pods_by_node(&pods, false),
            "new",
            "2024-01-02T00:00:00Z".parse().unwrap(),
        );
        assert_eq!(
            counts,
            Counts {
                desired: 2,
                current: 1,
                misscheduled: 2,
                ready: 1,
                updated: 1,
                available: 1,
                unavailable: 1
            }
        );
    }

    #[test]
    fn failed_pods_are_killed_with_backoff() {
        let ds = daemon_set(json!({"type": "OnDelete"}));
        let nodes = [node("a", json!([]))];
        let failed = [pod("f", "a", "new", "Failed", false, "2024-01-01T00:00:00Z")];
        let mut backoff = Backoff::default();
        let start = Instant::now();
        let first = plan(&ds, &nodes, &failed, &mut backoff, start);
        assert_eq!(first.delete, ["f"]);
        assert_eq!(first.notes[0].reason, FAILED_DAEMON_POD);
        assert_eq!(
            first.notes[0].message,
            "Found failed daemon pod ns/f on node a, will try to kill it"
        );
        // Failing again within a second: the kill waits.
        let second = plan(
            &ds,
            &nodes,
            &failed,
            &mut backoff,
            start + Duration::from_millis(500),
        );
        assert!(second.delete.is_empty());
        assert_eq!(second.requeue, Some(Duration::from_secs(1)));
        let third = plan(&ds, &nodes, &failed, &mut backoff, start + Duration::from_secs(2));
        assert_eq!(third.delete, ["f"]);
        assert_eq!(
            backoff.in_backoff("u1/0/a", start + Duration::from_secs(3)),
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn surge_keeps_the_old_pod_until_the_new_one_is_available() {
        let ds = daemon_set(
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}),
        );
        let nodes = [node("a", json!([]))];
        let t = "2024-01-01T00:00:00Z";
        let mut backoff = Backoff::default();
        let pending = [
            pod("old", "a", "old", "Running", true, t),
            pod("new", "a", "new", "Pending", false, t),
        ];
        assert!(
            plan(&ds, &nodes, &pending, &mut backoff, Instant::now())
                .delete
                .is_empty()
        );
        let ready = [
            pod("old", "a", "old", "Running", true, t),
            pod("new", "a", "new", "Running", true, t),
        ];
        assert_eq!(
            plan(&ds, &nodes, &ready, &mut backoff, Instant::now()).delete,
            ["old"]
        );
    }
}
