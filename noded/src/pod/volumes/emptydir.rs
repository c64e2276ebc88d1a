//! emptyDir volumes (upstream's `pkg/volume/emptydir`): a 0777 directory on the node's disk,
//! or for `medium: Memory` a tmpfs mounted there whose size is the smallest positive of the
//! node's allocatable memory, the pod's memory limit and the volume's `sizeLimit`.
//!
//! Mounting needs root; the size computation is pure. Hugepages media are not supported.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use k8s_openapi::api::core::v1::{Container, EmptyDirVolumeSource, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use rudder_machinery::validation::quantity::parse_quantity;

const PERM: u32 = 0o777;

/// Why an emptyDir could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum EmptyDirError {
    #[error("unknown storage medium {0:?}")]
    UnknownMedium(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("mount tmpfs at {0}: {1}")]
    Mount(String, nix::Error),
}

fn bytes(q: Option<&Quantity>) -> i64 {
    q.and_then(|q| parse_quantity(&q.0).ok()).map_or(0, |p| p.value())
}

fn memory_limit(c: &Container) -> i64 {
    bytes(
        c.resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("memory")),
    )
}

/// The pod's memory limit as its cgroup gets it (upstream's `ResourceConfigForPod`): the
/// pod-level limit, else the effective sum of container limits when every container has one.
pub fn pod_memory_limit(pod: &Pod) -> Option<i64> {
    let spec = pod.spec.as_ref()?;
    let pod_level = bytes(
        spec.resources
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("memory")),
    );
    if pod_level > 0 {
        return Some(pod_level);
    }
    let inits = spec.init_containers.as_deref().unwrap_or(&[]);
    // Upstream's `PodLimits` with a check that every container declares a limit; an init
    // container counts with the sidecars started before it.
    let mut declared = spec.containers.iter().all(|c| memory_limit(c) > 0);
    let mut sidecars = 0i64;
    let mut init_peak = 0i64;
    for c in inits {
        let effective = if c.restart_policy.as_deref() == Some("Always") {
            sidecars = sidecars.saturating_add(memory_limit(c));
            sidecars
        } else {
            sidecars.saturating_add(memory_limit(c))
        };
        declared &= effective > 0;
        init_peak = init_peak.max(effective);
    }
    if !declared {
        return None;
    }
    let apps = spec
        .containers
        .iter()
        .map(memory_limit)
        .fold(sidecars, i64::saturating_add);
    let overhead = bytes(spec.overhead.as_ref().and_then(|o| o.get("memory")));
    Some(apps.max(init_peak).saturating_add(overhead))
}

/// Upstream's `calculateEmptyDirMemorySize`: the tmpfs size in bytes.
pub fn memory_volume_size(node_allocatable_memory: i64, source: &EmptyDirVolumeSource, pod: &Pod) -> i64 {
    let mut size = node_allocatable_memory;
    if let Some(limit) = pod_memory_limit(pod).filter(|l| *l > 0 && *l <= size) {
        size = limit;
    }
    let volume_limit = bytes(source.size_limit.as_ref());
    if volume_limit > 0 && volume_limit <= size {
        size = volume_limit;
    }
    size
}

/// Creates the directory with mode 0777 whatever the umask (upstream's `setupDir`).
fn setup_dir(dir: &Path) -> Result<(), EmptyDirError> {
    std::fs::create_dir_all(dir).map_err(|e| EmptyDirError::Io(dir.display().to_string(), e))?;
    let mode = std::fs::metadata(dir)
        .map_err(|e| EmptyDirError::Io(dir.display().to_string(), e))?
        .permissions()
        .mode();
    if mode & 0o777 != PERM {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(PERM))
            .map_err(|e| EmptyDirError::Io(dir.display().to_string(), e))?;
    }
    Ok(())
}

/// Whether `dir` is a tmpfs mount point (from /proc/self/mountinfo).
pub fn is_tmpfs_mount(dir: &Path) -> bool {
    let Ok(canonical) = std::fs::canonicalize(dir) else {
        return false;
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let target = canonical.to_string_lossy();
    info.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            return false;
        };
        fields.get(4).is_some_and(|m| unescape_mountinfo(m) == target)
            && fields.get(sep + 1) == Some(&"tmpfs")
    })
}

fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Sets up an emptyDir at `dir`. For `medium: Memory` a tmpfs is mounted (needs root) unless
/// one already is; `node_allocatable_memory` is in bytes.
pub fn setup_empty_dir(
    dir: &Path,
    source: &EmptyDirVolumeSource,
    pod: &Pod,
    node_allocatable_memory: i64,
) -> Result<(), EmptyDirError> {
    match source.medium.as_deref().unwrap_or("") {
        "" => setup_dir(dir),
        "Memory" => {
            setup_dir(dir)?;
            if is_tmpfs_mount(dir) {
                return Ok(());
            }
            let size = memory_volume_size(node_allocatable_memory, source, pod);
            let options = (size > 0).then(|| format!("size={size}"));
            nix::mount::mount(
                Some("tmpfs"),
                dir,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                options.as_deref(),
            )
            .map_err(|e| EmptyDirError::Mount(dir.display().to_string(), e))
        }
        other => Err(EmptyDirError::UnknownMedium(other.to_owned())),
    }
}

/// Tears an emptyDir down: unmounts its tmpfs if any, then removes the directory.
pub fn teardown_empty_dir(dir: &Path) -> Result<(), EmptyDirError> {
    if is_tmpfs_mount(dir) {
        nix::mount::umount(dir).map_err(|e| EmptyDirError::Mount(dir.display().to_string(), e))?;
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(EmptyDirError::Io(dir.display().to_string(), e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};

    fn container(limit: Option<&str>, restart: Option<&str>) -> Container {
        Container {
            resources: Some(ResourceRequirements {
                limits: limit.map(|l| [("memory".to_owned(), Quantity(l.into()))].into()),
                ..Default::default()
            }),
            restart_policy: restart.map(Into::into),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, inits: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: Some(inits),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    const MI: i64 = 1 << 20;

    #[test]
    fn sizes() {
        let gi = 1024 * MI;
        let none = EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: None,
        };
        let small = EmptyDirVolumeSource {
            size_limit: Some(Quantity("64Mi".into())),
            ..none.clone()
        };
        let big = EmptyDirVolumeSource {
            size_limit: Some(Quantity("10Gi".into())),
            ..none.clone()
        };
        let unlimited = pod(vec![container(None, None)], vec![]);
        assert_eq!(memory_volume_size(gi, &none, &unlimited), gi);
        assert_eq!(memory_volume_size(gi, &small, &unlimited), 64 * MI);
        assert_eq!(memory_volume_size(gi, &big, &unlimited), gi);
        let limited = pod(
            vec![container(Some("100Mi"), None), container(Some("50Mi"), None)],
            vec![
                container(Some("20Mi"), Some("Always")),
                container(Some("300Mi"), None),
            ],
        );
        // max(100 + 50 + 20, 20 + 300)
        assert_eq!(pod_memory_limit(&limited), Some(320 * MI));
        assert_eq!(memory_volume_size(gi, &none, &limited), 320 * MI);
        assert_eq!(memory_volume_size(gi, &small, &limited), 64 * MI);
        assert_eq!(
            pod_memory_limit(&pod(
                vec![container(Some("1Mi"), None)],
                vec![container(None, None)]
            )),
            None
        );
    }

    #[test]
    fn disk_dir_is_world_writable() {
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("volumes/kubernetes.io~empty-dir/cache");
        setup_empty_dir(&vol, &EmptyDirVolumeSource::default(), &pod(vec![], vec![]), 0).unwrap();
        assert_eq!(
            std::fs::metadata(&vol).unwrap().permissions().mode() & 0o777,
            0o777
        );
        assert!(!is_tmpfs_mount(&vol));
        let err = setup_empty_dir(
            &vol,
            &EmptyDirVolumeSource {
                medium: Some("Tape".into()),
                size_limit: None,
            },
            &pod(vec![], vec![]),
            0,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "unknown storage medium \"Tape\"");
        teardown_empty_dir(&vol).unwrap();
        assert!(!vol.exists());
    }

    #[test]
    fn memory_medium_mounts_sized_tmpfs() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let vol = dir.path().join("mem");
        let source = EmptyDirVolumeSource {
            medium: Some("Memory".into()),
            size_limit: Some(Quantity("8Mi".into())),
        };
        match setup_empty_dir(&vol, &source, &pod(vec![], vec![]), 1024 * MI) {
            Ok(()) => {}
            Err(EmptyDirError::Mount(_, nix::Error::EPERM)) => {
                eprintln!("skipped: needs root (mount not permitted in this environment)");
                return;
            }
            Err(e) => panic!("{e}"),
        }
        assert!(is_tmpfs_mount(&vol));
        let stat = nix::sys::statvfs::statvfs(&vol).unwrap();
        assert_eq!(stat.blocks() as i64 * stat.fragment_size() as i64, 8 * MI);
        // Idempotent.
        setup_empty_dir(&vol, &source, &pod(vec![], vec![]), 1024 * MI).unwrap();
        teardown_empty_dir(&vol).unwrap();
        assert!(!vol.exists());
    }
}
