//! The registry: every resource the server serves, how it is stored and how its objects
//! behave. Resources are registered here from tables, never routed by hand.
//!
//! Built-in resources come from the generated discovery tables of `rudder-machinery` and use
//! the typed strategies of their kinds. Two GA resources are served in a version or group
//! other than the one they are stored in: autoscaling/v1 HorizontalPodAutoscalers (stored as
//! v2) and events.k8s.io/v1 Events (stored as core/v1 Events); their objects are converted on
//! the way in and out.

use std::sync::Arc;

use rudder_machinery::resources::{GROUPS, RESOURCES, ResourceInfo};
use rudder_machinery::strategy::KindOps;

use crate::status::GroupResource;

/// A subresource of a resource.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subresource {
    /// `status`, `scale`, ...
    pub name: String,
    /// Group of the kind it takes and returns.
    pub group: String,
    /// Version of that kind.
    pub version: String,
    /// That kind.
    pub kind: String,
    /// Verbs served.
    pub verbs: Vec<String>,
}

/// How the objects of a served version relate to the stored ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// Served as stored.
    None,
    /// autoscaling/v1 HorizontalPodAutoscaler over stored autoscaling/v2 objects.
    AutoscalingV1,
    /// events.k8s.io/v1 Event over stored core/v1 Events.
    EventsV1,
}

/// What backs a resource.
#[derive(Clone, Copy, Debug)]
pub enum Backing {
    /// Objects kept in storage, with the kind's strategy.
    Stored(KindOps),
    /// Computed on request; nothing stored (reviews, bindings, component statuses).
    Virtual,
}

/// Where and in which form a resource's objects are stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageLayout {
    /// First key segment: the group, or `core` for the legacy group.
    pub group: String,
    /// Second key segment: the stored resource.
    pub resource: String,
    /// Conversion between served and stored form.
    pub conversion: Conversion,
}

/// A served resource of one group version.
#[derive(Clone, Debug)]
pub struct Resource {
    /// The group (empty for core).
    pub group: String,
    /// The version.
    pub version: String,
    /// The plural name.
    pub resource: String,
    /// The kind.
    pub kind: String,
    /// The singular name.
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Verbs served.
    pub verbs: Vec<String>,
    /// Short names.
    pub short_names: Vec<String>,
    /// Categories.
    pub categories: Vec<String>,
    /// Storage version hash reported by discovery.
    pub storage_version_hash: String,
    /// Subresources.
    pub subresources: Vec<Subresource>,
    /// Where objects are stored.
    pub storage: StorageLayout,
    /// What backs the resource.
    pub backing: Backing,
}

impl Resource {
    fn builtin(info: &'static ResourceInfo) -> Option<Resource> {
        let backing = if is_virtual(info) {
            Backing::Virtual
        } else {
            Backing::Stored(rudder_machinery::kinds::ops(info.group, info.version, info.kind)?)
        };
        let (storage_group, storage_resource, conversion) = match (info.group, info.version, info.resource) {
            ("autoscaling", "v1", "horizontalpodautoscalers") => {
                ("autoscaling", info.resource, Conversion::AutoscalingV1)
            }
            ("events.k8s.io", _, "events") => ("core", "events", Conversion::EventsV1),
            ("", _, resource) => ("core", resource, Conversion::None),
            (group, _, resource) => (group, resource, Conversion::None),
        };
        Some(Resource {
            group: info.group.to_owned(),
            version: info.version.to_owned(),
            resource: info.resource.to_owned(),
            kind: info.kind.to_owned(),
            singular: info.singular.to_owned(),
            namespaced: info.namespaced,
            verbs: info.verbs.iter().map(|v| (*v).to_owned()).collect(),
            short_names: info.short_names.iter().map(|v| (*v).to_owned()).collect(),
            categories: info.categories.iter().map(|v| (*v).to_owned()).collect(),
            storage_version_hash: info.storage_version_hash.to_owned(),
            subresources: info
                .subresources
                .iter()
                .map(|s| Subresource {
                    name: s.name.to_owned(),
                    group: s.group.to_owned(),
                    version: s.version.to_owned(),
                    kind: s.kind.to_owned(),
                    verbs: s.verbs.iter().map(|v| (*v).to_owned()).collect(),
                })
                .collect(),
            storage: StorageLayout {
                group: storage_group.to_owned(),
                resource: storage_resource.to_owned(),
                conversion,
            },
            backing,
        })
    }

    /// `apps/v1`, or `v1` for core.
    pub fn api_version(&self) -> String {
        rudder_machinery::resources::group_version(&self.group, &self.version)
    }

    /// The group and resource, as errors name them.
    pub fn group_resource(&self) -> GroupResource<'_> {
        GroupResource {
            group: &self.group,
            resource: &self.resource,
        }
    }

    /// The kind of lists.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// Whether the resource serves `verb`.
    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// The subresource named `name`.
    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether a delete answers with the deleted object rather than a `Status` (upstream's
    /// `ReturnDeletedObject`).
    pub fn returns_deleted_object(&self) -> bool {
        matches!(
            (self.group.as_str(), self.resource.as_str()),
            (
                "",
                "namespaces"
                    | "persistentvolumes"
                    | "persistentvolumeclaims"
                    | "pods"
                    | "podtemplates"
                    | "resourcequotas"
                    | "services"
                    | "serviceaccounts"
            ) | (
                "resource.k8s.io",
                "deviceclasses" | "resourceclaims" | "resourceclaimtemplates" | "resourceslices"
            ) | (
                "storage.k8s.io",
                "csidrivers"
                    | "csinodes"
                    | "storageclasses"
                    | "volumeattachments"
                    | "volumeattributesclasses"
            )
        )
    }

    /// The operations of the kind, for stored resources.
    pub fn ops(&self) -> Option<&KindOps> {
        match &self.backing {
            Backing::Stored(ops) => Some(ops),
            Backing::Virtual => None,
        }
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!(
                "/{}/{}/{namespace}/{name}",
                self.storage.group, self.storage.resource
            )
        } else {
            format!("/{}/{}/{name}", self.storage.group, self.storage.resource)
        }
    }

    /// The storage prefix of a namespace's objects, or of all objects.
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(namespace) if self.namespaced => {
                format!("/{}/{}/{namespace}/", self.storage.group, self.storage.resource)
            }
            _ => format!("/{}/{}/", self.storage.group, self.storage.resource),
        }
    }
}

/// Resources that are computed per request rather than stored.
fn is_virtual(info: &ResourceInfo) -> bool {
    matches!(
        (info.group, info.resource),
        ("", "bindings")
            | ("", "componentstatuses")
            | ("authentication.k8s.io", _)
            | ("authorization.k8s.io", _)
    )
}

/// An API group and its served versions, preferred first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// The name (empty for core).
    pub name: String,
    /// The versions, preferred first.
    pub versions: Vec<String>,
}

/// Every served resource.
#[derive(Debug)]
pub struct Registry {
    groups: Vec<Group>,
    resources: Vec<Arc<Resource>>,
}

impl Registry {
    /// The built-in resources of a default v1.35 API server.
    pub fn builtin() -> Registry {
        let resources = RESOURCES
            .iter()
            .filter_map(Resource::builtin)
            .map(Arc::new)
            .collect();
        let groups = GROUPS
            .iter()
            .map(|g| Group {
                name: g.name.to_owned(),
                versions: g.versions.iter().map(|v| (*v).to_owned()).collect(),
            })
            .collect();
        Registry { groups, resources }
    }

    /// The served groups, in discovery order (core first).
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Whether `group`/`version` is served.
    pub fn serves(&self, group: &str, version: &str) -> bool {
        self.group(group)
            .is_some_and(|g| g.versions.iter().any(|v| v == version))
    }

    /// The resources of one group version, in discovery order.
    pub fn resources_of<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Resource>> {
        self.resources
            .iter()
            .filter(move |r| r.group == group && r.version == version)
    }

    /// The resource `resource` of `group`/`version`.
    pub fn find(&self, group: &str, version: &str, resource: &str) -> Option<Arc<Resource>> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.resource == resource)
            .cloned()
    }

    /// The resource serving `kind` in `group`/`version`.
    pub fn find_kind(&self, group: &str, version: &str, kind: &str) -> Option<Arc<Resource>> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_registry() {
        let registry = Registry::builtin();
        assert_eq!(
            registry.resources.len(),
            RESOURCES.len(),
            "every generated resource is registered"
        );
        let pods = registry.find("", "v1", "pods").unwrap();
        assert_eq!(pods.key("default", "web"), "/core/pods/default/web");
        assert_eq!(pods.prefix(Some("default")), "/core/pods/default/");
        assert_eq!(pods.prefix(None), "/core/pods/");
        let nodes = registry.find("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key("ignored", "n1"), "/core/nodes/n1");
        let deployments = registry.find("apps", "v1", "deployments").unwrap();
        assert_eq!(deployments.group_resource().to_string(), "deployments.apps");
        assert_eq!(deployments.list_kind(), "DeploymentList");
        let events = registry.find("events.k8s.io", "v1", "events").unwrap();
        assert_eq!(events.prefix(None), "/core/events/");
        assert!(matches!(
            registry.find("", "v1", "bindings").unwrap().backing,
            Backing::Virtual
        ));
        assert!(registry.serves("autoscaling", "v1") && !registry.serves("apps", "v1beta1"));
    }
}
