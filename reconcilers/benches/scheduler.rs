//! Scheduler benchmark, as upstream's scheduler_perf SchedulingThroughput: 1,000 simulated
//! nodes (no pod runtime, like scheduler_perf's fake nodes) and 10,000 pods created at
//! concurrency 32 while the scheduler runs; prints pods bound per second over 5 s windows
//! (average, min, max) and overall. Then, on a fresh cluster running every controller with
//! 10 simulated nodes that run their pods, 100 Deployments of 2 replicas: once all are
//! available and the cluster has settled, the store writes per second over 30 s, by resource
//! (counted from watches of every written resource, checked against the store's revision).
//!
//! Run with `cargo bench -p rudder-reconcilers --bench scheduler` (or `hack/bench.sh`);
//! `-- throughput` or `-- idle` runs one phase only.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod,
    ResourceQuota, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio_util::sync::CancellationToken;

const NODES: usize = 1_000;
const PODS: usize = 10_000;
const WINDOW: Duration = Duration::from_secs(5);
const IDLE: Duration = Duration::from_secs(30);
const IDLE_NODES: usize = 10;
const DEPLOYMENTS: usize = 100;
const REPLICAS: i32 = 2;
/// How long the cluster gets to settle once every Deployment is available.
const SETTLE: Duration = Duration::from_secs(15);

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

/// User plus system CPU time of this process (API server, scheduler and client alike).
fn cpu_time() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).unwrap();
    let duration = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    duration(usage.user_time()) + duration(usage.system_time())
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
    // Like `cargo bench -- FILTER`: only the phases whose name contains a given filter.
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    if wanted("throughput") {
        runtime.block_on(throughput());
    }
    if wanted("idle") {
        runtime.block_on(idle());
    }
}

async fn start_server(dir: &std::path::Path) -> rudder_apiserver::Running {
    let mut config = rudder_apiserver::Config::new(dir);
    config.bind_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.secure_port = 0;
    config.node_name = "bench-node".into();
    rudder_apiserver::start(config).await.unwrap()
}

async fn throughput() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
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
        load_balancer_pool: Default::default(),
        signing_ca: None,
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
    let cpu_begin = cpu_time();
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
    // CPU over the same window as the throughput: robust where wall-clock time is not.
    let cpu = cpu_time() - cpu_begin;
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
    println!(
        "  process CPU (user+sys) over that time: {:.1} s = {:.2} ms per pod ({:.2} cores busy)",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e3 / PODS as f64,
        cpu.as_secs_f64() / total.as_secs_f64()
    );

    // The idle cluster: only node Lease renewals (every 10 s per node) should write.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = revision(&admin).await;
    let at = Instant::now();
    tokio::time::sleep(IDLE).await;
    let writes = revision(&admin).await - before;
    println!(
        "idle cluster ({NODES} nodes, {PODS} bound pods, scheduler and node lifecycle only): \
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

fn deployment(i: usize) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("app-{i:03}")},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": format!("app-{i:03}")}},
            "template": {
                "metadata": {"labels": {"app": format!("app-{i:03}")}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
            },
        },
    }))
    .unwrap()
}

/// Writes seen by watches: resource (Leases by namespace) and revision.
type Counts = Arc<Mutex<Vec<(String, u64)>>>;

/// Counts the events of a watch of every `K` from `version` on into `counts`.
fn count_writes<K>(client: &kube::Client, plural: &str, version: &str, counts: &Counts)
where
    K: kube::Resource<DynamicType = ()> + Clone + Debug + serde::de::DeserializeOwned + Send + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let plural = plural.to_owned();
    let version = version.to_owned();
    let counts = counts.clone();
    tokio::spawn(async move {
        let mut stream = api
            .watch(&WatchParams::default().timeout(290), &version)
            .await
            .unwrap()
            .boxed();
        while let Some(event) = stream.next().await {
            let Ok(WatchEvent::Added(object) | WatchEvent::Modified(object) | WatchEvent::Deleted(object)) =
                event
            else {
                continue;
            };
            let key = match object.meta().namespace.as_deref() {
                Some(ns) if plural == "leases" => format!("leases ({ns})"),
                _ => plural.clone(),
            };
            let revision = object
                .meta()
                .resource_version
                .as_deref()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            counts.lock().unwrap().push((key, revision));
        }
    });
}

/// The idle cluster: every controller, 100 available Deployments, writes over [`IDLE`].
async fn idle() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path()).await;
    let admin = kube::Client::try_from(client_config(server.kubeconfig()).await).unwrap();
    let stop = CancellationToken::new();
    let sim = rudder_noded::simulated::SimulatedNodes::start(
        admin.clone(),
        rudder_noded::simulated::Config {
            count: IDLE_NODES,
            ..Default::default()
        },
        stop.clone(),
    )
    .await
    .unwrap();
    let reconcilers = rudder_reconcilers::Config {
        client: client_config(&server.component_kubeconfig("controller-manager")).await,
        root_ca_pem: std::fs::read_to_string(server.ca_path()).unwrap(),
        controllers: vec!["*".into()],
        leader_elect: false,
        identity: "bench".into(),
        load_balancer_pool: Default::default(),
        signing_ca: None,
    };
    let controllers = tokio::spawn(rudder_reconcilers::run(
        reconcilers,
        stop.clone().cancelled_owned(),
    ));

    let started = Instant::now();
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "default");
    futures_util::stream::iter(0..DEPLOYMENTS)
        .map(|i| {
            let deployments = deployments.clone();
            async move {
                deployments
                    .create(&PostParams::default(), &deployment(i))
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(8)
        .for_each(|_| async {})
        .await;
    loop {
        let list = deployments.list(&ListParams::default()).await.unwrap().items;
        let available = list
            .iter()
            .filter(|d| {
                let status = d.status.clone().unwrap_or_default();
                status.observed_generation == d.metadata.generation
                    && status.available_replicas == Some(REPLICAS)
                    && status.updated_replicas == Some(REPLICAS)
                    && status.replicas == Some(REPLICAS)
            })
            .count();
        if available == DEPLOYMENTS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "only {available} of {DEPLOYMENTS} Deployments available after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!(
        "{DEPLOYMENTS} Deployments of {REPLICAS} replicas available on {IDLE_NODES} simulated nodes \
         after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(SETTLE).await;

    let before = revision(&admin).await;
    let version = before.to_string();
    let counts: Counts = Arc::default();
    let c = &admin;
    count_writes::<Pod>(c, "pods", &version, &counts);
    count_writes::<Node>(c, "nodes", &version, &counts);
    count_writes::<Lease>(c, "leases", &version, &counts);
    count_writes::<Deployment>(c, "deployments", &version, &counts);
    count_writes::<ReplicaSet>(c, "replicasets", &version, &counts);
    count_writes::<StatefulSet>(c, "statefulsets", &version, &counts);
    count_writes::<DaemonSet>(c, "daemonsets", &version, &counts);
    count_writes::<ControllerRevision>(c, "controllerrevisions", &version, &counts);
    count_writes::<Job>(c, "jobs", &version, &counts);
    count_writes::<CronJob>(c, "cronjobs", &version, &counts);
    count_writes::<Endpoints>(c, "endpoints", &version, &counts);
    count_writes::<EndpointSlice>(c, "endpointslices", &version, &counts);
    count_writes::<Service>(c, "services", &version, &counts);
    count_writes::<Event>(c, "events", &version, &counts);
    count_writes::<ConfigMap>(c, "configmaps", &version, &counts);
    count_writes::<Secret>(c, "secrets", &version, &counts);
    count_writes::<ServiceAccount>(c, "serviceaccounts", &version, &counts);
    count_writes::<Namespace>(c, "namespaces", &version, &counts);
    count_writes::<ResourceQuota>(c, "resourcequotas", &version, &counts);
    count_writes::<PodDisruptionBudget>(c, "poddisruptionbudgets", &version, &counts);
    count_writes::<PersistentVolume>(c, "persistentvolumes", &version, &counts);
    count_writes::<PersistentVolumeClaim>(c, "persistentvolumeclaims", &version, &counts);
    count_writes::<ClusterRole>(c, "clusterroles", &version, &counts);
    let at = Instant::now();
    tokio::time::sleep(IDLE).await;
    let after = revision(&admin).await;
    let seconds = at.elapsed().as_secs_f64();
    // Let the watches deliver the window's last events before reading their counts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let writes = after - before;
    let mut by_resource = BTreeMap::<String, u64>::new();
    for (resource, revision) in counts.lock().unwrap().iter() {
        if *revision > before && *revision <= after {
            *by_resource.entry(resource.clone()).or_default() += 1;
        }
    }
    let counts = by_resource;
    let leases = counts.get("leases (kube-node-lease)").copied().unwrap_or(0);
    println!(
        "idle cluster ({IDLE_NODES} nodes, {DEPLOYMENTS} Deployments, every controller): \
         {:.1} store writes/s over {} s ({writes} writes; node Lease renewals {leases}, \
         {:.1}/s expected)",
        writes as f64 / seconds,
        IDLE.as_secs(),
        IDLE_NODES as f64 / 10.0
    );
    let seen: u64 = counts.values().sum();
    for (resource, count) in &counts {
        println!("  {resource}: {count} ({:.2}/s)", *count as f64 / seconds);
    }
    if seen < writes {
        println!("  not seen by the watches above: {}", writes - seen);
    }

    stop.cancel();
    sim.join().await;
    let _ = controllers.await;
    server.shutdown();
    server.wait().await.unwrap();
}
