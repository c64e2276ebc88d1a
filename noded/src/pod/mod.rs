//! The kubelet's pod-level logic that runs no container: a container's environment and
//! command line, the pod's `/etc/hosts` and `/etc/resolv.conf`, and the contents of its
//! volumes (atomic writer, configMap/secret/downwardAPI/projected payloads, emptyDir,
//! hostPath, subPath), and which sysctls a pod may set.
//!
//! Everything here is pure over plain k8s-openapi values or works on local paths given by the
//! caller: no module here talks to the API server or starts a container. The pod worker reads
//! the objects (ConfigMaps, Secrets, Services, the Node) and passes them in.

pub mod env;
pub mod expansion;
pub mod fieldref;
pub mod hosts;
pub mod resolv;
pub mod sysctl;
pub mod volumes;
