//! The strategies of PersistentVolume and PersistentVolumeClaim.
//!
//! Ports `SetDefaults_PersistentVolume*` and the volume-source defaults of
//! zz_generated.defaults.go, pkg/registry/core/{persistentvolume,persistentvolumeclaim}/
//! strategy.go with pkg/api/{persistentvolume,persistentvolumeclaim} (status reset, data-source
//! normalization, warnings), pkg/volume/validation (mount-option annotation), and
//! `ValidatePersistentVolume*`, `ValidatePersistentVolumeClaim*` of
//! pkg/apis/core/validation/validation.go, including the volume sources a PV may use and the
//! node affinity of local volumes.
//!
//! Upstream's immutability errors end in a `go-cmp` diff of the old and new values; the diff
//! here lists the changed fields as JSON (`- field: old`, `+ field: new`) instead.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    NodeSelector, NodeSelectorRequirement, PersistentVolume, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimStatus, PersistentVolumeSpec, PersistentVolumeStatus,
    SecretReference, TypedLocalObjectReference, TypedObjectReference, VolumeNodeAffinity,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value;

use super::core_shared::{json_str, json_str_list, list_of, meta_path, parse_resource_list, str_of};
use super::quota::default_resource_list;
use crate::field::{BadValue, ErrorList, FieldError, Path, json_value};
use crate::strategy::KindStrategy;
use crate::validation::{
    FIELD_IMMUTABLE_ERROR_MSG, LabelSelectorValidationOptions, ParsedQuantity, inclusive_range_error,
    is_dns1123_subdomain, is_native_resource, is_qualified_name, is_valid_label_value, name_errors,
    name_is_dns_subdomain, parse_quantity, validate_basic_resource, validate_dns1123_label,
    validate_dns1123_subdomain, validate_label_name, validate_label_selector, validate_namespace_name,
    validate_object_meta, validate_object_meta_update, validate_positive_quantity_value,
    validate_resource_quantity_value,
};

const PHASE_PENDING: &str = "Pending";
const PHASE_BOUND: &str = "Bound";
const FILESYSTEM: &str = "Filesystem";
const RECYCLE: &str = "Recycle";
const STORAGE: &str = "storage";
const SUPPORTED_ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const SUPPORTED_RECLAIM_POLICIES: &[&str] = &["Delete", RECYCLE, "Retain"];
const SUPPORTED_VOLUME_MODES: &[&str] = &["Block", FILESYSTEM];
const SUPPORTED_HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];
const SUPPORTED_RESIZE_STATUSES: &[&str] = &[
    "ControllerResizeInProgress",
    "ControllerResizeInfeasible",
    "NodeResizeInProgress",
    "NodeResizeInfeasible",
    "NodeResizePending",
];
const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";
const MOUNT_OPTIONS_ANNOTATION: &str = "volume.beta.kubernetes.io/mount-options";
const PD_PARTITION_ERROR_MSG: &str = "must be between 0 and 255, inclusive";
const ONE_VOLUME_TYPE: &str = "may not specify more than 1 volume type";
/// Beta node labels and the GA labels a PV's node affinity may move to.
const BETA_TO_GA_LABELS: &[(&str, &str)] = &[
    (
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/zone",
    ),
    (
        "failure-domain.beta.kubernetes.io/region",
        "topology.kubernetes.io/region",
    ),
    ("beta.kubernetes.io/os", "kubernetes.io/os"),
    ("beta.kubernetes.io/arch", "kubernetes.io/arch"),
    (
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
    ),
];
const DEPRECATED_NODE_LABELS: &[(&str, &str)] = &[
    (
        "beta.kubernetes.io/arch",
        "deprecated since v1.14; use \"kubernetes.io/arch\" instead",
    ),
    (
        "beta.kubernetes.io/os",
        "deprecated since v1.14; use \"kubernetes.io/os\" instead",
    ),
    (
        "failure-domain.beta.kubernetes.io/region",
        "deprecated since v1.17; use \"topology.kubernetes.io/region\" instead",
    ),
    (
        "failure-domain.beta.kubernetes.io/zone",
        "deprecated since v1.17; use \"topology.kubernetes.io/zone\" instead",
    ),
    (
        "beta.kubernetes.io/instance-type",
        "deprecated since v1.17; use \"node.kubernetes.io/instance-type\" instead",
    ),
    ("app.kubernetes.io/created-by", "deprecated since v1.9"),
    (
        "scheduler.alpha.kubernetes.io/preferAvoidPods",
        "deprecated since v1.22; use Taints and Tolerations instead",
    ),
    (
        "node-role.kubernetes.io/master",
        "use \"node-role.kubernetes.io/control-plane\" instead",
    ),
];

fn annotation<'a>(
    meta: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<&'a str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// `apiequality.Semantic.DeepEqual` on JSON: absent, empty lists and empty maps are alike.
fn semantic(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, semantic(v)))
                .filter(|(_, v)| !matches!(v, Value::Array(a) if a.is_empty()) && !v.is_null())
                .filter(|(_, v)| !matches!(v, Value::Object(o) if o.is_empty()))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(semantic).collect()),
        other => other,
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    semantic(serde_json::to_value(value).unwrap_or(Value::Null))
}

/// The changed fields of two JSON objects, one `-`/`+` pair per field.
fn diff(old: &Value, new: &Value) -> String {
    let empty = serde_json::Map::new();
    let (old, new) = (
        old.as_object().unwrap_or(&empty),
        new.as_object().unwrap_or(&empty),
    );
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = String::new();
    for key in keys {
        let (a, b) = (old.get(key), new.get(key));
        if a == b {
            continue;
        }
        if let Some(a) = a {
            out.push_str(&format!("- {key}: {a}\n"));
        }
        if let Some(b) = b {
            out.push_str(&format!("+ {key}: {b}\n"));
        }
    }
    out
}

fn validate_access_modes(modes: &[String], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let (mut rwop, mut other) = (false, false);
    for mode in modes {
        if !SUPPORTED_ACCESS_MODES.contains(&mode.as_str()) {
            errs.push(FieldError::not_supported(
                path,
                mode.as_str(),
                SUPPORTED_ACCESS_MODES,
            ));
        }
        if mode == "ReadWriteOncePod" {
            rwop = true;
        } else if SUPPORTED_ACCESS_MODES.contains(&mode.as_str()) {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(
            path,
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    errs
}

fn validate_class_name(value: &str, path: &Path) -> ErrorList {
    name_errors(path, value, name_is_dns_subdomain(value, false))
}

// Node selectors (the node affinity of a PV).

fn validate_node_selector_requirement(
    req: &NodeSelectorRequirement,
    allow_invalid_values: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = list_of(&req.values);
    match req.operator.as_str() {
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
        "Gt" | "Lt" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        operator => errs.push(FieldError::invalid(
            &path.child("operator"),
            operator,
            "not a valid selector operator",
        )),
    }
    errs.extend(validate_label_name(&req.key, &path.child("key")));
    if !allow_invalid_values {
        for (i, value) in values.iter().enumerate() {
            for msg in is_valid_label_value(value) {
                errs.push(FieldError::invalid(
                    &path.child("values").index(i),
                    value.as_str(),
                    msg,
                ));
            }
        }
    }
    errs
}

fn validate_node_field_selector_requirement(req: &NodeSelectorRequirement, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    match req.operator.as_str() {
        "In" | "NotIn" => {
            if list_of(&req.values).len() != 1 {
                errs.push(FieldError::required(
                    &path.child("values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        }
        operator => errs.push(FieldError::invalid(
            &path.child("operator"),
            operator,
            "not a valid selector operator",
        )),
    }
    if req.key == "metadata.name" {
        for (i, value) in list_of(&req.values).iter().enumerate() {
            errs.extend(name_errors(
                &path.child("values").index(i),
                value,
                name_is_dns_subdomain(value, false),
            ));
        }
    } else {
        errs.push(FieldError::invalid(
            &path.child("key"),
            req.key.as_str(),
            "not a valid field selector key",
        ));
    }
    errs
}

/// Upstream's `ValidateNodeSelector`.
fn validate_node_selector(selector: &NodeSelector, allow_invalid_values: bool, path: &Path) -> ErrorList {
    let terms_path = path.child("nodeSelectorTerms");
    if selector.node_selector_terms.is_empty() {
        return vec![FieldError::required(
            &terms_path,
            "must have at least one node selector term",
        )];
    }
    let mut errs = ErrorList::new();
    for (i, term) in selector.node_selector_terms.iter().enumerate() {
        let term_path = terms_path.index(i);
        for (j, req) in list_of(&term.match_expressions).iter().enumerate() {
            errs.extend(validate_node_selector_requirement(
                req,
                allow_invalid_values,
                &term_path.child("matchExpressions").index(j),
            ));
        }
        for (j, req) in list_of(&term.match_fields).iter().enumerate() {
            errs.extend(validate_node_field_selector_requirement(
                req,
                &term_path.child("matchFields").index(j),
            ));
        }
    }
    errs
}

fn has_invalid_label_value(affinity: Option<&VolumeNodeAffinity>) -> bool {
    affinity
        .and_then(|a| a.required.as_ref())
        .into_iter()
        .flat_map(|r| r.node_selector_terms.iter())
        .flat_map(|t| list_of(&t.match_expressions))
        .flat_map(|e| list_of(&e.values))
        .any(|v| !is_valid_label_value(v).is_empty())
}

/// A requirement as Go's JSON encoder writes the internal type.
fn requirement_json(req: &NodeSelectorRequirement) -> String {
    format!(
        "{{\"Key\":{},\"Operator\":{},\"Values\":{}}}",
        json_str(&req.key),
        json_str(&req.operator),
        json_str_list(&req.values)
    )
}

fn requirements_json(reqs: &Option<Vec<NodeSelectorRequirement>>) -> String {
    match reqs {
        None => "null".to_owned(),
        Some(reqs) => format!(
            "[{}]",
            reqs.iter().map(requirement_json).collect::<Vec<_>>().join(",")
        ),
    }
}

/// A volume node affinity as Go's JSON encoder writes the internal type.
fn node_affinity_json(affinity: Option<&VolumeNodeAffinity>) -> String {
    let Some(affinity) = affinity else {
        return "null".to_owned();
    };
    let required = affinity.required.as_ref().map_or_else(
        || "null".to_owned(),
        |r| {
            let terms: Vec<String> = r
                .node_selector_terms
                .iter()
                .map(|t| {
                    format!(
                        "{{\"MatchExpressions\":{},\"MatchFields\":{}}}",
                        requirements_json(&t.match_expressions),
                        requirements_json(&t.match_fields)
                    )
                })
                .collect();
            format!("{{\"NodeSelectorTerms\":[{}]}}", terms.join(","))
        },
    );
    format!("{{\"Required\":{required}}}")
}

/// The node affinity with beta node labels replaced by the GA labels the new object uses in the
/// same place (upstream's masked equality).
fn affinity_equal_modulo_ga(new: Option<&VolumeNodeAffinity>, old: Option<&VolumeNodeAffinity>) -> bool {
    let (Some(new), Some(old)) = (new, old) else {
        return to_json(&new) == to_json(&old);
    };
    let mut masked = old.clone();
    if let (Some(old_sel), Some(new_sel)) = (masked.required.as_mut(), new.required.as_ref()) {
        for (old_term, new_term) in old_sel
            .node_selector_terms
            .iter_mut()
            .zip(&new_sel.node_selector_terms)
        {
            for (old_req, new_req) in old_term
                .match_expressions
                .iter_mut()
                .flatten()
                .zip(list_of(&new_term.match_expressions))
            {
                let moved = BETA_TO_GA_LABELS
                    .iter()
                    .any(|(beta, ga)| old_req.key == *beta && new_req.key == *ga);
                if moved {
                    old_req.key.clone_from(&new_req.key);
                }
            }
        }
    }
    to_json(&masked) == to_json(new)
}

// Volume sources of a PV.

fn validate_path_no_backsteps(target: &str, path: &Path) -> ErrorList {
    if target.replace('\\', "/").split('/').any(|part| part == "..") {
        return vec![FieldError::invalid(path, target, "must not contain '..'")];
    }
    Vec::new()
}

fn validate_pv_secret_reference(secret: &SecretReference, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = str_of(&secret.name);
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        errs.extend(validate_dns1123_subdomain(name, &path.child("name")));
    }
    let namespace = str_of(&secret.namespace);
    if namespace.is_empty() {
        errs.push(FieldError::required(&path.child("namespace"), ""));
    } else {
        errs.extend(validate_dns1123_label(namespace, &path.child("namespace")));
    }
    errs
}

fn validate_csi_driver_name(driver: &str, path: &Path) -> ErrorList {
    if driver.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = ErrorList::new();
    if driver.len() > 63 {
        errs.push(FieldError::too_long(path, 63));
    }
    for msg in is_dns1123_subdomain(&driver.to_lowercase()) {
        errs.push(FieldError::invalid(path, driver, msg));
    }
    errs
}

fn is_iqn(value: &str) -> bool {
    // `iqn\.\d{4}-\d{2}\.([[:alnum:]-.]+)(:[^,;*&$|\s]+)$`, unanchored at the start.
    let bytes = value.as_bytes();
    (0..bytes.len()).any(|start| {
        let rest = &value[start..];
        let Some(rest) = rest.strip_prefix("iqn.") else {
            return false;
        };
        let b = rest.as_bytes();
        if b.len() < 8
            || !b[..4].iter().all(u8::is_ascii_digit)
            || b[4] != b'-'
            || !b[5..7].iter().all(u8::is_ascii_digit)
            || b[7] != b'.'
        {
            return false;
        }
        let tail = &rest[8..];
        // The naming authority, then the last `:` whose suffix has no forbidden characters.
        tail.char_indices().filter(|(_, c)| *c == ':').any(|(i, _)| {
            let (authority, suffix) = (&tail[..i], &tail[i + 1..]);
            !authority.is_empty()
                && authority
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
                && !suffix.is_empty()
                && suffix
                    .chars()
                    .all(|c| !matches!(c, ',' | ';' | '*' | '&' | '$' | '|') && !c.is_whitespace())
        })
    })
}

fn is_prefixed_alnum(value: &str, prefix: &str, len: usize) -> bool {
    // `^<prefix>.[[:alnum:]]{len}$`: any character after the prefix, then `len` alphanumerics.
    value.strip_prefix(prefix).is_some_and(|rest| {
        let mut chars = rest.chars();
        chars.next().is_some() && {
            let tail: Vec<char> = chars.collect();
            tail.len() == len && tail.iter().all(char::is_ascii_alphanumeric)
        }
    })
}

fn iscsi_name_ok(value: &str) -> bool {
    if value.starts_with("iqn") {
        is_iqn(value)
    } else if value.starts_with("eui") {
        is_prefixed_alnum(value, "eui", 16)
    } else if value.starts_with("naa") {
        is_prefixed_alnum(value, "naa", 32)
    } else {
        false
    }
}

#[allow(clippy::too_many_lines)]
fn validate_pv_sources(
    spec: &PersistentVolumeSpec,
    pv_name: &str,
    path: &Path,
    node_affinity_set: bool,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut count = 0;
    let mut one = |present: bool, name: &str, errs: &mut ErrorList| -> bool {
        if !present {
            return false;
        }
        if count > 0 {
            errs.push(FieldError::forbidden(&path.child(name), ONE_VOLUME_TYPE));
            return false;
        }
        count += 1;
        true
    };
    if let Some(host_path) = &spec.host_path
        && one(true, "hostPath", &mut errs)
    {
        let p = path.child("hostPath");
        if host_path.path.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        } else {
            errs.extend(validate_path_no_backsteps(&host_path.path, &p.child("path")));
            if let Some(kind) = &host_path.type_
                && !SUPPORTED_HOST_PATH_TYPES.contains(&kind.as_str())
            {
                errs.push(FieldError::not_supported(
                    &p.child("type"),
                    kind.as_str(),
                    SUPPORTED_HOST_PATH_TYPES,
                ));
            }
        }
    }
    if let Some(pd) = &spec.gce_persistent_disk
        && one(true, "gcePersistentDisk", &mut errs)
    {
        // Upstream validates it under `persistentDisk`.
        let p = path.child("persistentDisk");
        if pd.pd_name.is_empty() {
            errs.push(FieldError::required(&p.child("pdName"), ""));
        }
        let partition = pd.partition.unwrap_or_default();
        if !(0..=255).contains(&partition) {
            errs.push(FieldError::invalid(
                &p.child("partition"),
                partition,
                PD_PARTITION_ERROR_MSG,
            ));
        }
    }
    if let Some(ebs) = &spec.aws_elastic_block_store
        && one(true, "awsElasticBlockStore", &mut errs)
    {
        let p = path.child("awsElasticBlockStore");
        if ebs.volume_id.is_empty() {
            errs.push(FieldError::required(&p.child("volumeID"), ""));
        }
        let partition = ebs.partition.unwrap_or_default();
        if !(0..=255).contains(&partition) {
            errs.push(FieldError::invalid(
                &p.child("partition"),
                partition,
                PD_PARTITION_ERROR_MSG,
            ));
        }
    }
    if let Some(gluster) = &spec.glusterfs
        && one(true, "glusterfs", &mut errs)
    {
        let p = path.child("glusterfs");
        if gluster.endpoints.is_empty() {
            errs.push(FieldError::required(&p.child("endpoints"), ""));
        }
        if gluster.path.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        }
        if let Some(ns) = &gluster.endpoints_namespace {
            if ns.is_empty() {
                errs.push(FieldError::invalid(
                    &p.child("endpointsNamespace"),
                    "",
                    "if the endpointnamespace is set, it must be a valid namespace name",
                ));
            } else {
                errs.extend(name_errors(
                    &p.child("endpointsNamespace"),
                    ns,
                    validate_namespace_name(ns, false),
                ));
            }
        }
    }
    if let Some(flocker) = &spec.flocker
        && one(true, "flocker", &mut errs)
    {
        let p = path.child("flocker");
        let (name, uuid) = (str_of(&flocker.dataset_name), str_of(&flocker.dataset_uuid));
        if name.is_empty() && uuid.is_empty() {
            errs.push(FieldError::required(
                &p,
                "one of datasetName and datasetUUID is required",
            ));
        }
        if !name.is_empty() && !uuid.is_empty() {
            errs.push(FieldError::invalid(
                &p,
                "resource",
                "datasetName and datasetUUID can not be specified simultaneously",
            ));
        }
        if name.contains('/') {
            errs.push(FieldError::invalid(
                &p.child("datasetName"),
                name,
                "must not contain '/'",
            ));
        }
    }
    if let Some(nfs) = &spec.nfs
        && one(true, "nfs", &mut errs)
    {
        let p = path.child("nfs");
        if nfs.server.is_empty() {
            errs.push(FieldError::required(&p.child("server"), ""));
        }
        if nfs.path.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        }
        if !nfs.path.starts_with('/') {
            errs.push(FieldError::invalid(
                &p.child("path"),
                nfs.path.as_str(),
                "must be an absolute path",
            ));
        }
    }
    if let Some(rbd) = &spec.rbd
        && one(true, "rbd", &mut errs)
    {
        let p = path.child("rbd");
        if rbd.monitors.is_empty() {
            errs.push(FieldError::required(&p.child("monitors"), ""));
        }
        if rbd.image.is_empty() {
            errs.push(FieldError::required(&p.child("image"), ""));
        }
    }
    if let Some(quobyte) = &spec.quobyte
        && one(true, "quobyte", &mut errs)
    {
        let p = path.child("quobyte");
        let pairs_msg = "must be a host:port pair or multiple pairs separated by commas";
        if quobyte.registry.is_empty() {
            errs.push(FieldError::required(&p.child("registry"), pairs_msg));
        } else if str_of(&quobyte.tenant).len() >= 65 {
            errs.push(FieldError::required(
                &p.child("tenant"),
                "must be a UUID and may not exceed a length of 64 characters",
            ));
        } else {
            for pair in quobyte.registry.split(',') {
                if !is_host_port(pair) {
                    errs.push(FieldError::invalid(
                        &p.child("registry"),
                        quobyte.registry.as_str(),
                        pairs_msg,
                    ));
                }
            }
        }
        if quobyte.volume.is_empty() {
            errs.push(FieldError::required(&p.child("volume"), ""));
        }
    }
    if let Some(cephfs) = &spec.cephfs {
        // Upstream forbids under `cephFS` and validates under `cephfs`.
        if one(true, "cephFS", &mut errs) && cephfs.monitors.is_empty() {
            errs.push(FieldError::required(&path.child("cephfs").child("monitors"), ""));
        }
    }
    if let Some(iscsi) = &spec.iscsi
        && one(true, "iscsi", &mut errs)
    {
        let p = path.child("iscsi");
        if iscsi.target_portal.is_empty() {
            errs.push(FieldError::required(&p.child("targetPortal"), ""));
        }
        if iscsi.initiator_name.is_some() && pv_name.len() + 1 + iscsi.target_portal.len() > 64 {
            errs.push(FieldError::invalid(
                    &p.child("targetportal"),
                    iscsi.target_portal.as_str(),
                    "Total length of <volume name>:<iscsi.targetPortal> must be under 64 characters if iscsi.initiatorName is specified.",
                ));
        }
        if iscsi.iqn.is_empty() {
            errs.push(FieldError::required(&p.child("iqn"), ""));
        } else if !iscsi_name_ok(&iscsi.iqn) {
            errs.push(FieldError::invalid(
                &p.child("iqn"),
                iscsi.iqn.as_str(),
                "must be valid format",
            ));
        }
        if !(0..=255).contains(&iscsi.lun) {
            errs.push(FieldError::invalid(
                &p.child("lun"),
                iscsi.lun,
                inclusive_range_error(0, 255),
            ));
        }
        let chap = iscsi.chap_auth_discovery.unwrap_or(false) || iscsi.chap_auth_session.unwrap_or(false);
        if chap && iscsi.secret_ref.is_none() {
            errs.push(FieldError::required(&p.child("secretRef"), ""));
        }
        if let Some(secret) = &iscsi.secret_ref
            && str_of(&secret.name).is_empty()
        {
            errs.push(FieldError::required(&p.child("secretRef").child("name"), ""));
        }
        if let Some(initiator) = &iscsi.initiator_name {
            let prefixed = ["iqn", "eui", "naa"].iter().any(|pre| initiator.starts_with(pre));
            if !prefixed || !iscsi_name_ok(initiator) {
                errs.push(FieldError::invalid(
                    &p.child("initiatorname"),
                    initiator.as_str(),
                    "must be valid format",
                ));
            }
        }
    }
    if let Some(cinder) = &spec.cinder
        && one(true, "cinder", &mut errs)
    {
        let p = path.child("cinder");
        if cinder.volume_id.is_empty() {
            errs.push(FieldError::required(&p.child("volumeID"), ""));
        }
        if let Some(secret) = &cinder.secret_ref {
            if str_of(&secret.name).is_empty() {
                errs.push(FieldError::required(&p.child("secretRef").child("name"), ""));
            }
            if str_of(&secret.namespace).is_empty() {
                errs.push(FieldError::required(&p.child("secretRef").child("namespace"), ""));
            }
        }
    }
    if let Some(fc) = &spec.fc
        && one(true, "fc", &mut errs)
    {
        let p = path.child("fc");
        let (wwns, wwids) = (list_of(&fc.target_wwns), list_of(&fc.wwids));
        if wwns.is_empty() && wwids.is_empty() {
            errs.push(FieldError::required(
                &p.child("targetWWNs"),
                "must specify either targetWWNs or wwids, but not both",
            ));
        }
        if !wwns.is_empty() && !wwids.is_empty() {
            errs.push(FieldError::invalid(
                &p.child("targetWWNs"),
                json_value(&wwns),
                "targetWWNs and wwids can not be specified simultaneously",
            ));
        }
        if !wwns.is_empty() {
            match fc.lun {
                None => errs.push(FieldError::required(
                    &p.child("lun"),
                    "lun is required if targetWWNs is specified",
                )),
                Some(lun) if !(0..=255).contains(&lun) => {
                    errs.push(FieldError::invalid(
                        &p.child("lun"),
                        lun,
                        inclusive_range_error(0, 255),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    if let Some(flex) = &spec.flex_volume {
        // Upstream counts a flex volume without checking for an earlier one.
        count += 1;
        let p = path.child("flexVolume");
        if flex.driver.is_empty() {
            errs.push(FieldError::required(&p.child("driver"), ""));
        }
        for key in flex.options.iter().flatten().map(|(k, _)| k) {
            let namespace = key.split_once('/').map_or(key.as_str(), |(ns, _)| ns);
            let normalized = format!(".{}", namespace.to_lowercase());
            if normalized.ends_with(".kubernetes.io") || normalized.ends_with(".k8s.io") {
                errs.push(FieldError::invalid(
                    &p.child("options").key(key),
                    key.as_str(),
                    "kubernetes.io and k8s.io namespaces are reserved",
                ));
            }
        }
    }
    let mut one = |present: bool, name: &str, errs: &mut ErrorList| -> bool {
        if !present {
            return false;
        }
        if count > 0 {
            errs.push(FieldError::forbidden(&path.child(name), ONE_VOLUME_TYPE));
            return false;
        }
        count += 1;
        true
    };
    if let Some(azure) = &spec.azure_file
        && one(true, "azureFile", &mut errs)
    {
        let p = path.child("azureFile");
        if azure.secret_name.is_empty() {
            errs.push(FieldError::required(&p.child("secretName"), ""));
        }
        if azure.share_name.is_empty() {
            errs.push(FieldError::required(&p.child("shareName"), ""));
        }
        if azure.secret_namespace.as_deref() == Some("") {
            errs.push(FieldError::required(&p.child("secretNamespace"), ""));
        }
    }
    if let Some(vsphere) = &spec.vsphere_volume
        && one(true, "vsphereVolume", &mut errs)
        && vsphere.volume_path.is_empty()
    {
        errs.push(FieldError::required(
            &path.child("vsphereVolume").child("volumePath"),
            "",
        ));
    }
    if let Some(photon) = &spec.photon_persistent_disk
        && one(true, "photonPersistentDisk", &mut errs)
        && photon.pd_id.is_empty()
    {
        errs.push(FieldError::required(
            &path.child("photonPersistentDisk").child("pdID"),
            "",
        ));
    }
    if let Some(portworx) = &spec.portworx_volume
        && one(true, "portworxVolume", &mut errs)
        && portworx.volume_id.is_empty()
    {
        errs.push(FieldError::required(
            &path.child("portworxVolume").child("volumeID"),
            "",
        ));
    }
    if let Some(azure) = &spec.azure_disk
        && one(true, "azureDisk", &mut errs)
    {
        let p = path.child("azureDisk");
        if azure.disk_name.is_empty() {
            errs.push(FieldError::required(&p.child("diskName"), ""));
        }
        if azure.disk_uri.is_empty() {
            errs.push(FieldError::required(&p.child("diskURI"), ""));
        }
        if let Some(mode) = &azure.caching_mode {
            const MODES: &[&str] = &["None", "ReadOnly", "ReadWrite"];
            if !MODES.contains(&mode.as_str()) {
                errs.push(FieldError::not_supported(
                    &p.child("cachingMode"),
                    mode.as_str(),
                    MODES,
                ));
            }
        }
        if let Some(kind) = &azure.kind {
            const KINDS: &[&str] = &["Dedicated", "Managed", "Shared"];
            if !KINDS.contains(&kind.as_str()) {
                errs.push(FieldError::not_supported(&p.child("kind"), kind.as_str(), KINDS));
            }
            if kind == "Managed" && !azure.disk_uri.starts_with("/subscriptions/") {
                errs.push(FieldError::not_supported(
                        &p.child("diskURI"),
                        azure.disk_uri.as_str(),
                        &["/subscriptions/{sub-id}/resourcegroups/{group-name}/providers/microsoft.compute/disks/{disk-id}"],
                    ));
            }
            if kind != "Managed" && !azure.disk_uri.starts_with("https://") {
                errs.push(FieldError::not_supported(
                    &p.child("diskURI"),
                    azure.disk_uri.as_str(),
                    &["https://{account-name}.blob.core.windows.net/{container-name}/{disk-name}.vhd"],
                ));
            }
        }
    }
    if let Some(scale_io) = &spec.scale_io
        && one(true, "scaleIO", &mut errs)
    {
        let p = path.child("scaleIO");
        if scale_io.gateway.is_empty() {
            errs.push(FieldError::required(&p.child("gateway"), ""));
        }
        if scale_io.system.is_empty() {
            errs.push(FieldError::required(&p.child("system"), ""));
        }
        if str_of(&scale_io.volume_name).is_empty() {
            errs.push(FieldError::required(&p.child("volumeName"), ""));
        }
    }
    if let Some(local) = &spec.local
        && one(true, "local", &mut errs)
    {
        let p = path.child("local");
        if local.path.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        } else {
            errs.extend(validate_path_no_backsteps(&local.path, &p.child("path")));
        }
        if !node_affinity_set {
            errs.push(FieldError::required(
                &path.child("nodeAffinity"),
                "Local volume requires node affinity",
            ));
        }
    }
    if let Some(storageos) = &spec.storageos
        && one(true, "storageos", &mut errs)
    {
        let p = path.child("storageos");
        let volume = str_of(&storageos.volume_name);
        if volume.is_empty() {
            errs.push(FieldError::required(&p.child("volumeName"), ""));
        } else {
            errs.extend(validate_dns1123_label(volume, &p.child("volumeName")));
        }
        let namespace = str_of(&storageos.volume_namespace);
        if !namespace.is_empty() {
            errs.extend(validate_dns1123_label(namespace, &p.child("volumeNamespace")));
        }
        if let Some(secret) = &storageos.secret_ref {
            if str_of(&secret.name).is_empty() {
                errs.push(FieldError::required(&p.child("secretRef").child("name"), ""));
            }
            if str_of(&secret.namespace).is_empty() {
                errs.push(FieldError::required(&p.child("secretRef").child("namespace"), ""));
            }
        }
    }
    if let Some(csi) = &spec.csi
        && one(true, "csi", &mut errs)
    {
        let p = path.child("csi");
        errs.extend(validate_csi_driver_name(&csi.driver, &p.child("driver")));
        if csi.volume_handle.is_empty() {
            errs.push(FieldError::required(&p.child("volumeHandle"), ""));
        }
        for (name, secret) in [
            ("controllerPublishSecretRef", &csi.controller_publish_secret_ref),
            ("controllerExpandSecretRef", &csi.controller_expand_secret_ref),
            ("nodePublishSecretRef", &csi.node_publish_secret_ref),
            ("nodeExpandSecretRef", &csi.node_expand_secret_ref),
        ] {
            if let Some(secret) = secret {
                errs.extend(validate_pv_secret_reference(secret, &p.child(name)));
            }
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

/// Go's `net.SplitHostPort` succeeding.
fn is_host_port(value: &str) -> bool {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split_once(']').is_some_and(|(host, port)| {
            !host.contains('[') && port.starts_with(':') && !port[1..].contains(':')
        });
    }
    value.matches(':').count() == 1 && !value.contains('[') && !value.contains(']')
}

/// Go's `path.Clean(p) == "/"`.
fn cleans_to_root(path: &str) -> bool {
    path.starts_with('/')
        && path
            .split('/')
            .all(|seg| seg.is_empty() || seg == "." || seg == "..")
}

/// Upstream's `ValidatePersistentVolumeSpec` for a PersistentVolume object.
fn validate_pv_spec(pv: &PersistentVolume, allow_invalid_affinity_values: bool) -> ErrorList {
    let path = Path::new("spec");
    let default_spec = PersistentVolumeSpec::default();
    let spec = pv.spec.as_ref().unwrap_or(&default_spec);
    let mut errs = ErrorList::new();
    let modes = list_of(&spec.access_modes);
    if modes.is_empty() {
        errs.push(FieldError::required(&path.child("accessModes"), ""));
    }
    errs.extend(validate_access_modes(modes, &path.child("accessModes")));
    let capacity_path = path.child("capacity");
    let capacity = spec.capacity.clone().unwrap_or_default();
    if capacity.is_empty() {
        errs.push(FieldError::required(&capacity_path, ""));
    }
    if !capacity.contains_key(STORAGE) || capacity.len() > 1 {
        errs.push(FieldError::not_supported(
            &capacity_path,
            json_value(&spec.capacity),
            &[STORAGE],
        ));
    }
    let (values, parse_errs) = parse_resource_list(&spec.capacity, &capacity_path);
    errs.extend(parse_errs);
    for (name, value) in &values {
        errs.extend(validate_basic_resource(value, &capacity_path.key(name)));
        errs.extend(validate_positive_quantity_value(value, &capacity_path.key(name)));
    }
    let policy = str_of(&spec.persistent_volume_reclaim_policy);
    if !policy.is_empty() && !SUPPORTED_RECLAIM_POLICIES.contains(&policy) {
        errs.push(FieldError::not_supported(
            &path.child("persistentVolumeReclaimPolicy"),
            policy,
            SUPPORTED_RECLAIM_POLICIES,
        ));
    }
    let mut affinity_set = false;
    if let Some(affinity) = &spec.node_affinity {
        affinity_set = true;
        let affinity_path = path.child("nodeAffinity");
        match &affinity.required {
            Some(required) => errs.extend(validate_node_selector(
                required,
                allow_invalid_affinity_values,
                &affinity_path.child("required"),
            )),
            None => errs.push(FieldError::required(
                &affinity_path.child("required"),
                "must specify required node constraints",
            )),
        }
    }
    errs.extend(validate_pv_sources(
        spec,
        str_of(&pv.metadata.name),
        &path,
        affinity_set,
    ));
    if spec.host_path.as_ref().is_some_and(|h| cleans_to_root(&h.path)) && policy == RECYCLE {
        errs.push(FieldError::forbidden(
            &path.child("persistentVolumeReclaimPolicy"),
            "may not be 'recycle' for a hostPath mount of '/'",
        ));
    }
    let class = str_of(&spec.storage_class_name);
    if !class.is_empty() {
        errs.extend(validate_class_name(class, &path.child("storageClassName")));
    }
    if let Some(mode) = &spec.volume_mode
        && !SUPPORTED_VOLUME_MODES.contains(&mode.as_str())
    {
        errs.push(FieldError::not_supported(
            &path.child("volumeMode"),
            mode.as_str(),
            SUPPORTED_VOLUME_MODES,
        ));
    }
    if let Some(vac) = &spec.volume_attributes_class_name {
        let vac_path = path.child("volumeAttributesClassName");
        if vac.is_empty() {
            errs.push(FieldError::required(&vac_path, "an empty string is disallowed"));
        } else {
            errs.extend(validate_class_name(vac, &vac_path));
        }
        if spec.csi.is_none() {
            errs.push(FieldError::required(
                &path.child("csi"),
                "has to be specified when using volumeAttributesClassName",
            ));
        }
    }
    errs
}

/// `ValidatePersistentVolume` plus pkg/volume/validation's mount-option rule.
fn validate_pv(pv: &PersistentVolume, allow_invalid_affinity_values: bool) -> ErrorList {
    let mut errs = validate_object_meta(&pv.metadata, false, name_is_dns_subdomain, &meta_path());
    errs.extend(validate_pv_spec(pv, allow_invalid_affinity_values));
    errs
}

fn check_mount_option(pv: &PersistentVolume) -> ErrorList {
    let Some(spec) = &pv.spec else {
        return Vec::new();
    };
    let supports_mount_options = spec.gce_persistent_disk.is_some()
        || spec.aws_elastic_block_store.is_some()
        || spec.glusterfs.is_some()
        || spec.nfs.is_some()
        || spec.rbd.is_some()
        || spec.quobyte.is_some()
        || spec.iscsi.is_some()
        || spec.cinder.is_some()
        || spec.cephfs.is_some()
        || spec.azure_file.is_some()
        || spec.vsphere_volume.is_some()
        || spec.azure_disk.is_some()
        || spec.photon_persistent_disk.is_some();
    if !supports_mount_options && annotation(&pv.metadata, MOUNT_OPTIONS_ANNOTATION).is_some() {
        return vec![FieldError::forbidden(
            &meta_path().child("annotations").child(MOUNT_OPTIONS_ANNOTATION),
            "may not specify mount options for this volume type",
        )];
    }
    Vec::new()
}

/// The volume-source part of a PV spec (upstream's embedded `PersistentVolumeSource`).
fn pv_source_json(spec: Option<&PersistentVolumeSpec>) -> Value {
    let mut value = to_json(&spec);
    if let Some(map) = value.as_object_mut() {
        for key in [
            "accessModes",
            "capacity",
            "claimRef",
            "mountOptions",
            "nodeAffinity",
            "persistentVolumeReclaimPolicy",
            "storageClassName",
            "volumeAttributesClassName",
            "volumeMode",
        ] {
            map.remove(key);
        }
    }
    value
}

fn validate_pv_update(
    new: &PersistentVolume,
    old: &PersistentVolume,
    allow_invalid_affinity_values: bool,
) -> ErrorList {
    let mut errs = validate_pv(new, allow_invalid_affinity_values);
    let mut compared = new.spec.clone();
    let old_has_expand = old
        .spec
        .as_ref()
        .and_then(|s| s.csi.as_ref())
        .map(|c| c.controller_expand_secret_ref.is_some());
    if old_has_expand == Some(false)
        && let Some(csi) = compared.as_mut().and_then(|s| s.csi.as_mut())
    {
        csi.controller_expand_secret_ref = None;
    }
    let (old_source, new_source) = (
        pv_source_json(old.spec.as_ref()),
        pv_source_json(compared.as_ref()),
    );
    if old_source != new_source {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("persistentvolumesource"),
            format!(
                "spec.persistentvolumesource is immutable after creation\n{}",
                diff(&old_source, &new_source)
            ),
        ));
    }
    let (new_spec, old_spec) = (new.spec.as_ref(), old.spec.as_ref());
    let new_mode = new_spec.and_then(|s| s.volume_mode.clone());
    let old_mode = old_spec.and_then(|s| s.volume_mode.clone());
    if new_mode != old_mode {
        errs.push(FieldError::invalid(
            &Path::new("volumeMode"),
            json_value(&new_mode),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    let old_affinity = old_spec.and_then(|s| s.node_affinity.as_ref());
    let new_affinity = new_spec.and_then(|s| s.node_affinity.as_ref());
    if old_affinity.is_some() && !affinity_equal_modulo_ga(new_affinity, old_affinity) {
        errs.push(FieldError::invalid(
            &Path::new("nodeAffinity"),
            BadValue::Plain(node_affinity_json(new_affinity)),
            format!("{FIELD_IMMUTABLE_ERROR_MSG}, except for updating from beta label to GA"),
        ));
    }
    let old_vac = old_spec.and_then(|s| s.volume_attributes_class_name.as_ref());
    let new_vac = new_spec.and_then(|s| s.volume_attributes_class_name.as_ref());
    if old_vac.is_some() && new_vac.is_none() {
        errs.push(FieldError::forbidden(
            &Path::new("spec").child("volumeAttributesClassName"),
            "update from non-nil value to nil is forbidden",
        ));
    }
    errs
}

fn pv_warnings(pv: &PersistentVolume) -> Vec<String> {
    let mut warnings = Vec::new();
    for (key, message) in [
        (
            BETA_STORAGE_CLASS_ANNOTATION,
            "deprecated since v1.8; use \"storageClassName\" attribute instead",
        ),
        (
            MOUNT_OPTIONS_ANNOTATION,
            "deprecated since v1.31; use \"mountOptions\" attribute instead",
        ),
    ] {
        if annotation(&pv.metadata, key).is_some() {
            warnings.push(format!(
                "{}: {message}",
                meta_path().child("annotations").key(key)
            ));
        }
    }
    let Some(spec) = &pv.spec else {
        return warnings;
    };
    if str_of(&spec.persistent_volume_reclaim_policy) == RECYCLE {
        warnings.push("spec.persistentVolumeReclaimPolicy: The Recycle reclaim policy is deprecated. Instead, the recommended approach is to use dynamic provisioning.".to_owned());
    }
    if let Some(required) = spec.node_affinity.as_ref().and_then(|a| a.required.as_ref()) {
        let terms = Path::new("spec")
            .child("nodeAffinity")
            .child("required")
            .child("nodeSelectorTerms");
        for (i, term) in required.node_selector_terms.iter().enumerate() {
            for (j, expr) in list_of(&term.match_expressions).iter().enumerate() {
                if let Some((_, msg)) = DEPRECATED_NODE_LABELS.iter().find(|(k, _)| *k == expr.key) {
                    warnings.push(format!(
                        "{}: {} is {msg}",
                        terms.index(i).child("matchExpressions").index(j).child("key"),
                        expr.key
                    ));
                }
            }
        }
    }
    for (present, field, message) in [
        (
            spec.cephfs.is_some(),
            "cephfs",
            "deprecated in v1.28, non-functional in v1.31+",
        ),
        (
            spec.photon_persistent_disk.is_some(),
            "photonPersistentDisk",
            "deprecated in v1.11, non-functional in v1.16+",
        ),
        (
            spec.scale_io.is_some(),
            "scaleIO",
            "deprecated in v1.16, non-functional in v1.22+",
        ),
        (
            spec.storageos.is_some(),
            "storageOS",
            "deprecated in v1.22, non-functional in v1.25+",
        ),
        (
            spec.glusterfs.is_some(),
            "glusterfs",
            "deprecated in v1.25, non-functional in v1.26+",
        ),
        (
            spec.rbd.is_some(),
            "rbd",
            "deprecated in v1.28, non-functional in v1.31+",
        ),
    ] {
        if present {
            warnings.push(format!("spec.{field}: {message}"));
        }
    }
    warnings
}

impl KindStrategy for PersistentVolume {
    fn apply_defaults(&mut self) {
        let status = self.status.get_or_insert_with(PersistentVolumeStatus::default);
        if str_of(&status.phase).is_empty() {
            status.phase = Some(PHASE_PENDING.to_owned());
        }
        let spec = self.spec.get_or_insert_with(PersistentVolumeSpec::default);
        if str_of(&spec.persistent_volume_reclaim_policy).is_empty() {
            spec.persistent_volume_reclaim_policy = Some("Retain".to_owned());
        }
        spec.volume_mode.get_or_insert_with(|| FILESYSTEM.to_owned());
        default_resource_list(&mut spec.capacity);
        if let Some(host_path) = spec.host_path.as_mut() {
            host_path.type_.get_or_insert_with(String::new);
        }
        let set = |field: &mut Option<String>, value: &str| {
            if str_of(field).is_empty() {
                *field = Some(value.to_owned());
            }
        };
        if let Some(rbd) = spec.rbd.as_mut() {
            set(&mut rbd.pool, "rbd");
            set(&mut rbd.user, "admin");
            set(&mut rbd.keyring, "/etc/ceph/keyring");
        }
        if let Some(iscsi) = spec.iscsi.as_mut() {
            set(&mut iscsi.iscsi_interface, "default");
        }
        if let Some(azure) = spec.azure_disk.as_mut() {
            azure.caching_mode.get_or_insert_with(|| "ReadWrite".to_owned());
            azure.fs_type.get_or_insert_with(|| "ext4".to_owned());
            azure.read_only.get_or_insert(false);
            azure.kind.get_or_insert_with(|| "Shared".to_owned());
        }
        if let Some(scale_io) = spec.scale_io.as_mut() {
            set(&mut scale_io.storage_mode, "ThinProvisioned");
            set(&mut scale_io.fs_type, "xfs");
        }
    }

    /// Upstream also stamps `status.lastPhaseTransitionTime` with the current time; strategies
    /// here have no clock, so it is left unset.
    fn prepare_for_create(&mut self) {
        self.status = Some(PersistentVolumeStatus {
            phase: Some(PHASE_PENDING.to_owned()),
            ..Default::default()
        });
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
    }

    /// Upstream sets `lastPhaseTransitionTime` to now when the phase changes; without a clock
    /// only the carry-over of the old time for an unchanged phase is done.
    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
        let old_status = old.status.as_ref();
        if let Some(status) = self.status.as_mut() {
            let same_phase = old_status.map(|s| &s.phase) == Some(&status.phase);
            if same_phase && status.last_phase_transition_time.is_none() {
                status.last_phase_transition_time =
                    old_status.and_then(|s| s.last_phase_transition_time.clone());
            }
        }
    }

    fn validate(&self) -> ErrorList {
        let mut errs = validate_pv(self, false);
        errs.extend(check_mount_option(self));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let allow = has_invalid_label_value(old.spec.as_ref().and_then(|s| s.node_affinity.as_ref()));
        let mut errs = validate_pv(self, allow);
        errs.extend(check_mount_option(self));
        errs.extend(validate_pv_update(self, old, allow));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        if str_of(&self.metadata.resource_version).is_empty() {
            errs.push(FieldError::required(&Path::new("resourceVersion"), ""));
        }
        errs
    }

    fn warnings(&self) -> Vec<String> {
        pv_warnings(self)
    }
}

// PersistentVolumeClaim

/// `ValidationOptionsForPersistentVolumeClaim` with every gate at its v1.35 default.
#[derive(Clone, Copy, Default)]
struct ClaimOptions {
    allow_invalid_label_value_in_selector: bool,
    allow_invalid_api_group: bool,
}

fn claim_options(old: Option<&PersistentVolumeClaim>) -> ClaimOptions {
    let Some(old) = old else {
        return ClaimOptions::default();
    };
    let spec = old.spec.as_ref();
    let allow_invalid_api_group = spec.is_some_and(|s| {
        s.data_source.as_ref().is_some_and(|d| d.api_group.is_some())
            || s.data_source_ref.as_ref().is_some_and(|d| d.api_group.is_some())
    });
    let selector = spec.and_then(|s| s.selector.as_ref());
    let allow_invalid_label_value_in_selector =
        !validate_label_selector(selector, LabelSelectorValidationOptions::default(), &Path::root())
            .is_empty();
    ClaimOptions {
        allow_invalid_label_value_in_selector,
        allow_invalid_api_group,
    }
}

fn validate_data_source_fields(
    kind: &str,
    name: &str,
    api_group: Option<&str>,
    allow_invalid_api_group: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    if kind.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    }
    let group = api_group.unwrap_or_default();
    if group.is_empty() && kind != "PersistentVolumeClaim" {
        errs.push(FieldError::invalid(
            path,
            kind,
            "must be 'PersistentVolumeClaim' when referencing the default apiGroup",
        ));
    }
    if !group.is_empty() && !allow_invalid_api_group {
        errs.extend(name_errors(
            &path.child("apiGroup"),
            group,
            is_dns1123_subdomain(group),
        ));
    }
    errs
}

fn validate_data_source(source: &TypedLocalObjectReference, allow: bool, path: &Path) -> ErrorList {
    validate_data_source_fields(
        &source.kind,
        &source.name,
        source.api_group.as_deref(),
        allow,
        path,
    )
}

fn validate_data_source_ref(source: &TypedObjectReference, allow: bool, path: &Path) -> ErrorList {
    let mut errs = validate_data_source_fields(
        &source.kind,
        &source.name,
        source.api_group.as_deref(),
        allow,
        path,
    );
    if let Some(namespace) = source.namespace.as_deref().filter(|n| !n.is_empty()) {
        errs.extend(name_errors(
            &path.child("namespace"),
            namespace,
            validate_namespace_name(namespace, false),
        ));
    }
    errs
}

fn storage_request(spec: Option<&PersistentVolumeClaimSpec>) -> Option<&Quantity> {
    spec.and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get(STORAGE))
}

/// Upstream's `ValidatePersistentVolumeClaimSpec`.
fn validate_claim_spec(spec: Option<&PersistentVolumeClaimSpec>, opts: ClaimOptions) -> ErrorList {
    let path = Path::new("spec");
    let default_spec = PersistentVolumeClaimSpec::default();
    let spec_ref = spec.unwrap_or(&default_spec);
    let mut errs = ErrorList::new();
    let modes = list_of(&spec_ref.access_modes);
    if modes.is_empty() {
        errs.push(FieldError::required(
            &path.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if let Some(selector) = &spec_ref.selector {
        errs.extend(validate_label_selector(
            Some(selector),
            LabelSelectorValidationOptions {
                allow_invalid_label_value_in_selector: opts.allow_invalid_label_value_in_selector,
                ..Default::default()
            },
            &path.child("selector"),
        ));
    }
    errs.extend(validate_access_modes(modes, &path.child("accessModes")));
    // Upstream's path is `spec.resources[storage]`.
    let storage_path = path.child("resources").key(STORAGE);
    match storage_request(spec) {
        None => errs.push(FieldError::required(&storage_path, "")),
        Some(quantity) => match parse_quantity(quantity.0.trim()) {
            Err(err) => errs.push(FieldError::invalid(
                &storage_path,
                quantity.0.as_str(),
                err.to_string(),
            )),
            Ok(value) => {
                let positive = validate_positive_quantity_value(&value, &storage_path);
                if positive.is_empty() {
                    errs.extend(validate_resource_quantity_value(STORAGE, &value, &storage_path));
                } else {
                    errs.extend(positive);
                }
            }
        },
    }
    if let Some(class) = spec_ref.storage_class_name.as_deref().filter(|c| !c.is_empty()) {
        errs.extend(validate_class_name(class, &path.child("storageClassName")));
    }
    if let Some(mode) = &spec_ref.volume_mode
        && !SUPPORTED_VOLUME_MODES.contains(&mode.as_str())
    {
        errs.push(FieldError::not_supported(
            &path.child("volumeMode"),
            mode.as_str(),
            SUPPORTED_VOLUME_MODES,
        ));
    }
    if let Some(source) = &spec_ref.data_source {
        errs.extend(validate_data_source(
            source,
            opts.allow_invalid_api_group,
            &path.child("dataSource"),
        ));
    }
    if let Some(source) = &spec_ref.data_source_ref {
        errs.extend(validate_data_source_ref(
            source,
            opts.allow_invalid_api_group,
            &path.child("dataSourceRef"),
        ));
    }
    // Upstream passes a field path as the bad value, which Go's encoder writes as `{}`.
    let path_value = || BadValue::Plain("{}".to_owned());
    let ref_namespace = spec_ref
        .data_source_ref
        .as_ref()
        .and_then(|r| r.namespace.as_deref())
        .filter(|n| !n.is_empty());
    if ref_namespace.is_some() {
        if spec_ref.data_source.is_some() {
            errs.push(FieldError::invalid(
                &path,
                path_value(),
                "may not be specified when dataSourceRef.namespace is specified",
            ));
        }
    } else if let (Some(source), Some(source_ref)) = (&spec_ref.data_source, &spec_ref.data_source_ref) {
        let same = source.api_group == source_ref.api_group
            && source.kind == source_ref.kind
            && source.name == source_ref.name;
        if !same {
            errs.push(FieldError::invalid(
                &path,
                path_value(),
                "must match dataSourceRef",
            ));
        }
    }
    if let Some(vac) = spec_ref
        .volume_attributes_class_name
        .as_deref()
        .filter(|v| !v.is_empty())
    {
        errs.extend(validate_class_name(vac, &path.child("volumeAttributesClassName")));
    }
    errs
}

fn validate_claim(pvc: &PersistentVolumeClaim, opts: ClaimOptions) -> ErrorList {
    let mut errs = validate_object_meta(&pvc.metadata, true, name_is_dns_subdomain, &meta_path());
    errs.extend(validate_claim_spec(pvc.spec.as_ref(), opts));
    errs
}

/// `EnforceDataSourceBackwardsCompatibility` and `NormalizeDataSources` (with the v1.35 gates:
/// AnyVolumeDataSource on, CrossNamespaceVolumeDataSource off).
fn prepare_data_sources(spec: &mut PersistentVolumeClaimSpec, old: Option<&PersistentVolumeClaimSpec>) {
    let old_ref_in_use = old.is_some_and(|o| o.data_source_ref.is_some());
    let cross_namespace = spec
        .data_source_ref
        .as_ref()
        .and_then(|r| r.namespace.as_deref())
        .is_some_and(|n| !n.is_empty());
    if cross_namespace && !old_ref_in_use {
        spec.data_source_ref = None;
    }
    let old_in_use = old.is_some_and(|o| o.data_source.is_some() || o.data_source_ref.is_some());
    if !old_in_use && spec.data_source_ref.is_none() {
        let keep = spec.data_source.as_ref().is_some_and(|d| {
            let group = d.api_group.as_deref().unwrap_or_default();
            (d.kind == "PersistentVolumeClaim" && group.is_empty())
                || (d.kind == "VolumeSnapshot" && group == "snapshot.storage.k8s.io")
        });
        if !keep {
            spec.data_source = None;
        }
    }
    normalize_data_sources(spec);
}

fn normalize_data_sources(spec: &mut PersistentVolumeClaimSpec) {
    match (&spec.data_source, &spec.data_source_ref) {
        (Some(source), None) => {
            spec.data_source_ref = Some(TypedObjectReference {
                api_group: source.api_group.clone(),
                kind: source.kind.clone(),
                name: source.name.clone(),
                namespace: None,
            });
        }
        (None, Some(source_ref)) if source_ref.namespace.as_deref().unwrap_or_default().is_empty() => {
            spec.data_source = Some(TypedLocalObjectReference {
                api_group: source_ref.api_group.clone(),
                kind: source_ref.kind.clone(),
                name: source_ref.name.clone(),
            });
        }
        _ => {}
    }
}

fn claim_phase(pvc: &PersistentVolumeClaim) -> &str {
    pvc.status.as_ref().map_or("", |s| str_of(&s.phase))
}

fn validate_claim_update(
    new: &PersistentVolumeClaim,
    old: &PersistentVolumeClaim,
    opts: ClaimOptions,
) -> ErrorList {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, &meta_path());
    errs.extend(validate_claim(new, opts));
    let mut new_spec = new.spec.clone().unwrap_or_default();
    let mut old_spec = old.spec.clone().unwrap_or_default();
    normalize_data_sources(&mut old_spec);
    if str_of(&old_spec.volume_name).is_empty() {
        old_spec.volume_name.clone_from(&new_spec.volume_name);
    }
    let old_annotation = annotation(&old.metadata, BETA_STORAGE_CLASS_ANNOTATION);
    let new_annotation = annotation(&new.metadata, BETA_STORAGE_CLASS_ANNOTATION);
    let (old_class, new_class) = (
        old.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()),
        new.spec.as_ref().and_then(|s| s.storage_class_name.as_deref()),
    );
    let upgrade_from_annotation = old_annotation.is_some()
        && old_class.is_none()
        && new_class.is_some()
        && new_class == old_annotation
        && new_annotation.is_none_or(|a| Some(a) == old_annotation);
    if upgrade_from_annotation {
        new_spec.storage_class_name = None;
    } else {
        if new_annotation.unwrap_or_default() != old_annotation.unwrap_or_default() {
            errs.push(FieldError::invalid(
                &meta_path()
                    .child("annotations")
                    .child(BETA_STORAGE_CLASS_ANNOTATION),
                new_annotation.unwrap_or_default(),
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        let upgrade_from_nil =
            new_class.is_some() && old_class.is_none() && old_annotation.is_none_or(|a| new_class == Some(a));
        if upgrade_from_nil {
            new_spec
                .storage_class_name
                .clone_from(&old_spec.storage_class_name);
        }
    }
    let bound = claim_phase(new) == PHASE_BOUND;
    if bound {
        if let Some(requests) = new_spec.resources.as_mut().and_then(|r| r.requests.as_mut()) {
            let old_storage = storage_request(old.spec.as_ref())
                .cloned()
                .unwrap_or_else(|| Quantity("0".to_owned()));
            requests.insert(STORAGE.to_owned(), old_storage);
        }
        new_spec
            .volume_attributes_class_name
            .clone_from(&old_spec.volume_attributes_class_name);
    }
    let (old_json, new_json) = (to_json(&old_spec), to_json(&new_spec));
    if old_json != new_json {
        errs.push(FieldError::forbidden(
            &Path::new("spec"),
            format!(
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                diff(&old_json, &new_json)
            ),
        ));
    }
    let size = |q: Option<&Quantity>| {
        q.and_then(|q| parse_quantity(q.0.trim()).ok())
            .unwrap_or_else(ParsedQuantity::zero)
    };
    let (old_size, new_size) = (
        size(storage_request(old.spec.as_ref())),
        size(storage_request(new.spec.as_ref())),
    );
    let status_size = size(
        old.status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get(STORAGE)),
    );
    if new_size < old_size && new_size <= status_size {
        errs.push(FieldError::forbidden(
            &Path::new("spec")
                .child("resources")
                .child("requests")
                .child(STORAGE),
            "field can not be less than status.capacity",
        ));
    }
    let new_mode = new.spec.as_ref().and_then(|s| s.volume_mode.clone());
    let old_mode = old.spec.as_ref().and_then(|s| s.volume_mode.clone());
    if new_mode != old_mode {
        errs.push(FieldError::invalid(
            &Path::new("volumeMode"),
            json_value(&new_mode),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
    let old_vac = old
        .spec
        .as_ref()
        .and_then(|s| s.volume_attributes_class_name.as_deref());
    let new_vac = new
        .spec
        .as_ref()
        .and_then(|s| s.volume_attributes_class_name.as_deref());
    let current_vac = old
        .status
        .as_ref()
        .and_then(|s| s.current_volume_attributes_class_name.as_ref());
    if old_vac != new_vac && current_vac.is_some() {
        let vac_path = Path::new("spec").child("volumeAttributesClassName");
        match new_vac {
            None => errs.push(FieldError::forbidden(
                &vac_path,
                "update to nil is forbidden when status.currentVolumeAttributesClassName is not nil",
            )),
            Some("") => errs.push(FieldError::forbidden(
                &vac_path,
                "update to empty string is forbidden when status.currentVolumeAttributesClassName is not nil",
            )),
            Some(_) => {}
        }
    }
    errs
}

fn validate_claim_resource_key(value: &str, path: &Path) -> ErrorList {
    let errs = name_errors(path, value, is_qualified_name(value));
    if !errs.is_empty() {
        return errs;
    }
    if is_native_resource(value) && value != STORAGE {
        return vec![FieldError::not_supported(path, value, &[STORAGE])];
    }
    errs
}

fn validate_claim_status_update(new: &PersistentVolumeClaim, old: &PersistentVolumeClaim) -> ErrorList {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, &meta_path());
    if str_of(&new.metadata.resource_version).is_empty() {
        errs.push(FieldError::required(&Path::new("resourceVersion"), ""));
    }
    if new
        .spec
        .as_ref()
        .is_none_or(|s| list_of(&s.access_modes).is_empty())
    {
        // Upstream's path has a capital S.
        errs.push(FieldError::required(&Path::new("Spec").child("accessModes"), ""));
    }
    let Some(status) = &new.status else {
        return errs;
    };
    let capacity_path = Path::new("status").child("capacity");
    let (capacity, parse_errs) = parse_resource_list(&status.capacity, &capacity_path);
    errs.extend(parse_errs);
    for (name, value) in &capacity {
        errs.extend(validate_basic_resource(value, &capacity_path.key(name)));
    }
    let statuses_path = Path::new("status").child("allocatedResourceStatuses");
    for (key, value) in status.allocated_resource_statuses.iter().flatten() {
        errs.extend(validate_claim_resource_key(key, &statuses_path));
        if !SUPPORTED_RESIZE_STATUSES.contains(&value.as_str()) {
            errs.push(FieldError::not_supported(
                &statuses_path,
                key.as_str(),
                SUPPORTED_RESIZE_STATUSES,
            ));
        }
    }
    let allocated_path = Path::new("status").child("allocatedResources");
    for (key, value) in status.allocated_resources.iter().flatten() {
        let key_errs = validate_claim_resource_key(key, &allocated_path);
        if !key_errs.is_empty() {
            errs.extend(key_errs);
            continue;
        }
        let item_path = allocated_path.key(key);
        match parse_quantity(value.0.trim()) {
            Err(err) => errs.push(FieldError::invalid(&item_path, value.0.as_str(), err.to_string())),
            Ok(q) => {
                let basic = validate_basic_resource(&q, &item_path);
                if basic.is_empty() {
                    errs.extend(validate_resource_quantity_value(STORAGE, &q, &item_path));
                } else {
                    errs.extend(basic);
                }
            }
        }
    }
    errs
}

impl KindStrategy for PersistentVolumeClaim {
    fn apply_defaults(&mut self) {
        let status = self
            .status
            .get_or_insert_with(PersistentVolumeClaimStatus::default);
        if str_of(&status.phase).is_empty() {
            status.phase = Some(PHASE_PENDING.to_owned());
        }
        default_resource_list(&mut status.capacity);
        default_resource_list(&mut status.allocated_resources);
        let spec = self.spec.get_or_insert_with(PersistentVolumeClaimSpec::default);
        spec.volume_mode.get_or_insert_with(|| FILESYSTEM.to_owned());
        // `resources` is a non-pointer struct upstream: always written.
        let resources = spec
            .resources
            .get_or_insert_with(VolumeResourceRequirements::default);
        default_resource_list(&mut resources.limits);
        default_resource_list(&mut resources.requests);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(PersistentVolumeClaimStatus {
            phase: Some(PHASE_PENDING.to_owned()),
            ..Default::default()
        });
        if let Some(spec) = self.spec.as_mut() {
            prepare_data_sources(spec, None);
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
        if let Some(spec) = self.spec.as_mut() {
            prepare_data_sources(spec, old.spec.as_ref());
        }
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        validate_claim(self, claim_options(None))
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        validate_claim_update(self, old, claim_options(Some(old)))
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        validate_claim_status_update(self, old)
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if annotation(&self.metadata, BETA_STORAGE_CLASS_ANNOTATION).is_some() {
            warnings.push(format!(
                "{}: deprecated since v1.8; use \"storageClassName\" attribute instead",
                meta_path()
                    .child("annotations")
                    .key(BETA_STORAGE_CLASS_ANNOTATION)
            ));
        }
        let resources = self.spec.as_ref().and_then(|s| s.resources.as_ref());
        let lists: [(&str, Option<&BTreeMap<String, Quantity>>); 2] = [
            ("requests", resources.and_then(|r| r.requests.as_ref())),
            ("limits", resources.and_then(|r| r.limits.as_ref())),
        ];
        for (name, list) in lists {
            let Some(value) = list
                .and_then(|l| l.get(STORAGE))
                .and_then(|q| parse_quantity(q.0.trim()).ok())
            else {
                continue;
            };
            if value.milli_value() % 1000 != 0 {
                warnings.push(format!(
                    "{}: fractional byte value {:?} is invalid, must be an integer",
                    Path::new("spec").child("resources").child(name).key(STORAGE),
                    value.to_string()
                ));
            }
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::core_shared::testing::{create, create_errors, update, update_errors, warnings};
    use crate::strategy::UpdateTarget;

    #[allow(clippy::needless_pass_by_value)]
    fn pv(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"}, "spec": spec})
    }

    #[allow(clippy::needless_pass_by_value)]
    fn pvc(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": "ns"}, "spec": spec})
    }

    #[test]
    fn persistent_volume_defaults() {
        let out = create(
            "PersistentVolume",
            pv(json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1024Mi"}, "hostPath": {"path": "/data"}})),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "capacity": {"storage": "1Gi"},
                    "hostPath": {"path": "/data", "type": ""},
                    "persistentVolumeReclaimPolicy": "Retain",
                    "volumeMode": "Filesystem"
                },
                "status": {"phase": "Pending"}
            })
        );
    }

    #[test]
    fn persistent_volume_validation() {
        let cases = [
            (
                pv(json!({})),
                vec![
                    "spec.accessModes: Required value",
                    "spec.capacity: Required value",
                    "spec.capacity: Unsupported value: null: supported values: \"storage\"",
                    "spec: Required value: must specify a volume type",
                ],
            ),
            (
                pv(
                    json!({"accessModes": ["ReadWriteOncePod", "ReadWriteOnce", "Sometimes"], "capacity": {"storage": "0", "cpu": "1"},
                          "persistentVolumeReclaimPolicy": "Keep", "nfs": {"server": "", "path": "rel"}, "hostPath": {"path": "/"},
                          "storageClassName": "Fast", "volumeMode": "Raw"}),
                ),
                vec![
                    "spec.accessModes: Unsupported value: \"Sometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", \"ReadWriteOnce\", \"ReadWriteOncePod\"",
                    "spec.accessModes: Forbidden: may not use ReadWriteOncePod with other access modes",
                    "spec.capacity: Unsupported value: {\"cpu\":\"1\",\"storage\":\"0\"}: supported values: \"storage\"",
                    "spec.capacity[storage]: Invalid value: \"0\": must be greater than zero",
                    "spec.persistentVolumeReclaimPolicy: Unsupported value: \"Keep\": supported values: \"Delete\", \"Recycle\", \"Retain\"",
                    "spec.nfs: Forbidden: may not specify more than 1 volume type",
                    "spec.storageClassName: Invalid value: \"Fast\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                    "spec.volumeMode: Unsupported value: \"Raw\": supported values: \"Block\", \"Filesystem\"",
                ],
            ),
            (
                pv(
                    json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "local": {"path": "/mnt/../x"}}),
                ),
                vec![
                    "spec.local.path: Invalid value: \"/mnt/../x\": must not contain '..'",
                    "spec.nodeAffinity: Required value: Local volume requires node affinity",
                ],
            ),
            (
                pv(
                    json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "local": {"path": "/mnt/x"},
                          "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In"}],
                                                                                "matchFields": [{"key": "spec.nodeName", "operator": "In", "values": ["a"]}]}]}}}),
                ),
                vec![
                    "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
                    "spec.nodeAffinity.required.nodeSelectorTerms[0].matchFields[0].key: Invalid value: \"spec.nodeName\": not a valid field selector key",
                ],
            ),
            (
                pv(
                    json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
                          "csi": {"driver": "Bad_Driver", "volumeHandle": "", "nodePublishSecretRef": {"name": "s"}}}),
                ),
                vec![
                    "spec.csi.driver: Invalid value: \"Bad_Driver\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                    "spec.csi.volumeHandle: Required value",
                    "spec.csi.nodePublishSecretRef.namespace: Required value",
                ],
            ),
            (
                json!({"metadata": {"name": "pv1", "annotations": {"volume.beta.kubernetes.io/mount-options": "ro"}},
                       "spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/x"}}}),
                vec![
                    "metadata.annotations.volume.beta.kubernetes.io/mount-options: Forbidden: may not specify mount options for this volume type",
                ],
            ),
            (
                pv(
                    json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
                          "iscsi": {"targetPortal": "1.2.3.4:3260", "iqn": "iqn.2001-04.com.example:storage", "lun": 0}}),
                ),
                vec![],
            ),
            (
                pv(
                    json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
                          "iscsi": {"targetPortal": "", "iqn": "iqn.bad", "lun": 300}}),
                ),
                vec![
                    "spec.iscsi.targetPortal: Required value",
                    "spec.iscsi.iqn: Invalid value: \"iqn.bad\": must be valid format",
                    "spec.iscsi.lun: Invalid value: 300: must be between 0 and 255, inclusive",
                ],
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(
                create_errors("PersistentVolume", object.clone()),
                expected,
                "{object}"
            );
        }
    }

    #[test]
    fn persistent_volume_updates() {
        let mut old = create(
            "PersistentVolume",
            pv(json!({"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "nfs": {"server": "s", "path": "/a"},
                      "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                          {"key": "failure-domain.beta.kubernetes.io/zone", "operator": "In", "values": ["z"]}]}]}}})),
        )
        .unwrap();
        old["metadata"]["resourceVersion"] = json!("1");
        // Moving to the GA label and growing the capacity are fine; the status is kept.
        let mut new = old.clone();
        new["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["key"] =
            json!("topology.kubernetes.io/zone");
        new["spec"]["capacity"]["storage"] = json!("2Gi");
        new["status"]["phase"] = json!("Bound");
        let out = update("PersistentVolume", new, &old, UpdateTarget::Main).unwrap();
        assert_eq!(out["status"], json!({"phase": "Pending"}));
        let mut new = old.clone();
        new["spec"]["nfs"]["path"] = json!("/b");
        new["spec"]["volumeMode"] = json!("Block");
        new["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] =
            json!(["y"]);
        assert_eq!(
            update_errors("PersistentVolume", new, &old, UpdateTarget::Main),
            [
                "spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation\n- nfs: {\"path\":\"/a\",\"server\":\"s\"}\n+ nfs: {\"path\":\"/b\",\"server\":\"s\"}\n",
                "volumeMode: Invalid value: \"Block\": field is immutable",
                "nodeAffinity: Invalid value: {\"Required\":{\"NodeSelectorTerms\":[{\"MatchExpressions\":[{\"Key\":\"failure-domain.beta.kubernetes.io/zone\",\"Operator\":\"In\",\"Values\":[\"y\"]}],\"MatchFields\":null}]}}: field is immutable, except for updating from beta label to GA",
            ]
        );
        let mut new = old.clone();
        new["status"] = json!({"phase": "Available"});
        let out = update("PersistentVolume", new, &old, UpdateTarget::Status).unwrap();
        assert_eq!(out["status"], json!({"phase": "Available"}));
        assert_eq!(
            warnings("PersistentVolume", &old),
            [
                "spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].key: failure-domain.beta.kubernetes.io/zone is deprecated since v1.17; use \"topology.kubernetes.io/zone\" instead"
            ]
        );
    }

    #[test]
    fn claim_defaults() {
        let out = create(
            "PersistentVolumeClaim",
            pvc(json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1024Mi"}}})),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "namespace": "ns"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "1Gi"}},
                    "volumeMode": "Filesystem"
                },
                "status": {"phase": "Pending"}
            })
        );
        // A data source other than a claim or snapshot is dropped; a claim is mirrored.
        let out = create(
            "PersistentVolumeClaim",
            pvc(
                json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                       "dataSource": {"kind": "Thing", "name": "x", "apiGroup": "example.com"}}),
            ),
        )
        .unwrap();
        assert_eq!(
            (out["spec"].get("dataSource"), out["spec"].get("dataSourceRef")),
            (None, None)
        );
        let out = create(
            "PersistentVolumeClaim",
            pvc(
                json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                       "dataSource": {"kind": "PersistentVolumeClaim", "name": "src"}}),
            ),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["dataSourceRef"],
            json!({"kind": "PersistentVolumeClaim", "name": "src"})
        );
    }

    #[test]
    fn claim_validation() {
        let cases = [
            (
                pvc(json!({})),
                vec![
                    "spec.accessModes: Required value: at least 1 access mode is required",
                    "spec.resources[storage]: Required value",
                ],
            ),
            (
                pvc(
                    json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "0"}},
                           "selector": {"matchLabels": {"a": "-"}}, "storageClassName": "Fast", "volumeMode": "Raw",
                           "dataSourceRef": {"kind": "Snap", "name": "", "apiGroup": "Bad"}}),
                ),
                vec![
                    "spec.selector.matchLabels: Invalid value: \"-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                    "spec.resources[storage]: Invalid value: \"0\": must be greater than zero",
                    "spec.storageClassName: Invalid value: \"Fast\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                    "spec.volumeMode: Unsupported value: \"Raw\": supported values: \"Block\", \"Filesystem\"",
                    "spec.dataSource.name: Required value",
                    "spec.dataSource.apiGroup: Invalid value: \"Bad\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                    "spec.dataSourceRef.name: Required value",
                    "spec.dataSourceRef.apiGroup: Invalid value: \"Bad\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ],
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(
                create_errors("PersistentVolumeClaim", object.clone()),
                expected,
                "{object}"
            );
        }
    }

    #[test]
    fn claim_updates() {
        let mut old = create(
            "PersistentVolumeClaim",
            pvc(json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}})),
        )
        .unwrap();
        old["metadata"]["resourceVersion"] = json!("1");
        // Binding sets the volume name once; a class may be set where there was none.
        let mut new = old.clone();
        new["spec"]["volumeName"] = json!("pv1");
        new["spec"]["storageClassName"] = json!("fast");
        assert!(update_errors("PersistentVolumeClaim", new, &old, UpdateTarget::Main).is_empty());
        let mut new = old.clone();
        new["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        new["spec"]["volumeMode"] = json!("Block");
        assert_eq!(
            update_errors("PersistentVolumeClaim", new, &old, UpdateTarget::Main),
            [
                "spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n- accessModes: [\"ReadWriteOnce\"]\n+ accessModes: [\"ReadWriteMany\"]\n- volumeMode: \"Filesystem\"\n+ volumeMode: \"Block\"\n",
                "volumeMode: Invalid value: \"Block\": field is immutable",
            ]
        );
        // Only a bound claim may grow; it may not shrink below the recorded capacity.
        let mut bound = old.clone();
        bound["status"] = json!({"phase": "Bound", "capacity": {"storage": "1Gi"}});
        let mut new = bound.clone();
        new["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(update_errors("PersistentVolumeClaim", new.clone(), &bound, UpdateTarget::Main).is_empty());
        assert!(
            update_errors("PersistentVolumeClaim", new, &old, UpdateTarget::Main)[0]
                .starts_with("spec: Forbidden: spec is immutable after creation")
        );
        let mut new = bound.clone();
        new["spec"]["resources"]["requests"]["storage"] = json!("512Mi");
        assert_eq!(
            update_errors("PersistentVolumeClaim", new, &bound, UpdateTarget::Main),
            ["spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"]
        );
        // The status endpoint.
        let mut new = bound.clone();
        new["status"] = json!({"phase": "Bound", "capacity": {"storage": "2Gi"},
                               "allocatedResources": {"cpu": "1"}, "allocatedResourceStatuses": {"storage": "Resizing"}});
        assert_eq!(
            update_errors("PersistentVolumeClaim", new, &bound, UpdateTarget::Status),
            [
                "status.allocatedResourceStatuses: Unsupported value: \"storage\": supported values: \"ControllerResizeInProgress\", \"ControllerResizeInfeasible\", \"NodeResizeInProgress\", \"NodeResizeInfeasible\", \"NodeResizePending\"",
                "status.allocatedResources: Unsupported value: \"cpu\": supported values: \"storage\"",
            ]
        );
        assert_eq!(
            warnings(
                "PersistentVolumeClaim",
                &pvc(json!({"resources": {"requests": {"storage": "1.5"}}}))
            ),
            [
                "spec.resources.requests[storage]: fractional byte value \"1500m\" is invalid, must be an integer"
            ]
        );
    }
}
