//! `kubectl explain` with the real kubectl: from the OpenAPI v3 documents (the default) and
//! from the v2 document as protobuf (`--output=plaintext-openapiv2`, which kubectl asks for as
//! `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`). The expected outputs in
//! `testdata/explain-*.txt` are kubectl 1.32's rendering of upstream's v1.35 documents, which
//! the server serves unchanged (filtered to the GA group versions).

use crate::harness::Server;

/// Compares kubectl's output with a golden file, showing the first differing line.
fn assert_same(args: &[&str], got: &str, want: &str) {
    if got == want {
        return;
    }
    let (n, (g, w)) = got
        .lines()
        .chain(std::iter::repeat("<end>"))
        .zip(want.lines().chain(std::iter::repeat("<end>")))
        .enumerate()
        .find(|(_, (g, w))| g != w)
        .unwrap();
    panic!(
        "kubectl {}: line {} differs:\n  want {w:?}\n  got  {g:?}",
        args.join(" "),
        n + 1
    );
}

#[test]
fn explain_matches_upstream() {
    let server = Server::start();
    for (args, want) in [
        (
            &["explain", "deployment.spec.strategy"][..],
            include_str!("testdata/explain-deployment.spec.strategy.txt"),
        ),
        (
            &["explain", "pod", "--recursive"][..],
            include_str!("testdata/explain-pod-recursive.txt"),
        ),
        (
            &[
                "explain",
                "deployment.spec.strategy",
                "--output=plaintext-openapiv2",
            ][..],
            include_str!("testdata/explain-v2-deployment.spec.strategy.txt"),
        ),
    ] {
        assert_same(args, &server.kubectl_ok(args), want);
    }

    // The v2 document as protobuf describes every kind, nested fields included.
    let out = server.kubectl_ok(&["explain", "pod", "--recursive", "--output=plaintext-openapiv2"]);
    assert!(out.starts_with("KIND:     Pod\nVERSION:  v1\n"), "{out}");
    for field in [
        "   spec\t<Object>",
        "      containers\t<[]Object>",
        "         image\t<string>",
    ] {
        assert!(out.lines().any(|l| l == field), "{field:?} missing:\n{out}");
    }
    let out = server.kubectl_ok(&[
        "explain",
        "cronjobs.spec.jobTemplate",
        "--output=plaintext-openapiv2",
    ]);
    assert!(
        out.starts_with("KIND:     CronJob\nVERSION:  batch/v1\n"),
        "{out}"
    );
}
