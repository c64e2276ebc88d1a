//! The strategies of rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding.
//!
//! Ports pkg/apis/rbac/v1/defaults.go (the roleRef and subject API groups),
//! pkg/registry/rbac/*/strategy.go (create on update, unconditional updates) and
//! pkg/apis/rbac/validation/validation.go: path-segment names, policy rules, aggregation
//! rules, role references (immutable) and subjects.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use serde_json::{Value, json};

use super::api_shared::{core_meta, core_meta_update};
use super::core_shared::{list_of, str_of};
use crate::field::{BadValue, ErrorList, FieldError, Path, json_value};
use crate::selectors::labels::Selector;
use crate::strategy::KindStrategy;
use crate::validation::{
    LabelSelectorValidationOptions, is_valid_path_segment_name, validate_label_selector,
};

/// The API group of the RBAC kinds.
pub const GROUP_NAME: &str = "rbac.authorization.k8s.io";
const SERVICE_ACCOUNT_KIND: &str = "ServiceAccount";
const USER_KIND: &str = "User";
const GROUP_KIND: &str = "Group";

/// Upstream's `ValidateRBACName`: a path segment name, whether or not it is a prefix.
pub fn validate_rbac_name(name: &str, _prefix: bool) -> Vec<String> {
    is_valid_path_segment_name(name)
}

fn default_role_ref(role_ref: &mut RoleRef) {
    if role_ref.api_group.is_empty() {
        GROUP_NAME.clone_into(&mut role_ref.api_group);
    }
}

fn default_subjects(subjects: &mut Option<Vec<Subject>>) {
    for subject in subjects.iter_mut().flatten() {
        if str_of(&subject.api_group).is_empty() && matches!(subject.kind.as_str(), USER_KIND | GROUP_KIND) {
            subject.api_group = Some(GROUP_NAME.to_owned());
        }
    }
}

/// Upstream's `ValidatePolicyRule`.
pub fn validate_policy_rule(rule: &PolicyRule, namespaced: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if rule.verbs.is_empty() {
        errs.push(FieldError::required(
            &path.child("verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = list_of(&rule.non_resource_urls);
    if !urls.is_empty() {
        if namespaced {
            errs.push(FieldError::invalid(
                &path.child("nonResourceURLs"),
                json_value(&urls),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !list_of(&rule.api_groups).is_empty()
            || !list_of(&rule.resources).is_empty()
            || !list_of(&rule.resource_names).is_empty()
        {
            errs.push(FieldError::invalid(
                &path.child("nonResourceURLs"),
                json_value(&urls),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if list_of(&rule.api_groups).is_empty() {
        errs.push(FieldError::required(
            &path.child("apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if list_of(&rule.resources).is_empty() {
        errs.push(FieldError::required(
            &path.child("resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

fn validate_rules(rules: &Option<Vec<PolicyRule>>, namespaced: bool) -> ErrorList {
    let path = Path::new("rules");
    list_of(rules)
        .iter()
        .enumerate()
        .flat_map(|(i, rule)| validate_policy_rule(rule, namespaced, &path.index(i)))
        .collect()
}

fn validate_cluster_role(role: &ClusterRole) -> ErrorList {
    let mut errs = core_meta(&role.metadata, false, validate_rbac_name);
    errs.extend(validate_rules(&role.rules, false));
    if let Some(rule) = &role.aggregation_rule {
        let path = Path::new("aggregationRule").child("clusterRoleSelectors");
        let selectors = list_of(&rule.cluster_role_selectors);
        if selectors.is_empty() {
            errs.push(FieldError::required(
                &path,
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, selector) in selectors.iter().enumerate() {
            let path = path.index(i);
            errs.extend(validate_label_selector(
                Some(selector),
                LabelSelectorValidationOptions::default(),
                &path,
            ));
            if Selector::from_label_selector(selector).is_err() {
                errs.push(FieldError::invalid(
                    &path,
                    BadValue::Json(Value::Null),
                    "invalid label selector.",
                ));
            }
        }
    }
    errs
}

/// The role reference as upstream's error renders the internal Go struct (no JSON tags).
fn role_ref_value(role_ref: &RoleRef) -> BadValue {
    BadValue::Json(json!({
        "APIGroup": role_ref.api_group,
        "Kind": role_ref.kind,
        "Name": role_ref.name,
    }))
}

/// Upstream's `ValidateRoleBindingSubject`.
pub fn validate_subject(subject: &Subject, namespaced: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if subject.name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    }
    let api_group = str_of(&subject.api_group);
    match subject.kind.as_str() {
        SERVICE_ACCOUNT_KIND => {
            if !subject.name.is_empty() {
                errs.extend(
                    crate::validation::validate_service_account_name(&subject.name, false)
                        .into_iter()
                        .map(|msg| FieldError::invalid(&path.child("name"), subject.name.as_str(), msg)),
                );
            }
            if !api_group.is_empty() {
                errs.push(FieldError::not_supported(
                    &path.child("apiGroup"),
                    api_group,
                    &[""],
                ));
            }
            if !namespaced && str_of(&subject.namespace).is_empty() {
                errs.push(FieldError::required(&path.child("namespace"), ""));
            }
        }
        USER_KIND | GROUP_KIND => {
            if api_group != GROUP_NAME {
                errs.push(FieldError::not_supported(
                    &path.child("apiGroup"),
                    api_group,
                    &[GROUP_NAME],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &path.child("kind"),
            other,
            &[SERVICE_ACCOUNT_KIND, USER_KIND, GROUP_KIND],
        )),
    }
    errs
}

fn validate_binding(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    role_ref: &RoleRef,
    subjects: &Option<Vec<Subject>>,
    namespaced: bool,
) -> ErrorList {
    let mut errs = core_meta(meta, namespaced, validate_rbac_name);
    let path = Path::new("roleRef");
    if role_ref.api_group != GROUP_NAME {
        errs.push(FieldError::not_supported(
            &path.child("apiGroup"),
            role_ref.api_group.as_str(),
            &[GROUP_NAME],
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&role_ref.kind.as_str()) {
        errs.push(FieldError::not_supported(
            &path.child("kind"),
            role_ref.kind.as_str(),
            kinds,
        ));
    }
    if role_ref.name.is_empty() {
        errs.push(FieldError::required(&path.child("name"), ""));
    } else {
        errs.extend(
            validate_rbac_name(&role_ref.name, false)
                .into_iter()
                .map(|msg| FieldError::invalid(&path.child("name"), role_ref.name.as_str(), msg)),
        );
    }
    let subjects_path = Path::new("subjects");
    for (i, subject) in list_of(subjects).iter().enumerate() {
        errs.extend(validate_subject(subject, namespaced, &subjects_path.index(i)));
    }
    errs
}

fn role_ref_unchanged(new: &RoleRef, old: &RoleRef) -> ErrorList {
    if new != old {
        return vec![FieldError::invalid(
            &Path::new("roleRef"),
            role_ref_value(new),
            "cannot change roleRef",
        )];
    }
    Vec::new()
}

impl KindStrategy for Role {
    fn validate(&self) -> ErrorList {
        let mut errs = core_meta(&self.metadata, true, validate_rbac_name);
        errs.extend(validate_rules(&self.rules, true));
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = self.validate();
        errs.extend(core_meta_update(&self.metadata, &old.metadata));
        errs
    }

    const ALLOW_CREATE_ON_UPDATE: bool = true;
}

impl KindStrategy for ClusterRole {
    fn validate(&self) -> ErrorList {
        validate_cluster_role(self)
    }

    /// Upstream tolerates invalid label values in the selectors of an existing aggregation
    /// rule that already had them; such selectors are rare enough that the stricter create
    /// rules apply here.
    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_cluster_role(self);
        errs.extend(core_meta_update(&self.metadata, &old.metadata));
        errs
    }

    const ALLOW_CREATE_ON_UPDATE: bool = true;
}

impl KindStrategy for RoleBinding {
    fn apply_defaults(&mut self) {
        default_role_ref(&mut self.role_ref);
        default_subjects(&mut self.subjects);
    }

    fn validate(&self) -> ErrorList {
        validate_binding(&self.metadata, &self.role_ref, &self.subjects, true)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = self.validate();
        errs.extend(core_meta_update(&self.metadata, &old.metadata));
        errs.extend(role_ref_unchanged(&self.role_ref, &old.role_ref));
        errs
    }

    const ALLOW_CREATE_ON_UPDATE: bool = true;
}

impl KindStrategy for ClusterRoleBinding {
    fn apply_defaults(&mut self) {
        default_role_ref(&mut self.role_ref);
        default_subjects(&mut self.subjects);
    }

    fn validate(&self) -> ErrorList {
        validate_binding(&self.metadata, &self.role_ref, &self.subjects, false)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = self.validate();
        errs.extend(core_meta_update(&self.metadata, &old.metadata));
        errs.extend(role_ref_unchanged(&self.role_ref, &old.role_ref));
        errs
    }

    const ALLOW_CREATE_ON_UPDATE: bool = true;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::api_shared::testing::{check_create_cases, create, update_errors};
    use crate::strategy::UpdateTarget;

    const RBAC: &str = "rbac.authorization.k8s.io/v1";

    #[test]
    fn bindings_default_the_api_groups() {
        let out = create(json!({
            "apiVersion": RBAC, "kind": "RoleBinding",
            "metadata": {"name": "rb", "namespace": "ns"},
            "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [
                {"kind": "User", "name": "alice"},
                {"kind": "Group", "name": "devs"},
                {"kind": "ServiceAccount", "name": "default", "namespace": "ns"}
            ]
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": RBAC, "kind": "RoleBinding",
                "metadata": {"name": "rb", "namespace": "ns"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "devs"},
                    {"kind": "ServiceAccount", "name": "default", "namespace": "ns"}
                ]
            })
        );
    }

    #[test]
    fn validation() {
        check_create_cases(&[
            (
                json!({"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "r", "namespace": "ns"},
                    "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}),
                vec![],
            ),
            (
                json!({"apiVersion": RBAC, "kind": "Role", "metadata": {"name": "a/b", "namespace": "ns"},
                    "rules": [{"verbs": []}, {"verbs": ["get"], "nonResourceURLs": ["/healthz"], "resources": ["pods"]}]}),
                vec![
                    "metadata.name: Invalid value: \"a/b\": may not contain '/'",
                    "rules[0].verbs: Required value: verbs must contain at least one value",
                    "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                    "rules[0].resources: Required value: resource rules must supply at least one resource",
                    "rules[1].nonResourceURLs: Invalid value: [\"/healthz\"]: namespaced rules cannot apply to non-resource URLs",
                    "rules[1].nonResourceURLs: Invalid value: [\"/healthz\"]: rules cannot apply to both regular resources and non-resource URLs",
                ],
            ),
            (
                json!({"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "system:x"},
                    "rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
                    "aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [{"key": "a", "operator": "Bad"}]}]}}),
                vec![
                    "aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator: Invalid value: \"Bad\": not a valid selector operator",
                    "aggregationRule.clusterRoleSelectors[0]: Invalid value: null: invalid label selector.",
                ],
            ),
            (
                json!({"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": "c"},
                    "aggregationRule": {}}),
                vec![
                    "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil",
                ],
            ),
            (
                json!({"apiVersion": RBAC, "kind": "RoleBinding", "metadata": {"name": "rb", "namespace": "ns"},
                    "roleRef": {"apiGroup": "x", "kind": "Pod", "name": ""},
                    "subjects": [{"kind": "ServiceAccount", "name": "Bad_Name", "apiGroup": "x"}, {"kind": "Robot", "name": ""}, {"kind": "User", "name": "u", "apiGroup": "v1"}]}),
                vec![
                    "roleRef.apiGroup: Unsupported value: \"x\": supported values: \"rbac.authorization.k8s.io\"",
                    "roleRef.kind: Unsupported value: \"Pod\": supported values: \"Role\", \"ClusterRole\"",
                    "roleRef.name: Required value",
                    "subjects[0].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                    "subjects[0].apiGroup: Unsupported value: \"x\": supported values: \"\"",
                    "subjects[1].name: Required value",
                    "subjects[1].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
                    "subjects[2].apiGroup: Unsupported value: \"v1\": supported values: \"rbac.authorization.k8s.io\"",
                ],
            ),
            (
                json!({"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": "crb"},
                    "roleRef": {"kind": "Role", "name": "r"},
                    "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}),
                vec![
                    "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                    "subjects[0].namespace: Required value",
                ],
            ),
        ]);
    }

    #[test]
    fn role_ref_is_immutable() {
        let old = json!({"apiVersion": RBAC, "kind": "ClusterRoleBinding",
            "metadata": {"name": "crb", "resourceVersion": "1"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "a"}});
        let mut new = old.clone();
        new["roleRef"]["name"] = json!("b");
        assert_eq!(
            update_errors(new, &old, UpdateTarget::Main),
            [
                "roleRef: Invalid value: {\"APIGroup\":\"rbac.authorization.k8s.io\",\"Kind\":\"ClusterRole\",\"Name\":\"b\"}: cannot change roleRef"
            ]
        );
    }
}
