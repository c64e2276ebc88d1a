//! Kubernetes API machinery without I/O, the analogue of k8s.io/apimachinery plus the
//! per-kind registry strategies of kube-apiserver.
//!
//! It owns the tables of built-in APIs (generated from upstream's discovery documents and
//! OpenAPI spec by `hack/gen-apis.py`), field errors with upstream's messages, label and field
//! selectors, JSON/merge/strategic-merge patches, and the typed per-kind strategies
//! (defaulting, preparation for create/update, validation, selectable fields). It knows
//! nothing of HTTP, storage or time sources beyond what callers pass in.

#[macro_use]
#[rustfmt::skip]
mod generated;

pub mod convert;
pub mod crd;
pub mod field;
pub mod fieldvalidation;
pub mod kinds;
pub mod managedfields;
pub mod openapi;
pub mod patch;
pub mod printers;
pub mod protobuf;
pub mod quota;
pub mod resources;
pub mod schema;
pub mod selectors;
pub mod strategy;
pub mod validation;
