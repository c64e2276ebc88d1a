//! The job controller with the scheduler and simulated nodes: completions and parallelism,
//! Indexed jobs, the tracking finalizer, backoffLimit with FailureTarget before Failed,
//! podFailurePolicy, activeDeadlineSeconds, suspend and resume, successPolicy and
//! backoffLimitPerIndex, with upstream's conditions and events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, eventually};
use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use rudder_noded::simulated::{Config, SimulatedNodes};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

async fn cluster() -> (Cluster, SimulatedNodes, CancellationToken) {
    let cluster = Cluster::start(&["scheduler", "nodelifecycle", "job"]).await;
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

/// A job whose pods run for `duration` and exit with `code`, with `spec` merged in.
fn job(name: &str, duration: &str, code: i32, spec: &Value) -> Job {
    let mut value = json!({
        "metadata": {"name": name},
        "spec": {
            "template": {
                "metadata": {"annotations": {
                    "sim.rudder.dev/duration": duration,
                    "sim.rudder.dev/exit-code": code.to_string(),
                }},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
            },
        },
    });
    for (key, field) in spec.as_object().unwrap() {
        value["spec"][key] = field.clone();
    }
    serde_json::from_value(value).unwrap()
}

fn condition<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

async fn wait_for_condition(api: &Api<Job>, name: &str, type_: &str, secs: u64) -> Job {
    eventually(&format!("{name} {type_}"), secs, || async {
        let job = api.get(name).await.unwrap();
        condition(&job, type_).is_some().then_some(job)
    })
    .await
}

async fn job_pods(client: &kube::Client, name: &str) -> Vec<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.list(&ListParams::default().labels(&format!("batch.kubernetes.io/job-name={name}")))
        .await
        .unwrap()
        .items
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
                && e.reporting_controller.as_deref() == Some("job-controller")
        })
        .filter_map(|e| e.note)
        .collect()
}

fn reason(condition: &JobCondition) -> (&str, &str) {
    (
        condition.reason.as_deref().unwrap_or(""),
        condition.message.as_deref().unwrap_or(""),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_parallelism_complete_with_tracking_finalizers_removed() {
    let (cluster, _sim, stop) = cluster().await;
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), "default");
    let spec = json!({"completions": 4, "parallelism": 2});
    api.create(&PostParams::default(), &job("work", "300ms", 0, &spec))
        .await
        .unwrap();
    // Never more than `parallelism` active pods, each with the tracking finalizer.
    let pods = eventually("first pods", 30, || async {
        let pods = job_pods(&cluster.client, "work").await;
        (!pods.is_empty()).then_some(pods)
    })
    .await;
    assert!(pods.len() <= 2, "{} pods at once", pods.len());
    for pod in &pods {
        assert!(
            pod.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == "batch.kubernetes.io/job-tracking")
        );
        assert!(pod.metadata.generate_name.as_deref() == Some("work-"));
    }
    let done = wait_for_condition(&api, "work", "Complete", 60).await;
    let status = done.status.clone().unwrap();
    assert_eq!(status.succeeded, Some(4));
    assert_eq!(status.active, None);
    assert_eq!(status.ready, Some(0));
    assert_eq!(status.terminating, Some(0));
    assert!(status.completion_time.is_some());
    assert!(status.start_time.is_some());
    let criteria = condition(&done, "SuccessCriteriaMet").expect("SuccessCriteriaMet first");
    assert_eq!(
        reason(criteria),
        ("CompletionsReached", "Reached expected number of succeeded pods")
    );
    let complete = condition(&done, "Complete").unwrap();
    assert_eq!(
        reason(complete),
        ("CompletionsReached", "Reached expected number of succeeded pods")
    );
    let uncounted = serde_json::to_value(&status.uncounted_terminated_pods).unwrap();
    assert_eq!(uncounted, json!({}));
    // Every pod was counted once and released.
    let pods = job_pods(&cluster.client, "work").await;
    assert_eq!(pods.len(), 4);
    for pod in &pods {
        assert!(pod.metadata.finalizers.as_ref().is_none_or(Vec::is_empty));
        assert_eq!(pod.status.as_ref().unwrap().phase.as_deref(), Some("Succeeded"));
    }
    let created = eventually("events", 10, || async {
        let notes = event_notes(&cluster.client, "work", "SuccessfulCreate").await;
        let completed = event_notes(&cluster.client, "work", "Completed").await;
        (notes.len() == 4 && completed == ["Job completed"]).then_some(notes)
    })
    .await;
    assert!(created.iter().all(|n| n.starts_with("Created pod: work-")));
    stop.cancel();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexed_jobs_give_each_pod_its_index() {
    let (cluster, _sim, stop) = cluster().await;
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), "default");
    let spec = json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"});
    api.create(&PostParams::default(), &job("idx", "300ms", 0, &spec))
        .await
        .unwrap();
    let done = wait_for_condition(&api, "idx", "Complete", 60).await;
    let status = done.status.unwrap();
    assert_eq!(status.completed_indexes.as_deref(), Some("0-2"));
    assert_eq!(status.succeeded, Some(3));
    let mut pods = job_pods(&cluster.client, "idx").await;
    pods.sort_by_key(|p| p.metadata.name.clone());
    let mut indexes: Vec<String> = Vec::new();
    for pod in &pods {
        let index =
            pod.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"].clone();
        assert_eq!(
            pod.metadata.labels.as_ref().unwrap()["batch.kubernetes.io/job-completion-index"],
            index
        );
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some(format!("idx-{index}").as_str()));
        assert_eq!(
            pod.metadata.generate_name.as_deref(),
            Some(format!("idx-{index}-").as_str())
        );
        let env = spec.containers[0].env.as_ref().unwrap();
        let var = env.iter().find(|e| e.name == "JOB_COMPLETION_INDEX").unwrap();
        assert_eq!(
            var.value_from
                .as_ref()
                .unwrap()
                .field_ref
                .as_ref()
                .unwrap()
                .field_path,
            "metadata.labels['batch.kubernetes.io/job-completion-index']"
        );
        indexes.push(index);
    }
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);
    stop.cancel();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_beyond_the_backoff_limit_fail_the_job_after_the_backoff() {
    let (cluster, _sim, stop) = cluster().await;
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), "default");
    // backoffLimit 0: the first failure fails the job.
    api.create(
        &PostParams::default(),
        &job("fail0", "200ms", 1, &json!({"backoffLimit": 0})),
    )
    .await
    .unwrap();
    // backoffLimit 1: one replacement, created only after the 10 s backoff.
    let started = Instant::now();
    api.create(
        &PostParams::default(),
        &job("fail1", "200ms", 1, &json!({"backoffLimit": 1})),
    )
    .await
    .unwrap();
    let failed = wait_for_condition(&api, "fail0", "Failed", 60).await;
    let status = failed.status.clone().unwrap();
    assert_eq!(status.failed, Some(1));
    assert_eq!(status.succeeded, None);
    let expected = (
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    );
    assert_eq!(reason(condition(&failed, "FailureTarget").unwrap()), expected);
    assert_eq!(reason(condition(&failed, "Failed").unwrap()), expected);
    assert!(status.completion_time.is_none());
    let warnings = eventually("failure event", 10, || async {
        let notes = event_notes(&cluster.client, "fail0", "BackoffLimitExceeded").await;
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert_eq!(warnings, ["Job has reached the specified backoff limit"]);

    let failed = wait_for_condition(&api, "fail1", "Failed", 60).await;
    assert_eq!(failed.status.as_ref().unwrap().failed, Some(2));
    // The backoff runs from the failure's time as the API stores it, in whole seconds, so
    // it may end up to a second before 10 s after the real failure.
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "the replacement waited for the backoff"
    );
    let mut pods = job_pods(&cluster.client, "fail1").await;
    assert_eq!(pods.len(), 2);
    pods.sort_by_key(|p| p.metadata.creation_timestamp.clone().map(|t| t.0));
    let first_end = pods[0]
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap()
        .finished_at
        .clone()
        .unwrap()
        .0;
    let second_start = pods[1].metadata.creation_timestamp.clone().unwrap().0;
    assert!(
        second_start.duration_since(first_end).as_secs() >= 9,
        "replacement created {} after the failure",
        second_start.duration_since(first_end)
    );
    stop.cancel();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_failure_policy_and_active_deadline_fail_the_job() {
    let (cluster, _sim, stop) = cluster().await;
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), "default");
    let policy = json!({"backoffLimit": 6, "podFailurePolicy": {"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}},
    ]}});
    api.create(&PostParams::default(), &job("policy", "200ms", 42, &policy))
        .await
        .unwrap();
    api.create(
        &PostParams::default(),
        &job(
            "deadline",
            "10m",
            0,
            &json!({"activeDeadlineSeconds": 2, "parallelism": 2}),
        ),
    )
    .await
    .unwrap();
    let failed = wait_for_condition(&api, "policy", "Failed", 60).await;
    let pod = job_pods(&cluster.client, "policy").await.remove(0);
    let message = format!(
        "Container main for pod default/{} failed with exit code 42 matching FailJob rule at index 0",
        pod.metadata.name.unwrap()
    );
    assert_eq!(
        reason(condition(&failed, "Failed").unwrap()),
        ("PodFailurePolicy", message.as_str())
    );
    assert_eq!(failed.status.unwrap().failed, Some(1));

    let failed = wait_for_condition(&api, "deadline", "Failed", 60).await;
    assert_eq!(
        reason(condition(&failed, "Failed").unwrap()),
        (
            "DeadlineExceeded",
            "Job was active longer than specified deadline"
        )
    );
    let status = failed.status.unwrap();
    // The running pods were deleted and counted as failed.
    assert_eq!(status.failed, Some(2));
    assert_eq!(status.active, None);
    assert_eq!(status.terminating, Some(0));
    let notes = event_notes(&cluster.client, "deadline", "SuccessfulDelete").await;
    assert_eq!(notes.len(), 2);
    stop.cancel();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_jobs_run_nothing_until_resumed() {
    let (cluster, _sim, stop) = cluster().await;
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), "default");
    api.create(
        &PostParams::default(),
        &job("later", "10m", 0, &json!({"suspend": true, "parallelism": 2})),
    )
    .await
    .unwrap();
    let suspended = wait_for_condition(&api, "later", "Suspended", 30).await;
    assert_eq!(
        reason(condition(&suspended, "Suspended").unwrap()),
        ("JobSuspended", "Job suspended")
    );
    assert!(suspended.status.as_ref().unwrap().start_time.is_none());
    assert!(job_pods(&cluster.client, "later").await.is_empty());

    api.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
    let resumed = eventually("resumed with 2 active", 30, || async {
        let job = api.get("later").await.unwrap();
        let status = job.status.clone()?;
        let condition = status
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "Suspended")?;
        (condition.status == "False" && status.active == Some(2)).then_some(job)
    })
    .await;
    let status = resumed.status.clone().unwrap();
    let suspended_condition = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Suspended")
        .unwrap();
    assert_eq!(reason(&suspended_condition), ("JobResumed", "Job resumed"));
    assert!(status.start_time.is_some());

    // Suspending again deletes the active pods without counting them as failures.
    api.patch(
        "later",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": true}})),
    )
    .await
    .unwrap();
    let job = eventually("suspended again", 30, || async {
        let job = api.get("later").await.unwrap();
        let status = job.status.clone()?;
        (condition(&job, "Suspended").is_some() && status.active.is_none() && status.terminating == Some(0))
            .then_some(job)
    })
    .await;
    assert_eq!(job.status.unwrap().failed, None);
    eventually("pods gone", 30, || async {
        job_pods(&cluster.client, "later").await.is_empty().then_some(())
    })
    .await;
    let events = event_notes(&cluster.client, "later", "Resumed").await;
    assert_eq!(events, ["Job resumed"]);
    stop.cancel();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_policy_and_backoff_limit_per_index() {
    let (cluster, _sim, stop) = cluster().await;
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), "default");
    let leader = json!({"completions": 3, "parallelism": 1, "completionMode": "Indexed",
        "successPolicy": {"rules": [{"succeededIndexes": "0"}]}});
    api.create(&PostParams::default(), &job("leader", "200ms", 0, &leader))
        .await
        .unwrap();
    let per_index = json!({"completions": 2, "parallelism": 2, "completionMode": "Indexed",
        "backoffLimitPerIndex": 0});
    api.create(&PostParams::default(), &job("perindex", "200ms", 1, &per_index))
        .await
        .unwrap();

    let done = wait_for_condition(&api, "leader", "Complete", 60).await;
    assert_eq!(
        reason(condition(&done, "SuccessCriteriaMet").unwrap()),
        ("SuccessPolicy", "Matched rules at index 0")
    );
    assert_eq!(
        reason(condition(&done, "Complete").unwrap()),
        ("SuccessPolicy", "Matched rules at index 0")
    );
    assert_eq!(done.status.unwrap().completed_indexes.as_deref(), Some("0"));

    let failed = wait_for_condition(&api, "perindex", "Failed", 60).await;
    assert_eq!(
        reason(condition(&failed, "Failed").unwrap()),
        ("FailedIndexes", "Job has failed indexes")
    );
    let status = failed.status.unwrap();
    assert_eq!(status.failed_indexes.as_deref(), Some("0,1"));
    assert_eq!(status.failed, Some(2));
    for pod in job_pods(&cluster.client, "perindex").await {
        assert_eq!(
            pod.metadata.annotations.as_ref().unwrap()["batch.kubernetes.io/job-index-failure-count"],
            "0"
        );
    }
    stop.cancel();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_are_deleted_after_their_ttl() {
    let cluster = Cluster::start(&[
        "scheduler",
        "nodelifecycle",
        "job",
        "ttl-after-finished",
        "garbage-collector-controller",
    ])
    .await;
    let stop = CancellationToken::new();
    let config = Config {
        count: 1,
        ..Config::default()
    };
    let _sim = SimulatedNodes::start(cluster.client.clone(), config, stop.clone())
        .await
        .unwrap();
    let api: Api<Job> = Api::namespaced(cluster.client.clone(), "default");
    api.create(
        &PostParams::default(),
        &job("short", "200ms", 0, &json!({"ttlSecondsAfterFinished": 3})),
    )
    .await
    .unwrap();
    api.create(&PostParams::default(), &job("kept", "200ms", 0, &json!({})))
        .await
        .unwrap();
    let done = wait_for_condition(&api, "short", "Complete", 60).await;
    let finished_at = condition(&done, "Complete")
        .unwrap()
        .last_transition_time
        .clone()
        .unwrap()
        .0;
    eventually("the job deleted with its pods", 30, || async {
        let gone = api.get_opt("short").await.unwrap().is_none();
        (gone && job_pods(&cluster.client, "short").await.is_empty()).then_some(())
    })
    .await;
    let elapsed = k8s_openapi::jiff::Timestamp::now().duration_since(finished_at);
    assert!(elapsed.as_secs() >= 3, "deleted {elapsed} after finishing");
    wait_for_condition(&api, "kept", "Complete", 60).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(api.get_opt("kept").await.unwrap().is_some());
    stop.cancel();
    cluster.stop().await;
}
