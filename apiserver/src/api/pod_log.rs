//! The `log` subresource of pods (upstream's `LogREST` and the pod strategy's `LogLocation`):
//! PodLogOptions decoded and validated with upstream's messages, the container chosen, the
//! node's server located from its Node object, and the node's answer streamed through chunk
//! by chunk as `text/plain`, or turned into a `Status` as upstream's response checker does.
//!
//! It reads the pod and the node; reaching the node is [`crate::kubelet`]'s.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use rudder_machinery::field::{FieldError, Path};
use serde_json::Value;
use warp::Reply;
use warp::reply::Response;

use super::Target;
use crate::kubelet::{self, NodeEndpoint};
use crate::status::ApiError;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusDetails;

/// Most of a failed node answer that becomes the error message (upstream's `maxReadLength`).
const MAX_ERROR_BODY: usize = 50_000;

/// PodLogOptions from the query.
#[derive(Debug, Default, PartialEq, Eq)]
struct LogOptions {
    container: String,
    follow: bool,
    previous: bool,
    timestamps: bool,
    since_seconds: Option<i64>,
    since_time: Option<jiff::Timestamp>,
    tail_lines: Option<i64>,
    limit_bytes: Option<i64>,
    stream: Option<String>,
}

/// The query parameter conversion of a bool: absent is false; `0` and `false` (any case)
/// are false; anything else, even empty, is true.
pub(super) fn go_bool(query: &super::query::Query, name: &str) -> bool {
    query
        .get(name)
        .is_some_and(|v| !(v == "0" || v.eq_ignore_ascii_case("false")))
}

impl LogOptions {
    fn parse(query: &super::query::Query) -> Result<LogOptions, ApiError> {
        let since_time = match query.get("sinceTime").filter(|v| !v.is_empty()) {
            Some(text) => Some(parse_rfc3339(text)?),
            None => None,
        };
        Ok(LogOptions {
            container: query.get("container").unwrap_or_default().to_owned(),
            follow: go_bool(query, "follow"),
            previous: go_bool(query, "previous"),
            timestamps: go_bool(query, "timestamps"),
            since_seconds: query.int("sinceSeconds")?,
            since_time,
            tail_lines: query.int("tailLines")?,
            limit_bytes: query.int("limitBytes")?,
            stream: query.get("stream").map(str::to_owned),
        })
    }

    /// Upstream's ValidatePodLogOptions with the PodLogsQuerySplitStreams gate off (its
    /// default in v1.35).
    fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(tail) = self.tail_lines.filter(|t| *t < 0) {
            errors.push(FieldError::invalid(
                &Path::new("tailLines"),
                tail,
                "must be greater than or equal to 0",
            ));
        }
        if let Some(limit) = self.limit_bytes.filter(|l| *l < 1) {
            errors.push(FieldError::invalid(
                &Path::new("limitBytes"),
                limit,
                "must be greater than 0",
            ));
        }
        match (self.since_seconds, self.since_time) {
            (Some(_), Some(_)) => errors.push(FieldError::forbidden(
                &Path::root(),
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            )),
            (Some(seconds), None) if seconds < 1 => {
                errors.push(FieldError::invalid(
                    &Path::new("sinceSeconds"),
                    seconds,
                    "must be greater than 0",
                ));
            }
            _ => {}
        }
        if self.stream.is_some() {
            errors.push(FieldError::forbidden(
                &Path::new("stream"),
                "may not be specified",
            ));
        }
        errors
    }

    /// The node's query (Go's `url.Values.Encode`: sorted keys).
    fn node_query(&self) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if self.follow {
            query.append_pair("follow", "true");
        }
        if let Some(limit) = self.limit_bytes {
            query.append_pair("limitBytes", &limit.to_string());
        }
        if self.previous {
            query.append_pair("previous", "true");
        }
        if let Some(seconds) = self.since_seconds {
            query.append_pair("sinceSeconds", &seconds.to_string());
        }
        if let Some(time) = self.since_time {
            query.append_pair("sinceTime", &time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
        }
        if let Some(tail) = self.tail_lines {
            query.append_pair("tailLines", &tail.to_string());
        }
        if self.timestamps {
            query.append_pair("timestamps", "true");
        }
        query.finish()
    }
}

/// metav1.Time's query form: RFC 3339 with seconds.
fn parse_rfc3339(text: &str) -> Result<jiff::Timestamp, ApiError> {
    text.parse::<jiff::Timestamp>().map_err(|_| {
        ApiError::bad_request(format!(
            "parsing time {text:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse {text:?} as \"2006\""
        ))
    })
}

/// Every container name of a pod: init, regular, ephemeral (upstream's `VisitContainers`).
fn container_names(pod: &Value) -> Vec<&str> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .filter_map(|field| pod.pointer(&format!("/spec/{field}")).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| c.get("name").and_then(Value::as_str))
        .collect()
}

/// Upstream's `validateContainer`: the named container, or the only one.
pub(super) fn choose_container(pod: &Value, name: &str, wanted: &str) -> Result<String, ApiError> {
    if !wanted.is_empty() {
        if container_names(pod).contains(&wanted) {
            return Ok(wanted.to_owned());
        }
        return Err(ApiError::bad_request(format!(
            "container {wanted} is not valid for pod {name}"
        )));
    }
    let regular: Vec<&str> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    match regular.as_slice() {
        [only] => Ok((*only).to_owned()),
        [] => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}"
        ))),
        _ => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            container_names(pod).join(" ")
        ))),
    }
}

/// Where the server of node `node_name` is reached, and the client that reaches it.
pub(super) fn node_server<'t>(
    target: &'t Target<'_>,
    node_name: &str,
) -> Result<(NodeEndpoint, &'t kubelet::KubeletClient), ApiError> {
    let registry = target.api.registry.current();
    let nodes = registry
        .find("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("the nodes resource is not served"))?;
    let node = target.api.store.get(&nodes, "", node_name)?;
    let endpoint = NodeEndpoint::of(&node).map_err(ApiError::internal)?;
    let Some(client) = &target.api.kubelet else {
        return Err(ApiError::service_unavailable("no kubelet client is configured"));
    };
    Ok((endpoint, client))
}

pub(super) async fn serve(target: &Target<'_>) -> Result<Response, ApiError> {
    let options = LogOptions::parse(&target.query)?;
    let errors = options.validate();
    if !errors.is_empty() {
        return Err(ApiError::invalid("", "PodLogOptions", &target.name, &errors));
    }
    let store = &target.api.store;
    let pod = store.get(&target.resource, &target.namespace, &target.name)?;
    let container = choose_container(&pod, &target.name, &options.container)?;
    let Some(node_name) = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    else {
        // No node, no location: upstream streams nothing and answers 204.
        let mut response = Response::new(Vec::new().into());
        *response.status_mut() = StatusCode::NO_CONTENT;
        return Ok(response);
    };
    let (endpoint, client) = node_server(target, node_name)?;
    let path = format!(
        "/containerLogs/{}/{}/{container}?{}",
        target.namespace,
        target.name,
        options.node_query()
    );
    let path = path.trim_end_matches('?');
    tracing::debug!(node = node_name, host = %endpoint.host, port = endpoint.port, "proxying pod logs");
    let answer = client.get(&endpoint, path).await.map_err(ApiError::internal)?;
    if !kubelet::is_success(answer.status()) {
        return Err(node_error(answer, &target.name).await);
    }
    let mut body = answer.into_body();
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Bytes>(16);
    let shutdown = target.api.shutdown.clone();
    tokio::spawn(async move {
        // Ends (closing the node connection, which stops the node's reader) when the node's
        // stream ends, the client goes away or the server shuts down.
        loop {
            let frame = tokio::select! {
                frame = body.frame() => frame,
                () = sender.closed() => break,
                () = shutdown.cancelled() => break,
            };
            let Some(Ok(frame)) = frame else { break };
            if let Ok(data) = frame.into_data()
                && sender.send(data).await.is_err()
            {
                break;
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        receiver.poll_recv(cx).map(|item| item.map(Ok::<_, Infallible>))
    });
    let mut response = warp::reply::stream(stream).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

/// Upstream's `GenericHttpResponseChecker`: a failed node answer as an API error.
async fn node_error(answer: http::Response<hyper::body::Incoming>, name: &str) -> ApiError {
    let status = answer.status();
    let mut text = Vec::new();
    let mut body = answer.into_body();
    while text.len() < MAX_ERROR_BODY {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    text.extend_from_slice(&data);
                }
            }
            Some(Err(err)) => return ApiError::internal(err),
            None => break,
        }
    }
    text.truncate(MAX_ERROR_BODY);
    let text = String::from_utf8_lossy(&text).into_owned();
    match status {
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::internal(text),
        StatusCode::BAD_REQUEST => ApiError::bad_request(text),
        _ => generic_server_response(status, name, &text),
    }
}

/// apimachinery's `NewGenericServerResponse` for `pods/log` with an empty verb.
fn generic_server_response(status: StatusCode, name: &str, server_message: &str) -> ApiError {
    let code = status.as_u16();
    let (reason, message) = match code {
        409 => ("Conflict", "the server reported a conflict".to_owned()),
        404 => ("NotFound", "the server could not find the requested resource".to_owned()),
        401 => ("Unauthorized", "the server has asked for the client to provide credentials".to_owned()),
        403 => ("Forbidden", server_message.to_owned()),
        406 if server_message.is_empty() || server_message == "unknown" => (
            "NotAcceptable",
            "the server was unable to respond with a content type that the client supports".to_owned(),
        ),
        406 => ("NotAcceptable", server_message.to_owned()),
        415 => ("UnsupportedMediaType", server_message.to_owned()),
        405 => (
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".to_owned(),
        ),
        422 => ("Invalid", "the server rejected our request due to an error in our request".to_owned()),
        503 => ("ServiceUnavailable", "the server is currently unable to handle the request".to_owned()),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted, but may still be processing the request"
                .to_owned(),
        ),
        429 => (
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later".to_owned(),
        ),
        500.. => (
            "InternalError",
            format!("an error on the server ({server_message:?}) has prevented the request from succeeding"),
        ),
        _ => ("", format!("the server responded with the status code {code} but did not return more information")),
    };
    let mut error = ApiError::new(status, reason, format!("{message} ( pods/log {name})"));
    error.details = Some(Box::new(StatusDetails {
        kind: Some("pods/log".to_owned()),
        name: Some(name.to_owned()),
        ..Default::default()
    }));
    error
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::api::query::Query;
    use serde_json::json;

    fn errors(query: &str) -> Vec<String> {
        LogOptions::parse(&Query::parse(query))
            .unwrap()
            .validate()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn options_are_validated_with_upstream_messages() {
        assert!(errors("tailLines=0&limitBytes=1&sinceSeconds=1").is_empty());
        assert_eq!(
            errors("tailLines=-1"),
            ["tailLines: Invalid value: -1: must be greater than or equal to 0"]
        );
        assert_eq!(
            errors("limitBytes=0"),
            ["limitBytes: Invalid value: 0: must be greater than 0"]
        );
        assert_eq!(
            errors("sinceSeconds=0"),
            ["sinceSeconds: Invalid value: 0: must be greater than 0"]
        );
        assert_eq!(
            errors("sinceSeconds=5&sinceTime=2026-11-26T10:00:00Z"),
            [": Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"]
        );
    }

    #[test]
    fn node_query_is_sorted_like_go() {
        let options = LogOptions::parse(&Query::parse(
            "timestamps=true&tailLines=3&follow&previous=0&sinceTime=2026-11-26T10:00:00Z",
        ))
        .unwrap();
        assert_eq!(
            options.node_query(),
            "follow=true&sinceTime=2026-11-26T10%3A00%3A00Z&tailLines=3&timestamps=true"
        );
    }

    #[test]
    fn containers_are_chosen_as_upstream() {
        let pod = json!({"spec": {"initContainers": [{"name": "init"}], "containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(
            choose_container(&pod, "p", "").unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [init a b]"
        );
        assert_eq!(choose_container(&pod, "p", "init").unwrap(), "init");
        assert_eq!(
            choose_container(&pod, "p", "c").unwrap_err().message,
            "container c is not valid for pod p"
        );
        let single = json!({"spec": {"containers": [{"name": "only"}]}});
        assert_eq!(choose_container(&single, "p", "").unwrap(), "only");
    }
}
