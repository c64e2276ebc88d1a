//! ResourceQuota with the real kubectl: `kubectl create quota`, the controller filling in
//! usage, creates beyond the quota refused with upstream's message as kubectl prints it, and
//! `kubectl describe quota`.

use std::time::{Duration, Instant};

use crate::harness::Server;

fn stderr_of(server: &Server, args: &[&str]) -> String {
    let out = server.kubectl(args);
    assert!(!out.status.success(), "kubectl {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn quota_limits_pods_and_configmaps() {
    let server = Server::start();
    server.kubectl_ok(&["create", "namespace", "team"]);
    let ns = ["-n", "team"];
    let with_ns = |args: &[&'static str]| -> Vec<&str> { args.iter().copied().chain(ns).collect() };
    let out = server.kubectl_ok(&with_ns(&[
        "create",
        "quota",
        "q",
        "--hard=pods=2,count/configmaps=3",
    ]));
    assert_eq!(out, "resourcequota/q created\n");
    let used = |expected: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let args = with_ns(&["get", "quota", "q", "-o", "jsonpath={.status.used}"]);
            let used = server.kubectl_ok(&args);
            if used == expected {
                return;
            }
            assert!(Instant::now() < deadline, "quota used is {used}, want {expected}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // kube-root-ca.crt counts.
    used(r#"{"count/configmaps":"1","pods":"0"}"#);

    server.kubectl_ok(&with_ns(&["run", "p1", "--image=nginx"]));
    server.kubectl_ok(&with_ns(&["run", "p2", "--image=nginx"]));
    let err = stderr_of(&server, &with_ns(&["run", "p3", "--image=nginx"]));
    assert_eq!(
        err,
        "Error from server (Forbidden): pods \"p3\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2\n"
    );

    server.kubectl_ok(&with_ns(&["create", "configmap", "c1"]));
    server.kubectl_ok(&with_ns(&["create", "configmap", "c2"]));
    let err = stderr_of(&server, &with_ns(&["create", "configmap", "c3"]));
    assert_eq!(
        err,
        "error: failed to create configmap: configmaps \"c3\" is forbidden: exceeded quota: q, requested: count/configmaps=1, used: count/configmaps=3, limited: count/configmaps=3\n"
    );
    used(r#"{"count/configmaps":"3","pods":"2"}"#);

    let describe = server.kubectl_ok(&with_ns(&["describe", "quota", "q"]));
    let lines: Vec<Vec<&str>> = describe.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(lines.contains(&vec!["Name:", "q"]), "{describe}");
    assert!(lines.contains(&vec!["Namespace:", "team"]), "{describe}");
    assert!(lines.contains(&vec!["Resource", "Used", "Hard"]), "{describe}");
    assert!(lines.contains(&vec!["count/configmaps", "3", "3"]), "{describe}");
    assert!(lines.contains(&vec!["pods", "2", "2"]), "{describe}");

    // Deleting gives the quota back.
    server.kubectl_ok(&with_ns(&["delete", "configmap", "c1"]));
    used(r#"{"count/configmaps":"2","pods":"2"}"#);
    server.kubectl_ok(&with_ns(&["create", "configmap", "c3"]));
}
