//! PodDisruptionBudgets through the real binary and kubectl on `--simulated-nodes`: `kubectl
//! create pdb` and `kubectl get pdb` with the status the disruption controller computes, and
//! `kubectl drain` whose evictions the budget refuses (429) until it allows them.

use std::time::{Duration, Instant};

use crate::harness::{Server, wait_for};

/// The `kubectl get pdb` row of `name`, split on whitespace, once its generation is observed.
fn pdb_row(server: &Server, name: &str, want: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let row = server.kubectl_ok(&["get", "pdb", name, "--no-headers"]);
        let cells: Vec<String> = row.split_whitespace().map(str::to_owned).collect();
        if cells.len() >= want.len() && cells.iter().zip(want).all(|(a, b)| a == b) {
            return cells;
        }
        assert!(
            Instant::now() < deadline,
            "pdb {name}: wanted {want:?}, last saw {row:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn pdb_status_is_printed_and_drain_respects_it() {
    let server = Server::start_with(&["--simulated-nodes", "2"]);
    server.kubectl_ok(&["create", "deployment", "web", "--image=nginx", "--replicas=3"]);
    wait_for("3 ready replicas", 60, || {
        let ready = server.kubectl_ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ]);
        (ready == "3").then_some(ready)
    });
    let out = server.kubectl_ok(&["create", "pdb", "web", "--selector=app=web", "--min-available=3"]);
    assert_eq!(out.trim(), "poddisruptionbudget.policy/web created");
    let header = server.kubectl_ok(&["get", "pdb", "web"]);
    let columns: Vec<&str> = header
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        columns,
        [
            "NAME",
            "MIN AVAILABLE",
            "MAX UNAVAILABLE",
            "ALLOWED DISRUPTIONS",
            "AGE"
        ]
    );
    pdb_row(&server, "web", &["web", "3", "N/A", "0"]);
    let allowed = server.kubectl_ok(&[
        "get",
        "pdb",
        "web",
        "-o",
        "jsonpath={.status.expectedPods} {.status.currentHealthy} {.status.desiredHealthy} {.status.conditions[0].reason}",
    ]);
    assert_eq!(allowed, "3 3 3 InsufficientPods");

    // The node with the first pod: draining it cordons it, but the budget refuses evictions.
    let node = server.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[0].spec.nodeName}",
    ]);
    let refused = server.kubectl(&[
        "drain",
        &node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=8s",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{stderr}"
    );
    let unschedulable = server.kubectl_ok(&["get", "node", &node, "-o", "jsonpath={.spec.unschedulable}"]);
    assert_eq!(unschedulable, "true");
    let pods = server.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "--field-selector",
        &format!("spec.nodeName={node}"),
        "--no-headers",
    ]);
    assert!(!pods.trim().is_empty(), "pods stay while the budget refuses");

    // With one disruption allowed, drain evicts one pod at a time: the replacement has to be
    // ready on the other node before the next eviction is allowed.
    server.kubectl_ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":2}}"#,
    ]);
    pdb_row(&server, "web", &["web", "2", "N/A", "1"]);
    let drained = server.kubectl(&[
        "drain",
        &node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=90s",
    ]);
    let stdout = String::from_utf8_lossy(&drained.stdout);
    assert!(
        drained.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&drained.stderr)
    );
    assert!(stdout.contains(&format!("node/{node} drained")), "{stdout}");
    wait_for("3 ready replicas off the drained node", 60, || {
        let placed = server.kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.spec.nodeName} {.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ]);
        let ready_elsewhere = placed
            .lines()
            .filter(|l| !l.starts_with(&format!("{node} ")) && l.ends_with("True"))
            .count();
        (ready_elsewhere == 3).then_some(placed)
    });
    pdb_row(&server, "web", &["web", "2", "N/A", "1"]);
}
