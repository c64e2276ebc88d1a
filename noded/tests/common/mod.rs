//! The API server in the test process (temporary data dir, 127.0.0.1:0) and an admin client;
//! the simulated nodes reach it over HTTPS like in production.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

/// A running API server and an admin client.
pub struct Server {
    pub client: kube::Client,
    server: Option<rudder_apiserver::Running>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = rudder_apiserver::Config::new(dir.path());
        config.bind_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
        config.secure_port = 0;
        config.node_name = "test-node".into();
        let server = rudder_apiserver::start(config).await.unwrap();
        let kubeconfig = Kubeconfig::read_from(server.kubeconfig()).unwrap();
        let mut client = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
        client.default_retry = false;
        Server {
            client: kube::Client::try_from(client).unwrap(),
            server: Some(server),
            _dir: dir,
        }
    }

    pub async fn stop(mut self) {
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
