//! `rudder noded` as a process of its own: a control plane started `--disable-agent` and a
//! separate noded registered with the node kubeconfig and serving certificate the server wrote.
//! Its node becomes Ready, a pod runs on it, and the API server reaches its HTTPS server for
//! `kubectl logs` and `kubectl exec`. Needs root; without it the test says it was skipped.
//! `rudder agent`'s refusals before it joins need no root (its joining is in `crate::network`).

use crate::harness::{Server, rudder, wait_for};
use crate::node::{IMAGE, apply, jsonpath, standalone_node};

#[test]
fn a_separate_noded_is_the_node_pods_run_on_and_serves_logs_and_exec() {
    let Some(cluster) = standalone_node(&[], &[]) else {
        return;
    };
    let server = &cluster.server;
    let node = rudder_apiserver::default_node_name();
    // The server runs no node of its own: noded's is the only one, with its own port.
    assert_eq!(
        server.kubectl_ok(&["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]),
        node
    );
    assert_eq!(
        server.kubectl_ok(&[
            "get",
            "node",
            &node,
            "-o",
            "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}"
        ]),
        cluster.noded.kubelet_port.to_string()
    );
    apply(
        server,
        &format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: hello
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
    command: [sh, -c, 'echo hello from noded; trap \"exit 0\" TERM; while true; do sleep 1; done']
"
        ),
    );
    wait_for("pod hello Running", 60, || {
        (jsonpath(server, "hello", "{.status.phase}") == "Running").then_some(())
    });
    assert_eq!(jsonpath(server, "hello", "{.spec.nodeName}"), node);
    let logs = wait_for("the pod's output in kubectl logs", 30, || {
        let out = server.kubectl(&["logs", "hello"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("hello from noded").then_some(text)
    });
    assert_eq!(logs, "hello from noded\n");
    assert_eq!(
        server.kubectl_ok(&["exec", "hello", "--", "sh", "-c", "echo $((6 * 7))"]),
        "42\n"
    );
    server.kubectl_ok(&["delete", "pod", "hello", "--wait=true"]);
}

#[test]
fn rudder_agent_refuses_bad_tokens_and_a_server_its_token_does_not_pin() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let token = std::fs::read_to_string(server.data_dir.join("token")).unwrap();
    let (pinned, credentials) = token.trim().split_once("::").unwrap();
    let join = |token: &str| {
        let out = rudder(&[
            "agent",
            "--server",
            &server.url(""),
            "--token",
            token,
            "--data-dir",
            &dir.path().display().to_string(),
        ]);
        assert!(!out.status.success(), "joined with {token}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = join("junk");
    assert!(
        err.contains("error: invalid join token: it does not begin with K10"),
        "{err}"
    );
    let other_ca = format!("K10{}::{credentials}", "0".repeat(64));
    let err = join(&other_ca);
    assert!(
        err.contains("does not match the join token") && err.contains("not trusting it"),
        "{err}"
    );
    let wrong_secret = format!("{pinned}::{}.0000000000000000", &credentials[..6]);
    let err = join(&wrong_secret);
    assert!(err.contains("Unauthorized"), "{err}");
    assert!(
        !dir.path().join("node.kubeconfig").exists(),
        "no credentials kept"
    );
}
