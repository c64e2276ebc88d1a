//! `DefaultIngressClass`: a new Ingress that names no class (neither
//! `spec.ingressClassName` nor the legacy `kubernetes.io/ingress.class` annotation) gets the
//! default IngressClass — the newest one annotated
//! `ingressclass.kubernetes.io/is-default-class: "true"`. It only acts on creation and refuses
//! nothing.

use serde_json::{Value, json};

use super::common::{is, list, newest_first};
use super::{Operation, Plugin};
use crate::object;
use crate::registry::Resource;
use crate::status::ApiError;
use crate::store::GenericStore;

/// The annotation marking the default IngressClass.
pub const IS_DEFAULT_INGRESS_CLASS: &str = "ingressclass.kubernetes.io/is-default-class";
/// The legacy annotation naming an Ingress's class.
const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The plugin.
pub(super) struct DefaultIngressClass;

/// The newest IngressClass marked default.
fn default_class(mut classes: Vec<Value>) -> Option<String> {
    classes.retain(|class| {
        object::annotations(class)
            .get(IS_DEFAULT_INGRESS_CLASS)
            .map(String::as_str)
            == Some("true")
    });
    if classes.len() > 1 {
        tracing::debug!(
            count = classes.len(),
            "several default IngressClasses, choosing the newest"
        );
    }
    newest_first(&mut classes);
    classes.first().map(|c| object::name(c).to_owned())
}

fn has_class(ingress: &Value) -> bool {
    ingress
        .pointer("/spec/ingressClassName")
        .is_some_and(|v| !v.is_null())
        || object::annotations(ingress).contains_key(INGRESS_CLASS_ANNOTATION)
}

impl Plugin for DefaultIngressClass {
    fn name(&self) -> &'static str {
        "DefaultIngressClass"
    }

    fn mutate(
        &self,
        store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if !is(resource, "networking.k8s.io", "ingresses")
            || operation != Operation::Create
            || has_class(object)
        {
            return Ok(());
        }
        let classes = list(store, ("networking.k8s.io", "v1", "ingressclasses"), None)?;
        let Some(class) = default_class(classes) else {
            return Ok(());
        };
        if let Some(map) = object.as_object_mut() {
            let spec = map.entry("spec").or_insert_with(|| json!({}));
            if let Some(spec) = spec.as_object_mut() {
                spec.insert("ingressClassName".into(), Value::String(class));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_the_newest_marked_class() {
        let classes = vec![
            json!({"metadata": {"name": "nginx", "creationTimestamp": "2024-01-01T00:00:00Z",
                "annotations": {IS_DEFAULT_INGRESS_CLASS: "true"}}}),
            json!({"metadata": {"name": "traefik", "creationTimestamp": "2023-01-01T00:00:00Z"}}),
        ];
        assert_eq!(default_class(classes).as_deref(), Some("nginx"));
        assert!(has_class(
            &json!({"metadata": {"annotations": {INGRESS_CLASS_ANNOTATION: "x"}}})
        ));
        assert!(!has_class(&json!({"spec": {}})));
    }
}
