//! Consistent snapshots: lists at a revision and paginated lists across concurrent writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{open, open_with};
use rudder_storage::{ListOptions, Options, StorageError, Store};

fn list_all(store: &Store, prefix: &str, revision: Option<u64>) -> BTreeMap<String, Vec<u8>> {
    let page = store
        .list(&ListOptions {
            prefix,
            revision,
            ..Default::default()
        })
        .unwrap();
    page.items.into_iter().map(|kv| (kv.key, kv.value)).collect()
}

/// Reads the whole prefix in pages of `limit`, writing between pages.
async fn paginate_while_writing(store: &Store, limit: usize) -> (u64, BTreeMap<String, Vec<u8>>) {
    let mut all = BTreeMap::new();
    let mut revision = None;
    let mut after: Option<String> = None;
    let mut round = 0u32;
    loop {
        let page = store
            .list(&ListOptions {
                prefix: "/p/",
                revision,
                start_after: after.as_deref(),
                limit: Some(limit),
                count_remaining: true,
            })
            .unwrap();
        revision.get_or_insert(page.revision);
        assert_eq!(
            page.revision,
            revision.unwrap(),
            "every page reads the first page's snapshot"
        );
        for kv in &page.items {
            assert!(
                kv.mod_revision <= page.revision,
                "no item newer than the snapshot"
            );
            assert!(
                all.insert(kv.key.clone(), kv.value.clone()).is_none(),
                "duplicate {}",
                kv.key
            );
        }
        if !page.more {
            assert_eq!(page.remaining, None);
            break;
        }
        assert!(page.remaining.unwrap() > 0);
        after = page.items.last().map(|kv| kv.key.clone());
        // Change the keyspace behind, inside and ahead of the cursor.
        round += 1;
        store
            .update("/p/000", format!("changed {round}").into_bytes(), None)
            .await
            .unwrap();
        store
            .create(&format!("/p/{:03}a", 10 * round), b"new".to_vec())
            .await
            .unwrap();
        let ahead = format!("/p/{:03}", 95 - round);
        if store.get(&ahead).unwrap().is_some() {
            store.delete(&ahead, None).await.unwrap();
        }
        store
            .update("/p/099", format!("late {round}").into_bytes(), None)
            .await
            .unwrap();
        store
            .create(&format!("/q/{round}"), b"other prefix".to_vec())
            .await
            .unwrap();
    }
    (revision.unwrap(), all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paginated_list_reads_one_snapshot_across_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    for i in 0..100 {
        store
            .create(&format!("/p/{i:03}"), format!("v{i}").into_bytes())
            .await
            .unwrap();
    }
    let before = list_all(&store, "/p/", None);
    assert_eq!(before.len(), 100);

    let (revision, paged) = paginate_while_writing(&store, 7).await;
    assert_eq!(paged, before, "the pages together are exactly the snapshot");
    assert_eq!(list_all(&store, "/p/", Some(revision)), before);
    let now = list_all(&store, "/p/", None);
    assert_ne!(now, before, "the writes did happen");
}

#[tokio::test]
async fn list_at_any_retained_revision() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let mut expected: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut states = vec![(store.current_revision(), expected.clone())];
    for step in 0u32..60 {
        let key = format!("/s/{:02}", step % 9);
        let value = format!("{step}").into_bytes();
        let revision = match (expected.contains_key(&key), step % 4) {
            (false, _) => store.create(&key, value.clone()).await.unwrap().revision,
            (true, 3) => {
                expected.remove(&key);
                states.push((store.delete(&key, None).await.unwrap().revision, expected.clone()));
                continue;
            }
            (true, _) => store.update(&key, value.clone(), None).await.unwrap().revision,
        };
        expected.insert(key, value);
        states.push((revision, expected.clone()));
    }
    for (revision, state) in &states {
        assert_eq!(
            &list_all(&store, "/s/", Some(*revision)),
            state,
            "at revision {revision}"
        );
        // A single-key prefix behaves the same way.
        let one = list_all(&store, "/s/03", Some(*revision));
        assert_eq!(one.get("/s/03"), state.get("/s/03"));
    }
}

#[tokio::test]
async fn revisions_outside_the_retained_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_with(&dir, Options::default());
    for i in 0..10 {
        store.create(&format!("/x/{i}"), vec![]).await.unwrap();
    }
    let current = store.current_revision();
    let err = store
        .list(&ListOptions {
            prefix: "/x/",
            revision: Some(current + 5),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        matches!(err, StorageError::TooLargeResourceVersion { requested, current: c } if requested == current + 5 && c == current)
    );

    let compacted = store.compact(current - 3).await.unwrap();
    assert_eq!(compacted, current - 3);
    assert_eq!(store.compacted_revision(), current - 3);
    let err = store
        .list(&ListOptions {
            prefix: "/x/",
            revision: Some(current - 4),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, StorageError::Expired { .. }), "{err}");
    // The compaction point itself and everything after it still read.
    assert_eq!(list_all(&store, "/x/", Some(current - 3)).len(), 7);
    assert_eq!(list_all(&store, "/x/", None).len(), 10);
}
