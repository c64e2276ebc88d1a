//! The OpenAPI v3 documents of custom resources, as apiextensions-apiserver's builder makes
//! them for one group version: each kind's schema named `<reversed group>.<version>.<Kind>`
//! (`com.example.v1.Widget`) with `apiVersion`, `kind` and `metadata` added and
//! `x-kubernetes-group-version-kind`, the meta types it refers to, and each resource's PATCH
//! operation with its `fieldValidation` parameter (what kubectl checks before relying on
//! server-side field validation). Built from the registry snapshot; serving them is
//! [`crate::openapi`]'s.

use serde_json::{Map, Value, json};

use crate::registry::{Registry, Resource};

/// The meta types custom resource schemas refer to, from the built-in `api/v1` document.
fn meta_schemas() -> Map<String, Value> {
    let Ok(Some((json, _))) = rudder_machinery::openapi::v3_document("api/v1") else {
        return Map::new();
    };
    let Ok(document) = serde_json::from_slice::<Value>(&json) else {
        return Map::new();
    };
    document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|schemas| {
            schemas
                .iter()
                .filter(|(name, _)| name.starts_with("io.k8s.apimachinery.pkg.apis.meta.v1."))
                .map(|(name, schema)| (name.clone(), schema.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// `com.example.v1.Widget` for `example.com`/`v1`/`Widget`.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", reversed.join("."))
}

fn kind_schema(resource: &Resource) -> Value {
    let custom = resource.custom();
    let mut schema = custom
        .and_then(|c| c.schema.as_ref())
        .and_then(|s| serde_json::to_value(s.props()).ok())
        .unwrap_or_else(|| json!({"type": "object"}));
    if let Some(map) = schema.as_object_mut() {
        let properties = map
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(properties) = properties.as_object_mut() {
            properties.insert("apiVersion".into(), json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"}));
            properties.insert("kind".into(), json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}));
            properties.insert("metadata".into(), json!({"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}], "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}));
        }
        map.insert(
            "x-kubernetes-group-version-kind".into(),
            json!([{"group": resource.group, "kind": resource.kind, "version": resource.version}]),
        );
    }
    schema
}

/// The document of `group`/`version` when custom resources serve it.
pub fn v3_document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let resources: Vec<_> = registry
        .resources_of(group, version)
        .filter(|r| r.custom().is_some())
        .collect();
    if resources.is_empty() {
        return None;
    }
    let mut schemas = meta_schemas();
    let mut paths = Map::new();
    for resource in resources {
        let name = definition_name(group, version, &resource.kind);
        schemas.insert(name.clone(), kind_schema(resource));
        let gvk = json!({"group": group, "kind": resource.kind, "version": version});
        let path = if resource.namespaced {
            format!(
                "/apis/{group}/{version}/namespaces/{{namespace}}/{}/{{name}}",
                resource.resource
            )
        } else {
            format!("/apis/{group}/{version}/{}/{{name}}", resource.resource)
        };
        let reference = json!({"$ref": format!("#/components/schemas/{name}")});
        paths.insert(
            path,
            json!({
                "get": {
                    "operationId": format!("read{}{}", version_prefix(version), resource.kind),
                    "x-kubernetes-action": "get",
                    "x-kubernetes-group-version-kind": gvk,
                    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
                },
                "patch": {
                    "operationId": format!("patch{}{}", version_prefix(version), resource.kind),
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": [
                        {"name": "dryRun", "in": "query", "description": "When present, indicates that modifications should not be persisted.", "schema": {"type": "string", "uniqueItems": true}},
                        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                        {"name": "fieldValidation", "in": "query", "description": "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields.", "schema": {"type": "string", "uniqueItems": true}},
                        {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
                    ],
                    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}},
                },
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// `ExampleComV1`-like operation prefix: the version capitalised.
fn version_prefix(version: &str) -> String {
    let mut chars = version.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Every custom group version's document path (`apis/example.com/v1`).
pub fn v3_paths(registry: &Registry) -> Vec<(String, String)> {
    registry
        .groups()
        .iter()
        .flat_map(|g| g.versions.iter().map(move |v| (g.name.clone(), v.clone())))
        .filter(|(g, v)| registry.resources_of(g, v).any(|r| r.custom().is_some()))
        .collect()
}

/// The document's JSON and its hash (upper-case hex SHA-512, as kube-openapi computes it).
pub fn encode(document: &Value) -> (Vec<u8>, String) {
    let json = serde_json::to_vec(document).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA512, &json);
    let hash = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    (json, hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_names_reverse_the_group() {
        assert_eq!(
            definition_name("example.com", "v1", "Widget"),
            "com.example.v1.Widget"
        );
        assert!(meta_schemas().contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    }
}
