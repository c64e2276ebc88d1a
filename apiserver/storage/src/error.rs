//! The storage engine's error type: one enum, one variant per failure a caller can act on.

use thiserror::Error;

/// Everything the storage engine can fail with.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The key does not exist (get, update or delete of a missing object).
    #[error("key {0:?} not found")]
    NotFound(String),
    /// A create found the key already present.
    #[error("key {0:?} already exists")]
    AlreadyExists(String),
    /// A compare-and-swap failed: the object changed since the caller read it.
    #[error("key {key:?} is at revision {actual}, not {expected}")]
    Conflict {
        /// The key that was written.
        key: String,
        /// The revision the caller expected.
        expected: u64,
        /// The revision the key is actually at.
        actual: u64,
    },
    /// The requested revision is older than the compaction point: its history is gone.
    #[error("revision {requested} has been compacted; the oldest available revision is {compacted}")]
    Expired {
        /// The revision that was asked for.
        requested: u64,
        /// The compaction point: history after this revision is available.
        compacted: u64,
    },
    /// The requested revision is newer than the newest committed revision.
    #[error("revision {requested} is newer than the current revision {current}")]
    TooLargeResourceVersion {
        /// The revision that was asked for.
        requested: u64,
        /// The newest committed revision.
        current: u64,
    },
    /// A watcher fell so far behind live events that it can no longer be served in order; its
    /// client must relist.
    #[error("watcher fell more than {window} events behind and was closed; relist and watch again")]
    TooSlow {
        /// How many events the in-memory window holds.
        window: usize,
    },
    /// Another process has the database file open.
    #[error("database {0} is locked by another process (is another rudder running with this data dir?)")]
    Locked(String),
    /// The file exists but is not a Rudder database, or it is damaged. It is never overwritten.
    #[error("database {path} is corrupt or not a rudder database: {reason}")]
    Corrupt {
        /// The database file.
        path: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The underlying file or database failed.
    #[error("storage I/O error: {0}")]
    Io(String),
    /// The store has been closed.
    #[error("storage is shutting down")]
    Closed,
}

impl StorageError {
    pub(crate) fn io(err: impl std::fmt::Display) -> Self {
        StorageError::Io(err.to_string())
    }
}

macro_rules! io_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StorageError {
            fn from(err: $t) -> Self {
                StorageError::io(err)
            }
        }
    )*};
}

io_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    std::io::Error
);

/// Shorthand for storage results.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
