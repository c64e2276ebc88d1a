//! The PersistentVolume protection controller (upstream: pkg/controller/volume/pvprotection):
//! keeps the `kubernetes.io/pv-protection` finalizer on volumes, and removes it from a volume
//! being deleted once it is no longer bound (`status.phase` other than `Bound`).
//!
//! It only adds and removes that finalizer; it never deletes or binds volumes.

use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolume;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_not_found};

/// The controller's name in `--controllers`.
pub const NAME: &str = "persistentvolume-protection-controller";
/// The finalizer this controller owns.
const FINALIZER: &str = "kubernetes.io/pv-protection";

/// Runs the controller.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let controller = Controller::new(
        Api::<PersistentVolume>::all(context.client.clone()),
        watcher::Config::default(),
    );
    harness::run(
        NAME,
        controller,
        context,
        shutdown,
        |volume, context| async move { reconcile(volume, context).await },
    )
    .await;
}

/// What the volume needs: `Some(true)` the finalizer added, `Some(false)` removed.
fn wanted(volume: &PersistentVolume) -> Option<bool> {
    let has = volume.finalizers().iter().any(|f| f == FINALIZER);
    let deleting = volume.meta().deletion_timestamp.is_some();
    let bound = volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    match (deleting, has) {
        (true, true) if !bound => Some(false),
        (false, false) => Some(true),
        _ => None,
    }
}

async fn reconcile(volume: Arc<PersistentVolume>, context: Arc<Context>) -> Result<Action, ReconcileError> {
    let Some(add) = wanted(&volume) else {
        return Ok(Action::await_change());
    };
    let mut next = (*volume).clone();
    next.metadata.managed_fields = None;
    let finalizers = next.metadata.finalizers.get_or_insert_with(Vec::new);
    if add {
        finalizers.push(FINALIZER.to_owned());
    } else {
        finalizers.retain(|f| f != FINALIZER);
    }
    let api: Api<PersistentVolume> = Api::all(context.client.clone());
    match api
        .replace(&volume.name_any(), &PostParams::default(), &next)
        .await
    {
        Ok(_) => Ok(Action::await_change()),
        Err(err) if is_not_found(&err) => Ok(Action::await_change()),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn volume(deleting: bool, finalizer: bool, phase: &str) -> PersistentVolume {
        serde_json::from_value(json!({
            "metadata": {"name": "v",
                "deletionTimestamp": deleting.then_some("2024-01-01T00:00:00Z"),
                "finalizers": if finalizer { vec![FINALIZER] } else { vec![] }},
            "status": {"phase": phase},
        }))
        .unwrap()
    }

    #[test]
    fn finalizer_goes_only_when_deleting_and_unbound() {
        assert_eq!(wanted(&volume(true, true, "Bound")), None);
        assert_eq!(wanted(&volume(true, true, "Released")), Some(false));
        assert_eq!(wanted(&volume(true, true, "Available")), Some(false));
        assert_eq!(wanted(&volume(false, false, "Available")), Some(true));
        assert_eq!(wanted(&volume(false, true, "Bound")), None);
        assert_eq!(wanted(&volume(true, false, "Released")), None);
    }
}
