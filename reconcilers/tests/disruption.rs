//! The disruption controller (PodDisruptionBudget status, evictions against it) and the
//! PersistentVolumeClaim and PersistentVolume protection controllers, against the in-process
//! API server; a test kubelet (`common::kubelet`) reports pods ready since there are no nodes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::kubelet;
use common::{Cluster, eventually};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;

async fn namespace(cluster: &Cluster, name: &str) {
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
}

async fn create<K>(api: &Api<K>, value: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &serde_json::from_value(value).unwrap())
        .await
        .unwrap()
}

fn deployment(name: &str, replicas: i32) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }
        }
    })
}

/// The budget's numbers: (expectedPods, desiredHealthy, currentHealthy, disruptionsAllowed).
fn numbers(pdb: &PodDisruptionBudget) -> (i32, i32, i32, i32) {
    let s = pdb.status.clone().unwrap_or_default();
    (
        s.expected_pods,
        s.desired_healthy,
        s.current_healthy,
        s.disruptions_allowed,
    )
}

/// The `DisruptionAllowed` condition's status, reason and message.
fn allowed_condition(pdb: &PodDisruptionBudget) -> Option<(String, String, String)> {
    pdb.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "DisruptionAllowed")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Waits until the budget, observed at its current generation, has these numbers.
async fn expect_numbers(
    api: &Api<PodDisruptionBudget>,
    name: &str,
    want: (i32, i32, i32, i32),
) -> PodDisruptionBudget {
    let mut last = None;
    let found = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let pdb = api.get(name).await.unwrap();
            let observed = pdb.status.as_ref().and_then(|s| s.observed_generation);
            if observed == pdb.metadata.generation && numbers(&pdb) == want {
                return pdb;
            }
            last = Some(numbers(&pdb));
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    match found {
        Ok(pdb) => pdb,
        Err(_) => panic!("budget {name}: wanted {want:?}, last saw {last:?}"),
    }
}

async fn set_unready(api: &Api<Pod>, pod: &str) {
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = json!({"status": {"conditions": [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
        {"type": "Ready", "status": "False", "lastTransitionTime": now},
    ]}});
    api.patch_status(pod, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

async fn live_pods(api: &Api<Pod>, selector: &str) -> Vec<Pod> {
    api.list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

async fn events(cluster: &Cluster, namespace: &str, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(cluster.client.clone(), namespace);
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_status_follows_the_deployment_and_pod_readiness() {
    let cluster = Cluster::start(&["disruption", "deployment", "replicaset"]).await;
    namespace(&cluster, "pdb").await;
    let client = cluster.client.clone();
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "pdb");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "pdb");

    // A budget matching no pods allows nothing and says so.
    create(
        &budgets,
        json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}),
    )
    .await;
    let pdb = expect_numbers(&budgets, "web", (0, 2, 0, 0)).await;
    assert_eq!(
        allowed_condition(&pdb),
        Some(("False".into(), "InsufficientPods".into(), String::new()))
    );
    eventually("a NoPods event", 20, || async {
        let found = events(&cluster, "pdb", "NoPods").await;
        found
            .iter()
            .any(|e| {
                e.note.as_deref() == Some("No matching pods found")
                    && e.reporting_controller.as_deref() == Some("controllermanager")
            })
            .then_some(())
    })
    .await;

    // minAvailable as a number: the pods themselves are the expected count.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "pdb");
    create(&deployments, deployment("web", 4)).await;
    let kubelet = kubelet::Kubelet::start(client.clone(), "pdb");
    let pdb = expect_numbers(&budgets, "web", (4, 2, 4, 2)).await;
    assert_eq!(
        allowed_condition(&pdb),
        Some(("True".into(), "SufficientPods".into(), String::new()))
    );
    assert_eq!(pdb.status.as_ref().unwrap().observed_generation, Some(1));

    // A percentage is resolved against the deployment's scale (rounded up).
    budgets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minAvailable": "60%"}})),
        )
        .await
        .unwrap();
    let pdb = expect_numbers(&budgets, "web", (4, 3, 4, 1)).await;
    assert_eq!(pdb.status.as_ref().unwrap().observed_generation, Some(2));

    // maxUnavailable, as a number and a percentage.
    budgets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"minAvailable": null, "maxUnavailable": 1}})),
        )
        .await
        .unwrap();
    expect_numbers(&budgets, "web", (4, 3, 4, 1)).await;
    budgets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"maxUnavailable": "50%"}})),
        )
        .await
        .unwrap();
    expect_numbers(&budgets, "web", (4, 2, 4, 2)).await;

    // Pods going unready use up the budget.
    kubelet.set(false);
    let names: Vec<String> = live_pods(&pods, "app=web")
        .await
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    assert_eq!(names.len(), 4);
    set_unready(&pods, &names[0]).await;
    expect_numbers(&budgets, "web", (4, 2, 3, 1)).await;
    set_unready(&pods, &names[1]).await;
    let pdb = expect_numbers(&budgets, "web", (4, 2, 2, 0)).await;
    assert_eq!(
        allowed_condition(&pdb),
        Some(("False".into(), "InsufficientPods".into(), String::new()))
    );

    // Scaling the deployment changes the expected count of a percentage budget.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 6}})),
        )
        .await
        .unwrap();
    expect_numbers(&budgets, "web", (6, 3, 2, 0)).await;
    kubelet.set(true);
    expect_numbers(&budgets, "web", (6, 3, 6, 3)).await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_respect_the_budget() {
    let cluster = Cluster::start(&["disruption", "deployment", "replicaset"]).await;
    namespace(&cluster, "evict").await;
    let client = cluster.client.clone();
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "evict");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "evict");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "evict");
    create(&deployments, deployment("db", 3)).await;
    let kubelet = kubelet::Kubelet::start(client.clone(), "evict");
    create(
        &budgets,
        json!({"metadata": {"name": "db"}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}}}),
    )
    .await;
    expect_numbers(&budgets, "db", (3, 2, 3, 1)).await;
    kubelet.set(false);

    // One disruption is allowed: the eviction is accepted and recorded in the budget.
    let names: Vec<String> = live_pods(&pods, "app=db")
        .await
        .iter()
        .map(ResourceExt::name_any)
        .collect();
    pods.evict(&names[0], &EvictParams::default()).await.unwrap();
    eventually("the evicted pod gone", 20, || async {
        pods.get_opt(&names[0]).await.unwrap().is_none().then_some(())
    })
    .await;

    // The replacement is not ready yet: a second eviction would violate the budget.
    expect_numbers(&budgets, "db", (3, 2, 2, 0)).await;
    // The entry goes once the controller has seen the pod gone (it may first sync while its
    // cache still holds the terminating pod).
    eventually("the deleted pod's entry dropped", 20, || async {
        let pdb = budgets.get("db").await.unwrap();
        let status = pdb.status.unwrap_or_default();
        status
            .disrupted_pods
            .is_none_or(|d| !d.contains_key(&names[0]))
            .then_some(())
    })
    .await;
    expect_numbers(&budgets, "db", (3, 2, 2, 0)).await;
    match pods.evict(&names[1], &EvictParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 429, "{status:?}");
            assert_eq!(status.reason, "TooManyRequests");
            assert_eq!(
                status.message,
                "Cannot evict pod as it would violate the pod's disruption budget."
            );
        }
        other => panic!("expected a 429, got {other:?}"),
    }
    assert!(pods.get_opt(&names[1]).await.unwrap().is_some());

    // Once the replacement is ready, the next eviction is allowed again.
    kubelet.set(true);
    expect_numbers(&budgets, "db", (3, 2, 3, 1)).await;
    pods.evict(&names[1], &EvictParams::default()).await.unwrap();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_count_the_scale_of_custom_controllers() {
    let cluster = Cluster::start(&["disruption"]).await;
    namespace(&cluster, "custom").await;
    let client = cluster.client.clone();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    create(
        &crds,
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                    "subresources": {"scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                }],
            },
        }),
    )
    .await;
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "custom", &resource);
    let widget = eventually("the widget created", 30, || async {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w"}, "spec": {"replicas": 4},
        }))
        .unwrap();
        widgets.create(&PostParams::default(), &object).await.ok()
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "custom");
    for name in ["w-1", "w-2"] {
        create(
            &pods,
            json!({
                "metadata": {"name": name, "labels": {"app": "w"}, "ownerReferences": [{
                    "apiVersion": "example.com/v1", "kind": "Widget", "name": "w", "uid": widget.uid().unwrap(), "controller": true,
                }]},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            }),
        )
        .await;
        kubelet::mark_ready(&pods, name).await;
    }
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "custom");
    create(
        &budgets,
        json!({"metadata": {"name": "w"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "w"}}}}),
    )
    .await;
    expect_numbers(&budgets, "w", (4, 3, 2, 0)).await;

    // A controller without a scale subresource cannot be counted: the sync fails safe.
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "custom");
    let owner = create(&config_maps, json!({"metadata": {"name": "cm"}})).await;
    create(
        &pods,
        json!({
            "metadata": {"name": "odd", "labels": {"app": "odd"}, "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": owner.uid().unwrap(), "controller": true,
            }]},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }),
    )
    .await;
    create(
        &budgets,
        json!({"metadata": {"name": "odd"}, "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "odd"}}}}),
    )
    .await;
    let condition = eventually("the SyncFailed condition", 30, || async {
        let pdb = budgets.get("odd").await.unwrap();
        allowed_condition(&pdb).filter(|c| c.1 == "SyncFailed")
    })
    .await;
    assert_eq!(
        condition,
        (
            "False".into(),
            "SyncFailed".into(),
            "configmaps does not implement the scale subresource".into()
        )
    );
    eventually("a CalculateExpectedPodCountFailed event", 20, || async {
        events(&cluster, "custom", "CalculateExpectedPodCountFailed")
            .await
            .iter()
            .any(|e| {
                e.note.as_deref()
                    == Some("Failed to calculate the number of expected pods: configmaps does not implement the scale subresource")
            })
            .then_some(())
    })
    .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_in_use_are_kept_until_their_pods_are_gone() {
    let cluster = Cluster::start(&["pvc-protection"]).await;
    namespace(&cluster, "claims").await;
    let client = cluster.client.clone();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "claims");
    let claim = |name: &str| {
        json!({
            "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        })
    };
    let used = create(&claims, claim("used")).await;
    assert!(
        used.finalizers()
            .iter()
            .any(|f| f == "kubernetes.io/pvc-protection")
    );
    create(&claims, claim("free")).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "claims");
    create(
        &pods,
        json!({
            "metadata": {"name": "user"},
            "spec": {
                "nodeName": "node-1",
                "containers": [{"name": "c", "image": "busybox"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "used"}}],
            },
        }),
    )
    .await;
    claims.delete("used", &DeleteParams::default()).await.unwrap();
    claims.delete("free", &DeleteParams::default()).await.unwrap();
    eventually("the unused claim gone", 20, || async {
        claims.get_opt("free").await.unwrap().is_none().then_some(())
    })
    .await;
    let kept = claims.get("used").await.unwrap();
    assert!(kept.metadata.deletion_timestamp.is_some());
    assert!(
        kept.finalizers()
            .iter()
            .any(|f| f == "kubernetes.io/pvc-protection")
    );

    pods.delete("user", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    eventually("the claim gone with its pod", 20, || async {
        claims.get_opt("used").await.unwrap().is_none().then_some(())
    })
    .await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bound_volumes_are_kept_until_released() {
    let cluster = Cluster::start(&["pv-protection"]).await;
    let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
    let volume = |name: &str| {
        json!({
            "metadata": {"name": name},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/tmp/v"}},
        })
    };
    let bound = create(&volumes, volume("bound")).await;
    assert!(
        bound
            .finalizers()
            .iter()
            .any(|f| f == "kubernetes.io/pv-protection")
    );
    create(&volumes, volume("loose")).await;
    volumes
        .patch_status(
            "bound",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Bound"}})),
        )
        .await
        .unwrap();
    volumes.delete("bound", &DeleteParams::default()).await.unwrap();
    volumes.delete("loose", &DeleteParams::default()).await.unwrap();
    eventually("the unbound volume gone", 20, || async {
        volumes.get_opt("loose").await.unwrap().is_none().then_some(())
    })
    .await;
    let kept = volumes.get("bound").await.unwrap();
    assert!(kept.metadata.deletion_timestamp.is_some());

    volumes
        .patch_status(
            "bound",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Released"}})),
        )
        .await
        .unwrap();
    eventually("the released volume gone", 20, || async {
        volumes.get_opt("bound").await.unwrap().is_none().then_some(())
    })
    .await;
    cluster.stop().await;
}
