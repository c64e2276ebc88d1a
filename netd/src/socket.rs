//! The pod network over a Unix socket, for a node daemon in another process (`rudder netd`
//! beside `rudder noded --netd-socket`): one JSON request and one JSON answer per connection,
//! as a CNI plugin gets one command per run. The socket is root's alone (mode 0600): whoever
//! can write to it can move interfaces into network namespaces.
//!
//! It only carries requests; attaching and detaching are [`crate::pod_network`]'s.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

use crate::PodNetwork;

/// The largest request or answer read.
const MAX_MESSAGE: u64 = 64 * 1024;

/// Why a request over the socket failed.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("netd socket {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("netd socket {path}: undecodable answer: {source}")]
    Decode {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// netd answered with an error.
    #[error("{0}")]
    Refused(String),
}

/// What a node daemon asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Connect the pod `uid` whose network namespace is bound at `netns`.
    Attach { uid: String, netns: PathBuf },
    /// Disconnect the pod `uid` and release its addresses.
    Detach { uid: String },
}

/// netd's answer: the pod's addresses, or why it could not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Serves `pods` on a socket at `path` (replacing a stale one) until `shutdown`.
pub async fn serve(
    path: &Path,
    pods: Arc<PodNetwork>,
    shutdown: CancellationToken,
) -> Result<(), SocketError> {
    let io = |source| SocketError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(io(err)),
        _ => {}
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    tracing::info!(socket = %path.display(), "serving the pod network");
    let mut handlers = tokio::task::JoinSet::new();
    loop {
        while handlers.try_join_next().is_some() {}
        let stream = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "accepting a pod network request failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let pods = pods.clone();
        handlers.spawn(async move {
            if let Err(err) = handle(stream, &pods).await {
                tracing::debug!(error = %err, "a pod network request failed");
            }
        });
    }
    handlers.abort_all();
    let _ = std::fs::remove_file(path);
    Ok(())
}

async fn handle(mut stream: tokio::net::UnixStream, pods: &Arc<PodNetwork>) -> std::io::Result<()> {
    let mut text = Vec::new();
    (&mut stream).take(MAX_MESSAGE).read_to_end(&mut text).await?;
    let answer = match serde_json::from_slice::<Request>(&text) {
        Err(err) => Answer {
            error: Some(format!("invalid request: {err}")),
            ..Answer::default()
        },
        Ok(Request::Attach { uid, netns }) => match pods.attach(&uid, &netns).await {
            Ok(ips) => Answer { ips, error: None },
            Err(err) => Answer {
                error: Some(err.to_string()),
                ..Answer::default()
            },
        },
        Ok(Request::Detach { uid }) => {
            let pods = pods.clone();
            let detached = tokio::task::spawn_blocking(move || pods.detach(&uid).map_err(|e| e.to_string()))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            Answer {
                error: detached.err(),
                ..Answer::default()
            }
        }
    };
    let mut out = serde_json::to_vec(&answer).map_err(std::io::Error::other)?;
    out.push(b'\n');
    stream.write_all(&out).await?;
    stream.shutdown().await
}

/// Asks the netd serving at `path`. Blocking (one request and answer).
pub fn ask(path: &Path, request: &Request) -> Result<Vec<IpAddr>, SocketError> {
    let io = |source| SocketError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(io)?;
    let body = serde_json::to_vec(request).map_err(|source| SocketError::Decode {
        path: path.display().to_string(),
        source,
    })?;
    stream.write_all(&body).map_err(io)?;
    stream.shutdown(std::net::Shutdown::Write).map_err(io)?;
    let mut text = Vec::new();
    stream.take(MAX_MESSAGE).read_to_end(&mut text).map_err(io)?;
    let answer: Answer = serde_json::from_slice(&text).map_err(|source| SocketError::Decode {
        path: path.display().to_string(),
        source,
    })?;
    match answer.error {
        Some(error) => Err(SocketError::Refused(error)),
        None => Ok(answer.ips),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_have_a_stable_form() {
        let attach = Request::Attach {
            uid: "u1".into(),
            netns: "/run/netns/p".into(),
        };
        assert_eq!(
            serde_json::to_string(&attach).unwrap(),
            r#"{"op":"attach","uid":"u1","netns":"/run/netns/p"}"#
        );
        let detach: Request = serde_json::from_str(r#"{"op":"detach","uid":"u1"}"#).unwrap();
        assert_eq!(detach, Request::Detach { uid: "u1".into() });
        let answer = Answer {
            ips: vec!["10.244.0.5".parse().unwrap()],
            error: None,
        };
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"ips":["10.244.0.5"]}"#
        );
    }

    #[tokio::test]
    async fn a_request_and_its_answer_cross_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netd.sock");
        // No node facts will come: attach fails at once for want of a podCIDR.
        let (facts, node) = tokio::sync::watch::channel(crate::NodeFacts::default());
        drop(facts);
        let host = crate::host::HostNetwork {
            bridge: "rudder-test0".into(),
            mtu: 1500,
            cluster_cidr: crate::DEFAULT_CLUSTER_CIDR,
            service_cidr: crate::DEFAULT_SERVICE_CIDR,
        };
        let pods = Arc::new(PodNetwork::new(host, dir.path().join("ipam"), node));
        let shutdown = CancellationToken::new();
        let server = tokio::spawn({
            let path = path.clone();
            let shutdown = shutdown.clone();
            async move { serve(&path, pods, shutdown).await }
        });
        while !path.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // The node has no podCIDR yet: netd says so, through the socket.
        let asked = tokio::task::spawn_blocking({
            let path = path.clone();
            move || {
                ask(
                    &path,
                    &Request::Attach {
                        uid: "u1".into(),
                        netns: "/nonexistent".into(),
                    },
                )
            }
        })
        .await
        .unwrap();
        let err = asked.unwrap_err().to_string();
        assert!(err.contains("podCIDR"), "{err}");
        shutdown.cancel();
        server.await.unwrap().unwrap();
        assert!(!path.exists(), "the socket is removed at shutdown");
    }
}
