//! A small synchronous rtnetlink client: links (bridge, veth, VXLAN), addresses, routes,
//! neighbours and VXLAN forwarding entries of the network namespace the socket was opened in.
//!
//! Calls block: run them on a blocking thread. It decides nothing about the pod network;
//! [`crate::pod_network`] and [`crate::host`] say what to configure.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    BridgeStpState, InfoBridge, InfoData, InfoKind, InfoVeth, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo,
    LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

/// The protocol number marking the routes netd installs (`ip route show proto 0x52`), so that
/// it can find and replace its own and leave everyone else's alone.
pub const ROUTE_PROTOCOL: u8 = 0x52;

/// Why a netlink request failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("{what}: {source}")]
    Kernel {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: undecodable netlink reply: {detail}")]
    Decode { what: String, detail: String },
    #[error("entering the network namespace {path}: {source}")]
    Namespace {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl NetlinkError {
    /// The errno of a request the kernel refused.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

/// A route as netd installs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub destination: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub device: Option<u32>,
    /// The preferred source address.
    pub source: Option<Ipv4Addr>,
    pub kind: RouteKind,
    /// `onlink`: the gateway is reachable on the device even without an address for it.
    pub onlink: bool,
}

/// A VXLAN device as netd makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vxlan {
    pub name: String,
    pub vni: u32,
    pub local: Ipv4Addr,
    pub port: u16,
    pub mac: [u8; 6],
    pub mtu: u32,
}

/// A permanent neighbour (`forwarding: false`, IP -> MAC) or forwarding database entry
/// (`forwarding: true`, MAC -> tunnel destination IP) of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    pub forwarding: bool,
    pub ip: Option<Ipv4Addr>,
    pub mac: Option<[u8; 6]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    Unicast,
    Blackhole,
}

/// One rtnetlink socket, bound to the network namespace it was opened in.
pub struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink")
            .field("fd", &self.socket.as_raw_fd())
            .finish()
    }
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Self, NetlinkError> {
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(NetlinkError::Socket)?;
        socket.bind_auto().map_err(NetlinkError::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(NetlinkError::Socket)?;
        Ok(Self { socket, sequence: 0 })
    }

    /// Runs `work` with a socket in the network namespace bound at `path`, on a thread of its
    /// own (a thread's namespace is process-wide state for its sockets: the thread ends with it).
    pub fn in_namespace<T: Send>(
        path: &Path,
        work: impl FnOnce(&mut Netlink) -> Result<T, NetlinkError> + Send,
    ) -> Result<T, NetlinkError> {
        let namespace_error = |source: std::io::Error| NetlinkError::Namespace {
            path: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(namespace_error)?;
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new()
                .name("netns-netlink".to_owned())
                .spawn_scoped(scope, move || {
                    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(|e| namespace_error(e.into()))?;
                    let mut netlink = Netlink::open()?;
                    work(&mut netlink)
                })
                .map_err(namespace_error)?;
            thread
                .join()
                .unwrap_or_else(|_| Err(namespace_error(std::io::Error::other("thread panicked"))))
        })
    }

    /// Sends one request and collects the messages of its reply until the acknowledgement
    /// (or the end of a dump).
    fn request(
        &mut self,
        what: &str,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, NetlinkError> {
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buffer = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buffer);
        let kernel = |source| NetlinkError::Kernel {
            what: what.to_owned(),
            source,
        };
        self.socket.send(&buffer, 0).map_err(kernel)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut replies = Vec::new();
        let mut receive = vec![0u8; 64 * 1024];
        loop {
            let size = self.socket.recv(&mut &mut receive[..], 0).map_err(kernel)?;
            let mut offset = 0;
            while offset < size {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&receive[offset..size])
                    .map_err(|e| NetlinkError::Decode {
                        what: what.to_owned(),
                        detail: e.to_string(),
                    })?;
                let length = reply.header.length as usize;
                if reply.header.sequence_number == self.sequence {
                    match reply.payload {
                        NetlinkPayload::Error(error) => {
                            return match error.code {
                                Some(code) => Err(kernel(std::io::Error::from_raw_os_error(-code.get()))),
                                None => Ok(replies),
                            };
                        }
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::InnerMessage(inner) => {
                            replies.push(inner);
                            if !dump && flags & NLM_F_ACK == 0 {
                                return Ok(replies);
                            }
                        }
                        _ => {}
                    }
                }
                if length == 0 {
                    break;
                }
                offset += (length + 3) & !3;
            }
        }
    }

    /// The link called `name`, if there is one.
    pub fn link(&mut self, name: &str) -> Result<Option<LinkMessage>, NetlinkError> {
        let mut message = LinkMessage::default();
        message.attributes.push(LinkAttribute::IfName(name.to_owned()));
        match self.request(
            &format!("reading link {name}"),
            RouteNetlinkMessage::GetLink(message),
            0,
        ) {
            Ok(mut replies) => Ok(replies.pop().and_then(|reply| match reply {
                RouteNetlinkMessage::NewLink(link) => Some(link),
                _ => None,
            })),
            Err(err) if err.errno() == Some(nix::libc::ENODEV) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The index of the link called `name`, if there is one.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        Ok(self.link(name)?.map(|link| link.header.index))
    }

    /// Creates a bridge (with no address, down).
    pub fn add_bridge(&mut self, name: &str, mtu: u32) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        message.attributes.push(LinkAttribute::IfName(name.to_owned()));
        message.attributes.push(LinkAttribute::Mtu(mtu));
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Bridge),
            // No STP and no forwarding delay: ports forward as soon as they are up.
            LinkInfo::Data(InfoData::Bridge(vec![
                InfoBridge::ForwardDelay(0),
                InfoBridge::StpState(BridgeStpState::Disabled),
            ])),
        ]));
        self.create(&format!("creating bridge {name}"), message)
    }

    /// Creates a veth pair: `name` here and `peer` in the network namespace `peer_namespace`.
    pub fn add_veth(
        &mut self,
        name: &str,
        peer: &str,
        mtu: u32,
        peer_namespace: &std::fs::File,
    ) -> Result<(), NetlinkError> {
        let mut peer_message = LinkMessage::default();
        peer_message
            .attributes
            .push(LinkAttribute::IfName(peer.to_owned()));
        peer_message.attributes.push(LinkAttribute::Mtu(mtu));
        peer_message
            .attributes
            .push(LinkAttribute::NetNsFd(peer_namespace.as_raw_fd()));
        let mut message = LinkMessage::default();
        message.attributes.push(LinkAttribute::IfName(name.to_owned()));
        message.attributes.push(LinkAttribute::Mtu(mtu));
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_message))),
        ]));
        self.create(&format!("creating veth pair {name}/{peer}"), message)
    }

    /// Creates a VXLAN device (down): `vni`, UDP `port`, tunnels from `local`, no learning
    /// (peers come from the forwarding database netd writes), with the MAC address `mac`.
    pub fn add_vxlan(&mut self, device: &Vxlan) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(device.name.clone()));
        message.attributes.push(LinkAttribute::Mtu(device.mtu));
        message
            .attributes
            .push(LinkAttribute::Address(device.mac.to_vec()));
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(vec![
                InfoVxlan::Id(device.vni),
                InfoVxlan::Local(device.local),
                InfoVxlan::Port(device.port),
                InfoVxlan::Learning(false),
            ])),
        ]));
        self.create(&format!("creating VXLAN device {}", device.name), message)
    }

    /// The VXLAN device called `name` as configured: (index, VNI, local address, port, MAC).
    pub fn vxlan(&mut self, name: &str) -> Result<Option<(u32, Vxlan)>, NetlinkError> {
        let Some(link) = self.link(name)? else {
            return Ok(None);
        };
        let mut device = Vxlan {
            name: name.to_owned(),
            vni: 0,
            local: Ipv4Addr::UNSPECIFIED,
            port: 0,
            mac: [0; 6],
            mtu: 0,
        };
        for attribute in &link.attributes {
            match attribute {
                LinkAttribute::Mtu(mtu) => device.mtu = *mtu,
                LinkAttribute::Address(mac) => device.mac = mac.as_slice().try_into().unwrap_or([0; 6]),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Data(InfoData::Vxlan(settings)) = info {
                            for setting in settings {
                                match setting {
                                    InfoVxlan::Id(vni) => device.vni = *vni,
                                    InfoVxlan::Local(local) => device.local = *local,
                                    InfoVxlan::Port(port) => device.port = *port,
                                    _ => {}
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(Some((link.header.index, device)))
    }

    /// Sets a permanent neighbour (ARP) entry `ip` -> `mac` on a link.
    pub fn replace_neighbour(&mut self, index: u32, ip: Ipv4Addr, mac: [u8; 6]) -> Result<(), NetlinkError> {
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.ifindex = index;
        message.header.state = NeighbourState::Permanent;
        message
            .attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
        message
            .attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        self.request(
            &format!("setting neighbour {ip}"),
            RouteNetlinkMessage::NewNeighbour(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    /// Sets a permanent forwarding entry of a VXLAN link: frames for `mac` tunnel to
    /// `destination`.
    pub fn replace_fdb(
        &mut self,
        index: u32,
        mac: [u8; 6],
        destination: Ipv4Addr,
    ) -> Result<(), NetlinkError> {
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Bridge;
        message.header.ifindex = index;
        message.header.state = NeighbourState::Permanent;
        message.header.flags = NeighbourFlags::Own;
        message
            .attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        message
            .attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                destination,
            )));
        self.request(
            &format!("setting forwarding entry to {destination}"),
            RouteNetlinkMessage::NewNeighbour(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    /// The permanent entries of a link: (family is bridge, IP, MAC) for neighbours and
    /// forwarding entries alike.
    pub fn permanent_neighbours(&mut self, index: u32) -> Result<Vec<Neighbour>, NetlinkError> {
        let mut entries = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Bridge] {
            let mut message = NeighbourMessage::default();
            message.header.family = family;
            let replies = self.request(
                "listing neighbours",
                RouteNetlinkMessage::GetNeighbour(message),
                NLM_F_DUMP,
            )?;
            for reply in replies {
                let RouteNetlinkMessage::NewNeighbour(neighbour) = reply else {
                    continue;
                };
                if neighbour.header.ifindex != index || neighbour.header.state != NeighbourState::Permanent {
                    continue;
                }
                let mut entry = Neighbour {
                    forwarding: neighbour.header.family == AddressFamily::Bridge,
                    ip: None,
                    mac: None,
                };
                for attribute in &neighbour.attributes {
                    match attribute {
                        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => entry.ip = Some(*ip),
                        NeighbourAttribute::LinkLayerAddress(mac) => {
                            entry.mac = mac.as_slice().try_into().ok();
                        }
                        _ => {}
                    }
                }
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// Deletes a neighbour or forwarding entry of a link (one already gone is fine).
    pub fn delete_neighbour(&mut self, index: u32, entry: &Neighbour) -> Result<(), NetlinkError> {
        let mut message = NeighbourMessage::default();
        message.header.ifindex = index;
        message.header.state = NeighbourState::Permanent;
        if entry.forwarding {
            message.header.family = AddressFamily::Bridge;
            message.header.flags = NeighbourFlags::Own;
        } else {
            message.header.family = AddressFamily::Inet;
        }
        if let Some(mac) = entry.mac.filter(|_| entry.forwarding) {
            message
                .attributes
                .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        }
        if let Some(ip) = entry.ip {
            message
                .attributes
                .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
        }
        match self.request(
            "deleting a neighbour",
            RouteNetlinkMessage::DelNeighbour(message),
            NLM_F_ACK,
        ) {
            Err(err) if err.errno() == Some(nix::libc::ENOENT) => Ok(()),
            other => other.map(drop),
        }
    }

    fn create(&mut self, what: &str, message: LinkMessage) -> Result<(), NetlinkError> {
        self.request(
            what,
            RouteNetlinkMessage::NewLink(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Brings a link up, optionally attaching it to a bridge first.
    pub fn set_up(&mut self, index: u32, controller: Option<u32>) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
        if let Some(bridge) = controller {
            message.attributes.push(LinkAttribute::Controller(bridge));
        }
        self.request(
            &format!("setting link {index} up"),
            RouteNetlinkMessage::SetLink(message),
            NLM_F_ACK,
        )
        .map(drop)
    }

    pub fn delete_link(&mut self, index: u32) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        message.header.index = index;
        self.request(
            &format!("deleting link {index}"),
            RouteNetlinkMessage::DelLink(message),
            NLM_F_ACK,
        )
        .map(drop)
    }

    /// The IPv4 addresses of a link, with their prefix lengths.
    pub fn addresses(&mut self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>, NetlinkError> {
        Ok(self
            .all_addresses()?
            .into_iter()
            .filter(|(link, _, _)| *link == index)
            .map(|(_, ip, prefix)| (ip, prefix))
            .collect())
    }

    /// Every IPv4 address of the namespace: link index, address, prefix length.
    pub fn all_addresses(&mut self) -> Result<Vec<(u32, Ipv4Addr, u8)>, NetlinkError> {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        let replies = self.request(
            "listing addresses",
            RouteNetlinkMessage::GetAddress(message),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewAddress(address) => {
                    address.attributes.iter().find_map(|attribute| match attribute {
                        AddressAttribute::Local(IpAddr::V4(ip)) => {
                            Some((address.header.index, *ip, address.header.prefix_len))
                        }
                        _ => None,
                    })
                }
                _ => None,
            })
            .collect())
    }

    /// Adds an IPv4 address to a link unless it has it already.
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix: u8) -> Result<(), NetlinkError> {
        let mut message = AddressMessage::default();
        message.header.family = AddressFamily::Inet;
        message.header.prefix_len = prefix;
        message.header.index = index;
        message
            .attributes
            .push(AddressAttribute::Local(IpAddr::V4(address)));
        message
            .attributes
            .push(AddressAttribute::Address(IpAddr::V4(address)));
        match self.request(
            &format!("adding address {address}/{prefix}"),
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        ) {
            Err(err) if err.errno() == Some(nix::libc::EEXIST) => Ok(()),
            other => other.map(drop),
        }
    }

    fn route_message(route: &Route) -> RouteMessage {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.destination_prefix_length = route.prefix;
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.header.protocol = RouteProtocol::Other(ROUTE_PROTOCOL);
        message.header.kind = match route.kind {
            RouteKind::Unicast => RouteType::Unicast,
            RouteKind::Blackhole => RouteType::BlackHole,
        };
        message.header.scope = if route.kind == RouteKind::Unicast && route.gateway.is_none() {
            RouteScope::Link
        } else {
            RouteScope::Universe
        };
        if route.onlink {
            message.header.flags = netlink_packet_route::route::RouteFlags::Onlink;
        }
        if route.prefix > 0 {
            message
                .attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(route.destination)));
        }
        if let Some(gateway) = route.gateway {
            message
                .attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
        }
        if let Some(device) = route.device {
            message.attributes.push(RouteAttribute::Oif(device));
        }
        if let Some(source) = route.source {
            message
                .attributes
                .push(RouteAttribute::PrefSource(RouteAddress::Inet(source)));
        }
        message
    }

    /// Adds `route`, replacing a route to the same destination.
    pub fn replace_route(&mut self, route: &Route) -> Result<(), NetlinkError> {
        self.request(
            &format!("adding route {}/{}", route.destination, route.prefix),
            RouteNetlinkMessage::NewRoute(Self::route_message(route)),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    pub fn delete_route(&mut self, route: &Route) -> Result<(), NetlinkError> {
        match self.request(
            &format!("deleting route {}/{}", route.destination, route.prefix),
            RouteNetlinkMessage::DelRoute(Self::route_message(route)),
            NLM_F_ACK,
        ) {
            Err(err) if err.errno() == Some(nix::libc::ESRCH) => Ok(()),
            other => other.map(drop),
        }
    }

    /// The IPv4 routes of the main table that netd installed ([`ROUTE_PROTOCOL`]).
    pub fn own_routes(&mut self) -> Result<Vec<Route>, NetlinkError> {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        let replies = self.request(
            "listing routes",
            RouteNetlinkMessage::GetRoute(message),
            NLM_F_DUMP,
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewRoute(route)
                    if route.header.protocol == RouteProtocol::Other(ROUTE_PROTOCOL)
                        && route.header.table == RouteHeader::RT_TABLE_MAIN =>
                {
                    Some(parse_route(&route))
                }
                _ => None,
            })
            .collect())
    }
}

fn parse_route(message: &RouteMessage) -> Route {
    let mut route = Route {
        destination: Ipv4Addr::UNSPECIFIED,
        prefix: message.header.destination_prefix_length,
        gateway: None,
        device: None,
        source: None,
        kind: if message.header.kind == RouteType::BlackHole {
            RouteKind::Blackhole
        } else {
            RouteKind::Unicast
        },
        onlink: message
            .header
            .flags
            .contains(netlink_packet_route::route::RouteFlags::Onlink),
    };
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => route.destination = *ip,
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => route.gateway = Some(*ip),
            RouteAttribute::PrefSource(RouteAddress::Inet(ip)) => route.source = Some(*ip),
            RouteAttribute::Oif(index) => route.device = Some(*index),
            _ => {}
        }
    }
    route
}
