//! Setting up a pod's volumes on the node: reads what they draw on from the API (ConfigMaps,
//! Secrets, service account tokens through TokenRequest, claims and their volumes) and writes
//! them with the pod volume plugins of [`crate::pod::volumes`]; tears them down again.
//!
//! It does not mount volumes into containers (that is the container's spec) and does not
//! decide when to set up or tear down.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret, ServiceAccount, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

use super::layout::Layout;
use crate::pod::volumes::atomic_writer::WriterError;
use crate::pod::volumes::payload::{self, Payload, ProjectedInputs};
use crate::pod::volumes::{AtomicWriter, emptydir, hostpath, ownership};

/// Why a volume could not be set up; the message goes into a FailedMount event.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("MountVolume.SetUp failed for volume {volume:?} : {message}")]
    SetUp { volume: String, message: String },
    #[error("reading {what}: {source}")]
    Api { what: String, source: kube::Error },
}

const EMPTY_DIR: &str = "kubernetes.io~empty-dir";
const CONFIG_MAP: &str = "kubernetes.io~configmap";
const SECRET: &str = "kubernetes.io~secret";
const DOWNWARD_API: &str = "kubernetes.io~downward-api";
const PROJECTED: &str = "kubernetes.io~projected";

/// What a volume needs written, once its inputs were read.
enum Source {
    EmptyDir(k8s_openapi::api::core::v1::EmptyDirVolumeSource),
    HostPath(PathBuf, Option<String>),
    /// A claim bound to a `local` volume (which manages ownership, unlike hostPath), and
    /// whether the pod mounts it read-only.
    Local(PathBuf, bool),
    Files(&'static str, Payload),
}

/// Reads every input of the pod's volumes and sets them up; returns each volume's host path.
pub async fn set_up(
    client: &Client,
    layout: &Layout,
    pod: &Pod,
    node_allocatable: &BTreeMap<String, Quantity>,
) -> Result<BTreeMap<String, PathBuf>, VolumeError> {
    let namespace = pod.namespace().unwrap_or_default();
    let uid = pod.uid().unwrap_or_default();
    let volumes: Vec<Volume> = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    let mut sources = Vec::new();
    for volume in &volumes {
        let fail = |message: String| VolumeError::SetUp {
            volume: volume.name.clone(),
            message,
        };
        let source = if let Some(source) = &volume.empty_dir {
            Source::EmptyDir(source.clone())
        } else if let Some(source) = &volume.host_path {
            Source::HostPath(PathBuf::from(&source.path), source.type_.clone())
        } else if let Some(source) = &volume.config_map {
            let cm = get::<ConfigMap>(client, &namespace, &source.name).await?;
            let files = payload::config_map_volume(source, cm.as_ref()).map_err(|e| fail(e.to_string()))?;
            Source::Files(CONFIG_MAP, files)
        } else if let Some(source) = &volume.secret {
            let name = source.secret_name.clone().unwrap_or_default();
            let secret = get::<Secret>(client, &namespace, &name).await?;
            let files = payload::secret_volume(source, secret.as_ref()).map_err(|e| fail(e.to_string()))?;
            Source::Files(SECRET, files)
        } else if let Some(source) = &volume.downward_api {
            let files = payload::downward_api_payload(
                source.items.as_deref().unwrap_or(&[]),
                pod,
                node_allocatable,
                source.default_mode,
            )
            .map_err(|e| fail(e.to_string()))?;
            Source::Files(DOWNWARD_API, files)
        } else if let Some(source) = &volume.projected {
            let mut inputs = ProjectedInputs {
                node_allocatable: node_allocatable.clone(),
                fs_group: pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.security_context.as_ref())
                    .and_then(|s| s.fs_group)
                    .map(|g| g as u32),
                ..ProjectedInputs::default()
            };
            for projection in source.sources.iter().flatten() {
                if let Some(cm) = &projection.config_map
                    && let Some(found) = get::<ConfigMap>(client, &namespace, &cm.name).await?
                {
                    inputs.config_maps.insert(cm.name.clone(), found);
                }
                if let Some(secret) = &projection.secret
                    && let Some(found) = get::<Secret>(client, &namespace, &secret.name).await?
                {
                    inputs.secrets.insert(secret.name.clone(), found);
                }
                if let Some(token) = &projection.service_account_token {
                    let result = request_token(client, pod, token).await;
                    inputs.tokens.insert(token.path.clone(), result);
                }
            }
            let files = payload::projected_volume(source, pod, &inputs).map_err(|e| fail(e.to_string()))?;
            Source::Files(PROJECTED, files)
        } else if let Some(source) = &volume.persistent_volume_claim {
            match claim_path(client, &namespace, &source.claim_name)
                .await
                .map_err(fail)?
            {
                (path, true) => Source::Local(path, source.read_only == Some(true)),
                (path, false) => Source::HostPath(path, None),
            }
        } else {
            return Err(fail("this volume type is not supported by this node".to_owned()));
        };
        sources.push((volume.name.clone(), source));
    }
    let layout = layout.clone();
    let pod = pod.clone();
    let memory = node_allocatable
        .get("memory")
        .and_then(|q| rudder_machinery::validation::quantity::parse_quantity(&q.0).ok())
        .map_or(0, |q| q.value());
    let context = format!("pod {namespace}/{} volume", pod.name_any());
    let security = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let fs_group = security.and_then(|s| s.fs_group).map(|g| g as u32);
    let change_policy = security.and_then(|s| s.fs_group_change_policy.clone());
    tokio::task::spawn_blocking(move || {
        let mut paths = BTreeMap::new();
        for (name, source) in sources {
            let fail = |message: String| VolumeError::SetUp {
                volume: name.clone(),
                message,
            };
            let path = match source {
                Source::EmptyDir(source) => {
                    let dir = layout.volume_dir(&uid, EMPTY_DIR, &name);
                    emptydir::setup_empty_dir(&dir, &source, &pod, memory)
                        .map_err(|e| fail(e.to_string()))?;
                    // Upstream sets an emptyDir's ownership every time, ignoring failures
                    // and the change policy.
                    if let Some(group) = fs_group
                        && let Err(err) = ownership::set_volume_ownership(&dir, group, false)
                    {
                        tracing::warn!(volume = name, error = %err, "setting volume ownership failed");
                    }
                    dir
                }
                Source::HostPath(path, kind) => {
                    hostpath::check_type(&path, kind.as_deref()).map_err(|e| fail(e.to_string()))?;
                    path
                }
                Source::Local(path, read_only) => {
                    // A local volume takes the pod's fsGroup unless mounted read-only, with
                    // its change policy.
                    if let Some(group) = fs_group
                        && !read_only
                        && (change_policy.as_deref() != Some("OnRootMismatch")
                            || ownership::requires_permission_change(&path, group, false))
                    {
                        ownership::set_volume_ownership(&path, group, false)
                            .map_err(|e| fail(e.to_string()))?;
                    }
                    path
                }
                Source::Files(plugin, files) => {
                    let dir = layout.volume_dir(&uid, plugin, &name);
                    if !dir.exists() {
                        // Upstream backs these volumes with an emptyDir: a 0777 directory
                        // that, still empty, takes the fsGroup read-write.
                        std::fs::create_dir_all(&dir)
                            .and_then(|()| {
                                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                            })
                            .map_err(|e| fail(format!("mkdir {}: {e}", dir.display())))?;
                        if let Some(group) = fs_group
                            && let Err(err) = ownership::set_volume_ownership(&dir, group, false)
                        {
                            tracing::warn!(volume = name, error = %err, "setting volume ownership failed");
                        }
                    }
                    // Written volumes are read-only to the pod: the group may read; the
                    // whole volume changes, new files beside the timestamped directory too.
                    let set_perms = |_: &str| match fs_group {
                        Some(group) => ownership::set_volume_ownership(&dir, group, true).map_err(
                            |ownership::OwnershipError::Io(path, source)| WriterError::Io {
                                context: "setting volume ownership",
                                path,
                                source,
                            },
                        ),
                        None => Ok(()),
                    };
                    AtomicWriter::new(&dir, format!("{context} {name}"))
                        .and_then(|writer| writer.write(&files, Some(&set_perms)))
                        .map_err(|e| fail(e.to_string()))?;
                    dir
                }
            };
            paths.insert(name, path);
        }
        Ok(paths)
    })
    .await
    .map_err(|err| VolumeError::SetUp {
        volume: String::new(),
        message: err.to_string(),
    })?
}

async fn get<K>(client: &Client, namespace: &str, name: &str) -> Result<Option<K>, VolumeError>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    Api::<K>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(|source| VolumeError::Api {
            what: format!("{} {namespace}/{name}", K::kind(&())),
            source,
        })
}

/// A service account token bound to the pod, as the kubelet's token manager requests it.
async fn request_token(
    client: &Client,
    pod: &Pod,
    projection: &k8s_openapi::api::core::v1::ServiceAccountTokenProjection,
) -> Result<String, String> {
    let namespace = pod.namespace().unwrap_or_default();
    let account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".to_owned());
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: projection.audience.iter().cloned().collect(),
            expiration_seconds: projection.expiration_seconds,
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("Pod".to_owned()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..TokenRequest::default()
    };
    Api::<ServiceAccount>::namespaced(client.clone(), &namespace)
        .create_token_request(&account, &PostParams::default(), &request)
        .await
        .map_err(|err| format!("failed to fetch token: {err}"))
        .and_then(|answer| {
            answer
                .status
                .map(|s| s.token)
                .ok_or_else(|| "failed to fetch token: the answer has no status".to_owned())
        })
}

/// The host directory behind a bound claim whose volume is a hostPath or local volume, and
/// whether it is a local one.
async fn claim_path(client: &Client, namespace: &str, claim: &str) -> Result<(PathBuf, bool), String> {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let found = claims.get_opt(claim).await.map_err(|e| e.to_string())?;
    let volume_name = found
        .and_then(|c| c.spec)
        .and_then(|s| s.volume_name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("persistentvolumeclaim {claim:?} is not bound"))?;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let volume = volumes.get(&volume_name).await.map_err(|e| e.to_string())?;
    let spec = volume.spec.unwrap_or_default();
    if let Some(host) = spec.host_path {
        return Ok((PathBuf::from(host.path), false));
    }
    if let Some(local) = spec.local {
        return Ok((PathBuf::from(local.path), true));
    }
    Err(format!(
        "persistentvolume {volume_name:?} is neither a hostPath nor a local volume, which this node cannot mount"
    ))
}

/// Removes the pod's volume directories (unmounting memory-backed emptyDirs).
pub fn tear_down(layout: &Layout, uid: &str) -> Result<(), VolumeError> {
    let root = layout.pod_dir(uid).join("volumes");
    let empty_dirs = root.join(EMPTY_DIR);
    if let Ok(entries) = std::fs::read_dir(&empty_dirs) {
        for entry in entries.flatten() {
            emptydir::teardown_empty_dir(&entry.path()).map_err(|e| VolumeError::SetUp {
                volume: entry.file_name().to_string_lossy().into_owned(),
                message: e.to_string(),
            })?;
        }
    }
    remove_all(&root).map_err(|e| VolumeError::SetUp {
        volume: String::new(),
        message: e.to_string(),
    })
}

pub(crate) fn remove_all(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}
