//! The admission chain: mutating plugins run after decoding and defaulting, validating
//! plugins after the strategy, as in kube-apiserver's default plugin set.
//!
//! A plugin sees the resource, the operation, the new object and the old one, and may read
//! other objects through the store. Each plugin is one small type; the chain knows nothing of
//! particular kinds.

mod common;
mod default_ingress_class;
mod default_storage_class;
mod default_toleration_seconds;
mod limit_ranger;
mod namespace_lifecycle;
mod priority;
mod resource_quota;
mod service_account;
mod storage_object_in_use_protection;
mod taint_nodes_by_condition;

use serde_json::Value;

use crate::registry::Resource;
use crate::status::ApiError;
use crate::store::GenericStore;

pub use namespace_lifecycle::IMMORTAL_NAMESPACES;
pub(crate) use resource_quota::Charge;

/// What a request does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// A create.
    Create,
    /// An update or patch.
    Update,
    /// A delete.
    Delete,
}

/// One admission plugin.
pub trait Plugin: Send + Sync {
    /// The plugin's name.
    fn name(&self) -> &'static str;

    /// Changes the object before the strategy validates it.
    fn mutate(
        &self,
        _store: &GenericStore,
        _resource: &Resource,
        _operation: Operation,
        _object: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        Ok(())
    }

    /// Accepts or refuses the final object.
    fn validate(
        &self,
        _store: &GenericStore,
        _resource: &Resource,
        _operation: Operation,
        _object: &Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        Ok(())
    }
}

/// The chain of plugins.
#[derive(Default)]
pub struct Admission {
    plugins: Vec<Box<dyn Plugin>>,
    /// Whether `ResourceQuota` runs: the last validating plugin, the one that writes (quota
    /// status) and so runs apart, just before the object is stored.
    resource_quota: bool,
}

impl Admission {
    /// The default plugins of kube-apiserver that Rudder implements, in upstream's order
    /// (pkg/kubeapiserver/options/plugins.go `AllOrderedPlugins`).
    pub fn default_plugins() -> Admission {
        Admission {
            plugins: vec![
                Box::new(namespace_lifecycle::NamespaceLifecycle),
                Box::new(limit_ranger::LimitRanger),
                Box::new(service_account::ServiceAccount),
                Box::new(taint_nodes_by_condition::TaintNodesByCondition),
                Box::new(priority::Priority),
                Box::new(default_toleration_seconds::DefaultTolerationSeconds),
                Box::new(default_storage_class::DefaultStorageClass),
                Box::new(storage_object_in_use_protection::StorageObjectInUseProtection),
                Box::new(default_ingress_class::DefaultIngressClass),
            ],
            resource_quota: true,
        }
    }

    /// Runs every mutating plugin.
    pub fn mutate(
        &self,
        store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        for plugin in &self.plugins {
            plugin.mutate(store, resource, operation, object, old)?;
        }
        Ok(())
    }

    /// Runs every validating plugin.
    pub fn validate(
        &self,
        store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        for plugin in &self.plugins {
            plugin.validate(store, resource, operation, object, old)?;
        }
        Ok(())
    }

    /// Runs `ResourceQuota`: checks the request against its namespace's quotas and charges
    /// them, after every other plugin and just before the object is stored.
    pub(crate) async fn charge_quota(
        &self,
        store: &GenericStore,
        resource: &Resource,
        charge: Charge<'_>,
    ) -> Result<(), ApiError> {
        if !self.resource_quota {
            return Ok(());
        }
        resource_quota::charge(store, resource, charge).await
    }
}
