//! The scheduler (upstream: pkg/scheduler): assigns pods whose `schedulerName` is
//! `default-scheduler` to nodes.
//!
//! Two watches (nodes; pods that are not terminal) keep the [`cache`]; unbound pods wait in a
//! priority queue. Each attempt runs the default profile's filters and scores ([`plugins`])
//! over a round-robin window of nodes (upstream's `percentageOfNodesToScore`), assumes the
//! chosen node in the cache at once so the next decisions see it, and binds through
//! `pods/binding` concurrently, reporting a `Scheduled` event. A pod that fits nowhere gets
//! `PodScheduled=False` (reason `Unschedulable`, upstream's message) and a `FailedScheduling`
//! event, and waits until the cluster changes (a node added or changed, an assigned pod gone)
//! — never on a timer. Failed API calls retry with backoff.
//!
//! A pod that fits nowhere may preempt lower-priority pods ([`preemption`]): the victims get
//! a `DisruptionTarget` condition and are deleted, and the pod is nominated to the node
//! (`status.nominatedNodeName`) and retried when they are gone. It must not write anything
//! but bindings, pod statuses, victim deletions and events.

mod cache;
mod image_locality;
mod listers;
pub(crate) mod plugins;
mod preemption;
mod volume_binding;

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Future, StreamExt};
use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::harness::Context;
use cache::Cache;
use plugins::{Code, Prepared};

/// The controller's name in `--controllers`.
pub const NAME: &str = "scheduler";
/// The scheduler name pods ask for (and the default the API server fills in).
pub const SCHEDULER_NAME: &str = "default-scheduler";
/// How many API calls (bindings, status updates) may be in flight.
const MAX_IN_FLIGHT: usize = 256;
/// Backoff after a failed API call, doubling up to the maximum (upstream's pod backoff).
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// The message when the cluster has no nodes at all.
const NO_NODES: &str = "no nodes available to schedule pods";
/// Clusters smaller than this are searched whole (upstream's `minFeasibleNodesToFind`).
const MIN_FEASIBLE_NODES: usize = 100;

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    // PodDisruptionBudgets, for choosing preemption victims.
    let (pdbs, writer) = kube::runtime::reflector::store::<PodDisruptionBudget>();
    let reflected = watcher(
        Api::<PodDisruptionBudget>::all(context.client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .for_each(|_| std::future::ready(()));
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = reflected => {}
            () = stop.cancelled() => {}
        }
    });
    let volumes = volume_binding::start(&context.client, &shutdown);
    let mut scheduler = Scheduler::new(context.client.clone(), pdbs, volumes);
    scheduler.cache.listers = listers::Listers::start(&context.client, &shutdown);
    scheduler.run(shutdown).await;
}

/// A pod waiting in the active queue: higher priority first, then first come.
#[derive(PartialEq, Eq)]
struct Queued {
    priority: i32,
    seq: u64,
    key: String,
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

/// How an API call of the scheduler ended.
enum Outcome {
    Bound {
        key: String,
        result: Result<(), kube::Error>,
    },
    Reported {
        key: String,
        result: Result<(), kube::Error>,
    },
}

type Call = Pin<Box<dyn Future<Output = Outcome> + Send>>;

struct Scheduler {
    client: Client,
    recorder: Arc<Recorder>,
    pdbs: Store<PodDisruptionBudget>,
    volumes: Arc<volume_binding::Volumes>,
    cache: Cache,
    /// Unbound pods this scheduler is responsible for.
    pending: HashMap<String, Arc<Pod>>,
    active: BinaryHeap<Queued>,
    in_active: HashSet<String>,
    unschedulable: HashSet<String>,
    in_flight: HashSet<String>,
    changed_in_flight: HashSet<String>,
    failures: HashMap<String, u32>,
    seq: u64,
    next_start: usize,
    wake_tx: mpsc::UnboundedSender<String>,
    wake_rx: mpsc::UnboundedReceiver<String>,
    bound: u64,
}

fn reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Pod".to_owned()),
        name: pod.metadata.name.clone(),
        namespace: pod.metadata.namespace.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// How many feasible nodes to find before scoring (upstream's adaptive
/// `percentageOfNodesToScore`).
fn feasible_nodes_to_find(all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES {
        return all;
    }
    let percentage = (50usize.saturating_sub(all / 125)).max(5);
    (all * percentage / 100).max(MIN_FEASIBLE_NODES)
}

/// Upstream's FitError message: reasons counted per node, sorted as strings.
fn histogram(total: usize, reasons: &BTreeMap<String, usize>) -> String {
    let mut parts: Vec<String> = reasons
        .iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    parts.sort();
    let mut message = format!("0/{total} nodes are available:");
    if !parts.is_empty() {
        message.push_str(&format!(" {}.", parts.join(", ")));
    }
    message
}

/// The message of a pod that fits nowhere, with the verdict of preemption (which found no
/// victims, or for which the pod is `ineligible`).
fn unschedulable_message(
    total: usize,
    reasons: &BTreeMap<String, usize>,
    resolvable: usize,
    ineligible: Option<&str>,
) -> String {
    let filters = histogram(total, reasons);
    let preemption = if let Some(why) = ineligible {
        format!("preemption: {why}")
    } else {
        let mut verdicts = BTreeMap::new();
        if resolvable > 0 {
            verdicts.insert(
                "No preemption victims found for incoming pod".to_owned(),
                resolvable,
            );
        }
        if total > resolvable {
            verdicts.insert(
                "Preemption is not helpful for scheduling".to_owned(),
                total - resolvable,
            );
        }
        format!("preemption: {}", histogram(total, &verdicts))
    };
    format!("{filters} {preemption}")
}

/// The message of a pod a PreFilter plugin rejected (upstream's FitError with `PreFilterMsg`):
/// no node was examined, so preemption cannot help on any.
fn prefilter_message(total: usize, rejected: &str, ineligible: Option<&str>) -> String {
    let preemption = match ineligible {
        Some(why) => format!("preemption: {why}"),
        None => {
            let verdicts = BTreeMap::from([("Preemption is not helpful for scheduling".to_owned(), total)]);
            format!("preemption: {}", histogram(total, &verdicts))
        }
    };
    format!("0/{total} nodes are available: {rejected}. {preemption}")
}

fn scheduled_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled")
}

/// Whether a node change can make an unschedulable pod fit.
fn node_changed(old: &Node, new: &Node) -> bool {
    let allocatable = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    old.metadata.labels != new.metadata.labels
        || old.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
            != new.spec.as_ref().map(|s| (&s.taints, s.unschedulable))
        || allocatable(old) != allocatable(new)
}

impl Scheduler {
    fn new(
        client: Client,
        pdbs: Store<PodDisruptionBudget>,
        volumes: Arc<volume_binding::Volumes>,
    ) -> Scheduler {
        let (wake_tx, wake_rx) = mpsc::unbounded_channel();
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: SCHEDULER_NAME.to_owned(),
                instance: None,
            },
        );
        Scheduler {
            client,
            recorder: Arc::new(recorder),
            pdbs,
            volumes,
            cache: Cache::default(),
            pending: HashMap::new(),
            active: BinaryHeap::new(),
            in_active: HashSet::new(),
            unschedulable: HashSet::new(),
            in_flight: HashSet::new(),
            changed_in_flight: HashSet::new(),
            failures: HashMap::new(),
            seq: 0,
            next_start: 0,
            wake_tx,
            wake_rx,
            bound: 0,
        }
    }

    fn activate(&mut self, key: String) {
        let Some(pod) = self.pending.get(&key) else { return };
        if self.in_flight.contains(&key) {
            // The cluster changed during the attempt: try again once it ends.
            self.changed_in_flight.insert(key);
            return;
        }
        if !self.in_active.insert(key.clone()) {
            return;
        }
        self.unschedulable.remove(&key);
        self.seq += 1;
        let priority = pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0);
        self.active.push(Queued {
            priority,
            seq: self.seq,
            key,
        });
    }

    /// The cluster changed: every unschedulable pod gets another attempt.
    fn retry_unschedulable(&mut self) {
        let keys: Vec<String> = self.unschedulable.drain().collect();
        for key in keys {
            self.activate(key);
        }
    }

    fn retry_later(&mut self, key: String) {
        let failures = self.failures.entry(key.clone()).or_insert(0);
        *failures = failures.saturating_add(1);
        let delay = BACKOFF_INITIAL
            .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(8)))
            .min(BACKOFF_MAX);
        let wake = self.wake_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = wake.send(key);
        });
    }

    fn forget_pending(&mut self, key: &str) {
        self.cache.unnominate(key);
        self.pending.remove(key);
        self.in_active.remove(key);
        self.changed_in_flight.remove(key);
        self.unschedulable.remove(key);
        self.failures.remove(key);
    }

    fn observe_pod(&mut self, pod: Pod) {
        let key = crate::pods::key(&pod);
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        if let Some(node) = node {
            self.forget_pending(&key);
            self.cache.add_pod(key, Arc::new(pod), node);
            return;
        }
        let spec = pod.spec.as_ref();
        let ours = spec
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(SCHEDULER_NAME)
            == SCHEDULER_NAME;
        let gated = spec
            .and_then(|s| s.scheduling_gates.as_ref())
            .is_some_and(|g| !g.is_empty());
        if !ours || gated || pod.metadata.deletion_timestamp.is_some() {
            self.forget_pending(&key);
            return;
        }
        let pod = Arc::new(pod);
        let nominated = pod.status.as_ref().and_then(|s| s.nominated_node_name.as_deref());
        if !self.cache.assumed.contains(&key) {
            self.cache.nominate(&key, &pod, nominated);
        }
        let previous = self.pending.insert(key.clone(), pod);
        if self.in_flight.contains(&key) || self.cache.assumed.contains(&key) || self.in_active.contains(&key)
        {
            return;
        }
        let changed = previous.as_ref().is_none_or(|old| {
            let new = &self.pending[&key];
            old.metadata.generation != new.metadata.generation || old.metadata.labels != new.metadata.labels
        });
        if !self.unschedulable.contains(&key) || changed {
            self.activate(key);
        }
    }

    fn forget_pod(&mut self, pod: &Pod) {
        let key = crate::pods::key(pod);
        self.forget_pending(&key);
        if self.cache.remove_pod(&key).is_some() {
            self.retry_unschedulable();
        }
    }

    async fn run(mut self, shutdown: CancellationToken) {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let pods: Api<Pod> = Api::all(self.client.clone());
        let mut node_events = watcher(nodes, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut pod_events = watcher(
            pods,
            watcher::Config::default().fields("status.phase!=Succeeded,status.phase!=Failed"),
        )
        .default_backoff()
        .boxed();
        let (mut nodes_synced, mut pods_synced) = (false, false);
        // API calls run as their own tasks (both cores work) and report back here.
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Outcome>();
        let mut calls = 0usize;
        let mut relisted_nodes: Option<HashSet<String>> = None;
        let mut relisted_pods: Option<HashSet<String>> = None;
        let mut volume_changes = self.volumes.changes();
        loop {
            let ready = nodes_synced && pods_synced && !self.active.is_empty() && calls < MAX_IN_FLIGHT;
            tokio::select! {
                () = shutdown.cancelled() => break,
                event = node_events.next() => match event {
                    None => break,
                    Some(Err(err)) => tracing::debug!(error = %err, "node watch failed; retrying"),
                    Some(Ok(watcher::Event::Init)) => relisted_nodes = Some(HashSet::new()),
                    Some(Ok(watcher::Event::InitApply(node))) => {
                        if let Some(seen) = relisted_nodes.as_mut() {
                            seen.insert(node.name_any());
                        }
                        self.cache.set_node(node);
                    }
                    Some(Ok(watcher::Event::InitDone)) => {
                        if let Some(seen) = relisted_nodes.take() {
                            let gone: Vec<String> = self.cache.order.iter().filter(|n| !seen.contains(*n)).cloned().collect();
                            for name in gone {
                                self.cache.remove_node(&name);
                            }
                        }
                        nodes_synced = true;
                        self.retry_unschedulable();
                    }
                    Some(Ok(watcher::Event::Apply(node))) => {
                        let name = node.name_any();
                        let relevant = self
                            .cache
                            .nodes
                            .get(&name)
                            .and_then(|info| info.node.as_ref())
                            .is_none_or(|old| node_changed(old, &node));
                        self.cache.set_node(node);
                        if relevant {
                            self.retry_unschedulable();
                        }
                    }
                    Some(Ok(watcher::Event::Delete(node))) => self.cache.remove_node(&node.name_any()),
                },
                event = pod_events.next() => match event {
                    None => break,
                    Some(Err(err)) => tracing::debug!(error = %err, "pod watch failed; retrying"),
                    Some(Ok(watcher::Event::Init)) => relisted_pods = Some(HashSet::new()),
                    Some(Ok(watcher::Event::InitApply(pod))) => {
                        if let Some(seen) = relisted_pods.as_mut() {
                            seen.insert(crate::pods::key(&pod));
                        }
                        self.observe_pod(pod);
                    }
                    Some(Ok(watcher::Event::InitDone)) => {
                        if let Some(seen) = relisted_pods.take() {
                            let gone: Vec<String> = self
                                .cache
                                .pods
                                .keys()
                                .chain(self.pending.keys())
                                .filter(|k| !seen.contains(*k) && !self.cache.assumed.contains(*k))
                                .cloned()
                                .collect();
                            for key in gone {
                                self.forget_pending(&key);
                                self.cache.remove_pod(&key);
                            }
                        }
                        pods_synced = true;
                    }
                    Some(Ok(watcher::Event::Apply(pod))) => self.observe_pod(pod),
                    Some(Ok(watcher::Event::Delete(pod))) => self.forget_pod(&pod),
                },
                Some(key) = self.wake_rx.recv() => self.activate(key),
                Ok(()) = volume_changes.changed() => self.retry_unschedulable(),
                Some(outcome) = done_rx.recv() => {
                    calls -= 1;
                    self.finish(outcome);
                }
                () = std::future::ready(()), if ready => {
                    if let Some(call) = self.schedule_next() {
                        calls += 1;
                        let done = done_tx.clone();
                        tokio::spawn(async move {
                            let _ = done.send(call.await);
                        });
                    }
                }
            }
        }
        tracing::info!(bound = self.bound, "scheduler stopped");
    }

    fn finish(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Bound { key, result } => {
                self.in_flight.remove(&key);
                self.changed_in_flight.remove(&key);
                match result {
                    Ok(()) => {
                        self.bound += 1;
                        self.failures.remove(&key);
                    }
                    Err(err) => {
                        tracing::debug!(pod = %key, error = %err, "binding failed");
                        // Forget the assumption; the pod is retried if it is still unbound.
                        if self.cache.assumed.contains(&key) {
                            self.cache.remove_pod(&key);
                        }
                        if self.pending.contains_key(&key) {
                            self.retry_later(key);
                        }
                    }
                }
            }
            Outcome::Reported { key, result } => {
                self.in_flight.remove(&key);
                let changed = self.changed_in_flight.remove(&key);
                if let Err(err) = result {
                    tracing::debug!(pod = %key, error = %err, "reporting the pod unschedulable failed");
                    if self.pending.contains_key(&key) {
                        self.unschedulable.remove(&key);
                        self.retry_later(key);
                    }
                } else if changed {
                    self.activate(key);
                }
            }
        }
    }

    /// One scheduling attempt of the next pod in the queue.
    fn schedule_next(&mut self) -> Option<Call> {
        let queued = self.active.pop()?;
        let key = queued.key;
        self.in_active.remove(&key);
        let pod = self.pending.get(&key)?.clone();
        let span = tracing::debug_span!("schedule", pod = %key);
        let _entered = span.enter();
        let total = self.cache.order.len();
        let claims = match self.volumes.prefilter(&pod) {
            Ok(claims) => claims,
            Err(rejected) => {
                let ineligible = preemption::ineligible(&Prepared::new(&pod, &self.cache), &self.cache);
                let message = if total == 0 {
                    NO_NODES.to_owned()
                } else {
                    prefilter_message(total, &rejected, ineligible)
                };
                tracing::debug!(%message, "unschedulable");
                self.unschedulable.insert(key.clone());
                self.in_flight.insert(key.clone());
                return Some(self.report_unschedulable(key, &pod, message, None));
            }
        };
        let prepared = Prepared::new(&pod, &self.cache);
        let wanted = feasible_nodes_to_find(total);
        let mut feasible = Vec::new();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut curable = Vec::new();
        let start = if total == 0 { 0 } else { self.next_start % total };
        let mut examined = 0;
        for offset in 0..total {
            let name = &self.cache.order[(start + offset) % total];
            examined += 1;
            let Some(node) = self.cache.nodes.get(name) else {
                continue;
            };
            let verdict = prepared.filter(name, node).and_then(|()| match &claims {
                Some(claims) => self
                    .volumes
                    .filter(claims, name, node.labels())
                    .map(|_| ())
                    .map_err(|reasons| plugins::Failure {
                        code: Code::Unresolvable,
                        reasons,
                    }),
                None => Ok(()),
            });
            match verdict {
                Ok(()) => {
                    feasible.push((name.as_str(), node));
                    if feasible.len() >= wanted {
                        break;
                    }
                }
                Err(failure) => {
                    if failure.code == Code::Unschedulable {
                        curable.push(name.clone());
                    }
                    for reason in failure.reasons {
                        *reasons.entry(reason).or_insert(0) += 1;
                    }
                }
            }
        }
        if total > 0 {
            self.next_start = (start + examined) % total;
        }
        if feasible.is_empty() {
            let ineligible = preemption::ineligible(&prepared, &self.cache);
            let chosen = match ineligible {
                None if !curable.is_empty() => {
                    preemption::select(&prepared, &self.cache, &self.pdbs.state(), &curable)
                }
                _ => None,
            };
            let message = if total == 0 {
                NO_NODES.to_owned()
            } else if chosen.is_some() {
                histogram(total, &reasons)
            } else {
                unschedulable_message(total, &reasons, curable.len(), ineligible)
            };
            tracing::debug!(%message, "unschedulable");
            // A pod that may not preempt keeps its nomination (upstream's no-op nominating
            // info); otherwise preemption's verdict replaces it.
            let nominated = if ineligible.is_some() {
                pod.status.as_ref().and_then(|s| s.nominated_node_name.clone())
            } else {
                chosen.as_ref().map(|victims| victims.node.clone())
            };
            drop(prepared);
            self.cache.nominate(&key, &pod, nominated.as_deref());
            if let Some(victims) = chosen {
                self.preempt(&pod, victims);
            }
            self.unschedulable.insert(key.clone());
            self.in_flight.insert(key.clone());
            return Some(self.report_unschedulable(key, &pod, message, nominated));
        }
        let scores = prepared.score(&feasible);
        let best = scores
            .iter()
            .enumerate()
            .max_by_key(|(i, score)| (**score, std::cmp::Reverse(*i)))
            .map_or(0, |(i, _)| i);
        let node = feasible[best].0.to_owned();
        let plan = claims
            .as_ref()
            .and_then(|c| self.volumes.filter(c, &node, feasible[best].1.labels()).ok())
            .unwrap_or_default();
        drop(prepared);
        self.volumes.assume(&plan);
        // Assume: the next decisions see this pod on its node before the binding lands.
        self.cache.unnominate(&key);
        self.cache.add_pod(key.clone(), pod.clone(), node.clone());
        self.cache.assumed.insert(key.clone());
        self.in_flight.insert(key.clone());
        Some(self.bind(key, &pod, node, plan))
    }

    fn bind(&self, key: String, pod: &Pod, node: String, plan: volume_binding::Plan) -> Call {
        let namespace = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": pod.metadata.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let recorder = self.recorder.clone();
        let reference = reference(pod);
        let (volumes, client) = (self.volumes.clone(), self.client.clone());
        Box::pin(async move {
            // PreBind: the pod's volumes first, as upstream's VolumeBinding plugin.
            let prebound = if plan.is_empty() {
                Ok(())
            } else {
                let result = volumes.bind(&client, &plan, &node).await;
                volumes.forget(&plan);
                result.map_err(|err| kube::Error::Service(Box::new(err)))
            };
            let result = match prebound {
                Ok(()) => api
                    .create_subresource::<_, serde_json::Value>(
                        "binding",
                        &name,
                        &PostParams::default(),
                        &binding,
                    )
                    .await
                    .map(|_| ()),
                Err(err) => Err(err),
            };
            if result.is_ok() {
                let event = Event {
                    type_: EventType::Normal,
                    reason: "Scheduled".to_owned(),
                    note: Some(format!("Successfully assigned {namespace}/{name} to {node}")),
                    action: "Binding".to_owned(),
                    secondary: None,
                };
                if let Err(err) = recorder.publish(&event, &reference).await {
                    tracing::debug!(pod = %key, error = %err, "publishing the Scheduled event failed");
                }
            }
            Outcome::Bound { key, result }
        })
    }

    /// Evicts the victims as upstream does: a `DisruptionTarget` condition, deletion (with
    /// the victim's own grace period) and a `Preempted` event.
    fn preempt(&self, preemptor: &Pod, victims: preemption::Victims) {
        let uid = preemptor.uid().unwrap_or_default();
        tracing::info!(pod = %crate::pods::key(preemptor), node = %victims.node, victims = victims.pods.len(), "preempting");
        for victim in victims.pods {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), victim.namespace());
            let recorder = self.recorder.clone();
            let note = format!("Preempted by pod {uid} on node {}", victims.node);
            tokio::spawn(async move {
                let name = victim.pod.name_any();
                let now = Timestamp::now();
                let condition = json!({"status": {"conditions": [{
                    "type": "DisruptionTarget", "status": "True", "lastProbeTime": null,
                    "lastTransitionTime": Timestamp::from_second(now.as_second()).unwrap_or(now).to_string(),
                    "reason": "PreemptionByScheduler",
                    "message": format!("{SCHEDULER_NAME}: preempting to accommodate a higher priority pod"),
                }]}});
                let result = async {
                    api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(&condition))
                        .await?;
                    api.delete(&name, &kube::api::DeleteParams::default()).await?;
                    Ok::<(), kube::Error>(())
                }
                .await;
                match result {
                    // Already gone or changed: the next attempt decides again.
                    Ok(()) | Err(kube::Error::Api(_)) => {}
                    Err(err) => tracing::warn!(victim = %victim.key, error = %err, "preempting failed"),
                }
                let event = Event {
                    type_: EventType::Normal,
                    reason: "Preempted".to_owned(),
                    note: Some(note),
                    action: "Preempting".to_owned(),
                    secondary: None,
                };
                if let Err(err) = recorder.publish(&event, &reference(&victim.pod)).await {
                    tracing::debug!(victim = %victim.key, error = %err, "publishing the Preempted event failed");
                }
            });
        }
    }

    fn report_unschedulable(
        &self,
        key: String,
        pod: &Pod,
        message: String,
        nominated: Option<String>,
    ) -> Call {
        let current = scheduled_condition(pod);
        let current_nominated = pod.status.as_ref().and_then(|s| s.nominated_node_name.clone());
        let unchanged = current_nominated == nominated
            && current.is_some_and(|c| {
                c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
                    && c.message.as_deref() == Some(&message)
            });
        let transition = match current {
            Some(c) if c.status == "False" => c.last_transition_time.as_ref().map(|t| t.0),
            _ => None,
        }
        .unwrap_or_else(Timestamp::now);
        let transition = Timestamp::from_second(transition.as_second()).unwrap_or(transition);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let name = pod.name_any();
        let recorder = self.recorder.clone();
        let reference = reference(pod);
        Box::pin(async move {
            let event = Event {
                type_: EventType::Warning,
                reason: "FailedScheduling".to_owned(),
                note: Some(message.clone()),
                action: "Scheduling".to_owned(),
                secondary: None,
            };
            if let Err(err) = recorder.publish(&event, &reference).await {
                tracing::debug!(pod = %key, error = %err, "publishing the FailedScheduling event failed");
            }
            let result = if unchanged {
                Ok(())
            } else {
                let patch = json!({"status": {
                    "nominatedNodeName": nominated,
                    "conditions": [{
                        "type": "PodScheduled", "status": "False", "lastProbeTime": null,
                        "lastTransitionTime": transition.to_string(), "reason": "Unschedulable",
                        "message": message,
                    }],
                }});
                api.patch_status(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                    .map(|_| ())
            };
            Outcome::Reported { key, result }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feasible_nodes_follow_upstream_percentages() {
        assert_eq!(feasible_nodes_to_find(3), 3);
        assert_eq!(feasible_nodes_to_find(100), 100);
        assert_eq!(feasible_nodes_to_find(1000), 420);
        assert_eq!(feasible_nodes_to_find(5000), 500);
    }

    #[test]
    fn messages_are_upstreams() {
        let reasons: BTreeMap<String, usize> = [
            ("Insufficient cpu".to_owned(), 1),
            (plugins::REASON_TAINTS.to_owned(), 2),
        ]
        .into();
        assert_eq!(
            unschedulable_message(3, &reasons, 1, None),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint(s). \
             preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
             2 Preemption is not helpful for scheduling."
        );
    }
}
