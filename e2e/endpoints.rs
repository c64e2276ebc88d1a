//! Endpoints and EndpointSlices of a deployment exposed with the real kubectl, on simulated
//! nodes: they list the ready pods' IPs and follow the deployment when it scales up and down;
//! `kubectl get endpoints` and `kubectl get endpointslices` print them.
//!
//! Simulated pods become Ready as soon as they run and stay so: readiness changes are covered
//! by the in-process tests (reconcilers/tests/endpoints.rs), which report pod status
//! themselves.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::harness::Server;

/// Runs `check` until it returns `Some`, for at most 60 s.
fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn words(out: &str) -> BTreeSet<String> {
    out.split_whitespace().map(str::to_owned).collect()
}

/// The IPs of the deployment's running pods that are not being deleted, once `count` of them
/// are Ready.
fn ready_pod_ips(server: &Server, count: usize) -> BTreeSet<String> {
    until(&format!("{count} ready pods"), || {
        let out = server.kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.metadata.deletionTimestamp}|{.status.podIP}|{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ]);
        let lines: Vec<&str> = out.lines().collect();
        let ready: Vec<String> = lines
            .iter()
            .filter_map(|line| {
                let mut parts = line.split('|');
                let (deleting, ip, ready) = (parts.next()?, parts.next()?, parts.next()?);
                (deleting.is_empty() && !ip.is_empty() && ready == "True").then(|| ip.to_owned())
            })
            .collect();
        (lines.len() == count && ready.len() == count).then(|| {
            let unique: BTreeSet<String> = ready.iter().cloned().collect();
            assert_eq!(unique.len(), count, "pod IPs are not unique: {ready:?}");
            unique
        })
    })
}

fn endpoint_ips(server: &Server) -> BTreeSet<String> {
    words(&server.kubectl_ok(&[
        "get",
        "endpoints",
        "web",
        "-o",
        "jsonpath={.subsets[*].addresses[*].ip}",
    ]))
}

/// The addresses of the ready endpoints in the service's slices.
fn slice_ips(server: &Server) -> BTreeSet<String> {
    words(&server.kubectl_ok(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
        "-o",
        "jsonpath={range .items[*].endpoints[*]}{.addresses[0]}={.conditions.ready} {end}",
    ]))
    .into_iter()
    .filter_map(|e| e.strip_suffix("=true").map(str::to_owned))
    .collect()
}

fn follows(server: &Server, count: usize) -> BTreeSet<String> {
    let ips = ready_pod_ips(server, count);
    until(&format!("endpoints {ips:?}"), || {
        (endpoint_ips(server) == ips && slice_ips(server) == ips).then_some(())
    });
    ips
}

#[test]
fn endpoints_and_slices_follow_a_deployment_exposed_with_kubectl() {
    let server = Server::start_with(&["--simulated-nodes", "2"]);
    server.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=3",
        "--port=80",
    ]);
    let out = server.kubectl_ok(&["expose", "deployment", "web", "--port=8080", "--target-port=80"]);
    assert_eq!(out.trim(), "service/web exposed");
    let ips = follows(&server, 3);

    // The Endpoints object: labels, ports and pod references as a real cluster writes them.
    let meta = server.kubectl_ok(&[
        "get",
        "endpoints",
        "web",
        "-o",
        "jsonpath={.metadata.labels.endpoints\\.kubernetes\\.io/managed-by} {.subsets[0].ports[0].port} {.subsets[0].addresses[0].targetRef.kind}",
    ]);
    assert_eq!(meta, "endpoint-controller 80 Pod");
    let out = server.kubectl_ok(&["get", "endpoints", "web"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "ENDPOINTS", "AGE"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row[0], "web");
    let listed: BTreeSet<String> = row[1]
        .split(',')
        .map(|e| e.strip_suffix(":80").unwrap_or(e).to_owned())
        .collect();
    assert_eq!(listed, ips, "{out}");

    // One EndpointSlice, managed by the controller, owned by the service.
    let out = server.kubectl_ok(&["get", "endpointslices", "-l", "kubernetes.io/service-name=web"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert!(row[0].starts_with("web-"), "{out}");
    assert_eq!((row[1], row[2]), ("IPv4", "80"), "{out}");
    let listed: BTreeSet<String> = row[3].split(',').map(str::to_owned).collect();
    assert_eq!(listed, ips, "{out}");
    assert!(lines.next().is_none(), "{out}");
    let slice = server.kubectl_ok(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=web",
        "-o",
        "jsonpath={.items[0].metadata.labels.endpointslice\\.kubernetes\\.io/managed-by} {.items[0].metadata.ownerReferences[0].kind}/{.items[0].metadata.ownerReferences[0].name} {.items[0].endpoints[0].nodeName}",
    ]);
    let parts: Vec<&str> = slice.split(' ').collect();
    assert_eq!(
        parts[..2],
        ["endpointslice-controller.k8s.io", "Service/web"],
        "{slice}"
    );
    assert!(parts[2].starts_with("sim-node-"), "{slice}");

    // Scale up, then down: the endpoints follow the ready pods.
    server.kubectl_ok(&["scale", "deployment", "web", "--replicas=5"]);
    let grown = follows(&server, 5);
    assert!(ips.is_subset(&grown), "{ips:?} {grown:?}");
    server.kubectl_ok(&["scale", "deployment", "web", "--replicas=1"]);
    let shrunk = follows(&server, 1);
    assert!(shrunk.is_subset(&grown), "{shrunk:?} {grown:?}");

    // Deleting the service takes its Endpoints and EndpointSlices with it.
    server.kubectl_ok(&["delete", "service", "web"]);
    until("endpoints and slices gone", || {
        let endpoints = server.kubectl_ok(&["get", "endpoints", "-o", "name"]);
        let slices = server.kubectl_ok(&[
            "get",
            "endpointslices",
            "-l",
            "kubernetes.io/service-name=web",
            "-o",
            "name",
        ]);
        (!endpoints.contains("endpoints/web") && slices.trim().is_empty()).then_some(())
    });
}
