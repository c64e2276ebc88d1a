//! Object metadata validation: name validators, labels, annotations, finalizers, owner
//! references, managed fields, label selectors, and `ObjectMeta` on create and update.
//!
//! Ports k8s.io/apimachinery/pkg/api/validation (generic.go, objectmeta.go, path/name.go),
//! pkg/apis/meta/v1/validation, and the metadata helpers of pkg/apis/core/validation. There are
//! two flavours of the object-meta checks, as upstream has: the `*_accessor` functions are
//! apimachinery's (used by the generic registry and non-core API groups such as CRDs), the
//! plain ones are core's, which also require single-word finalizer names to be standard ones.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ManagedFieldsEntry, ObjectMeta, OwnerReference,
};
use serde::Serialize;

use super::formats::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name, is_valid_label_value,
};
use crate::field::{BadValue, ErrorList, FieldError, Path};

/// `field is immutable`.
pub const FIELD_IMMUTABLE_ERROR_MSG: &str = "field is immutable";
/// `must be greater than or equal to 0`.
pub const IS_NEGATIVE_ERROR_MSG: &str = "must be greater than or equal to 0";
/// `must be greater than zero`.
pub const IS_NOT_POSITIVE_ERROR_MSG: &str = "must be greater than zero";
/// The limit on the summed size of all annotation keys and values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_B: usize = 256 * (1 << 10);
/// The finalizer that orphans dependents.
pub const FINALIZER_ORPHAN_DEPENDENTS: &str = "orphan";
/// The finalizer of foreground deletion.
pub const FINALIZER_DELETE_DEPENDENTS: &str = "foregroundDeletion";
/// The namespace lifecycle finalizer (`spec.finalizers` of a Namespace).
pub const FINALIZER_KUBERNETES: &str = "kubernetes";
/// Maximum length of a field manager name.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;
/// Maximum length of a managed-fields subresource name.
pub const MAX_SUBRESOURCE_NAME_LENGTH: usize = 256;

/// Validates a name; `prefix` is true when the name is a `generateName` prefix (a trailing
/// dash is then allowed). Returns the problems found.
pub type ValidateNameFn = fn(&str, bool) -> Vec<String>;

fn mask_trailing_dash(name: &str) -> String {
    match name.strip_suffix('-') {
        Some(stripped) if name.len() > 1 => {
            let mut masked = stripped[..stripped.len().saturating_sub(1)].to_owned();
            masked.push('a');
            masked
        }
        _ => name.to_owned(),
    }
}

/// Names that are DNS subdomains (most kinds).
pub fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        return is_dns1123_subdomain(&mask_trailing_dash(name));
    }
    is_dns1123_subdomain(name)
}

/// Names that are DNS (RFC 1123) labels.
pub fn name_is_dns_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        return is_dns1123_label(&mask_trailing_dash(name));
    }
    is_dns1123_label(name)
}

/// Names that are DNS-1035 labels (Services).
pub fn name_is_dns1035_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        return is_dns1035_label(&mask_trailing_dash(name));
    }
    is_dns1035_label(name)
}

/// Namespace names (DNS labels).
pub fn validate_namespace_name(name: &str, prefix: bool) -> Vec<String> {
    name_is_dns_label(name, prefix)
}

/// ServiceAccount names (DNS subdomains).
pub fn validate_service_account_name(name: &str, prefix: bool) -> Vec<String> {
    name_is_dns_subdomain(name, prefix)
}

/// Whether the name can be used as a path segment: not `.` or `..`, no `/` or `%`.
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    is_valid_path_segment_prefix(name)
}

/// Whether the name can be the prefix of a path segment: no `/` or `%`.
pub fn is_valid_path_segment_prefix(name: &str) -> Vec<String> {
    ["/", "%"]
        .iter()
        .filter(|illegal| name.contains(*illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
        .collect()
}

/// The name validator of the generic registry (and of custom resources).
pub fn validate_path_segment_name(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        return is_valid_path_segment_prefix(name);
    }
    is_valid_path_segment_name(name)
}

/// A bad value rendered the way upstream renders a Go value of the same JSON shape: strings
/// quoted, numbers and booleans plain, anything else as JSON.
pub fn bad_value<T: Serialize + ?Sized>(value: &T) -> BadValue {
    BadValue::from(serde_json::to_value(value).unwrap_or(serde_json::Value::Null))
}

/// Wraps a name validator's messages as `Invalid` errors of `path`.
pub fn name_errors(path: &Path, name: &str, messages: Vec<String>) -> ErrorList {
    messages
        .into_iter()
        .map(|msg| FieldError::invalid(path, name, msg))
        .collect()
}

/// A DNS (RFC 1123) label.
pub fn validate_dns1123_label(value: &str, path: &Path) -> ErrorList {
    name_errors(path, value, is_dns1123_label(value))
}

/// A DNS (RFC 1123) subdomain.
pub fn validate_dns1123_subdomain(value: &str, path: &Path) -> ErrorList {
    name_errors(path, value, is_dns1123_subdomain(value))
}

/// A qualified name (label key format).
pub fn validate_qualified_name(value: &str, path: &Path) -> ErrorList {
    name_errors(path, value, is_qualified_name(value))
}

/// `value >= 0`.
pub fn validate_nonnegative_field(value: i64, path: &Path) -> ErrorList {
    if value < 0 {
        return vec![FieldError::invalid(path, value, IS_NEGATIVE_ERROR_MSG)];
    }
    Vec::new()
}

/// `value > 0`.
pub fn validate_positive_field(value: i64, path: &Path) -> ErrorList {
    if value <= 0 {
        return vec![FieldError::invalid(path, value, IS_NOT_POSITIVE_ERROR_MSG)];
    }
    Vec::new()
}

/// `new == old`, else `Invalid: <new>: field is immutable`. Pass values shaped like upstream's
/// Go field (a plain string rather than an `Option<String>` where Go has a non-pointer
/// string), since the bad value is rendered from `new`.
pub fn validate_immutable_field<T: PartialEq + Serialize + ?Sized>(
    new: &T,
    old: &T,
    path: &Path,
) -> ErrorList {
    if new != old {
        return vec![FieldError::invalid(
            path,
            bad_value(new),
            FIELD_IMMUTABLE_ERROR_MSG,
        )];
    }
    Vec::new()
}

/// A label key.
pub fn validate_label_name(name: &str, path: &Path) -> ErrorList {
    name_errors(path, name, is_qualified_name(name))
}

/// Label keys and values. Errors carry the path of the whole map, as upstream's do.
pub fn validate_labels(labels: Option<&BTreeMap<String, String>>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (key, value) in labels.into_iter().flatten() {
        errs.extend(validate_label_name(key, path));
        errs.extend(
            is_valid_label_value(value)
                .into_iter()
                .map(|msg| FieldError::invalid(path, value, msg)),
        );
    }
    errs
}

/// Whether the summed size of annotation keys and values is within
/// [`TOTAL_ANNOTATION_SIZE_LIMIT_B`].
pub fn annotations_size_ok(annotations: Option<&BTreeMap<String, String>>) -> bool {
    let total: usize = annotations
        .into_iter()
        .flatten()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    total <= TOTAL_ANNOTATION_SIZE_LIMIT_B
}

/// Annotation keys (qualified names, case-insensitively) and the total size.
pub fn validate_annotations(annotations: Option<&BTreeMap<String, String>>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for key in annotations.into_iter().flatten().map(|(k, _)| k) {
        errs.extend(
            is_qualified_name(&key.to_lowercase())
                .into_iter()
                .map(|msg| FieldError::invalid(path, key, msg)),
        );
    }
    if !annotations_size_ok(annotations) {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT_B));
    }
    errs
}

/// An owner reference as Go's JSON encoder writes it (fields in declaration order).
fn owner_reference_json(reference: &OwnerReference) -> String {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = format!(
        "{{\"apiVersion\":{},\"kind\":{},\"name\":{},\"uid\":{}",
        quote(&reference.api_version),
        quote(&reference.kind),
        quote(&reference.name),
        quote(&reference.uid)
    );
    if let Some(controller) = reference.controller {
        out.push_str(&format!(",\"controller\":{controller}"));
    }
    if let Some(block) = reference.block_owner_deletion {
        out.push_str(&format!(",\"blockOwnerDeletion\":{block}"));
    }
    out.push('}');
    out
}

/// Splits `group/version` as upstream's `ParseGroupVersion` does: `(group, version)`, or
/// `None` for more than one slash.
pub fn parse_group_version(api_version: &str) -> Option<(&str, &str)> {
    if api_version.is_empty() || api_version == "/" {
        return Some(("", ""));
    }
    match api_version.split('/').collect::<Vec<_>>().as_slice() {
        [version] => Some(("", version)),
        [group, version] => Some((group, version)),
        _ => None,
    }
}

fn validate_owner_reference(reference: &OwnerReference, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let (group, version) = parse_group_version(&reference.api_version).unwrap_or(("", ""));
    if version.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("apiVersion"),
            reference.api_version.as_str(),
            "version must not be empty",
        ));
    }
    if reference.kind.is_empty() {
        errs.push(FieldError::invalid(&path.child("kind"), "", "must not be empty"));
    }
    if reference.name.is_empty() {
        errs.push(FieldError::invalid(&path.child("name"), "", "must not be empty"));
    }
    if reference.uid.is_empty() {
        errs.push(FieldError::invalid(&path.child("uid"), "", "must not be empty"));
    }
    if group.is_empty() && version == "v1" && reference.kind == "Event" {
        errs.push(FieldError::invalid(
            path,
            BadValue::Plain(owner_reference_json(reference)),
            format!(
                "{group}/{version}, Kind={} is disallowed from being an owner",
                reference.kind
            ),
        ));
    }
    errs
}

/// Owner references: apiVersion, kind, name and uid set, no banned owner kind, at most one
/// controller.
pub fn validate_owner_references(references: &[OwnerReference], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut first_controller: Option<String> = None;
    for reference in references {
        errs.extend(validate_owner_reference(reference, path));
        if reference.controller == Some(true) {
            let current = format!("{}/{}", reference.kind, reference.name);
            match &first_controller {
                Some(first) => {
                    let all: Vec<String> = references.iter().map(owner_reference_json).collect();
                    errs.push(FieldError::invalid(
                        path,
                        BadValue::Plain(format!("[{}]", all.join(","))),
                        format!(
                            "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                        ),
                    ));
                }
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// A finalizer name is a qualified name (apimachinery's check).
pub fn validate_finalizer_name(name: &str, path: &Path) -> ErrorList {
    name_errors(path, name, is_qualified_name(name))
}

/// Core's extra finalizer rule: a name without `/` must be a standard finalizer
/// (`kubernetes`, `orphan`, `foregroundDeletion`).
pub fn validate_kube_finalizer_name(name: &str, path: &Path) -> ErrorList {
    if !name.contains('/') && !is_standard_finalizer_name(name) {
        return vec![FieldError::invalid(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        )];
    }
    Vec::new()
}

/// The finalizers core knows without a domain prefix.
pub fn is_standard_finalizer_name(name: &str) -> bool {
    [
        FINALIZER_KUBERNETES,
        FINALIZER_ORPHAN_DEPENDENTS,
        FINALIZER_DELETE_DEPENDENTS,
    ]
    .contains(&name)
}

/// Finalizer names, and `orphan` together with `foregroundDeletion`.
pub fn validate_finalizers(finalizers: &[String], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for finalizer in finalizers {
        errs.extend(validate_finalizer_name(finalizer, path));
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has(FINALIZER_DELETE_DEPENDENTS) && has(FINALIZER_ORPHAN_DEPENDENTS) {
        errs.push(FieldError::invalid(
            path,
            bad_value(&finalizers),
            format!(
                "finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set"
            ),
        ));
    }
    errs
}

/// Renders a string list as Go's `%#v` does: `[]string{"a", "b"}`.
pub fn go_string_slice(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// No finalizer may be added to an object that is being deleted.
pub fn validate_no_new_finalizers(new: &[String], old: &[String], path: &Path) -> ErrorList {
    let extra: BTreeSet<&str> = new
        .iter()
        .map(String::as_str)
        .filter(|f| !old.iter().any(|o| o == f))
        .collect();
    if extra.is_empty() {
        return Vec::new();
    }
    let extra: Vec<&str> = extra.into_iter().collect();
    vec![FieldError::forbidden(
        path,
        format!(
            "no new finalizers can be added if the object is being deleted, found new finalizers {}",
            go_string_slice(&extra)
        ),
    )]
}

fn is_go_printable(c: char) -> bool {
    c == ' ' || !(c.is_control() || c.is_whitespace())
}

/// A field manager name: at most 128 bytes, printable characters only.
pub fn validate_field_manager(manager: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errs.push(FieldError::too_long(path, FIELD_MANAGER_MAX_LENGTH));
    }
    for (i, c) in manager.char_indices() {
        if !is_go_printable(c) {
            errs.push(FieldError::invalid(
                path,
                manager,
                format!("invalid character U+{:04X} (at position {i})", u32::from(c)),
            ));
        }
    }
    errs
}

/// Managed fields entries: operation `Apply` or `Update`, fieldsType `FieldsV1`, manager name,
/// subresource length.
pub fn validate_managed_fields(entries: &[ManagedFieldsEntry], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = path.index(i);
        let operation = entry.operation.as_deref().unwrap_or_default();
        if operation != "Apply" && operation != "Update" {
            errs.push(FieldError::invalid(
                &path.child("operation"),
                operation,
                "must be `Apply` or `Update`",
            ));
        }
        let fields_type = entry.fields_type.as_deref().unwrap_or_default();
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            errs.push(FieldError::invalid(
                &path.child("fieldsType"),
                fields_type,
                "must be `FieldsV1`",
            ));
        }
        errs.extend(validate_field_manager(
            entry.manager.as_deref().unwrap_or_default(),
            &path.child("manager"),
        ));
        if entry.subresource.as_deref().unwrap_or_default().len() > MAX_SUBRESOURCE_NAME_LENGTH {
            errs.push(FieldError::too_long(
                &path.child("subresource"),
                MAX_SUBRESOURCE_NAME_LENGTH,
            ));
        }
    }
    errs
}

fn str_of(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or_default()
}

/// Validates an object's metadata on create (apimachinery's `ValidateObjectMetaAccessor`):
/// `generateName` and `name` through `name_fn`, a name or generateName present, the namespace
/// required (and a DNS label) for namespaced kinds and forbidden otherwise, a non-negative
/// generation, labels, annotations, owner references, finalizers and managed fields.
pub fn validate_object_meta_accessor(
    meta: &ObjectMeta,
    requires_namespace: bool,
    name_fn: ValidateNameFn,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let generate_name = str_of(&meta.generate_name);
    if !generate_name.is_empty() {
        errs.extend(name_errors(
            &path.child("generateName"),
            generate_name,
            name_fn(generate_name, true),
        ));
    }
    let name = str_of(&meta.name);
    if name.is_empty() {
        errs.push(FieldError::required(
            &path.child("name"),
            "name or generateName is required",
        ));
    } else {
        errs.extend(name_errors(&path.child("name"), name, name_fn(name, false)));
    }
    errs.extend(validate_object_meta_common(meta, requires_namespace, path));
    errs
}

fn validate_object_meta_common(meta: &ObjectMeta, requires_namespace: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let namespace = str_of(&meta.namespace);
    if requires_namespace {
        if namespace.is_empty() {
            errs.push(FieldError::required(&path.child("namespace"), ""));
        } else {
            errs.extend(name_errors(
                &path.child("namespace"),
                namespace,
                validate_namespace_name(namespace, false),
            ));
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("namespace"),
            "not allowed on this type",
        ));
    }
    errs.extend(validate_nonnegative_field(
        meta.generation.unwrap_or_default(),
        &path.child("generation"),
    ));
    errs.extend(validate_labels(meta.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(
        meta.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        meta.owner_references.as_deref().unwrap_or_default(),
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_finalizers(
        meta.finalizers.as_deref().unwrap_or_default(),
        &path.child("finalizers"),
    ));
    errs.extend(validate_managed_fields(
        meta.managed_fields.as_deref().unwrap_or_default(),
        &path.child("managedFields"),
    ));
    errs
}

fn validate_kube_finalizer_names(meta: &ObjectMeta, path: &Path) -> ErrorList {
    let finalizers_path = path.child("finalizers");
    meta.finalizers
        .iter()
        .flatten()
        .enumerate()
        .flat_map(|(i, f)| validate_kube_finalizer_name(f, &finalizers_path.index(i)))
        .collect()
}

/// Core's `ValidateObjectMeta`: [`validate_object_meta_accessor`] plus the standard-finalizer
/// rule for single-word finalizer names. Used by the core kinds and by the API groups whose
/// validation builds on core's (apps, batch, ...).
pub fn validate_object_meta(
    meta: &ObjectMeta,
    requires_namespace: bool,
    name_fn: ValidateNameFn,
    path: &Path,
) -> ErrorList {
    let mut errs = validate_object_meta_accessor(meta, requires_namespace, name_fn, path);
    errs.extend(validate_kube_finalizer_names(meta, path));
    errs
}

/// Validates an object's metadata on update (apimachinery's `ValidateObjectMetaAccessorUpdate`):
/// no new finalizers while deleting, a resourceVersion, no generation decrement, immutable
/// name, namespace, uid, creationTimestamp, deletionTimestamp and deletionGracePeriodSeconds,
/// and the labels, annotations, owner references and managed fields of the new object.
pub fn validate_object_meta_accessor_update(new: &ObjectMeta, old: &ObjectMeta, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if old.deletion_timestamp.is_some() {
        errs.extend(validate_no_new_finalizers(
            new.finalizers.as_deref().unwrap_or_default(),
            old.finalizers.as_deref().unwrap_or_default(),
            &path.child("finalizers"),
        ));
    }
    let resource_version = str_of(&new.resource_version);
    if resource_version.is_empty() {
        errs.push(FieldError::invalid(
            &path.child("resourceVersion"),
            resource_version,
            "must be specified for an update",
        ));
    }
    let (new_generation, old_generation) = (
        new.generation.unwrap_or_default(),
        old.generation.unwrap_or_default(),
    );
    if new_generation < old_generation {
        errs.push(FieldError::invalid(
            &path.child("generation"),
            new_generation,
            "must not be decremented",
        ));
    }
    errs.extend(validate_immutable_field(
        str_of(&new.name),
        str_of(&old.name),
        &path.child("name"),
    ));
    errs.extend(validate_immutable_field(
        str_of(&new.namespace),
        str_of(&old.namespace),
        &path.child("namespace"),
    ));
    errs.extend(validate_immutable_field(
        str_of(&new.uid),
        str_of(&old.uid),
        &path.child("uid"),
    ));
    errs.extend(validate_immutable_field(
        &new.creation_timestamp,
        &old.creation_timestamp,
        &path.child("creationTimestamp"),
    ));
    errs.extend(validate_immutable_field(
        &new.deletion_timestamp,
        &old.deletion_timestamp,
        &path.child("deletionTimestamp"),
    ));
    errs.extend(validate_immutable_field(
        &new.deletion_grace_period_seconds,
        &old.deletion_grace_period_seconds,
        &path.child("deletionGracePeriodSeconds"),
    ));
    errs.extend(validate_labels(new.labels.as_ref(), &path.child("labels")));
    errs.extend(validate_annotations(
        new.annotations.as_ref(),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        new.owner_references.as_deref().unwrap_or_default(),
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_managed_fields(
        new.managed_fields.as_deref().unwrap_or_default(),
        &path.child("managedFields"),
    ));
    errs
}

/// Core's `ValidateObjectMetaUpdate`: [`validate_object_meta_accessor_update`] plus the
/// standard-finalizer rule.
pub fn validate_object_meta_update(new: &ObjectMeta, old: &ObjectMeta, path: &Path) -> ErrorList {
    let mut errs = validate_object_meta_accessor_update(new, old, path);
    errs.extend(validate_kube_finalizer_names(new, path));
    errs
}

/// What the generic registry checks on every create after the kind's own validation
/// (upstream's `rest.BeforeCreate`): object meta with path-segment names.
pub fn validate_common_create(meta: &ObjectMeta, namespaced: bool) -> ErrorList {
    validate_object_meta_accessor(
        meta,
        namespaced,
        validate_path_segment_name,
        &Path::new("metadata"),
    )
}

/// What the generic registry checks on every update before the kind's own validation
/// (upstream's `validateCommonFields` in `rest.BeforeUpdate`).
pub fn validate_common_update(new: &ObjectMeta, old: &ObjectMeta, namespaced: bool) -> ErrorList {
    let path = Path::new("metadata");
    let mut errs = validate_object_meta_accessor(new, namespaced, validate_path_segment_name, &path);
    errs.extend(validate_object_meta_accessor_update(new, old, &path));
    errs
}

/// Options of [`validate_label_selector`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabelSelectorValidationOptions {
    /// Accept invalid label values in `matchExpressions` (for objects stored before the check).
    pub allow_invalid_label_value_in_selector: bool,
    /// Accept operators other than In, NotIn, Exists and DoesNotExist.
    pub allow_unknown_operator_in_requirement: bool,
}

/// Whether a selector has an invalid label value in its match expressions.
pub fn label_selector_has_invalid_label_value(selector: Option<&LabelSelector>) -> bool {
    selector
        .and_then(|s| s.match_expressions.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|e| e.values.iter().flatten())
        .any(|v| !is_valid_label_value(v).is_empty())
}

/// A label selector: matchLabels as labels, each match expression's operator, key and values.
pub fn validate_label_selector(
    selector: Option<&LabelSelector>,
    opts: LabelSelectorValidationOptions,
    path: &Path,
) -> ErrorList {
    let Some(selector) = selector else {
        return Vec::new();
    };
    let mut errs = validate_labels(selector.match_labels.as_ref(), &path.child("matchLabels"));
    for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
        errs.extend(validate_label_selector_requirement(
            expr,
            opts,
            &path.child("matchExpressions").index(i),
        ));
    }
    errs
}

/// One match expression of a label selector.
pub fn validate_label_selector_requirement(
    requirement: &LabelSelectorRequirement,
    opts: LabelSelectorValidationOptions,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = requirement.values.as_deref().unwrap_or_default();
    match requirement.operator.as_str() {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(FieldError::forbidden(
                    &path.child("values"),
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                ));
            }
        }
        other => {
            if !opts.allow_unknown_operator_in_requirement {
                errs.push(FieldError::invalid(
                    &path.child("operator"),
                    other,
                    "not a valid selector operator",
                ));
            }
        }
    }
    errs.extend(validate_label_name(&requirement.key, &path.child("key")));
    if !opts.allow_invalid_label_value_in_selector {
        for (i, value) in values.iter().enumerate() {
            errs.extend(
                is_valid_label_value(value)
                    .into_iter()
                    .map(|msg| FieldError::invalid(&path.child("values").index(i), value, msg)),
            );
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::aggregate;

    fn meta(json: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(json).unwrap()
    }

    fn rendered(errs: &ErrorList) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    #[test]
    fn name_validators_mask_a_trailing_dash_for_prefixes() {
        assert!(name_is_dns_subdomain("foo-", true).is_empty());
        assert_eq!(name_is_dns_subdomain("foo-", false), [SUBDOMAIN_MSG]);
        assert!(name_is_dns_label("a-", true).is_empty());
        assert!(name_is_dns1035_label("svc-", true).is_empty());
        assert_eq!(name_is_dns1035_label("1svc", false).len(), 1);
        assert_eq!(validate_path_segment_name("..", false), ["may not be '..'"]);
        assert_eq!(
            validate_path_segment_name("a/b%", false),
            ["may not contain '/'", "may not contain '%'"]
        );
        assert!(validate_path_segment_name("..", true).is_empty());
    }

    #[test]
    fn object_meta_on_create() {
        let generate_name_err = format!("metadata.generateName: Invalid value: \"Bad-\": {SUBDOMAIN_MSG}");
        let name_err = format!("metadata.name: Invalid value: \"Bad\": {SUBDOMAIN_MSG}");
        let cases: Vec<(serde_json::Value, bool, Vec<&str>)> = vec![
            (
                serde_json::json!({"name": "ok", "namespace": "default"}),
                true,
                vec![],
            ),
            (
                serde_json::json!({"namespace": "default"}),
                true,
                vec!["metadata.name: Required value: name or generateName is required"],
            ),
            (
                serde_json::json!({"name": "Bad", "generateName": "Bad-"}),
                false,
                vec![&generate_name_err, &name_err],
            ),
            (
                serde_json::json!({"name": "a"}),
                true,
                vec!["metadata.namespace: Required value"],
            ),
            (
                serde_json::json!({"name": "a", "namespace": "x"}),
                false,
                vec!["metadata.namespace: Forbidden: not allowed on this type"],
            ),
            (
                serde_json::json!({"name": "a", "generation": -1}),
                false,
                vec!["metadata.generation: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (
                serde_json::json!({"name": "a", "labels": {"a/b/c": "x", "ok": "-bad"}}),
                false,
                vec![
                    "metadata.labels: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                    "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                ],
            ),
            (
                serde_json::json!({"name": "a", "annotations": {"Example.COM/Key": "v"}}),
                false,
                vec![],
            ),
            (
                serde_json::json!({"name": "a", "finalizers": ["orphan", "foregroundDeletion", "custom"]}),
                false,
                vec![
                    "metadata.finalizers: Invalid value: [\"orphan\",\"foregroundDeletion\",\"custom\"]: finalizer orphan and foregroundDeletion cannot be both set",
                    "metadata.finalizers[2]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
                ],
            ),
            (
                serde_json::json!({"name": "a", "ownerReferences": [
                    {"apiVersion": "apps/", "kind": "", "name": "", "uid": ""},
                    {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "1", "controller": true},
                    {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "2", "controller": true}
                ]}),
                false,
                vec![
                    "metadata.ownerReferences.apiVersion: Invalid value: \"apps/\": version must not be empty",
                    "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty",
                    "metadata.ownerReferences.name: Invalid value: \"\": must not be empty",
                    "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty",
                    "metadata.ownerReferences: Invalid value: {\"apiVersion\":\"v1\",\"kind\":\"Event\",\"name\":\"e\",\"uid\":\"1\",\"controller\":true}: /v1, Kind=Event is disallowed from being an owner",
                    "metadata.ownerReferences: Invalid value: [{\"apiVersion\":\"apps/\",\"kind\":\"\",\"name\":\"\",\"uid\":\"\"},{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"name\":\"e\",\"uid\":\"1\",\"controller\":true},{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"name\":\"p\",\"uid\":\"2\",\"controller\":true}]: Only one reference can have Controller set to true. Found \"true\" in references for Event/e and Pod/p",
                ],
            ),
            (
                serde_json::json!({"name": "a", "managedFields": [{"operation": "Patch", "fieldsType": "FieldsV2", "manager": "m\u{7}"}]}),
                false,
                vec![
                    "metadata.managedFields[0].operation: Invalid value: \"Patch\": must be `Apply` or `Update`",
                    "metadata.managedFields[0].fieldsType: Invalid value: \"FieldsV2\": must be `FieldsV1`",
                    "metadata.managedFields[0].manager: Invalid value: \"m\\a\": invalid character U+0007 (at position 1)",
                ],
            ),
        ];
        for (json, namespaced, expected) in cases {
            let errs = validate_object_meta(
                &meta(json.clone()),
                namespaced,
                name_is_dns_subdomain,
                &Path::new("metadata"),
            );
            assert_eq!(rendered(&errs), expected, "{json}");
        }
    }

    #[test]
    fn annotations_total_size() {
        let mut big = BTreeMap::new();
        big.insert("a".to_owned(), "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B));
        assert_eq!(
            rendered(&validate_annotations(
                Some(&big),
                &Path::new("metadata").child("annotations")
            )),
            ["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
        big.insert("a".to_owned(), "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_B - 1));
        assert!(validate_annotations(Some(&big), &Path::root()).is_empty());
    }

    #[test]
    fn object_meta_on_update() {
        let old = meta(serde_json::json!({
            "name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": "5", "generation": 3,
            "creationTimestamp": "2024-01-01T00:00:00Z", "deletionTimestamp": "2024-01-02T00:00:00Z",
            "finalizers": ["example.com/f"]
        }));
        let new = meta(serde_json::json!({
            "name": "b", "namespace": "ns2", "uid": "u2", "generation": 2,
            "creationTimestamp": "2024-01-01T00:00:01Z",
            "finalizers": ["example.com/f", "example.com/g", "custom"]
        }));
        let errs = validate_object_meta_update(&new, &old, &Path::new("metadata"));
        assert_eq!(
            rendered(&errs),
            [
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"custom\", \"example.com/g\"}",
                "metadata.resourceVersion: Invalid value: \"\": must be specified for an update",
                "metadata.generation: Invalid value: 2: must not be decremented",
                "metadata.name: Invalid value: \"b\": field is immutable",
                "metadata.namespace: Invalid value: \"ns2\": field is immutable",
                "metadata.uid: Invalid value: \"u2\": field is immutable",
                "metadata.creationTimestamp: Invalid value: \"2024-01-01T00:00:01Z\": field is immutable",
                "metadata.deletionTimestamp: Invalid value: null: field is immutable",
                "metadata.finalizers[2]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
            ]
        );
        let mut same = old.clone();
        same.labels = Some([("k".to_owned(), "v".to_owned())].into());
        assert!(validate_object_meta_update(&same, &old, &Path::new("metadata")).is_empty());
        assert_eq!(
            aggregate(&validate_common_update(&new, &old, true))
                .matches("field is immutable")
                .count(),
            5
        );
    }

    #[test]
    fn label_selectors() {
        let selector: LabelSelector = serde_json::from_value(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "a", "operator": "In"},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "Near", "values": ["-x"]}
            ]
        }))
        .unwrap();
        let errs = validate_label_selector(
            Some(&selector),
            LabelSelectorValidationOptions::default(),
            &Path::new("spec").child("selector"),
        );
        let rendered = rendered(&errs);
        assert_eq!(rendered.len(), 4, "{rendered:?}");
        assert_eq!(
            rendered[0],
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        );
        assert_eq!(
            rendered[1],
            "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
        );
        assert_eq!(
            rendered[2],
            "spec.selector.matchExpressions[2].operator: Invalid value: \"Near\": not a valid selector operator"
        );
        assert!(
            rendered[3].starts_with("spec.selector.matchExpressions[2].values[0]: Invalid value: \"-x\"")
        );
        assert!(label_selector_has_invalid_label_value(Some(&selector)));
    }

    #[test]
    fn immutable_fields_render_the_new_value() {
        let p = Path::new("spec").child("x");
        assert_eq!(
            rendered(&validate_immutable_field(&3, &4, &p)),
            ["spec.x: Invalid value: 3: field is immutable"]
        );
        assert_eq!(
            rendered(&validate_immutable_field(&vec!["a"], &vec!["b"], &p)),
            ["spec.x: Invalid value: [\"a\"]: field is immutable"]
        );
        assert!(validate_immutable_field("a", "a", &p).is_empty());
    }
}
