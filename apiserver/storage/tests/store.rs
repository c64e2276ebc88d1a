//! Writes, compare-and-swap, revisions and reopening.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::open;
use rudder_storage::{ListOptions, Options, StorageError, Store};

#[tokio::test]
async fn create_get_update_delete_with_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let start = store.current_revision();
    assert_eq!(start, 1, "a new database starts at revision 1");

    let created = store.create("/core/pods/ns/a", b"v1".to_vec()).await.unwrap();
    assert_eq!(created.revision, start + 1);
    assert_eq!(created.create_revision, created.revision);
    assert_eq!(store.current_revision(), created.revision);

    let kv = store.get("/core/pods/ns/a").unwrap().unwrap();
    assert_eq!(kv.value, b"v1");
    assert_eq!(
        (kv.create_revision, kv.mod_revision),
        (created.revision, created.revision)
    );

    let updated = store
        .update("/core/pods/ns/a", b"v2".to_vec(), Some(created.revision))
        .await
        .unwrap();
    assert_eq!(updated.revision, created.revision + 1);
    assert_eq!(updated.create_revision, created.revision);

    let deleted = store.delete("/core/pods/ns/a", None).await.unwrap();
    assert_eq!(deleted.revision, updated.revision + 1);
    assert_eq!(deleted.prev.value, b"v2");
    assert_eq!(deleted.prev.mod_revision, updated.revision);
    assert!(store.get("/core/pods/ns/a").unwrap().is_none());
}

#[tokio::test]
async fn compare_and_swap_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let first = store.create("/k", b"1".to_vec()).await.unwrap();

    let err = store.create("/k", b"again".to_vec()).await.unwrap_err();
    assert!(
        matches!(err, StorageError::AlreadyExists(ref key) if key == "/k"),
        "{err}"
    );

    let second = store
        .update("/k", b"2".to_vec(), Some(first.revision))
        .await
        .unwrap();
    // A writer that read revision `first` lost the race.
    let err = store
        .update("/k", b"stale".to_vec(), Some(first.revision))
        .await
        .unwrap_err();
    match err {
        StorageError::Conflict { expected, actual, .. } => {
            assert_eq!((expected, actual), (first.revision, second.revision));
        }
        other => panic!("expected a conflict, got {other}"),
    }
    let err = store.delete("/k", Some(first.revision)).await.unwrap_err();
    assert!(matches!(err, StorageError::Conflict { .. }), "{err}");
    assert_eq!(
        store.get("/k").unwrap().unwrap().value,
        b"2",
        "failed writes change nothing"
    );
    assert_eq!(
        store.current_revision(),
        second.revision,
        "failed writes use no revision"
    );

    let err = store.update("/missing", b"x".to_vec(), None).await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound(_)), "{err}");
    let err = store.delete("/missing", None).await.unwrap_err();
    assert!(matches!(err, StorageError::NotFound(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_updates_never_lose_an_increment() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.create("/counter", b"0".to_vec()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..20 {
                loop {
                    let kv = store.get("/counter").unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    match store
                        .update(
                            "/counter",
                            (n + 1).to_string().into_bytes(),
                            Some(kv.mod_revision),
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(StorageError::Conflict { .. }) => conflicts += 1,
                        Err(err) => panic!("{err}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for task in tasks {
        conflicts += task.await.unwrap();
    }
    let kv = store.get("/counter").unwrap().unwrap();
    assert_eq!(kv.value, b"320");
    assert!(
        conflicts > 0,
        "16 racing writers must have conflicted at least once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_and_revision_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let last = {
        let store = open(&dir);
        for i in 0..50 {
            store.create(&format!("/r/{i:03}"), vec![i]).await.unwrap();
        }
        store.delete("/r/007", None).await.unwrap().revision
    };
    let store = open(&dir);
    assert_eq!(
        store.current_revision(),
        last,
        "the revision counter is persisted"
    );
    let page = store
        .list(&ListOptions {
            prefix: "/r/",
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.items.len(), 49);
    assert_eq!(page.revision, last);
    let next = store.create("/r/new", vec![]).await.unwrap();
    assert_eq!(next.revision, last + 1, "revisions continue after a restart");
}

#[tokio::test]
async fn a_second_open_of_the_same_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(&dir);
    let err = Store::open(dir.path().join("state.redb"), Options::default()).unwrap_err();
    assert!(matches!(err, StorageError::Locked(_)), "{err}");
}

#[test]
fn foreign_and_corrupt_files_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");

    let text = b"this is somebody's notes file, not a database\n".repeat(100);
    std::fs::write(&path, &text).unwrap();
    let err = Store::open(&path, Options::default()).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        text,
        "a foreign file is never modified"
    );

    // A redb file written by something else.
    std::fs::remove_file(&path).unwrap();
    {
        const OTHER: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("other");
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(OTHER).unwrap().insert("x", 1).unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(&path, Options::default()).unwrap_err();
    assert!(err.to_string().contains("not a rudder database"), "{err}");

    // A rudder database whose pages were damaged.
    std::fs::remove_file(&path).unwrap();
    {
        let store = Store::open(&path, Options::default()).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            for i in 0..200 {
                store.create(&format!("/k/{i}"), vec![7; 300]).await.unwrap();
            }
        });
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 2..] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = Store::open(&path, Options::default()).unwrap_err();
    assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn check_reports_a_closed_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    store.check().unwrap();
    store.close();
    assert!(matches!(store.check(), Err(StorageError::Closed)));
}
