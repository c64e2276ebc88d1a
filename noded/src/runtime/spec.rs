//! Our own container description and its rendering to an OCI runtime `config.json`.
//!
//! [`ContainerSpec`] says what noded wants (rootfs, process, user, mounts, namespaces,
//! security, cgroup limits); [`ContainerSpec::render`] turns it into the OCI document with
//! the defaults containerd's CRI plugin applies (capabilities, default mounts, masked and
//! read-only paths, device rules). It does not touch the filesystem: preparing the rootfs,
//! volumes and files named by mounts is the caller's job.

use std::path::PathBuf;

use libcontainer::oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Errors rendering a spec.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("the container has no command to run")]
    NoArgs,
    #[error("unknown capability {0:?}")]
    UnknownCapability(String),
    #[error("invalid OCI spec: {0}")]
    Invalid(#[from] serde_json::Error),
    #[error("the default seccomp profile: {0}")]
    DefaultSeccomp(String),
}

/// Everything the runtime needs to create one container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSpec {
    /// The prepared root filesystem (an overlay mount or a plain directory).
    pub rootfs: PathBuf,
    /// The command and its arguments; `args[0]` is looked up in PATH from `env`.
    pub args: Vec<String>,
    /// `NAME=value` pairs.
    pub env: Vec<String>,
    /// Working directory; `/` when empty.
    pub cwd: String,
    pub user: User,
    /// Set only when the container has its own UTS namespace.
    pub hostname: Option<String>,
    /// Mounts besides the defaults; one with the same destination as a default replaces it.
    pub mounts: Vec<Mount>,
    pub namespaces: Namespaces,
    /// Capabilities added to and dropped from containerd's default set (`NET_ADMIN` or
    /// `CAP_NET_ADMIN`; `ALL` for every capability). Drops apply first, as containerd does.
    pub capabilities_add: Vec<String>,
    pub capabilities_drop: Vec<String>,
    /// All capabilities, no masked or read-only paths, writable /sys and cgroups, all devices.
    pub privileged: bool,
    pub readonly_rootfs: bool,
    pub no_new_privileges: bool,
    /// The seccomp filter (none for privileged containers, as containerd does).
    pub seccomp: Seccomp,
    /// Kernel parameters set in the container's namespaces (`linux.sysctl`).
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// The parent cgroup, e.g. `/kubepods/burstable/pod<UID>`; the container's cgroup is
    /// `<parent>/<container id>`.
    pub cgroup_parent: String,
    pub resources: Resources,
    pub oom_score_adj: Option<i32>,
    /// Allocate a terminal for the process (the shim holds its master); `TERM=xterm` is added
    /// unless the environment sets TERM, as containerd does.
    pub tty: bool,
    /// Keep a stdin open that attached clients write to (the container's `stdin`).
    pub stdin: bool,
    /// Close that stdin after the first attach session that used it (`stdinOnce`).
    pub stdin_once: bool,
    /// Recorded in the OCI configuration's `annotations`, for whoever adopts the container
    /// later ([`super::Runtime::annotations`]).
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// A container's seccomp filter, as the CRI's security profile types.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seccomp {
    /// No filter.
    #[default]
    Unconfined,
    /// The runtime's default profile ([`DEFAULT_SECCOMP_PROFILE`]) for the container's
    /// capabilities.
    RuntimeDefault,
    /// An OCI `linux.seccomp` document (a Localhost profile as read from its file).
    Profile(Value),
}

/// The default seccomp profile as data: an OCI `linux.seccomp` document whose architectures
/// are listed per machine (`std::env::consts::ARCH`) and whose rules may name an
/// `unlessCapability` that lifts them.
pub const DEFAULT_SECCOMP_PROFILE: &str = include_str!("seccomp_default.json");

/// The default profile for a container with `capabilities` on this machine's architecture.
pub fn default_seccomp(capabilities: &[String]) -> Result<Value, SpecError> {
    let data: Value = serde_json::from_str(DEFAULT_SECCOMP_PROFILE)?;
    let invalid = |what: &str| SpecError::DefaultSeccomp(what.to_owned());
    let mut profile = serde_json::Map::new();
    profile.insert("defaultAction".into(), data["defaultAction"].clone());
    if let Some(arches) = data["architectures"].get(std::env::consts::ARCH) {
        profile.insert("architectures".into(), arches.clone());
    }
    let rules = data["syscalls"]
        .as_array()
        .ok_or_else(|| invalid("no syscalls"))?;
    let mut syscalls = Vec::new();
    for rule in rules {
        let mut rule = rule
            .as_object()
            .cloned()
            .ok_or_else(|| invalid("a rule is not an object"))?;
        if let Some(cap) = rule.remove("unlessCapability")
            && capabilities.iter().any(|c| cap == c.as_str())
        {
            continue;
        }
        syscalls.push(Value::Object(rule));
    }
    profile.insert("syscalls".into(), Value::Array(syscalls));
    Ok(Value::Object(profile))
}

/// The identity the process runs as.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

/// One mount into the container.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mount {
    pub destination: String,
    /// A host path for bind mounts, else the filesystem source (`tmpfs`, ...).
    pub source: String,
    /// `bind` or a filesystem type.
    pub kind: String,
    /// Extra mount options (`size=64m`, `mode=1777`, ...).
    pub options: Vec<String>,
    pub readonly: bool,
    /// Bind mount propagation.
    pub propagation: Propagation,
}

/// Mount propagation, as the CRI names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Propagation {
    /// `rprivate`: no propagation (Kubernetes `None`).
    #[default]
    Private,
    /// `rslave`: host mounts appear in the container (`HostToContainer`).
    HostToContainer,
    /// `rshared`: both ways (`Bidirectional`, privileged containers only).
    Bidirectional,
}

impl Propagation {
    fn option(self) -> &'static str {
        match self {
            Propagation::Private => "rprivate",
            Propagation::HostToContainer => "rslave",
            Propagation::Bidirectional => "rshared",
        }
    }
}

/// Where each namespace comes from. The mount namespace is always new.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Namespaces {
    pub network: NamespaceMode,
    pub ipc: NamespaceMode,
    pub uts: NamespaceMode,
    pub pid: NamespaceMode,
}

/// A new namespace, the host's, or an existing one joined by path (`/proc/PID/ns/net`, a
/// bind-mounted namespace file).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceMode {
    #[default]
    New,
    Host,
    Join(PathBuf),
}

/// cgroup limits; `None` leaves the kernel default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    /// Bytes; swap is limited to the same value (no swap), as the kubelet does.
    pub memory_limit: Option<i64>,
    pub pids_limit: Option<i64>,
}

/// containerd's default capability set for containers.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux defines (through CAP_CHECKPOINT_RESTORE, 5.9).
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Paths containerd hides from unprivileged containers.
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
];

/// Paths containerd makes read-only in unprivileged containers.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

impl ContainerSpec {
    /// The container's cgroup path: `<cgroup_parent>/<id>`.
    pub fn cgroup_path(&self, id: &str) -> String {
        format!("{}/{id}", self.cgroup_parent.trim_end_matches('/'))
    }

    /// The OCI runtime configuration for the container `id`.
    pub fn render(&self, id: &str) -> Result<Spec, SpecError> {
        if self.args.is_empty() {
            return Err(SpecError::NoArgs);
        }
        let capabilities = self.capabilities()?;
        let cwd = if self.cwd.is_empty() {
            "/"
        } else {
            self.cwd.as_str()
        };
        let mut env = self.env.clone();
        if self.tty && !env.iter().any(|entry| entry.starts_with("TERM=")) {
            env.push("TERM=xterm".to_owned());
        }
        let mut process = json!({
            "terminal": self.tty,
            "user": {
                "uid": self.user.uid,
                "gid": self.user.gid,
                "additionalGids": self.user.additional_gids,
            },
            "args": self.args,
            "env": env,
            "cwd": cwd,
            "capabilities": {
                "bounding": capabilities,
                "effective": capabilities,
                "permitted": capabilities,
            },
        });
        // Omitted when false, as runtime-spec's Go type (`omitempty`) writes it: libcontainer
        // takes a present field, even `false`, to mean it may load seccomp filters after
        // dropping CAP_SYS_ADMIN, which the kernel refuses without no_new_privs.
        if self.no_new_privileges {
            process["noNewPrivileges"] = json!(true);
        }
        if let Some(adj) = self.oom_score_adj {
            process["oomScoreAdj"] = json!(adj);
        }

        let mut linux = json!({
            "namespaces": self.namespaces_json(),
            "cgroupsPath": self.cgroup_path(id),
            "resources": self.resources_json(),
        });
        if !self.privileged {
            linux["maskedPaths"] = json!(MASKED_PATHS);
            linux["readonlyPaths"] = json!(READONLY_PATHS);
            match &self.seccomp {
                Seccomp::Unconfined => {}
                Seccomp::RuntimeDefault => linux["seccomp"] = default_seccomp(&capabilities)?,
                Seccomp::Profile(profile) => linux["seccomp"] = profile.clone(),
            }
        }
        if !self.sysctls.is_empty() {
            linux["sysctl"] = json!(self.sysctls);
        }

        let mut spec = json!({
            "ociVersion": "1.0.2",
            "root": { "path": self.rootfs, "readonly": self.readonly_rootfs },
            "process": process,
            "mounts": self.mounts_json(),
            "linux": linux,
        });
        if !self.annotations.is_empty() {
            spec["annotations"] = json!(self.annotations);
        }
        if let Some(hostname) = &self.hostname
            && self.namespaces.uts == NamespaceMode::New
        {
            spec["hostname"] = json!(hostname);
        }
        Ok(serde_json::from_value(spec)?)
    }

    /// containerd's defaults with drops, then adds, applied; everything when privileged.
    fn capabilities(&self) -> Result<Vec<String>, SpecError> {
        if self.privileged {
            return Ok(ALL_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect());
        }
        let mut caps: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect();
        for drop in &self.capabilities_drop {
            if drop.eq_ignore_ascii_case("ALL") {
                caps.clear();
                continue;
            }
            let name = capability_name(drop)?;
            caps.retain(|c| *c != name);
        }
        for add in &self.capabilities_add {
            let added = if add.eq_ignore_ascii_case("ALL") {
                ALL_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect()
            } else {
                vec![capability_name(add)?]
            };
            for cap in added {
                if !caps.contains(&cap) {
                    caps.push(cap);
                }
            }
        }
        Ok(caps)
    }

    fn namespaces_json(&self) -> Vec<Value> {
        let mut namespaces = vec![json!({ "type": "mount" })];
        let wanted = [
            ("network", &self.namespaces.network),
            ("ipc", &self.namespaces.ipc),
            ("uts", &self.namespaces.uts),
            ("pid", &self.namespaces.pid),
        ];
        for (kind, mode) in wanted {
            match mode {
                NamespaceMode::Host => {}
                NamespaceMode::New => namespaces.push(json!({ "type": kind })),
                NamespaceMode::Join(path) => {
                    namespaces.push(json!({ "type": kind, "path": path }));
                }
            }
        }
        namespaces
    }

    fn resources_json(&self) -> Value {
        let devices = if self.privileged {
            json!([{ "allow": true, "access": "rwm" }])
        } else {
            // Deny everything; the runtime allows its default devices (null, zero, tty...).
            json!([{ "allow": false, "access": "rwm" }])
        };
        let mut resources = json!({ "devices": devices });
        let limits = &self.resources;
        let mut cpu = serde_json::Map::new();
        if let Some(shares) = limits.cpu_shares {
            cpu.insert("shares".into(), json!(shares));
        }
        if let Some(quota) = limits.cpu_quota {
            cpu.insert("quota".into(), json!(quota));
        }
        if let Some(period) = limits.cpu_period {
            cpu.insert("period".into(), json!(period));
        }
        if !cpu.is_empty() {
            resources["cpu"] = Value::Object(cpu);
        }
        if let Some(limit) = limits.memory_limit {
            resources["memory"] = json!({ "limit": limit, "swap": limit });
        }
        if let Some(pids) = limits.pids_limit {
            resources["pids"] = json!({ "limit": pids });
        }
        resources
    }

    /// containerd's default mounts (without /run, as the CRI plugin drops it), replaced by
    /// any of ours with the same destination, then ours in order.
    fn mounts_json(&self) -> Vec<Value> {
        let sys_mode = if self.privileged { "rw" } else { "ro" };
        let defaults = [
            json!({ "destination": "/proc", "type": "proc", "source": "proc",
                    "options": ["nosuid", "noexec", "nodev"] }),
            json!({ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                    "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] }),
            json!({ "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                    "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] }),
            json!({ "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                    "options": ["nosuid", "noexec", "nodev"] }),
            json!({ "destination": "/sys", "type": "sysfs", "source": "sysfs",
                    "options": ["nosuid", "noexec", "nodev", sys_mode] }),
            json!({ "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                    "options": ["nosuid", "noexec", "nodev", "relatime", sys_mode] }),
            json!({ "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                    "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] }),
        ];
        let mut mounts: Vec<Value> = defaults
            .into_iter()
            .filter(|m| {
                !self
                    .mounts
                    .iter()
                    .any(|own| m["destination"] == own.destination.as_str())
            })
            .collect();
        for mount in &self.mounts {
            let mut options = Vec::new();
            let kind = if mount.kind == "bind" {
                options.push("rbind".to_owned());
                options.push(mount.propagation.option().to_owned());
                "bind"
            } else {
                mount.kind.as_str()
            };
            options.extend(mount.options.iter().cloned());
            options.push(if mount.readonly { "ro" } else { "rw" }.to_owned());
            mounts.push(json!({
                "destination": mount.destination,
                "type": kind,
                "source": mount.source,
                "options": options,
            }));
        }
        mounts
    }
}

/// `net_admin`, `NET_ADMIN` or `CAP_NET_ADMIN` -> `CAP_NET_ADMIN`, if Linux knows it.
fn capability_name(name: &str) -> Result<String, SpecError> {
    let upper = name.to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPABILITIES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(SpecError::UnknownCapability(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn base() -> ContainerSpec {
        ContainerSpec {
            rootfs: PathBuf::from("/var/lib/rudder/rootfs/c1"),
            args: vec!["sh".into(), "-c".into(), "echo hi".into()],
            env: vec!["PATH=/bin".into()],
            cgroup_parent: "/kubepods/burstable/pod123".into(),
            ..Default::default()
        }
    }

    fn json(spec: &ContainerSpec) -> Value {
        serde_json::to_value(spec.render("c1").unwrap()).unwrap()
    }

    fn caps(doc: &Value) -> Vec<String> {
        serde_json::from_value(doc["process"]["capabilities"]["bounding"].clone()).unwrap()
    }

    fn mount<'a>(doc: &'a Value, destination: &str) -> Option<&'a Value> {
        doc["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == destination)
    }

    #[test]
    fn a_terminal_gets_term_xterm_unless_the_environment_sets_term() {
        let mut spec = base();
        spec.tty = true;
        let doc = json(&spec);
        assert_eq!(doc["process"]["terminal"], true);
        assert_eq!(doc["process"]["env"], json!(["PATH=/bin", "TERM=xterm"]));
        spec.env.push("TERM=vt100".into());
        assert_eq!(json(&spec)["process"]["env"], json!(["PATH=/bin", "TERM=vt100"]));
        assert_eq!(json(&base())["process"]["env"], json!(["PATH=/bin"]));
    }

    #[test]
    fn defaults_are_containerds() {
        let doc = json(&base());
        assert_eq!(doc["root"]["path"], "/var/lib/rudder/rootfs/c1");
        assert_eq!(doc["root"]["readonly"], false);
        assert_eq!(doc["process"]["args"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(doc["process"]["cwd"], "/");
        assert_eq!(doc["process"]["user"]["uid"], 0);
        assert_eq!(doc["process"]["terminal"], false);
        let mut got = caps(&doc);
        got.sort();
        let mut want: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| (*c).to_owned()).collect();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(doc["linux"]["cgroupsPath"], "/kubepods/burstable/pod123/c1");
        assert_eq!(doc["linux"]["maskedPaths"], json!(MASKED_PATHS));
        assert_eq!(doc["linux"]["readonlyPaths"], json!(READONLY_PATHS));
        assert_eq!(
            doc["linux"]["namespaces"],
            json!([{"type": "mount"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "pid"}])
        );
        assert_eq!(
            doc["linux"]["resources"]["devices"],
            json!([{"allow": false, "access": "rwm"}])
        );
        assert!(doc["linux"]["resources"].get("memory").is_none());
        assert_eq!(
            mount(&doc, "/sys").unwrap()["options"],
            json!(["nosuid", "noexec", "nodev", "ro"])
        );
        assert_eq!(mount(&doc, "/proc").unwrap()["type"], "proc");
        assert!(
            mount(&doc, "/run").is_none(),
            "the CRI drops containerd's /run mount"
        );
        assert!(doc.get("hostname").is_none());
    }

    #[test]
    fn annotations_are_recorded() {
        let mut spec = base();
        spec.annotations
            .insert("io.kubernetes.cri.image-name".into(), "busybox:1".into());
        assert_eq!(
            json(&spec)["annotations"],
            json!({"io.kubernetes.cri.image-name": "busybox:1"})
        );
    }

    #[test]
    fn process_identity_and_security() {
        let mut spec = base();
        spec.cwd = "/work".into();
        spec.user = User {
            uid: 1000,
            gid: 2000,
            additional_gids: vec![3000, 4000],
        };
        spec.hostname = Some("web-0".into());
        spec.readonly_rootfs = true;
        spec.no_new_privileges = true;
        spec.oom_score_adj = Some(-997);
        let doc = json(&spec);
        assert_eq!(doc["process"]["cwd"], "/work");
        assert_eq!(
            doc["process"]["user"],
            json!({"uid": 1000, "gid": 2000, "additionalGids": [3000, 4000]})
        );
        assert_eq!(doc["hostname"], "web-0");
        assert_eq!(doc["root"]["readonly"], true);
        assert_eq!(doc["process"]["noNewPrivileges"], true);
        assert_eq!(doc["process"]["oomScoreAdj"], -997);
        spec.no_new_privileges = false;
        assert!(json(&spec)["process"].get("noNewPrivileges").is_none());
    }

    #[test]
    fn capabilities_drop_then_add() {
        let mut spec = base();
        spec.capabilities_drop = vec!["NET_RAW".into(), "cap_chown".into()];
        spec.capabilities_add = vec!["NET_ADMIN".into(), "CAP_SYS_TIME".into(), "KILL".into()];
        let got = caps(&json(&spec));
        assert!(!got.contains(&"CAP_NET_RAW".to_owned()));
        assert!(!got.contains(&"CAP_CHOWN".to_owned()));
        assert!(got.contains(&"CAP_NET_ADMIN".to_owned()));
        assert!(got.contains(&"CAP_SYS_TIME".to_owned()));
        assert_eq!(got.iter().filter(|c| *c == "CAP_KILL").count(), 1);

        spec.capabilities_drop = vec!["ALL".into()];
        spec.capabilities_add = vec!["NET_BIND_SERVICE".into()];
        assert_eq!(caps(&json(&spec)), vec!["CAP_NET_BIND_SERVICE".to_owned()]);

        spec.capabilities_add = vec!["NOT_A_CAP".into()];
        assert!(matches!(spec.render("c1"), Err(SpecError::UnknownCapability(c)) if c == "NOT_A_CAP"));
    }

    #[test]
    fn privileged_has_everything_and_nothing_masked() {
        let mut spec = base();
        spec.privileged = true;
        spec.capabilities_drop = vec!["ALL".into()];
        let doc = json(&spec);
        assert_eq!(caps(&doc).len(), ALL_CAPABILITIES.len());
        assert!(doc["linux"].get("maskedPaths").is_none());
        assert!(doc["linux"].get("readonlyPaths").is_none());
        assert_eq!(mount(&doc, "/sys").unwrap()["options"][3], "rw");
        assert_eq!(mount(&doc, "/sys/fs/cgroup").unwrap()["options"][4], "rw");
        assert_eq!(
            doc["linux"]["resources"]["devices"],
            json!([{"allow": true, "access": "rwm"}])
        );
    }

    #[test]
    fn namespaces_new_host_or_joined() {
        let mut spec = base();
        spec.namespaces = Namespaces {
            network: NamespaceMode::Join("/run/netns/pod1".into()),
            ipc: NamespaceMode::Join("/proc/42/ns/ipc".into()),
            uts: NamespaceMode::Host,
            pid: NamespaceMode::New,
        };
        spec.hostname = Some("ignored-without-own-uts".into());
        let doc = json(&spec);
        assert_eq!(
            doc["linux"]["namespaces"],
            json!([
                {"type": "mount"},
                {"type": "network", "path": "/run/netns/pod1"},
                {"type": "ipc", "path": "/proc/42/ns/ipc"},
                {"type": "pid"},
            ])
        );
        assert!(doc.get("hostname").is_none());
    }

    #[test]
    fn mounts_bind_and_replace_defaults() {
        let mut spec = base();
        spec.mounts = vec![
            Mount {
                destination: "/data".into(),
                source: "/var/lib/rudder/pods/p/volumes/data".into(),
                kind: "bind".into(),
                readonly: true,
                propagation: Propagation::HostToContainer,
                ..Default::default()
            },
            Mount {
                destination: "/dev/shm".into(),
                source: "/var/lib/rudder/pods/p/shm".into(),
                kind: "bind".into(),
                ..Default::default()
            },
            Mount {
                destination: "/cache".into(),
                source: "tmpfs".into(),
                kind: "tmpfs".into(),
                options: vec!["size=1m".into()],
                ..Default::default()
            },
        ];
        let doc = json(&spec);
        assert_eq!(
            mount(&doc, "/data").unwrap(),
            &json!({"destination": "/data", "type": "bind", "source": "/var/lib/rudder/pods/p/volumes/data",
                    "options": ["rbind", "rslave", "ro"]})
        );
        let shm: Vec<&Value> = doc["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"] == "/dev/shm")
            .collect();
        assert_eq!(shm.len(), 1);
        assert_eq!(shm[0]["options"], json!(["rbind", "rprivate", "rw"]));
        assert_eq!(
            mount(&doc, "/cache").unwrap()["options"],
            json!(["size=1m", "rw"])
        );
    }

    #[test]
    fn resources_become_cgroup_limits() {
        let mut spec = base();
        spec.resources = Resources {
            cpu_shares: Some(512),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            memory_limit: Some(64 << 20),
            pids_limit: Some(100),
        };
        let doc = json(&spec);
        let resources = &doc["linux"]["resources"];
        assert_eq!(
            resources["cpu"],
            json!({"shares": 512, "quota": 50_000, "period": 100_000})
        );
        assert_eq!(resources["memory"], json!({"limit": 64 << 20, "swap": 64 << 20}));
        assert_eq!(resources["pids"], json!({"limit": 100}));
    }

    #[test]
    fn seccomp_default_unconfined_or_given() {
        let mut spec = base();
        assert!(json(&spec)["linux"].get("seccomp").is_none());
        spec.seccomp = Seccomp::RuntimeDefault;
        let doc = json(&spec);
        let seccomp = &doc["linux"]["seccomp"];
        assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ALLOW");
        let denied = |doc: &Value, name: &str| {
            doc["linux"]["seccomp"]["syscalls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| {
                    r["names"].as_array().unwrap().iter().any(|n| n == name)
                        && r["action"] == "SCMP_ACT_ERRNO"
                })
        };
        assert!(denied(&doc, "mount") && denied(&doc, "keyctl") && denied(&doc, "ptrace"));
        assert!(!denied(&doc, "read"));
        assert!(!seccomp.to_string().contains("unlessCapability"));
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(seccomp["architectures"][0], "SCMP_ARCH_X86_64");
        }
        // A capability lifts the rules it governs.
        spec.capabilities_add = vec!["SYS_ADMIN".into()];
        let doc = json(&spec);
        assert!(!denied(&doc, "mount") && denied(&doc, "keyctl"));
        // Privileged containers run without a filter.
        spec.privileged = true;
        assert!(json(&spec)["linux"].get("seccomp").is_none());

        let mut spec = base();
        let profile = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]});
        spec.seccomp = Seccomp::Profile(profile.clone());
        assert_eq!(json(&spec)["linux"]["seccomp"], profile);
    }

    #[test]
    fn sysctls_are_set() {
        let mut spec = base();
        spec.sysctls.insert("net.ipv4.tcp_syncookies".into(), "0".into());
        assert_eq!(
            json(&spec)["linux"]["sysctl"],
            json!({"net.ipv4.tcp_syncookies": "0"})
        );
    }

    #[test]
    fn a_command_is_required() {
        let mut spec = base();
        spec.args.clear();
        assert!(matches!(spec.render("c1"), Err(SpecError::NoArgs)));
    }
}
