//! Rudder's Kubernetes API server.
//!
//! It owns the cluster PKI, TLS serving, authentication, the health, version and metrics
//! endpoints, and the request pipeline in front of the storage engine. It is a library with
//! one entry point, [`run`] (or [`start`] for callers that need the bound address first); the
//! `rudder` binary composes it with the other components. Nothing in here depends on the
//! reconcilers, noded or netd: they are clients of this server like any other.

pub mod admission;
pub mod api;
pub mod authn;
pub mod bootstrap;
pub mod bootstrap_token;
mod convert;
pub mod crd;
mod files;
pub mod health;
pub mod http;
pub mod kubeconfig;
pub mod kubelet;
pub(crate) mod managed;
mod meta_validation;
pub mod metrics;
pub mod object;
pub mod openapi;
pub mod pki;
pub mod registry;
pub mod request_info;
pub mod satoken;
pub mod services;
pub mod status;
pub mod store;
pub mod tls;
mod util;
pub mod version;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rudder_storage::{StorageError, Store};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

use crate::authn::Authenticator;
use crate::health::HealthEndpoint;
use crate::metrics::Metrics;
use crate::pki::{LeafSpec, Pki};

/// The first address of the service CIDR: the `kubernetes` Service's ClusterIP.
pub const KUBERNETES_SERVICE_IP: &str = "10.96.0.1";
/// The ClusterIP of the `kubernetes` Service: the first address of the service CIDR.
pub fn kubernetes_service_ip(service_cidr: &str) -> Option<IpAddr> {
    let (network, prefix) = service_cidr.split_once('/')?;
    let prefix: u32 = prefix.parse().ok()?;
    match network.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) if prefix < 32 => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            Some(IpAddr::V4((u32::from(v4) & mask).wrapping_add(1).into()))
        }
        IpAddr::V6(v6) if prefix < 128 => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            Some(IpAddr::V6((u128::from(v6) & mask).wrapping_add(1).into()))
        }
        _ => None,
    }
}

/// The cluster's DNS domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// How the API server is run.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the database, PKI, token file and kubeconfig live.
    pub data_dir: PathBuf,
    /// The address to listen on.
    pub bind_address: IpAddr,
    /// The HTTPS port (0 picks a free one).
    pub secure_port: u16,
    /// Where to write the admin kubeconfig (default `DATA_DIR/kubeconfig.yaml`).
    pub kubeconfig: Option<PathBuf>,
    /// Extra subject alternative names for the serving certificate.
    pub tls_sans: Vec<String>,
    /// This machine's node name (its client certificate is `system:node:NAME`).
    pub node_name: String,
    /// Storage tuning.
    pub storage: rudder_storage::Options,
    /// How long open connections may take to finish at shutdown.
    pub shutdown_timeout: Duration,
    /// The address the `kubernetes` Service points at (default: the bind address, or the
    /// host's first address).
    pub advertise_address: Option<IpAddr>,
    /// The service CIDR.
    pub service_cidr: String,
    /// How often idle watches that allow bookmarks get one.
    pub bookmark_interval: Duration,
    /// The shortest server-chosen watch timeout.
    pub min_request_timeout: Duration,
}

impl Config {
    /// A configuration with defaults for everything but the data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Config {
            data_dir: data_dir.into(),
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            secure_port: 6443,
            kubeconfig: None,
            tls_sans: Vec::new(),
            node_name: default_node_name(),
            storage: rudder_storage::Options::default(),
            shutdown_timeout: Duration::from_secs(10),
            advertise_address: None,
            service_cidr: "10.96.0.0/16".to_owned(),
            bookmark_interval: Duration::from_secs(60),
            min_request_timeout: Duration::from_secs(1800),
        }
    }

    /// Where the admin kubeconfig is written.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.kubeconfig
            .clone()
            .unwrap_or_else(|| self.data_dir.join("kubeconfig.yaml"))
    }
}

/// This machine's host name in lower case, the default node name.
pub fn default_node_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|name| name.into_string().ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
        .to_ascii_lowercase()
}

/// Why the API server could not start or stopped with an error.
#[derive(Debug, Error)]
pub enum Error {
    /// The data directory cannot be created or written.
    #[error("data dir {path} is not writable: {error}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The failure.
        error: std::io::Error,
    },
    /// The PKI could not be created or loaded.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// The TLS configuration is invalid.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The token file is invalid.
    #[error(transparent)]
    Tokens(#[from] authn::TokenFileError),
    /// The service account signing key is unusable.
    #[error(transparent)]
    ServiceAccountKey(#[from] satoken::KeyError),
    /// The database could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The listening socket could not be bound.
    #[error("cannot listen on {address}: {error}{hint}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The failure.
        error: std::io::Error,
        /// A hint for the common case of a port in use.
        hint: &'static str,
    },
    /// A file could not be written.
    #[error("writing {path}: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The failure.
        error: std::io::Error,
    },
    /// The server task failed.
    #[error("API server task failed: {0}")]
    Task(String),
}

/// State shared by every request.
pub struct Shared {
    store: Store,
    api: api::Api,
    authn: Arc<Authenticator>,
    metrics: Arc<Metrics>,
    healthz: HealthEndpoint,
    livez: HealthEndpoint,
    readyz: HealthEndpoint,
    /// The cluster CA certificate, served at `/cacerts` for joining agents to pin.
    ca_pem: String,
}

/// A started API server.
#[derive(Debug)]
pub struct Running {
    address: SocketAddr,
    kubeconfig: PathBuf,
    data_dir: PathBuf,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
    store: Store,
    node_server: NodeServerTls,
}

/// File stem of the API server's client certificate for node servers.
pub const KUBELET_CLIENT_CERT: &str = "apiserver-kubelet-client";
/// Its user (kubeadm's name): the one identity node servers accept.
pub const KUBELET_CLIENT_USER: &str = "kube-apiserver-kubelet-client";
/// File stem of this machine's node server (kubelet) serving certificate.
pub const NODE_SERVING_CERT: &str = "kubelet";

/// What this machine's node server needs to serve the API server: the cluster CA that signs
/// the API server's client certificate, its own serving certificate (signed by the same CA,
/// for the node name, localhost and the host's addresses) and the client identity to allow.
#[derive(Clone, Debug)]
pub struct NodeServerTls {
    /// The cluster CA certificate, PEM.
    pub ca_pem: String,
    /// Where it is stored (`DATA_DIR/pki/ca.crt`).
    pub ca_path: PathBuf,
    /// The serving certificate and key (`DATA_DIR/pki/kubelet.crt`, `kubelet.key`).
    pub serving: pki::CertKey,
    /// The client certificate common name to allow.
    pub allowed_user: String,
}

impl Running {
    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The admin kubeconfig written at start.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubeconfig written for `component` (`controller-manager`, `scheduler`,
    /// `kube-proxy`, `node`).
    pub fn component_kubeconfig(&self, component: &str) -> PathBuf {
        component_kubeconfig_path(&self.data_dir, component)
    }

    /// The cluster CA certificate (PEM file).
    pub fn ca_path(&self) -> PathBuf {
        self.data_dir.join("pki").join("ca.crt")
    }

    /// What this machine's node server needs (CA, serving certificate, allowed client).
    pub fn node_server_tls(&self) -> &NodeServerTls {
        &self.node_server
    }

    /// The storage engine (for components that run in the same process and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts a graceful shutdown; [`Running::wait`] returns when it is complete.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the server has shut down: connections drained, storage closed.
    pub async fn wait(self) -> Result<(), Error> {
        let result = self.task.await.map_err(|err| Error::Task(err.to_string()));
        self.store.close();
        tracing::info!("API server stopped");
        result
    }
}

/// Runs the API server until `shutdown` completes, then shuts down gracefully.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let running = start(config).await?;
    shutdown.await;
    running.shutdown();
    running.wait().await
}

/// Starts the API server: data directory, PKI, storage, kubeconfig, listener.
pub async fn start(config: Config) -> Result<Running, Error> {
    prepare_data_dir(&config.data_dir)?;
    let specs = certificate_specs(&config);
    let pki_dir = config.data_dir.join("pki");
    let pki = tokio::task::spawn_blocking(move || Pki::ensure(&pki_dir, &specs))
        .await
        .map_err(|err| Error::Task(err.to_string()))??;
    let token_file = ensure_token_file(&config.data_dir)?;
    let sa_dir = config.data_dir.join("pki");
    let sa_key = tokio::task::spawn_blocking(move || pki::ensure_service_account_key(&sa_dir))
        .await
        .map_err(|err| Error::Task(err.to_string()))??;
    let tokens = Arc::new(satoken::TokenIssuer::new(
        &sa_key,
        satoken::DEFAULT_ISSUER,
        Vec::new(),
    )?);

    let metrics = Arc::new(Metrics::new());
    let mut storage_options = config.storage.clone();
    storage_options.observer = Some(metrics.clone());
    let db_path = config.data_dir.join("state.redb");
    let store = tokio::task::spawn_blocking(move || Store::open(db_path, storage_options))
        .await
        .map_err(|err| Error::Task(err.to_string()))??;

    let address = SocketAddr::new(config.bind_address, config.secure_port);
    let listener = TcpListener::bind(address).await.map_err(|error| Error::Bind {
        address,
        hint: if error.kind() == std::io::ErrorKind::AddrInUse {
            " (is another rudder or kube-apiserver running?)"
        } else {
            ""
        },
        error,
    })?;
    let address = listener.local_addr().map_err(|error| Error::Bind {
        address,
        error,
        hint: "",
    })?;

    let serving = pki
        .leaf("apiserver")
        .ok_or_else(|| Error::Task("no serving certificate".into()))?;
    let tls = Arc::new(tls::server_config(
        &serving.cert_pem,
        &serving.key_pem,
        &pki.ca.cert_pem,
    )?);
    let kubelet_client_cert = pki
        .leaf(KUBELET_CLIENT_CERT)
        .ok_or_else(|| Error::Task("no kubelet client certificate".into()))?;
    let kubelet_client = kubelet::KubeletClient::new(
        &pki.ca.cert_pem,
        &kubelet_client_cert.cert_pem,
        &kubelet_client_cert.key_pem,
    )
    .map_err(|err| Error::Task(format!("kubelet client: {err}")))?;
    let node_serving = pki
        .leaf(NODE_SERVING_CERT)
        .cloned()
        .ok_or_else(|| Error::Task("no node serving certificate".into()))?;
    let node_server = NodeServerTls {
        ca_pem: pki.ca.cert_pem.clone(),
        ca_path: pki.ca.cert_path.clone(),
        serving: node_serving,
        allowed_user: KUBELET_CLIENT_USER.to_owned(),
    };
    let kubeconfig = config.kubeconfig_path();
    write_admin_kubeconfig(&pki, &kubeconfig, address)?;
    write_component_kubeconfigs(&pki, &config.data_dir, &config.node_name, address)?;

    let shutdown = CancellationToken::new();
    let registries = Arc::new(registry::Registries::builtin());
    let authn = Arc::new(
        Authenticator::with_token_file(&token_file)?.with_service_accounts(
            tokens.clone(),
            Arc::new(api::token_request::StoreObjects::new(
                registries.clone(),
                store.clone(),
            )),
        ),
    );
    let registry = registries.current();
    let service_hooks = Arc::new(
        services::ServiceHooks::new(&config.service_cidr).map_err(|err| Error::Task(err.to_string()))?,
    );
    let objects = store::GenericStore::new(store.clone(), admission::Admission::default_plugins())
        .with_hooks("", "services", service_hooks.clone())
        .with_hooks(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            Arc::new(crd::controller::CrdHooks),
        );
    // Like kube-apiserver's --advertise-address: pods must be able to reach it, so a loopback
    // bind address is not advertised; the host's first address is.
    let advertise = config
        .advertise_address
        .or_else(|| Some(config.bind_address).filter(|ip| !ip.is_unspecified() && !ip.is_loopback()))
        .or_else(|| host_addresses().into_iter().find(IpAddr::is_ipv4))
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let endpoint = bootstrap::Endpoint {
        address: advertise,
        port: address.port(),
        service_ip: kubernetes_service_ip(&config.service_cidr).ok_or_else(|| {
            Error::Task(format!(
                "service CIDR {:?} is not a valid CIDR",
                config.service_cidr
            ))
        })?,
        service_cidr: config.service_cidr.clone(),
    };
    bootstrap::ensure(&objects, &registry, &endpoint)
        .await
        .map_err(|err| Error::Task(format!("creating the initial objects: {}", err.message)))?;
    bootstrap::ensure_join_token(&objects, &registry, &config.data_dir, &pki.ca.cert_pem)
        .await
        .map_err(|err| Error::Task(format!("creating the join token: {}", err.message)))?;
    service_hooks
        .repair(&objects, &registry)
        .await
        .map_err(|err| Error::Task(format!("repairing service allocations: {}", err.message)))?;
    crd::controller::load(&objects, &registries)
        .await
        .map_err(|err| Error::Task(format!("loading CustomResourceDefinitions: {}", err.message)))?;
    let api = api::Api {
        registry: registries,
        store: objects,
        authn: authn.clone(),
        tokens,
        server_address: SocketAddr::new(advertise, address.port()).to_string(),
        bookmark_interval: config.bookmark_interval,
        min_request_timeout: config.min_request_timeout,
        shutdown: shutdown.clone(),
        kubelet: Some(kubelet_client),
    };

    let shared = Arc::new(Shared {
        api,
        healthz: base_health("healthz", &store),
        livez: base_health("livez", &store),
        readyz: base_health("readyz", &store).with_check("shutdown", {
            let shutdown = shutdown.clone();
            Arc::new(move || {
                if shutdown.is_cancelled() {
                    Err("the server is shutting down".to_owned())
                } else {
                    Ok(())
                }
            })
        }),
        store: store.clone(),
        authn,
        metrics,
        ca_pem: pki.ca.cert_pem.clone(),
    });
    tokio::spawn(crd::controller::run(shared.clone()));
    let service = warp::service(http::filter(shared));
    let handler: tls::Handler = Arc::new(move |request| {
        let mut service = service.clone();
        Box::pin(async move {
            match service.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        })
    });
    let task = tokio::spawn(tls::serve(
        listener,
        tls,
        handler,
        shutdown.clone(),
        config.shutdown_timeout,
    ));
    tracing::info!(%address, data_dir = %config.data_dir.display(), revision = store.current_revision(), "API server listening");
    Ok(Running {
        address,
        kubeconfig,
        data_dir: config.data_dir.clone(),
        shutdown,
        task,
        store,
        node_server,
    })
}

fn base_health(name: &'static str, store: &Store) -> HealthEndpoint {
    let store = store.clone();
    HealthEndpoint::new(name)
        .with_check("ping", Arc::new(|| Ok(())))
        .with_check(
            "storage",
            Arc::new(move || store.check().map_err(|err| err.to_string())),
        )
}

/// Creates the data directory and proves it writable.
fn prepare_data_dir(dir: &Path) -> Result<(), Error> {
    let err = |error| Error::DataDir {
        path: dir.to_path_buf(),
        error,
    };
    files::create_private_dir(dir).map_err(err)?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"").map_err(err)?;
    std::fs::remove_file(&probe).map_err(err)
}

/// The certificates every start makes sure of.
fn certificate_specs(config: &Config) -> Vec<LeafSpec> {
    let node = &config.node_name;
    vec![
        LeafSpec::server("apiserver", "kube-apiserver", serving_sans(config)),
        LeafSpec::client("admin", "admin", &["system:masters"]),
        LeafSpec::client("controller-manager", "system:kube-controller-manager", &[]),
        LeafSpec::client("scheduler", "system:kube-scheduler", &[]),
        LeafSpec::client("kube-proxy", "system:kube-proxy", &[]),
        LeafSpec::client(KUBELET_CLIENT_CERT, KUBELET_CLIENT_USER, &[]),
        LeafSpec::server(NODE_SERVING_CERT, node, node_serving_sans(config)),
        LeafSpec::client(
            &format!("node-{node}"),
            &format!("system:node:{node}"),
            &["system:nodes"],
        ),
    ]
}

/// Names and addresses the node server's certificate must cover: the node name, loopback
/// and the host's addresses (what a Node object's status addresses carry).
fn node_serving_sans(config: &Config) -> Vec<String> {
    let mut sans: Vec<String> = vec![
        config.node_name.clone(),
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
    ];
    sans.extend(host_addresses().into_iter().map(|ip| ip.to_string()));
    sans.dedup();
    sans
}

/// Names and addresses the serving certificate must cover.
fn serving_sans(config: &Config) -> Vec<String> {
    let mut sans: Vec<String> = vec![
        "localhost".into(),
        "127.0.0.1".into(),
        "::1".into(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        format!("kubernetes.default.svc.{CLUSTER_DOMAIN}"),
        kubernetes_service_ip(&config.service_cidr)
            .map_or_else(|| KUBERNETES_SERVICE_IP.to_owned(), |ip| ip.to_string()),
        config.node_name.clone(),
    ];
    if !config.bind_address.is_unspecified() {
        sans.push(config.bind_address.to_string());
    }
    sans.extend(host_addresses().into_iter().map(|ip| ip.to_string()));
    sans.extend(config.tls_sans.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    sans.retain(|san| seen.insert(san.clone()));
    sans
}

/// The host's non-loopback, non-link-local interface addresses.
fn host_addresses() -> Vec<IpAddr> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut addresses = Vec::new();
    for interface in interfaces {
        let Some(address) = interface.address else {
            continue;
        };
        let ip = if let Some(v4) = address.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = address.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => v6.is_unicast_link_local(),
        };
        if !ip.is_loopback() && !link_local && !addresses.contains(&ip) {
            addresses.push(ip);
        }
    }
    addresses
}

/// The static token file; created with one admin token on first start.
fn ensure_token_file(data_dir: &Path) -> Result<PathBuf, Error> {
    let path = data_dir.join("tokens.csv");
    if path.exists() {
        return Ok(path);
    }
    let mut bytes = [0u8; 24];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| Error::Task("no secure random source".into()))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let contents = format!("{token},admin,admin,\"system:masters\"\n");
    files::write_atomic(&path, contents.as_bytes(), 0o600).map_err(|error| Error::Write {
        path: path.clone(),
        error,
    })?;
    Ok(path)
}

/// The components that get a kubeconfig next to the admin's, with the certificate they use.
const COMPONENT_KUBECONFIGS: &[(&str, &str)] = &[
    ("controller-manager", "controller-manager"),
    ("scheduler", "scheduler"),
    ("kube-proxy", "kube-proxy"),
];

/// Where the kubeconfig of `component` (`controller-manager`, `scheduler`, `kube-proxy`,
/// `node`) is written.
pub fn component_kubeconfig_path(data_dir: &Path, component: &str) -> PathBuf {
    data_dir.join(format!("{component}.kubeconfig"))
}

/// Writes the kubeconfigs of the in-process components (always pointing at loopback).
fn write_component_kubeconfigs(
    pki: &Pki,
    data_dir: &Path,
    node_name: &str,
    address: SocketAddr,
) -> Result<(), Error> {
    let local = SocketAddr::new(
        if address.ip().is_unspecified() || address.ip().is_loopback() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            address.ip()
        },
        address.port(),
    );
    let node_leaf = format!("node-{node_name}");
    let entries = COMPONENT_KUBECONFIGS
        .iter()
        .map(|(component, leaf)| ((*component).to_owned(), (*leaf).to_owned()))
        .chain([("node".to_owned(), node_leaf)]);
    for (component, leaf) in entries {
        let path = component_kubeconfig_path(data_dir, &component);
        write_kubeconfig(pki, &leaf, &component, &path, local)?;
    }
    Ok(())
}

fn write_admin_kubeconfig(pki: &Pki, path: &Path, address: SocketAddr) -> Result<(), Error> {
    write_kubeconfig(pki, "admin", "admin", path, address)
}

fn write_kubeconfig(
    pki: &Pki,
    leaf: &str,
    user: &str,
    path: &Path,
    address: SocketAddr,
) -> Result<(), Error> {
    let admin = pki
        .leaf(leaf)
        .ok_or_else(|| Error::Task(format!("no {leaf} certificate")))?;
    let host = match address.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
        IpAddr::V6(v6) => format!("[{v6}]"),
        ip => ip.to_string(),
    };
    let server = format!("https://{host}:{}", address.port());
    kubeconfig::Kubeconfig {
        name: "rudder",
        server: &server,
        ca_pem: &pki.ca.cert_pem,
        user,
        cert_pem: &admin.cert_pem,
        key_pem: &admin.key_pem,
    }
    .write(path)
    .map_err(|error| Error::Write {
        path: path.to_path_buf(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_service_ip_is_the_first_address() {
        assert_eq!(
            kubernetes_service_ip("10.96.0.0/16"),
            Some("10.96.0.1".parse().unwrap())
        );
        assert_eq!(
            kubernetes_service_ip("10.100.7.0/12"),
            Some("10.96.0.1".parse().unwrap())
        );
        assert_eq!(
            kubernetes_service_ip("fd00::/108"),
            Some("fd00::1".parse().unwrap())
        );
        assert_eq!(kubernetes_service_ip("10.96.0.0"), None);
    }
}
