//! The strategies of the built-in kinds.
//!
//! Kinds with their own rules implement [`KindStrategy`] in the module of their group; every
//! other served kind is listed in `default_strategy!` below and behaves like a kind without
//! special rules. `ops` maps a group/version/kind to its type-erased operations.

use crate::strategy::{KindOps, KindStrategy};

pub mod admissionregistration;
mod api_shared;
pub mod apiextensions;
pub mod apiregistration;
pub mod certificates;
pub mod config;
pub mod coordination;
mod core_shared;
pub mod discovery;
pub mod event;
pub mod events;
pub mod flowcontrol;
pub mod namespace;
pub mod networking;
pub mod node;
pub mod persistent_volume;
pub mod quota;
pub mod rbac;
pub mod resource;
pub mod runtime_class;
pub mod scheduling;
pub mod service;
pub mod storage;

pub mod apps;
pub mod autoscaling;
pub mod cron_job;
pub mod daemon_set;
mod go_repr;
pub mod job;
pub mod pod;
pub mod pod_container;
pub mod pod_spec;
pub mod pod_template;
pub mod pod_volume;
pub mod policy;
pub mod replication_controller;
pub mod stateful_set;
mod time_zones;
mod workload_shared;

/// Implements [`KindStrategy`] with the default behaviour for kinds without special rules.
macro_rules! default_strategy {
    ($($t:ty),* $(,)?) => {
        $(impl KindStrategy for $t {})*
    };
}

default_strategy!(
    k8s_openapi::api::authentication::v1::SelfSubjectReview,
    k8s_openapi::api::authentication::v1::TokenRequest,
    k8s_openapi::api::authentication::v1::TokenReview,
    k8s_openapi::api::authorization::v1::LocalSubjectAccessReview,
    k8s_openapi::api::authorization::v1::SelfSubjectAccessReview,
    k8s_openapi::api::authorization::v1::SelfSubjectRulesReview,
    k8s_openapi::api::authorization::v1::SubjectAccessReview,
    k8s_openapi::api::autoscaling::v1::Scale,
    k8s_openapi::api::core::v1::Binding,
    k8s_openapi::api::core::v1::ComponentStatus,
    k8s_openapi::api::policy::v1::Eviction,
);

macro_rules! kind_table {
    ($(($group:literal, $version:literal, $kind:literal) => $t:ty),* $(,)?) => {
        /// The operations of a built-in kind.
        pub fn ops(group: &str, version: &str, kind: &str) -> Option<KindOps> {
            match (group, version, kind) {
                $(($group, $version, $kind) => Some(KindOps::of::<$t>()),)*
                _ => None,
            }
        }
    };
}

for_each_builtin_kind!(kind_table);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::RESOURCES;

    #[test]
    fn every_served_kind_has_operations() {
        for resource in RESOURCES {
            assert!(
                ops(resource.group, resource.version, resource.kind).is_some(),
                "{resource:?}"
            );
        }
    }

    #[test]
    fn decoding_drops_unknown_fields_and_rejects_wrong_types() {
        let ops = ops("", "v1", "ConfigMap").unwrap();
        let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "bogus": 1}, "data": {"k": "v"}, "extra": true});
        let out = (ops.normalize)(cm).unwrap();
        assert_eq!(
            out,
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}})
        );
        let bad = serde_json::json!({"metadata": {"name": "a"}, "data": {"k": 1}});
        assert!(matches!(
            (ops.normalize)(bad),
            Err(crate::strategy::PipelineError::Decode(_))
        ));
    }
}
