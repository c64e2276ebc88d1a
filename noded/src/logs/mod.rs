//! Container logs on a node: the on-disk layout ([`paths`]) shared by the pod worker and the
//! log server, and reading CRI log files as the kubelet serves them ([`reader`]).
//!
//! Writing log records is the shim's (`runtime::crilog`); serving them over HTTPS is
//! `server`'s.

pub mod paths;
pub mod reader;
