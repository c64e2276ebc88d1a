//! The image store's error type; it owns no logic.

use std::path::PathBuf;

/// Everything that can go wrong in the image store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{what}: {source}")]
    Sys { what: String, source: rustix::io::Errno },
    #[error("{reason}")]
    InvalidReference { reference: String, reason: String },
    #[error("invalid digest {0:?}: only sha256:<64 lowercase hex digits> is supported")]
    InvalidDigest(String),
    #[error("content digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("blob {0} is not in the image store")]
    BlobNotFound(String),
    #[error("image {0:?} not found")]
    ImageNotFound(String),
    #[error("{what}: {source}")]
    Json { what: String, source: serde_json::Error },
    #[error("{what}: {source}")]
    Oci {
        what: String,
        source: oci_spec::OciSpecError,
    },
    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("image index {digest} has no manifest for platform {platform}")]
    NoMatchingPlatform { digest: String, platform: String },
    #[error("{}: {reason}", archive.display())]
    InvalidArchive { archive: PathBuf, reason: String },
    #[error("layer entry {0:?} escapes the layer root")]
    PathTraversal(String),
    #[error("{0} needs root")]
    NeedsRoot(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn sys(what: impl std::fmt::Display) -> impl FnOnce(rustix::io::Errno) -> Error {
        let what = what.to_string();
        move |source| Error::Sys { what, source }
    }

    pub(crate) fn json(what: impl std::fmt::Display) -> impl FnOnce(serde_json::Error) -> Error {
        let what = what.to_string();
        move |source| Error::Json { what, source }
    }

    pub(crate) fn oci(what: impl std::fmt::Display) -> impl FnOnce(oci_spec::OciSpecError) -> Error {
        let what = what.to_string();
        move |source| Error::Oci { what, source }
    }
}
