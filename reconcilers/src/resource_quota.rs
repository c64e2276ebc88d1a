//! The resourcequota controller (upstream: pkg/controller/resourcequota): every
//! ResourceQuota's `status.hard` follows `spec.hard` and `status.used` is what the objects of
//! its namespace consume, replenished when they are deleted or pods finish.
//!
//! Usage comes from `rudder_machinery::quota`, the evaluators the API server's admission
//! plugin charges with, so both count alike. Every quota is recounted when it changes (and at
//! start); the resources it counts trigger a recount of their namespace's quotas only when
//! they may give usage back (deletions, pods finishing), as upstream's replenishment does:
//! creations were charged by admission. Every quota is also recounted every five minutes, and
//! once more a second after it starts restricting a resource (creates admitted before that
//! were not charged). A quota's status is written only when it changed. Generic `count/<resource>.<group>` limits of resources other than the
//! core ones are charged by admission but not recounted here.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolumeClaim, Pod, ReplicationController, ResourceQuota, ResourceQuotaStatus, Secret,
    Service,
};
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, PredicateConfig, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use rudder_machinery::quota::{self, Evaluator, ResourceList};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_conflict, is_not_found};

/// The controller's name in `--controllers`.
pub const NAME: &str = "resourcequota-controller";

/// How often every quota is recounted in full, as upstream's `--resource-quota-sync-period`:
/// what no event woke (a create stored after a recount listed but before the quota restricted
/// its resource) is corrected within it. A recount writes only when usage differs.
const FULL_RECOUNT: Duration = Duration::from_secs(5 * 60);

/// How soon a quota that just started restricting a resource is counted again. Admission
/// charges only what `status.hard` names, so a create admitted before this controller's write
/// but stored after its list is caught by the second count; admission charges every later one.
const RECOUNT_AFTER_RESTRICTING: Duration = Duration::from_secs(1);

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
    // Only spec changes (and new quotas) wake a quota, as upstream: its status changes with
    // every admission charge, and a recount racing a charged create not yet stored would
    // undercount.
    let (store, writer) = reflector::store();
    let quotas = watcher(
        Api::<ResourceQuota>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(writer)
    .applied_objects()
    .predicate_filter(spec_of, PredicateConfig::default());
    let controller = Controller::for_stream(quotas, store.clone());
    macro_rules! replenish_on {
        ($controller:expr, $kind:ty, $also:expr) => {{
            let store = store.clone();
            $controller.watches_stream(
                replenishments::<$kind>(Api::all(client.clone()), $also),
                move |object: $kind| quotas_of(&store, &object),
            )
        }};
    }
    let controller = replenish_on!(controller, Pod, releases_usage);
    let controller = replenish_on!(controller, Service, |_: &Service| false);
    let controller = replenish_on!(controller, PersistentVolumeClaim, |_: &PersistentVolumeClaim| {
        false
    });
    let controller = replenish_on!(controller, ConfigMap, |_: &ConfigMap| false);
    let controller = replenish_on!(controller, Secret, |_: &Secret| false);
    let controller = replenish_on!(controller, ReplicationController, |_: &ReplicationController| {
        false
    });
    let controller = replenish_on!(controller, ResourceQuota, |_: &ResourceQuota| false);
    harness::run(NAME, controller, context, shutdown, reconcile).await;
}

/// The objects whose change may give usage back, as upstream's replenishment controller sees
/// them: deletions, and the objects `also` picks (pods that finished or are being deleted).
/// Creations and other updates are not recounted: admission charged them, and a recount
/// racing a create admitted but not yet stored would undercount and let the next create
/// through.
fn replenishments<K>(
    api: Api<K>,
    also: fn(&K) -> bool,
) -> impl futures_util::Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        .try_filter_map(move |event| {
            futures_util::future::ready(Ok(match event {
                watcher::Event::Delete(object) => Some(object),
                watcher::Event::Apply(object) if also(&object) => Some(object),
                _ => None,
            }))
        })
}

/// What of a quota wakes it: its identity and spec.
fn spec_of(quota: &ResourceQuota) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    quota.metadata.uid.hash(&mut hasher);
    serde_json::to_string(&quota.spec).ok()?.hash(&mut hasher);
    Some(hasher.finish())
}

/// A pod whose usage goes (or shrinks to `count/pods`): terminal or being deleted.
fn releases_usage(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
        || matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
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
    let newly_restricted = status.and_then(|s| s.hard.as_ref()).is_none()
        || hard.keys().any(|name| !old_hard.contains_key(name));
    let dirty = newly_restricted || !quota::equals(&hard, &old_hard) || !quota::equals(&used, &old_used);
    if !dirty {
        return Ok(Action::requeue(FULL_RECOUNT));
    }
    let mut updated = (*rq).clone();
    updated.status = Some(ResourceQuotaStatus {
        hard: Some(spec_hard),
        used: Some(quota::to_api(&used)),
    });
    let api: Api<ResourceQuota> = Api::namespaced(context.client.clone(), &namespace);
    match api.replace_status(&name, &PostParams::default(), &updated).await {
        Ok(_) if newly_restricted => Ok(Action::requeue(RECOUNT_AFTER_RESTRICTING)),
        Ok(_) => Ok(Action::requeue(FULL_RECOUNT)),
        Err(err) if is_not_found(&err) => Ok(Action::await_change()),
        // Status-only changes do not wake the quota: look again at the newer one.
        Err(err) if is_conflict(&err) => Ok(Action::requeue(Duration::from_secs(1))),
        Err(err) => Err(err.into()),
    }
}
