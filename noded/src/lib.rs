//! Rudder's node daemon (noded): the agent that makes a machine a Kubernetes node.
//!
//! For now it has one mode, [`simulated`]: in the style of kwok, it registers many Ready
//! nodes that exist only as API objects, keeps their Leases fresh like kubelets do, and
//! "runs" the pods bound to them by writing the statuses a kubelet would write, without
//! starting any container. It serves tests, benchmarks and `rudder server --simulated-nodes`.
//!
//! Like every component, noded reaches the API server only through `kube::Client`.

pub mod runtime;
pub mod simulated;
