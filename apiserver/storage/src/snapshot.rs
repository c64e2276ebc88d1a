//! Consistent reads of a key prefix at any retained revision.
//!
//! The objects table holds only the current state. A list at an older revision R reads it in
//! the same read transaction as the history, and undoes the events after R: for every key
//! written after R, the state before its first such event is the state at R. Continue tokens
//! therefore keep reading the snapshot of their first page as long as the history after it is
//! retained, and without holding any transaction open between pages.

use std::collections::BTreeMap;
use std::ops::Bound;

use redb::{Database, ReadableDatabase};

use crate::codec::{self, DecodeError};
use crate::{
    EVENTS, KeyValue, ListOptions, ListPage, META, META_COMPACTED, META_REVISION, OBJECTS, StorageError,
};

pub(crate) enum ListError {
    Storage(StorageError),
    Decode(DecodeError),
}

impl<E: Into<StorageError>> From<E> for ListError {
    fn from(err: E) -> Self {
        ListError::Storage(err.into())
    }
}

pub(crate) fn list(db: &Database, options: &ListOptions<'_>) -> Result<ListPage, ListError> {
    let txn = db.begin_read()?;
    let meta = txn.open_table(META)?;
    let current = meta.get(META_REVISION)?.map_or(0, |v| v.value());
    let compacted = meta.get(META_COMPACTED)?.map_or(0, |v| v.value());
    let revision = options.revision.unwrap_or(current);
    if revision > current {
        return Err(StorageError::TooLargeResourceVersion {
            requested: revision,
            current,
        }
        .into());
    }
    if revision < compacted {
        return Err(StorageError::Expired {
            requested: revision,
            compacted,
        }
        .into());
    }
    let prefix = options.prefix;
    let in_range = |key: &str| key.starts_with(prefix) && options.start_after.is_none_or(|after| key > after);

    // The state at `revision` of every key in range that was written after it.
    let mut undo: BTreeMap<String, Option<KeyValue>> = BTreeMap::new();
    if revision < current {
        let history = txn.open_table(EVENTS)?;
        for entry in history.range(revision + 1..=current)? {
            let (rev, record) = entry?;
            let event = codec::decode_event(rev.value(), record.value()).map_err(ListError::Decode)?;
            if in_range(&event.key) && !undo.contains_key(&event.key) {
                let before = event.prev_object();
                undo.insert(event.key, before);
            }
        }
    }

    let objects = txn.open_table(OBJECTS)?;
    let lower = match options.start_after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    };
    let mut stored = objects
        .range::<&str>((lower, Bound::Unbounded))?
        .map_while(|entry| match entry {
            Ok((key, record)) => key
                .value()
                .starts_with(prefix)
                .then(|| codec::decode_object(key.value(), record.value()).map_err(ListError::Decode)),
            Err(err) => Some(Err(err.into())),
        })
        .peekable();
    let mut undone = undo.into_iter().peekable();

    let limit = options.limit.filter(|&n| n > 0).unwrap_or(usize::MAX);
    let mut items = Vec::new();
    let mut more = false;
    let mut remaining = 0u64;
    loop {
        // Merge both sources in key order; an undone key shadows its stored state.
        let take_undone = match (stored.peek(), undone.peek()) {
            (None, None) => break,
            (Some(_), None) | (Some(Err(_)), Some(_)) => false,
            (None, Some(_)) => true,
            (Some(Ok(kv)), Some((undone_key, _))) => *undone_key <= kv.key,
        };
        let item = if take_undone {
            let Some((key, state)) = undone.next() else { break };
            if matches!(stored.peek(), Some(Ok(kv)) if kv.key == key) {
                stored.next();
            }
            state
        } else {
            let Some(entry) = stored.next() else { break };
            Some(entry?)
        };
        let Some(item) = item else { continue };
        if items.len() < limit {
            items.push(item);
            continue;
        }
        more = true;
        if !options.count_remaining {
            break;
        }
        remaining += 1;
    }
    Ok(ListPage {
        items,
        revision,
        more,
        remaining: (options.count_remaining && more).then_some(remaining),
    })
}
