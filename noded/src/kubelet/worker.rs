//! One pod's worker: drives the pod's sandbox and containers toward its spec and reports its
//! status, like the kubelet's pod worker and sync loop. Init containers run in order
//! (restartable ones keep running as sidecars), then the app containers; exited containers
//! restart as the restart policy says, with the kubelet's CrashLoopBackOff back-off (10 s
//! doubling to 5 min, reset after 10 min of running). Deletion stops containers with SIGTERM,
//! then SIGKILL after the grace period, tears everything down and removes the pod.
//!
//! Images come from the kubelet's image manager (`images.rs`), with the credentials of the
//! pod's `imagePullSecrets` when it pulls.
//!
//! Startup, readiness and liveness probes run as tasks of their own ([`probes`]); the worker
//! turns their results into `started`/`ready` and kills instances whose startup or liveness
//! probe failed. postStart hooks run right after an instance starts (a failure kills it),
//! preStop hooks before SIGTERM, within the grace period.
//!
//! Runtime and filesystem calls go through `spawn_blocking`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodStatus, Secret, Service};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::container::{ContainerInputs, SeccompChoice, container_spec, seccomp_choice};
use super::events::Events;
use super::images::{EnsuredImage, ImageError, ImageManager, Precheck};
use super::layout::{Layout, container_id, parse_container_id};
use super::probes::{self, Probes, Target, Verdict};
use super::status::{ContainerRecord, Observed, Placement, Termination};
use super::{sandbox, status, volumes};
use crate::images::registry::{AuthConfig, Keyring};
use crate::images::{Reference, Store};
use crate::pod::env::{EnvContext, make_environment};
use crate::runtime::cgroup::{self, CgroupVersion, PodLimits, QosClass};
use crate::runtime::spec::{Mount, Propagation, Seccomp};
use crate::runtime::{ContainerState, Runtime, RuntimeError};
use kube::runtime::events::EventType;

const INITIAL_BACKOFF: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// A container that ran this long without failing starts over at the initial back-off.
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// How often running containers are checked for exits (the kubelet's PLEG relist period).
const RELIST: Duration = Duration::from_secs(1);
const RETRY: Duration = Duration::from_secs(5);
/// How long a container whose image could not be had waits before the next try: the
/// kubelet requeues a pod whose sync failed after its `backOffPeriod`, so `ErrImagePull`
/// stands that long before a sync finds the pull backing off.
const IMAGE_RETRY: Duration = Duration::from_secs(10);
const DEFAULT_GRACE_SECONDS: i64 = 30;
/// The least time a container gets to stop after its preStop hook used up the grace period
/// (upstream's `minimumGracePeriodInSeconds`).
const MIN_GRACE_AFTER_PRE_STOP: Duration = Duration::from_secs(2);
/// How long a postStart hook may run before the instance is killed.
const POST_START_TIMEOUT: Duration = Duration::from_secs(300);
const RUNTIME_NAME: &str = "rudder";

/// What every pod worker shares.
pub struct Shared {
    pub client: Client,
    pub runtime: Runtime,
    pub images: Arc<Store>,
    pub image_manager: ImageManager,
    pub layout: Layout,
    pub node_name: String,
    pub host_ips: Vec<String>,
    pub node_allocatable: BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    pub node_memory: i64,
    pub cgroups: CgroupVersion,
    pub dns: crate::pod::resolv::DnsSettings,
    pub host_hosts_file: PathBuf,
    /// See [`super::container::oom_score_adj_floor`].
    pub min_oom_score_adj: Option<i32>,
    pub events: Events,
    /// See [`super::KubeletConfig::sync_frequency`].
    pub sync_frequency: Duration,
    /// The binary started as `BINARY pause ...` for pods with a shared PID namespace.
    pub pause_binary: PathBuf,
    /// Where Localhost seccomp profiles are read from (`<data dir>/seccomp`).
    pub seccomp_root: PathBuf,
    /// The sysctls pods may set.
    pub sysctls: crate::pod::sysctl::Allowlist,
    /// See [`super::KubeletConfig::network`].
    pub network: Option<Arc<dyn super::network::PodNetwork>>,
}

/// One container's history on this node.
#[derive(Debug, Default)]
struct Run {
    /// The attempt number of the current instance (its restartCount).
    attempt: u32,
    /// Whether the current attempt was created.
    created: bool,
    /// Why the current attempt is not running (before creation).
    waiting: Option<(String, Option<String>)>,
    observed: Option<Observed>,
    last: Option<Termination>,
    backoff: Option<Duration>,
    not_before: Option<Instant>,
    image_id: String,
    /// The image as the runtime reports it (its repository tag), once resolved.
    image_name: String,
    /// The current instance is being killed (a failed probe or postStart hook).
    killing: bool,
    /// A start that failed is not tried again before this.
    retry_at: Option<Instant>,
}

/// The worker of one pod UID.
pub struct PodWorker {
    shared: Arc<Shared>,
    pod: Pod,
    uid: String,
    runs: HashMap<String, Run>,
    sandbox_ready: bool,
    /// The addresses the pod network gave the pod (none for host-network pods).
    network_ips: Vec<String>,
    cgroup_parent: Option<String>,
    volumes: Option<BTreeMap<String, PathBuf>>,
    /// When the volumes were last written.
    volumes_synced: Option<Instant>,
    reported: Option<PodStatus>,
    terminal: bool,
    /// The pod passed the node's admission (or had containers here already).
    admitted: bool,
    probes: Probes,
}

impl PodWorker {
    /// A worker for `pod`, re-adopting containers a previous noded left running.
    pub async fn adopt(shared: Arc<Shared>, pod: Pod) -> PodWorker {
        let uid = pod.uid().unwrap_or_default();
        let mut runs: HashMap<String, Run> = HashMap::new();
        let runtime = shared.runtime.clone();
        let listed = tokio::task::spawn_blocking(move || runtime.list())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let mut found: BTreeMap<String, Vec<(u32, ContainerState)>> = BTreeMap::new();
        for (id, state) in listed {
            if let Some((owner, name, attempt)) = parse_container_id(&id)
                && owner == uid
            {
                found.entry(name.to_owned()).or_default().push((attempt, state));
            }
        }
        for (name, mut instances) in found {
            instances.sort_by_key(|(attempt, _)| *attempt);
            let mut run = Run::default();
            if let Some((attempt, state)) = instances.pop() {
                let id = container_id(&uid, &name, attempt);
                let runtime = shared.runtime.clone();
                let annotations = {
                    let id = id.clone();
                    tokio::task::spawn_blocking(move || runtime.annotations(&id))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .unwrap_or_default()
                };
                (run.image_name, run.image_id) = recorded_image(&annotations);
                run.attempt = attempt;
                run.created = true;
                run.observed = Some(observe(&id, state));
            }
            if let Some((attempt, ContainerState::Exited(exit))) = instances.pop() {
                run.last = Some(termination(&container_id(&uid, &name, attempt), &exit));
            }
            runs.insert(name, run);
        }
        let sandbox_ready = !runs.is_empty();
        PodWorker {
            shared,
            pod,
            uid,
            runs,
            sandbox_ready,
            network_ips: Vec::new(),
            cgroup_parent: None,
            volumes: None,
            volumes_synced: None,
            reported: None,
            terminal: false,
            admitted: false,
            probes: Probes::default(),
        }
    }

    /// Runs until the pod is gone (or shutdown): `updates` carries the pod's latest version,
    /// `None` once it left the API.
    pub async fn run(mut self, mut updates: watch::Receiver<Option<Pod>>, shutdown: CancellationToken) {
        let span = tracing::info_span!("pod", pod = %format!("{}/{}", self.pod.namespace().unwrap_or_default(), self.pod.name_any()), uid = %self.uid);
        let _guard = span.enter();
        drop(_guard);
        loop {
            let latest = updates.borrow_and_update().clone();
            let gone = latest.is_none();
            if let Some(pod) = latest {
                self.pod = pod;
            }
            if gone || self.pod.metadata.deletion_timestamp.is_some() {
                self.terminate(gone, &updates).await;
                return;
            }
            let wake = self.sync().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = updates.changed() => if changed.is_err() { return },
                () = self.probes.changed() => {}
                () = sleep(wake) => {}
            }
        }
    }

    /// One pass toward the spec; returns when to look again.
    async fn sync(&mut self) -> Option<Duration> {
        if self.terminal {
            return None;
        }
        if !self.admitted {
            // A pod that ended before (rejected, or finished while noded was away) with
            // nothing left on the node is not run again, as the kubelet filters out
            // terminated pods.
            let phase = self.pod.status.as_ref().and_then(|s| s.phase.as_deref());
            if self.runs.is_empty() && matches!(phase, Some("Failed" | "Succeeded")) {
                self.terminal = true;
                return None;
            }
            if self.runs.is_empty()
                && let Err(message) = self.shared.sysctls.admit(&self.pod)
            {
                self.reject(crate::pod::sysctl::FORBIDDEN_REASON, &message).await;
                return None;
            }
            self.admitted = true;
        }
        let mut wake = None;
        if let Err(err) = self.ensure_sandbox().await {
            tracing::warn!(error = %err, "setting up the pod sandbox failed");
            self.report().await;
            return Some(RETRY);
        }
        let volumes_due = self
            .volumes_synced
            .is_none_or(|at| at.elapsed() >= self.shared.sync_frequency);
        if self.volumes.is_none() || volumes_due {
            match volumes::set_up(
                &self.shared.client,
                &self.shared.layout,
                &self.pod,
                &self.shared.node_allocatable,
            )
            .await
            {
                Ok(paths) => {
                    self.volumes = Some(paths);
                    self.volumes_synced = Some(Instant::now());
                }
                // A refresh that failed keeps what was written and tries again later.
                Err(err) if self.volumes.is_some() => {
                    tracing::warn!(error = %err, "updating volumes failed");
                    self.volumes_synced = Some(Instant::now());
                }
                Err(err) => {
                    tracing::warn!(error = %err, "setting up volumes failed");
                    self.report().await;
                    return Some(RETRY);
                }
            }
        }
        self.refresh().await;
        self.follow_probes();
        let spec = self.pod.spec.clone().unwrap_or_default();
        let policy = spec.restart_policy.clone().unwrap_or_else(|| "Always".to_owned());
        let mut initialized = true;
        for container in spec.init_containers.iter().flatten() {
            let sidecar = container.restart_policy.as_deref() == Some("Always");
            let state = self.runs.get(&container.name).and_then(|r| r.observed.clone());
            match state {
                None | Some(Observed::Waiting { .. }) => {
                    wake = earliest(wake, self.start(container).await);
                    if !sidecar {
                        initialized = false;
                        break;
                    }
                }
                Some(Observed::Running { .. }) => {
                    // The next init container waits for a sidecar to have started.
                    let attempt = self.runs.get(&container.name).map_or(0, |r| r.attempt);
                    if !sidecar || !self.probes.started(container, attempt) {
                        initialized = false;
                        break;
                    }
                }
                Some(Observed::Terminated(t)) => {
                    if sidecar || t.exit_code != 0 {
                        if !sidecar && policy == "Never" {
                            initialized = false;
                            break;
                        }
                        wake = earliest(wake, self.restart(container).await);
                        if !sidecar {
                            initialized = false;
                            break;
                        }
                    }
                }
            }
        }
        if initialized {
            for container in &spec.containers {
                let state = self.runs.get(&container.name).and_then(|r| r.observed.clone());
                match state {
                    None | Some(Observed::Waiting { .. }) => {
                        wake = earliest(wake, self.start(container).await);
                    }
                    Some(Observed::Running { .. }) => {}
                    Some(Observed::Terminated(t)) => {
                        let restart = match policy.as_str() {
                            "Always" => true,
                            "OnFailure" => t.exit_code != 0,
                            _ => false,
                        };
                        if restart {
                            wake = earliest(wake, self.restart(container).await);
                        }
                    }
                }
            }
        }
        let any_running = self
            .runs
            .values()
            .any(|r| matches!(r.observed, Some(Observed::Running { .. })));
        if any_running {
            wake = earliest(wake, Some(RELIST));
        }
        let status = self.report().await;
        if matches!(status.as_deref(), Some("Succeeded" | "Failed")) {
            self.terminal = true;
            return None;
        }
        wake
    }

    /// The pod cgroup, network namespace (connected to the pod network), hosts and
    /// resolv.conf files.
    async fn ensure_sandbox(&mut self) -> Result<(), String> {
        let shared = self.shared.clone();
        let pod = self.pod.clone();
        let uid = self.uid.clone();
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
        let parent = tokio::task::spawn_blocking(move || -> Result<String, String> {
            let spec = pod.spec.as_ref();
            let qos = match rudder_machinery::kinds::pod::pod_qos_class(&pod) {
                "Guaranteed" => QosClass::Guaranteed,
                "Burstable" => QosClass::Burstable,
                _ => QosClass::BestEffort,
            };
            let parent = cgroup::ensure_pod_cgroup(shared.cgroups, qos, &uid, &pod_limits(&pod))
                .map_err(|e| e.to_string())?;
            let dir = shared.layout.pod_dir(&uid);
            std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            if !host_network {
                sandbox::ensure_netns(&shared.layout.netns(&uid)).map_err(|e| e.to_string())?;
            }
            if spec.and_then(|s| s.host_ipc) != Some(true) {
                sandbox::ensure_ipcns(&shared.layout.ipcns(&uid)).map_err(|e| e.to_string())?;
                sandbox::ensure_shm(&shared.layout.shm(&uid)).map_err(|e| e.to_string())?;
            }
            if spec.and_then(|s| s.share_process_namespace) == Some(true) {
                super::pause::ensure(&shared.pause_binary, &shared.layout.pause(&uid))
                    .map_err(|e| e.to_string())?;
            }
            Ok(parent)
        })
        .await
        .map_err(|e| e.to_string())??;
        if !host_network
            && self.network_ips.is_empty()
            && let Some(network) = &self.shared.network
        {
            let netns = self.shared.layout.netns(&self.uid);
            let ips = network.attach(&self.uid, &netns).await?;
            self.network_ips = ips.iter().map(ToString::to_string).collect();
        }
        let shared = self.shared.clone();
        let pod = self.pod.clone();
        let uid = self.uid.clone();
        let ips = self.pod_ips();
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            crate::pod::hosts::ensure_hosts_file(
                &shared.layout.hosts_file(&uid),
                &pod,
                &ips,
                &shared.dns.cluster_domain,
                &shared.host_hosts_file,
            )
            .map_err(|e| e.to_string())?;
            let (dns, _events) =
                crate::pod::resolv::pod_dns_config(&pod, &shared.dns).map_err(|e| e.to_string())?;
            let resolv = shared.layout.resolv_file(&uid);
            std::fs::write(&resolv, crate::pod::resolv::render_resolv_conf(&dns))
                .map_err(|e| format!("writing {}: {e}", resolv.display()))
        })
        .await
        .map_err(|e| e.to_string())??;
        self.cgroup_parent = Some(parent);
        self.sandbox_ready = true;
        Ok(())
    }

    /// The pod's addresses: the node's for host-network pods, else what the pod network gave.
    fn pod_ips(&self) -> Vec<String> {
        if self.pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
            self.shared.host_ips.clone()
        } else {
            self.network_ips.clone()
        }
    }

    /// Reads the state of every created container.
    async fn refresh(&mut self) {
        let ids: Vec<(String, String)> = self
            .runs
            .iter()
            .filter(|(_, run)| run.created)
            .map(|(name, run)| (name.clone(), container_id(&self.uid, name, run.attempt)))
            .collect();
        let runtime = self.shared.runtime.clone();
        let states = tokio::task::spawn_blocking(move || {
            ids.into_iter()
                .map(|(name, id)| {
                    let state = runtime.state(&id);
                    (name, id, state)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (name, id, state) in states {
            let Some(run) = self.runs.get_mut(&name) else {
                continue;
            };
            let observed = match state {
                Ok(state) => observe(&id, state),
                Err(RuntimeError::NotFound(_)) => Observed::Terminated(Termination {
                    exit_code: 137,
                    signal: None,
                    reason: "ContainerStatusUnknown".to_owned(),
                    message: Some(
                        "The container could not be located when the pod was terminated".to_owned(),
                    ),
                    started_at: None,
                    finished_at: None,
                    container_id: format!("{RUNTIME_NAME}://{id}"),
                }),
                Err(err) => {
                    tracing::warn!(container = %name, error = %err, "reading the container state failed");
                    continue;
                }
            };
            if let Observed::Terminated(t) = &observed
                && let Some(message) = termination_message(&self.shared.layout, &self.uid, &name, run.attempt)
            {
                let mut t = t.clone();
                t.message = Some(message);
                run.observed = Some(Observed::Terminated(t));
                continue;
            }
            run.observed = Some(observed);
        }
    }

    /// Where probes and hooks reach an instance of `container`.
    fn target(&self, container: &Container, attempt: u32) -> Target {
        let host_network = self.pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
        let pod_ip = self
            .pod_ips()
            .first()
            .and_then(|ip| ip.parse().ok())
            .unwrap_or(probes::LOOPBACK);
        Target {
            runtime: self.shared.runtime.clone(),
            container_id: container_id(&self.uid, &container.name, attempt),
            netns: (!host_network).then(|| self.shared.layout.netns(&self.uid)),
            pod_ip,
            container: container.clone(),
            pod: self.pod.clone(),
            events: self.shared.events.clone(),
        }
    }

    /// Every container of the spec that probes may watch: sidecars and app containers.
    fn probed_containers(&self) -> Vec<Container> {
        let spec = self.pod.spec.as_ref();
        let sidecars = spec
            .and_then(|s| s.init_containers.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        let app = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
        sidecars.chain(app).cloned().collect()
    }

    /// Starts probes for running instances, stops those of ended ones, and kills instances
    /// whose startup or liveness probe failed.
    fn follow_probes(&mut self) {
        let mut running = Vec::new();
        let mut doomed = Vec::new();
        for container in self.probed_containers() {
            let Some(run) = self.runs.get(&container.name) else {
                continue;
            };
            let Some(Observed::Running { started_at, .. }) = run.observed else {
                continue;
            };
            let attempt = run.attempt;
            running.push((container.name.clone(), attempt));
            if !run.killing
                && let Some((kind, output)) = self.probes.fatal(&container, attempt)
            {
                doomed.push((container.clone(), attempt, kind, output));
            }
            let target = self.target(&container, attempt);
            self.probes.watch(attempt, started_at, &target);
        }
        self.probes.retain(&running);
        for (container, attempt, kind, output) in doomed {
            tracing::info!(container = %container.name, probe = kind.name(), %output, "container failed its probe, will be restarted");
            let probe = match kind {
                probes::Kind::Startup => container.startup_probe.as_ref(),
                _ => container.liveness_probe.as_ref(),
            };
            let grace = probe.and_then(|p| p.termination_grace_period_seconds);
            let note = format!(
                "Container {} failed {} probe, will be restarted",
                container.name,
                kind.name().to_ascii_lowercase()
            );
            self.kill(&container, attempt, grace, note);
        }
    }

    /// The grace period of killing one container: the override, else the pod's.
    fn grace_period(&self, override_seconds: Option<i64>) -> Duration {
        let seconds = override_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(DEFAULT_GRACE_SECONDS)
            .max(0);
        Duration::from_secs(seconds as u64)
    }

    /// Kills one instance in the background: its preStop hook, SIGTERM, SIGKILL after the
    /// grace period. The relist sees it end and the restart policy takes over.
    fn kill(&mut self, container: &Container, attempt: u32, grace_override: Option<i64>, note: String) {
        let Some(run) = self.runs.get_mut(&container.name) else {
            return;
        };
        run.killing = true;
        self.shared
            .events
            .container(&self.pod, &container.name, EventType::Normal, "Killing", note);
        let grace = self.grace_period(grace_override);
        let target = self.target(container, attempt);
        let pre_stop = container.lifecycle.as_ref().and_then(|l| l.pre_stop.clone());
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let began = Instant::now();
            if let Some(handler) = pre_stop {
                pre_stop_hook(&handler, &target, grace).await;
            }
            let grace = grace
                .saturating_sub(began.elapsed())
                .max(MIN_GRACE_AFTER_PRE_STOP);
            stop_instances(&shared, vec![target.container_id.clone()], grace).await;
        });
    }

    /// Runs the postStart hook of a just started instance; a failure kills the instance.
    async fn post_start(
        &mut self,
        container: &Container,
        attempt: u32,
        handler: &k8s_openapi::api::core::v1::LifecycleHandler,
    ) {
        let target = self.target(container, attempt);
        if let Verdict::Failure(message) = probes::run_hook(handler, &target, POST_START_TIMEOUT).await {
            tracing::warn!(container = %container.name, %message, "postStart hook failed");
            self.shared.events.container(
                &self.pod,
                &container.name,
                EventType::Warning,
                "FailedPostStartHook",
                "PostStartHook failed".to_owned(),
            );
            self.kill(container, attempt, None, "FailedPostStartHook".to_owned());
        }
    }

    /// Runs the preStop hooks of every running container at once, within `grace`.
    async fn pre_stop_all(&self, grace: Duration) {
        let mut hooks = Vec::new();
        let spec = self.pod.spec.as_ref();
        let all = spec
            .and_then(|s| s.init_containers.as_ref())
            .into_iter()
            .flatten()
            .chain(spec.map(|s| s.containers.as_slice()).unwrap_or_default());
        for container in all {
            let Some(run) = self.runs.get(&container.name) else {
                continue;
            };
            if !matches!(run.observed, Some(Observed::Running { .. })) {
                continue;
            }
            self.shared.events.container(
                &self.pod,
                &container.name,
                EventType::Normal,
                "Killing",
                format!("Stopping container {}", container.name),
            );
            let Some(handler) = container.lifecycle.as_ref().and_then(|l| l.pre_stop.clone()) else {
                continue;
            };
            let target = self.target(container, run.attempt);
            hooks.push(async move { pre_stop_hook(&handler, &target, grace).await });
        }
        let _ = tokio::time::timeout(grace, futures_util::future::join_all(hooks)).await;
    }

    /// Restarts an exited container once its back-off allows.
    async fn restart(&mut self, container: &Container) -> Option<Duration> {
        let now = Instant::now();
        let run = self.runs.entry(container.name.clone()).or_default();
        let Some(Observed::Terminated(ended)) = run.observed.clone() else {
            return None;
        };
        // Each failed start doubles the back-off; a long successful run resets it.
        let ran_long = match (ended.started_at, ended.finished_at) {
            (Some(start), Some(end)) => end.duration_since(start).as_secs() >= BACKOFF_RESET.as_secs() as i64,
            _ => false,
        };
        // As the kubelet's back-off: the first failure restarts at once; each later one waits
        // the current back-off, which doubles with every restart up to five minutes.
        if run.not_before.is_none() {
            match run.backoff {
                Some(backoff) if !ran_long => {
                    run.not_before = Some(now + backoff);
                    let note = format!(
                        "Back-off restarting failed container {} in pod {}_{}({})",
                        container.name,
                        self.pod.name_any(),
                        self.pod.namespace().unwrap_or_default(),
                        self.uid
                    );
                    self.shared.events.container(
                        &self.pod,
                        &container.name,
                        EventType::Warning,
                        "BackOff",
                        note,
                    );
                }
                _ => {
                    run.backoff = None;
                    run.not_before = Some(now);
                }
            }
        }
        let not_before = run.not_before.unwrap_or(now);
        if now < not_before {
            let pod = format!(
                "{}_{}({})",
                self.pod.name_any(),
                self.pod.namespace().unwrap_or_default(),
                self.uid
            );
            run.waiting = Some((
                "CrashLoopBackOff".to_owned(),
                Some(format!(
                    "back-off {} restarting failed container={} pod={pod}",
                    go_duration(run.backoff.unwrap_or(INITIAL_BACKOFF)),
                    container.name
                )),
            ));
            return Some(not_before - now);
        }
        run.backoff = Some(match run.backoff {
            Some(backoff) => (backoff * 2).min(MAX_BACKOFF),
            None => INITIAL_BACKOFF,
        });
        // The previous instance becomes lastState; the one before it goes.
        let previous_attempt = run.attempt;
        run.last = Some(ended);
        run.attempt += 1;
        run.created = false;
        run.observed = None;
        run.not_before = None;
        run.waiting = None;
        run.killing = false;
        if previous_attempt > 0 {
            self.remove_instance(&container.name, previous_attempt - 1).await;
        }
        self.start(container).await
    }

    /// Creates and starts the container's current attempt.
    async fn start(&mut self, container: &Container) -> Option<Duration> {
        let attempt = self.runs.get(&container.name).map_or(0, |r| r.attempt);
        let now = Instant::now();
        if let Some(at) = self.runs.get(&container.name).and_then(|r| r.retry_at)
            && now < at
        {
            return Some(at - now);
        }
        match self.create(container, attempt).await {
            Ok((id, state, image)) => {
                let running = matches!(state, ContainerState::Running { .. });
                let run = self.runs.entry(container.name.clone()).or_default();
                run.created = true;
                run.waiting = None;
                run.retry_at = None;
                run.image_id = image.image_ref;
                run.image_name = image.name;
                run.observed = Some(observe(&id, state));
                let events = &self.shared.events;
                events.container(
                    &self.pod,
                    &container.name,
                    EventType::Normal,
                    "Created",
                    "Container created".to_owned(),
                );
                if running {
                    events.container(
                        &self.pod,
                        &container.name,
                        EventType::Normal,
                        "Started",
                        "Container started".to_owned(),
                    );
                }
                if running
                    && let Some(handler) = container.lifecycle.as_ref().and_then(|l| l.post_start.as_ref())
                {
                    self.post_start(container, attempt, handler).await;
                }
                None
            }
            Err((reason, message)) => {
                tracing::warn!(container = %container.name, %reason, message = message.as_deref().unwrap_or(""), "container not started");
                // The kubelet's `Failed` event: image errors by their name, others with
                // their message.
                let image_error = matches!(
                    reason.as_str(),
                    "ErrImagePull"
                        | "ImagePullBackOff"
                        | "ErrImageNeverPull"
                        | "InvalidImageName"
                        | "ImageInspectError"
                );
                let note = if image_error {
                    format!("Error: {reason}")
                } else {
                    format!("Error: {}", message.as_deref().unwrap_or(&reason))
                };
                self.shared
                    .events
                    .container(&self.pod, &container.name, EventType::Warning, "Failed", note);
                let wait = if image_error { IMAGE_RETRY } else { RETRY };
                let run = self.runs.entry(container.name.clone()).or_default();
                run.waiting = Some((reason, message));
                run.retry_at = Some(Instant::now() + wait);
                Some(wait)
            }
        }
    }

    /// Prepares and creates one container instance; the error is a waiting reason and message.
    async fn create(
        &self,
        container: &Container,
        attempt: u32,
    ) -> Result<(String, ContainerState, EnsuredImage), (String, Option<String>)> {
        let config_error = |message: String| ("CreateContainerConfigError".to_owned(), Some(message));
        let ensured = self
            .ensure_image(container)
            .await
            .map_err(|e| (e.reason, Some(e.message)))?;
        let env_context = self.env_context(container).await.map_err(config_error)?;
        let env =
            make_environment(&self.pod, container, &env_context).map_err(|e| config_error(e.to_string()))?;
        let shared = self.shared.clone();
        let pod = self.pod.clone();
        let container = container.clone();
        let uid = self.uid.clone();
        let volumes = self.volumes.clone().unwrap_or_default();
        let cgroup_parent = self.cgroup_parent.clone().unwrap_or_default();
        tokio::task::spawn_blocking(move || {
            let image = &ensured.image;
            let internal = |message: String| ("CreateContainerError".to_owned(), Some(message));
            let layers = shared
                .images
                .prepare_layers(image)
                .map_err(|e| internal(e.to_string()))?;
            let dir = shared.layout.container_dir(&uid, &container.name, attempt);
            let rootfs = crate::images::mount_overlay(&layers, &dir).map_err(|e| internal(e.to_string()))?;
            let mut mounts = Vec::new();
            for mount in container.volume_mounts.iter().flatten() {
                let Some(source) = volumes.get(&mount.name) else {
                    return Err(config_error(format!(
                        "cannot find volume {:?} to mount into container {:?}",
                        mount.name, container.name
                    )));
                };
                let mut source = source.clone();
                if let Some(sub) = mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
                    crate::pod::volumes::subpath::safe_make_dir(&source, sub, 0o755)
                        .map_err(|e| config_error(e.to_string()))?;
                    source = source.join(sub);
                }
                mounts.push(Mount {
                    destination: mount.mount_path.clone(),
                    source: source.display().to_string(),
                    kind: "bind".to_owned(),
                    options: Vec::new(),
                    readonly: mount.read_only == Some(true),
                    propagation: match mount.mount_propagation.as_deref() {
                        Some("HostToContainer") => Propagation::HostToContainer,
                        Some("Bidirectional") => Propagation::Bidirectional,
                        _ => Propagation::Private,
                    },
                });
            }
            let mounted = |mounts: &[Mount], path: &str| mounts.iter().any(|m| m.destination == path);
            if !mounted(&mounts, "/etc/hosts") {
                mounts.push(bind(&shared.layout.hosts_file(&uid), "/etc/hosts", false));
            }
            if !mounted(&mounts, "/etc/resolv.conf") {
                mounts.push(bind(&shared.layout.resolv_file(&uid), "/etc/resolv.conf", false));
            }
            // The sandbox's shm, or the host's for hostIPC pods, as containerd mounts it.
            let host_ipc = pod.spec.as_ref().and_then(|s| s.host_ipc) == Some(true);
            if !mounted(&mounts, "/dev/shm") {
                let shm = if host_ipc {
                    PathBuf::from("/dev/shm")
                } else {
                    shared.layout.shm(&uid)
                };
                mounts.push(bind(&shm, "/dev/shm", false));
            }
            let message_path = container
                .termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".to_owned());
            let message_file = dir.join("termination-log");
            std::fs::write(&message_file, b"").map_err(|e| internal(e.to_string()))?;
            mounts.push(bind(&message_file, &message_path, false));
            let host_network = pod.spec.as_ref().and_then(|s| s.host_network) == Some(true);
            let hostname = crate::pod::hosts::pod_hostname_and_domain(&pod, &shared.dns.cluster_domain)
                .map(|(name, _)| name)
                .map_err(|e| config_error(e.to_string()))?;
            let runtime_config = image.runtime_config();
            let mut spec = container_spec(
                &pod,
                &container,
                ContainerInputs {
                    image: &runtime_config,
                    env: &env,
                    rootfs: rootfs.merged.clone(),
                    mounts,
                    netns: (!host_network).then(|| shared.layout.netns(&uid)),
                    ipcns: shared.layout.ipcns(&uid),
                    pidns: shared.layout.pause(&uid).pidns,
                    hostname,
                    cgroup_parent,
                    node_memory: shared.node_memory,
                    min_oom_score_adj: shared.min_oom_score_adj,
                },
            )
            .map_err(|e| config_error(e.to_string()))?;
            spec.annotations = image_annotations(&ensured);
            spec.sysctls = crate::pod::sysctl::pod_sysctls(&pod);
            let id = container_id(&uid, &container.name, attempt);
            spec.seccomp = match seccomp_choice(&pod, &container, &shared.seccomp_root)
                .map_err(|e| config_error(e.to_string()))?
            {
                SeccompChoice::Unconfined => Seccomp::Unconfined,
                SeccompChoice::RuntimeDefault => Seccomp::RuntimeDefault,
                SeccompChoice::Localhost(path) => {
                    let profile = load_seccomp_profile(&path).map_err(|message| {
                        let _ = crate::images::unmount_overlay(&rootfs.merged);
                        internal(format!("failed to generate container {id:?} spec: {message}"))
                    })?;
                    Seccomp::Profile(profile)
                }
            };
            let log = shared.layout.container_log(
                pod.metadata.namespace.as_deref().unwrap_or(""),
                pod.metadata.name.as_deref().unwrap_or(""),
                &uid,
                &container.name,
                attempt,
            );
            match shared.runtime.create(&id, &spec, &log) {
                Ok(state) => Ok((id, state, ensured)),
                Err(err) => {
                    let _ = crate::images::unmount_overlay(&rootfs.merged);
                    Err(("RunContainerError".to_owned(), Some(err.to_string())))
                }
            }
        })
        .await
        .map_err(|e| ("CreateContainerError".to_owned(), Some(e.to_string())))?
    }

    /// The container's image as its pull policy says: present, pulled, or why not.
    async fn ensure_image(&self, container: &Container) -> Result<EnsuredImage, ImageError> {
        let requested = container.image.clone().unwrap_or_default();
        let policy = container
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| default_pull_policy(&requested).to_owned());
        let manager = &self.shared.image_manager;
        let events = self.shared.events.clone();
        let pod = self.pod.clone();
        let name = container.name.clone();
        let report = move |type_, reason: &str, note| events.container(&pod, &name, type_, reason, note);
        match manager.precheck(&requested, &policy, &report).await? {
            Precheck::Present(image) => Ok(*image),
            Precheck::Pull { image, reference } => {
                // Secrets are read only when a pull will happen.
                let creds = if manager.backoff_remaining(&self.uid, &image).is_some() {
                    Vec::new()
                } else {
                    self.pull_credentials(&reference).await
                };
                manager.pull(&self.uid, &image, &reference, creds, &report).await
            }
        }
    }

    /// The credentials the pod's `imagePullSecrets` hold for the image's repository.
    async fn pull_credentials(&self, reference: &Reference) -> Vec<AuthConfig> {
        let names: Vec<String> = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.as_ref())
            .into_iter()
            .flatten()
            .map(|r| r.name.clone())
            .filter(|name| !name.is_empty())
            .collect();
        if names.is_empty() {
            return Vec::new();
        }
        let api: Api<Secret> = Api::namespaced(
            self.shared.client.clone(),
            &self.pod.namespace().unwrap_or_default(),
        );
        let mut secrets = Vec::new();
        for name in names {
            match api.get_opt(&name).await {
                Ok(Some(secret)) => secrets.push(secret),
                Ok(None) => {
                    tracing::warn!(secret = %name, "Unable to retrieve pull secret, the image pull may not succeed.");
                }
                Err(err) => {
                    tracing::warn!(secret = %name, error = %err, "Unable to retrieve pull secret, the image pull may not succeed.");
                }
            }
        }
        match Keyring::from_secrets(&secrets) {
            Ok(keyring) => keyring.lookup(&reference.name()),
            Err(err) => {
                tracing::warn!(error = %err, "ignoring the pod's pull secrets");
                Vec::new()
            }
        }
    }

    /// The ConfigMaps and Secrets the container's environment names, and the Services for
    /// service links.
    async fn env_context(&self, container: &Container) -> Result<EnvContext, String> {
        let namespace = self.pod.namespace().unwrap_or_default();
        let client = &self.shared.client;
        let mut context = EnvContext {
            node_allocatable: self.shared.node_allocatable.clone(),
            runtime: crate::pod::fieldref::RuntimeFields {
                pod_ips: self.pod_ips(),
                host_ips: self.shared.host_ips.clone(),
            },
            ..EnvContext::default()
        };
        let mut config_maps = Vec::new();
        let mut secrets = Vec::new();
        for source in container.env_from.iter().flatten() {
            config_maps.extend(source.config_map_ref.as_ref().map(|r| r.name.clone()));
            secrets.extend(source.secret_ref.as_ref().map(|r| r.name.clone()));
        }
        for var in container.env.iter().flatten() {
            if let Some(from) = &var.value_from {
                config_maps.extend(from.config_map_key_ref.as_ref().map(|r| r.name.clone()));
                secrets.extend(from.secret_key_ref.as_ref().map(|r| r.name.clone()));
            }
        }
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
        for name in config_maps {
            if let Some(found) = cms.get_opt(&name).await.map_err(|e| e.to_string())? {
                context.config_maps.insert(name, found);
            }
        }
        let secret_api: Api<Secret> = Api::namespaced(client.clone(), &namespace);
        for name in secrets {
            if let Some(found) = secret_api.get_opt(&name).await.map_err(|e| e.to_string())? {
                context.secrets.insert(name, found);
            }
        }
        let services: Api<Service> = Api::all(client.clone());
        context.services = services
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items;
        Ok(context)
    }

    /// Removes one ended instance: its runtime state and its root filesystem.
    async fn remove_instance(&self, name: &str, attempt: u32) {
        let shared = self.shared.clone();
        let uid = self.uid.clone();
        let name = name.to_owned();
        let _ = tokio::task::spawn_blocking(move || remove_container(&shared, &uid, &name, attempt)).await;
    }

    /// The records the status is made of.
    fn records(&self, containers: &[Container], sidecars: bool) -> Vec<ContainerRecord> {
        containers
            .iter()
            .map(|container| {
                let run = self.runs.get(&container.name);
                let state = match run {
                    Some(Run {
                        waiting: Some((reason, message)),
                        ..
                    }) => Observed::Waiting {
                        reason: reason.clone(),
                        message: message.clone(),
                    },
                    Some(Run {
                        observed: Some(observed),
                        ..
                    }) => observed.clone(),
                    _ => Observed::Waiting {
                        reason: if sidecars || !self.initialized() {
                            "PodInitializing"
                        } else {
                            "ContainerCreating"
                        }
                        .to_owned(),
                        message: None,
                    },
                };
                // While a crashed container waits out its back-off, the instance that ended is
                // its last state.
                let last = match run {
                    Some(Run {
                        waiting: Some(_),
                        observed: Some(Observed::Terminated(ended)),
                        ..
                    }) => Some(ended.clone()),
                    _ => run.and_then(|r| r.last.clone()),
                };
                let running = matches!(state, Observed::Running { .. });
                let attempt = run.map_or(0, |r| r.attempt);
                ContainerRecord {
                    name: container.name.clone(),
                    image: run
                        .map(|r| r.image_name.clone())
                        .filter(|name| !name.is_empty())
                        .or_else(|| container.image.clone())
                        .unwrap_or_default(),
                    image_id: run.map(|r| r.image_id.clone()).unwrap_or_default(),
                    restart_count: attempt as i32,
                    ready: running && self.probes.ready(container, attempt),
                    started: running && self.probes.started(container, attempt),
                    last,
                    sidecar: sidecars && container.restart_policy.as_deref() == Some("Always"),
                    state,
                }
            })
            .collect()
    }

    fn initialized(&self) -> bool {
        let spec = self.pod.spec.as_ref();
        spec.and_then(|s| s.init_containers.as_ref())
            .into_iter()
            .flatten()
            .all(|c| {
                let run = self.runs.get(&c.name);
                let observed = run.and_then(|r| r.observed.as_ref());
                match observed {
                    Some(Observed::Terminated(t)) => {
                        t.exit_code == 0 && c.restart_policy.as_deref() != Some("Always")
                    }
                    Some(Observed::Running { .. }) => {
                        c.restart_policy.as_deref() == Some("Always")
                            && self.probes.started(c, run.map_or(0, |r| r.attempt))
                    }
                    _ => false,
                }
            })
    }

    /// Writes the status when it changed; returns the phase.
    async fn report(&mut self) -> Option<String> {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let init = self.records(spec.init_containers.as_deref().unwrap_or(&[]), true);
        let app = self.records(&spec.containers, false);
        let place = Placement {
            host_ips: self.shared.host_ips.clone(),
            pod_ips: self.pod_ips(),
            sandbox_ready: self.sandbox_ready,
        };
        let status = status::pod_status(&self.pod, &init, &app, &place, jiff::Timestamp::now());
        let phase = status.phase.clone();
        if self.reported.as_ref().is_some_and(|r| same_status(r, &status)) {
            return phase;
        }
        let pods: Api<Pod> = Api::namespaced(
            self.shared.client.clone(),
            &self.pod.namespace().unwrap_or_default(),
        );
        let patch = serde_json::json!({
            "metadata": {"uid": self.uid},
            "status": status,
        });
        match pods
            .patch_status(
                &self.pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(updated) => {
                self.pod.status = updated.status;
                self.reported = Some(status);
            }
            Err(err) => tracing::warn!(error = %err, "reporting the pod status failed"),
        }
        phase
    }

    /// The kubelet's `rejectPod`: a Warning event and the pod Failed with the reason and
    /// `Pod was rejected: MESSAGE`; nothing of it runs on the node.
    async fn reject(&mut self, reason: &str, message: &str) {
        self.terminal = true;
        self.shared
            .events
            .pod(&self.pod, EventType::Warning, reason, message.to_owned());
        let pods: Api<Pod> = Api::namespaced(
            self.shared.client.clone(),
            &self.pod.namespace().unwrap_or_default(),
        );
        let patch = serde_json::json!({
            "metadata": {"uid": self.uid},
            "status": {
                "phase": "Failed",
                "reason": reason,
                "message": format!("Pod was rejected: {message}"),
                "qosClass": rudder_machinery::kinds::pod::pod_qos_class(&self.pod),
            },
        });
        match pods
            .patch_status(
                &self.pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(updated) => self.pod.status = updated.status,
            Err(err) => tracing::warn!(error = %err, "reporting the pod's rejection failed"),
        }
    }

    /// Stops every container (SIGTERM, then SIGKILL after the grace period), tears the pod
    /// down on the node and, if it still exists, removes it from the API.
    async fn terminate(&mut self, gone: bool, updates: &watch::Receiver<Option<Pod>>) {
        self.shared.image_manager.forget_pod(&self.uid);
        let grace = self.grace_period(self.pod.metadata.deletion_grace_period_seconds);
        let began = Instant::now();
        self.pre_stop_all(grace).await;
        let grace = grace
            .saturating_sub(began.elapsed())
            .max(MIN_GRACE_AFTER_PRE_STOP);
        stop_all(&self.shared, &self.uid, grace).await;
        self.refresh().await;
        if !gone && updates.borrow().is_some() {
            self.report().await;
        }
        let shared = self.shared.clone();
        let uid = self.uid.clone();
        let cleaned = tokio::task::spawn_blocking(move || clean_up(&shared, &uid)).await;
        match cleaned {
            Ok(Err(err)) => tracing::warn!(error = %err, "cleaning up the pod failed"),
            Err(err) => tracing::warn!(error = %err, "cleaning up the pod failed"),
            Ok(Ok(())) => {}
        }
        if !gone {
            let pods: Api<Pod> = Api::namespaced(
                self.shared.client.clone(),
                &self.pod.namespace().unwrap_or_default(),
            );
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(self.uid.clone()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match pods.delete(&self.pod.name_any(), &params).await {
                Ok(_) => tracing::info!("pod removed"),
                Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
                Err(err) => tracing::warn!(error = %err, "removing the pod failed"),
            }
        }
    }
}

/// The API server's default when a container has no pull policy: `Always` for `:latest`
/// or no tag, else `IfNotPresent`.
fn default_pull_policy(image: &str) -> &'static str {
    let tagged = Reference::parse_normalized(image)
        .is_ok_and(|r| r.digest().is_some() || r.tag().is_some_and(|t| t != "latest"));
    if tagged { "IfNotPresent" } else { "Always" }
}

/// Runs a preStop hook; a failure is reported and otherwise ignored (the container stops
/// anyway).
async fn pre_stop_hook(
    handler: &k8s_openapi::api::core::v1::LifecycleHandler,
    target: &Target,
    grace: Duration,
) {
    if let Verdict::Failure(message) = probes::run_hook(handler, target, grace).await {
        tracing::warn!(container = %target.container.name, %message, "preStop hook failed");
        target.events.container(
            &target.pod,
            &target.container.name,
            EventType::Warning,
            "FailedPreStopHook",
            "PreStopHook failed".to_owned(),
        );
    }
}

/// A Localhost seccomp profile, or containerd's error for it.
fn load_seccomp_profile(path: &std::path::Path) -> Result<serde_json::Value, String> {
    let shown = path.display();
    let text = std::fs::read(path).map_err(|err| {
        // Go's error text: `open PATH: no such file or directory`.
        let reason = err.raw_os_error().map_or_else(
            || err.to_string(),
            |code| nix::errno::Errno::from_raw(code).desc().to_owned(),
        );
        let mut chars = reason.chars();
        let reason = chars
            .next()
            .map(|first| first.to_lowercase().chain(chars).collect::<String>())
            .unwrap_or_default();
        format!(
            "cannot load seccomp profile {:?}: open {shown}: {reason}",
            shown.to_string()
        )
    })?;
    serde_json::from_slice(&text)
        .map_err(|err| format!("decoding seccomp profile failed {:?}: {err}", shown.to_string()))
}

fn bind(source: &std::path::Path, destination: &str, readonly: bool) -> Mount {
    Mount {
        destination: destination.to_owned(),
        source: source.display().to_string(),
        kind: "bind".to_owned(),
        options: Vec::new(),
        readonly,
        propagation: Propagation::Private,
    }
}

/// Compares statuses ignoring condition transition times that only the clock changed.
fn same_status(a: &PodStatus, b: &PodStatus) -> bool {
    serde_json::to_value(a).ok() == serde_json::to_value(b).ok()
}

fn earliest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn sleep(wake: Option<Duration>) {
    match wake {
        Some(after) => tokio::time::sleep(after).await,
        None => std::future::pending().await,
    }
}

/// Go's `time.Duration` text for whole seconds and minutes (`10s`, `2m40s`, `5m0s`).
fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{}s", secs / 60, secs % 60)
    }
}

/// The pod cgroup's limits: the sums of its containers' limits when every container has one.
fn pod_limits(pod: &Pod) -> PodLimits {
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let mut limits = PodLimits::default();
    let all: Vec<_> = containers.iter().map(super::container::resources).collect();
    if !all.is_empty() && all.iter().all(|r| r.memory_limit.is_some()) {
        limits.memory_limit = Some(all.iter().filter_map(|r| r.memory_limit).sum());
    }
    if !all.is_empty() && all.iter().all(|r| r.cpu_quota.is_some()) {
        limits.cpu_quota = Some(all.iter().filter_map(|r| r.cpu_quota).sum());
        limits.cpu_period = Some(100_000);
    }
    limits.cpu_shares = Some(all.iter().filter_map(|r| r.cpu_shares).sum::<u64>().max(2));
    limits
}

/// The annotation naming a container's image as its status reports it (containerd's).
const IMAGE_NAME_ANNOTATION: &str = "io.kubernetes.cri.image-name";
/// The annotation holding a container's imageID as its status reports it.
const IMAGE_REF_ANNOTATION: &str = "dev.rudder.image-ref";

/// What a container records of its image, so a later noded reports the same image and
/// imageID for it.
fn image_annotations(image: &EnsuredImage) -> BTreeMap<String, String> {
    BTreeMap::from([
        (IMAGE_NAME_ANNOTATION.to_owned(), image.name.clone()),
        (IMAGE_REF_ANNOTATION.to_owned(), image.image_ref.clone()),
    ])
}

/// The image name and imageID a container recorded (empty when it did not).
pub(crate) fn recorded_image(annotations: &BTreeMap<String, String>) -> (String, String) {
    let get = |key: &str| annotations.get(key).cloned().unwrap_or_default();
    (get(IMAGE_NAME_ANNOTATION), get(IMAGE_REF_ANNOTATION))
}

fn rfc3339(text: &str) -> Option<jiff::Timestamp> {
    text.parse().ok()
}

fn termination(id: &str, exit: &crate::runtime::ExitStatus) -> Termination {
    let reason = if exit.oom_killed {
        "OOMKilled"
    } else if exit.exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    Termination {
        exit_code: exit.exit_code,
        signal: None,
        reason: reason.to_owned(),
        message: None,
        started_at: rfc3339(&exit.started_at),
        finished_at: rfc3339(&exit.finished_at),
        container_id: format!("{RUNTIME_NAME}://{id}"),
    }
}

fn observe(id: &str, state: ContainerState) -> Observed {
    match state {
        ContainerState::Running { started_at, .. } => Observed::Running {
            started_at: rfc3339(&started_at).unwrap_or_else(jiff::Timestamp::now),
            container_id: format!("{RUNTIME_NAME}://{id}"),
        },
        ContainerState::Exited(exit) => Observed::Terminated(termination(id, &exit)),
        ContainerState::Unknown => Observed::Terminated(Termination {
            exit_code: 255,
            signal: None,
            reason: "Unknown".to_owned(),
            message: None,
            started_at: None,
            finished_at: None,
            container_id: format!("{RUNTIME_NAME}://{id}"),
        }),
    }
}

/// The message the container left in its termination message file (at most 4096 bytes).
fn termination_message(layout: &Layout, uid: &str, name: &str, attempt: u32) -> Option<String> {
    let data = std::fs::read(layout.container_dir(uid, name, attempt).join("termination-log")).ok()?;
    if data.is_empty() {
        return None;
    }
    let data = &data[..data.len().min(4096)];
    Some(String::from_utf8_lossy(data).into_owned())
}

/// Signals every running container of the pod with SIGTERM and SIGKILLs what still runs
/// after `grace`.
async fn stop_all(shared: &Arc<Shared>, uid: &str, grace: Duration) {
    let (runtime_shared, uid) = (shared.clone(), uid.to_owned());
    let ids = tokio::task::spawn_blocking(move || -> Vec<String> {
        runtime_shared
            .runtime
            .list()
            .unwrap_or_default()
            .into_iter()
            .filter(|(id, state)| {
                matches!(state, ContainerState::Running { .. })
                    && parse_container_id(id).is_some_and(|(owner, _, _)| owner == uid)
            })
            .map(|(id, _)| id)
            .collect()
    })
    .await
    .unwrap_or_default();
    stop_instances(shared, ids, grace).await;
}

/// Signals the instances with SIGTERM and SIGKILLs those still running after `grace`. The
/// waiting is on the async clock: a long grace period holds no blocking thread.
async fn stop_instances(shared: &Arc<Shared>, ids: Vec<String>, grace: Duration) {
    let mut running = signal_running(shared, ids, Some(nix::sys::signal::Signal::SIGTERM)).await;
    let deadline = Instant::now() + grace;
    while !running.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        running = signal_running(shared, running, None).await;
    }
    running = signal_running(shared, running, Some(nix::sys::signal::Signal::SIGKILL)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !running.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        running = signal_running(shared, running, None).await;
    }
}

/// The instances of `ids` still running, each sent `signal` first if one is given.
async fn signal_running(
    shared: &Arc<Shared>,
    ids: Vec<String>,
    signal: Option<nix::sys::signal::Signal>,
) -> Vec<String> {
    let shared = shared.clone();
    tokio::task::spawn_blocking(move || {
        let running: Vec<String> = ids
            .into_iter()
            .filter(|id| matches!(shared.runtime.state(id), Ok(ContainerState::Running { .. })))
            .collect();
        if let Some(signal) = signal {
            for id in &running {
                let _ = shared.runtime.signal(id, signal);
            }
        }
        running
    })
    .await
    .unwrap_or_default()
}

/// Deletes one container instance and unmounts its root filesystem.
fn remove_container(shared: &Shared, uid: &str, name: &str, attempt: u32) {
    let id = container_id(uid, name, attempt);
    match shared.runtime.delete(&id) {
        Ok(()) | Err(RuntimeError::NotFound(_)) => {}
        Err(err) => tracing::warn!(container = %id, error = %err, "deleting the container failed"),
    }
    let dir = shared.layout.container_dir(uid, name, attempt);
    let _ = crate::images::unmount_overlay(&crate::images::overlay::RootfsDirs::new(&dir).merged);
    let _ = volumes::remove_all(&dir);
}

/// Removes everything of the pod on the node: containers, root filesystems, volumes, the
/// network namespace, the cgroup and the pod directory. Logs stay until the pod is gone.
pub(crate) fn clean_up(shared: &Shared, uid: &str) -> Result<(), String> {
    for (id, _) in shared.runtime.list().unwrap_or_default() {
        if let Some((owner, name, attempt)) = parse_container_id(&id)
            && owner == uid
        {
            remove_container(shared, uid, name, attempt);
        }
    }
    // Root filesystems of instances whose runtime state is already gone.
    let containers = shared.layout.pod_dir(uid).join("containers");
    if let Ok(names) = std::fs::read_dir(&containers) {
        for name in names.flatten() {
            if let Ok(attempts) = std::fs::read_dir(name.path()) {
                for attempt in attempts.flatten() {
                    let _ = crate::images::unmount_overlay(
                        &crate::images::overlay::RootfsDirs::new(&attempt.path()).merged,
                    );
                }
            }
        }
    }
    volumes::tear_down(&shared.layout, uid).map_err(|e| e.to_string())?;
    super::pause::stop(&shared.layout.pause(uid)).map_err(|e| e.to_string())?;
    if let Some(network) = &shared.network {
        network.detach(uid)?;
    }
    sandbox::remove_namespace(&shared.layout.netns(uid)).map_err(|e| e.to_string())?;
    sandbox::remove_namespace(&shared.layout.ipcns(uid)).map_err(|e| e.to_string())?;
    sandbox::remove_shm(&shared.layout.shm(uid)).map_err(|e| e.to_string())?;
    for qos in [QosClass::Guaranteed, QosClass::Burstable, QosClass::BestEffort] {
        let _ = cgroup::remove_pod_cgroup(shared.cgroups, &cgroup::pod_cgroup_path(qos, uid));
    }
    volumes::remove_all(&shared.layout.pod_dir(uid)).map_err(|e| e.to_string())?;
    if let Ok(entries) = std::fs::read_dir(shared.layout.log_root()) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().ends_with(&format!("_{uid}")) {
                let _ = volumes::remove_all(&entry.path());
            }
        }
    }
    Ok(())
}
