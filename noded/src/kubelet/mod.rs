//! The real node's kubelet: registers the Node (see [`crate::node`]), watches the pods bound
//! to it and runs each in its own [`worker::PodWorker`], re-adopting containers a previous run
//! left behind and removing those whose pods are gone.
//!
//! It reaches the API only through `kube::Client` and containers only through
//! [`crate::runtime::Runtime`].

pub mod container;
pub mod events;
pub mod image_gc;
pub mod images;
pub mod layout;
pub mod network;
pub mod pause;
pub mod probes;
pub mod sandbox;
pub mod status;
pub mod volumes;
pub mod worker;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::images::Store;
use crate::node::{NodeConfig, NodeError, RegisteredNode};
use crate::runtime::Runtime;
use crate::runtime::cgroup::CgroupVersion;
use layout::{Layout, parse_container_id};
use worker::{PodWorker, Shared};

/// Why the kubelet could not start.
#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Images(#[from] crate::images::Error),
    #[error(transparent)]
    Cgroup(#[from] crate::runtime::cgroup::CgroupError),
    #[error("the kubelet needs root")]
    NeedsRoot,
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
    #[error("{0}")]
    ImageGcPolicy(String),
    #[error(transparent)]
    Sysctls(#[from] crate::pod::sysctl::AllowlistError),
}

/// The kubelet's configuration.
#[derive(Clone, Debug)]
pub struct KubeletConfig {
    pub node: NodeConfig,
    /// Container logs (`/var/log/pods` in production).
    pub log_root: PathBuf,
    /// The binary started as `BINARY shim ...` for each container.
    pub shim_binary: PathBuf,
    pub dns: crate::pod::resolv::DnsSettings,
    /// The node's HTTPS server (container logs); none in tests that do not need it.
    pub server: Option<crate::server::Config>,
    /// How registries are reached when pulling images.
    pub registry: crate::images::registry::RegistryConfig,
    /// How often running pods' ConfigMap, Secret, downward API and projected volumes are
    /// brought up to date (the kubelet's `--sync-frequency`, one minute by default).
    pub sync_frequency: std::time::Duration,
    /// When unused images are removed (`--image-gc-high-threshold` and friends).
    pub image_gc: image_gc::ImageGcPolicy,
    /// Unsafe sysctls (or patterns ending in `*`) pods may set besides the safe ones
    /// (`--allowed-unsafe-sysctls`).
    pub allowed_unsafe_sysctls: Vec<String>,
    /// What connects pods to the node's pod network; without one, pods have loopback only.
    pub network: Option<Arc<dyn network::PodNetwork>>,
}

/// A running kubelet.
pub struct Kubelet {
    registered: RegisteredNode,
    pods: tokio::task::JoinHandle<()>,
    server: Option<crate::server::Running>,
}

/// The pods bound to the node as last seen (with the status the node wrote), for the node's
/// server.
struct KnownPods {
    pods: std::sync::Mutex<HashMap<(String, String), Pod>>,
    runtime: Runtime,
    layout: Layout,
}

impl KnownPods {
    fn update(&self, pod: &Pod, present: bool) {
        let key = (pod.namespace().unwrap_or_default(), pod.name_any());
        let mut pods = self
            .pods
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if present {
            pods.insert(key, pod.clone());
        } else if pods.get(&key).and_then(|p| p.uid()) == pod.uid() {
            pods.remove(&key);
        }
    }
}

impl crate::server::PodSource for KnownPods {
    fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        let pods = self
            .pods
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        pods.get(&(namespace.to_owned(), name.to_owned())).cloned()
    }

    fn container_running(&self, pod: &Pod, container: &str) -> bool {
        self.running_container(pod, container).is_some()
    }

    fn running_container(&self, pod: &Pod, container: &str) -> Option<String> {
        let uid = pod.uid().unwrap_or_default();
        let newest = self
            .runtime
            .list()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(id, state)| {
                let (owner, name, attempt) = parse_container_id(&id)?;
                (owner == uid && name == container).then_some((attempt, id.clone(), state))
            })
            .max_by_key(|(attempt, _, _)| *attempt);
        match newest {
            Some((_, id, crate::runtime::ContainerState::Running { .. })) => Some(id),
            _ => None,
        }
    }

    fn network_namespace(&self, pod: &Pod) -> Option<PathBuf> {
        let host_network = pod.spec.as_ref().and_then(|spec| spec.host_network) == Some(true);
        (!host_network).then(|| self.layout.netns(&pod.uid().unwrap_or_default()))
    }

    fn runtime(&self) -> Option<Runtime> {
        Some(self.runtime.clone())
    }
}

impl Kubelet {
    /// Registers the node and starts running its pods.
    pub async fn start(
        client: Client,
        config: KubeletConfig,
        shutdown: CancellationToken,
    ) -> Result<Kubelet, KubeletError> {
        if !rustix::process::geteuid().is_root() {
            return Err(KubeletError::NeedsRoot);
        }
        config.image_gc.validate().map_err(KubeletError::ImageGcPolicy)?;
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        let sysctls = crate::pod::sysctl::Allowlist::new(&release, &config.allowed_unsafe_sysctls)?;
        let data_dir = config.node.data_dir.clone();
        let images = Arc::new(Store::open(crate::images::store_dir(&data_dir))?);
        match crate::images::auto_import(&images, &crate::images::drop_in_dir(&data_dir)) {
            Ok(results) => tracing::debug!(?results, "imported images from the drop-in directory"),
            Err(err) => tracing::warn!(error = %err, "importing images from the drop-in directory failed"),
        }
        let registered = crate::node::register(client.clone(), config.node.clone(), shutdown.clone()).await?;
        let status = registered.node.status.clone().unwrap_or_default();
        let host_ips: Vec<String> = status
            .addresses
            .iter()
            .flatten()
            .filter(|a| a.type_ == "InternalIP")
            .map(|a| a.address.clone())
            .collect();
        let node_allocatable: BTreeMap<_, _> = status.allocatable.clone().unwrap_or_default();
        let node_memory = status
            .capacity
            .as_ref()
            .and_then(|c| c.get("memory"))
            .and_then(|q| rudder_machinery::validation::quantity::parse_quantity(&q.0).ok())
            .map_or(0, |q| q.value());
        let mut dns = config.dns.clone();
        dns.node_ips = host_ips.iter().filter_map(|ip| ip.parse().ok()).collect();
        let shared = Arc::new(Shared {
            client: client.clone(),
            runtime: Runtime::new(data_dir.join("runtime"), &config.shim_binary),
            image_manager: images::ImageManager::new(
                images.clone(),
                crate::images::registry::RegistryClient::new(config.registry.clone()),
            ),
            images,
            layout: Layout::new(&data_dir, &config.log_root),
            node_name: config.node.name.clone(),
            host_ips,
            node_allocatable,
            node_memory,
            cgroups: CgroupVersion::detect()?,
            dns,
            host_hosts_file: PathBuf::from("/etc/hosts"),
            min_oom_score_adj: container::oom_score_adj_floor(),
            events: events::Events::new(client.clone(), &config.node.name),
            sync_frequency: config.sync_frequency,
            pause_binary: config.shim_binary.clone(),
            seccomp_root: data_dir.join("seccomp"),
            sysctls,
            network: config.network.clone(),
        });
        let known = Arc::new(KnownPods {
            pods: std::sync::Mutex::default(),
            runtime: shared.runtime.clone(),
            layout: shared.layout.clone(),
        });
        let server = match config.server {
            Some(server) => Some(crate::server::start(server, known.clone()).await?),
            None => None,
        };
        tokio::spawn(image_gc::run(
            shared.images.clone(),
            shared.runtime.clone(),
            shared.events.clone(),
            config.image_gc,
            shutdown.clone(),
        ));
        let pods = tokio::spawn(watch_pods(shared, known, shutdown));
        Ok(Kubelet {
            registered,
            pods,
            server,
        })
    }

    /// The Node as registered.
    pub fn node(&self) -> &k8s_openapi::api::core::v1::Node {
        &self.registered.node
    }

    /// Waits for the kubelet to stop after shutdown.
    pub async fn join(self) {
        let _ = self.pods.await;
        if let Some(server) = self.server {
            server.stop().await;
        }
        self.registered.join().await;
    }
}

/// Watches the pods bound to the node and keeps one worker per pod UID.
async fn watch_pods(shared: Arc<Shared>, known: Arc<KnownPods>, shutdown: CancellationToken) {
    let api: Api<Pod> = Api::all(shared.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", shared.node_name));
    // managedFields are the API's bookkeeping; without them each kept copy of a pod is a
    // fraction of the size.
    let mut events = watcher(api, config)
        .modify(|pod| pod.metadata.managed_fields = None)
        .boxed();
    let mut workers: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut listed: Option<HashSet<String>> = None;
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.next() => event,
        };
        workers.retain(|_, sender| !sender.is_closed());
        match event {
            None => return,
            Some(Err(err)) => {
                tracing::warn!(error = %err, "watching pods failed");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Some(Ok(watcher::Event::Init)) => listed = Some(HashSet::new()),
            Some(Ok(watcher::Event::InitApply(pod) | watcher::Event::Apply(pod))) => {
                if let Some(seen) = listed.as_mut() {
                    seen.insert(pod.uid().unwrap_or_default());
                }
                known.update(&pod, true);
                dispatch(&shared, &mut workers, pod, &shutdown).await;
            }
            Some(Ok(watcher::Event::Delete(pod))) => {
                known.update(&pod, false);
                if let Some(sender) = workers.get(&pod.uid().unwrap_or_default()) {
                    let _ = sender.send(None);
                }
            }
            Some(Ok(watcher::Event::InitDone)) => {
                let seen = listed.take().unwrap_or_default();
                for (uid, sender) in &workers {
                    if !seen.contains(uid) {
                        let _ = sender.send(None);
                    }
                }
                let shared = shared.clone();
                let _ = tokio::task::spawn_blocking(move || remove_orphans(&shared, &seen)).await;
            }
        }
    }
}

async fn dispatch(
    shared: &Arc<Shared>,
    workers: &mut HashMap<String, watch::Sender<Option<Pod>>>,
    pod: Pod,
    shutdown: &CancellationToken,
) {
    let uid = pod.uid().unwrap_or_default();
    if let Some(sender) = workers.get(&uid) {
        let _ = sender.send(Some(pod));
        return;
    }
    let (sender, receiver) = watch::channel(Some(pod.clone()));
    workers.insert(uid, sender);
    let worker = PodWorker::adopt(shared.clone(), pod).await;
    let shutdown = shutdown.child_token();
    tokio::spawn(async move {
        Box::pin(worker.run(receiver, shutdown)).await;
        // The pod's worker, runs and volumes are freed now.
        crate::process::release_freed_memory_soon();
    });
}

/// Stops and removes containers and pod directories of pods the API no longer has.
fn remove_orphans(shared: &Shared, known: &HashSet<String>) {
    let mut orphans: HashSet<String> = HashSet::new();
    for (id, _) in shared.runtime.list().unwrap_or_default() {
        if let Some((uid, _, _)) = parse_container_id(&id)
            && !known.contains(uid)
        {
            orphans.insert(uid.to_owned());
        }
    }
    if let Ok(entries) = std::fs::read_dir(shared.layout.pods_dir()) {
        for entry in entries.flatten() {
            let uid = entry.file_name().to_string_lossy().into_owned();
            if !known.contains(&uid) {
                orphans.insert(uid);
            }
        }
    }
    for uid in orphans {
        tracing::info!(%uid, "removing the containers of a pod that is gone");
        for (id, state) in shared.runtime.list().unwrap_or_default() {
            if parse_container_id(&id).is_some_and(|(owner, _, _)| owner == uid)
                && matches!(state, crate::runtime::ContainerState::Running { .. })
            {
                let _ = shared.runtime.signal(&id, nix::sys::signal::Signal::SIGKILL);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        if let Err(err) = worker::clean_up(shared, &uid) {
            tracing::warn!(%uid, error = %err, "removing a gone pod failed");
        }
    }
}
