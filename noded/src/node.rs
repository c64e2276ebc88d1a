//! The real node's Node object: the host facts a kubelet reports (capacity and allocatable,
//! addresses, nodeInfo, conditions, daemon endpoints), registration as kubelet does it
//! (create, or take over the Node an earlier run left), and the heartbeat: the node Lease
//! renewed every 10 s and the status reported when it changes or every 5 minutes.
//!
//! It reads the host (procfs, sysfs, statvfs) but changes nothing on it, and knows nothing of
//! pods or containers.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeSpec, NodeStatus,
    NodeSystemInfo, Taint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::lease::{LEASE_DURATION_SECONDS, NodeLease};

/// The Kubernetes version a node reports as its kubelet's.
pub const KUBELET_VERSION: &str = "v1.35.0";
/// The port of the node's daemon endpoint (kubelet's 10250).
pub const DAEMON_PORT: i32 = 10250;
/// Pods a node admits (kubelet's `maxPods` default).
pub const MAX_PODS: u32 = 110;
/// Memory held back from allocatable: kubelet's default hard eviction threshold
/// `memory.available<100Mi`.
const EVICTION_MEMORY_BYTES: u64 = 100 * 1024 * 1024;
/// The share of the node filesystem held back from allocatable: `nodefs.available<10%`.
const EVICTION_NODEFS_PERCENT: u64 = 10;
/// How often the Lease is renewed: a quarter of its duration, as kubelet.
const LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(LEASE_DURATION_SECONDS as u64 / 4);
/// How often the status is computed (kubelet's `nodeStatusUpdateFrequency`).
const STATUS_UPDATE_INTERVAL: Duration = Duration::from_secs(10);
/// How often an unchanged status is reported (kubelet's `nodeStatusReportFrequency`).
const STATUS_REPORT_INTERVAL: Duration = Duration::from_secs(300);

/// Failures reading the host or registering the node.
#[derive(Debug, Error)]
pub enum NodeError {
    /// A host file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A host file did not say what it should.
    #[error("{path}: {what}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was missing or malformed.
        what: &'static str,
    },
    /// The data directory's filesystem could not be examined.
    #[error("examining the filesystem of {path}: {source}")]
    Statvfs {
        /// The directory.
        path: PathBuf,
        /// The failure.
        source: nix::Error,
    },
    /// The Node could not be written.
    #[error("registering node {name}: {source}")]
    Register {
        /// The node.
        name: String,
        /// The failure.
        source: kube::Error,
    },
    /// The Lease could not be acquired.
    #[error(transparent)]
    Lease(#[from] crate::lease::LeaseError),
}

/// What the operator says about the node.
#[derive(Debug, Clone, Default)]
pub struct NodeConfig {
    /// The node name (kubelet: the lower-cased hostname unless overridden).
    pub name: String,
    /// The directory whose filesystem holds pods' data (ephemeral-storage).
    pub data_dir: PathBuf,
    /// The address reported as InternalIP; the address of the default route's interface
    /// when absent.
    pub node_ip: Option<IpAddr>,
    /// Labels added to the well-known ones (`--node-labels`).
    pub labels: BTreeMap<String, String>,
    /// Taints the node registers with (`--register-with-taints`).
    pub taints: Vec<Taint>,
    /// The port of the node's server (the kubelet's `--port`); 0 means 10250.
    pub kubelet_port: u16,
}

/// What the host is, as kubelet (through cAdvisor) sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostFacts {
    /// The lower-cased hostname.
    pub hostname: String,
    /// The InternalIP address, if the host has one.
    pub internal_ip: Option<IpAddr>,
    /// Online CPUs.
    pub cpus: u32,
    /// Physical memory in bytes.
    pub memory_bytes: u64,
    /// Capacity of the data directory's filesystem in bytes.
    pub ephemeral_storage_bytes: u64,
    /// Pre-allocated huge pages in bytes, by page size name (`2Mi`, `1Gi`).
    pub hugepages_bytes: BTreeMap<String, u64>,
    /// The node's system info.
    pub info: NodeSystemInfo,
}

impl HostFacts {
    /// Reads the host's facts. `data_dir` decides ephemeral-storage; `node_ip` overrides the
    /// detected address.
    pub fn gather(data_dir: &Path, node_ip: Option<IpAddr>) -> Result<HostFacts, NodeError> {
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|name| name.into_string().ok())
            .unwrap_or_else(|| "localhost".to_owned())
            .to_lowercase();
        let cpus = parse_cpu_list(&read("/sys/devices/system/cpu/online")?)
            .ok_or_else(|| parse_error("/sys/devices/system/cpu/online", "no CPU list"))?;
        let memory_bytes = parse_meminfo_total(&read("/proc/meminfo")?)
            .ok_or_else(|| parse_error("/proc/meminfo", "no MemTotal line"))?;
        let fs = nix::sys::statvfs::statvfs(data_dir).map_err(|source| NodeError::Statvfs {
            path: data_dir.to_owned(),
            source,
        })?;
        let ephemeral_storage_bytes = fs.blocks() * fs.fragment_size();
        let hugepages_bytes = [("2Mi", 2048u64), ("1Gi", 1_048_576u64)]
            .into_iter()
            .map(|(name, kib)| {
                let path = format!("/sys/kernel/mm/hugepages/hugepages-{kib}kB/nr_hugepages");
                let pages = std::fs::read_to_string(path)
                    .ok()
                    .and_then(|text| text.trim().parse::<u64>().ok())
                    .unwrap_or(0);
                (name.to_owned(), pages * kib * 1024)
            })
            .collect();
        let internal_ip = node_ip.or_else(|| {
            std::fs::read_to_string("/proc/net/route")
                .ok()
                .and_then(|routes| default_route_interface(&routes))
                .and_then(|interface| interface_ipv4(&interface))
        });
        let uname = nix::sys::utsname::uname().ok();
        let kernel_version = uname
            .as_ref()
            .and_then(|u| u.release().to_str())
            .unwrap_or_default()
            .to_owned();
        let machine_id = read_trimmed("/etc/machine-id").unwrap_or_default();
        let info = NodeSystemInfo {
            architecture: go_arch().to_owned(),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
            container_runtime_version: format!("rudder://{}", env!("CARGO_PKG_VERSION")),
            kernel_version,
            kubelet_version: KUBELET_VERSION.to_owned(),
            machine_id: machine_id.clone(),
            operating_system: "linux".to_owned(),
            os_image: std::fs::read_to_string("/etc/os-release")
                .ok()
                .and_then(|text| os_pretty_name(&text))
                .unwrap_or_else(|| "Linux".to_owned()),
            system_uuid: read_trimmed("/sys/class/dmi/id/product_uuid").unwrap_or(machine_id),
            ..NodeSystemInfo::default()
        };
        Ok(HostFacts {
            hostname,
            internal_ip,
            cpus,
            memory_bytes,
            ephemeral_storage_bytes,
            hugepages_bytes,
            info,
        })
    }

    /// Capacity as kubelet reports it.
    pub fn capacity(&self) -> BTreeMap<String, Quantity> {
        let mut capacity = BTreeMap::from([
            ("cpu".to_owned(), Quantity(self.cpus.to_string())),
            ("memory".to_owned(), kibibytes(self.memory_bytes)),
            (
                "ephemeral-storage".to_owned(),
                kibibytes(self.ephemeral_storage_bytes),
            ),
            ("pods".to_owned(), Quantity(MAX_PODS.to_string())),
        ]);
        for (size, bytes) in &self.hugepages_bytes {
            capacity.insert(format!("hugepages-{size}"), Quantity(bytes.to_string()));
        }
        capacity
    }

    /// Allocatable: capacity less the hard eviction thresholds and the huge pages (kubelet
    /// with no reservations configured).
    pub fn allocatable(&self) -> BTreeMap<String, Quantity> {
        let mut allocatable = self.capacity();
        let hugepages: u64 = self.hugepages_bytes.values().sum();
        let memory = self
            .memory_bytes
            .saturating_sub(EVICTION_MEMORY_BYTES)
            .saturating_sub(hugepages);
        allocatable.insert("memory".to_owned(), kibibytes(memory));
        let storage =
            self.ephemeral_storage_bytes - self.ephemeral_storage_bytes * EVICTION_NODEFS_PERCENT / 100;
        allocatable.insert("ephemeral-storage".to_owned(), Quantity(storage.to_string()));
        allocatable
    }
}

/// The Node status for `facts` with conditions stamped `now`.
pub fn node_status(name: &str, port: u16, facts: &HostFacts, now: Timestamp) -> NodeStatus {
    let mut addresses = Vec::new();
    if let Some(ip) = facts.internal_ip {
        addresses.push(NodeAddress {
            type_: "InternalIP".to_owned(),
            address: ip.to_string(),
        });
    }
    addresses.push(NodeAddress {
        type_: "Hostname".to_owned(),
        address: name.to_owned(),
    });
    NodeStatus {
        addresses: Some(addresses),
        allocatable: Some(facts.allocatable()),
        capacity: Some(facts.capacity()),
        conditions: Some(conditions(now)),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint {
                port: if port == 0 { DAEMON_PORT } else { i32::from(port) },
            }),
        }),
        node_info: Some(facts.info.clone()),
        ..NodeStatus::default()
    }
}

/// The healthy node's conditions, with kubelet's reasons and messages.
pub fn conditions(now: Timestamp) -> Vec<NodeCondition> {
    [
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]
    .into_iter()
    .map(|(kind, status, reason, message)| NodeCondition {
        type_: kind.to_owned(),
        status: status.to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    })
    .collect()
}

/// The Node a kubelet registers: well-known labels, the attach-detach annotation, taints,
/// and the status.
pub fn node_object(config: &NodeConfig, facts: &HostFacts, now: Timestamp) -> Node {
    let mut labels = BTreeMap::from([
        ("beta.kubernetes.io/arch".to_owned(), go_arch().to_owned()),
        ("beta.kubernetes.io/os".to_owned(), "linux".to_owned()),
        ("kubernetes.io/arch".to_owned(), go_arch().to_owned()),
        ("kubernetes.io/hostname".to_owned(), facts.hostname.clone()),
        ("kubernetes.io/os".to_owned(), "linux".to_owned()),
    ]);
    labels.extend(config.labels.clone());
    Node {
        metadata: ObjectMeta {
            name: Some(config.name.clone()),
            labels: Some(labels),
            annotations: Some(BTreeMap::from([(
                "volumes.kubernetes.io/controller-managed-attach-detach".to_owned(),
                "true".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: (!config.taints.is_empty()).then(|| config.taints.clone()),
            ..NodeSpec::default()
        }),
        status: Some(node_status(&config.name, config.kubelet_port, facts, now)),
    }
}

/// A registered node whose heartbeat runs until shutdown.
#[derive(Debug)]
pub struct RegisteredNode {
    /// The Node as registered.
    pub node: Node,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl RegisteredNode {
    /// Waits for the heartbeat to end (after shutdown).
    pub async fn join(self) {
        let _ = self.heartbeat.await;
    }
}

/// Registers the node (or takes over the Node of an earlier run, reporting its status
/// afresh), acquires its Lease and starts the heartbeat.
pub async fn register(
    client: Client,
    config: NodeConfig,
    shutdown: CancellationToken,
) -> Result<RegisteredNode, NodeError> {
    let facts = HostFacts::gather(&config.data_dir, config.node_ip)?;
    let nodes: Api<Node> = Api::all(client.clone());
    let error = |source| NodeError::Register {
        name: config.name.clone(),
        source,
    };
    let object = node_object(&config, &facts, Timestamp::now());
    let node = match nodes.create(&PostParams::default(), &object).await {
        Ok(node) => node,
        Err(kube::Error::Api(status)) if status.code == 409 => {
            // Kubelet keeps the existing Node and brings labels and status up to date.
            let patch = json!({"metadata": {"labels": object.metadata.labels}});
            nodes
                .patch(&config.name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
                .map_err(error)?;
            let patch = json!({"status": object.status});
            nodes
                .patch_status(&config.name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
                .map_err(error)?
        }
        Err(err) => return Err(error(err)),
    };
    let uid = node.metadata.uid.clone().unwrap_or_default();
    let lease = NodeLease::acquire(client.clone(), &config.name, &uid).await?;
    tracing::info!(node = %config.name, "node registered");
    let heartbeat = tokio::spawn(heartbeat(client, config, facts, lease, shutdown));
    Ok(RegisteredNode { node, heartbeat })
}

/// Renews the Lease every 10 s; recomputes the status every 10 s and reports it when it
/// changed, or with fresh heartbeat times every 5 minutes.
async fn heartbeat(
    client: Client,
    config: NodeConfig,
    mut reported: HostFacts,
    lease: NodeLease,
    shutdown: CancellationToken,
) {
    let nodes: Api<Node> = Api::all(client);
    let mut renew = tokio::time::interval(LEASE_RENEW_INTERVAL);
    let mut update = tokio::time::interval(STATUS_UPDATE_INTERVAL);
    renew.tick().await;
    update.tick().await;
    let mut last_report = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = renew.tick() => lease.renew().await,
            _ = update.tick() => {
                let facts = match HostFacts::gather(&config.data_dir, config.node_ip) {
                    Ok(facts) => facts,
                    Err(err) => {
                        tracing::warn!(node = %config.name, error = %err, "reading the host failed");
                        continue;
                    }
                };
                if facts == reported && last_report.elapsed() < STATUS_REPORT_INTERVAL {
                    continue;
                }
                let patch = json!({"status": node_status(&config.name, config.kubelet_port, &facts, Timestamp::now())});
                match nodes
                    .patch_status(&config.name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                {
                    Ok(_) => {
                        reported = facts;
                        last_report = tokio::time::Instant::now();
                    }
                    Err(err) => {
                        tracing::warn!(node = %config.name, error = %err, "reporting the node status failed");
                    }
                }
            }
        }
    }
}

fn read(path: &str) -> Result<String, NodeError> {
    std::fs::read_to_string(path).map_err(|source| NodeError::Read {
        path: path.into(),
        source,
    })
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn parse_error(path: &str, what: &'static str) -> NodeError {
    NodeError::Parse {
        path: path.into(),
        what,
    }
}

fn kibibytes(bytes: u64) -> Quantity {
    Quantity(format!("{}Ki", bytes / 1024))
}

/// The architecture under Go's name, as nodes report it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Counts the CPUs of a sysfs CPU list such as `0-3,8,10-11`.
fn parse_cpu_list(list: &str) -> Option<u32> {
    let mut count = 0;
    for range in list.trim().split(',').filter(|r| !r.is_empty()) {
        count += match range.split_once('-') {
            Some((first, last)) => last.parse::<u32>().ok()?.checked_sub(first.parse().ok()?)? + 1,
            None => {
                range.parse::<u32>().ok()?;
                1
            }
        };
    }
    (count > 0).then_some(count)
}

/// `MemTotal` of /proc/meminfo in bytes.
fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") => Some(value * 1024),
        None => Some(value),
        Some(_) => None,
    }
}

/// `PRETTY_NAME` of /etc/os-release, unquoted.
fn os_pretty_name(os_release: &str) -> Option<String> {
    let value = os_release
        .lines()
        .find_map(|line| line.strip_prefix("PRETTY_NAME="))?;
    let value = value.trim().trim_matches('"').trim_matches('\'');
    (!value.is_empty()).then(|| value.to_owned())
}

/// The interface of the IPv4 default route in /proc/net/route.
fn default_route_interface(routes: &str) -> Option<String> {
    routes.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [
                interface,
                "00000000",
                _gateway,
                _flags,
                _refs,
                _use,
                _metric,
                "00000000",
                ..,
            ] => Some((*interface).to_owned()),
            _ => None,
        }
    })
}

/// The first IPv4 address of an interface.
fn interface_ipv4(interface: &str) -> Option<IpAddr> {
    nix::ifaddrs::getifaddrs().ok()?.find_map(|ifaddr| {
        if ifaddr.interface_name != interface {
            return None;
        }
        let address = ifaddr.address?;
        let ipv4 = address.as_sockaddr_in()?;
        Some(IpAddr::V4(ipv4.ip()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_count_ranges_and_singletons() {
        assert_eq!(parse_cpu_list("0-1\n"), Some(2));
        assert_eq!(parse_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
    }

    #[test]
    fn meminfo_total_is_read_in_bytes() {
        let meminfo = "MemTotal:       24567892 kB\nMemFree:         1234 kB\n";
        assert_eq!(parse_meminfo_total(meminfo), Some(24_567_892 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn os_release_pretty_name_is_unquoted() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\n";
        assert_eq!(
            os_pretty_name(text).as_deref(),
            Some("Debian GNU/Linux 13 (trixie)")
        );
        assert_eq!(os_pretty_name("NAME=x\n"), None);
    }

    #[test]
    fn the_default_route_names_its_interface() {
        let routes = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                      eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                      eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";
        assert_eq!(default_route_interface(routes).as_deref(), Some("eth0"));
        assert_eq!(default_route_interface("Iface\tDestination\n"), None);
    }

    fn facts() -> HostFacts {
        HostFacts {
            hostname: "box".to_owned(),
            internal_ip: Some("192.168.1.5".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))),
            cpus: 2,
            memory_bytes: 8 * 1024 * 1024 * 1024,
            ephemeral_storage_bytes: 100 * 1024 * 1024 * 1024,
            hugepages_bytes: BTreeMap::from([("1Gi".to_owned(), 0), ("2Mi".to_owned(), 4 * 2 * 1024 * 1024)]),
            info: NodeSystemInfo::default(),
        }
    }

    #[test]
    fn allocatable_holds_back_eviction_thresholds_and_huge_pages() {
        let facts = facts();
        let capacity = facts.capacity();
        assert_eq!(capacity["cpu"].0, "2");
        assert_eq!(capacity["memory"].0, "8388608Ki");
        assert_eq!(capacity["ephemeral-storage"].0, "104857600Ki");
        assert_eq!(capacity["hugepages-2Mi"].0, "8388608");
        assert_eq!(capacity["pods"].0, "110");
        let allocatable = facts.allocatable();
        // 8 GiB - 100 MiB - 8 MiB of huge pages.
        assert_eq!(allocatable["memory"].0, "8278016Ki");
        assert_eq!(allocatable["ephemeral-storage"].0, "96636764160");
        assert_eq!(allocatable["cpu"].0, "2");
    }

    #[test]
    fn the_node_object_carries_well_known_labels_and_healthy_conditions() {
        let config = NodeConfig {
            name: "box".to_owned(),
            labels: BTreeMap::from([("role".to_owned(), "edge".to_owned())]),
            ..NodeConfig::default()
        };
        let node = node_object(&config, &facts(), Timestamp::UNIX_EPOCH);
        let labels = node.metadata.labels.unwrap_or_default();
        assert_eq!(labels["kubernetes.io/hostname"], "box");
        assert_eq!(labels["kubernetes.io/os"], "linux");
        assert_eq!(labels["role"], "edge");
        let status = node.status.unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready");
        assert_eq!(ready.and_then(|c| c.reason).as_deref(), Some("KubeletReady"));
        let addresses: Vec<(String, String)> = status
            .addresses
            .unwrap_or_default()
            .into_iter()
            .map(|a| (a.type_, a.address))
            .collect();
        assert_eq!(
            addresses,
            [
                ("InternalIP".to_owned(), "192.168.1.5".to_owned()),
                ("Hostname".to_owned(), "box".to_owned())
            ]
        );
    }
}
