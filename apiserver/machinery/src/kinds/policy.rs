//! The policy/v1 PodDisruptionBudget: defaults, registry strategy and validation.
//!
//! Ports the v1 → internal conversion of the selector (the deprecated v1beta1 match-all /
//! match-none label stripped from user selectors), pkg/registry/policy/poddisruptionbudget/
//! strategy.go (status reset and generation 1 on create, status kept and generation bumped on
//! spec changes, the status strategy, conditional updates only, the old object's invalid
//! selector values tolerated) and pkg/apis/policy/validation (`minAvailable` xor
//! `maxUnavailable`, int-or-percent rules, selector, `unhealthyPodEvictionPolicy`, status
//! counters and conditions). Upstream validates no object metadata for this kind beyond the
//! generic registry's checks.

use std::collections::BTreeSet;

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, LabelSelectorRequirement};

use super::workload_shared::{
    bump_generation, go_bad, go_int_or_string, go_obj, go_opt_str, go_selector, not_more_than_100_percent,
    validate_positive_int_or_percent,
};
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{
    LabelSelectorValidationOptions, regex_error, validate_label_name, validate_label_selector,
    validate_nonnegative_field,
};

/// The label of the selectors that stand for v1beta1's match-all and match-none.
pub const PDB_V1BETA1_LABEL: &str = "pdb.kubernetes.io/deprecated-v1beta1-empty-selector-match";

const EVICTION_POLICIES: &[&str] = &["AlwaysAllow", "IfHealthyBudget"];
const CONDITION_STATUSES: &[&str] = &["False", "True", "Unknown"];
const MAX_REASON_LENGTH: usize = 1024;
const MAX_MESSAGE_LENGTH: usize = 32 * 1024;

/// `Convert_v1_PodDisruptionBudget_To_policy_PodDisruptionBudget`: unless the selector is
/// exactly the match-none (or match-all) one, requirements on the v1beta1 label are dropped.
fn strip_v1beta1_label(selector: &mut Option<LabelSelector>) {
    let Some(selector) = selector else {
        return;
    };
    let match_none = LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: PDB_V1BETA1_LABEL.to_owned(),
            operator: "Exists".to_owned(),
            values: None,
        }]),
        match_labels: None,
    };
    if *selector == match_none || *selector == LabelSelector::default() {
        return;
    }
    if let Some(exprs) = &mut selector.match_expressions {
        exprs.retain(|e| e.key != PDB_V1BETA1_LABEL);
        if exprs.is_empty() {
            selector.match_expressions = None;
        }
    }
}

/// The defaults of a PDB: none upstream, but the v1 conversion of the selector and the status
/// Go always prints.
pub fn default_pod_disruption_budget(pdb: &mut PodDisruptionBudget) {
    let spec = pdb.spec.get_or_insert_with(Default::default);
    strip_v1beta1_label(&mut spec.selector);
    pdb.status.get_or_insert_with(Default::default);
}

fn go_spec(spec: &PodDisruptionBudgetSpec) -> super::go_repr::GoValue {
    go_obj(vec![
        (
            "MinAvailable",
            go_int_or_string(spec.min_available.as_ref(), true),
        ),
        (
            "Selector",
            spec.selector
                .as_ref()
                .map_or(super::go_repr::GoValue::Null, go_selector),
        ),
        (
            "MaxUnavailable",
            go_int_or_string(spec.max_unavailable.as_ref(), true),
        ),
        (
            "UnhealthyPodEvictionPolicy",
            go_opt_str(spec.unhealthy_pod_eviction_policy.as_ref()),
        ),
    ])
}

/// Upstream's `ValidatePodDisruptionBudgetSpec`.
pub fn validate_pdb_spec(
    spec: &PodDisruptionBudgetSpec,
    allow_invalid_label_value: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        errs.push(FieldError::invalid(
            path,
            go_bad(&go_spec(spec)),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (name, value) in [
        ("minAvailable", &spec.min_available),
        ("maxUnavailable", &spec.max_unavailable),
    ] {
        if let Some(value) = value {
            errs.extend(validate_positive_int_or_percent(value, &path.child(name)));
            errs.extend(not_more_than_100_percent(value, &path.child(name)));
        }
    }
    errs.extend(validate_label_selector(
        spec.selector.as_ref(),
        LabelSelectorValidationOptions {
            allow_invalid_label_value_in_selector: allow_invalid_label_value,
            ..Default::default()
        },
        &path.child("selector"),
    ));
    if let Some(policy) = spec
        .unhealthy_pod_eviction_policy
        .as_deref()
        .filter(|p| !EVICTION_POLICIES.contains(p))
    {
        errs.push(FieldError::not_supported(
            &path.child("unhealthyPodEvictionPolicy"),
            policy,
            EVICTION_POLICIES,
        ));
    }
    errs
}

/// `isValidConditionReason`.
fn condition_reason_errors(reason: &str) -> Vec<String> {
    let bytes = reason.as_bytes();
    let ok = bytes.first().is_some_and(u8::is_ascii_alphabetic)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b',' | b':'))
        && bytes
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if ok {
        return Vec::new();
    }
    vec![regex_error(
        "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'",
        "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?",
        &[
            "my_name",
            "MY_NAME",
            "MyName",
            "ReasonA,ReasonB",
            "ReasonA:ReasonB",
        ],
    )]
}

/// apimachinery's `ValidateConditions` (the last-transition time is always set: the v1 type
/// does not decode without it).
pub fn validate_conditions(conditions: &[Condition], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = BTreeSet::new();
    for (i, condition) in conditions.iter().enumerate() {
        let p = path.index(i);
        if !seen.insert(condition.type_.as_str()) {
            errs.push(FieldError::duplicate(&p.child("type"), condition.type_.as_str()));
        }
        errs.extend(validate_label_name(&condition.type_, &p.child("type")));
        if !CONDITION_STATUSES.contains(&condition.status.as_str()) {
            errs.push(FieldError::not_supported(
                &p.child("status"),
                condition.status.as_str(),
                CONDITION_STATUSES,
            ));
        }
        if let Some(generation) = condition.observed_generation.filter(|g| *g < 0) {
            errs.push(FieldError::invalid(
                &p.child("observedGeneration"),
                generation,
                "must be greater than or equal to zero",
            ));
        }
        let reason_path = p.child("reason");
        if condition.reason.is_empty() {
            errs.push(FieldError::required(&reason_path, ""));
        } else {
            errs.extend(
                condition_reason_errors(&condition.reason)
                    .into_iter()
                    .map(|msg| FieldError::invalid(&reason_path, condition.reason.as_str(), msg)),
            );
            if condition.reason.len() > MAX_REASON_LENGTH {
                errs.push(FieldError::too_long(&reason_path, MAX_REASON_LENGTH));
            }
        }
        if condition.message.len() > MAX_MESSAGE_LENGTH {
            errs.push(FieldError::too_long(&p.child("message"), MAX_MESSAGE_LENGTH));
        }
    }
    errs
}

/// Upstream's `ValidatePodDisruptionBudgetStatusUpdate` for policy/v1.
pub fn validate_pdb_status(status: &PodDisruptionBudgetStatus, path: &Path) -> ErrorList {
    let mut errs = validate_conditions(
        status.conditions.as_deref().unwrap_or_default(),
        &path.child("conditions"),
    );
    for (name, value) in [
        ("disruptionsAllowed", status.disruptions_allowed),
        ("currentHealthy", status.current_healthy),
        ("desiredHealthy", status.desired_healthy),
        ("expectedPods", status.expected_pods),
    ] {
        errs.extend(validate_nonnegative_field(i64::from(value), &path.child(name)));
    }
    errs
}

fn spec_of(pdb: &PodDisruptionBudget) -> PodDisruptionBudgetSpec {
    pdb.spec.clone().unwrap_or_default()
}

impl KindStrategy for PodDisruptionBudget {
    fn apply_defaults(&mut self) {
        default_pod_disruption_budget(self);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(PodDisruptionBudgetStatus::default());
        self.metadata.generation = Some(1);
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
        let changed = self.spec != old.spec;
        bump_generation(&mut self.metadata, &old.metadata, changed);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        validate_pdb_spec(&spec_of(self), false, &Path::new("spec"))
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let old_selector = spec_of(old).selector;
        let allow_invalid = old_selector.as_ref().is_some_and(|s| {
            !validate_label_selector(Some(s), LabelSelectorValidationOptions::default(), &Path::root())
                .is_empty()
        });
        validate_pdb_spec(&spec_of(self), allow_invalid, &Path::new("spec"))
    }

    fn validate_status_update(&self, _old: &Self) -> ErrorList {
        validate_pdb_status(&self.status.clone().unwrap_or_default(), &Path::new("status"))
    }

    const ALLOW_UNCONDITIONAL_UPDATE: bool = false;
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::workload_shared::testing::{Gvk, stored};
    use crate::strategy::UpdateTarget;

    const PDB: Gvk = Gvk("policy", "v1", "PodDisruptionBudget");

    fn pdb() -> Value {
        json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}
        })
    }

    #[test]
    fn defaults_like_kube_apiserver() {
        assert_eq!(
            PDB.created(pdb()),
            json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": {"name": "web", "namespace": "default", "generation": 1},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
                "status": {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}
            })
        );
    }

    #[test]
    fn strips_the_v1beta1_label_from_user_selectors() {
        let mut p = pdb();
        p["spec"]["selector"]["matchExpressions"] = json!([
            {"key": "pdb.kubernetes.io/deprecated-v1beta1-empty-selector-match", "operator": "DoesNotExist"}
        ]);
        assert_eq!(
            PDB.created(p)["spec"]["selector"],
            json!({"matchLabels": {"app": "web"}})
        );
        let mut none = pdb();
        none["spec"]["selector"] = json!({"matchExpressions": [
            {"key": "pdb.kubernetes.io/deprecated-v1beta1-empty-selector-match", "operator": "Exists"}
        ]});
        let kept = none["spec"]["selector"].clone();
        assert_eq!(PDB.created(none)["spec"]["selector"], kept);
    }

    fn check(mutate: impl Fn(&mut Value), expected: &[&str]) {
        let mut p = pdb();
        mutate(&mut p);
        assert_eq!(PDB.create_errors(p), expected);
    }

    #[test]
    fn validation() {
        check(
            |p| p["spec"]["maxUnavailable"] = json!("10%"),
            &[
                "spec: Invalid value: {\"MinAvailable\":1,\"Selector\":{\"matchLabels\":{\"app\":\"web\"}},\"MaxUnavailable\":\"10%\",\"UnhealthyPodEvictionPolicy\":null}: minAvailable and maxUnavailable cannot be both set",
            ],
        );
        check(
            |p| p["spec"]["minAvailable"] = json!("120%"),
            &["spec.minAvailable: Invalid value: \"120%\": must not be greater than 100%"],
        );
        check(
            |p| p["spec"]["minAvailable"] = json!(-1),
            &["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"],
        );
        check(
            |p| p["spec"]["unhealthyPodEvictionPolicy"] = json!("Never"),
            &[
                "spec.unhealthyPodEvictionPolicy: Unsupported value: \"Never\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\"",
            ],
        );
        check(
            |p| p["spec"]["selector"] = json!({"matchLabels": {"app": "-bad-"}}),
            &[
                "spec.selector.matchLabels: Invalid value: \"-bad-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ],
        );
        check(
            |p| {
                p["spec"].as_object_mut().unwrap().remove("minAvailable");
            },
            &[],
        );
    }

    #[test]
    fn updates() {
        let old = stored(PDB.created(pdb()));
        let mut new = old.clone();
        new["spec"]["minAvailable"] = json!("50%");
        new["status"]["expectedPods"] = json!(3);
        let out = PDB.updated(new, &old, UpdateTarget::Main);
        assert_eq!(out["metadata"]["generation"], json!(2));
        assert_eq!(out["status"]["expectedPods"], json!(0));
        assert!(
            !crate::kinds::ops("policy", "v1", "PodDisruptionBudget")
                .unwrap()
                .allow_unconditional_update
        );

        let mut status = old.clone();
        status["spec"]["minAvailable"] = json!(5);
        status["status"] = json!({
            "currentHealthy": 1, "desiredHealthy": 1, "disruptionsAllowed": -1, "expectedPods": 1,
            "conditions": [
                {"type": "DisruptionAllowed", "status": "Maybe", "reason": "", "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                {"type": "DisruptionAllowed", "status": "True", "reason": "1bad", "message": "", "lastTransitionTime": "2025-01-01T00:00:00Z"}
            ]
        });
        assert_eq!(
            PDB.update_errors(status.clone(), &old, UpdateTarget::Status),
            [
                "status.conditions[0].status: Unsupported value: \"Maybe\": supported values: \"False\", \"True\", \"Unknown\"",
                "status.conditions[0].reason: Required value",
                "status.conditions[1].type: Duplicate value: \"DisruptionAllowed\"",
                "status.conditions[1].reason: Invalid value: \"1bad\": a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName',  or 'ReasonA,ReasonB',  or 'ReasonA:ReasonB', regex used for validation is '[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?')",
                "status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
        status["status"] =
            json!({"currentHealthy": 1, "desiredHealthy": 1, "disruptionsAllowed": 0, "expectedPods": 1});
        let out = PDB.updated(status, &old, UpdateTarget::Status);
        assert_eq!(out["spec"]["minAvailable"], json!(1));
        assert_eq!(out["status"]["currentHealthy"], json!(1));
    }
}
