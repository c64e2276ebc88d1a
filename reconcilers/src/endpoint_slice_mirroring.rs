//! The EndpointSlice mirroring controller (upstream: pkg/controller/endpointslicemirroring):
//! for a Service without a selector, the Endpoints its user maintains are mirrored into
//! EndpointSlices managed by `endpointslicemirroring-controller.k8s.io`, owned by the
//! Endpoints, one slice per address type and port set, at most 1000 addresses a subset.
//! Endpoints labelled `endpointslice.kubernetes.io/skip-mirror: "true"` (like the API
//! server's `kubernetes` Endpoints) or holding a leader election record are not mirrored.
//!
//! It only writes slices it manages, and never Endpoints. Mirrored slices whose Endpoints
//! are deleted go with the garbage collector (through their owner reference).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::endpoint_slice::{MANAGED_BY, SERVICE_NAME};
use crate::endpoints::{LAST_CHANGE_TRIGGER_TIME, api_message, namespace_terminating, repack};
use crate::harness::{self, Context, ReconcileError, is_conflict, is_not_found};
use crate::pods;

/// The controller's name in `--controllers`.
pub const NAME: &str = "endpointslice-mirroring-controller";
/// This controller's value of the managed-by label.
const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
/// The label that keeps Endpoints from being mirrored.
const SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
/// The annotation of leader election records kept in Endpoints.
const LEADER_ELECTION: &str = "control-plane.alpha.kubernetes.io/leader";
/// The annotation kubectl keeps the last applied configuration in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The most addresses of one subset mirrored (`--mirroring-max-endpoints-per-subset`).
const MAX_ENDPOINTS_PER_SUBSET: usize = 1000;

/// A slice's address type and ports, as a key.
type SliceKey = (String, Vec<(String, i32, String, String)>);

fn slice_key(address_type: &str, ports: &[EndpointPort]) -> SliceKey {
    let mut ports: Vec<(String, i32, String, String)> = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or_default(),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.app_protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    ports.sort();
    (address_type.to_owned(), ports)
}

/// The identity of an endpoint (as the EndpointSlice controller's endpoint hash).
type EndpointKey = (Vec<String>, String, String, String);

fn endpoint_key(endpoint: &Endpoint) -> EndpointKey {
    let mut addresses = endpoint.addresses.clone();
    addresses.sort();
    let target = endpoint.target_ref.as_ref();
    (
        addresses,
        endpoint.hostname.clone().unwrap_or_default(),
        target.and_then(|t| t.namespace.clone()).unwrap_or_default(),
        target.and_then(|t| t.name.clone()).unwrap_or_default(),
    )
}

fn same_beyond_key(a: &Endpoint, b: &Endpoint) -> bool {
    let ready = |e: &Endpoint| e.conditions.as_ref().and_then(|c| c.ready);
    let serving = |e: &Endpoint| e.conditions.as_ref().and_then(|c| c.serving);
    let terminating = |e: &Endpoint| e.conditions.as_ref().and_then(|c| c.terminating);
    let target = |e: &Endpoint| {
        e.target_ref.clone().map(|mut t| {
            t.resource_version = None;
            t
        })
    };
    a.node_name == b.node_name
        && a.zone == b.zone
        && ready(a) == ready(b)
        && serving(a) == serving(b)
        && terminating(a) == terminating(b)
        && target(a) == target(b)
}

/// Whether the Endpoints are mirrored at all.
fn should_mirror(endpoints: &Endpoints) -> bool {
    endpoints.labels().get(SKIP_MIRROR).map(String::as_str) != Some("true")
        && !endpoints.annotations().contains_key(LEADER_ELECTION)
}

/// The endpoint of an address and its address type; `None` for an address that is no IP.
fn address_to_endpoint(address: &EndpointAddress, ready: bool) -> Option<(Endpoint, &'static str)> {
    let ip: IpAddr = address.ip.parse().ok()?;
    let address_type = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let endpoint = Endpoint {
        addresses: vec![ip.to_string()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            ..EndpointConditions::default()
        }),
        target_ref: address.target_ref.clone(),
        node_name: address.node_name.clone(),
        hostname: address.hostname.clone().filter(|h| !h.is_empty()),
        ..Endpoint::default()
    };
    Some((endpoint, address_type))
}

/// The annotations mirrored from the Endpoints.
fn mirrored_annotations(endpoints: &Endpoints) -> BTreeMap<String, String> {
    endpoints
        .annotations()
        .iter()
        .filter(|(k, _)| k.as_str() != LAST_CHANGE_TRIGGER_TIME && k.as_str() != LAST_APPLIED)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn new_slice(
    endpoints: &Endpoints,
    ports: &[EndpointPort],
    address_type: &str,
    name: Option<String>,
) -> EndpointSlice {
    let mut labels = endpoints.labels().clone();
    labels.insert(SERVICE_NAME.into(), endpoints.name_any());
    labels.insert(MANAGED_BY.into(), CONTROLLER_NAME.into());
    let annotations = mirrored_annotations(endpoints);
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: name.is_none().then(|| format!("{}-", endpoints.name_any())),
            name,
            namespace: endpoints.namespace(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![pods::controller_ref(endpoints)]),
            ..ObjectMeta::default()
        },
        address_type: address_type.to_owned(),
        endpoints: Vec::new(),
        ports: (!ports.is_empty()).then(|| ports.to_vec()),
    }
}

/// What to write for one Endpoints object, and what to tell its owner.
#[derive(Debug, Default)]
struct Plan {
    create: Vec<EndpointSlice>,
    update: Vec<EndpointSlice>,
    delete: Vec<EndpointSlice>,
    invalid: usize,
    skipped: usize,
}

/// The writes that mirror `endpoints` into `existing` (upstream's mirroring `reconcile`).
fn plan(endpoints: &Endpoints, existing: Vec<EndpointSlice>, max: usize) -> Plan {
    let mut plan = Plan::default();
    let mut desired: BTreeMap<SliceKey, (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)> =
        BTreeMap::new();
    for subset in repack(endpoints.subsets.as_deref().unwrap_or_default()) {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        for address_type in ["IPv4", "IPv6"] {
            desired
                .entry(slice_key(address_type, &ports))
                .or_insert_with(|| (ports.clone(), BTreeMap::new()));
        }
        let listed = subset
            .addresses
            .iter()
            .flatten()
            .map(|a| (a, true))
            .chain(subset.not_ready_addresses.iter().flatten().map(|a| (a, false)));
        let mut total = 0;
        let mut added = 0;
        for (address, ready) in listed {
            total += 1;
            if added >= max {
                continue;
            }
            match address_to_endpoint(address, ready) {
                Some((endpoint, address_type)) => {
                    if let Some(entry) = desired.get_mut(&slice_key(address_type, &ports)) {
                        entry.1.insert(endpoint_key(&endpoint), endpoint);
                    }
                    added += 1;
                }
                None => plan.invalid += 1,
            }
        }
        plan.skipped += total - added;
    }
    let mut existing_by_key: BTreeMap<SliceKey, Vec<EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        existing_by_key
            .entry(slice_key(
                &slice.address_type,
                slice.ports.as_deref().unwrap_or_default(),
            ))
            .or_default()
            .push(slice);
    }
    for (key, (ports, wanted)) in desired {
        let mut slices = existing_by_key.remove(&key).unwrap_or_default();
        slices.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        if wanted.is_empty() {
            plan.delete.extend(slices);
            continue;
        }
        let mut slices = slices.into_iter();
        let first = slices.next();
        plan.delete.extend(slices);
        if let Some(first) = first.as_ref()
            && unchanged(endpoints, first, &wanted)
        {
            continue;
        }
        let name = first.as_ref().map(ResourceExt::name_any);
        let mut slice = new_slice(endpoints, &ports, &key.0, name);
        if let Some(first) = first {
            slice.metadata.resource_version = first.metadata.resource_version;
        }
        slice.endpoints = wanted.into_values().take(max).collect();
        if slice.metadata.name.is_some() {
            plan.update.push(slice);
        } else {
            plan.create.push(slice);
        }
    }
    for slices in existing_by_key.into_values() {
        plan.delete.extend(slices);
    }
    // Reuse slices about to be deleted for slices about to be created, per address type.
    let mut index = 0;
    while index < plan.create.len() {
        let address_type = plan.create[index].address_type.clone();
        match plan.delete.iter().position(|s| s.address_type == address_type) {
            Some(position) => {
                let old = plan.delete.remove(position);
                let mut slice = plan.create.remove(index);
                slice.metadata.generate_name = None;
                slice.metadata.name = old.metadata.name;
                slice.metadata.resource_version = old.metadata.resource_version;
                plan.update.push(slice);
            }
            None => index += 1,
        }
    }
    plan
}

/// Whether the first existing slice already mirrors the endpoints exactly.
fn unchanged(endpoints: &Endpoints, slice: &EndpointSlice, wanted: &BTreeMap<EndpointKey, Endpoint>) -> bool {
    let mut matched = 0;
    for endpoint in &slice.endpoints {
        match wanted.get(&endpoint_key(endpoint)) {
            Some(want) if same_beyond_key(want, endpoint) => matched += 1,
            _ => return false,
        }
    }
    if matched != wanted.len() {
        return false;
    }
    let mut labels = slice.labels().clone();
    labels.remove(MANAGED_BY);
    labels.remove(SERVICE_NAME);
    let rebuild = slice.owner_references().iter().any(|o| {
        o.kind == "Endpoints"
            && o.name == endpoints.name_any()
            && Some(&o.uid) != endpoints.metadata.uid.as_ref()
    });
    &labels == endpoints.labels() && &mirrored_annotations(endpoints) == slice.annotations() && !rebuild
}

struct State {
    services: Store<Service>,
    slices: Store<EndpointSlice>,
}

/// Runs the mirroring controller.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let controller = Controller::new(Api::<Endpoints>::all(client.clone()), watcher::Config::default());
    let (services, service_writer) = reflector::store::<Service>();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let service_events = watcher(Api::<Service>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(service_writer)
        .touched_objects();
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY}={CONTROLLER_NAME}"));
    let slice_events = watcher(Api::<EndpointSlice>::all(client), managed)
        .default_backoff()
        .reflect(slice_writer)
        .touched_objects();
    let controller = controller
        .watches_stream(service_events, |service: Service| {
            Some(
                ObjectRef::<Endpoints>::new(&service.name_any())
                    .within(&service.namespace().unwrap_or_default()),
            )
        })
        .watches_stream(slice_events, |slice: EndpointSlice| {
            let name = slice.labels().get(SERVICE_NAME)?.clone();
            Some(ObjectRef::<Endpoints>::new(&name).within(&slice.namespace().unwrap_or_default()))
        });
    let state = Arc::new(State { services, slices });
    harness::run(NAME, controller, context, shutdown, move |endpoints, context| {
        let state = state.clone();
        async move { Box::pin(sync_endpoints(endpoints, context, state)).await }
    })
    .await;
}

async fn sync_endpoints(
    endpoints: Arc<Endpoints>,
    context: Arc<Context>,
    state: Arc<State>,
) -> Result<Action, ReconcileError> {
    if state.services.wait_until_ready().await.is_err() || state.slices.wait_until_ready().await.is_err() {
        return Ok(Action::await_change());
    }
    let namespace = endpoints.namespace().unwrap_or_default();
    let name = endpoints.name_any();
    let existing: Vec<EndpointSlice> = state
        .slices
        .state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|s| s.labels().get(SERVICE_NAME) == Some(&name))
        .map(|s| (**s).clone())
        .collect();
    let service = state.services.get(&ObjectRef::new(&name).within(&namespace));
    let mirrored = should_mirror(&endpoints)
        && service
            .as_ref()
            .is_some_and(|s| s.spec.as_ref().is_none_or(|spec| spec.selector.is_none()));
    let plan = if mirrored {
        plan(&endpoints, existing, MAX_ENDPOINTS_PER_SUBSET)
    } else {
        Plan {
            delete: existing,
            ..Plan::default()
        }
    };
    let reference = endpoints.object_ref(&());
    if plan.invalid > 0 {
        let note = format!(
            "Skipped {} invalid IP addresses when mirroring to EndpointSlices",
            plan.invalid
        );
        context
            .publish(
                CONTROLLER_NAME,
                &reference,
                EventType::Warning,
                "InvalidIPAddress",
                note,
            )
            .await;
    }
    if plan.skipped > plan.invalid {
        let note = format!(
            "A max of {MAX_ENDPOINTS_PER_SUBSET} addresses can be mirrored to EndpointSlices per Endpoints subset. {} addresses were skipped",
            plan.skipped
        );
        context
            .publish(
                CONTROLLER_NAME,
                &reference,
                EventType::Warning,
                "TooManyAddressesToMirror",
                note,
            )
            .await;
    }
    if let Err(err) = write(&endpoints, &context, &plan).await {
        if let Some(service) = service {
            let note = format!(
                "Error updating EndpointSlices for Endpoints {namespace}/{name}: {}",
                api_message(&err)
            );
            context
                .publish(
                    CONTROLLER_NAME,
                    &service.object_ref(&()),
                    EventType::Warning,
                    "FailedToUpdateEndpointSlices",
                    note,
                )
                .await;
        }
        if is_conflict(&err) {
            // The slice cache is behind a write; the watch brings the Endpoints back.
            return Ok(Action::await_change());
        }
        return Err(err.into());
    }
    Ok(Action::await_change())
}

async fn write(endpoints: &Endpoints, context: &Context, plan: &Plan) -> Result<(), kube::Error> {
    let namespace = endpoints.namespace().unwrap_or_default();
    let api: Api<EndpointSlice> = Api::namespaced(context.client.clone(), &namespace);
    let params = PostParams::default();
    if endpoints.metadata.deletion_timestamp.is_none() {
        for slice in &plan.create {
            match api.create(&params, slice).await {
                Ok(_) => {}
                Err(err) if namespace_terminating(&err) => return Ok(()),
                Err(err) => return Err(err),
            }
        }
    }
    for slice in &plan.update {
        api.replace(&slice.name_any(), &params, slice).await?;
    }
    for slice in &plan.delete {
        match api.delete(&slice.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn endpoints(subsets: serde_json::Value) -> Endpoints {
        let mut value = json!({"metadata": {"name": "db", "namespace": "default", "uid": "ep-uid",
            "labels": {"app": "db"}, "annotations": {"note": "x", LAST_CHANGE_TRIGGER_TIME: "t"}}});
        value["subsets"] = subsets;
        serde_json::from_value(value).unwrap()
    }

    fn named(plan: &Plan) -> Vec<EndpointSlice> {
        plan.create
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut s = s.clone();
                s.metadata.name = Some(format!("db-{i}"));
                s
            })
            .chain(plan.update.iter().cloned())
            .collect()
    }

    #[test]
    fn endpoints_are_mirrored_per_address_type_and_ports() {
        let ep = endpoints(json!([
            {"addresses": [{"ip": "10.1.0.1", "nodeName": "n1", "hostname": "a"}, {"ip": "fd00::1"}],
             "notReadyAddresses": [{"ip": "10.1.0.2"}, {"ip": "not-an-ip"}],
             "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}
        ]));
        let plan = plan(&ep, Vec::new(), 1000);
        assert_eq!(plan.invalid, 1);
        assert_eq!(plan.create.len(), 2);
        let v4 = plan.create.iter().find(|s| s.address_type == "IPv4").unwrap();
        assert_eq!(v4.metadata.generate_name.as_deref(), Some("db-"));
        let labels = v4.labels();
        assert_eq!(labels.get(MANAGED_BY).map(String::as_str), Some(CONTROLLER_NAME));
        assert_eq!(labels.get(SERVICE_NAME).map(String::as_str), Some("db"));
        assert_eq!(labels.get("app").map(String::as_str), Some("db"));
        let annotations = v4.annotations();
        assert_eq!(annotations.get("note").map(String::as_str), Some("x"));
        assert!(!annotations.contains_key(LAST_CHANGE_TRIGGER_TIME));
        let owner = &v4.owner_references()[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str()), ("Endpoints", "ep-uid"));
        let ready: Vec<(&str, Option<bool>, Option<&str>)> = v4
            .endpoints
            .iter()
            .map(|e| {
                (
                    e.addresses[0].as_str(),
                    e.conditions.as_ref().unwrap().ready,
                    e.hostname.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            ready,
            [
                ("10.1.0.1", Some(true), Some("a")),
                ("10.1.0.2", Some(false), None)
            ]
        );
        assert_eq!(v4.ports.as_ref().unwrap()[0].port, Some(5432));
        // Mirrored once, nothing more to do.
        let again = plan_of(&ep, named(&plan));
        assert!(
            again.create.is_empty() && again.update.is_empty() && again.delete.is_empty(),
            "{again:?}"
        );
    }

    fn plan_of(ep: &Endpoints, existing: Vec<EndpointSlice>) -> Plan {
        plan(ep, existing, 1000)
    }

    #[test]
    fn changes_rewrite_the_slice_in_place_and_empty_sets_are_deleted() {
        let ep = endpoints(json!([{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 80}]}]));
        let slices = named(&plan_of(&ep, Vec::new()));
        let changed = endpoints(
            json!([{"addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.3"}], "ports": [{"port": 80}]}]),
        );
        let next = plan_of(&changed, slices.clone());
        assert!(next.create.is_empty() && next.delete.is_empty());
        assert_eq!(next.update.len(), 1);
        assert_eq!(next.update[0].name_any(), slices[0].name_any());
        assert_eq!(next.update[0].endpoints.len(), 2);
        // New ports: the old slice is reused for the new port set.
        let ported = endpoints(json!([{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 81}]}]));
        let next = plan_of(&ported, slices.clone());
        assert!(next.create.is_empty() && next.delete.is_empty());
        assert_eq!(next.update[0].name_any(), slices[0].name_any());
        // No addresses: the slice goes.
        let empty = endpoints(json!([]));
        let next = plan_of(&empty, slices);
        assert_eq!(next.delete.len(), 1);
        assert!(next.create.is_empty() && next.update.is_empty());
    }

    #[test]
    fn at_most_max_addresses_of_a_subset_are_mirrored() {
        let addresses: Vec<serde_json::Value> =
            (0..5).map(|i| json!({"ip": format!("10.1.0.{i}")})).collect();
        let ep = endpoints(json!([{"addresses": addresses, "ports": [{"port": 80}]}]));
        let plan = plan(&ep, Vec::new(), 3);
        assert_eq!(plan.skipped, 2);
        assert_eq!(plan.create[0].endpoints.len(), 3);
    }

    #[test]
    fn skip_mirror_and_leader_election_records_are_not_mirrored() {
        let mut ep = endpoints(json!([]));
        assert!(should_mirror(&ep));
        ep.metadata.labels = Some([(SKIP_MIRROR.to_owned(), "true".to_owned())].into());
        assert!(!should_mirror(&ep));
        ep.metadata.labels = None;
        ep.metadata.annotations = Some([(LEADER_ELECTION.to_owned(), "{}".to_owned())].into());
        assert!(!should_mirror(&ep));
    }
}
