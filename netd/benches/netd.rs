//! netd's benchmark (as root, with `nft`): the service proxy's programming time, a full sync
//! and one new Service among 1,000 and 5,000 (a partial sync: what the proxy computes and
//! the nft transaction it applies), and cluster DNS queries per second from a pod (a network
//! namespace on a veth, asking the kube-dns cluster IP through the proxy's DNAT). Everything
//! runs in network namespaces of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use rudder_netd::dns::records::Index;
use rudder_netd::netlink::{Netlink, Route, RouteKind};
use rudder_netd::proxy::model::{self, ServicePort};
use rudder_netd::proxy::rules::{self, Network, TABLE};
use serde_json::json;

fn network() -> Network {
    Network {
        cluster_cidr: "10.244.0.0/16".parse().unwrap(),
        service_cidr: "10.96.0.0/16".parse().unwrap(),
    }
}

/// `count` Services of one TCP port (every tenth a NodePort) with two endpoints each, their
/// EndpointSlices, and kube-dns (UDP 53 to 10.244.0.1).
fn objects(count: u32) -> (Vec<Service>, Vec<EndpointSlice>) {
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for i in 0..count {
        let name = format!("svc-{i}");
        let cluster_ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 96, 16, 0)) + i);
        let node_port = (i % 10 == 0).then(|| 30000 + (i / 10) % 2700);
        let mut port = json!({"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"});
        if let Some(node_port) = node_port {
            port["nodePort"] = json!(node_port);
        }
        services.push(
            serde_json::from_value(json!({
                "metadata": {"namespace": "default", "name": name},
                "spec": {"type": if node_port.is_some() { "NodePort" } else { "ClusterIP" },
                         "clusterIP": cluster_ip.to_string(), "ports": [port]}
            }))
            .unwrap(),
        );
        let endpoint = |n: u32| {
            let ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 8, 0)) + (2 * i + n) % 60_000);
            json!({"addresses": [ip.to_string()], "nodeName": "bench", "conditions": {"ready": true}})
        };
        slices.push(
            serde_json::from_value(json!({
                "metadata": {"namespace": "default", "name": format!("{name}-x"),
                             "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4",
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                "endpoints": [endpoint(0), endpoint(1)]
            }))
            .unwrap(),
        );
    }
    services.push(
        serde_json::from_value(json!({
            "metadata": {"namespace": "kube-system", "name": "kube-dns"},
            "spec": {"clusterIP": "10.96.0.10", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}
        }))
        .unwrap(),
    );
    slices.push(
        serde_json::from_value(json!({
            "metadata": {"namespace": "kube-system", "name": "kube-dns-bench",
                         "labels": {"kubernetes.io/service-name": "kube-dns"}},
            "addressType": "IPv4",
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}],
            "endpoints": [{"addresses": ["10.244.0.1"], "nodeName": "bench", "conditions": {"ready": true}}]
        }))
        .unwrap(),
    );
    (services, slices)
}

fn ports(services: &[Service], slices: &[EndpointSlice]) -> Vec<ServicePort> {
    model::service_ports(services, slices, "bench")
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn bench_proxy(count: u32) {
    let node_ips = [Ipv4Addr::new(192, 0, 2, 2)];
    let (mut services, mut slices) = objects(count);
    let mut fulls = Vec::new();
    let mut programmed = rules::Programmed::default();
    for _ in 0..3 {
        let began = Instant::now();
        programmed = rules::program(&ports(&services, &slices), &node_ips, &network());
        let transaction = rules::full_sync(&programmed, &network());
        transaction.apply(TABLE).unwrap();
        fulls.push(began.elapsed());
    }
    let mut partials = Vec::new();
    let mut computes = Vec::new();
    let mut commands = 0;
    for extra in 0..5 {
        let (more_services, more_slices) = objects(count + 1 + extra);
        services.push(more_services[(count + extra) as usize].clone());
        slices.push(more_slices[(count + extra) as usize].clone());
        let began = Instant::now();
        let next = rules::program_reusing(
            Some(&programmed),
            &ports(&services, &slices),
            &node_ips,
            &network(),
        );
        let transaction = rules::partial_sync(&programmed, &next);
        computes.push(began.elapsed());
        commands = transaction.len();
        transaction.apply(TABLE).unwrap();
        partials.push(began.elapsed());
        programmed = next;
    }
    println!(
        "proxy, {count} services: full sync {} ({} chains, {} map and set elements); one new service (partial sync): {} ({} of it computing, {commands} nft commands)",
        ms(median(fulls)),
        programmed.chain_count(),
        programmed.element_count(),
        ms(median(partials)),
        ms(median(computes)),
    );
}

/// A network namespace of its own, kept by the returned file.
fn new_namespace() -> std::fs::File {
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        std::fs::File::open("/proc/thread-self/ns/net").unwrap()
    })
    .join()
    .unwrap()
}

fn bench_dns(seconds: u64, concurrency: usize) {
    // The pod: eth0 10.244.0.2/24 on a veth whose other end is 10.244.0.1 here.
    let pod = new_namespace();
    let pod_path = std::path::PathBuf::from(format!("/proc/self/fd/{}", pod.as_raw_fd()));
    let mut netlink = Netlink::open().unwrap();
    netlink.add_veth("vbench", "eth0", 1500, &pod).unwrap();
    let host = netlink.link_index("vbench").unwrap().unwrap();
    netlink
        .add_address(host, Ipv4Addr::new(10, 244, 0, 1), 24)
        .unwrap();
    netlink.set_up(host, None).unwrap();
    netlink.set_up(1, None).unwrap();
    Netlink::in_namespace(&pod_path, |inside| {
        let eth0 = inside.link_index("eth0")?.unwrap();
        inside.add_address(eth0, Ipv4Addr::new(10, 244, 0, 2), 24)?;
        inside.set_up(eth0, None)?;
        inside.set_up(1, None)?;
        inside.replace_route(&Route {
            destination: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
            gateway: Some(Ipv4Addr::new(10, 244, 0, 1)),
            device: Some(eth0),
            source: None,
            kind: RouteKind::Unicast,
            onlink: false,
        })
    })
    .unwrap();
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").ok();

    let (services, slices) = objects(1000);
    let programmed = rules::program(&ports(&services, &slices), &[], &network());
    rules::full_sync(&programmed, &network()).apply(TABLE).unwrap();
    let index = Arc::new(Index::new("cluster.local", &services, &slices));
    let (_publish, receiver) = tokio::sync::watch::channel(index);

    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    server_runtime.block_on(async {
        let mut server = hickory_server::Server::new(rudder_netd::dns::Handler::new(
            receiver,
            "cluster.local",
            Vec::new(),
        ));
        let bind: SocketAddr = "10.244.0.1:53".parse().unwrap();
        server.register_socket(tokio::net::UdpSocket::bind(bind).await.unwrap());
        std::mem::forget(server);
    });

    let answered = Arc::new(AtomicU64::new(0));
    let counter = answered.clone();
    let client = std::thread::spawn(move || {
        nix::sched::setns(&pod, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let mut tasks = Vec::new();
            for worker in 0..concurrency {
                let counter = counter.clone();
                tasks.push(tokio::spawn(async move {
                    let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await.unwrap();
                    socket.connect("10.96.0.10:53").await.unwrap();
                    let mut buffer = vec![0u8; 1500];
                    let mut id: u16 = u16::try_from(worker).unwrap_or(0).wrapping_mul(1000);
                    while Instant::now() < deadline {
                        id = id.wrapping_add(1);
                        let mut query = Message::new(id, MessageType::Query, OpCode::Query);
                        let name = Name::from_ascii(format!("svc-{}.default.svc.cluster.local.", id % 1000))
                            .unwrap();
                        query.add_query(hickory_proto::op::Query::query(name, RecordType::A));
                        query.metadata.recursion_desired = true;
                        socket.send(&query.to_vec().unwrap()).await.unwrap();
                        if let Ok(Ok(size)) =
                            tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buffer)).await
                            && let Ok(reply) = Message::from_vec(&buffer[..size])
                        {
                            // Only the right answer counts: the service's one A record.
                            assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
                            assert_eq!(reply.answers.len(), 1, "{reply:?}");
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
        });
    });
    client.join().unwrap();
    let total = answered.load(Ordering::Relaxed);
    println!(
        "DNS from a pod through the kube-dns cluster IP: {} queries/s ({total} answered in {seconds} s, {concurrency} clients, 1,000 services)",
        total / seconds
    );
    drop(server_runtime);
}

fn main() {
    if !nix::unistd::geteuid().is_root() || !rudder_netd::nft_available() {
        println!("netd benchmark skipped: needs root and nft");
        return;
    }
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut netlink = Netlink::open().unwrap();
        netlink.set_up(1, None).unwrap();
        for count in [1000, 5000] {
            bench_proxy(count);
        }
        bench_dns(5, 16);
    })
    .join()
    .unwrap();
}
