//! The generic object-metadata validation every create and update gets after the kind's own
//! (upstream: `ValidateObjectMetaAccessor` in `rest.BeforeCreate`, and its update variant).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rudder_machinery::field::{ErrorList, FieldError, Path};
use rudder_machinery::validation::meta::{
    validate_object_meta_accessor, validate_object_meta_accessor_update, validate_path_segment_name,
};
use serde_json::Value;

fn decode(meta: &Value, path: &Path) -> Result<ObjectMeta, ErrorList> {
    if meta.is_null() {
        return Ok(ObjectMeta::default());
    }
    serde_json::from_value(meta.clone())
        .map_err(|err| vec![FieldError::invalid(path, meta.clone(), err.to_string())])
}

/// Validates the metadata of a new object.
pub fn validate_object_meta(meta: &Value, namespaced: bool) -> ErrorList {
    let path = Path::new("metadata");
    match decode(meta, &path) {
        Ok(meta) => validate_object_meta_accessor(&meta, namespaced, validate_path_segment_name, &path),
        Err(errors) => errors,
    }
}

/// Validates the metadata of an update.
pub fn validate_object_meta_update(new: &Value, old: &Value, _namespaced: bool) -> ErrorList {
    let path = Path::new("metadata");
    match (decode(new, &path), decode(old, &path)) {
        (Ok(new), Ok(old)) => validate_object_meta_accessor_update(&new, &old, &path),
        (Err(errors), _) | (_, Err(errors)) => errors,
    }
}
