//! The garbage collector's dependency graph (upstream: pkg/controller/garbagecollector
//! graph.go and the event processing of graph_builder.go): one node per object uid with its
//! owner references and the uids of its dependents, plus "virtual" nodes for owners that
//! are referenced but not (yet) observed. Processing an observed change returns the work it
//! implies (items to check for deletion or orphaning, absent owners, invalid references); it
//! does no I/O and knows nothing of queues or clients.

use std::collections::{HashMap, HashSet};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// The finalizer of orphaning deletion.
pub const ORPHAN: &str = "orphan";
/// The finalizer of foreground deletion.
pub const FOREGROUND: &str = "foregroundDeletion";

/// Who an object is: its coordinates as owner references name them, plus its namespace.
/// The field order gives upstream's `referenceLessThan` (kind, apiVersion, namespace, name,
/// uid).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    /// The kind.
    pub kind: String,
    /// `group/version` or `version`.
    pub api_version: String,
    /// The namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// The name.
    pub name: String,
    /// The uid.
    pub uid: String,
}

impl Identity {
    /// The identity an owner reference names, seen from a dependent in `namespace`.
    pub fn of_owner(owner: &OwnerReference, namespace: &str) -> Identity {
        Identity {
            kind: owner.kind.clone(),
            api_version: owner.api_version.clone(),
            namespace: namespace.to_owned(),
            name: owner.name.clone(),
            uid: owner.uid.clone(),
        }
    }

    /// Whether the reference names exactly these coordinates (uid, name, kind, apiVersion).
    pub fn matches(&self, owner: &OwnerReference) -> bool {
        self.uid == owner.uid
            && self.name == owner.name
            && self.kind == owner.kind
            && self.api_version == owner.api_version
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}/{}, namespace: {}, name: {}, uid: {}]",
            self.api_version, self.kind, self.namespace, self.name, self.uid
        )
    }
}

/// One object in the graph.
#[derive(Clone, Debug)]
pub struct Node {
    /// Who it is.
    pub identity: Identity,
    /// Its owner references as last observed.
    pub owners: Vec<OwnerReference>,
    /// The uids of the objects that name it as owner.
    pub dependents: HashSet<String>,
    /// It has a deletionTimestamp.
    pub being_deleted: bool,
    /// It is deleted in the foreground (deletionTimestamp and the `foregroundDeletion`
    /// finalizer).
    pub deleting_dependents: bool,
    /// Only referenced, never observed by a watch.
    pub is_virtual: bool,
    /// The last observed state was being deleted with the `orphan` finalizer.
    seen_orphaning: bool,
    /// The last observed state was being deleted with the `foregroundDeletion` finalizer.
    seen_foreground: bool,
}

impl Node {
    fn new(identity: Identity) -> Node {
        Node {
            identity,
            owners: Vec::new(),
            dependents: HashSet::new(),
            being_deleted: false,
            deleting_dependents: false,
            is_virtual: false,
            seen_orphaning: false,
            seen_foreground: false,
        }
    }
}

/// The metadata of an observed object that the graph needs.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The uid.
    pub uid: String,
    /// The name.
    pub name: String,
    /// The namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// `metadata.ownerReferences`.
    pub owners: Vec<OwnerReference>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// `metadata.finalizers`.
    pub finalizers: Vec<String>,
}

impl Observed {
    fn has(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }
}

/// What happened to an object of one kind.
#[derive(Clone, Debug)]
pub enum Change {
    /// Observed added or updated.
    Upsert(Observed),
    /// Observed deleted.
    Delete(Observed),
    /// The API server says the object does not exist (upstream's virtual delete event).
    VirtualDelete(Observed),
    /// A relist of the kind completed with these uids: every other observed object of the
    /// kind was deleted meanwhile.
    Relisted(HashSet<String>),
}

/// One change, with the kind it concerns.
#[derive(Clone, Debug)]
pub struct GraphEvent {
    /// `group/version` of the kind.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// What happened.
    pub change: Change,
}

/// The work a change implies.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effects {
    /// Uids to check in the attemptToDelete queue.
    pub attempt_to_delete: Vec<String>,
    /// Uids to check in the attemptToDelete queue after the rate limiter's delay.
    pub attempt_to_delete_later: Vec<String>,
    /// Uids of owners whose dependents are to be orphaned.
    pub attempt_to_orphan: Vec<String>,
    /// Owners known not to exist.
    pub absent: Vec<Identity>,
    /// `OwnerRefInvalidNamespace` warnings: the dependent and the message.
    pub invalid_namespace: Vec<(Identity, String)>,
}

/// The dependency graph.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<String, Node>,
}

impl Graph {
    /// The node of `uid`.
    pub fn get(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    /// The dependents of `uid` that block its deletion (`blockOwnerDeletion: true`), with
    /// whether each is itself deleting its dependents.
    pub fn blocking_dependents(&self, uid: &str) -> Vec<(String, bool)> {
        let Some(node) = self.nodes.get(uid) else {
            return Vec::new();
        };
        let mut blocking = Vec::new();
        for dep_uid in &node.dependents {
            let Some(dep) = self.nodes.get(dep_uid) else {
                continue;
            };
            let blocks = dep
                .owners
                .iter()
                .any(|o| o.uid == uid && o.block_owner_deletion == Some(true));
            if blocks {
                blocking.push((dep_uid.clone(), dep.deleting_dependents));
            }
        }
        blocking
    }

    /// The dependents of `uid` (their nodes).
    pub fn dependents(&self, uid: &str) -> Vec<Node> {
        self.nodes
            .get(uid)
            .map(|n| {
                n.dependents
                    .iter()
                    .filter_map(|d| self.nodes.get(d).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Applies one change; returns the work it implies.
    pub fn process(&mut self, event: GraphEvent) -> Effects {
        let mut fx = Effects::default();
        match event.change {
            Change::Upsert(observed) => {
                self.observe(&event.api_version, &event.kind, &observed, &mut fx);
                self.upsert(&event.api_version, &event.kind, &observed, &mut fx);
            }
            Change::Delete(observed) => {
                self.observe(&event.api_version, &event.kind, &observed, &mut fx);
                self.delete(&event.api_version, &event.kind, &observed, false, &mut fx);
            }
            Change::VirtualDelete(observed) => {
                self.delete(&event.api_version, &event.kind, &observed, true, &mut fx);
            }
            Change::Relisted(uids) => {
                let gone: Vec<Observed> = self
                    .nodes
                    .values()
                    .filter(|n| {
                        !n.is_virtual
                            && n.identity.api_version == event.api_version
                            && n.identity.kind == event.kind
                            && !uids.contains(&n.identity.uid)
                    })
                    .map(|n| Observed {
                        uid: n.identity.uid.clone(),
                        name: n.identity.name.clone(),
                        namespace: n.identity.namespace.clone(),
                        owners: n.owners.clone(),
                        ..Default::default()
                    })
                    .collect();
                for observed in gone {
                    self.delete(&event.api_version, &event.kind, &observed, false, &mut fx);
                }
            }
        }
        fx
    }

    /// A watch event for a node known only virtually: the node becomes observed, under the
    /// observed identity.
    fn observe(&mut self, api_version: &str, kind: &str, observed: &Observed, fx: &mut Effects) {
        let Some(node) = self.nodes.get(&observed.uid) else {
            return;
        };
        if !node.is_virtual {
            return;
        }
        let identity = identity_of(api_version, kind, observed);
        if identity != node.identity {
            let dependents: Vec<String> = node.dependents.iter().cloned().collect();
            let (_, nonmatching) = self.partition_dependents(&dependents, &identity);
            for dep in nonmatching {
                if !identity.namespace.is_empty()
                    && self
                        .nodes
                        .get(&dep)
                        .is_some_and(|d| d.identity.namespace != identity.namespace)
                {
                    self.report_invalid_namespace(&dep, &identity.uid, fx);
                }
                fx.attempt_to_delete.push(dep);
            }
        }
        if let Some(node) = self.nodes.get_mut(&observed.uid) {
            node.identity = identity;
            node.is_virtual = false;
        }
    }

    fn upsert(&mut self, api_version: &str, kind: &str, observed: &Observed, fx: &mut Effects) {
        let uid = observed.uid.clone();
        if let Some(node) = self.nodes.get_mut(&uid) {
            let (added, removed, changed) = reference_diffs(&node.owners, &observed.owners);
            if !added.is_empty() || !removed.is_empty() || !changed.is_empty() {
                node.owners = observed.owners.clone();
                self.add_unblocked_owners(&removed, &changed, fx);
                self.add_dependent_to_owners(&uid, &added, fx);
                self.remove_dependent_from_owners(&uid, &removed);
            }
            if let Some(node) = self.nodes.get_mut(&uid)
                && observed.deleting
            {
                node.being_deleted = true;
            }
        } else {
            let mut node = Node::new(identity_of(api_version, kind, observed));
            node.owners = observed.owners.clone();
            node.being_deleted = observed.deleting;
            node.deleting_dependents = observed.deleting && observed.has(FOREGROUND);
            self.nodes.insert(uid.clone(), node);
            let owners = observed.owners.clone();
            self.add_dependent_to_owners(&uid, &owners, fx);
        }
        self.process_transitions(&uid, observed, fx);
    }

    /// Upstream's `processTransitions`: deletion just started with the orphan or the
    /// foreground finalizer.
    fn process_transitions(&mut self, uid: &str, observed: &Observed, fx: &mut Effects) {
        let Some(node) = self.nodes.get_mut(uid) else {
            return;
        };
        let orphaning = observed.deleting && observed.has(ORPHAN);
        let foreground = observed.deleting && observed.has(FOREGROUND);
        let starts_orphaning = orphaning && !node.seen_orphaning;
        let starts_foreground = foreground && !node.seen_foreground;
        node.seen_orphaning = orphaning;
        node.seen_foreground = foreground;
        if starts_orphaning {
            fx.attempt_to_orphan.push(uid.to_owned());
            return;
        }
        if starts_foreground {
            node.deleting_dependents = true;
            fx.attempt_to_delete.extend(node.dependents.iter().cloned());
            fx.attempt_to_delete.push(uid.to_owned());
        }
    }

    fn delete(
        &mut self,
        api_version: &str,
        kind: &str,
        observed: &Observed,
        virtual_event: bool,
        fx: &mut Effects,
    ) {
        let Some(existing) = self.nodes.get(&observed.uid) else {
            return;
        };
        let deleted = identity_of(api_version, kind, observed);
        let mut remove = true;
        if virtual_event {
            let dependents: Vec<String> = existing.dependents.iter().cloned().collect();
            let existing_identity = existing.identity.clone();
            if existing.is_virtual {
                let (matching, nonmatching) = self.partition_dependents(&dependents, &deleted);
                if !nonmatching.is_empty() {
                    // Some dependents disagree on the owner's coordinates: keep the node.
                    remove = false;
                    if !matching.is_empty() {
                        fx.absent.push(deleted.clone());
                        fx.attempt_to_delete.extend(matching);
                    }
                    if existing_identity == deleted
                        && let Some(replacement) = self.alternate_owner_identity(&nonmatching, &deleted)
                        && let Some(node) = self.nodes.get_mut(&observed.uid)
                    {
                        node.identity = replacement;
                        fx.attempt_to_delete_later.push(observed.uid.clone());
                    }
                }
            } else if existing_identity != deleted {
                // An observed node is not removed by a virtual delete of other coordinates.
                remove = false;
                let (matching, _) = self.partition_dependents(&dependents, &deleted);
                if !matching.is_empty() {
                    fx.absent.push(deleted.clone());
                    fx.attempt_to_delete.extend(matching);
                }
            }
        }
        if !remove {
            return;
        }
        let Some(node) = self.remove_node(&observed.uid) else {
            return;
        };
        if !node.dependents.is_empty() {
            fx.absent.push(deleted);
        }
        fx.attempt_to_delete.extend(node.dependents.iter().cloned());
        for owner in &node.owners {
            if self.nodes.get(&owner.uid).is_some_and(|o| o.deleting_dependents) {
                // Let the owner see whether all its dependents are gone.
                fx.attempt_to_delete.push(owner.uid.clone());
            }
        }
    }

    /// Upstream's `addDependentToOwners`: owners not in the graph become virtual nodes to
    /// verify; references that cannot be right are verified too.
    fn add_dependent_to_owners(&mut self, uid: &str, owners: &[OwnerReference], fx: &mut Effects) {
        let Some(namespace) = self.nodes.get(uid).map(|n| n.identity.namespace.clone()) else {
            return;
        };
        let mut potentially_invalid = false;
        for owner in owners {
            let Some(owner_node) = self.nodes.get_mut(&owner.uid) else {
                let mut virtual_node = Node::new(Identity::of_owner(owner, &namespace));
                virtual_node.is_virtual = true;
                virtual_node.dependents.insert(uid.to_owned());
                self.nodes.insert(owner.uid.clone(), virtual_node);
                fx.attempt_to_delete.push(owner.uid.clone());
                continue;
            };
            owner_node.dependents.insert(uid.to_owned());
            if potentially_invalid {
                continue;
            }
            let owner_namespaced = !owner_node.identity.namespace.is_empty();
            let observed = !owner_node.is_virtual;
            if owner_namespaced && owner_node.identity.namespace != namespace {
                if observed {
                    self.report_invalid_namespace(uid, &owner.uid, fx);
                }
                potentially_invalid = true;
            } else if !owner_node.identity.matches(owner)
                || (!owner_namespaced && owner_node.identity.namespace != namespace && !observed)
            {
                potentially_invalid = true;
            }
        }
        if potentially_invalid {
            fx.attempt_to_delete.push(uid.to_owned());
        }
    }

    fn remove_dependent_from_owners(&mut self, uid: &str, owners: &[OwnerReference]) {
        for owner in owners {
            if let Some(owner_node) = self.nodes.get_mut(&owner.uid) {
                owner_node.dependents.remove(uid);
            }
        }
    }

    fn remove_node(&mut self, uid: &str) -> Option<Node> {
        let node = self.nodes.remove(uid)?;
        self.remove_dependent_from_owners(uid, &node.owners);
        Some(node)
    }

    /// Owners whose blocking reference was removed or unblocked get checked again.
    fn add_unblocked_owners(
        &self,
        removed: &[OwnerReference],
        changed: &[(OwnerReference, OwnerReference)],
        fx: &mut Effects,
    ) {
        for reference in removed {
            if reference.block_owner_deletion == Some(true) && self.nodes.contains_key(&reference.uid) {
                fx.attempt_to_delete.push(reference.uid.clone());
            }
        }
        for (old, new) in changed {
            let was_blocked = old.block_owner_deletion == Some(true);
            let unblocked = new.block_owner_deletion != Some(true);
            if was_blocked && unblocked && self.nodes.contains_key(&new.uid) {
                fx.attempt_to_delete.push(new.uid.clone());
            }
        }
    }

    fn report_invalid_namespace(&self, dependent_uid: &str, owner_uid: &str, fx: &mut Effects) {
        let Some(dependent) = self.nodes.get(dependent_uid) else {
            return;
        };
        let Some(reference) = dependent.owners.iter().find(|o| o.uid == owner_uid) else {
            return;
        };
        let invalid = Identity::of_owner(reference, &dependent.identity.namespace);
        fx.invalid_namespace.push((
            dependent.identity.clone(),
            format!(
                "ownerRef {invalid} does not exist in namespace {:?}",
                dependent.identity.namespace
            ),
        ));
    }

    /// Upstream's `partitionDependents`: dependents whose reference to the owner's uid
    /// matches `owner` exactly, and those with a mismatching one (a dependent can be in both).
    fn partition_dependents(&self, dependents: &[String], owner: &Identity) -> (Vec<String>, Vec<String>) {
        let owner_namespaced = !owner.namespace.is_empty();
        let mut matching = Vec::new();
        let mut nonmatching = Vec::new();
        for uid in dependents {
            let Some(dep) = self.nodes.get(uid) else {
                continue;
            };
            let mut found_match = false;
            let mut found_mismatch = false;
            if owner_namespaced && owner.namespace != dep.identity.namespace {
                found_mismatch = true;
            } else {
                for reference in dep.owners.iter().filter(|o| o.uid == owner.uid) {
                    if owner.matches(reference) {
                        found_match = true;
                    } else {
                        found_mismatch = true;
                    }
                }
            }
            if found_match {
                matching.push(uid.clone());
            }
            if found_mismatch {
                nonmatching.push(uid.clone());
            }
        }
        (matching, nonmatching)
    }

    /// Upstream's `getAlternateOwnerIdentity`: another identity the dependents give the
    /// absent owner's uid, the first following `absent` in order, else the first.
    fn alternate_owner_identity(&self, dependents: &[String], absent: &Identity) -> Option<Identity> {
        let cluster_scoped = absent.namespace.is_empty();
        let mut seen: HashSet<Identity> = HashSet::from([absent.clone()]);
        let mut first: Option<Identity> = None;
        let mut first_following: Option<Identity> = None;
        for uid in dependents {
            let Some(dep) = self.nodes.get(uid) else {
                continue;
            };
            for reference in dep.owners.iter().filter(|o| o.uid == absent.uid) {
                if absent.matches(reference) && (cluster_scoped || absent.namespace == dep.identity.namespace)
                {
                    continue;
                }
                let mut candidate = Identity::of_owner(reference, &dep.identity.namespace);
                if cluster_scoped
                    && candidate.api_version == absent.api_version
                    && candidate.kind == absent.kind
                {
                    candidate.namespace.clear();
                }
                if !seen.insert(candidate.clone()) {
                    continue;
                }
                if first.as_ref().is_none_or(|f| candidate < *f) {
                    first = Some(candidate.clone());
                }
                if *absent < candidate && first_following.as_ref().is_none_or(|f| candidate < *f) {
                    first_following = Some(candidate);
                }
            }
        }
        first_following.or(first)
    }
}

fn identity_of(api_version: &str, kind: &str, observed: &Observed) -> Identity {
    Identity {
        kind: kind.to_owned(),
        api_version: api_version.to_owned(),
        namespace: observed.namespace.clone(),
        name: observed.name.clone(),
        uid: observed.uid.clone(),
    }
}

/// Upstream's `referencesDiffs`: references added, removed and changed (by uid).
#[allow(clippy::type_complexity)]
fn reference_diffs(
    old: &[OwnerReference],
    new: &[OwnerReference],
) -> (
    Vec<OwnerReference>,
    Vec<OwnerReference>,
    Vec<(OwnerReference, OwnerReference)>,
) {
    let mut old_by_uid: HashMap<&str, &OwnerReference> = old.iter().map(|o| (o.uid.as_str(), o)).collect();
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for reference in new {
        match old_by_uid.remove(reference.uid.as_str()) {
            Some(previous) if previous != reference => changed.push((previous.clone(), reference.clone())),
            Some(_) => {}
            None => added.push(reference.clone()),
        }
    }
    let removed = old_by_uid.into_values().cloned().collect();
    (added, removed, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(kind: &str, name: &str, uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            block_owner_deletion: block.then_some(true),
            controller: None,
        }
    }

    fn upsert(kind: &str, namespace: &str, name: &str, uid: &str, owners: Vec<OwnerReference>) -> GraphEvent {
        GraphEvent {
            api_version: "v1".into(),
            kind: kind.into(),
            change: Change::Upsert(Observed {
                uid: uid.into(),
                name: name.into(),
                namespace: namespace.into(),
                owners,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn unknown_owners_become_virtual_nodes_to_verify() {
        let mut graph = Graph::default();
        let fx = graph.process(upsert(
            "Secret",
            "ns",
            "s",
            "dep",
            vec![owner("ConfigMap", "cm", "own", false)],
        ));
        assert_eq!(fx.attempt_to_delete, ["own"]);
        let virtual_owner = graph.get("own").unwrap();
        assert!(virtual_owner.is_virtual);
        assert_eq!(virtual_owner.identity.namespace, "ns");
        assert!(virtual_owner.dependents.contains("dep"));
        // Observed later, it is no longer virtual and nothing needs checking.
        let fx = graph.process(upsert("ConfigMap", "ns", "cm", "own", vec![]));
        assert_eq!(fx, Effects::default());
        assert!(!graph.get("own").unwrap().is_virtual);
    }

    #[test]
    fn deleting_an_owner_queues_its_dependents() {
        let mut graph = Graph::default();
        graph.process(upsert("ConfigMap", "ns", "cm", "own", vec![]));
        graph.process(upsert(
            "Secret",
            "ns",
            "a",
            "a",
            vec![owner("ConfigMap", "cm", "own", false)],
        ));
        let deleted = Observed {
            uid: "own".into(),
            name: "cm".into(),
            namespace: "ns".into(),
            ..Default::default()
        };
        let fx = graph.process(GraphEvent {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            change: Change::Delete(deleted),
        });
        assert_eq!(fx.attempt_to_delete, ["a"]);
        assert_eq!(fx.absent.len(), 1);
        assert!(graph.get("own").is_none());
    }

    #[test]
    fn foreground_and_orphan_transitions() {
        let mut graph = Graph::default();
        graph.process(upsert("ConfigMap", "ns", "cm", "own", vec![]));
        graph.process(upsert(
            "Secret",
            "ns",
            "a",
            "a",
            vec![owner("ConfigMap", "cm", "own", true)],
        ));
        let mut deleting = Observed {
            uid: "own".into(),
            name: "cm".into(),
            namespace: "ns".into(),
            deleting: true,
            finalizers: vec![FOREGROUND.into()],
            ..Default::default()
        };
        let event = |o: Observed| GraphEvent {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            change: Change::Upsert(o),
        };
        let fx = graph.process(event(deleting.clone()));
        assert_eq!(fx.attempt_to_delete, ["a", "own"]);
        assert!(graph.get("own").unwrap().deleting_dependents);
        assert_eq!(graph.blocking_dependents("own"), [("a".to_owned(), false)]);
        // The same state again is no new transition.
        assert_eq!(graph.process(event(deleting.clone())), Effects::default());
        deleting.finalizers = vec![ORPHAN.into()];
        let fx = graph.process(event(deleting));
        assert_eq!(fx.attempt_to_orphan, ["own"]);
    }

    #[test]
    fn namespaced_owner_in_another_namespace_is_reported() {
        let mut graph = Graph::default();
        graph.process(upsert("ConfigMap", "one", "cm", "own", vec![]));
        let fx = graph.process(upsert(
            "Secret",
            "two",
            "s",
            "dep",
            vec![owner("ConfigMap", "cm", "own", false)],
        ));
        assert_eq!(fx.attempt_to_delete, ["dep"]);
        assert_eq!(
            fx.invalid_namespace,
            [(
                graph.get("dep").unwrap().identity.clone(),
                "ownerRef [v1/ConfigMap, namespace: two, name: cm, uid: own] does not exist in namespace \"two\""
                    .to_owned()
            )]
        );
        // A cluster-scoped owner may own namespaced dependents.
        graph.process(upsert("Namespace", "", "ns", "cluster", vec![]));
        let fx = graph.process(upsert(
            "Secret",
            "two",
            "t",
            "dep2",
            vec![owner("Namespace", "ns", "cluster", false)],
        ));
        assert_eq!(fx, Effects::default());
    }

    #[test]
    fn relist_deletes_what_was_not_listed() {
        let mut graph = Graph::default();
        graph.process(upsert("ConfigMap", "ns", "a", "a", vec![]));
        graph.process(upsert("ConfigMap", "ns", "b", "b", vec![]));
        graph.process(upsert(
            "Secret",
            "ns",
            "c",
            "c",
            vec![owner("ConfigMap", "b", "b", false)],
        ));
        let fx = graph.process(GraphEvent {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            change: Change::Relisted(HashSet::from(["a".to_owned()])),
        });
        assert!(graph.get("b").is_none());
        assert!(graph.get("a").is_some());
        assert_eq!(fx.attempt_to_delete, ["c"]);
    }

    #[test]
    fn virtual_delete_with_disagreeing_dependents_tries_the_other_identity() {
        let mut graph = Graph::default();
        graph.process(upsert(
            "Secret",
            "ns",
            "a",
            "a",
            vec![owner("ConfigMap", "cm", "own", false)],
        ));
        graph.process(upsert(
            "Secret",
            "ns",
            "b",
            "b",
            vec![owner("Pod", "cm", "own", false)],
        ));
        let fx = graph.process(GraphEvent {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            change: Change::VirtualDelete(Observed {
                uid: "own".into(),
                name: "cm".into(),
                namespace: "ns".into(),
                ..Default::default()
            }),
        });
        assert_eq!(fx.attempt_to_delete, ["a"]);
        assert_eq!(fx.attempt_to_delete_later, ["own"]);
        assert_eq!(graph.get("own").unwrap().identity.kind, "Pod");
    }
}
