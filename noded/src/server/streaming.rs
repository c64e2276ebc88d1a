//! `exec` and `attach`: the kubelet's remotecommand endpoints, over two transports.
//!
//! `/exec/{namespace}/{pod}[/{uid}]/{container}?command=..&stdin=1&stdout=1&stderr=1&tty=1` and
//! `/attach/...` upgrade either to a WebSocket speaking the channel protocols
//! (`v5.channel.k8s.io`, `v4.channel.k8s.io`, `v4.base64.channel.k8s.io`, and the older
//! `channel.k8s.io` and `base64.channel.k8s.io`): every message starts with its channel
//! (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; v5 adds 255 to close a stream); or to
//! SPDY/3.1 (`X-Stream-Protocol-Version` `v4.channel.k8s.io` down to `channel.k8s.io`), where the
//! client opens one stream per channel named by its `streamType` header, as upstream's
//! `remotecommand/httpstream.go`. Both transports feed one [`Session`] (output by channel,
//! stdin, terminal sizes, the client's departure) that exec and attach run on; the session
//! ends with a metav1.Status on the error channel (v4 and later: JSON; before: the message
//! only), as upstream's `ServeExec`/`ServeAttach`.
//!
//! The upgrade handshakes of both transports are here too, for [`super::portforward`].
//! It runs commands and attaches only through [`crate::runtime::Runtime`], reached through
//! the [`PodSource`](super::PodSource).

use std::future::Future;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tracing::Instrument;

use super::spdy::{self, StreamWriter};
use super::websocket::{self, Message};
use super::{Body, PodSource, text};
use crate::runtime::attach::AttachInput;
use crate::runtime::exec::{ExecProcess, ExecStdio, Tty};
use crate::runtime::{Runtime, RuntimeError};

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5's stream close signal: `[255, channel]`.
const STREAM_CLOSE: u8 = 255;
/// How long output still buffered is forwarded after the command ended.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a SPDY client may take to open its streams (upstream's streamCreationTimeout).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// The remotecommand protocols over SPDY, the server's order (upstream's
/// `SupportedStreamingProtocols`).
const SPDY_PROTOCOLS: [&str; 4] = [
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

/// A channel protocol the server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Protocol {
    name: &'static str,
    base64: bool,
    /// The error channel carries a JSON Status (v4 and later) rather than a message.
    json_status: bool,
    /// The client may half-close streams (v5).
    stream_close: bool,
}

const PROTOCOLS: [Protocol; 5] = [
    Protocol {
        name: "v5.channel.k8s.io",
        base64: false,
        json_status: true,
        stream_close: true,
    },
    Protocol {
        name: "v4.channel.k8s.io",
        base64: false,
        json_status: true,
        stream_close: false,
    },
    Protocol {
        name: "v4.base64.channel.k8s.io",
        base64: true,
        json_status: true,
        stream_close: false,
    },
    Protocol {
        name: "channel.k8s.io",
        base64: false,
        json_status: false,
        stream_close: false,
    },
    Protocol {
        name: "base64.channel.k8s.io",
        base64: true,
        json_status: false,
        stream_close: false,
    },
];

/// The first protocol of the client's list the server speaks (upstream's `handshake`); a
/// client asking for none gets the unversioned binary protocol.
fn negotiate(requested: &[String]) -> Result<Option<Protocol>, String> {
    if requested.is_empty() {
        return Ok(None);
    }
    requested
        .iter()
        .find_map(|wanted| PROTOCOLS.iter().find(|p| p.name == wanted).copied())
        .map(Some)
        .ok_or_else(|| {
            let supported: Vec<&str> = PROTOCOLS.iter().map(|p| p.name).collect();
            format!(
                "requested protocol(s) are not supported: [{}]; supports [{}]",
                requested.join(" "),
                supported.join(" ")
            )
        })
}

/// The streams a request asks for (upstream's `NewOptions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Options {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
}

impl Options {
    fn parse(query: &str) -> Result<Options, String> {
        let flag = |name: &str| {
            form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == name)
                .is_some_and(|(_, value)| value == "1")
        };
        let tty = flag("tty");
        let options = Options {
            stdin: flag("stdin"),
            stdout: flag("stdout"),
            // A terminal has no separate stderr.
            stderr: flag("stderr") && !tty,
            tty,
        };
        if !options.stdin && !options.stdout && !options.stderr {
            return Err("you must specify at least 1 of stdin, stdout, stderr".to_owned());
        }
        Ok(options)
    }
}

/// What a session runs.
enum Action {
    Exec(Vec<String>),
    Attach,
}

/// Serves `/exec/...` or `/attach/...` (`rest`: the path after the endpoint name).
pub(super) async fn serve(
    pods: &dyn PodSource,
    exec: bool,
    rest: &[&str],
    request: http::Request<Incoming>,
) -> http::Response<Body> {
    let (namespace, pod_name, container) = match rest {
        [namespace, pod, container] | [namespace, pod, _, container] => (*namespace, *pod, *container),
        _ => return text(http::StatusCode::NOT_FOUND, "404 page not found".to_owned()),
    };
    let query = request.uri().query().unwrap_or("");
    let mut options = match Options::parse(query) {
        Ok(options) => options,
        Err(message) => return text(http::StatusCode::BAD_REQUEST, message),
    };
    let action = if exec {
        let command: Vec<String> = form_urlencoded::parse(query.as_bytes())
            .filter(|(key, _)| key == "command")
            .map(|(_, value)| value.into_owned())
            .collect();
        Action::Exec(command)
    } else {
        Action::Attach
    };
    let Some(pod) = pods.pod(namespace, pod_name) else {
        return text(http::StatusCode::NOT_FOUND, "pod does not exist".to_owned());
    };
    let (Some(runtime), Some(id)) = (pods.runtime(), pods.running_container(&pod, container)) else {
        return text(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("container not found ({container:?})"),
        );
    };
    if matches!(action, Action::Attach) {
        // As the kubelet: whether the process runs in a terminal is the container's, whatever
        // the request says; the CRI refuses a terminal with stderr.
        options.tty = container_tty(&pod, container);
        if options.tty && options.stderr {
            return text(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "rpc error: code = InvalidArgument desc = tty and stderr cannot both be true".to_owned(),
            );
        }
    }
    let span = tracing::info_span!("stream", pod = %format!("{namespace}/{pod_name}"), container, exec);
    if !websocket::is_websocket_request(request.headers()) {
        return upgrade_spdy(request, &SPDY_PROTOCOLS, span, move |io, protocol| async move {
            let Some(session) = Session::start_spdy(io, protocol, options).await else {
                return;
            };
            run(session, &runtime, &id, action, options).await;
        });
    }
    let protocol = match negotiate(&websocket::requested_protocols(request.headers())) {
        Ok(protocol) => protocol,
        Err(message) => return text(http::StatusCode::BAD_REQUEST, message),
    };
    let name = protocol.map_or("", |p| p.name);
    let protocol = protocol.unwrap_or(Protocol {
        name: "",
        base64: false,
        json_status: false,
        stream_close: false,
    });
    upgrade_websocket(request, name, span, move |io| async move {
        let session = Session::start(io, protocol, options);
        run(session, &runtime, &id, action, options).await;
    })
}

/// Whether `container` of `pod` (app, init or ephemeral) was created with a terminal.
fn container_tty(pod: &k8s_openapi::api::core::v1::Pod, container: &str) -> bool {
    let Some(spec) = &pod.spec else {
        return false;
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == container)
        .map(|c| c.tty)
        .or_else(|| {
            spec.ephemeral_containers
                .iter()
                .flatten()
                .find(|c| c.name == container)
                .map(|c| c.tty)
        })
        .flatten()
        .unwrap_or(false)
}

/// Answers a WebSocket upgrade (with `protocol` unless empty) and runs `session` on the
/// upgraded connection.
pub(super) fn upgrade_websocket<F, Fut>(
    request: http::Request<Incoming>,
    protocol: &str,
    span: tracing::Span,
    session: F,
) -> http::Response<Body>
where
    F: FnOnce(TokioIo<hyper::upgrade::Upgraded>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let Some(key) = request
        .headers()
        .get(http::header::SEC_WEBSOCKET_KEY)
        .and_then(|key| key.to_str().ok())
    else {
        return text(
            http::StatusCode::BAD_REQUEST,
            "missing Sec-WebSocket-Key".to_owned(),
        );
    };
    let mut response = switching_protocols("websocket");
    let headers = response.headers_mut();
    if let Ok(accept) = http::HeaderValue::from_str(&websocket::accept_key(key)) {
        headers.insert(http::header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if !protocol.is_empty()
        && let Ok(protocol) = http::HeaderValue::from_str(protocol)
    {
        headers.insert(http::header::SEC_WEBSOCKET_PROTOCOL, protocol);
    }
    spawn_upgraded(request, span, session);
    response
}

/// The header that names remotecommand and port-forward protocols over SPDY.
const PROTOCOL_VERSION: &str = "x-stream-protocol-version";

/// Negotiates the protocol as upstream's `httpstream.Handshake` (the client's first one the
/// server speaks), answers the SPDY/3.1 upgrade and runs `session` on the upgraded connection
/// with the protocol chosen.
pub(super) fn upgrade_spdy<F, Fut>(
    request: http::Request<Incoming>,
    protocols: &[&'static str],
    span: tracing::Span,
    session: F,
) -> http::Response<Body>
where
    F: FnOnce(TokioIo<hyper::upgrade::Upgraded>, &'static str) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let headers = request.headers();
    let values: Vec<&str> = headers
        .get_all(PROTOCOL_VERSION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    if values.is_empty() {
        return text(
            http::StatusCode::BAD_REQUEST,
            format!(
                "unable to upgrade: header X-Stream-Protocol-Version does not exist in request with {} headers\n",
                headers.keys_len()
            ),
        );
    }
    let client: Vec<&str> = values
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let Some(protocol) = client
        .iter()
        .find_map(|wanted| protocols.iter().find(|p| *p == wanted).copied())
    else {
        let mut response = text(
            http::StatusCode::FORBIDDEN,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports [{}], server accepts [{}]\n",
                client.join(" "),
                protocols.join(" ")
            ),
        );
        for accepted in protocols {
            response.headers_mut().append(
                "x-accepted-stream-protocol-versions",
                http::HeaderValue::from_static(accepted),
            );
        }
        return response;
    };
    let has = |name: http::header::HeaderName, token: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.to_ascii_lowercase().contains(token))
    };
    if !has(http::header::CONNECTION, "upgrade") || !has(http::header::UPGRADE, "spdy/3.1") {
        return text(
            http::StatusCode::BAD_REQUEST,
            "unable to upgrade: missing upgrade headers in request\n".to_owned(),
        );
    }
    let mut response = switching_protocols("SPDY/3.1");
    response
        .headers_mut()
        .insert(PROTOCOL_VERSION, http::HeaderValue::from_static(protocol));
    spawn_upgraded(request, span, move |io| session(io, protocol));
    response
}

/// An empty 101 answer upgrading to `upgrade`.
fn switching_protocols(upgrade: &'static str) -> http::Response<Body> {
    let mut response = http::Response::new(Empty::<Bytes>::new().boxed_unsync());
    *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    headers.insert(http::header::UPGRADE, http::HeaderValue::from_static(upgrade));
    response
}

/// Runs `session` on the connection once hyper hands it over after the 101.
fn spawn_upgraded<F, Fut>(request: http::Request<Incoming>, span: tracing::Span, session: F)
where
    F: FnOnce(TokioIo<hyper::upgrade::Upgraded>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(
        async move {
            match hyper::upgrade::on(request).await {
                Ok(upgraded) => session(TokioIo::new(upgraded)).await,
                Err(err) => tracing::debug!(error = %err, "the upgrade failed"),
            }
        }
        .instrument(span),
    );
}

/// An open session, whatever its transport: the writer task's queue and what the reader
/// tasks deliver.
struct Session {
    protocol: Protocol,
    /// Announce the streams with an empty message first (WebSocket).
    announce: bool,
    out: mpsc::Sender<Out>,
    /// Input: stdin data, `None` when the client closed stdin.
    stdin: mpsc::Receiver<Option<Vec<u8>>>,
    /// Terminal sizes.
    resize: mpsc::Receiver<(u16, u16)>,
    /// Fires when the client went away (or closed the WebSocket).
    gone: tokio::sync::oneshot::Receiver<()>,
    writer: tokio::task::JoinHandle<()>,
}

/// What the writer task sends.
enum Out {
    Data(u8, Vec<u8>),
    Pong(Vec<u8>),
    /// A normal closure: the last frame.
    Close,
}

impl Session {
    fn start<S: AsyncRead + AsyncWrite + Send + 'static>(
        io: S,
        protocol: Protocol,
        options: Options,
    ) -> Session {
        let (read, write) = tokio::io::split(io);
        let (out, out_rx) = mpsc::channel::<Out>(64);
        let (stdin_tx, stdin) = mpsc::channel(16);
        let (resize_tx, resize) = mpsc::channel(4);
        let (gone_tx, gone) = tokio::sync::oneshot::channel();
        let writer = tokio::spawn(write_loop(write, out_rx, protocol));
        let pong = out.clone();
        tokio::spawn(async move {
            read_loop(read, protocol, options, stdin_tx, resize_tx, pong).await;
            let _ = gone_tx.send(());
        });
        Session {
            protocol,
            announce: true,
            out,
            stdin,
            resize,
            gone,
            writer,
        }
    }

    /// A session over SPDY: waits for the client's streams (one per channel, named by their
    /// `streamType`), then maps them to channels. `None` when the client does not open them
    /// in time or goes away.
    async fn start_spdy<S: AsyncRead + AsyncWrite + Send + 'static>(
        io: S,
        protocol: &'static str,
        options: Options,
    ) -> Option<Session> {
        let mut session = match spdy::Session::start(io) {
            Ok(session) => session,
            Err(err) => {
                tracing::info!(error = %err, "cannot start a SPDY session");
                return None;
            }
        };
        let handle = session.handle();
        let resizable = protocol != "channel.k8s.io" && protocol != "v2.channel.k8s.io";
        let expected = 1
            + usize::from(options.stdin)
            + usize::from(options.stdout)
            + usize::from(options.stderr)
            + usize::from(options.tty && resizable);
        let mut writers: [Option<StreamWriter>; 3] = [None, None, None];
        let mut stdin_stream = None;
        let mut resize_stream = None;
        let mut received = 0;
        let deadline = tokio::time::sleep(STREAM_CREATION_TIMEOUT);
        tokio::pin!(deadline);
        while received < expected {
            let incoming = tokio::select! {
                incoming = session.next() => incoming?,
                () = &mut deadline => {
                    tracing::info!("timed out waiting for client to create streams");
                    handle.shutdown();
                    return None;
                }
            };
            let kind = incoming.header("streamType").unwrap_or("").to_owned();
            let (reader, writer) = incoming.accept();
            match kind.as_str() {
                "error" => writers[output_slot(ERROR)] = Some(writer),
                "stdout" => writers[output_slot(STDOUT)] = Some(writer),
                "stderr" => writers[output_slot(STDERR)] = Some(writer),
                "stdin" => stdin_stream = Some(reader),
                "resize" => resize_stream = Some(reader),
                other => {
                    tracing::info!(stream_type = other, "unexpected stream type");
                    continue;
                }
            }
            received += 1;
        }
        let (out, mut out_rx) = mpsc::channel::<Out>(64);
        let (stdin_tx, stdin) = mpsc::channel(16);
        let (resize_tx, resize) = mpsc::channel(4);
        let (gone_tx, gone) = tokio::sync::oneshot::channel();
        let writer_handle = handle.clone();
        let writer = tokio::spawn(async move {
            while let Some(out) = out_rx.recv().await {
                match out {
                    Out::Data(channel, data) => {
                        let stream = writers.get(output_slot(channel)).and_then(Option::as_ref);
                        if let Some(stream) = stream
                            && !data.is_empty()
                        {
                            let _ = stream.write(&data).await;
                        }
                    }
                    Out::Pong(_) => {}
                    Out::Close => break,
                }
            }
            for stream in writers.iter().flatten() {
                stream.close();
            }
            writer_handle.shutdown();
            writer_handle.closed().await;
        });
        if let Some(mut reader) = stdin_stream {
            tokio::spawn(async move {
                while let Some(data) = reader.read().await {
                    if stdin_tx.send(Some(data.to_vec())).await.is_err() {
                        return;
                    }
                }
                let _ = stdin_tx.send(None).await;
            });
        }
        if let Some(mut reader) = resize_stream {
            tokio::spawn(async move {
                let mut pending = Vec::new();
                while let Some(data) = reader.read().await {
                    pending.extend_from_slice(&data);
                    let mut sizes = serde_json::Deserializer::from_slice(&pending).into_iter::<Value>();
                    let mut used = 0;
                    while let Some(Ok(size)) = sizes.next() {
                        used = sizes.byte_offset();
                        if let Some(size) = terminal_size(&size) {
                            let _ = resize_tx.try_send(size);
                        }
                    }
                    pending.drain(..used);
                }
            });
        }
        tokio::spawn(async move {
            handle.closed().await;
            let _ = gone_tx.send(());
        });
        let protocol = Protocol {
            name: protocol,
            base64: false,
            json_status: protocol == "v4.channel.k8s.io",
            stream_close: false,
        };
        Some(Session {
            protocol,
            announce: false,
            out,
            stdin,
            resize,
            gone,
            writer,
        })
    }

    async fn send(&self, channel: u8, data: Vec<u8>) {
        let _ = self.out.send(Out::Data(channel, data)).await;
    }

    /// Writes the final status and closes the WebSocket.
    async fn finish(self, status: &Value) {
        if self.protocol.json_status {
            self.send(ERROR, serde_json::to_vec(status).unwrap_or_default())
                .await;
        } else if status["status"] != "Success" {
            let message = status["message"].as_str().unwrap_or_default().as_bytes().to_vec();
            self.send(ERROR, message).await;
        }
        let _ = self.out.send(Out::Close).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.writer).await;
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut write: W, mut queue: mpsc::Receiver<Out>, protocol: Protocol) {
    while let Some(out) = queue.recv().await {
        let written = match out {
            Out::Close => break,
            Out::Pong(payload) => websocket::write_frame(&mut write, websocket::PONG, &payload).await,
            Out::Data(channel, data) if protocol.base64 => {
                let mut message = vec![b'0' + channel];
                message.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(&data).as_bytes());
                websocket::write_frame(&mut write, websocket::TEXT, &message).await
            }
            Out::Data(channel, data) => {
                let mut message = Vec::with_capacity(data.len() + 1);
                message.push(channel);
                message.extend_from_slice(&data);
                websocket::write_frame(&mut write, websocket::BINARY, &message).await
            }
        };
        if written.is_err() {
            return;
        }
    }
    // Normal closure.
    let _ = websocket::write_frame(&mut write, websocket::CLOSE, &1000u16.to_be_bytes()).await;
    let _ = write.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    read: R,
    protocol: Protocol,
    options: Options,
    stdin: mpsc::Sender<Option<Vec<u8>>>,
    resize: mpsc::Sender<(u16, u16)>,
    out: mpsc::Sender<Out>,
) {
    let mut reader = websocket::Reader::new(read);
    let mut stdin = Some(stdin);
    loop {
        let Ok(Some(message)) = reader.next().await else {
            return;
        };
        let data = match message {
            Message::Close(_) => return,
            Message::Ping(payload) => {
                let _ = out.send(Out::Pong(payload)).await;
                continue;
            }
            Message::Binary(data) | Message::Text(data) => data,
        };
        let Some((&first, rest)) = data.split_first() else {
            continue;
        };
        if protocol.stream_close && first == STREAM_CLOSE {
            if rest == [STDIN]
                && let Some(stdin) = stdin.take()
            {
                let _ = stdin.send(None).await;
            }
            continue;
        }
        let (channel, payload) = if protocol.base64 {
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
                continue;
            };
            (first.wrapping_sub(b'0'), decoded)
        } else {
            (first, rest.to_vec())
        };
        match channel {
            STDIN if options.stdin => {
                if let Some(stdin) = &stdin {
                    let _ = stdin.send(Some(payload)).await;
                }
            }
            RESIZE => {
                if let Some(size) = serde_json::from_slice::<Value>(&payload)
                    .ok()
                    .as_ref()
                    .and_then(terminal_size)
                {
                    let _ = resize.try_send(size);
                }
            }
            _ => {}
        }
    }
}

/// Where a SPDY session keeps the stream of an output channel (stdout, stderr, error); other
/// channels have none.
fn output_slot(channel: u8) -> usize {
    match channel {
        STDOUT => 0,
        STDERR => 1,
        ERROR => 2,
        _ => usize::MAX,
    }
}

/// A TerminalSize message's width and height.
fn terminal_size(size: &Value) -> Option<(u16, u16)> {
    let dimension = |name: &str| {
        size.get(name)
            .and_then(Value::as_u64)
            .and_then(|v| u16::try_from(v).ok())
    };
    Some((dimension("Width")?, dimension("Height")?))
}

/// Copies a source into the session on `channel` until it ends.
async fn pump<R: AsyncRead + Unpin>(mut reader: R, channel: u8, out: mpsc::Sender<Out>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                if out.send(Out::Data(channel, buf[..read].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn pump_tty(tty: Tty, out: mpsc::Sender<Out>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match tty.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                if out.send(Out::Data(STDOUT, buf[..read].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Where the client's stdin goes.
enum Sink {
    Pipe(tokio::process::ChildStdin),
    Tty(Tty),
}

/// Forwards the client's input until it closes stdin (closing the sink) or goes away.
async fn forward_stdin(mut input: mpsc::Receiver<Option<Vec<u8>>>, mut sink: Sink) {
    while let Some(Some(data)) = input.recv().await {
        let written = match &mut sink {
            Sink::Pipe(pipe) => pipe.write_all(&data).await,
            Sink::Tty(tty) => tty.write_all(&data).await,
        };
        if written.is_err() {
            return;
        }
    }
    // Dropping the pipe closes it; a terminal's input has no end but EOT.
}

/// Forwards the client's input to an attached container: stdin (when the session has it)
/// until the client closes it, and terminal sizes, which the container's shim applies when
/// it has a terminal (containerd resizes whatever the session asked).
async fn forward_attach_input(
    mut stdin: Option<mpsc::Receiver<Option<Vec<u8>>>>,
    resize: mpsc::Receiver<(u16, u16)>,
    mut input: AttachInput,
) {
    // A session without a resize stream (SPDY without a terminal) closes it at once.
    let mut resize = Some(resize);
    while stdin.is_some() || resize.is_some() {
        tokio::select! {
            data = async { stdin.as_mut()?.recv().await }, if stdin.is_some() => match data {
                Some(Some(data)) => {
                    if input.write_stdin(&data).await.is_err() {
                        return;
                    }
                }
                // The client closed stdin (or went away): the session's input ends.
                _ => break,
            },
            size = async { resize.as_mut()?.recv().await }, if resize.is_some() => match size {
                Some((width, height)) => {
                    if input.resize(width, height).await.is_err() {
                        return;
                    }
                }
                None => resize = None,
            },
        }
    }
    input.close().await;
}

fn success() -> Value {
    json!({"metadata": {}, "status": "Success"})
}

/// apierrors.NewInternalError's Status.
fn internal_error(message: &str) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!("Internal error occurred: {message}"),
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    })
}

/// The Status of a command that exited with `code` (upstream's `ServeExec`; the error text is
/// containerd's).
fn non_zero_exit(command: &[String], code: i32) -> Value {
    json!({
        "metadata": {},
        "status": "Failure",
        "message": format!(
            "command terminated with non-zero exit code: command '{}' exited with {code}: ",
            command.join(" ")
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
    })
}

async fn run(mut session: Session, runtime: &Runtime, id: &str, action: Action, options: Options) {
    // Upstream announces the streams with an empty message on the first one present.
    let first = if options.stdout {
        STDOUT
    } else if options.stderr {
        STDERR
    } else {
        ERROR
    };
    if session.announce {
        session.send(first, Vec::new()).await;
    }
    let status = match action {
        Action::Exec(command) => run_exec(&mut session, runtime, id, &command, options).await,
        Action::Attach => run_attach(&mut session, runtime, id, options).await,
    };
    if let Some(status) = status {
        session.finish(&status).await;
    }
}

/// Runs the command; `None` when the client went away (the command is then killed).
async fn run_exec(
    session: &mut Session,
    runtime: &Runtime,
    id: &str,
    command: &[String],
    options: Options,
) -> Option<Value> {
    let stdio = ExecStdio {
        stdin: options.stdin,
        stdout: options.stdout,
        stderr: options.stderr,
        tty: options.tty,
    };
    let mut process: ExecProcess = match runtime.exec(id, command, stdio).await {
        Ok(process) => process,
        Err(err) => {
            let message = format!("error executing command in container: failed to exec in container: {err}");
            tracing::info!(error = %err, "exec failed");
            return Some(internal_error(&message));
        }
    };
    let mut pumps = tokio::task::JoinSet::new();
    let stdin = std::mem::replace(&mut session.stdin, mpsc::channel(1).1);
    if let Some(tty) = process.tty.clone() {
        if options.stdout {
            pumps.spawn(pump_tty(tty.clone(), session.out.clone()));
        }
        if options.stdin {
            tokio::spawn(forward_stdin(stdin, Sink::Tty(tty.clone())));
        }
        let mut resize = std::mem::replace(&mut session.resize, mpsc::channel(1).1);
        tokio::spawn(async move {
            while let Some((width, height)) = resize.recv().await {
                let _ = tty.resize(width, height);
            }
        });
    } else {
        if let Some(stdout) = process.stdout.take() {
            pumps.spawn(pump(stdout, STDOUT, session.out.clone()));
        }
        if let Some(stderr) = process.stderr.take() {
            pumps.spawn(pump(stderr, STDERR, session.out.clone()));
        }
        if let Some(pipe) = process.stdin.take() {
            tokio::spawn(forward_stdin(stdin, Sink::Pipe(pipe)));
        }
    }
    let exited = tokio::select! {
        exited = process.wait(id) => exited,
        _ = &mut session.gone => {
            process.kill();
            return None;
        }
    };
    // Output still buffered belongs to the command; descendants holding the pipes must not
    // hold the session.
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while pumps.join_next().await.is_some() {}
    })
    .await;
    pumps.abort_all();
    Some(match exited {
        Ok(0) => success(),
        Ok(code) => non_zero_exit(command, code),
        Err(RuntimeError::Exec { message, .. }) => internal_error(&format!(
            "error executing command in container: failed to exec in container: {message}"
        )),
        Err(err) => internal_error(&format!("error executing command in container: {err}")),
    })
}

/// Attaches until the container's output (or the session) ends; `None` when the client went
/// away.
async fn run_attach(session: &mut Session, runtime: &Runtime, id: &str, options: Options) -> Option<Value> {
    let attached = match runtime
        .attach(id, options.stdin, options.stdout, options.stderr)
        .await
    {
        Ok(attached) => attached,
        Err(err) => return Some(internal_error(&format!("error attaching to container: {err}"))),
    };
    let mut output = attached.output;
    let stdin = options
        .stdin
        .then(|| std::mem::replace(&mut session.stdin, mpsc::channel(1).1));
    let resize = std::mem::replace(&mut session.resize, mpsc::channel(1).1);
    tokio::spawn(forward_attach_input(stdin, resize, attached.input));
    let out = session.out.clone();
    let copy = async move {
        while let Ok(Some((stream, data))) = output.next().await {
            let channel = if stream == 2 { STDERR } else { STDOUT };
            if out.send(Out::Data(channel, data)).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        () = copy => Some(success()),
        _ = &mut session.gone => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn options_need_a_stream_and_a_terminal_drops_stderr() {
        assert_eq!(
            Options::parse("command=ls").unwrap_err(),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
        assert_eq!(
            Options::parse("stdout=1&stderr=1&tty=1").unwrap(),
            Options {
                stdin: false,
                stdout: true,
                stderr: false,
                tty: true
            }
        );
        assert_eq!(
            Options::parse("stdin=true&stderr=1").unwrap(),
            Options {
                stdin: false,
                stdout: false,
                stderr: true,
                tty: false
            }
        );
    }

    #[test]
    fn attach_takes_the_terminal_setting_of_the_container() {
        let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
            "spec": {
                "containers": [{"name": "plain"}, {"name": "console", "tty": true}],
                "initContainers": [{"name": "init", "tty": true}],
                "ephemeralContainers": [{"name": "debugger", "tty": true}],
            }
        }))
        .unwrap();
        assert!(!container_tty(&pod, "plain"));
        assert!(container_tty(&pod, "console"));
        assert!(container_tty(&pod, "init"));
        assert!(container_tty(&pod, "debugger"));
        assert!(!container_tty(&pod, "missing"));
    }

    #[test]
    fn the_first_supported_protocol_of_the_client_wins() {
        let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            negotiate(&names(&["v5.channel.k8s.io", "v4.channel.k8s.io"]))
                .unwrap()
                .unwrap()
                .name,
            "v5.channel.k8s.io"
        );
        assert_eq!(
            negotiate(&names(&["SPDY/3.1+portforward.k8s.io", "v4.channel.k8s.io"]))
                .unwrap()
                .unwrap()
                .name,
            "v4.channel.k8s.io"
        );
        assert_eq!(negotiate(&[]).unwrap(), None);
        assert!(
            negotiate(&names(&["v9.channel.k8s.io"]))
                .unwrap_err()
                .starts_with("requested protocol(s)")
        );
    }

    #[test]
    fn exit_statuses_carry_the_code_as_a_cause() {
        let status = non_zero_exit(&["sh".into(), "-c".into(), "exit 3".into()], 3);
        assert_eq!(status["reason"], "NonZeroExitCode");
        assert_eq!(
            status["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "3"})
        );
        assert_eq!(success(), json!({"metadata": {}, "status": "Success"}));
    }

    /// A WebSocket client frame: masked, final.
    fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0];
        out.extend_from_slice(payload);
        out
    }

    #[tokio::test]
    async fn sessions_route_channels_and_end_with_the_status() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let options = Options {
            stdin: true,
            stdout: true,
            stderr: false,
            tty: false,
        };
        let mut session = Session::start(server, PROTOCOLS[0], options);
        let (mut client_read, mut client_write) = tokio::io::split(client);
        client_write
            .write_all(&client_frame(websocket::BINARY, b"\x00typed"))
            .await
            .unwrap();
        client_write
            .write_all(&client_frame(websocket::PING, b"hb"))
            .await
            .unwrap();
        client_write
            .write_all(&client_frame(websocket::BINARY, &[STREAM_CLOSE, STDIN]))
            .await
            .unwrap();
        assert_eq!(session.stdin.recv().await.unwrap(), Some(b"typed".to_vec()));
        assert_eq!(session.stdin.recv().await.unwrap(), None);
        session.send(STDOUT, b"out".to_vec()).await;
        session.finish(&success()).await;
        let mut received = Vec::new();
        client_read.read_to_end(&mut received).await.unwrap();
        let mut expected = websocket::frame(websocket::PONG, b"hb");
        expected.extend(websocket::frame(websocket::BINARY, b"\x01out"));
        expected.extend(websocket::frame(
            websocket::BINARY,
            b"\x03{\"metadata\":{},\"status\":\"Success\"}",
        ));
        expected.extend(websocket::frame(websocket::CLOSE, &[3, 232]));
        assert_eq!(received, expected);
    }
}
