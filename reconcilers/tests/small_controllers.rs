//! The small controllers: cluster role aggregation, the pod garbage collector and the
//! disruption controller, each against an in-process cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Cluster, eventually};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

async fn create<K>(api: &Api<K>, value: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &serde_json::from_value(value).unwrap())
        .await
        .unwrap()
}

fn has_resource(role: &ClusterRole, resource: &str) -> bool {
    role.rules
        .iter()
        .flatten()
        .any(|r| r.resources.iter().flatten().any(|x| x == resource))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregated_cluster_roles_collect_the_rules_of_selected_roles() {
    let cluster = Cluster::start(&["clusterrole-aggregation"]).await;
    let roles: Api<ClusterRole> = Api::all(cluster.client.clone());
    let label = "rbac.authorization.k8s.io/aggregate-to-test-view";
    create(
        &roles,
        json!({
            "metadata": {"name": "test-view"},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]},
        }),
    )
    .await;
    create(
        &roles,
        json!({
            "metadata": {"name": "widgets-view", "labels": {label: "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list"]}],
        }),
    )
    .await;
    create(
        &roles,
        json!({
            "metadata": {"name": "unrelated"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
        }),
    )
    .await;
    eventually("widgets aggregated into test-view", 20, || async {
        let role = roles.get("test-view").await.unwrap();
        has_resource(&role, "widgets").then_some(())
    })
    .await;
    // A second selected role joins; the unrelated one never does.
    create(
        &roles,
        json!({
            "metadata": {"name": "gadgets-view", "labels": {label: "true"}},
            "rules": [{"apiGroups": ["example.com"], "resources": ["gadgets"], "verbs": ["get"]}],
        }),
    )
    .await;
    let role = eventually("gadgets aggregated into test-view", 20, || async {
        let role = roles.get("test-view").await.unwrap();
        has_resource(&role, "gadgets").then_some(role)
    })
    .await;
    let resources: Vec<String> = role
        .rules
        .iter()
        .flatten()
        .flat_map(|r| r.resources.clone().unwrap_or_default())
        .collect();
    assert_eq!(resources, ["gadgets", "widgets"]);
    let managers: Vec<String> = role
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.iter().any(|m| m == "clusterrole-aggregation-controller"),
        "{managers:?}"
    );
    // Removing the label takes the rules away again.
    let widgets = roles.get("widgets-view").await.unwrap();
    let mut widgets = widgets;
    widgets.metadata.labels = None;
    roles
        .replace("widgets-view", &PostParams::default(), &widgets)
        .await
        .unwrap();
    eventually("widgets no longer aggregated", 20, || async {
        let role = roles.get("test-view").await.unwrap();
        (!has_resource(&role, "widgets") && has_resource(&role, "gadgets")).then_some(())
    })
    .await;
    cluster.stop().await;
}

fn pod_condition(pod: &Pod, kind: &str) -> Option<(String, Option<String>)> {
    let condition = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)?;
    Some((condition.status.clone(), condition.reason.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_gc_collects_orphaned_and_unscheduled_terminating_pods() {
    let cluster = Cluster::start(&["pod-garbage-collector-controller"]).await;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
    let container = json!([{"name": "c", "image": "busybox"}]);
    // Finalizers keep the pods visible after the collector deletes them.
    create(
        &pods,
        json!({
            "metadata": {"name": "unscheduled", "finalizers": ["example.com/hold"]},
            "spec": {"containers": container},
        }),
    )
    .await;
    create(
        &pods,
        json!({
            "metadata": {"name": "orphan", "finalizers": ["example.com/hold"]},
            "spec": {"containers": container, "nodeName": "ghost"},
        }),
    )
    .await;
    create(
        &pods,
        json!({"metadata": {"name": "pending"}, "spec": {"containers": container}}),
    )
    .await;
    pods.delete("unscheduled", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the unscheduled terminating pod marked Failed", 30, || async {
        let pod = pods.get("unscheduled").await.unwrap();
        (pod.status.as_ref()?.phase.as_deref() == Some("Failed")).then_some(())
    })
    .await;
    let pod = eventually("the orphan marked Failed and deleted", 70, || async {
        let pod = pods.get("orphan").await.unwrap();
        pod.metadata.deletion_timestamp.is_some().then_some(pod)
    })
    .await;
    assert_eq!(pod.status.as_ref().unwrap().phase.as_deref(), Some("Failed"));
    assert_eq!(
        pod_condition(&pod, "DisruptionTarget"),
        Some(("True".into(), Some("DeletionByPodGC".into())))
    );
    // A pending pod that is neither orphaned nor terminating stays untouched.
    let pending = pods.get("pending").await.unwrap();
    assert!(pending.metadata.deletion_timestamp.is_none());
    cluster.stop().await;
}

fn ingress(service: &k8s_openapi::api::core::v1::Service) -> Vec<String> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancer_services_get_addresses_from_the_pool() {
    use k8s_openapi::api::core::v1::Service;
    use kube::api::{Patch, PatchParams};
    // The test cluster's pool is 192.0.2.240/30: .241 and .242.
    let cluster = Cluster::start(&["service-lb-controller"]).await;
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), "default");
    let lb = |name: &str, extra: serde_json::Value| {
        let mut spec = json!({"type": "LoadBalancer", "ports": [{"port": 80}]});
        if let (Some(spec), serde_json::Value::Object(extra)) = (spec.as_object_mut(), extra) {
            spec.extend(extra);
        }
        json!({"metadata": {"name": name}, "spec": spec})
    };
    create(&services, lb("asks", json!({"loadBalancerIP": "192.0.2.242"}))).await;
    create(&services, lb("first", json!({}))).await;
    create(
        &services,
        lb("classy", json!({"loadBalancerClass": "example.com/other"})),
    )
    .await;
    let assigned = |name: &'static str| {
        let services = services.clone();
        async move { ingress(&services.get(name).await.unwrap()) }
    };
    let asks = eventually("asks served", 20, || async {
        let ips = assigned("asks").await;
        (!ips.is_empty()).then_some(ips)
    })
    .await;
    assert_eq!(asks, ["192.0.2.242"], "the requested address");
    let first = eventually("first served", 20, || async {
        let ips = assigned("first").await;
        (!ips.is_empty()).then_some(ips)
    })
    .await;
    assert_eq!(first, ["192.0.2.241"]);
    let served = services.get("first").await.unwrap();
    let mode = served.status.unwrap().load_balancer.unwrap().ingress.unwrap()[0]
        .ip_mode
        .clone();
    assert_eq!(mode.as_deref(), Some("VIP"));

    // The pool is used up: the next one waits, with a warning event.
    create(&services, lb("waiting", json!({}))).await;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(cluster.client.clone(), "default");
    eventually("an AllocationFailed event", 20, || async {
        events
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .any(|e| {
                e.reason.as_deref() == Some("AllocationFailed")
                    && e.regarding.and_then(|r| r.name).as_deref() == Some("waiting")
            })
            .then_some(())
    })
    .await;
    assert!(assigned("waiting").await.is_empty());
    assert!(
        assigned("classy").await.is_empty(),
        "another class's service is not ours"
    );

    // A service that stops being a LoadBalancer gives its address back; the waiting one gets it.
    services
        .patch(
            "first",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"type": "ClusterIP", "loadBalancerIP": null}})),
        )
        .await
        .unwrap();
    eventually("first's address released", 20, || async {
        assigned("first").await.is_empty().then_some(())
    })
    .await;
    let waiting = eventually("waiting served", 20, || async {
        let ips = assigned("waiting").await;
        (!ips.is_empty()).then_some(ips)
    })
    .await;
    assert_eq!(waiting, ["192.0.2.241"]);
}

/// A PEM CSR for `common_name` in `organization`, with `dns` names.
fn certificate_request(common_name: &str, organization: &str, dns: &[&str]) -> String {
    let mut params =
        rcgen::CertificateParams::new(dns.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, organization);
    let key = rcgen::KeyPair::generate().unwrap();
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn csr(name: &str, signer: &str, request: &str, usages: &[&str]) -> serde_json::Value {
    use base64::Engine;
    json!({
        "metadata": {"name": name},
        "spec": {
            "signerName": signer,
            "request": base64::engine::general_purpose::STANDARD.encode(request),
            "usages": usages,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_client_csrs_of_bootstrappers_are_approved_and_signed_by_the_cluster_ca() {
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    let cluster = Cluster::start(&["csrapproving", "csrsigning"]).await;
    let as_bootstrapper: Api<CertificateSigningRequest> = Api::all(cluster.bootstrap_client().await);
    let as_admin: Api<CertificateSigningRequest> = Api::all(cluster.client.clone());
    let request = certificate_request("system:node:agent-1", "system:nodes", &[]);
    create(
        &as_bootstrapper,
        csr(
            "node-csr-agent-1",
            "kubernetes.io/kube-apiserver-client-kubelet",
            &request,
            &["digital signature", "client auth"],
        ),
    )
    .await;
    let signed = eventually("the node client CSR signed", 20, || async {
        let csr = as_admin.get("node-csr-agent-1").await.unwrap();
        csr.status.clone()?.certificate.map(|c| (csr, c))
    })
    .await;
    let (signed_csr, certificate) = signed;
    let conditions = signed_csr.status.unwrap().conditions.unwrap();
    assert_eq!(conditions[0].type_, "Approved");
    assert_eq!(conditions[0].reason.as_deref(), Some("AutoApproved"));
    assert!(signed_csr.spec.username.unwrap().starts_with("system:bootstrap:"));
    let pem = String::from_utf8(certificate.0).unwrap();
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let certificate = parsed.parse_x509().unwrap();
    assert_eq!(
        certificate.subject().to_string(),
        "CN=system:node:agent-1, O=system:nodes"
    );
    let ca_pem = std::fs::read_to_string(cluster.server.as_ref().unwrap().ca_path()).unwrap();
    let (_, ca) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).unwrap();
    let ca = ca.parse_x509().unwrap();
    assert_eq!(certificate.issuer(), ca.subject());
    certificate.verify_signature(Some(ca.public_key())).unwrap();
    let usage = certificate.extended_key_usage().unwrap().unwrap().value;
    assert!(usage.client_auth && !usage.server_auth);

    // The admin's own node client CSR is not auto-approved (the admin is no bootstrapper and
    // not that node); once approved by hand it is signed. A kubelet serving CSR too.
    create(
        &as_admin,
        csr(
            "by-admin",
            "kubernetes.io/kube-apiserver-client-kubelet",
            &certificate_request("system:node:agent-2", "system:nodes", &[]),
            &["digital signature", "client auth"],
        ),
    )
    .await;
    create(
        &as_admin,
        csr(
            "serving",
            "kubernetes.io/kubelet-serving",
            &certificate_request("system:node:agent-2", "system:nodes", &["agent-2"]),
            &["digital signature", "server auth"],
        ),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for name in ["by-admin", "serving"] {
        let pending = as_admin.get(name).await.unwrap();
        assert!(
            pending.status.and_then(|s| s.conditions).is_none(),
            "{name} left pending"
        );
        let mut approved = as_admin.get(name).await.unwrap();
        approved.status.get_or_insert_with(Default::default).conditions = Some(vec![
            k8s_openapi::api::certificates::v1::CertificateSigningRequestCondition {
                type_: "Approved".into(),
                status: "True".into(),
                reason: Some("ByHand".into()),
                message: Some("approved in a test".into()),
                ..Default::default()
            },
        ]);
        as_admin
            .replace_subresource("approval", name, &Default::default(), &approved)
            .await
            .unwrap();
        eventually(&format!("{name} signed"), 20, || async {
            as_admin.get(name).await.unwrap().status?.certificate.map(|_| ())
        })
        .await;
    }

    // A request the signer refuses fails instead.
    create(
        &as_admin,
        csr(
            "bad-usage",
            "kubernetes.io/kube-apiserver-client",
            &certificate_request("someone", "people", &[]),
            &["digital signature", "server auth"],
        ),
    )
    .await;
    let mut approved = as_admin.get("bad-usage").await.unwrap();
    approved.status.get_or_insert_with(Default::default).conditions = Some(vec![
        k8s_openapi::api::certificates::v1::CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some("ByHand".into()),
            ..Default::default()
        },
    ]);
    as_admin
        .replace_subresource("approval", "bad-usage", &Default::default(), &approved)
        .await
        .unwrap();
    let failed = eventually("bad-usage failed", 20, || async {
        let conditions = as_admin.get("bad-usage").await.unwrap().status?.conditions?;
        conditions.into_iter().find(|c| c.type_ == "Failed")
    })
    .await;
    assert_eq!(failed.reason.as_deref(), Some("SignerValidationFailure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nodes_serving_csr_for_its_own_names_is_approved() {
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Patch, PatchParams};
    let cluster = Cluster::start(&["csrapproving", "csrsigning"]).await;
    let nodes: Api<Node> = Api::all(cluster.client.clone());
    create(&nodes, json!({"metadata": {"name": "test-node"}})).await;
    nodes
        .patch_status(
            "test-node",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"addresses": [
                {"type": "InternalIP", "address": "192.0.2.33"},
                {"type": "Hostname", "address": "test-node"}
            ]}})),
        )
        .await
        .unwrap();
    let server = cluster.server.as_ref().unwrap();
    let node_config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(server.component_kubeconfig("node")).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let as_node: Api<CertificateSigningRequest> = Api::all(kube::Client::try_from(node_config).unwrap());
    let as_admin: Api<CertificateSigningRequest> = Api::all(cluster.client.clone());
    let serving = |name: &str, sans: &[&str]| {
        csr(
            name,
            "kubernetes.io/kubelet-serving",
            &certificate_request("system:node:test-node", "system:nodes", sans),
            &["digital signature", "server auth"],
        )
    };
    create(&as_node, serving("own", &["test-node", "192.0.2.33"])).await;
    create(&as_node, serving("foreign", &["test-node", "192.0.2.99"])).await;
    eventually("the node's own serving CSR signed", 20, || async {
        as_admin.get("own").await.unwrap().status?.certificate.map(|_| ())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let foreign = as_admin.get("foreign").await.unwrap();
    assert!(
        foreign.status.and_then(|s| s.conditions).is_none(),
        "an address the node does not have: left to an administrator"
    );
}
