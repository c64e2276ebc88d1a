//! Real pods on `rudder server` as a node: its kubelet runs them in containers from a busybox
//! image dropped into the data dir, driven by the real kubectl. Needs root; without it every
//! test says it was skipped.

use std::path::Path;

use crate::harness::{Server, free_port, wait_for};

const IMAGE: &str = "busybox:e2e";

/// A server that is also a node, with the busybox image in its drop-in directory.
fn node_server() -> Option<(Server, tempfile::TempDir)> {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root");
        return None;
    }
    assert!(
        Path::new(rudder_noded::images::testimage::BUSYBOX).exists(),
        "/bin/busybox is missing: apt-get install busybox-static"
    );
    let dir = tempfile::tempdir().unwrap();
    let drop_in = rudder_noded::images::drop_in_dir(dir.path());
    std::fs::create_dir_all(&drop_in).unwrap();
    let archive = rudder_noded::images::testimage::busybox_oci_archive(IMAGE).unwrap();
    std::fs::write(drop_in.join("busybox.tar"), archive).unwrap();
    let server = Server::start_in(dir.path(), free_port(), &["--agent"]);
    wait_for("the node Ready", 60, || {
        let out = server.kubectl(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}",
        ]);
        (String::from_utf8_lossy(&out.stdout).trim() == "True").then_some(())
    });
    Some((server, dir))
}

fn apply(server: &Server, manifest: &str) {
    let path = server.data_dir.join(format!("manifest-{}.yaml", free_port()));
    std::fs::write(&path, manifest).unwrap();
    server.kubectl_ok(&["apply", "-f", path.to_str().unwrap()]);
}

fn jsonpath(server: &Server, pod: &str, path: &str) -> String {
    let out = server.kubectl(&["get", "pod", pod, "-o", &format!("jsonpath={path}")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The STATUS column of `kubectl get pod`.
fn status_column(server: &Server, pod: &str) -> String {
    let out = server.kubectl_ok(&["get", "pod", pod, "--no-headers"]);
    out.split_whitespace().nth(2).unwrap_or_default().to_owned()
}

fn pod(name: &str, restart: &str, extra_spec: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 2
{extra_spec}  containers:
{containers}"
    )
}

#[test]
fn pods_run_in_containers_with_init_env_volumes_and_restarts() {
    let Some((server, _dir)) = node_server() else {
        return;
    };
    apply(
        &server,
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello from a configmap
  file.txt: mounted
",
    );

    // Init containers run in order before the app container; emptyDir is shared; env comes
    // from a ConfigMap and the downward API; a configMap volume is mounted. The app container
    // reports what it saw through its termination message.
    apply(
        &server,
        &pod(
            "ordered",
            "Never",
            &format!(
                "  volumes:
  - name: work
    emptyDir: {{}}
  - name: config
    configMap:
      name: settings
  initContainers:
  - name: first
    image: {IMAGE}
    command: [sh, -c, 'echo first >> /work/order']
    volumeMounts: [{{name: work, mountPath: /work}}]
  - name: second
    image: {IMAGE}
    command: [sh, -c, 'echo second >> /work/order']
    volumeMounts: [{{name: work, mountPath: /work}}]
"
            ),
            &format!(
                "  - name: app
    image: {IMAGE}
    command: [sh, -c, 'cat /work/order /config/file.txt > /dev/termination-log; echo \"$GREETING|$POD_NAME|$(hostname)\" >> /dev/termination-log; test -s /var/run/secrets/kubernetes.io/serviceaccount/token && cat /var/run/secrets/kubernetes.io/serviceaccount/namespace >> /dev/termination-log; echo done; echo to-stderr >&2']
    env:
    - name: GREETING
      valueFrom: {{configMapKeyRef: {{name: settings, key: greeting}}}}
    - name: POD_NAME
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
    volumeMounts:
    - {{name: work, mountPath: /work}}
    - {{name: config, mountPath: /config}}
"
            ),
        ),
    );
    wait_for("ordered Succeeded", 90, || {
        (jsonpath(&server, "ordered", "{.status.phase}") == "Succeeded").then_some(())
    });
    assert_eq!(status_column(&server, "ordered"), "Completed");
    assert_eq!(
        jsonpath(
            &server,
            "ordered",
            "{.status.containerStatuses[0].state.terminated.message}"
        ),
        // The ConfigMap's file has no final newline, nor has the service account's namespace
        // file, projected with its token.
        "first\nsecond\nmountedhello from a configmap|ordered|ordered\ndefault"
    );
    assert_eq!(
        jsonpath(
            &server,
            "ordered",
            "{.status.initContainerStatuses[*].state.terminated.reason}"
        ),
        "Completed Completed"
    );
    // Both streams land in the log, which the API server fetches from the node.
    // Both streams land in the log, which the API server fetches from the node; the two
    // pipes are read independently, so their lines may interleave either way.
    let log = server.kubectl_ok(&["logs", "ordered"]);
    let mut lines: Vec<&str> = log.lines().collect();
    let last = lines.last().copied().unwrap_or_default().to_owned();
    lines.sort_unstable();
    assert_eq!(lines, ["done", "to-stderr"], "{log}");
    assert_eq!(server.kubectl_ok(&["logs", "ordered", "-c", "first"]), "");
    let tailed = server.kubectl_ok(&["logs", "ordered", "--tail=1", "--timestamps"]);
    let (timestamp, line) = tailed.trim_end().split_once(' ').unwrap();
    assert!(timestamp.ends_with('Z') && line == last, "{tailed}");

    // A failing command restarts with a growing restartCount and CrashLoopBackOff.
    apply(
        &server,
        &pod(
            "crasher",
            "Always",
            "",
            &format!("  - name: app\n    image: {IMAGE}\n    command: [sh, -c, 'echo failing; exit 3']\n"),
        ),
    );
    wait_for("crasher in CrashLoopBackOff", 60, || {
        (status_column(&server, "crasher") == "CrashLoopBackOff").then_some(())
    });
    let restarts: i32 = jsonpath(&server, "crasher", "{.status.containerStatuses[0].restartCount}")
        .parse()
        .unwrap();
    assert!(restarts >= 1, "restartCount {restarts}");
    assert_eq!(
        jsonpath(
            &server,
            "crasher",
            "{.status.containerStatuses[0].lastState.terminated.exitCode}"
        ),
        "3"
    );
    assert_eq!(jsonpath(&server, "crasher", "{.status.phase}"), "Running");
    assert_eq!(server.kubectl_ok(&["logs", "crasher", "--previous"]), "failing\n");

    // A long-running pod is Running and Ready, its limits in its cgroup; deleting it stops
    // its container and removes what it had on the node.
    apply(
        &server,
        &pod(
            "sleeper",
            "Always",
            "",
            &format!(
                "  - name: app
    image: {IMAGE}
    command: [sleep, '3600']
    resources:
      limits: {{cpu: 200m, memory: 64Mi}}
"
            ),
        ),
    );
    wait_for("sleeper Ready", 60, || {
        (jsonpath(
            &server,
            "sleeper",
            "{.status.conditions[?(@.type=='Ready')].status}",
        ) == "True")
            .then_some(())
    });
    assert_eq!(status_column(&server, "sleeper"), "Running");
    let uid = jsonpath(&server, "sleeper", "{.metadata.uid}");
    let pod_dir = server.data_dir.join("pods").join(&uid);
    assert!(pod_dir.join("netns").exists());
    let memory_limits = cgroup_files(&format!("pod{uid}"), &["memory.max", "memory.limit_in_bytes"]);
    assert!(
        memory_limits.iter().any(|value| value == &(64 << 20).to_string()),
        "{memory_limits:?}"
    );
    server.kubectl_ok(&["delete", "pod", "sleeper", "--wait=true", "--timeout=60s"]);
    assert!(!pod_dir.exists(), "{} is still there", pod_dir.display());
    assert!(cgroup_files(&format!("pod{uid}"), &["cgroup.procs", "tasks"]).is_empty());
    server.kubectl_ok(&[
        "delete",
        "pod",
        "crasher",
        "ordered",
        "--wait=true",
        "--timeout=60s",
    ]);
}

/// The contents of files named `names` in any cgroup directory named `dir` under
/// /sys/fs/cgroup (v1 hierarchies or the v2 tree).
fn cgroup_files(dir: &str, names: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            if !kind.is_dir() {
                continue;
            }
            let child = entry.path();
            if entry.file_name() == dir {
                for name in names {
                    if let Ok(text) = std::fs::read_to_string(child.join(name)) {
                        found.push(text.trim().to_owned());
                    }
                }
            } else if path.components().count() < 7 {
                stack.push(child);
            }
        }
    }
    found
}
