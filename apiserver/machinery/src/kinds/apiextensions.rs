//! The strategy of apiextensions.k8s.io/v1 CustomResourceDefinition, with its status
//! subresource.
//!
//! Ports k8s.io/apiextensions-apiserver: pkg/apis/apiextensions/v1/defaults.go (singular
//! name, list kind, conversion strategy `None`, stored versions),
//! pkg/registry/customresourcedefinition/strategy.go (status reset, generation, stored
//! versions on create and update, status updates that keep the spec) and the parts of
//! pkg/apis/apiextensions/validation that concern names, group, scope, versions, schemas
//! (present and structural) and stored versions.
//!
//! Not here: OpenAPI schema checks beyond structural ones, CEL rule compilation, printer
//! columns, subresource paths, selectable fields and conversion webhooks.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceConversion, CustomResourceDefinition,
    CustomResourceDefinitionNames, CustomResourceDefinitionStatus, CustomResourceDefinitionVersion,
};

use super::api_shared::{generic_meta, generic_meta_update, init_generation, meta_path};
use crate::crd::structural::{validate_defaults, validate_structural};
use crate::field::{ErrorList, FieldError, Path, json_value};
use crate::validation::{
    is_dns1035_label, is_dns1123_subdomain, name_is_dns_subdomain, validate_immutable_field,
};

/// The stored versions with the storage version added when missing.
fn add_storage_version(crd: &mut CustomResourceDefinition) {
    let Some(storage) = crd
        .spec
        .versions
        .iter()
        .find(|v| v.storage)
        .map(|v| v.name.clone())
    else {
        return;
    };
    let status = crd
        .status
        .get_or_insert_with(CustomResourceDefinitionStatus::default);
    let stored = status.stored_versions.get_or_insert_with(Vec::new);
    if !stored.contains(&storage) {
        stored.push(storage);
    }
}

fn dns1035(value: &str) -> String {
    is_dns1035_label(value).join(",")
}

fn validate_names(crd: &CustomResourceDefinition, path: &Path) -> ErrorList {
    let names = &crd.spec.names;
    let mut errs = ErrorList::new();
    let singular = names.singular.as_deref().unwrap_or_default();
    let list_kind = names.list_kind.as_deref().unwrap_or_default();
    if names.plural.is_empty() {
        errs.push(FieldError::required(&path.child("plural"), ""));
    }
    if singular.is_empty() {
        errs.push(FieldError::required(&path.child("singular"), ""));
    }
    if names.kind.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    }
    if list_kind.is_empty() {
        errs.push(FieldError::required(&path.child("listKind"), ""));
    }
    for (field, value) in [("plural", names.plural.as_str()), ("singular", singular)] {
        if !value.is_empty() && !is_dns1035_label(value).is_empty() {
            errs.push(FieldError::invalid(&path.child(field), value, dns1035(value)));
        }
    }
    for (field, value) in [("kind", names.kind.as_str()), ("listKind", list_kind)] {
        let lower = value.to_lowercase();
        if !value.is_empty() && !is_dns1035_label(&lower).is_empty() {
            errs.push(FieldError::invalid(
                &path.child(field),
                value,
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    dns1035(&lower)
                ),
            ));
        }
    }
    for (i, short) in names.short_names.iter().flatten().enumerate() {
        if !is_dns1035_label(short).is_empty() {
            errs.push(FieldError::invalid(
                &path.child("shortNames").index(i),
                short,
                dns1035(short),
            ));
        }
    }
    if !names.kind.is_empty() && names.kind == list_kind {
        errs.push(FieldError::invalid(
            &path.child("listKind"),
            list_kind,
            "kind and listKind may not be the same",
        ));
    }
    for (i, category) in names.categories.iter().flatten().enumerate() {
        if !is_dns1035_label(category).is_empty() {
            errs.push(FieldError::invalid(
                &path.child("categories").index(i),
                category,
                dns1035(category),
            ));
        }
    }
    errs
}

/// Whether every version has the same schema (upstream then validates it once, as the
/// top-level `spec.validation`).
fn identical_schemas(versions: &[CustomResourceDefinitionVersion]) -> bool {
    versions.len() > 1
        && versions
            .iter()
            .all(|v| v.schema.is_some() && v.schema == versions[0].schema)
        || versions.len() == 1 && versions[0].schema.is_some()
}

fn validate_spec(crd: &CustomResourceDefinition) -> ErrorList {
    let spec = &crd.spec;
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    if spec.group.is_empty() {
        errs.push(FieldError::required(&path.child("group"), ""));
    } else if !is_dns1123_subdomain(&spec.group).is_empty() {
        errs.push(FieldError::invalid(
            &path.child("group"),
            &spec.group,
            is_dns1123_subdomain(&spec.group).join(","),
        ));
    } else if !spec.group.contains('.') {
        errs.push(FieldError::invalid(
            &path.child("group"),
            &spec.group,
            "should be a domain with at least one dot",
        ));
    }
    match spec.scope.as_str() {
        "" => errs.push(FieldError::required(&path.child("scope"), "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(
            &path.child("scope"),
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    let versions_path = path.child("versions");
    let shared_schema = identical_schemas(&spec.versions);
    for (i, version) in spec.versions.iter().enumerate() {
        let schema = version
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref());
        if schema.is_none() {
            errs.push(FieldError::required(
                &versions_path.index(i).child("schema").child("openAPIV3Schema"),
                "",
            ));
        }
    }
    let mut seen: Vec<&str> = Vec::new();
    let mut unique = true;
    for (i, version) in spec.versions.iter().enumerate() {
        if seen.contains(&version.name.as_str()) {
            unique = false;
        } else {
            seen.push(&version.name);
        }
        if !is_dns1035_label(&version.name).is_empty() {
            errs.push(FieldError::invalid(
                &versions_path.index(i).child("name"),
                &version.name,
                dns1035(&version.name),
            ));
        }
        let version_path = versions_path.index(i);
        if version.deprecation_warning.is_some() && version.deprecated != Some(true) {
            errs.push(FieldError::invalid(
                &version_path.child("deprecationWarning"),
                version.deprecation_warning.as_deref().unwrap_or_default(),
                "can only be set for deprecated versions",
            ));
        }
        if !shared_schema
            && let Some(schema) = version
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
        {
            errs.extend(validate_schema(
                schema,
                &version_path.child("schema").child("openAPIV3Schema"),
            ));
        }
        errs.extend(validate_subresources(
            version,
            &version_path.child("subresources"),
        ));
        for (j, column) in version.additional_printer_columns.iter().flatten().enumerate() {
            errs.extend(validate_column(
                column,
                &version_path.child("additionalPrinterColumns").index(j),
            ));
        }
    }
    if !unique {
        errs.push(FieldError::invalid(
            &versions_path,
            json_value(&spec.versions),
            "must contain unique version names",
        ));
    }
    if spec.versions.iter().filter(|v| v.storage).count() != 1 {
        errs.push(FieldError::invalid(
            &versions_path,
            json_value(&spec.versions),
            "must have exactly one version marked as storage version",
        ));
    }
    errs.extend(validate_names(crd, &path.child("names")));
    if shared_schema
        && let Some(schema) = spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
    {
        errs.extend(validate_schema(
            schema,
            &path.child("validation").child("openAPIV3Schema"),
        ));
    }
    errs
}

fn validate_schema(
    schema: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if schema.nullable == Some(true) {
        errs.push(FieldError::forbidden(
            &path.child("nullable"),
            "nullable cannot be true at the root",
        ));
    }
    let structural = validate_structural(schema, path);
    if structural.is_empty() {
        errs.extend(validate_defaults(schema, path));
    } else {
        errs.extend(structural);
    }
    errs.extend(crate::crd::cel::compile_errors(schema, path));
    errs
}

/// Upstream's `validateSimpleJSONPath`.
fn validate_simple_json_path(value: &str, path: &Path) -> ErrorList {
    if value.is_empty() {
        return vec![FieldError::invalid(path, value, "must not be empty")];
    }
    if !value.starts_with('.') {
        return vec![FieldError::invalid(
            path,
            value,
            "must be a simple json path starting with .",
        )];
    }
    ErrorList::new()
}

/// A scale path: simple, and under one of `prefixes`.
fn validate_scale_path(value: &str, path: &Path, prefixes: &[&str], detail: &str) -> ErrorList {
    let errs = validate_simple_json_path(value, path);
    if !errs.is_empty() {
        return errs;
    }
    if prefixes.iter().any(|p| value.starts_with(p)) {
        return ErrorList::new();
    }
    vec![FieldError::invalid(path, value, detail)]
}

fn validate_subresources(version: &CustomResourceDefinitionVersion, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(scale) = version.subresources.as_ref().and_then(|s| s.scale.as_ref()) else {
        return errs;
    };
    for (field, value, prefix, detail) in [
        (
            "scale.specReplicasPath",
            &scale.spec_replicas_path,
            ".spec.",
            "should be a json path under .spec",
        ),
        (
            "scale.statusReplicasPath",
            &scale.status_replicas_path,
            ".status.",
            "should be a json path under .status",
        ),
    ] {
        if value.is_empty() {
            errs.push(FieldError::required(&path.child(field), ""));
        } else {
            errs.extend(validate_scale_path(value, &path.child(field), &[prefix], detail));
        }
    }
    if let Some(selector) = scale.label_selector_path.as_deref().filter(|s| !s.is_empty()) {
        errs.extend(validate_scale_path(
            selector,
            &path.child("scale.labelSelectorPath"),
            &[".spec.", ".status."],
            "should be a json path under either .spec or .status",
        ));
    }
    errs
}

fn validate_column(column: &CustomResourceColumnDefinition, path: &Path) -> ErrorList {
    const TYPES: &str = "boolean,date,integer,number,string";
    const FORMATS: &[&str] = &[
        "byte",
        "date",
        "date-time",
        "double",
        "float",
        "int32",
        "int64",
        "password",
    ];
    let mut errs = ErrorList::new();
    if column.name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    if column.type_.is_empty() {
        errs.push(FieldError::required(
            &path.child("type"),
            format!("must be one of {TYPES}"),
        ));
    } else if !TYPES.split(',').any(|t| t == column.type_) {
        errs.push(FieldError::invalid(
            &path.child("type"),
            &column.type_,
            format!("must be one of {TYPES}"),
        ));
    }
    if let Some(format) = column.format.as_deref().filter(|f| !f.is_empty())
        && !FORMATS.contains(&format)
    {
        errs.push(FieldError::invalid(
            &path.child("format"),
            format,
            format!("must be one of {}", FORMATS.join(",")),
        ));
    }
    if column.json_path.is_empty() {
        errs.push(FieldError::required(&path.child("JSONPath"), ""));
    } else {
        errs.extend(validate_simple_json_path(
            &column.json_path,
            &path.child("JSONPath"),
        ));
    }
    errs
}

fn validate_stored_versions(crd: &CustomResourceDefinition) -> ErrorList {
    let path = Path::new("status").child("storedVersions");
    let stored: &[String] = crd
        .status
        .as_ref()
        .and_then(|s| s.stored_versions.as_deref())
        .unwrap_or_default();
    if stored.is_empty() {
        return vec![FieldError::invalid(
            &path,
            json_value(&stored),
            "must have at least one stored version",
        )];
    }
    let mut errs = ErrorList::new();
    for version in &crd.spec.versions {
        if version.storage && !stored.contains(&version.name) {
            errs.push(FieldError::invalid(
                &path,
                json_value(&stored),
                format!("must have the storage version {}", version.name),
            ));
        }
    }
    for (i, name) in stored.iter().enumerate() {
        if !crd.spec.versions.iter().any(|v| &v.name == name) {
            errs.push(FieldError::invalid(
                &path.index(i),
                name,
                format!(
                    "missing from spec.versions; {name} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {name} and removes {name} from status.storedVersions"
                ),
            ));
        }
    }
    errs
}

fn validate_meta(crd: &CustomResourceDefinition) -> ErrorList {
    let mut errs = generic_meta(&crd.metadata, false, name_is_dns_subdomain);
    let required = format!("{}.{}", crd.spec.names.plural, crd.spec.group);
    let detail = r#"must be spec.names.plural+"."+spec.group"#;
    for (field, value) in [
        ("generateName", crd.metadata.generate_name.as_deref()),
        ("name", crd.metadata.name.as_deref()),
    ] {
        if let Some(value) = value.filter(|v| !v.is_empty() && *v != required) {
            errs.push(FieldError::invalid(&meta_path().child(field), value, detail));
        }
    }
    errs
}

fn is_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

impl crate::strategy::KindStrategy for CustomResourceDefinition {
    fn apply_defaults(&mut self) {
        let names = &mut self.spec.names;
        if names.singular.as_deref().is_none_or(str::is_empty) {
            names.singular = Some(names.kind.to_lowercase());
        }
        if names.list_kind.as_deref().is_none_or(str::is_empty) && !names.kind.is_empty() {
            names.list_kind = Some(format!("{}List", names.kind));
        }
        self.spec
            .conversion
            .get_or_insert_with(|| CustomResourceConversion {
                strategy: "None".to_owned(),
                webhook: None,
            });
        let has_stored = self
            .status
            .as_ref()
            .and_then(|s| s.stored_versions.as_ref())
            .is_some_and(|v| !v.is_empty());
        if !has_stored {
            add_storage_version(self);
        }
        // The status and its accepted names are non-pointer structs upstream: always written.
        self.status
            .get_or_insert_with(CustomResourceDefinitionStatus::default)
            .accepted_names
            .get_or_insert_with(CustomResourceDefinitionNames::default);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(CustomResourceDefinitionStatus {
            accepted_names: Some(CustomResourceDefinitionNames::default()),
            ..CustomResourceDefinitionStatus::default()
        });
        init_generation(&mut self.metadata);
        add_storage_version(self);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
        let generation = old.metadata.generation.unwrap_or_default();
        self.metadata.generation = Some(if self.spec == old.spec {
            generation
        } else {
            generation + 1
        });
        add_storage_version(self);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        let mut errs = validate_meta(self);
        errs.extend(validate_spec(self));
        errs.extend(validate_stored_versions(self));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = generic_meta_update(&self.metadata, &old.metadata);
        errs.extend(validate_spec(self));
        let spec_path = Path::new("spec");
        if is_established(old) {
            errs.extend(validate_immutable_field(
                &self.spec.names.plural,
                &old.spec.names.plural,
                &spec_path.child("names").child("plural"),
            ));
            errs.extend(validate_immutable_field(
                &self.spec.names.kind,
                &old.spec.names.kind,
                &spec_path.child("names").child("kind"),
            ));
            errs.extend(validate_immutable_field(
                &self.spec.names.list_kind,
                &old.spec.names.list_kind,
                &spec_path.child("names").child("listKind"),
            ));
        }
        errs.extend(validate_immutable_field(
            &self.spec.scope,
            &old.spec.scope,
            &spec_path.child("scope"),
        ));
        errs.extend(validate_stored_versions(self));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        generic_meta_update(&self.metadata, &old.metadata)
    }

    const ALLOW_UNCONDITIONAL_UPDATE: bool = false;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use serde_json::json;

    use super::*;
    use crate::strategy::KindStrategy;

    fn crd(value: serde_json::Value) -> CustomResourceDefinition {
        serde_json::from_value(value).unwrap()
    }

    fn widget() -> serde_json::Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                    "type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}],
            },
        })
    }

    #[test]
    fn defaults_names_conversion_and_stored_versions() {
        let mut c = crd(widget());
        c.apply_defaults();
        c.prepare_for_create();
        assert_eq!(c.spec.names.singular.as_deref(), Some("widget"));
        assert_eq!(c.spec.names.list_kind.as_deref(), Some("WidgetList"));
        assert_eq!(c.spec.conversion.as_ref().unwrap().strategy, "None");
        assert_eq!(
            c.status.as_ref().unwrap().stored_versions.as_deref(),
            Some(&["v1".to_owned()][..])
        );
        assert_eq!(c.metadata.generation, Some(1));
        assert_eq!(c.validate(), ErrorList::new());
    }

    #[test]
    fn rejects_bad_definitions_with_upstream_messages() {
        let mut value = widget();
        value["metadata"]["name"] = json!("widgets.other.com");
        value["spec"]["group"] = json!("example");
        value["spec"]["names"]["listKind"] = json!("Widget");
        value["spec"]["versions"][0]["storage"] = json!(false);
        value["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"] = json!({});
        let mut c = crd(value);
        c.apply_defaults();
        c.prepare_for_create();
        let shown: Vec<String> = c.validate().iter().map(ToString::to_string).collect();
        assert_eq!(
            shown[0],
            r#"metadata.name: Invalid value: "widgets.other.com": must be spec.names.plural+"."+spec.group"#
        );
        assert!(shown.contains(
            &r#"spec.group: Invalid value: "example": should be a domain with at least one dot"#.to_owned()
        ));
        assert!(
            shown.contains(
                &r#"spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same"#
                    .to_owned()
            )
        );
        assert!(
            shown
                .iter()
                .any(|s| s.starts_with("spec.versions: Invalid value: ")
                    && s.ends_with("must have exactly one version marked as storage version"))
        );
        assert!(shown.contains(&"spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields".to_owned()));
        assert!(shown.contains(
            &"status.storedVersions: Invalid value: []: must have at least one stored version".to_owned()
        ));
    }

    #[test]
    fn validates_subresources_and_printer_columns() {
        let mut value = widget();
        value["spec"]["versions"][0]["subresources"] = json!({"status": {}, "scale": {
            "specReplicasPath": "spec.replicas", "statusReplicasPath": ".spec.replicas", "labelSelectorPath": ".metadata.labels"}});
        value["spec"]["versions"][0]["additionalPrinterColumns"] = json!([
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "", "type": "float", "format": "hex", "jsonPath": "spec"},
        ]);
        let mut c = crd(value);
        c.apply_defaults();
        c.prepare_for_create();
        let shown: Vec<String> = c.validate().iter().map(ToString::to_string).collect();
        let v = "spec.versions[0]";
        assert_eq!(
            shown,
            vec![
                format!(
                    r#"{v}.subresources.scale.specReplicasPath: Invalid value: "spec.replicas": must be a simple json path starting with ."#
                ),
                format!(
                    r#"{v}.subresources.scale.statusReplicasPath: Invalid value: ".spec.replicas": should be a json path under .status"#
                ),
                format!(
                    r#"{v}.subresources.scale.labelSelectorPath: Invalid value: ".metadata.labels": should be a json path under either .spec or .status"#
                ),
                format!("{v}.additionalPrinterColumns[1].name: Required value"),
                format!(
                    r#"{v}.additionalPrinterColumns[1].type: Invalid value: "float": must be one of boolean,date,integer,number,string"#
                ),
                format!(
                    r#"{v}.additionalPrinterColumns[1].format: Invalid value: "hex": must be one of byte,date,date-time,double,float,int32,int64,password"#
                ),
                format!(
                    r#"{v}.additionalPrinterColumns[1].JSONPath: Invalid value: "spec": must be a simple json path starting with ."#
                ),
            ]
        );
    }

    #[test]
    fn scope_is_immutable_and_generation_follows_the_spec() {
        let mut old = crd(widget());
        old.apply_defaults();
        old.prepare_for_create();
        let mut new = old.clone();
        new.spec.scope = "Cluster".to_owned();
        new.prepare_for_update(&old);
        assert_eq!(new.metadata.generation, Some(2));
        let shown: Vec<String> = new
            .validate_update(&old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            shown.contains(&r#"spec.scope: Invalid value: "Cluster": field is immutable"#.to_owned()),
            "{shown:?}"
        );
    }
}
