//! Rudder's node daemon (noded): the agent that makes a machine a Kubernetes node.
//!
//! [`node`] is the real node's registration and heartbeat (host facts, conditions, the Lease
//! of [`lease`]); [`kubelet`] runs the pods bound to it in containers. [`simulated`] is the kwok-style
//! mode: it registers many Ready nodes that exist only as API objects, keeps their Leases
//! fresh like kubelets do, and "runs" the pods bound to them by writing the statuses a kubelet
//! would write, without starting any container. It serves tests, benchmarks and
//! `rudder server --simulated-nodes`.
//!
//! [`pod`] holds the kubelet's pod-level logic that runs no container (environment,
//! /etc/hosts, resolv.conf, volume contents).
//!
//! [`images`] is the node's image store: content-addressed OCI blobs, archive import, and
//! layers unpacked once and stacked with overlayfs for containers. [`runtime`] runs OCI
//! containers with youki's libcontainer, each owned by a detached shim process.
//!
//! [`logs`] is the container log layout and the kubelet's CRI log reading; [`server`] the
//! kubelet-style HTTPS server (port 10250) that serves them, exec and attach to the API server.
//!
//! [`process`] holds the settings of the `rudder noded` process itself (malloc arenas, blocking
//! threads).
//!
//! Like every component, noded reaches the API server only through `kube::Client`.

pub mod api_client;
pub mod certificates;
pub mod identity;
pub mod images;
pub mod kubelet;
pub mod lease;
pub mod logs;
pub mod node;
pub mod pod;
pub mod process;
pub mod runtime;
pub mod server;
pub mod simulated;
