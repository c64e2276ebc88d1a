//! The cronjob controller (upstream: pkg/controller/cronjob, ControllerV2): creates a Job per
//! scheduled time (named `<cronjob>-<minutes since the epoch>`, annotated with
//! `batch.kubernetes.io/cronjob-scheduled-timestamp`), honours timeZone, suspend,
//! startingDeadlineSeconds and concurrencyPolicy, keeps `status.active`, `lastScheduleTime`
//! and `lastSuccessfulTime`, prunes finished Jobs beyond the history limits, and is requeued
//! exactly at the next scheduled time (never polled). The schedule itself is [`schedule`].
//!
//! It owns Jobs it creates and CronJobs' status; it never changes a CronJob's spec or a Job.

mod schedule;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use self::schedule::Schedule;
use crate::harness::{self, Context, ReconcileError, is_already_exists, is_not_found};
use crate::pods::{self, controller_of};

/// The cronjob controller's name in `--controllers`.
pub const NAME: &str = "cronjob-controller";
/// The reporting component of its events.
const COMPONENT: &str = "cronjob-controller";
/// The annotation recording a Job's scheduled time.
const SCHEDULED_TIMESTAMP: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Added to every requeue so the sync runs just after the scheduled time.
const NEXT_SCHEDULE_DELTA: Duration = Duration::from_millis(100);
/// More missed start times than this are reported as too many.
const MANY_MISSED: i64 = 100;

struct State {
    jobs: Store<Job>,
    context: Arc<Context>,
}

/// Runs the cronjob controller.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let (jobs, writer) = reflector::store::<Job>();
    let job_events = watcher(Api::<Job>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .touched_objects();
    let controller = Controller::new(Api::<CronJob>::all(client), watcher::Config::default()).watches_stream(
        job_events,
        |job: Job| {
            let namespace = job.namespace().unwrap_or_default();
            controller_of(&job.metadata)
                .filter(|r| r.kind == "CronJob" && r.api_version == "batch/v1")
                .map(|r| ObjectRef::<CronJob>::new(&r.name).within(&namespace))
        },
    );
    let state = Arc::new(State {
        jobs,
        context: context.clone(),
    });
    harness::run(NAME, controller, context, shutdown, move |cron_job, context| {
        let state = state.clone();
        async move { Box::pin(reconcile(cron_job, context, state)).await }
    })
    .await;
}

async fn publish(state: &State, cron_job: &CronJob, type_: EventType, reason: &str, note: String) {
    state
        .context
        .publish(COMPONENT, &cron_job.object_ref(&()), type_, reason, note)
        .await;
}

fn finished_condition(job: &Job) -> Option<&str> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        .map(|c| c.type_.as_str())
}

fn active_list(cron_job: &CronJob) -> &[ObjectReference] {
    cron_job
        .status
        .as_ref()
        .and_then(|s| s.active.as_deref())
        .unwrap_or_default()
}

fn in_active_list(cron_job: &CronJob, uid: &str) -> bool {
    active_list(cron_job)
        .iter()
        .any(|r| r.uid.as_deref() == Some(uid))
}

fn delete_from_active_list(cron_job: &mut CronJob, uid: &str) {
    let status = cron_job.status.get_or_insert_with(Default::default);
    let kept: Vec<ObjectReference> = status
        .active
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.uid.as_deref() != Some(uid))
        .collect();
    status.active = Some(kept);
}

/// What `mostRecentScheduleTime` finds: the earliest time considered, the most recent unmet
/// scheduled time, and how many were missed.
struct Recent {
    earliest: Timestamp,
    most_recent: Option<Timestamp>,
    missed: i64,
}

/// Upstream's mostRecentScheduleTime.
fn most_recent_schedule_time(
    cron_job: &CronJob,
    now: Timestamp,
    schedule: &Schedule,
    with_starting_deadline: bool,
) -> Result<Recent, String> {
    let mut earliest = cron_job
        .status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .or(cron_job.metadata.creation_timestamp.as_ref())
        .map_or(now, |t| t.0);
    if with_starting_deadline
        && let Some(deadline) = cron_job.spec.as_ref().and_then(|s| s.starting_deadline_seconds)
        && let Ok(limit) = now.checked_sub(SignedDuration::from_secs(deadline))
        && limit > earliest
    {
        earliest = limit;
    }
    let none = |earliest| Recent {
        earliest,
        most_recent: None,
        missed: 0,
    };
    let Some(t1) = schedule.next(earliest) else {
        return Ok(none(earliest));
    };
    if now < t1 {
        return Ok(none(earliest));
    }
    let Some(t2) = schedule.next(t1) else {
        return Ok(Recent {
            earliest,
            most_recent: Some(t1),
            missed: 0,
        });
    };
    if now < t2 {
        return Ok(Recent {
            earliest,
            most_recent: Some(t1),
            missed: 0,
        });
    }
    let between = t2.duration_since(t1).as_secs();
    if between < 1 {
        return Err("time difference between two schedules is less than 1 second".to_owned());
    }
    let elapsed = now.duration_since(t1).as_secs();
    let missed = elapsed / between + 1;
    let potential = t1
        .checked_add(SignedDuration::from_secs((missed - 2).saturating_mul(between)))
        .unwrap_or(t1);
    let mut most_recent = None;
    let mut t = schedule.next(potential);
    while let Some(at) = t {
        if at > now {
            break;
        }
        most_recent = Some(at);
        t = schedule.next(at);
    }
    Ok(Recent {
        earliest,
        most_recent,
        missed,
    })
}

/// How long until the next scheduled time (plus a small delta), from `now`.
fn next_schedule_delay(cron_job: &CronJob, now: Timestamp, schedule: &Schedule) -> Option<Duration> {
    let from = match most_recent_schedule_time(cron_job, now, schedule, false) {
        Err(_) => now,
        Ok(Recent {
            most_recent: Some(t), ..
        }) => t,
        Ok(Recent {
            earliest, missed: 0, ..
        }) => earliest,
        Ok(_) => now,
    };
    let next = schedule.next(from)?;
    let wait = Duration::try_from(next.duration_since(now)).unwrap_or(Duration::ZERO);
    Some(wait + NEXT_SCHEDULE_DELTA)
}

/// The schedule string as upstream's formatSchedule builds it, and whether it carries its
/// own `TZ`.
fn format_schedule(cron_job: &CronJob) -> (String, bool) {
    let spec = cron_job.spec.as_ref();
    let text = spec.map(|s| s.schedule.clone()).unwrap_or_default();
    if text.contains("TZ") {
        return (text, true);
    }
    match spec.and_then(|s| s.time_zone.as_deref()) {
        Some(zone) if schedule::load_zone(zone).is_ok() => (format!("TZ={zone} {text}"), false),
        _ => (text, false),
    }
}

/// Go's RFC 3339 rendering of `t` in `zone` (`Z` for UTC, else the offset).
fn rfc3339_in(t: Timestamp, zone: &str) -> String {
    let Ok(tz) = schedule::load_zone(zone) else {
        return t.to_string();
    };
    let zoned = t.to_zoned(tz);
    let offset = zoned.offset().seconds();
    let base = zoned.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    if offset == 0 {
        return format!("{base}Z");
    }
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.unsigned_abs();
    format!("{base}{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60)
}

fn job_name(cron_job: &CronJob, scheduled: Timestamp) -> String {
    format!("{}-{}", cron_job.name_any(), scheduled.as_second().div_euclid(60))
}

fn job_from_template(cron_job: &CronJob, scheduled: Timestamp) -> Result<Job, String> {
    let spec = cron_job.spec.clone().unwrap_or_default();
    let template = spec.job_template;
    let meta = template.metadata.unwrap_or_default();
    let zone = spec.time_zone.unwrap_or_default();
    schedule::load_zone(&zone)?;
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(SCHEDULED_TIMESTAMP.to_owned(), rfc3339_in(scheduled, &zone));
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(job_name(cron_job, scheduled)),
            namespace: cron_job.namespace(),
            labels: meta.labels.filter(|l| !l.is_empty()),
            annotations: Some(annotations),
            owner_references: Some(vec![pods::controller_ref(cron_job)]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    })
}

fn reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".to_owned()),
        kind: Some("Job".to_owned()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// Upstream's byJobStartTime: started before unstarted, earlier first, then by name.
fn by_start_time(a: &Job, b: &Job) -> std::cmp::Ordering {
    let start = |j: &Job| j.status.as_ref().and_then(|s| s.start_time.as_ref()).map(|t| t.0);
    match (start(a), start(b)) {
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(_), None) => std::cmp::Ordering::Less,
        (x, y) if x == y => a.name_any().cmp(&b.name_any()),
        (x, y) => x.cmp(&y),
    }
}

async fn delete_job(state: &State, cron_job: &mut CronJob, job: &Job) -> bool {
    let api: Api<Job> = Api::namespaced(state.context.client.clone(), &job.namespace().unwrap_or_default());
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    if let Err(err) = api.delete(&job.name_any(), &params).await {
        publish(
            state,
            cron_job,
            EventType::Warning,
            "FailedDelete",
            format!("Deleted job: {}", api_message(&err)),
        )
        .await;
        return false;
    }
    delete_from_active_list(cron_job, job.uid().as_deref().unwrap_or(""));
    publish(
        state,
        cron_job,
        EventType::Normal,
        "SuccessfulDelete",
        format!("Deleted job {}", job.name_any()),
    )
    .await;
    true
}

fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Deletes the oldest finished jobs beyond the history limits. Returns whether the status
/// changed.
async fn cleanup_finished_jobs(state: &State, cron_job: &mut CronJob, jobs: &[Job]) -> bool {
    let spec = cron_job.spec.clone().unwrap_or_default();
    if spec.failed_jobs_history_limit.is_none() && spec.successful_jobs_history_limit.is_none() {
        return false;
    }
    let mut changed = false;
    for (kind, limit) in [
        ("Complete", spec.successful_jobs_history_limit),
        ("Failed", spec.failed_jobs_history_limit),
    ] {
        let Some(limit) = limit else {
            continue;
        };
        let mut finished: Vec<&Job> = jobs
            .iter()
            .filter(|j| finished_condition(j) == Some(kind))
            .collect();
        let excess = finished.len().saturating_sub(usize::try_from(limit).unwrap_or(0));
        if excess == 0 {
            continue;
        }
        finished.sort_by(|a, b| by_start_time(a, b));
        for job in finished.into_iter().take(excess) {
            if delete_job(state, cron_job, job).await {
                changed = true;
            }
        }
    }
    changed
}

async fn reconcile(
    cron_job: Arc<CronJob>,
    context: Arc<Context>,
    state: Arc<State>,
) -> Result<Action, ReconcileError> {
    if state.jobs.wait_until_ready().await.is_err() {
        return Ok(Action::await_change());
    }
    let namespace = cron_job.namespace().unwrap_or_default();
    let name = cron_job.name_any();
    let jobs: Vec<Job> = state
        .jobs
        .state()
        .iter()
        .filter(|j| j.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|j| controller_of(&j.metadata).is_some_and(|r| r.name == name))
        .map(|j| (**j).clone())
        .collect();
    let mut copy = (*cron_job).clone();
    let cleaned = cleanup_finished_jobs(&state, &mut copy, &jobs).await;
    let (requeue, synced, error) = Box::pin(sync(&state, &context, &mut copy, &jobs)).await;
    if let Some(err) = &error {
        tracing::debug!(error = %err, "syncing the cronjob");
    }
    if cleaned || synced {
        let api: Api<CronJob> = Api::namespaced(context.client.clone(), &namespace);
        let mut status = copy.status.clone().unwrap_or_default();
        if status.active.as_ref().is_some_and(Vec::is_empty) {
            status.active = None;
        }
        copy.status = Some(status);
        match api.replace_status(&name, &PostParams::default(), &copy).await {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => return Ok(Action::await_change()),
            Err(err) => return Err(err.into()),
        }
    }
    if let Some(after) = requeue {
        return Ok(Action::requeue(after));
    }
    match error {
        Some(err) => Err(err),
        None => Ok(Action::await_change()),
    }
}

/// Upstream's syncCronJob: returns when to sync again, whether the status changed, and an
/// error.
async fn sync(
    state: &State,
    context: &Context,
    cron_job: &mut CronJob,
    jobs: &[Job],
) -> (Option<Duration>, bool, Option<ReconcileError>) {
    let now = Timestamp::now();
    let namespace = cron_job.namespace().unwrap_or_default();
    let name = cron_job.name_any();
    let cron_api: Api<CronJob> = Api::namespaced(context.client.clone(), &namespace);
    let job_api: Api<Job> = Api::namespaced(context.client.clone(), &namespace);
    let mut changed = false;
    let mut children: HashSet<String> = HashSet::new();
    for job in jobs {
        let uid = job.uid().unwrap_or_default();
        children.insert(uid.clone());
        let found = in_active_list(cron_job, &uid);
        let finished = finished_condition(job);
        if !found && finished.is_none() {
            let fresh = match cron_api.get(&name).await {
                Ok(fresh) => fresh,
                Err(err) => return (None, changed, Some(err.into())),
            };
            if in_active_list(&fresh, &uid) {
                *cron_job = fresh;
                continue;
            }
            publish(
                state,
                cron_job,
                EventType::Warning,
                "UnexpectedJob",
                format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    job.name_any()
                ),
            )
            .await;
        } else if let Some(condition) = finished {
            if found {
                delete_from_active_list(cron_job, &uid);
                publish(
                    state,
                    cron_job,
                    EventType::Normal,
                    "SawCompletedJob",
                    format!("Saw completed job: {}, condition: {condition}", job.name_any()),
                )
                .await;
                changed = true;
            }
            if condition == "Complete" {
                let completion = job.status.as_ref().and_then(|s| s.completion_time.clone());
                let status = cron_job.status.get_or_insert_with(Default::default);
                match (&status.last_successful_time, &completion) {
                    (None, _) => {
                        status.last_successful_time = completion;
                        changed = true;
                    }
                    (Some(last), Some(at)) if at.0 > last.0 => {
                        status.last_successful_time = completion;
                        changed = true;
                    }
                    _ => {}
                }
            }
        }
    }
    // Active jobs that went missing.
    let missing: Vec<ObjectReference> = active_list(cron_job)
        .iter()
        .filter(|r| !r.uid.as_ref().is_some_and(|u| children.contains(u)))
        .cloned()
        .collect();
    for reference in missing {
        let job_name = reference.name.clone().unwrap_or_default();
        match job_api.get(&job_name).await {
            Err(err) if is_not_found(&err) => {
                publish(
                    state,
                    cron_job,
                    EventType::Normal,
                    "MissingJob",
                    format!("Active job went missing: {job_name}"),
                )
                .await;
                delete_from_active_list(cron_job, reference.uid.as_deref().unwrap_or(""));
                changed = true;
            }
            Err(err) => return (None, changed, Some(err.into())),
            Ok(_) => {}
        }
    }
    if cron_job.metadata.deletion_timestamp.is_some() {
        return (None, changed, None);
    }
    let spec = cron_job.spec.clone().unwrap_or_default();
    if let Some(zone) = &spec.time_zone
        && let Err(err) = schedule::load_zone(zone)
    {
        publish(
            state,
            cron_job,
            EventType::Warning,
            "UnknownTimeZone",
            format!("invalid timeZone: {zone:?}: {err}"),
        )
        .await;
        return (None, changed, None);
    }
    if spec.suspend == Some(true) {
        return (None, changed, None);
    }
    let (text, own_zone) = format_schedule(cron_job);
    if own_zone {
        publish(
            state,
            cron_job,
            EventType::Warning,
            "UnsupportedSchedule",
            format!(
                "CRON_TZ or TZ used in schedule {:?} is not officially supported, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details",
                spec.schedule
            ),
        )
        .await;
    }
    let schedule = match schedule::parse(&text) {
        Ok(schedule) => schedule,
        Err(err) => {
            publish(
                state,
                cron_job,
                EventType::Warning,
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {err}", spec.schedule),
            )
            .await;
            return (None, changed, None);
        }
    };
    let scheduled = match most_recent_schedule_time(cron_job, now, &schedule, true) {
        Err(err) => {
            publish(
                state,
                cron_job,
                EventType::Warning,
                "InvalidSchedule",
                format!("invalid schedule: {} : {err}", spec.schedule),
            )
            .await;
            return (None, changed, None);
        }
        Ok(recent) => {
            if recent.most_recent.is_some_and(|t| t <= now) && recent.missed > MANY_MISSED {
                publish(
                    state,
                    cron_job,
                    EventType::Warning,
                    "TooManyMissedTimes",
                    "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
                        .to_owned(),
                )
                .await;
            }
            recent.most_recent.filter(|t| *t <= now)
        }
    };
    let Some(scheduled) = scheduled else {
        return (next_schedule_delay(cron_job, now, &schedule), changed, None);
    };
    if let Some(deadline) = spec.starting_deadline_seconds
        && scheduled
            .checked_add(SignedDuration::from_secs(deadline))
            .is_ok_and(|t| t < now)
    {
        publish(
            state,
            cron_job,
            EventType::Warning,
            "MissSchedule",
            format!(
                "Missed scheduled time to start a job: {}",
                scheduled.strftime("%a, %d %b %Y %H:%M:%S +0000")
            ),
        )
        .await;
        return (next_schedule_delay(cron_job, now, &schedule), changed, None);
    }
    let wanted_name = job_name(cron_job, scheduled);
    let last_schedule = cron_job
        .status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .map(|t| t.0.as_second());
    if active_list(cron_job).iter().any(|r| {
        r.name.as_deref() == Some(wanted_name.as_str()) && r.namespace.as_deref() == Some(namespace.as_str())
    }) || last_schedule == Some(scheduled.as_second())
    {
        return (next_schedule_delay(cron_job, now, &schedule), changed, None);
    }
    let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
    if policy == "Forbid" && !active_list(cron_job).is_empty() {
        publish(
            state,
            cron_job,
            EventType::Normal,
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid".to_owned(),
        )
        .await;
        return (next_schedule_delay(cron_job, now, &schedule), changed, None);
    }
    if policy == "Replace" {
        for reference in active_list(cron_job).to_vec() {
            let job_name = reference.name.clone().unwrap_or_default();
            let job = match job_api.get(&job_name).await {
                Ok(job) => job,
                Err(err) => {
                    publish(
                        state,
                        cron_job,
                        EventType::Warning,
                        "FailedGet",
                        format!("Get job: {}", api_message(&err)),
                    )
                    .await;
                    return (None, changed, Some(err.into()));
                }
            };
            if !delete_job(state, cron_job, &job).await {
                return (
                    None,
                    changed,
                    Some(ReconcileError::Invalid(format!(
                        "could not replace job {namespace}/{job_name}"
                    ))),
                );
            }
            changed = true;
        }
    }
    let request = match job_from_template(cron_job, scheduled) {
        Ok(job) => job,
        Err(err) => return (None, changed, Some(ReconcileError::Invalid(err))),
    };
    let created = match job_api.create(&PostParams::default(), &request).await {
        Ok(created) => {
            publish(
                state,
                cron_job,
                EventType::Normal,
                "SuccessfulCreate",
                format!("Created job {}", created.name_any()),
            )
            .await;
            created
        }
        Err(err) if is_already_exists(&err) => {
            let existing = match job_api.get(&wanted_name).await {
                Ok(job) => job,
                Err(err) => return (None, changed, Some(err.into())),
            };
            let ours =
                controller_of(&existing.metadata).is_some_and(|r| Some(&r.uid) == cron_job.uid().as_ref());
            if !ours || in_active_list(cron_job, existing.uid().as_deref().unwrap_or("")) {
                return (None, changed, None);
            }
            tracing::info!(job = %wanted_name, "job already exists");
            existing
        }
        Err(err) => {
            let terminating = matches!(&err, kube::Error::Api(status) if status.details.as_ref().is_some_and(|d| {
                d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
            }));
            if !terminating {
                publish(
                    state,
                    cron_job,
                    EventType::Warning,
                    "FailedCreate",
                    format!("Error creating job: {}", api_message(&err)),
                )
                .await;
            }
            return (None, changed, Some(err.into()));
        }
    };
    let status = cron_job.status.get_or_insert_with(Default::default);
    status
        .active
        .get_or_insert_with(Vec::new)
        .push(reference(&created));
    status.last_schedule_time = Some(Time(scheduled));
    (next_schedule_delay(cron_job, now, &schedule), true, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cron_job(schedule: &str, created: &str, last: Option<&str>, deadline: Option<i64>) -> CronJob {
        serde_json::from_value(json!({
            "metadata": {"name": "tick", "namespace": "default", "creationTimestamp": created},
            "spec": {"schedule": schedule, "startingDeadlineSeconds": deadline, "jobTemplate": {"spec": {"template": {}}}},
            "status": {"lastScheduleTime": last},
        }))
        .unwrap()
    }

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn most_recent_unmet_time_and_missed_count() {
        let schedule = schedule::parse("*/1 * * * *").unwrap();
        let cj = cron_job("*/1 * * * *", "2024-03-01T10:00:30Z", None, None);
        let recent = most_recent_schedule_time(&cj, ts("2024-03-01T10:00:50Z"), &schedule, true).unwrap();
        assert_eq!(recent.most_recent, None);
        let recent = most_recent_schedule_time(&cj, ts("2024-03-01T10:01:05Z"), &schedule, true).unwrap();
        assert_eq!(recent.most_recent, Some(ts("2024-03-01T10:01:00Z")));
        let recent = most_recent_schedule_time(&cj, ts("2024-03-01T13:00:05Z"), &schedule, true).unwrap();
        assert_eq!(recent.most_recent, Some(ts("2024-03-01T13:00:00Z")));
        assert_eq!(recent.missed, 180);
        // A starting deadline bounds how far back misses are counted.
        let cj = cron_job("*/1 * * * *", "2024-03-01T10:00:30Z", None, Some(200));
        let recent = most_recent_schedule_time(&cj, ts("2024-03-01T13:00:05Z"), &schedule, true).unwrap();
        assert_eq!(recent.most_recent, Some(ts("2024-03-01T13:00:00Z")));
        assert_eq!(recent.missed, 4);
    }

    #[test]
    fn requeue_at_the_next_scheduled_time() {
        let schedule = schedule::parse("*/5 * * * *").unwrap();
        let cj = cron_job(
            "*/5 * * * *",
            "2024-03-01T10:00:30Z",
            Some("2024-03-01T10:00:00Z"),
            None,
        );
        let wait = next_schedule_delay(&cj, ts("2024-03-01T10:01:00Z"), &schedule).unwrap();
        assert_eq!(wait, Duration::from_secs(240) + NEXT_SCHEDULE_DELTA);
    }

    #[test]
    fn job_names_and_scheduled_timestamp() {
        let mut cj = cron_job("0 * * * *", "2024-03-01T10:00:30Z", None, None);
        let at = ts("2024-03-01T11:00:00Z");
        let job = job_from_template(&cj, at).unwrap();
        assert_eq!(job.metadata.name.as_deref(), Some("tick-28488180"));
        assert_eq!(
            job.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP],
            "2024-03-01T11:00:00Z"
        );
        cj.spec.as_mut().unwrap().time_zone = Some("Asia/Kolkata".into());
        let job = job_from_template(&cj, at).unwrap();
        assert_eq!(
            job.metadata.annotations.as_ref().unwrap()[SCHEDULED_TIMESTAMP],
            "2024-03-01T16:30:00+05:30"
        );
        assert_eq!(format_schedule(&cj).0, "TZ=Asia/Kolkata 0 * * * *");
    }
}
