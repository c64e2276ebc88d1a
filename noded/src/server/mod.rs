//! The kubelet-style HTTPS server noded runs on each node (port 10250): TLS with a serving
//! certificate, client certificates required and verified against the cluster CA, only the
//! configured client identities (the API server's kubelet-client certificate) authorized, as a
//! kubelet with webhook authorization refuses everyone else with 403.
//!
//! It owns the listener, TLS, authorization and routing; the endpoints are in [`container_logs`]
//! [`streaming`] (exec and attach over [`websocket`] or [`spdy`]) and [`portforward`] (over
//! SPDY, plain or tunnelled in a WebSocket). What pods exist, which container
//! instance runs and the runtime to exec in come from a [`PodSource`] the pod worker supplies;
//! this module never starts or inspects containers itself.

mod container_logs;
mod portforward;
mod spdy;
mod streaming;
mod websocket;

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use k8s_openapi::api::core::v1::Pod;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::identity::TlsIdentity;
use crate::logs::paths::DEFAULT_LOG_ROOT;

/// The kubelet's default port.
pub const DEFAULT_PORT: u16 = 10250;
/// The common name of the API server's kubelet-client certificate (kubeadm's name).
pub const APISERVER_KUBELET_CLIENT: &str = "kube-apiserver-kubelet-client";
/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A response body: whole or streamed.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// What the server knows of the pods on this node: the pod worker's view.
pub trait PodSource: Send + Sync {
    /// The pod bound to this node, with the latest status the node computed (the kubelet's
    /// pod manager and status manager together), or `None` when the node has no such pod.
    fn pod(&self, namespace: &str, name: &str) -> Option<Pod>;

    /// Whether the current instance of `container` of `pod` is running. A log follower stops
    /// once this is false and the log file no longer grows.
    fn container_running(&self, pod: &Pod, container: &str) -> bool;

    /// The runtime id of the running instance of `container` of `pod`, for exec and attach.
    fn running_container(&self, _pod: &Pod, _container: &str) -> Option<String> {
        None
    }

    /// The network namespace of the pod's sandbox, where port-forward connects; `None` for
    /// host-network pods (and where there is no sandbox).
    fn network_namespace(&self, _pod: &Pod) -> Option<PathBuf> {
        None
    }

    /// The runtime that runs the node's containers (none: exec and attach are unavailable).
    fn runtime(&self) -> Option<crate::runtime::Runtime> {
        None
    }
}

/// How the server runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen (port 0 picks a free one).
    pub address: SocketAddr,
    /// The cluster CA that signs client certificates, PEM.
    pub client_ca_pem: String,
    /// The serving certificate and key (replaceable while the server runs).
    pub serving: TlsIdentity,
    /// Client certificate common names allowed to use the server.
    pub allowed_users: Vec<String>,
    /// The root of pod log directories (see [`crate::logs::paths`]).
    pub log_root: PathBuf,
}

impl Config {
    /// Defaults: `0.0.0.0:10250`, `/var/log/pods`, the API server's kubelet client allowed.
    pub fn new(client_ca_pem: String, serving: TlsIdentity) -> Config {
        Config {
            address: SocketAddr::from((Ipv4Addr::UNSPECIFIED, DEFAULT_PORT)),
            client_ca_pem,
            serving,
            allowed_users: vec![APISERVER_KUBELET_CLIENT.to_owned()],
            log_root: PathBuf::from(DEFAULT_LOG_ROOT),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    #[error("invalid PEM {0}")]
    Pem(&'static str),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("cannot listen on {address}: {error}")]
    Bind {
        address: SocketAddr,
        error: std::io::Error,
    },
}

/// A started server.
#[derive(Debug)]
pub struct Running {
    address: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting connections, ends open ones and waits for the accept loop.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// What the request handlers share.
struct State {
    config: Config,
    pods: Arc<dyn PodSource>,
}

/// The server's TLS configuration: client certificates required, verified by `client_ca_pem`.
fn tls_config(config: &Config) -> Result<rustls::ServerConfig, ServerError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(config.client_ca_pem.as_bytes()) {
        roots.add(ca.map_err(|_| ServerError::Pem("CA certificate"))?)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(config.serving.clone()));
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tls)
}

/// Binds the listener and serves until [`Running::stop`].
pub async fn start(config: Config, pods: Arc<dyn PodSource>) -> Result<Running, ServerError> {
    let tls = Arc::new(tls_config(&config)?);
    let bind = |error| ServerError::Bind {
        address: config.address,
        error,
    };
    let listener = TcpListener::bind(config.address).await.map_err(bind)?;
    let address = listener.local_addr().map_err(bind)?;
    let shutdown = CancellationToken::new();
    let state = Arc::new(State { config, pods });
    let task = tokio::spawn(serve(listener, tls, state, shutdown.clone()));
    tracing::info!(%address, "node server listening");
    Ok(Running {
        address,
        shutdown,
        task,
    })
}

async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<State>,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let (tcp, remote) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(%remote, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let user: Option<Arc<str>> = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|cert| common_name(cert))
                .map(Arc::from);
            let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
                let state = state.clone();
                let user = user.clone();
                async move { Ok::<_, Infallible>(handle(&state, user.as_deref(), request).await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(err) = connection.await {
                tracing::debug!(%remote, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// The subject common name of a DER certificate.
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let name = cert.subject().iter_common_name().next()?.as_str().ok()?;
    (!name.is_empty()).then(|| name.to_owned())
}

/// The kubelet's authorizer verb for an HTTP method.
fn verb(method: &http::Method) -> &'static str {
    match *method {
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "get",
    }
}

async fn handle(state: &State, user: Option<&str>, request: http::Request<Incoming>) -> http::Response<Body> {
    let path = request.uri().path().to_owned();
    let span =
        tracing::info_span!("node request", method = %request.method(), %path, user = user.unwrap_or(""));
    let _enter = span.enter();
    // The TLS layer already refused connections without a valid client certificate.
    let user = user.unwrap_or("");
    if !state.config.allowed_users.iter().any(|allowed| allowed == user) {
        // The kubelet's authorization of a path it maps to no finer subresource.
        return text(
            http::StatusCode::FORBIDDEN,
            format!(
                "Forbidden (user={user}, verb={}, resource=nodes, subresource(s)=[proxy])\n",
                verb(request.method())
            ),
        );
    }
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    match segments.as_slice() {
        ["containerLogs", rest @ ..] if request.method() == http::Method::GET => {
            container_logs::serve(state, rest, request.uri().query().unwrap_or("")).await
        }
        ["containerLogs", ..] => text(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "405: Method Not Allowed".to_owned(),
        ),
        [endpoint @ ("exec" | "attach"), ..]
            if request.method() == http::Method::GET || request.method() == http::Method::POST =>
        {
            let exec = *endpoint == "exec";
            streaming::serve(state.pods.as_ref(), exec, &segments[1..], request).await
        }
        ["portForward", rest @ ..]
            if request.method() == http::Method::GET || request.method() == http::Method::POST =>
        {
            portforward::serve(state.pods.as_ref(), rest, request).await
        }
        ["exec" | "attach" | "portForward", ..] => text(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "405: Method Not Allowed".to_owned(),
        ),
        _ => text(http::StatusCode::NOT_FOUND, "404 page not found".to_owned()),
    }
}

/// A plain-text response.
fn text(status: http::StatusCode, body: String) -> http::Response<Body> {
    let mut response = http::Response::new(Full::new(Bytes::from(body)).boxed_unsync());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
