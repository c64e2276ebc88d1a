//! Routes to the other nodes' pod ranges: each node's podCIDR through its InternalIP when
//! that address is on a link this node shares (flannel's host-gw, kube-router's direct
//! routes), else through a VXLAN overlay (flannel's vxlan backend: the device `rudder.vxlan`,
//! VNI 1, UDP 8472, tunnelling from this node's InternalIP; each node's tunnel endpoint has
//! the podCIDR's network address and a MAC derived from its InternalIP, so no node needs to
//! publish anything: a route `podCIDR via <its network address> onlink`, a permanent
//! neighbour entry for that address and a forwarding entry to the node's InternalIP).
//!
//! It owns the routes with netd's protocol mark inside the cluster CIDR, except the cluster
//! CIDR's blackhole, which [`crate::host`] keeps, and the VXLAN device with its entries.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::NetdError;
use crate::cidr::Ipv4Cidr;
use crate::netlink::{Netlink, Route, RouteKind, Vxlan};

/// How often routes are checked even when no node changed (local addresses may have).
const RESYNC: Duration = Duration::from_secs(30);

/// Another node as routing sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub pod_cidr: Ipv4Cidr,
    pub address: Ipv4Addr,
}

/// The overlay device's name.
pub const VXLAN_DEVICE: &str = "rudder.vxlan";
/// The overlay's VXLAN network identifier.
pub const VXLAN_VNI: u32 = 1;
/// The overlay's UDP port (flannel's).
pub const VXLAN_PORT: u16 = 8472;
/// What VXLAN adds to each packet: outer IPv4, UDP and VXLAN headers and the inner Ethernet
/// header.
const VXLAN_OVERHEAD: u32 = 50;

/// A node with a podCIDR and an InternalIP, as routing sees it.
fn peer_of(node: &Node) -> Option<Peer> {
    let pod_cidr = node.spec.as_ref()?.pod_cidr.as_deref()?.parse().ok()?;
    let address = node
        .status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .and_then(|a| a.address.parse().ok())?;
    Some(Peer {
        name: node.metadata.name.clone().unwrap_or_default(),
        pod_cidr,
        address,
    })
}

/// The other nodes with a podCIDR and an InternalIP.
pub fn peers<'a>(nodes: impl IntoIterator<Item = &'a Node>, own_name: &str) -> Vec<Peer> {
    let mut peers: Vec<Peer> = nodes
        .into_iter()
        .filter(|node| node.metadata.name.as_deref() != Some(own_name))
        .filter_map(peer_of)
        .collect();
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    peers
}

/// The MAC address of a node's tunnel endpoint: locally administered, unicast, from its
/// InternalIP.
pub fn vtep_mac(address: Ipv4Addr) -> [u8; 6] {
    let [a, b, c, d] = address.octets();
    [0x0a, 0x52, a, b, c, d]
}

/// What the overlay needs for the peers no link reaches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overlay {
    /// Each peer's podCIDR through its tunnel endpoint address (device left to fill in).
    pub routes: Vec<Route>,
    /// Neighbour entries: tunnel endpoint address -> its MAC.
    pub neighbours: Vec<(Ipv4Addr, [u8; 6])>,
    /// Forwarding entries: tunnel endpoint MAC -> the peer's InternalIP.
    pub forwarding: Vec<([u8; 6], Ipv4Addr)>,
}

/// The overlay entries for `peers` (those no link reaches).
pub fn overlay(peers: &[Peer]) -> Overlay {
    let mut overlay = Overlay::default();
    for peer in peers {
        let endpoint = peer.pod_cidr.network();
        let mac = vtep_mac(peer.address);
        overlay.routes.push(Route {
            destination: endpoint,
            prefix: peer.pod_cidr.prefix(),
            gateway: Some(endpoint),
            device: None,
            source: None,
            kind: RouteKind::Unicast,
            onlink: true,
        });
        overlay.neighbours.push((endpoint, mac));
        overlay.forwarding.push((mac, peer.address));
    }
    overlay
}

/// The routes for `peers` given this node's addresses (link index, address, prefix), and
/// the peers no link reaches.
pub fn routes(
    peers: &[Peer],
    local: &[(u32, Ipv4Addr, u8)],
    cluster_cidr: Ipv4Cidr,
) -> (Vec<Route>, Vec<Peer>) {
    let mut wanted = Vec::new();
    let mut unreachable = Vec::new();
    for peer in peers {
        if !cluster_cidr.covers(&peer.pod_cidr) {
            continue;
        }
        let link = local.iter().find(|(_, ip, prefix)| {
            *prefix > 0
                && *ip != peer.address
                && Ipv4Cidr::new(*ip, *prefix).is_ok_and(|subnet| subnet.contains(peer.address))
        });
        match link {
            Some((index, _, _)) => wanted.push(Route {
                destination: peer.pod_cidr.network(),
                prefix: peer.pod_cidr.prefix(),
                gateway: Some(peer.address),
                device: Some(*index),
                source: None,
                kind: RouteKind::Unicast,
                onlink: false,
            }),
            None => unreachable.push(peer.clone()),
        }
    }
    (wanted, unreachable)
}

/// Brings the node routes to `wanted`: adds or replaces them, removes netd's other routes
/// inside the cluster CIDR (blackholes excepted). Blocking.
fn apply(wanted: &[Route], cluster_cidr: Ipv4Cidr) -> Result<(), NetdError> {
    let mut netlink = Netlink::open()?;
    let existing = netlink.own_routes()?;
    for route in &existing {
        let inside = Ipv4Cidr::new(route.destination, route.prefix).is_ok_and(|d| cluster_cidr.covers(&d));
        let ours = route.kind == RouteKind::Unicast && route.gateway.is_some();
        let kept = wanted.iter().any(|w| {
            w.destination == route.destination && w.prefix == route.prefix && w.gateway == route.gateway
        });
        if inside && ours && !kept {
            netlink.delete_route(route)?;
        }
    }
    for route in wanted {
        let present = existing.iter().any(|r| {
            r.destination == route.destination
                && r.prefix == route.prefix
                && r.gateway == route.gateway
                && r.device == route.device
        });
        if !present {
            netlink.replace_route(route)?;
        }
    }
    Ok(())
}

/// Brings the overlay to `overlay`: the device for this node (`own`; recreated when its
/// settings differ), up, with its tunnel endpoint address and exactly the wanted entries.
/// It exists whenever this node has an InternalIP and a podCIDR, even with no peer to reach
/// through it, so that peers which reach this node only through the overlay are heard.
/// Returns the device's index. Blocking.
fn apply_overlay(overlay: &Overlay, own: Option<&Peer>, mtu: u32) -> Result<Option<u32>, NetdError> {
    let mut netlink = Netlink::open()?;
    let existing = netlink.vxlan(VXLAN_DEVICE)?;
    let Some(own) = own else {
        if let Some((index, _)) = existing {
            netlink.delete_link(index)?;
        }
        return Ok(None);
    };
    let wanted = Vxlan {
        name: VXLAN_DEVICE.to_owned(),
        vni: VXLAN_VNI,
        local: own.address,
        port: VXLAN_PORT,
        mac: vtep_mac(own.address),
        mtu: mtu.saturating_sub(VXLAN_OVERHEAD),
    };
    let index = match existing {
        Some((index, device)) if device == wanted => index,
        other => {
            if let Some((index, _)) = other {
                netlink.delete_link(index)?;
            }
            netlink.add_vxlan(&wanted)?;
            netlink
                .link_index(VXLAN_DEVICE)?
                .ok_or_else(|| NetdError::Config(format!("{VXLAN_DEVICE} vanished after it was made")))?
        }
    };
    netlink.add_address(index, own.pod_cidr.network(), 32)?;
    netlink.set_up(index, None)?;
    let present = netlink.permanent_neighbours(index)?;
    for entry in &present {
        let kept = if entry.forwarding {
            overlay
                .forwarding
                .iter()
                .any(|(mac, ip)| entry.mac == Some(*mac) && entry.ip == Some(*ip))
        } else {
            overlay
                .neighbours
                .iter()
                .any(|(ip, mac)| entry.ip == Some(*ip) && entry.mac == Some(*mac))
        };
        if !kept {
            netlink.delete_neighbour(index, entry)?;
        }
    }
    let has = |forwarding: bool, ip: Ipv4Addr, mac: [u8; 6]| {
        present
            .iter()
            .any(|e| e.forwarding == forwarding && e.ip == Some(ip) && e.mac == Some(mac))
    };
    for (ip, mac) in &overlay.neighbours {
        if !has(false, *ip, *mac) {
            netlink.replace_neighbour(index, *ip, *mac)?;
        }
    }
    for (mac, destination) in &overlay.forwarding {
        if !has(true, *destination, *mac) {
            netlink.replace_fdb(index, *mac, *destination)?;
        }
    }
    Ok(Some(index))
}

/// Keeps the routes to the other nodes until `shutdown`.
pub async fn run(
    client: Client,
    node_name: String,
    cluster_cidr: Ipv4Cidr,
    mtu: u32,
    shutdown: CancellationToken,
) {
    let (bump, mut generation) = watch::channel(0u64);
    let nodes = crate::watched::follow::<Node>(client, bump, shutdown.clone());
    tokio::select! {
        () = shutdown.cancelled() => return,
        _ = nodes.wait_until_ready() => {}
    }
    let mut warned: BTreeMap<String, Ipv4Addr> = BTreeMap::new();
    loop {
        generation.borrow_and_update();
        let state = nodes.state();
        let peers = peers(state.iter().map(AsRef::as_ref), &node_name);
        let own = state
            .iter()
            .find(|node| node.metadata.name.as_deref() == Some(node_name.as_str()))
            .and_then(|node| peer_of(node));
        let result = tokio::task::spawn_blocking(move || -> Result<Vec<Peer>, NetdError> {
            let local = Netlink::open()?.all_addresses()?;
            let (mut wanted, unreachable) = routes(&peers, &local, cluster_cidr);
            let overlay = overlay(&unreachable);
            if let Some(index) = apply_overlay(&overlay, own.as_ref(), mtu)? {
                wanted.extend(overlay.routes.into_iter().map(|route| Route {
                    device: Some(index),
                    ..route
                }));
            }
            apply(&wanted, cluster_cidr)?;
            Ok(unreachable)
        })
        .await;
        match result {
            Ok(Ok(unreachable)) => {
                for peer in unreachable {
                    if warned.insert(peer.name.clone(), peer.address) != Some(peer.address) {
                        tracing::info!(node = %peer.name, address = %peer.address, pod_cidr = %peer.pod_cidr,
                            "no link shared with the node: its pods are reached through the VXLAN overlay");
                    }
                }
            }
            Ok(Err(err)) => tracing::warn!(error = %err, "routing to the other nodes failed"),
            Err(err) => tracing::warn!(error = %err, "routing to the other nodes failed"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = generation.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(RESYNC) => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, cidr: Option<&str>, ip: &str) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"podCIDR": cidr},
            "status": {"addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}]}
        }))
        .unwrap()
    }

    #[test]
    fn peers_without_a_shared_link_go_through_the_overlay() {
        let far = Peer {
            name: "far".into(),
            pod_cidr: "10.244.2.0/24".parse().unwrap(),
            address: Ipv4Addr::new(203, 0, 113, 9),
        };
        let mac = [0x0a, 0x52, 203, 0, 113, 9];
        assert_eq!(vtep_mac(far.address), mac);
        let overlay = overlay(&[far]);
        assert_eq!(
            overlay.routes,
            [Route {
                destination: Ipv4Addr::new(10, 244, 2, 0),
                prefix: 24,
                gateway: Some(Ipv4Addr::new(10, 244, 2, 0)),
                device: None,
                source: None,
                kind: RouteKind::Unicast,
                onlink: true,
            }]
        );
        assert_eq!(overlay.neighbours, [(Ipv4Addr::new(10, 244, 2, 0), mac)]);
        assert_eq!(overlay.forwarding, [(mac, Ipv4Addr::new(203, 0, 113, 9))]);
    }

    #[test]
    fn peers_on_a_shared_link_get_direct_routes() {
        let nodes = [
            node("me", Some("10.244.0.0/24"), "192.168.77.1"),
            node("near", Some("10.244.1.0/24"), "192.168.77.2"),
            node("far", Some("10.244.2.0/24"), "203.0.113.9"),
            node("new", None, "192.168.77.3"),
            node("odd", Some("10.9.0.0/24"), "192.168.77.4"),
        ];
        let peers = peers(&nodes, "me");
        assert_eq!(
            peers.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["far", "near", "odd"]
        );
        let local = [
            (1, Ipv4Addr::LOCALHOST, 8),
            (7, Ipv4Addr::new(192, 168, 77, 1), 24),
        ];
        let (wanted, unreachable) = routes(&peers, &local, "10.244.0.0/16".parse().unwrap());
        assert_eq!(
            wanted,
            [Route {
                destination: Ipv4Addr::new(10, 244, 1, 0),
                prefix: 24,
                gateway: Some(Ipv4Addr::new(192, 168, 77, 2)),
                device: Some(7),
                source: None,
                kind: RouteKind::Unicast,
                onlink: false,
            }]
        );
        assert_eq!(
            unreachable.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["far"]
        );
    }
}
