//! A pod container's runtime description: the kubelet's `generateContainerConfig` plus the
//! CRI runtime's defaults, turning a k8s `Container` with its pod, image config, environment
//! and prepared mounts into the runtime's [`ContainerSpec`].
//!
//! Pure: files, mounts and the image are prepared by the caller.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, Pod};
use rudder_machinery::validation::quantity::parse_quantity;

use crate::images::RuntimeConfig;
use crate::pod::env::EnvVar;
use crate::runtime::spec::{ContainerSpec, Mount, NamespaceMode, Namespaces, Resources, User};

/// The kubelet's CFS period (100 ms) and its lower bounds on shares and quota.
const CPU_PERIOD: u64 = 100_000;
const MIN_SHARES: u64 = 2;
const MIN_QUOTA: i64 = 1_000;
/// The kubelet's oom_score_adj for Guaranteed and BestEffort pods.
const GUARANTEED_OOM_SCORE_ADJ: i32 = -997;
const BEST_EFFORT_OOM_SCORE_ADJ: i32 = 1000;

/// Why a container cannot be described; shown as `CreateContainerConfigError`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("no command specified")]
    NoCommand,
    #[error("image's user {0:?} is not numeric; name lookup in the image is not supported")]
    NamedUser(String),
    #[error("container has runAsNonRoot and image will run as root (pod: {pod}, container: {container})")]
    RunsAsRoot { pod: String, container: String },
    #[error("localhostProfile must be set if seccompProfile type is Localhost.")]
    NoLocalhostProfile,
}

/// The seccomp profile the kubelet asks the runtime for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeccompChoice {
    Unconfined,
    RuntimeDefault,
    /// The profile file under the kubelet's seccomp root.
    Localhost(PathBuf),
}

/// The kubelet's `getSeccompProfile`: the container's `seccompProfile`, else the pod's, else
/// Unconfined (the `SeccompDefault` kubelet option is off by default); Localhost profiles are
/// files under `root` (`<data dir>/seccomp`, the kubelet's `<root dir>/seccomp`).
pub fn seccomp_choice(
    pod: &Pod,
    container: &Container,
    root: &std::path::Path,
) -> Result<SeccompChoice, ConfigError> {
    let profile = container
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref())
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.security_context.as_ref())
                .and_then(|s| s.seccomp_profile.as_ref())
        });
    Ok(
        match profile.map(|p| (p.type_.as_str(), p.localhost_profile.as_deref())) {
            Some(("RuntimeDefault", _)) => SeccompChoice::RuntimeDefault,
            Some(("Localhost", Some(name))) if !name.is_empty() => SeccompChoice::Localhost(root.join(name)),
            Some(("Localhost", _)) => return Err(ConfigError::NoLocalhostProfile),
            _ => SeccompChoice::Unconfined,
        },
    )
}

/// Everything beside the pod and container that shapes the container.
#[derive(Clone, Debug)]
pub struct ContainerInputs<'a> {
    pub image: &'a RuntimeConfig,
    pub env: &'a [EnvVar],
    pub rootfs: PathBuf,
    pub mounts: Vec<Mount>,
    /// The sandbox's network namespace; `None` for hostNetwork pods.
    pub netns: Option<PathBuf>,
    /// The sandbox's IPC namespace, joined unless the pod has hostIPC.
    pub ipcns: PathBuf,
    /// The sandbox's PID namespace, joined by the containers of `shareProcessNamespace` pods.
    pub pidns: PathBuf,
    pub hostname: String,
    pub cgroup_parent: String,
    /// The node's memory capacity in bytes (for Burstable pods' oom_score_adj).
    pub node_memory: i64,
    /// The lowest oom_score_adj this process may give (containerd's `restrict_oom_score_adj`
    /// when it lacks CAP_SYS_RESOURCE); `None` when unrestricted.
    pub min_oom_score_adj: Option<i32>,
}

/// The lowest oom_score_adj this process may set: its own when it lacks CAP_SYS_RESOURCE
/// (bit 24 of its effective capabilities), as containerd's `restrict_oom_score_adj` does.
pub fn oom_score_adj_floor() -> Option<i32> {
    const CAP_SYS_RESOURCE: u32 = 24;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let effective = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    let caps = u64::from_str_radix(effective, 16).ok()?;
    if caps & (1 << CAP_SYS_RESOURCE) != 0 {
        return None;
    }
    std::fs::read_to_string("/proc/self/oom_score_adj")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The process arguments as upstream combines `command`/`args` with the image's
/// `Entrypoint`/`Cmd`.
pub fn process_args(command: Vec<String>, args: Vec<String>, image: &RuntimeConfig) -> Vec<String> {
    if !command.is_empty() {
        return command.into_iter().chain(args).collect();
    }
    let tail = if args.is_empty() { image.cmd.clone() } else { args };
    image.entrypoint.iter().cloned().chain(tail).collect()
}

/// The container's spec.
pub fn container_spec(
    pod: &Pod,
    container: &Container,
    inputs: ContainerInputs<'_>,
) -> Result<ContainerSpec, ConfigError> {
    let spec = pod.spec.as_ref();
    let pod_security = spec.and_then(|s| s.security_context.as_ref());
    let security = container.security_context.as_ref();
    let (command, args) = crate::pod::env::expand_command_and_args(container, inputs.env);
    let args = process_args(command, args, inputs.image);
    if args.is_empty() {
        return Err(ConfigError::NoCommand);
    }

    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |name: &str, value: &str| match env.iter_mut().find(|(n, _)| n == name) {
        Some(entry) => entry.1 = value.to_owned(),
        None => env.push((name.to_owned(), value.to_owned())),
    };
    for pair in &inputs.image.env {
        let (name, value) = pair.split_once('=').unwrap_or((pair.as_str(), ""));
        set(name, value);
    }
    set("HOSTNAME", &inputs.hostname);
    for var in inputs.env {
        set(&var.name, &var.value);
    }
    let env = env.into_iter().map(|(n, v)| format!("{n}={v}")).collect();

    let user = user(pod, container, inputs.image)?;
    let host = |flag: Option<bool>| {
        if flag == Some(true) {
            NamespaceMode::Host
        } else {
            NamespaceMode::New
        }
    };
    let namespaces = Namespaces {
        network: match &inputs.netns {
            Some(path) => NamespaceMode::Join(path.clone()),
            None => NamespaceMode::Host,
        },
        // Every container of a pod shares its IPC namespace, as with the infra container.
        ipc: if spec.and_then(|s| s.host_ipc) == Some(true) {
            NamespaceMode::Host
        } else {
            NamespaceMode::Join(inputs.ipcns.clone())
        },
        uts: if inputs.netns.is_none() {
            NamespaceMode::Host
        } else {
            NamespaceMode::New
        },
        pid: if spec.and_then(|s| s.share_process_namespace) == Some(true) {
            NamespaceMode::Join(inputs.pidns.clone())
        } else {
            host(spec.and_then(|s| s.host_pid))
        },
    };
    let capabilities = security.and_then(|s| s.capabilities.as_ref());
    let qos = rudder_machinery::kinds::pod::pod_qos_class(pod).to_owned();
    Ok(ContainerSpec {
        rootfs: inputs.rootfs,
        args,
        env,
        cwd: container
            .working_dir
            .clone()
            .filter(|d| !d.is_empty())
            .or_else(|| inputs.image.working_dir.clone())
            .unwrap_or_default(),
        user,
        hostname: matches!(namespaces.uts, NamespaceMode::New).then(|| inputs.hostname.clone()),
        mounts: inputs.mounts,
        namespaces,
        capabilities_add: capabilities.and_then(|c| c.add.clone()).unwrap_or_default(),
        capabilities_drop: capabilities.and_then(|c| c.drop.clone()).unwrap_or_default(),
        privileged: security.and_then(|s| s.privileged) == Some(true),
        readonly_rootfs: security.and_then(|s| s.read_only_root_filesystem) == Some(true),
        no_new_privileges: security.and_then(|s| s.allow_privilege_escalation) == Some(false),
        seccomp: crate::runtime::spec::Seccomp::Unconfined,
        sysctls: BTreeMap::new(),
        cgroup_parent: inputs.cgroup_parent,
        resources: resources(container),
        oom_score_adj: Some(
            oom_score_adj(&qos, container, inputs.node_memory)
                .max(inputs.min_oom_score_adj.unwrap_or(i32::MIN)),
        ),
        tty: container.tty == Some(true),
        stdin: container.stdin == Some(true),
        stdin_once: container.stdin_once == Some(true),
        annotations: BTreeMap::new(),
    })
    .and_then(|spec| {
        let non_root = security
            .and_then(|s| s.run_as_non_root)
            .or_else(|| pod_security.and_then(|s| s.run_as_non_root));
        if non_root == Some(true) && spec.user.uid == 0 {
            return Err(ConfigError::RunsAsRoot {
                pod: pod.metadata.name.clone().unwrap_or_default(),
                container: container.name.clone(),
            });
        }
        Ok(spec)
    })
}

/// runAsUser/runAsGroup from the container, then the pod, then the image's `USER` (numeric
/// `uid[:gid]` only); supplementalGroups and fsGroup as additional groups.
fn user(pod: &Pod, container: &Container, image: &RuntimeConfig) -> Result<User, ConfigError> {
    let pod_security = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let security = container.security_context.as_ref();
    let (mut image_uid, mut image_gid) = (0u32, None);
    if let Some(text) = image.user.as_deref() {
        let (uid, gid) = text.split_once(':').map_or((text, None), |(u, g)| (u, Some(g)));
        image_uid = uid.parse().map_err(|_| ConfigError::NamedUser(text.to_owned()))?;
        image_gid = match gid {
            Some(gid) => Some(gid.parse().map_err(|_| ConfigError::NamedUser(text.to_owned()))?),
            None => None,
        };
    }
    let uid = security
        .and_then(|s| s.run_as_user)
        .or_else(|| pod_security.and_then(|s| s.run_as_user))
        .map_or(image_uid, |u| u as u32);
    let gid = security
        .and_then(|s| s.run_as_group)
        .or_else(|| pod_security.and_then(|s| s.run_as_group))
        .map(|g| g as u32)
        .or(image_gid)
        .unwrap_or(0);
    let mut additional_gids: Vec<u32> = Vec::new();
    if let Some(groups) = pod_security.and_then(|s| s.supplemental_groups.as_ref()) {
        additional_gids.extend(groups.iter().map(|g| *g as u32));
    }
    if let Some(fs_group) = pod_security.and_then(|s| s.fs_group) {
        additional_gids.push(fs_group as u32);
    }
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(User {
        uid,
        gid,
        additional_gids,
    })
}

fn quantity(container: &Container, which: &str, resource: &str) -> Option<(i64, i64)> {
    let resources = container.resources.as_ref()?;
    let map = if which == "limits" {
        resources.limits.as_ref()?
    } else {
        resources.requests.as_ref()?
    };
    let parsed = parse_quantity(&map.get(resource)?.0).ok()?;
    Some((parsed.value(), parsed.milli_value()))
}

/// cgroup limits as the kubelet derives them: shares from the cpu request, CFS quota from the
/// cpu limit, the memory limit.
pub fn resources(container: &Container) -> Resources {
    let cpu_request = quantity(container, "requests", "cpu").map(|(_, milli)| milli);
    let cpu_limit = quantity(container, "limits", "cpu").map(|(_, milli)| milli);
    let shares = match cpu_request.or(cpu_limit) {
        Some(milli) => ((milli.max(0) as u64) * 1024 / 1000).max(MIN_SHARES),
        None => MIN_SHARES,
    };
    let quota = cpu_limit.map(|milli| (milli * CPU_PERIOD as i64 / 1000).max(MIN_QUOTA));
    Resources {
        cpu_shares: Some(shares),
        cpu_quota: quota,
        cpu_period: quota.map(|_| CPU_PERIOD),
        memory_limit: quantity(container, "limits", "memory").map(|(bytes, _)| bytes),
        pids_limit: None,
    }
}

/// The kubelet's `GetContainerOOMScoreAdjust`.
fn oom_score_adj(qos: &str, container: &Container, node_memory: i64) -> i32 {
    match qos {
        "Guaranteed" => GUARANTEED_OOM_SCORE_ADJ,
        "BestEffort" => BEST_EFFORT_OOM_SCORE_ADJ,
        _ => {
            let request = quantity(container, "requests", "memory").map_or(0, |(bytes, _)| bytes);
            if node_memory <= 0 {
                return 999;
            }
            let adj = 1000 - (1000 * i128::from(request) / i128::from(node_memory)) as i32;
            if adj < 1000 + GUARANTEED_OOM_SCORE_ADJ {
                1000 + GUARANTEED_OOM_SCORE_ADJ
            } else if adj == BEST_EFFORT_OOM_SCORE_ADJ {
                adj - 1
            } else {
                adj
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn image() -> RuntimeConfig {
        RuntimeConfig {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["default".into()],
            env: vec!["PATH=/bin".into(), "A=image".into()],
            working_dir: Some("/work".into()),
            user: Some("1000:1000".into()),
            exposed_ports: Vec::new(),
        }
    }

    fn pod(container: &serde_json::Value) -> (Pod, Container) {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"containers": [container]},
        }))
        .unwrap();
        let container = pod.spec.as_ref().unwrap().containers[0].clone();
        (pod, container)
    }

    fn inputs<'a>(image: &'a RuntimeConfig, env: &'a [EnvVar]) -> ContainerInputs<'a> {
        ContainerInputs {
            image,
            env,
            rootfs: PathBuf::from("/rootfs"),
            mounts: Vec::new(),
            netns: Some(PathBuf::from("/pods/u/netns")),
            ipcns: PathBuf::from("/pods/u/ipcns"),
            pidns: PathBuf::from("/pods/u/pidns"),
            hostname: "p".into(),
            cgroup_parent: "/kubepods/besteffort/podu".into(),
            node_memory: 8 << 30,
            min_oom_score_adj: None,
        }
    }

    #[test]
    fn command_and_args_combine_with_the_image_as_upstream() {
        let image = image();
        assert_eq!(process_args(vec![], vec![], &image), ["/entry", "default"]);
        assert_eq!(process_args(vec![], vec!["x".into()], &image), ["/entry", "x"]);
        assert_eq!(process_args(vec!["sh".into()], vec![], &image), ["sh"]);
        assert_eq!(
            process_args(vec!["sh".into()], vec!["-c".into()], &image),
            ["sh", "-c"]
        );
    }

    #[test]
    fn environment_user_and_namespaces() {
        let image = image();
        let env = vec![EnvVar {
            name: "A".into(),
            value: "pod".into(),
        }];
        let (pod, container) = pod(&json!({"name": "c", "image": "i", "command": ["sh", "-c", "echo $(A)"]}));
        let spec = container_spec(&pod, &container, inputs(&image, &env)).unwrap();
        assert_eq!(spec.args, ["sh", "-c", "echo pod"]);
        assert_eq!(spec.env, ["PATH=/bin", "A=pod", "HOSTNAME=p"]);
        assert_eq!(spec.cwd, "/work");
        assert_eq!((spec.user.uid, spec.user.gid), (1000, 1000));
        assert_eq!(spec.hostname.as_deref(), Some("p"));
        assert_eq!(
            spec.namespaces.network,
            NamespaceMode::Join(PathBuf::from("/pods/u/netns"))
        );
        assert_eq!(spec.oom_score_adj, Some(1000));
        assert_eq!(
            spec.namespaces.ipc,
            NamespaceMode::Join(PathBuf::from("/pods/u/ipcns"))
        );
        assert_eq!(spec.namespaces.pid, NamespaceMode::New);
    }

    #[test]
    fn pod_namespaces_shared_or_the_hosts() {
        let image = image();
        let container = json!({"name": "c", "image": "i"});
        let with = |extra: serde_json::Value| {
            let mut spec = json!({"containers": [container]});
            for (k, v) in extra.as_object().unwrap() {
                spec[k] = v.clone();
            }
            let pod: Pod =
                serde_json::from_value(json!({"metadata": {"name": "p", "uid": "u"}, "spec": spec})).unwrap();
            let c = pod.spec.as_ref().unwrap().containers[0].clone();
            container_spec(&pod, &c, inputs(&image, &[])).unwrap().namespaces
        };
        let shared = with(json!({"shareProcessNamespace": true}));
        assert_eq!(shared.pid, NamespaceMode::Join(PathBuf::from("/pods/u/pidns")));
        assert_eq!(shared.ipc, NamespaceMode::Join(PathBuf::from("/pods/u/ipcns")));
        let host = with(json!({"hostPID": true, "hostIPC": true}));
        assert_eq!(host.pid, NamespaceMode::Host);
        assert_eq!(host.ipc, NamespaceMode::Host);
    }

    #[test]
    fn seccomp_from_the_container_then_the_pod() {
        let root = std::path::Path::new("/data/seccomp");
        let choose = |pod_profile: serde_json::Value, container_profile: serde_json::Value| {
            let mut container = json!({"name": "c", "image": "i"});
            if !container_profile.is_null() {
                container["securityContext"] = json!({"seccompProfile": container_profile});
            }
            let mut spec = json!({"containers": [container]});
            if !pod_profile.is_null() {
                spec["securityContext"] = json!({"seccompProfile": pod_profile});
            }
            let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap();
            let c = pod.spec.as_ref().unwrap().containers[0].clone();
            seccomp_choice(&pod, &c, root)
        };
        let null = serde_json::Value::Null;
        assert_eq!(choose(null.clone(), null.clone()), Ok(SeccompChoice::Unconfined));
        assert_eq!(
            choose(json!({"type": "RuntimeDefault"}), null.clone()),
            Ok(SeccompChoice::RuntimeDefault)
        );
        assert_eq!(
            choose(json!({"type": "RuntimeDefault"}), json!({"type": "Unconfined"})),
            Ok(SeccompChoice::Unconfined)
        );
        assert_eq!(
            choose(
                null.clone(),
                json!({"type": "Localhost", "localhostProfile": "profiles/audit.json"})
            ),
            Ok(SeccompChoice::Localhost(PathBuf::from(
                "/data/seccomp/profiles/audit.json"
            )))
        );
        let err = choose(json!({"type": "Localhost"}), null).unwrap_err();
        assert_eq!(
            err.to_string(),
            "localhostProfile must be set if seccompProfile type is Localhost."
        );
    }

    #[test]
    fn run_as_non_root_refuses_uid_zero() {
        let image = RuntimeConfig {
            cmd: vec!["sh".into()],
            ..RuntimeConfig::default()
        };
        let (pod, container) =
            pod(&json!({"name": "c", "image": "i", "securityContext": {"runAsNonRoot": true}}));
        let err = container_spec(&pod, &container, inputs(&image, &[])).unwrap_err();
        assert!(matches!(err, ConfigError::RunsAsRoot { .. }));
    }

    #[test]
    fn limits_become_cgroup_values() {
        let (_, container) = pod(&json!({"name": "c", "image": "i", "resources": {
            "requests": {"cpu": "250m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "128Mi"},
        }}));
        let r = resources(&container);
        assert_eq!(r.cpu_shares, Some(256));
        assert_eq!(r.cpu_quota, Some(50_000));
        assert_eq!(r.cpu_period, Some(100_000));
        assert_eq!(r.memory_limit, Some(128 << 20));
        assert_eq!(oom_score_adj("Burstable", &container, 1 << 30), 1000 - 62);
    }
}
