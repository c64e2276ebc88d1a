//! The strategy of scheduling.k8s.io/v1 PriorityClass.
//!
//! Ports `SetDefaults_PriorityClass` (preemptionPolicy `PreemptLowerPriority`),
//! pkg/registry/scheduling/priorityclass/strategy.go (generation 1 on create) and
//! `ValidatePriorityClass*` of pkg/apis/scheduling/validation/validation.go: the reserved
//! `system-` prefix, the highest user-definable value, the preemption policy enum, and the
//! immutable value and preemption policy.

use k8s_openapi::api::scheduling::v1::PriorityClass;

use super::api_shared::{core_meta, core_meta_update, init_generation};
use super::core_shared::str_of;
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{name_is_dns_subdomain, validate_immutable_field};

/// The highest value of a user-defined priority class.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;
/// The value of `system-cluster-critical`.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;
/// The prefix reserved for the system priority classes.
pub const SYSTEM_PRIORITY_CLASS_PREFIX: &str = "system-";
const PREEMPT_LOWER_PRIORITY: &str = "PreemptLowerPriority";
const PREEMPT_NEVER: &str = "Never";

/// The system priority classes: name, value and globalDefault.
const SYSTEM_PRIORITY_CLASSES: [(&str, i32, bool); 2] = [
    ("system-node-critical", SYSTEM_CRITICAL_PRIORITY + 1000, false),
    ("system-cluster-critical", SYSTEM_CRITICAL_PRIORITY, false),
];

/// Upstream's `IsKnownSystemPriorityClass`: `Err` carries the reason.
fn is_known_system_priority_class(name: &str, value: i32, global_default: bool) -> Result<(), String> {
    match SYSTEM_PRIORITY_CLASSES.iter().find(|(n, _, _)| *n == name) {
        Some((name, expected, _)) if *expected != value => {
            Err(format!("value of {name} PriorityClass must be {expected}"))
        }
        Some((name, _, expected)) if *expected != global_default => Err(format!(
            "globalDefault of {name} PriorityClass must be {expected}"
        )),
        Some(_) => Ok(()),
        None => Err(format!("{name} is not a known system priority class")),
    }
}

/// Core's `ValidatePreemptionPolicy`.
pub fn validate_preemption_policy(policy: &str, path: &Path) -> ErrorList {
    match policy {
        PREEMPT_LOWER_PRIORITY | PREEMPT_NEVER => Vec::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &[PREEMPT_LOWER_PRIORITY, PREEMPT_NEVER],
        )],
    }
}

impl KindStrategy for PriorityClass {
    fn apply_defaults(&mut self) {
        if self.preemption_policy.is_none() {
            self.preemption_policy = Some(PREEMPT_LOWER_PRIORITY.to_owned());
        }
    }

    fn prepare_for_create(&mut self) {
        init_generation(&mut self.metadata);
    }

    fn validate(&self) -> ErrorList {
        let mut errs = core_meta(&self.metadata, false, name_is_dns_subdomain);
        let name = str_of(&self.metadata.name);
        if name.starts_with(SYSTEM_PRIORITY_CLASS_PREFIX) {
            if let Err(reason) =
                is_known_system_priority_class(name, self.value, self.global_default.unwrap_or_default())
            {
                errs.push(FieldError::forbidden(
                    &Path::new("metadata").child("name"),
                    format!(
                        "priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' prefix are reserved for system use only. error: {reason}"
                    ),
                ));
            }
        } else if self.value > HIGHEST_USER_DEFINABLE_PRIORITY {
            errs.push(FieldError::forbidden(
                &Path::new("value"),
                format!(
                    "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
                ),
            ));
        }
        if let Some(policy) = &self.preemption_policy {
            errs.extend(validate_preemption_policy(policy, &Path::new("preemptionPolicy")));
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = core_meta_update(&self.metadata, &old.metadata);
        if self.value != old.value {
            errs.push(FieldError::forbidden(
                &Path::new("value"),
                "may not be changed in an update.",
            ));
        }
        errs.extend(validate_immutable_field(
            &self.preemption_policy,
            &old.preemption_policy,
            &Path::new("preemptionPolicy"),
        ));
        errs
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::api_shared::testing::{check_create_cases, create, update_errors};
    use crate::strategy::UpdateTarget;

    const API: &str = "scheduling.k8s.io/v1";

    #[test]
    fn defaults() {
        let out = create(
            json!({"apiVersion": API, "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": API, "kind": "PriorityClass",
                "metadata": {"name": "high", "generation": 1},
                "preemptionPolicy": "PreemptLowerPriority",
                "value": 1000
            })
        );
    }

    #[test]
    fn validation() {
        let pc = |name: &str, value: i64, extra: serde_json::Value| {
            let mut object = json!({"apiVersion": API, "kind": "PriorityClass", "metadata": {"name": name}, "value": value});
            for (k, v) in extra.as_object().unwrap() {
                object[k] = v.clone();
            }
            object
        };
        check_create_cases(&[
            (pc("system-node-critical", 2_000_001_000, json!({})), vec![]),
            (
                pc("system-cluster-critical", 5, json!({})),
                vec![
                    "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-cluster-critical PriorityClass must be 2000000000",
                ],
            ),
            (
                pc(
                    "system-cluster-critical",
                    2_000_000_000,
                    json!({"globalDefault": true}),
                ),
                vec![
                    "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: globalDefault of system-cluster-critical PriorityClass must be false",
                ],
            ),
            (
                pc("system-mine", 1, json!({})),
                vec![
                    "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class",
                ],
            ),
            (
                pc("big", 1_000_000_001, json!({"preemptionPolicy": "Sometimes"})),
                vec![
                    "value: Forbidden: maximum allowed value of a user defined priority is 1000000000",
                    "preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"PreemptLowerPriority\", \"Never\"",
                ],
            ),
        ]);
    }

    #[test]
    fn value_and_policy_are_immutable() {
        let old = json!({"apiVersion": API, "kind": "PriorityClass", "metadata": {"name": "a", "resourceVersion": "1", "generation": 1},
            "value": 1, "preemptionPolicy": "Never"});
        let new = json!({"apiVersion": API, "kind": "PriorityClass", "metadata": {"name": "a", "resourceVersion": "1", "generation": 1},
            "value": 2, "preemptionPolicy": "PreemptLowerPriority"});
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            [
                "value: Forbidden: may not be changed in an update.",
                "preemptionPolicy: Invalid value: \"PreemptLowerPriority\": field is immutable",
            ]
        );
    }
}
