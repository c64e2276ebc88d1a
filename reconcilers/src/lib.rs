//! Rudder's controllers and scheduler: the kube-controller-manager set and the scheduler as
//! kube-runtime reconcilers.
//!
//! Every controller reaches the API server only through `kube::Client`, exactly like a
//! third-party controller, and is level-triggered: it computes what should be from what is,
//! never from the reason it was woken. One shared harness ([`harness`]) runs them with
//! concurrency limits, backoff on errors, a tracing span per reconcile and metrics. The entry
//! point is [`run`].

mod clusterrole_aggregation;
mod cron_job;
pub mod csr;
mod daemon_set;
mod deployment;
mod disruption;
mod endpoint_slice;
mod endpoint_slice_mirroring;
mod endpoints;
mod garbage_collector;
pub mod harness;
mod history;
mod int_or_percent;
mod job;
pub mod leader;
mod namespace;
mod node_ipam;
mod node_lifecycle;
mod persistent_volume;
mod pod_gc;
mod pods;
mod pv_protection;
mod pvc_protection;
mod replica_set;
mod resource_quota;
mod root_ca;
mod scheduler;
mod service_account;
pub mod service_lb;
mod stateful_set;
mod taint_eviction;
mod template_hash;
mod ttl_after_finished;

use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;

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
    /// Addresses for Services of type LoadBalancer (CIDRs or `FIRST-LAST` ranges); the
    /// service-lb-controller runs only with some.
    pub load_balancer_pool: service_lb::Pool,
    /// The CA that signs approved CertificateSigningRequests (`--cluster-signing-cert-file`
    /// and `--cluster-signing-key-file`); the signing controller runs only with one.
    pub signing_ca: Option<csr::SigningCa>,
}

/// The group of bootstrap token users (nodes joining).
pub(crate) const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";

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
    /// Whether `controller` is enabled: `--controllers` entries name a controller by its name
    /// or its alias, `*` enables all, `-name` disables one, as kube-controller-manager reads them.
    fn enabled(&self, controller: &Controller) -> bool {
        let names = |entry: &str| entry == controller.name || controller.alias == Some(entry);
        let mut enabled = false;
        for entry in &self.controllers {
            if entry == "*" || names(entry) {
                enabled = true;
            } else if entry.strip_prefix('-').is_some_and(names) {
                return false;
            }
        }
        enabled
    }
}

/// How a controller runs: until the token is cancelled.
type Start = fn(Arc<Context>, CancellationToken) -> BoxFuture<'static, ()>;

/// A controller as `--controllers` knows it.
struct Controller {
    /// kube-controller-manager's name (`deployment-controller`).
    name: &'static str,
    /// The older short name it also accepts (`deployment`).
    alias: Option<&'static str>,
    start: Start,
}

/// Every controller, in start order.
const CONTROLLERS: &[Controller] = &[
    Controller {
        name: service_account::NAME,
        alias: Some("serviceaccount"),
        start: |c, t| Box::pin(service_account::run(c, t)),
    },
    Controller {
        name: root_ca::NAME,
        alias: Some("root-ca-cert-publisher"),
        start: |c, t| Box::pin(root_ca::run(c, t)),
    },
    Controller {
        name: garbage_collector::NAME,
        alias: Some("garbagecollector"),
        start: |c, t| Box::pin(garbage_collector::run(c, t)),
    },
    Controller {
        name: namespace::NAME,
        alias: Some("namespace"),
        start: |c, t| Box::pin(namespace::run(c, t)),
    },
    Controller {
        name: clusterrole_aggregation::NAME,
        alias: Some("clusterrole-aggregation"),
        start: |c, t| Box::pin(clusterrole_aggregation::run(c, t)),
    },
    Controller {
        name: replica_set::NAME,
        alias: Some("replicaset"),
        start: |c, t| Box::pin(replica_set::run_replica_sets(c, t)),
    },
    Controller {
        name: replica_set::RC_NAME,
        alias: Some("replicationcontroller"),
        start: |c, t| Box::pin(replica_set::run_replication_controllers(c, t)),
    },
    Controller {
        name: deployment::NAME,
        alias: Some("deployment"),
        start: |c, t| Box::pin(deployment::run(c, t)),
    },
    Controller {
        name: stateful_set::NAME,
        alias: Some("statefulset"),
        start: |c, t| Box::pin(stateful_set::run(c, t)),
    },
    Controller {
        name: daemon_set::NAME,
        alias: Some("daemonset"),
        start: |c, t| Box::pin(daemon_set::run(c, t)),
    },
    Controller {
        name: job::NAME,
        alias: Some("job"),
        start: |c, t| Box::pin(job::run(c, t)),
    },
    Controller {
        name: cron_job::NAME,
        alias: Some("cronjob"),
        start: |c, t| Box::pin(cron_job::run(c, t)),
    },
    Controller {
        name: resource_quota::NAME,
        alias: Some("resourcequota"),
        start: |c, t| Box::pin(resource_quota::run(c, t)),
    },
    Controller {
        name: ttl_after_finished::NAME,
        alias: Some("ttl-after-finished"),
        start: |c, t| Box::pin(ttl_after_finished::run(c, t)),
    },
    Controller {
        name: endpoints::NAME,
        alias: Some("endpoint"),
        start: |c, t| Box::pin(endpoints::run(c, t)),
    },
    Controller {
        name: endpoint_slice::NAME,
        alias: Some("endpointslice"),
        start: |c, t| Box::pin(endpoint_slice::run(c, t)),
    },
    Controller {
        name: endpoint_slice_mirroring::NAME,
        alias: Some("endpointslicemirroring"),
        start: |c, t| Box::pin(endpoint_slice_mirroring::run(c, t)),
    },
    Controller {
        name: node_ipam::NAME,
        alias: Some("nodeipam"),
        start: |c, t| Box::pin(node_ipam::run(c, t)),
    },
    Controller {
        name: node_lifecycle::NAME,
        alias: Some("nodelifecycle"),
        start: |c, t| Box::pin(node_lifecycle::run(c, t)),
    },
    Controller {
        name: taint_eviction::NAME,
        alias: None,
        start: |c, t| Box::pin(taint_eviction::run(c, t)),
    },
    Controller {
        name: pod_gc::NAME,
        alias: Some("podgc"),
        start: |c, t| Box::pin(pod_gc::run(c, t)),
    },
    Controller {
        name: persistent_volume::NAME,
        alias: Some("persistentvolume-binder"),
        start: |c, t| Box::pin(persistent_volume::run(c, t)),
    },
    Controller {
        name: disruption::NAME,
        alias: Some("disruption"),
        start: |c, t| Box::pin(disruption::run(c, t)),
    },
    Controller {
        name: pvc_protection::NAME,
        alias: Some("pvc-protection"),
        start: |c, t| Box::pin(pvc_protection::run(c, t)),
    },
    Controller {
        name: pv_protection::NAME,
        alias: Some("pv-protection"),
        start: |c, t| Box::pin(pv_protection::run(c, t)),
    },
    Controller {
        name: csr::APPROVING,
        alias: Some("csrapproving"),
        start: |c, t| Box::pin(csr::run_approving(c, t)),
    },
    Controller {
        name: csr::SIGNING,
        alias: Some("csrsigning"),
        start: |c, t| Box::pin(csr::run_signing(c, t)),
    },
    Controller {
        name: service_lb::NAME,
        alias: Some("service"),
        start: |c, t| Box::pin(service_lb::run(c, t)),
    },
    Controller {
        name: scheduler::NAME,
        alias: None,
        start: |c, t| Box::pin(scheduler::run(c, t)),
    },
];

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
    for controller in CONTROLLERS.iter().filter(|c| config.enabled(c)) {
        tasks.spawn((controller.start)(context.clone(), token.clone()));
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
            load_balancer_pool: service_lb::Pool::default(),
            signing_ca: None,
        };
        let deployment = CONTROLLERS
            .iter()
            .find(|c| c.name == "deployment-controller")
            .unwrap();
        assert!(config(&["*"]).enabled(deployment));
        assert!(!config(&["*", "-deployment"]).enabled(deployment));
        assert!(!config(&["*", "-deployment-controller"]).enabled(deployment));
        assert!(config(&["deployment"]).enabled(deployment));
        assert!(config(&["deployment-controller"]).enabled(deployment));
        assert!(!config(&["job"]).enabled(deployment));
    }

    #[test]
    fn controller_names_are_unique() {
        let mut names: Vec<&str> = CONTROLLERS
            .iter()
            .flat_map(|c| std::iter::once(c.name).chain(c.alias))
            .collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all);
    }
}
