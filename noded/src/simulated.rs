//! Simulated nodes, in the style of kwok: N Node objects that look like healthy kubelets
//! (capacity, addresses, node info, upstream's conditions), a Lease per node renewed every
//! 10 s in `kube-node-lease`, and the pods bound to them "run" by status writes alone.
//!
//! Pods are followed with one watch (`spec.nodeName!=""`, filtered to these nodes); each
//! change queues the pod, and a bounded set of concurrent writes (which the API server commits
//! together) moves it along: Pending → Running with a pod IP from the node's `podCIDR`
//! (followed by a watch on nodes once the node IPAM controller sets it; without one, the
//! node's own /24 in 100.64.0.0/10, outside the cluster CIDR, unless [`Config`] says to wait
//! for the podCIDR as `rudder server` does), then for run-to-completion pods
//! (`restartPolicy` Never or OnFailure) Succeeded or Failed after a delay, and pods being
//! deleted are finalized (containers terminated, then deleted with a grace period of 0) as a
//! kubelet does. Nothing polls: timers exist only for pods due to finish.
//!
//! Annotations steer a pod's fate: [`DURATION_ANNOTATION`] (how long it runs, a Go duration
//! such as `500ms` or `2s`; default 1 s) and [`EXIT_CODE_ANNOTATION`] (its exit code; default
//! 0). Probes and readiness gates are ignored: a running container is ready.
//!
//! A node can be made to look dead, as if its kubelet stopped: in-process with
//! [`SimulatedNodes::stop_node`], or from outside (e2e tests against `rudder server`, `kubectl`)
//! with the node annotation [`STOPPED_ANNOTATION`] set to `true`
//! (`kubectl annotate node sim-node-0001 sim.rudder.dev/stopped=true`). A stopped node no
//! longer renews its Lease, reports its status or runs its pods; removing the annotation
//! resumes it: the status is reported afresh (Ready again) and its pods are reported ready.
//! One watch on nodes follows the annotation.
//!
//! It must not start processes or touch the host: everything here is API objects.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::stream::FuturesUnordered;
use futures_util::{Future, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::lease::NodeLease;

pub use crate::lease::{LEASE_DURATION_SECONDS, NODE_LEASE_NAMESPACE};
/// How often a Lease is renewed (a quarter of its duration, as kubelet).
pub const LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(10);
/// How often an unchanged node status is reported (kubelet's `nodeStatusReportFrequency`).
pub const STATUS_REPORT_INTERVAL: Duration = Duration::from_secs(300);
/// How long a run-to-completion pod runs: a Go duration (`1.5s`, `200ms`, `1m`).
pub const DURATION_ANNOTATION: &str = "sim.rudder.dev/duration";
/// The exit code of a run-to-completion pod's containers (an integer; 0 succeeds).
pub const EXIT_CODE_ANNOTATION: &str = "sim.rudder.dev/exit-code";
/// The annotation that stops a simulated node's kubelet (value `true`); removing it resumes.
pub const STOPPED_ANNOTATION: &str = "sim.rudder.dev/stopped";
/// The annotation marking nodes as simulated (value `true`).
pub const SIMULATED_ANNOTATION: &str = "sim.rudder.dev/node";
/// How long a run-to-completion pod runs without the annotation.
pub const DEFAULT_RUN_DURATION: Duration = Duration::from_secs(1);
/// How long a failed write waits before it is retried.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Config {
    /// How many nodes.
    pub count: usize,
    /// Node names are `{prefix}-0001`, `{prefix}-0002`, ...
    pub name_prefix: String,
    /// Whether pods bound to the nodes are run (else they stay as the scheduler left them,
    /// like nodes without a kubelet in upstream's scheduler benchmarks).
    pub run_pods: bool,
    /// How many writes may be in flight at once.
    pub write_concurrency: usize,
    /// Whether pods wait for their node's `spec.podCIDR` (set by the node IPAM controller)
    /// before they run, as with a network plugin that takes pod addresses from it. Without
    /// waiting, a node that has none uses its own /24 outside the cluster CIDR.
    pub wait_for_pod_cidr: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            count: 1,
            name_prefix: "sim-node".to_owned(),
            run_pods: true,
            write_concurrency: 32,
            wait_for_pod_cidr: false,
        }
    }
}

/// Failures of the simulator.
#[derive(Debug, Error)]
pub enum Error {
    /// A node or its Lease could not be registered.
    #[error("registering simulated node {name}: {source}")]
    Register {
        /// The node.
        name: String,
        /// The failure.
        source: kube::Error,
    },
    /// A node's Lease could not be acquired.
    #[error("registering simulated node {name}: {source}")]
    Lease {
        /// The node.
        name: String,
        /// The failure.
        source: crate::lease::LeaseError,
    },
    /// An object could not be built (a bug).
    #[error("building {what}: {source}")]
    Encode {
        /// What was built.
        what: &'static str,
        /// The failure.
        source: serde_json::Error,
    },
}

/// One simulated node.
struct SimNode {
    name: String,
    internal_ip: Ipv4Addr,
    /// The pod network as (first address, prefix length).
    pod_cidr: (u32, u8),
    /// Whether `pod_cidr` is the node's `spec.podCIDR` (else the fallback range).
    pod_cidr_assigned: bool,
    /// Stopped in-process ([`SimulatedNodes::stop_node`]).
    stopped: AtomicBool,
    /// Stopped by [`STOPPED_ANNOTATION`].
    annotated_stopped: AtomicBool,
    lease: NodeLease,
}

type Nodes = Arc<HashMap<String, Arc<SimNode>>>;

/// The running simulation: node names, and a way to make a node look dead.
pub struct SimulatedNodes {
    names: Vec<String>,
    nodes: Nodes,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for SimulatedNodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedNodes")
            .field("nodes", &self.names.len())
            .finish_non_exhaustive()
    }
}

impl SimulatedNodes {
    /// Registers the nodes and their Leases, then keeps them alive and runs their pods until
    /// `shutdown` is cancelled.
    pub async fn start(
        client: Client,
        config: Config,
        shutdown: CancellationToken,
    ) -> Result<SimulatedNodes, Error> {
        let names: Vec<String> = (1..=config.count)
            .map(|i| format!("{}-{i:04}", config.name_prefix))
            .collect();
        let concurrency = config.write_concurrency.max(1);
        let registered: Vec<Result<Arc<SimNode>, Error>> =
            futures_util::stream::iter(names.iter().enumerate())
                .map(|(index, name)| register(client.clone(), name.clone(), index as u32 + 1))
                .buffer_unordered(concurrency)
                .collect()
                .await;
        let mut nodes = HashMap::new();
        for node in registered {
            let node = node?;
            nodes.insert(node.name.clone(), node);
        }
        let nodes: Nodes = Arc::new(nodes);
        tracing::info!(nodes = nodes.len(), "simulated nodes registered");
        let mut tasks = vec![tokio::spawn(renew_leases(
            client.clone(),
            nodes.clone(),
            concurrency,
            shutdown.clone(),
        ))];
        let (resumed, changes_rx) = mpsc::unbounded_channel();
        tasks.push(tokio::spawn(follow_nodes(
            client.clone(),
            nodes.clone(),
            resumed,
            shutdown.clone(),
        )));
        if config.run_pods {
            let mut pods = PodRunner::new(client, nodes.clone(), concurrency, changes_rx);
            pods.wait_for_pod_cidr = config.wait_for_pod_cidr;
            tasks.push(tokio::spawn(pods.run(shutdown)));
        }
        Ok(SimulatedNodes { names, nodes, tasks })
    }

    /// The names of the simulated nodes.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Stops renewing the node's Lease and updating its pods, as if its kubelet died.
    /// Returns false if there is no such simulated node.
    pub fn stop_node(&self, name: &str) -> bool {
        match self.nodes.get(name) {
            Some(node) => {
                node.stopped.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    /// Waits until the simulation has stopped (after its shutdown token is cancelled).
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

fn hex64(parts: &[&str]) -> String {
    (0..4u8)
        .map(|salt| {
            let mut hasher = DefaultHasher::new();
            salt.hash(&mut hasher);
            parts.hash(&mut hasher);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

fn uuid_of(parts: &[&str]) -> String {
    let hex = hex64(parts);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Seconds-precision RFC 3339, as `metav1.Time` is written.
fn time_str(at: Timestamp) -> String {
    Timestamp::from_second(at.as_second()).unwrap_or(at).to_string()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The node's address in 198.18.0.0/15, the range reserved for network benchmarks (RFC 2544).
fn internal_ip(index: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + index)
}

/// The pod network of a node without `spec.podCIDR` (no node IPAM controller, or not yet):
/// its own /24 in 100.64.0.0/10 (RFC 6598), outside the cluster CIDR, so that pods started
/// before IPAM assigns the node a range never share an address with pods of the node that
/// IPAM later hands the same range to.
fn default_pod_cidr(index: u32) -> (u32, u8) {
    let ranges = 1u32 << (24 - 10);
    (
        u32::from(Ipv4Addr::new(100, 64, 0, 0)) + ((index.saturating_sub(1) % ranges) << 8),
        24,
    )
}

fn parse_cidr(cidr: &str) -> Option<(u32, u8)> {
    let (address, len) = cidr.split_once('/')?;
    let address: Ipv4Addr = address.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    (len <= 30).then_some((u32::from(address), len))
}

fn node_conditions(now: &str) -> Value {
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": kind, "status": status, "lastHeartbeatTime": now,
            "lastTransitionTime": now, "reason": reason, "message": message,
        })
    };
    json!([
        condition(
            "NetworkUnavailable",
            "False",
            "RouteCreated",
            "RouteController created a route"
        ),
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ])
}

fn node_status(name: &str, ip: Ipv4Addr) -> Value {
    let now = time_str(Timestamp::now());
    json!({
        "capacity": {
            "cpu": "32", "ephemeral-storage": "104857600Ki", "hugepages-1Gi": "0",
            "hugepages-2Mi": "0", "memory": "268435456Ki", "pods": "110",
        },
        "allocatable": {
            "cpu": "32", "ephemeral-storage": "96636764160", "hugepages-1Gi": "0",
            "hugepages-2Mi": "0", "memory": "268333056Ki", "pods": "110",
        },
        "conditions": node_conditions(&now),
        "addresses": [
            {"type": "InternalIP", "address": ip.to_string()},
            {"type": "Hostname", "address": name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {
            "machineID": hex64(&["machine", name])[..32].to_owned(),
            "systemUUID": uuid_of(&["system", name]),
            "bootID": uuid_of(&["boot", name]),
            "kernelVersion": "6.8.0-rudder-simulated",
            "osImage": "Rudder simulated node",
            "containerRuntimeVersion": "containerd://2.1.4",
            "kubeletVersion": "v1.35.4",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": arch(),
        },
    })
}

fn node_object(name: &str, ip: Ipv4Addr) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "beta.kubernetes.io/arch": arch(),
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch(),
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
            },
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                SIMULATED_ANNOTATION: "true",
            },
        },
        "spec": {},
        "status": node_status(name, ip),
    })
}

/// Creates (or takes over) the node and its Lease.
async fn register(client: Client, name: String, index: u32) -> Result<Arc<SimNode>, Error> {
    let error = |name: &str| {
        let name = name.to_owned();
        move |source| Error::Register { name, source }
    };
    let nodes: Api<Node> = Api::all(client.clone());
    let ip = internal_ip(index);
    let object: Node = serde_json::from_value(node_object(&name, ip)).map_err(|source| Error::Encode {
        what: "a node",
        source,
    })?;
    let node = match nodes.create(&PostParams::default(), &object).await {
        Ok(node) => node,
        Err(kube::Error::Api(status)) if status.code == 409 => {
            // A node of a previous run: report the status afresh.
            let patch = json!({"status": node_status(&name, ip)});
            nodes
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(error(&name))?
        }
        Err(err) => return Err(error(&name)(err)),
    };
    let assigned = node
        .spec
        .as_ref()
        .and_then(|spec| spec.pod_cidr.as_deref())
        .and_then(parse_cidr);
    let pod_cidr = assigned.unwrap_or_else(|| default_pod_cidr(index));
    let uid = node.metadata.uid.clone().unwrap_or_default();
    let lease = NodeLease::acquire(client, &name, &uid)
        .await
        .map_err(|source| Error::Lease {
            name: name.clone(),
            source,
        })?;
    Ok(Arc::new(SimNode {
        name,
        internal_ip: ip,
        pod_cidr,
        pod_cidr_assigned: assigned.is_some(),
        stopped: AtomicBool::new(false),
        annotated_stopped: AtomicBool::new(false),
        lease,
    }))
}

impl SimNode {
    /// Whether the node's kubelet looks dead.
    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed) || self.annotated_stopped.load(Ordering::Relaxed)
    }
}

/// What the pod runner hears of the nodes.
#[derive(Debug)]
enum NodeChange {
    /// The node resumed after being stopped: its pods are looked at again.
    Resumed(String),
    /// The node's `spec.podCIDR` (set by the node IPAM controller): new pods take their
    /// addresses from it.
    PodCidr(String, (u32, u8)),
}

/// Follows the simulated nodes: [`STOPPED_ANNOTATION`] (a node that resumes reports its status
/// and Lease at once and has its pods looked at again) and `spec.podCIDR`.
async fn follow_nodes(
    client: Client,
    nodes: Nodes,
    changes: mpsc::UnboundedSender<NodeChange>,
    shutdown: CancellationToken,
) {
    let api: Api<Node> = Api::all(client.clone());
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .boxed();
    loop {
        let node = tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.next() => match event {
                None => return,
                Some(Err(err)) => {
                    tracing::debug!(error = %err, "node watch failed; retrying");
                    continue;
                }
                Some(Ok(node)) => node,
            },
        };
        let Some(sim) = nodes.get(&node.name_any()) else {
            continue;
        };
        if let Some(cidr) = node
            .spec
            .as_ref()
            .and_then(|s| s.pod_cidr.as_deref())
            .and_then(parse_cidr)
        {
            let _ = changes.send(NodeChange::PodCidr(sim.name.clone(), cidr));
        }
        let stop = node
            .annotations()
            .get(STOPPED_ANNOTATION)
            .is_some_and(|v| v == "true");
        let was = sim.annotated_stopped.swap(stop, Ordering::Relaxed);
        if was && !stop && !sim.stopped.load(Ordering::Relaxed) {
            tracing::info!(node = %sim.name, "simulated node resumed");
            let client = client.clone();
            let sim = sim.clone();
            let changes = changes.clone();
            tokio::spawn(async move {
                let nodes: Api<Node> = Api::all(client.clone());
                let patch = json!({"status": {"conditions": node_conditions(&time_str(Timestamp::now()))}});
                if let Err(err) = nodes
                    .patch_status(&sim.name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                {
                    tracing::warn!(node = %sim.name, error = %err, "reporting the node status failed");
                }
                sim.lease.forget();
                sim.lease.renew().await;
                let _ = changes.send(NodeChange::Resumed(sim.name.clone()));
            });
        } else if stop && !was {
            tracing::info!(node = %sim.name, "simulated node stopped by annotation");
        }
    }
}

/// Reports an unchanged node status (new heartbeat times), as kubelet does every 5 minutes.
async fn report_status(client: Client, node: Arc<SimNode>) {
    let nodes: Api<Node> = Api::all(client);
    let now = time_str(Timestamp::now());
    let conditions = [
        "NetworkUnavailable",
        "MemoryPressure",
        "DiskPressure",
        "PIDPressure",
        "Ready",
    ]
    .iter()
    .map(|kind| json!({"type": kind, "lastHeartbeatTime": now}))
    .collect::<Vec<_>>();
    // Conditions are merged by type (strategic merge): only the heartbeats change.
    let patch = json!({"status": {"conditions": conditions}});
    if let Err(err) = nodes
        .patch_status(&node.name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        tracing::warn!(node = %node.name, error = %err, "reporting the node status failed");
    }
}

async fn renew_leases(client: Client, nodes: Nodes, concurrency: usize, shutdown: CancellationToken) {
    let mut ticks: u64 = 0;
    let report_every = STATUS_REPORT_INTERVAL.as_secs() / LEASE_RENEW_INTERVAL.as_secs();
    // Renewals start every interval however long the previous round took (a round that
    // overruns delays the next, never bunches them).
    let mut rounds = tokio::time::interval_at(
        tokio::time::Instant::now() + LEASE_RENEW_INTERVAL,
        LEASE_RENEW_INTERVAL,
    );
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = rounds.tick() => {}
        }
        ticks += 1;
        let live: Vec<Arc<SimNode>> = nodes
            .values()
            .filter(|node| !node.is_stopped())
            .cloned()
            .collect();
        let report = ticks.is_multiple_of(report_every);
        let work = futures_util::stream::iter(live)
            .map(|node| {
                let client = client.clone();
                async move {
                    if report {
                        report_status(client.clone(), node.clone()).await;
                    }
                    node.lease.renew().await;
                }
            })
            .buffer_unordered(concurrency)
            .for_each(|()| async {});
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = work => {}
        }
    }
}

/// The pod network addresses in use on one node.
struct IpPool {
    first: u32,
    size: u32,
    used: HashSet<u32>,
    next: u32,
}

impl IpPool {
    fn new((first, len): (u32, u8)) -> IpPool {
        IpPool {
            first,
            size: 1u32 << (32 - u32::from(len)),
            used: HashSet::new(),
            next: 2,
        }
    }

    /// The next free host address (skipping the network address, the gateway `.1` and the
    /// broadcast address).
    fn allocate(&mut self) -> Option<Ipv4Addr> {
        let hosts = self.size.saturating_sub(3);
        for _ in 0..hosts {
            let offset = self.next;
            self.next = if self.next + 1 >= self.size - 1 {
                2
            } else {
                self.next + 1
            };
            if self.used.insert(offset) {
                return Some(Ipv4Addr::from(self.first + offset));
            }
        }
        None
    }

    fn claim(&mut self, ip: Ipv4Addr) {
        let offset = u32::from(ip).wrapping_sub(self.first);
        if offset < self.size {
            self.used.insert(offset);
        }
    }

    fn release(&mut self, ip: Ipv4Addr) {
        let offset = u32::from(ip).wrapping_sub(self.first);
        self.used.remove(&offset);
    }
}

/// What the simulator last wrote for a pod (by uid), so a write is not repeated before the
/// watch shows it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Running { since: Instant, restarts: i32 },
    Done,
    Deleted,
}

type Write = Pin<Box<dyn Future<Output = (String, Result<Option<Stage>, kube::Error>)> + Send>>;

/// Runs the pods bound to the simulated nodes.
struct PodRunner {
    client: Client,
    nodes: Nodes,
    concurrency: usize,
    pods: HashMap<String, Arc<Pod>>,
    pools: HashMap<String, IpPool>,
    /// Nodes whose pool is their `spec.podCIDR`.
    assigned: HashSet<String>,
    wait_for_pod_cidr: bool,
    stages: HashMap<String, (String, Stage)>,
    timers: HashSet<String>,
    queue: VecDeque<String>,
    queued: HashSet<String>,
    inflight: HashSet<String>,
    dirty: HashSet<String>,
    wake_tx: mpsc::UnboundedSender<String>,
    wake_rx: mpsc::UnboundedReceiver<String>,
    /// What changed on the nodes.
    changes_rx: mpsc::UnboundedReceiver<NodeChange>,
}

fn key_of(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace().unwrap_or_default(), pod.name_any())
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

fn run_to_completion(pod: &Pod) -> bool {
    matches!(
        pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()),
        Some("Never" | "OnFailure")
    )
}

/// Parses a Go duration (`1h2m3.5s`, `250ms`, `10us`).
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.annotations.as_ref()?.get(key).map(String::as_str)
}

fn run_duration(pod: &Pod) -> Duration {
    annotation(pod, DURATION_ANNOTATION)
        .and_then(parse_go_duration)
        .unwrap_or(DEFAULT_RUN_DURATION)
}

fn exit_code(pod: &Pod) -> i32 {
    annotation(pod, EXIT_CODE_ANNOTATION)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `nginx:1.27` → `docker.io/library/nginx:1.27`, as the container runtime reports images.
fn normalize_image(image: &str) -> (String, String) {
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    let (repo, tag) = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (name, "latest"),
    };
    let first = repo.split('/').next().unwrap_or("");
    let qualified =
        if repo.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost") {
            repo.to_owned()
        } else if repo.contains('/') {
            format!("docker.io/{repo}")
        } else {
            format!("docker.io/library/{repo}")
        };
    let image_id = match digest {
        Some(digest) => format!("{qualified}@{digest}"),
        None => format!("{qualified}@sha256:{}", hex64(&["image", &qualified, tag])),
    };
    (format!("{qualified}:{tag}"), image_id)
}

fn container_id(uid: &str, container: &str, restarts: i32) -> String {
    format!("containerd://{}", hex64(&[uid, container, &restarts.to_string()]))
}

/// The PodScheduled condition as the scheduler left it.
fn scheduled_condition(pod: &Pod, now: &str) -> Value {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|conditions| conditions.iter().find(|c| c.type_ == "PodScheduled"))
        .and_then(|c| serde_json::to_value(c).ok())
        .unwrap_or_else(|| json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}))
}

fn condition(kind: &str, status: &str, reason: Option<&str>, at: &str, generation: i64) -> Value {
    let mut value = json!({
        "type": kind, "observedGeneration": generation, "status": status,
        "lastProbeTime": null, "lastTransitionTime": at,
    });
    if let Some(reason) = reason {
        value["reason"] = json!(reason);
    }
    value
}

/// How a container ended.
#[derive(Clone, Copy)]
struct Exit {
    code: i32,
    started: Timestamp,
    finished: Timestamp,
}

fn terminated(exit: Exit, id: &str) -> Value {
    json!({"terminated": {
        "exitCode": exit.code,
        "reason": if exit.code == 0 { "Completed" } else { "Error" },
        "startedAt": time_str(exit.started),
        "finishedAt": time_str(exit.finished),
        "containerID": id,
    }})
}

/// Everything a status write needs to know about the pod's situation on its node.
struct Placement<'a> {
    host_ip: &'a str,
    pod_ip: &'a str,
}

fn init_statuses(pod: &Pod, uid: &str, started: Timestamp, running: bool) -> Vec<Value> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .map(|container| {
            let (image, image_id) = normalize_image(container.image.as_deref().unwrap_or(""));
            let id = container_id(uid, &container.name, 0);
            let sidecar = container.restart_policy.as_deref() == Some("Always");
            let state = if sidecar && running {
                json!({"running": {"startedAt": time_str(started)}})
            } else {
                terminated(
                    Exit {
                        code: 0,
                        started,
                        finished: started,
                    },
                    &id,
                )
            };
            json!({
                "name": container.name, "state": state, "lastState": {},
                "ready": sidecar && running, "restartCount": 0, "image": image,
                "imageID": image_id, "containerID": id, "started": sidecar && running,
            })
        })
        .collect()
}

/// The status of a pod whose containers run (`restarts` times restarted, the last one
/// ending as `last`).
fn running_status(
    pod: &Pod,
    place: &Placement<'_>,
    started: Timestamp,
    restarts: i32,
    last: Option<Exit>,
) -> Value {
    let uid = pod.uid().unwrap_or_default();
    let now = time_str(Timestamp::now());
    let generation = pod.metadata.generation.unwrap_or(1);
    let start_time = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map_or_else(|| time_str(started), |t| time_str(t.0));
    let containers: Vec<Value> = pod
        .spec
        .as_ref()
        .map(|spec| spec.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|container| {
            let (image, image_id) = normalize_image(container.image.as_deref().unwrap_or(""));
            let last_state = match last {
                Some(exit) => terminated(exit, &container_id(&uid, &container.name, restarts - 1)),
                None => json!({}),
            };
            json!({
                "name": container.name,
                "state": {"running": {"startedAt": time_str(started)}},
                "lastState": last_state, "ready": true, "restartCount": restarts,
                "image": image, "imageID": image_id,
                "containerID": container_id(&uid, &container.name, restarts), "started": true,
            })
        })
        .collect();
    json!({"status": {
        "observedGeneration": generation,
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers", "True", None, &now, generation),
            condition("Initialized", "True", None, &now, generation),
            condition("Ready", "True", None, &now, generation),
            condition("ContainersReady", "True", None, &now, generation),
            scheduled_condition(pod, &now),
        ],
        "hostIP": place.host_ip, "hostIPs": [{"ip": place.host_ip}],
        "podIP": place.pod_ip, "podIPs": [{"ip": place.pod_ip}],
        "startTime": start_time,
        "initContainerStatuses": init_statuses(pod, &uid, started, true),
        "containerStatuses": containers,
    }})
}

/// The status of a pod whose containers all ended with `exit`.
fn terminal_status(pod: &Pod, exit: Exit, restarts: i32) -> Value {
    let uid = pod.uid().unwrap_or_default();
    let now = time_str(Timestamp::now());
    let generation = pod.metadata.generation.unwrap_or(1);
    let succeeded = exit.code == 0;
    let reason = if succeeded { "PodCompleted" } else { "PodFailed" };
    let containers: Vec<Value> = pod
        .spec
        .as_ref()
        .map(|spec| spec.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|container| {
            let (image, image_id) = normalize_image(container.image.as_deref().unwrap_or(""));
            let id = container_id(&uid, &container.name, restarts);
            json!({
                "name": container.name, "state": terminated(exit, &id), "lastState": {},
                "ready": false, "restartCount": restarts, "image": image, "imageID": image_id,
                "containerID": id, "started": false,
            })
        })
        .collect();
    json!({"status": {
        "observedGeneration": generation,
        "phase": if succeeded { "Succeeded" } else { "Failed" },
        "conditions": [
            condition("PodReadyToStartContainers", "False", None, &now, generation),
            condition("Initialized", "True", succeeded.then_some("PodCompleted"), &now, generation),
            condition("Ready", "False", Some(reason), &now, generation),
            condition("ContainersReady", "False", Some(reason), &now, generation),
            scheduled_condition(pod, &now),
        ],
        "initContainerStatuses": init_statuses(pod, &uid, exit.started, false),
        "containerStatuses": containers,
    }})
}

fn started_at(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref()?.container_statuses.as_ref()?.first()?;
    Some(status.state.as_ref()?.running.as_ref()?.started_at.as_ref()?.0)
}

fn restarts_of(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .map_or(0, |c| c.restart_count)
}

impl PodRunner {
    fn new(
        client: Client,
        nodes: Nodes,
        concurrency: usize,
        changes_rx: mpsc::UnboundedReceiver<NodeChange>,
    ) -> PodRunner {
        let (wake_tx, wake_rx) = mpsc::unbounded_channel();
        let pools = nodes
            .values()
            .map(|node| (node.name.clone(), IpPool::new(node.pod_cidr)))
            .collect();
        let assigned = nodes
            .values()
            .filter(|node| node.pod_cidr_assigned)
            .map(|node| node.name.clone())
            .collect();
        PodRunner {
            client,
            nodes,
            concurrency,
            pods: HashMap::new(),
            pools,
            assigned,
            wait_for_pod_cidr: false,
            stages: HashMap::new(),
            timers: HashSet::new(),
            queue: VecDeque::new(),
            queued: HashSet::new(),
            inflight: HashSet::new(),
            dirty: HashSet::new(),
            wake_tx,
            wake_rx,
            changes_rx,
        }
    }

    fn enqueue(&mut self, key: String) {
        if self.queued.insert(key.clone()) {
            self.queue.push_back(key);
        }
    }

    fn wake_after(&mut self, key: String, delay: Duration) {
        if !self.timers.insert(key.clone()) {
            return;
        }
        let wake = self.wake_tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = wake.send(key);
        });
    }

    fn pod_ip(pod: &Pod) -> Option<Ipv4Addr> {
        pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()
    }

    fn observe(&mut self, pod: Pod) {
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            return;
        };
        if !self.nodes.contains_key(&node) {
            return;
        }
        let key = key_of(&pod);
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
        if !host_network
            && let Some(ip) = Self::pod_ip(&pod)
            && let Some(pool) = self.pools.get_mut(&node)
        {
            pool.claim(ip);
        }
        if let Some((uid, _)) = self.stages.get(&key)
            && Some(uid.as_str()) != pod.metadata.uid.as_deref()
        {
            self.stages.remove(&key);
        }
        self.pods.insert(key.clone(), Arc::new(pod));
        self.enqueue(key);
    }

    fn node_changed(&mut self, change: NodeChange) {
        match change {
            NodeChange::PodCidr(node, cidr) => {
                self.set_pod_cidr(&node, cidr);
                if self.assigned.insert(node.clone()) && self.wait_for_pod_cidr {
                    self.enqueue_pods_of(&node);
                }
            }
            NodeChange::Resumed(node) => self.enqueue_pods_of(&node),
        }
    }

    /// Queues every pod bound to `node`.
    fn enqueue_pods_of(&mut self, node: &str) {
        let keys: Vec<String> = self
            .pods
            .iter()
            .filter(|(_, pod)| pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            self.enqueue(key);
        }
    }

    /// The node's pod network is now `cidr`: addresses of its pods inside it stay taken.
    fn set_pod_cidr(&mut self, node: &str, cidr: (u32, u8)) {
        if self
            .pools
            .get(node)
            .is_some_and(|pool| pool.first == cidr.0 && pool.size == 1u32 << (32 - u32::from(cidr.1)))
        {
            return;
        }
        let mut pool = IpPool::new(cidr);
        for pod in self.pods.values() {
            if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node)
                && !pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
                && let Some(ip) = Self::pod_ip(pod)
            {
                pool.claim(ip);
            }
        }
        tracing::debug!(node, "pod network from spec.podCIDR");
        self.pools.insert(node.to_owned(), pool);
    }

    fn forget(&mut self, key: &str) {
        if let Some(pod) = self.pods.remove(key) {
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
            if !host_network
                && let Some(ip) = Self::pod_ip(&pod)
                && let Some(pool) = self.pools.get_mut(&node)
            {
                pool.release(ip);
            }
        }
        self.stages.remove(key);
    }

    async fn run(mut self, shutdown: CancellationToken) {
        let api: Api<Pod> = Api::all(self.client.clone());
        let mut events = watcher(api, watcher::Config::default().fields("spec.nodeName!="))
            .default_backoff()
            .boxed();
        let mut writes: FuturesUnordered<Write> = FuturesUnordered::new();
        let mut relisted: Option<HashSet<String>> = None;
        loop {
            while writes.len() < self.concurrency {
                let Some(key) = self.queue.pop_front() else { break };
                self.queued.remove(&key);
                if self.inflight.contains(&key) {
                    self.dirty.insert(key);
                    continue;
                }
                if let Some(write) = self.plan(&key) {
                    self.inflight.insert(key);
                    writes.push(write);
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                event = events.next() => match event {
                    None => return,
                    Some(Err(err)) => tracing::debug!(error = %err, "pod watch failed; retrying"),
                    Some(Ok(watcher::Event::Init)) => relisted = Some(HashSet::new()),
                    Some(Ok(watcher::Event::InitApply(pod))) => {
                        if let Some(seen) = relisted.as_mut() {
                            seen.insert(key_of(&pod));
                        }
                        self.observe(pod);
                    }
                    Some(Ok(watcher::Event::InitDone)) => {
                        if let Some(seen) = relisted.take() {
                            let gone: Vec<String> = self.pods.keys().filter(|k| !seen.contains(*k)).cloned().collect();
                            for key in gone {
                                self.forget(&key);
                            }
                        }
                    }
                    Some(Ok(watcher::Event::Apply(pod))) => self.observe(pod),
                    Some(Ok(watcher::Event::Delete(pod))) => self.forget(&key_of(&pod)),
                },
                Some(change) = self.changes_rx.recv() => self.node_changed(change),
                Some(key) = self.wake_rx.recv() => {
                    self.timers.remove(&key);
                    self.enqueue(key);
                }
                Some((key, result)) = writes.next(), if !writes.is_empty() => {
                    self.inflight.remove(&key);
                    match result {
                        Ok(stage) => {
                            if let (Some(stage), Some(pod)) = (stage, self.pods.get(&key)) {
                                let uid = pod.uid().unwrap_or_default();
                                self.stages.insert(key.clone(), (uid, stage));
                            }
                            if self.dirty.remove(&key) {
                                self.enqueue(key);
                            }
                        }
                        Err(err) => {
                            tracing::debug!(pod = %key, error = %err, "pod status write failed; retrying");
                            self.dirty.remove(&key);
                            self.wake_after(key, RETRY_DELAY);
                        }
                    }
                }
            }
        }
    }

    /// Decides the next write for the pod, from what is observed and what was last written.
    fn plan(&mut self, key: &str) -> Option<Write> {
        let pod = self.pods.get(key)?.clone();
        let node_name = pod.spec.as_ref()?.node_name.clone()?;
        let node = self.nodes.get(&node_name)?.clone();
        if node.is_stopped() {
            return None;
        }
        let uid = pod.uid().unwrap_or_default();
        let written = self
            .stages
            .get(key)
            .filter(|(written_uid, _)| *written_uid == uid)
            .map(|(_, stage)| *stage);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
        let name = pod.name_any();
        let key = key.to_owned();
        let current = phase(&pod).to_owned();
        let terminal = matches!(current.as_str(), "Succeeded" | "Failed") || written == Some(Stage::Done);

        if pod.metadata.deletion_timestamp.is_some() {
            if written == Some(Stage::Deleted) {
                return None;
            }
            let status = (!terminal).then(|| {
                let started = started_at(&pod).unwrap_or_else(Timestamp::now);
                let exit = Exit {
                    code: 0,
                    started,
                    finished: Timestamp::now(),
                };
                terminal_status(&pod, exit, restarts_of(&pod))
            });
            return Some(Box::pin(async move {
                let result = async {
                    if let Some(status) = status {
                        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                            .await?;
                    }
                    let params = DeleteParams {
                        grace_period_seconds: Some(0),
                        preconditions: Some(Preconditions {
                            uid: Some(uid),
                            resource_version: None,
                        }),
                        ..DeleteParams::default()
                    };
                    match api.delete(&name, &params).await {
                        Ok(_) => Ok(Some(Stage::Deleted)),
                        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Some(Stage::Deleted)),
                        Err(err) => Err(err),
                    }
                }
                .await;
                (key, result)
            }));
        }
        if terminal {
            return None;
        }
        let running = match written {
            Some(Stage::Running { since, restarts }) => Some((since, restarts)),
            _ if current == "Running" => {
                let started = started_at(&pod).unwrap_or_else(Timestamp::now);
                let age = Timestamp::now().duration_since(started).unsigned_abs();
                Some((
                    Instant::now().checked_sub(age).unwrap_or_else(Instant::now),
                    restarts_of(&pod),
                ))
            }
            _ => None,
        };
        let host_ip = node.internal_ip.to_string();
        let pod_ip = |runner: &mut PodRunner| -> Option<String> {
            if pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false) {
                return Some(host_ip.clone());
            }
            if let Some(ip) = Self::pod_ip(&pod) {
                return Some(ip.to_string());
            }
            runner
                .pools
                .get_mut(&node_name)?
                .allocate()
                .map(|ip| ip.to_string())
        };
        match running {
            None => {
                let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
                if self.wait_for_pod_cidr
                    && !host_network
                    && !self.assigned.contains(&node_name)
                    && Self::pod_ip(&pod).is_none()
                {
                    // Queued again when the node's podCIDR arrives.
                    tracing::debug!(pod = %key, node = %node_name, "waiting for the node's podCIDR");
                    return None;
                }
                let Some(ip) = pod_ip(self) else {
                    tracing::warn!(pod = %key, node = %node_name, "the node's pod network is full");
                    return None;
                };
                let started = Timestamp::now();
                let place = Placement {
                    host_ip: &host_ip,
                    pod_ip: &ip,
                };
                let status = running_status(&pod, &place, started, 0, None);
                let stage = Stage::Running {
                    since: Instant::now(),
                    restarts: 0,
                };
                Some(Box::pin(async move {
                    let result = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await
                        .map(|_| Some(stage));
                    (key, result)
                }))
            }
            Some((since, restarts)) if run_to_completion(&pod) => {
                let due = run_duration(&pod);
                let elapsed = since.elapsed();
                if elapsed < due {
                    self.wake_after(key, due - elapsed);
                    return None;
                }
                let code = exit_code(&pod);
                let finished = Timestamp::now();
                let exit = Exit {
                    code,
                    started: finished - elapsed,
                    finished,
                };
                let restart = code != 0
                    && pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("OnFailure");
                let (status, stage) = if restart {
                    let ip = pod_ip(self)?;
                    let place = Placement {
                        host_ip: &host_ip,
                        pod_ip: &ip,
                    };
                    (
                        running_status(&pod, &place, finished, restarts + 1, Some(exit)),
                        Stage::Running {
                            since: Instant::now(),
                            restarts: restarts + 1,
                        },
                    )
                } else {
                    (terminal_status(&pod, exit, restarts), Stage::Done)
                };
                Some(Box::pin(async move {
                    let result = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await
                        .map(|_| Some(stage));
                    (key, result)
                }))
            }
            Some((since, restarts)) if !ready(&pod) => {
                // Marked not ready while the node was silent: report it ready again.
                let ip = pod_ip(self)?;
                let place = Placement {
                    host_ip: &host_ip,
                    pod_ip: &ip,
                };
                let started = started_at(&pod).unwrap_or_else(Timestamp::now);
                let status = running_status(&pod, &place, started, restarts, None);
                let stage = Stage::Running { since, restarts };
                Some(Box::pin(async move {
                    let result = api
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                        .await
                        .map(|_| Some(stage));
                    (key, result)
                }))
            }
            Some(_) => None,
        }
    }
}

/// Whether the pod's `Ready` condition is not `False`.
fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_none_or(|c| c.status != "False")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("5x"), None);
        assert_eq!(parse_go_duration("s"), None);
    }

    #[test]
    fn images_are_normalized_like_the_runtime_reports_them() {
        assert_eq!(normalize_image("nginx").0, "docker.io/library/nginx:latest");
        assert_eq!(normalize_image("nginx:1.27").0, "docker.io/library/nginx:1.27");
        assert_eq!(normalize_image("bitnami/redis:7").0, "docker.io/bitnami/redis:7");
        assert_eq!(
            normalize_image("registry.k8s.io/pause:3.10").0,
            "registry.k8s.io/pause:3.10"
        );
        assert_eq!(
            normalize_image("localhost:5000/app").0,
            "localhost:5000/app:latest"
        );
        let (_, id) = normalize_image("nginx");
        assert!(id.starts_with("docker.io/library/nginx@sha256:"));
        assert_eq!(id.len(), "docker.io/library/nginx@sha256:".len() + 64);
    }

    #[test]
    fn pod_addresses_skip_network_gateway_and_broadcast() {
        let mut pool = IpPool::new(parse_cidr("10.1.2.0/30").map(|(a, _)| (a, 29)).unwrap());
        let all: Vec<Ipv4Addr> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(all.first(), Some(&Ipv4Addr::new(10, 1, 2, 2)));
        assert_eq!(all.last(), Some(&Ipv4Addr::new(10, 1, 2, 6)));
        assert_eq!(all.len(), 5);
        pool.release(Ipv4Addr::new(10, 1, 2, 4));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(10, 1, 2, 4)));
        assert_eq!(default_pod_cidr(1), (u32::from(Ipv4Addr::new(100, 64, 0, 0)), 24));
        assert_eq!(
            default_pod_cidr(257),
            (u32::from(Ipv4Addr::new(100, 65, 0, 0)), 24)
        );
        assert_eq!(
            default_pod_cidr(16_385),
            (u32::from(Ipv4Addr::new(100, 64, 0, 0)), 24)
        );
        assert_eq!(internal_ip(1), Ipv4Addr::new(198, 18, 0, 1));
    }
}
