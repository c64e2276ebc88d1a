//! `rudder agent`: joins this machine to a cluster as one more node (noded and netd) with a
//! join token, as the kubelet's TLS bootstrap does: the cluster CA from `/cacerts`, pinned by
//! the token; a client certificate for `system:node:NAME` requested with the token as a
//! bootstrap token, then kept as `DATA_DIR/node.kubeconfig`; and the node server's serving
//! certificate requested as the node once its Node has addresses, kept in `DATA_DIR/pki`.
//! From the client certificate on, the node acts only as `system:node:NAME`. Both
//! certificates rotate while the node runs, as the kubelet's certificate managers do.
//!
//! It wires steps together and stores credentials; requesting them is
//! `rudder_noded::certificates`, running the node is [`crate::node`].

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;
use rudder_noded::certificates::{self, CertificateFacts, Credentials, JoinToken, Purpose};
use rudder_noded::identity::TlsIdentity;
use tokio_util::sync::CancellationToken;

use crate::node::{self, NodeArgs, ServingTls};

/// How long a certificate request may wait for its certificate.
const SIGNING_TIMEOUT: Duration = Duration::from_secs(300);
/// How long to wait before asking again when a certificate request failed.
const RETRY: Duration = Duration::from_secs(10);
/// The node credentials' file in the data dir (as `rudder server` names its node's).
const NODE_KUBECONFIG: &str = "node.kubeconfig";

/// `rudder agent`'s flags.
#[derive(Args)]
pub struct AgentArgs {
    /// The API server to join, as `https://HOST:PORT`.
    #[arg(long, value_name = "URL")]
    pub server: String,
    /// The cluster's join token (the server's DATA_DIR/token).
    #[arg(long, value_name = "TOKEN", required_unless_present = "token_file")]
    pub token: Option<String>,
    /// A file holding the join token.
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// Where credentials, images, containers' state and pods' volumes are kept
    /// [default: /var/lib/rudder as root, else ~/.local/share/rudder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub node: NodeArgs,
}

/// `rudder agent`: joins (or rejoins with stored credentials), then runs the node until a
/// shutdown signal.
pub async fn agent(args: AgentArgs) -> anyhow::Result<()> {
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => crate::default_data_dir().context("cannot choose a data dir; pass --data-dir")?,
    };
    std::fs::create_dir_all(data_dir.join("pki"))
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let node_name = args.node.node_name();
    let credentials = match stored_credentials(&data_dir, &args.server, &node_name) {
        Some(credentials) => {
            tracing::info!(node = %node_name, "using the node credentials in the data dir");
            credentials
        }
        None => join(&args, &data_dir, &node_name).await?,
    };
    // The client presents its certificate through a handle the rotation replaces.
    let client_identity = TlsIdentity::from_pem(&credentials.cert_pem, &credentials.key_pem)?;
    let client_config =
        certificates::client_config(node_kubeconfig(&args.server, &node_name, &credentials)).await?;
    let client =
        rudder_noded::api_client::client_with_identity(client_config, Some(client_identity.clone()))?;

    let serving = TlsIdentity::pending();
    let stored_serving = stored_serving_pair(&data_dir, &node_name)
        .filter(|(cert_pem, key_pem, _)| serving.set_pem(cert_pem, key_pem).is_ok());
    let tls = ServingTls {
        client_ca_pem: credentials.ca_pem.clone(),
        serving: serving.clone(),
        allowed_user: rudder_apiserver::KUBELET_CLIENT_USER.to_owned(),
    };
    let stop = CancellationToken::new();
    let running = node::start(client.clone(), &args.node, data_dir.clone(), tls, stop.clone())
        .await
        .context("starting the node")?;
    let (names, ips) = certificates::node_names_and_ips(running.node());
    // A kept certificate serves on while it covers the Node's names and addresses.
    let current_serving = stored_serving.map(|(_, _, facts)| facts).filter(|facts| {
        names.iter().all(|n| facts.dns_names.contains(n)) && ips.iter().all(|ip| facts.ips.contains(ip))
    });
    let manager = |purpose, identity| CertificateManager {
        purpose,
        client: client.clone(),
        node_name: node_name.clone(),
        identity,
        data_dir: data_dir.clone(),
        server: args.server.clone(),
        ca_pem: credentials.ca_pem.clone(),
    };
    let managers = [
        tokio::spawn(manager(Purpose::Serving, serving).run(current_serving, stop.clone())),
        tokio::spawn(
            manager(Purpose::Client, client_identity).run(Some(credentials.facts.clone()), stop.clone()),
        ),
    ];
    crate::shutdown_signal().await;
    tracing::info!("shutting down");
    stop.cancel();
    for task in managers {
        let _ = task.await;
    }
    running.join().await;
    Ok(())
}

/// What the node authenticates with and trusts.
struct NodeCredentials {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
    facts: CertificateFacts,
}

/// The node's kubeconfig for `credentials`.
fn node_kubeconfig(server: &str, node_name: &str, credentials: &NodeCredentials) -> kube::config::Kubeconfig {
    certificates::kubeconfig(
        server,
        &credentials.ca_pem,
        &format!("system:node:{node_name}"),
        &Credentials::Certificate {
            cert_pem: &credentials.cert_pem,
            key_pem: &credentials.key_pem,
        },
    )
}

/// Writes the node's kubeconfig (`DATA_DIR/node.kubeconfig`, the owner's only).
fn store_credentials(
    data_dir: &Path,
    server: &str,
    node_name: &str,
    credentials: &NodeCredentials,
) -> anyhow::Result<()> {
    let kubeconfig = node_kubeconfig(server, node_name, credentials);
    write_private(
        &data_dir.join(NODE_KUBECONFIG),
        &serde_json::to_string_pretty(&kubeconfig)?,
    )
}

/// The node credentials of an earlier join, when they are for this server and node and their
/// certificate is fresh.
fn stored_credentials(data_dir: &Path, server: &str, node_name: &str) -> Option<NodeCredentials> {
    use base64::Engine;
    let kubeconfig = kube::config::Kubeconfig::read_from(data_dir.join(NODE_KUBECONFIG)).ok()?;
    let cluster = kubeconfig.clusters.first()?.cluster.as_ref()?;
    if cluster.server.as_deref() != Some(server) {
        return None;
    }
    let decode = |data: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    };
    let ca_pem = decode(cluster.certificate_authority_data.as_deref()?)?;
    // The key is a secret kube keeps behind its own type; its serialized form is the file's.
    let user = serde_json::to_value(kubeconfig.auth_infos.first()?.auth_info.as_ref()?).ok()?;
    let cert_pem = decode(user.get("client-certificate-data")?.as_str()?)?;
    let key_pem = decode(user.get("client-key-data")?.as_str()?)?;
    let facts = CertificateFacts::of(&cert_pem).ok()?;
    if facts.common_name != format!("system:node:{node_name}") || !facts.fresh_at(SystemTime::now()) {
        return None;
    }
    Some(NodeCredentials {
        ca_pem,
        cert_pem,
        key_pem,
        facts,
    })
}

/// Joins with the token: the pinned CA, then a client certificate for the node, stored as
/// the node's kubeconfig.
async fn join(args: &AgentArgs, data_dir: &Path, node_name: &str) -> anyhow::Result<NodeCredentials> {
    let token_text = match (&args.token, &args.token_file) {
        (Some(token), _) => token.clone(),
        (None, Some(file)) => {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        }
        (None, None) => anyhow::bail!("pass --token or --token-file"),
    };
    let token: JoinToken = token_text.parse()?;
    let ca_pem = certificates::fetch_cluster_ca(&args.server, &token).await?;
    tracing::info!(server = %args.server, "cluster CA matches the join token");
    let bootstrap = certificates::kubeconfig(
        &args.server,
        &ca_pem,
        "bootstrap",
        &Credentials::Token(&token.credentials),
    );
    let bootstrap = kube::Client::try_from(certificates::client_config(bootstrap).await?)?;
    let request = certificates::client_request(node_name)?;
    let cert_pem =
        certificates::request_certificate(bootstrap, Purpose::Client, &request, SIGNING_TIMEOUT).await?;
    let credentials = NodeCredentials {
        facts: CertificateFacts::of(&cert_pem)?,
        ca_pem,
        cert_pem,
        key_pem: request.key_pem,
    };
    store_credentials(data_dir, &args.server, node_name, &credentials)?;
    tracing::info!(node = %node_name, "joined: client certificate signed");
    Ok(credentials)
}

/// The serving certificate, key and facts kept from an earlier run, when fresh and for this
/// node.
fn stored_serving_pair(data_dir: &Path, node_name: &str) -> Option<(String, String, CertificateFacts)> {
    let pki = data_dir.join("pki");
    let cert_pem = std::fs::read_to_string(pki.join("kubelet.crt")).ok()?;
    let key_pem = std::fs::read_to_string(pki.join("kubelet.key")).ok()?;
    let facts = CertificateFacts::of(&cert_pem).ok()?;
    (facts.common_name == format!("system:node:{node_name}") && facts.fresh_at(SystemTime::now()))
        .then_some((cert_pem, key_pem, facts))
}

/// Keeps one of the node's certificates, as the kubelet's certificate managers: asks for one
/// when there is none, and again at a random point between 70% and 90% of each one's life;
/// the new one goes into the identity in use (new connections present it) and the data dir.
/// Serving certificates are for the Node's current names and addresses; client ones are
/// asked for as the node itself (a renewal).
struct CertificateManager {
    purpose: Purpose,
    /// The node's client (asking as the node).
    client: kube::Client,
    node_name: String,
    identity: TlsIdentity,
    data_dir: PathBuf,
    /// The API server and CA, written with a client certificate into the node's kubeconfig.
    server: String,
    ca_pem: String,
}

impl CertificateManager {
    /// Runs until `stop`, starting from the certificate in use (`None`: none yet).
    async fn run(self, mut current: Option<CertificateFacts>, stop: CancellationToken) {
        loop {
            if let Some(facts) = &current {
                let deadline = facts.rotation_deadline(0.7 + 0.2 * jitter());
                let wait = deadline.duration_since(SystemTime::now()).unwrap_or_default();
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                tracing::info!(node = %self.node_name, purpose = ?self.purpose, "rotating a certificate");
            }
            let renewed = tokio::select! {
                () = stop.cancelled() => return,
                renewed = self.renew_until_signed() => renewed,
            };
            current = Some(renewed);
        }
    }

    /// Asks until a certificate is signed.
    async fn renew_until_signed(&self) -> CertificateFacts {
        loop {
            match self.renew().await {
                Ok(facts) => {
                    tracing::info!(node = %self.node_name, purpose = ?self.purpose, "certificate signed");
                    return facts;
                }
                Err(err) => {
                    tracing::warn!(purpose = ?self.purpose, error = %format!("{err:#}"), "requesting a certificate failed; asking again");
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    async fn renew(&self) -> anyhow::Result<CertificateFacts> {
        let request = match self.purpose {
            Purpose::Serving => {
                // The Node's names and addresses as they are now.
                let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(self.client.clone());
                let node = nodes.get(&self.node_name).await?;
                let (names, ips) = certificates::node_names_and_ips(&node);
                certificates::serving_request(&self.node_name, &names, &ips)?
            }
            Purpose::Client => certificates::client_request(&self.node_name)?,
        };
        let cert_pem =
            certificates::request_certificate(self.client.clone(), self.purpose, &request, SIGNING_TIMEOUT)
                .await?;
        let facts = CertificateFacts::of(&cert_pem)?;
        self.identity.set_pem(&cert_pem, &request.key_pem)?;
        match self.purpose {
            Purpose::Serving => {
                let pki = self.data_dir.join("pki");
                write_private(&pki.join("kubelet.key"), &request.key_pem)?;
                write_private(&pki.join("kubelet.crt"), &cert_pem)?;
            }
            Purpose::Client => {
                let credentials = NodeCredentials {
                    ca_pem: self.ca_pem.clone(),
                    cert_pem,
                    key_pem: request.key_pem,
                    facts: facts.clone(),
                };
                store_credentials(&self.data_dir, &self.server, &self.node_name, &credentials)?;
            }
        }
        Ok(facts)
    }
}

/// A number in [0, 1) that differs between nodes and runs (spreads rotations out).
fn jitter() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    f64::from(nanos % 1_000_000) / 1_000_000.0
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
