//! The shim: the process that owns one container for its whole life.
//!
//! noded runs `rudder shim --state-dir DIR --id ID --log FILE`; that first process re-executes
//! itself detached (`--detached`) and exits at once, so noded never has to reap it. The
//! detached shim leaves noded's session (setsid), becomes a child subreaper, creates and starts
//! the container with libcontainer (which forks: that is why it runs here and never on an
//! async runtime thread), reports `running PID` or `failed MESSAGE` on its stdout, then copies
//! the container's stdout and stderr into the CRI log file (and to attached clients, see
//! [`super::attach`], which may also write the container's stdin), waits for the container
//! process and records its exit status atomically in `exit.json`. A container with a terminal
//! (`--tty`) gets a pty whose master libcontainer sends to the shim over a console socket; its
//! output is logged as stdout (as containerd does), and attached clients write its input and
//! set its size. It must not outlive the container,
//! and it writes nothing but that one line to its stdout.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::attach::{self, Hub};
use super::cgroup::{CgroupVersion, oom_kill_count};
use super::crilog::{self, LineSplitter, Stream, Tag};
use super::exec::receive_fd;
use super::{ExitStatus, Layout, ShimRecord, write_atomically};

/// How long libcontainer may take to hand over a container's terminal.
const TERMINAL_TIMEOUT: Duration = Duration::from_secs(10);

/// The shim's command line, parsed by the binary's `shim` subcommand.
#[derive(Clone, Debug)]
pub struct ShimArgs {
    pub state_dir: PathBuf,
    pub id: String,
    pub log: PathBuf,
    /// Give the container a stdin that attached clients write to.
    pub stdin: bool,
    /// Close the container's stdin after the first attach session that used it.
    pub stdin_once: bool,
    /// Give the container a terminal.
    pub tty: bool,
    /// Set on the re-executed, detached process.
    pub detached: bool,
}

impl ShimArgs {
    /// The arguments after `shim` that reproduce these.
    pub fn to_args(&self) -> Vec<std::ffi::OsString> {
        let mut args: Vec<std::ffi::OsString> = vec![
            "--state-dir".into(),
            self.state_dir.clone().into(),
            "--id".into(),
            self.id.clone().into(),
            "--log".into(),
            self.log.clone().into(),
        ];
        if self.stdin {
            args.push("--stdin".into());
        }
        if self.stdin_once {
            args.push("--stdin-once".into());
        }
        if self.tty {
            args.push("--tty".into());
        }
        if self.detached {
            args.push("--detached".into());
        }
        args
    }
}

/// Errors of the shim before the container runs; they are reported to noded.
#[derive(Debug, thiserror::Error)]
enum ShimError {
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("creating the container: {0}")]
    Create(libcontainer::error::LibcontainerError),
    #[error("starting the container: {0}")]
    Start(libcontainer::error::LibcontainerError),
    #[error("reading the bundle: {0}")]
    Spec(oci_spec::OciSpecError),
    #[error("the container has no pid after starting")]
    NoPid,
    #[error("receiving the container's terminal: {0}")]
    Terminal(std::io::Error),
}

/// The `rudder shim` entry point; call it before any async runtime or thread is started.
pub fn main(args: &ShimArgs) -> ExitCode {
    if !args.detached {
        return respawn_detached(args);
    }
    let layout = Layout::new(&args.state_dir);
    let _ = nix::unistd::setsid();
    if let Err(err) = nix::sys::prctl::set_child_subreaper(true) {
        tracing::warn!(error = %err, "cannot become a child subreaper");
    }
    let mut started = match start(&layout, args) {
        Ok(started) => started,
        Err(err) => {
            tracing::error!(id = args.id, error = %err, "container failed to start");
            report(&format!("failed {err}"));
            return ExitCode::FAILURE;
        }
    };
    // Attach is served before noded hears the container runs.
    let hub = Hub::new(started.stdin.take(), started.terminal.take(), args.stdin_once);
    let attach_socket = attach::socket_path(&layout, &args.id);
    if let Err(err) = hub.listen(&attach_socket) {
        tracing::error!(id = args.id, error = %err, "cannot serve attach");
    }
    report(&format!("running {}", started.pid));
    supervise(&layout, args, started, &hub);
    let _ = std::fs::remove_file(&attach_socket);
    ExitCode::SUCCESS
}

/// Re-executes the shim with `--detached`, handing down stdio, and returns at once.
fn respawn_detached(args: &ShimArgs) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => {
            report(&format!("failed cannot find the shim binary: {err}"));
            return ExitCode::FAILURE;
        }
    };
    let detached = ShimArgs {
        detached: true,
        ..args.clone()
    };
    let spawned = Command::new(exe)
        .arg("shim")
        .args(detached.to_args())
        .stdin(Stdio::null())
        .spawn();
    match spawned {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            report(&format!("failed cannot start the shim: {err}"));
            ExitCode::FAILURE
        }
    }
}

/// The one status line noded waits for.
fn report(line: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", line.replace('\n', " "));
    let _ = stdout.flush();
}

struct Started {
    pid: Pid,
    started_at: jiff::Timestamp,
    cgroup: String,
    version: Option<CgroupVersion>,
    /// The container's output streams: stdout and stderr pipes, or the terminal's master.
    output: Vec<(File, Stream)>,
    /// Where the container's stdin is written, when it has one.
    stdin: Option<File>,
    /// The terminal's master, when it has one.
    terminal: Option<File>,
}

fn start(layout: &Layout, args: &ShimArgs) -> Result<Started, ShimError> {
    let bundle = layout.bundle(&args.id);
    let spec = Spec::load(bundle.join("config.json")).map_err(ShimError::Spec)?;
    let cgroup = spec
        .linux()
        .as_ref()
        .and_then(|linux| linux.cgroups_path().as_ref())
        .map(|path| path.to_string_lossy().into_owned())
        .unwrap_or_default();
    let version = CgroupVersion::detect().ok();

    let io = |what: &str| {
        let what = what.to_owned();
        move |err| ShimError::Io(what, err)
    };
    let null = || File::open("/dev/null").map_err(io("opening /dev/null"));
    let mut output = Vec::new();
    let mut stdin_writer = None;
    // A terminal replaces the container's stdio; libcontainer connects to the console socket
    // while it creates the container.
    let console = if args.tty {
        let path = attach::console_socket_path(layout, &args.id);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io("creating the console socket's directory"))?;
        }
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(io("creating the console socket"))?;
        Some((path, listener))
    } else {
        None
    };
    let (stdin, stdout, stderr): (OwnedFd, OwnedFd, OwnedFd) = if console.is_some() {
        (null()?.into(), null()?.into(), null()?.into())
    } else {
        let stdin: OwnedFd = if args.stdin {
            let (read, write) = std::io::pipe().map_err(io("creating the stdin pipe"))?;
            stdin_writer = Some(File::from(OwnedFd::from(write)));
            read.into()
        } else {
            null()?.into()
        };
        let (stdout_read, stdout_write) = std::io::pipe().map_err(io("creating the stdout pipe"))?;
        let (stderr_read, stderr_write) = std::io::pipe().map_err(io("creating the stderr pipe"))?;
        output.push((File::from(OwnedFd::from(stdout_read)), Stream::Stdout));
        output.push((File::from(OwnedFd::from(stderr_read)), Stream::Stderr));
        (stdin, stdout_write.into(), stderr_write.into())
    };
    let root = layout.libcontainer_root();
    std::fs::create_dir_all(&root).map_err(io("creating the libcontainer state dir"))?;

    let built = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_root_path(root)
        .map_err(ShimError::Create)?
        .with_console_socket(console.as_ref().map(|(path, _)| path))
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr)
        .as_init(&bundle)
        .with_systemd(false)
        .with_detach(true)
        .build();
    let terminal = match (&console, &built) {
        (Some((path, listener)), Ok(_)) => {
            let received = receive_terminal(listener);
            let _ = std::fs::remove_file(path);
            Some(received)
        }
        (Some((path, _)), Err(_)) => {
            let _ = std::fs::remove_file(path);
            None
        }
        (None, _) => None,
    };
    let mut container = built.map_err(ShimError::Create)?;
    let terminal = match terminal.transpose() {
        Ok(terminal) => terminal,
        Err(err) => {
            let _ = container.delete(true);
            return Err(ShimError::Terminal(err));
        }
    };
    if let Some(master) = &terminal {
        let reader = master.try_clone().map_err(io("using the terminal"))?;
        output.push((reader, Stream::Stdout));
        if args.stdin {
            stdin_writer = Some(master.try_clone().map_err(io("using the terminal"))?);
        }
    }
    // The builder has closed our copies of the pipes' write ends: the readers see EOF
    // once every process of the container has closed them.
    if let Err(err) = container.start() {
        let _ = container.delete(true);
        return Err(ShimError::Start(err));
    }
    let started_at = jiff::Timestamp::now();
    let pid = container.pid().ok_or(ShimError::NoPid)?;
    let record = ShimRecord {
        shim_pid: std::process::id(),
        pid: pid.as_raw(),
        started_at: started_at.to_string(),
        cgroup: cgroup.clone(),
    };
    let json = serde_json::to_vec(&record).unwrap_or_default();
    write_atomically(&layout.shim_record(&args.id), &json).map_err(io("recording the shim"))?;
    Ok(Started {
        pid: Pid::from_raw(pid.as_raw()),
        started_at,
        cgroup,
        version,
        output,
        stdin: stdin_writer,
        terminal,
    })
}

/// Accepts libcontainer's connection on the console socket and receives the terminal's
/// master. libcontainer connected while it created the container, and its init process sent
/// the master before the creation returned, so nothing here waits long.
fn receive_terminal(listener: &UnixListener) -> std::io::Result<File> {
    listener.set_nonblocking(true)?;
    let deadline = std::time::Instant::now() + TERMINAL_TIMEOUT;
    let stream = loop {
        match listener.accept() {
            Ok((stream, _)) => break stream,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() >= deadline {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(err) => return Err(err),
        }
    };
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(TERMINAL_TIMEOUT))?;
    receive_fd(&stream).map(File::from)
}

/// Copies the logs, waits for the container's process and records how it ended.
fn supervise(layout: &Layout, args: &ShimArgs, started: Started, hub: &Arc<Hub>) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.log);
    let log = match log {
        Ok(file) => Some(Arc::new(Mutex::new(file))),
        Err(err) => {
            tracing::error!(path = %args.log.display(), error = %err, "cannot open the log file; output is dropped");
            None
        }
    };
    let (done_tx, done_rx) = mpsc::channel();
    let streams = started.output.len();
    for (reader, stream) in started.output {
        let log = log.clone();
        let done = done_tx.clone();
        let hub = hub.clone();
        std::thread::spawn(move || {
            copy_log(reader, stream, log.as_deref(), &hub);
            let _ = done.send(());
        });
    }
    drop(done_tx);

    let status = wait_for(started.pid);
    let finished_at = jiff::Timestamp::now();
    // Output still in the pipes belongs to the container; give the copiers a moment to
    // drain it (processes that escaped the container's end may keep the pipes open).
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    for _ in 0..streams {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    hub.close(Duration::from_secs(1));
    let (exit_code, signal) = match status {
        Some(WaitStatus::Exited(_, code)) => (code, None),
        Some(WaitStatus::Signaled(_, signal, _)) => (128 + signal as i32, Some(signal as i32)),
        _ => (255, None),
    };
    let oom_killed = started
        .version
        .and_then(|version| oom_kill_count(version, &started.cgroup))
        .is_some_and(|count| count > 0);
    let exit = ExitStatus {
        exit_code,
        signal,
        started_at: started.started_at.to_string(),
        finished_at: finished_at.to_string(),
        oom_killed,
    };
    let json = serde_json::to_vec(&exit).unwrap_or_default();
    if let Err(err) = write_atomically(&layout.exit_record(&args.id), &json) {
        tracing::error!(id = args.id, error = %err, "cannot record the exit status");
    }
}

/// Reaps children until the container's process has ended; as a subreaper, the shim also
/// reaps processes orphaned inside the container.
fn wait_for(pid: Pid) -> Option<WaitStatus> {
    loop {
        match waitpid(None, Some(WaitPidFlag::__WALL)) {
            Ok(status @ (WaitStatus::Exited(child, _) | WaitStatus::Signaled(child, _, _)))
                if child == pid =>
            {
                return Some(status);
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(err) => {
                tracing::error!(error = %err, "lost the container's process");
                return None;
            }
        }
    }
}

fn copy_log(mut reader: impl Read, stream: Stream, log: Option<&Mutex<File>>, hub: &Hub) {
    let mut splitter = LineSplitter::new(crilog::MAX_LINE_LEN);
    let mut buf = vec![0u8; 32 * 1024];
    let mut records = Vec::new();
    loop {
        let read = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        hub.broadcast(
            match stream {
                Stream::Stdout => 1,
                Stream::Stderr => 2,
            },
            &buf[..read],
        );
        let now = jiff::Timestamp::now();
        splitter.push(&buf[..read], |tag: Tag, line: &[u8]| {
            crilog::format_record(&mut records, now, stream, tag, line);
        });
        flush(log, &mut records);
    }
    let now = jiff::Timestamp::now();
    splitter.finish(|tag, line| crilog::format_record(&mut records, now, stream, tag, line));
    flush(log, &mut records);
}

fn flush(log: Option<&Mutex<File>>, records: &mut Vec<u8>) {
    if records.is_empty() {
        return;
    }
    if let Some(log) = log
        && let Ok(mut file) = log.lock()
    {
        let _ = file.write_all(records);
    }
    records.clear();
}
