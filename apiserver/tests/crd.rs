//! CustomResourceDefinitions in-process: names acceptance and conflicts, Established,
//! dynamic registration in discovery (and again after a restart), custom resources through
//! the generic store (storage version, generation, status and scale subresources, Table
//! columns, selectable fields, deprecation warnings, server-side apply, watch), and the
//! deletion of a CRD with its custom resources. Tests of schema semantics (defaulting,
//! pruning, validation) are marked `needs crd schema` until the schema module is complete.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::TestServer;
use futures_util::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject, PostParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

const CRDS: &str = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
const WIDGETS: &str = "/apis/example.com/v1/namespaces/default/widgets";
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

/// A response: status, `Warning` headers, body.
struct Answer {
    status: u16,
    warnings: Vec<String>,
    body: Value,
}

async fn send(server: &TestServer, method: &str, path: &str, content_type: &str, body: &Value) -> Answer {
    send_with(server, method, path, content_type, "application/json", body).await
}

async fn send_with(
    server: &TestServer,
    method: &str,
    path: &str,
    content_type: &str,
    accept: &str,
    body: &Value,
) -> Answer {
    let bytes = match body {
        Value::Null => Vec::new(),
        Value::String(text) => text.as_bytes().to_vec(),
        other => serde_json::to_vec(other).unwrap(),
    };
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .header("accept", accept)
        .body(kube::client::Body::from(bytes))
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

async fn get(server: &TestServer, path: &str) -> Answer {
    send(server, "GET", path, "application/json", &Value::Null).await
}

/// Widgets: v1 (storage) and v1beta1 (deprecated), status and scale subresources, printer
/// columns, a selectable field, short name `wd` and category `all`.
fn widget_crd() -> Value {
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "color": {"type": "string", "default": "blue"},
                    "size": {"type": "integer", "minimum": 1},
                    "replicas": {"type": "integer"},
                },
            },
            "status": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer"},
                    "selector": {"type": "string"},
                    "phase": {"type": "string"},
                },
            },
        },
    });
    let version = |name: &str, storage: bool| {
        json!({
            "name": name,
            "served": true,
            "storage": storage,
            "schema": {"openAPIV3Schema": schema},
            "subresources": {
                "status": {},
                "scale": {
                    "specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas",
                    "labelSelectorPath": ".status.selector",
                },
            },
            "additionalPrinterColumns": [
                {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
                {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "description": "wanted"},
                {"name": "Phase", "type": "string", "jsonPath": ".status.phase", "priority": 1},
            ],
            "selectableFields": [{"jsonPath": ".spec.color"}],
        })
    };
    let mut beta = version("v1beta1", false);
    beta["deprecated"] = json!(true);
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "listKind": "WidgetList",
                "shortNames": ["wd"],
                "categories": ["all"],
            },
            "versions": [version("v1", true), beta],
        },
    })
}

/// Polls `path` until `done` holds (or fails after 10 s).
async fn wait_for(server: &TestServer, path: &str, done: impl Fn(&Answer) -> bool) -> Answer {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answer = get(server, path).await;
        if done(&answer) {
            return answer;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting on {path}: {}",
            answer.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn condition<'a>(crd: &'a Value, type_: &str) -> Option<&'a Value> {
    crd["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

async fn create_established(server: &TestServer, crd: &Value) -> Value {
    let created = send(server, "POST", CRDS, "application/json", crd).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let name = crd["metadata"]["name"].as_str().unwrap();
    let path = format!("{CRDS}/{name}");
    let answer = wait_for(server, &path, |a| {
        condition(&a.body, "Established").is_some_and(|c| c["status"] == "True")
    })
    .await;
    // Served as soon as Established is visible.
    answer.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn established_crds_are_discovered() {
    let server = TestServer::start().await;
    let crd = create_established(&server, &widget_crd()).await;
    let names = condition(&crd, "NamesAccepted").unwrap();
    assert_eq!(names["status"], "True");
    assert_eq!(names["reason"], "NoConflicts");
    assert_eq!(names["message"], "no conflicts found");
    let established = condition(&crd, "Established").unwrap();
    assert_eq!(established["reason"], "InitialNamesAccepted");
    assert_eq!(established["message"], "the initial names have been accepted");
    assert_eq!(crd["status"]["acceptedNames"]["plural"], "widgets");
    assert_eq!(crd["status"]["acceptedNames"]["shortNames"], json!(["wd"]));
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));

    let groups = get(&server, "/apis").await.body;
    let group = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "example.com")
        .unwrap_or_else(|| panic!("example.com not in {groups}"));
    assert_eq!(group["preferredVersion"]["version"], "v1");
    assert_eq!(
        group["versions"],
        json!([
            {"groupVersion": "example.com/v1", "version": "v1"},
            {"groupVersion": "example.com/v1beta1", "version": "v1beta1"},
        ])
    );
    assert_eq!(get(&server, "/apis/example.com").await.body["kind"], "APIGroup");
    let list = get(&server, "/apis/example.com/v1").await.body;
    let resources = list["resources"].as_array().unwrap();
    let widgets = resources.iter().find(|r| r["name"] == "widgets").unwrap();
    assert_eq!(widgets["singularName"], "widget");
    assert_eq!(widgets["namespaced"], true);
    assert_eq!(widgets["kind"], "Widget");
    assert_eq!(widgets["shortNames"], json!(["wd"]));
    assert_eq!(widgets["categories"], json!(["all"]));
    assert_eq!(
        widgets["verbs"],
        json!([
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch"
        ])
    );
    // base64(sha256("example.com/v1/Widget")[:8])
    assert_eq!(widgets["storageVersionHash"].as_str().unwrap().len(), 12);
    let scale = resources.iter().find(|r| r["name"] == "widgets/scale").unwrap();
    assert_eq!(scale["group"], "autoscaling");
    assert_eq!(scale["kind"], "Scale");
    assert!(resources.iter().any(|r| r["name"] == "widgets/status"));

    // Aggregated discovery lists the group too.
    let request = http::Request::get("/apis")
        .header(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json",
        )
        .body(Vec::new())
        .unwrap();
    let (status, body) = server.request(request).await;
    assert_eq!(status, 200);
    let aggregated: Value = serde_json::from_str(&body).unwrap();
    let item = aggregated["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["metadata"]["name"] == "example.com")
        .unwrap();
    let resource = &item["versions"][0]["resources"][0];
    assert_eq!(resource["resource"], "widgets");
    assert_eq!(resource["scope"], "Namespaced");
    assert_eq!(resource["shortNames"], json!(["wd"]));

    // OpenAPI v3 publishes the group version with the kind's schema.
    let index = get(&server, "/openapi/v3").await.body;
    let url = index["paths"]["apis/example.com/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap_or_else(|| panic!("no example.com/v1 in {index}"))
        .to_owned();
    assert!(index["paths"]["apis/apps/v1"].is_object());
    let document = get(&server, &url).await.body;
    let widget = &document["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(
        widget["x-kubernetes-group-version-kind"],
        json!([{"group": "example.com", "kind": "Widget", "version": "v1"}])
    );
    assert_eq!(
        widget["properties"]["spec"]["properties"]["color"]["type"],
        "string"
    );
    assert!(document["components"]["schemas"]["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"].is_object());

    // Discovery through kube's client sees it like any API.
    let discovery = kube::Discovery::new(server.client.clone()).run().await.unwrap();
    let (found, _) = discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .find(|(r, _)| r.kind == "Widget")
        .unwrap();
    assert_eq!(found.version, "v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicting_names_are_not_accepted() {
    let server = TestServer::start().await;
    create_established(&server, &widget_crd()).await;
    let mut other = widget_crd();
    other["metadata"]["name"] = json!("widgets2.example.com");
    other["spec"]["names"] = json!({"plural": "widgets2", "kind": "Gadget", "shortNames": ["wd"]});
    let created = send(&server, "POST", CRDS, "application/json", &other).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let crd = wait_for(&server, &format!("{CRDS}/widgets2.example.com"), |a| {
        condition(&a.body, "NamesAccepted").is_some()
    })
    .await
    .body;
    let names = condition(&crd, "NamesAccepted").unwrap();
    assert_eq!(names["status"], "False");
    assert_eq!(names["reason"], "ShortNamesConflict");
    assert_eq!(names["message"], "\"wd\" is already in use");
    let established = condition(&crd, "Established").unwrap();
    assert_eq!(established["status"], "False");
    assert_eq!(established["reason"], "NotAccepted");
    assert_eq!(get(&server, "/apis/example.com/v1/widgets2").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_use_the_generic_store() {
    let server = TestServer::start().await;
    create_established(&server, &widget_crd()).await;
    let ar = ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    };
    let widgets: Api<DynamicObject> = Api::namespaced_with(server.client.clone(), "default", &ar);
    let mut watch = widgets.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    let mut widget = DynamicObject::new("w1", &ar).within("default");
    widget.data = json!({"spec": {"color": "red", "replicas": 2}, "status": {"phase": "ignored"}});
    let created = widgets.create(&PostParams::default(), &widget).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.data.get("status").is_none(), "status is reset on create");
    assert_eq!(created.types.as_ref().unwrap().api_version, "example.com/v1");
    let managed = created.metadata.managed_fields.as_ref().unwrap();
    assert_eq!(managed[0].operation.as_deref(), Some("Update"));
    match watch.next().await.unwrap().unwrap() {
        WatchEvent::Added(object) => assert_eq!(object.metadata.name.as_deref(), Some("w1")),
        other => panic!("unexpected {other:?}"),
    }

    // Stored in the storage version, served in every served version.
    let stored = server
        .running()
        .store()
        .get("/example.com/widgets/default/w1")
        .unwrap()
        .unwrap();
    let stored: Value = serde_json::from_slice(&stored.value).unwrap();
    assert_eq!(stored["apiVersion"], "example.com/v1");
    let beta = get(&server, "/apis/example.com/v1beta1/namespaces/default/widgets/w1").await;
    assert_eq!(beta.status, 200);
    assert_eq!(beta.body["apiVersion"], "example.com/v1beta1");
    assert_eq!(
        beta.warnings,
        ["299 - \"example.com/v1beta1 Widget is deprecated\""]
    );
    assert!(get(&server, &format!("{WIDGETS}/w1")).await.warnings.is_empty());

    // The main resource ignores status; spec changes bump the generation.
    let mut current = get(&server, &format!("{WIDGETS}/w1")).await.body;
    current["spec"]["color"] = json!("green");
    current["status"] = json!({"phase": "ignored"});
    let updated = send(
        &server,
        "PUT",
        &format!("{WIDGETS}/w1"),
        "application/json",
        &current,
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["metadata"]["generation"], 2);
    assert!(updated.body.get("status").is_none());
    // Metadata changes do not.
    let labelled = send(
        &server,
        "PATCH",
        &format!("{WIDGETS}/w1"),
        "application/merge-patch+json",
        &json!({"metadata": {"labels": {"a": "b"}}}),
    )
    .await;
    assert_eq!(labelled.status, 200, "{}", labelled.body);
    assert_eq!(labelled.body["metadata"]["generation"], 2);

    // The status subresource changes only status and leaves the generation.
    let status = send(
        &server,
        "PATCH",
        &format!("{WIDGETS}/w1/status"),
        "application/merge-patch+json",
        &json!({"spec": {"color": "ignored"}, "status": {"phase": "Ready", "replicas": 1, "selector": "app=w1"}}),
    )
    .await;
    assert_eq!(status.status, 200, "{}", status.body);
    assert_eq!(status.body["status"]["phase"], "Ready");
    assert_eq!(status.body["spec"]["color"], "green");
    assert_eq!(status.body["metadata"]["generation"], 2);

    // Scale.
    let scale = get(&server, &format!("{WIDGETS}/w1/scale")).await.body;
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["replicas"], 1);
    assert_eq!(scale["status"]["selector"], "app=w1");
    let scaled = send(
        &server,
        "PATCH",
        &format!("{WIDGETS}/w1/scale"),
        "application/merge-patch+json",
        &json!({"spec": {"replicas": 5}}),
    )
    .await;
    assert_eq!(scaled.status, 200, "{}", scaled.body);
    assert_eq!(scaled.body["spec"]["replicas"], 5);
    let after = get(&server, &format!("{WIDGETS}/w1")).await.body;
    assert_eq!(after["spec"]["replicas"], 5);
    assert_eq!(after["metadata"]["generation"], 3);

    // Table output with the printer columns.
    let table = send_with(&server, "GET", WIDGETS, "application/json", TABLE, &Value::Null).await;
    assert_eq!(table.status, 200, "{}", table.body);
    let names: Vec<&str> = table.body["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Color", "Replicas", "Phase"]);
    assert_eq!(
        table.body["columnDefinitions"][1]["description"],
        "Custom resource definition column (in JSONPath format): .spec.color"
    );
    assert_eq!(table.body["columnDefinitions"][2]["description"], "wanted");
    assert_eq!(table.body["columnDefinitions"][3]["priority"], 1);
    assert_eq!(table.body["rows"][0]["cells"], json!(["w1", "green", 5, "Ready"]));

    // Selectable fields.
    let mut other = DynamicObject::new("w2", &ar).within("default");
    other.data = json!({"spec": {"color": "red"}});
    widgets.create(&PostParams::default(), &other).await.unwrap();
    let selected = get(&server, &format!("{WIDGETS}?fieldSelector=spec.color%3Dred")).await;
    assert_eq!(selected.status, 200, "{}", selected.body);
    let items = selected.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["metadata"]["name"], "w2");
    assert_eq!(selected.body["kind"], "WidgetList");
    let refused = get(&server, &format!("{WIDGETS}?fieldSelector=spec.size%3D1")).await;
    assert_eq!(refused.status, 400, "{}", refused.body);

    // Strategic merge patch is not for custom resources.
    let smp = send(
        &server,
        "PATCH",
        &format!("{WIDGETS}/w2"),
        "application/strategic-merge-patch+json",
        &json!({"spec": {"color": "x"}}),
    )
    .await;
    assert_eq!(smp.status, 415, "{}", smp.body);

    // Server-side apply.
    let applied = send(
        &server,
        "PATCH",
        &format!("{WIDGETS}/w3?fieldManager=tester"),
        "application/apply-patch+yaml",
        &Value::String(
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w3\nspec:\n  color: pink\n".into(),
        ),
    )
    .await;
    assert_eq!(applied.status, 201, "{}", applied.body);
    let entry = &applied.body["metadata"]["managedFields"][0];
    assert_eq!(entry["manager"], "tester");
    assert_eq!(entry["operation"], "Apply");
    assert_eq!(entry["fieldsV1"]["f:spec"]["f:color"], json!({}));

    // Deletecollection.
    let deleted = send(&server, "DELETE", WIDGETS, "application/json", &Value::Null).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(
        get(&server, WIDGETS).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_crd_deletes_its_custom_resources_first() {
    let server = TestServer::start().await;
    create_established(&server, &widget_crd()).await;
    let body = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    assert_eq!(
        send(&server, "POST", WIDGETS, "application/json", &body)
            .await
            .status,
        201
    );
    let deleted = send(
        &server,
        "DELETE",
        &format!("{CRDS}/widgets.example.com"),
        "application/json",
        &Value::Null,
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(
        deleted.body["metadata"]["finalizers"],
        json!(["customresourcecleanup.apiextensions.k8s.io"])
    );
    assert_eq!(condition(&deleted.body, "Terminating").unwrap()["status"], "True");
    // The custom resource is being deleted; its finalizer holds it (and the CRD).
    let held = wait_for(&server, &format!("{WIDGETS}/held"), |a| {
        a.body["metadata"]["deletionTimestamp"].is_string()
    })
    .await;
    let crd = get(&server, &format!("{CRDS}/widgets.example.com")).await.body;
    let terminating = condition(&crd, "Terminating").unwrap();
    assert_eq!(terminating["reason"], "InstanceDeletionInProgress");
    // Creating while the CRD terminates is forbidden.
    let refused = send(
        &server,
        "POST",
        WIDGETS,
        "application/json",
        &json!({"metadata": {"name": "late"}}),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        refused.body["message"],
        "widgets.example.com \"late\" is forbidden: create not allowed while custom resource definition is terminating"
    );
    let mut release = held.body;
    release["metadata"]["finalizers"] = json!([]);
    let released = send(
        &server,
        "PUT",
        &format!("{WIDGETS}/held"),
        "application/json",
        &release,
    )
    .await;
    assert_eq!(released.status, 200, "{}", released.body);
    wait_for(&server, &format!("{CRDS}/widgets.example.com"), |a| {
        a.status == 404
    })
    .await;
    wait_for(&server, "/apis/example.com/v1", |a| a.status == 404).await;
    let groups = get(&server, "/apis").await.body;
    assert!(!groups.to_string().contains("example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn established_crds_are_served_after_a_restart() {
    let server = TestServer::start().await;
    create_established(&server, &widget_crd()).await;
    let body = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "kept"}, "spec": {"color": "red"}});
    assert_eq!(
        send(&server, "POST", WIDGETS, "application/json", &body)
            .await
            .status,
        201
    );
    let dir = server.stop().await;
    let server = TestServer::start_in(dir).await;
    // Served from the first request on: registered at start-up from storage.
    let kept = get(&server, &format!("{WIDGETS}/kept")).await;
    assert_eq!(kept.status, 200, "{}", kept.body);
    assert_eq!(kept.body["spec"]["color"], "red");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_default_prune_and_validate() {
    let server = TestServer::start().await;
    create_established(&server, &widget_crd()).await;
    // Defaulting and pruning (with a Warn-level unknown field warning).
    let body = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "d"}, "spec": {"extra": 1}});
    let created = send(&server, "POST", WIDGETS, "application/json", &body).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["spec"], json!({"color": "blue"}));
    assert_eq!(created.warnings, ["299 - \"unknown field \\\"spec.extra\\\"\""]);
    // Strict field validation refuses it.
    let strict = send(
        &server,
        "POST",
        &format!("{WIDGETS}?fieldValidation=Strict"),
        "application/json",
        &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"}, "spec": {"extra": 1}}),
    )
    .await;
    assert_eq!(strict.status, 400, "{}", strict.body);
    assert_eq!(
        strict.body["message"],
        "Widget in version \"v1\" cannot be handled as a Widget: strict decoding error: unknown field \"spec.extra\""
    );
    // Validation with field paths.
    let invalid = send(
        &server,
        "POST",
        WIDGETS,
        "application/json",
        &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "v"}, "spec": {"size": 0}}),
    )
    .await;
    assert_eq!(invalid.status, 422, "{}", invalid.body);
    assert_eq!(
        invalid.body["message"],
        "Widget.example.com \"v\" is invalid: spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"
    );
}
