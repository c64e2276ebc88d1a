//! The typed per-kind strategy of a built-in kind, and the pipelines that run it over JSON.
//!
//! A [`KindStrategy`] is upstream's registry strategy plus scheme defaulting for one type:
//! defaults, preparation for create and update (status reset, generation), validation and
//! selectable fields. The generic store never sees the types: it calls the [`KindOps`] of a
//! kind, which decode the JSON once, run the strategy and encode the result. Decoding into the
//! type also drops fields the type does not know, as upstream's decoder does.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::field::ErrorList;

/// Per-kind behaviour. Every method has the behaviour of a kind without special rules.
pub trait KindStrategy: Serialize + DeserializeOwned + Sized + 'static {
    /// Scheme defaulting (upstream's `defaults.go`), applied to every object decoded from a
    /// request: create, update, and the result of a patch.
    fn apply_defaults(&mut self) {}

    /// Prepares a new object: clears status, sets `metadata.generation` for kinds that track
    /// it, drops fields of disabled features.
    fn prepare_for_create(&mut self) {}

    /// Records who asked for the object, for kinds that keep it (upstream reads the user from
    /// the request context in `PrepareForCreate`). Runs after `prepare_for_create`.
    fn set_requesting_user(&mut self, _user: &RequestUser) {}

    /// Prepares an update of the main resource: keeps fields the main resource may not change
    /// (status, for kinds with a status subresource) and bumps the generation on spec changes.
    fn prepare_for_update(&mut self, _old: &Self) {}

    /// Prepares an update through the status subresource: keeps everything but status (and
    /// whatever else upstream lets that endpoint change).
    fn prepare_for_status_update(&mut self, _old: &Self) {}

    /// Validates a new object (kind-specific rules, including name format).
    fn validate(&self) -> ErrorList {
        ErrorList::new()
    }

    /// Validates an update of the main resource (including immutable fields).
    fn validate_update(&self, _old: &Self) -> ErrorList {
        ErrorList::new()
    }

    /// Validates an update through the status subresource.
    fn validate_status_update(&self, _old: &Self) -> ErrorList {
        ErrorList::new()
    }

    /// Upstream's `BeforeDelete` for kinds with their own deletion rules (graceful pod
    /// deletion, namespace termination). May change the object (e.g. set a phase); the store
    /// writes it when the plan is not [`DeletePlan::Now`]. `requested` is the grace period
    /// the client asked for.
    fn before_delete(&mut self, _requested: Option<i64>) -> DeletePlan {
        DeletePlan::Now
    }

    /// Warnings to return with a successful create or update.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }

    /// Warnings to return with a successful update of the main resource: those of
    /// [`warnings`](Self::warnings), unless upstream's `WarningsOnUpdate` gives none.
    fn warnings_on_update(&self) -> Vec<String> {
        self.warnings()
    }

    /// Values of the kind-specific selectable fields (beyond `metadata.name` and
    /// `metadata.namespace`), for field selectors.
    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// Names of the kind-specific selectable fields.
    const SELECTABLE_FIELDS: &'static [&'static str] = &[];

    /// Whether an update of a missing object creates it.
    const ALLOW_CREATE_ON_UPDATE: bool = false;

    /// Whether an update without `metadata.resourceVersion` is allowed.
    const ALLOW_UNCONDITIONAL_UPDATE: bool = true;
}

/// The user a request is made by, as strategies see it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestUser {
    /// The user name.
    pub name: String,
    /// The uid.
    pub uid: String,
    /// The groups.
    pub groups: Vec<String>,
    /// Extra attributes.
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

/// How a delete request proceeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletePlan {
    /// Delete now (unless metadata finalizers are pending).
    Now,
    /// Set `deletionTimestamp` this many seconds ahead and wait for the owner of the object
    /// (the kubelet) to delete it with a zero grace period.
    Graceful(i64),
    /// Set `deletionTimestamp` and keep the object until its own finalization is done (a
    /// namespace with `spec.finalizers`), even without metadata finalizers.
    Finalize,
}

/// Why a pipeline failed.
#[derive(Clone, Debug, PartialEq)]
pub enum PipelineError {
    /// The JSON does not fit the type (upstream: 400 BadRequest).
    Decode(String),
    /// Validation failed (upstream: 422 Invalid).
    Invalid(ErrorList),
}

/// Which endpoint an update came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateTarget {
    /// The resource itself.
    Main,
    /// The `status` subresource.
    Status,
}

/// The type-erased `before_delete`: the object and the requested grace period in, the plan
/// and the object to write out.
pub type BeforeDeleteFn = fn(Value, Option<i64>) -> Result<(DeletePlan, Value), PipelineError>;

/// The strategy of one kind, with the type erased.
#[derive(Clone, Copy)]
pub struct KindOps {
    /// Decode, default, prepare for create, validate, encode.
    pub create: fn(Value) -> Result<Value, PipelineError>,
    /// `create` on behalf of a user (kinds that record their requester, such as CSRs).
    pub create_by: fn(Value, &RequestUser) -> Result<Value, PipelineError>,
    /// Decode new and old, default new, prepare for update, validate the update, encode.
    pub update: fn(Value, &Value, UpdateTarget) -> Result<Value, PipelineError>,
    /// Decode, default, encode: the object as the server would store it.
    pub normalize: fn(Value) -> Result<Value, PipelineError>,
    /// Runs the kind's `before_delete` on an object; returns the plan and the object to write.
    pub before_delete: BeforeDeleteFn,
    /// Values of the kind-specific selectable fields.
    pub selectable_fields: fn(&Value) -> Vec<(&'static str, String)>,
    /// Warnings for an object about to be written.
    pub warnings: fn(&Value) -> Vec<String>,
    /// Warnings for an object updated through the main resource.
    pub warnings_on_update: fn(&Value) -> Vec<String>,
    /// Names of the kind-specific selectable fields.
    pub supported_fields: &'static [&'static str],
    /// Whether an update of a missing object creates it.
    pub allow_create_on_update: bool,
    /// Whether an update without a resourceVersion is allowed.
    pub allow_unconditional_update: bool,
}

impl std::fmt::Debug for KindOps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindOps")
            .field("supported_fields", &self.supported_fields)
            .finish_non_exhaustive()
    }
}

impl KindOps {
    /// The operations of `T`.
    pub fn of<T: KindStrategy>() -> KindOps {
        KindOps {
            create: create::<T>,
            create_by: create_by::<T>,
            update: update::<T>,
            normalize: normalize::<T>,
            before_delete: before_delete::<T>,
            selectable_fields: |value| {
                decode_ref::<T>(value)
                    .map(|t| t.selectable_fields())
                    .unwrap_or_default()
            },
            warnings: |value| decode_ref::<T>(value).map(|t| t.warnings()).unwrap_or_default(),
            warnings_on_update: |value| {
                decode_ref::<T>(value)
                    .map(|t| t.warnings_on_update())
                    .unwrap_or_default()
            },
            supported_fields: T::SELECTABLE_FIELDS,
            allow_create_on_update: T::ALLOW_CREATE_ON_UPDATE,
            allow_unconditional_update: T::ALLOW_UNCONDITIONAL_UPDATE,
        }
    }
}

fn decode<T: DeserializeOwned>(value: Value) -> Result<T, PipelineError> {
    serde_json::from_value(value).map_err(|err| PipelineError::Decode(err.to_string()))
}

/// Decodes without copying the value first.
fn decode_ref<T: DeserializeOwned>(value: &Value) -> Result<T, PipelineError> {
    T::deserialize(value).map_err(|err| PipelineError::Decode(err.to_string()))
}

fn encode<T: Serialize>(object: &T) -> Result<Value, PipelineError> {
    serde_json::to_value(object).map_err(|err| PipelineError::Decode(err.to_string()))
}

fn create<T: KindStrategy>(value: Value) -> Result<Value, PipelineError> {
    create_by::<T>(value, &RequestUser::default())
}

fn create_by<T: KindStrategy>(value: Value, user: &RequestUser) -> Result<Value, PipelineError> {
    let mut object: T = decode(value)?;
    object.apply_defaults();
    object.prepare_for_create();
    object.set_requesting_user(user);
    let errors = object.validate();
    if !errors.is_empty() {
        return Err(PipelineError::Invalid(errors));
    }
    encode(&object)
}

fn update<T: KindStrategy>(value: Value, old: &Value, target: UpdateTarget) -> Result<Value, PipelineError> {
    let mut object: T = decode(value)?;
    let old: T = decode(old.clone())?;
    object.apply_defaults();
    let errors = match target {
        UpdateTarget::Main => {
            object.prepare_for_update(&old);
            object.validate_update(&old)
        }
        UpdateTarget::Status => {
            object.prepare_for_status_update(&old);
            object.validate_status_update(&old)
        }
    };
    if !errors.is_empty() {
        return Err(PipelineError::Invalid(errors));
    }
    encode(&object)
}

fn before_delete<T: KindStrategy>(
    value: Value,
    requested: Option<i64>,
) -> Result<(DeletePlan, Value), PipelineError> {
    let mut object: T = decode(value)?;
    let plan = object.before_delete(requested);
    Ok((plan, encode(&object)?))
}

fn normalize<T: KindStrategy>(value: Value) -> Result<Value, PipelineError> {
    let mut object: T = decode(value)?;
    object.apply_defaults();
    encode(&object)
}
