//! What the service proxy programs, computed from Services and EndpointSlices: one
//! [`ServicePort`] per port of every service with a cluster IP, with its endpoints sorted into
//! those that take cluster-wide traffic and those on this node, as kube-proxy's topology
//! rules say (ready endpoints, else serving terminating ones; traffic policies Local).
//!
//! Pure: it reads objects and knows nothing of nftables.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label naming the service an EndpointSlice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A port's transport protocol, as nftables names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn parse(text: Option<&str>) -> Option<Self> {
        match text.unwrap_or("TCP") {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            "SCTP" => Some(Self::Sctp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

/// One port of one service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortKey {
    pub namespace: String,
    pub name: String,
    /// The port's name (empty for a service's single unnamed port).
    pub port_name: String,
    pub protocol: Protocol,
}

impl std::fmt::Display for PortKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.namespace,
            self.name,
            self.protocol.as_str(),
            self.port_name
        )
    }
}

/// One endpoint of a service port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// A service port and where its traffic goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    pub key: PortKey,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub node_port: Option<u16>,
    /// `spec.externalIPs` and `status.loadBalancer.ingress[].ip`.
    pub external_ips: Vec<Ipv4Addr>,
    /// ClientIP session affinity's timeout in seconds.
    pub affinity_timeout: Option<u32>,
    /// The endpoints anywhere in the cluster that take traffic.
    pub cluster: Vec<Endpoint>,
    /// Those of them on this node.
    pub local: Vec<Endpoint>,
    /// The addresses of every serving endpoint, terminating or not, wherever it is: UDP flows
    /// answered from anywhere else are stale (see [`crate::conntrack`]).
    pub serving: Vec<Ipv4Addr>,
    /// internalTrafficPolicy Local: traffic to the cluster IP goes to this node's endpoints
    /// only.
    pub internal_local: bool,
    /// externalTrafficPolicy Local: external traffic keeps its source and goes to this
    /// node's endpoints only.
    pub external_local: bool,
}

impl ServicePort {
    /// Whether the port takes traffic from outside (node port or external IPs).
    pub fn has_external(&self) -> bool {
        self.node_port.is_some() || !self.external_ips.is_empty()
    }

    /// Endpoints for traffic to the cluster IP (internalTrafficPolicy applied).
    pub fn internal(&self) -> &[Endpoint] {
        if self.internal_local {
            &self.local
        } else {
            &self.cluster
        }
    }

    /// Endpoints for traffic from outside: node ports, external and load-balancer IPs
    /// (externalTrafficPolicy applied).
    pub fn external(&self) -> &[Endpoint] {
        if self.external_local {
            &self.local
        } else {
            &self.cluster
        }
    }
}

/// A container port of a pod on this node published on the node (`hostPort`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HostPort {
    /// The node address it is published on (`hostIP`); `None`: every node address.
    pub host_ip: Option<Ipv4Addr>,
    pub protocol: Protocol,
    pub host_port: u16,
    pub pod_ip: Ipv4Addr,
    pub container_port: u16,
}

/// The host ports of running pods on `node_name` that have a pod address (host-network
/// pods bind their ports themselves).
pub fn host_ports<'a>(pods: impl IntoIterator<Item = &'a Pod>, node_name: &str) -> Vec<HostPort> {
    let mut ports = Vec::new();
    for pod in pods {
        let Some(spec) = pod.spec.as_ref() else { continue };
        if spec.node_name.as_deref() != Some(node_name) || spec.host_network == Some(true) {
            continue;
        }
        let status = pod.status.as_ref();
        if matches!(
            status.and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        ) {
            continue;
        }
        let Some(pod_ip) = status
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        for container in spec.init_containers.iter().flatten().chain(&spec.containers) {
            for port in container.ports.iter().flatten() {
                let (Some(host_port), Some(protocol), Ok(container_port)) = (
                    port.host_port
                        .and_then(|p| u16::try_from(p).ok())
                        .filter(|p| *p > 0),
                    Protocol::parse(port.protocol.as_deref()),
                    u16::try_from(port.container_port),
                ) else {
                    continue;
                };
                let host_ip = port
                    .host_ip
                    .as_deref()
                    .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
                    .filter(|ip| !ip.is_unspecified());
                ports.push(HostPort {
                    host_ip,
                    protocol,
                    host_port,
                    pod_ip,
                    container_port,
                });
            }
        }
    }
    ports.sort();
    ports.dedup();
    ports
}

/// An endpoint as a slice states it, before the topology rules.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    endpoint: Endpoint,
    ready: bool,
    serving: bool,
    terminating: bool,
    local: bool,
}

/// A service's endpoints by port name and protocol.
type PortCandidates = BTreeMap<(String, Protocol), BTreeSet<Candidate>>;

/// The Service (namespace, name) an IPv4 EndpointSlice belongs to; `None` for other address
/// types and slices without the service-name label.
pub fn ipv4_slice_service(slice: &EndpointSlice) -> Option<(String, String)> {
    if slice.address_type != "IPv4" {
        return None;
    }
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some((slice.metadata.namespace.clone().unwrap_or_default(), name.clone()))
}

/// Every service port of `services` with a cluster IP, with endpoints from `slices`;
/// `node_name` says which endpoints are local.
pub fn service_ports<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    node_name: &str,
) -> Vec<ServicePort> {
    let mut candidates: BTreeMap<(String, String), PortCandidates> = BTreeMap::new();
    for slice in slices {
        let Some(service) = ipv4_slice_service(slice) else {
            continue;
        };
        let ports = candidates.entry(service).or_default();
        for port in slice.ports.as_deref().unwrap_or_default() {
            let (Some(number), Some(protocol)) = (
                port.port.and_then(|p| u16::try_from(p).ok()),
                Protocol::parse(port.protocol.as_deref()),
            ) else {
                continue;
            };
            let entry = ports
                .entry((port.name.clone().unwrap_or_default(), protocol))
                .or_default();
            for endpoint in &slice.endpoints {
                let Some(ip) = endpoint
                    .addresses
                    .first()
                    .and_then(|a| a.parse::<Ipv4Addr>().ok())
                else {
                    continue;
                };
                let conditions = endpoint.conditions.as_ref();
                // Unset ready means ready; unset serving means as ready; unset terminating
                // means not terminating.
                let ready = conditions.and_then(|c| c.ready).unwrap_or(true);
                let serving = conditions.and_then(|c| c.serving).unwrap_or(ready);
                let terminating = conditions.and_then(|c| c.terminating).unwrap_or(false);
                entry.insert(Candidate {
                    endpoint: Endpoint { ip, port: number },
                    ready,
                    serving,
                    terminating,
                    local: endpoint.node_name.as_deref() == Some(node_name),
                });
            }
        }
    }
    let mut ports = Vec::new();
    for service in services {
        let Some(spec) = service.spec.as_ref() else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let Some(cluster_ip) = spec
            .cluster_ip
            .as_deref()
            .and_then(|ip| ip.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let name = service.metadata.name.clone().unwrap_or_default();
        let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|t| u32::try_from(t).ok())
                .unwrap_or(10_800)
        });
        let external_ips: Vec<Ipv4Addr> = spec
            .external_ips
            .iter()
            .flatten()
            .filter_map(|ip| ip.parse().ok())
            .chain(
                service
                    .status
                    .as_ref()
                    .and_then(|s| s.load_balancer.as_ref())
                    .and_then(|lb| lb.ingress.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|ingress| ingress.ip.as_deref()?.parse().ok()),
            )
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let takes_external = matches!(spec.type_.as_deref(), Some("NodePort" | "LoadBalancer"));
        let external_local = takes_external && spec.external_traffic_policy.as_deref() == Some("Local");
        let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
        let by_port = candidates.get(&(namespace.clone(), name.clone()));
        for port in spec.ports.iter().flatten() {
            let Some(protocol) = Protocol::parse(port.protocol.as_deref()) else {
                continue;
            };
            let Ok(number) = u16::try_from(port.port) else {
                continue;
            };
            let port_name = port.name.clone().unwrap_or_default();
            let all: Vec<&Candidate> = by_port
                .and_then(|p| p.get(&(port_name.clone(), protocol)))
                .map(|set| set.iter().collect())
                .unwrap_or_default();
            let cluster = usable(all.iter().copied());
            let local = usable(all.iter().copied().filter(|c| c.local));
            let serving: BTreeSet<Ipv4Addr> =
                all.iter().filter(|c| c.serving).map(|c| c.endpoint.ip).collect();
            ports.push(ServicePort {
                key: PortKey {
                    namespace: namespace.clone(),
                    name: name.clone(),
                    port_name,
                    protocol,
                },
                cluster_ip,
                port: number,
                node_port: port
                    .node_port
                    .filter(|_| takes_external)
                    .and_then(|p| u16::try_from(p).ok()),
                external_ips: external_ips.clone(),
                affinity_timeout,
                cluster,
                local,
                serving: serving.into_iter().collect(),
                internal_local,
                external_local,
            });
        }
    }
    ports.sort_by(|a, b| a.key.cmp(&b.key));
    ports
}

/// Ready endpoints; when there are none, the serving terminating ones (kube-proxy's
/// terminating-endpoint fallback).
fn usable<'a>(candidates: impl Iterator<Item = &'a Candidate> + Clone) -> Vec<Endpoint> {
    let ready: Vec<Endpoint> = candidates
        .clone()
        .filter(|c| c.ready)
        .map(|c| c.endpoint.clone())
        .collect();
    if !ready.is_empty() {
        return dedup(ready);
    }
    dedup(
        candidates
            .filter(|c| c.serving && c.terminating)
            .map(|c| c.endpoint.clone())
            .collect(),
    )
}

fn dedup(mut endpoints: Vec<Endpoint>) -> Vec<Endpoint> {
    endpoints.sort();
    endpoints.dedup();
    endpoints
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(value: serde_json::Value) -> Service {
        serde_json::from_value(value).unwrap()
    }

    fn slice(value: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(value).unwrap()
    }

    fn endpoint(ip: &str, node: &str, ready: bool, serving: bool, terminating: bool) -> serde_json::Value {
        json!({"addresses": [ip], "nodeName": node,
               "conditions": {"ready": ready, "serving": serving, "terminating": terminating}})
    }

    fn web(extra: serde_json::Value) -> Service {
        let mut value = json!({
            "metadata": {"namespace": "default", "name": "web"},
            "spec": {"clusterIP": "10.96.0.20", "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080},
                {"name": "dns", "port": 53, "protocol": "UDP"}
            ]}
        });
        merge(&mut value, extra);
        service(value)
    }

    fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
        if let (Some(base), serde_json::Value::Object(extra)) = (base.as_object_mut(), extra) {
            for (k, v) in extra {
                match base.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        base.insert(k, v);
                    }
                }
            }
        }
    }

    fn web_slice(endpoints: &[serde_json::Value]) -> EndpointSlice {
        slice(json!({
            "metadata": {"namespace": "default", "name": "web-abc", "labels": {SERVICE_NAME_LABEL: "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints,
        }))
    }

    fn ips(endpoints: &[Endpoint]) -> Vec<String> {
        endpoints.iter().map(|e| format!("{}:{}", e.ip, e.port)).collect()
    }

    #[test]
    fn ports_take_endpoints_of_their_name_and_protocol() {
        let slices = [web_slice(&[
            endpoint("10.244.0.5", "here", true, true, false),
            endpoint("10.244.1.5", "there", true, true, false),
            endpoint("10.244.1.6", "there", false, false, false),
        ])];
        let ports = service_ports(&[web(json!({"spec": {"type": "NodePort"}}))], &slices, "here");
        assert_eq!(ports.len(), 2);
        let (dns, http) = (&ports[0], &ports[1]);
        assert_eq!(http.key.to_string(), "default/web/tcp/http");
        assert_eq!(ips(http.internal()), ["10.244.0.5:8080", "10.244.1.5:8080"]);
        assert_eq!(http.internal(), http.external());
        assert_eq!(http.node_port, Some(30080));
        assert!(
            dns.internal().is_empty() && dns.cluster.is_empty(),
            "no UDP endpoints"
        );
        assert_eq!(dns.node_port, None, "no nodePort given");
    }

    #[test]
    fn terminating_serving_endpoints_stand_in_when_none_is_ready() {
        let slices = [web_slice(&[
            endpoint("10.244.0.5", "here", false, true, true),
            endpoint("10.244.0.6", "here", false, false, true),
        ])];
        let ports = service_ports(&[web(json!({}))], &slices, "here");
        assert_eq!(ips(ports[1].internal()), ["10.244.0.5:8080"]);
        let slices = [web_slice(&[
            endpoint("10.244.0.5", "here", false, true, true),
            endpoint("10.244.0.7", "here", true, true, false),
        ])];
        let ports = service_ports(&[web(json!({}))], &slices, "here");
        assert_eq!(ips(ports[1].internal()), ["10.244.0.7:8080"], "ready ones win");
    }

    #[test]
    fn traffic_policies_local_keep_to_this_nodes_endpoints() {
        let slices = [web_slice(&[
            endpoint("10.244.0.5", "here", true, true, false),
            endpoint("10.244.1.5", "there", true, true, false),
        ])];
        let svc = web(
            json!({"spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
            "externalIPs": ["192.0.2.50"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.0.2.60"}]}}}),
        );
        let ports = service_ports(&[svc], &slices, "here");
        let http = &ports[1];
        assert_eq!(ips(http.internal()), ["10.244.0.5:8080", "10.244.1.5:8080"]);
        assert_eq!(ips(http.external()), ["10.244.0.5:8080"]);
        assert!(http.external_local);
        assert_eq!(
            http.external_ips,
            [
                "192.0.2.50".parse::<Ipv4Addr>().unwrap(),
                "192.0.2.60".parse().unwrap()
            ]
        );
        let ports = service_ports(
            &[web(json!({"spec": {"internalTrafficPolicy": "Local"}}))],
            &slices,
            "there",
        );
        assert_eq!(ips(ports[1].internal()), ["10.244.1.5:8080"]);
        assert!(
            !ports[1].external_local,
            "a ClusterIP service takes no external traffic"
        );
    }

    #[test]
    fn host_ports_of_this_nodes_pods_with_addresses() {
        let pod = |node: &str, ip: Option<&str>, host_network: bool| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"namespace": "a", "name": "p"},
                "spec": {"nodeName": node, "hostNetwork": host_network, "containers": [{"name": "c", "image": "i", "ports": [
                    {"containerPort": 8080, "hostPort": 18080},
                    {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "192.0.2.2"},
                    {"containerPort": 9090}
                ]}]},
                "status": {"phase": "Running", "podIP": ip}
            }))
            .unwrap()
        };
        let pods = [
            pod("here", Some("10.244.0.5"), false),
            pod("there", Some("10.244.1.5"), false),
            pod("here", None, false),
            pod("here", Some("192.0.2.2"), true),
        ];
        let ports = host_ports(&pods, "here");
        assert_eq!(
            ports,
            [
                HostPort {
                    host_ip: None,
                    protocol: Protocol::Tcp,
                    host_port: 18080,
                    pod_ip: "10.244.0.5".parse().unwrap(),
                    container_port: 8080
                },
                HostPort {
                    host_ip: Some("192.0.2.2".parse().unwrap()),
                    protocol: Protocol::Udp,
                    host_port: 5353,
                    pod_ip: "10.244.0.5".parse().unwrap(),
                    container_port: 53
                },
            ]
        );
    }

    #[test]
    fn headless_and_external_name_services_are_not_proxied_and_affinity_has_a_default() {
        let headless = service(json!({"metadata": {"namespace": "a", "name": "h"},
            "spec": {"clusterIP": "None", "ports": [{"port": 80}]}}));
        let external = service(json!({"metadata": {"namespace": "a", "name": "e"},
            "spec": {"type": "ExternalName", "externalName": "example.com"}}));
        let sticky = web(json!({"spec": {"sessionAffinity": "ClientIP"}}));
        let ports = service_ports(&[headless, external, sticky], &[], "here");
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].affinity_timeout, Some(10_800));
    }
}
