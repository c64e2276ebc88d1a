//! A work queue with client-go's guarantees, for the garbage collector's attemptToDelete and
//! attemptToOrphan queues: an item is queued at most once, never handed to two workers at
//! once (re-added while processed, it is queued again when done), and can be re-added after
//! a delay or after its own exponential backoff (5 ms doubling to 1000 s, as client-go's
//! default controller rate limiter). It holds keys only, never objects.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::Notify;

/// The first retry delay after a failure.
const BACKOFF_BASE: Duration = Duration::from_millis(5);
/// The longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(1000);

struct State<T> {
    queue: VecDeque<T>,
    dirty: HashSet<T>,
    processing: HashSet<T>,
    failures: HashMap<T, u32>,
    shut_down: bool,
}

/// The queue.
pub struct WorkQueue<T> {
    state: Mutex<State<T>>,
    ready: Notify,
}

impl<T: Clone + Eq + Hash + Send + 'static> WorkQueue<T> {
    /// An empty queue.
    pub fn new() -> Arc<WorkQueue<T>> {
        Arc::new(WorkQueue {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                dirty: HashSet::new(),
                processing: HashSet::new(),
                failures: HashMap::new(),
                shut_down: false,
            }),
            ready: Notify::new(),
        })
    }

    /// Queues `item` unless it is queued already.
    pub fn add(&self, item: T) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        if state.shut_down || !state.dirty.insert(item.clone()) {
            return;
        }
        if !state.processing.contains(&item) {
            state.queue.push_back(item);
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Queues `item` after `delay`.
    pub fn add_after(self: &Arc<Self>, item: T, delay: Duration) {
        if delay.is_zero() {
            self.add(item);
            return;
        }
        let queue: Weak<WorkQueue<T>> = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(queue) = queue.upgrade() {
                queue.add(item);
            }
        });
    }

    /// Queues `item` after its next backoff delay.
    pub fn add_rate_limited(self: &Arc<Self>, item: T) {
        let delay = {
            let Ok(mut state) = self.state.lock() else {
                return;
            };
            let count = state.failures.entry(item.clone()).or_insert(0);
            *count = count.saturating_add(1);
            BACKOFF_BASE
                .saturating_mul(2u32.saturating_pow(count.saturating_sub(1).min(31)))
                .min(BACKOFF_MAX)
        };
        self.add_after(item, delay);
    }

    /// Resets the backoff of `item`.
    pub fn forget(&self, item: &T) {
        if let Ok(mut state) = self.state.lock() {
            state.failures.remove(item);
        }
    }

    /// The next item, once there is one; `None` after [`shut_down`](Self::shut_down).
    pub async fn get(&self) -> Option<T> {
        loop {
            let notified = self.ready.notified();
            {
                let Ok(mut state) = self.state.lock() else {
                    return None;
                };
                if state.shut_down {
                    return None;
                }
                if let Some(item) = state.queue.pop_front() {
                    state.dirty.remove(&item);
                    state.processing.insert(item.clone());
                    let more = !state.queue.is_empty();
                    drop(state);
                    if more {
                        self.ready.notify_one();
                    }
                    return Some(item);
                }
            }
            notified.await;
        }
    }

    /// Marks `item` processed; queues it again if it was re-added meanwhile.
    pub fn done(&self, item: &T) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.processing.remove(item);
        if state.dirty.contains(item) {
            state.queue.push_back(item.clone());
            drop(state);
            self.ready.notify_one();
        }
    }

    /// Stops handing out items (queued ones are dropped); waiting workers get `None`.
    pub fn shut_down(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.shut_down = true;
        }
        self.ready.notify_waiters();
    }

    /// How many items wait.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.state.lock().map_or(0, |s| s.queue.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedups_and_never_hands_out_an_item_twice_at_once() {
        let queue = WorkQueue::new();
        queue.add("a");
        queue.add("a");
        queue.add("b");
        assert_eq!(queue.len(), 2);
        let first = queue.get().await.unwrap();
        assert_eq!(first, "a");
        // Re-added while processed: not handed out until done.
        queue.add("a");
        assert_eq!(queue.get().await.unwrap(), "b");
        assert_eq!(queue.len(), 0);
        queue.done(&"a");
        assert_eq!(queue.get().await.unwrap(), "a");
        queue.shut_down();
        assert_eq!(queue.get().await, None);
    }

    #[tokio::test]
    async fn rate_limited_items_come_back_after_their_backoff() {
        let queue = WorkQueue::new();
        queue.add_rate_limited("a");
        queue.add_rate_limited("a");
        let started = std::time::Instant::now();
        let item = tokio::time::timeout(Duration::from_secs(5), queue.get())
            .await
            .unwrap();
        assert_eq!(item, Some("a"));
        assert!(started.elapsed() >= Duration::from_millis(4));
        queue.forget(&"a");
        queue.done(&"a");
    }
}
