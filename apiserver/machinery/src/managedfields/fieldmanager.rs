//! The API server's field manager (k8s.io/apimachinery/pkg/util/managedfields/internal, as
//! `NewDefaultFieldManager` stacks it): decoding and encoding of `metadata.managedFields`,
//! manager identifiers, and the managers wrapped around structured-merge-diff, outermost
//! first:
//!
//! 1. version check: an applied configuration must be of the endpoint's group/version/kind;
//! 2. last-applied updater: `kubectl` applying server-side keeps an existing
//!    `kubectl.kubernetes.io/last-applied-configuration` annotation current;
//! 3. last-applied manager: `kubectl` upgrading from client-side apply may take over, without
//!    force, the fields its last-applied configuration set and that still have those values;
//! 4. skip non-applied: an object without managedFields (created before tracking, or reset)
//!    is not tracked by updates; before its first apply, its fields are given to
//!    `before-first-apply`;
//! 5. cap managers: at most 10 Update managers; the oldest are merged into
//!    `ancient-changes` (per API version);
//! 6. build manager info: the identifier of manager, operation, API version and subresource;
//! 7. managedFields updater: the time of each change;
//! 8. strip meta: nobody owns `apiVersion`, `kind`, `metadata` itself, `metadata.name`, ...;
//! 9. structured merge: [`super::updater::Updater`] on the typed objects.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Map as JsonMap, Value, json};

use super::fieldpath::{Path, Set};
use super::schema::{TypeRef, TypeSource};
use super::typed;
use super::updater::{
    ManagedFields, PathConflict, TypedValue, Updater, UpdaterError, VersionConverter, VersionedSet,
};
use super::value;
use super::{Conflict, FieldManagerError};

/// The annotation client-side apply records the applied configuration in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The total size of annotations (keys and values) upstream accepts.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
const MAX_UPDATE_MANAGERS: usize = 10;
const ANCIENT_CHANGES: &str = "ancient-changes";
const BEFORE_FIRST_APPLY: &str = "before-first-apply";
const CURRENT_OPERATION: &str = "current-operation";

/// Decoded managedFields: each manager's fields and the time of its last change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Managed {
    /// Fields by manager identifier.
    pub fields: ManagedFields,
    /// Times (RFC 3339, seconds, UTC) by manager identifier.
    pub times: BTreeMap<String, String>,
}

/// The parts of a manager identifier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManagerId {
    /// The manager name.
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    /// The API version (empty for Apply).
    pub api_version: String,
    /// The subresource.
    pub subresource: String,
}

/// `BuildManagerIdentifier`: the JSON of the entry's manager, operation, apiVersion (not for
/// Apply) and subresource, empty ones omitted, as `encoding/json` writes it.
pub fn build_manager_identifier(
    manager: &str,
    operation: &str,
    api_version: &str,
    subresource: &str,
) -> String {
    let mut out = String::from("{");
    let mut first = true;
    let mut field = |out: &mut String, name: &str, v: &str| {
        if v.is_empty() {
            return;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        out.push_str(name);
        out.push_str("\":");
        go_json_string(out, v);
    };
    field(&mut out, "manager", manager);
    field(&mut out, "operation", operation);
    if operation != "Apply" {
        field(&mut out, "apiVersion", api_version);
    }
    field(&mut out, "subresource", subresource);
    out.push('}');
    out
}

/// Parses a manager identifier.
pub fn parse_manager_identifier(id: &str) -> Option<ManagerId> {
    let v: Value = serde_json::from_str(id).ok()?;
    let s = |name: &str| v.get(name).and_then(Value::as_str).unwrap_or("").to_string();
    Some(ManagerId {
        manager: s("manager"),
        operation: s("operation"),
        api_version: s("apiVersion"),
        subresource: s("subresource"),
    })
}

/// `printManager`: how conflicts name a manager (`"kubectl"`, `"kube-controller-manager" using
/// apps/v1`, `"m" with subresource "status" using v1`).
pub fn print_manager(id: &str) -> String {
    let Some(m) = parse_manager_identifier(id) else {
        return value::go_quote(id);
    };
    let mut out = value::go_quote(&m.manager);
    if !m.subresource.is_empty() {
        out = format!("{out} with subresource {}", value::go_quote(&m.subresource));
    }
    if m.operation == "Update" {
        out = format!("{out} using {}", m.api_version);
    }
    out
}

/// Appends a string as Go's `encoding/json` writes it (HTML-safe).
fn go_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&') => {
                out.push_str(&format!("\\u00{:02x}", c as u32));
            }
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A value as `json.NewEncoder(w).Encode` writes it: compact, keys sorted, HTML-safe, with
/// a trailing newline.
pub fn go_json_encode(v: &Value) -> String {
    let mut out = String::new();
    go_json_value(&mut out, v);
    out.push('\n');
    out
}

fn go_json_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let (Some(i), false) = (n.as_i64(), n.is_f64()) {
                out.push_str(&i.to_string());
            } else if let (Some(u), false) = (n.as_u64(), n.is_f64()) {
                out.push_str(&u.to_string());
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                let abs = f.abs();
                if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
                    let sci = format!("{f:e}");
                    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
                    let exp: i32 = exp.parse().unwrap_or(0);
                    let sign = if exp < 0 { '-' } else { '+' };
                    // encoding/json cleans e-09 up to e-9 but keeps e+21 as it is.
                    let digits = exp.unsigned_abs();
                    if exp < 0 || digits >= 10 {
                        out.push_str(&format!("{mantissa}e{sign}{digits}"));
                    } else {
                        out.push_str(&format!("{mantissa}e{sign}0{digits}"));
                    }
                } else {
                    out.push_str(&format!("{f}"));
                }
            }
        }
        Value::String(s) => go_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(out, k);
                out.push(':');
                go_json_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Normalizes an RFC 3339 time to what `metav1.Time` writes (UTC, seconds).
pub fn normalize_time(text: &str) -> Option<String> {
    let ts: Timestamp = text.parse().ok()?;
    Some(format!("{}Z", ts.strftime("%Y-%m-%dT%H:%M:%S")))
}

fn unix_seconds(time: Option<&String>) -> i64 {
    time.and_then(|t| t.parse::<Timestamp>().ok())
        .map_or(0, |t| t.as_second())
}

fn str_field<'v>(entry: &'v Value, name: &str) -> &'v str {
    entry.get(name).and_then(Value::as_str).unwrap_or("")
}

/// The managedFields list of an object (`None` when absent or not a list).
pub fn managed_fields_of(obj: &Value) -> Option<&Vec<Value>> {
    obj.get("metadata")?.get("managedFields")?.as_array()
}

/// `DecodeManagedFields`: the managers of an object's managedFields, or why they are invalid.
pub fn decode_managed_fields(entries: Option<&Vec<Value>>) -> Result<Managed, String> {
    let mut managed = Managed::default();
    for (i, entry) in entries.into_iter().flatten().enumerate() {
        let operation = str_field(entry, "operation");
        if operation != "Apply" && operation != "Update" {
            return Err("operation must be `Apply` or `Update`".to_string());
        }
        let api_version = str_field(entry, "apiVersion");
        if api_version.is_empty() {
            return Err("apiVersion must not be empty".to_string());
        }
        match str_field(entry, "fieldsType") {
            "FieldsV1" => {}
            "" => return Err(format!("missing fieldsType in managed fields entry {i}")),
            other => {
                return Err(format!(
                    "invalid fieldsType {} in managed fields entry {i}",
                    value::go_quote(other)
                ));
            }
        }
        let manager = build_manager_identifier(
            str_field(entry, "manager"),
            operation,
            api_version,
            str_field(entry, "subresource"),
        );
        let set = match entry.get("fieldsV1") {
            None | Some(Value::Null) => Set::new(),
            Some(fields) => Set::from_value(fields).map_err(|e| {
                format!(
                    "error decoding versioned set from {}: error decoding set: {e}",
                    go_entry(entry)
                )
            })?,
        };
        managed.fields.insert(
            manager.clone(),
            VersionedSet {
                set,
                api_version: api_version.to_string(),
                applied: operation == "Apply",
            },
        );
        match entry.get("time").and_then(Value::as_str).and_then(normalize_time) {
            Some(t) => managed.times.insert(manager, t),
            None => managed.times.remove(&manager),
        };
    }
    Ok(managed)
}

/// Go's `%v` of a ManagedFieldsEntry, roughly.
fn go_entry(entry: &Value) -> String {
    format!(
        "{{{} {} {} {} {} {} {}}}",
        str_field(entry, "manager"),
        str_field(entry, "operation"),
        str_field(entry, "apiVersion"),
        entry.get("time").and_then(Value::as_str).unwrap_or("<nil>"),
        str_field(entry, "fieldsType"),
        entry
            .get("fieldsV1")
            .map_or_else(|| "<nil>".to_string(), Value::to_string),
        str_field(entry, "subresource"),
    )
}

/// `encodeManagedFields`: entries sorted by operation, time, manager, API version and
/// subresource; `None` when there is no manager.
pub fn encode_managed_fields(managed: &Managed) -> Option<Vec<Value>> {
    if managed.fields.is_empty() {
        return None;
    }
    struct Entry {
        operation: String,
        seconds: i64,
        manager: String,
        api_version: String,
        subresource: String,
        value: Value,
    }
    let mut entries: Vec<Entry> = Vec::new();
    for (id, vs) in &managed.fields {
        let m = parse_manager_identifier(id).unwrap_or_default();
        let operation = if vs.applied {
            "Apply".to_string()
        } else {
            m.operation.clone()
        };
        let mut obj = JsonMap::new();
        if !m.manager.is_empty() {
            obj.insert("manager".into(), json!(m.manager));
        }
        if !operation.is_empty() {
            obj.insert("operation".into(), json!(operation));
        }
        if !vs.api_version.is_empty() {
            obj.insert("apiVersion".into(), json!(vs.api_version));
        }
        let time = managed.times.get(id);
        if let Some(t) = time {
            obj.insert("time".into(), json!(t));
        }
        obj.insert("fieldsType".into(), json!("FieldsV1"));
        obj.insert("fieldsV1".into(), vs.set.to_value());
        if !m.subresource.is_empty() {
            obj.insert("subresource".into(), json!(m.subresource));
        }
        entries.push(Entry {
            operation,
            seconds: unix_seconds(time),
            manager: m.manager,
            api_version: vs.api_version.clone(),
            subresource: m.subresource,
            value: Value::Object(obj),
        });
    }
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then(p.seconds.cmp(&q.seconds))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| p.subresource.cmp(&q.subresource))
    });
    Some(entries.into_iter().map(|e| e.value).collect())
}

/// Sets (or, for no manager, removes) an object's managedFields.
pub fn encode_object_managed_fields(obj: &mut Value, managed: &Managed) {
    match encode_managed_fields(managed) {
        Some(entries) => {
            if let Some(map) = obj.as_object_mut() {
                let meta = map.entry("metadata").or_insert_with(|| json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    meta.insert("managedFields".into(), Value::Array(entries));
                }
            }
        }
        None => remove_managed_fields(obj),
    }
}

/// Removes an object's managedFields.
pub fn remove_managed_fields(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

/// `isResetManagedFields`: an empty list, or a single empty entry.
fn is_reset(obj: &Value) -> bool {
    let Some(field) = obj.get("metadata").and_then(|m| m.get("managedFields")) else {
        return false;
    };
    match field.as_array().map(Vec::as_slice) {
        Some([]) => true,
        Some([only]) => only.as_object().is_some_and(|entry| {
            entry.iter().all(|(_, v)| match v {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                _ => false,
            })
        }),
        _ => false,
    }
}

fn annotations_of(obj: &Value) -> Option<&JsonMap<String, Value>> {
    obj.get("metadata")?.get("annotations")?.as_object()
}

fn last_applied_of(obj: &Value) -> Option<&str> {
    annotations_of(obj)?
        .get(LAST_APPLIED_ANNOTATION)?
        .as_str()
        .filter(|s| !s.is_empty())
}

/// `buildLastApplied`: the applied configuration without the annotation, as JSON.
fn build_last_applied(config: &Value) -> String {
    let mut obj = config.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        match meta.get_mut("annotations") {
            Some(Value::Object(annotations)) if annotations.values().all(Value::is_string) => {
                annotations.remove(LAST_APPLIED_ANNOTATION);
            }
            Some(_) => {
                meta.remove("annotations");
            }
            None => {}
        }
    }
    go_json_encode(&obj)
}

/// `SetLastApplied`: sets the annotation, unless annotations would exceed their size limit.
fn set_last_applied(obj: &mut Value, last_applied: String) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    if let Some(annotations) = annotations.as_object_mut() {
        annotations.insert(LAST_APPLIED_ANNOTATION.to_string(), Value::String(last_applied));
        let size: usize = annotations
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if size > TOTAL_ANNOTATION_SIZE_LIMIT {
            annotations.remove(LAST_APPLIED_ANNOTATION);
        }
    }
}

/// The group/version/kind as Go prints it (`apps/v1, Kind=Deployment`, `/v1, Kind=Pod`).
fn gvk_string(api_version: &str, kind: &str) -> String {
    let (group, version) = split_gv(api_version);
    format!("{group}/{version}, Kind={kind}")
}

/// `schema.ParseGroupVersion`; `None` for an invalid one (more than one slash).
fn parse_gv(api_version: &str) -> Option<(&str, &str)> {
    if api_version.is_empty() || api_version == "/" {
        return Some(("", ""));
    }
    match api_version.split('/').count() {
        1 => Some(("", api_version)),
        2 => api_version.split_once('/'),
        _ => None,
    }
}

fn split_gv(api_version: &str) -> (&str, &str) {
    parse_gv(api_version).unwrap_or(("", ""))
}

fn gv_string(api_version: &str) -> String {
    let (group, version) = split_gv(api_version);
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// `objectGVKNN`: `namespace/name; group/version, Kind=kind`.
fn object_gvknn(obj: &Value) -> String {
    let meta = obj.get("metadata");
    let s = |name: &str| {
        meta.and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    format!(
        "{}/{}; {}",
        s("namespace"),
        s("name"),
        gvk_string(str_field(obj, "apiVersion"), str_field(obj, "kind"))
    )
}

fn strip_set() -> Set {
    let paths: Vec<Path> = [
        &["apiVersion"][..],
        &["kind"],
        &["metadata"],
        &["metadata", "name"],
        &["metadata", "namespace"],
        &["metadata", "creationTimestamp"],
        &["metadata", "selfLink"],
        &["metadata", "uid"],
        &["metadata", "clusterName"],
        &["metadata", "generation"],
        &["metadata", "managedFields"],
        &["metadata", "resourceVersion"],
    ]
    .iter()
    .map(|p| Path::fields(p))
    .collect();
    Set::from_paths(&paths)
}

/// The field manager of one resource endpoint (group/version/kind and subresource).
pub(crate) struct Pipeline<'a> {
    pub types: &'a dyn TypeSource,
    pub type_ref: TypeRef,
    pub api_version: String,
    pub kind: String,
    pub subresource: String,
    pub reset_fields: &'a BTreeMap<String, Set>,
    pub converter: &'a dyn VersionConverter,
}

/// An error inside the pipeline: conflicts keep their manager identifiers.
enum PipelineError {
    Conflicts(Vec<PathConflict>),
    Api(FieldManagerError),
}

impl From<FieldManagerError> for PipelineError {
    fn from(e: FieldManagerError) -> Self {
        PipelineError::Api(e)
    }
}

fn internal(message: String) -> PipelineError {
    PipelineError::Api(FieldManagerError::Internal(message))
}

impl Pipeline<'_> {
    fn updater(&self) -> Updater<'_> {
        Updater {
            types: self.types,
            converter: self.converter,
            reset_fields: self.reset_fields,
        }
    }

    fn version(&self) -> String {
        gv_string(&self.api_version)
    }

    /// The object as the type converter sees it.
    fn view(&self, obj: &Value) -> Value {
        self.types.typed_view(obj).unwrap_or_else(|| obj.clone())
    }

    fn typed(&self, obj: &Value, allow_duplicates: bool) -> Result<TypedValue, String> {
        let value = self.view(obj);
        let errs = typed::validate(self.types, &self.type_ref, &value, allow_duplicates);
        if !errs.0.is_empty() {
            return Err(errs.to_string());
        }
        Ok(TypedValue {
            value,
            type_ref: self.type_ref.clone(),
        })
    }

    fn identifier(&self, manager: &str, operation: &str) -> String {
        let manager = if manager.is_empty() { "unknown" } else { manager };
        build_manager_identifier(manager, operation, &self.version(), &self.subresource)
    }

    /// `FieldManager.Update`.
    pub fn update(
        &self,
        live: &Value,
        new: &mut Value,
        manager: &str,
        now: &str,
    ) -> Result<(), FieldManagerError> {
        let managed = self.decode_live_or_new(live, new);
        remove_managed_fields(new);
        // skipNonApplied: objects without managedFields are not tracked by updates, except
        // on create (no uid yet).
        if managed.fields.is_empty() {
            let uid = live
                .get("metadata")
                .and_then(|m| m.get("uid"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if !uid.is_empty() {
                encode_object_managed_fields(new, &managed);
                return Ok(());
            }
        }
        let managed = self.update_chain(live, new, managed, manager, now)?;
        encode_object_managed_fields(new, &managed);
        Ok(())
    }

    fn decode_live_or_new(&self, live: &Value, new: &Value) -> Managed {
        let live_managed = || decode_managed_fields(managed_fields_of(live)).unwrap_or_default();
        if !self.subresource.is_empty() {
            return live_managed();
        }
        if is_reset(new) {
            return Managed::default();
        }
        match decode_managed_fields(managed_fields_of(new)) {
            Ok(managed) if !managed.fields.is_empty() => managed,
            _ => live_managed(),
        }
    }

    /// capManagers → buildManagerInfo → managedFieldsUpdater → stripMeta → structuredMerge,
    /// for an update.
    fn update_chain(
        &self,
        live: &Value,
        new: &Value,
        managed: Managed,
        manager: &str,
        now: &str,
    ) -> Result<Managed, FieldManagerError> {
        let id = self.identifier(manager, "Update");
        let mut managed = self.structured_update(live, new, managed)?;
        self.strip(&mut managed.fields, CURRENT_OPERATION);
        if let Some(vs) = managed.fields.remove(CURRENT_OPERATION) {
            let entry = match managed.fields.remove(&id) {
                Some(previous) => VersionedSet {
                    set: vs.set.union(&previous.set),
                    ..vs
                },
                None => vs,
            };
            managed.fields.insert(id.clone(), entry);
            managed.times.insert(id, now.to_string());
        }
        cap_update_managers(&mut managed);
        Ok(managed)
    }

    fn structured_update(
        &self,
        live: &Value,
        new: &Value,
        managed: Managed,
    ) -> Result<Managed, FieldManagerError> {
        let new_typed = self.typed(new, true).map_err(|e| {
            FieldManagerError::Internal(format!(
                "failed to convert new object ({}) to smd typed: {e}",
                object_gvknn(new)
            ))
        })?;
        let live_typed = self.typed(live, true).map_err(|e| {
            FieldManagerError::Internal(format!(
                "failed to convert live object ({}) to smd typed: {e}",
                object_gvknn(live)
            ))
        })?;
        let fields = self
            .updater()
            .update_object(
                &live_typed,
                &new_typed,
                &self.version(),
                managed.fields,
                CURRENT_OPERATION,
            )
            .map_err(|e| {
                let message = match e {
                    UpdaterError::Other(m) => m,
                    UpdaterError::Conflicts(c) => conflicts_error_text(&c),
                };
                FieldManagerError::Internal(format!(
                    "failed to update ManagedFields ({}): {message}",
                    object_gvknn(new)
                ))
            })?;
        Ok(Managed {
            fields,
            times: managed.times,
        })
    }

    fn strip(&self, fields: &mut ManagedFields, manager: &str) {
        if let Some(vs) = fields.get_mut(manager) {
            vs.set = vs.set.difference(&strip_set());
            if vs.set.is_empty() {
                fields.remove(manager);
            }
        }
    }

    /// `FieldManager.Apply`.
    pub fn apply(
        &self,
        live: Option<&Value>,
        config: &Value,
        manager: &str,
        force: bool,
        now: &str,
    ) -> Result<Value, FieldManagerError> {
        let live = match live {
            Some(live) => live.clone(),
            None => self.types.new_object(&self.api_version, &self.kind),
        };
        let managed = decode_managed_fields(managed_fields_of(&live))
            .map_err(|e| FieldManagerError::Internal(format!("failed to decode managed fields: {e}")))?;
        // versionCheck
        let config_api_version = str_field(config, "apiVersion");
        let config_gvk = match parse_gv(config_api_version) {
            Some((group, version)) => (
                group.to_string(),
                version.to_string(),
                str_field(config, "kind").to_string(),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        let (group, version) = split_gv(&self.api_version);
        if (
            config_gvk.0.as_str(),
            config_gvk.1.as_str(),
            config_gvk.2.as_str(),
        ) != (group, version, self.kind.as_str())
        {
            return Err(FieldManagerError::BadRequest(format!(
                "invalid object type: {}/{}, Kind={}",
                config_gvk.0, config_gvk.1, config_gvk.2
            )));
        }
        let result = match self.apply_last_applied_manager(&live, config, managed, manager, force, now) {
            Ok(result) => result,
            Err(PipelineError::Api(e)) => return Err(e),
            Err(PipelineError::Conflicts(conflicts)) => return Err(conflict_error(&conflicts)),
        };
        let (mut object, managed) = result;
        // lastAppliedUpdater
        if manager == "kubectl" && last_applied_of(&object).is_some() {
            set_last_applied(&mut object, build_last_applied(config));
        }
        encode_object_managed_fields(&mut object, &managed);
        Ok(object)
    }

    fn apply_last_applied_manager(
        &self,
        live: &Value,
        config: &Value,
        managed: Managed,
        manager: &str,
        force: bool,
        now: &str,
    ) -> Result<(Value, Managed), PipelineError> {
        let result = self.apply_skip_non_applied(live, config, managed.clone(), manager, force, now);
        if manager != "kubectl" {
            return result;
        }
        let Err(PipelineError::Conflicts(conflicts)) = &result else {
            return result;
        };
        let Ok(allowed) = self.allowed_conflicts_from_last_applied(live) else {
            return result;
        };
        let remaining: Vec<PathConflict> = conflicts
            .iter()
            .filter(|c| !allowed.has(&c.path.0))
            .cloned()
            .collect();
        if !remaining.is_empty() {
            return Err(PipelineError::Conflicts(remaining));
        }
        self.apply_skip_non_applied(live, config, managed, manager, true, now)
    }

    fn allowed_conflicts_from_last_applied(&self, live: &Value) -> Result<Set, String> {
        let last_applied = last_applied_of(live).ok_or("no last applied annotation")?;
        let live_typed = self
            .typed(live, false)
            .map_err(|e| format!("failed to convert live obj to typed: {e}"))?;
        let last: Value = serde_json::from_str(last_applied)
            .map_err(|e| format!("failed to decode last applied obj: {e} in '{last_applied}'"))?;
        if !last.is_object() {
            return Err("failed to decode last applied obj".to_string());
        }
        if str_field(&last, "apiVersion") != self.version() {
            return Err("expected version of last applied to match live object".to_string());
        }
        let errs = typed::validate(self.types, &self.type_ref, &last, false);
        if !errs.0.is_empty() {
            return Err(format!("failed to convert last applied to typed: {errs}"));
        }
        let set = typed::to_field_set(self.types, &self.type_ref, &last)
            .map_err(|e| format!("failed to create fieldset for last applied object: {e}"))?;
        let comparison = typed::compare(self.types, &self.type_ref, &last, &live_typed.value)
            .map_err(|e| format!("failed to compare last applied object and live object: {e}"))?;
        Ok(set
            .difference(&comparison.modified)
            .difference(&comparison.added)
            .difference(&comparison.removed))
    }

    fn apply_skip_non_applied(
        &self,
        live: &Value,
        config: &Value,
        mut managed: Managed,
        manager: &str,
        force: bool,
        now: &str,
    ) -> Result<(Value, Managed), PipelineError> {
        if managed.fields.is_empty() {
            let empty = self.types.new_object(&self.api_version, &self.kind);
            managed = self
                .update_chain(&empty, live, managed, BEFORE_FIRST_APPLY, now)
                .map_err(|e| internal(format!("failed to create manager for existing fields: {e}")))?;
        }
        self.apply_chain(live, config, managed, manager, force, now)
    }

    /// buildManagerInfo → managedFieldsUpdater → stripMeta → structuredMerge, for an apply.
    fn apply_chain(
        &self,
        live: &Value,
        config: &Value,
        managed: Managed,
        manager: &str,
        force: bool,
        now: &str,
    ) -> Result<(Value, Managed), PipelineError> {
        let id = self.identifier(manager, "Apply");
        let (object, mut managed) = self.structured_apply(live, config, managed, &id, force)?;
        self.strip(&mut managed.fields, &id);
        let object = match object {
            Some(object) => {
                managed.times.insert(id, now.to_string());
                object
            }
            None => {
                let mut object = live.clone();
                remove_managed_fields(&mut object);
                object
            }
        };
        Ok((object, managed))
    }

    fn structured_apply(
        &self,
        live: &Value,
        config: &Value,
        managed: Managed,
        id: &str,
        force: bool,
    ) -> Result<(Option<Value>, Managed), PipelineError> {
        if config
            .get("metadata")
            .and_then(|m| m.get("managedFields"))
            .and_then(Value::as_array)
            .is_some_and(|entries| entries.iter().all(Value::is_object))
        {
            return Err(
                FieldManagerError::BadRequest("metadata.managedFields must be nil".to_string()).into(),
            );
        }
        let errs = typed::validate(self.types, &self.type_ref, config, false);
        if !errs.0.is_empty() {
            return Err(internal(format!(
                "failed to create typed patch object ({}): {errs}",
                object_gvknn(config)
            )));
        }
        let config_typed = TypedValue {
            value: config.clone(),
            type_ref: self.type_ref.clone(),
        };
        let live_typed = self.typed(live, true).map_err(|e| {
            internal(format!(
                "failed to create typed live object ({}): {e}",
                object_gvknn(live)
            ))
        })?;
        let (object, fields) = self
            .updater()
            .apply(
                &live_typed,
                &config_typed,
                &self.version(),
                managed.fields,
                id,
                force,
            )
            .map_err(|e| match e {
                UpdaterError::Conflicts(c) => PipelineError::Conflicts(c),
                UpdaterError::Other(m) => internal(m),
            })?;
        Ok((
            object,
            Managed {
                fields,
                times: managed.times,
            },
        ))
    }
}

/// `capUpdateManagers`: merges the oldest Update managers into `ancient-changes` until at
/// most 10 remain.
pub fn cap_update_managers(managed: &mut Managed) {
    let mut updaters: Vec<String> = managed
        .fields
        .iter()
        .filter(|(_, vs)| !vs.applied)
        .map(|(id, _)| id.clone())
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|a, b| {
        unix_seconds(managed.times.get(a))
            .cmp(&unix_seconds(managed.times.get(b)))
            .then_with(|| a.cmp(b))
    });
    let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
    let mut length = updaters.len();
    for manager in updaters {
        if length <= MAX_UPDATE_MANAGERS {
            break;
        }
        let Some(vs) = managed.fields.get(&manager).cloned() else {
            continue;
        };
        let time = managed.times.get(&manager).cloned();
        let bucket = build_manager_identifier(ANCIENT_CHANGES, "Update", &vs.api_version, "");
        match first_of_version.get(&vs.api_version) {
            Some(first) => {
                if !managed.fields.contains_key(&bucket)
                    && let Some(s) = managed.fields.remove(first)
                {
                    managed.fields.insert(bucket.clone(), s);
                }
                let existing = managed
                    .fields
                    .get(&bucket)
                    .map(|b| b.set.clone())
                    .unwrap_or_default();
                managed.fields.insert(
                    bucket.clone(),
                    VersionedSet {
                        set: vs.set.union(&existing),
                        api_version: vs.api_version.clone(),
                        applied: vs.applied,
                    },
                );
                managed.fields.remove(&manager);
                length -= 1;
                match time {
                    Some(t) => managed.times.insert(bucket, t),
                    None => managed.times.remove(&bucket),
                };
            }
            None => {
                first_of_version.insert(vs.api_version.clone(), manager.clone());
            }
        }
    }
}

fn conflicts_error_text(conflicts: &[PathConflict]) -> String {
    conflicts
        .iter()
        .map(|c| format!("conflict with {}: {}", value::go_quote(&c.manager), c.path))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `NewConflictError`: the 409's message and causes.
fn conflict_error(conflicts: &[PathConflict]) -> FieldManagerError {
    let message = if let [only] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            print_manager(&only.manager),
            only.path
        )
    } else {
        let mut by_manager: BTreeMap<&str, Vec<&Path>> = BTreeMap::new();
        for c in conflicts {
            by_manager.entry(c.manager.as_str()).or_default().push(&c.path);
        }
        let mut lines = Vec::new();
        for (manager, paths) in by_manager {
            lines.push(format!("conflicts with {}:", print_manager(manager)));
            for p in paths {
                lines.push(format!("- {p}"));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let conflicts = conflicts
        .iter()
        .map(|c| {
            let m = parse_manager_identifier(&c.manager).unwrap_or_default();
            Conflict {
                manager: m.manager,
                operation: m.operation,
                api_version: m.api_version,
                subresource: m.subresource,
                manager_display: print_manager(&c.manager),
                path: c.path.to_string(),
            }
        })
        .collect();
    FieldManagerError::Conflicts { message, conflicts }
}
