//! Building blocks for nftables rulesets (typed, through the `nftables` crate's JSON schema)
//! and applying a table's whole content in one atomic `nft` transaction.
//!
//! It knows no Kubernetes objects; the modules that own a table say what goes in it.

use std::borrow::Cow;

use nftables::expr::{CT, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix};
use nftables::schema::{Chain, NfCmd, NfListObject, NfObject, Rule, Table};
use nftables::stmt::{Match, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use serde_json::Value;

use crate::cidr::Ipv4Cidr;

/// Why a ruleset could not be applied.
#[derive(Debug, thiserror::Error)]
#[error("applying nftables table {table}: {source}")]
pub struct NftError {
    pub table: String,
    #[source]
    pub source: nftables::helper::NftablesError,
}

/// One `nft -j -f -` document: its commands are applied atomically, all or none.
#[derive(Debug, Default)]
pub struct Transaction {
    commands: Vec<Value>,
}

impl Transaction {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// A command (`add`, `delete`, `flush`, ...).
    pub fn command(&mut self, command: NfCmd<'_>) {
        // The schema's types always serialize.
        if let Ok(value) = serde_json::to_value(NfObject::CmdObject(command)) {
            self.commands.push(value);
        }
    }

    pub fn add(&mut self, object: NfListObject<'_>) {
        self.command(NfCmd::Add(object));
    }

    /// A command the schema's types cannot express (verdict maps: the crate has no
    /// `verdict` data type), as nft's JSON spells it.
    pub fn raw(&mut self, command: Value) {
        self.commands.push(command);
    }

    /// The document, as `nft -j` reads it.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "nftables": self.commands })
    }

    /// Applies the document (blocking: it runs `nft`).
    pub fn apply(&self, table: &str) -> Result<(), NftError> {
        if self.commands.is_empty() {
            return Ok(());
        }
        let text = self.to_json().to_string();
        nftables::helper::apply_ruleset_raw(&text, None::<&str>, std::iter::empty::<&str>())
            .map(drop)
            .map_err(|source| NftError {
                table: table.to_owned(),
                source,
            })
    }
}

/// The table object of netd's IPv4 table `name`.
pub fn table(name: &str) -> Table<'static> {
    Table {
        family: NfFamily::IP,
        name: Cow::Owned(name.to_owned()),
        handle: None,
    }
}

/// A regular chain (a jump or goto target) of `table`.
pub fn chain(table: &str, name: &str) -> Chain<'static> {
    Chain {
        family: NfFamily::IP,
        table: Cow::Owned(table.to_owned()),
        name: Cow::Owned(name.to_owned()),
        ..Chain::default()
    }
}

/// A base chain of `table` hooked at `hook` with `priority`.
pub fn base_chain(table: &str, name: &str, kind: NfChainType, hook: NfHook, priority: i32) -> Chain<'static> {
    Chain {
        _type: Some(kind),
        hook: Some(hook),
        prio: Some(priority),
        policy: Some(NfChainPolicy::Accept),
        ..chain(table, name)
    }
}

pub fn rule(table: &str, chain: &str, statements: Vec<Statement<'static>>) -> Rule<'static> {
    Rule {
        family: NfFamily::IP,
        table: Cow::Owned(table.to_owned()),
        chain: Cow::Owned(chain.to_owned()),
        expr: Cow::Owned(statements),
        ..Rule::default()
    }
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
        self.objects.push(NfListObject::Chain(base_chain(
            &self.name, name, kind, hook, priority,
        )));
    }

    pub fn rule(&mut self, chain: &str, statements: Vec<Statement<'static>>) {
        self.objects
            .push(NfListObject::Rule(rule(&self.name, chain, statements)));
    }

    /// The transaction that replaces the table: create it if missing (so that deleting it
    /// cannot fail), delete it with everything in it, then add it back with everything built.
    /// `nft -f` applies a document atomically: packets see the old table or the new one.
    pub fn into_transaction(self) -> Transaction {
        let mut transaction = Transaction::new();
        replace_table(&mut transaction, &self.name);
        for object in self.objects {
            transaction.add(object);
        }
        transaction
    }

    /// Applies the table (blocking: it runs `nft`).
    pub fn apply(self) -> Result<(), NftError> {
        let name = self.name.clone();
        self.into_transaction().apply(&name)
    }
}

/// Starts `transaction` with an empty table `name`, whatever was there.
pub fn replace_table(transaction: &mut Transaction, name: &str) {
    transaction.add(NfListObject::Table(table(name)));
    transaction.command(NfCmd::Delete(NfListObject::Table(table(name))));
    transaction.add(NfListObject::Table(table(name)));
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

/// `ct state { states }`: the connection's conntrack state is one of `states`.
pub fn ct_state(states: &[&str]) -> Statement<'static> {
    let right = match states {
        [one] => text(*one),
        many => Expression::List(many.iter().map(|state| text(*state)).collect()),
    };
    let state = Expression::Named(NamedExpression::CT(CT {
        key: Cow::Borrowed("state"),
        family: None,
        dir: None,
    }));
    matches(state, Operator::IN, right)
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
        let json = table.into_transaction().to_json();
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
