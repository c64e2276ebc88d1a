//! End-to-end tests: the real `rudder` binary driven by real clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

mod apply;
mod clientgo;
mod crd;
mod deletion;
mod diff;
mod explain;
mod foundation;
mod harness;
mod kubectl;
mod printing;
mod validation;
mod workloads;
