//! End-to-end tests: the real `rudder` binary driven by real clients.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

mod apply;
mod clientgo;
mod crd;
mod daemonset;
mod deletion;
mod diff;
mod disruption;
mod endpoints;
mod exec;
mod explain;
mod foundation;
mod harness;
mod jobs;
mod kubectl;
mod network;
mod node;
mod nodes;
mod operator;
mod pods;
mod portforward;
mod printing;
mod quota;
mod registry;
mod restart;
mod runtime;
mod scheduling;
mod security;
mod standalone;
mod statefulset;
mod validation;
mod volumes;
mod workloads;
