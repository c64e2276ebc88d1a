//! The service proxy: Services and EndpointSlices in, one nftables table out (see
//! [`rules`]), kept in step with partial transactions and rebuilt whole at start, after a
//! failure and every hour (kube-proxy's `--sync-period`).
//!
//! After each sync that changed something, the UDP flows it made stale are deleted
//! ([`crate::conntrack`]). It reads the API through reflectors and writes nothing to it.

pub mod model;
pub mod rules;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::NodeFacts;
use crate::watched::Watched;

/// How long changes gather before a sync (kube-proxy's `--min-sync-period` is 1 s; a shorter
/// wait keeps new services reachable sooner, and a sync of a few changes is cheap).
const MIN_SYNC_PERIOD: Duration = Duration::from_millis(50);
/// A full rebuild this often, whatever happened.
const FULL_SYNC_PERIOD: Duration = Duration::from_secs(3600);
/// The wait before trying again after a failed sync.
const RETRY: Duration = Duration::from_secs(1);

/// Runs the service proxy of `node` until `shutdown`.
pub async fn run(
    mut watched: Watched,
    node_name: String,
    network: rules::Network,
    mut node: watch::Receiver<NodeFacts>,
    shutdown: CancellationToken,
) {
    tokio::select! {
        () = shutdown.cancelled() => return,
        () = watched.ready() => {}
    }
    let mut last: Option<rules::Programmed> = None;
    let mut last_full = Instant::now();
    loop {
        let node_ips: Vec<Ipv4Addr> = node.borrow_and_update().addresses.clone();
        watched.generation.borrow_and_update();
        let ports = model::service_ports(
            watched.services.state().iter().map(AsRef::as_ref),
            watched.slices.state().iter().map(AsRef::as_ref),
            &node_name,
        );
        let mut programmed = rules::program_reusing(last.as_ref(), &ports, &node_ips, &network);
        let host_ports = model::host_ports(watched.pods.state().iter().map(AsRef::as_ref), &node_name);
        rules::program_host_ports(&mut programmed, &host_ports, &node_ips);
        let full = last.is_none() || last_full.elapsed() >= FULL_SYNC_PERIOD;
        let transaction = match &last {
            Some(previous) if !full => rules::partial_sync(previous, &programmed),
            _ => rules::full_sync(&programmed, &network),
        };
        let commands = transaction.len();
        let began = Instant::now();
        let applied = if transaction.is_empty() {
            Ok(())
        } else {
            match tokio::task::spawn_blocking(move || transaction.apply(rules::TABLE)).await {
                Ok(result) => result.map_err(|e| e.to_string()),
                Err(err) => Err(err.to_string()),
            }
        };
        let wait = match applied {
            Ok(()) => {
                if commands > 0 {
                    tracing::debug!(full, ports = ports.len(), commands, elapsed = ?began.elapsed(), "synced the service proxy");
                    clean_conntrack(ports).await;
                }
                if full {
                    last_full = Instant::now();
                }
                last = Some(programmed);
                None
            }
            Err(err) => {
                tracing::warn!(error = %err, "programming the service proxy failed; rebuilding it");
                last = None;
                Some(RETRY)
            }
        };
        let until_full = FULL_SYNC_PERIOD.saturating_sub(last_full.elapsed());
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = watched.generation.changed() => {}
            _ = node.changed() => {}
            () = tokio::time::sleep(wait.unwrap_or(until_full)) => {}
        }
        tokio::time::sleep(MIN_SYNC_PERIOD).await;
    }
}

/// Deletes the UDP flows the sync made stale (see [`crate::conntrack`]).
async fn clean_conntrack(ports: Vec<model::ServicePort>) {
    match tokio::task::spawn_blocking(move || crate::conntrack::clean_stale(&ports)).await {
        Ok(Ok(0)) => {}
        Ok(Ok(deleted)) => tracing::debug!(deleted, "deleted stale UDP conntrack flows"),
        Ok(Err(err)) => tracing::warn!(error = %err, "deleting stale UDP conntrack flows failed"),
        Err(err) => tracing::warn!(error = %err, "deleting stale UDP conntrack flows failed"),
    }
}
