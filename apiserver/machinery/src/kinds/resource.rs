//! The strategies of resource.k8s.io/v1 (dynamic resource allocation): DeviceClass,
//! ResourceClaim (with its status subresource), ResourceClaimTemplate and ResourceSlice.
//!
//! Ports the basic rules of pkg/apis/resource: the request defaults of v1/defaults.go
//! (allocationMode `ExactCount`, count 1), the strategies of pkg/registry/resource
//! (generation, status reset, immutable claim and template specs, selectable fields of
//! slices, the lowercase-driver warning, the alpha `extendedResourceName` dropped) and the
//! structural parts of validation/validation.go: names, requests (one of `exactly` or
//! `firstAvailable`, device class names, allocation modes), selectors and configs (presence,
//! sizes, driver names), request references, pools, node selection and device names. CEL
//! expressions, device attributes, capacities, counters, taints and allocation results are
//! not validated.

use std::collections::BTreeSet;

use k8s_openapi::api::resource::v1::{
    DeviceClaim, DeviceClass, DeviceClassConfiguration, DeviceRequest, DeviceSelector, DeviceSubRequest,
    ExactDeviceRequest, OpaqueDeviceConfiguration, ResourceClaim, ResourceClaimSpec, ResourceClaimStatus,
    ResourceClaimTemplate, ResourceSlice,
};

use super::api_shared::{
    bump_generation, core_meta, core_meta_update, differs, init_generation, reset_meta_for_status,
};
use super::core_shared::{json_str, list_of, str_of};
use super::pod_volume::validate_template_object_meta;
use crate::field::{BadValue, ErrorList, FieldError, Path, json_value};
use crate::strategy::KindStrategy;
use crate::validation::{
    FIELD_IMMUTABLE_ERROR_MSG, is_dns1123_subdomain, name_is_dns_subdomain, validate_dns1123_label,
    validate_dns1123_subdomain, validate_immutable_field,
};

const DEVICE_REQUESTS_MAX_SIZE: usize = 32;
const DEVICE_CONSTRAINTS_MAX_SIZE: usize = 32;
const DEVICE_CONFIG_MAX_SIZE: usize = 32;
const DEVICE_SELECTORS_MAX_SIZE: usize = 32;
const FIRST_AVAILABLE_MAX_SIZE: usize = 8;
const CEL_SELECTOR_EXPRESSION_MAX_LENGTH: usize = 10 * 1024;
const OPAQUE_PARAMETERS_MAX_LENGTH: usize = 10 * 1024;
const RESERVED_FOR_MAX_SIZE: usize = 256;
const RESOURCE_SLICE_MAX_DEVICES: usize = 128;
const RESOURCE_SLICE_MAX_DEVICES_WITH_TAINTS_OR_COUNTERS: usize = 64;
const RESOURCE_SLICE_MAX_COUNTER_SETS: usize = 8;
const POOL_NAME_MAX_LENGTH: usize = 253;
const ALLOCATION_MODES: &[&str] = &["All", "ExactCount"];
const REQUEST_NAME_REF_MSG: &str =
    "must be the name of a request in the claim or the name of a request and a subrequest separated by '/'";

/// A list within its size limit, else a single `TooMany` error (upstream's `validateSlice`).
fn too_many<T>(items: &[T], max: usize, path: &Path) -> Option<FieldError> {
    (items.len() > max).then(|| FieldError::too_many(path, Some(items.len()), max))
}

/// Core's `ValidateCSIDriverName`, which resource drivers share.
fn validate_driver_name(name: &str, path: &Path) -> ErrorList {
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

fn validate_selectors(selectors: &[DeviceSelector], path: &Path) -> ErrorList {
    if let Some(err) = too_many(selectors, DEVICE_SELECTORS_MAX_SIZE, path) {
        return vec![err];
    }
    let mut errs = ErrorList::new();
    for (i, selector) in selectors.iter().enumerate() {
        let cel_path = path.index(i).child("cel");
        match &selector.cel {
            None => errs.push(FieldError::required(&cel_path, "")),
            Some(cel) if cel.expression.len() > CEL_SELECTOR_EXPRESSION_MAX_LENGTH => errs.push(
                FieldError::too_long(&cel_path.child("expression"), CEL_SELECTOR_EXPRESSION_MAX_LENGTH),
            ),
            Some(_) => {}
        }
    }
    errs
}

fn validate_opaque(opaque: Option<&OpaqueDeviceConfiguration>, path: &Path) -> ErrorList {
    let Some(opaque) = opaque else {
        return vec![FieldError::required(&path.child("opaque"), "")];
    };
    let path = path.child("opaque");
    let mut errs = validate_driver_name(&opaque.driver, &path.child("driver"));
    let parameters_path = path.child("parameters");
    let raw = serde_json::to_string(&opaque.parameters.0).unwrap_or_default();
    if opaque.parameters.0.is_null() || raw.is_empty() {
        errs.push(FieldError::required(&parameters_path, ""));
    } else if raw.len() > OPAQUE_PARAMETERS_MAX_LENGTH {
        errs.push(FieldError::too_long(
            &parameters_path,
            OPAQUE_PARAMETERS_MAX_LENGTH,
        ));
    } else if !opaque.parameters.0.is_object() {
        errs.push(FieldError::invalid(
            &parameters_path,
            "<value omitted>",
            "must be a valid JSON object",
        ));
    }
    errs
}

fn validate_allocation_mode(mode: &str, count: i64, path: &Path) -> ErrorList {
    match mode {
        "All" if count != 0 => vec![FieldError::invalid(
            &path.child("count"),
            count,
            format!("must not be specified when allocationMode is '{mode}'"),
        )],
        "ExactCount" if count <= 0 => vec![FieldError::invalid(
            &path.child("count"),
            count,
            "must be greater than zero",
        )],
        "All" | "ExactCount" => Vec::new(),
        other => vec![FieldError::not_supported(
            &path.child("allocationMode"),
            other,
            ALLOCATION_MODES,
        )],
    }
}

fn validate_device_class_name(name: &str, path: &Path) -> ErrorList {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    validate_dns1123_subdomain(name, path)
}

fn validate_exact(request: &ExactDeviceRequest, path: &Path) -> ErrorList {
    let mut errs = validate_device_class_name(&request.device_class_name, &path.child("deviceClassName"));
    errs.extend(validate_selectors(
        list_of(&request.selectors),
        &path.child("selectors"),
    ));
    errs.extend(validate_allocation_mode(
        str_of(&request.allocation_mode),
        request.count.unwrap_or_default(),
        path,
    ));
    errs
}

fn validate_sub_request(request: &DeviceSubRequest, path: &Path) -> ErrorList {
    let mut errs = validate_dns1123_label(&request.name, &path.child("name"));
    errs.extend(validate_device_class_name(
        &request.device_class_name,
        &path.child("deviceClassName"),
    ));
    errs.extend(validate_selectors(
        list_of(&request.selectors),
        &path.child("selectors"),
    ));
    errs.extend(validate_allocation_mode(
        str_of(&request.allocation_mode),
        request.count.unwrap_or_default(),
        path,
    ));
    errs
}

fn validate_request(request: &DeviceRequest, path: &Path) -> ErrorList {
    let mut errs = validate_dns1123_label(&request.name, &path.child("name"));
    let first_available = list_of(&request.first_available);
    match (first_available.is_empty(), &request.exactly) {
        (true, None) => errs.push(FieldError::required(
            path,
            "exactly one of `exactly` or `firstAvailable` is required",
        )),
        (false, Some(_)) => errs.push(FieldError::invalid(
            path,
            BadValue::Plain("null".to_owned()),
            "exactly one of `exactly` or `firstAvailable` is required, but multiple fields are set",
        )),
        (false, None) => {
            let fa_path = path.child("firstAvailable");
            if let Some(err) = too_many(first_available, FIRST_AVAILABLE_MAX_SIZE, &fa_path) {
                errs.push(err);
            } else {
                let mut names = BTreeSet::new();
                for (i, sub) in first_available.iter().enumerate() {
                    errs.extend(validate_sub_request(sub, &fa_path.index(i)));
                }
                for (i, sub) in first_available.iter().enumerate() {
                    if !names.insert(sub.name.as_str()) {
                        errs.push(FieldError::duplicate(&fa_path.index(i), sub.name.as_str()));
                    }
                }
            }
        }
        (true, Some(exactly)) => errs.extend(validate_exact(exactly, &path.child("exactly"))),
    }
    errs
}

/// Whether `name` refers to a request (or `request/subrequest`) of the claim.
fn has_request(claim: &DeviceClaim, name: &str) -> bool {
    let segments: Vec<&str> = name.split('/').collect();
    let requests = list_of(&claim.requests);
    match segments.as_slice() {
        [request] => requests.iter().any(|r| r.name == *request),
        [request, sub] => requests
            .iter()
            .any(|r| r.name == *request && list_of(&r.first_available).iter().any(|s| s.name == *sub)),
        _ => false,
    }
}

fn validate_request_refs(claim: &DeviceClaim, refs: &[String], path: &Path) -> ErrorList {
    if let Some(err) = too_many(refs, DEVICE_REQUESTS_MAX_SIZE, path) {
        return vec![err];
    }
    let mut errs = ErrorList::new();
    for (i, name) in refs.iter().enumerate() {
        let path = path.index(i);
        let segments: Vec<&str> = name.split('/').collect();
        if segments.len() > 2 {
            errs.push(FieldError::invalid(&path, name.as_str(), REQUEST_NAME_REF_MSG));
            continue;
        }
        for segment in segments {
            errs.extend(validate_dns1123_label(segment, &path));
        }
        if !has_request(claim, name) {
            errs.push(FieldError::invalid(&path, name.as_str(), REQUEST_NAME_REF_MSG));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, name) in refs.iter().enumerate() {
        if !seen.insert(name.as_str()) {
            errs.push(FieldError::duplicate(&path.index(i), name.as_str()));
        }
    }
    errs
}

fn validate_device_claim(claim: &DeviceClaim, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let requests = list_of(&claim.requests);
    let requests_path = path.child("requests");
    if let Some(err) = too_many(requests, DEVICE_REQUESTS_MAX_SIZE, &requests_path) {
        errs.push(err);
    } else {
        for (i, request) in requests.iter().enumerate() {
            errs.extend(validate_request(request, &requests_path.index(i)));
        }
        let mut names = BTreeSet::new();
        for (i, request) in requests.iter().enumerate() {
            if !names.insert(request.name.as_str()) {
                errs.push(FieldError::duplicate(
                    &requests_path.index(i),
                    request.name.as_str(),
                ));
            }
        }
    }
    let constraints = list_of(&claim.constraints);
    let constraints_path = path.child("constraints");
    if let Some(err) = too_many(constraints, DEVICE_CONSTRAINTS_MAX_SIZE, &constraints_path) {
        errs.push(err);
    } else {
        for (i, constraint) in constraints.iter().enumerate() {
            let c_path = constraints_path.index(i);
            errs.extend(validate_request_refs(
                claim,
                list_of(&constraint.requests),
                &c_path.child("requests"),
            ));
            if constraint.match_attribute.is_none() && constraint.distinct_attribute.is_none() {
                errs.push(FieldError::required(
                    &c_path,
                    "exactly one of \"matchAttribute\" or \"distinctAttribute\" is required, but multiple fields are set",
                ));
            }
        }
    }
    let configs = list_of(&claim.config);
    let config_path = path.child("config");
    if let Some(err) = too_many(configs, DEVICE_CONFIG_MAX_SIZE, &config_path) {
        errs.push(err);
    } else {
        for (i, config) in configs.iter().enumerate() {
            let c_path = config_path.index(i);
            errs.extend(validate_request_refs(
                claim,
                list_of(&config.requests),
                &c_path.child("requests"),
            ));
            errs.extend(validate_opaque(config.opaque.as_ref(), &c_path));
        }
    }
    errs
}

fn validate_claim_spec(spec: &ResourceClaimSpec, path: &Path) -> ErrorList {
    validate_device_claim(&spec.devices.clone().unwrap_or_default(), &path.child("devices"))
}

fn default_claim_spec(spec: &mut ResourceClaimSpec) {
    let devices = spec.devices.get_or_insert_with(DeviceClaim::default);
    for request in devices.requests.iter_mut().flatten() {
        if let Some(exactly) = &mut request.exactly {
            default_allocation(&mut exactly.allocation_mode, &mut exactly.count);
        }
        for sub in request.first_available.iter_mut().flatten() {
            default_allocation(&mut sub.allocation_mode, &mut sub.count);
        }
    }
}

fn default_allocation(mode: &mut Option<String>, count: &mut Option<i64>) {
    if str_of(mode).is_empty() {
        *mode = Some("ExactCount".to_owned());
    }
    if str_of(mode) == "ExactCount" && count.unwrap_or_default() == 0 {
        *count = Some(1);
    }
}

/// The spec immutability error of claims and templates. Upstream renders the internal Go
/// struct; this renders the v1 JSON.
fn spec_immutable(new: &ResourceClaimSpec, old: &ResourceClaimSpec, path: &Path) -> ErrorList {
    if differs(new, old) {
        return vec![FieldError::invalid(
            path,
            json_value(new),
            FIELD_IMMUTABLE_ERROR_MSG,
        )];
    }
    Vec::new()
}

// DeviceClass

fn validate_class_configs(configs: &[DeviceClassConfiguration], path: &Path) -> ErrorList {
    if let Some(err) = too_many(configs, DEVICE_CONFIG_MAX_SIZE, path) {
        return vec![err];
    }
    configs
        .iter()
        .enumerate()
        .flat_map(|(i, c)| validate_opaque(c.opaque.as_ref(), &path.index(i)))
        .collect()
}

fn validate_device_class(class: &DeviceClass) -> ErrorList {
    let mut errs = core_meta(&class.metadata, false, name_is_dns_subdomain);
    let path = Path::new("spec");
    errs.extend(validate_selectors(
        list_of(&class.spec.selectors),
        &path.child("selectors"),
    ));
    errs.extend(validate_class_configs(
        list_of(&class.spec.config),
        &path.child("config"),
    ));
    errs
}

impl KindStrategy for DeviceClass {
    /// `extendedResourceName` belongs to the alpha DRAExtendedResource feature (off).
    fn prepare_for_create(&mut self) {
        init_generation(&mut self.metadata);
        self.spec.extended_resource_name = None;
    }

    fn prepare_for_update(&mut self, old: &Self) {
        if old.spec.extended_resource_name.is_none() {
            self.spec.extended_resource_name = None;
        }
        bump_generation(&mut self.metadata, &old.metadata, differs(&self.spec, &old.spec));
    }

    fn validate(&self) -> ErrorList {
        validate_device_class(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = core_meta(&self.metadata, false, name_is_dns_subdomain);
        errs.extend(core_meta_update(&self.metadata, &old.metadata));
        let path = Path::new("spec");
        errs.extend(validate_selectors(
            list_of(&self.spec.selectors),
            &path.child("selectors"),
        ));
        errs.extend(validate_class_configs(
            list_of(&self.spec.config),
            &path.child("config"),
        ));
        errs
    }
}

// ResourceClaim

fn validate_claim_status(claim: &ResourceClaim) -> ErrorList {
    let status = claim.status.clone().unwrap_or_default();
    let path = Path::new("status").child("reservedFor");
    let reserved = list_of(&status.reserved_for);
    let mut errs = ErrorList::new();
    if let Some(err) = too_many(reserved, RESERVED_FOR_MAX_SIZE, &path) {
        errs.push(err);
    } else {
        for (i, consumer) in reserved.iter().enumerate() {
            let c_path = path.index(i);
            for (field, value) in [
                ("resource", &consumer.resource),
                ("name", &consumer.name),
                ("uid", &consumer.uid),
            ] {
                if value.is_empty() {
                    errs.push(FieldError::required(&c_path.child(field), ""));
                }
            }
        }
        let mut uids = BTreeSet::new();
        for (i, consumer) in reserved.iter().enumerate() {
            if !uids.insert(consumer.uid.as_str()) {
                errs.push(FieldError::duplicate(&path.index(i), consumer.uid.as_str()));
            }
        }
    }
    if !reserved.is_empty() && status.allocation.is_none() {
        errs.push(FieldError::forbidden(
            &path,
            "may not be specified when `allocated` is not set",
        ));
    }
    errs
}

impl KindStrategy for ResourceClaim {
    /// The spec's devices and the status are non-pointer structs upstream: always written.
    fn apply_defaults(&mut self) {
        default_claim_spec(&mut self.spec);
        self.status.get_or_insert_with(ResourceClaimStatus::default);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(ResourceClaimStatus::default());
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec = old.spec.clone();
        reset_meta_for_status(&mut self.metadata, &old.metadata);
    }

    fn validate(&self) -> ErrorList {
        let mut errs = core_meta(&self.metadata, true, name_is_dns_subdomain);
        errs.extend(validate_claim_spec(&self.spec, &Path::new("spec")));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = core_meta(&self.metadata, true, name_is_dns_subdomain);
        errs.extend(core_meta_update(&self.metadata, &old.metadata));
        errs.extend(spec_immutable(&self.spec, &old.spec, &Path::new("spec")));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let mut errs = core_meta_update(&self.metadata, &old.metadata);
        errs.extend(validate_claim_status(self));
        errs
    }
}

// ResourceClaimTemplate

fn validate_template(template: &ResourceClaimTemplate) -> ErrorList {
    let mut errs = core_meta(&template.metadata, true, name_is_dns_subdomain);
    let path = Path::new("spec");
    errs.extend(validate_template_object_meta(
        template.spec.metadata.as_ref(),
        &path.child("metadata"),
    ));
    errs.extend(validate_claim_spec(&template.spec.spec, &path.child("spec")));
    errs
}

impl KindStrategy for ResourceClaimTemplate {
    fn apply_defaults(&mut self) {
        default_claim_spec(&mut self.spec.spec);
    }

    fn validate(&self) -> ErrorList {
        validate_template(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_template(self);
        errs.extend(core_meta_update(&self.metadata, &old.metadata));
        if differs(&self.spec, &old.spec) {
            errs.push(FieldError::invalid(
                &Path::new("spec"),
                json_value(&self.spec),
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        errs
    }
}

// ResourceSlice

fn validate_pool_name(name: &str, path: &Path) -> ErrorList {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = ErrorList::new();
    if name.len() > POOL_NAME_MAX_LENGTH {
        errs.push(FieldError::too_long(path, POOL_NAME_MAX_LENGTH));
    }
    for part in name.split('/') {
        errs.extend(validate_dns1123_subdomain(part, path));
    }
    errs
}

fn validate_slice(slice: &ResourceSlice, old: Option<&ResourceSlice>) -> ErrorList {
    let spec = &slice.spec;
    let path = Path::new("spec");
    let mut errs = validate_driver_name(&spec.driver, &path.child("driver"));
    let pool_path = path.child("pool");
    errs.extend(validate_pool_name(&spec.pool.name, &pool_path.child("name")));
    if spec.pool.resource_slice_count <= 0 {
        errs.push(FieldError::invalid(
            &pool_path.child("resourceSliceCount"),
            spec.pool.resource_slice_count,
            "must be greater than zero",
        ));
    }
    if spec.pool.generation < 0 {
        errs.push(FieldError::invalid(
            &pool_path.child("generation"),
            spec.pool.generation,
            "must be greater than or equal to zero",
        ));
    }
    if let Some(old) = old {
        errs.extend(validate_immutable_field(
            spec.pool.name.as_str(),
            old.spec.pool.name.as_str(),
            &pool_path.child("name"),
        ));
        errs.extend(validate_immutable_field(
            spec.driver.as_str(),
            old.spec.driver.as_str(),
            &path.child("driver"),
        ));
        errs.extend(validate_immutable_field(
            &spec.node_name,
            &old.spec.node_name,
            &path.child("nodeName"),
        ));
    }
    let mut set_fields = Vec::new();
    if let Some(node_name) = &spec.node_name {
        if node_name.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("nodeName"),
                "",
                "must be either unset or set to a non-empty string",
            ));
        } else {
            set_fields.push("`nodeName`");
            errs.extend(
                name_is_dns_subdomain(node_name, false)
                    .into_iter()
                    .map(|msg| FieldError::invalid(&path.child("nodeName"), node_name.as_str(), msg)),
            );
        }
    }
    if let Some(selector) = &spec.node_selector {
        set_fields.push("`nodeSelector`");
        if selector.node_selector_terms.len() != 1 {
            errs.push(FieldError::invalid(
                &path.child("nodeSelector").child("nodeSelectorTerms"),
                json_value(&selector.node_selector_terms),
                "must have exactly one node selector term",
            ));
        }
    }
    for (field, value) in [
        ("allNodes", spec.all_nodes),
        ("perDeviceNodeSelection", spec.per_device_node_selection),
    ] {
        match value {
            Some(true) => set_fields.push(if field == "allNodes" {
                "`allNodes`"
            } else {
                "`perDeviceNodeSelection`"
            }),
            Some(false) => errs.push(FieldError::invalid(
                &path.child(field),
                false,
                "must be either unset or set to true",
            )),
            None => {}
        }
    }
    match set_fields.len() {
        0 => errs.push(FieldError::required(
            &path,
            "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required",
        )),
        1 => {}
        _ => errs.push(FieldError::invalid(
            &path,
            format!("{{{}}}", set_fields.join(", ")),
            "exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required, but multiple fields are set",
        )),
    }
    if spec.shared_counters.is_some() && spec.devices.is_some() {
        errs.push(FieldError::invalid(
            &path,
            "",
            "only one of `sharedCounters` or `devices` is allowed",
        ));
    }
    let devices = list_of(&spec.devices);
    let heavy = devices
        .iter()
        .any(|d| !list_of(&d.taints).is_empty() || !list_of(&d.consumes_counters).is_empty());
    let max_devices = if heavy {
        RESOURCE_SLICE_MAX_DEVICES_WITH_TAINTS_OR_COUNTERS
    } else {
        RESOURCE_SLICE_MAX_DEVICES
    };
    let devices_path = path.child("devices");
    if let Some(err) = too_many(devices, max_devices, &devices_path) {
        errs.push(err);
    } else {
        for (i, device) in devices.iter().enumerate() {
            errs.extend(validate_dns1123_label(
                &device.name,
                &devices_path.index(i).child("name"),
            ));
        }
        let mut names = BTreeSet::new();
        for (i, device) in devices.iter().enumerate() {
            if !names.insert(device.name.as_str()) {
                errs.push(FieldError::duplicate(
                    &devices_path.index(i),
                    device.name.as_str(),
                ));
            }
        }
    }
    let counter_sets = list_of(&spec.shared_counters);
    let counters_path = path.child("sharedCounters");
    if let Some(err) = too_many(counter_sets, RESOURCE_SLICE_MAX_COUNTER_SETS, &counters_path) {
        errs.push(err);
    } else {
        for (i, set) in counter_sets.iter().enumerate() {
            let s_path = counters_path.index(i);
            if set.name.is_empty() {
                errs.push(FieldError::required(&s_path.child("name"), ""));
            } else {
                errs.extend(validate_dns1123_label(&set.name, &s_path.child("name")));
            }
            if set.counters.is_empty() {
                errs.push(FieldError::required(&s_path.child("counters"), ""));
            }
        }
        let mut names = BTreeSet::new();
        for (i, set) in counter_sets.iter().enumerate() {
            if !names.insert(set.name.as_str()) {
                errs.push(FieldError::duplicate(&counters_path.index(i), set.name.as_str()));
            }
        }
    }
    errs
}

impl KindStrategy for ResourceSlice {
    fn prepare_for_create(&mut self) {
        init_generation(&mut self.metadata);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        bump_generation(&mut self.metadata, &old.metadata, differs(&self.spec, &old.spec));
    }

    fn validate(&self) -> ErrorList {
        let mut errs = core_meta(&self.metadata, false, name_is_dns_subdomain);
        errs.extend(validate_slice(self, None));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = core_meta_update(&self.metadata, &old.metadata);
        errs.extend(validate_slice(self, Some(old)));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        if self.spec.driver.chars().any(|c| c.is_uppercase()) {
            return vec![format!(
                "spec.driver: driver names should be lowercase; {} contains uppercase characters",
                json_str(&self.spec.driver)
            )];
        }
        Vec::new()
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("spec.nodeName", str_of(&self.spec.node_name).to_owned()),
            ("spec.driver", self.spec.driver.clone()),
        ]
    }

    const SELECTABLE_FIELDS: &'static [&'static str] = &["spec.nodeName", "spec.driver"];
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::kinds::api_shared::testing::{
        check_create_cases, create, fields, update, update_errors, warnings,
    };
    use crate::strategy::UpdateTarget;

    const API: &str = "resource.k8s.io/v1";

    #[test]
    fn claims() {
        let claim = create(json!({"apiVersion": API, "kind": "ResourceClaim", "metadata": {"name": "c", "namespace": "ns"},
            "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.example.com"}}]}},
            "status": {"reservedFor": [{"resource": "pods", "name": "p", "uid": "1"}]}}))
        .unwrap();
        assert_eq!(
            claim,
            json!({"apiVersion": API, "kind": "ResourceClaim", "metadata": {"name": "c", "namespace": "ns"},
                "spec": {"devices": {"requests": [{"name": "gpu", "exactly": {"allocationMode": "ExactCount", "count": 1, "deviceClassName": "gpu.example.com"}}]}},
                "status": {}})
        );
        let empty = create(json!({"apiVersion": API, "kind": "ResourceClaim", "metadata": {"name": "c", "namespace": "ns"}, "spec": {}}))
            .unwrap();
        assert_eq!(empty["spec"], json!({"devices": {}}));
        check_create_cases(&[(
            json!({"apiVersion": API, "kind": "ResourceClaim", "metadata": {"name": "c", "namespace": "ns"},
            "spec": {"devices": {
                "requests": [
                    {"name": "Gpu"},
                    {"name": "b", "exactly": {"deviceClassName": "", "allocationMode": "Some", "selectors": [{}]}},
                    {"name": "b", "exactly": {"deviceClassName": "x", "allocationMode": "All", "count": 2}}
                ],
                "config": [{"requests": ["nope"]}]
            }}}),
            vec![
                "spec.devices.requests[0].name: Invalid value: \"Gpu\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                "spec.devices.requests[0]: Required value: exactly one of `exactly` or `firstAvailable` is required",
                "spec.devices.requests[1].exactly.deviceClassName: Required value",
                "spec.devices.requests[1].exactly.selectors[0].cel: Required value",
                "spec.devices.requests[1].exactly.allocationMode: Unsupported value: \"Some\": supported values: \"All\", \"ExactCount\"",
                "spec.devices.requests[2].exactly.count: Invalid value: 2: must not be specified when allocationMode is 'All'",
                "spec.devices.requests[2]: Duplicate value: \"b\"",
                "spec.devices.config[0].requests[0]: Invalid value: \"nope\": must be the name of a request in the claim or the name of a request and a subrequest separated by '/'",
                "spec.devices.config[0].opaque: Required value",
            ],
        )]);
        let mut old = claim;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["status"] = json!({"reservedFor": [{"resource": "pods", "name": "p", "uid": "1"}]});
        assert_eq!(
            update(new.clone(), &old, UpdateTarget::Main).unwrap()["status"],
            json!({})
        );
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Status),
            ["status.reservedFor: Forbidden: may not be specified when `allocated` is not set"]
        );
        let mut new = old.clone();
        new["spec"]["devices"]["requests"][0]["name"] = json!("other");
        let errs = update_errors(new, &old, UpdateTarget::Main);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("spec: Invalid value: {") && errs[0].ends_with("}: field is immutable"));
    }

    #[test]
    fn classes_templates_and_slices() {
        let class = create(json!({"apiVersion": API, "kind": "DeviceClass", "metadata": {"name": "gpu.example.com"},
            "spec": {"selectors": [{"cel": {"expression": "device.driver == \"gpu.example.com\""}}], "extendedResourceName": "example.com/gpu"}}))
        .unwrap();
        assert_eq!(
            class,
            json!({"apiVersion": API, "kind": "DeviceClass", "metadata": {"name": "gpu.example.com", "generation": 1},
                "spec": {"selectors": [{"cel": {"expression": "device.driver == \"gpu.example.com\""}}]}})
        );
        check_create_cases(&[
            (
                json!({"apiVersion": API, "kind": "DeviceClass", "metadata": {"name": "c"},
                    "spec": {"config": [{"opaque": {"driver": "", "parameters": {}}}, {}]}}),
                vec![
                    "spec.config[0].opaque.driver: Required value",
                    "spec.config[1].opaque: Required value",
                ],
            ),
            (
                json!({"apiVersion": API, "kind": "ResourceClaimTemplate", "metadata": {"name": "t", "namespace": "ns"},
                    "spec": {"metadata": {"name": "x"}, "spec": {}}}),
                vec!["spec.metadata.name: Forbidden: cannot be set"],
            ),
            (
                json!({"apiVersion": API, "kind": "ResourceSlice", "metadata": {"name": "s"},
                    "spec": {"driver": "", "pool": {"name": "a/B", "resourceSliceCount": 0, "generation": 0},
                        "nodeName": "n", "allNodes": true, "devices": [{"name": "d"}, {"name": "d"}]}}),
                vec![
                    "spec.driver: Required value",
                    "spec.pool.name: Invalid value: \"B\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                    "spec.pool.resourceSliceCount: Invalid value: 0: must be greater than zero",
                    "spec: Invalid value: \"{`nodeName`, `allNodes`}\": exactly one of `nodeName`, `nodeSelector`, `allNodes`, `perDeviceNodeSelection` is required, but multiple fields are set",
                    "spec.devices[1]: Duplicate value: \"d\"",
                ],
            ),
        ]);
        let slice = create(json!({"apiVersion": API, "kind": "ResourceSlice", "metadata": {"name": "s"},
            "spec": {"driver": "GPU.example.com", "pool": {"name": "p", "resourceSliceCount": 1, "generation": 0}, "nodeName": "node-1"}}))
        .unwrap();
        assert_eq!(slice["metadata"]["generation"], json!(1));
        assert_eq!(
            warnings(&slice),
            [
                "spec.driver: driver names should be lowercase; \"GPU.example.com\" contains uppercase characters"
            ]
        );
        assert_eq!(
            fields(&slice),
            [
                ("spec.nodeName", "node-1".to_owned()),
                ("spec.driver", "GPU.example.com".to_owned())
            ]
        );
        let mut old = slice;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!("node-2");
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            ["spec.nodeName: Invalid value: \"node-2\": field is immutable"]
        );
    }
}
