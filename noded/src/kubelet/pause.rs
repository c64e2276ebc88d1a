//! The PID namespace of a `shareProcessNamespace` pod and the process that holds it, in the
//! place of upstream's pause (infra) container: PID 1 of the namespace, it reaps the orphans of
//! every container and lives as long as the pod's sandbox. Containers join the namespace by
//! the pod's `pidns` file, on which noded bind-mounts it.
//!
//! `rudder pause --root DIR` (started by noded) unshares the PID namespace for its children,
//! starts itself again as `/pause pause --init` in `DIR` (the namespace's PID 1, in a session
//! of its own), prints that process's PID on the host and exits. The init process chroots into
//! the empty `DIR` (the host's files stay out of reach of the containers that see it in their `/proc`),
//! drops to uid and gid 65535 (the pause image's user) and only waits for signals and reaps
//! children. noded kills it when the pod is cleaned up. Blocking functions; nothing here
//! decides when a pod needs one.

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::{Gid, Pid, Uid};

use super::sandbox::{SandboxError, is_mounted, remove_namespace};

/// The uid and gid of the pause image's user.
const PAUSE_ID: u32 = 65535;

/// The `rudder pause` arguments.
#[derive(Clone, Debug)]
pub struct PauseArgs {
    /// The empty directory the init process chroots into (its working directory, for the
    /// init process itself).
    pub root: PathBuf,
    /// Set on the namespace's init process itself.
    pub init: bool,
}

/// The `rudder pause` entry point; call it before any async runtime or thread is started.
pub fn main(args: &PauseArgs) -> ExitCode {
    if args.init {
        return init();
    }
    let fail = |message: String| {
        eprintln!("{message}");
        ExitCode::FAILURE
    };
    if let Err(err) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID) {
        return fail(format!("unsharing the PID namespace: {err}"));
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => return fail(format!("cannot find the pause binary: {err}")),
    };
    let spawned = Command::new(exe)
        .arg0("/pause")
        .arg("pause")
        .arg("--init")
        .current_dir(&args.root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => {
            let mut stdout = std::io::stdout().lock();
            let _ = std::io::Write::write_all(&mut stdout, format!("{}\n", child.id()).as_bytes());
            ExitCode::SUCCESS
        }
        Err(err) => fail(format!("starting the pause process: {err}")),
    }
}

/// PID 1 of the pod's namespace, started in its root directory (so that no host path shows
/// in its command line): confined, unprivileged, reaping until told to stop.
fn init() -> ExitCode {
    let _ = nix::unistd::setsid();
    let confined = nix::unistd::chroot(".")
        .and_then(|()| nix::unistd::chdir("/"))
        .and_then(|()| nix::unistd::setgroups(&[]))
        .and_then(|()| nix::unistd::setgid(Gid::from_raw(PAUSE_ID)))
        .and_then(|()| nix::unistd::setuid(Uid::from_raw(PAUSE_ID)));
    if confined.is_err() {
        return ExitCode::FAILURE;
    }
    // An init process only receives signals it handles or blocks; blocked ones wait for
    // sigwait.
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT] {
        signals.add(signal);
    }
    if signals.thread_block().is_err() {
        return ExitCode::FAILURE;
    }
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => {
                while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                    if status == nix::sys::wait::WaitStatus::StillAlive {
                        break;
                    }
                }
            }
            Ok(_) => return ExitCode::SUCCESS,
            Err(_) => {}
        }
    }
}

/// The pod's pause process: its namespace file, PID file and chroot directory.
#[derive(Clone, Debug)]
pub struct PausePaths {
    pub pidns: PathBuf,
    pub pid_file: PathBuf,
    pub root: PathBuf,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> SandboxError {
    move |source| SandboxError::Io { what, source }
}

/// The PID of the pause process holding the namespace mounted on `paths.pidns`, if it lives.
pub fn running(paths: &PausePaths) -> Option<i32> {
    if !is_mounted(&paths.pidns) {
        return None;
    }
    let pid: i32 = std::fs::read_to_string(&paths.pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let held = std::fs::metadata(&paths.pidns).ok()?;
    let live = std::fs::metadata(format!("/proc/{pid}/ns/pid")).ok()?;
    (held.ino() == live.ino() && held.dev() == live.dev()).then_some(pid)
}

/// Starts the pod's pause process with `binary` unless it runs; a namespace whose process has
/// died (and with it every process in it) is replaced.
pub fn ensure(binary: &Path, paths: &PausePaths) -> Result<(), SandboxError> {
    if running(paths).is_some() {
        return Ok(());
    }
    remove_namespace(&paths.pidns)?;
    std::fs::create_dir_all(&paths.root).map_err(io(format!("creating {}", paths.root.display())))?;
    let output = Command::new(binary)
        .arg("pause")
        .arg("--root")
        .arg(&paths.root)
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("starting {} pause", binary.display())))?;
    let pid: i32 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| SandboxError::Pause(String::from_utf8_lossy(&output.stderr).trim().to_owned()))?;
    std::fs::File::create(&paths.pidns).map_err(io(format!("creating {}", paths.pidns.display())))?;
    let mounted = nix::mount::mount(
        Some(format!("/proc/{pid}/ns/pid").as_str()),
        &paths.pidns,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    );
    if let Err(source) = mounted {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        return Err(SandboxError::Sys {
            what: format!("bind-mounting the PID namespace on {}", paths.pidns.display()),
            source,
        });
    }
    std::fs::write(&paths.pid_file, format!("{pid}\n"))
        .map_err(io(format!("writing {}", paths.pid_file.display())))
}

/// Kills the pod's pause process (and so every process left in its namespace) and removes its
/// files; nothing there is fine.
pub fn stop(paths: &PausePaths) -> Result<(), SandboxError> {
    if let Some(pid) = running(paths) {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    remove_namespace(&paths.pidns)?;
    for file in [&paths.pid_file] {
        match std::fs::remove_file(file) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(format!("removing {}", file.display()))(err));
            }
            _ => {}
        }
    }
    match std::fs::remove_dir(&paths.root) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(io(format!("removing {}", paths.root.display()))(err))
        }
        _ => Ok(()),
    }
}
