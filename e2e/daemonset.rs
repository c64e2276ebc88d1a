//! DaemonSets through the real kubectl on `--simulated-nodes`: one pod per eligible node,
//! `kubectl taint` (NoSchedule keeps new pods away, NoExecute removes them), nodeSelector with
//! `kubectl label`, and `set image` + `rollout status` + `rollout history` + `rollout undo`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::harness::Server;

const AGENT: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: NAME
spec:
  selector:
    matchLabels:
      app: NAME
  template:
    metadata:
      labels:
        app: NAME
    spec:
      NODE_SELECTOR
      containers:
      - name: agent
        image: busybox
";

fn create(server: &Server, name: &str, node_selector: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ds.yaml");
    let manifest = AGENT
        .replace("NAME", name)
        .replace("NODE_SELECTOR", node_selector);
    std::fs::write(&path, manifest).unwrap();
    let out = server.kubectl_ok(&["create", "-f", path.to_str().unwrap()]);
    assert_eq!(out.trim(), format!("daemonset.apps/{name} created"));
}

fn rollout_status(server: &Server, name: &str) {
    let target = format!("daemonset/{name}");
    let out = server.kubectl_ok(&["rollout", "status", &target, "--timeout=60s"]);
    assert!(
        out.contains(&format!("daemon set \"{name}\" successfully rolled out")),
        "{out}"
    );
}

/// The nodes of the DaemonSet's pods (not being deleted), once they are `expected`.
fn wait_for_nodes(server: &Server, name: &str, expected: &[&str]) {
    let expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = server.kubectl_ok(&[
            "get",
            "pods",
            "-l",
            &format!("app={name}"),
            "-o",
            "jsonpath={range .items[?(@.metadata.deletionTimestamp)]}x{end}|{range .items[*]}{.spec.nodeName} {end}",
        ]);
        let (deleting, nodes) = out.split_once('|').unwrap();
        let mut nodes: Vec<String> = nodes.split_whitespace().map(str::to_owned).collect();
        nodes.sort();
        if deleting.is_empty() && nodes == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pods of {name} on {nodes:?} (deleting: {deleting:?}), wanted {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn columns(server: &Server, name: &str) -> Vec<String> {
    server
        .kubectl_ok(&["get", "daemonset", name, "--no-headers"])
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn kubectl_runs_daemon_sets_on_eligible_nodes_and_rolls_them_out() {
    let server = Server::start_with(&["--simulated-nodes", "3"]);
    let nodes = ["sim-node-0001", "sim-node-0002", "sim-node-0003"];
    create(&server, "agent", "");
    rollout_status(&server, "agent");
    wait_for_nodes(&server, "agent", &nodes);
    assert_eq!(
        &columns(&server, "agent")[..7],
        ["agent", "3", "3", "3", "3", "3", "<none>"]
    );
    let history = server.kubectl_ok(&["get", "controllerrevisions", "-o", "name"]);
    assert_eq!(history.lines().count(), 1, "{history}");
    assert!(history.starts_with("controllerrevision.apps/agent-"), "{history}");

    // NoSchedule keeps new daemon pods away; NoExecute removes the running one.
    let out = server.kubectl_ok(&["taint", "nodes", nodes[0], "dedicated=db:NoSchedule"]);
    assert_eq!(out.trim(), format!("node/{} tainted", nodes[0]));
    create(&server, "late", "");
    rollout_status(&server, "late");
    wait_for_nodes(&server, "late", &nodes[1..]);
    assert_eq!(&columns(&server, "late")[1..6], ["2", "2", "2", "2", "2"]);
    server.kubectl_ok(&["taint", "nodes", nodes[1], "dedicated=db:NoExecute"]);
    wait_for_nodes(&server, "late", &nodes[2..]);
    wait_for_nodes(&server, "agent", &[nodes[0], nodes[2]]);
    // Untainted, the node gets its pods back.
    let out = server.kubectl_ok(&["taint", "nodes", nodes[1], "dedicated-"]);
    assert_eq!(out.trim(), format!("node/{} untainted", nodes[1]));
    wait_for_nodes(&server, "agent", &nodes);
    wait_for_nodes(&server, "late", &nodes[1..]);

    // nodeSelector: only labelled nodes.
    server.kubectl_ok(&["label", "node", nodes[2], "disk=ssd"]);
    create(&server, "ssd", "nodeSelector: {disk: ssd}");
    rollout_status(&server, "ssd");
    wait_for_nodes(&server, "ssd", &nodes[2..]);
    let table = columns(&server, "ssd");
    assert_eq!(&table[1..7], ["1", "1", "1", "1", "1", "disk=ssd"], "{table:?}");
    server.kubectl_ok(&["label", "node", nodes[1], "disk=ssd"]);
    wait_for_nodes(&server, "ssd", &nodes[1..]);

    // A rolling update through kubectl.
    let out = server.kubectl_ok(&["set", "image", "daemonset/agent", "agent=busybox:1.36"]);
    assert_eq!(out.trim(), "daemonset.apps/agent image updated");
    rollout_status(&server, "agent");
    // The old pod left running on the NoSchedule node is replaced nowhere, as upstream.
    wait_for_nodes(&server, "agent", &nodes[1..]);
    let images = server.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=agent",
        "-o",
        "jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}",
    ]);
    let images: BTreeSet<&str> = images.lines().collect();
    assert_eq!(images, BTreeSet::from(["busybox:1.36"]));
    let history = server.kubectl_ok(&["rollout", "history", "daemonset/agent"]);
    assert!(
        history
            .starts_with("daemonset.apps/agent \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>"),
        "{history}"
    );
    let revision = server.kubectl_ok(&["rollout", "history", "daemonset/agent", "--revision=2"]);
    assert!(revision.contains("busybox:1.36"), "{revision}");

    let out = server.kubectl_ok(&["rollout", "undo", "daemonset/agent"]);
    assert_eq!(out.trim(), "daemonset.apps/agent rolled back");
    rollout_status(&server, "agent");
    let image = server.kubectl_ok(&[
        "get",
        "daemonset",
        "agent",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image, "busybox");
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=DaemonSet",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    assert!(
        events.contains("SuccessfulCreate: Created pod: agent-"),
        "{events}"
    );
    assert!(
        events.contains("SuccessfulDelete: Deleted pod: agent-"),
        "{events}"
    );
}
