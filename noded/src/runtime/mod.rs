//! The container runtime: OCI containers run by youki's libcontainer, each owned by a shim.
//!
//! [`Runtime`] is noded's synchronous API (call it from `spawn_blocking`, never from async
//! threads): create+start, state, signal, delete and list; [`exec`] and [`attach`] add its
//! async exec and attach API. Containers are created by a shim
//! process ([`shim`]) so they outlive noded; everything about a container lives in files under
//! the state directory, so a fresh `Runtime` re-adopts whatever is there:
//!
//! ```text
//! STATE_DIR/containers/ID/config.json  the OCI bundle (rootfs is an absolute path)
//!                         shim.json    shim pid, container pid, start time, cgroup
//!                         exit.json    exit status, written atomically when it ended
//!                         shim.log     the shim's own diagnostics
//! STATE_DIR/libcontainer/ID/           libcontainer's state
//! STATE_DIR/attach/HASH.sock            the shim's attach socket ([`attach`])
//!                   HASH.console        where a terminal's master is handed to the shim
//! STATE_DIR/exec/N.status, N.sock       one exec's status file and console socket ([`exec`])
//! ```
//!
//! It does not prepare rootfs or volumes, and leaves mounts for the caller to remove.

pub mod attach;
pub mod cgroup;
pub mod crilog;
pub mod exec;
pub mod shim;
pub mod spec;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

pub use spec::ContainerSpec;

/// Errors of the runtime API.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("invalid container id {0:?}")]
    InvalidId(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("container {0} not found")]
    NotFound(String),
    #[error("container {0} is still running")]
    Running(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("signal {0} is unknown to libcontainer")]
    UnknownSignal(i32),
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error("container {id} failed to start: {message}")]
    Start { id: String, message: String },
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("cannot exec in container {id}: {message}")]
    Exec { id: String, message: String },
    #[error("container {id}: {source}")]
    Libcontainer {
        id: String,
        source: libcontainer::error::LibcontainerError,
    },
}

/// How a container ended, as the shim recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitStatus {
    /// The exit code, or 128 + the signal number when a signal ended it.
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// RFC 3339 with nanoseconds.
    pub started_at: String,
    pub finished_at: String,
    /// The kernel OOM-killed a process of the container's cgroup.
    pub oom_killed: bool,
}

/// What the shim records once the container runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ShimRecord {
    pub shim_pid: u32,
    pub pid: i32,
    pub started_at: String,
    pub cgroup: String,
}

/// A container's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContainerState {
    Running {
        pid: i32,
        started_at: String,
    },
    Exited(ExitStatus),
    /// The shim is gone without recording an exit status (killed, or the machine rebooted).
    Unknown,
}

/// The files of the runtime's state directory.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Self {
        Layout {
            root: root.to_owned(),
        }
    }
    fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }
    pub fn shim_record(&self, id: &str) -> PathBuf {
        self.bundle(id).join("shim.json")
    }
    pub fn exit_record(&self, id: &str) -> PathBuf {
        self.bundle(id).join("exit.json")
    }
    fn shim_log(&self, id: &str) -> PathBuf {
        self.bundle(id).join("shim.log")
    }
    pub fn libcontainer_root(&self) -> PathBuf {
        self.root.join("libcontainer")
    }
}

/// Writes `data` to `path` through a temporary file and a rename.
pub(crate) fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(data)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// noded's handle on its containers.
#[derive(Clone, Debug)]
pub struct Runtime {
    layout: Layout,
    shim_binary: PathBuf,
}

impl Runtime {
    /// A runtime keeping its state in `state_dir` (e.g. `DATA_DIR/runtime`) and starting
    /// shims as `shim_binary shim ...` (the running `rudder` binary in production).
    pub fn new(state_dir: impl Into<PathBuf>, shim_binary: impl Into<PathBuf>) -> Self {
        Runtime {
            layout: Layout::new(&state_dir.into()),
            shim_binary: shim_binary.into(),
        }
    }

    /// Creates and starts a container whose output goes to `log_path` in the CRI format;
    /// returns once it runs (or failed to).
    pub fn create(
        &self,
        id: &str,
        spec: &ContainerSpec,
        log_path: &Path,
    ) -> Result<ContainerState, RuntimeError> {
        validate_id(id)?;
        let bundle = self.layout.bundle(id);
        if bundle.exists() {
            return Err(RuntimeError::Exists(id.to_owned()));
        }
        let began = std::time::Instant::now();
        let config = spec.render(id)?;
        let io = |what: String| move |err| RuntimeError::Io(what, err);
        std::fs::create_dir_all(&bundle).map_err(io(format!("creating {}", bundle.display())))?;
        let result = self.start_shim(id, &config, log_path, spec);
        if result.is_err() {
            // libcontainer removed its own state when creation failed; the shim's log goes
            // into the error, so the bundle has nothing left to tell.
            let _ = std::fs::remove_dir_all(&bundle);
        }
        // The runtime's part of a container start, as CRI's CreateContainer + StartContainer.
        tracing::debug!(
            container = id,
            ok = result.is_ok(),
            elapsed_us = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX),
            "created and started container"
        );
        result
    }

    fn start_shim(
        &self,
        id: &str,
        config: &oci_spec::runtime::Spec,
        log_path: &Path,
        spec: &ContainerSpec,
    ) -> Result<ContainerState, RuntimeError> {
        let io = |what: String| move |err| RuntimeError::Io(what, err);
        let bundle = self.layout.bundle(id);
        let json = serde_json::to_vec_pretty(config).map_err(|err| RuntimeError::Spec(err.into()))?;
        let config_path = bundle.join("config.json");
        write_atomically(&config_path, &json).map_err(io(format!("writing {}", config_path.display())))?;
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        }
        let shim_log_path = self.layout.shim_log(id);
        let shim_log = std::fs::File::create(&shim_log_path)
            .map_err(io(format!("creating {}", shim_log_path.display())))?;
        let args = shim::ShimArgs {
            state_dir: self.layout.root.clone(),
            id: id.to_owned(),
            log: log_path.to_owned(),
            stdin: spec.stdin,
            stdin_once: spec.stdin_once,
            tty: spec.tty,
            detached: false,
        };
        let mut child = Command::new(&self.shim_binary)
            .arg("shim")
            .args(args.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(shim_log)
            .spawn()
            .map_err(io(format!("starting {}", self.shim_binary.display())))?;
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        // The first shim only re-executes itself detached; reap it.
        let _ = child.wait();
        let line = line.trim_end();
        if let Some(pid) = line.strip_prefix("running ")
            && pid.parse::<i32>().is_ok()
        {
            return self.state(id);
        }
        let message = match line.strip_prefix("failed ") {
            Some(message) => message.to_owned(),
            None => {
                let log = std::fs::read_to_string(&shim_log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("the shim exited without a status: {}", tail.join("; "))
            }
        };
        Err(RuntimeError::Start {
            id: id.to_owned(),
            message,
        })
    }

    /// The container's state.
    pub fn state(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        validate_id(id)?;
        if !self.layout.bundle(id).is_dir() {
            return Err(RuntimeError::NotFound(id.to_owned()));
        }
        if let Some(exit) = read_json::<ExitStatus>(&self.layout.exit_record(id)) {
            return Ok(ContainerState::Exited(exit));
        }
        let Some(record) = read_json::<ShimRecord>(&self.layout.shim_record(id)) else {
            return Ok(ContainerState::Unknown);
        };
        if is_shim_of(record.shim_pid, id) {
            return Ok(ContainerState::Running {
                pid: record.pid,
                started_at: record.started_at,
            });
        }
        // The shim may have recorded the exit between our two reads.
        match read_json::<ExitStatus>(&self.layout.exit_record(id)) {
            Some(exit) => Ok(ContainerState::Exited(exit)),
            None => Ok(ContainerState::Unknown),
        }
    }

    /// Sends `signal` to the container's process.
    pub fn signal(&self, id: &str, signal: nix::sys::signal::Signal) -> Result<(), RuntimeError> {
        if !matches!(self.state(id)?, ContainerState::Running { .. }) {
            return Err(RuntimeError::NotRunning(id.to_owned()));
        }
        let mut container = self.load(id)?;
        let signal = libcontainer::signal::Signal::try_from(signal as i32)
            .map_err(|_| RuntimeError::UnknownSignal(signal as i32))?;
        container
            .kill(signal, false)
            .map_err(|source| RuntimeError::Libcontainer {
                id: id.to_owned(),
                source,
            })
    }

    /// Removes an ended container: its libcontainer state, its cgroup and its bundle. The
    /// rootfs and other mounts are the caller's.
    pub fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        if let ContainerState::Running { .. } = self.state(id)? {
            return Err(RuntimeError::Running(id.to_owned()));
        }
        if self.layout.libcontainer_root().join(id).exists() {
            let mut container = self.load(id)?;
            container
                .delete(true)
                .map_err(|source| RuntimeError::Libcontainer {
                    id: id.to_owned(),
                    source,
                })?;
        }
        let bundle = self.layout.bundle(id);
        std::fs::remove_dir_all(&bundle)
            .map_err(|err| RuntimeError::Io(format!("removing {}", bundle.display()), err))
    }

    /// The annotations the container was created with (its OCI configuration's).
    pub fn annotations(&self, id: &str) -> Result<std::collections::BTreeMap<String, String>, RuntimeError> {
        validate_id(id)?;
        let path = self.layout.bundle(id).join("config.json");
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound(id.to_owned()));
            }
            Err(err) => return Err(RuntimeError::Io(format!("reading {}", path.display()), err)),
        };
        let spec: oci_spec::runtime::Spec =
            serde_json::from_slice(&data).map_err(|err| RuntimeError::Spec(err.into()))?;
        Ok(spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect())
    }

    /// Every container in the state directory with its state; after a noded restart this is
    /// how running containers are found again.
    pub fn list(&self) -> Result<Vec<(String, ContainerState)>, RuntimeError> {
        let dir = self.layout.containers();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(RuntimeError::Io(format!("reading {}", dir.display()), err)),
        };
        let mut containers = Vec::new();
        for entry in entries.flatten() {
            let Some(id) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            match self.state(&id) {
                Ok(state) => containers.push((id, state)),
                Err(RuntimeError::NotFound(_) | RuntimeError::InvalidId(_)) => {}
                Err(err) => return Err(err),
            }
        }
        containers.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(containers)
    }

    fn load(&self, id: &str) -> Result<libcontainer::container::Container, RuntimeError> {
        libcontainer::container::Container::load(self.layout.libcontainer_root().join(id)).map_err(|source| {
            RuntimeError::Libcontainer {
                id: id.to_owned(),
                source,
            }
        })
    }
}

/// Container ids name directories and cgroups: letters, digits, `-`, `_` and `.`, not
/// starting with a dot.
fn validate_id(id: &str) -> Result<(), RuntimeError> {
    let valid = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_owned()))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let data = std::fs::read(path).ok()?;
    serde_json::from_slice(&data).ok()
}

/// Whether `pid` is a live (not zombie) shim for container `id`: pids are reused, so the
/// command line must name the container too.
fn is_shim_of(pid: u32, id: &str) -> bool {
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let Ok(cmdline) = std::fs::read(proc_dir.join("cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let names_us = args.iter().any(|a| *a == b"shim")
        && args
            .windows(2)
            .any(|pair| pair[0] == b"--id" && pair[1] == id.as_bytes());
    if !names_us {
        return false;
    }
    // `/proc/PID/stat`: "pid (comm) STATE ..."; comm may contain spaces and parentheses.
    let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    !matches!(state, Some("Z" | "X") | None)
}
