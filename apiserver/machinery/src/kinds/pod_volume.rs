//! Volumes of a pod spec: scheme defaults and validation, shared by every kind with a pod
//! template.
//!
//! Ports `SetDefaults_Volume` and the generated volume-source defaults of pkg/apis/core/v1
//! (emptyDir when no source is set, `defaultMode: 420`, hostPath type `""`, downward API field
//! selectors, service account token expiry, the legacy plugins' defaults), and upstream's
//! `ValidateVolumes` / `validateVolumeSource` with the checks of every source, including
//! upstream's quirks in error paths (`downwarAPI`, `cephFS`, `persistentDisk`).
//! Cluster trust bundle and pod certificate projections are dropped before validation (their
//! features are off in 1.35) and are only counted as sources here.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    DownwardAPIVolumeFile, KeyToPath, PersistentVolumeClaimSpec, ProjectedVolumeSource, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::pod_container::{
    default_object_field_selector, default_resource_field_selector, image_tag_is_latest,
    validate_container_resource_field_selector, validate_object_field_selector, validate_pull_policy,
};
use super::pod_spec::{
    PodValidationOptions, none_if_empty, str_of, validate_local_descending_path,
    validate_local_non_reserved_path, validate_path_no_backsteps,
};
use crate::field::{ErrorList, FieldError, Path};
use crate::validation::{
    LabelSelectorValidationOptions, canonicalize_quantity, inclusive_range_error, is_dns1123_subdomain,
    name_errors, name_is_dns_subdomain, parse_quantity, set_defaults_resource_list, validate_annotations,
    validate_dns1123_label, validate_label_selector, validate_labels, validate_positive_quantity_value,
    validate_resource_quantity_value,
};

/// What the rest of pod validation needs to know about a valid volume.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VolumeInfo {
    /// A persistent volume claim or a generic ephemeral volume (usable as a block device).
    pub is_claim: bool,
    /// An emptyDir volume (usable by `fileKeyRef`).
    pub is_empty_dir: bool,
}

/// The valid volumes of a pod spec, by name.
pub type ValidVolumes = BTreeMap<String, VolumeInfo>;

/// `0644`, the default mode of secret, configMap, downward API and projected volumes.
pub const DEFAULT_VOLUME_MODE: i32 = 0o644;

const FILE_MODE_ERROR_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// The sources a volume sets, in the order upstream's `validateVolumeSource` checks them,
/// with the path segment it uses in "more than 1 volume type" errors.
fn set_sources(v: &Volume) -> Vec<&'static str> {
    let mut out = Vec::new();
    let checks: [(bool, &'static str); 30] = [
        (v.empty_dir.is_some(), "emptyDir"),
        (v.host_path.is_some(), "hostPath"),
        (v.git_repo.is_some(), "gitRepo"),
        (v.gce_persistent_disk.is_some(), "gcePersistentDisk"),
        (v.aws_elastic_block_store.is_some(), "awsElasticBlockStore"),
        (v.secret.is_some(), "secret"),
        (v.nfs.is_some(), "nfs"),
        (v.iscsi.is_some(), "iscsi"),
        (v.glusterfs.is_some(), "glusterfs"),
        (v.flocker.is_some(), "flocker"),
        (v.persistent_volume_claim.is_some(), "persistentVolumeClaim"),
        (v.rbd.is_some(), "rbd"),
        (v.cinder.is_some(), "cinder"),
        (v.cephfs.is_some(), "cephFS"),
        (v.quobyte.is_some(), "quobyte"),
        (v.downward_api.is_some(), "downwarAPI"),
        (v.fc.is_some(), "fc"),
        (v.flex_volume.is_some(), "flexVolume"),
        (v.config_map.is_some(), "configMap"),
        (v.azure_file.is_some(), "azureFile"),
        (v.vsphere_volume.is_some(), "vsphereVolume"),
        (v.photon_persistent_disk.is_some(), "photonPersistentDisk"),
        (v.portworx_volume.is_some(), "portworxVolume"),
        (v.azure_disk.is_some(), "azureDisk"),
        (v.storageos.is_some(), "storageos"),
        (v.projected.is_some(), "projected"),
        (v.scale_io.is_some(), "scaleIO"),
        (v.csi.is_some(), "csi"),
        (v.ephemeral.is_some(), "ephemeral"),
        (v.image.is_some(), "image"),
    ];
    for (set, name) in checks {
        if set {
            out.push(name);
        }
    }
    out
}

/// `SetDefaults_Volume` and the generated defaults of the volume sources.
pub fn default_volume(v: &mut Volume) {
    if set_sources(v).is_empty() {
        v.empty_dir = Some(Default::default());
    }
    if let Some(image) = &mut v.image {
        none_if_empty(&mut image.reference);
        if str_of(&image.pull_policy).is_empty() {
            let policy = if image_tag_is_latest(str_of(&image.reference)) {
                "Always"
            } else {
                "IfNotPresent"
            };
            image.pull_policy = Some(policy.to_owned());
        }
    }
    if let Some(empty_dir) = &mut v.empty_dir {
        none_if_empty(&mut empty_dir.medium);
        if let Some(limit) = &mut empty_dir.size_limit {
            canonicalize_quantity(limit);
        }
    }
    if let Some(host_path) = &mut v.host_path {
        host_path.type_.get_or_insert_with(String::new);
    }
    if let Some(secret) = &mut v.secret {
        none_if_empty(&mut secret.secret_name);
        secret.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(iscsi) = &mut v.iscsi
        && str_of(&iscsi.iscsi_interface).is_empty()
    {
        iscsi.iscsi_interface = Some("default".to_owned());
    }
    if let Some(rbd) = &mut v.rbd {
        for (value, default) in [
            (&mut rbd.pool, "rbd"),
            (&mut rbd.user, "admin"),
            (&mut rbd.keyring, "/etc/ceph/keyring"),
        ] {
            if str_of(value).is_empty() {
                *value = Some(default.to_owned());
            }
        }
    }
    if let Some(downward) = &mut v.downward_api {
        downward.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        default_downward_api_files(downward.items.iter_mut().flatten());
    }
    if let Some(config_map) = &mut v.config_map {
        config_map.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(disk) = &mut v.azure_disk {
        disk.caching_mode.get_or_insert_with(|| "ReadWrite".to_owned());
        disk.fs_type.get_or_insert_with(|| "ext4".to_owned());
        disk.read_only.get_or_insert(false);
        disk.kind.get_or_insert_with(|| "Shared".to_owned());
    }
    if let Some(projected) = &mut v.projected {
        default_projected(projected);
    }
    if let Some(scale_io) = &mut v.scale_io {
        for (value, default) in [
            (&mut scale_io.storage_mode, "ThinProvisioned"),
            (&mut scale_io.fs_type, "xfs"),
        ] {
            if str_of(value).is_empty() {
                *value = Some(default.to_owned());
            }
        }
    }
    if let Some(template) = v
        .ephemeral
        .as_mut()
        .and_then(|e| e.volume_claim_template.as_mut())
    {
        template.metadata.get_or_insert_with(Default::default);
        default_claim_spec(&mut template.spec);
    }
}

fn default_downward_api_files<'a>(files: impl Iterator<Item = &'a mut DownwardAPIVolumeFile>) {
    for file in files {
        if let Some(field_ref) = &mut file.field_ref {
            default_object_field_selector(field_ref);
        }
        if let Some(resource_ref) = &mut file.resource_field_ref {
            default_resource_field_selector(resource_ref);
        }
    }
}

fn default_projected(projected: &mut ProjectedVolumeSource) {
    projected.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    for source in projected.sources.iter_mut().flatten() {
        if let Some(downward) = &mut source.downward_api {
            default_downward_api_files(downward.items.iter_mut().flatten());
        }
        if let Some(token) = &mut source.service_account_token {
            token.expiration_seconds.get_or_insert(3600);
            none_if_empty(&mut token.audience);
        }
    }
}

/// `SetDefaults_PersistentVolumeClaimSpec` and the resource list defaults of a claim spec.
pub fn default_claim_spec(spec: &mut PersistentVolumeClaimSpec) {
    spec.volume_mode.get_or_insert_with(|| "Filesystem".to_owned());
    let resources = spec.resources.get_or_insert_with(Default::default);
    set_defaults_resource_list(&mut resources.limits);
    set_defaults_resource_list(&mut resources.requests);
}

/// Upstream's `ValidateVolumes`: names (DNS labels, unique), one valid source each, and no
/// claim referencing a PVC that a generic ephemeral volume of the pod creates. Returns the
/// valid volumes.
pub fn validate_volumes(
    volumes: &[Volume],
    pod_meta: Option<&ObjectMeta>,
    path: &Path,
    opts: &PodValidationOptions,
) -> (ValidVolumes, ErrorList) {
    let mut errs = ErrorList::new();
    let mut all_names = BTreeSet::new();
    let pod_name = pod_meta.map(|m| str_of(&m.name)).unwrap_or_default();
    let created_pvcs: BTreeSet<String> = if pod_name.is_empty() {
        BTreeSet::new()
    } else {
        volumes
            .iter()
            .filter(|v| v.ephemeral.is_some())
            .map(|v| format!("{pod_name}-{}", v.name))
            .collect()
    };
    let mut valid = ValidVolumes::new();
    for (i, vol) in volumes.iter().enumerate() {
        let p = path.index(i);
        let name_path = p.child("name");
        let mut el = validate_volume_source(vol, &p, pod_meta, opts);
        if vol.name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            el.extend(validate_dns1123_label(&vol.name, &name_path));
        }
        if all_names.contains(vol.name.as_str()) {
            el.push(FieldError::duplicate(&name_path, vol.name.as_str()));
        }
        if el.is_empty() {
            all_names.insert(vol.name.as_str());
            valid.insert(
                vol.name.clone(),
                VolumeInfo {
                    is_claim: vol.persistent_volume_claim.is_some() || vol.ephemeral.is_some(),
                    is_empty_dir: vol.empty_dir.is_some(),
                },
            );
        } else {
            errs.extend(el);
        }
        if let Some(claim) = &vol.persistent_volume_claim
            && created_pvcs.contains(&claim.claim_name)
        {
            errs.push(FieldError::invalid(
                &p.child("persistentVolumeClaim").child("claimName"),
                claim.claim_name.as_str(),
                "must not reference a PVC that gets created for an ephemeral volume",
            ));
        }
    }
    (valid, errs)
}

fn validate_mode(mode: Option<i32>, path: &Path) -> ErrorList {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => vec![FieldError::invalid(path, m, FILE_MODE_ERROR_MSG)],
        _ => Vec::new(),
    }
}

fn validate_key_to_path(kp: &KeyToPath, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if kp.key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    }
    if kp.path.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(validate_local_non_reserved_path(&kp.path, &path.child("path")));
    errs.extend(validate_mode(kp.mode, &path.child("mode")));
    errs
}

const VOLUME_DOWNWARD_API_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

fn validate_downward_api_file(file: &DownwardAPIVolumeFile, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if file.path.is_empty() {
        errs.push(FieldError::required(&path.child("path"), ""));
    }
    errs.extend(validate_local_non_reserved_path(&file.path, &path.child("path")));
    if let Some(field_ref) = &file.field_ref {
        errs.extend(validate_object_field_selector(
            field_ref,
            VOLUME_DOWNWARD_API_FIELD_PATHS,
            &path.child("fieldRef"),
        ));
        if file.resource_field_ref.is_some() {
            errs.push(FieldError::invalid(
                path,
                "resource",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    } else if let Some(resource_ref) = &file.resource_field_ref {
        errs.extend(validate_container_resource_field_selector(
            resource_ref,
            &path.child("resourceFieldRef"),
            true,
        ));
    } else {
        errs.push(FieldError::required(
            path,
            "one of fieldRef and resourceFieldRef is required",
        ));
    }
    errs.extend(validate_mode(file.mode, &path.child("mode")));
    errs
}

fn validate_projection_sources(
    projection: &ProjectedVolumeSource,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut all_paths: BTreeSet<String> = BTreeSet::new();
    for (i, source) in projection.sources.iter().flatten().enumerate() {
        let mut num_sources = 0;
        let src_path = path.child("sources").index(i);
        let mut keys = |name: &str, items: Option<&Vec<KeyToPath>>, pp: Path, errs: &mut ErrorList| {
            if name.is_empty() {
                errs.push(FieldError::required(&pp.child("name"), ""));
            }
            for (j, kp) in items.into_iter().flatten().enumerate() {
                errs.extend(validate_key_to_path(kp, &pp.child("items").index(j)));
                if !kp.path.is_empty() && !all_paths.insert(kp.path.clone()) {
                    errs.push(FieldError::invalid(path, name, "conflicting duplicate paths"));
                }
            }
        };
        if let Some(secret) = &source.secret {
            num_sources += 1;
            keys(
                &secret.name,
                secret.items.as_ref(),
                src_path.child("secret"),
                &mut errs,
            );
        }
        if let Some(config_map) = &source.config_map {
            num_sources += 1;
            keys(
                &config_map.name,
                config_map.items.as_ref(),
                src_path.child("configMap"),
                &mut errs,
            );
        }
        if let Some(downward) = &source.downward_api {
            num_sources += 1;
            let pp = src_path.child("downwardAPI");
            for file in downward.items.iter().flatten() {
                errs.extend(validate_downward_api_file(file, &pp));
                if !file.path.is_empty() && !all_paths.insert(file.path.clone()) {
                    errs.push(FieldError::invalid(
                        path,
                        file.path.as_str(),
                        "conflicting duplicate paths",
                    ));
                }
            }
        }
        if let Some(token) = &source.service_account_token {
            num_sources += 1;
            let pp = src_path.child("serviceAccountToken");
            let expiration = token.expiration_seconds.unwrap_or(0);
            if expiration < 10 * 60 {
                errs.push(FieldError::invalid(
                    &pp.child("expirationSeconds"),
                    expiration,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if expiration > 1 << 32 {
                errs.push(FieldError::invalid(
                    &pp.child("expirationSeconds"),
                    expiration,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            if token.path.is_empty() {
                errs.push(FieldError::required(&path.child("path"), ""));
            } else if !opts.allow_non_local_projected_token_path {
                errs.extend(validate_local_non_reserved_path(&token.path, &path.child("path")));
            }
        }
        if source.cluster_trust_bundle.is_some() {
            num_sources += 1;
        }
        if source.pod_certificate.is_some() {
            num_sources += 1;
        }
        if num_sources > 1 {
            errs.push(FieldError::forbidden(
                &src_path,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
    errs
}

const HOST_PATH_TYPES: &[&str] = &[
    "",
    "BlockDevice",
    "CharDevice",
    "Directory",
    "DirectoryOrCreate",
    "File",
    "FileOrCreate",
    "Socket",
];

fn is_absolute(path: &str) -> bool {
    path.starts_with('/')
}

/// `iqn\.\d{4}-\d{2}\.([[:alnum:]-.]+)(:[^,;*&$|\s]+)$` (as used after the `iqn` prefix check).
fn is_iqn(s: &str) -> bool {
    (0..s.len()).any(|start| {
        let Some(rest) = s[start..].strip_prefix("iqn.") else {
            return false;
        };
        let b = rest.as_bytes();
        if b.len() < 8
            || !b[..4].iter().all(u8::is_ascii_digit)
            || b[4] != b'-'
            || !b[5..7].iter().all(u8::is_ascii_digit)
            || b[7] != b'.'
        {
            return false;
        }
        let tail = &rest[8..];
        let Some((domain, suffix)) = tail.split_once(':') else {
            return false;
        };
        !domain.is_empty()
            && domain
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
            && !suffix.is_empty()
            && !suffix.contains([
                ',', ';', '*', '&', '$', '|', ' ', '\t', '\n', '\r', '\x0b', '\x0c',
            ])
    })
}

fn is_prefixed_alnum(s: &str, prefix: &str, len: usize) -> bool {
    s.strip_prefix(prefix)
        .and_then(|rest| {
            let mut chars = rest.chars();
            chars.next()?;
            Some(chars.as_str().to_owned())
        })
        .is_some_and(|tail| tail.len() == len && tail.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn iqn_errors(value: &str, path: &Path, prefix_msg: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    if !value.starts_with("iqn") && !value.starts_with("eui") && !value.starts_with("naa") {
        errs.push(FieldError::invalid(path, value, prefix_msg));
        return errs;
    }
    let ok = if value.starts_with("iqn") {
        is_iqn(value)
    } else if value.starts_with("eui") {
        is_prefixed_alnum(value, "eui", 16)
    } else {
        is_prefixed_alnum(value, "naa", 32)
    };
    if !ok {
        errs.push(FieldError::invalid(path, value, "must be valid format"));
    }
    errs
}

fn split_host_port_ok(pair: &str) -> bool {
    if let Some(rest) = pair.strip_prefix('[') {
        return rest
            .split_once(']')
            .is_some_and(|(_, port)| port.starts_with(':') && !port[1..].contains(':'));
    }
    pair.matches(':').count() == 1
}

fn validate_csi_driver_name(name: &str, path: &Path) -> ErrorList {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = ErrorList::new();
    if name.len() > 63 {
        errs.push(FieldError::too_long(path, 63));
    }
    errs.extend(name_errors(
        path,
        name,
        is_dns1123_subdomain(&name.to_lowercase()),
    ));
    errs
}

/// Upstream's `validateVolumeSource`: exactly one source, each checked.
pub fn validate_volume_source(
    v: &Volume,
    path: &Path,
    pod_meta: Option<&ObjectMeta>,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut num = 0;
    let mut first = |name: &str, errs: &mut ErrorList| -> bool {
        if num > 0 {
            errs.push(FieldError::forbidden(
                &path.child(name),
                "may not specify more than 1 volume type",
            ));
            return false;
        }
        num += 1;
        true
    };
    if let Some(empty_dir) = &v.empty_dir {
        first("emptyDir", &mut errs);
        if empty_dir
            .size_limit
            .as_ref()
            .and_then(|q| parse_quantity(q.0.trim()).ok())
            .is_some_and(|q| q.sign() < 0)
        {
            errs.push(FieldError::forbidden(
                &path.child("emptyDir").child("sizeLimit"),
                "SizeLimit field must be a valid resource quantity",
            ));
        }
    }
    if let Some(host_path) = &v.host_path
        && first("hostPath", &mut errs)
    {
        let p = path.child("hostPath");
        if host_path.path.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        } else {
            errs.extend(validate_path_no_backsteps(&host_path.path, &p.child("path")));
            if let Some(t) = &host_path.type_
                && !HOST_PATH_TYPES.contains(&t.as_str())
            {
                errs.push(FieldError::not_supported(
                    &p.child("type"),
                    t.as_str(),
                    HOST_PATH_TYPES,
                ));
            }
        }
    }
    if let Some(git_repo) = &v.git_repo
        && first("gitRepo", &mut errs)
    {
        let p = path.child("gitRepo");
        if git_repo.repository.is_empty() {
            errs.push(FieldError::required(&p.child("repository"), ""));
        }
        errs.extend(validate_local_descending_path(
            str_of(&git_repo.directory),
            &p.child("directory"),
        ));
    }
    if let Some(pd) = &v.gce_persistent_disk
        && first("gcePersistentDisk", &mut errs)
    {
        let p = path.child("persistentDisk");
        if pd.pd_name.is_empty() {
            errs.push(FieldError::required(&p.child("pdName"), ""));
        }
        let partition = pd.partition.unwrap_or(0);
        if !(0..=255).contains(&partition) {
            errs.push(FieldError::invalid(
                &p.child("partition"),
                partition,
                inclusive_range_error(1, 255),
            ));
        }
    }
    if let Some(ebs) = &v.aws_elastic_block_store
        && first("awsElasticBlockStore", &mut errs)
    {
        let p = path.child("awsElasticBlockStore");
        if ebs.volume_id.is_empty() {
            errs.push(FieldError::required(&p.child("volumeID"), ""));
        }
        let partition = ebs.partition.unwrap_or(0);
        if !(0..=255).contains(&partition) {
            errs.push(FieldError::invalid(
                &p.child("partition"),
                partition,
                inclusive_range_error(1, 255),
            ));
        }
    }
    if let Some(secret) = &v.secret
        && first("secret", &mut errs)
    {
        let p = path.child("secret");
        if str_of(&secret.secret_name).is_empty() {
            errs.push(FieldError::required(&p.child("secretName"), ""));
        }
        errs.extend(validate_mode(secret.default_mode, &p.child("defaultMode")));
        for (j, kp) in secret.items.iter().flatten().enumerate() {
            errs.extend(validate_key_to_path(kp, &p.child("items").index(j)));
        }
    }
    if let Some(nfs) = &v.nfs
        && first("nfs", &mut errs)
    {
        let p = path.child("nfs");
        if nfs.server.is_empty() {
            errs.push(FieldError::required(&p.child("server"), ""));
        }
        if nfs.path.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        }
        if !is_absolute(&nfs.path) {
            errs.push(FieldError::invalid(
                &p.child("path"),
                nfs.path.as_str(),
                "must be an absolute path",
            ));
        }
    }
    if let Some(iscsi) = &v.iscsi {
        if first("iscsi", &mut errs) {
            let p = path.child("iscsi");
            if iscsi.target_portal.is_empty() {
                errs.push(FieldError::required(&p.child("targetPortal"), ""));
            }
            if iscsi.iqn.is_empty() {
                errs.push(FieldError::required(&p.child("iqn"), ""));
            } else {
                errs.extend(iqn_errors(
                    &iscsi.iqn,
                    &p.child("iqn"),
                    "must be valid format starting with iqn, eui, or naa",
                ));
            }
            if !(0..=255).contains(&iscsi.lun) {
                errs.push(FieldError::invalid(
                    &p.child("lun"),
                    iscsi.lun,
                    inclusive_range_error(0, 255),
                ));
            }
            if (iscsi.chap_auth_discovery == Some(true) || iscsi.chap_auth_session == Some(true))
                && iscsi.secret_ref.is_none()
            {
                errs.push(FieldError::required(&p.child("secretRef"), ""));
            }
            if let Some(initiator) = &iscsi.initiator_name {
                errs.extend(iqn_errors(
                    initiator,
                    &p.child("initiatorname"),
                    "must be valid format starting with iqn, eui, or naa",
                ));
            }
        }
        if iscsi.initiator_name.is_some() && v.name.len() + 1 + iscsi.target_portal.len() > 64 {
            errs.push(FieldError::invalid(
                &path.child("name"),
                v.name.as_str(),
                "Total length of <volume name>:<iscsi.targetPortal> must be under 64 characters if iscsi.initiatorName is specified.",
            ));
        }
    }
    if let Some(gluster) = &v.glusterfs
        && first("glusterfs", &mut errs)
    {
        let p = path.child("glusterfs");
        if gluster.endpoints.is_empty() {
            errs.push(FieldError::required(&p.child("endpoints"), ""));
        }
        if gluster.path.is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        }
    }
    if let Some(flocker) = &v.flocker
        && first("flocker", &mut errs)
    {
        let p = path.child("flocker");
        let (name, uuid) = (str_of(&flocker.dataset_name), str_of(&flocker.dataset_uuid));
        if name.is_empty() && uuid.is_empty() {
            errs.push(FieldError::required(
                &p,
                "one of datasetName and datasetUUID is required",
            ));
        }
        if !name.is_empty() && !uuid.is_empty() {
            errs.push(FieldError::invalid(
                &p,
                "resource",
                "datasetName and datasetUUID can not be specified simultaneously",
            ));
        }
        if name.contains('/') {
            errs.push(FieldError::invalid(
                &p.child("datasetName"),
                name,
                "must not contain '/'",
            ));
        }
    }
    if let Some(claim) = &v.persistent_volume_claim
        && first("persistentVolumeClaim", &mut errs)
        && claim.claim_name.is_empty()
    {
        errs.push(FieldError::required(
            &path.child("persistentVolumeClaim").child("claimName"),
            "",
        ));
    }
    if let Some(rbd) = &v.rbd
        && first("rbd", &mut errs)
    {
        let p = path.child("rbd");
        if rbd.monitors.is_empty() {
            errs.push(FieldError::required(&p.child("monitors"), ""));
        }
        if rbd.image.is_empty() {
            errs.push(FieldError::required(&p.child("image"), ""));
        }
    }
    if let Some(cinder) = &v.cinder
        && first("cinder", &mut errs)
    {
        let p = path.child("cinder");
        if cinder.volume_id.is_empty() {
            errs.push(FieldError::required(&p.child("volumeID"), ""));
        }
        if cinder.secret_ref.as_ref().is_some_and(|r| r.name.is_empty()) {
            errs.push(FieldError::required(&p.child("secretRef").child("name"), ""));
        }
    }
    if let Some(cephfs) = &v.cephfs
        && first("cephFS", &mut errs)
        && cephfs.monitors.is_empty()
    {
        errs.push(FieldError::required(&path.child("cephfs").child("monitors"), ""));
    }
    if let Some(quobyte) = &v.quobyte
        && first("quobyte", &mut errs)
    {
        let p = path.child("quobyte");
        const REGISTRY_MSG: &str = "must be a host:port pair or multiple pairs separated by commas";
        if quobyte.registry.is_empty() {
            errs.push(FieldError::required(&p.child("registry"), REGISTRY_MSG));
        } else if str_of(&quobyte.tenant).len() >= 65 {
            errs.push(FieldError::required(
                &p.child("tenant"),
                "must be a UUID and may not exceed a length of 64 characters",
            ));
        } else {
            for pair in quobyte.registry.split(',') {
                if !split_host_port_ok(pair) {
                    errs.push(FieldError::invalid(
                        &p.child("registry"),
                        quobyte.registry.as_str(),
                        REGISTRY_MSG,
                    ));
                }
            }
        }
        if quobyte.volume.is_empty() {
            errs.push(FieldError::required(&p.child("volume"), ""));
        }
    }
    if let Some(downward) = &v.downward_api
        && first("downwarAPI", &mut errs)
    {
        let p = path.child("downwardAPI");
        errs.extend(validate_mode(downward.default_mode, &p.child("defaultMode")));
        for file in downward.items.iter().flatten() {
            errs.extend(validate_downward_api_file(file, &p));
        }
    }
    if let Some(fc) = &v.fc
        && first("fc", &mut errs)
    {
        let p = path.child("fc");
        let wwns = fc.target_wwns.as_deref().unwrap_or_default();
        let wwids = fc.wwids.as_deref().unwrap_or_default();
        if wwns.is_empty() && wwids.is_empty() {
            errs.push(FieldError::required(
                &p.child("targetWWNs"),
                "must specify either targetWWNs or wwids, but not both",
            ));
        }
        if !wwns.is_empty() && !wwids.is_empty() {
            errs.push(FieldError::invalid(
                &p.child("targetWWNs"),
                crate::validation::bad_value(wwns),
                "targetWWNs and wwids can not be specified simultaneously",
            ));
        }
        if !wwns.is_empty() {
            match fc.lun {
                None => errs.push(FieldError::required(
                    &p.child("lun"),
                    "lun is required if targetWWNs is specified",
                )),
                Some(lun) if !(0..=255).contains(&lun) => {
                    errs.push(FieldError::invalid(
                        &p.child("lun"),
                        lun,
                        inclusive_range_error(0, 255),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    if let Some(flex) = &v.flex_volume
        && first("flexVolume", &mut errs)
    {
        let p = path.child("flexVolume");
        if flex.driver.is_empty() {
            errs.push(FieldError::required(&p.child("driver"), ""));
        }
        for key in flex.options.iter().flat_map(|o| o.keys()) {
            let namespace = key.split_once('/').map_or(key.as_str(), |(ns, _)| ns);
            let normalized = format!(".{}", namespace.to_lowercase());
            if normalized.ends_with(".kubernetes.io") || normalized.ends_with(".k8s.io") {
                errs.push(FieldError::invalid(
                    &p.child("options").key(key),
                    key.as_str(),
                    "kubernetes.io and k8s.io namespaces are reserved",
                ));
            }
        }
    }
    if let Some(config_map) = &v.config_map
        && first("configMap", &mut errs)
    {
        let p = path.child("configMap");
        if config_map.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        errs.extend(validate_mode(config_map.default_mode, &p.child("defaultMode")));
        for (j, kp) in config_map.items.iter().flatten().enumerate() {
            errs.extend(validate_key_to_path(kp, &p.child("items").index(j)));
        }
    }
    if let Some(azure) = &v.azure_file
        && first("azureFile", &mut errs)
    {
        let p = path.child("azureFile");
        if azure.secret_name.is_empty() {
            errs.push(FieldError::required(&p.child("secretName"), ""));
        }
        if azure.share_name.is_empty() {
            errs.push(FieldError::required(&p.child("shareName"), ""));
        }
    }
    if let Some(vsphere) = &v.vsphere_volume
        && first("vsphereVolume", &mut errs)
        && vsphere.volume_path.is_empty()
    {
        errs.push(FieldError::required(
            &path.child("vsphereVolume").child("volumePath"),
            "",
        ));
    }
    if let Some(photon) = &v.photon_persistent_disk
        && first("photonPersistentDisk", &mut errs)
        && photon.pd_id.is_empty()
    {
        errs.push(FieldError::required(
            &path.child("photonPersistentDisk").child("pdID"),
            "",
        ));
    }
    if let Some(portworx) = &v.portworx_volume
        && first("portworxVolume", &mut errs)
        && portworx.volume_id.is_empty()
    {
        errs.push(FieldError::required(
            &path.child("portworxVolume").child("volumeID"),
            "",
        ));
    }
    if let Some(disk) = &v.azure_disk
        && first("azureDisk", &mut errs)
    {
        let p = path.child("azureDisk");
        if disk.disk_name.is_empty() {
            errs.push(FieldError::required(&p.child("diskName"), ""));
        }
        if disk.disk_uri.is_empty() {
            errs.push(FieldError::required(&p.child("diskURI"), ""));
        }
        if let Some(mode) = &disk.caching_mode
            && !["None", "ReadOnly", "ReadWrite"].contains(&mode.as_str())
        {
            errs.push(FieldError::not_supported(
                &p.child("cachingMode"),
                mode.as_str(),
                &["None", "ReadOnly", "ReadWrite"],
            ));
        }
        if let Some(kind) = &disk.kind {
            if !["Dedicated", "Managed", "Shared"].contains(&kind.as_str()) {
                errs.push(FieldError::not_supported(
                    &p.child("kind"),
                    kind.as_str(),
                    &["Dedicated", "Managed", "Shared"],
                ));
            }
            if kind == "Managed" && !disk.disk_uri.starts_with("/subscriptions/") {
                errs.push(FieldError::not_supported(
                    &p.child("diskURI"),
                    disk.disk_uri.as_str(),
                    &["/subscriptions/{sub-id}/resourcegroups/{group-name}/providers/microsoft.compute/disks/{disk-id}"],
                ));
            }
            if kind != "Managed" && !disk.disk_uri.starts_with("https://") {
                errs.push(FieldError::not_supported(
                    &p.child("diskURI"),
                    disk.disk_uri.as_str(),
                    &["https://{account-name}.blob.core.windows.net/{container-name}/{disk-name}.vhd"],
                ));
            }
        }
    }
    if let Some(storageos) = &v.storageos
        && first("storageos", &mut errs)
    {
        let p = path.child("storageos");
        let name = str_of(&storageos.volume_name);
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("volumeName"), ""));
        } else {
            errs.extend(validate_dns1123_label(name, &p.child("volumeName")));
        }
        let namespace = str_of(&storageos.volume_namespace);
        if !namespace.is_empty() {
            errs.extend(validate_dns1123_label(namespace, &p.child("volumeNamespace")));
        }
        if storageos.secret_ref.as_ref().is_some_and(|r| r.name.is_empty()) {
            errs.push(FieldError::required(&p.child("secretRef").child("name"), ""));
        }
    }
    if let Some(projected) = &v.projected
        && first("projected", &mut errs)
    {
        let p = path.child("projected");
        errs.extend(validate_mode(projected.default_mode, &p.child("defaultMode")));
        errs.extend(validate_projection_sources(projected, &p, opts));
    }
    if let Some(scale_io) = &v.scale_io
        && first("scaleIO", &mut errs)
    {
        let p = path.child("scaleIO");
        if scale_io.gateway.is_empty() {
            errs.push(FieldError::required(&p.child("gateway"), ""));
        }
        if scale_io.system.is_empty() {
            errs.push(FieldError::required(&p.child("system"), ""));
        }
        if str_of(&scale_io.volume_name).is_empty() {
            errs.push(FieldError::required(&p.child("volumeName"), ""));
        }
    }
    if let Some(csi) = &v.csi
        && first("csi", &mut errs)
    {
        let p = path.child("csi");
        errs.extend(validate_csi_driver_name(&csi.driver, &p.child("driver")));
        if let Some(secret_ref) = &csi.node_publish_secret_ref {
            if secret_ref.name.is_empty() {
                errs.push(FieldError::required(
                    &p.child("nodePublishSecretRef").child("name"),
                    "",
                ));
            } else {
                errs.extend(name_errors(
                    &p.child("name"),
                    &secret_ref.name,
                    name_is_dns_subdomain(&secret_ref.name, false),
                ));
            }
        }
    }
    if let Some(ephemeral) = &v.ephemeral
        && first("ephemeral", &mut errs)
    {
        let p = path.child("ephemeral");
        match &ephemeral.volume_claim_template {
            None => errs.push(FieldError::required(&p.child("volumeClaimTemplate"), "")),
            Some(template) => {
                let tp = p.child("volumeClaimTemplate");
                errs.extend(validate_template_object_meta(
                    template.metadata.as_ref(),
                    &tp.child("metadata"),
                ));
                errs.extend(validate_claim_spec(&template.spec, &tp.child("spec")));
            }
        }
        let pod_name = pod_meta.map(|m| str_of(&m.name)).unwrap_or_default();
        if !pod_name.is_empty() && !v.name.is_empty() {
            let pvc_name = format!("{pod_name}-{}", v.name);
            for msg in name_is_dns_subdomain(&pvc_name, false) {
                errs.push(FieldError::invalid(
                    &path.child("name"),
                    v.name.as_str(),
                    format!("PVC name {pvc_name:?}: {msg}"),
                ));
            }
        }
    }
    if let Some(image) = &v.image
        && first("image", &mut errs)
    {
        let p = path.child("image");
        if opts.resource_is_pod && str_of(&image.reference).is_empty() {
            errs.push(FieldError::required(&p.child("reference"), ""));
        }
        errs.extend(validate_pull_policy(
            str_of(&image.pull_policy),
            &p.child("pullPolicy"),
        ));
    }
    if num == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

/// Upstream's `ValidateTemplateObjectMeta`: annotations and labels only.
pub fn validate_template_object_meta(meta: Option<&ObjectMeta>, path: &Path) -> ErrorList {
    let Some(meta) = meta else {
        return Vec::new();
    };
    let mut errs = validate_annotations(meta.annotations.as_ref(), &path.child("annotations"));
    errs.extend(validate_labels(meta.labels.as_ref(), &path.child("labels")));
    let set = [
        ("name", meta.name.as_ref().is_some_and(|s| !s.is_empty())),
        (
            "generateName",
            meta.generate_name.as_ref().is_some_and(|s| !s.is_empty()),
        ),
        (
            "namespace",
            meta.namespace.as_ref().is_some_and(|s| !s.is_empty()),
        ),
        ("selfLink", meta.self_link.as_ref().is_some_and(|s| !s.is_empty())),
        ("uID", meta.uid.as_ref().is_some_and(|s| !s.is_empty())),
        (
            "resourceVersion",
            meta.resource_version.as_ref().is_some_and(|s| !s.is_empty()),
        ),
        ("generation", meta.generation.is_some_and(|g| g != 0)),
        ("creationTimestamp", meta.creation_timestamp.is_some()),
        ("deletionTimestamp", meta.deletion_timestamp.is_some()),
        (
            "deletionGracePeriodSeconds",
            meta.deletion_grace_period_seconds.is_some(),
        ),
        ("ownerReferences", meta.owner_references.is_some()),
        ("finalizers", meta.finalizers.is_some()),
        ("managedFields", meta.managed_fields.is_some()),
    ];
    for (name, is_set) in set {
        if is_set {
            errs.push(FieldError::forbidden(&path.child(name), "cannot be set"));
        }
    }
    errs
}

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];

/// The parts of upstream's `ValidatePersistentVolumeClaimSpec` an ephemeral volume's claim
/// template needs: access modes, selector, storage request, class name, volume mode.
pub fn validate_claim_spec(spec: &PersistentVolumeClaimSpec, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    if modes.is_empty() {
        errs.push(FieldError::required(
            &path.child("accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if spec.selector.is_some() {
        errs.extend(validate_label_selector(
            spec.selector.as_ref(),
            LabelSelectorValidationOptions::default(),
            &path.child("selector"),
        ));
    }
    let (mut rwop, mut other) = (false, false);
    for mode in modes {
        if !ACCESS_MODES.contains(&mode.as_str()) {
            errs.push(FieldError::not_supported(
                &path.child("accessModes"),
                mode.as_str(),
                ACCESS_MODES,
            ));
        }
        if mode == "ReadWriteOncePod" {
            rwop = true;
        } else if ACCESS_MODES.contains(&mode.as_str()) {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(
            &path.child("accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
    let storage_path = path.child("resources").key("storage");
    let storage = spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"));
    match storage.map(|q| parse_quantity(q.0.trim()).map_err(|e| (q, e))) {
        None => errs.push(FieldError::required(&storage_path, "")),
        Some(Err((q, e))) => errs.push(FieldError::invalid(&storage_path, q.0.as_str(), e.to_string())),
        Some(Ok(q)) => {
            let positive = validate_positive_quantity_value(&q, &storage_path);
            if positive.is_empty() {
                errs.extend(validate_resource_quantity_value("storage", &q, &storage_path));
            } else {
                errs.extend(positive);
            }
        }
    }
    let class = str_of(&spec.storage_class_name);
    if !class.is_empty() {
        errs.extend(name_errors(
            &path.child("storageClassName"),
            class,
            name_is_dns_subdomain(class, false),
        ));
    }
    if let Some(mode) = &spec.volume_mode
        && mode != "Block"
        && mode != "Filesystem"
    {
        errs.push(FieldError::not_supported(
            &path.child("volumeMode"),
            mode.as_str(),
            &["Block", "Filesystem"],
        ));
    }
    let attributes_class = str_of(&spec.volume_attributes_class_name);
    if !attributes_class.is_empty() {
        errs.extend(name_errors(
            &path.child("volumeAttributesClassName"),
            attributes_class,
            name_is_dns_subdomain(attributes_class, false),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_iscsi_names() {
        assert!(is_iqn("iqn.2015-02.example.com:test"));
        assert!(!is_iqn("iqn.2015-02.example.com"));
        assert!(is_prefixed_alnum("eui.02004567A425678D", "eui", 16));
        assert!(!is_prefixed_alnum("eui.02004567A425678", "eui", 16));
    }
}
