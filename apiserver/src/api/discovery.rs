//! Discovery: `/api`, `/api/v1`, `/apis`, `/apis/{group}`, `/apis/{group}/{version}` and
//! aggregated discovery (`apidiscovery.k8s.io` v2 and v2beta1), all computed from the
//! registry.

use std::hash::{Hash, Hasher};

use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};
use warp::reply::Response;

use crate::api::negotiation::{Output, accept_list};
use crate::api::output;
use crate::registry::{Registry, Resource};
use crate::status::ApiError;

/// Serves a discovery path (`segments` after the leading slash), or `None` if the path is
/// not a discovery path.
pub fn serve(
    registry: &Registry,
    segments: &[&str],
    headers: &HeaderMap,
    output: &Output,
    server_address: &str,
) -> Option<Result<Response, ApiError>> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let aggregated = aggregated_version(accept);
    let value = match segments {
        ["api"] => match aggregated {
            Some(version) => {
                return Some(Ok(aggregated_response(
                    &aggregated_list(registry, true, version),
                    version,
                    headers,
                )));
            }
            None => json!({
                "kind": "APIVersions",
                "versions": registry.group("").map(|g| g.versions.clone()).unwrap_or_default(),
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
            }),
        },
        ["apis"] => match aggregated {
            Some(version) => {
                return Some(Ok(aggregated_response(
                    &aggregated_list(registry, false, version),
                    version,
                    headers,
                )));
            }
            None => json!({
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": registry.groups().iter().filter(|g| !g.name.is_empty()).map(|g| group_json(&g.name, &g.versions)).collect::<Vec<_>>(),
            }),
        },
        ["api", version] => resource_list(registry, "", version)?,
        ["apis", group] => {
            let group = registry.group(group).filter(|g| !g.name.is_empty())?;
            let mut value = group_json(&group.name, &group.versions);
            if let Value::Object(map) = &mut value {
                map.insert("kind".into(), Value::String("APIGroup".into()));
                map.insert("apiVersion".into(), Value::String("v1".into()));
            }
            value
        }
        ["apis", group, version] => resource_list(registry, group, version)?,
        _ => return None,
    };
    Some(Ok(output::respond(StatusCode::OK, &value, output)))
}

/// The aggregated discovery version the client asks for, if any.
fn aggregated_version(accept: Option<&str>) -> Option<&'static str> {
    for media in accept_list(accept) {
        if media.param("g") == Some("apidiscovery.k8s.io")
            && media.param("as") == Some("APIGroupDiscoveryList")
        {
            match media.param("v") {
                Some("v2") => return Some("v2"),
                Some("v2beta1") => return Some("v2beta1"),
                _ => {}
            }
        }
        // Plain JSON is preferred over any later aggregated range.
        media.param("as")?;
    }
    None
}

fn group_json(name: &str, versions: &[String]) -> Value {
    let version_json = |v: &String| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(version_json).collect::<Vec<_>>(),
        "preferredVersion": versions.first().map_or(Value::Null, version_json),
    })
}

fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    if !registry.serves(group, version) {
        return None;
    }
    let mut resources = Vec::new();
    for resource in registry.resources_of(group, version) {
        resources.push(api_resource(resource));
        for sub in &resource.subresources {
            let mut entry = Map::new();
            entry.insert(
                "name".into(),
                Value::String(format!("{}/{}", resource.resource, sub.name)),
            );
            entry.insert("singularName".into(), Value::String(String::new()));
            entry.insert("namespaced".into(), Value::Bool(resource.namespaced));
            if sub.group != resource.group || sub.version != resource.version {
                entry.insert("group".into(), Value::String(sub.group.clone()));
                entry.insert("version".into(), Value::String(sub.version.clone()));
            }
            entry.insert("kind".into(), Value::String(sub.kind.clone()));
            entry.insert("verbs".into(), Value::from(sub.verbs.clone()));
            resources.push(Value::Object(entry));
        }
    }
    let group_version = rudder_machinery::resources::group_version(group, version);
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

fn api_resource(resource: &Resource) -> Value {
    let mut entry = Map::new();
    entry.insert("name".into(), Value::String(resource.resource.clone()));
    entry.insert("singularName".into(), Value::String(resource.singular.clone()));
    entry.insert("namespaced".into(), Value::Bool(resource.namespaced));
    entry.insert("kind".into(), Value::String(resource.kind.clone()));
    entry.insert("verbs".into(), Value::from(resource.verbs.clone()));
    if !resource.short_names.is_empty() {
        entry.insert("shortNames".into(), Value::from(resource.short_names.clone()));
    }
    if !resource.categories.is_empty() {
        entry.insert("categories".into(), Value::from(resource.categories.clone()));
    }
    if !resource.storage_version_hash.is_empty() {
        entry.insert(
            "storageVersionHash".into(),
            Value::String(resource.storage_version_hash.clone()),
        );
    }
    Value::Object(entry)
}

fn aggregated_list(registry: &Registry, legacy: bool, version: &str) -> Value {
    let items: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|g| g.name.is_empty() == legacy)
        .map(|group| {
            let versions: Vec<Value> = group
                .versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = registry
                        .resources_of(&group.name, v)
                        .map(|r| aggregated_resource(r))
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut metadata = json!({"creationTimestamp": null});
            if !group.name.is_empty() {
                metadata["name"] = Value::String(group.name.clone());
            }
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

fn aggregated_resource(resource: &Resource) -> Value {
    let mut entry = Map::new();
    entry.insert("resource".into(), Value::String(resource.resource.clone()));
    entry.insert(
        "responseKind".into(),
        json!({"group": "", "version": "", "kind": resource.kind}),
    );
    entry.insert(
        "scope".into(),
        Value::String(
            if resource.namespaced {
                "Namespaced"
            } else {
                "Cluster"
            }
            .into(),
        ),
    );
    entry.insert(
        "singularResource".into(),
        Value::String(resource.singular.clone()),
    );
    entry.insert("verbs".into(), Value::from(resource.verbs.clone()));
    if !resource.short_names.is_empty() {
        entry.insert("shortNames".into(), Value::from(resource.short_names.clone()));
    }
    if !resource.categories.is_empty() {
        entry.insert("categories".into(), Value::from(resource.categories.clone()));
    }
    if !resource.subresources.is_empty() {
        let subresources: Vec<Value> = resource
            .subresources
            .iter()
            .map(|sub| {
                let same = sub.group == resource.group && sub.version == resource.version;
                let (group, version) = if same {
                    ("", "")
                } else {
                    (sub.group.as_str(), sub.version.as_str())
                };
                json!({
                    "subresource": sub.name,
                    "responseKind": {"group": group, "version": version, "kind": sub.kind},
                    "verbs": sub.verbs,
                })
            })
            .collect();
        entry.insert("subresources".into(), Value::from(subresources));
    }
    Value::Object(entry)
}

fn aggregated_response(value: &Value, version: &str, headers: &HeaderMap) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    let etag = format!("\"{:016X}\"", hasher.finish());
    let content_type = format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tag| tag == etag);
    let mut response = if not_modified {
        let mut r = Response::new(Vec::new().into());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(body.into())
    };
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        response_headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    response_headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_prefers_aggregated_v2() {
        let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(Some(accept)), Some("v2"));
        assert_eq!(aggregated_version(Some("application/json")), None);
        assert_eq!(aggregated_version(None), None);
    }

    #[test]
    fn resource_lists_match_upstream_shape() {
        let registry = Registry::builtin();
        let apps = resource_list(&registry, "apps", "v1").unwrap();
        let resources = apps["resources"].as_array().unwrap();
        let deployments = resources.iter().find(|r| r["name"] == "deployments").unwrap();
        assert_eq!(deployments["shortNames"], json!(["deploy"]));
        assert_eq!(deployments["categories"], json!(["all"]));
        let scale = resources
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(
            (scale["group"].as_str(), scale["kind"].as_str()),
            (Some("autoscaling"), Some("Scale"))
        );
        assert!(resource_list(&registry, "apps", "v1beta1").is_none());
        let aggregated = aggregated_list(&registry, false, "v2");
        assert!(
            aggregated["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|g| g["metadata"]["name"] != "")
        );
        let legacy = aggregated_list(&registry, true, "v2");
        assert_eq!(legacy["items"].as_array().unwrap().len(), 1);
    }
}
