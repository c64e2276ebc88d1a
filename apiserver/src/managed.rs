//! `metadata.managedFields` on the write paths: the field manager of a resource endpoint (its
//! kind's types and the strategy's reset fields), the manager name of a request, and the
//! checks upstream's handlers make on `fieldManager`. The field management itself is
//! [`rudder_machinery::managedfields`]; this module only wires it to resources and requests
//! and must not grow merge or ownership logic of its own.

use http::StatusCode;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{StatusCause, StatusDetails};
use rudder_machinery::field::{ErrorList, FieldError, Path, go_is_print};
use rudder_machinery::managedfields::{self, FieldManager, FieldManagerError, builtin};
use serde_json::Value;

use crate::registry::Resource;
use crate::status::ApiError;

/// Upstream's `FieldManagerMaxLength`.
const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// The field manager of `resource` served at `subresource` ("" for the main resource), with
/// the reset fields of its strategy; `None` for kinds without built-in types.
pub fn field_manager<'a>(resource: &'a Resource, subresource: &str) -> Option<FieldManager<'a>> {
    let api_version = resource.api_version();
    let has_status = resource.subresource("status").is_some();
    if let Some(custom) = resource.custom() {
        // The custom resource strategies' `GetResetFields`: `status` for the main resource
        // (with a status subresource), `spec` for the status.
        let types = custom.types.as_ref()?;
        let manager = FieldManager::new(
            types,
            managedfields::openapi::CUSTOM_RESOURCE_ROOT,
            &api_version,
            &resource.kind,
        );
        let reset: &[&[&str]] = match subresource {
            "" if has_status => &[&["status"]],
            "status" => &[&["spec"]],
            _ => &[],
        };
        let manager = if subresource.is_empty() {
            manager
        } else {
            manager.with_subresource(subresource)
        };
        return Some(if reset.is_empty() {
            manager
        } else {
            manager.with_reset_fields(&api_version, reset)
        });
    }
    let reset = builtin::reset_fields(&resource.group, &resource.resource, subresource, has_status);
    let manager = FieldManager::builtin(&api_version, &resource.kind)?;
    let manager = if subresource.is_empty() {
        manager
    } else {
        manager.with_subresource(subresource)
    };
    Some(if reset.is_empty() {
        manager
    } else {
        manager.with_reset_fields(&api_version, reset)
    })
}

/// After a non-apply write by `manager`: recomputes `new`'s managedFields from `old` (`None`
/// on create), upstream's `UpdateNoErrors`.
pub fn update(resource: &Resource, subresource: &str, old: Option<&Value>, new: &mut Value, manager: &str) {
    if let Some(field_manager) = field_manager(resource, subresource) {
        field_manager.update_no_errors(old, new, manager, &now());
        if subresource == "scale" {
            untime_scale_entries(new);
        }
    }
}

/// Upstream's `ScaleHandler` moves the Scale's entries to the parent taking their times from
/// the parent's entries under the Scale's manager identifiers (which name `autoscaling/v1`),
/// so an entry of the scale subresource never has a time; entries are then sorted again as
/// upstream sorts them (operation, time in seconds with none first, manager, apiVersion,
/// subresource).
fn untime_scale_entries(object: &mut Value) {
    let Some(entries) = object
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for entry in entries.iter_mut() {
        if entry.get("subresource").and_then(Value::as_str) == Some("scale")
            && let Some(map) = entry.as_object_mut()
        {
            map.remove("time");
        }
    }
    let text = |entry: &Value, key: &str| entry.get(key).and_then(Value::as_str).unwrap_or("").to_owned();
    entries.sort_by_cached_key(|entry| {
        ["operation", "time", "manager", "apiVersion", "subresource"].map(|key| text(entry, key))
    });
}

/// The time managedFields record: now, in seconds.
pub fn now() -> String {
    crate::util::now_rfc3339()
}

/// A refused apply as upstream answers it: 409 `Conflict` with one `FieldManagerConflict`
/// cause per conflict, 400 `BadRequest`, or a plain 500.
pub fn api_error(error: &FieldManagerError) -> ApiError {
    match error {
        FieldManagerError::Conflicts { message, conflicts } => {
            let mut api_error = ApiError::new(StatusCode::CONFLICT, "Conflict", message.clone());
            api_error.details = Some(Box::new(StatusDetails {
                causes: Some(
                    conflicts
                        .iter()
                        .map(|conflict| StatusCause {
                            reason: Some("FieldManagerConflict".into()),
                            message: Some(conflict.cause_message()),
                            field: Some(conflict.path.clone()),
                        })
                        .collect(),
                ),
                ..Default::default()
            }));
            api_error
        }
        FieldManagerError::BadRequest(message) => ApiError::bad_request(message.clone()),
        FieldManagerError::Internal(message) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "", message.clone())
        }
    }
}

/// The managedFields of `object`, to restore should mutating admission leave them invalid.
pub fn before_admission(object: &Value) -> Option<Value> {
    object.pointer("/metadata/managedFields").cloned()
}

/// Upstream's managedFields admission wrapper: when mutating admission changed managedFields
/// into something that does not decode, the previous ones are restored.
pub fn after_admission(object: &mut Value, before: Option<Value>) {
    if object.pointer("/metadata/managedFields") == before.as_ref()
        || managedfields::validate_managed_fields(object).is_ok()
    {
        return;
    }
    if let Some(meta) = crate::object::meta_mut(object) {
        match before {
            Some(fields) => meta.insert("managedFields".into(), fields),
            None => meta.remove("managedFields"),
        };
    }
}

/// The manager of a request: `fieldManager`, else the user agent up to its first `/`
/// without unprintable characters, at most 128 bytes (upstream's `managerOrUserAgent`).
pub fn manager_name(field_manager: &str, user_agent: &str) -> String {
    if !field_manager.is_empty() {
        return field_manager.to_owned();
    }
    let prefix = user_agent.split('/').next().unwrap_or("");
    let mut out = String::new();
    for c in prefix.chars().filter(|c| go_is_print(*c)) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// Upstream's `ValidateFieldManager`.
pub fn validate_field_manager(field_manager: &str) -> ErrorList {
    let path = Path::new("fieldManager");
    let mut errors = ErrorList::new();
    if field_manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errors.push(FieldError::too_long(&path, FIELD_MANAGER_MAX_LENGTH));
    }
    for (at, c) in field_manager.char_indices() {
        if !go_is_print(c) {
            errors.push(FieldError::invalid(
                &path,
                field_manager,
                format!("invalid character {} (at position {at})", go_unicode(c)),
            ));
        }
    }
    errors
}

/// Go's `%#U`: `U+0007` for an unprintable character, `U+0041 'A'` otherwise.
fn go_unicode(c: char) -> String {
    let code = format!("U+{:04X}", u32::from(c));
    if go_is_print(c) {
        format!("{code} '{c}'")
    } else {
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_names_come_from_the_user_agent_prefix() {
        assert_eq!(manager_name("mine", "kubectl/v1.35.0 (linux/amd64)"), "mine");
        assert_eq!(
            manager_name("", "kubectl/v1.35.0 (linux/amd64) kubernetes/abc"),
            "kubectl"
        );
        assert_eq!(manager_name("", "a\u{7}b/1"), "ab");
        assert_eq!(manager_name("", &"x".repeat(200)).len(), 128);
        assert_eq!(manager_name("", ""), "");
    }

    #[test]
    fn field_managers_are_validated_as_upstream() {
        assert!(validate_field_manager("kubectl-client-side-apply").is_empty());
        let errors = validate_field_manager("a\u{7}");
        assert_eq!(
            errors[0].to_string(),
            "fieldManager: Invalid value: \"a\\a\": invalid character U+0007 (at position 1)"
        );
        let errors = validate_field_manager(&"x".repeat(129));
        assert_eq!(
            errors[0].to_string(),
            "fieldManager: Too long: may not be more than 128 bytes"
        );
    }
}
