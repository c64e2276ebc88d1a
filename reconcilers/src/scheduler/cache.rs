//! The scheduler's view of the cluster, kept from watches: per node, what it offers
//! (allocatable, labels, taints) and what its pods take (requests, host ports, the pods
//! themselves for affinity and spread), with pods the scheduler has assumed but not yet seen
//! bound counted in. Pod requests follow upstream's `resource.PodRequests` (max of init
//! containers against the sum of app and sidecar containers, plus overhead). It does no I/O.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Container, Node, Pod, Taint};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::image_locality::Images;
use super::listers::Listers;

/// The CPU request counted for a container that requests none, when scoring.
pub const DEFAULT_MILLI_CPU: i64 = 100;
/// The memory request counted for a container that requests none, when scoring.
pub const DEFAULT_MEMORY: i64 = 200 * 1024 * 1024;

/// Amounts of resources: CPU in millicores, memory and storage in bytes, others as integers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub pods: i64,
    pub scalar: BTreeMap<String, i64>,
}

impl Resources {
    /// Resources of a resource list (`requests`, `allocatable`, `overhead`).
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut out = Resources::default();
        for (name, quantity) in list.into_iter().flatten() {
            match name.as_str() {
                "cpu" => out.milli_cpu = parse_quantity(&quantity.0, true).unwrap_or(0),
                "memory" => out.memory = parse_quantity(&quantity.0, false).unwrap_or(0),
                "ephemeral-storage" => {
                    out.ephemeral_storage = parse_quantity(&quantity.0, false).unwrap_or(0);
                }
                "pods" => out.pods = parse_quantity(&quantity.0, false).unwrap_or(0),
                other if is_scalar(other) => {
                    out.scalar
                        .insert(other.to_owned(), parse_quantity(&quantity.0, false).unwrap_or(0));
                }
                _ => {}
            }
        }
        out
    }

    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.pods += other.pods;
        for (name, value) in &other.scalar {
            *self.scalar.entry(name.clone()).or_insert(0) += value;
        }
    }

    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.pods -= other.pods;
        for (name, value) in &other.scalar {
            *self.scalar.entry(name.clone()).or_insert(0) -= value;
        }
    }

    fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (name, value) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_insert(0);
            *entry = (*entry).max(*value);
        }
    }

    /// Whether nothing is requested.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// Extended resources (`example.com/gpu`), hugepages and attachable volumes count as scalars.
fn is_scalar(name: &str) -> bool {
    name.starts_with("hugepages-") || name.starts_with("attachable-volumes-") || name.contains('/')
}

/// Parses a Kubernetes quantity; `milli` gives thousandths (rounded up, as `MilliValue`),
/// otherwise whole units (rounded up, as `Value`).
pub fn parse_quantity(text: &str, milli: bool) -> Option<i64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let multiplier: f64 = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exponent => {
            let exponent = exponent.strip_prefix(['e', 'E'])?;
            10f64.powi(exponent.parse().ok()?)
        }
    };
    let value = number * multiplier * if milli { 1000.0 } else { 1.0 };
    // Round up, tolerating floating-point noise.
    Some((value - 1e-9).ceil() as i64)
}

fn container_requests(container: &Container) -> Resources {
    Resources::from_list(container.resources.as_ref().and_then(|r| r.requests.as_ref()))
}

/// Scoring's view of a container's requests: missing CPU or memory counted as the defaults.
fn non_zero(mut requests: Resources) -> Resources {
    if requests.milli_cpu == 0 {
        requests.milli_cpu = DEFAULT_MILLI_CPU;
    }
    if requests.memory == 0 {
        requests.memory = DEFAULT_MEMORY;
    }
    requests
}

/// What the pod requests (upstream's `PodRequests`), and the same with scoring's defaults.
pub fn pod_requests(pod: &Pod) -> (Resources, Resources) {
    let Some(spec) = pod.spec.as_ref() else {
        return (Resources::default(), Resources::default());
    };
    let compute = |map: fn(Resources) -> Resources| {
        let mut total = Resources::default();
        for container in &spec.containers {
            total.add(&map(container_requests(container)));
        }
        let mut sidecars = Resources::default();
        let mut init_max = Resources::default();
        for container in spec.init_containers.iter().flatten() {
            let requests = map(container_requests(container));
            let effective = if container.restart_policy.as_deref() == Some("Always") {
                total.add(&requests);
                sidecars.add(&requests);
                sidecars.clone()
            } else {
                let mut with_sidecars = requests;
                with_sidecars.add(&sidecars);
                with_sidecars
            };
            init_max.max_with(&effective);
        }
        total.max_with(&init_max);
        // Pod-level resources replace the containers' CPU and memory.
        let pod_level = Resources::from_list(spec.resources.as_ref().and_then(|r| r.requests.as_ref()));
        if pod_level.milli_cpu > 0 {
            total.milli_cpu = pod_level.milli_cpu;
        }
        if pod_level.memory > 0 {
            total.memory = pod_level.memory;
        }
        total.add(&Resources::from_list(spec.overhead.as_ref()));
        total.pods = 0;
        total
    };
    (compute(|r| r), compute(non_zero))
}

/// A host port a pod takes: (protocol, host IP, port).
pub type HostPort = (String, String, i32);

pub fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always")),
        )
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|port| {
            let host_port = port.host_port.filter(|p| *p > 0)?;
            let ip = port
                .host_ip
                .clone()
                .filter(|ip| !ip.is_empty())
                .unwrap_or_else(|| "0.0.0.0".to_owned());
            Some((
                port.protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                ip,
                host_port,
            ))
        })
        .collect()
}

/// A pod as the cache keeps it.
#[derive(Debug)]
pub struct PodInfo {
    pub key: String,
    pub pod: Arc<Pod>,
    pub requests: Resources,
    pub non_zero: Resources,
    pub ports: Vec<HostPort>,
    pub node: String,
}

impl PodInfo {
    pub fn new(key: String, pod: Arc<Pod>, node: String) -> PodInfo {
        let (requests, non_zero) = pod_requests(&pod);
        let ports = host_ports(&pod);
        PodInfo {
            key,
            pod,
            requests,
            non_zero,
            ports,
            node,
        }
    }

    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("")
    }

    pub fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.pod.metadata.labels.as_ref()
    }

    /// Whether the pod has any pod affinity or anti-affinity term.
    pub fn has_pod_affinity(&self) -> bool {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some())
    }

    /// Whether the pod has required anti-affinity terms (which constrain later pods).
    pub fn has_required_anti_affinity(&self) -> bool {
        self.pod
            .spec
            .as_ref()
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .and_then(|a| a.required_during_scheduling_ignored_during_execution.as_ref())
            .is_some_and(|terms| !terms.is_empty())
    }
}

/// One node and what its pods take.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    pub node: Option<Arc<Node>>,
    pub allocatable: Resources,
    pub requested: Resources,
    pub non_zero_requested: Resources,
    pub pods: HashMap<String, Arc<PodInfo>>,
    pub ports: HashMap<HostPort, u32>,
}

impl NodeInfo {
    pub fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.node.as_ref()?.metadata.labels.as_ref()
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels()?.get(key).map(String::as_str)
    }

    pub fn taints(&self) -> &[Taint] {
        self.node
            .as_ref()
            .and_then(|n| n.spec.as_ref())
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[])
    }

    pub fn unschedulable(&self) -> bool {
        self.node
            .as_ref()
            .and_then(|n| n.spec.as_ref())
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.requested.add(&pod.requests);
        self.non_zero_requested.add(&pod.non_zero);
        for port in &pod.ports {
            *self.ports.entry(port.clone()).or_insert(0) += 1;
        }
        self.pods.insert(pod.key.clone(), pod);
    }

    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let pod = self.pods.remove(key)?;
        self.requested.sub(&pod.requests);
        self.non_zero_requested.sub(&pod.non_zero);
        for port in &pod.ports {
            if let Some(count) = self.ports.get_mut(port) {
                *count -= 1;
                if *count == 0 {
                    self.ports.remove(port);
                }
            }
        }
        Some(pod)
    }
}

/// Every node, and every pod bound (or assumed bound) to one.
#[derive(Debug, Default)]
pub struct Cache {
    pub nodes: HashMap<String, NodeInfo>,
    /// Names of the nodes that exist, in a stable order for round-robin evaluation.
    pub order: Vec<String>,
    pub pods: HashMap<String, Arc<PodInfo>>,
    /// Pods the scheduler decided on whose binding is not yet seen in the watch.
    pub assumed: HashSet<String>,
    /// Pods with required anti-affinity, which every placement must respect.
    pub anti_affinity_pods: HashSet<String>,
    /// Pods with any pod affinity or anti-affinity term, which scoring consults.
    pub affinity_pods: HashSet<String>,
    /// Unbound pods nominated to a node (`status.nominatedNodeName`), by node then pod key.
    pub nominated: HashMap<String, HashMap<String, Arc<PodInfo>>>,
    /// The node each nominated pod is nominated to.
    nominated_node: HashMap<String, String>,
    /// The images nodes report, for ImageLocality.
    pub images: Images,
    /// Services, controllers and namespaces, for default spreading and namespace selectors.
    pub listers: Listers,
}

impl Cache {
    pub fn set_node(&mut self, node: Node) -> bool {
        let name = node.metadata.name.clone().unwrap_or_default();
        let allocatable = Resources::from_list(node.status.as_ref().and_then(|s| s.allocatable.as_ref()));
        let info = self.nodes.entry(name.clone()).or_default();
        let added = info.node.is_none();
        if let Some(old) = &info.node {
            self.images.remove_node(old);
        }
        self.images.add_node(&node);
        info.allocatable = allocatable;
        info.node = Some(Arc::new(node));
        if added {
            self.order.push(name);
        }
        added
    }

    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.get_mut(name) {
            if let Some(old) = info.node.take() {
                self.images.remove_node(&old);
            }
            if info.pods.is_empty() {
                self.nodes.remove(name);
            }
        }
        self.order.retain(|n| n != name);
    }

    /// Records a pod bound (or assumed bound) to `node`.
    pub fn add_pod(&mut self, key: String, pod: Arc<Pod>, node: String) {
        self.remove_pod(&key);
        let info = Arc::new(PodInfo::new(key.clone(), pod, node.clone()));
        if info.has_required_anti_affinity() {
            self.anti_affinity_pods.insert(key.clone());
        }
        if info.has_pod_affinity() {
            self.affinity_pods.insert(key.clone());
        }
        self.nodes.entry(node).or_default().add_pod(info.clone());
        self.pods.insert(key, info);
    }

    /// Forgets the nomination of a pod.
    pub fn unnominate(&mut self, key: &str) {
        if let Some(old) = self.nominated_node.remove(key)
            && let Some(pods) = self.nominated.get_mut(&old)
        {
            pods.remove(key);
            if pods.is_empty() {
                self.nominated.remove(&old);
            }
        }
    }

    /// Records (or, with no node, forgets) the node an unbound pod is nominated to.
    pub fn nominate(&mut self, key: &str, pod: &Arc<Pod>, node: Option<&str>) {
        self.unnominate(key);
        let Some(node) = node.filter(|n| !n.is_empty()) else {
            return;
        };
        let info = Arc::new(PodInfo::new(key.to_owned(), pod.clone(), node.to_owned()));
        self.nominated
            .entry(node.to_owned())
            .or_default()
            .insert(key.to_owned(), info);
        self.nominated_node.insert(key.to_owned(), node.to_owned());
    }

    pub fn remove_pod(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        let info = self.pods.remove(key)?;
        self.anti_affinity_pods.remove(key);
        self.affinity_pods.remove(key);
        self.assumed.remove(key);
        if let Some(node) = self.nodes.get_mut(&info.node) {
            node.remove_pod(key);
            if node.node.is_none() && node.pods.is_empty() {
                self.nodes.remove(&info.node);
            }
        }
        Some(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("100m", true), Some(100));
        assert_eq!(parse_quantity("1", true), Some(1000));
        assert_eq!(parse_quantity("0.5", true), Some(500));
        assert_eq!(parse_quantity("1Gi", false), Some(1 << 30));
        assert_eq!(parse_quantity("128974848", false), Some(128_974_848));
        assert_eq!(parse_quantity("129e6", false), Some(129_000_000));
        assert_eq!(parse_quantity("123Mi", false), Some(123 * 1024 * 1024));
        assert_eq!(parse_quantity("1.5k", false), Some(1500));
        assert_eq!(parse_quantity("x", false), None);
    }

    #[test]
    fn init_containers_count_as_their_maximum_and_sidecars_add_up() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "spec": {
                "initContainers": [
                    {"name": "big", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}},
                    {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "500m"}}},
                    {"name": "after", "resources": {"requests": {"cpu": "1"}}},
                ],
                "containers": [
                    {"name": "a", "resources": {"requests": {"cpu": "1", "memory": "100Mi"}}},
                    {"name": "b", "resources": {"requests": {"cpu": "250m"}}},
                ],
                "overhead": {"cpu": "100m"},
            }
        }))
        .unwrap();
        let (requests, non_zero) = pod_requests(&pod);
        // app 1.25 + sidecar 0.5 = 1.75 < init max (2, and 1 + 0.5) = 2; plus overhead.
        assert_eq!(requests.milli_cpu, 2100);
        assert_eq!(requests.memory, 1 << 30);
        assert_eq!(non_zero.memory, 1 << 30);
        assert!(non_zero.milli_cpu >= requests.milli_cpu);
    }
}
