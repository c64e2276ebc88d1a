//! `StorageObjectInUseProtection`: new PersistentVolumeClaims, PersistentVolumes and
//! VolumeAttributesClasses get the finalizer that keeps them while something still uses them
//! (`kubernetes.io/pvc-protection`, `kubernetes.io/pv-protection`,
//! `kubernetes.io/vac-protection`). It acts on creation only and refuses nothing.

use serde_json::Value;

use super::common::is;
use super::{Operation, Plugin};
use crate::object;
use crate::registry::Resource;
use crate::status::ApiError;
use crate::store::GenericStore;

/// The finalizer of PersistentVolumeClaims.
pub const PVC_PROTECTION_FINALIZER: &str = "kubernetes.io/pvc-protection";
/// The finalizer of PersistentVolumes.
pub const PV_PROTECTION_FINALIZER: &str = "kubernetes.io/pv-protection";
/// The finalizer of VolumeAttributesClasses.
pub const VAC_PROTECTION_FINALIZER: &str = "kubernetes.io/vac-protection";

/// The plugin.
pub(super) struct StorageObjectInUseProtection;

fn add_finalizer(object: &mut Value, finalizer: &str) {
    let mut finalizers = object::finalizers(object);
    if !finalizers.iter().any(|f| f == finalizer) {
        finalizers.push(finalizer.to_owned());
        object::set_finalizers(object, &finalizers);
    }
}

impl Plugin for StorageObjectInUseProtection {
    fn name(&self) -> &'static str {
        "StorageObjectInUseProtection"
    }

    fn mutate(
        &self,
        _store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if operation != Operation::Create {
            return Ok(());
        }
        if is(resource, "", "persistentvolumeclaims") {
            add_finalizer(object, PVC_PROTECTION_FINALIZER);
        } else if is(resource, "", "persistentvolumes") {
            add_finalizer(object, PV_PROTECTION_FINALIZER);
        } else if is(resource, "storage.k8s.io", "volumeattributesclasses") {
            add_finalizer(object, VAC_PROTECTION_FINALIZER);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn adds_the_finalizer_once() {
        let mut pvc = json!({"metadata": {"name": "data", "finalizers": ["example.com/keep"]}});
        add_finalizer(&mut pvc, PVC_PROTECTION_FINALIZER);
        add_finalizer(&mut pvc, PVC_PROTECTION_FINALIZER);
        assert_eq!(
            pvc["metadata"]["finalizers"],
            json!(["example.com/keep", "kubernetes.io/pvc-protection"])
        );
    }
}
