//! A pod's `/etc/resolv.conf` (upstream's `pkg/kubelet/network/dns`): the dnsPolicy
//! (ClusterFirst, ClusterFirstWithHostNet, Default, None), dnsConfig merged in, the limits the
//! kubelet enforces (3 nameservers, 32 search domains, 2048 characters of search line,
//! 253 characters per domain) with the warning events it records, the host's resolv.conf
//! parsed as upstream parses it, and the file rendered as the container runtime writes it.
//!
//! Pure: the host's resolv.conf arrives as text; the events are returned, not sent.

use k8s_openapi::api::core::v1::{Pod, PodDNSConfigOption};

/// Cluster DNS service IP used when none is configured.
pub const DEFAULT_CLUSTER_DNS: &str = "10.96.0.10";
/// Cluster domain used when none is configured.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

const MAX_NAMESERVERS: usize = 3;
const MAX_SEARCH_PATHS: usize = 32;
const MAX_SEARCH_LIST_CHARS: usize = 2048;
const MAX_DOMAIN_LEN: usize = 253;
const MAX_RESOLV_CONF_LEN: usize = 10 << 20;

/// The node's DNS settings (the kubelet's `clusterDNS`, `clusterDomain`, `resolvConf`).
#[derive(Clone, Debug)]
pub struct DnsSettings {
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    /// The host resolv.conf's text; `None` when the kubelet is configured with no resolver
    /// file (`--resolv-conf=""`).
    pub host_resolv_conf: Option<String>,
    /// The node's IPs (used only without a resolver file).
    pub node_ips: Vec<std::net::IpAddr>,
}

impl Default for DnsSettings {
    fn default() -> Self {
        DnsSettings {
            cluster_dns: vec![DEFAULT_CLUSTER_DNS.to_owned()],
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.to_owned(),
            host_resolv_conf: Some(String::new()),
            node_ips: Vec::new(),
        }
    }
}

/// Nameservers, search domains and options of a resolv.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub servers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

/// A warning the kubelet records as an event (on the pod, or on the node for
/// `MissingClusterDNS`'s node copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsEvent {
    pub reason: &'static str,
    pub message: String,
    pub on_node: bool,
}

/// Why a resolv.conf could not be read; texts are upstream's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolvError {
    #[error("Encountered error while parsing resolv conf file. Error: {0}")]
    Parse(String),
    #[error("the read limit is reached")]
    TooLong,
}

/// Adds options by name: a later option with the same name (the part before `:`) replaces the
/// earlier one in its place.
fn append_options(options: &mut Vec<String>, new: impl IntoIterator<Item = String>) {
    for option in new {
        let name = option.split(':').next().unwrap_or("").to_owned();
        match options
            .iter_mut()
            .find(|o| o.split(':').next().unwrap_or("") == name)
        {
            Some(existing) => *existing = option,
            None => options.push(option),
        }
    }
}

/// Upstream's `parseResolvConf`: nameserver lines, the last search line (`.` dropped,
/// trailing dots trimmed), options merged by name.
pub fn parse_resolv_conf(text: &str) -> Result<DnsConfig, ResolvError> {
    if text.len() > MAX_RESOLV_CONF_LEN {
        return Err(ResolvError::TooLong);
    }
    let mut config = DnsConfig::default();
    let mut errors = Vec::new();
    for line in text.split('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        match fields.first() {
            Some(&"nameserver") => match fields.get(1) {
                Some(server) => config.servers.push((*server).to_owned()),
                None => errors.push("nameserver list is empty ".to_owned()),
            },
            Some(&"search") => {
                config.searches = fields[1..]
                    .iter()
                    .filter(|s| **s != ".")
                    .map(|s| s.strip_suffix('.').unwrap_or(s).to_owned())
                    .collect();
            }
            Some(&"options") => {
                append_options(&mut config.options, fields[1..].iter().map(|s| (*s).to_owned()));
            }
            _ => {}
        }
    }
    match errors.len() {
        0 => Ok(config),
        1 => Err(ResolvError::Parse(errors.remove(0))),
        _ => Err(ResolvError::Parse(format!("[{}]", errors.join(", ")))),
    }
}

fn omit_duplicates(items: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    items.into_iter().filter(|s| seen.insert(s.clone())).collect()
}

fn merge_options(existing: &[String], pod: &[PodDNSConfigOption]) -> Vec<String> {
    let mut merged: Vec<(String, String)> = Vec::new();
    let mut set = |name: &str, value: &str| match merged.iter_mut().find(|(n, _)| n == name) {
        Some(entry) => entry.1 = value.to_owned(),
        None => merged.push((name.to_owned(), value.to_owned())),
    };
    for op in existing {
        match op.split_once(':') {
            Some((name, value)) => set(name, value),
            None => set(op, ""),
        }
    }
    for op in pod {
        set(
            op.name.as_deref().unwrap_or(""),
            op.value.as_deref().unwrap_or(""),
        );
    }
    merged
        .into_iter()
        .map(|(n, v)| if v.is_empty() { n } else { format!("{n}:{v}") })
        .collect()
}

enum DnsType {
    Cluster,
    Host,
    None,
}

fn dns_type(pod: &Pod) -> DnsType {
    let spec = pod.spec.as_ref();
    let host_network = spec.and_then(|s| s.host_network) == Some(true);
    match spec.and_then(|s| s.dns_policy.as_deref()) {
        Some("None") => DnsType::None,
        Some("ClusterFirstWithHostNet") => DnsType::Cluster,
        Some("ClusterFirst") if !host_network => DnsType::Cluster,
        Some("ClusterFirst") | Some("Default") => DnsType::Host,
        // Invalid (or unset): upstream logs and falls back to ClusterFirst.
        _ => DnsType::Cluster,
    }
}

fn fit_search(mut searches: Vec<String>, events: &mut Vec<DnsEvent>) -> Vec<String> {
    let mut exceeded = false;
    if searches.len() > MAX_SEARCH_PATHS {
        searches.truncate(MAX_SEARCH_PATHS);
        exceeded = true;
    }
    let before = searches.len();
    searches.retain(|s| s.len() <= MAX_DOMAIN_LEN);
    exceeded |= searches.len() != before;
    let line_len = searches.join(" ").len();
    if line_len > MAX_SEARCH_LIST_CHARS {
        let mut cut_len = 0;
        let mut cut = 0;
        for s in searches.iter().rev() {
            cut_len += s.len() + 1;
            cut += 1;
            if line_len - cut_len <= MAX_SEARCH_LIST_CHARS {
                break;
            }
        }
        searches.truncate(searches.len() - cut);
        exceeded = true;
    }
    if exceeded {
        events.push(DnsEvent {
            reason: "DNSConfigForming",
            message: format!(
                "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: {}",
                searches.join(" ")
            ),
            on_node: false,
        });
    }
    searches
}

/// The pod's DNS config (upstream's `GetPodDNS`) and the warning events it records.
pub fn pod_dns_config(pod: &Pod, settings: &DnsSettings) -> Result<(DnsConfig, Vec<DnsEvent>), ResolvError> {
    let mut events = Vec::new();
    let mut config = match &settings.host_resolv_conf {
        Some(text) => parse_resolv_conf(text)?,
        None => DnsConfig::default(),
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
    let mut use_host = false;
    match dns_type(pod) {
        DnsType::None => config = DnsConfig::default(),
        DnsType::Cluster if !settings.cluster_dns.is_empty() => {
            config.servers = settings.cluster_dns.clone();
            if !settings.cluster_domain.is_empty() {
                let domain = &settings.cluster_domain;
                let mut searches = vec![
                    format!("{namespace}.svc.{domain}"),
                    format!("svc.{domain}"),
                    domain.clone(),
                ];
                searches.append(&mut config.searches);
                config.searches = omit_duplicates(searches);
            }
            config.options = vec!["ndots:5".to_owned()];
        }
        DnsType::Cluster => {
            let message = "kubelet does not have ClusterDNS IP configured and cannot create Pod using \"ClusterFirst\" policy. Falling back to \"Default\" policy.";
            events.push(DnsEvent {
                reason: "MissingClusterDNS",
                message: message.to_owned(),
                on_node: true,
            });
            events.push(DnsEvent {
                reason: "MissingClusterDNS",
                message: format!(
                    "pod: \"{}_{}({})\". {message}",
                    pod.metadata.name.as_deref().unwrap_or(""),
                    namespace,
                    pod.metadata.uid.as_deref().unwrap_or("")
                ),
                on_node: false,
            });
            use_host = true;
        }
        DnsType::Host => use_host = true,
    }
    if use_host && settings.host_resolv_conf.is_none() {
        for ip in &settings.node_ips {
            config
                .servers
                .push(if ip.is_ipv6() { "::1" } else { "127.0.0.1" }.to_owned());
        }
        if config.servers.is_empty() {
            config.servers.push("127.0.0.1".to_owned());
        }
        config.searches = vec![".".to_owned()];
    }
    if let Some(pod_config) = pod.spec.as_ref().and_then(|s| s.dns_config.as_ref()) {
        let mut servers = std::mem::take(&mut config.servers);
        servers.extend(pod_config.nameservers.iter().flatten().cloned());
        config.servers = omit_duplicates(servers);
        let mut searches = std::mem::take(&mut config.searches);
        searches.extend(pod_config.searches.iter().flatten().cloned());
        config.searches = omit_duplicates(searches);
        config.options = merge_options(&config.options, pod_config.options.as_deref().unwrap_or(&[]));
    }
    if config.servers.len() > MAX_NAMESERVERS {
        config.servers.truncate(MAX_NAMESERVERS);
        events.push(DnsEvent {
            reason: "DNSConfigForming",
            message: format!(
                "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: {}",
                config.servers.join(" ")
            ),
            on_node: false,
        });
    }
    config.searches = fit_search(std::mem::take(&mut config.searches), &mut events);
    Ok((config, events))
}

/// The file as the runtime writes it: `search`, `nameserver` lines, `options`. An empty config
/// renders as an empty string (the runtime then copies the host's file).
pub fn render_resolv_conf(config: &DnsConfig) -> String {
    let mut out = String::new();
    if !config.searches.is_empty() {
        out.push_str(&format!("search {}\n", config.searches.join(" ")));
    }
    for server in &config.servers {
        out.push_str(&format!("nameserver {server}\n"));
    }
    if !config.options.is_empty() {
        out.push_str(&format!("options {}\n", config.options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use k8s_openapi::api::core::v1::{PodDNSConfig, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    const HOST: &str = "# generated\nnameserver 192.168.0.1\nnameserver 8.8.8.8\nsearch example.com. corp.example.com .\noptions ndots:2 edns0\noptions ndots:3\n";

    fn pod(policy: &str, host_network: bool, dns_config: Option<PodDNSConfig>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("team".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                dns_policy: Some(policy.into()),
                host_network: Some(host_network),
                dns_config,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn settings() -> DnsSettings {
        DnsSettings {
            host_resolv_conf: Some(HOST.into()),
            ..Default::default()
        }
    }

    #[test]
    fn parses_host_file() {
        let c = parse_resolv_conf(HOST).unwrap();
        assert_eq!(c.servers, ["192.168.0.1", "8.8.8.8"]);
        assert_eq!(c.searches, ["example.com", "corp.example.com"]);
        assert_eq!(c.options, ["ndots:3", "edns0"]);
        assert_eq!(
            parse_resolv_conf("nameserver\n").unwrap_err().to_string(),
            "Encountered error while parsing resolv conf file. Error: nameserver list is empty "
        );
    }

    #[test]
    fn cluster_first() {
        let (c, events) = pod_dns_config(&pod("ClusterFirst", false, None), &settings()).unwrap();
        assert!(events.is_empty());
        assert_eq!(
            render_resolv_conf(&c),
            "search team.svc.cluster.local svc.cluster.local cluster.local example.com corp.example.com\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
        // ClusterFirst on the host network behaves as Default; ClusterFirstWithHostNet does not.
        let (c, _) = pod_dns_config(&pod("ClusterFirst", true, None), &settings()).unwrap();
        assert_eq!(c.servers, ["192.168.0.1", "8.8.8.8"]);
        let (c, _) = pod_dns_config(&pod("ClusterFirstWithHostNet", true, None), &settings()).unwrap();
        assert_eq!(c.servers, ["10.96.0.10"]);
    }

    #[test]
    fn default_and_none_with_dns_config() {
        let (c, _) = pod_dns_config(&pod("Default", false, None), &settings()).unwrap();
        assert_eq!(
            render_resolv_conf(&c),
            "search example.com corp.example.com\nnameserver 192.168.0.1\nnameserver 8.8.8.8\noptions ndots:3 edns0\n"
        );
        let cfg = PodDNSConfig {
            nameservers: Some(vec!["1.1.1.1".into()]),
            searches: Some(vec!["my.dns.search.suffix".into()]),
            options: Some(vec![
                PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                },
                PodDNSConfigOption {
                    name: Some("edns0".into()),
                    value: None,
                },
            ]),
        };
        let (c, _) = pod_dns_config(&pod("None", false, Some(cfg.clone())), &settings()).unwrap();
        assert_eq!(
            render_resolv_conf(&c),
            "search my.dns.search.suffix\nnameserver 1.1.1.1\noptions ndots:2 edns0\n"
        );
        let (c, _) = pod_dns_config(&pod("ClusterFirst", false, Some(cfg)), &settings()).unwrap();
        assert_eq!(c.servers, ["10.96.0.10", "1.1.1.1"]);
        assert_eq!(c.options, ["ndots:2", "edns0"]);
        assert_eq!(c.searches.last().unwrap(), "my.dns.search.suffix");
    }

    #[test]
    fn limits_are_enforced_with_events() {
        let cfg = PodDNSConfig {
            nameservers: Some(vec!["1.1.1.1".into(), "2.2.2.2".into(), "3.3.3.3".into()]),
            searches: Some((0..40).map(|i| format!("d{i}.example")).collect()),
            options: None,
        };
        let (c, events) = pod_dns_config(&pod("ClusterFirst", false, Some(cfg)), &settings()).unwrap();
        assert_eq!(c.servers, ["10.96.0.10", "1.1.1.1", "2.2.2.2"]);
        assert_eq!(c.searches.len(), 32);
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[0].message,
            "Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: 10.96.0.10 1.1.1.1 2.2.2.2"
        );
        assert!(events[1].message.starts_with(
            "Search Line limits were exceeded, some search paths have been omitted, the applied search line is: team.svc.cluster.local "
        ));

        // The 2048-character line limit drops domains from the end.
        let long: Vec<String> = (0..12).map(|i| format!("{i:02}{}", "x".repeat(198))).collect();
        let cfg = PodDNSConfig {
            nameservers: Some(vec!["1.1.1.1".into()]),
            searches: Some(long),
            options: None,
        };
        let (c, events) = pod_dns_config(&pod("None", false, Some(cfg)), &settings()).unwrap();
        assert_eq!(c.searches.len(), 10);
        assert!(c.searches.join(" ").len() <= 2048);
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn no_resolver_file_and_no_cluster_dns() {
        let s = DnsSettings {
            cluster_dns: vec![],
            host_resolv_conf: None,
            node_ips: vec!["192.168.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
            ..Default::default()
        };
        let (c, events) = pod_dns_config(&pod("ClusterFirst", false, None), &s).unwrap();
        assert_eq!(c.servers, ["127.0.0.1", "::1"]);
        assert_eq!(c.searches, ["."]);
        assert_eq!(
            events.iter().filter(|e| e.reason == "MissingClusterDNS").count(),
            2
        );
        assert!(
            events[1]
                .message
                .starts_with("pod: \"p_team(u1)\". kubelet does not have ClusterDNS IP")
        );
    }
}
