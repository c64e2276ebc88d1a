//! Subresources: `status` through the kind's status strategy, `scale` as autoscaling/v1 Scale,
//! `binding` and `eviction` of pods, namespace `finalize`, CSR `approval`, pod
//! `ephemeralcontainers` and `resize`, serviceaccount `token` (in `token_request`); pod `log`
//! is proxied to the node (`pod_log`), pod `exec`, `attach` and `portforward` too
//! (`pod_stream`). The other proxy subresources answer 503 until their components exist.

use std::collections::BTreeMap;

use http::StatusCode;
use rudder_machinery::selectors::labels;
use rudder_machinery::strategy::UpdateTarget;
use serde_json::{Value, json};
use warp::reply::Response;

use super::{Target, apply_patch, check_patched_identity, output, patch, patch_body, query, update};
use crate::http::BodyStream;
use crate::object;
use crate::registry::Subresource;
use crate::status::{ApiError, GroupResource};
use crate::store::{DeleteOptions, Deleted};
use crate::util;

pub(super) async fn serve(
    target: &Target<'_>,
    sub: &Subresource,
    verb: &str,
    body: BodyStream,
) -> Result<Response, ApiError> {
    match (sub.name.as_str(), verb) {
        ("status", "get") => super::get(target).await,
        ("status", "update") => update(target, UpdateTarget::Status, body).await,
        ("status", "patch") => patch(target, UpdateTarget::Status, body).await,
        ("scale", _) => scale(target, verb, body).await,
        ("binding", "create") => {
            let binding = target.object_body(body, "v1", "Binding").await?;
            bind(target, &target.name, &binding).await
        }
        ("eviction", "create") => evict(target, body).await,
        ("log", "get") if target.resource.group.is_empty() && target.resource.resource == "pods" => {
            super::pod_log::serve(target).await
        }
        ("exec" | "attach" | "portforward", "get" | "create")
            if target.resource.group.is_empty() && target.resource.resource == "pods" =>
        {
            let stream = match sub.name.as_str() {
                "exec" => super::pod_stream::Stream::Exec,
                "attach" => super::pod_stream::Stream::Attach,
                _ => super::pod_stream::Stream::PortForward,
            };
            super::pod_stream::serve(target, stream).await
        }
        ("token", "create")
            if target.resource.group.is_empty() && target.resource.resource == "serviceaccounts" =>
        {
            super::token_request::create(target, body).await
        }
        ("finalize", "update") => finalize(target, body).await,
        ("approval", "update") => field_update(target, body, "approval", &["status", "conditions"]).await,
        ("ephemeralcontainers", "update") => {
            field_update(
                target,
                body,
                "ephemeralcontainers",
                &["spec", "ephemeralContainers"],
            )
            .await
        }
        ("resize", "get") => super::get(target).await,
        ("resize", "update") => field_update(target, body, "resize", &["spec", "containers"]).await,
        ("ephemeralcontainers", "get") => super::get(target).await,
        ("ephemeralcontainers" | "resize" | "approval", "patch") => {
            let path: &[&str] = match sub.name.as_str() {
                "ephemeralcontainers" => &["spec", "ephemeralContainers"],
                "resize" => &["spec", "containers"],
                _ => &["status", "conditions"],
            };
            field_patch(target, body, &sub.name, path).await
        }
        (name, _) => Err(ApiError::service_unavailable(format!(
            "the {name} subresource of {} is not available: no component serves it yet",
            target.resource.resource
        ))),
    }
}

/// The autoscaling/v1 Scale of an object with `spec.replicas`.
fn scale_of(target: &Target<'_>, object: &Value) -> Value {
    let resource = &target.resource;
    let custom_scale = resource.custom().and_then(|c| c.scale.as_ref());
    let selector = if let Some(scale) = custom_scale {
        scale
            .label_selector_path
            .as_deref()
            .filter(|p| !p.is_empty())
            .and_then(|p| crate::crd::jsonpath::simple_get(object, p))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    } else if resource.resource == "replicationcontrollers" {
        let set: BTreeMap<String, String> = object
            .pointer("/spec/selector")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        labels::Selector::from_set(&set).to_string()
    } else {
        object
            .pointer("/spec/selector")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .map(|s| labels::format_label_selector(&s))
            .unwrap_or_default()
    };
    let meta = object::meta(object).cloned().unwrap_or_default();
    let mut metadata = serde_json::Map::new();
    for field in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if let Some(value) = meta.get(field) {
            metadata.insert(field.to_owned(), value.clone());
        }
    }
    let (spec_path, status_path) = match custom_scale {
        Some(scale) => (
            scale.spec_replicas_path.as_str(),
            scale.status_replicas_path.as_str(),
        ),
        None => (".spec.replicas", ".status.replicas"),
    };
    let replicas_at = |path: &str| {
        crate::crd::jsonpath::simple_get(object, path)
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let mut status = json!({"replicas": replicas_at(status_path)});
    if !selector.is_empty() {
        status["selector"] = Value::String(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": replicas_at(spec_path)},
        "status": status,
    })
}

async fn scale(target: &Target<'_>, verb: &str, body: BodyStream) -> Result<Response, ApiError> {
    let store = &target.api.store;
    let resource = &target.resource;
    if verb == "get" {
        let object = store.get(resource, &target.namespace, &target.name)?;
        return Ok(target.respond(StatusCode::OK, scale_of(target, &object)));
    }
    let (desired_scale, patch_doc) = match verb {
        "update" => (
            Some(target.object_body(body, "autoscaling/v1", "Scale").await?),
            None,
        ),
        _ => (None, Some(patch_body(target, body).await?)),
    };
    let (kind, format) = match &patch_doc {
        Some((format, _)) => ("PatchOptions", Some(*format)),
        None => ("UpdateOptions", None),
    };
    let options = target.write_options(kind, "scale", format)?.options;
    let updated = store
        .update_with(
            resource,
            &target.namespace,
            &target.name,
            UpdateTarget::Main,
            &options,
            |current| {
                let current_scale = scale_of(target, current);
                let scale = match (&desired_scale, &patch_doc) {
                    (Some(scale), _) => scale.clone(),
                    (None, Some((format, document))) => {
                        let patched = apply_patch(
                            resource,
                            "autoscaling",
                            "v1",
                            "Scale",
                            *format,
                            document,
                            &current_scale,
                        )?;
                        check_patched_identity(&patched, &target.name, &target.namespace)?;
                        patched
                    }
                    (None, None) => current_scale,
                };
                let replicas = scale
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if replicas < 0 {
                    let error = rudder_machinery::field::FieldError::invalid(
                        &rudder_machinery::field::Path::new("spec").child("replicas"),
                        replicas,
                        "must be greater than or equal to 0",
                    );
                    return Err(ApiError::invalid("autoscaling", "Scale", &target.name, &[error]));
                }
                let mut next = current.clone();
                match resource.custom().and_then(|c| c.scale.as_ref()) {
                    Some(scale) => {
                        crate::crd::set_simple(&mut next, &scale.spec_replicas_path, Value::from(replicas));
                    }
                    None => next["spec"]["replicas"] = Value::from(replicas),
                }
                // The Scale's resourceVersion is a precondition on the object.
                let pinned = object::resource_version(&scale);
                if pinned.is_empty() {
                    object::remove_meta(&mut next, "resourceVersion");
                } else {
                    object::set_meta_str(&mut next, "resourceVersion", pinned);
                }
                Ok(next)
            },
        )
        .await?;
    Ok(target.respond(StatusCode::OK, scale_of(target, &updated)))
}

/// Assigns a pod to a node (upstream's BindingREST: storage-level, conditional on the pod
/// not being assigned yet).
pub(super) async fn bind(target: &Target<'_>, pod_name: &str, binding: &Value) -> Result<Response, ApiError> {
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node.is_empty() {
        let error = rudder_machinery::field::FieldError::required(
            &rudder_machinery::field::Path::new("target").child("name"),
            "",
        );
        return Err(ApiError::invalid("", "Binding", pod_name, &[error]));
    }
    let pods = target
        .api
        .registry
        .current()
        .find("", "v1", "pods")
        .ok_or_else(|| ApiError::internal("pods are not registered"))?;
    if query::dry_run(&target.query, "CreateOptions")? {
        target.api.store.get(&pods, &target.namespace, pod_name)?;
        return Ok(output::respond(
            StatusCode::CREATED,
            &success(201),
            &target.output,
        ));
    }
    let annotations = binding
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned();
    let uid_precondition = binding
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_owned);
    target
        .api
        .store
        .update_raw(&pods, &target.namespace, pod_name, None, |current| {
            if object::deletion_timestamp(current).is_some() {
                return Err(ApiError::conflict(
                    GroupResource {
                        group: "",
                        resource: "pods",
                    },
                    pod_name,
                    "pod is being deleted, cannot be assigned to a host",
                ));
            }
            if let Some(uid) = &uid_precondition
                && !uid.is_empty()
                && uid != object::uid(current)
            {
                return Err(ApiError::conflict(
                    GroupResource {
                        group: "",
                        resource: "pods",
                    },
                    pod_name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        object::uid(current)
                    ),
                ));
            }
            if let Some(assigned) = current
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                return Err(ApiError::conflict(
                    GroupResource {
                        group: "",
                        resource: "pods",
                    },
                    pod_name,
                    &format!("pod {pod_name} is already assigned to node {assigned:?}"),
                ));
            }
            let mut pod = current.clone();
            pod["spec"]["nodeName"] = Value::String(node.to_owned());
            if let Some(annotations) = &annotations
                && let Some(meta) = object::meta_mut(&mut pod)
            {
                let entry = meta.entry("annotations").or_insert_with(|| json!({}));
                if let Some(map) = entry.as_object_mut() {
                    for (k, v) in annotations {
                        map.insert(k.clone(), v.clone());
                    }
                }
            }
            set_pod_condition(&mut pod, "PodScheduled", "True");
            Ok(Some(pod))
        })
        .await?;
    Ok(output::respond(
        StatusCode::CREATED,
        &success(201),
        &target.output,
    ))
}

fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

/// Sets (or adds) a pod condition as upstream's `UpdatePodCondition`: the condition is
/// replaced whole (a previous reason and message go), keeping its transition time only when
/// the status is unchanged.
fn set_pod_condition(pod: &mut Value, condition: &str, status: &str) {
    let now = util::now_rfc3339();
    let conditions = pod
        .as_object_mut()
        .map(|o| o.entry("status").or_insert_with(|| json!({})))
        .and_then(|s| s.as_object_mut())
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(Value::Array(conditions)) = conditions else {
        return;
    };
    if let Some(existing) = conditions.iter_mut().find(|c| c["type"] == condition) {
        let transition = if existing["status"] == status {
            existing["lastTransitionTime"].clone()
        } else {
            Value::String(now)
        };
        *existing = json!({"type": condition, "status": status, "lastProbeTime": null, "lastTransitionTime": transition});
        return;
    }
    conditions
        .push(json!({"type": condition, "status": status, "lastProbeTime": null, "lastTransitionTime": now}));
}

/// Evicts a pod, honouring the PodDisruptionBudget that selects it (upstream's EvictionREST).
async fn evict(target: &Target<'_>, body: BodyStream) -> Result<Response, ApiError> {
    let eviction = target.object_body(body, "policy/v1", "Eviction").await?;
    if !object::name(&eviction).is_empty() && object::name(&eviction) != target.name {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Eviction object: {} vs {}",
            target.name,
            object::name(&eviction)
        )));
    }
    let store = &target.api.store;
    let pods = target.resource.clone();
    let pod = store.get(&pods, &target.namespace, &target.name)?;
    let mut options = match eviction.get("deleteOptions").filter(|d| d.is_object()) {
        Some(delete_options) => query::delete_options(&query::Query::default(), Some(delete_options))?,
        None => DeleteOptions::default(),
    };
    if query::dry_run(&target.query, "CreateOptions")? {
        options.dry_run = true;
    }
    let phase = pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
    let terminal = matches!(phase, "Succeeded" | "Failed");
    let deleting = object::deletion_timestamp(&pod).is_some();
    // Upstream's canIgnorePDB: finished, pending and terminating pods are deleted directly.
    let mut budget = None;
    if !terminal && !deleting && !matches!(phase, "Pending" | "") {
        match check_disruption_budget(target, &pod, options.dry_run).await? {
            Budget::Unhealthy(name) => {
                // The unhealthy pod must not have become ready since the budget was read.
                if options.precondition_resource_version.is_none() {
                    options.precondition_resource_version = Some(object::resource_version(&pod).to_owned());
                    budget = Some(name);
                }
            }
            Budget::None | Budget::Decremented => {}
        }
    } else if !terminal && !deleting && options.precondition_resource_version.is_none() {
        options.precondition_resource_version = Some(object::resource_version(&pod).to_owned());
    }
    let deleted = async {
        if !options.dry_run {
            add_disruption_target(target, &mut options).await?;
        }
        store
            .delete(&pods, &target.namespace, &target.name, &options)
            .await
    }
    .await;
    match deleted {
        Ok(Deleted::Gone(_) | Deleted::Pending(_)) => {}
        Err(err) => {
            // A conflict on the unhealthy pod's version: it changed; the client retries.
            return Err(match budget {
                Some(name) if err.code == StatusCode::CONFLICT => too_many_requests(format!(
                    "The disruption budget {name} is still being processed by the server."
                )),
                _ => err,
            });
        }
    }
    Ok(output::respond(
        StatusCode::CREATED,
        &success(201),
        &target.output,
    ))
}

/// What the budget check decided.
enum Budget {
    /// No budget selects the pod.
    None,
    /// The pod is unhealthy and its budget lets it go without counting a disruption.
    Unhealthy(String),
    /// A disruption was counted against the budget.
    Decremented,
}

/// The 429 of an eviction a budget refuses, with the budget's reason as the cause.
fn too_many_requests(detail: String) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
    );
    error.retry_after = Some(10);
    error.details = Some(Box::new(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusDetails {
            causes: Some(vec![
                k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusCause {
                    reason: Some("DisruptionBudget".into()),
                    message: Some(detail),
                    field: None,
                },
            ]),
            retry_after_seconds: Some(10),
            ..Default::default()
        },
    ));
    error
}

/// Upstream's conditionAppender: the pod gets `DisruptionTarget` before its deletion, under
/// the delete's preconditions; a resourceVersion precondition then follows the new version.
async fn add_disruption_target(target: &Target<'_>, options: &mut DeleteOptions) -> Result<(), ApiError> {
    let uid = options.precondition_uid.clone().filter(|u| !u.is_empty());
    let version = options
        .precondition_resource_version
        .clone()
        .filter(|v| !v.is_empty());
    let name = target.name.clone();
    let updated = target
        .api
        .store
        .update_raw(&target.resource, &target.namespace, &target.name, None, |current| {
            let conflict = |message: String| {
                ApiError::conflict(
                    GroupResource {
                        group: "",
                        resource: "Pod",
                    },
                    &name,
                    &message,
                )
            };
            if let Some(uid) = &uid
                && uid != object::uid(current)
            {
                return Err(conflict(format!(
                    "the UID in the precondition ({uid}) does not match the UID in record ({}). The object might have been deleted and then recreated",
                    object::uid(current)
                )));
            }
            if let Some(version) = &version
                && version != object::resource_version(current)
            {
                return Err(conflict(format!(
                    "the ResourceVersion in the precondition ({version}) does not match the ResourceVersion in record ({}). The object might have been modified",
                    object::resource_version(current)
                )));
            }
            let mut pod = current.clone();
            set_pod_condition(&mut pod, "DisruptionTarget", "True");
            if let Some(condition) = pod
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut)
                .and_then(|c| c.iter_mut().find(|c| c["type"] == "DisruptionTarget"))
            {
                condition["reason"] = Value::from("EvictionByEvictionAPI");
                condition["message"] = Value::from("Eviction API: evicting");
            }
            Ok(Some(pod))
        })
        .await?;
    if version.is_some() {
        options.precondition_resource_version = Some(object::resource_version(&updated).to_owned());
    }
    Ok(())
}

async fn check_disruption_budget(
    target: &Target<'_>,
    pod: &Value,
    dry_run: bool,
) -> Result<Budget, ApiError> {
    let store = &target.api.store;
    let pdbs = target
        .api
        .registry
        .current()
        .find("policy", "v1", "poddisruptionbudgets")
        .ok_or_else(|| ApiError::internal("poddisruptionbudgets are not registered"))?;
    let budgets = store
        .list(
            &pdbs,
            Some(&target.namespace),
            &crate::store::ListQuery::default(),
        )
        .await?
        .items;
    let pod_labels = object::labels(pod);
    let matching: Vec<&Value> = budgets
        .iter()
        .filter(|pdb| {
            let selector = pdb
                .pointer("/spec/selector")
                .and_then(|s| serde_json::from_value(s.clone()).ok())
                .and_then(|s| labels::Selector::from_label_selector(&s).ok());
            // A budget without a selector selects nothing; an empty one every pod (policy/v1).
            selector.is_some_and(|s| s.matches(&pod_labels))
        })
        .collect();
    let budget = match matching.as_slice() {
        [] => return Ok(Budget::None),
        [one] => *one,
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
    };
    let budget_name = object::name(budget).to_owned();
    let too_many = too_many_requests;
    // Upstream's unhealthyPodEvictionPolicy: an unready pod may go without counting a
    // disruption when the policy always allows it, or (IfHealthyBudget, the default) when the
    // budget is met.
    let ready = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"));
    if !ready {
        let status_number = |field: &str| {
            budget
                .pointer(&format!("/status/{field}"))
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        let policy = budget
            .pointer("/spec/unhealthyPodEvictionPolicy")
            .and_then(Value::as_str);
        let desired = status_number("desiredHealthy");
        if policy == Some("AlwaysAllow") || (status_number("currentHealthy") >= desired && desired > 0) {
            return Ok(Budget::Unhealthy(budget_name));
        }
    }
    let generation = budget
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let observed = budget
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if observed < generation {
        return Err(too_many(format!(
            "The disruption budget {budget_name} is still being processed by the server."
        )));
    }
    let allowed = budget
        .pointer("/status/disruptionsAllowed")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if allowed <= 0 {
        let desired = budget
            .pointer("/status/desiredHealthy")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let current = budget
            .pointer("/status/currentHealthy")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        return Err(too_many(format!(
            "The disruption budget {budget_name} needs {desired} healthy pods and has {current} currently"
        )));
    }
    if dry_run {
        return Ok(Budget::Decremented);
    }
    let pod_name = object::name(pod).to_owned();
    store
        .update_raw(&pdbs, &target.namespace, &budget_name, None, |current| {
            let allowed = current
                .pointer("/status/disruptionsAllowed")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if allowed <= 0 {
                return Err(too_many(format!(
                    "The disruption budget {budget_name} does not allow more disruptions"
                )));
            }
            let mut next = current.clone();
            next["status"]["disruptionsAllowed"] = Value::from(allowed - 1);
            let disrupted = next["status"]
                .as_object_mut()
                .map(|s| s.entry("disruptedPods").or_insert_with(|| json!({})));
            if let Some(Value::Object(map)) = disrupted {
                map.insert(pod_name.clone(), Value::String(util::now_rfc3339()));
            }
            Ok(Some(next))
        })
        .await?;
    Ok(Budget::Decremented)
}

/// `namespaces/{name}/finalize`: only `spec.finalizers` changes, through the namespace's
/// finalize strategy.
async fn finalize(target: &Target<'_>, body: BodyStream) -> Result<Response, ApiError> {
    let resource = &target.resource;
    let desired = target
        .object_body(body, &resource.api_version(), &resource.kind)
        .await?;
    if !object::name(&desired).is_empty() && object::name(&desired) != target.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            object::name(&desired),
            target.name
        )));
    }
    let pinned = object::resource_version(&desired).to_owned();
    let finalizers = object::get_path(&desired, &["spec", "finalizers"]).cloned();
    let options = target.write_options("UpdateOptions", "finalize", None)?.options;
    let updated = target
        .api
        .store
        .update_raw(
            resource,
            &target.namespace,
            &target.name,
            Some(&options),
            |current| {
                if !pinned.is_empty() && pinned != object::resource_version(current) {
                    return Err(ApiError::stale(resource.group_resource(), &target.name));
                }
                let mut next = current.clone();
                set_path(&mut next, &["spec", "finalizers"], finalizers.clone());
                rudder_machinery::kinds::namespace::finalize_update(next, current)
                    .map(Some)
                    .map_err(|err| crate::store::pipeline_error(resource, &target.name, err))
            },
        )
        .await?;
    Ok(target.respond(StatusCode::OK, updated))
}

/// An update through a subresource that may change only the field at `path`.
async fn field_update(
    target: &Target<'_>,
    body: BodyStream,
    subresource: &str,
    path: &[&str],
) -> Result<Response, ApiError> {
    let resource = &target.resource;
    let desired = target
        .object_body(body, &resource.api_version(), &resource.kind)
        .await?;
    if !object::name(&desired).is_empty() && object::name(&desired) != target.name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({})",
            object::name(&desired),
            target.name
        )));
    }
    let pinned = object::resource_version(&desired).to_owned();
    let value = object::get_path(&desired, path).cloned();
    let options = target.write_options("UpdateOptions", subresource, None)?.options;
    let updated = copy_field(target, path, value, &pinned, &options).await?;
    Ok(target.respond(StatusCode::OK, updated))
}

/// A patch through a subresource that may change only the field at `path`.
async fn field_patch(
    target: &Target<'_>,
    body: BodyStream,
    subresource: &str,
    path: &[&str],
) -> Result<Response, ApiError> {
    let resource = &target.resource;
    let (format, document) = patch_body(target, body).await?;
    let options = target
        .write_options("PatchOptions", subresource, Some(format))?
        .options;
    let current = target.api.store.get(resource, &target.namespace, &target.name)?;
    let patched = apply_patch(
        resource,
        &resource.group,
        &resource.version,
        &resource.kind,
        format,
        &document,
        &current,
    )?;
    check_patched_identity(&patched, &target.name, &target.namespace)?;
    let pinned = object::resource_version(&patched).to_owned();
    let value = object::get_path(&patched, path).cloned();
    let updated = copy_field(target, path, value, &pinned, &options).await?;
    Ok(target.respond(StatusCode::OK, updated))
}

async fn copy_field(
    target: &Target<'_>,
    path: &[&str],
    value: Option<Value>,
    pinned: &str,
    options: &crate::store::WriteOptions,
) -> Result<Value, ApiError> {
    let resource = &target.resource;
    target
        .api
        .store
        .update_raw(
            resource,
            &target.namespace,
            &target.name,
            Some(options),
            |current| {
                if !pinned.is_empty() && pinned != object::resource_version(current) {
                    return Err(ApiError::stale(resource.group_resource(), &target.name));
                }
                let mut next = current.clone();
                set_path(&mut next, path, value.clone());
                Ok(Some(next))
            },
        )
        .await
}

fn set_path(object: &mut Value, path: &[&str], value: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = object;
    for key in parents {
        if !node.get(*key).is_some_and(Value::is_object) {
            node[*key] = json!({});
        }
        node = &mut node[*key];
    }
    match value {
        Some(value) => node[*last] = value,
        None => {
            if let Some(map) = node.as_object_mut() {
                map.remove(*last);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_path_creates_parents_and_removes() {
        let mut object = json!({"metadata": {"name": "x"}});
        set_path(&mut object, &["spec", "finalizers"], Some(json!(["kubernetes"])));
        assert_eq!(object["spec"]["finalizers"], json!(["kubernetes"]));
        set_path(&mut object, &["spec", "finalizers"], None);
        assert_eq!(object["spec"], json!({}));
    }

    #[test]
    fn pod_conditions() {
        let mut pod = json!({"status": {}});
        set_pod_condition(&mut pod, "PodScheduled", "True");
        assert_eq!(pod["status"]["conditions"][0]["type"], "PodScheduled");
        assert_eq!(pod["status"]["conditions"][0]["status"], "True");
    }
}
