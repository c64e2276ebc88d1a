//! Attaching to a container's own stdio (`kubectl attach`, `kubectl run -i`).
//!
//! The shim holds the container's stdio, so it serves attach: it listens on a unix socket
//! ([`socket_path`]) and, besides copying output into the CRI log, fans it out to every
//! attached client; when the container was created with stdin, it forwards a client's input
//! to the container, closing the container's stdin after the first session that used it when
//! `stdinOnce` is set. The shim side is [`Hub`] (plain threads: the shim has no async runtime);
//! noded's side is [`Runtime::attach`].
//!
//! The wire protocol, after the client's one header line `stdin=0|1 stdout=0|1 stderr=0|1`:
//! the shim sends frames `[stream: 1 stdout, 2 stderr][length: u32 big endian][data]`; the
//! client sends raw stdin bytes and half-closes to end its input. The shim closes the
//! connection once the container's output ended.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ContainerState, Layout, Runtime, RuntimeError};

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
    wants: Wants,
    output: SyncSender<(u8, Vec<u8>)>,
}

/// The shim's side: the attached clients and the container's stdin.
pub(crate) struct Hub {
    clients: Mutex<Vec<Client>>,
    stdin: Mutex<Option<std::io::PipeWriter>>,
    stdin_once: bool,
    writers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Hub {
    /// A hub holding the container's stdin (when it has one).
    pub fn new(stdin: Option<std::io::PipeWriter>, stdin_once: bool) -> Arc<Hub> {
        Arc::new(Hub {
            clients: Mutex::default(),
            stdin: Mutex::new(stdin),
            stdin_once,
            writers: Mutex::default(),
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
                let mut frame = Vec::with_capacity(data.len() + 5);
                frame.push(stream);
                frame.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
                frame.extend_from_slice(&data);
                if writer.write_all(&frame).is_err() {
                    break;
                }
            }
            let _ = writer.shutdown(std::net::Shutdown::Both);
        });
        self.writers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Client { wants, output });
        if wants.stdin {
            self.forward_stdin(reader);
        }
    }

    /// Copies a client's input into the container's stdin until the client ends it.
    fn forward_stdin(&self, mut reader: BufReader<UnixStream>) {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let read = match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(read) => read,
            };
            let mut stdin = self.stdin.lock().unwrap_or_else(PoisonError::into_inner);
            let Some(pipe) = stdin.as_mut() else { break };
            if pipe.write_all(&buf[..read]).is_err() {
                break;
            }
        }
        if self.stdin_once {
            // The first session with stdin closes it for good.
            self.stdin.lock().unwrap_or_else(PoisonError::into_inner).take();
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

/// noded's end of an attach session: output frames and, when asked for, the input.
#[derive(Debug)]
pub struct Attached {
    pub output: AttachOutput,
    pub input: Option<AttachInput>,
}

/// The container's output as the shim sends it.
#[derive(Debug)]
pub struct AttachOutput(tokio::net::unix::OwnedReadHalf);

impl AttachOutput {
    /// The next chunk, with its stream (1 stdout, 2 stderr); `None` once the container's
    /// output ended.
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

/// Input for the container's stdin.
#[derive(Debug)]
pub struct AttachInput(tokio::net::unix::OwnedWriteHalf);

impl AttachInput {
    pub async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.0.write_all(data).await
    }

    /// Ends this session's input (with `stdinOnce`, the container's stdin closes).
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
            input: stdin.then_some(AttachInput(write)),
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

    #[tokio::test]
    async fn the_hub_fans_out_output_and_forwards_stdin_once() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(dir.path(), "/bin/false");
        let id = "c1";
        // A fake running container: a shim record naming a live "shim" is not needed for
        // the hub itself, so talk to the socket directly.
        let (stdin_read, stdin_write) = std::io::pipe().unwrap();
        let hub = Hub::new(Some(stdin_write), true);
        let path = socket_path(&runtime.layout, id);
        hub.listen(&path).unwrap();

        let mut first = tokio::net::UnixStream::connect(&path).await.unwrap();
        first.write_all(b"stdin=1 stdout=1 stderr=0\n").await.unwrap();
        let mut second = tokio::net::UnixStream::connect(&path).await.unwrap();
        second.write_all(b"stdin=0 stdout=0 stderr=1\n").await.unwrap();
        // Let the hub register both.
        let deadline = Instant::now() + Duration::from_secs(5);
        while hub.clients.lock().unwrap().len() < 2 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        hub.broadcast(1, b"out");
        hub.broadcast(2, b"err");

        first.write_all(b"typed").await.unwrap();
        first.shutdown().await.unwrap();
        let mut typed = String::new();
        tokio::task::spawn_blocking(move || {
            let mut stdin_read = stdin_read;
            stdin_read.read_to_string(&mut typed).unwrap();
            typed
        })
        .await
        .map(|typed| assert_eq!(typed, "typed"))
        .unwrap();

        hub.close(Duration::from_secs(5));
        let (first_read, _first_write) = first.into_split();
        let mut first = AttachOutput(first_read);
        assert_eq!(first.next().await.unwrap(), Some((1, b"out".to_vec())));
        assert_eq!(first.next().await.unwrap(), None);
        let (second_read, _second_write) = second.into_split();
        let mut second = AttachOutput(second_read);
        assert_eq!(second.next().await.unwrap(), Some((2, b"err".to_vec())));
        assert_eq!(second.next().await.unwrap(), None);
    }
}
