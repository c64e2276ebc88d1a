//! Containers of a pod spec: scheme defaults and validation of regular, init and ephemeral
//! containers, shared by every kind with a pod template.
//!
//! Ports `SetDefaults_Container`, `SetDefaults_Probe`, `SetDefaults_HTTPGetAction` and the
//! generated per-container defaults of pkg/apis/core/v1, and the container half of
//! pkg/apis/core/validation (`validateContainers`, `validateInitContainers`,
//! `validateEphemeralContainers`, ports, env, envFrom, volume mounts and devices, probes,
//! lifecycle handlers, resources, resize and restart policies, security contexts), with
//! upstream's messages. Ephemeral containers are validated through their [`Container`] form
//! ([`ephemeral_as_container`]), as upstream converts `EphemeralContainerCommon`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, EphemeralContainer, HTTPGetAction, Lifecycle,
    LifecycleHandler, ObjectFieldSelector, Probe, ResourceFieldSelector, ResourceRequirements,
    SecurityContext, VolumeDevice, VolumeMount, WindowsSecurityContextOptions,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::go_repr::{bad_struct, bad_struct_list};
use super::pod_spec::{
    PodValidationOptions, is_empty_opt, none_if_empty, none_if_false, none_if_zero, str_of,
    validate_apparmor_profile_field, validate_local_descending_path, validate_path_no_backsteps,
    validate_seccomp_profile_field,
};
use super::pod_volume::ValidVolumes;
use crate::field::{ErrorList, FieldError, Path};
use crate::validation::{
    canonicalize_quantity, is_config_map_key, is_dns1123_subdomain, is_env_var_name, is_http_header_name,
    is_huge_page_resource_name, is_overcommit_allowed, is_relaxed_env_var_name, is_valid_group_id,
    is_valid_port_name, is_valid_port_num, is_valid_user_id, name_errors, name_is_dns_subdomain,
    parse_quantity, set_defaults_resource_list, validate_container_resource_name, validate_dns1123_label,
    validate_nonnegative_field, validate_qualified_name, validate_resource_name, validate_resource_quantity,
};

/// `/dev/termination-log`.
pub const TERMINATION_MESSAGE_PATH_DEFAULT: &str = "/dev/termination-log";

// ---------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------

/// Upstream's `SetDefaults_Container` and the generated defaults of a container's ports, env,
/// resources, probes and lifecycle handlers. Also applies the encoding round trip upstream's
/// storage makes (empty optional fields dropped, quantities canonical, `resources: {}`).
pub fn default_container(c: &mut Container) {
    normalize_container(c);
    if str_of(&c.image_pull_policy).is_empty() {
        let policy = if image_tag_is_latest(str_of(&c.image)) {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.image_pull_policy = Some(policy.to_owned());
    }
    if str_of(&c.termination_message_path).is_empty() {
        c.termination_message_path = Some(TERMINATION_MESSAGE_PATH_DEFAULT.to_owned());
    }
    if str_of(&c.termination_message_policy).is_empty() {
        c.termination_message_policy = Some("File".to_owned());
    }
    for port in c.ports.iter_mut().flatten() {
        if str_of(&port.protocol).is_empty() {
            port.protocol = Some("TCP".to_owned());
        }
    }
    for env in c.env.iter_mut().flatten() {
        if let Some(from) = &mut env.value_from {
            if let Some(field_ref) = &mut from.field_ref {
                default_object_field_selector(field_ref);
            }
            if let Some(resource_ref) = &mut from.resource_field_ref {
                default_resource_field_selector(resource_ref);
            }
            if let Some(file_ref) = &mut from.file_key_ref {
                file_ref.optional.get_or_insert(false);
            }
        }
    }
    let resources = c.resources.get_or_insert_with(Default::default);
    set_defaults_resource_list(&mut resources.limits);
    set_defaults_resource_list(&mut resources.requests);
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        default_probe(probe);
    }
    if let Some(lifecycle) = &mut c.lifecycle {
        for handler in [&mut lifecycle.post_start, &mut lifecycle.pre_stop]
            .into_iter()
            .flatten()
        {
            if let Some(http) = &mut handler.http_get {
                default_http_get(http);
            }
        }
    }
}

/// [`default_container`] of an ephemeral container.
pub fn default_ephemeral_container(e: &mut EphemeralContainer) {
    let mut c = ephemeral_as_container(e);
    default_container(&mut c);
    let target = e.target_container_name.take().filter(|t| !t.is_empty());
    *e = container_into_ephemeral(c, target);
}

/// `SetDefaults_ObjectFieldSelector`: `apiVersion: v1`.
pub fn default_object_field_selector(selector: &mut ObjectFieldSelector) {
    if str_of(&selector.api_version).is_empty() {
        selector.api_version = Some("v1".to_owned());
    }
}

/// A resource field selector's divisor is a non-pointer quantity upstream: always printed,
/// `"0"` when unset.
pub fn default_resource_field_selector(selector: &mut ResourceFieldSelector) {
    match &mut selector.divisor {
        Some(divisor) => canonicalize_quantity(divisor),
        None => selector.divisor = Some(Quantity("0".to_owned())),
    }
    none_if_empty(&mut selector.container_name);
}

/// `SetDefaults_Probe` and the defaults of its handler.
pub fn default_probe(probe: &mut Probe) {
    for (value, default) in [
        (&mut probe.timeout_seconds, 1),
        (&mut probe.period_seconds, 10),
        (&mut probe.success_threshold, 1),
        (&mut probe.failure_threshold, 3),
    ] {
        if value.unwrap_or(0) == 0 {
            *value = Some(default);
        }
    }
    none_if_zero(&mut probe.initial_delay_seconds);
    if let Some(http) = &mut probe.http_get {
        default_http_get(http);
    }
    if let Some(grpc) = &mut probe.grpc {
        grpc.service.get_or_insert_with(String::new);
    }
}

/// `SetDefaults_HTTPGetAction`: path `/`, scheme `HTTP`.
pub fn default_http_get(http: &mut HTTPGetAction) {
    if str_of(&http.path).is_empty() {
        http.path = Some("/".to_owned());
    }
    if str_of(&http.scheme).is_empty() {
        http.scheme = Some("HTTP".to_owned());
    }
    none_if_empty(&mut http.host);
    is_empty_opt(&mut http.http_headers);
}

/// Drops what upstream's encoder omits (empty strings, `false`, empty lists of `omitempty`
/// fields) and canonicalizes quantities.
fn normalize_container(c: &mut Container) {
    for s in [
        &mut c.image,
        &mut c.working_dir,
        &mut c.termination_message_path,
        &mut c.termination_message_policy,
        &mut c.image_pull_policy,
    ] {
        none_if_empty(s);
    }
    for b in [&mut c.stdin, &mut c.stdin_once, &mut c.tty] {
        none_if_false(b);
    }
    is_empty_opt(&mut c.command);
    is_empty_opt(&mut c.args);
    is_empty_opt(&mut c.ports);
    is_empty_opt(&mut c.env_from);
    is_empty_opt(&mut c.env);
    is_empty_opt(&mut c.resize_policy);
    is_empty_opt(&mut c.restart_policy_rules);
    is_empty_opt(&mut c.volume_mounts);
    is_empty_opt(&mut c.volume_devices);
    for port in c.ports.iter_mut().flatten() {
        none_if_empty(&mut port.name);
        none_if_empty(&mut port.host_ip);
        none_if_empty(&mut port.protocol);
        none_if_zero(&mut port.host_port);
    }
    for env in c.env.iter_mut().flatten() {
        none_if_empty(&mut env.value);
    }
    for env in c.env_from.iter_mut().flatten() {
        none_if_empty(&mut env.prefix);
    }
    for mount in c.volume_mounts.iter_mut().flatten() {
        none_if_false(&mut mount.read_only);
        none_if_empty(&mut mount.sub_path);
        none_if_empty(&mut mount.sub_path_expr);
    }
    if let Some(resources) = &mut c.resources {
        normalize_resources(resources);
    }
}

/// Empty resource lists and claims are omitted; quantities are canonical.
pub fn normalize_resources(resources: &mut ResourceRequirements) {
    for list in [&mut resources.limits, &mut resources.requests] {
        if list.as_ref().is_some_and(BTreeMap::is_empty) {
            *list = None;
        }
        for q in list.iter_mut().flat_map(|l| l.values_mut()) {
            canonicalize_quantity(q);
        }
    }
    is_empty_opt(&mut resources.claims);
}

/// The [`Container`] form of an ephemeral container (upstream's `EphemeralContainerCommon`).
pub fn ephemeral_as_container(e: &EphemeralContainer) -> Container {
    Container {
        args: e.args.clone(),
        command: e.command.clone(),
        env: e.env.clone(),
        env_from: e.env_from.clone(),
        image: e.image.clone(),
        image_pull_policy: e.image_pull_policy.clone(),
        lifecycle: e.lifecycle.clone(),
        liveness_probe: e.liveness_probe.clone(),
        name: e.name.clone(),
        ports: e.ports.clone(),
        readiness_probe: e.readiness_probe.clone(),
        resize_policy: e.resize_policy.clone(),
        resources: e.resources.clone(),
        restart_policy: e.restart_policy.clone(),
        restart_policy_rules: e.restart_policy_rules.clone(),
        security_context: e.security_context.clone(),
        startup_probe: e.startup_probe.clone(),
        stdin: e.stdin,
        stdin_once: e.stdin_once,
        termination_message_path: e.termination_message_path.clone(),
        termination_message_policy: e.termination_message_policy.clone(),
        tty: e.tty,
        volume_devices: e.volume_devices.clone(),
        volume_mounts: e.volume_mounts.clone(),
        working_dir: e.working_dir.clone(),
    }
}

fn container_into_ephemeral(c: Container, target_container_name: Option<String>) -> EphemeralContainer {
    EphemeralContainer {
        args: c.args,
        command: c.command,
        env: c.env,
        env_from: c.env_from,
        image: c.image,
        image_pull_policy: c.image_pull_policy,
        lifecycle: c.lifecycle,
        liveness_probe: c.liveness_probe,
        name: c.name,
        ports: c.ports,
        readiness_probe: c.readiness_probe,
        resize_policy: c.resize_policy,
        resources: c.resources,
        restart_policy: c.restart_policy,
        restart_policy_rules: c.restart_policy_rules,
        security_context: c.security_context,
        startup_probe: c.startup_probe,
        stdin: c.stdin,
        stdin_once: c.stdin_once,
        target_container_name,
        termination_message_path: c.termination_message_path,
        termination_message_policy: c.termination_message_policy,
        tty: c.tty,
        volume_devices: c.volume_devices,
        volume_mounts: c.volume_mounts,
        working_dir: c.working_dir,
    }
}

// ---------------------------------------------------------------------------------------------
// Image references (github.com/distribution/reference, as `parsers.ParseImageName` uses it)
// ---------------------------------------------------------------------------------------------

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`.
fn is_path_component(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    let alnum_run = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && is_alnum_lower(bytes[*i]) {
            *i += 1;
        }
        *i > start
    };
    if !alnum_run(&mut i) {
        return false;
    }
    while i < bytes.len() {
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < bytes.len() && bytes[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if !alnum_run(&mut i) {
            return false;
        }
    }
    true
}

/// `host[:port]`, host a DNS name (any case) or a bracketed IPv6 address.
fn is_domain_and_port(s: &str) -> bool {
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
    };
    let (host_ok, rest) = if let Some(bracketed) = s.strip_prefix('[') {
        let Some(end) = bracketed.find(']') else {
            return false;
        };
        let ip = &bracketed[..end];
        (
            !ip.is_empty() && ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
            &bracketed[end + 1..],
        )
    } else {
        let (host, rest) = s.find(':').map_or((s, ""), |i| (&s[..i], &s[i..]));
        (host.split('.').all(component_ok), rest)
    };
    let port_ok = rest.is_empty()
        || rest
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

fn is_tag(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

fn is_valid_digest(s: &str) -> bool {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return false;
    };
    let expected = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == expected
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_valid_name(name: &str) -> bool {
    let segments: Vec<&str> = name.split('/').collect();
    let all_paths = segments.iter().all(|s| is_path_component(s));
    let with_domain = segments.len() > 1
        && is_domain_and_port(segments[0])
        && segments[1..].iter().all(|s| is_path_component(s));
    all_paths || with_domain
}

/// The tag of an image reference as `parsers.ParseImageName` returns it: the explicit tag,
/// `latest` when there is neither tag nor digest, `None` when the reference does not parse.
pub fn image_tag(image: &str) -> Option<String> {
    if image.len() == 64
        && image
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    // splitDockerDomain
    let (domain, mut remainder) = match image.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => ("docker.io".to_owned(), image.to_owned()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io".to_owned()
    } else {
        domain
    };
    if domain == "docker.io" && !remainder.contains('/') {
        remainder = format!("library/{remainder}");
    }
    let remote_name = remainder.split(':').next().unwrap_or_default();
    if remote_name.to_lowercase() != remote_name {
        return None;
    }
    let full = format!("{domain}/{remainder}");
    let (named, digest) = match full.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (full.as_str(), None),
    };
    let last_slash = named.rfind('/').unwrap_or(0);
    let (name, tag) = match named[last_slash..].rfind(':') {
        Some(colon) => (
            &named[..last_slash + colon],
            Some(&named[last_slash + colon + 1..]),
        ),
        None => (named, None),
    };
    if !is_valid_name(name) || name.len() > 255 {
        return None;
    }
    if tag.is_some_and(|t| !is_tag(t)) || digest.is_some_and(|d| !is_valid_digest(d)) {
        return None;
    }
    match (tag, digest) {
        (Some(t), _) => Some(t.to_owned()),
        (None, None) => Some("latest".to_owned()),
        (None, Some(_)) => Some(String::new()),
    }
}

/// Whether the image pull policy defaults to `Always` (tag `latest`, explicit or implied).
pub fn image_tag_is_latest(image: &str) -> bool {
    image_tag(image).as_deref() == Some("latest")
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Regular containers: at least one, each valid, names unique, lifecycle, probes, restart
/// policy, and host ports not conflicting across containers.
#[allow(clippy::too_many_arguments)]
pub fn validate_containers(
    containers: &[Container],
    os: Option<&str>,
    volumes: &ValidVolumes,
    pod_claim_names: &BTreeSet<String>,
    grace_period: Option<i64>,
    path: &Path,
    opts: &PodValidationOptions,
    pod_restart_policy: &str,
    host_users: bool,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if containers.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let mut all_names = BTreeSet::new();
    for (i, ctr) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(
            ctr,
            volumes,
            pod_claim_names,
            &p,
            opts,
            pod_restart_policy,
            host_users,
        ));
        if !all_names.insert(ctr.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), ctr.name.as_str()));
        }
        if let Some(lifecycle) = &ctr.lifecycle {
            errs.extend(validate_lifecycle(
                lifecycle,
                grace_period,
                &p.child("lifecycle"),
                opts,
                os,
            ));
        }
        errs.extend(validate_liveness_probe(
            ctr.liveness_probe.as_ref(),
            grace_period,
            &p.child("livenessProbe"),
            opts,
        ));
        errs.extend(validate_readiness_probe(
            ctr.readiness_probe.as_ref(),
            grace_period,
            &p.child("readinessProbe"),
            opts,
        ));
        errs.extend(validate_startup_probe(
            ctr.startup_probe.as_ref(),
            grace_period,
            &p.child("startupProbe"),
            opts,
        ));
        if opts.allow_container_restart_policy_rules {
            errs.extend(validate_container_restart_policy(ctr, &p, opts));
        } else if ctr.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                &p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(check_host_port_conflicts(containers, path));
    errs
}

/// Whether an init container is a sidecar (`restartPolicy: Always`).
pub fn is_restartable_init_container(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Init containers: each valid, names unique across regular and init containers, restart
/// policy, lifecycle and probes only for sidecars, host ports per container.
#[allow(clippy::too_many_arguments)]
pub fn validate_init_containers(
    containers: &[Container],
    os: Option<&str>,
    regular: &[Container],
    volumes: &ValidVolumes,
    pod_claim_names: &BTreeSet<String>,
    grace_period: Option<i64>,
    path: &Path,
    opts: &PodValidationOptions,
    pod_restart_policy: &str,
    host_users: bool,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut all_names: BTreeSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, ctr) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_container_common(
            ctr,
            volumes,
            pod_claim_names,
            &p,
            opts,
            pod_restart_policy,
            host_users,
        ));
        errs.extend(validate_init_container_restart_policy(ctr, &p, opts));
        let restart_always = is_restartable_init_container(ctr);
        if all_names.contains(ctr.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), ctr.name.as_str()));
        } else if !ctr.name.is_empty() {
            all_names.insert(ctr.name.as_str());
        }
        errs.extend(check_host_port_conflicts(std::slice::from_ref(ctr), path));
        if restart_always {
            if let Some(lifecycle) = &ctr.lifecycle {
                errs.extend(validate_lifecycle(
                    lifecycle,
                    grace_period,
                    &p.child("lifecycle"),
                    opts,
                    os,
                ));
            }
            errs.extend(validate_liveness_probe(
                ctr.liveness_probe.as_ref(),
                grace_period,
                &p.child("livenessProbe"),
                opts,
            ));
            errs.extend(validate_readiness_probe(
                ctr.readiness_probe.as_ref(),
                grace_period,
                &p.child("readinessProbe"),
                opts,
            ));
            errs.extend(validate_startup_probe(
                ctr.startup_probe.as_ref(),
                grace_period,
                &p.child("startupProbe"),
                opts,
            ));
        } else {
            const MSG: &str = "may not be set for init containers without restartPolicy=Always";
            if ctr.lifecycle.is_some() {
                errs.push(FieldError::forbidden(&p.child("lifecycle"), MSG));
            }
            if ctr.liveness_probe.is_some() {
                errs.push(FieldError::forbidden(&p.child("livenessProbe"), MSG));
            }
            if ctr.readiness_probe.is_some() {
                errs.push(FieldError::forbidden(&p.child("readinessProbe"), MSG));
            }
            if ctr.startup_probe.is_some() {
                errs.push(FieldError::forbidden(&p.child("startupProbe"), MSG));
            }
        }
        if !opts.allow_sidecar_resize_policy && ctr.resize_policy.as_ref().is_some_and(|r| !r.is_empty()) {
            errs.push(FieldError::invalid(
                &p.child("resizePolicy"),
                bad_struct_list(
                    "ContainerResizePolicy",
                    ctr.resize_policy.as_deref().unwrap_or_default(),
                ),
                "must not be set for init containers",
            ));
        }
    }
    errs
}

/// Ephemeral containers: each valid, names unique across all containers, a known target,
/// only the fields ephemeral containers may set, no sub-paths.
#[allow(clippy::too_many_arguments)]
pub fn validate_ephemeral_containers(
    ephemeral: &[EphemeralContainer],
    containers: &[Container],
    init_containers: &[Container],
    volumes: &ValidVolumes,
    pod_claim_names: &BTreeSet<String>,
    path: &Path,
    opts: &PodValidationOptions,
    pod_restart_policy: &str,
    host_users: bool,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if ephemeral.is_empty() {
        return errs;
    }
    let other_names: BTreeSet<&str> = containers
        .iter()
        .chain(init_containers)
        .map(|c| c.name.as_str())
        .collect();
    let mut all_names = other_names.clone();
    for (i, ec) in ephemeral.iter().enumerate() {
        let p = path.index(i);
        let c = ephemeral_as_container(ec);
        errs.extend(validate_container_common(
            &c,
            volumes,
            pod_claim_names,
            &p,
            opts,
            pod_restart_policy,
            host_users,
        ));
        errs.extend(validate_container_only_for_pod(&c, &p));
        if !all_names.insert(ec.name.as_str()) {
            errs.push(FieldError::duplicate(&p.child("name"), ec.name.as_str()));
        }
        let target = str_of(&ec.target_container_name);
        if !target.is_empty() && !other_names.contains(target) {
            errs.push(FieldError::not_found(&p.child("targetContainerName"), target));
        }
        let resources_set = c
            .resources
            .as_ref()
            .is_some_and(|r| r.limits.is_some() || r.requests.is_some() || r.claims.is_some());
        let forbidden = [
            ("ports", c.ports.is_some()),
            ("resources", resources_set),
            ("resizePolicy", c.resize_policy.is_some()),
            ("restartPolicy", c.restart_policy.is_some()),
            ("restartPolicyRules", c.restart_policy_rules.is_some()),
            ("livenessProbe", c.liveness_probe.is_some()),
            ("readinessProbe", c.readiness_probe.is_some()),
            ("startupProbe", c.startup_probe.is_some()),
            ("lifecycle", c.lifecycle.is_some()),
        ];
        for (name, set) in forbidden {
            if set {
                errs.push(FieldError::forbidden(
                    &p.child(name),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
        for (j, vm) in c.volume_mounts.iter().flatten().enumerate() {
            let vm_path = p.child("volumeMounts").index(j);
            if !str_of(&vm.sub_path).is_empty() {
                errs.push(FieldError::forbidden(
                    &vm_path.child("subPath"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
            if !str_of(&vm.sub_path_expr).is_empty() {
                errs.push(FieldError::forbidden(
                    &vm_path.child("subPathExpr"),
                    "cannot be set for an Ephemeral Container",
                ));
            }
        }
    }
    errs
}

/// Pod-only container checks (not for templates): no whitespace around the image.
pub fn validate_container_only_for_pod(ctr: &Container, path: &Path) -> ErrorList {
    let image = str_of(&ctr.image);
    if image.len() != image.trim().len() {
        return vec![FieldError::invalid(
            &path.child("image"),
            image,
            "must not have leading or trailing whitespace",
        )];
    }
    Vec::new()
}

/// Validation common to all container types: name, image, termination message policy,
/// ports, env, envFrom, mounts, devices, pull policy, resources, resize policy, security
/// context.
pub fn validate_container_common(
    ctr: &Container,
    volumes: &ValidVolumes,
    pod_claim_names: &BTreeSet<String>,
    path: &Path,
    opts: &PodValidationOptions,
    pod_restart_policy: &str,
    host_users: bool,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let name_path = path.child("name");
    if ctr.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        errs.extend(validate_dns1123_label(&ctr.name, &name_path));
    }
    if str_of(&ctr.image).is_empty() {
        errs.push(FieldError::required(&path.child("image"), ""));
    }
    match str_of(&ctr.termination_message_policy) {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(&path.child("terminationMessagePolicy"), "")),
        other => errs.push(FieldError::not_supported(
            &path.child("terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    let mounts = ctr.volume_mounts.as_deref().unwrap_or_default();
    let devices = ctr.volume_devices.as_deref().unwrap_or_default();
    let vol_mounts: BTreeMap<String, String> = mounts
        .iter()
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect();
    let vol_devices: BTreeMap<String, String> = devices
        .iter()
        .map(|d| (d.name.clone(), d.device_path.clone()))
        .collect();
    errs.extend(validate_container_ports(
        ctr.ports.as_deref().unwrap_or_default(),
        &path.child("ports"),
    ));
    errs.extend(validate_env(
        ctr.env.as_deref().unwrap_or_default(),
        &path.child("env"),
        opts,
    ));
    errs.extend(validate_env_from(
        ctr.env_from.as_deref().unwrap_or_default(),
        &path.child("envFrom"),
        opts,
    ));
    errs.extend(validate_volume_mounts(
        mounts,
        &vol_devices,
        volumes,
        Some(ctr),
        &path.child("volumeMounts"),
    ));
    errs.extend(validate_volume_devices(
        devices,
        &vol_mounts,
        volumes,
        &path.child("volumeDevices"),
    ));
    errs.extend(validate_pull_policy(
        str_of(&ctr.image_pull_policy),
        &path.child("imagePullPolicy"),
    ));
    let empty = ResourceRequirements::default();
    errs.extend(validate_container_resource_requirements(
        ctr.resources.as_ref().unwrap_or(&empty),
        pod_claim_names,
        &path.child("resources"),
        opts,
    ));
    errs.extend(validate_resize_policy(
        ctr,
        &path.child("resizePolicy"),
        pod_restart_policy,
    ));
    errs.extend(validate_security_context(
        ctr.security_context.as_ref(),
        &path.child("securityContext"),
        host_users,
    ));
    errs
}

/// Upstream's `validateContainerPorts`.
pub fn validate_container_ports(ports: &[ContainerPort], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut all_names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        let name = str_of(&port.name);
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.extend(name_errors(&p.child("name"), name, msgs));
            } else if !all_names.insert(name) {
                errs.push(FieldError::duplicate(&p.child("name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(&p.child("containerPort"), ""));
        } else {
            for msg in is_valid_port_num(i64::from(port.container_port)) {
                errs.push(FieldError::invalid(
                    &p.child("containerPort"),
                    port.container_port,
                    msg,
                ));
            }
        }
        let host_port = port.host_port.unwrap_or(0);
        if host_port != 0 {
            for msg in is_valid_port_num(i64::from(host_port)) {
                errs.push(FieldError::invalid(&p.child("hostPort"), host_port, msg));
            }
        }
        match str_of(&port.protocol) {
            "" => errs.push(FieldError::required(&p.child("protocol"), "")),
            "TCP" | "UDP" | "SCTP" => {}
            other => errs.push(FieldError::not_supported(
                &p.child("protocol"),
                other,
                &["SCTP", "TCP", "UDP"],
            )),
        }
    }
    errs
}

/// `AccumulateUniqueHostPorts` over a set of containers.
pub fn check_host_port_conflicts(containers: &[Container], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = BTreeSet::new();
    for (ci, ctr) in containers.iter().enumerate() {
        for (pi, port) in ctr.ports.iter().flatten().enumerate() {
            let host_port = port.host_port.unwrap_or(0);
            if host_port == 0 {
                continue;
            }
            let key = format!("{}/{}/{host_port}", str_of(&port.protocol), str_of(&port.host_ip));
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    &path.index(ci).child("ports").index(pi).child("hostPort"),
                    key,
                ));
            }
        }
    }
    errs
}

const VALID_ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Resource field paths of the downward API.
pub const VALID_CONTAINER_RESOURCE_FIELD_PATHS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

/// Upstream's `ValidateEnv`.
pub fn validate_env(vars: &[EnvVar], path: &Path, opts: &PodValidationOptions) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = path.index(i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        } else {
            let msgs = if opts.allow_relaxed_environment_variable_validation {
                is_relaxed_env_var_name(&ev.name)
            } else {
                is_env_var_name(&ev.name)
            };
            errs.extend(name_errors(&p.child("name"), &ev.name, msgs));
        }
        errs.extend(validate_env_var_value_from(ev, &p.child("valueFrom"), opts));
    }
    errs
}

fn validate_env_var_value_from(ev: &EnvVar, path: &Path, opts: &PodValidationOptions) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(from) = &ev.value_from else {
        return errs;
    };
    let mut num_sources = 0;
    if let Some(field_ref) = &from.field_ref {
        num_sources += 1;
        errs.extend(validate_object_field_selector(
            field_ref,
            VALID_ENV_FIELD_PATHS,
            &path.child("fieldRef"),
        ));
    }
    if let Some(resource_ref) = &from.resource_field_ref {
        num_sources += 1;
        errs.extend(validate_container_resource_field_selector(
            resource_ref,
            &path.child("resourceFieldRef"),
            false,
        ));
    }
    if let Some(cm) = &from.config_map_key_ref {
        num_sources += 1;
        errs.extend(validate_key_selector(
            &cm.name,
            &cm.key,
            &path.child("configMapKeyRef"),
        ));
    }
    if let Some(secret) = &from.secret_key_ref {
        num_sources += 1;
        errs.extend(validate_key_selector(
            &secret.name,
            &secret.key,
            &path.child("secretKeyRef"),
        ));
    }
    if let Some(file) = &from.file_key_ref {
        num_sources += 1;
        let fp = path.child("fileKeyRef");
        if file.key.is_empty() {
            errs.push(FieldError::required(&fp.child("key"), ""));
        } else {
            errs.extend(name_errors(
                &fp.child("key"),
                &file.key,
                is_relaxed_env_var_name(&file.key),
            ));
        }
        if file.volume_name.is_empty() {
            errs.push(FieldError::required(&fp.child("volumeName"), ""));
        } else {
            errs.extend(validate_dns1123_label(&file.volume_name, &fp.child("volumeName")));
        }
        if file.path.is_empty() {
            errs.push(FieldError::required(&fp.child("path"), ""));
        } else {
            errs.extend(validate_path_no_backsteps(&file.path, &fp.child("path")));
        }
    }
    if num_sources == 0 {
        let msg = if opts.allow_env_files_validation {
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef` or `fileKeyRef`"
        } else {
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"
        };
        errs.push(FieldError::invalid(path, "", msg));
    } else if !str_of(&ev.value).is_empty() {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if num_sources > 1 {
        errs.push(FieldError::invalid(
            path,
            "",
            "may not have more than one field specified at a time",
        ));
    }
    errs
}

fn validate_key_selector(name: &str, key: &str, path: &Path) -> ErrorList {
    let mut errs = name_errors(&path.child("name"), name, name_is_dns_subdomain(name, false));
    if key.is_empty() {
        errs.push(FieldError::required(&path.child("key"), ""));
    } else {
        errs.extend(name_errors(&path.child("key"), key, is_config_map_key(key)));
    }
    errs
}

/// `SplitMaybeSubscriptedPath`: `metadata.labels['key']` → (`metadata.labels`, `key`).
pub fn split_maybe_subscripted_path(field_path: &str) -> Option<(&str, &str)> {
    let s = field_path.strip_suffix("']")?;
    let (path, subscript) = s.split_once("['")?;
    if path.is_empty() {
        return None;
    }
    Some((path, subscript))
}

const DOWNWARD_API_FIELD_LABELS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.serviceAccountName",
    "spec.schedulerName",
    "status.phase",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// `ConvertDownwardAPIFieldLabel`: the internal field path of a v1 downward API field path.
fn convert_downward_api_field_label(version: &str, label: &str) -> Result<String, String> {
    if version != "v1" {
        return Err(format!("unsupported pod version: {version}"));
    }
    if let Some((path, _)) = split_maybe_subscripted_path(label) {
        return match path {
            "metadata.annotations" | "metadata.labels" => Ok(label.to_owned()),
            _ => Err(format!("field label does not support subscript: {label}")),
        };
    }
    if DOWNWARD_API_FIELD_LABELS.contains(&label) {
        return Ok(label.to_owned());
    }
    if label == "spec.host" {
        return Ok("spec.nodeName".to_owned());
    }
    Err(format!("field label not supported: {label}"))
}

/// Upstream's `validateObjectFieldSelector`.
pub fn validate_object_field_selector(
    fs: &ObjectFieldSelector,
    expressions: &[&str],
    path: &Path,
) -> ErrorList {
    let api_version = str_of(&fs.api_version);
    if api_version.is_empty() {
        return vec![FieldError::required(&path.child("apiVersion"), "")];
    }
    if fs.field_path.is_empty() {
        return vec![FieldError::required(&path.child("fieldPath"), "")];
    }
    let internal = match convert_downward_api_field_label(api_version, &fs.field_path) {
        Ok(internal) => internal,
        Err(err) => {
            return vec![FieldError::invalid(
                &path.child("fieldPath"),
                fs.field_path.as_str(),
                format!("error converting fieldPath: {err}"),
            )];
        }
    };
    if let Some((p, subscript)) = split_maybe_subscripted_path(&internal) {
        return match p {
            "metadata.annotations" => validate_qualified_name(&subscript.to_lowercase(), path),
            "metadata.labels" => validate_qualified_name(subscript, path),
            _ => vec![FieldError::invalid(path, p, "does not support subscript")],
        };
    }
    if !expressions.contains(&internal.as_str()) {
        let mut sorted = expressions.to_vec();
        sorted.sort_unstable();
        return vec![FieldError::not_supported(
            &path.child("fieldPath"),
            internal,
            &sorted,
        )];
    }
    Vec::new()
}

/// Upstream's `validateContainerResourceFieldSelector` (hugepages prefixes allowed).
pub fn validate_container_resource_field_selector(
    fs: &ResourceFieldSelector,
    path: &Path,
    volume: bool,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if volume && str_of(&fs.container_name).is_empty() {
        errs.push(FieldError::required(&path.child("containerName"), ""));
    } else if fs.resource.is_empty() {
        errs.push(FieldError::required(&path.child("resource"), ""));
    } else if !VALID_CONTAINER_RESOURCE_FIELD_PATHS.contains(&fs.resource.as_str())
        && !fs.resource.starts_with("limits.hugepages-")
        && !fs.resource.starts_with("requests.hugepages-")
    {
        errs.push(FieldError::not_supported(
            &path.child("resource"),
            fs.resource.as_str(),
            VALID_CONTAINER_RESOURCE_FIELD_PATHS,
        ));
    }
    errs.extend(validate_container_resource_divisor(
        &fs.resource,
        fs.divisor.as_ref(),
        path,
    ));
    errs
}

const BYTE_DIVISORS: &[&str] = &[
    "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
];

fn validate_container_resource_divisor(resource: &str, divisor: Option<&Quantity>, path: &Path) -> ErrorList {
    let Some(divisor) = divisor.and_then(|d| parse_quantity(d.0.trim()).ok()) else {
        return Vec::new();
    };
    if divisor.is_zero() {
        return Vec::new();
    }
    let value = divisor.to_string();
    let mut errs = ErrorList::new();
    let divisor_path = path.child("divisor");
    match resource {
        "limits.cpu" | "requests.cpu" if !["1m", "1"].contains(&value.as_str()) => {
            errs.push(FieldError::invalid(
                &divisor_path,
                resource,
                "only divisor's values 1m and 1 are supported with the cpu resource",
            ));
        }
        "limits.memory" | "requests.memory" if !BYTE_DIVISORS.contains(&value.as_str()) => {
            errs.push(FieldError::invalid(
                &divisor_path,
                resource,
                "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the memory resource",
            ));
        }
        "limits.ephemeral-storage" | "requests.ephemeral-storage"
            if !BYTE_DIVISORS.contains(&value.as_str()) =>
        {
            errs.push(FieldError::invalid(
                &divisor_path,
                resource,
                "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the local ephemeral storage resource",
            ));
        }
        _ => {}
    }
    if (resource.starts_with("requests.hugepages-") || resource.starts_with("limits.hugepages-"))
        && !BYTE_DIVISORS.contains(&value.as_str())
    {
        errs.push(FieldError::invalid(
            &divisor_path,
            resource,
            "only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the hugepages resource",
        ));
    }
    errs
}

/// Upstream's `ValidateEnvFrom`.
pub fn validate_env_from(vars: &[EnvFromSource], path: &Path, opts: &PodValidationOptions) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = path.index(i);
        let prefix = str_of(&ev.prefix);
        if !prefix.is_empty() {
            let msgs = if opts.allow_relaxed_environment_variable_validation {
                is_relaxed_env_var_name(prefix)
            } else {
                is_env_var_name(prefix)
            };
            errs.extend(name_errors(&p.child("prefix"), prefix, msgs));
        }
        let mut num_sources = 0;
        let mut env_source = |name: &str, sp: Path, errs: &mut ErrorList| {
            num_sources += 1;
            if name.is_empty() {
                errs.push(FieldError::required(&sp.child("name"), ""));
            } else {
                errs.extend(name_errors(
                    &sp.child("name"),
                    name,
                    name_is_dns_subdomain(name, true),
                ));
            }
        };
        if let Some(cm) = &ev.config_map_ref {
            env_source(&cm.name, p.child("configMapRef"), &mut errs);
        }
        if let Some(secret) = &ev.secret_ref {
            env_source(&secret.name, p.child("secretRef"), &mut errs);
        }
        if num_sources == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if num_sources > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

/// Upstream's `ValidateVolumeMounts`. Note that upstream reports the sub-path, propagation and
/// recursive read-only errors on the list's path, not the item's.
pub fn validate_volume_mounts(
    mounts: &[VolumeMount],
    vol_devices: &BTreeMap<String, String>,
    volumes: &ValidVolumes,
    container: Option<&Container>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut mount_points = BTreeSet::new();
    for (i, mnt) in mounts.iter().enumerate() {
        let p = path.index(i);
        if mnt.name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if !volumes.contains_key(&mnt.name) {
            errs.push(FieldError::not_found(&p.child("name"), mnt.name.as_str()));
        }
        if mnt.mount_path.is_empty() {
            errs.push(FieldError::required(&p.child("mountPath"), ""));
        }
        if !mount_points.insert(mnt.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                mnt.mount_path.as_str(),
                "must be unique",
            ));
        }
        if vol_devices.contains_key(&mnt.name) {
            errs.push(FieldError::invalid(
                &p.child("name"),
                mnt.name.as_str(),
                "must not already exist in volumeDevices",
            ));
        }
        if vol_devices.values().any(|d| *d == mnt.mount_path) {
            errs.push(FieldError::invalid(
                &p.child("mountPath"),
                mnt.mount_path.as_str(),
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub_path = str_of(&mnt.sub_path);
        if !sub_path.is_empty() {
            errs.extend(validate_local_descending_path(sub_path, &path.child("subPath")));
        }
        let sub_path_expr = str_of(&mnt.sub_path_expr);
        if !sub_path_expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    &p.child("subPathExpr"),
                    sub_path_expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(validate_local_descending_path(
                sub_path_expr,
                &path.child("subPathExpr"),
            ));
        }
        if let Some(propagation) = &mnt.mount_propagation {
            errs.extend(validate_mount_propagation(
                propagation,
                container,
                &path.child("mountPropagation"),
            ));
        }
        errs.extend(validate_mount_recursive_read_only(
            mnt,
            &path.child("recursiveReadOnly"),
        ));
    }
    errs
}

fn validate_mount_propagation(propagation: &str, container: Option<&Container>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if !["Bidirectional", "HostToContainer", "None"].contains(&propagation) {
        errs.push(FieldError::not_supported(
            path,
            propagation,
            &["Bidirectional", "HostToContainer", "None"],
        ));
    }
    let Some(container) = container else {
        return errs;
    };
    let privileged = container
        .security_context
        .as_ref()
        .and_then(|sc| sc.privileged)
        .unwrap_or(false);
    if propagation == "Bidirectional" && !privileged {
        errs.push(FieldError::forbidden(
            path,
            "Bidirectional mount propagation is available only to privileged containers",
        ));
    }
    errs
}

fn validate_mount_recursive_read_only(mnt: &VolumeMount, path: &Path) -> ErrorList {
    let Some(rro) = &mnt.recursive_read_only else {
        return Vec::new();
    };
    let mut errs = ErrorList::new();
    match rro.as_str() {
        "Disabled" => {}
        "Enabled" | "IfPossible" => {
            if !mnt.read_only.unwrap_or(false) {
                errs.push(FieldError::forbidden(
                    path,
                    "may only be specified when readOnly is true",
                ));
            }
            if mnt.mount_propagation.as_deref().is_some_and(|p| p != "None") {
                errs.push(FieldError::forbidden(
                    path,
                    "may only be specified when mountPropagation is None or not specified",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            path,
            other,
            &["Disabled", "Enabled", "IfPossible"],
        )),
    }
    errs
}

/// Upstream's `ValidateVolumeDevices`.
pub fn validate_volume_devices(
    devices: &[VolumeDevice],
    vol_mounts: &BTreeMap<String, String>,
    volumes: &ValidVolumes,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut device_paths = BTreeSet::new();
    let mut device_names = BTreeSet::new();
    for (i, dev) in devices.iter().enumerate() {
        let p = path.index(i);
        let (name, dev_path) = (dev.name.as_str(), dev.device_path.as_str());
        let matched = volumes.get(name);
        if name.is_empty() {
            errs.push(FieldError::required(&p.child("name"), ""));
        }
        if device_names.contains(name) {
            errs.push(FieldError::invalid(&p.child("name"), name, "must be unique"));
        }
        if matched.is_some_and(|v| !v.is_claim) {
            errs.push(FieldError::invalid(
                &p.child("name"),
                name,
                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
            ));
        }
        if matched.is_none() {
            errs.push(FieldError::not_found(&p.child("name"), name));
        }
        if dev_path.is_empty() {
            errs.push(FieldError::required(&p.child("devicePath"), ""));
        }
        if device_paths.contains(dev_path) {
            errs.push(FieldError::invalid(
                &p.child("devicePath"),
                dev_path,
                "must be unique",
            ));
        }
        if !dev_path.is_empty() && !validate_path_no_backsteps(dev_path, &path.child("devicePath")).is_empty()
        {
            errs.push(FieldError::invalid(
                &p.child("devicePath"),
                dev_path,
                "can not contain backsteps ('..')",
            ));
        } else {
            device_paths.insert(dev_path);
        }
        if vol_mounts.contains_key(name) {
            errs.push(FieldError::invalid(
                &p.child("name"),
                name,
                "must not already exist in volumeMounts",
            ));
        }
        if vol_mounts.values().any(|m| m == dev_path) {
            errs.push(FieldError::invalid(
                &p.child("devicePath"),
                dev_path,
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !name.is_empty() {
            device_names.insert(name);
        }
    }
    errs
}

fn validate_liveness_probe(
    probe: Option<&Probe>,
    grace: Option<i64>,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let Some(probe) = probe else {
        return Vec::new();
    };
    let mut errs = validate_probe(probe, grace, path, opts);
    let success = probe.success_threshold.unwrap_or(0);
    if success != 1 {
        errs.push(FieldError::invalid(
            &path.child("successThreshold"),
            success,
            "must be 1",
        ));
    }
    errs
}

fn validate_readiness_probe(
    probe: Option<&Probe>,
    grace: Option<i64>,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let Some(probe) = probe else {
        return Vec::new();
    };
    let mut errs = validate_probe(probe, grace, path, opts);
    if let Some(tgps) = probe.termination_grace_period_seconds {
        errs.push(FieldError::invalid(
            &path.child("terminationGracePeriodSeconds"),
            tgps,
            "must not be set for readinessProbes",
        ));
    }
    errs
}

fn validate_startup_probe(
    probe: Option<&Probe>,
    grace: Option<i64>,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    validate_liveness_probe(probe, grace, path, opts)
}

/// Upstream's `validateProbe`: one handler, non-negative timings, a positive grace period.
pub fn validate_probe(
    probe: &Probe,
    grace: Option<i64>,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let handler = Handler {
        exec: probe
            .exec
            .as_ref()
            .map(|e| e.command.as_deref().unwrap_or_default()),
        http_get: probe.http_get.as_ref(),
        tcp_socket: probe.tcp_socket.as_ref().map(|t| &t.port),
        grpc: probe.grpc.as_ref().map(|g| g.port),
        sleep: None,
    };
    let mut errs = validate_handler(&handler, grace, path, opts);
    for (value, name) in [
        (probe.initial_delay_seconds, "initialDelaySeconds"),
        (probe.timeout_seconds, "timeoutSeconds"),
        (probe.period_seconds, "periodSeconds"),
        (probe.success_threshold, "successThreshold"),
        (probe.failure_threshold, "failureThreshold"),
    ] {
        errs.extend(validate_nonnegative_field(
            i64::from(value.unwrap_or(0)),
            &path.child(name),
        ));
    }
    if let Some(tgps) = probe.termination_grace_period_seconds
        && tgps <= 0
    {
        errs.push(FieldError::invalid(
            &path.child("terminationGracePeriodSeconds"),
            tgps,
            "must be greater than 0",
        ));
    }
    errs
}

struct Handler<'a> {
    exec: Option<&'a [String]>,
    http_get: Option<&'a HTTPGetAction>,
    tcp_socket: Option<&'a IntOrString>,
    grpc: Option<i32>,
    sleep: Option<i64>,
}

fn handler_from_lifecycle(h: &LifecycleHandler) -> Handler<'_> {
    Handler {
        exec: h.exec.as_ref().map(|e| e.command.as_deref().unwrap_or_default()),
        http_get: h.http_get.as_ref(),
        tcp_socket: h.tcp_socket.as_ref().map(|t| &t.port),
        grpc: None,
        sleep: h.sleep.as_ref().map(|s| s.seconds),
    }
}

fn validate_handler(
    h: &Handler<'_>,
    grace: Option<i64>,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut count = 0;
    let mut one = |name: &str, errs: &mut ErrorList| -> Option<Path> {
        let p = path.child(name);
        if count > 0 {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify more than 1 handler type",
            ));
            return None;
        }
        count += 1;
        Some(p)
    };
    if let Some(command) = h.exec
        && let Some(p) = one("exec", &mut errs)
        && command.is_empty()
    {
        errs.push(FieldError::required(&p.child("command"), ""));
    }
    if let Some(http) = h.http_get
        && let Some(p) = one("httpGet", &mut errs)
    {
        if str_of(&http.path).is_empty() {
            errs.push(FieldError::required(&p.child("path"), ""));
        }
        errs.extend(validate_port_num_or_name(&http.port, &p.child("port")));
        let scheme = str_of(&http.scheme);
        if scheme != "HTTP" && scheme != "HTTPS" {
            errs.push(FieldError::not_supported(
                &p.child("scheme"),
                scheme,
                &["HTTP", "HTTPS"],
            ));
        }
        for header in http.http_headers.iter().flatten() {
            errs.extend(name_errors(
                &p.child("httpHeaders"),
                &header.name,
                is_http_header_name(&header.name),
            ));
        }
    }
    if let Some(port) = h.tcp_socket
        && let Some(p) = one("tcpSocket", &mut errs)
    {
        errs.extend(validate_port_num_or_name(port, &p.child("port")));
    }
    if let Some(port) = h.grpc
        && let Some(p) = one("grpc", &mut errs)
    {
        errs.extend(validate_port_num_or_name(
            &IntOrString::Int(port),
            &p.child("port"),
        ));
    }
    if let Some(seconds) = h.sleep
        && let Some(p) = one("sleep", &mut errs)
        && let Some(grace) = grace
    {
        if opts.allow_pod_lifecycle_sleep_action_zero_value {
            if seconds < 0 || seconds > grace {
                errs.push(FieldError::invalid(
                    &p,
                    seconds,
                    format!("must be non-negative and less than terminationGracePeriodSeconds ({grace})"),
                ));
            }
        } else if seconds <= 0 || seconds > grace {
            errs.push(FieldError::invalid(
                &p,
                seconds,
                format!(
                    "must be greater than 0 and less than terminationGracePeriodSeconds ({grace}). Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep."
                ),
            ));
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

/// Upstream's `ValidatePortNumOrName`.
pub fn validate_port_num_or_name(port: &IntOrString, path: &Path) -> ErrorList {
    match port {
        IntOrString::Int(n) => is_valid_port_num(i64::from(*n))
            .into_iter()
            .map(|msg| FieldError::invalid(path, *n, msg))
            .collect(),
        IntOrString::String(s) => name_errors(path, s, is_valid_port_name(s)),
    }
}

const LINUX_SIGNALS: &[&str] = &[
    "SIGABRT",
    "SIGALRM",
    "SIGBUS",
    "SIGCHLD",
    "SIGCLD",
    "SIGCONT",
    "SIGFPE",
    "SIGHUP",
    "SIGILL",
    "SIGINT",
    "SIGIO",
    "SIGIOT",
    "SIGKILL",
    "SIGPIPE",
    "SIGPOLL",
    "SIGPROF",
    "SIGPWR",
    "SIGQUIT",
    "SIGRTMAX",
    "SIGRTMAX-1",
    "SIGRTMAX-10",
    "SIGRTMAX-11",
    "SIGRTMAX-12",
    "SIGRTMAX-13",
    "SIGRTMAX-14",
    "SIGRTMAX-2",
    "SIGRTMAX-3",
    "SIGRTMAX-4",
    "SIGRTMAX-5",
    "SIGRTMAX-6",
    "SIGRTMAX-7",
    "SIGRTMAX-8",
    "SIGRTMAX-9",
    "SIGRTMIN",
    "SIGRTMIN+1",
    "SIGRTMIN+10",
    "SIGRTMIN+11",
    "SIGRTMIN+12",
    "SIGRTMIN+13",
    "SIGRTMIN+14",
    "SIGRTMIN+15",
    "SIGRTMIN+2",
    "SIGRTMIN+3",
    "SIGRTMIN+4",
    "SIGRTMIN+5",
    "SIGRTMIN+6",
    "SIGRTMIN+7",
    "SIGRTMIN+8",
    "SIGRTMIN+9",
    "SIGSEGV",
    "SIGSTKFLT",
    "SIGSTOP",
    "SIGSYS",
    "SIGTERM",
    "SIGTRAP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGUSR1",
    "SIGUSR2",
    "SIGVTALRM",
    "SIGWINCH",
    "SIGXCPU",
    "SIGXFSZ",
];

fn validate_lifecycle(
    lifecycle: &Lifecycle,
    grace: Option<i64>,
    path: &Path,
    opts: &PodValidationOptions,
    os: Option<&str>,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(h) = &lifecycle.post_start {
        errs.extend(validate_handler(
            &handler_from_lifecycle(h),
            grace,
            &path.child("postStart"),
            opts,
        ));
    }
    if let Some(h) = &lifecycle.pre_stop {
        errs.extend(validate_handler(
            &handler_from_lifecycle(h),
            grace,
            &path.child("preStop"),
            opts,
        ));
    }
    if let Some(signal) = &lifecycle.stop_signal {
        let p = path.child("stopSignal");
        match os {
            None => errs.push(FieldError::forbidden(
                &p,
                "may not be set for containers with empty `spec.os.name`",
            )),
            Some("windows") if signal != "SIGKILL" && signal != "SIGTERM" => {
                errs.push(FieldError::not_supported(
                    &p,
                    signal.as_str(),
                    &["SIGKILL", "SIGTERM"],
                ));
            }
            Some("linux") if !LINUX_SIGNALS.contains(&signal.as_str()) => {
                errs.push(FieldError::not_supported(&p, signal.as_str(), LINUX_SIGNALS));
            }
            _ => {}
        }
    }
    errs
}

/// Upstream's `validatePullPolicy`.
pub fn validate_pull_policy(policy: &str, path: &Path) -> ErrorList {
    match policy {
        "Always" | "IfNotPresent" | "Never" => Vec::new(),
        "" => vec![FieldError::required(path, "")],
        other => vec![FieldError::not_supported(
            path,
            other,
            &["Always", "IfNotPresent", "Never"],
        )],
    }
}

fn validate_resize_policy(ctr: &Container, path: &Path, pod_restart_policy: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = BTreeSet::new();
    for (i, p) in ctr.resize_policy.iter().flatten().enumerate() {
        if !seen.insert(p.resource_name.as_str()) {
            errs.push(FieldError::duplicate(&path.index(i), p.resource_name.as_str()));
        }
        match p.resource_name.as_str() {
            "cpu" | "memory" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(path, other, &["cpu", "memory"])),
        }
        match p.restart_policy.as_str() {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(FieldError::required(path, "")),
            other => errs.push(FieldError::not_supported(
                path,
                other,
                &["NotRequired", "RestartContainer"],
            )),
        }
        if pod_restart_policy == "Never" && p.restart_policy != "NotRequired" {
            errs.push(FieldError::invalid(
                path,
                p.restart_policy.as_str(),
                "must be 'NotRequired' when `restartPolicy` is 'Never'",
            ));
        }
    }
    errs
}

fn validate_init_container_restart_policy(
    ctr: &Container,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let rules = ctr.restart_policy_rules.as_deref().unwrap_or_default();
    let Some(policy) = &ctr.restart_policy else {
        if !rules.is_empty() {
            return vec![FieldError::required(
                &path.child("restartPolicy"),
                "must specify restartPolicy when restart rules are used",
            )];
        }
        return Vec::new();
    };
    if opts.allow_container_restart_policy_rules {
        if policy == "Always" {
            if opts.allow_restart_all_containers {
                return validate_container_restart_policy(ctr, path, opts);
            }
            if !rules.is_empty() {
                return vec![FieldError::forbidden(
                    &path.child("restartPolicyRules"),
                    "restartPolicyRules are not allowed for init containers with restart policy Always",
                )];
            }
            return Vec::new();
        }
        return validate_container_restart_policy(ctr, path, opts);
    }
    if policy != "Always" {
        return vec![FieldError::not_supported(
            &path.child("restartPolicy"),
            policy.as_str(),
            &["Always"],
        )];
    }
    Vec::new()
}

fn validate_container_restart_policy(ctr: &Container, path: &Path, opts: &PodValidationOptions) -> ErrorList {
    let mut errs = ErrorList::new();
    let rules = ctr.restart_policy_rules.as_deref().unwrap_or_default();
    let policy_path = path.child("restartPolicy");
    match &ctr.restart_policy {
        None if rules.is_empty() => return errs,
        None => errs.push(FieldError::required(
            &policy_path,
            "must specify restartPolicy when restart rules are used",
        )),
        Some(policy) if !["Always", "Never", "OnFailure"].contains(&policy.as_str()) => {
            errs.push(FieldError::not_supported(
                &policy_path,
                policy.as_str(),
                &["Always", "Never", "OnFailure"],
            ));
        }
        Some(_) => {}
    }
    let rules_path = path.child("restartPolicyRules");
    if rules.len() > 20 {
        errs.push(FieldError::too_long(&rules_path, 20));
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = rules_path.index(i);
        let allowed = rule.action == "Restart"
            || (opts.allow_restart_all_containers && rule.action == "RestartAllContainers");
        if !allowed {
            errs.push(FieldError::not_supported(
                &rp.child("action"),
                rule.action.as_str(),
                &["Restart"],
            ));
        }
        match &rule.exit_codes {
            Some(codes) => {
                let cp = rp.child("exitCodes");
                if codes.operator != "In" && codes.operator != "NotIn" {
                    errs.push(FieldError::not_supported(
                        &cp.child("operator"),
                        codes.operator.as_str(),
                        &["In", "NotIn"],
                    ));
                }
                if codes.values.as_ref().is_some_and(|v| v.len() > 255) {
                    errs.push(FieldError::too_long(&cp.child("values"), 255));
                }
            }
            None => errs.push(FieldError::required(&rp.child("exitCodes"), "must be specified")),
        }
    }
    errs
}

/// `IsHugePageResourceValueDivisible`: the quantity is a multiple of the page size.
fn is_huge_page_value_divisible(name: &str, quantity: &Quantity) -> bool {
    let Some(size) = name
        .strip_prefix("hugepages-")
        .and_then(|s| parse_quantity(s).ok())
    else {
        return false;
    };
    if size.sign() <= 0 || size.milli_value() % 1000 != 0 {
        return false;
    }
    let Ok(q) = parse_quantity(quantity.0.trim()) else {
        return false;
    };
    size.value() != 0 && q.value() % size.value() == 0
}

/// How a resource name is checked in [`validate_resource_requirements`].
pub type ResourceNameFn = fn(&str, &Path) -> ErrorList;

/// Container resources: [`validate_resource_requirements`] with container resource names.
pub fn validate_container_resource_requirements(
    requirements: &ResourceRequirements,
    pod_claim_names: &BTreeSet<String>,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    validate_resource_requirements(
        requirements,
        validate_container_resource_name,
        pod_claim_names,
        path,
        opts,
    )
}

/// The resources supported at pod level.
pub const SUPPORTED_POD_LEVEL_RESOURCES: &[&str] = &["cpu", "memory"];

/// Whether a resource may be set in `spec.resources` (cpu, memory, hugepages).
pub fn is_supported_pod_level_resource(name: &str) -> bool {
    SUPPORTED_POD_LEVEL_RESOURCES.contains(&name) || is_huge_page_resource_name(name)
}

/// A pod-level resource name: a resource name supported at pod level.
pub fn validate_pod_resource_name(name: &str, path: &Path) -> ErrorList {
    let errs = validate_resource_name(name, path);
    if !errs.is_empty() {
        return errs;
    }
    if !is_supported_pod_level_resource(name) {
        return vec![FieldError::not_supported(
            path,
            name,
            SUPPORTED_POD_LEVEL_RESOURCES,
        )];
    }
    errs
}

/// Upstream's `validateResourceRequirements`: names, quantities, requests not above limits
/// (equal for resources that cannot be overcommitted), hugepages with cpu or memory, claim
/// references.
pub fn validate_resource_requirements(
    requirements: &ResourceRequirements,
    name_fn: ResourceNameFn,
    pod_claim_names: &BTreeSet<String>,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let empty = BTreeMap::new();
    let limits = requirements.limits.as_ref().unwrap_or(&empty);
    let requests = requirements.requests.as_ref().unwrap_or(&empty);
    let (mut lim_qos, mut req_qos, mut lim_huge, mut req_huge) = (false, false, false, false);
    for (name, quantity) in limits {
        let p = lim_path.key(name);
        errs.extend(name_fn(name, &p));
        errs.extend(validate_resource_quantity(name, quantity, &p));
        if is_huge_page_resource_name(name) {
            lim_huge = true;
            if !opts.allow_indivisible_huge_pages_values && !is_huge_page_value_divisible(name, quantity) {
                errs.push(FieldError::invalid(
                    &p,
                    quantity.0.as_str(),
                    format!("{} is not positive integer multiple of {name}", quantity.0),
                ));
            }
        }
        if name == "cpu" || name == "memory" {
            lim_qos = true;
        }
    }
    for (name, quantity) in requests {
        let p = req_path.key(name);
        errs.extend(name_fn(name, &p));
        errs.extend(validate_resource_quantity(name, quantity, &p));
        match limits.get(name) {
            Some(limit) => {
                let (req, lim) = (parse_quantity(quantity.0.trim()), parse_quantity(limit.0.trim()));
                if let (Ok(req), Ok(lim)) = (req, lim) {
                    if req != lim && !is_overcommit_allowed(name) {
                        errs.push(FieldError::invalid(
                            &req_path,
                            req.to_string(),
                            format!("must be equal to {name} limit of {lim}"),
                        ));
                    } else if req > lim {
                        errs.push(FieldError::invalid(
                            &req_path,
                            req.to_string(),
                            format!("must be less than or equal to {name} limit of {lim}"),
                        ));
                    }
                }
            }
            None if !is_overcommit_allowed(name) => {
                errs.push(FieldError::required(
                    &lim_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
        if is_huge_page_resource_name(name) {
            req_huge = true;
            if !opts.allow_indivisible_huge_pages_values && !is_huge_page_value_divisible(name, quantity) {
                errs.push(FieldError::invalid(
                    &p,
                    quantity.0.as_str(),
                    format!("{} is not positive integer multiple of {name}", quantity.0),
                ));
            }
        }
        if name == "cpu" || name == "memory" {
            req_qos = true;
        }
    }
    if !lim_qos && !req_qos && (req_huge || lim_huge) {
        errs.push(FieldError::forbidden(path, "HugePages require cpu or memory"));
    }
    errs.extend(validate_resource_claim_names(
        requirements,
        pod_claim_names,
        &path.child("claims"),
    ));
    errs
}

fn validate_resource_claim_names(
    requirements: &ResourceRequirements,
    pod_claim_names: &BTreeSet<String>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    for (i, claim) in requirements.claims.iter().flatten().enumerate() {
        let p = path.index(i);
        let name = claim.name.as_str();
        if name.is_empty() {
            errs.push(FieldError::required(&p, ""));
            continue;
        }
        if names.contains(name) {
            errs.push(FieldError::duplicate(&p, name));
        } else {
            let request = str_of(&claim.request);
            let mut key = name.to_owned();
            if !request.is_empty() {
                errs.extend(validate_dns1123_label(request, &p.child("request")));
                key = format!("{name}/{request}");
            }
            if names.contains(&key) {
                errs.push(FieldError::duplicate(&p, key.as_str()));
            } else if request.is_empty() {
                for existing in &names {
                    if existing.split_once('/').is_some_and(|(n, _)| n == name) {
                        errs.push(FieldError::duplicate(&p, name));
                    }
                }
            }
            names.insert(key);
        }
        if !pod_claim_names.contains(name) {
            let mut err = FieldError::not_found(&p, name);
            err.detail = "must be one of the names in pod.spec.resourceClaims".to_owned();
            if pod_claim_names.is_empty() {
                err.detail.push_str(" which is empty");
            } else {
                let all: Vec<&str> = pod_claim_names.iter().map(String::as_str).collect();
                err.detail.push_str(": ");
                err.detail.push_str(&all.join(", "));
            }
            errs.push(err);
        }
    }
    errs
}

/// Upstream's `ValidateSecurityContext` (privileged containers are allowed, as with
/// `--allow-privileged=true`).
pub fn validate_security_context(sc: Option<&SecurityContext>, path: &Path, host_users: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(sc) = sc else {
        return errs;
    };
    if let Some(uid) = sc.run_as_user {
        for msg in is_valid_user_id(uid) {
            errs.push(FieldError::invalid(&path.child("runAsUser"), uid, msg));
        }
    }
    if let Some(gid) = sc.run_as_group {
        for msg in is_valid_group_id(gid) {
            errs.push(FieldError::invalid(&path.child("runAsGroup"), gid, msg));
        }
    }
    if let Some(proc_mount) = &sc.proc_mount {
        if proc_mount != "Default" && proc_mount != "Unmasked" {
            errs.push(FieldError::not_supported(
                &path.child("procMount"),
                proc_mount.as_str(),
                &["Default", "Unmasked"],
            ));
        }
        if host_users && proc_mount == "Unmasked" {
            errs.push(FieldError::invalid(
                &path.child("procMount"),
                proc_mount.as_str(),
                "`hostUsers` must be false to use `Unmasked`",
            ));
        }
    }
    errs.extend(validate_seccomp_profile_field(
        sc.seccomp_profile.as_ref(),
        &path.child("seccompProfile"),
    ));
    if sc.allow_privilege_escalation == Some(false) {
        if sc.privileged == Some(true) {
            errs.push(FieldError::invalid(
                path,
                bad_struct("SecurityContext", sc),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            ));
        }
        let adds = sc
            .capabilities
            .as_ref()
            .and_then(|c| c.add.as_deref())
            .unwrap_or_default();
        for cap in adds {
            if cap == "CAP_SYS_ADMIN" {
                errs.push(FieldError::invalid(
                    path,
                    bad_struct("SecurityContext", sc),
                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
                ));
            }
        }
    }
    errs.extend(validate_windows_security_context_options(
        sc.windows_options.as_ref(),
        &path.child("windowsOptions"),
    ));
    errs.extend(validate_apparmor_profile_field(
        sc.app_armor_profile.as_ref(),
        &path.child("appArmorProfile"),
    ));
    errs
}

fn is_netbios_domain(domain: &str) -> bool {
    const BAD: &[char] = &['\\', '/', ':', '*', '?', '"', '<', '>', '|'];
    let chars: Vec<char> = domain.chars().collect();
    !chars.is_empty() && chars.len() <= 15 && chars[0] != '.' && !chars.iter().any(|c| BAD.contains(c))
}

fn is_dns_domain_any_case(domain: &str) -> bool {
    domain.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    })
}

/// Upstream's `validateWindowsSecurityContextOptions`.
pub fn validate_windows_security_context_options(
    options: Option<&WindowsSecurityContextOptions>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(options) = options else {
        return errs;
    };
    if let Some(name) = &options.gmsa_credential_spec_name {
        for msg in is_dns1123_subdomain(name) {
            errs.push(FieldError::invalid(
                &path.child("gmsaCredentialSpecName"),
                name.as_str(),
                msg,
            ));
        }
    }
    if let Some(spec) = &options.gmsa_credential_spec {
        if spec.is_empty() {
            errs.push(FieldError::invalid(
                &path.child("gmsaCredentialSpec"),
                spec.as_str(),
                "gmsaCredentialSpec cannot be an empty string",
            ));
        } else if spec.len() > 64 * 1024 {
            errs.push(FieldError::invalid(
                &path.child("gmsaCredentialSpec"),
                spec.as_str(),
                "gmsaCredentialSpec size must be under 64 KiB",
            ));
        }
    }
    if let Some(user_name) = &options.run_as_user_name {
        let p = path.child("runAsUserName");
        let parts: Vec<&str> = user_name.split('\\').collect();
        let invalid = |msg: &str| FieldError::invalid(&p, user_name.as_str(), msg.to_owned());
        if user_name.is_empty() {
            errs.push(invalid("runAsUserName cannot be an empty string"));
        } else if user_name.chars().any(char::is_control) {
            errs.push(invalid("runAsUserName cannot contain control characters"));
        } else if parts.len() > 2 {
            errs.push(invalid("runAsUserName cannot contain more than one backslash"));
        } else {
            let (has_domain, domain, user) = match parts.as_slice() {
                [user] => (false, "", *user),
                [domain, user] => (true, *domain, *user),
                _ => (false, "", ""),
            };
            if domain.len() >= 256 {
                errs.push(invalid(
                    "runAsUserName's Domain length must be under 256 characters",
                ));
            }
            if has_domain && !(is_netbios_domain(domain) || is_dns_domain_any_case(domain)) {
                errs.push(invalid(
                    "runAsUserName's Domain doesn't match the NetBios nor the DNS format",
                ));
            }
            if user.is_empty() {
                errs.push(invalid("runAsUserName's User cannot be empty"));
            } else if user.len() > 104 {
                errs.push(invalid(
                    "runAsUserName's User length must not be longer than 104 characters",
                ));
            }
            if !user.is_empty() && user.chars().all(|c| c == '.' || c == ' ') {
                errs.push(invalid(
                    "runAsUserName's User cannot contain only periods or spaces",
                ));
            }
            if user.contains([
                '"', '/', '\\', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>', '@', '[', ']',
            ]) {
                errs.push(invalid(
                    "runAsUserName's User cannot contain the following characters: \"/\\:;|=,+*?<>@[]",
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_image_tags_like_the_docker_reference_library() {
        let cases = [
            ("nginx", Some("latest")),
            ("nginx:latest", Some("latest")),
            ("nginx:1.25", Some("1.25")),
            ("library/nginx:1.25-alpine", Some("1.25-alpine")),
            ("registry.k8s.io/pause:3.10", Some("3.10")),
            ("localhost:5000/app", Some("latest")),
            ("localhost:5000/app:v1", Some("v1")),
            ("[::1]:5000/app:v2", Some("v2")),
            ("Registry.Example.com/app", Some("latest")),
            (
                "busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                Some(""),
            ),
            ("NGINX", None),
            ("nginx:", None),
            ("", None),
            ("nginx@sha256:123", None),
            ("a//b", None),
        ];
        for (image, tag) in cases {
            assert_eq!(image_tag(image).as_deref(), tag, "{image}");
        }
        assert!(image_tag_is_latest("nginx"));
        assert!(!image_tag_is_latest("nginx:1"));
        assert!(!image_tag_is_latest("Bad Image"));
    }
}
