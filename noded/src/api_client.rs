//! The node's client of the API server, as kubelet's: one HTTP/2 connection (ALPN `h2`, with
//! HTTP/1.1 for servers without it) that every request and watch shares, kept alive by pings
//! as client-go's health check does. kube's own client speaks HTTP/1.1 only, so each request
//! in flight needs a connection of its own: a burst of pod starts leaves dozens open, with
//! their buffers, in noded and in the API server.
//!
//! It builds the transport only; what kube's client adds on top (base URI, authentication,
//! extra headers) comes from kube's `ConfigExt`, the same layers kube uses.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use kube::client::ConfigExt;
use thiserror::Error;
use tower::ServiceBuilder;

/// How long the connection may stay silent before a ping checks it (client-go's
/// `ReadIdleTimeout`).
const PING_AFTER_IDLE: Duration = Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is dropped (client-go's
/// `PingTimeout`).
const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// A client could not be built from the kubeconfig.
#[derive(Debug, Error)]
pub enum ApiClientError {
    /// kube refused the configuration (TLS material, authentication).
    #[error("building the API server client: {0}")]
    Config(#[from] kube::Error),
    /// The configured TLS server name is not a valid name.
    #[error("invalid TLS server name {name:?}: {source}")]
    ServerName {
        /// The name.
        name: String,
        /// Why it is invalid.
        source: rustls_pki_types::InvalidDnsNameError,
    },
}

/// A kube client for `config` over one shared HTTP/2 connection.
pub fn client(config: kube::Config) -> Result<kube::Client, ApiClientError> {
    client_with_identity(config, None)
}

/// A kube client for `config` that presents `identity` (instead of the configuration's client
/// certificate), read at each TLS handshake: replacing it rotates the client's certificate.
pub fn client_with_identity(
    config: kube::Config,
    identity: Option<crate::identity::TlsIdentity>,
) -> Result<kube::Client, ApiClientError> {
    let mut tls = config.rustls_client_config()?;
    if let Some(identity) = identity {
        tls.client_auth_cert_resolver = std::sync::Arc::new(identity);
    }
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    // HTTP/2 writes a request as several frames; Nagle's algorithm would hold the later ones
    // back until the server acknowledges the first (Go's net package also disables it).
    http.set_nodelay(true);
    http.set_connect_timeout(config.connect_timeout);
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let builder = match &config.tls_server_name {
        Some(name) => {
            let server_name = rustls_pki_types::ServerName::try_from(name.clone()).map_err(|source| {
                ApiClientError::ServerName {
                    name: name.clone(),
                    source,
                }
            })?;
            builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(server_name))
        }
        None => builder,
    };
    let connector = builder.enable_http1().enable_http2().wrap_connector(http);
    let transport = hyper_util::client::legacy::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .http2_keep_alive_interval(PING_AFTER_IDLE)
        .http2_keep_alive_timeout(PING_TIMEOUT)
        .http2_keep_alive_while_idle(true)
        .build(connector);
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(transport);
    Ok(kube::Client::new(service, config.default_namespace))
}
