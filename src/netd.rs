//! `rudder netd`: the node's network as a process of its own, next to a `rudder noded
//! --netd-socket` on the same machine: the service proxy, cluster DNS, NetworkPolicy and
//! routes to other nodes, and the pod network served to noded over a Unix socket.
//!
//! It only wires flags to `rudder_netd`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

/// `rudder netd`'s flags.
#[derive(Args)]
pub struct NetdArgs {
    /// Kubeconfig to reach the API server with (the node's: `rudder server` writes
    /// DATA_DIR/node.kubeconfig).
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// The node whose network this is [default: the host name].
    #[arg(long)]
    pub node_name: Option<String>,
    /// Where address leases are kept (DATA_DIR/netd)
    /// [default: /var/lib/rudder as root, else ~/.local/share/rudder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Where to serve the pod network for noded's `--netd-socket` [default: DATA_DIR/netd/netd.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// Runs netd until a shutdown signal.
pub async fn netd(args: NetdArgs) -> anyhow::Result<()> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => crate::default_data_dir().context("cannot choose a data dir; pass --data-dir")?,
    };
    let node_name = args.node_name.unwrap_or_else(rudder_apiserver::default_node_name);
    let state_dir = data_dir.join("netd");
    let socket = args.socket.unwrap_or_else(|| state_dir.join("netd.sock"));
    let client = crate::kube_client(&args.kubeconfig).await?;
    let stop = CancellationToken::new();
    let config = rudder_netd::Config::new(&node_name, state_dir);
    let netd = rudder_netd::start(config, client, stop.clone()).context("starting netd")?;
    let serving = tokio::spawn({
        let pods = netd.pod_network();
        let stop = stop.clone();
        async move { rudder_netd::socket::serve(&socket, pods, stop).await }
    });
    let served = tokio::select! {
        () = crate::shutdown_signal() => None,
        served = serving => Some(served),
    };
    tracing::info!("shutting down");
    stop.cancel();
    netd.join().await;
    match served {
        Some(Ok(Err(err))) => Err(err).context("serving the pod network"),
        Some(Err(err)) => Err(err).context("serving the pod network"),
        _ => Ok(()),
    }
}
