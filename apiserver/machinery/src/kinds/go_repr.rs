//! How upstream's Go encoder prints the internal (`pkg/apis/core`) pod types, and the unified
//! diff upstream puts in its "pod updates may not change fields" error.
//!
//! Upstream validates internal types, which carry no JSON tags: when a validation error quotes
//! a whole struct (`field.Invalid(path, toleration, ...)`) or when `ValidatePodUpdate` diffs
//! two pod specs (`diff.Diff`: `json.MarshalIndent` of both, then go-difflib's unified diff),
//! clients see Go field names (`"Name"`, `"HostPort"`), every field including zero ones, and
//! `null` for nil pointers, slices and maps. [`render`] rebuilds that shape from the core/v1
//! JSON of a type with a table of the internal types' fields (in declaration order, embedded
//! structs flattened as `encoding/json` flattens them); [`compact`] and [`indented`] print it
//! with Go's escaping; [`unified_diff`] is a port of go-difflib's `SequenceMatcher` and
//! `WriteUnifiedDiff` (with its "autojunk" heuristic), so hunks match upstream's.
//!
//! Rarely used volume sources (cloud disks and the like) are not in the table; they are
//! printed from their v1 JSON with capitalized keys, which is close but not always exact.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::field::BadValue;

/// A value as Go's encoder sees it: objects keep field order.
#[derive(Clone, Debug, PartialEq)]
pub enum GoValue {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number, printed as is.
    Num(String),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<GoValue>),
    /// An object, in field order.
    Obj(Vec<(String, GoValue)>),
}

#[derive(Clone, Copy, Debug)]
enum Ty {
    /// A Go `string` (zero value `""`).
    Str,
    /// A Go `bool` (zero value `false`).
    Bool,
    /// A Go integer (zero value `0`).
    Int,
    /// A pointer to a scalar, a quantity pointer, or an enum pointer (`null` when absent).
    Ptr,
    /// A slice of scalars (`null` when absent).
    Scalars,
    /// A `map[string]string` or resource list (`null` when absent; keys sorted).
    Map,
    /// A non-pointer `resource.Quantity` (`"0"` when absent).
    Quantity,
    /// An `intstr.IntOrString`.
    IntOrString,
    /// A non-pointer struct.
    Struct(&'static str),
    /// A pointer to a struct.
    PtrTo(&'static str),
    /// A slice of structs.
    List(&'static str),
    /// An embedded struct: its fields are read from, and printed in, the enclosing object.
    Embed(&'static str),
    /// A `*metav1.LabelSelector` (a versioned type: JSON tags, omitempty).
    Selector,
    /// A type not in the table: its v1 JSON with capitalized keys.
    Other,
}

type Field = (&'static str, &'static str, Ty);

fn fields(kind: &str) -> Option<&'static [Field]> {
    use Ty::*;
    Some(match kind {
        "PodSpec" => &[
            ("Volumes", "volumes", List("Volume")),
            ("InitContainers", "initContainers", List("Container")),
            ("Containers", "containers", List("Container")),
            (
                "EphemeralContainers",
                "ephemeralContainers",
                List("EphemeralContainer"),
            ),
            ("RestartPolicy", "restartPolicy", Str),
            (
                "TerminationGracePeriodSeconds",
                "terminationGracePeriodSeconds",
                Ptr,
            ),
            ("ActiveDeadlineSeconds", "activeDeadlineSeconds", Ptr),
            ("DNSPolicy", "dnsPolicy", Str),
            ("NodeSelector", "nodeSelector", Map),
            ("ServiceAccountName", "serviceAccountName", Str),
            (
                "AutomountServiceAccountToken",
                "automountServiceAccountToken",
                Ptr,
            ),
            ("NodeName", "nodeName", Str),
            ("SecurityContext", "securityContext", PtrTo("PodSecurityContext")),
            (
                "ImagePullSecrets",
                "imagePullSecrets",
                List("LocalObjectReference"),
            ),
            ("Hostname", "hostname", Str),
            ("Subdomain", "subdomain", Str),
            ("SetHostnameAsFQDN", "setHostnameAsFQDN", Ptr),
            ("Affinity", "affinity", PtrTo("Affinity")),
            ("SchedulerName", "schedulerName", Str),
            ("Tolerations", "tolerations", List("Toleration")),
            ("HostAliases", "hostAliases", List("HostAlias")),
            ("PriorityClassName", "priorityClassName", Str),
            ("Priority", "priority", Ptr),
            ("PreemptionPolicy", "preemptionPolicy", Ptr),
            ("DNSConfig", "dnsConfig", PtrTo("PodDNSConfig")),
            ("ReadinessGates", "readinessGates", List("PodReadinessGate")),
            ("RuntimeClassName", "runtimeClassName", Ptr),
            ("Overhead", "overhead", Map),
            ("EnableServiceLinks", "enableServiceLinks", Ptr),
            (
                "TopologySpreadConstraints",
                "topologySpreadConstraints",
                List("TopologySpreadConstraint"),
            ),
            ("OS", "os", PtrTo("PodOS")),
            ("SchedulingGates", "schedulingGates", List("PodSchedulingGate")),
            ("ResourceClaims", "resourceClaims", List("PodResourceClaim")),
            ("Resources", "resources", PtrTo("ResourceRequirements")),
            ("HostnameOverride", "hostnameOverride", Ptr),
            ("WorkloadRef", "workloadRef", PtrTo("WorkloadReference")),
        ],
        "Container" => &[
            ("Name", "name", Str),
            ("Image", "image", Str),
            ("Command", "command", Scalars),
            ("Args", "args", Scalars),
            ("WorkingDir", "workingDir", Str),
            ("Ports", "ports", List("ContainerPort")),
            ("EnvFrom", "envFrom", List("EnvFromSource")),
            ("Env", "env", List("EnvVar")),
            ("Resources", "resources", Struct("ResourceRequirements")),
            ("ResizePolicy", "resizePolicy", List("ContainerResizePolicy")),
            ("RestartPolicy", "restartPolicy", Ptr),
            (
                "RestartPolicyRules",
                "restartPolicyRules",
                List("ContainerRestartRule"),
            ),
            ("VolumeMounts", "volumeMounts", List("VolumeMount")),
            ("VolumeDevices", "volumeDevices", List("VolumeDevice")),
            ("LivenessProbe", "livenessProbe", PtrTo("Probe")),
            ("ReadinessProbe", "readinessProbe", PtrTo("Probe")),
            ("StartupProbe", "startupProbe", PtrTo("Probe")),
            ("Lifecycle", "lifecycle", PtrTo("Lifecycle")),
            ("TerminationMessagePath", "terminationMessagePath", Str),
            ("TerminationMessagePolicy", "terminationMessagePolicy", Str),
            ("ImagePullPolicy", "imagePullPolicy", Str),
            ("SecurityContext", "securityContext", PtrTo("SecurityContext")),
            ("Stdin", "stdin", Bool),
            ("StdinOnce", "stdinOnce", Bool),
            ("TTY", "tty", Bool),
        ],
        "EphemeralContainer" => &[
            ("", "", Embed("Container")),
            ("TargetContainerName", "targetContainerName", Str),
        ],
        "ContainerPort" => &[
            ("Name", "name", Str),
            ("HostPort", "hostPort", Int),
            ("ContainerPort", "containerPort", Int),
            ("Protocol", "protocol", Str),
            ("HostIP", "hostIP", Str),
        ],
        "EnvVar" => &[
            ("Name", "name", Str),
            ("Value", "value", Str),
            ("ValueFrom", "valueFrom", PtrTo("EnvVarSource")),
        ],
        "EnvVarSource" => &[
            ("FieldRef", "fieldRef", PtrTo("ObjectFieldSelector")),
            (
                "ResourceFieldRef",
                "resourceFieldRef",
                PtrTo("ResourceFieldSelector"),
            ),
            ("ConfigMapKeyRef", "configMapKeyRef", PtrTo("KeySelector")),
            ("SecretKeyRef", "secretKeyRef", PtrTo("KeySelector")),
            ("FileKeyRef", "fileKeyRef", PtrTo("FileKeySelector")),
        ],
        "EnvFromSource" => &[
            ("Prefix", "prefix", Str),
            ("ConfigMapRef", "configMapRef", PtrTo("EnvSource")),
            ("SecretRef", "secretRef", PtrTo("EnvSource")),
        ],
        "EnvSource" => &[("Name", "name", Str), ("Optional", "optional", Ptr)],
        "ObjectFieldSelector" => &[("APIVersion", "apiVersion", Str), ("FieldPath", "fieldPath", Str)],
        "ResourceFieldSelector" => &[
            ("ContainerName", "containerName", Str),
            ("Resource", "resource", Str),
            ("Divisor", "divisor", Quantity),
        ],
        "KeySelector" => &[
            ("Name", "name", Str),
            ("Key", "key", Str),
            ("Optional", "optional", Ptr),
        ],
        "FileKeySelector" => &[
            ("VolumeName", "volumeName", Str),
            ("Path", "path", Str),
            ("Key", "key", Str),
            ("Optional", "optional", Ptr),
        ],
        "ResourceRequirements" => &[
            ("Limits", "limits", Map),
            ("Requests", "requests", Map),
            ("Claims", "claims", List("ResourceClaim")),
        ],
        "ResourceClaim" => &[("Name", "name", Str), ("Request", "request", Str)],
        "ContainerResizePolicy" => &[
            ("ResourceName", "resourceName", Str),
            ("RestartPolicy", "restartPolicy", Str),
        ],
        "ContainerRestartRule" => &[
            ("Action", "action", Str),
            ("ExitCodes", "exitCodes", PtrTo("ContainerRestartRuleOnExitCodes")),
        ],
        "ContainerRestartRuleOnExitCodes" => &[("Operator", "operator", Str), ("Values", "values", Scalars)],
        "VolumeMount" => &[
            ("Name", "name", Str),
            ("ReadOnly", "readOnly", Bool),
            ("RecursiveReadOnly", "recursiveReadOnly", Ptr),
            ("MountPath", "mountPath", Str),
            ("SubPath", "subPath", Str),
            ("MountPropagation", "mountPropagation", Ptr),
            ("SubPathExpr", "subPathExpr", Str),
        ],
        "VolumeDevice" => &[("Name", "name", Str), ("DevicePath", "devicePath", Str)],
        "Probe" => &[
            ("", "", Embed("ProbeHandler")),
            ("InitialDelaySeconds", "initialDelaySeconds", Int),
            ("TimeoutSeconds", "timeoutSeconds", Int),
            ("PeriodSeconds", "periodSeconds", Int),
            ("SuccessThreshold", "successThreshold", Int),
            ("FailureThreshold", "failureThreshold", Int),
            (
                "TerminationGracePeriodSeconds",
                "terminationGracePeriodSeconds",
                Ptr,
            ),
        ],
        "ProbeHandler" => &[
            ("Exec", "exec", PtrTo("ExecAction")),
            ("HTTPGet", "httpGet", PtrTo("HTTPGetAction")),
            ("TCPSocket", "tcpSocket", PtrTo("TCPSocketAction")),
            ("GRPC", "grpc", PtrTo("GRPCAction")),
        ],
        "ExecAction" => &[("Command", "command", Scalars)],
        "HTTPGetAction" => &[
            ("Path", "path", Str),
            ("Port", "port", IntOrString),
            ("Host", "host", Str),
            ("Scheme", "scheme", Str),
            ("HTTPHeaders", "httpHeaders", List("HTTPHeader")),
        ],
        "HTTPHeader" => &[("Name", "name", Str), ("Value", "value", Str)],
        "TCPSocketAction" => &[("Port", "port", IntOrString), ("Host", "host", Str)],
        "GRPCAction" => &[("Port", "port", Int), ("Service", "service", Ptr)],
        "Lifecycle" => &[
            ("PostStart", "postStart", PtrTo("LifecycleHandler")),
            ("PreStop", "preStop", PtrTo("LifecycleHandler")),
            ("StopSignal", "stopSignal", Ptr),
        ],
        "LifecycleHandler" => &[
            ("Exec", "exec", PtrTo("ExecAction")),
            ("HTTPGet", "httpGet", PtrTo("HTTPGetAction")),
            ("TCPSocket", "tcpSocket", PtrTo("TCPSocketAction")),
            ("Sleep", "sleep", PtrTo("SleepAction")),
        ],
        "SleepAction" => &[("Seconds", "seconds", Int)],
        "SecurityContext" => &[
            ("Capabilities", "capabilities", PtrTo("Capabilities")),
            ("Privileged", "privileged", Ptr),
            ("SELinuxOptions", "seLinuxOptions", PtrTo("SELinuxOptions")),
            (
                "WindowsOptions",
                "windowsOptions",
                PtrTo("WindowsSecurityContextOptions"),
            ),
            ("RunAsUser", "runAsUser", Ptr),
            ("RunAsGroup", "runAsGroup", Ptr),
            ("RunAsNonRoot", "runAsNonRoot", Ptr),
            ("ReadOnlyRootFilesystem", "readOnlyRootFilesystem", Ptr),
            ("AllowPrivilegeEscalation", "allowPrivilegeEscalation", Ptr),
            ("ProcMount", "procMount", Ptr),
            ("SeccompProfile", "seccompProfile", PtrTo("Profile")),
            ("AppArmorProfile", "appArmorProfile", PtrTo("Profile")),
        ],
        "Capabilities" => &[("Add", "add", Scalars), ("Drop", "drop", Scalars)],
        "SELinuxOptions" => &[
            ("User", "user", Str),
            ("Role", "role", Str),
            ("Type", "type", Str),
            ("Level", "level", Str),
        ],
        "WindowsSecurityContextOptions" => &[
            ("GMSACredentialSpecName", "gmsaCredentialSpecName", Ptr),
            ("GMSACredentialSpec", "gmsaCredentialSpec", Ptr),
            ("RunAsUserName", "runAsUserName", Ptr),
            ("HostProcess", "hostProcess", Ptr),
        ],
        "Profile" => &[
            ("Type", "type", Str),
            ("LocalhostProfile", "localhostProfile", Ptr),
        ],
        "PodSecurityContext" => &[
            ("HostNetwork", "hostNetwork", Bool),
            ("HostPID", "hostPID", Bool),
            ("HostIPC", "hostIPC", Bool),
            ("ShareProcessNamespace", "shareProcessNamespace", Ptr),
            ("HostUsers", "hostUsers", Ptr),
            ("SELinuxOptions", "seLinuxOptions", PtrTo("SELinuxOptions")),
            (
                "WindowsOptions",
                "windowsOptions",
                PtrTo("WindowsSecurityContextOptions"),
            ),
            ("RunAsUser", "runAsUser", Ptr),
            ("RunAsGroup", "runAsGroup", Ptr),
            ("RunAsNonRoot", "runAsNonRoot", Ptr),
            ("SupplementalGroups", "supplementalGroups", Scalars),
            ("SupplementalGroupsPolicy", "supplementalGroupsPolicy", Ptr),
            ("FSGroup", "fsGroup", Ptr),
            ("FSGroupChangePolicy", "fsGroupChangePolicy", Ptr),
            ("Sysctls", "sysctls", List("NameValue")),
            ("SeccompProfile", "seccompProfile", PtrTo("Profile")),
            ("AppArmorProfile", "appArmorProfile", PtrTo("Profile")),
            ("SELinuxChangePolicy", "seLinuxChangePolicy", Ptr),
        ],
        "NameValue" => &[("Name", "name", Str), ("Value", "value", Str)],
        "LocalObjectReference" | "PodSchedulingGate" => &[("Name", "name", Str)],
        "PodIP" | "HostIP" => &[("IP", "ip", Str)],
        "Affinity" => &[
            ("NodeAffinity", "nodeAffinity", PtrTo("NodeAffinity")),
            ("PodAffinity", "podAffinity", PtrTo("PodAffinity")),
            ("PodAntiAffinity", "podAntiAffinity", PtrTo("PodAffinity")),
        ],
        "NodeAffinity" => &[
            (
                "RequiredDuringSchedulingIgnoredDuringExecution",
                "requiredDuringSchedulingIgnoredDuringExecution",
                PtrTo("NodeSelector"),
            ),
            (
                "PreferredDuringSchedulingIgnoredDuringExecution",
                "preferredDuringSchedulingIgnoredDuringExecution",
                List("PreferredSchedulingTerm"),
            ),
        ],
        "NodeSelector" => &[("NodeSelectorTerms", "nodeSelectorTerms", List("NodeSelectorTerm"))],
        "NodeSelectorTerm" => &[
            (
                "MatchExpressions",
                "matchExpressions",
                List("NodeSelectorRequirement"),
            ),
            ("MatchFields", "matchFields", List("NodeSelectorRequirement")),
        ],
        "NodeSelectorRequirement" => &[
            ("Key", "key", Str),
            ("Operator", "operator", Str),
            ("Values", "values", Scalars),
        ],
        "PreferredSchedulingTerm" => &[
            ("Weight", "weight", Int),
            ("Preference", "preference", Struct("NodeSelectorTerm")),
        ],
        "PodAffinity" => &[
            (
                "RequiredDuringSchedulingIgnoredDuringExecution",
                "requiredDuringSchedulingIgnoredDuringExecution",
                List("PodAffinityTerm"),
            ),
            (
                "PreferredDuringSchedulingIgnoredDuringExecution",
                "preferredDuringSchedulingIgnoredDuringExecution",
                List("WeightedPodAffinityTerm"),
            ),
        ],
        "PodAffinityTerm" => &[
            ("LabelSelector", "labelSelector", Selector),
            ("Namespaces", "namespaces", Scalars),
            ("TopologyKey", "topologyKey", Str),
            ("NamespaceSelector", "namespaceSelector", Selector),
            ("MatchLabelKeys", "matchLabelKeys", Scalars),
            ("MismatchLabelKeys", "mismatchLabelKeys", Scalars),
        ],
        "WeightedPodAffinityTerm" => &[
            ("Weight", "weight", Int),
            ("PodAffinityTerm", "podAffinityTerm", Struct("PodAffinityTerm")),
        ],
        "Toleration" => &[
            ("Key", "key", Str),
            ("Operator", "operator", Str),
            ("Value", "value", Str),
            ("Effect", "effect", Str),
            ("TolerationSeconds", "tolerationSeconds", Ptr),
        ],
        "HostAlias" => &[("IP", "ip", Str), ("Hostnames", "hostnames", Scalars)],
        "PodDNSConfig" => &[
            ("Nameservers", "nameservers", Scalars),
            ("Searches", "searches", Scalars),
            ("Options", "options", List("PodDNSConfigOption")),
        ],
        "PodDNSConfigOption" => &[("Name", "name", Str), ("Value", "value", Ptr)],
        "PodReadinessGate" => &[("ConditionType", "conditionType", Str)],
        "TopologySpreadConstraint" => &[
            ("MaxSkew", "maxSkew", Int),
            ("TopologyKey", "topologyKey", Str),
            ("WhenUnsatisfiable", "whenUnsatisfiable", Str),
            ("LabelSelector", "labelSelector", Selector),
            ("MinDomains", "minDomains", Ptr),
            ("NodeAffinityPolicy", "nodeAffinityPolicy", Ptr),
            ("NodeTaintsPolicy", "nodeTaintsPolicy", Ptr),
            ("MatchLabelKeys", "matchLabelKeys", Scalars),
        ],
        "PodOS" => &[("Name", "name", Str)],
        "PodResourceClaim" => &[
            ("Name", "name", Str),
            ("ResourceClaimName", "resourceClaimName", Ptr),
            ("ResourceClaimTemplateName", "resourceClaimTemplateName", Ptr),
        ],
        "WorkloadReference" => &[
            ("Name", "name", Str),
            ("PodGroup", "podGroup", Str),
            ("PodGroupReplicaKey", "podGroupReplicaKey", Str),
        ],
        "Volume" => &[("Name", "name", Str), ("", "", Embed("VolumeSource"))],
        "VolumeSource" => &[
            ("HostPath", "hostPath", PtrTo("HostPathVolumeSource")),
            ("EmptyDir", "emptyDir", PtrTo("EmptyDirVolumeSource")),
            ("GCEPersistentDisk", "gcePersistentDisk", Other),
            ("AWSElasticBlockStore", "awsElasticBlockStore", Other),
            ("GitRepo", "gitRepo", Other),
            ("Secret", "secret", PtrTo("SecretVolumeSource")),
            ("NFS", "nfs", PtrTo("NFSVolumeSource")),
            ("ISCSI", "iscsi", Other),
            ("Glusterfs", "glusterfs", Other),
            (
                "PersistentVolumeClaim",
                "persistentVolumeClaim",
                PtrTo("PersistentVolumeClaimVolumeSource"),
            ),
            ("RBD", "rbd", Other),
            ("Quobyte", "quobyte", Other),
            ("FlexVolume", "flexVolume", Other),
            ("Cinder", "cinder", Other),
            ("CephFS", "cephfs", Other),
            ("Flocker", "flocker", Other),
            ("DownwardAPI", "downwardAPI", PtrTo("DownwardAPIVolumeSource")),
            ("FC", "fc", Other),
            ("AzureFile", "azureFile", Other),
            ("ConfigMap", "configMap", PtrTo("ConfigMapVolumeSource")),
            ("VsphereVolume", "vsphereVolume", Other),
            ("AzureDisk", "azureDisk", Other),
            ("PhotonPersistentDisk", "photonPersistentDisk", Other),
            ("Projected", "projected", PtrTo("ProjectedVolumeSource")),
            ("PortworxVolume", "portworxVolume", Other),
            ("ScaleIO", "scaleIO", Other),
            ("StorageOS", "storageos", Other),
            ("CSI", "csi", PtrTo("CSIVolumeSource")),
            ("Ephemeral", "ephemeral", Other),
            ("Image", "image", PtrTo("ImageVolumeSource")),
        ],
        "HostPathVolumeSource" => &[("Path", "path", Str), ("Type", "type", Ptr)],
        "EmptyDirVolumeSource" => &[("Medium", "medium", Str), ("SizeLimit", "sizeLimit", Ptr)],
        "SecretVolumeSource" => &[
            ("SecretName", "secretName", Str),
            ("Items", "items", List("KeyToPath")),
            ("DefaultMode", "defaultMode", Ptr),
            ("Optional", "optional", Ptr),
        ],
        "ConfigMapVolumeSource" => &[
            ("Name", "name", Str),
            ("Items", "items", List("KeyToPath")),
            ("DefaultMode", "defaultMode", Ptr),
            ("Optional", "optional", Ptr),
        ],
        "KeyToPath" => &[("Key", "key", Str), ("Path", "path", Str), ("Mode", "mode", Ptr)],
        "PersistentVolumeClaimVolumeSource" => {
            &[("ClaimName", "claimName", Str), ("ReadOnly", "readOnly", Bool)]
        }
        "DownwardAPIVolumeSource" => &[
            ("Items", "items", List("DownwardAPIVolumeFile")),
            ("DefaultMode", "defaultMode", Ptr),
        ],
        "DownwardAPIVolumeFile" => &[
            ("Path", "path", Str),
            ("FieldRef", "fieldRef", PtrTo("ObjectFieldSelector")),
            (
                "ResourceFieldRef",
                "resourceFieldRef",
                PtrTo("ResourceFieldSelector"),
            ),
            ("Mode", "mode", Ptr),
        ],
        "ProjectedVolumeSource" => &[
            ("Sources", "sources", List("VolumeProjection")),
            ("DefaultMode", "defaultMode", Ptr),
        ],
        "VolumeProjection" => &[
            ("Secret", "secret", PtrTo("KeysProjection")),
            ("DownwardAPI", "downwardAPI", PtrTo("DownwardAPIProjection")),
            ("ConfigMap", "configMap", PtrTo("KeysProjection")),
            (
                "ServiceAccountToken",
                "serviceAccountToken",
                PtrTo("ServiceAccountTokenProjection"),
            ),
            ("ClusterTrustBundle", "clusterTrustBundle", Other),
            ("PodCertificate", "podCertificate", Other),
        ],
        "KeysProjection" => &[
            ("Name", "name", Str),
            ("Items", "items", List("KeyToPath")),
            ("Optional", "optional", Ptr),
        ],
        "DownwardAPIProjection" => &[("Items", "items", List("DownwardAPIVolumeFile"))],
        "ServiceAccountTokenProjection" => &[
            ("Audience", "audience", Str),
            ("ExpirationSeconds", "expirationSeconds", Int),
            ("Path", "path", Str),
        ],
        "NFSVolumeSource" => &[
            ("Server", "server", Str),
            ("Path", "path", Str),
            ("ReadOnly", "readOnly", Bool),
        ],
        "CSIVolumeSource" => &[
            ("Driver", "driver", Str),
            ("ReadOnly", "readOnly", Ptr),
            ("FSType", "fsType", Ptr),
            ("VolumeAttributes", "volumeAttributes", Map),
            (
                "NodePublishSecretRef",
                "nodePublishSecretRef",
                PtrTo("LocalObjectReference"),
            ),
        ],
        "ImageVolumeSource" => &[("Reference", "reference", Str), ("PullPolicy", "pullPolicy", Str)],
        _ => return None,
    })
}

fn scalar(value: &Value) -> GoValue {
    match value {
        Value::Null => GoValue::Null,
        Value::Bool(b) => GoValue::Bool(*b),
        Value::Number(n) => GoValue::Num(n.to_string()),
        Value::String(s) => GoValue::Str(s.clone()),
        Value::Array(items) => GoValue::Arr(items.iter().map(scalar).collect()),
        Value::Object(map) => GoValue::Obj(map.iter().map(|(k, v)| (k.clone(), scalar(v))).collect()),
    }
}

fn capitalized(value: &Value) -> GoValue {
    match value {
        Value::Array(items) => GoValue::Arr(items.iter().map(capitalized).collect()),
        Value::Object(map) => GoValue::Obj(
            map.iter()
                .map(|(k, v)| {
                    let mut chars = k.chars();
                    let key = chars
                        .next()
                        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                        .unwrap_or_default();
                    (key, capitalized(v))
                })
                .collect(),
        ),
        other => scalar(other),
    }
}

fn selector(value: &Value) -> GoValue {
    let Some(map) = value.as_object() else {
        return GoValue::Null;
    };
    let mut out = Vec::new();
    if let Some(labels) = map
        .get("matchLabels")
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
    {
        out.push(("matchLabels".to_owned(), scalar(labels)));
    }
    if let Some(exprs) = map
        .get("matchExpressions")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty())
    {
        let items = exprs
            .iter()
            .map(|e| {
                let mut req = vec![
                    ("key".to_owned(), scalar(e.get("key").unwrap_or(&Value::Null))),
                    (
                        "operator".to_owned(),
                        scalar(e.get("operator").unwrap_or(&Value::Null)),
                    ),
                ];
                if let Some(values) = e
                    .get("values")
                    .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
                {
                    req.push(("values".to_owned(), scalar(values)));
                }
                GoValue::Obj(req)
            })
            .collect();
        out.push(("matchExpressions".to_owned(), GoValue::Arr(items)));
    }
    GoValue::Obj(out)
}

fn render_fields(kind: &str, object: &Value, out: &mut Vec<(String, GoValue)>) {
    let Some(table) = fields(kind) else {
        if let GoValue::Obj(entries) = capitalized(object) {
            out.extend(entries);
        }
        return;
    };
    for (go_name, json_name, ty) in table {
        if let Ty::Embed(inner) = ty {
            render_fields(inner, object, out);
            continue;
        }
        let value = object.get(*json_name).filter(|v| !v.is_null());
        out.push(((*go_name).to_owned(), render_typed(*ty, value)));
    }
}

fn render_typed(ty: Ty, value: Option<&Value>) -> GoValue {
    match (ty, value) {
        (Ty::Str, None) => GoValue::Str(String::new()),
        (Ty::Bool, None) => GoValue::Bool(false),
        (Ty::Int, None) => GoValue::Num("0".to_owned()),
        (Ty::Quantity, None) => GoValue::Str("0".to_owned()),
        (Ty::Struct(kind), None) => render(kind, &Value::Object(serde_json::Map::new())),
        (Ty::Embed(_), _) => GoValue::Null,
        (_, None) => GoValue::Null,
        (Ty::Struct(kind) | Ty::PtrTo(kind), Some(v)) => render(kind, v),
        (Ty::List(kind), Some(v)) => match v.as_array() {
            Some(items) => GoValue::Arr(items.iter().map(|item| render(kind, item)).collect()),
            None => GoValue::Null,
        },
        (Ty::Selector, Some(v)) => selector(v),
        (Ty::Other, Some(v)) => capitalized(v),
        (_, Some(v)) => scalar(v),
    }
}

/// The internal type `kind` (`"Toleration"`, `"PodSpec"`, ...) printed from its v1 JSON.
pub fn render(kind: &str, object: &Value) -> GoValue {
    if kind == "PodSpec" {
        return render_pod_spec(object);
    }
    let mut out = Vec::new();
    render_fields(kind, object, &mut out);
    GoValue::Obj(out)
}

/// The internal pod spec keeps the host namespace switches in its security context.
fn render_pod_spec(object: &Value) -> GoValue {
    let mut spec = object.clone();
    if let Some(map) = spec.as_object_mut() {
        let mut security = map
            .get("securityContext")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for key in [
            "hostNetwork",
            "hostPID",
            "hostIPC",
            "shareProcessNamespace",
            "hostUsers",
        ] {
            match map.get(key) {
                Some(value) => security.insert(key.to_owned(), value.clone()),
                None => security.remove(key),
            };
        }
        map.insert("securityContext".to_owned(), Value::Object(security));
    }
    let mut out = Vec::new();
    render_fields("PodSpec", &spec, &mut out);
    GoValue::Obj(out)
}

/// [`render`] of a typed value.
pub fn render_typed_value<T: Serialize>(kind: &str, value: &T) -> GoValue {
    render(kind, &serde_json::to_value(value).unwrap_or(Value::Null))
}

/// A bad value quoting an internal struct, as upstream's field errors print it.
pub fn bad_struct<T: Serialize>(kind: &str, value: &T) -> BadValue {
    BadValue::Plain(compact(&render_typed_value(kind, value)))
}

/// A bad value quoting a list of internal structs.
pub fn bad_struct_list<T: Serialize>(kind: &str, values: &[T]) -> BadValue {
    let items = values.iter().map(|v| render_typed_value(kind, v)).collect();
    BadValue::Plain(compact(&GoValue::Arr(items)))
}

/// Go's `encoding/json` string quoting (HTML-safe).
fn quote(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
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

fn write_compact(value: &GoValue, out: &mut String) {
    match value {
        GoValue::Null => out.push_str("null"),
        GoValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        GoValue::Num(n) => out.push_str(n),
        GoValue::Str(s) => quote(s, out),
        GoValue::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_compact(item, out);
            }
            out.push(']');
        }
        GoValue::Obj(entries) => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                quote(key, out);
                out.push(':');
                write_compact(item, out);
            }
            out.push('}');
        }
    }
}

/// `json.Marshal`.
pub fn compact(value: &GoValue) -> String {
    let mut out = String::new();
    write_compact(value, &mut out);
    out
}

fn write_indented(value: &GoValue, depth: usize, out: &mut String) {
    let pad = |out: &mut String, d: usize| {
        out.push('\n');
        out.push_str(&" ".repeat(d));
    };
    match value {
        GoValue::Arr(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, depth + 1);
                write_indented(item, depth + 1, out);
            }
            pad(out, depth);
            out.push(']');
        }
        GoValue::Obj(entries) if !entries.is_empty() => {
            out.push('{');
            for (i, (key, item)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, depth + 1);
                quote(key, out);
                out.push_str(": ");
                write_indented(item, depth + 1, out);
            }
            pad(out, depth);
            out.push('}');
        }
        other => write_compact(other, out),
    }
}

/// `json.MarshalIndent(value, "", " ")`.
pub fn indented(value: &GoValue) -> String {
    let mut out = String::new();
    write_indented(value, 0, &mut out);
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Match {
    a: usize,
    b: usize,
    size: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OpCode {
    tag: u8,
    i1: usize,
    i2: usize,
    j1: usize,
    j2: usize,
}

/// go-difflib's `SequenceMatcher` over lines, with `autoJunk` on and no junk function.
struct Matcher<'a> {
    a: &'a [String],
    b: &'a [String],
    b2j: BTreeMap<&'a str, Vec<usize>>,
}

impl<'a> Matcher<'a> {
    fn new(a: &'a [String], b: &'a [String]) -> Self {
        let mut b2j: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, line) in b.iter().enumerate() {
            b2j.entry(line.as_str()).or_default().push(i);
        }
        let n = b.len();
        if n >= 200 {
            let ntest = n / 100 + 1;
            let popular: BTreeSet<&str> = b2j
                .iter()
                .filter(|(_, indices)| indices.len() > ntest)
                .map(|(s, _)| *s)
                .collect();
            for s in popular {
                b2j.remove(s);
            }
        }
        Matcher { a, b, b2j }
    }

    fn find_longest_match(&self, alo: usize, ahi: usize, blo: usize, bhi: usize) -> Match {
        let (mut besti, mut bestj, mut bestsize) = (alo, blo, 0);
        let mut j2len: BTreeMap<usize, usize> = BTreeMap::new();
        for i in alo..ahi {
            let mut newj2len = BTreeMap::new();
            if let Some(indices) = self.b2j.get(self.a[i].as_str()) {
                for &j in indices {
                    if j < blo {
                        continue;
                    }
                    if j >= bhi {
                        break;
                    }
                    let k = j.checked_sub(1).and_then(|p| j2len.get(&p)).copied().unwrap_or(0) + 1;
                    newj2len.insert(j, k);
                    if k > bestsize {
                        besti = i + 1 - k;
                        bestj = j + 1 - k;
                        bestsize = k;
                    }
                }
            }
            j2len = newj2len;
        }
        // No junk function: only the popular-element extension applies.
        while besti > alo && bestj > blo && self.a[besti - 1] == self.b[bestj - 1] {
            besti -= 1;
            bestj -= 1;
            bestsize += 1;
        }
        while besti + bestsize < ahi
            && bestj + bestsize < bhi
            && self.a[besti + bestsize] == self.b[bestj + bestsize]
        {
            bestsize += 1;
        }
        Match {
            a: besti,
            b: bestj,
            size: bestsize,
        }
    }

    fn matching_blocks(&self) -> Vec<Match> {
        let mut matched = Vec::new();
        let mut queue = vec![(0, self.a.len(), 0, self.b.len())];
        // Depth-first in the order upstream's recursion appends: left part, match, right part.
        let mut stack: Vec<Result<(usize, usize, usize, usize), Match>> = queue.drain(..).map(Ok).collect();
        while let Some(item) = stack.pop() {
            match item {
                Err(m) => matched.push(m),
                Ok((alo, ahi, blo, bhi)) => {
                    let m = self.find_longest_match(alo, ahi, blo, bhi);
                    if m.size == 0 {
                        continue;
                    }
                    let (i, j, k) = (m.a, m.b, m.size);
                    if i + k < ahi && j + k < bhi {
                        stack.push(Ok((i + k, ahi, j + k, bhi)));
                    }
                    stack.push(Err(m));
                    if alo < i && blo < j {
                        stack.push(Ok((alo, i, blo, j)));
                    }
                }
            }
        }
        let mut non_adjacent = Vec::new();
        let (mut i1, mut j1, mut k1) = (0, 0, 0);
        for m in matched {
            if i1 + k1 == m.a && j1 + k1 == m.b {
                k1 += m.size;
            } else {
                if k1 > 0 {
                    non_adjacent.push(Match {
                        a: i1,
                        b: j1,
                        size: k1,
                    });
                }
                (i1, j1, k1) = (m.a, m.b, m.size);
            }
        }
        if k1 > 0 {
            non_adjacent.push(Match {
                a: i1,
                b: j1,
                size: k1,
            });
        }
        non_adjacent.push(Match {
            a: self.a.len(),
            b: self.b.len(),
            size: 0,
        });
        non_adjacent
    }

    fn opcodes(&self) -> Vec<OpCode> {
        let (mut i, mut j) = (0, 0);
        let mut codes = Vec::new();
        for m in self.matching_blocks() {
            let tag = if i < m.a && j < m.b {
                b'r'
            } else if i < m.a {
                b'd'
            } else if j < m.b {
                b'i'
            } else {
                0
            };
            if tag > 0 {
                codes.push(OpCode {
                    tag,
                    i1: i,
                    i2: m.a,
                    j1: j,
                    j2: m.b,
                });
            }
            i = m.a + m.size;
            j = m.b + m.size;
            if m.size > 0 {
                codes.push(OpCode {
                    tag: b'e',
                    i1: m.a,
                    i2: i,
                    j1: m.b,
                    j2: j,
                });
            }
        }
        codes
    }

    fn grouped_opcodes(&self, n: usize) -> Vec<Vec<OpCode>> {
        let mut codes = self.opcodes();
        if codes.is_empty() {
            codes.push(OpCode {
                tag: b'e',
                i1: 0,
                i2: 1,
                j1: 0,
                j2: 1,
            });
        }
        if let Some(first) = codes.first_mut()
            && first.tag == b'e'
        {
            first.i1 = first.i1.max(first.i2.saturating_sub(n));
            first.j1 = first.j1.max(first.j2.saturating_sub(n));
        }
        if let Some(last) = codes.last_mut()
            && last.tag == b'e'
        {
            last.i2 = last.i2.min(last.i1 + n);
            last.j2 = last.j2.min(last.j1 + n);
        }
        let nn = n + n;
        let mut groups = Vec::new();
        let mut group = Vec::new();
        for c in codes {
            let (mut i1, mut j1) = (c.i1, c.j1);
            if c.tag == b'e' && c.i2 - c.i1 > nn {
                group.push(OpCode {
                    tag: c.tag,
                    i1,
                    i2: c.i2.min(i1 + n),
                    j1,
                    j2: c.j2.min(j1 + n),
                });
                groups.push(std::mem::take(&mut group));
                i1 = i1.max(c.i2.saturating_sub(n));
                j1 = j1.max(c.j2.saturating_sub(n));
            }
            group.push(OpCode {
                tag: c.tag,
                i1,
                i2: c.i2,
                j1,
                j2: c.j2,
            });
        }
        if !(group.is_empty() || group.len() == 1 && group[0].tag == b'e') {
            groups.push(group);
        }
        groups
    }
}

fn format_range(start: usize, stop: usize) -> String {
    let mut beginning = start + 1;
    let length = stop - start;
    if length == 1 {
        return beginning.to_string();
    }
    if length == 0 {
        beginning -= 1;
    }
    format!("{beginning},{length}")
}

/// go-difflib's `SplitLines`: lines keep their `\n`, and the last one gets one.
fn split_lines(s: &str) -> Vec<String> {
    let mut lines: Vec<String> = s.split_inclusive('\n').map(str::to_owned).collect();
    if s.is_empty() || s.ends_with('\n') {
        lines.push(String::new());
    }
    if let Some(last) = lines.last_mut() {
        last.push('\n');
    }
    lines
}

/// Upstream's `diff.Diff(a, b)` of two rendered values: a unified diff (3 lines of context,
/// no file headers) of their indented JSON.
pub fn unified_diff(a: &GoValue, b: &GoValue) -> String {
    let a_lines = split_lines(&indented(a));
    let b_lines = split_lines(&indented(b));
    let matcher = Matcher::new(&a_lines, &b_lines);
    let mut out = String::new();
    for group in matcher.grouped_opcodes(3) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let _ = writeln!(
            out,
            "@@ -{} +{} @@",
            format_range(first.i1, last.i2),
            format_range(first.j1, last.j2)
        );
        for c in &group {
            if c.tag == b'e' {
                for line in &a_lines[c.i1..c.i2] {
                    out.push(' ');
                    out.push_str(line);
                }
                continue;
            }
            if c.tag == b'r' || c.tag == b'd' {
                for line in &a_lines[c.i1..c.i2] {
                    out.push('-');
                    out.push_str(line);
                }
            }
            if c.tag == b'r' || c.tag == b'i' {
                for line in &b_lines[c.j1..c.j2] {
                    out.push('+');
                    out.push_str(line);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_internal_structs_with_go_names() {
        let toleration = json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"});
        assert_eq!(
            compact(&render("Toleration", &toleration)),
            r#"{"Key":"k","Operator":"Exists","Value":"","Effect":"NoSchedule","TolerationSeconds":null}"#
        );
        let claim = json!({"name": "a", "resourceClaimName": "x"});
        assert_eq!(
            compact(&render("PodResourceClaim", &claim)),
            r#"{"Name":"a","ResourceClaimName":"x","ResourceClaimTemplateName":null}"#
        );
        let probe = json!({"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "timeoutSeconds": 1});
        assert_eq!(
            compact(&render("Probe", &probe)),
            r#"{"Exec":null,"HTTPGet":{"Path":"/","Port":80,"Host":"","Scheme":"HTTP","HTTPHeaders":null},"TCPSocket":null,"GRPC":null,"InitialDelaySeconds":0,"TimeoutSeconds":1,"PeriodSeconds":0,"SuccessThreshold":0,"FailureThreshold":0,"TerminationGracePeriodSeconds":null}"#
        );
        let mut escaped = String::new();
        quote("a<b>&\"", &mut escaped);
        assert_eq!(escaped, r#""a\u003cb\u003e\u0026\"""#);
    }

    #[test]
    fn indents_like_marshal_indent() {
        let value = render("PodOS", &json!({"name": "linux"}));
        assert_eq!(indented(&value), "{\n \"Name\": \"linux\"\n}");
        let empty = GoValue::Obj(vec![
            ("A".into(), GoValue::Arr(vec![])),
            ("B".into(), GoValue::Null),
        ]);
        assert_eq!(indented(&empty), "{\n \"A\": [],\n \"B\": null\n}");
    }

    #[test]
    fn diffs_like_go_difflib() {
        let a = render("ContainerPort", &json!({"containerPort": 80, "protocol": "TCP"}));
        let b = render("ContainerPort", &json!({"containerPort": 81, "protocol": "TCP"}));
        assert_eq!(
            unified_diff(&a, &b),
            "@@ -1,7 +1,7 @@\n {\n  \"Name\": \"\",\n  \"HostPort\": 0,\n- \"ContainerPort\": 80,\n+ \"ContainerPort\": 81,\n  \"Protocol\": \"TCP\",\n  \"HostIP\": \"\"\n }\n"
        );
        assert_eq!(unified_diff(&a, &a), "");
    }
}
