//! Storage benchmark: durable write throughput, large lists and watch fan-out latency.
//!
//! Run with `cargo bench -p rudder-storage --bench storage` (or `hack/bench.sh`). Prints one
//! line per measurement. Targets on a 2-core machine: at least 10,000 durable writes/s at
//! concurrency 64, and watch delivery p99 under 5 ms with 1,000 watchers.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rudder_storage::{Commit, CommitObserver, ListOptions, Options, Store, WatchItem, WatchOptions};

const WRITE_SECONDS: u64 = 3;
const WATCHERS: usize = 1000;
const WATCH_EVENTS: usize = 500;
const WATCH_RATE_PER_SEC: u64 = 250;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "rudder storage benchmark ({} cores)",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        for concurrency in [1, 8, 64] {
            let dir = tempfile::tempdir().unwrap();
            let stats = Arc::new(BatchStats::default());
            let store = Store::open(
                dir.path().join("state.redb"),
                Options {
                    observer: Some(stats.clone()),
                    ..Options::default()
                },
            )
            .unwrap();
            let (writes, elapsed) = write_load(&store, concurrency, Duration::from_secs(WRITE_SECONDS)).await;
            println!(
                "durable writes, concurrency {concurrency:>2}: {:>8.0} writes/s ({writes} in {:.2}s)",
                writes as f64 / elapsed.as_secs_f64(),
                elapsed.as_secs_f64()
            );
            let (commits, writes, busy) = *stats.0.lock().unwrap();
            println!(
                "    {commits} commits, {:.1} writes per commit, {:.2} ms per commit",
                writes as f64 / commits as f64,
                busy.as_secs_f64() * 1000.0 / commits as f64
            );
        }
        list_bench().await;
        watch_bench().await;
    });
}

/// Creates fresh 512-byte objects from `concurrency` writers for `duration`.
async fn write_load(store: &Store, concurrency: usize, duration: Duration) -> (u64, Duration) {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    store
                        .create(&format!("/bench/pods/ns/w{w}-{n}"), vec![b'x'; 512])
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
    (total, started.elapsed())
}

async fn list_bench() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("state.redb"), Options::default()).unwrap();
    let tasks: Vec<_> = (0..64)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (w..10_000).step_by(64) {
                    store
                        .create(&format!("/bench/pods/ns/pod-{i:05}"), vec![b'x'; 1024])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // Some history after the snapshot, so the old-revision list has something to undo.
    let snapshot = store.current_revision();
    for i in 0..1000 {
        store
            .update(&format!("/bench/pods/ns/pod-{i:05}"), vec![b'y'; 1024], None)
            .await
            .unwrap();
    }
    for (label, revision, limit) in [
        ("list 10k objects (1 KiB), current", None, None),
        ("list 10k objects, 1k changed since", Some(snapshot), None),
        ("list 10k objects in pages of 500", None, Some(500)),
    ] {
        let mut samples = Vec::new();
        for _ in 0..7 {
            let started = Instant::now();
            let mut after: Option<String> = None;
            let mut count = 0;
            let mut at = revision;
            loop {
                let page = store
                    .list(&ListOptions {
                        prefix: "/bench/pods/",
                        revision: at,
                        start_after: after.as_deref(),
                        limit,
                        count_remaining: false,
                    })
                    .unwrap();
                count += page.items.len();
                at = Some(page.revision);
                if !page.more {
                    break;
                }
                after = page.items.last().map(|kv| kv.key.clone());
            }
            assert_eq!(count, 10_000);
            samples.push(started.elapsed());
        }
        samples.sort();
        println!(
            "{label}: median {:.1} ms",
            samples[samples.len() / 2].as_secs_f64() * 1000.0
        );
    }
}

/// Counts commits, writes and time spent committing.
#[derive(Default)]
struct BatchStats(Mutex<(u64, u64, Duration)>);

impl CommitObserver for BatchStats {
    fn committed(&self, commit: &Commit) {
        let mut stats = self.0.lock().unwrap();
        stats.0 += 1;
        stats.1 += commit.writes as u64;
        stats.2 += commit.duration;
    }
}

/// Records when each revision became durable.
#[derive(Default)]
struct CommitTimes(Mutex<HashMap<u64, Instant>>);

impl CommitObserver for CommitTimes {
    fn committed(&self, commit: &Commit) {
        let now = Instant::now();
        let mut times = self.0.lock().unwrap();
        for revision in commit.revision + 1 - commit.writes as u64..=commit.revision {
            times.insert(revision, now);
        }
    }
}

async fn watch_bench() {
    let dir = tempfile::tempdir().unwrap();
    let commits = Arc::new(CommitTimes::default());
    let store = Store::open(
        dir.path().join("state.redb"),
        Options {
            observer: Some(commits.clone()),
            ..Options::default()
        },
    )
    .unwrap();
    let from = store.current_revision();
    let watchers: Vec<_> = (0..WATCHERS)
        .map(|_| {
            let mut watch = store.watch("/bench/", from, WatchOptions::default()).unwrap();
            tokio::spawn(async move {
                let mut received = Vec::with_capacity(WATCH_EVENTS);
                while received.len() < WATCH_EVENTS {
                    match watch.next().await {
                        Some(Ok(WatchItem::Event(event))) => received.push((event.revision, Instant::now())),
                        Some(Ok(WatchItem::Progress(_))) => {}
                        other => panic!("watch failed: {other:?}"),
                    }
                }
                received
            })
        })
        .collect();
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / WATCH_RATE_PER_SEC));
    for i in 0..WATCH_EVENTS {
        ticker.tick().await;
        let store = store.clone();
        tokio::spawn(async move {
            store
                .create(&format!("/bench/events/e{i}"), vec![b'x'; 512])
                .await
                .unwrap()
        });
    }
    let mut latencies = Vec::with_capacity(WATCHERS * WATCH_EVENTS);
    let mut received = Vec::new();
    for watcher in watchers {
        received.push(watcher.await.unwrap());
    }
    let times = commits.0.lock().unwrap();
    for events in received {
        for (revision, at) in events {
            latencies.push(at.saturating_duration_since(times[&revision]));
        }
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    println!(
        "watch delivery, {WATCHERS} watchers, {WATCH_RATE_PER_SEC} writes/s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} deliveries)",
        pct(0.50),
        pct(0.99),
        pct(1.0),
        latencies.len()
    );
}
