//! API benchmark over real HTTPS clients (kube::Client): ConfigMap creates/s at concurrency
//! 1, 8 and 32; GET p50/p99 at concurrency 32, typed and as raw JSON and protobuf responses;
//! LIST of 10,000 objects in pages of 500 and unpaginated, typed and as raw JSON, protobuf and
//! Table (`kubectl get`) responses; watch event latency with 100 watchers.
//!
//! Run with `cargo bench -p rudder-apiserver --bench api` (or `hack/bench.sh`).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::Mutex;

const RUN: Duration = Duration::from_secs(3);
const LIST_OBJECTS: usize = 10_000;
const WATCHERS: usize = 100;
const WATCH_EVENTS: usize = 300;

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"bench": "yes"}},
        "data": {"payload": "x".repeat(512)},
    }))
    .unwrap()
}

/// The response forms compared: name and `Accept`.
const FORMS: [(&str, &str); 3] = [
    ("JSON", "application/json"),
    ("protobuf", "application/vnd.kubernetes.protobuf"),
    ("Table", "application/json;as=Table;v=v1;g=meta.k8s.io"),
];

/// A GET of `path` with `accept`, its body read whole: (body length, `metadata.continue` for
/// JSON bodies). The body is not decoded: this measures the server and the transfer.
async fn raw_get(client: &kube::Client, path: &str, accept: &str) -> (usize, Option<String>) {
    let request = http::Request::get(path)
        .header(http::header::ACCEPT, accept)
        .body(kube::client::Body::empty())
        .unwrap();
    let response = client.send(request).await.unwrap();
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let token = if accept.starts_with("application/json") {
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        value["metadata"]["continue"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    } else {
        None
    };
    (body.len(), token)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0
}

/// (sum, count) of the server's create request durations and of its storage commits.
async fn server_times(client: &kube::Client) -> ((f64, f64), (f64, f64)) {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
        .await
        .unwrap();
    let mut create = (0.0, 0.0);
    let mut commit = (0.0, 0.0);
    for line in text.lines() {
        let value = || {
            line.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        if line.starts_with("apiserver_request_duration_seconds_sum{verb=\"CREATE\"")
            && line.contains("resource=\"configmaps\"")
        {
            create.0 += value();
        } else if line.starts_with("apiserver_request_duration_seconds_count{verb=\"CREATE\"")
            && line.contains("resource=\"configmaps\"")
        {
            create.1 += value();
        } else if line.starts_with("rudder_storage_commit_duration_seconds_sum") {
            commit.0 = value();
        } else if line.starts_with("rudder_storage_commit_duration_seconds_count") {
            commit.1 = value();
        }
    }
    (create, commit)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
    let running = rudder_apiserver::start(config).await.unwrap();
    let kubeconfig = Kubeconfig::read_from(running.kubeconfig()).unwrap();
    let mut client_config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    client_config.default_retry = false;
    let client = kube::Client::try_from(client_config).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    println!(
        "rudder API benchmark over HTTPS ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    for (base, concurrency) in [1, 8, 32].into_iter().enumerate() {
        let (server_before, commits_before) = server_times(&client).await;
        let started = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|w| {
                let api = api.clone();
                tokio::spawn(async move {
                    let mut n = 0;
                    while started.elapsed() < RUN {
                        api.create(&PostParams::default(), &configmap(&format!("c{base}-{w}-{n}")))
                            .await
                            .unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        let (server_after, commits_after) = server_times(&client).await;
        println!(
            "ConfigMap creates, concurrency {concurrency:>2}: {:>7.0} creates/s (server time {:.2} ms per create, of which storage commit {:.2} ms)",
            total as f64 / started.elapsed().as_secs_f64(),
            (server_after.0 - server_before.0) * 1000.0 / (server_after.1 - server_before.1).max(1.0),
            (commits_after.0 - commits_before.0) * 1000.0 / (commits_after.1 - commits_before.1).max(1.0),
        );
    }

    // GET latency at concurrency 32 over the objects created above.
    let names: Vec<String> = api
        .list(&ListParams::default().limit(200))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    let names = Arc::new(names);
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|w| {
            let api = api.clone();
            let names = names.clone();
            let latencies = latencies.clone();
            tokio::spawn(async move {
                let mut local = Vec::new();
                let mut i = w;
                while started.elapsed() < RUN {
                    let t = Instant::now();
                    api.get(&names[i % names.len()]).await.unwrap();
                    local.push(t.elapsed());
                    i += 32;
                }
                latencies.lock().await.extend(local);
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let mut latencies = latencies.lock().await.clone();
    latencies.sort();
    println!(
        "GET, concurrency 32: {:.0} gets/s, p50 {:.2} ms, p99 {:.2} ms",
        latencies.len() as f64 / started.elapsed().as_secs_f64(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    for (form, accept) in &FORMS[..2] {
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let tasks: Vec<_> = (0..32)
            .map(|w| {
                let client = client.clone();
                let names = names.clone();
                let latencies = latencies.clone();
                tokio::spawn(async move {
                    let mut local = Vec::new();
                    let mut i = w;
                    while started.elapsed() < RUN {
                        let path =
                            format!("/api/v1/namespaces/default/configmaps/{}", names[i % names.len()]);
                        let t = Instant::now();
                        raw_get(&client, &path, accept).await;
                        local.push(t.elapsed());
                        i += 32;
                    }
                    latencies.lock().await.extend(local);
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let mut latencies = latencies.lock().await.clone();
        latencies.sort();
        println!(
            "GET {form} (raw), concurrency 32: {:.0} gets/s, p50 {:.2} ms, p99 {:.2} ms",
            latencies.len() as f64 / started.elapsed().as_secs_f64(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
    }

    // LIST of 10k objects in their own namespace.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "list"}})).unwrap(),
        )
        .await
        .unwrap();
    let list_api: Api<ConfigMap> = Api::namespaced(client.clone(), "list");
    let tasks: Vec<_> = (0..32)
        .map(|w| {
            let api = list_api.clone();
            tokio::spawn(async move {
                for i in (w..LIST_OBJECTS).step_by(32) {
                    api.create(&PostParams::default(), &configmap(&format!("item-{i:05}")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for (label, limit) in [
        ("LIST 10k objects, pages of 500", Some(500)),
        ("LIST 10k objects, unpaginated", None),
    ] {
        let mut samples = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let mut params = ListParams::default();
            if let Some(limit) = limit {
                params = params.limit(limit);
            }
            let mut count = 0;
            loop {
                let page = list_api.list(&params).await.unwrap();
                count += page.items.len();
                match page.metadata.continue_ {
                    Some(token) if !token.is_empty() => params = params.continue_token(&token),
                    _ => break,
                }
            }
            assert_eq!(count, LIST_OBJECTS);
            samples.push(started.elapsed());
        }
        samples.sort();
        println!(
            "{label}: median {:.0} ms",
            samples[samples.len() / 2].as_secs_f64() * 1000.0
        );
    }
    // The same lists as raw responses in each form. Protobuf pages follow the continue tokens
    // of the JSON pages (the same snapshot), fetched beforehand.
    let base = "/api/v1/namespaces/list/configmaps";
    let mut page_paths = vec![format!("{base}?limit=500")];
    while let (_, Some(token)) = raw_get(&client, page_paths.last().unwrap(), "application/json").await {
        page_paths.push(format!("{base}?limit=500&continue={token}"));
    }
    for (form, accept) in FORMS {
        for (label, paths) in [
            ("pages of 500", page_paths.clone()),
            ("unpaginated", vec![base.to_owned()]),
        ] {
            let mut samples = Vec::new();
            let mut bytes = 0;
            for _ in 0..5 {
                let started = Instant::now();
                bytes = 0;
                for path in &paths {
                    bytes += raw_get(&client, path, accept).await.0;
                }
                samples.push(started.elapsed());
            }
            samples.sort();
            println!(
                "LIST 10k objects, {label}, {form} (raw): median {:.0} ms, {:.1} MB",
                samples[samples.len() / 2].as_secs_f64() * 1000.0,
                bytes as f64 / 1e6
            );
        }
    }

    // Watch latency: from the start of a write to its arrival at each of 100 watchers.
    let watch_api: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-public");
    let start_rv = watch_api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let sent: Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>> = Arc::default();
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let stream = watch_api.watch(&WatchParams::default(), &start_rv).await.unwrap();
        let sent = sent.clone();
        watchers.push(tokio::spawn(async move {
            let mut stream = stream.boxed();
            let mut latencies = Vec::with_capacity(WATCH_EVENTS);
            while latencies.len() < WATCH_EVENTS {
                if let WatchEvent::Added(cm) = stream.try_next().await.unwrap().unwrap() {
                    let now = Instant::now();
                    let name = cm.metadata.name.unwrap();
                    let at = sent.lock().unwrap()[&name];
                    latencies.push(now.saturating_duration_since(at));
                }
            }
            latencies
        }));
    }
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    for i in 0..WATCH_EVENTS {
        ticker.tick().await;
        let name = format!("w{i}");
        sent.lock().unwrap().insert(name.clone(), Instant::now());
        watch_api
            .create(&PostParams::default(), &configmap(&name))
            .await
            .unwrap();
    }
    let mut all = Vec::new();
    for watcher in watchers {
        all.extend(watcher.await.unwrap());
    }
    all.sort();
    println!(
        "watch latency, {WATCHERS} watchers, 100 writes/s (write start to delivery): p50 {:.2} ms, p99 {:.2} ms",
        percentile(&all, 0.5),
        percentile(&all, 0.99)
    );
    running.shutdown();
    running.wait().await.unwrap();
}
