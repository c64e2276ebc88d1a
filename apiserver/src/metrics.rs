//! Prometheus metrics of the API server: requests, storage commits and open watches.
//!
//! Label sets are bounded: resource requests are labelled by verb, group, version, resource,
//! subresource and scope; non-resource requests by their path when it is a known endpoint.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rudder_storage::{Commit, CommitObserver};

/// The labels of one request.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The Kubernetes verb (get, list, watch, create, ...).
    pub verb: String,
    /// API group of a resource request.
    pub group: String,
    /// API version of a resource request.
    pub version: String,
    /// Resource of a resource request.
    pub resource: String,
    /// Subresource of a resource request.
    pub subresource: String,
    /// cluster, namespace, resource (for a single object) or empty.
    pub scope: String,
    /// The path of a non-resource request (bounded to known endpoints).
    pub path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodedLabels {
    #[prometheus(flatten)]
    request: RequestLabels,
    code: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0,
        15.0, 20.0, 30.0, 45.0, 60.0,
    ])
}

fn commit_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

fn batch_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 12))
}

/// All metrics of the API server.
pub struct Metrics {
    registry: Registry,
    requests: Family<CodedLabels, Counter>,
    request_duration: HistogramFamily<RequestLabels>,
    open_watches: Gauge,
    revision: Gauge,
    commit_duration: Histogram,
    commit_writes: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<CodedLabels, Counter>::default();
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, group, version, resource, scope, path and HTTP response code",
            requests.clone(),
        );
        let request_duration: HistogramFamily<RequestLabels> =
            Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, group, version, resource, subresource, scope and path",
            request_duration.clone(),
        );
        let open_watches = Gauge::default();
        registry.register(
            "apiserver_registered_watchers",
            "Number of currently open watches",
            open_watches.clone(),
        );
        let revision = Gauge::default();
        registry.register(
            "rudder_storage_revision",
            "The newest committed storage revision",
            revision.clone(),
        );
        let commit_duration = commit_histogram();
        registry.register(
            "rudder_storage_commit_duration_seconds",
            "Time from the start of a storage write transaction until it is durable",
            commit_duration.clone(),
        );
        let commit_writes = batch_histogram();
        registry.register(
            "rudder_storage_commit_writes",
            "Number of writes group-committed in one storage transaction",
            commit_writes.clone(),
        );
        Metrics {
            registry,
            requests,
            request_duration,
            open_watches,
            revision,
            commit_duration,
            commit_writes,
        }
    }

    /// Records one finished request.
    pub fn observe_request(&self, labels: &RequestLabels, code: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&CodedLabels {
                request: labels.clone(),
                code: code.to_string(),
            })
            .inc();
        self.request_duration
            .get_or_create(labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Renders every metric in the OpenMetrics text format, after refreshing the gauges.
    pub fn render(&self, open_watches: usize, revision: u64) -> String {
        self.open_watches
            .set(i64::try_from(open_watches).unwrap_or(i64::MAX));
        self.revision.set(i64::try_from(revision).unwrap_or(i64::MAX));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("encoding metrics failed");
        }
        out
    }
}

impl CommitObserver for Metrics {
    fn committed(&self, commit: &Commit) {
        self.commit_duration.observe(commit.duration.as_secs_f64());
        self.commit_writes.observe(commit.writes as f64);
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_requests_and_storage() {
        let metrics = Metrics::new();
        let labels = RequestLabels {
            verb: "get".into(),
            path: "/version".into(),
            ..Default::default()
        };
        metrics.observe_request(&labels, 200, Duration::from_millis(3));
        metrics.observe_request(&labels, 200, Duration::from_millis(7));
        metrics.committed(&Commit {
            writes: 12,
            revision: 40,
            duration: Duration::from_micros(800),
        });
        let text = metrics.render(3, 40);
        assert!(text.contains(r#"apiserver_request_total{verb="get",group="",version="",resource="",subresource="",scope="",path="/version",code="200"} 2"#), "{text}");
        assert!(
            text.contains("apiserver_request_duration_seconds_count{"),
            "{text}"
        );
        assert!(text.contains("apiserver_registered_watchers 3"), "{text}");
        assert!(text.contains("rudder_storage_revision 40"), "{text}");
        assert!(text.contains("rudder_storage_commit_writes_sum 12.0"), "{text}");
        assert!(
            text.contains("rudder_storage_commit_duration_seconds_count 1"),
            "{text}"
        );
    }
}
