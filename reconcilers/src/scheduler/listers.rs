//! The objects besides nodes and pods that the default profile reads, kept by reflectors:
//! Services, ReplicationControllers, ReplicaSets and StatefulSets (for PodTopologySpread's
//! system default constraints, upstream's `helper.DefaultSelector`) and Namespaces (for the
//! `namespaceSelector` of pod affinity terms). It only reads; scheduling decisions live in
//! `plugins`.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, Pod, ReplicationController, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

/// Read-only caches of the objects the plugins consult.
#[derive(Clone, Debug)]
pub struct Listers {
    pub services: Store<Service>,
    pub replication_controllers: Store<ReplicationController>,
    pub replica_sets: Store<ReplicaSet>,
    pub stateful_sets: Store<StatefulSet>,
    pub namespaces: Store<Namespace>,
}

/// The writing halves of [`Listers`], fed by reflectors (or by tests).
pub struct Writers {
    pub services: Writer<Service>,
    pub replication_controllers: Writer<ReplicationController>,
    pub replica_sets: Writer<ReplicaSet>,
    pub stateful_sets: Writer<StatefulSet>,
    pub namespaces: Writer<Namespace>,
}

impl Default for Listers {
    /// Empty listers that stay empty.
    fn default() -> Listers {
        Listers::new().0
    }
}

fn spawn_reflector<K>(api: Api<K>, writer: Writer<K>, shutdown: &CancellationToken)
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Default + Eq + Hash + Clone + Send + Sync,
{
    let reflected = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .for_each(|_| std::future::ready(()));
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = reflected => {}
            () = stop.cancelled() => {}
        }
    });
}

impl Listers {
    /// Empty listers and the writers that fill them.
    pub fn new() -> (Listers, Writers) {
        let (services, services_writer) = reflector::store();
        let (replication_controllers, rc_writer) = reflector::store();
        let (replica_sets, rs_writer) = reflector::store();
        let (stateful_sets, ss_writer) = reflector::store();
        let (namespaces, ns_writer) = reflector::store();
        (
            Listers {
                services,
                replication_controllers,
                replica_sets,
                stateful_sets,
                namespaces,
            },
            Writers {
                services: services_writer,
                replication_controllers: rc_writer,
                replica_sets: rs_writer,
                stateful_sets: ss_writer,
                namespaces: ns_writer,
            },
        )
    }

    /// Listers fed by reflectors over the API until `shutdown`.
    pub fn start(client: &Client, shutdown: &CancellationToken) -> Listers {
        let (listers, writers) = Listers::new();
        spawn_reflector(Api::all(client.clone()), writers.services, shutdown);
        spawn_reflector(
            Api::all(client.clone()),
            writers.replication_controllers,
            shutdown,
        );
        spawn_reflector(Api::all(client.clone()), writers.replica_sets, shutdown);
        spawn_reflector(Api::all(client.clone()), writers.stateful_sets, shutdown);
        spawn_reflector(Api::all(client.clone()), writers.namespaces, shutdown);
        listers
    }

    /// The labels of a namespace (none if it is not known).
    pub fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces
            .get(&ObjectRef::new(name))
            .and_then(|n| n.metadata.labels.clone())
    }

    /// Upstream's `helper.DefaultSelector`: the selectors of the pod's Services merged, with
    /// those of its controlling ReplicationController (merged) or ReplicaSet or StatefulSet
    /// (added as requirements). `None` when that selects nothing in particular (empty).
    pub fn default_selector(&self, pod: &Pod) -> Option<LabelSelector> {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
        let labels = pod.metadata.labels.as_ref();
        let mut match_labels: BTreeMap<String, String> = BTreeMap::new();
        let services = self.services.state_filter(|s| {
            s.metadata.namespace.as_deref() == Some(namespace)
                && s.spec
                    .as_ref()
                    .and_then(|s| s.selector.as_ref())
                    .is_some_and(|selector| {
                        selector
                            .iter()
                            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
                    })
        });
        // Merge in a stable order (upstream merges in lister order; later ones win).
        let mut services: Vec<Arc<Service>> = services;
        services.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for service in &services {
            for (k, v) in service
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .into_iter()
                .flatten()
            {
                match_labels.insert(k.clone(), v.clone());
            }
        }
        let mut expressions: Vec<LabelSelectorRequirement> = Vec::new();
        let owner = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|r| r.controller == Some(true));
        if let Some(owner) = owner {
            let reference = |name: &str| (name.to_owned(), namespace.to_owned());
            let (name, ns) = reference(&owner.name);
            match (owner.api_version.as_str(), owner.kind.as_str()) {
                ("v1", "ReplicationController") => {
                    if let Some(rc) = self
                        .replication_controllers
                        .get(&ObjectRef::new(&name).within(&ns))
                    {
                        for (k, v) in rc
                            .spec
                            .as_ref()
                            .and_then(|s| s.selector.as_ref())
                            .into_iter()
                            .flatten()
                        {
                            match_labels.insert(k.clone(), v.clone());
                        }
                    }
                }
                ("apps/v1", "ReplicaSet") => {
                    if let Some(rs) = self.replica_sets.get(&ObjectRef::new(&name).within(&ns)) {
                        expressions.extend(
                            rs.spec
                                .as_ref()
                                .map(|s| requirements(&s.selector))
                                .unwrap_or_default(),
                        );
                    }
                }
                ("apps/v1", "StatefulSet") => {
                    if let Some(ss) = self.stateful_sets.get(&ObjectRef::new(&name).within(&ns)) {
                        expressions.extend(
                            ss.spec
                                .as_ref()
                                .map(|s| requirements(&s.selector))
                                .unwrap_or_default(),
                        );
                    }
                }
                _ => {}
            }
        }
        if match_labels.is_empty() && expressions.is_empty() {
            return None;
        }
        Some(LabelSelector {
            match_labels: (!match_labels.is_empty()).then_some(match_labels),
            match_expressions: (!expressions.is_empty()).then_some(expressions),
        })
    }
}

/// A label selector as requirements (`matchLabels` become `In` with one value).
fn requirements(selector: &LabelSelector) -> Vec<LabelSelectorRequirement> {
    selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| LabelSelectorRequirement {
            key: k.clone(),
            operator: "In".to_owned(),
            values: Some(vec![v.clone()]),
        })
        .chain(selector.match_expressions.iter().flatten().cloned())
        .collect()
}

#[cfg(test)]
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply<K>(writer: &mut Writer<K>, value: serde_json::Value)
    where
        K: Resource + Clone + DeserializeOwned + 'static,
        K::DynamicType: Eq + Hash + Clone,
    {
        let object: K = serde_json::from_value(value).unwrap();
        writer.apply_watcher_event(&watcher::Event::Apply(object));
    }

    fn pod(owner: Option<(&str, &str, &str)>) -> Pod {
        let owners: Vec<serde_json::Value> = owner
            .into_iter()
            .map(|(api, kind, name)| {
                json!({"apiVersion": api, "kind": kind, "name": name, "uid": "u", "controller": true})
            })
            .collect();
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns",
            "labels": {"app": "web", "tier": "fe"}, "ownerReferences": owners}}))
        .unwrap()
    }

    #[test]
    fn default_selector_merges_services_and_the_controller_like_upstream() {
        let (listers, mut writers) = Listers::new();
        // A pod of nothing gets no default constraints.
        assert_eq!(listers.default_selector(&pod(None)), None);
        apply(
            &mut writers.services,
            json!({"metadata": {"name": "s", "namespace": "ns"},
            "spec": {"selector": {"app": "web"}}}),
        );
        apply(
            &mut writers.services,
            json!({"metadata": {"name": "other", "namespace": "ns"},
            "spec": {"selector": {"app": "db"}}}),
        );
        apply(
            &mut writers.services,
            json!({"metadata": {"name": "elsewhere", "namespace": "x"},
            "spec": {"selector": {"app": "web"}}}),
        );
        apply(
            &mut writers.services,
            json!({"metadata": {"name": "headless", "namespace": "ns"},
            "spec": {}}),
        );
        apply(
            &mut writers.replica_sets,
            json!({"metadata": {"name": "rs", "namespace": "ns"},
            "spec": {"selector": {"matchLabels": {"tier": "fe"},
                "matchExpressions": [{"key": "app", "operator": "Exists"}]}}}),
        );
        apply(
            &mut writers.replication_controllers,
            json!({"metadata": {"name": "rc", "namespace": "ns"},
            "spec": {"selector": {"tier": "fe"}}}),
        );
        let only_service = listers.default_selector(&pod(None)).unwrap();
        assert_eq!(
            only_service.match_labels,
            Some([("app".to_owned(), "web".to_owned())].into())
        );
        assert_eq!(only_service.match_expressions, None);
        let rs = listers
            .default_selector(&pod(Some(("apps/v1", "ReplicaSet", "rs"))))
            .unwrap();
        let expressions = rs.match_expressions.unwrap();
        assert_eq!(expressions.len(), 2);
        assert_eq!(expressions[0].key, "tier");
        assert_eq!(expressions[1].operator, "Exists");
        let rc = listers
            .default_selector(&pod(Some(("v1", "ReplicationController", "rc"))))
            .unwrap();
        assert_eq!(rc.match_labels.unwrap().len(), 2);
        // An unknown owner adds nothing.
        let missing = listers
            .default_selector(&pod(Some(("apps/v1", "StatefulSet", "none"))))
            .unwrap();
        assert_eq!(missing.match_expressions, None);
    }
}
