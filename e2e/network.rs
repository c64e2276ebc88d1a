//! The pod network (netd) on a real node: pods get addresses from the node's podCIDR and reach
//! each other and the host. netd configures the host's network (bridge, routes, nftables), one
//! for every test on the machine, so these tests take a lock and run one at a time, and clean
//! the host up afterwards. Needs root; without it every test says it was skipped.

use std::process::Command;

use crate::harness::{Server, free_port, wait_for};
use crate::node::{IMAGE, apply, jsonpath, node_data_dir, wait_node_ready};

/// The bridge and nftables table netd makes with its defaults.
const BRIDGE: &str = "rudder0";
const TABLE: &str = "rudder-net";

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

/// Removes what netd configures on the host with its defaults.
fn clean_host() {
    let _ = Command::new("ip").args(["link", "del", BRIDGE]).output();
    let _ = Command::new("ip")
        .args(["route", "flush", "proto", "0x52"])
        .output();
    let _ = Command::new("nft")
        .args(["delete", "table", "ip", TABLE])
        .output();
}

/// A node server with netd (more server `flags`); `None` without root.
pub fn network_node(flags: &[&str]) -> Option<NetworkNode> {
    let dir = node_data_dir()?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("rudder-e2e-network.lock"))
        .unwrap();
    let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, err)| err)
        .unwrap();
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
