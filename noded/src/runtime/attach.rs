//! Attaching to a container's own stdio (`kubectl attach`, `kubectl run -i`).
//!
//! The shim holds the container's stdio (pipes, or the master of its terminal), so it serves
//! attach: it listens on a unix socket ([`socket_path`]) and, besides copying output into the
//! CRI log, fans it out to every attached client; when the container was created with stdin,
//! it forwards a client's input to the container, and it applies a client's terminal sizes to
//! the container's terminal. When a client's input ends it does what containerd's CRI does:
//! with `stdinOnce` and no terminal, the container's stdin closes for good; otherwise that
//! client's session ends and the stdin stays open for the next one. The shim side is [`Hub`]
//! (plain threads: the shim has no async runtime); noded's side is [`Runtime::attach`].
//!
//! The wire protocol, after the client's one header line `stdin=0|1 stdout=0|1 stderr=0|1`:
//! both sides send frames `[kind][length: u32 big endian][data]`. The shim's kinds are
//! 1 stdout and 2 stderr (a terminal's output is stdout); the client's are 0 stdin and
//! 4 resize (data: width and height, u16 big endian each), and it half-closes to end its
//! input. The shim closes the connection once the container's output (or the session) ended.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ContainerState, Layout, Runtime, RuntimeError};

/// A client frame of stdin data.
const STDIN: u8 = 0;
/// A client frame with a terminal size.
const RESIZE: u8 = 4;
/// The largest frame a client may send.
const MAX_FRAME: usize = 1 << 20;

/// Output chunks queued for one slow client before it is dropped.
const CLIENT_QUEUE: usize = 1024;
/// How long a client may take to send its header.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the shim of container `id` serves attach: a short name under the state dir (unix
/// socket paths are limited to 108 bytes; container ids are long).
pub(crate) fn socket_path(layout: &Layout, id: &str) -> PathBuf {
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    let name: String = digest.as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect();
    layout.root.join("attach").join(format!("{name}.sock"))
}

/// Where the shim of container `id` receives its terminal's master from libcontainer.
pub(crate) fn console_socket_path(layout: &Layout, id: &str) -> PathBuf {
    socket_path(layout, id).with_extension("console")
}

/// One frame: `[kind][length][data]`.
fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(data.len() + 5);
    frame.push(kind);
    frame.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    frame.extend_from_slice(data);
    frame
}

/// Reads the next client frame; `None` at the end of the client's input.
fn read_frame(reader: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 5];
    reader.read_exact(&mut head).ok()?;
    let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if length > MAX_FRAME {
        return None;
    }
    let mut data = vec![0u8; length];
    reader.read_exact(&mut data).ok()?;
    Some((head[0], data))
}

/// Which streams a session wants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Wants {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

impl Wants {
    fn header(self) -> String {
        format!(
            "stdin={} stdout={} stderr={}\n",
            u8::from(self.stdin),
            u8::from(self.stdout),
            u8::from(self.stderr)
        )
    }

    fn parse(line: &str) -> Wants {
        let mut wants = Wants::default();
        for part in line.split_whitespace() {
            match part {
                "stdin=1" => wants.stdin = true,
                "stdout=1" => wants.stdout = true,
                "stderr=1" => wants.stderr = true,
                _ => {}
            }
        }
        wants
    }
}

/// One attached client, as the shim sees it.
struct Client {
    id: u64,
    wants: Wants,
    output: SyncSender<(u8, Vec<u8>)>,
}

/// The shim's side: the attached clients, the container's stdin and its terminal.
pub(crate) struct Hub {
    clients: Mutex<Vec<Client>>,
    stdin: Mutex<Option<File>>,
    /// The container was created with a stdin (it may be closed since).
    has_stdin: bool,
    /// The terminal's master, when the container has one (for its size).
    terminal: Option<File>,
    stdin_once: bool,
    writers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    next_id: AtomicU64,
}

impl Hub {
    /// A hub holding the container's stdin (when it has one) and its terminal's master (when
    /// it has a terminal).
    pub fn new(stdin: Option<File>, terminal: Option<File>, stdin_once: bool) -> Arc<Hub> {
        Arc::new(Hub {
            clients: Mutex::default(),
            has_stdin: stdin.is_some(),
            stdin: Mutex::new(stdin),
            terminal,
            stdin_once,
            writers: Mutex::default(),
            next_id: AtomicU64::new(0),
        })
    }

    /// Listens at `path` on a thread of its own; it ends with the process.
    pub fn listen(self: &Arc<Self>, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let hub = self.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let hub = hub.clone();
                std::thread::spawn(move || hub.serve(stream));
            }
        });
        Ok(())
    }

    fn serve(&self, stream: UnixStream) {
        let _ = stream.set_read_timeout(Some(HEADER_TIMEOUT));
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(stream) => stream,
            Err(_) => return,
        });
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let _ = stream.set_read_timeout(None);
        let wants = Wants::parse(&line);
        let (output, queue) = std::sync::mpsc::sync_channel::<(u8, Vec<u8>)>(CLIENT_QUEUE);
        let mut writer = stream;
        let handle = std::thread::spawn(move || {
            for (stream, data) in queue {
                if writer.write_all(&frame(stream, &data)).is_err() {
                    break;
                }
            }
            let _ = writer.shutdown(std::net::Shutdown::Both);
        });
        self.writers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Client { id, wants, output });
        self.read_input(id, wants, reader);
    }

    /// Applies a client's input (stdin data, terminal sizes) until the client ends it, then
    /// closes the container's stdin (`stdinOnce` without a terminal) or ends the session.
    fn read_input(&self, id: u64, wants: Wants, mut reader: impl Read) {
        while let Some((kind, data)) = read_frame(&mut reader) {
            match kind {
                STDIN if wants.stdin => {
                    let mut stdin = self.stdin.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(pipe) = stdin.as_mut()
                        && pipe.write_all(&data).is_err()
                    {
                        stdin.take();
                    }
                }
                RESIZE => {
                    if let (Some(terminal), [w0, w1, h0, h1]) = (&self.terminal, data.as_slice()) {
                        let size = rustix::termios::Winsize {
                            ws_row: u16::from_be_bytes([*h0, *h1]),
                            ws_col: u16::from_be_bytes([*w0, *w1]),
                            ws_xpixel: 0,
                            ws_ypixel: 0,
                        };
                        let _ = rustix::termios::tcsetwinsize(terminal, size);
                    }
                }
                _ => {}
            }
        }
        if !wants.stdin || !self.has_stdin {
            // Without a stdin to close, the input's end changes nothing (containerd's too).
            return;
        }
        if self.stdin_once && self.terminal.is_none() {
            // The first session with stdin closes it for good.
            self.stdin.lock().unwrap_or_else(PoisonError::into_inner).take();
        } else {
            // Dropping the client's queue ends its writer, which closes the connection.
            self.clients
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|client| client.id != id);
        }
    }

    /// Sends output of `stream` (1 stdout, 2 stderr) to the clients that want it; a client
    /// too slow to keep up is dropped.
    pub fn broadcast(&self, stream: u8, data: &[u8]) {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.retain(|client| {
            let wanted = match stream {
                1 => client.wants.stdout,
                _ => client.wants.stderr,
            };
            if !wanted {
                return true;
            }
            match client.output.try_send((stream, data.to_vec())) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            }
        });
    }

    /// Ends every session once the container's output ended, giving the clients up to
    /// `wait` to receive what is queued.
    pub fn close(&self, wait: Duration) {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.stdin.lock().unwrap_or_else(PoisonError::into_inner).take();
        let writers = std::mem::take(&mut *self.writers.lock().unwrap_or_else(PoisonError::into_inner));
        let deadline = Instant::now() + wait;
        for writer in writers {
            while !writer.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// noded's end of an attach session: output frames, and input (stdin, terminal sizes).
#[derive(Debug)]
pub struct Attached {
    pub output: AttachOutput,
    pub input: AttachInput,
}

/// The container's output as the shim sends it.
#[derive(Debug)]
pub struct AttachOutput(tokio::net::unix::OwnedReadHalf);

impl AttachOutput {
    /// The next chunk, with its stream (1 stdout, 2 stderr); `None` once the container's
    /// output (or the session) ended.
    pub async fn next(&mut self) -> std::io::Result<Option<(u8, Vec<u8>)>> {
        let mut head = [0u8; 5];
        match self.0.read_exact(&mut head).await {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(err) => return Err(err),
        }
        let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut data = vec![0u8; length];
        self.0.read_exact(&mut data).await?;
        Ok(Some((head[0], data)))
    }
}

/// Input for the container: stdin (when the session asked for it) and terminal sizes.
/// Dropping it ends the session's input, as [`AttachInput::close`].
#[derive(Debug)]
pub struct AttachInput(tokio::net::unix::OwnedWriteHalf);

impl AttachInput {
    /// Writes to the container's stdin.
    pub async fn write_stdin(&mut self, data: &[u8]) -> std::io::Result<()> {
        for chunk in data.chunks(MAX_FRAME) {
            self.0.write_all(&frame(STDIN, chunk)).await?;
        }
        Ok(())
    }

    /// Sets the size of the container's terminal (nothing when it has none).
    pub async fn resize(&mut self, width: u16, height: u16) -> std::io::Result<()> {
        let mut size = width.to_be_bytes().to_vec();
        size.extend_from_slice(&height.to_be_bytes());
        self.0.write_all(&frame(RESIZE, &size)).await
    }

    /// Ends this session's input: with `stdinOnce` and no terminal the container's stdin
    /// closes; otherwise, when the session had stdin, the session ends.
    pub async fn close(mut self) {
        let _ = self.0.shutdown().await;
    }
}

impl Runtime {
    /// Attaches to running container `id`'s stdio; `stdin` is honoured only when the
    /// container was created with stdin.
    pub async fn attach(
        &self,
        id: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<Attached, RuntimeError> {
        if !matches!(self.state(id)?, ContainerState::Running { .. }) {
            return Err(RuntimeError::NotRunning(id.to_owned()));
        }
        let path = socket_path(&self.layout, id);
        let io = |err| RuntimeError::Io(format!("attaching to {id}"), err);
        let mut stream = tokio::net::UnixStream::connect(&path).await.map_err(io)?;
        let wants = Wants {
            stdin,
            stdout,
            stderr,
        };
        stream.write_all(wants.header().as_bytes()).await.map_err(io)?;
        let (read, write) = stream.into_split();
        Ok(Attached {
            output: AttachOutput(read),
            input: AttachInput(write),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn headers_round_trip() {
        let wants = Wants {
            stdin: true,
            stdout: false,
            stderr: true,
        };
        assert_eq!(wants.header(), "stdin=1 stdout=0 stderr=1\n");
        assert_eq!(Wants::parse(&wants.header()), wants);
    }

    #[test]
    fn socket_paths_are_short() {
        let layout = Layout::new(Path::new("/var/lib/rudder/runtime"));
        let path = socket_path(&layout, &"x".repeat(128));
        assert!(path.as_os_str().len() < 100, "{}", path.display());
        assert_ne!(path, socket_path(&layout, "other"));
    }

    /// A client that sent its header, once the hub registered it.
    async fn connect(hub: &Hub, path: &Path, header: &[u8]) -> tokio::net::UnixStream {
        let before = hub.clients.lock().unwrap().len();
        let mut stream = tokio::net::UnixStream::connect(path).await.unwrap();
        stream.write_all(header).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while hub.clients.lock().unwrap().len() <= before {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stream
    }

    fn read_all(reader: std::io::PipeReader) -> tokio::task::JoinHandle<String> {
        tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            let mut text = String::new();
            reader.read_to_string(&mut text).unwrap();
            text
        })
    }

    #[tokio::test]
    async fn the_hub_fans_out_output_and_forwards_stdin_once() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let (stdin_read, stdin_write) = std::io::pipe().unwrap();
        let hub = Hub::new(
            Some(File::from(std::os::fd::OwnedFd::from(stdin_write))),
            None,
            true,
        );
        let path = socket_path(&layout, "c1");
        hub.listen(&path).unwrap();

        let first = connect(&hub, &path, b"stdin=1 stdout=1 stderr=0\n").await;
        let second = connect(&hub, &path, b"stdin=0 stdout=0 stderr=1\n").await;
        hub.broadcast(1, b"out");
        hub.broadcast(2, b"err");

        let (first_read, first_write) = first.into_split();
        let mut input = AttachInput(first_write);
        input.write_stdin(b"typed").await.unwrap();
        // A resize without a terminal is ignored.
        input.resize(80, 24).await.unwrap();
        input.close().await;
        // stdinOnce without a terminal: the container's stdin closes, the session goes on.
        assert_eq!(read_all(stdin_read).await.unwrap(), "typed");
        hub.broadcast(1, b"more");

        hub.close(Duration::from_secs(5));
        let mut first = AttachOutput(first_read);
        assert_eq!(first.next().await.unwrap(), Some((1, b"out".to_vec())));
        assert_eq!(first.next().await.unwrap(), Some((1, b"more".to_vec())));
        assert_eq!(first.next().await.unwrap(), None);
        let (second_read, _second_write) = second.into_split();
        let mut second = AttachOutput(second_read);
        assert_eq!(second.next().await.unwrap(), Some((2, b"err".to_vec())));
        assert_eq!(second.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn without_a_stdin_the_end_of_input_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let hub = Hub::new(None, None, false);
        let path = socket_path(&layout, "c1");
        hub.listen(&path).unwrap();
        let client = connect(&hub, &path, b"stdin=1 stdout=1 stderr=0\n").await;
        let (read, write) = client.into_split();
        let mut input = AttachInput(write);
        input.write_stdin(b"dropped").await.unwrap();
        input.close().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        hub.broadcast(1, b"still attached");
        hub.close(Duration::from_secs(5));
        let mut output = AttachOutput(read);
        assert_eq!(
            output.next().await.unwrap(),
            Some((1, b"still attached".to_vec()))
        );
        assert_eq!(output.next().await.unwrap(), None);
    }

    #[tokio::test]
    async fn with_a_terminal_sessions_resize_it_and_end_with_their_input() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let master = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/ptmx")
            .unwrap();
        let (stdin_read, stdin_write) = std::io::pipe().unwrap();
        let hub = Hub::new(
            Some(File::from(std::os::fd::OwnedFd::from(stdin_write))),
            Some(master.try_clone().unwrap()),
            true,
        );
        let path = socket_path(&layout, "c1");
        hub.listen(&path).unwrap();

        // A session without stdin resizes the terminal too.
        let watcher = connect(&hub, &path, b"stdin=0 stdout=1 stderr=0\n").await;
        let (watcher_read, watcher_write) = watcher.into_split();
        let mut watcher_input = AttachInput(watcher_write);
        watcher_input.resize(100, 30).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let size = rustix::termios::tcgetwinsize(&master).unwrap();
            if (size.ws_col, size.ws_row) == (100, 30) {
                break;
            }
            assert!(Instant::now() < deadline, "the terminal was not resized");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let session = connect(&hub, &path, b"stdin=1 stdout=1 stderr=0\n").await;
        let (session_read, session_write) = session.into_split();
        let mut input = AttachInput(session_write);
        input.resize(132, 43).await.unwrap();
        input.write_stdin(b"ls\n").await.unwrap();
        input.close().await;
        let mut session = AttachOutput(session_read);
        // Its input ended: the session ends, the terminal's stdin stays open (stdinOnce
        // closes only a stdin without a terminal).
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), session.next())
                .await
                .unwrap()
                .unwrap(),
            None
        );
        let size = rustix::termios::tcgetwinsize(&master).unwrap();
        assert_eq!((size.ws_col, size.ws_row), (132, 43));
        hub.broadcast(1, b"prompt");
        let mut watcher = AttachOutput(watcher_read);
        assert_eq!(watcher.next().await.unwrap(), Some((1, b"prompt".to_vec())));
        assert!(hub.stdin.lock().unwrap().is_some());
        hub.close(Duration::from_secs(5));
        assert_eq!(read_all(stdin_read).await.unwrap(), "ls\n");
        drop(watcher_input);
    }
}
