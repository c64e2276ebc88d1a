//! The node lifecycle controller (upstream: pkg/controller/nodelifecycle).
//!
//! - Health: a node is alive while its Lease in `kube-node-lease` is renewed or its `Ready`
//!   condition's heartbeat moves. Each change is stamped with this controller's clock (as
//!   upstream's `probeTimestamp`); `node-monitor-grace-period` (50 s; 60 s for a node that never
//!   posted `Ready`) after the last one, `Ready`, `MemoryPressure`, `DiskPressure` and
//!   `PIDPressure` become `Unknown` (`NodeStatusUnknown`, "Kubelet stopped posting node
//!   status."). Nothing polls: a healthy node is requeued for the exact instant it would
//!   expire, and every renewal reschedules it.
//! - NoExecute taints: `node.kubernetes.io/not-ready` while `Ready` is `False`,
//!   `node.kubernetes.io/unreachable` while it is `Unknown` (swapped at once; added at
//!   `--node-eviction-rate` 0.1/s per zone; not at all in a partially disrupted zone of at most
//!   50 nodes; none anywhere, and existing ones removed, while every zone is fully disrupted),
//!   removed when the node is `Ready` again. The taint eviction controller acts on them.
//! - The pods of a node that is not `Ready` get `Ready=False` (upstream's `MarkPodsNotReady`,
//!   with its `NodeNotReady` events).
//! - NoSchedule taints follow the conditions (`doNoScheduleTaintingPass`): `not-ready`,
//!   `unreachable`, `memory-pressure`, `disk-pressure`, `pid-pressure`,
//!   `network-unavailable`, and `unschedulable` when cordoned. This lifts the `not-ready` taint
//!   the TaintNodesByCondition admission plugin puts on new nodes once they report Ready.
//!
//! It writes only node conditions, the taints above and pods' `Ready` condition; an idle
//! healthy cluster makes it write nothing. It never deletes pods (taint eviction does).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, ObjectReference, Pod, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_conflict, is_not_found};

/// The controller's name in `--controllers`.
pub const NAME: &str = "node-lifecycle-controller";
/// The component named in its events.
const COMPONENT: &str = "node-controller";

/// How long a node may stay silent before it is marked `Unknown` (upstream's default
/// `--node-monitor-grace-period` since 1.32).
pub const NODE_MONITOR_GRACE_PERIOD: Duration = Duration::from_secs(50);
/// The same for a node that never posted a `Ready` condition (`--node-startup-grace-period`).
pub const NODE_STARTUP_GRACE_PERIOD: Duration = Duration::from_secs(60);
/// NoExecute taints added per second per healthy zone (`--node-eviction-rate`).
const EVICTION_QPS: f64 = 0.1;
/// The same in a partially disrupted large zone (`--secondary-node-eviction-rate`).
const SECONDARY_EVICTION_QPS: f64 = 0.01;
/// Zones of at most this many nodes stop tainting when partially disrupted.
const LARGE_CLUSTER_THRESHOLD: usize = 50;
/// The share of not-ready nodes that makes a zone partially disrupted.
const UNHEALTHY_ZONE_THRESHOLD: f64 = 0.55;
/// The namespace of node Leases.
const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// Nodes with this label are left out of the zone states.
const EXCLUDE_DISRUPTION: &str = "node.kubernetes.io/exclude-disruption";

const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// The conditions a silent node gets as `Unknown` (`NetworkUnavailable` belongs to the control
/// plane and is left alone).
const SILENT_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The taint a condition in a status calls for.
fn condition_taint(kind: &str, status: &str) -> Option<&'static str> {
    match (kind, status) {
        ("Ready", "False") => Some(NOT_READY),
        ("Ready", "Unknown") => Some(UNREACHABLE),
        ("MemoryPressure", "True") => Some("node.kubernetes.io/memory-pressure"),
        ("DiskPressure", "True") => Some("node.kubernetes.io/disk-pressure"),
        ("PIDPressure", "True") => Some("node.kubernetes.io/pid-pressure"),
        ("NetworkUnavailable", "True") => Some("node.kubernetes.io/network-unavailable"),
        _ => None,
    }
}

/// NoSchedule taint keys this controller owns.
fn owned(key: &str) -> bool {
    key == UNSCHEDULABLE
        || [
            NOT_READY,
            UNREACHABLE,
            "node.kubernetes.io/memory-pressure",
            "node.kubernetes.io/disk-pressure",
            "node.kubernetes.io/pid-pressure",
            "node.kubernetes.io/network-unavailable",
        ]
        .contains(&key)
}

fn conditions(node: &Node) -> &[NodeCondition] {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[])
}

fn condition<'a>(node: &'a Node, kind: &str) -> Option<&'a NodeCondition> {
    conditions(node).iter().find(|c| c.type_ == kind)
}

/// The `Ready` status, `Unknown` when there is none.
fn ready_status(node: &Node) -> &str {
    condition(node, "Ready").map_or("Unknown", |c| c.status.as_str())
}

fn taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
}

fn has_taint(node: &Node, key: &str, effect: &str) -> bool {
    taints(node).iter().any(|t| t.key == key && t.effect == effect)
}

fn new_taint(key: &str, effect: &str, now: Timestamp) -> Taint {
    Taint {
        key: key.to_owned(),
        effect: effect.to_owned(),
        time_added: Some(Time(Timestamp::from_second(now.as_second()).unwrap_or(now))),
        value: None,
    }
}

/// The NoSchedule taints the node's conditions call for, as (key, effect) pairs.
fn no_schedule_taints(node: &Node) -> Vec<&'static str> {
    let mut wanted: Vec<&'static str> = conditions(node)
        .iter()
        .filter_map(|c| condition_taint(&c.type_, &c.status))
        .collect();
    if node.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false) {
        wanted.push(UNSCHEDULABLE);
    }
    wanted
}

/// The node's taints with `wanted` taints of `effect` among `owned` keys and no others of
/// them, or `None` when they are already so. New taints are stamped `now`.
fn with_taints(
    current: &[Taint],
    effect: &str,
    owned: impl Fn(&str) -> bool,
    wanted: &[&str],
    now: Timestamp,
) -> Option<Vec<Taint>> {
    let is_owned = |t: &Taint| t.effect == effect && owned(&t.key);
    let present: Vec<&str> = current
        .iter()
        .filter(|t| is_owned(t))
        .map(|t| t.key.as_str())
        .collect();
    if wanted.len() == present.len() && wanted.iter().all(|k| present.contains(k)) {
        return None;
    }
    let mut taints: Vec<Taint> = current
        .iter()
        .filter(|t| !is_owned(t) || wanted.contains(&t.key.as_str()))
        .cloned()
        .collect();
    for key in wanted {
        if !present.contains(key) {
            taints.push(new_taint(key, effect, now));
        }
    }
    Some(taints)
}

/// The node's taints after the NoSchedule pass, or `None` when they are already right.
#[cfg(test)]
fn desired_taints(node: &Node) -> Option<Vec<Taint>> {
    with_taints(
        taints(node),
        "NoSchedule",
        owned,
        &no_schedule_taints(node),
        Timestamp::now(),
    )
}

/// What the controller last saw of a node's heartbeats.
#[derive(Clone, Debug)]
struct Health {
    /// When a heartbeat last moved, by this controller's clock.
    probe: Timestamp,
    ready_heartbeat: Option<Timestamp>,
    lease_renew: Option<Timestamp>,
}

/// A zone's state (upstream's ZoneState).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// Upstream's ComputeZoneState.
fn zone_state(ready: usize, not_ready: usize) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= UNHEALTHY_ZONE_THRESHOLD {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// How many NoExecute taints per second a zone in `state` of `size` nodes may get.
fn zone_rate(state: ZoneState, size: usize) -> f64 {
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => EVICTION_QPS,
        ZoneState::PartialDisruption if size > LARGE_CLUSTER_THRESHOLD => SECONDARY_EVICTION_QPS,
        ZoneState::PartialDisruption => 0.0,
    }
}

/// A node's region and zone labels (empty when absent).
fn zone_labels(node: &Node) -> (&str, &str) {
    let label = |key: &str| node.labels().get(key).map_or("", String::as_str);
    (
        label("topology.kubernetes.io/region"),
        label("topology.kubernetes.io/zone"),
    )
}

/// Upstream's GetZoneKey: region and zone, or empty.
fn zone_key(node: &Node) -> String {
    let (region, zone) = zone_labels(node);
    if region.is_empty() && zone.is_empty() {
        String::new()
    } else {
        format!("{region}:\x00:{zone}")
    }
}

/// Each node's zone and readiness as this controller last decided them, and the zones'
/// counts kept from them: a reconcile (each lease renewal) updates one entry instead of
/// looking at every node. Clusters have few zones and many nodes.
#[derive(Debug, Default)]
struct ZoneBook {
    /// Node name -> (zone key, ready); `None` for a node left out of the zone states.
    members: HashMap<String, Option<(String, bool)>>,
    /// Zone key -> (ready, not-ready) nodes.
    counts: BTreeMap<String, (usize, usize)>,
}

impl ZoneBook {
    /// What the zone states count of `node` when its `Ready` status is `ready`.
    fn membership(node: &Node, ready: &str) -> Option<(String, bool)> {
        (!node.labels().contains_key(EXCLUDE_DISRUPTION)).then(|| (zone_key(node), ready == "True"))
    }

    /// Records the node's membership, moving it between the zones' counts when it changed.
    fn set(&mut self, name: &str, member: Option<(String, bool)>) {
        let previous = match self.members.get_mut(name) {
            Some(current) if *current == member => return,
            Some(current) => std::mem::replace(current, member.clone()),
            None => {
                self.members.insert(name.to_owned(), member.clone());
                None
            }
        };
        if let Some((zone, ready)) = previous
            && let Some(count) = self.counts.get_mut(&zone)
        {
            let slot = if ready { &mut count.0 } else { &mut count.1 };
            *slot = slot.saturating_sub(1);
            if *count == (0, 0) {
                self.counts.remove(&zone);
            }
        }
        if let Some((zone, ready)) = member {
            let count = self.counts.entry(zone).or_default();
            if ready {
                count.0 += 1;
            } else {
                count.1 += 1;
            }
        }
    }

    /// Records the node (whose `Ready` status is now `ready`). When the set of nodes changed
    /// since the book was last built, it is built again from every node in `nodes`.
    fn note(&mut self, nodes: &Store<Node>, node: &Node, ready: &str) {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        if self.members.len() != nodes.len() || !self.members.contains_key(name) {
            self.members.clear();
            self.counts.clear();
            for other in nodes.state() {
                let other_name = other.metadata.name.as_deref().unwrap_or_default();
                if other_name != name {
                    self.set(other_name, Self::membership(&other, ready_status(&other)));
                }
            }
        }
        self.set(name, Self::membership(node, ready));
    }

    /// Every zone's state and size.
    fn states(&self) -> BTreeMap<String, (ZoneState, usize)> {
        self.counts
            .iter()
            .map(|(zone, &(ready, not_ready))| {
                (zone.clone(), (zone_state(ready, not_ready), ready + not_ready))
            })
            .collect()
    }
}

struct State {
    nodes: Store<Node>,
    leases: Store<Lease>,
    health: Mutex<HashMap<String, Health>>,
    zone_book: Mutex<ZoneBook>,
    /// Zone states as last acted upon, and whether every zone was fully disrupted.
    zones: Mutex<(BTreeMap<String, ZoneState>, bool)>,
    /// When each zone may next get a NoExecute taint.
    limiters: Mutex<HashMap<String, Instant>>,
    /// Requests a reconcile of every node (a zone changed state).
    resync: mpsc::UnboundedSender<()>,
    recorder: Recorder,
}

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let (leases, lease_writer) = reflector::store::<Lease>();
    let lease_events = watcher(
        Api::<Lease>::namespaced(client.clone(), NODE_LEASE_NAMESPACE),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(lease_writer)
    .touched_objects();
    let (resync, resync_rx) = mpsc::unbounded_channel::<()>();
    let resyncs =
        futures_util::stream::unfold(
            resync_rx,
            |mut rx| async move { rx.recv().await.map(|()| ((), rx)) },
        );
    let controller = Controller::new(Api::<Node>::all(client), watcher::Config::default());
    let nodes = controller.store();
    let controller = controller
        .watches_stream(lease_events, |lease: Lease| {
            Some(ObjectRef::<Node>::new(&lease.name_any()))
        })
        .reconcile_all_on(resyncs);
    let state = Arc::new(State {
        nodes,
        leases,
        health: Mutex::new(HashMap::new()),
        zone_book: Mutex::new(ZoneBook::default()),
        zones: Mutex::new((BTreeMap::new(), false)),
        limiters: Mutex::new(HashMap::new()),
        resync,
        recorder: context.recorder(COMPONENT),
    });
    harness::run(NAME, controller, context, shutdown, move |node, context| {
        let state = state.clone();
        async move { Box::pin(reconcile(node, context, state)).await }
    })
    .await;
}

fn node_reference(node: &Node) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".to_owned()),
        kind: Some("Node".to_owned()),
        name: node.metadata.name.clone(),
        uid: node.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

impl State {
    /// Updates what is known of the node's heartbeats; returns when it was last heard of and
    /// its grace period.
    fn probe(&self, node: &Node, now: Timestamp) -> (Timestamp, Duration) {
        let name = node.name_any();
        let ready = condition(node, "Ready");
        let heartbeat = ready.and_then(|c| c.last_heartbeat_time.as_ref()).map(|t| t.0);
        let lease_renew = self
            .leases
            .get(&ObjectRef::new(&name).within(NODE_LEASE_NAMESPACE))
            .and_then(|lease| lease.spec.as_ref()?.renew_time.as_ref().map(|t| t.0));
        let grace = if ready.is_some() {
            NODE_MONITOR_GRACE_PERIOD
        } else {
            NODE_STARTUP_GRACE_PERIOD
        };
        let Ok(mut health) = self.health.lock() else {
            return (now, grace);
        };
        let entry = health.entry(name).or_insert_with(|| Health {
            // A node that never posted Ready counts from its creation (upstream does the same).
            probe: if ready.is_some() {
                now
            } else {
                node.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0)
            },
            ready_heartbeat: heartbeat,
            lease_renew: None,
        });
        if entry.ready_heartbeat != heartbeat {
            entry.ready_heartbeat = heartbeat;
            entry.probe = now;
        }
        if lease_renew.is_some() && lease_renew > entry.lease_renew {
            entry.lease_renew = lease_renew;
            entry.probe = now;
        }
        (entry.probe, grace)
    }

    /// Notes the zone states; when they changed, every node is looked at again (their
    /// tainting depends on them). Returns whether every zone is fully disrupted.
    fn note_zones(&self, states: &BTreeMap<String, (ZoneState, usize)>, now: Timestamp) -> bool {
        let all_disrupted =
            !states.is_empty() && states.values().all(|(s, _)| *s == ZoneState::FullDisruption);
        let Ok(mut zones) = self.zones.lock() else {
            return all_disrupted;
        };
        let current: BTreeMap<String, ZoneState> = states
            .iter()
            .map(|(zone, (state, _))| (zone.clone(), *state))
            .collect();
        if zones.0 != current || zones.1 != all_disrupted {
            if zones.1 && !all_disrupted {
                // Leaving full disruption: every node gets a fresh grace period, as upstream.
                if let Ok(mut health) = self.health.lock() {
                    for entry in health.values_mut() {
                        entry.probe = now;
                    }
                }
            }
            tracing::info!(?current, all_disrupted, "zone states changed");
            *zones = (current, all_disrupted);
            let _ = self.resync.send(());
        }
        all_disrupted
    }

    /// Takes the zone's permission to add a NoExecute taint now, or says how long to wait.
    fn take_token(&self, zone: &str, rate: f64) -> Result<(), Option<Duration>> {
        if rate <= 0.0 {
            return Err(None);
        }
        let Ok(mut limiters) = self.limiters.lock() else {
            return Err(None);
        };
        let now = Instant::now();
        let next = limiters.entry(zone.to_owned()).or_insert(now);
        if *next > now {
            return Err(Some(*next - now));
        }
        *next = now + Duration::from_secs_f64(1.0 / rate);
        Ok(())
    }

    async fn event(&self, reference: &ObjectReference, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: reason.to_owned(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, reference).await {
            tracing::debug!(error = %err, reason, "publishing an event failed");
        }
    }
}

/// Marks the silent node's conditions `Unknown`; returns whether anything changed.
fn mark_unknown(node: &mut Node, now: Timestamp) -> bool {
    let now_time = Time(Timestamp::from_second(now.as_second()).unwrap_or(now));
    let created = node.metadata.creation_timestamp.clone();
    let status = node.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let mut changed = false;
    for kind in SILENT_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == kind) {
            None => {
                conditions.push(NodeCondition {
                    type_: kind.to_owned(),
                    status: "Unknown".to_owned(),
                    reason: Some("NodeStatusNeverUpdated".to_owned()),
                    message: Some("Kubelet never posted node status.".to_owned()),
                    last_heartbeat_time: created.clone(),
                    last_transition_time: Some(now_time.clone()),
                });
                changed = true;
            }
            Some(current) if current.status != "Unknown" => {
                current.status = "Unknown".to_owned();
                current.reason = Some("NodeStatusUnknown".to_owned());
                current.message = Some("Kubelet stopped posting node status.".to_owned());
                current.last_transition_time = Some(now_time.clone());
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed
}

/// The NoExecute taint the `Ready` status calls for.
fn no_execute_taint(ready: &str) -> Option<&'static str> {
    match ready {
        "False" => Some(NOT_READY),
        "Unknown" => Some(UNREACHABLE),
        _ => None,
    }
}

async fn reconcile(
    node: Arc<Node>,
    context: Arc<Context>,
    state: Arc<State>,
) -> Result<Action, ReconcileError> {
    let name = node.name_any();
    let api: Api<Node> = Api::all(context.client.clone());
    let now = Timestamp::now();
    let (probe, grace) = state.probe(&node, now);
    let expires = probe + SignedDuration::try_from(grace).unwrap_or(SignedDuration::ZERO);
    let mut node = (*node).clone();
    let observed_ready = ready_status(&node).to_owned();
    let mut requeue: Option<Duration> = None;

    if now > expires {
        if mark_unknown(&mut node, now) && ready_status(&node) != observed_ready {
            node = match api.replace_status(&name, &PostParams::default(), &node).await {
                Ok(node) => node,
                Err(err) if is_not_found(&err) || is_conflict(&err) => return Ok(Action::await_change()),
                Err(err) => return Err(err.into()),
            };
            tracing::info!(node = %name, "node stopped posting status; marked Unknown");
            if observed_ready == "True" {
                let note = format!("Node {name} status is now: NodeNotReady");
                state
                    .event(&node_reference(&node), EventType::Normal, "NodeNotReady", note)
                    .await;
            }
        }
    } else {
        // Looked at again the moment it would expire (a renewal before then reschedules it).
        let remaining = expires.duration_since(now).unsigned_abs();
        requeue = Some(remaining + Duration::from_millis(10));
    }
    let ready = ready_status(&node).to_owned();

    let zones = match state.zone_book.lock() {
        Ok(mut book) => {
            book.note(&state.nodes, &node, &ready);
            book.states()
        }
        Err(_) => BTreeMap::new(),
    };
    let all_disrupted = state.note_zones(&zones, now);

    // NoExecute taints: removed when Ready; swapped at once between not-ready and
    // unreachable; added through the zone's rate limiter; none in full disruption.
    let current_no_execute = [NOT_READY, UNREACHABLE]
        .into_iter()
        .find(|key| has_taint(&node, key, "NoExecute"));
    let wanted = no_execute_taint(&ready);
    let no_execute: Vec<&str> = if all_disrupted {
        Vec::new()
    } else {
        match (wanted, current_no_execute) {
            (None, _) => Vec::new(),
            (Some(wanted), Some(_)) => vec![wanted],
            (Some(wanted), None) => {
                let zone = zone_key(&node);
                let (zone_state, size) = zones.get(&zone).copied().unwrap_or((ZoneState::Normal, 1));
                match state.take_token(&zone, zone_rate(zone_state, size)) {
                    Ok(()) => vec![wanted],
                    Err(wait) => {
                        if let Some(wait) = wait {
                            requeue = Some(requeue.map_or(wait, |r| r.min(wait)));
                        }
                        Vec::new()
                    }
                }
            }
        }
    };
    let is_eviction_taint = |key: &str| key == NOT_READY || key == UNREACHABLE;
    let after_no_execute = with_taints(taints(&node), "NoExecute", is_eviction_taint, &no_execute, now);
    let base = after_no_execute.clone().unwrap_or_else(|| taints(&node).to_vec());
    let after_no_schedule = with_taints(&base, "NoSchedule", owned, &no_schedule_taints(&node), now);
    if after_no_execute.is_some() || after_no_schedule.is_some() {
        let taints = after_no_schedule.unwrap_or(base);
        node.spec.get_or_insert_with(Default::default).taints = (!taints.is_empty()).then_some(taints);
        // Conditioned on the version read: a concurrent change makes this fail and re-run.
        match api.replace(&name, &PostParams::default(), &node).await {
            Ok(_) => {}
            Err(err) if is_not_found(&err) || is_conflict(&err) => return Ok(Action::await_change()),
            Err(err) => return Err(err.into()),
        }
    }

    if ready != "True" {
        mark_pods_not_ready(&context, &state, &name).await?;
    }
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Upstream's MarkPodsNotReady: every pod on the node gets `Ready=False`.
async fn mark_pods_not_ready(context: &Context, state: &State, node: &str) -> Result<(), ReconcileError> {
    let pods: Api<Pod> = Api::all(context.client.clone());
    let list = pods
        .list(&ListParams::default().fields(&format!("spec.nodeName={node}")))
        .await?;
    for mut pod in list.items {
        let Some(conditions) = pod.status.as_mut().and_then(|s| s.conditions.as_mut()) else {
            continue;
        };
        let Some(ready) = conditions.iter_mut().find(|c| c.type_ == "Ready") else {
            continue;
        };
        if ready.status == "False" {
            continue;
        }
        let now = Timestamp::now();
        ready.status = "False".to_owned();
        ready.last_transition_time = Some(Time(Timestamp::from_second(now.as_second()).unwrap_or(now)));
        let api: Api<Pod> = Api::namespaced(context.client.clone(), &pod.namespace().unwrap_or_default());
        match api
            .replace_status(&pod.name_any(), &PostParams::default(), &pod)
            .await
        {
            Ok(updated) => {
                let reference = ObjectReference {
                    api_version: Some("v1".to_owned()),
                    kind: Some("Pod".to_owned()),
                    name: updated.metadata.name.clone(),
                    namespace: updated.metadata.namespace.clone(),
                    uid: updated.metadata.uid.clone(),
                    ..ObjectReference::default()
                };
                state
                    .event(
                        &reference,
                        EventType::Warning,
                        "NodeNotReady",
                        "Node is not ready".to_owned(),
                    )
                    .await;
            }
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use super::*;

    fn node(ready: &str, taints: serde_json::Value, unschedulable: bool) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"},
            "spec": {"taints": taints, "unschedulable": unschedulable},
            "status": {"conditions": [{"type": "Ready", "status": ready}]},
        }))
        .unwrap()
    }

    #[test]
    fn taints_follow_conditions() {
        let not_ready = serde_json::json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                                          {"key": "dedicated", "value": "x", "effect": "NoSchedule"}]);
        let taints = desired_taints(&node("True", not_ready.clone(), false)).unwrap();
        assert_eq!(taints.len(), 1);
        assert_eq!(taints[0].key, "dedicated");
        assert!(desired_taints(&node("False", not_ready.clone(), false)).is_none());
        let taints = desired_taints(&node("Unknown", not_ready, true)).unwrap();
        let keys: Vec<&str> = taints.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["dedicated", UNREACHABLE, UNSCHEDULABLE]);
    }

    #[test]
    fn silent_nodes_become_unknown_like_upstream() {
        let mut n: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"conditions": [
                {"type": "Ready", "status": "True", "reason": "KubeletReady"},
                {"type": "MemoryPressure", "status": "False"},
                {"type": "NetworkUnavailable", "status": "False"},
            ]},
        }))
        .unwrap();
        assert!(mark_unknown(&mut n, Timestamp::now()));
        let ready = condition(&n, "Ready").unwrap();
        assert_eq!(ready.status, "Unknown");
        assert_eq!(ready.reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            ready.message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
        let disk = condition(&n, "DiskPressure").unwrap();
        assert_eq!(disk.reason.as_deref(), Some("NodeStatusNeverUpdated"));
        assert_eq!(condition(&n, "NetworkUnavailable").unwrap().status, "False");
        assert!(!mark_unknown(&mut n, Timestamp::now()));
    }

    #[test]
    fn zone_book_moves_nodes_between_counts() {
        let mut book = ZoneBook::default();
        let zone = |z: &str| Some((z.to_owned(), true));
        book.set("a", zone("r:\0:z1"));
        book.set("b", zone("r:\0:z1"));
        book.set("c", Some(("r:\0:z2".to_owned(), false)));
        book.set("d", None);
        let states = book.states();
        assert_eq!(states["r:\0:z1"], (ZoneState::Normal, 2));
        assert_eq!(states["r:\0:z2"], (ZoneState::FullDisruption, 1));
        // c recovers, a turns not ready, b moves zone, d joins a zone.
        book.set("c", zone("r:\0:z2"));
        book.set("a", Some(("r:\0:z1".to_owned(), false)));
        book.set("b", zone("r:\0:z2"));
        book.set("d", zone("r:\0:z2"));
        let states = book.states();
        assert_eq!(states["r:\0:z1"], (ZoneState::FullDisruption, 1));
        assert_eq!(states["r:\0:z2"], (ZoneState::Normal, 3));
        // A zone left empty disappears.
        book.set("a", zone("r:\0:z2"));
        assert_eq!(book.states().len(), 1);
        assert_eq!(book.states()["r:\0:z2"], (ZoneState::Normal, 4));
    }

    #[test]
    fn zone_states_as_upstream() {
        assert_eq!(zone_state(1, 1), ZoneState::Normal);
        assert_eq!(zone_state(0, 1), ZoneState::FullDisruption);
        assert_eq!(zone_state(2, 2), ZoneState::Normal);
        assert_eq!(zone_state(2, 3), ZoneState::PartialDisruption);
        assert_eq!(zone_rate(ZoneState::PartialDisruption, 10), 0.0);
        assert_eq!(
            zone_rate(ZoneState::PartialDisruption, 51),
            SECONDARY_EVICTION_QPS
        );
        assert_eq!(zone_rate(ZoneState::FullDisruption, 3), EVICTION_QPS);
    }

    #[test]
    fn no_execute_taints_swap_and_keep_others() {
        let current: Vec<Taint> = serde_json::from_value(serde_json::json!([
            {"key": NOT_READY, "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"},
            {"key": "other", "effect": "NoExecute"},
        ]))
        .unwrap();
        let is_eviction = |k: &str| k == NOT_READY || k == UNREACHABLE;
        let next = with_taints(
            &current,
            "NoExecute",
            is_eviction,
            &[UNREACHABLE],
            Timestamp::now(),
        )
        .unwrap();
        let keys: Vec<&str> = next.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["other", UNREACHABLE]);
        assert!(next[1].time_added.is_some());
        assert!(with_taints(&current, "NoExecute", is_eviction, &[NOT_READY], Timestamp::now()).is_none());
    }
}
