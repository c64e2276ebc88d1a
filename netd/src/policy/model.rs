//! NetworkPolicy semantics, resolved to addresses: for each pod on this node that policies
//! isolate, the traffic its ingress and egress rules allow, as (peer addresses, ports)
//! pairs. Isolation and rule union follow the NetworkPolicy API: a pod is isolated for a
//! direction when any policy selecting it has that policy type; then only what some rule of
//! such a policy allows gets through.
//!
//! Pure: it reads objects and knows nothing of nftables.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use rudder_machinery::selectors::labels::Selector;

use crate::cidr::Ipv4Cidr;
use crate::proxy::model::Protocol;

/// Where allowed traffic may come from or go to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Peers {
    /// Anywhere (a rule without peers).
    Any,
    /// These addresses and blocks, minus the exceptions of each block.
    Addresses {
        pods: BTreeSet<Ipv4Addr>,
        blocks: Vec<(Ipv4Cidr, Vec<Ipv4Cidr>)>,
    },
}

/// Which ports allowed traffic may use (on the isolated pod for ingress, on the peer for
/// egress).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Ports {
    Any,
    /// (protocol, first port, last port).
    Listed(Vec<(Protocol, u16, u16)>),
}

/// One allowed (peers, ports) pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Allow {
    pub peers: Peers,
    pub ports: Ports,
}

/// A local pod's isolation: `None` for a direction it is not isolated in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Isolation {
    pub ingress: Option<Vec<Allow>>,
    pub egress: Option<Vec<Allow>>,
}

/// A pod as policies see it.
#[derive(Clone, Debug)]
struct PodView<'a> {
    pod: &'a Pod,
    namespace: &'a str,
    ip: Option<Ipv4Addr>,
}

/// Whether `labels` match `selector` (metav1.LabelSelectorAsSelector; an invalid selector,
/// which validation refuses, matches nothing).
fn matches(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    Selector::from_label_selector(selector).is_ok_and(|selector| selector.matches(labels.unwrap_or(&empty)))
}

fn pod_ip(pod: &Pod) -> Option<Ipv4Addr> {
    let status = pod.status.as_ref()?;
    if pod.spec.as_ref().and_then(|s| s.host_network) == Some(true) {
        return None;
    }
    status
        .pod_ips
        .iter()
        .flatten()
        .map(|ip| ip.ip.as_str())
        .chain(status.pod_ip.as_deref())
        .find_map(|ip| ip.parse().ok())
}

/// The isolation of every pod on `node_name` that some policy selects, by pod address.
pub fn isolations<'a>(
    policies: impl IntoIterator<Item = &'a NetworkPolicy>,
    pods: impl IntoIterator<Item = &'a Pod>,
    namespaces: impl IntoIterator<Item = &'a Namespace>,
    node_name: &str,
) -> BTreeMap<Ipv4Addr, Isolation> {
    let namespace_labels: BTreeMap<&str, Option<&BTreeMap<String, String>>> = namespaces
        .into_iter()
        .map(|ns| {
            (
                ns.metadata.name.as_deref().unwrap_or_default(),
                ns.metadata.labels.as_ref(),
            )
        })
        .collect();
    let pods: Vec<PodView<'a>> = pods
        .into_iter()
        .filter(|pod| {
            !matches!(
                pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .map(|pod| PodView {
            pod,
            namespace: pod.metadata.namespace.as_deref().unwrap_or_default(),
            ip: pod_ip(pod),
        })
        .collect();
    let mut result: BTreeMap<Ipv4Addr, Isolation> = BTreeMap::new();
    for policy in policies {
        let Some(spec) = policy.spec.as_ref() else {
            continue;
        };
        let namespace = policy.metadata.namespace.as_deref().unwrap_or_default();
        let types: Vec<&str> = match &spec.policy_types {
            Some(types) => types.iter().map(String::as_str).collect(),
            None if spec.egress.is_some() => vec!["Ingress", "Egress"],
            None => vec!["Ingress"],
        };
        let selected: Vec<&PodView<'a>> = pods
            .iter()
            .filter(|p| p.namespace == namespace && p.ip.is_some())
            .filter(|p| p.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name))
            .filter(|p| {
                matches(
                    spec.pod_selector.as_ref().unwrap_or(&LabelSelector::default()),
                    p.pod.metadata.labels.as_ref(),
                )
            })
            .collect();
        for target in selected {
            let Some(address) = target.ip else { continue };
            let isolation = result.entry(address).or_default();
            if types.contains(&"Ingress") {
                let allows = isolation.ingress.get_or_insert_with(Vec::new);
                for rule in spec.ingress.iter().flatten() {
                    let peers = resolve_peers(rule.from.as_deref(), namespace, &pods, &namespace_labels);
                    // Named ports of ingress rules are the isolated pod's own.
                    let ports = resolve_ports(rule.ports.as_deref(), |name| named_port(target.pod, name));
                    allows.push(Allow { peers, ports });
                }
            }
            if types.contains(&"Egress") {
                let allows = isolation.egress.get_or_insert_with(Vec::new);
                for rule in spec.egress.iter().flatten() {
                    let peers = resolve_peers(rule.to.as_deref(), namespace, &pods, &namespace_labels);
                    match &peers {
                        // Named ports of egress rules are the peers': one entry per peer pod.
                        Peers::Addresses {
                            pods: peer_pods,
                            blocks,
                        } if has_named(rule.ports.as_deref()) => {
                            for peer in pods
                                .iter()
                                .filter(|p| p.ip.is_some_and(|ip| peer_pods.contains(&ip)))
                            {
                                let ports =
                                    resolve_ports(rule.ports.as_deref(), |name| named_port(peer.pod, name));
                                allows.push(Allow {
                                    peers: Peers::Addresses {
                                        pods: peer.ip.into_iter().collect(),
                                        blocks: Vec::new(),
                                    },
                                    ports,
                                });
                            }
                            if !blocks.is_empty() {
                                let ports = resolve_ports(rule.ports.as_deref(), |_| Vec::new());
                                allows.push(Allow {
                                    peers: Peers::Addresses {
                                        pods: BTreeSet::new(),
                                        blocks: blocks.clone(),
                                    },
                                    ports,
                                });
                            }
                        }
                        _ => {
                            let ports = resolve_ports(rule.ports.as_deref(), |_| Vec::new());
                            allows.push(Allow { peers, ports });
                        }
                    }
                }
            }
        }
    }
    for isolation in result.values_mut() {
        for allows in [&mut isolation.ingress, &mut isolation.egress]
            .into_iter()
            .flatten()
        {
            allows.sort();
            allows.dedup();
        }
    }
    result
}

fn has_named(ports: Option<&[NetworkPolicyPort]>) -> bool {
    ports.into_iter().flatten().any(|p| {
        matches!(
            &p.port,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(
                _
            ))
        )
    })
}

/// The container ports of `pod` called `name`: (protocol, port).
fn named_port(pod: &Pod, name: &str) -> Vec<(Protocol, u16)> {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten().chain(&s.containers))
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.name.as_deref() == Some(name))
        .filter_map(|p| {
            Some((
                Protocol::parse(p.protocol.as_deref())?,
                u16::try_from(p.container_port).ok()?,
            ))
        })
        .collect()
}

fn resolve_ports(ports: Option<&[NetworkPolicyPort]>, named: impl Fn(&str) -> Vec<(Protocol, u16)>) -> Ports {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return Ports::Any;
    };
    let mut listed = Vec::new();
    for port in ports {
        let Some(protocol) = Protocol::parse(port.protocol.as_deref()) else {
            continue;
        };
        match &port.port {
            None => listed.push((protocol, 0, u16::MAX)),
            Some(IntOrString::Int(number)) => {
                let Ok(first) = u16::try_from(*number) else {
                    continue;
                };
                let last = port
                    .end_port
                    .and_then(|end| u16::try_from(end).ok())
                    .filter(|end| *end >= first)
                    .unwrap_or(first);
                listed.push((protocol, first, last));
            }
            Some(IntOrString::String(name)) => {
                for (named_protocol, number) in named(name) {
                    if named_protocol == protocol {
                        listed.push((protocol, number, number));
                    }
                }
            }
        }
    }
    listed.sort();
    listed.dedup();
    // Nothing resolved (a named port no container has): the rule allows nothing.
    Ports::Listed(listed)
}

fn resolve_peers(
    peers: Option<&[NetworkPolicyPeer]>,
    namespace: &str,
    pods: &[PodView<'_>],
    namespace_labels: &BTreeMap<&str, Option<&BTreeMap<String, String>>>,
) -> Peers {
    let Some(peers) = peers.filter(|p| !p.is_empty()) else {
        return Peers::Any;
    };
    let mut addresses = BTreeSet::new();
    let mut blocks = Vec::new();
    for peer in peers {
        if let Some(block) = &peer.ip_block {
            if let Ok(cidr) = block.cidr.parse::<Ipv4Cidr>() {
                let except = block
                    .except
                    .iter()
                    .flatten()
                    .filter_map(|e| e.parse().ok())
                    .collect();
                blocks.push((cidr, except));
            }
            continue;
        }
        let namespace_ok = |pod_namespace: &str| match &peer.namespace_selector {
            None => pod_namespace == namespace,
            Some(selector) => matches(selector, namespace_labels.get(pod_namespace).copied().flatten()),
        };
        for pod in pods {
            let Some(ip) = pod.ip else { continue };
            let pod_ok = peer
                .pod_selector
                .as_ref()
                .is_none_or(|selector| matches(selector, pod.pod.metadata.labels.as_ref()));
            if namespace_ok(pod.namespace) && pod_ok {
                addresses.insert(ip);
            }
        }
    }
    Peers::Addresses {
        pods: addresses,
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(namespace: &str, name: &str, ip: &str, node: &str, labels: &serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"namespace": namespace, "name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i",
                "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
        }))
        .unwrap()
    }

    fn policy(value: serde_json::Value) -> NetworkPolicy {
        serde_json::from_value(value).unwrap()
    }

    fn namespace(name: &str, labels: &serde_json::Value) -> Namespace {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    }

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn default_deny_isolates_selected_local_pods_with_nothing_allowed() {
        let pods = [
            pod("a", "web", "10.244.0.5", "here", &json!({"app": "web"})),
            pod("a", "far", "10.244.1.5", "there", &json!({"app": "web"})),
            pod("b", "other", "10.244.0.6", "here", &json!({"app": "web"})),
        ];
        let deny = policy(json!({"metadata": {"namespace": "a", "name": "deny"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}));
        let result = isolations([&deny], &pods, &[], "here");
        assert_eq!(result.len(), 1, "only the local pod of the policy's namespace");
        assert_eq!(result[&ip("10.244.0.5")].ingress, Some(vec![]));
        assert_eq!(result[&ip("10.244.0.5")].egress, None);
    }

    #[test]
    fn peers_by_pod_and_namespace_selectors_ip_blocks_and_named_ports() {
        let pods = [
            pod("a", "web", "10.244.0.5", "here", &json!({"app": "web"})),
            pod("a", "client", "10.244.0.7", "here", &json!({"role": "client"})),
            pod("b", "client", "10.244.1.7", "there", &json!({"role": "client"})),
            pod("c", "client", "10.244.1.8", "there", &json!({"role": "client"})),
        ];
        let namespaces = [
            namespace("a", &json!({})),
            namespace("b", &json!({"team": "x"})),
            namespace("c", &json!({})),
        ];
        let allow = policy(json!({"metadata": {"namespace": "a", "name": "allow"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}},
                "ingress": [
                    {"from": [{"podSelector": {"matchLabels": {"role": "client"}}}], "ports": [{"port": "http"}]},
                    {"from": [{"namespaceSelector": {"matchLabels": {"team": "x"}}, "podSelector": {}}],
                     "ports": [{"port": 9000, "endPort": 9010, "protocol": "UDP"}]},
                    {"from": [{"ipBlock": {"cidr": "192.0.2.0/24", "except": ["192.0.2.128/25"]}}]}
                ],
                "egress": [{}]}}));
        let result = isolations([&allow], &pods, &namespaces, "here");
        let web = &result[&ip("10.244.0.5")];
        let ingress = web.ingress.as_ref().unwrap();
        assert_eq!(ingress.len(), 3);
        assert!(ingress.contains(&Allow {
            peers: Peers::Addresses {
                pods: [ip("10.244.0.7")].into(),
                blocks: vec![]
            },
            ports: Ports::Listed(vec![(Protocol::Tcp, 8080, 8080)]),
        }));
        assert!(ingress.contains(&Allow {
            peers: Peers::Addresses {
                pods: [ip("10.244.1.7")].into(),
                blocks: vec![]
            },
            ports: Ports::Listed(vec![(Protocol::Udp, 9000, 9010)]),
        }));
        assert!(ingress.contains(&Allow {
            peers: Peers::Addresses {
                pods: BTreeSet::new(),
                blocks: vec![(
                    "192.0.2.0/24".parse().unwrap(),
                    vec!["192.0.2.128/25".parse().unwrap()]
                )]
            },
            ports: Ports::Any,
        }));
        assert_eq!(
            web.egress,
            Some(vec![Allow {
                peers: Peers::Any,
                ports: Ports::Any
            }]),
            "an egress rule without peers or ports allows everything"
        );
        assert!(
            !result.contains_key(&ip("10.244.0.7")),
            "the client is not selected"
        );
    }
}
