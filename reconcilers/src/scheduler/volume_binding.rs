//! The VolumeBinding plugin (upstream: pkg/scheduler/framework/plugins/volumebinding), basics:
//! PreFilter refuses pods whose claims are missing, lost, being deleted or unbound with
//! Immediate binding; Filter checks the node affinity of bound claims' volumes and, for
//! WaitForFirstConsumer claims, finds an available matching volume the node can reach (or a
//! class that can provision there); PreBind writes the choice (the volume's `claimRef`, or the
//! claim's `volume.kubernetes.io/selected-node` annotation) and waits until the binder
//! controller has bound every claim, before the pod is bound.
//!
//! Claims, volumes and classes come from reflectors; volumes chosen but not yet seen bound
//! are remembered (the assume cache) so later pods do not pick them. Capacity tracking
//! (CSIStorageCapacity) and volume scoring are not done.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use thiserror::Error;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::persistent_volume::matching::{
    self, ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER, ANN_SELECTED_NODE, NodeView,
};

/// A bound claim's volume does not admit the node.
pub const REASON_NODE_CONFLICT: &str = "node(s) didn't match PersistentVolume's node affinity";
/// No volume to bind (nor a way to provision one) on the node.
pub const REASON_BIND_CONFLICT: &str = "node(s) didn't find available persistent volumes to bind";
/// A bound claim's volume does not exist.
pub const REASON_PV_NOT_EXIST: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";
/// The provisioner that cannot provision.
const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";
/// How long PreBind waits for the binder (upstream's `bindTimeoutSeconds` default).
const BIND_TIMEOUT: Duration = Duration::from_secs(600);

/// Why binding a pod's volumes failed.
#[derive(Debug, Error)]
pub enum BindError {
    /// An API call failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// The binding did not complete as chosen.
    #[error("{0}")]
    Binding(String),
    /// The binder did not finish in time.
    #[error("binding volumes: context deadline exceeded")]
    Timeout,
}

/// The scheduler's view of storage.
pub struct Volumes {
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
    /// Volume name -> claim key, chosen but not yet seen bound.
    assumed: Mutex<HashMap<String, String>>,
    changes: watch::Receiver<u64>,
}

/// A pod's claims after PreFilter: those bound and those waiting for their first consumer.
pub struct PodClaims {
    bound: Vec<Arc<PersistentVolumeClaim>>,
    delayed: Vec<Arc<PersistentVolumeClaim>>,
}

/// What PreBind does for a pod on its node.
#[derive(Default)]
pub struct Plan {
    /// Volumes to bind to claims.
    bindings: Vec<(Arc<PersistentVolume>, Arc<PersistentVolumeClaim>)>,
    /// Claims to provision on the node.
    provisions: Vec<Arc<PersistentVolumeClaim>>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty() && self.provisions.is_empty()
    }
}

/// Starts the reflectors; `changes` ticks on every change of claims, volumes or classes.
pub fn start(client: &Client, shutdown: &CancellationToken) -> Arc<Volumes> {
    let (claims, claim_writer) = reflector::store::<PersistentVolumeClaim>();
    let (volumes, volume_writer) = reflector::store::<PersistentVolume>();
    let (classes, class_writer) = reflector::store::<StorageClass>();
    let (tick, changes) = watch::channel(0u64);
    let tick = Arc::new(tick);
    let claim_stream = watcher(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(claim_writer)
    .inspect_ok(bumper(tick.clone()))
    .for_each(|_| std::future::ready(()));
    let volume_stream = watcher(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(volume_writer)
    .inspect_ok(bumper(tick.clone()))
    .for_each(|_| std::future::ready(()));
    let class_stream = watcher(
        Api::<StorageClass>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(class_writer)
    .inspect_ok(bumper(tick))
    .for_each(|_| std::future::ready(()));
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = claim_stream => {}
            () = volume_stream => {}
            () = class_stream => {}
            () = stop.cancelled() => {}
        }
    });
    Arc::new(Volumes {
        claims,
        volumes,
        classes,
        assumed: Mutex::new(HashMap::new()),
        changes,
    })
}

/// Ticks `tick` for every event seen.
fn bumper<T>(tick: Arc<watch::Sender<u64>>) -> impl Fn(&T) {
    move |_| tick.send_modify(|n| *n = n.wrapping_add(1))
}

/// The claim names of a pod's volumes (ephemeral volumes' claims are `<pod>-<volume>`).
fn claim_names(pod: &Pod) -> Vec<(String, bool)> {
    let pod_name = pod.metadata.name.as_deref().unwrap_or("");
    pod.spec
        .as_ref()
        .map(|s| s.volumes.iter().flatten())
        .into_iter()
        .flatten()
        .filter_map(|volume| {
            if let Some(claim) = volume.persistent_volume_claim.as_ref() {
                Some((claim.claim_name.clone(), false))
            } else {
                volume
                    .ephemeral
                    .as_ref()
                    .map(|_| (format!("{pod_name}-{}", volume.name), true))
            }
        })
        .collect()
}

fn fully_bound(claim: &PersistentVolumeClaim) -> bool {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .is_some_and(|n| !n.is_empty())
        && claim
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(ANN_BIND_COMPLETED))
}

impl Volumes {
    /// A receiver that sees every change of storage objects.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.clone()
    }

    /// Upstream's PreFilter: `Ok(None)` for a pod without claims; `Err` with the message of
    /// an unschedulable pod.
    pub fn prefilter(&self, pod: &Pod) -> Result<Option<PodClaims>, String> {
        let names = claim_names(pod);
        if names.is_empty() {
            return Ok(None);
        }
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
        let mut found = Vec::new();
        for (name, ephemeral) in names {
            let Some(claim) = self.claims.get(&ObjectRef::new(&name).within(namespace)) else {
                return Err(if ephemeral {
                    format!(
                        "waiting for ephemeral volume controller to create the persistentvolumeclaim {name:?}"
                    )
                } else {
                    format!("persistentvolumeclaim {name:?} not found")
                });
            };
            if claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Lost") {
                let volume = claim
                    .spec
                    .as_ref()
                    .and_then(|s| s.volume_name.as_deref())
                    .unwrap_or("");
                return Err(format!(
                    "persistentvolumeclaim {name:?} bound to non-existent persistentvolume {volume:?}"
                ));
            }
            if claim.metadata.deletion_timestamp.is_some() {
                return Err(format!("persistentvolumeclaim {name:?} is being deleted"));
            }
            if ephemeral
                && !claim
                    .owner_references()
                    .iter()
                    .any(|o| Some(&o.uid) == pod.metadata.uid.as_ref() && o.controller == Some(true))
            {
                return Err(format!(
                    "PVC {namespace}/{name} was not created for pod {namespace}/{} (pod is not owner)",
                    pod.name_any()
                ));
            }
            found.push(claim);
        }
        let mut claims = PodClaims {
            bound: Vec::new(),
            delayed: Vec::new(),
        };
        for claim in found {
            if fully_bound(&claim) {
                claims.bound.push(claim);
                continue;
            }
            let class = self.classes.get(&ObjectRef::new(matching::claim_class(&claim)));
            match matching::is_delay_binding(class.as_deref()) {
                Ok(true) => claims.delayed.push(claim),
                Ok(false) => return Err("pod has unbound immediate PersistentVolumeClaims".to_owned()),
                Err(err) => return Err(err),
            }
        }
        Ok(Some(claims))
    }

    /// Upstream's Filter (`FindPodVolumes`): the plan for the node, or the reasons it fails.
    pub fn filter(
        &self,
        claims: &PodClaims,
        name: &str,
        labels: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Result<Plan, Vec<String>> {
        let node = NodeView { name, labels };
        let (mut node_conflict, mut missing) = (false, false);
        for claim in &claims.bound {
            let volume_name = claim
                .spec
                .as_ref()
                .and_then(|s| s.volume_name.as_deref())
                .unwrap_or("");
            match self.volumes.get(&ObjectRef::new(volume_name)) {
                Some(volume) if !matching::node_affinity_admits(&volume, labels, name) => {
                    node_conflict = true;
                }
                Some(_) => {}
                None => missing = true,
            }
        }
        let mut plan = Plan::default();
        let mut bind_conflict = false;
        if !node_conflict && !missing && !claims.delayed.is_empty() {
            let assumed = self.assumed.lock().map(|a| a.clone()).unwrap_or_default();
            let volumes: Vec<Arc<PersistentVolume>> = self
                .volumes
                .state()
                .into_iter()
                .filter(|v| {
                    let name = v.metadata.name.as_deref().unwrap_or("");
                    !assumed.contains_key(name)
                })
                .collect();
            let mut chosen = BTreeSet::new();
            for claim in &claims.delayed {
                if let Some(selected) = claim
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANN_SELECTED_NODE))
                {
                    if selected != name {
                        bind_conflict = true;
                        break;
                    }
                    if !self.can_provision(claim, labels) {
                        bind_conflict = true;
                        break;
                    }
                    plan.provisions.push(claim.clone());
                    continue;
                }
                let class = matching::claim_class(claim);
                let candidates: Vec<&PersistentVolume> = volumes
                    .iter()
                    .map(|v| &**v)
                    .filter(|v| matching::volume_class(v) == class)
                    .collect();
                match matching::find_matching(claim, candidates, Some(&node), &chosen, true) {
                    Some(volume) => {
                        let name = volume.metadata.name.clone().unwrap_or_default();
                        chosen.insert(name.clone());
                        if let Some(volume) =
                            volumes.iter().find(|v| v.metadata.name.as_deref() == Some(&name))
                        {
                            plan.bindings.push((volume.clone(), claim.clone()));
                        }
                    }
                    None if self.can_provision(claim, labels) => plan.provisions.push(claim.clone()),
                    None => {
                        bind_conflict = true;
                        break;
                    }
                }
            }
        }
        let mut reasons = Vec::new();
        if node_conflict {
            reasons.push(REASON_NODE_CONFLICT.to_owned());
        }
        if bind_conflict {
            reasons.push(REASON_BIND_CONFLICT.to_owned());
        }
        if missing {
            reasons.push(REASON_PV_NOT_EXIST.to_owned());
        }
        if reasons.is_empty() {
            Ok(plan)
        } else {
            Err(reasons)
        }
    }

    /// Whether the claim's class can provision on a node with these labels.
    fn can_provision(
        &self,
        claim: &PersistentVolumeClaim,
        labels: Option<&std::collections::BTreeMap<String, String>>,
    ) -> bool {
        let Some(class) = self.classes.get(&ObjectRef::new(matching::claim_class(claim))) else {
            return false;
        };
        if class.provisioner.is_empty() || class.provisioner == NO_PROVISIONER {
            return false;
        }
        let Some(topologies) = class.allowed_topologies.as_ref().filter(|t| !t.is_empty()) else {
            return true;
        };
        topologies.iter().any(|term| {
            term.match_label_expressions.iter().flatten().all(|requirement| {
                labels
                    .and_then(|l| l.get(&requirement.key))
                    .is_some_and(|v| requirement.values.contains(v))
            })
        })
    }

    /// Remembers the volumes of a plan as taken (upstream's AssumePodVolumes).
    pub fn assume(&self, plan: &Plan) {
        if let Ok(mut assumed) = self.assumed.lock() {
            for (volume, claim) in &plan.bindings {
                assumed.insert(volume.name_any(), matching::claim_key(claim));
            }
        }
    }

    /// Forgets the plan's assumptions (the volumes are then seen bound, or free again).
    pub fn forget(&self, plan: &Plan) {
        if let Ok(mut assumed) = self.assumed.lock() {
            for (volume, _) in &plan.bindings {
                assumed.remove(&volume.name_any());
            }
        }
    }

    /// PreBind: writes the plan, then waits until the binder has bound every claim.
    pub async fn bind(&self, client: &Client, plan: &Plan, node: &str) -> Result<(), BindError> {
        let volumes: Api<PersistentVolume> = Api::all(client.clone());
        for (volume, claim) in &plan.bindings {
            let mut updated = (**volume).clone();
            if !matching::is_bound_to(volume, claim) {
                updated
                    .metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(ANN_BOUND_BY_CONTROLLER.to_owned(), "yes".to_owned());
            }
            updated.spec.get_or_insert_with(Default::default).claim_ref = Some(matching::reference_to(claim));
            volumes
                .replace(&volume.name_any(), &PostParams::default(), &updated)
                .await?;
        }
        for claim in &plan.provisions {
            if claim
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANN_SELECTED_NODE))
                .map(String::as_str)
                == Some(node)
            {
                continue;
            }
            let mut updated = (**claim).clone();
            updated
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(ANN_SELECTED_NODE.to_owned(), node.to_owned());
            let api: Api<PersistentVolumeClaim> =
                Api::namespaced(client.clone(), claim.metadata.namespace.as_deref().unwrap_or(""));
            api.replace(&claim.name_any(), &PostParams::default(), &updated)
                .await?;
        }
        let mut changes = self.changes.clone();
        let wait = async {
            loop {
                changes.borrow_and_update();
                if self.all_bound(plan, node)? {
                    return Ok(());
                }
                if changes.changed().await.is_err() {
                    return Err(BindError::Binding("storage watches stopped".to_owned()));
                }
            }
        };
        tokio::time::timeout(BIND_TIMEOUT, wait)
            .await
            .map_err(|_| BindError::Timeout)?
    }

    /// Upstream's `checkBindings`: whether every claim of the plan is fully bound.
    fn all_bound(&self, plan: &Plan, node: &str) -> Result<bool, BindError> {
        let current = |claim: &PersistentVolumeClaim| {
            self.claims.get(&ObjectRef::from_obj(claim)).ok_or_else(|| {
                BindError::Binding(format!(
                    "failed to check binding: claim {:?} is gone",
                    matching::claim_key(claim)
                ))
            })
        };
        for (_, claim) in &plan.bindings {
            if !fully_bound(&*current(claim)?) {
                return Ok(false);
            }
        }
        for claim in &plan.provisions {
            let seen = current(claim)?;
            let selected = seen
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANN_SELECTED_NODE));
            if selected.map(String::as_str) != Some(node) && !fully_bound(&seen) {
                return Err(BindError::Binding(format!(
                    "selectedNode annotation reset for PVC {:?}",
                    claim.name_any()
                )));
            }
            if !fully_bound(&seen) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
