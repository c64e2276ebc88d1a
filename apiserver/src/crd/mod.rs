//! Serving custom resources: the served resources of a CustomResourceDefinition (names,
//! scope, versions, subresources, discovery facts) and the strategy of their objects
//! (upstream's apiextensions-apiserver `customresource` registry: type checks, defaulting,
//! pruning, schema validation, status and generation rules, scale paths, printer columns,
//! selectable fields, deprecation warnings).
//!
//! Schema semantics (defaulting, pruning, validation, CEL) belong to
//! [`rudder_machinery::crd`]; this module only calls them. The CRD controllers that decide
//! what is served are in [`controller`].

pub mod controller;
pub mod jsonpath;
pub mod openapi;

use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionVersion,
    CustomResourceSubresourceScale,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rudder_machinery::crd::Schema;
use rudder_machinery::field::{ErrorList, FieldError, Path};
use rudder_machinery::managedfields::openapi::Types;
use rudder_machinery::strategy::{PipelineError, UpdateTarget};
use serde_json::{Map, Value};

use crate::registry::{Backing, Conversion, Ops, Resource, StorageLayout, Subresource, invalid_or};

/// The finalizer that makes deleting a CRD delete its custom resources first.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// The verbs of every custom resource.
const VERBS: [&str; 8] = [
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];

/// The strategy of one served version of a CRD.
pub struct CustomStrategy {
    /// The CRD's name (`widgets.example.com`).
    pub crd_name: String,
    /// The group.
    pub group: String,
    /// The served version.
    pub version: String,
    /// The version objects are stored in.
    pub storage_version: String,
    /// The kind.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// The version's structural schema, if it has a usable one.
    pub schema: Option<Schema>,
    /// `spec.preserveUnknownFields`: nothing is pruned.
    pub preserve_unknown_fields: bool,
    /// Whether the status subresource is enabled.
    pub status: bool,
    /// The scale subresource's paths, if enabled.
    pub scale: Option<CustomResourceSubresourceScale>,
    /// The printer columns (upstream's default `Age` column when none are given).
    pub columns: Vec<CustomResourceColumnDefinition>,
    /// The JSONPaths of the selectable fields (`.spec.color`).
    pub selectable_fields: Vec<String>,
    /// The warning every request to a deprecated version gets.
    pub deprecation_warning: Option<String>,
    /// The types of the field manager, from the schema.
    pub types: Option<Types>,
    /// Whether the CRD is being deleted (creates are refused).
    pub terminating: bool,
    fingerprint: String,
}

impl std::fmt::Debug for CustomStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomStrategy")
            .field("crd", &self.crd_name)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Upstream's `discovery.StorageVersionHash`: base64 of the first 8 bytes of the SHA-256 of
/// `group/version/kind`.
pub fn storage_version_hash(group: &str, version: &str, kind: &str) -> String {
    use base64::Engine;
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{group}/{version}/{kind}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(&digest.as_ref()[..8])
}

/// The condition `type_` of a CRD's status, if set.
pub fn condition<'a>(crd: &'a CustomResourceDefinition, type_: &str) -> Option<&'a str> {
    crd.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

/// The served resources of `crd`: one per served version, under the names the CRD's status
/// accepted; none until the CRD is Established.
pub fn resources(crd: &CustomResourceDefinition) -> Vec<Resource> {
    if condition(crd, "Established") != Some("True") {
        return Vec::new();
    }
    let Some(names) = crd.status.as_ref().and_then(|s| s.accepted_names.as_ref()) else {
        return Vec::new();
    };
    if names.plural.is_empty() || names.kind.is_empty() {
        return Vec::new();
    }
    let spec = &crd.spec;
    let Some(storage_version) = spec.versions.iter().find(|v| v.storage).map(|v| v.name.clone()) else {
        return Vec::new();
    };
    let namespaced = spec.scope == "Namespaced";
    let crd_name = crd.metadata.name.clone().unwrap_or_default();
    let fingerprint = serde_json::to_string(&(
        &crd.metadata.uid,
        &crd.spec,
        names,
        crd.metadata.deletion_timestamp.is_some(),
    ))
    .unwrap_or_default();
    let singular = names
        .singular
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| names.kind.to_lowercase());
    let preserve_unknown_fields = spec.preserve_unknown_fields.unwrap_or(false);
    spec.versions
        .iter()
        .filter(|v| v.served)
        .map(|version| {
            let mut strategy = CustomStrategy::new(
                &crd_name,
                &spec.group,
                version,
                &storage_version,
                &names.kind,
                namespaced,
                preserve_unknown_fields,
                fingerprint.clone(),
            );
            strategy.terminating = crd.metadata.deletion_timestamp.is_some();
            let mut subresources = Vec::new();
            if strategy.status {
                subresources.push(Subresource {
                    name: "status".into(),
                    group: spec.group.clone(),
                    version: version.name.clone(),
                    kind: names.kind.clone(),
                    verbs: vec!["get".into(), "patch".into(), "update".into()],
                });
            }
            if strategy.scale.is_some() {
                subresources.push(Subresource {
                    name: "scale".into(),
                    group: "autoscaling".into(),
                    version: "v1".into(),
                    kind: "Scale".into(),
                    verbs: vec!["get".into(), "patch".into(), "update".into()],
                });
            }
            Resource {
                group: spec.group.clone(),
                version: version.name.clone(),
                resource: names.plural.clone(),
                kind: names.kind.clone(),
                singular: singular.clone(),
                namespaced,
                verbs: VERBS.iter().map(|v| (*v).to_owned()).collect(),
                short_names: names.short_names.clone().unwrap_or_default(),
                categories: names.categories.clone().unwrap_or_default(),
                storage_version_hash: storage_version_hash(&spec.group, &storage_version, &names.kind),
                subresources,
                storage: StorageLayout {
                    group: spec.group.clone(),
                    resource: names.plural.clone(),
                    conversion: Conversion::CustomNone,
                },
                backing: Backing::Stored(Ops::Custom(Arc::new(strategy))),
            }
        })
        .collect()
}

/// The upstream default column of a version without printer columns.
fn default_columns() -> Vec<CustomResourceColumnDefinition> {
    vec![CustomResourceColumnDefinition {
        name: "Age".into(),
        type_: "date".into(),
        description: rudder_machinery::printers::columns::DEFAULT
            .get(1)
            .map(|c| c.description.to_owned()),
        json_path: ".metadata.creationTimestamp".into(),
        ..Default::default()
    }]
}

impl CustomStrategy {
    #[allow(clippy::too_many_arguments)]
    fn new(
        crd_name: &str,
        group: &str,
        version: &CustomResourceDefinitionVersion,
        storage_version: &str,
        kind: &str,
        namespaced: bool,
        preserve_unknown_fields: bool,
        fingerprint: String,
    ) -> CustomStrategy {
        let props = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref());
        let schema = props.and_then(|p| Schema::new(p).ok());
        let schema_json = props.and_then(|p| serde_json::to_value(p).ok());
        let types = Types::for_custom_resource(
            schema_json.as_ref(),
            preserve_unknown_fields,
            rudder_machinery::managedfields::builtin::BuiltinTypes::get().types(),
        )
        .ok();
        let subresources = version.subresources.as_ref();
        let columns = version
            .additional_printer_columns
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(default_columns);
        let deprecation_warning = version.deprecated.unwrap_or(false).then(|| {
            version
                .deprecation_warning
                .clone()
                .unwrap_or_else(|| format!("{group}/{} {kind} is deprecated", version.name))
        });
        CustomStrategy {
            crd_name: crd_name.to_owned(),
            group: group.to_owned(),
            version: version.name.clone(),
            storage_version: storage_version.to_owned(),
            kind: kind.to_owned(),
            namespaced,
            schema,
            preserve_unknown_fields,
            status: subresources.is_some_and(|s| s.status.is_some()),
            scale: subresources.and_then(|s| s.scale.clone()),
            columns,
            selectable_fields: version
                .selectable_fields
                .iter()
                .flatten()
                .map(|f| f.json_path.clone())
                .collect(),
            deprecation_warning,
            types,
            terminating: false,
            fingerprint,
        }
    }

    /// What identifies this registration: a CRD change that matters re-registers.
    pub fn generation_key(&self) -> &str {
        &self.fingerprint
    }

    /// `group/version` of the served version.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// Upstream's schema-coercing decoder: metadata as `ObjectMeta` reads it (unknown
    /// metadata fields dropped), then pruning of unknown fields.
    fn coerce(&self, mut object: Value) -> Result<Value, PipelineError> {
        let Some(map) = object.as_object_mut() else {
            return Err(PipelineError::Decode("the object is not a JSON object".into()));
        };
        if let Some(meta) = map.get("metadata").cloned() {
            let meta: ObjectMeta = serde_json::from_value(meta)
                .map_err(|err| PipelineError::Decode(format!("metadata: {err}")))?;
            let meta = serde_json::to_value(meta).map_err(|err| PipelineError::Decode(err.to_string()))?;
            map.insert("metadata".into(), meta);
        }
        self.prune(&mut object);
        Ok(object)
    }

    /// Drops unknown fields; returns their paths (`.spec.foo`).
    pub fn prune(&self, object: &mut Value) -> Vec<String> {
        match &self.schema {
            Some(schema) if !self.preserve_unknown_fields => schema.prune(object),
            _ => Vec::new(),
        }
    }

    /// Sets the schema's defaults.
    pub fn apply_defaults(&self, object: &mut Value) {
        if let Some(schema) = &self.schema {
            schema.apply_defaults(object);
        }
    }

    /// Decode (coerce, prune) and default.
    pub fn normalize(&self, object: Value) -> Result<Value, PipelineError> {
        let mut object = self.coerce(object)?;
        self.apply_defaults(&mut object);
        Ok(object)
    }

    /// The object read from storage in the served version: `apiVersion` rewritten (conversion
    /// strategy `None`), pruned and defaulted with the served version's schema.
    pub fn from_storage(&self, mut object: Value) -> Value {
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), Value::String(self.api_version()));
        }
        self.prune(&mut object);
        self.apply_defaults(&mut object);
        object
    }

    /// The object to store: in the storage version.
    pub fn to_storage(&self, mut object: Value) -> Value {
        if let Some(map) = object.as_object_mut() {
            map.insert(
                "apiVersion".into(),
                Value::String(format!("{}/{}", self.group, self.storage_version)),
            );
        }
        object
    }

    /// Prepares and validates a new object.
    pub fn create(&self, object: Value) -> Result<Value, PipelineError> {
        let mut object = self.normalize(object)?;
        if self.status
            && let Some(map) = object.as_object_mut()
        {
            map.remove("status");
        }
        if let Some(meta) = crate::object::meta_mut(&mut object) {
            meta.insert("generation".into(), Value::from(1));
        }
        let errors = self.validate(&object, None);
        invalid_or(errors, object)
    }

    /// Prepares and validates an update through the main resource or the status.
    pub fn update(&self, object: Value, old: &Value, target: UpdateTarget) -> Result<Value, PipelineError> {
        let object = self.normalize(object)?;
        let (object, errors) = match target {
            UpdateTarget::Main => {
                let object = self.prepare_for_update(object, old);
                let errors = self.validate(&object, Some(old));
                (object, errors)
            }
            UpdateTarget::Status => {
                let object = prepare_for_status_update(&object, old);
                let errors = self.validate_status(&object, old);
                (object, errors)
            }
        };
        invalid_or(errors, object)
    }

    /// Upstream's `PrepareForUpdate`: the status is kept (status subresource), and any change
    /// outside metadata (and status) bumps the generation.
    fn prepare_for_update(&self, mut object: Value, old: &Value) -> Value {
        if self.status
            && let Some(map) = object.as_object_mut()
        {
            match old.get("status") {
                Some(status) => map.insert("status".into(), status.clone()),
                None => map.remove("status"),
            };
        }
        let content = |o: &Value| {
            let mut o = o.clone();
            if let Some(map) = o.as_object_mut() {
                map.remove("metadata");
                if self.status {
                    map.remove("status");
                }
            }
            o
        };
        let old_generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let generation = if content(&object) != content(old) {
            old_generation + 1
        } else {
            old_generation
        };
        if let Some(meta) = crate::object::meta_mut(&mut object) {
            meta.insert("generation".into(), Value::from(generation));
        }
        object
    }

    /// Upstream's `customResourceValidator`: type meta, the schema (and its CEL rules), and
    /// the scale paths' values.
    fn validate(&self, object: &Value, old: Option<&Value>) -> ErrorList {
        let mut errors = self.type_meta_errors(object);
        if !errors.is_empty() {
            return errors;
        }
        if let Some(schema) = &self.schema {
            errors.extend(schema.validate(object, old));
        }
        if let Some(scale) = &self.scale {
            errors.extend(validate_replicas(object, &scale.spec_replicas_path));
            errors.extend(validate_replicas(object, &scale.status_replicas_path));
            if let Some(selector_path) = scale.label_selector_path.as_deref().filter(|p| !p.is_empty())
                && let Some(value) = jsonpath::simple_get(object, selector_path)
                && !value.is_string()
            {
                errors.push(FieldError::invalid(
                    &simple_field_path(selector_path),
                    value.to_string(),
                    "must be a string",
                ));
            }
        }
        errors
    }

    /// `kind` and `apiVersion` must name this resource's kind and a served version.
    fn type_meta_errors(&self, object: &Value) -> ErrorList {
        let mut errors = ErrorList::new();
        let (api_version, kind) = crate::object::type_meta(object);
        if kind != self.kind {
            errors.push(FieldError::invalid(
                &Path::new("kind"),
                kind,
                format!("must be {}", self.kind),
            ));
        }
        if api_version != self.api_version() {
            errors.push(FieldError::invalid(
                &Path::new("apiVersion"),
                api_version,
                format!("must be {}", self.api_version()),
            ));
        }
        errors
    }

    /// Upstream's status strategy validation: type meta, the `status` schema (and the CEL
    /// rules), and the status replicas of the scale subresource.
    fn validate_status(&self, object: &Value, old: &Value) -> ErrorList {
        let mut errors = self.type_meta_errors(object);
        if !errors.is_empty() {
            return errors;
        }
        if let Some(schema) = &self.schema {
            errors.extend(schema.validate_status(object, old));
        }
        if let Some(scale) = &self.scale {
            errors.extend(validate_replicas(object, &scale.status_replicas_path));
        }
        errors
    }

    /// The values of the selectable fields (`spec.color` = `blue`); fields that are missing
    /// or not scalars are left out.
    pub fn selectable_fields(&self, object: &Value) -> Vec<(String, String)> {
        self.selectable_fields
            .iter()
            .filter_map(|path| {
                let value = match jsonpath::simple_get(object, path)? {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => b.to_string(),
                    Value::Number(n) => n.to_string(),
                    _ => return None,
                };
                Some((path.trim_start_matches('.').to_owned(), value))
            })
            .collect()
    }

    /// The names of the selectable fields (`spec.color`).
    pub fn selectable_field_names(&self) -> Vec<String> {
        self.selectable_fields
            .iter()
            .map(|p| p.trim_start_matches('.').to_owned())
            .collect()
    }

    /// The Table columns (`Name` first, then the printer columns).
    pub fn table_columns(&self) -> Vec<Value> {
        let name = rudder_machinery::printers::columns::DEFAULT
            .first()
            .map_or(Value::Null, rudder_machinery::printers::Column::to_json);
        let mut columns = vec![name];
        for column in &self.columns {
            columns.push(serde_json::json!({
                "name": column.name,
                "type": column.type_,
                "format": column.format.clone().unwrap_or_default(),
                "description": column.description.clone().filter(|d| !d.is_empty()).unwrap_or_else(|| format!("Custom resource definition column (in JSONPath format): {}", column.json_path)),
                "priority": column.priority.unwrap_or(0),
            }));
        }
        columns
    }

    /// The cells of one object, as upstream's tableconvertor prints them.
    pub fn table_row(&self, object: &Value, now: i64) -> Vec<Value> {
        let mut cells = vec![Value::String(crate::object::name(object).to_owned())];
        for column in &self.columns {
            let value = jsonpath::find(object, &column.json_path).and_then(|r| r.into_iter().next());
            cells.push(match value {
                None => Value::Null,
                Some(value) => cell(&column.type_, &value, now),
            });
        }
        cells
    }
}

/// One cell of a printer column of `type_` (upstream's `cellForJSONValue`, and the JSONPath
/// printer for `string` columns).
fn cell(type_: &str, value: &Value, now: i64) -> Value {
    match (type_, value) {
        (_, Value::Null) => Value::Null,
        ("string", Value::String(s)) => Value::String(s.clone()),
        ("string", other) => Value::String(jsonpath::print(other)),
        ("integer", Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .map_or(Value::Null, Value::from),
        ("number", Value::Number(n)) => n.as_f64().map_or(Value::Null, Value::from),
        ("boolean", Value::Bool(b)) => Value::Bool(*b),
        ("date", Value::String(s)) => match s.parse::<jiff::Timestamp>() {
            Ok(time) => Value::String(rudder_machinery::printers::human_duration(now - time.as_second())),
            Err(_) => Value::String("<invalid>".into()),
        },
        _ => Value::Null,
    }
}

/// Upstream's status strategy `PrepareForUpdate`: everything but status (and managedFields)
/// comes from the stored object.
fn prepare_for_status_update(object: &Value, old: &Value) -> Value {
    let mut next = old.clone();
    let managed = object.pointer("/metadata/managedFields").cloned();
    if let Some(meta) = crate::object::meta_mut(&mut next) {
        match managed {
            Some(fields) => meta.insert("managedFields".into(), fields),
            None => meta.remove("managedFields"),
        };
    }
    if let Some(map) = next.as_object_mut() {
        match object.get("status") {
            Some(status) => map.insert("status".into(), status.clone()),
            None => map.remove("status"),
        };
    }
    next
}

/// The field path of a simple JSONPath (`.spec.replicas` → `spec.replicas`).
fn simple_field_path(path: &str) -> Path {
    let mut segments = path.trim_start_matches('.').split('.');
    let mut field = Path::new(segments.next().unwrap_or(""));
    for segment in segments {
        field = field.child(segment);
    }
    field
}

/// Upstream's scale validation: a replicas field, when set, is an integer in int32 range.
fn validate_replicas(object: &Value, path: &str) -> ErrorList {
    let mut errors = ErrorList::new();
    let Some(value) = jsonpath::simple_get(object, path) else {
        return errors;
    };
    let field = simple_field_path(path);
    match value.as_i64() {
        Some(n) if n < 0 => errors.push(FieldError::invalid(&field, n, "should be a non-negative integer")),
        Some(n) if n > i64::from(i32::MAX) => errors.push(FieldError::invalid(
            &field,
            n,
            "should be less than or equal to 2147483647",
        )),
        Some(_) => {}
        None => errors.push(FieldError::invalid(
            &field,
            value.to_string(),
            "should be an integer",
        )),
    }
    errors
}

/// Sets a simple JSONPath (`.spec.replicas`) in `object`, creating parents.
pub fn set_simple(object: &mut Value, path: &str, value: Value) {
    let mut current = object;
    let segments: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    for segment in parents {
        let Some(map) = current.as_object_mut() else {
            return;
        };
        current = map
            .entry((*segment).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
    }
    if let Some(map) = current.as_object_mut() {
        map.insert((*last).to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_version_hash_as_upstream() {
        // kube-apiserver's hash of apps/v1 Deployment, from the generated discovery table.
        assert_eq!(storage_version_hash("apps", "v1", "Deployment"), "8aSe+NMegvE=");
    }

    #[test]
    fn cells_follow_column_types() {
        assert_eq!(cell("integer", &Value::from(3.7), 0), Value::from(3));
        assert_eq!(cell("number", &Value::from(3), 0), Value::from(3.0));
        assert_eq!(cell("boolean", &Value::from("x"), 0), Value::Null);
        assert_eq!(cell("string", &Value::from(5), 0), Value::from("5"));
        assert_eq!(cell("date", &Value::from("bad"), 0), Value::from("<invalid>"));
        assert_eq!(
            cell("date", &Value::from("1970-01-01T00:00:00Z"), 120),
            Value::from("2m")
        );
    }

    #[test]
    fn simple_paths_set_and_read() {
        let mut object = serde_json::json!({});
        set_simple(&mut object, ".spec.replicas", Value::from(3));
        assert_eq!(object, serde_json::json!({"spec": {"replicas": 3}}));
        assert_eq!(validate_replicas(&object, ".spec.replicas").len(), 0);
        set_simple(&mut object, ".spec.replicas", Value::from("x"));
        assert_eq!(
            validate_replicas(&object, ".spec.replicas")[0].to_string(),
            "spec.replicas: Invalid value: \"\\\"x\\\"\": should be an integer"
        );
    }
}
