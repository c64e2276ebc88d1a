//! The kubelet-managed `/etc/hosts` of a pod (upstream's `managedHostsFileContent`,
//! `nodeHostsFileContent`, `GeneratePodHostNameAndDomain`): localhost entries, the pod IPs
//! with the hostname (and `hostname.subdomain.namespace.svc.<cluster domain>`), the
//! hostAliases section; for hostNetwork pods, the node's own hosts file under a header.
//!
//! Pure content generation plus one write of the file the caller names; it mounts nothing.

use std::path::Path;

use k8s_openapi::api::core::v1::{HostAlias, Pod};
use rudder_machinery::validation::formats::{is_dns1123_label, is_dns1123_subdomain};

const MANAGED_HEADER: &str = "# Kubernetes-managed hosts file.\n";
const MANAGED_HEADER_HOST_NETWORK: &str = "# Kubernetes-managed hosts file (host network).\n";

/// Errors naming the pod field at fault; texts are upstream's.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    #[error("pod Hostname {0:?} is not a valid DNS label: {1}")]
    InvalidHostname(String, String),
    #[error("pod HostnameOverride {0:?} is not a valid DNS subdomain: {1}")]
    InvalidHostnameOverride(String, String),
    #[error("pod Subdomain {0:?} is not a valid DNS label: {1}")]
    InvalidSubdomain(String, String),
    #[error("hostname for pod {0:?} was invalid: {1:?}")]
    EmptyTruncated(String, String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Caps a hostname at 63 characters, trimming trailing `-` and `.` after the cut.
fn truncate_hostname(pod_name: &str, hostname: &str) -> Result<String, HostsError> {
    const MAX: usize = 63;
    if hostname.len() <= MAX {
        return Ok(hostname.to_owned());
    }
    let truncated = hostname[..MAX].trim_end_matches(['-', '.']);
    if truncated.is_empty() {
        return Err(HostsError::EmptyTruncated(
            pod_name.to_owned(),
            hostname.to_owned(),
        ));
    }
    Ok(truncated.to_owned())
}

/// The pod's hostname and host domain (`<subdomain>.<namespace>.svc.<cluster domain>`, or
/// empty without a subdomain), as upstream's `GeneratePodHostNameAndDomain`.
pub fn pod_hostname_and_domain(pod: &Pod, cluster_domain: &str) -> Result<(String, String), HostsError> {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
    let spec = pod.spec.as_ref();
    if let Some(over) = spec.and_then(|s| s.hostname_override.as_deref()) {
        let errs = is_dns1123_subdomain(over);
        if !errs.is_empty() {
            return Err(HostsError::InvalidHostnameOverride(
                over.to_owned(),
                errs.join(";"),
            ));
        }
        return Ok((truncate_hostname(name, over)?, String::new()));
    }
    let mut hostname = name.to_owned();
    if let Some(h) = spec.and_then(|s| s.hostname.as_deref()).filter(|h| !h.is_empty()) {
        let errs = is_dns1123_label(h);
        if !errs.is_empty() {
            return Err(HostsError::InvalidHostname(h.to_owned(), errs.join(";")));
        }
        hostname = h.to_owned();
    }
    let hostname = truncate_hostname(name, &hostname)?;
    let mut domain = String::new();
    if let Some(sub) = spec
        .and_then(|s| s.subdomain.as_deref())
        .filter(|s| !s.is_empty())
    {
        let errs = is_dns1123_label(sub);
        if !errs.is_empty() {
            return Err(HostsError::InvalidSubdomain(sub.to_owned(), errs.join(";")));
        }
        domain = format!("{sub}.{namespace}.svc.{cluster_domain}");
    }
    Ok((hostname, domain))
}

fn host_alias_entries(aliases: &[HostAlias]) -> String {
    if aliases.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n# Entries added by HostAliases.\n");
    for alias in aliases {
        let names = alias.hostnames.as_deref().unwrap_or(&[]).join("\t");
        out.push_str(&format!("{}\t{names}\n", alias.ip));
    }
    out
}

/// The hosts file of a pod on the pod network.
pub fn managed_hosts_content(
    pod_ips: &[String],
    hostname: &str,
    host_domain: &str,
    aliases: &[HostAlias],
) -> String {
    let mut out = String::from(MANAGED_HEADER);
    out.push_str("127.0.0.1\tlocalhost\n");
    out.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str("fe00::0\tip6-localnet\n");
    out.push_str("fe00::0\tip6-mcastprefix\n");
    out.push_str("fe00::1\tip6-allnodes\n");
    out.push_str("fe00::2\tip6-allrouters\n");
    for ip in pod_ips {
        if host_domain.is_empty() {
            out.push_str(&format!("{ip}\t{hostname}\n"));
        } else {
            out.push_str(&format!("{ip}\t{hostname}.{host_domain}\t{hostname}\n"));
        }
    }
    out.push_str(&host_alias_entries(aliases));
    out
}

/// The hosts file of a hostNetwork pod: the node's own, under its header, plus hostAliases.
pub fn host_network_hosts_content(node_hosts: &str, aliases: &[HostAlias]) -> String {
    format!(
        "{MANAGED_HEADER_HOST_NETWORK}{node_hosts}{}",
        host_alias_entries(aliases)
    )
}

/// Whether the kubelet mounts its hosts file: it has pod IPs or the pod uses the host network
/// (and the container does not mount something at /etc/hosts itself; the caller checks that).
pub fn should_mount_hosts_file(pod: &Pod, pod_ips: &[String]) -> bool {
    !pod_ips.is_empty() || pod.spec.as_ref().and_then(|s| s.host_network) == Some(true)
}

/// Writes `target` (the pod directory's `etc-hosts`, mode 0644) for `pod`; `node_hosts_path`
/// is read for hostNetwork pods (`/etc/hosts` in production).
pub fn ensure_hosts_file(
    target: &Path,
    pod: &Pod,
    pod_ips: &[String],
    cluster_domain: &str,
    node_hosts_path: &Path,
) -> Result<(), HostsError> {
    use std::os::unix::fs::PermissionsExt;
    let spec = pod.spec.as_ref();
    let aliases = spec.and_then(|s| s.host_aliases.as_deref()).unwrap_or(&[]);
    let content = if spec.and_then(|s| s.host_network) == Some(true) {
        let node = std::fs::read_to_string(node_hosts_path)?;
        host_network_hosts_content(&node, aliases)
    } else {
        let (hostname, domain) = pod_hostname_and_domain(pod, cluster_domain)?;
        managed_hosts_content(pod_ips, &hostname, &domain, aliases)
    };
    std::fs::write(target, content)?;
    std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o644))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(hostname: Option<&str>, subdomain: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web-0".into()),
                namespace: Some("shop".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                hostname: hostname.map(Into::into),
                subdomain: subdomain.map(Into::into),
                host_aliases: Some(vec![HostAlias {
                    ip: "10.1.2.3".into(),
                    hostnames: Some(vec!["foo.local".into(), "bar.local".into()]),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn managed_file_with_subdomain_and_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("etc-hosts");
        let pod = pod(Some("db"), Some("nodes"));
        ensure_hosts_file(
            &target,
            &pod,
            &["10.244.0.7".into()],
            "cluster.local",
            Path::new("/nonexistent"),
        )
        .unwrap();
        let content = std::fs::read_to_string(&target).unwrap();
        assert_eq!(
            content,
            "# Kubernetes-managed hosts file.\n\
             127.0.0.1\tlocalhost\n\
             ::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\n\
             fe00::0\tip6-mcastprefix\n\
             fe00::1\tip6-allnodes\n\
             fe00::2\tip6-allrouters\n\
             10.244.0.7\tdb.nodes.shop.svc.cluster.local\tdb\n\
             \n\
             # Entries added by HostAliases.\n\
             10.1.2.3\tfoo.local\tbar.local\n"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn plain_pod_uses_its_name() {
        let mut p = pod(None, None);
        p.spec.as_mut().unwrap().host_aliases = None;
        let (h, d) = pod_hostname_and_domain(&p, "cluster.local").unwrap();
        assert_eq!((h.as_str(), d.as_str()), ("web-0", ""));
        let content = managed_hosts_content(&["10.0.0.1".into(), "fd00::1".into()], &h, &d, &[]);
        assert!(content.ends_with("fe00::2\tip6-allrouters\n10.0.0.1\tweb-0\nfd00::1\tweb-0\n"));
    }

    #[test]
    fn long_and_invalid_hostnames() {
        let mut p = pod(None, None);
        p.metadata.name = Some(format!("{}-.{}", "a".repeat(61), "b".repeat(10)));
        let (h, _) = pod_hostname_and_domain(&p, "cluster.local").unwrap();
        assert_eq!(h, "a".repeat(61));
        let err = pod_hostname_and_domain(&pod(Some("Bad_Name"), None), "cluster.local").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("pod Hostname \"Bad_Name\" is not a valid DNS label: ")
        );
    }

    #[test]
    fn host_network_copies_the_node_file() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("hosts");
        std::fs::write(&node, "127.0.0.1 localhost\n192.168.0.5 mynode\n").unwrap();
        let mut p = pod(None, None);
        p.spec.as_mut().unwrap().host_network = Some(true);
        assert!(should_mount_hosts_file(&p, &[]));
        let target = dir.path().join("etc-hosts");
        ensure_hosts_file(&target, &p, &[], "cluster.local", &node).unwrap();
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n192.168.0.5 mynode\n\n# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"
        );
        assert!(!should_mount_hosts_file(&pod(None, None), &[]));
    }
}
