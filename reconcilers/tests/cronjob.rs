//! The cronjob controller with the job controller, the scheduler and simulated nodes: jobs
//! named after their scheduled minute with the scheduled-timestamp annotation (in the
//! CronJob's time zone), missed schedules started at once, status.active,
//! lastScheduleTime and lastSuccessfulTime, history limits, and Forbid and Replace at the next
//! scheduled minute, which the controller wakes up for on time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Cluster, eventually};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use rudder_noded::simulated::{Config, SimulatedNodes};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

async fn cluster() -> (Cluster, SimulatedNodes, CancellationToken) {
    let cluster = Cluster::start(&["scheduler", "nodelifecycle", "job", "cronjob"]).await;
    let stop = CancellationToken::new();
    let config = Config {
        count: 2,
        ..Config::default()
    };
    let sim = SimulatedNodes::start(cluster.client.clone(), config, stop.clone())
        .await
        .unwrap();
    let api: Api<Node> = Api::all(cluster.client.clone());
    eventually("untainted nodes", 30, || async {
        let nodes = api.list(&ListParams::default()).await.unwrap().items;
        nodes
            .iter()
            .all(|n| {
                n.spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_none_or(Vec::is_empty)
            })
            .then_some(())
    })
    .await;
    (cluster, sim, stop)
}

fn template(duration: &str) -> Value {
    json!({"spec": {"template": {
        "metadata": {"annotations": {"sim.rudder.dev/duration": duration}},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
    }}})
}

fn cron_job(name: &str, duration: &str, spec: &Value) -> CronJob {
    let mut value = json!({
        "metadata": {"name": name},
        "spec": {"schedule": "*/1 * * * *", "suspend": true, "jobTemplate": template(duration)},
    });
    for (key, field) in spec.as_object().unwrap() {
        value["spec"][key] = field.clone();
    }
    serde_json::from_value(value).unwrap()
}

/// Pretends the last run was `minutes` ago, then lets the cronjob run.
async fn resume_as_if_last_run(api: &Api<CronJob>, name: &str, minutes: i64) {
    let last = Timestamp::from_second((Timestamp::now().as_second() / 60 - minutes) * 60).unwrap();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"lastScheduleTime": last.to_string()}})),
    )
    .await
    .unwrap();
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
}

async fn owned_jobs(client: &kube::Client, owner: &str) -> Vec<Job> {
    let api: Api<Job> = Api::namespaced(client.clone(), "default");
    let mut jobs: Vec<Job> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|j| j.owner_references().iter().any(|r| r.name == owner))
        .collect();
    jobs.sort_by_key(ResourceExt::name_any);
    jobs
}

async fn event_notes(client: &kube::Client, name: &str, reason: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.reason.as_deref() == Some(reason)
                && e.reporting_controller.as_deref() == Some("cronjob-controller")
        })
        .filter_map(|e| e.note)
        .collect()
}

fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Complete" && c.status == "True"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_schedules_start_at_once_with_scheduled_names() {
    let (cluster, _sim, stop) = cluster().await;
    let api: Api<CronJob> = Api::namespaced(cluster.client.clone(), "default");
    let spec = json!({"timeZone": "Asia/Kolkata"});
    api.create(&PostParams::default(), &cron_job("tick", "300ms", &spec))
        .await
        .unwrap();
    // Suspended: nothing runs.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(owned_jobs(&cluster.client, "tick").await.is_empty());
    resume_as_if_last_run(&api, "tick", 5).await;
    let job = eventually("a job for the most recent minute", 10, || async {
        owned_jobs(&cluster.client, "tick").await.into_iter().next()
    })
    .await;
    let name = job.name_any();
    let minutes: i64 = name.strip_prefix("tick-").unwrap().parse().unwrap();
    let scheduled = Timestamp::from_second(minutes * 60).unwrap();
    assert!(Timestamp::now().as_second() - scheduled.as_second() < 70);
    let ist = scheduled
        .to_zoned(k8s_openapi::jiff::tz::TimeZone::get("Asia/Kolkata").unwrap())
        .strftime("%Y-%m-%dT%H:%M:%S+05:30")
        .to_string();
    assert_eq!(
        job.annotations()["batch.kubernetes.io/cronjob-scheduled-timestamp"],
        ist
    );
    assert_eq!(job.owner_references()[0].kind, "CronJob");
    assert_eq!(job.owner_references()[0].controller, Some(true));
    // Only the most recent missed time runs, once.
    assert_eq!(owned_jobs(&cluster.client, "tick").await.len(), 1);

    let cj = eventually("lastSuccessfulTime", 30, || async {
        let cj = api.get("tick").await.unwrap();
        let status = cj.status.clone()?;
        (status.last_successful_time.is_some() && status.active.is_none()).then_some(cj)
    })
    .await;
    let status = cj.status.unwrap();
    assert_eq!(status.last_schedule_time.unwrap().0, scheduled);
    let job = Api::<Job>::namespaced(cluster.client.clone(), "default")
        .get(&name)
        .await
        .unwrap();
    assert_eq!(
        status.last_successful_time.unwrap().0,
        job.status.unwrap().completion_time.unwrap().0
    );
    assert_eq!(
        event_notes(&cluster.client, "tick", "SuccessfulCreate").await,
        [format!("Created job {name}")]
    );
    assert_eq!(
        event_notes(&cluster.client, "tick", "SawCompletedJob").await,
        [format!("Saw completed job: {name}, condition: Complete")]
    );
    stop.cancel();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_limits_prune_the_oldest_finished_jobs() {
    let (cluster, _sim, stop) = cluster().await;
    let api: Api<CronJob> = Api::namespaced(cluster.client.clone(), "default");
    let owner = api
        .create(
            &PostParams::default(),
            &cron_job("hist", "200ms", &json!({"successfulJobsHistoryLimit": 1})),
        )
        .await
        .unwrap();
    let jobs: Api<Job> = Api::namespaced(cluster.client.clone(), "default");
    for name in ["hist-1", "hist-2", "hist-3"] {
        let mut job: Job = serde_json::from_value(template("200ms")).unwrap();
        job.metadata.name = Some(name.to_owned());
        job.metadata.owner_references = Some(vec![
            serde_json::from_value(json!({
                "apiVersion": "batch/v1", "kind": "CronJob", "name": "hist",
                "uid": owner.uid().unwrap(), "controller": true, "blockOwnerDeletion": true,
            }))
            .unwrap(),
        ]);
        jobs.create(&PostParams::default(), &job).await.unwrap();
        // Distinct start times.
        eventually("started", 10, || async {
            jobs.get(name).await.unwrap().status?.start_time.map(|_| ())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let left = eventually("the two oldest removed", 60, || async {
        let left = owned_jobs(&cluster.client, "hist").await;
        (left.len() == 1 && left.iter().all(finished)).then_some(left)
    })
    .await;
    assert_eq!(left[0].name_any(), "hist-3");
    let mut deleted = event_notes(&cluster.client, "hist", "SuccessfulDelete").await;
    deleted.sort();
    assert_eq!(deleted, ["Deleted job hist-1", "Deleted job hist-2"]);
    stop.cancel();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbid_skips_and_replace_replaces_at_the_next_minute() {
    let (cluster, _sim, stop) = cluster().await;
    let api: Api<CronJob> = Api::namespaced(cluster.client.clone(), "default");
    api.create(
        &PostParams::default(),
        &cron_job("forbid", "10m", &json!({"concurrencyPolicy": "Forbid"})),
    )
    .await
    .unwrap();
    api.create(
        &PostParams::default(),
        &cron_job("replace", "10m", &json!({"concurrencyPolicy": "Replace"})),
    )
    .await
    .unwrap();
    resume_as_if_last_run(&api, "forbid", 2).await;
    resume_as_if_last_run(&api, "replace", 2).await;
    let first = eventually("first jobs", 10, || async {
        let forbid = owned_jobs(&cluster.client, "forbid").await;
        let replace = owned_jobs(&cluster.client, "replace").await;
        (forbid.len() == 1 && replace.len() == 1).then(|| replace[0].name_any())
    })
    .await;
    let first_minute: i64 = first.strip_prefix("replace-").unwrap().parse().unwrap();
    let next = format!("replace-{}", first_minute + 1);
    // At the next minute (woken by the requeue, nothing else changes), Replace deletes the
    // running job and starts a new one; Forbid starts nothing.
    let created = eventually("the replacement", 75, || async {
        let jobs = owned_jobs(&cluster.client, "replace").await;
        jobs.into_iter()
            .find(|j| j.name_any() == next)
            .and_then(|j| j.metadata.creation_timestamp)
    })
    .await;
    let due = (first_minute + 1) * 60;
    assert!(
        created.0.as_second() - due <= 2,
        "created {} s after the scheduled time",
        created.0.as_second() - due
    );
    eventually("the replaced job gone from active", 30, || async {
        let cj = api.get("replace").await.unwrap();
        let active = cj.status?.active?;
        (active.len() == 1 && active[0].name.as_deref() == Some(next.as_str())).then_some(())
    })
    .await;
    assert_eq!(
        event_notes(&cluster.client, "replace", "SuccessfulDelete").await,
        [format!("Deleted job {first}")]
    );
    let skipped = eventually("Forbid skipped", 10, || async {
        let notes = event_notes(&cluster.client, "forbid", "JobAlreadyActive").await;
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert_eq!(
        skipped[0],
        "Not starting job because prior execution is running and concurrency policy is Forbid"
    );
    assert_eq!(owned_jobs(&cluster.client, "forbid").await.len(), 1);
    stop.cancel();
    cluster.stop().await;
}
