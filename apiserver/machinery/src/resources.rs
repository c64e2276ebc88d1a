//! The built-in API groups and resources a v1.35 API server serves by default, exactly as its
//! discovery documents list them.

pub use crate::generated::resources::{GROUPS, RESOURCES};

/// An API group and the versions served, preferred first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group name; empty for the legacy core group.
    pub name: &'static str,
    /// Served versions, preferred first.
    pub versions: &'static [&'static str],
}

/// A resource of one group version, as discovery describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// The group; empty for core.
    pub group: &'static str,
    /// The version.
    pub version: &'static str,
    /// The plural resource name.
    pub resource: &'static str,
    /// The kind.
    pub kind: &'static str,
    /// The singular name.
    pub singular: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// The verbs served.
    pub verbs: &'static [&'static str],
    /// Short names (`po`, `deploy`).
    pub short_names: &'static [&'static str],
    /// Categories (`all`).
    pub categories: &'static [&'static str],
    /// The storage version hash discovery reports.
    pub storage_version_hash: &'static str,
    /// Subresources.
    pub subresources: &'static [SubresourceInfo],
}

/// A subresource of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubresourceInfo {
    /// `status`, `scale`, `binding`, ...
    pub name: &'static str,
    /// The kind sent and returned.
    pub kind: &'static str,
    /// The group of that kind.
    pub group: &'static str,
    /// The version of that kind.
    pub version: &'static str,
    /// The verbs served.
    pub verbs: &'static [&'static str],
}

impl ResourceInfo {
    /// `apps/v1`, or `v1` for core.
    pub fn group_version(&self) -> String {
        group_version(self.group, self.version)
    }

    /// The subresource named `name`.
    pub fn subresource(&self, name: &str) -> Option<&'static SubresourceInfo> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether the resource serves `verb`.
    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }
}

/// `group/version`, or `version` for the core group.
pub fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// The resource `resource` of `group`/`version`.
pub fn find(group: &str, version: &str, resource: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.resource == resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_upstream_discovery() {
        let pods = find("", "v1", "pods").unwrap();
        assert_eq!((pods.kind, pods.singular, pods.namespaced), ("Pod", "pod", true));
        assert_eq!(pods.short_names, ["po"]);
        assert_eq!(pods.categories, ["all"]);
        let eviction = pods.subresource("eviction").unwrap();
        assert_eq!(
            (eviction.group, eviction.version, eviction.kind),
            ("policy", "v1", "Eviction")
        );
        let scale = find("apps", "v1", "deployments")
            .unwrap()
            .subresource("scale")
            .unwrap();
        assert_eq!(
            (scale.group, scale.version, scale.kind),
            ("autoscaling", "v1", "Scale")
        );
        assert!(!find("", "v1", "namespaces").unwrap().has_verb("deletecollection"));
        assert_eq!(GROUPS[0].name, "");
        let autoscaling = GROUPS.iter().find(|g| g.name == "autoscaling").unwrap();
        assert_eq!(autoscaling.versions, ["v2", "v1"]);
        assert!(
            RESOURCES
                .iter()
                .all(|r| !r.version.contains("alpha") && !r.version.contains("beta")),
            "a default API server serves only GA versions"
        );
    }
}
