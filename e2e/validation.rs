//! Server-side field validation through the real kubectl: `--validate=strict` sends
//! `fieldValidation=Strict` and an unknown field fails with upstream's message;
//! `--validate=warn` applies and prints the server's `Warning` headers.

use crate::harness::Server;

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  foo: bar
  containers:
  - name: c
    image: busybox
    bogus: 1
";

fn kubectl_file(server: &Server, manifest: &str, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifest.yaml");
    std::fs::write(&file, manifest).unwrap();
    let mut all: Vec<&str> = args.to_vec();
    all.extend_from_slice(&["-f", file.to_str().unwrap()]);
    server.kubectl(&all)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn strict_fails_and_warn_warns_on_unknown_fields() {
    let server = Server::start();
    for verb in ["create", "apply"] {
        let out = kubectl_file(&server, POD, &[verb, "--validate=strict"]);
        assert!(!out.status.success(), "{verb}");
        assert!(
            stderr(&out).contains(
                r#"Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containers[0].bogus", unknown field "spec.foo""#
            ),
            "{verb}: {}",
            stderr(&out)
        );
    }
    server.kubectl_ok(&["get", "pods"]);
    assert!(!server.kubectl_ok(&["get", "pods", "-o", "name"]).contains("web"));

    let out = kubectl_file(&server, POD, &["apply", "--validate=warn"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "pod/web created\n");
    assert_eq!(
        stderr(&out),
        "Warning: unknown field \"spec.containers[0].bogus\"\nWarning: unknown field \"spec.foo\"\n"
    );

    // Applied again (a strategic merge patch now), strict validation rejects the patch.
    let out = kubectl_file(&server, POD, &["apply", "--validate=strict"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            r#"strict decoding error: unknown field "spec.containers[0].bogus", unknown field "spec.foo""#
        ),
        "{}",
        stderr(&out)
    );
    // Ignore drops the fields silently.
    let out = kubectl_file(&server, POD, &["apply", "--validate=false"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}
