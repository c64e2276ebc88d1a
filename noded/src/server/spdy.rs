//! SPDY/3.1, server side, as much as the Kubernetes streaming protocols use (moby/spdystream
//! is the client): the frame codec (control frames SYN_STREAM, SYN_REPLY, RST_STREAM,
//! SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE, and DATA frames; header blocks
//! zlib-compressed with the SPDY/3 dictionary, one compression context per direction for the
//! whole connection, each block sync-flushed) and a session over any byte stream: streams the
//! client opens arrive as [`Incoming`], are accepted (SYN_REPLY) or refused (RST_STREAM), and
//! are read and written with flow control.
//!
//! Flow control: every byte the application consumes is credited back to the client with
//! WINDOW_UPDATEs for the stream and the session, so a client that honours windows never
//! stalls. Our own sends respect the client's windows (64 KiB initially, or its SETTINGS)
//! once the client shows it does flow control by sending a WINDOW_UPDATE or an initial window
//! size; spdystream does neither and ignores windows, as upstream's server does.
//!
//! It knows nothing of what streams mean (port-forward and remotecommand are the callers').

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// The SPDY/3 header compression dictionary (the protocol draft's, section 2.6.10.1).
const DICTIONARY: &[u8] = include_bytes!("spdy-dictionary.bin");
const VERSION: u16 = 3;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

const FLAG_FIN: u8 = 0x01;
const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// SETTINGS_INITIAL_WINDOW_SIZE.
const SETTINGS_INITIAL_WINDOW: u32 = 7;

/// RST_STREAM status: the stream is no longer needed.
pub const CANCEL: u32 = 5;
/// The initial stream and session window of SPDY/3.1.
pub const INITIAL_WINDOW: i64 = 64 * 1024;
/// The largest frame payload (24-bit length).
const MAX_PAYLOAD: usize = (1 << 24) - 1;
/// The largest DATA frame we write.
const MAX_DATA_FRAME: usize = 32 * 1024;
/// Consumed bytes credited back once this many accumulated.
const WINDOW_UPDATE_THRESHOLD: u32 = 16 * 1024;
/// DATA frames buffered per stream before the connection's reader waits for the application.
const STREAM_BUFFER: usize = 32;

/// Header name/value pairs; a value with several parts keeps them NUL-separated.
pub type Headers = Vec<(String, String)>;

/// The first value of a header (names are case-insensitive; SPDY/3 sends them lowercase).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.split('\0').next().unwrap_or(""))
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated: u32,
        priority: u8,
        fin: bool,
        unidirectional: bool,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    /// Entries: flags, id, value.
    Settings(Vec<(u8, u32, u32)>),
    Ping(u32),
    GoAway {
        last_good: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        fin: bool,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        fin: bool,
        data: Bytes,
    },
    /// A control frame of another type or version, skipped.
    Other(u16),
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("invalid frame: {0}")]
    Invalid(&'static str),
    #[error("header block: {0}")]
    Compression(String),
}

/// Encodes frames; owns the compression context of our direction.
pub struct Encoder {
    compress: Compress,
}

impl Encoder {
    pub fn new() -> Result<Encoder, SpdyError> {
        let mut compress = Compress::new(Compression::best(), true);
        compress
            .set_dictionary(DICTIONARY)
            .map_err(|err| SpdyError::Compression(err.to_string()))?;
        Ok(Encoder { compress })
    }

    /// Appends the encoded frame to `out`.
    pub fn encode(&mut self, frame: &Frame, out: &mut Vec<u8>) -> Result<(), SpdyError> {
        let mut body = Vec::new();
        let (kind, flags) = match frame {
            Frame::Data { stream_id, fin, data } => {
                if data.len() > MAX_PAYLOAD {
                    return Err(SpdyError::Invalid("data frame too large"));
                }
                out.put_u32(stream_id & 0x7fff_ffff);
                out.put_u32((u32::from(u8::from(*fin)) << 24) | data.len() as u32);
                out.extend_from_slice(data);
                return Ok(());
            }
            Frame::SynStream {
                stream_id,
                associated,
                priority,
                fin,
                unidirectional,
                headers,
            } => {
                body.put_u32(stream_id & 0x7fff_ffff);
                body.put_u32(associated & 0x7fff_ffff);
                body.put_u8((priority & 0x07) << 5);
                body.put_u8(0);
                self.header_block(headers, &mut body)?;
                let flags =
                    if *fin { FLAG_FIN } else { 0 } | if *unidirectional { FLAG_UNIDIRECTIONAL } else { 0 };
                (SYN_STREAM, flags)
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => {
                body.put_u32(stream_id & 0x7fff_ffff);
                self.header_block(headers, &mut body)?;
                (SYN_REPLY, if *fin { FLAG_FIN } else { 0 })
            }
            Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                body.put_u32(stream_id & 0x7fff_ffff);
                self.header_block(headers, &mut body)?;
                (HEADERS, if *fin { FLAG_FIN } else { 0 })
            }
            Frame::RstStream { stream_id, status } => {
                body.put_u32(stream_id & 0x7fff_ffff);
                body.put_u32(*status);
                (RST_STREAM, 0)
            }
            Frame::Settings(entries) => {
                body.put_u32(entries.len() as u32);
                for (flags, id, value) in entries {
                    body.put_u32((u32::from(*flags) << 24) | (id & 0x00ff_ffff));
                    body.put_u32(*value);
                }
                (SETTINGS, 0)
            }
            Frame::Ping(id) => {
                body.put_u32(*id);
                (PING, 0)
            }
            Frame::GoAway { last_good, status } => {
                body.put_u32(last_good & 0x7fff_ffff);
                body.put_u32(*status);
                (GOAWAY, 0)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                body.put_u32(stream_id & 0x7fff_ffff);
                body.put_u32(delta & 0x7fff_ffff);
                (WINDOW_UPDATE, 0)
            }
            Frame::Other(_) => return Err(SpdyError::Invalid("cannot encode an unknown frame")),
        };
        if body.len() > MAX_PAYLOAD {
            return Err(SpdyError::Invalid("control frame too large"));
        }
        out.put_u16(0x8000 | VERSION);
        out.put_u16(kind);
        out.put_u32((u32::from(flags) << 24) | body.len() as u32);
        out.extend_from_slice(&body);
        Ok(())
    }

    /// The compressed header block, sync-flushed so the peer can decode it alone.
    fn header_block(&mut self, headers: &Headers, out: &mut Vec<u8>) -> Result<(), SpdyError> {
        let mut plain = Vec::new();
        plain.put_u32(headers.len() as u32);
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            plain.put_u32(name.len() as u32);
            plain.extend_from_slice(name.as_bytes());
            plain.put_u32(value.len() as u32);
            plain.extend_from_slice(value.as_bytes());
        }
        let mut input = plain.as_slice();
        loop {
            out.reserve(input.len() + 64);
            let before = self.compress.total_in();
            self.compress
                .compress_vec(input, out, FlushCompress::Sync)
                .map_err(|err| SpdyError::Compression(err.to_string()))?;
            let consumed = (self.compress.total_in() - before) as usize;
            input = &input[consumed..];
            // Done when all input is in and the flush had room to finish.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

/// Decodes frames from a buffer; owns the decompression context of the peer's direction.
pub struct Decoder {
    decompress: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            decompress: Decompress::new(true),
        }
    }
}

impl Decoder {
    /// The next whole frame at the start of `buf` (consumed), or `None` until more arrives.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, SpdyError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let length = (u32::from_be_bytes([0, buf[5], buf[6], buf[7]])) as usize;
        if buf.len() < 8 + length {
            buf.reserve(8 + length - buf.len());
            return Ok(None);
        }
        let mut frame = buf.split_to(8 + length).freeze();
        let first = frame.get_u32();
        let flags_length = frame.get_u32();
        let flags = (flags_length >> 24) as u8;
        let fin = flags & FLAG_FIN != 0;
        if first & 0x8000_0000 == 0 {
            return Ok(Some(Frame::Data {
                stream_id: first & 0x7fff_ffff,
                fin,
                data: frame,
            }));
        }
        let version = ((first >> 16) & 0x7fff) as u16;
        let kind = (first & 0xffff) as u16;
        if version != VERSION {
            return Ok(Some(Frame::Other(kind)));
        }
        let need = |frame: &Bytes, n: usize| {
            if frame.remaining() < n {
                Err(SpdyError::Invalid("control frame too short"))
            } else {
                Ok(())
            }
        };
        let parsed = match kind {
            SYN_STREAM => {
                need(&frame, 10)?;
                let stream_id = frame.get_u32() & 0x7fff_ffff;
                let associated = frame.get_u32() & 0x7fff_ffff;
                let priority = frame.get_u8() >> 5;
                frame.advance(1);
                Frame::SynStream {
                    stream_id,
                    associated,
                    priority,
                    fin,
                    unidirectional: flags & FLAG_UNIDIRECTIONAL != 0,
                    headers: self.header_block(&frame)?,
                }
            }
            SYN_REPLY | HEADERS => {
                need(&frame, 4)?;
                let stream_id = frame.get_u32() & 0x7fff_ffff;
                let headers = self.header_block(&frame)?;
                if kind == SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        fin,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        fin,
                        headers,
                    }
                }
            }
            RST_STREAM => {
                need(&frame, 8)?;
                Frame::RstStream {
                    stream_id: frame.get_u32() & 0x7fff_ffff,
                    status: frame.get_u32(),
                }
            }
            SETTINGS => {
                need(&frame, 4)?;
                let count = frame.get_u32() as usize;
                need(&frame, count.saturating_mul(8))?;
                let entries = (0..count)
                    .map(|_| {
                        let head = frame.get_u32();
                        ((head >> 24) as u8, head & 0x00ff_ffff, frame.get_u32())
                    })
                    .collect();
                Frame::Settings(entries)
            }
            PING => {
                need(&frame, 4)?;
                Frame::Ping(frame.get_u32())
            }
            GOAWAY => {
                need(&frame, 4)?;
                let last_good = frame.get_u32() & 0x7fff_ffff;
                let status = if frame.remaining() >= 4 {
                    frame.get_u32()
                } else {
                    0
                };
                Frame::GoAway { last_good, status }
            }
            WINDOW_UPDATE => {
                need(&frame, 8)?;
                Frame::WindowUpdate {
                    stream_id: frame.get_u32() & 0x7fff_ffff,
                    delta: frame.get_u32() & 0x7fff_ffff,
                }
            }
            other => Frame::Other(other),
        };
        Ok(Some(parsed))
    }

    fn header_block(&mut self, compressed: &[u8]) -> Result<Headers, SpdyError> {
        let plain = self.inflate(compressed)?;
        let mut block = plain.as_slice();
        let next = |block: &mut &[u8]| -> Result<String, SpdyError> {
            if block.remaining() < 4 {
                return Err(SpdyError::Invalid("truncated header block"));
            }
            let length = block.get_u32() as usize;
            if block.remaining() < length {
                return Err(SpdyError::Invalid("truncated header block"));
            }
            let text = String::from_utf8_lossy(&block[..length]).into_owned();
            block.advance(length);
            Ok(text)
        };
        if block.remaining() < 4 {
            return Err(SpdyError::Invalid("truncated header block"));
        }
        let count = block.get_u32();
        let mut headers = Vec::new();
        for _ in 0..count {
            let name = next(&mut block)?.to_ascii_lowercase();
            let value = next(&mut block)?;
            headers.push((name, value));
        }
        Ok(headers)
    }

    fn inflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let mut out = Vec::with_capacity(input.len() * 4 + 64);
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(256));
            }
            let before = self.decompress.total_in();
            let result = self
                .decompress
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let consumed = (self.decompress.total_in() - before) as usize;
            input = &input[consumed..];
            match result {
                Ok(Status::Ok | Status::BufError) => {
                    if input.is_empty() && out.len() < out.capacity() {
                        return Ok(out);
                    }
                    if consumed == 0 && out.len() < out.capacity() {
                        return Err(SpdyError::Compression("no progress".to_owned()));
                    }
                }
                Ok(Status::StreamEnd) => return Ok(out),
                Err(err) if err.needs_dictionary().is_some() => {
                    self.decompress
                        .set_dictionary(DICTIONARY)
                        .map_err(|err| SpdyError::Compression(err.to_string()))?;
                }
                Err(err) => return Err(SpdyError::Compression(err.to_string())),
            }
            if out.len() > MAX_PAYLOAD * 4 {
                return Err(SpdyError::Invalid("header block too large"));
            }
        }
    }
}

/// What the writer task does.
enum Command {
    Frame(Frame),
    /// GOAWAY, then close the transport.
    Shutdown,
}

/// The session's flow-control and stream table.
struct State {
    /// The peer sent a WINDOW_UPDATE or an initial window: respect its windows.
    flow_control: bool,
    initial_window: i64,
    session_window: i64,
    streams: HashMap<u32, StreamState>,
    last_stream: u32,
}

/// A stream neither reset nor finished both ways; removed from the table at its end.
struct StreamState {
    send_window: i64,
    /// Delivers the peer's data; dropped at its FIN.
    data: Option<mpsc::Sender<Bytes>>,
    /// We sent our FIN.
    fin_sent: bool,
}

struct Shared {
    commands: mpsc::UnboundedSender<Command>,
    state: Mutex<State>,
    window: Notify,
    closed: CancellationToken,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn send(&self, frame: Frame) -> Result<(), Closed> {
        self.commands.send(Command::Frame(frame)).map_err(|_| Closed)
    }
}

/// The stream or the session has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the stream is closed")]
pub struct Closed;

/// A SPDY session on a connection the peer (the client) opens streams on.
pub struct Session {
    incoming: mpsc::Receiver<Incoming>,
    handle: SessionHandle,
}

/// Ends a session or waits for its end; cheap to clone.
#[derive(Clone)]
pub struct SessionHandle {
    shared: Arc<Shared>,
}

impl SessionHandle {
    /// Sends GOAWAY after everything already queued and closes the connection.
    pub fn shutdown(&self) {
        let _ = self.shared.commands.send(Command::Shutdown);
    }

    /// How many streams are open (neither reset nor finished both ways).
    #[cfg(test)]
    fn open_streams(&self) -> usize {
        self.shared.state().streams.len()
    }

    /// Resolves when the connection has ended.
    pub async fn closed(&self) {
        self.shared.closed.cancelled().await;
    }
}

impl Session {
    /// Runs a server session on `io` (reader and writer tasks).
    pub fn start<S: AsyncRead + AsyncWrite + Send + 'static>(io: S) -> Result<Session, SpdyError> {
        let encoder = Encoder::new()?;
        let (read, write) = tokio::io::split(io);
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (incoming_tx, incoming) = mpsc::channel(16);
        let shared = Arc::new(Shared {
            commands,
            state: Mutex::new(State {
                flow_control: false,
                initial_window: INITIAL_WINDOW,
                session_window: INITIAL_WINDOW,
                streams: HashMap::new(),
                last_stream: 0,
            }),
            window: Notify::new(),
            closed: CancellationToken::new(),
        });
        tokio::spawn(write_loop(write, encoder, command_rx, shared.clone()));
        tokio::spawn(read_loop(read, incoming_tx, shared.clone()));
        Ok(Session {
            incoming,
            handle: SessionHandle { shared },
        })
    }

    /// The next stream the peer opened; `None` once the connection ended.
    pub async fn next(&mut self) -> Option<Incoming> {
        tokio::select! {
            incoming = self.incoming.recv() => incoming,
            () = self.handle.shared.closed.cancelled() => None,
        }
    }

    pub fn handle(&self) -> SessionHandle {
        self.handle.clone()
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut write: W,
    mut encoder: Encoder,
    mut commands: mpsc::UnboundedReceiver<Command>,
    shared: Arc<Shared>,
) {
    let mut buf = Vec::new();
    loop {
        let command = tokio::select! {
            command = commands.recv() => command,
            () = shared.closed.cancelled() => None,
        };
        let Some(command) = command else {
            break;
        };
        buf.clear();
        let shutdown = match command {
            Command::Frame(frame) => {
                if let Err(err) = encoder.encode(&frame, &mut buf) {
                    tracing::debug!(error = %err, "cannot encode a SPDY frame");
                    continue;
                }
                false
            }
            Command::Shutdown => {
                let last_good = shared.state().last_stream;
                let _ = encoder.encode(&Frame::GoAway { last_good, status: 0 }, &mut buf);
                true
            }
        };
        // Write what else is queued in the same system call.
        let mut shutdown = shutdown;
        while !shutdown && buf.len() < 256 * 1024 {
            match commands.try_recv() {
                Ok(Command::Frame(frame)) => {
                    let _ = encoder.encode(&frame, &mut buf);
                }
                Ok(Command::Shutdown) => {
                    let last_good = shared.state().last_stream;
                    let _ = encoder.encode(&Frame::GoAway { last_good, status: 0 }, &mut buf);
                    shutdown = true;
                }
                Err(_) => break,
            }
        }
        if write.write_all(&buf).await.is_err() || write.flush().await.is_err() {
            break;
        }
        if shutdown {
            break;
        }
    }
    let _ = write.shutdown().await;
    shared.closed.cancel();
    shared.window.notify_waiters();
}

async fn read_loop<R: AsyncRead + Unpin>(mut read: R, incoming: mpsc::Sender<Incoming>, shared: Arc<Shared>) {
    let mut decoder = Decoder::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    'read: loop {
        loop {
            let frame = match decoder.decode(&mut buf) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(err) => {
                    tracing::debug!(error = %err, "invalid SPDY frame");
                    break 'read;
                }
            };
            if !dispatch(frame, &incoming, &shared).await {
                break 'read;
            }
        }
        let read = tokio::select! {
            read = read.read_buf(&mut buf) => read,
            () = shared.closed.cancelled() => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
    shared.closed.cancel();
    // Readers see the end of every stream.
    let mut state = shared.state();
    for stream in state.streams.values_mut() {
        stream.data = None;
    }
    drop(state);
    shared.window.notify_waiters();
}

/// Handles one frame from the peer; false ends the session.
async fn dispatch(frame: Frame, incoming: &mpsc::Sender<Incoming>, shared: &Arc<Shared>) -> bool {
    match frame {
        Frame::SynStream {
            stream_id,
            fin,
            headers,
            ..
        } => {
            let (data_tx, data_rx) = mpsc::channel(STREAM_BUFFER);
            {
                let mut state = shared.state();
                if state.streams.contains_key(&stream_id) {
                    return true;
                }
                state.last_stream = state.last_stream.max(stream_id);
                let send_window = state.initial_window;
                state.streams.insert(
                    stream_id,
                    StreamState {
                        send_window,
                        data: (!fin).then_some(data_tx),
                        fin_sent: false,
                    },
                );
            }
            let stream = Incoming {
                id: stream_id,
                headers,
                reader: StreamReader {
                    id: stream_id,
                    data: data_rx,
                    unacknowledged: 0,
                    shared: shared.clone(),
                },
                writer: StreamWriter {
                    id: stream_id,
                    shared: shared.clone(),
                },
            };
            if incoming.send(stream).await.is_err() {
                let _ = shared.send(Frame::RstStream {
                    stream_id,
                    status: CANCEL,
                });
            }
        }
        Frame::Data { stream_id, fin, data } => {
            let sender = {
                let mut state = shared.state();
                let Some(stream) = state.streams.get_mut(&stream_id) else {
                    return true;
                };
                if fin {
                    let sender = stream.data.take();
                    if stream.fin_sent {
                        state.streams.remove(&stream_id);
                    }
                    sender
                } else {
                    stream.data.clone()
                }
            };
            if let Some(sender) = sender
                && !data.is_empty()
            {
                let _ = sender.send(data).await;
            }
        }
        Frame::RstStream { stream_id, .. } => {
            shared.state().streams.remove(&stream_id);
            shared.window.notify_waiters();
        }
        Frame::Settings(entries) => {
            let mut state = shared.state();
            for (_, id, value) in entries {
                if id == SETTINGS_INITIAL_WINDOW {
                    let change = i64::from(value) - state.initial_window;
                    state.initial_window = i64::from(value);
                    state.flow_control = true;
                    for stream in state.streams.values_mut() {
                        stream.send_window += change;
                    }
                }
            }
            drop(state);
            shared.window.notify_waiters();
        }
        Frame::WindowUpdate { stream_id, delta } => {
            let mut state = shared.state();
            state.flow_control = true;
            if stream_id == 0 {
                state.session_window += i64::from(delta);
            } else if let Some(stream) = state.streams.get_mut(&stream_id) {
                stream.send_window += i64::from(delta);
            }
            drop(state);
            shared.window.notify_waiters();
        }
        // Pings the client started (odd ids) are echoed; ours (we send none) would be answers.
        Frame::Ping(id) => {
            if id % 2 == 1 {
                let _ = shared.send(Frame::Ping(id));
            }
        }
        Frame::GoAway { .. } => return false,
        Frame::SynReply { .. } | Frame::Headers { .. } | Frame::Other(_) => {}
    }
    true
}

/// A stream the peer opened, not yet answered.
pub struct Incoming {
    pub id: u32,
    pub headers: Headers,
    reader: StreamReader,
    writer: StreamWriter,
}

impl Incoming {
    /// The first value of one of the stream's headers.
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// Accepts the stream (SYN_REPLY without headers, as upstream's server answers).
    pub fn accept(self) -> (StreamReader, StreamWriter) {
        let _ = self.writer.shared.send(Frame::SynReply {
            stream_id: self.id,
            fin: false,
            headers: Vec::new(),
        });
        (self.reader, self.writer)
    }

    /// Refuses the stream (RST_STREAM CANCEL, as spdystream's `Reset`).
    pub fn reject(self) {
        self.writer.reset();
    }
}

/// The receiving half of a stream.
pub struct StreamReader {
    id: u32,
    data: mpsc::Receiver<Bytes>,
    unacknowledged: u32,
    shared: Arc<Shared>,
}

impl StreamReader {
    /// The next piece of the peer's data; `None` at its FIN, a reset, or the session's end.
    pub async fn read(&mut self) -> Option<Bytes> {
        let data = self.data.recv().await?;
        self.unacknowledged = self.unacknowledged.saturating_add(data.len() as u32);
        if self.unacknowledged >= WINDOW_UPDATE_THRESHOLD {
            let delta = std::mem::take(&mut self.unacknowledged);
            let _ = self.shared.send(Frame::WindowUpdate {
                stream_id: self.id,
                delta,
            });
            let _ = self.shared.send(Frame::WindowUpdate { stream_id: 0, delta });
        }
        Some(data)
    }
}

/// The sending half of a stream; cheap to clone.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    shared: Arc<Shared>,
}

impl StreamWriter {
    /// Queues `data` in DATA frames, waiting for the peer's windows when it does flow control.
    pub async fn write(&self, mut data: &[u8]) -> Result<(), Closed> {
        while !data.is_empty() {
            let size = loop {
                let notified = self.shared.window.notified();
                {
                    let mut state = self.shared.state();
                    if self.shared.closed.is_cancelled() {
                        return Err(Closed);
                    }
                    let flow_control = state.flow_control;
                    let session_window = state.session_window;
                    let stream = state.streams.get_mut(&self.id).ok_or(Closed)?;
                    let wanted = data.len().min(MAX_DATA_FRAME);
                    let size = if flow_control {
                        let window = stream.send_window.min(session_window).max(0);
                        wanted.min(usize::try_from(window).unwrap_or(0))
                    } else {
                        wanted
                    };
                    if size > 0 {
                        stream.send_window -= size as i64;
                        state.session_window -= size as i64;
                        break size;
                    }
                }
                notified.await;
            };
            self.shared.send(Frame::Data {
                stream_id: self.id,
                fin: false,
                data: Bytes::copy_from_slice(&data[..size]),
            })?;
            data = &data[size..];
        }
        Ok(())
    }

    /// Resolves once the stream was reset, finished both ways, or the session ended.
    pub async fn reset_or_gone(&self) {
        loop {
            let notified = self.shared.window.notified();
            {
                let state = self.shared.state();
                if !state.streams.contains_key(&self.id) || self.shared.closed.is_cancelled() {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Ends our side of the stream (an empty DATA frame with FIN).
    pub fn close(&self) {
        let mut state = self.shared.state();
        if let Some(stream) = state.streams.get_mut(&self.id) {
            stream.fin_sent = true;
            if stream.data.is_none() {
                state.streams.remove(&self.id);
            }
        }
        drop(state);
        self.shared.window.notify_waiters();
        let _ = self.shared.send(Frame::Data {
            stream_id: self.id,
            fin: true,
            data: Bytes::new(),
        });
    }

    /// Resets the stream: neither side sends more.
    pub fn reset(&self) {
        if self.shared.state().streams.remove(&self.id).is_none() {
            return;
        }
        let _ = self.shared.send(Frame::RstStream {
            stream_id: self.id,
            status: CANCEL,
        });
        self.shared.window.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn round_trip(frames: &[Frame]) {
        let mut encoder = Encoder::new().unwrap();
        let mut wire = Vec::new();
        for frame in frames {
            encoder.encode(frame, &mut wire).unwrap();
        }
        let mut decoder = Decoder::default();
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        // Byte by byte: frames decode only once whole.
        for byte in wire {
            buf.put_u8(byte);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                decoded.push(frame);
            }
        }
        assert_eq!(decoded, frames);
    }

    #[test]
    fn frames_round_trip_with_one_compression_context() {
        let stream_headers = headers(&[("streamtype", "error"), ("port", "8080"), ("requestid", "0")]);
        round_trip(&[
            Frame::SynStream {
                stream_id: 1,
                associated: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: stream_headers.clone(),
            },
            Frame::SynStream {
                stream_id: 3,
                associated: 0,
                priority: 7,
                fin: true,
                unidirectional: false,
                headers: stream_headers,
            },
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: Vec::new(),
            },
            Frame::Data {
                stream_id: 1,
                fin: false,
                data: Bytes::from_static(b"GET / HTTP/1.0\r\n\r\n"),
            },
            Frame::Data {
                stream_id: 3,
                fin: true,
                data: Bytes::new(),
            },
            Frame::RstStream {
                stream_id: 3,
                status: CANCEL,
            },
            Frame::Settings(vec![(0, SETTINGS_INITIAL_WINDOW, 1 << 20)]),
            Frame::Ping(1),
            Frame::WindowUpdate {
                stream_id: 0,
                delta: 65536,
            },
            Frame::Headers {
                stream_id: 1,
                fin: false,
                headers: headers(&[("a", "b\0c")]),
            },
            Frame::GoAway {
                last_good: 3,
                status: 0,
            },
        ]);
    }

    /// A SYN_STREAM as Go's spdy framer (moby/spdystream, compress/zlib at BestCompression
    /// with the SPDY/3 dictionary) writes it for `kubectl port-forward`'s error stream:
    /// headers `port: 8080`, `requestid: 0`, `streamtype: error`.
    const GO_SYN_STREAM: &str = "800300010000003e0000000100000000000078f9e3c6a7c202253a703a2b294a4dcc\
        851625aca9a0808614cb45e01c60616061c0c0c0c0590489c64c50f2663400000000ffff";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_header_block_from_gos_framer_decodes() {
        let mut buf = BytesMut::from(hex(GO_SYN_STREAM).as_slice());
        let frame = Decoder::default().decode(&mut buf).unwrap().unwrap();
        let Frame::SynStream {
            stream_id, headers, ..
        } = frame
        else {
            panic!("not a SYN_STREAM: {frame:?}");
        };
        assert_eq!(stream_id, 1);
        assert_eq!(header(&headers, "streamType"), Some("error"));
        assert_eq!(header(&headers, "port"), Some("8080"));
        assert_eq!(header(&headers, "requestID"), Some("0"));
        assert!(buf.is_empty());
    }

    #[test]
    fn the_first_header_block_names_the_dictionary() {
        let mut encoder = Encoder::new().unwrap();
        let mut wire = Vec::new();
        encoder
            .encode(
                &Frame::SynReply {
                    stream_id: 1,
                    fin: false,
                    headers: Vec::new(),
                },
                &mut wire,
            )
            .unwrap();
        // zlib header with FDICT and the dictionary's Adler-32, as Go's NewReaderDict checks.
        let block = &wire[12..];
        assert_eq!(block[1] & 0x20, 0x20);
        assert_eq!(&block[2..6], &[0xe3, 0xc6, 0xa7, 0xc2]);
        // Sync-flushed: ends with an empty stored block.
        assert_eq!(&wire[wire.len() - 4..], &[0, 0, 0xff, 0xff]);
    }

    /// A client end for session tests: encodes its frames, decodes ours.
    struct Client {
        io: tokio::io::DuplexStream,
        encoder: Encoder,
        decoder: Decoder,
        buf: BytesMut,
    }

    impl Client {
        fn new(io: tokio::io::DuplexStream) -> Client {
            Client {
                io,
                encoder: Encoder::new().unwrap(),
                decoder: Decoder::default(),
                buf: BytesMut::new(),
            }
        }

        async fn send(&mut self, frame: Frame) {
            let mut wire = Vec::new();
            self.encoder.encode(&frame, &mut wire).unwrap();
            self.io.write_all(&wire).await.unwrap();
        }

        async fn recv(&mut self) -> Option<Frame> {
            loop {
                if let Some(frame) = self.decoder.decode(&mut self.buf).unwrap() {
                    return Some(frame);
                }
                if self.io.read_buf(&mut self.buf).await.unwrap() == 0 {
                    return None;
                }
            }
        }
    }

    fn syn(stream_id: u32) -> Frame {
        Frame::SynStream {
            stream_id,
            associated: 0,
            priority: 0,
            fin: false,
            unidirectional: false,
            headers: headers(&[("streamtype", "data")]),
        }
    }

    #[tokio::test]
    async fn streams_are_accepted_read_and_credited_back() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut session = Session::start(server).unwrap();
        let mut client = Client::new(client);
        client.send(syn(1)).await;
        let incoming = session.next().await.unwrap();
        assert_eq!(incoming.header("streamType"), Some("data"));
        let (mut reader, writer) = incoming.accept();
        assert_eq!(
            client.recv().await.unwrap(),
            Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: Vec::new()
            }
        );
        let chunk = Bytes::from(vec![7u8; 20_000]);
        client
            .send(Frame::Data {
                stream_id: 1,
                fin: true,
                data: chunk.clone(),
            })
            .await;
        assert_eq!(reader.read().await.unwrap(), chunk);
        assert_eq!(reader.read().await, None);
        // 20000 bytes consumed: credited for the stream and the session.
        assert_eq!(
            client.recv().await.unwrap(),
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 20_000
            }
        );
        assert_eq!(
            client.recv().await.unwrap(),
            Frame::WindowUpdate {
                stream_id: 0,
                delta: 20_000
            }
        );
        client.send(Frame::Ping(1)).await;
        assert_eq!(client.recv().await.unwrap(), Frame::Ping(1));
        writer.write(b"answer").await.unwrap();
        assert_eq!(session.handle().open_streams(), 1);
        writer.close();
        // Finished both ways: out of the table.
        assert_eq!(session.handle().open_streams(), 0);
        assert_eq!(
            client.recv().await.unwrap(),
            Frame::Data {
                stream_id: 1,
                fin: false,
                data: Bytes::from_static(b"answer")
            }
        );
        assert_eq!(
            client.recv().await.unwrap(),
            Frame::Data {
                stream_id: 1,
                fin: true,
                data: Bytes::new()
            }
        );
        session.handle().shutdown();
        assert_eq!(
            client.recv().await.unwrap(),
            Frame::GoAway {
                last_good: 1,
                status: 0
            }
        );
        assert_eq!(client.recv().await, None);
    }

    #[tokio::test]
    async fn sends_wait_for_the_window_once_the_peer_does_flow_control() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut session = Session::start(server).unwrap();
        let mut client = Client::new(client);
        client.send(syn(1)).await;
        let (_reader, writer) = session.next().await.unwrap().accept();
        client.recv().await.unwrap();
        // The peer announces flow control with a small stream window.
        client
            .send(Frame::Settings(vec![(0, SETTINGS_INITIAL_WINDOW, 1000)]))
            .await;
        client.send(Frame::Ping(3)).await;
        assert_eq!(client.recv().await.unwrap(), Frame::Ping(3));
        let sending = tokio::spawn(async move { writer.write(&[1u8; 2500]).await });
        let sizes = |frame: Frame| match frame {
            Frame::Data { data, .. } => data.len(),
            other => panic!("not data: {other:?}"),
        };
        assert_eq!(sizes(client.recv().await.unwrap()), 1000);
        let blocked = tokio::time::timeout(std::time::Duration::from_millis(100), client.recv()).await;
        assert!(blocked.is_err(), "sent past the window");
        client
            .send(Frame::WindowUpdate {
                stream_id: 1,
                delta: 5000,
            })
            .await;
        assert_eq!(sizes(client.recv().await.unwrap()), 1500);
        sending.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn without_flow_control_from_the_peer_large_writes_do_not_stall() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut session = Session::start(server).unwrap();
        let mut client = Client::new(client);
        client.send(syn(1)).await;
        let (_reader, writer) = session.next().await.unwrap().accept();
        client.recv().await.unwrap();
        let data = vec![9u8; 200_000];
        let sending = tokio::spawn(async move { writer.write(&data).await });
        let mut received = 0;
        while received < 200_000 {
            if let Frame::Data { data, .. } = client.recv().await.unwrap() {
                received += data.len();
            }
        }
        sending.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_reset_ends_the_streams_reads_and_writes() {
        let (client, server) = tokio::io::duplex(1 << 20);
        let mut session = Session::start(server).unwrap();
        let mut client = Client::new(client);
        client.send(syn(1)).await;
        let (mut reader, writer) = session.next().await.unwrap().accept();
        client.recv().await.unwrap();
        client
            .send(Frame::RstStream {
                stream_id: 1,
                status: CANCEL,
            })
            .await;
        assert_eq!(reader.read().await, None);
        writer.reset_or_gone().await;
        assert_eq!(session.handle().open_streams(), 0);
        assert_eq!(writer.write(b"late").await, Err(Closed));
    }
}
