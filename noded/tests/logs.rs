//! `kubectl logs` (and the refusals of exec and attach) end to end without containers: the API
//! server in-process proxies `pods/log` to noded's log server (127.0.0.1:0, certificates from the API server's PKI), which reads CRI
//! log files written by the test under a temporary log root; a fake pod source stands in for
//! the pod worker. Lives here because noded may link the API server only as a dev-dependency.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, LogParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use rudder_noded::logs::paths;
use rudder_noded::server::{self, PodSource};
use serde_json::json;

/// The pod worker's view, faked: pods with the statuses the test gives them, and one switch
/// for "the current container still runs".
#[derive(Default)]
struct FakePods {
    pods: Mutex<HashMap<(String, String), Pod>>,
    running: AtomicBool,
    /// How often a follower asked whether the container runs.
    running_checks: std::sync::atomic::AtomicUsize,
}

impl PodSource for FakePods {
    fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        self.pods
            .lock()
            .unwrap()
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    fn container_running(&self, _pod: &Pod, _container: &str) -> bool {
        self.running_checks.fetch_add(1, Ordering::SeqCst);
        self.running.load(Ordering::SeqCst)
    }
}

struct Cluster {
    client: kube::Client,
    api: rudder_apiserver::Running,
    node: server::Running,
    pods: Arc<FakePods>,
    log_root: PathBuf,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

const RECORDS_0: &str = "2026-11-26T10:00:00Z stdout F old one\n2026-11-26T10:00:01Z stderr F old two\n";
const RECORDS_1: &str = "\
2026-11-26T11:00:00.25Z stdout F one
2026-11-26T11:00:01Z stderr P tw
2026-11-26T11:00:02Z stderr F o
2026-11-26T11:00:03Z stdout F three
";

async fn start() -> Cluster {
    let data = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let mut config = rudder_apiserver::Config::new(data.path());
    config.bind_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.secure_port = 0;
    config.node_name = "test-node".into();
    let api = rudder_apiserver::start(config).await.unwrap();
    let kubeconfig = Kubeconfig::read_from(api.kubeconfig()).unwrap();
    let mut client_config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    client_config.default_retry = false;
    let client = kube::Client::try_from(client_config).unwrap();

    let tls = api.node_server_tls().clone();
    let serving =
        rudder_noded::identity::TlsIdentity::from_pem(&tls.serving.cert_pem, &tls.serving.key_pem).unwrap();
    let mut node_config = server::Config::new(tls.ca_pem, serving);
    node_config.address = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    node_config.allowed_users = vec![tls.allowed_user];
    node_config.log_root = logs.path().to_path_buf();
    let pods = Arc::new(FakePods::default());
    let node = server::start(node_config, pods.clone()).await.unwrap();

    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "test-node"}})).unwrap(),
        )
        .await
        .unwrap();
    let status = json!({"status": {
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": node.address().port()}},
    }});
    nodes
        .patch_status("test-node", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    Cluster {
        client,
        api,
        node,
        pods,
        log_root: logs.path().to_path_buf(),
        _dirs: (data, logs),
    }
}

impl Cluster {
    /// Creates a pod and gives the fake pod worker its status.
    async fn pod(&self, spec: serde_json::Value, statuses: serde_json::Value) -> Pod {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), "default");
        let mut pod = api
            .create(&PostParams::default(), &serde_json::from_value(spec).unwrap())
            .await
            .unwrap();
        pod.status = Some(serde_json::from_value(json!({"containerStatuses": statuses})).unwrap());
        let key = ("default".to_owned(), pod.metadata.name.clone().unwrap());
        self.pods.pods.lock().unwrap().insert(key, pod.clone());
        pod
    }

    fn log_file(&self, pod: &Pod, container: &str, restart: u32) -> PathBuf {
        let path = paths::container_log_path(
            &self.log_root,
            "default",
            pod.metadata.name.as_deref().unwrap(),
            pod.metadata.uid.as_deref().unwrap(),
            container,
            restart,
        );
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        path
    }

    /// A raw GET through the API server: (status, content type, body).
    async fn get(&self, path: &str) -> (u16, String, String) {
        let request = http::Request::get(path)
            .body(kube::client::Body::empty())
            .unwrap();
        let response = self.client.send(request).await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn stop(self) {
        self.node.stop().await;
        self.api.shutdown();
        self.api.wait().await.unwrap();
    }
}

fn running_status(name: &str, restarts: u32, last: Option<&str>) -> serde_json::Value {
    let mut status = json!({"name": name, "image": "busybox", "imageID": "", "ready": true,
        "restartCount": restarts, "containerID": format!("rudder://{name}-{restarts}"),
        "state": {"running": {"startedAt": "2026-11-26T11:00:00Z"}}});
    if let Some(id) = last {
        status["lastState"] = json!({"terminated": {"exitCode": 1, "containerID": id}});
    }
    status
}

fn append(path: &Path, data: &str) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(data.as_bytes()).unwrap();
}

fn web_spec() -> serde_json::Value {
    json!({"metadata": {"name": "web"}, "spec": {"nodeName": "test-node",
        "containers": [{"name": "app", "image": "busybox"}]}})
}

#[tokio::test]
async fn pod_logs_are_read_from_the_node() {
    let cluster = start().await;
    let web = cluster
        .pod(
            web_spec(),
            json!([running_status("app", 1, Some("rudder://app-0"))]),
        )
        .await;
    append(&cluster.log_file(&web, "app", 0), RECORDS_0);
    append(&cluster.log_file(&web, "app", 1), RECORDS_1);
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");

    let (status, content_type, body) = cluster.get("/api/v1/namespaces/default/pods/web/log").await;
    assert_eq!((status, content_type.as_str()), (200, "text/plain"));
    assert_eq!(body, "one\ntwo\nthree\n");

    let tail = LogParams {
        tail_lines: Some(2),
        ..LogParams::default()
    };
    assert_eq!(pods.logs("web", &tail).await.unwrap(), "o\nthree\n");

    let timestamps = LogParams {
        timestamps: true,
        container: Some("app".into()),
        ..LogParams::default()
    };
    assert_eq!(
        pods.logs("web", &timestamps).await.unwrap(),
        "2026-11-26T11:00:00.250000000Z one\n2026-11-26T11:00:01.000000000Z two\n2026-11-26T11:00:03.000000000Z three\n"
    );

    let previous = LogParams {
        previous: true,
        ..LogParams::default()
    };
    assert_eq!(pods.logs("web", &previous).await.unwrap(), "old one\nold two\n");

    let limited = LogParams {
        limit_bytes: Some(6),
        ..LogParams::default()
    };
    assert_eq!(pods.logs("web", &limited).await.unwrap(), "one\ntw");

    let since = cluster
        .get("/api/v1/namespaces/default/pods/web/log?sinceTime=2026-11-26T11:00:03Z")
        .await;
    assert_eq!(since.2, "three\n");
    cluster.stop().await;
}

#[tokio::test]
async fn pod_log_errors_are_upstreams() {
    let cluster = start().await;
    cluster
        .pod(web_spec(), json!([running_status("app", 0, None)]))
        .await;
    cluster
        .pod(
            json!({"metadata": {"name": "multi"}, "spec": {"nodeName": "test-node",
                "initContainers": [{"name": "setup", "image": "busybox"}],
                "containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]}}),
            json!([
                running_status("a", 0, None),
                {"name": "b", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"waiting": {"reason": "ContainerCreating"}}},
            ]),
        )
        .await;
    cluster
        .pod(
            json!({"metadata": {"name": "pending"}, "spec": {"containers": [{"name": "app", "image": "busybox"}]}}),
            json!([]),
        )
        .await;
    let base = "/api/v1/namespaces/default/pods";
    let status = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap();

    let (code, _, body) = cluster.get(&format!("{base}/multi/log")).await;
    assert_eq!(code, 400);
    assert_eq!(
        status(&body)["message"],
        "a container name must be specified for pod multi, choose one of: [setup a b]"
    );
    let (code, _, body) = cluster.get(&format!("{base}/web/log?container=nope")).await;
    assert_eq!(
        (code, status(&body)["message"].as_str().unwrap()),
        (400, "container nope is not valid for pod web")
    );

    let (code, _, body) = cluster.get(&format!("{base}/web/log?tailLines=-1")).await;
    assert_eq!(code, 422);
    assert_eq!(
        status(&body)["message"],
        "PodLogOptions \"web\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
    );
    let (code, _, body) = cluster
        .get(&format!(
            "{base}/web/log?sinceSeconds=5&sinceTime=2026-11-26T10:00:00Z"
        ))
        .await;
    assert_eq!(code, 422);
    assert_eq!(
        status(&body)["message"],
        "PodLogOptions \"web\" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
    );

    // The node's refusals come back as the API server's response checker words them.
    let (code, _, body) = cluster.get(&format!("{base}/web/log?previous=true")).await;
    assert_eq!(code, 400);
    assert_eq!(
        status(&body)["message"],
        "previous terminated container \"app\" in pod \"web\" not found"
    );
    let (code, _, body) = cluster.get(&format!("{base}/multi/log?container=b")).await;
    assert_eq!(code, 400);
    assert_eq!(
        status(&body)["message"],
        "container \"b\" in pod \"multi\" is waiting to start: ContainerCreating"
    );

    // A pod without a node has no logs yet: upstream streams nothing.
    let (code, _, body) = cluster.get(&format!("{base}/pending/log")).await;
    assert_eq!((code, body.as_str()), (204, ""));

    // A pod the node does not know.
    cluster.pods.pods.lock().unwrap().clear();
    let (code, _, body) = cluster.get(&format!("{base}/web/log")).await;
    assert_eq!(code, 404);
    assert_eq!(
        status(&body)["message"],
        "the server could not find the requested resource ( pods/log web)"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn follow_streams_lines_appended_later_until_the_container_exits() {
    let cluster = start().await;
    cluster.pods.running.store(true, Ordering::SeqCst);
    let web = cluster
        .pod(web_spec(), json!([running_status("app", 0, None)]))
        .await;
    let file = cluster.log_file(&web, "app", 0);
    append(&file, "2026-11-26T11:00:00Z stdout F first\n");

    let request = http::Request::get("/api/v1/namespaces/default/pods/web/log?follow=true")
        .body(kube::client::Body::empty())
        .unwrap();
    let response = cluster.client.send(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = String::new();
    let mut next = async |received: &mut String| {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("a chunk within 10s");
        match frame {
            Some(frame) => {
                if let Ok(data) = frame.unwrap().into_data() {
                    received.push_str(std::str::from_utf8(&data).unwrap());
                }
                true
            }
            None => false,
        }
    };
    while received != "first\n" {
        assert!(next(&mut received).await, "stream ended early: {received:?}");
    }
    // Written after the request started: it arrives on the open stream.
    append(&file, "2026-11-26T11:00:01Z stdout F second\n");
    while received != "first\nsecond\n" {
        assert!(next(&mut received).await, "stream ended early: {received:?}");
    }
    // The container exits: the stream ends once the file is drained.
    append(&file, "2026-11-26T11:00:02Z stdout F last\n");
    cluster.pods.running.store(false, Ordering::SeqCst);
    while next(&mut received).await {}
    assert_eq!(received, "first\nsecond\nlast\n");
    cluster.stop().await;
}

#[tokio::test]
async fn a_follower_that_goes_away_stops_the_node_reader() {
    let cluster = start().await;
    cluster.pods.running.store(true, Ordering::SeqCst);
    let web = cluster
        .pod(web_spec(), json!([running_status("app", 0, None)]))
        .await;
    append(
        &cluster.log_file(&web, "app", 0),
        "2026-11-26T11:00:00Z stdout F first\n",
    );
    let request = http::Request::get("/api/v1/namespaces/default/pods/web/log?follow=true")
        .body(kube::client::Body::empty())
        .unwrap();
    let response = cluster.client.send(request).await.unwrap();
    let mut body = response.into_body();
    let chunk = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&chunk[..], b"first\n");
    // The follower checks the container about once a second while it waits.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(cluster.pods.running_checks.load(Ordering::SeqCst) >= 1);
    drop(body);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after_drop = cluster.pods.running_checks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        cluster.pods.running_checks.load(Ordering::SeqCst),
        after_drop,
        "the node still follows the log"
    );
    cluster.stop().await;
}

#[tokio::test]
async fn the_node_server_admits_only_the_api_server() {
    let cluster = start().await;
    let pki = cluster._dirs.0.path().join("pki");
    let read = |name: &str| std::fs::read_to_string(pki.join(name)).unwrap();
    let admin = rudder_apiserver::kubelet::KubeletClient::new(
        &read("ca.crt"),
        &read("admin.crt"),
        &read("admin.key"),
    )
    .unwrap();
    let endpoint = rudder_apiserver::kubelet::NodeEndpoint {
        host: "127.0.0.1".into(),
        port: cluster.node.address().port(),
    };
    let response = admin
        .get(&endpoint, "/containerLogs/default/web/app")
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        std::str::from_utf8(&body).unwrap(),
        "Forbidden (user=admin, verb=get, resource=nodes, subresource(s)=[proxy])\n"
    );
    cluster.stop().await;
}

/// exec and attach go through the API server to the node, whose refusals come back as the
/// node wrote them (upstream's UpgradeAwareHandler passes non-101 answers through).
#[tokio::test]
async fn exec_and_attach_refusals_come_back_from_the_node() {
    let cluster = start().await;
    cluster
        .pod(web_spec(), json!([running_status("app", 0, None)]))
        .await;

    let (status, content_type, body) = cluster
        .get("/api/v1/namespaces/default/pods/web/exec?command=ls")
        .await;
    assert_eq!(
        (status, content_type.as_str()),
        (400, "text/plain; charset=utf-8")
    );
    assert_eq!(body, "you must specify at least 1 of stdin, stdout, stderr");

    // A WebSocket upgrade for a container the node does not run.
    let request = http::Request::get("/api/v1/namespaces/default/pods/web/attach?stdout=true")
        .header(http::header::CONNECTION, "Upgrade")
        .header(http::header::UPGRADE, "websocket")
        .header(http::header::SEC_WEBSOCKET_VERSION, "13")
        .header(http::header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
        .header(http::header::SEC_WEBSOCKET_PROTOCOL, "v5.channel.k8s.io")
        .body(kube::client::Body::empty())
        .unwrap();
    let response = cluster.client.send(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 500);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8_lossy(&body), "container not found (\"app\")");

    // Without an upgrade the node refuses: SPDY needs the protocol header, as upstream's
    // httpstream.Handshake says (port-forward reaches no container first).
    let (status, _, body) = cluster
        .get("/api/v1/namespaces/default/pods/web/portforward?ports=8080")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.starts_with("unable to upgrade: header X-Stream-Protocol-Version does not exist"),
        "{body}"
    );
    let (status, _, body) = cluster
        .get("/api/v1/namespaces/default/pods/web/portforward?ports=http")
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("cannot convert to []int32"), "{body}");

    // The API server's own checks.
    let (status, _, body) = cluster
        .get("/api/v1/namespaces/default/pods/web/exec?command=ls&stdout=true&container=nope")
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("container nope is not valid for pod web"), "{body}");
    cluster
        .pod(
            json!({"metadata": {"name": "unbound"}, "spec": {"containers": [{"name": "app", "image": "busybox"}]}}),
            json!([]),
        )
        .await;
    let (status, _, body) = cluster
        .get("/api/v1/namespaces/default/pods/unbound/attach?stdout=true")
        .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("pod unbound does not have a host assigned"),
        "{body}"
    );
    cluster.stop().await;
}
