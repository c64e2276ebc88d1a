//! NetworkPolicy enforcement: Pods, Namespaces and NetworkPolicies in, the `rudder-policy`
//! nftables table out, rebuilt whole (one atomic transaction) when any of them changes.
//!
//! It reads the API through reflectors and writes nothing to it.

pub mod model;
pub mod rules;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::watched::follow;

/// How long changes gather before the table is rebuilt.
const SETTLE: Duration = Duration::from_millis(50);

/// Enforces NetworkPolicies for the pods of `node_name` until `shutdown`.
pub async fn run(client: Client, node_name: String, shutdown: CancellationToken) {
    let (bump, mut generation) = watch::channel(0u64);
    let policies = follow::<NetworkPolicy>(client.clone(), bump.clone(), shutdown.clone());
    let pods = follow::<Pod>(client.clone(), bump.clone(), shutdown.clone());
    let namespaces = follow::<Namespace>(client, bump, shutdown.clone());
    tokio::select! {
        () = shutdown.cancelled() => return,
        _ = futures_util::future::join3(policies.wait_until_ready(), pods.wait_until_ready(), namespaces.wait_until_ready()) => {}
    }
    let mut last = None;
    loop {
        generation.borrow_and_update();
        let isolations = model::isolations(
            policies.state().iter().map(AsRef::as_ref),
            pods.state().iter().map(AsRef::as_ref),
            namespaces.state().iter().map(AsRef::as_ref),
            &node_name,
        );
        let mut retry = false;
        if last.as_ref() != Some(&isolations) {
            let transaction = rules::table(&isolations);
            match tokio::task::spawn_blocking(move || transaction.apply(rules::TABLE)).await {
                Ok(Ok(())) => {
                    tracing::debug!(isolated = isolations.len(), "programmed network policies");
                    last = Some(isolations);
                }
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "programming network policies failed");
                    retry = true;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "programming network policies failed");
                    retry = true;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = generation.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(Duration::from_secs(1)), if retry => {}
        }
        tokio::time::sleep(SETTLE).await;
    }
}
