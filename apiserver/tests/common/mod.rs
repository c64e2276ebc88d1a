//! The API server started in-process for a test, with an admin `kube::Client`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use kube::config::{KubeConfigOptions, Kubeconfig};
use rudder_apiserver::{Config, Running};

/// A running server, its admin client and its data directory.
pub struct TestServer {
    pub running: Option<Running>,
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
}

pub fn config(dir: &std::path::Path) -> Config {
    let mut config = Config::new(dir);
    config.bind_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.secure_port = 0;
    config.node_name = "test-node".into();
    config
}

pub async fn client_for(running: &Running) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(running.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    // Tests assert on the first answer; kube's retries of 503 and 429 would hide it.
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir).await
    }

    pub async fn start_with(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let mut config = config(dir.path());
        tweak(&mut config);
        let running = rudder_apiserver::start(config).await.unwrap();
        let client = client_for(&running).await;
        TestServer {
            running: Some(running),
            client,
            dir,
        }
    }

    pub async fn start_in(dir: tempfile::TempDir) -> TestServer {
        Self::start_with(dir, |_| {}).await
    }

    pub fn running(&self) -> &Running {
        self.running.as_ref().unwrap()
    }

    /// Stops the server and returns its data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let running = self.running.take().unwrap();
        running.shutdown();
        running.wait().await.unwrap();
        self.dir
    }

    /// A raw GET returning (status, body).
    pub async fn get_raw(&self, path: &str) -> (u16, String) {
        self.request(http::Request::get(path).body(Vec::new()).unwrap())
            .await
    }

    /// A raw request returning (status, body).
    pub async fn request(&self, request: http::Request<Vec<u8>>) -> (u16, String) {
        let request = request.map(kube::client::Body::from);
        let response = self.client.send(request).await.unwrap();
        let status = response.status().as_u16();
        let body = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}
