//! NetworkPolicy in nftables: the `ip rudder-policy` table filters forwarded traffic (after
//! the service proxy's translation, so to and from pod addresses) of this node's isolated
//! pods. Established flows pass; a packet from an egress-isolated pod and one to an
//! ingress-isolated pod each visit the pod's chain, which returns for allowed traffic and
//! drops the rest.
//!
//! Pure: [`table`] builds the whole table; the caller applies it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use nftables::expr::{Expression, MetaKey, NamedExpression, Range, SetItem, Verdict};
use nftables::stmt::{JumpTarget, Operator, Statement, VerdictMap};
use nftables::types::{NfChainType, NfHook};

use super::model::{Allow, Isolation, Peers, Ports};
use crate::nft::{self, Transaction};
use crate::proxy::model::Protocol;

/// NetworkPolicy's table.
pub const TABLE: &str = "rudder-policy";

fn text(value: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(value.into()))
}

fn address_set(addresses: impl IntoIterator<Item = Expression<'static>>) -> Expression<'static> {
    Expression::Named(NamedExpression::Set(
        addresses.into_iter().map(SetItem::Element).collect(),
    ))
}

/// The rules of one allow: `ip FIELD <peers> [meta l4proto P th dport {ports}] return`.
fn allow_rules(allow: &Allow, field: &'static str) -> Vec<Vec<Statement<'static>>> {
    let mut peer_matches: Vec<Vec<Statement<'static>>> = Vec::new();
    match &allow.peers {
        Peers::Any => peer_matches.push(Vec::new()),
        Peers::Addresses { pods, blocks } => {
            if !pods.is_empty() {
                peer_matches.push(vec![nft::equals(
                    nft::payload("ip", field),
                    address_set(pods.iter().map(|ip| text(ip.to_string()))),
                )]);
            }
            for (block, except) in blocks {
                let mut statements = Vec::new();
                if !except.is_empty() {
                    statements.push(nft::matches(
                        nft::payload("ip", field),
                        Operator::NEQ,
                        address_set(except.iter().map(|c| nft::cidr(*c))),
                    ));
                }
                statements.push(nft::equals(nft::payload("ip", field), nft::cidr(*block)));
                peer_matches.push(statements);
            }
        }
    }
    let port_matches: Vec<Vec<Statement<'static>>> = match &allow.ports {
        Ports::Any => vec![Vec::new()],
        Ports::Listed(listed) => {
            let mut by_protocol: BTreeMap<Protocol, Vec<Expression<'static>>> = BTreeMap::new();
            for (protocol, first, last) in listed {
                let port = if first == last {
                    Expression::Number(u32::from(*first))
                } else {
                    Expression::Range(Box::new(Range {
                        range: [
                            Expression::Number(u32::from(*first)),
                            Expression::Number(u32::from(*last)),
                        ],
                    }))
                };
                by_protocol.entry(*protocol).or_default().push(port);
            }
            by_protocol
                .into_iter()
                .map(|(protocol, ports)| {
                    vec![
                        nft::equals(nft::meta(MetaKey::L4proto), text(protocol.as_str())),
                        nft::equals(nft::payload("th", "dport"), address_set(ports)),
                    ]
                })
                .collect()
        }
    };
    let mut rules = Vec::new();
    for peers in &peer_matches {
        for ports in &port_matches {
            let mut rule = peers.clone();
            rule.extend(ports.iter().cloned());
            rule.push(Statement::Return(None));
            rules.push(rule);
        }
    }
    rules
}

fn chain_name(direction: &str, address: Ipv4Addr) -> String {
    format!("{direction}-{address}")
}

fn dispatch(field: &'static str, chains: &[(Ipv4Addr, String)]) -> Statement<'static> {
    Statement::VerdictMap(VerdictMap {
        key: nft::payload("ip", field),
        data: Expression::Named(NamedExpression::Set(
            chains
                .iter()
                .map(|(address, chain)| {
                    SetItem::Mapping(
                        text(address.to_string()),
                        Expression::Verdict(Verdict::Jump(JumpTarget {
                            target: Cow::Owned(chain.clone()),
                        })),
                    )
                })
                .collect(),
        )),
    })
}

/// The whole table for `isolations` (by pod address).
pub fn table(isolations: &BTreeMap<Ipv4Addr, Isolation>) -> Transaction {
    let mut tx = Transaction::new();
    nft::replace_table(&mut tx, TABLE);
    tx.add(nftables::schema::NfListObject::Chain(nft::base_chain(
        TABLE,
        "forward",
        NfChainType::Filter,
        NfHook::Forward,
        0,
    )));
    let mut egress = Vec::new();
    let mut ingress = Vec::new();
    let mut chains: Vec<(String, Vec<Vec<Statement<'static>>>)> = Vec::new();
    for (address, isolation) in isolations {
        for (direction, field, allows, dispatch_list) in [
            ("egress", "daddr", &isolation.egress, &mut egress),
            ("ingress", "saddr", &isolation.ingress, &mut ingress),
        ] {
            let Some(allows) = allows else { continue };
            let name = chain_name(direction, *address);
            let mut rules: Vec<Vec<Statement<'static>>> =
                allows.iter().flat_map(|a| allow_rules(a, field)).collect();
            rules.push(vec![Statement::Drop(None)]);
            chains.push((name.clone(), rules));
            dispatch_list.push((*address, name));
        }
    }
    for (name, _) in &chains {
        tx.add(nftables::schema::NfListObject::Chain(nft::chain(TABLE, name)));
    }
    let mut forward = vec![vec![
        nft::ct_state(&["established", "related"]),
        Statement::Accept(None),
    ]];
    if !egress.is_empty() {
        forward.push(vec![dispatch("saddr", &egress)]);
    }
    if !ingress.is_empty() {
        forward.push(vec![dispatch("daddr", &ingress)]);
    }
    for statements in forward {
        tx.add(nftables::schema::NfListObject::Rule(nft::rule(
            TABLE, "forward", statements,
        )));
    }
    for (name, rules) in chains {
        for statements in rules {
            tx.add(nftables::schema::NfListObject::Rule(nft::rule(
                TABLE, &name, statements,
            )));
        }
    }
    tx
}
