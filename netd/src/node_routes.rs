//! Routes to the other nodes' pod ranges: each node's podCIDR through its InternalIP when
//! that address is on a link this node shares (flannel's host-gw, kube-router's direct
//! routes). Nodes elsewhere get no route (there is no overlay yet) and a warning.
//!
//! It owns the routes with netd's protocol mark inside the cluster CIDR, except the cluster
//! CIDR's blackhole, which [`crate::host`] keeps.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::NetdError;
use crate::cidr::Ipv4Cidr;
use crate::netlink::{Netlink, Route, RouteKind};

/// How often routes are checked even when no node changed (local addresses may have).
const RESYNC: Duration = Duration::from_secs(30);

/// Another node as routing sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub pod_cidr: Ipv4Cidr,
    pub address: Ipv4Addr,
}

/// The other nodes with a podCIDR and an InternalIP.
pub fn peers<'a>(nodes: impl IntoIterator<Item = &'a Node>, own_name: &str) -> Vec<Peer> {
    let mut peers: Vec<Peer> = nodes
        .into_iter()
        .filter(|node| node.metadata.name.as_deref() != Some(own_name))
        .filter_map(|node| {
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
        })
        .collect();
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    peers
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

/// Keeps the routes to the other nodes until `shutdown`.
pub async fn run(client: Client, node_name: String, cluster_cidr: Ipv4Cidr, shutdown: CancellationToken) {
    let (bump, mut generation) = watch::channel(0u64);
    let nodes = crate::watched::follow::<Node>(client, bump, shutdown.clone());
    tokio::select! {
        () = shutdown.cancelled() => return,
        _ = nodes.wait_until_ready() => {}
    }
    let mut warned: BTreeMap<String, Ipv4Addr> = BTreeMap::new();
    loop {
        generation.borrow_and_update();
        let peers = peers(nodes.state().iter().map(AsRef::as_ref), &node_name);
        let result = tokio::task::spawn_blocking(move || -> Result<Vec<Peer>, NetdError> {
            let local = Netlink::open()?.all_addresses()?;
            let (wanted, unreachable) = routes(&peers, &local, cluster_cidr);
            apply(&wanted, cluster_cidr)?;
            Ok(unreachable)
        })
        .await;
        match result {
            Ok(Ok(unreachable)) => {
                for peer in unreachable {
                    if warned.insert(peer.name.clone(), peer.address) != Some(peer.address) {
                        tracing::warn!(node = %peer.name, address = %peer.address, pod_cidr = %peer.pod_cidr,
                            "no link to the node's address: its pods are unreachable from here");
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
