//! A node joining the way `rudder agent` does, through noded's certificates module against
//! the in-process API server and the CSR approving and signing controllers: the CA pinned by
//! the join token, a client certificate asked for with the bootstrap token, a serving
//! certificate asked for as the node for its own addresses, and the refusals on the way.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::Cluster;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rudder_noded::certificates::{self, CertificateError, CertificateFacts, Credentials, JoinToken, Purpose};
use rudder_noded::identity::TlsIdentity;
use serde_json::json;

const SIGNING: Duration = Duration::from_secs(30);

async fn client(server: &str, ca_pem: &str, name: &str, user: &Credentials<'_>) -> kube::Client {
    let kubeconfig = certificates::kubeconfig(server, ca_pem, name, user);
    kube::Client::try_from(certificates::client_config(kubeconfig).await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_with_the_token_and_gets_client_and_serving_certificates() {
    let cluster = Cluster::start(&[
        "certificatesigningrequest-approving-controller",
        "certificatesigningrequest-signing-controller",
    ])
    .await;
    let server = cluster.server_url();
    let token: JoinToken = cluster.join_token().parse().unwrap();

    // The CA is trusted only when it is the one the token pins.
    let ca_pem = certificates::fetch_cluster_ca(&server, &token).await.unwrap();
    assert_eq!(
        ca_pem,
        std::fs::read_to_string(cluster.server.as_ref().unwrap().ca_path()).unwrap()
    );
    let mut forged = token.clone();
    forged.ca_hash = "0".repeat(64);
    let err = certificates::fetch_cluster_ca(&server, &forged)
        .await
        .unwrap_err();
    assert!(matches!(err, CertificateError::CaMismatch { .. }), "{err}");

    // A wrong secret is not let in.
    let stranger = client(
        &server,
        &ca_pem,
        "x",
        &Credentials::Token("abcdef.0000000000000000"),
    )
    .await;
    let request = certificates::client_request("n1").unwrap();
    let err = certificates::request_certificate(stranger, Purpose::Client, &request, SIGNING)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Unauthorized"), "{err}");

    // The client certificate, asked for with the bootstrap token.
    let bootstrap = client(
        &server,
        &ca_pem,
        "bootstrap",
        &Credentials::Token(&token.credentials),
    )
    .await;
    let cert_pem = certificates::request_certificate(bootstrap, Purpose::Client, &request, SIGNING)
        .await
        .unwrap();
    let facts = CertificateFacts::of(&cert_pem).unwrap();
    assert_eq!(facts.common_name, "system:node:n1");
    assert!(facts.fresh_at(std::time::SystemTime::now()));

    // With it the node registers itself.
    let node_kubeconfig = certificates::kubeconfig(
        &server,
        &ca_pem,
        "system:node:n1",
        &Credentials::Certificate {
            cert_pem: &cert_pem,
            key_pem: &request.key_pem,
        },
    );
    let as_node = kube::Client::try_from(
        certificates::client_config(node_kubeconfig.clone())
            .await
            .unwrap(),
    )
    .unwrap();
    let nodes: Api<Node> = Api::all(as_node.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap(),
        )
        .await
        .unwrap();
    let node = nodes
        .patch_status(
            "n1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"addresses": [
                {"type": "InternalIP", "address": "10.9.8.7"},
                {"type": "Hostname", "address": "n1"}
            ]}})),
        )
        .await
        .unwrap();

    // The serving certificate for the Node's own names and addresses.
    let (names, ips) = certificates::node_names_and_ips(&node);
    assert_eq!(names, ["n1"]);
    let serving = certificates::serving_request("n1", &names, &ips).unwrap();
    let serving_pem = certificates::request_certificate(as_node.clone(), Purpose::Serving, &serving, SIGNING)
        .await
        .unwrap();
    let facts = CertificateFacts::of(&serving_pem).unwrap();
    assert_eq!(facts.common_name, "system:node:n1");
    assert_eq!(facts.dns_names, ["n1"]);
    assert_eq!(facts.ips, ["10.9.8.7".parse::<std::net::IpAddr>().unwrap()]);

    // Rotation: the node asks for a new client certificate as itself (a renewal, approved),
    // and a client presents whatever its identity handle holds, not the kubeconfig's.
    let renewal = certificates::client_request("n1").unwrap();
    let renewed = certificates::request_certificate(as_node.clone(), Purpose::Client, &renewal, SIGNING)
        .await
        .unwrap();
    assert_eq!(
        CertificateFacts::of(&renewed).unwrap().common_name,
        "system:node:n1"
    );
    let identity = TlsIdentity::pending();
    let config = certificates::client_config(node_kubeconfig.clone())
        .await
        .unwrap();
    let without = rudder_noded::api_client::client_with_identity(config, Some(identity.clone())).unwrap();
    let err = Api::<Node>::all(without).get("n1").await.unwrap_err();
    assert!(
        err.to_string().contains("Unauthorized"),
        "no certificate presented: {err}"
    );
    identity.set_pem(&renewed, &renewal.key_pem).unwrap();
    let config = certificates::client_config(node_kubeconfig).await.unwrap();
    let rotated = rudder_noded::api_client::client_with_identity(config, Some(identity)).unwrap();
    assert!(Api::<Node>::all(rotated).get("n1").await.is_ok());

    // An address the Node does not have is not approved: the request waits, unsigned.
    let other = certificates::serving_request("n1", &[], &["10.0.0.99".parse().unwrap()]).unwrap();
    let err = certificates::request_certificate(as_node, Purpose::Serving, &other, Duration::from_secs(2))
        .await
        .unwrap_err();
    assert!(matches!(err, CertificateError::Timeout { .. }), "{err}");
    cluster.stop().await;
}
