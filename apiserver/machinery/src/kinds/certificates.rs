//! The strategy of certificates.k8s.io/v1 CertificateSigningRequest, with its `status` and
//! `approval` subresources.
//!
//! Ports pkg/registry/certificates/certificates/strategy.go and
//! pkg/apis/certificates/validation/validation.go: requests are immutable after creation
//! except through the subresources; `/status` may set the certificate and non-approval
//! conditions, `/approval` only the conditions; usages, signer names, expiration and
//! condition rules.
//!
//! What the API server must do itself (the strategy has no request context):
//! - On create, upstream's `PrepareForCreate` clears `spec.username`, `spec.uid`,
//!   `spec.groups` and `spec.extra` and then fills them from the authenticated user. The
//!   create pipeline here only clears them; the server must call [`set_requesting_user`] on
//!   the object the pipeline returns, before storing it.
//! - Condition timestamps: upstream's status and approval strategies set a missing
//!   `lastUpdateTime` and `lastTransitionTime` to now. The strategy knows no clock; the server
//!   should call [`populate_condition_timestamps`] with the current time before the status
//!   pipeline (the pipeline keeps timestamps it is given).
//! - The `approval` subresource: the server must use [`prepare_for_approval_update`] and
//!   [`validate_approval_update`] (upstream's approval strategy) for it.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::api_shared::{core_meta, core_meta_update};
use super::core_shared::list_of;
use crate::field::{BadValue, ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{
    DNS1123_LABEL_MAX_LENGTH, DNS1123_SUBDOMAIN_MAX_LENGTH, is_dns1123_label, is_dns1123_subdomain,
};

/// The signer name only the v1beta1 API accepted.
pub const LEGACY_UNKNOWN_SIGNER_NAME: &str = "kubernetes.io/legacy-unknown";
const APPROVED: &str = "Approved";
const DENIED: &str = "Denied";
const FAILED: &str = "Failed";

/// The key usages upstream knows, sorted as its error lists them.
const VALID_USAGES: &[&str] = &[
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// Fills `spec.username`, `spec.uid`, `spec.groups` and `spec.extra` from the requesting user,
/// as upstream's `PrepareForCreate` does from the request context. Call it on the object the
/// create pipeline returns.
pub fn set_requesting_user(
    csr: &mut CertificateSigningRequest,
    username: &str,
    uid: &str,
    groups: &[String],
    extra: &BTreeMap<String, Vec<String>>,
) {
    let spec = &mut csr.spec;
    spec.username = Some(username.to_owned()).filter(|s| !s.is_empty());
    spec.uid = Some(uid.to_owned()).filter(|s| !s.is_empty());
    spec.groups = Some(groups.to_vec()).filter(|g| !g.is_empty());
    spec.extra = Some(extra.clone()).filter(|e| !e.is_empty());
}

// PEM

/// One PEM block as Go's `pem.Decode` returns it.
struct PemBlock {
    type_: String,
    has_headers: bool,
    bytes: Vec<u8>,
}

/// Go's `pem.Decode` applied repeatedly: the well-formed blocks of `data`, in order.
fn pem_blocks(data: &[u8]) -> Vec<PemBlock> {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        let Some(type_) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        else {
            i += 1;
            continue;
        };
        let end = format!("-----END {type_}-----");
        let Some(end_index) = (i + 1..lines.len()).find(|&j| lines[j].trim_end() == end) else {
            i += 1;
            continue;
        };
        let body = &lines[i + 1..end_index];
        let header_count = body.iter().take_while(|l| l.contains(':')).count();
        let encoded: String = body[header_count..]
            .iter()
            .flat_map(|l| l.chars())
            .filter(|c| !c.is_whitespace())
            .collect();
        match base64::engine::general_purpose::STANDARD.decode(encoded) {
            Ok(bytes) => {
                blocks.push(PemBlock {
                    type_: type_.to_owned(),
                    has_headers: header_count > 0,
                    bytes,
                });
                i = end_index + 1;
            }
            Err(_) => i += 1,
        }
    }
    blocks
}

/// Upstream's `ParseCSR` as far as the PEM layer goes: the first block must be a
/// `CERTIFICATE REQUEST`. (The DER structure and signature are not checked here.)
fn validate_csr_request(request: &[u8]) -> Result<(), String> {
    match pem_blocks(request).first() {
        Some(block) if block.type_ == "CERTIFICATE REQUEST" && !block.bytes.is_empty() => Ok(()),
        _ => Err("PEM block type must be CERTIFICATE REQUEST".to_owned()),
    }
}

/// Upstream's `validateCertificate` as far as the PEM layer goes.
fn validate_certificate(pem: &[u8]) -> Result<(), String> {
    if pem.is_empty() {
        return Ok(());
    }
    let blocks = pem_blocks(pem);
    for block in &blocks {
        if block.type_ != "CERTIFICATE" {
            return Err(format!(
                "only CERTIFICATE PEM blocks are allowed, found {:?}",
                block.type_
            ));
        }
        if block.has_headers {
            return Err("no PEM block headers are permitted".to_owned());
        }
        if block.bytes.is_empty() {
            return Err("found CERTIFICATE PEM block containing 0 certificates".to_owned());
        }
    }
    if blocks.is_empty() {
        return Err("must contain at least one CERTIFICATE PEM block".to_owned());
    }
    Ok(())
}

// Validation

/// Core's `ValidateSignerName`.
pub fn validate_signer_name(path: &Path, signer_name: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    if signer_name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let segments: Vec<&str> = signer_name.split('/').collect();
    let [domain, rest] = segments.as_slice() else {
        errs.push(FieldError::invalid(
            path,
            signer_name,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ));
        return errs;
    };
    if domain.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(FieldError::too_long(path, DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let domain_labels: Vec<&str> = domain.split('.').collect();
    for label in &domain_labels {
        let label_errs = is_dns1123_label(label);
        if !label_errs.is_empty() {
            for err in label_errs {
                errs.push(FieldError::invalid(
                    path,
                    *domain,
                    format!("validating label {label:?}: {err}"),
                ));
            }
            break;
        }
    }
    if domain_labels.len() < 2 {
        errs.push(FieldError::invalid(
            path,
            *domain,
            "should be a domain with at least two segments separated by dots",
        ));
    }
    for label in rest.split('.') {
        let label_errs = is_dns1123_subdomain(label);
        if !label_errs.is_empty() {
            for err in label_errs {
                errs.push(FieldError::invalid(
                    path,
                    *rest,
                    format!("validating label {label:?}: {err}"),
                ));
            }
            break;
        }
    }
    let max =
        DNS1123_SUBDOMAIN_MAX_LENGTH + (DNS1123_SUBDOMAIN_MAX_LENGTH + DNS1123_LABEL_MAX_LENGTH + 1) + 1;
    if signer_name.len() > max {
        errs.push(FieldError::too_long(path, max));
    }
    errs
}

/// Upstream's `certificateValidationOptions`.
#[derive(Clone, Copy, Default)]
struct Options {
    allow_setting_approval_conditions: bool,
    allow_setting_certificate: bool,
    allow_both_approved_and_denied: bool,
    allow_legacy_signer_name: bool,
    allow_duplicate_condition_types: bool,
    allow_empty_condition_type: bool,
    allow_arbitrary_certificate: bool,
    allow_unknown_usages: bool,
    allow_duplicate_usages: bool,
}

fn conditions(csr: &CertificateSigningRequest) -> &[CertificateSigningRequestCondition] {
    csr.status.as_ref().map_or(&[], |s| list_of(&s.conditions))
}

fn certificate(csr: &CertificateSigningRequest) -> &[u8] {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .map_or(&[], |c| c.0.as_slice())
}

fn has_duplicates<'a>(items: impl IntoIterator<Item = &'a str>) -> bool {
    let mut seen = BTreeSet::new();
    items.into_iter().any(|item| !seen.insert(item))
}

/// Upstream's `getValidationOptions`.
fn options(new: &CertificateSigningRequest, old: Option<&CertificateSigningRequest>) -> Options {
    let Some(old) = old else {
        return Options::default();
    };
    let old_conditions = conditions(old);
    let usages = list_of(&old.spec.usages);
    Options {
        allow_both_approved_and_denied: old_conditions.iter().any(|c| c.type_ == APPROVED)
            && old_conditions.iter().any(|c| c.type_ == DENIED),
        allow_legacy_signer_name: old.spec.signer_name == LEGACY_UNKNOWN_SIGNER_NAME,
        allow_duplicate_condition_types: has_duplicates(old_conditions.iter().map(|c| c.type_.as_str())),
        allow_empty_condition_type: old_conditions.iter().any(|c| c.type_.is_empty()),
        allow_arbitrary_certificate: certificate(new) == certificate(old)
            || validate_certificate(certificate(old)).is_err(),
        allow_unknown_usages: usages.iter().any(|u| !VALID_USAGES.contains(&u.as_str())),
        allow_duplicate_usages: has_duplicates(usages.iter().map(String::as_str)),
        ..Options::default()
    }
}

fn validate_conditions(csr: &CertificateSigningRequest, opts: Options) -> ErrorList {
    let path = Path::new("status").child("conditions");
    let mut errs = ErrorList::new();
    let mut seen = BTreeSet::new();
    let (mut has_approved, mut has_denied) = (false, false);
    for (i, condition) in conditions(csr).iter().enumerate() {
        if !opts.allow_empty_condition_type && condition.type_.is_empty() {
            errs.push(FieldError::required(&path.index(i).child("type"), ""));
        }
        let allowed: &[&str] = if [APPROVED, DENIED, FAILED].contains(&condition.type_.as_str()) {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if condition.status.is_empty() {
            errs.push(FieldError::required(&path.index(i).child("status"), ""));
        } else if !allowed.contains(&condition.status.as_str()) {
            errs.push(FieldError::not_supported(
                &path.index(i).child("status"),
                condition.status.as_str(),
                allowed,
            ));
        }
        if !opts.allow_both_approved_and_denied {
            let conflict = match condition.type_.as_str() {
                APPROVED => {
                    has_approved = true;
                    has_denied
                }
                DENIED => {
                    has_denied = true;
                    has_approved
                }
                _ => false,
            };
            if conflict {
                errs.push(FieldError::invalid(
                    &path,
                    condition.type_.as_str(),
                    "Approved and Denied conditions are mutually exclusive",
                ));
            }
        }
        if !opts.allow_duplicate_condition_types && !seen.insert(condition.type_.as_str()) {
            errs.push(FieldError::duplicate(
                &path.index(i).child("type"),
                condition.type_.as_str(),
            ));
        }
    }
    errs
}

fn validate_csr(csr: &CertificateSigningRequest, opts: Options) -> ErrorList {
    let mut errs = core_meta(&csr.metadata, false, |_, _| Vec::new());
    let spec_path = Path::new("spec");
    let spec = &csr.spec;
    if let Err(err) = validate_csr_request(&spec.request.0) {
        errs.push(FieldError::invalid(
            &spec_path.child("request"),
            BadValue::Str(base64::engine::general_purpose::STANDARD.encode(&spec.request.0)),
            err,
        ));
    }
    let usages = list_of(&spec.usages);
    let usages_path = spec_path.child("usages");
    if usages.is_empty() {
        errs.push(FieldError::required(&usages_path, ""));
    }
    if !opts.allow_unknown_usages {
        for (i, usage) in usages.iter().enumerate() {
            if !VALID_USAGES.contains(&usage.as_str()) {
                errs.push(FieldError::not_supported(
                    &usages_path.index(i),
                    usage.as_str(),
                    VALID_USAGES,
                ));
            }
        }
    }
    if !opts.allow_duplicate_usages {
        let mut seen = BTreeSet::new();
        for (i, usage) in usages.iter().enumerate() {
            if !seen.insert(usage.as_str()) {
                errs.push(FieldError::duplicate(&usages_path.index(i), usage.as_str()));
            }
        }
    }
    let signer_path = spec_path.child("signerName");
    if !opts.allow_legacy_signer_name && spec.signer_name == LEGACY_UNKNOWN_SIGNER_NAME {
        errs.push(FieldError::invalid(
            &signer_path,
            spec.signer_name.as_str(),
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        errs.extend(validate_signer_name(&signer_path, &spec.signer_name));
    }
    if let Some(seconds) = spec.expiration_seconds.filter(|s| *s < 600) {
        errs.push(FieldError::invalid(
            &spec_path.child("expirationSeconds"),
            seconds,
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    errs.extend(validate_conditions(csr, opts));
    if !opts.allow_arbitrary_certificate
        && let Err(err) = validate_certificate(certificate(csr))
    {
        errs.push(FieldError::invalid(
            &Path::new("status").child("certificate"),
            "<certificate data>",
            err,
        ));
    }
    errs
}

fn find_conditions<'a>(
    csr: &'a CertificateSigningRequest,
    type_: &str,
) -> Vec<&'a CertificateSigningRequestCondition> {
    conditions(csr).iter().filter(|c| c.type_ == type_).collect()
}

fn validate_csr_update(
    new: &CertificateSigningRequest,
    old: &CertificateSigningRequest,
    opts: Options,
) -> ErrorList {
    let mut errs = validate_csr(new, opts);
    let conditions_path = Path::new("status").child("conditions");
    for type_ in [APPROVED, DENIED, FAILED] {
        if find_conditions(new, type_).len() < find_conditions(old, type_).len() {
            errs.push(FieldError::forbidden(
                &conditions_path,
                format!("updates may not remove a condition of type {type_:?}"),
            ));
        }
    }
    if !opts.allow_setting_approval_conditions {
        for type_ in [APPROVED, DENIED] {
            let (old_conditions, new_conditions) = (find_conditions(old, type_), find_conditions(new, type_));
            if new_conditions.len() > old_conditions.len() {
                errs.push(FieldError::forbidden(
                    &conditions_path,
                    format!("updates may not add a condition of type {type_:?}"),
                ));
            } else if new_conditions.len() == old_conditions.len() && new_conditions != old_conditions {
                // Upstream appends a go-cmp diff of the conditions, whose layout is unstable.
                errs.push(FieldError::forbidden(
                    &conditions_path,
                    format!("updates may not modify a condition of type {type_:?}\n"),
                ));
            }
        }
    }
    if certificate(new) != certificate(old) {
        if !opts.allow_setting_certificate {
            errs.push(FieldError::forbidden(
                &Path::new("status").child("certificate"),
                "updates may not set certificate content",
            ));
        } else if !certificate(old).is_empty() {
            errs.push(FieldError::forbidden(
                &Path::new("status").child("certificate"),
                "updates may not modify existing certificate content",
            ));
        }
    }
    errs.extend(core_meta_update(&new.metadata, &old.metadata));
    errs
}

/// Upstream's `populateConditionTimestamps`: a missing `lastUpdateTime` becomes `now`, a
/// missing `lastTransitionTime` that of an old condition of the same type and status, or
/// `now`.
pub fn populate_condition_timestamps(
    new: &mut CertificateSigningRequest,
    old: &CertificateSigningRequest,
    now: &Time,
) {
    let old_conditions = conditions(old).to_vec();
    let Some(status) = &mut new.status else {
        return;
    };
    for condition in status.conditions.iter_mut().flatten() {
        if condition.last_update_time.is_none() {
            condition.last_update_time = Some(now.clone());
        }
        if condition.last_transition_time.is_none() {
            let previous = old_conditions
                .iter()
                .find(|o| {
                    o.type_ == condition.type_
                        && o.status == condition.status
                        && o.last_transition_time.is_some()
                })
                .and_then(|o| o.last_transition_time.clone());
            condition.last_transition_time = Some(previous.unwrap_or_else(|| now.clone()));
        }
    }
}

/// Upstream's `preserveConditionInstances`: when the number of conditions of `type_` is
/// unchanged, the old ones are kept as they were.
fn preserve_condition_instances(
    new: &mut CertificateSigningRequest,
    old: &CertificateSigningRequest,
    type_: &str,
) {
    let old_instances: Vec<CertificateSigningRequestCondition> =
        find_conditions(old, type_).into_iter().cloned().collect();
    let Some(new_conditions) = new.status.as_mut().and_then(|s| s.conditions.as_mut()) else {
        return;
    };
    let new_indices: Vec<usize> = new_conditions
        .iter()
        .enumerate()
        .filter(|(_, c)| c.type_ == type_)
        .map(|(i, _)| i)
        .collect();
    if new_indices.len() != old_instances.len() {
        return;
    }
    for (index, condition) in new_indices.into_iter().zip(old_instances) {
        new_conditions[index] = condition;
    }
}

/// Upstream's approval strategy `PrepareForUpdate`: only the conditions change (call
/// [`populate_condition_timestamps`] first).
pub fn prepare_for_approval_update(new: &mut CertificateSigningRequest, old: &CertificateSigningRequest) {
    let conditions = new.status.as_ref().and_then(|s| s.conditions.clone());
    new.spec = old.spec.clone();
    let mut status = old.status.clone().unwrap_or_default();
    status.conditions = conditions;
    new.status = Some(status);
}

/// Upstream's `ValidateCertificateSigningRequestApprovalUpdate`.
pub fn validate_approval_update(
    new: &CertificateSigningRequest,
    old: &CertificateSigningRequest,
) -> ErrorList {
    let opts = Options {
        allow_setting_approval_conditions: true,
        ..options(new, Some(old))
    };
    validate_csr_update(new, old, opts)
}

impl KindStrategy for CertificateSigningRequest {
    /// The status is a non-pointer struct upstream: always written.
    fn apply_defaults(&mut self) {
        self.status
            .get_or_insert_with(CertificateSigningRequestStatus::default);
    }

    fn prepare_for_create(&mut self) {
        let spec = &mut self.spec;
        spec.username = None;
        spec.uid = None;
        spec.groups = None;
        spec.extra = None;
        self.status = Some(CertificateSigningRequestStatus::default());
    }

    fn set_requesting_user(&mut self, user: &crate::strategy::RequestUser) {
        set_requesting_user(self, &user.name, &user.uid, &user.groups, &user.extra);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.spec = old.spec.clone();
        self.status.clone_from(&old.status);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec = old.spec.clone();
        preserve_condition_instances(self, old, APPROVED);
        preserve_condition_instances(self, old, DENIED);
    }

    fn validate(&self) -> ErrorList {
        validate_csr(self, options(self, None))
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        validate_csr_update(self, old, options(self, Some(old)))
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let opts = Options {
            allow_setting_certificate: true,
            ..options(self, Some(old))
        };
        validate_csr_update(self, old, opts)
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        vec![("spec.signerName", self.spec.signer_name.clone())]
    }

    const SELECTABLE_FIELDS: &'static [&'static str] = &["spec.signerName"];
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::kinds::api_shared::testing::{check_create_cases, create, fields, update, update_errors};
    use crate::strategy::UpdateTarget;

    const API: &str = "certificates.k8s.io/v1";
    const CSR_PEM: &str = "-----BEGIN CERTIFICATE REQUEST-----\nMIIBADCBqAIBADAWMRQwEgYDVQQDEwtleGFtcGxlLmNvbTBZMBMGByqGSM49AgEG\nCCqGSM49AwEHA0IABA==\n-----END CERTIFICATE REQUEST-----\n";
    const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBADCBqAIBADAW\n-----END CERTIFICATE-----\n";

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn csr() -> serde_json::Value {
        json!({"apiVersion": API, "kind": "CertificateSigningRequest", "metadata": {"name": "my-csr"},
            "spec": {"request": b64(CSR_PEM), "signerName": "kubernetes.io/kube-apiserver-client",
                "usages": ["client auth"], "username": "spoof", "groups": ["system:masters"]},
            "status": {"conditions": [{"type": "Approved", "status": "True"}]}})
    }

    #[test]
    fn create_clears_user_and_status() {
        let out = create(csr()).unwrap();
        assert_eq!(
            out,
            json!({"apiVersion": API, "kind": "CertificateSigningRequest", "metadata": {"name": "my-csr"},
                "spec": {"request": b64(CSR_PEM), "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]},
                "status": {}})
        );
        assert_eq!(
            fields(&out),
            [(
                "spec.signerName",
                "kubernetes.io/kube-apiserver-client".to_owned()
            )]
        );
        let mut typed: CertificateSigningRequest = serde_json::from_value(out).unwrap();
        set_requesting_user(&mut typed, "alice", "u-1", &["devs".to_owned()], &BTreeMap::new());
        assert_eq!(typed.spec.username.as_deref(), Some("alice"));
    }

    #[test]
    fn validation() {
        let mut bad = csr();
        bad["spec"] = json!({"request": b64("garbage"), "signerName": "example", "usages": ["client auth", "client auth", "flying"],
            "expirationSeconds": 60});
        let mut legacy = csr();
        legacy["spec"]["signerName"] = json!("kubernetes.io/legacy-unknown");
        let mut signer = csr();
        signer["spec"]["signerName"] = json!("Example.com/a/b");
        let mut signer2 = csr();
        signer2["spec"]["signerName"] = json!("Example/Signer");
        check_create_cases(&[
            (
                bad,
                vec![
                    "spec.request: Invalid value: \"Z2FyYmFnZQ==\": PEM block type must be CERTIFICATE REQUEST",
                    "spec.usages[2]: Unsupported value: \"flying\": supported values: \"any\", \"cert sign\", \"client auth\", \"code signing\", \"content commitment\", \"crl sign\", \"data encipherment\", \"decipher only\", \"digital signature\", \"email protection\", \"encipher only\", \"ipsec end system\", \"ipsec tunnel\", \"ipsec user\", \"key agreement\", \"key encipherment\", \"microsoft sgc\", \"netscape sgc\", \"ocsp signing\", \"s/mime\", \"server auth\", \"signing\", \"timestamping\"",
                    "spec.usages[1]: Duplicate value: \"client auth\"",
                    "spec.signerName: Invalid value: \"example\": must be a fully qualified domain and path of the form 'example.com/signer-name'",
                    "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)",
                ],
            ),
            (
                legacy,
                vec![
                    "spec.signerName: Invalid value: \"kubernetes.io/legacy-unknown\": the legacy signerName is not allowed via this API version",
                ],
            ),
            (
                signer,
                vec![
                    "spec.signerName: Invalid value: \"Example.com/a/b\": must be a fully qualified domain and path of the form 'example.com/signer-name'",
                ],
            ),
            (
                signer2,
                vec![
                    "spec.signerName: Invalid value: \"Example\": validating label \"Example\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                    "spec.signerName: Invalid value: \"Example\": should be a domain with at least two segments separated by dots",
                    "spec.signerName: Invalid value: \"Signer\": validating label \"Signer\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ],
            ),
        ]);
    }

    #[test]
    fn updates_and_subresources() {
        let mut old = create(csr()).unwrap();
        old["metadata"]["resourceVersion"] = json!("1");
        // The main resource keeps spec and status.
        let mut new = old.clone();
        new["spec"]["usages"] = json!(["server auth"]);
        new["status"] = json!({"certificate": b64(CERT_PEM)});
        let main = update(new, &old, UpdateTarget::Main).unwrap();
        assert_eq!(main["spec"]["usages"], json!(["client auth"]));
        assert_eq!(main["status"], json!({}));
        // /status may set the certificate, but not approve.
        let mut new = old.clone();
        new["status"] = json!({"certificate": b64(CERT_PEM)});
        let status = update(new, &old, UpdateTarget::Status).unwrap();
        assert_eq!(status["status"]["certificate"], json!(b64(CERT_PEM)));
        let mut new = old.clone();
        new["status"] = json!({"conditions": [{"type": "Approved", "status": "True", "lastUpdateTime": "2024-01-01T00:00:00Z"}]});
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Status),
            ["status.conditions: Forbidden: updates may not add a condition of type \"Approved\""]
        );
        let mut new = old.clone();
        new["status"] = json!({"certificate": b64("-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n")});
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Status),
            [
                "status.certificate: Invalid value: \"<certificate data>\": only CERTIFICATE PEM blocks are allowed, found \"KEY\""
            ]
        );
        // The approval strategy.
        let old_typed: CertificateSigningRequest = serde_json::from_value(old.clone()).unwrap();
        let mut approved = old_typed.clone();
        approved.spec.usages = Some(vec!["server auth".to_owned()]);
        approved.status = Some(CertificateSigningRequestStatus {
            conditions: Some(vec![
                CertificateSigningRequestCondition {
                    type_: "Approved".to_owned(),
                    status: "True".to_owned(),
                    ..Default::default()
                },
                CertificateSigningRequestCondition {
                    type_: "Denied".to_owned(),
                    status: "False".to_owned(),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        });
        let now: Time = serde_json::from_value(json!("2024-01-01T00:00:00Z")).unwrap();
        populate_condition_timestamps(&mut approved, &old_typed, &now);
        prepare_for_approval_update(&mut approved, &old_typed);
        assert_eq!(approved.spec.usages, Some(vec!["client auth".to_owned()]));
        assert_eq!(
            crate::kinds::api_shared::testing::rendered(&validate_approval_update(&approved, &old_typed)),
            [
                "status.conditions[1].status: Unsupported value: \"False\": supported values: \"True\"",
                "status.conditions: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive",
            ]
        );
        let first = &approved.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
        assert_eq!(first.last_update_time, Some(now.clone()));
        assert_eq!(first.last_transition_time, Some(now));
    }
}
