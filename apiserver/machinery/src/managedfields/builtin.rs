//! The types of the built-in kinds, exactly as kube-apiserver builds its type converter: from
//! the OpenAPI v3 definitions of every served group version (the documents of
//! [`crate::openapi`]), converted by [`Types::from_openapi_v3`].
//!
//! Upstream converts typed Go objects to structured-merge-diff values by reflection, which
//! sees them as `encoding/json` writes them: non-pointer structs always present (`{}`),
//! non-`omitempty` fields always present (zero values, `null` for nil slices, maps and
//! pointers). The JSON values Rudder holds omit those, and the difference shows in
//! managedFields (a struct that exists in Go but is absent here is "added" with its `"."`).
//! So objects are seen through the Go types: [`crate::protobuf`] decodes exactly what Go
//! would encode, and an object encoded to protobuf and decoded back is the JSON of the Go
//! object it stands for.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value, json};

use super::openapi::Types;
use super::schema::{Atom, TypeRef, TypeSource};
use super::updater::VersionConverter;
use crate::protobuf;

/// The built-in types, with objects seen through the Go types.
#[derive(Debug)]
pub struct BuiltinTypes {
    types: Types,
    error: Option<String>,
    /// The Go view of each kind's empty object, by (apiVersion, kind): every create asks
    /// for one, and it never changes.
    empty_objects: Mutex<HashMap<(String, String), Value>>,
}

impl BuiltinTypes {
    /// The built-in types (converted once, on first use).
    pub fn get() -> &'static BuiltinTypes {
        static TYPES: OnceLock<BuiltinTypes> = OnceLock::new();
        TYPES.get_or_init(|| match load() {
            Ok(types) => BuiltinTypes {
                types,
                error: None,
                empty_objects: Mutex::default(),
            },
            Err(error) => BuiltinTypes {
                types: Types::default(),
                error: Some(error),
                empty_objects: Mutex::default(),
            },
        })
    }

    /// The converted types (the meta types custom resources refer to).
    pub fn types(&'static self) -> &'static Types {
        &self.types
    }

    /// Why the types could not be built (a build defect: the tests build them).
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// Every definition of every served v3 document.
fn load() -> Result<Types, String> {
    let mut definitions = Map::new();
    for path in crate::openapi::v3_paths() {
        let Some((json, _)) = crate::openapi::v3_document(path).map_err(|e| e.to_string())? else {
            continue;
        };
        let mut doc: Value = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
        if let Some(Value::Object(schemas)) = doc.pointer_mut("/components/schemas").map(Value::take) {
            definitions.extend(schemas);
        }
    }
    Types::from_openapi_v3(&definitions, false)
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// The object as Go encodes the typed object it decodes into; `None` if it has no built-in
/// kind or does not fit it.
pub fn go_view(object: &Value) -> Option<Value> {
    let api_version = object.get("apiVersion")?.as_str()?;
    let kind = object.get("kind")?.as_str()?;
    let (group, version) = split_api_version(api_version);
    protobuf::round_trip(object, group, version, kind)
}

impl TypeSource for BuiltinTypes {
    fn named(&self, name: &str) -> Option<&Atom> {
        self.types.named(name)
    }

    fn typed_view(&self, object: &Value) -> Option<Value> {
        go_view(object)
    }

    fn new_object(&self, api_version: &str, kind: &str) -> Value {
        let key = (api_version.to_owned(), kind.to_owned());
        if let Some(cached) = self
            .empty_objects
            .lock()
            .ok()
            .and_then(|cache| cache.get(&key).cloned())
        {
            return cached;
        }
        let empty = json!({"apiVersion": api_version, "kind": kind});
        let view = go_view(&empty).unwrap_or(empty);
        if let Ok(mut cache) = self.empty_objects.lock() {
            cache.insert(key, view.clone());
        }
        view
    }
}

/// Conversions between the versions of built-in kinds that kube-apiserver serves in more
/// than one version: `HorizontalPodAutoscaler` (`autoscaling/v1` and `autoscaling/v2`).
/// Other versions do not exist (managers recorded at them are dropped, as upstream drops
/// versions it no longer serves).
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinConverter;

impl VersionConverter for BuiltinConverter {
    fn convert(&self, object: &Value, api_version: &str) -> Result<Option<(Value, TypeRef)>, String> {
        let from = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        let converted = match (kind, from, api_version) {
            ("HorizontalPodAutoscaler", "autoscaling/v2", "autoscaling/v1") => {
                crate::convert::hpa_v2_to_v1(object.clone()).map_err(|e| e.to_string())?
            }
            ("HorizontalPodAutoscaler", "autoscaling/v1", "autoscaling/v2") => {
                crate::convert::hpa_v1_to_v2(object.clone()).map_err(|e| e.to_string())?
            }
            _ => return Ok(None),
        };
        let (group, version) = split_api_version(api_version);
        let Some(type_name) = crate::schema::Schema::builtin().kind_definition(group, version, kind) else {
            return Ok(None);
        };
        let converted = go_view(&converted).unwrap_or(converted);
        Ok(Some((converted, TypeRef::named(type_name))))
    }
}

/// The fields nobody may own through an endpoint (the strategy's `GetResetFields`), as
/// field-name paths: `status` for a main resource with a status, `spec` (and a few metadata
/// fields for some kinds) for a status subresource; the other subresources keep what their
/// strategies reset.
pub fn reset_fields(
    group: &str,
    resource: &str,
    subresource: &str,
    has_status: bool,
) -> &'static [&'static [&'static str]] {
    const NONE: &[&[&str]] = &[];
    const STATUS: &[&[&str]] = &[&["status"]];
    const SPEC: &[&[&str]] = &[&["spec"]];
    const SPEC_AND_METADATA: &[&[&str]] = &[&["metadata"], &["spec"]];
    match (group, resource, subresource) {
        ("certificates.k8s.io", "certificatesigningrequests", "") => &[&["spec"], &["status"]],
        ("certificates.k8s.io", "certificatesigningrequests", "status") => {
            &[&["spec"], &["status", "conditions"]]
        }
        ("certificates.k8s.io", "certificatesigningrequests", "approval") => {
            &[&["spec"], &["status", "certificate"]]
        }
        (_, _, "") if has_status => STATUS,
        (_, _, "") => NONE,
        ("", "pods", "status") => &[
            &["spec"],
            &["metadata", "deletionTimestamp"],
            &["metadata", "ownerReferences"],
        ],
        ("", "pods", "ephemeralcontainers" | "resize") | ("", "namespaces", "finalize") => STATUS,
        ("apps", "deployments", "status") => &[&["spec"], &["metadata", "labels"]],
        ("flowcontrol.apiserver.k8s.io", "flowschemas" | "prioritylevelconfigurations", "status")
        | ("admissionregistration.k8s.io", "validatingadmissionpolicies", "status")
        | ("storage.k8s.io", "volumeattachments", "status")
        | ("resource.k8s.io", "resourceclaims", "status") => SPEC_AND_METADATA,
        (_, _, "status") => SPEC,
        _ => NONE,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn builtin_types_load() {
        let builtin = BuiltinTypes::get();
        assert_eq!(builtin.error(), None);
        assert!(builtin.named("io.k8s.api.apps.v1.Deployment").is_some());
        assert!(builtin.named("io.k8s.api.core.v1.PodSpec").is_some());
    }

    #[test]
    fn new_objects_are_go_zero_values() {
        let empty = BuiltinTypes::get().new_object("apps/v1", "Deployment");
        assert_eq!(
            empty,
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {},
                "spec": {
                    "selector": null,
                    "strategy": {},
                    "template": {"metadata": {}, "spec": {"containers": null}}
                },
                "status": {}
            })
        );
    }
}
