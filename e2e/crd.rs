//! CustomResourceDefinitions through the real kubectl: a multi-version CRD with status and
//! scale subresources and printer columns is applied and waited for (`condition=established`);
//! custom resources are created, listed with their columns (and in `get all`), scaled,
//! explained from the published OpenAPI v3 and deleted, and deleting the CRD removes its API.

use std::time::{Duration, Instant};

use crate::harness::Server;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    listKind: WidgetList
    shortNames: [wd]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        description: A widget of the example API.
        properties:
          spec:
            type: object
            description: What the widget should be.
            properties:
              color:
                type: string
                description: The color the widget is painted in.
              replicas:
                type: integer
          status:
            type: object
            properties:
              replicas:
                type: integer
              selector:
                type: string
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
        labelSelectorPath: .status.selector
    additionalPrinterColumns:
    - name: Color
      type: string
      jsonPath: .spec.color
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
  - name: v1beta1
    served: true
    storage: false
    deprecated: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

const WIDGET: &str = "apiVersion: example.com/v1
kind: Widget
metadata:
  name: w1
spec:
  color: red
  replicas: 2
";

fn apply(server: &Server, manifest: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("manifest.yaml");
    std::fs::write(&file, manifest).unwrap();
    server.kubectl_ok(&["apply", "-f", file.to_str().unwrap()])
}

#[test]
fn custom_resources_with_kubectl() {
    let server = Server::start();
    assert_eq!(
        apply(&server, CRD).trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"
    );
    let waited = server.kubectl_ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=30s",
        "crd/widgets.example.com",
    ]);
    assert_eq!(
        waited.trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com condition met"
    );
    // kubectl's discovery cache is per server; the new group shows up.
    let resources = server.kubectl_ok(&["api-resources", "--api-group=example.com"]);
    assert!(
        resources.contains("widgets") && resources.contains("wd") && resources.contains("Widget"),
        "{resources}"
    );

    assert_eq!(apply(&server, WIDGET).trim(), "widget.example.com/w1 created");
    let table = server.kubectl_ok(&["get", "widgets"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "COLOR", "REPLICAS"]
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["w1", "red", "2"]
    );
    let all = server.kubectl_ok(&["get", "all"]);
    assert!(all.contains("widget.example.com/w1"), "{all}");
    assert_eq!(
        server.kubectl_ok(&["get", "wd", "w1", "-o", "jsonpath={.metadata.generation}"]),
        "1"
    );

    assert_eq!(
        server.kubectl_ok(&["scale", "widget/w1", "--replicas=4"]).trim(),
        "widget.example.com/w1 scaled"
    );
    assert_eq!(
        server.kubectl_ok(&["get", "widget", "w1", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );

    let explained = server.kubectl_ok(&["explain", "widgets.spec.color"]);
    assert!(
        explained.contains("KIND:       Widget")
            && explained.contains("FIELD: color <string>")
            && explained.contains("The color the widget is painted in."),
        "{explained}"
    );

    // The deprecated version warns.
    let output = server.kubectl(&["get", "widgets.v1beta1.example.com", "w1"]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Warning: example.com/v1beta1 Widget is deprecated"),
        "{stderr}"
    );

    assert_eq!(
        server.kubectl_ok(&["delete", "widget", "w1"]).trim(),
        "widget.example.com \"w1\" deleted"
    );
    assert_eq!(apply(&server, WIDGET).trim(), "widget.example.com/w1 created");
    assert_eq!(
        server
            .kubectl_ok(&["delete", "crd", "widgets.example.com"])
            .trim(),
        "customresourcedefinition.apiextensions.k8s.io \"widgets.example.com\" deleted"
    );
    // kubectl waits for the deletion; afterwards the API is gone.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let output = server.kubectl(&["get", "--raw", "/apis/example.com/v1"]);
        if !output.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "the API is still served");
        std::thread::sleep(Duration::from_millis(100));
    }
}
