//! A cluster in the test process: the API server on a temporary data dir and 127.0.0.1:0,
//! and the controllers of this crate running against it through HTTPS like in production.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod kubelet;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio_util::sync::CancellationToken;

/// A running API server with controllers, and an admin client.
pub struct Cluster {
    pub client: kube::Client,
    pub server: Option<rudder_apiserver::Running>,
    stop: CancellationToken,
    controllers: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

async fn client_from(path: &std::path::Path) -> kube::Config {
    let kubeconfig = Kubeconfig::read_from(path).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.default_retry = false;
    config
}

impl Cluster {
    /// Starts the API server and the controllers named in `controllers` (`*` for all).
    pub async fn start(controllers: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut config = rudder_apiserver::Config::new(dir.path());
        config.bind_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
        config.secure_port = 0;
        config.node_name = "test-node".into();
        let server = rudder_apiserver::start(config).await.unwrap();
        let client = kube::Client::try_from(client_from(server.kubeconfig()).await).unwrap();
        let reconcilers = rudder_reconcilers::Config {
            client: client_from(&server.component_kubeconfig("controller-manager")).await,
            root_ca_pem: std::fs::read_to_string(server.ca_path()).unwrap(),
            controllers: controllers.iter().map(|c| (*c).to_owned()).collect(),
            leader_elect: false,
            identity: "test".into(),
            load_balancer_pool: rudder_reconcilers::service_lb::Pool::parse(&["192.0.2.240/30".to_owned()])
                .unwrap(),
            signing_ca: Some(rudder_reconcilers::csr::SigningCa {
                cert_pem: std::fs::read_to_string(server.ca_path()).unwrap(),
                key_pem: std::fs::read_to_string(dir.path().join("pki").join("ca.key")).unwrap(),
            }),
        };
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let controllers = tokio::spawn(async move {
            rudder_reconcilers::run(reconcilers, shutdown).await.unwrap();
        });
        Cluster {
            client,
            server: Some(server),
            stop,
            controllers: Some(controllers),
            _dir: dir,
        }
    }

    /// The cluster's join token (`DATA_DIR/token`).
    pub fn join_token(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("token")).unwrap()
    }

    /// The API server's URL, as its kubeconfig names it.
    pub fn server_url(&self) -> String {
        let kubeconfig = Kubeconfig::read_from(self.server.as_ref().unwrap().kubeconfig()).unwrap();
        kubeconfig.clusters[0]
            .cluster
            .as_ref()
            .unwrap()
            .server
            .clone()
            .unwrap()
    }

    /// A client authenticating with the cluster's join token (a bootstrap token user).
    pub async fn bootstrap_client(&self) -> kube::Client {
        let server = self.server.as_ref().unwrap();
        let mut config = client_from(server.kubeconfig()).await;
        let token = std::fs::read_to_string(self._dir.path().join("token")).unwrap();
        let (_, credentials) = token.trim().split_once("::").unwrap();
        config.auth_info = kube::config::AuthInfo {
            token: Some(credentials.to_owned().into()),
            ..Default::default()
        };
        kube::Client::try_from(config).unwrap()
    }

    /// Stops the controllers, then the API server.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(controllers) = self.controllers.take() {
            let _ = controllers.await;
        }
        if let Some(server) = self.server.take() {
            server.shutdown();
            server.wait().await.unwrap();
        }
    }
}

/// Polls `check` until it returns `Some`, failing the test after `secs` seconds.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
