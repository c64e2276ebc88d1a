//! The `exec`, `attach` and `portforward` subresources of pods (upstream's
//! `ExecREST`/`AttachREST` with `streamLocation`, `PortForwardREST` with `PortForwardLocation`,
//! and the `UpgradeAwareHandler`): PodExecOptions/PodAttachOptions/PodPortForwardOptions from
//! the query, the container chosen as for logs (exec and attach), the node located, and the
//! client's upgrade request forwarded to the node's `/exec/...`, `/attach/...` or
//! `/portForward/...`. Once the node switched
//! protocols, the two connections are spliced and bytes copied both ways until either side
//! ends; an answer other than 101 is passed back to the client as the node wrote it.
//!
//! It does not speak the streaming protocols itself: the client and the node do, through it.

use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use warp::reply::Response;

use super::Target;
use super::pod_log::node_server;
use super::pod_log::{choose_container, go_bool};
use crate::status::ApiError;

/// The largest node error body passed back.
const MAX_ERROR_BODY: usize = 50_000;
/// The request headers the node needs to upgrade.
const FORWARDED_HEADERS: [header::HeaderName; 8] = [
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::USER_AGENT,
    header::ORIGIN,
    header::HeaderName::from_static("x-stream-protocol-version"),
];

/// Which streaming subresource a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stream {
    Exec,
    Attach,
    PortForward,
}

/// PodPortForwardOptions' `ports` as upstream's `Convert_Slice_string_To_Slice_int32` reads
/// them (every value comma-separated, each a 16-bit unsigned number).
fn ports(query: &super::query::Query) -> Result<Vec<u16>, ApiError> {
    let mut ports = Vec::new();
    for value in query.all("ports") {
        for part in value.split(',') {
            let port = part.parse::<u16>().map_err(|err| {
                let reason = if part.is_empty() || part.bytes().any(|b| !b.is_ascii_digit()) {
                    "invalid syntax"
                } else if matches!(err.kind(), std::num::IntErrorKind::PosOverflow) {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                ApiError::bad_request(format!(
                    "cannot convert to []int32: strconv.ParseUint: parsing {part:?}: {reason}"
                ))
            })?;
            ports.push(port);
        }
    }
    Ok(ports)
}

/// The options as the node's query (upstream's `streamParams`, keys sorted as
/// `url.Values.Encode` does; port-forward's ports joined into one `port`).
fn node_query(query: &super::query::Query, stream: Stream) -> Result<String, ApiError> {
    let mut params = form_urlencoded::Serializer::new(String::new());
    if stream == Stream::PortForward {
        let ports = ports(query)?;
        if !ports.is_empty() {
            let joined: Vec<String> = ports.iter().map(u16::to_string).collect();
            params.append_pair("port", &joined.join(","));
        }
        return Ok(params.finish());
    }
    if stream == Stream::Exec {
        for command in query.all("command") {
            params.append_pair("command", command);
        }
    }
    for (name, param) in [
        ("stderr", "stderr"),
        ("stdin", "stdin"),
        ("stdout", "stdout"),
        ("tty", "tty"),
    ] {
        if go_bool(query, name) {
            params.append_pair(param, "1");
        }
    }
    Ok(params.finish())
}

pub(super) async fn serve(target: &Target<'_>, stream: Stream) -> Result<Response, ApiError> {
    let store = &target.api.store;
    let pod = store.get(&target.resource, &target.namespace, &target.name)?;
    let query = node_query(&target.query, stream)?;
    let container = if stream == Stream::PortForward {
        None
    } else {
        let wanted = target.query.get("container").unwrap_or_default();
        Some(choose_container(&pod, &target.name, wanted)?)
    };
    let Some(node_name) = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        return Err(ApiError::bad_request(format!(
            "pod {} does not have a host assigned",
            target.name
        )));
    };
    let (endpoint, client) = node_server(target, node_name)?;
    let path = match (stream, container) {
        (Stream::Exec, Some(container)) => {
            format!("/exec/{}/{}/{container}?{query}", target.namespace, target.name)
        }
        (Stream::Attach, Some(container)) => {
            format!("/attach/{}/{}/{container}?{query}", target.namespace, target.name)
        }
        _ => format!("/portForward/{}/{}?{query}", target.namespace, target.name),
    };
    let path = path.trim_end_matches('?');
    let mut headers = http::HeaderMap::new();
    for name in FORWARDED_HEADERS {
        for value in target.headers.get_all(&name) {
            headers.append(name.clone(), value.clone());
        }
    }
    tracing::debug!(node = node_name, host = %endpoint.host, port = endpoint.port, path, "proxying a stream");
    let answer = client
        .upgrade(&endpoint, &target.method, path, headers)
        .await
        .map_err(|err| ApiError::internal(format!("error dialing backend: {err}")))?;
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(pass_through(answer).await);
    }
    let client_upgrade = target
        .upgrade
        .as_ref()
        .and_then(crate::http::PendingUpgrade::take);
    let Some(client_upgrade) = client_upgrade else {
        return Err(ApiError::bad_request("Upgrade request required"));
    };
    let mut response = Response::new(Vec::new().into());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for (name, value) in answer.headers() {
        response.headers_mut().append(name.clone(), value.clone());
    }
    let shutdown = target.api.shutdown.clone();
    tokio::spawn(async move {
        let node = match hyper::upgrade::on(answer).await {
            Ok(node) => node,
            Err(err) => {
                tracing::debug!(error = %err, "the node's upgrade failed");
                return;
            }
        };
        let client = match client_upgrade.await {
            Ok(client) => client,
            Err(err) => {
                tracing::debug!(error = %err, "the client's upgrade failed");
                return;
            }
        };
        let mut node = TokioIo::new(node);
        let mut client = TokioIo::new(client);
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut client, &mut node) => {
                if let Err(err) = copied {
                    tracing::debug!(error = %err, "a stream ended with an error");
                }
            }
            () = shutdown.cancelled() => {}
        }
    });
    Ok(response)
}

/// The node's answer as it wrote it (status, content type and body).
async fn pass_through(answer: http::Response<hyper::body::Incoming>) -> Response {
    let status = answer.status();
    let content_type = answer.headers().get(header::CONTENT_TYPE).cloned();
    let mut body = answer.into_body();
    let mut text = Vec::new();
    while text.len() < MAX_ERROR_BODY {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    text.extend_from_slice(&data);
                }
            }
            Some(Err(_)) | None => break,
        }
    }
    text.truncate(MAX_ERROR_BODY);
    let mut response = Response::new(text.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        content_type.unwrap_or_else(|| HeaderValue::from_static("text/plain; charset=utf-8")),
    );
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::api::query::Query;

    #[test]
    fn the_node_query_is_upstreams_stream_params() {
        let query = Query::parse(
            "command=sh&command=-c&command=echo+hi&container=c&stdin=true&stdout=true&tty=false&stderr=1",
        );
        assert_eq!(
            node_query(&query, Stream::Exec).unwrap(),
            "command=sh&command=-c&command=echo+hi&stderr=1&stdin=1&stdout=1"
        );
        assert_eq!(
            node_query(&query, Stream::Attach).unwrap(),
            "stderr=1&stdin=1&stdout=1"
        );
        assert_eq!(
            node_query(&Query::parse("tty=1&stdout=0"), Stream::Attach).unwrap(),
            "tty=1"
        );
    }

    #[test]
    fn port_forward_ports_are_checked_and_joined() {
        assert_eq!(
            node_query(&Query::parse("ports=8080&ports=9090,53"), Stream::PortForward).unwrap(),
            "port=8080%2C9090%2C53"
        );
        assert_eq!(node_query(&Query::parse(""), Stream::PortForward).unwrap(), "");
        for (ports, message) in [
            (
                "ports=http",
                "cannot convert to []int32: strconv.ParseUint: parsing \"http\": invalid syntax",
            ),
            (
                "ports=70000",
                "cannot convert to []int32: strconv.ParseUint: parsing \"70000\": value out of range",
            ),
            (
                "ports=80,",
                "cannot convert to []int32: strconv.ParseUint: parsing \"\": invalid syntax",
            ),
        ] {
            let err = node_query(&Query::parse(ports), Stream::PortForward).unwrap_err();
            assert_eq!(err.message, message, "{ports}");
        }
    }
}
