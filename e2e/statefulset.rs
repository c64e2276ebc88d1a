//! StatefulSets through the real kubectl with the controllers of `rudder server` and pods on
//! `--simulated-nodes`: ordered scale up and down, rolling update with `rollout status`,
//! `rollout history` and `rollout undo`. Claims from volumeClaimTemplates are tested
//! in-process (reconcilers/tests/statefulset.rs): nothing binds PVCs yet, so pods using them
//! would stay unscheduled here.

use std::time::Duration;

use crate::harness::Server;

const MANIFEST: &str = "\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: 3
  serviceName: nginx
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.25
";

/// The messages of the set's events, oldest first.
fn events(server: &Server, reason: &str) -> Vec<String> {
    let out = server.kubectl_ok(&["get", "events.v1.events.k8s.io", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut events: Vec<(String, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == reason && e["regarding"]["kind"] == "StatefulSet")
        .map(|e| {
            (
                e["eventTime"].as_str().unwrap_or_default().to_owned(),
                e["note"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    events.sort();
    events.into_iter().map(|(_, note)| note).collect()
}

fn rollout_status(server: &Server) -> String {
    server.kubectl_ok(&["rollout", "status", "statefulset/web", "--timeout=90s"])
}

fn images(server: &Server) -> String {
    server.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=nginx",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}={.spec.containers[0].image} {end}",
    ])
}

#[test]
fn kubectl_scales_and_rolls_statefulsets_in_order() {
    let server = Server::start_with(&["--simulated-nodes", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("web.yaml");
    std::fs::write(&file, MANIFEST).unwrap();
    let out = server.kubectl_ok(&["create", "-f", file.to_str().unwrap()]);
    assert_eq!(out.trim(), "statefulset.apps/web created");
    // The API server defaults `rollingUpdate.partition` to 0, so kubectl reports a
    // partitioned roll out, as it does against a real cluster.
    let status = rollout_status(&server);
    assert!(
        status.contains("partitioned roll out complete: 3 new pods have been updated..."),
        "{status}"
    );
    // Created one at a time in ordinal order, each after its predecessor was Ready.
    assert_eq!(
        events(&server, "SuccessfulCreate"),
        [
            "Create Pod web-0 in StatefulSet web successful",
            "Create Pod web-1 in StatefulSet web successful",
            "Create Pod web-2 in StatefulSet web successful",
        ]
    );
    let times = server.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=nginx",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.metadata.creationTimestamp} {.status.conditions[?(@.type==\"Ready\")].lastTransitionTime}{\"\\n\"}{end}",
    ]);
    let rows: Vec<Vec<&str>> = times.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(rows.len(), 3, "{times}");
    for pair in rows.windows(2) {
        assert!(
            pair[1][1] >= pair[0][2],
            "created before its predecessor was ready: {times}"
        );
    }
    let placed = server.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=nginx",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name} {.spec.hostname}.{.spec.subdomain} {.spec.nodeName}{\"\\n\"}{end}",
    ]);
    for line in placed.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        assert_eq!(parts[1], format!("{}.nginx", parts[0]), "{placed}");
        assert!(parts[2].starts_with("sim-node-"), "{placed}");
    }
    let table = server.kubectl_ok(&["get", "statefulset", "web", "--no-headers"]);
    let columns: Vec<&str> = table.split_whitespace().collect();
    assert_eq!(&columns[..2], ["web", "3/3"], "{table}");

    // Scale down: highest ordinal first.
    let out = server.kubectl_ok(&["scale", "statefulset", "web", "--replicas=1"]);
    assert_eq!(out.trim(), "statefulset.apps/web scaled");
    rollout_status(&server);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while server
        .kubectl_ok(&["get", "pods", "-l", "app=nginx", "-o", "name"])
        .trim()
        != "pod/web-0"
    {
        assert!(std::time::Instant::now() < deadline, "scale down did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        events(&server, "SuccessfulDelete"),
        [
            "Delete Pod web-2 in StatefulSet web successful",
            "Delete Pod web-1 in StatefulSet web successful",
        ]
    );
    server.kubectl_ok(&["scale", "statefulset", "web", "--replicas=3"]);
    rollout_status(&server);

    // Rolling update, then history and undo.
    let out = server.kubectl_ok(&["set", "image", "statefulset/web", "nginx=nginx:1.27"]);
    assert_eq!(out.trim(), "statefulset.apps/web image updated");
    let status = rollout_status(&server);
    assert!(
        status.contains("partitioned roll out complete: 3 new pods have been updated..."),
        "{status}"
    );
    assert_eq!(
        images(&server).trim(),
        "web-0=nginx:1.27 web-1=nginx:1.27 web-2=nginx:1.27"
    );
    let history = server.kubectl_ok(&["rollout", "history", "statefulset/web"]);
    assert!(
        history
            .starts_with("statefulset.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>"),
        "{history}"
    );
    let revision = server.kubectl_ok(&["rollout", "history", "statefulset/web", "--revision=1"]);
    assert!(revision.contains("nginx:1.25"), "{revision}");
    let revisions = server.kubectl_ok(&["get", "controllerrevisions", "-o", "name"]);
    assert_eq!(revisions.lines().count(), 2, "{revisions}");

    let out = server.kubectl_ok(&["rollout", "undo", "statefulset/web"]);
    assert_eq!(out.trim(), "statefulset.apps/web rolled back");
    rollout_status(&server);
    assert_eq!(
        images(&server).trim(),
        "web-0=nginx:1.25 web-1=nginx:1.25 web-2=nginx:1.25"
    );
    let history = server.kubectl_ok(&["rollout", "history", "statefulset/web"]);
    assert!(
        history.contains("2         <none>\n3         <none>"),
        "{history}"
    );
}
