//! `rudder agent`: joins this machine to a cluster as one more node (noded and netd) with a
//! join token, as the kubelet's TLS bootstrap does: the cluster CA from `/cacerts`, pinned by
//! the token; a client certificate for `system:node:NAME` requested with the token as a
//! bootstrap token, then kept as `DATA_DIR/node.kubeconfig`; and the node server's serving
//! certificate requested as the node once its Node has addresses, kept in `DATA_DIR/pki`.
//! From the client certificate on, the node acts only as `system:node:NAME`.
//!
//! It wires steps together and stores credentials; requesting them is
//! `rudder_noded::certificates`, running the node is [`crate::node`].

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use clap::Args;
use rudder_noded::certificates::{self, CertificateFacts, Credentials, JoinToken, Purpose};
use rudder_noded::server::ServingCertificate;
use tokio_util::sync::CancellationToken;

use crate::node::{self, NodeArgs, ServingTls};

/// How long a certificate request may wait for its certificate.
const SIGNING_TIMEOUT: Duration = Duration::from_secs(300);
/// How long to wait before asking again when a serving certificate request failed.
const SERVING_RETRY: Duration = Duration::from_secs(10);
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
    let client_config = certificates::client_config(credentials.kubeconfig).await?;
    let client = rudder_noded::api_client::client(client_config)?;

    let serving = ServingCertificate::pending();
    let stored_serving = stored_serving_pair(&data_dir, &node_name)
        .filter(|(cert_pem, key_pem, _)| serving.set_pem(cert_pem, key_pem).is_ok());
    let tls = ServingTls {
        client_ca_pem: credentials.ca_pem,
        serving: serving.clone(),
        allowed_user: rudder_apiserver::KUBELET_CLIENT_USER.to_owned(),
    };
    let stop = CancellationToken::new();
    let running = node::start(client.clone(), &args.node, data_dir.clone(), tls, stop.clone())
        .await
        .context("starting the node")?;
    let (names, ips) = certificates::node_names_and_ips(running.node());
    // A kept certificate serves on while it covers the Node's names and addresses.
    let current = stored_serving.map(|(_, _, facts)| facts).filter(|facts| {
        names.iter().all(|n| facts.dns_names.contains(n)) && ips.iter().all(|ip| facts.ips.contains(ip))
    });
    let serving_task = tokio::spawn(
        ServingCertificateManager {
            client,
            node_name: node_name.clone(),
            pki: data_dir.join("pki"),
            serving,
        }
        .run(current, stop.clone()),
    );
    crate::shutdown_signal().await;
    tracing::info!("shutting down");
    stop.cancel();
    let _ = serving_task.await;
    running.join().await;
    Ok(())
}

/// What the node authenticates with and trusts.
struct NodeCredentials {
    kubeconfig: kube::config::Kubeconfig,
    ca_pem: String,
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
    let user = kubeconfig.auth_infos.first()?.auth_info.as_ref()?;
    let cert_pem = decode(user.client_certificate_data.as_deref()?)?;
    let facts = CertificateFacts::of(&cert_pem).ok()?;
    if facts.common_name != format!("system:node:{node_name}") || !facts.fresh_at(SystemTime::now()) {
        return None;
    }
    Some(NodeCredentials { kubeconfig, ca_pem })
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
    let kubeconfig = certificates::kubeconfig(
        &args.server,
        &ca_pem,
        &format!("system:node:{node_name}"),
        &Credentials::Certificate {
            cert_pem: &cert_pem,
            key_pem: &request.key_pem,
        },
    );
    write_private(
        &data_dir.join(NODE_KUBECONFIG),
        &serde_json::to_string_pretty(&kubeconfig)?,
    )?;
    tracing::info!(node = %node_name, "joined: client certificate signed");
    Ok(NodeCredentials { kubeconfig, ca_pem })
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

/// Keeps the node server's certificate, as the kubelet's serving certificate manager: asks
/// for one for the Node's names and addresses when there is none, and again at a random
/// point between 70% and 90% of each one's life.
struct ServingCertificateManager {
    client: kube::Client,
    node_name: String,
    pki: PathBuf,
    serving: ServingCertificate,
}

impl ServingCertificateManager {
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
                tracing::info!(node = %self.node_name, "rotating the serving certificate");
            }
            let renewed = tokio::select! {
                () = stop.cancelled() => return,
                renewed = self.renew_until_signed() => renewed,
            };
            current = Some(renewed);
        }
    }

    /// Asks until a certificate is signed, then serves with it and keeps it in `pki`.
    async fn renew_until_signed(&self) -> CertificateFacts {
        loop {
            match self.renew().await {
                Ok(facts) => {
                    tracing::info!(node = %self.node_name, "serving certificate signed");
                    return facts;
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "requesting the serving certificate failed; asking again");
                }
            }
            tokio::time::sleep(SERVING_RETRY).await;
        }
    }

    async fn renew(&self) -> anyhow::Result<CertificateFacts> {
        // The Node's names and addresses as they are now.
        let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(self.client.clone());
        let node = nodes.get(&self.node_name).await?;
        let (names, ips) = certificates::node_names_and_ips(&node);
        let request = certificates::serving_request(&self.node_name, &names, &ips)?;
        let cert_pem = certificates::request_certificate(
            self.client.clone(),
            Purpose::Serving,
            &request,
            SIGNING_TIMEOUT,
        )
        .await?;
        let facts = CertificateFacts::of(&cert_pem)?;
        self.serving.set_pem(&cert_pem, &request.key_pem)?;
        write_private(&self.pki.join("kubelet.key"), &request.key_pem)?;
        write_private(&self.pki.join("kubelet.crt"), &cert_pem)?;
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
