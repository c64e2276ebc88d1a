//! Watch responses: a chunked stream of newline-delimited JSON watch events that ends when
//! the watch fails, times out, or the client goes away.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{HeaderValue, header};
use tokio::sync::mpsc;
use warp::Reply;
use warp::reply::Response;

use crate::api::negotiation::Output;
use crate::api::output;
use crate::store::WatchStream;

/// Encoded events buffered between the watch and the connection.
const BUFFERED_EVENTS: usize = 64;

/// A server-chosen watch timeout: uniformly between `min` and twice `min`, like
/// kube-apiserver's `--min-request-timeout`, so watchers do not reconnect in lockstep.
pub fn server_timeout(min: Duration) -> Duration {
    let mut byte = [0u8; 2];
    let _ = rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut byte);
    let fraction = f64::from(u16::from_le_bytes(byte)) / f64::from(u16::MAX);
    min + min.mul_f64(fraction)
}

/// Streams `events` to the client as watch events of `resource`.
pub fn respond(
    mut events: WatchStream,
    resource: std::sync::Arc<crate::registry::Resource>,
    output: Output,
    timeout: Duration,
    shutdown: tokio_util::sync::CancellationToken,
) -> Response {
    let (sender, mut receiver) = mpsc::channel::<Bytes>(BUFFERED_EVENTS);
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut first = true;
        loop {
            let event = tokio::select! {
                () = &mut deadline => break,
                () = shutdown.cancelled() => break,
                () = sender.closed() => break,
                event = events.next() => event,
            };
            let Some(event) = event else { break };
            let ends = matches!(event, crate::store::WatchEvent::Error(_));
            let bytes = match output::watch_frame(event, &resource, &output, first) {
                Ok(bytes) => bytes,
                Err(err) => {
                    tracing::warn!(error = %err.message, "encoding a watch event failed");
                    break;
                }
            };
            first = false;
            if sender.send(Bytes::from(bytes)).await.is_err() || ends {
                break;
            }
        }
    });
    let body = futures_util::stream::poll_fn(move |cx| {
        receiver.poll_recv(cx).map(|item| item.map(Ok::<_, Infallible>))
    });
    let mut response = warp::reply::stream(body).into_response();
    let content_type = match output.encoding {
        crate::api::negotiation::Encoding::Yaml => "application/yaml",
        crate::api::negotiation::Encoding::Json { .. } => "application/json",
        crate::api::negotiation::Encoding::Protobuf => rudder_machinery::protobuf::WATCH_MEDIA_TYPE,
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
