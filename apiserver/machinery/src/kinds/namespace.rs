//! The Namespace strategy: defaulting (the `kubernetes.io/metadata.name` label, phase
//! `Active`), the `kubernetes` finalizer on create, status and finalize updates, validation,
//! and namespace termination on delete.
//!
//! Ports pkg/apis/core/v1/defaults.go (`SetDefaults_Namespace`, `SetDefaults_NamespaceStatus`),
//! pkg/registry/core/namespace/strategy.go, the `Delete` of
//! pkg/registry/core/namespace/storage/storage.go, and `ValidateNamespace*` of
//! pkg/apis/core/validation/validation.go.
//!
//! Deletion: the first delete of a namespace (no `deletionTimestamp` yet) never removes it: it
//! moves to phase `Terminating` and gets a `deletionTimestamp` ([`DeletePlan::Finalize`]),
//! whether or not `spec.finalizers` is empty, as upstream does; the namespace controller then
//! empties it and removes its `spec.finalizers` through the `finalize` subresource. A later
//! delete is a no-op while `spec.finalizers` is non-empty and otherwise deletes the object
//! like any other (pending metadata finalizers still hold it). The garbage-collector
//! finalizers (`orphan`, `foregroundDeletion`) of the request's propagation policy are set by
//! the generic store, which applies them on the first delete exactly as upstream's namespace
//! `Delete` does.

use k8s_openapi::api::core::v1::{Namespace, NamespaceSpec, NamespaceStatus};
use serde_json::Value;

use super::core_shared::{list_of, meta_path, str_of};
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::{DeletePlan, KindStrategy, PipelineError};
use crate::validation::{
    FINALIZER_KUBERNETES, validate_finalizer_name, validate_kube_finalizer_name, validate_namespace_name,
    validate_object_meta, validate_object_meta_update,
};

/// The label every namespace carries with its own name.
pub const LABEL_METADATA_NAME: &str = "kubernetes.io/metadata.name";
/// Phase of a namespace in use.
pub const NAMESPACE_ACTIVE: &str = "Active";
/// Phase of a namespace being deleted.
pub const NAMESPACE_TERMINATING: &str = "Terminating";

fn phase(ns: &Namespace) -> &str {
    ns.status.as_ref().map_or("", |s| str_of(&s.phase))
}

fn spec_finalizers(ns: &Namespace) -> &[String] {
    ns.spec.as_ref().map_or(&[], |s| list_of(&s.finalizers))
}

/// Core's finalizer-name rule: a qualified name, and standard unless domain-qualified.
fn validate_core_finalizer_name(name: &str, path: &Path) -> ErrorList {
    let mut errs = validate_finalizer_name(name, path);
    errs.extend(validate_kube_finalizer_name(name, path));
    errs
}

/// Upstream's `ValidateNamespace`.
fn validate_namespace(ns: &Namespace) -> ErrorList {
    let mut errs = validate_object_meta(&ns.metadata, false, validate_namespace_name, &meta_path());
    let path = Path::new("spec").child("finalizers");
    for finalizer in spec_finalizers(ns) {
        errs.extend(validate_core_finalizer_name(finalizer, &path));
    }
    errs
}

/// Upstream's `ValidateNamespaceFinalizeUpdate`: metadata rules and the new `spec.finalizers`.
pub fn validate_namespace_finalize_update(new: &Namespace, old: &Namespace) -> ErrorList {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata, &meta_path());
    let path = Path::new("spec").child("finalizers");
    for (i, finalizer) in spec_finalizers(new).iter().enumerate() {
        errs.extend(validate_core_finalizer_name(finalizer, &path.index(i)));
    }
    errs
}

/// The pipeline of the `namespaces/{name}/finalize` subresource (upstream's finalize
/// strategy): decode and default the new object, keep the old status, validate the update.
/// Returns the object to store.
pub fn finalize_update(new: Value, old: &Value) -> Result<Value, PipelineError> {
    let decode = |v: Value| -> Result<Namespace, PipelineError> {
        serde_json::from_value(v).map_err(|err| PipelineError::Decode(err.to_string()))
    };
    let mut ns = decode(new)?;
    let old = decode(old.clone())?;
    ns.apply_defaults();
    ns.status.clone_from(&old.status);
    let mut errs = validate_namespace(&ns);
    errs.extend(validate_namespace_finalize_update(&ns, &old));
    if !errs.is_empty() {
        return Err(PipelineError::Invalid(errs));
    }
    serde_json::to_value(&ns).map_err(|err| PipelineError::Decode(err.to_string()))
}

impl KindStrategy for Namespace {
    fn apply_defaults(&mut self) {
        // `SetDefaults_Namespace` (and the `Canonicalize` of the strategy, which does the same
        // once a generated name is known; the store names the object before defaulting).
        if let Some(name) = self.metadata.name.clone().filter(|n| !n.is_empty()) {
            self.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(LABEL_METADATA_NAME.to_owned(), name);
        }
        // `SetDefaults_NamespaceStatus`; spec and status are non-pointer structs upstream,
        // always written.
        self.spec.get_or_insert_with(NamespaceSpec::default);
        let status = self.status.get_or_insert_with(NamespaceStatus::default);
        if str_of(&status.phase).is_empty() {
            status.phase = Some(NAMESPACE_ACTIVE.to_owned());
        }
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(NamespaceStatus {
            phase: Some(NAMESPACE_ACTIVE.to_owned()),
            ..Default::default()
        });
        let spec = self.spec.get_or_insert_with(NamespaceSpec::default);
        let finalizers = spec.finalizers.get_or_insert_with(Vec::new);
        if !finalizers.iter().any(|f| f == FINALIZER_KUBERNETES) {
            finalizers.push(FINALIZER_KUBERNETES.to_owned());
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        let spec = self.spec.get_or_insert_with(NamespaceSpec::default);
        spec.finalizers = old.spec.as_ref().and_then(|s| s.finalizers.clone());
        self.status.clone_from(&old.status);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        validate_namespace(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_namespace(self);
        errs.extend(validate_object_meta_update(
            &self.metadata,
            &old.metadata,
            &meta_path(),
        ));
        errs
    }

    fn validate_status_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        let path = Path::new("status").child("Phase");
        let phase = phase(self);
        if self.metadata.deletion_timestamp.is_none() {
            if phase != NAMESPACE_ACTIVE {
                errs.push(FieldError::invalid(
                    &path,
                    phase,
                    "may only be 'Active' if `deletionTimestamp` is empty",
                ));
            }
        } else if phase != NAMESPACE_TERMINATING {
            errs.push(FieldError::invalid(
                &path,
                phase,
                "may only be 'Terminating' if `deletionTimestamp` is not empty",
            ));
        }
        errs
    }

    fn before_delete(&mut self, _requested: Option<i64>) -> DeletePlan {
        if self.metadata.deletion_timestamp.is_none() {
            // First delete: start termination (the store sets the deletionTimestamp).
            self.status.get_or_insert_with(NamespaceStatus::default).phase =
                Some(NAMESPACE_TERMINATING.to_owned());
            return DeletePlan::Finalize;
        }
        if !spec_finalizers(self).is_empty() {
            // Still being finalized: nothing to do.
            return DeletePlan::Finalize;
        }
        DeletePlan::Now
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        vec![("status.phase", phase(self).to_owned())]
    }

    const SELECTABLE_FIELDS: &'static [&'static str] = &["status.phase"];
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::core_shared::testing::{create, create_errors, fields, update, update_errors};
    use super::*;
    use crate::kinds::ops;
    use crate::strategy::UpdateTarget;

    #[test]
    fn created_namespace_as_kube_apiserver_returns_it() {
        let out = create(
            "Namespace",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "team-a", "labels": {"kubernetes.io/metadata.name": "team-a"}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"}
            })
        );
        // A client's status and label are overwritten; its own finalizers come first.
        let out = create(
            "Namespace",
            json!({"metadata": {"name": "b", "labels": {"kubernetes.io/metadata.name": "x"}},
                   "spec": {"finalizers": ["example.com/f"]}, "status": {"phase": "Terminating"}}),
        )
        .unwrap();
        assert_eq!(
            out["metadata"]["labels"],
            json!({"kubernetes.io/metadata.name": "b"})
        );
        assert_eq!(
            out["spec"],
            json!({"finalizers": ["example.com/f", "kubernetes"]})
        );
        assert_eq!(out["status"], json!({"phase": "Active"}));
    }

    #[test]
    fn validation_errors() {
        let cases = [
            (
                json!({"metadata": {"name": "Bad_Name"}}),
                vec![
                    "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
            (
                json!({"metadata": {"name": "a", "namespace": "b"}}),
                vec!["metadata.namespace: Forbidden: not allowed on this type"],
            ),
            (
                json!({"metadata": {"name": "a"}, "spec": {"finalizers": ["custom", "a/b/c"]}}),
                vec![
                    "spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
                    "spec.finalizers: Invalid value: \"a/b/c\": a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                ],
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(create_errors("Namespace", object.clone()), expected, "{object}");
        }
    }

    fn stored() -> Value {
        create("Namespace", json!({"metadata": {"name": "a"}}))
            .map(|mut v| {
                v["metadata"]["resourceVersion"] = json!("5");
                v["metadata"]["uid"] = json!("u");
                v
            })
            .unwrap()
    }

    #[test]
    fn updates_keep_spec_and_status_where_upstream_does() {
        let old = stored();
        // The main resource cannot change finalizers or status.
        let mut new = old.clone();
        new["spec"]["finalizers"] = json!([]);
        new["status"]["phase"] = json!("Terminating");
        new["metadata"]["labels"]["team"] = json!("x");
        let out = update("Namespace", new, &old, UpdateTarget::Main).unwrap();
        assert_eq!(out["spec"], json!({"finalizers": ["kubernetes"]}));
        assert_eq!(out["status"], json!({"phase": "Active"}));
        assert_eq!(out["metadata"]["labels"]["team"], json!("x"));

        // The status endpoint keeps the spec and checks the phase.
        let mut new = old.clone();
        new["spec"]["finalizers"] = json!([]);
        new["status"]["phase"] = json!("Terminating");
        assert_eq!(
            update_errors("Namespace", new, &old, UpdateTarget::Status),
            [
                "status.Phase: Invalid value: \"Terminating\": may only be 'Active' if `deletionTimestamp` is empty"
            ]
        );
        let mut deleting = old;
        deleting["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        let mut new = deleting.clone();
        new["status"]["phase"] = json!("Active");
        assert_eq!(
            update_errors("Namespace", new, &deleting, UpdateTarget::Status),
            [
                "status.Phase: Invalid value: \"Active\": may only be 'Terminating' if `deletionTimestamp` is not empty"
            ]
        );
    }

    #[test]
    fn finalize_changes_only_spec_finalizers() {
        let old = stored();
        let mut new = old.clone();
        new["spec"]["finalizers"] = json!([]);
        new["status"]["phase"] = json!("Terminating");
        let out = finalize_update(new, &old).unwrap();
        assert_eq!(out["spec"], json!({"finalizers": []}));
        assert_eq!(out["status"], json!({"phase": "Active"}));
        let mut bad = old.clone();
        bad["spec"]["finalizers"] = json!(["kubernetes", "bad"]);
        let Err(PipelineError::Invalid(errs)) = finalize_update(bad, &old) else {
            panic!("expected invalid");
        };
        assert_eq!(
            errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "spec.finalizers: Invalid value: \"bad\": name is neither a standard finalizer name nor is it fully qualified",
                "spec.finalizers[1]: Invalid value: \"bad\": name is neither a standard finalizer name nor is it fully qualified",
            ]
        );
    }

    #[test]
    fn deletion_terminates_then_deletes() {
        let ops = ops("", "v1", "Namespace").unwrap();
        let ns = stored();
        let (plan, next) = (ops.before_delete)(ns.clone(), None).unwrap();
        assert_eq!(plan, DeletePlan::Finalize);
        assert_eq!(next["status"]["phase"], json!("Terminating"));
        assert_eq!(next["spec"], ns["spec"]);

        // Deleting again while finalizers remain changes nothing.
        let mut terminating = next;
        terminating["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        let (plan, again) = (ops.before_delete)(terminating.clone(), None).unwrap();
        assert_eq!(plan, DeletePlan::Finalize);
        assert_eq!(again, terminating);

        // Once the namespace controller removed spec.finalizers, it goes.
        terminating["spec"]["finalizers"] = json!([]);
        let (plan, _) = (ops.before_delete)(terminating, None).unwrap();
        assert_eq!(plan, DeletePlan::Now);

        // Even without spec finalizers, the first delete only starts termination.
        let mut bare = stored();
        bare["spec"] = json!({});
        let (plan, next) = (ops.before_delete)(bare, None).unwrap();
        assert_eq!(
            (plan, &next["status"]["phase"]),
            (DeletePlan::Finalize, &json!("Terminating"))
        );
    }

    #[test]
    fn selectable_by_phase() {
        assert_eq!(
            fields("Namespace", &stored()),
            [("status.phase", "Active".to_owned())]
        );
    }
}
