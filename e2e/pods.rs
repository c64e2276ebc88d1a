//! Real pods on `rudder server` as a node: its kubelet runs them in containers from a busybox
//! image dropped into the data dir, driven by the real kubectl. Needs root; without it every
//! test says it was skipped.

use crate::harness::{Server, wait_for};
use crate::node::{IMAGE, apply, jsonpath, node_server};

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
    let Some(server) = node_server(&[]) else {
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

/// A busybox httpd serving /www on `port` after `delay` seconds, with `files` created first and
/// `removals` deleted after their delays (seconds), as a container command.
fn httpd_command(port: u16, delay: u32, files: &[&str], removals: &[(&str, u32)]) -> String {
    let mut script = String::from("mkdir -p /www/cgi-bin; ");
    for file in files {
        script.push_str(&format!("echo ok > /www/{file}; "));
    }
    for (file, after) in removals {
        script.push_str(&format!("(sleep {after}; rm /www/{file}) & "));
    }
    script.push_str(&format!("sleep {delay}; exec httpd -f -p {port} -h /www"));
    format!("[sh, -c, '{script}']")
}

#[test]
fn probes_gate_readiness_and_restart_unhealthy_containers_and_hooks_run() {
    let Some(server) = node_server(&["--sync-frequency", "2s"]) else {
        return;
    };
    // Startup (TCP) holds readiness back until the server listens; readiness (HTTP) then
    // gates Ready, and turning false later makes the pod unready without a restart.
    apply(
        &server,
        &pod(
            "web",
            "Always",
            "",
            &format!(
                "  - name: app
    image: {IMAGE}
    command: {}
    startupProbe:
      tcpSocket: {{port: 8080}}
      periodSeconds: 1
      failureThreshold: 30
    readinessProbe:
      httpGet: {{path: /ready, port: http}}
      periodSeconds: 1
    ports: [{{name: http, containerPort: 8080}}]
",
                httpd_command(8080, 2, &["ready"], &[("ready", 12)])
            ),
        ),
    );
    // Liveness failing after a few seconds: the container is killed and restarted.
    apply(
        &server,
        &pod(
            "unhealthy",
            "Always",
            "",
            &format!(
                "  - name: app
    image: {IMAGE}
    command: {}
    livenessProbe:
      exec: {{command: [cat, /www/live]}}
      periodSeconds: 1
      failureThreshold: 2
",
                httpd_command(8081, 0, &["live"], &[("live", 3)])
            ),
        ),
    );
    wait_for("web started and Ready", 60, || {
        (jsonpath(&server, "web", "{.status.containerStatuses[0].started}") == "true"
            && jsonpath(&server, "web", "{.status.conditions[?(@.type=='Ready')].status}") == "True")
            .then_some(())
    });
    wait_for("web unready once /ready is gone", 60, || {
        (jsonpath(&server, "web", "{.status.conditions[?(@.type=='Ready')].status}") == "False").then_some(())
    });
    assert_eq!(
        jsonpath(&server, "web", "{.status.conditions[?(@.type=='Ready')].message}"),
        "containers with unready status: [app]"
    );
    assert_eq!(
        jsonpath(&server, "web", "{.status.containerStatuses[0].restartCount}"),
        "0"
    );
    assert_eq!(jsonpath(&server, "web", "{.status.phase}"), "Running");

    wait_for("unhealthy restarted by its liveness probe", 60, || {
        let count: u32 = jsonpath(
            &server,
            "unhealthy",
            "{.status.containerStatuses[0].restartCount}",
        )
        .parse()
        .unwrap_or(0);
        (count >= 1).then_some(())
    });
    let last = jsonpath(
        &server,
        "unhealthy",
        "{.status.containerStatuses[0].lastState.terminated.exitCode}",
    );
    assert!(last == "137" || last == "143", "last exit code {last}");

    // postStart (exec) runs once the container started; preStop (HTTP) before SIGTERM: its
    // request to the container's own server leaves a mark, then the shell's TERM trap.
    let marks = server.data_dir.join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    let cgi = "printf \"#!/bin/sh\\necho prestop >> /data/order\\necho Content-Type: text/plain\\necho\\necho ok\\n\" > /www/cgi-bin/mark; chmod +x /www/cgi-bin/mark";
    apply(
        &server,
        &pod(
            "hooks",
            "Always",
            &format!(
                "  volumes:
  - name: data
    hostPath: {{path: {}}}
",
                marks.display()
            ),
            &format!(
                "  - name: app
    image: {IMAGE}
    command: [sh, -c, 'mkdir -p /www/cgi-bin; {cgi}; httpd -p 8082 -h /www; trap \"echo term >> /data/order; exit 0\" TERM; while true; do sleep 0.2; done']
    volumeMounts: [{{name: data, mountPath: /data}}]
    readinessProbe:
      tcpSocket: {{port: 8082}}
      periodSeconds: 1
    lifecycle:
      postStart:
        exec: {{command: [sh, -c, 'echo poststart >> /data/order']}}
      preStop:
        httpGet: {{path: /cgi-bin/mark, port: 8082}}
"
            ),
        ),
    );
    wait_for("hooks Ready", 60, || {
        (jsonpath(
            &server,
            "hooks",
            "{.status.conditions[?(@.type=='Ready')].status}",
        ) == "True")
            .then_some(())
    });
    server.kubectl_ok(&["delete", "pod", "hooks", "--wait=true", "--timeout=60s"]);
    assert_eq!(
        std::fs::read_to_string(marks.join("order")).unwrap_or_default(),
        "poststart\nprestop\nterm\n"
    );

    // A ConfigMap volume follows the ConfigMap (within the sync frequency).
    apply(
        &server,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: live\ndata:\n  value: one\n",
    );
    apply(
        &server,
        &pod(
            "reader",
            "Always",
            &format!(
                "  volumes:
  - name: data
    hostPath: {{path: {}}}
  - name: config
    configMap: {{name: live}}
",
                marks.display()
            ),
            &format!(
                "  - name: app
    image: {IMAGE}
    command: [sh, -c, 'while true; do cat /config/value > /data/seen.tmp; mv /data/seen.tmp /data/seen; sleep 0.2; done']
    volumeMounts: [{{name: data, mountPath: /data}}, {{name: config, mountPath: /config}}]
"
            ),
        ),
    );
    let seen = marks.join("seen");
    wait_for("the reader sees the first value", 60, || {
        (std::fs::read_to_string(&seen).unwrap_or_default() == "one").then_some(())
    });
    server.kubectl_ok(&["patch", "configmap", "live", "-p", r#"{"data":{"value":"two"}}"#]);
    wait_for("the reader sees the updated value", 30, || {
        (std::fs::read_to_string(&seen).unwrap_or_default() == "two").then_some(())
    });
    server.kubectl_ok(&["delete", "pod", "reader", "--wait=true", "--timeout=60s"]);
    server.kubectl_ok(&[
        "delete",
        "pod",
        "web",
        "unhealthy",
        "--wait=true",
        "--timeout=60s",
    ]);
}

#[test]
fn a_memory_hog_over_its_limit_is_oom_killed() {
    let Some(server) = node_server(&[]) else {
        return;
    };
    // tail keeps the last line of a file without line ends: it grows until the kernel kills
    // it. Once without restarts (the current state) and once restarted (the last state).
    for (name, restart) in [("hog", "Never"), ("hog-again", "Always")] {
        apply(
            &server,
            &pod(
                name,
                restart,
                "",
                &format!(
                    "  - name: app
    image: {IMAGE}
    command: [tail, /dev/zero]
    resources:
      limits: {{memory: 32Mi}}
"
                ),
            ),
        );
    }
    wait_for("hog Failed", 60, || {
        (jsonpath(&server, "hog", "{.status.phase}") == "Failed").then_some(())
    });
    assert_eq!(
        jsonpath(
            &server,
            "hog",
            "{.status.containerStatuses[0].state.terminated.reason} {.status.containerStatuses[0].state.terminated.exitCode}"
        ),
        "OOMKilled 137"
    );
    assert_eq!(status_column(&server, "hog"), "OOMKilled");
    wait_for("hog-again restarted", 60, || {
        (jsonpath(
            &server,
            "hog-again",
            "{.status.containerStatuses[0].restartCount}",
        )
        .parse::<u32>()
        .unwrap_or(0)
            >= 1)
            .then_some(())
    });
    assert_eq!(
        jsonpath(
            &server,
            "hog-again",
            "{.status.containerStatuses[0].lastState.terminated.reason} {.status.containerStatuses[0].lastState.terminated.exitCode}"
        ),
        "OOMKilled 137"
    );
    server.kubectl_ok(&[
        "delete",
        "pod",
        "hog",
        "hog-again",
        "--wait=true",
        "--timeout=60s",
    ]);
}

#[test]
fn node_ip_sets_the_address_the_api_server_reaches_the_node_at() {
    let Some(server) = node_server(&["--node-ip", "127.0.0.1"]) else {
        return;
    };
    let address = crate::node::internal_ip(&server);
    assert_eq!(address, "127.0.0.1");
    apply(
        &server,
        &pod(
            "hello",
            "Never",
            "",
            &format!(
                "  - name: app\n    image: {IMAGE}\n    command: [sh, -c, 'echo hello from the node']\n"
            ),
        ),
    );
    wait_for("hello Succeeded", 60, || {
        (jsonpath(&server, "hello", "{.status.phase}") == "Succeeded").then_some(())
    });
    assert_eq!(jsonpath(&server, "hello", "{.status.hostIP}"), "127.0.0.1");
    assert_eq!(server.kubectl_ok(&["logs", "hello"]), "hello from the node\n");
}
