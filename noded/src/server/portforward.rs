//! `portForward`: the kubelet's port-forward endpoint, `/portForward/{namespace}/{pod}[/{uid}]`,
//! over SPDY/3.1 (`Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version: portforward.k8s.io`) and
//! over SPDY tunnelled in WebSocket binary messages (subprotocol
//! `SPDY/3.1+portforward.k8s.io`, kubectl 1.31 and later), as upstream's
//! `portforward/httpstream.go`: the client opens an error stream and a data stream per
//! connection, paired by their `requestID` header and naming the `port`; the data stream is
//! spliced to a TCP connection made to that port on the pod's loopback from inside its network
//! namespace; a failure is written on the error stream.
//!
//! It reaches pods only through the [`PodSource`](super::PodSource)'s network namespace and the
//! sandbox's [`run_in_netns`](crate::kubelet::sandbox::run_in_netns); it starts nothing else.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use super::spdy::{Incoming, Session, StreamReader, StreamWriter};
use super::{Body, PodSource, streaming, text, websocket};

/// The port-forward protocol over SPDY.
pub const PROTOCOL: &str = "portforward.k8s.io";
/// The prefix kubectl adds to tunnel SPDY in WebSocket.
pub const TUNNEL_PREFIX: &str = "SPDY/3.1+";
/// How long the second stream of a pair may take (upstream's streamCreationTimeout).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to the pod's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `/portForward/...` (`rest`: the path after the endpoint name).
pub(super) async fn serve(
    pods: &dyn PodSource,
    rest: &[&str],
    request: http::Request<hyper::body::Incoming>,
) -> http::Response<Body> {
    let (namespace, pod_name, uid) = match rest {
        [namespace, pod] => (*namespace, *pod, None),
        [namespace, pod, uid] => (*namespace, *pod, Some(*uid)),
        _ => return text(http::StatusCode::NOT_FOUND, "404 page not found".to_owned()),
    };
    let Some(pod) = pods.pod(namespace, pod_name) else {
        return text(http::StatusCode::NOT_FOUND, "pod does not exist".to_owned());
    };
    let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
    if uid.is_some_and(|uid| uid != pod_uid) {
        return text(http::StatusCode::NOT_FOUND, "pod not found".to_owned());
    }
    let target = Target {
        pod: pod_name.to_owned(),
        uid: pod_uid,
        netns: pods.network_namespace(&pod),
    };
    let span = tracing::info_span!("port-forward", pod = %format!("{namespace}/{pod_name}"));
    if websocket::is_websocket_request(request.headers()) {
        let tunnelled = format!("{TUNNEL_PREFIX}{PROTOCOL}");
        let requested = websocket::requested_protocols(request.headers());
        if !requested.contains(&tunnelled) {
            return text(
                http::StatusCode::BAD_REQUEST,
                format!(
                    "unable to upgrade: requested protocol(s) are not supported: [{}]; supports [{tunnelled}]",
                    requested.join(" ")
                ),
            );
        }
        return streaming::upgrade_websocket(request, &tunnelled, span, move |io| async move {
            let tunnel = websocket::tunnel(io);
            forward(tunnel, target).await;
        });
    }
    streaming::upgrade_spdy(request, &[PROTOCOL], span, move |io, _| async move {
        forward(io, target).await;
    })
}

/// Where a pod's ports are reached.
#[derive(Clone, Debug)]
struct Target {
    pod: String,
    uid: String,
    /// The pod's network namespace; `None` for host-network pods.
    netns: Option<PathBuf>,
}

/// An error and a data stream with the same request id.
#[derive(Default)]
struct Pair {
    error: Option<(StreamReader, StreamWriter)>,
    data: Option<(StreamReader, StreamWriter)>,
    port: u16,
    /// Fires when the pair is complete (ends the creation timeout).
    complete: Option<oneshot::Sender<()>>,
}

/// Runs the port-forward protocol on a SPDY connection until the client ends it.
async fn forward<S>(io: S, target: Target)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let mut session = match Session::start(io) {
        Ok(session) => session,
        Err(err) => {
            tracing::info!(error = %err, "cannot start a SPDY session");
            return;
        }
    };
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let (timed_out_tx, mut timed_out) = tokio::sync::mpsc::unbounded_channel::<String>();
    loop {
        let stream = tokio::select! {
            stream = session.next() => stream,
            Some(id) = timed_out.recv() => {
                // Upstream's monitorStreamPair: the message goes to the error stream if any.
                if let Some(pair) = pairs.remove(&id) {
                    tracing::info!(request = id, "timed out waiting for streams");
                    if let Some((_, writer)) = pair.error {
                        let message = format!("(conn=0x0, request={id}) timed out waiting for streams");
                        let _ = writer.write(message.as_bytes()).await;
                        writer.close();
                    }
                }
                continue;
            }
        };
        let Some(stream) = stream else {
            break;
        };
        let (kind, port) = match check_stream(&stream) {
            Ok(checked) => checked,
            Err(message) => {
                tracing::info!(stream = stream.id, message, "stream rejected");
                stream.reject();
                continue;
            }
        };
        let request_id = request_id(&stream, kind);
        let is_new = !pairs.contains_key(&request_id);
        let pair = pairs.entry(request_id.clone()).or_default();
        pair.port = port;
        let halves = stream.accept();
        if is_new {
            let (complete, done) = oneshot::channel();
            pair.complete = Some(complete);
            let timed_out = timed_out_tx.clone();
            let id = request_id.clone();
            tokio::spawn(async move {
                if tokio::time::timeout(STREAM_CREATION_TIMEOUT, done).await.is_err() {
                    let _ = timed_out.send(id);
                }
            });
        }
        let slot = match kind {
            Kind::Error => &mut pair.error,
            Kind::Data => &mut pair.data,
        };
        if slot.is_some() {
            let message = format!(
                "error processing stream for request {request_id}: {} stream already assigned",
                kind.name()
            );
            if let Some((_, writer)) = &pair.error {
                let _ = writer.write(message.as_bytes()).await;
            }
            halves.1.reset();
            continue;
        }
        *slot = Some(halves);
        if pair.error.is_some()
            && pair.data.is_some()
            && let Some(pair) = pairs.remove(&request_id)
            && let (Some(error), Some(data)) = (pair.error, pair.data)
        {
            if let Some(complete) = pair.complete {
                let _ = complete.send(());
            }
            tokio::spawn(forward_pair(target.clone(), pair.port, error, data));
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Error,
    Data,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Error => "error",
            Kind::Data => "data",
        }
    }
}

/// Upstream's `httpStreamReceived` checks of a new stream's headers.
fn check_stream(stream: &Incoming) -> Result<(Kind, u16), String> {
    let port_text = stream.header("port").unwrap_or("");
    if port_text.is_empty() {
        return Err("\"port\" header is required".to_owned());
    }
    let port: u16 = port_text
        .parse()
        .map_err(|err| format!("unable to parse {port_text:?} as a port: {err}"))?;
    if port < 1 {
        return Err(format!("port {port_text:?} must be > 0"));
    }
    match stream.header("streamType").unwrap_or("") {
        "" => Err("\"streamType\" header is required".to_owned()),
        "error" => Ok((Kind::Error, port)),
        "data" => Ok((Kind::Data, port)),
        other => Err(format!("invalid stream type {other:?}")),
    }
}

/// The stream's `requestID`, or as upstream derives it from the stream id for old clients.
fn request_id(stream: &Incoming, kind: Kind) -> String {
    match stream.header("requestID") {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => match kind {
            Kind::Error => stream.id.to_string(),
            Kind::Data => stream.id.saturating_sub(2).to_string(),
        },
    }
}

/// Connects to the port and copies both ways; a failure goes to the error stream.
async fn forward_pair(
    target: Target,
    port: u16,
    (_error_reader, error): (StreamReader, StreamWriter),
    (mut data_reader, data): (StreamReader, StreamWriter),
) {
    match connect(&target, port).await {
        Ok(socket) => {
            let (mut from_pod, mut to_pod) = socket.into_split();
            let client_to_pod = async {
                while let Some(chunk) = data_reader.read().await {
                    if to_pod.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                let _ = to_pod.shutdown().await;
                // The client may still read the answer: wait until the pod ends it, unless the
                // client resets the stream or goes away.
                data.reset_or_gone().await;
            };
            let pod_to_client = async {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match from_pod.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => {
                            if data.write(&buf[..read]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            };
            tokio::select! {
                () = client_to_pod => {}
                () = pod_to_client => {}
            }
        }
        Err(message) => {
            let message = format!(
                "error forwarding port {port} to pod {}, uid {}: {message}",
                target.pod, target.uid
            );
            tracing::info!(message, "port-forward failed");
            let _ = error.write(message.as_bytes()).await;
            data.reset();
            error.reset();
            return;
        }
    }
    data.close();
    error.close();
}

/// A connection to the port on the pod's loopback (IPv4, then IPv6), made from inside the
/// pod's network namespace; the error is containerd's text.
async fn connect(target: &Target, port: u16) -> Result<tokio::net::TcpStream, String> {
    let netns = target.netns.clone();
    let shown = netns
        .as_ref()
        .map_or_else(|| "host".to_owned(), |path| path.display().to_string());
    let attempt = crate::kubelet::sandbox::run_in_netns(netns, move || {
        let v4 = std::net::TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            CONNECT_TIMEOUT,
        );
        match v4 {
            Ok(stream) => Ok(stream),
            Err(v4) => std::net::TcpStream::connect_timeout(
                &SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
                CONNECT_TIMEOUT,
            )
            .map_err(|v6| (v4, v6)),
        }
    })
    .await;
    let stream = match attempt {
        Err(err) => {
            return Err(format!(
                "failed to execute portforward in network namespace {shown:?}: {err}"
            ));
        }
        Ok(Err((v4, v6))) => {
            return Err(format!(
                "failed to execute portforward in network namespace {shown:?}: failed to connect to localhost:{port} inside namespace {:?}, IPv4: {} IPv6 {} ",
                target.uid,
                dial_error("tcp4", &format!("127.0.0.1:{port}"), &v4),
                dial_error("tcp6", &format!("[::1]:{port}"), &v6),
            ));
        }
        Ok(Ok(stream)) => stream,
    };
    stream.set_nonblocking(true).map_err(|err| err.to_string())?;
    tokio::net::TcpStream::from_std(stream).map_err(|err| err.to_string())
}

/// Go's `net.Dial` error text.
fn dial_error(network: &str, address: &str, err: &std::io::Error) -> String {
    let reason = match err.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_owned(),
        std::io::ErrorKind::TimedOut => "i/o timeout".to_owned(),
        _ => match err.raw_os_error() {
            Some(code) => format!(
                "connect: {}",
                nix::errno::Errno::from_raw(code).desc().to_lowercase()
            ),
            None => err.to_string(),
        },
    };
    format!("dial {network} {address}: {reason}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn dial_errors_read_as_gos() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            dial_error("tcp4", "127.0.0.1:9", &refused),
            "dial tcp4 127.0.0.1:9: connect: connection refused"
        );
        let unreachable = std::io::Error::from_raw_os_error(libc_enetunreach());
        assert_eq!(
            dial_error("tcp6", "[::1]:9", &unreachable),
            "dial tcp6 [::1]:9: connect: network is unreachable"
        );
    }

    fn libc_enetunreach() -> i32 {
        nix::errno::Errno::ENETUNREACH as i32
    }
}
