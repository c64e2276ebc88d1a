//! The strategies of the built-in kinds.
//!
//! Kinds with their own rules implement [`KindStrategy`] in the module of their group; every
//! other served kind is listed in `default_strategy!` below and behaves like a kind without
//! special rules. `ops` maps a group/version/kind to its type-erased operations.

use crate::strategy::{KindOps, KindStrategy};

pub mod config;
mod core_shared;
pub mod event;
pub mod namespace;
pub mod node;
pub mod persistent_volume;
pub mod quota;
pub mod service;

mod go_repr;
pub mod pod;
pub mod pod_container;
pub mod pod_spec;
pub mod pod_template;
pub mod pod_volume;
pub mod replication_controller;

/// Implements [`KindStrategy`] with the default behaviour for kinds without special rules.
macro_rules! default_strategy {
    ($($t:ty),* $(,)?) => {
        $(impl KindStrategy for $t {})*
    };
}

default_strategy!(
    k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration,
    k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicy,
    k8s_openapi::api::admissionregistration::v1::ValidatingAdmissionPolicyBinding,
    k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration,
    k8s_openapi::api::apps::v1::ControllerRevision,
    k8s_openapi::api::apps::v1::DaemonSet,
    k8s_openapi::api::apps::v1::Deployment,
    k8s_openapi::api::apps::v1::ReplicaSet,
    k8s_openapi::api::apps::v1::StatefulSet,
    k8s_openapi::api::authentication::v1::SelfSubjectReview,
    k8s_openapi::api::authentication::v1::TokenRequest,
    k8s_openapi::api::authentication::v1::TokenReview,
    k8s_openapi::api::authorization::v1::LocalSubjectAccessReview,
    k8s_openapi::api::authorization::v1::SelfSubjectAccessReview,
    k8s_openapi::api::authorization::v1::SelfSubjectRulesReview,
    k8s_openapi::api::authorization::v1::SubjectAccessReview,
    k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler,
    k8s_openapi::api::autoscaling::v1::Scale,
    k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler,
    k8s_openapi::api::batch::v1::CronJob,
    k8s_openapi::api::batch::v1::Job,
    k8s_openapi::api::certificates::v1::CertificateSigningRequest,
    k8s_openapi::api::coordination::v1::Lease,
    k8s_openapi::api::core::v1::Binding,
    k8s_openapi::api::core::v1::ComponentStatus,
    k8s_openapi::api::discovery::v1::EndpointSlice,
    k8s_openapi::api::events::v1::Event,
    k8s_openapi::api::flowcontrol::v1::FlowSchema,
    k8s_openapi::api::flowcontrol::v1::PriorityLevelConfiguration,
    k8s_openapi::api::networking::v1::IPAddress,
    k8s_openapi::api::networking::v1::Ingress,
    k8s_openapi::api::networking::v1::IngressClass,
    k8s_openapi::api::networking::v1::NetworkPolicy,
    k8s_openapi::api::networking::v1::ServiceCIDR,
    k8s_openapi::api::node::v1::RuntimeClass,
    k8s_openapi::api::policy::v1::Eviction,
    k8s_openapi::api::policy::v1::PodDisruptionBudget,
    k8s_openapi::api::rbac::v1::ClusterRole,
    k8s_openapi::api::rbac::v1::ClusterRoleBinding,
    k8s_openapi::api::rbac::v1::Role,
    k8s_openapi::api::rbac::v1::RoleBinding,
    k8s_openapi::api::resource::v1::DeviceClass,
    k8s_openapi::api::resource::v1::ResourceClaim,
    k8s_openapi::api::resource::v1::ResourceClaimTemplate,
    k8s_openapi::api::resource::v1::ResourceSlice,
    k8s_openapi::api::scheduling::v1::PriorityClass,
    k8s_openapi::api::storage::v1::CSIDriver,
    k8s_openapi::api::storage::v1::CSINode,
    k8s_openapi::api::storage::v1::CSIStorageCapacity,
    k8s_openapi::api::storage::v1::StorageClass,
    k8s_openapi::api::storage::v1::VolumeAttachment,
    k8s_openapi::api::storage::v1::VolumeAttributesClass,
    k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
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
