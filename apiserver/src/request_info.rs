//! What a request is about: kube-apiserver's RequestInfo, parsed from method, path and query.
//!
//! `/api/v1/namespaces/ns/pods/name/log` is a resource request (verb get, namespace ns,
//! resource pods, name, subresource log); `/healthz` or `/apis/apps` are not. The verb is the
//! Kubernetes verb: list and watch for collection GETs, deletecollection for collection
//! DELETEs. This module only parses; it knows no resources.

use http::Method;

/// The parsed request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether the path addresses an API resource.
    pub is_resource_request: bool,
    /// The path without query.
    pub path: String,
    /// The Kubernetes verb (lowercase HTTP method for non-resource requests).
    pub verb: String,
    /// `api` or `apis` for API paths, empty otherwise.
    pub api_prefix: String,
    /// The API group (empty for the core group).
    pub api_group: String,
    /// The API version.
    pub api_version: String,
    /// The namespace, if the request is namespaced.
    pub namespace: String,
    /// The resource.
    pub resource: String,
    /// The subresource.
    pub subresource: String,
    /// The object name.
    pub name: String,
    /// Path segments after the subresource (proxy paths).
    pub parts: Vec<String>,
}

/// Subresources of namespaces that are not resources in their own right.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

impl RequestInfo {
    /// Parses a request. `query` is the raw query string (without `?`).
    pub fn parse(method: &Method, path: &str, query: &str) -> RequestInfo {
        let mut info = RequestInfo {
            path: path.to_owned(),
            verb: method.as_str().to_ascii_lowercase(),
            ..Default::default()
        };
        let segments: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let Some((&prefix, rest)) = segments.split_first() else {
            return info;
        };
        if prefix != "api" && prefix != "apis" {
            return info;
        }
        // /api/{version}/... and /apis/{group}/{version}/...; shorter paths are discovery.
        let needed = if prefix == "api" { 2 } else { 3 };
        if segments.len() < needed {
            return info;
        }
        info.api_prefix = prefix.to_owned();
        let mut parts: &[&str] = rest;
        if prefix == "apis" {
            info.api_group = parts[0].to_owned();
            parts = &parts[1..];
        }
        info.api_version = parts[0].to_owned();
        parts = &parts[1..];
        if parts.is_empty() {
            return info;
        }
        info.is_resource_request = true;
        info.verb = match *method {
            Method::POST => "create",
            Method::GET | Method::HEAD => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_owned();
        // The deprecated /watch/ and /proxy/ path prefixes name the verb.
        if matches!(parts[0], "watch" | "proxy") {
            if info.verb == "get" {
                info.verb = parts[0].to_owned();
            }
            parts = &parts[1..];
        }
        if parts.first() == Some(&"namespaces") && parts.len() > 1 {
            info.namespace = parts[1].to_owned();
            // A step after the namespace name that is not a namespace subresource is a
            // namespaced resource in its own right.
            if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2]) {
                parts = &parts[2..];
            }
        }
        if let Some(resource) = parts.first() {
            info.resource = (*resource).to_owned();
        }
        if let Some(name) = parts.get(1) {
            info.name = (*name).to_owned();
        }
        if let Some(subresource) = parts.get(2) {
            info.subresource = (*subresource).to_owned();
        }
        info.parts = parts.iter().skip(3).map(|p| (*p).to_owned()).collect();

        if info.name.is_empty() && info.verb == "get" {
            let mut watch = false;
            let mut field_name = None;
            for (key, value) in form_urlencoded::parse(query.as_bytes()) {
                match key.as_ref() {
                    "watch" => watch = matches!(value.as_ref(), "true" | "1"),
                    "fieldSelector" => field_name = exact_name(&value),
                    _ => {}
                }
            }
            info.verb = if watch { "watch" } else { "list" }.to_owned();
            // A list or watch of one object by name is authorized like a get of that name.
            if let Some(name) = field_name {
                info.name = name;
            }
        }
        if info.name.is_empty() && info.verb == "delete" {
            info.verb = "deletecollection".to_owned();
        }
        info
    }

    /// The metric scope label: cluster, namespace or resource (one object).
    pub fn scope(&self) -> &'static str {
        if !self.is_resource_request {
            ""
        } else if !self.name.is_empty() {
            "resource"
        } else if !self.namespace.is_empty() {
            "namespace"
        } else {
            "cluster"
        }
    }
}

/// The name required by a `metadata.name=X` (or `==`) term of a field selector.
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (field, value) = term.split_once("==").or_else(|| term.split_once('='))?;
        (field.trim() == "metadata.name" && !value.starts_with('=') && !value.is_empty())
            .then(|| value.trim().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: &Method, url: &str, expected: (&str, &str, &str, &str, &str, &str, &str)) {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let info = RequestInfo::parse(method, path, query);
        let got = (
            info.verb.as_str(),
            info.api_group.as_str(),
            info.api_version.as_str(),
            info.namespace.as_str(),
            info.resource.as_str(),
            info.name.as_str(),
            info.subresource.as_str(),
        );
        assert_eq!(got, expected, "{method} {url}");
    }

    #[test]
    fn resource_requests() {
        use Method as M;
        check(
            &M::GET,
            "/api/v1/namespaces",
            ("list", "", "v1", "", "namespaces", "", ""),
        );
        check(
            &M::GET,
            "/api/v1/namespaces/other",
            ("get", "", "v1", "other", "namespaces", "other", ""),
        );
        check(
            &M::PUT,
            "/api/v1/namespaces/other/finalize",
            ("update", "", "v1", "other", "namespaces", "other", "finalize"),
        );
        check(
            &M::GET,
            "/api/v1/namespaces/other/pods",
            ("list", "", "v1", "other", "pods", "", ""),
        );
        check(
            &M::GET,
            "/api/v1/namespaces/other/pods?watch=true",
            ("watch", "", "v1", "other", "pods", "", ""),
        );
        check(
            &M::GET,
            "/api/v1/namespaces/other/pods/foo",
            ("get", "", "v1", "other", "pods", "foo", ""),
        );
        check(
            &M::GET,
            "/api/v1/namespaces/other/pods/foo/log",
            ("get", "", "v1", "other", "pods", "foo", "log"),
        );
        check(
            &M::POST,
            "/api/v1/namespaces/other/pods",
            ("create", "", "v1", "other", "pods", "", ""),
        );
        check(
            &M::DELETE,
            "/api/v1/namespaces/other/pods",
            ("deletecollection", "", "v1", "other", "pods", "", ""),
        );
        check(
            &M::PATCH,
            "/apis/apps/v1/namespaces/ns/deployments/d/scale",
            ("patch", "apps", "v1", "ns", "deployments", "d", "scale"),
        );
        check(
            &M::GET,
            "/apis/apps/v1/deployments",
            ("list", "apps", "v1", "", "deployments", "", ""),
        );
        check(
            &M::GET,
            "/api/v1/watch/namespaces/other/pods",
            ("watch", "", "v1", "other", "pods", "", ""),
        );
        check(
            &M::GET,
            "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dfoo&watch=1",
            ("watch", "", "v1", "ns", "pods", "foo", ""),
        );
        check(
            &M::GET,
            "/api/v1/nodes/n1/proxy/metrics",
            ("get", "", "v1", "", "nodes", "n1", "proxy"),
        );
    }

    #[test]
    fn non_resource_requests() {
        for path in [
            "/healthz",
            "/version",
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps",
            "/apis/apps/v1",
            "/openapi/v2",
        ] {
            let info = RequestInfo::parse(&Method::GET, path, "");
            assert!(!info.is_resource_request, "{path}");
            assert_eq!(info.verb, "get");
            assert_eq!(info.scope(), "");
        }
        let proxy = RequestInfo::parse(&Method::GET, "/api/v1/nodes/n1/proxy/a/b", "");
        assert_eq!(proxy.parts, ["a", "b"]);
    }
}
