//! Records the build's git commit, tree state, commit date and compiler for `/version`.

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    let commit = output("git", &["rev-parse", "HEAD"]).unwrap_or_default();
    let dirty = Command::new("git")
        .args(["diff", "--quiet", "HEAD", "--"])
        .status()
        .is_ok_and(|s| !s.success());
    let date = output(
        "git",
        &[
            "log",
            "-1",
            "--format=%cd",
            "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
        ],
    )
    .filter(|d| !d.is_empty())
    .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let compiler = output(&rustc, &["--version"]).unwrap_or_default();
    println!("cargo:rustc-env=RUDDER_GIT_COMMIT={commit}");
    println!(
        "cargo:rustc-env=RUDDER_GIT_TREE_STATE={}",
        if commit.is_empty() {
            ""
        } else if dirty {
            "dirty"
        } else {
            "clean"
        }
    );
    println!("cargo:rustc-env=RUDDER_BUILD_DATE={date}");
    println!("cargo:rustc-env=RUDDER_RUSTC_VERSION={compiler}");
    if let Some(git_dir) = output("git", &["rev-parse", "--git-dir"]) {
        for file in ["HEAD", "index"] {
            println!("cargo:rerun-if-changed={git_dir}/{file}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
