//! Helpers shared by the storage integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::time::Duration;

use futures_util::StreamExt;
use rudder_storage::{Event, Options, Store, Watch, WatchItem};

pub fn open(dir: &tempfile::TempDir) -> Store {
    open_with(dir, Options::default())
}

pub fn open_with(dir: &tempfile::TempDir, options: Options) -> Store {
    Store::open(dir.path().join("state.redb"), options).expect("open store")
}

/// The next event of a watch, failing the test after a few seconds.
pub async fn next_event(watch: &mut Watch) -> std::sync::Arc<Event> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), watch.next()).await {
            Ok(Some(Ok(WatchItem::Event(event)))) => return event,
            Ok(Some(Ok(WatchItem::Progress(_)))) => continue,
            Ok(Some(Err(err))) => panic!("watch failed: {err}"),
            Ok(None) => panic!("watch ended"),
            Err(_) => panic!("no event within 10s"),
        }
    }
}

/// Asserts that nothing arrives on the watch for a short while.
pub async fn assert_quiet(watch: &mut Watch) {
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(200), watch.next()).await {
        panic!("unexpected watch item {item:?}");
    }
}
