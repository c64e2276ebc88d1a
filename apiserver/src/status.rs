//! The one place where errors become HTTP responses: `metav1.Status` objects with the code,
//! reason, message and details kube-apiserver would send (k8s.io/apimachinery/pkg/api/errors).

use http::{HeaderValue, StatusCode, header};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Status, StatusCause, StatusDetails};
use rudder_machinery::field::{FieldError, aggregate};
use warp::reply::Response;

/// A group and resource, as errors name them: `pods`, `deployments.apps`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupResource<'a> {
    /// The group (empty for core).
    pub group: &'a str,
    /// The plural resource.
    pub resource: &'a str,
}

impl std::fmt::Display for GroupResource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// An error to be returned to the client as a `Status`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status code (also the Status `code`).
    pub code: StatusCode,
    /// The machine-readable reason (`NotFound`, `Conflict`, ...); empty for none.
    pub reason: &'static str,
    /// The human-readable message.
    pub message: String,
    /// Details: the object concerned and the causes (boxed: errors travel in `Result`s).
    pub details: Option<Box<StatusDetails>>,
    /// Seconds after which the client may retry (`Retry-After`).
    pub retry_after: Option<u32>,
}

fn details(group: &str, kind: &str, name: &str) -> Option<Box<StatusDetails>> {
    Some(Box::new(StatusDetails {
        group: (!group.is_empty()).then(|| group.to_owned()),
        kind: (!kind.is_empty()).then(|| kind.to_owned()),
        name: (!name.is_empty()).then(|| name.to_owned()),
        ..Default::default()
    }))
}

impl ApiError {
    /// An error with no details.
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, details: Option<Box<StatusDetails>>) -> Self {
        self.details = details;
        self
    }

    /// 401: the request carries no valid credentials.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
    }

    /// 404 for a path the server does not serve.
    pub fn path_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(Some(Box::new(StatusDetails {
            causes: Some(vec![StatusCause {
                reason: Some("UnexpectedServerResponse".to_owned()),
                message: Some("404 page not found".to_owned()),
                field: None,
            }]),
            ..Default::default()
        })))
    }

    /// 404: the object does not exist.
    pub fn not_found(resource: GroupResource<'_>, name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{resource} {name:?} not found"),
        )
        .with_details(details(resource.group, resource.resource, name))
    }

    /// 409: the object already exists.
    pub fn already_exists(resource: GroupResource<'_>, name: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{resource} {name:?} already exists"),
        )
        .with_details(details(resource.group, resource.resource, name))
    }

    /// 409: the write lost a race or failed a precondition.
    pub fn conflict(resource: GroupResource<'_>, name: &str, why: &str) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!("Operation cannot be fulfilled on {resource} {name:?}: {why}"),
        )
        .with_details(details(resource.group, resource.resource, name))
    }

    /// 409 for a stale resourceVersion.
    pub fn stale(resource: GroupResource<'_>, name: &str) -> Self {
        Self::conflict(
            resource,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 403: the request is not allowed.
    pub fn forbidden(resource: GroupResource<'_>, name: &str, why: &str) -> Self {
        let message = if resource.resource.is_empty() {
            format!("forbidden: {why}")
        } else if name.is_empty() {
            format!("{resource} is forbidden: {why}")
        } else {
            format!("{resource} {name:?} is forbidden: {why}")
        };
        Self::new(StatusCode::FORBIDDEN, "Forbidden", message).with_details(details(
            resource.group,
            resource.resource,
            name,
        ))
    }

    /// 422: the object is invalid; one cause per field error.
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let message = if errors.is_empty() {
            format!("{qualified} {name:?} is invalid")
        } else {
            format!("{qualified} {name:?} is invalid: {}", aggregate(errors))
        };
        let causes = errors
            .iter()
            .map(|error| StatusCause {
                reason: Some(error.error_type.cause_type().to_owned()),
                message: Some(error.body()),
                field: Some(error.field.clone()),
            })
            .collect();
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message).with_details(Some(Box::new(
            StatusDetails {
                causes: Some(causes),
                ..*details(group, kind, name).unwrap_or_default()
            },
        )))
    }

    /// 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    /// 405: the resource does not support the verb.
    pub fn method_not_supported(resource: GroupResource<'_>, action: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!(
                "{action} is not supported on resources of kind {:?}",
                resource.to_string()
            ),
        )
        .with_details(details(resource.group, resource.resource, ""))
    }

    /// 405 for a method the route does not have.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    /// 410: the requested revision has been compacted.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "Expired", message)
    }

    /// 413: the request body is too large.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 415: the request body's media type is not supported.
    pub fn unsupported_media_type(content_type: &str, supported: &[&str]) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                supported.join(", ")
            ),
        )
        .with_details(Some(Box::new(StatusDetails {
            causes: Some(vec![StatusCause {
                reason: Some("UnexpectedServerResponse".into()),
                message: Some(format!("unsupported media type {content_type:?}")),
                field: None,
            }]),
            ..Default::default()
        })))
    }

    /// 406: nothing the client accepts can be produced.
    pub fn not_acceptable(supported: &[&str]) -> Self {
        Self::new(
            StatusCode::NOT_ACCEPTABLE,
            "NotAcceptable",
            format!(
                "only the following media types are accepted: {}",
                supported.join(", ")
            ),
        )
    }

    /// 500 for a failure inside the server.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("Internal error occurred: {err}"),
        )
        .with_details(Some(Box::new(StatusDetails {
            causes: Some(vec![StatusCause {
                message: Some(err.to_string()),
                ..Default::default()
            }]),
            ..Default::default()
        })))
    }

    /// 503 while the server cannot serve the request yet (or any more).
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", message)
    }

    /// 504: the request timed out (e.g. waiting for a future resourceVersion).
    pub fn timeout(message: impl Into<String>, retry_after: u32) -> Self {
        let mut error = Self::new(StatusCode::GATEWAY_TIMEOUT, "Timeout", message);
        error.retry_after = Some(retry_after);
        error.details = Some(Box::new(StatusDetails {
            retry_after_seconds: Some(i32::try_from(retry_after).unwrap_or(i32::MAX)),
            ..Default::default()
        }));
        error
    }

    /// The `Status` object.
    pub fn status(&self) -> Status {
        Status {
            code: Some(i32::from(self.code.as_u16())),
            details: self.details.as_deref().cloned(),
            message: Some(self.message.clone()),
            metadata: ListMeta::default(),
            reason: (!self.reason.is_empty()).then(|| self.reason.to_owned()),
            status: Some("Failure".to_owned()),
        }
    }

    /// The JSON response.
    pub fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.status()).unwrap_or_default();
        let mut response = Response::new(body.into());
        *response.status_mut() = self.code;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rudder_machinery::field::Path;

    #[test]
    fn unauthorized_matches_kube_apiserver() {
        let json = serde_json::to_value(ApiError::unauthorized().status()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})
        );
    }

    #[test]
    fn messages_match_kube_apiserver() {
        let deployments = GroupResource {
            group: "apps",
            resource: "deployments",
        };
        let pods = GroupResource {
            group: "",
            resource: "pods",
        };
        assert_eq!(ApiError::not_found(pods, "web").message, "pods \"web\" not found");
        assert_eq!(
            ApiError::already_exists(deployments, "d").message,
            "deployments.apps \"d\" already exists"
        );
        assert_eq!(
            ApiError::stale(pods, "web").message,
            "Operation cannot be fulfilled on pods \"web\": the object has been modified; please apply your changes to the latest version and try again"
        );
        let invalid = ApiError::invalid(
            "apps",
            "Deployment",
            "d",
            &[FieldError::required(&Path::new("spec").child("selector"), "")],
        );
        assert_eq!(
            invalid.message,
            "Deployment.apps \"d\" is invalid: spec.selector: Required value"
        );
        let json = serde_json::to_value(invalid.status()).unwrap();
        assert_eq!(
            json["details"]["causes"][0],
            serde_json::json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.selector"})
        );
        assert_eq!(json["details"]["kind"], "Deployment");
        let nf = serde_json::to_value(ApiError::not_found(deployments, "d").status()).unwrap();
        assert_eq!(
            nf["details"],
            serde_json::json!({"name": "d", "group": "apps", "kind": "deployments"})
        );
    }
}
