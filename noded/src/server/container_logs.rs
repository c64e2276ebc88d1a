//! `GET /containerLogs/{namespace}/{pod}/{container}`: the kubelet's log endpoint. Query
//! parameters as the kubelet decodes them (`follow`, `previous`, `timestamps`, `tailLines` or
//! the old `tail`, `sinceSeconds`, `sinceTime`, `limitBytes`), the kubelet's checks of the pod,
//! the container and its status with their texts and codes, then the log file streamed chunk
//! by chunk.
//!
//! It picks the log file from the pod's status and the files on disk (see
//! [`crate::logs::paths`]); decoding is [`crate::logs::reader`]'s.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use tokio::sync::mpsc;

use super::{Body, State, text};
use crate::logs::paths;
use crate::logs::reader::{LogOptions, LogSink, ReadError, read_logs};

/// How many chunks may wait for a slow client before the reader blocks.
const CHANNEL_DEPTH: usize = 16;

/// The request's PodLogOptions, decoded as the kubelet's parameter codec does.
#[derive(Debug, Default, PartialEq, Eq)]
struct Params {
    follow: bool,
    previous: bool,
    timestamps: bool,
    tail_lines: Option<i64>,
    limit_bytes: Option<i64>,
    since_seconds: Option<i64>,
    since_time: Option<jiff::Timestamp>,
}

/// Go's parameter conversion of a bool: only `0` and `false` (any case) are false.
fn go_bool(value: &str) -> bool {
    !(value == "0" || value.eq_ignore_ascii_case("false"))
}

impl Params {
    fn parse(query: &str) -> Result<Params, ()> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            // url.Values keeps every value; the codec reads the first.
            if !pairs.iter().any(|(k, _)| *k == key) {
                pairs.push((key.into_owned(), value.into_owned()));
            }
        }
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let int = |value: Option<&str>| value.map(|v| v.parse::<i64>().map_err(|_| ())).transpose();
        // The old `tail` parameter wins over `tailLines`; `all` means no limit.
        let tail_lines = match get("tail").filter(|t| !t.is_empty()) {
            Some("all") => None,
            Some(tail) => int(Some(tail))?,
            None => int(get("tailLines"))?,
        };
        let since_time = get("sinceTime")
            .map(|t| t.parse::<jiff::Timestamp>().map_err(|_| ()))
            .transpose()?;
        Ok(Params {
            follow: get("follow").is_some_and(go_bool),
            previous: get("previous").is_some_and(go_bool),
            timestamps: get("timestamps").is_some_and(go_bool),
            tail_lines,
            limit_bytes: int(get("limitBytes"))?,
            since_seconds: int(get("sinceSeconds"))?,
            since_time,
        })
    }

    /// Upstream's ValidatePodLogOptions, answered by the kubelet with one generic message.
    fn is_valid(&self) -> bool {
        !(self.tail_lines.is_some_and(|t| t < 0)
            || self.limit_bytes.is_some_and(|l| l < 1)
            || (self.since_seconds.is_some() && self.since_time.is_some())
            || self.since_seconds.is_some_and(|s| s < 1))
    }
}

pub(super) async fn serve(state: &State, segments: &[&str], query: &str) -> http::Response<Body> {
    let [namespace, pod_name, container] = segments else {
        return text(StatusCode::NOT_FOUND, "404 page not found".to_owned());
    };
    // The kubelet's own (JSON-looking) texts for missing path parameters.
    if pod_name.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            r#"{"message": "Missing podID."}"#.to_owned(),
        );
    }
    if container.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            r#"{"message": "Missing container name."}"#.to_owned(),
        );
    }
    if namespace.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            r#"{"message": "Missing podNamespace."}"#.to_owned(),
        );
    }
    let Ok(params) = Params::parse(query) else {
        return text(
            StatusCode::BAD_REQUEST,
            r#"{"message": "Unable to decode query."}"#.to_owned(),
        );
    };
    if !params.is_valid() {
        return text(
            StatusCode::UNPROCESSABLE_ENTITY,
            r#"{"message": "Invalid request."}"#.to_owned(),
        );
    }
    let Some(pod) = state.pods.pod(namespace, pod_name) else {
        return text(StatusCode::NOT_FOUND, format!("pod {pod_name:?} does not exist"));
    };
    if !container_names(&pod).any(|name| name == *container) {
        return text(
            StatusCode::NOT_FOUND,
            format!("container {container:?} not found in pod {pod_name:?}"),
        );
    }
    let instance = match log_instance(&pod, container, params.previous) {
        Ok(instance) => instance,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let dir = paths::container_log_dir(&state.config.log_root, namespace, pod_name, &uid, container);
    let options = LogOptions {
        tail_lines: params.tail_lines.and_then(|t| u64::try_from(t).ok()),
        limit_bytes: params.limit_bytes.and_then(|l| u64::try_from(l).ok()),
        since: LogOptions::since_bound(params.since_seconds, params.since_time, jiff::Timestamp::now()),
        follow: params.follow,
        timestamps: params.timestamps,
    };
    let running: Box<dyn Fn() -> bool + Send> = if instance.current {
        let pods = Arc::clone(&state.pods);
        let container = (*container).to_owned();
        Box::new(move || pods.container_running(&pod, &container))
    } else {
        // A previous instance has exited: a follower reads to the end and stops.
        Box::new(|| false)
    };
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL_DEPTH);
    tokio::task::spawn_blocking(move || {
        let mut sink = ChannelSink(tx);
        let path = paths::log_instances(&dir)
            .ok()
            .and_then(|found| found.into_iter().nth(instance.index))
            .map(|(_, path)| path);
        let Some(path) = path else {
            // The kubelet has already answered 200 when the runtime cannot find the logs.
            sink.write(format!("unable to retrieve container logs for {}", instance.container_id).as_bytes());
            return;
        };
        match read_logs(&path, &options, running.as_ref(), &mut sink) {
            Ok(()) | Err(ReadError::Cancelled) => {}
            Err(err) => {
                tracing::debug!(path = %path.display(), error = %err, "reading a container log failed");
                sink.write(err.to_string().as_bytes());
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    let mut response = http::Response::new(StreamBody::new(Box::pin(stream)).boxed_unsync());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// Sends decoded log bytes to the response body.
struct ChannelSink(mpsc::Sender<Bytes>);

impl LogSink for ChannelSink {
    fn write(&mut self, data: &[u8]) -> bool {
        data.is_empty() || self.0.blocking_send(Bytes::copy_from_slice(data)).is_ok()
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// Every container of the pod: init, regular and ephemeral (upstream's `VisitContainers`).
fn container_names(pod: &Pod) -> impl Iterator<Item = &str> {
    let spec = pod.spec.as_ref();
    let init = spec
        .and_then(|s| s.init_containers.as_deref())
        .unwrap_or_default();
    let regular = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let ephemeral = spec
        .and_then(|s| s.ephemeral_containers.as_deref())
        .unwrap_or_default();
    init.iter()
        .map(|c| c.name.as_str())
        .chain(regular.iter().map(|c| c.name.as_str()))
        .chain(ephemeral.iter().map(|c| c.name.as_str()))
}

/// Which logged instance a request reads.
#[derive(Debug, PartialEq, Eq)]
struct Instance {
    /// The container ID the status names (for messages).
    container_id: String,
    /// Position among the container's log files, newest first.
    index: usize,
    /// Whether it is the instance that may still be running.
    current: bool,
}

/// The kubelet's `validateContainerLogStatus`: the instance the status allows reading, or the
/// kubelet's message why none can be read.
fn log_instance(pod: &Pod, container: &str, previous: bool) -> Result<Instance, String> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.as_ref();
    fn find<'a>(list: Option<&'a Vec<ContainerStatus>>, container: &str) -> Option<&'a ContainerStatus> {
        list.and_then(|l| l.iter().find(|s| s.name == container))
    }
    let found = status.and_then(|s| {
        find(s.container_statuses.as_ref(), container)
            .or_else(|| find(s.init_container_statuses.as_ref(), container))
            .or_else(|| find(s.ephemeral_container_statuses.as_ref(), container))
    });
    let Some(found) = found else {
        return Err(format!(
            "container {container:?} in pod {pod_name:?} is not available"
        ));
    };
    let state = found.state.clone().unwrap_or_default();
    let last = found
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.container_id.clone())
        .filter(|id| !id.is_empty());
    let has_last = found.last_state.as_ref().is_some_and(|s| s.terminated.is_some());
    let terminated_id = state
        .terminated
        .as_ref()
        .and_then(|t| t.container_id.clone())
        .filter(|id| !id.is_empty());
    // A current instance has been logged when the container runs or ran since its last restart.
    let current_exists = state.running.is_some() || terminated_id.is_some();
    let is_terminated = format!("container {container:?} in pod {pod_name:?} is terminated");
    let (container_id, current) = if previous {
        let Some(id) = last else {
            return Err(format!(
                "previous terminated container {container:?} in pod {pod_name:?} not found"
            ));
        };
        (id, false)
    } else if state.running.is_some() {
        (found.container_id.clone().unwrap_or_default(), true)
    } else if state.terminated.is_some() {
        match (terminated_id, last) {
            (Some(id), _) => (id, true),
            (None, Some(id)) => (id, false),
            (None, None) => return Err(is_terminated),
        }
    } else if has_last {
        (last.ok_or(is_terminated)?, false)
    } else if let Some(waiting) = &state.waiting {
        let reason = waiting.reason.as_deref().unwrap_or_default();
        return Err(match reason {
            "ErrImagePull" => {
                format!(
                    "container {container:?} in pod {pod_name:?} is waiting to start: image can't be pulled"
                )
            }
            "ImagePullBackOff" => format!(
                "container {container:?} in pod {pod_name:?} is waiting to start: trying and failing to pull image"
            ),
            _ => format!("container {container:?} in pod {pod_name:?} is waiting to start: {reason}"),
        });
    } else {
        return Err(format!(
            "container {container:?} in pod {pod_name:?} is waiting to start - no logs yet"
        ));
    };
    // The newest file belongs to the current instance when there is one; otherwise (waiting
    // to restart) to the last terminated one.
    let index = usize::from(previous && current_exists);
    Ok(Instance {
        container_id,
        index,
        current: current && state.running.is_some(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::needless_pass_by_value)]
    use super::*;
    use serde_json::json;

    #[test]
    fn query_is_decoded_like_the_kubelet() {
        let params =
            Params::parse("follow=1&previous=false&timestamps=&tailLines=5&limitBytes=10&sinceSeconds=3")
                .unwrap();
        assert_eq!(
            params,
            Params {
                follow: true,
                previous: false,
                timestamps: true,
                tail_lines: Some(5),
                limit_bytes: Some(10),
                since_seconds: Some(3),
                since_time: None,
            }
        );
        assert_eq!(Params::parse("tail=all&tailLines=3").unwrap().tail_lines, None);
        assert_eq!(Params::parse("tail=2&tailLines=3").unwrap().tail_lines, Some(2));
        assert!(Params::parse("tailLines=x").is_err());
        assert!(Params::parse("sinceTime=yesterday").is_err());
        let since = Params::parse("sinceTime=2026-11-26T10:00:00Z").unwrap();
        assert_eq!(since.since_time, Some("2026-11-26T10:00:00Z".parse().unwrap()));
        assert!(!Params::parse("tailLines=-1").unwrap().is_valid());
        assert!(!Params::parse("limitBytes=0").unwrap().is_valid());
        assert!(!Params::parse("sinceSeconds=0").unwrap().is_valid());
        assert!(
            !Params::parse("sinceSeconds=1&sinceTime=2026-11-26T10:00:00Z")
                .unwrap()
                .is_valid()
        );
    }

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"containerStatuses": [status]},
        }))
        .unwrap()
    }

    #[test]
    fn the_status_picks_the_instance() {
        let running = pod(
            json!({"name": "app", "image": "i", "imageID": "", "ready": true, "restartCount": 1,
            "containerID": "rudder://c2", "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1, "containerID": "rudder://c1"}}}),
        );
        assert_eq!(
            log_instance(&running, "app", false).unwrap(),
            Instance {
                container_id: "rudder://c2".into(),
                index: 0,
                current: true
            }
        );
        assert_eq!(
            log_instance(&running, "app", true).unwrap(),
            Instance {
                container_id: "rudder://c1".into(),
                index: 1,
                current: false
            }
        );
        let crashing = pod(
            json!({"name": "app", "image": "i", "imageID": "", "ready": false, "restartCount": 1,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "containerID": "rudder://c1"}}}),
        );
        assert_eq!(log_instance(&crashing, "app", true).unwrap().index, 0);
        assert_eq!(log_instance(&crashing, "app", false).unwrap().index, 0);
        let fresh = pod(
            json!({"name": "app", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
            "containerID": "rudder://c1", "state": {"running": {}}}),
        );
        assert_eq!(
            log_instance(&fresh, "app", true).unwrap_err(),
            "previous terminated container \"app\" in pod \"web\" not found"
        );
        let pulling = pod(
            json!({"name": "app", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}),
        );
        assert_eq!(
            log_instance(&pulling, "app", false).unwrap_err(),
            "container \"app\" in pod \"web\" is waiting to start: ContainerCreating"
        );
        assert_eq!(
            log_instance(&pulling, "other", false).unwrap_err(),
            "container \"other\" in pod \"web\" is not available"
        );
    }
}
