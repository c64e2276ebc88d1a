//! The shared harness every controller runs in: the context (client, event reporter, cluster
//! facts), the error policy with per-object exponential backoff, a tracing span per reconcile,
//! and reconcile counters. Controllers are plain async functions of (object, context).

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Config;

/// Why a reconcile failed; the object is retried with backoff.
#[derive(Debug, Error)]
pub enum ReconcileError {
    /// An API call failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// The object cannot be reconciled as it is.
    #[error("{0}")]
    Invalid(String),
}

/// The first retry delay after a failure (client-go's default controller rate limiter).
const BACKOFF_BASE: Duration = Duration::from_millis(5);
/// The longest retry delay.
const BACKOFF_MAX: Duration = Duration::from_secs(1000);

/// What every reconcile sees.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// The cluster CA (PEM).
    pub root_ca_pem: String,
    /// See [`crate::Config::load_balancer_pool`].
    pub load_balancer_pool: crate::service_lb::Pool,
    /// See [`crate::Config::signing_ca`].
    pub signing_ca: Option<crate::csr::SigningCa>,
    failures: Mutex<HashMap<String, u32>>,
    reconciles: AtomicU64,
    errors: AtomicU64,
}

impl Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Context {
    /// A context for the controllers of `config`.
    pub fn new(client: Client, config: &Config) -> Arc<Context> {
        Arc::new(Context {
            client,
            root_ca_pem: config.root_ca_pem.clone(),
            load_balancer_pool: config.load_balancer_pool.clone(),
            signing_ca: config.signing_ca.clone(),
            failures: Mutex::new(HashMap::new()),
            reconciles: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    /// An event recorder reporting as `controller` (e.g. `deployment-controller`).
    pub fn recorder(&self, controller: &str) -> Recorder {
        Recorder::new(
            self.client.clone(),
            Reporter {
                controller: controller.to_owned(),
                instance: None,
            },
        )
    }

    /// Publishes an events.k8s.io/v1 event about `object` as `component`, the reason doubling
    /// as the action. A recorder per event: kube's recorder folds events that differ only in
    /// their note into one series and keeps the first note, which would misreport the later
    /// ones ("from 0 to 1" for every scaling).
    pub async fn publish(
        &self,
        component: &str,
        object: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: reason.to_owned(),
            secondary: None,
        };
        if let Err(err) = self.recorder(component).publish(&event, object).await {
            tracing::debug!(error = %err, reason, "publishing an event");
        }
    }

    /// How many reconciles ran and how many failed.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.reconciles.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }

    fn failed(&self, key: &str) -> Duration {
        let Ok(mut failures) = self.failures.lock() else {
            return BACKOFF_MAX;
        };
        let count = failures.entry(key.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        BACKOFF_BASE
            .saturating_mul(2u32.saturating_pow(count.saturating_sub(1).min(31)))
            .min(BACKOFF_MAX)
    }

    fn succeeded(&self, key: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(key);
        }
    }
}

/// Runs `controller` with `reconcile` until `shutdown` fires.
pub async fn run<K, F, Fut>(
    name: &'static str,
    controller: Controller<K>,
    context: Arc<Context>,
    shutdown: CancellationToken,
    reconcile: F,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Debug + Unpin,
    F: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action, ReconcileError>> + Send + 'static,
{
    let reconcile = Arc::new(reconcile);
    let stopping = shutdown.clone();
    let running = controller
        .graceful_shutdown_on(shutdown.cancelled_owned())
        .run(
            move |object: Arc<K>, context: Arc<Context>| {
                let reference = ObjectRef::from_obj(&*object).to_string();
                let span = tracing::info_span!("reconcile", controller = name, object = %reference);
                let reconcile = reconcile.clone();
                async move {
                    let started = Instant::now();
                    context.reconciles.fetch_add(1, Ordering::Relaxed);
                    let key = format!("{name}/{reference}");
                    let result = reconcile(object, context.clone()).await;
                    match &result {
                        Ok(_) => context.succeeded(&key),
                        Err(err) => {
                            context.errors.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(error = %err, "reconcile failed");
                        }
                    }
                    tracing::trace!(
                        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                        "reconciled"
                    );
                    result
                }
                .instrument(span)
            },
            move |object: Arc<K>, _error: &ReconcileError, context: Arc<Context>| {
                let key = format!("{name}/{}", ObjectRef::from_obj(&*object));
                Action::requeue(context.failed(&key))
            },
            context,
        )
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(controller = name, error = %err, "controller event");
            }
        });
    // A graceful shutdown lets running reconciles finish, but never holds the process longer
    // than the grace period: kube-runtime's runner holds queued reconciles until the reflector
    // store is ready, so a shutdown before the first list completes would otherwise wait
    // forever.
    tokio::select! {
        () = running => {}
        () = async {
            stopping.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::warn!(controller = name, "reconciles still running after the shutdown grace period; dropped"),
    }
}

/// How long running reconciles may take to finish once shutdown begins.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Whether the API error is a 404.
pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}

/// Whether the API error is a 409 AlreadyExists.
pub fn is_already_exists(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}

/// Whether the API error is a 409 Conflict (stale resourceVersion).
pub fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409 && status.reason == "Conflict")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backoff_doubles_from_5ms_and_resets() {
        let context = Context {
            client: Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().unwrap())).unwrap(),
            root_ca_pem: String::new(),
            load_balancer_pool: crate::service_lb::Pool::default(),
            signing_ca: None,
            failures: Mutex::new(HashMap::new()),
            reconciles: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        };
        assert_eq!(context.failed("a"), Duration::from_millis(5));
        assert_eq!(context.failed("a"), Duration::from_millis(10));
        assert_eq!(context.failed("a"), Duration::from_millis(20));
        context.succeeded("a");
        assert_eq!(context.failed("a"), Duration::from_millis(5));
        for _ in 0..40 {
            context.failed("b");
        }
        assert_eq!(context.failed("b"), BACKOFF_MAX);
    }
}
