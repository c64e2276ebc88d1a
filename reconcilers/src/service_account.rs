//! The service account controller: every active namespace has a `default` ServiceAccount
//! (upstream: pkg/controller/serviceaccount). It creates, never updates or deletes.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_already_exists};

/// The controller's name in `--controllers`.
pub const NAME: &str = "serviceaccount-controller";
/// The service accounts every namespace gets.
const DEFAULT_ACCOUNTS: &[&str] = &["default"];

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let namespaces: Api<Namespace> = Api::all(context.client.clone());
    let accounts: Api<ServiceAccount> = Api::all(context.client.clone());
    let controller = Controller::new(namespaces, watcher::Config::default()).watches(
        accounts,
        watcher::Config::default().fields("metadata.name=default"),
        |account| account.namespace().map(|ns| ObjectRef::new(&ns)),
    );
    harness::run(NAME, controller, context, shutdown, reconcile).await;
}

async fn reconcile(namespace: Arc<Namespace>, context: Arc<Context>) -> Result<Action, ReconcileError> {
    let terminating = namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating || namespace.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = namespace.name_any();
    let api: Api<ServiceAccount> = Api::namespaced(context.client.clone(), &name);
    for account in DEFAULT_ACCOUNTS {
        if api.get_opt(account).await?.is_some() {
            continue;
        }
        let object = ServiceAccount {
            metadata: kube::api::ObjectMeta {
                name: Some((*account).to_owned()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => tracing::debug!(namespace = %name, account, "created service account"),
            Err(err) if is_already_exists(&err) => {}
            // The namespace started terminating meanwhile: nothing to do.
            Err(kube::Error::Api(status)) if status.code == 403 => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(Action::await_change())
}
