//! Tests of the protobuf codec: conformance with bytes and JSON produced by upstream's Go code
//! (`testdata/vectors.json`, see `testdata/gen_vectors.go`), round trips of every special type,
//! kind resolution, the generated facts, and errors.

use serde_json::{Value, json};

use super::registry::{Registry, Special};
use super::*;

/// One vector written by upstream's codecs (k8s.io/apimachinery v0.35.4): `input` decoded by
/// the JSON serializer, encoded by the protobuf serializer (`protobuf`, hex), decoded again and
/// written by the JSON serializer (`output`). For watch vectors, `protobuf` is the frame the
/// apiserver's watch encoder writes for the event type in `output`. `output_protobuf` is the
/// protobuf of `output` (which differs from `protobuf` only where JSON cannot tell an empty
/// `omitempty` field from an unset one).
struct Vector {
    name: String,
    input: Value,
    protobuf: Vec<u8>,
    output: Value,
    /// The protobuf of `output` (JSON loses nil versus empty of `omitempty` fields).
    output_protobuf: Vec<u8>,
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn vectors() -> Vec<Vector> {
    let all: Vec<Value> = serde_json::from_str(include_str!("testdata/vectors.json")).unwrap();
    all.into_iter()
        .map(|v| Vector {
            name: v["name"].as_str().unwrap().to_string(),
            input: v["input"].clone(),
            protobuf: hex(v["protobuf"].as_str().unwrap()),
            output: v["output"].clone(),
            output_protobuf: hex(v["output_protobuf"].as_str().unwrap_or_default()),
        })
        .collect()
}

/// (group, version, kind) of a JSON object.
fn gvk(value: &Value) -> (String, String, String) {
    let api_version = value["apiVersion"].as_str().unwrap();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    (
        group.to_string(),
        version.to_string(),
        value["kind"].as_str().unwrap().to_string(),
    )
}

/// Describes the first difference between two JSON values.
fn diff(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                let (left, right) = (x.get(key), y.get(key));
                match (left, right) {
                    (Some(l), Some(r)) => {
                        if let Some(d) = diff(&format!("{path}.{key}"), l, r) {
                            return Some(d);
                        }
                    }
                    _ => return Some(format!("{path}.{key}: {left:?} vs {right:?}")),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| diff(&format!("{path}[{i}]"), l, r)),
        _ => (a != b).then(|| format!("{path}: {a} vs {b}")),
    }
}

#[track_caller]
fn assert_json_eq(context: &str, actual: &Value, expected: &Value) {
    if let Some(d) = diff("", actual, expected) {
        panic!("{context}: JSON differs at {d}\nactual:   {actual}\nexpected: {expected}");
    }
}

#[track_caller]
fn assert_bytes_eq(context: &str, actual: &[u8], expected: &[u8]) {
    if actual != expected {
        let at = actual
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(actual.len().min(expected.len()));
        panic!(
            "{context}: bytes differ at offset {at}\nactual:   {}\nexpected: {}",
            to_hex(actual),
            to_hex(expected)
        );
    }
}

#[test]
fn protobuf_decodes_upstream_bytes_to_upstream_json() {
    for vector in vectors().iter().filter(|v| !v.output.is_string()) {
        let (api_version, kind, value) =
            decode(&vector.protobuf).unwrap_or_else(|e| panic!("{}: {e}", vector.name));
        let (group, version, expected_kind) = gvk(&vector.output);
        assert_eq!(kind, expected_kind, "{}", vector.name);
        assert_eq!(api_version, vector.output["apiVersion"], "{}", vector.name);
        assert_json_eq(&vector.name, &value, &vector.output);
        let again = decode_as(&vector.protobuf, &group, &version, &kind).unwrap();
        assert_json_eq(&vector.name, &again, &vector.output);
    }
}

#[test]
fn protobuf_encodes_json_to_upstream_bytes() {
    for vector in vectors().iter().filter(|v| !v.output.is_string()) {
        let (group, version, kind) = gvk(&vector.input);
        let bytes =
            encode(&vector.input, &group, &version, &kind).unwrap_or_else(|e| panic!("{}: {e}", vector.name));
        assert_bytes_eq(&format!("{} (input)", vector.name), &bytes, &vector.protobuf);
        // Upstream's own JSON of the object encodes as upstream encodes it.
        let bytes = encode(&vector.output, &group, &version, &kind).unwrap();
        assert_bytes_eq(
            &format!("{} (output)", vector.name),
            &bytes,
            &vector.output_protobuf,
        );
    }
}

#[test]
fn protobuf_watch_frames_match_upstream() {
    let watches: Vec<Vector> = vectors().into_iter().filter(|v| v.output.is_string()).collect();
    assert!(watches.len() >= 3);
    for vector in watches {
        let event_type = vector.output.as_str().unwrap();
        let (group, version, kind) = gvk(&vector.input);
        let frame = encode_watch_event(event_type, &vector.input, &group, &version, &kind).unwrap();
        assert_bytes_eq(&vector.name, &frame, &vector.protobuf);
        let (decoded_type, object) = decode_watch_event(&vector.protobuf).unwrap();
        assert_eq!(decoded_type, event_type);
        assert_eq!(object["kind"], vector.input["kind"]);
        assert_eq!(object["apiVersion"], vector.input["apiVersion"]);
        assert_eq!(
            object["metadata"]["resourceVersion"],
            vector.input["metadata"]["resourceVersion"]
        );
    }
}

/// A ConfigMap as client-go's protobuf encoder writes it (`kubectl create configmap`),
/// independently produced by a Go program against k8s.io/api v0.35.4.
const GO_CONFIGMAP: &str =
    "6b3873000a0f0a0276311209436f6e6669674d617012130a110a017812001a0022002a003200380042001a002200";

#[test]
fn protobuf_decodes_a_client_go_configmap() {
    let (api_version, kind, value) = decode(&hex(GO_CONFIGMAP)).unwrap();
    assert_eq!((api_version.as_str(), kind.as_str()), ("v1", "ConfigMap"));
    // Go leaves out the empty strings, the zero generation and (omitzero) the zero timestamp.
    assert_eq!(
        value,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    );
    // A minimal object as Rudder holds it encodes back to the same bytes.
    let bytes = encode(&json!({"metadata": {"name": "x"}}), "", "v1", "ConfigMap").unwrap();
    assert_eq!(to_hex(&bytes), GO_CONFIGMAP);
}

fn round_trip(value: &Value, group: &str, version: &str, kind: &str) -> Value {
    let bytes = encode(value, group, version, kind).unwrap();
    let (api_version, decoded_kind, decoded) = decode(&bytes).unwrap();
    assert_eq!(decoded_kind, kind);
    assert_eq!(api_version, super::api_version(group, version));
    decoded
}

#[test]
fn protobuf_round_trips_a_pod_with_quantities_intstr_and_times() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "n", "creationTimestamp": "2024-01-02T03:04:05Z",
                     "deletionTimestamp": "2024-01-02T03:04:06Z", "labels": {"a": "b"}},
        "spec": {
            "containers": [{
                "name": "c", "image": "i",
                "resources": {"limits": {"cpu": "1500m", "memory": "1Gi"}, "requests": {"cpu": "0.5"}},
                "ports": [{"containerPort": 80}],
                "livenessProbe": {"httpGet": {"port": "http", "path": "/"}},
                "readinessProbe": {"tcpSocket": {"port": 8080}}
            }],
            "securityContext": {"runAsUser": 0},
            "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "64Mi"}}]
        },
        "status": {"startTime": "2024-01-02T03:04:07Z", "phase": "Running"}
    });
    let out = round_trip(&pod, "", "v1", "Pod");
    let container = &out["spec"]["containers"][0];
    assert_eq!(
        container["resources"]["limits"],
        json!({"cpu": "1500m", "memory": "1Gi"})
    );
    // Go writes quantities in canonical form.
    assert_eq!(container["resources"]["requests"]["cpu"], "500m");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "http");
    assert_eq!(container["readinessProbe"]["tcpSocket"]["port"], 8080);
    assert_eq!(container["ports"][0], json!({"containerPort": 80}));
    // A pointer set to zero stays present.
    assert_eq!(out["spec"]["securityContext"]["runAsUser"], 0);
    // The inlined VolumeSource.
    assert_eq!(
        out["spec"]["volumes"][0],
        json!({"name": "v", "emptyDir": {"sizeLimit": "64Mi"}})
    );
    assert_eq!(out["metadata"]["creationTimestamp"], "2024-01-02T03:04:05Z");
    assert_eq!(out["metadata"]["deletionTimestamp"], "2024-01-02T03:04:06Z");
    assert_eq!(out["status"]["startTime"], "2024-01-02T03:04:07Z");
    // Non-omitempty fields Go always writes.
    assert_eq!(container["name"], "c");
    assert_eq!(
        out["spec"]["containers"][0]["resources"]
            .as_object()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn protobuf_round_trips_secret_bytes() {
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"a": "AAEC/w==", "empty": ""}, "stringData": {"x": "y"}, "type": "Opaque"});
    let out = round_trip(&secret, "", "v1", "Secret");
    assert_eq!(out["data"], json!({"a": "AAEC/w==", "empty": ""}));
    assert_eq!(out["stringData"], json!({"x": "y"}));
    assert_eq!(out["type"], "Opaque");
    let bad = json!({"metadata": {"name": "s"}, "data": {"a": "not base64!"}});
    let err = encode(&bad, "", "v1", "Secret").unwrap_err();
    assert!(
        matches!(&err, ProtobufError::Encode { path, .. } if path == ".data[\"a\"]"),
        "{err}"
    );
}

#[test]
fn protobuf_round_trips_a_deployment() {
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "n", "generation": 4},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"a": "b"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}},
        "status": {"conditions": [{"type": "Available", "status": "True",
                                   "lastUpdateTime": "2024-01-01T00:00:00Z", "lastTransitionTime": "2024-01-01T00:00:00Z"}]}});
    let out = round_trip(&deployment, "apps", "v1", "Deployment");
    assert_eq!(out["spec"]["replicas"], 0);
    assert_eq!(
        out["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": "25%", "maxUnavailable": 0})
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["resources"],
        json!({})
    );
    assert_eq!(
        out["status"]["conditions"][0]["lastUpdateTime"],
        "2024-01-01T00:00:00Z"
    );
    assert_eq!(out["metadata"]["generation"], 4);
}

#[test]
fn protobuf_round_trips_crd_json_schema_props() {
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "ws.example.com"},
    "spec": {"group": "example.com", "scope": "Namespaced",
             "names": {"plural": "ws", "kind": "W"},
             "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                 "type": "object", "x-kubernetes-preserve-unknown-fields": true,
                 "properties": {
                     "a": {"type": "integer", "default": 5, "maximum": 10.5, "minimum": 2},
                     "b": {"enum": ["x", {"y": [1, null]}]},
                     "c": {"type": "array", "items": {"type": "string"}},
                     "d": {"type": "array", "items": [{"type": "string"}]},
                     "e": {"type": "object", "additionalProperties": false},
                     "f": {"type": "object", "additionalProperties": {"type": "integer"}},
                     "g": {"dependencies": {"x": ["y"], "z": {"required": ["w"]}}},
                     "h": {"x-kubernetes-int-or-string": true, "$ref": "#/x", "$schema": "s"}
                 }}}}]}});
    let out = round_trip(&crd, "apiextensions.k8s.io", "v1", "CustomResourceDefinition");
    let schema = &out["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    assert_eq!(schema["x-kubernetes-preserve-unknown-fields"], true);
    let props = &schema["properties"];
    assert_eq!(
        props["a"],
        json!({"type": "integer", "default": 5, "maximum": 10.5, "minimum": 2})
    );
    assert_eq!(props["b"]["enum"], json!(["x", {"y": [1, null]}]));
    assert_eq!(props["c"]["items"], json!({"type": "string"}));
    assert_eq!(props["d"]["items"], json!([{"type": "string"}]));
    assert_eq!(props["e"]["additionalProperties"], false);
    assert_eq!(props["f"]["additionalProperties"], json!({"type": "integer"}));
    assert_eq!(
        props["g"]["dependencies"],
        json!({"x": ["y"], "z": {"required": ["w"]}})
    );
    assert_eq!(
        props["h"],
        json!({"x-kubernetes-int-or-string": true, "$ref": "#/x", "$schema": "s"})
    );
}

#[test]
fn protobuf_round_trips_an_event_with_micro_time() {
    let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "n"},
        "eventTime": "2024-01-02T03:04:05.123456Z", "series": {"count": 2, "lastObservedTime": "2024-01-02T03:04:06.000001Z"},
        "reportingController": "c", "reportingInstance": "i", "action": "A", "reason": "R", "type": "Normal",
        "deprecatedLastTimestamp": "2024-01-02T03:04:05Z"});
    let out = round_trip(&event, "events.k8s.io", "v1", "Event");
    assert_eq!(out["eventTime"], "2024-01-02T03:04:05.123456Z");
    assert_eq!(out["series"]["lastObservedTime"], "2024-01-02T03:04:06.000001Z");
    assert_eq!(out["deprecatedLastTimestamp"], "2024-01-02T03:04:05Z");
    // Sub-microsecond input is truncated on output, as Go formats it.
    let event = json!({"metadata": {"name": "e"}, "eventTime": "2024-01-02T03:04:05.1234567+01:00"});
    let out = round_trip(&event, "events.k8s.io", "v1", "Event");
    assert_eq!(out["eventTime"], "2024-01-02T02:04:05.123456Z");
    // A core Event without eventTime: Go writes the zero MicroTime as null.
    let out = round_trip(&json!({"metadata": {"name": "e"}}), "", "v1", "Event");
    assert_eq!(out["eventTime"], Value::Null);
}

#[test]
fn protobuf_round_trips_status_and_lists() {
    let status = json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "message": "pods \"x\" is forbidden", "reason": "Forbidden",
        "details": {"name": "x", "kind": "pods", "causes": [{"reason": "FieldValueInvalid", "message": "m", "field": "f"}]},
        "code": 403});
    // Status is unversioned: written as v1 whatever group version is asked for.
    let bytes = encode(&status, "apps", "v1", "Status").unwrap();
    let (api_version, kind, out) = decode(&bytes).unwrap();
    assert_eq!((api_version.as_str(), kind.as_str()), ("v1", "Status"));
    assert_json_eq("status", &out, &status);

    let list = json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "5"},
        "items": [{"metadata": {"name": "a"}, "data": {"k": "v"}}, {"metadata": {"name": "b"}}]});
    let out = round_trip(&list, "", "v1", "ConfigMapList");
    assert_json_eq("list", &out, &list);
    // An empty list: Go writes `items: null` (no omitempty) for the nil slice.
    let out = round_trip(
        &json!({"metadata": {}, "items": []}),
        "apps",
        "v1",
        "DeploymentList",
    );
    assert_eq!(out["items"], Value::Null);
    assert_eq!(out["metadata"], json!({}));

    let partial = json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {},
        "items": [{"metadata": {"name": "a", "labels": {"x": "y"}}}]});
    let out = round_trip(&partial, "meta.k8s.io", "v1", "PartialObjectMetadataList");
    assert_json_eq("partial", &out, &partial);
}

#[test]
fn protobuf_round_trips_named_slices_and_raw_extensions() {
    let review = json!({"metadata": {}, "spec": {"token": "t"},
        "status": {"authenticated": true, "user": {"username": "u", "extra": {"a": ["1", "2"], "b": []}}}});
    let out = round_trip(&review, "authentication.k8s.io", "v1", "TokenReview");
    // An empty ExtraValue is written and decodes to an empty slice.
    assert_eq!(out["status"]["user"]["extra"], json!({"a": ["1", "2"], "b": []}));
    let list = json!({"groupVersion": "v1", "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": ["get"]},
        {"name": "pods/log", "singularName": "", "namespaced": true, "kind": "Pod", "verbs": []}]});
    let out = round_trip(&list, "", "v1", "APIResourceList");
    assert_eq!(out["resources"][0]["verbs"], json!(["get"]));
    // Verbs (no omitempty): empty stays empty, absent is nil.
    assert_eq!(out["resources"][1]["verbs"], json!([]));
    let out = round_trip(
        &json!({"resources": [{"name": "x"}]}),
        "",
        "v1",
        "APIResourceList",
    );
    assert_eq!(out["resources"][0]["verbs"], Value::Null);
    let revision = json!({"metadata": {"name": "r"}, "data": {"spec": {"x": [1, "y", null]}}, "revision": 3});
    let out = round_trip(&revision, "apps", "v1", "ControllerRevision");
    assert_eq!(out["data"], json!({"spec": {"x": [1, "y", null]}}));
    assert_eq!(out["revision"], 3);
}

#[test]
fn protobuf_supports_built_in_kinds_only() {
    assert!(supports("", "v1", "Pod"));
    assert!(supports("", "v1", "PodList"));
    assert!(supports("apps", "v1", "Deployment"));
    assert!(supports("rbac.authorization.k8s.io", "v1", "ClusterRole"));
    assert!(supports("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema"));
    assert!(supports("events.k8s.io", "v1", "Event"));
    assert!(supports(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinitionList"
    ));
    assert!(supports("apiregistration.k8s.io", "v1", "APIService"));
    assert!(supports("autoscaling", "v1", "Scale"));
    assert!(supports("policy", "v1", "Eviction"));
    assert!(supports("meta.k8s.io", "v1", "PartialObjectMetadataList"));
    // Meta kinds are the same message in every group version.
    assert!(supports("example.com", "v1", "Status"));
    assert!(supports("apps", "v1", "DeleteOptions"));
    assert!(supports("", "v1", "WatchEvent"));
    // Custom resources, non-kinds, unserved versions, Table (not a protobuf type).
    assert!(!supports("example.com", "v1", "Widget"));
    assert!(!supports("apps.example.com", "v1", "Deployment"));
    assert!(!supports("", "v1", "PodSpec"));
    assert!(!supports("apps", "v1beta1", "Deployment"));
    assert!(!supports("meta.k8s.io", "v1", "Table"));
    assert!(!supports("", "v1", "../x"));
    assert_eq!(
        message_name("rbac.authorization.k8s.io", "v1", "Role").as_deref(),
        Some("k8s.io.api.rbac.v1.Role")
    );
    assert_eq!(
        message_name("apiextensions.k8s.io", "v1", "CustomResourceDefinition").as_deref(),
        Some("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition")
    );
    assert_eq!(
        message_name("apiregistration.k8s.io", "v1", "APIService").as_deref(),
        Some("k8s.io.kube_aggregator.pkg.apis.apiregistration.v1.APIService")
    );
    assert_eq!(
        message_name("", "v1", "Status").as_deref(),
        Some("k8s.io.apimachinery.pkg.apis.meta.v1.Status")
    );
}

/// Every kind a default API server serves, and the list kind of every listable one, has a
/// message, and it is the one the OpenAPI spec names.
#[test]
fn protobuf_covers_every_served_kind() {
    let schema_json: Value = serde_json::from_str(include_str!("../generated/schema.json")).unwrap();
    let definitions = schema_json["kinds"].as_object().unwrap();
    let mut checked = 0;
    for resource in crate::resources::RESOURCES.iter().filter(|r| !r.kind.is_empty()) {
        let mut kinds = vec![resource.kind.to_string()];
        if resource.has_verb("list") {
            kinds.push(format!("{}List", resource.kind));
        }
        for kind in kinds {
            let (group, version) = (resource.group, resource.version);
            assert!(supports(group, version, &kind), "{group}/{version} {kind}");
            let name = message_name(group, version, &kind).unwrap();
            let gvk = format!("{group}/{version}/{kind}");
            if let Some(definition) = definitions.get(&gvk).and_then(Value::as_str) {
                let expected = definition
                    .replacen("io.k8s.", "k8s.io.", 1)
                    .replace("apiextensions-apiserver", "apiextensions_apiserver")
                    .replace("kube-aggregator", "kube_aggregator");
                assert_eq!(name, expected, "{gvk}");
            }
            checked += 1;
        }
        for sub in resource.subresources {
            if !sub.kind.is_empty() {
                assert!(
                    supports(sub.group, sub.version, sub.kind),
                    "{} {}",
                    resource.resource,
                    sub.kind
                );
            }
        }
    }
    assert!(checked > 100, "{checked}");
}

/// The Go facts agree with the descriptors: every Go type of a message with protobuf fields
/// has a message, lists wrap one repeated field, the Go facts cover the kinds' messages.
#[test]
fn protobuf_go_facts_match_descriptors() {
    let registry = Registry::get().unwrap();
    let facts: Value = serde_json::from_str(include_str!("../generated/k8s-pb-fields.json")).unwrap();
    for (name, fields) in facts["messages"].as_object().unwrap() {
        let fields = fields.as_object().unwrap();
        // Go types without protobuf fields (Table) have no message.
        let Ok(info) = registry.message(name) else {
            assert!(fields.is_empty(), "no message {name}");
            continue;
        };
        for number in fields.keys() {
            let number: u32 = number.parse().unwrap();
            assert!(
                info.desc.get_field(number).is_some(),
                "{name} has no field {number}"
            );
        }
    }
    for info in registry.messages() {
        if info.special == Some(Special::List) {
            assert_eq!(info.fields.len(), 1, "{}", info.desc.full_name());
            assert!(info.fields[0].field.is_list(), "{}", info.desc.full_name());
        }
    }
    let pod = registry.message("k8s.io.api.core.v1.Pod").unwrap();
    assert!(!pod.fields[0].facts.pointer && pod.fields[0].json == "metadata");
    let volume = registry.message("k8s.io.api.core.v1.Volume").unwrap();
    assert!(
        volume
            .fields
            .iter()
            .any(|field| field.facts.inline && field.field.name() == "volumeSource")
    );
    let props = registry
        .message("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps")
        .unwrap();
    assert!(
        props
            .fields
            .iter()
            .any(|field| field.json == "$ref" && field.field.name() == "ref")
    );
    assert!(
        pod.desc
            .parent_pool()
            .get_message_by_name("k8s.io.api.apps.v1beta1.Deployment")
            .is_none(),
        "GA only"
    );
}

#[test]
fn protobuf_rejects_bad_input() {
    assert_eq!(
        decode(b"{\"kind\":\"Pod\"}").unwrap_err(),
        ProtobufError::BadMagic
    );
    assert_eq!(decode(b"k8s").unwrap_err(), ProtobufError::BadMagic);
    assert!(matches!(
        decode(b"k8s\0\x0a\xff").unwrap_err(),
        ProtobufError::BadEnvelope(_)
    ));
    // An envelope without typeMeta.
    assert!(matches!(
        decode(b"k8s\0\x12\x00").unwrap_err(),
        ProtobufError::BadEnvelope(_)
    ));
    // ... is fine when the kind is known from the request.
    let value = decode_as(b"k8s\0\x12\x00", "", "v1", "ConfigMap").unwrap();
    assert_eq!(
        value,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})
    );
    let custom = encode(&json!({}), "example.com", "v1", "Widget").unwrap_err();
    assert_eq!(
        custom,
        ProtobufError::UnknownKind {
            api_version: "example.com/v1".into(),
            kind: "Widget".into()
        }
    );
    // Truncated object bytes.
    let mut bytes = hex(GO_CONFIGMAP);
    bytes.truncate(bytes.len() - 10);
    assert!(decode(&bytes).is_err());
    // Type mismatches name the JSON path.
    let err = encode(
        &json!({"spec": {"replicas": "three"}}),
        "apps",
        "v1",
        "Deployment",
    )
    .unwrap_err();
    assert_eq!(
        err,
        ProtobufError::Encode {
            path: ".spec.replicas".into(),
            reason: "expected an integer, got a string".into()
        }
    );
    let err = encode(
        &json!({"spec": {"containers": [{"ports": [{"containerPort": 1e10}]}]}}),
        "",
        "v1",
        "Pod",
    )
    .unwrap_err();
    assert!(
        matches!(&err, ProtobufError::Encode { path, .. } if path == ".spec.containers[0].ports[0].containerPort"),
        "{err}"
    );
    let err = encode(&json!([]), "", "v1", "Pod").unwrap_err();
    assert!(matches!(err, ProtobufError::Encode { .. }));
    let err = encode(
        &json!({"metadata": {"creationTimestamp": "yesterday"}}),
        "",
        "v1",
        "Pod",
    )
    .unwrap_err();
    assert!(
        matches!(&err, ProtobufError::Encode { path, .. } if path == ".metadata.creationTimestamp"),
        "{err}"
    );
    // A bad watch frame.
    assert!(matches!(
        decode_watch_event(&[0, 0, 0, 9, 1]).unwrap_err(),
        ProtobufError::BadEnvelope(_)
    ));
}

#[test]
fn protobuf_decode_as_fills_missing_type_meta() {
    let registry = Registry::get().unwrap();
    let object = encode(&json!({"metadata": {"name": "d"}}), "apps", "v1", "Deployment").unwrap();
    let (_, _, expected) = decode(&object).unwrap();
    let raw = wire::parse_envelope(&object).unwrap().raw.to_vec();
    // Kind only: the group version comes from the request.
    let kind_only = wire::envelope(registry, "", "Deployment", raw.clone()).unwrap();
    assert_eq!(
        decode_as(&kind_only, "apps", "v1", "Deployment").unwrap(),
        expected
    );
    // Group without version: the default version of the same group.
    let group_only = wire::envelope(registry, "apps/", "", raw.clone()).unwrap();
    assert_eq!(
        decode_as(&group_only, "apps", "v1", "Deployment").unwrap(),
        expected
    );
    // The envelope wins over the defaults.
    let value = decode_as(&object, "", "v1", "ConfigMap").unwrap();
    assert_eq!(value["kind"], "Deployment");
    assert_eq!(value["apiVersion"], "apps/v1");
    // Neither: the request's kind.
    let bare = wire::envelope(registry, "", "", raw).unwrap();
    assert_eq!(decode_as(&bare, "apps", "v1", "Deployment").unwrap(), expected);
}

#[test]
fn protobuf_formats_durations_and_times_as_go() {
    use super::special::{format_duration, format_time, parse_duration, parse_time};
    for (nanos, text) in [
        (0, "0s"),
        (1, "1ns"),
        (1_100, "1.1µs"),
        (2_200_000, "2.2ms"),
        (3_300_000_000, "3.3s"),
        (60_000_000_000, "1m0s"),
        (3_600_000_000_000, "1h0m0s"),
        (5_445_000_000_000, "1h30m45s"),
        (-1_500_000_000, "-1.5s"),
        (i64::MIN, "-2562047h47m16.854775808s"),
    ] {
        assert_eq!(format_duration(nanos), text);
        assert_eq!(parse_duration(text).unwrap(), nanos, "{text}");
    }
    assert_eq!(parse_duration("1.5h").unwrap(), 5_400_000_000_000);
    assert_eq!(parse_duration("300us").unwrap(), 300_000);
    assert_eq!(parse_duration("+.5s").unwrap(), 500_000_000);
    for bad in ["", "1", "h", "1x", ".s", "-", "9999999999999999999h"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        format_time(0, 0, false).unwrap().as_deref(),
        Some("1970-01-01T00:00:00Z")
    );
    assert_eq!(
        format_time(0, 999_999_999, true).unwrap().as_deref(),
        Some("1970-01-01T00:00:00.999999Z")
    );
    assert_eq!(format_time(-62_135_596_800, 0, false).unwrap(), None);
    assert_eq!(
        format_time(-1, 0, false).unwrap().as_deref(),
        Some("1969-12-31T23:59:59Z")
    );
    assert_eq!(parse_time("1969-12-31T23:59:59.5Z").unwrap(), (-1, 500_000_000));
    assert_eq!(parse_time("0001-01-01T00:00:00Z").unwrap(), (-62_135_596_800, 0));
    assert_eq!(
        parse_time("2024-01-02T03:04:05+02:00").unwrap(),
        (1_704_157_445, 0)
    );
}

#[test]
fn protobuf_duration_fields_use_go_strings() {
    let registry = Registry::get().unwrap();
    let info = registry
        .message("k8s.io.apimachinery.pkg.apis.meta.v1.Duration")
        .unwrap();
    // A Duration is not an object; its JSON is the string.
    let message = from_json::object(registry, info, &json!("1h0m0s")).unwrap();
    assert_eq!(
        to_json::message(registry, info, &message).unwrap(),
        json!("1h0m0s")
    );
    assert_eq!(
        wire::encode_message(&message).unwrap(),
        [0x08, 0x80, 0xc0, 0xe2, 0x85, 0xe3, 0x68]
    );
}
