//! A container's environment and command line as the kubelet builds them
//! (upstream's `makeEnvironmentVariables`, `getServiceEnvVarMap`, `envvars.FromServices` and
//! `ExpandContainerCommandAndArgs`): envFrom, env with `$(VAR)` expansion and valueFrom
//! sources, and service link variables.
//!
//! Pure: the pod, the ConfigMaps/Secrets/Services it may reference and the node's facts are
//! inputs ([`EnvContext`]); a missing object is simply absent from them. It never reads the
//! API. Its errors are the texts the kubelet reports with reason `CreateContainerConfigError`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::expansion::{expand, expand_with};
use super::fieldref::{FieldRefError, RuntimeFields, pod_field_value, resource_field_value};

/// The waiting reason the kubelet reports when a container's config cannot be made.
pub const CREATE_CONTAINER_CONFIG_ERROR: &str = "CreateContainerConfigError";

/// Why a container's environment could not be made; texts are upstream's.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvError {
    #[error("nil pod.spec.enableServiceLinks encountered, cannot construct envvars")]
    NilEnableServiceLinks,
    /// The ConfigMap does not exist (the kubelet's object cache's NotFound).
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound {
        key: String,
        namespace: String,
        name: String,
    },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound {
        key: String,
        namespace: String,
        name: String,
    },
    #[error(transparent)]
    Field(#[from] FieldRefError),
    #[error("missing value for {0}")]
    MissingSubPathValues(String),
}

/// One `NAME=value` of a container's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// What the kubelet reads beside the pod to build an environment.
#[derive(Clone, Debug, Default)]
pub struct EnvContext {
    /// ConfigMaps of the pod's namespace by name; an absent name is NotFound.
    pub config_maps: BTreeMap<String, ConfigMap>,
    /// Secrets of the pod's namespace by name; an absent name is NotFound.
    pub secrets: BTreeMap<String, Secret>,
    /// Every Service the node knows (all namespaces), for service links and the master
    /// service `default/kubernetes`.
    pub services: Vec<Service>,
    /// Pod IPs and node IPs.
    pub runtime: RuntimeFields,
    /// The node's allocatable, standing in for limits a container does not set.
    pub node_allocatable: BTreeMap<String, Quantity>,
}

/// Services whose variables every pod gets, from the `default` namespace.
const MASTER_SERVICES: &[&str] = &["kubernetes"];

fn is_service_ip_set(service: &Service) -> bool {
    let ip = service
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or("");
    !ip.is_empty() && ip != "None"
}

fn env_name(name: &str) -> String {
    name.replace('-', "_").to_uppercase()
}

fn join_host_port(host: &str, port: i32) -> String {
    if host.parse::<IpAddr>().is_ok_and(|ip| ip.is_ipv6()) || host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Upstream's `envvars.FromServices`: `FOO_SERVICE_HOST`, `FOO_SERVICE_PORT`,
/// `FOO_SERVICE_PORT_<NAME>` and the Docker-link variables `FOO_PORT`, `FOO_PORT_80_TCP`,
/// `..._PROTO`, `..._PORT`, `..._ADDR`.
pub fn service_env_vars(services: &[&Service]) -> Vec<EnvVar> {
    let mut out = Vec::new();
    let mut push = |name: String, value: String| out.push(EnvVar { name, value });
    for service in services {
        if !is_service_ip_set(service) {
            continue;
        }
        let Some(spec) = service.spec.as_ref() else {
            continue;
        };
        let ports = spec.ports.as_deref().unwrap_or(&[]);
        let Some(first) = ports.first() else {
            continue;
        };
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        let prefix = env_name(service.metadata.name.as_deref().unwrap_or(""));
        push(format!("{prefix}_SERVICE_HOST"), ip.clone());
        let port_var = format!("{prefix}_SERVICE_PORT");
        push(port_var.clone(), first.port.to_string());
        for sp in ports {
            if let Some(name) = sp.name.as_deref().filter(|n| !n.is_empty()) {
                push(format!("{port_var}_{}", env_name(name)), sp.port.to_string());
            }
        }
        for (i, sp) in ports.iter().enumerate() {
            let protocol = sp.protocol.as_deref().filter(|p| !p.is_empty()).unwrap_or("TCP");
            let lower = protocol.to_lowercase();
            let url = format!("{lower}://{}", join_host_port(&ip, sp.port));
            if i == 0 {
                push(format!("{prefix}_PORT"), url.clone());
            }
            let port_prefix = format!("{prefix}_PORT_{}_{}", sp.port, protocol.to_uppercase());
            push(port_prefix.clone(), url);
            push(format!("{port_prefix}_PROTO"), lower);
            push(format!("{port_prefix}_PORT"), sp.port.to_string());
            push(format!("{port_prefix}_ADDR"), ip.clone());
        }
    }
    out
}

/// Upstream's `getServiceEnvVarMap`: the master services of `default` always, the services of
/// the pod's namespace when `enableServiceLinks`.
pub fn service_env_map(
    services: &[Service],
    namespace: &str,
    enable_service_links: bool,
) -> BTreeMap<String, String> {
    let mut chosen: BTreeMap<&str, &Service> = BTreeMap::new();
    for service in services {
        if !is_service_ip_set(service) {
            continue;
        }
        let name = service.metadata.name.as_deref().unwrap_or("");
        let ns = service.metadata.namespace.as_deref().unwrap_or("");
        if ns == "default" && MASTER_SERVICES.contains(&name) {
            chosen.entry(name).or_insert(service);
        } else if ns == namespace && enable_service_links {
            chosen.insert(name, service);
        }
    }
    let list: Vec<&Service> = chosen.into_values().collect();
    service_env_vars(&list)
        .into_iter()
        .map(|v| (v.name, v.value))
        .collect()
}

/// An insertion-ordered map: a redefined name keeps its first position and takes the new value.
#[derive(Default)]
struct OrderedEnv {
    order: Vec<String>,
    values: HashMap<String, String>,
}

impl OrderedEnv {
    fn insert(&mut self, name: String, value: String) {
        if !self.values.contains_key(&name) {
            self.order.push(name.clone());
        }
        self.values.insert(name, value);
    }
}

/// The container's environment (upstream's `makeEnvironmentVariables`). Upstream returns the
/// variables in Go map order; here the order is deterministic: envFrom sources in order (keys
/// sorted within each), then `env` in declaration order (a redefined name keeps its first
/// position), then the service variables not otherwise defined, sorted by name.
pub fn make_environment(pod: &Pod, container: &Container, ctx: &EnvContext) -> Result<Vec<EnvVar>, EnvError> {
    let spec = pod.spec.as_ref();
    let enable_links = spec
        .and_then(|s| s.enable_service_links)
        .ok_or(EnvError::NilEnableServiceLinks)?;
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
    let service_env = service_env_map(&ctx.services, namespace, enable_links);
    let service_env: HashMap<String, String> = service_env.into_iter().collect();

    let mut env = OrderedEnv::default();
    for source in container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or("");
        if let Some(cm_ref) = &source.config_map_ref {
            let optional = cm_ref.optional == Some(true);
            let Some(cm) = ctx.config_maps.get(&cm_ref.name) else {
                if optional {
                    continue;
                }
                return Err(EnvError::ConfigMapNotFound(cm_ref.name.clone()));
            };
            for (k, v) in cm.data.iter().flatten() {
                env.insert(format!("{prefix}{k}"), v.clone());
            }
        } else if let Some(secret_ref) = &source.secret_ref {
            let optional = secret_ref.optional == Some(true);
            let Some(secret) = ctx.secrets.get(&secret_ref.name) else {
                if optional {
                    continue;
                }
                return Err(EnvError::SecretNotFound(secret_ref.name.clone()));
            };
            for (k, v) in secret.data.iter().flatten() {
                env.insert(format!("{prefix}{k}"), String::from_utf8_lossy(&v.0).into_owned());
            }
        }
    }

    for var in container.env.iter().flatten() {
        let literal = var.value.as_deref().unwrap_or("");
        let value = if !literal.is_empty() {
            // Sources: the variables defined so far, then the service variables.
            let values = &env.values;
            expand(literal, |name| {
                values.get(name).or_else(|| service_env.get(name)).cloned()
            })
        } else if let Some(from) = &var.value_from {
            if let Some(field) = &from.field_ref {
                pod_field_value(field, pod, &ctx.runtime)?
            } else if let Some(res) = &from.resource_field_ref {
                resource_field_value(res, pod, Some(container), &ctx.node_allocatable)?
            } else if let Some(key_ref) = &from.config_map_key_ref {
                let optional = key_ref.optional == Some(true);
                let Some(cm) = ctx.config_maps.get(&key_ref.name) else {
                    if optional {
                        continue;
                    }
                    return Err(EnvError::ConfigMapNotFound(key_ref.name.clone()));
                };
                match cm.data.as_ref().and_then(|d| d.get(&key_ref.key)) {
                    Some(v) => v.clone(),
                    None if optional => continue,
                    None => {
                        return Err(EnvError::ConfigMapKeyNotFound {
                            key: key_ref.key.clone(),
                            namespace: namespace.to_owned(),
                            name: key_ref.name.clone(),
                        });
                    }
                }
            } else if let Some(key_ref) = &from.secret_key_ref {
                let optional = key_ref.optional == Some(true);
                let Some(secret) = ctx.secrets.get(&key_ref.name) else {
                    if optional {
                        continue;
                    }
                    return Err(EnvError::SecretNotFound(key_ref.name.clone()));
                };
                match secret.data.as_ref().and_then(|d| d.get(&key_ref.key)) {
                    Some(v) => String::from_utf8_lossy(&v.0).into_owned(),
                    None if optional => continue,
                    None => {
                        return Err(EnvError::SecretKeyNotFound {
                            key: key_ref.key.clone(),
                            namespace: namespace.to_owned(),
                            name: key_ref.name.clone(),
                        });
                    }
                }
            } else {
                String::new()
            }
        } else {
            String::new()
        };
        env.insert(var.name.clone(), value);
    }

    let OrderedEnv { order, mut values } = env;
    let mut result: Vec<EnvVar> = order
        .into_iter()
        .filter_map(|name| {
            let value = values.remove(&name)?;
            Some(EnvVar { name, value })
        })
        .collect();
    let defined: std::collections::HashSet<String> = result.iter().map(|v| v.name.clone()).collect();
    let mut services: Vec<EnvVar> = service_env
        .into_iter()
        .filter(|(k, _)| !defined.contains(k))
        .map(|(name, value)| EnvVar { name, value })
        .collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    result.extend(services);
    Ok(result)
}

fn env_map(envs: &[EnvVar]) -> HashMap<String, String> {
    envs.iter().map(|v| (v.name.clone(), v.value.clone())).collect()
}

/// Upstream's `ExpandContainerCommandAndArgs`: `$(VAR)` in command and args from the final
/// environment; unknown references stay as written.
pub fn expand_command_and_args(container: &Container, envs: &[EnvVar]) -> (Vec<String>, Vec<String>) {
    let map = env_map(envs);
    let expand_all = |items: Option<&Vec<String>>| -> Vec<String> {
        items
            .into_iter()
            .flatten()
            .map(|s| expand_with(s, &[&map]))
            .collect()
    };
    (
        expand_all(container.command.as_ref()),
        expand_all(container.args.as_ref()),
    )
}

/// Upstream's `ExpandContainerVolumeMounts`: a `subPathExpr` expanded from the environment;
/// a reference to an unset or empty variable is an error naming them all, sorted.
pub fn expand_subpath_expr(expr: &str, envs: &[EnvVar]) -> Result<String, EnvError> {
    let map = env_map(envs);
    let mut missing = std::collections::BTreeSet::new();
    let expanded = expand(expr, |name| match map.get(name) {
        Some(v) if !v.is_empty() => Some(v.clone()),
        _ => {
            missing.insert(name.to_owned());
            Some(String::new())
        }
    });
    if !missing.is_empty() {
        return Err(EnvError::MissingSubPathValues(
            missing.into_iter().collect::<Vec<_>>().join(", "),
        ));
    }
    Ok(expanded)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar as KEnvVar, EnvVarSource,
        ObjectFieldSelector, PodSpec, ResourceFieldSelector, SecretEnvSource, SecretKeySelector, ServicePort,
        ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn service(ns: &str, name: &str, ip: &str, ports: &[(Option<&str>, i32, Option<&str>)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some(ip.into()),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p, proto)| ServicePort {
                            name: n.map(Into::into),
                            port: *p,
                            protocol: proto.map(Into::into),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn value(name: &str, v: &str) -> KEnvVar {
        KEnvVar {
            name: name.into(),
            value: Some(v.into()),
            value_from: None,
        }
    }

    fn from(name: &str, source: EnvVarSource) -> KEnvVar {
        KEnvVar {
            name: name.into(),
            value: None,
            value_from: Some(source),
        }
    }

    fn pod(links: Option<bool>, container: Container) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                enable_service_links: links,
                node_name: Some("node-a".into()),
                containers: vec![container],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn ctx() -> EnvContext {
        let cm = ConfigMap {
            data: Some([("a".into(), "from-cm".into()), ("b".into(), "bee".into())].into()),
            ..Default::default()
        };
        let secret = Secret {
            data: Some([("pw".into(), ByteString(b"hunter2".to_vec()))].into()),
            ..Default::default()
        };
        EnvContext {
            config_maps: [("cm".into(), cm)].into(),
            secrets: [("s".into(), secret)].into(),
            services: vec![
                service(
                    "default",
                    "kubernetes",
                    "10.96.0.1",
                    &[(Some("https"), 443, Some("TCP"))],
                ),
                service(
                    "ns",
                    "my-svc",
                    "10.96.0.20",
                    &[(None, 80, None), (Some("metrics"), 9090, Some("UDP"))],
                ),
                service("ns", "headless", "None", &[(None, 80, None)]),
                service("other", "elsewhere", "10.96.0.30", &[(None, 80, None)]),
            ],
            runtime: RuntimeFields {
                pod_ips: vec!["10.244.0.9".into()],
                host_ips: vec!["192.168.0.2".into()],
            },
            node_allocatable: [("cpu".into(), Quantity("2".into()))].into(),
        }
    }

    fn get<'a>(env: &'a [EnvVar], name: &str) -> Option<&'a str> {
        env.iter().find(|v| v.name == name).map(|v| v.value.as_str())
    }

    #[test]
    fn service_links_and_master_service() {
        let env = make_environment(
            &pod(Some(true), Container::default()),
            &Container::default(),
            &ctx(),
        )
        .unwrap();
        let names: Vec<&str> = env.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "KUBERNETES_PORT",
                "KUBERNETES_PORT_443_TCP",
                "KUBERNETES_PORT_443_TCP_ADDR",
                "KUBERNETES_PORT_443_TCP_PORT",
                "KUBERNETES_PORT_443_TCP_PROTO",
                "KUBERNETES_SERVICE_HOST",
                "KUBERNETES_SERVICE_PORT",
                "KUBERNETES_SERVICE_PORT_HTTPS",
                "MY_SVC_PORT",
                "MY_SVC_PORT_80_TCP",
                "MY_SVC_PORT_80_TCP_ADDR",
                "MY_SVC_PORT_80_TCP_PORT",
                "MY_SVC_PORT_80_TCP_PROTO",
                "MY_SVC_PORT_9090_UDP",
                "MY_SVC_PORT_9090_UDP_ADDR",
                "MY_SVC_PORT_9090_UDP_PORT",
                "MY_SVC_PORT_9090_UDP_PROTO",
                "MY_SVC_SERVICE_HOST",
                "MY_SVC_SERVICE_PORT",
                "MY_SVC_SERVICE_PORT_METRICS",
            ]
        );
        assert_eq!(get(&env, "KUBERNETES_PORT"), Some("tcp://10.96.0.1:443"));
        assert_eq!(get(&env, "MY_SVC_PORT_9090_UDP"), Some("udp://10.96.0.20:9090"));
        assert_eq!(get(&env, "MY_SVC_PORT_9090_UDP_PROTO"), Some("udp"));
        assert_eq!(get(&env, "MY_SVC_SERVICE_PORT"), Some("80"));

        // Without service links only the master service remains.
        let env = make_environment(
            &pod(Some(false), Container::default()),
            &Container::default(),
            &ctx(),
        )
        .unwrap();
        assert!(env.iter().all(|v| v.name.starts_with("KUBERNETES_")));
        assert_eq!(env.len(), 8);

        let err =
            make_environment(&pod(None, Container::default()), &Container::default(), &ctx()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "nil pod.spec.enableServiceLinks encountered, cannot construct envvars"
        );
    }

    #[test]
    fn ipv6_service_link_uses_brackets() {
        let s = service("ns", "v6", "fd00::10", &[(None, 53, Some("UDP"))]);
        let vars = service_env_vars(&[&s]);
        assert_eq!(get(&vars, "V6_PORT"), Some("udp://[fd00::10]:53"));
        assert_eq!(get(&vars, "V6_SERVICE_HOST"), Some("fd00::10"));
    }

    #[test]
    fn env_from_env_and_expansion() {
        let container = Container {
            name: "c".into(),
            env_from: Some(vec![
                EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: "cm".into(),
                        optional: None,
                    }),
                    prefix: Some("CM_".into()),
                    secret_ref: None,
                },
                EnvFromSource {
                    config_map_ref: None,
                    prefix: None,
                    secret_ref: Some(SecretEnvSource {
                        name: "s".into(),
                        optional: None,
                    }),
                },
                EnvFromSource {
                    config_map_ref: Some(ConfigMapEnvSource {
                        name: "absent".into(),
                        optional: Some(true),
                    }),
                    prefix: None,
                    secret_ref: None,
                },
            ]),
            env: Some(vec![
                value("FIRST", "one"),
                value(
                    "SECOND",
                    "$(FIRST)-$(CM_a)-$$(FIRST)-$(NOPE)-$(MY_SVC_SERVICE_HOST)",
                ),
                value("LATER_REF", "$(THIRD)"),
                value("THIRD", "three"),
                value("CM_b", "override"),
                from(
                    "NODE",
                    EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: Some("v1".into()),
                            field_path: "spec.nodeName".into(),
                        }),
                        ..Default::default()
                    },
                ),
                from(
                    "POD_IP",
                    EnvVarSource {
                        field_ref: Some(ObjectFieldSelector {
                            api_version: Some("v1".into()),
                            field_path: "status.podIP".into(),
                        }),
                        ..Default::default()
                    },
                ),
                from(
                    "CPU",
                    EnvVarSource {
                        resource_field_ref: Some(ResourceFieldSelector {
                            resource: "limits.cpu".into(),
                            container_name: None,
                            divisor: Some(Quantity("1m".into())),
                        }),
                        ..Default::default()
                    },
                ),
                from(
                    "KEY",
                    EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "cm".into(),
                            key: "b".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    },
                ),
                from(
                    "PW",
                    EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "s".into(),
                            key: "pw".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    },
                ),
                from(
                    "OPT",
                    EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "s".into(),
                            key: "nope".into(),
                            optional: Some(true),
                        }),
                        ..Default::default()
                    },
                ),
                from(
                    "OPT2",
                    EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "gone".into(),
                            key: "x".into(),
                            optional: Some(true),
                        }),
                        ..Default::default()
                    },
                ),
                value("EMPTY", ""),
            ]),
            ..Default::default()
        };
        let pod = pod(Some(true), container.clone());
        let env = make_environment(&pod, &container, &ctx()).unwrap();
        let head: Vec<(&str, &str)> = env
            .iter()
            .take(12)
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .collect();
        assert_eq!(
            head,
            [
                ("CM_a", "from-cm"),
                ("CM_b", "override"),
                ("pw", "hunter2"),
                ("FIRST", "one"),
                ("SECOND", "one-from-cm-$(FIRST)-$(NOPE)-10.96.0.20"),
                ("LATER_REF", "$(THIRD)"),
                ("THIRD", "three"),
                ("NODE", "node-a"),
                ("POD_IP", "10.244.0.9"),
                ("CPU", "2000"),
                ("KEY", "bee"),
                ("PW", "hunter2"),
            ]
        );
        assert_eq!(get(&env, "EMPTY"), Some(""));
        assert_eq!(get(&env, "OPT"), None);
        assert_eq!(get(&env, "OPT2"), None);

        let (command, args) = expand_command_and_args(
            &Container {
                command: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    "echo $(FIRST) $$(FIRST) $(UNDEF)".into(),
                ]),
                args: Some(vec!["$(THIRD)".into()]),
                ..Default::default()
            },
            &env,
        );
        assert_eq!(command, ["sh", "-c", "echo one $(FIRST) $(UNDEF)"]);
        assert_eq!(args, ["three"]);
    }

    #[test]
    fn reference_errors_have_upstream_texts() {
        let run = |var: KEnvVar| {
            let container = Container {
                env: Some(vec![var]),
                ..Default::default()
            };
            make_environment(&pod(Some(false), container.clone()), &container, &ctx())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            run(from(
                "X",
                EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: "cm".into(),
                        key: "FOO".into(),
                        optional: None
                    }),
                    ..Default::default()
                }
            )),
            "couldn't find key FOO in ConfigMap ns/cm"
        );
        assert_eq!(
            run(from(
                "X",
                EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "s".into(),
                        key: "FOO".into(),
                        optional: None
                    }),
                    ..Default::default()
                }
            )),
            "couldn't find key FOO in Secret ns/s"
        );
        assert_eq!(
            run(from(
                "X",
                EnvVarSource {
                    config_map_key_ref: Some(ConfigMapKeySelector {
                        name: "gone".into(),
                        key: "FOO".into(),
                        optional: None
                    }),
                    ..Default::default()
                }
            )),
            "configmap \"gone\" not found"
        );
        assert_eq!(
            run(from(
                "X",
                EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "gone".into(),
                        key: "FOO".into(),
                        optional: None
                    }),
                    ..Default::default()
                }
            )),
            "secret \"gone\" not found"
        );
        let container = Container {
            env_from: Some(vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: "gone".into(),
                    optional: Some(false),
                }),
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(
            make_environment(&pod(Some(false), container.clone()), &container, &ctx()).unwrap_err(),
            EnvError::SecretNotFound("gone".into())
        );
    }

    #[test]
    fn subpath_expr() {
        let env = vec![
            EnvVar {
                name: "POD".into(),
                value: "p1".into(),
            },
            EnvVar {
                name: "EMPTY".into(),
                value: String::new(),
            },
        ];
        assert_eq!(expand_subpath_expr("logs/$(POD)", &env).unwrap(), "logs/p1");
        assert_eq!(
            expand_subpath_expr("$(Z)/$(EMPTY)/$(A)", &env)
                .unwrap_err()
                .to_string(),
            "missing value for A, EMPTY, Z"
        );
    }
}
