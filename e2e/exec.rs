//! `kubectl exec`, `attach` and `cp` against real containers: the API server proxies the
//! WebSocket upgrade to the node, which runs commands in the container or attaches to its
//! stdio. Needs root; without it the test says it was skipped.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Server, wait_for};
use crate::node::{IMAGE, apply, kubectl_with_input, node_server, wait_node_ready};

fn pod(name: &str, restart: &str, container: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
{container}"
    )
}

fn wait_running(server: &Server, name: &str) {
    wait_for(&format!("pod {name} Running"), 60, || {
        let out = server.kubectl(&["get", "pod", name, "-o", "jsonpath={.status.phase}"]);
        (String::from_utf8_lossy(&out.stdout) == "Running").then_some(())
    });
}

#[test]
fn exec_attach_and_cp_through_the_api_server() {
    let Some(server) = node_server(&[]) else {
        return;
    };
    apply(
        &server,
        &pod(
            "shell",
            "Always",
            "    command: [sh, -c, 'trap \"exit 0\" TERM; while true; do sleep 1; done']\n    env: [{name: FROM_SPEC, value: spec-env}]\n",
        ),
    );
    apply(
        &server,
        &pod(
            "ticker",
            "Always",
            "    command: [sh, -c, 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done']\n",
        ),
    );
    apply(
        &server,
        &pod(
            "reader",
            "Never",
            "    command: [sh, -c, 'read line; echo got $line; echo bye >&2']\n    stdin: true\n    stdinOnce: true\n",
        ),
    );
    wait_running(&server, "shell");

    // Output, the container's environment, and exit codes.
    let out = server.kubectl_ok(&[
        "exec",
        "shell",
        "--",
        "sh",
        "-c",
        "echo hi $FROM_SPEC; echo err >&2",
    ]);
    assert_eq!(out, "hi spec-env\n");
    let out = server.kubectl(&["exec", "shell", "--", "sh", "-c", "echo err >&2; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("err"), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("command terminated with exit code 3"),
        "{out:?}"
    );
    let out = server.kubectl(&["exec", "shell", "--", "/no/such/command"]);
    assert!(!out.status.success(), "{out:?}");
    // The API server checks the container too (kubectl checks it before asking).
    let out = server.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/shell/exec?container=nope&command=true&stdout=true",
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("container nope is not valid for pod shell"),
        "{out:?}"
    );

    // stdin through -i.
    let out = kubectl_with_input(
        &server,
        &[],
        &["exec", "-i", "shell", "--", "cat"],
        b"piped line\nand more",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "piped line\nand more");

    // A terminal with -it, under script(1) so kubectl has one too.
    let kubeconfig = server.kubeconfig();
    let command = format!(
        "kubectl --kubeconfig {} exec -it shell -- sh -c 'tty; echo $TERM'",
        kubeconfig.display()
    );
    // script(1) gets a stdin that stays open: at EOF it would end the session early.
    let mut script = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _keep_stdin_open = script.stdin.take();
    let pid = nix::unistd::Pid::from_raw(script.id() as i32);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if done_rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    });
    let mut text = String::new();
    script.stdout.take().unwrap().read_to_string(&mut text).unwrap();
    let status = script.wait().unwrap();
    let _ = done_tx.send(());
    assert!(status.success(), "{status:?}: {text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("xterm"), "{text:?}");

    // kubectl cp both ways (tar through exec).
    let local = server.data_dir.join("to-copy.txt");
    let content: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&local, &content).unwrap();
    server.kubectl_ok(&["cp", local.to_str().unwrap(), "shell:/tmp/copied.txt"]);
    assert_eq!(
        server
            .kubectl_ok(&["exec", "shell", "--", "wc", "-l", "/tmp/copied.txt"])
            .trim(),
        "2000 /tmp/copied.txt"
    );
    let back = server.data_dir.join("copied-back.txt");
    server.kubectl_ok(&["cp", "shell:/tmp/copied.txt", back.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&back).unwrap(), content);

    // attach shows the running container's output as it comes.
    wait_running(&server, "ticker");
    let mut attach = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .args(["attach", "ticker"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = attach.stdout.take().unwrap();
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(read) = stdout.read(&mut buf) {
            if read == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..read]);
            let ticks = String::from_utf8_lossy(&seen).matches("tick ").count();
            if ticks >= 3 {
                let _ = seen_tx.send(String::from_utf8_lossy(&seen).into_owned());
                return;
            }
        }
    });
    let seen = seen_rx.recv_timeout(Duration::from_secs(30));
    let _ = attach.kill();
    let _ = attach.wait();
    let seen = seen.expect("kubectl attach showed no ticks");
    assert!(seen.contains("tick "), "{seen:?}");

    // attach -i writes the container's stdin; with stdinOnce it closes when the session ends.
    wait_running(&server, "reader");
    let started = Instant::now();
    let out = kubectl_with_input(&server, &[], &["attach", "-i", "reader"], b"hello\n");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("got hello"),
        "{out:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    wait_for("reader Succeeded", 30, || {
        let out = server.kubectl(&["get", "pod", "reader", "-o", "jsonpath={.status.phase}"]);
        (String::from_utf8_lossy(&out.stdout) == "Succeeded").then_some(())
    });
    let logs = server.kubectl_ok(&["logs", "reader"]);
    assert!(logs.contains("got hello"), "{logs:?}");

    // A finished pod has nothing to exec in (kubectl says so before asking).
    let out = server.kubectl(&["exec", "reader", "--", "true"]);
    assert!(!out.status.success());

    server.kubectl_ok(&["delete", "pod", "shell", "ticker", "reader", "--timeout=60s"]);
}

/// kubectl under script(1), so it has a terminal of `rows` x `cols`; its input is written
/// through [`Terminal::type_line`], its output collected as it comes.
struct Terminal {
    child: std::process::Child,
    input: std::process::ChildStdin,
    output: std::sync::mpsc::Receiver<Vec<u8>>,
    seen: String,
}

impl Terminal {
    /// Starts kubectl with `kubectl_args`, with the environment variables `env` (`A=B ...`).
    fn start(server: &Server, rows: u16, cols: u16, env: &str, kubectl_args: &str) -> Terminal {
        let command = format!(
            "stty rows {rows} cols {cols}; exec env {env} kubectl --kubeconfig {} {kubectl_args}",
            server.kubeconfig().display()
        );
        // script(1) gets a stdin that stays open: at EOF it would end the session early.
        let mut child = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, output) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(read) = stdout.read(&mut buf) {
                if read == 0 || tx.send(buf[..read].to_vec()).is_err() {
                    return;
                }
            }
        });
        Terminal {
            child,
            input,
            output,
            seen: String::new(),
        }
    }

    fn type_line(&mut self, line: &str) {
        use std::io::Write;
        let written = self.input.write_all(format!("{line}\n").as_bytes());
        if let Err(err) = written.and_then(|()| self.input.flush()) {
            while let Ok(chunk) = self.output.recv_timeout(Duration::from_secs(1)) {
                self.seen.push_str(&String::from_utf8_lossy(&chunk));
            }
            panic!("kubectl ended ({err}): {:?}", self.seen);
        }
    }

    /// Waits up to `wait` for `wanted` in the output; false when it did not come.
    fn saw(&mut self, wanted: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while !self.seen.contains(wanted) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(chunk) => self.seen.push_str(&String::from_utf8_lossy(&chunk)),
                Err(_) => return false,
            }
        }
        true
    }

    /// Waits for kubectl to end; the output it wrote.
    fn wait(mut self) -> (std::process::ExitStatus, String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(chunk) = self.output.recv_timeout(Duration::from_secs(1)) {
                    self.seen.push_str(&String::from_utf8_lossy(&chunk));
                }
                return (status, std::mem::take(&mut self.seen));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("kubectl did not end: {:?}", self.seen);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tty_containers_attach_with_a_terminal_that_resizes() {
    let Some(mut server) = node_server(&[]) else {
        return;
    };
    apply(
        &server,
        &pod(
            "console",
            "Never",
            "    command: [sh, -c, 'echo started on $(tty); exec sh']\n    tty: true\n    stdin: true\n    stdinOnce: true\n",
        ),
    );
    wait_running(&server, "console");

    // Without -t kubectl asks for stderr too, which a terminal does not have (the kubelet
    // attaches with the container's terminal setting, and the CRI refuses both); kubectl
    // shows the upgrade's failure as upstream's does, without a message.
    let out = server.kubectl(&["attach", "console"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).ends_with("Error from server: \n"),
        "{out:?}"
    );

    // attach -it over SPDY: the shell gets what is typed, and the terminal has kubectl's
    // size. When kubectl goes away the session ends; the terminal stays (stdinOnce closes
    // only a stdin without a terminal).
    let mut terminal = Terminal::start(
        &server,
        30,
        90,
        "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false",
        "attach -it console",
    );
    assert!(
        terminal.saw("If you don't see a command prompt", Duration::from_secs(30)),
        "{:?}",
        terminal.seen
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        terminal.type_line("stty size; echo over-$((3*7))");
        if terminal.saw("30 90", Duration::from_secs(2)) {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", terminal.seen);
    }
    assert!(
        terminal.saw("over-21", Duration::from_secs(10)),
        "{:?}",
        terminal.seen
    );
    drop(terminal);

    // The shim keeps the terminal while noded restarts; the new noded attaches to it again,
    // over WebSocket, with another size.
    let (status, _, stderr) = server.stop();
    assert!(status.success(), "{status}: {stderr}");
    server.start_again();
    wait_node_ready(&server);
    wait_running(&server, "console");
    // The new noded's server is reachable once the node reports its endpoint again.
    wait_for("exec through the new noded", 60, || {
        server
            .kubectl(&["exec", "console", "--", "true"])
            .status
            .success()
            .then_some(())
    });
    let mut terminal = Terminal::start(&server, 41, 101, "", "attach -it console");
    assert!(
        terminal.saw("If you don't see a command prompt", Duration::from_secs(30)),
        "{:?}",
        terminal.seen
    );
    // kubectl sends its size as the session starts; ask until the shell sees it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        terminal.type_line("stty size; echo answer-$((6*7))");
        if terminal.saw("41 101", Duration::from_secs(2)) {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", terminal.seen);
    }
    assert!(
        terminal.saw("answer-42", Duration::from_secs(10)),
        "{:?}",
        terminal.seen
    );
    terminal.type_line("echo term-$TERM; exit 0");
    let (status, seen) = terminal.wait();
    assert!(seen.contains("term-xterm"), "{seen:?}");
    assert!(status.success(), "{status:?}: {seen:?}");

    wait_for("console Succeeded", 30, || {
        let out = server.kubectl(&["get", "pod", "console", "-o", "jsonpath={.status.phase}"]);
        (String::from_utf8_lossy(&out.stdout) == "Succeeded").then_some(())
    });
    // A terminal's output is the container's stdout in its log.
    let logs = server.kubectl_ok(&["logs", "console"]);
    assert!(logs.contains("started on /dev/"), "{logs:?}");
    assert!(logs.contains("30 90"), "{logs:?}");
    assert!(logs.contains("41 101"), "{logs:?}");
    assert!(logs.contains("answer-42"), "{logs:?}");
    assert!(logs.contains("term-xterm"), "{logs:?}");

    server.kubectl_ok(&["delete", "pod", "console", "--timeout=60s"]);
}
