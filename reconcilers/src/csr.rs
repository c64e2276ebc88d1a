//! The CertificateSigningRequest controllers of kube-controller-manager:
//! - approving (upstream's csrapproving): kubelet client CSRs
//!   (`kubernetes.io/kube-apiserver-client-kubelet`, `O=system:nodes`, `CN=system:node:NAME`,
//!   client usages only) are approved when a bootstrap token user asks for one (a node
//!   joining) or a node for its own name (a renewal): the permissions upstream checks with
//!   SubjectAccessReviews (`nodeclient`, `selfnodeclient`), granted as kubeadm and k3s grant
//!   them, since this server has no authorizer yet. Beyond upstream, kubelet serving CSRs of a
//!   node for its own name and its Node's addresses are approved too;
//! - signing (upstream's csrsigning): approved CSRs of the `kubernetes.io/kube-apiserver-client`,
//!   `kube-apiserver-client-kubelet` and `kubelet-serving` signers get a certificate from the
//!   cluster CA, valid for `spec.expirationSeconds` (at least 10 minutes) or a year, and no
//!   longer than the CA; requests the signer refuses get a `Failed` condition.
//!
//! They write only CSRs' `approval` and `status`.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError};

/// The approving controller's name in `--controllers`.
pub const APPROVING: &str = "certificatesigningrequest-approving-controller";
/// The signing controller's name in `--controllers`.
pub const SIGNING: &str = "certificatesigningrequest-signing-controller";

const KUBELET_CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";
const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";
const APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
/// Certificates last this long unless the request asks for less (`--cluster-signing-duration`).
const DEFAULT_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// Certificates start this long before they are signed, for clock skew (upstream's backdate).
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// The cluster CA that signs (PEM certificate and key).
#[derive(Clone, Default)]
pub struct SigningCa {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for SigningCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCa").finish_non_exhaustive()
    }
}

/// What a request asks for, read from its PEM.
#[derive(Debug)]
struct Request {
    params: rcgen::CertificateSigningRequestParams,
    common_name: String,
    organizations: Vec<String>,
    dns_names: Vec<String>,
    ips: Vec<std::net::IpAddr>,
    other_names: usize,
}

fn parse_request(pem: &[u8]) -> Result<Request, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "the request is not PEM".to_owned())?;
    let params = rcgen::CertificateSigningRequestParams::from_pem(text)
        .map_err(|err| format!("unable to parse csr: {err}"))?;
    let mut common_name = String::new();
    let mut organizations = Vec::new();
    for (kind, value) in params.params.distinguished_name.iter() {
        let value = match value {
            rcgen::DnValue::Utf8String(s) => s.clone(),
            rcgen::DnValue::PrintableString(s) => s.as_str().to_owned(),
            rcgen::DnValue::Ia5String(s) => s.as_str().to_owned(),
            other => format!("{other:?}"),
        };
        match kind {
            rcgen::DnType::CommonName => common_name = value,
            rcgen::DnType::OrganizationName => organizations.push(value),
            _ => {}
        }
    }
    let mut dns_names = Vec::new();
    let mut ips = Vec::new();
    let mut other_names = 0;
    for name in &params.params.subject_alt_names {
        match name {
            rcgen::SanType::DnsName(dns) => dns_names.push(dns.as_str().to_owned()),
            rcgen::SanType::IpAddress(ip) => ips.push(*ip),
            _ => other_names += 1,
        }
    }
    Ok(Request {
        params,
        common_name,
        organizations,
        dns_names,
        ips,
        other_names,
    })
}

fn usages(csr: &CertificateSigningRequest) -> Vec<String> {
    csr.spec.usages.clone().unwrap_or_default()
}

/// What kubelet client and serving requests share: a node's subject.
fn node_subject_problem(request: &Request) -> Option<String> {
    if request.organizations != ["system:nodes"] {
        return Some("subject organization is not system:nodes".to_owned());
    }
    if !request.common_name.starts_with("system:node:") {
        return Some("subject common name does not begin with system:node:".to_owned());
    }
    None
}

/// Usages among digital signature, key encipherment and `required`, which must be there.
fn usage_problem(usages: &[String], required: &str) -> Option<String> {
    let allowed = ["digital signature", "key encipherment", required];
    if let Some(bad) = usages.iter().find(|u| !allowed.contains(&u.as_str())) {
        return Some(format!("usage {bad:?} is not allowed"));
    }
    if !usages.iter().any(|u| u == required) {
        return Some(format!("missing required usages: {required}"));
    }
    None
}

/// Upstream's ValidateKubeletClientCSR, as an error message.
fn kubelet_client_problem(request: &Request, usages: &[String]) -> Option<String> {
    node_subject_problem(request)
        .or_else(|| {
            (!request.dns_names.is_empty() || !request.ips.is_empty() || request.other_names > 0)
                .then(|| "subject alternative names are not allowed".to_owned())
        })
        .or_else(|| usage_problem(usages, "client auth"))
}

/// Upstream's ValidateKubeletServingCSR, as an error message.
fn kubelet_serving_problem(request: &Request, usages: &[String]) -> Option<String> {
    node_subject_problem(request)
        .or_else(|| {
            (request.other_names > 0)
                .then(|| "only DNS and IP subject alternative names are allowed".to_owned())
        })
        .or_else(|| {
            (request.dns_names.is_empty() && request.ips.is_empty())
                .then(|| "DNS or IP subjectAltName is required".to_owned())
        })
        .or_else(|| usage_problem(usages, "server auth"))
}

fn condition(csr: &CertificateSigningRequest, kind: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| conditions.iter().any(|c| c.type_ == kind && c.status == "True"))
}

fn new_condition(kind: &str, reason: &str, message: &str) -> CertificateSigningRequestCondition {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    CertificateSigningRequestCondition {
        type_: kind.to_owned(),
        status: "True".to_owned(),
        reason: Some(reason.to_owned()),
        message: Some(message.to_owned()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// Runs the approving controller.
pub(crate) async fn run_approving(context: Arc<Context>, shutdown: CancellationToken) {
    let controller = Controller::new(
        Api::<CertificateSigningRequest>::all(context.client.clone()),
        watcher::Config::default(),
    );
    harness::run(APPROVING, controller, context, shutdown, |csr, context| {
        approve(csr, context)
    })
    .await;
}

/// Whether the CSR is denied, failed or already has its certificate: nothing more to do.
fn finished(csr: &CertificateSigningRequest) -> bool {
    condition(csr, "Denied")
        || condition(csr, "Failed")
        || csr
            .status
            .as_ref()
            .and_then(|s| s.certificate.as_ref())
            .is_some_and(|c| !c.0.is_empty())
}

async fn approve(
    csr: Arc<CertificateSigningRequest>,
    context: Arc<Context>,
) -> Result<Action, ReconcileError> {
    if ![KUBELET_CLIENT, KUBELET_SERVING].contains(&csr.spec.signer_name.as_str())
        || condition(&csr, "Approved")
        || finished(&csr)
    {
        return Ok(Action::await_change());
    }
    let Ok(request) = parse_request(&csr.spec.request.0) else {
        return Ok(Action::await_change());
    };
    let message = if csr.spec.signer_name == KUBELET_CLIENT {
        client_approval(&csr, &request)
    } else {
        serving_approval(&csr, &request, &context).await?
    };
    let Some(message) = message else {
        return Ok(Action::await_change());
    };
    let mut approved = (*csr).clone();
    approved
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(new_condition("Approved", "AutoApproved", message));
    Api::<CertificateSigningRequest>::all(context.client.clone())
        .replace_subresource("approval", &csr.name_any(), &PostParams::default(), &approved)
        .await?;
    Ok(Action::await_change())
}

/// A kubelet client CSR is approved for a bootstrap token user (a node joining) or a node
/// asking for its own name (a renewal).
fn client_approval(csr: &CertificateSigningRequest, request: &Request) -> Option<&'static str> {
    if kubelet_client_problem(request, &usages(csr)).is_some() {
        return None;
    }
    let username = csr.spec.username.as_deref().unwrap_or_default();
    let groups = csr.spec.groups.as_deref().unwrap_or_default();
    let bootstrapper = groups.iter().any(|g| g == crate::BOOTSTRAPPERS_GROUP);
    let renewal = groups.iter().any(|g| g == "system:nodes") && username == request.common_name;
    (bootstrapper || renewal)
        .then_some("Auto approving kubelet client certificate after SubjectAccessReview.")
}

/// Kubelet serving CSRs: approved when a node asks for its own name with subject alternative
/// names among its Node's host name and addresses. Upstream's approver leaves these to
/// cluster administrators or an external approver; `rudder agent` needs one to serve logs
/// and exec, and the Node object is what the API server dials anyway.
async fn serving_approval(
    csr: &CertificateSigningRequest,
    request: &Request,
    context: &Context,
) -> Result<Option<&'static str>, ReconcileError> {
    if kubelet_serving_problem(request, &usages(csr)).is_some() {
        return Ok(None);
    }
    let username = csr.spec.username.as_deref().unwrap_or_default();
    let is_node = csr.spec.groups.iter().flatten().any(|g| g == "system:nodes");
    let Some(node_name) = request.common_name.strip_prefix("system:node:") else {
        return Ok(None);
    };
    if !is_node || username != request.common_name {
        return Ok(None);
    }
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(context.client.clone());
    let Some(node) = nodes.get_opt(node_name).await? else {
        return Ok(None);
    };
    let addresses: Vec<String> = node
        .status
        .and_then(|s| s.addresses)
        .unwrap_or_default()
        .into_iter()
        .map(|a| a.address)
        .collect();
    let names_ok = request
        .dns_names
        .iter()
        .all(|dns| dns == node_name || addresses.contains(dns));
    let ips_ok = request.ips.iter().all(|ip| addresses.contains(&ip.to_string()));
    Ok((names_ok && ips_ok).then_some(
        "Auto approving the kubelet serving certificate of the node for its own names and addresses.",
    ))
}

/// Runs the signing controller (when the context has a CA).
pub(crate) async fn run_signing(context: Arc<Context>, shutdown: CancellationToken) {
    if context.signing_ca.is_none() {
        return;
    }
    let controller = Controller::new(
        Api::<CertificateSigningRequest>::all(context.client.clone()),
        watcher::Config::default(),
    );
    harness::run(SIGNING, controller, context, shutdown, |csr, context| {
        sign(csr, context)
    })
    .await;
}

async fn sign(csr: Arc<CertificateSigningRequest>, context: Arc<Context>) -> Result<Action, ReconcileError> {
    let Some(ca) = context.signing_ca.as_ref() else {
        return Ok(Action::await_change());
    };
    let signer = csr.spec.signer_name.as_str();
    if ![KUBELET_CLIENT, KUBELET_SERVING, APISERVER_CLIENT].contains(&signer)
        || !condition(&csr, "Approved")
        || condition(&csr, "Denied")
        || condition(&csr, "Failed")
        || csr
            .status
            .as_ref()
            .and_then(|s| s.certificate.as_ref())
            .is_some_and(|c| !c.0.is_empty())
    {
        return Ok(Action::await_change());
    }
    let usages = usages(&csr);
    let outcome = parse_request(&csr.spec.request.0).and_then(|request| {
        let problem = match signer {
            KUBELET_CLIENT => kubelet_client_problem(&request, &usages),
            KUBELET_SERVING => kubelet_serving_problem(&request, &usages),
            _ => (!usages.iter().any(|u| u == "client auth") || usages.iter().any(|u| u == "server auth"))
                .then(|| "invalid usage for client certificate".to_owned()),
        };
        match problem {
            Some(problem) => Err(problem),
            None => issue(request, &usages, csr.spec.expiration_seconds, ca),
        }
    });
    let mut updated = (*csr).clone();
    let status = updated.status.get_or_insert_with(Default::default);
    match outcome {
        Ok(pem) => status.certificate = Some(ByteString(pem.into_bytes())),
        Err(problem) => status.conditions.get_or_insert_with(Vec::new).push(new_condition(
            "Failed",
            "SignerValidationFailure",
            &problem,
        )),
    }
    Api::<CertificateSigningRequest>::all(context.client.clone())
        .replace_status(&csr.name_any(), &PostParams::default(), &updated)
        .await?;
    Ok(Action::await_change())
}

/// The certificate for `request`, PEM.
fn issue(
    request: Request,
    usages: &[String],
    expiration: Option<i32>,
    ca: &SigningCa,
) -> Result<String, String> {
    use rcgen::{ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose};
    let key = rcgen::KeyPair::from_pem(&ca.key_pem).map_err(|err| format!("the signing key: {err}"))?;
    let issuer =
        rcgen::Issuer::from_ca_cert_pem(&ca.cert_pem, key).map_err(|err| format!("the signing CA: {err}"))?;
    let ca_not_after = x509_not_after(&ca.cert_pem);
    let mut request = request.params;
    let now = time::OffsetDateTime::now_utc();
    let duration = expiration
        .and_then(|s| u64::try_from(s).ok())
        .map_or(DEFAULT_DURATION, |s| Duration::from_secs(s.max(600)));
    let mut not_after = now + duration;
    if let Some(limit) = ca_not_after
        && limit < not_after
    {
        not_after = limit;
    }
    let params = &mut request.params;
    params.not_before = now - BACKDATE;
    params.not_after = not_after;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = usages
        .iter()
        .filter_map(|u| match u.as_str() {
            "digital signature" => Some(KeyUsagePurpose::DigitalSignature),
            "key encipherment" => Some(KeyUsagePurpose::KeyEncipherment),
            _ => None,
        })
        .collect();
    params.extended_key_usages = usages
        .iter()
        .filter_map(|u| match u.as_str() {
            "client auth" => Some(ExtendedKeyUsagePurpose::ClientAuth),
            "server auth" => Some(ExtendedKeyUsagePurpose::ServerAuth),
            _ => None,
        })
        .collect();
    let mut serial = [0u8; 16];
    ring_fill(&mut serial)?;
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let certificate = request
        .signed_by(&issuer)
        .map_err(|err| format!("signing: {err}"))?;
    Ok(certificate.pem())
}

fn ring_fill(bytes: &mut [u8]) -> Result<(), String> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new()
        .fill(bytes)
        .map_err(|_| "no secure random source".to_owned())
}

/// The CA certificate's notAfter.
fn x509_not_after(pem: &str) -> Option<time::OffsetDateTime> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    let certificate = parsed.parse_x509().ok()?;
    Some(certificate.validity().not_after.to_datetime())
}
