//! Reading a container's CRI log file the way the kubelet answers `containerLogs` (upstream's
//! cri-client `logs.ReadLogs`): records decoded (`P` pieces written without a newline, so they
//! join the next record; `F` ends a line), `tailLines` counted from the end of the file,
//! `sinceSeconds`/`sinceTime` filtering, the fixed-width RFC 3339 timestamp prefix,
//! `limitBytes` truncation, and `follow` until the container has exited and the file no
//! longer grows, or the reader goes away.
//!
//! It reads one file synchronously (run it on a blocking thread); it does not pick the file,
//! know pods or speak HTTP.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

/// How long a follower waits for the file to grow before checking the container again
/// (upstream's `logForceCheckPeriod`).
const FORCE_CHECK_PERIOD: Duration = Duration::from_secs(1);
/// How often a waiting follower looks at the file's size and its reader.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Block size of the backwards scan for `tailLines`.
const TAIL_BLOCK: u64 = 1024;

/// Errors reading a log, with the kubelet's texts.
#[derive(Debug, Error)]
pub enum ReadError {
    #[error("failed to open log file {path:?}: {error}")]
    Open { path: PathBuf, error: io::Error },
    #[error("failed to tail {lines} lines of log file {path:?}: {error}")]
    Tail {
        lines: u64,
        path: PathBuf,
        error: io::Error,
    },
    #[error("failed to read log file {path:?}: {error}")]
    Read { path: PathBuf, error: io::Error },
    #[error("failed to get parse function: unsupported log format: {0:?}")]
    Format(String),
    #[error("context cancelled")]
    Cancelled,
}

/// What to read, already resolved from the request's PodLogOptions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Only the last this many records (`tailLines`).
    pub tail_lines: Option<u64>,
    /// Stop after this many bytes (`limitBytes`).
    pub limit_bytes: Option<u64>,
    /// Skip records older than this (`sinceSeconds` / `sinceTime`).
    pub since: Option<jiff::Timestamp>,
    /// Keep reading while the container runs.
    pub follow: bool,
    /// Prefix each line with its timestamp.
    pub timestamps: bool,
}

impl LogOptions {
    /// The `since` bound of upstream's `NewLogOptions`: `now - sinceSeconds`, or `sinceTime`
    /// when that is later.
    pub fn since_bound(
        since_seconds: Option<i64>,
        since_time: Option<jiff::Timestamp>,
        now: jiff::Timestamp,
    ) -> Option<jiff::Timestamp> {
        let from_seconds =
            since_seconds.and_then(|s| now.checked_sub(jiff::SignedDuration::from_secs(s)).ok());
        match (from_seconds, since_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Where decoded log bytes go.
pub trait LogSink {
    /// Writes `data`; false when the reader has gone away.
    fn write(&mut self, data: &[u8]) -> bool;
    /// Whether the reader has gone away.
    fn is_closed(&self) -> bool;
}

impl LogSink for Vec<u8> {
    fn write(&mut self, data: &[u8]) -> bool {
        self.extend_from_slice(data);
        true
    }

    fn is_closed(&self) -> bool {
        false
    }
}

/// One decoded CRI record.
#[derive(Debug, PartialEq, Eq)]
struct Record<'a> {
    at: jiff::Timestamp,
    /// The content; a full record keeps its newline, a partial one does not.
    content: &'a [u8],
}

/// Parses one line of a CRI log file (`TIMESTAMP STREAM TAG CONTENT`), with its newline.
fn parse_record(line: &[u8]) -> Option<Record<'_>> {
    let (time, rest) = split_space(line)?;
    let at: jiff::Timestamp = std::str::from_utf8(time).ok()?.parse().ok()?;
    let (stream, rest) = split_space(rest)?;
    if stream != b"stdout" && stream != b"stderr" {
        return None;
    }
    let (tags, mut content) = split_space(rest)?;
    // Tags are `:`-separated for forward compatibility; the first says partial or full.
    let partial = tags.split(|b| *b == b':').next() == Some(b"P");
    if partial && let Some(stripped) = content.strip_suffix(b"\n") {
        content = stripped;
    }
    Some(Record { at, content })
}

fn split_space(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = data.iter().position(|b| *b == b' ')?;
    Some((&data[..at], &data[at + 1..]))
}

/// Go's `2006-01-02T15:04:05.000000000Z07:00` in UTC: always nine fractional digits.
pub fn format_timestamp(at: jiff::Timestamp) -> String {
    let seconds = at.strftime("%Y-%m-%dT%H:%M:%S");
    format!("{seconds}.{:09}Z", at.subsec_nanosecond().unsigned_abs())
}

/// The offset where the last `lines` lines of the file start (upstream's
/// `findTailLineStartIndex`).
fn tail_start(file: &mut File, lines: u64) -> io::Result<u64> {
    let size = file.seek(SeekFrom::End(0))?;
    let mut newlines = 0u64;
    let mut left = size;
    let mut block = Vec::new();
    let mut right = size;
    while right > 0 && newlines <= lines {
        left = right.saturating_sub(TAIL_BLOCK);
        block.resize(usize::try_from(right - left).unwrap_or(0), 0);
        file.seek(SeekFrom::Start(left))?;
        file.read_exact(&mut block)?;
        newlines += block.iter().filter(|b| **b == b'\n').count() as u64;
        right = left;
    }
    let mut offset = 0usize;
    while newlines > lines {
        match block[offset..].iter().position(|b| *b == b'\n') {
            Some(at) => offset += at + 1,
            None => break,
        }
        newlines -= 1;
    }
    Ok(left + offset as u64)
}

/// Writes the records of `path` to `sink` as `options` say. `running` says whether the
/// container that writes the file still runs (asked only when following).
pub fn read_logs(
    path: &Path,
    options: &LogOptions,
    running: &dyn Fn() -> bool,
    sink: &mut dyn LogSink,
) -> Result<(), ReadError> {
    let read_err = |error| ReadError::Read {
        path: path.to_path_buf(),
        error,
    };
    let mut file = File::open(path).map_err(|error| ReadError::Open {
        path: path.to_path_buf(),
        error,
    })?;
    let start = match options.tail_lines {
        Some(lines) => tail_start(&mut file, lines).map_err(|error| ReadError::Tail {
            lines,
            path: path.to_path_buf(),
            error,
        })?,
        None => 0,
    };
    file.seek(SeekFrom::Start(start)).map_err(read_err)?;
    let limited = !options.follow && options.tail_lines.is_some();
    let mut left_to_write = options.tail_lines.unwrap_or(0);
    let mut remaining = options.limit_bytes.unwrap_or(u64::MAX);
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut out = Vec::new();
    let (mut stop, mut new_line, mut found, mut waited_once, mut checked_format) =
        (false, true, true, false, false);
    loop {
        if stop || (limited && left_to_write == 0) {
            return Ok(());
        }
        line.clear();
        reader.read_until(b'\n', &mut line).map_err(read_err)?;
        if line.last() != Some(&b'\n') {
            if options.follow {
                if !found {
                    // The container has exited and everything it wrote has been read.
                    return Ok(());
                }
                // An incomplete line is read again once it is complete.
                let back = i64::try_from(line.len()).unwrap_or(0);
                reader.seek_relative(-back).map_err(read_err)?;
                if !waited_once {
                    waited_once = true;
                    continue;
                }
                found = wait_for_growth(&mut reader, running, sink).map_err(|e| match e {
                    Wait::Cancelled => ReadError::Cancelled,
                    Wait::Io(error) => read_err(error),
                })?;
                continue;
            }
            stop = true;
            if line.is_empty() {
                continue;
            }
        }
        let Some(record) = parse_record(&line) else {
            if !checked_format {
                return Err(ReadError::Format(String::from_utf8_lossy(&line).into_owned()));
            }
            tracing::debug!(path = %path.display(), "skipping a log line that is not a CRI record");
            continue;
        };
        checked_format = true;
        if options.since.is_none_or(|since| record.at >= since) {
            out.clear();
            if options.timestamps && new_line {
                out.extend_from_slice(format_timestamp(record.at).as_bytes());
                out.push(b' ');
            }
            out.extend_from_slice(record.content);
            let take = usize::try_from(remaining).unwrap_or(usize::MAX).min(out.len());
            if !sink.write(&out[..take]) {
                return Err(ReadError::Cancelled);
            }
            remaining -= take as u64;
            if remaining == 0 {
                return Ok(());
            }
        }
        if limited {
            left_to_write -= 1;
        }
        new_line = record.content.last().is_none_or(|b| *b == b'\n');
    }
}

enum Wait {
    Cancelled,
    Io(io::Error),
}

/// Waits for the file to grow (or the force-check period to pass); false when the container
/// no longer runs, so the reader drains what is left and ends.
fn wait_for_growth(
    reader: &mut BufReader<File>,
    running: &dyn Fn() -> bool,
    sink: &mut dyn LogSink,
) -> Result<bool, Wait> {
    if !running() {
        return Ok(false);
    }
    let position = reader.stream_position().map_err(Wait::Io)?;
    let deadline = Instant::now() + FORCE_CHECK_PERIOD;
    while Instant::now() < deadline {
        if sink.is_closed() {
            return Err(Wait::Cancelled);
        }
        if reader.get_ref().metadata().map_err(Wait::Io)?.len() > position {
            break;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::needless_pass_by_value)]
    use super::*;
    use std::io::Write;

    const LOG: &str = "\
2026-11-26T10:00:00.5Z stdout F one
2026-11-26T10:00:01Z stderr F two
2026-11-26T10:00:02.000000001Z stdout P thr
2026-11-26T10:00:03Z stdout P e
2026-11-26T10:00:04Z stdout F e
2026-11-26T10:00:05Z stdout F four
";

    fn file(content: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(content.as_bytes()).unwrap();
        file
    }

    fn read(content: &str, options: LogOptions) -> String {
        let file = file(content);
        let mut out = Vec::new();
        read_logs(file.path(), &options, &|| false, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn ts(text: &str) -> jiff::Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn records_are_decoded_and_partials_joined() {
        assert_eq!(read(LOG, LogOptions::default()), "one\ntwo\nthree\nfour\n");
    }

    #[test]
    fn timestamps_prefix_each_line_once_with_nine_digits() {
        let options = LogOptions {
            timestamps: true,
            ..LogOptions::default()
        };
        assert_eq!(
            read(LOG, options),
            "2026-11-26T10:00:00.500000000Z one\n\
             2026-11-26T10:00:01.000000000Z two\n\
             2026-11-26T10:00:02.000000001Z three\n\
             2026-11-26T10:00:05.000000000Z four\n"
        );
    }

    #[test]
    fn tail_counts_records_from_the_end() {
        let tail = |n| {
            read(
                LOG,
                LogOptions {
                    tail_lines: Some(n),
                    ..LogOptions::default()
                },
            )
        };
        assert_eq!(tail(0), "");
        assert_eq!(tail(1), "four\n");
        assert_eq!(tail(2), "e\nfour\n");
        assert_eq!(tail(100), "one\ntwo\nthree\nfour\n");
        // Longer than one scan block.
        let long: String = (0..500)
            .map(|i| format!("2026-11-26T10:00:00Z stdout F line {i}\n"))
            .collect();
        let got = read(
            &long,
            LogOptions {
                tail_lines: Some(3),
                ..LogOptions::default()
            },
        );
        assert_eq!(got, "line 497\nline 498\nline 499\n");
    }

    #[test]
    fn limit_bytes_truncates() {
        let limit = |n| {
            read(
                LOG,
                LogOptions {
                    limit_bytes: Some(n),
                    ..LogOptions::default()
                },
            )
        };
        assert_eq!(limit(6), "one\ntw");
        assert_eq!(limit(4), "one\n");
        let with_timestamps = read(
            LOG,
            LogOptions {
                limit_bytes: Some(10),
                timestamps: true,
                ..LogOptions::default()
            },
        );
        assert_eq!(with_timestamps, "2026-11-26");
    }

    #[test]
    fn since_skips_older_records() {
        let options = LogOptions {
            since: Some(ts("2026-11-26T10:00:01Z")),
            ..LogOptions::default()
        };
        assert_eq!(read(LOG, options), "two\nthree\nfour\n");
        let bound = LogOptions::since_bound(Some(10), None, ts("2026-11-26T10:00:10Z"));
        assert_eq!(bound, Some(ts("2026-11-26T10:00:00Z")));
        let bound = LogOptions::since_bound(
            Some(10),
            Some(ts("2026-11-26T10:00:05Z")),
            ts("2026-11-26T10:00:10Z"),
        );
        assert_eq!(bound, Some(ts("2026-11-26T10:00:05Z")));
    }

    #[test]
    fn a_final_line_without_newline_is_read_when_not_following() {
        assert_eq!(
            read("2026-11-26T10:00:00Z stdout F last", LogOptions::default()),
            "last"
        );
    }

    #[test]
    fn other_formats_are_refused() {
        let file = file("not a log\n");
        let err = read_logs(file.path(), &LogOptions::default(), &|| false, &mut Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to get parse function: unsupported log format: \"not a log\\n\""
        );
    }

    #[test]
    fn follow_reads_new_lines_until_the_container_exits() {
        let file = file("2026-11-26T10:00:00Z stdout F first\n");
        let path = file.path().to_path_buf();
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let writer = {
            let running = running.clone();
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
                f.write_all(b"2026-11-26T10:00:01Z stdout F sec").unwrap();
                std::thread::sleep(Duration::from_millis(100));
                f.write_all(b"ond\n").unwrap();
                running.store(false, std::sync::atomic::Ordering::SeqCst);
            })
        };
        let options = LogOptions {
            follow: true,
            tail_lines: Some(1),
            ..LogOptions::default()
        };
        let mut out = Vec::new();
        read_logs(
            &path,
            &options,
            &|| running.load(std::sync::atomic::Ordering::SeqCst),
            &mut out,
        )
        .unwrap();
        writer.join().unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "first\nsecond\n");
    }

    struct Closed;
    impl LogSink for Closed {
        fn write(&mut self, _: &[u8]) -> bool {
            true
        }
        fn is_closed(&self) -> bool {
            true
        }
    }

    #[test]
    fn follow_ends_when_the_reader_goes_away() {
        let file = file("2026-11-26T10:00:00Z stdout F first\n");
        let options = LogOptions {
            follow: true,
            ..LogOptions::default()
        };
        let err = read_logs(file.path(), &options, &|| true, &mut Closed).unwrap_err();
        assert!(matches!(err, ReadError::Cancelled));
    }
}
