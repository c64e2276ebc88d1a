//! The TTL-after-finished controller (upstream: pkg/controller/ttlafterfinished): deletes a
//! finished Job (Complete or Failed) `ttlSecondsAfterFinished` seconds after the condition's
//! transition, with foreground propagation and a UID precondition, after re-reading the Job
//! from the API server. Jobs not yet due are requeued exactly when they expire.
//!
//! It only deletes Jobs; it never changes one.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Preconditions, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_conflict, is_not_found};

/// The controller's name in `--controllers`.
pub const NAME: &str = "ttl-after-finished-controller";

/// Runs the controller.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let controller = Controller::new(
        Api::<Job>::all(context.client.clone()),
        watcher::Config::default(),
    );
    harness::run(NAME, controller, context, shutdown, |job, context| async move {
        reconcile(job, context).await
    })
    .await;
}

/// When the finished job expires, or `Ok(None)` if it needs no clean-up.
fn expires_at(job: &Job) -> Result<Option<Timestamp>, String> {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Ok(None);
    };
    if job.meta().deletion_timestamp.is_some() {
        return Ok(None);
    }
    let Some(condition) = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| {
            c.iter()
                .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
    else {
        return Ok(None);
    };
    let namespace = job.namespace().unwrap_or_default();
    let name = job.name_any();
    let finished = condition
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
        .ok_or_else(|| format!("unable to find the time when the Job {namespace}/{name} finished"))?;
    if finished > Timestamp::now() {
        tracing::info!(
            "Warning: Found Job finished in the future. This is likely due to time skew in the cluster. Job cleanup will be deferred."
        );
    }
    finished
        .checked_add(SignedDuration::from_secs(i64::from(ttl)))
        .map(Some)
        .map_err(|err| err.to_string())
}

/// How long until `at`; zero once past.
fn left(at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO)
}

async fn reconcile(job: Arc<Job>, context: Arc<Context>) -> Result<Action, ReconcileError> {
    let due = match expires_at(&job).map_err(ReconcileError::Invalid)? {
        None => return Ok(Action::await_change()),
        Some(at) => left(at),
    };
    if !due.is_zero() {
        return Ok(Action::requeue(due));
    }
    // The TTL looks expired in the cache: check the latest Job before deleting it.
    let api: Api<Job> = Api::namespaced(context.client.clone(), &job.namespace().unwrap_or_default());
    let Some(fresh) = api.get_opt(&job.name_any()).await? else {
        return Ok(Action::await_change());
    };
    let due = match expires_at(&fresh).map_err(ReconcileError::Invalid)? {
        None => return Ok(Action::await_change()),
        Some(at) => left(at),
    };
    if !due.is_zero() {
        return Ok(Action::requeue(due));
    }
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        preconditions: Some(Preconditions {
            uid: fresh.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&fresh.name_any(), &params).await {
        Ok(_) => {
            tracing::debug!("cleaned up the finished job");
            Ok(Action::await_change())
        }
        Err(err) if is_not_found(&err) => Ok(Action::await_change()),
        // A precondition failure: another Job with this name; it is synced on its own event.
        Err(err) if is_conflict(&err) => Ok(Action::await_change()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(ttl: Option<i32>, condition: Option<(&str, &str)>) -> Job {
        let conditions: Vec<serde_json::Value> = condition
            .map(|(t, at)| json!({"type": t, "status": "True", "lastTransitionTime": at}))
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "j", "namespace": "ns"},
            "spec": {"ttlSecondsAfterFinished": ttl, "template": {}},
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    #[test]
    fn expiry_counts_from_the_finished_condition() {
        assert_eq!(
            expires_at(&job(None, Some(("Complete", "2024-01-01T00:00:00Z")))),
            Ok(None)
        );
        assert_eq!(expires_at(&job(Some(10), None)), Ok(None));
        assert_eq!(
            expires_at(&job(Some(10), Some(("Failed", "2024-01-01T00:00:00Z")))),
            Ok(Some("2024-01-01T00:00:10Z".parse().unwrap()))
        );
        assert_eq!(
            expires_at(&job(Some(0), Some(("Complete", "2024-01-01T00:00:00Z")))),
            Ok(Some("2024-01-01T00:00:00Z".parse().unwrap()))
        );
    }
}
