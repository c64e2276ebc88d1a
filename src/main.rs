//! The `rudder` binary: parses flags, sets up logging and runs the components.
//!
//! It stays thin: every component is a library exposing `run`/`start`; this file only wires
//! flags to their configurations and turns errors into one-line messages.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

mod agent;
mod netd;
mod node;

#[derive(Parser)]
#[command(
    name = "rudder",
    version,
    about = "A Kubernetes-compatible platform in one binary"
)]
struct Cli {
    /// Log output format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    /// Log verbosity, as kube components count it: 0-1 info, 2-4 debug, 5 and above trace.
    #[arg(short = 'v', long = "v", default_value_t = 0, global = true)]
    verbosity: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run a whole cluster in one process.
    Server(ServerArgs),
    /// Run the controllers against an API server (split deployments).
    Reconcilers(ReconcilersArgs),
    /// Run this machine as a node of an API server (split deployments): its pods run here.
    Noded(node::NodedArgs),
    /// Join this machine to a cluster as another node (noded and netd), with a join token.
    Agent(agent::AgentArgs),
    /// Run this machine's network (pod network, service proxy, DNS, NetworkPolicy) as a
    /// process of its own, for a `rudder noded --netd-socket`.
    Netd(netd::NetdArgs),
    /// Manage the node's image store.
    Images(ImagesArgs),
    /// Own one container (started by noded; not for people).
    #[command(hide = true)]
    Shim(ShimArgs),
    /// Run a command in a running container (started by noded; not for people).
    #[command(hide = true)]
    ContainerExec(ContainerExecArgs),
    /// Hold a pod's shared PID namespace as its PID 1 (started by noded; not for people).
    #[command(hide = true)]
    Pause(PauseArgs),
}

#[derive(Args)]
struct PauseArgs {
    /// The empty directory the namespace's init process is confined to.
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Set on the namespace's init process itself.
    #[arg(long)]
    init: bool,
}

#[derive(Args)]
struct ImagesArgs {
    /// The data dir whose image store to use
    /// [default: /var/lib/rudder as root, else ~/.local/share/rudder].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: ImagesCommand,
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Import OCI image layouts or `docker save` archives (tar, optionally gzip-compressed).
    Import {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// List images as `crictl images` does.
    #[command(alias = "ls")]
    List,
}

#[derive(Args)]
struct ShimArgs {
    /// The runtime's state directory.
    #[arg(long)]
    state_dir: PathBuf,
    /// The container's id.
    #[arg(long)]
    id: String,
    /// The CRI log file for the container's output.
    #[arg(long)]
    log: PathBuf,
    /// Give the container a stdin for attached clients.
    #[arg(long)]
    stdin: bool,
    /// Close that stdin after the first attach session.
    #[arg(long)]
    stdin_once: bool,
    /// Give the container a terminal, its master held by the shim.
    #[arg(long)]
    tty: bool,
    /// Set by the shim itself when it re-executes detached.
    #[arg(long)]
    detached: bool,
}

#[derive(Args)]
struct ContainerExecArgs {
    /// The runtime's state directory.
    #[arg(long)]
    state_dir: PathBuf,
    /// The container's id.
    #[arg(long)]
    id: String,
    /// Give the command a terminal (needs --console-socket).
    #[arg(long)]
    tty: bool,
    /// The unix socket the terminal's master is sent to.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Where `started PID` or `failed MESSAGE` is written.
    #[arg(long)]
    status_file: Option<PathBuf>,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

#[derive(Args)]
struct ReconcilersArgs {
    /// Kubeconfig to reach the API server with.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// The cluster CA to publish in every namespace [default: the kubeconfig's CA].
    #[arg(long)]
    root_ca_file: Option<PathBuf>,
    /// Controllers to run: `*` for all, `-name` to disable one (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "*")]
    controllers: Vec<String>,
    /// Take the kube-controller-manager Lease before running.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// Addresses for Services of type LoadBalancer: CIDRs or FIRST-LAST ranges
    /// (comma-separated); without any, such Services stay pending.
    #[arg(long, value_delimiter = ',', value_name = "RANGES")]
    load_balancer_ip_pool: Vec<String>,
    /// PEM-encoded CA certificate that signs approved CertificateSigningRequests (with
    /// --cluster-signing-key-file; without both, none are signed).
    #[arg(long, value_name = "FILE", requires = "cluster_signing_key_file")]
    cluster_signing_cert_file: Option<PathBuf>,
    /// The PEM-encoded key of --cluster-signing-cert-file.
    #[arg(long, value_name = "FILE", requires = "cluster_signing_cert_file")]
    cluster_signing_key_file: Option<PathBuf>,
}

#[derive(Args)]
struct ServerArgs {
    /// Where state, certificates and the kubeconfig are kept
    /// [default: /var/lib/rudder as root, else ~/.local/share/rudder].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The address to serve HTTPS on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// The HTTPS port of the API server.
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// Write the admin kubeconfig here instead of DATA_DIR/kubeconfig.yaml.
    #[arg(long, value_name = "PATH")]
    write_kubeconfig: Option<PathBuf>,
    /// An extra name or address for the serving certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    tls_sans: Vec<String>,
    /// Register this many simulated nodes (`sim-node-0001`, ...) that run pods without
    /// containers, as kwok does; they use the admin kubeconfig.
    #[arg(long, default_value_t = 0, value_name = "N")]
    simulated_nodes: usize,
    /// Do not run this machine as a node (no kubelet): a control plane only; `rudder noded`
    /// can then run the node as a process of its own.
    #[arg(long)]
    disable_agent: bool,
    /// Addresses for Services of type LoadBalancer: CIDRs or FIRST-LAST ranges
    /// (comma-separated); without any, such Services stay pending.
    #[arg(long, value_delimiter = ',', value_name = "RANGES")]
    load_balancer_ip_pool: Vec<String>,
    #[command(flatten)]
    node: node::NodeArgs,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        // The shim forks through libcontainer: it must run before any runtime thread exists.
        // It has no log subscriber: libcontainer logs from the container's init process, whose
        // stderr is the container's, so logs would land in the container's log. Its failures
        // reach noded through its status line.
        Command::Shim(args) => {
            return rudder_noded::runtime::shim::main(&rudder_noded::runtime::shim::ShimArgs {
                state_dir: args.state_dir,
                id: args.id,
                log: args.log,
                stdin: args.stdin,
                stdin_once: args.stdin_once,
                tty: args.tty,
                detached: args.detached,
            });
        }
        // Forks through libcontainer too; its stdio is the command's, so it logs nothing.
        Command::ContainerExec(args) => {
            return rudder_noded::runtime::exec::main(&rudder_noded::runtime::exec::ContainerExecArgs {
                state_dir: args.state_dir,
                id: args.id,
                tty: args.tty,
                console_socket: args.console_socket,
                status_file: args.status_file,
                command: args.command,
            });
        }
        // Forks into a new PID namespace; its only output is the PID line noded reads.
        Command::Pause(args) => {
            return rudder_noded::kubelet::pause::main(&rudder_noded::kubelet::pause::PauseArgs {
                root: args.root,
                init: args.init,
            });
        }
        command => command,
    };
    let noded = matches!(command, Command::Noded(_) | Command::Agent(_));
    if noded {
        rudder_noded::process::limit_malloc_arenas();
    }
    init_logging(cli.log_format, cli.verbosity);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if noded {
        builder.max_blocking_threads(rudder_noded::process::MAX_BLOCKING_THREADS);
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        // From here on SIGTERM and SIGINT are noted, not fatal: a signal that arrives while
        // a component starts stops it once it is up.
        listen_for_shutdown();
        match command {
            Command::Server(args) => Box::pin(server(args)).await,
            Command::Reconcilers(args) => reconcilers(args).await,
            Command::Noded(args) => node::noded(args).await,
            Command::Agent(args) => Box::pin(agent::agent(args)).await,
            Command::Netd(args) => netd::netd(args).await,
            Command::Images(args) => images(args),
            Command::Shim(_) | Command::ContainerExec(_) | Command::Pause(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir().context("cannot choose a data dir; pass --data-dir")?,
    };
    let mut config = rudder_apiserver::Config::new(data_dir);
    config.bind_address = args.bind_address;
    config.secure_port = args.secure_port;
    config.kubeconfig = args.write_kubeconfig;
    config.tls_sans = args.tls_sans;
    config.node_name = args.node.node_name();
    let data_dir = config.data_dir.clone();
    let running = rudder_apiserver::start(config).await?;
    let stop = CancellationToken::new();
    let controllers = reconcilers_config(
        &running.component_kubeconfig("controller-manager"),
        Some(&running.ca_path()),
        vec!["*".to_owned()],
        true,
        &args.load_balancer_ip_pool,
        Some((&running.ca_path(), &data_dir.join("pki").join("ca.key"))),
    )
    .await?;
    let reconcilers = tokio::spawn(rudder_reconcilers::run(
        controllers,
        stop.clone().cancelled_owned(),
    ));
    let simulated = if args.simulated_nodes > 0 {
        let client = kube_client(running.kubeconfig()).await?;
        let config = rudder_noded::simulated::Config {
            count: args.simulated_nodes,
            // The server runs the node IPAM controller.
            wait_for_pod_cidr: true,
            ..Default::default()
        };
        Some(rudder_noded::simulated::SimulatedNodes::start(client, config, stop.clone()).await?)
    } else {
        None
    };
    let kubelet = if args.disable_agent {
        None
    } else {
        let config = kube_config(&running.component_kubeconfig("node")).await?;
        let client = rudder_noded::api_client::client(config)?;
        let tls = running.node_server_tls();
        let tls = node::ServingTls {
            client_ca_pem: tls.ca_pem.clone(),
            serving: rudder_noded::identity::TlsIdentity::from_pem(
                &tls.serving.cert_pem,
                &tls.serving.key_pem,
            )
            .context("loading the node server's certificate")?,
            allowed_user: tls.allowed_user.clone(),
        };
        match node::start(client, &args.node, data_dir, tls, stop.clone()).await {
            Ok(kubelet) => Some(kubelet),
            Err(err)
                if matches!(
                    err.downcast_ref(),
                    Some(rudder_noded::kubelet::KubeletError::NeedsRoot)
                ) =>
            {
                tracing::warn!(
                    "not running as a node: running containers needs root (pass --disable-agent to say so)"
                );
                None
            }
            Err(err) => return Err(err).context("starting the node agent"),
        }
    };
    #[allow(clippy::print_stdout)]
    {
        println!("export KUBECONFIG={}", running.kubeconfig().display());
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    stop.cancel();
    if let Some(kubelet) = kubelet {
        kubelet.join().await;
    }
    if let Some(simulated) = simulated {
        simulated.join().await;
    }
    match reconcilers.await {
        Ok(Err(err)) => tracing::warn!(error = %err, "controllers stopped with an error"),
        Err(err) => tracing::warn!(error = %err, "controllers task failed"),
        Ok(Ok(())) => {}
    }
    running.shutdown();
    running.wait().await?;
    Ok(())
}

/// `rudder images ...`: works on the store directly, so a running server need not be up.
fn images(args: ImagesArgs) -> anyhow::Result<()> {
    use rudder_noded::images;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir().context("cannot choose a data dir; pass --data-dir")?,
    };
    let store = images::Store::open(images::store_dir(&data_dir))?;
    let mut out = String::new();
    match args.command {
        ImagesCommand::Import { files } => {
            for file in files {
                let imported = store.import_archive(&file)?;
                for image in imported {
                    if image.names.is_empty() {
                        out.push_str(&format!(
                            "imported an unnamed image ({}) from {}: the archive gives it no name\n",
                            image.target_digest,
                            file.display()
                        ));
                    }
                    for name in image.names {
                        out.push_str(&format!("imported {name} ({})\n", image.target_digest));
                    }
                }
            }
        }
        ImagesCommand::List => out = images::format_image_table(&store.rows()?),
    }
    #[allow(clippy::print_stdout)]
    {
        print!("{out}");
    }
    Ok(())
}

async fn reconcilers(args: ReconcilersArgs) -> anyhow::Result<()> {
    let config = reconcilers_config(
        &args.kubeconfig,
        args.root_ca_file.as_deref(),
        args.controllers,
        args.leader_elect,
        &args.load_balancer_ip_pool,
        args.cluster_signing_cert_file
            .as_deref()
            .zip(args.cluster_signing_key_file.as_deref()),
    )
    .await?;
    rudder_reconcilers::run(config, shutdown_signal()).await?;
    Ok(())
}

/// The controllers' configuration from a kubeconfig file.
async fn reconcilers_config(
    kubeconfig: &std::path::Path,
    root_ca: Option<&std::path::Path>,
    controllers: Vec<String>,
    leader_elect: bool,
    load_balancer_ip_pool: &[String],
    signing: Option<(&std::path::Path, &std::path::Path)>,
) -> anyhow::Result<rudder_reconcilers::Config> {
    let signing_ca = match signing {
        Some((cert, key)) => Some(rudder_reconcilers::csr::SigningCa {
            cert_pem: std::fs::read_to_string(cert).with_context(|| format!("reading {}", cert.display()))?,
            key_pem: std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?,
        }),
        None => None,
    };
    let load_balancer_pool =
        rudder_reconcilers::service_lb::Pool::parse(load_balancer_ip_pool).map_err(anyhow::Error::msg)?;
    let client = kube_config(kubeconfig).await?;
    let root_ca_pem = match root_ca {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        None => kubeconfig_ca_pem(&client).unwrap_or_default(),
    };
    Ok(rudder_reconcilers::Config {
        client,
        root_ca_pem,
        controllers,
        leader_elect,
        identity: format!("{}_{}", rudder_apiserver::default_node_name(), std::process::id()),
        load_balancer_pool,
        signing_ca,
    })
}

/// A client from a kubeconfig file.
async fn kube_client(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Client> {
    Ok(kube::Client::try_from(kube_config(kubeconfig).await?)?)
}

/// A client configuration from a kubeconfig file.
async fn kube_config(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Config> {
    let parsed = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    kube::Config::from_custom_kubeconfig(parsed, &kube::config::KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading {}", kubeconfig.display()))
}

/// The CA a kubeconfig trusts, PEM.
fn kubeconfig_ca_pem(config: &kube::Config) -> Option<String> {
    config
        .root_cert
        .as_ref()
        .and_then(|certs| certs.first())
        .map(|der| pem_encode(der))
}

/// PEM encoding of one DER certificate.
fn pem_encode(der: &[u8]) -> String {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in encoded.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// `/var/lib/rudder` as root, else the user's data directory.
fn default_data_dir() -> Option<PathBuf> {
    if nix::unistd::geteuid().is_root() {
        return Some(PathBuf::from("/var/lib/rudder"));
    }
    if let Some(data_home) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(data_home).join("rudder"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share/rudder"))
}

/// Completes on SIGINT or SIGTERM.
/// SIGTERM and SIGINT, listened for since start-up.
static SHUTDOWN_SIGNALS: std::sync::OnceLock<tokio::sync::Mutex<ShutdownSignals>> =
    std::sync::OnceLock::new();

struct ShutdownSignals {
    terminate: Option<tokio::signal::unix::Signal>,
    interrupt: Option<tokio::signal::unix::Signal>,
}

/// Starts listening for SIGTERM and SIGINT (inside the runtime).
fn listen_for_shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &str| match signal(kind) {
        Ok(stream) => Some(stream),
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for {name}");
            None
        }
    };
    let _ = SHUTDOWN_SIGNALS.set(tokio::sync::Mutex::new(ShutdownSignals {
        terminate: listen(SignalKind::terminate(), "SIGTERM"),
        interrupt: listen(SignalKind::interrupt(), "SIGINT"),
    }));
}

/// Resolves on SIGTERM or SIGINT (also one that came before the call).
async fn shutdown_signal() {
    let Some(signals) = SHUTDOWN_SIGNALS.get() else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    let mut signals = signals.lock().await;
    let ShutdownSignals { terminate, interrupt } = &mut *signals;
    let received = async |signal: &mut Option<tokio::signal::unix::Signal>| match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    };
    tokio::select! {
        () = received(terminate) => {}
        () = received(interrupt) => {}
    }
}

fn init_logging(format: LogFormat, verbosity: u8) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = match verbosity {
            0..=1 => "info",
            2..=4 => "info,rudder=debug,rudder_apiserver=debug,rudder_storage=debug,rudder_reconcilers=debug,rudder_noded=debug",
            _ => "debug,rudder=trace,rudder_apiserver=trace,rudder_storage=trace,rudder_reconcilers=trace,rudder_noded=trace",
        };
        EnvFilter::new(level)
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
