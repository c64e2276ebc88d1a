//! Pulling images from registries (the OCI distribution API, Docker Registry HTTP API v2)
//! into the store: manifests (OCI and Docker schema 2), image indexes and manifest lists
//! (this node's platform is chosen), configs and layers, every blob verified against its
//! digest before it becomes visible. Token (Bearer) and Basic auth with credentials from a
//! pod's pull secrets (see [`auth`]); plain HTTP for registries configured as insecure,
//! and for loopback registries when HTTPS fails, as containerd does.
//!
//! A small client on the workspace's hyper/rustls stack rather than the `oci-client` crate,
//! which brings reqwest and its own copies of the HTTP and TLS stacks. This module knows
//! nothing of pods, pull policies or back-off (the kubelet's image manager owns those).

pub mod auth;
mod client;

pub use auth::{AuthConfig, Challenge, Keyring, KeyringError, parse_challenges};
pub use client::{PullError, Pulled, RegistryClient, RegistryConfig, platform_manifest};
