//! Server-side field validation in-process: `fieldValidation=Strict|Warn|Ignore` on create,
//! update and patch (JSON and YAML bodies; JSON, merge and strategic merge patches), with
//! upstream's errors and `Warning` headers, and kind strategies' warnings in those headers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestServer;
use serde_json::Value;

/// A response: status, `Warning` headers, body.
struct Answer {
    status: u16,
    warnings: Vec<String>,
    body: Value,
}

impl Answer {
    fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
}

async fn send(server: &TestServer, method: &str, path: &str, content_type: &str, body: &[u8]) -> Answer {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(kube::client::Body::from(body.to_vec()))
        .unwrap();
    let response = server.client.send(request).await.unwrap();
    let status = response.status().as_u16();
    let warnings = response
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| String::from_utf8(v.as_bytes().to_vec()).unwrap())
        .collect();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer {
        status,
        warnings,
        body,
    }
}

const PODS: &str = "/api/v1/namespaces/default/pods";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

fn pod_body(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","name":"{name}"}},
            "spec":{{"foo":1,"containers":[{{"name":"c","image":"busybox","bar":true}}]}}}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_strict_warn_and_ignore() {
    let server = TestServer::start().await;
    let strict = send(
        &server,
        "POST",
        &format!("{PODS}?fieldValidation=Strict"),
        "application/json",
        pod_body("strict").as_bytes(),
    )
    .await;
    assert_eq!(strict.status, 400, "{}", strict.body);
    assert_eq!(strict.body["reason"], "BadRequest");
    assert_eq!(
        strict.message(),
        r#"Pod in version "v1" cannot be handled as a Pod: strict decoding error: duplicate field "metadata.name", unknown field "spec.foo", unknown field "spec.containers[0].bar""#
    );
    assert!(strict.warnings.is_empty());

    let warn = send(
        &server,
        "POST",
        PODS,
        "application/json",
        pod_body("warn").as_bytes(),
    )
    .await;
    assert_eq!(warn.status, 201, "{}", warn.body);
    assert_eq!(
        warn.warnings,
        [
            r#"299 - "duplicate field \"metadata.name\"""#,
            r#"299 - "unknown field \"spec.foo\"""#,
            r#"299 - "unknown field \"spec.containers[0].bar\"""#,
        ]
    );
    assert!(warn.body["spec"].get("foo").is_none(), "{}", warn.body);
    let explicit = send(
        &server,
        "POST",
        &format!("{PODS}?fieldValidation=Warn&dryRun=All"),
        "application/json",
        pod_body("warn").as_bytes(),
    )
    .await;
    assert_eq!(explicit.status, 201, "{}", explicit.body);
    assert_eq!(explicit.warnings.len(), 3);

    let ignore = send(
        &server,
        "POST",
        &format!("{PODS}?fieldValidation=Ignore"),
        "application/json",
        pod_body("ignore").as_bytes(),
    )
    .await;
    assert_eq!(ignore.status, 201, "{}", ignore.body);
    assert!(ignore.warnings.is_empty(), "{:?}", ignore.warnings);

    let invalid = send(
        &server,
        "POST",
        &format!("{PODS}?fieldValidation=strict"),
        "application/json",
        pod_body("invalid").as_bytes(),
    )
    .await;
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    assert_eq!(
        invalid.message(),
        r#"CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": supported values: "", "Ignore", "Strict", "Warn""#
    );

    // Warnings are sent with a failed request too; a body that does not fit the type is
    // reported by the decoder alone.
    let exists = send(
        &server,
        "POST",
        PODS,
        "application/json",
        pod_body("warn").as_bytes(),
    )
    .await;
    assert_eq!(exists.status, 409, "{}", exists.body);
    assert_eq!(exists.warnings.len(), 3);
    let mistyped = br#"{"metadata":{"name":"typed"},"spec":{"foo":1,"containers":"c"}}"#;
    let answer = send(
        &server,
        "POST",
        &format!("{PODS}?fieldValidation=Strict"),
        "application/json",
        mistyped,
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        !answer.message().contains("strict decoding error"),
        "{}",
        answer.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yaml_bodies_report_duplicate_keys_by_line() {
    let server = TestServer::start().await;
    let yaml = b"apiVersion: v1
kind: ConfigMap
metadata:
  name: yaml
  name: yaml
data:
  k: v
foo: 1
";
    let strict = send(
        &server,
        "POST",
        &format!("{CONFIGMAPS}?fieldValidation=Strict"),
        "application/yaml",
        yaml,
    )
    .await;
    assert_eq!(strict.status, 400, "{}", strict.body);
    assert_eq!(
        strict.message(),
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: yaml: unmarshal errors:\n  line 5: key \"name\" already set in map, unknown field \"foo\""
    );
    let warn = send(&server, "POST", CONFIGMAPS, "application/yaml", yaml).await;
    assert_eq!(warn.status, 201, "{}", warn.body);
    assert_eq!(
        warn.warnings,
        [
            r#"299 - "line 5: key \"name\" already set in map""#,
            r#"299 - "unknown field \"foo\"""#,
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_strict_warn_and_ignore() {
    let server = TestServer::start().await;
    let created = send(
        &server,
        "POST",
        CONFIGMAPS,
        "application/json",
        br#"{"metadata":{"name":"cm"},"data":{"a":"1"}}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.warnings.is_empty(), "{:?}", created.warnings);
    let path = format!("{CONFIGMAPS}/cm");
    let body = |version: &Value| {
        format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"cm","namespace":"default","resourceVersion":{version}}},"data":{{"a":"2","a":"3"}},"bogus":{{"x":1}}}}"#
        )
        .into_bytes()
    };
    let version = created.body["metadata"]["resourceVersion"].clone();
    let strict = send(
        &server,
        "PUT",
        &format!("{path}?fieldValidation=Strict"),
        "application/json",
        &body(&version),
    )
    .await;
    assert_eq!(strict.status, 400, "{}", strict.body);
    assert_eq!(
        strict.message(),
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "data.a", unknown field "bogus""#
    );
    let warn = send(&server, "PUT", &path, "application/json", &body(&version)).await;
    assert_eq!(warn.status, 200, "{}", warn.body);
    assert_eq!(
        warn.warnings,
        [
            r#"299 - "duplicate field \"data.a\"""#,
            r#"299 - "unknown field \"bogus\"""#,
        ]
    );
    assert_eq!(warn.body["data"]["a"], "3");
    let version = warn.body["metadata"]["resourceVersion"].clone();
    let ignore = send(
        &server,
        "PUT",
        &format!("{path}?fieldValidation=Ignore"),
        "application/json",
        &body(&version),
    )
    .await;
    assert_eq!(ignore.status, 200, "{}", ignore.body);
    assert!(ignore.warnings.is_empty());
    // Warnings come with an error of the update itself (here a stale resourceVersion).
    let first = created.body["metadata"]["resourceVersion"].clone();
    let stale = send(&server, "PUT", &path, "application/json", &body(&first)).await;
    assert_eq!(stale.status, 409, "{}", stale.body);
    assert_eq!(stale.warnings.len(), 2);
    let invalid = send(
        &server,
        "PUT",
        &format!("{path}?fieldValidation=x"),
        "application/json",
        &body(&version),
    )
    .await;
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    assert!(
        invalid
            .message()
            .starts_with(r#"UpdateOptions.meta.k8s.io "" is invalid: fieldValidation"#)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_strict_warn_and_ignore() {
    let server = TestServer::start().await;
    let created = send(
        &server,
        "POST",
        CONFIGMAPS,
        "application/json",
        br#"{"metadata":{"name":"cm"},"data":{"a":"1"}}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let path = format!("{CONFIGMAPS}/cm");
    let strategic = "application/strategic-merge-patch+json";
    let merge = "application/merge-patch+json";
    let json_patch = "application/json-patch+json";
    let patch = br#"{"data":{"b":"1","b":"2"},"foo":{"x":1}}"#;

    // Strategic merge patch: duplicates of the patch, unknown fields of the result.
    let strict = send(
        &server,
        "PATCH",
        &format!("{path}?fieldValidation=Strict"),
        strategic,
        patch,
    )
    .await;
    assert_eq!(strict.status, 422, "{}", strict.body);
    assert_eq!(strict.body["reason"], "Invalid");
    assert_eq!(
        strict.message(),
        r#" "" is invalid: patch: Invalid value: "map[data:map[b:2] foo:map[x:1]]": strict decoding error: duplicate field "data.b", unknown field "foo""#
    );
    assert_eq!(strict.body["details"]["causes"][0]["field"], "patch");
    let warn = send(&server, "PATCH", &path, strategic, patch).await;
    assert_eq!(warn.status, 200, "{}", warn.body);
    assert_eq!(
        warn.warnings,
        [
            r#"299 - "duplicate field \"data.b\"""#,
            r#"299 - "unknown field \"foo\"""#,
        ]
    );
    assert_eq!(warn.body["data"]["b"], "2");
    assert!(warn.body.get("foo").is_none());

    // Merge patch: the same, the value of the error being the patched object.
    let strict = send(
        &server,
        "PATCH",
        &format!("{path}?fieldValidation=Strict"),
        merge,
        patch,
    )
    .await;
    assert_eq!(strict.status, 422, "{}", strict.body);
    let message = strict.message();
    assert!(
        message.starts_with(r#" "" is invalid: patch: Invalid value: "{\"apiVersion\":\"v1\",\"data\":{\"a\":\"1\",\"b\":\"2\"},\"foo\":{\"x\":1},"#),
        "{message}"
    );
    assert!(
        message.ends_with(r#"": strict decoding error: duplicate field "data.b", unknown field "foo""#),
        "{message}"
    );
    let warn = send(
        &server,
        "PATCH",
        &path,
        merge,
        br#"{"metadata":{"labels":{"l":"v"},"bogus":1}}"#,
    )
    .await;
    assert_eq!(warn.status, 200, "{}", warn.body);
    assert_eq!(warn.warnings, [r#"299 - "unknown field \"metadata.bogus\"""#]);
    assert_eq!(warn.body["metadata"]["labels"]["l"], "v");

    // JSON patch: the operations themselves are typed.
    let ops =
        br#"[{"op":"add","path":"/data/c","value":"1","bogus":true},{"op":"add","path":"/extra","value":1}]"#;
    let strict = send(
        &server,
        "PATCH",
        &format!("{path}?fieldValidation=Strict"),
        json_patch,
        ops,
    )
    .await;
    assert_eq!(strict.status, 422, "{}", strict.body);
    assert!(
        strict.message().ends_with(
            r#"": strict decoding error: json patch unknown field "[0].bogus", unknown field "extra""#
        ),
        "{}",
        strict.message()
    );
    let warn = send(&server, "PATCH", &path, json_patch, ops).await;
    assert_eq!(warn.status, 200, "{}", warn.body);
    assert_eq!(
        warn.warnings,
        [
            r#"299 - "json patch unknown field \"[0].bogus\"""#,
            r#"299 - "unknown field \"extra\"""#,
        ]
    );
    let ignore = send(
        &server,
        "PATCH",
        &format!("{path}?fieldValidation=Ignore"),
        strategic,
        patch,
    )
    .await;
    assert_eq!(ignore.status, 200, "{}", ignore.body);
    assert!(ignore.warnings.is_empty());
    let invalid = send(
        &server,
        "PATCH",
        &format!("{path}?fieldValidation=Yes"),
        strategic,
        patch,
    )
    .await;
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    assert!(
        invalid
            .message()
            .starts_with(r#"PatchOptions.meta.k8s.io "" is invalid: fieldValidation"#)
    );

    // The status subresource is validated the same way.
    let status = send(
        &server,
        "PATCH",
        &format!("{PODS}/none/status?fieldValidation=Strict"),
        merge,
        b"{}",
    )
    .await;
    assert_eq!(status.status, 404, "{}", status.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategy_warnings_reach_the_warning_header() {
    let server = TestServer::start().await;
    let pod = br#"{"metadata":{"name":"a.b"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    let created = send(&server, "POST", PODS, "application/json", pod).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.warnings.len(), 1, "{:?}", created.warnings);
    assert!(
        created.warnings[0]
            .starts_with(r#"299 - "metadata.name: this is used in the Pod's hostname, which can result in surprising behavior; a DNS label is recommended: ["#),
        "{}",
        created.warnings[0]
    );
    // Field warnings come first, then the strategy's; upstream gives none on pod updates.
    let labelled = send(
        &server,
        "PATCH",
        &format!("{PODS}/a.b"),
        "application/merge-patch+json",
        br#"{"metadata":{"labels":{"x":"y"}},"spec":{"bogus":1}}"#,
    )
    .await;
    assert_eq!(labelled.status, 200, "{}", labelled.body);
    assert_eq!(labelled.warnings, [r#"299 - "unknown field \"spec.bogus\"""#]);

    // Nodes warn on create and on update.
    let node = br#"{"metadata":{"name":"n1"},"spec":{"externalID":"x"},"extra":1}"#;
    let created = send(&server, "POST", "/api/v1/nodes", "application/json", node).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.warnings,
        [
            r#"299 - "unknown field \"extra\"""#,
            r#"299 - "spec.externalID: this field is deprecated, and is unused by Kubernetes""#,
        ]
    );
    let updated = send(
        &server,
        "PATCH",
        "/api/v1/nodes/n1",
        "application/strategic-merge-patch+json",
        br#"{"metadata":{"labels":{"a":"b"}}}"#,
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(
        updated.warnings,
        [r#"299 - "spec.externalID: this field is deprecated, and is unused by Kubernetes""#]
    );
}
