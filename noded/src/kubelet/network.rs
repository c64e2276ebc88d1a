//! The seam between pod sandboxes and the node's pod network: what the kubelet asks of a
//! network plugin (netd in `rudder`), the part CNI plays for upstream's container runtimes.
//!
//! It defines the interface only; the kubelet works without one (pods then have a network
//! namespace with loopback alone and no address).

use std::net::IpAddr;
use std::path::Path;

use futures_util::future::BoxFuture;

/// Connects pods' network namespaces to the node's pod network.
pub trait PodNetwork: Send + Sync + std::fmt::Debug {
    /// Connects the pod `uid`'s namespace at `netns` and returns the pod's addresses.
    /// Idempotent: a pod already connected keeps its addresses.
    fn attach<'a>(&'a self, uid: &'a str, netns: &'a Path) -> BoxFuture<'a, Result<Vec<IpAddr>, String>>;

    /// Releases what the pod `uid` holds (blocking: called while the pod is cleaned up).
    fn detach(&self, uid: &str) -> Result<(), String>;
}
