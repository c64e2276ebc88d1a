//! The resourcequota controller (upstream: pkg/controller/resourcequota): every
//! ResourceQuota's `status.hard` follows `spec.hard` and `status.used` is what the objects of
//! its namespace consume, replenished when they are deleted or pods finish.
//!
//! Usage comes from `rudder_machinery::quota`, the evaluators the API server's admission
//! plugin charges with, so both count alike. It watches quotas and the resources they count
//! (an event maps to every quota of the object's namespace) and writes a quota's status only
//! when it changed. Generic `count/<resource>.<group>` limits of resources other than the
//! core ones are charged by admission but not recounted here.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, ResourceQuotaStatus, Secret,
    Service,
};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use rudder_machinery::quota::{self, Evaluator, ResourceList};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_conflict, is_not_found};

/// The controller's name in `--controllers`.
pub const NAME: &str = "resourcequota-controller";

/// The resources whose usage the controller recounts: (group, resource).
const COUNTED: [(&str, &str); 7] = [
    ("", "pods"),
    ("", "services"),
    ("", "persistentvolumeclaims"),
    ("", "configmaps"),
    ("", "secrets"),
    ("", "replicationcontrollers"),
    ("", "resourcequotas"),
];

/// Every quota of the object's namespace.
fn quotas_of<K: Resource>(store: &Store<ResourceQuota>, object: &K) -> Vec<ObjectRef<ResourceQuota>> {
    let Some(namespace) = object.meta().namespace.as_deref() else {
        return Vec::new();
    };
    store
        .state()
        .iter()
        .filter(|q| q.metadata.namespace.as_deref() == Some(namespace))
        .map(|q| ObjectRef::from_obj(&**q))
        .collect()
}

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let controller = Controller::new(
        Api::<ResourceQuota>::all(client.clone()),
        watcher::Config::default(),
    );
    let store = controller.store();
    macro_rules! watch {
        ($controller:expr, $kind:ty) => {{
            let store = store.clone();
            $controller.watches(
                Api::<$kind>::all(client.clone()),
                watcher::Config::default(),
                move |object: $kind| quotas_of(&store, &object),
            )
        }};
    }
    let controller = watch!(controller, Pod);
    let controller = watch!(controller, Service);
    let controller = watch!(controller, PersistentVolumeClaim);
    let controller = watch!(controller, ConfigMap);
    let controller = watch!(controller, Secret);
    let controller = watch!(controller, ReplicationController);
    let controller = watch!(controller, ResourceQuota);
    harness::run(NAME, controller, context, shutdown, reconcile).await;
}

/// The namespace's objects of one resource, as JSON values.
async fn list<K>(context: &Context, namespace: &str) -> Result<Vec<Value>, ReconcileError>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(context.client.clone(), namespace);
    let items = api.list(&ListParams::default()).await?.items;
    items
        .iter()
        .map(|item| serde_json::to_value(item).map_err(|err| ReconcileError::Invalid(err.to_string())))
        .collect()
}

async fn objects(context: &Context, namespace: &str, resource: &str) -> Result<Vec<Value>, ReconcileError> {
    match resource {
        "pods" => list::<Pod>(context, namespace).await,
        "services" => list::<Service>(context, namespace).await,
        "persistentvolumeclaims" => list::<PersistentVolumeClaim>(context, namespace).await,
        "configmaps" => list::<ConfigMap>(context, namespace).await,
        "secrets" => list::<Secret>(context, namespace).await,
        "replicationcontrollers" => list::<ReplicationController>(context, namespace).await,
        "resourcequotas" => list::<ResourceQuota>(context, namespace).await,
        _ => Ok(Vec::new()),
    }
}

async fn reconcile(rq: Arc<ResourceQuota>, context: Arc<Context>) -> Result<Action, ReconcileError> {
    if rq.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let namespace = rq.namespace().unwrap_or_default();
    let name = rq.name_any();
    let spec_hard = rq.spec.as_ref().and_then(|s| s.hard.clone()).unwrap_or_default();
    let hard = quota::parse_list(Some(&spec_hard));
    let status = rq.status.as_ref();
    let old_hard = quota::parse_list(status.and_then(|s| s.hard.as_ref()));
    let old_used = quota::parse_list(status.and_then(|s| s.used.as_ref()));

    let now = k8s_openapi::jiff::Timestamp::now();
    let mut observed = ResourceList::new();
    for (group, resource) in COUNTED {
        let evaluator = Evaluator::for_resource(group, resource);
        if evaluator.matching_resources(hard.keys()).is_empty() {
            continue;
        }
        let items = objects(&context, &namespace, resource).await?;
        if let Some(usage) = quota::usage_of(&evaluator, &rq, &items, now) {
            observed = quota::add(&observed, &usage);
        }
    }
    // Past observations are kept for what is not recounted here; only limited names remain.
    let mut used = old_used.clone();
    used.extend(observed);
    let used = quota::mask(&used, hard.keys());
    let dirty = status.and_then(|s| s.hard.as_ref()).is_none()
        || !quota::equals(&hard, &old_hard)
        || !quota::equals(&used, &old_used);
    if !dirty {
        return Ok(Action::await_change());
    }
    let mut updated = (*rq).clone();
    updated.status = Some(ResourceQuotaStatus {
        hard: Some(spec_hard),
        used: Some(quota::to_api(&used)),
    });
    let api: Api<ResourceQuota> = Api::namespaced(context.client.clone(), &namespace);
    match api.replace_status(&name, &PostParams::default(), &updated).await {
        Ok(_) => Ok(Action::await_change()),
        // A newer quota is on its way through the watch.
        Err(err) if is_not_found(&err) || is_conflict(&err) => Ok(Action::await_change()),
        Err(err) => Err(err.into()),
    }
}
