//! `kubectl port-forward` to a real container, over SPDY tunnelled in a WebSocket (kubectl's
//! default) and over plain SPDY, and `kubectl exec` over SPDY: the API server proxies the
//! upgrades to the node, which connects to the port inside the pod's network namespace or
//! runs the command. Needs root; without it the test says it was skipped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::{Server, free_port, wait_for};
use crate::node::{IMAGE, apply, kubectl_with_input, node_server};

fn web() -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
    command: [sh, -c, 'mkdir -p /www && echo hello from the pod > /www/index.html && seq 1 300000 > /www/big.txt && exec httpd -f -p 8080 -h /www']
"
    )
}

/// A running `kubectl port-forward` with what it printed so far.
struct Forward {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Forward {
    /// Starts `kubectl port-forward pod/web LOCAL:8080 LOCAL:9999` with `env`, waiting until it
    /// listens.
    fn start(server: &Server, web: u16, nothing: u16, env: &[(&str, &str)]) -> Forward {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(server.kubeconfig())
            .args([
                "port-forward",
                "pod/web",
                &format!("{web}:8080"),
                &format!("{nothing}:9999"),
            ])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let collect = |pipe: Box<dyn Read + Send>| {
            let text = Arc::new(Mutex::new(String::new()));
            let sink = text.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { return };
                    let mut text = sink.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                }
            });
            text
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        let forward = Forward {
            child,
            stdout,
            stderr,
        };
        wait_for("kubectl port-forward listening", 30, || {
            let out = forward.stdout.lock().unwrap().clone();
            (out.contains(&format!("Forwarding from 127.0.0.1:{web} -> 8080"))
                && out.contains(&format!("Forwarding from 127.0.0.1:{nothing} -> 9999")))
            .then_some(())
        });
        forward
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn exited(&mut self) -> bool {
        self.child.try_wait().unwrap().is_some()
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP/1.0 GET through the forwarded port: the whole answer.
fn get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// Forwards to the web server twice on one connection, then to a port nothing listens on.
fn check_forwarding(server: &Server, env: &[(&str, &str)]) {
    let (web, nothing) = (free_port(), free_port());
    let mut forward = Forward::start(server, web, nothing, env);
    let first = get(web, "/index.html");
    assert!(first.starts_with("HTTP/1.1 200 OK"), "{first:?}");
    assert!(first.ends_with("hello from the pod\n"), "{first:?}");
    // A second connection: a second error/data stream pair on the same SPDY connection.
    let second = get(web, "/index.html");
    assert!(second.ends_with("hello from the pod\n"), "{second:?}");
    // Far more than SPDY's 64 KiB initial windows.
    let big = get(web, "/big.txt");
    let expected: String = (1..=300_000).map(|i| format!("{i}\n")).collect();
    assert!(big.ends_with(&expected), "{} bytes", big.len());
    let missing = get(web, "/missing");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing:?}");
    assert!(!forward.exited(), "{}", forward.stderr());

    // Nothing listens on 9999: the connection ends without data and kubectl reports the
    // node's error.
    let mut stream = TcpStream::connect(("127.0.0.1", nothing)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = stream.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    assert!(answer.is_empty(), "{answer:?}");
    let stderr = wait_for("kubectl's error", 30, || {
        let stderr = forward.stderr();
        stderr.contains("connection refused").then_some(stderr)
    });
    assert!(
        stderr.contains(&format!(
            "an error occurred forwarding {nothing} -> 9999: error forwarding port 9999 to pod web, uid "
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("failed to connect to localhost:9999 inside namespace ")
            && stderr.contains("IPv4: dial tcp4 127.0.0.1:9999: connect: connection refused"),
        "{stderr}"
    );
    // kubectl (client-go) closes its connection after a forwarding error and exits with
    // "lost connection to pod".
    wait_for("kubectl port-forward to end", 30, || {
        forward.exited().then_some(())
    });
    assert!(
        forward.stderr().contains("lost connection to pod"),
        "{}",
        forward.stderr()
    );
}

#[test]
fn port_forward_and_spdy_exec_through_the_api_server() {
    let Some(server) = node_server(&[]) else {
        return;
    };
    apply(&server, &web());
    wait_for("pod web Running", 60, || {
        let out = server.kubectl(&["get", "pod", "web", "-o", "jsonpath={.status.phase}"]);
        (String::from_utf8_lossy(&out.stdout) == "Running").then_some(())
    });
    // httpd may take a moment after the container started.
    wait_for("httpd listening", 30, || {
        let out = server.kubectl(&["exec", "web", "--", "wget", "-qO-", "http://127.0.0.1:8080/"]);
        out.status.success().then_some(())
    });

    // kubectl's default: SPDY tunnelled in a WebSocket.
    check_forwarding(&server, &[]);
    // Plain SPDY, as older clients speak it.
    check_forwarding(&server, &[("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")]);

    // exec over SPDY: output, stderr, exit codes and stdin.
    let spdy = [("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")];
    let exec = |args: &[&str], input: &[u8]| kubectl_with_input(&server, &spdy, args, input);

    let out = exec(
        &["exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3"],
        b"",
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("err\n"), "{stderr}");
    assert!(stderr.contains("command terminated with exit code 3"), "{stderr}");
    let big: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    let out = exec(
        &["exec", "-i", "web", "--", "sh", "-c", "wc -l; echo done"],
        big.as_bytes(),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "20000\ndone\n");
    let out = exec(&["exec", "web", "--", "cat", "/www/index.html"], b"");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from the pod\n",
        "{out:?}"
    );

    // A terminal (with its resize stream) under script(1), so kubectl has one too; script gets
    // a stdin that stays open, as at EOF it would end the session early.
    let command = format!(
        "KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false kubectl --kubeconfig {} exec -it web -- sh -c 'tty; echo $TERM'",
        server.kubeconfig().display()
    );
    let mut script = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _keep_stdin_open = script.stdin.take();
    let mut text = String::new();
    script.stdout.take().unwrap().read_to_string(&mut text).unwrap();
    assert!(script.wait().unwrap().success(), "{text:?}");
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("xterm"), "{text:?}");

    // attach -i over SPDY writes the container's stdin and shows its output.
    apply(
        &server,
        &format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: reader
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {IMAGE}
    command: [sh, -c, 'read line; echo got $line']
    stdin: true
    stdinOnce: true
"
        ),
    );
    wait_for("pod reader Running", 60, || {
        let out = server.kubectl(&["get", "pod", "reader", "-o", "jsonpath={.status.phase}"]);
        (String::from_utf8_lossy(&out.stdout) == "Running").then_some(())
    });
    let out = exec(&["attach", "-i", "reader"], b"over spdy\n");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("got over spdy"),
        "{out:?}"
    );

    server.kubectl_ok(&["delete", "pod", "web", "reader", "--timeout=60s"]);
}
