//! A node server restarted while its pods run: the containers outlive it and the new noded
//! re-adopts them (same containers, no restart), with logs, exec and deletion working on
//! them. Needs root; without it the test says it was skipped.

use std::path::Path;

use rudder_noded::runtime::{ContainerState, Runtime};

use crate::harness::{rudder_bin, wait_for};
use crate::node::{IMAGE, apply, jsonpath, node_server, wait_node_ready};

/// The running containers of the pod `uid` with their pids.
fn running_containers(data_dir: &Path, uid: &str) -> Vec<(String, i32)> {
    Runtime::new(data_dir.join("runtime"), rudder_bin())
        .list()
        .unwrap()
        .into_iter()
        .filter(|(id, _)| id.starts_with(uid))
        .filter_map(|(id, state)| match state {
            ContainerState::Running { pid, .. } => Some((id, pid)),
            _ => None,
        })
        .collect()
}

/// Every mount point below `dir`.
fn mounts_below(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| Path::new(point).starts_with(dir))
        .map(str::to_owned)
        .collect()
}

/// The numbers the counter printed, in order.
fn ticks(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|line| line.strip_prefix("tick "))
        .map(|n| n.parse().unwrap())
        .collect()
}

const STATUS: &str = "{.status.phase} {.status.containerStatuses[0].containerID} \
     {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].image} \
     {.status.containerStatuses[0].imageID} {.status.conditions[?(@.type=='Ready')].status}";

#[test]
fn noded_restarted_while_pods_run_re_adopts_their_containers() {
    let Some(mut server) = node_server(&[]) else {
        return;
    };
    for (name, command) in [
        ("sleeper", "[sleep, '3600']".to_owned()),
        (
            "counter",
            "[sh, -c, 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.3; done']".to_owned(),
        ),
    ] {
        apply(
            &server,
            &format!(
                "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: app
    image: {IMAGE}
    command: {command}
"
            ),
        );
    }
    let mut before = Vec::new();
    for name in ["sleeper", "counter"] {
        let status = wait_for(&format!("{name} Ready"), 60, || {
            let status = jsonpath(&server, name, STATUS);
            status.ends_with(" True").then_some(status)
        });
        let fields: Vec<&str> = status.split(' ').collect();
        assert_eq!(fields.len(), 6, "{status}");
        assert_eq!(fields[0], "Running");
        assert!(fields[1].starts_with("rudder://"), "{status}");
        assert_eq!(fields[2], "0");
        assert_eq!(fields[3], "docker.io/library/busybox:e2e");
        assert!(fields[4].starts_with("sha256:"), "{status}");
        before.push(status);
    }
    let sleeper_uid = jsonpath(&server, "sleeper", "{.metadata.uid}");
    let counter_uid = jsonpath(&server, "counter", "{.metadata.uid}");
    wait_for("the counter's first ticks", 30, || {
        (ticks(&server.kubectl_ok(&["logs", "counter"])).len() >= 3).then_some(())
    });

    // noded stops; its containers do not.
    let containers: Vec<(String, i32)> = [&sleeper_uid, &counter_uid]
        .iter()
        .flat_map(|uid| running_containers(&server.data_dir, uid))
        .collect();
    assert_eq!(containers.len(), 2, "{containers:?}");
    let ticked = ticks(&server.kubectl_ok(&["logs", "counter"])).len();
    let (status, _, stderr) = server.stop();
    assert!(status.success(), "{status}: {stderr}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    for (id, pid) in &containers {
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "container {id} (pid {pid}) died with noded"
        );
    }
    assert_eq!(
        [&sleeper_uid, &counter_uid]
            .iter()
            .flat_map(|uid| running_containers(&server.data_dir, uid))
            .collect::<Vec<_>>(),
        containers
    );

    server.start_again();
    wait_node_ready(&server);
    // The new noded has synced both pods (its first status write, or none when nothing
    // changed); give it a few relists and check nothing moved.
    std::thread::sleep(std::time::Duration::from_secs(5));
    for (name, status) in ["sleeper", "counter"].iter().zip(&before) {
        assert_eq!(&jsonpath(&server, name, STATUS), status, "{name}");
    }
    assert_eq!(
        [&sleeper_uid, &counter_uid]
            .iter()
            .flat_map(|uid| running_containers(&server.data_dir, uid))
            .collect::<Vec<_>>(),
        containers
    );

    // Logs hold output from before and after the restart, in one sequence.
    let log = wait_for("the counter's log through the new noded", 30, || {
        let out = server.kubectl(&["logs", "counter"]);
        out.status
            .success()
            .then(|| String::from_utf8(out.stdout).unwrap())
    });
    let seen = ticks(&log);
    assert_eq!(seen, (0..seen.len() as u64).collect::<Vec<_>>(), "{log}");
    // 0.3 s per tick over the more than 7 s since the stop.
    assert!(seen.len() > ticked + 20, "{ticked} ticks before the stop: {log}");
    assert_eq!(
        server.kubectl_ok(&["exec", "sleeper", "--", "sh", "-c", "echo in $(hostname)"]),
        "in sleeper\n"
    );

    // Deleting them stops the adopted containers and cleans up.
    server.kubectl_ok(&[
        "delete",
        "pod",
        "sleeper",
        "counter",
        "--wait=true",
        "--timeout=60s",
    ]);
    for uid in [&sleeper_uid, &counter_uid] {
        let runtime = Runtime::new(server.data_dir.join("runtime"), rudder_bin());
        let left: Vec<String> = runtime
            .list()
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .filter(|id| id.starts_with(uid.as_str()))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let pod_dir = server.data_dir.join("pods").join(uid);
        assert!(!pod_dir.exists(), "{} is still there", pod_dir.display());
        assert!(mounts_below(&pod_dir).is_empty(), "{:?}", mounts_below(&pod_dir));
    }
    for (id, pid) in &containers {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "container {id} (pid {pid}) still runs"
        );
    }
}
