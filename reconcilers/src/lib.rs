//! Rudder's controllers and scheduler: the kube-controller-manager set and the scheduler as
//! kube-runtime reconcilers.
//!
//! Every controller reaches the API server only through `kube::Client`, exactly like a
//! third-party controller, and is level-triggered: it computes what should be from what is,
//! never from the reason it was woken. One shared harness ([`harness`]) runs them with
//! concurrency limits, backoff on errors, a tracing span per reconcile and metrics. The entry
//! point is [`run`].

mod cron_job;
mod daemon_set;
mod clusterrole_aggregation;
mod deployment;
mod endpoint_slice;
mod endpoint_slice_mirroring;
mod endpoints;
mod garbage_collector;
pub mod harness;
mod history;
mod job;
pub mod leader;
mod namespace;
mod node_ipam;
mod node_lifecycle;
mod pod_gc;
mod pods;
mod replica_set;
mod root_ca;
mod scheduler;
mod service_account;
mod stateful_set;
mod taint_eviction;
mod template_hash;
mod ttl_after_finished;

use std::future::Future;

use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::harness::Context;

/// How the controllers run.
#[derive(Clone)]
pub struct Config {
    /// How to reach the API server (as the controller manager).
    pub client: kube::Config,
    /// The cluster CA certificate (PEM), published in every namespace as `kube-root-ca.crt`.
    pub root_ca_pem: String,
    /// Controllers to run (`*` for all, `-name` to disable one), as kube-controller-manager's
    /// `--controllers`.
    pub controllers: Vec<String>,
    /// Take a coordination.k8s.io Lease before running (for several replicas).
    pub leader_elect: bool,
    /// This instance's identity in leader election.
    pub identity: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("controllers", &self.controllers)
            .field("leader_elect", &self.leader_elect)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Whether the controller called `name` is enabled.
    pub fn enabled(&self, name: &str) -> bool {
        let mut enabled = false;
        for entry in &self.controllers {
            if entry == "*" || entry == name {
                enabled = true;
            } else if entry.strip_prefix('-') == Some(name) {
                return false;
            }
        }
        enabled
    }
}

/// Why the controllers stopped with an error.
#[derive(Debug, Error)]
pub enum Error {
    /// The API client could not be built.
    #[error("building the API client: {0}")]
    Client(#[source] kube::Error),
    /// Leader election failed.
    #[error(transparent)]
    Leader(#[from] leader::LeaderError),
}

/// Runs every enabled controller until `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), Error> {
    let client = kube::Client::try_from(config.client.clone()).map_err(Error::Client)?;
    let token = CancellationToken::new();
    let stop = token.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    if config.leader_elect {
        leader::acquire(&client, "kube-controller-manager", &config.identity, &token).await?;
    }
    let context = Context::new(client, &config);
    let mut tasks = tokio::task::JoinSet::new();
    if config.enabled(service_account::NAME) {
        tasks.spawn(service_account::run(context.clone(), token.clone()));
    }
    if config.enabled(root_ca::NAME) {
        tasks.spawn(root_ca::run(context.clone(), token.clone()));
    }
    if config.enabled(garbage_collector::NAME) {
        tasks.spawn(garbage_collector::run(context.clone(), token.clone()));
    }
    if config.enabled(namespace::NAME) {
        tasks.spawn(namespace::run(context.clone(), token.clone()));
    }
    if config.enabled(replica_set::NAME) {
        tasks.spawn(replica_set::run_replica_sets(context.clone(), token.clone()));
    }
    if config.enabled(replica_set::RC_NAME) {
        tasks.spawn(replica_set::run_replication_controllers(
            context.clone(),
            token.clone(),
        ));
    }
    if config.enabled(daemon_set::NAME) {
        tasks.spawn(daemon_set::run(context.clone(), token.clone()));
    }
    if config.enabled(deployment::NAME) {
        tasks.spawn(deployment::run(context.clone(), token.clone()));
    }
    if config.enabled(stateful_set::NAME) {
        tasks.spawn(stateful_set::run(context.clone(), token.clone()));
    }
    if config.enabled(node_ipam::NAME) {
        tasks.spawn(node_ipam::run(context.clone(), token.clone()));
    }
    if config.enabled(cron_job::NAME) {
        tasks.spawn(cron_job::run(context.clone(), token.clone()));
    }
    if config.enabled(job::NAME) {
        tasks.spawn(job::run(context.clone(), token.clone()));
    }
    if config.enabled(ttl_after_finished::NAME) {
        tasks.spawn(ttl_after_finished::run(context.clone(), token.clone()));
    }
    if config.enabled(node_lifecycle::NAME) {
        tasks.spawn(node_lifecycle::run(context.clone(), token.clone()));
    }
    if config.enabled(endpoints::NAME) {
        tasks.spawn(endpoints::run(context.clone(), token.clone()));
    }
    if config.enabled(endpoint_slice::NAME) {
        tasks.spawn(endpoint_slice::run(context.clone(), token.clone()));
    }
    if config.enabled(endpoint_slice_mirroring::NAME) {
        tasks.spawn(endpoint_slice_mirroring::run(context.clone(), token.clone()));
    }
    if config.enabled(taint_eviction::NAME) {
        tasks.spawn(taint_eviction::run(context.clone(), token.clone()));
    }
    if config.enabled(scheduler::NAME) {
        tasks.spawn(scheduler::run(context.clone(), token.clone()));
    }
    if config.enabled(clusterrole_aggregation::NAME) {
        tasks.spawn(clusterrole_aggregation::run(context.clone(), token.clone()));
    }
    if config.enabled(pod_gc::NAME) {
        tasks.spawn(pod_gc::run(context.clone(), token.clone()));
    }
    tracing::info!(controllers = tasks.len(), "controllers started");
    while tasks.join_next().await.is_some() {}
    tracing::info!("controllers stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_selection_like_kube_controller_manager() {
        let config = |list: &[&str]| Config {
            client: kube::Config::new("https://127.0.0.1".parse().unwrap()),
            root_ca_pem: String::new(),
            controllers: list.iter().map(|s| (*s).to_owned()).collect(),
            leader_elect: false,
            identity: String::new(),
        };
        assert!(config(&["*"]).enabled("deployment"));
        assert!(!config(&["*", "-deployment"]).enabled("deployment"));
        assert!(config(&["deployment"]).enabled("deployment"));
        assert!(!config(&["job"]).enabled("deployment"));
    }
}
