//! Running extra processes in a running container: exec for probes, `kubectl exec` and `kubectl cp`.
//!
//! libcontainer forks, so noded never calls it itself: it starts `rudder container-exec`
//! ([`main`]), which joins the container's namespaces and cgroup with libcontainer's
//! `TenantContainerBuilder`, running the command with the container's process settings (env,
//! cwd, user, capabilities) and the stdio it inherited, waits for it and exits with its exit
//! code (128 + the signal when a signal ended it). It reports `started PID` or
//! `failed MESSAGE` in a status file, so noded can tell an exec that could not start from a
//! command that failed, and can kill the command itself (which is not its child).
//!
//! With a terminal, the process gets a pty whose master libcontainer sends over a console
//! socket that noded listens on; [`Tty`] is noded's end of it (reads, writes and resizes).
//!
//! This module must not block async threads: the noded side is async, the command side runs
//! only in the `container-exec` process.

use std::ffi::OsString;
use std::io::IoSliceMut;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::SyscallType;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use tokio::io::AsyncReadExt;

use super::{ContainerState, Layout, Runtime, RuntimeError, write_atomically};

/// How long noded waits for libcontainer to hand over a terminal.
const TTY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long output still in the pipe is read after the command ended (descendants that keep
/// the pipe open must not hold a probe).
const DRAIN_TIMEOUT: Duration = Duration::from_millis(200);

/// The `container-exec` command line.
#[derive(Clone, Debug)]
pub struct ContainerExecArgs {
    pub state_dir: PathBuf,
    pub id: String,
    /// Give the process a terminal; requires `console_socket`.
    pub tty: bool,
    /// The unix socket the pty master is sent to.
    pub console_socket: Option<PathBuf>,
    /// Where `started PID` or `failed MESSAGE` is written.
    pub status_file: Option<PathBuf>,
    pub command: Vec<String>,
}

impl ContainerExecArgs {
    /// The arguments after `container-exec` that reproduce these.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--state-dir".into(),
            self.state_dir.clone().into(),
            "--id".into(),
            self.id.clone().into(),
        ];
        if self.tty {
            args.push("--tty".into());
        }
        if let Some(socket) = &self.console_socket {
            args.push("--console-socket".into());
            args.push(socket.clone().into());
        }
        if let Some(status) = &self.status_file {
            args.push("--status-file".into());
            args.push(status.clone().into());
        }
        args.push("--".into());
        args.extend(self.command.iter().map(OsString::from));
        args
    }
}

/// Why `container-exec` could not start the command.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("reading the container's config: {0}")]
    Spec(oci_spec::OciSpecError),
    #[error("the container's config has no process")]
    NoProcess,
    #[error("no command given")]
    NoCommand,
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}")]
    Libcontainer(libcontainer::error::LibcontainerError),
}

/// The `rudder container-exec` entry point; call it before any async runtime or thread is
/// started. Its stdio is the command's.
pub fn main(args: &ContainerExecArgs) -> ExitCode {
    let pid = match start(args) {
        Ok(pid) => pid,
        Err(err) => {
            let message = format!("failed {err}");
            match &args.status_file {
                Some(path) => {
                    let _ = write_atomically(path, message.replace('\n', " ").as_bytes());
                }
                None => {
                    #[allow(clippy::print_stderr)]
                    {
                        eprintln!("rudder container-exec: {err}");
                    }
                }
            }
            return ExitCode::from(255);
        }
    };
    if let Some(path) = &args.status_file {
        let _ = write_atomically(path, format!("started {pid}").as_bytes());
    }
    let code = loop {
        match waitpid(pid, Some(WaitPidFlag::__WALL)) {
            Ok(WaitStatus::Exited(_, code)) => break code,
            Ok(WaitStatus::Signaled(_, signal, _)) => break 128 + signal as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => break 255,
        }
    };
    ExitCode::from(u8::try_from(code & 0xff).unwrap_or(255))
}

/// Starts the command in the container; returns its (host) pid.
fn start(args: &ContainerExecArgs) -> Result<nix::unistd::Pid, StartError> {
    if args.command.is_empty() {
        return Err(StartError::NoCommand);
    }
    let layout = Layout::new(&args.state_dir);
    let bundle = layout.bundle(&args.id);
    let spec = Spec::load(bundle.join("config.json")).map_err(StartError::Spec)?;
    // As CRI runtimes do: the container's process with the command's args and terminal.
    let mut process = spec.process().clone().ok_or(StartError::NoProcess)?;
    process.set_args(Some(args.command.clone()));
    process.set_terminal(Some(args.tty));
    if args.tty {
        let mut env = process.env().clone().unwrap_or_default();
        if !env.iter().any(|entry| entry.starts_with("TERM=")) {
            env.push("TERM=xterm".to_owned());
        }
        process.set_env(Some(env));
    }
    let process_path = bundle.join(format!("exec-{}.json", std::process::id()));
    let json = serde_json::to_vec(&process)
        .map_err(|err| StartError::Io("encoding the process".to_owned(), err.into()))?;
    write_atomically(&process_path, &json)
        .map_err(|err| StartError::Io(format!("writing {}", process_path.display()), err))?;
    let built = ContainerBuilder::new(args.id.clone(), SyscallType::default())
        .with_root_path(layout.libcontainer_root())
        .and_then(|builder| {
            builder
                .with_console_socket(args.console_socket.as_ref())
                .as_tenant()
                .with_detach(args.tty)
                .with_process(Some(&process_path))
                .build()
        });
    let _ = std::fs::remove_file(&process_path);
    built
        .map(|pid| nix::unistd::Pid::from_raw(pid.as_raw()))
        .map_err(StartError::Libcontainer)
}

/// What [`Runtime::exec_capture`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecOutput {
    /// The command's exit code (128 + the signal when a signal ended it).
    pub exit_code: i32,
    /// stdout and stderr as they came, at most `max_output` bytes.
    pub output: Vec<u8>,
    /// The command ran past its timeout and was killed.
    pub timed_out: bool,
}

/// Which stdio a streaming exec gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecStdio {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// A terminal: stdin and output go through [`ExecProcess::tty`] instead of pipes.
    pub tty: bool,
}

/// A command running in a container, started by [`Runtime::exec`]. Dropping it kills the
/// command if it still runs.
#[derive(Debug)]
pub struct ExecProcess {
    child: tokio::process::Child,
    pub stdin: Option<tokio::process::ChildStdin>,
    pub stdout: Option<tokio::process::ChildStdout>,
    pub stderr: Option<tokio::process::ChildStderr>,
    /// The terminal's master side when the exec has a terminal.
    pub tty: Option<Tty>,
    files: ExecFiles,
    exited: bool,
}

/// The status file and console socket of one exec, removed when it ends.
#[derive(Debug)]
struct ExecFiles {
    status: PathBuf,
    socket: Option<PathBuf>,
}

impl Drop for ExecFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.status);
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
    }
}

impl ExecFiles {
    fn status(&self) -> ExecStatus {
        let text = std::fs::read_to_string(&self.status).unwrap_or_default();
        if let Some(pid) = text.strip_prefix("started ")
            && let Ok(pid) = pid.trim().parse::<i32>()
        {
            return ExecStatus::Started(pid);
        }
        match text.strip_prefix("failed ") {
            Some(message) => ExecStatus::Failed(message.trim().to_owned()),
            None => ExecStatus::Starting,
        }
    }
}

enum ExecStatus {
    Starting,
    Started(i32),
    Failed(String),
}

impl ExecProcess {
    /// Waits for the command to end and returns its exit code; an error when it could not
    /// start.
    pub async fn wait(&mut self, id: &str) -> Result<i32, RuntimeError> {
        let status = self
            .child
            .wait()
            .await
            .map_err(|err| RuntimeError::Io("waiting for container-exec".to_owned(), err))?;
        self.exited = true;
        exit_code(id, &self.files, status)
    }

    /// Kills the command (and the process waiting for it).
    pub fn kill(&mut self) {
        if self.exited {
            return;
        }
        // While container-exec runs, it has not reaped the command, so the pid is still its.
        if let Ok(None) = self.child.try_wait()
            && let ExecStatus::Started(pid) = self.files.status()
        {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = self.child.start_kill();
    }
}

impl Drop for ExecProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The exit code container-exec reported, or why the command did not start.
fn exit_code(id: &str, files: &ExecFiles, status: std::process::ExitStatus) -> Result<i32, RuntimeError> {
    if let ExecStatus::Failed(message) = files.status() {
        return Err(RuntimeError::Exec {
            id: id.to_owned(),
            message,
        });
    }
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Ok(code),
        (None, Some(signal)) => Ok(128 + signal),
        (None, None) => Ok(255),
    }
}

/// The master side of an exec's terminal. Clones share the same terminal.
#[derive(Clone, Debug)]
pub struct Tty {
    // Two descriptors of the master, registered with the reactor as tokio's pipe ends (they
    // are polled like any character device).
    reader: Arc<tokio::net::unix::pipe::Receiver>,
    writer: Arc<tokio::net::unix::pipe::Sender>,
}

impl Tty {
    fn new(fd: OwnedFd) -> std::io::Result<Self> {
        let flags = rustix::fs::fcntl_getfl(&fd)?;
        rustix::fs::fcntl_setfl(&fd, flags | rustix::fs::OFlags::NONBLOCK)?;
        let reading = rustix::io::dup(&fd)?;
        Ok(Tty {
            reader: Arc::new(tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(
                reading,
            )?),
            writer: Arc::new(tokio::net::unix::pipe::Sender::from_owned_fd_unchecked(fd)?),
        })
    }

    /// Reads output; 0 once the terminal's other side is closed.
    pub async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            self.reader.readable().await?;
            match self.reader.try_read(buf) {
                Ok(read) => return Ok(read),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                // Linux reports EIO on the master once no process holds the slave.
                Err(err) if err.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => return Ok(0),
                Err(err) => return Err(err),
            }
        }
    }

    /// Writes all of `data` as input.
    pub async fn write_all(&self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            self.writer.writable().await?;
            match self.writer.try_write(data) {
                Ok(written) => data = &data[written..],
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Sets the terminal's size.
    pub fn resize(&self, width: u16, height: u16) -> std::io::Result<()> {
        let size = rustix::termios::Winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        rustix::termios::tcsetwinsize(&*self.writer, size).map_err(std::io::Error::from)
    }
}

static NONCE: AtomicU64 = AtomicU64::new(0);

impl Runtime {
    /// Where one exec's status file and console socket live (short: socket paths are limited).
    fn exec_files(&self, tty: bool) -> Result<ExecFiles, RuntimeError> {
        let dir = self.layout.root.join("exec");
        std::fs::create_dir_all(&dir)
            .map_err(|err| RuntimeError::Io(format!("creating {}", dir.display()), err))?;
        let name = format!("{}-{}", std::process::id(), NONCE.fetch_add(1, Ordering::Relaxed));
        Ok(ExecFiles {
            status: dir.join(format!("{name}.status")),
            socket: tty.then(|| dir.join(format!("{name}.sock"))),
        })
    }

    fn exec_command(
        &self,
        id: &str,
        command: &[String],
        tty: bool,
        files: &ExecFiles,
    ) -> tokio::process::Command {
        let args = ContainerExecArgs {
            state_dir: self.layout.root.clone(),
            id: id.to_owned(),
            tty,
            console_socket: files.socket.clone(),
            status_file: Some(files.status.clone()),
            command: command.to_vec(),
        };
        let mut cmd = tokio::process::Command::new(&self.shim_binary);
        cmd.arg("container-exec").args(args.to_args()).kill_on_drop(true);
        cmd
    }

    fn ensure_running(&self, id: &str) -> Result<(), RuntimeError> {
        match self.state(id)? {
            ContainerState::Running { .. } => Ok(()),
            _ => Err(RuntimeError::NotRunning(id.to_owned())),
        }
    }

    /// Runs `command` in running container `id`, stdin closed, stdout+stderr combined and
    /// capped at `max_output` bytes; kills it after `timeout` (then timed_out=true).
    pub async fn exec_capture(
        &self,
        id: &str,
        command: &[String],
        timeout: Duration,
        max_output: usize,
    ) -> Result<ExecOutput, RuntimeError> {
        self.ensure_running(id)?;
        let files = self.exec_files(false)?;
        let io = |what: &str| {
            let what = what.to_owned();
            move |err| RuntimeError::Io(what, err)
        };
        let (reader, writer) = std::io::pipe().map_err(io("creating the output pipe"))?;
        let writer2 = writer.try_clone().map_err(io("creating the output pipe"))?;
        let child = {
            let mut cmd = self.exec_command(id, command, false, &files);
            cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2);
            cmd.spawn().map_err(io("starting container-exec"))?
            // The command (and our copies of the write ends) are dropped here.
        };
        let mut reader = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))
            .map_err(io("reading the output pipe"))?;
        let mut process = ExecProcess {
            child,
            stdin: None,
            stdout: None,
            stderr: None,
            tty: None,
            files,
            exited: false,
        };

        let mut output = Vec::new();
        let mut buf = vec![0u8; 8192];
        let mut eof = false;
        let mut timed_out = false;
        let mut status = None;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        // Armed once the command ended.
        let drain = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(drain);
        while !(eof && status.is_some()) {
            tokio::select! {
                read = reader.read(&mut buf), if !eof => match read {
                    Ok(0) | Err(_) => eof = true,
                    Ok(read) => {
                        let room = max_output.saturating_sub(output.len());
                        output.extend_from_slice(&buf[..read.min(room)]);
                    }
                },
                exited = process.child.wait(), if status.is_none() => {
                    let exited = exited.map_err(io("waiting for container-exec"))?;
                    process.exited = true;
                    status = Some(exited);
                    drain.as_mut().reset(tokio::time::Instant::now() + DRAIN_TIMEOUT);
                },
                () = &mut deadline, if !timed_out && status.is_none() => {
                    timed_out = true;
                    process.kill();
                },
                () = &mut drain, if status.is_some() => break,
            }
        }
        let Some(status) = status else {
            return Err(RuntimeError::Io(
                "waiting for container-exec".to_owned(),
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        };
        let exit_code = exit_code(id, &process.files, status)?;
        Ok(ExecOutput {
            exit_code,
            output,
            timed_out,
        })
    }

    /// Starts `command` in running container `id` with the stdio `stdio` asks for: pipes, or
    /// a terminal. Wait for it with [`ExecProcess::wait`].
    pub async fn exec(
        &self,
        id: &str,
        command: &[String],
        stdio: ExecStdio,
    ) -> Result<ExecProcess, RuntimeError> {
        self.ensure_running(id)?;
        let files = self.exec_files(stdio.tty)?;
        let io = |what: &str| {
            let what = what.to_owned();
            move |err| RuntimeError::Io(what, err)
        };
        let listener = match &files.socket {
            Some(path) => {
                Some(tokio::net::UnixListener::bind(path).map_err(io("creating the console socket"))?)
            }
            None => None,
        };
        let piped = |wanted: bool| {
            if wanted && !stdio.tty {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        let mut cmd = self.exec_command(id, command, stdio.tty, &files);
        cmd.stdin(piped(stdio.stdin))
            .stdout(piped(stdio.stdout))
            .stderr(piped(stdio.stderr));
        let mut child = cmd.spawn().map_err(io("starting container-exec"))?;
        drop(cmd);
        let mut process = ExecProcess {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            tty: None,
            files,
            exited: false,
        };
        if let Some(listener) = listener {
            let received = tokio::select! {
                received = tokio::time::timeout(TTY_TIMEOUT, receive_pty(&listener)) => match received {
                    Ok(received) => received,
                    Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
                },
                status = process.child.wait() => {
                    process.exited = true;
                    let status = status.map_err(io("waiting for container-exec"))?;
                    exit_code(id, &process.files, status)?;
                    Err(std::io::ErrorKind::UnexpectedEof.into())
                }
            };
            let fd = received.map_err(io("receiving the terminal"))?;
            process.tty = Some(Tty::new(fd).map_err(io("using the terminal"))?);
        }
        Ok(process)
    }
}

/// Accepts libcontainer's connection on the console socket and receives the pty master.
async fn receive_pty(listener: &tokio::net::UnixListener) -> std::io::Result<OwnedFd> {
    let (stream, _) = listener.accept().await?;
    loop {
        stream.readable().await?;
        match stream.try_io(tokio::io::Interest::READABLE, || receive_fd(&stream)) {
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            result => return result,
        }
    }
}

/// Receives the descriptor libcontainer sends on a console socket connection (the pty master,
/// with the terminal's name as data).
pub(crate) fn receive_fd(socket: impl std::os::fd::AsFd) -> std::io::Result<OwnedFd> {
    let mut name = [0u8; 256];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        socket,
        &mut [IoSliceMut::new(&mut name)],
        &mut control,
        rustix::net::RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(std::io::Error::from)?;
    let fd = control.drain().find_map(|message| match message {
        rustix::net::RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
        _ => None,
    });
    fd.ok_or_else(|| std::io::Error::other("no terminal received on the console socket"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn args_round_trip_the_command_after_a_separator() {
        let args = ContainerExecArgs {
            state_dir: "/s".into(),
            id: "c1".into(),
            tty: true,
            console_socket: Some("/s/exec/1.sock".into()),
            status_file: Some("/s/exec/1.status".into()),
            command: vec!["sh".into(), "-c".into(), "--tty".into()],
        };
        let rendered: Vec<String> = args
            .to_args()
            .into_iter()
            .map(|arg| arg.into_string().unwrap())
            .collect();
        assert_eq!(
            rendered,
            [
                "--state-dir",
                "/s",
                "--id",
                "c1",
                "--tty",
                "--console-socket",
                "/s/exec/1.sock",
                "--status-file",
                "/s/exec/1.status",
                "--",
                "sh",
                "-c",
                "--tty"
            ]
        );
    }
}
