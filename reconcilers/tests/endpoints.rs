//! The endpoints and EndpointSlice controllers against the API server in-process: pods made
//! Running and Ready (or not) through `pods/status` as a kubelet would, on a Node object with
//! a zone. Endpoints and slices follow readiness, termination, deletion and label changes;
//! headless services carry hostnames; slices split at 100 endpoints; idle services cause no
//! writes; the objects of deleted services go.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::{Cluster, eventually};
use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

const SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";

async fn node(client: &kube::Client) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node = serde_json::from_value(json!({"metadata": {"name": "n1",
        "labels": {"topology.kubernetes.io/zone": "zone-a", "kubernetes.io/hostname": "n1"}}}))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
}

async fn service(api: &Api<Service>, spec: serde_json::Value) {
    let mut spec = spec;
    if spec.get("selector").is_none() {
        spec["selector"] = json!({"app": "web"});
    }
    let svc =
        serde_json::from_value(json!({"metadata": {"name": "web", "labels": {"team": "a"}}, "spec": spec}))
            .unwrap();
    api.create(&PostParams::default(), &svc).await.unwrap();
}

async fn pod(api: &Api<Pod>, name: &str, extra_spec: serde_json::Value) {
    let mut spec = json!({"nodeName": "n1", "containers": [{"name": "app", "image": "nginx",
        "ports": [{"name": "http", "containerPort": 8080}]}]});
    for (k, v) in extra_spec.as_object().unwrap() {
        spec[k] = v.clone();
    }
    let pod =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "web"}}, "spec": spec}))
            .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
}

/// Reports the pod Running with `ip`, Ready or not.
async fn run(api: &Api<Pod>, name: &str, ip: &str, ready: bool) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let status = if ready { "True" } else { "False" };
    let patch = json!({"status": {
        "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "startTime": now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": status, "lastTransitionTime": now},
            {"type": "Ready", "status": status, "lastTransitionTime": now},
        ],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

/// (ready IPs, not-ready IPs) of the Endpoints, each sorted.
fn endpoint_ips(endpoints: &Endpoints) -> (Vec<String>, Vec<String>) {
    let mut ready = Vec::new();
    let mut not_ready = Vec::new();
    for subset in endpoints.subsets.iter().flatten() {
        ready.extend(subset.addresses.iter().flatten().map(|a| a.ip.clone()));
        not_ready.extend(subset.not_ready_addresses.iter().flatten().map(|a| a.ip.clone()));
    }
    ready.sort();
    not_ready.sort();
    (ready, not_ready)
}

async fn endpoints_become(api: &Api<Endpoints>, ready: &[&str], not_ready: &[&str]) -> Endpoints {
    eventually(&format!("endpoints {ready:?} / {not_ready:?}"), 30, || async {
        let endpoints = api.get_opt("web").await.unwrap()?;
        let (r, n) = endpoint_ips(&endpoints);
        (r == ready && n == not_ready).then_some(endpoints)
    })
    .await
}

async fn slices_of(api: &Api<EndpointSlice>) -> Vec<EndpointSlice> {
    api.list(&ListParams::default().labels("kubernetes.io/service-name=web"))
        .await
        .unwrap()
        .items
}

/// IP -> (ready, serving, terminating) over every slice of the service.
fn slice_conditions(slices: &[EndpointSlice]) -> BTreeMap<String, (bool, bool, bool)> {
    slices
        .iter()
        .flat_map(|s| s.endpoints.iter())
        .map(|e| {
            let c = e.conditions.clone().unwrap_or_default();
            (
                e.addresses[0].clone(),
                (
                    c.ready.unwrap_or(false),
                    c.serving.unwrap_or(false),
                    c.terminating.unwrap_or(false),
                ),
            )
        })
        .collect()
}

async fn slices_become(
    api: &Api<EndpointSlice>,
    expected: &[(&str, (bool, bool, bool))],
) -> Vec<EndpointSlice> {
    let expected: BTreeMap<String, (bool, bool, bool)> =
        expected.iter().map(|(ip, c)| ((*ip).to_owned(), *c)).collect();
    eventually(&format!("slices {expected:?}"), 30, || async {
        let slices = slices_of(api).await;
        (slice_conditions(&slices) == expected).then_some(slices)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_and_slices_follow_pod_readiness_and_termination() {
    let cluster = Cluster::start(&["endpoint", "endpointslice"]).await;
    let client = cluster.client.clone();
    node(&client).await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    service(
        &services,
        json!({"ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http", "appProtocol": "http"}]}),
    )
    .await;
    // No pods yet: Endpoints without subsets and one placeholder slice.
    let empty = endpoints_become(&endpoints, &[], &[]).await;
    assert_eq!(empty.subsets, None);
    let placeholder = slices_become(&slices, &[]).await;
    assert_eq!(placeholder.len(), 1, "{placeholder:?}");
    assert!(placeholder[0].ports.as_ref().is_none_or(Vec::is_empty));

    pod(&pods, "a", json!({})).await;
    pod(&pods, "b", json!({})).await;
    run(&pods, "a", "10.244.0.10", true).await;
    run(&pods, "b", "10.244.0.11", false).await;
    let current = endpoints_become(&endpoints, &["10.244.0.10"], &["10.244.0.11"]).await;
    let labels = current.labels();
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(
        labels
            .get("endpoints.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("endpoint-controller")
    );
    assert!(!labels.contains_key("service.kubernetes.io/headless"));
    // The last-change-trigger-time annotation depends on which watch event woke the
    // reconcile (upstream's tracker alike); its rules are unit-tested in the controller.
    let subset = &current.subsets.as_ref().unwrap()[0];
    let port = &subset.ports.as_ref().unwrap()[0];
    assert_eq!(
        (
            port.name.as_deref(),
            port.port,
            port.protocol.as_deref(),
            port.app_protocol.as_deref()
        ),
        (Some("http"), 8080, Some("TCP"), Some("http"))
    );
    let address = &subset.addresses.as_ref().unwrap()[0];
    assert_eq!(address.node_name.as_deref(), Some("n1"));
    let target = address.target_ref.as_ref().unwrap();
    assert_eq!(
        (target.kind.as_deref(), target.name.as_deref()),
        (Some("Pod"), Some("a"))
    );
    assert_eq!(target.uid, pods.get("a").await.unwrap().metadata.uid);

    let found = slices_become(
        &slices,
        &[
            ("10.244.0.10", (true, true, false)),
            ("10.244.0.11", (false, false, false)),
        ],
    )
    .await;
    // The placeholder was reused for the endpoints rather than replaced.
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].name_any(), placeholder[0].name_any());
    let slice = &found[0];
    assert!(slice.name_any().starts_with("web-"), "{}", slice.name_any());
    let labels = slice.labels();
    assert_eq!(
        labels
            .get("endpointslice.kubernetes.io/managed-by")
            .map(String::as_str),
        Some(SLICE_CONTROLLER)
    );
    assert_eq!(
        labels.get("kubernetes.io/service-name").map(String::as_str),
        Some("web")
    );
    assert_eq!(labels.get("team").map(String::as_str), Some("a"));
    let owner = &slice.owner_references()[0];
    let svc = services.get("web").await.unwrap();
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            Some(&owner.uid),
            owner.controller
        ),
        ("Service", "web", svc.metadata.uid.as_ref(), Some(true))
    );
    let endpoint = slice
        .endpoints
        .iter()
        .find(|e| e.addresses == ["10.244.0.10"])
        .unwrap();
    assert_eq!(endpoint.zone.as_deref(), Some("zone-a"));
    assert_eq!(endpoint.node_name.as_deref(), Some("n1"));
    assert_eq!(endpoint.target_ref.as_ref().unwrap().name.as_deref(), Some("a"));
    let port = &slice.ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port, port.app_protocol.as_deref()),
        (Some("http"), Some(8080), Some("http"))
    );

    // b turns ready.
    run(&pods, "b", "10.244.0.11", true).await;
    endpoints_become(&endpoints, &["10.244.0.10", "10.244.0.11"], &[]).await;
    slices_become(
        &slices,
        &[
            ("10.244.0.10", (true, true, false)),
            ("10.244.0.11", (true, true, false)),
        ],
    )
    .await;

    // a is being deleted (no kubelet finishes it): out of Endpoints, terminating in slices.
    pods.delete("a", &DeleteParams::default()).await.unwrap();
    endpoints_become(&endpoints, &["10.244.0.11"], &[]).await;
    slices_become(
        &slices,
        &[
            ("10.244.0.10", (false, true, true)),
            ("10.244.0.11", (true, true, false)),
        ],
    )
    .await;
    pods.delete("a", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    slices_become(&slices, &[("10.244.0.11", (true, true, false))]).await;

    // b's labels no longer match: it leaves the service.
    pods.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .unwrap();
    endpoints_become(&endpoints, &[], &[]).await;
    let back_to_placeholder = slices_become(&slices, &[]).await;
    assert_eq!(back_to_placeholder.len(), 1);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headless_services_publish_hostnames_and_not_ready_addresses() {
    let cluster = Cluster::start(&["endpoint", "endpointslice"]).await;
    let client = cluster.client.clone();
    node(&client).await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    service(
        &services,
        json!({"clusterIP": "None", "publishNotReadyAddresses": true}),
    )
    .await;
    pod(&pods, "web-0", json!({"hostname": "web-0", "subdomain": "web"})).await;
    run(&pods, "web-0", "10.244.0.20", false).await;
    let current = endpoints_become(&endpoints, &["10.244.0.20"], &[]).await;
    assert_eq!(
        current
            .labels()
            .get("service.kubernetes.io/headless")
            .map(String::as_str),
        Some("")
    );
    let subset = &current.subsets.as_ref().unwrap()[0];
    assert_eq!(subset.ports, None);
    assert_eq!(
        subset.addresses.as_ref().unwrap()[0].hostname.as_deref(),
        Some("web-0")
    );
    // Published although not ready: ready in the slice, but not serving.
    let found = slices_become(&slices, &[("10.244.0.20", (true, false, false))]).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].endpoints[0].hostname.as_deref(), Some("web-0"));
    assert_eq!(
        found[0]
            .labels()
            .get("service.kubernetes.io/headless")
            .map(String::as_str),
        Some("")
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_split_at_100_endpoints_and_idle_services_are_not_rewritten() {
    let cluster = Cluster::start(&["endpoint", "endpointslice"]).await;
    let client = cluster.client.clone();
    node(&client).await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    service(
        &services,
        json!({"ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}),
    )
    .await;
    let count = 130;
    let ips: Vec<String> = (0..count).map(|i| format!("10.244.1.{}", i + 1)).collect();
    futures_util::future::join_all((0..count).map(|i| {
        let pods = pods.clone();
        let ip = ips[i].clone();
        async move {
            let name = format!("p{i:03}");
            pod(&pods, &name, json!({})).await;
            run(&pods, &name, &ip, true).await;
        }
    }))
    .await;
    let mut sorted: Vec<&str> = ips.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let expected: Vec<(&str, (bool, bool, bool))> =
        sorted.iter().map(|ip| (*ip, (true, true, false))).collect();
    let found = slices_become(&slices, &expected).await;
    let mut sizes: Vec<usize> = found.iter().map(|s| s.endpoints.len()).collect();
    sizes.sort_unstable();
    assert_eq!(sizes.iter().sum::<usize>(), count);
    assert!(sizes.iter().all(|n| *n <= 100), "{sizes:?}");
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    let current = endpoints_become(&endpoints, &sorted, &[]).await;

    // A change that does not matter to endpoints writes nothing.
    let versions = |slices: &[EndpointSlice]| -> BTreeMap<String, String> {
        slices
            .iter()
            .map(|s| (s.name_any(), s.resource_version().unwrap()))
            .collect()
    };
    let before = versions(&found);
    pods.patch(
        "p000",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"note": "x"}}})),
    )
    .await
    .unwrap();
    // Then a change that does, on one pod: only its slice is rewritten.
    run(&pods, "p001", "10.244.1.2", false).await;
    let mut changed = expected.clone();
    for entry in &mut changed {
        if entry.0 == "10.244.1.2" {
            entry.1 = (false, false, false);
        }
    }
    let after = versions(&slices_become(&slices, &changed).await);
    let rewritten: Vec<&String> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(rewritten.len(), 1, "{before:?} {after:?}");
    let latest = endpoints.get("web").await.unwrap();
    assert_ne!(latest.resource_version(), current.resource_version());
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_services_lose_their_endpoints_and_slices() {
    let cluster = Cluster::start(&["endpoint", "endpointslice", "garbage-collector-controller"]).await;
    let client = cluster.client.clone();
    node(&client).await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    service(&services, json!({"ports": [{"port": 80, "protocol": "TCP"}]})).await;
    pod(&pods, "a", json!({})).await;
    run(&pods, "a", "10.244.0.30", true).await;
    endpoints_become(&endpoints, &["10.244.0.30"], &[]).await;
    slices_become(&slices, &[("10.244.0.30", (true, true, false))]).await;
    // Endpoints a user made for a service that does not exist are left alone.
    let manual: Endpoints = serde_json::from_value(json!({"metadata": {"name": "manual"},
        "subsets": [{"addresses": [{"ip": "10.1.2.3"}], "ports": [{"port": 80}]}]}))
    .unwrap();
    endpoints.create(&PostParams::default(), &manual).await.unwrap();

    services.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("endpoints deleted", 30, || async {
        endpoints.get_opt("web").await.unwrap().is_none().then_some(())
    })
    .await;
    eventually("slices collected", 30, || async {
        slices_of(&slices).await.is_empty().then_some(())
    })
    .await;
    assert!(endpoints.get_opt("manual").await.unwrap().is_some());
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_of_services_without_selectors_are_mirrored_into_slices() {
    let cluster = Cluster::start(&["endpoint", "endpointslice", "endpointslicemirroring"]).await;
    let client = cluster.client.clone();
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), "default");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let mirrored = |name: &'static str| {
        let slices = slices.clone();
        async move {
            slices
                .list(&ListParams::default().labels(&format!(
                    "kubernetes.io/service-name={name},endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io"
                )))
                .await
                .unwrap()
                .items
        }
    };
    let svc = serde_json::from_value(json!({"metadata": {"name": "db"},
        "spec": {"ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}}))
    .unwrap();
    services.create(&PostParams::default(), &svc).await.unwrap();
    let ep: Endpoints =
        serde_json::from_value(json!({"metadata": {"name": "db", "labels": {"tier": "data"}},
        "subsets": [{"addresses": [{"ip": "192.168.1.10"}], "notReadyAddresses": [{"ip": "192.168.1.11"}],
                     "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}]}))
        .unwrap();
    endpoints.create(&PostParams::default(), &ep).await.unwrap();
    let found = eventually("a mirrored slice", 30, || async {
        let found = mirrored("db").await;
        (found.len() == 1 && found[0].endpoints.len() == 2).then_some(found)
    })
    .await;
    let slice = &found[0];
    assert_eq!(slice.labels().get("tier").map(String::as_str), Some("data"));
    assert_eq!(slice.owner_references()[0].kind, "Endpoints");
    let ready: BTreeMap<String, Option<bool>> = slice
        .endpoints
        .iter()
        .map(|e| {
            (
                e.addresses[0].clone(),
                e.conditions.as_ref().and_then(|c| c.ready),
            )
        })
        .collect();
    assert_eq!(
        ready,
        BTreeMap::from([
            ("192.168.1.10".to_owned(), Some(true)),
            ("192.168.1.11".to_owned(), Some(false))
        ])
    );
    // The controllers for selected services leave it alone: no Endpoints rewrite, no slices.
    let all = slices
        .list(&ListParams::default().labels("kubernetes.io/service-name=db"))
        .await
        .unwrap()
        .items;
    assert_eq!(all.len(), 1, "{all:?}");
    // The API server's own Endpoints are marked skip-mirror.
    assert!(mirrored("kubernetes").await.is_empty());

    // A change of the Endpoints is mirrored into the same slice.
    endpoints
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"subsets": [{"addresses": [{"ip": "192.168.1.12"}],
                "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}]})),
        )
        .await
        .unwrap();
    let updated = eventually("the mirrored change", 30, || async {
        let found = mirrored("db").await;
        (found.len() == 1
            && found[0].endpoints.len() == 1
            && found[0].endpoints[0].addresses == ["192.168.1.12"])
        .then_some(found)
    })
    .await;
    assert_eq!(updated[0].name_any(), slice.name_any());
    let stored = endpoints.get("db").await.unwrap();
    assert!(!stored.labels().contains_key("endpoints.kubernetes.io/managed-by"));

    // skip-mirror removes the mirror.
    endpoints
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}}),
            ),
        )
        .await
        .unwrap();
    eventually("the mirror removed", 30, || async {
        mirrored("db").await.is_empty().then_some(())
    })
    .await;
    cluster.stop().await;
}
