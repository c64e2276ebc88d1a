//! cgroups as noded uses them: which hierarchy is in charge, the pod-level parents
//! (`/kubepods[/burstable|/besteffort]/pod<UID>`) with their limits, and the OOM-kill counter
//! of a container's cgroup.
//!
//! The version choice is libcgroups' own (`get_cgroup_setup`): a unified cgroup2 mount at
//! /sys/fs/cgroup means v2; a tmpfs of v1 controllers means v1, even when a cgroup2 hierarchy
//! is also mounted at /sys/fs/cgroup/unified (hybrid; libcontainer then manages v1
//! controllers only, so we do too). Container cgroups themselves are created and removed by
//! libcontainer; this module never touches them except to read counters.

use std::io;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// The v1 controllers the pod-level parents are created in; libcontainer creates the
/// container cgroups below them in the same hierarchies.
const V1_CONTROLLERS: &[&str] = &["cpu", "cpuacct", "memory", "pids"];

/// Errors setting up cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cannot tell the cgroup version of {ROOT}: {0}")]
    Detect(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The cgroup hierarchy libcontainer manages on this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CgroupVersion {
    /// v1 controllers (legacy or hybrid setups).
    V1,
    /// The unified hierarchy.
    V2,
}

impl CgroupVersion {
    /// The version libcontainer will use, by its own detection.
    pub fn detect() -> Result<Self, CgroupError> {
        use libcgroups::common::{CgroupSetup, get_cgroup_setup};
        match get_cgroup_setup() {
            Ok(CgroupSetup::Unified) => Ok(CgroupVersion::V2),
            Ok(CgroupSetup::Legacy | CgroupSetup::Hybrid) => Ok(CgroupVersion::V1),
            Err(err) => Err(CgroupError::Detect(err.to_string())),
        }
    }

    /// The directory of `cgroup` (an absolute cgroup path such as `/kubepods/pod1/c1`) in
    /// `controller`'s hierarchy; v2 has one hierarchy for all controllers.
    pub fn dir(self, controller: &str, cgroup: &str) -> PathBuf {
        let relative = cgroup.trim_start_matches('/');
        match self {
            CgroupVersion::V1 => Path::new(ROOT).join(controller).join(relative),
            CgroupVersion::V2 => Path::new(ROOT).join(relative),
        }
    }
}

/// A pod's Kubernetes QoS class, which picks its parent cgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

/// Pod-level limits, as the kubelet sets them on `pod<UID>` cgroups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodLimits {
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub memory_limit: Option<i64>,
}

/// The pod's cgroup path as the kubelet's cgroupfs driver names it.
pub fn pod_cgroup_path(qos: QosClass, pod_uid: &str) -> String {
    match qos {
        QosClass::Guaranteed => format!("/kubepods/pod{pod_uid}"),
        QosClass::Burstable => format!("/kubepods/burstable/pod{pod_uid}"),
        QosClass::BestEffort => format!("/kubepods/besteffort/pod{pod_uid}"),
    }
}

/// Creates (or updates) the pod's cgroup with its limits; returns its path, the
/// `cgroup_parent` of the pod's containers.
pub fn ensure_pod_cgroup(
    version: CgroupVersion,
    qos: QosClass,
    pod_uid: &str,
    limits: &PodLimits,
) -> Result<String, CgroupError> {
    let path = pod_cgroup_path(qos, pod_uid);
    match version {
        CgroupVersion::V1 => {
            for controller in V1_CONTROLLERS {
                let dir = version.dir(controller, &path);
                std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            }
            let cpu = version.dir("cpu", &path);
            if let Some(shares) = limits.cpu_shares {
                write(&cpu.join("cpu.shares"), &shares.to_string())?;
            }
            if let Some(period) = limits.cpu_period {
                write(&cpu.join("cpu.cfs_period_us"), &period.to_string())?;
            }
            if let Some(quota) = limits.cpu_quota {
                write(&cpu.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            if let Some(limit) = limits.memory_limit {
                write(
                    &version.dir("memory", &path).join("memory.limit_in_bytes"),
                    &limit.to_string(),
                )?;
            }
        }
        CgroupVersion::V2 => {
            // Each level must delegate the controllers to the next.
            let mut dir = PathBuf::from(ROOT);
            for part in path.trim_start_matches('/').split('/') {
                enable_v2_controllers(&dir)?;
                dir.push(part);
                std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            }
            enable_v2_controllers(&dir)?;
            if let Some(shares) = limits.cpu_shares {
                write(&dir.join("cpu.weight"), &cpu_shares_to_weight(shares).to_string())?;
            }
            if limits.cpu_quota.is_some() || limits.cpu_period.is_some() {
                let quota = match limits.cpu_quota {
                    Some(quota) if quota > 0 => quota.to_string(),
                    _ => "max".to_owned(),
                };
                let period = limits.cpu_period.unwrap_or(100_000);
                write(&dir.join("cpu.max"), &format!("{quota} {period}"))?;
            }
            if let Some(limit) = limits.memory_limit {
                write(&dir.join("memory.max"), &limit.to_string())?;
            }
        }
    }
    Ok(path)
}

/// Removes the pod's cgroup once its containers' cgroups are gone; a missing one is fine. On
/// v1 that is every hierarchy, since libcontainer puts containers into all of them.
pub fn remove_pod_cgroup(version: CgroupVersion, path: &str) -> Result<(), CgroupError> {
    let relative = path.trim_start_matches('/');
    let dirs: Vec<PathBuf> = match version {
        CgroupVersion::V1 => {
            let root = Path::new(ROOT);
            let entries = std::fs::read_dir(root).map_err(io_err(root))?;
            entries
                .flatten()
                .map(|entry| entry.path().join(relative))
                .collect()
        }
        CgroupVersion::V2 => vec![version.dir("", path)],
    };
    for dir in dirs {
        match std::fs::remove_dir(&dir) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(io_err(&dir)(err)),
            _ => {}
        }
    }
    Ok(())
}

/// How many processes of `cgroup` the kernel OOM-killed: `oom_kill` in v2 `memory.events`
/// or v1 `memory.oom_control` (Linux 4.13+). `None` when the cgroup has no memory files.
pub fn oom_kill_count(version: CgroupVersion, cgroup: &str) -> Option<u64> {
    let file = match version {
        CgroupVersion::V1 => version.dir("memory", cgroup).join("memory.oom_control"),
        CgroupVersion::V2 => version.dir("memory", cgroup).join("memory.events"),
    };
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == "oom_kill").then(|| value.trim().parse().ok())?
    })
}

/// The kubelet's cpu.shares -> cgroup v2 cpu.weight conversion (the same one runc uses).
pub fn cpu_shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142
}

fn enable_v2_controllers(dir: &Path) -> Result<(), CgroupError> {
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).map_err(io_err(dir))?;
    let wanted: Vec<String> = available
        .split_whitespace()
        .filter(|c| matches!(*c, "cpu" | "cpuset" | "memory" | "pids" | "io" | "hugetlb"))
        .map(|c| format!("+{c}"))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    write(&dir.join("cgroup.subtree_control"), &wanted.join(" "))
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(io_err(path))
}
