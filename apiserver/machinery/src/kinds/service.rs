//! The strategies of Service and Endpoints.
//!
//! Ports `SetDefaults_Service` and `SetDefaults_Endpoints` (pkg/apis/core/v1/defaults.go),
//! pkg/registry/core/service/strategy.go (status reset, type-dependent field dropping on
//! update, selectable fields), the cluster-IP normalization and allocated-value patching of
//! pkg/registry/core/service/storage/storage.go (idempotent, so harmless when the allocating
//! store hook has already done them), pkg/registry/core/endpoint/strategy.go, pkg/api/service
//! warnings, and `ValidateService*`, `ValidateServiceClusterIPsRelatedFields`,
//! `ValidateLoadBalancerStatus` and `ValidateEndpoints*` of
//! pkg/apis/core/validation/validation.go.
//!
//! IP and node-port allocation belong to a store hook; validation accepts whatever it
//! allocated (`clusterIP`/`clusterIPs`, `ipFamilies`, `nodePort`, `healthCheckNodePort`).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    ClientIPConfig, EndpointAddress, EndpointPort, EndpointSubset, Endpoints, LoadBalancerStatus, Service,
    ServicePort, ServiceSpec, ServiceStatus, SessionAffinityConfig,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::core_shared::{json_str, list_of, meta_path, str_of};
use crate::field::{BadValue, ErrorList, FieldError, Path, json_value};
use crate::strategy::KindStrategy;
use crate::validation::{
    STRICT_IP_CIDR_VALIDATION, get_warnings_for_cidr, get_warnings_for_ip, is_dual_stack_ip_strings,
    is_ipv6_string, is_valid_cidr_for_legacy_field, is_valid_ip_for_legacy_field, is_valid_port_name,
    is_valid_port_num, name_errors, name_is_dns_subdomain, name_is_dns1035_label, parse_ip_sloppy,
    validate_dns1123_label, validate_dns1123_subdomain, validate_endpoint_ip, validate_labels,
    validate_object_meta, validate_object_meta_update, validate_qualified_name,
};

const TYPE_CLUSTER_IP: &str = "ClusterIP";
const TYPE_NODE_PORT: &str = "NodePort";
const TYPE_LOAD_BALANCER: &str = "LoadBalancer";
const TYPE_EXTERNAL_NAME: &str = "ExternalName";
const CLUSTER_IP_NONE: &str = "None";
const AFFINITY_NONE: &str = "None";
const AFFINITY_CLIENT_IP: &str = "ClientIP";
const POLICY_CLUSTER: &str = "Cluster";
const POLICY_LOCAL: &str = "Local";
const SINGLE_STACK: &str = "SingleStack";
const IPV4: &str = "IPv4";
const IPV6: &str = "IPv6";
/// The default timeout of ClientIP session affinity.
pub const DEFAULT_CLIENT_IP_AFFINITY_SECONDS: i32 = 10800;
const MAX_CLIENT_IP_AFFINITY_SECONDS: i32 = 86400;
const ANNOTATION_TOPOLOGY_AWARE_HINTS: &str = "service.kubernetes.io/topology-aware-hints";
const ANNOTATION_TOPOLOGY_MODE: &str = "service.kubernetes.io/topology-mode";
const ANNOTATION_LB_SOURCE_RANGES: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";
const SUPPORTED_PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const SUPPORTED_TYPES: &[&str] = &[
    TYPE_CLUSTER_IP,
    TYPE_EXTERNAL_NAME,
    TYPE_LOAD_BALANCER,
    TYPE_NODE_PORT,
];
const SUPPORTED_AFFINITIES: &[&str] = &[AFFINITY_CLIENT_IP, AFFINITY_NONE];
const SUPPORTED_TRAFFIC_POLICIES: &[&str] = &[POLICY_CLUSTER, POLICY_LOCAL];
const SUPPORTED_IP_FAMILIES: &[&str] = &[IPV4, IPV6];
const SUPPORTED_IP_FAMILY_POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", SINGLE_STACK];
const SUPPORTED_TRAFFIC_DISTRIBUTIONS: &[&str] = &["PreferClose", "PreferSameZone", "PreferSameNode"];
const SUPPORTED_IP_MODES: &[&str] = &["Proxy", "VIP"];
const ENDPOINTS_MANAGED_BY_LABEL: &str = "endpoints.kubernetes.io/managed-by";
const ENDPOINTS_CONTROLLER_NAME: &str = "endpoint-controller";

/// An empty string in an `omitempty` field is absent, as upstream's encoder writes it.
fn drop_empty(value: &mut Option<String>) {
    if value.as_deref() == Some("") {
        *value = None;
    }
}

fn spec(svc: &Service) -> ServiceSpecView<'_> {
    ServiceSpecView(svc.spec.as_ref())
}

/// Read access to a spec with Go's zero values for absent fields.
#[derive(Clone, Copy)]
struct ServiceSpecView<'a>(Option<&'a ServiceSpec>);

impl<'a> ServiceSpecView<'a> {
    fn type_(self) -> &'a str {
        self.0.map_or("", |s| str_of(&s.type_))
    }
    fn cluster_ip(self) -> &'a str {
        self.0.map_or("", |s| str_of(&s.cluster_ip))
    }
    fn cluster_ips(self) -> &'a [String] {
        self.0.map_or(&[], |s| list_of(&s.cluster_ips))
    }
    fn ip_families(self) -> &'a [String] {
        self.0.map_or(&[], |s| list_of(&s.ip_families))
    }
    fn ip_family_policy(self) -> Option<&'a str> {
        self.0.and_then(|s| s.ip_family_policy.as_deref())
    }
    fn ports(self) -> &'a [ServicePort] {
        self.0.map_or(&[], |s| list_of(&s.ports))
    }
    fn external_ips(self) -> &'a [String] {
        self.0.map_or(&[], |s| list_of(&s.external_ips))
    }
    fn external_traffic_policy(self) -> &'a str {
        self.0.map_or("", |s| str_of(&s.external_traffic_policy))
    }
    fn health_check_node_port(self) -> i32 {
        self.0.and_then(|s| s.health_check_node_port).unwrap_or_default()
    }
    fn load_balancer_class(self) -> Option<&'a str> {
        self.0.and_then(|s| s.load_balancer_class.as_deref())
    }
    fn session_affinity(self) -> &'a str {
        self.0.map_or("", |s| str_of(&s.session_affinity))
    }
}

fn node_port(port: &ServicePort) -> i32 {
    port.node_port.unwrap_or_default()
}

fn annotation<'a>(svc: &'a Service, key: &str) -> Option<&'a str> {
    svc.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// `ExternallyAccessible`: NodePort, LoadBalancer, or ClusterIP with external IPs.
fn externally_accessible(svc: &Service) -> bool {
    let s = spec(svc);
    matches!(s.type_(), TYPE_LOAD_BALANCER | TYPE_NODE_PORT)
        || (s.type_() == TYPE_CLUSTER_IP && !s.external_ips().is_empty())
}

/// `NeedsHealthCheck`: a LoadBalancer with the `Local` external traffic policy.
fn needs_health_check(svc: &Service) -> bool {
    let s = spec(svc);
    s.type_() == TYPE_LOAD_BALANCER && s.external_traffic_policy() == POLICY_LOCAL
}

fn is_headless(svc: &Service) -> bool {
    spec(svc).cluster_ips() == [CLUSTER_IP_NONE]
}

fn needs_cluster_ip(svc: &Service) -> bool {
    spec(svc).type_() != TYPE_EXTERNAL_NAME
}

fn needs_node_port(svc: &Service) -> bool {
    matches!(spec(svc).type_(), TYPE_NODE_PORT | TYPE_LOAD_BALANCER)
}

fn same_cluster_ips(old: &Service, new: &Service) -> bool {
    spec(old).cluster_ip() == spec(new).cluster_ip() && spec(old).cluster_ips() == spec(new).cluster_ips()
}

/// The storage's `normalizeClusterIPs`: keeps `clusterIP` and `clusterIPs` in step for clients
/// that set only one of them.
fn normalize_cluster_ips(new: &mut Service, old: Option<&Service>) {
    let Some(old) = old else {
        let spec = new.spec.get_or_insert_with(ServiceSpec::default);
        if !str_of(&spec.cluster_ip).is_empty() && list_of(&spec.cluster_ips).is_empty() {
            spec.cluster_ips = Some(vec![str_of(&spec.cluster_ip).to_owned()]);
        }
        return;
    };
    // The storage compares only the lists (the strategy's `sameClusterIPs` compares both).
    let same = spec(old).cluster_ips() == spec(new).cluster_ips();
    let (old_ip, old_ips) = (
        spec(old).cluster_ip().to_owned(),
        spec(old).cluster_ips().to_vec(),
    );
    let spec = new.spec.get_or_insert_with(ServiceSpec::default);
    if !old_ips.is_empty() && list_of(&spec.cluster_ips).is_empty() && old_ip == str_of(&spec.cluster_ip) {
        spec.cluster_ips = Some(old_ips);
    }
    let new_ip = str_of(&spec.cluster_ip).to_owned();
    if old_ip != new_ip {
        if !old_ip.is_empty() && new_ip.is_empty() {
            if same {
                spec.cluster_ips = None;
            }
        } else if same {
            spec.cluster_ips = Some(vec![new_ip]);
        }
    }
}

/// The storage's `patchAllocatedValues`: allocated values a client left out of an update
/// (cluster IPs, node ports, the health-check node port) are kept.
fn patch_allocated_values(new: &mut Service, old: &Service) {
    if needs_cluster_ip(old) && needs_cluster_ip(new) {
        let old_has_ips = !spec(old).cluster_ips().is_empty();
        let spec = new.spec.get_or_insert_with(ServiceSpec::default);
        if str_of(&spec.cluster_ip).is_empty() {
            spec.cluster_ip = old.spec.as_ref().and_then(|s| s.cluster_ip.clone());
        }
        if list_of(&spec.cluster_ips).is_empty() && old_has_ips {
            spec.cluster_ips = old.spec.as_ref().and_then(|s| s.cluster_ips.clone());
        }
    }
    if needs_node_port(old) && needs_node_port(new) {
        let used_by = |svc: &Service| -> BTreeSet<i32> {
            spec(svc)
                .ports()
                .iter()
                .map(node_port)
                .filter(|p| *p != 0)
                .collect()
        };
        let used: BTreeSet<i32> = used_by(old).intersection(&used_by(new)).copied().collect();
        let by_name: BTreeMap<&str, i32> = spec(old)
            .ports()
            .iter()
            .map(|p| (str_of(&p.name), node_port(p)))
            .collect();
        if let Some(ports) = new.spec.as_mut().and_then(|s| s.ports.as_mut()) {
            for port in ports {
                if node_port(port) == 0 {
                    let old_value = by_name.get(str_of(&port.name)).copied().unwrap_or_default();
                    if !used.contains(&old_value) && old_value != 0 {
                        port.node_port = Some(old_value);
                    }
                }
            }
        }
    }
    if needs_health_check(old)
        && needs_health_check(new)
        && spec(new).health_check_node_port() == 0
        && let Some(spec) = new.spec.as_mut()
    {
        spec.health_check_node_port = old.spec.as_ref().and_then(|s| s.health_check_node_port);
    }
}

/// The strategy's `dropTypeDependentFields`: fields the old type needed and the new one does
/// not are cleared when the client left them as they were.
fn drop_type_dependent_fields(new: &mut Service, old: &Service) {
    let same_ips = same_cluster_ips(old, new);
    let same_families = spec(old).ip_families() == spec(new).ip_families();
    let same_policy =
        spec(old).ip_family_policy().unwrap_or_default() == spec(new).ip_family_policy().unwrap_or_default();
    let old_ports: BTreeSet<i32> = spec(old)
        .ports()
        .iter()
        .map(node_port)
        .filter(|p| *p != 0)
        .collect();
    let new_ports: BTreeSet<i32> = spec(new)
        .ports()
        .iter()
        .map(node_port)
        .filter(|p| *p != 0)
        .collect();
    let same_node_ports = new_ports.is_subset(&old_ports);
    let drop_ips = needs_cluster_ip(old) && !needs_cluster_ip(new);
    let drop_node_ports = needs_node_port(old) && !needs_node_port(new) && same_node_ports;
    let drop_hc = needs_health_check(old)
        && !needs_health_check(new)
        && spec(old).health_check_node_port() == spec(new).health_check_node_port();
    let old_lb = spec(old).type_() == TYPE_LOAD_BALANCER;
    let new_lb = spec(new).type_() == TYPE_LOAD_BALANCER;
    let drop_class = old_lb && !new_lb && spec(old).load_balancer_class() == spec(new).load_balancer_class();
    let drop_etp = externally_accessible(old)
        && !externally_accessible(new)
        && spec(old).external_traffic_policy() == spec(new).external_traffic_policy();
    let old_alloc = old
        .spec
        .as_ref()
        .and_then(|s| s.allocate_load_balancer_node_ports);
    let spec = new.spec.get_or_insert_with(ServiceSpec::default);
    if drop_ips {
        if same_ips {
            spec.cluster_ip = None;
            spec.cluster_ips = None;
        }
        if same_families {
            spec.ip_families = None;
        }
        if same_policy {
            spec.ip_family_policy = None;
        }
    }
    if drop_node_ports {
        for port in spec.ports.iter_mut().flatten() {
            port.node_port = None;
        }
    }
    if drop_hc {
        spec.health_check_node_port = None;
    }
    if old_lb
        && !new_lb
        && let (Some(new_alloc), Some(old_alloc)) = (spec.allocate_load_balancer_node_ports, old_alloc)
        && new_alloc == old_alloc
    {
        spec.allocate_load_balancer_node_ports = None;
    }
    if drop_class {
        spec.load_balancer_class = None;
    }
    if drop_etp {
        spec.external_traffic_policy = None;
    }
    if !new_lb {
        new.status = Some(empty_service_status());
    }
}

fn empty_service_status() -> ServiceStatus {
    ServiceStatus {
        load_balancer: Some(LoadBalancerStatus::default()),
        ..Default::default()
    }
}

/// A service port as Go's JSON encoder writes the internal type (upstream renders the
/// duplicate `(protocol, port)` key that way).
fn internal_port_key_json(protocol: &str, port: i32) -> String {
    format!(
        "{{\"Name\":\"\",\"Protocol\":{},\"AppProtocol\":null,\"Port\":{port},\"TargetPort\":0,\"NodePort\":0}}",
        json_str(protocol)
    )
}

fn validate_port_num_or_name(port: &IntOrString, path: &Path) -> ErrorList {
    match port {
        IntOrString::Int(n) => is_valid_port_num(i64::from(*n))
            .into_iter()
            .map(|msg| FieldError::invalid(path, *n, msg))
            .collect(),
        IntOrString::String(s) => is_valid_port_name(s)
            .into_iter()
            .map(|msg| FieldError::invalid(path, s.as_str(), msg))
            .collect(),
    }
}

fn validate_protocol(protocol: &str, path: &Path) -> ErrorList {
    if protocol.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    if !SUPPORTED_PROTOCOLS.contains(&protocol) {
        return vec![FieldError::not_supported(path, protocol, SUPPORTED_PROTOCOLS)];
    }
    Vec::new()
}

fn validate_service_port(
    port: &ServicePort,
    require_name: bool,
    names: &mut BTreeSet<String>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = str_of(&port.name);
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(validate_dns1123_label(name, &path.child("name")));
        if !names.insert(name.to_owned()) {
            errs.push(FieldError::duplicate(&path.child("name"), name));
        }
    }
    for msg in is_valid_port_num(i64::from(port.port)) {
        errs.push(FieldError::invalid(&path.child("port"), port.port, msg));
    }
    errs.extend(validate_protocol(str_of(&port.protocol), &path.child("protocol")));
    let target = port.target_port.clone().unwrap_or(IntOrString::Int(0));
    errs.extend(validate_port_num_or_name(&target, &path.child("targetPort")));
    if let Some(app_protocol) = &port.app_protocol {
        errs.extend(validate_qualified_name(app_protocol, &path.child("appProtocol")));
    }
    errs
}

fn validate_client_ip_affinity_config(config: Option<&SessionAffinityConfig>, path: &Path) -> ErrorList {
    let detail = format!("when session affinity type is {AFFINITY_CLIENT_IP}");
    let Some(config) = config else {
        return vec![FieldError::required(path, detail)];
    };
    let Some(client_ip) = &config.client_ip else {
        return vec![FieldError::required(&path.child("clientIP"), detail)];
    };
    let timeout_path = path.child("clientIP").child("timeoutSeconds");
    let Some(timeout) = client_ip.timeout_seconds else {
        return vec![FieldError::required(&timeout_path, detail)];
    };
    if timeout <= 0 || timeout > MAX_CLIENT_IP_AFFINITY_SECONDS {
        return vec![FieldError::invalid(
            &timeout_path,
            timeout,
            format!("must be greater than 0 and less than {MAX_CLIENT_IP_AFFINITY_SECONDS}"),
        )];
    }
    Vec::new()
}

/// Upstream's `ValidateServiceClusterIPsRelatedFields`: `clusterIP` and `clusterIPs` in step,
/// valid and dual-stack, families and policy supported and matching the IPs. Exported for the
/// allocating store hook, which runs it before allocating as upstream's allocator does.
pub fn validate_service_cluster_ips_related_fields(svc: &Service, old: Option<&Service>) -> ErrorList {
    let s = spec(svc);
    if s.type_() == TYPE_EXTERNAL_NAME {
        return Vec::new();
    }
    let mut errs = ErrorList::new();
    let ips_path = Path::new("spec").child("clusterIPs");
    let families_path = Path::new("spec").child("ipFamilies");
    let ips = s.cluster_ips();
    if !s.cluster_ip().is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required(&ips_path, ""));
        } else if ips[0] != s.cluster_ip() {
            errs.push(FieldError::invalid(
                &ips_path,
                json_value(&ips),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            json_value(&ips),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = BTreeSet::new();
    for (i, family) in s.ip_families().iter().enumerate() {
        if !SUPPORTED_IP_FAMILIES.contains(&family.as_str()) {
            errs.push(FieldError::not_supported(
                &families_path.index(i),
                family.as_str(),
                SUPPORTED_IP_FAMILIES,
            ));
        }
        if !seen.insert(family.as_str()) {
            errs.push(FieldError::duplicate(&families_path.index(i), family.as_str()));
        }
    }
    if let Some(policy) = s.ip_family_policy()
        && !SUPPORTED_IP_FAMILY_POLICIES.contains(&policy)
    {
        errs.push(FieldError::not_supported(
            &Path::new("spec").child("ipFamilyPolicy"),
            policy,
            SUPPORTED_IP_FAMILY_POLICIES,
        ));
    }
    let existing: Vec<String> = old.map(|o| spec(o).cluster_ips().to_vec()).unwrap_or_default();
    let mut invalid_ips = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == CLUSTER_IP_NONE {
            if ips.len() > 1 {
                invalid_ips = true;
                errs.push(FieldError::invalid(
                    &ips_path,
                    json_value(&ips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let ip_errs =
            is_valid_ip_for_legacy_field(&ips_path.index(i), ip, STRICT_IP_CIDR_VALIDATION, &existing);
        invalid_ips |= !ip_errs.is_empty();
        errs.extend(ip_errs);
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            json_value(&ips),
            "may only hold up to 2 values",
        ));
    }
    if invalid_ips {
        return errs;
    }
    if ips.len() > 1 && is_dual_stack_ip_strings(ips) != Some(true) {
        errs.push(FieldError::invalid(
            &ips_path,
            json_value(&ips),
            "may specify no more than one IP for each IP family",
        ));
    }
    if !is_headless(svc) && !ips.is_empty() {
        for (i, (ip, family)) in ips.iter().zip(s.ip_families()).enumerate() {
            if family == IPV4 && is_ipv6_string(ip) {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if family == IPV6 && !is_ipv6_string(ip) {
                errs.push(FieldError::invalid(
                    &ips_path.index(i),
                    ip.as_str(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
    errs
}

fn validate_load_balancer_class(old: Option<&Service>, svc: &Service) -> ErrorList {
    let mut errs = ErrorList::new();
    let path = Path::new("spec").child("loadBalancerClass");
    let class = spec(svc).load_balancer_class();
    if let Some(old) = old
        && spec(old).type_() == TYPE_LOAD_BALANCER
        && spec(svc).type_() == TYPE_LOAD_BALANCER
        && spec(old).load_balancer_class() != class
    {
        errs.push(FieldError::invalid(
            &path,
            json_value(&class),
            "may not change once set",
        ));
    }
    match class {
        Some(class) if spec(svc).type_() == TYPE_LOAD_BALANCER => {
            errs.extend(validate_qualified_name(class, &path));
        }
        Some(_) => errs.push(FieldError::forbidden(
            &path,
            "may only be used when `type` is 'LoadBalancer'",
        )),
        None => {}
    }
    errs
}

fn validate_external_traffic_policy(svc: &Service) -> ErrorList {
    let mut errs = ErrorList::new();
    let path = Path::new("spec");
    let policy = spec(svc).external_traffic_policy();
    if !externally_accessible(svc) {
        if !policy.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("externalTrafficPolicy"),
                policy,
                "may only be set for externally-accessible services",
            ));
        }
    } else if policy.is_empty() {
        errs.push(FieldError::required(&path.child("externalTrafficPolicy"), ""));
    } else if !SUPPORTED_TRAFFIC_POLICIES.contains(&policy) {
        errs.push(FieldError::not_supported(
            &path.child("externalTrafficPolicy"),
            policy,
            SUPPORTED_TRAFFIC_POLICIES,
        ));
    }
    let hc = spec(svc).health_check_node_port();
    let hc_path = path.child("healthCheckNodePort");
    if !needs_health_check(svc) {
        if hc != 0 {
            errs.push(FieldError::invalid(
                &hc_path,
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    } else if hc == 0 {
        errs.push(FieldError::required(&hc_path, ""));
    } else {
        for msg in is_valid_port_num(i64::from(hc)) {
            errs.push(FieldError::invalid(&hc_path, hc, msg));
        }
    }
    errs
}

fn validate_internal_traffic_policy(svc: &Service) -> ErrorList {
    let path = Path::new("spec").child("internalTrafficPolicy");
    match svc
        .spec
        .as_ref()
        .and_then(|s| s.internal_traffic_policy.as_deref())
    {
        None if matches!(
            spec(svc).type_(),
            TYPE_NODE_PORT | TYPE_LOAD_BALANCER | TYPE_CLUSTER_IP
        ) =>
        {
            vec![FieldError::required(&path, "")]
        }
        Some(policy) if !SUPPORTED_TRAFFIC_POLICIES.contains(&policy) => {
            vec![FieldError::not_supported(
                &path,
                policy,
                SUPPORTED_TRAFFIC_POLICIES,
            )]
        }
        _ => Vec::new(),
    }
}

/// Upstream's `validateService`, shared by create and update.
fn validate_service(svc: &Service, old: Option<&Service>) -> ErrorList {
    let mut errs = ErrorList::new();
    let s = spec(svc);
    let spec_path = Path::new("spec");
    if let (Some(mode), Some(hints)) = (
        annotation(svc, ANNOTATION_TOPOLOGY_MODE),
        annotation(svc, ANNOTATION_TOPOLOGY_AWARE_HINTS),
    ) && mode != hints
    {
        errs.push(FieldError::invalid(
            &meta_path().child("annotations").key(ANNOTATION_TOPOLOGY_MODE),
            mode,
            format!("must match annotations[{ANNOTATION_TOPOLOGY_AWARE_HINTS}] when both are specified"),
        ));
    }
    if s.ports().is_empty() && !is_headless(svc) && s.type_() != TYPE_EXTERNAL_NAME {
        errs.push(FieldError::required(&spec_path.child("ports"), ""));
    }
    let first_ip_path = spec_path.child("clusterIPs").index(0);
    match s.type_() {
        TYPE_LOAD_BALANCER if is_headless(svc) => errs.push(FieldError::invalid(
            &first_ip_path,
            CLUSTER_IP_NONE,
            "may not be set to 'None' for LoadBalancer services",
        )),
        TYPE_NODE_PORT if is_headless(svc) => errs.push(FieldError::invalid(
            &first_ip_path,
            CLUSTER_IP_NONE,
            "may not be set to 'None' for NodePort services",
        )),
        TYPE_EXTERNAL_NAME => {
            if !s.cluster_ips().is_empty() {
                errs.push(FieldError::forbidden(
                    &spec_path.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if !s.ip_families().is_empty() {
                errs.push(FieldError::forbidden(
                    &spec_path.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if s.ip_family_policy().is_some() {
                errs.push(FieldError::forbidden(
                    &spec_path.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let external_name = svc.spec.as_ref().map_or("", |s| str_of(&s.external_name));
            let cname = external_name.strip_suffix('.').unwrap_or(external_name);
            if cname.is_empty() {
                errs.push(FieldError::required(&spec_path.child("externalName"), ""));
            } else {
                errs.extend(validate_dns1123_subdomain(
                    cname,
                    &spec_path.child("externalName"),
                ));
            }
        }
        _ => {}
    }
    let ports_path = spec_path.child("ports");
    let mut names = BTreeSet::new();
    for (i, port) in s.ports().iter().enumerate() {
        errs.extend(validate_service_port(
            port,
            s.ports().len() > 1,
            &mut names,
            &ports_path.index(i),
        ));
    }
    if let Some(selector) = svc.spec.as_ref().and_then(|s| s.selector.as_ref()) {
        errs.extend(validate_labels(Some(selector), &spec_path.child("selector")));
    }
    let affinity = s.session_affinity();
    if affinity.is_empty() {
        errs.push(FieldError::required(&spec_path.child("sessionAffinity"), ""));
    } else if !SUPPORTED_AFFINITIES.contains(&affinity) {
        errs.push(FieldError::not_supported(
            &spec_path.child("sessionAffinity"),
            affinity,
            SUPPORTED_AFFINITIES,
        ));
    }
    let affinity_config = svc.spec.as_ref().and_then(|s| s.session_affinity_config.as_ref());
    if affinity == AFFINITY_CLIENT_IP {
        errs.extend(validate_client_ip_affinity_config(
            affinity_config,
            &spec_path.child("sessionAffinityConfig"),
        ));
    } else if affinity == AFFINITY_NONE && affinity_config.is_some() {
        errs.push(FieldError::forbidden(
            &spec_path.child("sessionAffinityConfig"),
            format!("must not be set when session affinity is {AFFINITY_NONE}"),
        ));
    }
    errs.extend(validate_service_cluster_ips_related_fields(svc, old));
    let existing_external: Vec<String> = old.map(|o| spec(o).external_ips().to_vec()).unwrap_or_default();
    for (i, ip) in s.external_ips().iter().enumerate() {
        let path = spec_path.child("externalIPs").index(i);
        let ip_errs = is_valid_ip_for_legacy_field(&path, ip, STRICT_IP_CIDR_VALIDATION, &existing_external);
        if ip_errs.is_empty() {
            errs.extend(validate_endpoint_ip(ip, &path));
        } else {
            errs.extend(ip_errs);
        }
    }
    if s.type_().is_empty() {
        errs.push(FieldError::required(&spec_path.child("type"), ""));
    } else if !SUPPORTED_TYPES.contains(&s.type_()) {
        errs.push(FieldError::not_supported(
            &spec_path.child("type"),
            s.type_(),
            SUPPORTED_TYPES,
        ));
    }
    if s.type_() == TYPE_CLUSTER_IP {
        for (i, port) in s.ports().iter().enumerate() {
            if node_port(port) != 0 {
                errs.push(FieldError::forbidden(
                    &ports_path.index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = BTreeSet::new();
    for (i, port) in s.ports().iter().enumerate() {
        if node_port(port) == 0 {
            continue;
        }
        if !node_ports.insert((str_of(&port.protocol), node_port(port))) {
            errs.push(FieldError::duplicate(
                &ports_path.index(i).child("nodePort"),
                node_port(port),
            ));
        }
    }
    let mut ports = BTreeSet::new();
    for (i, port) in s.ports().iter().enumerate() {
        let protocol = str_of(&port.protocol);
        if !ports.insert((protocol, port.port)) {
            errs.push(FieldError::duplicate(
                &ports_path.index(i),
                BadValue::Plain(internal_port_key_json(protocol, port.port)),
            ));
        }
    }
    let ranges = svc
        .spec
        .as_ref()
        .map_or(&[][..], |s| list_of(&s.load_balancer_source_ranges));
    if !ranges.is_empty() {
        // Upstream's path has a capital L.
        let path = spec_path.child("LoadBalancerSourceRanges");
        if s.type_() != TYPE_LOAD_BALANCER {
            errs.push(FieldError::forbidden(
                &path,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let existing: Vec<String> = old
            .and_then(|o| o.spec.as_ref())
            .map(|s| {
                list_of(&s.load_balancer_source_ranges)
                    .iter()
                    .map(|v| v.trim().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        for (i, value) in ranges.iter().enumerate() {
            errs.extend(is_valid_cidr_for_legacy_field(
                &path.index(i),
                value.trim(),
                STRICT_IP_CIDR_VALIDATION,
                &existing,
            ));
        }
    } else if let Some(value) = annotation(svc, ANNOTATION_LB_SOURCE_RANGES) {
        let path = meta_path().child("annotations").key(ANNOTATION_LB_SOURCE_RANGES);
        if s.type_() != TYPE_LOAD_BALANCER {
            errs.push(FieldError::forbidden(
                &path,
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        let changed = old.is_none_or(|o| annotation(o, ANNOTATION_LB_SOURCE_RANGES) != Some(value));
        let value = value.trim();
        if changed && !value.is_empty() {
            for cidr in value.split(',') {
                errs.extend(is_valid_cidr_for_legacy_field(
                    &path,
                    cidr.trim(),
                    STRICT_IP_CIDR_VALIDATION,
                    &[],
                ));
            }
        }
    }
    let allocate = svc
        .spec
        .as_ref()
        .and_then(|s| s.allocate_load_balancer_node_ports);
    if allocate.is_some() && s.type_() != TYPE_LOAD_BALANCER {
        errs.push(FieldError::forbidden(
            &spec_path.child("allocateLoadBalancerNodePorts"),
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if s.type_() == TYPE_LOAD_BALANCER && allocate.is_none() {
        // Upstream's path lacks the `spec.` prefix.
        errs.push(FieldError::required(
            &Path::new("allocateLoadBalancerNodePorts"),
            "",
        ));
    }
    errs.extend(validate_load_balancer_class(None, svc));
    errs.extend(validate_external_traffic_policy(svc));
    errs.extend(validate_internal_traffic_policy(svc));
    if let Some(distribution) = svc.spec.as_ref().and_then(|s| s.traffic_distribution.as_deref())
        && !SUPPORTED_TRAFFIC_DISTRIBUTIONS.contains(&distribution)
    {
        errs.push(FieldError::not_supported(
            &spec_path.child("trafficDistribution"),
            distribution,
            SUPPORTED_TRAFFIC_DISTRIBUTIONS,
        ));
    }
    errs
}

fn validate_upgrade_downgrade_cluster_ips(old: &Service, svc: &Service) -> ErrorList {
    let mut errs = ErrorList::new();
    if spec(svc).type_() == TYPE_EXTERNAL_NAME || spec(old).type_() == TYPE_EXTERNAL_NAME {
        return errs;
    }
    if is_headless(old) && is_headless(svc) {
        return errs;
    }
    let (old_ips, new_ips) = (spec(old).cluster_ips(), spec(svc).cluster_ips());
    let path = Path::new("spec").child("clusterIPs");
    let rendered = || json_value(&new_ips);
    if old_ips.len() == new_ips.len() {
        for (i, ip) in old_ips.iter().enumerate() {
            if *ip != new_ips[i] {
                errs.push(FieldError::invalid(
                    &path.index(i),
                    rendered(),
                    "may not change once set",
                ));
            }
        }
    } else if old_ips.len() > new_ips.len() {
        if new_ips.is_empty() {
            errs.push(FieldError::invalid(
                &path.index(0),
                rendered(),
                "primary clusterIP can not be unset",
            ));
        }
        if !old_ips.is_empty() && !new_ips.is_empty() && new_ips[0] != old_ips[0] {
            errs.push(FieldError::invalid(
                &path.index(0),
                rendered(),
                "may not change once set",
            ));
        }
        if new_ips.len() == 1 && spec(svc).ip_family_policy() != Some(SINGLE_STACK) {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("ipFamilyPolicy"),
                json_value(&spec(svc).ip_family_policy()),
                "must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
        errs.push(FieldError::invalid(
            &path.index(0),
            rendered(),
            "may not change once set",
        ));
    }
    errs
}

fn validate_upgrade_downgrade_ip_families(old: &Service, svc: &Service) -> ErrorList {
    let mut errs = ErrorList::new();
    if spec(svc).type_() == TYPE_EXTERNAL_NAME || spec(old).type_() == TYPE_EXTERNAL_NAME {
        return errs;
    }
    if is_headless(old) != is_headless(svc) || is_headless(svc) {
        return errs;
    }
    let (old_families, new_families) = (spec(old).ip_families(), spec(svc).ip_families());
    let path = Path::new("spec").child("ipFamilies").index(0);
    if old_families.len() == new_families.len() {
        for (i, family) in old_families.iter().enumerate() {
            if *family != new_families[i] {
                errs.push(FieldError::invalid(
                    &path,
                    json_value(&new_families),
                    "may not change once set",
                ));
            }
        }
    } else if old_families.len() > new_families.len() {
        if spec(svc).cluster_ips().is_empty() {
            errs.push(FieldError::invalid(
                &path,
                json_value(&new_families),
                "primary ipFamily can not be unset",
            ));
        }
        if !new_families.is_empty() && new_families[0] != old_families[0] {
            errs.push(FieldError::invalid(
                &path,
                json_value(&spec(svc).cluster_ips()),
                "may not change once set",
            ));
        }
        if new_families.len() == 1 && spec(svc).ip_family_policy() != Some(SINGLE_STACK) {
            errs.push(FieldError::invalid(
                &Path::new("spec").child("ipFamilyPolicy"),
                json_value(&spec(svc).ip_family_policy()),
                "must be set to 'SingleStack' when releasing the secondary ipFamily",
            ));
        }
    } else if !old_families.is_empty() && !new_families.is_empty() && new_families[0] != old_families[0] {
        errs.push(FieldError::invalid(
            &path,
            json_value(&spec(svc).cluster_ips()),
            "may not change once set",
        ));
    }
    errs
}

fn validate_load_balancer_status(svc: &Service, old: &Service) -> ErrorList {
    let mut errs = ErrorList::new();
    let path = Path::new("status").child("loadBalancer").child("ingress");
    let ingress_of = |s: &Service| {
        s.status
            .as_ref()
            .and_then(|st| st.load_balancer.as_ref())
            .map_or(&[][..], |lb| list_of(&lb.ingress))
            .to_vec()
    };
    let ingress = ingress_of(svc);
    if spec(svc).type_() != TYPE_LOAD_BALANCER && !ingress.is_empty() {
        errs.push(FieldError::forbidden(
            &path,
            "may only be used when `spec.type` is 'LoadBalancer'",
        ));
        return errs;
    }
    let existing: Vec<String> = ingress_of(old)
        .iter()
        .map(|i| str_of(&i.ip).to_owned())
        .filter(|ip| !ip.is_empty())
        .collect();
    for (i, entry) in ingress.iter().enumerate() {
        let entry_path = path.index(i);
        let ip = str_of(&entry.ip);
        if !ip.is_empty() {
            errs.extend(is_valid_ip_for_legacy_field(
                &entry_path.child("ip"),
                ip,
                STRICT_IP_CIDR_VALIDATION,
                &existing,
            ));
        }
        match entry.ip_mode.as_deref() {
            None if !ip.is_empty() => errs.push(FieldError::required(
                &entry_path.child("ipMode"),
                "must be specified when `ip` is set",
            )),
            None => {}
            Some(_) if ip.is_empty() => errs.push(FieldError::forbidden(
                &entry_path.child("ipMode"),
                "may not be specified when `ip` is not set",
            )),
            Some(mode) if !SUPPORTED_IP_MODES.contains(&mode) => {
                errs.push(FieldError::not_supported(
                    &entry_path.child("ipMode"),
                    mode,
                    SUPPORTED_IP_MODES,
                ));
            }
            Some(_) => {}
        }
        let hostname = str_of(&entry.hostname);
        if !hostname.is_empty() {
            errs.extend(name_errors(
                &entry_path.child("hostname"),
                hostname,
                crate::validation::is_dns1123_subdomain(hostname),
            ));
            if parse_ip_sloppy(hostname).is_some() {
                errs.push(FieldError::invalid(
                    &entry_path.child("hostname"),
                    hostname,
                    "must be a DNS name, not an IP address",
                ));
            }
        }
    }
    errs
}

impl KindStrategy for Service {
    fn apply_defaults(&mut self) {
        let spec = self.spec.get_or_insert_with(ServiceSpec::default);
        for field in [
            &mut spec.cluster_ip,
            &mut spec.external_name,
            &mut spec.external_traffic_policy,
            &mut spec.load_balancer_ip,
            &mut spec.session_affinity,
            &mut spec.type_,
        ] {
            drop_empty(field);
        }
        if spec.health_check_node_port == Some(0) {
            spec.health_check_node_port = None;
        }
        let affinity = spec
            .session_affinity
            .get_or_insert_with(|| AFFINITY_NONE.to_owned());
        if affinity == AFFINITY_NONE {
            spec.session_affinity_config = None;
        } else if affinity == AFFINITY_CLIENT_IP {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .is_some_and(|c| c.timeout_seconds.is_some());
            if !has_timeout {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(ClientIPConfig {
                        timeout_seconds: Some(DEFAULT_CLIENT_IP_AFFINITY_SECONDS),
                    }),
                });
            }
        }
        let type_ = spec
            .type_
            .get_or_insert_with(|| TYPE_CLUSTER_IP.to_owned())
            .clone();
        for port in spec.ports.iter_mut().flatten() {
            drop_empty(&mut port.name);
            if port.node_port == Some(0) {
                port.node_port = None;
            }
            if str_of(&port.protocol).is_empty() {
                port.protocol = Some("TCP".to_owned());
            }
            let unset = match &port.target_port {
                None => true,
                Some(IntOrString::Int(n)) => *n == 0,
                Some(IntOrString::String(s)) => s.is_empty(),
            };
            if unset {
                port.target_port = Some(IntOrString::Int(port.port));
            }
        }
        let external = matches!(type_.as_str(), TYPE_LOAD_BALANCER | TYPE_NODE_PORT)
            || (type_ == TYPE_CLUSTER_IP && !list_of(&spec.external_ips).is_empty());
        if external && spec.external_traffic_policy.is_none() {
            spec.external_traffic_policy = Some(POLICY_CLUSTER.to_owned());
        }
        if spec.internal_traffic_policy.is_none()
            && matches!(
                type_.as_str(),
                TYPE_NODE_PORT | TYPE_LOAD_BALANCER | TYPE_CLUSTER_IP
            )
        {
            spec.internal_traffic_policy = Some(POLICY_CLUSTER.to_owned());
        }
        if type_ == TYPE_LOAD_BALANCER && spec.allocate_load_balancer_node_ports.is_none() {
            spec.allocate_load_balancer_node_ports = Some(true);
        }
        // The status is a non-pointer struct upstream, its load balancer too: always written.
        let status = self.status.get_or_insert_with(ServiceStatus::default);
        let lb = status
            .load_balancer
            .get_or_insert_with(LoadBalancerStatus::default);
        if type_ == TYPE_LOAD_BALANCER {
            for ingress in lb.ingress.iter_mut().flatten() {
                if !str_of(&ingress.ip).is_empty() && ingress.ip_mode.is_none() {
                    ingress.ip_mode = Some("VIP".to_owned());
                }
            }
        }
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(empty_service_status());
        normalize_cluster_ips(self, None);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
        patch_allocated_values(self, old);
        normalize_cluster_ips(self, Some(old));
        drop_type_dependent_fields(self, old);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        let mut errs = validate_object_meta(&self.metadata, true, name_is_dns1035_label, &meta_path());
        errs.extend(validate_service(self, None));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        errs.extend(validate_upgrade_downgrade_cluster_ips(old, self));
        errs.extend(validate_upgrade_downgrade_ip_families(old, self));
        errs.extend(validate_load_balancer_class(Some(old), self));
        if needs_health_check(old)
            && needs_health_check(self)
            && spec(old).health_check_node_port() != spec(self).health_check_node_port()
        {
            errs.push(FieldError::forbidden(
                &Path::new("spec").child("healthCheckNodePort"),
                "field is immutable",
            ));
        }
        errs.extend(validate_service(self, Some(old)));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        errs.extend(validate_load_balancer_status(self, old));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let s = spec(self);
        let spec_path = Path::new("spec");
        if annotation(self, ANNOTATION_TOPOLOGY_AWARE_HINTS).is_some() {
            warnings.push(format!(
                "annotation {ANNOTATION_TOPOLOGY_AWARE_HINTS} is deprecated, please use {ANNOTATION_TOPOLOGY_MODE} instead"
            ));
        }
        if !s.cluster_ip().is_empty() && s.cluster_ip() != CLUSTER_IP_NONE {
            for (i, ip) in s.cluster_ips().iter().enumerate() {
                warnings.extend(get_warnings_for_ip(&spec_path.child("clusterIPs").index(i), ip));
            }
        }
        let load_balancer_ip = self.spec.as_ref().map_or("", |s| str_of(&s.load_balancer_ip));
        if s.type_() == TYPE_CLUSTER_IP && s.cluster_ip() == CLUSTER_IP_NONE {
            if !load_balancer_ip.is_empty() {
                warnings.push("spec.loadBalancerIP is ignored for headless services".to_owned());
            }
            if !s.external_ips().is_empty() {
                warnings.push("spec.externalIPs is ignored for headless services".to_owned());
            }
            if s.session_affinity() != AFFINITY_NONE {
                warnings.push("spec.SessionAffinity is ignored for headless services".to_owned());
            }
        }
        for (i, ip) in s.external_ips().iter().enumerate() {
            warnings.extend(get_warnings_for_ip(&spec_path.child("externalIPs").index(i), ip));
        }
        if !load_balancer_ip.is_empty() {
            warnings.extend(get_warnings_for_ip(
                &spec_path.child("loadBalancerIP"),
                load_balancer_ip,
            ));
        }
        let ranges = self
            .spec
            .as_ref()
            .map_or(&[][..], |s| list_of(&s.load_balancer_source_ranges));
        for (i, cidr) in ranges.iter().enumerate() {
            warnings.extend(get_warnings_for_cidr(
                &spec_path.child("loadBalancerSourceRanges").index(i),
                cidr,
            ));
        }
        if s.type_() == TYPE_EXTERNAL_NAME && !s.external_ips().is_empty() {
            warnings.push(format!(
                "spec.externalIPs is ignored when spec.type is {TYPE_EXTERNAL_NAME:?}"
            ));
        }
        let external_name = self.spec.as_ref().map_or("", |s| str_of(&s.external_name));
        if s.type_() != TYPE_EXTERNAL_NAME && !external_name.is_empty() {
            warnings.push(format!(
                "spec.externalName is ignored when spec.type is not {TYPE_EXTERNAL_NAME:?}"
            ));
        }
        if self.spec.as_ref().and_then(|s| s.traffic_distribution.as_deref()) == Some("PreferClose") {
            warnings.push(
                "spec.trafficDistribution: \"PreferClose\" is deprecated; use \"PreferSameZone\"".to_owned(),
            );
        }
        warnings
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        let s = spec(self);
        vec![
            ("spec.clusterIP", s.cluster_ip().to_owned()),
            ("spec.type", s.type_().to_owned()),
        ]
    }

    const SELECTABLE_FIELDS: &'static [&'static str] = &["spec.clusterIP", "spec.type"];

    const ALLOW_CREATE_ON_UPDATE: bool = true;
}

// Endpoints

fn validate_endpoint_address(address: &EndpointAddress, path: &Path) -> ErrorList {
    let mut errs =
        is_valid_ip_for_legacy_field(&path.child("ip"), &address.ip, STRICT_IP_CIDR_VALIDATION, &[]);
    let hostname = str_of(&address.hostname);
    if !hostname.is_empty() {
        errs.extend(validate_dns1123_label(hostname, &path.child("hostname")));
    }
    if let Some(node_name) = &address.node_name {
        errs.extend(name_errors(
            &path.child("nodeName"),
            node_name,
            name_is_dns_subdomain(node_name, false),
        ));
    }
    errs.extend(validate_endpoint_ip(&address.ip, &path.child("ip")));
    errs
}

fn validate_endpoint_port(port: &EndpointPort, require_name: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = str_of(&port.name);
    if require_name && name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(validate_dns1123_label(name, &path.child("name")));
    }
    for msg in is_valid_port_num(i64::from(port.port)) {
        errs.push(FieldError::invalid(&path.child("port"), port.port, msg));
    }
    errs.extend(validate_protocol(str_of(&port.protocol), &path.child("protocol")));
    if let Some(app_protocol) = &port.app_protocol {
        errs.extend(validate_qualified_name(app_protocol, &path.child("appProtocol")));
    }
    errs
}

fn validate_endpoint_subsets(subsets: &[EndpointSubset], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, subset) in subsets.iter().enumerate() {
        let subset_path = path.index(i);
        let (ready, not_ready) = (list_of(&subset.addresses), list_of(&subset.not_ready_addresses));
        if ready.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                &subset_path,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (j, address) in ready.iter().enumerate() {
            errs.extend(validate_endpoint_address(
                address,
                &subset_path.child("addresses").index(j),
            ));
        }
        for (j, address) in not_ready.iter().enumerate() {
            errs.extend(validate_endpoint_address(
                address,
                &subset_path.child("notReadyAddresses").index(j),
            ));
        }
        let ports = list_of(&subset.ports);
        for (j, port) in ports.iter().enumerate() {
            errs.extend(validate_endpoint_port(
                port,
                ports.len() > 1,
                &subset_path.child("ports").index(j),
            ));
        }
    }
    errs
}

/// Upstream's `ValidateEndpoints`: subsets unchanged by an update are not re-validated.
fn validate_endpoints(endpoints: &Endpoints, old: Option<&Endpoints>) -> ErrorList {
    let mut errs = validate_object_meta(&endpoints.metadata, true, name_is_dns_subdomain, &meta_path());
    let subsets = list_of(&endpoints.subsets);
    let subset_errs = validate_endpoint_subsets(subsets, &Path::new("subsets"));
    let unchanged = old.is_some_and(|o| list_of(&o.subsets) == subsets);
    if !unchanged {
        errs.extend(subset_errs);
    }
    errs
}

impl KindStrategy for Endpoints {
    fn apply_defaults(&mut self) {
        for subset in self.subsets.iter_mut().flatten() {
            for port in subset.ports.iter_mut().flatten() {
                if str_of(&port.protocol).is_empty() {
                    port.protocol = Some("TCP".to_owned());
                }
            }
        }
    }

    fn validate(&self) -> ErrorList {
        validate_endpoints(self, None)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        errs.extend(validate_endpoints(self, Some(old)));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        let managed = self
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(ENDPOINTS_MANAGED_BY_LABEL))
            .is_some_and(|v| v == ENDPOINTS_CONTROLLER_NAME);
        if managed {
            return Vec::new();
        }
        let mut warnings = Vec::new();
        for (i, subset) in list_of(&self.subsets).iter().enumerate() {
            let path = Path::new("subsets").index(i);
            for (j, address) in list_of(&subset.addresses).iter().enumerate() {
                warnings.extend(get_warnings_for_ip(
                    &path.child("addresses").index(j).child("ip"),
                    &address.ip,
                ));
            }
            for (j, address) in list_of(&subset.not_ready_addresses).iter().enumerate() {
                warnings.extend(get_warnings_for_ip(
                    &path.child("notReadyAddresses").index(j).child("ip"),
                    &address.ip,
                ));
            }
        }
        warnings
    }

    const ALLOW_CREATE_ON_UPDATE: bool = true;
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::core_shared::testing::{
        create, create_errors, fields, normalize, update, update_errors, warnings,
    };
    use crate::strategy::UpdateTarget;

    #[allow(clippy::needless_pass_by_value)]
    fn svc(spec: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "ns"}, "spec": spec})
    }

    #[test]
    fn minimal_service_as_kube_apiserver_returns_it() {
        let out = create(
            "Service",
            svc(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]})),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "web", "namespace": "ns"},
                "spec": {
                    "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                    "selector": {"app": "web"},
                    "sessionAffinity": "None",
                    "type": "ClusterIP",
                    "internalTrafficPolicy": "Cluster"
                },
                "status": {"loadBalancer": {}}
            })
        );
        assert_eq!(
            fields("Service", &out),
            [
                ("spec.clusterIP", String::new()),
                ("spec.type", "ClusterIP".to_owned())
            ]
        );
    }

    #[test]
    fn load_balancer_and_client_ip_defaults() {
        let out = create(
            "Service",
            svc(json!({"type": "LoadBalancer", "sessionAffinity": "ClientIP",
                       "ports": [{"name": "http", "port": 80, "targetPort": "web", "nodePort": 30080}],
                       "clusterIP": "10.0.0.10"})),
        )
        .unwrap();
        assert_eq!(
            out["spec"],
            json!({
                "allocateLoadBalancerNodePorts": true,
                "clusterIP": "10.0.0.10",
                "clusterIPs": ["10.0.0.10"],
                "externalTrafficPolicy": "Cluster",
                "internalTrafficPolicy": "Cluster",
                "ports": [{"name": "http", "nodePort": 30080, "port": 80, "protocol": "TCP", "targetPort": "web"}],
                "sessionAffinity": "ClientIP",
                "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}},
                "type": "LoadBalancer"
            })
        );
        // ExternalName services get no traffic policies.
        let out = create(
            "Service",
            svc(json!({"type": "ExternalName", "externalName": "example.com."})),
        )
        .unwrap();
        assert_eq!(
            out["spec"],
            json!({"externalName": "example.com.", "sessionAffinity": "None", "type": "ExternalName"})
        );
    }

    #[test]
    fn service_validation() {
        let cases = [
            (
                json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1web", "namespace": "ns"}, "spec": {"ports": [{"port": 80}]}}),
                vec![
                    "metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
            (svc(json!({})), vec!["spec.ports: Required value"]),
            (
                svc(
                    json!({"ports": [{"port": 80}, {"port": 0, "protocol": "HTTP", "name": "Bad"}, {"name": "a", "port": 80}, {"name": "a", "port": 81, "targetPort": "toolongportname1"}]}),
                ),
                vec![
                    "spec.ports[0].name: Required value",
                    "spec.ports[1].name: Invalid value: \"Bad\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                    "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                    "spec.ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                    "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                    "spec.ports[3].name: Duplicate value: \"a\"",
                    "spec.ports[3].targetPort: Invalid value: \"toolongportname1\": must be no more than 15 characters",
                    "spec.ports[2]: Duplicate value: {\"Name\":\"\",\"Protocol\":\"TCP\",\"AppProtocol\":null,\"Port\":80,\"TargetPort\":0,\"NodePort\":0}",
                ],
            ),
            (
                svc(json!({"type": "Magic", "sessionAffinity": "Sticky", "ports": [{"port": 80}]})),
                vec![
                    "spec.sessionAffinity: Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\"",
                    "spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                ],
            ),
            (
                svc(
                    json!({"type": "ExternalName", "clusterIP": "None", "ipFamilyPolicy": "SingleStack", "externalTrafficPolicy": "Local"}),
                ),
                vec![
                    "spec.clusterIPs: Forbidden: may not be set for ExternalName services",
                    "spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services",
                    "spec.externalName: Required value",
                    "spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services",
                ],
            ),
            (
                svc(json!({"type": "ExternalName", "externalName": "Bad_Name"})),
                vec![
                    "spec.externalName: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                ],
            ),
            (
                svc(
                    json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80, "nodePort": 30000}, {"port": 81, "nodePort": 30000, "name": "b"}]}),
                ),
                vec![
                    "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services",
                    "spec.ports[0].name: Required value",
                    "spec.ports[1].nodePort: Duplicate value: 30000",
                ],
            ),
            (svc(json!({"clusterIP": "None"})), vec![]),
            (
                svc(
                    json!({"ports": [{"port": 80, "nodePort": 30000}], "sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 90000}}}),
                ),
                vec![
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 90000: must be greater than 0 and less than 86400",
                    "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'",
                ],
            ),
            (
                svc(
                    json!({"ports": [{"port": 80}], "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.2"], "ipFamilies": ["IPv6", "IPv6"], "ipFamilyPolicy": "Dual"}),
                ),
                vec![
                    "spec.clusterIPs: Invalid value: [\"10.0.0.2\"]: first value must match `clusterIP`",
                    "spec.ipFamilies[1]: Duplicate value: \"IPv6\"",
                    "spec.ipFamilyPolicy: Unsupported value: \"Dual\": supported values: \"PreferDualStack\", \"RequireDualStack\", \"SingleStack\"",
                    "spec.clusterIPs[0]: Invalid value: \"10.0.0.2\": expected an IPv6 value as indicated by `ipFamilies[0]`",
                ],
            ),
            (
                svc(
                    json!({"ports": [{"port": 80}], "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1", "10.0.0.2"]}),
                ),
                vec![
                    "spec.clusterIPs: Invalid value: [\"10.0.0.1\",\"10.0.0.2\"]: may specify no more than one IP for each IP family",
                ],
            ),
            (
                svc(json!({"ports": [{"port": 80}], "clusterIP": "10.0.0.300"})),
                vec![
                    "spec.clusterIPs[0]: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ],
            ),
            (
                svc(
                    json!({"ports": [{"port": 80}], "externalIPs": ["127.0.0.1"], "loadBalancerSourceRanges": ["10.0.0.0/8"], "allocateLoadBalancerNodePorts": false, "loadBalancerClass": "x", "trafficDistribution": "Anywhere"}),
                ),
                vec![
                    "spec.externalIPs[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                    "spec.LoadBalancerSourceRanges: Forbidden: may only be used when `type` is 'LoadBalancer'",
                    "spec.allocateLoadBalancerNodePorts: Forbidden: may only be used when `type` is 'LoadBalancer'",
                    "spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'",
                    "spec.trafficDistribution: Unsupported value: \"Anywhere\": supported values: \"PreferClose\", \"PreferSameZone\", \"PreferSameNode\"",
                ],
            ),
            (
                svc(
                    json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "ports": [{"port": 80}], "loadBalancerSourceRanges": ["10.0.0.0/33"]}),
                ),
                vec![
                    "spec.LoadBalancerSourceRanges[0]: Invalid value: \"10.0.0.0/33\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
                    "spec.healthCheckNodePort: Required value",
                ],
            ),
            (
                svc(
                    json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "healthCheckNodePort": 31000, "ports": [{"port": 80}]}),
                ),
                vec![],
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(create_errors("Service", object.clone()), expected, "{object}");
        }
    }

    fn stored(spec: Value) -> Value {
        let mut v = create("Service", svc(spec)).unwrap();
        v["metadata"]["resourceVersion"] = json!("3");
        v
    }

    #[test]
    fn service_updates() {
        let old = stored(
            json!({"ports": [{"port": 80}], "clusterIP": "10.0.0.1", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack"}),
        );
        // A replace without the allocated IP keeps it.
        let mut new = old.clone();
        new["spec"].as_object_mut().unwrap().remove("clusterIP");
        new["spec"].as_object_mut().unwrap().remove("clusterIPs");
        let out = update("Service", new, &old, UpdateTarget::Main).unwrap();
        assert_eq!(out["spec"]["clusterIPs"], json!(["10.0.0.1"]));
        // Changing the IP is refused.
        let mut new = old.clone();
        new["spec"]["clusterIP"] = json!("10.0.0.2");
        assert_eq!(
            update_errors("Service", new, &old, UpdateTarget::Main),
            ["spec.clusterIPs[0]: Invalid value: [\"10.0.0.2\"]: may not change once set"]
        );
        // To ExternalName: the IP fields go away.
        let mut new = old.clone();
        new["spec"]["type"] = json!("ExternalName");
        new["spec"]["externalName"] = json!("example.com");
        let out = update("Service", new, &old, UpdateTarget::Main).unwrap();
        assert_eq!(
            out["spec"],
            json!({"externalName": "example.com", "internalTrafficPolicy": "Cluster", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "sessionAffinity": "None", "type": "ExternalName"})
        );
        // Status updates keep the spec and check the load balancer.
        let mut new = old.clone();
        new["spec"]["type"] = json!("NodePort");
        new["status"] = json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}});
        assert_eq!(
            update_errors("Service", new, &old, UpdateTarget::Status),
            ["status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is 'LoadBalancer'"]
        );
        let lb = stored(
            json!({"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 30001}], "clusterIP": "10.0.0.1"}),
        );
        let mut new = lb.clone();
        new["status"] = json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "1.2.3.5", "ipMode": "Proxy"}]}});
        assert_eq!(
            update_errors("Service", new.clone(), &lb, UpdateTarget::Status),
            [
                "status.loadBalancer.ingress[1].ipMode: Forbidden: may not be specified when `ip` is not set",
                "status.loadBalancer.ingress[1].hostname: Invalid value: \"1.2.3.5\": must be a DNS name, not an IP address",
            ]
        );
        new["status"] = json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}});
        let out = update("Service", new, &lb, UpdateTarget::Status).unwrap();
        assert_eq!(
            out["status"],
            json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4", "ipMode": "VIP"}]}})
        );
        // A replace without the allocated node port keeps it.
        let mut new = lb.clone();
        new["spec"]["ports"][0]
            .as_object_mut()
            .unwrap()
            .remove("nodePort");
        let out = update("Service", new, &lb, UpdateTarget::Main).unwrap();
        assert_eq!(out["spec"]["ports"][0]["nodePort"], json!(30001));
        // LoadBalancer to ClusterIP drops the node ports and LB-only fields.
        let mut new = lb.clone();
        new["spec"]["type"] = json!("ClusterIP");
        let out = update("Service", new, &lb, UpdateTarget::Main).unwrap();
        assert_eq!(
            out["spec"],
            json!({"clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"], "internalTrafficPolicy": "Cluster",
                   "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "sessionAffinity": "None", "type": "ClusterIP"})
        );
    }

    #[test]
    fn service_warnings() {
        let object = svc(
            json!({"type": "ClusterIP", "clusterIP": "None", "externalIPs": ["010.0.0.1"], "externalName": "x",
                                "sessionAffinity": "ClientIP", "trafficDistribution": "PreferClose"}),
        );
        assert_eq!(
            warnings("Service", &object),
            [
                "spec.externalIPs is ignored for headless services",
                "spec.SessionAffinity is ignored for headless services",
                "spec.externalIPs[0]: non-standard IP address \"010.0.0.1\" will be considered invalid in a future Kubernetes release: use \"10.0.0.1\"",
                "spec.externalName is ignored when spec.type is not \"ExternalName\"",
                "spec.trafficDistribution: \"PreferClose\" is deprecated; use \"PreferSameZone\"",
            ]
        );
    }

    #[test]
    fn endpoints() {
        let out = create(
            "Endpoints",
            json!({"metadata": {"name": "web", "namespace": "ns"},
                   "subsets": [{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 8080}]}]}),
        )
        .unwrap();
        assert_eq!(
            out["subsets"],
            json!([{"addresses": [{"ip": "10.1.0.1"}], "ports": [{"port": 8080, "protocol": "TCP"}]}])
        );
        let bad = json!({"metadata": {"name": "web", "namespace": "ns"}, "subsets": [
            {},
            {"addresses": [{"ip": "127.0.0.1", "hostname": "A", "nodeName": "N"}], "notReadyAddresses": [{"ip": "x"}],
             "ports": [{"port": 70000, "protocol": "ICMP"}, {"name": "b", "port": 1, "appProtocol": "a/b/c"}]}
        ]});
        assert_eq!(
            create_errors("Endpoints", bad.clone()),
            [
                "subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`",
                "subsets[1].addresses[0].hostname: Invalid value: \"A\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                "subsets[1].addresses[0].nodeName: Invalid value: \"N\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "subsets[1].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                "subsets[1].notReadyAddresses[0].ip: Invalid value: \"x\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                "subsets[1].notReadyAddresses[0].ip: Invalid value: \"x\": must be a valid IP address",
                "subsets[1].ports[0].name: Required value",
                "subsets[1].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "subsets[1].ports[0].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "subsets[1].ports[1].appProtocol: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            ]
        );
        // Unchanged invalid subsets pass an update.
        let mut old = normalize("Endpoints", bad);
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["metadata"]["labels"] = json!({"a": "b"});
        assert!(update_errors("Endpoints", new, &old, UpdateTarget::Main).is_empty());
        assert_eq!(
            warnings(
                "Endpoints",
                &json!({"metadata": {"name": "e"}, "subsets": [{"addresses": [{"ip": "::ffff:1.2.3.4"}]}]})
            ),
            [
                "subsets[0].addresses[0].ip: non-standard IP address \"::ffff:1.2.3.4\" will be considered invalid in a future Kubernetes release: use \"1.2.3.4\""
            ]
        );
    }
}
