//! A DaemonSet's ControllerRevisions (upstream: pkg/controller/daemon/update.go
//! `constructHistory`, `snapshot`, `dedupCurHistories`, `cleanupHistory`): one revision per
//! template, named `<daemonset>-<template hash>` and labelled with the hash, whose data is the
//! patch that restores the template (what `kubectl rollout undo` applies); hash collisions bump
//! `status.collisionCount`; old revisions beyond `revisionHistoryLimit` are pruned unless pods
//! still use them. It writes revisions, the collision count and pod hash labels, nothing else.

use std::collections::HashSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::{Resource, ResourceExt};
use serde_json::{Value, json};

use super::placement::REVISION_HASH_LABEL;
use super::ref_manager;
use crate::harness::{Context, ReconcileError, is_already_exists, is_not_found};
use crate::history::revision_name;
use crate::pods::{self, Selector, controller_of};

/// Upstream's `getPatch`: the DaemonSet's template as a patch that replaces it.
pub fn patch_of(ds: &DaemonSet) -> Value {
    let mut template = ds
        .spec
        .as_ref()
        .and_then(|s| serde_json::to_value(&s.template).ok())
        .unwrap_or_else(|| json!({}));
    if let Some(map) = template.as_object_mut() {
        map.insert("$patch".to_owned(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// Upstream's `Match`: whether the revision holds the DaemonSet's template.
fn matches(ds: &DaemonSet, revision: &ControllerRevision) -> bool {
    revision.data.as_ref().is_some_and(|d| d.0 == patch_of(ds))
}

fn hash_of(revision: &ControllerRevision) -> Option<&str> {
    revision
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_HASH_LABEL))
        .map(String::as_str)
}

/// Upstream's `constructHistory`: the current revision (created when missing, its revision
/// number raised above the old ones) and the old revisions.
pub async fn construct(
    ds: &DaemonSet,
    selector: &Selector,
    pods: &[Pod],
    context: &Context,
    store: &Store<ControllerRevision>,
) -> Result<(ControllerRevision, Vec<ControllerRevision>), ReconcileError> {
    let namespace = ds.namespace().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(context.client.clone(), &namespace);
    let uid = ds.meta().uid.clone();
    let candidates: Vec<ControllerRevision> = store
        .state()
        .iter()
        .filter(|r| r.namespace().as_deref() == Some(namespace.as_str()))
        .filter(|r| controller_of(&r.metadata).is_none_or(|o| Some(&o.uid) == uid.as_ref()))
        .map(|r| (**r).clone())
        .collect();
    let claimed = ref_manager(ds, selector, context).claim(&api, candidates).await?;
    let mut current = Vec::new();
    let mut old = Vec::new();
    for mut revision in claimed {
        if hash_of(&revision).is_none() {
            let name = revision.name_any();
            revision
                .metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(REVISION_HASH_LABEL.to_owned(), name.clone());
            revision = api.replace(&name, &PostParams::default(), &revision).await?;
        }
        if matches(ds, &revision) {
            current.push(revision);
        } else {
            old.push(revision);
        }
    }
    let next = old.iter().map(|r| r.revision).max().unwrap_or(0) + 1;
    let current = if current.is_empty() {
        snapshot(ds, next, context).await?
    } else {
        let mut kept = dedup(ds, current, pods, context).await?;
        if kept.revision < next {
            kept.revision = next;
            kept = api
                .replace(&kept.name_any(), &PostParams::default(), &kept)
                .await?;
        }
        kept
    };
    Ok((current, old))
}

/// Upstream's `dedupCurHistories`: of several revisions with the current template, the one
/// with the highest revision stays; pods are relabelled to its hash.
async fn dedup(
    ds: &DaemonSet,
    mut current: Vec<ControllerRevision>,
    pods: &[Pod],
    context: &Context,
) -> Result<ControllerRevision, ReconcileError> {
    if current.len() == 1 {
        return current
            .pop()
            .ok_or_else(|| ReconcileError::Invalid("no current revision".into()));
    }
    let mut keep_index = 0;
    for (index, revision) in current.iter().enumerate() {
        if revision.revision >= current[keep_index].revision {
            keep_index = index;
        }
    }
    let keep = current.swap_remove(keep_index);
    let keep_hash = hash_of(&keep).unwrap_or_default().to_owned();
    let namespace = ds.namespace().unwrap_or_default();
    let pod_api: Api<Pod> = Api::namespaced(context.client.clone(), &namespace);
    for pod in pods {
        if pod.labels().get(REVISION_HASH_LABEL) != Some(&keep_hash) {
            let patch = json!({"metadata": {"labels": {REVISION_HASH_LABEL: keep_hash}}});
            pod_api
                .patch(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    let api: Api<ControllerRevision> = Api::namespaced(context.client.clone(), &namespace);
    for duplicate in current {
        api.delete(&duplicate.name_any(), &DeleteParams::default())
            .await?;
    }
    Ok(keep)
}

/// Upstream's `snapshot`: creates the revision of the current template; on a name taken by
/// another template, bumps the collision count and fails so the sync is retried.
async fn snapshot(
    ds: &DaemonSet,
    revision: i64,
    context: &Context,
) -> Result<ControllerRevision, ReconcileError> {
    let Some(spec) = ds.spec.as_ref() else {
        return Err(ReconcileError::Invalid("the DaemonSet has no spec".into()));
    };
    let collision_count = ds.status.as_ref().and_then(|s| s.collision_count);
    let hash = pods::template_hash(&spec.template, collision_count);
    let name = revision_name(&ds.name_any(), &hash);
    let mut labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.to_owned(), hash);
    let namespace = ds.namespace().unwrap_or_default();
    let history = ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(labels),
            annotations: ds.metadata.annotations.clone(),
            owner_references: Some(vec![pods::controller_ref(ds)]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(patch_of(ds))),
        revision,
    };
    let api: Api<ControllerRevision> = Api::namespaced(context.client.clone(), &namespace);
    let err = match api.create(&PostParams::default(), &history).await {
        Ok(created) => return Ok(created),
        Err(err) if is_already_exists(&err) => err,
        Err(err) => return Err(err.into()),
    };
    let existing = api.get(&name).await?;
    if matches(ds, &existing) {
        return Ok(existing);
    }
    let ds_api: Api<DaemonSet> = Api::namespaced(context.client.clone(), &namespace);
    let mut fresh = ds_api.get(&ds.name_any()).await?;
    let fresh_count = fresh.status.as_ref().and_then(|s| s.collision_count);
    if fresh_count != collision_count {
        return Err(ReconcileError::Invalid(format!(
            "found a stale collision count ({}, expected {}) of DaemonSet {:?} while processing; will retry until it is updated",
            collision_count.unwrap_or(0),
            fresh_count.unwrap_or(0),
            ds.name_any()
        )));
    }
    let status = fresh.status.get_or_insert_with(Default::default);
    status.collision_count = Some(fresh_count.unwrap_or(0) + 1);
    ds_api
        .replace_status(&ds.name_any(), &PostParams::default(), &fresh)
        .await?;
    tracing::info!(
        collision_count = fresh_count.unwrap_or(0) + 1,
        "found a hash collision for DaemonSet - bumping collisionCount to resolve it"
    );
    Err(err.into())
}

/// Upstream's `cleanupHistory`: deletes the oldest revisions beyond `revisionHistoryLimit`
/// that no pod still carries.
pub async fn cleanup(
    ds: &DaemonSet,
    old: &[ControllerRevision],
    pods: &[Pod],
    context: &Context,
) -> Result<(), ReconcileError> {
    let limit = ds
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10);
    let mut to_kill = i64::try_from(old.len()).unwrap_or(i64::MAX) - i64::from(limit);
    if to_kill <= 0 {
        return Ok(());
    }
    let live: HashSet<&str> = pods
        .iter()
        .filter_map(|p| p.labels().get(REVISION_HASH_LABEL).map(String::as_str))
        .filter(|h| !h.is_empty())
        .collect();
    let mut old: Vec<&ControllerRevision> = old.iter().collect();
    old.sort_by_key(|r| r.revision);
    let api: Api<ControllerRevision> =
        Api::namespaced(context.client.clone(), &ds.namespace().unwrap_or_default());
    for revision in old {
        if to_kill <= 0 {
            break;
        }
        if hash_of(revision).is_some_and(|h| live.contains(h)) {
            continue;
        }
        match api.delete(&revision.name_any(), &DeleteParams::default()).await {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => return Err(err.into()),
        }
        to_kill -= 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::daemon_set;
    use super::*;

    #[test]
    fn the_patch_replaces_the_template() {
        let ds = daemon_set(json!({"type": "OnDelete"}));
        let patch = patch_of(&ds);
        assert_eq!(patch["spec"]["template"]["$patch"], "replace");
        assert_eq!(patch["spec"]["template"]["spec"]["containers"][0]["image"], "i");
        assert_eq!(patch.as_object().unwrap().len(), 1);
        let revision = ControllerRevision {
            data: Some(RawExtension(patch)),
            ..ControllerRevision::default()
        };
        assert!(matches(&ds, &revision));
        let mut changed = ds;
        changed
            .spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .containers[0]
            .image = Some("j".into());
        assert!(!matches(&changed, &revision));
    }
}
