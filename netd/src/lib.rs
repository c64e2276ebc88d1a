//! netd: the node's network. The pod network over rtnetlink (a bridge per node, a veth pair
//! per pod, addresses from the node's podCIDR), with routes and masquerading that keep cluster
//! traffic on the machine; the service proxy and NetworkPolicy in nftables; cluster DNS.
//!
//! It reaches the API server only through `kube::Client` (its node's identity), like any
//! third-party network plugin; it never touches containers: noded hands it network namespaces
//! through [`PodNetwork`].

pub mod cidr;
pub mod conntrack;
pub mod dns;
pub mod host;
pub mod ipam;
pub mod kube_dns;
pub mod netlink;
pub mod nft;
pub mod node_routes;
pub mod pod_network;
pub mod policy;
pub mod proxy;
pub mod socket;
pub mod watched;

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use cidr::Ipv4Cidr;
pub use pod_network::PodNetwork;

/// Why netd failed.
#[derive(Debug, thiserror::Error)]
pub enum NetdError {
    #[error("{0}")]
    Config(String),
    #[error("network is not ready: the node has no podCIDR yet")]
    NoPodCidr,
    #[error(transparent)]
    Netlink(#[from] netlink::NetlinkError),
    #[error(transparent)]
    Ipam(#[from] ipam::IpamError),
    #[error(transparent)]
    Nft(#[from] nft::NftError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the nft program is missing: netd programs nftables through it (Debian/Ubuntu: apt-get install nftables)"
    )]
    NftMissing,
    #[error("netd needs root")]
    NeedsRoot,
}

/// netd's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The node this netd serves.
    pub node_name: String,
    pub cluster_cidr: Ipv4Cidr,
    pub service_cidr: Ipv4Cidr,
    /// The node's bridge.
    pub bridge: String,
    pub mtu: u32,
    /// Where leases are kept (`DATA_DIR/netd`).
    pub state_dir: PathBuf,
    /// The cluster domain DNS answers for.
    pub cluster_domain: String,
    /// The kube-dns Service's cluster IP.
    pub cluster_dns: std::net::Ipv4Addr,
    /// The resolvers DNS forwards other names to (the host's resolv.conf nameservers).
    pub upstream_dns: Vec<std::net::SocketAddr>,
}

impl Config {
    /// The defaults for `node_name` with state under `state_dir`.
    pub fn new(node_name: &str, state_dir: PathBuf) -> Self {
        Self {
            node_name: node_name.to_owned(),
            cluster_cidr: DEFAULT_CLUSTER_CIDR,
            service_cidr: DEFAULT_SERVICE_CIDR,
            bridge: "rudder0".to_owned(),
            mtu: 1500,
            state_dir,
            cluster_domain: "cluster.local".to_owned(),
            cluster_dns: std::net::Ipv4Addr::new(10, 96, 0, 10),
            upstream_dns: dns::upstreams(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()),
        }
    }
}

/// The pod network of the whole cluster (`--cluster-cidr`).
pub const DEFAULT_CLUSTER_CIDR: Ipv4Cidr = Ipv4Cidr::masked(std::net::Ipv4Addr::new(10, 244, 0, 0), 16);
/// The ClusterIP range (`--service-cluster-ip-range`).
pub const DEFAULT_SERVICE_CIDR: Ipv4Cidr = Ipv4Cidr::masked(std::net::Ipv4Addr::new(10, 96, 0, 0), 16);

/// What netd follows of its Node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// `spec.podCIDR`, once node IPAM assigned it.
    pub pod_cidr: Option<Ipv4Cidr>,
    /// The node's IPv4 addresses (`status.addresses`, internal and external): where node
    /// ports answer.
    pub addresses: Vec<std::net::Ipv4Addr>,
}

/// A running netd.
#[derive(Debug)]
pub struct Netd {
    pod_network: Arc<PodNetwork>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Netd {
    /// What noded connects pods with.
    pub fn pod_network(&self) -> Arc<PodNetwork> {
        self.pod_network.clone()
    }

    /// Waits for netd's tasks to end (after the shutdown token fired).
    pub async fn join(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Whether `nft` can be run.
pub fn nft_available() -> bool {
    std::process::Command::new("nft")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Starts netd for `config.node_name`: follows the node's podCIDR and sets up the host side
/// of the pod network when it is known.
pub fn start(config: Config, client: Client, shutdown: CancellationToken) -> Result<Netd, NetdError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(NetdError::NeedsRoot);
    }
    if !nft_available() {
        return Err(NetdError::NftMissing);
    }
    let (facts, node) = watch::channel(NodeFacts::default());
    let host = host::HostNetwork {
        bridge: config.bridge.clone(),
        mtu: config.mtu,
        cluster_cidr: config.cluster_cidr,
        service_cidr: config.service_cidr,
    };
    let pod_network = Arc::new(PodNetwork::new(host, config.state_dir.join("ipam"), node.clone()));
    let network = proxy::rules::Network {
        cluster_cidr: config.cluster_cidr,
        service_cidr: config.service_cidr,
    };
    let watched = watched::Watched::start(&client, &config.node_name, &shutdown);
    let tasks = vec![
        tokio::spawn(follow_node(
            client.clone(),
            config.node_name.clone(),
            facts,
            shutdown.clone(),
        )),
        tokio::spawn(proxy::run(
            watched.clone(),
            config.node_name.clone(),
            network,
            node.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(policy::run(
            client.clone(),
            config.node_name.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(node_routes::run(
            client.clone(),
            config.node_name.clone(),
            config.cluster_cidr,
            config.mtu,
            shutdown.clone(),
        )),
        tokio::spawn(serve_dns(
            client,
            config,
            pod_network.clone(),
            watched,
            node,
            shutdown,
        )),
    ];
    Ok(Netd { pod_network, tasks })
}

/// Publishes what netd uses of the node whenever it changes.
async fn follow_node(
    client: Client,
    node_name: String,
    facts: watch::Sender<NodeFacts>,
    shutdown: CancellationToken,
) {
    let nodes: Api<Node> = Api::all(client);
    let config = watcher::Config::default().fields(&format!("metadata.name={node_name}"));
    let mut stream = std::pin::pin!(watcher(nodes, config).default_backoff().applied_objects());
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            next = stream.next() => next,
        };
        match next {
            Some(Ok(node)) => {
                let range = node
                    .spec
                    .as_ref()
                    .and_then(|spec| spec.pod_cidr.as_deref())
                    .and_then(|text| text.parse::<Ipv4Cidr>().ok());
                let addresses = node
                    .status
                    .as_ref()
                    .and_then(|status| status.addresses.as_ref())
                    .into_iter()
                    .flatten()
                    .filter(|a| matches!(a.type_.as_str(), "InternalIP" | "ExternalIP"))
                    .filter_map(|a| a.address.parse().ok())
                    .collect();
                let next = NodeFacts {
                    pod_cidr: range,
                    addresses,
                };
                facts.send_if_modified(|current| {
                    let changed = *current != next;
                    *current = next;
                    changed
                });
            }
            Some(Err(err)) => tracing::debug!(error = %err, "watching the node"),
            None => return,
        }
    }
}

/// Sets up the host side of the pod network as soon as the node has its podCIDR, then
/// serves cluster DNS on the bridge's address and publishes it behind kube-dns.
async fn serve_dns(
    client: Client,
    config: Config,
    pod_network: Arc<PodNetwork>,
    watched: watched::Watched,
    mut node: watch::Receiver<NodeFacts>,
    shutdown: CancellationToken,
) {
    let range = tokio::select! {
        () = shutdown.cancelled() => return,
        facts = node.wait_for(|facts| facts.pod_cidr.is_some()) => match facts {
            Ok(facts) => facts.pod_cidr,
            Err(_) => return,
        },
    };
    let Some(range) = range else { return };
    let Some(address) = range.nth(1) else { return };
    loop {
        match pod_network.ensure_host(range).await {
            Ok(()) => break,
            Err(err) => tracing::warn!(error = %err, "setting up the node's pod network failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
    let publish = async {
        loop {
            match kube_dns::publish(&client, &config.node_name, config.cluster_dns, address).await {
                Ok(()) => return,
                Err(err) => tracing::warn!(error = %err, "publishing the node's DNS behind kube-dns failed"),
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    };
    let serve = dns::run(
        watched,
        config.cluster_domain.clone(),
        std::net::IpAddr::V4(address),
        config.upstream_dns.clone(),
        shutdown.clone(),
    );
    let (served, ()) = tokio::join!(serve, publish);
    if let Err(err) = served {
        tracing::error!(error = %err, %address, "cluster DNS could not listen");
    }
}
