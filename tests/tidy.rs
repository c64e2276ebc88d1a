//! Architecture rules that reviewers would otherwise have to repeat.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Components talk to the API server over HTTPS only: no workspace crate but the `rudder`
/// binary may depend on the apiserver crate, and nothing may depend on the storage engine
/// except the apiserver (and the binary, through it).
#[test]
fn only_the_binary_depends_on_the_api_server() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    assert!(
        packages.len() >= 3,
        "the workspace has the binary, the API server and storage"
    );
    for package in packages {
        let name = package["name"].as_str().unwrap();
        for dependency in package["dependencies"].as_array().unwrap() {
            let dep = dependency["name"].as_str().unwrap();
            let normal = dependency["kind"].is_null();
            if dep == "rudder-apiserver" && normal {
                assert_eq!(
                    name, "rudder",
                    "{name} must reach the API server over HTTPS, not link it"
                );
            }
            if normal && [(name, dep), (dep, name)].contains(&("rudder-noded", "rudder-netd")) {
                panic!(
                    "{name} depends on {dep}: noded and netd meet only in the binary (noded's PodNetwork trait)"
                );
            }
            if dep == "rudder-storage" && normal {
                assert_eq!(
                    name, "rudder-apiserver",
                    "{name} must not use the storage engine directly"
                );
            }
        }
    }
}

/// Every module says what it owns in a `//!` doc comment.
#[test]
fn every_module_has_a_doc_comment() {
    let mut missing = Vec::new();
    let mut checked = 0;
    for dir in ["src", "apiserver", "netd", "noded", "reconcilers", "e2e", "tests"] {
        visit(&workspace_root().join(dir), &mut |path| {
            if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("build.rs") {
                checked += 1;
                let text = std::fs::read_to_string(path).unwrap();
                if !text.trim_start().starts_with("//!") {
                    missing.push(path.display().to_string());
                }
            }
        });
    }
    assert!(checked > 10);
    assert!(missing.is_empty(), "modules without a //! doc: {missing:#?}");
}

fn visit(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.ends_with("target") {
                visit(&path, f);
            }
        } else {
            f(&path);
        }
    }
}
