//! The job controller (upstream: pkg/controller/job): runs a Job's pods to completion.
//! NonIndexed and Indexed completion, parallelism, pods tracked with the
//! `batch.kubernetes.io/job-tracking` finalizer and counted through
//! `status.uncountedTerminatedPods`, the pod failure backoff, backoffLimit,
//! backoffLimitPerIndex and maxFailedIndexes, podFailurePolicy, successPolicy,
//! activeDeadlineSeconds, suspend and podReplacementPolicy, with the interim FailureTarget and
//! SuccessCriteriaMet conditions before Failed and Complete, and upstream's events.
//!
//! It owns pods of Jobs and Jobs' status; it never changes a Job's spec. The pure rules live
//! in [`logic`].

mod logic;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{TryStreamExt, future};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::logic::{
    BackoffRecord, COMPLETION_INDEX, INDEX_FAILURE_COUNT, INDEX_IGNORED_FAILURE_COUNT, Intervals,
    PolicyAction, TRACKING_FINALIZER, completion_index, has_finalizer, is_indexed, is_pod_failed,
    match_pod_failure_policy, only_replace_failed, phase, valid_index,
};
use crate::harness::{self, Context, ReconcileError, is_not_found};
use crate::pods::{self, Expectations, RefManager, Selector, controller_of};

/// The job controller's name in `--controllers`.
pub const NAME: &str = "job-controller";
/// The reporting component of its events.
const COMPONENT: &str = "job-controller";
/// The `spec.managedBy` value of jobs this controller manages.
const MANAGED_BY: &str = "kubernetes.io/job-controller";
/// The most pods counted through `uncountedTerminatedPods` in one sync (MaxUncountedPods).
const MAX_UNCOUNTED: usize = 500;
/// The most pods created or deleted in one sync (MaxPodCreateDeletePerSync).
const MAX_CREATE_DELETE: usize = 500;
/// How long a failed orphan finalizer removal waits before it is retried.
const ORPHAN_RETRY: Duration = Duration::from_secs(1);
/// The environment variable holding the completion index of Indexed jobs' pods.
const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// What the controller keeps between reconciles.
struct State {
    pods: Store<Pod>,
    jobs: Store<Job>,
    /// Pod creations and deletions awaited per job UID.
    expectations: Expectations,
    /// Pod UIDs whose finalizer removal is awaited, per job UID.
    removing: Mutex<HashMap<String, HashSet<String>>>,
    /// The pod failure backoff per job UID.
    backoff: Mutex<HashMap<String, BackoffRecord>>,
    /// Jobs marked finished whose update the cache has not shown yet.
    finished: Mutex<HashSet<String>>,
    /// Pods whose tracking finalizer may belong to no live job.
    orphans: mpsc::UnboundedSender<ObjectRef<Pod>>,
    context: Arc<Context>,
}

impl State {
    /// Settles expectations from a raw pod watch event.
    fn observe(&self, event: &watcher::Event<Pod>, known: impl Fn(&Pod) -> bool) {
        self.expectations.observe("Job", event, known);
        let (pod, gone) = match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => (pod, false),
            watcher::Event::Delete(pod) => (pod, true),
            watcher::Event::Init | watcher::Event::InitDone => return,
        };
        if !gone && has_finalizer(pod) {
            return;
        }
        let Some(owner) = controller_of(&pod.metadata) else {
            return;
        };
        if let (Ok(mut removing), Some(uid)) = (self.removing.lock(), pod.metadata.uid.as_ref())
            && let Some(set) = removing.get_mut(&owner.uid)
        {
            set.remove(uid);
        }
    }

    /// Forgets what was kept for a deleted job and frees its pods' finalizers.
    fn job_deleted(&self, job: &Job) {
        let uid = job.uid().unwrap_or_default();
        if let Ok(mut backoff) = self.backoff.lock() {
            backoff.remove(&uid);
        }
        if let Ok(mut finished) = self.finished.lock() {
            finished.remove(&uid);
        }
        if let Ok(mut removing) = self.removing.lock() {
            removing.remove(&uid);
        }
        for pod in self.pods.state() {
            if has_finalizer(&pod) && controller_of(&pod.metadata).is_some_and(|r| r.uid == uid) {
                let _ = self.orphans.send(ObjectRef::from_obj(pod.as_ref()));
            }
        }
    }

    /// The jobs to sync for a pod event; pods that may hold a finalizer for no live job are
    /// handed to the orphan worker.
    fn jobs_of_pod(&self, pod: &Pod) -> Vec<ObjectRef<Job>> {
        let namespace = pod.namespace().unwrap_or_default();
        if let Some(reference) = controller_of(&pod.metadata) {
            if reference.kind != "Job" || reference.api_version != "batch/v1" {
                return Vec::new();
            }
            let job_ref = ObjectRef::new(&reference.name).within(&namespace);
            match self.jobs.get(&job_ref) {
                Some(job) if job.uid().as_deref() == Some(reference.uid.as_str()) && !is_finished(&job) => {
                    return vec![job_ref];
                }
                _ => {
                    if has_finalizer(pod) {
                        let _ = self.orphans.send(ObjectRef::from_obj(pod));
                    }
                    return Vec::new();
                }
            }
        }
        if has_finalizer(pod) {
            let _ = self.orphans.send(ObjectRef::from_obj(pod));
        }
        let empty = BTreeMap::new();
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        self.jobs
            .state()
            .iter()
            .filter(|j| j.namespace().as_deref() == Some(namespace.as_str()))
            .filter(|j| job_selector(j).is_ok_and(|s| !s.is_empty() && s.matches(labels)))
            .map(|j| ObjectRef::from_obj(j.as_ref()))
            .collect()
    }

    fn expected_removals(&self, uid: &str) -> HashSet<String> {
        self.removing
            .lock()
            .ok()
            .and_then(|r| r.get(uid).cloned())
            .unwrap_or_default()
    }

    fn is_marked_finished(&self, uid: &str) -> bool {
        self.finished.lock().is_ok_and(|f| f.contains(uid))
    }

    fn backoff_of(&self, uid: &str) -> BackoffRecord {
        self.backoff
            .lock()
            .ok()
            .and_then(|b| b.get(uid).cloned())
            .unwrap_or_default()
    }

    async fn publish(&self, job: &Job, type_: EventType, reason: &str, note: String) {
        self.context
            .publish(COMPONENT, &job.object_ref(&()), type_, reason, note)
            .await;
    }
}

/// Runs the job controller.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (jobs, job_writer) = reflector::store::<Job>();
    let (orphans, orphan_queue) = mpsc::unbounded_channel();
    let state = Arc::new(State {
        pods: pods.clone(),
        jobs: jobs.clone(),
        expectations: Expectations::default(),
        removing: Mutex::new(HashMap::new()),
        backoff: Mutex::new(HashMap::new()),
        finished: Mutex::new(HashSet::new()),
        orphans,
        context: context.clone(),
    });
    let observer = state.clone();
    let pod_events = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .inspect_ok(move |event| {
            observer.observe(event, |pod| pods.get(&ObjectRef::from_obj(pod)).is_some());
        })
        .reflect(pod_writer)
        .touched_objects();
    let job_observer = state.clone();
    let job_events = watcher(Api::<Job>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .inspect_ok(move |event| {
            if let watcher::Event::Delete(job) = event {
                job_observer.job_deleted(job);
            }
        })
        .reflect(job_writer)
        .applied_objects();
    let mapper = state.clone();
    let controller = Controller::for_stream(job_events, jobs)
        .watches_stream(pod_events, move |pod: Pod| mapper.jobs_of_pod(&pod));
    let orphan_worker = tokio::spawn(clean_orphans(state.clone(), orphan_queue, shutdown.clone()));
    harness::run(NAME, controller, context, shutdown, move |job, context| {
        let state = state.clone();
        async move { Box::pin(reconcile(job, context, state)).await }
    })
    .await;
    orphan_worker.abort();
}

/// Removes the tracking finalizer of pods whose job is gone or finished (upstream's orphan
/// pod worker).
async fn clean_orphans(
    state: Arc<State>,
    mut queue: mpsc::UnboundedReceiver<ObjectRef<Pod>>,
    shutdown: CancellationToken,
) {
    if state.jobs.wait_until_ready().await.is_err() || state.pods.wait_until_ready().await.is_err() {
        return;
    }
    loop {
        let reference = tokio::select! {
            () = shutdown.cancelled() => return,
            next = queue.recv() => match next {
                Some(reference) => reference,
                None => return,
            },
        };
        let Some(pod) = state.pods.get(&reference) else {
            continue;
        };
        if !has_finalizer(&pod) || !is_orphan(&state, &pod) {
            continue;
        }
        let api: Api<Pod> =
            Api::namespaced(state.context.client.clone(), &pod.namespace().unwrap_or_default());
        match api
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &remove_finalizer_patch(),
            )
            .await
        {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => {
                tracing::debug!(pod = %reference, error = %err, "removing the tracking finalizer of an orphan pod");
                let retry = state.orphans.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(ORPHAN_RETRY).await;
                    let _ = retry.send(reference);
                });
            }
        }
    }
}

/// Whether no live, unfinished job of this controller owns the pod.
fn is_orphan(state: &State, pod: &Pod) -> bool {
    let Some(reference) = controller_of(&pod.metadata) else {
        return true;
    };
    if reference.kind != "Job" || reference.api_version != "batch/v1" {
        return false;
    }
    let job_ref = ObjectRef::new(&reference.name).within(&pod.namespace().unwrap_or_default());
    match state.jobs.get(&job_ref) {
        Some(job) if job.uid().as_deref() == Some(reference.uid.as_str()) => {
            managed_externally(&job).is_none() && is_finished(&job)
        }
        _ => true,
    }
}

fn remove_finalizer_patch() -> Patch<serde_json::Value> {
    Patch::Strategic(serde_json::json!({
        "metadata": {"$deleteFromPrimitiveList/finalizers": [TRACKING_FINALIZER]}
    }))
}

fn job_selector(job: &Job) -> Result<Selector, String> {
    match job.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        Some(selector) => Selector::from_label_selector(selector),
        None => Ok(Selector::default()),
    }
}

fn conditions(job: &Job) -> &[JobCondition] {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
}

fn find_condition<'a>(list: &'a [JobCondition], type_: &str) -> Option<&'a JobCondition> {
    list.iter().find(|c| c.type_ == type_)
}

/// Whether the job has a true Complete or Failed condition.
pub(crate) fn is_finished(job: &Job) -> bool {
    conditions(job)
        .iter()
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

/// The other controller named by `spec.managedBy`, if not this one.
fn managed_externally(job: &Job) -> Option<&str> {
    job.spec
        .as_ref()
        .and_then(|s| s.managed_by.as_deref())
        .filter(|m| *m != MANAGED_BY)
}

fn new_condition(type_: &str, status: &str, reason: &str, message: &str, now: Timestamp) -> JobCondition {
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    JobCondition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
        reason: non_empty(reason),
        message: non_empty(message),
    }
}

/// Upstream's ensureJobConditionStatus: sets the condition, appending it only when true.
fn ensure_condition(
    list: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    if let Some(existing) = list.iter_mut().find(|c| c.type_ == type_) {
        if existing.status != status
            || existing.reason.as_deref().unwrap_or("") != reason
            || existing.message.as_deref().unwrap_or("") != message
        {
            *existing = new_condition(type_, status, reason, message, now);
            return true;
        }
        return false;
    }
    if status != "False" {
        list.push(new_condition(type_, status, reason, message, now));
        return true;
    }
    false
}

fn is_success_criteria_met(condition: Option<&JobCondition>) -> bool {
    condition.is_some_and(|c| c.type_ == "SuccessCriteriaMet" && c.status == "True")
}

fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

fn namespace_terminating(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.details.as_ref().is_some_and(|d| {
        d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
    }))
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

async fn reconcile(
    job: Arc<Job>,
    context: Arc<Context>,
    state: Arc<State>,
) -> Result<Action, ReconcileError> {
    if state.pods.wait_until_ready().await.is_err() {
        return Ok(Action::await_change());
    }
    let uid = job.uid().unwrap_or_default();
    if let Some(other) = managed_externally(&job) {
        tracing::debug!(managed_by = other, "skipping a job managed by another controller");
        return Ok(Action::await_change());
    }
    if is_finished(&job) {
        if let Ok(mut backoff) = state.backoff.lock() {
            backoff.remove(&uid);
        }
        if let Ok(mut finished) = state.finished.lock() {
            finished.remove(&uid);
        }
        return Ok(Action::await_change());
    }
    if state.is_marked_finished(&uid) {
        return Ok(Action::await_change());
    }
    let mode = logic::spec(&job).completion_mode.as_deref();
    if mode.is_some_and(|m| m != "NonIndexed" && m != "Indexed") {
        state
            .publish(
                &job,
                EventType::Warning,
                "UnknownCompletionMode",
                "Skipped Job sync because completion mode is unknown".to_owned(),
            )
            .await;
        return Ok(Action::await_change());
    }
    let satisfied = state.expectations.satisfied(&uid);
    let pods = pods_for_job(&job, &context, &state).await?;
    let mut sync = Sync::new((*job).clone(), pods, &state, &context, uid, satisfied);
    sync.run().await
}

/// The pods the job owns after adoption and release; adopted pods count as carrying the
/// tracking finalizer.
async fn pods_for_job(job: &Job, context: &Context, state: &State) -> Result<Vec<Pod>, ReconcileError> {
    let namespace = job.namespace().unwrap_or_default();
    let uid = job.uid();
    let selector = job_selector(job).map_err(ReconcileError::Invalid)?;
    let candidates: Vec<Pod> = state
        .pods
        .state()
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|p| controller_of(&p.metadata).is_none_or(|r| Some(&r.uid) == uid.as_ref()))
        .map(|p| (**p).clone())
        .collect();
    let owned: HashSet<String> = candidates
        .iter()
        .filter(|p| controller_of(&p.metadata).is_some())
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    let pod_api: Api<Pod> = Api::namespaced(context.client.clone(), &namespace);
    let job_api: Api<Job> = Api::namespaced(context.client.clone(), &namespace);
    let name = job.name_any();
    let mut manager = RefManager::new(
        job,
        &selector,
        Box::new(move || {
            let api = job_api.clone();
            let name = name.clone();
            Box::pin(async move { api.get_opt(&name).await })
        }),
    );
    let mut claimed = manager.claim(&pod_api, candidates).await?;
    for pod in &mut claimed {
        let adopted = pod.metadata.uid.as_ref().is_none_or(|u| !owned.contains(u));
        if adopted && !has_finalizer(pod) {
            pod.metadata
                .finalizers
                .get_or_insert_with(Vec::new)
                .push(TRACKING_FINALIZER.to_owned());
        }
    }
    Ok(claimed)
}

/// One sync of one job (upstream's syncJobCtx and the functions working on it).
struct Sync<'a> {
    job: Job,
    status: JobStatus,
    pods: Vec<Pod>,
    active: Vec<Pod>,
    ready: i32,
    terminating: i32,
    /// `status.uncountedTerminatedPods` as the sync found them.
    uncounted_succeeded: HashSet<String>,
    uncounted_failed: HashSet<String>,
    expected_removals: HashSet<String>,
    succeeded: i32,
    failed: i32,
    finished: Option<JobCondition>,
    prev_succeeded_indexes: Intervals,
    succeeded_indexes: Intervals,
    failed_indexes: Option<Intervals>,
    delayed_per_index: HashMap<i32, Pod>,
    new_backoff: BackoffRecord,
    requeue: Option<Duration>,
    satisfied: bool,
    /// Events of status changes (Suspended, Resumed), published once a status write carrying
    /// the change succeeds: a sync on a stale cache conflicts and says nothing.
    pending_events: Vec<(&'static str, &'static str)>,
    uid: String,
    now: Timestamp,
    state: &'a State,
    api: Api<Job>,
    pod_api: Api<Pod>,
}

impl<'a> Sync<'a> {
    fn new(
        job: Job,
        pods: Vec<Pod>,
        state: &'a State,
        context: &Context,
        uid: String,
        satisfied: bool,
    ) -> Self {
        let namespace = job.namespace().unwrap_or_default();
        let mut status = job.status.clone().unwrap_or_default();
        let uncounted = status
            .uncounted_terminated_pods
            .get_or_insert_with(Default::default);
        let uncounted_succeeded: HashSet<String> = uncounted.succeeded.iter().flatten().cloned().collect();
        let uncounted_failed: HashSet<String> = uncounted.failed.iter().flatten().cloned().collect();
        let active: Vec<Pod> = pods.iter().filter(|p| pods::is_active(p)).cloned().collect();
        Sync {
            ready: count(active.iter().filter(|p| pods::is_ready(p)).count()),
            terminating: count(pods.iter().filter(|p| pods::is_terminating(p)).count()),
            active,
            pods,
            uncounted_succeeded,
            uncounted_failed,
            expected_removals: state.expected_removals(&uid),
            succeeded: 0,
            failed: 0,
            finished: None,
            prev_succeeded_indexes: Intervals::default(),
            succeeded_indexes: Intervals::default(),
            failed_indexes: None,
            delayed_per_index: HashMap::new(),
            new_backoff: BackoffRecord::default(),
            requeue: None,
            satisfied,
            pending_events: Vec::new(),
            uid,
            now: Timestamp::now(),
            api: Api::namespaced(context.client.clone(), &namespace),
            pod_api: Api::namespaced(context.client.clone(), &namespace),
            state,
            status,
            job,
        }
    }

    fn spec(&self) -> &k8s_openapi::api::batch::v1::JobSpec {
        logic::spec(&self.job)
    }

    fn completions(&self) -> Option<i32> {
        self.spec().completions
    }

    /// Completions of an Indexed job (always set for them).
    fn index_limit(&self) -> i32 {
        self.completions().unwrap_or(0)
    }

    fn suspended(&self) -> bool {
        self.spec().suspend == Some(true)
    }

    fn per_index(&self) -> Option<i32> {
        if is_indexed(&self.job) {
            self.spec().backoff_limit_per_index
        } else {
            None
        }
    }

    fn request_requeue(&mut self, after: Duration) {
        self.requeue = Some(self.requeue.map_or(after, |r| r.min(after)));
    }

    /// Pods with the finalizer, not counted yet (not in `uncounted`), with a valid index for
    /// Indexed jobs, that pass `filter` (upstream's getValidPodsWithFilter).
    fn valid_pods(&self, uncounted: Option<&HashSet<String>>, filter: impl Fn(&Pod) -> bool) -> Vec<&Pod> {
        let indexed = is_indexed(&self.job);
        let limit = self.index_limit();
        self.pods
            .iter()
            .filter(|p| has_finalizer(p))
            .filter(|p| {
                let uid = p.metadata.uid.clone().unwrap_or_default();
                !uncounted.is_some_and(|u| u.contains(&uid)) && !self.expected_removals.contains(&uid)
            })
            .filter(|p| !indexed || valid_index(p, limit).is_some())
            .filter(|p| filter(p))
            .collect()
    }

    async fn run(&mut self) -> Result<Action, ReconcileError> {
        let job = self.job.clone();
        let spec = logic::spec(&job);
        let policy = spec.pod_failure_policy.as_ref();
        let (new_succeeded, new_failed, new_backoff) = {
            let new_succeeded = self.valid_pods(Some(&self.uncounted_succeeded), |p| phase(p) == "Succeeded");
            let new_failed = self.valid_pods(Some(&self.uncounted_failed), |p| is_pod_failed(p, &job));
            let counted_new_failed = new_failed
                .iter()
                .filter(|p| match_pod_failure_policy(policy, p).count)
                .count();
            let backoff = self.state.backoff_of(&self.uid).next(&new_succeeded, &new_failed);
            (new_succeeded.len(), counted_new_failed, backoff)
        };
        self.succeeded =
            self.status.succeeded.unwrap_or(0) + count(new_succeeded) + count(self.uncounted_succeeded.len());
        self.failed =
            self.status.failed.unwrap_or(0) + count(new_failed) + count(self.uncounted_failed.len());
        if self.status.start_time.is_none() && !self.suspended() {
            self.status.start_time = Some(Time(self.now));
        }
        self.new_backoff = new_backoff;

        let backoff_limit = spec.backoff_limit.unwrap_or(6);
        let exceeds_backoff_limit = self.failed > backoff_limit;
        let existing = self.status.conditions.clone().unwrap_or_default();
        self.finished = find_condition(&existing, "SuccessCriteriaMet")
            .filter(|c| c.status == "True")
            .cloned();
        if self.finished.is_none() {
            if let Some(target) = find_condition(&existing, "FailureTarget").filter(|c| c.status == "True") {
                self.finished = Some(new_condition(
                    "Failed",
                    "True",
                    target.reason.as_deref().unwrap_or(""),
                    target.message.as_deref().unwrap_or(""),
                    self.now,
                ));
            } else if let Some(message) = self.fail_job_message() {
                self.finished = Some(new_condition(
                    "FailureTarget",
                    "True",
                    "PodFailurePolicy",
                    &message,
                    self.now,
                ));
            }
        }
        if self.finished.is_none() {
            if exceeds_backoff_limit || self.past_backoff_limit_on_failure(backoff_limit) {
                self.finished = Some(failure(
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                    self.now,
                ));
            } else if let Some(left) = self.active_deadline_left() {
                if left.is_zero() {
                    self.finished = Some(failure(
                        "DeadlineExceeded",
                        "Job was active longer than specified deadline",
                        self.now,
                    ));
                } else {
                    self.request_requeue(left);
                }
            }
        }
        if is_indexed(&job) {
            self.calculate_succeeded_indexes();
            self.succeeded = self.succeeded_indexes.total();
            if let Some(limit) = self.per_index() {
                let failed_indexes = self.calculate_failed_indexes(limit);
                if self.finished.is_none() {
                    if spec
                        .max_failed_indexes
                        .is_some_and(|max| failed_indexes.total() > max)
                    {
                        self.finished = Some(failure(
                            "MaxFailedIndexesExceeded",
                            "Job has exceeded the specified maximal number of failed indexes",
                            self.now,
                        ));
                    } else if failed_indexes.total() > 0
                        && failed_indexes.total() + self.succeeded_indexes.total() >= self.index_limit()
                    {
                        self.finished = Some(failure("FailedIndexes", "Job has failed indexes", self.now));
                    }
                }
                self.failed_indexes = Some(failed_indexes);
                self.delayed_per_index = self.pods_with_delayed_deletion_per_index();
            }
            if self.finished.is_none()
                && let Some(message) = logic::match_success_policy(
                    spec.success_policy.as_ref(),
                    self.index_limit(),
                    &self.succeeded_indexes,
                )
            {
                self.finished = Some(new_condition(
                    "SuccessCriteriaMet",
                    "True",
                    "SuccessPolicy",
                    &message,
                    self.now,
                ));
            }
        }

        let mut suspend_changed = false;
        let mut manage_error = None;
        let mut active = count(self.active.len());
        if self.finished.is_some() {
            let pods = self.active.clone();
            let (deleted_ready, deleted, error) = self.delete_active_pods(&pods).await;
            if deleted != active || !self.satisfied {
                // Pods may still be in flight; the job is declared finished in a later sync.
                self.finished = None;
            }
            active -= deleted;
            self.terminating += deleted;
            self.ready -= deleted_ready;
            manage_error = error;
        } else {
            let mut managed = false;
            if self.satisfied && job.metadata.deletion_timestamp.is_none() {
                let (now_active, error) = self.manage().await;
                active = now_active;
                manage_error = error;
                managed = true;
            }
            let complete = match self.completions() {
                None => self.succeeded > 0 && active == 0,
                Some(completions) => self.succeeded >= completions && active == 0,
            };
            if complete {
                self.finished = Some(new_condition(
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                    self.now,
                ));
            } else if managed {
                let suspended = self.suspended();
                let list = self.status.conditions.get_or_insert_with(Vec::new);
                if suspended {
                    if ensure_condition(
                        list,
                        "Suspended",
                        "True",
                        "JobSuspended",
                        "Job suspended",
                        self.now,
                    ) {
                        suspend_changed = true;
                        self.pending_events.push(("Suspended", "Job suspended"));
                    }
                } else if ensure_condition(list, "Suspended", "False", "JobResumed", "Job resumed", self.now)
                {
                    suspend_changed = true;
                    self.pending_events.push(("Resumed", "Job resumed"));
                    // activeDeadlineSeconds counts continuous activity: it restarts on resume.
                    self.status.start_time = Some(Time(self.now));
                }
            }
        }

        let needs_update = suspend_changed
            || active != self.status.active.unwrap_or(0)
            || Some(self.ready) != self.status.ready
            || Some(self.terminating) != self.status.terminating;
        self.status.active = Some(active);
        self.status.ready = Some(self.ready);
        self.status.terminating = Some(self.terminating);
        self.track_and_remove_finalizers(needs_update).await?;
        if let Some(err) = manage_error {
            return Err(err);
        }
        Ok(self.requeue.map_or_else(Action::await_change, Action::requeue))
    }

    fn fail_job_message(&self) -> Option<String> {
        let policy = self.spec().pod_failure_policy.as_ref()?;
        self.pods
            .iter()
            .filter(|p| is_pod_failed(p, &self.job))
            .find_map(|p| match_pod_failure_policy(Some(policy), p).fail_job)
    }

    /// Upstream's pastBackoffLimitOnFailure: container restarts of running pods of an
    /// OnFailure template count as failures.
    fn past_backoff_limit_on_failure(&self, limit: i32) -> bool {
        let template = self.spec().template.spec.as_ref();
        if template.and_then(|s| s.restart_policy.as_deref()) != Some("OnFailure") {
            return false;
        }
        let restarts: i32 = self
            .pods
            .iter()
            .filter(|p| matches!(phase(p), "Running" | "Pending"))
            .filter_map(|p| p.status.as_ref())
            .flat_map(|s| {
                s.init_container_statuses
                    .iter()
                    .flatten()
                    .chain(s.container_statuses.iter().flatten())
            })
            .map(|c| c.restart_count)
            .sum();
        if limit == 0 {
            restarts > 0
        } else {
            restarts >= limit
        }
    }

    /// The time left before activeDeadlineSeconds passes (zero once past), if it applies.
    fn active_deadline_left(&self) -> Option<Duration> {
        let seconds = self.spec().active_deadline_seconds?;
        let started = self.status.start_time.as_ref()?.0;
        if self.suspended() {
            return None;
        }
        let deadline = started.checked_add(SignedDuration::from_secs(seconds)).ok()?;
        let left = deadline.duration_since(self.now);
        Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
    }

    fn calculate_succeeded_indexes(&mut self) {
        let limit = self.index_limit();
        let previous = Intervals::parse(self.status.completed_indexes.as_deref().unwrap_or(""), limit);
        let mut new: Vec<i32> = self
            .pods
            .iter()
            .filter(|p| phase(p) == "Succeeded" && has_finalizer(p))
            .filter_map(|p| valid_index(p, limit))
            .collect();
        new.sort_unstable();
        new.dedup();
        self.succeeded_indexes = previous.with_indexes(&new);
        self.prev_succeeded_indexes = previous;
    }

    fn is_index_failed(&self, pod: &Pod, limit: i32) -> bool {
        if !is_pod_failed(pod, &self.job) {
            return false;
        }
        let matched = match_pod_failure_policy(self.spec().pod_failure_policy.as_ref(), pod);
        if matched.action == Some(PolicyAction::FailIndex) {
            return true;
        }
        matched.count && logic::index_failure_count(pod) >= limit
    }

    fn calculate_failed_indexes(&self, limit: i32) -> Intervals {
        let completions = self.index_limit();
        let previous = Intervals::parse(self.status.failed_indexes.as_deref().unwrap_or(""), completions);
        let mut new: Vec<i32> = self
            .pods
            .iter()
            .filter(|p| has_finalizer(p) && self.is_index_failed(p, limit))
            .filter_map(|p| valid_index(p, completions))
            .collect();
        new.sort_unstable();
        new.dedup();
        previous.with_indexes(&new)
    }

    /// The failed pod of each index whose removal waits for its replacement, so that the
    /// replacement can carry the index failure count (getPodsWithDelayedDeletionPerIndex).
    fn pods_with_delayed_deletion_per_index(&self) -> HashMap<i32, Pod> {
        let limit = self.index_limit();
        let active: HashSet<i32> = self.active.iter().filter_map(completion_index).collect();
        let failed_indexes = self.failed_indexes.clone().unwrap_or_default();
        let mut delayed: HashMap<i32, Pod> = HashMap::new();
        for pod in self.valid_pods(None, |p| is_pod_failed(p, &self.job)) {
            let Some(index) = valid_index(pod, limit) else {
                continue;
            };
            if self.succeeded_indexes.has(index) || failed_indexes.has(index) || active.contains(&index) {
                continue;
            }
            match delayed.get(&index) {
                Some(last)
                    if !(logic::index_absolute_failure_count(last)
                        <= logic::index_absolute_failure_count(pod)
                        && logic::finished_time(pod) >= logic::finished_time(last)) => {}
                _ => {
                    delayed.insert(index, pod.clone());
                }
            }
        }
        delayed
    }

    /// Deletes the active pods of a finishing job, keeping their finalizers so they are
    /// counted (deleteActivePods). Returns (ready deleted, deleted, error).
    async fn delete_active_pods(&self, pods: &[Pod]) -> (i32, i32, Option<ReconcileError>) {
        let results = future::join_all(pods.iter().map(|pod| self.delete_pod(pod))).await;
        let mut deleted = count(pods.len());
        let mut error = None;
        for result in results {
            if let Err(err) = result
                && !is_not_found(&err)
            {
                deleted -= 1;
                error.get_or_insert(ReconcileError::Kube(err));
            }
        }
        let ready = count(pods.iter().filter(|p| pods::is_ready(p)).count());
        (ready, deleted, error)
    }

    async fn delete_pod(&self, pod: &Pod) -> Result<(), kube::Error> {
        let name = pod.name_any();
        match self.pod_api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                self.state
                    .publish(
                        &self.job,
                        EventType::Normal,
                        "SuccessfulDelete",
                        format!("Deleted pod: {name}"),
                    )
                    .await;
                Ok(())
            }
            Err(err) if is_not_found(&err) => Err(err),
            Err(err) => {
                self.state
                    .publish(
                        &self.job,
                        EventType::Warning,
                        "FailedDelete",
                        format!("Error deleting: {}", api_message(&err)),
                    )
                    .await;
                Err(err)
            }
        }
    }

    /// Removes the finalizers of pods that are not wanted, then deletes them, so they are not
    /// counted (deleteJobPods). Returns (ready deleted, deleted, error).
    async fn delete_job_pods(&self, pods: &[Pod]) -> (i32, i32, Option<ReconcileError>) {
        let keys: HashSet<String> = pods.iter().map(pods::key).collect();
        self.state.expectations.expect_deletions(&self.uid, keys);
        let results = future::join_all(pods.iter().map(|pod| async move {
            if has_finalizer(pod) {
                match self
                    .pod_api
                    .patch(
                        &pod.name_any(),
                        &PatchParams::default(),
                        &remove_finalizer_patch(),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(err) => return (pod, Err(err), false),
                }
            }
            (pod, self.delete_pod(pod).await, true)
        }))
        .await;
        let mut deleted = count(pods.len());
        let mut ready = 0;
        let mut error = None;
        for (pod, result, attempted) in results {
            if let Err(err) = result {
                self.state
                    .expectations
                    .deletion_observed(&self.uid, &pods::key(pod));
                if !is_not_found(&err) {
                    deleted -= 1;
                    error.get_or_insert(ReconcileError::Kube(err));
                }
            }
            if attempted && pods::is_ready(pod) {
                ready += 1;
            }
        }
        (ready, deleted, error)
    }

    /// Upstream's manageJob: deletes or creates pods towards the wanted number of active
    /// ones, respecting the pod failure backoff. Returns the active count and any error.
    async fn manage(&mut self) -> (i32, Option<ReconcileError>) {
        let mut active = count(self.active.len());
        let parallelism = self.spec().parallelism.unwrap_or(1);
        if self.suspended() {
            let victims = self.pods_for_removal(self.active.len());
            let (ready, removed, error) = self.delete_job_pods(&victims).await;
            active -= removed;
            self.terminating += removed;
            self.ready -= ready;
            return (active, error);
        }
        let want = match self.completions() {
            None if self.succeeded > 0 => active,
            None => parallelism,
            Some(completions) => (completions - self.succeeded).min(parallelism).max(0),
        };
        let remove_at_least = usize::try_from(active - want).unwrap_or(0);
        let mut victims = self.pods_for_removal(remove_at_least);
        victims.truncate(MAX_CREATE_DELETE);
        if !victims.is_empty() {
            let (ready, removed, error) = self.delete_job_pods(&victims).await;
            active -= removed;
            self.terminating += removed;
            self.ready -= ready;
            return (active, error);
        }
        let terminating = if only_replace_failed(&self.job) {
            self.terminating
        } else {
            0
        };
        let diff = want - terminating - active;
        if diff <= 0 {
            return (active, None);
        }
        if self.per_index().is_none() {
            let remaining = self.new_backoff.remaining(self.now);
            if !remaining.is_zero() {
                self.request_requeue(remaining);
                return (0, None);
            }
        }
        let mut diff = usize::try_from(diff).unwrap_or(0).min(MAX_CREATE_DELETE);
        let mut indexes: Vec<Option<i32>> = vec![None; diff];
        if is_indexed(&self.job) {
            let mut pending = self.first_pending_indexes(diff);
            if self.per_index().is_some() {
                let (now, wait) = self.creatable_indexes(&pending);
                if now.is_empty() && !wait.is_zero() {
                    self.request_requeue(wait);
                    return (0, None);
                }
                pending = now;
            }
            diff = pending.len();
            indexes = pending.into_iter().map(Some).collect();
        }
        self.state.expectations.expect_creations(&self.uid, diff);
        active += count(diff);
        let template = self.pod_template();
        let mut first_error: Option<kube::Error> = None;
        let mut remaining = diff;
        let mut batch = remaining.min(1);
        let mut queue = indexes.into_iter();
        while batch > 0 {
            let batch_indexes: Vec<Option<i32>> = queue.by_ref().take(batch).collect();
            let results = future::join_all(
                batch_indexes
                    .into_iter()
                    .map(|index| self.create_pod(&template, index)),
            )
            .await;
            let mut batch_failed = false;
            for result in results {
                match result {
                    Ok(()) => {}
                    Err(err) if namespace_terminating(&err) => {}
                    Err(err) => {
                        self.state.expectations.creation_observed(&self.uid);
                        active -= 1;
                        batch_failed = true;
                        first_error.get_or_insert(err);
                    }
                }
            }
            remaining -= batch;
            if batch_failed && remaining > 0 {
                // Slow start: one failing batch skips the rest; a later sync retries.
                active -= count(remaining);
                for _ in 0..remaining {
                    self.state.expectations.creation_observed(&self.uid);
                }
                break;
            }
            batch = (batch * 2).min(remaining);
        }
        (active, first_error.map(ReconcileError::Kube))
    }

    /// Active pods to remove: for Indexed jobs, duplicates and pods without a valid index
    /// first; then the least advanced (activePodsForRemoval).
    fn pods_for_removal(&self, at_least: usize) -> Vec<Pod> {
        let now = self.now;
        let order = |a: &Pod, b: &Pod| pods::deletion_order((a, 0), (b, 0), now);
        let mut remove: Vec<Pod> = Vec::new();
        let mut left: Vec<Pod> = Vec::new();
        if is_indexed(&self.job) {
            let limit = self.index_limit();
            let mut sorted = self.active.clone();
            sorted.sort_by_key(|p| completion_index(p).unwrap_or(-1));
            let mut groups: Vec<(Option<i32>, Vec<Pod>)> = Vec::new();
            for pod in sorted {
                let index = completion_index(&pod);
                match groups.last_mut() {
                    Some((last, group)) if *last == index => group.push(pod),
                    _ => groups.push((index, vec![pod])),
                }
            }
            for (index, mut group) in groups {
                match index {
                    None => remove.extend(group),
                    Some(i) if i >= limit => remove.extend(group),
                    Some(_) => {
                        group.sort_by(|a, b| order(a, b));
                        if let Some(keep) = group.pop() {
                            left.push(keep);
                        }
                        remove.extend(group);
                    }
                }
            }
        } else {
            left = self.active.clone();
        }
        if remove.len() < at_least {
            left.sort_by(|a, b| order(a, b));
            let more = (at_least - remove.len()).min(left.len());
            remove.extend(left.into_iter().take(more));
        }
        remove
    }

    /// The first `n` indexes neither succeeded, failed, active nor (when only failed pods
    /// are replaced) terminating.
    fn first_pending_indexes(&self, n: usize) -> Vec<i32> {
        let limit = self.index_limit();
        let mut taken: Vec<i32> = self.active.iter().filter_map(completion_index).collect();
        if only_replace_failed(&self.job) {
            taken.extend(
                self.pods
                    .iter()
                    .filter(|p| pods::is_terminating(p))
                    .filter_map(completion_index),
            );
        }
        taken.sort_unstable();
        taken.dedup();
        let mut non_pending = self.succeeded_indexes.with_indexes(&taken);
        if let Some(failed) = &self.failed_indexes {
            non_pending = non_pending.merge(failed);
        }
        (0..limit).filter(|i| !non_pending.has(*i)).take(n).collect()
    }

    /// The indexes whose per-index backoff has passed, or the shortest wait if none
    /// (getPodCreationInfoForIndependentIndexes).
    fn creatable_indexes(&self, indexes: &[i32]) -> (Vec<i32>, Duration) {
        let mut now = Vec::new();
        let mut wait: Option<Duration> = None;
        for index in indexes {
            let left = self.delayed_per_index.get(index).map_or(Duration::ZERO, |pod| {
                logic::remaining_for(
                    logic::index_absolute_failure_count(pod).saturating_add(1),
                    logic::finished_time(pod),
                    self.now,
                )
            });
            if left.is_zero() {
                now.push(*index);
            } else {
                wait = Some(wait.map_or(left, |w| w.min(left)));
            }
        }
        if now.is_empty() {
            (now, wait.unwrap_or(Duration::ZERO))
        } else {
            (now, Duration::ZERO)
        }
    }

    /// The job's template with the tracking finalizer and, for Indexed jobs, the
    /// JOB_COMPLETION_INDEX variable in every container.
    fn pod_template(&self) -> PodTemplateSpec {
        let mut template = self.spec().template.clone();
        if is_indexed(&self.job)
            && let Some(spec) = template.spec.as_mut()
        {
            let containers = spec
                .init_containers
                .iter_mut()
                .flatten()
                .chain(spec.containers.iter_mut());
            for container in containers {
                let env = container.env.get_or_insert_with(Vec::new);
                if env.iter().any(|e| e.name == COMPLETION_INDEX_ENV) {
                    continue;
                }
                env.push(EnvVar {
                    name: COMPLETION_INDEX_ENV.to_owned(),
                    value: None,
                    value_from: Some(EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: None,
                            field_path: format!("metadata.labels['{COMPLETION_INDEX}']"),
                        }),
                        ..EnvVarSource::default()
                    }),
                });
            }
        }
        let meta = template.metadata.get_or_insert_with(Default::default);
        let finalizers = meta.finalizers.get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
            finalizers.push(TRACKING_FINALIZER.to_owned());
        }
        template
    }

    async fn create_pod(&self, template: &PodTemplateSpec, index: Option<i32>) -> Result<(), kube::Error> {
        let name = self.job.name_any();
        let namespace = self.job.namespace().unwrap_or_default();
        let mut template = template.clone();
        if let Some(index) = index {
            let meta = template.metadata.get_or_insert_with(Default::default);
            let value = index.to_string();
            meta.annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(COMPLETION_INDEX.to_owned(), value.clone());
            meta.labels
                .get_or_insert_with(BTreeMap::new)
                .insert(COMPLETION_INDEX.to_owned(), value);
            if let Some(spec) = template.spec.as_mut() {
                spec.hostname = Some(format!("{name}-{index}"));
            }
            if self.per_index().is_some() {
                let (failures, ignored) = self.new_index_failure_counts(self.delayed_per_index.get(&index));
                let annotations = meta.annotations.get_or_insert_with(BTreeMap::new);
                annotations.insert(INDEX_FAILURE_COUNT.to_owned(), failures.to_string());
                if ignored > 0 {
                    annotations.insert(INDEX_IGNORED_FAILURE_COUNT.to_owned(), ignored.to_string());
                }
            }
        }
        let mut pod =
            match pods::pod_from_template(&template, &namespace, &name, pods::controller_ref(&self.job)) {
                Ok(pod) => pod,
                Err(err) => {
                    return Err(kube::Error::Api(Box::new(kube::core::Status::failure(
                        &err.to_string(),
                        "Invalid",
                    ))));
                }
            };
        if let Some(index) = index {
            pod.metadata.generate_name = Some(logic::generate_name_with_index(&name, index));
        }
        match self.pod_api.create(&PostParams::default(), &pod).await {
            Ok(created) => {
                self.state
                    .publish(
                        &self.job,
                        EventType::Normal,
                        "SuccessfulCreate",
                        format!("Created pod: {}", created.name_any()),
                    )
                    .await;
                Ok(())
            }
            Err(err) => {
                if !namespace_terminating(&err) {
                    self.state
                        .publish(
                            &self.job,
                            EventType::Warning,
                            "FailedCreate",
                            format!("Error creating: {}", api_message(&err)),
                        )
                        .await;
                }
                Err(err)
            }
        }
    }

    /// The failure counts a replacement of `replaced` starts with (getNewIndexFailureCounts).
    fn new_index_failure_counts(&self, replaced: Option<&Pod>) -> (i32, i32) {
        let Some(pod) = replaced else {
            return (0, 0);
        };
        let failures = logic::index_failure_count(pod);
        let ignored = logic::index_absolute_failure_count(pod) - failures;
        if match_pod_failure_policy(self.spec().pod_failure_policy.as_ref(), pod).count {
            (failures.saturating_add(1), ignored)
        } else {
            (failures, ignored.saturating_add(1))
        }
    }

    fn can_remove_finalizer(&self, pod: &Pod, considered_failed: bool) -> bool {
        if self.job.metadata.deletion_timestamp.is_some()
            || self.finished.is_some()
            || phase(pod) == "Succeeded"
        {
            return true;
        }
        if !considered_failed {
            return false;
        }
        if self.per_index().is_some()
            && let Some(index) = completion_index(pod)
            && let Some(delayed) = self.delayed_per_index.get(&index)
            && delayed.metadata.uid == pod.metadata.uid
        {
            return false;
        }
        true
    }

    /// Upstream's trackJobStatusAndRemoveFinalizers: records finished pods in
    /// `uncountedTerminatedPods`, removes their finalizers, moves them to the counters, and
    /// declares the job finished once nothing is uncounted or terminating.
    async fn track_and_remove_finalizers(&mut self, mut needs_flush: bool) -> Result<(), ReconcileError> {
        let indexed = is_indexed(&self.job);
        let limit = self.index_limit();
        if indexed {
            self.pods.sort_by_key(|p| completion_index(p).unwrap_or(-1));
        }
        let mut with_finalizer: HashSet<String> = self
            .pods
            .iter()
            .filter(|p| has_finalizer(p))
            .filter_map(|p| p.metadata.uid.clone())
            .filter(|uid| !self.expected_removals.contains(uid))
            .collect();
        if clean_uncounted(&mut self.status, &with_finalizer) {
            needs_flush = true;
        }
        let policy = self.spec().pod_failure_policy.clone();
        let finished_as_failure = self
            .finished
            .as_ref()
            .is_some_and(|c| !is_success_criteria_met(Some(c)));
        let mut to_remove: Vec<Pod> = Vec::new();
        let mut new_succeeded_indexes: Vec<i32> = Vec::new();
        let mut new_uncounted_succeeded: Vec<String> = Vec::new();
        let mut new_uncounted_failed: Vec<String> = Vec::new();
        let mut reached_max = false;
        let (mut uncounted_succeeded, mut uncounted_failed) = {
            let u = self.status.uncounted_terminated_pods.clone().unwrap_or_default();
            (u.succeeded.unwrap_or_default(), u.failed.unwrap_or_default())
        };
        for pod in &self.pods {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            if !has_finalizer(pod) || self.expected_removals.contains(&uid) {
                continue;
            }
            let considered_failed = is_pod_failed(pod, &self.job);
            if !self.can_remove_finalizer(pod, considered_failed) {
                continue;
            }
            to_remove.push(pod.clone());
            if phase(pod) == "Succeeded" && !self.uncounted_failed.contains(&uid) {
                if indexed {
                    if let Some(index) = valid_index(pod, limit)
                        && !self.prev_succeeded_indexes.has(index)
                    {
                        new_succeeded_indexes.push(index);
                        needs_flush = true;
                    }
                } else if !self.uncounted_succeeded.contains(&uid) {
                    needs_flush = true;
                    uncounted_succeeded.push(uid.clone());
                    new_uncounted_succeeded.push(uid);
                }
            } else if (considered_failed || finished_as_failure)
                && !self.uncounted_failed.contains(&uid)
                && (!indexed || valid_index(pod, limit).is_some())
                && match_pod_failure_policy(policy.as_ref(), pod).count
            {
                needs_flush = true;
                uncounted_failed.push(uid.clone());
                new_uncounted_failed.push(uid);
            }
            if new_succeeded_indexes.len() + uncounted_succeeded.len() + uncounted_failed.len()
                >= MAX_UNCOUNTED
            {
                reached_max = true;
                break;
            }
        }
        self.status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
            succeeded: Some(uncounted_succeeded),
            failed: Some(uncounted_failed),
        });
        if indexed {
            new_succeeded_indexes.sort_unstable();
            self.succeeded_indexes = self.succeeded_indexes.with_indexes(&new_succeeded_indexes);
            let rendered = self.succeeded_indexes.render();
            if rendered != self.status.completed_indexes.clone().unwrap_or_default() {
                needs_flush = true;
            }
            self.status.succeeded = Some(self.succeeded_indexes.total());
            self.status.completed_indexes = Some(rendered);
            let failed = self.failed_indexes.as_ref().map(Intervals::render);
            if failed != self.status.failed_indexes {
                self.status.failed_indexes = failed;
                needs_flush = true;
            }
        }
        if let Some(target) = self.finished.clone().filter(|c| c.type_ == "FailureTarget") {
            self.status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(target.clone());
            needs_flush = true;
            self.finished = Some(new_condition(
                "Failed",
                "True",
                target.reason.as_deref().unwrap_or(""),
                target.message.as_deref().unwrap_or(""),
                self.now,
            ));
        }
        if let Some(met) = self.finished.clone().filter(|c| is_success_criteria_met(Some(c))) {
            let list = self.status.conditions.get_or_insert_with(Vec::new);
            if !list
                .iter()
                .any(|c| c.type_ == "SuccessCriteriaMet" && c.status == "True")
            {
                list.push(met.clone());
                needs_flush = true;
            }
            self.finished = Some(new_condition(
                "Complete",
                "True",
                met.reason.as_deref().unwrap_or(""),
                met.message.as_deref().unwrap_or(""),
                self.now,
            ));
        }

        // Flush the uncounted pods (and interim conditions) before removing finalizers.
        if needs_flush {
            self.write_status().await?;
            if let Ok(mut backoff) = self.state.backoff.lock() {
                backoff.insert(self.uid.clone(), self.new_backoff.clone());
            }
            needs_flush = false;
        }
        let mut removal_error = None;
        if !to_remove.is_empty() {
            if let Ok(mut removing) = self.state.removing.lock() {
                let set = removing.entry(self.uid.clone()).or_default();
                set.extend(to_remove.iter().filter_map(|p| p.metadata.uid.clone()));
            }
            let results = future::join_all(to_remove.iter().map(|pod| {
                let api = self.pod_api.clone();
                async move {
                    api.patch(
                        &pod.name_any(),
                        &PatchParams::default(),
                        &remove_finalizer_patch(),
                    )
                    .await
                }
            }))
            .await;
            for (pod, result) in to_remove.iter().zip(results) {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                match result {
                    Ok(_) => {
                        with_finalizer.remove(&uid);
                    }
                    Err(err) => {
                        if let Ok(mut removing) = self.state.removing.lock()
                            && let Some(set) = removing.get_mut(&self.uid)
                        {
                            set.remove(&uid);
                        }
                        if is_not_found(&err) {
                            with_finalizer.remove(&uid);
                        } else {
                            removal_error.get_or_insert(ReconcileError::Kube(err));
                        }
                    }
                }
            }
        }
        if clean_uncounted(&mut self.status, &with_finalizer) {
            needs_flush = true;
        }
        if let Some(err) = removal_error {
            if needs_flush {
                self.write_status().await?;
            }
            return Err(err);
        }
        let finished = !reached_max && self.enact_finished();
        if finished || needs_flush {
            self.write_status().await?;
            if finished {
                self.record_finished().await;
                if let Ok(mut marked) = self.state.finished.lock() {
                    marked.insert(self.uid.clone());
                }
            }
        }
        Ok(())
    }

    /// Adds the Complete or Failed condition once nothing is uncounted or terminating.
    fn enact_finished(&mut self) -> bool {
        let Some(condition) = self.finished.clone() else {
            return false;
        };
        let uncounted = self.status.uncounted_terminated_pods.clone().unwrap_or_default();
        if uncounted.succeeded.is_some_and(|s| !s.is_empty())
            || uncounted.failed.is_some_and(|f| !f.is_empty())
        {
            return false;
        }
        if self.terminating > 0 {
            return false;
        }
        let list = self.status.conditions.get_or_insert_with(Vec::new);
        ensure_condition(
            list,
            &condition.type_,
            &condition.status,
            condition.reason.as_deref().unwrap_or(""),
            condition.message.as_deref().unwrap_or(""),
            self.now,
        );
        if condition.type_ == "Complete" {
            self.status.completion_time = condition.last_transition_time.clone();
        }
        true
    }

    async fn record_finished(&self) {
        let Some(condition) = &self.finished else {
            return;
        };
        if condition.type_ == "Complete" {
            if let Some(completions) = self.completions()
                && self.status.succeeded.unwrap_or(0) > completions
            {
                self.state
                    .publish(
                        &self.job,
                        EventType::Warning,
                        "TooManySucceededPods",
                        "Too many succeeded pods running after completion count reached".to_owned(),
                    )
                    .await;
            }
            self.state
                .publish(
                    &self.job,
                    EventType::Normal,
                    "Completed",
                    "Job completed".to_owned(),
                )
                .await;
        } else {
            self.state
                .publish(
                    &self.job,
                    EventType::Warning,
                    condition.reason.as_deref().unwrap_or(""),
                    condition.message.clone().unwrap_or_default(),
                )
                .await;
        }
    }

    /// Writes the status (PUT with the job's resourceVersion, so a stale cache conflicts).
    async fn write_status(&mut self) -> Result<(), ReconcileError> {
        let mut job = self.job.clone();
        job.status = Some(wire_status(&self.status));
        match self
            .api
            .replace_status(&self.job.name_any(), &PostParams::default(), &job)
            .await
        {
            Ok(written) => {
                self.job = written;
                for (reason, message) in std::mem::take(&mut self.pending_events) {
                    self.state
                        .publish(&self.job, EventType::Normal, reason, message.to_owned())
                        .await;
                }
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }
}

fn failure(reason: &str, message: &str, now: Timestamp) -> JobCondition {
    new_condition("FailureTarget", "True", reason, message, now)
}

/// Moves the uncounted pods whose finalizer is gone to the counters (upstream's
/// cleanUncountedPodsWithoutFinalizers). Returns whether anything changed.
fn clean_uncounted(status: &mut JobStatus, with_finalizer: &HashSet<String>) -> bool {
    let uncounted = status
        .uncounted_terminated_pods
        .get_or_insert_with(Default::default);
    let mut changed = false;
    let succeeded = uncounted.succeeded.take().unwrap_or_default();
    let kept: Vec<String> = succeeded
        .iter()
        .filter(|u| with_finalizer.contains(*u))
        .cloned()
        .collect();
    let counted_succeeded = succeeded.len() - kept.len();
    uncounted.succeeded = Some(kept);
    let failed = uncounted.failed.take().unwrap_or_default();
    let kept: Vec<String> = failed
        .iter()
        .filter(|u| with_finalizer.contains(*u))
        .cloned()
        .collect();
    let counted_failed = failed.len() - kept.len();
    uncounted.failed = Some(kept);
    if counted_succeeded > 0 {
        changed = true;
        status.succeeded = Some(status.succeeded.unwrap_or(0) + count(counted_succeeded));
    }
    if counted_failed > 0 {
        changed = true;
        status.failed = Some(status.failed.unwrap_or(0) + count(counted_failed));
    }
    changed
}

/// The status as upstream's JSON has it: zero counters and empty lists omitted, `ready`,
/// `terminating` and `uncountedTerminatedPods` always present.
fn wire_status(status: &JobStatus) -> JobStatus {
    let positive = |n: Option<i32>| n.filter(|n| *n != 0);
    let non_empty = |v: Option<Vec<String>>| v.filter(|v| !v.is_empty());
    let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
    JobStatus {
        active: positive(status.active),
        succeeded: positive(status.succeeded),
        failed: positive(status.failed),
        ready: status.ready,
        terminating: status.terminating,
        completed_indexes: status.completed_indexes.clone().filter(|s| !s.is_empty()),
        failed_indexes: status.failed_indexes.clone(),
        conditions: status.conditions.clone().filter(|c| !c.is_empty()),
        start_time: status.start_time.clone(),
        completion_time: status.completion_time.clone(),
        uncounted_terminated_pods: Some(UncountedTerminatedPods {
            succeeded: non_empty(uncounted.succeeded),
            failed: non_empty(uncounted.failed),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_appended_only_when_true_and_replaced_on_change() {
        let now = Timestamp::from_second(1_000).unwrap();
        let mut list = Vec::new();
        assert!(!ensure_condition(
            &mut list,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now
        ));
        assert!(list.is_empty());
        assert!(ensure_condition(
            &mut list,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now
        ));
        assert!(!ensure_condition(
            &mut list,
            "Suspended",
            "True",
            "JobSuspended",
            "Job suspended",
            now
        ));
        assert!(ensure_condition(
            &mut list,
            "Suspended",
            "False",
            "JobResumed",
            "Job resumed",
            now
        ));
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].status, "False");
    }

    #[test]
    fn uncounted_pods_without_finalizer_move_to_the_counters() {
        let mut status = JobStatus {
            succeeded: Some(1),
            uncounted_terminated_pods: Some(UncountedTerminatedPods {
                succeeded: Some(vec!["a".into(), "b".into()]),
                failed: Some(vec!["c".into()]),
            }),
            ..JobStatus::default()
        };
        let with: HashSet<String> = ["b".to_owned()].into();
        assert!(clean_uncounted(&mut status, &with));
        assert_eq!(status.succeeded, Some(2));
        assert_eq!(status.failed, Some(1));
        let wire = serde_json::to_value(wire_status(&status)).unwrap();
        assert_eq!(
            wire["uncountedTerminatedPods"],
            serde_json::json!({"succeeded": ["b"]})
        );
        assert!(!clean_uncounted(&mut status, &with));
    }
}
