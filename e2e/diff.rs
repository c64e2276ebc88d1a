//! Server-side dry run through the real kubectl: `kubectl diff -f` (dry-run patches and
//! creates; exit 1 with a diff when the server would change something, 0 when not) and
//! `kubectl create --dry-run=server -o yaml` (defaulted, not persisted).

use std::path::PathBuf;

use crate::harness::Server;

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  mode: fast
";

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
";

/// Writes `manifest` to a file in `dir`.
fn manifest(dir: &tempfile::TempDir, manifest: &str) -> PathBuf {
    let file = dir.path().join("manifest.yaml");
    std::fs::write(&file, manifest).unwrap();
    file
}

/// Runs `kubectl diff -f` on `manifest`: (exit code, stdout).
fn diff(server: &Server, manifest_text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = manifest(&dir, manifest_text);
    let out = server.kubectl(&["diff", "-f", file.to_str().unwrap()]);
    let code = out.status.code().unwrap();
    assert!(
        code <= 1,
        "kubectl diff failed ({code}):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (code, String::from_utf8(out.stdout).unwrap())
}

/// The lines a unified diff adds and removes (without the file headers).
fn changes(diff: &str) -> Vec<&str> {
    diff.lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---")
        })
        .collect()
}

#[test]
fn diff_reports_what_the_server_would_change() {
    let server = Server::start();

    // A new object: everything is added, nothing is created.
    let (code, out) = diff(&server, CONFIGMAP);
    assert_eq!(code, 1, "{out}");
    let added = changes(&out);
    assert!(added.iter().all(|l| l.starts_with('+')), "{out}");
    assert!(
        added.contains(&"+  name: settings") && added.contains(&"+  mode: fast"),
        "{out}"
    );
    assert!(added.iter().any(|l| l.starts_with("+  uid: ")), "{out}");
    let missing = server.kubectl(&["get", "configmap", "settings"]);
    assert!(!missing.status.success());

    // The same object as live: no diff.
    let dir = tempfile::tempdir().unwrap();
    server.kubectl_ok(&["apply", "-f", manifest(&dir, CONFIGMAP).to_str().unwrap()]);
    assert_eq!(diff(&server, CONFIGMAP), (0, String::new()));

    // A change: only the changed field, live object untouched.
    let (code, out) = diff(&server, &CONFIGMAP.replace("mode: fast", "mode: safe"));
    assert_eq!(code, 1, "{out}");
    let mut changed = changes(&out);
    changed.sort_unstable();
    assert_eq!(changed, ["+  mode: safe", "-  mode: fast"], "{out}");
    let live = server.kubectl_ok(&["get", "configmap", "settings", "-o", "jsonpath={.data.mode}"]);
    assert_eq!(live, "fast");

    // A spec change of a deployment also bumps its generation, as the server would.
    server.kubectl_ok(&["apply", "-f", manifest(&dir, DEPLOYMENT).to_str().unwrap()]);
    assert_eq!(diff(&server, DEPLOYMENT), (0, String::new()));
    let (code, out) = diff(&server, &DEPLOYMENT.replace("replicas: 1", "replicas: 3"));
    assert_eq!(code, 1, "{out}");
    let mut changed = changes(&out);
    changed.sort_unstable();
    assert_eq!(
        changed,
        [
            "+  generation: 2",
            "+  replicas: 3",
            "-  generation: 1",
            "-  replicas: 1"
        ],
        "{out}"
    );
    let live = server.kubectl_ok(&["get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(live, "1");
}

#[test]
fn create_with_server_dry_run_defaults_and_does_not_persist() {
    let server = Server::start();
    let out = server.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--dry-run=server",
        "-o",
        "json",
    ]);
    let object: serde_json::Value = serde_json::from_str(&out).unwrap();
    let meta = &object["metadata"];
    assert_eq!(meta["name"], "web");
    assert_eq!(meta["namespace"], "default");
    assert_eq!(meta["generation"], 1);
    assert!(
        meta["uid"].is_string() && meta["creationTimestamp"].is_string(),
        "{out}"
    );
    assert!(meta.get("resourceVersion").is_none(), "{out}");
    let spec = &object["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(
        pod["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");

    let yaml = server.kubectl_ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=fast",
        "--dry-run=server",
        "-o",
        "yaml",
    ]);
    assert!(
        yaml.contains("kind: ConfigMap") && yaml.contains("  mode: fast"),
        "{yaml}"
    );
    assert!(
        yaml.contains("  uid: ") && !yaml.contains("resourceVersion"),
        "{yaml}"
    );

    for (kind, name) in [("deployment", "web"), ("configmap", "settings")] {
        let out = server.kubectl(&["get", kind, name]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not found"),
            "{kind} {name} was persisted"
        );
    }
}
