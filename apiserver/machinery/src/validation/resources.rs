//! Compute resource names and quantities, as pkg/apis/core/helper classifies them and
//! pkg/apis/core/validation checks them: standard names (`cpu`, `requests.memory`, ...),
//! extended resources (`example.com/gpu`), hugepages, quota scopes, and the quantity rules of
//! resource lists.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::formats::is_qualified_name;
use super::meta::name_errors;
use super::quantity::{ParsedQuantity, parse_quantity_field, validate_nonnegative_quantity};
use crate::field::{ErrorList, FieldError, Path};

/// `must be an integer`.
pub const IS_NOT_INTEGER_ERROR_MSG: &str = "must be an integer";
/// `must be a standard resource for quota`.
pub const IS_INVALID_QUOTA_RESOURCE: &str = "must be a standard resource for quota";
/// The prefix of hugepage resources.
pub const RESOURCE_HUGE_PAGES_PREFIX: &str = "hugepages-";
/// The prefix of hugepage request quotas.
pub const RESOURCE_REQUESTS_HUGE_PAGES_PREFIX: &str = "requests.hugepages-";
/// The prefix of the quota names of extended resources.
pub const DEFAULT_RESOURCE_REQUESTS_PREFIX: &str = "requests.";
/// The namespace of native resources with a prefix.
pub const RESOURCE_DEFAULT_NAMESPACE_PREFIX: &str = "kubernetes.io/";

const STANDARD_CONTAINER_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage"];

const STANDARD_QUOTA_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "persistentvolumeclaims",
    "configmaps",
    "services.nodeports",
    "services.loadbalancers",
];

const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

const INTEGER_RESOURCES: &[&str] = &[
    "pods",
    "resourcequotas",
    "services",
    "replicationcontrollers",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
];

/// The quota scopes core knows.
pub const STANDARD_RESOURCE_QUOTA_SCOPES: &[&str] = &[
    "Terminating",
    "NotTerminating",
    "BestEffort",
    "NotBestEffort",
    "PriorityClass",
    "VolumeAttributesClass",
    "CrossNamespacePodAffinity",
];

/// The limit types of a LimitRange.
pub const STANDARD_LIMIT_RANGE_TYPES: &[&str] = &["Pod", "Container", "PersistentVolumeClaim"];

/// `hugepages-<size>`.
pub fn is_huge_page_resource_name(name: &str) -> bool {
    name.starts_with(RESOURCE_HUGE_PAGES_PREFIX)
}

/// `hugepages-<size>` or `requests.hugepages-<size>`.
pub fn is_quota_huge_page_resource_name(name: &str) -> bool {
    name.starts_with(RESOURCE_HUGE_PAGES_PREFIX) || name.starts_with(RESOURCE_REQUESTS_HUGE_PAGES_PREFIX)
}

/// A resource of the default namespace: no domain, or `kubernetes.io/`.
pub fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains(RESOURCE_DEFAULT_NAMESPACE_PREFIX)
}

/// An extended resource: not native, not `requests.`-prefixed, and `requests.<name>` is a
/// qualified name.
pub fn is_extended_resource_name(name: &str) -> bool {
    if is_native_resource(name) || name.starts_with(DEFAULT_RESOURCE_REQUESTS_PREFIX) {
        return false;
    }
    is_qualified_name(&format!("{DEFAULT_RESOURCE_REQUESTS_PREFIX}{name}")).is_empty()
}

/// Whether requests may be lower than limits for the resource (not for hugepages or extended
/// resources).
pub fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_huge_page_resource_name(name)
}

/// `cpu`, `memory`, `ephemeral-storage` or hugepages.
pub fn is_standard_container_resource_name(name: &str) -> bool {
    STANDARD_CONTAINER_RESOURCES.contains(&name) || is_huge_page_resource_name(name)
}

/// A resource a quota may limit.
pub fn is_standard_quota_resource_name(name: &str) -> bool {
    STANDARD_QUOTA_RESOURCES.contains(&name) || is_quota_huge_page_resource_name(name)
}

/// A standard resource name.
pub fn is_standard_resource_name(name: &str) -> bool {
    STANDARD_RESOURCES.contains(&name) || is_quota_huge_page_resource_name(name)
}

/// A resource whose quantities must be integers (object counts and extended resources).
pub fn is_integer_resource_name(name: &str) -> bool {
    INTEGER_RESOURCES.contains(&name) || is_extended_resource_name(name)
}

/// A LimitRange type core knows.
pub fn is_standard_limit_range_type(value: &str) -> bool {
    STANDARD_LIMIT_RANGE_TYPES.contains(&value)
}

/// A quota scope core knows.
pub fn is_standard_resource_quota_scope(scope: &str) -> bool {
    STANDARD_RESOURCE_QUOTA_SCOPES.contains(&scope)
}

/// Whether a quota scope applies to a resource.
pub fn is_resource_quota_scope_valid_for_resource(scope: &str, resource: &str) -> bool {
    let pod_object_count = resource == "pods";
    let pod_compute = [
        "cpu",
        "memory",
        "limits.cpu",
        "limits.memory",
        "requests.cpu",
        "requests.memory",
    ]
    .contains(&resource);
    match scope {
        "Terminating"
        | "NotTerminating"
        | "NotBestEffort"
        | "PriorityClass"
        | "CrossNamespacePodAffinity" => pod_object_count || pod_compute,
        "BestEffort" => pod_object_count,
        "VolumeAttributesClass" => resource == "persistentvolumeclaims" || resource == "requests.storage",
        _ => true,
    }
}

/// A compute resource name: qualified, and standard unless it has a domain.
pub fn validate_resource_name(value: &str, path: &Path) -> ErrorList {
    let errs = name_errors(path, value, is_qualified_name(value));
    if !errs.is_empty() {
        return errs;
    }
    if !value.contains('/') && !is_standard_resource_name(value) {
        return vec![FieldError::invalid(
            path,
            value,
            "must be a standard resource type or fully qualified",
        )];
    }
    errs
}

/// A container resource name: a resource name that is a standard container resource, or an
/// extended resource.
pub fn validate_container_resource_name(value: &str, path: &Path) -> ErrorList {
    let mut errs = validate_resource_name(value, path);
    if !value.contains('/') {
        if !is_standard_container_resource_name(value) {
            errs.push(FieldError::invalid(
                path,
                value,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(value) && !is_extended_resource_name(value) {
        errs.push(FieldError::invalid(
            path,
            value,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// A resource name in a quota.
pub fn validate_resource_quota_resource_name(value: &str, path: &Path) -> ErrorList {
    let mut errs = validate_resource_name(value, path);
    if !value.contains('/') && !is_standard_quota_resource_name(value) {
        errs.push(FieldError::invalid(path, value, IS_INVALID_QUOTA_RESOURCE));
    }
    errs
}

/// A quantity of a resource: not negative, and an integer for integer resources.
pub fn validate_resource_quantity_value(resource: &str, value: &ParsedQuantity, path: &Path) -> ErrorList {
    let mut errs = validate_nonnegative_quantity(value, path);
    if is_integer_resource_name(resource) && value.milli_value() % 1000 != 0 {
        errs.push(FieldError::invalid(
            path,
            value.to_string(),
            IS_NOT_INTEGER_ERROR_MSG,
        ));
    }
    errs
}

/// [`validate_resource_quantity_value`] of a quantity string (an unparsable one is reported).
pub fn validate_resource_quantity(resource: &str, value: &Quantity, path: &Path) -> ErrorList {
    match parse_quantity_field(value, path) {
        Ok(parsed) => validate_resource_quantity_value(resource, &parsed, path),
        Err(err) => vec![err],
    }
}

/// Upstream's `validateBasicResource`: `Value() >= 0`.
pub fn validate_basic_resource(value: &ParsedQuantity, path: &Path) -> ErrorList {
    if value.value() < 0 {
        return vec![FieldError::invalid(
            path,
            value.value(),
            "must be a valid resource quantity",
        )];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::quantity::parse_quantity;

    fn rendered(errs: ErrorList) -> Vec<String> {
        #![allow(clippy::needless_pass_by_value)]
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn classifies_resource_names() {
        assert!(is_extended_resource_name("example.com/gpu"));
        assert!(!is_extended_resource_name("kubernetes.io/gpu"));
        assert!(!is_extended_resource_name("cpu"));
        assert!(is_integer_resource_name("pods"));
        assert!(is_integer_resource_name("example.com/gpu"));
        assert!(!is_integer_resource_name("cpu"));
        assert!(is_standard_quota_resource_name("requests.hugepages-2Mi"));
        assert!(!is_overcommit_allowed("hugepages-2Mi"));
        assert!(is_resource_quota_scope_valid_for_resource("BestEffort", "pods"));
        assert!(!is_resource_quota_scope_valid_for_resource("BestEffort", "cpu"));
    }

    #[test]
    fn validates_resource_names() {
        let p = Path::new("spec").child("hard").key("x");
        type Check = fn(&str, &Path) -> ErrorList;
        let cases: &[(Check, &str, &[&str])] = &[
            (validate_resource_name, "cpu", &[]),
            (validate_resource_name, "example.com/foo", &[]),
            (
                validate_resource_name,
                "foo",
                &[
                    "spec.hard[x]: Invalid value: \"foo\": must be a standard resource type or fully qualified",
                ],
            ),
            (
                validate_resource_quota_resource_name,
                "storage",
                &["spec.hard[x]: Invalid value: \"storage\": must be a standard resource for quota"],
            ),
            (validate_resource_quota_resource_name, "count/pods", &[]),
            (
                validate_container_resource_name,
                "pods",
                &["spec.hard[x]: Invalid value: \"pods\": must be a standard resource for containers"],
            ),
            (validate_container_resource_name, "example.com/gpu", &[]),
        ];
        for (f, value, expected) in cases {
            assert_eq!(rendered(f(value, &p)), *expected, "{value}");
        }
    }

    #[test]
    fn validates_quantities() {
        let p = Path::new("q");
        let q = |s| parse_quantity(s).unwrap();
        assert_eq!(
            rendered(validate_resource_quantity_value("pods", &q("1500m"), &p)),
            ["q: Invalid value: \"1500m\": must be an integer"]
        );
        assert!(validate_resource_quantity_value("cpu", &q("1500m"), &p).is_empty());
        assert_eq!(
            rendered(validate_resource_quantity_value("cpu", &q("-1"), &p)),
            ["q: Invalid value: \"-1\": must be greater than or equal to 0"]
        );
        assert_eq!(
            rendered(validate_basic_resource(&q("-1"), &p)),
            ["q: Invalid value: -1: must be a valid resource quantity"]
        );
        assert_eq!(
            validate_resource_quantity("cpu", &Quantity("1x".into()), &p).len(),
            1
        );
    }
}
