//! Watches: order, replay, compaction, slow watchers, progress, shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{assert_quiet, next_event, open, open_with};
use futures_util::StreamExt;
use rudder_storage::{EventKind, Options, StorageError, Store, WatchItem, WatchOptions};

/// A mixed history over two prefixes; returns (revision, key, kind) of every write.
async fn write_history(store: &Store) -> Vec<(u64, String, EventKind)> {
    let mut log = Vec::new();
    for i in 0..30u32 {
        let prefix = if i % 3 == 0 { "/b/" } else { "/a/" };
        let key = format!("{prefix}{}", i % 5);
        let (revision, kind) = if store.get(&key).unwrap().is_none() {
            (
                store.create(&key, vec![i as u8]).await.unwrap().revision,
                EventKind::Created,
            )
        } else if i % 4 == 0 {
            (
                store.delete(&key, None).await.unwrap().revision,
                EventKind::Deleted,
            )
        } else {
            (
                store.update(&key, vec![i as u8], None).await.unwrap().revision,
                EventKind::Updated,
            )
        };
        log.push((revision, key, kind));
    }
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_from_every_retained_revision_then_follow_live() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let start = store.current_revision();
    let log = write_history(&store).await;
    for from in start..=store.current_revision() {
        for prefix in ["/a/", "/b/", "/"] {
            let expected: Vec<_> = log
                .iter()
                .filter(|(rev, key, _)| *rev > from && key.starts_with(prefix))
                .collect();
            let mut watch = store.watch(prefix, from, WatchOptions::default()).unwrap();
            for (revision, key, kind) in expected {
                let event = next_event(&mut watch).await;
                assert_eq!(
                    (event.revision, &event.key, event.kind),
                    (*revision, key, *kind),
                    "from {from}"
                );
            }
            assert_quiet_fast(&mut watch).await;
        }
    }
    // A watch from the current revision follows live writes.
    let mut watch = store
        .watch("/a/", store.current_revision(), WatchOptions::default())
        .unwrap();
    let written = store.create("/a/live", b"x".to_vec()).await.unwrap();
    store.create("/b/ignored", b"x".to_vec()).await.unwrap();
    let event = next_event(&mut watch).await;
    assert_eq!(
        (event.revision, event.key.as_str()),
        (written.revision, "/a/live")
    );
    assert_eq!(event.value.as_deref(), Some(&b"x"[..]));
    assert_quiet(&mut watch).await;
}

async fn assert_quiet_fast(watch: &mut rudder_storage::Watch) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(5), watch.next()).await {
        panic!("unexpected watch item {item:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_previous_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut watch = store
        .watch("/k", store.current_revision(), WatchOptions::default())
        .unwrap();
    let c = store.create("/k", b"1".to_vec()).await.unwrap();
    let u = store.update("/k", b"2".to_vec(), None).await.unwrap();
    let d = store.delete("/k", None).await.unwrap();

    let created = next_event(&mut watch).await;
    assert_eq!(
        (created.kind, created.prev.as_deref()),
        (EventKind::Created, None)
    );
    let updated = next_event(&mut watch).await;
    assert_eq!(updated.kind, EventKind::Updated);
    assert_eq!(updated.prev_object().unwrap().mod_revision, c.revision);
    assert_eq!(updated.object().unwrap().value, b"2");
    let deleted = next_event(&mut watch).await;
    assert_eq!((deleted.kind, deleted.revision), (EventKind::Deleted, d.revision));
    assert!(deleted.object().is_none());
    let last = deleted.prev_object().unwrap();
    assert_eq!(
        (last.value.as_slice(), last.mod_revision, last.create_revision),
        (&b"2"[..], u.revision, c.revision)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_are_seen_in_order_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let from = store.current_revision();
    let watchers: Vec<_> = (0..8)
        .map(|_| store.watch("/c/", from, WatchOptions::default()).unwrap())
        .collect();
    let mut writers = Vec::new();
    for w in 0..16 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..50 {
                acked.push(
                    store
                        .create(&format!("/c/{w}/{i}"), vec![])
                        .await
                        .unwrap()
                        .revision,
                );
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for writer in writers {
        acked.extend(writer.await.unwrap());
    }
    acked.sort_unstable();
    let expected: Vec<u64> = (from + 1..=from + 800).collect();
    assert_eq!(acked, expected, "every write got its own revision, densely");
    for mut watch in watchers {
        let mut seen = Vec::new();
        while seen.len() < 800 {
            seen.push(next_event(&mut watch).await.revision);
        }
        assert_eq!(seen, expected);
    }
}

#[tokio::test]
async fn watching_from_before_the_compaction_point_expires() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..20 {
        store.create(&format!("/e/{i}"), vec![]).await.unwrap();
    }
    let point = store.current_revision() - 5;
    assert_eq!(store.compact(point).await.unwrap(), point);
    let err = store
        .watch("/e/", point - 1, WatchOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, StorageError::Expired { requested, compacted } if requested == point - 1 && compacted == point)
    );
    let mut watch = store.watch("/e/", point, WatchOptions::default()).unwrap();
    for revision in point + 1..=point + 5 {
        assert_eq!(next_event(&mut watch).await.revision, revision);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_that_loses_its_history_to_compaction_expires() {
    let dir = tempfile::tempdir().unwrap();
    // A tiny window forces the replay through the database, one chunk at a time.
    let store = open_with(
        &dir,
        Options {
            watch_window: 4,
            ..Options::default()
        },
    );
    let from = store.current_revision();
    write_many(&store, "/h/", 3000).await;
    let mut watch = store.watch("/h/", from, WatchOptions::default()).unwrap();
    assert_eq!(next_event(&mut watch).await.revision, from + 1);
    store.compact(from + 2500).await.unwrap();
    let mut delivered = 1;
    let result = loop {
        match tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .unwrap()
        {
            Some(Ok(WatchItem::Event(event))) => {
                delivered += 1;
                assert_eq!(event.revision, from + delivered);
            }
            other => break other,
        }
    };
    assert!(
        matches!(result, Some(Err(StorageError::Expired { .. }))),
        "{result:?}"
    );
    assert!(
        delivered < 2500,
        "events after the compaction point were not replayed"
    );
    assert!(watch.next().await.is_none(), "the stream ends after its error");
}

/// Creates `n` keys under `prefix` from 32 concurrent writers.
async fn write_many(store: &Store, prefix: &str, n: usize) {
    let tasks: Vec<_> = (0..32)
        .map(|w| {
            let store = store.clone();
            let prefix = prefix.to_owned();
            tokio::spawn(async move {
                for i in (w..n).step_by(32) {
                    store.create(&format!("{prefix}{i}"), vec![]).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn a_watcher_that_falls_out_of_the_window_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(
        &dir,
        Options {
            watch_window: 16,
            ..Options::default()
        },
    );
    let mut slow = store
        .watch("/s/", store.current_revision(), WatchOptions::default())
        .unwrap();
    let mut fast = store
        .watch("/s/", store.current_revision(), WatchOptions::default())
        .unwrap();
    assert_eq!(store.open_watches(), 2);
    for i in 0..40 {
        store.create(&format!("/s/{i}"), vec![]).await.unwrap();
        next_event(&mut fast).await;
    }
    match slow.next().await {
        Some(Err(StorageError::TooSlow { window })) => assert_eq!(window, 16),
        other => panic!("expected TooSlow, got {other:?}"),
    }
    assert!(slow.next().await.is_none());
    drop(slow);
    assert_eq!(store.open_watches(), 1);
}

#[tokio::test]
async fn progress_reports_the_revision_caught_up_to() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let options = WatchOptions {
        progress_interval: Some(Duration::from_millis(50)),
    };
    let mut watch = store.watch("/mine/", store.current_revision(), options).unwrap();
    let unrelated = store.create("/theirs/x", vec![]).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let item = tokio::time::timeout_at(deadline, watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match item {
            WatchItem::Progress(revision) if revision >= unrelated.revision => break,
            WatchItem::Progress(_) => continue,
            WatchItem::Event(event) => panic!("unexpected event {event:?}"),
        }
    }
}

#[tokio::test]
async fn closing_the_store_ends_watches() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut watch = store
        .watch("/", store.current_revision(), WatchOptions::default())
        .unwrap();
    store.close();
    let item = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert!(matches!(item, Some(Err(StorageError::Closed))), "{item:?}");
    assert!(matches!(
        store.create("/x", vec![]).await,
        Err(StorageError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_compaction_bounds_history_and_file_size() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(
        &dir,
        Options {
            history_retention: Duration::ZERO,
            compaction_interval: Duration::from_millis(20),
            compaction_chunk: 500,
            ..Options::default()
        },
    );
    let path = store.path().to_path_buf();
    for w in 0..32 {
        store.create(&format!("/big/{w}"), vec![0; 2048]).await.unwrap();
    }
    let mut sizes: Vec<usize> = Vec::new();
    let rounds = 10;
    for round in 0..rounds {
        let writers: Vec<_> = (0..32)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..50u8 {
                        store
                            .update(&format!("/big/{w}"), vec![i; 2048], None)
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.await.unwrap();
        }
        // Let the compactor catch up with the round.
        let target = store.current_revision();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while store.compacted_revision() < target - 10 {
            assert!(
                std::time::Instant::now() < deadline,
                "compaction stalled in round {round}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sizes.push(std::fs::metadata(&path).unwrap().len() as usize);
    }
    let err = store.watch("/", 2, WatchOptions::default()).unwrap_err();
    assert!(matches!(err, StorageError::Expired { .. }));
    // Each update stores 2 KiB in the object and 4 KiB (value and previous value) in history.
    let written = rounds * 32 * 50 * 6 * 1024;
    let last = *sizes.last().unwrap();
    assert!(
        last < written / 4,
        "file of {last} bytes after {written} bytes of writes: {sizes:?}"
    );
    assert!(
        sizes[rounds - 1] <= 2 * sizes[rounds / 2],
        "the file keeps growing: {sizes:?}"
    );
}
