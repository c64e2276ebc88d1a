//! `/version`: the Kubernetes version Rudder implements, and how this binary was built.

use k8s_openapi::apimachinery::pkg::version::Info;

/// The Kubernetes minor version whose API Rudder serves.
pub const KUBERNETES_MINOR: &str = "35";
/// The Kubernetes release Rudder reports as its git version (before `+rudder-...`).
pub const KUBERNETES_VERSION: &str = "v1.35.0";

/// The version information of this build.
pub fn info() -> Info {
    Info {
        major: "1".to_owned(),
        minor: KUBERNETES_MINOR.to_owned(),
        emulation_major: Some("1".to_owned()),
        emulation_minor: Some(KUBERNETES_MINOR.to_owned()),
        min_compatibility_major: Some("1".to_owned()),
        min_compatibility_minor: Some("34".to_owned()),
        git_version: format!("{KUBERNETES_VERSION}+rudder-{}", env!("CARGO_PKG_VERSION")),
        git_commit: env!("RUDDER_GIT_COMMIT").to_owned(),
        git_tree_state: env!("RUDDER_GIT_TREE_STATE").to_owned(),
        build_date: env!("RUDDER_BUILD_DATE").to_owned(),
        // Rudder is not built with Go: say which compiler built it instead.
        go_version: env!("RUDDER_RUSTC_VERSION").to_owned(),
        compiler: "rustc".to_owned(),
        platform: format!("{}/{}", std::env::consts::OS, go_arch()),
    }
}

/// The architecture in Go's naming, as Kubernetes clients expect it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_kubernetes_1_35() {
        let info = super::info();
        assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "35"));
        assert!(info.git_version.starts_with("v1.35."), "{}", info.git_version);
        assert!(info.platform.starts_with("linux/"));
    }
}
