//! The garbage collector (upstream: pkg/controller/garbagecollector): deletes objects whose
//! owners are all gone, and carries out foreground and orphaning deletion.
//!
//! Every resource that discovery reports with `list`, `watch` and `delete` (in its
//! preferred version) is watched metadata-only; the events build the owner→dependents
//! [`graph`]. Two queues of object uids are worked: attemptToDelete (an object whose owners
//! may be gone, an owner deleting in the foreground) and attemptToOrphan (an owner deleted
//! with the `orphan` finalizer). Decisions to delete are always verified against the API
//! server (live GETs with uid checks), never against the graph alone. Discovery is read again
//! every 30 seconds so that new resources get watched; the garbage collector writes only when
//! there is garbage or a finalizer to handle.

mod graph;
mod queue;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::core::PartialObjectMeta;
use kube::discovery::{ApiResource, Discovery, Scope, verbs};
use kube::runtime::events::{Event as KubeEvent, EventType, Recorder};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch};
use serde_json::json;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::graph::{Change, Effects, FOREGROUND, Graph, GraphEvent, Identity, ORPHAN, Observed};
use self::queue::WorkQueue;
use crate::harness::{Context, is_conflict, is_not_found};

/// The controller's name in `--controllers`.
pub const NAME: &str = "garbage-collector-controller";
/// How often discovery is read for new or removed resources (upstream's resync period).
const DISCOVERY_PERIOD: Duration = Duration::from_secs(30);
/// The least time between discovery passes asked for by items of kinds not yet discovered.
const REDISCOVERY_SPACING: Duration = Duration::from_secs(1);
/// Workers per queue.
const WORKERS: usize = 8;
/// Resources the garbage collector never watches (upstream's `DefaultIgnoredResources`).
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];
/// How many absent owners are remembered (upstream's absent owner cache size).
const ABSENT_CACHE_SIZE: usize = 500;
/// Attempts of a finalizer removal that loses races (client-go's `retry.DefaultBackoff`).
const FINALIZER_RETRIES: u32 = 4;

/// Why one item could not be handled; it is retried with backoff unless said otherwise.
#[derive(Debug, Error)]
enum GcError {
    /// An API call failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// The apiVersion/kind is not served (perhaps not yet discovered).
    #[error("unable to get REST mapping for {api_version}/{kind}.")]
    RestMapping {
        /// The apiVersion.
        api_version: String,
        /// The kind.
        kind: String,
    },
    /// The object does not exist; the graph learns it through a virtual delete event.
    #[error("enqueued virtual delete event")]
    VirtualDeleteEnqueued,
    /// A cluster-scoped object names a namespaced owner: never valid, never retried.
    #[error("cluster-scoped objects cannot refer to namespaced owners")]
    NamespacedOwnerOfClusterScoped,
    /// A finalizer could not be removed in [`FINALIZER_RETRIES`] attempts.
    #[error(
        "updateMaxRetries({FINALIZER_RETRIES}) has reached. The garbage collector will retry later for owner {0}"
    )]
    TooManyConflicts(String),
    /// Orphaning failed for some dependents.
    #[error("failed to orphan dependents of owner {owner}, got errors: {errors}")]
    Orphan {
        /// The owner.
        owner: String,
        /// What failed.
        errors: String,
    },
}

/// What the work on one item asks of its queue.
enum Outcome {
    Forget,
    Requeue,
}

/// A resource as the garbage collector addresses it.
#[derive(Clone, Debug)]
struct Mapping {
    resource: ApiResource,
    namespaced: bool,
}

/// Messages to the graph builder, processed in order.
enum Message {
    Graph(GraphEvent),
    /// Workers start once these monitors have delivered their initial lists.
    AwaitSync(HashSet<String>, oneshot::Sender<()>),
    /// A monitor delivered its initial list.
    Synced(String),
}

/// The last absent owners seen (upstream's `ReferenceCache`).
#[derive(Default)]
struct AbsentOwners {
    set: HashSet<Identity>,
    order: VecDeque<Identity>,
}

impl AbsentOwners {
    fn add(&mut self, identity: Identity) {
        if self.set.insert(identity.clone()) {
            self.order.push_back(identity);
            while self.order.len() > ABSENT_CACHE_SIZE {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }

    fn has(&self, identity: &Identity) -> bool {
        self.set.contains(identity)
    }
}

struct GarbageCollector {
    client: Client,
    graph: Mutex<Graph>,
    mappings: RwLock<HashMap<(String, String), Mapping>>,
    absent: Mutex<AbsentOwners>,
    attempt_to_delete: Arc<WorkQueue<String>>,
    attempt_to_orphan: Arc<WorkQueue<String>>,
    changes: mpsc::UnboundedSender<Message>,
    recorder: Recorder,
    /// Items whose kind (or an owner's) discovery did not know: tried again after each
    /// discovery pass instead of backing off, so a new CRD's objects are collected promptly.
    unmapped: Mutex<HashSet<String>>,
    /// Asks for a discovery pass now (a kind not yet discovered turned up).
    rediscover: tokio::sync::Notify,
}

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let (changes, receiver) = mpsc::unbounded_channel();
    let gc = Arc::new(GarbageCollector {
        client: context.client.clone(),
        graph: Mutex::new(Graph::default()),
        mappings: RwLock::new(HashMap::new()),
        absent: Mutex::new(AbsentOwners::default()),
        attempt_to_delete: WorkQueue::new(),
        attempt_to_orphan: WorkQueue::new(),
        changes,
        recorder: context.recorder("garbage-collector-controller"),
        unmapped: Mutex::new(HashSet::new()),
        rediscover: tokio::sync::Notify::new(),
    });
    // The graph builder holds no work worth finishing: it is simply stopped at shutdown.
    let builder = tokio::spawn(build_graph(gc.clone(), receiver));
    let mut tasks = tokio::task::JoinSet::new();
    let (synced_tx, synced_rx) = oneshot::channel();
    tasks.spawn(sync_monitors(gc.clone(), synced_tx, shutdown.clone()));
    let workers = gc.clone();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        tokio::select! {
            _ = synced_rx => {}
            () = stop.cancelled() => return,
        }
        tracing::info!(
            controller = NAME,
            "dependency graph synced; garbage collector started"
        );
        let mut pool = tokio::task::JoinSet::new();
        for _ in 0..WORKERS {
            pool.spawn(delete_worker(workers.clone()));
            pool.spawn(orphan_worker(workers.clone()));
        }
        while pool.join_next().await.is_some() {}
    });
    shutdown.cancelled().await;
    builder.abort();
    gc.attempt_to_delete.shut_down();
    gc.attempt_to_orphan.shut_down();
    // Workers finish their current item; monitors and the graph builder just stop.
    let drain = async {
        while let Some(done) = tasks.join_next().await {
            if done.is_err() {
                break;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), drain).await.is_err() {
        tracing::warn!(
            controller = NAME,
            "garbage collector still busy after the shutdown grace period"
        );
    }
    tasks.abort_all();
}

/// Discovery loop: keeps one monitor per deletable resource and the kind→resource mappings.
async fn sync_monitors(gc: Arc<GarbageCollector>, synced: oneshot::Sender<()>, shutdown: CancellationToken) {
    let mut synced = Some(synced);
    let mut monitors: BTreeMap<String, tokio::task::AbortHandle> = BTreeMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        match discover(&gc.client).await {
            Ok((mappings, deletable)) => {
                if let Ok(mut current) = gc.mappings.write() {
                    *current = mappings;
                }
                let wanted: BTreeMap<String, Mapping> = deletable
                    .into_iter()
                    .map(|m| (resource_key(&m.resource), m))
                    .collect();
                let removed: Vec<String> = monitors
                    .keys()
                    .filter(|k| !wanted.contains_key(*k))
                    .cloned()
                    .collect();
                for key in &removed {
                    if let Some(handle) = monitors.remove(key) {
                        handle.abort();
                    }
                }
                let added: Vec<(String, Mapping)> = wanted
                    .into_iter()
                    .filter(|(k, _)| !monitors.contains_key(k))
                    .collect();
                if !added.is_empty() || !removed.is_empty() {
                    tracing::info!(
                        controller = NAME,
                        added = ?added.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                        removed = ?removed,
                        "syncing garbage collector with updated resources from discovery"
                    );
                }
                if let Some(done) = synced.take() {
                    let keys = added.iter().map(|(k, _)| k.clone()).collect();
                    let _ = gc.changes.send(Message::AwaitSync(keys, done));
                }
                for (key, mapping) in added {
                    let handle = tasks.spawn(monitor(gc.clone(), key.clone(), mapping));
                    monitors.insert(key, handle);
                }
                let unmapped: Vec<String> = gc
                    .unmapped
                    .lock()
                    .map(|set| set.iter().cloned().collect())
                    .unwrap_or_default();
                for uid in unmapped {
                    gc.attempt_to_delete.forget(&uid);
                    gc.attempt_to_delete.add(uid);
                }
            }
            Err(err) => tracing::warn!(controller = NAME, error = %err, "failed to discover resources"),
        }
        tokio::select! {
            () = tokio::time::sleep(DISCOVERY_PERIOD) => {}
            () = gc.rediscover.notified() => {
                tokio::select! {
                    () = tokio::time::sleep(REDISCOVERY_SPACING) => {}
                    () = shutdown.cancelled() => break,
                }
            }
            () = shutdown.cancelled() => break,
        }
    }
    tasks.abort_all();
}

fn resource_key(resource: &ApiResource) -> String {
    format!("{}/{}", resource.api_version, resource.plural)
}

/// Every served kind (all versions) and the preferred deletable resources.
#[allow(clippy::type_complexity)]
async fn discover(
    client: &Client,
) -> Result<(HashMap<(String, String), Mapping>, Vec<Mapping>), kube::Error> {
    let discovery = Discovery::new(client.clone()).run_aggregated().await?;
    let mut mappings = HashMap::new();
    let mut deletable = Vec::new();
    for group in discovery.groups() {
        for version in group.versions() {
            for (resource, caps) in group.versioned_resources(version) {
                let mapping = Mapping {
                    namespaced: caps.scope == Scope::Namespaced,
                    resource: resource.clone(),
                };
                mappings
                    .entry((resource.api_version.clone(), resource.kind.clone()))
                    .or_insert_with(|| mapping.clone());
                let ignored = IGNORED
                    .iter()
                    .any(|(g, r)| *g == resource.group && *r == resource.plural);
                let supported = [verbs::DELETE, verbs::LIST, verbs::WATCH]
                    .iter()
                    .all(|v| caps.supports_operation(v));
                if version == group.preferred_version_or_latest() && supported && !ignored {
                    deletable.push(mapping);
                }
            }
        }
    }
    Ok((mappings, deletable))
}

/// One metadata-only watch, feeding the graph builder.
async fn monitor(gc: Arc<GarbageCollector>, key: String, mapping: Mapping) {
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(gc.client.clone(), &mapping.resource);
    let api_version = mapping.resource.api_version.clone();
    let kind = mapping.resource.kind.clone();
    let mut stream = watch(api, watcher::Config::default()).default_backoff().boxed();
    let mut listing: Option<HashSet<String>> = None;
    let mut synced = false;
    let send = |change: Change| {
        let _ = gc.changes.send(Message::Graph(GraphEvent {
            api_version: api_version.clone(),
            kind: kind.clone(),
            change,
        }));
    };
    while let Some(event) = stream.next().await {
        match event {
            Ok(Event::Init) => listing = Some(HashSet::new()),
            Ok(Event::InitApply(object)) => {
                let observed = observed(object);
                if let Some(seen) = listing.as_mut() {
                    seen.insert(observed.uid.clone());
                }
                send(Change::Upsert(observed));
            }
            Ok(Event::InitDone) => {
                send(Change::Relisted(listing.take().unwrap_or_default()));
                if !synced {
                    synced = true;
                    let _ = gc.changes.send(Message::Synced(key.clone()));
                }
            }
            Ok(Event::Apply(object)) => send(Change::Upsert(observed(object))),
            Ok(Event::Delete(object)) => send(Change::Delete(observed(object))),
            Err(err) => tracing::debug!(controller = NAME, resource = %key, error = %err, "watch failed"),
        }
    }
}

fn observed(object: PartialObjectMeta<DynamicObject>) -> Observed {
    observed_meta(object.metadata)
}

fn observed_meta(meta: ObjectMeta) -> Observed {
    Observed {
        uid: meta.uid.unwrap_or_default(),
        name: meta.name.unwrap_or_default(),
        namespace: meta.namespace.unwrap_or_default(),
        owners: meta.owner_references.unwrap_or_default(),
        deleting: meta.deletion_timestamp.is_some(),
        finalizers: meta.finalizers.unwrap_or_default(),
    }
}

/// The graph builder: applies changes in order and queues the work they imply.
async fn build_graph(gc: Arc<GarbageCollector>, mut receiver: mpsc::UnboundedReceiver<Message>) {
    let mut awaiting: Option<(HashSet<String>, oneshot::Sender<()>)> = None;
    let mut synced: HashSet<String> = HashSet::new();
    while let Some(message) = receiver.recv().await {
        match message {
            Message::Graph(event) => {
                let effects = match gc.graph.lock() {
                    Ok(mut graph) => graph.process(event),
                    Err(_) => return,
                };
                gc.apply(effects);
            }
            Message::AwaitSync(keys, done) => awaiting = Some((keys, done)),
            Message::Synced(key) => {
                synced.insert(key);
            }
        }
        if awaiting.as_ref().is_some_and(|(keys, _)| keys.is_subset(&synced))
            && let Some((_, done)) = awaiting.take()
        {
            let _ = done.send(());
        }
    }
}

async fn delete_worker(gc: Arc<GarbageCollector>) {
    while let Some(uid) = gc.attempt_to_delete.get().await {
        let identity = gc.node_identity(&uid);
        let span = tracing::info_span!("reconcile", controller = NAME, queue = "attemptToDelete", object = %identity.as_ref().map(ToString::to_string).unwrap_or_default());
        match gc.attempt_to_delete_worker(&uid).instrument(span).await {
            Outcome::Forget => gc.attempt_to_delete.forget(&uid),
            Outcome::Requeue => gc.attempt_to_delete.add_rate_limited(uid.clone()),
        }
        gc.attempt_to_delete.done(&uid);
    }
}

async fn orphan_worker(gc: Arc<GarbageCollector>) {
    while let Some(uid) = gc.attempt_to_orphan.get().await {
        let identity = gc.node_identity(&uid);
        let span = tracing::info_span!("reconcile", controller = NAME, queue = "attemptToOrphan", object = %identity.as_ref().map(ToString::to_string).unwrap_or_default());
        match gc.attempt_to_orphan_worker(&uid).instrument(span).await {
            Outcome::Forget => gc.attempt_to_orphan.forget(&uid),
            Outcome::Requeue => gc.attempt_to_orphan.add_rate_limited(uid.clone()),
        }
        gc.attempt_to_orphan.done(&uid);
    }
}

impl GarbageCollector {
    fn apply(&self, effects: Effects) {
        if let Ok(mut absent) = self.absent.lock() {
            for identity in effects.absent {
                absent.add(identity);
            }
        }
        for uid in effects.attempt_to_delete {
            self.attempt_to_delete.add(uid);
        }
        for uid in effects.attempt_to_delete_later {
            self.attempt_to_delete.add_rate_limited(uid);
        }
        for uid in effects.attempt_to_orphan {
            self.attempt_to_orphan.add(uid);
        }
        for (dependent, message) in effects.invalid_namespace {
            tracing::info!(controller = NAME, item = %dependent, "{message}");
            let recorder = self.recorder.clone();
            let reference = ObjectReference {
                api_version: Some(dependent.api_version.clone()),
                kind: Some(dependent.kind.clone()),
                name: Some(dependent.name.clone()),
                namespace: Some(dependent.namespace.clone()).filter(|n| !n.is_empty()),
                uid: Some(dependent.uid.clone()),
                ..Default::default()
            };
            tokio::spawn(async move {
                let event = KubeEvent {
                    type_: EventType::Warning,
                    reason: "OwnerRefInvalidNamespace".into(),
                    note: Some(message),
                    action: "GarbageCollect".into(),
                    secondary: None,
                };
                if let Err(err) = recorder.publish(&event, &reference).await {
                    tracing::debug!(controller = NAME, error = %err, "recording an event failed");
                }
            });
        }
    }

    fn node_identity(&self, uid: &str) -> Option<Identity> {
        self.graph.lock().ok()?.get(uid).map(|n| n.identity.clone())
    }

    fn mapping(&self, api_version: &str, kind: &str) -> Result<Mapping, GcError> {
        self.mappings
            .read()
            .ok()
            .and_then(|m| m.get(&(api_version.to_owned(), kind.to_owned())).cloned())
            .ok_or_else(|| GcError::RestMapping {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
            })
    }

    /// The API of the object `identity` names, and whether its kind is namespaced.
    fn api(&self, identity: &Identity) -> Result<(Api<DynamicObject>, bool), GcError> {
        let mapping = self.mapping(&identity.api_version, &identity.kind)?;
        let api = if mapping.namespaced {
            if identity.namespace.is_empty() {
                return Err(GcError::NamespacedOwnerOfClusterScoped);
            }
            Api::namespaced_with(self.client.clone(), &identity.namespace, &mapping.resource)
        } else {
            Api::all_with(self.client.clone(), &mapping.resource)
        };
        Ok((api, mapping.namespaced))
    }

    async fn get_object(&self, identity: &Identity) -> Result<PartialObjectMeta<DynamicObject>, GcError> {
        let (api, _) = self.api(identity)?;
        Ok(api.get_metadata(&identity.name).await?)
    }

    fn enqueue_virtual_delete(&self, identity: &Identity) {
        let _ = self.changes.send(Message::Graph(GraphEvent {
            api_version: identity.api_version.clone(),
            kind: identity.kind.clone(),
            change: Change::VirtualDelete(Observed {
                uid: identity.uid.clone(),
                name: identity.name.clone(),
                namespace: identity.namespace.clone(),
                ..Default::default()
            }),
        }));
    }

    async fn attempt_to_delete_worker(&self, uid: &str) -> Outcome {
        let Some(node) = self.graph.lock().ok().and_then(|g| g.get(uid).cloned()) else {
            if let Ok(mut set) = self.unmapped.lock() {
                set.remove(uid);
            }
            return Outcome::Forget;
        };
        let attempted = self.attempt_to_delete_item(&node).await;
        let unmapped = matches!(attempted, Err(GcError::RestMapping { .. }));
        if let Ok(mut set) = self.unmapped.lock() {
            if !unmapped {
                set.remove(uid);
            } else if set.insert(uid.to_owned()) {
                self.rediscover.notify_one();
            }
        }
        match attempted {
            Ok(()) => {
                let still_virtual = self
                    .graph
                    .lock()
                    .ok()
                    .and_then(|g| g.get(uid).map(|n| n.is_virtual))
                    .unwrap_or(false);
                if still_virtual {
                    // Not observed by a watch yet: look again later.
                    Outcome::Requeue
                } else {
                    Outcome::Forget
                }
            }
            Err(GcError::VirtualDeleteEnqueued | GcError::NamespacedOwnerOfClusterScoped) => Outcome::Forget,
            // Tried again after the next discovery pass (which it asked for when new).
            Err(err @ GcError::RestMapping { .. }) => {
                tracing::debug!(error = %err, "error syncing item; waiting for discovery");
                Outcome::Forget
            }
            Err(err) => {
                tracing::debug!(error = %err, "error syncing item");
                Outcome::Requeue
            }
        }
    }

    /// Upstream's `attemptToDeleteItem`.
    async fn attempt_to_delete_item(&self, item: &graph::Node) -> Result<(), GcError> {
        if item.being_deleted && !item.deleting_dependents {
            // The final deletion will come; its dependents are handled then.
            return Ok(());
        }
        let latest = match self.get_object(&item.identity).await {
            Err(GcError::Kube(err)) if is_not_found(&err) => {
                self.enqueue_virtual_delete(&item.identity);
                return Err(GcError::VirtualDeleteEnqueued);
            }
            other => other?,
        };
        if latest.metadata.uid.as_deref() != Some(item.identity.uid.as_str()) {
            self.enqueue_virtual_delete(&item.identity);
            return Err(GcError::VirtualDeleteEnqueued);
        }
        if item.deleting_dependents {
            return self.process_deleting_dependents(item).await;
        }
        let owners = latest.metadata.owner_references.clone().unwrap_or_default();
        if owners.is_empty() {
            return Ok(());
        }
        let mut solid = Vec::new();
        let mut dangling = Vec::new();
        let mut waiting = Vec::new();
        for reference in &owners {
            match self.dangling(reference, item).await? {
                None => dangling.push(reference.clone()),
                Some(owner) => {
                    let deleting_dependents = owner.metadata.deletion_timestamp.is_some()
                        && owner
                            .metadata
                            .finalizers
                            .as_ref()
                            .is_some_and(|f| f.iter().any(|f| f == FOREGROUND));
                    if deleting_dependents {
                        waiting.push(reference.clone());
                    } else {
                        solid.push(reference.clone());
                    }
                }
            }
        }
        tracing::debug!(
            solid = solid.len(),
            dangling = dangling.len(),
            waiting = waiting.len(),
            "classified owner references"
        );
        let resource_version = latest.metadata.resource_version.clone().unwrap_or_default();
        if !solid.is_empty() {
            if dangling.is_empty() && waiting.is_empty() {
                return Ok(());
            }
            // Drop the references to gone owners, and to owners waiting for their dependents
            // (they would wait forever for this one, which stays).
            let uids: Vec<String> = dangling.iter().chain(&waiting).map(|r| r.uid.clone()).collect();
            return self.remove_owner_references(&item.identity, &uids).await;
        }
        if !waiting.is_empty() && !item.dependents.is_empty() {
            let dependent_deleting = self.graph.lock().ok().is_some_and(|g| {
                item.dependents
                    .iter()
                    .any(|d| g.get(d).is_some_and(|n| n.deleting_dependents))
            });
            if dependent_deleting {
                // Break a potential cycle: make this item's references non-blocking.
                tracing::info!(
                    "owners and a dependent delete in the foreground; unblocking owner references"
                );
                self.unblock_owner_references(item).await?;
            }
            return self
                .delete_object(
                    &item.identity,
                    &resource_version,
                    &owners,
                    PropagationPolicy::Foreground,
                )
                .await;
        }
        let finalizers = latest.metadata.finalizers.clone().unwrap_or_default();
        let policy = if finalizers.iter().any(|f| f == ORPHAN) {
            PropagationPolicy::Orphan
        } else if finalizers.iter().any(|f| f == FOREGROUND) {
            PropagationPolicy::Foreground
        } else {
            PropagationPolicy::Background
        };
        tracing::info!(policy = ?policy, "deleting item whose owners are all gone");
        self.delete_object(&item.identity, &resource_version, &owners, policy)
            .await
    }

    /// Upstream's `isDangling`: `None` when the owner does not exist (verified by a live GET
    /// with a uid check), else its live state.
    async fn dangling(
        &self,
        reference: &OwnerReference,
        item: &graph::Node,
    ) -> Result<Option<PartialObjectMeta<DynamicObject>>, GcError> {
        let mut key = Identity::of_owner(reference, "");
        {
            let absent = self.absent.lock();
            let known_absent = |key: &Identity| absent.as_ref().is_ok_and(|a| a.has(key));
            if known_absent(&key) {
                return Ok(None);
            }
            key.namespace = item.identity.namespace.clone();
            if known_absent(&key) {
                return Ok(None);
            }
        }
        let mapping = self.mapping(&reference.api_version, &reference.kind)?;
        if !mapping.namespaced {
            key.namespace.clear();
        }
        if item.identity.namespace.is_empty() && mapping.namespaced {
            tracing::info!(owner = %key, "item is cluster-scoped, but refers to a namespaced owner");
            return Err(GcError::NamespacedOwnerOfClusterScoped);
        }
        let api: Api<DynamicObject> = if mapping.namespaced {
            Api::namespaced_with(self.client.clone(), &item.identity.namespace, &mapping.resource)
        } else {
            Api::all_with(self.client.clone(), &mapping.resource)
        };
        match api.get_metadata(&reference.name).await {
            Ok(owner) if owner.metadata.uid.as_deref() == Some(reference.uid.as_str()) => Ok(Some(owner)),
            Ok(_) => {
                self.remember_absent(key);
                Ok(None)
            }
            Err(err) if is_not_found(&err) => {
                self.remember_absent(key);
                Ok(None)
            }
            Err(err) => Err(err.into()),
        }
    }

    fn remember_absent(&self, identity: Identity) {
        if let Ok(mut absent) = self.absent.lock() {
            absent.add(identity);
        }
    }

    /// An owner deleting in the foreground: once no dependent blocks it, its
    /// `foregroundDeletion` finalizer goes; until then, blocking dependents are deleted.
    async fn process_deleting_dependents(&self, item: &graph::Node) -> Result<(), GcError> {
        let blocking = self
            .graph
            .lock()
            .map(|g| g.blocking_dependents(&item.identity.uid))
            .unwrap_or_default();
        if blocking.is_empty() {
            tracing::info!("removing the foregroundDeletion finalizer: no dependent blocks it any more");
            return self.remove_finalizer(&item.identity, FOREGROUND).await;
        }
        for (uid, deleting_dependents) in blocking {
            if !deleting_dependents {
                self.attempt_to_delete.add(uid);
            }
        }
        Ok(())
    }

    /// Deletes with uid and resourceVersion preconditions; a conflict caused only by changes
    /// that left the owner references alone is retried without the resourceVersion.
    async fn delete_object(
        &self,
        identity: &Identity,
        resource_version: &str,
        owners: &[OwnerReference],
        policy: PropagationPolicy,
    ) -> Result<(), GcError> {
        let (api, _) = self.api(identity)?;
        let params = |resource_version: Option<String>| DeleteParams {
            propagation_policy: Some(policy.clone()),
            preconditions: Some(Preconditions {
                uid: Some(identity.uid.clone()),
                resource_version,
            }),
            ..Default::default()
        };
        let rv = Some(resource_version.to_owned()).filter(|r| !r.is_empty());
        match api.delete(&identity.name, &params(rv.clone())).await {
            Ok(_) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) if is_conflict(&err) && rv.is_some() => {
                let live = match api.get_metadata(&identity.name).await {
                    Ok(live) => live,
                    Err(get_err) if is_not_found(&get_err) => return Ok(()),
                    Err(_) => return Err(err.into()),
                };
                let same_owners = live.metadata.owner_references.clone().unwrap_or_default() == owners;
                if live.metadata.uid.as_deref() == Some(identity.uid.as_str())
                    && live.metadata.resource_version.as_deref() != rv.as_deref()
                    && same_owners
                {
                    match api.delete(&identity.name, &params(None)).await {
                        Ok(_) => Ok(()),
                        Err(err) if is_not_found(&err) => Ok(()),
                        Err(err) => Err(err.into()),
                    }
                } else {
                    Err(err.into())
                }
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Removes the owner references with `uids` (a strategic merge patch with the item's uid
    /// as precondition; a JSON merge patch with the resourceVersion where strategic merge
    /// patches are not supported).
    async fn remove_owner_references(&self, identity: &Identity, uids: &[String]) -> Result<(), GcError> {
        let (api, _) = self.api(identity)?;
        let deletions: Vec<serde_json::Value> = uids
            .iter()
            .map(|uid| json!({"$patch": "delete", "uid": uid}))
            .collect();
        let strategic = json!({"metadata": {"ownerReferences": deletions, "uid": identity.uid}});
        match api
            .patch_metadata(
                &identity.name,
                &PatchParams::default(),
                &Patch::Strategic(strategic),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 415 => {
                let live = api.get_metadata(&identity.name).await?;
                let kept: Vec<OwnerReference> = live
                    .metadata
                    .owner_references
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| !uids.contains(&r.uid))
                    .collect();
                let merge = json!({"metadata": {
                    "resourceVersion": live.metadata.resource_version,
                    "ownerReferences": kept,
                }});
                api.patch_metadata(&identity.name, &PatchParams::default(), &Patch::Merge(merge))
                    .await?;
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Sets `blockOwnerDeletion: false` on the item's blocking references.
    async fn unblock_owner_references(&self, item: &graph::Node) -> Result<(), GcError> {
        let (api, _) = self.api(&item.identity)?;
        let unblocked: Vec<OwnerReference> = item
            .owners
            .iter()
            .filter(|o| o.block_owner_deletion == Some(true))
            .map(|o| OwnerReference {
                block_owner_deletion: Some(false),
                ..o.clone()
            })
            .collect();
        let strategic = json!({"metadata": {"ownerReferences": unblocked, "uid": item.identity.uid}});
        match api
            .patch_metadata(
                &item.identity.name,
                &PatchParams::default(),
                &Patch::Strategic(strategic),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 415 => {
                let live = api.get_metadata(&item.identity.name).await?;
                let owners: Vec<OwnerReference> = item
                    .owners
                    .iter()
                    .map(|o| OwnerReference {
                        block_owner_deletion: Some(false),
                        ..o.clone()
                    })
                    .collect();
                let merge = json!({"metadata": {
                    "resourceVersion": live.metadata.resource_version,
                    "ownerReferences": owners,
                }});
                api.patch_metadata(&item.identity.name, &PatchParams::default(), &Patch::Merge(merge))
                    .await?;
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Removes `finalizer` from the live object (a JSON merge patch pinned to its
    /// resourceVersion, retried on conflicts).
    async fn remove_finalizer(&self, identity: &Identity, finalizer: &str) -> Result<(), GcError> {
        let (api, _) = self.api(identity)?;
        for attempt in 0..FINALIZER_RETRIES {
            let live = match api.get_metadata(&identity.name).await {
                Ok(live) => live,
                Err(err) if is_not_found(&err) => return Ok(()),
                Err(err) => return Err(err.into()),
            };
            let finalizers = live.metadata.finalizers.unwrap_or_default();
            if !finalizers.iter().any(|f| f == finalizer) {
                return Ok(());
            }
            let remaining: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
            let patch = json!({"metadata": {
                "resourceVersion": live.metadata.resource_version,
                "finalizers": if remaining.is_empty() { serde_json::Value::Null } else { json!(remaining) },
            }});
            match api
                .patch_metadata(&identity.name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(err) if is_not_found(&err) => return Ok(()),
                Err(err) if is_conflict(&err) => {
                    // client-go's DefaultBackoff: 10 ms, times five each step.
                    tokio::time::sleep(Duration::from_millis(10) * 5u32.pow(attempt)).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(GcError::TooManyConflicts(identity.to_string()))
    }

    async fn attempt_to_orphan_worker(&self, uid: &str) -> Outcome {
        let Some((owner, dependents)) = self
            .graph
            .lock()
            .ok()
            .and_then(|g| g.get(uid).map(|n| (n.identity.clone(), g.dependents(uid))))
        else {
            return Outcome::Forget;
        };
        if let Err(err) = self.orphan_dependents(&owner, &dependents).await {
            tracing::info!(error = %err, "orphaning dependents failed");
            return Outcome::Requeue;
        }
        if let Err(err) = self.remove_finalizer(&owner, ORPHAN).await {
            tracing::info!(error = %err, "removing the orphan finalizer failed");
            return Outcome::Requeue;
        }
        Outcome::Forget
    }

    /// Removes the owner's reference from every dependent, concurrently.
    async fn orphan_dependents(&self, owner: &Identity, dependents: &[graph::Node]) -> Result<(), GcError> {
        let uids = [owner.uid.clone()];
        let results = futures_util::future::join_all(dependents.iter().map(|dependent| async {
            match self.remove_owner_references(&dependent.identity, &uids).await {
                Ok(()) => Ok(()),
                Err(GcError::Kube(err)) if is_not_found(&err) => Ok(()),
                Err(err) => Err(format!("orphaning {} failed, {err}", dependent.identity)),
            }
        }))
        .await;
        let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(GcError::Orphan {
                owner: owner.to_string(),
                errors: errors.join(", "),
            })
        }
    }
}
