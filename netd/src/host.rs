//! The node's side of the pod network: the bridge with the pod range's gateway address,
//! forwarding, the routes that keep cluster traffic on the machine, and masquerading of pod
//! traffic that leaves the cluster network (the `ip rudder-net` nftables table).
//!
//! Blocking: call from a blocking thread. Pods' own interfaces are [`crate::pod_network`]'s.

use std::net::Ipv4Addr;

use nftables::expr::MetaKey;
use nftables::types::{NfChainType, NfHook};

use crate::NetdError;
use crate::cidr::Ipv4Cidr;
use crate::netlink::{Netlink, Route, RouteKind};
use crate::nft::{self, TableBuilder};

/// netd's table for the pod network's forwarding and masquerading.
pub const TABLE: &str = "rudder-net";

/// What the node's pod network looks like.
#[derive(Clone, Debug)]
pub struct HostNetwork {
    pub bridge: String,
    pub mtu: u32,
    pub cluster_cidr: Ipv4Cidr,
    pub service_cidr: Ipv4Cidr,
}

impl HostNetwork {
    /// Brings the node's side of the pod network to its configuration for the pod range
    /// `pod_range` (the node's podCIDR). Idempotent.
    pub fn ensure(&self, pod_range: Ipv4Cidr) -> Result<(), NetdError> {
        let gateway = pod_range
            .nth(1)
            .ok_or_else(|| NetdError::Config(format!("the pod range {pod_range} has no gateway address")))?;
        write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        // Bridged pod-to-pod traffic must pass the IP hooks, so that a reply from a service's
        // endpoint on the same bridge is translated back (br_netfilter).
        let bridge_nf = "/proc/sys/net/bridge/bridge-nf-call-iptables";
        if std::path::Path::new(bridge_nf).exists() {
            write_sysctl(bridge_nf, "1")?;
        } else {
            tracing::warn!(
                "{bridge_nf} is missing (kernel module br_netfilter): service traffic between pods of this node will not be translated back"
            );
        }
        let mut netlink = Netlink::open()?;
        let bridge = match netlink.link_index(&self.bridge)? {
            Some(index) => index,
            None => {
                netlink.add_bridge(&self.bridge, self.mtu)?;
                netlink
                    .link_index(&self.bridge)?
                    .ok_or_else(|| NetdError::Config(format!("bridge {} vanished", self.bridge)))?
            }
        };
        netlink.add_address(bridge, gateway, pod_range.prefix())?;
        netlink.set_up(bridge, None)?;
        // Pods' packets to service addresses leave through the bridge they came in on: the
        // node must not answer them with ICMP redirects, which would send pods' later packets
        // for the address straight onto the bridge, past the service proxy (a device's
        // setting counts only together with `all`'s).
        write_sysctl("/proc/sys/net/ipv4/conf/all/send_redirects", "0")?;
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/send_redirects", self.bridge),
            "0",
        )?;
        self.ensure_routes(&mut netlink, bridge, gateway)?;
        self.masquerade_table().apply()?;
        Ok(())
    }

    /// A blackhole for the cluster CIDR: addresses of it that are not this node's pods nor
    /// routed to another node never leave through the default route. The service CIDR is
    /// routed to the bridge rather than to a blackhole, which would fail host processes'
    /// connections to ClusterIPs before the service proxy's translation runs; the proxy drops
    /// or rejects whatever still has a service address after translation, so none of it
    /// leaves the node either.
    fn ensure_routes(&self, netlink: &mut Netlink, bridge: u32, gateway: Ipv4Addr) -> Result<(), NetdError> {
        let wanted = [
            Route {
                destination: self.cluster_cidr.network(),
                prefix: self.cluster_cidr.prefix(),
                gateway: None,
                device: None,
                source: None,
                kind: RouteKind::Blackhole,
                onlink: false,
            },
            Route {
                destination: self.service_cidr.network(),
                prefix: self.service_cidr.prefix(),
                gateway: None,
                device: Some(bridge),
                source: Some(gateway),
                kind: RouteKind::Unicast,
                onlink: false,
            },
        ];
        for route in &wanted {
            netlink.replace_route(route)?;
        }
        Ok(())
    }

    /// Pod traffic to anywhere outside the cluster network leaves with the node's address;
    /// forwarding of pod traffic is allowed whatever other tables' policies say.
    fn masquerade_table(&self) -> TableBuilder {
        let mut table = TableBuilder::new(TABLE);
        table.base_chain("postrouting", NfChainType::NAT, NfHook::Postrouting, 100);
        table.rule(
            "postrouting",
            vec![
                nft::equals(nft::payload("ip", "saddr"), nft::cidr(self.cluster_cidr)),
                nft::differs(nft::payload("ip", "daddr"), nft::cidr(self.cluster_cidr)),
                nft::differs(nft::meta(MetaKey::Oifname), nft::text(self.bridge.clone())),
                nft::masquerade(),
            ],
        );
        table.base_chain("forward", NfChainType::Filter, NfHook::Forward, 0);
        for field in ["saddr", "daddr"] {
            table.rule(
                "forward",
                vec![
                    nft::equals(nft::payload("ip", field), nft::cidr(self.cluster_cidr)),
                    nft::accept(),
                ],
            );
        }
        table
    }
}

fn write_sysctl(path: &str, value: &str) -> Result<(), NetdError> {
    if std::fs::read_to_string(path).is_ok_and(|current| current.trim() == value) {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|source| NetdError::Io {
        what: format!("writing {path}"),
        source,
    })
}
