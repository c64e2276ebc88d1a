//! The API objects netd's service proxy and DNS both read: reflectors of every Service and
//! EndpointSlice, and a generation number that moves on each change.
//!
//! Read-only: it never writes to the API.

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Reflected Services and EndpointSlices.
#[derive(Clone)]
pub struct Watched {
    pub services: Store<Service>,
    pub slices: Store<EndpointSlice>,
    /// Moves on every watch event of either.
    pub generation: watch::Receiver<u64>,
}

impl Watched {
    /// Starts both reflectors.
    pub fn start(client: &Client, shutdown: &CancellationToken) -> Self {
        let (bump, generation) = watch::channel(0u64);
        let services = follow::<Service>(client.clone(), bump.clone(), shutdown.clone());
        let slices = follow::<EndpointSlice>(client.clone(), bump, shutdown.clone());
        Self {
            services,
            slices,
            generation,
        }
    }

    /// Waits until both reflectors listed once.
    pub async fn ready(&self) {
        let _ = futures_util::future::join(self.services.wait_until_ready(), self.slices.wait_until_ready())
            .await;
    }
}

/// A reflector of every `K`, moving `bump` on each event.
pub(crate) fn follow<K>(client: Client, bump: watch::Sender<u64>, shutdown: CancellationToken) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let api: Api<K> = Api::all(client);
    let stream = reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
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
