//! The strategy of discovery.k8s.io/v1 EndpointSlice.
//!
//! Ports pkg/apis/discovery/v1/defaults.go (port name `""` and protocol `TCP`),
//! pkg/registry/discovery/endpointslice/strategy.go (generation, `deprecatedTopology` dropped
//! on v1 writes, FQDN and bad-IP warnings) and pkg/apis/discovery/validation/validation.go:
//! the address type (required, enum, immutable), endpoints (addresses per type, node names,
//! hostnames, hints) and ports (names, duplicates, protocols, app protocols).

use std::collections::BTreeSet;

use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointHints, EndpointPort, EndpointSlice,
};

use super::api_shared::{bump_generation, core_meta, differs, init_generation};
use super::core_shared::{list_of, str_of};
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{
    STRICT_IP_CIDR_VALIDATION, get_warnings_for_ip, is_fully_qualified_domain_name, is_valid_ip,
    is_valid_ip_for_legacy_field, is_valid_label_value, name_is_dns_subdomain, parse_ip_sloppy,
    validate_dns1123_label, validate_endpoint_ip, validate_immutable_field, validate_labels,
    validate_qualified_name,
};

const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const MAX_TOPOLOGY_LABELS: usize = 16;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;
const MAX_ENDPOINTS: usize = 1000;
const MAX_ZONE_HINTS: usize = 8;
const MAX_NODE_HINTS: usize = 8;
const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const CONTROLLERS: &[&str] = &[
    "endpointslice-controller.k8s.io",
    "endpointslicemirroring-controller.k8s.io",
];
const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";

fn node_name_errors(name: &str, path: &Path) -> ErrorList {
    name_is_dns_subdomain(name, false)
        .into_iter()
        .map(|msg| FieldError::invalid(path, name, msg))
        .collect()
}

fn validate_address(address: &str, address_type: &str, addresses_path: &Path, i: usize) -> ErrorList {
    let path = addresses_path.index(i);
    match address_type {
        "IPv4" => {
            let errs = is_valid_ip_for_legacy_field(&path, address, STRICT_IP_CIDR_VALIDATION, &[]);
            if !errs.is_empty() {
                return errs;
            }
            let mut errs = ErrorList::new();
            if parse_ip_sloppy(address).and_then(|ip| ip.to_v4()).is_none() {
                errs.push(FieldError::invalid(
                    addresses_path,
                    address,
                    "must be an IPv4 address",
                ));
            }
            errs.extend(validate_endpoint_ip(address, &path));
            errs
        }
        "IPv6" => {
            let errs = is_valid_ip(&path, address);
            if !errs.is_empty() {
                return errs;
            }
            let mut errs = ErrorList::new();
            if parse_ip_sloppy(address).is_none_or(|ip| ip.to_v4().is_some()) {
                errs.push(FieldError::invalid(
                    addresses_path,
                    address,
                    "must be an IPv6 address",
                ));
            }
            errs.extend(validate_endpoint_ip(address, &path));
            errs
        }
        "FQDN" => is_fully_qualified_domain_name(&path, address),
        _ => Vec::new(),
    }
}

fn validate_hints(hints: &EndpointHints, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let zones_path = path.child("forZones");
    let zones = list_of(&hints.for_zones);
    if zones.len() > MAX_ZONE_HINTS {
        errs.push(FieldError::too_many(
            &zones_path,
            Some(zones.len()),
            MAX_ZONE_HINTS,
        ));
        return errs;
    }
    let mut seen = BTreeSet::new();
    for (i, zone) in zones.iter().enumerate() {
        let path = zones_path.index(i).child("name");
        if !seen.insert(zone.name.as_str()) {
            errs.push(FieldError::duplicate(&path, zone.name.as_str()));
        }
        errs.extend(
            is_valid_label_value(&zone.name)
                .into_iter()
                .map(|msg| FieldError::invalid(&path, zone.name.as_str(), msg)),
        );
    }
    let nodes_path = path.child("forNodes");
    let nodes = list_of(&hints.for_nodes);
    if nodes.len() > MAX_NODE_HINTS {
        errs.push(FieldError::too_many(
            &nodes_path,
            Some(nodes.len()),
            MAX_NODE_HINTS,
        ));
        return errs;
    }
    let mut seen = BTreeSet::new();
    for (i, node) in nodes.iter().enumerate() {
        let path = nodes_path.index(i).child("name");
        if !seen.insert(node.name.as_str()) {
            errs.push(FieldError::duplicate(&path, node.name.as_str()));
        }
        errs.extend(node_name_errors(&node.name, &path));
    }
    errs
}

fn validate_endpoints(endpoints: &[Endpoint], address_type: &str) -> ErrorList {
    let path = Path::new("endpoints");
    let mut errs = ErrorList::new();
    if endpoints.len() > MAX_ENDPOINTS {
        errs.push(FieldError::too_many(&path, Some(endpoints.len()), MAX_ENDPOINTS));
        return errs;
    }
    for (i, endpoint) in endpoints.iter().enumerate() {
        let idx_path = path.index(i);
        let addresses_path = idx_path.child("addresses");
        if endpoint.addresses.is_empty() {
            errs.push(FieldError::required(
                &addresses_path,
                "must contain at least 1 address",
            ));
        } else if endpoint.addresses.len() > MAX_ADDRESSES {
            errs.push(FieldError::too_many(
                &addresses_path,
                Some(endpoint.addresses.len()),
                MAX_ADDRESSES,
            ));
        }
        for (j, address) in endpoint.addresses.iter().enumerate() {
            errs.extend(validate_address(address, address_type, &addresses_path, j));
        }
        if let Some(node_name) = &endpoint.node_name {
            errs.extend(node_name_errors(node_name, &idx_path.child("nodeName")));
        }
        let topology_path = idx_path.child("deprecatedTopology");
        let topology = endpoint.deprecated_topology.as_ref();
        let topology_len = topology.map_or(0, |t| t.len());
        if topology_len > MAX_TOPOLOGY_LABELS {
            errs.push(FieldError::too_many(
                &topology_path,
                Some(topology_len),
                MAX_TOPOLOGY_LABELS,
            ));
        }
        errs.extend(validate_labels(topology, &topology_path));
        if topology.is_some_and(|t| t.contains_key(LABEL_TOPOLOGY_ZONE)) {
            errs.push(FieldError::internal(
                &topology_path.key(LABEL_TOPOLOGY_ZONE),
                "reserved key was not removed in conversion",
            ));
        }
        if let Some(hostname) = &endpoint.hostname {
            errs.extend(validate_dns1123_label(hostname, &idx_path.child("hostname")));
        }
        if let Some(hints) = &endpoint.hints {
            errs.extend(validate_hints(hints, &idx_path.child("hints")));
        }
    }
    errs
}

fn validate_ports(ports: &[EndpointPort]) -> ErrorList {
    let path = Path::new("ports");
    let mut errs = ErrorList::new();
    if ports.len() > MAX_PORTS {
        errs.push(FieldError::too_many(&path, Some(ports.len()), MAX_PORTS));
        return errs;
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let idx_path = path.index(i);
        let name = str_of(&port.name);
        if !name.is_empty() {
            errs.extend(validate_dns1123_label(name, &idx_path.child("name")));
        }
        if names.contains(&name) {
            errs.push(FieldError::duplicate(&idx_path.child("name"), name));
        } else {
            names.push(name);
        }
        match &port.protocol {
            None => errs.push(FieldError::required(&idx_path.child("protocol"), "")),
            Some(protocol) if !PROTOCOLS.contains(&protocol.as_str()) => {
                errs.push(FieldError::not_supported(
                    &idx_path.child("protocol"),
                    protocol.as_str(),
                    PROTOCOLS,
                ));
            }
            Some(_) => {}
        }
        if let Some(app_protocol) = &port.app_protocol {
            errs.extend(validate_qualified_name(
                app_protocol,
                &idx_path.child("appProtocol"),
            ));
        }
    }
    errs
}

fn validate_endpoint_slice(slice: &EndpointSlice, old: Option<&EndpointSlice>) -> ErrorList {
    let mut errs = core_meta(&slice.metadata, true, name_is_dns_subdomain);
    let type_path = Path::new("addressType");
    if slice.address_type.is_empty() {
        errs.push(FieldError::required(&type_path, ""));
    } else if !ADDRESS_TYPES.contains(&slice.address_type.as_str()) {
        errs.push(FieldError::not_supported(
            &type_path,
            slice.address_type.as_str(),
            ADDRESS_TYPES,
        ));
    }
    errs.extend(validate_ports(list_of(&slice.ports)));
    let endpoint_errs = validate_endpoints(&slice.endpoints, &slice.address_type);
    // Unchanged endpoints of an update were accepted before: their errors are ignored.
    if !endpoint_errs.is_empty() && old.is_none_or(|old| differs(&old.endpoints, &slice.endpoints)) {
        errs.extend(endpoint_errs);
    }
    errs
}

/// Upstream's `dropTopologyOnV1`: `deprecatedTopology` is not writable through v1; a node
/// name kept only there by an older client is carried over into `nodeName`.
fn drop_topology_on_v1(slice: &mut EndpointSlice, old: Option<&EndpointSlice>) {
    if let Some(old) = old
        && !differs(&old.endpoints, &slice.endpoints)
    {
        return;
    }
    let previous: BTreeSet<String> = old
        .into_iter()
        .flat_map(|o| o.endpoints.iter())
        .filter_map(|e| e.deprecated_topology.as_ref()?.get(LABEL_HOSTNAME).cloned())
        .filter(|name| !name.is_empty())
        .collect();
    for endpoint in &mut slice.endpoints {
        if endpoint.node_name.is_none()
            && let Some(name) = endpoint
                .deprecated_topology
                .as_ref()
                .and_then(|t| t.get(LABEL_HOSTNAME))
            && previous.contains(name)
            && name_is_dns_subdomain(name, false).is_empty()
        {
            endpoint.node_name = Some(name.clone());
        }
        endpoint.deprecated_topology = None;
    }
}

impl KindStrategy for EndpointSlice {
    fn apply_defaults(&mut self) {
        for port in self.ports.iter_mut().flatten() {
            if port.name.is_none() {
                port.name = Some(String::new());
            }
            if port.protocol.is_none() {
                port.protocol = Some("TCP".to_owned());
            }
        }
        // `conditions` is a non-pointer struct upstream: always written.
        for endpoint in &mut self.endpoints {
            endpoint
                .conditions
                .get_or_insert_with(EndpointConditions::default);
        }
    }

    fn prepare_for_create(&mut self) {
        init_generation(&mut self.metadata);
        drop_topology_on_v1(self, None);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        let changed = self.address_type != old.address_type
            || differs(&self.endpoints, &old.endpoints)
            || differs(&self.ports, &old.ports)
            || self.metadata.labels != old.metadata.labels;
        bump_generation(&mut self.metadata, &old.metadata, changed);
        drop_topology_on_v1(self, Some(old));
    }

    fn validate(&self) -> ErrorList {
        validate_endpoint_slice(self, None)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_endpoint_slice(self, Some(old));
        errs.extend(validate_immutable_field(
            self.address_type.as_str(),
            old.address_type.as_str(),
            &Path::new("addressType"),
        ));
        errs
    }

    /// Upstream warns about FQDN slices on create only; warnings here do not know whether
    /// the write is a create, so the FQDN warning is repeated on updates.
    fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.address_type == "FQDN" {
            warnings.push("spec.addressType: FQDN endpoints are deprecated".to_owned());
        }
        let managed_by = self
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_MANAGED_BY))
            .map_or("", String::as_str);
        if CONTROLLERS.contains(&managed_by) {
            return warnings;
        }
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            for (j, address) in endpoint.addresses.iter().enumerate() {
                let path = Path::new("endpoints").index(i).child("addresses").index(j);
                warnings.extend(get_warnings_for_ip(&path, address));
            }
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::api_shared::testing::{check_create_cases, create, update, update_errors, warnings};
    use crate::strategy::UpdateTarget;

    const API: &str = "discovery.k8s.io/v1";

    #[test]
    fn defaults() {
        let out = create(
            json!({"apiVersion": API, "kind": "EndpointSlice", "metadata": {"name": "s", "namespace": "ns"},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["10.0.0.1"], "deprecatedTopology": {"a": "b"}}],
            "ports": [{"port": 80}]}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": API, "kind": "EndpointSlice",
                "metadata": {"name": "s", "namespace": "ns", "generation": 1},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {}}],
                "ports": [{"name": "", "port": 80, "protocol": "TCP"}]
            })
        );
        let mut old = out;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["endpoints"][0]["addresses"] = json!(["10.0.0.2"]);
        let updated = update(new, &old, UpdateTarget::Main).unwrap();
        assert_eq!(updated["metadata"]["generation"], json!(2));
        let mut new = old.clone();
        new["addressType"] = json!("IPv6");
        new["endpoints"][0]["addresses"] = json!(["fd00::1"]);
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            ["addressType: Invalid value: \"IPv6\": field is immutable"]
        );
    }

    #[test]
    fn validation() {
        let slice = |address_type: &str, endpoints: serde_json::Value, ports: serde_json::Value| {
            json!({"apiVersion": API, "kind": "EndpointSlice", "metadata": {"name": "s", "namespace": "ns"},
                "addressType": address_type, "endpoints": endpoints, "ports": ports})
        };
        check_create_cases(&[
            (
                slice("IPv5", json!([]), json!([])),
                vec![
                    "addressType: Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
                ],
            ),
            (
                slice("", json!([]), json!([])),
                vec!["addressType: Required value"],
            ),
            (
                slice(
                    "IPv4",
                    json!([{"addresses": []}, {"addresses": ["fd00::1", "127.0.0.1", "x"], "nodeName": "Node_1", "hostname": "a.b"}]),
                    json!([{"name": "http", "protocol": "TCP"}, {"name": "http", "protocol": "HTTP", "appProtocol": "a/b/c"}]),
                ),
                vec![
                    "ports[1].name: Duplicate value: \"http\"",
                    "ports[1].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                    "ports[1].appProtocol: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                    "endpoints[0].addresses: Required value: must contain at least 1 address",
                    "endpoints[1].addresses: Invalid value: \"fd00::1\": must be an IPv4 address",
                    "endpoints[1].addresses[1]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)",
                    "endpoints[1].addresses[2]: Invalid value: \"x\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    "endpoints[1].nodeName: Invalid value: \"Node_1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                    "endpoints[1].hostname: Invalid value: \"a.b\": must not contain dots",
                ],
            ),
            (
                slice(
                    "FQDN",
                    json!([{"addresses": ["example"], "hints": {"forZones": [{"name": "a"}, {"name": "a"}]}}]),
                    json!([]),
                ),
                vec![
                    "endpoints[0].addresses[0]: Invalid value: \"example\": should be a domain with at least two segments separated by dots",
                    "endpoints[0].hints.forZones[1].name: Duplicate value: \"a\"",
                ],
            ),
        ]);
        let fqdn = slice("FQDN", json!([{"addresses": ["a.example.com"]}]), json!([]));
        assert_eq!(
            warnings(&fqdn),
            ["spec.addressType: FQDN endpoints are deprecated"]
        );
        let sloppy = slice("IPv4", json!([{"addresses": ["010.0.0.1"]}]), json!([]));
        assert_eq!(
            warnings(&sloppy),
            [
                "endpoints[0].addresses[0]: non-standard IP address \"010.0.0.1\" will be considered invalid in a future Kubernetes release: use \"10.0.0.1\""
            ]
        );
    }
}
