//! JSON Patch, JSON Merge Patch and strategic merge patch, applied as kube-apiserver does.
//!
//! The three PATCH content types of the Kubernetes API:
//!
//! - `application/json-patch+json`: [`apply_json_patch`], RFC 6902 with the semantics of
//!   `gopkg.in/evanphx/json-patch.v4` (the library kube-apiserver links), quirks included;
//! - `application/merge-patch+json`: [`apply_merge_patch`] / [`try_apply_merge_patch`], RFC 7386
//!   with the null pruning of the same library;
//! - `application/strategic-merge-patch+json`: [`apply_strategic_merge_patch`], a port of the
//!   apply side of `k8s.io/apimachinery/pkg/util/strategicpatch`, driven by the schema facts of
//!   [`crate::schema::Schema`] (patch strategies and merge keys), never by guesses.
//!
//! Failures carry the HTTP status kube-apiserver answers with ([`PatchError`]). The functions
//! work on parsed documents; turning request bytes into JSON (and its syntax errors into 400s)
//! is the caller's job.

mod json_patch;
mod merge_patch;
mod strategic;

pub use json_patch::{MAX_JSON_PATCH_COPY_BYTES, MAX_JSON_PATCH_OPERATIONS, apply_json_patch};
pub use merge_patch::{apply_merge_patch, try_apply_merge_patch};
pub use strategic::apply_strategic_merge_patch;

/// Why a patch could not be applied, classified the way kube-apiserver's PATCH handler
/// (`staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go`) classifies it.
///
/// | variant | HTTP | `Status.reason` | `Status.message` | raised for |
/// |---|---|---|---|---|
/// | [`BadRequest`](Self::BadRequest) | 400 | `BadRequest` | the text | a JSON patch document that is not a list of operation objects (`json: cannot unmarshal object into Go value of type jsonpatch.Patch`); a merge patch that is not an object or array (`Invalid JSON Patch`); a strategic patch that is not an object, or the sentinel errors `invalid JSON document`, `invalid patch format of primitive list` (bad `$deleteFromPrimitiveList` key), `invalid patch format of retainKeys` (`$retainKeys` not a list, or a patched key missing from it), `invalid patch format of setElementOrder list` (bad `$setElementOrder` key), `strategic merge patch format is not supported` (no schema: custom resources) |
/// | [`Unprocessable`](Self::Unprocessable) | 422 | `Invalid` | always `the server rejected our request due to an error in our request`, `details: {}` (upstream builds it with `NewGenericServerResponse`, which drops the text) | every failure while applying a JSON patch (missing path, failed `test`, bad index, unknown `op`, copy size limit); a strategic patch containing a list of lists (`lists of lists are not supported`) |
/// | [`RequestEntityTooLarge`](Self::RequestEntityTooLarge) | 413 | `RequestEntityTooLarge` | `Request entity too large: ` + the text | a JSON patch with more than [`MAX_JSON_PATCH_OPERATIONS`] operations |
/// | [`Internal`](Self::Internal) | 500 | `""` (unknown) | the text | every other strategic merge patch error: upstream returns them unwrapped (`interpretStrategicMergePatchError` default branch), so the generic error responder answers 500 with the bare message, e.g. `unknown patch type: foo in map: map[$patch:foo name:a]`, `map: map[image:b] does not contain declared merge key: name`, `merging lists cannot yet be specified in the patch`, `unable to find api field in struct PodSpec for the json field "x"`; also where upstream panics (a merging list whose first element is `null`), with the text of the panic filter's plain-text 500 body |
///
/// The `Display` text of every variant is the underlying upstream error message (for
/// [`Unprocessable`](Self::Unprocessable) it is the message upstream logs but does not send);
/// [`PatchError::message`] is what belongs in the `Status` body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// 400 Bad Request: the patch document itself is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 422 Unprocessable Entity (reason `Invalid`): the patch is well formed but cannot be applied
    /// to this document.
    #[error("{0}")]
    Unprocessable(String),
    /// 413 Request Entity Too Large: too many JSON patch operations.
    #[error("{0}")]
    RequestEntityTooLarge(String),
    /// 500 Internal Server Error with an empty reason: an error upstream does not classify.
    #[error("{0}")]
    Internal(String),
}

/// The message kube-apiserver puts in a 422 built by `NewGenericServerResponse`.
const UNPROCESSABLE_MESSAGE: &str = "the server rejected our request due to an error in our request";

impl PatchError {
    /// The HTTP status code of the response.
    pub fn code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::Unprocessable(_) => 422,
            PatchError::RequestEntityTooLarge(_) => 413,
            PatchError::Internal(_) => 500,
        }
    }

    /// The `metav1.Status` reason of the response (empty for [`PatchError::Internal`]).
    pub fn reason(&self) -> &'static str {
        match self {
            PatchError::BadRequest(_) => "BadRequest",
            PatchError::Unprocessable(_) => "Invalid",
            PatchError::RequestEntityTooLarge(_) => "RequestEntityTooLarge",
            PatchError::Internal(_) => "",
        }
    }

    /// The `metav1.Status` message of the response, exactly as kube-apiserver words it.
    pub fn message(&self) -> String {
        match self {
            PatchError::BadRequest(m) | PatchError::Internal(m) => m.clone(),
            PatchError::Unprocessable(_) => UNPROCESSABLE_MESSAGE.to_string(),
            PatchError::RequestEntityTooLarge(m) => format!("Request entity too large: {m}"),
        }
    }

    /// The underlying upstream error text (what kube-apiserver would log).
    pub fn detail(&self) -> &str {
        match self {
            PatchError::BadRequest(m)
            | PatchError::Unprocessable(m)
            | PatchError::RequestEntityTooLarge(m)
            | PatchError::Internal(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_upstream_statuses() {
        let bad = PatchError::BadRequest("invalid patch format of retainKeys".into());
        assert_eq!((bad.code(), bad.reason()), (400, "BadRequest"));
        assert_eq!(bad.message(), "invalid patch format of retainKeys");

        let failed = PatchError::Unprocessable("testing value /a failed: test failed".into());
        assert_eq!((failed.code(), failed.reason()), (422, "Invalid"));
        assert_eq!(failed.message(), UNPROCESSABLE_MESSAGE);
        assert_eq!(failed.detail(), "testing value /a failed: test failed");
        assert_eq!(failed.to_string(), "testing value /a failed: test failed");

        let large = PatchError::RequestEntityTooLarge("too many".into());
        assert_eq!((large.code(), large.reason()), (413, "RequestEntityTooLarge"));
        assert_eq!(large.message(), "Request entity too large: too many");

        let internal = PatchError::Internal("merging lists cannot yet be specified in the patch".into());
        assert_eq!((internal.code(), internal.reason()), (500, ""));
        assert_eq!(
            internal.message(),
            "merging lists cannot yet be specified in the patch"
        );
    }
}
