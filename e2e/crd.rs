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

/// A CRD shaped like widely used operators' (nested objects, int-or-string, enums, patterns,
/// defaults, preserve-unknown-fields, list maps and CEL rules with a transition rule).
const DATABASE_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: databases.db.example.com
spec:
  group: db.example.com
  scope: Namespaced
  names:
    plural: databases
    singular: database
    kind: Database
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [engine]
            x-kubernetes-validations:
            - rule: "self.minReplicas <= self.maxReplicas"
              messageExpression: "'minReplicas (' + string(self.minReplicas) + ') must not exceed maxReplicas'"
            - rule: "self.engine == oldSelf.engine"
              message: engine is immutable
            properties:
              engine:
                type: string
                enum: [postgres, mysql]
              version:
                type: string
                pattern: '^[0-9]+\.[0-9]+$'
                default: "16.1"
              minReplicas:
                type: integer
                minimum: 1
                default: 1
              maxReplicas:
                type: integer
                maximum: 9
                default: 3
              port:
                x-kubernetes-int-or-string: true
                default: 5432
              storage:
                type: object
                properties:
                  size:
                    type: string
                    default: 1Gi
                  className:
                    type: string
              users:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name:
                      type: string
                    roles:
                      type: array
                      items:
                        type: string
              extra:
                type: object
                x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            properties:
              phase:
                type: string
"#;

#[test]
fn custom_resources_are_validated_defaulted_and_pruned() {
    let server = Server::start();
    apply(&server, DATABASE_CRD);
    server.kubectl_ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=30s",
        "crd/databases.db.example.com",
    ]);

    let db = |spec: &str| {
        format!("apiVersion: db.example.com/v1\nkind: Database\nmetadata:\n  name: main\nspec:\n{spec}")
    };
    let kubectl_apply = |manifest: &str, extra: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db.yaml");
        std::fs::write(&file, manifest).unwrap();
        let mut args = vec!["apply", "-f", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        server.kubectl(&args)
    };

    // Invalid objects are refused with field paths.
    let refused = kubectl_apply(
        &db(
            "  engine: oracle\n  version: latest\n  minReplicas: 5\n  maxReplicas: 12\n  users:\n  - name: a\n  - name: a\n",
        ),
        &[],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    for expected in [
        "The Database \"main\" is invalid:",
        "spec.engine: Unsupported value: \"oracle\": supported values: \"postgres\", \"mysql\"",
        "spec.version: Invalid value: \"latest\": spec.version in body should match '^[0-9]+\\.[0-9]+$'",
        "spec.maxReplicas: Invalid value: 12: spec.maxReplicas in body should be less than or equal to 9",
        "spec.users[1]: Duplicate value: {\"name\":\"a\"}",
        "some validation rules were not checked because the object was invalid",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in {stderr}");
    }
    let refused = kubectl_apply(
        &db("  engine: postgres\n  minReplicas: 5\n  maxReplicas: 4\n"),
        &[],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("spec: Invalid value: minReplicas (5) must not exceed maxReplicas"),
        "{stderr}"
    );

    // Unknown fields: refused under strict validation (kubectl's default), pruned otherwise.
    let unknown = db("  engine: postgres\n  colour: blue\n  extra:\n    anything: goes\n");
    let refused = kubectl_apply(&unknown, &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("unknown field \"spec.colour\""), "{stderr}");
    let accepted = kubectl_apply(&unknown, &["--validate=false"]);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    let stored: serde_json::Value =
        serde_json::from_str(&server.kubectl_ok(&["get", "database", "main", "-o", "json"])).unwrap();
    let spec = &stored["spec"];
    assert_eq!(spec.get("colour"), None, "pruned: {spec}");
    assert_eq!(spec["extra"]["anything"], "goes");
    // Defaults, nested ones included.
    assert_eq!(spec["version"], "16.1");
    assert_eq!(spec["minReplicas"], 1);
    assert_eq!(spec["maxReplicas"], 3);
    assert_eq!(spec["port"], 5432);
    assert_eq!(spec.get("storage"), None, "no default for the object itself");

    // The transition rule: the engine cannot change.
    let changed = kubectl_apply(&db("  engine: mysql\n"), &[]);
    let stderr = String::from_utf8_lossy(&changed.stderr);
    assert!(
        stderr.contains("spec: Invalid value: engine is immutable"),
        "{stderr}"
    );
    let scaled = kubectl_apply(&db("  engine: postgres\n  maxReplicas: 5\n  port: db\n"), &[]);
    assert!(
        scaled.status.success(),
        "{}",
        String::from_utf8_lossy(&scaled.stderr)
    );
    assert_eq!(
        server.kubectl_ok(&[
            "get",
            "database",
            "main",
            "-o",
            "jsonpath={.spec.maxReplicas} {.spec.port}"
        ]),
        "5 db"
    );
}
