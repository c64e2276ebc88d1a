//! The kubelet's events about pods and their containers (reporting controller `kubelet`,
//! instance the node name), with upstream's reasons and messages, published in the background
//! so a slow API never holds a pod worker up.
//!
//! It decides nothing: callers say what happened.
//!
//! kube's `Recorder` folds events into a series by object, type and reason, whatever their
//! message; upstream's recorder folds only identical messages (`Failed to pull image ...`
//! and `Error: ErrImagePull` are two events). So each message gets a recorder of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// How many messages keep their recorder (and so their series) before all are forgotten.
const MAX_RECORDERS: usize = 512;

/// Publishes kubelet events.
#[derive(Clone)]
pub struct Events {
    client: Client,
    reporter: Reporter,
    recorders: Arc<Mutex<HashMap<String, Recorder>>>,
}

impl Events {
    /// Events reported by the kubelet of `node`.
    pub fn new(client: Client, node: &str) -> Events {
        Events {
            client,
            reporter: Reporter {
                controller: "kubelet".to_owned(),
                instance: Some(node.to_owned()),
            },
            recorders: Arc::default(),
        }
    }

    /// The recorder of events with the message `note`.
    fn recorder(&self, note: &str) -> Recorder {
        let mut recorders = self
            .recorders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if recorders.len() >= MAX_RECORDERS && !recorders.contains_key(note) {
            recorders.clear();
        }
        recorders
            .entry(note.to_owned())
            .or_insert_with(|| Recorder::new(self.client.clone(), self.reporter.clone()))
            .clone()
    }

    /// An event about the node itself (upstream's `nodeRef`: kind Node, its name as UID).
    pub fn node(&self, type_: EventType, reason: &str, note: String) {
        let reference = ObjectReference {
            kind: Some("Node".to_owned()),
            name: self.reporter.instance.clone(),
            uid: self.reporter.instance.clone(),
            ..ObjectReference::default()
        };
        self.publish(reference, type_, reason, note);
    }

    /// An event about `pod` itself.
    pub fn pod(&self, pod: &Pod, type_: EventType, reason: &str, note: String) {
        let reference = ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Pod".to_owned()),
            name: pod.metadata.name.clone(),
            namespace: pod.metadata.namespace.clone(),
            uid: pod.metadata.uid.clone(),
            resource_version: pod.metadata.resource_version.clone(),
            field_path: None,
        };
        self.publish(reference, type_, reason, note);
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
        self.publish(reference, type_, reason, note);
    }

    fn publish(&self, reference: ObjectReference, type_: EventType, reason: &str, note: String) {
        let recorder = self.recorder(&note);
        let event = Event {
            type_,
            reason: reason.to_owned(),
            note: Some(note),
            action: reason.to_owned(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(err) = recorder.publish(&event, &reference).await {
                tracing::debug!(error = %err, reason = event.reason, "publishing an event");
            }
        });
    }
}
