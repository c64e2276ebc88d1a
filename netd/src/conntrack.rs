//! Stale UDP flows of services, as kube-proxy's `CleanStaleEntries` removes them: after each
//! proxy sync, conntrack flows to a UDP service's IPs (cluster, external, load-balancer) or
//! node port whose replies do not come from one of its serving endpoints are deleted. UDP
//! flows never end while a client keeps sending, so without this a client stays pinned to an
//! endpoint that is gone, or to the reject of a service that had none.
//!
//! It speaks ctnetlink (`NETLINK_NETFILTER`) directly: a dump of the IPv4 table and a delete
//! per stale flow. Calls block; which flows are stale is the pure [`stale`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;

use netlink_sys::protocols::NETLINK_NETFILTER;
use netlink_sys::{Socket, SocketAddr};

use crate::proxy::model::{Protocol, ServicePort};

const IPPROTO_UDP: u8 = 17;
const AF_INET: u8 = 2;

// netlink and ctnetlink message types and attributes (linux/netfilter/nfnetlink_conntrack.h).
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_ZONE: u16 = 18;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Why talking to conntrack failed.
#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    #[error("conntrack netlink socket: {0}")]
    Socket(#[source] std::io::Error),
    #[error("{what}: {source}")]
    Kernel {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// One direction of a flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tuple {
    pub source: Option<Ipv4Addr>,
    pub destination: Option<Ipv4Addr>,
    pub protocol: u8,
    pub source_port: u16,
    pub destination_port: u16,
}

/// A conntrack flow: how it was first seen and how its replies look (after NAT).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flow {
    pub original: Tuple,
    pub reply: Tuple,
    pub zone: u16,
}

/// The UDP flows of `flows` to `ports`' service IPs or node ports answered by none of the
/// port's serving endpoints (a service IP's endpoints are those of all its UDP ports).
pub fn stale<'a>(flows: &'a [Flow], ports: &[ServicePort]) -> Vec<&'a Flow> {
    let mut by_ip: BTreeMap<Ipv4Addr, BTreeSet<Ipv4Addr>> = BTreeMap::new();
    let mut by_node_port: BTreeMap<u16, BTreeSet<Ipv4Addr>> = BTreeMap::new();
    for port in ports.iter().filter(|p| p.key.protocol == Protocol::Udp) {
        let serving = port.serving.iter().copied();
        for ip in std::iter::once(port.cluster_ip).chain(port.external_ips.iter().copied()) {
            by_ip.entry(ip).or_default().extend(serving.clone());
        }
        if let Some(node_port) = port.node_port {
            by_node_port.entry(node_port).or_default().extend(serving);
        }
    }
    flows
        .iter()
        .filter(|flow| flow.original.protocol == IPPROTO_UDP)
        .filter(|flow| {
            let Some(reply_source) = flow.reply.source else {
                return false;
            };
            let to_service_ip = flow
                .original
                .destination
                .and_then(|ip| by_ip.get(&ip))
                .is_some_and(|serving| !serving.contains(&reply_source));
            let to_node_port = by_node_port
                .get(&flow.original.destination_port)
                .is_some_and(|serving| !serving.contains(&reply_source));
            to_service_ip || to_node_port
        })
        .collect()
}

/// Deletes the stale UDP flows of `ports` (see [`stale`]) from the calling thread's network
/// namespace; returns how many went.
pub fn clean_stale(ports: &[ServicePort]) -> Result<usize, ConntrackError> {
    if !ports.iter().any(|p| p.key.protocol == Protocol::Udp) {
        return Ok(0);
    }
    let mut conntrack = Conntrack::open()?;
    let flows = conntrack.udp_flows()?;
    let doomed = stale(&flows, ports);
    for flow in &doomed {
        conntrack.delete(flow)?;
    }
    Ok(doomed.len())
}

/// A ctnetlink socket in the network namespace it was opened in.
pub struct Conntrack {
    socket: Socket,
    sequence: u32,
}

impl std::fmt::Debug for Conntrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conntrack")
            .field("fd", &self.socket.as_raw_fd())
            .finish()
    }
}

impl Conntrack {
    pub fn open() -> Result<Self, ConntrackError> {
        let mut socket = Socket::new(NETLINK_NETFILTER).map_err(ConntrackError::Socket)?;
        socket.bind_auto().map_err(ConntrackError::Socket)?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(ConntrackError::Socket)?;
        Ok(Self { socket, sequence: 0 })
    }

    /// The IPv4 UDP flows.
    pub fn udp_flows(&mut self) -> Result<Vec<Flow>, ConntrackError> {
        let what = "listing conntrack flows";
        let mut flows = Vec::new();
        self.request(what, IPCTNL_MSG_CT_GET, NLM_F_DUMP, &[], |payload| {
            if let Some(flow) = parse_flow(payload)
                && flow.original.protocol == IPPROTO_UDP
            {
                flows.push(flow);
            }
        })?;
        Ok(flows)
    }

    /// Deletes `flow` (one already gone is fine).
    pub fn delete(&mut self, flow: &Flow) -> Result<(), ConntrackError> {
        let mut attributes = Vec::new();
        push_tuple(&mut attributes, CTA_TUPLE_ORIG, &flow.original);
        if flow.zone != 0 {
            push_attribute(&mut attributes, CTA_ZONE, &flow.zone.to_be_bytes());
        }
        match self.request(
            "deleting a conntrack flow",
            IPCTNL_MSG_CT_DELETE,
            NLM_F_ACK,
            &attributes,
            |_| {},
        ) {
            Err(ConntrackError::Kernel { source, .. })
                if source.raw_os_error() == Some(nix::libc::ENOENT) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Sends one ctnetlink request and hands each reply message's payload (after the
    /// nfgenmsg header) to `each`, until the acknowledgement or the end of the dump.
    fn request(
        &mut self,
        what: &'static str,
        kind: u16,
        flags: u16,
        attributes: &[u8],
        mut each: impl FnMut(&[u8]),
    ) -> Result<(), ConntrackError> {
        self.sequence = self.sequence.wrapping_add(1);
        let length = 16 + 4 + attributes.len();
        let mut message = Vec::with_capacity(length);
        message.extend_from_slice(&u32::try_from(length).unwrap_or(u32::MAX).to_ne_bytes());
        message.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | kind).to_ne_bytes());
        message.extend_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        message.extend_from_slice(&self.sequence.to_ne_bytes());
        message.extend_from_slice(&0u32.to_ne_bytes());
        // nfgenmsg: family, version 0, resource id 0 (big-endian).
        message.extend_from_slice(&[AF_INET, 0, 0, 0]);
        message.extend_from_slice(attributes);
        let kernel = |source| ConntrackError::Kernel { what, source };
        self.socket.send(&message, 0).map_err(kernel)?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let size = self.socket.recv(&mut &mut buffer[..], 0).map_err(kernel)?;
            let mut rest = &buffer[..size];
            while rest.len() >= 16 {
                let length = read_u32(rest, 0) as usize;
                let kind = read_u16(rest, 4);
                let message_flags = read_u16(rest, 6);
                let sequence = read_u32(rest, 8);
                if length < 16 || length > rest.len() {
                    break;
                }
                let body = &rest[16..length];
                rest = &rest[align(length).min(rest.len())..];
                if sequence != self.sequence {
                    continue;
                }
                match kind {
                    NLMSG_ERROR => {
                        let code = body
                            .get(..4)
                            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        return if code == 0 {
                            Ok(())
                        } else {
                            Err(kernel(std::io::Error::from_raw_os_error(-code)))
                        };
                    }
                    NLMSG_DONE => return Ok(()),
                    _ => {
                        if let Some(payload) = body.get(4..) {
                            each(payload);
                        }
                        if !dump && message_flags & NLM_F_MULTI == 0 && flags & NLM_F_ACK == 0 {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

fn align(length: usize) -> usize {
    (length + 3) & !3
}

fn read_u16(bytes: &[u8], at: usize) -> u16 {
    bytes
        .get(at..at + 2)
        .map_or(0, |b| u16::from_ne_bytes([b[0], b[1]]))
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// The attributes of a netlink attribute stream: (type without flags, payload).
fn attributes(mut bytes: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if bytes.len() < 4 {
            return None;
        }
        let length = usize::from(read_u16(bytes, 0));
        let kind = read_u16(bytes, 2) & NLA_TYPE_MASK;
        if length < 4 || length > bytes.len() {
            return None;
        }
        let payload = &bytes[4..length];
        bytes = &bytes[align(length).min(bytes.len())..];
        Some((kind, payload))
    })
}

fn push_attribute(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let length = 4 + payload.len();
    out.extend_from_slice(&u16::try_from(length).unwrap_or(u16::MAX).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(align(out.len()), 0);
}

fn push_tuple(out: &mut Vec<u8>, kind: u16, tuple: &Tuple) {
    let mut ip = Vec::new();
    if let Some(source) = tuple.source {
        push_attribute(&mut ip, CTA_IP_V4_SRC, &source.octets());
    }
    if let Some(destination) = tuple.destination {
        push_attribute(&mut ip, CTA_IP_V4_DST, &destination.octets());
    }
    let mut proto = Vec::new();
    push_attribute(&mut proto, CTA_PROTO_NUM, &[tuple.protocol]);
    push_attribute(&mut proto, CTA_PROTO_SRC_PORT, &tuple.source_port.to_be_bytes());
    push_attribute(
        &mut proto,
        CTA_PROTO_DST_PORT,
        &tuple.destination_port.to_be_bytes(),
    );
    let mut nested = Vec::new();
    push_attribute(&mut nested, CTA_TUPLE_IP | NLA_F_NESTED, &ip);
    push_attribute(&mut nested, CTA_TUPLE_PROTO | NLA_F_NESTED, &proto);
    push_attribute(out, kind | NLA_F_NESTED, &nested);
}

fn parse_tuple(bytes: &[u8]) -> Tuple {
    let mut tuple = Tuple::default();
    let ipv4 = |b: &[u8]| <[u8; 4]>::try_from(b).ok().map(Ipv4Addr::from);
    let port = |b: &[u8]| <[u8; 2]>::try_from(b).map_or(0, u16::from_be_bytes);
    for (kind, payload) in attributes(bytes) {
        match kind {
            CTA_TUPLE_IP => {
                for (kind, payload) in attributes(payload) {
                    match kind {
                        CTA_IP_V4_SRC => tuple.source = ipv4(payload),
                        CTA_IP_V4_DST => tuple.destination = ipv4(payload),
                        _ => {}
                    }
                }
            }
            CTA_TUPLE_PROTO => {
                for (kind, payload) in attributes(payload) {
                    match kind {
                        CTA_PROTO_NUM => tuple.protocol = payload.first().copied().unwrap_or(0),
                        CTA_PROTO_SRC_PORT => tuple.source_port = port(payload),
                        CTA_PROTO_DST_PORT => tuple.destination_port = port(payload),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    tuple
}

/// A flow from a ctnetlink message's attributes.
fn parse_flow(bytes: &[u8]) -> Option<Flow> {
    let mut flow = Flow::default();
    let mut seen = false;
    for (kind, payload) in attributes(bytes) {
        match kind {
            CTA_TUPLE_ORIG => {
                flow.original = parse_tuple(payload);
                seen = true;
            }
            CTA_TUPLE_REPLY => flow.reply = parse_tuple(payload),
            CTA_ZONE => flow.zone = <[u8; 2]>::try_from(payload).map_or(0, u16::from_be_bytes),
            _ => {}
        }
    }
    seen.then_some(flow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::model::PortKey;

    fn udp_port(cluster_ip: [u8; 4], serving: &[[u8; 4]], node_port: Option<u16>) -> ServicePort {
        ServicePort {
            key: PortKey {
                namespace: "ns".into(),
                name: "dns".into(),
                port_name: String::new(),
                protocol: Protocol::Udp,
            },
            cluster_ip: cluster_ip.into(),
            port: 53,
            node_port,
            external_ips: vec![Ipv4Addr::new(192, 0, 2, 7)],
            affinity_timeout: None,
            cluster: Vec::new(),
            local: Vec::new(),
            serving: serving.iter().map(|ip| Ipv4Addr::from(*ip)).collect(),
            internal_local: false,
            external_local: false,
        }
    }

    fn flow(protocol: u8, destination: [u8; 4], destination_port: u16, reply_source: [u8; 4]) -> Flow {
        Flow {
            original: Tuple {
                source: Some(Ipv4Addr::new(10, 244, 0, 9)),
                destination: Some(destination.into()),
                protocol,
                source_port: 40000,
                destination_port,
            },
            reply: Tuple {
                source: Some(reply_source.into()),
                destination: Some(Ipv4Addr::new(10, 244, 0, 9)),
                protocol,
                source_port: destination_port,
                destination_port: 40000,
            },
            zone: 0,
        }
    }

    #[test]
    fn flows_not_answered_by_a_serving_endpoint_are_stale() {
        let ports = [udp_port([10, 96, 0, 10], &[[10, 244, 0, 2]], Some(30053))];
        let flows = [
            // Answered by the serving endpoint: kept.
            flow(IPPROTO_UDP, [10, 96, 0, 10], 53, [10, 244, 0, 2]),
            // Answered by a removed endpoint: stale.
            flow(IPPROTO_UDP, [10, 96, 0, 10], 53, [10, 244, 0, 3]),
            // Never translated (created while the service had no endpoints): stale.
            flow(IPPROTO_UDP, [10, 96, 0, 10], 53, [10, 96, 0, 10]),
            // To an external IP, answered by a removed endpoint: stale.
            flow(IPPROTO_UDP, [192, 0, 2, 7], 53, [10, 244, 0, 3]),
            // To the node port on a node address, by a removed endpoint: stale.
            flow(IPPROTO_UDP, [192, 168, 1, 5], 30053, [10, 244, 0, 3]),
            // TCP and other destinations are left alone.
            flow(6, [10, 96, 0, 10], 53, [10, 244, 0, 3]),
            flow(IPPROTO_UDP, [10, 96, 0, 99], 53, [10, 244, 0, 3]),
        ];
        let doomed: Vec<usize> = stale(&flows, &ports)
            .into_iter()
            .map(|f| flows.iter().position(|g| std::ptr::eq(f, g)).unwrap())
            .collect();
        assert_eq!(doomed, [1, 2, 3, 4]);
    }

    #[test]
    fn tuples_survive_encoding_and_parsing() {
        let original = flow(IPPROTO_UDP, [10, 96, 0, 10], 53, [10, 244, 0, 2]);
        let mut message = Vec::new();
        push_tuple(&mut message, CTA_TUPLE_ORIG, &original.original);
        push_tuple(&mut message, CTA_TUPLE_REPLY, &original.reply);
        push_attribute(&mut message, CTA_ZONE, &7u16.to_be_bytes());
        let parsed = parse_flow(&message).unwrap();
        assert_eq!(parsed.original, original.original);
        assert_eq!(parsed.reply, original.reply);
        assert_eq!(parsed.zone, 7);
        assert!(parse_flow(&[1, 2]).is_none(), "a truncated message is no flow");
    }
}
