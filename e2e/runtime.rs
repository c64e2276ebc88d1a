//! The container runtime with real containers: noded's `Runtime` API starting `rudder shim`
//! processes that run busybox (Debian's busybox-static) through libcontainer. Needs root;
//! without it every test says it was skipped.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rudder_noded::runtime::cgroup::{self, CgroupVersion};
use rudder_noded::runtime::exec::ExecStdio;
use rudder_noded::runtime::spec::{ContainerSpec, NamespaceMode, Resources};
use rudder_noded::runtime::{ContainerState, ExitStatus, Runtime, RuntimeError};

use crate::harness::rudder_bin;

const BUSYBOX: &str = "/bin/busybox";
const APPLETS: &[&str] = &[
    "sh", "echo", "sleep", "cat", "tail", "dd", "true", "ls", "tty", "env", "stty",
];

/// A scratch state dir, log dir and busybox rootfs; kills and deletes its containers on drop.
struct Fixture {
    dir: tempfile::TempDir,
    runtime: Runtime,
    ids: Vec<String>,
    /// The parent cgroups `spec` named, removed on drop.
    parents: std::cell::RefCell<Vec<String>>,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root");
            return None;
        }
        assert!(
            Path::new(BUSYBOX).exists(),
            "{BUSYBOX} is missing: apt-get install busybox-static"
        );
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("rootfs/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
        for applet in APPLETS {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
        }
        for sub in ["proc", "dev", "sys", "tmp", "etc"] {
            std::fs::create_dir_all(dir.path().join("rootfs").join(sub)).unwrap();
        }
        let runtime = Runtime::new(dir.path().join("state"), rudder_bin());
        Some(Fixture {
            dir,
            runtime,
            ids: Vec::new(),
            parents: std::cell::RefCell::default(),
        })
    }

    fn spec(&self, script: &str) -> ContainerSpec {
        let parent = format!("/rudder-test-{}", unique());
        self.parents.borrow_mut().push(parent.clone());
        ContainerSpec {
            rootfs: self.dir.path().join("rootfs"),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/bin".into()],
            cgroup_parent: parent,
            ..Default::default()
        }
    }

    fn log(&self, id: &str) -> PathBuf {
        self.dir.path().join("logs").join(format!("{id}.log"))
    }

    fn create(&mut self, id: &str, spec: &ContainerSpec) -> ContainerState {
        self.ids.push(id.to_owned());
        self.runtime.create(id, spec, &self.log(id)).unwrap()
    }

    fn wait_exited(&self, id: &str) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.runtime.state(id).unwrap() {
                ContainerState::Exited(status) => return status,
                state => assert!(Instant::now() < deadline, "{id} still {state:?}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.runtime.signal(id, Signal::SIGKILL);
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.runtime.state(id), Ok(ContainerState::Running { .. }))
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.runtime.delete(id);
        }
        if let Ok(version) = CgroupVersion::detect() {
            for parent in self.parents.borrow().iter() {
                let _ = cgroup::remove_pod_cgroup(version, parent);
            }
        }
    }
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `TIMESTAMP STREAM TAG CONTENT` records of a CRI log file.
fn records(path: &Path) -> Vec<(String, String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let mut next = || parts.next().unwrap_or_default().to_owned();
            (next(), next(), next(), next())
        })
        .collect()
}

#[test]
fn output_lands_in_the_cri_log_and_the_exit_code_is_recorded() {
    let Some(mut fx) = Fixture::new() else { return };
    let spec = fx.spec("echo to-stdout; echo to-stderr >&2; printf no-newline; exit 3");
    let state = fx.create("logs", &spec);
    assert!(
        matches!(state, ContainerState::Running { .. } | ContainerState::Exited(_)),
        "{state:?}"
    );
    let status = fx.wait_exited("logs");
    assert_eq!(status.exit_code, 3);
    assert_eq!(status.signal, None);
    assert!(!status.oom_killed);
    let started: jiff::Timestamp = status.started_at.parse().unwrap();
    let finished: jiff::Timestamp = status.finished_at.parse().unwrap();
    assert!(started <= finished);

    let mut got = records(&fx.log("logs"));
    for (timestamp, ..) in &got {
        let at: jiff::Timestamp = timestamp.parse().unwrap();
        assert!(timestamp.ends_with('Z'), "{timestamp}");
        assert!(at >= started - jiff::SignedDuration::from_secs(1));
    }
    // The two streams are copied concurrently; order within each is kept.
    got.sort_by(|a, b| a.1.cmp(&b.1));
    let lines: Vec<(&str, &str, &str)> = got
        .iter()
        .map(|(_, stream, tag, content)| (stream.as_str(), tag.as_str(), content.as_str()))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("stderr", "F", "to-stderr"),
            ("stdout", "F", "to-stdout"),
            ("stdout", "F", "no-newline"),
        ]
    );
}

#[test]
fn sigterm_stops_a_sleep() {
    let Some(mut fx) = Fixture::new() else { return };
    let mut spec = fx.spec("");
    spec.args = vec!["sleep".into(), "1000".into()];
    // In its own PID namespace sleep would be PID 1, which the kernel shields from SIGTERM.
    spec.namespaces.pid = NamespaceMode::Host;
    let ContainerState::Running { pid, .. } = fx.create("sleeper", &spec) else {
        panic!("not running");
    };
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    fx.runtime.signal("sleeper", Signal::SIGTERM).unwrap();
    let status = fx.wait_exited("sleeper");
    assert_eq!(status.exit_code, 128 + 15);
    assert_eq!(status.signal, Some(15));
    assert!(matches!(
        fx.runtime.signal("sleeper", Signal::SIGKILL),
        Err(RuntimeError::NotRunning(_))
    ));
}

#[test]
fn memory_limit_is_in_the_container_cgroup_and_delete_removes_it() {
    let Some(mut fx) = Fixture::new() else { return };
    let mut spec = fx.spec("sleep 1000");
    spec.resources = Resources {
        memory_limit: Some(48 << 20),
        cpu_shares: Some(256),
        pids_limit: Some(64),
        ..Default::default()
    };
    fx.create("limited", &spec);
    let version = CgroupVersion::detect().unwrap();
    let cgroup = spec.cgroup_path("limited");
    let memory = version.dir("memory", &cgroup);
    let file = match version {
        CgroupVersion::V1 => "memory.limit_in_bytes",
        CgroupVersion::V2 => "memory.max",
    };
    let limit = std::fs::read_to_string(memory.join(file)).unwrap();
    assert_eq!(limit.trim(), (48u64 << 20).to_string());
    let pids = std::fs::read_to_string(version.dir("pids", &cgroup).join("pids.max")).unwrap();
    assert_eq!(pids.trim(), "64");

    fx.runtime.signal("limited", Signal::SIGKILL).unwrap();
    assert_eq!(fx.wait_exited("limited").exit_code, 137);
    fx.runtime.delete("limited").unwrap();
    assert!(!memory.exists(), "{} survived delete", memory.display());
    assert!(matches!(
        fx.runtime.state("limited"),
        Err(RuntimeError::NotFound(_))
    ));
    cgroup::remove_pod_cgroup(version, &spec.cgroup_parent).unwrap();
}

#[test]
fn a_memory_hog_is_oom_killed() {
    let Some(mut fx) = Fixture::new() else { return };
    // tail keeps the last line of a file that has no line ends: it grows until killed.
    let mut spec = fx.spec("tail /dev/zero");
    spec.resources.memory_limit = Some(16 << 20);
    fx.create("hog", &spec);
    let status = fx.wait_exited("hog");
    assert!(status.oom_killed, "{status:?}");
    assert_eq!(status.exit_code, 137);
    fx.runtime.delete("hog").unwrap();
    let version = CgroupVersion::detect().unwrap();
    cgroup::remove_pod_cgroup(version, &spec.cgroup_parent).unwrap();
}

#[test]
fn pod_cgroup_carries_pod_limits() {
    let Some(_fx) = Fixture::new() else { return };
    let version = CgroupVersion::detect().unwrap();
    let uid = unique();
    let limits = cgroup::PodLimits {
        cpu_shares: Some(512),
        memory_limit: Some(96 << 20),
        ..Default::default()
    };
    let path = cgroup::ensure_pod_cgroup(version, cgroup::QosClass::Burstable, &uid, &limits).unwrap();
    assert_eq!(path, format!("/kubepods/burstable/pod{uid}"));
    let (file, shares_file, shares) = match version {
        CgroupVersion::V1 => ("memory.limit_in_bytes", "cpu.shares", "512".to_owned()),
        CgroupVersion::V2 => (
            "memory.max",
            "cpu.weight",
            cgroup::cpu_shares_to_weight(512).to_string(),
        ),
    };
    let memory = std::fs::read_to_string(version.dir("memory", &path).join(file)).unwrap();
    assert_eq!(memory.trim(), (96u64 << 20).to_string());
    let cpu = std::fs::read_to_string(version.dir("cpu", &path).join(shares_file)).unwrap();
    assert_eq!(cpu.trim(), shares);
    cgroup::remove_pod_cgroup(version, &path).unwrap();
    assert!(!version.dir("memory", &path).exists());
}

/// Run by `a_container_outlives_its_creator` in a child process: creates a container there
/// and exits.
#[test]
#[ignore = "a helper that another test runs in its own process"]
fn create_from_a_helper_process() {
    let Some(state) = std::env::var_os("RUDDER_RUNTIME_HELPER_STATE") else {
        return;
    };
    let spec: ContainerSpec =
        serde_json::from_str(&std::env::var("RUDDER_RUNTIME_HELPER_SPEC").unwrap()).unwrap();
    let log = PathBuf::from(std::env::var_os("RUDDER_RUNTIME_HELPER_LOG").unwrap());
    let runtime = Runtime::new(PathBuf::from(state), rudder_bin());
    let state = runtime.create("survivor", &spec, &log).unwrap();
    assert!(matches!(state, ContainerState::Running { .. }), "{state:?}");
}

#[test]
fn a_container_outlives_its_creator_and_a_new_runtime_adopts_it() {
    let Some(mut fx) = Fixture::new() else { return };
    fx.ids.push("survivor".to_owned());
    let spec = fx.spec("echo started; exec sleep 1000");
    let state_dir = fx.dir.path().join("state");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "runtime::create_from_a_helper_process"])
        .env("RUDDER_RUNTIME_HELPER_STATE", &state_dir)
        .env(
            "RUDDER_RUNTIME_HELPER_SPEC",
            serde_json::to_string(&spec).unwrap(),
        )
        .env("RUDDER_RUNTIME_HELPER_LOG", fx.log("survivor"))
        .status()
        .unwrap();
    assert!(status.success());

    // The creator is gone; a fresh runtime on the same state finds the container running.
    let fresh = Runtime::new(&state_dir, rudder_bin());
    let listed = fresh.list().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (id, state) = &listed[0];
    assert_eq!(id, "survivor");
    let ContainerState::Running { pid, .. } = state else {
        panic!("not running: {state:?}");
    };
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    // Its parent is the shim, which left our session.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(')').unwrap();
    let shim: i32 = rest.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_ne!(shim, std::process::id() as i32);
    let shim_sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(shim))).unwrap();
    assert_ne!(shim_sid, nix::unistd::getsid(None).unwrap());

    fresh.signal("survivor", Signal::SIGKILL).unwrap();
    let status = fx.wait_exited("survivor");
    assert_eq!(status.exit_code, 137);
    let logged = records(&fx.log("survivor"));
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(
        (logged[0].1.as_str(), logged[0].3.as_str()),
        ("stdout", "started")
    );
    fresh.delete("survivor").unwrap();
    assert!(fresh.list().unwrap().is_empty());
    let _ = cgroup::remove_pod_cgroup(CgroupVersion::detect().unwrap(), &spec.cgroup_parent);
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|arg| (*arg).to_owned()).collect()
}

#[test]
fn exec_runs_in_the_container_with_its_env_and_reports_exit_codes() {
    let Some(mut fx) = Fixture::new() else { return };
    let mut spec = fx.spec("");
    spec.args = vec!["sleep".into(), "1000".into()];
    spec.env.push("GREETING=from-the-spec".into());
    assert!(matches!(
        fx.create("execs", &spec),
        ContainerState::Running { .. }
    ));
    let runtime = fx.runtime.clone();
    block_on(async {
        let timeout = Duration::from_secs(20);
        let out = runtime
            .exec_capture(
                "execs",
                &strings(&["sh", "-c", "echo $GREETING; echo err >&2; exit 3"]),
                timeout,
                1024,
            )
            .await
            .unwrap();
        assert_eq!(out.exit_code, 3);
        assert!(!out.timed_out);
        assert_eq!(String::from_utf8_lossy(&out.output), "from-the-spec\nerr\n");

        // Output beyond the cap is dropped, and the command still ends.
        let out = runtime
            .exec_capture("execs", &strings(&["sh", "-c", "echo 0123456789"]), timeout, 4)
            .await
            .unwrap();
        assert_eq!((out.exit_code, out.output.as_slice()), (0, &b"0123"[..]));

        // The container's pid namespace: its init is pid 1.
        let out = runtime
            .exec_capture("execs", &strings(&["cat", "/proc/1/cmdline"]), timeout, 1024)
            .await
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.output), "sleep\u{0}1000\u{0}");

        let started = Instant::now();
        let out = runtime
            .exec_capture(
                "execs",
                &strings(&["sleep", "30"]),
                Duration::from_millis(500),
                1024,
            )
            .await
            .unwrap();
        assert!(out.timed_out);
        assert_eq!(out.exit_code, 137);
        assert!(started.elapsed() < Duration::from_secs(10));

        let err = runtime
            .exec_capture("execs", &strings(&["/no/such/binary"]), timeout, 1024)
            .await;
        assert!(matches!(err, Err(RuntimeError::Exec { .. })), "{err:?}");

        // Piped stdin and separate streams.
        let mut process = runtime
            .exec(
                "execs",
                &strings(&["sh", "-c", "cat; echo done >&2"]),
                ExecStdio {
                    stdin: true,
                    stdout: true,
                    stderr: true,
                    tty: false,
                },
            )
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stdin = process.stdin.take().unwrap();
        stdin.write_all(b"piped\n").await.unwrap();
        drop(stdin);
        let mut stdout = String::new();
        process
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .await
            .unwrap();
        let mut stderr = String::new();
        process
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .await
            .unwrap();
        assert_eq!((stdout.as_str(), stderr.as_str()), ("piped\n", "done\n"));
        assert_eq!(process.wait("execs").await.unwrap(), 0);

        // A terminal: the command sees a pty of the size we set, and TERM.
        let mut process = runtime
            .exec(
                "execs",
                &strings(&["sh", "-c", "read line; tty; echo $TERM $line; stty size; exit 5"]),
                ExecStdio {
                    stdin: true,
                    stdout: true,
                    stderr: false,
                    tty: true,
                },
            )
            .await
            .unwrap();
        let tty = process.tty.clone().unwrap();
        tty.resize(100, 40).unwrap();
        tty.write_all(b"typed\n").await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let read = tokio::time::timeout(Duration::from_secs(20), tty.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            if read == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..read]);
        }
        let seen = String::from_utf8_lossy(&seen);
        assert!(seen.contains("/dev/pts/"), "{seen:?}");
        assert!(seen.contains("xterm typed"), "{seen:?}");
        assert!(seen.contains("40 100"), "{seen:?}");
        assert_eq!(process.wait("execs").await.unwrap(), 5);
    });
    runtime.signal("execs", Signal::SIGKILL).unwrap();
    fx.wait_exited("execs");
    assert!(matches!(
        block_on(runtime.exec_capture("execs", &strings(&["true"]), Duration::from_secs(5), 16)),
        Err(RuntimeError::NotRunning(_))
    ));
}

#[test]
fn attach_feeds_stdin_once_and_fans_out_output_besides_the_log() {
    let Some(mut fx) = Fixture::new() else { return };
    let mut spec = fx.spec("read line; echo got $line; echo to-stderr >&2; read rest || echo stdin-closed");
    spec.stdin = true;
    spec.stdin_once = true;
    fx.create("attached", &spec);
    let runtime = fx.runtime.clone();
    let seen = block_on(async {
        let mut attached = runtime.attach("attached", true, true, true).await.unwrap();
        let mut input = attached.input;
        input.write_stdin(b"hello\n").await.unwrap();
        // With stdinOnce, ending this session's input closes the container's stdin.
        input.close().await;
        let mut seen: Vec<(u8, Vec<u8>)> = Vec::new();
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(20), attached.output.next())
            .await
            .unwrap()
            .unwrap()
        {
            seen.push(chunk);
        }
        seen
    });
    let stream = |wanted: u8| -> String {
        seen.iter()
            .filter(|(stream, _)| *stream == wanted)
            .map(|(_, data)| String::from_utf8_lossy(data).into_owned())
            .collect()
    };
    assert_eq!(stream(1), "got hello\nstdin-closed\n");
    assert_eq!(stream(2), "to-stderr\n");
    assert_eq!(fx.wait_exited("attached").exit_code, 0);
    let logged: Vec<String> = records(&fx.log("attached")).into_iter().map(|r| r.3).collect();
    assert!(logged.contains(&"got hello".to_owned()), "{logged:?}");
}

/// Reads an attach session's output into `seen` until it contains `wanted`.
async fn read_until(
    output: &mut rudder_noded::runtime::attach::AttachOutput,
    seen: &mut String,
    wanted: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains(wanted) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, output.next()).await {
            Ok(Ok(Some((stream, data)))) => {
                assert_eq!(stream, 1, "a terminal has only stdout");
                seen.push_str(&String::from_utf8_lossy(&data));
            }
            other => panic!("no {wanted:?} in {seen:?}: {other:?}"),
        }
    }
}

#[test]
fn a_terminal_container_is_attached_resized_and_logged_as_stdout() {
    let Some(mut fx) = Fixture::new() else { return };
    let mut spec = fx.spec("echo started; exec sh");
    spec.tty = true;
    spec.stdin = true;
    spec.stdin_once = true;
    fx.create("terminal", &spec);
    let runtime = fx.runtime.clone();
    block_on(async {
        // A first session resizes the terminal and runs commands; ending its input ends the
        // session but leaves the terminal's stdin open (containerd's rule for stdinOnce + tty).
        let mut attached = runtime.attach("terminal", true, true, false).await.unwrap();
        let mut seen = String::new();
        attached.input.resize(100, 40).await.unwrap();
        attached
            .input
            .write_stdin(b"stty size; echo term=$TERM; tty\n")
            .await
            .unwrap();
        read_until(&mut attached.output, &mut seen, "term=xterm").await;
        read_until(&mut attached.output, &mut seen, "/dev/").await;
        assert!(seen.contains("40 100"), "{seen:?}");
        attached.input.close().await;
        tokio::time::timeout(Duration::from_secs(20), async {
            while attached.output.next().await.unwrap().is_some() {}
        })
        .await
        .expect("the session did not end with its input");
        assert!(matches!(
            runtime.state("terminal").unwrap(),
            ContainerState::Running { .. }
        ));

        // A second session still types into the shell, and sees the new size.
        let mut again = runtime.attach("terminal", true, true, false).await.unwrap();
        let mut seen = String::new();
        again.input.resize(132, 43).await.unwrap();
        again.input.write_stdin(b"stty size; exit 7\n").await.unwrap();
        read_until(&mut again.output, &mut seen, "43 132").await;
    });
    assert_eq!(fx.wait_exited("terminal").exit_code, 7);

    let logged = records(&fx.log("terminal"));
    assert!(logged.iter().all(|r| r.1 == "stdout"), "{logged:?}");
    let text: Vec<&str> = logged.iter().map(|r| r.3.as_str()).collect();
    assert!(text.iter().any(|line| line.starts_with("started")), "{text:?}");
    assert!(text.iter().any(|line| line.starts_with("40 100")), "{text:?}");
    assert!(text.iter().any(|line| line.starts_with("43 132")), "{text:?}");
}
