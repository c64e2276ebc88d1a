//! The core/v1 PodTemplate: defaults, registry strategy and validation.
//!
//! Ports `SetObjectDefaults_PodTemplate` (the template is always present and defaulted like
//! any embedded pod spec), pkg/registry/core/podtemplate/strategy.go (generation 1 on create
//! and bumped on template changes, disabled fields dropped, template warnings) and
//! `ValidatePodTemplate` / `ValidatePodTemplateUpdate`.

use k8s_openapi::api::core::v1::{PodTemplate, PodTemplateSpec};

use super::pod_spec::{
    PodValidationOptions, default_pod_template_spec, drop_disabled_template_fields, pod_template_warnings,
    validate_pod_template_spec,
};
use crate::field::{ErrorList, Path};
use crate::strategy::KindStrategy;
use crate::validation::{name_is_dns_subdomain, validate_object_meta, validate_object_meta_update};

fn template_of(t: &PodTemplate) -> PodTemplateSpec {
    t.template.clone().unwrap_or_default()
}

impl KindStrategy for PodTemplate {
    fn apply_defaults(&mut self) {
        default_pod_template_spec(self.template.get_or_insert_with(Default::default));
    }

    fn prepare_for_create(&mut self) {
        self.metadata.generation = Some(1);
        if let Some(template) = &mut self.template {
            drop_disabled_template_fields(template, None);
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        if let Some(template) = &mut self.template {
            drop_disabled_template_fields(template, old.template.as_ref());
        }
        if self.template != old.template {
            self.metadata.generation = Some(old.metadata.generation.unwrap_or(0) + 1);
        }
    }

    fn validate(&self) -> ErrorList {
        let opts = PodValidationOptions::for_template(None);
        let mut errs = validate_object_meta(
            &self.metadata,
            true,
            name_is_dns_subdomain,
            &Path::new("metadata"),
        );
        errs.extend(validate_pod_template_spec(
            &template_of(self),
            &Path::new("template"),
            &opts,
        ));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let opts = PodValidationOptions::for_template(old.template.as_ref());
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &Path::new("metadata"));
        errs.extend(validate_pod_template_spec(
            &template_of(self),
            &Path::new("template"),
            &opts,
        ));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        pod_template_warnings(&Path::new("template"), &template_of(self))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::strategy::{KindOps, PipelineError, UpdateTarget};

    fn create(value: serde_json::Value) -> Result<serde_json::Value, PipelineError> {
        let ops = KindOps::of::<k8s_openapi::api::core::v1::PodTemplate>();
        (ops.create)((ops.normalize)(value)?)
    }

    #[test]
    fn defaults_the_template_like_any_pod_spec() {
        let out = create(json!({
            "apiVersion": "v1", "kind": "PodTemplate",
            "metadata": {"name": "t", "namespace": "default"},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1", "kind": "PodTemplate",
                "metadata": {"name": "t", "namespace": "default", "generation": 1},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "c", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
                            "resources": {}, "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"
                        }],
                        "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                        "schedulerName": "default-scheduler", "securityContext": {},
                        "terminationGracePeriodSeconds": 30
                    }
                }
            })
        );
    }

    #[test]
    fn validates_the_template_with_upstream_paths() {
        let err = create(json!({
            "metadata": {"name": "t", "namespace": "default"},
            "template": {"metadata": {"labels": {"a b": "x"}}, "spec": {"containers": []}}
        }))
        .unwrap_err();
        let PipelineError::Invalid(errs) = err else {
            panic!("{err:?}");
        };
        let rendered: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(rendered.len(), 2, "{rendered:?}");
        assert!(
            rendered[0].starts_with("template.labels: Invalid value: \"a b\": name part must consist of")
        );
        assert_eq!(rendered[1], "template.spec.containers: Required value");
    }

    #[test]
    fn bumps_the_generation_on_template_changes_and_rejects_ephemeral_containers() {
        let ops = KindOps::of::<k8s_openapi::api::core::v1::PodTemplate>();
        let mut old = create(json!({
            "metadata": {"name": "t", "namespace": "default"},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }))
        .unwrap();
        old["metadata"]["resourceVersion"] = json!("3");
        let mut new = old.clone();
        new["metadata"]["labels"] = json!({"a": "b"});
        let same = (ops.update)((ops.normalize)(new.clone()).unwrap(), &old, UpdateTarget::Main).unwrap();
        assert_eq!(same["metadata"]["generation"], json!(1));
        new["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        let changed = (ops.update)((ops.normalize)(new.clone()).unwrap(), &old, UpdateTarget::Main).unwrap();
        assert_eq!(changed["metadata"]["generation"], json!(2));
        new["template"]["spec"]["ephemeralContainers"] = json!([{"name": "e", "image": "busybox"}]);
        let err = (ops.update)((ops.normalize)(new).unwrap(), &old, UpdateTarget::Main).unwrap_err();
        let PipelineError::Invalid(errs) = err else {
            panic!("{err:?}");
        };
        assert_eq!(
            errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "template.spec.ephemeralContainers: Forbidden: ephemeral containers not allowed in pod template"
            ]
        );
    }
}
