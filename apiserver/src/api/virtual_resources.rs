//! Resources computed per request instead of stored: pod `bindings`, `componentstatuses`,
//! and the authentication and authorization reviews.
//!
//! Rudder has no authorizer yet: every authenticated request is allowed, so access reviews
//! answer `allowed: true`, exactly what kube-apiserver answers with `--authorization-mode=AlwaysAllow`.

use http::StatusCode;
use serde_json::{Value, json};
use warp::reply::Response;

use super::{Target, output};
use crate::authn::UserInfo;
use crate::http::BodyStream;
use crate::object;
use crate::status::ApiError;
use crate::store::ListResult;

pub(super) async fn serve(
    target: &Target<'_>,
    verb: &str,
    user: &UserInfo,
    body: BodyStream,
) -> Result<Response, ApiError> {
    let resource = &target.resource;
    match (resource.group.as_str(), resource.resource.as_str(), verb) {
        ("", "bindings", "create") => {
            let binding = target.object_body(body, "v1", "Binding").await?;
            let pod = object::name(&binding).to_owned();
            super::subresources::bind(target, &pod, &binding).await
        }
        ("", "componentstatuses", "get") => {
            let status = component_statuses(target)
                .into_iter()
                .find(|s| object::name(s) == target.name)
                .ok_or_else(|| ApiError::not_found(resource.group_resource(), &target.name))?;
            Ok(target.respond(StatusCode::OK, status))
        }
        ("", "componentstatuses", "list") => {
            let result = ListResult {
                items: component_statuses(target),
                resource_version: 0,
                continue_token: None,
                remaining: None,
            };
            let mut list = output::list(result, &target.resource, &target.output);
            list["metadata"] = json!({});
            Ok(output::respond(StatusCode::OK, &list, &target.output))
        }
        (_, _, "create") => {
            let mut review = target
                .object_body(body, &resource.api_version(), &resource.kind)
                .await?;
            review["status"] = review_status(target, &resource.resource, user, &review)?;
            if let Some(meta) = object::meta_mut(&mut review) {
                meta.entry("creationTimestamp").or_insert(Value::Null);
            }
            Ok(target.respond(StatusCode::CREATED, review))
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// The health of the components this server runs.
fn component_statuses(target: &Target<'_>) -> Vec<Value> {
    let healthy = target.api.store.storage().check();
    let (status, message, error) = match &healthy {
        Ok(()) => ("True", "ok", Value::Null),
        Err(err) => ("False", "", Value::String(err.to_string())),
    };
    let mut condition = json!({"type": "Healthy", "status": status, "message": message});
    if !error.is_null() {
        condition["error"] = error;
    }
    vec![json!({
        "kind": "ComponentStatus",
        "apiVersion": "v1",
        "metadata": {"name": "storage"},
        "conditions": [condition],
    })]
}

fn user_json(user: &UserInfo) -> Value {
    let mut value = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        value["uid"] = Value::String(user.uid.clone());
    }
    if !user.extra.is_empty() {
        value["extra"] = json!(user.extra);
    }
    value
}

fn review_status(
    target: &Target<'_>,
    resource: &str,
    user: &UserInfo,
    review: &Value,
) -> Result<Value, ApiError> {
    let spec = review.get("spec").cloned().unwrap_or(Value::Null);
    let invalid = |field: &str, detail: &str| {
        let error = rudder_machinery::field::FieldError::invalid(
            &rudder_machinery::field::Path::new("spec").child(field),
            Value::Null,
            detail,
        );
        ApiError::invalid(
            &target.resource.group,
            &target.resource.kind,
            object::name(review),
            &[error],
        )
    };
    match resource {
        "selfsubjectreviews" => Ok(json!({"userInfo": user_json(user)})),
        "tokenreviews" => {
            let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
            if token.is_empty() {
                return Err(ApiError::bad_request(
                    "token is required for TokenReview in authentication",
                ));
            }
            // Upstream's TokenReview REST: the requested audiences, or the API server's.
            let mut audiences: Vec<String> = spec
                .get("audiences")
                .and_then(Value::as_array)
                .map(|auds| auds.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            if audiences.is_empty() {
                audiences = target.api.authn.api_audiences().to_vec();
            }
            match target.api.authn.authenticate_token(token.trim(), &audiences) {
                Ok(reviewed) => {
                    let mut status = json!({"authenticated": true, "user": user_json(&reviewed.user)});
                    if !reviewed.audiences.is_empty() {
                        status["audiences"] = json!(reviewed.audiences);
                    }
                    Ok(status)
                }
                Err(err) => Ok(json!({"user": {}, "error": err.to_string()})),
            }
        }
        "subjectaccessreviews" | "localsubjectaccessreviews" => {
            let has_subject = ["user", "groups", "uid"].iter().any(|f| match spec.get(*f) {
                Some(Value::String(s)) => !s.is_empty(),
                Some(Value::Array(a)) => !a.is_empty(),
                _ => false,
            });
            if !has_subject {
                return Err(invalid("user", "at least one of user or group must be specified"));
            }
            Ok(json!({"allowed": true}))
        }
        "selfsubjectaccessreviews" => Ok(json!({"allowed": true})),
        "selfsubjectrulesreviews" => Ok(json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        })),
        _ => Err(ApiError::method_not_allowed()),
    }
}
