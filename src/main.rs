//! The `rudder` binary: parses flags, sets up logging and runs the components.
//!
//! It stays thin: every component is a library exposing `run`/`start`; this file only wires
//! flags to their configurations and turns errors into one-line messages.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

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
    /// This machine's node name [default: the host name].
    #[arg(long)]
    node_name: Option<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, cli.verbosity);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Server(args) => server(args).await,
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
    if let Some(node_name) = args.node_name {
        config.node_name = node_name;
    }
    let running = rudder_apiserver::start(config).await?;
    #[allow(clippy::print_stdout)]
    {
        println!("export KUBECONFIG={}", running.kubeconfig().display());
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown();
    running.wait().await?;
    Ok(())
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
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(stream) => stream,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

fn init_logging(format: LogFormat, verbosity: u8) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = match verbosity {
            0..=1 => "info",
            2..=4 => "info,rudder=debug,rudder_apiserver=debug,rudder_storage=debug",
            _ => "debug,rudder=trace,rudder_apiserver=trace,rudder_storage=trace",
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
