//! Crash safety: a child process writes concurrently and reports every acknowledgement; it is
//! killed with SIGKILL at random moments; after reopening, every acknowledged write must be
//! there and revisions must only ever move forward.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rudder_storage::{EventKind, ListOptions, Options, StorageError, Store, WatchItem, WatchOptions};

const ROUNDS: u32 = 24;
const WRITERS: u32 = 16;
const CHILD_ENV: &str = "RUDDER_STORAGE_CRASH_CHILD";

/// One acknowledged write, as the child reported it.
#[derive(Debug)]
struct Ack {
    key: String,
    revision: u64,
    value: u64,
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut last_revision = 0;
    let mut total_acks = 0;
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_writer_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{}|{round}", path.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait until the child writes, then let it run for a random while before killing it.
        let mut acks = Vec::new();
        let started = Instant::now();
        let mut kill_at = None;
        while kill_at.is_none_or(|at| Instant::now() < at) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "child made no progress"
            );
            if let Ok(line) = lines.recv_timeout(Duration::from_millis(5))
                && let Some(ack) = parse_ack(&line)
            {
                if kill_at.is_none() {
                    seed = xorshift(seed);
                    kill_at = Some(Instant::now() + Duration::from_millis(20 + seed % 250));
                }
                acks.push(ack);
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        // Acknowledgements already written to the pipe before the kill count too.
        acks.extend(lines.try_iter().filter_map(|line| parse_ack(&line)));
        assert!(!acks.is_empty(), "round {round}: the child acknowledged nothing");
        total_acks += acks.len();

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(verify(&path, round, &acks, &mut last_revision));
    }
    eprintln!("crash test: {ROUNDS} rounds, {total_acks} acknowledged writes verified");
}

async fn verify(path: &std::path::Path, round: u32, acks: &[Ack], last_revision: &mut u64) {
    let store = Store::open(path, Options::default()).unwrap();
    let current = store.current_revision();
    let max_acked = acks.iter().map(|ack| ack.revision).max().unwrap();
    assert!(
        current >= max_acked,
        "round {round}: revision {current} is behind acknowledged {max_acked}"
    );
    assert!(
        current >= *last_revision,
        "round {round}: revision went back from {last_revision} to {current}"
    );

    let mut latest: HashMap<&str, &Ack> = HashMap::new();
    for ack in acks {
        let entry = latest.entry(ack.key.as_str()).or_insert(ack);
        if ack.revision > entry.revision {
            *entry = ack;
        }
    }
    for ack in latest.values() {
        let kv = store
            .get(&ack.key)
            .unwrap()
            .unwrap_or_else(|| panic!("round {round}: acknowledged {} is missing", ack.key));
        assert!(
            kv.mod_revision >= ack.revision,
            "round {round}: {} went back",
            ack.key
        );
        let value: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
        assert!(
            value >= ack.value,
            "round {round}: {} lost an acknowledged update",
            ack.key
        );
    }
    let created = store
        .list(&ListOptions {
            prefix: &format!("/crash/{round}/"),
            ..Default::default()
        })
        .unwrap();
    for ack in acks.iter().filter(|ack| ack.key.starts_with("/crash/")) {
        assert!(
            created
                .items
                .iter()
                .any(|kv| kv.key == ack.key && kv.mod_revision == ack.revision)
        );
    }

    // The history of the round is dense and in order: one event per revision.
    if *last_revision > store.compacted_revision() {
        let mut watch = store.watch("/", *last_revision, WatchOptions::default()).unwrap();
        let mut expected = *last_revision + 1;
        while expected <= current {
            match watch.next().await {
                Some(Ok(WatchItem::Event(event))) => {
                    assert_eq!(event.revision, expected, "round {round}: history has a gap");
                    assert_ne!(event.kind, EventKind::Deleted);
                    expected += 1;
                }
                other => panic!("round {round}: unexpected {other:?}"),
            }
        }
    }
    // A write after recovery continues the revision sequence.
    let next = store
        .create(&format!("/after/{round}"), b"0".to_vec())
        .await
        .unwrap();
    assert_eq!(next.revision, current + 1);
    *last_revision = next.revision;
    store.close();
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut parts = line.strip_prefix("ack ")?.split(' ');
    Some(Ack {
        key: parts.next()?.to_owned(),
        revision: parts.next()?.parse().ok()?,
        value: parts.next()?.parse().ok()?,
    })
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// The child side: writes until killed. Run only by `acknowledged_writes_survive_sigkill`.
#[test]
#[ignore = "child process of acknowledged_writes_survive_sigkill"]
fn crash_writer_child() {
    let spec = std::env::var(CHILD_ENV).expect("run by the crash test");
    let (path, round) = spec.rsplit_once('|').unwrap();
    let round: u32 = round.parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(path, Options::default()).unwrap();
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let store = store.clone();
            writers.push(tokio::spawn(async move {
                let counter = format!("/counter/{writer}");
                let mut n = 0u64;
                loop {
                    n += 1;
                    // Alternate fresh keys with compare-and-swap updates of a long-lived key.
                    let (key, written) = if n.is_multiple_of(2) {
                        let key = format!("/crash/{round}/{writer}/{n}");
                        let written = store.create(&key, n.to_string().into_bytes()).await;
                        (key, written)
                    } else {
                        let expected = match store.get(&counter).unwrap() {
                            Some(kv) => Some(kv.mod_revision),
                            None => match store.create(&counter, b"0".to_vec()).await {
                                Ok(w) => Some(w.revision),
                                Err(StorageError::AlreadyExists(_)) => continue,
                                Err(err) => panic!("{err}"),
                            },
                        };
                        let written = store.update(&counter, n.to_string().into_bytes(), expected).await;
                        (counter.clone(), written)
                    };
                    let written = written.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {key} {} {n}", written.revision).unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        // The writers never finish: the parent kills this process.
        futures_util::future::join_all(writers).await;
    });
}
