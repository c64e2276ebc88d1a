//! The persistent volume binder (upstream: pkg/controller/volume/persistentvolume): binds
//! claims to matching volumes in two steps (the volume's `claimRef`, then the claim's
//! `volumeName` with the `bind-completed`/`bound-by-controller` annotations), keeps the
//! phases of both (Available, Bound, Released, Failed; Pending, Bound, Lost), assigns the
//! default class to claims without one, hands claims of classes with an external provisioner
//! to it (`volume.kubernetes.io/storage-provisioner`), leaves WaitForFirstConsumer claims to
//! the scheduler until it selects a node, and reclaims volumes whose claim is gone.
//!
//! Two kube-runtime controllers, one over claims and one over volumes, each woken by changes
//! of the other kind (and claims by storage classes); no periodic resync. It has no volume
//! plugins: Delete and Recycle of volumes no external plugin handles fail as upstream's do
//! when no plugin matches. It never creates or deletes volumes or claims.

pub(crate) mod matching;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, PersistentVolumeStatus};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_not_found};
use matching::{
    ANN_BETA_STORAGE_PROVISIONER, ANN_BIND_COMPLETED, ANN_BOUND_BY_CONTROLLER, ANN_DYNAMICALLY_PROVISIONED,
    ANN_MIGRATED_TO, ANN_SELECTED_NODE, ANN_STORAGE_PROVISIONER,
};

/// The controller's name in `--controllers`.
pub const NAME: &str = "persistentvolume-binder-controller";
/// The component its events report.
const COMPONENT: &str = "persistentvolume-controller";
/// The claims controller's name in spans.
const CLAIMS: &str = "persistentvolume-binder-controller/claims";

/// What both halves read: the claims, volumes and classes as last seen.
struct State {
    claims: Store<PersistentVolumeClaim>,
    volumes: Store<PersistentVolume>,
    classes: Store<StorageClass>,
}

impl State {
    fn class(&self, name: &str) -> Option<Arc<StorageClass>> {
        if name.is_empty() {
            return None;
        }
        self.classes.get(&ObjectRef::new(name))
    }

    /// Claims still waiting for a volume.
    fn pending_claims(&self) -> Vec<ObjectRef<PersistentVolumeClaim>> {
        self.claims
            .state()
            .iter()
            .filter(|c| !has_annotation(&c.metadata, ANN_BIND_COMPLETED))
            .map(|c| ObjectRef::from_obj(&**c))
            .collect()
    }

    /// Volumes that name the claim, or that the claim names.
    fn volumes_of(&self, claim: &PersistentVolumeClaim) -> Vec<ObjectRef<PersistentVolume>> {
        let mut refs: Vec<ObjectRef<PersistentVolume>> = self
            .volumes
            .state()
            .iter()
            .filter(|v| {
                matching::claim_ref(v)
                    .is_some_and(|r| r.name == claim.metadata.name && r.namespace == claim.metadata.namespace)
            })
            .map(|v| ObjectRef::from_obj(&**v))
            .collect();
        if let Some(name) = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .filter(|n| !n.is_empty())
        {
            refs.push(ObjectRef::new(name));
        }
        refs
    }
}

fn has_annotation(meta: &kube::api::ObjectMeta, key: &str) -> bool {
    meta.annotations.as_ref().is_some_and(|a| a.contains_key(key))
}

fn phase_of_volume(volume: &PersistentVolume) -> &str {
    volume
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn phase_of_claim(claim: &PersistentVolumeClaim) -> &str {
    claim
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn claim_volume_name(claim: &PersistentVolumeClaim) -> &str {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or("")
}

fn reclaim_policy(volume: &PersistentVolume) -> &str {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Retain")
}

/// Runs both halves of the binder.
pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let (claims, claim_writer) = reflector::store::<PersistentVolumeClaim>();
    let (volumes, volume_writer) = reflector::store::<PersistentVolume>();
    let (classes, class_writer) = reflector::store::<StorageClass>();
    let state = Arc::new(State {
        claims: claims.clone(),
        volumes,
        classes,
    });
    let claim_events = watcher(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(claim_writer)
    .applied_objects();
    let volume_events = watcher(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(volume_writer)
    .touched_objects();
    let class_events = watcher(
        Api::<StorageClass>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(class_writer)
    .touched_objects();
    let (for_volumes, for_classes) = (state.clone(), state.clone());
    let claim_controller = Controller::for_stream(claim_events, claims)
        .watches_stream(volume_events, move |volume: PersistentVolume| {
            // A volume bound to a claim wakes that claim; a free one every waiting claim
            // (upstream finds those on its periodic resync).
            match matching::claim_ref(&volume) {
                Some(r) if r.uid.as_deref().is_some_and(|u| !u.is_empty()) => {
                    vec![
                        ObjectRef::new(r.name.as_deref().unwrap_or(""))
                            .within(r.namespace.as_deref().unwrap_or("")),
                    ]
                }
                _ => for_volumes.pending_claims(),
            }
        })
        .watches_stream(class_events, move |_class: StorageClass| {
            for_classes.pending_claims()
        });

    let for_claims = state.clone();
    let volume_controller = Controller::new(
        Api::<PersistentVolume>::all(client.clone()),
        watcher::Config::default(),
    )
    .watches(
        Api::<PersistentVolumeClaim>::all(client),
        watcher::Config::default(),
        move |claim: PersistentVolumeClaim| for_claims.volumes_of(&claim),
    );

    let claims_run = harness::run(
        CLAIMS,
        claim_controller,
        context.clone(),
        shutdown.clone(),
        move |claim, context| {
            let state = state.clone();
            async move { Box::pin(sync_claim(&claim, &context, &state)).await }
        },
    );
    let volumes_run = harness::run(
        NAME,
        volume_controller,
        context,
        shutdown,
        move |volume, context| async move { Box::pin(sync_volume(&volume, &context)).await },
    );
    futures_util::future::join(claims_run, volumes_run).await;
}

async fn publish<K: Resource<DynamicType = ()>>(
    context: &Context,
    object: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    context
        .publish(COMPONENT, &object.object_ref(&()), type_, reason, note)
        .await;
}

fn claims_api(context: &Context, claim: &PersistentVolumeClaim) -> Api<PersistentVolumeClaim> {
    Api::namespaced(
        context.client.clone(),
        claim.metadata.namespace.as_deref().unwrap_or(""),
    )
}

fn volumes_api(context: &Context) -> Api<PersistentVolume> {
    Api::all(context.client.clone())
}

// ---- claims ----

async fn sync_claim(
    claim: &PersistentVolumeClaim,
    context: &Context,
    state: &State,
) -> Result<Action, ReconcileError> {
    if has_annotation(&claim.metadata, ANN_BIND_COMPLETED) {
        Box::pin(sync_bound_claim(claim, context, state)).await?;
    } else {
        Box::pin(sync_unbound_claim(claim, context, state)).await?;
    }
    Ok(Action::await_change())
}

async fn sync_unbound_claim(
    claim: &PersistentVolumeClaim,
    context: &Context,
    state: &State,
) -> Result<(), ReconcileError> {
    let requested = claim_volume_name(claim);
    if requested.is_empty() {
        let class = state.class(matching::claim_class(claim));
        let delay = matching::is_delay_binding(class.as_deref()).map_err(ReconcileError::Invalid)?;
        let volumes = state.volumes.state();
        let found = matching::find_best_match(claim, &volumes, None, &BTreeSet::new(), delay).cloned();
        let Some(volume) = found else {
            if assign_default_class(claim, context, state).await? {
                return Ok(());
            }
            let selected = has_annotation(&claim.metadata, ANN_SELECTED_NODE);
            if delay && !selected {
                publish(
                    context,
                    claim,
                    EventType::Normal,
                    "WaitForFirstConsumer",
                    "waiting for first consumer to be created before binding".to_owned(),
                )
                .await;
            } else if !matching::claim_class(claim).is_empty() {
                return provision(claim, context, state).await;
            } else {
                publish(
                    context,
                    claim,
                    EventType::Normal,
                    "FailedBinding",
                    "no persistent volumes available for this claim and no storage class is set".to_owned(),
                )
                .await;
            }
            update_claim_status(claim, context, "Pending", None).await?;
            return Ok(());
        };
        return bind(&volume, claim, context).await;
    }
    let Some(volume) = state.volumes.get(&ObjectRef::new(requested)) else {
        // The requested volume does not exist (yet).
        update_claim_status(claim, context, "Pending", None).await?;
        return Ok(());
    };
    if matching::claim_ref(&volume).is_none() {
        if let Err(why) = volume_satisfies_claim(&volume, claim) {
            let note = format!("Cannot bind to requested volume {requested:?}: {why}");
            publish(context, claim, EventType::Warning, "VolumeMismatch", note).await;
            update_claim_status(claim, context, "Pending", None).await?;
            return Ok(());
        }
        return bind(&volume, claim, context).await;
    }
    if matching::is_bound_to(&volume, claim) {
        return bind(&volume, claim, context).await;
    }
    let note = format!("volume {requested:?} already bound to a different claim.");
    publish(context, claim, EventType::Warning, "FailedBinding", note).await;
    if has_annotation(&claim.metadata, ANN_BOUND_BY_CONTROLLER) {
        let holder = matching::claim_ref(&volume)
            .map(|r| {
                format!(
                    "{}/{}",
                    r.namespace.as_deref().unwrap_or(""),
                    r.name.as_deref().unwrap_or("")
                )
            })
            .unwrap_or_default();
        return Err(ReconcileError::Invalid(format!(
            "invalid binding of claim {:?} to volume {requested:?}: volume already claimed by {holder:?}",
            matching::claim_key(claim)
        )));
    }
    update_claim_status(claim, context, "Pending", None).await?;
    Ok(())
}

/// Upstream's `checkVolumeSatisfyClaim`, for a volume the claim asked for by name.
fn volume_satisfies_claim(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> Result<(), String> {
    if volume.metadata.deletion_timestamp.is_some() {
        return Err(format!(
            "the volume is marked for deletion {:?}",
            volume.metadata.name.as_deref().unwrap_or("")
        ));
    }
    if matching::capacity_bytes(volume) < matching::requested_bytes(claim) {
        return Err("requested PV is too small".to_owned());
    }
    if matching::volume_class(volume) != matching::claim_class(claim) {
        return Err("storageClassName does not match".to_owned());
    }
    let claim_vac = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_attributes_class_name.as_deref())
        .unwrap_or("");
    let volume_vac = volume
        .spec
        .as_ref()
        .and_then(|s| s.volume_attributes_class_name.as_deref())
        .unwrap_or("");
    if claim_vac != volume_vac {
        return Err("volumeAttributesClassName does not match".to_owned());
    }
    if matching::volume_mode_mismatch(claim, volume) {
        return Err("incompatible volumeMode".to_owned());
    }
    if !matching::access_modes_match(claim, volume) {
        return Err("incompatible accessMode".to_owned());
    }
    Ok(())
}

async fn sync_bound_claim(
    claim: &PersistentVolumeClaim,
    context: &Context,
    state: &State,
) -> Result<(), ReconcileError> {
    let name = claim_volume_name(claim);
    let lost = |reason: &'static str, note: &'static str| async move {
        if phase_of_claim(claim) != "Lost" {
            update_claim_status(claim, context, "Lost", None).await?;
            publish(context, claim, EventType::Warning, reason, note.to_owned()).await;
        }
        Ok::<(), ReconcileError>(())
    };
    if name.is_empty() {
        return lost(
            "ClaimLost",
            "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
        )
        .await;
    }
    let Some(volume) = state.volumes.get(&ObjectRef::new(name)) else {
        return lost(
            "ClaimLost",
            "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
        )
        .await;
    };
    match matching::claim_ref(&volume) {
        None => bind(&volume, claim, context).await,
        Some(r) if r.uid == claim.metadata.uid => bind(&volume, claim, context).await,
        Some(_) => {
            lost(
                "ClaimMisbound",
                "Two claims are bound to the same volume, this one is bound incorrectly",
            )
            .await
        }
    }
}

/// Gives a claim without any class the default one; whether it did.
async fn assign_default_class(
    claim: &PersistentVolumeClaim,
    context: &Context,
    state: &State,
) -> Result<bool, ReconcileError> {
    if matching::claim_has_class(claim) {
        return Ok(false);
    }
    let classes = state.classes.state();
    let Some(default) = matching::default_class(classes.iter().map(|c| &**c)) else {
        return Ok(false);
    };
    let mut updated = claim.clone();
    updated
        .spec
        .get_or_insert_with(Default::default)
        .storage_class_name = default.metadata.name.clone();
    claims_api(context, claim)
        .replace(&claim.name_any(), &PostParams::default(), &updated)
        .await?;
    Ok(true)
}

/// Hands the claim to its class's provisioner. Without in-tree plugins, only external
/// provisioners (names outside `kubernetes.io/`) can provision.
async fn provision(
    claim: &PersistentVolumeClaim,
    context: &Context,
    state: &State,
) -> Result<(), ReconcileError> {
    let class_name = matching::claim_class(claim);
    let Some(class) = state.class(class_name) else {
        let note = format!("storageclass.storage.k8s.io {class_name:?} not found");
        publish(context, claim, EventType::Warning, "ProvisioningFailed", note).await;
        return Ok(());
    };
    let provisioner = class.provisioner.as_str();
    if provisioner.starts_with("kubernetes.io/") {
        let note = format!("no volume plugin matched name: {provisioner}");
        publish(context, claim, EventType::Warning, "ProvisioningFailed", note).await;
        return Ok(());
    }
    let annotations = claim.metadata.annotations.as_ref();
    let set = annotations
        .and_then(|a| a.get(ANN_STORAGE_PROVISIONER))
        .map(String::as_str)
        == Some(provisioner);
    if !set {
        let mut updated = claim.clone();
        let annotations = updated.metadata.annotations.get_or_insert_with(BTreeMap::new);
        annotations.insert(ANN_BETA_STORAGE_PROVISIONER.to_owned(), provisioner.to_owned());
        annotations.insert(ANN_STORAGE_PROVISIONER.to_owned(), provisioner.to_owned());
        let result = claims_api(context, claim)
            .replace(&claim.name_any(), &PostParams::default(), &updated)
            .await;
        if let Err(err) = result {
            let note = format!("Error saving claim: {err}");
            publish(context, claim, EventType::Warning, "ProvisioningFailed", note).await;
            return Err(err.into());
        }
    }
    let note = format!(
        "Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by \
         the system administrator. If volume creation is delayed, please verify that the provisioner is running \
         and correctly registered."
    );
    publish(context, claim, EventType::Normal, "ExternalProvisioning", note).await;
    Ok(())
}

/// Binds both ways, the volume first (upstream's `bind`).
async fn bind(
    volume: &PersistentVolume,
    claim: &PersistentVolumeClaim,
    context: &Context,
) -> Result<(), ReconcileError> {
    let volume = bind_volume_to_claim(volume, claim, context).await?;
    let volume = update_volume_phase(&volume, context, "Bound", "").await?;
    let claim = bind_claim_to_volume(claim, &volume, context).await?;
    update_claim_status(&claim, context, "Bound", Some(&volume)).await?;
    tracing::info!(
        claim = %matching::claim_key(&claim),
        volume = volume.metadata.name.as_deref().unwrap_or(""),
        "bound"
    );
    Ok(())
}

async fn bind_volume_to_claim(
    volume: &PersistentVolume,
    claim: &PersistentVolumeClaim,
    context: &Context,
) -> Result<PersistentVolume, ReconcileError> {
    let by_controller = !matching::is_bound_to(volume, claim);
    let mut updated = volume.clone();
    let mut dirty = false;
    let current = matching::claim_ref(volume);
    if current.is_none_or(|r| {
        r.name != claim.metadata.name
            || r.namespace != claim.metadata.namespace
            || r.uid != claim.metadata.uid
    }) {
        updated.spec.get_or_insert_with(Default::default).claim_ref = Some(matching::reference_to(claim));
        dirty = true;
    }
    if by_controller && !has_annotation(&updated.metadata, ANN_BOUND_BY_CONTROLLER) {
        updated
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(ANN_BOUND_BY_CONTROLLER.to_owned(), "yes".to_owned());
        dirty = true;
    }
    if !dirty {
        return Ok(volume.clone());
    }
    Ok(volumes_api(context)
        .replace(&volume.name_any(), &PostParams::default(), &updated)
        .await?)
}

async fn bind_claim_to_volume(
    claim: &PersistentVolumeClaim,
    volume: &PersistentVolume,
    context: &Context,
) -> Result<PersistentVolumeClaim, ReconcileError> {
    let mut updated = claim.clone();
    let mut dirty = false;
    let volume_name = volume.name_any();
    if claim_volume_name(claim) != volume_name {
        updated.spec.get_or_insert_with(Default::default).volume_name = Some(volume_name);
        if !has_annotation(&updated.metadata, ANN_BOUND_BY_CONTROLLER) {
            updated
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(ANN_BOUND_BY_CONTROLLER.to_owned(), "yes".to_owned());
        }
        dirty = true;
    }
    if !has_annotation(&updated.metadata, ANN_BIND_COMPLETED) {
        updated
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(ANN_BIND_COMPLETED.to_owned(), "yes".to_owned());
        dirty = true;
    }
    if !dirty {
        return Ok(claim.clone());
    }
    Ok(claims_api(context, claim)
        .replace(&claim.name_any(), &PostParams::default(), &updated)
        .await?)
}

/// Saves the claim's phase, with the volume's access modes and capacity when bound.
async fn update_claim_status(
    claim: &PersistentVolumeClaim,
    context: &Context,
    phase: &str,
    volume: Option<&PersistentVolume>,
) -> Result<PersistentVolumeClaim, ReconcileError> {
    let mut updated = claim.clone();
    let status = updated.status.get_or_insert_with(Default::default);
    let old_phase = phase_of_claim(claim);
    let mut dirty = false;
    if old_phase != phase {
        status.phase = Some(phase.to_owned());
        dirty = true;
    }
    match volume {
        None => {
            if status.access_modes.is_some()
                || status.capacity.is_some()
                || status.current_volume_attributes_class_name.is_some()
            {
                status.access_modes = None;
                status.capacity = None;
                status.current_volume_attributes_class_name = None;
                dirty = true;
            }
        }
        Some(volume) => {
            let spec = volume.spec.as_ref();
            let modes = spec.and_then(|s| s.access_modes.clone());
            if status.access_modes != modes {
                status.access_modes = modes;
                dirty = true;
            }
            if old_phase != phase {
                let capacity = spec.and_then(|s| s.capacity.as_ref());
                let Some(volume_size) = capacity.and_then(|c| c.get("storage")) else {
                    return Err(ReconcileError::Invalid(format!(
                        "PersistentVolume {:?} is without a storage capacity",
                        volume.name_any()
                    )));
                };
                let claim_size = status.capacity.as_ref().and_then(|c| c.get("storage"));
                let same = claim_size
                    .and_then(matching::quantity_bytes)
                    .zip(matching::quantity_bytes(volume_size))
                    .is_some_and(|(a, b)| a == b);
                if !same {
                    status.capacity = capacity.cloned();
                    dirty = true;
                }
            }
            let vac = spec.and_then(|s| s.volume_attributes_class_name.clone());
            if old_phase == "Pending"
                && phase == "Bound"
                && status.current_volume_attributes_class_name != vac
            {
                status.current_volume_attributes_class_name = vac;
                dirty = true;
            }
        }
    }
    if !dirty {
        return Ok(claim.clone());
    }
    Ok(claims_api(context, claim)
        .replace_status(&claim.name_any(), &PostParams::default(), &updated)
        .await?)
}

// ---- volumes ----

async fn update_volume_phase(
    volume: &PersistentVolume,
    context: &Context,
    phase: &str,
    message: &str,
) -> Result<PersistentVolume, ReconcileError> {
    if phase_of_volume(volume) == phase {
        return Ok(volume.clone());
    }
    let mut updated = volume.clone();
    let now = Timestamp::now();
    updated.status = Some(PersistentVolumeStatus {
        phase: Some(phase.to_owned()),
        message: (!message.is_empty()).then(|| message.to_owned()),
        reason: volume.status.as_ref().and_then(|s| s.reason.clone()),
        last_phase_transition_time: Some(Time(Timestamp::from_second(now.as_second()).unwrap_or(now))),
    });
    Ok(volumes_api(context)
        .replace_status(&volume.name_any(), &PostParams::default(), &updated)
        .await?)
}

async fn update_volume_phase_with_event(
    volume: &PersistentVolume,
    context: &Context,
    phase: &str,
    reason: &str,
    message: &str,
) -> Result<PersistentVolume, ReconcileError> {
    if phase_of_volume(volume) == phase {
        return Ok(volume.clone());
    }
    let updated = update_volume_phase(volume, context, phase, message).await?;
    publish(context, &updated, EventType::Warning, reason, message.to_owned()).await;
    Ok(updated)
}

async fn sync_volume(volume: &PersistentVolume, context: &Context) -> Result<Action, ReconcileError> {
    let Some(reference) = matching::claim_ref(volume) else {
        update_volume_phase(volume, context, "Available", "").await?;
        return Ok(Action::await_change());
    };
    if reference.uid.as_deref().is_none_or(str::is_empty) {
        // Pre-bound by the user; the claim's sync binds it.
        update_volume_phase(volume, context, "Available", "").await?;
        return Ok(Action::await_change());
    }
    // The claim is read from the API server, not from the claims controller's store, which
    // comes from another watch and may not have seen the change that woke this volume.
    let namespace = reference.namespace.clone().unwrap_or_default();
    let claim_name = reference.name.clone().unwrap_or_default();
    let api: Api<PersistentVolumeClaim> = Api::namespaced(context.client.clone(), &namespace);
    let released_or_failed = matches!(phase_of_volume(volume), "Released" | "Failed");
    let claim = match api.get(&claim_name).await {
        Ok(claim) if claim.metadata.uid == reference.uid => Some(claim),
        // Deleted, and perhaps another claim made with the same name.
        Ok(_) => None,
        Err(err) if is_not_found(&err) => None,
        Err(err) => return Err(err.into()),
    };
    let volume_name = volume.name_any();
    let Some(claim) = claim else {
        // The claim is gone: release the volume and apply its reclaim policy.
        let volume = if released_or_failed {
            volume.clone()
        } else {
            tracing::info!(volume = %volume_name, policy = reclaim_policy(volume), "volume is released");
            update_volume_phase(volume, context, "Released", "").await?
        };
        reclaim(&volume, context).await?;
        return Ok(Action::await_change());
    };
    let bound_to = claim_volume_name(&claim);
    if bound_to.is_empty() {
        if matching::volume_mode_mismatch(&claim, volume) {
            let note = format!(
                "Cannot bind PersistentVolume to requested PersistentVolumeClaim {:?} due to incompatible volumeMode.",
                claim.name_any()
            );
            publish(context, volume, EventType::Warning, "VolumeMismatch", note).await;
            let note = format!(
                "Cannot bind PersistentVolume {volume_name:?} to requested PersistentVolumeClaim due to incompatible volumeMode."
            );
            publish(context, &claim, EventType::Warning, "VolumeMismatch", note).await;
        }
        // The claim's sync finishes the binding; the claims controller watches volumes.
        return Ok(Action::await_change());
    }
    if bound_to == volume_name {
        update_volume_phase(volume, context, "Bound", "").await?;
        return Ok(Action::await_change());
    }
    // The claim is bound to another volume.
    let provisioned = has_annotation(&volume.metadata, ANN_DYNAMICALLY_PROVISIONED);
    if provisioned && reclaim_policy(volume) == "Delete" {
        let volume = if released_or_failed {
            volume.clone()
        } else {
            update_volume_phase(volume, context, "Released", "").await?
        };
        reclaim(&volume, context).await?;
        return Ok(Action::await_change());
    }
    unbind_volume(volume, context).await?;
    Ok(Action::await_change())
}

/// Rolls back a binding: the controller's own one entirely, a user's pre-binding to its UID.
async fn unbind_volume(volume: &PersistentVolume, context: &Context) -> Result<(), ReconcileError> {
    let mut updated = volume.clone();
    if has_annotation(&volume.metadata, ANN_BOUND_BY_CONTROLLER) {
        if let Some(spec) = updated.spec.as_mut() {
            spec.claim_ref = None;
        }
        if let Some(annotations) = updated.metadata.annotations.as_mut() {
            annotations.remove(ANN_BOUND_BY_CONTROLLER);
            if annotations.is_empty() {
                updated.metadata.annotations = None;
            }
        }
    } else if let Some(reference) = updated.spec.as_mut().and_then(|s| s.claim_ref.as_mut()) {
        reference.uid = None;
    }
    let saved = volumes_api(context)
        .replace(&volume.name_any(), &PostParams::default(), &updated)
        .await?;
    update_volume_phase(&saved, context, "Available", "").await?;
    Ok(())
}

/// Applies the reclaim policy of a released volume (its claim gone or bound elsewhere). Retain keeps it Released; Delete and
/// Recycle need a volume plugin, of which there are none here, so they fail as upstream's do
/// when no plugin matches, unless an external deleter (CSI, external provisioner) owns it.
async fn reclaim(volume: &PersistentVolume, context: &Context) -> Result<(), ReconcileError> {
    if has_annotation(&volume.metadata, ANN_MIGRATED_TO) {
        return Ok(());
    }
    match reclaim_policy(volume) {
        "Retain" => Ok(()),
        "Recycle" => {
            update_volume_phase_with_event(
                volume,
                context,
                "Failed",
                "VolumeFailedRecycle",
                "No recycler plugin found for the volume!",
            )
            .await?;
            Ok(())
        }
        "Delete" => {
            if volume.metadata.deletion_timestamp.is_some() {
                return Ok(());
            }
            let provisioner = volume
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANN_DYNAMICALLY_PROVISIONED))
                .filter(|p| !p.is_empty());
            let external = match provisioner {
                Some(p) => !p.starts_with("kubernetes.io/"),
                None => volume.spec.as_ref().is_some_and(|s| s.csi.is_some()),
            };
            if external {
                // An external deleter handles it.
                return Ok(());
            }
            let message = match provisioner {
                Some(p) => format!("no volume plugin matched name: {p}"),
                None => format!(
                    "error getting deleter volume plugin for volume {:?}: no volume plugin matched",
                    volume.name_any()
                ),
            };
            update_volume_phase_with_event(volume, context, "Failed", "VolumeFailedDelete", &message).await?;
            Ok(())
        }
        _ => {
            update_volume_phase_with_event(
                volume,
                context,
                "Failed",
                "VolumeUnknownReclaimPolicy",
                "Volume has unrecognized PersistentVolumeReclaimPolicy",
            )
            .await?;
            Ok(())
        }
    }
}
