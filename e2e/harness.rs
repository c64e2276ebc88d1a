//! Starting `rudder server` and running real clients against it.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `rudder` binary under test.
pub fn rudder_bin() -> &'static str {
    env!("CARGO_BIN_EXE_rudder")
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `rudder server`, stopped with SIGTERM when dropped.
pub struct Server {
    pub data_dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
    _dir: Option<tempfile::TempDir>,
    /// A node: its containers outlive it, so dropping it removes them.
    agent: bool,
    /// The arguments it was started with, to restart it the same way.
    args: Vec<String>,
}

impl Server {
    /// Starts a server in a fresh data directory and waits until it is ready.
    pub fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start_in(dir.path(), free_port(), &[]);
        server._dir = Some(dir);
        server
    }

    /// Starts a server with extra flags in a fresh data directory and waits until it is ready.
    pub fn start_with(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server::start_in(dir.path(), free_port(), extra);
        server._dir = Some(dir);
        server
    }

    /// Starts a server on `data_dir` and `port` and waits until it is ready. It is not a node
    /// (`--disable-agent`) unless `extra` begins with the harness's own `--agent` marker; a
    /// node has no pod network (`--disable-netd`: the host's network is one for all concurrent
    /// tests) unless the marker is `--agent-with-netd` (see `crate::network`).
    pub fn start_in(data_dir: &Path, port: u16, extra: &[&str]) -> Server {
        let (agent, netd, extra) = match extra.split_first() {
            Some((&"--agent", rest)) => (true, false, rest),
            Some((&"--agent-with-netd", rest)) => (true, true, rest),
            _ => (false, false, extra),
        };
        // Loopback unless the test binds elsewhere (the harness reaches either on 127.0.0.1).
        let bind = if extra.contains(&"--bind-address") {
            &[][..]
        } else {
            &["--bind-address", "127.0.0.1"][..]
        };
        let mut args: Vec<String> = ["server"]
            .iter()
            .chain(bind)
            .copied()
            .chain([
                "--secure-port",
                &port.to_string(),
                "--data-dir",
                &data_dir.display().to_string(),
            ])
            .chain(extra.iter().copied())
            .map(str::to_owned)
            .collect();
        if agent {
            // Nodes in concurrent tests each need a port of their own.
            args.extend(["--kubelet-port".to_owned(), free_port().to_string()]);
            if !netd {
                args.push("--disable-netd".to_owned());
            }
        } else {
            args.push("--disable-agent".to_owned());
        }
        let mut server = Server {
            data_dir: data_dir.to_path_buf(),
            port,
            child: Some(spawn(&args)),
            _dir: None,
            agent,
            args,
        };
        server.wait_ready();
        server
    }

    /// The server with `dir` (its data dir) in its keeping: removed after the server (and a
    /// node's containers) when it is dropped.
    pub fn owning(mut self, dir: tempfile::TempDir) -> Server {
        self._dir = Some(dir);
        self
    }

    /// Starts a server [`Server::stop`]ped before again, with the same data dir, ports and
    /// flags (a node re-adopts the containers it left running); waits until it is ready.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server still runs");
        self.child = Some(spawn(&self.args));
        self.wait_ready();
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("kubeconfig.yaml")
    }

    /// A kube-rs client for this server, from the kubeconfig it wrote.
    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(self.kubeconfig()).unwrap();
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                let mut stderr = String::new();
                self.child
                    .as_mut()
                    .unwrap()
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                panic!("rudder server exited with {status} before it was ready:\n{stderr}");
            }
            let ready = Command::new("curl")
                .args(["-skf", "--max-time", "2", &self.url("/readyz")])
                .output()
                .is_ok_and(|out| out.status.success() && out.stdout == b"ok");
            if ready && self.kubeconfig().exists() {
                return;
            }
            assert!(Instant::now() < deadline, "rudder server not ready within 30s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs kubectl against this server.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs kubectl and returns its stdout, failing the test if kubectl fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Stops the server with SIGTERM; returns its exit status and standard streams.
    pub fn stop(&mut self) -> (std::process::ExitStatus, String, String) {
        let mut child = self.child.take().expect("server already stopped");
        terminate(&child);
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let mut stderr = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
                panic!("rudder server did not stop within 20s of SIGTERM:\n{stderr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stdout = String::new();
        let mut stderr = String::new();
        child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        (status, stdout, stderr)
    }
}

impl Server {
    /// Stops the server (if running) and, for a node, removes the containers it left.
    pub fn shut_down(&mut self) {
        if let Some(child) = self.child.take() {
            stop_child(child);
        }
        if self.agent {
            remove_containers(&self.data_dir);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// A `rudder noded` (or `rudder agent`) process of its own, a node of a [`Server`], logging to
/// `DATA_DIR/noded.log`; stopped with SIGTERM when dropped, which then removes the
/// containers it leaves.
pub struct Noded {
    pub data_dir: PathBuf,
    /// The node server's port (`--kubelet-port`).
    pub kubelet_port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Noded {
    /// Starts `rudder noded` (with `extra` flags and `env` variables) on `dir` as a node of
    /// `server`, with the node kubeconfig and serving certificate the server wrote in its data
    /// dir.
    pub fn start_in(server: &Server, dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Noded {
        let kubelet_port = free_port();
        let pki = server.data_dir.join("pki");
        let mut command = Command::new(rudder_bin());
        command
            .arg("noded")
            .arg("--kubeconfig")
            .arg(server.data_dir.join("node.kubeconfig"))
            .arg("--tls-cert-file")
            .arg(pki.join("kubelet.crt"))
            .arg("--tls-private-key-file")
            .arg(pki.join("kubelet.key"))
            .arg("--data-dir")
            .arg(dir.path())
            .args(["--kubelet-port", &kubelet_port.to_string()]);
        // The host's network is one for all concurrent tests (those that use it bring a
        // `rudder netd` of their own).
        if !extra.contains(&"--netd-socket") {
            command.arg("--disable-netd");
        }
        command.args(extra).envs(env.iter().copied());
        Noded::spawn(command, dir, kubelet_port)
    }

    /// Runs `command`, a node process (`rudder noded` or `rudder agent`, possibly through a
    /// wrapper) whose data dir is `dir` and node server port `kubelet_port`, logging to
    /// `DATA_DIR/noded.log`.
    pub fn spawn(mut command: Command, dir: tempfile::TempDir, kubelet_port: u16) -> Noded {
        let log = std::fs::File::create(dir.path().join("noded.log")).unwrap();
        let child = command.stdout(Stdio::null()).stderr(log).spawn().unwrap();
        Noded {
            data_dir: dir.path().to_path_buf(),
            kubelet_port,
            child: Some(child),
            _dir: dir,
        }
    }

    /// Runs `command` again (after [`Noded::stop`]) on the same data dir, appending to the log.
    pub fn respawn(&mut self, mut command: Command) {
        assert!(self.child.is_none(), "the node process still runs");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data_dir.join("noded.log"))
            .unwrap();
        self.child = Some(command.stdout(Stdio::null()).stderr(log).spawn().unwrap());
    }

    /// The process id of `rudder noded`.
    #[allow(dead_code, reason = "used by benches/pod_startup.rs")]
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// noded's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("noded.log")).unwrap_or_default()
    }

    /// Fails the test with noded's log if it has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("rudder noded exited with {status}:\n{}", self.log());
        }
    }

    /// Stops noded with SIGTERM; returns its log.
    #[allow(dead_code, reason = "used by benches/pod_startup.rs")]
    pub fn stop(&mut self) -> String {
        if let Some(child) = self.child.take() {
            stop_child(child);
        }
        self.log()
    }
}

impl Drop for Noded {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            stop_child(child);
        }
        remove_containers(&self.data_dir);
    }
}

/// Stops a child with SIGTERM, then SIGKILL after 10 s.
fn stop_child(mut child: Child) {
    terminate(&child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Kills and removes the containers a node server left in `data_dir` (they outlive it by
/// design) and unmounts what is still mounted there, so no test leaves anything running.
fn remove_containers(data_dir: &Path) {
    use rudder_noded::runtime::{ContainerState, Runtime};
    let runtime = Runtime::new(data_dir.join("runtime"), rudder_bin());
    let running = |runtime: &Runtime| -> Vec<String> {
        runtime
            .list()
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, state)| matches!(state, ContainerState::Running { .. }))
            .map(|(id, _)| id)
            .collect()
    };
    for id in running(&runtime) {
        let _ = runtime.signal(&id, nix::sys::signal::Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !running(&runtime).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for (id, _) in runtime.list().unwrap_or_default() {
        let _ = runtime.delete(&id);
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| Path::new(point).starts_with(data_dir))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in points {
        let _ = Command::new("umount").args(["-l", point]).status();
    }
}

fn spawn(args: &[String]) -> Child {
    Command::new(rudder_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn terminate(child: &Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
}

/// Runs `rudder` with `args` to completion (for commands expected to fail fast).
pub fn rudder(args: &[&str]) -> Output {
    Command::new(rudder_bin()).args(args).output().unwrap()
}

/// Runs curl with `args`; returns (HTTP status, body).
pub fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sk", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.parse().unwrap(), body.to_owned())
}

/// Calls `check` every 200 ms until it returns a value; fails the test after `secs` seconds.
pub fn wait_for<T>(what: &str, secs: u64, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
