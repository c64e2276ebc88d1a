//! The API objects netd's service proxy and DNS both read: reflectors of every Service and
//! EndpointSlice, and a generation number that moves on each change.
//!
//! Read-only: it never writes to the API.

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Reflected Services and EndpointSlices, and the node's pods.
#[derive(Clone)]
pub struct Watched {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    /// The pods bound to the node (for host ports).
    pub pods: Store<Pod>,
    /// Moves on every watch event of either.
    pub generation: watch::Receiver<u64>,
}

impl Watched {
    /// Starts the reflectors, pods those bound to `node_name`.
    pub fn start(client: &Client, node_name: &str, shutdown: &CancellationToken) -> Self {
        let (bump, generation) = watch::channel(0u64);
        let services = follow::<Service>(client.clone(), bump.clone(), shutdown.clone());
        let slices = follow::<EndpointSlice>(client.clone(), bump.clone(), shutdown.clone());
        let pods = follow_selected::<Pod>(
            client.clone(),
            watcher::Config::default().fields(&format!("spec.nodeName={node_name}")),
            bump,
            shutdown.clone(),
        );
        Self {
            services,
            slices,
            pods,
            generation,
        }
    }

    /// Waits until every reflector listed once.
    pub async fn ready(&self) {
        let _ = futures_util::future::join3(
            self.services.wait_until_ready(),
            self.slices.wait_until_ready(),
            self.pods.wait_until_ready(),
        )
        .await;
    }
}

/// What a reflector can follow: a built-in kind.
pub(crate) trait Followed:
    kube::Resource<DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Followed for K where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// A reflector of every `K`, moving `bump` on each event.
pub(crate) fn follow<K: Followed>(
    client: Client,
    bump: watch::Sender<u64>,
    shutdown: CancellationToken,
) -> Store<K> {
    follow_selected(client, watcher::Config::default(), bump, shutdown)
}

/// A reflector of the `K` that `config` selects, moving `bump` on each event.
fn follow_selected<K: Followed>(
    client: Client,
    config: watcher::Config,
    bump: watch::Sender<u64>,
    shutdown: CancellationToken,
) -> Store<K> {
    let (reader, writer) = reflector::store();
    let api: Api<K> = Api::all(client);
    let stream = reflector::reflector(writer, watcher(api, config)).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                next = stream.next() => next,
            };
            match next {
                Some(Ok(_)) => bump.send_modify(|generation| *generation = generation.wrapping_add(1)),
                Some(Err(err)) => tracing::debug!(error = %err, "watching services or endpoint slices"),
                None => return,
            }
        }
    });
    reader
}
