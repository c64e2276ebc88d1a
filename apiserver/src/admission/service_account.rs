//! `ServiceAccount`: a new pod runs as a ServiceAccount of its namespace (`default` when it
//! names none), gets the ServiceAccount's image pull secrets when it has none, and — unless
//! `automountServiceAccountToken` is false on the pod or the ServiceAccount — the projected
//! `kube-api-access-xxxxx` volume (bound token, cluster CA, namespace) mounted read-only at
//! `/var/run/secrets/kubernetes.io/serviceaccount` in every container and init container.
//! A pod naming a missing ServiceAccount is refused; mirror pods may not use service
//! accounts or secrets; ServiceAccounts annotated `kubernetes.io/enforce-mountable-secrets`
//! limit the secrets their pods reference.
//!
//! Rudder has no ServiceAccount controller yet, so a namespace's `default` ServiceAccount
//! may not exist. Upstream waits (up to ten lookups) for the controller to create it; here a
//! missing `default` ServiceAccount is taken to be the one that controller would create (no
//! automount setting, no pull secrets), so pods in fresh namespaces behave as on a real
//! cluster. Any other missing ServiceAccount is refused with upstream's message.
//!
//! It reads ServiceAccounts and writes nothing else.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Pod, ServiceAccount as ServiceAccountObject, Volume, VolumeMount};
use serde_json::{Value, json};

use super::common::{decode, encode, forbidden, get, is};
use super::{Operation, Plugin};
use crate::object;
use crate::registry::Resource;
use crate::status::ApiError;
use crate::store::GenericStore;
use crate::util;

/// The ServiceAccount of pods that name none.
pub const DEFAULT_SERVICE_ACCOUNT_NAME: &str = "default";
/// Where the token volume is mounted.
pub const DEFAULT_API_TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The prefix of the token volume's name.
const SERVICE_ACCOUNT_VOLUME_NAME: &str = "kube-api-access";
/// The annotation of a ServiceAccount that limits the secrets of its pods.
const ENFORCE_MOUNTABLE_SECRETS_ANNOTATION: &str = "kubernetes.io/enforce-mountable-secrets";
/// The annotation of mirror pods.
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
/// Upstream's `WarnOnlyBoundTokenExpirationSeconds`: one hour and seven seconds.
const TOKEN_EXPIRATION_SECONDS: i64 = 3607;
/// `ProjectedVolumeSourceDefaultMode` (0644).
const DEFAULT_MODE: i32 = 420;

/// The plugin.
pub(super) struct ServiceAccount;

/// The projected volume source of the token (upstream's `TokenVolumeSource`).
pub fn token_volume_source() -> Value {
    json!({
        "defaultMode": DEFAULT_MODE,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{
                "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                "path": "namespace",
            }]}},
        ],
    })
}

/// Upstream's `shouldAutomount`: the pod's choice, else the ServiceAccount's, else yes.
fn should_automount(account: &ServiceAccountObject, pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.automount_service_account_token)
        .or(account.automount_service_account_token)
        .unwrap_or(true)
}

/// Upstream's `mountServiceAccountToken`; `generate` names a new volume.
fn mount_service_account_token(pod: &mut Pod, generate: &dyn Fn() -> String) -> Result<(), ApiError> {
    let Some(spec) = pod.spec.as_mut() else {
        return Ok(());
    };
    let existing = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name.starts_with(&format!("{SERVICE_ACCOUNT_VOLUME_NAME}-")))
        .map(|v| v.name.clone());
    let has_token_volume = existing.is_some();
    let volume_name = existing.unwrap_or_else(generate);
    let mount = VolumeMount {
        name: volume_name.clone(),
        read_only: Some(true),
        mount_path: DEFAULT_API_TOKEN_MOUNT_PATH.to_owned(),
        ..Default::default()
    };
    let mut needs_token_volume = false;
    let containers = spec
        .init_containers
        .iter_mut()
        .flatten()
        .chain(spec.containers.iter_mut());
    for container in containers {
        let mounted = container
            .volume_mounts
            .iter()
            .flatten()
            .any(|m| m.mount_path == DEFAULT_API_TOKEN_MOUNT_PATH);
        if !mounted {
            container
                .volume_mounts
                .get_or_insert_with(Vec::new)
                .push(mount.clone());
            needs_token_volume = true;
        }
    }
    if !has_token_volume && needs_token_volume {
        let volume: Volume = serde_json::from_value(json!({
            "name": volume_name,
            "projected": token_volume_source(),
        }))
        .map_err(ApiError::internal)?;
        spec.volumes.get_or_insert_with(Vec::new).push(volume);
    }
    Ok(())
}

/// The pod's ServiceAccount; `Err` is why the pod is forbidden.
fn service_account(
    store: &GenericStore,
    namespace: &str,
    name: &str,
) -> Result<Result<ServiceAccountObject, String>, ApiError> {
    match get(store, ("", "v1", "serviceaccounts"), namespace, name)? {
        Some(found) => Ok(Ok(decode(&found)?)),
        None if name == DEFAULT_SERVICE_ACCOUNT_NAME => {
            // What the ServiceAccount controller would create (see the module doc).
            tracing::debug!(%namespace, "no default ServiceAccount yet; admitting the pod as if it existed");
            let mut implicit = ServiceAccountObject::default();
            implicit.metadata.name = Some(name.to_owned());
            implicit.metadata.namespace = Some(namespace.to_owned());
            Ok(Ok(implicit))
        }
        None => Ok(Err(format!(
            "error looking up service account {namespace}/{name}: serviceaccount \"{name}\" not found"
        ))),
    }
}

fn is_mirror_pod(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION))
}

/// Every secret a pod references (upstream's `VisitPodSecretNames` over all containers).
fn pod_secret_names(pod: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut add = |v: Option<&Value>| {
        if let Some(name) = v.and_then(Value::as_str).filter(|n| !n.is_empty()) {
            names.insert(name.to_owned());
        }
    };
    let spec = pod.get("spec");
    for secret in spec
        .and_then(|s| s.get("imagePullSecrets"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        add(secret.get("name"));
    }
    for kind in ["initContainers", "containers", "ephemeralContainers"] {
        for container in spec
            .and_then(|s| s.get(kind))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for env in container
                .get("env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                add(env.pointer("/valueFrom/secretKeyRef/name"));
            }
            for env in container
                .get("envFrom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                add(env.pointer("/secretRef/name"));
            }
        }
    }
    for volume in spec
        .and_then(|s| s.get("volumes"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for pointer in [
            "/secret/secretName",
            "/azureFile/secretName",
            "/cephfs/secretRef/name",
            "/cinder/secretRef/name",
            "/flexVolume/secretRef/name",
            "/rbd/secretRef/name",
            "/scaleIO/secretRef/name",
            "/iscsi/secretRef/name",
            "/storageos/secretRef/name",
            "/csi/nodePublishSecretRef/name",
        ] {
            add(volume.pointer(pointer));
        }
        for source in volume
            .pointer("/projected/sources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            add(source.pointer("/secret/name"));
        }
    }
    names
}

/// Upstream's `limitSecretReferences`: the error message when the pod references a secret
/// the ServiceAccount does not list.
fn limit_secret_references(account: &ServiceAccountObject, pod: &Pod) -> Option<String> {
    let sa = account.metadata.name.as_deref().unwrap_or("");
    let mountable: BTreeSet<&str> = account
        .secrets
        .iter()
        .flatten()
        .filter_map(|s| s.name.as_deref())
        .collect();
    let spec = pod.spec.as_ref()?;
    for volume in spec.volumes.iter().flatten() {
        if let Some(secret) = volume.secret.as_ref() {
            let name = secret.secret_name.as_deref().unwrap_or("");
            if !mountable.contains(name) {
                return Some(format!(
                    "volume with secret.secretName=\"{name}\" is not allowed because service account {sa} does not reference that secret"
                ));
            }
        }
    }
    for (prefix, containers) in [
        ("init container", spec.init_containers.as_deref().unwrap_or(&[])),
        ("container", spec.containers.as_slice()),
    ] {
        for container in containers {
            for env in container.env.iter().flatten() {
                if let Some(secret) = env.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref())
                    && !mountable.contains(secret.name.as_str())
                {
                    return Some(format!(
                        "{prefix} {} with envVar {} referencing secret.secretName=\"{}\" is not allowed because service account {sa} does not reference that secret",
                        container.name, env.name, secret.name
                    ));
                }
            }
            for from in container.env_from.iter().flatten() {
                if let Some(secret) = from.secret_ref.as_ref()
                    && !mountable.contains(secret.name.as_str())
                {
                    return Some(format!(
                        "{prefix} {} with envFrom referencing secret.secretName=\"{}\" is not allowed because service account {sa} does not reference that secret",
                        container.name, secret.name
                    ));
                }
            }
        }
    }
    let pull: BTreeSet<&str> = account
        .image_pull_secrets
        .iter()
        .flatten()
        .map(|s| s.name.as_str())
        .collect();
    for (i, secret) in spec.image_pull_secrets.iter().flatten().enumerate() {
        if !pull.contains(secret.name.as_str()) {
            return Some(format!(
                "imagePullSecrets[{i}].name=\"{}\" is not allowed because service account {sa} does not reference that imagePullSecret",
                secret.name
            ));
        }
    }
    None
}

fn enforce_mountable_secrets(account: &ServiceAccountObject) -> bool {
    account
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ENFORCE_MOUNTABLE_SECRETS_ANNOTATION))
        .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

/// The pod's ServiceAccount name, taking the deprecated alias into account (upstream's
/// v1 conversion: `serviceAccountName` wins, `serviceAccount` fills it when empty).
fn account_name(pod: &Pod) -> String {
    let spec = pod.spec.as_ref();
    let name = spec.and_then(|s| s.service_account_name.as_deref()).unwrap_or("");
    if !name.is_empty() {
        return name.to_owned();
    }
    spec.and_then(|s| s.service_account.as_deref())
        .unwrap_or("")
        .to_owned()
}

impl ServiceAccount {
    /// Upstream's `Validate` for creates; `Err` is why the pod is forbidden.
    fn check(
        &self,
        store: &GenericStore,
        namespace: &str,
        object: &Value,
    ) -> Result<Result<(), String>, ApiError> {
        let pod: Pod = decode(object)?;
        let name = account_name(&pod);
        if is_mirror_pod(&pod) {
            if !name.is_empty() {
                return Ok(Err("a mirror pod may not reference service accounts".to_owned()));
            }
            if !pod_secret_names(object).is_empty() {
                return Ok(Err("a mirror pod may not reference secrets".to_owned()));
            }
            let projects_token = object
                .pointer("/spec/volumes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|v| v.pointer("/projected/sources").and_then(Value::as_array))
                .flatten()
                .any(|s| s.get("serviceAccountToken").is_some_and(|t| !t.is_null()));
            if projects_token {
                return Ok(Err(
                    "a mirror pod may not use ServiceAccountToken volume projections".to_owned(),
                ));
            }
            return Ok(Ok(()));
        }
        if name.is_empty() {
            return Ok(Err(format!(
                "no service account specified for pod {namespace}/{}",
                object::name(object)
            )));
        }
        let account = match service_account(store, namespace, &name)? {
            Ok(account) => account,
            Err(why) => return Ok(Err(why)),
        };
        if enforce_mountable_secrets(&account)
            && let Some(why) = limit_secret_references(&account, &pod)
        {
            return Ok(Err(why));
        }
        Ok(Ok(()))
    }
}

impl Plugin for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    fn mutate(
        &self,
        store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if !is(resource, "", "pods") || operation != Operation::Create {
            return Ok(());
        }
        let namespace = object::namespace(object).to_owned();
        let mut pod: Pod = decode(object)?;
        if is_mirror_pod(&pod) {
            return match self.check(store, &namespace, object)? {
                Ok(()) => Ok(()),
                Err(why) => Err(forbidden(resource, object, &why)),
            };
        }
        let mut name = account_name(&pod);
        if name.is_empty() {
            name = DEFAULT_SERVICE_ACCOUNT_NAME.to_owned();
        }
        let account = match service_account(store, &namespace, &name)? {
            Ok(account) => account,
            Err(why) => return Err(forbidden(resource, object, &why)),
        };
        let spec = pod.spec.get_or_insert_with(Default::default);
        spec.service_account_name = Some(name.clone());
        // The deprecated alias, as upstream's conversion to v1 writes it.
        spec.service_account = Some(name);
        if should_automount(&account, &pod) {
            let generate = || util::generate_name(&format!("{SERVICE_ACCOUNT_VOLUME_NAME}-"));
            mount_service_account_token(&mut pod, &generate)?;
        }
        let spec = pod.spec.get_or_insert_with(Default::default);
        if spec.image_pull_secrets.as_ref().is_none_or(Vec::is_empty)
            && let Some(secrets) = account.image_pull_secrets.as_ref().filter(|s| !s.is_empty())
        {
            spec.image_pull_secrets = Some(secrets.clone());
        }
        encode(&pod, object)?;
        match self.check(store, &namespace, object)? {
            Ok(()) => Ok(()),
            Err(why) => Err(forbidden(resource, object, &why)),
        }
    }

    fn validate(
        &self,
        store: &GenericStore,
        resource: &Resource,
        operation: Operation,
        object: &Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if !is(resource, "", "pods") || operation != Operation::Create {
            return Ok(());
        }
        match self.check(store, object::namespace(object), object)? {
            Ok(()) => Ok(()),
            Err(why) => Err(forbidden(resource, object, &why)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn mounts_the_token_volume_in_every_container() {
        let mut p = pod(json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "init"}],
            "containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "x", "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH}]}],
        }}));
        mount_service_account_token(&mut p, &|| "kube-api-access-abcde".to_owned()).unwrap();
        let value = serde_json::to_value(&p).unwrap();
        assert_eq!(
            value["spec"]["volumes"],
            json!([{"name": "kube-api-access-abcde", "projected": token_volume_source()}])
        );
        let mount = json!({"name": "kube-api-access-abcde", "mountPath": DEFAULT_API_TOKEN_MOUNT_PATH, "readOnly": true});
        assert_eq!(value["spec"]["initContainers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(value["spec"]["containers"][0]["volumeMounts"], json!([mount]));
        assert_eq!(
            value["spec"]["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "a container that mounts the path itself is left alone"
        );
        // Idempotent: an existing token volume is reused.
        mount_service_account_token(&mut p, &|| "kube-api-access-zzzzz".to_owned()).unwrap();
        assert_eq!(serde_json::to_value(&p).unwrap(), value);
    }

    #[test]
    fn the_pod_or_account_may_opt_out() {
        let mut account = ServiceAccountObject::default();
        assert!(should_automount(
            &account,
            &pod(json!({"spec": {"containers": []}}))
        ));
        account.automount_service_account_token = Some(false);
        assert!(!should_automount(
            &account,
            &pod(json!({"spec": {"containers": []}}))
        ));
        assert!(should_automount(
            &account,
            &pod(json!({"spec": {"containers": [], "automountServiceAccountToken": true}}))
        ));
    }

    #[test]
    fn the_deprecated_alias_names_the_account() {
        assert_eq!(
            account_name(&pod(json!({"spec": {"containers": [], "serviceAccount": "old"}}))),
            "old"
        );
        assert_eq!(
            account_name(&pod(
                json!({"spec": {"containers": [], "serviceAccount": "old", "serviceAccountName": "new"}})
            )),
            "new"
        );
    }

    #[test]
    fn mountable_secrets_are_enforced() {
        let account: ServiceAccountObject = serde_json::from_value(json!({
            "metadata": {"name": "builder", "annotations": {ENFORCE_MOUNTABLE_SECRETS_ANNOTATION: "true"}},
            "secrets": [{"name": "allowed"}],
        }))
        .unwrap();
        assert!(enforce_mountable_secrets(&account));
        let p = pod(json!({"spec": {"containers": [{"name": "c", "env": [
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "other", "key": "k"}}}
        ]}]}}));
        assert_eq!(
            limit_secret_references(&account, &p).unwrap(),
            "container c with envVar TOKEN referencing secret.secretName=\"other\" is not allowed because service account builder does not reference that secret"
        );
        let ok = pod(
            json!({"spec": {"containers": [{"name": "c"}], "volumes": [{"name": "s", "secret": {"secretName": "allowed"}}]}}),
        );
        assert_eq!(limit_secret_references(&account, &ok), None);
    }

    #[test]
    fn mirror_pods_may_not_use_secrets() {
        let value =
            json!({"spec": {"containers": [{"name": "c", "envFrom": [{"secretRef": {"name": "s"}}]}]}});
        assert_eq!(pod_secret_names(&value), BTreeSet::from(["s".to_owned()]));
    }
}
