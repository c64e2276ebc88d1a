//! Pod startup benchmark on a real node: `rudder server --disable-agent` and `rudder noded` as
//! two processes (the e2e harness starts them), the busybox test image already imported.
//!
//! - Pod startup latency as SIG-scalability's SLI defines it (schedulable stateless pods,
//!   image present, no init containers): from pod creation to all its containers reported
//!   started, observed through a watch; p50/p90/p99 for 100 pods created one per second and
//!   for a burst of 30 created at once. `creationTimestamp` has one-second resolution, so the
//!   start is the moment the bench sends the create request (at most the creation time: the
//!   figures can only be too high); the figures from `creationTimestamp` itself are printed
//!   beside them.
//! - Container create+start: the runtime's part of starting one container, as CRI's
//!   CreateContainer + StartContainer (spec, bundle, shim, libcontainer create and start, until
//!   the shim reports the process running), timed by noded (its `created and started container`
//!   debug line).
//! - noded's resident memory (`VmRSS` of the `rudder noded` process, not its shims) with the
//!   30 burst pods running, split into anonymous and file-backed pages, and its PSS. The
//!   file-backed pages are mostly the `rudder` binary's code, shared with the shims (and here
//!   the server); PSS counts each shared page by its share.
//!
//! Run as root with `cargo bench -p rudder --bench pod_startup` (or `hack/bench.sh`); without
//! root it says it was skipped. `RUDDER_BENCH_NODED_LOG=FILE` keeps noded's log (JSON).

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    dead_code
)]

#[path = "../e2e/harness.rs"]
mod harness;
#[path = "../e2e/node.rs"]
mod node;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher;

const STEADY_PODS: usize = 100;
const BURST_PODS: usize = 30;
/// Targets on the 2-core development VM.
const STARTUP_P99_TARGET: Duration = Duration::from_secs(1);
const RSS_TARGET_KIB: u64 = 30 * 1024;

/// When each pod was asked for and when it was seen with all containers started.
#[derive(Default)]
struct Timings {
    requested: HashMap<String, SystemTime>,
    created: HashMap<String, SystemTime>,
    started: HashMap<String, SystemTime>,
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "labels": {"app": "startup-bench"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": node::IMAGE,
                "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]}],
        },
    }))
    .unwrap()
}

/// All containers reported started (`started` and a running state), as the SLI counts it.
fn all_started(pod: &Pod) -> bool {
    let Some(statuses) = pod.status.as_ref().and_then(|s| s.container_statuses.as_ref()) else {
        return false;
    };
    let wanted = pod.spec.as_ref().map_or(0, |s| s.containers.len());
    statuses.len() == wanted
        && statuses.iter().all(|status| {
            status.started == Some(true) && status.state.as_ref().is_some_and(|s| s.running.is_some())
        })
}

/// Records when each bench pod is first seen with all containers started.
fn watch(api: Api<Pod>, timings: Arc<Mutex<Timings>>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let config = watcher::Config::default().labels("app=startup-bench");
        let mut events = std::pin::pin!(watcher(api, config));
        while let Some(event) = events.next().await {
            let seen = SystemTime::now();
            let pods = match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => vec![pod],
                _ => continue,
            };
            let mut timings = timings.lock().unwrap();
            for pod in pods {
                let name = pod.metadata.name.clone().unwrap_or_default();
                if let Some(created) = &pod.metadata.creation_timestamp {
                    let created = SystemTime::UNIX_EPOCH
                        + Duration::from_nanos(u64::try_from(created.0.as_nanosecond()).unwrap_or(0));
                    timings.created.entry(name.clone()).or_insert(created);
                }
                if all_started(&pod) {
                    timings.started.entry(name).or_insert(seen);
                }
            }
        }
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank, as perf-tests computes its percentiles.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Latencies of `names` from `from` (request or creation time) to observed start.
fn latencies(timings: &Timings, names: &[String], from: &HashMap<String, SystemTime>) -> Vec<Duration> {
    let mut out: Vec<Duration> = names
        .iter()
        .filter_map(|name| {
            let start = from.get(name)?;
            timings.started.get(name)?.duration_since(*start).ok()
        })
        .collect();
    out.sort();
    out
}

fn report(label: &str, timings: &Timings, names: &[String]) -> Duration {
    let requested = latencies(timings, names, &timings.requested);
    let created = latencies(timings, names, &timings.created);
    assert_eq!(requested.len(), names.len(), "{label}: not every pod started");
    let p99 = percentile(&requested, 99.0);
    println!(
        "pod startup, {label}: p50 {}, p90 {}, p99 {}, max {} (from creationTimestamp, 1 s resolution: p50 {}, p90 {}, p99 {}); target p99 < {}: {}",
        ms(percentile(&requested, 50.0)),
        ms(percentile(&requested, 90.0)),
        ms(p99),
        ms(*requested.last().unwrap()),
        ms(percentile(&created, 50.0)),
        ms(percentile(&created, 90.0)),
        ms(percentile(&created, 99.0)),
        ms(STARTUP_P99_TARGET),
        if p99 < STARTUP_P99_TARGET { "met" } else { "MISSED" },
    );
    p99
}

async fn create(api: &Api<Pod>, timings: &Mutex<Timings>, name: String) {
    timings
        .lock()
        .unwrap()
        .requested
        .insert(name.clone(), SystemTime::now());
    api.create(&PostParams::default(), &pod(&name)).await.unwrap();
}

async fn wait_started(timings: &Mutex<Timings>, names: &[String], secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let missing = {
            let timings = timings.lock().unwrap();
            names.iter().filter(|n| !timings.started.contains_key(*n)).count()
        };
        if missing == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{missing} pods not started within {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn delete_all(api: &Api<Pod>) {
    let params = ListParams::default().labels("app=startup-bench");
    api.delete_collection(&DeleteParams::default(), &params)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !api.list_metadata(&params).await.unwrap().items.is_empty() {
        assert!(Instant::now() < deadline, "bench pods not deleted within 120 s");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A memory field of a process in KiB: `VmRSS`, `RssAnon`, `RssFile` from its `status`, `Pss`
/// from its `smaps_rollup`.
fn status_kib(pid: u32, field: &str) -> u64 {
    let file = if field == "Pss" { "smaps_rollup" } else { "status" };
    let status = std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// noded's timings of the runtime's create+start, in the order it logged them.
fn create_start_timings(log: &str) -> Vec<Duration> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["fields"]["message"] == "created and started container")
        .filter_map(|entry| entry["fields"]["elapsed_us"].as_u64())
        .map(Duration::from_micros)
        .collect()
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        println!("pod startup benchmark skipped: running containers needs root");
        return;
    }
    let Some(mut cluster) = node::standalone_node(
        &["--log-format", "json"],
        &[("RUST_LOG", "info,rudder_noded::runtime=debug")],
    ) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let noded_pid = cluster.noded.pid();
    runtime.block_on(async {
        let client = cluster.server.client().await;
        let api: Api<Pod> = Api::namespaced(client, "default");
        let timings = Arc::new(Mutex::new(Timings::default()));
        let watcher = watch(api.clone(), timings.clone());
        // Warm up: one pod, so the image's layers are unpacked before anything is measured.
        let warm = vec!["warm-up".to_owned()];
        create(&api, &timings, warm[0].clone()).await;
        wait_started(&timings, &warm, 60).await;
        delete_all(&api).await;

        let steady: Vec<String> = (0..STEADY_PODS).map(|i| format!("steady-{i:03}")).collect();
        let began = Instant::now();
        for (i, name) in steady.iter().enumerate() {
            tokio::time::sleep_until((began + Duration::from_secs(i as u64)).into()).await;
            let (api, timings, name) = (api.clone(), timings.clone(), name.clone());
            tokio::spawn(async move { create(&api, &timings, name).await });
        }
        wait_started(&timings, &steady, 120).await;
        report("100 pods, one per second", &timings.lock().unwrap(), &steady);
        delete_all(&api).await;

        let burst: Vec<String> = (0..BURST_PODS).map(|i| format!("burst-{i:02}")).collect();
        let creates: Vec<_> = burst
            .iter()
            .map(|name| {
                let (api, timings, name) = (api.clone(), timings.clone(), name.clone());
                tokio::spawn(async move { create(&api, &timings, name).await })
            })
            .collect();
        for task in creates {
            task.await.unwrap();
        }
        wait_started(&timings, &burst, 120).await;
        report("burst of 30", &timings.lock().unwrap(), &burst);

        // Let the node settle (status writes, probes) before reading its memory.
        tokio::time::sleep(Duration::from_secs(10)).await;
        let rss = status_kib(noded_pid, "VmRSS");
        println!(
            "noded RSS with {BURST_PODS} pods running: {:.1} MiB (anonymous {:.1} MiB, file-backed {:.1} MiB; PSS {:.1} MiB); target < {} MiB: {}",
            rss as f64 / 1024.0,
            status_kib(noded_pid, "RssAnon") as f64 / 1024.0,
            status_kib(noded_pid, "RssFile") as f64 / 1024.0,
            status_kib(noded_pid, "Pss") as f64 / 1024.0,
            RSS_TARGET_KIB / 1024,
            if rss < RSS_TARGET_KIB { "met" } else { "MISSED" },
        );
        delete_all(&api).await;
        watcher.abort();
    });
    let log = cluster.noded.stop();
    if let Some(path) = std::env::var_os("RUDDER_BENCH_NODED_LOG") {
        std::fs::write(&path, &log).unwrap();
    }
    let create_start = create_start_timings(&log);
    assert_eq!(
        create_start.len(),
        1 + STEADY_PODS + BURST_PODS,
        "noded logged {} container starts",
        create_start.len()
    );
    // The phases do not overlap, so the log's order splits them: warm-up, steady, burst.
    let phases = [
        ("one per second", &create_start[1..=STEADY_PODS]),
        ("burst", &create_start[1 + STEADY_PODS..]),
    ];
    for (label, timings) in phases {
        let mut sorted = timings.to_vec();
        sorted.sort();
        println!(
            "container create+start (runtime, {label}, {} containers): p50 {}, p90 {}, p99 {}",
            sorted.len(),
            ms(percentile(&sorted, 50.0)),
            ms(percentile(&sorted, 90.0)),
            ms(percentile(&sorted, 99.0)),
        );
    }
}
