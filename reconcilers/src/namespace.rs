//! The namespace controller (upstream: pkg/controller/namespace): empties a namespace that is
//! being deleted and then removes the `kubernetes` finalizer through the `finalize`
//! subresource, upon which the API server deletes the namespace.
//!
//! Content is deleted per resource (deletecollection where served, else list and delete each
//! object, always with background propagation), pods first; the namespace's status conditions
//! say what remains, with upstream's types, reasons and messages. While content remains it
//! looks again after half the estimated time (the pods' grace periods, 15 s for finalizers). It
//! never touches namespaces that are not being deleted.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, PostParams, PropagationPolicy};
use kube::discovery::{ApiResource, Discovery, Scope, verbs};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_conflict, is_not_found};

/// The controller's name in `--controllers`.
pub const NAME: &str = "namespace-controller";
/// The finalizer this controller owns in `spec.finalizers`.
const FINALIZER_TOKEN: &str = "kubernetes";
/// How long after the deletion starts the controller begins (upstream's
/// `namespaceDeletionGracePeriod`).
const DELETION_GRACE: Duration = Duration::from_secs(5);
/// The estimate while content with finalizers remains.
const FINALIZER_ESTIMATE_SECONDS: i64 = 15;
/// Failure backoff (upstream's namespace rate limiter: 5 ms doubling to 60 s).
const BACKOFF_BASE: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Attempts of a namespace write that loses races.
const CONFLICT_RETRIES: usize = 10;

const CONDITION_TYPES: [&str; 5] = [
    "NamespaceDeletionDiscoveryFailure",
    "NamespaceDeletionGroupVersionParsingFailure",
    "NamespaceDeletionContentFailure",
    "NamespaceContentRemaining",
    "NamespaceFinalizersRemaining",
];

/// Upstream's `okReasons` and `okMessages`.
fn ok_condition(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "NamespaceDeletionDiscoveryFailure" => {
            ("ResourcesDiscovered", "All resources successfully discovered")
        }
        "NamespaceDeletionGroupVersionParsingFailure" => {
            ("ParsedGroupVersions", "All legacy kube types successfully parsed")
        }
        "NamespaceDeletionContentFailure" => (
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
        ),
        "NamespaceContentRemaining" => ("ContentRemoved", "All content successfully removed"),
        _ => (
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished",
        ),
    }
}

/// Per-namespace failure counts for the controller's own backoff.
#[derive(Default)]
struct Failures(Mutex<HashMap<String, u32>>);

impl Failures {
    fn failed(&self, name: &str) -> Duration {
        let Ok(mut failures) = self.0.lock() else {
            return BACKOFF_MAX;
        };
        let count = failures.entry(name.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        BACKOFF_BASE
            .saturating_mul(2u32.saturating_pow(count.saturating_sub(1).min(31)))
            .min(BACKOFF_MAX)
    }

    fn succeeded(&self, name: &str) {
        if let Ok(mut failures) = self.0.lock() {
            failures.remove(name);
        }
    }
}

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let namespaces: Api<Namespace> = Api::all(context.client.clone());
    let controller = Controller::new(namespaces, watcher::Config::default());
    let failures = Arc::new(Failures::default());
    harness::run(NAME, controller, context, shutdown, move |namespace, context| {
        let failures = failures.clone();
        async move {
            let name = namespace.name_any();
            match reconcile(namespace, context).await {
                Ok(action) => {
                    failures.succeeded(&name);
                    Ok(action)
                }
                Err(err) => {
                    // Retried with the namespace controller's own limits, not the harness's.
                    tracing::info!(error = %err, "deletion of namespace failed");
                    Ok(Action::requeue(failures.failed(&name)))
                }
            }
        }
    })
    .await;
}

/// Seconds since an RFC 3339 time, if it parses.
fn elapsed_since(time: &Time) -> Duration {
    let elapsed = Timestamp::now().duration_since(time.0);
    Duration::try_from(elapsed).unwrap_or(Duration::ZERO)
}

async fn reconcile(namespace: Arc<Namespace>, context: Arc<Context>) -> Result<Action, ReconcileError> {
    let Some(deleted_at) = namespace.metadata.deletion_timestamp.clone() else {
        return Ok(Action::await_change());
    };
    let since = elapsed_since(&deleted_at);
    if since < DELETION_GRACE {
        return Ok(Action::requeue(DELETION_GRACE.saturating_sub(since)));
    }
    let api: Api<Namespace> = Api::all(context.client.clone());
    let name = namespace.name_any();
    let Some(latest) = api.get_opt(&name).await? else {
        return Ok(Action::await_change());
    };
    if latest.metadata.deletion_timestamp.is_none() {
        return Ok(Action::await_change());
    }
    let Some(latest) = set_terminating(&api, latest).await? else {
        return Ok(Action::await_change());
    };
    if spec_finalizers(&latest).is_empty() {
        return Ok(Action::await_change());
    }
    let estimate = delete_all_content(&context, &api, latest.clone()).await?;
    if estimate > 0 {
        let wait = u64::try_from(estimate / 2 + 1).unwrap_or(1);
        tracing::debug!(wait_seconds = wait, "content remaining in namespace");
        return Ok(Action::requeue(Duration::from_secs(wait)));
    }
    finalize(&api, latest).await?;
    Ok(Action::await_change())
}

fn spec_finalizers(namespace: &Namespace) -> Vec<String> {
    namespace
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default()
}

/// Upstream's `retryOnConflictError` around an update of the namespace: on a conflict, read
/// it again (it must still be the same namespace) and retry. `None` when it is gone.
async fn retry_on_conflict<F, Fut>(
    api: &Api<Namespace>,
    mut namespace: Namespace,
    mut update: F,
) -> Result<Option<Namespace>, ReconcileError>
where
    F: FnMut(Namespace) -> Fut,
    Fut: Future<Output = Result<Namespace, kube::Error>>,
{
    for _ in 0..CONFLICT_RETRIES {
        match update(namespace.clone()).await {
            Ok(updated) => return Ok(Some(updated)),
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) if is_conflict(&err) => {
                let Some(latest) = api.get_opt(&namespace.name_any()).await? else {
                    return Ok(None);
                };
                if latest.metadata.uid != namespace.metadata.uid {
                    return Err(ReconcileError::Invalid(
                        "namespace uid has changed across retries".into(),
                    ));
                }
                namespace = latest;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(ReconcileError::Invalid(format!(
        "namespace {} is being modified too often",
        namespace.name_any()
    )))
}

/// Moves the namespace to phase `Terminating` if it is not there yet.
async fn set_terminating(
    api: &Api<Namespace>,
    namespace: Namespace,
) -> Result<Option<Namespace>, ReconcileError> {
    retry_on_conflict(api, namespace, |mut namespace| async move {
        let phase = namespace.status.as_ref().and_then(|s| s.phase.as_deref());
        if namespace.metadata.deletion_timestamp.is_none() || phase == Some("Terminating") {
            return Ok(namespace);
        }
        namespace.status.get_or_insert_with(Default::default).phase = Some("Terminating".into());
        api.replace_status(&namespace.name_any(), &PostParams::default(), &namespace)
            .await
    })
    .await
}

/// Removes this controller's token from `spec.finalizers` through `finalize`.
async fn finalize(api: &Api<Namespace>, namespace: Namespace) -> Result<(), ReconcileError> {
    retry_on_conflict(api, namespace, |mut namespace| async move {
        let mut finalizers: Vec<String> = spec_finalizers(&namespace)
            .into_iter()
            .filter(|f| f != FINALIZER_TOKEN)
            .collect();
        finalizers.sort();
        finalizers.dedup();
        namespace.spec.get_or_insert_with(Default::default).finalizers = Some(finalizers);
        let name = namespace.name_any();
        api.replace_subresource("finalize", &name, &PostParams::default(), &namespace)
            .await
    })
    .await?;
    Ok(())
}

/// A served namespaced resource that can be deleted.
struct Deletable {
    resource: ApiResource,
    list: bool,
    delete_collection: bool,
}

impl Deletable {
    /// Go's `%v` of a GroupVersionResource.
    fn gvr(&self) -> String {
        format!(
            "{{{} {} {}}}",
            self.resource.group, self.resource.version, self.resource.plural
        )
    }
}

/// What remains of one resource.
#[derive(Default)]
struct Remaining {
    estimate: i64,
    count: usize,
    finalizers: BTreeMap<String, usize>,
}

/// Builds the status conditions of one pass (upstream's `namespaceConditionUpdater`).
#[derive(Default)]
struct Conditions {
    new: Vec<NamespaceCondition>,
    content_errors: Vec<String>,
}

impl Conditions {
    fn failure(&mut self, kind: &str, reason: &str, message: String) {
        self.new.push(NamespaceCondition {
            type_: kind.into(),
            status: "True".into(),
            last_transition_time: Some(Time(Timestamp::now())),
            reason: Some(reason.into()),
            message: Some(message),
        });
    }

    fn content_totals(
        &mut self,
        by_resource: &BTreeMap<String, (String, usize)>,
        finalizers: &BTreeMap<String, usize>,
    ) {
        if !by_resource.is_empty() {
            let mut remaining: Vec<String> = by_resource
                .values()
                .filter(|(_, n)| *n > 0)
                .map(|(label, n)| format!("{label} has {n} resource instances"))
                .collect();
            remaining.sort();
            self.failure(
                "NamespaceContentRemaining",
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", remaining.join(", ")),
            );
        }
        if !finalizers.is_empty() {
            let mut remaining: Vec<String> = finalizers
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(f, n)| format!("{f} in {n} resource instances"))
                .collect();
            remaining.sort();
            self.failure(
                "NamespaceFinalizersRemaining",
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    remaining.join(", ")
                ),
            );
        }
    }

    /// Upstream's `Update`: merges the pass's conditions into the status; whether it changed.
    fn update(mut self, namespace: &mut Namespace) -> bool {
        if !self
            .new
            .iter()
            .any(|c| c.type_ == "NamespaceDeletionContentFailure")
            && !self.content_errors.is_empty()
        {
            let mut messages = self.content_errors.clone();
            messages.sort();
            self.failure(
                "NamespaceDeletionContentFailure",
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    messages.len(),
                    messages.join(", ")
                ),
            );
        }
        let status = namespace.status.get_or_insert_with(Default::default);
        let conditions = status.conditions.get_or_insert_with(Vec::new);
        let mut changed = false;
        for kind in CONDITION_TYPES {
            let new = self
                .new
                .iter()
                .find(|c| c.type_ == kind)
                .cloned()
                .unwrap_or_else(|| {
                    let (reason, message) = ok_condition(kind);
                    NamespaceCondition {
                        type_: kind.into(),
                        status: "False".into(),
                        last_transition_time: Some(Time(Timestamp::now())),
                        reason: Some(reason.into()),
                        message: Some(message.into()),
                    }
                });
            match conditions.iter_mut().find(|c| c.type_ == kind) {
                None => {
                    conditions.push(new);
                    changed = true;
                }
                Some(old) => {
                    if old.status != new.status || old.message != new.message || old.reason != new.reason {
                        if old.status != new.status {
                            old.last_transition_time = Some(Time(Timestamp::now()));
                        }
                        old.status = new.status;
                        old.reason = new.reason;
                        old.message = new.message;
                        changed = true;
                    }
                }
            }
        }
        changed
    }
}

/// The message of an error as upstream's clients print it.
fn message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

fn unsupported(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404 || status.code == 405)
}

/// The namespaced resources of the preferred versions that can be deleted.
async fn discover(context: &Context) -> Result<Vec<Deletable>, kube::Error> {
    let discovery = Discovery::new(context.client.clone()).run_aggregated().await?;
    let mut resources = Vec::new();
    for group in discovery.groups() {
        for (resource, caps) in group.recommended_resources() {
            if caps.scope != Scope::Namespaced || !caps.supports_operation(verbs::DELETE) {
                continue;
            }
            resources.push(Deletable {
                list: caps.supports_operation(verbs::LIST),
                delete_collection: caps.supports_operation(verbs::DELETE_COLLECTION),
                resource,
            });
        }
    }
    resources.sort_by(|a, b| {
        (&a.resource.group, &a.resource.plural).cmp(&(&b.resource.group, &b.resource.plural))
    });
    Ok(resources)
}

/// Deletes everything in the namespace; returns the estimate in seconds until the rest is
/// gone (0 when nothing remains), or the errors of the pass.
async fn delete_all_content(
    context: &Context,
    api: &Api<Namespace>,
    mut namespace: Namespace,
) -> Result<i64, ReconcileError> {
    let name = namespace.name_any();
    let deleted_at = namespace.metadata.deletion_timestamp.clone();
    let mut errors: Vec<String> = Vec::new();
    let mut conditions = Conditions::default();
    let resources = match discover(context).await {
        Ok(resources) => resources,
        Err(err) => {
            errors.push(message(&err));
            conditions.failure(
                "NamespaceDeletionDiscoveryFailure",
                "DiscoveryFailed",
                message(&err),
            );
            Vec::new()
        }
    };
    let mut estimate = 0;
    let mut by_resource: BTreeMap<String, (String, usize)> = BTreeMap::new();
    let mut finalizers: BTreeMap<String, usize> = BTreeMap::new();
    let is_pods = |d: &Deletable| {
        d.resource.group.is_empty() && d.resource.version == "v1" && d.resource.plural == "pods"
    };
    let mut record = |deletable: &Deletable, remaining: &Remaining, estimate: &mut i64| {
        *estimate = (*estimate).max(remaining.estimate);
        if remaining.count > 0 {
            by_resource.insert(
                deletable.gvr(),
                (
                    format!("{}.{}", deletable.resource.plural, deletable.resource.group),
                    remaining.count,
                ),
            );
            for (finalizer, n) in &remaining.finalizers {
                *finalizers.entry(finalizer.clone()).or_insert(0) += n;
            }
        }
    };
    // Pods go first, so that workloads stop before what they use is removed.
    if let Some(pods) = resources.iter().find(|d| is_pods(d)) {
        let remaining = match delete_resource(context, pods, &name, deleted_at.as_ref()).await {
            Ok(remaining) => remaining,
            Err((remaining, err)) => {
                errors.push(format!("failed to delete pods for namespace: {name}, err: {err}"));
                conditions.content_errors.push(err);
                remaining
            }
        };
        record(pods, &remaining, &mut estimate);
        if remaining.count > 0 {
            tracing::debug!("pods still remain, delaying deletion of other resources");
            update_status(api, &mut namespace, conditions).await;
            return finish(estimate, &errors);
        }
    }
    for deletable in resources.iter().filter(|d| !is_pods(d)) {
        let remaining = match delete_resource(context, deletable, &name, deleted_at.as_ref()).await {
            Ok(remaining) => remaining,
            Err((remaining, err)) => {
                errors.push(err.clone());
                conditions.content_errors.push(err);
                remaining
            }
        };
        record(deletable, &remaining, &mut estimate);
    }
    conditions.content_totals(&by_resource, &finalizers);
    update_status(api, &mut namespace, conditions).await;
    finish(estimate, &errors)
}

fn finish(estimate: i64, errors: &[String]) -> Result<i64, ReconcileError> {
    if errors.is_empty() {
        Ok(estimate)
    } else {
        Err(ReconcileError::Invalid(errors.join(", ")))
    }
}

/// Writes the conditions if they changed; a failure is only logged, as upstream.
async fn update_status(api: &Api<Namespace>, namespace: &mut Namespace, conditions: Conditions) {
    if conditions.update(namespace)
        && let Err(err) = api
            .replace_status(&namespace.name_any(), &PostParams::default(), namespace)
            .await
    {
        tracing::info!(error = %err, "couldn't update status condition for namespace");
    }
}

/// Upstream's `deleteAllContentForGroupVersionResource`.
async fn delete_resource(
    context: &Context,
    deletable: &Deletable,
    namespace: &str,
    deleted_at: Option<&Time>,
) -> Result<Remaining, (Remaining, String)> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(context.client.clone(), namespace, &deletable.resource);
    let fail = |estimate: i64, err: String| {
        (
            Remaining {
                estimate,
                ..Default::default()
            },
            err,
        )
    };
    let mut estimate = 0;
    if deletable.resource.group.is_empty() && deletable.resource.plural == "pods" {
        estimate = estimate_pods(context, namespace)
            .await
            .map_err(|e| fail(0, message(&e)))?;
        let allowed = Duration::from_secs(u64::try_from(estimate).unwrap_or(0));
        if deleted_at.is_none_or(|t| elapsed_since(t) >= allowed) {
            estimate = 0;
        }
    }
    let background = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    let mut collection_deleted = false;
    if deletable.delete_collection {
        match api.delete_collection(&background, &ListParams::default()).await {
            Ok(_) => collection_deleted = true,
            Err(err) if unsupported(&err) => {}
            Err(err) => return Err(fail(estimate, message(&err))),
        }
    }
    if !collection_deleted && deletable.list {
        let items = match api.list_metadata(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(err) if unsupported(&err) => Vec::new(),
            Err(err) => return Err(fail(estimate, message(&err))),
        };
        for item in items {
            match api.delete(&item.name_any(), &background).await {
                Ok(_) => {}
                Err(err) if unsupported(&err) => {}
                Err(err) => return Err(fail(estimate, message(&err))),
            }
        }
    }
    if !deletable.list {
        return Ok(Remaining {
            estimate,
            ..Default::default()
        });
    }
    let items = match api.list_metadata(&ListParams::default()).await {
        Ok(list) => list.items,
        Err(err) if unsupported(&err) => {
            return Ok(Remaining {
                estimate,
                ..Default::default()
            });
        }
        Err(err) => return Err(fail(estimate, message(&err))),
    };
    if items.is_empty() {
        return Ok(Remaining::default());
    }
    let mut finalizers = BTreeMap::new();
    for item in &items {
        for finalizer in item.finalizers() {
            *finalizers.entry(finalizer.clone()).or_insert(0) += 1;
        }
    }
    let count = items.len();
    if estimate != 0 {
        return Ok(Remaining {
            estimate,
            count,
            finalizers,
        });
    }
    if !finalizers.is_empty() {
        return Ok(Remaining {
            estimate: FINALIZER_ESTIMATE_SECONDS,
            count,
            finalizers,
        });
    }
    Err((
        Remaining {
            estimate,
            count,
            ..Default::default()
        },
        format!(
            "unexpected items still remain in namespace: {namespace} for gvr: {}",
            deletable.gvr()
        ),
    ))
}

/// The longest grace period of the namespace's pods that are not finished.
async fn estimate_pods(context: &Context, namespace: &str) -> Result<i64, kube::Error> {
    let pods: Api<Pod> = Api::namespaced(context.client.clone(), namespace);
    let mut estimate = 0;
    for pod in pods.list(&ListParams::default()).await? {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            continue;
        }
        if let Some(grace) = pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds) {
            estimate = estimate.max(grace);
        }
    }
    Ok(estimate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_as_upstream() {
        let mut namespace = Namespace::default();
        let mut conditions = Conditions::default();
        conditions.content_totals(
            &BTreeMap::from([
                ("{ v1 pods}".to_owned(), ("pods.".to_owned(), 2)),
                ("{ v1 configmaps}".to_owned(), ("configmaps.".to_owned(), 1)),
            ]),
            &BTreeMap::from([("example.com/x".to_owned(), 3)]),
        );
        assert!(conditions.update(&mut namespace));
        let list = namespace.status.clone().unwrap().conditions.unwrap();
        let types: Vec<&str> = list.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, CONDITION_TYPES);
        assert_eq!(list[0].status, "False");
        assert_eq!(list[0].reason.as_deref(), Some("ResourcesDiscovered"));
        assert_eq!(list[3].status, "True");
        assert_eq!(
            list[3].message.as_deref(),
            Some(
                "Some resources are remaining: configmaps. has 1 resource instances, pods. has 2 resource instances"
            )
        );
        assert_eq!(
            list[4].message.as_deref(),
            Some(
                "Some content in the namespace has finalizers remaining: example.com/x in 3 resource instances"
            )
        );
        // The same pass again changes nothing.
        let mut again = Conditions::default();
        again.content_totals(
            &BTreeMap::from([
                ("{ v1 pods}".to_owned(), ("pods.".to_owned(), 2)),
                ("{ v1 configmaps}".to_owned(), ("configmaps.".to_owned(), 1)),
            ]),
            &BTreeMap::from([("example.com/x".to_owned(), 3)]),
        );
        assert!(!again.update(&mut namespace));
        // Errors of a pass become the content failure condition.
        let failed = Conditions {
            content_errors: vec!["b".into(), "a".into()],
            ..Default::default()
        };
        assert!(failed.update(&mut namespace));
        let list = namespace.status.unwrap().conditions.unwrap();
        assert_eq!(
            list[2].message.as_deref(),
            Some("Failed to delete all resource types, 2 remaining: a, b")
        );
        assert_eq!(list[3].reason.as_deref(), Some("ContentRemoved"));
    }
}
