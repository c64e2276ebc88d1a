//! A real node for tests that run containers: `rudder server` as a node, or a control plane
//! with `rudder noded` as a process of its own, with the busybox test image in the node's
//! drop-in directory, and the small kubectl steps those tests share. Needs root; without it
//! [`node_server`] and [`standalone_node`] say the test was skipped and return `None`.

use std::path::Path;

use crate::harness::{Noded, Server, free_port, wait_for};

/// The busybox image every node server has.
pub const IMAGE: &str = "busybox:e2e";

/// A fresh data dir with the busybox image in its drop-in directory; `None` without root.
pub fn node_data_dir() -> Option<tempfile::TempDir> {
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: needs root");
        return None;
    }
    assert!(
        Path::new(rudder_noded::images::testimage::BUSYBOX).exists(),
        "/bin/busybox is missing: apt-get install busybox-static"
    );
    let dir = tempfile::tempdir().unwrap();
    let drop_in = rudder_noded::images::drop_in_dir(dir.path());
    std::fs::create_dir_all(&drop_in).unwrap();
    let archive = rudder_noded::images::testimage::busybox_oci_archive(IMAGE).unwrap();
    std::fs::write(drop_in.join("busybox.tar"), archive).unwrap();
    Some(dir)
}

/// A server that is also a node (with more server `flags`), its busybox image imported. It
/// owns its data dir, removed only after the server and its containers are gone.
pub fn node_server(flags: &[&str]) -> Option<Server> {
    let dir = node_data_dir()?;
    let mut args = vec!["--agent"];
    args.extend_from_slice(flags);
    let server = Server::start_in(dir.path(), free_port(), &args).owning(dir);
    wait_node_ready(&server);
    Some(server)
}

/// A control plane (`rudder server --disable-agent`) and `rudder noded` (with more noded
/// `flags`) as its only node, Ready, its busybox image imported. Dropping it stops noded
/// first, then the server.
pub struct StandaloneNode {
    pub noded: Noded,
    pub server: Server,
}

/// Starts a [`StandaloneNode`], noded with more `flags` and `env` variables; `None` without
/// root.
pub fn standalone_node(flags: &[&str], env: &[(&str, &str)]) -> Option<StandaloneNode> {
    let dir = node_data_dir()?;
    let server = Server::start();
    let mut noded = Noded::start_in(&server, dir, flags, env);
    wait_noded_ready(&server, &mut noded);
    Some(StandaloneNode { noded, server })
}

/// Waits until the node of a separate `noded` reports Ready, failing if noded exits.
pub fn wait_noded_ready(server: &Server, noded: &mut Noded) {
    wait_for("rudder noded's node Ready", 60, || {
        noded.assert_running();
        let out = server.kubectl(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}",
        ]);
        (String::from_utf8_lossy(&out.stdout).trim() == "True").then_some(())
    });
}

/// Waits until the server's node reports Ready.
pub fn wait_node_ready(server: &Server) {
    wait_for("the node Ready", 60, || {
        let out = server.kubectl(&[
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}",
        ]);
        (String::from_utf8_lossy(&out.stdout).trim() == "True").then_some(())
    });
}

/// The InternalIP of the server's (first) node.
pub fn internal_ip(server: &Server) -> String {
    server.kubectl_ok(&[
        "get",
        "nodes",
        "-o",
        "jsonpath={.items[0].status.addresses[?(@.type=='InternalIP')].address}",
    ])
}

/// `kubectl apply` of a manifest given as text.
pub fn apply(server: &Server, manifest: &str) {
    let path = server.data_dir.join(format!("manifest-{}.yaml", free_port()));
    std::fs::write(&path, manifest).unwrap();
    server.kubectl_ok(&["apply", "-f", path.to_str().unwrap()]);
}

/// A JSONPath of a pod, empty when kubectl fails.
pub fn jsonpath(server: &Server, pod: &str, path: &str) -> String {
    let out = server.kubectl(&["get", "pod", pod, "-o", &format!("jsonpath={path}")]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// kubectl with this server's kubeconfig and the extra environment `envs`, stdin from `input`.
pub fn kubectl_with_input(
    server: &Server,
    envs: &[(&str, &str)],
    args: &[&str],
    input: &[u8],
) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .args(args)
        .envs(envs.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}
