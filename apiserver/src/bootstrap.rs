//! The objects a new cluster starts with, created at every start if missing: the system
//! namespaces, the `kubernetes` Service with its Endpoints and EndpointSlice pointing at this
//! API server, the default ServiceCIDR and the system PriorityClasses.

use std::net::IpAddr;

use serde_json::{Value, json};

use crate::registry::Registry;
use crate::status::ApiError;
use crate::store::{GenericStore, WriteOptions};

/// The namespaces every cluster has.
pub const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Where the API server is reachable for pods: the `kubernetes` Service's endpoint.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// The address other machines and pods reach the server at.
    pub address: IpAddr,
    /// The HTTPS port.
    pub port: u16,
    /// The ClusterIP of the `kubernetes` Service.
    pub service_ip: IpAddr,
    /// The service CIDR.
    pub service_cidr: String,
}

/// Creates whatever is missing.
pub async fn ensure(store: &GenericStore, registry: &Registry, endpoint: &Endpoint) -> Result<(), ApiError> {
    for namespace in SYSTEM_NAMESPACES {
        create(
            store,
            registry,
            "",
            "v1",
            "namespaces",
            "",
            json!({"metadata": {"name": namespace}}),
        )
        .await?;
    }
    let family = if endpoint.address.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    };
    create(
        store,
        registry,
        "networking.k8s.io",
        "v1",
        "servicecidrs",
        "",
        json!({"metadata": {"name": "kubernetes"}, "spec": {"cidrs": [endpoint.service_cidr]}}),
    )
    .await?;
    create(
        store,
        registry,
        "",
        "v1",
        "services",
        "default",
        json!({
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": endpoint.service_ip.to_string(),
                "clusterIPs": [endpoint.service_ip.to_string()],
                "ipFamilies": [if endpoint.service_ip.is_ipv4() { "IPv4" } else { "IPv6" }],
                "ipFamilyPolicy": "SingleStack",
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": endpoint.port}],
                "sessionAffinity": "None",
            },
        }),
    )
    .await?;
    create(
        store,
        registry,
        "",
        "v1",
        "endpoints",
        "default",
        json!({
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{
                "addresses": [{"ip": endpoint.address.to_string()}],
                "ports": [{"name": "https", "port": endpoint.port, "protocol": "TCP"}],
            }],
        }),
    )
    .await?;
    create(
        store,
        registry,
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "default",
        json!({
            "metadata": {"name": "kubernetes", "namespace": "default", "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": family,
            "endpoints": [{"addresses": [endpoint.address.to_string()], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": endpoint.port, "protocol": "TCP"}],
        }),
    )
    .await?;
    for (name, value, description) in [
        (
            "system-node-critical",
            2_000_001_000,
            "Used for system critical pods that must not be moved from their current node.",
        ),
        (
            "system-cluster-critical",
            2_000_000_000,
            "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
        ),
    ] {
        create(
            store,
            registry,
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            "",
            json!({"metadata": {"name": name}, "value": value, "description": description}),
        )
        .await?;
    }
    Ok(())
}

async fn create(
    store: &GenericStore,
    registry: &Registry,
    group: &str,
    version: &str,
    resource: &str,
    namespace: &str,
    mut object: Value,
) -> Result<(), ApiError> {
    let resource = registry
        .find(group, version, resource)
        .ok_or_else(|| ApiError::internal(format!("{resource} is not registered")))?;
    let name = crate::object::name(&object).to_owned();
    if store.get_opt(&resource, namespace, &name)?.is_some() {
        return Ok(());
    }
    crate::object::set_type_meta(&mut object, &resource.api_version(), &resource.kind);
    match store
        .create(&resource, namespace, object, &WriteOptions::internal())
        .await
    {
        Ok(_) => {
            tracing::info!(resource = %resource.resource, %namespace, %name, "created");
            Ok(())
        }
        Err(err) if err.reason == "AlreadyExists" => Ok(()),
        Err(err) => Err(err),
    }
}
