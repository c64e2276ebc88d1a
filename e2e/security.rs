//! Pod namespaces and security settings on `rudder server` as a node, observed from inside
//! busybox containers with the real kubectl: a shared PID namespace, the pod-wide IPC
//! namespace and shm, hostPID and hostIPC. Needs root; without it every test says it was
//! skipped.

use crate::harness::{Server, wait_for};
use crate::node::{IMAGE, apply, jsonpath, node_server};

/// A node server and its data dir.
struct Node {
    server: Server,
    dir: std::path::PathBuf,
}

fn start_node(flags: &[&str]) -> Option<Node> {
    node_server(flags).map(|server| Node {
        dir: server.data_dir.clone(),
        server,
    })
}

fn running(server: &Server, pod: &str) {
    wait_for(&format!("{pod} Running"), 90, || {
        (jsonpath(server, pod, "{.status.phase}") == "Running").then_some(())
    });
}

fn exec(server: &Server, pod: &str, container: &str, script: &str) -> String {
    server.kubectl_ok(&["exec", pod, "-c", container, "--", "sh", "-c", script])
}

#[test]
fn pods_share_ipc_and_optionally_process_namespaces() {
    let Some(node) = start_node(&[]) else {
        return;
    };
    let (server, dir) = (&node.server, &node.dir);
    let pod = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
{extra}  containers:
  - name: a
    image: {IMAGE}
    command: [sleep, '3601']
  - name: b
    image: {IMAGE}
    command: [sleep, '3602']
"
        )
    };
    apply(server, &pod("shared", "  shareProcessNamespace: true\n"));
    apply(server, &pod("separate", ""));
    apply(server, &pod("host", "  hostPID: true\n  hostIPC: true\n"));
    for name in ["shared", "separate", "host"] {
        running(server, name);
    }

    // With a shared PID namespace each container sees the other's process, and PID 1 is the
    // sandbox's pause process, as upstream's infra container.
    let ps = exec(server, "shared", "b", "ps -o pid,args");
    assert!(ps.contains("sleep 3601") && ps.contains("sleep 3602"), "{ps}");
    let init = exec(server, "shared", "a", "cat /proc/1/cmdline | tr '\\0' ' '");
    assert_eq!(init.trim(), "/pause pause --init", "{init}");
    let ps = exec(server, "separate", "b", "ps -o pid,args");
    assert!(ps.contains("sleep 3602") && !ps.contains("sleep 3601"), "{ps}");
    let init = exec(server, "separate", "a", "cat /proc/1/cmdline | tr '\\0' ' '");
    assert_eq!(init.trim(), "sleep 3601");

    // Every pod's containers share one IPC namespace and one /dev/shm, the pod's own.
    for name in ["shared", "separate"] {
        let ns_a = exec(server, name, "a", "readlink /proc/self/ns/ipc");
        let ns_b = exec(server, name, "b", "readlink /proc/self/ns/ipc");
        assert_eq!(ns_a, ns_b);
        exec(server, name, "a", &format!("echo {name} > /dev/shm/marker"));
        assert_eq!(exec(server, name, "b", "cat /dev/shm/marker").trim(), name);
    }
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    let host_pid = std::fs::read_link("/proc/self/ns/pid").unwrap();
    assert_ne!(
        exec(server, "separate", "a", "readlink /proc/self/ns/ipc").trim(),
        host_ipc.to_str().unwrap()
    );
    // hostPID and hostIPC pods are in the host's namespaces.
    assert_eq!(
        exec(server, "host", "a", "readlink /proc/self/ns/ipc").trim(),
        host_ipc.to_str().unwrap()
    );
    assert_eq!(
        exec(server, "host", "a", "readlink /proc/self/ns/pid").trim(),
        host_pid.to_str().unwrap()
    );

    // Deleting the pod stops its pause process and removes the namespaces' files.
    let uid = jsonpath(server, "shared", "{.metadata.uid}");
    let pod_dir = dir.join("pods").join(&uid);
    let pid: i32 = std::fs::read_to_string(pod_dir.join("pause.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    server.kubectl_ok(&[
        "delete",
        "pod",
        "shared",
        "separate",
        "host",
        "--wait=true",
        "--timeout=60s",
    ]);
    wait_for("the pod directory removed", 30, || {
        (!pod_dir.exists()).then_some(())
    });
    wait_for("the pause process gone", 10, || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        (status.is_empty() || status.contains("State:\tZ")).then_some(())
    });
}

#[test]
fn seccomp_profiles_are_chosen_and_filter_the_containers_syscalls() {
    let Some(node) = start_node(&[]) else {
        return;
    };
    let (server, dir) = (&node.server, &node.dir);
    let root = dir.join("seccomp/profiles");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("allow.json"),
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    )
    .unwrap();
    let pod = |name: &str, profile: &str| {
        format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  securityContext:
    seccompProfile: {profile}
  containers:
  - name: a
    image: {IMAGE}
    command:
    - sh
    - -c
    - |
      grep Seccomp: /proc/self/status
      unshare -U true 2>/dev/null && echo unshare allowed || echo unshare denied
      mkdir /tmp/made && echo mkdir allowed || echo mkdir denied
      touch /tmp/file && echo touch allowed
      sleep 3600
"
        )
    };
    apply(server, &pod("default", "{type: RuntimeDefault}"));
    apply(server, &pod("unconfined", "{type: Unconfined}"));
    apply(
        server,
        &pod(
            "local",
            "{type: Localhost, localhostProfile: profiles/allow.json}",
        ),
    );
    apply(
        server,
        &pod(
            "missing",
            "{type: Localhost, localhostProfile: profiles/missing.json}",
        ),
    );
    for name in ["default", "unconfined", "local"] {
        running(server, name);
    }
    // The filters are loaded into the containers' processes (the kernel reports filter mode
    // 2) and do what the profiles say: RuntimeDefault denies unshare without CAP_SYS_ADMIN (a
    // user namespace needs no capability, so unconfined it works); the Localhost profile
    // fails mkdir with EPERM and allows the rest.
    let report = |pod: &str| {
        wait_for(&format!("{pod}'s report"), 30, || {
            let logs = server.kubectl_ok(&["logs", pod]);
            logs.contains("touch allowed").then_some(logs)
        })
    };
    let lines = |text: &str| {
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lines(&report("default")),
        ["Seccomp: 2", "unshare denied", "mkdir allowed", "touch allowed"]
    );
    assert_eq!(
        lines(&report("unconfined")),
        ["Seccomp: 0", "unshare allowed", "mkdir allowed", "touch allowed"]
    );
    let local = report("local");
    assert!(local.contains("Operation not permitted"), "{local}");
    let local: Vec<String> = lines(&local)
        .into_iter()
        .filter(|l| !l.contains("Operation not permitted"))
        .collect();
    assert_eq!(
        local,
        ["Seccomp: 2", "unshare allowed", "mkdir denied", "touch allowed"]
    );
    let path = root.join("missing.json");
    let path = path.display();
    wait_for("missing in CreateContainerError", 60, || {
        (jsonpath(
            server,
            "missing",
            "{.status.containerStatuses[0].state.waiting.reason}",
        ) == "CreateContainerError")
            .then_some(())
    });
    let message = jsonpath(
        server,
        "missing",
        "{.status.containerStatuses[0].state.waiting.message}",
    );
    assert!(
        message.ends_with(&format!(
            "spec: cannot load seccomp profile \"{path}\": open {path}: no such file or directory"
        )),
        "{message}"
    );
}

#[test]
fn sysctls_safe_or_allowed_are_set_and_others_rejected_by_the_node() {
    let Some(node) = start_node(&["--allowed-unsafe-sysctls=net.core.*"]) else {
        return;
    };
    let server = &node.server;
    let pod = |name: &str, sysctls: &str| {
        format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: 1
  securityContext:
    sysctls: {sysctls}
  containers:
  - name: a
    image: {IMAGE}
    command: [sleep, '3600']
"
        )
    };
    apply(
        server,
        &pod(
            "tuned",
            "[{name: kernel.shm_rmid_forced, value: '1'}, {name: net.ipv4.ip_unprivileged_port_start, value: '1000'}, {name: net/core/somaxconn, value: '1234'}]",
        ),
    );
    apply(
        server,
        &pod("forbidden", "[{name: kernel.msgmax, value: '9000'}]"),
    );
    running(server, "tuned");
    assert_eq!(
        exec(
            server,
            "tuned",
            "a",
            "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/core/somaxconn"
        ),
        "1\n1000\n1234\n"
    );
    wait_for("forbidden Failed", 60, || {
        (jsonpath(server, "forbidden", "{.status.phase}") == "Failed").then_some(())
    });
    assert_eq!(
        jsonpath(server, "forbidden", "{.status.reason}|{.status.message}"),
        "SysctlForbidden|Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted"
    );
    assert_eq!(jsonpath(server, "forbidden", "{.status.containerStatuses}"), "");
    let out = server.kubectl_ok(&["get", "pod", "forbidden", "--no-headers"]);
    assert_eq!(out.split_whitespace().nth(2), Some("SysctlForbidden"), "{out}");
    wait_for("the SysctlForbidden event", 30, || {
        let events = server.kubectl_ok(&[
            "get",
            "events",
            "--field-selector=involvedObject.name=forbidden,reason=SysctlForbidden",
            "-o",
            "jsonpath={.items[*].type} {.items[*].message}",
        ]);
        (events == "Warning forbidden sysctl: \"kernel.msgmax\" not allowlisted").then_some(())
    });
}

#[test]
fn fs_group_owns_volumes_and_joins_the_processes_groups() {
    let Some(node) = start_node(&[]) else {
        return;
    };
    let server = &node.server;
    apply(
        server,
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  key: value
",
    );
    apply(
        server,
        &format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: grouped
spec:
  terminationGracePeriodSeconds: 1
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    fsGroup: 2345
  volumes:
  - name: scratch
    emptyDir: {{}}
  - name: config
    configMap: {{name: settings}}
  containers:
  - name: a
    image: {IMAGE}
    command: [sleep, '3600']
    volumeMounts:
    - {{name: scratch, mountPath: /scratch}}
    - {{name: config, mountPath: /config}}
"
        ),
    );
    running(server, "grouped");
    assert_eq!(
        exec(server, "grouped", "a", "id -u; id -g; id -G"),
        "1000\n3000\n3000 2345\n"
    );
    // The emptyDir is the group's, setgid and group-writable; what the process writes there
    // inherits the group.
    assert_eq!(
        exec(
            server,
            "grouped",
            "a",
            "stat -c '%g %a' /scratch; touch /scratch/new && stat -c %g /scratch/new"
        ),
        "2345 2777\n2345\n"
    );
    // A configMap volume's files are the group's and readable by it; its directory, an
    // emptyDir upstream, is the group's too.
    assert_eq!(
        exec(server, "grouped", "a", "stat -L -c '%g %a' /config/key /config"),
        "2345 644\n2345 2777\n"
    );
}

#[test]
fn a_shared_process_namespace_outlives_a_noded_restart() {
    let Some(mut node) = start_node(&[]) else {
        return;
    };
    let (server, dir) = (&mut node.server, &node.dir);
    apply(
        server,
        &format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: shared
spec:
  terminationGracePeriodSeconds: 1
  shareProcessNamespace: true
  containers:
  - name: a
    image: {IMAGE}
    command: [sleep, '3601']
  - name: b
    image: {IMAGE}
    command: [sleep, '3602']
"
        ),
    );
    running(server, "shared");
    let uid = jsonpath(server, "shared", "{.metadata.uid}");
    let pid_file = dir.join("pods").join(&uid).join("pause.pid");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let (status, _, stderr) = server.stop();
    assert!(status.success(), "{status}: {stderr}");
    assert!(
        std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the pause process died with noded"
    );
    server.start_again();
    crate::node::wait_node_ready(server);
    std::thread::sleep(std::time::Duration::from_secs(3));
    // The same pause process holds the namespace; neither container restarted and a new
    // exec still sees both.
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid);
    assert_eq!(
        jsonpath(server, "shared", "{.status.containerStatuses[*].restartCount}"),
        "0 0"
    );
    let ps = exec(server, "shared", "a", "ps -o args");
    assert!(ps.contains("sleep 3601") && ps.contains("sleep 3602"), "{ps}");
    // The pause process is no container: deleting the pod stops it.
    server.kubectl_ok(&["delete", "pod", "shared", "--wait=true", "--timeout=60s"]);
    wait_for("the pause process gone", 10, || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap_or_default();
        (status.is_empty() || status.contains("State:\tZ")).then_some(())
    });
}
