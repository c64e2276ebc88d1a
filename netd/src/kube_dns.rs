//! Publishes this node's DNS server behind the `kube-dns` Service in kube-system (cluster IP
//! 10.96.0.10 by default, internal traffic policy Local: pods ask their own node): creates
//! the Service when it is missing and keeps an EndpointSlice of this node's address.
//!
//! It writes only that Service (once) and this node's slice; DNS itself is [`crate::dns`].

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// The namespace and name of the cluster DNS Service.
pub const NAMESPACE: &str = "kube-system";
pub const SERVICE: &str = "kube-dns";
/// Who manages the node slices (`endpointslice.kubernetes.io/managed-by`).
pub const MANAGER: &str = "netd.rudder.dev";

/// Creates the kube-dns Service with `cluster_ip` unless it exists, and applies this node's
/// EndpointSlice with its DNS `address`.
pub async fn publish(
    client: &Client,
    node_name: &str,
    cluster_ip: Ipv4Addr,
    address: Ipv4Addr,
) -> Result<(), kube::Error> {
    let services: Api<Service> = Api::namespaced(client.clone(), NAMESPACE);
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": SERVICE,
            "namespace": NAMESPACE,
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "KubeDNS"}
        },
        "spec": {
            "clusterIP": cluster_ip.to_string(),
            "internalTrafficPolicy": "Local",
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}
            ]
        }
    }))
    .map_err(kube::Error::SerdeError)?;
    // Looked up first: creating it again is refused for its cluster IP (422, as the IP is
    // allocated before the name is checked) rather than for its name.
    if services.get_opt(SERVICE).await?.is_none() {
        match services.create(&PostParams::default(), &service).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 409 => {}
            Err(err) => return Err(err),
        }
    }
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), NAMESPACE);
    let name = format!("{SERVICE}-{node_name}");
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {
                "kubernetes.io/service-name": SERVICE,
                "endpointslice.kubernetes.io/managed-by": MANAGER
            }
        },
        "addressType": "IPv4",
        "endpoints": [{
            "addresses": [address.to_string()],
            "nodeName": node_name,
            "conditions": {"ready": true, "serving": true, "terminating": false}
        }],
        "ports": [
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"name": "dns-tcp", "port": 53, "protocol": "TCP"}
        ]
    });
    slices
        .patch(&name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(slice))
        .await?;
    Ok(())
}
