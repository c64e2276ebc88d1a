//! Leader election through a coordination.k8s.io Lease, with resourceVersion fencing: a
//! candidate takes or renews the Lease only by an update conditioned on the version it read,
//! so two candidates can never both believe they hold it. Timings are kube-controller-manager's
//! defaults (15 s lease, renewal every 2 s, 10 s renew deadline).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, PostParams};
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::harness::{is_already_exists, is_conflict, is_not_found};

/// How long a Lease is valid after its last renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews.
pub const RETRY_PERIOD: Duration = Duration::from_secs(2);
/// How long the holder keeps trying to renew before giving up leadership.
pub const RENEW_DEADLINE: Duration = Duration::from_secs(10);

/// Leader election failures.
#[derive(Debug, Error)]
pub enum LeaderError {
    /// The Lease could not be read or written.
    #[error("leader election on lease kube-system/{lease}: {source}")]
    Api {
        /// The lease name.
        lease: String,
        /// The failure.
        source: kube::Error,
    },
    /// Shutdown began before leadership was acquired.
    #[error("stopped before becoming the leader")]
    Stopped,
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

/// Whether `lease` is held by someone other than `identity` and not yet expired.
fn held_by_other(lease: &Lease, identity: &str) -> bool {
    let Some(spec) = &lease.spec else { return false };
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() || holder == identity {
        return false;
    }
    let duration = spec
        .lease_duration_seconds
        .map_or(LEASE_DURATION.as_secs() as i64, i64::from);
    match &spec.renew_time {
        Some(renewed) => {
            let age = k8s_openapi::jiff::Timestamp::now().duration_since(renewed.0);
            age.as_secs() < duration
        }
        None => false,
    }
}

/// Tries once to take or renew the Lease; returns whether `identity` holds it now.
async fn try_acquire(api: &Api<Lease>, name: &str, identity: &str) -> Result<bool, kube::Error> {
    let current = match api.get(name).await {
        Ok(lease) => lease,
        Err(err) if is_not_found(&err) => {
            let lease: Lease = serde_json::from_value(serde_json::json!({
                "metadata": {"name": name, "namespace": "kube-system"},
                "spec": {
                    "holderIdentity": identity,
                    "leaseDurationSeconds": LEASE_DURATION.as_secs(),
                    "acquireTime": now(),
                    "renewTime": now(),
                    "leaseTransitions": 0,
                },
            }))
            .map_err(kube::Error::SerdeError)?;
            return match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(err) if is_already_exists(&err) => Ok(false),
                Err(err) => Err(err),
            };
        }
        Err(err) => return Err(err),
    };
    if held_by_other(&current, identity) {
        return Ok(false);
    }
    let mut next = current.clone();
    let spec = next.spec.get_or_insert_with(Default::default);
    let holder_changed = spec.holder_identity.as_deref() != Some(identity);
    if holder_changed {
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.holder_identity = Some(identity.to_owned());
    spec.lease_duration_seconds = Some(LEASE_DURATION.as_secs() as i32);
    spec.renew_time = Some(now());
    // The update carries the resourceVersion just read: a concurrent writer makes it fail.
    match api.replace(name, &PostParams::default(), &next).await {
        Ok(_) => Ok(true),
        Err(err) if is_conflict(&err) => Ok(false),
        Err(err) => Err(err),
    }
}

/// Waits until `identity` holds the Lease `name` in kube-system, then keeps renewing it in the
/// background; if renewal fails for longer than the renew deadline, `stop` is cancelled so the
/// caller stops acting as leader.
pub async fn acquire(
    client: &Client,
    name: &str,
    identity: &str,
    stop: &CancellationToken,
) -> Result<(), LeaderError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let error = |source| LeaderError::Api {
        lease: name.to_owned(),
        source,
    };
    loop {
        if stop.is_cancelled() {
            return Err(LeaderError::Stopped);
        }
        match try_acquire(&api, name, identity).await {
            Ok(true) => break,
            Ok(false) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(error(err)),
        }
        tokio::select! {
            () = stop.cancelled() => return Err(LeaderError::Stopped),
            () = tokio::time::sleep(RETRY_PERIOD) => {}
        }
    }
    tracing::info!(lease = name, identity, "became the leader");
    let (name, identity, stop) = (name.to_owned(), identity.to_owned(), stop.clone());
    tokio::spawn(async move {
        let mut last_renewal = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RETRY_PERIOD) => {}
            }
            match try_acquire(&api, &name, &identity).await {
                Ok(true) => last_renewal = tokio::time::Instant::now(),
                Ok(false) => {
                    tracing::error!(lease = %name, "lost the lease to another holder; stopping");
                    stop.cancel();
                    return;
                }
                Err(err) if last_renewal.elapsed() > RENEW_DEADLINE => {
                    tracing::error!(lease = %name, error = %err, "could not renew the lease in time; stopping");
                    stop.cancel();
                    return;
                }
                Err(err) => tracing::warn!(lease = %name, error = %err, "renewing the lease failed"),
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: &str, renewed_secs_ago: i64) -> Lease {
        let renewed = k8s_openapi::jiff::Timestamp::now()
            - k8s_openapi::jiff::SignedDuration::from_secs(renewed_secs_ago);
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "l"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": MicroTime(renewed)},
        }))
        .unwrap()
    }

    #[test]
    fn expiry() {
        assert!(held_by_other(&lease("other", 3), "me"));
        assert!(
            !held_by_other(&lease("other", 30), "me"),
            "an expired lease may be taken"
        );
        assert!(!held_by_other(&lease("me", 3), "me"));
        assert!(!held_by_other(&lease("", 3), "me"));
    }
}
