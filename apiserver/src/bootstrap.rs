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

/// The join token file's name in the data dir.
pub const JOIN_TOKEN_FILE: &str = "token";

/// The cluster's join token, `K10<sha256 of the CA certificate PEM>::<id>.<secret>` (k3s's
/// form around a bootstrap token): read from `DATA_DIR/token`, or made on first start, with its
/// bootstrap token Secret created whenever it is missing. Returns the token.
pub async fn ensure_join_token(
    store: &GenericStore,
    registry: &Registry,
    data_dir: &std::path::Path,
    ca_pem: &str,
) -> Result<String, ApiError> {
    use crate::bootstrap_token;
    let path = data_dir.join(JOIN_TOKEN_FILE);
    let existing = std::fs::read_to_string(&path).ok().and_then(|text| {
        let (_, credentials) = text.trim().split_once("::")?;
        let (id, secret) = bootstrap_token::parse(credentials)?;
        Some((id.to_owned(), secret.to_owned()))
    });
    let (id, secret) = match existing {
        Some(found) => found,
        None => bootstrap_token::generate()
            .map_err(|_| ApiError::internal("no secure random source".to_owned()))?,
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, ca_pem.as_bytes());
    let hash: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let token = format!("K10{hash}::{id}.{secret}");
    create(
        store,
        registry,
        "",
        "v1",
        "secrets",
        bootstrap_token::NAMESPACE,
        json!({
            "metadata": {"name": bootstrap_token::secret_name(&id), "namespace": bootstrap_token::NAMESPACE},
            "type": bootstrap_token::SECRET_TYPE,
            "stringData": {
                "description": "The token rudder agents join the cluster with (DATA_DIR/token).",
                "token-id": id,
                "token-secret": secret,
                "usage-bootstrap-authentication": "true",
                "usage-bootstrap-signing": "true",
                "auth-extra-groups": "system:bootstrappers:rudder:agents"
            }
        }),
    )
    .await?;
    if std::fs::read_to_string(&path)
        .map(|text| text.trim().to_owned())
        .ok()
        != Some(token.clone())
    {
        crate::files::write_atomic(&path, format!("{token}\n").as_bytes(), 0o600)
            .map_err(|err| ApiError::internal(format!("writing {}: {err}", path.display())))?;
    }
    Ok(token)
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
