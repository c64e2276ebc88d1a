//! The pod sandbox: network and IPC namespaces kept alive by bind mounts on files in the pod's
//! directory (the network one with only loopback up: pod networking, addresses and routes
//! belong to netd), and the pod's `/dev/shm` tmpfs that every container shares, as
//! containerd's sandbox shm. Containers join the namespaces by path, so they outlive any one
//! of them. The PID namespace of `shareProcessNamespace` pods needs a live process and is
//! [`super::pause`]'s.
//!
//! Blocking: call from `spawn_blocking` (except [`run_in_netns`], which is async and owns its
//! thread). It does not decide when a sandbox is made or removed.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

/// Why a sandbox could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("bringing loopback up: {0}")]
    Loopback(String),
    #[error("starting the pause process: {0}")]
    Pause(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Sys { what, source }
}

/// Runs `work` on a thread of its own that entered the network namespace at `netns` (the
/// host's when `None`), for dialing into a pod; setns moves the calling thread, so the thread
/// ends with the work.
pub async fn run_in_netns<T, F>(netns: Option<std::path::PathBuf>, work: F) -> std::io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns-dial".to_owned())
        .spawn(move || {
            let entered = match netns {
                Some(path) => std::fs::File::open(path).and_then(|file| {
                    nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(std::io::Error::from)
                }),
                None => Ok(()),
            };
            let _ = tx.send(entered.map(|()| work()));
        })?;
    rx.await
        .map_err(|_| std::io::Error::other("the thread in the network namespace ended"))?
}

/// Whether `path` has something mounted on it (a namespace file is on nsfs, not on the
/// filesystem of its directory).
pub fn is_mounted(path: &Path) -> bool {
    let (Ok(file), Some(Ok(dir))) = (std::fs::metadata(path), path.parent().map(std::fs::metadata)) else {
        return false;
    };
    file.dev() != dir.dev()
}

/// Makes the network namespace at `path` unless one is already mounted there.
pub fn ensure_netns(path: &Path) -> Result<(), SandboxError> {
    ensure_namespace(
        path,
        nix::sched::CloneFlags::CLONE_NEWNET,
        "net",
        bring_loopback_up,
    )
}

/// Makes the pod's IPC namespace at `path` unless one is already mounted there.
pub fn ensure_ipcns(path: &Path) -> Result<(), SandboxError> {
    ensure_namespace(path, nix::sched::CloneFlags::CLONE_NEWIPC, "ipc", || Ok(()))
}

/// Makes a namespace of `kind` (`net`, `ipc`: its name under `/proc/PID/ns`), runs `set_up`
/// inside it, and keeps it by bind-mounting it on `path`.
fn ensure_namespace(
    path: &Path,
    flag: nix::sched::CloneFlags,
    kind: &'static str,
    set_up: fn() -> Result<(), SandboxError>,
) -> Result<(), SandboxError> {
    if is_mounted(path) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    std::fs::File::create(path).map_err(io(format!("creating {}", path.display())))?;
    // unshare moves the calling thread: a thread of its own, which ends with the namespace
    // held only by the bind mount.
    let target = path.to_owned();
    let made = std::thread::spawn(move || -> Result<(), SandboxError> {
        nix::sched::unshare(flag).map_err(sys(format!("unsharing the {kind} namespace")))?;
        set_up()?;
        nix::mount::mount(
            Some(format!("/proc/thread-self/ns/{kind}").as_str()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(sys(format!(
            "bind-mounting the namespace on {}",
            target.display()
        )))
    })
    .join()
    .map_err(|_| SandboxError::Loopback("the namespace thread panicked".to_owned()))?;
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Mounts the pod's shared `/dev/shm` at `dir` (containerd's sandbox shm: a 64 MiB tmpfs,
/// mode 1777, nosuid, nodev, noexec) unless it is mounted already.
pub fn ensure_shm(dir: &Path) -> Result<(), SandboxError> {
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    if is_mounted(dir) {
        return Ok(());
    }
    nix::mount::mount(
        Some("shm"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .map_err(sys(format!("mounting the pod's shm on {}", dir.display())))
}

/// Unmounts and removes the pod's shm directory; a missing one is fine.
pub fn remove_shm(dir: &Path) -> Result<(), SandboxError> {
    if is_mounted(dir) {
        nix::mount::umount2(dir, MntFlags::MNT_DETACH)
            .map_err(sys(format!("unmounting {}", dir.display())))?;
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(io(format!("removing {}", dir.display()))(err)),
    }
}

/// Sets `lo` (index 1 in a new namespace) up, in the calling thread's network namespace.
fn bring_loopback_up() -> Result<(), SandboxError> {
    use libcontainer::network::link::LinkClient;
    use libcontainer::network::wrapper::create_network_client;
    const LOOPBACK_INDEX: u32 = 1;
    let mut links =
        LinkClient::new(create_network_client()).map_err(|err| SandboxError::Loopback(err.to_string()))?;
    links
        .set_up(LOOPBACK_INDEX)
        .map_err(|err| SandboxError::Loopback(err.to_string()))
}

/// Unmounts and removes a namespace file; a missing one is fine.
pub fn remove_namespace(path: &Path) -> Result<(), SandboxError> {
    if is_mounted(path) {
        nix::mount::umount2(path, MntFlags::MNT_DETACH)
            .map_err(sys(format!("unmounting {}", path.display())))?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(io(format!("removing {}", path.display()))(err)),
    }
}
