//! The REST API through the real kubectl: create, apply, get in every output format, describe,
//! label, annotate, patch, replace, edit, scale, delete with cascade modes and finalizers,
//! watches, chunked lists, selectors, api-resources, api-versions and `get all`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Server;

const CONFIGMAP: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels:
    app: web
data:
  mode: fast
";

fn apply(server: &Server, manifest: &str) -> String {
    apply_args(server, manifest, &[])
}

fn apply_args(server: &Server, manifest: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifest.yaml");
    std::fs::write(&file, manifest).unwrap();
    let mut args = vec!["apply", "-f", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    server.kubectl_ok(&args)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn create_apply_get_and_output_formats() {
    let server = Server::start();
    assert_eq!(apply(&server, CONFIGMAP).trim(), "configmap/settings created");
    assert_eq!(apply(&server, CONFIGMAP).trim(), "configmap/settings unchanged");
    let changed = CONFIGMAP.replace("mode: fast", "mode: safe\n  extra: \"1\"");
    assert_eq!(apply(&server, &changed).trim(), "configmap/settings configured");

    let object = json(&server.kubectl_ok(&["get", "configmap", "settings", "-o", "json"]));
    assert_eq!(object["data"]["mode"], "safe");
    assert_eq!(object["data"]["extra"], "1");
    assert!(
        object["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"].is_string()
    );
    let yaml = server.kubectl_ok(&["get", "cm", "settings", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: ConfigMap") && yaml.contains("mode: safe"),
        "{yaml}"
    );
    assert_eq!(
        server.kubectl_ok(&["get", "cm", "settings", "-o", "jsonpath={.data.mode}"]),
        "safe"
    );
    assert_eq!(
        server.kubectl_ok(&["get", "cm", "settings", "-o", "name"]).trim(),
        "configmap/settings"
    );
    let table = server.kubectl_ok(&["get", "configmaps"]);
    assert!(table.starts_with("NAME") && table.contains("settings"), "{table}");

    let created = server.kubectl_ok(&["create", "configmap", "literal", "--from-literal=k=v"]);
    assert_eq!(created.trim(), "configmap/literal created");
    let described = server.kubectl_ok(&["describe", "configmap", "literal"]);
    assert!(
        described.contains("Name:") && described.contains("literal") && described.contains("k:"),
        "{described}"
    );

    let out = server.kubectl(&["create", "configmap", "literal", "--from-literal=k=v"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("configmaps \"literal\" already exists"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.kubectl(&["get", "configmap", "missing"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Error from server (NotFound): configmaps \"missing\" not found")
    );
}

#[test]
fn label_annotate_patch_replace_and_edit() {
    let server = Server::start();
    apply(&server, CONFIGMAP);
    server.kubectl_ok(&["label", "configmap", "settings", "tier=front"]);
    server.kubectl_ok(&["annotate", "configmap", "settings", "owner=team-a"]);
    let object = json(&server.kubectl_ok(&["get", "cm", "settings", "-o", "json"]));
    assert_eq!(object["metadata"]["labels"]["tier"], "front");
    assert_eq!(object["metadata"]["annotations"]["owner"], "team-a");
    server.kubectl_ok(&["label", "configmap", "settings", "tier-"]);

    server.kubectl_ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"merged":"yes"}}"#,
    ]);
    server.kubectl_ok(&[
        "patch",
        "configmap",
        "settings",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/data/json","value":"yes"}]"#,
    ]);
    server.kubectl_ok(&[
        "patch",
        "configmap",
        "settings",
        "-p",
        r#"{"data":{"strategic":"yes"}}"#,
    ]);
    let object = json(&server.kubectl_ok(&["get", "cm", "settings", "-o", "json"]));
    for key in ["merged", "json", "strategic"] {
        assert_eq!(object["data"][key], "yes", "{key}");
    }
    assert!(object["metadata"]["labels"].get("tier").is_none());

    let dir = tempfile::tempdir().unwrap();
    let replacement = dir.path().join("replace.yaml");
    std::fs::write(&replacement, CONFIGMAP.replace("mode: fast", "mode: replaced")).unwrap();
    server.kubectl_ok(&["replace", "-f", replacement.to_str().unwrap()]);
    let object = json(&server.kubectl_ok(&["get", "cm", "settings", "-o", "json"]));
    assert_eq!(object["data"], serde_json::json!({"mode": "replaced"}));

    // kubectl edit with an editor that rewrites the value.
    let editor = dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/mode: replaced/mode: edited/' \"$1\"\n",
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&editor).status().unwrap();
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .args(["edit", "configmap", "settings"])
        .env("KUBE_EDITOR", &editor)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        server.kubectl_ok(&["get", "cm", "settings", "-o", "jsonpath={.data.mode}"]),
        "edited"
    );
}

#[test]
fn deployments_scale_and_report_defaults() {
    let server = Server::start();
    server.kubectl_ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=2",
    ]);
    server.kubectl_ok(&["scale", "deployment", "web", "--replicas=5"]);
    let object = json(&server.kubectl_ok(&["get", "deployment", "web", "-o", "json"]));
    assert_eq!(object["spec"]["replicas"], 5);
    assert_eq!(object["metadata"]["generation"], 2, "scaling changes the spec");
    let scale = json(&server.kubectl_ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ]));
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 5);
}

#[test]
fn deletion_cascades_and_finalizers() {
    let server = Server::start();
    apply(
        &server,
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: held
  finalizers: [example.com/hold]
",
    );
    let out = server.kubectl_ok(&["delete", "configmap", "held", "--wait=false"]);
    assert_eq!(out.trim(), "configmap \"held\" deleted");
    let object = json(&server.kubectl_ok(&["get", "cm", "held", "-o", "json"]));
    assert!(object["metadata"]["deletionTimestamp"].is_string(), "{object}");
    server.kubectl_ok(&[
        "patch",
        "configmap",
        "held",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    assert!(
        !server.kubectl(&["get", "cm", "held"]).status.success(),
        "gone once the finalizer is removed"
    );

    for (name, cascade, finalizer) in [
        ("orphaned", "orphan", Some("orphan")),
        ("foreground", "foreground", Some("foregroundDeletion")),
        ("background", "background", None),
    ] {
        apply(
            &server,
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  finalizers: [example.com/hold]\n"
            ),
        );
        server.kubectl_ok(&[
            "delete",
            "configmap",
            name,
            &format!("--cascade={cascade}"),
            "--wait=false",
        ]);
        // The garbage collector handles its finalizer (there are no dependents), and the
        // object's own finalizer still holds it.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let object = json(&server.kubectl_ok(&["get", "cm", name, "-o", "json"]));
            let finalizers: Vec<String> =
                serde_json::from_value(object["metadata"]["finalizers"].clone()).unwrap();
            if finalizers == ["example.com/hold"] {
                break;
            }
            assert!(
                finalizer.is_some_and(|f| finalizers.iter().any(|x| x == f)),
                "{cascade}: {finalizers:?}"
            );
            assert!(Instant::now() < deadline, "{cascade}: {finalizers:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn watch_sees_added_modified_deleted() {
    let server = Server::start();
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .args([
            "get",
            "configmaps",
            "-w",
            "--output-watch-events",
            "-o",
            "custom-columns=EVENT:.type,NAME:.object.metadata.name",
            "--no-headers",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // Let the watch start before changing anything.
    std::thread::sleep(Duration::from_millis(500));
    server.kubectl_ok(&["create", "configmap", "watched", "--from-literal=a=1"]);
    server.kubectl_ok(&["patch", "configmap", "watched", "-p", r#"{"data":{"a":"2"}}"#]);
    server.kubectl_ok(&["delete", "configmap", "watched"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen: Vec<String> = Vec::new();
    while seen.len() < 3 && Instant::now() < deadline {
        if let Ok(line) = lines.recv_timeout(Duration::from_millis(200))
            && line.contains("watched")
        {
            seen.push(line.split_whitespace().next().unwrap_or_default().to_owned());
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seen, ["ADDED", "MODIFIED", "DELETED"]);
}

#[test]
fn chunked_lists_and_selectors() {
    let server = Server::start();
    for i in 0..12 {
        let tier = if i % 3 == 0 { "gold" } else { "bronze" };
        server.kubectl_ok(&["create", "configmap", &format!("c{i:02}"), "--from-literal=a=b"]);
        server.kubectl_ok(&["label", "configmap", &format!("c{i:02}"), &format!("tier={tier}")]);
    }
    let names = server.kubectl_ok(&["get", "configmaps", "--chunk-size=5", "-o", "name", "-l", "tier"]);
    assert_eq!(names.lines().count(), 12, "{names}");
    let gold = server.kubectl_ok(&["get", "configmaps", "-l", "tier=gold", "-o", "name"]);
    assert_eq!(gold.lines().count(), 4, "{gold}");
    let set_based = server.kubectl_ok(&["get", "configmaps", "-l", "tier in (gold,silver)", "-o", "name"]);
    assert_eq!(set_based.lines().count(), 4);
    let one = server.kubectl_ok(&[
        "get",
        "configmaps",
        "--field-selector",
        "metadata.name=c05",
        "-o",
        "name",
    ]);
    assert_eq!(one.trim(), "configmap/c05");
    let namespaced = server.kubectl_ok(&[
        "get",
        "namespaces",
        "--field-selector",
        "status.phase=Active",
        "-o",
        "name",
    ]);
    assert!(namespaced.contains("namespace/kube-system"), "{namespaced}");
    let out = server.kubectl(&["get", "configmaps", "--field-selector", "spec.nope=1"]);
    assert!(!out.status.success());
}

#[test]
fn api_resources_and_versions_match_upstream() {
    let server = Server::start();
    let table = server.kubectl_ok(&["api-resources", "-o", "wide", "--no-headers"]);
    let mut rows = std::collections::HashMap::new();
    for line in table.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        rows.insert(fields[0].to_owned(), line.to_owned());
    }
    // Every resource of the preferred version of every group, with kubectl's columns.
    for group in rudder_machinery::resources::GROUPS {
        let preferred = group.versions[0];
        for resource in rudder_machinery::resources::RESOURCES
            .iter()
            .filter(|r| r.group == group.name && r.version == preferred)
        {
            let row = rows
                .get(resource.resource)
                .unwrap_or_else(|| panic!("{} missing from:\n{table}", resource.resource));
            let namespaced = if resource.namespaced { "true" } else { "false" };
            let verbs = resource.verbs.join(",");
            assert!(row.contains(&format!(" {namespaced} ")), "{row}");
            assert!(row.contains(resource.kind), "{row}");
            assert!(row.contains(&verbs), "{row} lacks {verbs}");
            for short in resource.short_names {
                assert!(row.contains(short), "{row} lacks short name {short}");
            }
        }
    }
    let versions = server.kubectl_ok(&["api-versions"]);
    for expected in [
        "v1",
        "apps/v1",
        "autoscaling/v1",
        "autoscaling/v2",
        "batch/v1",
        "rbac.authorization.k8s.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == expected),
            "{expected} missing from {versions}"
        );
    }
    assert!(
        !versions.contains("beta"),
        "no beta version is served by default: {versions}"
    );

    server.kubectl_ok(&["create", "deployment", "web", "--image=nginx"]);
    let all = server.kubectl_ok(&["get", "all"]);
    assert!(all.contains("service/kubernetes"), "{all}");
    assert!(all.contains("deployment.apps/web"), "{all}");
}

#[test]
fn created_objects_show_upstreams_defaults() {
    let server = Server::start();
    apply(
        &server,
        "apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: nginx
    ports:
    - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
",
    );
    let pod = json(&server.kubectl_ok(&["get", "pod", "web", "-o", "json"]));
    let spec = &pod["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["enableServiceLinks"], true);
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["priority"], 0);
    let container = &spec["containers"][0];
    assert_eq!(
        container["imagePullPolicy"], "Always",
        "untagged images are pulled always"
    );
    assert_eq!(container["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(container["terminationMessagePolicy"], "File");
    assert_eq!(container["ports"][0]["protocol"], "TCP");
    assert_eq!(
        container["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    let tolerations = spec["tolerations"].as_array().unwrap();
    assert_eq!(tolerations.len(), 2, "{tolerations:?}");
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(pod["status"]["qosClass"], "BestEffort");

    let service = json(&server.kubectl_ok(&["get", "service", "web", "-o", "json"]));
    let spec = &service["spec"];
    assert_eq!(spec["type"], "ClusterIP");
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["ipFamilies"], serde_json::json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    assert_eq!(spec["ports"][0]["protocol"], "TCP");
    assert_eq!(spec["ports"][0]["targetPort"], 80);
    assert!(
        spec["clusterIP"].as_str().unwrap().starts_with("10.96."),
        "{spec}"
    );

    server.kubectl_ok(&["create", "deployment", "app", "--image=nginx:1.27"]);
    let deployment = json(&server.kubectl_ok(&["get", "deployment", "app", "-o", "json"]));
    let spec = &deployment["spec"];
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(spec["strategy"]["type"], "RollingUpdate");
    assert_eq!(spec["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(
        spec["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(deployment["metadata"]["generation"], 1);
}
