//! The cluster role aggregation controller (upstream: pkg/controller/clusterroleaggregation):
//! a ClusterRole with an `aggregationRule` gets the rules of every other ClusterRole its
//! selectors match, in selector order, each selector's roles by name, without duplicates. It
//! writes (server-side apply, forced, as `clusterrole-aggregation-controller`) only when the
//! rules differ; it never touches roles without an aggregation rule.

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use tokio_util::sync::CancellationToken;

use crate::harness::{self, Context, ReconcileError};
use crate::pods::Selector;

/// The controller's name in `--controllers`.
pub const NAME: &str = "clusterrole-aggregation-controller";
/// The field manager of the aggregated rules.
const FIELD_MANAGER: &str = "clusterrole-aggregation-controller";

struct State {
    context: Arc<Context>,
}

pub(crate) async fn run(context: Arc<Context>, shutdown: CancellationToken) {
    let api: Api<ClusterRole> = Api::all(context.client.clone());
    let controller = Controller::new(api.clone(), watcher::Config::default());
    let aggregated = controller.store();
    // Any change to any ClusterRole may change what an aggregated role selects.
    let controller = controller.watches(api, watcher::Config::default(), move |_changed| {
        aggregated
            .state()
            .into_iter()
            .filter(|role| role.aggregation_rule.is_some())
            .map(|role| ObjectRef::from_obj(&*role))
            .collect::<Vec<_>>()
    });
    let state = Arc::new(State {
        context: context.clone(),
    });
    harness::run(NAME, controller, context, shutdown, move |role, _| {
        reconcile(role, state.clone())
    })
    .await;
}

/// Rules compare as upstream's semantic equality: an absent list equals an empty one.
fn same_rule(a: &PolicyRule, b: &PolicyRule) -> bool {
    fn list(value: &Option<Vec<String>>) -> &[String] {
        value.as_deref().unwrap_or_default()
    }
    a.verbs == b.verbs
        && list(&a.api_groups) == list(&b.api_groups)
        && list(&a.resources) == list(&b.resources)
        && list(&a.resource_names) == list(&b.resource_names)
        && list(&a.non_resource_urls) == list(&b.non_resource_urls)
}

/// The rules `role` aggregates from `all`, or why its selectors are invalid.
fn aggregated_rules(role: &ClusterRole, all: &[Arc<ClusterRole>]) -> Result<Vec<PolicyRule>, String> {
    let mut rules: Vec<PolicyRule> = Vec::new();
    let selectors = role
        .aggregation_rule
        .as_ref()
        .and_then(|rule| rule.cluster_role_selectors.as_ref());
    for selector in selectors.into_iter().flatten() {
        let selector = Selector::from_label_selector(selector)?;
        let mut matched: Vec<&ClusterRole> = all
            .iter()
            .map(|r| &**r)
            .filter(|r| selector.matches(r.labels()))
            .collect();
        matched.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for other in matched {
            if other.metadata.name == role.metadata.name {
                continue;
            }
            for rule in other.rules.iter().flatten() {
                if !rules.iter().any(|r| same_rule(r, rule)) {
                    rules.push(rule.clone());
                }
            }
        }
    }
    Ok(rules)
}

fn same_rules(a: &[PolicyRule], b: &[PolicyRule]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_rule(x, y))
}

async fn reconcile(role: Arc<ClusterRole>, state: Arc<State>) -> Result<Action, ReconcileError> {
    if role.aggregation_rule.is_none() {
        return Ok(Action::await_change());
    }
    // Read afresh, not from the store: a change seen by the trigger watch may not have reached
    // the controller's own store yet, and a reconcile on stale roles would miss it for good.
    let api: Api<ClusterRole> = Api::all(state.context.client.clone());
    let all: Vec<Arc<ClusterRole>> = api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(Arc::new)
        .collect();
    let rules = aggregated_rules(&role, &all).map_err(ReconcileError::Invalid)?;
    if same_rules(&rules, role.rules.as_deref().unwrap_or_default()) {
        return Ok(Action::await_change());
    }
    let name = role.name_any();
    let mut body = serde_json::json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
    });
    if !rules.is_empty() {
        body["rules"] =
            serde_json::to_value(&rules).map_err(|err| ReconcileError::Invalid(err.to_string()))?;
    }
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(body),
    )
    .await?;
    tracing::debug!(rules = rules.len(), "aggregated rules applied");
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(value: serde_json::Value) -> Arc<ClusterRole> {
        Arc::new(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn rules_union_by_name_without_duplicates_or_self() {
        let aggregate = role(json!({
            "metadata": {"name": "agg", "labels": {"x": "true"}},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "true"}}]},
            "rules": [{"verbs": ["*"], "resources": ["self"]}],
        }));
        let b = role(json!({
            "metadata": {"name": "b", "labels": {"x": "true"}},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                      {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}],
        }));
        let a = role(json!({
            "metadata": {"name": "a", "labels": {"x": "true"}},
            "rules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"], "resourceNames": []}],
        }));
        let other = role(json!({
            "metadata": {"name": "c"},
            "rules": [{"verbs": ["delete"], "resources": ["nodes"]}],
        }));
        let rules = aggregated_rules(&aggregate, &[aggregate.clone(), b, a, other]).unwrap();
        let verbs: Vec<&str> = rules.iter().map(|r| r.verbs[0].as_str()).collect();
        assert_eq!(verbs, ["list", "get"]);
    }
}
