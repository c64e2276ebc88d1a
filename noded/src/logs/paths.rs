//! Where container logs live on a node: `LOG_ROOT/<namespace>_<pod>_<uid>/<container>/<restartCount>.log`,
//! the kubelet's layout (`/var/log/pods` in production).
//!
//! It owns the path convention and finding a container's instances on disk; the pod worker
//! (which writes logs through the shim) and the log server (which reads them) both use it. It
//! does not read or write log contents.

use std::io;
use std::path::{Path, PathBuf};

/// The kubelet's default root of pod log directories.
pub const DEFAULT_LOG_ROOT: &str = "/var/log/pods";

/// The directory of one pod's logs.
pub fn pod_log_dir(root: &Path, namespace: &str, pod: &str, uid: &str) -> PathBuf {
    root.join(format!("{namespace}_{pod}_{uid}"))
}

/// The directory of one container's logs, one file per instance.
pub fn container_log_dir(root: &Path, namespace: &str, pod: &str, uid: &str, container: &str) -> PathBuf {
    pod_log_dir(root, namespace, pod, uid).join(container)
}

/// The log file of the container instance started after `restart_count` restarts.
pub fn container_log_path(
    root: &Path,
    namespace: &str,
    pod: &str,
    uid: &str,
    container: &str,
    restart_count: u32,
) -> PathBuf {
    container_log_dir(root, namespace, pod, uid, container).join(format!("{restart_count}.log"))
}

/// The instances logged in `dir` as (restart count, path), newest first: the first is the
/// current instance, the second the previous one. A missing directory has none; files whose
/// names are not `<number>.log` are ignored.
pub fn log_instances(dir: &Path) -> io::Result<Vec<(u32, PathBuf)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(count) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        found.push((count, entry.path()));
    }
    found.sort_by_key(|(count, _)| std::cmp::Reverse(*count));
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn paths_follow_the_kubelet_layout() {
        let path = container_log_path(Path::new("/var/log/pods"), "default", "web", "u-1", "nginx", 2);
        assert_eq!(path, Path::new("/var/log/pods/default_web_u-1/nginx/2.log"));
    }

    #[test]
    fn instances_are_newest_first_by_number() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["0.log", "10.log", "2.log", "x.log", "3.log.tmp"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let counts: Vec<u32> = log_instances(dir.path())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(counts, vec![10, 2, 0]);
        assert!(log_instances(&dir.path().join("missing")).unwrap().is_empty());
    }
}
