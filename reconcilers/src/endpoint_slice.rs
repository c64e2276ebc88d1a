//! The EndpointSlice controller (upstream: pkg/controller/endpointslice with the reconciler of
//! k8s.io/endpointslice): EndpointSlices for every Service with a selector, one set per
//! address family, at most 100 endpoints each, named `<service>-<suffix>`, owned by the
//! Service and labelled with its name and `endpointslice.kubernetes.io/managed-by:
//! endpointslice-controller.k8s.io`. Changes are made with upstream's minimal churn: existing
//! slices are kept, emptied slices deleted or reused, new endpoints go first into slices that
//! are being updated anyway, a placeholder slice stands for a service without endpoints.
//!
//! It only writes slices it manages; slices of deleted services go with the garbage
//! collector (through their owner reference). Topology hints are not computed.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::endpoints::{
    HEADLESS, LAST_CHANGE_TRIGGER_TIME, TriggerTimes, api_message, find_port, format_time, is_service_ip_set,
    namespace_terminating, pod_ips, pod_reference, pod_triggers, pods_of, selector_of,
    should_pod_be_in_endpoints, should_set_hostname,
};
use crate::harness::{self, Context, ReconcileError, is_conflict, is_not_found};
use crate::pods;

/// The controller's name in `--controllers`.
pub const NAME: &str = "endpointslice-controller";
/// The label naming the controller that manages a slice.
pub(crate) const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value of [`MANAGED_BY`].
const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// The label naming the service of a slice.
pub(crate) const SERVICE_NAME: &str = "kubernetes.io/service-name";
/// The node label giving its zone.
const ZONE: &str = "topology.kubernetes.io/zone";
/// The most endpoints in one slice (kube-controller-manager's `--max-endpoints-per-slice`).
const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// How soon to look again while the slice cache lags behind this controller's writes.
const STALE_RETRY: Duration = Duration::from_millis(100);
/// How long a write is waited for in the cache before it is assumed seen.
const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a service's slices could not be fully reconciled.
#[derive(Debug, thiserror::Error)]
enum SliceError {
    /// A pod names a node the cache does not know; it is left out until the node appears.
    #[error("skipping Pod {pod} for Service {namespace}/{service}: Node {node} Not Found")]
    NodeNotFound {
        /// The pod.
        pod: String,
        /// The service's namespace.
        namespace: String,
        /// The service.
        service: String,
        /// The node.
        node: String,
    },
}

/// The identity of an endpoint within its slices (upstream's endpoint hash): its sorted
/// addresses, hostname and pod.
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

/// A set of ports as a key: sorted, defaults filled in.
type PortsKey = Vec<(String, i32, String, String)>;

fn ports_key(ports: &[EndpointPort]) -> PortsKey {
    let mut key: PortsKey = ports
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
    key.sort();
    key
}

/// Whether two endpoints with the same key differ in what the key leaves out (upstream's
/// `EndpointsEqualBeyondHash`).
fn equal_beyond_key(a: &Endpoint, b: &Endpoint) -> bool {
    let conditions = |e: &Endpoint| {
        let c = e.conditions.clone().unwrap_or_default();
        (c.ready, c.serving, c.terminating)
    };
    let target = |e: &Endpoint| {
        e.target_ref.clone().map(|mut t| {
            t.resource_version = None;
            t
        })
    };
    a.node_name == b.node_name && a.zone == b.zone && conditions(a) == conditions(b) && target(a) == target(b)
}

/// The address types a service's slices have: from its IP families, else its cluster IP,
/// else both.
fn address_types(service: &Service) -> Vec<&'static str> {
    let spec = service.spec.as_ref();
    let mut types: Vec<&'static str> = spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|f| match f.as_str() {
            "IPv4" => Some("IPv4"),
            "IPv6" => Some("IPv6"),
            _ => None,
        })
        .collect();
    if types.is_empty() {
        if is_service_ip_set(service) {
            let v6 = spec
                .and_then(|s| s.cluster_ip.as_deref())
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .is_some_and(|ip| ip.is_ipv6());
            types.push(if v6 { "IPv6" } else { "IPv4" });
        } else {
            types = vec!["IPv4", "IPv6"];
        }
    }
    types.sort_unstable();
    types.dedup();
    types
}

/// The ports of the pod's endpoint (upstream's `getEndpointPorts`).
fn endpoint_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let Some(spec) = service.spec.as_ref() else {
        return Vec::new();
    };
    spec.ports
        .iter()
        .flatten()
        .filter_map(|port| {
            let number = find_port(pod, port)?;
            Some(EndpointPort {
                name: Some(port.name.clone().unwrap_or_default()),
                port: Some(number),
                protocol: Some(port.protocol.clone().unwrap_or_else(|| "TCP".into())),
                app_protocol: port.app_protocol.clone(),
            })
        })
        .collect()
}

/// The endpoint of a pod (upstream's `podToEndpoint`).
fn pod_to_endpoint(pod: &Pod, node: Option<&Node>, service: &Service, address_type: &str) -> Endpoint {
    let serving = pods::is_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let publish_not_ready = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let ready = publish_not_ready || (serving && !terminating);
    let v6 = address_type == "IPv6";
    let addresses = pod_ips(pod)
        .into_iter()
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .filter(|ip| ip.is_ipv6() == v6)
        .map(|ip| ip.to_string())
        .collect();
    let spec = pod.spec.as_ref();
    Endpoint {
        addresses,
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(pod_reference(pod)),
        node_name: spec.and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()),
        zone: node
            .and_then(|n| n.metadata.labels.as_ref())
            .and_then(|l| l.get(ZONE))
            .filter(|z| !z.is_empty())
            .cloned(),
        hostname: if should_set_hostname(pod, service) {
            spec.and_then(|s| s.hostname.clone())
        } else {
            None
        },
        ..Endpoint::default()
    }
}

fn is_reserved_label(key: &str) -> bool {
    key == SERVICE_NAME || key == MANAGED_BY || key == HEADLESS
}

/// The labels a slice of the service carries, and whether the slice's own labels (reserved
/// ones aside) differ from the service's (upstream's `setEndpointSliceLabels`).
fn slice_labels(slice: &EndpointSlice, service: &Service) -> (BTreeMap<String, String>, bool) {
    let own: BTreeMap<String, String> = slice
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !is_reserved_label(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| !is_reserved_label(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let changed = own != labels;
    if !is_service_ip_set(service) {
        labels.insert(HEADLESS.into(), String::new());
    }
    labels.insert(SERVICE_NAME.into(), service.name_any());
    labels.insert(MANAGED_BY.into(), CONTROLLER_NAME.into());
    (labels, changed)
}

/// A new, empty slice of the service.
fn new_slice(service: &Service, ports: &[EndpointPort], address_type: &str) -> EndpointSlice {
    let mut slice = EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", service.name_any())),
            namespace: service.namespace(),
            owner_references: Some(vec![pods::controller_ref(service)]),
            ..ObjectMeta::default()
        },
        address_type: address_type.to_owned(),
        endpoints: Vec::new(),
        ports: (!ports.is_empty()).then(|| ports.to_vec()),
    };
    slice.metadata.labels = Some(slice_labels(&slice, service).0);
    slice
}

fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    slice.metadata.owner_references.iter().flatten().any(|o| {
        Some(&o.uid) == service.metadata.uid.as_ref() && o.kind == "Service" && o.api_version == "v1"
    })
}

/// Whether an existing slice is the placeholder the service would get (upstream compares
/// namespace, labels, owner references, address type, ports and endpoints).
fn is_placeholder_like(slice: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    slice.metadata.namespace == placeholder.metadata.namespace
        && slice.metadata.labels.clone().unwrap_or_default()
            == placeholder.metadata.labels.clone().unwrap_or_default()
        && slice.metadata.owner_references.clone().unwrap_or_default()
            == placeholder.metadata.owner_references.clone().unwrap_or_default()
        && slice.address_type == placeholder.address_type
        && slice.endpoints.is_empty()
        && slice.ports.as_ref().is_none_or(Vec::is_empty)
}

/// What to write for one service.
#[derive(Debug, Default)]
struct Plan {
    create: Vec<EndpointSlice>,
    update: Vec<EndpointSlice>,
    delete: Vec<EndpointSlice>,
    errors: Vec<SliceError>,
}

/// Computes the writes that make `existing` the service's slices (upstream's
/// `Reconciler.Reconcile` up to `finalize`).
fn plan(
    service: &Service,
    pods: &[Arc<Pod>],
    node: &dyn Fn(&str) -> Option<Arc<Node>>,
    existing: Vec<EndpointSlice>,
    max: usize,
) -> Plan {
    let types = address_types(service);
    let mut plan = Plan::default();
    let mut by_type: BTreeMap<String, Vec<EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        if types.contains(&slice.address_type.as_str()) {
            by_type.entry(slice.address_type.clone()).or_default().push(slice);
        } else {
            plan.delete.push(slice);
        }
    }
    for address_type in types {
        let existing = by_type.remove(address_type).unwrap_or_default();
        plan_address_type(service, pods, node, existing, address_type, max, &mut plan);
    }
    plan
}

#[allow(clippy::too_many_arguments)]
fn plan_address_type(
    service: &Service,
    pods: &[Arc<Pod>],
    node: &dyn Fn(&str) -> Option<Arc<Node>>,
    existing: Vec<EndpointSlice>,
    address_type: &str,
    max: usize,
    plan: &mut Plan,
) {
    let existing_count = existing.len();
    let mut create = Vec::new();
    let mut update = Vec::new();
    let mut delete = Vec::new();
    let mut existing_by_ports: BTreeMap<PortsKey, Vec<EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        if owned_by(&slice, service) {
            existing_by_ports
                .entry(ports_key(slice.ports.as_deref().unwrap_or_default()))
                .or_default()
                .push(slice);
        } else {
            delete.push(slice);
        }
    }
    let publish_not_ready = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let mut desired: BTreeMap<PortsKey, (Vec<EndpointPort>, BTreeMap<EndpointKey, Endpoint>)> =
        BTreeMap::new();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let ports = endpoint_ports(service, pod);
        let entry = desired
            .entry(ports_key(&ports))
            .or_insert_with(|| (ports, BTreeMap::new()));
        let node_name = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let found = node(&node_name);
        if found.is_none() && !publish_not_ready {
            plan.errors.push(SliceError::NodeNotFound {
                pod: pod.name_any(),
                namespace: service.namespace().unwrap_or_default(),
                service: service.name_any(),
                node: node_name,
            });
            continue;
        }
        let endpoint = pod_to_endpoint(pod, found.as_deref(), service, address_type);
        if !endpoint.addresses.is_empty() {
            entry.1.insert(endpoint_key(&endpoint), endpoint);
        }
    }
    for (key, (ports, endpoints)) in desired.iter_mut() {
        let slices = existing_by_ports.remove(key).unwrap_or_default();
        plan_ports(
            service,
            slices,
            std::mem::take(endpoints),
            ports,
            address_type,
            max,
            (&mut create, &mut update, &mut delete),
        );
    }
    // Slices of port sets no longer wanted.
    for slices in existing_by_ports.into_values() {
        delete.extend(slices);
    }
    if existing_count == delete.len() && create.is_empty() {
        let placeholder = new_slice(service, &[], address_type);
        if delete.len() == 1 && is_placeholder_like(&delete[0], &placeholder) {
            delete.clear();
        } else {
            create.push(placeholder);
        }
    }
    // Reuse slices about to be deleted for slices about to be created.
    let mut index = 0;
    while index < delete.len() {
        let Some(mut slice) = create.pop() else {
            break;
        };
        if delete[index].address_type == slice.address_type && owned_by(&delete[index], service) {
            let old = delete.remove(index);
            slice.metadata.name = old.metadata.name;
            slice.metadata.generate_name = None;
            slice.metadata.resource_version = old.metadata.resource_version;
            update.push(slice);
        } else {
            create.push(slice);
            index += 1;
        }
    }
    plan.create.extend(create);
    plan.update.extend(update);
    plan.delete.extend(delete);
}

/// Upstream's `reconcileByPortMapping`: the writes for the slices of one port set.
fn plan_ports(
    service: &Service,
    mut existing: Vec<EndpointSlice>,
    mut desired: BTreeMap<EndpointKey, Endpoint>,
    ports: &[EndpointPort],
    address_type: &str,
    max: usize,
    (create, update, delete): (
        &mut Vec<EndpointSlice>,
        &mut Vec<EndpointSlice>,
        &mut Vec<EndpointSlice>,
    ),
) {
    existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut to_update: Vec<EndpointSlice> = Vec::new();
    let mut unchanged: Vec<EndpointSlice> = Vec::new();
    for slice in existing {
        let mut kept = Vec::new();
        let mut changed = false;
        for endpoint in &slice.endpoints {
            if let Some(wanted) = desired.remove(&endpoint_key(endpoint)) {
                if !equal_beyond_key(&wanted, endpoint) {
                    changed = true;
                }
                kept.push(wanted);
            }
        }
        let (labels, labels_changed) = slice_labels(&slice, service);
        if changed || kept.len() != slice.endpoints.len() {
            if kept.is_empty() {
                delete.push(slice);
            } else {
                let mut slice = slice;
                slice.endpoints = kept;
                slice.metadata.labels = Some(labels);
                to_update.push(slice);
            }
        } else if labels_changed {
            let mut slice = slice;
            slice.metadata.labels = Some(labels);
            to_update.push(slice);
        } else {
            unchanged.push(slice);
        }
    }
    let mut pending = desired.into_values();
    let mut remaining = pending.len();
    // New endpoints go first into slices being updated anyway, fullest first.
    if remaining > 0 && !to_update.is_empty() {
        to_update.sort_by_key(|s| std::cmp::Reverse(s.endpoints.len()));
        for slice in &mut to_update {
            while remaining > 0 && slice.endpoints.len() < max {
                if let Some(endpoint) = pending.next() {
                    slice.endpoints.push(endpoint);
                }
                remaining -= 1;
            }
        }
    }
    while remaining > 0 {
        let mut fill = None;
        if remaining < max && !unchanged.is_empty() {
            // The unchanged slice the remaining endpoints fill most closely.
            let mut closest = max;
            for (i, slice) in unchanged.iter().enumerate() {
                let total = remaining + slice.endpoints.len();
                if total <= max && max - total < closest {
                    closest = max - total;
                    fill = Some(i);
                }
            }
        }
        let mut slice = match fill {
            Some(i) => unchanged.remove(i),
            None => new_slice(service, ports, address_type),
        };
        while remaining > 0 && slice.endpoints.len() < max {
            if let Some(endpoint) = pending.next() {
                slice.endpoints.push(endpoint);
            }
            remaining -= 1;
        }
        if slice.metadata.name.is_some() {
            to_update.push(slice);
        } else {
            create.push(slice);
        }
    }
    update.extend(to_update);
}

fn set_trigger_time(slice: &mut EndpointSlice, trigger: Option<Timestamp>) {
    let mut annotations = slice.metadata.annotations.take().unwrap_or_default();
    match trigger {
        Some(time) => annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), format_time(time)),
        None => annotations.remove(LAST_CHANGE_TRIGGER_TIME),
    };
    slice.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
}

/// What the controller waits to see in its cache after writing (upstream's
/// EndpointSliceTracker): a slice at least at a generation, or gone.
#[derive(Default)]
struct Tracker {
    services: Mutex<HashMap<(String, String), Expected>>,
}

/// Per slice name: the generation awaited (`None`: its deletion) and since when.
type Expected = HashMap<String, (Option<i64>, Instant)>;

impl Tracker {
    fn expect(&self, namespace: &str, service: &str, slice: &str, generation: Option<i64>) {
        if let Ok(mut services) = self.services.lock() {
            services
                .entry((namespace.to_owned(), service.to_owned()))
                .or_default()
                .insert(slice.to_owned(), (generation, Instant::now()));
        }
    }

    /// Whether the cache lags behind this controller's writes for the service.
    fn stale(&self, namespace: &str, service: &str, slices: &Store<EndpointSlice>) -> bool {
        let Ok(mut services) = self.services.lock() else {
            return false;
        };
        let key = (namespace.to_owned(), service.to_owned());
        let Some(expected) = services.get_mut(&key) else {
            return false;
        };
        expected.retain(|name, (generation, since)| {
            if since.elapsed() > EXPECTATION_TIMEOUT {
                return false;
            }
            let cached = slices.get(&ObjectRef::new(name).within(namespace));
            match (generation, cached) {
                (None, cached) => cached.is_some(),
                (Some(_), None) => true,
                (Some(generation), Some(slice)) => slice.metadata.generation.unwrap_or(0) < *generation,
            }
        });
        let stale = !expected.is_empty();
        if !stale {
            services.remove(&key);
        }
        stale
    }

    fn forget(&self, namespace: &str, service: &str) {
        if let Ok(mut services) = self.services.lock() {
            services.remove(&(namespace.to_owned(), service.to_owned()));
        }
    }
}

struct State {
    pods: Store<Pod>,
    nodes: Store<Node>,
    slices: Store<EndpointSlice>,
    triggers: TriggerTimes,
    tracker: Tracker,
}

/// Runs the EndpointSlice controller.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let controller = Controller::new(Api::<Service>::all(client.clone()), watcher::Config::default());
    let services = controller.store();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (nodes, node_writer) = reflector::store::<Node>();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY}={CONTROLLER_NAME}"));
    let slice_events = watcher(Api::<EndpointSlice>::all(client.clone()), managed)
        .default_backoff()
        .reflect(slice_writer)
        .touched_objects();
    // Nodes are kept for zones and to know which pods' nodes exist; a node change brings the
    // services of its pods back (upstream only retries them with backoff).
    let node_pods = pods.clone();
    let node_services = services.clone();
    let node_events = watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(node_writer)
        .touched_objects();
    let controller = controller
        .reconcile_on(pod_triggers(client.clone(), pod_writer, services))
        .watches_stream(slice_events, |slice: EndpointSlice| {
            let service = slice.labels().get(SERVICE_NAME)?.clone();
            Some(ObjectRef::<Service>::new(&service).within(&slice.namespace().unwrap_or_default()))
        })
        .watches_stream(node_events, move |node: Node| {
            services_on_node(&node, &node_pods, &node_services)
        });
    let state = Arc::new(State {
        pods,
        nodes,
        slices,
        triggers: TriggerTimes::default(),
        tracker: Tracker::default(),
    });
    harness::run(NAME, controller, context, shutdown, move |service, context| {
        let state = state.clone();
        async move { Box::pin(sync_service(service, context, state)).await }
    })
    .await;
}

/// The services selecting pods on a node that changed: pods skipped while their node was
/// unknown come in, and zones follow the node's label.
fn services_on_node(node: &Node, pods: &Store<Pod>, services: &Store<Service>) -> Vec<ObjectRef<Service>> {
    let name = node.name_any();
    let on_node: Vec<Arc<Pod>> = pods
        .state()
        .into_iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str()))
        .filter(|p| should_pod_be_in_endpoints(p, true))
        .collect();
    if on_node.is_empty() {
        return Vec::new();
    }
    let empty = BTreeMap::new();
    services
        .state()
        .iter()
        .filter(|s| {
            selector_of(s).is_some_and(|selector| {
                on_node.iter().any(|p| {
                    p.metadata.namespace == s.metadata.namespace
                        && selector.matches(p.metadata.labels.as_ref().unwrap_or(&empty))
                })
            })
        })
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

async fn sync_service(
    service: Arc<Service>,
    context: Arc<Context>,
    state: Arc<State>,
) -> Result<Action, ReconcileError> {
    for ready in [
        state.pods.wait_until_ready().await,
        state.nodes.wait_until_ready().await,
        state.slices.wait_until_ready().await,
    ] {
        if ready.is_err() {
            return Ok(Action::await_change());
        }
    }
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let Some(selector) = selector_of(&service) else {
        return Ok(Action::await_change());
    };
    if state.tracker.stale(&namespace, &name, &state.slices) {
        return Ok(Action::requeue(STALE_RETRY));
    }
    let pods = pods_of(&service, &selector, &state.pods);
    let trigger = state.triggers.compute(&service, &pods);
    let existing: Vec<EndpointSlice> = state
        .slices
        .state()
        .iter()
        .filter(|s| s.metadata.namespace.as_deref() == Some(namespace.as_str()))
        .filter(|s| s.labels().get(SERVICE_NAME) == Some(&name))
        .map(|s| (**s).clone())
        .collect();
    let nodes = state.nodes.clone();
    let lookup = move |node: &str| nodes.get(&ObjectRef::new(node));
    let mut plan = plan(&service, &pods, &lookup, existing, MAX_ENDPOINTS_PER_SLICE);
    let result = write(&service, &context, &state, &mut plan, trigger).await;
    if let Err(err) = &result {
        let message = format!(
            "Error updating Endpoint Slices for Service {namespace}/{name}: {}",
            api_message(err)
        );
        context
            .publish(
                CONTROLLER_NAME,
                &service.object_ref(&()),
                EventType::Warning,
                "FailedToUpdateEndpointSlices",
                message,
            )
            .await;
    }
    result?;
    if service.meta().deletion_timestamp.is_some() {
        state.triggers.forget(&namespace, &name);
        state.tracker.forget(&namespace, &name);
    }
    if let Some(err) = plan.errors.first() {
        return Err(ReconcileError::Invalid(err.to_string()));
    }
    Ok(Action::await_change())
}

/// Carries out a plan: creates (not while the service is being deleted), updates, deletes.
async fn write(
    service: &Service,
    context: &Context,
    state: &State,
    plan: &mut Plan,
    trigger: Option<Timestamp>,
) -> Result<(), kube::Error> {
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let api: Api<EndpointSlice> = Api::namespaced(context.client.clone(), &namespace);
    let params = PostParams::default();
    if service.meta().deletion_timestamp.is_none() {
        for slice in &mut plan.create {
            set_trigger_time(slice, trigger);
            match api.create(&params, slice).await {
                Ok(created) => {
                    state.tracker.expect(
                        &namespace,
                        &name,
                        &created.name_any(),
                        created.metadata.generation,
                    );
                }
                Err(err) if namespace_terminating(&err) => return Ok(()),
                Err(err) => return Err(err),
            }
        }
    }
    for slice in &mut plan.update {
        set_trigger_time(slice, trigger);
        let slice_name = slice.name_any();
        match api.replace(&slice_name, &params, slice).await {
            Ok(updated) => {
                state
                    .tracker
                    .expect(&namespace, &name, &slice_name, updated.metadata.generation);
            }
            // A stale cache: the watch brings the service back.
            Err(err) if is_conflict(&err) || is_not_found(&err) => return Ok(()),
            Err(err) => return Err(err),
        }
    }
    for slice in &plan.delete {
        let slice_name = slice.name_any();
        match api.delete(&slice_name, &DeleteParams::default()).await {
            Ok(_) => state.tracker.expect(&namespace, &name, &slice_name, None),
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

    fn service(spec: serde_json::Value) -> Service {
        let mut service = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "svc-uid", "labels": {"team": "a"}},
        });
        service["spec"] = spec;
        serde_json::from_value(service).unwrap()
    }

    fn web() -> Service {
        service(
            json!({"selector": {"app": "web"}, "clusterIP": "10.0.0.1", "ipFamilies": ["IPv4"],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}),
        )
    }

    fn pod(i: usize, ready: bool) -> Arc<Pod> {
        let ip = format!("10.244.{}.{}", i / 200, i % 200 + 2);
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": format!("p{i:03}"), "namespace": "default", "uid": format!("uid-{i}"),
                    "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]},
                "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                    "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
            }))
            .unwrap(),
        )
    }

    fn nodes(name: &str) -> Option<Arc<Node>> {
        (name == "n1").then(|| {
            Arc::new(
                serde_json::from_value(json!({"metadata": {"name": "n1",
                    "labels": {"topology.kubernetes.io/zone": "zone-a"}}}))
                .unwrap(),
            )
        })
    }

    /// Applies a plan as the API server would, naming created slices.
    fn apply(existing: Vec<EndpointSlice>, plan: &Plan, counter: &mut usize) -> Vec<EndpointSlice> {
        let mut slices: BTreeMap<String, EndpointSlice> =
            existing.into_iter().map(|s| (s.name_any(), s)).collect();
        for slice in &plan.delete {
            slices.remove(&slice.name_any());
        }
        for slice in &plan.update {
            slices.insert(slice.name_any(), slice.clone());
        }
        for slice in &plan.create {
            let mut slice = slice.clone();
            *counter += 1;
            slice.metadata.name = Some(format!("web-{counter}"));
            slices.insert(slice.name_any(), slice);
        }
        slices.into_values().collect()
    }

    #[test]
    fn endpoints_carry_conditions_node_zone_and_pod() {
        let svc = web();
        let plan = plan(&svc, &[pod(0, true), pod(1, false)], &nodes, Vec::new(), 100);
        assert_eq!(plan.create.len(), 1);
        let slice = &plan.create[0];
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(slice.address_type, "IPv4");
        let labels = slice.metadata.labels.clone().unwrap();
        assert_eq!(labels.get(SERVICE_NAME).map(String::as_str), Some("web"));
        assert_eq!(labels.get(MANAGED_BY).map(String::as_str), Some(CONTROLLER_NAME));
        assert_eq!(labels.get("team").map(String::as_str), Some("a"));
        let owner = &slice.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("Service", "svc-uid", Some(true))
        );
        let port = &slice.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.port, port.protocol.as_deref()),
            (Some("http"), Some(8080), Some("TCP"))
        );
        let ready: Vec<(Option<bool>, Option<bool>)> = slice
            .endpoints
            .iter()
            .map(|e| {
                let c = e.conditions.clone().unwrap();
                (c.ready, c.serving)
            })
            .collect();
        assert_eq!(ready, [(Some(true), Some(true)), (Some(false), Some(false))]);
        assert_eq!(slice.endpoints[0].zone.as_deref(), Some("zone-a"));
        assert_eq!(slice.endpoints[0].node_name.as_deref(), Some("n1"));
        assert_eq!(
            slice.endpoints[0].target_ref.as_ref().unwrap().name.as_deref(),
            Some("p000")
        );
    }

    #[test]
    fn terminating_pods_stay_serving_but_not_ready() {
        let mut terminating = (*pod(0, true)).clone();
        terminating.metadata.deletion_timestamp = Some(pods::now());
        let plan = plan(&web(), &[Arc::new(terminating)], &nodes, Vec::new(), 100);
        let c = plan.create[0].endpoints[0].conditions.clone().unwrap();
        assert_eq!(
            (c.ready, c.serving, c.terminating),
            (Some(false), Some(true), Some(true))
        );
    }

    #[test]
    fn a_service_without_endpoints_gets_one_placeholder() {
        let svc = web();
        let first = plan(&svc, &[], &nodes, Vec::new(), 100);
        assert_eq!(first.create.len(), 1);
        assert!(first.create[0].endpoints.is_empty());
        let mut n = 0;
        let slices = apply(Vec::new(), &first, &mut n);
        let again = plan(&svc, &[], &nodes, slices, 100);
        assert!(
            again.create.is_empty() && again.update.is_empty() && again.delete.is_empty(),
            "{again:?}"
        );
    }

    #[test]
    fn a_pod_on_an_unknown_node_is_skipped_with_an_error() {
        let mut lost = (*pod(0, true)).clone();
        lost.spec.as_mut().unwrap().node_name = Some("gone".into());
        let plan = plan(&web(), &[Arc::new(lost), pod(1, true)], &nodes, Vec::new(), 100);
        assert_eq!(plan.create[0].endpoints.len(), 1);
        assert_eq!(
            plan.errors[0].to_string(),
            "skipping Pod p000 for Service default/web: Node gone Not Found"
        );
    }

    #[test]
    fn slices_hold_at_most_max_and_change_little() {
        let svc = web();
        let mut n = 0;
        let all: Vec<Arc<Pod>> = (0..250).map(|i| pod(i, true)).collect();
        let first = plan(&svc, &all, &nodes, Vec::new(), 100);
        let sizes: Vec<usize> = first.create.iter().map(|s| s.endpoints.len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
        let slices = apply(Vec::new(), &first, &mut n);
        // Nothing changed: nothing to write.
        let same = plan(&svc, &all, &nodes, slices.clone(), 100);
        assert!(same.create.is_empty() && same.update.is_empty() && same.delete.is_empty());
        // One pod more: one slice updated, no slice created.
        let more: Vec<Arc<Pod>> = (0..251).map(|i| pod(i, true)).collect();
        let grow = plan(&svc, &more, &nodes, slices.clone(), 100);
        assert!(grow.create.is_empty() && grow.delete.is_empty());
        assert_eq!(grow.update.len(), 1);
        assert_eq!(grow.update[0].endpoints.len(), 51);
        // One pod turns unready: only its slice is rewritten.
        let mut changed = all;
        changed[10] = pod(10, false);
        let flip = plan(&svc, &changed, &nodes, slices.clone(), 100);
        assert_eq!(flip.update.len(), 1);
        assert!(flip.create.is_empty() && flip.delete.is_empty());
        // Scale to zero: one slice is kept as the placeholder, the others deleted.
        let gone = plan(&svc, &[], &nodes, slices, 100);
        assert_eq!(gone.update.len(), 1);
        assert!(gone.update[0].endpoints.is_empty());
        assert!(gone.update[0].ports.is_none());
        assert_eq!(gone.delete.len(), 2);
        assert!(gone.create.is_empty());
    }

    #[test]
    fn slices_of_another_service_uid_or_family_are_replaced() {
        let svc = web();
        let mut n = 0;
        let first = plan(&svc, &[pod(0, true)], &nodes, Vec::new(), 100);
        let mut slices = apply(Vec::new(), &first, &mut n);
        slices[0].metadata.owner_references.as_mut().unwrap()[0].uid = "old".into();
        let replaced = plan(&svc, &[pod(0, true)], &nodes, slices, 100);
        assert_eq!(replaced.create.len(), 1);
        assert_eq!(replaced.delete.len(), 1);
    }
}
