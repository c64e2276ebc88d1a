//! `ResourceQuota`: the last validating plugin. A create (or an update that changes usage)
//! is checked against every ResourceQuota of its namespace that counts it, with upstream's
//! messages, and the quotas' `status.used` are charged before the object is stored.
//!
//! What an object consumes comes from `rudder_machinery::quota`, the same evaluators the
//! resourcequota controller uses. It writes ResourceQuota status only, through the store with
//! optimistic concurrency, rechecking against the quota it read on every retry; nothing else.

use k8s_openapi::api::core::v1::ResourceQuota;
use rudder_machinery::quota::{self, Evaluator, Request};
use serde_json::Value;

use super::Operation;
use super::common::{self, forbidden, list};
use crate::object;
use crate::registry::Resource;
use crate::status::ApiError;
use crate::store::GenericStore;

const RESOURCE_QUOTAS: (&str, &str, &str) = ("", "v1", "resourcequotas");

/// Resources upstream's quota admission ignores (its configuration's default
/// `ignoredResources`: events, and the virtual review and token resources that never persist).
fn ignored(resource: &Resource) -> bool {
    matches!(
        (resource.group.as_str(), resource.resource.as_str()),
        ("", "events") | ("events.k8s.io", "events")
    ) || resource.group.ends_with("authorization.k8s.io") && resource.resource.ends_with("reviews")
        || resource.group == "authentication.k8s.io"
}

/// The request under admission.
pub(crate) struct Charge<'a> {
    /// Create or update.
    pub operation: Operation,
    /// The subresource written (`status`), empty for the object itself.
    pub subresource: &'a str,
    /// The object to store.
    pub object: &'a Value,
    /// The stored object, on update.
    pub old: Option<&'a Value>,
    /// Checked only, nothing charged.
    pub dry_run: bool,
}

/// Checks the request against its namespace's quotas and charges them.
pub(crate) async fn charge(
    store: &GenericStore,
    resource: &Resource,
    charge: Charge<'_>,
) -> Result<(), ApiError> {
    let operation = match charge.operation {
        Operation::Create => quota::Operation::Create,
        Operation::Update => quota::Operation::Update,
        Operation::Delete => return Ok(()),
    };
    let namespace = object::namespace(charge.object);
    if !resource.namespaced || namespace.is_empty() || ignored(resource) {
        return Ok(());
    }
    let evaluator = Evaluator::for_resource(&resource.group, &resource.resource);
    if !evaluator.handles(operation, charge.subresource, charge.object, charge.old) {
        return Ok(());
    }
    let quotas: Vec<ResourceQuota> = list(store, RESOURCE_QUOTAS, Some(namespace))?
        .into_iter()
        .filter_map(|q| serde_json::from_value(q).ok())
        .collect();
    if quotas.is_empty() {
        return Ok(());
    }
    let request = Request {
        operation,
        subresource: charge.subresource,
        object: charge.object,
        old: charge.old,
    };
    let refuse = |why: quota::Refusal| forbidden(resource, charge.object, &why.0);
    let now = jiff::Timestamp::now();
    let charged = quota::check_request(&evaluator, &quotas, request, now).map_err(refuse)?;
    if charge.dry_run {
        return Ok(());
    }
    let (group, version, name) = RESOURCE_QUOTAS;
    let quotas_resource = common::resource(group, version, name)?;
    for (index, _) in charged {
        let name = quotas[index].metadata.name.clone().unwrap_or_default();
        // Recheck against the quota as stored now: another request may have charged it.
        store
            .update_raw(&quotas_resource, namespace, &name, None, |current| {
                let typed: ResourceQuota = serde_json::from_value(current.clone())
                    .map_err(|err| ApiError::internal(format!("stored quota is corrupt: {err}")))?;
                let mut fresh = quota::check_request(&evaluator, std::slice::from_ref(&typed), request, now)
                    .map_err(refuse)?;
                let Some((_, used)) = fresh.pop() else {
                    return Ok(None);
                };
                let mut updated = current.clone();
                let used = serde_json::to_value(quota::to_api(&used)).map_err(ApiError::internal)?;
                match updated.get_mut("status").and_then(Value::as_object_mut) {
                    Some(status) => {
                        status.insert("used".into(), used);
                    }
                    None => {
                        if let Some(map) = updated.as_object_mut() {
                            map.insert("status".into(), serde_json::json!({ "used": used }));
                        }
                    }
                }
                Ok(Some(updated))
            })
            .await?;
    }
    Ok(())
}
