//! Building blocks for nftables rulesets (typed, through the `nftables` crate's JSON schema)
//! and applying a table's whole content in one atomic `nft` transaction.
//!
//! It knows no Kubernetes objects; the modules that own a table say what goes in it.

use std::borrow::Cow;

use nftables::batch::Batch;
use nftables::expr::{Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix};
use nftables::schema::{Chain, NfListObject, Rule, Table};
use nftables::stmt::{Match, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::cidr::Ipv4Cidr;

/// Why a ruleset could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("applying nftables table {table}: {source}")]
pub struct NftError {
    pub table: String,
    #[source]
    pub source: nftables::helper::NftablesError,
}

/// One IPv4 table owned entirely by netd, rebuilt whole on every apply.
#[derive(Debug)]
pub struct TableBuilder {
    name: String,
    objects: Vec<NfListObject<'static>>,
}

impl TableBuilder {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            objects: Vec::new(),
        }
    }

    /// A base chain hooked at `hook` with `priority`.
    pub fn base_chain(&mut self, name: &str, kind: NfChainType, hook: NfHook, priority: i32) {
        self.objects.push(NfListObject::Chain(Chain {
            family: NfFamily::IP,
            table: Cow::Owned(self.name.clone()),
            name: Cow::Owned(name.to_owned()),
            _type: Some(kind),
            hook: Some(hook),
            prio: Some(priority),
            policy: Some(NfChainPolicy::Accept),
            ..Chain::default()
        }));
    }

    /// A regular chain (a jump or goto target).
    pub fn chain(&mut self, name: &str) {
        self.objects.push(NfListObject::Chain(Chain {
            family: NfFamily::IP,
            table: Cow::Owned(self.name.clone()),
            name: Cow::Owned(name.to_owned()),
            ..Chain::default()
        }));
    }

    pub fn rule(&mut self, chain: &str, statements: Vec<Statement<'static>>) {
        self.objects.push(NfListObject::Rule(Rule {
            family: NfFamily::IP,
            table: Cow::Owned(self.name.clone()),
            chain: Cow::Owned(chain.to_owned()),
            expr: Cow::Owned(statements),
            ..Rule::default()
        }));
    }

    /// The transaction that replaces the table: create it if missing (so that deleting it
    /// cannot fail), delete it with everything in it, then add it back with everything built.
    /// `nft -f` applies a document atomically: packets see the old table or the new one.
    pub fn into_batch(self) -> Batch<'static> {
        let table = Table {
            family: NfFamily::IP,
            name: Cow::Owned(self.name.clone()),
            handle: None,
        };
        let mut batch = Batch::new();
        batch.add(NfListObject::Table(table.clone()));
        batch.delete(NfListObject::Table(table.clone()));
        batch.add(NfListObject::Table(table));
        for object in self.objects {
            batch.add(object);
        }
        batch
    }

    /// Applies the table (blocking: it runs `nft`).
    pub fn apply(self) -> Result<(), NftError> {
        let table = self.name.clone();
        let ruleset = self.into_batch().to_nftables();
        nftables::helper::apply_ruleset(&ruleset).map_err(|source| NftError { table, source })
    }
}

/// Deletes a table of netd's if it exists (blocking).
pub fn delete_table(name: &str) -> Result<(), NftError> {
    let table = Table {
        family: NfFamily::IP,
        name: Cow::Owned(name.to_owned()),
        handle: None,
    };
    let mut batch = Batch::new();
    // Adding first makes the delete succeed when the table is not there.
    batch.add(NfListObject::Table(table.clone()));
    batch.delete(NfListObject::Table(table));
    nftables::helper::apply_ruleset(&batch.to_nftables()).map_err(|source| NftError {
        table: name.to_owned(),
        source,
    })
}

/// `protocol field` (`ip saddr`, `tcp dport`).
pub fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField {
        protocol: Cow::Borrowed(protocol),
        field: Cow::Borrowed(field),
    })))
}

pub fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

pub fn cidr(block: Ipv4Cidr) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(Expression::String(Cow::Owned(block.network().to_string()))),
        len: u32::from(block.prefix()),
    }))
}

pub fn text(value: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(value.into()))
}

pub fn matches(left: Expression<'static>, op: Operator, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

pub fn equals(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    matches(left, Operator::EQ, right)
}

pub fn differs(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    matches(left, Operator::NEQ, right)
}

pub fn accept() -> Statement<'static> {
    Statement::Accept(None)
}

pub fn masquerade() -> Statement<'static> {
    Statement::Masquerade(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_replaced_whole_in_one_document() {
        let mut table = TableBuilder::new("rudder-test");
        table.base_chain("postrouting", NfChainType::NAT, NfHook::Postrouting, 100);
        table.rule(
            "postrouting",
            vec![
                equals(payload("ip", "saddr"), cidr("10.244.0.0/16".parse().unwrap())),
                masquerade(),
            ],
        );
        let json = serde_json::to_value(table.into_batch().to_nftables()).unwrap();
        let commands = json["nftables"].as_array().unwrap();
        let kinds: Vec<String> = commands
            .iter()
            .map(|c| {
                let (verb, body) = c.as_object().unwrap().iter().next().unwrap();
                format!("{verb} {}", body.as_object().unwrap().keys().next().unwrap())
            })
            .collect();
        assert_eq!(
            kinds,
            ["add table", "delete table", "add table", "add chain", "add rule"]
        );
        let rule = &commands[4]["add"]["rule"];
        assert_eq!(rule["expr"][0]["match"]["right"]["prefix"]["addr"], "10.244.0.0");
        assert_eq!(rule["expr"][0]["match"]["right"]["prefix"]["len"], 16);
        assert!(rule["expr"][1].get("masquerade").is_some());
    }
}
