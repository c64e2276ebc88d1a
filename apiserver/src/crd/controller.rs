//! The CRD controllers apiextensions-apiserver runs in-process, as one internal task driven
//! by a watch on CustomResourceDefinitions through the generic store: the naming controller
//! (`status.acceptedNames`, `NamesAccepted` with upstream's conflict reasons), the
//! establishing controller (`Established`), `status.storedVersions`, the registration of
//! established CRDs' served versions into [`Registries`] (and their removal), and the
//! finalizer controller (a deleted CRD's custom resources are deleted, then its
//! `customresourcecleanup.apiextensions.k8s.io` finalizer removed).
//!
//! It writes only when a computed status differs from the stored one: an idle cluster
//! makes no writes. It does not serve requests and does not touch custom resources except
//! to delete them when their CRD goes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionCondition, CustomResourceDefinitionNames,
    CustomResourceDefinitionStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rudder_machinery::strategy::UpdateTarget;
use serde_json::Value;
use tracing::Instrument;

use super::CLEANUP_FINALIZER;
use crate::Shared;
use crate::object;
use crate::registry::{Registries, Resource};
use crate::status::ApiError;
use crate::store::{
    DeleteOptions, GenericStore, ListQuery, StoreHooks, WatchEvent, WatchQuery, WriteOptions,
};

/// How long the controller waits before watching again after its watch failed.
const REWATCH_DELAY: Duration = Duration::from_secs(1);

/// The CRD resource.
fn crd_resource(registries: &Registries) -> Option<Arc<Resource>> {
    registries
        .current()
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
}

fn decode(value: &Value) -> Option<CustomResourceDefinition> {
    serde_json::from_value(value.clone()).ok()
}

/// Registers the served versions of every established CRD in storage (start-up, before the
/// server serves requests).
pub async fn load(store: &GenericStore, registries: &Registries) -> Result<(), ApiError> {
    let Some(resource) = crd_resource(registries) else {
        return Ok(());
    };
    let list = store.list(&resource, None, &ListQuery::default()).await?;
    for item in &list.items {
        if let Some(crd) = decode(item) {
            registries.set_custom(object::name(item), super::resources(&crd));
        }
    }
    Ok(())
}

/// The requested names with the defaults the CRD strategy sets (`singular`, `listKind`).
fn requested_names(crd: &CustomResourceDefinition) -> CustomResourceDefinitionNames {
    let mut names = crd.spec.names.clone();
    if names.singular.as_deref().unwrap_or("").is_empty() {
        names.singular = Some(names.kind.to_lowercase());
    }
    if names.list_kind.as_deref().unwrap_or("").is_empty() {
        names.list_kind = Some(format!("{}List", names.kind));
    }
    names
}

/// Upstream's `equalToAcceptedOrFresh`.
fn fresh(requested: &str, accepted: &str, used: &BTreeSet<String>) -> Result<(), String> {
    if requested == accepted || !used.contains(requested) {
        Ok(())
    } else {
        Err(format!("{requested:?} is already in use"))
    }
}

/// The naming controller's `calculateNamesAndConditions` (the names other CRDs of the group
/// accepted are `others`), with the establishing controller's step folded in: names accepted
/// means Established.
fn names_and_conditions(
    crd: &CustomResourceDefinition,
    others: &[&CustomResourceDefinition],
) -> (
    CustomResourceDefinitionNames,
    CustomResourceDefinitionCondition,
    CustomResourceDefinitionCondition,
) {
    let mut resources = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for other in others {
        let Some(names) = other.status.as_ref().and_then(|s| s.accepted_names.as_ref()) else {
            continue;
        };
        resources.insert(names.plural.clone());
        resources.extend(names.singular.clone());
        resources.extend(names.short_names.iter().flatten().cloned());
        kinds.insert(names.kind.clone());
        kinds.extend(names.list_kind.clone());
    }
    let requested = requested_names(crd);
    let accepted = crd
        .status
        .as_ref()
        .and_then(|s| s.accepted_names.clone())
        .unwrap_or_default();
    let mut names = accepted.clone();
    let mut conflict: Option<(&str, String)> = None;
    match fresh(&requested.plural, &accepted.plural, &resources) {
        Ok(()) => names.plural = requested.plural.clone(),
        Err(e) => conflict = Some(("PluralConflict", e)),
    }
    let requested_singular = requested.singular.clone().unwrap_or_default();
    match fresh(
        &requested_singular,
        accepted.singular.as_deref().unwrap_or(""),
        &resources,
    ) {
        Ok(()) => names.singular = requested.singular.clone(),
        Err(e) => conflict = Some(("SingularConflict", e)),
    }
    if requested.short_names != accepted.short_names {
        let existing: BTreeSet<&String> = accepted.short_names.iter().flatten().collect();
        let errors: Vec<String> = requested
            .short_names
            .iter()
            .flatten()
            .filter(|s| !existing.contains(s))
            .filter_map(|s| fresh(s, "", &resources).err())
            .collect();
        match errors.as_slice() {
            [] => names.short_names = requested.short_names.clone(),
            [one] => conflict = Some(("ShortNamesConflict", one.clone())),
            many => conflict = Some(("ShortNamesConflict", format!("[{}]", many.join(", ")))),
        }
    }
    match fresh(&requested.kind, &accepted.kind, &kinds) {
        Ok(()) => names.kind = requested.kind.clone(),
        Err(e) => conflict = Some(("KindConflict", e)),
    }
    let requested_list_kind = requested.list_kind.clone().unwrap_or_default();
    match fresh(
        &requested_list_kind,
        accepted.list_kind.as_deref().unwrap_or(""),
        &kinds,
    ) {
        Ok(()) => names.list_kind = requested.list_kind.clone(),
        Err(e) => conflict = Some(("ListKindConflict", e)),
    }
    names.categories = requested.categories;
    let names_accepted = match conflict {
        Some((reason, message)) => condition("NamesAccepted", "False", reason, &message),
        None => condition("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
    };
    let existing = crd
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Established"))
        .cloned();
    let established = match existing {
        Some(established) if established.status == "True" => established,
        _ if names_accepted.status == "True" => condition(
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
        ),
        Some(established) => established,
        None => condition(
            "Established",
            "False",
            "NotAccepted",
            "not all names are accepted",
        ),
    };
    (names, names_accepted, established)
}

fn condition(type_: &str, status: &str, reason: &str, message: &str) -> CustomResourceDefinitionCondition {
    CustomResourceDefinitionCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        ..Default::default()
    }
}

/// Upstream's `SetCRDCondition`: the transition time changes only with the status.
fn set_condition(status: &mut CustomResourceDefinitionStatus, mut new: CustomResourceDefinitionCondition) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            if existing.status != new.status || existing.last_transition_time.is_none() {
                new.last_transition_time = Some(now());
            } else {
                new.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = new;
        }
        None => {
            new.last_transition_time = Some(now());
            conditions.push(new);
        }
    }
}

fn now() -> Time {
    Time(jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap_or_default())
}

/// The status the naming and establishing controllers and the stored versions rule give
/// `crd`, given the other CRDs of its group.
fn desired_status(
    crd: &CustomResourceDefinition,
    others: &[&CustomResourceDefinition],
) -> CustomResourceDefinitionStatus {
    let mut status = crd.status.clone().unwrap_or_default();
    let (names, names_accepted, established) = names_and_conditions(crd, others);
    status.accepted_names = Some(names);
    set_condition(&mut status, names_accepted);
    set_condition(&mut status, established);
    if let Some(storage) = crd.spec.versions.iter().find(|v| v.storage) {
        let stored = status.stored_versions.get_or_insert_with(Vec::new);
        if !stored.contains(&storage.name) {
            stored.push(storage.name.clone());
        }
    }
    status
}

/// The store hooks of CustomResourceDefinitions: the first delete adds the cleanup finalizer
/// and the `Terminating` condition (upstream's CRD REST `Delete`).
#[derive(Debug, Default)]
pub struct CrdHooks;

impl StoreHooks for CrdHooks {
    fn begin_create<'a>(
        &'a self,
        _store: &'a GenericStore,
        _object: &'a mut Value,
        _dry_run: bool,
    ) -> futures_util::future::BoxFuture<'a, Result<crate::store::Reservation, ApiError>> {
        Box::pin(async { Ok(Box::new(()) as crate::store::Reservation) })
    }

    fn begin_update<'a>(
        &'a self,
        _store: &'a GenericStore,
        _object: &'a mut Value,
        _old: &'a Value,
        _dry_run: bool,
    ) -> futures_util::future::BoxFuture<'a, Result<crate::store::Reservation, ApiError>> {
        Box::pin(async { Ok(Box::new(()) as crate::store::Reservation) })
    }

    fn finish<'a>(
        &'a self,
        _store: &'a GenericStore,
        _reservation: crate::store::Reservation,
        _succeeded: bool,
    ) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn after_delete<'a>(
        &'a self,
        _store: &'a GenericStore,
        _object: &'a Value,
    ) -> futures_util::future::BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn first_delete(&self, object: &mut Value, finalizers: &mut Vec<String>) {
        if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
            finalizers.push(CLEANUP_FINALIZER.to_owned());
        }
        if let Some(mut crd) = decode(object) {
            let mut status = crd.status.take().unwrap_or_default();
            set_condition(
                &mut status,
                condition(
                    "Terminating",
                    "True",
                    "InstanceDeletionPending",
                    "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
                ),
            );
            if let Ok(status) = serde_json::to_value(status)
                && let Some(map) = object.as_object_mut()
            {
                map.insert("status".into(), status);
            }
        }
    }
}

/// The controllers' state: the CRDs as last seen, and the cleanups running.
struct State {
    shared: Arc<Shared>,
    crds: BTreeMap<String, CustomResourceDefinition>,
    cleanups: Arc<Mutex<BTreeSet<String>>>,
}

/// Runs the CRD controllers until shutdown.
pub async fn run(shared: Arc<Shared>) {
    let shutdown = shared.api.shutdown.clone();
    let mut state = State {
        shared: shared.clone(),
        crds: BTreeMap::new(),
        cleanups: Arc::new(Mutex::new(BTreeSet::new())),
    };
    while !shutdown.is_cancelled() {
        if let Err(error) = state.watch(&shutdown).await {
            tracing::warn!(error = %error.message, "CRD controller watch failed; watching again");
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(REWATCH_DELAY) => {}
        }
    }
}

impl State {
    async fn watch(&mut self, shutdown: &tokio_util::sync::CancellationToken) -> Result<(), ApiError> {
        let registries = self.shared.api.registry.clone();
        let resource = crd_resource(&registries).ok_or_else(|| ApiError::internal("CRDs are not served"))?;
        let query = WatchQuery {
            send_initial_events: Some(true),
            allow_bookmarks: true,
            ..Default::default()
        };
        let mut events = self.shared.api.store.watch(resource, None, query).await?;
        self.crds.clear();
        loop {
            let event = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                event = events.next() => event,
            };
            match event {
                None => return Ok(()),
                Some(WatchEvent::Added(value) | WatchEvent::Modified(value)) => {
                    let Some(crd) = decode(&value) else { continue };
                    let name = object::name(&value).to_owned();
                    let group = crd.spec.group.clone();
                    self.crds.insert(name, crd);
                    self.sync_group(&group).await;
                }
                Some(WatchEvent::Deleted(value)) => {
                    let name = object::name(&value).to_owned();
                    registries.set_custom(&name, Vec::new());
                    if let Some(crd) = self.crds.remove(&name) {
                        self.sync_group(&crd.spec.group).await;
                    }
                }
                Some(WatchEvent::Bookmark {
                    initial_events_end: true,
                    ..
                }) => {
                    for name in registries.custom_names() {
                        if !self.crds.contains_key(&name) {
                            registries.set_custom(&name, Vec::new());
                        }
                    }
                }
                Some(WatchEvent::Bookmark { .. }) => {}
                Some(WatchEvent::Error(error)) => return Err(error),
            }
        }
    }

    /// Reconciles every CRD of `group` (names conflict only within a group).
    async fn sync_group(&self, group: &str) {
        let names: Vec<String> = self
            .crds
            .iter()
            .filter(|(_, crd)| crd.spec.group == group)
            .map(|(name, _)| name.clone())
            .collect();
        for name in names {
            let span = tracing::debug_span!("crd", name = %name);
            if let Err(error) = self.sync(&name).instrument(span).await {
                tracing::warn!(crd = %name, error = %error.message, "CRD status update failed");
            }
        }
    }

    async fn sync(&self, name: &str) -> Result<(), ApiError> {
        let Some(crd) = self.crds.get(name) else {
            return Ok(());
        };
        let registries = &self.shared.api.registry;
        let others: Vec<&CustomResourceDefinition> = self
            .crds
            .iter()
            .filter(|(other, c)| *other != name && c.spec.group == crd.spec.group)
            .map(|(_, c)| c)
            .collect();
        let desired = desired_status(crd, &others);
        if crd.status.as_ref() == Some(&desired) {
            registries.set_custom(name, super::resources(crd));
        } else {
            // Served before the status saying Established is written: a client that sees
            // Established can use the resource at once.
            let mut next = crd.clone();
            next.status = Some(desired);
            registries.set_custom(name, super::resources(&next));
            let written = write_status(&self.shared, name, |current| {
                let current = decode(current)?;
                Some(desired_status(&current, &others))
            })
            .await;
            if written.is_err() {
                registries.set_custom(name, super::resources(crd));
            }
            written?;
        }
        if crd.metadata.deletion_timestamp.is_some()
            && crd
                .metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == CLEANUP_FINALIZER)
        {
            self.start_cleanup(name, crd);
        }
        Ok(())
    }

    fn start_cleanup(&self, name: &str, crd: &CustomResourceDefinition) {
        let Ok(mut running) = self.cleanups.lock() else {
            return;
        };
        if !running.insert(name.to_owned()) {
            return;
        }
        let resource = self.shared.api.registry.current().resources_of_crd(name).next();
        let shared = self.shared.clone();
        let cleanups = self.cleanups.clone();
        let name = name.to_owned();
        let established = super::condition(crd, "Established") == Some("True");
        tokio::spawn(async move {
            if let Err(error) = cleanup(&shared, &name, resource, established).await {
                tracing::warn!(crd = %name, error = %error.message, "deleting custom resources failed");
            }
            if let Ok(mut running) = cleanups.lock() {
                running.remove(&name);
            }
        });
    }
}

/// Writes the CRD's status as `compute` makes it from the current object (`None`: leave it).
async fn write_status(
    shared: &Shared,
    name: &str,
    compute: impl Fn(&Value) -> Option<CustomResourceDefinitionStatus>,
) -> Result<(), ApiError> {
    let registries = &shared.api.registry;
    let resource = crd_resource(registries).ok_or_else(|| ApiError::internal("CRDs are not served"))?;
    let options = WriteOptions {
        subresource: "status".into(),
        ..WriteOptions::internal()
    };
    shared
        .api
        .store
        .update_with(&resource, "", name, UpdateTarget::Status, &options, |current| {
            let mut next = current.clone();
            if let Some(status) = compute(current)
                && let Some(map) = next.as_object_mut()
            {
                map.insert(
                    "status".into(),
                    serde_json::to_value(status).map_err(ApiError::internal)?,
                );
            }
            Ok(next)
        })
        .await
        .map(|_| ())
}

async fn set_terminating(
    shared: &Shared,
    name: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> Result<(), ApiError> {
    write_status(shared, name, |current| {
        let crd = decode(current)?;
        let mut crd_status = crd.status.unwrap_or_default();
        set_condition(&mut crd_status, condition("Terminating", status, reason, message));
        Some(crd_status)
    })
    .await
}

/// The finalizer controller for one deleted CRD: deletes its custom resources, waits for
/// them to be gone (watching, not polling), then removes the finalizer.
async fn cleanup(
    shared: &Shared,
    name: &str,
    resource: Option<Arc<Resource>>,
    established: bool,
) -> Result<(), ApiError> {
    let store = &shared.api.store;
    set_terminating(
        shared,
        name,
        "True",
        "InstanceDeletionInProgress",
        "CustomResource deletion is in progress",
    )
    .await?;
    match resource {
        Some(resource) => {
            let options = DeleteOptions::default();
            if let Err(error) = store
                .delete_collection(&resource, None, &ListQuery::default(), &options)
                .await
            {
                let message = format!("could not issue all deletes: {}", error.message);
                set_terminating(shared, name, "True", "InstanceDeletionFailed", &message).await?;
                return Err(error);
            }
            // Wait until the last one (held by its finalizers) is gone.
            let list = store.list(&resource, None, &ListQuery::default()).await?;
            if !list.items.is_empty() {
                let query = WatchQuery {
                    resource_version: Some(list.resource_version.to_string()),
                    ..Default::default()
                };
                let mut events = store.watch(resource.clone(), None, query).await?;
                let mut remaining: BTreeSet<String> = list
                    .items
                    .iter()
                    .map(|o| format!("{}/{}", object::namespace(o), object::name(o)))
                    .collect();
                while !remaining.is_empty() {
                    let event = tokio::select! {
                        () = shared.api.shutdown.cancelled() => return Ok(()),
                        event = events.next() => event,
                    };
                    match event {
                        Some(WatchEvent::Added(o)) => {
                            remaining.insert(format!("{}/{}", object::namespace(&o), object::name(&o)));
                        }
                        Some(WatchEvent::Deleted(o)) => {
                            remaining.remove(&format!("{}/{}", object::namespace(&o), object::name(&o)));
                        }
                        Some(WatchEvent::Error(error)) => {
                            let message = format!(
                                "could not confirm zero CustomResources remaining: {}",
                                error.message
                            );
                            set_terminating(shared, name, "True", "InstanceDeletionCheck", &message).await?;
                            return Err(error);
                        }
                        Some(_) => {}
                        None => return Ok(()),
                    }
                }
            }
            set_terminating(
                shared,
                name,
                "False",
                "InstanceDeletionCompleted",
                "removed all instances",
            )
            .await?;
        }
        None if !established => {
            set_terminating(
                shared,
                name,
                "False",
                "NeverEstablished",
                "resource was never established",
            )
            .await?;
        }
        None => {}
    }
    let crds = crd_resource(&shared.api.registry).ok_or_else(|| ApiError::internal("CRDs are not served"))?;
    store
        .update_with(
            &crds,
            "",
            name,
            UpdateTarget::Main,
            &WriteOptions::internal(),
            |current| {
                let mut next = current.clone();
                let finalizers: Vec<String> = object::finalizers(current)
                    .into_iter()
                    .filter(|f| f != CLEANUP_FINALIZER)
                    .collect();
                object::set_finalizers(&mut next, &finalizers);
                Ok(next)
            },
        )
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(name: &str, plural: &str, kind: &str, short: &[&str]) -> CustomResourceDefinition {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": plural, "kind": kind, "shortNames": short},
                "versions": [{"name": "v1", "served": true, "storage": true}],
            },
        }))
        .unwrap()
    }

    #[test]
    fn fresh_names_are_accepted_and_established() {
        let widgets = crd("widgets.example.com", "widgets", "Widget", &["wd"]);
        let status = desired_status(&widgets, &[]);
        let names = status.accepted_names.as_ref().unwrap();
        assert_eq!(names.plural, "widgets");
        assert_eq!(names.singular.as_deref(), Some("widget"));
        assert_eq!(names.list_kind.as_deref(), Some("WidgetList"));
        let conditions = status.conditions.unwrap();
        assert_eq!(conditions[0].type_, "NamesAccepted");
        assert_eq!(conditions[0].reason.as_deref(), Some("NoConflicts"));
        assert_eq!(conditions[1].type_, "Established");
        assert_eq!(conditions[1].status, "True");
        assert_eq!(status.stored_versions.unwrap(), ["v1"]);
    }

    #[test]
    fn conflicting_names_are_refused_with_upstream_reasons() {
        let mut first = crd("widgets.example.com", "widgets", "Widget", &["wd"]);
        first.status = Some(desired_status(&first, &[]));
        let plural = crd("widgets2.example.com", "widgets", "Gadget", &[]);
        let status = desired_status(&plural, &[&first]);
        let conditions = status.conditions.unwrap();
        assert_eq!(conditions[0].status, "False");
        assert_eq!(conditions[0].reason.as_deref(), Some("PluralConflict"));
        assert_eq!(
            conditions[0].message.as_deref(),
            Some("\"widgets\" is already in use")
        );
        assert_eq!(conditions[1].status, "False");
        assert_eq!(conditions[1].reason.as_deref(), Some("NotAccepted"));
        let short = crd("gadgets.example.com", "gadgets", "Gadget", &["wd"]);
        let status = desired_status(&short, &[&first]);
        let condition = &status.conditions.unwrap()[0];
        assert_eq!(condition.reason.as_deref(), Some("ShortNamesConflict"));
        assert!(status.accepted_names.unwrap().short_names.is_none());
        let kind = crd("gizmos.example.com", "gizmos", "Widget", &[]);
        let status = desired_status(&kind, &[&first]);
        // The last conflict found names the condition: the list kind `WidgetList` too.
        assert_eq!(
            status.conditions.unwrap()[0].reason.as_deref(),
            Some("ListKindConflict")
        );
        let names = status.accepted_names.unwrap();
        assert_eq!(names.kind, "", "the kind is not accepted");
        assert_eq!(names.plural, "gizmos", "names without conflicts are");
    }
}
