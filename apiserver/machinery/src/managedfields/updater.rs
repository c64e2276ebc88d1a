//! Ownership bookkeeping (sigs.k8s.io/structured-merge-diff/v6/merge): the `Updater` that
//! records who owns which fields after an update, and merges an applied configuration with
//! conflict detection, force, and removal of the fields an applier stopped applying.
//!
//! Managers are keyed by their identifier (the JSON of manager, operation, apiVersion and
//! subresource, see [`super::fieldmanager`]). Objects at another API version than a
//! manager's are converted with a [`VersionConverter`]; a version that cannot be converted to
//! drops the managers recorded at it, as upstream drops obsolete versions.

use std::collections::BTreeMap;

use serde_json::Value;

use super::fieldpath::{Path, Set};
use super::schema::{TypeRef, TypeSource};
use super::typed::{self, Comparison};

/// The fields one manager owns, at one API version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedSet {
    /// The fields.
    pub set: Set,
    /// The API version the paths are in.
    pub api_version: String,
    /// Whether the manager applied them (else it updated them).
    pub applied: bool,
}

/// Every manager's fields, by manager identifier.
pub type ManagedFields = BTreeMap<String, VersionedSet>;

/// One conflict: a field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathConflict {
    /// The identifier of the manager owning the field.
    pub manager: String,
    /// The field.
    pub path: Path,
}

/// Why an update or apply failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdaterError {
    /// Conflicts with other managers (apply without force).
    Conflicts(Vec<PathConflict>),
    /// Anything else (upstream's plain errors, answered with 500).
    Other(String),
}

/// Converts objects between the versions of a kind.
pub trait VersionConverter: Sync {
    /// Converts `object` to `api_version`, returning it (as upstream's type converter sees
    /// it) and its type; `Ok(None)` when the kind has no such version (managers recorded at
    /// it are dropped). Only called for a version other than the object's.
    fn convert(&self, object: &Value, api_version: &str) -> Result<Option<(Value, TypeRef)>, String>;
}

/// The converter of kinds with one version: other versions do not exist.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoConversion;

impl VersionConverter for NoConversion {
    fn convert(&self, _object: &Value, _api_version: &str) -> Result<Option<(Value, TypeRef)>, String> {
        Ok(None)
    }
}

/// A value with its type, at an API version.
#[derive(Clone, Debug)]
pub struct TypedValue {
    /// The object.
    pub value: Value,
    /// Its type.
    pub type_ref: TypeRef,
}

/// `merge.Updater` with an ignore filter per version (upstream's reset fields).
pub struct Updater<'a> {
    /// Types.
    pub types: &'a dyn TypeSource,
    /// Version conversions.
    pub converter: &'a dyn VersionConverter,
    /// Fields no manager may own, by API version (the strategy's reset fields).
    pub reset_fields: &'a BTreeMap<String, Set>,
}

fn api_version_of(v: &Value) -> &str {
    v.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}

impl Updater<'_> {
    /// `Converter.Convert`: `Ok(None)` for a missing version.
    fn convert(&self, object: &TypedValue, version: &str) -> Result<Option<TypedValue>, String> {
        if api_version_of(&object.value) == version {
            return Ok(Some(object.clone()));
        }
        Ok(self
            .converter
            .convert(&object.value, version)?
            .map(|(value, type_ref)| TypedValue { value, type_ref }))
    }

    fn compare(&self, old: &TypedValue, new: &TypedValue) -> Result<Comparison, String> {
        typed::compare(self.types, &old.type_ref, &old.value, &new.value)
            .map_err(|e| format!("failed to compare objects: {e}"))
    }

    /// `Updater.update`: drops, from the other managers, the fields that changed (conflicts,
    /// refused unless `force`) or were removed. Returns the comparison at `version`.
    fn update(
        &self,
        old: &TypedValue,
        new: &TypedValue,
        version: &str,
        managers: &mut ManagedFields,
        workflow: &str,
        force: bool,
    ) -> Result<Comparison, UpdaterError> {
        let mut compare = self.compare(old, new).map_err(UpdaterError::Other)?;
        if let Some(ignored) = self.reset_fields.get(version) {
            compare.exclude(ignored);
        }
        let mut versions: BTreeMap<String, Comparison> = BTreeMap::new();
        versions.insert(version.to_string(), compare.clone());
        let mut conflicts: BTreeMap<String, Set> = BTreeMap::new();
        let mut removed: BTreeMap<String, Set> = BTreeMap::new();
        let names: Vec<String> = managers.keys().cloned().collect();
        for manager in names {
            if manager == workflow {
                continue;
            }
            let Some(managed) = managers.get(&manager) else {
                continue;
            };
            let at = managed.api_version.clone();
            if !versions.contains_key(&at) {
                let old_v = self
                    .convert(old, &at)
                    .map_err(|e| UpdaterError::Other(format!("failed to convert old object: {e}")))?;
                let Some(old_v) = old_v else {
                    managers.remove(&manager);
                    continue;
                };
                let new_v = self
                    .convert(new, &at)
                    .map_err(|e| UpdaterError::Other(format!("failed to convert new object: {e}")))?;
                let Some(new_v) = new_v else {
                    managers.remove(&manager);
                    continue;
                };
                let mut c = self.compare(&old_v, &new_v).map_err(UpdaterError::Other)?;
                if let Some(ignored) = self.reset_fields.get(&at) {
                    c.exclude(ignored);
                }
                versions.insert(at.clone(), c);
            }
            let Some(c) = versions.get(&at) else {
                continue;
            };
            let Some(managed) = managers.get(&manager) else {
                continue;
            };
            let conflict = managed.set.intersection(&c.modified.union(&c.added));
            if !conflict.is_empty() {
                conflicts.insert(manager.clone(), conflict);
            }
            if !c.removed.is_empty() {
                removed.insert(manager.clone(), c.removed.clone());
            }
        }
        if !force && !conflicts.is_empty() {
            let mut out = Vec::new();
            for (manager, set) in &conflicts {
                for path in set.paths() {
                    out.push(PathConflict {
                        manager: manager.clone(),
                        path,
                    });
                }
            }
            return Err(UpdaterError::Conflicts(out));
        }
        for (manager, set) in conflicts.iter().chain(removed.iter()) {
            if let Some(managed) = managers.get_mut(manager) {
                managed.set = managed.set.difference(set);
            }
        }
        managers.retain(|_, m| !m.set.is_empty());
        Ok(compare)
    }

    /// `reconcileManagedFieldsWithSchemaChanges`.
    fn reconcile(&self, live: &TypedValue, managers: ManagedFields) -> Result<ManagedFields, String> {
        let mut result = ManagedFields::new();
        for (manager, managed) in managers {
            let Some(tv) = self.convert(live, &managed.api_version)? else {
                continue;
            };
            match typed::reconcile_field_set(self.types, &tv.type_ref, &managed.set)? {
                Some(set) => {
                    result.insert(manager, VersionedSet { set, ..managed });
                }
                None => {
                    result.insert(manager, managed);
                }
            }
        }
        Ok(result)
    }

    /// `Updater.Update`: `manager` (an Update manager) now owns what changed from `live` to
    /// `new`, and nobody owns what it removed.
    pub fn update_object(
        &self,
        live: &TypedValue,
        new: &TypedValue,
        version: &str,
        managers: ManagedFields,
        manager: &str,
    ) -> Result<ManagedFields, UpdaterError> {
        let mut managers = self.reconcile(live, managers).map_err(UpdaterError::Other)?;
        let compare = self.update(live, new, version, &mut managers, manager, true)?;
        let previous = managers.get(manager).map(|m| m.set.clone()).unwrap_or_default();
        let mut set = previous
            .difference(&compare.removed)
            .union(&compare.modified)
            .union(&compare.added);
        if let Some(ignored) = self.reset_fields.get(version) {
            set = set.recursive_difference(ignored);
        }
        if set.is_empty() {
            managers.remove(manager);
        } else {
            managers.insert(
                manager.to_string(),
                VersionedSet {
                    set,
                    api_version: version.to_string(),
                    applied: false,
                },
            );
        }
        Ok(managers)
    }

    /// `Updater.Apply`: merges `config` into `live`, gives `manager` the fields of `config`,
    /// removes what it owned before and no longer applies (unless someone else owns it), and
    /// refuses conflicts unless `force`. The new object is `None` when nothing changed.
    pub fn apply(
        &self,
        live: &TypedValue,
        config: &TypedValue,
        version: &str,
        managers: ManagedFields,
        manager: &str,
        force: bool,
    ) -> Result<(Option<Value>, ManagedFields), UpdaterError> {
        let mut managers = self.reconcile(live, managers).map_err(UpdaterError::Other)?;
        let merged = typed::merge(self.types, &live.type_ref, &live.value, &config.value)
            .map_err(|e| UpdaterError::Other(format!("failed to merge config: {e}")))?;
        let last = managers.get(manager).cloned();
        let mut set = typed::to_field_set(self.types, &config.type_ref, &config.value)
            .map_err(|e| UpdaterError::Other(format!("failed to get field set: {e}")))?;
        if let Some(ignored) = self.reset_fields.get(version) {
            set = set.recursive_difference(ignored);
        }
        managers.insert(
            manager.to_string(),
            VersionedSet {
                set,
                api_version: version.to_string(),
                applied: true,
            },
        );
        let merged = TypedValue {
            value: merged,
            type_ref: live.type_ref.clone(),
        };
        let new = self
            .prune(merged, &managers, manager, last.as_ref())
            .map_err(|e| UpdaterError::Other(format!("failed to prune fields: {e}")))?;
        self.update(live, &new, version, &mut managers, manager, force)?;
        if super::value::equals(&live.value, &new.value) {
            return Ok((None, managers));
        }
        Ok((Some(new.value), managers))
    }

    fn to_set(&self, tv: &TypedValue) -> Result<Set, String> {
        typed::to_field_set(self.types, &tv.type_ref, &tv.value).map_err(|e| e.to_string())
    }

    fn ensure(&self, tv: &TypedValue, set: &Set) -> Set {
        typed::ensure_named_fields_are_members(self.types, &tv.type_ref, set)
    }

    fn remove(&self, tv: &TypedValue, set: &Set) -> TypedValue {
        TypedValue {
            value: typed::remove_items(self.types, &tv.type_ref, &tv.value, set),
            type_ref: tv.type_ref.clone(),
        }
    }

    /// `Updater.prune`: removes the fields `manager` applied last time and no longer applies,
    /// unless another manager owns them.
    fn prune(
        &self,
        merged: TypedValue,
        managers: &ManagedFields,
        manager: &str,
        last: Option<&VersionedSet>,
    ) -> Result<TypedValue, String> {
        let Some(last) = last.filter(|l| !l.set.is_empty()) else {
            return Ok(merged);
        };
        let version = last.api_version.as_str();
        let Some(converted) = self
            .convert(&merged, version)
            .map_err(|e| format!("failed to convert merged object to last applied version: {e}"))?
        else {
            return Ok(merged);
        };
        let pruned = self.remove(&converted, &self.ensure(&converted, &last.set));
        let pruned = self
            .add_back_owned_items(&converted, pruned, version, managers)
            .map_err(|e| format!("failed add back owned items: {e}"))?;
        let pruned = self
            .add_back_dangling_items(&converted, &pruned, last)
            .map_err(|e| format!("failed add back dangling items: {e}"))?;
        let target = managers.get(manager).map_or(version, |m| m.api_version.as_str());
        Ok(self.convert(&pruned, target)?.unwrap_or(pruned))
    }

    fn add_back_owned_items(
        &self,
        merged: &TypedValue,
        pruned: TypedValue,
        pruned_version: &str,
        managers: &ManagedFields,
    ) -> Result<TypedValue, String> {
        let mut at_version: BTreeMap<&str, Set> = BTreeMap::new();
        for m in managers.values() {
            let entry = at_version.entry(m.api_version.as_str()).or_default();
            *entry = entry.union(&m.set);
        }
        let mut merged = merged.clone();
        let mut pruned = pruned;
        let mut order: Vec<&str> = Vec::new();
        if at_version.contains_key(pruned_version) {
            order.push(pruned_version);
        }
        order.extend(at_version.keys().copied().filter(|v| *v != pruned_version));
        for version in order {
            let Some(managed) = at_version.get(version) else {
                continue;
            };
            let Some(m) = self
                .convert(&merged, version)
                .map_err(|e| format!("failed to convert merged object at version {version}: {e}"))?
            else {
                continue;
            };
            let Some(p) = self
                .convert(&pruned, version)
                .map_err(|e| format!("failed to convert pruned object at version {version}: {e}"))?
            else {
                continue;
            };
            let merged_set = self.to_set(&m).map_err(|e| {
                format!("failed to create field set from merged object at version {version}: {e}")
            })?;
            let pruned_set = self.to_set(&p).map_err(|e| {
                format!("failed to create field set from pruned object at version {version}: {e}")
            })?;
            let keep = self.ensure(&m, &pruned_set).union(&self.ensure(&m, managed));
            pruned = self.remove(&m, &self.ensure(&m, &merged_set).difference(&keep));
            merged = m;
        }
        Ok(pruned)
    }

    fn add_back_dangling_items(
        &self,
        merged: &TypedValue,
        pruned: &TypedValue,
        last: &VersionedSet,
    ) -> Result<TypedValue, String> {
        let Some(converted) = self
            .convert(pruned, &last.api_version)
            .map_err(|e| format!("failed to convert pruned object to last applied version: {e}"))?
        else {
            return Ok(merged.clone());
        };
        let pruned_set = self.to_set(&converted).map_err(|e| {
            format!("failed to create field set from pruned object in last applied version: {e}")
        })?;
        let merged_set = self.to_set(merged).map_err(|e| {
            format!("failed to create field set from merged object in last applied version: {e}")
        })?;
        let pruned_set = self.ensure(merged, &pruned_set);
        let merged_set = self.ensure(merged, &merged_set);
        let last = self.ensure(merged, &last.set);
        Ok(self.remove(merged, &merged_set.difference(&pruned_set).intersection(&last)))
    }
}
