//! The files of configMap, secret, downwardAPI and projected volumes (upstream's
//! `MakePayload` of the configmap and secret plugins, `downwardapi.CollectData` and the
//! projected plugin's `collectData`): keys or items with paths and modes, defaultMode,
//! optional sources, binaryData, and the upstream texts for missing objects and keys.
//!
//! Pure: objects and service account tokens are inputs; writing is the atomic writer's job.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, DownwardAPIVolumeFile, KeyToPath, Pod, ProjectedVolumeSource, Secret,
    SecretVolumeSource,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::atomic_writer::FileProjection;
use crate::pod::fieldref::{FieldRefError, extract_metadata_field, resource_field_value};

/// The files of a volume by relative path.
pub type Payload = BTreeMap<String, FileProjection>;

/// The API's default for `defaultMode` of these volumes.
pub const DEFAULT_MODE: i32 = 0o644;

/// Why a payload could not be made; texts are upstream's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayloadError {
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKey(String),
    #[error("references non-existent secret key: {0}")]
    SecretKey(String),
    #[error(transparent)]
    Field(#[from] FieldRefError),
    /// The caller had no token for a serviceAccountToken projection (its TokenRequest failed).
    #[error("{0}")]
    Token(String),
    #[error("projected volume source {0} is not supported by this node")]
    Unsupported(&'static str),
    /// Several errors, as upstream's aggregate prints them (one error alone, unbracketed).
    #[error("{}", format_aggregate(.0))]
    Aggregate(Vec<String>),
}

fn format_aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Upstream's `NewAggregate`: nothing for no errors, duplicates printed once.
fn aggregate(mut errors: Vec<String>) -> Option<PayloadError> {
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.clone()));
    if errors.is_empty() {
        None
    } else {
        Some(PayloadError::Aggregate(errors))
    }
}

fn mode(mode: Option<i32>, default: i32) -> u32 {
    mode.unwrap_or(default) as u32
}

/// Upstream's configmap `MakePayload`.
pub fn config_map_payload(
    items: Option<&[KeyToPath]>,
    config_map: &ConfigMap,
    default_mode: Option<i32>,
    optional: bool,
) -> Result<Payload, PayloadError> {
    let default = default_mode.unwrap_or(DEFAULT_MODE);
    let data = config_map.data.as_ref();
    let binary = config_map.binary_data.as_ref();
    let mut payload = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in data.into_iter().flatten() {
                payload.insert(
                    k.clone(),
                    FileProjection {
                        data: v.clone().into_bytes(),
                        mode: mode(None, default),
                        fs_user: None,
                    },
                );
            }
            for (k, v) in binary.into_iter().flatten() {
                payload.insert(
                    k.clone(),
                    FileProjection {
                        data: v.0.clone(),
                        mode: mode(None, default),
                        fs_user: None,
                    },
                );
            }
        }
        Some(items) => {
            for item in items {
                let bytes = if let Some(v) = data.and_then(|d| d.get(&item.key)) {
                    v.clone().into_bytes()
                } else if let Some(v) = binary.and_then(|b| b.get(&item.key)) {
                    v.0.clone()
                } else if optional {
                    continue;
                } else {
                    return Err(PayloadError::ConfigMapKey(item.key.clone()));
                };
                payload.insert(
                    item.path.clone(),
                    FileProjection {
                        data: bytes,
                        mode: mode(item.mode, default),
                        fs_user: None,
                    },
                );
            }
        }
    }
    Ok(payload)
}

/// Upstream's secret `MakePayload`.
pub fn secret_payload(
    items: Option<&[KeyToPath]>,
    secret: &Secret,
    default_mode: Option<i32>,
    optional: bool,
) -> Result<Payload, PayloadError> {
    let default = default_mode.unwrap_or(DEFAULT_MODE);
    let data = secret.data.as_ref();
    let mut payload = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in data.into_iter().flatten() {
                payload.insert(
                    k.clone(),
                    FileProjection {
                        data: v.0.clone(),
                        mode: mode(None, default),
                        fs_user: None,
                    },
                );
            }
        }
        Some(items) => {
            for item in items {
                let Some(v) = data.and_then(|d| d.get(&item.key)) else {
                    if optional {
                        continue;
                    }
                    return Err(PayloadError::SecretKey(item.key.clone()));
                };
                payload.insert(
                    item.path.clone(),
                    FileProjection {
                        data: v.0.clone(),
                        mode: mode(item.mode, default),
                        fs_user: None,
                    },
                );
            }
        }
    }
    Ok(payload)
}

/// A configMap volume's files; `config_map` is `None` when it does not exist (an error unless
/// the volume is optional, then an empty volume).
pub fn config_map_volume(
    source: &ConfigMapVolumeSource,
    config_map: Option<&ConfigMap>,
) -> Result<Payload, PayloadError> {
    let optional = source.optional == Some(true);
    let empty = ConfigMap::default();
    let cm = match config_map {
        Some(cm) => cm,
        None if optional => &empty,
        None => return Err(PayloadError::ConfigMapNotFound(source.name.clone())),
    };
    config_map_payload(source.items.as_deref(), cm, source.default_mode, optional)
}

/// A secret volume's files; `secret` is `None` when it does not exist.
pub fn secret_volume(source: &SecretVolumeSource, secret: Option<&Secret>) -> Result<Payload, PayloadError> {
    let optional = source.optional == Some(true);
    let name = source.secret_name.clone().unwrap_or_default();
    let empty = Secret::default();
    let secret = match secret {
        Some(s) => s,
        None if optional => &empty,
        None => return Err(PayloadError::SecretNotFound(name)),
    };
    secret_payload(source.items.as_deref(), secret, source.default_mode, optional)
}

/// Cleans a relative path as Go's `filepath.Clean` does (for paths validation already
/// accepted).
fn clean(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// Upstream's `downwardapi.CollectData`: every item is tried; the errors are aggregated.
pub fn downward_api_payload(
    items: &[DownwardAPIVolumeFile],
    pod: &Pod,
    node_allocatable: &BTreeMap<String, Quantity>,
    default_mode: Option<i32>,
) -> Result<Payload, PayloadError> {
    let default = default_mode.unwrap_or(DEFAULT_MODE);
    let mut errors = Vec::new();
    let mut payload = Payload::new();
    for item in items {
        let mut data = Vec::new();
        if let Some(field) = &item.field_ref {
            match extract_metadata_field(pod, &field.field_path) {
                Ok(v) => data = v.into_bytes(),
                Err(e) => errors.push(e.to_string()),
            }
        } else if let Some(res) = &item.resource_field_ref {
            match resource_field_value(res, pod, None, node_allocatable) {
                Ok(v) => data = v.into_bytes(),
                Err(e) => errors.push(e.to_string()),
            }
        }
        payload.insert(
            clean(&item.path),
            FileProjection {
                data,
                mode: mode(item.mode, default),
                fs_user: None,
            },
        );
    }
    match aggregate(errors) {
        None => Ok(payload),
        Some(e) => Err(e),
    }
}

/// What a projected volume draws on besides the pod.
#[derive(Clone, Debug, Default)]
pub struct ProjectedInputs {
    pub config_maps: BTreeMap<String, ConfigMap>,
    pub secrets: BTreeMap<String, Secret>,
    pub node_allocatable: BTreeMap<String, Quantity>,
    /// Service account tokens by projection path, from TokenRequest; an error text for a
    /// path whose request failed.
    pub tokens: BTreeMap<String, Result<String, String>>,
    /// The pod's fsUser and fsGroup (tokens are then 0600 and owned by fsUser).
    pub fs_user: Option<u32>,
    pub fs_group: Option<u32>,
}

/// The projected plugin's `collectData`: sources in order, later paths win, errors aggregated.
pub fn projected_volume(
    source: &ProjectedVolumeSource,
    pod: &Pod,
    inputs: &ProjectedInputs,
) -> Result<Payload, PayloadError> {
    let default_mode = source.default_mode.or(Some(DEFAULT_MODE));
    let mut errors = Vec::new();
    let mut payload = Payload::new();
    for projection in source.sources.iter().flatten() {
        let part = if let Some(s) = &projection.secret {
            let optional = s.optional == Some(true);
            match inputs.secrets.get(&s.name) {
                Some(secret) => secret_payload(s.items.as_deref(), secret, default_mode, optional),
                None if optional => {
                    secret_payload(s.items.as_deref(), &Secret::default(), default_mode, optional)
                }
                None => Err(PayloadError::SecretNotFound(s.name.clone())),
            }
        } else if let Some(c) = &projection.config_map {
            let optional = c.optional == Some(true);
            match inputs.config_maps.get(&c.name) {
                Some(cm) => config_map_payload(c.items.as_deref(), cm, default_mode, optional),
                None if optional => {
                    config_map_payload(c.items.as_deref(), &ConfigMap::default(), default_mode, optional)
                }
                None => Err(PayloadError::ConfigMapNotFound(c.name.clone())),
            }
        } else if let Some(d) = &projection.downward_api {
            downward_api_payload(
                d.items.as_deref().unwrap_or(&[]),
                pod,
                &inputs.node_allocatable,
                default_mode,
            )
        } else if let Some(t) = &projection.service_account_token {
            let file_mode = if inputs.fs_user.is_some() || inputs.fs_group.is_some() {
                0o600
            } else {
                mode(default_mode, DEFAULT_MODE)
            };
            match inputs.tokens.get(&t.path) {
                Some(Ok(token)) => Ok(Payload::from([(
                    t.path.clone(),
                    FileProjection {
                        data: token.clone().into_bytes(),
                        mode: file_mode,
                        fs_user: inputs.fs_user,
                    },
                )])),
                Some(Err(e)) => Err(PayloadError::Token(e.clone())),
                None => Err(PayloadError::Token(format!(
                    "no service account token for path {:?}",
                    t.path
                ))),
            }
        } else if projection.cluster_trust_bundle.is_some() {
            Err(PayloadError::Unsupported("clusterTrustBundle"))
        } else if projection.pod_certificate.is_some() {
            Err(PayloadError::Unsupported("podCertificate"))
        } else {
            Ok(Payload::new())
        };
        match part {
            Ok(part) => payload.extend(part),
            Err(e) => errors.push(e.to_string()),
        }
    }
    match aggregate(errors) {
        None => Ok(payload),
        Some(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{
        ConfigMapProjection, Container, DownwardAPIProjection, ObjectFieldSelector, PodSpec,
        ResourceFieldSelector, ResourceRequirements, SecretProjection, ServiceAccountTokenProjection,
        VolumeProjection,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn cm() -> ConfigMap {
        ConfigMap {
            data: Some([("a".into(), "alpha".into()), ("b".into(), "beta".into())].into()),
            binary_data: Some([("bin".into(), ByteString(vec![0, 1, 2]))].into()),
            ..Default::default()
        }
    }

    fn secret() -> Secret {
        Secret {
            data: Some([("token".into(), ByteString(b"s3cr3t".to_vec()))].into()),
            ..Default::default()
        }
    }

    fn ktp(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
        }
    }

    #[test]
    fn config_map_all_keys_and_items() {
        let p = config_map_volume(
            &ConfigMapVolumeSource {
                name: "cm".into(),
                ..Default::default()
            },
            Some(&cm()),
        )
        .unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), ["a", "b", "bin"]);
        assert_eq!(p["bin"].data, vec![0, 1, 2]);
        assert_eq!(p["a"].mode, 0o644);

        let source = ConfigMapVolumeSource {
            name: "cm".into(),
            default_mode: Some(0o600),
            items: Some(vec![
                ktp("a", "dir/a.txt", Some(0o400)),
                ktp("bin", "b.bin", None),
            ]),
            ..Default::default()
        };
        let p = config_map_volume(&source, Some(&cm())).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), ["b.bin", "dir/a.txt"]);
        assert_eq!(p["dir/a.txt"].mode, 0o400);
        assert_eq!(p["b.bin"].mode, 0o600);

        let missing = ConfigMapVolumeSource {
            name: "cm".into(),
            items: Some(vec![ktp("zz", "z", None)]),
            ..Default::default()
        };
        assert_eq!(
            config_map_volume(&missing, Some(&cm())).unwrap_err().to_string(),
            "configmap references non-existent config key: zz"
        );
        let optional = ConfigMapVolumeSource {
            optional: Some(true),
            ..missing.clone()
        };
        assert!(config_map_volume(&optional, Some(&cm())).unwrap().is_empty());
        assert_eq!(
            config_map_volume(&missing, None).unwrap_err().to_string(),
            "configmap \"cm\" not found"
        );
        assert!(config_map_volume(&optional, None).unwrap().is_empty());
    }

    #[test]
    fn secret_volume_texts() {
        let source = SecretVolumeSource {
            secret_name: Some("s".into()),
            ..Default::default()
        };
        let p = secret_volume(&source, Some(&secret())).unwrap();
        assert_eq!(p["token"].data, b"s3cr3t");
        assert_eq!(p["token"].mode, 0o644);
        assert_eq!(
            secret_volume(&source, None).unwrap_err().to_string(),
            "secret \"s\" not found"
        );
        let items = SecretVolumeSource {
            items: Some(vec![ktp("nope", "n", None)]),
            ..source
        };
        assert_eq!(
            secret_volume(&items, Some(&secret())).unwrap_err().to_string(),
            "references non-existent secret key: nope"
        );
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                labels: Some([("a".into(), "1".into()), ("b".into(), "two".into())].into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    resources: Some(ResourceRequirements {
                        requests: Some([("memory".into(), Quantity("16Mi".into()))].into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn field_file(path: &str, field: &str) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.into(),
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: field.into(),
            }),
            ..Default::default()
        }
    }

    fn limit_file(path: &str) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.into(),
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: Some("c".into()),
                divisor: Some(Quantity("1Mi".into())),
                resource: "limits.memory".into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn downward_api_files() {
        let alloc: BTreeMap<String, Quantity> = [("memory".into(), Quantity("1Gi".into()))].into();
        let items = vec![
            field_file("labels", "metadata.labels"),
            field_file("./n/name", "metadata.name"),
            limit_file("mem"),
        ];
        let p = downward_api_payload(&items, &pod(), &alloc, None).unwrap();
        assert_eq!(p["labels"].data, b"a=\"1\"\nb=\"two\"");
        assert_eq!(p["n/name"].data, b"p");
        assert_eq!(p["mem"].data, b"1024");
        let bad = vec![field_file("x", "spec.nodeName"), field_file("y", "status.podIP")];
        assert_eq!(
            downward_api_payload(&bad, &pod(), &alloc, None)
                .unwrap_err()
                .to_string(),
            "[unsupported fieldPath: spec.nodeName, unsupported fieldPath: status.podIP]"
        );
    }

    #[test]
    fn projected_sources_merge() {
        let source = ProjectedVolumeSource {
            default_mode: Some(0o640),
            sources: Some(vec![
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "cm".into(),
                        items: Some(vec![ktp("a", "a", None)]),
                        optional: None,
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    secret: Some(SecretProjection {
                        name: "s".into(),
                        items: None,
                        optional: None,
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    secret: Some(SecretProjection {
                        name: "absent".into(),
                        items: None,
                        optional: Some(true),
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![field_file("ns", "metadata.namespace")]),
                    }),
                    ..Default::default()
                },
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        path: "sa/token".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ]),
        };
        let mut inputs = ProjectedInputs {
            config_maps: [("cm".into(), cm())].into(),
            secrets: [("s".into(), secret())].into(),
            tokens: [("sa/token".into(), Ok("jwt".into()))].into(),
            ..Default::default()
        };
        let p = projected_volume(&source, &pod(), &inputs).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), ["a", "ns", "sa/token", "token"]);
        assert_eq!(p["a"].mode, 0o640);
        assert_eq!(p["sa/token"].mode, 0o640);
        assert_eq!(p["ns"].data, b"ns");
        inputs.fs_group = Some(2000);
        assert_eq!(
            projected_volume(&source, &pod(), &inputs).unwrap()["sa/token"].mode,
            0o600
        );

        inputs.secrets.clear();
        inputs.tokens.clear();
        assert_eq!(
            projected_volume(&source, &pod(), &inputs)
                .unwrap_err()
                .to_string(),
            "[secret \"s\" not found, no service account token for path \"sa/token\"]"
        );
    }
}
