//! The strategies of networking.k8s.io/v1: Ingress, IngressClass, NetworkPolicy, IPAddress
//! and ServiceCIDR.
//!
//! Ports pkg/apis/networking/v1/defaults.go (network policy port protocol and policy types,
//! ingress class parameter scope), pkg/registry/networking/*/strategy.go (generation, the
//! Ingress and ServiceCIDR status subresources, warnings) and
//! pkg/apis/networking/validation/validation.go.

use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, IPAddress, IPAddressSpec, IPBlock, Ingress, IngressBackend,
    IngressClass, IngressClassParametersReference, IngressClassSpec, IngressLoadBalancerStatus, IngressRule,
    IngressSpec, IngressStatus, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
    ParentReference, ServiceBackendPort, ServiceCIDR, ServiceCIDRSpec, ServiceCIDRStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::api_shared::{
    bump_generation, core_meta, core_meta_update, differs, init_generation, reset_meta_for_status,
};
use super::core_shared::{json_str, json_str_list, list_of, str_of};
use crate::field::{BadValue, ErrorList, FieldError, Path, json_value};
use crate::strategy::KindStrategy;
use crate::validation::{
    FIELD_IMMUTABLE_ERROR_MSG, LabelSelectorValidationOptions, NetCidr, STRICT_IP_CIDR_VALIDATION,
    get_warnings_for_cidr, get_warnings_for_ip, is_dns1123_subdomain, is_domain_prefixed_path, is_valid_cidr,
    is_valid_cidr_for_legacy_field, is_valid_ip, is_valid_ip_for_legacy_field, is_valid_path_segment_name,
    is_valid_port_name, is_valid_port_num, is_wildcard_dns1123_subdomain, name_is_dns_label,
    name_is_dns_subdomain, name_is_dns1035_label, parse_cidr_sloppy, parse_ip_sloppy,
    validate_immutable_field, validate_label_selector, validate_namespace_name,
};

const ANNOTATION_INGRESS_CLASS: &str = "kubernetes.io/ingress.class";
const MAX_LEN_INGRESS_CLASS_CONTROLLER: usize = 250;
const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];
const PARAMETER_SCOPES: &[&str] = &["Cluster", "Namespace"];
const POLICY_TYPES: &[&str] = &["Ingress", "Egress"];

fn invalid_each(path: &Path, value: &str, messages: Vec<String>) -> ErrorList {
    messages
        .into_iter()
        .map(|msg| FieldError::invalid(path, value, msg))
        .collect()
}

// NetworkPolicy

#[derive(Clone, Default)]
struct PolicyOptions {
    allow_invalid_label_value_in_selector: bool,
    allow_cidrs_even_if_invalid: Vec<String>,
}

fn selector_options(opts: &PolicyOptions) -> LabelSelectorValidationOptions {
    LabelSelectorValidationOptions {
        allow_invalid_label_value_in_selector: opts.allow_invalid_label_value_in_selector,
        ..Default::default()
    }
}

fn validate_network_policy_port(port: &NetworkPolicyPort, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(protocol) = &port.protocol
        && !["TCP", "UDP", "SCTP"].contains(&protocol.as_str())
    {
        errs.push(FieldError::not_supported(
            &path.child("protocol"),
            protocol.as_str(),
            &["TCP", "UDP", "SCTP"],
        ));
    }
    match &port.port {
        Some(IntOrString::Int(number)) => {
            errs.extend(
                is_valid_port_num(i64::from(*number))
                    .into_iter()
                    .map(|msg| FieldError::invalid(&path.child("port"), *number, msg)),
            );
            if let Some(end) = port.end_port {
                if end < *number {
                    errs.push(FieldError::invalid(
                        &path.child("endPort"),
                        *number,
                        "must be greater than or equal to `port`",
                    ));
                }
                errs.extend(
                    is_valid_port_num(i64::from(end))
                        .into_iter()
                        .map(|msg| FieldError::invalid(&path.child("endPort"), end, msg)),
                );
            }
        }
        Some(IntOrString::String(name)) => {
            if let Some(end) = port.end_port {
                errs.push(FieldError::invalid(
                    &path.child("endPort"),
                    end,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            errs.extend(invalid_each(&path.child("port"), name, is_valid_port_name(name)));
        }
        None => {
            if let Some(end) = port.end_port {
                errs.push(FieldError::invalid(
                    &path.child("endPort"),
                    end,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
    errs
}

/// Whether `outer` contains the network address of `inner` (Go's `IPNet.Contains` for CIDRs
/// of one family).
fn cidr_contains(outer: &NetCidr, inner: &NetCidr) -> bool {
    if outer.bits != inner.bits {
        return false;
    }
    let offset = 128 - outer.bits;
    (0..outer.prefix).all(|i| {
        let bit = (offset + i) as usize;
        let mask = 0x80u8 >> (bit % 8);
        outer.network.0[bit / 8] & mask == inner.network.0[bit / 8] & mask
    })
}

fn validate_ip_block(block: &IPBlock, path: &Path, opts: &PolicyOptions) -> ErrorList {
    let cidr_path = path.child("cidr");
    if block.cidr.is_empty() {
        return vec![FieldError::required(&cidr_path, "")];
    }
    let mut errs = is_valid_cidr_for_legacy_field(
        &cidr_path,
        &block.cidr,
        STRICT_IP_CIDR_VALIDATION,
        &opts.allow_cidrs_even_if_invalid,
    );
    let Some(cidr) = parse_cidr_sloppy(&block.cidr) else {
        return errs;
    };
    for (i, except) in list_of(&block.except).iter().enumerate() {
        let except_path = path.child("except").index(i);
        errs.extend(is_valid_cidr_for_legacy_field(
            &except_path,
            except,
            STRICT_IP_CIDR_VALIDATION,
            &opts.allow_cidrs_even_if_invalid,
        ));
        let Some(except_cidr) = parse_cidr_sloppy(except) else {
            continue;
        };
        if !cidr_contains(&cidr, &except_cidr) || cidr.prefix >= except_cidr.prefix {
            errs.push(FieldError::invalid(
                &except_path,
                except.as_str(),
                "must be a strict subset of `cidr`",
            ));
        }
    }
    errs
}

fn validate_network_policy_peer(peer: &NetworkPolicyPeer, opts: &PolicyOptions, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut peers = 0;
    if let Some(selector) = &peer.pod_selector {
        peers += 1;
        errs.extend(validate_label_selector(
            Some(selector),
            selector_options(opts),
            &path.child("podSelector"),
        ));
    }
    if let Some(selector) = &peer.namespace_selector {
        peers += 1;
        errs.extend(validate_label_selector(
            Some(selector),
            selector_options(opts),
            &path.child("namespaceSelector"),
        ));
    }
    if let Some(block) = &peer.ip_block {
        peers += 1;
        errs.extend(validate_ip_block(block, &path.child("ipBlock"), opts));
    }
    if peers == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if peers > 1 && peer.ip_block.is_some() {
        errs.push(FieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
    errs
}

fn validate_network_policy_spec(spec: &NetworkPolicySpec, opts: &PolicyOptions) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = validate_label_selector(
        Some(&spec.pod_selector.clone().unwrap_or_default()),
        selector_options(opts),
        &path.child("podSelector"),
    );
    for (i, rule) in list_of(&spec.ingress).iter().enumerate() {
        let rule_path = path.child("ingress").index(i);
        for (j, port) in list_of(&rule.ports).iter().enumerate() {
            errs.extend(validate_network_policy_port(
                port,
                &rule_path.child("ports").index(j),
            ));
        }
        for (j, peer) in list_of(&rule.from).iter().enumerate() {
            errs.extend(validate_network_policy_peer(
                peer,
                opts,
                &rule_path.child("from").index(j),
            ));
        }
    }
    for (i, rule) in list_of(&spec.egress).iter().enumerate() {
        let rule_path = path.child("egress").index(i);
        for (j, port) in list_of(&rule.ports).iter().enumerate() {
            errs.extend(validate_network_policy_port(
                port,
                &rule_path.child("ports").index(j),
            ));
        }
        for (j, peer) in list_of(&rule.to).iter().enumerate() {
            errs.extend(validate_network_policy_peer(
                peer,
                opts,
                &rule_path.child("to").index(j),
            ));
        }
    }
    let types = list_of(&spec.policy_types);
    let types_path = path.child("policyTypes");
    if types.len() > POLICY_TYPES.len() {
        errs.push(FieldError::invalid(
            &types_path,
            json_value(&types),
            "may not specify more than two policyTypes",
        ));
        return errs;
    }
    for (i, policy_type) in types.iter().enumerate() {
        if !POLICY_TYPES.contains(&policy_type.as_str()) {
            errs.push(FieldError::not_supported(
                &types_path.index(i),
                policy_type.as_str(),
                POLICY_TYPES,
            ));
        }
    }
    errs
}

fn policy_spec(policy: &NetworkPolicy) -> NetworkPolicySpec {
    policy.spec.clone().unwrap_or_default()
}

fn validate_network_policy(policy: &NetworkPolicy, opts: &PolicyOptions) -> ErrorList {
    let mut errs = core_meta(&policy.metadata, true, name_is_dns_subdomain);
    errs.extend(validate_network_policy_spec(&policy_spec(policy), opts));
    errs
}

/// The ipBlocks of a policy's peers, with their paths.
fn ip_blocks(spec: &NetworkPolicySpec) -> Vec<(Path, &IPBlock)> {
    let mut blocks = Vec::new();
    for (i, rule) in list_of(&spec.ingress).iter().enumerate() {
        for (j, peer) in list_of(&rule.from).iter().enumerate() {
            if let Some(block) = &peer.ip_block {
                let path = Path::new("spec")
                    .child("ingress")
                    .index(i)
                    .child("from")
                    .index(j)
                    .child("ipBlock");
                blocks.push((path, block));
            }
        }
    }
    for (i, rule) in list_of(&spec.egress).iter().enumerate() {
        for (j, peer) in list_of(&rule.to).iter().enumerate() {
            if let Some(block) = &peer.ip_block {
                let path = Path::new("spec")
                    .child("egress")
                    .index(i)
                    .child("to")
                    .index(j)
                    .child("ipBlock");
                blocks.push((path, block));
            }
        }
    }
    blocks
}

impl KindStrategy for NetworkPolicy {
    /// The spec and its pod selector are non-pointer structs upstream: always written.
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(NetworkPolicySpec::default);
        spec.pod_selector.get_or_insert_with(LabelSelector::default);
        if list_of(&spec.policy_types).is_empty() {
            let mut types = vec!["Ingress".to_owned()];
            if !list_of(&spec.egress).is_empty() {
                types.push("Egress".to_owned());
            }
            spec.policy_types = Some(types);
        }
        let ports = spec
            .ingress
            .iter_mut()
            .flatten()
            .flat_map(|r| r.ports.iter_mut().flatten())
            .chain(
                spec.egress
                    .iter_mut()
                    .flatten()
                    .flat_map(|r| r.ports.iter_mut().flatten()),
            );
        for port in ports {
            if port.protocol.is_none() {
                port.protocol = Some("TCP".to_owned());
            }
        }
    }

    fn prepare_for_create(&mut self) {
        init_generation(&mut self.metadata);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        bump_generation(&mut self.metadata, &old.metadata, differs(&self.spec, &old.spec));
    }

    fn validate(&self) -> ErrorList {
        validate_network_policy(self, &PolicyOptions::default())
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let old_spec = policy_spec(old);
        let mut opts = PolicyOptions::default();
        if !validate_label_selector(
            Some(&old_spec.pod_selector.clone().unwrap_or_default()),
            LabelSelectorValidationOptions::default(),
            &Path::root(),
        )
        .is_empty()
        {
            opts.allow_invalid_label_value_in_selector = true;
        }
        let mut errs = validate_network_policy(self, &opts);
        opts.allow_cidrs_even_if_invalid = ip_blocks(&old_spec)
            .into_iter()
            .flat_map(|(_, block)| std::iter::once(block.cidr.clone()).chain(list_of(&block.except).to_vec()))
            .collect();
        errs.extend(core_meta_update(&self.metadata, &old.metadata));
        errs.extend(validate_network_policy_spec(&policy_spec(self), &opts));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        let spec = policy_spec(self);
        let mut warnings = Vec::new();
        for (path, block) in ip_blocks(&spec) {
            warnings.extend(get_warnings_for_cidr(&path.child("cidr"), &block.cidr));
            for (k, except) in list_of(&block.except).iter().enumerate() {
                warnings.extend(get_warnings_for_cidr(&path.child("except").index(k), except));
            }
        }
        warnings
    }
}

// Ingress

#[derive(Clone, Copy, Default)]
struct IngressOptions {
    allow_invalid_secret_name: bool,
    allow_invalid_wildcard_host_rule: bool,
    allow_relaxed_service_name_validation: bool,
}

fn validate_typed_local_object_reference(
    api_group: Option<&str>,
    kind: &str,
    name: &str,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(group) = api_group {
        errs.extend(invalid_each(
            &path.child("apiGroup"),
            group,
            is_dns1123_subdomain(group),
        ));
    }
    if kind.is_empty() {
        errs.push(FieldError::required(&path.child("kind"), ""));
    } else {
        errs.extend(invalid_each(
            &path.child("kind"),
            kind,
            is_valid_path_segment_name(kind),
        ));
    }
    if name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        errs.extend(invalid_each(
            &path.child("name"),
            name,
            is_valid_path_segment_name(name),
        ));
    }
    errs
}

fn validate_ingress_backend(backend: &IngressBackend, path: &Path, opts: IngressOptions) -> ErrorList {
    let mut errs = ErrorList::new();
    match (&backend.resource, &backend.service) {
        (Some(_), Some(_)) => {
            errs.push(FieldError::invalid(
                path,
                "",
                "cannot set both resource and service backends",
            ));
        }
        (Some(resource), None) => {
            errs.extend(validate_typed_local_object_reference(
                resource.api_group.as_deref(),
                &resource.kind,
                &resource.name,
                &path.child("resource"),
            ));
        }
        (None, Some(service)) => {
            let name_path = path.child("service").child("name");
            if service.name.is_empty() {
                errs.push(FieldError::required(&name_path, ""));
            } else {
                let messages = if opts.allow_relaxed_service_name_validation {
                    name_is_dns_label(&service.name, false)
                } else {
                    name_is_dns1035_label(&service.name, false)
                };
                errs.extend(invalid_each(&name_path, &service.name, messages));
            }
            let port = service.port.clone().unwrap_or_default();
            let name = str_of(&port.name);
            let number = port.number.unwrap_or_default();
            let port_path = path.child("service").child("port");
            if !name.is_empty() && number != 0 {
                errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                ));
            } else if !name.is_empty() {
                errs.extend(invalid_each(
                    &port_path.child("name"),
                    name,
                    is_valid_port_name(name),
                ));
            } else if number != 0 {
                errs.extend(
                    is_valid_port_num(i64::from(number))
                        .into_iter()
                        .map(|msg| FieldError::invalid(&port_path.child("number"), number, msg)),
                );
            } else {
                errs.push(FieldError::required(path, "port name or number is required"));
            }
        }
        (None, None) => {
            errs.push(FieldError::invalid(
                path,
                "",
                "resource or service backend is required",
            ));
        }
    }
    errs
}

fn validate_http_ingress_path(path: &HTTPIngressPath, field: &Path, opts: IngressOptions) -> ErrorList {
    let mut errs = ErrorList::new();
    if path.path_type.is_empty() {
        errs.push(FieldError::required(
            &field.child("pathType"),
            "pathType must be specified",
        ));
        return errs;
    }
    let value = str_of(&path.path);
    let path_field = field.child("path");
    match path.path_type.as_str() {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &path_field,
                    value,
                    "must be an absolute path",
                ));
            }
            if !value.is_empty() {
                for sequence in INVALID_PATH_SEQUENCES {
                    if value.contains(sequence) {
                        errs.push(FieldError::invalid(
                            &path_field,
                            value,
                            format!("must not contain '{sequence}'"),
                        ));
                    }
                }
                for suffix in INVALID_PATH_SUFFIXES {
                    if value.ends_with(suffix) {
                        errs.push(FieldError::invalid(
                            &path_field,
                            value,
                            format!("cannot end with '{suffix}'"),
                        ));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                errs.push(FieldError::invalid(
                    &path_field,
                    value,
                    "must be an absolute path",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &field.child("pathType"),
            other,
            PATH_TYPES,
        )),
    }
    errs.extend(validate_ingress_backend(
        &path.backend,
        &field.child("backend"),
        opts,
    ));
    errs
}

fn validate_ingress_rule_value(
    http: Option<&HTTPIngressRuleValue>,
    path: &Path,
    opts: IngressOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(http) = http else {
        return errs;
    };
    let http_path = path.child("http");
    if http.paths.is_empty() {
        errs.push(FieldError::required(&http_path.child("paths"), ""));
    }
    for (i, p) in http.paths.iter().enumerate() {
        errs.extend(validate_http_ingress_path(
            p,
            &http_path.child("paths").index(i),
            opts,
        ));
    }
    errs
}

fn validate_ingress_rules(rules: &[IngressRule], path: &Path, opts: IngressOptions) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, rule) in rules.iter().enumerate() {
        let host = str_of(&rule.host);
        let host_path = path.index(i).child("host");
        let mut wildcard = false;
        if !host.is_empty() {
            if parse_ip_sloppy(host).is_some() {
                errs.push(FieldError::invalid(
                    &host_path,
                    host,
                    "must be a DNS name, not an IP address",
                ));
            }
            if host.contains('*') {
                errs.extend(invalid_each(
                    &host_path,
                    host,
                    is_wildcard_dns1123_subdomain(host),
                ));
                wildcard = true;
            } else {
                errs.extend(invalid_each(&host_path, host, is_dns1123_subdomain(host)));
            }
        }
        if !wildcard || !opts.allow_invalid_wildcard_host_rule {
            errs.extend(validate_ingress_rule_value(
                rule.http.as_ref(),
                &path.index(i),
                opts,
            ));
        }
    }
    errs
}

fn tls_secret_name_errors(name: &str) -> Vec<String> {
    if name.is_empty() {
        return Vec::new();
    }
    name_is_dns_subdomain(name, false)
}

fn validate_ingress_spec(spec: &IngressSpec, opts: IngressOptions) -> ErrorList {
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    let rules = list_of(&spec.rules);
    if rules.is_empty() && spec.default_backend.is_none() {
        let value = match &spec.rules {
            None => BadValue::Plain("null".to_owned()),
            Some(_) => BadValue::Plain("[]".to_owned()),
        };
        errs.push(FieldError::invalid(
            &path,
            value,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(backend) = &spec.default_backend {
        errs.extend(validate_ingress_backend(
            backend,
            &path.child("defaultBackend"),
            opts,
        ));
    }
    if !rules.is_empty() {
        errs.extend(validate_ingress_rules(rules, &path.child("rules"), opts));
    }
    let tls_path = path.child("tls");
    for (i, tls) in list_of(&spec.tls).iter().enumerate() {
        for (j, host) in list_of(&tls.hosts).iter().enumerate() {
            let host_path = tls_path.index(i).child("hosts").index(j);
            if host.contains('*') {
                errs.extend(invalid_each(
                    &host_path,
                    host,
                    is_wildcard_dns1123_subdomain(host),
                ));
            } else {
                errs.extend(invalid_each(&host_path, host, is_dns1123_subdomain(host)));
            }
        }
        if !opts.allow_invalid_secret_name {
            let name = str_of(&tls.secret_name);
            errs.extend(invalid_each(
                &tls_path.index(i).child("secretName"),
                name,
                tls_secret_name_errors(name),
            ));
        }
    }
    if let Some(class) = &spec.ingress_class_name {
        errs.extend(invalid_each(
            &path.child("ingressClassName"),
            class,
            name_is_dns_subdomain(class, false),
        ));
    }
    errs
}

fn ingress_spec(ingress: &Ingress) -> IngressSpec {
    ingress.spec.clone().unwrap_or_default()
}

fn validate_ingress(ingress: &Ingress, opts: IngressOptions) -> ErrorList {
    let mut errs = core_meta(&ingress.metadata, true, name_is_dns_subdomain);
    errs.extend(validate_ingress_spec(&ingress_spec(ingress), opts));
    errs
}

fn ingress_class_annotation(ingress: &Ingress) -> Option<&str> {
    ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_INGRESS_CLASS))
        .map(String::as_str)
}

/// Whether an old service name passes as a DNS label but not as a DNS-1035 label.
fn relaxed_service_name(name: &str) -> bool {
    name_is_dns_label(name, false).is_empty() && !name_is_dns1035_label(name, false).is_empty()
}

fn update_options(old: &Ingress) -> IngressOptions {
    let spec = ingress_spec(old);
    let allow_invalid_secret_name = list_of(&spec.tls)
        .iter()
        .any(|tls| !tls_secret_name_errors(str_of(&tls.secret_name)).is_empty());
    let allow_invalid_wildcard_host_rule = list_of(&spec.rules).iter().any(|rule| {
        str_of(&rule.host).contains('*')
            && !validate_ingress_rule_value(rule.http.as_ref(), &Path::root(), IngressOptions::default())
                .is_empty()
    });
    let default_relaxed = spec
        .default_backend
        .as_ref()
        .and_then(|b| b.service.as_ref())
        .is_some_and(|s| relaxed_service_name(&s.name));
    let rules_relaxed = list_of(&spec.rules)
        .iter()
        .filter_map(|r| r.http.as_ref())
        .flat_map(|h| h.paths.iter())
        .filter_map(|p| p.backend.service.as_ref())
        .any(|s| relaxed_service_name(&s.name));
    IngressOptions {
        allow_invalid_secret_name,
        allow_invalid_wildcard_host_rule,
        allow_relaxed_service_name_validation: default_relaxed || rules_relaxed,
    }
}

fn validate_ingress_load_balancer_status(
    status: &IngressLoadBalancerStatus,
    old: &IngressLoadBalancerStatus,
    path: &Path,
) -> ErrorList {
    let existing: Vec<String> = list_of(&old.ingress)
        .iter()
        .map(|i| str_of(&i.ip).to_owned())
        .filter(|ip| !ip.is_empty())
        .collect();
    let mut errs = ErrorList::new();
    for (i, ingress) in list_of(&status.ingress).iter().enumerate() {
        let idx_path = path.child("ingress").index(i);
        let ip = str_of(&ingress.ip);
        if !ip.is_empty() {
            errs.extend(is_valid_ip_for_legacy_field(
                &idx_path.child("ip"),
                ip,
                STRICT_IP_CIDR_VALIDATION,
                &existing,
            ));
        }
        let hostname = str_of(&ingress.hostname);
        if !hostname.is_empty() {
            errs.extend(invalid_each(
                &idx_path.child("hostname"),
                hostname,
                is_dns1123_subdomain(hostname),
            ));
            if parse_ip_sloppy(hostname).is_some() {
                errs.push(FieldError::invalid(
                    &idx_path.child("hostname"),
                    hostname,
                    "must be a DNS name, not an IP address",
                ));
            }
        }
    }
    errs
}

fn load_balancer(ingress: &Ingress) -> IngressLoadBalancerStatus {
    ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.clone())
        .unwrap_or_default()
}

fn empty_ingress_status() -> IngressStatus {
    IngressStatus {
        load_balancer: Some(IngressLoadBalancerStatus::default()),
    }
}

fn default_backend_port(backend: &mut IngressBackend) {
    if let Some(service) = &mut backend.service {
        service.port.get_or_insert_with(ServiceBackendPort::default);
    }
}

impl KindStrategy for Ingress {
    /// The spec, the status and its load balancer, and service backend ports are non-pointer
    /// structs upstream: always written.
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(IngressSpec::default);
        if let Some(backend) = &mut spec.default_backend {
            default_backend_port(backend);
        }
        for path in spec
            .rules
            .iter_mut()
            .flatten()
            .filter_map(|r| r.http.as_mut())
            .flat_map(|h| h.paths.iter_mut())
        {
            default_backend_port(&mut path.backend);
        }
        let status = self.status.get_or_insert_with(empty_ingress_status);
        status
            .load_balancer
            .get_or_insert_with(IngressLoadBalancerStatus::default);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(empty_ingress_status());
        init_generation(&mut self.metadata);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
        bump_generation(&mut self.metadata, &old.metadata, differs(&self.spec, &old.spec));
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        let mut errs = validate_ingress(self, IngressOptions::default());
        if let (Some(annotation), Some(class)) = (
            ingress_class_annotation(self),
            self.spec.as_ref().and_then(|s| s.ingress_class_name.as_ref()),
        ) && annotation != class
        {
            errs.push(FieldError::invalid(
                &Path::new("annotations").child(ANNOTATION_INGRESS_CLASS),
                annotation,
                "must match `ingressClassName` when both are specified",
            ));
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = core_meta_update(&self.metadata, &old.metadata);
        errs.extend(validate_ingress(self, update_options(old)));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let mut errs = core_meta_update(&self.metadata, &old.metadata);
        errs.extend(validate_ingress_load_balancer_status(
            &load_balancer(self),
            &load_balancer(old),
            &Path::new("status").child("loadBalancer"),
        ));
        errs
    }

    /// Upstream warns about the class annotation on create and about load balancer IPs on
    /// status updates; warnings here see only the object, so both are reported whenever they
    /// apply.
    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let class_name = self.spec.as_ref().and_then(|s| s.ingress_class_name.as_ref());
        if ingress_class_annotation(self).is_some() && class_name.is_none() {
            warnings.push(format!(
                "annotation {ANNOTATION_INGRESS_CLASS:?} is deprecated, please use 'spec.ingressClassName' instead"
            ));
        }
        let path = Path::new("status").child("loadBalancer").child("ingress");
        for (i, ingress) in list_of(&load_balancer(self).ingress).iter().enumerate() {
            let ip = str_of(&ingress.ip);
            if !ip.is_empty() {
                warnings.extend(get_warnings_for_ip(&path.index(i), ip));
            }
        }
        warnings
    }
}

// IngressClass

fn validate_ingress_class_parameters(params: &IngressClassParametersReference, path: &Path) -> ErrorList {
    let mut errs =
        validate_typed_local_object_reference(params.api_group.as_deref(), &params.kind, &params.name, path);
    let Some(scope) = &params.scope else {
        errs.push(FieldError::required(&path.child("scope"), ""));
        return errs;
    };
    if !PARAMETER_SCOPES.contains(&scope.as_str()) {
        errs.push(FieldError::not_supported(
            &path.child("scope"),
            scope.as_str(),
            PARAMETER_SCOPES,
        ));
        return errs;
    }
    let namespace_path = path.child("namespace");
    match (scope.as_str(), &params.namespace) {
        ("Namespace", None) => errs.push(FieldError::required(
            &namespace_path,
            "`parameters.scope` is set to 'Namespace'",
        )),
        ("Namespace", Some(namespace)) => {
            errs.extend(invalid_each(
                &namespace_path,
                namespace,
                validate_namespace_name(namespace, false),
            ));
        }
        ("Cluster", Some(_)) => errs.push(FieldError::forbidden(
            &namespace_path,
            "`parameters.scope` is set to 'Cluster'",
        )),
        _ => {}
    }
    errs
}

fn validate_ingress_class(class: &IngressClass) -> ErrorList {
    let mut errs = core_meta(&class.metadata, false, name_is_dns_subdomain);
    let spec = class.spec.clone().unwrap_or_default();
    let path = Path::new("spec");
    let controller = str_of(&spec.controller);
    if controller.len() > MAX_LEN_INGRESS_CLASS_CONTROLLER {
        errs.push(FieldError::too_long(
            &path.child("controller"),
            MAX_LEN_INGRESS_CLASS_CONTROLLER,
        ));
    }
    errs.extend(is_domain_prefixed_path(&path.child("controller"), controller));
    if let Some(params) = &spec.parameters {
        errs.extend(validate_ingress_class_parameters(
            params,
            &path.child("parameters"),
        ));
    }
    errs
}

impl KindStrategy for IngressClass {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(IngressClassSpec::default);
        if let Some(params) = &mut spec.parameters
            && params.scope.is_none()
        {
            params.scope = Some("Cluster".to_owned());
        }
    }

    fn prepare_for_create(&mut self) {
        init_generation(&mut self.metadata);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        bump_generation(&mut self.metadata, &old.metadata, differs(&self.spec, &old.spec));
    }

    fn validate(&self) -> ErrorList {
        validate_ingress_class(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = core_meta_update(&self.metadata, &old.metadata);
        let controller = |c: &IngressClass| {
            c.spec
                .as_ref()
                .and_then(|s| s.controller.clone())
                .unwrap_or_default()
        };
        errs.extend(validate_immutable_field(
            controller(self).as_str(),
            controller(old).as_str(),
            &Path::new("spec").child("controller"),
        ));
        errs.extend(validate_ingress_class(self));
        errs
    }
}

// IPAddress

/// Upstream's `ValidateIPAddressName`: the name is an IP address in canonical form.
fn validate_ip_address_name(name: &str, _prefix: bool) -> Vec<String> {
    is_valid_ip(&Path::root(), name)
        .into_iter()
        .map(|e| e.detail)
        .collect()
}

fn validate_parent_reference(parent: Option<&ParentReference>) -> ErrorList {
    let path = Path::new("spec").child("parentRef");
    let Some(parent) = parent else {
        return vec![FieldError::required(&path, "")];
    };
    let mut errs = ErrorList::new();
    let group = str_of(&parent.group);
    if !group.is_empty() {
        errs.extend(invalid_each(
            &path.child("group"),
            group,
            is_dns1123_subdomain(group),
        ));
    }
    for (field, value) in [("resource", &parent.resource), ("name", &parent.name)] {
        if value.is_empty() {
            errs.push(FieldError::required(&path.child(field), ""));
        } else {
            errs.extend(invalid_each(
                &path.child(field),
                value,
                is_valid_path_segment_name(value),
            ));
        }
    }
    let namespace = str_of(&parent.namespace);
    if !namespace.is_empty() {
        errs.extend(invalid_each(
            &path.child("namespace"),
            namespace,
            is_valid_path_segment_name(namespace),
        ));
    }
    errs
}

/// A parent reference as upstream's error renders the internal Go struct (no JSON tags).
fn parent_reference_value(parent: Option<&ParentReference>) -> BadValue {
    let Some(parent) = parent else {
        return BadValue::Plain("null".to_owned());
    };
    BadValue::Plain(format!(
        "{{\"Group\":{},\"Resource\":{},\"Namespace\":{},\"Name\":{}}}",
        json_str(str_of(&parent.group)),
        json_str(&parent.resource),
        json_str(str_of(&parent.namespace)),
        json_str(&parent.name),
    ))
}

/// The parent reference of an address; a spec decoded without one has an empty reference,
/// which upstream's pointer would leave nil.
fn parent_ref(address: &IPAddress) -> Option<&ParentReference> {
    address
        .spec
        .as_ref()
        .map(|s| &s.parent_ref)
        .filter(|p| **p != ParentReference::default())
}

fn validate_ip_address(address: &IPAddress) -> ErrorList {
    let mut errs = core_meta(&address.metadata, false, validate_ip_address_name);
    errs.extend(validate_parent_reference(parent_ref(address)));
    errs
}

impl KindStrategy for IPAddress {
    fn apply_defaults(&mut self) {
        self.spec.get_or_insert_with(IPAddressSpec::default);
    }

    fn validate(&self) -> ErrorList {
        validate_ip_address(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_ip_address(self);
        errs.extend(core_meta_update(&self.metadata, &old.metadata));
        if parent_ref(self) != parent_ref(old) {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("parentRef"),
                parent_reference_value(parent_ref(self)),
                FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        errs
    }
}

// ServiceCIDR

/// Go's `IPFamilyOfCIDRString`: 4, 6, or 0 for an unparsable CIDR.
fn cidr_family(cidr: &str) -> u8 {
    match parse_cidr_sloppy(cidr) {
        Some(c) if c.ip.to_v4().is_some() => 4,
        Some(_) => 6,
        None => 0,
    }
}

fn validate_service_cidr_spec(spec: &ServiceCIDRSpec) -> ErrorList {
    let path = Path::new("spec").child("cidrs");
    let cidrs = list_of(&spec.cidrs);
    if cidrs.is_empty() {
        return vec![FieldError::required(&path, "at least one CIDR required")];
    }
    if cidrs.len() > 2 {
        return vec![FieldError::invalid(
            &path,
            BadValue::Plain(format!("{{\"CIDRs\":{}}}", json_str_list(&spec.cidrs))),
            "may only hold up to 2 values",
        )];
    }
    let mut errs = ErrorList::new();
    for (i, cidr) in cidrs.iter().enumerate() {
        errs.extend(is_valid_cidr(&path.index(i), cidr));
    }
    if cidrs.len() == 2 && cidr_family(&cidrs[0]) == cidr_family(&cidrs[1]) && cidr_family(&cidrs[0]) != 0 {
        errs.push(FieldError::invalid(
            &path,
            json_value(&cidrs),
            "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64",
        ));
    }
    errs
}

fn cidr_spec(cidr: &ServiceCIDR) -> ServiceCIDRSpec {
    cidr.spec.clone().unwrap_or_default()
}

impl KindStrategy for ServiceCIDR {
    /// The spec and status are non-pointer structs upstream: always written.
    fn apply_defaults(&mut self) {
        self.spec.get_or_insert_with(ServiceCIDRSpec::default);
        self.status.get_or_insert_with(ServiceCIDRStatus::default);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
        reset_meta_for_status(&mut self.metadata, &old.metadata);
    }

    fn validate(&self) -> ErrorList {
        let mut errs = core_meta(&self.metadata, false, name_is_dns_subdomain);
        errs.extend(validate_service_cidr_spec(&cidr_spec(self)));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = core_meta_update(&self.metadata, &old.metadata);
        let (new_spec, old_spec) = (cidr_spec(self), cidr_spec(old));
        let (new_cidrs, old_cidrs) = (list_of(&new_spec.cidrs), list_of(&old_spec.cidrs));
        let path = Path::new("spec").child("cidrs");
        if new_cidrs.len() == old_cidrs.len() {
            for (i, (new, old)) in new_cidrs.iter().zip(old_cidrs).enumerate() {
                if new != old {
                    errs.push(FieldError::invalid(
                        &path.index(i),
                        new.as_str(),
                        FIELD_IMMUTABLE_ERROR_MSG,
                    ));
                }
            }
        } else if old_cidrs.len() == 1 && new_cidrs.len() == 2 {
            if new_cidrs[0] != old_cidrs[0] {
                errs.push(FieldError::invalid(
                    &path.index(0),
                    new_cidrs[0].as_str(),
                    FIELD_IMMUTABLE_ERROR_MSG,
                ));
            }
            errs.extend(validate_service_cidr_spec(&new_spec));
        } else {
            let value = match &new_spec.cidrs {
                None => BadValue::Plain("null".to_owned()),
                Some(cidrs) => json_value(cidrs),
            };
            errs.push(FieldError::invalid(&path, value, FIELD_IMMUTABLE_ERROR_MSG));
        }
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        core_meta_update(&self.metadata, &old.metadata)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::api_shared::testing::{check_create_cases, create, update, update_errors, warnings};
    use crate::strategy::UpdateTarget;

    const API: &str = "networking.k8s.io/v1";

    #[test]
    fn ingress_defaults_and_status() {
        let ing = json!({"apiVersion": API, "kind": "Ingress", "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"rules": [{"host": "example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
            ]}}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}});
        let out = create(ing).unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": API, "kind": "Ingress",
                "metadata": {"name": "web", "namespace": "ns", "generation": 1},
                "spec": {"rules": [{"host": "example.com", "http": {"paths": [
                    {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
                ]}}]},
                "status": {"loadBalancer": {}}
            })
        );
        let mut old = out;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["status"]["loadBalancer"] = json!({"ingress": [{"ip": "1.2.3.4"}]});
        let main = update(new.clone(), &old, UpdateTarget::Main).unwrap();
        assert_eq!(main["status"], json!({"loadBalancer": {}}));
        assert_eq!(main["metadata"]["generation"], json!(1));
        new["spec"]["rules"][0]["host"] = json!("other.example.com");
        let status = update(new.clone(), &old, UpdateTarget::Status).unwrap();
        assert_eq!(
            status["status"]["loadBalancer"]["ingress"][0]["ip"],
            json!("1.2.3.4")
        );
        assert_eq!(status["spec"]["rules"][0]["host"], json!("example.com"));
        let main = update(new, &old, UpdateTarget::Main).unwrap();
        assert_eq!(main["metadata"]["generation"], json!(2));
        let mut bad = old.clone();
        bad["status"]["loadBalancer"] = json!({"ingress": [{"ip": "x", "hostname": "1.2.3.4"}]});
        assert_eq!(
            update_errors(bad, &old, UpdateTarget::Status),
            [
                "status.loadBalancer.ingress[0].ip: Invalid value: \"x\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "status.loadBalancer.ingress[0].hostname: Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address",
            ]
        );
    }

    #[test]
    fn ingress_validation() {
        let ing = |spec: serde_json::Value| {
            json!({"apiVersion": API, "kind": "Ingress", "metadata": {"name": "web", "namespace": "ns",
                "annotations": {"kubernetes.io/ingress.class": "nginx"}}, "spec": spec})
        };
        check_create_cases(&[
            (
                ing(json!({})),
                vec!["spec: Invalid value: null: either `defaultBackend` or `rules` must be specified"],
            ),
            (
                ing(
                    json!({"ingressClassName": "other", "defaultBackend": {"service": {"name": "Web", "port": {"name": "http", "number": 80}}},
                    "rules": [{"host": "1.2.3.4", "http": {"paths": [
                        {"path": "a//b", "pathType": "Exact", "backend": {}},
                        {"path": "/x", "pathType": "Regex", "backend": {"resource": {"kind": "", "name": "a/b"}, "service": {"name": "s"}}},
                        {"path": "/", "backend": {"service": {"name": "s"}}}
                    ]}}, {"host": "*.example.com", "http": {"paths": []}}],
                    "tls": [{"hosts": ["*.*.example.com"], "secretName": "Bad"}]}),
                ),
                vec![
                    "spec.defaultBackend.service.name: Invalid value: \"Web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                    "spec.defaultBackend: Invalid value: \"\": cannot set both port name & port number",
                    "spec.rules[0].host: Invalid value: \"1.2.3.4\": must be a DNS name, not an IP address",
                    "spec.rules[0].http.paths[0].path: Invalid value: \"a//b\": must be an absolute path",
                    "spec.rules[0].http.paths[0].path: Invalid value: \"a//b\": must not contain '//'",
                    "spec.rules[0].http.paths[0].backend: Invalid value: \"\": resource or service backend is required",
                    "spec.rules[0].http.paths[1].pathType: Unsupported value: \"Regex\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"",
                    "spec.rules[0].http.paths[1].backend: Invalid value: \"\": cannot set both resource and service backends",
                    "spec.rules[0].http.paths[2].pathType: Required value: pathType must be specified",
                    "spec.rules[1].http.paths: Required value",
                    "spec.tls[0].hosts[0]: Invalid value: \"*.*.example.com\": a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                    "spec.tls[0].secretName: Invalid value: \"Bad\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                    "annotations.kubernetes.io/ingress.class: Invalid value: \"nginx\": must match `ingressClassName` when both are specified",
                ],
            ),
        ]);
        let with_annotation =
            ing(json!({"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}));
        assert_eq!(
            warnings(&with_annotation),
            [
                "annotation \"kubernetes.io/ingress.class\" is deprecated, please use 'spec.ingressClassName' instead"
            ]
        );
    }

    #[test]
    fn ingress_class() {
        let out = create(json!({"apiVersion": API, "kind": "IngressClass", "metadata": {"name": "nginx"},
            "spec": {"controller": "k8s.io/ingress-nginx", "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}}))
        .unwrap();
        assert_eq!(
            out,
            json!({"apiVersion": API, "kind": "IngressClass", "metadata": {"name": "nginx", "generation": 1},
                "spec": {"controller": "k8s.io/ingress-nginx", "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p", "scope": "Cluster"}}})
        );
        let empty = create(json!({"apiVersion": API, "kind": "IngressClass", "metadata": {"name": "x"}, "spec": {"controller": "a.io/b"}}))
            .unwrap();
        assert_eq!(empty["spec"], json!({"controller": "a.io/b"}));
        check_create_cases(&[(
            json!({"apiVersion": API, "kind": "IngressClass", "metadata": {"name": "x"},
                "spec": {"controller": "nginx", "parameters": {"kind": "K", "name": "n", "scope": "Namespace"}}}),
            vec![
                "spec.controller: Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")",
                "spec.parameters.namespace: Required value: `parameters.scope` is set to 'Namespace'",
            ],
        )]);
        let mut old = out;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["spec"]["controller"] = json!("example.com/other");
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            ["spec.controller: Invalid value: \"example.com/other\": field is immutable"]
        );
    }

    #[test]
    fn network_policy() {
        let out = create(
            json!({"apiVersion": API, "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "ns"},
            "spec": {"egress": [{"ports": [{"port": 53}]}]}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"apiVersion": API, "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "ns", "generation": 1},
                "spec": {"egress": [{"ports": [{"port": 53, "protocol": "TCP"}]}], "podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
        );
        let minimal = create(json!({"apiVersion": API, "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "ns"}}))
            .unwrap();
        assert_eq!(
            minimal["spec"],
            json!({"podSelector": {}, "policyTypes": ["Ingress"]})
        );
        check_create_cases(&[(
            json!({"apiVersion": API, "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "ns"},
            "spec": {"policyTypes": ["Ingress", "Sideways"], "ingress": [{
                "ports": [{"port": 80, "endPort": 70, "protocol": "ICMP"}, {"port": "http", "endPort": 90}],
                "from": [{}, {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24", "10.0.0.0/8"]}, "podSelector": {}}]
            }]}}),
            vec![
                "spec.ingress[0].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"TCP\", \"UDP\", \"SCTP\"",
                "spec.ingress[0].ports[0].endPort: Invalid value: 80: must be greater than or equal to `port`",
                "spec.ingress[0].ports[1].endPort: Invalid value: 90: may not be specified when `port` is non-numeric",
                "spec.ingress[0].from[0]: Required value: must specify a peer",
                "spec.ingress[0].from[1].ipBlock.except[0]: Invalid value: \"10.1.0.0/24\": must be a strict subset of `cidr`",
                "spec.ingress[0].from[1].ipBlock.except[1]: Invalid value: \"10.0.0.0/8\": must be a strict subset of `cidr`",
                "spec.ingress[0].from[1]: Forbidden: may not specify both ipBlock and another peer",
                "spec.policyTypes[1]: Unsupported value: \"Sideways\": supported values: \"Ingress\", \"Egress\"",
            ],
        )]);
    }

    #[test]
    fn ip_address_and_service_cidr() {
        let out = create(json!({"apiVersion": API, "kind": "IPAddress", "metadata": {"name": "10.0.0.1"},
            "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}}}))
        .unwrap();
        assert_eq!(
            out["spec"],
            json!({"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}})
        );
        check_create_cases(&[(
            json!({"apiVersion": API, "kind": "IPAddress", "metadata": {"name": "010.0.0.1"}, "spec": {}}),
            vec![
                "metadata.name: Invalid value: \"010.0.0.1\": must not have leading 0s",
                "spec.parentRef: Required value",
            ],
        )]);
        let mut old = out;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["spec"]["parentRef"]["name"] = json!("other");
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            [
                "spec.parentRef: Invalid value: {\"Group\":\"\",\"Resource\":\"services\",\"Namespace\":\"default\",\"Name\":\"other\"}: field is immutable"
            ]
        );

        let cidr = create(json!({"apiVersion": API, "kind": "ServiceCIDR", "metadata": {"name": "extra"}, "spec": {"cidrs": ["10.96.0.0/16"]}}))
            .unwrap();
        assert_eq!(
            cidr,
            json!({"apiVersion": API, "kind": "ServiceCIDR", "metadata": {"name": "extra"}, "spec": {"cidrs": ["10.96.0.0/16"]}, "status": {}})
        );
        check_create_cases(&[
            (
                json!({"apiVersion": API, "kind": "ServiceCIDR", "metadata": {"name": "x"}, "spec": {"cidrs": ["10.0.0.0/8", "11.0.0.0/8"]}}),
                vec![
                    "spec.cidrs: Invalid value: [\"10.0.0.0/8\",\"11.0.0.0/8\"]: may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64",
                ],
            ),
            (
                json!({"apiVersion": API, "kind": "ServiceCIDR", "metadata": {"name": "x"}, "spec": {}}),
                vec!["spec.cidrs: Required value: at least one CIDR required"],
            ),
        ]);
        let mut old = cidr;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["spec"]["cidrs"] = json!(["10.96.0.0/16", "fd00::/108"]);
        assert!(update_errors(new, &old, UpdateTarget::Main).is_empty());
        let mut new = old.clone();
        new["spec"]["cidrs"] = json!(["10.97.0.0/16"]);
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            ["spec.cidrs[0]: Invalid value: \"10.97.0.0/16\": field is immutable"]
        );
    }
}
