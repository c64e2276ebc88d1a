//! Node health through the real binary and kubectl: a simulated node whose kubelet is stopped
//! (the `sim.rudder.dev/stopped=true` annotation) goes `Unknown` after the node monitor grace
//! period, gets the unreachable taints, and its pods are evicted after their
//! `tolerationSeconds` and recreated by their ReplicaSet on the healthy node; removing the
//! annotation makes the node Ready and untainted again.

use std::time::{Duration, Instant};

use crate::harness::{Server, wait_for};

const REPLICA_SET: &str = r"
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      topologySpreadConstraints:
      - maxSkew: 1
        topologyKey: kubernetes.io/hostname
        whenUnsatisfiable: ScheduleAnyway
        labelSelector:
          matchLabels: {app: web}
      tolerations:
      - key: node.kubernetes.io/unreachable
        operator: Exists
        effect: NoExecute
        tolerationSeconds: 5
      containers:
      - name: app
        image: nginx
";

fn pods_by_node(server: &Server) -> Vec<(String, String, bool)> {
    let out = server.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.metadata.deletionTimestamp}{\"\\n\"}{end}",
    ]);
    out.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let name = parts.next()?.to_owned();
            let node = parts.next()?.to_owned();
            Some((name, node, parts.next().is_some()))
        })
        .collect()
}

#[test]
fn a_silent_node_goes_unknown_is_tainted_and_its_pods_move() {
    let server = Server::start_with(&["--simulated-nodes", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rs.yaml");
    std::fs::write(&file, REPLICA_SET).unwrap();
    server.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
    let ready = wait_for("2 ready replicas", 60, || {
        let ready = server.kubectl_ok(&["get", "rs", "web", "-o", "jsonpath={.status.readyReplicas}"]);
        (ready == "2").then_some(ready)
    });
    assert_eq!(ready, "2");
    let placed = pods_by_node(&server);
    // Spread over both nodes.
    let victim_node = "sim-node-0001";
    let victims: Vec<String> = placed
        .iter()
        .filter(|(_, node, _)| node == victim_node)
        .map(|(name, _, _)| name.clone())
        .collect();
    assert_eq!(victims.len(), 1, "{placed:?}");

    let out = server.kubectl_ok(&["annotate", "node", victim_node, "sim.rudder.dev/stopped=true"]);
    assert_eq!(out.trim(), format!("node/{victim_node} annotated"));
    let stopped = Instant::now();
    let status = wait_for("the node NotReady", 90, || {
        let table = server.kubectl_ok(&["get", "node", victim_node, "--no-headers"]);
        table
            .split_whitespace()
            .nth(1)
            .filter(|s| *s == "NotReady")
            .map(str::to_owned)
    });
    assert_eq!(status, "NotReady");
    // Not before the 50 s node monitor grace period (less up to 10 s since the last renewal).
    assert!(
        stopped.elapsed() >= Duration::from_secs(38),
        "{:?}",
        stopped.elapsed()
    );
    let described = server.kubectl_ok(&["describe", "node", victim_node]);
    assert!(
        described.contains("node.kubernetes.io/unreachable:NoExecute"),
        "{described}"
    );
    assert!(
        described.contains("node.kubernetes.io/unreachable:NoSchedule"),
        "{described}"
    );
    assert!(described.contains("NodeStatusUnknown"), "{described}");
    assert!(
        described.contains("Kubelet stopped posting node status."),
        "{described}"
    );
    let ready = server.kubectl_ok(&[
        "get",
        "node",
        victim_node,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    assert_eq!(ready, "Unknown");
    let healthy = server.kubectl_ok(&["get", "node", "sim-node-0002", "--no-headers"]);
    assert_eq!(healthy.split_whitespace().nth(1), Some("Ready"), "{healthy}");

    // After 5 s of toleration the pod is deleted (it stays Terminating: its kubelet is gone)
    // and the ReplicaSet puts a replacement on the healthy node.
    let tainted = Instant::now();
    wait_for("the pod evicted", 30, || {
        let pods = pods_by_node(&server);
        pods.iter()
            .any(|(name, _, deleting)| *name == victims[0] && *deleting)
            .then(String::new)
    });
    assert!(tainted.elapsed() <= Duration::from_secs(15));
    let reason = server.kubectl_ok(&[
        "get",
        "pod",
        &victims[0],
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"DisruptionTarget\")].reason}",
    ]);
    assert_eq!(reason, "DeletionByTaintManager");
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "-o",
        "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    assert!(
        events.contains(&format!(
            "TaintManagerEviction: Marking for deletion Pod default/{}",
            victims[0]
        )),
        "{events}"
    );
    assert!(events.contains("NodeNotReady: Node is not ready"), "{events}");
    wait_for("a replacement on the healthy node", 30, || {
        let ready = server.kubectl_ok(&["get", "rs", "web", "-o", "jsonpath={.status.readyReplicas}"]);
        let pods = pods_by_node(&server);
        let live: Vec<_> = pods.iter().filter(|(_, _, deleting)| !deleting).collect();
        (ready == "2" && live.len() == 2 && live.iter().all(|(_, node, _)| node == "sim-node-0002"))
            .then_some(ready)
    });

    // The kubelet comes back: Ready again, the taints go.
    server.kubectl_ok(&["annotate", "node", victim_node, "sim.rudder.dev/stopped-"]);
    wait_for("the node Ready and untainted", 30, || {
        let out = server.kubectl_ok(&[
            "get",
            "node",
            victim_node,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.spec.taints}",
        ]);
        (out.trim() == "True").then_some(out)
    });
}
