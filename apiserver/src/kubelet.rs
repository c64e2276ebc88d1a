//! The API server's client of node servers (kubelets): where a node is reached (its status
//! addresses in `--kubelet-preferred-address-types` order and its kubelet endpoint port) and
//! one HTTPS GET or upgrade request with the API server's kubelet-client certificate, verifying the node's serving
//! certificate against the cluster CA.
//!
//! It knows nothing of pods or logs; the subresources that proxy to nodes use it.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The kubelet port used when a node does not publish one.
pub const DEFAULT_KUBELET_PORT: u16 = 10250;
/// The `--kubelet-preferred-address-types` k3s and kubeadm clusters run with: addresses
/// before names, so a node whose host name does not resolve is still reachable (upstream's
/// own default puts `Hostname` first).
const PREFERRED_ADDRESS_TYPES: [&str; 5] = [
    "InternalIP",
    "ExternalIP",
    "Hostname",
    "InternalDNS",
    "ExternalDNS",
];
/// How long connecting (TCP and TLS) to a node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors reaching a node.
#[derive(Debug, Error)]
pub enum KubeletError {
    #[error("invalid PEM {0}")]
    Pem(&'static str),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("no preferred addresses found; known addresses: [{0}]")]
    NoAddress(String),
    #[error("invalid node address {0:?}")]
    ServerName(String),
    #[error("dial tcp {address}: {error}")]
    Connect { address: String, error: std::io::Error },
    #[error("dial tcp {0}: i/o timeout")]
    Timeout(String),
    #[error("tls: {0}")]
    Handshake(std::io::Error),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("{0}")]
    Request(#[from] http::Error),
}

/// Where a node's server is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEndpoint {
    /// Host name or IP address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl NodeEndpoint {
    /// The endpoint of a Node object (upstream's `NodeConnectionInfoGetter`).
    pub fn of(node: &Value) -> Result<NodeEndpoint, KubeletError> {
        let addresses: Vec<(&str, &str)> = node
            .pointer("/status/addresses")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|a| Some((a.get("type")?.as_str()?, a.get("address")?.as_str()?)))
                    .collect()
            })
            .unwrap_or_default();
        let host = PREFERRED_ADDRESS_TYPES
            .iter()
            .find_map(|wanted| addresses.iter().find(|(kind, _)| kind == wanted))
            .map(|(_, address)| (*address).to_owned())
            .ok_or_else(|| {
                let known: Vec<String> = addresses
                    .iter()
                    .map(|(kind, address)| format!("{{{kind} {address}}}"))
                    .collect();
                KubeletError::NoAddress(known.join(" "))
            })?;
        let port = node
            .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
            .and_then(Value::as_i64)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .unwrap_or(DEFAULT_KUBELET_PORT);
        Ok(NodeEndpoint { host, port })
    }
}

/// A client of node servers.
#[derive(Clone)]
pub struct KubeletClient {
    tls: TlsConnector,
}

impl std::fmt::Debug for KubeletClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletClient").finish_non_exhaustive()
    }
}

impl KubeletClient {
    /// A client presenting `cert_pem`/`key_pem` and trusting node certificates signed by
    /// `ca_pem`.
    pub fn new(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<KubeletClient, KubeletError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(ca.map_err(|_| KubeletError::Pem("CA certificate"))?)?;
        }
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| KubeletError::Pem("client certificate"))?;
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| KubeletError::Pem("client key"))?;
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        Ok(KubeletClient {
            tls: TlsConnector::from(Arc::new(config)),
        })
    }

    /// GETs `path_and_query` from the node's server over HTTP/1.1; the response body streams
    /// as the node writes it.
    pub async fn get(
        &self,
        endpoint: &NodeEndpoint,
        path_and_query: &str,
    ) -> Result<http::Response<Incoming>, KubeletError> {
        let (tls, address) = self.connect(endpoint).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "node connection ended with an error");
            }
        });
        let request = http::Request::get(path_and_query)
            .header(http::header::HOST, address)
            .body(http_body_util::Empty::<bytes::Bytes>::new())?;
        Ok(sender.send_request(request).await?)
    }

    /// Sends an upgrade request (`headers` carry `Connection`, `Upgrade` and the protocol's
    /// own) to the node's server; on a 101 answer, `hyper::upgrade::on` yields the connection.
    pub async fn upgrade(
        &self,
        endpoint: &NodeEndpoint,
        method: &http::Method,
        path_and_query: &str,
        headers: http::HeaderMap,
    ) -> Result<http::Response<Incoming>, KubeletError> {
        let (tls, address) = self.connect(endpoint).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            if let Err(err) = connection.with_upgrades().await {
                tracing::debug!(error = %err, "node connection ended with an error");
            }
        });
        let mut request = http::Request::builder()
            .method(method.clone())
            .uri(path_and_query)
            .header(http::header::HOST, address)
            .body(http_body_util::Empty::<bytes::Bytes>::new())?;
        request.headers_mut().extend(headers);
        Ok(sender.send_request(request).await?)
    }

    /// A TLS connection to the node's server, and its `host:port`.
    async fn connect(
        &self,
        endpoint: &NodeEndpoint,
    ) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, String), KubeletError> {
        let address = if endpoint.host.contains(':') {
            format!("[{}]:{}", endpoint.host, endpoint.port)
        } else {
            format!("{}:{}", endpoint.host, endpoint.port)
        };
        let server_name = ServerName::try_from(endpoint.host.clone())
            .map_err(|_| KubeletError::ServerName(endpoint.host.clone()))?;
        let connect = async {
            let tcp = TcpStream::connect(address.as_str())
                .await
                .map_err(|error| KubeletError::Connect {
                    address: address.clone(),
                    error,
                })?;
            let _ = tcp.set_nodelay(true);
            self.tls
                .connect(server_name, tcp)
                .await
                .map_err(KubeletError::Handshake)
        };
        let tls = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| KubeletError::Timeout(address.clone()))??;
        Ok((tls, address))
    }
}

/// Whether a node's answer is a success (upstream's response checker accepts 200..=206).
pub fn is_success(status: StatusCode) -> bool {
    (200..=206).contains(&status.as_u16())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoint_prefers_address_types_in_order() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "ExternalIP", "address": "1.2.3.4"}, {"type": "InternalIP", "address": "10.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10999}},
        }});
        assert_eq!(
            NodeEndpoint::of(&node).unwrap(),
            NodeEndpoint {
                host: "10.0.0.1".into(),
                port: 10999
            }
        );
        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.1"}]}});
        assert_eq!(
            NodeEndpoint::of(&node).unwrap(),
            NodeEndpoint {
                host: "10.0.0.1".into(),
                port: 10250
            }
        );
        let node = json!({"status": {"addresses": [{"type": "Other", "address": "x"}]}});
        assert_eq!(
            NodeEndpoint::of(&node).unwrap_err().to_string(),
            "no preferred addresses found; known addresses: [{Other x}]"
        );
    }
}
