//! The one place where errors become HTTP responses: `metav1.Status` objects with the code,
//! reason, message and details kube-apiserver would send.

use http::{HeaderValue, StatusCode, header};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Status, StatusCause, StatusDetails};
use warp::reply::Response;

/// An error to be returned to the client as a `Status`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status code (also the Status `code`).
    pub code: StatusCode,
    /// The machine-readable reason (`NotFound`, `Conflict`, ...).
    pub reason: &'static str,
    /// The human-readable message.
    pub message: String,
    /// Details: the object concerned and the causes.
    pub details: Option<StatusDetails>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    /// 401: the request carries no valid credentials.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
    }

    /// 404 for a path the server does not serve.
    pub fn path_not_found() -> Self {
        ApiError {
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    reason: Some("UnexpectedServerResponse".to_owned()),
                    message: Some("404 page not found".to_owned()),
                    field: None,
                }]),
                ..Default::default()
            }),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                "the server could not find the requested resource",
            )
        }
    }

    /// 500 for a failure inside the server.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        ApiError {
            details: Some(StatusDetails {
                causes: Some(vec![StatusCause {
                    message: Some(err.to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                format!("Internal error occurred: {err}"),
            )
        }
    }

    /// 503 while the server cannot serve the request yet (or any more).
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", message)
    }

    /// The `Status` object.
    pub fn status(&self) -> Status {
        Status {
            code: Some(i32::from(self.code.as_u16())),
            details: self.details.clone(),
            message: Some(self.message.clone()),
            metadata: ListMeta::default(),
            reason: Some(self.reason.to_owned()),
            status: Some("Failure".to_owned()),
        }
    }

    /// The JSON response.
    pub fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.status()).unwrap_or_default();
        let mut response = Response::new(body.into());
        *response.status_mut() = self.code;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unauthorized_matches_kube_apiserver() {
        let json = serde_json::to_value(ApiError::unauthorized().status()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})
        );
    }
}
