//! A real node for tests that run containers: `rudder server` as a node with the busybox test
//! image in its drop-in directory, and the small kubectl steps those tests share. Needs root;
//! without it [`node_server`] says the test was skipped and returns `None`.

use std::path::Path;

use crate::harness::{Server, free_port, wait_for};

/// The busybox image every node server has.
pub const IMAGE: &str = "busybox:e2e";

/// A server that is also a node (with more server `flags`), its busybox image imported.
pub fn node_server(flags: &[&str]) -> Option<(Server, tempfile::TempDir)> {
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
    let mut args = vec!["--agent"];
    args.extend_from_slice(flags);
    let server = Server::start_in(dir.path(), free_port(), &args);
    wait_node_ready(&server);
    Some((server, dir))
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
