//! Watch consistency (over ServiceAccounts, whose deletes return the deleted object with the
//! deletion revision): concurrent writers, and watchers started at random retained revisions
//! (during and after the writes), with and without a label selector. Every watcher must
//! observe exactly the committed sequence for its selection: same events, same order, same
//! resourceVersions, nothing missing, nothing extra.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestServer;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

const WRITERS: usize = 4;
const OPS_PER_WRITER: usize = 60;
const NAMES: usize = 12;

/// One committed write.
#[derive(Clone, Debug)]
struct Op {
    revision: u64,
    name: String,
    /// The color label after the write (`None` when the write deleted the object).
    color: Option<String>,
}

/// What a watcher saw or should see: (type, name, resourceVersion).
type Seen = (String, String, u64);

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

async fn write(api: Api<ServiceAccount>, seed: u64, log: Arc<Mutex<Vec<Op>>>) {
    let mut rng = seed | 1;
    for _ in 0..OPS_PER_WRITER {
        let name = format!("obj-{}", xorshift(&mut rng) % NAMES as u64);
        let color = if xorshift(&mut rng).is_multiple_of(2) {
            "red"
        } else {
            "blue"
        };
        let op = match xorshift(&mut rng) % 4 {
            0 => api
                .delete(&name, &DeleteParams::default())
                .await
                .map(|deleted| deleted.left().map(|cm| (cm.resource_version(), None))),
            1 => {
                let cm: ServiceAccount =
                    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"color": color}}}))
                        .unwrap();
                api.create(&PostParams::default(), &cm)
                    .await
                    .map(|cm| Some((cm.resource_version(), Some(color))))
            }
            _ => api
                .patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"labels": {"color": color}}})),
                )
                .await
                .map(|cm| Some((cm.resource_version(), Some(color)))),
        };
        match op {
            Ok(Some((Some(rv), color))) => log.lock().unwrap().push(Op {
                revision: rv.parse().unwrap(),
                name: name.clone(),
                color: color.map(str::to_owned),
            }),
            Ok(_) => panic!("a write returned no resourceVersion"),
            // Races between writers: the object was (not) there.
            Err(kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
            Err(err) => panic!("{err}"),
        }
    }
}

/// The events a watcher from `start` with `selector` (a required color) must see.
fn expected(ops: &[Op], start: u64, selector: Option<&str>) -> Vec<Seen> {
    let mut state: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for op in ops {
        let before = state.get(&op.name).cloned().flatten();
        let after = op.color.clone();
        state.insert(op.name.clone(), after.clone());
        if op.revision <= start {
            continue;
        }
        let selected = |color: &Option<String>| match selector {
            None => true,
            Some(wanted) => color.as_deref() == Some(wanted),
        };
        let existed = before.is_some();
        let (was, is) = (existed && selected(&before), after.is_some() && selected(&after));
        let event = match (was, is) {
            (false, true) => "ADDED",
            (true, true) => "MODIFIED",
            (true, false) => "DELETED",
            (false, false) => continue,
        };
        out.push((event.to_owned(), op.name.clone(), op.revision));
    }
    out
}

async fn watch_until(api: Api<ServiceAccount>, start: u64, selector: Option<String>, last: u64) -> Vec<Seen> {
    let mut params = WatchParams::default();
    if let Some(color) = &selector {
        params = params.labels(&format!("color={color}"));
    }
    let mut stream = api.watch(&params, &start.to_string()).await.unwrap().boxed();
    let mut seen = Vec::new();
    let mut progress = start;
    while progress < last {
        let event = tokio::time::timeout(Duration::from_secs(20), stream.try_next())
            .await
            .unwrap_or_else(|_| panic!("watch from {start} ({selector:?}) stalled at {progress} of {last}"))
            .unwrap()
            .unwrap();
        let (kind, object) = match event {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("watch from {start}: {e:?}"),
        };
        let revision: u64 = object.resource_version().unwrap().parse().unwrap();
        assert!(revision > progress, "out of order: {revision} after {progress}");
        progress = revision;
        seen.push((kind.to_owned(), object.name_any(), revision));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_watcher_sees_exactly_the_committed_sequence() {
    let server = TestServer::start().await;
    let api: Api<ServiceAccount> = Api::namespaced(server.client.clone(), "default");
    let first = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            tokio::spawn(write(
                api.clone(),
                0x9E37_79B9_7F4A_7C15 ^ ((w as u64 + 1) * 7919),
                log.clone(),
            ))
        })
        .collect();
    // Watchers that start while the writes are under way, at the revision of a fresh list.
    let mut live_starts = Vec::new();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let rv = api
            .list(&ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        live_starts.push(rv.parse::<u64>().unwrap());
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let mut ops = log.lock().unwrap().clone();
    ops.sort_by_key(|op| op.revision);
    // A patch that changes nothing is not written: it answers with the revision of the write
    // that made the object what it is, which is already in the log.
    ops.dedup_by_key(|op| op.revision);
    assert!(
        ops.len() > WRITERS * OPS_PER_WRITER / 3,
        "too few writes succeeded: {}",
        ops.len()
    );
    let last = ops.last().unwrap().revision;

    // Watchers at random retained revisions, and at the live starts, with and without selectors.
    let mut rng = 42u64;
    let mut starts = vec![first];
    starts.extend(live_starts);
    for _ in 0..6 {
        let i = (xorshift(&mut rng) % ops.len() as u64) as usize;
        starts.push(ops[i].revision);
    }
    let mut checks = Vec::new();
    for start in starts {
        for selector in [None, Some("red".to_owned())] {
            let want = expected(&ops, start, selector.as_deref());
            let api = api.clone();
            // A watcher must reach the last write even if it filters the last events away.
            let target = want.last().map_or(start, |(_, _, rv)| *rv);
            checks.push(tokio::spawn(async move {
                let got = if target > start {
                    watch_until(api, start, selector.clone(), target).await
                } else {
                    Vec::new()
                };
                assert_eq!(got, want, "watch from {start} with selector {selector:?}");
                got.len()
            }));
        }
    }
    let mut delivered = 0;
    for check in checks {
        delivered += check.await.unwrap();
    }
    assert!(
        delivered > ops.len(),
        "the watchers delivered {delivered} events for {} writes",
        ops.len()
    );
    assert!(last > first);
}
