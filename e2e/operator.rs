//! A kube-rs operator against the real binary: a kube-derive `CustomResource` whose generated
//! CRD is server-side applied and waited for, reconciled by a kube-runtime `Controller` running
//! in the test. The reconciler holds a finalizer, server-side applies an owned ConfigMap and
//! writes status through the status subresource; deletion runs its cleanup, drops the finalizer
//! and the garbage collector of the server removes the ConfigMap. Every step is asserted from
//! outside the controller, and every wait is bounded.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::{conditions, wait, watcher};
use kube::{Client, CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::harness::Server;

const FINALIZER: &str = "greetings.e2e.rudder.dev/cleanup";
const MANAGER: &str = "greeting-operator";
const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(30);

/// What a greeting should say, and how often.
#[derive(CustomResource, Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "e2e.rudder.dev",
    version = "v1",
    kind = "Greeting",
    namespaced,
    status = "GreetingStatus",
    shortname = "gr"
)]
#[serde(rename_all = "camelCase")]
pub struct GreetingSpec {
    pub message: String,
    pub times: u32,
}

/// What the operator last did for a greeting.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GreetingStatus {
    pub observed_generation: Option<i64>,
    pub config_map: Option<String>,
}

fn config_map_name(greeting: &Greeting) -> String {
    format!("{}-greeting", greeting.name_any())
}

fn marker_name(greeting: &Greeting) -> String {
    format!("{}-cleaned-up", greeting.name_any())
}

/// The ConfigMap a greeting is reconciled into.
fn desired_config_map(greeting: &Greeting) -> ConfigMap {
    let owner = OwnerReference {
        block_owner_deletion: Some(true),
        ..greeting.controller_owner_ref(&()).unwrap()
    };
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(config_map_name(greeting)),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("message".to_owned(), greeting.spec.message.clone()),
            (
                "greeting".to_owned(),
                vec![greeting.spec.message.as_str(); greeting.spec.times as usize].join(" "),
            ),
        ])),
        ..ConfigMap::default()
    }
}

async fn apply(greeting: Arc<Greeting>, client: Client) -> Result<Action, kube::Error> {
    let ns = greeting.namespace().unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let name = config_map_name(&greeting);
    let params = PatchParams::apply(MANAGER).force();
    config_maps
        .patch(&name, &params, &Patch::Apply(desired_config_map(&greeting)))
        .await?;
    let greetings: Api<Greeting> = Api::namespaced(client, &ns);
    let status = serde_json::json!({
        "status": {"observedGeneration": greeting.metadata.generation, "configMap": name}
    });
    greetings
        .patch_status(
            &greeting.name_any(),
            &PatchParams::default(),
            &Patch::Merge(status),
        )
        .await?;
    Ok(Action::await_change())
}

/// Records the cleanup in a ConfigMap the greeting does not own, so the test can see it ran.
async fn cleanup(greeting: Arc<Greeting>, client: Client) -> Result<Action, kube::Error> {
    let ns = greeting.namespace().unwrap();
    let config_maps: Api<ConfigMap> = Api::namespaced(client, &ns);
    let marker = ConfigMap {
        metadata: ObjectMeta {
            name: Some(marker_name(&greeting)),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            ("uid".to_owned(), greeting.uid().unwrap()),
            (
                "deleting".to_owned(),
                greeting.metadata.deletion_timestamp.is_some().to_string(),
            ),
        ])),
        ..ConfigMap::default()
    };
    config_maps
        .patch(
            &marker_name(&greeting),
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(marker),
        )
        .await?;
    Ok(Action::await_change())
}

async fn reconcile(
    greeting: Arc<Greeting>,
    client: Arc<Client>,
) -> Result<Action, kube::runtime::finalizer::Error<kube::Error>> {
    let ns = greeting.namespace().unwrap();
    let greetings: Api<Greeting> = Api::namespaced((*client).clone(), &ns);
    let client = (*client).clone();
    finalizer(&greetings, FINALIZER, greeting, |event| async move {
        match event {
            Event::Apply(greeting) => apply(greeting, client).await,
            Event::Cleanup(greeting) => cleanup(greeting, client).await,
        }
    })
    .await
}

/// Polls `probe` until it yields a value, failing the test after `WAIT`.
async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let found = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_operator_reconciles_custom_resources_into_owned_objects() {
    let server = Server::start();
    let client = server.client().await;

    // The CRD comes from the Rust type, installed with server-side apply.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = Greeting::crd();
    let crd_name = crd.name_any();
    assert_eq!(crd_name, "greetings.e2e.rudder.dev");
    crds.patch(&crd_name, &PatchParams::apply(MANAGER), &Patch::Apply(&crd))
        .await
        .unwrap();
    tokio::time::timeout(
        WAIT,
        wait::await_condition(crds.clone(), &crd_name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD established in time")
    .unwrap();

    // The operator: a Controller over greetings that owns ConfigMaps.
    let greetings_all: Api<Greeting> = Api::all(client.clone());
    let config_maps_all: Api<ConfigMap> = Api::all(client.clone());
    let operator = tokio::spawn(
        Controller::new(greetings_all, watcher::Config::default())
            .owns(config_maps_all, watcher::Config::default())
            .run(
                reconcile,
                |_, _, _| Action::requeue(Duration::from_millis(200)),
                Arc::new(client.clone()),
            )
            .for_each(|_| async {}),
    );

    let greetings: Api<Greeting> = Api::namespaced(client.clone(), NS);
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let created = greetings
        .create(
            &PostParams::default(),
            &Greeting::new(
                "hello",
                GreetingSpec {
                    message: "hi".to_owned(),
                    times: 2,
                },
            ),
        )
        .await
        .unwrap();
    let uid = created.uid().unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    // The finalizer is added.
    eventually("the finalizer on the greeting", || async {
        let g = greetings.get("hello").await.unwrap();
        g.finalizers().contains(&FINALIZER.to_owned()).then_some(())
    })
    .await;

    // The owned ConfigMap is server-side applied from the spec.
    let cm = eventually("the owned ConfigMap", || async {
        config_maps.get_opt("hello-greeting").await.unwrap()
    })
    .await;
    let data = cm.data.clone().unwrap();
    assert_eq!(data["message"], "hi");
    assert_eq!(data["greeting"], "hi hi");
    let owners = cm.owner_references();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].api_version, "e2e.rudder.dev/v1");
    assert_eq!(owners[0].kind, "Greeting");
    assert_eq!(owners[0].name, "hello");
    assert_eq!(owners[0].uid, uid);
    assert_eq!(owners[0].controller, Some(true));
    assert_eq!(owners[0].block_owner_deletion, Some(true));
    let managers = cm.managed_fields();
    assert!(
        managers
            .iter()
            .any(|m| m.manager.as_deref() == Some(MANAGER) && m.operation.as_deref() == Some("Apply")),
        "{managers:?}"
    );

    // Status is written through the status subresource.
    let status = eventually("status.observedGeneration 1", || async {
        let g = greetings.get_status("hello").await.unwrap();
        g.status.filter(|s| s.observed_generation == Some(1))
    })
    .await;
    assert_eq!(status.config_map.as_deref(), Some("hello-greeting"));

    // A spec change bumps the generation and is re-applied to the ConfigMap and the status.
    let patched = greetings
        .patch(
            "hello",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"message": "bye", "times": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(2));
    eventually("the ConfigMap re-applied from the new spec", || async {
        let cm = config_maps.get("hello-greeting").await.unwrap();
        let data = cm.data.unwrap_or_default();
        (data.get("greeting").map(String::as_str) == Some("bye bye bye")).then_some(())
    })
    .await;
    eventually("status.observedGeneration 2", || async {
        let g = greetings.get_status("hello").await.unwrap();
        g.status.filter(|s| s.observed_generation == Some(2))
    })
    .await;

    // A ConfigMap changed behind the operator's back is put back (it watches what it owns).
    config_maps
        .patch(
            "hello-greeting",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"greeting": "tampered"}})),
        )
        .await
        .unwrap();
    eventually("the tampered ConfigMap restored", || async {
        let cm = config_maps.get("hello-greeting").await.unwrap();
        let data = cm.data.unwrap_or_default();
        (data.get("greeting").map(String::as_str) == Some("bye bye bye")).then_some(())
    })
    .await;

    // Deleting the greeting leaves it terminating with the finalizer until cleanup has run.
    let deleting = greetings.delete("hello", &DeleteParams::default()).await.unwrap();
    let deleting = deleting
        .left()
        .expect("a greeting with a finalizer is not deleted at once");
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert!(deleting.finalizers().contains(&FINALIZER.to_owned()));

    let marker = eventually("the cleanup marker", || async {
        config_maps.get_opt("hello-cleaned-up").await.unwrap()
    })
    .await;
    let marker_data = marker.data.unwrap();
    assert_eq!(marker_data["uid"], uid);
    assert_eq!(marker_data["deleting"], "true");

    // The finalizer is removed and the greeting disappears.
    eventually("the greeting to be gone", || async {
        greetings.get_opt("hello").await.unwrap().is_none().then_some(())
    })
    .await;

    // The garbage collector deletes the owned ConfigMap, and only that one.
    eventually("the owned ConfigMap garbage-collected", || async {
        config_maps
            .get_opt("hello-greeting")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(config_maps.get_opt("hello-cleaned-up").await.unwrap().is_some());

    operator.abort();
}
