//! Server-side apply and `metadata.managedFields`, as kube-apiserver v1.35 maintains them
//! (k8s.io/apiserver's fieldmanager, k8s.io/apimachinery's `util/managedfields` and
//! sigs.k8s.io/structured-merge-diff v6.3.0). Pure: no I/O, no clock (callers pass the time).
//!
//! A [`FieldManager`] serves one endpoint (group/version/kind, subresource):
//!
//! - [`FieldManager::update`] (and [`FieldManager::update_no_errors`], what the handlers
//!   call) recomputes the managedFields of an object after a create, update, patch or
//!   subresource update: the writing manager owns what it changed; client-sent managedFields
//!   are kept when they decode (and reset by an empty list), ignored otherwise;
//! - [`FieldManager::apply`] merges an applied configuration into the live object (or a new
//!   one), with ownership, conflicts (`force` takes them over), removal of the fields the
//!   manager stopped applying, kubectl's last-applied-configuration upgrade path and
//!   annotation upkeep.
//!
//! Types come from a [`schema::TypeSource`]: [`builtin::BuiltinTypes`] for the built-in
//! kinds (upstream's OpenAPI v3 definitions, objects seen through the Go types), and
//! [`openapi::Types::for_custom_resource`] for a CRD's structural schema. FieldsV1 is written
//! byte for byte as upstream writes it by [`fieldpath::Set::to_json`]; a `serde_json::Value`
//! keeps no key order, so the order survives only where the bytes are kept.
//!
//! # What the caller does around it (upstream's order)
//!
//! Create: decode and default the request object, then `update_no_errors(None, ...)`, then
//! mutating admission (managedFields invalid after it are restored, see
//! [`validate_managed_fields`]), then the strategy's preparation and validation, then store.
//! Update and non-apply patch: apply the patch and default, `update_no_errors(Some(live),
//! ...)`, admission, preparation (`PrepareForUpdate`), [`ignore_managed_fields_timestamps`],
//! validation, store. Apply: `apply(live, config, ...)` (the configuration as parsed from the
//! YAML or JSON body, not defaulted), then default the returned object (upstream defaults the
//! merged object inside the field manager), then admission, preparation, timestamps,
//! validation and store; managedFields are not recomputed after defaulting.

pub mod builtin;
pub mod csaupgrade;
pub mod fieldmanager;
pub mod fieldpath;
pub mod openapi;
pub mod schema;
pub mod typed;
pub mod updater;
pub mod value;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use thiserror::Error;

use self::fieldmanager::{Pipeline, normalize_time};
use self::fieldpath::{Path, Set};
use self::schema::{TypeRef, TypeSource};
use self::updater::{NoConversion, VersionConverter};

pub use self::fieldmanager::LAST_APPLIED_ANNOTATION;

/// A conflict of an apply: a field another manager owns with another value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The manager owning the field.
    pub manager: String,
    /// Its operation (`Apply` or `Update`).
    pub operation: String,
    /// Its API version (Update managers only).
    pub api_version: String,
    /// Its subresource.
    pub subresource: String,
    /// How upstream names it (`"kubectl"`, `"m" using apps/v1`, `"m" with subresource "status"
    /// using v1`).
    pub manager_display: String,
    /// The field, as upstream prints paths (`.spec.replicas`, `.spec.ports[port=80,protocol="TCP"]`).
    pub path: String,
}

impl Conflict {
    /// The message of the `FieldManagerConflict` status cause.
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager_display)
    }
}

/// Why the field manager refused a request.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FieldManagerError {
    /// Apply conflicts: 409, reason `Conflict`, one cause of type `FieldManagerConflict` per
    /// conflict (see [`FieldManagerError::status`]).
    #[error("{message}")]
    Conflicts {
        /// `Apply failed with N conflict(s): ...`.
        message: String,
        /// The conflicts, in upstream's order.
        conflicts: Vec<Conflict>,
    },
    /// 400 `BadRequest`: an applied configuration of another kind or version, or with
    /// managedFields.
    #[error("{0}")]
    BadRequest(String),
    /// What upstream answers as a plain error, 500 without a reason: an applied configuration
    /// that does not fit the schema (`failed to create typed patch object (...): ...`), or
    /// live managedFields that do not decode.
    #[error("{0}")]
    Internal(String),
}

impl FieldManagerError {
    /// The HTTP status code upstream answers with.
    pub fn code(&self) -> u16 {
        match self {
            FieldManagerError::Conflicts { .. } => 409,
            FieldManagerError::BadRequest(_) => 400,
            FieldManagerError::Internal(_) => 500,
        }
    }

    /// The `metav1.Status` upstream answers with.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "code": self.code(),
        });
        match self {
            FieldManagerError::Conflicts { conflicts, .. } => {
                status["reason"] = json!("Conflict");
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|c| json!({"reason": "FieldManagerConflict", "message": c.cause_message(), "field": c.path}))
                    .collect();
                status["details"] = json!({"causes": causes});
            }
            FieldManagerError::BadRequest(_) => status["reason"] = json!("BadRequest"),
            FieldManagerError::Internal(_) => {}
        }
        status
    }
}

/// The field manager of one endpoint: a group/version/kind, its type, and a subresource.
pub struct FieldManager<'a> {
    types: &'a dyn TypeSource,
    type_ref: TypeRef,
    api_version: String,
    kind: String,
    subresource: String,
    reset_fields: BTreeMap<String, Set>,
    converter: &'a dyn VersionConverter,
}

impl std::fmt::Debug for FieldManager<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldManager")
            .field("type_ref", &self.type_ref)
            .field("api_version", &self.api_version)
            .field("kind", &self.kind)
            .field("subresource", &self.subresource)
            .field("reset_fields", &self.reset_fields)
            .finish()
    }
}

static NO_CONVERSION: NoConversion = NoConversion;

impl<'a> FieldManager<'a> {
    /// The field manager of objects of `api_version`/`kind`, of type `type_name` in `types`.
    pub fn new(
        types: &'a dyn TypeSource,
        type_name: &str,
        api_version: &str,
        kind: &str,
    ) -> FieldManager<'a> {
        FieldManager {
            types,
            type_ref: TypeRef::named(type_name),
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            subresource: String::new(),
            reset_fields: BTreeMap::new(),
            converter: &NO_CONVERSION,
        }
    }

    /// The field manager of a built-in kind (`None` if the kind is not built in).
    pub fn builtin(api_version: &str, kind: &str) -> Option<FieldManager<'static>> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let type_name = crate::schema::Schema::builtin().kind_definition(group, version, kind)?;
        let types = builtin::BuiltinTypes::get();
        types.named(type_name)?;
        let mut manager = FieldManager::new(types, type_name, api_version, kind);
        manager.converter = &builtin::BuiltinConverter;
        Some(manager)
    }

    /// For a subresource (`status`, `scale`, ...): client-sent managedFields are ignored.
    pub fn with_subresource(mut self, subresource: &str) -> Self {
        self.subresource = subresource.to_string();
        self
    }

    /// Fields nobody may own at `api_version` (the strategy's `GetResetFields`: `status` for
    /// a main resource, `spec` and some metadata for its status), as field-name paths.
    pub fn with_reset_fields(mut self, api_version: &str, paths: &[&[&str]]) -> Self {
        let paths: Vec<Path> = paths.iter().map(|p| Path::fields(p)).collect();
        let entry = self.reset_fields.entry(api_version.to_string()).or_default();
        *entry = entry.union(&Set::from_paths(&paths));
        self
    }

    /// Conversions to the kind's other versions (managers recorded at a version that
    /// cannot be converted to are dropped).
    pub fn with_converter(mut self, converter: &'a dyn VersionConverter) -> Self {
        self.converter = converter;
        self
    }

    fn pipeline(&self) -> Pipeline<'_> {
        Pipeline {
            types: self.types,
            type_ref: self.type_ref.clone(),
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            subresource: self.subresource.clone(),
            reset_fields: &self.reset_fields,
            converter: self.converter,
        }
    }

    /// After a non-apply write by `manager` (`fieldManager` or the user agent's prefix; empty
    /// is `unknown`): recomputes `new`'s managedFields from `old` (`None` on create), as
    /// upstream's `FieldManager.Update`. `now` is RFC 3339.
    pub fn update(
        &self,
        old: Option<&Value>,
        new: &mut Value,
        manager: &str,
        now: &str,
    ) -> Result<(), FieldManagerError> {
        let now = normalize_time(now).unwrap_or_else(|| now.to_string());
        let fresh;
        let live = match old {
            Some(old) => old,
            None => {
                fresh = self.types.new_object(&self.api_version, &self.kind);
                &fresh
            }
        };
        self.pipeline().update(live, new, manager, &now)
    }

    /// [`FieldManager::update`] as the handlers call it (`UpdateNoErrors`): on an internal
    /// failure, `new` is left without managedFields (the update changes nothing else of
    /// `new` before it can fail).
    pub fn update_no_errors(&self, old: Option<&Value>, new: &mut Value, manager: &str, now: &str) {
        if self.update(old, new, manager, now).is_err() {
            fieldmanager::remove_managed_fields(new);
        }
    }

    /// Server-side apply of `config` by `manager` onto `live` (`None`: the object does not
    /// exist and apply creates it). Returns the object to default, admit, validate and store,
    /// with its managedFields; when nothing but managedFields changes, that is `live` itself
    /// with new managedFields.
    pub fn apply(
        &self,
        live: Option<&Value>,
        config: &Value,
        manager: &str,
        force: bool,
        now: &str,
    ) -> Result<Value, FieldManagerError> {
        let now = normalize_time(now).unwrap_or_else(|| now.to_string());
        self.pipeline().apply(live, config, manager, force, &now)
    }
}

/// `ValidateManagedFields`: why managedFields do not decode (what the managedFields
/// admission wrapper checks after mutating admission, restoring the previous ones and warning
/// with [`INVALID_MANAGED_FIELDS_AFTER_ADMISSION`]).
pub fn validate_managed_fields(object: &Value) -> Result<(), String> {
    fieldmanager::decode_managed_fields(fieldmanager::managed_fields_of(object)).map(|_| ())
}

/// The warning when mutating admission left managedFields invalid (`%v` is the error).
pub const INVALID_MANAGED_FIELDS_AFTER_ADMISSION: &str = ".metadata.managedFields was in an invalid state after admission; this could be caused by an outdated mutating admission controller; please fix your requests: %v";

/// `IgnoreManagedFieldsTimestampsTransformer` (the generic store, after `PrepareForUpdate`):
/// when an update changes nothing but managedFields times, the old times are kept, so that
/// the update is a no-op.
pub fn ignore_managed_fields_timestamps(new: &mut Value, old: &Value) {
    let (Some(new_fields), Some(old_fields)) = (
        fieldmanager::managed_fields_of(new),
        fieldmanager::managed_fields_of(old),
    ) else {
        return;
    };
    if new_fields.len() != old_fields.len() || new_fields.is_empty() {
        return;
    }
    let time = |e: &Value| e.get("time").cloned();
    if new_fields.iter().zip(old_fields).all(|(n, o)| time(n) == time(o)) {
        return;
    }
    let without_time = |e: &Value| {
        let mut e = e.clone();
        if let Some(map) = e.as_object_mut() {
            map.remove("time");
        }
        e
    };
    if !new_fields
        .iter()
        .zip(old_fields)
        .all(|(n, o)| without_time(n) == without_time(o))
    {
        return;
    }
    let strip = |obj: &Value| {
        let mut obj = obj.clone();
        fieldmanager::remove_managed_fields(&mut obj);
        obj
    };
    if strip(new) != strip(old) {
        return;
    }
    let old_times: Vec<Option<Value>> = old_fields.iter().map(time).collect();
    if let Some(entries) = new
        .get_mut("metadata")
        .and_then(|m| m.get_mut("managedFields"))
        .and_then(Value::as_array_mut)
    {
        for (entry, old_time) in entries.iter_mut().zip(old_times) {
            if let Some(map) = entry.as_object_mut() {
                match old_time {
                    Some(t) => map.insert("time".into(), t),
                    None => map.remove("time"),
                };
            }
        }
    }
}
