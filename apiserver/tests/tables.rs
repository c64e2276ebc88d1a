//! Table responses in-process (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): what a
//! row embeds of its object for `includeObject=None|Metadata|Object` (and by default), for
//! lists and single objects, in `meta.k8s.io/v1` and `v1beta1`, and the refusal of a value
//! upstream does not know.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestServer;
use serde_json::{Value, json};

const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";
const TABLE_BETA: &str = "application/json;as=Table;v=v1beta1;g=meta.k8s.io";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

async fn get(server: &TestServer, path: &str, accept: &str) -> (u16, Value) {
    let request = http::Request::get(path)
        .header("accept", accept)
        .body(Vec::new())
        .unwrap();
    let (status, body) = server.request(request).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

async fn create_configmap(server: &TestServer) {
    let body = json!({"metadata": {"name": "settings", "labels": {"app": "web"}}, "data": {"mode": "fast"}});
    let request = http::Request::post(CONFIGMAPS)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .unwrap();
    let (status, body) = server.request(request).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_embed_what_include_object_asks_for() {
    let server = TestServer::start().await;
    create_configmap(&server).await;
    let single = format!("{CONFIGMAPS}/settings");

    for path in [CONFIGMAPS.to_owned(), single.clone()] {
        // The default and `Metadata`: the object's PartialObjectMetadata.
        for query in ["", "?includeObject=Metadata"] {
            let (status, table) = get(&server, &format!("{path}{query}"), TABLE).await;
            assert_eq!(status, 200, "{table}");
            assert_eq!(table["kind"], "Table");
            assert_eq!(table["apiVersion"], "meta.k8s.io/v1");
            assert_eq!(table["rows"].as_array().unwrap().len(), 1, "{table}");
            let row = &table["rows"][0];
            assert_eq!(row["cells"][0], "settings");
            assert_eq!(row["cells"][1], 1);
            let object = &row["object"];
            assert_eq!(object["kind"], "PartialObjectMetadata", "{path}{query}");
            assert_eq!(object["apiVersion"], "meta.k8s.io/v1");
            assert_eq!(object["metadata"]["name"], "settings");
            assert_eq!(object["metadata"]["labels"]["app"], "web");
            assert!(object["metadata"]["uid"].is_string());
            assert!(object.get("data").is_none(), "{object}");
        }

        let (status, table) = get(&server, &format!("{path}?includeObject=None"), TABLE).await;
        assert_eq!(status, 200, "{table}");
        assert_eq!(table["rows"][0]["object"], Value::Null, "{table}");
        assert_eq!(table["rows"][0]["cells"][0], "settings");

        let (status, table) = get(&server, &format!("{path}?includeObject=Object"), TABLE).await;
        assert_eq!(status, 200, "{table}");
        let object = &table["rows"][0]["object"];
        assert_eq!(object["kind"], "ConfigMap", "{object}");
        assert_eq!(object["apiVersion"], "v1");
        assert_eq!(object["data"]["mode"], "fast");
        assert_eq!(object["metadata"]["name"], "settings");

        // v1beta1 Tables embed v1beta1 PartialObjectMetadata.
        let (status, table) = get(&server, &path, TABLE_BETA).await;
        assert_eq!(status, 200, "{table}");
        assert_eq!(table["apiVersion"], "meta.k8s.io/v1beta1");
        assert_eq!(table["rows"][0]["object"]["apiVersion"], "meta.k8s.io/v1beta1");

        let (status, status_body) = get(&server, &format!("{path}?includeObject=Everything"), TABLE).await;
        assert_eq!(status, 400, "{status_body}");
        assert_eq!(status_body["kind"], "Status");
        assert_eq!(status_body["reason"], "BadRequest");
        assert_eq!(
            status_body["message"],
            r#"unrecognized includeObject value: "Everything""#
        );
    }

    // Without a Table, `includeObject` means nothing.
    let (status, list) = get(
        &server,
        &format!("{CONFIGMAPS}?includeObject=Everything"),
        "application/json",
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["kind"], "ConfigMapList");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_list_column_definitions_of_the_resource() {
    let server = TestServer::start().await;
    create_configmap(&server).await;
    let (status, table) = get(&server, CONFIGMAPS, TABLE).await;
    assert_eq!(status, 200, "{table}");
    let columns: Vec<(&str, &str, i64)> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["type"].as_str().unwrap(),
                c["priority"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        columns,
        [("Name", "string", 0), ("Data", "string", 0), ("Age", "string", 0)]
    );
    assert!(table["metadata"]["resourceVersion"].is_string(), "{table}");
    // A resource whose registry uses the default table, paged.
    for name in ["reader", "writer"] {
        let body = json!({"metadata": {"name": name}, "rules": []});
        let request = http::Request::post("/apis/rbac.authorization.k8s.io/v1/clusterroles")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap();
        assert_eq!(server.request(request).await.0, 201);
    }
    let (status, table) = get(
        &server,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles?limit=1",
        TABLE,
    )
    .await;
    assert_eq!(status, 200, "{table}");
    let names: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Name", "Created At"]);
    assert_eq!(table["rows"].as_array().unwrap().len(), 1, "{table}");
    let created = table["rows"][0]["cells"][1].as_str().unwrap();
    assert!(created.len() == 20 && created.ends_with('Z'), "{created}");
    assert!(table["metadata"]["continue"].is_string(), "{table}");
}
