//! Cascading deletion through the real kubectl, carried out by the garbage collector and the
//! namespace controller of the real binary: `--cascade=background|foreground|orphan` on owners
//! with dependents, and `kubectl delete namespace` waiting until everything in it is gone.

use std::time::{Duration, Instant};

use crate::harness::Server;

fn apply(server: &Server, manifest: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifest.yaml");
    std::fs::write(&file, manifest).unwrap();
    server.kubectl_ok(&["apply", "-f", file.to_str().unwrap()]);
}

fn uid(server: &Server, args: &[&str]) -> String {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "jsonpath={.metadata.uid}"]);
    server.kubectl_ok(&all)
}

fn exists(server: &Server, args: &[&str]) -> bool {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    let out = server.kubectl(&all);
    if out.status.success() {
        return true;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NotFound"), "{stderr}");
    false
}

fn wait_gone(server: &Server, args: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while exists(server, args) {
        assert!(Instant::now() < deadline, "{args:?} still exists after 30s");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A ConfigMap owned by `owners` (name, uid, blockOwnerDeletion).
fn dependent(name: &str, owners: &[(&str, &str, bool)]) -> String {
    let mut manifest =
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  ownerReferences:\n");
    for (owner, uid, block) in owners {
        manifest.push_str(&format!(
            "  - apiVersion: v1\n    kind: ConfigMap\n    name: {owner}\n    uid: {uid}\n    blockOwnerDeletion: {block}\n"
        ));
    }
    manifest.push_str("data:\n  k: v\n");
    manifest
}

#[test]
fn kubectl_delete_cascades() {
    let server = Server::start();

    // Background: the owner goes at once, its dependents (and theirs) after it.
    apply(
        &server,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bg-owner\n",
    );
    let owner = uid(&server, &["cm", "bg-owner"]);
    apply(&server, &dependent("bg-child", &[("bg-owner", &owner, false)]));
    let child = uid(&server, &["cm", "bg-child"]);
    apply(
        &server,
        &dependent("bg-grandchild", &[("bg-child", &child, false)]),
    );
    let out = server.kubectl_ok(&["delete", "cm", "bg-owner", "--cascade=background"]);
    assert_eq!(out.trim(), "configmap \"bg-owner\" deleted");
    wait_gone(&server, &["cm", "bg-child"]);
    wait_gone(&server, &["cm", "bg-grandchild"]);

    // Foreground: kubectl waits for the owner, which goes only after its blocking
    // dependents.
    apply(
        &server,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fg-owner\n",
    );
    let owner = uid(&server, &["cm", "fg-owner"]);
    apply(&server, &dependent("fg-child", &[("fg-owner", &owner, true)]));
    let child = uid(&server, &["cm", "fg-child"]);
    apply(
        &server,
        &dependent("fg-grandchild", &[("fg-child", &child, true)]),
    );
    let out = server.kubectl_ok(&[
        "delete",
        "cm",
        "fg-owner",
        "--cascade=foreground",
        "--timeout=60s",
    ]);
    assert_eq!(out.trim(), "configmap \"fg-owner\" deleted");
    assert!(!exists(&server, &["cm", "fg-owner"]));
    assert!(
        !exists(&server, &["cm", "fg-child"]),
        "blocking dependents go first"
    );
    assert!(!exists(&server, &["cm", "fg-grandchild"]));

    // Orphan: the dependents stay, without the reference to the deleted owner.
    apply(
        &server,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: or-owner\n",
    );
    apply(
        &server,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: or-other\n",
    );
    let owner = uid(&server, &["cm", "or-owner"]);
    let other = uid(&server, &["cm", "or-other"]);
    apply(
        &server,
        &dependent(
            "or-child",
            &[("or-owner", &owner, true), ("or-other", &other, false)],
        ),
    );
    server.kubectl_ok(&["delete", "cm", "or-owner", "--cascade=orphan", "--timeout=60s"]);
    assert!(!exists(&server, &["cm", "or-owner"]));
    let owners = server.kubectl_ok(&[
        "get",
        "cm",
        "or-child",
        "-o",
        "jsonpath={.metadata.ownerReferences[*].name}",
    ]);
    assert_eq!(owners, "or-other");

    // A ReplicaSet owning pods created by hand.
    apply(
        &server,
        "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: web
spec:
  replicas: 0
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers: [{name: c, image: busybox}]
",
    );
    let rs = uid(&server, &["rs", "web"]);
    for pod in ["web-a", "web-b"] {
        apply(
            &server,
            &format!(
                "apiVersion: v1
kind: Pod
metadata:
  name: {pod}
  labels: {{app: other}}
  ownerReferences:
  - {{apiVersion: apps/v1, kind: ReplicaSet, name: web, uid: {rs}}}
spec:
  containers: [{{name: c, image: busybox}}]
"
            ),
        );
    }
    server.kubectl_ok(&["delete", "rs", "web"]);
    wait_gone(&server, &["pod", "web-a"]);
    wait_gone(&server, &["pod", "web-b"]);
}

#[test]
fn kubectl_delete_namespace_removes_everything_in_it() {
    let server = Server::start();
    server.kubectl_ok(&["create", "namespace", "scratch"]);
    // Pods need the namespace's default ServiceAccount, which its controller creates.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !exists(&server, &["serviceaccount", "default", "-n", "scratch"]) {
        assert!(Instant::now() < deadline, "no default ServiceAccount after 30s");
        std::thread::sleep(Duration::from_millis(100));
    }
    apply(
        &server,
        "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: scratch}
data: {k: v}
---
apiVersion: v1
kind: Secret
metadata: {name: token, namespace: scratch}
stringData: {k: v}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: scratch}
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: scratch}
spec:
  containers: [{name: c, image: busybox}]
",
    );
    let started = Instant::now();
    let out = server.kubectl_ok(&["delete", "namespace", "scratch", "--timeout=90s"]);
    assert_eq!(out.trim(), "namespace \"scratch\" deleted");
    assert!(
        !exists(&server, &["namespace", "scratch"]),
        "kubectl returned before the namespace was gone"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    // Everything that was in it is gone with it.
    let left = server.kubectl_ok(&[
        "get",
        "configmaps,secrets,services,pods",
        "-n",
        "scratch",
        "-o",
        "name",
    ]);
    assert_eq!(left.trim(), "");
}
