//! Pod volumes on the node's filesystem, as the kubelet's volume plugins set them up: the
//! atomic writer behind configMap, secret, downwardAPI and projected volumes and their
//! payloads, fsGroup ownership, emptyDir (disk or tmpfs), hostPath type checks and subPath
//! resolution.
//!
//! Paths are given by the caller (the pod directory's `volumes/...`); objects are given as
//! plain values. Nothing here reads the API or decides when a volume is set up.

pub mod atomic_writer;
pub mod emptydir;
pub mod hostpath;
pub mod ownership;
pub mod payload;
pub mod subpath;

pub use atomic_writer::{AtomicWriter, FileProjection, WriterError};
