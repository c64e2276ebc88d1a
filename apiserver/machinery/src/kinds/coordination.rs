//! The strategy of coordination.k8s.io/v1 Lease.
//!
//! Ports pkg/registry/coordination/lease/strategy.go (create on update, no unconditional
//! updates, `strategy` and `preferredHolder` dropped while the CoordinatedLeaderElection
//! feature is off, as it is by default) and `ValidateLease*` of
//! pkg/apis/coordination/validation/validation.go.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};

use super::api_shared::{generic_meta, generic_meta_update};
use super::core_shared::str_of;
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{is_qualified_name, name_is_dns_subdomain};

const OLDEST_EMULATION_VERSION: &str = "OldestEmulationVersion";

/// Upstream's `ValidateCoordinatedLeaseStrategy`. Upstream passes it a path that already ends
/// in `strategy` and adds another `strategy`; so does this.
fn validate_coordinated_lease_strategy(strategy: &str, path: &Path) -> ErrorList {
    let path = path.child("strategy");
    if !strategy.contains('/') {
        if strategy != OLDEST_EMULATION_VERSION {
            return vec![FieldError::not_supported(
                &path,
                strategy,
                &[OLDEST_EMULATION_VERSION],
            )];
        }
        return Vec::new();
    }
    is_qualified_name(strategy)
        .into_iter()
        .map(|msg| FieldError::invalid(&path, strategy, msg))
        .collect()
}

fn validate_lease_spec(spec: &LeaseSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(seconds) = spec.lease_duration_seconds.filter(|s| *s <= 0) {
        errs.push(FieldError::invalid(
            &path.child("leaseDurationSeconds"),
            seconds,
            "must be greater than 0",
        ));
    }
    if let Some(transitions) = spec.lease_transitions.filter(|t| *t < 0) {
        errs.push(FieldError::invalid(
            &path.child("leaseTransitions"),
            transitions,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(strategy) = &spec.strategy {
        errs.extend(validate_coordinated_lease_strategy(
            strategy,
            &path.child("strategy"),
        ));
    }
    if !str_of(&spec.preferred_holder).is_empty() && str_of(&spec.strategy).is_empty() {
        errs.push(FieldError::forbidden(
            &path.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

impl KindStrategy for Lease {
    /// The spec is a non-pointer struct upstream: always written.
    fn apply_defaults(&mut self) {
        self.spec.get_or_insert_with(LeaseSpec::default);
    }

    fn prepare_for_create(&mut self) {
        if let Some(spec) = &mut self.spec {
            spec.strategy = None;
            spec.preferred_holder = None;
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        let old_spec = old.spec.as_ref();
        if let Some(spec) = &mut self.spec {
            if old_spec.is_none_or(|s| s.strategy.is_none()) {
                spec.strategy = None;
            }
            if old_spec.is_none_or(|s| s.preferred_holder.is_none()) {
                spec.preferred_holder = None;
            }
        }
    }

    fn validate(&self) -> ErrorList {
        let mut errs = generic_meta(&self.metadata, true, name_is_dns_subdomain);
        errs.extend(validate_lease_spec(
            &self.spec.clone().unwrap_or_default(),
            &Path::new("spec"),
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = generic_meta_update(&self.metadata, &old.metadata);
        errs.extend(validate_lease_spec(
            &self.spec.clone().unwrap_or_default(),
            &Path::new("spec"),
        ));
        errs
    }

    const ALLOW_CREATE_ON_UPDATE: bool = true;
    const ALLOW_UNCONDITIONAL_UPDATE: bool = false;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::api_shared::testing::{check_create_cases, create, update};
    use crate::strategy::UpdateTarget;

    const API: &str = "coordination.k8s.io/v1";

    #[test]
    fn defaults_and_disabled_fields() {
        let out =
            create(json!({"apiVersion": API, "kind": "Lease", "metadata": {"name": "l", "namespace": "ns"}}))
                .unwrap();
        assert_eq!(
            out,
            json!({"apiVersion": API, "kind": "Lease", "metadata": {"name": "l", "namespace": "ns"}, "spec": {}})
        );
        let out = create(json!({"apiVersion": API, "kind": "Lease", "metadata": {"name": "l", "namespace": "ns"},
            "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15, "strategy": "OldestEmulationVersion", "preferredHolder": "x"}}))
        .unwrap();
        assert_eq!(
            out["spec"],
            json!({"holderIdentity": "me", "leaseDurationSeconds": 15})
        );
        let old = json!({"apiVersion": API, "kind": "Lease", "metadata": {"name": "l", "namespace": "ns", "resourceVersion": "1"},
            "spec": {"strategy": "OldestEmulationVersion"}});
        let new = json!({"apiVersion": API, "kind": "Lease", "metadata": {"name": "l", "namespace": "ns", "resourceVersion": "1"},
            "spec": {"strategy": "OldestEmulationVersion", "preferredHolder": "x"}});
        let out = update(new, &old, UpdateTarget::Main).unwrap();
        assert_eq!(out["spec"], json!({"strategy": "OldestEmulationVersion"}));
    }

    #[test]
    fn validation() {
        check_create_cases(&[(
            json!({"apiVersion": API, "kind": "Lease", "metadata": {"name": "l", "namespace": "ns"},
                "spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}),
            vec![
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            ],
        )]);
        let old = json!({"apiVersion": API, "kind": "Lease", "metadata": {"name": "l", "namespace": "ns", "resourceVersion": "1"},
            "spec": {"strategy": "Bad"}});
        let new = json!({"apiVersion": API, "kind": "Lease", "metadata": {"name": "l", "namespace": "ns", "resourceVersion": "1"},
            "spec": {"strategy": "Bad"}});
        assert_eq!(
            super::super::api_shared::testing::update_errors(new, &old, UpdateTarget::Main),
            [
                "spec.strategy.strategy: Unsupported value: \"Bad\": supported values: \"OldestEmulationVersion\""
            ]
        );
    }
}
