//! The scheduler with simulated nodes: binding and running, upstream's unschedulable
//! message and events, retries when the cluster changes, the assume cache, anti-affinity
//! (with namespace selectors), system default spreading, nominated preemptors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Cluster, eventually};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use rudder_noded::simulated::{Config, SimulatedNodes};
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn cluster(count: usize) -> (Cluster, SimulatedNodes, CancellationToken) {
    let cluster = Cluster::start(&["scheduler", "nodelifecycle"]).await;
    let stop = CancellationToken::new();
    let config = Config {
        count,
        ..Config::default()
    };
    let sim = SimulatedNodes::start(cluster.client.clone(), config, stop.clone())
        .await
        .unwrap();
    // New nodes are tainted not-ready until the node lifecycle controller sees them Ready.
    let api: Api<Node> = Api::all(cluster.client.clone());
    eventually("untainted nodes", 30, || async {
        let nodes = api.list(&ListParams::default()).await.unwrap().items;
        let untainted = nodes
            .iter()
            .filter(|n| {
                n.spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_none_or(Vec::is_empty)
            })
            .count();
        (untainted == count).then_some(())
    })
    .await;
    (cluster, sim, stop)
}

fn pod(name: &str, spec: &serde_json::Value) -> Pod {
    let mut spec = spec.clone();
    if spec.get("containers").is_none() {
        spec["containers"] = json!([{"name": "app", "image": "nginx"}]);
    }
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "web"}}, "spec": spec}))
        .unwrap()
}

fn cpu(amount: &str) -> serde_json::Value {
    json!({"containers": [{"name": "app", "image": "nginx", "resources": {"requests": {"cpu": amount}}}]})
}

async fn node_of(pods: &Api<Pod>, name: &str) -> String {
    eventually(&format!("{name} bound"), 30, || async {
        pods.get(name).await.unwrap().spec?.node_name
    })
    .await
}

async fn unschedulable_message(pods: &Api<Pod>, name: &str) -> String {
    eventually(&format!("{name} unschedulable"), 30, || async {
        let pod = pods.get(name).await.unwrap();
        let condition = pod
            .status?
            .conditions?
            .into_iter()
            .find(|c| c.type_ == "PodScheduled")?;
        assert_eq!(condition.status, "False");
        assert_eq!(condition.reason.as_deref(), Some("Unschedulable"));
        condition.message
    })
    .await
}

async fn events_for(client: &kube::Client, pod: &str, reason: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(pod)
                && e.reason.as_deref() == Some(reason)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_bound_to_ready_nodes_and_run() {
    let (cluster, sim, stop) = cluster(3).await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("web", &json!({})))
        .await
        .unwrap();
    let node = node_of(&pods, "web").await;
    assert!(sim.names().contains(&node), "{node}");
    eventually("web running", 30, || async {
        let pod = pods.get("web").await.unwrap();
        (pod.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    let scheduled = eventually("the Scheduled event", 20, || async {
        events_for(&cluster.client, "web", "Scheduled").await.pop()
    })
    .await;
    assert_eq!(
        scheduled.note.as_deref(),
        Some(format!("Successfully assigned default/web to {node}").as_str())
    );
    assert_eq!(scheduled.type_.as_deref(), Some("Normal"));
    assert_eq!(scheduled.action.as_deref(), Some("Binding"));
    assert_eq!(
        scheduled.reporting_controller.as_deref(),
        Some("default-scheduler")
    );
    // The not-ready taint new nodes get was lifted once they reported Ready.
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    let taints = nodes
        .get(&node)
        .await
        .unwrap()
        .spec
        .unwrap()
        .taints
        .unwrap_or_default();
    assert!(taints.is_empty(), "{taints:?}");
    stop.cancel();
    sim.join().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pods_get_upstreams_message_and_are_retried_when_a_node_appears() {
    let (cluster, sim, stop) = cluster(3).await;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    for name in ["sim-node-0002", "sim-node-0003"] {
        let patch =
            json!({"spec": {"taints": [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]}});
        nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("big", &cpu("40")))
        .await
        .unwrap();
    let expected = "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint(s). \
                    preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
                    2 Preemption is not helpful for scheduling.";
    assert_eq!(unschedulable_message(&pods, "big").await, expected);
    let failed = eventually("the FailedScheduling event", 20, || async {
        events_for(&cluster.client, "big", "FailedScheduling").await.pop()
    })
    .await;
    assert_eq!(failed.note.as_deref(), Some(expected));
    assert_eq!(failed.type_.as_deref(), Some("Warning"));

    // A bigger node joins: the pod is retried at once and lands there.
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "big-node", "labels": {"kubernetes.io/hostname": "big-node"}},
        "status": {
            "allocatable": {"cpu": "64", "memory": "64Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }))
    .unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    assert_eq!(node_of(&pods, "big").await, "big-node");
    stop.cancel();
    sim.join().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_decisions_see_their_own_bindings() {
    let (cluster, sim, stop) = cluster(3).await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    for i in 0..6 {
        pods.create(&PostParams::default(), &pod(&format!("half-{i}"), &cpu("20")))
            .await
            .unwrap();
    }
    // Each node has room for exactly one of them.
    let mut placed = std::collections::BTreeSet::new();
    let mut waiting = 0;
    eventually("three bound, three unschedulable", 30, || async {
        let list = pods.list(&ListParams::default()).await.unwrap().items;
        let bound = list
            .iter()
            .filter(|p| p.spec.as_ref().unwrap().node_name.is_some())
            .count();
        let unschedulable = list
            .iter()
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| {
                        c.iter().any(|c| {
                            c.type_ == "PodScheduled" && c.reason.as_deref() == Some("Unschedulable")
                        })
                    })
            })
            .count();
        (bound == 3 && unschedulable == 3).then_some(list)
    })
    .await
    .iter()
    .for_each(|p| match p.spec.as_ref().unwrap().node_name.clone() {
        Some(node) => {
            placed.insert(node);
        }
        None => waiting += 1,
    });
    assert_eq!(placed.len(), 3, "one per node: {placed:?}");
    assert_eq!(waiting, 3);
    let message = unschedulable_message(&pods, "half-5").await;
    assert!(
        message.starts_with("0/3 nodes are available: 3 Insufficient cpu."),
        "{message}"
    );
    stop.cancel();
    sim.join().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_affinity_spreads_pods_and_node_affinity_selects() {
    let (cluster, sim, stop) = cluster(3).await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let anti = json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}]}}});
    let mut nodes = std::collections::BTreeSet::new();
    for i in 0..3 {
        let name = format!("anti-{i}");
        pods.create(&PostParams::default(), &pod(&name, &anti))
            .await
            .unwrap();
        nodes.insert(node_of(&pods, &name).await);
    }
    assert_eq!(nodes.len(), 3);
    pods.create(&PostParams::default(), &pod("anti-3", &anti))
        .await
        .unwrap();
    assert_eq!(
        unschedulable_message(&pods, "anti-3").await,
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. \
         preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    );
    let pinned = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["sim-node-0002"]}]}]}}},
        "containers": [{"name": "app", "image": "nginx"}]});
    let mut other = pod("pinned", &pinned);
    other.metadata.labels = None;
    pods.create(&PostParams::default(), &other).await.unwrap();
    assert_eq!(node_of(&pods, "pinned").await, "sim-node-0002");
    stop.cancel();
    sim.join().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_nodes_pods_wait_with_upstreams_message() {
    let cluster = Cluster::start(&["scheduler"]).await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("lonely", &json!({})))
        .await
        .unwrap();
    assert_eq!(
        unschedulable_message(&pods, "lonely").await,
        "no nodes available to schedule pods"
    );
    // Pods of other schedulers are left alone.
    pods.create(
        &PostParams::default(),
        &pod("other", &json!({"schedulerName": "custom"})),
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let other = pods.get("other").await.unwrap();
    assert!(
        other
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .is_empty()
    );
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_pods_preempt_lower_priority_ones() {
    let (cluster, sim, stop) = cluster(1).await;
    let classes: Api<k8s_openapi::api::scheduling::v1::PriorityClass> = Api::all(cluster.client.clone());
    for (name, value, policy) in [
        ("low", 100, "PreemptLowerPriority"),
        ("high", 1000, "PreemptLowerPriority"),
        ("high-never", 1000, "Never"),
    ] {
        let class = serde_json::from_value(
            json!({"metadata": {"name": name}, "value": value, "preemptionPolicy": policy}),
        )
        .unwrap();
        classes.create(&PostParams::default(), &class).await.unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let with_class = |class: &str| {
        let mut spec = cpu("20");
        spec["priorityClassName"] = json!(class);
        spec
    };
    pods.create(&PostParams::default(), &pod("victim", &with_class("low")))
        .await
        .unwrap();
    assert_eq!(node_of(&pods, "victim").await, "sim-node-0001");

    pods.create(&PostParams::default(), &pod("polite", &with_class("high-never")))
        .await
        .unwrap();
    assert_eq!(
        unschedulable_message(&pods, "polite").await,
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    );
    pods.delete("polite", &Default::default()).await.unwrap();

    let preemptor = pods
        .create(&PostParams::default(), &pod("preemptor", &with_class("high")))
        .await
        .unwrap();
    assert_eq!(node_of(&pods, "preemptor").await, "sim-node-0001");
    eventually("the victim gone", 30, || async {
        pods.get_opt("victim").await.unwrap().is_none().then_some(())
    })
    .await;
    let preempted = eventually("the Preempted event", 20, || async {
        events_for(&cluster.client, "victim", "Preempted").await.pop()
    })
    .await;
    assert_eq!(
        preempted.note.unwrap(),
        format!(
            "Preempted by pod {} on node sim-node-0001",
            preemptor.metadata.uid.unwrap()
        )
    );
    stop.cancel();
    sim.join().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preemption_spares_pods_protected_by_a_disruption_budget() {
    let (cluster, sim, stop) = cluster(2).await;
    let classes: Api<k8s_openapi::api::scheduling::v1::PriorityClass> = Api::all(cluster.client.clone());
    for (name, value) in [("lowest", 1), ("low", 5), ("high", 1000)] {
        let class = serde_json::from_value(json!({"metadata": {"name": name}, "value": value})).unwrap();
        classes.create(&PostParams::default(), &class).await.unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    // Without a budget the cheaper victim (priority 1, on the first node) would be chosen.
    for (name, node, class, app) in [
        ("protected", "sim-node-0001", "lowest", "db"),
        ("spare", "sim-node-0002", "low", "batch"),
    ] {
        let mut spec = cpu("20");
        spec["priorityClassName"] = json!(class);
        spec["nodeName"] = json!(node);
        let mut object = pod(name, &spec);
        object.metadata.labels = Some([("app".to_owned(), app.to_owned())].into());
        pods.create(&PostParams::default(), &object).await.unwrap();
    }
    let budgets: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::namespaced(cluster.client.clone(), "default");
    let budget = budgets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "db"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    // The disruption controller does not run here: the status is written as it would.
    let mut budget = budget;
    budget.status = Some(
        serde_json::from_value(json!({
            "disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1,
        }))
        .unwrap(),
    );
    budgets
        .replace_status("db", &PostParams::default(), &budget)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let mut spec = cpu("20");
    spec["priorityClassName"] = json!("high");
    pods.create(&PostParams::default(), &pod("urgent", &spec))
        .await
        .unwrap();
    assert_eq!(node_of(&pods, "urgent").await, "sim-node-0002");
    eventually("the spare victim gone", 30, || async {
        pods.get_opt("spare").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(pods.get_opt("protected").await.unwrap().is_some());

    stop.cancel();
    sim.join().await;
    cluster.stop().await;
}

/// Starts a cluster of `count` untainted simulated nodes with extra controllers.
async fn cluster_with(
    count: usize,
    controllers: &[&str],
    run_pods: bool,
) -> (Cluster, SimulatedNodes, CancellationToken) {
    let mut names = vec!["scheduler", "nodelifecycle"];
    names.extend_from_slice(controllers);
    let cluster = Cluster::start(&names).await;
    let stop = CancellationToken::new();
    let config = Config {
        count,
        run_pods,
        ..Config::default()
    };
    let sim = SimulatedNodes::start(cluster.client.clone(), config, stop.clone())
        .await
        .unwrap();
    let api: Api<Node> = Api::all(cluster.client.clone());
    eventually("untainted nodes", 30, || async {
        let nodes = api.list(&ListParams::default()).await.unwrap().items;
        let untainted = nodes
            .iter()
            .filter(|n| {
                n.spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_none_or(Vec::is_empty)
            })
            .count();
        (untainted == count).then_some(())
    })
    .await;
    (cluster, sim, stop)
}

/// A pod placed on `node` directly, with `labels` and requests.
fn placed(name: &str, node: &str, labels: &serde_json::Value, cpu: &str, memory: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}, "spec": {
        "nodeName": node,
        "containers": [{"name": "app", "image": "nginx",
                        "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_default_spread_places_a_deployments_pods_evenly() {
    let (cluster, sim, stop) = cluster_with(3, &["deployment", "replicaset"], true).await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    // Two nodes carry load, so resource scores alone would put every replica on the first.
    for (name, node) in [("load-2", "sim-node-0002"), ("load-3", "sim-node-0003")] {
        pods.create(
            &PostParams::default(),
            &placed(name, node, &json!({"app": "load"}), "4", "32Gi"),
        )
        .await
        .unwrap();
    }
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(cluster.client.clone(), "default");
    let deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "spread"}},
            "template": {"metadata": {"labels": {"app": "spread"}}, "spec": {"containers": [
                {"name": "app", "image": "nginx",
                 "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}}]}}},
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let per_node = eventually("six replicas bound", 60, || async {
        let list = pods
            .list(&ListParams::default().labels("app=spread"))
            .await
            .unwrap()
            .items;
        let nodes: Vec<String> = list
            .iter()
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect();
        (nodes.len() == 6).then_some(nodes)
    })
    .await;
    for node in ["sim-node-0001", "sim-node-0002", "sim-node-0003"] {
        assert_eq!(per_node.iter().filter(|n| *n == node).count(), 2, "{per_node:?}");
    }
    stop.cancel();
    sim.join().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_affinity_namespace_selectors_select_namespaces_by_label() {
    let (cluster, sim, stop) = cluster(3).await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(cluster.client.clone());
    for (name, team) in [("team-a", "a"), ("team-b", "b")] {
        let namespace =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"team": team}}})).unwrap();
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
    }
    // Web pods of team a on the first two nodes; a large web pod of team b on the third,
    // which resource scores alone would avoid.
    for (namespace, name, node, cpu) in [
        ("team-a", "web-1", "sim-node-0001", "100m"),
        ("team-a", "web-2", "sim-node-0002", "100m"),
        ("team-b", "web-3", "sim-node-0003", "16"),
    ] {
        let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
        api.create(
            &PostParams::default(),
            &placed(name, node, &json!({"app": "web"}), cpu, "1Gi"),
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let mut away = pod(
        "away-from-team-a",
        &json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"app": "web"}},
            "namespaceSelector": {"matchLabels": {"team": "a"}},
            "topologyKey": "kubernetes.io/hostname"}]}}}),
    );
    away.metadata.labels = None;
    pods.create(&PostParams::default(), &away).await.unwrap();
    assert_eq!(node_of(&pods, "away-from-team-a").await, "sim-node-0003");
    // An empty namespace selector selects every namespace: nowhere is left.
    let mut nowhere = pod(
        "away-from-all",
        &json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {},
            "topologyKey": "kubernetes.io/hostname"}]}}}),
    );
    nowhere.metadata.labels = None;
    pods.create(&PostParams::default(), &nowhere).await.unwrap();
    assert!(
        unschedulable_message(&pods, "away-from-all")
            .await
            .starts_with("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."),
    );
    stop.cancel();
    sim.join().await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nominated_preemptor_keeps_its_node_from_lower_priority_pods() {
    // Pods are not run, so the victim stays (terminating, not terminal) until its finalizer
    // is removed.
    let (cluster, sim, stop) = cluster_with(1, &[], false).await;
    let classes: Api<k8s_openapi::api::scheduling::v1::PriorityClass> = Api::all(cluster.client.clone());
    for (name, value) in [("low", 100), ("high", 1000)] {
        let class = serde_json::from_value(json!({"metadata": {"name": name}, "value": value})).unwrap();
        classes.create(&PostParams::default(), &class).await.unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    // The victim lingers while terminating, as a pod in its grace period does.
    let mut spec = cpu("20");
    spec["priorityClassName"] = json!("low");
    let mut victim = pod("victim", &spec);
    victim.metadata.finalizers = Some(vec!["example.com/hold".to_owned()]);
    pods.create(&PostParams::default(), &victim).await.unwrap();
    assert_eq!(node_of(&pods, "victim").await, "sim-node-0001");

    let mut spec = cpu("25");
    spec["priorityClassName"] = json!("high");
    pods.create(&PostParams::default(), &pod("preemptor", &spec))
        .await
        .unwrap();
    eventually("the preemptor nominated", 30, || async {
        let pod = pods.get("preemptor").await.unwrap();
        (pod.status?.nominated_node_name.as_deref() == Some("sim-node-0001")).then_some(())
    })
    .await;
    eventually("the victim terminating", 30, || async {
        pods.get("victim")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .map(|_| ())
    })
    .await;
    // 12 CPUs are free beside the victim, but the preemptor's 25 are to come.
    pods.create(&PostParams::default(), &pod("thief", &cpu("10")))
        .await
        .unwrap();
    assert!(
        unschedulable_message(&pods, "thief")
            .await
            .starts_with("0/1 nodes are available: 1 Insufficient cpu."),
    );
    // The nomination stays while the victim terminates.
    let preemptor = pods.get("preemptor").await.unwrap();
    assert_eq!(
        preemptor.status.and_then(|s| s.nominated_node_name).as_deref(),
        Some("sim-node-0001")
    );
    // The victim goes; the preemptor takes its node and the thief still waits.
    pods.patch(
        "victim",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    // Its grace period ends (as the kubelet would end it).
    let now = kube::api::DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    pods.delete("victim", &now).await.unwrap();
    assert_eq!(node_of(&pods, "preemptor").await, "sim-node-0001");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let thief = pods.get("thief").await.unwrap();
    assert_eq!(thief.spec.unwrap().node_name, None);
    stop.cancel();
    sim.join().await;
    cluster.stop().await;
}
