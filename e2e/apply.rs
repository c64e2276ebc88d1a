//! `metadata.managedFields` and server-side apply through the real kubectl: the managers of
//! `kubectl create` and client-side `kubectl apply`, `kubectl apply --server-side` with its
//! conflicts (kubectl's exact error) and `--force-conflicts`, and the upgrade from client-side
//! to server-side apply.

use serde_json::{Value, json};

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

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn manifest(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.yaml"), text).unwrap();
    dir
}

fn apply(server: &Server, text: &str, extra: &[&str]) -> std::process::Output {
    let dir = manifest(text);
    let file = dir.path().join("manifest.yaml");
    let mut args = vec!["apply", "-f", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    server.kubectl(&args)
}

fn apply_ok(server: &Server, text: &str, extra: &[&str]) -> String {
    let out = apply(server, text, extra);
    assert!(
        out.status.success(),
        "kubectl apply {extra:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn get(server: &Server, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
    serde_json::from_str(&server.kubectl_ok(&args)).unwrap()
}

/// (manager, operation, apiVersion, fieldsV1) of each managedFields entry, after checking
/// every entry's type and time.
fn managers(object: &Value) -> Vec<(String, String, String, Value)> {
    let entries = object["metadata"]["managedFields"]
        .as_array()
        .unwrap_or_else(|| panic!("no managedFields in {object}"));
    entries
        .iter()
        .map(|entry| {
            assert_eq!(entry["fieldsType"], "FieldsV1", "{entry}");
            // Upstream records no time for a manager whose apply changed nothing.
            assert!(
                entry
                    .get("time")
                    .is_none_or(|t| t.as_str().is_some_and(|t| t.ends_with('Z'))),
                "{entry}"
            );
            (
                entry["manager"].as_str().unwrap().to_owned(),
                entry["operation"].as_str().unwrap().to_owned(),
                entry["apiVersion"].as_str().unwrap().to_owned(),
                entry["fieldsV1"].clone(),
            )
        })
        .collect()
}

fn entry(manager: &str, operation: &str, fields: Value) -> (String, String, String, Value) {
    (manager.into(), operation.into(), "v1".into(), fields)
}

#[test]
fn kubectl_create_and_client_side_apply_record_update_managers() {
    let server = Server::start();
    let dir = manifest(&CONFIGMAP.replace("settings", "created"));
    server.kubectl_ok(&["create", "-f", dir.path().join("manifest.yaml").to_str().unwrap()]);
    let created = get(&server, &["configmap", "created"]);
    assert_eq!(
        managers(&created),
        [entry(
            "kubectl-create",
            "Update",
            json!({"f:data": {".": {}, "f:mode": {}}, "f:metadata": {"f:labels": {".": {}, "f:app": {}}}})
        )]
    );

    assert_eq!(
        apply_ok(&server, CONFIGMAP, &[]).trim(),
        "configmap/settings created"
    );
    let applied = get(&server, &["configmap", "settings"]);
    let csa_fields = |data: Value| {
        json!({
            "f:data": data,
            "f:metadata": {
                "f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}},
                "f:labels": {".": {}, "f:app": {}},
            },
        })
    };
    assert_eq!(
        managers(&applied),
        [entry(
            "kubectl-client-side-apply",
            "Update",
            csa_fields(json!({".": {}, "f:mode": {}}))
        )]
    );
    let changed = CONFIGMAP.replace("mode: fast", "mode: safe\n  extra: \"1\"");
    assert_eq!(
        apply_ok(&server, &changed, &[]).trim(),
        "configmap/settings configured"
    );
    let reapplied = get(&server, &["configmap", "settings"]);
    assert_eq!(
        managers(&reapplied),
        [entry(
            "kubectl-client-side-apply",
            "Update",
            csa_fields(json!({".": {}, "f:extra": {}, "f:mode": {}}))
        )]
    );
    let last: Value = serde_json::from_str(
        reapplied["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(last["data"], json!({"mode": "safe", "extra": "1"}));
    // `kubectl label` is an Update by `kubectl-label`.
    server.kubectl_ok(&["label", "configmap", "settings", "tier=db"]);
    let labelled = get(&server, &["configmap", "settings"]);
    let labels: Vec<_> = managers(&labelled).into_iter().map(|m| (m.0, m.1)).collect();
    assert_eq!(
        labels,
        [
            ("kubectl-client-side-apply".to_owned(), "Update".to_owned()),
            ("kubectl-label".to_owned(), "Update".to_owned()),
        ]
    );
}

#[test]
fn server_side_apply_conflicts_and_force() {
    let server = Server::start();
    assert_eq!(
        apply_ok(&server, CONFIGMAP, &["--server-side"]).trim(),
        "configmap/settings serverside-applied"
    );
    let changed = CONFIGMAP.replace("mode: fast", "mode: safe\n  extra: \"1\"");
    assert_eq!(
        apply_ok(&server, &changed, &["--server-side"]).trim(),
        "configmap/settings serverside-applied"
    );
    let object = get(&server, &["configmap", "settings"]);
    assert_eq!(object["data"], json!({"mode": "safe", "extra": "1"}));
    assert!(object["metadata"].get("annotations").is_none(), "{object}");
    assert_eq!(
        managers(&object),
        [entry(
            "kubectl",
            "Apply",
            json!({"f:data": {"f:extra": {}, "f:mode": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
        )]
    );

    // Another manager applying a different value conflicts.
    let other = CONFIGMAP.replace("mode: fast", "mode: slow");
    let out = apply(&server, &other, &["--server-side", "--field-manager=other"]);
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: Apply failed with 1 conflict: conflict with \"kubectl\": .data.mode
Please review the fields above--they currently have other managers. Here
are the ways you can resolve this warning:
* If you intend to manage all of these fields, please re-run the apply
  command with the `--force-conflicts` flag.
* If you do not intend to manage all of the fields, please edit your
  manifest to remove references to the fields that should keep their
  current managers.
* You may co-own fields by updating your manifest to match the existing
  value; in this case, you'll become the manager if the other manager(s)
  stop managing the field (remove it from their configuration).
See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts
"
    );
    assert_eq!(get(&server, &["configmap", "settings"])["data"]["mode"], "safe");

    assert_eq!(
        apply_ok(
            &server,
            &other,
            &["--server-side", "--field-manager=other", "--force-conflicts"]
        )
        .trim(),
        "configmap/settings serverside-applied"
    );
    let forced = get(&server, &["configmap", "settings"]);
    assert_eq!(forced["data"]["mode"], "slow");
    assert_eq!(
        managers(&forced),
        [
            entry(
                "kubectl",
                "Apply",
                json!({"f:data": {"f:extra": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
            ),
            entry(
                "other",
                "Apply",
                json!({"f:data": {"f:mode": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
            ),
        ]
    );
}

#[test]
fn server_side_apply_takes_over_from_client_side_apply() {
    let server = Server::start();
    apply_ok(&server, CONFIGMAP, &[]);
    let changed = CONFIGMAP.replace("mode: fast", "mode: safe");
    assert_eq!(
        apply_ok(&server, &changed, &["--server-side"]).trim(),
        "configmap/settings serverside-applied"
    );
    let object = get(&server, &["configmap", "settings"]);
    assert_eq!(object["data"]["mode"], "safe");
    // kubectl moved the client-side manager's fields to its server-side manager, after
    // applying the last-applied annotation alone as `kubectl-last-applied` (an apply that
    // changes nothing: upstream records no time, so the entry sorts first).
    assert_eq!(
        managers(&object),
        [
            entry(
                "kubectl-last-applied",
                "Apply",
                json!({"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}})
            ),
            entry(
                "kubectl",
                "Apply",
                json!({"f:data": {"f:mode": {}}, "f:metadata": {"f:labels": {"f:app": {}}}})
            ),
        ]
    );
    assert!(object["metadata"]["managedFields"][0].get("time").is_none());
    // The last-applied annotation follows the applied configuration.
    let last: Value =
        serde_json::from_str(object["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap()).unwrap();
    assert_eq!(last["data"]["mode"], "safe");
    // And client-side apply still works on top.
    let again = CONFIGMAP.replace("mode: fast", "mode: again");
    assert_eq!(
        apply_ok(&server, &again, &[]).trim(),
        "configmap/settings configured"
    );
    assert_eq!(get(&server, &["configmap", "settings"])["data"]["mode"], "again");
}
