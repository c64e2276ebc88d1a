//! The group-commit thread: the only writer of the database.
//!
//! It drains every queued write into one redb transaction, assigns consecutive revisions,
//! records one history event per write, commits with one fsync, publishes the events to the
//! watch hub and only then acknowledges the writers. Between batches it compacts the history
//! in bounded chunks. It never runs on an async runtime thread: redb blocks.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Instant;

use redb::{Database, ReadableTable, WriteTransaction};
use tokio::sync::{oneshot, watch};

use crate::codec::{self, DecodeError};
use crate::watch::Hub;
use crate::{
    Commit, Deleted, EVENTS, Event, EventKind, META, META_COMPACTED, META_REVISION, OBJECTS, Options, Result,
    StorageError, Written, unix_millis,
};

/// A write requested by a [`crate::Store`].
pub(crate) enum Op {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Option<u64>,
    },
    Delete {
        key: String,
        expected: Option<u64>,
    },
}

/// What a successful write produced.
pub(crate) enum Outcome {
    Written(Written),
    Deleted(Deleted),
}

impl Outcome {
    pub(crate) fn written(self) -> Result<Written> {
        match self {
            Outcome::Written(written) => Ok(written),
            Outcome::Deleted(_) => Err(StorageError::io("unexpected outcome for a write")),
        }
    }

    pub(crate) fn deleted(self) -> Result<Deleted> {
        match self {
            Outcome::Deleted(deleted) => Ok(deleted),
            Outcome::Written(_) => Err(StorageError::io("unexpected outcome for a delete")),
        }
    }
}

/// The committer's inbox.
pub(crate) enum Message {
    Write {
        op: Op,
        reply: oneshot::Sender<Result<Outcome>>,
    },
    Compact {
        upto: u64,
        reply: oneshot::Sender<Result<u64>>,
    },
    Shutdown,
}

type Reply = oneshot::Sender<Result<Outcome>>;

pub(crate) struct Committer {
    db: Arc<Database>,
    inbox: mpsc::Receiver<Message>,
    head: watch::Sender<u64>,
    hub: Arc<Hub>,
    compacted: Arc<AtomicU64>,
    revision: u64,
    options: Options,
    next_compaction: Instant,
}

/// Why a batch failed as a whole.
enum BatchError {
    Storage(StorageError),
    Decode(DecodeError),
}

impl<E: Into<StorageError>> From<E> for BatchError {
    fn from(err: E) -> Self {
        BatchError::Storage(err.into())
    }
}

impl Committer {
    pub(crate) fn new(
        db: Arc<Database>,
        inbox: mpsc::Receiver<Message>,
        head: watch::Sender<u64>,
        hub: Arc<Hub>,
        compacted: Arc<AtomicU64>,
        revision: u64,
        options: Options,
    ) -> Self {
        let next_compaction = Instant::now() + options.compaction_interval;
        Committer {
            db,
            inbox,
            head,
            hub,
            compacted,
            revision,
            options,
            next_compaction,
        }
    }

    pub(crate) fn run(mut self) {
        let mut batch: Vec<(Op, Reply)> = Vec::new();
        // The sizes of the last two batches: how many writers are typically in flight.
        let mut recent = [0usize; 2];
        let mut shutdown = false;
        while !shutdown {
            let wait = self.next_compaction.saturating_duration_since(Instant::now());
            let mut pending = match self.inbox.recv_timeout(wait) {
                Ok(message) => Some(message),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            // Group commit: take everything queued. Writers acknowledged by the previous commit
            // are usually about to write again, so wait a moment for them when the batch is
            // smaller than recent ones: a fuller batch shares one fsync among more writers.
            let target = recent[0].max(recent[1]);
            let gather_until = Instant::now() + self.options.gather_window;
            loop {
                while let Some(message) = pending.take() {
                    match message {
                        Message::Write { op, reply } => batch.push((op, reply)),
                        Message::Compact { upto, reply } => {
                            // Writes queued before the request are committed first.
                            self.commit_batch(&mut batch);
                            let _ = reply.send(self.compact_all(upto));
                        }
                        Message::Shutdown => {
                            shutdown = true;
                            break;
                        }
                    }
                    if batch.len() >= self.options.max_batch {
                        self.commit_batch(&mut batch);
                    }
                    pending = self.inbox.try_recv().ok();
                }
                if shutdown || batch.is_empty() || batch.len() >= target {
                    break;
                }
                let left = gather_until.saturating_duration_since(Instant::now());
                match self.inbox.recv_timeout(left) {
                    Ok(message) if !left.is_zero() => pending = Some(message),
                    Ok(message) => {
                        pending = Some(message);
                        break;
                    }
                    Err(_) => break,
                }
            }
            // A message taken after the gather window closed still belongs to this batch.
            if let Some(Message::Write { op, reply }) = pending.take() {
                batch.push((op, reply));
            }
            if !batch.is_empty() {
                recent = [batch.len(), recent[0]];
            }
            self.commit_batch(&mut batch);
            if Instant::now() >= self.next_compaction {
                self.compact_due();
            }
        }
        // Acknowledge nothing that was not committed: whatever is still queued fails.
        while let Ok(message) = self.inbox.try_recv() {
            match message {
                Message::Write { reply, .. } => {
                    let _ = reply.send(Err(StorageError::Closed));
                }
                Message::Compact { reply, .. } => {
                    let _ = reply.send(Err(StorageError::Closed));
                }
                Message::Shutdown => {}
            }
        }
        tracing::debug!(revision = self.revision, "storage committer stopped");
    }

    /// Commits every write in `batch` in one transaction and answers each writer.
    fn commit_batch(&mut self, batch: &mut Vec<(Op, Reply)>) {
        if batch.is_empty() {
            return;
        }
        let started = Instant::now();
        let writes = batch.len();
        match self.apply(batch) {
            Ok((outcomes, events, revision)) => {
                if !events.is_empty() {
                    if let Some(observer) = &self.options.observer {
                        observer.committed(&Commit {
                            writes: events.len(),
                            revision,
                            duration: started.elapsed(),
                        });
                    }
                    self.revision = revision;
                    self.hub.publish(events);
                    self.head.send_replace(revision);
                }
                for ((_, reply), outcome) in batch.drain(..).zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(err) => {
                let err = match err {
                    BatchError::Storage(err) => err,
                    BatchError::Decode(err) => StorageError::Corrupt {
                        path: "state".into(),
                        reason: err.to_string(),
                    },
                };
                tracing::error!(error = %err, writes, "storage commit failed");
                let message = err.to_string();
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(StorageError::Io(message.clone())));
                }
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn apply(
        &self,
        batch: &[(Op, Reply)],
    ) -> Result<(Vec<Result<Outcome>>, Vec<Arc<Event>>, u64), BatchError> {
        let txn = self.db.begin_write()?;
        let now = unix_millis();
        let mut revision = self.revision;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut events = Vec::new();
        {
            let mut objects = txn.open_table(OBJECTS)?;
            let mut history = txn.open_table(EVENTS)?;
            for (op, _) in batch {
                let (outcome, event) = match op {
                    Op::Create { key, value } => {
                        if objects.get(key.as_str())?.is_some() {
                            (Err(StorageError::AlreadyExists(key.clone())), None)
                        } else {
                            let rev = revision + 1;
                            objects.insert(key.as_str(), codec::encode_object(rev, rev, value).as_slice())?;
                            let event = Event {
                                revision: rev,
                                kind: EventKind::Created,
                                key: key.clone(),
                                value: Some(value.clone()),
                                prev: None,
                                create_revision: rev,
                                prev_mod_revision: 0,
                                committed_at_ms: now,
                            };
                            let written = Written {
                                revision: rev,
                                create_revision: rev,
                            };
                            (Ok(Outcome::Written(written)), Some(event))
                        }
                    }
                    Op::Update { key, value, expected } => match current(&objects, key, *expected)? {
                        Err(err) => (Err(err), None),
                        Ok(prev) => {
                            let rev = revision + 1;
                            let record = codec::encode_object(prev.create_revision, rev, value);
                            objects.insert(key.as_str(), record.as_slice())?;
                            let event = Event {
                                revision: rev,
                                kind: EventKind::Updated,
                                key: key.clone(),
                                value: Some(value.clone()),
                                prev: Some(prev.value),
                                create_revision: prev.create_revision,
                                prev_mod_revision: prev.mod_revision,
                                committed_at_ms: now,
                            };
                            let written = Written {
                                revision: rev,
                                create_revision: prev.create_revision,
                            };
                            (Ok(Outcome::Written(written)), Some(event))
                        }
                    },
                    Op::Delete { key, expected } => match current(&objects, key, *expected)? {
                        Err(err) => (Err(err), None),
                        Ok(prev) => {
                            let rev = revision + 1;
                            objects.remove(key.as_str())?;
                            let event = Event {
                                revision: rev,
                                kind: EventKind::Deleted,
                                key: key.clone(),
                                value: None,
                                prev: Some(prev.value.clone()),
                                create_revision: prev.create_revision,
                                prev_mod_revision: prev.mod_revision,
                                committed_at_ms: now,
                            };
                            (Ok(Outcome::Deleted(Deleted { revision: rev, prev })), Some(event))
                        }
                    },
                };
                if let Some(event) = event {
                    revision = event.revision;
                    history.insert(event.revision, codec::encode_event(&event).as_slice())?;
                    events.push(Arc::new(event));
                }
                outcomes.push(outcome);
            }
            if revision != self.revision {
                txn.open_table(META)?.insert(META_REVISION, revision)?;
            }
        }
        if events.is_empty() {
            txn.abort()?;
        } else {
            txn.commit()?;
        }
        Ok((outcomes, events, revision))
    }

    /// Runs one compaction chunk of history older than the retention period.
    fn compact_due(&mut self) {
        let retention = u64::try_from(self.options.history_retention.as_millis()).unwrap_or(u64::MAX);
        let cutoff = unix_millis().saturating_sub(retention);
        let more = match self.compact_chunk(|_, time| time <= cutoff, u64::MAX) {
            Ok(more) => more,
            Err(err) => {
                tracing::warn!(error = %err, "history compaction failed");
                false
            }
        };
        // A full chunk means there is more to remove: continue right after the next batch.
        self.next_compaction = if more {
            Instant::now()
        } else {
            Instant::now() + self.options.compaction_interval
        };
    }

    /// Removes all history up to and including `upto` (bounded by the current revision).
    fn compact_all(&mut self, upto: u64) -> Result<u64> {
        let upto = upto.min(self.revision);
        while self.compact_chunk(|_, _| true, upto)? {}
        Ok(self.compacted.load(Ordering::Acquire))
    }

    /// Deletes at most one chunk of the oldest events that are at or below `upto` and accepted
    /// by `expired(revision, commit_time)`; advances the compaction point in the same
    /// transaction. Returns whether a full chunk was removed (more may remain).
    fn compact_chunk(&mut self, expired: impl Fn(u64, u64) -> bool, upto: u64) -> Result<bool> {
        let started = Instant::now();
        let from = self.compacted.load(Ordering::Acquire) + 1;
        if from > upto {
            return Ok(false);
        }
        let chunk = self.options.compaction_chunk.max(1);
        let mut txn: WriteTransaction = self.db.begin_write()?;
        // Compaction is redone after a crash, so it need not wait for its own fsync; the next
        // durable commit persists it.
        let _ = txn.set_durability(redb::Durability::None);
        let mut last = None;
        let removed;
        {
            let mut history = txn.open_table(EVENTS)?;
            let mut doomed = Vec::new();
            for entry in history.range(from..=upto)? {
                let (revision, record) = entry?;
                let revision = revision.value();
                let time = codec::event_time(record.value()).map_err(|err| StorageError::Corrupt {
                    path: "state".into(),
                    reason: err.to_string(),
                })?;
                if !expired(revision, time) || doomed.len() >= chunk {
                    break;
                }
                doomed.push(revision);
            }
            for revision in &doomed {
                history.remove(*revision)?;
            }
            removed = doomed.len();
            if let Some(&revision) = doomed.last() {
                last = Some(revision);
            } else if upto != u64::MAX {
                // Explicit compaction of a range with no stored events (already removed).
                last = Some(upto);
            }
            if let Some(point) = last {
                txn.open_table(META)?.insert(META_COMPACTED, point)?;
            }
        }
        match last {
            Some(point) => {
                txn.commit()?;
                self.compacted.store(point, Ordering::Release);
                tracing::debug!(
                    compacted = point,
                    removed,
                    elapsed_ms = started.elapsed().as_millis(),
                    "history compacted"
                );
            }
            None => txn.abort()?,
        }
        Ok(removed >= chunk)
    }
}

/// The current record of `key`, if the compare-and-swap precondition holds.
fn current(
    objects: &redb::Table<'_, &str, &[u8]>,
    key: &str,
    expected: Option<u64>,
) -> std::result::Result<Result<crate::KeyValue>, BatchError> {
    let Some(record) = objects.get(key)? else {
        return Ok(Err(StorageError::NotFound(key.to_owned())));
    };
    let kv = codec::decode_object(key, record.value()).map_err(BatchError::Decode)?;
    if let Some(expected) = expected
        && expected != kv.mod_revision
    {
        return Ok(Err(StorageError::Conflict {
            key: key.to_owned(),
            expected,
            actual: kv.mod_revision,
        }));
    }
    Ok(Ok(kv))
}
