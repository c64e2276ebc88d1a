//! The generic store: one implementation of every verb for every stored resource, like
//! k8s.io/apiserver's generic registry `Store`.
//!
//! Objects are JSON values. The store owns object lifecycle semantics: system metadata (uid,
//! creationTimestamp, generateName), resourceVersion preconditions and optimistic concurrency,
//! no-op updates, finalizers and `deletionTimestamp`, graceful deletion, consistent paginated
//! lists with continue tokens, and watches with selector transitions. Kind-specific behaviour
//! comes only from the kind's strategy ([`crate::registry::Ops`]) and the
//! admission chain. It knows nothing of HTTP: callers get values or [`ApiError`]s.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::BoxFuture;
use futures_util::{Stream, StreamExt};
use rudder_machinery::field::{ErrorList, FieldError, Path};
use rudder_machinery::strategy::{DeletePlan, PipelineError, UpdateTarget};
use rudder_storage::{EventKind, ListOptions, StorageError, Store, WatchItem, WatchOptions};
use serde_json::{Map, Value, json};

use crate::admission::{Admission, Charge, Operation};
use crate::convert;
use crate::managed;
use crate::object;
use crate::registry::{Ops, Resource};
use crate::status::ApiError;
use crate::util;

/// A predicate over objects (label and field selectors).
pub type Filter = Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// How long a read with a resourceVersion newer than the server's waits for it.
const FUTURE_REVISION_WAIT: Duration = Duration::from_secs(3);
/// How often a write that lost a race is retried before giving up.
const MAX_CONFLICT_RETRIES: usize = 32;
/// How often a `generateName` create retries with a new name.
const MAX_GENERATE_NAME_ATTEMPTS: usize = 8;

/// The finalizer the garbage collector handles for foreground deletion.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// The finalizer the garbage collector handles for orphaning deletion.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// Options of every write.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Run everything but persist nothing.
    pub dry_run: bool,
    /// Who makes the request.
    pub user: rudder_machinery::strategy::RequestUser,
    /// The manager of a create, update or non-apply patch: it owns the fields it changed in
    /// `metadata.managedFields`. `None` when the caller maintains them (server-side apply).
    pub manager: Option<String>,
    /// The subresource written through ("" for the main resource): it names the managedFields
    /// entry and chooses the fields its strategy resets.
    pub subresource: String,
}

impl WriteOptions {
    /// The options of a write the API server itself makes (upstream's loopback client).
    pub fn internal() -> Self {
        WriteOptions {
            manager: Some(INTERNAL_MANAGER.to_owned()),
            ..Default::default()
        }
    }
}

/// The manager of the writes the API server makes itself (its loopback client's user agent).
pub const INTERNAL_MANAGER: &str = "kube-apiserver";

/// How dependents are treated when an owner is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents are orphaned.
    Orphan,
    /// Dependents are deleted in the background.
    Background,
    /// Dependents are deleted before the owner.
    Foreground,
}

/// Options of a delete.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    /// Requested grace period.
    pub grace_period: Option<i64>,
    /// Requested propagation policy.
    pub propagation: Option<Propagation>,
    /// The deprecated `orphanDependents` flag.
    pub orphan_dependents: Option<bool>,
    /// Precondition on the uid.
    pub precondition_uid: Option<String>,
    /// Precondition on the resourceVersion.
    pub precondition_resource_version: Option<String>,
    /// Run everything but persist nothing.
    pub dry_run: bool,
}

/// The outcome of a delete.
#[derive(Clone, Debug)]
pub enum Deleted {
    /// The object is gone; this was its last state.
    Gone(Value),
    /// The object is being deleted (finalizers or a grace period remain).
    Pending(Value),
}

/// A list request, after parsing.
#[derive(Clone, Default)]
pub struct ListQuery {
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
    /// `limit` (0 = none).
    pub limit: usize,
    /// `continue`.
    pub continue_token: Option<String>,
    /// The selectors, if any.
    pub filter: Option<Filter>,
}

/// One page of a list.
#[derive(Clone, Debug)]
pub struct ListResult {
    /// The items, in key order.
    pub items: Vec<Value>,
    /// The revision the page was read at.
    pub resource_version: u64,
    /// A continue token when more items follow.
    pub continue_token: Option<String>,
    /// How many items follow, when known.
    pub remaining: Option<u64>,
}

/// A watch request, after parsing.
#[derive(Clone, Default)]
pub struct WatchQuery {
    /// `resourceVersion` ("" or "0": start with the current state).
    pub resource_version: Option<String>,
    /// The selectors, if any.
    pub filter: Option<Filter>,
    /// `allowWatchBookmarks`.
    pub allow_bookmarks: bool,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
    /// How often to send a bookmark on an otherwise idle watch.
    pub bookmark_interval: Option<Duration>,
}

/// One watch event.
#[derive(Clone, Debug)]
pub enum WatchEvent {
    /// An object entered the selection.
    Added(Value),
    /// A selected object changed.
    Modified(Value),
    /// An object left the selection or was deleted.
    Deleted(Value),
    /// The watcher is up to date with this revision.
    Bookmark {
        /// The revision.
        resource_version: u64,
        /// Whether this bookmark ends the initial events of a streaming list.
        initial_events_end: bool,
    },
    /// The watch failed and ends.
    Error(ApiError),
}

/// A stream of watch events.
pub type WatchStream = Pin<Box<dyn Stream<Item = WatchEvent> + Send>>;

/// What a hook reserved for a write, released or kept when the write ends.
pub type Reservation = Box<dyn std::any::Any + Send>;

/// Storage hooks of resources whose objects own allocations outside themselves (upstream's
/// `BeginCreate`, `BeginUpdate` and `AfterDelete`), such as Service IPs and node ports.
pub trait StoreHooks: Send + Sync {
    /// Before a create is validated and persisted; may change the object.
    fn begin_create<'a>(
        &'a self,
        store: &'a GenericStore,
        object: &'a mut Value,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Reservation, ApiError>>;

    /// Before an update is validated and persisted; may change the new object.
    fn begin_update<'a>(
        &'a self,
        store: &'a GenericStore,
        object: &'a mut Value,
        old: &'a Value,
        dry_run: bool,
    ) -> BoxFuture<'a, Result<Reservation, ApiError>>;

    /// After a create or update: keeps the reservation if the write succeeded, releases it if not.
    fn finish<'a>(
        &'a self,
        store: &'a GenericStore,
        reservation: Reservation,
        succeeded: bool,
    ) -> BoxFuture<'a, ()>;

    /// After an object was deleted.
    fn after_delete<'a>(&'a self, store: &'a GenericStore, object: &'a Value) -> BoxFuture<'a, ()>;

    /// On the first delete of an object (no `deletionTimestamp` yet): may change the object
    /// and the finalizers it will carry (CRDs add their cleanup finalizer).
    fn first_delete(&self, object: &mut Value, finalizers: &mut Vec<String>) {
        let _ = (object, finalizers);
    }
}

/// The generic store.
pub struct GenericStore {
    storage: Store,
    admission: Admission,
    hooks: Vec<(String, String, Arc<dyn StoreHooks>)>,
    decoded: Arc<DecodedEvents>,
}

/// How many decoded event objects [`DecodedEvents`] keeps.
const DECODED_EVENTS: usize = 256;

/// The objects of recent watch events as watchers decode them, shared: every watcher of a
/// resource reads the same events, and decoding each one anew was most of a watcher's work.
/// An object is decoded for a key at a revision, as the current or the previous state, and a
/// resource (the same `Arc`: what the registry serves, with its conversion); the key keeps
/// apart objects one transaction wrote at the same revision.
#[derive(Default)]
struct DecodedEvents {
    recent: Mutex<VecDeque<DecodedEvent>>,
}

struct DecodedEvent {
    revision: u64,
    key: String,
    previous: bool,
    resource: Arc<Resource>,
    object: Arc<Value>,
}

impl DecodedEvents {
    /// The object of `bytes` at `revision` (see [`decode_stored`]), decoded once for all
    /// watchers.
    fn decode(
        &self,
        resource: &Arc<Resource>,
        key: &str,
        bytes: &[u8],
        revision: u64,
        previous: bool,
    ) -> Result<Arc<Value>, ApiError> {
        let same = |e: &DecodedEvent| {
            e.revision == revision
                && e.previous == previous
                && e.key == key
                && Arc::ptr_eq(&e.resource, resource)
        };
        if let Ok(recent) = self.recent.lock()
            && let Some(hit) = recent.iter().rev().find(|e| same(e))
        {
            return Ok(hit.object.clone());
        }
        let object = Arc::new(decode_stored(resource, bytes, revision)?);
        if let Ok(mut recent) = self.recent.lock() {
            if recent.len() >= DECODED_EVENTS {
                recent.pop_front();
            }
            recent.push_back(DecodedEvent {
                revision,
                key: key.to_owned(),
                previous,
                resource: resource.clone(),
                object: object.clone(),
            });
        }
        Ok(object)
    }
}

impl std::fmt::Debug for GenericStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericStore").finish_non_exhaustive()
    }
}

/// Storage errors as API errors, for operations on one named object.
fn storage_error(resource: &Resource, name: &str, err: StorageError) -> ApiError {
    match err {
        StorageError::NotFound(_) => ApiError::not_found(resource.group_resource(), name),
        StorageError::AlreadyExists(_) => ApiError::already_exists(resource.group_resource(), name),
        StorageError::Conflict { .. } => ApiError::stale(resource.group_resource(), name),
        StorageError::Expired { requested, compacted } => {
            ApiError::expired(format!("too old resource version: {requested} ({compacted})"))
        }
        StorageError::TooLargeResourceVersion { requested, current } => {
            too_large_revision(requested, current)
        }
        StorageError::Closed => ApiError::service_unavailable("the server is shutting down"),
        other => ApiError::internal(other),
    }
}

fn too_large_revision(requested: u64, current: u64) -> ApiError {
    let mut error = ApiError::timeout(
        format!("Too large resource version: {requested}, current: {current}"),
        1,
    );
    if let Some(details) = error.details.as_mut() {
        details.causes = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause {
                reason: Some("ResourceVersionTooLarge".into()),
                message: Some("Too large resource version".into()),
                field: None,
            },
        ]);
    }
    error
}

/// A pipeline failure as an API error about `name` of `resource`.
pub fn pipeline_error(resource: &Resource, name: &str, err: PipelineError) -> ApiError {
    match err {
        PipelineError::Decode(detail) => ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: {detail}",
            kind = resource.kind,
            version = resource.version
        )),
        PipelineError::Invalid(errors) => ApiError::invalid(&resource.group, &resource.kind, name, &errors),
    }
}

fn parse_revision(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>().map_err(|_| {
        ApiError::bad_request(format!(
            "invalid resource version {raw:?}: it must be a decimal revision"
        ))
    })
}

/// The state of a stored object: its JSON with resourceVersion set.
fn decode_stored(resource: &Resource, value: &[u8], revision: u64) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(value)
        .map_err(|err| ApiError::internal(format!("stored object is corrupt: {err}")))?;
    object::set_meta_str(&mut object, "resourceVersion", &revision.to_string());
    convert::from_storage(resource, object)
}

/// The bytes to store for an object: converted to the storage form, without resourceVersion.
fn encode_for_storage(resource: &Resource, object: &Value) -> Result<Vec<u8>, ApiError> {
    let mut stored = convert::to_storage(resource, object.clone())?;
    object::remove_meta(&mut stored, "resourceVersion");
    serde_json::to_vec(&stored).map_err(ApiError::internal)
}

/// Two objects equal apart from their resourceVersion (compared in place: updates that
/// change nothing are common, and objects are large).
fn same_object(a: &Value, b: &Value) -> bool {
    /// Two maps equal apart from the entries for which `skip` holds.
    fn same_map(a: &Map<String, Value>, b: &Map<String, Value>, skip: &dyn Fn(&str) -> bool) -> bool {
        let kept = |m: &Map<String, Value>| m.keys().filter(|k| !skip(k)).count();
        kept(a) == kept(b)
            && a.iter()
                .filter(|(k, _)| !skip(k))
                .all(|(k, v)| b.get(k) == Some(v))
    }
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let same_meta = match (a.get("metadata"), b.get("metadata")) {
        (Some(Value::Object(ma)), Some(Value::Object(mb))) => same_map(ma, mb, &|k| k == "resourceVersion"),
        (ma, mb) => ma == mb,
    };
    same_meta && same_map(a, b, &|k| k == "metadata")
}

/// The continue token of a list: upstream's format, base64url of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<key after the prefix>\u0000"}`.
fn encode_continue(revision: u64, relative_key: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": format!("{relative_key}\u{0}")});
    URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
    let invalid = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid("the token is not valid base64"))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("the token is not valid JSON"))?;
    if value.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        ));
    }
    let revision = value.get("rv").and_then(Value::as_u64).filter(|rv| *rv > 0);
    let start = value.get("start").and_then(Value::as_str).unwrap_or_default();
    let start = start.strip_suffix('\u{0}').unwrap_or(start);
    if start.is_empty() || start.contains("..") || start.starts_with('/') {
        return Err(invalid("the start key is not valid"));
    }
    let revision = revision.ok_or_else(|| invalid("the resource version is not valid"))?;
    Ok((revision, start.to_owned()))
}

fn matches(filter: Option<&Filter>, object: &Value) -> bool {
    filter.is_none_or(|f| f(object))
}

impl GenericStore {
    /// A store over `storage` with `admission`.
    pub fn new(storage: Store, admission: Admission) -> Self {
        GenericStore {
            storage,
            admission,
            hooks: Vec::new(),
            decoded: Arc::default(),
        }
    }

    /// Registers storage hooks for `group`/`resource` (every version).
    pub fn with_hooks(mut self, group: &str, resource: &str, hooks: Arc<dyn StoreHooks>) -> Self {
        self.hooks.push((group.to_owned(), resource.to_owned(), hooks));
        self
    }

    fn hooks_for(&self, resource: &Resource) -> Option<Arc<dyn StoreHooks>> {
        self.hooks
            .iter()
            .find(|(g, r, _)| *g == resource.group && *r == resource.resource)
            .map(|(_, _, h)| h.clone())
    }

    /// The storage engine.
    pub fn storage(&self) -> &Store {
        &self.storage
    }

    /// Reads one object.
    pub fn get(&self, resource: &Resource, namespace: &str, name: &str) -> Result<Value, ApiError> {
        let key = resource.key(namespace, name);
        let kv = self
            .storage
            .get(&key)
            .map_err(|err| storage_error(resource, name, err))?
            .ok_or_else(|| ApiError::not_found(resource.group_resource(), name))?;
        decode_stored(resource, &kv.value, kv.mod_revision)
    }

    /// Reads one object, `None` when it does not exist.
    pub fn get_opt(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Option<Value>, ApiError> {
        match self.get(resource, namespace, name) {
            Ok(object) => Ok(Some(object)),
            Err(err) if err.code == http::StatusCode::NOT_FOUND => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Reads one object with a resourceVersion requirement (`get` with `?resourceVersion=`):
    /// "" or "0" any version, N at least N.
    pub async fn get_with_version(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<Value, ApiError> {
        if let Some(raw) = resource_version.filter(|rv| !rv.is_empty() && *rv != "0") {
            let wanted = parse_revision(raw)?;
            self.wait_for(wanted).await?;
        }
        self.get(resource, namespace, name)
    }

    async fn wait_for(&self, revision: u64) -> Result<(), ApiError> {
        let current = self.storage.current_revision();
        if revision <= current
            || self
                .storage
                .wait_for_revision(revision, FUTURE_REVISION_WAIT)
                .await
        {
            return Ok(());
        }
        Err(too_large_revision(revision, self.storage.current_revision()))
    }

    /// Lists objects of a namespace (or all namespaces), one page at a time.
    pub async fn list(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        query: &ListQuery,
    ) -> Result<ListResult, ApiError> {
        let prefix = resource.prefix(namespace);
        let (mut revision, mut start_after) = (None, None);
        if let Some(token) = query.continue_token.as_deref().filter(|t| !t.is_empty()) {
            let (rv, start) = decode_continue(token)?;
            revision = Some(rv);
            start_after = Some(format!("{prefix}{start}"));
        } else if let Some(raw) = query.resource_version.as_deref().filter(|rv| !rv.is_empty()) {
            let exact = query.resource_version_match.as_deref() == Some("Exact");
            if raw != "0" || exact {
                let wanted = parse_revision(raw)?;
                if exact {
                    revision = Some(wanted);
                } else {
                    self.wait_for(wanted).await?;
                }
            }
        }
        let limit = query.limit;
        let filtered = query.filter.is_some();
        let mut items = Vec::new();
        let mut last_key: Option<String> = None;
        let mut more;
        let mut remaining;
        loop {
            let page_size = if limit == 0 { None } else { Some(limit.max(100)) };
            let options = ListOptions {
                prefix: &prefix,
                revision,
                start_after: start_after.as_deref(),
                limit: if filtered {
                    page_size
                } else {
                    (limit > 0).then_some(limit - items.len())
                },
                count_remaining: limit > 0 && !filtered,
            };
            let page = self.storage.list(&options).map_err(|err| match err {
                StorageError::Expired { .. } if query.continue_token.is_some() => ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ),
                StorageError::Expired { .. } => ApiError::expired("The resourceVersion for the provided list is too old."),
                other => storage_error(resource, "", other),
            })?;
            revision = Some(page.revision);
            more = page.more;
            remaining = page.remaining;
            let mut consumed = 0;
            for kv in &page.items {
                consumed += 1;
                let object = decode_stored(resource, &kv.value, kv.mod_revision)?;
                if matches(query.filter.as_ref(), &object) {
                    items.push(object);
                }
                last_key = Some(kv.key.clone());
                if limit > 0 && items.len() >= limit {
                    // The rest of this storage page is still to come.
                    more = more || consumed < page.items.len();
                    break;
                }
            }
            if !more || (limit > 0 && items.len() >= limit) || limit == 0 {
                break;
            }
            start_after = last_key.clone();
        }
        let resource_version = revision.unwrap_or_else(|| self.storage.current_revision());
        let continue_token = match (&last_key, more && limit > 0) {
            (Some(key), true) => Some(encode_continue(
                resource_version,
                key.strip_prefix(&prefix).unwrap_or(key),
            )),
            _ => None,
        };
        Ok(ListResult {
            items,
            resource_version,
            continue_token: continue_token.clone(),
            remaining: if filtered || continue_token.is_none() {
                None
            } else {
                remaining
            },
        })
    }

    /// Creates an object in `namespace` (ignored for cluster-scoped resources).
    pub async fn create(
        &self,
        resource: &Resource,
        namespace: &str,
        mut object: Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let ops = stored_ops(resource)?;
        if !object.is_object() {
            return Err(ApiError::bad_request("the body of the request must be an object"));
        }
        if resource.namespaced {
            match object::namespace(&object) {
                "" => object::set_meta_str(&mut object, "namespace", namespace),
                ns if ns != namespace => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
        } else {
            object::remove_meta(&mut object, "namespace");
        }
        if !object::resource_version(&object).is_empty() {
            return Err(ApiError::new(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let generate =
            object::name(&object).is_empty() && !object::meta_str(&object, "generateName").is_empty();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut candidate = object.clone();
            if generate {
                let prefix = object::meta_str(&candidate, "generateName").to_owned();
                object::set_meta_str(&mut candidate, "name", &util::generate_name(&prefix));
            }
            match self.create_once(resource, &ops, candidate, options).await {
                Err(err)
                    if generate && err.reason == "AlreadyExists" && attempt < MAX_GENERATE_NAME_ATTEMPTS => {}
                result => return result,
            }
        }
    }

    async fn create_once(
        &self,
        resource: &Resource,
        ops: &Ops,
        object: Value,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let name = object::name(&object).to_owned();
        if resource.custom().is_some_and(|c| c.terminating) {
            return Err(ApiError::forbidden(
                resource.group_resource(),
                &name,
                "create not allowed while custom resource definition is terminating",
            ));
        }
        let mut object = ops
            .normalize(object)
            .map_err(|err| pipeline_error(resource, &name, err))?;
        if let Some(manager) = &options.manager {
            managed::update(resource, &options.subresource, None, &mut object, manager);
        }
        let managed_fields = managed::before_admission(&object);
        self.admission
            .mutate(self, resource, Operation::Create, &mut object, None)?;
        managed::after_admission(&mut object, managed_fields);
        // System fields (upstream: FillObjectMetaSystemFields, BeforeCreate).
        if let Some(meta) = object::meta_mut(&mut object) {
            meta.insert("uid".into(), Value::String(util::new_uid()));
            meta.insert("creationTimestamp".into(), Value::String(util::now_rfc3339()));
            meta.remove("deletionTimestamp");
            meta.remove("deletionGracePeriodSeconds");
            meta.remove("selfLink");
        }
        let hooks = self.hooks_for(resource);
        let reservation = match &hooks {
            Some(hooks) => Some(hooks.begin_create(self, &mut object, options.dry_run).await?),
            None => None,
        };
        let result = self.persist_create(resource, ops, object, &name, options).await;
        if let (Some(hooks), Some(reservation)) = (&hooks, reservation) {
            hooks
                .finish(self, reservation, result.is_ok() && !options.dry_run)
                .await;
        }
        result
    }

    async fn persist_create(
        &self,
        resource: &Resource,
        ops: &Ops,
        object: Value,
        name: &str,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let mut object = ops
            .create_by(object, &options.user)
            .map_err(|err| pipeline_error(resource, name, err))?;
        let meta_errors = validate_meta(resource, &object);
        if !meta_errors.is_empty() {
            return Err(ApiError::invalid(
                &resource.group,
                &resource.kind,
                name,
                &meta_errors,
            ));
        }
        self.admission
            .validate(self, resource, Operation::Create, &object, None)?;
        let charge = Charge {
            operation: Operation::Create,
            subresource: &options.subresource,
            object: &object,
            old: None,
            dry_run: options.dry_run,
        };
        self.admission.charge_quota(self, resource, charge).await?;
        if options.dry_run {
            return Ok(object);
        }
        let key = resource.key(object::namespace(&object), name);
        let bytes = encode_for_storage(resource, &object)?;
        let written = self
            .storage
            .create(&key, bytes)
            .await
            .map_err(|err| storage_error(resource, name, err))?;
        object::set_meta_str(&mut object, "resourceVersion", &written.revision.to_string());
        Ok(object)
    }

    /// Replaces an object (PUT). Returns the object and whether it was created.
    pub async fn update(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        object: Value,
        target: UpdateTarget,
        options: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let ops = stored_ops(resource)?;
        if !object.is_object() {
            return Err(ApiError::bad_request("the body of the request must be an object"));
        }
        match object::name(&object) {
            "" => {}
            body if body != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({body}) does not match the name on the URL ({name})"
                )));
            }
            _ => {}
        }
        if resource.namespaced {
            match object::namespace(&object) {
                "" => {}
                ns if ns != namespace => {
                    return Err(ApiError::bad_request(format!(
                        "the namespace of the object ({ns}) does not match the namespace on the URL ({namespace})"
                    )));
                }
                _ => {}
            }
        }
        let requested_version = object::resource_version(&object).to_owned();
        if requested_version.is_empty() && !ops.allow_unconditional_update() {
            let error = FieldError::invalid(
                &Path::new("metadata").child("resourceVersion"),
                0,
                "must be specified for an update",
            );
            return Err(ApiError::invalid(&resource.group, &resource.kind, name, &[error]));
        }
        if self.get_opt(resource, namespace, name)?.is_none() {
            if ops.allow_create_on_update() && target == UpdateTarget::Main {
                let mut object = object;
                object::set_meta_str(&mut object, "name", name);
                object::remove_meta(&mut object, "resourceVersion");
                return self
                    .create(resource, namespace, object, options)
                    .await
                    .map(|o| (o, true));
            }
            return Err(ApiError::not_found(resource.group_resource(), name));
        }
        let updated = self
            .update_with(resource, namespace, name, target, options, |_current| {
                Ok(object.clone())
            })
            .await?;
        Ok((updated, false))
    }

    /// Read-modify-write of one object: `mutate` computes the desired object from the
    /// current one (with its resourceVersion); a resourceVersion in the result is a
    /// precondition. Retries when another writer wins the race, unless the caller pinned the
    /// version. Used by update, patch and the subresources.
    pub async fn update_with(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        target: UpdateTarget,
        options: &WriteOptions,
        mut mutate: impl FnMut(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let ops = stored_ops(resource)?;
        let key = resource.key(namespace, name);
        for _ in 0..MAX_CONFLICT_RETRIES {
            let kv = self
                .storage
                .get(&key)
                .map_err(|err| storage_error(resource, name, err))?
                .ok_or_else(|| ApiError::not_found(resource.group_resource(), name))?;
            let current = decode_stored(resource, &kv.value, kv.mod_revision)?;
            let mut desired = mutate(&current)?;
            let pinned = object::resource_version(&desired).to_owned();
            if !pinned.is_empty() && pinned != object::resource_version(&current) {
                return Err(ApiError::stale(resource.group_resource(), name));
            }
            if pinned.is_empty() {
                object::set_meta_str(
                    &mut desired,
                    "resourceVersion",
                    object::resource_version(&current),
                );
            }
            // Decode and default, then admission, then the strategy.
            let mut new = ops
                .normalize(desired.take())
                .map_err(|err| pipeline_error(resource, name, err))?;
            if let Some(manager) = &options.manager {
                managed::update(resource, &options.subresource, Some(&current), &mut new, manager);
            }
            let managed_fields = managed::before_admission(&new);
            self.admission
                .mutate(self, resource, Operation::Update, &mut new, Some(&current))?;
            managed::after_admission(&mut new, managed_fields);
            keep_system_metadata(&mut new, &current);
            let hooks = if target == UpdateTarget::Main {
                self.hooks_for(resource)
            } else {
                None
            };
            let reservation = match &hooks {
                Some(hooks) => Some(
                    hooks
                        .begin_update(self, &mut new, &current, options.dry_run)
                        .await?,
                ),
                None => None,
            };
            let outcome = self
                .persist_update(
                    resource,
                    &ops,
                    name,
                    &key,
                    kv.mod_revision,
                    new,
                    &current,
                    target,
                    options,
                )
                .await;
            if let (Some(hooks), Some(reservation)) = (&hooks, reservation) {
                let kept = matches!(outcome, Ok(Persisted::Written(_))) && !options.dry_run;
                hooks.finish(self, reservation, kept).await;
            }
            match outcome {
                Ok(Persisted::Unchanged) => return Ok(current),
                Ok(Persisted::DryRun(new)) => return Ok(new),
                Ok(Persisted::Written(new)) => {
                    if should_delete_during_update(resource, &new) {
                        let revision = object::resource_version(&new).parse().unwrap_or(0);
                        return self.delete_now(resource, name, &key, revision, new).await;
                    }
                    return Ok(new);
                }
                // Another writer won: compute again from the new current object. A pinned
                // version (the client's precondition) then no longer matches and fails above;
                // an inherited one (a patch applied to the current object) is recomputed.
                Err(Retry::Conflict) => continue,
                Err(Retry::Fail(err)) => return Err(err),
            }
        }
        Err(ApiError::conflict(
            resource.group_resource(),
            name,
            "the object is being modified too often; please try again",
        ))
    }

    /// Read-modify-write of one object that bypasses strategy and admission, for the
    /// subresources upstream implements directly on storage (bindings, eviction bookkeeping,
    /// finalize, approval). `mutate` returns `None` to leave the object as it is. With
    /// `manager` (a subresource written through the update handler: finalize, approval, ...),
    /// managedFields record the write as `options.subresource`'s.
    pub async fn update_raw(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        options: Option<&WriteOptions>,
        mut mutate: impl FnMut(&Value) -> Result<Option<Value>, ApiError>,
    ) -> Result<Value, ApiError> {
        let key = resource.key(namespace, name);
        for _ in 0..MAX_CONFLICT_RETRIES {
            let kv = self
                .storage
                .get(&key)
                .map_err(|err| storage_error(resource, name, err))?
                .ok_or_else(|| ApiError::not_found(resource.group_resource(), name))?;
            let current = decode_stored(resource, &kv.value, kv.mod_revision)?;
            let Some(mut new) = mutate(&current)? else {
                return Ok(current);
            };
            keep_system_metadata(&mut new, &current);
            if let Some(options) = options
                && let Some(manager) = &options.manager
            {
                managed::update(resource, &options.subresource, Some(&current), &mut new, manager);
                rudder_machinery::managedfields::ignore_managed_fields_timestamps(&mut new, &current);
            }
            if same_object(&new, &current) {
                return Ok(current);
            }
            let bytes = encode_for_storage(resource, &new)?;
            match self.storage.update(&key, bytes, Some(kv.mod_revision)).await {
                Ok(written) => {
                    object::set_meta_str(&mut new, "resourceVersion", &written.revision.to_string());
                    // Subresource stores share the main store's `ShouldDeleteDuringUpdate`
                    // (a namespace whose last finalizer is removed through `finalize`).
                    if should_delete_during_update(resource, &new) {
                        return self.delete_now(resource, name, &key, written.revision, new).await;
                    }
                    return Ok(new);
                }
                Err(StorageError::Conflict { .. }) => continue,
                Err(err) => return Err(storage_error(resource, name, err)),
            }
        }
        Err(ApiError::conflict(
            resource.group_resource(),
            name,
            "the object is being modified too often; please try again",
        ))
    }

    #[allow(clippy::too_many_arguments)]
    async fn persist_update(
        &self,
        resource: &Resource,
        ops: &Ops,
        name: &str,
        key: &str,
        revision: u64,
        new: Value,
        current: &Value,
        target: UpdateTarget,
        options: &WriteOptions,
    ) -> Result<Persisted, Retry> {
        let new = ops
            .update(new, current, target)
            .map_err(|err| Retry::Fail(pipeline_error(resource, name, err)))?;
        let meta_errors = validate_meta_update(resource, &new, current);
        if !meta_errors.is_empty() {
            return Err(Retry::Fail(ApiError::invalid(
                &resource.group,
                &resource.kind,
                name,
                &meta_errors,
            )));
        }
        self.admission
            .validate(self, resource, Operation::Update, &new, Some(current))
            .map_err(Retry::Fail)?;
        let mut new = new;
        object::set_meta_str(&mut new, "resourceVersion", object::resource_version(current));
        rudder_machinery::managedfields::ignore_managed_fields_timestamps(&mut new, current);
        if same_object(&new, current) {
            return Ok(Persisted::Unchanged);
        }
        let charge = Charge {
            operation: Operation::Update,
            subresource: match target {
                UpdateTarget::Main => "",
                UpdateTarget::Status => "status",
            },
            object: &new,
            old: Some(current),
            dry_run: options.dry_run,
        };
        self.admission
            .charge_quota(self, resource, charge)
            .await
            .map_err(Retry::Fail)?;
        if options.dry_run {
            return Ok(Persisted::DryRun(new));
        }
        let bytes = encode_for_storage(resource, &new).map_err(Retry::Fail)?;
        match self.storage.update(key, bytes, Some(revision)).await {
            Ok(written) => {
                object::set_meta_str(&mut new, "resourceVersion", &written.revision.to_string());
                Ok(Persisted::Written(new))
            }
            Err(StorageError::Conflict { .. }) => Err(Retry::Conflict),
            Err(err) => Err(Retry::Fail(storage_error(resource, name, err))),
        }
    }

    async fn delete_now(
        &self,
        resource: &Resource,
        name: &str,
        key: &str,
        revision: u64,
        last: Value,
    ) -> Result<Value, ApiError> {
        match self.storage.delete(key, Some(revision)).await {
            Ok(_) => {
                if let Some(hooks) = self.hooks_for(resource) {
                    hooks.after_delete(self, &last).await;
                }
                Ok(last)
            }
            Err(StorageError::NotFound(_)) => Ok(last),
            Err(err) => Err(storage_error(resource, name, err)),
        }
    }

    /// Deletes an object, honouring preconditions, graceful deletion and finalizers.
    pub async fn delete(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let ops = stored_ops(resource)?;
        let key = resource.key(namespace, name);
        for _ in 0..MAX_CONFLICT_RETRIES {
            let kv = self
                .storage
                .get(&key)
                .map_err(|err| storage_error(resource, name, err))?
                .ok_or_else(|| ApiError::not_found(resource.group_resource(), name))?;
            let current = decode_stored(resource, &kv.value, kv.mod_revision)?;
            check_preconditions(resource, name, &current, options)?;
            self.admission
                .validate(self, resource, Operation::Delete, &current, None)?;

            let (plan, mut next) = ops
                .before_delete(current.clone(), options.grace_period)
                .map_err(|e| pipeline_error(resource, name, e))?;
            // Finalizers cannot be changed through delete options while a graceful deletion
            // is pending, nor while a terminating namespace is still being finalized.
            let frozen = pending_graceful(&current, options)
                || (plan == DeletePlan::Finalize && object::deletion_timestamp(&current).is_some());
            let mut finalizers = if frozen {
                object::finalizers(&current)
            } else {
                deletion_finalizers(resource, &current, options)
            };
            if object::deletion_timestamp(&current).is_none()
                && let Some(hooks) = self.hooks_for(resource)
            {
                hooks.first_delete(&mut next, &mut finalizers);
            }
            let mut changed = false;
            if finalizers != object::finalizers(&current) {
                object::set_finalizers(&mut next, &finalizers);
                changed = true;
            }
            let pending = match plan {
                DeletePlan::Graceful(seconds) if seconds > 0 => {
                    changed |= mark_deleting(&mut next, seconds);
                    true
                }
                DeletePlan::Finalize => {
                    // Namespace termination sets only the deletionTimestamp (upstream's
                    // namespace REST `Delete`), no deletionGracePeriodSeconds.
                    changed |= mark_terminating(&mut next);
                    true
                }
                DeletePlan::Graceful(_) | DeletePlan::Now if !finalizers.is_empty() => {
                    changed |= mark_deleting(&mut next, 0);
                    true
                }
                DeletePlan::Graceful(_) | DeletePlan::Now => false,
            };
            // Carry over any change the kind made while preparing the deletion.
            changed |= !same_object(&next, &current);
            if pending {
                if !changed || options.dry_run {
                    return Ok(Deleted::Pending(next));
                }
                let bytes = encode_for_storage(resource, &next)?;
                match self.storage.update(&key, bytes, Some(kv.mod_revision)).await {
                    Ok(written) => {
                        object::set_meta_str(&mut next, "resourceVersion", &written.revision.to_string());
                        return Ok(Deleted::Pending(next));
                    }
                    Err(StorageError::Conflict { .. }) => continue,
                    Err(err) => return Err(storage_error(resource, name, err)),
                }
            }
            if options.dry_run {
                return Ok(Deleted::Gone(current));
            }
            match self.storage.delete(&key, Some(kv.mod_revision)).await {
                Ok(deleted) => {
                    let mut last = current;
                    object::set_meta_str(&mut last, "resourceVersion", &deleted.revision.to_string());
                    if let Some(hooks) = self.hooks_for(resource) {
                        hooks.after_delete(self, &last).await;
                    }
                    return Ok(Deleted::Gone(last));
                }
                Err(StorageError::Conflict { .. }) => continue,
                Err(err) => return Err(storage_error(resource, name, err)),
            }
        }
        Err(ApiError::conflict(
            resource.group_resource(),
            name,
            "the object is being modified too often; please try again",
        ))
    }

    /// Deletes every object of a list query; returns what was deleted or marked.
    pub async fn delete_collection(
        &self,
        resource: &Resource,
        namespace: Option<&str>,
        query: &ListQuery,
        options: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let list = self.list(resource, namespace, query).await?;
        let mut out = Vec::with_capacity(list.items.len());
        for item in list.items {
            let name = object::name(&item).to_owned();
            let ns = object::namespace(&item).to_owned();
            match self.delete(resource, &ns, &name, options).await {
                Ok(Deleted::Gone(object) | Deleted::Pending(object)) => out.push(object),
                Err(err) if err.code == http::StatusCode::NOT_FOUND => {}
                Err(err) => return Err(err),
            }
        }
        Ok(out)
    }

    /// Watches a namespace (or all namespaces) of a resource.
    pub async fn watch(
        &self,
        resource: Arc<Resource>,
        namespace: Option<&str>,
        query: WatchQuery,
    ) -> Result<WatchStream, ApiError> {
        let prefix = resource.prefix(namespace);
        let requested = query.resource_version.clone().unwrap_or_default();
        let initial_state =
            requested.is_empty() || requested == "0" || query.send_initial_events == Some(true);
        let mut initial = Vec::new();
        let start = if initial_state {
            if !requested.is_empty() && requested != "0" {
                self.wait_for(parse_revision(&requested)?).await?;
            }
            let page = self
                .storage
                .list(&ListOptions {
                    prefix: &prefix,
                    ..Default::default()
                })
                .map_err(|err| storage_error(&resource, "", err))?;
            for kv in page.items {
                let object = decode_stored(&resource, &kv.value, kv.mod_revision)?;
                if matches(query.filter.as_ref(), &object) {
                    initial.push(WatchEvent::Added(object));
                }
            }
            if query.send_initial_events == Some(true) && query.allow_bookmarks {
                initial.push(WatchEvent::Bookmark {
                    resource_version: page.revision,
                    initial_events_end: true,
                });
            }
            page.revision
        } else {
            parse_revision(&requested)?
        };
        let options = WatchOptions {
            progress_interval: query.bookmark_interval.filter(|_| query.allow_bookmarks),
        };
        let events = match self.storage.watch(&prefix, start, options) {
            Ok(watch) => watch,
            Err(StorageError::Expired { requested, compacted }) => {
                let error = ApiError::expired(format!("too old resource version: {requested} ({compacted})"));
                return Ok(Box::pin(futures_util::stream::iter([WatchEvent::Error(error)])));
            }
            Err(err) => return Err(storage_error(&resource, "", err)),
        };
        let filter = query.filter.clone();
        let decoded = self.decoded.clone();
        let live = events.filter_map(move |item| {
            let event = translate(&decoded, &resource, filter.as_ref(), item);
            async move { event }
        });
        // An error ends the stream after it is sent.
        let mut failed = false;
        let live = live.take_while(move |event| {
            let keep = !failed;
            failed |= matches!(event, WatchEvent::Error(_));
            async move { keep }
        });
        Ok(Box::pin(futures_util::stream::iter(initial).chain(live)))
    }
}

/// What an update attempt did.
enum Persisted {
    /// Nothing changed; nothing was written.
    Unchanged,
    /// A dry run: this would have been written.
    DryRun(Value),
    /// Written; the object with its new resourceVersion.
    Written(Value),
}

/// Why an update attempt did not persist.
enum Retry {
    /// Another writer won the race.
    Conflict,
    /// A final error.
    Fail(ApiError),
}

/// One storage watch item as an API watch event, applying selectors to the old and new state.
fn translate(
    decoded: &DecodedEvents,
    resource: &Arc<Resource>,
    filter: Option<&Filter>,
    item: rudder_storage::Result<WatchItem>,
) -> Option<WatchEvent> {
    let event = match item {
        Ok(WatchItem::Progress(revision)) => {
            return Some(WatchEvent::Bookmark {
                resource_version: revision,
                initial_events_end: false,
            });
        }
        Ok(WatchItem::Event(event)) => event,
        Err(StorageError::Expired { requested, compacted }) => {
            return Some(WatchEvent::Error(ApiError::expired(format!(
                "too old resource version: {requested} ({compacted})"
            ))));
        }
        Err(StorageError::TooSlow { .. }) => {
            return Some(WatchEvent::Error(ApiError::expired(
                "the watcher fell behind and was closed; list again and watch from the new resourceVersion",
            )));
        }
        Err(err) => return Some(WatchEvent::Error(ApiError::internal(err))),
    };
    let decode = |bytes: &Option<Vec<u8>>, previous: bool| -> Option<Result<Arc<Value>, ApiError>> {
        bytes
            .as_ref()
            .map(|b| decoded.decode(resource, &event.key, b, event.revision, previous))
    };
    let new = match decode(&event.value, false).transpose() {
        Ok(v) => v,
        Err(err) => return Some(WatchEvent::Error(err)),
    };
    // Without a filter the previous state matters only to a delete: not decoded otherwise.
    let needs_old = filter.is_some() || event.kind == EventKind::Deleted;
    let old = match needs_old.then(|| decode(&event.prev, true)).flatten().transpose() {
        Ok(v) => v,
        Err(err) => return Some(WatchEvent::Error(err)),
    };
    let new_passes = new.as_ref().is_some_and(|o| matches(filter, o));
    let old_passes = match &old {
        Some(old) => matches(filter, old),
        None => !needs_old && event.prev.is_some(),
    };
    let owned = Arc::unwrap_or_clone;
    match (event.kind, new, old) {
        (EventKind::Deleted, _, Some(old)) if old_passes => Some(WatchEvent::Deleted(owned(old))),
        (EventKind::Created, Some(new), _) if new_passes => Some(WatchEvent::Added(owned(new))),
        (EventKind::Updated, Some(new), _) if new_passes && old_passes => {
            Some(WatchEvent::Modified(owned(new)))
        }
        (EventKind::Updated, Some(new), _) if new_passes => Some(WatchEvent::Added(owned(new))),
        // Left the selection: a delete with the previous content at the event's revision.
        (EventKind::Updated, _, Some(old)) if old_passes => Some(WatchEvent::Deleted(owned(old))),
        _ => None,
    }
}

fn stored_ops(resource: &Resource) -> Result<Ops, ApiError> {
    resource
        .ops()
        .cloned()
        .ok_or_else(|| ApiError::method_not_supported(resource.group_resource(), "this operation"))
}

/// Keeps the metadata an update may not change (upstream: BeforeUpdate and
/// `ValidateObjectMetaUpdate` for the fields the server owns).
fn keep_system_metadata(new: &mut Value, old: &Value) {
    let Some(old_meta) = object::meta(old).cloned() else {
        return;
    };
    let Some(meta) = object::meta_mut(new) else { return };
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "selfLink",
    ] {
        match old_meta.get(field) {
            Some(value) => meta.insert(field.to_owned(), value.clone()),
            None => meta.remove(field),
        };
    }
}

fn validate_meta(resource: &Resource, object: &Value) -> ErrorList {
    let meta = object::meta(object).cloned().map_or(Value::Null, Value::Object);
    crate::meta_validation::validate_object_meta(&meta, resource.namespaced)
}

fn validate_meta_update(resource: &Resource, new: &Value, old: &Value) -> ErrorList {
    let meta = |o: &Value| object::meta(o).cloned().map_or(Value::Null, Value::Object);
    crate::meta_validation::validate_object_meta_update(&meta(new), &meta(old), resource.namespaced)
}

/// Upstream's `ShouldDeleteDuringUpdate`: the last finalizer of a deleting object was removed.
/// A namespace also needs empty `spec.finalizers` (`ShouldDeleteNamespaceDuringUpdate`).
fn should_delete_during_update(resource: &Resource, object: &Value) -> bool {
    let namespace_finalized = !(resource.group.is_empty() && resource.resource == "namespaces")
        || object::get_path(object, &["spec", "finalizers"])
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
    object::deletion_timestamp(object).is_some()
        && object::finalizers(object).is_empty()
        && object::deletion_grace_period(object).unwrap_or(0) == 0
        && namespace_finalized
}

fn check_preconditions(
    resource: &Resource,
    name: &str,
    current: &Value,
    options: &DeleteOptions,
) -> Result<(), ApiError> {
    if let Some(uid) = options.precondition_uid.as_deref().filter(|u| !u.is_empty())
        && uid != object::uid(current)
    {
        return Err(ApiError::conflict(
            resource.group_resource(),
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                object::uid(current)
            ),
        ));
    }
    if let Some(rv) = options
        .precondition_resource_version
        .as_deref()
        .filter(|r| !r.is_empty())
        && rv != object::resource_version(current)
    {
        return Err(ApiError::conflict(
            resource.group_resource(),
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                object::resource_version(current)
            ),
        ));
    }
    Ok(())
}

/// Upstream's `rest.BeforeDelete` reporting a pending graceful deletion: the object already
/// counts down a grace period and the request does not shorten it.
fn pending_graceful(current: &Value, options: &DeleteOptions) -> bool {
    if object::deletion_timestamp(current).is_none() {
        return false;
    }
    let existing = object::deletion_grace_period(current).unwrap_or(0);
    existing > 0 && options.grace_period.is_none_or(|requested| requested >= existing)
}

/// The default garbage collection policy of a resource (upstream's
/// `DefaultGarbageCollectionPolicy` of the kind strategies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GcPolicy {
    /// Dependents are deleted unless the request says otherwise.
    DeleteDependents,
    /// Dependents are orphaned unless the request says otherwise (kept for old API versions).
    OrphanDependents,
    /// The garbage collector does not handle this resource: no GC finalizers.
    Unsupported,
}

fn default_gc_policy(resource: &Resource) -> GcPolicy {
    match (
        resource.group.as_str(),
        resource.version.as_str(),
        resource.resource.as_str(),
    ) {
        ("" | "events.k8s.io", _, "events") => GcPolicy::Unsupported,
        ("", "v1", "replicationcontrollers") | ("batch", "v1", "jobs") => GcPolicy::OrphanDependents,
        _ => GcPolicy::DeleteDependents,
    }
}

/// Which of the two GC finalizers the object carries first, if any.
fn existing_gc_finalizer(finalizers: &[String]) -> Option<Propagation> {
    finalizers.iter().find_map(|f| match f.as_str() {
        ORPHAN_FINALIZER => Some(Propagation::Orphan),
        FOREGROUND_FINALIZER => Some(Propagation::Foreground),
        _ => None,
    })
}

/// The finalizers after a delete request's propagation policy (upstream:
/// `deletionFinalizersForGarbageCollection` with `shouldOrphanDependents` and
/// `shouldDeleteDependents`; for the first delete of a namespace, the namespace REST's
/// `shouldHaveOrphanFinalizer` and `shouldHaveDeleteDependentsFinalizer`). Precedence: the
/// request's `orphanDependents`, then its `propagationPolicy`, then the finalizers already on
/// the object, then the resource's default policy.
fn deletion_finalizers(resource: &Resource, current: &Value, options: &DeleteOptions) -> Vec<String> {
    let finalizers = object::finalizers(current);
    let policy = default_gc_policy(resource);
    if policy == GcPolicy::Unsupported {
        return finalizers;
    }
    let existing = existing_gc_finalizer(&finalizers);
    let namespace_termination = resource.group.is_empty()
        && resource.resource == "namespaces"
        && object::deletion_timestamp(current).is_none();
    let (orphan, foreground) = if namespace_termination {
        let has = |f: &str| finalizers.iter().any(|x| x == f);
        match (options.orphan_dependents, options.propagation) {
            (Some(orphan), _) => (orphan, !orphan),
            (None, Some(p)) => (p == Propagation::Orphan, p == Propagation::Foreground),
            (None, None) => (has(ORPHAN_FINALIZER), has(FOREGROUND_FINALIZER)),
        }
    } else {
        let orphan = match (options.orphan_dependents, options.propagation) {
            (Some(orphan), _) => orphan,
            (None, Some(p)) => p == Propagation::Orphan,
            (None, None) => match existing {
                Some(p) => p == Propagation::Orphan,
                None => policy == GcPolicy::OrphanDependents,
            },
        };
        let foreground = match (options.orphan_dependents, options.propagation) {
            (Some(_), _) => false,
            (None, Some(p)) => p == Propagation::Foreground,
            (None, None) => existing == Some(Propagation::Foreground),
        };
        (orphan, foreground)
    };
    let mut next: Vec<String> = finalizers
        .iter()
        .filter(|f| *f != ORPHAN_FINALIZER && *f != FOREGROUND_FINALIZER)
        .cloned()
        .collect();
    if orphan {
        next.push(ORPHAN_FINALIZER.to_owned());
    }
    if foreground {
        next.push(FOREGROUND_FINALIZER.to_owned());
    }
    let old: std::collections::BTreeSet<&String> = finalizers.iter().collect();
    let new: std::collections::BTreeSet<&String> = next.iter().collect();
    if old == new { finalizers } else { next }
}

/// Sets `deletionTimestamp` to now unless one is set; returns whether the object changed.
fn mark_terminating(object: &mut Value) -> bool {
    if object::deletion_timestamp(object).is_some() {
        return false;
    }
    let Some(meta) = object::meta_mut(object) else {
        return false;
    };
    meta.insert("deletionTimestamp".into(), Value::String(util::rfc3339_after(0)));
    true
}

/// Sets `deletionTimestamp` (now plus `grace`) unless an earlier one is set; returns whether
/// the object changed.
fn mark_deleting(object: &mut Value, grace: i64) -> bool {
    let existing_grace = object::deletion_grace_period(object);
    if object::deletion_timestamp(object).is_some() && existing_grace.is_none_or(|g| g <= grace) {
        return false;
    }
    let first = object::deletion_timestamp(object).is_none();
    let Some(meta) = object::meta_mut(object) else {
        return false;
    };
    // The first deletion mark bumps a set generation (upstream's `BeforeDelete` and
    // `markAsDeleting`), so that controllers observe it.
    if first && let Some(generation) = meta.get("generation").and_then(Value::as_i64).filter(|g| *g > 0) {
        meta.insert("generation".into(), Value::from(generation.saturating_add(1)));
    }
    meta.insert(
        "deletionTimestamp".into(),
        Value::String(util::rfc3339_after(grace)),
    );
    meta.insert("deletionGracePeriodSeconds".into(), Value::from(grace));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_object_ignores_only_the_resource_version() {
        let a = json!({"kind": "Pod", "metadata": {"name": "p", "resourceVersion": "5"}, "spec": {"x": 1}});
        let same =
            json!({"kind": "Pod", "metadata": {"name": "p", "resourceVersion": "9"}, "spec": {"x": 1}});
        let unversioned = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}});
        assert!(same_object(&a, &same));
        assert!(same_object(&a, &unversioned));
        assert!(same_object(&unversioned, &a));
        let label = json!({"kind": "Pod", "metadata": {"name": "p", "labels": {}}, "spec": {"x": 1}});
        let spec = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 2}});
        let extra = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}, "status": {}});
        let no_meta = json!({"kind": "Pod", "spec": {"x": 1}});
        for other in [&label, &spec, &extra, &no_meta] {
            assert!(!same_object(&unversioned, other), "{other}");
            assert!(!same_object(other, &unversioned), "{other}");
        }
        assert!(same_object(
            &json!({"metadata": {}}),
            &json!({"metadata": {"resourceVersion": "1"}})
        ));
        assert!(!same_object(&json!({"metadata": {}}), &json!({})));
    }

    #[test]
    fn continue_tokens_round_trip_in_upstream_format() {
        let token = encode_continue(42, "default/web-1");
        let raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        let json: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(
            json,
            json!({"v": "meta.k8s.io/v1", "rv": 42, "start": "default/web-1\u{0}"})
        );
        assert_eq!(decode_continue(&token).unwrap(), (42, "default/web-1".to_owned()));
        assert!(decode_continue("!!!").is_err());
        let escape =
            URL_SAFE_NO_PAD.encode(json!({"v": "meta.k8s.io/v1", "rv": 1, "start": "../x"}).to_string());
        assert!(decode_continue(&escape).is_err());
    }

    fn resource(group: &str, version: &str, plural: &str) -> Resource {
        let found = crate::registry::Registry::builtin().find(group, version, plural);
        Resource::clone(&found.unwrap())
    }

    #[test]
    fn propagation_policies_set_gc_finalizers() {
        let configmaps = resource("", "v1", "configmaps");
        let object = json!({"metadata": {"finalizers": ["example.com/x", "orphan"]}});
        let with = |p| DeleteOptions {
            propagation: Some(p),
            ..Default::default()
        };
        assert_eq!(
            deletion_finalizers(&configmaps, &object, &with(Propagation::Foreground)),
            ["example.com/x", "foregroundDeletion"]
        );
        assert_eq!(
            deletion_finalizers(&configmaps, &object, &with(Propagation::Background)),
            ["example.com/x"]
        );
        assert_eq!(
            deletion_finalizers(&configmaps, &object, &DeleteOptions::default()),
            ["example.com/x", "orphan"]
        );
        let orphan_false = DeleteOptions {
            orphan_dependents: Some(false),
            ..Default::default()
        };
        assert_eq!(
            deletion_finalizers(&configmaps, &object, &orphan_false),
            ["example.com/x"]
        );
        // An object already being deleted still takes a new policy (no graceful deletion
        // pending): background removes the orphan finalizer again.
        let deleting = json!({"metadata": {"finalizers": ["orphan"], "deletionTimestamp": "2026-01-01T00:00:00Z", "deletionGracePeriodSeconds": 0}});
        assert!(deletion_finalizers(&configmaps, &deleting, &with(Propagation::Background)).is_empty());
        assert!(!pending_graceful(&deleting, &DeleteOptions::default()));
    }

    #[test]
    fn default_gc_policies_as_upstream() {
        let bare = json!({"metadata": {}});
        let none = DeleteOptions::default();
        assert_eq!(
            deletion_finalizers(&resource("", "v1", "replicationcontrollers"), &bare, &none),
            ["orphan"]
        );
        assert_eq!(
            deletion_finalizers(&resource("batch", "v1", "jobs"), &bare, &none),
            ["orphan"]
        );
        assert!(deletion_finalizers(&resource("apps", "v1", "replicasets"), &bare, &none).is_empty());
        let foreground = DeleteOptions {
            propagation: Some(Propagation::Foreground),
            ..Default::default()
        };
        assert!(
            deletion_finalizers(&resource("", "v1", "events"), &bare, &foreground).is_empty(),
            "events do not support garbage collection"
        );
        // The first delete of a namespace: orphanDependents=false means foreground.
        let orphan_false = DeleteOptions {
            orphan_dependents: Some(false),
            ..Default::default()
        };
        assert_eq!(
            deletion_finalizers(&resource("", "v1", "namespaces"), &bare, &orphan_false),
            ["foregroundDeletion"]
        );
    }

    #[test]
    fn graceful_deletion_pending_until_shortened() {
        let pod = json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:30Z", "deletionGracePeriodSeconds": 30}});
        assert!(pending_graceful(&pod, &DeleteOptions::default()));
        let shorter = DeleteOptions {
            grace_period: Some(5),
            ..Default::default()
        };
        assert!(!pending_graceful(&pod, &shorter));
    }

    #[test]
    fn deletion_marks_keep_the_earliest_deadline() {
        let mut object = json!({"metadata": {"generation": 3}});
        assert!(mark_deleting(&mut object, 30));
        assert_eq!(
            object["metadata"]["generation"], 4,
            "the first mark bumps the generation"
        );
        assert_eq!(object::deletion_grace_period(&object), Some(30));
        assert!(
            !mark_deleting(&mut object, 60),
            "a longer grace period does not extend the deadline"
        );
        assert!(mark_deleting(&mut object, 0));
        assert_eq!(object::deletion_grace_period(&object), Some(0));
        assert_eq!(object["metadata"]["generation"], 4, "shortening does not");
    }
}
