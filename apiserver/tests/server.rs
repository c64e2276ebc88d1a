//! The API server in-process: TLS, authentication, health, version, metrics, restarts and
//! start-up errors, driven with kube::Client like any client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use kube::config::{KubeConfigOptions, Kubeconfig};
use rudder_apiserver::{Config, Error, Running};
use rudder_storage::StorageError;

fn config(dir: &tempfile::TempDir) -> Config {
    let mut config = Config::new(dir.path());
    config.bind_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.secure_port = 0;
    config.node_name = "test-node".into();
    config
}

async fn kube_config(running: &Running) -> kube::Config {
    let kubeconfig = Kubeconfig::read_from(running.kubeconfig()).unwrap();
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap()
}

async fn admin_client(running: &Running) -> kube::Client {
    kube::Client::try_from(kube_config(running).await).unwrap()
}

/// A client that trusts the cluster CA but presents no credentials, or only `token`.
async fn client_with_token(running: &Running, token: Option<&str>) -> kube::Client {
    let mut config = kube_config(running).await;
    config.auth_info = Default::default();
    config.auth_info.token = token.map(|t| t.to_owned().into());
    kube::Client::try_from(config).unwrap()
}

async fn get(client: &kube::Client, path: &str) -> Result<String, kube::Error> {
    client
        .request_text(http::Request::get(path).body(Vec::new()).unwrap())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_version_health_and_metrics_to_the_right_users() {
    let dir = tempfile::tempdir().unwrap();
    let running = rudder_apiserver::start(config(&dir)).await.unwrap();
    let admin = admin_client(&running).await;

    let version = admin.apiserver_version().await.unwrap();
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "35"));
    assert!(version.git_version.starts_with("v1.35."));

    let readyz = get(&admin, "/readyz?verbose").await.unwrap();
    assert_eq!(
        readyz,
        "[+]ping ok\n[+]storage ok\n[+]shutdown ok\nreadyz check passed\n"
    );
    assert_eq!(get(&admin, "/livez/storage").await.unwrap(), "ok");
    assert_eq!(get(&admin, "/healthz").await.unwrap(), "ok");

    let anonymous = client_with_token(&running, None).await;
    assert_eq!(get(&anonymous, "/healthz").await.unwrap(), "ok");
    assert!(
        get(&anonymous, "/version")
            .await
            .unwrap()
            .contains("\"gitVersion\"")
    );
    for path in ["/api", "/metrics", "/apis/apps/v1", "/anything"] {
        match get(&anonymous, path).await {
            Err(kube::Error::Api(status)) => {
                assert_eq!(
                    (status.code, status.reason.as_str()),
                    (401, "Unauthorized"),
                    "{path}"
                );
                assert_eq!(status.message, "Unauthorized");
            }
            other => panic!("{path}: expected 401, got {other:?}"),
        }
    }

    let token = std::fs::read_to_string(dir.path().join("tokens.csv")).unwrap();
    let token = token.split(',').next().unwrap();
    let with_token = client_with_token(&running, Some(token)).await;
    let metrics = get(&with_token, "/metrics").await.unwrap();
    assert!(metrics.contains(r#"path="/readyz",code="200"} 1"#), "{metrics}");
    assert!(
        metrics.contains("apiserver_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(metrics.contains(r#"path="/api",code="401"}"#), "{metrics}");
    assert!(metrics.contains("rudder_storage_revision 1"), "{metrics}");

    let wrong = client_with_token(&running, Some("not-a-token")).await;
    assert!(matches!(get(&wrong, "/version").await, Err(kube::Error::Api(s)) if s.code == 401));

    match get(&admin, "/api/v1/nosuchthing").await {
        Err(kube::Error::Api(status)) => assert_eq!((status.code, status.reason.as_str()), (404, "NotFound")),
        other => panic!("expected 404, got {other:?}"),
    }
    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiates_http2_and_http1_with_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let running = rudder_apiserver::start(config(&dir)).await.unwrap();
    let ca = std::fs::read(dir.path().join("pki/ca.crt")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    for (offered, expected) in [
        (vec![&b"h2"[..], b"http/1.1"], &b"h2"[..]),
        (vec![&b"http/1.1"[..]], b"http/1.1"),
    ] {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        tls.alpn_protocols = offered.iter().map(|p| p.to_vec()).collect();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
        let tcp = tokio::net::TcpStream::connect(running.address()).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let stream = connector.connect(name, tcp).await.unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(expected));
    }
    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_pki_data_and_revision() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, revision) = {
        let running = rudder_apiserver::start(config(&dir)).await.unwrap();
        running
            .store()
            .create("/test/things/default/a", b"{}".to_vec())
            .await
            .unwrap();
        let revision = running.store().current_revision();
        running.shutdown();
        running.wait().await.unwrap();
        (std::fs::read(dir.path().join("pki/ca.crt")).unwrap(), revision)
    };
    let running = rudder_apiserver::start(config(&dir)).await.unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("pki/ca.crt")).unwrap(),
        ca,
        "the CA is kept"
    );
    assert_eq!(running.store().current_revision(), revision);
    assert!(running.store().get("/test/things/default/a").unwrap().is_some());
    // The new kubeconfig (new port) still works with the same CA.
    let admin = admin_client(&running).await;
    assert_eq!(admin.apiserver_version().await.unwrap().minor, "35");
    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let running = rudder_apiserver::start(config(&dir)).await.unwrap();

    // Same data dir: the database is locked.
    let err = rudder_apiserver::start(config(&dir)).await.unwrap_err();
    assert!(matches!(err, Error::Storage(StorageError::Locked(_))), "{err}");
    assert!(err.to_string().contains("is another rudder running"), "{err}");

    // Same port, other data dir.
    let other = tempfile::tempdir().unwrap();
    let mut taken = config(&other);
    taken.secure_port = running.address().port();
    let err = rudder_apiserver::start(taken).await.unwrap_err();
    assert!(matches!(err, Error::Bind { .. }), "{err}");
    assert!(
        err.to_string().contains("address already in use")
            || err.to_string().contains("Address already in use"),
        "{err}"
    );

    // A foreign file where the database should be is refused and left alone.
    let foreign = tempfile::tempdir().unwrap();
    std::fs::write(foreign.path().join("state.redb"), b"not a database").unwrap();
    let err = rudder_apiserver::start(config(&foreign)).await.unwrap_err();
    assert!(
        matches!(err, Error::Storage(StorageError::Corrupt { .. })),
        "{err}"
    );
    assert_eq!(
        std::fs::read(foreign.path().join("state.redb")).unwrap(),
        b"not a database"
    );

    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_data_dir_is_reported() {
    // Permission bits do not stop root, so use a path below a regular file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let mut config = Config::new(file.join("data"));
    config.secure_port = 0;
    let err = rudder_apiserver::start(config).await.unwrap_err();
    assert!(matches!(err, Error::DataDir { .. }), "{err}");
    assert!(err.to_string().starts_with("data dir "), "{err}");
}
