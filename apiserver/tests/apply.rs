//! Server-side apply and `metadata.managedFields` in-process: the managers that create,
//! update and patch record, apply creating and updating objects, upstream's conflict Status,
//! `force`, the status subresource, dry runs and the option checks of apply requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestServer;
use serde_json::{Value, json};

/// A response: status, `Warning` headers, body.
struct Answer {
    status: u16,
    warnings: Vec<String>,
    body: Value,
}

async fn send(server: &TestServer, method: &str, path: &str, content_type: &str, body: &str) -> Answer {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .header("user-agent", "tester/v1.2.3 (linux/amd64) rudder/abc")
        .body(kube::client::Body::from(body.as_bytes().to_vec()))
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

const APPLY: &str = "application/apply-patch+yaml";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/default/deployments";

/// The managedFields entries without their times, after checking each time is an RFC 3339
/// timestamp in seconds.
fn entries(object: &Value) -> Vec<Value> {
    let entries = object["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut entries: Vec<Value> = entries
        .into_iter()
        .map(|mut entry| {
            // Upstream leaves the time out of an entry whose apply changed nothing.
            if let Some(time) = entry.as_object_mut().unwrap().remove("time") {
                let time = time.as_str().unwrap().to_owned();
                assert!(
                    time.len() == "2024-01-01T00:00:00Z".len() && time.ends_with('Z'),
                    "time {time:?} in {entry}"
                );
            }
            entry
        })
        .collect();
    // Entries are sorted by operation, time (in seconds) and manager: within a second, as in
    // these tests, by operation and manager.
    entries.sort_by_key(|e| (e["operation"].to_string(), e["manager"].to_string()));
    entries
}

fn update_entry(manager: &str, api_version: &str, fields: Value) -> Value {
    let mut entry = json!({"manager": manager, "operation": "Update", "apiVersion": api_version, "fieldsType": "FieldsV1"});
    entry["fieldsV1"] = fields;
    entry
}

fn apply_entry(manager: &str, api_version: &str, fields: Value) -> Value {
    let mut entry = json!({"manager": manager, "operation": "Apply", "apiVersion": api_version, "fieldsType": "FieldsV1"});
    entry["fieldsV1"] = fields;
    entry
}

fn deployment(replicas: i64, image: &str) -> String {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "nginx", "image": image}]},
            },
        },
    })
    .to_string()
}

/// The fields a manager applying [`deployment`] owns.
fn deployment_fields(replicas: bool) -> Value {
    let mut spec = json!({
        "f:selector": {},
        "f:template": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}}},
        },
    });
    if replicas {
        spec["f:replicas"] = json!({});
    }
    json!({"f:spec": spec})
}

#[tokio::test]
async fn creates_updates_and_patches_record_their_managers() {
    let server = TestServer::start().await;
    let created = send(
        &server,
        "POST",
        &format!("{CONFIGMAPS}?fieldManager=creator"),
        "application/json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm","labels":{"app":"x"}},"data":{"a":"1"}}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        entries(&created.body),
        [update_entry(
            "creator",
            "v1",
            json!({"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
        )]
    );

    // A replace by another manager: it owns what it changed, the creator keeps the rest.
    let mut replaced = created.body.clone();
    replaced["data"]["b"] = json!("2");
    let updated = send(
        &server,
        "PUT",
        &format!("{CONFIGMAPS}/cm?fieldManager=updater"),
        "application/json",
        &replaced.to_string(),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(
        entries(&updated.body),
        [
            update_entry(
                "creator",
                "v1",
                json!({"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
            ),
            update_entry("updater", "v1", json!({"f:data": {"f:b": {}}})),
        ]
    );

    // Without fieldManager, the user agent's prefix names the manager; a changed value moves
    // to it.
    let patched = send(
        &server,
        "PATCH",
        &format!("{CONFIGMAPS}/cm"),
        "application/merge-patch+json",
        r#"{"data":{"a":"changed"}}"#,
    )
    .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(
        entries(&patched.body),
        [
            update_entry(
                "creator",
                "v1",
                json!({"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
            ),
            update_entry("tester", "v1", json!({"f:data": {"f:a": {}}})),
            update_entry("updater", "v1", json!({"f:data": {"f:b": {}}})),
        ]
    );

    // A write that changes nothing writes nothing: not even the time of an entry.
    let again = send(
        &server,
        "PATCH",
        &format!("{CONFIGMAPS}/cm"),
        "application/merge-patch+json",
        r#"{"data":{"a":"changed"}}"#,
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(
        again.body["metadata"]["resourceVersion"],
        patched.body["metadata"]["resourceVersion"]
    );
    assert_eq!(
        again.body["metadata"]["managedFields"],
        patched.body["metadata"]["managedFields"]
    );

    // Sending an empty list resets managedFields; later writes are not tracked (upstream
    // tracks updates only of objects that have managedFields).
    let mut reset = again.body.clone();
    reset["metadata"]["managedFields"] = json!([]);
    let reset = send(
        &server,
        "PUT",
        &format!("{CONFIGMAPS}/cm?fieldManager=updater"),
        "application/json",
        &reset.to_string(),
    )
    .await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert!(
        reset.body["metadata"].get("managedFields").is_none(),
        "{}",
        reset.body
    );
}

#[tokio::test]
async fn defaulted_fields_belong_to_the_creator_and_status_is_reset() {
    let server = TestServer::start().await;
    let body = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
        "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}},
        "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}},
    });
    let created = send(
        &server,
        "POST",
        "/api/v1/namespaces/default/services?fieldManager=kubectl-create",
        "application/json",
        &body.to_string(),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    // Upstream: the decoded object is defaulted before the field manager sees it; status is
    // reset by the strategy's reset fields.
    assert_eq!(
        entries(&created.body),
        [update_entry(
            "kubectl-create",
            "v1",
            json!({"f:spec": {
                "f:internalTrafficPolicy": {},
                "f:ports": {".": {}, "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}, "f:protocol": {}, "f:targetPort": {}}},
                "f:selector": {},
                "f:sessionAffinity": {},
                "f:type": {},
            }})
        )]
    );
}

#[tokio::test]
async fn apply_creates_updates_conflicts_and_forces() {
    let server = TestServer::start().await;
    let created = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web?fieldManager=alice"),
        APPLY,
        &deployment(2, "nginx:1"),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        entries(&created.body),
        [apply_entry("alice", "apps/v1", deployment_fields(true))]
    );
    // Defaults apply to the merged object.
    assert_eq!(created.body["spec"]["revisionHistoryLimit"], 10);

    let updated = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web?fieldManager=alice"),
        APPLY,
        &deployment(3, "nginx:2"),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["spec"]["replicas"], 3);
    assert_eq!(
        updated.body["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:2"
    );
    assert_eq!(
        entries(&updated.body),
        [apply_entry("alice", "apps/v1", deployment_fields(true))]
    );

    // Another manager applying different values conflicts (upstream's message and causes).
    let conflict = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web?fieldManager=bob"),
        APPLY,
        &deployment(5, "nginx:3"),
    )
    .await;
    assert_eq!(conflict.status, 409, "{}", conflict.body);
    assert_eq!(
        conflict.body,
        json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .spec.replicas\n- .spec.template.spec.containers[name=\"nginx\"].image",
            "reason": "Conflict",
            "details": {"causes": [
                {"reason": "FieldManagerConflict", "message": "conflict with \"alice\"", "field": ".spec.replicas"},
                {"reason": "FieldManagerConflict", "message": "conflict with \"alice\"", "field": ".spec.template.spec.containers[name=\"nginx\"].image"},
            ]},
            "code": 409,
        })
    );

    // The same value is shared without conflict.
    let shared = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web?fieldManager=bob"),
        APPLY,
        &deployment(3, "nginx:2"),
    )
    .await;
    assert_eq!(shared.status, 200, "{}", shared.body);
    assert_eq!(
        entries(&shared.body),
        [
            apply_entry("alice", "apps/v1", deployment_fields(true)),
            apply_entry("bob", "apps/v1", deployment_fields(true)),
        ]
    );

    // force takes the field over.
    let forced = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web?fieldManager=bob&force=true"),
        APPLY,
        &deployment(7, "nginx:2"),
    )
    .await;
    assert_eq!(forced.status, 200, "{}", forced.body);
    assert_eq!(forced.body["spec"]["replicas"], 7);
    assert_eq!(
        entries(&forced.body),
        [
            apply_entry("alice", "apps/v1", deployment_fields(false)),
            apply_entry("bob", "apps/v1", deployment_fields(true)),
        ]
    );

    // An update of a field owned by an applier takes it over without conflict.
    let scaled = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":1}}"#,
    )
    .await;
    assert_eq!(scaled.status, 200, "{}", scaled.body);
    let managers: Vec<Value> = entries(&scaled.body)
        .iter()
        .map(|e| json!([e["manager"], e["operation"]]))
        .collect();
    assert_eq!(
        managers,
        [
            json!(["alice", "Apply"]),
            json!(["bob", "Apply"]),
            json!(["tester", "Update"])
        ]
    );
    let conflict = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web?fieldManager=bob"),
        APPLY,
        &deployment(7, "nginx:2"),
    )
    .await;
    assert_eq!(conflict.status, 409);
    assert_eq!(
        conflict.body["message"],
        "Apply failed with 1 conflict: conflict with \"tester\" using apps/v1: .spec.replicas"
    );
}

#[tokio::test]
async fn status_apply_dry_run_and_option_checks() {
    let server = TestServer::start().await;
    // A dry-run apply creates nothing.
    let dry = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web?fieldManager=alice&dryRun=All"),
        APPLY,
        &deployment(2, "nginx:1"),
    )
    .await;
    assert_eq!(dry.status, 201, "{}", dry.body);
    assert_eq!(entries(&dry.body).len(), 1);
    let missing = send(
        &server,
        "GET",
        &format!("{DEPLOYMENTS}/web"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(missing.status, 404);

    let created = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web?fieldManager=alice"),
        APPLY,
        &deployment(2, "nginx:1"),
    )
    .await;
    assert_eq!(created.status, 201);
    let version = created.body["metadata"]["resourceVersion"].clone();
    let dry = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web?fieldManager=alice&dryRun=All"),
        APPLY,
        &deployment(4, "nginx:1"),
    )
    .await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert_eq!(dry.body["spec"]["replicas"], 4);
    let live = send(
        &server,
        "GET",
        &format!("{DEPLOYMENTS}/web"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(live.body["spec"]["replicas"], 2);
    assert_eq!(live.body["metadata"]["resourceVersion"], version);

    // Apply to the status subresource: the entry names the subresource; spec is reset.
    let status = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 9},
        "status": {"replicas": 2, "observedGeneration": 1},
    });
    let applied = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web/status?fieldManager=controller"),
        APPLY,
        &status.to_string(),
    )
    .await;
    assert_eq!(applied.status, 200, "{}", applied.body);
    assert_eq!(applied.body["spec"]["replicas"], 2);
    assert_eq!(applied.body["status"]["replicas"], 2);
    let entries = entries(&applied.body);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(
        entries[1],
        json!({"manager": "controller", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
               "fieldsV1": {"f:status": {"f:observedGeneration": {}, "f:replicas": {}}}, "subresource": "status"})
    );
    let missing_status = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/nothing/status?fieldManager=controller"),
        APPLY,
        &status.to_string().replace("\"web\"", "\"nothing\""),
    )
    .await;
    assert_eq!(missing_status.status, 404, "{}", missing_status.body);

    // Option checks, with upstream's messages.
    let no_manager = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web"),
        APPLY,
        &deployment(2, "x"),
    )
    .await;
    assert_eq!(no_manager.status, 422);
    assert_eq!(
        no_manager.body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
    );
    let force = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web?force=false"),
        "application/merge-patch+json",
        "{}",
    )
    .await;
    assert_eq!(force.status, 422);
    assert_eq!(
        force.body["message"],
        "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"
    );
    let invalid = send(
        &server,
        "POST",
        &format!("{CONFIGMAPS}?fieldManager=a%07b"),
        "application/json",
        r#"{"metadata":{"name":"x"}}"#,
    )
    .await;
    assert_eq!(invalid.status, 422);
    assert_eq!(
        invalid.body["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Invalid value: \"a\\ab\": invalid character U+0007 (at position 1)"
    );

    // Duplicate keys: an error under Strict, warnings by default.
    let duplicated = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dup\ndata:\n  a: p\n  a: q\n";
    let strict = send(
        &server,
        "PATCH",
        &format!("{CONFIGMAPS}/dup?fieldManager=m&fieldValidation=Strict"),
        APPLY,
        duplicated,
    )
    .await;
    assert_eq!(strict.status, 400, "{}", strict.body);
    assert_eq!(
        strict.body["message"],
        "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 7: key \"a\" already set in map"
    );
    let warned = send(
        &server,
        "PATCH",
        &format!("{CONFIGMAPS}/dup?fieldManager=m"),
        APPLY,
        duplicated,
    )
    .await;
    assert_eq!(warned.status, 201, "{}", warned.body);
    assert_eq!(warned.body["data"]["a"], "q");
    assert_eq!(
        warned.warnings,
        ["299 - \"line 7: key \\\"a\\\" already set in map\""]
    );

    // A field the schema does not know fails the apply (upstream: a plain 500).
    let unknown = send(
        &server,
        "PATCH",
        &format!("{CONFIGMAPS}/dup?fieldManager=m"),
        APPLY,
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"spec":{}}"#,
    )
    .await;
    assert_eq!(unknown.status, 500, "{}", unknown.body);
    assert_eq!(
        unknown.body["message"],
        "failed to create typed patch object (/dup; /v1, Kind=ConfigMap): .spec: field not declared in schema"
    );
}

#[tokio::test]
async fn subresource_writes_record_their_subresource() {
    let server = TestServer::start().await;
    let created = send(
        &server,
        "POST",
        &format!("{DEPLOYMENTS}?fieldManager=creator"),
        "application/json",
        &deployment(2, "nginx:1"),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let creator = entries(&created.body);
    assert_eq!(creator.len(), 1);
    assert_eq!(creator[0]["fieldsV1"]["f:spec"]["f:replicas"], json!({}));

    // A scale: the entry is the parent's, at its version, without a time (upstream's
    // ScaleHandler); the creator loses the replicas.
    let scaled = send(
        &server,
        "PATCH",
        &format!("{DEPLOYMENTS}/web/scale?fieldManager=scaler"),
        "application/merge-patch+json",
        r#"{"spec":{"replicas":3}}"#,
    )
    .await;
    assert_eq!(scaled.status, 200, "{}", scaled.body);
    let live = send(
        &server,
        "GET",
        &format!("{DEPLOYMENTS}/web"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(live.body["spec"]["replicas"], 3);
    let fields = live.body["metadata"]["managedFields"].as_array().unwrap().clone();
    assert_eq!(
        fields[0],
        json!({"manager": "scaler", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
               "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"})
    );
    assert_eq!(fields[1]["manager"], "creator");
    assert!(fields[1]["fieldsV1"]["f:spec"].get("f:replicas").is_none());

    // A status update: the entry names the subresource; spec changes are reset.
    let mut status = live.body.clone();
    status["status"] = json!({"replicas": 3, "observedGeneration": 2});
    status["spec"]["paused"] = json!(true);
    let updated = send(
        &server,
        "PUT",
        &format!("{DEPLOYMENTS}/web/status?fieldManager=controller"),
        "application/json",
        &status.to_string(),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert!(updated.body["spec"].get("paused").is_none());
    let controller: Vec<Value> = entries(&updated.body)
        .into_iter()
        .filter(|e| e["manager"] == "controller")
        .collect();
    assert_eq!(
        controller,
        [
            json!({"manager": "controller", "operation": "Update", "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {"f:observedGeneration": {}, "f:replicas": {}}}, "subresource": "status"})
        ]
    );
}
