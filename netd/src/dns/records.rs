//! What cluster DNS answers, as CoreDNS's kubernetes plugin does: A records for services
//! (the cluster IP, or a headless service's ready endpoints), for their endpoints' host
//! names (`hostname.subdomain`, StatefulSets) and for pods (`a-b-c-d.ns.pod`), SRV records
//! for named ports, CNAMEs for ExternalName services and PTR records for cluster IPs and
//! named endpoints. Names outside the cluster domain are not ours: the server forwards them.
//!
//! Pure: an [`Index`] built from Services and EndpointSlices answers questions; it knows no
//! sockets and no wire format.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use crate::proxy::model::ipv4_slice_service;

/// The TTL of every answer and of negative answers (the plugin's `ttl` default).
pub const TTL: u32 = 5;

/// The record types the index knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryType {
    A,
    Aaaa,
    Srv,
    Ptr,
    Cname,
    Any,
    Other,
}

/// One record of an answer; names are absolute and end with a dot.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rr {
    A {
        name: String,
        address: Ipv4Addr,
    },
    Cname {
        name: String,
        target: String,
    },
    Srv {
        name: String,
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Ptr {
        name: String,
        target: String,
    },
}

/// The answer to one question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The name exists: these records (none: it has no records of the asked type).
    Records { answers: Vec<Rr>, additionals: Vec<Rr> },
    /// The name does not exist in the cluster domain.
    NxDomain,
    /// Not a cluster name: for the upstream resolvers.
    Forward,
}

#[derive(Clone, Debug, Default)]
struct ServiceEntry {
    cluster_ip: Option<Ipv4Addr>,
    external_name: Option<String>,
    /// (port name, protocol lower-case, port) of the service.
    ports: Vec<(String, String, u16)>,
    publish_not_ready: bool,
    endpoints: Vec<EndpointEntry>,
}

#[derive(Clone, Debug)]
struct EndpointEntry {
    ip: Ipv4Addr,
    hostname: Option<String>,
    ready: bool,
    /// (port name, protocol lower-case, port) of the endpoint.
    ports: Vec<(String, String, u16)>,
}

impl EndpointEntry {
    /// The endpoint's DNS label: its hostname, else its address with dashes.
    fn label(&self) -> String {
        self.hostname
            .clone()
            .unwrap_or_else(|| self.ip.to_string().replace('.', "-"))
    }
}

/// Services and their endpoints, ready for questions.
#[derive(Clone, Debug, Default)]
pub struct Index {
    /// The cluster domain with a final dot (`cluster.local.`).
    domain: String,
    services: HashMap<(String, String), ServiceEntry>,
    /// Address -> names pointing at it, for PTR.
    reverse: HashMap<Ipv4Addr, BTreeSet<String>>,
}

impl Index {
    pub fn new<'a>(
        domain: &str,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Self {
        let domain = format!("{}.", domain.trim_end_matches('.').to_ascii_lowercase());
        let mut entries: HashMap<(String, String), ServiceEntry> = HashMap::new();
        for service in services {
            let Some(spec) = service.spec.as_ref() else {
                continue;
            };
            let key = (
                service.metadata.namespace.clone().unwrap_or_default(),
                service.metadata.name.clone().unwrap_or_default(),
            );
            let external_name = (spec.type_.as_deref() == Some("ExternalName"))
                .then(|| spec.external_name.clone())
                .flatten();
            entries.insert(
                key,
                ServiceEntry {
                    cluster_ip: spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok()),
                    external_name,
                    ports: spec
                        .ports
                        .iter()
                        .flatten()
                        .filter_map(|p| {
                            Some((
                                p.name.clone().unwrap_or_default(),
                                p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase(),
                                u16::try_from(p.port).ok()?,
                            ))
                        })
                        .collect(),
                    publish_not_ready: spec.publish_not_ready_addresses == Some(true),
                    endpoints: Vec::new(),
                },
            );
        }
        let mut seen: BTreeMap<(String, String), BTreeSet<Ipv4Addr>> = BTreeMap::new();
        for slice in slices {
            let Some(key) = ipv4_slice_service(slice) else {
                continue;
            };
            let Some(entry) = entries.get_mut(&key) else {
                continue;
            };
            let ports: Vec<(String, String, u16)> = slice
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    Some((
                        p.name.clone().unwrap_or_default(),
                        p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase(),
                        u16::try_from(p.port?).ok()?,
                    ))
                })
                .collect();
            for endpoint in &slice.endpoints {
                let Some(ip) = endpoint
                    .addresses
                    .first()
                    .and_then(|a| a.parse::<Ipv4Addr>().ok())
                else {
                    continue;
                };
                if !seen.entry(key.clone()).or_default().insert(ip) {
                    continue;
                }
                entry.endpoints.push(EndpointEntry {
                    ip,
                    hostname: endpoint.hostname.clone(),
                    ready: endpoint.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
                    ports: ports.clone(),
                });
            }
        }
        let mut reverse: HashMap<Ipv4Addr, BTreeSet<String>> = HashMap::new();
        for ((namespace, name), entry) in &mut entries {
            entry.endpoints.sort_by_key(|e| e.ip);
            let service_name = format!("{name}.{namespace}.svc.{domain}");
            if let Some(ip) = entry.cluster_ip {
                reverse.entry(ip).or_default().insert(service_name.clone());
            }
            for endpoint in &entry.endpoints {
                if let Some(hostname) = &endpoint.hostname {
                    reverse
                        .entry(endpoint.ip)
                        .or_default()
                        .insert(format!("{hostname}.{service_name}"));
                }
            }
        }
        Self {
            domain,
            services: entries,
            reverse,
        }
    }

    /// The answer to `name` (absolute or not, any case) of `kind`.
    pub fn answer(&self, name: &str, kind: QueryType) -> Answer {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let qname = format!("{name}.");
        if let Some(address) = name.strip_suffix(".in-addr.arpa") {
            return self.reverse(&qname, address, kind);
        }
        let Some(local) = qname.strip_suffix(&self.domain).map(|l| l.trim_end_matches('.')) else {
            return Answer::Forward;
        };
        let labels: Vec<&str> = if local.is_empty() {
            Vec::new()
        } else {
            local.split('.').collect()
        };
        let records = |answers: Vec<Rr>| Answer::Records {
            answers,
            additionals: Vec::new(),
        };
        match labels.as_slice() {
            // The domain itself, `svc` and `pod`, and namespaces: names that exist.
            [] | ["svc" | "pod"] | [_, "svc" | "pod"] => records(Vec::new()),
            [ip, _namespace, "pod"] => match ip.replace('-', ".").parse::<Ipv4Addr>() {
                Ok(address) if matches!(kind, QueryType::A | QueryType::Any) => {
                    records(vec![Rr::A { name: qname, address }])
                }
                Ok(_) => records(Vec::new()),
                Err(_) => Answer::NxDomain,
            },
            [service, namespace, "svc"] => self.service(&qname, namespace, service, kind),
            [endpoint, service, namespace, "svc"] => {
                let Some(entry) = self
                    .services
                    .get(&((*namespace).to_owned(), (*service).to_owned()))
                else {
                    return Answer::NxDomain;
                };
                let found: Vec<Rr> = self
                    .visible(entry)
                    .filter(|e| e.label() == *endpoint)
                    .map(|e| Rr::A {
                        name: qname.clone(),
                        address: e.ip,
                    })
                    .collect();
                if found.is_empty() {
                    Answer::NxDomain
                } else if matches!(kind, QueryType::A | QueryType::Any) {
                    records(found)
                } else {
                    records(Vec::new())
                }
            }
            [port, protocol, service, namespace, "svc"]
                if port.starts_with('_') && protocol.starts_with('_') =>
            {
                self.srv(
                    &qname,
                    namespace,
                    service,
                    Some((&port[1..], &protocol[1..])),
                    kind,
                )
            }
            _ => Answer::NxDomain,
        }
    }

    /// Endpoints the service's names show: ready ones (all with publishNotReadyAddresses).
    fn visible<'a>(&self, entry: &'a ServiceEntry) -> impl Iterator<Item = &'a EndpointEntry> {
        let all = entry.publish_not_ready;
        entry.endpoints.iter().filter(move |e| all || e.ready)
    }

    fn service_fqdn(&self, namespace: &str, service: &str) -> String {
        format!("{service}.{namespace}.svc.{}", self.domain)
    }

    fn service(&self, qname: &str, namespace: &str, service: &str, kind: QueryType) -> Answer {
        let Some(entry) = self.services.get(&(namespace.to_owned(), service.to_owned())) else {
            return Answer::NxDomain;
        };
        if let Some(target) = &entry.external_name {
            return Answer::Records {
                answers: vec![Rr::Cname {
                    name: qname.to_owned(),
                    target: format!("{}.", target.trim_end_matches('.')),
                }],
                additionals: Vec::new(),
            };
        }
        match kind {
            QueryType::A | QueryType::Any => {
                let answers = match entry.cluster_ip {
                    Some(address) => vec![Rr::A {
                        name: qname.to_owned(),
                        address,
                    }],
                    None => self
                        .visible(entry)
                        .map(|e| Rr::A {
                            name: qname.to_owned(),
                            address: e.ip,
                        })
                        .collect(),
                };
                Answer::Records {
                    answers,
                    additionals: Vec::new(),
                }
            }
            QueryType::Srv => self.srv(qname, namespace, service, None, kind),
            _ => Answer::Records {
                answers: Vec::new(),
                additionals: Vec::new(),
            },
        }
    }

    /// SRV records of the service's named port `port` (every port when `None`).
    fn srv(
        &self,
        qname: &str,
        namespace: &str,
        service: &str,
        port: Option<(&str, &str)>,
        kind: QueryType,
    ) -> Answer {
        let Some(entry) = self.services.get(&(namespace.to_owned(), service.to_owned())) else {
            return Answer::NxDomain;
        };
        let wanted = |name: &str, protocol: &str| port.is_none_or(|(p, q)| p == name && q == protocol);
        let fqdn = self.service_fqdn(namespace, service);
        let mut answers = Vec::new();
        let mut additionals = Vec::new();
        if entry.cluster_ip.is_some() {
            for (name, protocol, number) in &entry.ports {
                if wanted(name, protocol) && (port.is_none() || !name.is_empty()) {
                    answers.push(Rr::Srv {
                        name: qname.to_owned(),
                        priority: 0,
                        weight: 100,
                        port: *number,
                        target: fqdn.clone(),
                    });
                }
            }
            if let (Some(address), false) = (entry.cluster_ip, answers.is_empty()) {
                additionals.push(Rr::A { name: fqdn, address });
            }
        } else {
            for endpoint in self.visible(entry) {
                let target = format!("{}.{fqdn}", endpoint.label());
                let mut matched = false;
                for (name, protocol, number) in &endpoint.ports {
                    if wanted(name, protocol) && (port.is_none() || !name.is_empty()) {
                        matched = true;
                        answers.push(Rr::Srv {
                            name: qname.to_owned(),
                            priority: 0,
                            weight: 100,
                            port: *number,
                            target: target.clone(),
                        });
                    }
                }
                if matched {
                    additionals.push(Rr::A {
                        name: target,
                        address: endpoint.ip,
                    });
                }
            }
        }
        if port.is_some() && answers.is_empty() {
            return Answer::NxDomain;
        }
        if !matches!(kind, QueryType::Srv | QueryType::Any) {
            return Answer::Records {
                answers: Vec::new(),
                additionals: Vec::new(),
            };
        }
        let count = u16::try_from(answers.len()).unwrap_or(u16::MAX).max(1);
        for answer in &mut answers {
            if let Rr::Srv { weight, .. } = answer {
                *weight = 100 / count;
            }
        }
        Answer::Records { answers, additionals }
    }

    fn reverse(&self, qname: &str, reversed: &str, kind: QueryType) -> Answer {
        let octets: Vec<&str> = reversed.split('.').rev().collect();
        let address = if octets.len() == 4 {
            octets.join(".").parse::<Ipv4Addr>().ok()
        } else {
            None
        };
        let Some(names) = address.and_then(|a| self.reverse.get(&a)) else {
            return Answer::Forward;
        };
        let answers = if matches!(kind, QueryType::Ptr | QueryType::Any) {
            names
                .iter()
                .map(|target| Rr::Ptr {
                    name: qname.to_owned(),
                    target: target.clone(),
                })
                .collect()
        } else {
            Vec::new()
        };
        Answer::Records {
            answers,
            additionals: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::model::SERVICE_NAME_LABEL;
    use serde_json::json;

    fn index() -> Index {
        let services: Vec<Service> = [
            json!({"metadata": {"namespace": "default", "name": "web"},
                   "spec": {"clusterIP": "10.96.0.20", "ports": [{"name": "http", "port": 80}]}}),
            json!({"metadata": {"namespace": "default", "name": "db"},
                   "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}}),
            json!({"metadata": {"namespace": "default", "name": "ext"},
                   "spec": {"type": "ExternalName", "externalName": "example.org"}}),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
        let slices: Vec<EndpointSlice> = [json!({
            "metadata": {"namespace": "default", "name": "db-1", "labels": {SERVICE_NAME_LABEL: "db"}},
            "addressType": "IPv4",
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.0.7"], "hostname": "db-0", "conditions": {"ready": true}},
                {"addresses": ["10.244.0.8"], "hostname": "db-1", "conditions": {"ready": true}},
                {"addresses": ["10.244.0.9"], "hostname": "db-2", "conditions": {"ready": false}}
            ]
        })]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect();
        Index::new("cluster.local", &services, &slices)
    }

    fn a(answer: Answer) -> Vec<String> {
        match answer {
            Answer::Records { answers, .. } => answers
                .into_iter()
                .map(|rr| match rr {
                    Rr::A { address, .. } => address.to_string(),
                    Rr::Cname { target, .. } | Rr::Ptr { target, .. } => target,
                    Rr::Srv { port, target, .. } => format!("{port} {target}"),
                })
                .collect(),
            other => vec![format!("{other:?}")],
        }
    }

    #[test]
    fn services_headless_services_and_their_endpoints() {
        let index = index();
        assert_eq!(
            a(index.answer("web.default.svc.cluster.local.", QueryType::A)),
            ["10.96.0.20"]
        );
        assert_eq!(
            a(index.answer("WEB.default.svc.cluster.local", QueryType::A)),
            ["10.96.0.20"]
        );
        assert_eq!(
            a(index.answer("db.default.svc.cluster.local.", QueryType::A)),
            ["10.244.0.7", "10.244.0.8"],
            "ready endpoints only"
        );
        assert_eq!(
            a(index.answer("db-1.db.default.svc.cluster.local.", QueryType::A)),
            ["10.244.0.8"]
        );
        assert_eq!(
            a(index.answer("db-2.db.default.svc.cluster.local.", QueryType::A)),
            ["NxDomain"]
        );
        assert_eq!(
            a(index.answer("web.default.svc.cluster.local.", QueryType::Aaaa)),
            Vec::<String>::new()
        );
        assert_eq!(
            a(index.answer("nope.default.svc.cluster.local.", QueryType::A)),
            ["NxDomain"]
        );
        assert_eq!(
            a(index.answer("web.other.svc.cluster.local.", QueryType::A)),
            ["NxDomain"]
        );
        assert_eq!(
            a(index.answer("ext.default.svc.cluster.local.", QueryType::A)),
            ["example.org."]
        );
        assert_eq!(a(index.answer("example.org.", QueryType::A)), ["Forward"]);
        assert_eq!(
            a(index.answer("10-244-3-4.default.pod.cluster.local.", QueryType::A)),
            ["10.244.3.4"]
        );
    }

    #[test]
    fn srv_and_ptr_records() {
        let index = index();
        assert_eq!(
            a(index.answer("_http._tcp.web.default.svc.cluster.local.", QueryType::Srv)),
            ["80 web.default.svc.cluster.local."]
        );
        assert_eq!(
            a(index.answer("_pg._tcp.db.default.svc.cluster.local.", QueryType::Srv)),
            [
                "5432 db-0.db.default.svc.cluster.local.",
                "5432 db-1.db.default.svc.cluster.local."
            ]
        );
        assert_eq!(
            a(index.answer("_nope._tcp.web.default.svc.cluster.local.", QueryType::Srv)),
            ["NxDomain"]
        );
        assert_eq!(
            a(index.answer("20.0.96.10.in-addr.arpa.", QueryType::Ptr)),
            ["web.default.svc.cluster.local."]
        );
        assert_eq!(
            a(index.answer("8.0.244.10.in-addr.arpa.", QueryType::Ptr)),
            ["db-1.db.default.svc.cluster.local."]
        );
        assert_eq!(
            a(index.answer("1.2.0.192.in-addr.arpa.", QueryType::Ptr)),
            ["Forward"]
        );
    }
}
