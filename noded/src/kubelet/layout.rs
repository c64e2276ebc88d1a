//! Where a pod's files live on the node: its directory under `DATA_DIR/pods/UID` (hosts and
//! resolv.conf files, network, IPC and PID namespaces, shm, volumes, per-container rootfs and termination
//! message), its logs under the log root, and the runtime ids of its containers.
//!
//! Pure path arithmetic; nothing here creates or reads a file.

use std::path::{Path, PathBuf};

/// The node's pod directories.
#[derive(Clone, Debug)]
pub struct Layout {
    pods: PathBuf,
    logs: PathBuf,
}

impl Layout {
    /// Pods under `data_dir/pods`, logs under `log_root` (`/var/log/pods` in production).
    pub fn new(data_dir: &Path, log_root: &Path) -> Layout {
        Layout {
            pods: data_dir.join("pods"),
            logs: log_root.to_owned(),
        }
    }

    pub fn pods_dir(&self) -> &Path {
        &self.pods
    }

    pub fn log_root(&self) -> &Path {
        &self.logs
    }

    pub fn pod_dir(&self, uid: &str) -> PathBuf {
        self.pods.join(uid)
    }

    pub fn hosts_file(&self, uid: &str) -> PathBuf {
        self.pod_dir(uid).join("etc-hosts")
    }

    pub fn resolv_file(&self, uid: &str) -> PathBuf {
        self.pod_dir(uid).join("resolv.conf")
    }

    /// The bind-mounted network namespace of the pod sandbox.
    pub fn netns(&self, uid: &str) -> PathBuf {
        self.pod_dir(uid).join("netns")
    }

    /// The bind-mounted IPC namespace the pod's containers share (unless hostIPC).
    pub fn ipcns(&self, uid: &str) -> PathBuf {
        self.pod_dir(uid).join("ipcns")
    }

    /// The pod's shared `/dev/shm` (a tmpfs mounted there, unless hostIPC).
    pub fn shm(&self, uid: &str) -> PathBuf {
        self.pod_dir(uid).join("shm")
    }

    /// The PID namespace of a `shareProcessNamespace` pod, its pause process's PID file and
    /// the empty directory that process is confined to.
    pub fn pause(&self, uid: &str) -> crate::kubelet::pause::PausePaths {
        let dir = self.pod_dir(uid);
        crate::kubelet::pause::PausePaths {
            pidns: dir.join("pidns"),
            pid_file: dir.join("pause.pid"),
            root: dir.join("pause-root"),
        }
    }

    /// A volume's directory, as the kubelet names plugins (`kubernetes.io~empty-dir`).
    pub fn volume_dir(&self, uid: &str, plugin: &str, name: &str) -> PathBuf {
        self.pod_dir(uid).join("volumes").join(plugin).join(name)
    }

    /// One container instance's directory: overlay upper/work/merged and its termination
    /// message file.
    pub fn container_dir(&self, uid: &str, container: &str, attempt: u32) -> PathBuf {
        self.pod_dir(uid)
            .join("containers")
            .join(container)
            .join(attempt.to_string())
    }

    /// One container instance's CRI log: `LOG_ROOT/NAMESPACE_NAME_UID/CONTAINER/ATTEMPT.log`
    /// (the layout the node server reads, [`crate::logs::paths`]).
    pub fn container_log(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        container: &str,
        attempt: u32,
    ) -> PathBuf {
        crate::logs::paths::container_log_path(&self.logs, namespace, name, uid, container, attempt)
    }
}

/// The runtime id of a container instance: `UID_CONTAINER_ATTEMPT` (names are DNS labels and
/// UIDs have no `_`, so it parses back unambiguously).
pub fn container_id(uid: &str, container: &str, attempt: u32) -> String {
    format!("{uid}_{container}_{attempt}")
}

/// The pod UID, container name and attempt of a runtime id made by [`container_id`].
pub fn parse_container_id(id: &str) -> Option<(&str, &str, u32)> {
    let (rest, attempt) = id.rsplit_once('_')?;
    let (uid, container) = rest.split_once('_')?;
    let attempt = attempt.parse().ok()?;
    (!uid.is_empty() && !container.is_empty()).then_some((uid, container, attempt))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn container_ids_round_trip() {
        let uid = "0b8f2a4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b";
        let id = container_id(uid, "web-server", 12);
        assert_eq!(parse_container_id(&id), Some((uid, "web-server", 12)));
        assert_eq!(parse_container_id("nonsense"), None);
        assert_eq!(parse_container_id("a_b_c"), None);
    }

    #[test]
    fn logs_follow_the_kubelet_layout() {
        let layout = Layout::new(Path::new("/data"), Path::new("/var/log/pods"));
        assert_eq!(
            layout.container_log("ns", "web", "u1", "app", 2),
            PathBuf::from("/var/log/pods/ns_web_u1/app/2.log")
        );
        assert_eq!(
            layout.volume_dir("u1", "kubernetes.io~empty-dir", "cache"),
            PathBuf::from("/data/pods/u1/volumes/kubernetes.io~empty-dir/cache")
        );
    }
}
