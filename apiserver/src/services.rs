//! Service ClusterIP and NodePort allocation: the storage hooks of core `services`, as
//! kube-apiserver v1.35 does it with the MultiCIDRServiceAllocator
//! (pkg/registry/core/service/storage, ipallocator, portallocator and their repair
//! controllers).
//!
//! It owns the IP family defaulting of Services (`ipFamilyPolicy`, `ipFamilies`,
//! `clusterIPs`) for the configured service CIDR, the allocation of ClusterIPs — every
//! allocated IP is a `networking.k8s.io/v1` IPAddress object naming its Service — and of node
//! ports and health check node ports, their release when a write fails, when a Service
//! changes type and when it is deleted, and the repair pass at start that rebuilds the
//! in-memory allocation state from the stored Services and IPAddresses.
//!
//! It must not hold its lock across an await, must not allocate anything for dry runs, and
//! does not validate the rest of a Service: that is the kind's strategy. Only the checks that
//! upstream runs inside the allocator (and the immutability of allocated values) are here.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use rudder_machinery::field::{ErrorList, FieldError, Path};
use rudder_machinery::validation::{
    STRICT_IP_CIDR_VALIDATION, is_valid_ip_for_legacy_field, parse_cidr_sloppy, parse_ip_sloppy,
};
use serde_json::{Value, json};
use thiserror::Error;

use crate::object;
use crate::registry::{Registry, Resource};
use crate::status::ApiError;
use crate::store::{DeleteOptions, GenericStore, ListQuery, Reservation, StoreHooks, WriteOptions};

/// The label of an IPAddress naming its family.
pub const LABEL_IP_FAMILY: &str = "ipaddress.kubernetes.io/ip-family";
/// The label of an IPAddress naming who manages it.
pub const LABEL_MANAGED_BY: &str = "ipaddress.kubernetes.io/managed-by";
/// The manager of the IPAddresses of Services (upstream's `ipallocator.ControllerName`).
pub const IPALLOCATOR_CONTROLLER: &str = "ipallocator.k8s.io";
/// The default node port range, `--service-node-port-range`.
pub const DEFAULT_NODE_PORT_RANGE: (i32, i32) = (30000, 32767);

/// How old an IPAddress whose Service is gone must be before it counts as leaked (upstream's
/// repair controller grace period).
const LEAKED_IP_GRACE: Duration = Duration::from_secs(60);

const CLUSTER_IP_NONE: &str = "None";
const TYPE_CLUSTER_IP: &str = "ClusterIP";
const TYPE_NODE_PORT: &str = "NodePort";
const TYPE_LOAD_BALANCER: &str = "LoadBalancer";
const TYPE_EXTERNAL_NAME: &str = "ExternalName";
const SINGLE_STACK: &str = "SingleStack";
const PREFER_DUAL_STACK: &str = "PreferDualStack";
const REQUIRE_DUAL_STACK: &str = "RequireDualStack";

/// Why the allocator cannot be set up.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The service CIDR does not parse.
    #[error("invalid service CIDR {0:?}")]
    InvalidCidr(String),
    /// An IPv6 service CIDR larger than a /64.
    #[error("shortest allowed prefix length for service CIDR is 64, got {0}")]
    PrefixTooShort(u32),
    /// A resource the allocator writes is not registered.
    #[error("resource {0} is not registered")]
    MissingResource(&'static str),
}

/// Why an IP could not be allocated (upstream's ipallocator errors, same texts).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
enum IpError {
    #[error("range is full")]
    Full,
    #[error("provided IP is already allocated")]
    Allocated,
    #[error("the provided network does not match the current range")]
    MismatchedNetwork,
    #[error("the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}")]
    NotInRange { ip: String, range: String },
    #[error("{0}")]
    Store(String),
}

/// Why a node port could not be allocated (upstream's portallocator errors, same texts).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
enum PortError {
    #[error("range is full")]
    Full,
    #[error("provided port is already allocated")]
    Allocated,
    #[error("provided port is not in the valid range. The range of valid ports is {0}")]
    NotInRange(String),
}

/// An IP family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `IPv4`.
    V4,
    /// `IPv6`.
    V6,
}

impl Family {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn parse(name: &str) -> Option<Family> {
        match name {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        }
    }

    fn other(self) -> Family {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }

    /// Upstream's `familyOf`: the family of an IP string, `None` when it is not an IP.
    fn of(ip: &str) -> Option<Family> {
        parse_addr(ip).map(|a| a.family)
    }
}

/// An address of one family, as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Addr {
    family: Family,
    value: u128,
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.family {
            Family::V4 => write!(f, "{}", Ipv4Addr::from(u32::try_from(self.value).unwrap_or(0))),
            Family::V6 => write!(f, "{}", Ipv6Addr::from(self.value)),
        }
    }
}

/// Parses an IP as upstream's `ParseIPSloppy`.
fn parse_addr(ip: &str) -> Option<Addr> {
    let parsed = parse_ip_sloppy(ip)?;
    Some(match parsed.to_v4() {
        Some(v4) => Addr {
            family: Family::V4,
            value: u128::from(u32::from_be_bytes(v4)),
        },
        None => Addr {
            family: Family::V6,
            value: u128::from_be_bytes(parsed.0),
        },
    })
}

/// A source of random offsets: `random(n)` is uniform enough in `0..n` (`n > 0`).
type Random<'a> = &'a mut dyn FnMut(u128) -> u128;

/// Random numbers from the system's secure source.
fn secure_random(n: u128) -> u128 {
    if n <= 1 {
        return 0;
    }
    let mut bytes = [0u8; 16];
    if rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .is_err()
    {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = nanos.to_le_bytes();
    }
    u128::from_le_bytes(bytes) % n
}

/// The first free value in `lo..=hi`, scanning from `lo + start` and wrapping around.
fn scan(lo: u128, hi: u128, start: u128, taken: &dyn Fn(u128) -> bool) -> Option<u128> {
    if hi < lo {
        return None;
    }
    let n = hi - lo + 1;
    let mut i: u128 = 0;
    while i < n {
        let candidate = lo + (start + i) % n;
        if !taken(candidate) {
            return Some(candidate);
        }
        i += 1;
    }
    None
}

/// The service CIDR: which addresses may be allocated, and in which order they are tried.
#[derive(Clone, Debug)]
struct IpRange {
    family: Family,
    /// The CIDR as upstream prints it (`10.96.0.0/16`).
    cidr: String,
    network: u128,
    broadcast: u128,
    first: u128,
    last: u128,
    /// How many addresses may be allocated.
    size: u128,
    /// The size of the lower band kept for static allocation (KEP-3070).
    offset: u128,
}

impl IpRange {
    fn new(cidr: &str) -> Result<IpRange, ConfigError> {
        let parsed = parse_cidr_sloppy(cidr).ok_or_else(|| ConfigError::InvalidCidr(cidr.to_owned()))?;
        let network = parse_addr(&parsed.network.to_string())
            .ok_or_else(|| ConfigError::InvalidCidr(cidr.to_owned()))?;
        let (bits, prefix) = match (network.family, parsed.bits) {
            // An IPv4-mapped IPv6 CIDR counts as the IPv4 one, as Go's `IPNet` does.
            (Family::V4, 128) => (32, parsed.prefix.saturating_sub(96)),
            (Family::V4, _) => (32, parsed.prefix),
            (Family::V6, _) => (128, parsed.prefix),
        };
        if network.family == Family::V6 && prefix < 64 {
            return Err(ConfigError::PrefixTooShort(prefix));
        }
        let host_bits = bits - prefix;
        let host_mask = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let broadcast = network.value | host_mask;
        // Upstream's hostsPerNetwork: no network address, no IPv4 broadcast, capped at u64.
        let size = if host_bits >= 64 {
            u128::from(u64::MAX)
        } else {
            let all = 1u128 << host_bits;
            let without_network = all - 1;
            match network.family {
                Family::V4 => without_network.saturating_sub(1),
                Family::V6 => without_network,
            }
        };
        let first = network.value + 1;
        let last = match network.family {
            Family::V4 => broadcast.saturating_sub(1),
            Family::V6 => broadcast,
        };
        // Upstream's calculateRangeOffset over netutils.RangeSize.
        let range_size: u128 = if (bits == 32 && host_bits >= 31) || (bits == 128 && host_bits >= 127) {
            0
        } else if host_bits >= 63 {
            u128::from(i64::MAX.unsigned_abs())
        } else {
            1u128 << host_bits
        };
        let offset = if range_size <= 16 {
            0
        } else {
            (range_size / 16).clamp(16, 256)
        };
        Ok(IpRange {
            family: network.family,
            cidr: format!("{network}/{prefix}"),
            network: network.value,
            broadcast,
            first,
            last,
            size,
            offset,
        })
    }

    fn addr(&self, value: u128) -> Addr {
        Addr {
            family: self.family,
            value,
        }
    }

    /// Whether the address is inside the CIDR (network and broadcast included).
    fn contains(&self, addr: Addr) -> bool {
        addr.family == self.family && addr.value >= self.network && addr.value <= self.broadcast
    }

    /// Upstream's MetaAllocator.AllocateService checks for a requested address.
    fn check_static(&self, addr: Addr) -> Result<(), IpError> {
        if !self.contains(addr) {
            return Err(IpError::MismatchedNetwork);
        }
        self.check_in_range(addr)
    }

    /// The range check of one allocator (all a dry run checks).
    fn check_in_range(&self, addr: Addr) -> Result<(), IpError> {
        let below = match (addr.family, self.family) {
            (Family::V4, Family::V6) => true,
            (Family::V6, Family::V4) => false,
            _ => addr.value < self.first,
        };
        let above = match (addr.family, self.family) {
            (Family::V4, Family::V6) => false,
            (Family::V6, Family::V4) => true,
            _ => addr.value > self.last,
        };
        if below || above {
            return Err(IpError::NotInRange {
                ip: addr.to_string(),
                range: self.cidr.clone(),
            });
        }
        Ok(())
    }

    /// A free address: random in the upper band first, then random in the lower band.
    fn pick(&self, taken: &HashSet<u128>, random: Random<'_>) -> Option<u128> {
        let upper = self.size.saturating_sub(self.offset);
        if upper == 0 || self.last < self.first {
            return None;
        }
        let is_taken = |v: u128| taken.contains(&v);
        let upper_start = self.first + self.offset;
        if let Some(found) = scan(upper_start, self.last, random(upper), &is_taken) {
            return Some(found);
        }
        if self.offset == 0 {
            return None;
        }
        scan(self.first, upper_start - 1, random(self.offset), &is_taken)
    }
}

/// The node port range.
#[derive(Clone, Copy, Debug)]
struct PortRange {
    base: i32,
    size: i32,
    offset: i32,
}

impl PortRange {
    fn new(first: i32, last: i32) -> PortRange {
        let size = (last - first + 1).max(0);
        // Upstream's portallocator calculateRangeOffset.
        let offset = if size <= 16 { 0 } else { (size / 32).clamp(16, 128) };
        PortRange {
            base: first,
            size,
            offset,
        }
    }

    fn contains(&self, port: i32) -> bool {
        port >= self.base && port < self.base + self.size
    }

    fn pick(&self, taken: &BTreeSet<i32>, random: Random<'_>) -> Option<i32> {
        if self.size == 0 || taken.len() >= usize::try_from(self.size).unwrap_or(0) {
            return None;
        }
        let to_u = |v: i32| u128::try_from(v).unwrap_or(0);
        let is_taken = |v: u128| i32::try_from(v).is_ok_and(|p| taken.contains(&p));
        let lo = to_u(self.base);
        let upper = to_u(self.size - self.offset);
        let upper_lo = lo + to_u(self.offset);
        let hi = lo + to_u(self.size) - 1;
        let found = scan(upper_lo, hi, random(upper), &is_taken).or_else(|| {
            (self.offset > 0)
                .then(|| scan(lo, upper_lo - 1, random(to_u(self.offset)), &is_taken))
                .flatten()
        })?;
        i32::try_from(found).ok()
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.size == 0 {
            return Ok(());
        }
        write!(f, "{}-{}", self.base, self.base + self.size - 1)
    }
}

/// What is allocated, as far as this server knows.
#[derive(Debug, Default)]
struct State {
    ips: HashSet<u128>,
    ports: BTreeSet<i32>,
}

/// What one write allocated and what it releases when it succeeds (upstream's
/// `metaTransaction` of IP and node port operations).
#[derive(Debug, Default)]
struct Txn {
    dry_run: bool,
    service: String,
    allocated_ips: Vec<Addr>,
    release_ips: Vec<Addr>,
    allocated_ports: Vec<i32>,
    release_ports: Vec<i32>,
}

impl Txn {
    fn new(dry_run: bool, namespace: &str, name: &str) -> Txn {
        Txn {
            dry_run,
            service: format!("{namespace}/{name}"),
            ..Txn::default()
        }
    }
}

/// The IP family configuration of the cluster.
#[derive(Clone, Debug)]
struct Families {
    primary: Family,
    configured: Vec<Family>,
}

impl Families {
    fn has(&self, family: Family) -> bool {
        self.configured.contains(&family)
    }
}

/// The storage hooks of core `services`: ClusterIP and node port allocation.
pub struct ServiceHooks {
    range: IpRange,
    ports: PortRange,
    families: Families,
    state: Mutex<State>,
    services: Arc<Resource>,
    ipaddresses: Arc<Resource>,
    endpoints: Arc<Resource>,
}

impl fmt::Debug for ServiceHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceHooks")
            .field("cidr", &self.range.cidr)
            .field("node_ports", &self.ports.to_string())
            .finish_non_exhaustive()
    }
}

fn find(registry: &Registry, group: &str, resource: &'static str) -> Result<Arc<Resource>, ConfigError> {
    registry
        .find(group, "v1", resource)
        .ok_or(ConfigError::MissingResource(resource))
}

impl ServiceHooks {
    /// Hooks allocating ClusterIPs from `service_cidr` and node ports from the default range.
    pub fn new(service_cidr: &str) -> Result<ServiceHooks, ConfigError> {
        let range = IpRange::new(service_cidr)?;
        let registry = Registry::builtin();
        Ok(ServiceHooks {
            families: Families {
                primary: range.family,
                configured: vec![range.family],
            },
            range,
            ports: PortRange::new(DEFAULT_NODE_PORT_RANGE.0, DEFAULT_NODE_PORT_RANGE.1),
            state: Mutex::new(State::default()),
            services: find(&registry, "", "services")?,
            ipaddresses: find(&registry, "networking.k8s.io", "ipaddresses")?,
            endpoints: find(&registry, "", "endpoints")?,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    // ---- IPs ------------------------------------------------------------------------------

    fn ipaddress_object(addr: Addr, namespace: &str, name: &str) -> Value {
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IPAddress",
            "metadata": {
                "name": addr.to_string(),
                "labels": {
                    LABEL_IP_FAMILY: addr.family.as_str(),
                    LABEL_MANAGED_BY: IPALLOCATOR_CONTROLLER,
                },
            },
            "spec": {"parentRef": {"resource": "services", "namespace": namespace, "name": name}},
        })
    }

    async fn create_ipaddress(
        &self,
        store: &GenericStore,
        addr: Addr,
        namespace: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let object = Self::ipaddress_object(addr, namespace, name);
        Box::pin(store.create(&self.ipaddresses, "", object, &WriteOptions::internal()))
            .await
            .map(|_| ())
    }

    /// Reserves a requested address (upstream: `AllocateService`).
    async fn allocate_static(
        &self,
        store: &GenericStore,
        namespace: &str,
        name: &str,
        addr: Addr,
        dry_run: bool,
    ) -> Result<(), IpError> {
        if dry_run {
            return self.range.check_in_range(addr);
        }
        self.range.check_static(addr)?;
        if !self.state().ips.insert(addr.value) {
            return Err(IpError::Allocated);
        }
        let mut reclaimed = false;
        loop {
            match self.create_ipaddress(store, addr, namespace, name).await {
                Ok(()) => return Ok(()),
                Err(err) if err.reason == "AlreadyExists" => {
                    // Taken, unless it leaked from a Service that is gone (upstream's repair
                    // controller would have deleted it by now).
                    if !reclaimed && self.reclaim_leaked(store, addr).await {
                        reclaimed = true;
                        continue;
                    }
                    return Err(IpError::Allocated);
                }
                Err(err) => {
                    self.state().ips.remove(&addr.value);
                    return Err(IpError::Store(err.message));
                }
            }
        }
    }

    /// Allocates a free address (upstream: `AllocateNextService`); a dry run answers the
    /// network address, as upstream's dry-run allocator does.
    async fn allocate_next(
        &self,
        store: &GenericStore,
        namespace: &str,
        name: &str,
        dry_run: bool,
    ) -> Result<Addr, IpError> {
        if dry_run {
            return Ok(self.range.addr(self.range.network));
        }
        loop {
            let candidate = {
                let mut state = self.state();
                let found = self
                    .range
                    .pick(&state.ips, &mut secure_random)
                    .ok_or(IpError::Full)?;
                state.ips.insert(found);
                self.range.addr(found)
            };
            match self.create_ipaddress(store, candidate, namespace, name).await {
                Ok(()) => return Ok(candidate),
                // Allocated elsewhere (a racing writer or a hand-made IPAddress): keep it
                // marked and try the next one.
                Err(err) if err.reason == "AlreadyExists" => {
                    tracing::info!(ip = %candidate, "mid-air collision allocating a ClusterIP, retrying");
                }
                Err(err) => {
                    self.state().ips.remove(&candidate.value);
                    return Err(IpError::Store(err.message));
                }
            }
        }
    }

    /// Deletes the IPAddress of `addr` if it has leaked: managed by the allocator, older than
    /// the grace period, and its Service gone or no longer holding it.
    async fn reclaim_leaked(&self, store: &GenericStore, addr: Addr) -> bool {
        let name = addr.to_string();
        let Ok(Some(existing)) = store.get_opt(&self.ipaddresses, "", &name) else {
            return false;
        };
        if object::labels(&existing)
            .get(LABEL_MANAGED_BY)
            .map(String::as_str)
            != Some(IPALLOCATOR_CONTROLLER)
        {
            return false;
        }
        let old_enough = object::meta_str(&existing, "creationTimestamp")
            .parse::<jiff::Timestamp>()
            .is_ok_and(|created| {
                jiff::Timestamp::now().duration_since(created).as_secs()
                    > i64::try_from(LEAKED_IP_GRACE.as_secs()).unwrap_or(60)
            });
        if !old_enough || self.parent_holds(store, &existing, &name) {
            return false;
        }
        tracing::warn!(ip = %name, "IPAddress appears to have leaked: cleaning up");
        self.delete_ipaddress(store, &name).await;
        true
    }

    /// Whether the Service an IPAddress names exists and holds the address.
    fn parent_holds(&self, store: &GenericStore, ipaddress: &Value, ip: &str) -> bool {
        let Some((namespace, name)) = parent_ref(ipaddress) else {
            return false;
        };
        match store.get_opt(&self.services, &namespace, &name) {
            Ok(Some(service)) => cluster_ips_of(&service).iter().any(|c| c == ip),
            Ok(None) => false,
            // When in doubt, it is not leaked.
            Err(_) => true,
        }
    }

    async fn delete_ipaddress(&self, store: &GenericStore, name: &str) {
        match Box::pin(store.delete(&self.ipaddresses, "", name, &DeleteOptions::default())).await {
            Ok(_) => {}
            Err(err) if err.reason == "NotFound" => {}
            Err(err) => tracing::info!(ip = %name, error = %err.message, "error releasing IP"),
        }
    }

    /// Releases an address (upstream: `Release`): the IPAddress is deleted whatever the
    /// in-memory state says.
    async fn release_ip(&self, store: &GenericStore, addr: Addr) {
        self.state().ips.remove(&addr.value);
        if !self.range.contains(addr) {
            tracing::info!(ip = %addr, "not releasing a ClusterIP outside the service CIDR");
            return;
        }
        self.delete_ipaddress(store, &addr.to_string()).await;
    }

    // ---- node ports -----------------------------------------------------------------------

    /// Upstream's `PortAllocationOperation.Allocate`.
    fn allocate_port(&self, txn: &mut Txn, port: i32) -> Result<(), PortError> {
        if txn.dry_run {
            if self.state().ports.contains(&port) || txn.allocated_ports.contains(&port) {
                return Err(PortError::Allocated);
            }
            txn.allocated_ports.push(port);
            return Ok(());
        }
        if !self.ports.contains(port) {
            return Err(PortError::NotInRange(self.ports.to_string()));
        }
        if !self.state().ports.insert(port) {
            return Err(PortError::Allocated);
        }
        txn.allocated_ports.push(port);
        Ok(())
    }

    /// Upstream's `PortAllocationOperation.AllocateNext`, dry-run quirks included.
    fn allocate_next_port(&self, txn: &mut Txn) -> Result<i32, PortError> {
        if txn.dry_run {
            let last = txn.allocated_ports.iter().copied().max().unwrap_or(32768);
            txn.allocated_ports.push(last + 1);
            return Ok(last + 1);
        }
        let port = {
            let mut state = self.state();
            let port = self
                .ports
                .pick(&state.ports, &mut secure_random)
                .ok_or(PortError::Full)?;
            state.ports.insert(port);
            port
        };
        txn.allocated_ports.push(port);
        Ok(port)
    }

    fn release_ports(&self, ports: &[i32]) {
        let mut state = self.state();
        for port in ports {
            state.ports.remove(port);
        }
    }

    // ---- transactions -----------------------------------------------------------------------

    async fn commit(&self, store: &GenericStore, txn: Txn) {
        if txn.dry_run {
            return;
        }
        if !txn.allocated_ips.is_empty() {
            let ips: Vec<String> = txn.allocated_ips.iter().map(ToString::to_string).collect();
            tracing::info!(service = %txn.service, cluster_ips = ?ips, "allocated clusterIPs");
        }
        for addr in &txn.release_ips {
            self.release_ip(store, *addr).await;
        }
        self.release_ports(&txn.release_ports);
    }

    async fn revert(&self, store: &GenericStore, txn: Txn) {
        if txn.dry_run {
            return;
        }
        for addr in &txn.allocated_ips {
            self.release_ip(store, *addr).await;
        }
        self.release_ports(&txn.allocated_ports);
    }

    // ---- create -----------------------------------------------------------------------------

    async fn begin_create_service(
        &self,
        store: &GenericStore,
        object: &mut Value,
        dry_run: bool,
    ) -> Result<Txn, ApiError> {
        let mut service = decode_service(object)?;
        let namespace = object::namespace(object).to_owned();
        let name = object::name(object).to_owned();
        let mut txn = Txn::new(dry_run, &namespace, &name);
        let spec = service.spec.get_or_insert_with(ServiceSpec::default);
        normalize_cluster_ips(spec, None);
        init_ip_family_fields(&self.families, &name, spec, None)?;
        let result = match self
            .alloc_cluster_ips(store, &namespace, &name, spec, &mut txn)
            .await
        {
            Ok(()) => self.alloc_node_ports(&name, spec, &mut txn),
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            self.revert(store, txn).await;
            return Err(err);
        }
        match serde_json::to_value(&service) {
            Ok(value) => *object = value,
            Err(err) => {
                self.revert(store, txn).await;
                return Err(ApiError::internal(err));
            }
        }
        Ok(txn)
    }

    /// Upstream's `allocClusterIPs`.
    async fn alloc_cluster_ips(
        &self,
        store: &GenericStore,
        namespace: &str,
        name: &str,
        spec: &mut ServiceSpec,
        txn: &mut Txn,
    ) -> Result<(), ApiError> {
        if svc_type(spec) == TYPE_EXTERNAL_NAME || is_headless(spec) {
            return Ok(());
        }
        let families: Vec<String> = strings(&spec.ip_families).to_vec();
        let mut ips: Vec<String> = strings(&spec.cluster_ips).to_vec();
        while ips.len() < families.len() {
            ips.push(String::new());
        }
        spec.cluster_ips = Some(ips.clone());
        let invalid = |ips: &[String], detail: String| {
            ApiError::invalid(
                "",
                "Service",
                name,
                &[FieldError::invalid(&cluster_ips_path(), json!(ips), detail)],
            )
        };
        for (i, family) in families.iter().enumerate() {
            if Family::parse(family) != Some(self.range.family) {
                return Err(ApiError::internal(format!("no allocator for IP family {family}")));
            }
            let requested = ips[i].clone();
            let addr = if requested.is_empty() {
                match self.allocate_next(store, namespace, name, txn.dry_run).await {
                    Ok(addr) => addr,
                    Err(IpError::Full) => {
                        return Err(ApiError::internal(
                            "failed to allocate a serviceIP: range is full",
                        ));
                    }
                    Err(err) => return Err(invalid(&ips, format!("failed to allocate IP: {err}"))),
                }
            } else {
                let Some(addr) = parse_addr(&requested) else {
                    return Err(ApiError::internal(format!(
                        "failed to parse service IP {requested:?}"
                    )));
                };
                if let Err(err) = self
                    .allocate_static(store, namespace, name, addr, txn.dry_run)
                    .await
                {
                    return Err(invalid(&ips, format!("failed to allocate IP {requested}: {err}")));
                }
                addr
            };
            if !txn.dry_run {
                txn.allocated_ips.push(addr);
            }
            if requested.is_empty() {
                ips[i] = addr.to_string();
            }
            if i == 0 {
                spec.cluster_ip = Some(ips[0].clone());
            }
        }
        spec.cluster_ips = Some(ips);
        Ok(())
    }

    /// Upstream's `txnAllocNodePorts` for a new Service.
    fn alloc_node_ports(&self, name: &str, spec: &mut ServiceSpec, txn: &mut Txn) -> Result<(), ApiError> {
        let ty = svc_type(spec);
        if ty == TYPE_NODE_PORT || ty == TYPE_LOAD_BALANCER {
            self.init_node_ports(name, spec, txn)?;
        }
        if needs_health_check(spec) {
            self.alloc_health_check_node_port(spec, txn)
                .map_err(ApiError::internal)?;
        }
        Ok(())
    }

    /// Upstream's `initNodePorts`: ports of the same service port number (TCP and UDP
    /// entries) share one node port.
    fn init_node_ports(&self, name: &str, spec: &mut ServiceSpec, txn: &mut Txn) -> Result<(), ApiError> {
        let allocate_all = should_allocate_node_ports(spec);
        let requested_for = |ports: &[k8s_openapi::api::core::v1::ServicePort], port: i32| {
            ports
                .iter()
                .find(|p| p.port == port && node_port(p) != 0)
                .map_or(0, node_port)
        };
        let invalid = |i: usize, value: i32, err: PortError| {
            ApiError::invalid(
                "",
                "Service",
                name,
                &[FieldError::invalid(
                    &Path::new("spec").child("ports").index(i).child("nodePort"),
                    value,
                    err.to_string(),
                )],
            )
        };
        let mut by_service_port: BTreeMap<i32, i32> = BTreeMap::new();
        let Some(ports) = spec.ports.as_mut() else {
            return Ok(());
        };
        for i in 0..ports.len() {
            let current = node_port(&ports[i]);
            if current == 0 && !allocate_all {
                continue;
            }
            let service_port = ports[i].port;
            let allocated = by_service_port.get(&service_port).copied().unwrap_or(0);
            if allocated == 0 {
                let requested = requested_for(ports, service_port);
                let chosen = if requested != 0 {
                    self.allocate_port(txn, requested)
                        .map_err(|err| invalid(i, requested, err))?;
                    requested
                } else {
                    self.allocate_next_port(txn)
                        .map_err(|err| ApiError::internal(format!("failed to allocate a nodePort: {err}")))?
                };
                ports[i].node_port = Some(chosen);
                by_service_port.insert(service_port, chosen);
            } else if current != allocated {
                if current == 0 {
                    ports[i].node_port = Some(allocated);
                } else {
                    self.allocate_port(txn, current)
                        .map_err(|err| invalid(i, current, err))?;
                }
            }
        }
        Ok(())
    }

    /// Upstream's `allocHealthCheckNodePort`; its errors become internal errors.
    fn alloc_health_check_node_port(&self, spec: &mut ServiceSpec, txn: &mut Txn) -> Result<(), String> {
        let requested = spec.health_check_node_port.unwrap_or(0);
        if requested != 0 {
            return self.allocate_port(txn, requested).map_err(|err| {
                format!("failed to allocate requested HealthCheck NodePort {requested}: {err}")
            });
        }
        let port = self
            .allocate_next_port(txn)
            .map_err(|err| format!("failed to allocate a HealthCheck NodePort 0: {err}"))?;
        spec.health_check_node_port = Some(port);
        Ok(())
    }

    // ---- update -----------------------------------------------------------------------------

    async fn begin_update_service(
        &self,
        store: &GenericStore,
        object: &mut Value,
        old: &Value,
        dry_run: bool,
    ) -> Result<Txn, ApiError> {
        let mut service = decode_service(object)?;
        let old_service = decode_service(old)?;
        let namespace = object::namespace(old).to_owned();
        let name = object::name(old).to_owned();
        let mut txn = Txn::new(dry_run, &namespace, &name);
        let mut old_spec = old_service.spec.clone().unwrap_or_default();
        default_on_read(&self.families, &mut old_spec);
        let spec = service.spec.get_or_insert_with(ServiceSpec::default);
        patch_allocated_values(spec, &old_spec);
        normalize_cluster_ips(spec, Some(&old_spec));
        init_ip_family_fields(&self.families, &name, spec, Some(&old_spec))?;
        let mut result = self
            .update_cluster_ips(store, &namespace, &name, spec, &old_spec, &mut txn)
            .await;
        if result.is_ok() {
            result = self.update_node_ports(&name, spec, &old_spec, &mut txn);
        }
        if result.is_ok() {
            drop_type_dependent_fields(spec, &old_spec);
            let errors = validate_update(spec, &old_spec);
            if !errors.is_empty() {
                result = Err(ApiError::invalid("", "Service", &name, &errors));
            }
        }
        if let Err(err) = result {
            self.revert(store, txn).await;
            return Err(err);
        }
        match serde_json::to_value(&service) {
            Ok(value) => *object = value,
            Err(err) => {
                self.revert(store, txn).await;
                return Err(ApiError::internal(err));
            }
        }
        Ok(txn)
    }

    /// Upstream's `updateClusterIPs`: type changes to and from ExternalName, dual-stack
    /// upgrades and downgrades.
    async fn update_cluster_ips(
        &self,
        store: &GenericStore,
        namespace: &str,
        name: &str,
        spec: &mut ServiceSpec,
        old: &ServiceSpec,
        txn: &mut Txn,
    ) -> Result<(), ApiError> {
        if is_matching_prefer_dual_stack(spec, Some(old)) {
            return Ok(());
        }
        let (old_type, new_type) = (svc_type(old), svc_type(spec));
        if old_type == TYPE_EXTERNAL_NAME && new_type != TYPE_EXTERNAL_NAME {
            return self.alloc_cluster_ips(store, namespace, name, spec, txn).await;
        }
        if is_headless(old) {
            return Ok(());
        }
        if old_type != TYPE_EXTERNAL_NAME && new_type == TYPE_EXTERNAL_NAME {
            let old_ips = strings(&old.cluster_ips);
            for (i, _) in strings(&old.ip_families).iter().enumerate() {
                if let Some(addr) = old_ips.get(i).and_then(|ip| parse_addr(ip)) {
                    txn.release_ips.push(addr);
                }
            }
            return Ok(());
        }
        let (old_families, new_families) = (strings(&old.ip_families), strings(&spec.ip_families));
        if old_families.len() == 1 && new_families.len() == 2 {
            // Upgrade to dual-stack: allocate the secondary address.
            let mut ips = strings(&spec.cluster_ips).to_vec();
            if ips.len() < 2 {
                ips.push(String::new());
            }
            let family = new_families[1].clone();
            if Family::parse(&family) != Some(self.range.family) {
                return Err(ApiError::internal(format!("no allocator for IP family {family}")));
            }
            let requested = ips[1].clone();
            let addr = if requested.is_empty() {
                self.allocate_next(store, namespace, name, txn.dry_run)
                    .await
                    .map_err(|err| {
                        ApiError::invalid(
                            "",
                            "Service",
                            name,
                            &[FieldError::invalid(
                                &cluster_ips_path(),
                                json!(ips),
                                format!("failed to allocate IP: {err}"),
                            )],
                        )
                    })?
            } else {
                let addr = parse_addr(&requested)
                    .ok_or_else(|| ApiError::internal(format!("failed to parse service IP {requested:?}")))?;
                self.allocate_static(store, namespace, name, addr, txn.dry_run)
                    .await
                    .map_err(|err| {
                        ApiError::invalid(
                            "",
                            "Service",
                            name,
                            &[FieldError::invalid(
                                &cluster_ips_path(),
                                json!(ips),
                                format!("failed to allocate IP {requested}: {err}"),
                            )],
                        )
                    })?;
                addr
            };
            if !txn.dry_run {
                txn.allocated_ips.push(addr);
            }
            if requested.is_empty() {
                ips[1] = addr.to_string();
            }
            spec.cluster_ips = Some(ips);
            return Ok(());
        }
        if old_families.len() == 2
            && new_families.len() == 1
            && let Some(addr) = strings(&old.cluster_ips).get(1).and_then(|ip| parse_addr(ip))
        {
            txn.release_ips.push(addr);
        }
        Ok(())
    }

    /// Upstream's `txnUpdateNodePorts`.
    fn update_node_ports(
        &self,
        name: &str,
        spec: &mut ServiceSpec,
        old: &ServiceSpec,
        txn: &mut Txn,
    ) -> Result<(), ApiError> {
        let (old_type, new_type) = (svc_type(old), svc_type(spec));
        let exposed = |t: &str| t == TYPE_NODE_PORT || t == TYPE_LOAD_BALANCER;
        if exposed(old_type) && (new_type == TYPE_EXTERNAL_NAME || new_type == TYPE_CLUSTER_IP) {
            txn.release_ports.extend(collect_node_ports(old));
        }
        if exposed(new_type) {
            self.update_service_node_ports(name, spec, old, txn)?;
        }
        // Health check node port transitions.
        let (needed, needs) = (needs_health_check(old), needs_health_check(spec));
        if !needed && needs {
            self.alloc_health_check_node_port(spec, txn)
                .map_err(ApiError::internal)?;
        } else if needed && !needs {
            txn.release_ports.push(old.health_check_node_port.unwrap_or(0));
        }
        Ok(())
    }

    /// Upstream's `updateNodePorts`.
    fn update_service_node_ports(
        &self,
        name: &str,
        spec: &mut ServiceSpec,
        old: &ServiceSpec,
        txn: &mut Txn,
    ) -> Result<(), ApiError> {
        let old_numbers = collect_node_ports(old);
        let allocate_all = should_allocate_node_ports(spec);
        let mut seen: Vec<(String, i32)> = Vec::new();
        let mut allocated_here: BTreeSet<i32> = BTreeSet::new();
        if let Some(ports) = spec.ports.as_mut() {
            for (i, port) in ports.iter_mut().enumerate() {
                let mut number = node_port(port);
                if number == 0 && !allocate_all {
                    continue;
                }
                if number != 0 {
                    if !old_numbers.contains(&number) && !allocated_here.contains(&number) {
                        self.allocate_port(txn, number).map_err(|err| {
                            ApiError::invalid(
                                "",
                                "Service",
                                name,
                                &[FieldError::invalid(
                                    &Path::new("spec").child("ports").index(i).child("nodePort"),
                                    number,
                                    err.to_string(),
                                )],
                            )
                        })?;
                        allocated_here.insert(number);
                    }
                } else {
                    number = self
                        .allocate_next_port(txn)
                        .map_err(|err| ApiError::internal(format!("failed to allocate a nodePort: {err}")))?;
                    port.node_port = Some(number);
                }
                let key = (protocol(port).to_owned(), number);
                if seen.contains(&key) {
                    return Err(ApiError::internal(format!(
                        "duplicate nodePort: {{{} {}}}",
                        key.0, key.1
                    )));
                }
                seen.push(key);
            }
        }
        let new_numbers = collect_node_ports(spec);
        for number in old_numbers {
            if !new_numbers.contains(&number) {
                txn.release_ports.push(number);
            }
        }
        Ok(())
    }

    // ---- delete -----------------------------------------------------------------------------

    async fn after_delete_service(&self, store: &GenericStore, object: &Value) {
        let Ok(service) = decode_service(object) else {
            return;
        };
        let mut spec = service.spec.unwrap_or_default();
        default_on_read(&self.families, &mut spec);
        let namespace = object::namespace(object);
        let name = object::name(object);
        // Upstream deletes the Service's Endpoints with it.
        match Box::pin(store.delete(&self.endpoints, namespace, name, &DeleteOptions::default())).await {
            Ok(_) => {}
            Err(err) if err.reason == "NotFound" => {}
            Err(err) => {
                tracing::error!(%namespace, %name, error = %err.message, "delete service endpoints failed");
            }
        }
        if svc_type(&spec) != TYPE_EXTERNAL_NAME && !is_headless(&spec) {
            for ip in strings(&spec.cluster_ips) {
                if let Some(addr) = parse_addr(ip) {
                    self.release_ip(store, addr).await;
                }
            }
        }
        let mut ports = collect_node_ports(&spec);
        if needs_health_check(&spec) && spec.health_check_node_port.unwrap_or(0) > 0 {
            ports.push(spec.health_check_node_port.unwrap_or(0));
        }
        self.release_ports(&ports);
    }

    // ---- repair -----------------------------------------------------------------------------

    /// The repair pass at start (upstream's ClusterIP and node port repair controllers, run
    /// once): rebuilds the in-memory node port and IP sets from the stored Services and
    /// IPAddresses, recreates missing or wrong IPAddresses of Services, and deletes the
    /// allocator's IPAddresses whose Service is gone or no longer holds them.
    pub async fn repair(&self, store: &GenericStore, registry: &Registry) -> Result<(), ApiError> {
        let services_resource = registry
            .find("", "v1", "services")
            .unwrap_or_else(|| self.services.clone());
        let services = store
            .list(&services_resource, None, &ListQuery::default())
            .await?
            .items;
        let addresses = store
            .list(&self.ipaddresses, None, &ListQuery::default())
            .await?
            .items;

        // Node ports.
        let mut ports = BTreeSet::new();
        for service in &services {
            let Ok(decoded) = decode_service(service) else {
                continue;
            };
            let spec = decoded.spec.unwrap_or_default();
            let (namespace, name) = (object::namespace(service), object::name(service));
            for port in repair_node_ports(&spec) {
                if !self.ports.contains(port) {
                    tracing::warn!(%namespace, %name, port, range = %self.ports, "the node port is not within the port range; please recreate the service");
                } else if !ports.insert(port) {
                    tracing::warn!(%namespace, %name, port, "the node port was assigned to multiple services; please recreate the service");
                }
            }
        }

        // IPAddresses by name, and the ClusterIPs of every Service.
        let mut by_name: BTreeMap<String, Value> = addresses
            .into_iter()
            .map(|a| (object::name(&a).to_owned(), a))
            .collect();
        let mut specs: Vec<(String, String, ServiceSpec)> = Vec::new();
        let mut held: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for service in &services {
            let Ok(decoded) = decode_service(service) else {
                continue;
            };
            let mut spec = decoded.spec.unwrap_or_default();
            default_on_read(&self.families, &mut spec);
            let key = (
                object::namespace(service).to_owned(),
                object::name(service).to_owned(),
            );
            held.insert(key.clone(), strings(&spec.cluster_ips).to_vec());
            specs.push((key.0, key.1, spec));
        }
        let holds = |parent: &(String, String), ip: &str| {
            held.get(parent).is_some_and(|ips| ips.iter().any(|i| i == ip))
        };

        // Every ClusterIP has its IPAddress, naming its Service.
        let mut owner: BTreeMap<String, (String, String)> = BTreeMap::new();
        for (namespace, name, spec) in &specs {
            let ip_set =
                svc_type(spec) != TYPE_EXTERNAL_NAME && !matches!(cluster_ip(spec), "" | CLUSTER_IP_NONE);
            if !ip_set {
                continue;
            }
            for ip in strings(&spec.cluster_ips) {
                let Some(addr) = parse_addr(ip) else {
                    tracing::warn!(%namespace, %name, %ip, "the ClusterIP is not a valid IP; please recreate the service");
                    continue;
                };
                if !self.range.contains(addr) {
                    tracing::warn!(%namespace, %name, ip = %addr, family = addr.family.as_str(), "the ClusterIP is not within any service CIDR; please recreate the service");
                    continue;
                }
                let key = addr.to_string();
                if let Some((other_ns, other_name)) = owner.get(&key) {
                    tracing::warn!(%namespace, %name, ip = %key, other = %format!("{other_ns}/{other_name}"), "the ClusterIP was assigned to multiple services; please recreate the service");
                    continue;
                }
                let this = (namespace.clone(), name.clone());
                let recreate = match by_name.get(&key).map(parent_ref) {
                    None => {
                        tracing::warn!(%namespace, %name, ip = %key, "the ClusterIP is not allocated; repairing");
                        false
                    }
                    Some(None) => true,
                    Some(Some(parent)) if parent != this => {
                        if holds(&parent, &key) {
                            tracing::warn!(%namespace, %name, ip = %key, other = %format!("{}/{}", parent.0, parent.1), "the ClusterIP was assigned to multiple services; please recreate the service");
                            owner.insert(key, parent);
                            continue;
                        }
                        true
                    }
                    Some(Some(_)) => {
                        if by_name.get(&key).is_some_and(|a| labels_valid(a, addr.family)) {
                            owner.insert(key, this);
                            continue;
                        }
                        true
                    }
                };
                if recreate {
                    tracing::warn!(%namespace, %name, ip = %key, "the IPAddress of the ClusterIP has a wrong reference; repairing");
                    self.delete_ipaddress(store, &key).await;
                    by_name.remove(&key);
                }
                match self.create_ipaddress(store, addr, namespace, name).await {
                    Ok(()) => {
                        by_name.insert(key.clone(), Self::ipaddress_object(addr, namespace, name));
                        owner.insert(key, this);
                    }
                    Err(err) => {
                        tracing::error!(ip = %key, error = %err.message, "cannot repair the IPAddress of a service");
                    }
                }
            }
        }

        // The allocator's IPAddresses whose Service is gone or no longer holds them.
        let mut ips = HashSet::new();
        for (name, address) in &by_name {
            let managed = object::labels(address).get(LABEL_MANAGED_BY).map(String::as_str)
                == Some(IPALLOCATOR_CONTROLLER);
            let held = parent_ref(address).is_some_and(|parent| holds(&parent, name));
            if managed && !held {
                tracing::warn!(ip = %name, "IPAddress appears to have leaked: cleaning up");
                self.delete_ipaddress(store, name).await;
                continue;
            }
            if let Some(addr) = parse_addr(name).filter(|a| a.family == self.range.family) {
                ips.insert(addr.value);
            }
        }
        let (ip_count, port_count) = (ips.len(), ports.len());
        {
            let mut state = self.state();
            state.ips = ips;
            state.ports = ports;
        }
        tracing::info!(cluster_ips = ip_count, node_ports = port_count, cidr = %self.range.cidr, "service allocations repaired");
        Ok(())
    }
}

impl StoreHooks for ServiceHooks {
    fn begin_create<'a>(
        &'a self,
        store: &'a GenericStore,
        object: &'a mut Value,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Reservation, ApiError>> {
        Box::pin(async move {
            let txn = self.begin_create_service(store, object, dry_run).await?;
            Ok(Box::new(txn) as Reservation)
        })
    }

    fn begin_update<'a>(
        &'a self,
        store: &'a GenericStore,
        object: &'a mut Value,
        old: &'a Value,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Reservation, ApiError>> {
        Box::pin(async move {
            let txn = self.begin_update_service(store, object, old, dry_run).await?;
            Ok(Box::new(txn) as Reservation)
        })
    }

    fn finish<'a>(
        &'a self,
        store: &'a GenericStore,
        reservation: Reservation,
        succeeded: bool,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Ok(txn) = reservation.downcast::<Txn>() else {
                tracing::warn!("a service write finished with a reservation of another kind");
                return;
            };
            if succeeded {
                self.commit(store, *txn).await;
            } else {
                self.revert(store, *txn).await;
            }
        })
    }

    fn after_delete<'a>(&'a self, store: &'a GenericStore, object: &'a Value) -> BoxFuture<'a, ()> {
        Box::pin(self.after_delete_service(store, object))
    }
}

// ---- Service helpers (pure) -------------------------------------------------------------------

fn decode_service(object: &Value) -> Result<Service, ApiError> {
    serde_json::from_value(object.clone()).map_err(|err| {
        ApiError::bad_request(format!(
            "Service in version \"v1\" cannot be handled as a Service: {err}"
        ))
    })
}

fn cluster_ips_path() -> Path {
    Path::new("spec").child("clusterIPs")
}

fn strings(list: &Option<Vec<String>>) -> &[String] {
    list.as_deref().unwrap_or(&[])
}

/// The `spec.clusterIPs` of a stored Service as JSON.
fn cluster_ips_of(service: &Value) -> Vec<String> {
    service
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The type, with upstream's default.
fn svc_type(spec: &ServiceSpec) -> &str {
    match spec.type_.as_deref() {
        None | Some("") => TYPE_CLUSTER_IP,
        Some(t) => t,
    }
}

fn cluster_ip(spec: &ServiceSpec) -> &str {
    spec.cluster_ip.as_deref().unwrap_or("")
}

fn policy(spec: &ServiceSpec) -> &str {
    spec.ip_family_policy.as_deref().unwrap_or("")
}

fn node_port(port: &k8s_openapi::api::core::v1::ServicePort) -> i32 {
    port.node_port.unwrap_or(0)
}

fn protocol(port: &k8s_openapi::api::core::v1::ServicePort) -> &str {
    match port.protocol.as_deref() {
        None | Some("") => "TCP",
        Some(p) => p,
    }
}

fn set_list(target: &mut Option<Vec<String>>, list: Vec<String>) {
    *target = if list.is_empty() { None } else { Some(list) };
}

/// `clusterIPs` is exactly `["None"]`.
fn is_headless(spec: &ServiceSpec) -> bool {
    strings(&spec.cluster_ips).first().map(String::as_str) == Some(CLUSTER_IP_NONE)
}

/// Upstream's validation `isHeadlessService`.
fn is_headless_exact(spec: &ServiceSpec) -> bool {
    let ips = strings(&spec.cluster_ips);
    ips.len() == 1 && ips[0] == CLUSTER_IP_NONE
}

fn selector_empty(spec: &ServiceSpec) -> bool {
    spec.selector.as_ref().is_none_or(BTreeMap::is_empty)
}

fn needs_cluster_ip(spec: &ServiceSpec) -> bool {
    svc_type(spec) != TYPE_EXTERNAL_NAME
}

fn needs_node_port(spec: &ServiceSpec) -> bool {
    match svc_type(spec) {
        TYPE_NODE_PORT => true,
        TYPE_LOAD_BALANCER => spec.allocate_load_balancer_node_ports.unwrap_or(true),
        _ => false,
    }
}

fn needs_hc_node_port(spec: &ServiceSpec) -> bool {
    svc_type(spec) == TYPE_LOAD_BALANCER && spec.external_traffic_policy.as_deref() == Some("Local")
}

/// Upstream's `apiservice.NeedsHealthCheck`.
fn needs_health_check(spec: &ServiceSpec) -> bool {
    needs_hc_node_port(spec)
}

fn should_allocate_node_ports(spec: &ServiceSpec) -> bool {
    needs_node_port(spec)
}

fn externally_accessible(spec: &ServiceSpec) -> bool {
    let ty = svc_type(spec);
    ty == TYPE_LOAD_BALANCER
        || ty == TYPE_NODE_PORT
        || (ty == TYPE_CLUSTER_IP && spec.external_ips.as_ref().is_some_and(|l| !l.is_empty()))
}

/// Every non-zero node port of the ports (upstream's storage `collectServiceNodePorts`).
fn collect_node_ports(spec: &ServiceSpec) -> Vec<i32> {
    spec.ports
        .iter()
        .flatten()
        .map(node_port)
        .filter(|p| *p != 0)
        .collect()
}

/// The node ports a Service holds, as the node port repair controller counts them: a node
/// port shared by different protocols once, plus the health check node port.
fn repair_node_ports(spec: &ServiceSpec) -> Vec<i32> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
    for port in spec.ports.iter().flatten() {
        let number = node_port(port);
        if number == 0 {
            continue;
        }
        let proto = protocol(port).to_owned();
        match seen.get_mut(&number) {
            None => {
                seen.insert(number, BTreeSet::from([proto]));
                out.push(number);
            }
            Some(protocols) if protocols.contains(&proto) => out.push(number),
            Some(protocols) => {
                protocols.insert(proto);
            }
        }
    }
    let health = spec.health_check_node_port.unwrap_or(0);
    if health != 0 && seen.get(&health).is_none_or(|s| s.contains("TCP")) {
        out.push(health);
    }
    out
}

fn same_cluster_ips(a: &ServiceSpec, b: &ServiceSpec) -> bool {
    strings(&a.cluster_ips) == strings(&b.cluster_ips)
}

fn same_ip_families(a: &ServiceSpec, b: &ServiceSpec) -> bool {
    strings(&a.ip_families) == strings(&b.ip_families)
}

/// Upstream's `normalizeClusterIPs`: keeps `clusterIP` and `clusterIPs` in sync.
fn normalize_cluster_ips(spec: &mut ServiceSpec, old: Option<&ServiceSpec>) {
    let Some(old) = old else {
        if !cluster_ip(spec).is_empty() && strings(&spec.cluster_ips).is_empty() {
            spec.cluster_ips = Some(vec![cluster_ip(spec).to_owned()]);
        }
        return;
    };
    if !strings(&old.cluster_ips).is_empty()
        && strings(&spec.cluster_ips).is_empty()
        && cluster_ip(old) == cluster_ip(spec)
    {
        spec.cluster_ips = old.cluster_ips.clone();
    }
    if cluster_ip(old) != cluster_ip(spec) {
        if !cluster_ip(old).is_empty() && cluster_ip(spec).is_empty() {
            if same_cluster_ips(old, spec) {
                spec.cluster_ips = None;
            }
        } else if same_cluster_ips(old, spec) {
            spec.cluster_ips = Some(vec![cluster_ip(spec).to_owned()]);
        }
    }
}

/// Upstream's `patchAllocatedValues`: a resubmitted manifest keeps what was allocated.
fn patch_allocated_values(spec: &mut ServiceSpec, old: &ServiceSpec) {
    if needs_cluster_ip(old) && needs_cluster_ip(spec) {
        if cluster_ip(spec).is_empty() {
            spec.cluster_ip = old.cluster_ip.clone();
        }
        if strings(&spec.cluster_ips).is_empty() && !strings(&old.cluster_ips).is_empty() {
            spec.cluster_ips = old.cluster_ips.clone();
        }
    }
    if needs_node_port(old) && needs_node_port(spec) {
        let old_used: BTreeSet<i32> = collect_node_ports(old).into_iter().collect();
        let new_used: BTreeSet<i32> = collect_node_ports(spec).into_iter().collect();
        let used: BTreeSet<i32> = old_used.intersection(&new_used).copied().collect();
        let mut by_name: BTreeMap<String, i32> = BTreeMap::new();
        for port in old.ports.iter().flatten() {
            by_name.insert(port.name.clone().unwrap_or_default(), node_port(port));
        }
        for port in spec.ports.iter_mut().flatten() {
            if node_port(port) == 0 {
                let old_value = by_name
                    .get(port.name.as_deref().unwrap_or(""))
                    .copied()
                    .unwrap_or(0);
                if !used.contains(&old_value) {
                    port.node_port = (old_value != 0).then_some(old_value);
                }
            }
        }
    }
    if needs_hc_node_port(old) && needs_hc_node_port(spec) && spec.health_check_node_port.unwrap_or(0) == 0 {
        spec.health_check_node_port = old.health_check_node_port;
    }
}

/// Upstream's `defaultOnReadService` for Services stored before these fields existed.
fn default_on_read(families: &Families, spec: &mut ServiceSpec) {
    normalize_cluster_ips(spec, None);
    if svc_type(spec) == TYPE_EXTERNAL_NAME {
        spec.internal_traffic_policy = None;
        return;
    }
    if !strings(&spec.ip_families).is_empty() {
        return;
    }
    if cluster_ip(spec) == CLUSTER_IP_NONE {
        if selector_empty(spec) {
            spec.ip_family_policy = Some(REQUIRE_DUAL_STACK.to_owned());
            spec.ip_families = Some(vec![
                families.primary.as_str().to_owned(),
                families.primary.other().as_str().to_owned(),
            ]);
        } else {
            spec.ip_family_policy = Some(SINGLE_STACK.to_owned());
            spec.ip_families = Some(vec![families.primary.as_str().to_owned()]);
        }
        return;
    }
    let list: Vec<String> = strings(&spec.cluster_ips)
        .iter()
        .map(|ip| {
            match Family::of(ip) {
                Some(Family::V6) => "IPv6",
                _ => "IPv4",
            }
            .to_owned()
        })
        .collect();
    match list.len() {
        1 => spec.ip_family_policy = Some(SINGLE_STACK.to_owned()),
        2 => spec.ip_family_policy = Some(REQUIRE_DUAL_STACK.to_owned()),
        _ => {}
    }
    set_list(&mut spec.ip_families, list);
}

/// Upstream's `isMatchingPreferDualStackClusterIPFields`.
fn is_matching_prefer_dual_stack(spec: &ServiceSpec, old: Option<&ServiceSpec>) -> bool {
    let Some(old) = old else { return false };
    if spec.ip_family_policy.is_none() || svc_type(old) != svc_type(spec) {
        return false;
    }
    if !matches!(
        svc_type(spec),
        TYPE_CLUSTER_IP | TYPE_NODE_PORT | TYPE_LOAD_BALANCER
    ) {
        return false;
    }
    if policy(spec) != PREFER_DUAL_STACK
        || old
            .ip_family_policy
            .as_deref()
            .is_some_and(|p| p != PREFER_DUAL_STACK)
    {
        return false;
    }
    same_cluster_ips(old, spec) && same_ip_families(old, spec)
}

/// Upstream's `ValidateServiceClusterIPsRelatedFields`, the loose pre-validation the
/// allocator runs.
fn validate_cluster_ips_related_fields(spec: &ServiceSpec, old: Option<&ServiceSpec>) -> ErrorList {
    let mut errors = ErrorList::new();
    if svc_type(spec) == TYPE_EXTERNAL_NAME {
        return errors;
    }
    let spec_path = Path::new("spec");
    let ips_path = spec_path.child("clusterIPs");
    let families_path = spec_path.child("ipFamilies");
    let ips = strings(&spec.cluster_ips);
    if !cluster_ip(spec).is_empty() {
        if ips.is_empty() {
            errors.push(FieldError::required(&ips_path, ""));
        } else if ips[0] != cluster_ip(spec) {
            errors.push(FieldError::invalid(
                &ips_path,
                json!(ips),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errors.push(FieldError::invalid(
            &ips_path,
            json!(ips),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, family) in strings(&spec.ip_families).iter().enumerate() {
        if Family::parse(family).is_none() {
            errors.push(FieldError::not_supported(
                &families_path.index(i),
                family.as_str(),
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(family.as_str()) {
            errors.push(FieldError::duplicate(&families_path.index(i), family.as_str()));
        }
    }
    if let Some(p) = spec.ip_family_policy.as_deref()
        && ![PREFER_DUAL_STACK, REQUIRE_DUAL_STACK, SINGLE_STACK].contains(&p)
    {
        errors.push(FieldError::not_supported(
            &spec_path.child("ipFamilyPolicy"),
            p,
            &[PREFER_DUAL_STACK, REQUIRE_DUAL_STACK, SINGLE_STACK],
        ));
    }
    let existing: Vec<String> = old.map(|o| strings(&o.cluster_ips).to_vec()).unwrap_or_default();
    let mut has_invalid = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == CLUSTER_IP_NONE {
            if ips.len() > 1 {
                has_invalid = true;
                errors.push(FieldError::invalid(
                    &ips_path,
                    json!(ips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let found =
            is_valid_ip_for_legacy_field(&ips_path.index(i), ip, STRICT_IP_CIDR_VALIDATION, &existing);
        has_invalid |= !found.is_empty();
        errors.extend(found);
    }
    if ips.len() > 2 {
        errors.push(FieldError::invalid(
            &ips_path,
            json!(ips),
            "may only hold up to 2 values",
        ));
    }
    if has_invalid {
        return errors;
    }
    if ips.len() > 1 {
        let families: BTreeSet<Option<Family>> = ips.iter().map(|ip| Family::of(ip)).collect();
        let dual = families.contains(&Some(Family::V4)) && families.contains(&Some(Family::V6));
        if !dual {
            errors.push(FieldError::invalid(
                &ips_path,
                json!(ips),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    let families = strings(&spec.ip_families);
    if !is_headless_exact(spec) && !ips.is_empty() && !families.is_empty() {
        for (i, ip) in ips.iter().enumerate().take(families.len()) {
            let is_v6 = Family::of(ip) == Some(Family::V6);
            if families[i] == "IPv4" && is_v6 {
                errors.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if families[i] == "IPv6" && !is_v6 {
                errors.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errors
}

fn policy_value(spec: &ServiceSpec) -> Value {
    spec.ip_family_policy
        .as_deref()
        .map_or(Value::Null, |p| Value::String(p.to_owned()))
}

/// Upstream's `initIPFamilyFields`: defaults `ipFamilyPolicy` and `ipFamilies` and checks
/// them against the families the cluster is configured for.
fn init_ip_family_fields(
    families: &Families,
    name: &str,
    spec: &mut ServiceSpec,
    old: Option<&ServiceSpec>,
) -> Result<(), ApiError> {
    if svc_type(spec) == TYPE_EXTERNAL_NAME {
        return Ok(());
    }
    if is_matching_prefer_dual_stack(spec, old) {
        return Ok(());
    }
    let headless_selectorless = cluster_ip(spec) == CLUSTER_IP_NONE && selector_empty(spec);
    if spec.ip_family_policy.is_none() {
        spec.ip_family_policy = match old.and_then(|o| o.ip_family_policy.clone()) {
            Some(p) => Some(p),
            None if headless_selectorless => Some(REQUIRE_DUAL_STACK.to_owned()),
            None => Some(SINGLE_STACK.to_owned()),
        };
    }
    let invalid = |errors: &[FieldError]| ApiError::invalid("", "Service", name, errors);
    let pre = validate_cluster_ips_related_fields(spec, old);
    if !pre.is_empty() {
        return Err(invalid(&pre));
    }
    let policy_path = Path::new("spec").child("ipFamilyPolicy");
    let mut errors = ErrorList::new();
    if let Some(old) = old {
        if policy(spec) == SINGLE_STACK {
            if same_cluster_ips(old, spec) && strings(&spec.cluster_ips).len() > 1 {
                let first = strings(&spec.cluster_ips)[..1].to_vec();
                spec.cluster_ips = Some(first);
            }
            if same_ip_families(old, spec) && strings(&spec.ip_families).len() > 1 {
                let first = strings(&spec.ip_families)[..1].to_vec();
                spec.ip_families = Some(first);
            }
        } else {
            let new_ips = strings(&spec.cluster_ips).len();
            if new_ips != 0 && new_ips < strings(&old.cluster_ips).len() {
                errors.push(FieldError::invalid(
                    &policy_path,
                    policy_value(spec),
                    "must be 'SingleStack' to release the secondary cluster IP",
                ));
            }
            let new_families = strings(&spec.ip_families).len();
            if new_families != 0 && new_families < strings(&old.ip_families).len() {
                errors.push(FieldError::invalid(
                    &policy_path,
                    policy_value(spec),
                    "must be 'SingleStack' to release the secondary IP family",
                ));
            }
        }
    }
    if policy(spec) == SINGLE_STACK {
        if strings(&spec.cluster_ips).len() == 2 {
            errors.push(FieldError::invalid(
                &policy_path,
                policy_value(spec),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple cluster IPs are specified",
            ));
        }
        if strings(&spec.ip_families).len() == 2 {
            errors.push(FieldError::invalid(
                &policy_path,
                policy_value(spec),
                "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
            ));
        }
    }
    let ips = strings(&spec.cluster_ips).to_vec();
    let mut ip_families = strings(&spec.ip_families).to_vec();
    for (i, ip) in ips.iter().enumerate() {
        if ip == CLUSTER_IP_NONE {
            break;
        }
        if i >= ip_families.len() {
            let family = Family::of(ip);
            match family {
                Some(f) if families.has(f) => ip_families.push(f.as_str().to_owned()),
                other => errors.push(FieldError::invalid(
                    &Path::new("spec").child("clusterIPs").index(i),
                    json!(ips),
                    format!(
                        "{} is not configured on this cluster",
                        other.map_or("unknown", Family::as_str)
                    ),
                )),
            }
        }
    }
    set_list(&mut spec.ip_families, ip_families);
    if !errors.is_empty() {
        return Err(invalid(&errors));
    }
    if headless_selectorless {
        let mut list = strings(&spec.ip_families).to_vec();
        if list.is_empty() {
            list.push(families.primary.as_str().to_owned());
        }
        if list.len() < 2 && policy(spec) != SINGLE_STACK {
            let other = match Family::parse(&list[0]) {
                Some(Family::V4) => Family::V6,
                _ => Family::V4,
            };
            list.push(other.as_str().to_owned());
        }
        spec.ip_families = Some(list);
        return Ok(());
    }
    if policy(spec) == REQUIRE_DUAL_STACK && families.configured.len() < 2 {
        errors.push(FieldError::invalid(
            &policy_path,
            policy_value(spec),
            "this cluster is not configured for dual-stack services",
        ));
    }
    for (i, family) in strings(&spec.ip_families).iter().enumerate() {
        if !Family::parse(family).is_some_and(|f| families.has(f)) {
            errors.push(FieldError::invalid(
                &Path::new("spec").child("ipFamilies").index(i),
                family.as_str(),
                "not configured on this cluster",
            ));
        }
    }
    if !errors.is_empty() {
        return Err(invalid(&errors));
    }
    if strings(&spec.ip_families).is_empty() {
        spec.ip_families = Some(vec![families.primary.as_str().to_owned()]);
    }
    let list = strings(&spec.ip_families).to_vec();
    if policy(spec) != SINGLE_STACK && list.len() == 1 && families.configured.len() == 2 {
        let other = match Family::parse(&list[0]) {
            Some(f) => f.other(),
            None => families.primary,
        };
        let mut list = list;
        list.push(other.as_str().to_owned());
        spec.ip_families = Some(list);
    }
    Ok(())
}

/// The part of the strategy's `dropTypeDependentFields` that concerns allocated values: a
/// Service whose new type does not need them loses them, unless the user changed them.
fn drop_type_dependent_fields(spec: &mut ServiceSpec, old: &ServiceSpec) {
    if needs_cluster_ip(old) && !needs_cluster_ip(spec) {
        if same_cluster_ips(old, spec) {
            spec.cluster_ip = None;
            spec.cluster_ips = None;
        }
        if same_ip_families(old, spec) {
            spec.ip_families = None;
        }
        if old.ip_family_policy == spec.ip_family_policy {
            spec.ip_family_policy = None;
        }
    }
    if needs_node_port(old) && !needs_node_port(spec) && collect_node_ports(old) == collect_node_ports(spec) {
        for port in spec.ports.iter_mut().flatten() {
            port.node_port = None;
        }
    }
    if needs_hc_node_port(old)
        && !needs_hc_node_port(spec)
        && old.health_check_node_port.unwrap_or(0) == spec.health_check_node_port.unwrap_or(0)
    {
        spec.health_check_node_port = None;
    }
    if svc_type(old) == TYPE_LOAD_BALANCER
        && svc_type(spec) != TYPE_LOAD_BALANCER
        && let (Some(a), Some(b)) = (
            old.allocate_load_balancer_node_ports,
            spec.allocate_load_balancer_node_ports,
        )
        && a == b
    {
        spec.allocate_load_balancer_node_ports = None;
    }
    if externally_accessible(old)
        && !externally_accessible(spec)
        && old.external_traffic_policy == spec.external_traffic_policy
    {
        spec.external_traffic_policy = None;
    }
}

/// The update validation of allocated values (upstream's `validateUpgradeDowngradeClusterIPs`,
/// `validateUpgradeDowngradeIPFamilies` and `validateServiceExternalTrafficFieldsUpdate`).
fn validate_update(spec: &ServiceSpec, old: &ServiceSpec) -> ErrorList {
    let mut errors = ErrorList::new();
    let ips_path = cluster_ips_path();
    let families_path = Path::new("spec").child("ipFamilies");
    let policy_path = Path::new("spec").child("ipFamilyPolicy");
    let external = svc_type(spec) == TYPE_EXTERNAL_NAME || svc_type(old) == TYPE_EXTERNAL_NAME;
    let (new_ips, old_ips) = (strings(&spec.cluster_ips), strings(&old.cluster_ips));
    let both_headless = is_headless_exact(old) && is_headless_exact(spec);
    if !external && !both_headless {
        if old_ips.len() == new_ips.len() {
            for (i, ip) in old_ips.iter().enumerate() {
                if *ip != new_ips[i] {
                    errors.push(FieldError::invalid(
                        &ips_path.index(i),
                        json!(new_ips),
                        "may not change once set",
                    ));
                }
            }
        } else if old_ips.len() > new_ips.len() {
            if new_ips.is_empty() {
                errors.push(FieldError::invalid(
                    &ips_path.index(0),
                    json!(new_ips),
                    "primary clusterIP can not be unset",
                ));
            }
            if !old_ips.is_empty() && !new_ips.is_empty() && new_ips[0] != old_ips[0] {
                errors.push(FieldError::invalid(
                    &ips_path.index(0),
                    json!(new_ips),
                    "may not change once set",
                ));
            }
            if new_ips.len() == 1 && policy(spec) != SINGLE_STACK {
                errors.push(FieldError::invalid(
                    &policy_path,
                    policy_value(spec),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
            errors.push(FieldError::invalid(
                &ips_path.index(0),
                json!(new_ips),
                "may not change once set",
            ));
        }
    }
    let (new_families, old_families) = (strings(&spec.ip_families), strings(&old.ip_families));
    if !external && is_headless_exact(old) == is_headless_exact(spec) && !is_headless_exact(spec) {
        if old_families.len() == new_families.len() {
            for (i, family) in old_families.iter().enumerate() {
                if *family != new_families[i] {
                    errors.push(FieldError::invalid(
                        &families_path.index(0),
                        json!(new_families),
                        "may not change once set",
                    ));
                }
            }
        } else if old_families.len() > new_families.len() {
            if new_ips.is_empty() {
                errors.push(FieldError::invalid(
                    &families_path.index(0),
                    json!(new_families),
                    "primary ipFamily can not be unset",
                ));
            }
            if !new_families.is_empty() && new_families[0] != old_families[0] {
                errors.push(FieldError::invalid(
                    &families_path.index(0),
                    json!(new_ips),
                    "may not change once set",
                ));
            }
            if new_families.len() == 1 && policy(spec) != SINGLE_STACK {
                errors.push(FieldError::invalid(
                    &policy_path,
                    policy_value(spec),
                    "must be set to 'SingleStack' when releasing the secondary ipFamily",
                ));
            }
        } else if !old_families.is_empty() && !new_families.is_empty() && new_families[0] != old_families[0] {
            errors.push(FieldError::invalid(
                &families_path.index(0),
                json!(new_ips),
                "may not change once set",
            ));
        }
    }
    if needs_health_check(old)
        && needs_health_check(spec)
        && spec.health_check_node_port.unwrap_or(0) != old.health_check_node_port.unwrap_or(0)
    {
        errors.push(FieldError::forbidden(
            &Path::new("spec").child("healthCheckNodePort"),
            "field is immutable",
        ));
    }
    errors
}

/// The Service an IPAddress names (namespace, name); `None` when it names no Service.
fn parent_ref(ipaddress: &Value) -> Option<(String, String)> {
    let parent = ipaddress.pointer("/spec/parentRef")?;
    let field = |f: &str| parent.get(f).and_then(Value::as_str).unwrap_or("");
    (field("group").is_empty() && field("resource") == "services")
        .then(|| (field("namespace").to_owned(), field("name").to_owned()))
}

/// Upstream's `verifyIPAddressLabels`.
fn labels_valid(ipaddress: &Value, family: Family) -> bool {
    let labels = object::labels(ipaddress);
    labels.get(LABEL_IP_FAMILY).map(String::as_str) == Some(family.as_str())
        && labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some(IPALLOCATOR_CONTROLLER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServicePort;

    fn v4() -> Families {
        Families {
            primary: Family::V4,
            configured: vec![Family::V4],
        }
    }

    fn spec(value: Value) -> ServiceSpec {
        serde_json::from_value(value).unwrap()
    }

    fn message(err: &ApiError) -> &str {
        &err.message
    }

    #[test]
    fn ranges_follow_upstream_arithmetic() {
        let range = IpRange::new("10.96.0.0/16").unwrap();
        assert_eq!(range.cidr, "10.96.0.0/16");
        assert_eq!(range.size, 65534);
        assert_eq!(range.offset, 256);
        assert_eq!(range.addr(range.first).to_string(), "10.96.0.1");
        assert_eq!(range.addr(range.last).to_string(), "10.96.255.254");
        let small = IpRange::new("192.168.1.0/28").unwrap();
        assert_eq!((small.size, small.offset), (14, 0));
        let medium = IpRange::new("192.168.1.0/27").unwrap();
        assert_eq!((medium.size, medium.offset), (30, 16));
        let v6 = IpRange::new("fd00:10:96::/112").unwrap();
        assert_eq!(v6.cidr, "fd00:10:96::/112");
        assert_eq!(v6.size, 65535);
        assert_eq!(v6.addr(v6.last).to_string(), "fd00:10:96::ffff");
        assert!(matches!(
            IpRange::new("fd00::/48"),
            Err(ConfigError::PrefixTooShort(48))
        ));
        assert!(IpRange::new("bogus").is_err());

        let net = parse_addr("10.96.0.0").unwrap();
        assert_eq!(
            range.check_static(net).unwrap_err().to_string(),
            "the provided IP (10.96.0.0) is not in the valid range. The range of valid IPs is 10.96.0.0/16"
        );
        assert_eq!(
            range
                .check_static(parse_addr("10.0.0.5").unwrap())
                .unwrap_err()
                .to_string(),
            "the provided network does not match the current range"
        );
        assert!(range.check_static(parse_addr("10.96.0.5").unwrap()).is_ok());
        assert!(
            range.check_in_range(parse_addr("fd00::1").unwrap()).is_err(),
            "a dry run checks the range only"
        );
    }

    #[test]
    fn dynamic_ips_prefer_the_upper_band_and_fall_back() {
        let range = IpRange::new("10.96.0.0/16").unwrap();
        let mut taken = HashSet::new();
        let mut zero = |_n: u128| 0u128;
        let first = range.pick(&taken, &mut zero).unwrap();
        assert_eq!(
            range.addr(first).to_string(),
            "10.96.1.1",
            "the upper band starts past the offset"
        );
        let mut random = secure_random;
        for _ in 0..50 {
            let ip = range.pick(&taken, &mut random).unwrap();
            assert!(ip >= range.first + range.offset && ip <= range.last);
            assert!(taken.insert(ip));
        }
        // A full upper band falls back to the lower one, never the network or broadcast.
        let small = IpRange::new("192.168.1.0/27").unwrap();
        let mut taken: HashSet<u128> = (small.first + small.offset..=small.last).collect();
        let found = small.pick(&taken, &mut random).unwrap();
        assert!(found >= small.first && found < small.first + small.offset);
        taken.extend(small.first..small.first + small.offset);
        assert_eq!(small.pick(&taken, &mut random), None);
    }

    #[test]
    fn ports_prefer_the_upper_band() {
        let range = PortRange::new(30000, 32767);
        assert_eq!(range.to_string(), "30000-32767");
        assert_eq!((range.size, range.offset), (2768, 86));
        let mut zero = |_n: u128| 0u128;
        assert_eq!(range.pick(&BTreeSet::new(), &mut zero), Some(30086));
        let mut taken: BTreeSet<i32> = (30086..=32767).collect();
        let mut random = secure_random;
        let low = range.pick(&taken, &mut random).unwrap();
        assert!((30000..30086).contains(&low));
        taken.extend(30000..30086);
        assert_eq!(range.pick(&taken, &mut random), None);
    }

    #[test]
    fn families_default_for_a_single_stack_cluster() {
        let mut s = spec(json!({"type": "ClusterIP", "selector": {"app": "web"}}));
        init_ip_family_fields(&v4(), "web", &mut s, None).unwrap();
        assert_eq!(s.ip_family_policy.as_deref(), Some("SingleStack"));
        assert_eq!(s.ip_families, Some(vec!["IPv4".to_owned()]));

        // Headless without selector: RequireDualStack with both families, even single-stack.
        let mut s = spec(json!({"clusterIP": "None", "clusterIPs": ["None"]}));
        init_ip_family_fields(&v4(), "h", &mut s, None).unwrap();
        assert_eq!(s.ip_family_policy.as_deref(), Some("RequireDualStack"));
        assert_eq!(s.ip_families, Some(vec!["IPv4".to_owned(), "IPv6".to_owned()]));

        // Headless with a selector: single stack.
        let mut s = spec(json!({"clusterIP": "None", "clusterIPs": ["None"], "selector": {"a": "b"}}));
        init_ip_family_fields(&v4(), "h", &mut s, None).unwrap();
        assert_eq!(s.ip_family_policy.as_deref(), Some("SingleStack"));
        assert_eq!(s.ip_families, Some(vec!["IPv4".to_owned()]));

        // PreferDualStack on a single-stack cluster keeps one family.
        let mut s = spec(json!({"ipFamilyPolicy": "PreferDualStack"}));
        init_ip_family_fields(&v4(), "p", &mut s, None).unwrap();
        assert_eq!(s.ip_families, Some(vec!["IPv4".to_owned()]));

        // ExternalName is left alone.
        let mut s = spec(json!({"type": "ExternalName", "externalName": "example.com"}));
        init_ip_family_fields(&v4(), "e", &mut s, None).unwrap();
        assert_eq!(s.ip_family_policy, None);
    }

    #[test]
    fn family_errors_match_upstream() {
        let mut s = spec(json!({"ipFamilyPolicy": "RequireDualStack"}));
        let err = init_ip_family_fields(&v4(), "d", &mut s, None).unwrap_err();
        assert_eq!(
            message(&err),
            "Service \"d\" is invalid: spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"
        );
        let mut s = spec(json!({"ipFamilies": ["IPv6"]}));
        let err = init_ip_family_fields(&v4(), "d", &mut s, None).unwrap_err();
        assert_eq!(
            message(&err),
            "Service \"d\" is invalid: spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster"
        );
        let mut s = spec(json!({"clusterIP": "fd00::5", "clusterIPs": ["fd00::5"]}));
        let err = init_ip_family_fields(&v4(), "d", &mut s, None).unwrap_err();
        assert_eq!(
            message(&err),
            "Service \"d\" is invalid: spec.clusterIPs[0]: Invalid value: [\"fd00::5\"]: IPv6 is not configured on this cluster"
        );
        let mut s = spec(json!({"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.6"]}));
        let err = init_ip_family_fields(&v4(), "d", &mut s, None).unwrap_err();
        assert_eq!(
            message(&err),
            "Service \"d\" is invalid: spec.clusterIPs: Invalid value: [\"10.96.0.6\"]: first value must match `clusterIP`"
        );
        let mut s = spec(json!({"clusterIP": "nope", "clusterIPs": ["nope"]}));
        let err = init_ip_family_fields(&v4(), "d", &mut s, None).unwrap_err();
        assert_eq!(
            message(&err),
            "Service \"d\" is invalid: spec.clusterIPs[0]: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
        );
        let mut s = spec(json!({"ipFamilyPolicy": "Sometimes"}));
        let err = init_ip_family_fields(&v4(), "d", &mut s, None).unwrap_err();
        assert_eq!(
            message(&err),
            "Service \"d\" is invalid: spec.ipFamilyPolicy: Unsupported value: \"Sometimes\": supported values: \"PreferDualStack\", \"RequireDualStack\", \"SingleStack\""
        );
    }

    #[test]
    fn cluster_ips_normalize_and_patch_on_update() {
        let mut s = spec(json!({"clusterIP": "10.96.0.9"}));
        normalize_cluster_ips(&mut s, None);
        assert_eq!(s.cluster_ips, Some(vec!["10.96.0.9".to_owned()]));

        let old = spec(
            json!({"type": "NodePort", "clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"],
            "ports": [{"name": "http", "port": 80, "nodePort": 30080}]}),
        );
        let mut new = spec(json!({"type": "NodePort", "ports": [{"name": "http", "port": 80}]}));
        patch_allocated_values(&mut new, &old);
        assert_eq!(new.cluster_ip.as_deref(), Some("10.96.0.9"));
        assert_eq!(new.ports.as_ref().unwrap()[0].node_port, Some(30080));

        // An old client changing only `clusterIP` changes `clusterIPs` with it (and is then
        // refused as an immutable change).
        let mut new = spec(json!({"clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.9"]}));
        normalize_cluster_ips(&mut new, Some(&old));
        assert_eq!(new.cluster_ips, Some(vec!["10.96.0.10".to_owned()]));
        let errors = validate_update(&new, &old);
        assert_eq!(
            rudder_machinery::field::aggregate(&errors),
            "spec.clusterIPs[0]: Invalid value: [\"10.96.0.10\"]: may not change once set"
        );
    }

    #[test]
    fn type_changes_drop_allocated_values() {
        let old = spec(
            json!({"type": "NodePort", "clusterIP": "10.96.0.9", "clusterIPs": ["10.96.0.9"],
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "externalTrafficPolicy": "Cluster",
            "ports": [{"port": 80, "nodePort": 30080}]}),
        );
        let mut new = old.clone();
        new.type_ = Some("ExternalName".into());
        drop_type_dependent_fields(&mut new, &old);
        assert_eq!(
            (
                new.cluster_ip,
                new.cluster_ips,
                new.ip_families,
                new.ip_family_policy
            ),
            (None, None, None, None)
        );
        assert_eq!(new.ports.unwrap()[0].node_port, None);
        assert_eq!(new.external_traffic_policy, None);
    }

    #[test]
    fn repair_counts_shared_node_ports_once() {
        let s = spec(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000,
            "ports": [{"port": 53, "protocol": "TCP", "nodePort": 30053}, {"port": 53, "protocol": "UDP", "nodePort": 30053}]}),
        );
        assert_eq!(repair_node_ports(&s), vec![30053, 31000]);
        assert_eq!(collect_node_ports(&s), vec![30053, 30053]);
    }

    #[test]
    fn node_ports_are_shared_by_protocols_of_one_port() {
        let hooks = ServiceHooks::new("10.96.0.0/16").unwrap();
        let mut txn = Txn::new(false, "default", "dns");
        let mut s = spec(json!({"type": "NodePort", "ports": [
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
            {"name": "dns-udp", "port": 53, "protocol": "UDP"},
            {"name": "metrics", "port": 9153, "protocol": "TCP", "nodePort": 30153},
        ]}));
        hooks.alloc_node_ports("dns", &mut s, &mut txn).unwrap();
        let ports: Vec<i32> = s.ports.as_ref().unwrap().iter().map(node_port).collect();
        assert_eq!(ports[0], ports[1]);
        assert_eq!(ports[2], 30153);
        assert_eq!(txn.allocated_ports.len(), 2);

        // The same node port again is refused with upstream's message.
        let mut other = Txn::new(false, "default", "other");
        let mut s2 = spec(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30153}]}));
        let err = hooks.alloc_node_ports("other", &mut s2, &mut other).unwrap_err();
        assert_eq!(
            err.message,
            "Service \"other\" is invalid: spec.ports[0].nodePort: Invalid value: 30153: provided port is already allocated"
        );
        let mut s3 = spec(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]}));
        let err = hooks.alloc_node_ports("other", &mut s3, &mut other).unwrap_err();
        assert_eq!(
            err.message,
            "Service \"other\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767"
        );
        // Health check node ports for Local LoadBalancers; a taken one is an internal error.
        let mut lb = spec(
            json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 30153,
            "ports": [{"port": 443}]}),
        );
        let err = hooks.alloc_node_ports("lb", &mut lb, &mut other).unwrap_err();
        assert_eq!(
            err.message,
            "Internal error occurred: failed to allocate requested HealthCheck NodePort 30153: provided port is already allocated"
        );
    }

    #[test]
    fn dry_run_ports_follow_upstream_quirks() {
        let hooks = ServiceHooks::new("10.96.0.0/16").unwrap();
        let mut txn = Txn::new(true, "default", "web");
        let mut s = spec(json!({"type": "NodePort", "ports": [{"port": 80}, {"port": 81}]}));
        hooks.alloc_node_ports("web", &mut s, &mut txn).unwrap();
        let ports: Vec<Option<i32>> = s
            .ports
            .unwrap()
            .iter()
            .map(|p: &ServicePort| p.node_port)
            .collect();
        assert_eq!(ports, vec![Some(32769), Some(32770)]);
        assert!(hooks.state().ports.is_empty(), "a dry run allocates nothing");
    }
}
