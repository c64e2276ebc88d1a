//! Rudder's storage engine: one redb file with the semantics the Kubernetes API needs.
//!
//! It owns revisions, compare-and-swap writes, consistent paginated snapshots and ordered,
//! gap-free watches over an event history that is compacted in the background. Keys are
//! opaque strings (the API server uses `/{group}/{resource}/{namespace}/{name}`) and values
//! opaque bytes: this crate knows nothing of HTTP, resource kinds or serialization formats.
//!
//! * Every successful write gets the next value of one global revision, assigned inside the
//!   redb transaction that persists it; the revision survives restarts and never goes back.
//! * Writes are group-committed: one thread drains all pending writes into one transaction
//!   and one fsync, then acknowledges them. Nothing is acknowledged before it is durable.
//! * Every revision has exactly one event in the history table. Lists at an older revision
//!   undo the history after it; watches replay it, then follow an in-memory window of recent
//!   events fed after each commit.

mod codec;
mod committer;
mod error;
mod snapshot;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, ReadableDatabase, TableDefinition};
use tokio::sync::{oneshot, watch as tokio_watch};

pub use error::{Result, StorageError};
pub use watch::{Watch, WatchItem, WatchOptions};

use committer::{Committer, Message, Op};
use watch::Hub;

/// Current objects: key -> (create revision, mod revision, value).
const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
/// History: revision -> event.
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Engine bookkeeping: format marker, current revision, compaction point.
const META: TableDefinition<&str, u64> = TableDefinition::new("rudder_meta");

const META_FORMAT: &str = "format";
const META_REVISION: &str = "revision";
const META_COMPACTED: &str = "compacted";
/// The on-disk layout version this build reads and writes.
const FORMAT_VERSION: u64 = 1;
/// redb's file signature, checked before redb is allowed to open (and repair) a file.
const REDB_MAGIC: &[u8] = b"redb\x1a\x0a\xa9\x0d\x0a";

/// An object as stored: its key, payload and the revisions that created and last modified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The object's key.
    pub key: String,
    /// The opaque payload.
    pub value: Vec<u8>,
    /// The revision that created the key.
    pub create_revision: u64,
    /// The revision of the last write to the key.
    pub mod_revision: u64,
}

/// What a history event did to its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The key did not exist before.
    Created,
    /// The key existed and was overwritten.
    Updated,
    /// The key was removed.
    Deleted,
}

/// One entry of the history: the write made at `revision`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The revision of the write.
    pub revision: u64,
    /// What the write did.
    pub kind: EventKind,
    /// The key written.
    pub key: String,
    /// The new payload (absent for deletions).
    pub value: Option<Vec<u8>>,
    /// The payload before the write (absent for creations).
    pub prev: Option<Vec<u8>>,
    /// The revision that created the key.
    pub create_revision: u64,
    /// The mod revision before the write (0 for creations).
    pub prev_mod_revision: u64,
    /// When the write was committed, in unix milliseconds.
    pub committed_at_ms: u64,
}

impl Event {
    /// The object after this event, if it still exists.
    pub fn object(&self) -> Option<KeyValue> {
        self.value.as_ref().map(|value| KeyValue {
            key: self.key.clone(),
            value: value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.revision,
        })
    }

    /// The object before this event, if it existed.
    pub fn prev_object(&self) -> Option<KeyValue> {
        self.prev.as_ref().map(|value| KeyValue {
            key: self.key.clone(),
            value: value.clone(),
            create_revision: self.create_revision,
            mod_revision: self.prev_mod_revision,
        })
    }
}

/// The outcome of a successful create or update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// The revision of this write: the object's new mod revision.
    pub revision: u64,
    /// The revision that created the object.
    pub create_revision: u64,
}

/// The outcome of a successful delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deleted {
    /// The revision of the deletion.
    pub revision: u64,
    /// The object as it was just before it was deleted.
    pub prev: KeyValue,
}

/// Receives commit statistics, so the embedding server can export them as metrics.
pub trait CommitObserver: Send + Sync {
    /// A write transaction became durable; called before its events reach watchers.
    fn committed(&self, commit: &Commit);
}

/// Statistics of one durable write transaction.
#[derive(Clone, Copy, Debug)]
pub struct Commit {
    /// How many writes the transaction carried.
    pub writes: usize,
    /// The revision of its last write.
    pub revision: u64,
    /// From the start of the transaction until the data was durable.
    pub duration: Duration,
}

/// Tuning knobs of a [`Store`].
#[derive(Clone)]
pub struct Options {
    /// Keep at least this much event history (watch replay, continue tokens).
    pub history_retention: Duration,
    /// How often the history is compacted.
    pub compaction_interval: Duration,
    /// At most this many events are removed per compaction transaction, so writers never wait
    /// long behind a compaction.
    pub compaction_chunk: usize,
    /// How many recent events are kept in memory for live watchers. A watcher that falls
    /// further behind than this is closed with [`StorageError::TooSlow`].
    pub watch_window: usize,
    /// At most this many writes go into one transaction.
    pub max_batch: usize,
    /// When a batch is smaller than recent ones, wait up to this long for more writers to
    /// join it (zero disables the wait).
    pub gather_window: Duration,
    /// redb's page cache size in bytes.
    pub cache_size: usize,
    /// Optional receiver of commit statistics.
    pub observer: Option<Arc<dyn CommitObserver>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            history_retention: Duration::from_secs(5 * 60),
            compaction_interval: Duration::from_secs(60),
            compaction_chunk: 10_000,
            watch_window: 50_000,
            max_batch: 1024,
            gather_window: Duration::from_micros(250),
            cache_size: 256 << 20,
            observer: None,
        }
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("history_retention", &self.history_retention)
            .field("compaction_interval", &self.compaction_interval)
            .field("compaction_chunk", &self.compaction_chunk)
            .field("watch_window", &self.watch_window)
            .field("max_batch", &self.max_batch)
            .field("gather_window", &self.gather_window)
            .field("cache_size", &self.cache_size)
            .finish_non_exhaustive()
    }
}

/// Which part of a prefix to list, and at which revision.
#[derive(Clone, Debug, Default)]
pub struct ListOptions<'a> {
    /// Only keys starting with this prefix.
    pub prefix: &'a str,
    /// The snapshot to read; `None` reads the current revision.
    pub revision: Option<u64>,
    /// Resume after this key (exclusive), as a continue token does.
    pub start_after: Option<&'a str>,
    /// Return at most this many items; `None` returns all.
    pub limit: Option<usize>,
    /// Count the items after this page (costs a scan of the rest of the prefix).
    pub count_remaining: bool,
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPage {
    /// The items, in key order.
    pub items: Vec<KeyValue>,
    /// The revision of the snapshot the page was read from.
    pub revision: u64,
    /// Whether more items follow this page at that revision.
    pub more: bool,
    /// How many items follow, when counting was asked for and there are more.
    pub remaining: Option<u64>,
}

/// A handle on an open database. Cheap to clone; all clones share one committer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    /// Taken out at close, so the file is released once readers and watches let go of it.
    db: std::sync::RwLock<Option<Arc<Database>>>,
    messages: mpsc::Sender<Message>,
    head: tokio_watch::Receiver<u64>,
    compacted: Arc<AtomicU64>,
    hub: Arc<Hub>,
    committer: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.messages.send(Message::Shutdown);
        if let Some(handle) = self.committer.lock().ok().and_then(|mut slot| slot.take()) {
            let _ = handle.join();
        }
    }
}

impl Store {
    /// Opens the database at `path`, creating it if the file does not exist or is empty.
    ///
    /// An existing file that is not a Rudder database, or is damaged, is refused and never
    /// modified beyond what redb's own crash recovery does to a redb file.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let display = path.display().to_string();
        let corrupt = |reason: String| StorageError::Corrupt {
            path: display.clone(),
            reason,
        };
        let is_new = match std::fs::metadata(&path) {
            Ok(meta) => meta.len() == 0,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => true,
            Err(err) => return Err(StorageError::io(format!("{display}: {err}"))),
        };
        if !is_new {
            check_signature(&path).map_err(&corrupt)?;
        }
        let mut builder = Database::builder();
        builder.set_cache_size(options.cache_size);
        builder.set_check_integrity_on_open(!is_new);
        let opened = if is_new {
            builder.create(&path)
        } else {
            builder.open(&path)
        };
        let db = opened.map_err(|err| match err {
            redb::DatabaseError::DatabaseAlreadyOpen | redb::DatabaseError::LockProtocolMismatch => {
                StorageError::Locked(display.clone())
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(io)) => {
                StorageError::io(format!("{display}: {io}"))
            }
            other => corrupt(other.to_string()),
        })?;
        let (revision, compacted) = if is_new {
            // The database holds secrets: only its owner may read it.
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
            initialize(&db)?
        } else {
            read_meta(&db, &display)?
        };

        let db = Arc::new(db);
        let compacted = Arc::new(AtomicU64::new(compacted));
        let hub = Arc::new(Hub::new(options.watch_window, revision));
        let (head_tx, head) = tokio_watch::channel(revision);
        let (messages, inbox) = mpsc::channel();
        let committer = Committer::new(
            db.clone(),
            inbox,
            head_tx,
            hub.clone(),
            compacted.clone(),
            revision,
            options,
        );
        let handle = std::thread::Builder::new()
            .name("storage-commit".into())
            .spawn(move || committer.run())?;
        tracing::info!(path = %path.display(), revision, "storage opened");
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                db: std::sync::RwLock::new(Some(db)),
                messages,
                head,
                compacted,
                hub,
                committer: Mutex::new(Some(handle)),
            }),
        })
    }

    /// The path of the database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The newest committed revision.
    pub fn current_revision(&self) -> u64 {
        *self.inner.head.borrow()
    }

    /// Waits until `revision` is committed, up to `timeout`; returns whether it is.
    pub async fn wait_for_revision(&self, revision: u64, timeout: Duration) -> bool {
        let mut head = self.inner.head.clone();
        tokio::time::timeout(timeout, head.wait_for(|current| *current >= revision))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// The compaction point: history after this revision is available.
    pub fn compacted_revision(&self) -> u64 {
        self.inner.compacted.load(Ordering::Acquire)
    }

    /// Checks that the database answers reads and that the committer is running.
    pub fn check(&self) -> Result<()> {
        let running = self
            .inner
            .committer
            .lock()
            .map_err(|_| StorageError::Closed)?
            .as_ref()
            .is_some_and(|handle| !handle.is_finished());
        if !running {
            return Err(StorageError::Closed);
        }
        let txn = self.db()?.begin_read()?;
        txn.open_table(META)?;
        Ok(())
    }

    /// How many watches are open.
    pub fn open_watches(&self) -> usize {
        self.inner.hub.watchers()
    }

    /// Creates `key`; fails with [`StorageError::AlreadyExists`] if it exists.
    pub async fn create(&self, key: &str, value: Vec<u8>) -> Result<Written> {
        self.write(Op::Create {
            key: key.to_owned(),
            value,
        })
        .await?
        .written()
    }

    /// Overwrites `key`, which must exist. With `expected`, only if the key's mod revision is
    /// still that revision; otherwise fails with [`StorageError::Conflict`].
    pub async fn update(&self, key: &str, value: Vec<u8>, expected: Option<u64>) -> Result<Written> {
        self.write(Op::Update {
            key: key.to_owned(),
            value,
            expected,
        })
        .await?
        .written()
    }

    /// Deletes `key`, which must exist; with `expected`, only at that mod revision.
    pub async fn delete(&self, key: &str, expected: Option<u64>) -> Result<Deleted> {
        self.write(Op::Delete {
            key: key.to_owned(),
            expected,
        })
        .await?
        .deleted()
    }

    async fn write(&self, op: Op) -> Result<committer::Outcome> {
        let (reply, outcome) = oneshot::channel();
        self.inner
            .messages
            .send(Message::Write { op, reply })
            .map_err(|_| StorageError::Closed)?;
        outcome.await.map_err(|_| StorageError::Closed)?
    }

    /// Reads the current state of `key`.
    pub fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let txn = self.db()?.begin_read()?;
        let objects = txn.open_table(OBJECTS)?;
        let Some(record) = objects.get(key)? else {
            return Ok(None);
        };
        codec::decode_object(key, record.value())
            .map(Some)
            .map_err(|err| self.corrupt(err))
    }

    /// Reads one page of the keys under a prefix, from a consistent snapshot.
    pub fn list(&self, options: &ListOptions<'_>) -> Result<ListPage> {
        snapshot::list(&*self.db()?, options).map_err(|err| match err {
            snapshot::ListError::Storage(err) => err,
            snapshot::ListError::Decode(err) => self.corrupt(err),
        })
    }

    /// Watches the keys under `prefix`, starting with the first event after revision `after`:
    /// the retained history is replayed, then live events follow, in revision order, without
    /// gaps or duplicates.
    pub fn watch(&self, prefix: &str, after: u64, options: WatchOptions) -> Result<Watch> {
        let compacted = self.compacted_revision();
        if after < compacted {
            return Err(StorageError::Expired {
                requested: after,
                compacted,
            });
        }
        Ok(Watch::new(
            prefix.to_owned(),
            after,
            options,
            self.inner.head.clone(),
            self.inner.hub.clone(),
            self.db()?,
        ))
    }

    /// Removes the history up to and including `revision` now, instead of waiting for the
    /// retention period. Returns the new compaction point.
    pub async fn compact(&self, revision: u64) -> Result<u64> {
        let (reply, done) = oneshot::channel();
        self.inner
            .messages
            .send(Message::Compact {
                upto: revision,
                reply,
            })
            .map_err(|_| StorageError::Closed)?;
        done.await.map_err(|_| StorageError::Closed)?
    }

    /// Stops accepting writes, finishes those already queued, and stops the committer. Live
    /// watches end with [`StorageError::Closed`]. The file is released when the last handle
    /// (stores and watches) is dropped.
    pub fn close(&self) {
        let _ = self.inner.messages.send(Message::Shutdown);
        let handle = self.inner.committer.lock().ok().and_then(|mut slot| slot.take());
        if let Some(handle) = handle {
            let _ = handle.join();
        }
        // Release the file as soon as the last reader lets go: reads and watches still in
        // flight hold their own handle and end with `Closed` (watches) or finish (reads).
        let db = self.inner.db.write().ok().and_then(|mut slot| slot.take());
        if let Some(db) = db {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while Arc::strong_count(&db) > 1 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if Arc::strong_count(&db) > 1 {
                tracing::warn!("storage closed while readers still hold the database");
            }
        }
    }

    /// The open database, or `Closed` after [`Store::close`].
    fn db(&self) -> Result<Arc<Database>> {
        self.inner
            .db
            .read()
            .map_err(|_| StorageError::Closed)?
            .clone()
            .ok_or(StorageError::Closed)
    }

    fn corrupt(&self, err: codec::DecodeError) -> StorageError {
        StorageError::Corrupt {
            path: self.inner.path.display().to_string(),
            reason: err.to_string(),
        }
    }
}

fn check_signature(path: &Path) -> std::result::Result<(), String> {
    use std::io::Read;
    let mut header = [0u8; REDB_MAGIC.len()];
    let mut file = std::fs::File::open(path).map_err(|err| err.to_string())?;
    match file.read_exact(&mut header) {
        Ok(()) if header == REDB_MAGIC => Ok(()),
        Ok(()) | Err(_) => Err("the file does not start with redb's signature".into()),
    }
}

/// Writes the format marker and the initial revision into a new database.
fn initialize(db: &Database) -> Result<(u64, u64)> {
    let txn = db.begin_write()?;
    {
        let mut meta = txn.open_table(META)?;
        meta.insert(META_FORMAT, FORMAT_VERSION)?;
        // Like etcd, the first revision is 1, so the first write is revision 2 and "0" stays
        // free for "any revision".
        meta.insert(META_REVISION, 1)?;
        meta.insert(META_COMPACTED, 0)?;
        txn.open_table(OBJECTS)?;
        txn.open_table(EVENTS)?;
    }
    txn.commit()?;
    Ok((1, 0))
}

/// Reads the revision counter and compaction point of an existing database, refusing files
/// that redb can open but that were not written by this engine.
fn read_meta(db: &Database, path: &str) -> Result<(u64, u64)> {
    let foreign = |reason: &str| StorageError::Corrupt {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let txn = db.begin_read()?;
    let meta = match txn.open_table(META) {
        Ok(meta) => meta,
        Err(redb::TableError::TableDoesNotExist(_)) => {
            return Err(foreign("it is a redb file, but not a rudder database"));
        }
        Err(err) => return Err(foreign(&err.to_string())),
    };
    let get = |key: &str| -> Result<Option<u64>> { Ok(meta.get(key)?.map(|v| v.value())) };
    match get(META_FORMAT)? {
        Some(FORMAT_VERSION) => {}
        Some(other) => return Err(foreign(&format!("unsupported format version {other}"))),
        None => return Err(foreign("the format marker is missing")),
    }
    let revision = get(META_REVISION)?.ok_or_else(|| foreign("the revision counter is missing"))?;
    let compacted = get(META_COMPACTED)?.unwrap_or(0);
    Ok((revision, compacted))
}

/// The current unix time in milliseconds.
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
