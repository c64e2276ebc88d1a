//! The pod network (netd) on a real node: pods get addresses from the node's podCIDR and reach
//! each other and the host. netd configures the host's network (bridge, routes, nftables), one
//! for every test on the machine, so these tests take a lock and run one at a time, and clean
//! the host up afterwards. Needs root; without it every test says it was skipped.

use std::process::Command;

use crate::harness::{Server, free_port, wait_for};
use crate::node::{IMAGE, apply, jsonpath, node_data_dir, wait_node_ready};

/// The bridge and nftables table netd makes with its defaults.
const BRIDGE: &str = "rudder0";
const TABLES: [&str; 3] = ["rudder-net", "rudder-proxy", "rudder-policy"];

/// A server that is a node with netd, holding the machine's network for the test.
pub struct NetworkNode {
    pub server: Server,
    _dir: tempfile::TempDir,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl Drop for NetworkNode {
    fn drop(&mut self) {
        // The server (and its pods) first, then what netd left on the host.
        self.server.shut_down();
        clean_host();
    }
}

/// The machine's network held for a test, cleaned when dropped.
struct HostNetwork(#[allow(dead_code, reason = "held for its lock")] nix::fcntl::Flock<std::fs::File>);

impl HostNetwork {
    fn hold() -> HostNetwork {
        let lock = lock_file("rudder-e2e-network.lock");
        clean_host();
        HostNetwork(lock)
    }
}

impl Drop for HostNetwork {
    fn drop(&mut self) {
        clean_host();
    }
}

/// Removes what netd configures on the host with its defaults.
fn clean_host() {
    let _ = Command::new("ip").args(["link", "del", BRIDGE]).output();
    let _ = Command::new("ip").args(["link", "del", "rudder.vxlan"]).output();
    let _ = Command::new("ip")
        .args(["route", "flush", "proto", "0x52"])
        .output();
    for table in TABLES {
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", table])
            .output();
    }
}

/// A node server with netd (more server `flags`); `None` without root.
pub fn network_node(flags: &[&str]) -> Option<NetworkNode> {
    let dir = node_data_dir()?;
    let lock = lock_file("rudder-e2e-network.lock");
    clean_host();
    let mut args = vec!["--agent-with-netd"];
    args.extend_from_slice(flags);
    let server = Server::start_in(dir.path(), free_port(), &args);
    wait_node_ready(&server);
    Some(NetworkNode {
        server,
        _dir: dir,
        _lock: lock,
    })
}

/// An exclusive lock on a file in the temp dir, held until dropped.
fn lock_file(name: &str) -> nix::fcntl::Flock<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join(name))
        .unwrap();
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, err)| err)
        .unwrap()
}

/// A pod running `command` (a shell script) in the busybox image.
fn pod(name: &str, labels: &str, command: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{{labels}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
    command: [sh, -c, '{command}']
"
    )
}

/// An HTTP server on port 8080 answering with the pod's host name.
const WEB: &str = "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www";

fn running_ip(server: &Server, name: &str) -> String {
    wait_for(&format!("{name} Running with an IP"), 90, || {
        let phase = jsonpath(server, name, "{.status.phase}");
        let ip = jsonpath(server, name, "{.status.podIP}");
        (phase == "Running" && !ip.is_empty()).then_some(ip)
    })
}

fn exec(server: &Server, pod: &str, script: &str) -> std::process::Output {
    server.kubectl(&["exec", pod, "--", "sh", "-c", script])
}

/// The body `pod` gets for `GET /` from `address:port` (busybox's nc: the image's wget
/// crashes in static builds), or `None` when it gets nothing.
fn http_get(server: &Server, pod: &str, address: &str, port: u16) -> Option<String> {
    let out = exec(
        server,
        pod,
        &format!("printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 3 {address} {port}"),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

#[test]
fn pods_get_addresses_from_the_node_range_and_reach_each_other_and_the_host() {
    let Some(node) = network_node(&[]) else {
        return;
    };
    let server = &node.server;
    apply(server, &pod("web", "app: web", WEB));
    apply(server, &pod("client", "app: client", "exec sleep 3600"));
    let web_ip = running_ip(server, "web");
    let client_ip = running_ip(server, "client");
    let pod_cidr = server.kubectl_ok(&["get", "nodes", "-o", "jsonpath={.items[0].spec.podCIDR}"]);
    let prefix = pod_cidr.trim_end_matches("0/24");
    assert!(pod_cidr.ends_with(".0/24"), "{pod_cidr}");
    for ip in [&web_ip, &client_ip] {
        assert!(
            ip.starts_with(prefix) && !ip.ends_with(".1"),
            "{ip} is not a pod address of {pod_cidr}"
        );
    }
    assert_ne!(web_ip, client_ip);
    assert_eq!(
        jsonpath(server, "client", "{.status.podIPs[*].ip}"),
        client_ip,
        "podIPs lists the one address"
    );

    // Inside the pod: eth0 has the address, the default route goes through the bridge.
    let inside = exec(server, "client", "ip -o -4 addr show eth0; ip route");
    let inside = String::from_utf8_lossy(&inside.stdout);
    assert!(inside.contains(&format!("inet {client_ip}/24")), "{inside}");
    assert!(inside.contains(&format!("default via {prefix}1")), "{inside}");

    // Pod to pod, by address.
    let fetched = wait_for("the client fetching from web", 30, || {
        http_get(server, "client", &web_ip, 8080)
    });
    assert_eq!(fetched.trim(), "web");

    // The host reaches pods through the bridge.
    let (code, body) = crate::harness::curl(&["-s", "--max-time", "5", &format!("http://{web_ip}:8080/")]);
    assert_eq!((code, body.trim()), (200, "web"));

    // A pod's address goes back to the range when the pod goes; the node keeps its bridge.
    server.kubectl_ok(&["delete", "pod", "web", "--wait=true"]);
    apply(server, &pod("web2", "app: web", WEB));
    let web2_ip = running_ip(server, "web2");
    assert!(web2_ip.starts_with(prefix));
    let leases: Vec<String> = std::fs::read_dir(
        server
            .data_dir
            .join(format!("netd/ipam/{}", pod_cidr.replace('/', "-"))),
    )
    .unwrap()
    .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
    .filter(|name| name != "last_reserved_ip")
    .collect();
    assert_eq!(leases.len(), 2, "web's lease is released: {leases:?}");
    let link = Command::new("ip")
        .args(["-o", "-4", "addr", "show", BRIDGE])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&link.stdout).contains(&format!("inet {prefix}1/24")),
        "the bridge has the gateway address"
    );
}

/// A Deployment of `replicas` web servers labelled `app: NAME` and a Service `NAME` of
/// `service_type` in front of them (with more `service_spec` lines).
fn web_service(server: &Server, name: &str, replicas: u32, service_type: &str, service_spec: &str) {
    apply(
        server,
        &format!(
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {IMAGE}
        command: [sh, -c, '{WEB}']
        readinessProbe:
          tcpSocket: {{port: 8080}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  type: {service_type}
  selector: {{app: {name}}}
  ports:
  - port: 80
    targetPort: 8080
{service_spec}"
        ),
    );
}

fn cluster_ip(server: &Server, service: &str) -> String {
    server.kubectl_ok(&["get", "service", service, "-o", "jsonpath={.spec.clusterIP}"])
}

/// Waits until `service` has `count` ready endpoints.
fn wait_endpoints(server: &Server, service: &str, count: usize) {
    wait_for(&format!("{count} ready endpoints of {service}"), 90, || {
        let out = server.kubectl(&[
            "get",
            "endpointslices",
            "-l",
            &format!("kubernetes.io/service-name={service}"),
            "-o",
            "jsonpath={.items[*].endpoints[?(@.conditions.ready==true)].addresses[0]}",
        ]);
        (String::from_utf8_lossy(&out.stdout).split_whitespace().count() == count).then_some(())
    });
}

/// The host names that answer `requests` requests from `pod` to `address:port`.
fn answers(server: &Server, pod: &str, address: &str, port: u16, requests: usize) -> Vec<String> {
    let out = exec(
        server,
        pod,
        &format!(
            "for i in $(seq {requests}); do printf \"GET / HTTP/1.0\\r\\n\\r\\n\" | nc -w 3 {address} {port} | tail -n 1; done"
        ),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn services_spread_load_pin_clients_reach_node_ports_and_refuse_without_endpoints() {
    let Some(node) = network_node(&[]) else {
        return;
    };
    let server = &node.server;
    web_service(server, "spread", 3, "NodePort", "");
    web_service(
        server,
        "sticky",
        2,
        "ClusterIP",
        "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 300}}\n",
    );
    apply(
        server,
        "apiVersion: v1
kind: Service
metadata:
  name: nobody
spec:
  selector: {app: nobody}
  ports:
  - port: 80
    targetPort: 8080
",
    );
    apply(server, &pod("client", "app: client", "exec sleep 3600"));
    running_ip(server, "client");
    wait_endpoints(server, "spread", 3);
    wait_endpoints(server, "sticky", 2);

    // ClusterIP: the requests spread over the three pods.
    let spread_ip = cluster_ip(server, "spread");
    let seen = wait_for("requests to spread reaching all three pods", 60, || {
        let hosts: std::collections::BTreeSet<String> = answers(server, "client", &spread_ip, 80, 30)
            .into_iter()
            .collect();
        (hosts.len() == 3 && hosts.iter().all(|h| h.starts_with("spread-"))).then_some(hosts)
    });
    assert_eq!(seen.len(), 3);

    // ClientIP affinity: every request from the client lands on the same pod.
    let sticky_ip = cluster_ip(server, "sticky");
    let sticky = wait_for("the sticky service answering", 30, || {
        let hosts = answers(server, "client", &sticky_ip, 80, 12);
        (hosts.len() == 12).then_some(hosts)
    });
    assert!(sticky[0].starts_with("sticky-"), "{sticky:?}");
    assert!(
        sticky.iter().all(|h| *h == sticky[0]),
        "one pod answers them all: {sticky:?}"
    );

    // NodePort, from the host on the node's address; the host reaches cluster IPs too.
    let node_port = server.kubectl_ok(&[
        "get",
        "service",
        "spread",
        "-o",
        "jsonpath={.spec.ports[0].nodePort}",
    ]);
    let node_ip = crate::node::internal_ip(server);
    let (code, body) =
        crate::harness::curl(&["-s", "--max-time", "5", &format!("http://{node_ip}:{node_port}/")]);
    assert_eq!(code, 200);
    assert!(body.trim().starts_with("spread-"), "{body}");
    let (code, body) = crate::harness::curl(&["-s", "--max-time", "5", &format!("http://{spread_ip}/")]);
    assert_eq!((code, body.trim().starts_with("spread-")), (200, true), "{body}");

    // No endpoints: the connection is refused at once, from a pod and from the host.
    let nobody_ip = cluster_ip(server, "nobody");
    let began = std::time::Instant::now();
    let out = exec(
        server,
        "client",
        &format!("nc -w 5 {nobody_ip} 80 </dev/null; echo exit=$?"),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(text.contains("exit=1"), "{text} {stderr}");
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(
        began.elapsed() < std::time::Duration::from_secs(4),
        "refused, not timed out"
    );
    let refused = Command::new("curl")
        .args(["-s", "--max-time", "5", &format!("http://{nobody_ip}/")])
        .output()
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(7),
        "curl: could not connect (refused)"
    );
}

/// What busybox's nslookup prints for `args` from `pod`.
fn nslookup(server: &Server, pod: &str, args: &str) -> String {
    let out = exec(server, pod, &format!("nslookup {args} 2>&1"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn cluster_dns_answers_for_services_headless_endpoints_statefulsets_and_external_names() {
    let Some(node) = network_node(&[]) else {
        return;
    };
    let server = &node.server;
    web_service(server, "spread", 1, "ClusterIP", "");
    apply(
        server,
        &format!(
            "apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  clusterIP: None
  selector: {{app: db}}
  ports:
  - name: http
    port: 8080
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 2
  selector:
    matchLabels: {{app: db}}
  template:
    metadata:
      labels: {{app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: {IMAGE}
        command: [sh, -c, '{WEB}']
        ports: [{{name: http, containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata:
  name: ext
spec:
  type: ExternalName
  externalName: example.org
"
        ),
    );
    apply(server, &pod("client", "app: client", "exec sleep 3600"));
    running_ip(server, "client");
    wait_endpoints(server, "db", 2);
    let dns_ip = cluster_ip_in(server, "kube-system", "kube-dns");
    assert_eq!(dns_ip, "10.96.0.10");
    let resolv = exec(server, "client", "cat /etc/resolv.conf");
    assert!(String::from_utf8_lossy(&resolv.stdout).contains("nameserver 10.96.0.10"));

    // A service by its short name (through the search path) and by its FQDN.
    let spread_ip = cluster_ip(server, "spread");
    let short = wait_for("the client resolving spread", 30, || {
        let out = nslookup(server, "client", "spread");
        out.contains(&format!("Address: {spread_ip}")).then_some(out)
    });
    assert!(short.contains("spread.default.svc.cluster.local"), "{short}");
    let fqdn = nslookup(server, "client", "spread.default.svc.cluster.local");
    assert!(fqdn.contains(&format!("Address: {spread_ip}")), "{fqdn}");

    // A headless service: its pods' addresses; a StatefulSet pod by hostname.subdomain.
    let db0 = running_ip(server, "db-0");
    let db1 = running_ip(server, "db-1");
    let headless = nslookup(server, "client", "db.default.svc.cluster.local");
    assert!(
        headless.contains(&format!("Address: {db0}")) && headless.contains(&format!("Address: {db1}")),
        "{headless}"
    );
    let by_hostname = nslookup(server, "client", "db-0.db.default.svc.cluster.local");
    assert!(
        by_hostname.contains(&format!("Address: {db0}")) && !by_hostname.contains(&db1),
        "{by_hostname}"
    );

    // SRV records of a named port.
    let srv = nslookup(
        server,
        "client",
        "-type=SRV _http._tcp.db.default.svc.cluster.local",
    );
    assert!(srv.contains("8080 db-0.db.default.svc.cluster.local"), "{srv}");
    assert!(srv.contains("8080 db-1.db.default.svc.cluster.local"), "{srv}");

    // ExternalName: a CNAME; names that do not exist: NXDOMAIN.
    let external = nslookup(server, "client", "-type=CNAME ext.default.svc.cluster.local");
    assert!(external.contains("canonical name = example.org"), "{external}");
    let missing = nslookup(server, "client", "nope.default.svc.cluster.local");
    assert!(missing.contains("NXDOMAIN"), "{missing}");
}

fn cluster_ip_in(server: &Server, namespace: &str, service: &str) -> String {
    wait_for(&format!("service {namespace}/{service}"), 30, || {
        let out = server.kubectl(&[
            "get",
            "service",
            "-n",
            namespace,
            service,
            "-o",
            "jsonpath={.spec.clusterIP}",
        ]);
        let ip = String::from_utf8_lossy(&out.stdout).into_owned();
        (!ip.is_empty()).then_some(ip)
    })
}

#[test]
fn a_default_deny_policy_blocks_traffic_and_an_allow_rule_reopens_it_for_a_label() {
    let Some(node) = network_node(&[]) else {
        return;
    };
    let server = &node.server;
    apply(server, &pod("web", "app: web", WEB));
    apply(server, &pod("client", "role: client", "exec sleep 3600"));
    apply(server, &pod("other", "role: other", "exec sleep 3600"));
    let web_ip = running_ip(server, "web");
    running_ip(server, "client");
    running_ip(server, "other");
    for from in ["client", "other"] {
        wait_for(&format!("{from} reaching web"), 30, || {
            http_get(server, from, &web_ip, 8080)
        });
    }

    apply(
        server,
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
spec:
  podSelector: {}
  policyTypes: [Ingress]
",
    );
    wait_for("default-deny blocking the client", 30, || {
        http_get(server, "client", &web_ip, 8080).is_none().then_some(())
    });
    assert_eq!(http_get(server, "other", &web_ip, 8080), None);

    apply(
        server,
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: web-from-clients
spec:
  podSelector:
    matchLabels: {app: web}
  ingress:
  - from:
    - podSelector:
        matchLabels: {role: client}
    ports:
    - port: 8080
",
    );
    let body = wait_for("the allow rule reopening web to the client", 30, || {
        http_get(server, "client", &web_ip, 8080)
    });
    assert_eq!(body.trim(), "web");
    assert_eq!(
        http_get(server, "other", &web_ip, 8080),
        None,
        "other has no allowed label"
    );

    // Deleting the policies opens everything again.
    server.kubectl_ok(&["delete", "networkpolicy", "--all"]);
    wait_for("other reaching web again", 30, || {
        http_get(server, "other", &web_ip, 8080)
    });
}

#[test]
fn host_ports_publish_a_pod_on_the_node_address() {
    let Some(node) = network_node(&[]) else {
        return;
    };
    let server = &node.server;
    apply(
        server,
        &format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: published
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
    command: [sh, -c, '{WEB}']
    ports:
    - containerPort: 8080
      hostPort: 18080
"
        ),
    );
    apply(server, &pod("client", "app: client", "exec sleep 3600"));
    running_ip(server, "published");
    running_ip(server, "client");
    let node_ip = crate::node::internal_ip(server);
    let body = wait_for("the host port answering from the host", 30, || {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "3", &format!("http://{node_ip}:18080/")])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(body.trim(), "published");
    let from_pod = wait_for("the host port answering a pod", 30, || {
        http_get(server, "client", &node_ip, 18080)
    });
    assert_eq!(from_pod.trim(), "published");
}

#[test]
fn other_nodes_pod_ranges_are_routed_through_their_addresses_on_a_shared_link() {
    let Some(node) = network_node(&[]) else {
        return;
    };
    let server = &node.server;
    // A link to a namespace standing in for another machine.
    let (_netns, _cleanup) = linked_namespace("rudder-e2e-peer", "vpeer0");
    ip(&["addr", "add", "192.168.78.1/24", "dev", "vpeer0"]);

    apply(
        server,
        "apiVersion: v1
kind: Node
metadata:
  name: peer
spec:
  podCIDR: 10.244.200.0/24
  podCIDRs: [10.244.200.0/24]
",
    );
    server.kubectl_ok(&[
        "patch",
        "node",
        "peer",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"addresses":[{"type":"InternalIP","address":"192.168.78.2"}]}}"#,
    ]);
    let route = || {
        let out = Command::new("ip")
            .args(["route", "show", "10.244.200.0/24"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let shown = wait_for("the route to the peer's pods", 30, || {
        let shown = route();
        (!shown.is_empty()).then_some(shown)
    });
    assert_eq!(shown, "10.244.200.0/24 via 192.168.78.2 dev vpeer0 proto 82");
    server.kubectl_ok(&["delete", "node", "peer"]);
    wait_for("the route gone with the node", 30, || {
        route().is_empty().then_some(())
    });
}

/// Runs `ip` with `args`, failing the test with its message if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace (`<prefix>-<pid>`) standing in for another machine, linked to the
/// host by a veth pair, `host_link` here and `eth0` there, both up; removed when the guard
/// drops.
fn linked_namespace(prefix: &str, host_link: &str) -> (String, Cleanup) {
    let netns = format!("{prefix}-{}", std::process::id());
    ip(&["netns", "add", &netns]);
    let cleanup = Cleanup(vec![
        vec!["link".into(), "del".into(), host_link.into()],
        vec!["netns".into(), "del".into(), netns.clone()],
    ]);
    ip(&[
        "link", "add", host_link, "type", "veth", "peer", "name", "eth0", "netns", &netns,
    ]);
    ip(&["link", "set", host_link, "up"]);
    ip(&["-n", &netns, "link", "set", "eth0", "up"]);
    (netns, cleanup)
}

/// `ip` commands run when dropped.
struct Cleanup(Vec<Vec<String>>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for args in &self.0 {
            let _ = Command::new("ip").args(args).output();
        }
    }
}

/// A pod like [`pod`], bound to `node`.
fn pod_on(name: &str, node: &str, command: &str) -> String {
    pod(name, &format!("app: {name}"), command).replace("spec:\n", &format!("spec:\n  nodeName: {node}\n"))
}

/// A ClusterIP Service `name` for the pod labelled `app: <pod>` on port 80 -> 8080.
fn service_for(name: &str, pod: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {pod}}}
  ports:
  - port: 80
    targetPort: 8080
"
    )
}

#[test]
fn a_second_node_joins_with_rudder_agent_and_pods_on_both_reach_each_other_and_services() {
    two_nodes(true);
}

#[test]
fn nodes_that_share_no_link_reach_each_others_pods_through_the_vxlan_overlay() {
    two_nodes(false);
}

/// A node server and a second node joined with `rudder agent` in a network namespace on a
/// veth link to the host; with `shared_link`, the two addresses share a /24 (direct routes),
/// else each is a /32 reached through a host route (the VXLAN overlay).
fn two_nodes(shared_link: bool) {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root");
        return;
    }
    // The second machine: a network namespace on a link to the host (one such test at a
    // time), made before the server starts so its certificates cover the host's address on
    // the link.
    let _two_nodes = lock_file("rudder-e2e-two-nodes.lock");
    let (netns, _cleanup) = linked_namespace("rudder-e2e-agent", "vagent0");
    let prefix = if shared_link { "/24" } else { "/32" };
    ip(&["addr", "add", &format!("192.168.79.1{prefix}"), "dev", "vagent0"]);
    ip(&[
        "-n",
        &netns,
        "addr",
        "add",
        &format!("192.168.79.2{prefix}"),
        "dev",
        "eth0",
    ]);
    ip(&["-n", &netns, "link", "set", "lo", "up"]);
    if !shared_link {
        ip(&["route", "add", "192.168.79.2/32", "dev", "vagent0"]);
        ip(&["-n", &netns, "route", "add", "192.168.79.1/32", "dev", "eth0"]);
    }
    ip(&["-n", &netns, "route", "add", "default", "via", "192.168.79.1"]);

    let Some(node) = network_node(&["--bind-address", "0.0.0.0", "--node-ip", "192.168.79.1"]) else {
        return;
    };
    let server = &node.server;
    let server_node = server.kubectl_ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);

    // `rudder agent` in the namespace, with the server's join token and a data dir of its own.
    let agent_dir = node_data_dir().unwrap();
    let agent_path = agent_dir.path().to_path_buf();
    let agent_command = || {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net=/run/netns/{netns}"))
            .arg(crate::harness::rudder_bin())
            .args([
                "agent",
                "--server",
                &format!("https://192.168.79.1:{}", server.port),
            ])
            .arg("--token-file")
            .arg(server.data_dir.join("token"))
            .arg("--data-dir")
            .arg(&agent_path)
            .arg("--pod-log-dir")
            .arg(agent_path.join("pod-logs"))
            .args(["--node-name", "agent-node"]);
        command
    };
    let mut agent = crate::harness::Noded::spawn(agent_command(), agent_dir, 10250);
    wait_for("the agent's node Ready", 90, || {
        agent.assert_running();
        let ready = server.kubectl(&[
            "get",
            "node",
            "agent-node",
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
        ]);
        (String::from_utf8_lossy(&ready.stdout) == "True").then_some(())
    });
    // It joined through the CSR API: a client certificate asked for with the bootstrap token,
    // a serving certificate asked for as the node; both approved and issued.
    let requests = server.kubectl_ok(&[
        "get",
        "csr",
        "-o",
        "jsonpath={range .items[*]}{.spec.signerName} {.spec.username} {.status.conditions[0].type}{\"\\n\"}{end}",
    ]);
    assert!(
        requests.lines().any(|l| l
            .starts_with("kubernetes.io/kube-apiserver-client-kubelet system:bootstrap:")
            && l.ends_with(" Approved")),
        "{requests}"
    );
    wait_for("the agent's serving certificate", 60, || {
        let requests = server.kubectl_ok(&[
            "get",
            "csr",
            "-o",
            "jsonpath={range .items[*]}{.spec.signerName} {.spec.username} {.status.certificate}{\"\\n\"}{end}",
        ]);
        requests
            .lines()
            .any(|l| l.starts_with("kubernetes.io/kubelet-serving system:node:agent-node ") && l.len() > 60)
            .then_some(())
    });
    let node_ip = server.kubectl_ok(&[
        "get",
        "node",
        "agent-node",
        "-o",
        "jsonpath={.status.addresses[?(@.type=='InternalIP')].address}",
    ]);
    assert_eq!(node_ip, "192.168.79.2");

    // A web server and a client on each node.
    apply(server, &pod_on("web-a", &server_node, WEB));
    apply(server, &pod_on("client-a", &server_node, "exec sleep 3600"));
    apply(server, &pod_on("web-b", "agent-node", WEB));
    apply(server, &pod_on("client-b", "agent-node", "exec sleep 3600"));
    apply(server, &service_for("web-a", "web-a"));
    apply(server, &service_for("web-b", "web-b"));
    let web_a = running_ip(server, "web-a");
    let web_b = running_ip(server, "web-b");
    running_ip(server, "client-a");
    running_ip(server, "client-b");
    let agent_range = server.kubectl_ok(&["get", "node", "agent-node", "-o", "jsonpath={.spec.podCIDR}"]);
    assert!(
        web_b.starts_with(agent_range.trim_end_matches("0/24")),
        "{web_b} is not from the agent's range {agent_range}"
    );
    assert!(
        !web_a.starts_with(agent_range.trim_end_matches("0/24")),
        "{web_a}"
    );
    // How each node reaches the other's pods: straight through the shared link, or into the
    // overlay.
    let route_to = |range: &str, namespace: Option<&str>| {
        let mut command = Command::new("ip");
        if let Some(namespace) = namespace {
            command.args(["-n", namespace]);
        }
        let out = command.args(["route", "show", range]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let server_range = server.kubectl_ok(&["get", "node", &server_node, "-o", "jsonpath={.spec.podCIDR}"]);
    let (to_agent, to_server) = wait_for("routes between the nodes", 30, || {
        let to_agent = route_to(&agent_range, None);
        let to_server = route_to(&server_range, Some(&netns));
        (!to_agent.is_empty() && !to_server.is_empty()).then_some((to_agent, to_server))
    });
    let agent_tunnel = agent_range.trim_end_matches("/24");
    let server_tunnel = server_range.trim_end_matches("/24");
    if shared_link {
        assert_eq!(
            to_agent,
            format!("{agent_range} via 192.168.79.2 dev vagent0 proto 82")
        );
        assert_eq!(
            to_server,
            format!("{server_range} via 192.168.79.1 dev eth0 proto 82")
        );
    } else {
        assert_eq!(
            to_agent,
            format!("{agent_range} via {agent_tunnel} dev rudder.vxlan proto 82 onlink")
        );
        assert_eq!(
            to_server,
            format!("{server_range} via {server_tunnel} dev rudder.vxlan proto 82 onlink")
        );
        let out = Command::new("ip")
            .args(["-n", &netns, "-d", "link", "show", "rudder.vxlan"])
            .output()
            .unwrap();
        let device = String::from_utf8_lossy(&out.stdout);
        assert!(
            device.contains("vxlan id 1 local 192.168.79.2") && device.contains("dstport 8472"),
            "{device}"
        );
        let out = Command::new("bridge")
            .args(["-n", &netns, "fdb", "show", "dev", "rudder.vxlan"])
            .output()
            .unwrap();
        let forwarding = String::from_utf8_lossy(&out.stdout);
        assert!(
            forwarding.contains("0a:52:c0:a8:4f:01 dst 192.168.79.1 self permanent"),
            "{forwarding}"
        );
    }

    // Pod to pod across the nodes, both ways (exec into the agent's pods goes through its
    // node server and the serving certificate it was issued).
    let reach = |from: &str, address: &str, port: u16, expect: &str| {
        let body = wait_for(&format!("{from} reaching {address}:{port}"), 60, || {
            http_get(server, from, address, port)
        });
        assert_eq!(body.trim(), expect, "{from} -> {address}:{port}");
    };
    reach("client-a", &web_b, 8080, "web-b");
    reach("client-b", &web_a, 8080, "web-a");
    // Each other's Services, by ClusterIP and (from the agent's pod, through its own node's
    // DNS) by name.
    reach("client-a", &cluster_ip(server, "web-b"), 80, "web-b");
    reach("client-b", &cluster_ip(server, "web-a"), 80, "web-a");
    reach("client-b", "web-a", 80, "web-a");
    reach("client-b", "web-b.default.svc.cluster.local", 80, "web-b");

    // Logs of a pod on the agent come through its node server too.
    let logs = server.kubectl(&["logs", "web-b"]);
    assert!(logs.status.success(), "{}", String::from_utf8_lossy(&logs.stderr));

    let log = agent.stop();
    assert!(log.contains("joined: client certificate signed"), "{log}");
    if !shared_link {
        return;
    }

    // Restarted, the agent keeps its credentials: no new requests, and the API server
    // reaches its node server (exec) with the kept serving certificate.
    let count_requests = || server.kubectl_ok(&["get", "csr", "-o", "name"]).lines().count();
    let requests = count_requests();
    agent.respawn(agent_command());
    let answered = wait_for("exec into the agent's pod after its restart", 60, || {
        agent.assert_running();
        let out = exec(server, "client-b", "echo again");
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(answered, "again\n");
    assert!(agent.log().contains("using the node credentials in the data dir"));
    assert_eq!(count_requests(), requests, "no new certificate requests");
}

#[test]
fn netd_as_a_process_of_its_own_connects_the_pods_of_a_separate_noded() {
    let Some(node_dir) = node_data_dir() else {
        return;
    };
    let _network = HostNetwork::hold();
    let server = Server::start();
    // `rudder netd` with the node's kubeconfig, then `rudder noded` asking it over its socket.
    let netd_dir = tempfile::tempdir().unwrap();
    let socket = netd_dir.path().join("netd.sock");
    let mut command = Command::new(crate::harness::rudder_bin());
    command
        .arg("netd")
        .arg("--kubeconfig")
        .arg(server.data_dir.join("node.kubeconfig"))
        .arg("--data-dir")
        .arg(netd_dir.path())
        .arg("--socket")
        .arg(&socket);
    let netd_path = netd_dir.path().to_path_buf();
    let mut netd = crate::harness::Noded::spawn(command, netd_dir, 0);
    wait_for("netd's socket", 30, || {
        netd.assert_running();
        socket.exists().then_some(())
    });
    let mut noded = crate::harness::Noded::start_in(
        &server,
        node_dir,
        &["--netd-socket", &socket.display().to_string()],
        &[],
    );
    crate::node::wait_noded_ready(&server, &mut noded);
    apply(&server, &pod("web", "app: web", WEB));
    apply(&server, &pod("client", "app: client", "exec sleep 3600"));
    apply(&server, &service_for("web", "web"));
    let web_ip = running_ip(&server, "web");
    running_ip(&server, "client");
    let pod_cidr = server.kubectl_ok(&["get", "nodes", "-o", "jsonpath={.items[0].spec.podCIDR}"]);
    assert!(
        web_ip.starts_with(pod_cidr.trim_end_matches("0/24")),
        "{web_ip} in {pod_cidr}"
    );
    // The pod network, the service proxy and DNS all come from the netd process.
    for address in [web_ip.as_str(), &cluster_ip(&server, "web"), "web"] {
        let port = if address == web_ip { 8080 } else { 80 };
        let body = wait_for(&format!("client reaching {address}:{port}"), 30, || {
            http_get(&server, "client", address, port)
        });
        assert_eq!(body.trim(), "web");
    }
    // Deleting the pod releases its address through the socket too.
    let lease = netd_path.join(format!("netd/ipam/{}/{web_ip}", pod_cidr.replace('/', "-")));
    assert!(lease.exists(), "netd keeps web's lease in {}", lease.display());
    server.kubectl_ok(&["delete", "pod", "web", "--wait=true"]);
    wait_for("web's lease released", 30, || (!lease.exists()).then_some(()));
    noded.stop();
    netd.stop();
}
