//! The deployment controller (upstream: pkg/controller/deployment): one replica set per pod
//! template, named `<deployment>-<template hash>`, rolled out by the RollingUpdate or Recreate
//! strategy, with revisions, proportional scaling, history cleanup, pause and progress
//! conditions. It changes replica sets and the deployment's status and revision annotation,
//! never a deployment's spec and never pods (the replica set controller owns those).

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetSpec,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_already_exists, is_not_found};
use crate::int_or_percent::scaled_or_zero;
use crate::pods::{self, POD_TEMPLATE_HASH, RefManager, Selector, controller_of};

/// The controller's name in `--controllers`.
pub const NAME: &str = "deployment-controller";
const COMPONENT: &str = "deployment-controller";

const REVISION: &str = "deployment.kubernetes.io/revision";
const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The longest `revision-history` annotation (upstream's MaxRevHistoryLengthInChars).
const MAX_REVISION_HISTORY_CHARS: usize = 2000;

const PROGRESSING: &str = "Progressing";
const AVAILABLE: &str = "Available";
const REPLICA_FAILURE: &str = "ReplicaFailure";
const NEW_RS_REASON: &str = "NewReplicaSetCreated";
const FOUND_NEW_RS_REASON: &str = "FoundNewReplicaSet";
const RS_UPDATED_REASON: &str = "ReplicaSetUpdated";
const NEW_RS_AVAILABLE_REASON: &str = "NewReplicaSetAvailable";
const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";
const FAILED_RS_CREATE_REASON: &str = "ReplicaSetCreateError";
const PAUSED_REASON: &str = "DeploymentPaused";
const RESUMED_REASON: &str = "DeploymentResumed";

struct State {
    replica_sets: Store<ReplicaSet>,
    pods: Store<Pod>,
}

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let (replica_sets, rs_writer) = reflector::store::<ReplicaSet>();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let rs_events = watcher(Api::<ReplicaSet>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(rs_writer)
        .touched_objects();
    let pod_events = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(pod_writer)
        .touched_objects();
    let controller = Controller::new(Api::<Deployment>::all(client), watcher::Config::default());
    let deployments = controller.store();
    let owners = deployments.clone();
    let rs_lookup = replica_sets.clone();
    let controller = controller
        .watches_stream(rs_events, move |rs: ReplicaSet| deployments_of_rs(&owners, &rs))
        .watches_stream(pod_events, move |pod: Pod| {
            // A pod matters to the deployment of its replica set (Recreate waits for old pods).
            let namespace = pod.namespace().unwrap_or_default();
            controller_of(&pod.metadata)
                .filter(|r| r.kind == "ReplicaSet")
                .and_then(|r| rs_lookup.get(&ObjectRef::new(&r.name).within(&namespace)))
                .and_then(|rs| {
                    controller_of(&rs.metadata)
                        .filter(|r| r.kind == "Deployment")
                        .map(|r| ObjectRef::<Deployment>::new(&r.name).within(&namespace))
                })
        });
    let state = Arc::new(State { replica_sets, pods });
    harness::run(NAME, controller, context, shutdown, move |object, context| {
        let state = state.clone();
        async move { Box::pin(Sync::new(&object, context, state).run()).await }
    })
    .await;
}

fn deployments_of_rs(deployments: &Store<Deployment>, rs: &ReplicaSet) -> Vec<ObjectRef<Deployment>> {
    let namespace = rs.namespace().unwrap_or_default();
    if let Some(reference) = controller_of(&rs.metadata) {
        if reference.kind == "Deployment" {
            return vec![ObjectRef::new(&reference.name).within(&namespace)];
        }
        return Vec::new();
    }
    let empty = BTreeMap::new();
    let labels = rs.metadata.labels.as_ref().unwrap_or(&empty);
    deployments
        .state()
        .iter()
        .filter(|d| d.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|d| selector_of(d).is_ok_and(|s| !s.is_empty() && s.matches(labels)))
        .map(|d| ObjectRef::from_obj(d.as_ref()))
        .collect()
}

fn selector_of(d: &Deployment) -> Result<Selector, String> {
    d.spec.as_ref().map_or(Ok(Selector::default()), |s| {
        Selector::from_label_selector(&s.selector)
    })
}

fn replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

fn available(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

fn revision_of(meta: &ObjectMeta) -> Option<i64> {
    meta.annotations.as_ref()?.get(REVISION)?.parse().ok()
}

fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The revision a rollback was requested to, if any (invalid values are ignored).
fn rollback_to(d: &Deployment) -> Option<i64> {
    annotation(&d.metadata, ROLLBACK_TO)
        .filter(|v| !v.is_empty())
        .and_then(|v| v.parse().ok())
}

/// Upstream's LastRevision: the second highest revision.
fn last_revision(all: &[ReplicaSet]) -> i64 {
    let (mut max, mut second) = (0, 0);
    for revision in all.iter().filter_map(|rs| revision_of(&rs.metadata)) {
        if revision >= max {
            second = max;
            max = revision;
        } else if revision > second {
            second = revision;
        }
    }
    second
}

/// Upstream's ReplicaSetsByCreationTimestamp: older first, then by name.
fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> Ordering {
    let time = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
    time(a)
        .cmp(&time(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate")
}

fn desired(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Upstream's ResolveFenceposts: (maxSurge, maxUnavailable) for the deployment.
fn fenceposts(d: &Deployment) -> Result<(i32, i32), ReconcileError> {
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let surge = scaled_or_zero(rolling.and_then(|r| r.max_surge.as_ref()), desired(d), true)?;
    let mut unavailable = scaled_or_zero(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        desired(d),
        false,
    )?;
    if surge == 0 && unavailable == 0 {
        // Validation forbids both zero; upstream guards against it anyway.
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).map_or(0, |(surge, _)| surge)
}

fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || desired(d) == 0 {
        return 0;
    }
    fenceposts(d).map_or(0, |(_, unavailable)| unavailable.min(desired(d)))
}

fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .filter(|s| *s != i32::MAX)
}

fn condition<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.iter().flatten().find(|c| c.type_ == type_)
}

fn new_condition(type_: &str, status: &str, reason: &str, message: String) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message),
        last_update_time: Some(pods::now()),
        last_transition_time: Some(pods::now()),
    }
}

/// Upstream's SetDeploymentCondition: the same status and reason leave the condition alone.
fn set_condition(status: &mut DeploymentStatus, mut condition: DeploymentCondition) {
    if let Some(current) = condition_ref(status, &condition.type_) {
        if current.status == condition.status && current.reason == condition.reason {
            return;
        }
        if current.status == condition.status {
            condition
                .last_transition_time
                .clone_from(&current.last_transition_time);
        }
    }
    remove_condition(status, &condition.type_.clone());
    status.conditions.get_or_insert_with(Vec::new).push(condition);
}

fn condition_ref<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    condition(status, type_)
}

fn remove_condition(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conditions) = &mut status.conditions {
        conditions.retain(|c| c.type_ != type_);
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
}

/// Whether the template of the replica set equals the deployment's, ignoring the hash label.
fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        // An empty label map and no label map are the same template.
        if let Some(meta) = t.metadata.as_mut()
            && meta.labels.as_ref().is_some_and(BTreeMap::is_empty)
        {
            meta.labels = None;
        }
        if t.metadata.as_ref().is_some_and(|m| *m == ObjectMeta::default()) {
            t.metadata = None;
        }
        t
    };
    strip(a) == strip(b)
}

fn rs_template(rs: &ReplicaSet) -> Option<&PodTemplateSpec> {
    rs.spec.as_ref()?.template.as_ref()
}

fn d_template(d: &Deployment) -> PodTemplateSpec {
    d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default()
}

/// Upstream's FindNewReplicaSet: the oldest replica set with the deployment's template.
fn find_new(d: &Deployment, list: &[ReplicaSet]) -> Option<ReplicaSet> {
    let template = d_template(d);
    let mut sorted: Vec<&ReplicaSet> = list.iter().collect();
    sorted.sort_by(|a, b| by_creation(a, b));
    sorted
        .into_iter()
        .find(|rs| rs_template(rs).is_some_and(|t| equal_ignore_hash(t, &template)))
        .cloned()
}

fn sum(list: &[&ReplicaSet], f: impl Fn(&ReplicaSet) -> i32) -> i32 {
    list.iter().map(|rs| f(rs)).sum()
}

/// Sets desired- and max-replicas; whether anything changed.
fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let value = value.to_string();
        if annotations.get(key) != Some(&value) {
            annotations.insert(key.to_owned(), value);
            changed = true;
        }
    }
    changed
}

fn replicas_annotations_need_update(rs: &ReplicaSet, desired: i32, max: i32) -> bool {
    annotation(&rs.metadata, DESIRED_REPLICAS) != Some(desired.to_string().as_str())
        || annotation(&rs.metadata, MAX_REPLICAS) != Some(max.to_string().as_str())
}

/// Upstream's SetNewReplicaSetAnnotations; whether anything changed.
fn set_new_rs_annotations(d: &Deployment, rs: &mut ReplicaSet, new_revision: &str, exists: bool) -> bool {
    let mut changed = false;
    // Copy the deployment's own annotations, except the controller's and kubectl's.
    for (key, value) in d.metadata.annotations.iter().flatten() {
        let skipped = [
            LAST_APPLIED,
            REVISION,
            REVISION_HISTORY,
            DESIRED_REPLICAS,
            MAX_REPLICAS,
            ROLLBACK_TO,
        ];
        if skipped.contains(&key.as_str()) {
            continue;
        }
        let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
        if annotations.get(key) != Some(value) {
            annotations.insert(key.clone(), value.clone());
            changed = true;
        }
    }
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let old_revision = annotations.get(REVISION).cloned();
    let old = match old_revision.as_deref() {
        None | Some("") => 0,
        Some(r) => match r.parse::<i64>() {
            Ok(r) => r,
            Err(_) => return false,
        },
    };
    let Ok(new) = new_revision.parse::<i64>() else {
        return false;
    };
    if old < new {
        annotations.insert(REVISION.to_owned(), new_revision.to_owned());
        changed = true;
        // A replica set taking a new revision is being rolled back to: keep its old ones.
        if let Some(old_revision) = old_revision {
            let history = annotations.get(REVISION_HISTORY).cloned().unwrap_or_default();
            if history.is_empty() {
                annotations.insert(REVISION_HISTORY.to_owned(), old_revision);
            } else {
                let mut revisions: Vec<&str> = history.split(',').collect();
                let mut total = history.len() + old_revision.len() + 1;
                let mut start = 0;
                while total > MAX_REVISION_HISTORY_CHARS && start < revisions.len() {
                    total -= revisions[start].len() + 1;
                    start += 1;
                }
                if total <= MAX_REVISION_HISTORY_CHARS {
                    revisions = revisions.split_off(start);
                    revisions.push(&old_revision);
                    let joined = revisions.join(",");
                    annotations.insert(REVISION_HISTORY.to_owned(), joined);
                }
            }
        }
    }
    if !exists && set_replicas_annotations(rs, desired(d), desired(d) + max_surge(d)) {
        changed = true;
    }
    changed
}

/// Upstream's NewRSNewReplicas.
fn new_rs_new_replicas(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: &ReplicaSet,
) -> Result<i32, ReconcileError> {
    if !is_rolling(d) {
        return Ok(desired(d));
    }
    let surge = scaled_or_zero(
        d.spec
            .as_ref()
            .and_then(|s| s.strategy.as_ref())
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.max_surge.as_ref()),
        desired(d),
        true,
    )?;
    let current = sum(all, replicas);
    let max_total = desired(d) + surge;
    if current >= max_total {
        return Ok(replicas(new_rs));
    }
    let scale_up = (max_total - current).min(desired(d) - replicas(new_rs));
    Ok(replicas(new_rs) + scale_up)
}

fn is_active_rs(rs: &&ReplicaSet) -> bool {
    replicas(rs) > 0
}

/// Upstream's DeploymentComplete.
fn complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let want = desired(d);
    status.updated_replicas.unwrap_or(0) == want
        && status.replicas.unwrap_or(0) == want
        && status.available_replicas.unwrap_or(0) == want
        && status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
}

/// Upstream's DeploymentProgressing.
fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// Upstream's DeploymentTimedOut.
fn timed_out(d: &Deployment, status: &DeploymentStatus, now: Timestamp) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(cond) = condition(status, PROGRESSING) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE_REASON) => false,
        Some(TIMED_OUT_REASON) => true,
        _ => cond
            .last_update_time
            .as_ref()
            .and_then(|t| {
                t.0.checked_add(SignedDuration::from_secs(i64::from(deadline)))
                    .ok()
            })
            .is_some_and(|at| at < now),
    }
}

/// One sync of one deployment: upstream's syncDeployment and the functions it calls, with the
/// deployment as last written so consecutive status writes do not conflict with each other.
struct Sync {
    d: Deployment,
    context: Arc<Context>,
    state: Arc<State>,
    requeue: Option<Duration>,
}

impl Sync {
    fn new(d: &Deployment, context: Arc<Context>, state: Arc<State>) -> Sync {
        Sync {
            d: d.clone(),
            context,
            state,
            requeue: None,
        }
    }

    fn namespace(&self) -> String {
        self.d.namespace().unwrap_or_default()
    }

    fn rs_api(&self) -> Api<ReplicaSet> {
        Api::namespaced(self.context.client.clone(), &self.namespace())
    }

    async fn event(&self, type_: EventType, reason: &str, note: String) {
        self.context
            .publish(COMPONENT, &self.d.object_ref(&()), type_, reason, note)
            .await;
    }

    async fn update_status(&mut self, status: DeploymentStatus) -> Result<(), ReconcileError> {
        let api: Api<Deployment> = Api::namespaced(self.context.client.clone(), &self.namespace());
        let mut object = self.d.clone();
        object.status = Some(status);
        self.d = api
            .replace_status(&self.d.name_any(), &PostParams::default(), &object)
            .await?;
        Ok(())
    }

    async fn run(mut self) -> Result<Action, ReconcileError> {
        if self.state.replica_sets.wait_until_ready().await.is_err()
            || self.state.pods.wait_until_ready().await.is_err()
        {
            return Ok(Action::await_change());
        }
        let selector = match selector_of(&self.d) {
            Ok(selector) => selector,
            Err(err) => {
                tracing::warn!(error = %err, "invalid selector");
                return Ok(Action::await_change());
            }
        };
        if selector.is_empty() {
            self.event(
                EventType::Warning,
                "SelectingAll",
                "This deployment is selecting all pods. A non-empty selector is required.".into(),
            )
            .await;
            let mut status = self.d.status.clone().unwrap_or_default();
            if status.observed_generation != self.d.metadata.generation {
                status.observed_generation = self.d.metadata.generation;
                self.update_status(status).await?;
            }
            return Ok(Action::await_change());
        }
        let list = match self.claim_replica_sets(&selector).await {
            Ok(list) => list,
            Err(ReconcileError::Kube(err)) if is_not_found(&err) => return Ok(Action::await_change()),
            Err(err) => return Err(err),
        };
        if self.d.metadata.deletion_timestamp.is_some() {
            Box::pin(self.sync_status_only(&list)).await?;
            return Ok(Action::await_change());
        }
        self.check_paused_conditions().await?;
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused {
            Box::pin(self.sync(list)).await?;
            return Ok(self.requeue.map_or_else(Action::await_change, Action::requeue));
        }
        // Rollback is not re-entrant: nothing else happens until the request is cleared.
        if let Some(revision) = rollback_to(&self.d) {
            Box::pin(self.rollback(list, revision)).await?;
            return Ok(Action::await_change());
        }
        if Box::pin(self.is_scaling_event(&list)).await? {
            Box::pin(self.sync(list)).await?;
        } else if is_rolling(&self.d) {
            Box::pin(self.rollout_rolling(list)).await?;
        } else {
            Box::pin(self.rollout_recreate(list)).await?;
        }
        Ok(self.requeue.map_or_else(Action::await_change, Action::requeue))
    }

    /// Upstream's rollback: the deprecated `rollbackTo` request, kept in apps/v1 as the
    /// `deprecated.deployment.rollback.to` annotation (0 means the previous revision).
    async fn rollback(&mut self, list: Vec<ReplicaSet>, revision: i64) -> Result<(), ReconcileError> {
        let (new_rs, old) = Box::pin(self.get_all_and_sync_revision(&list, true)).await?;
        let mut all: Vec<ReplicaSet> = old;
        all.extend(new_rs);
        let mut revision = revision;
        if revision == 0 {
            revision = last_revision(&all);
            if revision == 0 {
                self.event(
                    EventType::Warning,
                    "DeploymentRollbackRevisionNotFound",
                    "Unable to find last revision.".into(),
                )
                .await;
                return self.clear_rollback_to().await;
            }
        }
        let Some(target) = all.iter().find(|rs| revision_of(&rs.metadata) == Some(revision)) else {
            self.event(
                EventType::Warning,
                "DeploymentRollbackRevisionNotFound",
                "Unable to find the revision to rollback to.".into(),
            )
            .await;
            return self.clear_rollback_to().await;
        };
        let template = rs_template(target).cloned().unwrap_or_default();
        if equal_ignore_hash(&d_template(&self.d), &template) {
            let message = format!(
                "The rollback revision contains the same template as current deployment {:?}",
                self.d.name_any()
            );
            self.event(EventType::Warning, "DeploymentRollbackTemplateUnchanged", message)
                .await;
            return self.clear_rollback_to().await;
        }
        // Take the revision's template (without its hash) and its annotations.
        let mut template = template;
        if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        if let Some(spec) = self.d.spec.as_mut() {
            spec.template = template;
        }
        let skipped = [
            LAST_APPLIED,
            REVISION,
            REVISION_HISTORY,
            DESIRED_REPLICAS,
            MAX_REPLICAS,
            ROLLBACK_TO,
        ];
        let mut annotations: BTreeMap<String, String> = self
            .d
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| skipped.contains(&k.as_str()))
            .collect();
        for (key, value) in target.metadata.annotations.iter().flatten() {
            if !skipped.contains(&key.as_str()) {
                annotations.insert(key.clone(), value.clone());
            }
        }
        self.d.metadata.annotations = Some(annotations);
        self.clear_rollback_to().await?;
        let message = format!(
            "Rolled back deployment {:?} to revision {revision}",
            self.d.name_any()
        );
        self.event(EventType::Normal, "DeploymentRollback", message).await;
        Ok(())
    }

    /// Removes the rollback request and writes the deployment.
    async fn clear_rollback_to(&mut self) -> Result<(), ReconcileError> {
        if let Some(annotations) = self.d.metadata.annotations.as_mut() {
            annotations.remove(ROLLBACK_TO);
        }
        let api: Api<Deployment> = Api::namespaced(self.context.client.clone(), &self.namespace());
        self.d = api
            .replace(&self.d.name_any(), &PostParams::default(), &self.d)
            .await?;
        Ok(())
    }

    /// Upstream's getReplicaSetsForDeployment: adopt matching orphans, release mismatches.
    async fn claim_replica_sets(&self, selector: &Selector) -> Result<Vec<ReplicaSet>, ReconcileError> {
        let namespace = self.namespace();
        let uid = self.d.metadata.uid.clone();
        let candidates: Vec<ReplicaSet> = self
            .state
            .replica_sets
            .state()
            .iter()
            .filter(|rs| rs.namespace().as_deref() == Some(namespace.as_str()))
            .filter(|rs| controller_of(&rs.metadata).is_none_or(|r| Some(&r.uid) == uid.as_ref()))
            .map(|rs| (**rs).clone())
            .collect();
        let api: Api<Deployment> = Api::namespaced(self.context.client.clone(), &namespace);
        let name = self.d.name_any();
        let mut manager = RefManager::new(
            &self.d,
            selector,
            Box::new(move || {
                let api = api.clone();
                let name = name.clone();
                Box::pin(async move { api.get_opt(&name).await })
            }),
        );
        manager.claim(&self.rs_api(), candidates).await
    }

    fn old_pods_running(&self, new_rs: Option<&ReplicaSet>, old: &[&ReplicaSet]) -> bool {
        if sum(old, status_replicas) > 0 {
            return true;
        }
        let namespace = self.namespace();
        let new_uid = new_rs.and_then(|rs| rs.metadata.uid.clone());
        let owned: Vec<Option<String>> = old.iter().map(|rs| rs.metadata.uid.clone()).collect();
        self.state.pods.state().iter().any(|pod| {
            if pod.namespace().as_deref() != Some(namespace.as_str()) {
                return false;
            }
            let Some(owner) = controller_of(&pod.metadata) else {
                return false;
            };
            if new_uid.as_ref() == Some(&owner.uid) || !owned.contains(&Some(owner.uid.clone())) {
                return false;
            }
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Failed" | "Succeeded"))
        })
    }

    async fn check_paused_conditions(&mut self) -> Result<(), ReconcileError> {
        if progress_deadline(&self.d).is_none() {
            return Ok(());
        }
        let mut status = self.d.status.clone().unwrap_or_default();
        let reason = condition(&status, PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(TIMED_OUT_REASON) {
            return Ok(());
        }
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        let paused_exists = reason.as_deref() == Some(PAUSED_REASON);
        let update = if paused && !paused_exists {
            Some(new_condition(
                PROGRESSING,
                "Unknown",
                PAUSED_REASON,
                "Deployment is paused".into(),
            ))
        } else if !paused && paused_exists {
            Some(new_condition(
                PROGRESSING,
                "Unknown",
                RESUMED_REASON,
                "Deployment is resumed".into(),
            ))
        } else {
            None
        };
        if let Some(cond) = update {
            set_condition(&mut status, cond);
            self.update_status(status).await?;
        }
        Ok(())
    }

    async fn is_scaling_event(&mut self, list: &[ReplicaSet]) -> Result<bool, ReconcileError> {
        let (new_rs, old) = Box::pin(self.get_all_and_sync_revision(list, false)).await?;
        let want = desired(&self.d).to_string();
        Ok(old
            .iter()
            .chain(new_rs.iter())
            .filter(|rs| replicas(rs) > 0)
            .any(|rs| annotation(&rs.metadata, DESIRED_REPLICAS).is_some_and(|v| v != want)))
    }

    /// Upstream's getAllReplicaSetsAndSyncRevision: (new, old replica sets).
    async fn get_all_and_sync_revision(
        &mut self,
        list: &[ReplicaSet],
        create: bool,
    ) -> Result<(Option<ReplicaSet>, Vec<ReplicaSet>), ReconcileError> {
        let new_rs = find_new(&self.d, list);
        let new_uid = new_rs.as_ref().and_then(|rs| rs.metadata.uid.clone());
        let old: Vec<ReplicaSet> = list
            .iter()
            .filter(|rs| new_uid.is_none() || rs.metadata.uid != new_uid)
            .cloned()
            .collect();
        let new_rs = Box::pin(self.get_new_replica_set(list, &old, create)).await?;
        Ok((new_rs, old))
    }

    async fn get_new_replica_set(
        &mut self,
        list: &[ReplicaSet],
        old: &[ReplicaSet],
        create: bool,
    ) -> Result<Option<ReplicaSet>, ReconcileError> {
        let existing = find_new(&self.d, list);
        let max_old = old
            .iter()
            .filter_map(|rs| revision_of(&rs.metadata))
            .max()
            .unwrap_or(0);
        let new_revision = (max_old + 1).to_string();
        let min_ready = self.d.spec.as_ref().and_then(|s| s.min_ready_seconds);
        if let Some(existing) = existing {
            let mut copy = existing.clone();
            let annotations_updated = set_new_rs_annotations(&self.d, &mut copy, &new_revision, true);
            let spec = copy.spec.get_or_insert_with(ReplicaSetSpec::default);
            let min_ready_update = spec.min_ready_seconds.unwrap_or(0) != min_ready.unwrap_or(0);
            if annotations_updated || min_ready_update {
                spec.min_ready_seconds = min_ready;
                let updated = self
                    .rs_api()
                    .replace(&copy.name_any(), &PostParams::default(), &copy)
                    .await?;
                return Ok(Some(updated));
            }
            let revision = annotation(&copy.metadata, REVISION).unwrap_or("").to_owned();
            let mut needs_update = self.set_revision(&revision);
            let mut status = self.d.status.clone().unwrap_or_default();
            if progress_deadline(&self.d).is_some() && condition(&status, PROGRESSING).is_none() {
                let message = format!("Found new replica set {:?}", copy.name_any());
                set_condition(
                    &mut status,
                    new_condition(PROGRESSING, "True", FOUND_NEW_RS_REASON, message),
                );
                needs_update = true;
            }
            if needs_update {
                self.update_status(status).await?;
            }
            return Ok(Some(copy));
        }
        if !create {
            return Ok(None);
        }
        let template = d_template(&self.d);
        let collision_count = self.d.status.as_ref().and_then(|s| s.collision_count);
        let hash = pods::template_hash(&template, collision_count);
        let mut new_template = template.clone();
        new_template
            .metadata
            .get_or_insert_with(ObjectMeta::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.to_owned(), hash.clone());
        let mut selector: LabelSelector = self
            .d
            .spec
            .as_ref()
            .map(|s| s.selector.clone())
            .unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.to_owned(), hash.clone());
        let name = format!("{}-{hash}", self.d.name_any());
        let mut new_rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(self.namespace()),
                owner_references: Some(vec![pods::controller_ref(&self.d)]),
                labels: new_template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: min_ready,
                selector,
                template: Some(new_template),
            }),
            status: None,
        };
        let mut all: Vec<&ReplicaSet> = old.iter().collect();
        all.push(&new_rs);
        let count = new_rs_new_replicas(&self.d, &all, &new_rs)?;
        if let Some(spec) = new_rs.spec.as_mut() {
            spec.replicas = Some(count);
        }
        set_new_rs_annotations(&self.d, &mut new_rs, &new_revision, false);
        let mut already_exists = false;
        let created = match self.rs_api().create(&PostParams::default(), &new_rs).await {
            Ok(created) => created,
            Err(err) if is_already_exists(&err) => {
                let existing = self.rs_api().get_opt(&name).await?;
                let ours = existing.as_ref().is_some_and(|rs| {
                    controller_of(&rs.metadata).is_some_and(|r| Some(&r.uid) == self.d.metadata.uid.as_ref())
                        && rs_template(rs).is_some_and(|t| equal_ignore_hash(&template, t))
                });
                match existing {
                    Some(rs) if ours => {
                        already_exists = true;
                        rs
                    }
                    _ => {
                        // A hash collision: bump the count so the next sync picks another name.
                        let mut status = self.d.status.clone().unwrap_or_default();
                        status.collision_count = Some(status.collision_count.unwrap_or(0).saturating_add(1));
                        self.update_status(status).await?;
                        return Err(err.into());
                    }
                }
            }
            Err(err) => {
                let message = format!(
                    "Failed to create new replica set {name:?}: {}",
                    match &err {
                        kube::Error::Api(status) => status.message.clone(),
                        other => other.to_string(),
                    }
                );
                if progress_deadline(&self.d).is_some() {
                    let mut status = self.d.status.clone().unwrap_or_default();
                    set_condition(
                        &mut status,
                        new_condition(PROGRESSING, "False", FAILED_RS_CREATE_REASON, message.clone()),
                    );
                    // The create error is what is reported; a failed status write changes nothing.
                    let _ = self.update_status(status).await;
                }
                self.event(EventType::Warning, FAILED_RS_CREATE_REASON, message)
                    .await;
                return Err(err.into());
            }
        };
        if !already_exists && count > 0 {
            self.event(
                EventType::Normal,
                "ScalingReplicaSet",
                format!("Scaled up replica set {} from 0 to {count}", created.name_any()),
            )
            .await;
        }
        let mut needs_update = self.set_revision(&new_revision);
        let mut status = self.d.status.clone().unwrap_or_default();
        if !already_exists && progress_deadline(&self.d).is_some() {
            let message = format!("Created new replica set {:?}", created.name_any());
            set_condition(
                &mut status,
                new_condition(PROGRESSING, "True", NEW_RS_REASON, message),
            );
            needs_update = true;
        }
        if needs_update {
            self.update_status(status).await?;
        }
        Ok(Some(created))
    }

    /// Sets the deployment's revision annotation (written with the next status update).
    fn set_revision(&mut self, revision: &str) -> bool {
        let annotations = self.d.metadata.annotations.get_or_insert_with(BTreeMap::new);
        if annotations.get(REVISION).map(String::as_str) == Some(revision) {
            return false;
        }
        annotations.insert(REVISION.to_owned(), revision.to_owned());
        true
    }

    /// Upstream's scaleReplicaSet: sets the size and the replicas annotations; whether the
    /// size changed, and the replica set as written.
    async fn scale_rs(
        &self,
        rs: &ReplicaSet,
        scale: i32,
        operation: &str,
    ) -> Result<(bool, ReplicaSet), ReconcileError> {
        let size_changes = replicas(rs) != scale;
        let (want, max) = (desired(&self.d), desired(&self.d) + max_surge(&self.d));
        if !size_changes && !replicas_annotations_need_update(rs, want, max) {
            return Ok((false, rs.clone()));
        }
        let old_scale = replicas(rs);
        let mut copy = rs.clone();
        copy.spec.get_or_insert_with(ReplicaSetSpec::default).replicas = Some(scale);
        set_replicas_annotations(&mut copy, want, max);
        let updated = self
            .rs_api()
            .replace(&copy.name_any(), &PostParams::default(), &copy)
            .await?;
        if size_changes {
            self.event(
                EventType::Normal,
                "ScalingReplicaSet",
                format!(
                    "Scaled {operation} replica set {} from {old_scale} to {scale}",
                    rs.name_any()
                ),
            )
            .await;
        }
        Ok((size_changes, updated))
    }

    async fn scale_and_record(
        &self,
        rs: &ReplicaSet,
        scale: i32,
    ) -> Result<(bool, ReplicaSet), ReconcileError> {
        if replicas(rs) == scale {
            return Ok((false, rs.clone()));
        }
        let operation = if replicas(rs) < scale { "up" } else { "down" };
        self.scale_rs(rs, scale, operation).await
    }

    /// Upstream's sync: scaling (also while paused), cleanup while paused, status.
    async fn sync(&mut self, list: Vec<ReplicaSet>) -> Result<(), ReconcileError> {
        let (new_rs, old) = Box::pin(self.get_all_and_sync_revision(&list, false)).await?;
        self.scale(new_rs.as_ref(), &old).await?;
        let paused = self.d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
        if paused && annotation(&self.d.metadata, ROLLBACK_TO).is_none() {
            self.cleanup(&old).await?;
        }
        let mut all: Vec<&ReplicaSet> = old.iter().collect();
        all.extend(new_rs.iter());
        let status = self.calculate_status(&all, new_rs.as_ref());
        if Some(&status) != self.d.status.as_ref() {
            self.update_status(status).await?;
        }
        Ok(())
    }

    async fn sync_status_only(&mut self, list: &[ReplicaSet]) -> Result<(), ReconcileError> {
        let (new_rs, old) = Box::pin(self.get_all_and_sync_revision(list, false)).await?;
        let mut all: Vec<&ReplicaSet> = old.iter().collect();
        all.extend(new_rs.iter());
        let status = self.calculate_status(&all, new_rs.as_ref());
        if Some(&status) != self.d.status.as_ref() {
            self.update_status(status).await?;
        }
        Ok(())
    }

    /// Upstream's scale: proportional scaling of the active replica sets.
    async fn scale(&self, new_rs: Option<&ReplicaSet>, old: &[ReplicaSet]) -> Result<(), ReconcileError> {
        let want = desired(&self.d);
        let mut old_sorted: Vec<&ReplicaSet> = old.iter().collect();
        old_sorted.sort_by(|a, b| by_creation(b, a));
        let mut active: Vec<&ReplicaSet> = old_sorted.iter().copied().filter(is_active_rs).collect();
        if let Some(new_rs) = new_rs.filter(is_active_rs) {
            active.push(new_rs);
        }
        if new_rs.is_some() || !old.is_empty() {
            let only = match active.len() {
                0 => new_rs.or(old_sorted.first().copied()),
                1 => active.first().copied(),
                _ => None,
            };
            if let Some(rs) = only {
                if replicas(rs) != want {
                    self.scale_and_record(rs, want).await?;
                }
                return Ok(());
            }
        }
        if let Some(new_rs) = new_rs
            && replicas(new_rs) == want
            && annotation(&new_rs.metadata, DESIRED_REPLICAS) == Some(want.to_string().as_str())
            && available(new_rs) == want
        {
            for rs in old.iter().filter(|rs| replicas(rs) > 0) {
                self.scale_and_record(rs, 0).await?;
            }
            return Ok(());
        }
        if !is_rolling(&self.d) {
            return Ok(());
        }
        let total = sum(&active, replicas);
        let allowed = if want > 0 { want + max_surge(&self.d) } else { 0 };
        let to_add = allowed - total;
        let operation = match to_add.cmp(&0) {
            Ordering::Greater => {
                // Largest first; newer first among equals.
                active.sort_by(|a, b| replicas(b).cmp(&replicas(a)).then_with(|| by_creation(b, a)));
                "up"
            }
            Ordering::Less => {
                // Largest first; older first among equals.
                active.sort_by(|a, b| replicas(b).cmp(&replicas(a)).then_with(|| by_creation(a, b)));
                "down"
            }
            Ordering::Equal => "",
        };
        let mut added = 0;
        let mut sizes: Vec<i32> = Vec::with_capacity(active.len());
        for rs in &active {
            if to_add == 0 {
                sizes.push(replicas(rs));
                continue;
            }
            let proportion = self.proportion(rs, to_add, added);
            sizes.push(replicas(rs) + proportion);
            added += proportion;
        }
        let leftover = to_add - added;
        if let Some(first) = sizes.first_mut()
            && leftover != 0
        {
            *first = (*first + leftover).max(0);
        }
        for (rs, size) in active.iter().zip(sizes) {
            self.scale_rs(rs, size, operation).await?;
        }
        Ok(())
    }

    /// Upstream's GetProportion.
    fn proportion(&self, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
        if replicas(rs) == 0 || to_add == 0 || to_add == added {
            return 0;
        }
        let fraction = self.fraction(rs);
        let allowed = to_add - added;
        if to_add > 0 {
            fraction.min(allowed)
        } else {
            fraction.max(allowed)
        }
    }

    fn fraction(&self, rs: &ReplicaSet) -> i32 {
        let want = desired(&self.d);
        if want == 0 {
            return -replicas(rs);
        }
        let deployment_replicas = want + max_surge(&self.d);
        let annotated = annotation(&rs.metadata, MAX_REPLICAS)
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or_else(|| self.d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
        if annotated == 0 {
            return 0;
        }
        let size = f64::from(replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
        #[allow(clippy::cast_possible_truncation)]
        let rounded = (size + 0.5).floor() as i32;
        rounded - replicas(rs)
    }

    /// Upstream's cleanupDeployment: deletes the oldest unused replica sets beyond the limit.
    async fn cleanup(&self, old: &[ReplicaSet]) -> Result<(), ReconcileError> {
        let Some(limit) = self.d.spec.as_ref().and_then(|s| s.revision_history_limit) else {
            return Ok(());
        };
        let mut cleanable: Vec<&ReplicaSet> = old
            .iter()
            .filter(|rs| rs.metadata.deletion_timestamp.is_none())
            .collect();
        let diff = i32::try_from(cleanable.len()).unwrap_or(i32::MAX) - limit;
        if diff <= 0 {
            return Ok(());
        }
        cleanable.sort_by(|a, b| {
            revision_of(&a.metadata)
                .unwrap_or(0)
                .cmp(&revision_of(&b.metadata).unwrap_or(0))
                .then_with(|| by_creation(a, b))
        });
        for rs in cleanable.into_iter().take(usize::try_from(diff).unwrap_or(0)) {
            let status = rs.status.clone().unwrap_or_default();
            if status.replicas != 0
                || replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0)
                || rs.metadata.deletion_timestamp.is_some()
            {
                continue;
            }
            match self
                .rs_api()
                .delete(&rs.name_any(), &DeleteParams::default())
                .await
            {
                Ok(_) => {}
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// Upstream's calculateStatus.
    fn calculate_status(&self, all: &[&ReplicaSet], new_rs: Option<&ReplicaSet>) -> DeploymentStatus {
        let available_count = sum(all, available);
        let total = sum(all, replicas);
        let unavailable = (total - available_count).max(0);
        let old = self.d.status.clone().unwrap_or_default();
        let opt = |n: i32| (n != 0).then_some(n);
        let mut terminating = Some(0);
        for rs in all {
            let status = rs.status.clone().unwrap_or_default();
            match status.terminating_replicas {
                None if status.observed_generation.unwrap_or(0) == 0 => {}
                None => {
                    terminating = None;
                    break;
                }
                Some(n) => terminating = terminating.map(|t| t + n),
            }
        }
        let mut status = DeploymentStatus {
            observed_generation: self.d.metadata.generation,
            replicas: opt(sum(all, status_replicas)),
            updated_replicas: opt(new_rs.map_or(0, status_replicas)),
            ready_replicas: opt(sum(all, |rs| {
                rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0)
            })),
            available_replicas: opt(available_count),
            unavailable_replicas: opt(unavailable),
            terminating_replicas: terminating,
            collision_count: old.collision_count,
            conditions: old.conditions,
        };
        if available_count >= desired(&self.d) - max_unavailable(&self.d) {
            set_condition(
                &mut status,
                new_condition(
                    AVAILABLE,
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.".into(),
                ),
            );
        } else {
            set_condition(
                &mut status,
                new_condition(
                    AVAILABLE,
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.".into(),
                ),
            );
        }
        status
    }

    /// Upstream's syncRolloutStatus: status plus the Progressing and ReplicaFailure conditions.
    async fn sync_rollout_status(
        &mut self,
        all: &[&ReplicaSet],
        new_rs: Option<&ReplicaSet>,
    ) -> Result<(), ReconcileError> {
        let mut status = self.calculate_status(all, new_rs);
        let deadline = progress_deadline(&self.d);
        if deadline.is_none() {
            remove_condition(&mut status, PROGRESSING);
        }
        let old_status = self.d.status.clone().unwrap_or_default();
        let current = condition(&old_status, PROGRESSING).cloned();
        let complete_before = status.replicas == status.updated_replicas
            && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE_REASON);
        let now = Timestamp::now();
        if deadline.is_some() && !complete_before {
            let name = self.d.name_any();
            if complete(&self.d, &status) {
                let message = new_rs.map_or_else(
                    || format!("Deployment {name:?} has successfully progressed."),
                    |rs| format!("ReplicaSet {:?} has successfully progressed.", rs.name_any()),
                );
                set_condition(
                    &mut status,
                    new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE_REASON, message),
                );
            } else if progressing(&self.d, &status) {
                let message = new_rs.map_or_else(
                    || format!("Deployment {name:?} is progressing."),
                    |rs| format!("ReplicaSet {:?} is progressing.", rs.name_any()),
                );
                let mut cond = new_condition(PROGRESSING, "True", RS_UPDATED_REASON, message);
                if let Some(current) = &current
                    && current.status == "True"
                {
                    cond.last_transition_time
                        .clone_from(&current.last_transition_time);
                }
                remove_condition(&mut status, PROGRESSING);
                set_condition(&mut status, cond);
            } else if timed_out(&self.d, &status, now) {
                let message = new_rs.map_or_else(
                    || format!("Deployment {name:?} has timed out progressing."),
                    |rs| format!("ReplicaSet {:?} has timed out progressing.", rs.name_any()),
                );
                set_condition(
                    &mut status,
                    new_condition(PROGRESSING, "False", TIMED_OUT_REASON, message),
                );
            }
        }
        let failure = new_rs
            .into_iter()
            .chain(all.iter().copied())
            .filter_map(|rs| {
                rs.status
                    .as_ref()?
                    .conditions
                    .iter()
                    .flatten()
                    .find(|c| c.type_ == REPLICA_FAILURE)
                    .cloned()
            })
            .next();
        match failure {
            Some(c) => set_condition(
                &mut status,
                DeploymentCondition {
                    type_: REPLICA_FAILURE.to_owned(),
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                    last_update_time: c.last_transition_time.clone(),
                    last_transition_time: c.last_transition_time,
                },
            ),
            None => remove_condition(&mut status, REPLICA_FAILURE),
        }
        if Some(&status) == self.d.status.as_ref() {
            self.requeue_stuck(&status, now);
            return Ok(());
        }
        self.update_status(status).await
    }

    /// Upstream's requeueStuckDeployment: check the progress deadline when it passes.
    fn requeue_stuck(&mut self, status: &DeploymentStatus, now: Timestamp) {
        let (Some(deadline), Some(current)) = (progress_deadline(&self.d), condition(status, PROGRESSING))
        else {
            return;
        };
        if complete(&self.d, status) || current.reason.as_deref() == Some(TIMED_OUT_REASON) {
            return;
        }
        let Some(at) = current.last_update_time.as_ref().and_then(|t| {
            t.0.checked_add(SignedDuration::from_secs(i64::from(deadline)))
                .ok()
        }) else {
            return;
        };
        let after = at.duration_since(now).as_secs_f64();
        self.requeue = Some(if after < 1.0 {
            Duration::from_secs(1)
        } else {
            Duration::from_secs_f64(after)
        });
    }

    async fn rollout_rolling(&mut self, list: Vec<ReplicaSet>) -> Result<(), ReconcileError> {
        let (new_rs, old) = Box::pin(self.get_all_and_sync_revision(&list, true)).await?;
        let Some(new_rs) = new_rs else {
            return Ok(());
        };
        let mut all: Vec<&ReplicaSet> = old.iter().collect();
        all.push(&new_rs);
        // Scale up the new replica set.
        let target = if replicas(&new_rs) > desired(&self.d) {
            desired(&self.d)
        } else {
            new_rs_new_replicas(&self.d, &all, &new_rs)?
        };
        if replicas(&new_rs) != desired(&self.d) {
            let (scaled, updated) = self.scale_and_record(&new_rs, target).await?;
            if scaled {
                let mut all: Vec<&ReplicaSet> = old.iter().collect();
                all.push(&updated);
                return self.sync_rollout_status(&all, Some(&updated)).await;
            }
        }
        // Scale down old replica sets.
        let (scaled_down, old) = self.reconcile_old(&old, &new_rs).await?;
        let mut all: Vec<&ReplicaSet> = old.iter().collect();
        all.push(&new_rs);
        if scaled_down {
            return self.sync_rollout_status(&all, Some(&new_rs)).await;
        }
        if complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup(&old).await?;
        }
        self.sync_rollout_status(&all, Some(&new_rs)).await
    }

    /// Upstream's reconcileOldReplicaSets; whether anything was scaled down, and the old
    /// replica sets as written.
    async fn reconcile_old(
        &self,
        old: &[ReplicaSet],
        new_rs: &ReplicaSet,
    ) -> Result<(bool, Vec<ReplicaSet>), ReconcileError> {
        let mut old: Vec<ReplicaSet> = old.to_vec();
        let old_refs: Vec<&ReplicaSet> = old.iter().collect();
        if sum(&old_refs, replicas) == 0 {
            return Ok((false, old));
        }
        let all_pods = sum(&old_refs, replicas) + replicas(new_rs);
        let min_available = desired(&self.d) - max_unavailable(&self.d);
        let new_unavailable = replicas(new_rs) - available(new_rs);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok((false, old));
        }
        // Clean up unhealthy replicas first (oldest first).
        old.sort_by(by_creation);
        let mut cleaned = 0;
        for rs in &mut old {
            if cleaned >= max_scaled_down {
                break;
            }
            if replicas(rs) == 0 || replicas(rs) == available(rs) {
                continue;
            }
            let count = (max_scaled_down - cleaned).min(replicas(rs) - available(rs));
            let target = replicas(rs) - count;
            let (_, updated) = self.scale_and_record(rs, target).await?;
            cleaned += count;
            *rs = updated;
        }
        // Then scale down healthy ones, keeping minAvailable available.
        let mut all: Vec<&ReplicaSet> = old.iter().collect();
        all.push(new_rs);
        let available_count = sum(&all, available);
        let mut scaled = 0;
        if available_count > min_available {
            let total_down = available_count - min_available;
            for rs in &mut old {
                if scaled >= total_down {
                    break;
                }
                if replicas(rs) == 0 {
                    continue;
                }
                let count = replicas(rs).min(total_down - scaled);
                let target = replicas(rs) - count;
                let (_, updated) = self.scale_and_record(rs, target).await?;
                scaled += count;
                *rs = updated;
            }
        }
        Ok((cleaned + scaled > 0, old))
    }

    async fn rollout_recreate(&mut self, list: Vec<ReplicaSet>) -> Result<(), ReconcileError> {
        let (new_rs, mut old) = Box::pin(self.get_all_and_sync_revision(&list, false)).await?;
        let mut scaled_down = false;
        for rs in &mut old {
            if replicas(rs) == 0 {
                continue;
            }
            let (scaled, updated) = self.scale_and_record(rs, 0).await?;
            scaled_down |= scaled;
            *rs = updated;
        }
        let status_of = |new_rs: &Option<ReplicaSet>, old: &[ReplicaSet]| {
            let mut all: Vec<ReplicaSet> = old.to_vec();
            all.extend(new_rs.iter().cloned());
            all
        };
        let old_refs: Vec<&ReplicaSet> = old.iter().collect();
        if scaled_down || self.old_pods_running(new_rs.as_ref(), &old_refs) {
            let all = status_of(&new_rs, &old);
            let all: Vec<&ReplicaSet> = all.iter().collect();
            return self.sync_rollout_status(&all, new_rs.as_ref()).await;
        }
        let new_rs = match new_rs {
            Some(rs) => Some(rs),
            None => Box::pin(self.get_all_and_sync_revision(&list, true)).await?.0,
        };
        let new_rs = match new_rs {
            Some(rs) => Some(self.scale_and_record(&rs, desired(&self.d)).await?.1),
            None => None,
        };
        if complete(&self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup(&old).await?;
        }
        let all = status_of(&new_rs, &old);
        let all: Vec<&ReplicaSet> = all.iter().collect();
        self.sync_rollout_status(&all, new_rs.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_history_keeps_rolled_back_revisions() {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "annotations": {"team": "a", REVISION: "3"}},
            "spec": {"selector": {}, "template": {}}
        }))
        .unwrap();
        let mut rs: ReplicaSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "annotations": {REVISION: "1"}}
        }))
        .unwrap();
        assert!(set_new_rs_annotations(&d, &mut rs, "4", true));
        let annotations = rs.metadata.annotations.unwrap();
        assert_eq!(annotations[REVISION], "4");
        assert_eq!(annotations[REVISION_HISTORY], "1");
        assert_eq!(annotations["team"], "a");
        assert!(!annotations.contains_key(DESIRED_REPLICAS));
    }
}
