//! The downward API's value extraction, shared by env vars and downwardAPI volumes: pod
//! field paths (upstream's `fieldpath.ExtractFieldPathAsString` and the kubelet's
//! `podFieldSelectorRuntimeValue`) and container resource fields with divisors and the node
//! allocatable fallback (upstream's `pkg/api/v1/resource` helpers).
//!
//! Pure: the pod, its IPs, the node's IPs and allocatable are inputs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ObjectFieldSelector, Pod, ResourceFieldSelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use rudder_machinery::validation::formats::is_qualified_name;
use rudder_machinery::validation::quantity::{ParsedQuantity, parse_quantity};

/// Why a downward API value could not be produced; texts are upstream's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FieldRefError {
    #[error("unsupported pod version: {0}")]
    UnsupportedVersion(String),
    #[error("field label does not support subscript: {0}")]
    LabelNoSubscript(String),
    #[error("field label not supported: {0}")]
    LabelNotSupported(String),
    #[error("invalid key subscript in {path}: {errors}")]
    InvalidSubscript { path: String, errors: String },
    #[error("fieldPath {0:?} does not support subscript")]
    NoSubscript(String),
    #[error("unsupported fieldPath: {0}")]
    UnsupportedFieldPath(String),
    #[error("unsupported container resource : {0}")]
    UnsupportedResource(String),
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")]
    BadQuantity,
    #[error("no host IPs are known for this node")]
    NoHostIps,
}

/// What the kubelet knows beside the pod when resolving a field: the pod's IPs (as they will
/// be reported in status) and the node's IPs.
#[derive(Clone, Debug, Default)]
pub struct RuntimeFields {
    pub pod_ips: Vec<String>,
    pub host_ips: Vec<String>,
}

/// Splits `metadata.labels['key']` into `("metadata.labels", "key")`.
pub fn split_subscripted_path(field_path: &str) -> Option<(&str, &str)> {
    let inner = field_path.strip_suffix("']")?;
    let (path, subscript) = inner.split_once("['")?;
    if path.is_empty() {
        return None;
    }
    Some((path, subscript))
}

/// Upstream's `ConvertDownwardAPIFieldLabel` for v1: the accepted field labels.
fn convert_field_label(api_version: &str, label: &str) -> Result<String, FieldRefError> {
    if api_version != "v1" {
        return Err(FieldRefError::UnsupportedVersion(api_version.to_owned()));
    }
    if let Some((path, _)) = split_subscripted_path(label) {
        return match path {
            "metadata.annotations" | "metadata.labels" => Ok(label.to_owned()),
            _ => Err(FieldRefError::LabelNoSubscript(label.to_owned())),
        };
    }
    match label {
        "metadata.annotations"
        | "metadata.labels"
        | "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "spec.nodeName"
        | "spec.restartPolicy"
        | "spec.serviceAccountName"
        | "spec.schedulerName"
        | "status.phase"
        | "status.hostIP"
        | "status.hostIPs"
        | "status.podIP"
        | "status.podIPs" => Ok(label.to_owned()),
        "spec.host" => Ok("spec.nodeName".to_owned()),
        _ => Err(FieldRefError::LabelNotSupported(label.to_owned())),
    }
}

/// Upstream's `FormatMap`: `key="value"` lines sorted by key, values quoted as Go's
/// `strconv.Quote` does.
pub fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    let Some(map) = map else {
        return String::new();
    };
    map.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.Quote`: printable characters kept, the rest escaped.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Upstream's `ExtractFieldPathAsString` over a pod's metadata (the downwardAPI volume uses it
/// directly; env vars go through [`pod_field_value`]).
pub fn extract_metadata_field(pod: &Pod, field_path: &str) -> Result<String, FieldRefError> {
    let meta = &pod.metadata;
    if let Some((path, subscript)) = split_subscripted_path(field_path) {
        return match path {
            "metadata.annotations" => {
                let errs = is_qualified_name(&subscript.to_lowercase());
                if !errs.is_empty() {
                    return Err(FieldRefError::InvalidSubscript {
                        path: field_path.to_owned(),
                        errors: errs.join(";"),
                    });
                }
                Ok(lookup(meta.annotations.as_ref(), subscript))
            }
            "metadata.labels" => {
                let errs = is_qualified_name(subscript);
                if !errs.is_empty() {
                    return Err(FieldRefError::InvalidSubscript {
                        path: field_path.to_owned(),
                        errors: errs.join(";"),
                    });
                }
                Ok(lookup(meta.labels.as_ref(), subscript))
            }
            _ => Err(FieldRefError::NoSubscript(field_path.to_owned())),
        };
    }
    match field_path {
        "metadata.annotations" => Ok(format_map(meta.annotations.as_ref())),
        "metadata.labels" => Ok(format_map(meta.labels.as_ref())),
        "metadata.name" => Ok(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => Ok(meta.namespace.clone().unwrap_or_default()),
        "metadata.uid" => Ok(meta.uid.clone().unwrap_or_default()),
        _ => Err(FieldRefError::UnsupportedFieldPath(field_path.to_owned())),
    }
}

fn lookup(map: Option<&BTreeMap<String, String>>, key: &str) -> String {
    map.and_then(|m| m.get(key)).cloned().unwrap_or_default()
}

/// The kubelet's `podFieldSelectorRuntimeValue`: a `fieldRef` env var's value.
pub fn pod_field_value(
    selector: &ObjectFieldSelector,
    pod: &Pod,
    runtime: &RuntimeFields,
) -> Result<String, FieldRefError> {
    // The API server defaults apiVersion to v1.
    let version = selector.api_version.as_deref().unwrap_or("v1");
    let path = convert_field_label(version, &selector.field_path)?;
    let spec = pod.spec.as_ref();
    match path.as_str() {
        "spec.nodeName" => Ok(spec.and_then(|s| s.node_name.clone()).unwrap_or_default()),
        "spec.serviceAccountName" => Ok(spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default()),
        "status.hostIP" => runtime.host_ips.first().cloned().ok_or(FieldRefError::NoHostIps),
        "status.hostIPs" => {
            if runtime.host_ips.is_empty() {
                return Err(FieldRefError::NoHostIps);
            }
            Ok(runtime.host_ips.join(","))
        }
        "status.podIP" => Ok(runtime.pod_ips.first().cloned().unwrap_or_default()),
        "status.podIPs" => Ok(runtime.pod_ips.join(",")),
        other => extract_metadata_field(pod, other),
    }
}

fn parse(q: &Quantity) -> Result<ParsedQuantity, FieldRefError> {
    parse_quantity(&q.0).map_err(|_| FieldRefError::BadQuantity)
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Result<&'a Container, FieldRefError> {
    let spec = pod.spec.as_ref();
    spec.into_iter()
        .flat_map(|s| s.containers.iter())
        .chain(spec.into_iter().flat_map(|s| s.init_containers.iter().flatten()))
        .find(|c| c.name == name)
        .ok_or_else(|| FieldRefError::ContainerNotFound(name.to_owned()))
}

/// Upstream's `MergeContainerResourceLimits`: a container without a (non-zero) cpu, memory or
/// ephemeral-storage limit gets the node's allocatable as its limit.
pub fn merge_limits_with_allocatable(
    container: &Container,
    allocatable: &BTreeMap<String, Quantity>,
) -> Container {
    let mut out = container.clone();
    let resources = out.resources.get_or_insert_with(Default::default);
    let limits = resources.limits.get_or_insert_with(BTreeMap::new);
    for name in ["cpu", "memory", "ephemeral-storage"] {
        let missing = limits
            .get(name)
            .is_none_or(|q| parse_quantity(&q.0).is_ok_and(|p| p.is_zero()));
        if missing && let Some(cap) = allocatable.get(name) {
            limits.insert(name.to_owned(), cap.clone());
        }
    }
    out
}

/// Upstream's `ExtractContainerResourceValue`: `limits.cpu`, `requests.memory`, ... of one
/// container in units of the divisor, rounded up.
pub fn container_resource_value(
    selector: &ResourceFieldSelector,
    container: &Container,
) -> Result<String, FieldRefError> {
    let divisor = match &selector.divisor {
        Some(d) if !parse(d)?.is_zero() => parse(d)?,
        _ => ParsedQuantity::from_i64(
            1,
            rudder_machinery::validation::quantity::QuantityFormat::DecimalSI,
        ),
    };
    let resources = container.resources.as_ref();
    let (list, name) = match selector.resource.split_once('.') {
        Some(("limits", name)) => (resources.and_then(|r| r.limits.as_ref()), name),
        Some(("requests", name)) => (resources.and_then(|r| r.requests.as_ref()), name),
        _ => return Err(FieldRefError::UnsupportedResource(selector.resource.clone())),
    };
    let supported = matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-");
    if !supported {
        return Err(FieldRefError::UnsupportedResource(selector.resource.clone()));
    }
    let value = match list.and_then(|l| l.get(name)) {
        Some(q) => parse(q)?,
        None => ParsedQuantity::zero(),
    };
    // Upstream divides as float64 and takes the ceiling.
    let result = if name == "cpu" {
        (value.milli_value() as f64 / divisor.milli_value() as f64).ceil()
    } else {
        (value.value() as f64 / divisor.value() as f64).ceil()
    };
    Ok(format!("{}", result as i64))
}

/// A `resourceFieldRef` with the node allocatable standing in for absent limits, as the
/// kubelet's `defaultPodLimitsForDownwardAPI` does for env vars and the downwardAPI volume
/// does for files. `container` is the one the env var belongs to; the selector's
/// `containerName` (required in volumes) picks another.
pub fn resource_field_value(
    selector: &ResourceFieldSelector,
    pod: &Pod,
    container: Option<&Container>,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, FieldRefError> {
    let target = match selector.container_name.as_deref() {
        Some(name) if !name.is_empty() => find_container(pod, name)?,
        _ => match container {
            Some(c) => c,
            None => return Err(FieldRefError::ContainerNotFound(String::new())),
        },
    };
    let merged = merge_limits_with_allocatable(target, allocatable);
    container_resource_value(selector, &merged)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn q(s: &str) -> Quantity {
        Quantity(s.to_owned())
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("uid-1".into()),
                labels: Some([("app".into(), "web".into()), ("tier".into(), "a\"b".into())].into()),
                annotations: Some([("note".into(), "line1\nline2".into())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node-1".into()),
                service_account_name: Some("default".into()),
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        limits: Some([("memory".into(), q("64Mi"))].into()),
                        requests: Some([("cpu".into(), q("250m")), ("memory".into(), q("32Mi"))].into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn field(path: &str) -> ObjectFieldSelector {
        ObjectFieldSelector {
            api_version: Some("v1".into()),
            field_path: path.into(),
        }
    }

    #[test]
    fn field_paths() {
        let pod = pod();
        let rt = RuntimeFields {
            pod_ips: vec!["10.244.0.5".into(), "fd00::5".into()],
            host_ips: vec!["192.168.1.2".into()],
        };
        let get = |p: &str| pod_field_value(&field(p), &pod, &rt);
        assert_eq!(get("metadata.name").unwrap(), "web");
        assert_eq!(get("metadata.namespace").unwrap(), "default");
        assert_eq!(get("metadata.uid").unwrap(), "uid-1");
        assert_eq!(get("metadata.labels['app']").unwrap(), "web");
        assert_eq!(get("metadata.labels['missing']").unwrap(), "");
        assert_eq!(get("metadata.labels").unwrap(), "app=\"web\"\ntier=\"a\\\"b\"");
        assert_eq!(get("metadata.annotations").unwrap(), "note=\"line1\\nline2\"");
        assert_eq!(get("metadata.annotations['note']").unwrap(), "line1\nline2");
        assert_eq!(get("spec.nodeName").unwrap(), "node-1");
        assert_eq!(get("spec.host").unwrap(), "node-1");
        assert_eq!(get("spec.serviceAccountName").unwrap(), "default");
        assert_eq!(get("status.hostIP").unwrap(), "192.168.1.2");
        assert_eq!(get("status.hostIPs").unwrap(), "192.168.1.2");
        assert_eq!(get("status.podIP").unwrap(), "10.244.0.5");
        assert_eq!(get("status.podIPs").unwrap(), "10.244.0.5,fd00::5");
        assert_eq!(
            get("status.phase").unwrap_err().to_string(),
            "unsupported fieldPath: status.phase"
        );
        assert_eq!(
            get("spec.containers").unwrap_err().to_string(),
            "field label not supported: spec.containers"
        );
        assert_eq!(
            get("metadata.name['x']").unwrap_err().to_string(),
            "field label does not support subscript: metadata.name['x']"
        );
        assert!(
            get("metadata.labels['bad key']")
                .unwrap_err()
                .to_string()
                .starts_with("invalid key subscript in metadata.labels['bad key']: ")
        );
        let v2 = ObjectFieldSelector {
            api_version: Some("v2".into()),
            field_path: "metadata.name".into(),
        };
        assert_eq!(
            pod_field_value(&v2, &pod, &rt).unwrap_err().to_string(),
            "unsupported pod version: v2"
        );
    }

    fn res(resource: &str, divisor: Option<&str>) -> ResourceFieldSelector {
        ResourceFieldSelector {
            container_name: None,
            divisor: divisor.map(q),
            resource: resource.into(),
        }
    }

    #[test]
    fn resource_fields_with_divisor_and_allocatable() {
        let pod = pod();
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let alloc: BTreeMap<String, Quantity> = [("cpu".into(), q("4")), ("memory".into(), q("8Gi"))].into();
        let get = |r: &str, d: Option<&str>| resource_field_value(&res(r, d), &pod, Some(c), &alloc);
        assert_eq!(get("limits.memory", None).unwrap(), "67108864");
        assert_eq!(get("limits.memory", Some("1Mi")).unwrap(), "64");
        assert_eq!(get("limits.memory", Some("1G")).unwrap(), "1");
        // No cpu limit: node allocatable.
        assert_eq!(get("limits.cpu", None).unwrap(), "4");
        assert_eq!(get("limits.cpu", Some("1m")).unwrap(), "4000");
        assert_eq!(get("requests.cpu", None).unwrap(), "1");
        assert_eq!(get("requests.cpu", Some("1m")).unwrap(), "250");
        assert_eq!(get("requests.memory", Some("1Mi")).unwrap(), "32");
        assert_eq!(get("requests.ephemeral-storage", None).unwrap(), "0");
        assert_eq!(
            get("limits.nvidia.com/gpu", None).unwrap_err().to_string(),
            "unsupported container resource : limits.nvidia.com/gpu"
        );
        let mut other = res("limits.memory", None);
        other.container_name = Some("nope".into());
        assert_eq!(
            resource_field_value(&other, &pod, Some(c), &alloc)
                .unwrap_err()
                .to_string(),
            "container nope not found"
        );
    }
}
