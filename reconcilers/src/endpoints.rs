//! The endpoints controller (upstream: pkg/controller/endpoint): an `Endpoints` object for
//! every Service with a selector, listing the matching pods' addresses (ready and not ready)
//! per port, packed as upstream's `RepackSubsets`, truncated at 1000 addresses. Endpoints it
//! manages (`endpoints.kubernetes.io/managed-by: endpoint-controller`) are deleted once their
//! Service is gone.
//!
//! It also owns what the EndpointSlice controllers share about services and pods (selectors,
//! which pods are endpoints, port lookup, trigger times, pod events mapped to services). It
//! never writes Endpoints of services without a selector: those belong to their users.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, future, stream};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service, ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_already_exists, is_conflict, is_not_found};
use crate::pods::{self, Selector};

/// The controller's name in `--controllers`.
pub const NAME: &str = "endpoints-controller";
/// The label marking Endpoints this controller manages.
const MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
/// This controller's value of [`MANAGED_BY`].
pub(crate) const CONTROLLER_NAME: &str = "endpoint-controller";
/// The annotation with the time of the last change that triggered an update.
pub(crate) const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// The annotation set when addresses were truncated.
const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// The label of the endpoints of headless services.
pub(crate) const HEADLESS: &str = "service.kubernetes.io/headless";
/// The most addresses one Endpoints object holds.
const MAX_CAPACITY: usize = 1000;
/// How soon to look again after a write raced with another (the watch event is on its way).
const RACE_RETRY: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------
// What the endpoint controllers share.

/// The pod selector of a service that gets endpoints from a controller: none for services
/// without a selector (their endpoints come from users) and for ExternalName services.
pub(crate) fn selector_of(service: &Service) -> Option<Selector> {
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    match spec.selector.as_ref() {
        Some(selector) if !selector.is_empty() => Some(Selector::from_map(selector)),
        _ => None,
    }
}

/// Whether the service has a cluster IP (is not headless).
pub(crate) fn is_service_ip_set(service: &Service) -> bool {
    let ip = service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or("");
    !ip.is_empty() && ip != "None"
}

/// The pod's IPs (`status.podIPs`, else `status.podIP`).
pub(crate) fn pod_ips(pod: &Pod) -> Vec<String> {
    let Some(status) = pod.status.as_ref() else {
        return Vec::new();
    };
    let ips: Vec<String> = status.pod_ips.iter().flatten().map(|ip| ip.ip.clone()).collect();
    if ips.is_empty() {
        return status
            .pod_ip
            .iter()
            .filter(|ip| !ip.is_empty())
            .cloned()
            .collect();
    }
    ips
}

/// Upstream's `ShouldPodBeInEndpoints`: not terminal, has an IP, and not being deleted unless
/// terminating pods are included.
pub(crate) fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase == Some("Succeeded") || phase == Some("Failed") {
        return false;
    }
    if pod_ips(pod).is_empty() {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// Whether the endpoint of `pod` carries its hostname: the pod names a hostname and its
/// subdomain is the service.
pub(crate) fn should_set_hostname(pod: &Pod, service: &Service) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.hostname.as_deref().is_some_and(|h| !h.is_empty())
        && spec.subdomain.as_deref() == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace
}

/// The container port a service port targets on `pod` (upstream's `FindPort`): a number as
/// is, a name looked up among the containers' and sidecars' ports of the same protocol.
pub(crate) fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match port.target_port.as_ref() {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// The reference to a pod an endpoint carries.
pub(crate) fn pod_reference(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        ..ObjectReference::default()
    }
}

/// The service's pods: those of its namespace its selector matches.
pub(crate) fn pods_of(service: &Service, selector: &Selector, pods: &Store<Pod>) -> Vec<Arc<Pod>> {
    let empty = BTreeMap::new();
    let mut matched: Vec<Arc<Pod>> = pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace == service.metadata.namespace)
        .filter(|p| selector.matches(p.metadata.labels.as_ref().unwrap_or(&empty)))
        .collect();
    matched.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    matched
}

/// Upstream's TriggerTimeTracker: the time of the earliest change (a pod's Ready transition,
/// the service's creation) not yet reflected in the endpoints of a service.
#[derive(Default)]
pub(crate) struct TriggerTimes {
    services: Mutex<HashMap<(String, String), TriggerState>>,
}

#[derive(Default)]
struct TriggerState {
    service: Option<Timestamp>,
    pods: HashMap<String, Timestamp>,
}

impl TriggerTimes {
    /// The last change trigger time for the service's endpoints now, or `None` when nothing
    /// changed; the first computation for a service gives its creation time.
    pub(crate) fn compute(&self, service: &Service, pods: &[Arc<Pod>]) -> Option<Timestamp> {
        let key = (service.namespace().unwrap_or_default(), service.name_any());
        let Ok(mut services) = self.services.lock() else {
            return None;
        };
        let known = services.contains_key(&key);
        let state = services.entry(key).or_default();
        let mut earliest: Option<Timestamp> = None;
        let mut times = HashMap::new();
        for pod in pods {
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0);
            if let Some(time) = ready {
                let name = pod.name_any();
                if state.pods.get(&name).is_none_or(|last| time > *last) {
                    earliest = Some(earliest.map_or(time, |e| e.min(time)));
                }
                times.insert(name, time);
            }
        }
        let created = service.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(created) = created
            && state.service.is_none_or(|last| created > last)
        {
            earliest = Some(earliest.map_or(created, |e| e.min(created)));
        }
        state.pods = times;
        state.service = created;
        if !known {
            return created;
        }
        earliest
    }

    /// Forgets a deleted service.
    pub(crate) fn forget(&self, namespace: &str, name: &str) {
        if let Ok(mut services) = self.services.lock() {
            services.remove(&(namespace.to_owned(), name.to_owned()));
        }
    }
}

/// Formats a trigger time as Go's RFC3339Nano in UTC.
pub(crate) fn format_time(time: Timestamp) -> String {
    time.to_string()
}

/// What of a pod decides its endpoints, beside its labels (upstream's `podEndpointsChanged`).
#[derive(Clone, PartialEq)]
struct Projection {
    labels: BTreeMap<String, String>,
    hostname: Option<String>,
    subdomain: Option<String>,
    deleting: bool,
    ready: bool,
    ips: Vec<String>,
    terminal: bool,
    node: Option<String>,
}

impl Projection {
    fn of(pod: &Pod) -> Projection {
        let spec = pod.spec.as_ref();
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        Projection {
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            hostname: spec.and_then(|s| s.hostname.clone()),
            subdomain: spec.and_then(|s| s.subdomain.clone()),
            deleting: pod.metadata.deletion_timestamp.is_some(),
            ready: pods::is_ready(pod),
            ips: pod_ips(pod),
            terminal: phase == Some("Succeeded") || phase == Some("Failed"),
            node: spec.and_then(|s| s.node_name.clone()),
        }
    }
}

/// Maps pod events to the services whose endpoints they change: the services selecting the
/// pod's old or new labels, only when something that matters changed.
#[derive(Default)]
pub(crate) struct PodServices {
    seen: Mutex<HashMap<(String, String), Projection>>,
}

impl PodServices {
    /// The services to sync for one pod watch event.
    pub(crate) fn services_for(
        &self,
        event: &watcher::Event<Pod>,
        services: &Store<Service>,
    ) -> Vec<ObjectRef<Service>> {
        let (pod, deleted) = match event {
            watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => (pod, false),
            watcher::Event::Delete(pod) => (pod, true),
            watcher::Event::Init | watcher::Event::InitDone => return Vec::new(),
        };
        let namespace = pod.namespace().unwrap_or_default();
        let key = (namespace.clone(), pod.name_any());
        let new = Projection::of(pod);
        let old = {
            let Ok(mut seen) = self.seen.lock() else {
                return Vec::new();
            };
            if deleted {
                seen.remove(&key)
            } else {
                seen.insert(key, new.clone())
            }
        };
        if !deleted && old.as_ref() == Some(&new) {
            return Vec::new();
        }
        let old_labels = old.map(|o| o.labels);
        services
            .state()
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(namespace.as_str()))
            .filter(|s| {
                selector_of(s).is_some_and(|selector| {
                    selector.matches(&new.labels) || old_labels.as_ref().is_some_and(|l| selector.matches(l))
                })
            })
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect()
    }
}

/// A stream of the services to sync for pod changes; keeps `writer`'s store of pods.
pub(crate) fn pod_triggers(
    client: kube::Client,
    writer: reflector::store::Writer<Pod>,
    services: Store<Service>,
) -> impl futures_util::Stream<Item = ObjectRef<Service>> + Send + 'static {
    let mapper = PodServices::default();
    watcher(Api::<Pod>::all(client), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .filter_map(|event| future::ready(event.ok()))
        .flat_map(move |event| stream::iter(mapper.services_for(&event, &services)))
}

/// The message of an API error.
pub(crate) fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Whether a create failed because the namespace is terminating.
pub(crate) fn namespace_terminating(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.details.as_ref().is_some_and(|d| {
        d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
    }))
}

// ---------------------------------------------------------------------------------------------
// The endpoints controller.

struct State {
    pods: Store<Pod>,
    endpoints: Store<Endpoints>,
    triggers: TriggerTimes,
}

/// Runs the endpoints controller and the cleanup of Endpoints whose Service is gone.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let controller = Controller::new(Api::<Service>::all(client.clone()), watcher::Config::default());
    let services = controller.store();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (endpoints, endpoints_writer) = reflector::store::<Endpoints>();
    let endpoint_events = watcher(Api::<Endpoints>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(endpoints_writer)
        .touched_objects();
    let controller = controller
        .reconcile_on(pod_triggers(client.clone(), pod_writer, services))
        .watches_stream(endpoint_events, |endpoints: Endpoints| {
            Some(
                ObjectRef::<Service>::new(&endpoints.name_any())
                    .within(&endpoints.namespace().unwrap_or_default()),
            )
        });
    let state = Arc::new(State {
        pods,
        endpoints,
        triggers: TriggerTimes::default(),
    });
    let sync = harness::run(
        NAME,
        controller,
        context.clone(),
        shutdown.clone(),
        move |service, context| {
            let state = state.clone();
            async move { Box::pin(sync_service(service, context, state)).await }
        },
    );
    let cleanup = run_cleanup(context, shutdown);
    futures_util::join!(sync, cleanup);
}

/// The controller deleting managed Endpoints whose Service no longer exists.
async fn run_cleanup(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let managed = watcher::Config::default().labels(&format!("{MANAGED_BY}={CONTROLLER_NAME}"));
    let controller = Controller::new(Api::<Endpoints>::all(client.clone()), managed);
    let (services, writer) = reflector::store::<Service>();
    let service_events = watcher(Api::<Service>::all(client), watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .touched_objects();
    let controller = controller.watches_stream(service_events, |service: Service| {
        Some(
            ObjectRef::<Endpoints>::new(&service.name_any()).within(&service.namespace().unwrap_or_default()),
        )
    });
    let cleanup_name: &'static str = "endpoint-cleanup";
    harness::run(
        cleanup_name,
        controller,
        context,
        shutdown,
        move |endpoints, context| {
            let services = services.clone();
            async move { delete_orphan(endpoints, context, services).await }
        },
    )
    .await;
}

async fn delete_orphan(
    endpoints: Arc<Endpoints>,
    context: Arc<Context>,
    services: Store<Service>,
) -> Result<Action, ReconcileError> {
    if services.wait_until_ready().await.is_err() {
        return Ok(Action::await_change());
    }
    let namespace = endpoints.namespace().unwrap_or_default();
    let name = endpoints.name_any();
    if services.get(&ObjectRef::new(&name).within(&namespace)).is_some() {
        return Ok(Action::await_change());
    }
    // The service watch may lag behind the endpoints watch: only a live read says it is gone.
    let service_api: Api<Service> = Api::namespaced(context.client.clone(), &namespace);
    if service_api.get_opt(&name).await?.is_some() {
        return Ok(Action::await_change());
    }
    let api: Api<Endpoints> = Api::namespaced(context.client.clone(), &namespace);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: endpoints.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => tracing::debug!("deleted the endpoints of a deleted service"),
        Err(err) if is_not_found(&err) || is_conflict(&err) => {}
        Err(err) => return Err(err.into()),
    }
    Ok(Action::await_change())
}

async fn sync_service(
    service: Arc<Service>,
    context: Arc<Context>,
    state: Arc<State>,
) -> Result<Action, ReconcileError> {
    if state.pods.wait_until_ready().await.is_err() || state.endpoints.wait_until_ready().await.is_err() {
        return Ok(Action::await_change());
    }
    let namespace = service.namespace().unwrap_or_default();
    let name = service.name_any();
    if service.meta().deletion_timestamp.is_some() {
        state.triggers.forget(&namespace, &name);
    }
    let Some(selector) = selector_of(&service) else {
        return Ok(Action::await_change());
    };
    let pods = pods_of(&service, &selector, &state.pods);
    let trigger = state.triggers.compute(&service, &pods);
    let (subsets, truncated) = truncate(desired_subsets(&service, &pods));
    let current = state.endpoints.get(&ObjectRef::new(&name).within(&namespace));
    let service_labels = service.metadata.labels.clone().unwrap_or_default();
    if let Some(current) = current.as_ref()
        && normalize(current.subsets.clone().unwrap_or_default()) == subsets
        && labels_correct(current.metadata.labels.as_ref(), &service_labels)
        && current.annotations().get(OVER_CAPACITY).map(String::as_str) == truncated.then_some("truncated")
    {
        return Ok(Action::await_change());
    }
    let mut labels = service_labels;
    if is_service_ip_set(&service) {
        labels.remove(HEADLESS);
    } else {
        labels.insert(HEADLESS.into(), String::new());
    }
    labels.insert(MANAGED_BY.into(), CONTROLLER_NAME.into());
    let mut annotations = current
        .as_ref()
        .and_then(|c| c.metadata.annotations.clone())
        .unwrap_or_default();
    match trigger {
        Some(time) => annotations.insert(LAST_CHANGE_TRIGGER_TIME.into(), format_time(time)),
        None => annotations.remove(LAST_CHANGE_TRIGGER_TIME),
    };
    if truncated {
        annotations.insert(OVER_CAPACITY.into(), "truncated".into());
    } else {
        annotations.remove(OVER_CAPACITY);
    }
    let metadata = match current.as_ref() {
        Some(current) => ObjectMeta {
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..current.metadata.clone()
        },
        None => ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        },
    };
    let endpoints = Endpoints {
        metadata,
        subsets: (!subsets.is_empty()).then_some(subsets),
    };
    let api: Api<Endpoints> = Api::namespaced(context.client.clone(), &namespace);
    let creating = current.is_none();
    let result = if creating {
        api.create(&PostParams::default(), &endpoints).await
    } else {
        api.replace(&name, &PostParams::default(), &endpoints).await
    };
    match result {
        Ok(_) => Ok(Action::await_change()),
        Err(err) if creating && namespace_terminating(&err) => Ok(Action::await_change()),
        // The cache is behind a write: look again once the watch has caught up.
        Err(err) if is_already_exists(&err) || is_conflict(&err) => Ok(Action::requeue(RACE_RETRY)),
        Err(err) => {
            let reference = ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Endpoints".into()),
                namespace: Some(namespace.clone()),
                name: Some(name.clone()),
                uid: endpoints.metadata.uid.clone(),
                ..ObjectReference::default()
            };
            let (reason, note) = if creating {
                (
                    "FailedToCreateEndpoint",
                    format!(
                        "Failed to create endpoint for service {namespace}/{name}: {}",
                        api_message(&err)
                    ),
                )
            } else {
                (
                    "FailedToUpdateEndpoint",
                    format!(
                        "Failed to update endpoint {namespace}/{name}: {}",
                        api_message(&err)
                    ),
                )
            };
            context
                .publish(CONTROLLER_NAME, &reference, EventType::Warning, reason, note)
                .await;
            Err(err.into())
        }
    }
}

/// Whether the Endpoints labels are the service's labels plus the managed-by label (the
/// headless label aside).
fn labels_correct(labels: Option<&BTreeMap<String, String>>, service: &BTreeMap<String, String>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    if labels.get(MANAGED_BY).map(String::as_str) != Some(CONTROLLER_NAME) {
        return false;
    }
    let mut skipped = 0;
    for (key, value) in labels {
        if key == HEADLESS || key == MANAGED_BY {
            skipped += 1;
        } else if service.get(key) != Some(value) {
            return false;
        }
    }
    service.len() + skipped == labels.len()
}

/// The IP family the service's endpoints use: its first family, else its cluster IP's.
fn service_family_is_v6(service: &Service, pod: &Pod) -> bool {
    let spec = service.spec.as_ref();
    if let Some(family) = spec.and_then(|s| s.ip_families.as_ref()).and_then(|f| f.first()) {
        return family == "IPv6";
    }
    let cluster_ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
    if is_service_ip_set(service) {
        return cluster_ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6());
    }
    pod_ips(pod)
        .first()
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .is_some_and(|ip| ip.is_ipv6())
}

/// The address of `pod` for the service's IP family.
fn pod_address(service: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let v6 = service_family_is_v6(service, pod);
    let ip = pod_ips(pod)
        .into_iter()
        .find(|ip| ip.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6() == v6))?;
    let spec = pod.spec.as_ref();
    Some(EndpointAddress {
        ip,
        hostname: if should_set_hostname(pod, service) {
            spec.and_then(|s| s.hostname.clone())
        } else {
            None
        },
        node_name: Some(spec.and_then(|s| s.node_name.clone()).unwrap_or_default()),
        target_ref: Some(pod_reference(pod)),
    })
}

/// An address's identity when repacking: its IP and its pod's UID.
fn address_key(address: &EndpointAddress) -> (String, String) {
    (
        address.ip.clone(),
        address
            .target_ref
            .as_ref()
            .and_then(|r| r.uid.clone())
            .unwrap_or_default(),
    )
}

/// A port's place in the packing: ports are grouped by the exact addresses they reach.
type PortKey = (String, i32, String, String);
/// The addresses (by IP and pod UID) a port reaches, and whether each is ready for it.
type AddressSet = BTreeMap<(String, String), bool>;

fn port_key(port: &EndpointPort) -> PortKey {
    (
        port.name.clone().unwrap_or_default(),
        port.port,
        port.protocol.clone().unwrap_or_default(),
        port.app_protocol.clone().unwrap_or_default(),
    )
}

/// The subsets of the service's endpoints, packed as upstream's `RepackSubsets`: every set
/// of ports reaching the same addresses (with the same readiness) is one subset; an address
/// not ready for a port stays not ready for it. Addresses are sorted by IP and pod UID.
pub(crate) fn desired_subsets(service: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let publish_not_ready = service
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    let service_ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    let headless = !is_service_ip_set(service);
    let mut subsets = Vec::new();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, publish_not_ready) {
            continue;
        }
        let Some(address) = pod_address(service, pod) else {
            continue;
        };
        let ready = publish_not_ready || pods::is_ready(pod);
        let (addresses, not_ready_addresses) = if ready {
            (Some(vec![address]), None)
        } else {
            (None, Some(vec![address]))
        };
        if service_ports.is_empty() {
            // A headless service may have no ports; one with a cluster IP then has no
            // endpoints.
            if headless {
                subsets.push(EndpointSubset {
                    addresses,
                    not_ready_addresses,
                    ports: None,
                });
            }
            continue;
        }
        let ports: Vec<EndpointPort> = service_ports
            .iter()
            .filter_map(|service_port| {
                Some(EndpointPort {
                    name: service_port.name.clone().filter(|n| !n.is_empty()),
                    port: find_port(pod, service_port)?,
                    protocol: service_port.protocol.clone(),
                    app_protocol: service_port.app_protocol.clone(),
                })
            })
            .collect();
        if !ports.is_empty() {
            subsets.push(EndpointSubset {
                addresses,
                not_ready_addresses,
                ports: Some(ports),
            });
        }
    }
    repack(&subsets)
}

/// Upstream's `RepackSubsets`: every set of ports reaching the same addresses (with the same
/// readiness) becomes one subset; an address not ready in one subset stays not ready for
/// that port. Addresses are identified by IP and pod UID, and sorted so.
pub(crate) fn repack(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let mut addresses: BTreeMap<(String, String), EndpointAddress> = BTreeMap::new();
    // Port (None: the sentinel of a subset without ports) -> address key -> ready.
    let mut by_port: BTreeMap<Option<PortKey>, (Option<EndpointPort>, AddressSet)> = BTreeMap::new();
    for subset in subsets {
        let ports: Vec<Option<EndpointPort>> = match subset.ports.as_deref() {
            None | Some([]) => vec![None],
            Some(ports) => ports.iter().cloned().map(Some).collect(),
        };
        let listed = subset
            .addresses
            .iter()
            .flatten()
            .map(|a| (a, true))
            .chain(subset.not_ready_addresses.iter().flatten().map(|a| (a, false)));
        for (address, ready) in listed {
            let key = address_key(address);
            addresses.entry(key.clone()).or_insert_with(|| address.clone());
            for port in &ports {
                let entry = by_port
                    .entry(port.as_ref().map(port_key))
                    .or_insert_with(|| (port.clone(), BTreeMap::new()));
                let was = entry.1.entry(key.clone()).or_insert(ready);
                *was = *was && ready;
            }
        }
    }
    // Group ports by their address sets.
    let mut groups: Vec<(AddressSet, Vec<EndpointPort>)> = Vec::new();
    for (port, set) in by_port.into_values() {
        match groups.iter_mut().find(|(s, _)| *s == set) {
            Some((_, ports)) => ports.extend(port),
            None => groups.push((set, port.into_iter().collect())),
        }
    }
    let mut subsets: Vec<EndpointSubset> = groups
        .into_iter()
        .map(|(set, mut ports)| {
            ports.sort_by_key(port_key);
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            for (key, is_ready) in set {
                if let Some(address) = addresses.get(&key) {
                    if is_ready {
                        ready.push(address.clone());
                    } else {
                        not_ready.push(address.clone());
                    }
                }
            }
            EndpointSubset {
                addresses: (!ready.is_empty()).then_some(ready),
                not_ready_addresses: (!not_ready.is_empty()).then_some(not_ready),
                ports: (!ports.is_empty()).then_some(ports),
            }
        })
        .collect();
    sort_subsets(&mut subsets);
    subsets
}

fn address_order(a: &EndpointAddress, b: &EndpointAddress) -> std::cmp::Ordering {
    a.ip.as_bytes().cmp(b.ip.as_bytes()).then_with(|| {
        let uid = |x: &EndpointAddress| x.target_ref.as_ref().and_then(|r| r.uid.clone());
        uid(a).cmp(&uid(b))
    })
}

/// Sorts addresses (by IP, then pod UID), ports and subsets.
fn sort_subsets(subsets: &mut [EndpointSubset]) {
    for subset in subsets.iter_mut() {
        for list in [&mut subset.addresses, &mut subset.not_ready_addresses]
            .into_iter()
            .flatten()
        {
            list.sort_by(address_order);
        }
        if let Some(ports) = subset.ports.as_mut() {
            ports.sort_by_key(port_key);
        }
    }
    subsets.sort_by(|a, b| {
        let first_port = |s: &EndpointSubset| s.ports.as_ref().and_then(|p| p.first()).map(port_key);
        first_port(a).cmp(&first_port(b))
    });
}

/// Subsets as the API returns them: empty lists absent, resourceVersions of pods ignored,
/// sorted.
fn normalize(mut subsets: Vec<EndpointSubset>) -> Vec<EndpointSubset> {
    for subset in &mut subsets {
        for list in [&mut subset.addresses, &mut subset.not_ready_addresses] {
            if list.as_ref().is_some_and(Vec::is_empty) {
                *list = None;
            }
            for address in list.iter_mut().flatten() {
                if let Some(reference) = address.target_ref.as_mut() {
                    reference.resource_version = None;
                }
            }
        }
        if subset.ports.as_ref().is_some_and(Vec::is_empty) {
            subset.ports = None;
        }
    }
    sort_subsets(&mut subsets);
    subsets
}

/// Truncates the subsets to [`MAX_CAPACITY`] addresses as upstream's `truncateEndpoints`:
/// ready addresses first, each subset keeping its share (rounded up). Says whether it did.
fn truncate(mut subsets: Vec<EndpointSubset>) -> (Vec<EndpointSubset>, bool) {
    let len = |v: &Option<Vec<EndpointAddress>>| v.as_ref().map_or(0, Vec::len);
    let total_ready: usize = subsets.iter().map(|s| len(&s.addresses)).sum();
    let total_not_ready: usize = subsets.iter().map(|s| len(&s.not_ready_addresses)).sum();
    if total_ready + total_not_ready <= MAX_CAPACITY {
        return (subsets, false);
    }
    let truncate_ready = total_ready > MAX_CAPACITY;
    let (max, total) = if truncate_ready {
        (MAX_CAPACITY, total_ready)
    } else {
        (MAX_CAPACITY - total_ready, total_not_ready)
    };
    let mut can_be_added = max;
    for subset in &mut subsets {
        let in_subset = if truncate_ready {
            len(&subset.addresses)
        } else {
            len(&subset.not_ready_addresses)
        };
        // ceil(in_subset / total * max) in integers.
        let share = (in_subset * max).div_ceil(total.max(1)).min(can_be_added);
        let list = if truncate_ready {
            subset.not_ready_addresses = None;
            &mut subset.addresses
        } else {
            &mut subset.not_ready_addresses
        };
        if let Some(list) = list.as_mut() {
            list.truncate(share);
        }
        can_be_added -= len(list);
        if list.as_ref().is_some_and(Vec::is_empty) {
            *list = None;
        }
    }
    (subsets, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(spec: serde_json::Value) -> Service {
        let mut service = json!({
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-01-01T00:00:00Z"},
        });
        service["spec"] = spec;
        serde_json::from_value(service).unwrap()
    }

    fn pod(name: &str, ip: &str, ready: bool, extra: &serde_json::Value) -> Arc<Pod> {
        let mut pod = json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "labels": {"app": "web"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx",
                "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                    "lastTransitionTime": "2024-01-01T00:00:05Z"}]},
        });
        if let Some(meta) = extra.get("metadata") {
            for (k, v) in meta.as_object().unwrap() {
                pod["metadata"][k] = v.clone();
            }
        }
        if let Some(spec) = extra.get("spec") {
            for (k, v) in spec.as_object().unwrap() {
                pod["spec"][k] = v.clone();
            }
        }
        Arc::new(serde_json::from_value(pod).unwrap())
    }

    fn ips(addresses: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        addresses.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    #[test]
    fn ready_and_not_ready_addresses_share_a_subset_per_port_set() {
        let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "10.0.0.1",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"},
                      {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9090}]}));
        let pods = vec![
            pod("b", "10.244.0.3", true, &json!({})),
            pod("a", "10.244.0.2", false, &json!({})),
            pod("c", "10.244.0.10", true, &json!({})),
        ];
        let subsets = desired_subsets(&svc, &pods);
        assert_eq!(subsets.len(), 1, "{subsets:?}");
        assert_eq!(ips(&subsets[0].addresses), ["10.244.0.10", "10.244.0.3"]);
        assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.244.0.2"]);
        let ports: Vec<(Option<&str>, i32)> = subsets[0]
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.as_deref(), p.port))
            .collect();
        assert_eq!(ports, [(Some("http"), 8080), (Some("metrics"), 9090)]);
        let address = &subsets[0].addresses.as_ref().unwrap()[0];
        assert_eq!(address.node_name.as_deref(), Some("n1"));
        let target = address.target_ref.as_ref().unwrap();
        assert_eq!(
            (
                target.kind.as_deref(),
                target.name.as_deref(),
                target.uid.as_deref()
            ),
            (Some("Pod"), Some("c"), Some("uid-c"))
        );
    }

    #[test]
    fn pods_without_the_named_port_form_their_own_subset() {
        let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "10.0.0.1",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "web"}]}));
        let with_port = pod(
            "a",
            "10.244.0.2",
            true,
            &json!({"spec": {"containers": [{"name": "c", "image": "x", "ports": [{"name": "web", "containerPort": 8000}]}]}}),
        );
        let without = pod("b", "10.244.0.3", true, &json!({}));
        let subsets = desired_subsets(&svc, &[with_port, without]);
        assert_eq!(subsets.len(), 1);
        assert_eq!(ips(&subsets[0].addresses), ["10.244.0.2"]);
        assert_eq!(subsets[0].ports.as_ref().unwrap()[0].port, 8000);
    }

    #[test]
    fn terminating_and_finished_pods_are_left_out_unless_published() {
        let spec = json!({"selector": {"app": "web"}, "clusterIP": "10.0.0.1",
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]});
        let terminating = pod(
            "a",
            "10.244.0.2",
            true,
            &json!({"metadata": {"deletionTimestamp": "2024-01-01T00:01:00Z"}}),
        );
        let mut done = (*pod("b", "10.244.0.3", false, &json!({}))).clone();
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        let pods = vec![
            terminating,
            Arc::new(done),
            pod("c", "10.244.0.4", false, &json!({})),
        ];
        let subsets = desired_subsets(&service(spec.clone()), &pods);
        assert_eq!(ips(&subsets[0].addresses), Vec::<&str>::new());
        assert_eq!(ips(&subsets[0].not_ready_addresses), ["10.244.0.4"]);
        let mut published = spec;
        published["publishNotReadyAddresses"] = json!(true);
        let subsets = desired_subsets(&service(published), &pods);
        assert_eq!(ips(&subsets[0].addresses), ["10.244.0.2", "10.244.0.4"]);
        assert_eq!(subsets[0].not_ready_addresses, None);
    }

    #[test]
    fn headless_services_without_ports_and_hostnames() {
        let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "None"}));
        let named = pod(
            "a",
            "10.244.0.2",
            true,
            &json!({"spec": {"hostname": "a", "subdomain": "web"}}),
        );
        let other = pod(
            "b",
            "10.244.0.3",
            true,
            &json!({"spec": {"hostname": "b", "subdomain": "other"}}),
        );
        let subsets = desired_subsets(&svc, &[named, other]);
        assert_eq!(subsets.len(), 1);
        assert_eq!(subsets[0].ports, None);
        let addresses = subsets[0].addresses.as_ref().unwrap();
        assert_eq!(addresses[0].hostname.as_deref(), Some("a"));
        assert_eq!(addresses[1].hostname, None);
        // A service with a cluster IP and no ports has no endpoints.
        let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "10.0.0.1"}));
        assert!(desired_subsets(&svc, &[pod("a", "10.244.0.2", true, &json!({}))]).is_empty());
    }

    #[test]
    fn repacking_regroups_ports_by_the_addresses_they_reach() {
        let subsets: Vec<EndpointSubset> = serde_json::from_value(json!([
            {"addresses": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 80}]},
            {"addresses": [{"ip": "10.0.0.1"}], "notReadyAddresses": [{"ip": "10.0.0.2"}],
             "ports": [{"name": "https", "port": 443}]},
            {"notReadyAddresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "http", "port": 80}]},
        ]))
        .unwrap();
        let packed = repack(&subsets);
        let view: Vec<(Vec<&str>, Vec<&str>, Vec<i32>)> = packed
            .iter()
            .map(|s| {
                (
                    ips(&s.addresses),
                    ips(&s.not_ready_addresses),
                    s.ports.iter().flatten().map(|p| p.port).collect(),
                )
            })
            .collect();
        // 10.0.0.1 is not ready for port 80 (listed so once); port 443 reaches a different set.
        assert_eq!(
            view,
            [
                (vec!["10.0.0.2"], vec!["10.0.0.1"], vec![80]),
                (vec!["10.0.0.1"], vec!["10.0.0.2"], vec![443]),
            ]
        );
    }

    #[test]
    fn truncation_keeps_ready_addresses_first() {
        let address = |i: usize| EndpointAddress {
            ip: format!("10.0.{}.{}", i / 250, i % 250),
            ..EndpointAddress::default()
        };
        let subsets = vec![EndpointSubset {
            addresses: Some((0..900).map(address).collect()),
            not_ready_addresses: Some((900..1200).map(address).collect()),
            ports: None,
        }];
        let (truncated, did) = truncate(subsets);
        assert!(did);
        assert_eq!(truncated[0].addresses.as_ref().unwrap().len(), 900);
        assert_eq!(truncated[0].not_ready_addresses.as_ref().unwrap().len(), 100);
        let subsets = vec![EndpointSubset {
            addresses: Some((0..1100).map(address).collect()),
            not_ready_addresses: Some((1100..1200).map(address).collect()),
            ports: None,
        }];
        let (truncated, _) = truncate(subsets);
        assert_eq!(truncated[0].addresses.as_ref().unwrap().len(), 1000);
        assert_eq!(truncated[0].not_ready_addresses, None);
        let (_, did) = truncate(vec![EndpointSubset {
            addresses: Some((0..1000).map(address).collect()),
            ..EndpointSubset::default()
        }]);
        assert!(!did);
    }

    #[test]
    fn trigger_time_is_creation_first_then_the_earliest_change() {
        let svc = service(json!({"selector": {"app": "web"}}));
        let times = TriggerTimes::default();
        let a = pod("a", "10.244.0.2", true, &json!({}));
        assert_eq!(
            times
                .compute(&svc, std::slice::from_ref(&a))
                .map(format_time)
                .as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(times.compute(&svc, std::slice::from_ref(&a)), None);
        let mut b = (*pod("b", "10.244.0.3", true, &json!({}))).clone();
        b.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].last_transition_time = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time("2024-01-01T00:01:00.5Z".parse().unwrap()),
        );
        assert_eq!(
            times.compute(&svc, &[a, Arc::new(b)]).map(format_time).as_deref(),
            Some("2024-01-01T00:01:00.5Z")
        );
    }

    #[test]
    fn labels_are_the_services_plus_managed_by() {
        let service: BTreeMap<String, String> = [("app".to_owned(), "web".to_owned())].into();
        let mut labels = service.clone();
        assert!(!labels_correct(Some(&labels), &service));
        labels.insert(MANAGED_BY.into(), CONTROLLER_NAME.into());
        assert!(labels_correct(Some(&labels), &service));
        labels.insert(HEADLESS.into(), String::new());
        assert!(labels_correct(Some(&labels), &service));
        labels.insert("extra".into(), "x".into());
        assert!(!labels_correct(Some(&labels), &service));
    }
}
