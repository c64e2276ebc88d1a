//! The kubelet's events about pods and their containers (reporting controller `kubelet`,
//! instance the node name), with upstream's reasons and messages, published in the background
//! so a slow API never holds a pod worker up.
//!
//! It decides nothing: callers say what happened.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Publishes kubelet events.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    /// Events reported by the kubelet of `node`.
    pub fn new(client: Client, node: &str) -> Events {
        Events {
            recorder: Recorder::new(
                client,
                Reporter {
                    controller: "kubelet".to_owned(),
                    instance: Some(node.to_owned()),
                },
            ),
        }
    }

    /// An event about one container of `pod` (upstream's `GenerateContainerRef`: the field
    /// path names the container).
    pub fn container(&self, pod: &Pod, container: &str, type_: EventType, reason: &str, note: String) {
        let spec = pod.spec.as_ref();
        let init = spec
            .and_then(|s| s.init_containers.as_ref())
            .is_some_and(|list| list.iter().any(|c| c.name == container));
        let field = if init { "initContainers" } else { "containers" };
        let reference = ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Pod".to_owned()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path: Some(format!("spec.{field}{{{container}}}")),
        };
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: reason.to_owned(),
            secondary: None,
        };
        let recorder = self.recorder.clone();
        tokio::spawn(async move {
            if let Err(err) = recorder.publish(&event, &reference).await {
                tracing::debug!(error = %err, reason = event.reason, "publishing an event");
            }
        });
    }
}
