//! Watches: history replay followed by live events, in order, with no gaps and no duplicates.
//!
//! The committer publishes every committed event into the [`Hub`], a window of the most recent
//! events shared by all watchers, and then advances the head revision. A watcher is a cursor
//! (the next revision it owes its consumer): it replays older history from the database, then
//! reads the window. It never copies events into per-watcher queues, so a slow consumer costs
//! nothing until it falls out of the window; then it is closed with
//! [`StorageError::TooSlow`] and its client relists. Events are never silently skipped.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use redb::{Database, ReadableDatabase};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::codec;
use crate::{EVENTS, Event, META, META_COMPACTED, Result, StorageError};

/// How many events a watcher takes from the window or the database at a time.
const CHUNK: usize = 1024;

/// Options of one watch.
#[derive(Clone, Copy, Debug, Default)]
pub struct WatchOptions {
    /// When set, a watcher that has delivered nothing for this long reports
    /// [`WatchItem::Progress`] with the revision it has caught up to.
    pub progress_interval: Option<Duration>,
}

/// What a watch yields.
#[derive(Clone, Debug)]
pub enum WatchItem {
    /// A change to a watched key.
    Event(Arc<Event>),
    /// Every event up to and including this revision has been delivered.
    Progress(u64),
}

/// The window of recent events shared by all watchers.
pub(crate) struct Hub {
    window: RwLock<Window>,
    capacity: usize,
    watchers: Arc<AtomicUsize>,
}

struct Window {
    /// The revision of `events[0]` (revisions are dense: one event per revision).
    first: u64,
    events: VecDeque<Arc<Event>>,
}

/// The result of reading the window.
enum Collected {
    /// Everything up to `head` was scanned (or a chunk of it); the cursor moves to this value.
    Next(u64),
    /// The cursor is older than the window.
    Evicted,
}

impl Hub {
    pub(crate) fn new(capacity: usize, revision: u64) -> Self {
        Hub {
            window: RwLock::new(Window {
                first: revision + 1,
                events: VecDeque::new(),
            }),
            capacity: capacity.max(1),
            watchers: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub(crate) fn watchers(&self) -> usize {
        self.watchers.load(Ordering::Relaxed)
    }

    /// Appends freshly committed events (in revision order) and trims the window.
    pub(crate) fn publish(&self, events: Vec<Arc<Event>>) {
        let Ok(mut window) = self.window.write() else {
            return;
        };
        for event in events {
            if window.events.is_empty() {
                window.first = event.revision;
            }
            window.events.push_back(event);
        }
        while window.events.len() > self.capacity {
            window.events.pop_front();
            window.first += 1;
        }
    }

    /// Copies the events in `[next, head]` under `prefix` into `out`, at most one chunk.
    fn collect(&self, prefix: &str, next: u64, head: u64, out: &mut VecDeque<Arc<Event>>) -> Collected {
        let Ok(window) = self.window.read() else {
            return Collected::Evicted;
        };
        if next < window.first {
            return Collected::Evicted;
        }
        let start = usize::try_from(next - window.first).unwrap_or(usize::MAX);
        let mut cursor = next;
        for event in window.events.iter().skip(start).take(CHUNK) {
            if event.revision > head {
                break;
            }
            if event.key.starts_with(prefix) {
                out.push_back(event.clone());
            }
            cursor = event.revision + 1;
        }
        Collected::Next(cursor)
    }
}

/// A stream of [`WatchItem`]s; ends after yielding an error.
pub struct Watch {
    stream: Pin<Box<dyn Stream<Item = Result<WatchItem>> + Send>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Stream for Watch {
    type Item = Result<WatchItem>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }
}

struct Cursor {
    prefix: String,
    next: u64,
    head: watch::Receiver<u64>,
    hub: Arc<Hub>,
    db: Arc<Database>,
    pending: VecDeque<Arc<Event>>,
    /// Whether the cursor has reached the window; from then on it must keep up with it.
    live: bool,
    progress_interval: Option<Duration>,
    last_delivery: Instant,
    finished: bool,
    _registration: Registration,
}

/// Counts a watcher as open for as long as it lives.
struct Registration(Arc<AtomicUsize>);

impl Drop for Registration {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Watch {
    pub(crate) fn new(
        prefix: String,
        after: u64,
        options: WatchOptions,
        head: watch::Receiver<u64>,
        hub: Arc<Hub>,
        db: Arc<Database>,
    ) -> Watch {
        hub.watchers.fetch_add(1, Ordering::Relaxed);
        let registration = Registration(hub.watchers.clone());
        // A watch that starts inside the window is live at once: it must keep up from here.
        let live = hub.window.read().is_ok_and(|window| after + 1 >= window.first);
        let cursor = Cursor {
            prefix,
            next: after + 1,
            head,
            hub,
            db,
            pending: VecDeque::new(),
            live,
            progress_interval: options.progress_interval,
            last_delivery: Instant::now(),
            finished: false,
            _registration: registration,
        };
        let stream = futures_util::stream::unfold(cursor, |mut cursor| async move {
            let item = cursor.advance().await?;
            Some((item, cursor))
        });
        Watch {
            stream: Box::pin(stream),
        }
    }
}

impl Cursor {
    async fn advance(&mut self) -> Option<Result<WatchItem>> {
        if self.finished {
            return None;
        }
        let item = self.next_item().await;
        if item.is_err() {
            self.finished = true;
        }
        Some(item)
    }

    async fn next_item(&mut self) -> Result<WatchItem> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                self.last_delivery = Instant::now();
                return Ok(WatchItem::Event(event));
            }
            let head = *self.head.borrow_and_update();
            if self.next > head {
                if let Some(revision) = self.wait_for_more().await? {
                    return Ok(WatchItem::Progress(revision));
                }
                continue;
            }
            match self.hub.collect(&self.prefix, self.next, head, &mut self.pending) {
                Collected::Next(next) => {
                    self.next = next;
                    self.live = true;
                }
                Collected::Evicted if self.live => {
                    return Err(StorageError::TooSlow {
                        window: self.hub.capacity,
                    });
                }
                Collected::Evicted => self.replay(head).await?,
            }
        }
    }

    /// Waits for the head to move. Returns a revision to report as progress when the progress
    /// interval passes first.
    async fn wait_for_more(&mut self) -> Result<Option<u64>> {
        let Some(interval) = self.progress_interval else {
            return self
                .head
                .changed()
                .await
                .map(|()| None)
                .map_err(|_| StorageError::Closed);
        };
        tokio::select! {
            changed = self.head.changed() => changed.map(|()| None).map_err(|_| StorageError::Closed),
            () = tokio::time::sleep_until(self.last_delivery + interval) => {
                self.last_delivery = Instant::now();
                Ok(Some(self.next - 1))
            }
        }
    }

    /// Reads one chunk of history older than the window from the database.
    async fn replay(&mut self, head: u64) -> Result<()> {
        let db = self.db.clone();
        let prefix = self.prefix.clone();
        let from = self.next;
        let (events, next) = tokio::task::spawn_blocking(move || read_history(&db, &prefix, from, head))
            .await
            .map_err(StorageError::io)??;
        self.pending.extend(events);
        self.next = next;
        Ok(())
    }
}

/// Reads the events in `[from, to]` under `prefix`, at most one chunk; returns them and the
/// revision to continue from.
fn read_history(db: &Database, prefix: &str, from: u64, to: u64) -> Result<(Vec<Arc<Event>>, u64)> {
    let txn = db.begin_read()?;
    let compacted = txn
        .open_table(META)?
        .get(META_COMPACTED)?
        .map_or(0, |v| v.value());
    if from <= compacted {
        return Err(StorageError::Expired {
            requested: from - 1,
            compacted,
        });
    }
    let history = txn.open_table(EVENTS)?;
    let mut events = Vec::new();
    let mut next = from;
    for entry in history.range(from..=to)?.take(CHUNK) {
        let (revision, record) = entry?;
        let revision = revision.value();
        if revision != next {
            return Err(StorageError::Corrupt {
                path: "state".into(),
                reason: format!("history has no event for revision {next}"),
            });
        }
        let event = codec::decode_event(revision, record.value()).map_err(|err| StorageError::Corrupt {
            path: "state".into(),
            reason: err.to_string(),
        })?;
        if event.key.starts_with(prefix) {
            events.push(Arc::new(event));
        }
        next = revision + 1;
    }
    Ok((events, next))
}
