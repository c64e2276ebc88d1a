//! StatefulSet revisions as upstream records them (pkg/controller/statefulset getPatch,
//! newRevision, ApplyRevision and pkg/controller/history): the revision data is a strategic
//! merge patch replacing `spec.template`, serialised exactly as upstream's Go encoder writes
//! it (the Go JSON of the defaulted template: Go's omission rules, sorted keys, Go's string
//! escaping), so revision names and hashes equal a real cluster's. Pure: no I/O.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::OnceLock;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{Map, Value};

use crate::history::{revision_hash, revision_name};
use crate::pods::controller_ref;
use crate::template_hash::{GoType, table};

/// The label holding a revision's hash (upstream's ControllerRevisionHashLabel).
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// The fields of the template's Go types whose JSON tag has neither `omitempty` nor
/// `omitzero` (k8s.io/api v0.35.4): Go writes them even when they are zero. Struct-typed fields
/// are written regardless of their tag, except `ObjectMeta.creationTimestamp` (`omitzero`).
const ALWAYS_WRITTEN: &[(&str, &str)] = &[
    ("v1.AWSElasticBlockStoreVolumeSource", "volumeID"),
    ("v1.AppArmorProfile", "type"),
    ("v1.AzureDiskVolumeSource", "diskName"),
    ("v1.AzureDiskVolumeSource", "diskURI"),
    ("v1.AzureFileVolumeSource", "secretName"),
    ("v1.AzureFileVolumeSource", "shareName"),
    ("v1.CSIVolumeSource", "driver"),
    ("v1.CephFSVolumeSource", "monitors"),
    ("v1.CinderVolumeSource", "volumeID"),
    ("v1.ClusterTrustBundleProjection", "path"),
    ("v1.ConfigMapKeySelector", "key"),
    ("v1.Container", "name"),
    ("v1.ContainerPort", "containerPort"),
    ("v1.ContainerResizePolicy", "resourceName"),
    ("v1.ContainerResizePolicy", "restartPolicy"),
    ("v1.DownwardAPIVolumeFile", "path"),
    ("v1.EnvVar", "name"),
    ("v1.EphemeralContainerCommon", "name"),
    ("v1.FileKeySelector", "key"),
    ("v1.FileKeySelector", "path"),
    ("v1.FileKeySelector", "volumeName"),
    ("v1.FlexVolumeSource", "driver"),
    ("v1.GCEPersistentDiskVolumeSource", "pdName"),
    ("v1.GRPCAction", "port"),
    ("v1.GRPCAction", "service"),
    ("v1.GitRepoVolumeSource", "repository"),
    ("v1.GlusterfsVolumeSource", "endpoints"),
    ("v1.GlusterfsVolumeSource", "path"),
    ("v1.HTTPGetAction", "port"),
    ("v1.HTTPHeader", "name"),
    ("v1.HTTPHeader", "value"),
    ("v1.HostAlias", "ip"),
    ("v1.HostPathVolumeSource", "path"),
    ("v1.ISCSIVolumeSource", "iqn"),
    ("v1.ISCSIVolumeSource", "lun"),
    ("v1.ISCSIVolumeSource", "targetPortal"),
    ("v1.KeyToPath", "key"),
    ("v1.KeyToPath", "path"),
    ("v1.LabelSelectorRequirement", "key"),
    ("v1.LabelSelectorRequirement", "operator"),
    ("v1.NFSVolumeSource", "path"),
    ("v1.NFSVolumeSource", "server"),
    ("v1.NodeSelector", "nodeSelectorTerms"),
    ("v1.NodeSelectorRequirement", "key"),
    ("v1.NodeSelectorRequirement", "operator"),
    ("v1.ObjectFieldSelector", "fieldPath"),
    ("v1.OwnerReference", "apiVersion"),
    ("v1.OwnerReference", "kind"),
    ("v1.OwnerReference", "name"),
    ("v1.OwnerReference", "uid"),
    ("v1.PersistentVolumeClaimTemplate", "spec"),
    ("v1.PersistentVolumeClaimVolumeSource", "claimName"),
    ("v1.PhotonPersistentDiskVolumeSource", "pdID"),
    ("v1.PodAffinityTerm", "topologyKey"),
    ("v1.PodOS", "name"),
    ("v1.PodReadinessGate", "conditionType"),
    ("v1.PodResourceClaim", "name"),
    ("v1.PodSchedulingGate", "name"),
    ("v1.PodSpec", "containers"),
    ("v1.PortworxVolumeSource", "volumeID"),
    ("v1.PreferredSchedulingTerm", "preference"),
    ("v1.PreferredSchedulingTerm", "weight"),
    ("v1.ProjectedVolumeSource", "sources"),
    ("v1.QuobyteVolumeSource", "registry"),
    ("v1.QuobyteVolumeSource", "volume"),
    ("v1.RBDVolumeSource", "image"),
    ("v1.RBDVolumeSource", "monitors"),
    ("v1.ResourceClaim", "name"),
    ("v1.ResourceFieldSelector", "resource"),
    ("v1.ScaleIOVolumeSource", "gateway"),
    ("v1.ScaleIOVolumeSource", "secretRef"),
    ("v1.ScaleIOVolumeSource", "system"),
    ("v1.SeccompProfile", "type"),
    ("v1.SecretKeySelector", "key"),
    ("v1.ServiceAccountTokenProjection", "path"),
    ("v1.SleepAction", "seconds"),
    ("v1.Sysctl", "name"),
    ("v1.Sysctl", "value"),
    ("v1.TCPSocketAction", "port"),
    ("v1.TopologySpreadConstraint", "maxSkew"),
    ("v1.TopologySpreadConstraint", "topologyKey"),
    ("v1.TopologySpreadConstraint", "whenUnsatisfiable"),
    ("v1.TypedLocalObjectReference", "apiGroup"),
    ("v1.TypedLocalObjectReference", "kind"),
    ("v1.TypedLocalObjectReference", "name"),
    ("v1.TypedObjectReference", "apiGroup"),
    ("v1.TypedObjectReference", "kind"),
    ("v1.TypedObjectReference", "name"),
    ("v1.Volume", "name"),
    ("v1.VolumeDevice", "devicePath"),
    ("v1.VolumeDevice", "name"),
    ("v1.VolumeMount", "mountPath"),
    ("v1.VolumeMount", "name"),
    ("v1.VsphereVirtualDiskVolumeSource", "volumePath"),
    ("v1.WeightedPodAffinityTerm", "podAffinityTerm"),
    ("v1.WeightedPodAffinityTerm", "weight"),
    ("v1.WorkloadReference", "name"),
    ("v1.WorkloadReference", "podGroup"),
];

/// Fields of struct type that Go omits when zero (`omitzero`).
const OMIT_ZERO: &[(&str, &str)] = &[("v1.ObjectMeta", "creationTimestamp")];

fn always_written() -> &'static HashSet<(&'static str, &'static str)> {
    static SET: OnceLock<HashSet<(&'static str, &'static str)>> = OnceLock::new();
    SET.get_or_init(|| ALWAYS_WRITTEN.iter().copied().collect())
}

/// Whether a JSON value is what the controller's (protobuf-decoded) Go struct holds as nil or
/// zero for a field of this Go kind, so that `omitempty` drops it.
fn is_empty(kind: &str, v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => kind == "map" && o.is_empty(),
        Value::String(s) => kind == "string" && s.is_empty(),
        Value::Bool(b) => kind == "bool" && !b,
        Value::Number(n) => kind == "int" && n.as_f64() == Some(0.0),
    }
}

/// The zero value Go writes for a field it always writes.
fn zero(table: &HashMap<String, GoType>, type_: &str) -> Value {
    match table.get(type_).map(|t| t.kind.as_str()) {
        Some("struct") => go_value(table, type_, &Value::Object(Map::new())),
        Some("string") => Value::String(String::new()),
        Some("int" | "intorstring") => Value::from(0),
        Some("bool") => Value::Bool(false),
        Some("quantity") => Value::String("0".into()),
        _ => Value::Null,
    }
}

/// `v` (a value of Go type `type_`) as Go's encoder writes it: fields Go omits dropped,
/// fields Go always writes added.
fn go_value(table: &HashMap<String, GoType>, type_: &str, v: &Value) -> Value {
    let Some(t) = table.get(type_) else {
        return v.clone();
    };
    match t.kind.as_str() {
        "struct" => {
            let mut out = Map::new();
            struct_fields(table, type_, v, &mut out);
            Value::Object(out)
        }
        "ptr" => match v {
            Value::Null => Value::Null,
            inner => go_value(table, &t.elem, inner),
        },
        "slice" => match v {
            Value::Array(items) if !items.is_empty() => {
                Value::Array(items.iter().map(|item| go_value(table, &t.elem, item)).collect())
            }
            _ => Value::Null,
        },
        "map" => match v {
            Value::Object(map) if !map.is_empty() => Value::Object(
                map.iter()
                    .map(|(k, item)| (k.clone(), go_value(table, &t.elem, item)))
                    .collect(),
            ),
            _ => Value::Null,
        },
        _ => v.clone(),
    }
}

fn struct_fields(table: &HashMap<String, GoType>, type_: &str, v: &Value, out: &mut Map<String, Value>) {
    let Some(t) = table.get(type_) else {
        return;
    };
    let object = v.as_object();
    for field in &t.fields {
        if field.inline {
            struct_fields(table, &field.type_, v, out);
            continue;
        }
        if field.json.is_empty() || field.json == "-" {
            continue;
        }
        let kind = table.get(&field.type_).map_or("unsupported", |f| f.kind.as_str());
        let value = object.and_then(|o| o.get(&field.json));
        let key = (type_, field.json.as_str());
        let struct_like = matches!(kind, "struct" | "time" | "quantity" | "intorstring");
        let always = always_written().contains(&key) || (struct_like && !OMIT_ZERO.contains(&key));
        match value {
            Some(value) if !is_empty(kind, value) => {
                out.insert(field.json.clone(), go_value(table, &field.type_, value));
            }
            _ if always => {
                let written = match value {
                    Some(value) if kind != "slice" && kind != "map" && !value.is_null() => {
                        go_value(table, &field.type_, value)
                    }
                    _ => zero(table, &field.type_),
                };
                out.insert(field.json.clone(), written);
            }
            _ => {}
        }
    }
}

/// Writes `v` as Go's `json.Marshal` writes a `map[string]interface{}`: sorted keys, no
/// spaces, HTML characters and U+2028/U+2029 escaped.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, v);
    out
}

fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else {
                let _ = write!(out, "{}", n.as_f64().unwrap_or(0.0));
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            out.push('{');
            for (i, (key, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Upstream's getPatch: `{"spec":{"template":{...,"$patch":"replace"}}}` of the set's
/// template, as the bytes upstream writes.
pub fn patch(template: &PodTemplateSpec) -> String {
    let json = serde_json::to_value(template).unwrap_or_default();
    let mut go = match table() {
        Some(table) => go_value(table, "v1.PodTemplateSpec", &json),
        None => json,
    };
    if let Value::Object(map) = &mut go {
        map.insert("$patch".into(), Value::String("replace".into()));
    }
    go_json(&serde_json::json!({"spec": {"template": go}}))
}

/// The bytes of a stored revision's data as upstream compares them.
pub fn data_bytes(revision: &ControllerRevision) -> String {
    revision.data.as_ref().map(|d| go_json(&d.0)).unwrap_or_default()
}

/// Upstream's newRevision: the revision of `set`'s current template, numbered `number`, named
/// by the hash of its data and `collision_count`.
pub fn new_revision(set: &StatefulSet, number: i64, collision_count: i32) -> ControllerRevision {
    let data = patch(&set.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default());
    named_revision(set, &data, number, collision_count)
}

/// A revision with `data` (patch bytes) for `set`, named for `collision_count`.
pub fn named_revision(
    set: &StatefulSet,
    data: &str,
    number: i64,
    collision_count: i32,
) -> ControllerRevision {
    let hash = revision_hash(data.as_bytes(), Some(collision_count));
    let mut labels = set
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone());
    let annotations = set.metadata.annotations.clone().unwrap_or_default();
    let value: Value = serde_json::from_str(data).unwrap_or(Value::Null);
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(
                &set.metadata.name.clone().unwrap_or_default(),
                &hash,
            )),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![controller_ref(set)]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(value)),
        revision: number,
    }
}

/// Upstream's EqualRevision: the same data bytes.
pub fn equal(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    data_bytes(a) == data_bytes(b)
}

/// Upstream's ApplyRevision: the template the revision restores (its patch replaces the whole
/// template), or `None` when the revision holds none.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    if let Value::Object(map) = &mut template {
        map.remove("$patch");
    }
    serde_json::from_value(template).ok()
}

/// Upstream's byRevision order: by revision number, then creation time, then name.
pub fn by_revision(a: &ControllerRevision, b: &ControllerRevision) -> std::cmp::Ordering {
    let time = |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
    a.revision
        .cmp(&b.revision)
        .then_with(|| time(a).cmp(&time(b)))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A set and the revision a v1.34 cluster recorded for it (upstream's
    /// pkg/controller/statefulset/testdata/compatibility_*_1.34.0.json).
    #[test]
    fn revision_equals_upstreams() {
        let template: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"annotations": {"test": "value"}, "labels": {"app": "foo"}},
            "spec": {
                "containers": [{"image": "test", "imagePullPolicy": "Always", "name": "test",
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"}],
                "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                "schedulerName": "default-scheduler", "securityContext": {},
                "terminationGracePeriodSeconds": 30
            }
        }))
        .unwrap();
        let data = patch(&template);
        assert_eq!(
            data,
            r#"{"spec":{"template":{"$patch":"replace","metadata":{"annotations":{"test":"value"},"labels":{"app":"foo"}},"spec":{"containers":[{"image":"test","imagePullPolicy":"Always","name":"test","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}}}}"#
        );
        assert_eq!(revision_hash(data.as_bytes(), Some(0)), "776999688b");
    }

    #[test]
    fn go_omits_and_escapes_like_go() {
        let template: PodTemplateSpec = serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"a": "b"}, "creationTimestamp": null},
            "spec": {"hostNetwork": false, "nodeSelector": {},
                "containers": [{"name": "c", "image": "x", "args": ["a<b&c"],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}
        }))
        .unwrap();
        let data = patch(&template);
        assert!(!data.contains("hostNetwork"), "{data}");
        assert!(!data.contains("nodeSelector"), "{data}");
        assert!(!data.contains("creationTimestamp"), "{data}");
        assert!(data.contains(r#""args":["a\u003cb\u0026c"]"#), "{data}");
        assert!(
            data.contains(r#""ports":[{"containerPort":80,"protocol":"TCP"}]"#),
            "{data}"
        );
        assert!(data.contains(r#""resources":{}"#), "{data}");
    }

    #[test]
    fn revisions_restore_their_template() {
        let set: StatefulSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u", "annotations": {"k": "v"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        }))
        .unwrap();
        let revision = new_revision(&set, 3, 0);
        assert_eq!(revision.revision, 3);
        let name = revision.metadata.name.clone().unwrap();
        let hash = revision.metadata.labels.as_ref().unwrap()[HASH_LABEL].clone();
        assert_eq!(name, format!("web-{hash}"));
        assert_eq!(revision.metadata.labels.as_ref().unwrap()["app"], "web");
        assert_eq!(revision.metadata.annotations.as_ref().unwrap()["k"], "v");
        let restored = template_of(&revision).unwrap();
        assert_eq!(
            restored.spec.unwrap().containers[0].image.as_deref(),
            Some("nginx")
        );
        assert_ne!(new_revision(&set, 3, 1).metadata.name.unwrap(), name);
        assert!(equal(&revision, &new_revision(&set, 7, 0)));
    }
}
