//! The REST API in-process, driven by kube::Client: CRUD, lists, watches, selectors, patches,
//! subresources, object lifecycle and error Statuses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::TestServer;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
        "data": {"key": "value"},
    }))
    .unwrap()
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> Box<kube::core::Status> {
    match result {
        Err(kube::Error::Api(status)) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_crud_and_errors() {
    let server = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");

    let created = cms
        .create(&PostParams::default(), &cm("a", &[("app", "web")]))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.as_deref().is_some_and(|u| u.len() == 36));
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    let rv = meta.resource_version.clone().unwrap();

    let err = api_error(cms.create(&PostParams::default(), &cm("a", &[])).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(err.message, "configmaps \"a\" already exists");

    let got = cms.get("a").await.unwrap();
    assert_eq!(got.data.unwrap()["key"], "value");
    assert_eq!(got.metadata.resource_version.as_deref(), Some(rv.as_str()));

    let mut changed = created.clone();
    changed.data = Some(BTreeMap::from([("key".to_string(), "other".to_string())]));
    let replaced = cms.replace("a", &PostParams::default(), &changed).await.unwrap();
    assert_ne!(replaced.metadata.resource_version.as_deref(), Some(rv.as_str()));
    // The old resourceVersion is stale now.
    let err = api_error(cms.replace("a", &PostParams::default(), &changed).await);
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("the object has been modified"),
        "{}",
        err.message
    );

    let patched = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"extra": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap().len(), 2);
    let patched = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::<()>::Json(
                serde_json::from_value(json!([{"op": "remove", "path": "/data/extra"}])).unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap().len(), 1);
    let patched = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Strategic(json!({"metadata": {"labels": {"tier": "front"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap().len(), 2);

    // A no-op update does not change the resourceVersion.
    let unchanged = cms
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"key": "other"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        unchanged.metadata.resource_version,
        patched.metadata.resource_version
    );

    let err = api_error(cms.get("missing").await);
    assert_eq!(
        (err.code, err.reason.as_str(), err.message.as_str()),
        (404, "NotFound", "configmaps \"missing\" not found")
    );

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert!(cms.get_opt("a").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_must_exist() {
    let server = TestServer::start().await;
    let namespaces: Api<Namespace> = Api::all(server.client.clone());
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|n| n.metadata.name.unwrap())
        .collect();
    for system in ["default", "kube-node-lease", "kube-public", "kube-system"] {
        assert!(names.contains(&system.to_string()), "{names:?}");
    }
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "nowhere");
    let err = api_error(cms.create(&PostParams::default(), &cm("a", &[])).await);
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generate_name_dry_run_and_validation() {
    let server = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    let mut generated = cm("", &[]);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let created = cms.create(&PostParams::default(), &generated).await.unwrap();
    let name = created.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let result = cms.create(&dry, &cm("dry", &[])).await.unwrap();
    assert!(result.metadata.uid.is_some());
    assert!(
        cms.get_opt("dry").await.unwrap().is_none(),
        "a dry run persists nothing"
    );

    let err = api_error(cms.create(&PostParams::default(), &cm("Not_Valid", &[])).await);
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message
            .starts_with("ConfigMap \"Not_Valid\" is invalid: metadata.name: Invalid value: \"Not_Valid\""),
        "{}",
        err.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_paginate_and_select() {
    let server = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    for i in 0..25 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        cms.create(
            &PostParams::default(),
            &cm(&format!("cm-{i:02}"), &[("tier", tier)]),
        )
        .await
        .unwrap();
    }
    // Across namespaces, a name selector is a list like any other (the name is not a path).
    let everywhere: Api<ConfigMap> = Api::all(server.client.clone());
    let named = everywhere
        .list(&ListParams::default().fields("metadata.name=cm-03"))
        .await
        .unwrap();
    assert_eq!(named.items.len(), 1);
    assert_eq!(named.items[0].metadata.namespace.as_deref(), Some("default"));
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(10);
    let mut pages = 0;
    loop {
        let page = cms.list(&params).await.unwrap();
        pages += 1;
        names.extend(page.items.into_iter().map(|c| c.metadata.name.unwrap()));
        // Writes between pages do not show up in the continued list.
        cms.create(&PostParams::default(), &cm(&format!("late-{pages}"), &[]))
            .await
            .unwrap();
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => {
                assert!(page.metadata.remaining_item_count.is_some());
                params = params.continue_token(&token);
            }
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names.len(), 25, "{names:?}");

    let odd = cms.list(&ListParams::default().labels("tier=odd")).await.unwrap();
    assert_eq!(odd.items.len(), 12);
    let not_even = cms
        .list(&ListParams::default().labels("tier notin (even)"))
        .await
        .unwrap();
    assert_eq!(not_even.items.len(), 12 + 3, "no tier label counts as not even");
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=cm-03"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let selected_pages = cms
        .list(&ListParams::default().labels("tier=even").limit(5))
        .await
        .unwrap();
    assert_eq!(selected_pages.items.len(), 5);
    assert!(
        selected_pages.metadata.remaining_item_count.is_none(),
        "no count with selectors"
    );

    let err = api_error(cms.list(&ListParams::default().labels("tier in (a")).await);
    assert_eq!(
        (err.code, err.message.as_str()),
        (400, "unable to parse requirement: found '', expected: ',' or ')'")
    );
    let err = api_error(cms.list(&ListParams::default().fields("spec.nodeName=x")).await);
    assert_eq!(
        err.message,
        "\"spec.nodeName\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );

    let metadata = cms
        .list_metadata(&ListParams::default().labels("tier=odd"))
        .await
        .unwrap();
    assert_eq!(metadata.items.len(), 12);
    assert_eq!(
        metadata.items[0].types.as_ref().unwrap().kind,
        "PartialObjectMetadata"
    );

    let deleted = cms
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("tier=odd"),
        )
        .await
        .unwrap();
    assert!(deleted.is_left());
    assert_eq!(
        cms.list(&ListParams::default().labels("tier=odd"))
            .await
            .unwrap()
            .items
            .len(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_see_adds_modifications_deletes_and_selector_transitions() {
    let server = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    let start = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut all = cms.watch(&WatchParams::default(), &start).await.unwrap().boxed();
    let mut selected = cms
        .watch(&WatchParams::default().labels("app=web"), &start)
        .await
        .unwrap()
        .boxed();

    cms.create(&PostParams::default(), &cm("w", &[("app", "web")]))
        .await
        .unwrap();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v2"}})),
    )
    .await
    .unwrap();
    cms.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}})),
    )
    .await
    .unwrap();
    cms.delete("w", &DeleteParams::default()).await.unwrap();

    let mut kinds = Vec::new();
    while kinds.len() < 4 {
        match tokio::time::timeout(Duration::from_secs(10), all.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(_) => kinds.push("ADDED"),
            WatchEvent::Modified(_) => kinds.push("MODIFIED"),
            WatchEvent::Deleted(_) => kinds.push("DELETED"),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(kinds, ["ADDED", "MODIFIED", "MODIFIED", "DELETED"]);

    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(10), selected.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Added(_) => kinds.push("ADDED"),
            WatchEvent::Modified(_) => kinds.push("MODIFIED"),
            WatchEvent::Deleted(cm) => {
                assert_eq!(
                    cm.metadata.labels.unwrap()["app"],
                    "web",
                    "the object as it was when it still matched"
                );
                kinds.push("DELETED");
            }
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(
        kinds,
        ["ADDED", "MODIFIED", "DELETED"],
        "leaving the selection is a DELETED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalizers_hold_deletion_until_removed() {
    let server = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    let mut object = cm("held", &[]);
    object.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &object).await.unwrap();
    let pending = cms.delete("held", &DeleteParams::default()).await.unwrap();
    let pending = pending.left().expect("a pending deletion returns the object");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(cms.get_opt("held").await.unwrap().is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(
        cms.get_opt("held").await.unwrap().is_none(),
        "removing the last finalizer deletes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_scale_subresources() {
    let server = TestServer::start().await;
    let deployments: Api<Deployment> = Api::namespaced(server.client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        },
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let scale = deployments.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(5)
    );

    let status = deployments
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(status.status.unwrap().replicas, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_upstream_statuses() {
    let server = TestServer::start().await;
    let post = |path: &str, content_type: &str, body: Vec<u8>| {
        http::Request::post(path)
            .header("content-type", content_type)
            .body(body)
            .unwrap()
    };
    let (code, body) = server
        .request(post(
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            b"{not json".to_vec(),
        ))
        .await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = server
        .request(post(
            "/api/v1/namespaces/default/configmaps",
            "text/plain",
            b"x".to_vec(),
        ))
        .await;
    assert_eq!(code, 415, "{body}");
    let big = format!(
        r#"{{"metadata":{{"name":"big"}},"data":{{"k":"{}"}}}}"#,
        "x".repeat(3 * 1024 * 1024)
    );
    let (code, body) = server
        .request(post(
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            big.into_bytes(),
        ))
        .await;
    assert_eq!(code, 413, "{body}");
    assert!(
        body.contains("Request entity too large: limit is 3145728"),
        "{body}"
    );
    let (code, _) = server.get_raw("/api/v1/nosuchresources").await;
    assert_eq!(code, 404);
    let (code, _) = server.get_raw("/apis/apps/v1beta1/deployments").await;
    assert_eq!(code, 404);
    let (code, body) = server
        .request(
            http::Request::delete("/api/v1/namespaces")
                .body(Vec::new())
                .unwrap(),
        )
        .await;
    assert_eq!(code, 405, "namespaces have no deletecollection: {body}");
    let (code, body) = server
        .request(post(
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            br#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"x"}}"#.to_vec(),
        ))
        .await;
    assert_eq!(code, 400);
    assert!(body.contains("does not match the expected API version"), "{body}");
    // The log of, or exec in, a pod that does not exist.
    let (code, body) = server.get_raw("/api/v1/namespaces/default/pods/x/log").await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains(r#"pods \"x\" not found"#), "{body}");
    let (code, body) = server
        .get_raw("/api/v1/namespaces/default/pods/x/exec?command=ls&stdout=1")
        .await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains(r#"pods \"x\" not found"#), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_every_group() {
    let server = TestServer::start().await;
    let discovery = kube::discovery::Discovery::new(server.client.clone())
        .run()
        .await
        .unwrap();
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_owned()).collect();
    for group in [
        "",
        "apps",
        "batch",
        "rbac.authorization.k8s.io",
        "networking.k8s.io",
        "storage.k8s.io",
        "coordination.k8s.io",
    ] {
        assert!(
            groups.iter().any(|g| g == group),
            "{group} missing from {groups:?}"
        );
    }
    let apps = discovery.groups().find(|g| g.name() == "apps").unwrap();
    let (deployments, caps) = apps.recommended_kind("Deployment").unwrap();
    assert_eq!(deployments.plural, "deployments");
    assert!(caps.supports_operation(kube::discovery::verbs::WATCH));
    let (code, body) = server.get_raw("/api").await;
    assert_eq!(code, 200);
    assert!(body.contains("\"versions\":[\"v1\"]"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_deletion_terminates_and_refuses_new_content() {
    let server = TestServer::start().await;
    let namespaces: Api<Namespace> = Api::all(server.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap();
    let created = namespaces.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(created.spec.unwrap().finalizers.unwrap(), ["kubernetes"]);
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = namespaces.get("doomed").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.status.unwrap().phase.as_deref(), Some("Terminating"));
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "doomed");
    let err = api_error(cms.create(&PostParams::default(), &cm("late", &[])).await);
    assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
    assert!(
        err.message.contains("because it is being terminated"),
        "{}",
        err.message
    );

    let err = api_error(namespaces.delete("kube-system", &DeleteParams::default()).await);
    assert_eq!(err.code, 403);

    // Termination sets only the deletionTimestamp, as upstream's namespace REST does.
    let mut terminating = namespaces.get("doomed").await.unwrap();
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, None);
    // A metadata finalizer removed while `kubernetes` remains does not delete it.
    let held: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "held", "finalizers": ["example.com/x"]}}))
            .unwrap();
    namespaces.create(&PostParams::default(), &held).await.unwrap();
    namespaces.delete("held", &DeleteParams::default()).await.unwrap();
    namespaces
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    let held = namespaces.get("held").await.unwrap();
    assert_eq!(held.spec.unwrap().finalizers.unwrap(), ["kubernetes"]);
    // Removing the last spec finalizer through `finalize` deletes the namespace.
    terminating = namespaces.get("doomed").await.unwrap();
    terminating.spec.as_mut().unwrap().finalizers = Some(vec![]);
    namespaces
        .replace_subresource("finalize", "doomed", &PostParams::default(), &terminating)
        .await
        .unwrap();
    assert!(namespaces.get_opt("doomed").await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_bind_evict_and_delete_gracefully() {
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let server = TestServer::start().await;
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    let pod = |name: &str| -> Pod {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})).unwrap()
    };
    for name in ["p1", "p2"] {
        pods.create(&PostParams::default(), &pod(name)).await.unwrap();
    }
    // Binding assigns a node once.
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p1"}, "target": {"kind": "Node", "name": "node-a"}});
    let request = http::Request::post("/api/v1/namespaces/default/pods/p1/binding")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).unwrap())
        .unwrap();
    let (code, body) = server.request(request).await;
    assert_eq!(code, 201, "{body}");
    let bound = pods.get("p1").await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("node-a"));
    let conditions = bound.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True")
    );
    let request = http::Request::post("/api/v1/namespaces/default/pods/p1/binding")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).unwrap())
        .unwrap();
    assert_eq!(server.request(request).await.0, 409);

    // A scheduled pod is deleted gracefully; an unscheduled one at once.
    let pending = pods.delete("p1", &DeleteParams::default()).await.unwrap();
    let pending = pending.left().unwrap();
    assert_eq!(pending.metadata.deletion_grace_period_seconds, Some(30));
    assert!(pods.get_opt("p1").await.unwrap().is_some());
    pods.delete("p1", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(pods.get_opt("p1").await.unwrap().is_none());

    // A budget that allows no disruption blocks the eviction with 429.
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(server.client.clone(), "default");
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "db"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}})).unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    pdbs.patch_status("db", &PatchParams::default(), &Patch::Merge(json!({"status": {"disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1, "observedGeneration": 1}})))
        .await
        .unwrap();
    // A pending pod is not guarded by its budget; a running and ready one is.
    pods.patch_status(
        "p2",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
        ),
    )
    .await
    .unwrap();
    let err = api_error(pods.evict("p2", &Default::default()).await);
    assert_eq!((err.code, err.reason.as_str()), (429, "TooManyRequests"));
    pdbs.patch_status(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"disruptionsAllowed": 1}})),
    )
    .await
    .unwrap();
    pods.evict("p2", &Default::default()).await.unwrap();
    assert!(pods.get_opt("p2").await.unwrap().is_none());
    let budget = pdbs.get("db").await.unwrap().status.unwrap();
    assert_eq!(budget.disruptions_allowed, 0);
    assert!(budget.disrupted_pods.unwrap().contains_key("p2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_lists_end_with_the_initial_events_bookmark() {
    let server = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(server.client.clone(), "default");
    for i in 0..3 {
        cms.create(&PostParams::default(), &cm(&format!("s{i}"), &[]))
            .await
            .unwrap();
    }
    let (code, body) = server
        .get_raw("/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1")
        .await;
    assert_eq!(code, 200, "{body}");
    let events: Vec<serde_json::Value> = body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let added = events.iter().filter(|e| e["type"] == "ADDED").count();
    assert_eq!(added, 3, "{body}");
    let bookmark = events.iter().find(|e| e["type"] == "BOOKMARK").unwrap();
    assert_eq!(
        bookmark["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    let position = events.iter().position(|e| e["type"] == "BOOKMARK").unwrap();
    assert_eq!(position, 3, "the bookmark follows the initial events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_requests_record_their_requester() {
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    let server = TestServer::start().await;
    let csrs: Api<CertificateSigningRequest> = Api::all(server.client.clone());
    let pem = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBADCBpwIBADAXMRUwEwYDVQQDDAxzeXN0ZW06bm9kZTphMFkwEwYHKoZIzj0C\n-----END CERTIFICATE REQUEST-----\n";
    let csr: CertificateSigningRequest = serde_json::from_value(json!({
        "metadata": {"name": "node-a"},
        "spec": {
            "request": base64_encode(pem.as_bytes()),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
            "username": "forged",
        },
    }))
    .unwrap();
    let created = csrs.create(&PostParams::default(), &csr).await.unwrap();
    let spec = created.spec;
    assert_eq!(
        spec.username.as_deref(),
        Some("admin"),
        "the requester is the authenticated user, not the body"
    );
    assert!(spec.groups.unwrap().contains(&"system:masters".to_owned()));
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_orphan_their_dependents_by_default() {
    use k8s_openapi::api::batch::v1::Job;
    let server = TestServer::start().await;
    let jobs: Api<Job> = Api::namespaced(server.client.clone(), "default");
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "once"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
    }))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    // Deleting without a policy warns (here a job that does not exist).
    let request = http::Request::delete("/apis/batch/v1/namespaces/default/jobs/missing")
        .body(kube::client::Body::from(Vec::new()))
        .unwrap();
    let response = server.client.send(request).await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let warning = response
        .headers()
        .get("warning")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        warning,
        "299 - \"child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning\""
    );
    // batch/v1 keeps the old default (upstream's DefaultGarbageCollectionPolicy): the
    // `orphan` finalizer holds the Job for the garbage collector.
    let pending = jobs.delete("once", &DeleteParams::default()).await.unwrap();
    let pending = pending.left().unwrap();
    assert_eq!(pending.metadata.finalizers.unwrap(), ["orphan"]);
    assert!(pending.metadata.deletion_timestamp.is_some());
    // Deleting again in the background drops the orphan finalizer, and with it the Job.
    jobs.delete("once", &DeleteParams::background()).await.unwrap();
    assert!(jobs.get_opt("once").await.unwrap().is_none());
}
