//! The service proxy's nftables program, modelled on kube-proxy's nftables mode: verdict
//! maps from (address, protocol, port) to one chain per service port, a random pick among
//! endpoint chains that DNAT, masquerade marks for traffic that must come back through this
//! node, rejects for services without endpoints, and ClientIP affinity through dynamic sets.
//!
//! Pure: [`program`] turns service ports into the table's variable part, [`full_sync`] and
//! [`partial_sync`] into transactions. Running `nft` is the caller's business.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use nftables::expr::{
    BinaryOperation, Expression, Fib, FibFlag, FibResult, MetaKey, NamedExpression, NgMode, Numgen, SetItem,
    Verdict,
};
use nftables::schema::{FlushObject, NfCmd, NfListObject, Set, SetFlag, SetType, SetTypeValue};
use nftables::stmt::{self, JumpTarget, Mangle, NAT, NATFamily, NATFlag, SetOp, Statement, VerdictMap};
use nftables::types::{NfChainType, NfFamily, NfHook};
use serde_json::{Value, json};

use super::model::{Endpoint, HostPort, PortKey, ServicePort};
use crate::cidr::Ipv4Cidr;
use crate::nft::{self, Transaction};

/// The service proxy's table.
pub const TABLE: &str = "rudder-proxy";
/// The packet mark bit that asks for masquerading on the way out.
const MASQUERADE_MARK: u32 = 0x4000;

const SERVICE_IPS: &str = "service-ips";
const SERVICE_NODEPORTS: &str = "service-nodeports";
const HOST_PORTS: &str = "host-ports";
const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
const CLUSTER_IPS: &str = "cluster-ips";
const NODEPORT_IPS: &str = "nodeport-ips";
const MARK_FOR_MASQUERADE: &str = "mark-for-masquerade";
const REJECT_CHAIN: &str = "reject-chain";

/// What the program depends on besides services.
#[derive(Clone, Debug)]
pub struct Network {
    pub cluster_cidr: Ipv4Cidr,
    pub service_cidr: Ipv4Cidr,
}

/// One element of a set or map: its key (what deletes it) and the whole element.
#[derive(Clone, Debug, PartialEq)]
struct ElementValue {
    key: Value,
    element: Value,
}

/// Chains, map and set elements and affinity sets: what one service port (or the node) adds
/// to the table.
#[derive(Clone, Debug, Default, PartialEq)]
struct Fragment {
    chains: BTreeMap<String, Vec<Vec<Statement<'static>>>>,
    elements: BTreeMap<(&'static str, String), ElementValue>,
    /// Affinity set name -> timeout in seconds.
    affinity_sets: BTreeMap<String, u32>,
}

/// The variable part of the table: the node's set elements, a fragment per service port
/// (kept with the port it was made from, so that a sync rebuilds and compares only the
/// fragments of ports that changed), and the pods' host ports.
#[derive(Clone, Debug, Default)]
pub struct Programmed {
    global: Fragment,
    ports: BTreeMap<PortKey, (ServicePort, Arc<Fragment>)>,
    host_ports: Fragment,
}

impl Programmed {
    fn fragments(&self) -> impl Iterator<Item = &Fragment> {
        std::iter::once(&self.global)
            .chain(self.ports.values().map(|(_, fragment)| fragment.as_ref()))
            .chain(std::iter::once(&self.host_ports))
    }

    pub fn chain_count(&self) -> usize {
        self.fragments().map(|f| f.chains.len()).sum()
    }

    pub fn element_count(&self) -> usize {
        self.fragments().map(|f| f.elements.len()).sum()
    }
}

fn service_chain(key: &PortKey) -> String {
    format!("service-{key}")
}

fn local_chain(key: &PortKey) -> String {
    format!("local-{key}")
}

fn external_chain(key: &PortKey) -> String {
    format!("external-{key}")
}

fn endpoint_chain(key: &PortKey, endpoint: &Endpoint) -> String {
    format!("endpoint-{key}__{}/{}", endpoint.ip, endpoint.port)
}

fn affinity_set(key: &PortKey, endpoint: &Endpoint, timeout: u32) -> String {
    format!("affinity-{key}__{}/{}-{timeout}", endpoint.ip, endpoint.port)
}

fn text(value: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(value.into()))
}

fn set_ref(name: &str) -> Expression<'static> {
    text(format!("@{name}"))
}

fn jump(target: &str) -> Statement<'static> {
    Statement::Jump(JumpTarget {
        target: Cow::Owned(target.to_owned()),
    })
}

fn goto(target: &str) -> Statement<'static> {
    Statement::Goto(JumpTarget {
        target: Cow::Owned(target.to_owned()),
    })
}

fn goto_verdict(target: &str) -> Expression<'static> {
    Expression::Verdict(Verdict::Goto(JumpTarget {
        target: Cow::Owned(target.to_owned()),
    }))
}

fn meta_mark() -> Expression<'static> {
    nft::meta(MetaKey::Mark)
}

fn fib_saddr_local() -> Statement<'static> {
    nft::equals(
        Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags: HashSet::from([FibFlag::Saddr]),
        })),
        text("local"),
    )
}

fn address_port_protocol() -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(vec![
        nft::payload("ip", "daddr"),
        nft::meta(MetaKey::L4proto),
        nft::payload("th", "dport"),
    ]))
}

fn protocol_port() -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(vec![
        nft::meta(MetaKey::L4proto),
        nft::payload("th", "dport"),
    ]))
}

fn vmap(key: Expression<'static>, map: &str) -> Statement<'static> {
    Statement::VerdictMap(VerdictMap {
        key,
        data: set_ref(map),
    })
}

/// `numgen random mod N vmap { 0 : goto A, 1 : goto B, ... }`.
fn pick_one(chains: &[String]) -> Statement<'static> {
    let count = u32::try_from(chains.len()).unwrap_or(u32::MAX);
    Statement::VerdictMap(VerdictMap {
        key: Expression::Named(NamedExpression::Numgen(Numgen {
            mode: NgMode::Random,
            ng_mod: count,
            offset: None,
        })),
        data: Expression::Named(NamedExpression::Set(
            chains
                .iter()
                .zip(0u32..)
                .map(|(chain, index)| SetItem::Mapping(Expression::Number(index), goto_verdict(chain)))
                .collect(),
        )),
    })
}

impl Fragment {
    fn map_element(
        &mut self,
        map: &'static str,
        key: Vec<Expression<'static>>,
        verdict: Expression<'static>,
    ) {
        let key = Expression::Named(NamedExpression::Concat(key));
        let key_json = serde_json::to_value(&key).unwrap_or(Value::Null);
        let element = serde_json::to_value(Expression::List(vec![key, verdict])).unwrap_or(Value::Null);
        self.elements.insert(
            (map, key_json.to_string()),
            ElementValue {
                key: key_json,
                element,
            },
        );
    }

    fn set_element(&mut self, set: &'static str, address: Ipv4Addr) {
        let value = Value::String(address.to_string());
        self.elements.insert(
            (set, address.to_string()),
            ElementValue {
                key: value.clone(),
                element: value,
            },
        );
    }

    /// The chain picking one of `endpoints` (with affinity), and the endpoint chains.
    fn policy_chain(
        &mut self,
        name: String,
        port: &ServicePort,
        endpoints: &[Endpoint],
        head: Vec<Vec<Statement<'static>>>,
    ) {
        let mut rules = head;
        let mut targets = Vec::new();
        for endpoint in endpoints {
            let chain = endpoint_chain(&port.key, endpoint);
            if let Some(timeout) = port.affinity_timeout {
                let set = affinity_set(&port.key, endpoint, timeout);
                rules.push(vec![
                    nft::equals(nft::payload("ip", "saddr"), set_ref(&set)),
                    goto(&chain),
                ]);
                self.affinity_sets.insert(set, timeout);
            }
            self.endpoint(port, endpoint);
            targets.push(chain);
        }
        if !targets.is_empty() {
            rules.push(vec![pick_one(&targets)]);
        }
        self.chains.insert(name, rules);
    }

    fn endpoint(&mut self, port: &ServicePort, endpoint: &Endpoint) {
        let name = endpoint_chain(&port.key, endpoint);
        if self.chains.contains_key(&name) {
            return;
        }
        let mut rules = vec![vec![
            // Hairpin: a pod reaching itself through its service must see the reply come
            // back through the node.
            nft::equals(nft::payload("ip", "saddr"), text(endpoint.ip.to_string())),
            jump(MARK_FOR_MASQUERADE),
        ]];
        if let Some(timeout) = port.affinity_timeout {
            rules.push(vec![Statement::Set(stmt::Set {
                op: SetOp::Update,
                elem: nft::payload("ip", "saddr"),
                set: Cow::Owned(format!("@{}", affinity_set(&port.key, endpoint, timeout))),
            })]);
        }
        rules.push(vec![
            nft::equals(nft::meta(MetaKey::L4proto), text(port.key.protocol.as_str())),
            Statement::DNAT(Some(NAT {
                addr: Some(text(endpoint.ip.to_string())),
                family: Some(NATFamily::IP),
                port: Some(Expression::Number(u32::from(endpoint.port))),
                flags: None,
            })),
        ]);
        self.chains.insert(name, rules);
    }
}

/// The table's variable part for `ports`, with node ports on `node_ips`.
pub fn program(ports: &[ServicePort], node_ips: &[Ipv4Addr], network: &Network) -> Programmed {
    program_reusing(None, ports, node_ips, network)
}

/// [`program`], reusing the fragments of `previous` (made with the same `network`) for
/// ports that did not change.
pub fn program_reusing(
    previous: Option<&Programmed>,
    ports: &[ServicePort],
    node_ips: &[Ipv4Addr],
    network: &Network,
) -> Programmed {
    let mut programmed = Programmed::default();
    for address in node_ips {
        programmed.global.set_element(NODEPORT_IPS, *address);
    }
    for port in ports {
        programmed.global.set_element(CLUSTER_IPS, port.cluster_ip);
        let fragment = match previous.and_then(|p| p.ports.get(&port.key)) {
            Some((made_from, fragment)) if made_from == port => fragment.clone(),
            _ => Arc::new(port_fragment(port, network)),
        };
        programmed
            .ports
            .insert(port.key.clone(), (port.clone(), fragment));
    }
    programmed
}

/// What one service port adds to the table.
fn port_fragment(port: &ServicePort, network: &Network) -> Fragment {
    let mut programmed = Fragment::default();
    {
        let protocol = || text(port.key.protocol.as_str());
        let number = Expression::Number(u32::from(port.port));
        let external_in_use = port.has_external() && !port.external().is_empty();
        // The chain over every endpoint (traffic policy Cluster, and pods' and the node's own
        // traffic to external addresses of a policy Local service) and the one over this
        // node's endpoints (policies Local).
        let cluster = service_chain(&port.key);
        let local = local_chain(&port.key);
        // Traffic to the cluster IP from outside the cluster network (the node itself, other
        // machines) must come back through this node.
        let masquerade_outsiders = vec![
            nft::equals(nft::payload("ip", "daddr"), text(port.cluster_ip.to_string())),
            nft::equals(nft::payload(port.key.protocol.as_str(), "dport"), number.clone()),
            nft::differs(nft::payload("ip", "saddr"), nft::cidr(network.cluster_cidr)),
            jump(MARK_FOR_MASQUERADE),
        ];
        let internal_chain = if port.internal_local { &local } else { &cluster };
        let uses_cluster = (!port.internal_local && !port.cluster.is_empty()) || external_in_use;
        let uses_local =
            (port.internal_local && !port.local.is_empty()) || (port.external_local && external_in_use);
        let head = |chain: &String| {
            if chain == internal_chain && !port.internal().is_empty() {
                vec![masquerade_outsiders.clone()]
            } else {
                Vec::new()
            }
        };
        if uses_cluster {
            programmed.policy_chain(cluster.clone(), port, &port.cluster, head(&cluster));
        }
        if uses_local {
            programmed.policy_chain(local.clone(), port, &port.local, head(&local));
        }
        let cluster_ip_key = vec![text(port.cluster_ip.to_string()), protocol(), number.clone()];
        if port.internal().is_empty() {
            programmed.map_element(NO_ENDPOINT_SERVICES, cluster_ip_key, goto_verdict(REJECT_CHAIN));
        } else {
            programmed.map_element(SERVICE_IPS, cluster_ip_key, goto_verdict(internal_chain));
        }
        if !port.has_external() {
            return programmed;
        }
        let external_keys: Vec<(&'static str, &'static str, Vec<Expression<'static>>)> = port
            .node_port
            .map(|node_port| {
                (
                    SERVICE_NODEPORTS,
                    NO_ENDPOINT_NODEPORTS,
                    vec![protocol(), Expression::Number(u32::from(node_port))],
                )
            })
            .into_iter()
            .chain(port.external_ips.iter().map(|ip| {
                (
                    SERVICE_IPS,
                    NO_ENDPOINT_SERVICES,
                    vec![text(ip.to_string()), protocol(), number.clone()],
                )
            }))
            .collect();
        if !external_in_use {
            // No endpoints at all: refused; endpoints elsewhere only (policy Local): dropped.
            let verdict = if port.cluster.is_empty() {
                goto_verdict(REJECT_CHAIN)
            } else {
                Expression::Verdict(Verdict::Drop)
            };
            for (_, no_endpoints, key) in external_keys {
                programmed.map_element(no_endpoints, key, verdict.clone());
            }
            return programmed;
        }
        let external = external_chain(&port.key);
        let rules = if port.external_local {
            // Pods and the node itself use every endpoint; others keep their source address
            // and reach this node's endpoints only.
            vec![
                vec![
                    nft::equals(nft::payload("ip", "saddr"), nft::cidr(network.cluster_cidr)),
                    goto(&cluster),
                ],
                vec![fib_saddr_local(), jump(MARK_FOR_MASQUERADE)],
                vec![fib_saddr_local(), goto(&cluster)],
                vec![goto(&local)],
            ]
        } else {
            vec![vec![jump(MARK_FOR_MASQUERADE)], vec![goto(&cluster)]]
        };
        programmed.chains.insert(external.clone(), rules);
        for (map, _, key) in external_keys {
            programmed.map_element(map, key, goto_verdict(&external));
        }
    }
    programmed
}

/// Adds pods' host ports: traffic to a node address (or the port's `hostIP`) on the port
/// goes to the pod, masqueraded only when the pod reaches itself.
pub fn program_host_ports(programmed: &mut Programmed, host_ports: &[HostPort], node_ips: &[Ipv4Addr]) {
    let programmed = &mut programmed.host_ports;
    *programmed = Fragment::default();
    for port in host_ports {
        let chain = format!(
            "hostport-{}/{}/{}",
            port.protocol.as_str(),
            port.host_port,
            port.host_ip.map_or_else(|| "any".to_owned(), |ip| ip.to_string())
        );
        let addresses: Vec<Ipv4Addr> = match port.host_ip {
            Some(ip) => vec![ip],
            None => node_ips.to_vec(),
        };
        for address in addresses {
            programmed.map_element(
                HOST_PORTS,
                vec![
                    text(address.to_string()),
                    text(port.protocol.as_str()),
                    Expression::Number(u32::from(port.host_port)),
                ],
                goto_verdict(&chain),
            );
        }
        programmed.chains.insert(
            chain,
            vec![
                vec![
                    nft::equals(nft::payload("ip", "saddr"), text(port.pod_ip.to_string())),
                    jump(MARK_FOR_MASQUERADE),
                ],
                vec![
                    nft::equals(nft::meta(MetaKey::L4proto), text(port.protocol.as_str())),
                    Statement::DNAT(Some(NAT {
                        addr: Some(text(port.pod_ip.to_string())),
                        family: Some(NATFamily::IP),
                        port: Some(Expression::Number(u32::from(port.container_port))),
                        flags: None,
                    })),
                ],
            ],
        );
    }
}

fn map_declaration(name: &str, key: &[&str]) -> Value {
    let key: Value = if key.len() == 1 { json!(key[0]) } else { json!(key) };
    json!({"add": {"map": {
        "family": "ip", "table": TABLE, "name": name, "type": key, "map": "verdict"
    }}})
}

fn set_declaration(name: &str) -> Set<'static> {
    Set {
        family: NfFamily::IP,
        table: Cow::Borrowed(TABLE),
        name: Cow::Owned(name.to_owned()),
        set_type: SetTypeValue::Single(SetType::Ipv4Addr),
        ..Set::default()
    }
}

fn affinity_declaration(name: &str, timeout: u32) -> Set<'static> {
    Set {
        flags: Some(HashSet::from([SetFlag::Timeout])),
        timeout: Some(timeout),
        ..set_declaration(name)
    }
}

fn element(name: &'static str, value: &Value) -> Value {
    json!({"element": {"family": "ip", "table": TABLE, "name": name, "elem": [value]}})
}

/// A base chain: name, type, hook, priority, rules.
type HookedChain = (
    &'static str,
    NfChainType,
    NfHook,
    i32,
    Vec<Vec<Statement<'static>>>,
);

/// The table whole: its fixed chains, maps and sets, then `programmed`.
pub fn full_sync(programmed: &Programmed, network: &Network) -> Transaction {
    let mut tx = Transaction::new();
    nft::replace_table(&mut tx, TABLE);
    for (name, key) in [
        (SERVICE_IPS, &["ipv4_addr", "inet_proto", "inet_service"][..]),
        (
            NO_ENDPOINT_SERVICES,
            &["ipv4_addr", "inet_proto", "inet_service"][..],
        ),
        (SERVICE_NODEPORTS, &["inet_proto", "inet_service"][..]),
        (HOST_PORTS, &["ipv4_addr", "inet_proto", "inet_service"][..]),
        (NO_ENDPOINT_NODEPORTS, &["inet_proto", "inet_service"][..]),
    ] {
        tx.raw(map_declaration(name, key));
    }
    for name in [CLUSTER_IPS, NODEPORT_IPS] {
        tx.add(NfListObject::Set(Box::new(set_declaration(name))));
    }
    let hooked: [HookedChain; 7] = [
        (
            "filter-forward",
            NfChainType::Filter,
            NfHook::Forward,
            -110,
            vec![
                vec![nft::ct_state(&["new"]), jump("service-endpoints-check")],
                vec![nft::ct_state(&["new"]), jump("cluster-ips-check")],
            ],
        ),
        (
            "filter-input",
            NfChainType::Filter,
            NfHook::Input,
            -110,
            vec![
                vec![nft::ct_state(&["new"]), jump("nodeport-endpoints-check")],
                vec![nft::ct_state(&["new"]), jump("service-endpoints-check")],
            ],
        ),
        (
            "filter-output",
            NfChainType::Filter,
            NfHook::Output,
            -110,
            vec![vec![nft::ct_state(&["new"]), jump("service-endpoints-check")]],
        ),
        (
            "filter-output-post-dnat",
            NfChainType::Filter,
            NfHook::Output,
            -90,
            vec![vec![nft::ct_state(&["new"]), jump("cluster-ips-check")]],
        ),
        (
            "nat-prerouting",
            NfChainType::NAT,
            NfHook::Prerouting,
            -100,
            vec![vec![jump("services")]],
        ),
        (
            "nat-output",
            NfChainType::NAT,
            NfHook::Output,
            -100,
            vec![vec![jump("services")]],
        ),
        (
            "nat-postrouting",
            NfChainType::NAT,
            NfHook::Postrouting,
            100,
            vec![vec![jump("masquerading")]],
        ),
    ];
    let regular: Vec<(&str, Vec<Vec<Statement<'static>>>)> = vec![
        (
            "nodeport-endpoints-check",
            vec![vec![
                nft::equals(nft::payload("ip", "daddr"), set_ref(NODEPORT_IPS)),
                vmap(protocol_port(), NO_ENDPOINT_NODEPORTS),
            ]],
        ),
        (
            "service-endpoints-check",
            vec![vec![vmap(address_port_protocol(), NO_ENDPOINT_SERVICES)]],
        ),
        (
            "cluster-ips-check",
            vec![
                // A cluster IP on a port no service has: refused; an address of the service
                // range no service has: dropped.
                vec![
                    nft::equals(nft::payload("ip", "daddr"), set_ref(CLUSTER_IPS)),
                    Statement::Reject(None),
                ],
                vec![
                    nft::equals(nft::payload("ip", "daddr"), nft::cidr(network.service_cidr)),
                    Statement::Drop(None),
                ],
            ],
        ),
        (
            "masquerading",
            vec![
                vec![
                    nft::equals(
                        Expression::BinaryOperation(Box::new(BinaryOperation::AND(
                            meta_mark(),
                            Expression::Number(MASQUERADE_MARK),
                        ))),
                        Expression::Number(0),
                    ),
                    Statement::Return(None),
                ],
                vec![Statement::Mangle(Mangle {
                    key: meta_mark(),
                    value: Expression::BinaryOperation(Box::new(BinaryOperation::XOR(
                        meta_mark(),
                        Expression::Number(MASQUERADE_MARK),
                    ))),
                })],
                vec![Statement::Masquerade(Some(NAT {
                    addr: None,
                    family: None,
                    port: None,
                    flags: Some(HashSet::from([NATFlag::FullyRandom])),
                }))],
            ],
        ),
        (
            "services",
            vec![
                vec![vmap(address_port_protocol(), HOST_PORTS)],
                vec![vmap(address_port_protocol(), SERVICE_IPS)],
                vec![
                    nft::equals(nft::payload("ip", "daddr"), set_ref(NODEPORT_IPS)),
                    vmap(protocol_port(), SERVICE_NODEPORTS),
                ],
            ],
        ),
        (
            MARK_FOR_MASQUERADE,
            vec![vec![Statement::Mangle(Mangle {
                key: meta_mark(),
                value: Expression::BinaryOperation(Box::new(BinaryOperation::OR(vec![
                    meta_mark(),
                    Expression::Number(MASQUERADE_MARK),
                ]))),
            })]],
        ),
        (REJECT_CHAIN, vec![vec![Statement::Reject(None)]]),
    ];
    for (name, kind, hook, priority, _) in &hooked {
        tx.add(NfListObject::Chain(nft::base_chain(
            TABLE, name, *kind, *hook, *priority,
        )));
    }
    for (name, _) in &regular {
        tx.add(NfListObject::Chain(nft::chain(TABLE, name)));
    }
    for fragment in programmed.fragments() {
        for (name, timeout) in &fragment.affinity_sets {
            tx.add(NfListObject::Set(Box::new(affinity_declaration(name, *timeout))));
        }
        for name in fragment.chains.keys() {
            tx.add(NfListObject::Chain(nft::chain(TABLE, name)));
        }
    }
    for (name, _, _, _, rules) in hooked {
        for statements in rules {
            tx.add(NfListObject::Rule(nft::rule(TABLE, name, statements)));
        }
    }
    for (name, rules) in regular {
        for statements in rules {
            tx.add(NfListObject::Rule(nft::rule(TABLE, name, statements)));
        }
    }
    for fragment in programmed.fragments() {
        for (name, rules) in &fragment.chains {
            for statements in rules {
                tx.add(NfListObject::Rule(nft::rule(TABLE, name, statements.clone())));
            }
        }
    }
    for fragment in programmed.fragments() {
        for ((map, _), value) in &fragment.elements {
            tx.raw(json!({"add": element(map, &value.element)}));
        }
    }
    tx
}

/// The changes from `old` to `new` only: elements that went or changed, new and changed
/// chains (flushed and refilled), new elements, then chains and sets nothing uses any more.
/// Only the fragments of ports that changed are compared.
pub fn partial_sync(old: &Programmed, new: &Programmed) -> Transaction {
    let empty = Fragment::default();
    let mut pairs: Vec<(&Fragment, &Fragment)> =
        vec![(&old.global, &new.global), (&old.host_ports, &new.host_ports)];
    for (key, (_, before)) in &old.ports {
        match new.ports.get(key) {
            Some((_, after)) if Arc::ptr_eq(before, after) => {}
            Some((_, after)) => pairs.push((before, after)),
            None => pairs.push((before, &empty)),
        }
    }
    for (key, (_, after)) in &new.ports {
        if !old.ports.contains_key(key) {
            pairs.push((&empty, after));
        }
    }
    pairs.retain(|(before, after)| before != after);
    let mut tx = Transaction::new();
    for (old, new) in &pairs {
        for (key, value) in &old.elements {
            if new.elements.get(key) != Some(value) {
                tx.raw(json!({"delete": element(key.0, &value.key)}));
            }
        }
    }
    for (old, new) in &pairs {
        for (name, timeout) in &new.affinity_sets {
            if !old.affinity_sets.contains_key(name) {
                tx.add(NfListObject::Set(Box::new(affinity_declaration(name, *timeout))));
            }
        }
    }
    for (old, new) in &pairs {
        for name in new.chains.keys() {
            if !old.chains.contains_key(name) {
                tx.add(NfListObject::Chain(nft::chain(TABLE, name)));
            }
        }
    }
    for (old, new) in &pairs {
        for (name, rules) in &new.chains {
            match old.chains.get(name) {
                Some(previous) if previous == rules => continue,
                Some(_) => tx.command(NfCmd::Flush(FlushObject::Chain(nft::chain(TABLE, name)))),
                None => {}
            }
            for statements in rules {
                tx.add(NfListObject::Rule(nft::rule(TABLE, name, statements.clone())));
            }
        }
    }
    for (old, new) in &pairs {
        for (key, value) in &new.elements {
            if old.elements.get(key) != Some(value) {
                tx.raw(json!({"add": element(key.0, &value.element)}));
            }
        }
    }
    let stale: Vec<&String> = pairs
        .iter()
        .flat_map(|(old, new)| old.chains.keys().filter(|name| !new.chains.contains_key(*name)))
        .collect();
    for name in &stale {
        tx.command(NfCmd::Flush(FlushObject::Chain(nft::chain(TABLE, name))));
    }
    for name in &stale {
        tx.command(NfCmd::Delete(NfListObject::Chain(nft::chain(TABLE, name))));
    }
    for (old, new) in &pairs {
        for name in old.affinity_sets.keys() {
            if !new.affinity_sets.contains_key(name) {
                tx.command(NfCmd::Delete(NfListObject::Set(Box::new(set_declaration(name)))));
            }
        }
    }
    tx
}

#[cfg(test)]
impl Programmed {
    /// Every fragment in one, for tests.
    fn merged(&self) -> Fragment {
        let mut merged = Fragment::default();
        for fragment in self.fragments() {
            merged.chains.extend(fragment.chains.clone());
            merged.elements.extend(fragment.elements.clone());
            merged.affinity_sets.extend(fragment.affinity_sets.clone());
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::model::{PortKey, Protocol};

    fn network() -> Network {
        Network {
            cluster_cidr: "10.244.0.0/16".parse().unwrap(),
            service_cidr: "10.96.0.0/16".parse().unwrap(),
        }
    }

    fn endpoint(last: u8) -> Endpoint {
        Endpoint {
            ip: Ipv4Addr::new(10, 244, 0, last),
            port: 8080,
        }
    }

    fn port(name: &str, cluster: Vec<Endpoint>, local: Vec<Endpoint>) -> ServicePort {
        ServicePort {
            key: PortKey {
                namespace: "default".into(),
                name: name.into(),
                port_name: "http".into(),
                protocol: Protocol::Tcp,
            },
            cluster_ip: Ipv4Addr::new(10, 96, 0, 20),
            port: 80,
            node_port: None,
            external_ips: Vec::new(),
            affinity_timeout: None,
            serving: cluster.iter().map(|e| e.ip).collect(),
            cluster,
            local,
            internal_local: false,
            external_local: false,
        }
    }

    fn text_of(tx: &Transaction) -> String {
        tx.to_json().to_string()
    }

    #[test]
    fn a_service_with_endpoints_maps_its_cluster_ip_to_a_random_pick_of_dnat_chains() {
        let ports = [port("web", vec![endpoint(5), endpoint(6)], vec![endpoint(5)])];
        let programmed = program(&ports, &[Ipv4Addr::new(192, 0, 2, 2)], &network());
        assert_eq!(
            programmed.merged().chains.keys().collect::<Vec<_>>(),
            [
                "endpoint-default/web/tcp/http__10.244.0.5/8080",
                "endpoint-default/web/tcp/http__10.244.0.6/8080",
                "service-default/web/tcp/http",
            ]
        );
        let service =
            serde_json::to_value(&programmed.merged().chains["service-default/web/tcp/http"]).unwrap();
        assert_eq!(service[1][0]["vmap"]["key"]["numgen"]["mod"], 2);
        assert_eq!(
            service[1][0]["vmap"]["data"]["set"][1][1]["goto"]["target"],
            "endpoint-default/web/tcp/http__10.244.0.6/8080"
        );
        let endpoint = serde_json::to_value(
            &programmed.merged().chains["endpoint-default/web/tcp/http__10.244.0.6/8080"],
        )
        .unwrap();
        assert_eq!(endpoint[1][1]["dnat"]["addr"], "10.244.0.6");
        assert_eq!(endpoint[1][1]["dnat"]["port"], 8080);
        let element =
            &programmed.merged().elements[&(SERVICE_IPS, r#"{"concat":["10.96.0.20","tcp",80]}"#.to_owned())];
        assert_eq!(
            element.element[1]["goto"]["target"],
            "service-default/web/tcp/http"
        );
    }

    #[test]
    fn services_without_endpoints_are_rejected_and_local_policies_without_local_ones_dropped() {
        let mut lonely = port("lonely", Vec::new(), Vec::new());
        lonely.node_port = Some(30001);
        let mut elsewhere = port("elsewhere", vec![endpoint(9)], Vec::new());
        elsewhere.cluster_ip = Ipv4Addr::new(10, 96, 0, 21);
        elsewhere.node_port = Some(30002);
        elsewhere.external_local = true;
        let programmed = program(&[lonely, elsewhere], &[], &network());
        let merged = programmed.merged();
        let verdicts: Vec<(String, String)> = merged
            .elements
            .iter()
            .filter(|((map, _), _)| map.starts_with("no-endpoint"))
            .map(|((map, _), value)| (map.to_string(), value.element[1].to_string()))
            .collect();
        assert_eq!(
            verdicts,
            [
                (
                    "no-endpoint-nodeports".to_owned(),
                    r#"{"goto":{"target":"reject-chain"}}"#.to_owned()
                ),
                ("no-endpoint-nodeports".to_owned(), r#""drop""#.to_owned()),
                (
                    "no-endpoint-services".to_owned(),
                    r#"{"goto":{"target":"reject-chain"}}"#.to_owned()
                ),
            ]
        );
        assert!(
            merged
                .elements
                .contains_key(&(SERVICE_IPS, r#"{"concat":["10.96.0.21","tcp",80]}"#.to_owned())),
            "the cluster IP still reaches the remote endpoint"
        );
    }

    #[test]
    fn partial_syncs_touch_only_what_changed() {
        let a = port("a", vec![endpoint(5)], Vec::new());
        let mut b = port("b", vec![endpoint(6)], Vec::new());
        b.cluster_ip = Ipv4Addr::new(10, 96, 0, 30);
        let before = program(std::slice::from_ref(&a), &[], &network());
        let after = program(&[a.clone(), b], &[], &network());
        assert!(partial_sync(&before, &before).is_empty());
        let added = text_of(&partial_sync(&before, &after));
        assert!(!added.contains("default/a/"), "{added}");
        assert!(added.contains("service-default/b/tcp/http"));
        // An endpoint moves: the service chain is flushed and refilled, the old endpoint
        // chain flushed and deleted after it.
        let mut moved = a;
        moved.cluster = vec![endpoint(7)];
        let changed = partial_sync(&before, &program(&[moved], &[], &network())).to_json();
        let verbs: Vec<String> = changed["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|command| {
                let (verb, body) = command.as_object().unwrap().iter().next().unwrap();
                let (kind, object) = body.as_object().unwrap().iter().next().unwrap();
                let name = object
                    .get("chain")
                    .or(object.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                format!("{verb} {kind} {name}")
            })
            .collect();
        assert_eq!(
            verbs,
            [
                "add chain endpoint-default/a/tcp/http__10.244.0.7/8080",
                "add rule endpoint-default/a/tcp/http__10.244.0.7/8080",
                "add rule endpoint-default/a/tcp/http__10.244.0.7/8080",
                "flush chain service-default/a/tcp/http",
                "add rule service-default/a/tcp/http",
                "add rule service-default/a/tcp/http",
                "flush chain endpoint-default/a/tcp/http__10.244.0.5/8080",
                "delete chain endpoint-default/a/tcp/http__10.244.0.5/8080",
            ]
        );
    }

    #[test]
    fn unchanged_ports_keep_their_fragments() {
        let a = port("a", vec![endpoint(5)], Vec::new());
        let mut b = port("b", vec![endpoint(6)], Vec::new());
        b.cluster_ip = Ipv4Addr::new(10, 96, 0, 30);
        let before = program(&[a.clone(), b.clone()], &[], &network());
        b.cluster = vec![endpoint(7)];
        let after = program_reusing(Some(&before), &[a.clone(), b], &[], &network());
        assert!(Arc::ptr_eq(&before.ports[&a.key].1, &after.ports[&a.key].1));
        let changes = text_of(&partial_sync(&before, &after));
        assert!(!changes.contains("default/a/"), "{changes}");
        assert!(changes.contains("10.244.0.7"), "{changes}");
    }

    #[test]
    fn client_ip_affinity_records_and_follows_the_client() {
        let mut sticky = port("sticky", vec![endpoint(5)], Vec::new());
        sticky.affinity_timeout = Some(60);
        let programmed = program(&[sticky], &[], &network());
        let set = "affinity-default/sticky/tcp/http__10.244.0.5/8080-60";
        assert_eq!(programmed.merged().affinity_sets.get(set), Some(&60));
        let service =
            serde_json::to_value(&programmed.merged().chains["service-default/sticky/tcp/http"]).unwrap();
        assert_eq!(service[1][0]["match"]["right"], format!("@{set}"));
        let endpoint = serde_json::to_value(
            &programmed.merged().chains["endpoint-default/sticky/tcp/http__10.244.0.5/8080"],
        )
        .unwrap();
        assert_eq!(endpoint[1][0]["set"]["op"], "update");
    }
}
