//! Jobs and CronJobs through the real kubectl, with the job and cronjob controllers of
//! `rudder server` and pods run to completion on simulated nodes (`--simulated-nodes`):
//! `kubectl create job`, completions and parallelism up to `kubectl wait
//! --for=condition=complete`, failing pods and backoffLimit up to BackoffLimitExceeded, and a
//! CronJob creating Jobs on schedule.

use std::time::{Duration, Instant};

use crate::harness::Server;

fn apply(server: &Server, name: &str, yaml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.yaml"));
    std::fs::write(&path, yaml).unwrap();
    server.kubectl_ok(&["apply", "-f", path.to_str().unwrap()]);
}

fn jsonpath(server: &Server, object: &str, path: &str) -> String {
    server.kubectl_ok(&["get", object, "-o", &format!("jsonpath={path}")])
}

#[test]
fn kubectl_runs_jobs_to_completion_and_failure() {
    let server = Server::start_with(&["--simulated-nodes", "2"]);
    let out = server.kubectl_ok(&["create", "job", "once", "--image=busybox", "--", "true"]);
    assert_eq!(out.trim(), "job.batch/once created");
    let out = server.kubectl_ok(&["wait", "--for=condition=complete", "job/once", "--timeout=60s"]);
    assert_eq!(out.trim(), "job.batch/once condition met");
    assert_eq!(jsonpath(&server, "job/once", "{.status.succeeded}"), "1");

    apply(
        &server,
        "batch",
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: batch
spec:
  completions: 5
  parallelism: 2
  template:
    metadata:
      annotations:
        sim.rudder.dev/duration: 500ms
    spec:
      restartPolicy: Never
      containers:
      - name: work
        image: busybox
"#,
    );
    apply(
        &server,
        "broken",
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: broken
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations:
        sim.rudder.dev/duration: 300ms
        sim.rudder.dev/exit-code: "3"
    spec:
      restartPolicy: Never
      containers:
      - name: work
        image: busybox
"#,
    );
    let out = server.kubectl_ok(&["wait", "--for=condition=complete", "job/batch", "--timeout=90s"]);
    assert_eq!(out.trim(), "job.batch/batch condition met");
    assert_eq!(
        jsonpath(
            &server,
            "job/batch",
            "{.status.succeeded}/{.status.ready}/{.status.terminating}"
        ),
        "5/0/0"
    );
    let pods = server.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "batch.kubernetes.io/job-name=batch",
        "-o",
        "name",
    ]);
    assert_eq!(pods.lines().count(), 5, "{pods}");
    // `kubectl get jobs` prints upstream's columns with the completions.
    let listed = server.kubectl_ok(&["get", "job", "batch"]);
    let row = listed.lines().nth(1).unwrap();
    assert!(row.starts_with("batch"), "{listed}");
    assert!(row.contains("Complete") && row.contains("5/5"), "{listed}");

    let out = server.kubectl_ok(&["wait", "--for=condition=failed", "job/broken", "--timeout=60s"]);
    assert_eq!(out.trim(), "job.batch/broken condition met");
    let failed = jsonpath(
        &server,
        "job/broken",
        "{.status.failed} {.status.conditions[?(@.type==\"Failed\")].reason}",
    );
    assert_eq!(failed, "1 BackoffLimitExceeded");
    let described = server.kubectl_ok(&["describe", "job", "broken"]);
    assert!(
        described.contains("BackoffLimitExceeded")
            && described.contains("Job has reached the specified backoff limit"),
        "{described}"
    );
}

#[test]
fn cronjobs_create_jobs_on_schedule() {
    let server = Server::start_with(&["--simulated-nodes", "2"]);
    let out = server.kubectl_ok(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=*/1 * * * *",
        "--",
        "true",
    ]);
    assert_eq!(out.trim(), "cronjob.batch/tick created");
    // The first job starts at the next minute boundary: within about a minute.
    let started = Instant::now();
    let job = loop {
        let names = server.kubectl_ok(&["get", "jobs", "-o", "name"]);
        if let Some(name) = names.lines().next() {
            break name.trim_start_matches("job.batch/").to_owned();
        }
        assert!(started.elapsed() < Duration::from_secs(75), "no job within 75s");
        std::thread::sleep(Duration::from_millis(500));
    };
    // Named after the scheduled time in minutes since the epoch, which it records.
    let minutes: i64 = job.strip_prefix("tick-").unwrap().parse().unwrap();
    let scheduled = jsonpath(
        &server,
        &format!("job/{job}"),
        "{.metadata.annotations.batch\\.kubernetes\\.io/cronjob-scheduled-timestamp}",
    );
    let expected = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{}", minutes * 60), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    assert_eq!(scheduled, String::from_utf8(expected.stdout).unwrap().trim());
    let owner = jsonpath(
        &server,
        &format!("job/{job}"),
        "{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}",
    );
    assert_eq!(owner, "CronJob/tick");
    server.kubectl_ok(&[
        "wait",
        "--for=condition=complete",
        &format!("job/{job}"),
        "--timeout=60s",
    ]);
    // The cronjob notices the completion.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = jsonpath(
            &server,
            "cronjob/tick",
            "{.status.lastScheduleTime} {.status.lastSuccessfulTime} {.status.active}",
        );
        let parts: Vec<&str> = status.split(' ').collect();
        if parts.len() >= 2 && !parts[1].is_empty() && parts.get(2).is_none_or(|a| a.is_empty()) {
            assert_eq!(parts[0], scheduled, "{status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cronjob status never caught up: {status}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=tick",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    assert!(
        events.contains(&format!("SuccessfulCreate: Created job {job}")),
        "{events}"
    );
    assert!(
        events.contains(&format!(
            "SawCompletedJob: Saw completed job: {job}, condition: Complete"
        )),
        "{events}"
    );
}
