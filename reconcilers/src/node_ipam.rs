//! The node IPAM controller (`node-ipam-controller`; upstream: pkg/controller/nodeipam with
//! the RangeAllocator): every node without `spec.podCIDR` gets the next free /24 of the
//! cluster CIDR 10.244.0.0/16 in `spec.podCIDR` and `spec.podCIDRs`. What is in use is read
//! from the nodes themselves (the reflector store) plus the allocations written but not yet
//! seen, so a restarted controller rebuilds its state from the existing nodes and a deleted
//! node's range is free again. Candidates rotate as upstream's `cidrset.AllocateNext`.
//!
//! It writes only `spec.podCIDR`/`spec.podCIDRs` of nodes that have none (and a
//! `CIDRNotAvailable` event when the range is exhausted); it never changes an assigned range.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Node, ObjectReference};
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::Store;
use kube::runtime::{Controller, watcher};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_not_found};

/// The controller's name in `--controllers`.
pub const NAME: &str = "node-ipam-controller";
/// The component named in its events.
const COMPONENT: &str = "cidrAllocator";
/// The cluster CIDR (`--cluster-cidr`).
const CLUSTER_CIDR: (Ipv4Addr, u8) = (Ipv4Addr::new(10, 244, 0, 0), 16);
/// The size of each node's range (`--node-cidr-mask-size-ipv4`).
const NODE_MASK: u8 = 24;

/// The ranges handed out, by index in the cluster CIDR.
#[derive(Debug, Default)]
struct Allocator {
    /// Written but not yet seen in the store: node name → index.
    pending: HashMap<String, u32>,
    /// The next candidate (upstream's `nextCandidate`).
    next: u32,
}

fn range_count() -> u32 {
    1u32 << (NODE_MASK - CLUSTER_CIDR.1)
}

fn cidr_of(index: u32) -> String {
    let base = u32::from(CLUSTER_CIDR.0) + (index << (32 - u32::from(NODE_MASK)));
    format!("{}/{NODE_MASK}", Ipv4Addr::from(base))
}

/// The index of a /24 of the cluster CIDR, if `cidr` is one.
fn index_of(cidr: &str) -> Option<u32> {
    let (address, len) = cidr.split_once('/')?;
    if len.parse::<u8>().ok()? != NODE_MASK {
        return None;
    }
    let address = u32::from(address.parse::<Ipv4Addr>().ok()?);
    let base = u32::from(CLUSTER_CIDR.0);
    let offset = address.checked_sub(base)?;
    let index = offset >> (32 - u32::from(NODE_MASK));
    (index < range_count() && offset & 0xff == 0).then_some(index)
}

fn pod_cidr(node: &Node) -> Option<&str> {
    node.spec.as_ref()?.pod_cidr.as_deref().filter(|c| !c.is_empty())
}

impl Allocator {
    /// The next free index after the last one handed out, given the ranges in use.
    fn allocate(&mut self, node: &str, used: &HashSet<u32>) -> Option<u32> {
        if let Some(index) = self.pending.get(node) {
            return Some(*index);
        }
        let taken: HashSet<u32> = used.iter().chain(self.pending.values()).copied().collect();
        let count = range_count();
        let index = (0..count)
            .map(|i| (self.next + i) % count)
            .find(|i| !taken.contains(i))?;
        self.next = (index + 1) % count;
        self.pending.insert(node.to_owned(), index);
        Some(index)
    }
}

struct State {
    nodes: Store<Node>,
    allocator: Mutex<Allocator>,
    recorder: Recorder,
}

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let controller = Controller::new(
        Api::<Node>::all(context.client.clone()),
        watcher::Config::default(),
    );
    let state = Arc::new(State {
        nodes: controller.store(),
        allocator: Mutex::new(Allocator::default()),
        recorder: context.recorder(COMPONENT),
    });
    harness::run(NAME, controller, context, shutdown, move |node, context| {
        let state = state.clone();
        async move { Box::pin(reconcile(node, context, state)).await }
    })
    .await;
}

async fn reconcile(
    node: Arc<Node>,
    context: Arc<Context>,
    state: Arc<State>,
) -> Result<Action, ReconcileError> {
    let name = node.name_any();
    let nodes = state.nodes.state();
    let live: HashSet<String> = nodes.iter().map(|n| n.name_any()).collect();
    let used: HashSet<u32> = nodes
        .iter()
        .filter_map(|n| pod_cidr(n).and_then(index_of))
        .collect();
    let index = {
        let Ok(mut allocator) = state.allocator.lock() else {
            return Err(ReconcileError::Invalid(
                "the allocator lock is poisoned".to_owned(),
            ));
        };
        // Allocations now visible on their nodes, or whose nodes are gone, are settled.
        let seen: HashMap<String, u32> = nodes
            .iter()
            .filter_map(|n| Some((n.name_any(), pod_cidr(n)?.to_owned())))
            .filter_map(|(n, c)| Some((n, index_of(&c)?)))
            .collect();
        allocator
            .pending
            .retain(|n, i| live.contains(n) && seen.get(n) != Some(i));
        if pod_cidr(&node).is_some() {
            allocator.pending.remove(&name);
            return Ok(Action::await_change());
        }
        allocator.allocate(&name, &used)
    };
    let Some(index) = index else {
        let event = Event {
            type_: EventType::Normal,
            reason: "CIDRNotAvailable".to_owned(),
            note: Some(format!("Node {name} status is now: CIDRNotAvailable")),
            action: "CIDRAssignmentFailed".to_owned(),
            secondary: None,
        };
        let reference = ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Node".to_owned()),
            name: Some(name.clone()),
            uid: node.uid(),
            ..ObjectReference::default()
        };
        if let Err(err) = state.recorder.publish(&event, &reference).await {
            tracing::debug!(error = %err, "publishing the CIDRNotAvailable event failed");
        }
        return Ok(Action::await_change());
    };
    let cidr = cidr_of(index);
    let api: Api<Node> = Api::all(context.client.clone());
    let patch = json!({
        "metadata": {"resourceVersion": node.resource_version()},
        "spec": {"podCIDR": cidr, "podCIDRs": [cidr]},
    });
    match api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            tracing::info!(node = %name, %cidr, "pod CIDR assigned");
            Ok(Action::await_change())
        }
        Err(err) => {
            if let Ok(mut allocator) = state.allocator.lock() {
                allocator.pending.remove(&name);
            }
            if is_not_found(&err) || harness::is_conflict(&err) {
                Ok(Action::await_change())
            } else {
                Err(err.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_24s_of_the_cluster_cidr() {
        assert_eq!(cidr_of(0), "10.244.0.0/24");
        assert_eq!(cidr_of(255), "10.244.255.0/24");
        assert_eq!(index_of("10.244.3.0/24"), Some(3));
        assert_eq!(index_of("10.245.0.0/24"), None);
        assert_eq!(index_of("10.244.3.0/25"), None);
        assert_eq!(range_count(), 256);
    }

    #[test]
    fn allocation_rotates_and_skips_used_ranges() {
        let mut allocator = Allocator::default();
        let used: HashSet<u32> = [0, 1].into_iter().collect();
        assert_eq!(allocator.allocate("a", &used), Some(2));
        assert_eq!(allocator.allocate("a", &used), Some(2));
        assert_eq!(allocator.allocate("b", &used), Some(3));
        allocator.pending.clear();
        // A released range is not handed out again before the others.
        let used: HashSet<u32> = [0, 1, 3].into_iter().collect();
        assert_eq!(allocator.allocate("c", &used), Some(4));
        let all: HashSet<u32> = (0..256).collect();
        assert_eq!(allocator.allocate("d", &all), None);
    }
}
