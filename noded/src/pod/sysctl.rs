//! Pod sysctls as the kubelet admits them: upstream's safe set (dropping those the running
//! kernel does not namespace yet) plus the `--allowed-unsafe-sysctls` patterns, each known to
//! belong to the IPC or network namespace; a pod asking for anything else is rejected with
//! reason `SysctlForbidden`.
//!
//! Pure: the kernel release is passed in. Applying the sysctls is the OCI spec's job.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

/// The admission failure reason, as the kubelet's.
pub const FORBIDDEN_REASON: &str = "SysctlForbidden";

/// The safe sysctls with the kernel release that namespaces each (none: always).
const SAFE_SYSCTLS: &[(&str, Option<(u32, u32)>)] = &[
    ("kernel.shm_rmid_forced", None),
    ("net.ipv4.ip_local_port_range", None),
    ("net.ipv4.tcp_syncookies", None),
    ("net.ipv4.ping_group_range", None),
    ("net.ipv4.ip_unprivileged_port_start", None),
    ("net.ipv4.ip_local_reserved_ports", Some((3, 16))),
    ("net.ipv4.tcp_keepalive_time", Some((4, 5))),
    ("net.ipv4.tcp_fin_timeout", Some((4, 6))),
    ("net.ipv4.tcp_keepalive_intvl", Some((4, 5))),
    ("net.ipv4.tcp_keepalive_probes", Some((4, 5))),
    ("net.ipv4.tcp_rmem", Some((4, 15))),
    ("net.ipv4.tcp_wmem", Some((4, 15))),
];

/// The most characters a sysctl (or pattern) may have.
const SYSCTL_MAX_LENGTH: usize = 253;

/// Why the allowlist could not be built (the kubelet refuses to start).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AllowlistError {
    #[error("sysctl {0:?} must have at most 253 characters and match regex {PATTERN_FMT}")]
    Invalid(String),
    #[error("the sysctls {0:?} are not known to be namespaced")]
    NotNamespaced(String),
}

/// The pattern sysctls and patterns must match, as upstream prints it ([`matches_pattern`]).
const PATTERN_FMT: &str = r"([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*([a-z0-9][-_a-z0-9]*)?[a-z0-9*]";

/// The namespace a sysctl belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Namespace {
    Ipc,
    Net,
}

impl Namespace {
    fn name(self) -> &'static str {
        match self {
            Namespace::Ipc => "IPC",
            Namespace::Net => "Net",
        }
    }
}

pub use rudder_machinery::kinds::pod_spec::normalize_sysctl_name as normalize_name;

/// The namespace of a (normalised) sysctl, as upstream's `GetNamespace`.
fn namespace_of(name: &str) -> Option<Namespace> {
    match rudder_machinery::kinds::pod_spec::sysctl_namespace(name)? {
        "Net" => Some(Namespace::Net),
        _ => Some(Namespace::Ipc),
    }
}

/// Whether `entry` matches [`PATTERN_FMT`], anchored: segments split by `.` or `/`, each of lower-case
/// letters, digits, `-` and `_`, beginning and ending with a letter or digit; the last may end
/// in `*` instead.
fn matches_pattern(entry: &str) -> bool {
    let inner = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let segments: Vec<&[u8]> = entry.as_bytes().split(|b| *b == b'.' || *b == b'/').collect();
    let Some((last, rest)) = segments.split_last() else {
        return false;
    };
    let segment = |s: &[u8], last_ok: &dyn Fn(u8) -> bool| match s {
        [] => false,
        [only] => last_ok(*only),
        [first, middle @ .., end] => edge(*first) && middle.iter().all(|b| inner(*b)) && last_ok(*end),
    };
    rest.iter().all(|s| segment(s, &edge)) && segment(last, &|b| edge(b) || b == b'*')
}

/// The sysctls a node allows: exact names and prefixes (patterns ending in `*`).
#[derive(Clone, Debug, Default)]
pub struct Allowlist {
    sysctls: BTreeMap<String, Namespace>,
    prefixes: BTreeMap<String, Namespace>,
}

impl Allowlist {
    /// The safe sysctls the kernel `release` (`uname -r`) namespaces, plus `unsafe_patterns`.
    pub fn new(kernel_release: &str, unsafe_patterns: &[String]) -> Result<Allowlist, AllowlistError> {
        let kernel = parse_release(kernel_release);
        let safe = SAFE_SYSCTLS
            .iter()
            .filter(|(_, needs)| needs.is_none_or(|min| kernel.is_some_and(|k| k >= min)))
            .map(|(name, _)| (*name).to_owned());
        let mut list = Allowlist::default();
        for entry in safe.chain(unsafe_patterns.iter().cloned()) {
            if entry.len() > SYSCTL_MAX_LENGTH || !matches_pattern(&entry) {
                return Err(AllowlistError::Invalid(entry));
            }
            let mut name = normalize_name(&entry);
            let prefixed = match name.find('*') {
                Some(i) => {
                    name.truncate(i);
                    true
                }
                None => false,
            };
            let Some(namespace) = namespace_of(&name) else {
                return Err(AllowlistError::NotNamespaced(name));
            };
            if prefixed {
                list.prefixes.insert(name, namespace);
            } else {
                list.sysctls.insert(name, namespace);
            }
        }
        Ok(list)
    }

    fn validate(&self, sysctl: &str, host_net: bool, host_ipc: bool) -> Result<(), String> {
        let sysctl = normalize_name(sysctl);
        let namespace = self.sysctls.get(&sysctl).copied().or_else(|| {
            self.prefixes
                .iter()
                .find(|(prefix, _)| sysctl.starts_with(prefix.as_str()))
                .map(|(_, ns)| *ns)
        });
        match namespace {
            None => Err(format!("{sysctl:?} not allowlisted")),
            Some(ns @ Namespace::Ipc) if host_ipc => {
                Err(format!("{sysctl:?} not allowed with host {} enabled", ns.name()))
            }
            Some(ns @ Namespace::Net) if host_net => {
                Err(format!("{sysctl:?} not allowed with host {} enabled", ns.name()))
            }
            Some(_) => Ok(()),
        }
    }

    /// Admits `pod` or says why not: the message of the kubelet's admission result.
    pub fn admit(&self, pod: &Pod) -> Result<(), String> {
        let Some(spec) = pod.spec.as_ref() else {
            return Ok(());
        };
        let sysctls = spec
            .security_context
            .as_ref()
            .and_then(|s| s.sysctls.as_deref())
            .unwrap_or_default();
        for sysctl in sysctls {
            self.validate(
                &sysctl.name,
                spec.host_network == Some(true),
                spec.host_ipc == Some(true),
            )
            .map_err(|err| format!("forbidden sysctl: {err}"))?;
        }
        Ok(())
    }
}

/// The pod's sysctls for the OCI spec, by normalized name.
pub fn pod_sysctls(pod: &Pod) -> BTreeMap<String, String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|s| s.sysctls.as_ref())
        .into_iter()
        .flatten()
        .map(|s| (normalize_name(&s.name), s.value.clone()))
        .collect()
}

/// `6.1.0-13-amd64` -> (6, 1).
fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn pod(sysctls: &[(&str, &str)], extra: &serde_json::Value) -> Pod {
        let list: Vec<_> = sysctls
            .iter()
            .map(|(n, v)| json!({"name": n, "value": v}))
            .collect();
        let mut spec = json!({"containers": [], "securityContext": {"sysctls": list}});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        serde_json::from_value(json!({"spec": spec})).unwrap()
    }

    #[test]
    fn safe_sysctls_are_admitted_and_others_forbidden_as_upstream() {
        let list = Allowlist::new("6.1.0-13-amd64", &[]).unwrap();
        assert_eq!(
            list.admit(&pod(
                &[("kernel.shm_rmid_forced", "1"), ("net/ipv4/tcp_syncookies", "1")],
                &json!({})
            )),
            Ok(())
        );
        assert_eq!(
            list.admit(&pod(&[("net.core.somaxconn", "1024")], &json!({}))),
            Err("forbidden sysctl: \"net.core.somaxconn\" not allowlisted".to_owned())
        );
        assert_eq!(
            list.admit(&pod(
                &[("net.ipv4.tcp_syncookies", "1")],
                &json!({"hostNetwork": true})
            )),
            Err("forbidden sysctl: \"net.ipv4.tcp_syncookies\" not allowed with host Net enabled".to_owned())
        );
        assert_eq!(
            list.admit(&pod(
                &[("kernel.shm_rmid_forced", "1")],
                &json!({"hostIPC": true})
            )),
            Err("forbidden sysctl: \"kernel.shm_rmid_forced\" not allowed with host IPC enabled".to_owned())
        );
    }

    #[test]
    fn old_kernels_drop_sysctls_they_do_not_namespace() {
        let list = Allowlist::new("4.4.0", &[]).unwrap();
        assert!(
            list.admit(&pod(&[("net.ipv4.tcp_keepalive_time", "60")], &json!({})))
                .is_err()
        );
        assert!(
            list.admit(&pod(&[("net.ipv4.ip_local_reserved_ports", "80")], &json!({})))
                .is_ok()
        );
    }

    #[test]
    fn the_pattern_is_matched_by_segments() {
        for ok in [
            "a",
            "*",
            "net.*",
            "kernel.shm_rmid_forced",
            "net/ipv4/ping_group_range",
            "a-b.c_d*",
            "a1.2b",
        ] {
            assert!(matches_pattern(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "a.",
            ".a",
            "a..b",
            "-a",
            "a-.b",
            "A.b",
            "a*.b",
            "*a",
            "a b",
            "net.ipv4.*x",
        ] {
            assert!(!matches_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn unsafe_patterns_extend_the_list() {
        let list = Allowlist::new("6.1", &["net.core.*".to_owned(), "kernel.msgmax".to_owned()]).unwrap();
        assert!(
            list.admit(&pod(&[("net.core.somaxconn", "1024")], &json!({})))
                .is_ok()
        );
        assert!(list.admit(&pod(&[("kernel.msgmax", "1")], &json!({}))).is_ok());
        assert_eq!(
            Allowlist::new("6.1", &["kernel.panic".to_owned()]).unwrap_err(),
            AllowlistError::NotNamespaced("kernel.panic".to_owned())
        );
        assert!(matches!(
            Allowlist::new("6.1", &["Net.Core".to_owned()]),
            Err(AllowlistError::Invalid(_))
        ));
    }

    #[test]
    fn names_are_normalized() {
        assert_eq!(
            normalize_name("net/ipv4/conf/eno2.100/rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter"
        );
        assert_eq!(
            normalize_name("net.ipv4.conf.eno2/100.rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter"
        );
        let p = pod(&[("net/ipv4/tcp_syncookies", "1")], &json!({}));
        assert_eq!(
            pod_sysctls(&p),
            BTreeMap::from([("net.ipv4.tcp_syncookies".to_owned(), "1".to_owned())])
        );
    }
}
