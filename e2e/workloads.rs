//! Deployments through the real kubectl: create, scale, set image, rollout status, history,
//! undo, pause and resume, with the deployment and replica set controllers of `rudder server`.
//!
//! The pods run on simulated nodes (`--simulated-nodes`): the scheduler binds them and the
//! simulated kubelets report them Running and Ready.

use std::time::Duration;

use crate::harness::Server;

fn rollout_status(server: &Server) {
    let out = server.kubectl_ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    assert!(
        out.contains("deployment \"web\" successfully rolled out"),
        "{out}"
    );
}

fn image(server: &Server) -> String {
    server.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
}

#[test]
fn kubectl_rolls_deployments_out_back_and_forth() {
    let server = Server::start_with(&["--simulated-nodes", "2"]);
    let out = server.kubectl_ok(&["create", "deployment", "web", "--image=busybox", "--replicas=3"]);
    assert_eq!(out.trim(), "deployment.apps/web created");
    rollout_status(&server);
    // The replica set has the name a real cluster gives this template (upstream's ComputeHash
    // of the defaulted template).
    let sets = server.kubectl_ok(&["get", "rs", "-o", "name"]);
    assert_eq!(sets.trim(), "replicaset.apps/web-54f6478d6f");
    let pods = server.kubectl_ok(&["get", "pods", "-l", "app=web", "-o", "name"]);
    assert_eq!(pods.lines().count(), 3, "{pods}");
    // Bound by the scheduler to the simulated nodes, with pod IPs from the node's range.
    let placed = server.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=web",
        "-o",
        "jsonpath={range .items[*]}{.spec.nodeName} {.status.podIP}{\"\\n\"}{end}",
    ]);
    for line in placed.lines() {
        let (node, ip) = line.split_once(' ').unwrap();
        assert!(node.starts_with("sim-node-"), "{placed}");
        assert!(ip.starts_with("10.244."), "{placed}");
    }
    let ready = server.kubectl_ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.status.readyReplicas}/{.status.availableReplicas}",
    ]);
    assert_eq!(ready, "3/3");

    assert_eq!(
        server
            .kubectl_ok(&["scale", "deployment", "web", "--replicas=5"])
            .trim(),
        "deployment.apps/web scaled"
    );
    rollout_status(&server);
    let rs = server.kubectl_ok(&[
        "get",
        "rs",
        "-l",
        "app=web",
        "-o",
        "jsonpath={.items[*].spec.replicas}",
    ]);
    assert_eq!(rs, "5");

    let out = server.kubectl_ok(&["set", "image", "deployment/web", "busybox=busybox:1.36"]);
    assert_eq!(out.trim(), "deployment.apps/web image updated");
    rollout_status(&server);
    let history = server.kubectl_ok(&["rollout", "history", "deployment/web"]);
    assert!(
        history
            .starts_with("deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>"),
        "{history}"
    );
    let revision = server.kubectl_ok(&["rollout", "history", "deployment/web", "--revision=2"]);
    assert!(revision.contains("busybox:1.36"), "{revision}");

    let out = server.kubectl_ok(&["rollout", "undo", "deployment/web"]);
    assert_eq!(out.trim(), "deployment.apps/web rolled back");
    rollout_status(&server);
    assert_eq!(image(&server), "busybox");
    let history = server.kubectl_ok(&["rollout", "history", "deployment/web"]);
    assert!(
        history.contains("2         <none>\n3         <none>"),
        "{history}"
    );
    let sets = server.kubectl_ok(&["get", "rs", "-l", "app=web", "-o", "name"]);
    assert_eq!(sets.lines().count(), 2, "the first replica set is reused: {sets}");

    // Paused: template changes wait for resume.
    assert_eq!(
        server.kubectl_ok(&["rollout", "pause", "deployment/web"]).trim(),
        "deployment.apps/web paused"
    );
    server.kubectl_ok(&["set", "image", "deployment/web", "busybox=busybox:1.37"]);
    std::thread::sleep(Duration::from_secs(1));
    let sets = server.kubectl_ok(&["get", "rs", "-l", "app=web", "-o", "name"]);
    assert_eq!(sets.lines().count(), 2, "no rollout while paused: {sets}");
    assert_eq!(
        server.kubectl_ok(&["rollout", "resume", "deployment/web"]).trim(),
        "deployment.apps/web resumed"
    );
    rollout_status(&server);
    let sets = server.kubectl_ok(&["get", "rs", "-l", "app=web", "-o", "name"]);
    assert_eq!(sets.lines().count(), 3, "{sets}");
    let table = server.kubectl_ok(&["get", "deployment", "web", "--no-headers"]);
    let columns: Vec<&str> = table.split_whitespace().collect();
    assert_eq!(&columns[..4], ["web", "5/5", "5", "5"], "{table}");
    let described = server.kubectl_ok(&["describe", "deployment", "web"]);
    assert!(described.contains("(5/5 replicas created)"), "{described}");
    assert!(described.contains("NewReplicaSetAvailable"), "{described}");
    let events = server.kubectl_ok(&[
        "get",
        "events",
        "-o",
        "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
    ]);
    assert!(events.contains("Scaled up replica set web-"), "{events}");
}
