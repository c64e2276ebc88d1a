//! The StatefulSet controller (upstream: pkg/controller/statefulset): pods with stable
//! identities `<set>-<ordinal>`, created in order and removed in reverse (OrderedReady) or all
//! at once (Parallel); their PersistentVolumeClaims from volumeClaimTemplates, created before
//! the pod and owned as the retention policy says; ControllerRevisions of the template with
//! history pruning; RollingUpdate (highest ordinal first, down to the partition) and OnDelete;
//! status. It never changes a set's spec. `MaxUnavailableStatefulSet` is beta and off by
//! default in v1.35, so `maxUnavailable` is ignored as upstream ignores it.

mod identity;
mod revision;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError, is_already_exists, is_conflict, is_not_found};
use crate::pods::{self, RefManager, Selector, controller_of};
use identity::{
    claim_name, claims_for, end_ordinal, in_ordinal_range, is_created, is_finished, is_member_of, is_pending,
    is_running_and_ready, is_terminating, is_unavailable, ordinal, pod_revision, start_ordinal,
};

/// The controller's name in `--controllers`.
pub const NAME: &str = "statefulset-controller";
const COMPONENT: &str = "statefulset-controller";
/// The most pods one parallel batch touches (upstream's MaxBatchSize).
const MAX_BATCH: usize = 500;
/// Attempts of a pod update that meets conflicts (client-go's DefaultBackoff steps).
const UPDATE_ATTEMPTS: usize = 4;

struct State {
    pods: Store<Pod>,
    claims: Store<PersistentVolumeClaim>,
    revisions: Store<ControllerRevision>,
    context: Arc<Context>,
}

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let client = context.client.clone();
    let (pods, pod_writer) = reflector::store::<Pod>();
    let (claims, claim_writer) = reflector::store::<PersistentVolumeClaim>();
    let (revisions, revision_writer) = reflector::store::<ControllerRevision>();
    let pod_events = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .reflect(pod_writer)
        .touched_objects();
    let claim_events = watcher(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(claim_writer)
    .touched_objects();
    let revision_events = watcher(
        Api::<ControllerRevision>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(revision_writer)
    .touched_objects();
    let controller = Controller::new(Api::<StatefulSet>::all(client), watcher::Config::default());
    let sets = controller.store();
    let (for_pods, for_claims, for_revisions) = (sets.clone(), sets.clone(), sets);
    let controller = controller
        .watches_stream(pod_events, move |pod: Pod| sets_of(&for_pods, &pod.metadata))
        .watches_stream(claim_events, move |claim: PersistentVolumeClaim| {
            sets_of_claim(&for_claims, &claim.metadata)
        })
        .watches_stream(revision_events, move |revision: ControllerRevision| {
            sets_of(&for_revisions, &revision.metadata)
        });
    let state = Arc::new(State {
        pods,
        claims,
        revisions,
        context: context.clone(),
    });
    harness::run(NAME, controller, context, shutdown, move |set, context| {
        let state = state.clone();
        async move { Box::pin(reconcile(set, context, state)).await }
    })
    .await;
}

fn selector_of(set: &StatefulSet) -> Result<Selector, String> {
    set.spec.as_ref().map_or(Ok(Selector::default()), |s| {
        Selector::from_label_selector(&s.selector)
    })
}

/// The sets to sync for an event on a pod or revision: its controller, or for an orphan every
/// set in its namespace whose selector matches it.
fn sets_of(sets: &Store<StatefulSet>, meta: &ObjectMeta) -> Vec<ObjectRef<StatefulSet>> {
    let namespace = meta.namespace.clone().unwrap_or_default();
    if let Some(reference) = controller_of(meta) {
        if reference.kind == "StatefulSet" {
            return vec![ObjectRef::new(&reference.name).within(&namespace)];
        }
        return Vec::new();
    }
    matching_sets(sets, meta)
}

fn matching_sets(sets: &Store<StatefulSet>, meta: &ObjectMeta) -> Vec<ObjectRef<StatefulSet>> {
    let empty = BTreeMap::new();
    let labels = meta.labels.as_ref().unwrap_or(&empty);
    sets.state()
        .iter()
        .filter(|s| s.metadata.namespace == meta.namespace)
        .filter(|s| selector_of(s).is_ok_and(|sel| !sel.is_empty() && sel.matches(labels)))
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect()
}

/// The sets to sync for a claim event (a claim that goes away may unblock a pod): the set or
/// pod owning it, else the sets whose selector its labels match.
fn sets_of_claim(sets: &Store<StatefulSet>, meta: &ObjectMeta) -> Vec<ObjectRef<StatefulSet>> {
    let namespace = meta.namespace.clone().unwrap_or_default();
    for reference in meta.owner_references.iter().flatten() {
        if reference.kind == "StatefulSet" {
            return vec![ObjectRef::new(&reference.name).within(&namespace)];
        }
        if reference.kind == "Pod"
            && let Some((parent, _)) = identity::parent_and_ordinal(&reference.name)
        {
            return vec![ObjectRef::new(parent).within(&namespace)];
        }
    }
    matching_sets(sets, meta)
}

fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

fn error_message(err: &ReconcileError) -> String {
    match err {
        ReconcileError::Kube(err) => api_message(err),
        ReconcileError::Invalid(message) => message.clone(),
    }
}

/// Upstream's utilerrors.NewAggregate message: one error as itself, several bracketed.
fn aggregate(errors: Vec<String>) -> Option<ReconcileError> {
    let mut unique: Vec<String> = Vec::new();
    for message in errors {
        if !unique.contains(&message) {
            unique.push(message);
        }
    }
    match unique.len() {
        0 => None,
        1 => unique.pop().map(ReconcileError::Invalid),
        _ => Some(ReconcileError::Invalid(format!("[{}]", unique.join(", ")))),
    }
}

/// `verb` with its first letter in upper case (upstream's cases.Title of one word).
fn title(verb: &str) -> String {
    let mut chars = verb.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

async fn reconcile(
    set: Arc<StatefulSet>,
    context: Arc<Context>,
    state: Arc<State>,
) -> Result<Action, ReconcileError> {
    if state.pods.wait_until_ready().await.is_err()
        || state.claims.wait_until_ready().await.is_err()
        || state.revisions.wait_until_ready().await.is_err()
    {
        return Ok(Action::await_change());
    }
    let selector = match selector_of(&set) {
        Ok(selector) => selector,
        Err(err) => {
            // A permanent error: upstream does not retry it.
            tracing::warn!(error = %err, "invalid selector");
            return Ok(Action::await_change());
        }
    };
    let sync = Sync {
        set: set.as_ref(),
        name: set.name_any(),
        namespace: set.namespace().unwrap_or_default(),
        selector,
        context: &context,
        state: &state,
        now: Timestamp::now(),
    };
    sync.adopt_orphan_revisions().await?;
    let pods = sync.claim_pods().await?;
    let status = Box::pin(sync.update(&pods)).await?;
    let min_ready = sync.min_ready_seconds();
    if min_ready > 0
        && let Some(status) = status
        && status.ready_replicas != status.available_replicas
    {
        let refs: Vec<&Pod> = pods.iter().collect();
        let wait = pods::next_availability_check(&refs, min_ready, sync.now)
            .unwrap_or(Duration::from_secs(u64::try_from(min_ready).unwrap_or(1)));
        return Ok(Action::requeue(wait));
    }
    Ok(Action::await_change())
}

/// What the rolling-update and scaling code sees of one pod slot.
struct Slots {
    /// Pods whose ordinal is in range, at index `ordinal - start`; made-up pods where none exist.
    replicas: Vec<Pod>,
    /// Pods out of range, highest ordinal first.
    condemned: Vec<Pod>,
}

/// One sync of one set.
struct Sync<'a> {
    set: &'a StatefulSet,
    name: String,
    namespace: String,
    selector: Selector,
    context: &'a Context,
    state: &'a State,
    now: Timestamp,
}

impl Sync<'_> {
    fn min_ready_seconds(&self) -> i32 {
        self.set
            .spec
            .as_ref()
            .and_then(|s| s.min_ready_seconds)
            .unwrap_or(0)
    }

    fn uid(&self) -> Option<&String> {
        self.set.metadata.uid.as_ref()
    }

    fn set_api(&self) -> Api<StatefulSet> {
        Api::namespaced(self.context.client.clone(), &self.namespace)
    }

    fn pod_api(&self) -> Api<Pod> {
        Api::namespaced(self.context.client.clone(), &self.namespace)
    }

    fn claim_api(&self) -> Api<PersistentVolumeClaim> {
        Api::namespaced(self.context.client.clone(), &self.namespace)
    }

    fn revision_api(&self) -> Api<ControllerRevision> {
        Api::namespaced(self.context.client.clone(), &self.namespace)
    }

    fn ref_manager(&self) -> RefManager<'_, StatefulSet> {
        let api = self.set_api();
        let name = self.name.clone();
        RefManager::new(
            self.set,
            &self.selector,
            Box::new(move || {
                let api = api.clone();
                let name = name.clone();
                Box::pin(async move { api.get_opt(&name).await })
            }),
        )
    }

    fn in_namespace_and_ours(&self, meta: &ObjectMeta) -> bool {
        meta.namespace.as_deref() == Some(self.namespace.as_str())
            && controller_of(meta).is_none_or(|r| Some(&r.uid) == self.uid())
    }

    fn selected(&self, meta: &ObjectMeta) -> bool {
        self.selector
            .matches(meta.labels.as_ref().unwrap_or(&BTreeMap::new()))
    }

    /// Upstream's ListControllerRevisions: revisions the selector matches that the set controls
    /// or nobody does, by revision.
    fn revisions(&self) -> Vec<ControllerRevision> {
        let mut revisions: Vec<ControllerRevision> = self
            .state
            .revisions
            .state()
            .iter()
            .filter(|r| self.in_namespace_and_ours(&r.metadata) && self.selected(&r.metadata))
            .map(|r| (**r).clone())
            .collect();
        revisions.sort_by(revision::by_revision);
        revisions
    }

    async fn adopt_orphan_revisions(&self) -> Result<(), ReconcileError> {
        let orphans: Vec<ControllerRevision> = self
            .revisions()
            .into_iter()
            .filter(|r| controller_of(&r.metadata).is_none())
            .collect();
        if orphans.is_empty() || self.set.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        self.ref_manager()
            .claim(&self.revision_api(), orphans)
            .await
            .map_err(|err| {
                ReconcileError::Invalid(format!(
                    "can't adopt ControllerRevisions: {}",
                    error_message(&err)
                ))
            })?;
        Ok(())
    }

    /// Upstream's getPodsForStatefulSet: the set's pods and matching orphans, adopted or
    /// released; only pods named as members of the set are claimed.
    async fn claim_pods(&self) -> Result<Vec<Pod>, ReconcileError> {
        let api = self.pod_api();
        let mut candidates = Vec::new();
        for pod in self.state.pods.state() {
            if !self.in_namespace_and_ours(&pod.metadata) {
                continue;
            }
            if is_member_of(self.set, &pod) {
                candidates.push((*pod).clone());
            } else if controller_of(&pod.metadata).is_some() && self.set.metadata.deletion_timestamp.is_none()
            {
                self.release(&api, &pod).await?;
            }
        }
        self.ref_manager().claim(&api, candidates).await
    }

    async fn release(&self, api: &Api<Pod>, pod: &Pod) -> Result<(), ReconcileError> {
        let patch = serde_json::json!({"metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": self.uid()}],
            "uid": pod.metadata.uid,
        }});
        match api
            .patch(&pod.name_any(), &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 422 => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    /// Upstream's UpdateStatefulSet: revisions, pods, status, then history.
    async fn update(&self, pods: &[Pod]) -> Result<Option<StatefulSetStatus>, ReconcileError> {
        let revisions = self.revisions();
        let (current, update, collision_count) = match self.find_revisions(&revisions).await {
            Ok(found) => found,
            Err(err) => {
                self.truncate_history(pods, &revisions, None, None).await?;
                return Err(err);
            }
        };
        let (status, result) = Box::pin(self.update_pods(&current, &update, collision_count, pods)).await;
        let mut status_result = Ok(());
        if let Some(status) = &status {
            status_result = self.write_status(status.clone()).await;
        }
        let history = self
            .truncate_history(pods, &revisions, Some(&current), Some(&update))
            .await;
        result?;
        status_result?;
        history?;
        Ok(status)
    }

    /// Upstream's getStatefulSetRevisions: the current and update revisions (creating or
    /// renumbering the update revision as needed) and the collision count.
    async fn find_revisions(
        &self,
        revisions: &[ControllerRevision],
    ) -> Result<(ControllerRevision, ControllerRevision, i32), ReconcileError> {
        let status = self.set.status.clone().unwrap_or_default();
        let mut collision_count = status.collision_count.unwrap_or(0);
        let next = revisions.last().map_or(1, |r| r.revision + 1);
        let proposed = revision::new_revision(self.set, next, collision_count);
        let equal: Vec<&ControllerRevision> = revisions
            .iter()
            .filter(|r| revision::equal(r, &proposed))
            .collect();
        let latest = revisions.last();
        let update = match (equal.last(), latest) {
            (Some(_), Some(latest)) if revision::equal(latest, &proposed) => latest.clone(),
            (Some(found), _) => self.renumber(found, proposed.revision).await?,
            (None, Some(latest)) if self.matches_latest(latest) => latest.clone(),
            (None, _) => self.create_revision(proposed, &mut collision_count).await?,
        };
        let current = status
            .current_revision
            .as_ref()
            .and_then(|name| revisions.iter().find(|r| r.metadata.name.as_ref() == Some(name)))
            .cloned()
            .unwrap_or_else(|| update.clone());
        Ok((current, update, collision_count))
    }

    /// Upstream's setMatchesLatestExistingRevision (StatefulSetSemanticRevisionComparison, on
    /// by default): whether the latest revision, read back and written again as this
    /// controller writes revisions, is the set's template (revisions written by older
    /// releases serialise the same template differently).
    fn matches_latest(&self, latest: &ControllerRevision) -> bool {
        let Some(template) = revision::template_of(latest) else {
            return false;
        };
        let Some(spec) = self.set.spec.as_ref() else {
            return false;
        };
        revision::patch(&template) == revision::patch(&spec.template)
    }

    async fn renumber(
        &self,
        found: &ControllerRevision,
        number: i64,
    ) -> Result<ControllerRevision, ReconcileError> {
        let api = self.revision_api();
        let mut revision = found.clone();
        for attempt in 0..UPDATE_ATTEMPTS {
            if revision.revision == number {
                return Ok(revision);
            }
            revision.revision = number;
            match api
                .replace(&revision.name_any(), &PostParams::default(), &revision)
                .await
            {
                Ok(updated) => return Ok(updated),
                Err(err) if is_conflict(&err) && attempt + 1 < UPDATE_ATTEMPTS => {
                    revision = api.get(&found.name_any()).await?;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(revision)
    }

    /// Upstream's CreateControllerRevision: on a name collision with other data, counts the
    /// collision and tries the next name.
    async fn create_revision(
        &self,
        proposed: ControllerRevision,
        collision_count: &mut i32,
    ) -> Result<ControllerRevision, ReconcileError> {
        let api = self.revision_api();
        let data = revision::data_bytes(&proposed);
        loop {
            let hash = crate::history::revision_hash(data.as_bytes(), Some(*collision_count));
            let mut candidate = proposed.clone();
            candidate.metadata.name = Some(crate::history::revision_name(&self.name, &hash));
            match api.create(&PostParams::default(), &candidate).await {
                Ok(created) => return Ok(created),
                Err(err) if is_already_exists(&err) => {
                    let existing = api.get(&candidate.name_any()).await?;
                    if revision::data_bytes(&existing) == data {
                        return Ok(existing);
                    }
                    *collision_count = collision_count.checked_add(1).ok_or_else(|| {
                        ReconcileError::Invalid("too many ControllerRevision name collisions".into())
                    })?;
                }
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Upstream's truncateHistory: deletes the oldest revisions that no pod, nor the current or
    /// update revision, uses, beyond `revisionHistoryLimit`.
    async fn truncate_history(
        &self,
        pods: &[Pod],
        revisions: &[ControllerRevision],
        current: Option<&ControllerRevision>,
        update: Option<&ControllerRevision>,
    ) -> Result<(), ReconcileError> {
        let mut live: HashSet<&str> = pods.iter().map(pod_revision).collect();
        live.extend(
            current
                .iter()
                .chain(update.iter())
                .filter_map(|r| r.metadata.name.as_deref()),
        );
        let history: Vec<&ControllerRevision> = revisions
            .iter()
            .filter(|r| !live.contains(r.metadata.name.as_deref().unwrap_or("")))
            .collect();
        let limit = self
            .set
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(10);
        let Ok(limit) = usize::try_from(limit) else {
            return Ok(());
        };
        if history.len() <= limit {
            return Ok(());
        }
        let api = self.revision_api();
        for old in &history[..history.len() - limit] {
            match api.delete(&old.name_any(), &DeleteParams::default()).await {
                Ok(_) => {}
                Err(err) if is_not_found(&err) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// The set with the template of `revision` (upstream's ApplyRevision).
    fn at_revision(&self, revision: &ControllerRevision) -> Result<StatefulSet, ReconcileError> {
        let template = revision::template_of(revision).ok_or_else(|| {
            ReconcileError::Invalid(format!(
                "ControllerRevision {} holds no pod template",
                revision.name_any()
            ))
        })?;
        let mut set = self.set.clone();
        if let Some(spec) = set.spec.as_mut() {
            spec.template = template;
        }
        Ok(set)
    }

    fn is_rolling(&self) -> bool {
        self.set
            .spec
            .as_ref()
            .and_then(|s| s.update_strategy.as_ref())
            .and_then(|s| s.type_.as_deref())
            .is_none_or(|t| t == "RollingUpdate")
    }

    fn partition(&self) -> Option<i64> {
        let rolling = self
            .set
            .spec
            .as_ref()
            .and_then(|s| s.update_strategy.as_ref())
            .and_then(|s| s.rolling_update.as_ref())?;
        Some(i64::from(rolling.partition.unwrap_or(0)))
    }

    /// Upstream's newVersionedStatefulSetPod: ordinals below the partition (or, without a
    /// rollingUpdate, below the current replicas) are made at the current revision.
    fn versioned_pod(
        &self,
        current_set: &StatefulSet,
        update_set: &StatefulSet,
        current: &str,
        update: &str,
        ordinal: i64,
    ) -> Result<Pod, ReconcileError> {
        let start = start_ordinal(self.set);
        let current_replicas = i64::from(
            self.set
                .status
                .as_ref()
                .and_then(|s| s.current_replicas)
                .unwrap_or(0),
        );
        let at_current = match self.partition() {
            None => self.is_rolling() && ordinal < start + current_replicas,
            Some(partition) => ordinal < start + partition,
        };
        if at_current {
            identity::new_pod(current_set, ordinal, current)
        } else {
            identity::new_pod(update_set, ordinal, update)
        }
    }

    /// Upstream's updateStatefulSet: creates, replaces and deletes pods toward the target state
    /// and returns the status to record (absent when nothing could be computed).
    async fn update_pods(
        &self,
        current: &ControllerRevision,
        update: &ControllerRevision,
        collision_count: i32,
        pods: &[Pod],
    ) -> (Option<StatefulSetStatus>, Result<(), ReconcileError>) {
        let (current_set, update_set) = match (self.at_revision(current), self.at_revision(update)) {
            (Ok(c), Ok(u)) => (c, u),
            (Err(err), _) | (_, Err(err)) => return (None, Err(err)),
        };
        let current_name = current.name_any();
        let update_name = update.name_any();
        let mut status = StatefulSetStatus {
            observed_generation: self.set.metadata.generation,
            current_revision: Some(current_name.clone()),
            update_revision: Some(update_name.clone()),
            collision_count: Some(collision_count),
            ..StatefulSetStatus::default()
        };
        self.count(&mut status, current, update, &[pods]);

        let start = start_ordinal(self.set);
        let count = usize::try_from(end_ordinal(self.set) - start + 1).unwrap_or(0);
        let mut slots: Vec<Option<Pod>> = vec![None; count];
        let mut condemned = Vec::new();
        for pod in pods {
            if in_ordinal_range(pod, self.set) {
                if let Ok(index) = usize::try_from(ordinal(pod) - start) {
                    slots[index] = Some(pod.clone());
                }
            } else if ordinal(pod) >= 0 {
                condemned.push(pod.clone());
            }
        }
        let mut replicas = Vec::with_capacity(count);
        for (index, slot) in slots.into_iter().enumerate() {
            let pod = match slot {
                Some(pod) => pod,
                None => {
                    let o = start + i64::try_from(index).unwrap_or(0);
                    match self.versioned_pod(&current_set, &update_set, &current_name, &update_name, o) {
                        Ok(pod) => pod,
                        Err(err) => return (Some(status), Err(err)),
                    }
                }
            };
            replicas.push(pod);
        }
        condemned.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
        let slots = Slots { replicas, condemned };
        let min_ready = self.min_ready_seconds();
        let first_unhealthy = slots
            .replicas
            .iter()
            .chain(slots.condemned.iter().rev())
            .find(|p| is_unavailable(p, min_ready, self.now))
            .map(ResourceExt::name_any);

        if self.set.metadata.deletion_timestamp.is_some() {
            return (Some(status), Ok(()));
        }
        let monotonic = self
            .set
            .spec
            .as_ref()
            .and_then(|s| s.pod_management_policy.as_deref())
            != Some("Parallel");
        let recount = |status: &mut StatefulSetStatus| {
            self.count(status, current, update, &[&slots.replicas, &slots.condemned]);
        };

        let (exit, result) = self
            .run_for_all(slots.replicas.len(), monotonic, |i| {
                self.process_replica(&update_set, monotonic, &slots.replicas[i])
            })
            .await;
        if exit || result.is_err() {
            recount(&mut status);
            return (Some(status), result);
        }
        let (exit, result) = self
            .run_for_all(slots.condemned.len(), monotonic, |i| {
                let (pod, update_set) = (&slots.condemned[i], &update_set);
                async move {
                    if !self.claims_match_policy(update_set, pod) {
                        self.update_claims_for_policy(update_set, pod).await?;
                    }
                    Ok(false)
                }
            })
            .await;
        if exit || result.is_err() {
            recount(&mut status);
            return (Some(status), result);
        }
        let (exit, result) = self
            .run_for_all(slots.condemned.len(), monotonic, |i| {
                self.process_condemned(first_unhealthy.as_deref(), monotonic, &slots.condemned[i])
            })
            .await;
        recount(&mut status);
        if exit || result.is_err() {
            return (Some(status), result);
        }
        if !self.is_rolling() {
            return (Some(status), Ok(()));
        }
        // The rolling update: delete the highest ordinal not at the update revision, one at a
        // time, waiting for each replacement to be available, down to the partition.
        let update_min = usize::try_from(self.partition().unwrap_or(0)).unwrap_or(0);
        for target in (update_min..slots.replicas.len()).rev() {
            let pod = &slots.replicas[target];
            if pod_revision(pod) != update_name && !is_terminating(pod) {
                tracing::debug!(pod = %pod.name_any(), "terminating pod for update");
                if let Err(err) = self.delete_pod(pod).await
                    && !matches!(&err, ReconcileError::Kube(e) if is_not_found(e))
                {
                    return (Some(status), Err(err));
                }
                status.current_replicas = Some(status.current_replicas.unwrap_or(0) - 1);
                return (Some(status), Ok(()));
            }
            if is_unavailable(pod, min_ready, self.now) {
                return (Some(status), Ok(()));
            }
        }
        (Some(status), Ok(()))
    }

    /// Upstream's updateStatus over some lists of pods.
    fn count(
        &self,
        status: &mut StatefulSetStatus,
        current: &ControllerRevision,
        update: &ControllerRevision,
        lists: &[&[Pod]],
    ) {
        let min_ready = self.min_ready_seconds();
        let (mut replicas, mut ready, mut available, mut at_current, mut updated) = (0, 0, 0, 0, 0);
        let current_name = current.name_any();
        let update_name = update.name_any();
        for pod in lists.iter().flat_map(|l| l.iter()) {
            if is_created(pod) {
                replicas += 1;
            }
            if is_running_and_ready(pod) {
                ready += 1;
                if pods::is_available(pod, min_ready, self.now) {
                    available += 1;
                }
            }
            if is_created(pod) && !is_terminating(pod) {
                let revision = pod_revision(pod);
                if revision == current_name {
                    at_current += 1;
                }
                if revision == update_name {
                    updated += 1;
                }
            }
        }
        status.replicas = replicas;
        status.ready_replicas = Some(ready);
        status.available_replicas = Some(available);
        status.current_replicas = Some(at_current);
        status.updated_replicas = Some(updated);
    }

    /// Upstream's runForAll: one by one, stopping at the first that asks to, when monotonic;
    /// else in slow-start batches, stopping at the first batch with errors.
    async fn run_for_all<'s, F, Fut>(
        &'s self,
        len: usize,
        monotonic: bool,
        f: F,
    ) -> (bool, Result<(), ReconcileError>)
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = Result<bool, ReconcileError>> + 's,
    {
        if monotonic {
            for i in 0..len {
                match f(i).await {
                    Ok(false) => {}
                    Ok(true) => return (true, Ok(())),
                    Err(err) => return (true, Err(err)),
                }
            }
            return (false, Ok(()));
        }
        let mut next = 0;
        let mut batch = 1.min(len);
        while batch > 0 {
            let results = future::join_all((next..next + batch).map(&f)).await;
            next += batch;
            let errors: Vec<String> = results
                .into_iter()
                .filter_map(Result::err)
                .map(|e| error_message(&e))
                .collect();
            if let Some(err) = aggregate(errors) {
                return (true, Err(err));
            }
            batch = (batch * 2).min(len - next).min(MAX_BATCH);
        }
        (false, Ok(()))
    }

    /// Upstream's processReplica; `Ok(true)` stops a monotonic pass.
    async fn process_replica(
        &self,
        update_set: &StatefulSet,
        monotonic: bool,
        pod: &Pod,
    ) -> Result<bool, ReconcileError> {
        // Finished pods (Failed, or Succeeded after an eviction or a node reboot) are replaced.
        if is_finished(pod) {
            if pod.metadata.deletion_timestamp.is_none() {
                self.delete_pod(pod).await?;
            }
            return Ok(true);
        }
        if !is_created(pod) {
            if self.claim_is_stale(pod) {
                return Ok(true);
            }
            self.create_pod(pod).await?;
            if monotonic {
                return Ok(true);
            }
        }
        if is_pending(pod) {
            self.create_claims(pod).await?;
            if let Err(err) = self.update_claims_for_policy(self.set, pod).await {
                self.pod_event("update", pod, Some(&err)).await;
                return Err(err);
            }
        }
        if monotonic {
            let min_ready = self.min_ready_seconds();
            if is_terminating(pod) {
                tracing::debug!(pod = %pod.name_any(), "waiting for the pod to terminate");
                return Ok(true);
            }
            if !is_running_and_ready(pod) {
                tracing::debug!(pod = %pod.name_any(), "waiting for the pod to be Running and Ready");
                return Ok(true);
            }
            if !pods::is_available(pod, min_ready, self.now) {
                tracing::debug!(pod = %pod.name_any(), "waiting for the pod to be Available");
                return Ok(true);
            }
        }
        let retention_match = self.claims_match_policy(update_set, pod);
        if identity::identity_matches(self.set, pod)
            && identity::storage_matches(self.set, pod)
            && retention_match
        {
            return Ok(false);
        }
        self.update_pod(update_set, pod).await?;
        Ok(false)
    }

    /// Upstream's processCondemned.
    async fn process_condemned(
        &self,
        first_unhealthy: Option<&str>,
        monotonic: bool,
        pod: &Pod,
    ) -> Result<bool, ReconcileError> {
        if is_terminating(pod) {
            return Ok(monotonic);
        }
        let first = first_unhealthy == Some(pod.name_any().as_str());
        if monotonic && !first {
            if !is_running_and_ready(pod) {
                tracing::debug!(pod = ?first_unhealthy, "waiting for the pod to be Running and Ready before scaling down");
                return Ok(true);
            }
            if !pods::is_available(pod, self.min_ready_seconds(), self.now) {
                tracing::debug!(pod = ?first_unhealthy, "waiting for the pod to be Available before scaling down");
                return Ok(true);
            }
        }
        tracing::debug!(pod = %pod.name_any(), "terminating pod for scale down");
        self.delete_pod(pod).await?;
        Ok(true)
    }

    async fn publish(&self, type_: EventType, reason: String, note: String) {
        self.state
            .context
            .publish(COMPONENT, &self.set.object_ref(&()), type_, &reason, note)
            .await;
    }

    /// Upstream's recordPodEvent.
    async fn pod_event(&self, verb: &str, pod: &Pod, err: Option<&ReconcileError>) {
        let verb = title(verb);
        let pod = pod.name_any();
        match err {
            None => {
                self.publish(
                    EventType::Normal,
                    format!("Successful{verb}"),
                    format!("{verb} Pod {pod} in StatefulSet {} successful", self.name),
                )
                .await;
            }
            Some(err) => {
                self.publish(
                    EventType::Warning,
                    format!("Failed{verb}"),
                    format!(
                        "{verb} Pod {pod} in StatefulSet {} failed error: {}",
                        self.name,
                        error_message(err)
                    ),
                )
                .await;
            }
        }
    }

    /// Upstream's recordClaimEvent for a creation.
    async fn claim_event(&self, pod: &Pod, claim: &str, err: Option<&kube::Error>) {
        let pod = pod.name_any();
        match err {
            None => {
                self.publish(
                    EventType::Normal,
                    "SuccessfulCreate".into(),
                    format!(
                        "Create Claim {claim} Pod {pod} in StatefulSet {} success",
                        self.name
                    ),
                )
                .await;
            }
            Some(err) => {
                self.publish(
                    EventType::Warning,
                    "FailedCreate".into(),
                    format!(
                        "Create Claim {claim} for Pod {pod} in StatefulSet {} failed error: {}",
                        self.name,
                        api_message(err)
                    ),
                )
                .await;
            }
        }
    }

    async fn delete_pod(&self, pod: &Pod) -> Result<(), ReconcileError> {
        let result = self
            .pod_api()
            .delete(&pod.name_any(), &DeleteParams::default())
            .await
            .map(|_| ())
            .map_err(ReconcileError::from);
        self.pod_event("delete", pod, result.as_ref().err()).await;
        result
    }

    /// Upstream's CreateStatefulPod: the claims first, then the pod, then the claims' owners.
    async fn create_pod(&self, pod: &Pod) -> Result<(), ReconcileError> {
        if let Err(err) = self.create_claims(pod).await {
            self.pod_event("create", pod, Some(&err)).await;
            return Err(err);
        }
        let result = self.pod_api().create(&PostParams::default(), pod).await;
        if let Err(err) = &result
            && is_already_exists(err)
        {
            return result.map(|_| ()).map_err(ReconcileError::from);
        }
        if let Err(err) = self.update_claims_for_policy(self.set, pod).await {
            self.pod_event("update", pod, Some(&err)).await;
            return Err(err);
        }
        let result = result.map(|_| ()).map_err(ReconcileError::from);
        self.pod_event("create", pod, result.as_ref().err()).await;
        result
    }

    /// Upstream's createPersistentVolumeClaims: every missing claim of the pod is created.
    async fn create_claims(&self, pod: &Pod) -> Result<(), ReconcileError> {
        let mut errors = Vec::new();
        for (_, claim) in claims_for(self.set, ordinal(pod)) {
            let name = claim.name_any();
            match self
                .state
                .claims
                .get(&ObjectRef::new(&name).within(&self.namespace))
            {
                None => {
                    let result = self.claim_api().create(&PostParams::default(), &claim).await;
                    if let Err(err) = &result {
                        errors.push(format!("failed to create PVC {name}: {}", api_message(err)));
                    }
                    match &result {
                        Err(err) if is_already_exists(err) => {}
                        _ => self.claim_event(pod, &name, result.as_ref().err()).await,
                    }
                }
                Some(existing) => {
                    if existing.metadata.deletion_timestamp.is_some() {
                        errors.push(format!("pvc {name} is being deleted"));
                    }
                }
            }
        }
        aggregate(errors).map_or(Ok(()), Err)
    }

    fn claim(
        &self,
        set: &StatefulSet,
        pod: &Pod,
        template: &PersistentVolumeClaim,
    ) -> Option<Arc<PersistentVolumeClaim>> {
        let name = claim_name(set, template, ordinal(pod));
        self.state
            .claims
            .get(&ObjectRef::new(&name).within(&self.namespace))
    }

    fn templates(set: &StatefulSet) -> &[PersistentVolumeClaim] {
        set.spec
            .as_ref()
            .and_then(|s| s.volume_claim_templates.as_deref())
            .unwrap_or(&[])
    }

    /// Upstream's ClaimsMatchRetentionPolicy (missing claims are picked up later).
    fn claims_match_policy(&self, set: &StatefulSet, pod: &Pod) -> bool {
        Self::templates(set).iter().all(|template| {
            self.claim(set, pod, template)
                .is_none_or(|claim| identity::claim_owner_up_to_date(&claim, set, pod))
        })
    }

    /// Upstream's UpdatePodClaimForRetentionPolicy.
    async fn update_claims_for_policy(&self, set: &StatefulSet, pod: &Pod) -> Result<(), ReconcileError> {
        for template in Self::templates(set) {
            let Some(claim) = self.claim(set, pod, template) else {
                continue;
            };
            let name = claim.name_any();
            if identity::has_unexpected_controller(&claim, set, pod) {
                self.publish(
                    EventType::Warning,
                    "ConflictingController".into(),
                    format!(
                        "PersistentVolumeClaim {name} has a conflicting OwnerReference that acts as a manging controller, the retention policy is ignored for this claim"
                    ),
                )
                .await;
            }
            if !identity::claim_owner_up_to_date(&claim, set, pod) {
                let mut claim = (*claim).clone();
                identity::update_claim_owner_refs(&mut claim, set, pod);
                // An update that clears the list must say so: a missing field would keep it.
                let references = claim.metadata.owner_references.clone().unwrap_or_default();
                let patch = serde_json::json!({"metadata": {
                    "ownerReferences": references,
                    "resourceVersion": claim.metadata.resource_version,
                }});
                if let Err(err) = self
                    .claim_api()
                    .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                {
                    return Err(ReconcileError::Invalid(format!(
                        "could not update claim {name} for delete policy ownerRefs: {}",
                        api_message(&err)
                    )));
                }
            }
        }
        Ok(())
    }

    /// Upstream's PodClaimIsStale: with whenScaled Delete, a claim still owned by an earlier
    /// pod of this name blocks the new pod until it is gone.
    fn claim_is_stale(&self, pod: &Pod) -> bool {
        if !identity::deletes_when_scaled(self.set) {
            return false;
        }
        claims_for(self.set, ordinal(pod)).iter().any(|(_, claim)| {
            self.state
                .claims
                .get(&ObjectRef::new(&claim.name_any()).within(&self.namespace))
                .is_some_and(|existing| identity::has_stale_pod_ref(&existing, pod))
        })
    }

    /// Upstream's UpdateStatefulPod: restores the pod's identity and storage and its claims'
    /// owners, retrying conflicts on a fresh read.
    async fn update_pod(&self, set: &StatefulSet, pod: &Pod) -> Result<(), ReconcileError> {
        let api = self.pod_api();
        let mut pod = pod.clone();
        let mut attempted = false;
        let mut result = Ok(());
        for attempt in 0..UPDATE_ATTEMPTS {
            let mut consistent = true;
            if !identity::identity_matches(set, &pod) {
                identity::update_identity(set, &mut pod);
                consistent = false;
            }
            if !identity::storage_matches(set, &pod) {
                identity::update_storage(set, &mut pod);
                consistent = false;
                if let Err(err) = self.create_claims(&pod).await {
                    self.pod_event("update", &pod, Some(&err)).await;
                    return Err(err);
                }
            }
            if !self.claims_match_policy(set, &pod) {
                if let Err(err) = self.update_claims_for_policy(set, &pod).await {
                    self.pod_event("update", &pod, Some(&err)).await;
                    return Err(err);
                }
                consistent = false;
            }
            if consistent {
                result = Ok(());
                break;
            }
            attempted = true;
            match api.replace(&pod.name_any(), &PostParams::default(), &pod).await {
                Ok(_) => {
                    result = Ok(());
                    break;
                }
                Err(err) if is_conflict(&err) && attempt + 1 < UPDATE_ATTEMPTS => {
                    pod = api.get(&pod.name_any()).await?;
                }
                Err(err) => {
                    result = Err(err.into());
                    break;
                }
            }
        }
        if attempted {
            self.pod_event("update", &pod, result.as_ref().err()).await;
        }
        result
    }

    /// Upstream's updateStatefulSetStatus: completes a finished rolling update, then writes the
    /// status when it differs.
    async fn write_status(&self, mut status: StatefulSetStatus) -> Result<(), ReconcileError> {
        let replicas = i32::try_from(identity::replicas(self.set)).unwrap_or(i32::MAX);
        if self.is_rolling()
            && status.updated_replicas.unwrap_or(0) == replicas
            && status.ready_replicas.unwrap_or(0) == replicas
            && status.replicas == replicas
        {
            status.current_replicas = status.updated_replicas;
            status.current_revision = status.update_revision.clone();
        }
        let old = self.set.status.clone().unwrap_or_default();
        let n = |v: Option<i32>| v.unwrap_or(0);
        let s = |v: &Option<String>| v.clone().unwrap_or_default();
        let inconsistent = status.observed_generation.unwrap_or(0) > old.observed_generation.unwrap_or(0)
            || status.replicas != old.replicas
            || n(status.current_replicas) != n(old.current_replicas)
            || n(status.ready_replicas) != n(old.ready_replicas)
            || n(status.updated_replicas) != n(old.updated_replicas)
            || s(&status.current_revision) != s(&old.current_revision)
            || n(status.available_replicas) != n(old.available_replicas)
            || s(&status.update_revision) != s(&old.update_revision);
        if !inconsistent {
            return Ok(());
        }
        let count = |v: Option<i32>| match v {
            Some(v) if v != 0 => serde_json::json!(v),
            _ => serde_json::Value::Null,
        };
        let text = |v: &Option<String>| match v {
            Some(v) if !v.is_empty() => serde_json::json!(v),
            _ => serde_json::Value::Null,
        };
        let patch = serde_json::json!({"status": {
            "observedGeneration": status.observed_generation.filter(|g| *g != 0),
            "replicas": status.replicas,
            "readyReplicas": count(status.ready_replicas),
            "currentReplicas": count(status.current_replicas),
            "updatedReplicas": count(status.updated_replicas),
            "currentRevision": text(&status.current_revision),
            "updateRevision": text(&status.update_revision),
            "collisionCount": status.collision_count,
            "availableReplicas": n(status.available_replicas),
            "conditions": serde_json::Value::Null,
        }});
        match self
            .set_api()
            .patch_status(&self.name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_read_like_upstreams() {
        assert!(aggregate(Vec::new()).is_none());
        assert_eq!(error_message(&aggregate(vec!["a".into()]).unwrap()), "a");
        assert_eq!(
            error_message(&aggregate(vec!["a".into(), "b".into(), "a".into()]).unwrap()),
            "[a, b]"
        );
        assert_eq!(title("create"), "Create");
    }
}
