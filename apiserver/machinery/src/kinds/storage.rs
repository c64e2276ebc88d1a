//! The strategies of storage.k8s.io/v1: StorageClass, CSIDriver, CSINode, CSIStorageCapacity,
//! VolumeAttachment and VolumeAttributesClass.
//!
//! Ports pkg/apis/storage/v1/defaults.go (reclaim policy and binding mode of classes, the
//! CSIDriver spec defaults), pkg/registry/storage/*/strategy.go (the VolumeAttachment status
//! subresource, CSIDriver generation, feature-gated fields as 1.35 enables them, warnings,
//! conditional updates) and pkg/apis/storage/validation/validation.go.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::TopologySelectorTerm;
use k8s_openapi::api::storage::v1::{
    CSIDriver, CSIDriverSpec, CSINode, CSINodeDriver, CSIStorageCapacity, StorageClass, TokenRequest,
    VolumeAttachment, VolumeAttachmentSpec, VolumeAttachmentStatus, VolumeAttributesClass, VolumeError,
};

use super::api_shared::{
    bump_generation, core_meta, core_meta_update, deprecated_node_label, differs, go_label_selector,
    node_selector_warnings, reset_meta_for_status,
};
use super::core_shared::{json_str, json_str_list, list_of, str_of};
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{
    LabelSelectorValidationOptions, canonicalize_quantity, inclusive_range_error, is_dns1123_subdomain,
    label_selector_has_invalid_label_value, name_is_dns_subdomain, parse_quantity_field,
    set_defaults_resource_list, validate_immutable_field, validate_label_name, validate_label_selector,
    validate_nonnegative_field, validate_nonnegative_quantity, validate_qualified_name,
};

const MAX_PROVISIONER_PARAMETER_SIZE: usize = 256 * (1 << 10);
const MAX_PROVISIONER_PARAMETER_LEN: usize = 512;
const MAX_ATTACHED_VOLUME_METADATA_SIZE: usize = 256 * (1 << 10);
const MAX_VOLUME_ERROR_MESSAGE_SIZE: usize = 1024;
const CSI_NODE_ID_LONGER_MAX_LENGTH: usize = 256;
const RECLAIM_POLICIES: &[&str] = &["Delete", "Retain"];
const BINDING_MODES: &[&str] = &["Immediate", "WaitForFirstConsumer"];
const FS_GROUP_POLICIES: &[&str] = &["File", "None", "ReadWriteOnceWithFSType"];
const LIFECYCLE_MODES: &[&str] = &["Persistent", "Ephemeral"];
const SERVICE_ACCOUNT_TOKEN_IN_SECRETS_WARNING: &str = "spec.serviceAccountTokenInSecrets is unset; if supported by this CSI driver, set to true to prevent possible logging of tokens in volume attributes";

// Shared checks

/// Upstream's `validateProvisioner`: required, and a qualified name when lowercased.
fn validate_provisioner(provisioner: &str, path: &Path) -> ErrorList {
    if provisioner.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    validate_qualified_name(&provisioner.to_lowercase(), path)
}

/// Upstream's `validateParameters`: at most 512 entries of at most 256 KiB, no empty keys.
fn validate_parameters(
    params: &Option<BTreeMap<String, String>>,
    allow_empty: bool,
    path: &Path,
) -> ErrorList {
    let empty = BTreeMap::new();
    let params = params.as_ref().unwrap_or(&empty);
    if params.len() > MAX_PROVISIONER_PARAMETER_LEN {
        return vec![FieldError::too_long(path, MAX_PROVISIONER_PARAMETER_LEN)];
    }
    let mut errs = ErrorList::new();
    let mut total = 0usize;
    for (key, value) in params {
        if key.is_empty() {
            errs.push(FieldError::invalid(path, key.as_str(), "field can not be empty."));
        }
        total += key.len() + value.len();
    }
    if total > MAX_PROVISIONER_PARAMETER_SIZE {
        errs.push(FieldError::too_long(path, MAX_PROVISIONER_PARAMETER_SIZE));
    }
    if !allow_empty && params.is_empty() {
        errs.push(FieldError::required(
            path,
            "must contain at least one key/value pair",
        ));
    }
    errs
}

/// Core's `ValidateCSIDriverName`: required, at most 63 bytes, a DNS subdomain when
/// lowercased.
fn validate_csi_driver_name(name: &str, path: &Path) -> ErrorList {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = ErrorList::new();
    if name.len() > 63 {
        errs.push(FieldError::too_long(path, 63));
    }
    errs.extend(
        is_dns1123_subdomain(&name.to_lowercase())
            .into_iter()
            .map(|msg| FieldError::invalid(path, name, msg)),
    );
    errs
}

fn node_name_errors(name: &str, path: &Path) -> ErrorList {
    name_is_dns_subdomain(name, false)
        .into_iter()
        .map(|msg| FieldError::invalid(path, name, msg))
        .collect()
}

// StorageClass

/// Core's `ValidateTopologySelectorTerm` with the duplicate-term check of
/// `validateAllowedTopologies` (whose list of seen terms starts with one empty term per term,
/// as upstream's does).
fn validate_allowed_topologies(topologies: &[TopologySelectorTerm], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if topologies.is_empty() {
        return errs;
    }
    let mut seen: Vec<BTreeMap<&str, BTreeSet<&str>>> = vec![BTreeMap::new(); topologies.len()];
    for (i, term) in topologies.iter().enumerate() {
        let idx_path = path.index(i);
        let expressions_path = idx_path.child("matchLabelExpressions");
        let mut expressions: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (j, requirement) in list_of(&term.match_label_expressions).iter().enumerate() {
            let req_path = expressions_path.index(j);
            let values_path = req_path.child("values");
            if requirement.values.is_empty() {
                errs.push(FieldError::required(&values_path, ""));
            }
            let mut values = BTreeSet::new();
            for (k, value) in requirement.values.iter().enumerate() {
                if !values.insert(value.as_str()) {
                    errs.push(FieldError::duplicate(&values_path.index(k), value.as_str()));
                }
            }
            errs.extend(validate_label_name(&requirement.key, &req_path.child("key")));
            if expressions.contains_key(requirement.key.as_str()) {
                errs.push(FieldError::duplicate(
                    &req_path.child("key"),
                    requirement.key.as_str(),
                ));
            }
            expressions.insert(requirement.key.as_str(), values);
        }
        for previous in &seen {
            if *previous == expressions {
                errs.push(FieldError::duplicate(&expressions_path, ""));
            }
        }
        seen.push(expressions);
    }
    errs
}

fn validate_storage_class(class: &StorageClass) -> ErrorList {
    let mut errs = core_meta(&class.metadata, false, name_is_dns_subdomain);
    errs.extend(validate_provisioner(
        &class.provisioner,
        &Path::new("provisioner"),
    ));
    errs.extend(validate_parameters(
        &class.parameters,
        true,
        &Path::new("parameters"),
    ));
    let reclaim_policy = str_of(&class.reclaim_policy);
    if !reclaim_policy.is_empty() && !RECLAIM_POLICIES.contains(&reclaim_policy) {
        errs.push(FieldError::not_supported(
            &Path::new("reclaimPolicy"),
            reclaim_policy,
            RECLAIM_POLICIES,
        ));
    }
    match &class.volume_binding_mode {
        None => errs.push(FieldError::required(&Path::new("volumeBindingMode"), "")),
        Some(mode) if !BINDING_MODES.contains(&mode.as_str()) => errs.push(FieldError::not_supported(
            &Path::new("volumeBindingMode"),
            mode.as_str(),
            BINDING_MODES,
        )),
        Some(_) => {}
    }
    errs.extend(validate_allowed_topologies(
        list_of(&class.allowed_topologies),
        &Path::new("allowedTopologies"),
    ));
    errs
}

/// An absent map and an empty one are the same once stored (upstream omits empty maps).
fn drop_empty_params(params: &mut Option<BTreeMap<String, String>>) {
    if params.as_ref().is_some_and(BTreeMap::is_empty) {
        *params = None;
    }
}

impl KindStrategy for StorageClass {
    fn apply_defaults(&mut self) {
        if self.reclaim_policy.is_none() {
            self.reclaim_policy = Some("Delete".to_owned());
        }
        if self.volume_binding_mode.is_none() {
            self.volume_binding_mode = Some("Immediate".to_owned());
        }
        drop_empty_params(&mut self.parameters);
    }

    fn validate(&self) -> ErrorList {
        validate_storage_class(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_storage_class(self);
        errs.extend(core_meta_update(&self.metadata, &old.metadata));
        if self.parameters != old.parameters {
            errs.push(FieldError::forbidden(
                &Path::new("parameters"),
                "updates to parameters are forbidden.",
            ));
        }
        if self.provisioner != old.provisioner {
            errs.push(FieldError::forbidden(
                &Path::new("provisioner"),
                "updates to provisioner are forbidden.",
            ));
        }
        if str_of(&self.reclaim_policy) != str_of(&old.reclaim_policy) {
            errs.push(FieldError::forbidden(
                &Path::new("reclaimPolicy"),
                "updates to reclaimPolicy are forbidden.",
            ));
        }
        errs.extend(validate_immutable_field(
            &self.volume_binding_mode,
            &old.volume_binding_mode,
            &Path::new("volumeBindingMode"),
        ));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        for (i, term) in list_of(&self.allowed_topologies).iter().enumerate() {
            for (j, expression) in list_of(&term.match_label_expressions).iter().enumerate() {
                if let Some(msg) = deprecated_node_label(&expression.key) {
                    let path = Path::new("allowedTopologies")
                        .index(i)
                        .child("matchLabelExpressions")
                        .index(j)
                        .child("key");
                    warnings.push(format!("{path}: {msg}"));
                }
            }
        }
        warnings
    }
}

// CSIDriver

fn validate_token_requests(requests: &[TokenRequest], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut audiences = BTreeSet::new();
    for (i, request) in requests.iter().enumerate() {
        let path = path.index(i);
        if !audiences.insert(request.audience.as_str()) {
            errs.push(FieldError::duplicate(
                &path.child("audience"),
                request.audience.as_str(),
            ));
            continue;
        }
        let Some(seconds) = request.expiration_seconds else {
            continue;
        };
        if seconds < 600 {
            errs.push(FieldError::invalid(
                &path.child("expirationSeconds"),
                seconds,
                "may not specify a duration less than 10 minutes",
            ));
        }
        if seconds > 1 << 32 {
            errs.push(FieldError::invalid(
                &path.child("expirationSeconds"),
                seconds,
                "may not specify a duration larger than 2^32 seconds",
            ));
        }
    }
    errs
}

fn validate_csi_driver_spec(spec: &CSIDriverSpec) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    for (field, value) in [
        ("attachedRequired", spec.attach_required),
        ("podInfoOnMount", spec.pod_info_on_mount),
        ("storageCapacity", spec.storage_capacity),
    ] {
        if value.is_none() {
            errs.push(FieldError::required(&path.child(field), ""));
        }
    }
    if let Some(policy) = &spec.fs_group_policy
        && !FS_GROUP_POLICIES.contains(&policy.as_str())
    {
        errs.push(FieldError::not_supported(
            &path.child("fsGroupPolicy"),
            policy.as_str(),
            FS_GROUP_POLICIES,
        ));
    }
    errs.extend(validate_token_requests(
        list_of(&spec.token_requests),
        &path.child("tokenRequests"),
    ));
    for mode in list_of(&spec.volume_lifecycle_modes) {
        if !LIFECYCLE_MODES.contains(&mode.as_str()) {
            errs.push(FieldError::not_supported(
                &path.child("volumeLifecycleModes"),
                mode.as_str(),
                LIFECYCLE_MODES,
            ));
        }
    }
    if spec.se_linux_mount.is_none() {
        errs.push(FieldError::required(&path.child("seLinuxMount"), ""));
    }
    if let Some(period) = spec.node_allocatable_update_period_seconds.filter(|p| *p < 10) {
        errs.push(FieldError::invalid(
            &path.child("nodeAllocatableUpdatePeriodSeconds"),
            period,
            "must be greater than or equal to 10 seconds",
        ));
    }
    if let Some(in_secrets) = spec.service_account_token_in_secrets
        && list_of(&spec.token_requests).is_empty()
    {
        errs.push(FieldError::invalid(
            &path.child("serviceAccountTokenInSecrets"),
            in_secrets,
            "serviceAccountTokenInSecrets is set but no tokenRequests are specified",
        ));
    }
    errs
}

impl KindStrategy for CSIDriver {
    fn apply_defaults(&mut self) {
        let spec = &mut self.spec;
        for (field, value) in [
            (&mut spec.attach_required, true),
            (&mut spec.pod_info_on_mount, false),
            (&mut spec.storage_capacity, false),
            (&mut spec.requires_republish, false),
            (&mut spec.se_linux_mount, false),
        ] {
            if field.is_none() {
                *field = Some(value);
            }
        }
        if spec.fs_group_policy.is_none() {
            spec.fs_group_policy = Some("ReadWriteOnceWithFSType".to_owned());
        }
        if list_of(&spec.volume_lifecycle_modes).is_empty() {
            spec.volume_lifecycle_modes = Some(vec!["Persistent".to_owned()]);
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        bump_generation(&mut self.metadata, &old.metadata, differs(&self.spec, &old.spec));
    }

    fn validate(&self) -> ErrorList {
        let mut errs = core_meta(&self.metadata, false, name_is_dns_subdomain);
        errs.extend(validate_csi_driver_spec(&self.spec));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = core_meta_update(&self.metadata, &old.metadata);
        errs.extend(validate_csi_driver_spec(&self.spec));
        let path = Path::new("spec");
        errs.extend(validate_immutable_field(
            &self.spec.attach_required,
            &old.spec.attach_required,
            &path.child("attachedRequired"),
        ));
        errs.extend(validate_immutable_field(
            &self.spec.volume_lifecycle_modes,
            &old.spec.volume_lifecycle_modes,
            &path.child("volumeLifecycleModes"),
        ));
        errs
    }

    /// Upstream warns on an update only when the token requests changed; warnings here see
    /// only the new object, so the warning is repeated.
    fn warnings(&self) -> Vec<String> {
        if !list_of(&self.spec.token_requests).is_empty()
            && self.spec.service_account_token_in_secrets.is_none()
        {
            return vec![SERVICE_ACCOUNT_TOKEN_IN_SECRETS_WARNING.to_owned()];
        }
        Vec::new()
    }

    const ALLOW_UNCONDITIONAL_UPDATE: bool = false;
}

// CSINode

/// A driver as upstream's error renders the internal Go struct (no JSON tags), without its
/// allocatable count (mutable with MutableCSINodeAllocatableCount, on in 1.35).
fn csi_node_driver_value(driver: &CSINodeDriver) -> BadValue {
    BadValue::Plain(format!(
        "{{\"Name\":{},\"NodeID\":{},\"TopologyKeys\":{},\"Allocatable\":null}}",
        json_str(&driver.name),
        json_str(&driver.node_id),
        json_str_list(&driver.topology_keys),
    ))
}

fn validate_csi_node_driver(driver: &CSINodeDriver, names: &mut BTreeSet<String>, path: &Path) -> ErrorList {
    let mut errs = validate_csi_driver_name(&driver.name, &path.child("name"));
    let id_path = path.child("nodeID");
    if driver.node_id.is_empty() {
        errs.push(FieldError::required(&id_path, ""));
    }
    if driver.node_id.len() > CSI_NODE_ID_LONGER_MAX_LENGTH {
        errs.push(FieldError::invalid(
            &id_path,
            driver.node_id.as_str(),
            format!("must be {CSI_NODE_ID_LONGER_MAX_LENGTH} characters or less"),
        ));
    }
    if let Some(count) = driver.allocatable.as_ref().and_then(|a| a.count) {
        errs.extend(validate_nonnegative_field(
            i64::from(count),
            &path.child("allocatable").child("count"),
        ));
    }
    if !names.insert(driver.name.clone()) {
        errs.push(FieldError::duplicate(&path.child("name"), driver.name.as_str()));
    }
    let mut keys = BTreeSet::new();
    for key in list_of(&driver.topology_keys) {
        if key.is_empty() {
            errs.push(FieldError::required(path, ""));
        }
        if !keys.insert(key.as_str()) {
            errs.push(FieldError::duplicate(path, key.as_str()));
        }
        errs.extend(validate_qualified_name(key, path));
    }
    errs
}

fn validate_csi_node(node: &CSINode) -> ErrorList {
    let mut errs = core_meta(&node.metadata, false, name_is_dns_subdomain);
    let path = Path::new("spec").child("drivers");
    let mut names = BTreeSet::new();
    for (i, driver) in node.spec.drivers.iter().enumerate() {
        errs.extend(validate_csi_node_driver(driver, &mut names, &path.index(i)));
    }
    errs
}

impl KindStrategy for CSINode {
    fn validate(&self) -> ErrorList {
        validate_csi_node(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_csi_node(self);
        for old_driver in &old.spec.drivers {
            for new_driver in &self.spec.drivers {
                if old_driver.name != new_driver.name {
                    continue;
                }
                let strip = |d: &CSINodeDriver| CSINodeDriver {
                    allocatable: None,
                    ..d.clone()
                };
                if differs(&strip(new_driver), &strip(old_driver)) {
                    errs.push(FieldError::invalid(
                        &Path::new("spec").child("drivers"),
                        csi_node_driver_value(new_driver),
                        crate::validation::FIELD_IMMUTABLE_ERROR_MSG,
                    ));
                }
            }
        }
        errs
    }

    const ALLOW_UNCONDITIONAL_UPDATE: bool = false;
}

// CSIStorageCapacity

fn validate_csi_storage_capacity(
    capacity: &CSIStorageCapacity,
    allow_invalid_label_value: bool,
) -> ErrorList {
    let mut errs = core_meta(&capacity.metadata, true, name_is_dns_subdomain);
    errs.extend(validate_label_selector(
        capacity.node_topology.as_ref(),
        LabelSelectorValidationOptions {
            allow_invalid_label_value_in_selector: allow_invalid_label_value,
            ..Default::default()
        },
        &Path::new("nodeTopology"),
    ));
    errs.extend(
        name_is_dns_subdomain(&capacity.storage_class_name, false)
            .into_iter()
            .map(|msg| {
                FieldError::invalid(
                    &Path::new("storageClassName"),
                    capacity.storage_class_name.as_str(),
                    msg,
                )
            }),
    );
    if let Some(quantity) = &capacity.capacity {
        let path = Path::new("capacity");
        match parse_quantity_field(quantity, &path) {
            Ok(parsed) => errs.extend(validate_nonnegative_quantity(&parsed, &path)),
            Err(err) => errs.push(err),
        }
    }
    errs
}

impl KindStrategy for CSIStorageCapacity {
    fn apply_defaults(&mut self) {
        for quantity in [&mut self.capacity, &mut self.maximum_volume_size]
            .into_iter()
            .flatten()
        {
            canonicalize_quantity(quantity);
        }
    }

    fn validate(&self) -> ErrorList {
        validate_csi_storage_capacity(self, false)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let allow = label_selector_has_invalid_label_value(old.node_topology.as_ref());
        let mut errs = validate_csi_storage_capacity(self, allow);
        errs.extend(core_meta_update(&self.metadata, &old.metadata));
        if differs(&self.node_topology, &old.node_topology) {
            errs.push(FieldError::invalid(
                &Path::new("nodeTopology"),
                go_label_selector(self.node_topology.as_ref()),
                "field is immutable",
            ));
        }
        if self.storage_class_name != old.storage_class_name {
            errs.push(FieldError::invalid(
                &Path::new("storageClassName"),
                self.storage_class_name.as_str(),
                "field is immutable",
            ));
        }
        errs
    }

    fn warnings(&self) -> Vec<String> {
        node_selector_warnings(self.node_topology.as_ref(), &Path::new("nodeTopology"))
    }

    const ALLOW_UNCONDITIONAL_UPDATE: bool = false;
}

// VolumeAttachment

/// The spec as upstream's error renders the internal Go struct (no JSON tags). An inline
/// volume spec is shown as its v1 JSON, which differs from upstream's field names.
fn volume_attachment_spec_value(spec: &VolumeAttachmentSpec) -> BadValue {
    let pv_name = spec
        .source
        .persistent_volume_name
        .as_deref()
        .map_or_else(|| "null".to_owned(), json_str);
    let inline = spec
        .source
        .inline_volume_spec
        .as_ref()
        .and_then(|s| serde_json::to_string(s).ok())
        .unwrap_or_else(|| "null".to_owned());
    BadValue::Plain(format!(
        "{{\"Attacher\":{},\"Source\":{{\"PersistentVolumeName\":{pv_name},\"InlineVolumeSpec\":{inline}}},\"NodeName\":{}}}",
        json_str(&spec.attacher),
        json_str(&spec.node_name),
    ))
}

fn validate_volume_error(error: Option<&VolumeError>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(error) = error else {
        return errs;
    };
    if str_of(&error.message).len() > MAX_VOLUME_ERROR_MESSAGE_SIZE {
        // Upstream reports the metadata limit here.
        errs.push(FieldError::too_long(
            &path.child("message"),
            MAX_ATTACHED_VOLUME_METADATA_SIZE,
        ));
    }
    if let Some(code) = error.error_code.filter(|c| *c < 0) {
        errs.push(FieldError::invalid(
            &path.child("errorCode"),
            code,
            inclusive_range_error(0, i64::from(i32::MAX)),
        ));
    }
    errs
}

fn validate_volume_attachment(attachment: &VolumeAttachment) -> ErrorList {
    let mut errs = core_meta(&attachment.metadata, false, name_is_dns_subdomain);
    let spec_path = Path::new("spec");
    let spec = &attachment.spec;
    if spec.attacher.is_empty() {
        errs.push(FieldError::required(&spec_path.child("attacher"), ""));
    }
    let source_path = spec_path.child("source");
    let source = &spec.source;
    match (&source.inline_volume_spec, &source.persistent_volume_name) {
        (None, None) => errs.push(FieldError::required(
            &source_path,
            "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
        )),
        (Some(_), Some(_)) => errs.push(FieldError::forbidden(
            &source_path,
            "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
        )),
        (None, Some(name)) if name.is_empty() => errs.push(FieldError::required(
            &source_path.child("persistentVolumeName"),
            "must specify non empty persistentVolumeName",
        )),
        _ => {}
    }
    errs.extend(node_name_errors(&spec.node_name, &spec_path.child("nodeName")));
    let status_path = Path::new("status");
    if let Some(status) = &attachment.status {
        let size: usize = status
            .attachment_metadata
            .iter()
            .flatten()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if size > MAX_ATTACHED_VOLUME_METADATA_SIZE {
            errs.push(FieldError::too_long(
                &status_path.child("attachmentMetadata"),
                MAX_ATTACHED_VOLUME_METADATA_SIZE,
            ));
        }
        errs.extend(validate_volume_error(
            status.attach_error.as_ref(),
            &status_path.child("attachError"),
        ));
        errs.extend(validate_volume_error(
            status.detach_error.as_ref(),
            &status_path.child("detachError"),
        ));
    }
    errs
}

/// The v1-only checks (`ValidateVolumeAttachmentV1`).
fn validate_volume_attachment_v1(attachment: &VolumeAttachment) -> ErrorList {
    let mut errs = validate_csi_driver_name(&attachment.spec.attacher, &Path::new("spec.attacher"));
    if let Some(name) = &attachment.spec.source.persistent_volume_name {
        errs.extend(node_name_errors(
            name,
            &Path::new("spec.source.persistentVolumeName"),
        ));
    }
    errs
}

impl KindStrategy for VolumeAttachment {
    /// The status is a non-pointer struct upstream: always written (`attached: false`).
    fn apply_defaults(&mut self) {
        if let Some(inline) = &mut self.spec.source.inline_volume_spec {
            set_defaults_resource_list(&mut inline.capacity);
        }
        self.status.get_or_insert_with(VolumeAttachmentStatus::default);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(VolumeAttachmentStatus::default());
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec = old.spec.clone();
        reset_meta_for_status(&mut self.metadata, &old.metadata);
    }

    fn validate(&self) -> ErrorList {
        let mut errs = validate_volume_attachment(self);
        errs.extend(validate_volume_attachment_v1(self));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_volume_attachment(self);
        if differs(&self.spec, &old.spec) {
            errs.push(FieldError::invalid(
                &Path::new("spec"),
                volume_attachment_spec_value(&self.spec),
                "field is immutable",
            ));
        }
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        self.validate_update(old)
    }

    const ALLOW_UNCONDITIONAL_UPDATE: bool = false;
}

// VolumeAttributesClass

fn validate_volume_attributes_class(class: &VolumeAttributesClass) -> ErrorList {
    let mut errs = core_meta(&class.metadata, false, name_is_dns_subdomain);
    errs.extend(validate_provisioner(&class.driver_name, &Path::new("driverName")));
    errs.extend(validate_parameters(
        &class.parameters,
        false,
        &Path::new("parameters"),
    ));
    errs
}

impl KindStrategy for VolumeAttributesClass {
    fn apply_defaults(&mut self) {
        drop_empty_params(&mut self.parameters);
    }

    fn validate(&self) -> ErrorList {
        validate_volume_attributes_class(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = core_meta_update(&self.metadata, &old.metadata);
        if self.driver_name != old.driver_name {
            errs.push(FieldError::forbidden(
                &Path::new("driverName"),
                "updates to driverName are forbidden.",
            ));
        }
        if self.parameters != old.parameters {
            errs.push(FieldError::forbidden(
                &Path::new("parameters"),
                "updates to parameters are forbidden.",
            ));
        }
        errs.extend(validate_volume_attributes_class(self));
        errs
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::api_shared::testing::{check_create_cases, create, update, update_errors, warnings};
    use crate::strategy::UpdateTarget;

    const API: &str = "storage.k8s.io/v1";

    #[test]
    fn storage_class() {
        let out = create(json!({"apiVersion": API, "kind": "StorageClass", "metadata": {"name": "fast"}, "provisioner": "example.com/ssd"}))
            .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": API, "kind": "StorageClass", "metadata": {"name": "fast"},
                "provisioner": "example.com/ssd", "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate"
            })
        );
        check_create_cases(&[(
            json!({"apiVersion": API, "kind": "StorageClass", "metadata": {"name": "x"}, "provisioner": "",
            "reclaimPolicy": "Recycle", "volumeBindingMode": "Later",
            "allowedTopologies": [
                {"matchLabelExpressions": [{"key": "zone", "values": ["a", "a"]}]},
                {"matchLabelExpressions": [{"key": "zone", "values": ["a"]}]}
            ]}),
            vec![
                "provisioner: Required value",
                "reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\"",
                "volumeBindingMode: Unsupported value: \"Later\": supported values: \"Immediate\", \"WaitForFirstConsumer\"",
                "allowedTopologies[0].matchLabelExpressions[0].values[1]: Duplicate value: \"a\"",
                "allowedTopologies[1].matchLabelExpressions: Duplicate value: \"\"",
            ],
        )]);
        let mut old = out;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["provisioner"] = json!("other.io/x");
        new["parameters"] = json!({"a": "b"});
        new["volumeBindingMode"] = json!("WaitForFirstConsumer");
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            [
                "parameters: Forbidden: updates to parameters are forbidden.",
                "provisioner: Forbidden: updates to provisioner are forbidden.",
                "volumeBindingMode: Invalid value: \"WaitForFirstConsumer\": field is immutable",
            ]
        );
        let topology = json!({"apiVersion": API, "kind": "StorageClass", "metadata": {"name": "x"}, "provisioner": "p",
            "allowedTopologies": [{"matchLabelExpressions": [{"key": "failure-domain.beta.kubernetes.io/zone", "values": ["a"]}]}]});
        assert_eq!(
            warnings(&topology),
            [
                "allowedTopologies[0].matchLabelExpressions[0].key: deprecated since v1.17; use \"topology.kubernetes.io/zone\" instead"
            ]
        );
    }

    #[test]
    fn csi_driver() {
        let out = create(json!({"apiVersion": API, "kind": "CSIDriver", "metadata": {"name": "csi.example.com"}, "spec": {}}))
            .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": API, "kind": "CSIDriver", "metadata": {"name": "csi.example.com"},
                "spec": {
                    "attachRequired": true, "fsGroupPolicy": "ReadWriteOnceWithFSType", "podInfoOnMount": false,
                    "requiresRepublish": false, "seLinuxMount": false, "storageCapacity": false,
                    "volumeLifecycleModes": ["Persistent"]
                }
            })
        );
        check_create_cases(&[(
            json!({"apiVersion": API, "kind": "CSIDriver", "metadata": {"name": "d"}, "spec": {
                "fsGroupPolicy": "Sometimes", "volumeLifecycleModes": ["Forever"], "serviceAccountTokenInSecrets": true,
                "nodeAllocatableUpdatePeriodSeconds": 5}}),
            vec![
                "spec.fsGroupPolicy: Unsupported value: \"Sometimes\": supported values: \"File\", \"None\", \"ReadWriteOnceWithFSType\"",
                "spec.volumeLifecycleModes: Unsupported value: \"Forever\": supported values: \"Persistent\", \"Ephemeral\"",
                "spec.nodeAllocatableUpdatePeriodSeconds: Invalid value: 5: must be greater than or equal to 10 seconds",
                "spec.serviceAccountTokenInSecrets: Invalid value: true: serviceAccountTokenInSecrets is set but no tokenRequests are specified",
            ],
        )]);
        let mut old = out;
        old["metadata"]["resourceVersion"] = json!("1");
        old["metadata"]["generation"] = json!(1);
        let mut new = old.clone();
        new["spec"]["attachRequired"] = json!(false);
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            ["spec.attachedRequired: Invalid value: false: field is immutable"]
        );
        let mut new = old.clone();
        new["spec"]["tokenRequests"] = json!([{"audience": "a"}]);
        let updated = update(new, &old, UpdateTarget::Main).unwrap();
        assert_eq!(updated["metadata"]["generation"], json!(2));
        assert_eq!(warnings(&updated).len(), 1);
    }

    #[test]
    fn csi_node_and_capacity() {
        check_create_cases(&[(
            json!({"apiVersion": API, "kind": "CSINode", "metadata": {"name": "n"}, "spec": {"drivers": [
                {"name": "d.io", "nodeID": "", "topologyKeys": ["zone", "zone"]},
                {"name": "d.io", "nodeID": "x", "allocatable": {"count": -1}}
            ]}}),
            vec![
                "spec.drivers[0].nodeID: Required value",
                "spec.drivers[0]: Duplicate value: \"zone\"",
                "spec.drivers[1].allocatable.count: Invalid value: -1: must be greater than or equal to 0",
                "spec.drivers[1].name: Duplicate value: \"d.io\"",
            ],
        )]);
        let old = json!({"apiVersion": API, "kind": "CSINode", "metadata": {"name": "n", "resourceVersion": "1"},
            "spec": {"drivers": [{"name": "d.io", "nodeID": "a"}]}});
        let mut new = old.clone();
        new["spec"]["drivers"][0]["nodeID"] = json!("b");
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            [
                "spec.drivers: Invalid value: {\"Name\":\"d.io\",\"NodeID\":\"b\",\"TopologyKeys\":null,\"Allocatable\":null}: field is immutable"
            ]
        );
        let capacity = json!({"apiVersion": API, "kind": "CSIStorageCapacity", "metadata": {"name": "c", "namespace": "ns"},
            "storageClassName": "fast", "capacity": "1000Mi", "nodeTopology": {"matchLabels": {"zone": "a"}}});
        let out = create(capacity).unwrap();
        assert_eq!(out["capacity"], json!("1000Mi"));
        let mut old = out;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["nodeTopology"] =
            json!({"matchLabels": {"zone": "b"}, "matchExpressions": [{"key": "x", "operator": "Exists"}]});
        new["storageClassName"] = json!("slow");
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            [
                "nodeTopology: Invalid value: {\"matchLabels\":{\"zone\":\"b\"},\"matchExpressions\":[{\"key\":\"x\",\"operator\":\"Exists\"}]}: field is immutable",
                "storageClassName: Invalid value: \"slow\": field is immutable",
            ]
        );
        check_create_cases(&[(
            json!({"apiVersion": API, "kind": "CSIStorageCapacity", "metadata": {"name": "c", "namespace": "ns"},
                "storageClassName": "", "capacity": "-1"}),
            vec![
                "storageClassName: Invalid value: \"\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "capacity: Invalid value: \"-1\": must be greater than or equal to 0",
            ],
        )]);
    }

    #[test]
    fn volume_attachment() {
        let va = json!({"apiVersion": API, "kind": "VolumeAttachment", "metadata": {"name": "va"},
            "spec": {"attacher": "csi.example.com", "nodeName": "node-1", "source": {"persistentVolumeName": "pv-1"}},
            "status": {"attached": true}});
        let out = create(va).unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": API, "kind": "VolumeAttachment", "metadata": {"name": "va"},
                "spec": {"attacher": "csi.example.com", "nodeName": "node-1", "source": {"persistentVolumeName": "pv-1"}},
                "status": {"attached": false}
            })
        );
        let mut old = out;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["status"]["attached"] = json!(true);
        new["spec"]["nodeName"] = json!("node-2");
        let main = update(new.clone(), &old, UpdateTarget::Main);
        assert!(main.is_err());
        let status = update(new, &old, UpdateTarget::Status).unwrap();
        assert_eq!(status["status"]["attached"], json!(true));
        assert_eq!(status["spec"]["nodeName"], json!("node-1"));
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!("node-2");
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            [
                "spec: Invalid value: {\"Attacher\":\"csi.example.com\",\"Source\":{\"PersistentVolumeName\":\"pv-1\",\"InlineVolumeSpec\":null},\"NodeName\":\"node-2\"}: field is immutable"
            ]
        );
        check_create_cases(&[(
            json!({"apiVersion": API, "kind": "VolumeAttachment", "metadata": {"name": "va"},
                "spec": {"attacher": "", "nodeName": "", "source": {}}}),
            vec![
                "spec.attacher: Required value",
                "spec.source: Required value: must specify exactly one of inlineVolumeSpec and persistentVolumeName",
                "spec.nodeName: Invalid value: \"\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "spec.attacher: Required value",
            ],
        )]);
    }

    #[test]
    fn volume_attributes_class() {
        check_create_cases(&[(
            json!({"apiVersion": API, "kind": "VolumeAttributesClass", "metadata": {"name": "gold"}, "driverName": "Bad Driver"}),
            vec![
                "driverName: Invalid value: \"bad driver\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
                "parameters: Required value: must contain at least one key/value pair",
            ],
        )]);
    }
}
