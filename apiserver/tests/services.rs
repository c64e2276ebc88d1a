//! Service ClusterIP and node port allocation (with their IPAddress objects, release and the
//! repair at restart) and the default admission plugins that shape pods, claims, nodes and
//! ingresses, driven with kube::Client against the API server in-process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};

use k8s_openapi::api::core::v1::{
    LimitRange, Namespace, Node, PersistentVolumeClaim, Pod, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{IPAddress, Ingress, IngressClass};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use rudder_apiserver::{Config, Running};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn config(dir: &tempfile::TempDir) -> Config {
    let mut config = Config::new(dir.path());
    config.bind_address = IpAddr::V4(Ipv4Addr::LOCALHOST);
    config.secure_port = 0;
    config.node_name = "test-node".into();
    config
}

async fn client(running: &Running) -> kube::Client {
    let kubeconfig = Kubeconfig::read_from(running.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn typed<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).unwrap()
}

async fn create<T>(api: &Api<T>, body: Value) -> Result<T, kube::Error>
where
    T: kube::Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &typed(body)).await
}

/// The code and message of a refused request.
fn refused<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn service(name: &str, spec: &Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec})
}

fn cluster_ip(svc: &Service) -> String {
    svc.spec.as_ref().unwrap().cluster_ip.clone().unwrap()
}

fn node_ports(svc: &Service) -> Vec<i32> {
    svc.spec
        .as_ref()
        .unwrap()
        .ports
        .iter()
        .flatten()
        .map(|p| p.node_port.unwrap_or(0))
        .collect()
}

fn in_service_cidr(ip: &str) -> bool {
    let ip: Ipv4Addr = ip.parse().unwrap();
    let [a, b, ..] = ip.octets();
    (a, b) == (10, 96) && ip != Ipv4Addr::new(10, 96, 0, 0) && ip != Ipv4Addr::new(10, 96, 255, 255)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_cluster_ips_node_ports_and_ip_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let running = rudder_apiserver::start(config(&dir)).await.unwrap();
    let client = client(&running).await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let addresses: Api<IPAddress> = Api::all(client.clone());

    // The kubernetes Service holds the first address.
    let kubernetes = services.get("kubernetes").await.unwrap();
    assert_eq!(cluster_ip(&kubernetes), "10.96.0.1");
    let first = addresses.get("10.96.0.1").await.unwrap();
    let parent = first.spec.unwrap().parent_ref;
    assert_eq!(
        (
            parent.resource.as_str(),
            parent.namespace.as_deref(),
            parent.name.as_str()
        ),
        ("services", Some("default"), "kubernetes")
    );

    // ClusterIP.
    let web = create(
        &services,
        service(
            "web",
            &json!({"selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP"}]}),
        ),
    )
    .await
    .unwrap();
    let spec = web.spec.clone().unwrap();
    let ip = cluster_ip(&web);
    assert!(in_service_cidr(&ip) && ip != "10.96.0.1", "{ip}");
    assert_eq!(spec.cluster_ips, Some(vec![ip.clone()]));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_owned()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    let address = addresses.get(&ip).await.unwrap();
    let raw = serde_json::to_value(&address).unwrap();
    assert_eq!(
        raw["metadata"]["labels"],
        json!({"ipaddress.kubernetes.io/ip-family": "IPv4", "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"})
    );
    assert_eq!(
        raw["spec"]["parentRef"],
        json!({"resource": "services", "namespace": "default", "name": "web"})
    );

    // NodePort: TCP and UDP entries of one port share the node port.
    let dns = create(
        &services,
        service(
            "dns",
            &json!({"type": "NodePort", "selector": {"app": "dns"}, "ports": [
                {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                {"name": "dns-udp", "port": 53, "protocol": "UDP"},
            ]}),
        ),
    )
    .await
    .unwrap();
    let ports = node_ports(&dns);
    assert_eq!(ports[0], ports[1]);
    assert!((30000..=32767).contains(&ports[0]), "{ports:?}");
    assert!(in_service_cidr(&cluster_ip(&dns)));

    // LoadBalancer with Local traffic: node port and health check node port.
    let lb = create(
        &services,
        service(
            "lb",
            &json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local", "selector": {"app": "lb"},
                "ports": [{"port": 443, "protocol": "TCP"}]}),
        ),
    )
    .await
    .unwrap();
    let health = lb.spec.as_ref().unwrap().health_check_node_port.unwrap();
    assert!((30000..=32767).contains(&health));
    assert_ne!(node_ports(&lb)[0], health);
    assert_ne!(node_ports(&lb)[0], 0);

    // Headless, with and without a selector.
    let headless = create(
        &services,
        service(
            "headless",
            &json!({"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}),
        ),
    )
    .await
    .unwrap();
    let spec = headless.spec.unwrap();
    assert_eq!(spec.cluster_ips, Some(vec!["None".to_owned()]));
    assert_eq!(spec.ip_family_policy.as_deref(), Some("SingleStack"));
    assert_eq!(spec.ip_families, Some(vec!["IPv4".to_owned()]));
    let selectorless = create(
        &services,
        service("bare", &json!({"clusterIP": "None", "ports": [{"port": 1}]})),
    )
    .await
    .unwrap()
    .spec
    .unwrap();
    assert_eq!(selectorless.ip_family_policy.as_deref(), Some("RequireDualStack"));
    assert_eq!(
        selectorless.ip_families,
        Some(vec!["IPv4".to_owned(), "IPv6".to_owned()])
    );

    // ExternalName gets no IP.
    let external = create(
        &services,
        service(
            "ext",
            &json!({"type": "ExternalName", "externalName": "example.com"}),
        ),
    )
    .await
    .unwrap()
    .spec
    .unwrap();
    assert_eq!(
        (
            external.cluster_ip,
            external.cluster_ips,
            external.ip_families,
            external.ip_family_policy
        ),
        (None, None, None, None)
    );

    // Requested addresses: inside the CIDR and free.
    let fixed = create(
        &services,
        service(
            "fixed",
            &json!({"clusterIP": "10.96.0.5", "ports": [{"port": 80}]}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(cluster_ip(&fixed), "10.96.0.5");
    assert_eq!(
        refused(create(&services, service("clash", &json!({"clusterIP": "10.96.0.5", "ports": [{"port": 80}]}))).await),
        (
            422,
            "Service \"clash\" is invalid: spec.clusterIPs: Invalid value: [\"10.96.0.5\"]: failed to allocate IP 10.96.0.5: provided IP is already allocated".to_owned()
        )
    );
    assert_eq!(
        refused(create(&services, service("far", &json!({"clusterIP": "10.0.0.5", "ports": [{"port": 80}]}))).await),
        (
            422,
            "Service \"far\" is invalid: spec.clusterIPs: Invalid value: [\"10.0.0.5\"]: failed to allocate IP 10.0.0.5: the provided network does not match the current range".to_owned()
        )
    );
    assert_eq!(
        refused(
            create(
                &services,
                service("net", &json!({"clusterIP": "10.96.0.0", "ports": [{"port": 80}]}))
            )
            .await
        )
        .1,
        "Service \"net\" is invalid: spec.clusterIPs: Invalid value: [\"10.96.0.0\"]: failed to allocate IP 10.96.0.0: the provided IP (10.96.0.0) is not in the valid range. The range of valid IPs is 10.96.0.0/16"
    );
    // A requested node port that is taken.
    assert_eq!(
        refused(
            create(
                &services,
                service(
                    "np2",
                    &json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": ports[0]}]})
                )
            )
            .await
        ),
        (
            422,
            format!(
                "Service \"np2\" is invalid: spec.ports[0].nodePort: Invalid value: {}: provided port is already allocated",
                ports[0]
            )
        )
    );
    // Failed creates leave nothing behind.
    assert!(addresses.get_opt("10.0.0.5").await.unwrap().is_none());

    // A dry run allocates nothing (and answers what upstream's dry-run allocators answer).
    let dry = services
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &typed(service(
                "dry",
                &json!({"type": "NodePort", "ports": [{"port": 80}]}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(cluster_ip(&dry), "10.96.0.0");
    assert_eq!(node_ports(&dry), vec![32769]);
    assert!(services.get_opt("dry").await.unwrap().is_none());
    assert!(addresses.get_opt("10.96.0.0").await.unwrap().is_none());

    // The ClusterIP is immutable.
    let mut moved = services.get("web").await.unwrap();
    moved.spec.as_mut().unwrap().cluster_ip = Some("10.96.0.77".into());
    moved.spec.as_mut().unwrap().cluster_ips = Some(vec!["10.96.0.77".into()]);
    assert_eq!(
        refused(services.replace("web", &PostParams::default(), &moved).await),
        (
            422,
            "Service \"web\" is invalid: spec.clusterIPs[0]: Invalid value: [\"10.96.0.77\"]: may not change once set".to_owned()
        )
    );

    // NodePort -> ClusterIP releases the node ports; ClusterIP -> NodePort allocates.
    let mut demoted = services.get("dns").await.unwrap();
    demoted.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
    let demoted = services
        .replace("dns", &PostParams::default(), &demoted)
        .await
        .unwrap();
    assert_eq!(node_ports(&demoted), vec![0, 0]);
    let reused = create(
        &services,
        service(
            "reuse",
            &json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": ports[0]}]}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(node_ports(&reused), vec![ports[0]]);
    let mut promoted = services.get("web").await.unwrap();
    promoted.spec.as_mut().unwrap().type_ = Some("NodePort".into());
    let promoted = services
        .replace("web", &PostParams::default(), &promoted)
        .await
        .unwrap();
    assert!((30000..=32767).contains(&node_ports(&promoted)[0]));
    assert_eq!(cluster_ip(&promoted), ip, "the ClusterIP is kept");

    // ClusterIP -> ExternalName releases the address.
    let mut renamed = services.get("fixed").await.unwrap();
    let spec = renamed.spec.as_mut().unwrap();
    spec.type_ = Some("ExternalName".into());
    spec.external_name = Some("example.org".into());
    let renamed = services
        .replace("fixed", &PostParams::default(), &renamed)
        .await
        .unwrap();
    assert_eq!(renamed.spec.unwrap().cluster_ip, None);
    assert!(addresses.get_opt("10.96.0.5").await.unwrap().is_none());

    // Deleting releases the address and the ports.
    services.delete("web", &DeleteParams::default()).await.unwrap();
    assert!(addresses.get_opt(&ip).await.unwrap().is_none());
    let again = create(
        &services,
        service("again", &json!({"type": "NodePort", "clusterIP": ip, "ports": [{"port": 80, "nodePort": node_ports(&promoted)[0]}]})),
    )
    .await
    .unwrap();
    assert_eq!(cluster_ip(&again), ip);

    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_repairs_the_allocations() {
    let dir = tempfile::tempdir().unwrap();
    let (ip, node_port) = {
        let running = rudder_apiserver::start(config(&dir)).await.unwrap();
        let client = client(&running).await;
        let services: Api<Service> = Api::namespaced(client.clone(), "default");
        let addresses: Api<IPAddress> = Api::all(client.clone());
        let svc = create(
            &services,
            service(
                "kept",
                &json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30123}]}),
            ),
        )
        .await
        .unwrap();
        let ip = cluster_ip(&svc);
        // Lose the IPAddress behind the server's back, and leak one for a Service that is gone.
        running
            .store()
            .delete(&format!("/networking.k8s.io/ipaddresses/{ip}"), None)
            .await
            .unwrap();
        create(
            &addresses,
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "IPAddress",
                "metadata": {"name": "10.96.7.7", "labels": {
                    "ipaddress.kubernetes.io/ip-family": "IPv4",
                    "ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"}},
                "spec": {"parentRef": {"resource": "services", "namespace": "default", "name": "ghost"}}}),
        )
        .await
        .unwrap();
        running.shutdown();
        running.wait().await.unwrap();
        (ip, 30123)
    };

    let running = rudder_apiserver::start(config(&dir)).await.unwrap();
    let client = client(&running).await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let addresses: Api<IPAddress> = Api::all(client.clone());
    let repaired = serde_json::to_value(addresses.get(&ip).await.unwrap()).unwrap();
    assert_eq!(
        repaired["spec"]["parentRef"],
        json!({"resource": "services", "namespace": "default", "name": "kept"})
    );
    assert!(
        addresses.get_opt("10.96.7.7").await.unwrap().is_none(),
        "the leaked IPAddress is deleted"
    );
    assert!(addresses.get_opt("10.96.0.1").await.unwrap().is_some());
    // The rebuilt state knows the node port and the address.
    assert_eq!(
        refused(
            create(
                &services,
                service("copy", &json!({"type": "NodePort", "clusterIP": ip, "ports": [{"port": 80, "nodePort": node_port}]}))
            )
            .await
        )
        .0,
        422
    );
    let port_clash = refused(
        create(
            &services,
            service(
                "copy",
                &json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": node_port}]}),
            ),
        )
        .await,
    );
    assert!(
        port_clash.1.ends_with("provided port is already allocated"),
        "{}",
        port_clash.1
    );
    // The freed leaked address can be allocated again.
    let reused = create(
        &services,
        service(
            "seven",
            &json!({"clusterIP": "10.96.7.7", "ports": [{"port": 80}]}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(cluster_ip(&reused), "10.96.7.7");

    running.shutdown();
    running.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_shapes_pods_claims_nodes_and_ingresses() {
    let dir = tempfile::tempdir().unwrap();
    let running = rudder_apiserver::start(config(&dir)).await.unwrap();
    let client = client(&running).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    create(
        &namespaces,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "apps");
    let pod = |name: &str, extra: Value| {
        let mut spec = json!({"containers": [{"name": "app", "image": "nginx"}]});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
    };

    // A fresh namespace (no default ServiceAccount yet): the pod runs as `default` with the
    // token volume, default tolerations and priority 0.
    let web = create(&pods, pod("web", json!({}))).await.unwrap();
    let spec = serde_json::to_value(web.spec.unwrap()).unwrap();
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["serviceAccount"], "default");
    let volume = &spec["volumes"][0];
    let volume_name = volume["name"].as_str().unwrap();
    assert!(
        volume_name.starts_with("kube-api-access-") && volume_name.len() == 21,
        "{volume_name}"
    );
    assert_eq!(
        volume["projected"],
        json!({"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}, "path": "namespace"}]}},
        ]})
    );
    assert_eq!(
        spec["containers"][0]["volumeMounts"],
        json!([{"name": volume_name, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}])
    );
    assert_eq!(
        spec["tolerations"],
        json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ])
    );
    assert_eq!(spec["priority"], 0);
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");

    // A missing ServiceAccount other than `default` is refused.
    assert_eq!(
        refused(create(&pods, pod("lost", json!({"serviceAccountName": "missing"}))).await),
        (
            403,
            "pods \"lost\" is forbidden: error looking up service account apps/missing: serviceaccount \"missing\" not found".to_owned()
        )
    );
    // A ServiceAccount that opts out of the token.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "apps");
    create(
        &accounts,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"},
            "automountServiceAccountToken": false, "imagePullSecrets": [{"name": "registry"}]}),
    )
    .await
    .unwrap();
    let robot = create(&pods, pod("robot", json!({"serviceAccountName": "robot"})))
        .await
        .unwrap();
    let spec = robot.spec.unwrap();
    assert!(spec.volumes.is_none());
    assert_eq!(spec.image_pull_secrets.unwrap()[0].name, "registry");

    // Priority classes.
    let critical = create(
        &pods,
        pod(
            "critical",
            json!({"priorityClassName": "system-cluster-critical"}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(critical.spec.unwrap().priority, Some(2_000_000_000));
    assert_eq!(
        refused(create(&pods, pod("nope", json!({"priorityClassName": "nope"}))).await),
        (
            403,
            "pods \"nope\" is forbidden: no PriorityClass with name nope was found".to_owned()
        )
    );

    // LimitRanges default and bound container resources.
    let ranges: Api<LimitRange> = Api::namespaced(client.clone(), "apps");
    create(
        &ranges,
        json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"},
            "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}, "max": {"cpu": "1"}}]}}),
    )
    .await
    .unwrap();
    let limited = create(&pods, pod("limited", json!({}))).await.unwrap();
    let value = serde_json::to_value(&limited).unwrap();
    assert_eq!(
        value["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "500m"}, "requests": {"cpu": "100m"}})
    );
    assert_eq!(
        value["metadata"]["annotations"]["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu request for container app; cpu limit for container app"
    );
    assert_eq!(
        refused(
            create(
                &pods,
                pod("greedy", json!({"containers": [{"name": "app", "image": "nginx", "resources": {"limits": {"cpu": "2"}}}]}))
            )
            .await
        ),
        (
            403,
            "pods \"greedy\" is forbidden: maximum cpu usage per Container is 1, but limit is 2".to_owned()
        )
    );

    // Claims: protection finalizer and the default StorageClass.
    let classes: Api<StorageClass> = Api::all(client.clone());
    create(
        &classes,
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "local", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path"}),
    )
    .await
    .unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "apps");
    let claim = create(
        &claims,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
    )
    .await
    .unwrap();
    assert_eq!(
        claim.metadata.finalizers,
        Some(vec!["kubernetes.io/pvc-protection".to_owned()])
    );
    assert_eq!(claim.spec.unwrap().storage_class_name.as_deref(), Some("local"));

    // Nodes start tainted not-ready.
    let nodes: Api<Node> = Api::all(client.clone());
    let node = create(
        &nodes,
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}),
    )
    .await
    .unwrap();
    let taints = serde_json::to_value(node.spec.unwrap().taints.unwrap()).unwrap();
    assert_eq!(
        taints,
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
    );

    // Ingresses get the default IngressClass.
    let ingress_classes: Api<IngressClass> = Api::all(client.clone());
    create(
        &ingress_classes,
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
            "metadata": {"name": "nginx", "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
            "spec": {"controller": "k8s.io/ingress-nginx"}}),
    )
    .await
    .unwrap();
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "apps");
    let ingress = create(
        &ingresses,
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "site"},
            "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}),
    )
    .await
    .unwrap();
    assert_eq!(ingress.spec.unwrap().ingress_class_name.as_deref(), Some("nginx"));

    running.shutdown();
    running.wait().await.unwrap();
}
