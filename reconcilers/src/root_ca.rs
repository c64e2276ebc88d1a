//! The root CA publisher: every active namespace has a `kube-root-ca.crt` ConfigMap with the
//! cluster CA under `ca.crt`, for in-cluster clients (upstream:
//! pkg/controller/certificates/rootcacertpublisher). It recreates the ConfigMap when deleted
//! and restores its data when changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_already_exists, is_not_found};

/// The controller's name in `--controllers`.
pub const NAME: &str = "root-ca-certificate-publisher-controller";
/// The ConfigMap's name.
pub const CONFIGMAP: &str = "kube-root-ca.crt";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let namespaces: Api<Namespace> = Api::all(context.client.clone());
    let configmaps: Api<ConfigMap> = Api::all(context.client.clone());
    let controller = Controller::new(namespaces, watcher::Config::default()).watches(
        configmaps,
        watcher::Config::default().fields(&format!("metadata.name={CONFIGMAP}")),
        |cm| cm.namespace().map(|ns| ObjectRef::new(&ns)),
    );
    harness::run(NAME, controller, context, shutdown, reconcile).await;
}

fn desired_data(context: &Context) -> BTreeMap<String, String> {
    BTreeMap::from([("ca.crt".to_owned(), context.root_ca_pem.clone())])
}

async fn reconcile(namespace: Arc<Namespace>, context: Arc<Context>) -> Result<Action, ReconcileError> {
    let terminating = namespace.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    if terminating || namespace.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = namespace.name_any();
    let api: Api<ConfigMap> = Api::namespaced(context.client.clone(), &name);
    let data = desired_data(&context);
    match api.get(CONFIGMAP).await {
        Ok(mut existing) => {
            if existing.data.as_ref() == Some(&data) {
                return Ok(Action::await_change());
            }
            existing.data = Some(data);
            match api.replace(CONFIGMAP, &PostParams::default(), &existing).await {
                Ok(_) => {}
                Err(err) if is_not_found(&err) => return Ok(Action::requeue(std::time::Duration::ZERO)),
                Err(err) => return Err(err.into()),
            }
        }
        Err(err) if is_not_found(&err) => {
            let object = ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some(CONFIGMAP.to_owned()),
                    annotations: Some(BTreeMap::from([(
                        "kubernetes.io/description".to_owned(),
                        DESCRIPTION.to_owned(),
                    )])),
                    ..Default::default()
                },
                data: Some(data),
                ..Default::default()
            };
            match api.create(&PostParams::default(), &object).await {
                Ok(_) => {}
                Err(err) if is_already_exists(&err) => {}
                Err(kube::Error::Api(status)) if status.code == 403 => {}
                Err(err) => return Err(err.into()),
            }
        }
        Err(err) => return Err(err.into()),
    }
    Ok(Action::await_change())
}
