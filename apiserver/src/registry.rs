//! The registry: every resource the server serves, how it is stored and how its objects
//! behave. Resources are registered here from tables, never routed by hand.
//!
//! Built-in resources come from the generated discovery tables of `rudder-machinery` and use
//! the typed strategies of their kinds. Two GA resources are served in a version or group
//! other than the one they are stored in: autoscaling/v1 HorizontalPodAutoscalers (stored as
//! v2) and events.k8s.io/v1 Events (stored as core/v1 Events); their objects are converted on
//! the way in and out.
//!
//! Custom resources are added and removed at run time (see [`crate::crd`]): the served set is
//! an immutable [`Registry`] snapshot behind [`Registries`], replaced as a whole on every
//! change, so a request reads one consistent snapshot without holding a lock.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use rudder_machinery::field::ErrorList;
use rudder_machinery::resources::{GROUPS, RESOURCES, ResourceInfo};
use rudder_machinery::strategy::{DeletePlan, KindOps, PipelineError, RequestUser, UpdateTarget};
use serde_json::Value;

use crate::crd::CustomStrategy;
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
    /// A custom resource version over objects stored in the CRD's storage version: only
    /// `apiVersion` changes (conversion strategy `None`).
    CustomNone,
}

/// The strategy of a stored resource: a built-in kind's typed operations, or a custom
/// resource version's schema-driven strategy. The store calls these and nothing else.
#[derive(Clone, Debug)]
pub enum Ops {
    /// A built-in kind.
    Kind(KindOps),
    /// A custom resource version.
    Custom(Arc<CustomStrategy>),
}

impl Ops {
    /// Decode, default, prepare for create (as `user`), validate, encode.
    pub fn create_by(&self, object: Value, user: &RequestUser) -> Result<Value, PipelineError> {
        match self {
            Ops::Kind(ops) => (ops.create_by)(object, user),
            Ops::Custom(custom) => custom.create(object),
        }
    }

    /// Decode new and old, default new, prepare for the update, validate it, encode.
    pub fn update(&self, object: Value, old: &Value, target: UpdateTarget) -> Result<Value, PipelineError> {
        match self {
            Ops::Kind(ops) => (ops.update)(object, old, target),
            Ops::Custom(custom) => custom.update(object, old, target),
        }
    }

    /// Decode, default, encode: the object as the server would store it.
    pub fn normalize(&self, object: Value) -> Result<Value, PipelineError> {
        match self {
            Ops::Kind(ops) => (ops.normalize)(object),
            Ops::Custom(custom) => custom.normalize(object),
        }
    }

    /// The kind's deletion plan and the object to write.
    pub fn before_delete(
        &self,
        object: Value,
        requested: Option<i64>,
    ) -> Result<(DeletePlan, Value), PipelineError> {
        match self {
            Ops::Kind(ops) => (ops.before_delete)(object, requested),
            Ops::Custom(_) => Ok((DeletePlan::Now, object)),
        }
    }

    /// Values of the kind-specific selectable fields.
    pub fn selectable_fields(&self, object: &Value) -> Vec<(String, String)> {
        match self {
            Ops::Kind(ops) => (ops.selectable_fields)(object)
                .into_iter()
                .map(|(field, value)| (field.to_owned(), value))
                .collect(),
            Ops::Custom(custom) => custom.selectable_fields(object),
        }
    }

    /// Names of the kind-specific selectable fields.
    pub fn supported_fields(&self) -> Vec<String> {
        match self {
            Ops::Kind(ops) => ops.supported_fields.iter().map(|f| (*f).to_owned()).collect(),
            Ops::Custom(custom) => custom.selectable_field_names(),
        }
    }

    /// Warnings for an object about to be created.
    pub fn warnings(&self, object: &Value) -> Vec<String> {
        match self {
            Ops::Kind(ops) => (ops.warnings)(object),
            Ops::Custom(_) => Vec::new(),
        }
    }

    /// Warnings for an object updated through the main resource.
    pub fn warnings_on_update(&self, object: &Value) -> Vec<String> {
        match self {
            Ops::Kind(ops) => (ops.warnings_on_update)(object),
            Ops::Custom(_) => Vec::new(),
        }
    }

    /// Whether an update of a missing object creates it.
    pub fn allow_create_on_update(&self) -> bool {
        match self {
            Ops::Kind(ops) => ops.allow_create_on_update,
            Ops::Custom(_) => false,
        }
    }

    /// Whether an update without a resourceVersion is allowed.
    pub fn allow_unconditional_update(&self) -> bool {
        match self {
            Ops::Kind(ops) => ops.allow_unconditional_update,
            Ops::Custom(_) => true,
        }
    }

    /// The custom resource strategy, for custom resources.
    pub fn custom(&self) -> Option<&Arc<CustomStrategy>> {
        match self {
            Ops::Kind(_) => None,
            Ops::Custom(custom) => Some(custom),
        }
    }
}

/// Validation errors as a pipeline failure, or the value.
pub fn invalid_or(errors: ErrorList, value: Value) -> Result<Value, PipelineError> {
    if errors.is_empty() {
        Ok(value)
    } else {
        Err(PipelineError::Invalid(errors))
    }
}

/// What backs a resource.
#[derive(Clone, Debug)]
pub enum Backing {
    /// Objects kept in storage, with the kind's strategy.
    Stored(Ops),
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
            Backing::Stored(Ops::Kind(rudder_machinery::kinds::ops(
                info.group,
                info.version,
                info.kind,
            )?))
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

    /// The custom resource strategy, for custom resources.
    pub fn custom(&self) -> Option<&Arc<CustomStrategy>> {
        self.ops().and_then(Ops::custom)
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
    pub fn ops(&self) -> Option<&Ops> {
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

/// Every served resource: one immutable snapshot.
#[derive(Debug, Clone)]
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

    /// This registry with the custom resources added (each CRD's served versions), their
    /// groups after the built-in ones in name order, each group's versions in upstream's
    /// version priority order (`v1` > `v1beta1` > `v1alpha1` > others alphabetically).
    fn with_custom<'a>(&self, custom: impl Iterator<Item = &'a Arc<Resource>>) -> Registry {
        let mut registry = self.clone();
        let mut versions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for resource in custom {
            if registry
                .group(&resource.group)
                .is_some_and(|g| GROUPS.iter().any(|b| b.name == g.name))
            {
                // A CRD may not serve a built-in group.
                continue;
            }
            let group_versions = versions.entry(resource.group.clone()).or_default();
            if !group_versions.contains(&resource.version) {
                group_versions.push(resource.version.clone());
            }
            registry.resources.push(resource.clone());
        }
        for (name, mut group_versions) in versions {
            group_versions.sort_by(|a, b| compare_kube_aware_versions(a, b));
            registry.groups.push(Group {
                name,
                versions: group_versions,
            });
        }
        registry
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

    /// The served versions of the CRD named `crd`.
    pub fn resources_of_crd<'a>(&'a self, crd: &'a str) -> impl Iterator<Item = Arc<Resource>> + 'a {
        self.resources
            .iter()
            .filter(move |r| r.custom().is_some_and(|c| c.crd_name == crd))
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

/// Upstream's `version.CompareKubeAwareVersionStrings` as a sort order: GA before beta
/// before alpha, higher numbers first, then versions that do not look like Kubernetes
/// versions in name order.
pub fn compare_kube_aware_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let major: u64 = digits.parse().ok().filter(|m| *m > 0)?;
        let tail = &rest[digits.len()..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (level, number) = if let Some(n) = tail.strip_prefix("beta") {
            (1, n)
        } else if let Some(n) = tail.strip_prefix("alpha") {
            (0, n)
        } else {
            return None;
        };
        let minor: u64 = number
            .parse()
            .ok()
            .filter(|m| *m > 0 && !number.starts_with('0'))?;
        Some((major, level, minor))
    }
    match (parse(a), parse(b)) {
        (Some((ma, la, na)), Some((mb, lb, nb))) => lb.cmp(&la).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// The served set over time: the built-in resources plus the served versions of every
/// established CRD. Reads take the current snapshot (an `Arc` clone under a read lock held
/// for no longer than that); changes rebuild the snapshot and swap it in.
#[derive(Debug)]
pub struct Registries {
    builtin: Registry,
    current: RwLock<Arc<Registry>>,
    custom: std::sync::Mutex<BTreeMap<String, Vec<Arc<Resource>>>>,
}

impl Registries {
    /// The built-in resources only.
    pub fn builtin() -> Registries {
        let builtin = Registry::builtin();
        Registries {
            current: RwLock::new(Arc::new(builtin.clone())),
            builtin,
            custom: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// The current snapshot.
    pub fn current(&self) -> Arc<Registry> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Serves `resources` for the CRD named `crd` (replacing what it served before); an
    /// empty list removes it. Returns whether the served set changed.
    pub fn set_custom(&self, crd: &str, resources: Vec<Resource>) -> bool {
        let mut custom = match self.custom.lock() {
            Ok(custom) => custom,
            Err(poisoned) => poisoned.into_inner(),
        };
        let unchanged = match custom.get(crd) {
            Some(existing) => {
                existing.len() == resources.len()
                    && existing.iter().zip(&resources).all(|(a, b)| same_resource(a, b))
            }
            None => resources.is_empty(),
        };
        if unchanged {
            return false;
        }
        if resources.is_empty() {
            custom.remove(crd);
        } else {
            custom.insert(crd.to_owned(), resources.into_iter().map(Arc::new).collect());
        }
        let next = Arc::new(self.builtin.with_custom(custom.values().flatten()));
        match self.current.write() {
            Ok(mut current) => *current = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
        true
    }

    /// The names of the CRDs served now.
    pub fn custom_names(&self) -> Vec<String> {
        match self.custom.lock() {
            Ok(custom) => custom.keys().cloned().collect(),
            Err(poisoned) => poisoned.into_inner().keys().cloned().collect(),
        }
    }
}

/// Two registrations of a custom resource serve the same thing.
fn same_resource(a: &Resource, b: &Resource) -> bool {
    a.group == b.group
        && a.version == b.version
        && a.resource == b.resource
        && a.kind == b.kind
        && a.singular == b.singular
        && a.namespaced == b.namespaced
        && a.verbs == b.verbs
        && a.short_names == b.short_names
        && a.categories == b.categories
        && a.storage_version_hash == b.storage_version_hash
        && a.subresources == b.subresources
        && a.storage == b.storage
        && match (a.custom(), b.custom()) {
            (Some(x), Some(y)) => x.generation_key() == y.generation_key(),
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_aware_version_order() {
        let mut versions = vec!["v1alpha1", "foo", "v2", "v1beta2", "v1", "v1beta1", "v10", "bar"];
        versions.sort_by(|a, b| compare_kube_aware_versions(a, b));
        assert_eq!(
            versions,
            ["v10", "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "bar", "foo"]
        );
    }

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
