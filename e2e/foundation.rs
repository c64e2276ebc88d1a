//! The foundation as a new user meets it: start, kubectl, health, authentication, restart,
//! start-up errors and log formats.

use crate::harness::{Server, curl, free_port, rudder};

#[test]
fn kubectl_sees_kubernetes_1_35_and_health_checks() {
    let server = Server::start();
    let version: serde_json::Value =
        serde_json::from_str(&server.kubectl_ok(&["version", "-o", "json"])).unwrap();
    assert_eq!(version["serverVersion"]["major"], "1");
    assert_eq!(version["serverVersion"]["minor"], "35");
    assert!(
        version["serverVersion"]["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.35.")
    );

    let readyz = server.kubectl_ok(&["get", "--raw", "/readyz?verbose"]);
    assert!(readyz.contains("[+]ping ok\n"), "{readyz}");
    assert!(readyz.contains("[+]storage ok\n"), "{readyz}");
    assert!(readyz.ends_with("readyz check passed\n"), "{readyz}");
    assert_eq!(server.kubectl_ok(&["get", "--raw", "/livez/ping"]), "ok");
    let excluded = server.kubectl_ok(&["get", "--raw", "/healthz?verbose&exclude=storage"]);
    assert!(excluded.contains("[+]storage excluded: ok"), "{excluded}");

    let metrics = server.kubectl_ok(&["get", "--raw", "/metrics"]);
    assert!(metrics.contains("apiserver_request_total{"), "{metrics}");
    assert!(
        metrics.contains("rudder_storage_commit_duration_seconds"),
        "{metrics}"
    );
}

#[test]
fn unauthenticated_requests_only_reach_public_endpoints() {
    let server = Server::start();
    let (code, body) = curl(&[&server.url("/api")]);
    assert_eq!(code, 401);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["apiVersion"], "v1");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "Unauthorized");
    assert_eq!(status["code"], 401);
    for path in ["/healthz", "/livez", "/readyz"] {
        assert_eq!(curl(&[&server.url(path)]), (200, "ok".to_owned()), "{path}");
    }
    assert_eq!(curl(&[&server.url("/version")]).0, 200);
    assert_eq!(curl(&[&server.url("/metrics")]).0, 401);

    // The static token file authenticates bearer tokens.
    let tokens = std::fs::read_to_string(server.data_dir.join("tokens.csv")).unwrap();
    let token = tokens.split(',').next().unwrap();
    let auth = format!("Authorization: Bearer {token}");
    assert_eq!(curl(&["-H", &auth, &server.url("/metrics")]).0, 200);
    assert_eq!(
        curl(&["-H", "Authorization: Bearer wrong", &server.url("/version")]).0,
        401
    );

    // The server presents a certificate for 127.0.0.1 signed by the cluster CA.
    let ca = server.data_dir.join("pki/ca.crt");
    let out = std::process::Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(&ca)
        .arg(server.url("/healthz"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn kubectl_create_token_gives_a_service_account_credential() {
    let server = Server::start();
    server.kubectl_ok(&["create", "serviceaccount", "robot"]);
    let token = server
        .kubectl_ok(&["create", "token", "robot", "--duration", "15m"])
        .trim()
        .to_owned();
    let ca = server.data_dir.join("pki").join("ca.crt");
    let as_robot = |args: &[&str]| {
        std::process::Command::new("kubectl")
            .args(["--kubeconfig", "/dev/null", "--server", &server.url("")])
            .arg("--certificate-authority")
            .arg(&ca)
            .args(["--token", &token])
            .args(args)
            .output()
            .unwrap()
    };
    let whoami = as_robot(&["auth", "whoami", "-o", "json"]);
    assert!(
        whoami.status.success(),
        "{}",
        String::from_utf8_lossy(&whoami.stderr)
    );
    let review: serde_json::Value = serde_json::from_slice(&whoami.stdout).unwrap();
    let user = &review["status"]["userInfo"];
    assert_eq!(user["username"], "system:serviceaccount:default:robot");
    assert_eq!(
        user["groups"],
        serde_json::json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    assert!(
        user["extra"]["authentication.kubernetes.io/credential-id"][0]
            .as_str()
            .unwrap()
            .starts_with("JTI="),
        "{review}"
    );
    let listed = as_robot(&["get", "serviceaccounts", "-o", "name"]);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("serviceaccount/robot"),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );

    let short = server.kubectl(&["create", "token", "robot", "--duration", "1m"]);
    assert!(!short.status.success());
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(
        stderr.contains(
            "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
        ),
        "{stderr}"
    );

    server.kubectl_ok(&["delete", "serviceaccount", "robot"]);
    let denied = as_robot(&["get", "serviceaccounts"]);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("error: You must be logged in to the server (Unauthorized)"),
        "{stderr}"
    );
}

#[test]
fn files_are_private_and_restart_keeps_state() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Server::start_in(dir.path(), port, &[]);
    let mode = |path: &str| {
        std::fs::metadata(dir.path().join(path))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    for private in [
        "kubeconfig.yaml",
        "tokens.csv",
        "token",
        "state.redb",
        "pki/ca.key",
        "pki/admin.key",
        "pki/apiserver.key",
        "pki/sa.key",
    ] {
        assert_eq!(mode(private), 0o600, "{private}");
    }
    let ca = std::fs::read(dir.path().join("pki/ca.crt")).unwrap();
    let sa_key = std::fs::read(dir.path().join("pki/sa.key")).unwrap();
    let kubeconfig = std::fs::read(dir.path().join("kubeconfig.yaml")).unwrap();

    let (status, stdout, stderr) = server.stop();
    assert!(status.success(), "exit {status}:\n{stderr}");
    assert_eq!(
        stdout,
        format!(
            "export KUBECONFIG={}\n",
            dir.path().join("kubeconfig.yaml").display()
        )
    );
    assert!(stderr.contains("API server stopped"), "{stderr}");

    let server = Server::start_in(dir.path(), port, &[]);
    assert_eq!(std::fs::read(dir.path().join("pki/ca.crt")).unwrap(), ca);
    // Issued service account tokens stay valid: the signing key is kept.
    assert_eq!(std::fs::read(dir.path().join("pki/sa.key")).unwrap(), sa_key);
    assert_eq!(
        std::fs::read(dir.path().join("kubeconfig.yaml")).unwrap(),
        kubeconfig
    );
    server.kubectl_ok(&["version"]);
}

#[test]
fn start_up_errors_are_one_clear_line() {
    let server = Server::start();
    let port = server.port.to_string();
    let data_dir = server.data_dir.to_str().unwrap();

    let other = tempfile::tempdir().unwrap();
    let out = rudder(&[
        "server",
        "--bind-address",
        "127.0.0.1",
        "--secure-port",
        &port,
        "--data-dir",
        other.path().to_str().unwrap(),
    ]);
    assert_one_line_error(&out, "address already in use");

    let out = rudder(&[
        "server",
        "--secure-port",
        &free_port().to_string(),
        "--data-dir",
        data_dir,
    ]);
    assert_one_line_error(&out, "locked by another process");

    let corrupt = tempfile::tempdir().unwrap();
    std::fs::write(corrupt.path().join("state.redb"), b"garbage").unwrap();
    let out = rudder(&[
        "server",
        "--secure-port",
        &free_port().to_string(),
        "--data-dir",
        corrupt.path().to_str().unwrap(),
    ]);
    assert_one_line_error(&out, "not a rudder database");
    assert_eq!(
        std::fs::read(corrupt.path().join("state.redb")).unwrap(),
        b"garbage"
    );

    let file = corrupt.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let out = rudder(&["server", "--data-dir", file.join("data").to_str().unwrap()]);
    assert_one_line_error(&out, "is not writable");
}

fn assert_one_line_error(out: &std::process::Output, needle: &str) {
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: ") && last.to_lowercase().contains(needle),
        "{stderr}"
    );
    let errors = stderr.lines().filter(|l| l.starts_with("error")).count();
    assert_eq!(errors, 1, "{stderr}");
}

#[test]
fn json_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_in(dir.path(), free_port(), &["--log-format", "json"]);
    let (_, _, stderr) = server.stop();
    let mut lines = 0;
    for line in stderr.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            entry["level"].is_string() && entry["timestamp"].is_string(),
            "{line}"
        );
        lines += 1;
    }
    assert!(lines >= 2, "{stderr}");
}

#[test]
fn the_join_token_is_a_bootstrap_token_pinned_to_the_ca() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start();
    let path = server.data_dir.join("token");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let (pin, credentials) = text.trim().split_once("::").unwrap();
    let ca = std::fs::read(server.data_dir.join("pki").join("ca.crt")).unwrap();
    let digest: String = ring::digest::digest(&ring::digest::SHA256, &ca)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(pin, format!("K10{digest}"));
    // Agents fetch the CA anonymously and pin it against the token before trusting it.
    let (code, served) = curl(&[&server.url("/cacerts")]);
    assert_eq!((code, served.as_bytes()), (200, ca.as_slice()));
    let (id, _) = credentials.split_once('.').unwrap();
    let ca_path = server.data_dir.join("pki").join("ca.crt");
    let with_token = |token: &str, args: &[&str]| {
        std::process::Command::new("kubectl")
            .args(["--kubeconfig", "/dev/null", "--server", &server.url("")])
            .arg("--certificate-authority")
            .arg(&ca_path)
            .args(["--token", token])
            .args(args)
            .output()
            .unwrap()
    };
    let whoami = with_token(credentials, &["auth", "whoami", "-o", "json"]);
    assert!(
        whoami.status.success(),
        "{}",
        String::from_utf8_lossy(&whoami.stderr)
    );
    let review: serde_json::Value = serde_json::from_slice(&whoami.stdout).unwrap();
    let user = &review["status"]["userInfo"];
    assert_eq!(user["username"], format!("system:bootstrap:{id}"));
    assert_eq!(
        user["groups"],
        serde_json::json!([
            "system:bootstrappers",
            "system:bootstrappers:rudder:agents",
            "system:authenticated"
        ])
    );
    let secret = server.kubectl_ok(&[
        "get",
        "secret",
        "-n",
        "kube-system",
        &format!("bootstrap-token-{id}"),
        "-o",
        "jsonpath={.type}",
    ]);
    assert_eq!(secret, "bootstrap.kubernetes.io/token");

    // A wrong secret, and the token once its Secret is gone, are refused.
    let wrong = with_token(&format!("{id}.0000000000000000"), &["auth", "whoami"]);
    assert!(!wrong.status.success());
    server.kubectl_ok(&[
        "delete",
        "secret",
        "-n",
        "kube-system",
        &format!("bootstrap-token-{id}"),
    ]);
    let revoked = with_token(credentials, &["auth", "whoami"]);
    assert!(String::from_utf8_lossy(&revoked.stderr).contains("Unauthorized"));
}
