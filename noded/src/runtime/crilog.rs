//! Container log lines in the CRI log format that kubelets read and write:
//! `2026-11-26T15:04:05.123456789Z stdout F line`.
//!
//! It owns splitting a byte stream into tagged lines (`F` for a full line, `P` for the
//! pieces of a line longer than the maximum, as containerd splits them) and formatting one
//! log record. It does not open, rotate or read log files.

use std::io::Write;

/// containerd's default `max_container_log_line_size`: longer lines are split into partial
/// records of this many bytes.
pub const MAX_LINE_LEN: usize = 16 * 1024;

/// Which container stream a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Whether a record ends its line (`F`) or is a piece of a longer one (`P`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    Full,
    Partial,
}

impl Tag {
    pub fn as_str(self) -> &'static str {
        match self {
            Tag::Full => "F",
            Tag::Partial => "P",
        }
    }
}

/// One record: `TIMESTAMP STREAM TAG CONTENT\n`, the timestamp in RFC 3339 with nanoseconds
/// and trailing zeros trimmed (Go's `time.RFC3339Nano`). `content` excludes the newline.
pub fn format_record(out: &mut Vec<u8>, at: jiff::Timestamp, stream: Stream, tag: Tag, content: &[u8]) {
    // jiff prints the shortest fraction that represents the instant exactly, like Go.
    let _ = write!(out, "{at} {} {} ", stream.as_str(), tag.as_str());
    out.extend_from_slice(content);
    out.push(b'\n');
}

/// Splits a stream of bytes into log records as they arrive.
#[derive(Debug)]
pub struct LineSplitter {
    max_len: usize,
    pending: Vec<u8>,
}

impl LineSplitter {
    pub fn new(max_len: usize) -> Self {
        LineSplitter {
            max_len: max_len.max(1),
            pending: Vec::new(),
        }
    }

    /// Feeds bytes read from the stream; `emit` receives every completed record.
    pub fn push(&mut self, mut data: &[u8], mut emit: impl FnMut(Tag, &[u8])) {
        while let Some(first) = data.first() {
            if self.pending.len() == self.max_len {
                // A full buffer: it is a whole line if the next byte ends it, else a piece.
                if *first == b'\n' {
                    emit(Tag::Full, &self.pending);
                    data = &data[1..];
                } else {
                    emit(Tag::Partial, &self.pending);
                }
                self.pending.clear();
                continue;
            }
            let room = self.max_len - self.pending.len();
            let window = &data[..data.len().min(room)];
            if let Some(newline) = window.iter().position(|b| *b == b'\n') {
                if self.pending.is_empty() {
                    emit(Tag::Full, &window[..newline]);
                } else {
                    self.pending.extend_from_slice(&window[..newline]);
                    emit(Tag::Full, &self.pending);
                    self.pending.clear();
                }
                data = &data[newline + 1..];
            } else {
                self.pending.extend_from_slice(window);
                data = &data[window.len()..];
            }
        }
    }

    /// The stream ended: a last line without a newline is still a whole line.
    pub fn finish(&mut self, mut emit: impl FnMut(Tag, &[u8])) {
        if !self.pending.is_empty() {
            emit(Tag::Full, &self.pending);
            self.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<(Tag, String)> {
        let mut splitter = LineSplitter::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, |tag, line| {
                out.push((tag, String::from_utf8_lossy(line).into_owned()));
            });
        }
        splitter.finish(|tag, line| out.push((tag, String::from_utf8_lossy(line).into_owned())));
        out
    }

    #[test]
    fn record_has_the_cri_layout() {
        let at: jiff::Timestamp = "2026-11-26T15:04:05.123456789Z".parse().unwrap();
        let mut out = Vec::new();
        format_record(&mut out, at, Stream::Stdout, Tag::Full, b"hello world");
        assert_eq!(out, b"2026-11-26T15:04:05.123456789Z stdout F hello world\n");
        out.clear();
        let at: jiff::Timestamp = "2026-11-26T15:04:05.1Z".parse().unwrap();
        format_record(&mut out, at, Stream::Stderr, Tag::Partial, b"");
        assert_eq!(out, b"2026-11-26T15:04:05.1Z stderr P \n");
        out.clear();
        let at: jiff::Timestamp = "2026-11-26T15:04:05Z".parse().unwrap();
        format_record(&mut out, at, Stream::Stdout, Tag::Full, b"x");
        assert_eq!(out, b"2026-11-26T15:04:05Z stdout F x\n");
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let got = split(MAX_LINE_LEN, &[b"hel", b"lo\nwor", b"ld\n\n", b"tail"]);
        assert_eq!(
            got,
            vec![
                (Tag::Full, "hello".to_owned()),
                (Tag::Full, "world".to_owned()),
                (Tag::Full, String::new()),
                (Tag::Full, "tail".to_owned()),
            ]
        );
    }

    #[test]
    fn long_lines_become_partial_records() {
        let got = split(4, &[b"abcdefghij\nxy", b"z\n"]);
        assert_eq!(
            got,
            vec![
                (Tag::Partial, "abcd".to_owned()),
                (Tag::Partial, "efgh".to_owned()),
                (Tag::Full, "ij".to_owned()),
                (Tag::Full, "xyz".to_owned()),
            ]
        );
    }

    #[test]
    fn a_line_of_exactly_max_len_is_one_full_record() {
        assert_eq!(
            split(4, &[b"abcd\nef\n"]),
            vec![(Tag::Full, "abcd".to_owned()), (Tag::Full, "ef".to_owned())]
        );
        // The newline arrives in the next read.
        assert_eq!(split(4, &[b"abcd", b"\n"]), vec![(Tag::Full, "abcd".to_owned())]);
    }

    #[test]
    fn no_trailing_newline_no_empty_record() {
        assert_eq!(split(8, &[b"a\n"]), vec![(Tag::Full, "a".to_owned())]);
        assert!(split(8, &[]).is_empty());
    }
}
