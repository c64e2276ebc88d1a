//! Scheduler benchmark, as upstream's scheduler_perf SchedulingThroughput: 1,000 simulated
//! nodes (no pod runtime, like scheduler_perf's fake nodes) and 10,000 pods created at
//! concurrency 32 while the scheduler runs; prints pods bound per second over 5 s windows
//! (average, min, max) and overall. Then the store writes per second of the idle cluster
//! (nodes only: this branch has no deployment controller).
//!
//! Run with `cargo bench -p rudder-reconcilers --bench scheduler` (or `hack/bench.sh`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio_util::sync::CancellationToken;

const NODES: usize = 1_000;
const PODS: usize = 10_000;
const WINDOW: Duration = Duration::from_secs(5);
const IDLE: Duration = Duration::from_secs(30);

async fn client_config(path: &std::path::Path) -> kube::Config {
    let kubeconfig = Kubeconfig::read_from(path).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.default_retry = false;
    config
}

fn pod(i: usize) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("pod-{i:05}"), "labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "500Mi"}}}]},
    }))
    .unwrap()
}

/// The store's current revision (every write takes one).
async fn revision(client: &kube::Client) -> u64 {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let list = api.list_metadata(&ListParams::default().limit(1)).await.unwrap();
    list.metadata.resource_version.unwrap().parse().unwrap()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = rudder_apiserver::Config::new(dir.path());
    config.bind_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.secure_port = 0;
    config.node_name = "bench-node".into();
    let server = rudder_apiserver::start(config).await.unwrap();
    let admin = kube::Client::try_from(client_config(server.kubeconfig()).await).unwrap();
    let stop = CancellationToken::new();

    let started = Instant::now();
    let sim = rudder_noded::simulated::SimulatedNodes::start(
        admin.clone(),
        rudder_noded::simulated::Config {
            count: NODES,
            run_pods: false,
            ..Default::default()
        },
        stop.clone(),
    )
    .await
    .unwrap();
    println!(
        "registered {} simulated nodes in {:.1} s",
        sim.names().len(),
        started.elapsed().as_secs_f64()
    );

    let reconcilers = rudder_reconcilers::Config {
        client: client_config(&server.component_kubeconfig("controller-manager")).await,
        root_ca_pem: std::fs::read_to_string(server.ca_path()).unwrap(),
        controllers: vec!["scheduler".into(), "nodelifecycle".into()],
        leader_elect: false,
        identity: "bench".into(),
    };
    let controllers = tokio::spawn(rudder_reconcilers::run(
        reconcilers,
        stop.clone().cancelled_owned(),
    ));
    let nodes: Api<Node> = Api::all(admin.clone());
    loop {
        let list = nodes.list(&ListParams::default()).await.unwrap().items;
        let ready = list
            .iter()
            .filter(|n| {
                n.spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_none_or(Vec::is_empty)
            })
            .count();
        if ready == NODES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("nodes untainted after {:.1} s", started.elapsed().as_secs_f64());

    // Count bindings from a watch of bound pods.
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let params = WatchParams::default().fields("spec.nodeName!=");
    let mut stream = pods.watch(&params, "0").await.unwrap().boxed();
    let (bound_tx, mut bound_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    tokio::spawn(async move {
        while let Some(event) = stream.next().await {
            if let Ok(WatchEvent::Added(_)) = event {
                let _ = bound_tx.send(Instant::now());
            }
        }
    });

    let begin = Instant::now();
    let creator = {
        let pods = pods.clone();
        tokio::spawn(async move {
            futures_util::stream::iter(0..PODS)
                .map(|i| {
                    let pods = pods.clone();
                    async move { pods.create(&PostParams::default(), &pod(i)).await.unwrap() }
                })
                .buffer_unordered(32)
                .for_each(|_| async {})
                .await;
            begin.elapsed()
        })
    };
    let mut times = Vec::with_capacity(PODS);
    while times.len() < PODS {
        match tokio::time::timeout(Duration::from_secs(60), bound_rx.recv()).await {
            Ok(Some(at)) => times.push(at),
            _ => panic!("only {} of {PODS} pods bound", times.len()),
        }
    }
    let created_in = creator.await.unwrap();
    let total = times.last().unwrap().duration_since(begin);
    let mut windows = Vec::new();
    let mut edge = begin + WINDOW;
    let mut count = 0;
    for at in &times {
        while *at >= edge {
            windows.push(count as f64 / WINDOW.as_secs_f64());
            count = 0;
            edge += WINDOW;
        }
        count += 1;
    }
    let last = total.as_secs_f64() - (windows.len() as f64 * WINDOW.as_secs_f64());
    if count > 0 && last > 0.5 {
        windows.push(count as f64 / last);
    }
    let average = windows.iter().sum::<f64>() / windows.len() as f64;
    let min = windows.iter().copied().fold(f64::INFINITY, f64::min);
    let max = windows.iter().copied().fold(0.0, f64::max);
    println!(
        "scheduling throughput, {NODES} nodes, {PODS} pods (created in {:.1} s at concurrency 32):",
        created_in.as_secs_f64()
    );
    println!(
        "  pods bound/s over 5 s windows: average {average:.0}, min {min:.0}, max {max:.0} ({} windows)",
        windows.len()
    );
    println!(
        "  overall: {PODS} pods bound in {:.1} s = {:.0} pods/s",
        total.as_secs_f64(),
        PODS as f64 / total.as_secs_f64()
    );

    // The idle cluster: only node Lease renewals (every 10 s per node) should write.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = revision(&admin).await;
    let at = Instant::now();
    tokio::time::sleep(IDLE).await;
    let writes = revision(&admin).await - before;
    println!(
        "idle cluster ({NODES} nodes, {PODS} bound pods, no deployment controller on this branch): \
         {:.1} store writes/s over {} s (node Lease renewals: {:.1}/s expected)",
        writes as f64 / at.elapsed().as_secs_f64(),
        IDLE.as_secs(),
        NODES as f64 / 10.0
    );

    stop.cancel();
    sim.join().await;
    let _ = controllers.await;
    server.shutdown();
    server.wait().await.unwrap();
}
