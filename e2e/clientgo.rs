//! The REST API through a real client-go program (`e2e/clientgo`): typed clients over
//! protobuf, watches, conflicts with `retry.RetryOnConflict`, server-side apply and shared
//! informers, against `rudder server`.
//!
//! The program is built with the Go toolchain on `PATH` (or `/usr/local/go/bin/go`); its module
//! and build caches live under Cargo's target directory, so only the first run downloads
//! client-go and compiles it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Server;

/// The steps the program reports, in order; each must print `PASS <step>`.
const STEPS: &[&str] = &[
    "namespace",
    "configmaps",
    "deployment",
    "watch",
    "conflict-retry",
    "apply",
    "apply-conflict",
    "apply-force",
    "informers",
    "cleanup",
];

/// How long the program may run before the test kills it.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// The `go` command: the one on `PATH`, else the usual install location.
fn go() -> PathBuf {
    for candidate in [PathBuf::from("go"), PathBuf::from("/usr/local/go/bin/go")] {
        if Command::new(&candidate)
            .arg("version")
            .output()
            .is_ok_and(|out| out.status.success())
        {
            return candidate;
        }
    }
    panic!(
        "the client-go e2e test needs the Go toolchain (1.25 or newer): `go` is not on PATH \
         and /usr/local/go/bin/go does not exist; install Go from https://go.dev/dl/"
    );
}

/// Builds the client-go program into `out_dir` and returns its path. GOPATH and GOCACHE live
/// under the target directory, so later builds only relink.
fn build(out_dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/clientgo");
    let cache = Path::new(env!("CARGO_BIN_EXE_rudder"))
        .parent()
        .unwrap()
        .join("e2e-clientgo");
    let gopath = cache.join("gopath");
    let binary = out_dir.join("clientgo");
    let started = Instant::now();
    let out = Command::new(go())
        .args(["build", "-o"])
        .arg(&binary)
        .arg("./")
        .current_dir(&source)
        // -modcacherw keeps the module cache deletable by `cargo clean`; -buildvcs=false
        // spares a git lookup that fails on clones owned by another user.
        .env("GOFLAGS", "-mod=mod -modcacherw -buildvcs=false")
        .env("GOPATH", &gopath)
        .env("GOMODCACHE", gopath.join("pkg/mod"))
        .env("GOCACHE", cache.join("gocache"))
        .env("CGO_ENABLED", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "go build in {} failed:\n{}{}",
        source.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("built the client-go program in {:.1?}", started.elapsed());
    binary
}

#[test]
fn client_go_program() {
    let dir = tempfile::tempdir().unwrap();
    let binary = build(dir.path());
    let server = Server::start();

    let stdout_path = dir.path().join("stdout");
    let stderr_path = dir.path().join("stderr");
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .arg("-kubeconfig")
        .arg(server.kubeconfig())
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&stdout_path).unwrap();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    println!("client-go program ran in {:.1?}:\n{stdout}", started.elapsed());

    let lines: Vec<&str> = stdout.lines().collect();
    let missing: Vec<&str> = STEPS
        .iter()
        .copied()
        .filter(|step| !lines.contains(&format!("PASS {step}").as_str()))
        .collect();
    let passed = status.is_some_and(|status| status.success()) && missing.is_empty();
    assert!(
        passed,
        "client-go program {}; steps not passed: {missing:?}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        match status {
            Some(status) => format!("exited with {status}"),
            None => format!("was killed after {RUN_TIMEOUT:?}"),
        }
    );
}
