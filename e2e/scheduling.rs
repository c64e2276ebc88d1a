//! The scheduler through the real binary and kubectl, on two simulated nodes: resources (a pod
//! too big stays Pending with upstream's FailedScheduling message in `kubectl describe` and
//! the events), node affinity, pod anti-affinity, taints and tolerations, topology spread
//! constraints, and preemption by a pod of a higher PriorityClass (nominatedNodeName, the
//! victim deleted).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Server, wait_for};

fn apply(server: &Server, manifest: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifest.yaml");
    std::fs::write(&file, manifest).unwrap();
    server.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
}

fn node_of(server: &Server, pod: &str) -> String {
    wait_for(&format!("{pod} bound"), 30, || {
        let node = server.kubectl_ok(&["get", "pod", pod, "-o", "jsonpath={.spec.nodeName}"]);
        (!node.is_empty()).then_some(node)
    })
}

fn pod(name: &str, labels: &str, spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {labels}\nspec:\n  containers:\n  - name: app\n    image: nginx\n{spec}"
    )
}

fn cpu_pod(name: &str, cpu: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n{extra}  containers:\n  - name: app\n    image: nginx\n    resources:\n      requests:\n        cpu: \"{cpu}\"\n"
    )
}

fn pending_message(server: &Server, pod: &str) -> String {
    wait_for(&format!("{pod} unschedulable"), 30, || {
        let out = server.kubectl_ok(&[
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].reason}|{.status.conditions[?(@.type==\"PodScheduled\")].message}",
        ]);
        let (reason, message) = out.split_once('|')?;
        (reason == "Unschedulable").then(|| message.to_owned())
    })
}

#[test]
fn the_scheduler_honours_resources_affinity_taints_spread_and_priority() {
    let server = Server::start_with(&["--simulated-nodes", "2"]);
    wait_for("nodes untainted", 30, || {
        let out = server.kubectl_ok(&["get", "nodes", "-o", "jsonpath={.items[*].spec.taints}"]);
        out.trim().is_empty().then_some(out)
    });

    // Resources: each node has 32 CPUs.
    apply(&server, &cpu_pod("big", "64", ""));
    let expected = "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: \
                    2 No preemption victims found for incoming pod.";
    assert_eq!(pending_message(&server, "big"), expected);
    let described = server.kubectl_ok(&["describe", "pod", "big"]);
    assert!(described.contains("Status:           Pending"), "{described}");
    assert!(described.contains("FailedScheduling"), "{described}");
    assert!(described.contains(expected), "{described}");
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=big",
        "-o",
        "jsonpath={range .items[*]}{.type} {.reason} {.message}{\"\\n\"}{end}",
    ]);
    assert!(
        events.contains(&format!("Warning FailedScheduling {expected}")),
        "{events}"
    );
    server.kubectl_ok(&["delete", "pod", "big", "--wait=false"]);

    // Node affinity: only the labelled node.
    server.kubectl_ok(&["label", "node", "sim-node-0002", "disk=ssd"]);
    apply(
        &server,
        &pod(
            "affine",
            "{app: affine}",
            "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms:\n        - matchExpressions:\n          - {key: disk, operator: In, values: [ssd]}\n",
        ),
    );
    assert_eq!(node_of(&server, "affine"), "sim-node-0002");
    apply(
        &server,
        &pod("nowhere", "{app: nowhere}", "  nodeSelector:\n    disk: nvme\n"),
    );
    assert_eq!(
        pending_message(&server, "nowhere"),
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );

    // Pod anti-affinity: one per node, the third waits.
    let anti = "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n      - topologyKey: kubernetes.io/hostname\n        labelSelector:\n          matchLabels: {app: lonely}\n";
    for name in ["lonely-1", "lonely-2", "lonely-3"] {
        apply(&server, &pod(name, "{app: lonely}", anti));
        if name != "lonely-3" {
            node_of(&server, name);
        }
    }
    assert_ne!(node_of(&server, "lonely-1"), node_of(&server, "lonely-2"));
    let message = pending_message(&server, "lonely-3");
    assert!(
        message.starts_with("0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules."),
        "{message}"
    );
    server.kubectl_ok(&[
        "delete", "pod", "lonely-1", "lonely-2", "lonely-3", "nowhere", "affine",
    ]);

    // Taints: a NoSchedule taint keeps pods off unless they tolerate it.
    server.kubectl_ok(&["taint", "node", "sim-node-0001", "dedicated=infra:NoSchedule"]);
    for i in 1..=3 {
        apply(&server, &pod(&format!("plain-{i}"), "{app: plain}", ""));
        assert_eq!(node_of(&server, &format!("plain-{i}")), "sim-node-0002");
    }
    apply(
        &server,
        &pod(
            "tolerant",
            "{app: tolerant}",
            "  nodeSelector:\n    kubernetes.io/hostname: sim-node-0001\n  tolerations:\n  - {key: dedicated, operator: Equal, value: infra, effect: NoSchedule}\n",
        ),
    );
    assert_eq!(node_of(&server, "tolerant"), "sim-node-0001");
    server.kubectl_ok(&["taint", "node", "sim-node-0001", "dedicated-"]);
    server.kubectl_ok(&["delete", "pod", "plain-1", "plain-2", "plain-3", "tolerant"]);

    // Topology spread: maxSkew 1 over hostnames puts 4 pods 2 and 2.
    let spread = "  topologySpreadConstraints:\n  - maxSkew: 1\n    topologyKey: kubernetes.io/hostname\n    whenUnsatisfiable: DoNotSchedule\n    labelSelector:\n      matchLabels: {app: spread}\n";
    let mut on_first = 0;
    for i in 1..=4 {
        let name = format!("spread-{i}");
        apply(&server, &pod(&name, "{app: spread}", spread));
        if node_of(&server, &name) == "sim-node-0001" {
            on_first += 1;
        }
    }
    assert_eq!(on_first, 2);
    server.kubectl_ok(&["delete", "pod", "-l", "app=spread"]);

    // Preemption: both nodes full of low-priority pods; a high-priority pod is nominated to a
    // node, a victim there is deleted and the pod runs in its place.
    apply(
        &server,
        "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: high\nvalue: 1000\n---\napiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata:\n  name: low\nvalue: 10\n",
    );
    for name in ["low-1", "low-2"] {
        apply(&server, &cpu_pod(name, "20", "  priorityClassName: low\n"));
        node_of(&server, name);
    }
    let low_1 = node_of(&server, "low-1");
    assert_ne!(low_1, node_of(&server, "low-2"));
    let mut watch = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .args([
            "get",
            "pods",
            "--watch",
            "-o",
            "jsonpath={.metadata.name} {.status.nominatedNodeName}{\"\\n\"}",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    apply(&server, &cpu_pod("urgent", "20", "  priorityClassName: high\n"));
    let node = node_of(&server, "urgent");
    let victim = if low_1 == node { "low-1" } else { "low-2" };
    wait_for("the victim gone", 30, || {
        let out = server.kubectl(&["get", "pod", victim]);
        (!out.status.success()).then(String::new)
    });
    std::thread::sleep(Duration::from_secs(1));
    watch.kill().unwrap();
    let mut seen = String::new();
    watch.stdout.take().unwrap().read_to_string(&mut seen).unwrap();
    let _ = watch.wait();
    assert!(seen.contains(&format!("urgent {node}")), "{seen}");
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={victim}"),
        "-o",
        "jsonpath={range .items[*]}{.reason} {.message}{\"\\n\"}{end}",
    ]);
    assert!(events.contains("Preempted Preempted by pod "), "{events}");
    let phase = wait_for("urgent running", 30, || {
        let phase = server.kubectl_ok(&["get", "pod", "urgent", "-o", "jsonpath={.status.phase}"]);
        (phase == "Running").then_some(phase)
    });
    assert_eq!(phase, "Running");
}
