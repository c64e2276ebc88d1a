//! The service load-balancer controller (upstream's cloud service controller, here with a
//! built-in allocator as MetalLB's or kube-vip's): every Service of type LoadBalancer without
//! a `loadBalancerClass` gets an ingress IP from the configured pool
//! (`--load-balancer-ip-pool`), its `spec.loadBalancerIP` when that is in the pool and free;
//! a Service that stops being a LoadBalancer loses its ingress. Two Services claiming one
//! address keep it for the older. The nodes' service proxies answer on the address.
//!
//! It writes only `status.loadBalancer` of Services (and an `AllocationFailed` event); it
//! runs only when a pool is configured.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::{Controller, watcher};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError};

/// The controller's name in `--controllers`.
pub const NAME: &str = "service-lb-controller";
/// The reporting component of its events.
const COMPONENT: &str = "service-lb-controller";
/// How long an unserved Service waits before another try when the pool is full.
const EXHAUSTED_RETRY: Duration = Duration::from_secs(5);

/// An address pool: inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pool(Vec<(Ipv4Addr, Ipv4Addr)>);

impl Pool {
    /// Parses `CIDR` or `FIRST-LAST` entries (a CIDR's network and broadcast addresses are
    /// left out when it has more than two).
    pub fn parse(entries: &[String]) -> Result<Pool, String> {
        let mut ranges = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let invalid =
                || format!("invalid load-balancer IP pool entry {entry:?}: want CIDR or FIRST-LAST");
            if let Some((first, last)) = entry.split_once('-') {
                let first: Ipv4Addr = first.trim().parse().map_err(|_| invalid())?;
                let last: Ipv4Addr = last.trim().parse().map_err(|_| invalid())?;
                if first > last {
                    return Err(invalid());
                }
                ranges.push((first, last));
            } else {
                let (address, prefix) = entry.split_once('/').ok_or_else(invalid)?;
                let address: Ipv4Addr = address.parse().map_err(|_| invalid())?;
                let prefix: u32 = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(invalid)?;
                let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
                let network = u32::from(address) & mask;
                let broadcast = network | !mask;
                let (first, last) = if prefix < 31 {
                    (network + 1, broadcast - 1)
                } else {
                    (network, broadcast)
                };
                ranges.push((Ipv4Addr::from(first), Ipv4Addr::from(last)));
            }
        }
        Ok(Pool(ranges))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        self.0
            .iter()
            .any(|(first, last)| (*first..=*last).contains(&address))
    }

    /// The address for a Service asking for `requested`, none of `taken`: the requested one
    /// if it is in the pool and free, else the first free one.
    pub fn choose(&self, requested: Option<Ipv4Addr>, taken: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
        if let Some(address) = requested {
            return (self.contains(address) && !taken.contains(&address)).then_some(address);
        }
        for (first, last) in &self.0 {
            for raw in u32::from(*first)..=u32::from(*last) {
                let address = Ipv4Addr::from(raw);
                if !taken.contains(&address) {
                    return Some(address);
                }
            }
        }
        None
    }
}

fn wants_address(service: &Service) -> bool {
    service.spec.as_ref().is_some_and(|spec| {
        spec.type_.as_deref() == Some("LoadBalancer") && spec.load_balancer_class.is_none()
    })
}

fn ingress_ips(service: &Service) -> Vec<Ipv4Addr> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|ingress| ingress.ip.as_deref()?.parse().ok())
        .collect()
}

/// Whether `service` keeps `address` against the other holders in `services`: the oldest
/// (then the first by namespace and name) wins.
fn holds(service: &Service, address: Ipv4Addr, services: &[Service]) -> bool {
    let key = |s: &Service| {
        (
            s.metadata.creation_timestamp.clone().map(|t| t.0),
            s.namespace().unwrap_or_default(),
            s.name_any(),
        )
    };
    let mine = key(service);
    !services.iter().any(|other| {
        other.uid() != service.uid()
            && wants_address(other)
            && ingress_ips(other).contains(&address)
            && key(other) < mine
    })
}

/// Runs the controller (when the context has a pool).
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    if context.load_balancer_pool.is_empty() {
        return;
    }
    let controller = Controller::new(
        Api::<Service>::all(context.client.clone()),
        watcher::Config::default(),
    );
    // One allocation at a time, from a fresh list: two Services never get one address.
    let allocating = Arc::new(tokio::sync::Mutex::new(()));
    harness::run(NAME, controller, context, shutdown, move |service, context| {
        let allocating = allocating.clone();
        async move {
            let _one_at_a_time = allocating.lock().await;
            reconcile(service, context).await
        }
    })
    .await;
}

async fn reconcile(service: Arc<Service>, context: Arc<Context>) -> Result<Action, ReconcileError> {
    if service.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let api: Api<Service> = Api::namespaced(context.client.clone(), &service.namespace().unwrap_or_default());
    let name = service.name_any();
    let current = ingress_ips(&service);
    if !wants_address(&service) {
        let ours = service
            .spec
            .as_ref()
            .is_some_and(|s| s.load_balancer_class.is_none());
        if ours && !current.is_empty() {
            let patch = json!({"status": {"loadBalancer": {"ingress": null}}});
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        return Ok(Action::await_change());
    }
    let services = Api::<Service>::all(context.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let pool = &context.load_balancer_pool;
    if let Some(address) = current.first()
        && pool.contains(*address)
        && holds(&service, *address, &services)
    {
        return Ok(Action::await_change());
    }
    let taken: BTreeSet<Ipv4Addr> = services
        .iter()
        .filter(|other| other.uid() != service.uid() && wants_address(other))
        .flat_map(ingress_ips)
        .collect();
    let requested = service
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_ip.as_deref())
        .filter(|ip| !ip.is_empty())
        .and_then(|ip| ip.parse().ok());
    match pool.choose(requested, &taken) {
        Some(address) => {
            let patch = json!({"status": {"loadBalancer": {"ingress": [{"ip": address.to_string(), "ipMode": "VIP"}]}}});
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            tracing::info!(service = %format!("{}/{name}", service.namespace().unwrap_or_default()), %address, "assigned a load-balancer IP");
            Ok(Action::await_change())
        }
        None => {
            let note = match requested {
                Some(address) => format!("requested IP {address} is not in the pool or is in use"),
                None => "no available IPs in the load-balancer pool".to_owned(),
            };
            context
                .publish(
                    COMPONENT,
                    &service.object_ref(&()),
                    EventType::Warning,
                    "AllocationFailed",
                    note,
                )
                .await;
            Ok(Action::requeue(EXHAUSTED_RETRY))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(entries: &[&str]) -> Pool {
        Pool::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn pools_parse_cidrs_and_ranges() {
        assert_eq!(
            pool(&["192.0.2.240/30", "198.51.100.7-198.51.100.8"]).0,
            [
                ("192.0.2.241".parse().unwrap(), "192.0.2.242".parse().unwrap()),
                ("198.51.100.7".parse().unwrap(), "198.51.100.8".parse().unwrap())
            ]
        );
        assert_eq!(
            pool(&["192.0.2.9/32"]).0,
            [("192.0.2.9".parse().unwrap(), "192.0.2.9".parse().unwrap())]
        );
        for bad in ["192.0.2.0", "192.0.2.9-192.0.2.1", "x/24", "192.0.2.0/33"] {
            assert!(Pool::parse(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn choice_honours_requests_and_skips_taken_addresses() {
        let pool = pool(&["192.0.2.240/30"]);
        let taken: BTreeSet<Ipv4Addr> = ["192.0.2.241".parse().unwrap()].into();
        assert_eq!(pool.choose(None, &taken), Some("192.0.2.242".parse().unwrap()));
        assert_eq!(
            pool.choose(Some("192.0.2.242".parse().unwrap()), &taken),
            Some("192.0.2.242".parse().unwrap())
        );
        assert_eq!(
            pool.choose(Some("192.0.2.241".parse().unwrap()), &taken),
            None,
            "in use"
        );
        assert_eq!(
            pool.choose(Some("10.0.0.1".parse().unwrap()), &taken),
            None,
            "outside the pool"
        );
        let full: BTreeSet<Ipv4Addr> =
            ["192.0.2.241".parse().unwrap(), "192.0.2.242".parse().unwrap()].into();
        assert_eq!(pool.choose(None, &full), None);
    }
}
