//! A node's heartbeat Lease in `kube-node-lease`, as kubelet keeps it: created (or taken over
//! from an earlier run) owned by the Node, then renewed by an update conditioned on the
//! version last written, re-read only after a failed renewal.
//!
//! It owns nothing but the Lease object: when to renew is the caller's business.

use std::sync::Mutex;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use thiserror::Error;

/// The namespace of node Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// How long a node Lease lasts without renewal (kubelet's `nodeLeaseDurationSeconds`).
pub const LEASE_DURATION_SECONDS: i32 = 40;

/// Why a Lease could not be acquired.
#[derive(Debug, Error)]
#[error("acquiring the lease of node {node}: {source}")]
pub struct LeaseError {
    node: String,
    #[source]
    source: kube::Error,
}

/// One node's Lease and the version of it last written.
#[derive(Debug)]
pub struct NodeLease {
    node: String,
    api: Api<Lease>,
    last: Mutex<Option<Lease>>,
}

impl NodeLease {
    /// Creates the Lease of `node` (owned by the Node with `node_uid`), or takes over the one a
    /// previous run left.
    pub async fn acquire(client: Client, node: &str, node_uid: &str) -> Result<NodeLease, LeaseError> {
        let api: Api<Lease> = Api::namespaced(client, NODE_LEASE_NAMESPACE);
        let error = |source| LeaseError {
            node: node.to_owned(),
            source,
        };
        let fresh = Lease {
            metadata: ObjectMeta {
                name: Some(node.to_owned()),
                namespace: Some(NODE_LEASE_NAMESPACE.to_owned()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "v1".into(),
                    kind: "Node".into(),
                    name: node.to_owned(),
                    uid: node_uid.to_owned(),
                    ..OwnerReference::default()
                }]),
                ..ObjectMeta::default()
            },
            spec: Some(spec_renewed(node, LeaseSpec::default())),
        };
        let lease = match api.create(&PostParams::default(), &fresh).await {
            Ok(lease) => lease,
            Err(kube::Error::Api(status)) if status.code == 409 => {
                let mut current = api.get(node).await.map_err(error)?;
                current.spec = Some(spec_renewed(node, current.spec.unwrap_or_default()));
                api.replace(node, &PostParams::default(), &current)
                    .await
                    .map_err(error)?
            }
            Err(err) => return Err(error(err)),
        };
        Ok(NodeLease {
            node: node.to_owned(),
            api,
            last: Mutex::new(Some(lease)),
        })
    }

    /// Forgets the version last written: the next renewal reads the Lease first.
    pub fn forget(&self) {
        if let Ok(mut last) = self.last.lock() {
            *last = None;
        }
    }

    /// Renews the Lease. A failure is logged and remembered: the next renewal re-reads it, as
    /// kubelet does after a conflict.
    pub async fn renew(&self) {
        let known = self.last.lock().ok().and_then(|last| last.clone());
        let lease = match known {
            Some(lease) => lease,
            None => match self.api.get(&self.node).await {
                Ok(lease) => lease,
                Err(err) => {
                    tracing::warn!(node = %self.node, error = %err, "reading the node lease failed");
                    return;
                }
            },
        };
        let lease = Lease {
            spec: Some(spec_renewed(&self.node, lease.spec.unwrap_or_default())),
            ..lease
        };
        let renewed = match self.api.replace(&self.node, &PostParams::default(), &lease).await {
            Ok(lease) => Some(lease),
            Err(err) => {
                tracing::warn!(node = %self.node, error = %err, "renewing the node lease failed");
                None
            }
        };
        if let Ok(mut last) = self.last.lock() {
            *last = renewed;
        }
    }
}

fn spec_renewed(node: &str, spec: LeaseSpec) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(node.to_owned()),
        lease_duration_seconds: Some(LEASE_DURATION_SECONDS),
        renew_time: Some(MicroTime(Timestamp::now())),
        ..spec
    }
}
