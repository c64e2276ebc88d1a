//! Byte layouts of the records kept in redb: stored objects and history events.
//!
//! Fixed-width little-endian headers followed by the opaque payloads. Decoding never panics:
//! a truncated or malformed record is reported as [`DecodeError`], which callers turn into
//! `StorageError::Corrupt`.

use crate::{Event, EventKind, KeyValue};

/// A record that does not have the layout this module writes.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("malformed {what} record")]
pub struct DecodeError {
    what: &'static str,
}

const NONE: u32 = u32::MAX;

/// Encodes the value of the objects table: create revision, mod revision, payload.
pub fn encode_object(create_revision: u64, mod_revision: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + value.len());
    out.extend_from_slice(&create_revision.to_le_bytes());
    out.extend_from_slice(&mod_revision.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// Decodes an object record stored under `key`.
pub fn decode_object(key: &str, record: &[u8]) -> Result<KeyValue, DecodeError> {
    let mut reader = Reader::new(record, "object");
    let create_revision = reader.u64()?;
    let mod_revision = reader.u64()?;
    Ok(KeyValue {
        key: key.to_owned(),
        value: reader.rest().to_vec(),
        create_revision,
        mod_revision,
    })
}

/// Encodes one history event.
pub fn encode_event(event: &Event) -> Vec<u8> {
    let payload = event.value.as_ref().map_or(0, Vec::len) + event.prev.as_ref().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(41 + event.key.len() + payload);
    out.push(match event.kind {
        EventKind::Created => 0,
        EventKind::Updated => 1,
        EventKind::Deleted => 2,
    });
    out.extend_from_slice(&event.committed_at_ms.to_le_bytes());
    out.extend_from_slice(&event.create_revision.to_le_bytes());
    out.extend_from_slice(&event.prev_mod_revision.to_le_bytes());
    put_bytes(&mut out, Some(event.key.as_bytes()));
    put_bytes(&mut out, event.value.as_deref());
    put_bytes(&mut out, event.prev.as_deref());
    out
}

/// The commit time (unix milliseconds) of an event record, without decoding the rest.
pub fn event_time(record: &[u8]) -> Result<u64, DecodeError> {
    let mut reader = Reader::new(record, "event");
    reader.u8()?;
    reader.u64()
}

/// Decodes the event recorded at `revision`.
pub fn decode_event(revision: u64, record: &[u8]) -> Result<Event, DecodeError> {
    let mut reader = Reader::new(record, "event");
    let kind = match reader.u8()? {
        0 => EventKind::Created,
        1 => EventKind::Updated,
        2 => EventKind::Deleted,
        _ => return Err(reader.error()),
    };
    let committed_at_ms = reader.u64()?;
    let create_revision = reader.u64()?;
    let prev_mod_revision = reader.u64()?;
    let key = reader.bytes()?.ok_or_else(|| reader.error())?;
    let key = String::from_utf8(key.to_vec()).map_err(|_| reader.error())?;
    let value = reader.bytes()?.map(<[u8]>::to_vec);
    let prev = reader.bytes()?.map(<[u8]>::to_vec);
    Ok(Event {
        revision,
        kind,
        key,
        value,
        prev,
        create_revision,
        prev_mod_revision,
        committed_at_ms,
    })
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            // Values are bounded far below 4 GiB by the API layer; a longer one cannot be framed.
            let len = u32::try_from(bytes.len()).unwrap_or(NONE - 1);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&bytes[..len as usize]);
        }
        None => out.extend_from_slice(&NONE.to_le_bytes()),
    }
}

struct Reader<'a> {
    data: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], what: &'static str) -> Self {
        Reader { data, what }
    }

    fn error(&self) -> DecodeError {
        DecodeError { what: self.what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.data.len() < n {
            return Err(self.error());
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut buf = [0; 4];
        buf.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(buf))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let mut buf = [0; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(buf))
    }

    fn bytes(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        match self.u32()? {
            NONE => Ok(None),
            len => self.take(len as usize).map(Some),
        }
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_round_trip() {
        let record = encode_object(3, 7, b"{}");
        let kv = decode_object("/a/b", &record).unwrap();
        assert_eq!(
            (kv.create_revision, kv.mod_revision, kv.value.as_slice()),
            (3, 7, &b"{}"[..])
        );
        assert!(decode_object("/a/b", &record[..10]).is_err());
    }

    #[test]
    fn event_round_trip() {
        for (kind, value, prev) in [
            (EventKind::Created, Some(b"new".to_vec()), None),
            (EventKind::Updated, Some(b"new".to_vec()), Some(Vec::new())),
            (EventKind::Deleted, None, Some(b"old".to_vec())),
        ] {
            let event = Event {
                revision: 9,
                kind,
                key: "/g/r/ns/name".into(),
                value,
                prev,
                create_revision: 4,
                prev_mod_revision: 8,
                committed_at_ms: 1234,
            };
            let record = encode_event(&event);
            assert_eq!(decode_event(9, &record).unwrap(), event);
            assert_eq!(event_time(&record).unwrap(), 1234);
            for cut in 0..record.len() {
                assert!(decode_event(9, &record[..cut]).is_err(), "truncated at {cut}");
            }
        }
    }

    #[test]
    fn unknown_event_kind_is_an_error() {
        let mut record = encode_event(&Event {
            revision: 1,
            kind: EventKind::Created,
            key: "k".into(),
            value: Some(vec![]),
            prev: None,
            create_revision: 1,
            prev_mod_revision: 0,
            committed_at_ms: 0,
        });
        record[0] = 7;
        assert!(decode_event(1, &record).is_err());
    }
}
