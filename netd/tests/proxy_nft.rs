//! The service proxy's transactions against the kernel: full and partial syncs of a varied
//! set of services are accepted by `nft` and leave the table they describe. Runs in a network
//! namespace of its own (nftables tables are per namespace). Needs root and `nft`; without
//! them it says it was skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

use std::net::Ipv4Addr;
use std::process::Command;

use rudder_netd::proxy::model::{Endpoint, PortKey, Protocol, ServicePort};
use rudder_netd::proxy::rules::{self, Network, TABLE};

fn network() -> Network {
    Network {
        cluster_cidr: "10.244.0.0/16".parse().unwrap(),
        service_cidr: "10.96.0.0/16".parse().unwrap(),
    }
}

fn endpoint(last: u8, port: u16) -> Endpoint {
    Endpoint {
        ip: Ipv4Addr::new(10, 244, 0, last),
        port,
    }
}

fn port(name: &str, protocol: Protocol, cluster_ip: u8, cluster: Vec<Endpoint>) -> ServicePort {
    ServicePort {
        key: PortKey {
            namespace: "ns".into(),
            name: name.into(),
            port_name: String::new(),
            protocol,
        },
        cluster_ip: Ipv4Addr::new(10, 96, 0, cluster_ip),
        port: 80,
        node_port: None,
        external_ips: Vec::new(),
        affinity_timeout: None,
        local: cluster
            .iter()
            .filter(|e| e.ip.octets()[3] % 2 == 1)
            .cloned()
            .collect(),
        serving: cluster.iter().map(|e| e.ip).collect(),
        cluster,
        internal_local: false,
        external_local: false,
    }
}

fn services(generation: u8) -> Vec<ServicePort> {
    let mut web = port(
        "web",
        Protocol::Tcp,
        10,
        vec![endpoint(5, 8080), endpoint(6, 8080)],
    );
    web.node_port = Some(30080);
    web.affinity_timeout = Some(600);
    let mut local = port("local", Protocol::Tcp, 11, vec![endpoint(7, 80), endpoint(8, 80)]);
    local.node_port = Some(30081);
    local.external_ips = vec![Ipv4Addr::new(192, 0, 2, 50)];
    local.external_local = true;
    let dns = port("dns", Protocol::Udp, 12, vec![endpoint(9, 53)]);
    let sctp = port("sctp", Protocol::Sctp, 13, vec![endpoint(9, 9999)]);
    let mut empty = port("empty", Protocol::Tcp, 14, Vec::new());
    empty.node_port = Some(30082);
    let mut inside = port(
        "inside",
        Protocol::Tcp,
        15,
        vec![endpoint(11, 80), endpoint(12, 80)],
    );
    inside.internal_local = true;
    let mut all = vec![web, local, dns, sctp, empty, inside];
    if generation == 1 {
        // Endpoints move, a service goes, one comes, affinity changes its timeout.
        all[0].cluster = vec![endpoint(6, 8080), endpoint(20, 8080)];
        all[0].affinity_timeout = Some(30);
        all.remove(2);
        all.push(port("new", Protocol::Tcp, 16, vec![endpoint(21, 80)]));
    }
    all
}

fn in_new_namespace(work: impl FnOnce() + Send) {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                work();
            })
            .join()
            .unwrap();
    });
}

fn table_text() -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", TABLE])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn full_and_partial_syncs_are_accepted_and_converge() {
    if !nix::unistd::geteuid().is_root() || !rudder_netd::nft_available() {
        println!("skipped: needs root and nft");
        return;
    }
    in_new_namespace(|| {
        let node_ips = [Ipv4Addr::new(192, 0, 2, 2)];
        let first = rules::program(&services(0), &node_ips, &network());
        rules::full_sync(&first, &network()).apply(TABLE).unwrap();
        let listed = table_text();
        for expected in [
            "10.96.0.10 . tcp . 80 : goto service-ns/web/tcp/",
            "tcp . 30080 : goto external-ns/web/tcp/",
            "192.0.2.50 . tcp . 80 : goto external-ns/local/tcp/",
            "10.96.0.14 . tcp . 80 : goto reject-chain",
            "tcp . 30082 : goto reject-chain",
            "numgen random mod 2 vmap { 0 : goto endpoint-ns/web/tcp/__10.244.0.5/8080, 1 : goto endpoint-ns/web/tcp/__10.244.0.6/8080 }",
            "meta l4proto udp dnat to 10.244.0.9:53",
            "meta l4proto sctp dnat to 10.244.0.9:9999",
            "10.96.0.15 . tcp . 80 : goto local-ns/inside/tcp/",
            "update @affinity-ns/web/tcp/__10.244.0.5/8080-600 { ip saddr }",
            "fib saddr type local goto service-ns/local/tcp/",
        ] {
            assert!(listed.contains(expected), "missing {expected:?} in\n{listed}");
        }

        // A partial sync to the next generation leaves what a full sync of it would.
        let second = rules::program(&services(1), &node_ips, &network());
        rules::partial_sync(&first, &second).apply(TABLE).unwrap();
        let partial = table_text();
        rules::full_sync(&second, &network()).apply(TABLE).unwrap();
        let full = table_text();
        let normalize = |text: &str| {
            let mut lines: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
            lines.sort();
            lines
        };
        assert_eq!(normalize(&partial), normalize(&full));
        assert!(!full.contains("ns/dns/"), "the removed service is gone");
        assert!(full.contains("affinity-ns/web/tcp/__10.244.0.20/8080-30"));
        assert!(!full.contains("-600"), "the old affinity sets are gone");
    });
}

#[test]
fn network_policy_tables_are_accepted() {
    use rudder_netd::policy::model::{Allow, Isolation, Peers, Ports};
    use rudder_netd::policy::rules as policy;
    if !nix::unistd::geteuid().is_root() || !rudder_netd::nft_available() {
        println!("skipped: needs root and nft");
        return;
    }
    let web = Ipv4Addr::new(10, 244, 0, 5);
    let isolations = [
        (
            web,
            Isolation {
                ingress: Some(vec![
                    Allow {
                        peers: Peers::Addresses {
                            pods: [Ipv4Addr::new(10, 244, 0, 7)].into(),
                            blocks: vec![(
                                "192.0.2.0/24".parse().unwrap(),
                                vec!["192.0.2.128/25".parse().unwrap()],
                            )],
                        },
                        ports: Ports::Listed(vec![(Protocol::Tcp, 8080, 8080), (Protocol::Udp, 9000, 9010)]),
                    },
                    Allow {
                        peers: Peers::Any,
                        ports: Ports::Listed(vec![(Protocol::Sctp, 7, 7)]),
                    },
                ]),
                egress: Some(vec![]),
            },
        ),
        (
            Ipv4Addr::new(10, 244, 0, 6),
            Isolation {
                ingress: None,
                egress: Some(vec![Allow {
                    peers: Peers::Any,
                    ports: Ports::Any,
                }]),
            },
        ),
    ]
    .into();
    in_new_namespace(|| {
        policy::table(&isolations).apply(policy::TABLE).unwrap();
        let out = Command::new("nft")
            .args(["list", "table", "ip", policy::TABLE])
            .output()
            .unwrap();
        let listed = String::from_utf8(out.stdout).unwrap();
        for expected in [
            "ct state established,related accept",
            "ip saddr vmap { 10.244.0.5 : jump egress-10.244.0.5, 10.244.0.6 : jump egress-10.244.0.6 }",
            "ip daddr vmap { 10.244.0.5 : jump ingress-10.244.0.5 }",
            "ip saddr 10.244.0.7 tcp dport 8080 return",
            "ip saddr != 192.0.2.128/25 ip saddr 192.0.2.0/24 udp dport 9000-9010 return",
            "sctp dport 7 return",
        ] {
            assert!(listed.contains(expected), "missing {expected:?} in\n{listed}");
        }
        // A rebuild replaces the table whole.
        policy::table(&Default::default()).apply(policy::TABLE).unwrap();
        let out = Command::new("nft")
            .args(["list", "table", "ip", policy::TABLE])
            .output()
            .unwrap();
        assert!(!String::from_utf8(out.stdout).unwrap().contains("ingress-"));
    });
}

#[test]
fn stale_udp_flows_go_when_their_endpoint_does() {
    use rudder_netd::conntrack::{self, Conntrack};
    if !nix::unistd::geteuid().is_root() || !rudder_netd::nft_available() {
        println!("skipped: needs root and nft");
        return;
    }
    in_new_namespace(|| {
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        ip(&["link", "set", "lo", "up"]);
        ip(&["addr", "add", "10.244.0.9/32", "dev", "lo"]);
        ip(&["route", "add", "10.96.0.0/16", "dev", "lo"]);
        let ports = services(0);
        let programmed = rules::program(&ports, &[], &network());
        rules::full_sync(&programmed, &network()).apply(TABLE).unwrap();
        // A datagram to the UDP service (10.96.0.12:80), translated to its endpoint
        // 10.244.0.9:53.
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.send_to(b"hello", "10.96.0.12:80").unwrap();
        let to_service = |flow: &conntrack::Flow| {
            flow.original.destination == Some(Ipv4Addr::new(10, 96, 0, 12))
                && flow.original.destination_port == 80
        };
        let flows = Conntrack::open().unwrap().udp_flows().unwrap();
        let flow = flows.iter().find(|f| to_service(f)).expect("the flow is tracked");
        assert_eq!(flow.reply.source, Some(Ipv4Addr::new(10, 244, 0, 9)));
        assert_eq!(flow.reply.source_port, 53);

        // Its endpoint still serves: the flow stays.
        assert_eq!(conntrack::clean_stale(&ports).unwrap(), 0);
        // The endpoint moves: the flow is stale and goes.
        let mut moved = ports;
        let dns = moved.iter_mut().find(|p| p.key.name == "dns").unwrap();
        dns.cluster = vec![endpoint(10, 53)];
        dns.serving = vec![Ipv4Addr::new(10, 244, 0, 10)];
        assert_eq!(conntrack::clean_stale(&moved).unwrap(), 1);
        let flows = Conntrack::open().unwrap().udp_flows().unwrap();
        assert!(!flows.iter().any(to_service), "{flows:?}");
    });
}
