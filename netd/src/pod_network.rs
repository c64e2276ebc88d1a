//! Pods' interfaces: a veth pair per pod, `eth0` in the pod's network namespace with an
//! address leased from the node's pod range and a default route through the bridge, the host
//! end on the bridge. What noded calls when it sets up or removes a pod sandbox (the part a
//! CNI plugin plays for a kubelet).
//!
//! It owns the pod ends and the leases; the bridge and routes are [`crate::host`]'s.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::NetdError;
use crate::cidr::Ipv4Cidr;
use crate::host::HostNetwork;
use crate::ipam::Ipam;
use crate::netlink::{Netlink, Route, RouteKind};

/// The pod's interface inside its network namespace.
pub const POD_INTERFACE: &str = "eth0";

/// How long an attach waits for the node's podCIDR before failing (the pod worker retries).
const RANGE_WAIT: Duration = Duration::from_secs(30);

/// Connects pods' network namespaces to the node's pod network.
#[derive(Debug)]
pub struct PodNetwork {
    host: HostNetwork,
    lease_root: PathBuf,
    node: watch::Receiver<crate::NodeFacts>,
    ipams: Mutex<HashMap<Ipv4Cidr, Arc<Ipam>>>,
    /// The range the host side was last set up for.
    host_ready: tokio::sync::Mutex<Option<Ipv4Cidr>>,
}

impl PodNetwork {
    pub(crate) fn new(
        host: HostNetwork,
        lease_root: PathBuf,
        node: watch::Receiver<crate::NodeFacts>,
    ) -> Self {
        Self {
            host,
            lease_root,
            node,
            ipams: Mutex::new(HashMap::new()),
            host_ready: tokio::sync::Mutex::new(None),
        }
    }

    /// Gives the pod `uid` its interface in the network namespace at `netns` and returns the
    /// pod's addresses. Idempotent: a pod already connected keeps its address.
    #[tracing::instrument(skip_all, fields(pod.uid = uid))]
    pub async fn attach(&self, uid: &str, netns: &Path) -> Result<Vec<IpAddr>, NetdError> {
        let range = self.range().await?;
        self.ensure_host(range).await?;
        let ipam = self.ipam(range);
        let host = self.host.clone();
        let uid = uid.to_owned();
        let netns = netns.to_owned();
        let address = tokio::task::spawn_blocking(move || connect_pod(&host, &ipam, &uid, &netns))
            .await
            .map_err(|e| NetdError::Config(format!("pod network task failed: {e}")))??;
        Ok(vec![IpAddr::V4(address)])
    }

    /// Releases what the pod `uid` holds: its host interface (if its namespace still exists)
    /// and its addresses. Blocking.
    #[tracing::instrument(skip_all, fields(pod.uid = uid))]
    pub fn detach(&self, uid: &str) -> Result<(), NetdError> {
        let mut ipams: Vec<Arc<Ipam>> = self
            .ipams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let current = self.node.borrow().pod_cidr;
        if let Some(range) = current
            && !ipams.iter().any(|ipam| ipam.range() == range)
        {
            ipams.push(self.ipam(range));
        }
        let mut netlink = Netlink::open()?;
        if let Some(index) = netlink.link_index(&host_interface(uid))? {
            netlink.delete_link(index)?;
        }
        for ipam in ipams {
            for address in ipam.release(uid)? {
                tracing::debug!(%address, "released the pod's address");
            }
        }
        Ok(())
    }

    /// The node's pod range, waiting for node IPAM to assign it.
    async fn range(&self) -> Result<Ipv4Cidr, NetdError> {
        let mut node = self.node.clone();
        let wait = node.wait_for(|facts| facts.pod_cidr.is_some());
        match tokio::time::timeout(RANGE_WAIT, wait).await {
            Ok(Ok(facts)) => facts.pod_cidr.ok_or(NetdError::NoPodCidr),
            _ => Err(NetdError::NoPodCidr),
        }
    }

    /// Sets up the host side of the pod network for `range` (once per range).
    pub(crate) async fn ensure_host(&self, range: Ipv4Cidr) -> Result<(), NetdError> {
        let mut ready = self.host_ready.lock().await;
        if *ready == Some(range) {
            return Ok(());
        }
        let host = self.host.clone();
        tokio::task::spawn_blocking(move || host.ensure(range))
            .await
            .map_err(|e| NetdError::Config(format!("host network task failed: {e}")))??;
        *ready = Some(range);
        Ok(())
    }

    fn ipam(&self, range: Ipv4Cidr) -> Arc<Ipam> {
        self.ipams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(range)
            .or_insert_with(|| Arc::new(Ipam::new(&self.lease_root, range)))
            .clone()
    }
}

/// The host end of the pod's veth pair: `veth` and the first 11 hex digits of its UID
/// (interface names have at most 15 bytes).
pub fn host_interface(uid: &str) -> String {
    let digits: String = uid.chars().filter(char::is_ascii_hexdigit).take(11).collect();
    format!("veth{digits}")
}

fn connect_pod(host: &HostNetwork, ipam: &Ipam, uid: &str, netns: &Path) -> Result<Ipv4Addr, NetdError> {
    let range = ipam.range();
    let gateway = ipam
        .gateway()
        .ok_or_else(|| NetdError::Config(format!("the pod range {range} has no gateway address")))?;
    let address = ipam.allocate(uid)?;
    let name = host_interface(uid);
    let mut netlink = Netlink::open()?;
    if let Some(index) = netlink.link_index(&name)? {
        let connected = Netlink::in_namespace(netns, |inside| {
            let Some(eth0) = inside.link_index(POD_INTERFACE)? else {
                return Ok(false);
            };
            Ok(inside.addresses(eth0)?.contains(&(address, range.prefix())))
        })?;
        if connected {
            return Ok(address);
        }
        // Half made by an earlier attempt: start over.
        netlink.delete_link(index)?;
    }
    let namespace = std::fs::File::open(netns).map_err(|source| NetdError::Io {
        what: format!("opening {}", netns.display()),
        source,
    })?;
    netlink.add_veth(&name, POD_INTERFACE, host.mtu, &namespace)?;
    let bridge = netlink
        .link_index(&host.bridge)?
        .ok_or_else(|| NetdError::Config(format!("bridge {} is missing", host.bridge)))?;
    let index = netlink
        .link_index(&name)?
        .ok_or_else(|| NetdError::Config(format!("interface {name} vanished")))?;
    netlink.set_up(index, Some(bridge))?;
    Netlink::in_namespace(netns, |inside| {
        let eth0 = inside
            .link_index(POD_INTERFACE)?
            .ok_or_else(|| crate::netlink::NetlinkError::Decode {
                what: "configuring the pod interface".to_owned(),
                detail: format!("{POD_INTERFACE} is missing in the pod's namespace"),
            })?;
        inside.add_address(eth0, address, range.prefix())?;
        inside.set_up(eth0, None)?;
        inside.replace_route(&Route {
            destination: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
            gateway: Some(gateway),
            device: Some(eth0),
            source: None,
            kind: RouteKind::Unicast,
            onlink: false,
        })
    })?;
    tracing::debug!(%address, interface = name, "connected the pod");
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_interface_names_fit_and_differ_per_pod() {
        let a = host_interface("3f2a9c1e-77b0-4d2a-9e61-0123456789ab");
        assert_eq!(a, "veth3f2a9c1e77b");
        assert!(a.len() <= 15);
        assert_ne!(a, host_interface("3f2a9c1e-78b0-4d2a-9e61-0123456789ab"));
    }
}
