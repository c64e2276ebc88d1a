//! The node: the flags `rudder server` (for its in-process node) and `rudder noded` share, the
//! one function that turns them into the kubelet's configuration and starts the kubelet with
//! its HTTPS server, and `rudder noded` itself.
//!
//! It only wires flags to `rudder_noded`; node behaviour lives in that crate.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

/// The node's flags, as the kubelet names them.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// This machine's node name [default: the host name].
    #[arg(long)]
    pub node_name: Option<String>,
    /// IP address of the node (its InternalIP) [default: the address of the default route's
    /// interface].
    #[arg(long, value_name = "IP")]
    pub node_ip: Option<std::net::IpAddr>,
    /// Where containers' logs are written.
    #[arg(long, default_value = "/var/log/pods", value_name = "DIR")]
    pub pod_log_dir: PathBuf,
    /// A registry (`HOST[:PORT]`, as image names spell it) to pull from over plain HTTP
    /// (repeatable). Loopback registries fall back to HTTP without it.
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    pub insecure_registries: Vec<String>,
    /// The port of this node's server (logs, exec, attach), as the kubelet's `--port`.
    #[arg(long, default_value_t = 10250, value_name = "PORT")]
    pub kubelet_port: u16,
    /// How often the node brings running pods' ConfigMap, Secret, downward API and projected
    /// volumes up to date (a Go duration, as the kubelet's flag).
    #[arg(long, default_value = "1m0s", value_name = "DURATION", value_parser = parse_duration)]
    pub sync_frequency: std::time::Duration,
    /// The percent of disk usage after which image garbage collection is always run. Values
    /// must be within the range [0, 100]; to disable image garbage collection, set to 100.
    #[arg(long, default_value_t = 85, value_name = "PERCENT")]
    pub image_gc_high_threshold: u32,
    /// The percent of disk usage before which image garbage collection is never run; the
    /// lowest disk usage to garbage collect to. Within [0, 100] and not above
    /// --image-gc-high-threshold.
    #[arg(long, default_value_t = 80, value_name = "PERCENT")]
    pub image_gc_low_threshold: u32,
    /// Minimum age for an unused image before it is garbage collected (a Go duration).
    #[arg(long, default_value = "2m0s", value_name = "DURATION", value_parser = parse_duration)]
    pub minimum_image_ttl_duration: std::time::Duration,
    /// Maximum age an image can be unused before it is garbage collected; 0s disables it
    /// (the kubelet configuration's imageMaximumGCAge).
    #[arg(long, default_value = "0s", value_name = "DURATION", value_parser = parse_duration)]
    pub image_maximum_gc_age: std::time::Duration,
    /// Comma-separated whitelist of unsafe sysctls or unsafe sysctl patterns (ending in *).
    /// Use these at your own risk.
    #[arg(long, value_delimiter = ',', value_name = "SYSCTLS")]
    pub allowed_unsafe_sysctls: Vec<String>,
    /// Do not run netd, the node's pod network: pods then get a network namespace with
    /// loopback alone and no address.
    #[arg(long)]
    pub disable_netd: bool,
    /// Connect pods through a `rudder netd` serving on this socket instead of running netd
    /// in this process.
    #[arg(long, value_name = "PATH", conflicts_with = "disable_netd")]
    pub netd_socket: Option<PathBuf>,
}

impl NodeArgs {
    /// The node name: the flag, else the lower-cased host name.
    pub fn node_name(&self) -> String {
        self.node_name
            .clone()
            .unwrap_or_else(rudder_apiserver::default_node_name)
    }
}

/// `rudder noded`'s own flags.
#[derive(Args)]
pub struct NodedArgs {
    /// Kubeconfig to reach the API server with (`rudder server` writes one for its node name
    /// as DATA_DIR/node.kubeconfig).
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Where images, containers' state and pods' volumes are kept
    /// [default: /var/lib/rudder as root, else ~/.local/share/rudder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The node server's certificate, signed by the cluster CA (`rudder server` writes one for
    /// its node name as DATA_DIR/pki/kubelet.crt).
    #[arg(long, value_name = "FILE")]
    pub tls_cert_file: PathBuf,
    /// The key of --tls-cert-file (DATA_DIR/pki/kubelet.key).
    #[arg(long, value_name = "FILE")]
    pub tls_private_key_file: PathBuf,
    /// The CA that signs the API server's client certificate [default: the kubeconfig's CA].
    #[arg(long, value_name = "FILE")]
    pub client_ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// What the node's HTTPS server serves with and whom it lets in.
pub struct ServingTls {
    /// The CA that signs clients' certificates, PEM.
    pub client_ca_pem: String,
    /// The serving certificate and key (possibly still to come, for a joining node).
    pub serving: rudder_noded::identity::TlsIdentity,
    /// The client certificate common name allowed (the API server's kubelet client).
    pub allowed_user: String,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    rudder_noded::simulated::parse_go_duration(text).ok_or_else(|| format!("time: invalid duration {text:?}"))
}

/// netd's pod network as noded's network plugin.
#[derive(Debug)]
struct NetdPods(std::sync::Arc<rudder_netd::PodNetwork>);

impl rudder_noded::kubelet::network::PodNetwork for NetdPods {
    fn attach<'a>(
        &'a self,
        uid: &'a str,
        netns: &'a Path,
    ) -> futures_util::future::BoxFuture<'a, Result<Vec<std::net::IpAddr>, String>> {
        Box::pin(async move { self.0.attach(uid, netns).await.map_err(|e| e.to_string()) })
    }

    fn detach(&self, uid: &str) -> Result<(), String> {
        self.0.detach(uid).map_err(|e| e.to_string())
    }
}

/// A `rudder netd` of its own, reached over its socket, as noded's network plugin.
#[derive(Debug)]
struct SocketPods(PathBuf);

impl rudder_noded::kubelet::network::PodNetwork for SocketPods {
    fn attach<'a>(
        &'a self,
        uid: &'a str,
        netns: &'a Path,
    ) -> futures_util::future::BoxFuture<'a, Result<Vec<std::net::IpAddr>, String>> {
        let request = rudder_netd::socket::Request::Attach {
            uid: uid.to_owned(),
            netns: netns.to_owned(),
        };
        let path = self.0.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || rudder_netd::socket::ask(&path, &request))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())
        })
    }

    fn detach(&self, uid: &str) -> Result<(), String> {
        let request = rudder_netd::socket::Request::Detach { uid: uid.to_owned() };
        rudder_netd::socket::ask(&self.0, &request)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// The node's daemons: the kubelet and, unless disabled, netd.
pub struct RunningNode {
    kubelet: rudder_noded::kubelet::Kubelet,
    netd: Option<rudder_netd::Netd>,
}

impl RunningNode {
    /// The Node as registered.
    pub fn node(&self) -> &k8s_openapi::api::core::v1::Node {
        self.kubelet.node()
    }

    /// Waits for the node's daemons to stop (after the stop token fired).
    pub async fn join(self) {
        self.kubelet.join().await;
        if let Some(netd) = self.netd {
            netd.join().await;
        }
    }
}

/// Builds the kubelet's and netd's configurations from the node flags and starts them, the
/// kubelet with its server.
pub async fn start(
    client: kube::Client,
    args: &NodeArgs,
    data_dir: PathBuf,
    tls: ServingTls,
    stop: CancellationToken,
) -> anyhow::Result<RunningNode> {
    // Without root the kubelet refuses to start, and says so.
    let netd = if args.disable_netd || args.netd_socket.is_some() || !nix::unistd::geteuid().is_root() {
        None
    } else {
        let config = rudder_netd::Config::new(&args.node_name(), data_dir.join("netd"));
        Some(rudder_netd::start(config, client.clone(), stop.clone()).context("starting netd")?)
    };
    let mut server = rudder_noded::server::Config::new(tls.client_ca_pem, tls.serving);
    server.allowed_users = vec![tls.allowed_user];
    server.log_root.clone_from(&args.pod_log_dir);
    server.address.set_port(args.kubelet_port);
    let config = rudder_noded::kubelet::KubeletConfig {
        node: rudder_noded::node::NodeConfig {
            name: args.node_name(),
            data_dir,
            kubelet_port: args.kubelet_port,
            node_ip: args.node_ip,
            ..Default::default()
        },
        log_root: args.pod_log_dir.clone(),
        shim_binary: std::env::current_exe().context("finding the rudder binary for container shims")?,
        dns: rudder_noded::pod::resolv::DnsSettings {
            host_resolv_conf: std::fs::read_to_string("/etc/resolv.conf").ok(),
            ..Default::default()
        },
        server: Some(server),
        registry: rudder_noded::images::registry::RegistryConfig {
            insecure: args.insecure_registries.clone(),
        },
        sync_frequency: args.sync_frequency,
        image_gc: rudder_noded::kubelet::image_gc::ImageGcPolicy {
            high_threshold_percent: args.image_gc_high_threshold,
            low_threshold_percent: args.image_gc_low_threshold,
            min_age: args.minimum_image_ttl_duration,
            max_age: args.image_maximum_gc_age,
        },
        allowed_unsafe_sysctls: args.allowed_unsafe_sysctls.clone(),
        network: match (&netd, &args.netd_socket) {
            (Some(netd), _) => Some(std::sync::Arc::new(NetdPods(netd.pod_network())) as _),
            (None, Some(socket)) => Some(std::sync::Arc::new(SocketPods(socket.clone())) as _),
            (None, None) => None,
        },
    };
    let kubelet = rudder_noded::kubelet::Kubelet::start(client, config, stop).await?;
    Ok(RunningNode { kubelet, netd })
}

/// `rudder noded`: the node alone, reaching the API server with a kubeconfig.
pub async fn noded(args: NodedArgs) -> anyhow::Result<()> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => crate::default_data_dir().context("cannot choose a data dir; pass --data-dir")?,
    };
    let client_config = crate::kube_config(&args.kubeconfig).await?;
    let client_ca_pem = match &args.client_ca_file {
        Some(path) => read(path)?,
        None => crate::kubeconfig_ca_pem(&client_config).with_context(|| {
            format!(
                "{} has no certificate authority; pass --client-ca-file",
                args.kubeconfig.display()
            )
        })?,
    };
    let tls = ServingTls {
        client_ca_pem,
        serving: rudder_noded::identity::TlsIdentity::from_pem(
            &read(&args.tls_cert_file)?,
            &read(&args.tls_private_key_file)?,
        )
        .context("loading the node server's certificate")?,
        allowed_user: rudder_apiserver::KUBELET_CLIENT_USER.to_owned(),
    };
    let client = rudder_noded::api_client::client(client_config)?;
    let stop = CancellationToken::new();
    let kubelet = start(client, &args.node, data_dir, tls, stop.clone())
        .await
        .context("starting the node")?;
    crate::shutdown_signal().await;
    tracing::info!("shutting down");
    stop.cancel();
    kubelet.join().await;
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
