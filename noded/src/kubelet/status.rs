//! The pod status the kubelet reports, computed from what the worker observed of each
//! container: container statuses, the phase (upstream's `getPhase`) and the kubelet-owned
//! conditions, keeping transition times of unchanged conditions and conditions owned by
//! others (PodScheduled, DisruptionTarget, ...).
//!
//! Pure: no runtime, no API.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// How a container instance ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Termination {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<jiff::Timestamp>,
    pub finished_at: Option<jiff::Timestamp>,
    pub container_id: String,
}

/// The state of a container's current instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observed {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: jiff::Timestamp,
        container_id: String,
    },
    Terminated(Termination),
}

/// One container as the worker knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerRecord {
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub restart_count: i32,
    pub state: Observed,
    pub last: Option<Termination>,
    pub ready: bool,
    /// Running, and its startup probe succeeded (or it has none).
    pub started: bool,
    /// A restartable init container (sidecar).
    pub sidecar: bool,
}

impl ContainerRecord {
    fn succeeded(&self) -> bool {
        matches!(&self.state, Observed::Terminated(t) if t.exit_code == 0)
    }
    fn running(&self) -> bool {
        matches!(self.state, Observed::Running { .. })
    }
}

fn time(at: Option<jiff::Timestamp>) -> Option<Time> {
    at.map(Time)
}

fn terminated(t: &Termination) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: t.exit_code,
            signal: t.signal,
            reason: Some(t.reason.clone()),
            message: t.message.clone(),
            started_at: time(t.started_at),
            finished_at: time(t.finished_at),
            container_id: Some(t.container_id.clone()),
        }),
        ..ContainerState::default()
    }
}

/// The API's `ContainerStatus` of a record.
pub fn container_status(record: &ContainerRecord) -> ContainerStatus {
    let (state, container_id, started) = match &record.state {
        Observed::Waiting { reason, message } => (
            ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.clone()),
                    message: message.clone(),
                }),
                ..ContainerState::default()
            },
            None,
            false,
        ),
        Observed::Running {
            started_at,
            container_id,
        } => (
            ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: Some(Time(*started_at)),
                }),
                ..ContainerState::default()
            },
            Some(container_id.clone()),
            record.started,
        ),
        Observed::Terminated(t) => (terminated(t), Some(t.container_id.clone()), false),
    };
    ContainerStatus {
        name: record.name.clone(),
        image: record.image.clone(),
        image_id: record.image_id.clone(),
        container_id,
        restart_count: record.restart_count,
        ready: record.ready,
        started: Some(started),
        state: Some(state),
        last_state: Some(record.last.as_ref().map(terminated).unwrap_or_default()),
        ..ContainerStatus::default()
    }
}

/// Upstream's `getPhase` over init and app containers.
pub fn phase(pod: &Pod, init: &[ContainerRecord], app: &[ContainerRecord]) -> &'static str {
    let policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always");
    let mut pending_init = 0;
    for record in init.iter().filter(|r| !r.sidecar) {
        if record.succeeded() {
            continue;
        }
        if let Observed::Terminated(_) = record.state
            && policy == "Never"
        {
            return "Failed";
        }
        if record.last.is_some() && policy == "Never" {
            return "Failed";
        }
        pending_init += 1;
    }
    if init.iter().any(|r| r.sidecar && !r.running())
        && app
            .iter()
            .all(|r| matches!(r.state, Observed::Waiting { .. }) && r.last.is_none())
    {
        pending_init += 1;
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for record in app {
        match &record.state {
            Observed::Running { .. } => running += 1,
            Observed::Terminated(t) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            Observed::Waiting { .. } => {
                if let Some(last) = &record.last {
                    stopped += 1;
                    if last.exit_code == 0 {
                        succeeded += 1;
                    }
                } else {
                    waiting += 1;
                }
            }
        }
    }
    if pending_init > 0 || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped == 0 {
        return "Pending";
    }
    match policy {
        "Always" => "Running",
        _ if stopped == succeeded => "Succeeded",
        "Never" => "Failed",
        _ => "Running",
    }
}

/// The kubelet-owned conditions plus the pod's other conditions, transition times kept when
/// a condition's status did not change.
pub fn conditions(
    pod: &Pod,
    phase: &str,
    sandbox_ready: bool,
    init: &[ContainerRecord],
    app: &[ContainerRecord],
    now: jiff::Timestamp,
) -> Vec<PodCondition> {
    let generation = pod.metadata.generation;
    let old: Vec<PodCondition> = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let make = |kind: &str, ok: bool, reason: Option<String>, message: Option<String>| {
        let status = if ok { "True" } else { "False" };
        let transition = old
            .iter()
            .find(|c| c.type_ == kind && c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(now));
        PodCondition {
            type_: kind.to_owned(),
            status: status.to_owned(),
            reason,
            message,
            last_transition_time: Some(transition),
            last_probe_time: None,
            observed_generation: generation,
        }
    };
    let terminal = matches!(phase, "Succeeded" | "Failed");
    let terminal_reason = || {
        Some(
            if phase == "Succeeded" {
                "PodCompleted"
            } else {
                "PodFailed"
            }
            .to_owned(),
        )
    };

    let incomplete: Vec<&str> = init
        .iter()
        .filter(|r| if r.sidecar { !r.running() } else { !r.succeeded() })
        .map(|r| r.name.as_str())
        .collect();
    let initialized = if incomplete.is_empty() || (terminal && phase == "Succeeded") {
        let reason = (phase == "Succeeded" && init.is_empty()).then(|| "PodCompleted".to_owned());
        make("Initialized", true, reason, None)
    } else {
        make(
            "Initialized",
            false,
            Some("ContainersNotInitialized".to_owned()),
            Some(format!(
                "containers with incomplete status: [{}]",
                incomplete.join(" ")
            )),
        )
    };
    let unready: Vec<&str> = init
        .iter()
        .filter(|r| r.sidecar && !r.ready)
        .chain(app.iter().filter(|r| !r.ready))
        .map(|r| r.name.as_str())
        .collect();
    let (containers_ready, ready) = if terminal {
        (
            make("ContainersReady", false, terminal_reason(), None),
            make("Ready", false, terminal_reason(), None),
        )
    } else if unready.is_empty() {
        (
            make("ContainersReady", true, None, None),
            make("Ready", true, None, None),
        )
    } else {
        let message = format!("containers with unready status: [{}]", unready.join(" "));
        (
            make(
                "ContainersReady",
                false,
                Some("ContainersNotReady".to_owned()),
                Some(message.clone()),
            ),
            make(
                "Ready",
                false,
                Some("ContainersNotReady".to_owned()),
                Some(message),
            ),
        )
    };
    let ready_to_start = make(
        "PodReadyToStartContainers",
        sandbox_ready && !terminal,
        None,
        None,
    );
    const OWNED: &[&str] = &[
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
    ];
    let mut out = vec![ready_to_start, initialized, ready, containers_ready];
    out.extend(old.into_iter().filter(|c| !OWNED.contains(&c.type_.as_str())));
    out
}

/// Everything about the node and sandbox the status reports.
#[derive(Clone, Debug, Default)]
pub struct Placement {
    pub host_ips: Vec<String>,
    pub pod_ips: Vec<String>,
    pub sandbox_ready: bool,
}

/// The whole status the kubelet writes.
pub fn pod_status(
    pod: &Pod,
    init: &[ContainerRecord],
    app: &[ContainerRecord],
    place: &Placement,
    now: jiff::Timestamp,
) -> PodStatus {
    let phase = phase(pod, init, app);
    let old = pod.status.clone().unwrap_or_default();
    PodStatus {
        phase: Some(phase.to_owned()),
        conditions: Some(conditions(pod, phase, place.sandbox_ready, init, app, now)),
        host_ip: place.host_ips.first().cloned(),
        host_ips: Some(
            place
                .host_ips
                .iter()
                .map(|ip| HostIP { ip: ip.clone() })
                .collect(),
        ),
        pod_ip: place.pod_ips.first().cloned(),
        pod_ips: (!place.pod_ips.is_empty())
            .then(|| place.pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: old.start_time.or(Some(Time(now))),
        init_container_statuses: (!init.is_empty()).then(|| init.iter().map(container_status).collect()),
        container_statuses: Some(app.iter().map(container_status).collect()),
        qos_class: old.qos_class,
        observed_generation: pod.metadata.generation,
        nominated_node_name: old.nominated_node_name,
        ..PodStatus::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn pod(policy: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "generation": 1},
            "spec": {"restartPolicy": policy, "containers": [{"name": "a"}]},
            "status": {"conditions": [{"type": "PodScheduled", "status": "True"}]},
        }))
        .unwrap()
    }

    fn record(name: &str, state: Observed, last: Option<Termination>) -> ContainerRecord {
        ContainerRecord {
            name: name.into(),
            image: "busybox".into(),
            image_id: String::new(),
            restart_count: i32::from(last.is_some()),
            ready: matches!(state, Observed::Running { .. }),
            started: matches!(state, Observed::Running { .. }),
            state,
            last,
            sidecar: false,
        }
    }

    fn exited(code: i32) -> Termination {
        Termination {
            exit_code: code,
            signal: None,
            reason: if code == 0 { "Completed" } else { "Error" }.into(),
            message: None,
            started_at: None,
            finished_at: None,
            container_id: "rudder://x".into(),
        }
    }

    fn waiting(reason: &str) -> Observed {
        Observed::Waiting {
            reason: reason.into(),
            message: None,
        }
    }

    #[test]
    fn phases_follow_upstream() {
        let running = Observed::Running {
            started_at: jiff::Timestamp::UNIX_EPOCH,
            container_id: "rudder://x".into(),
        };
        let p = pod("Always");
        assert_eq!(
            phase(&p, &[], &[record("a", waiting("ContainerCreating"), None)]),
            "Pending"
        );
        assert_eq!(phase(&p, &[], &[record("a", running.clone(), None)]), "Running");
        assert_eq!(
            phase(
                &p,
                &[],
                &[record("a", waiting("CrashLoopBackOff"), Some(exited(1)))]
            ),
            "Running"
        );
        let never = pod("Never");
        assert_eq!(
            phase(&never, &[], &[record("a", Observed::Terminated(exited(0)), None)]),
            "Succeeded"
        );
        assert_eq!(
            phase(&never, &[], &[record("a", Observed::Terminated(exited(2)), None)]),
            "Failed"
        );
        let on_failure = pod("OnFailure");
        assert_eq!(
            phase(
                &on_failure,
                &[],
                &[record("a", Observed::Terminated(exited(2)), None)]
            ),
            "Running"
        );
        let init = [record("i", running, None)];
        assert_eq!(
            phase(&p, &init, &[record("a", waiting("PodInitializing"), None)]),
            "Pending"
        );
        let failed_init = [record("i", Observed::Terminated(exited(1)), None)];
        assert_eq!(
            phase(
                &never,
                &failed_init,
                &[record("a", waiting("PodInitializing"), None)]
            ),
            "Failed"
        );
    }

    #[test]
    fn conditions_name_unready_containers_and_keep_others() {
        let p = pod("Always");
        let now = jiff::Timestamp::UNIX_EPOCH;
        let app = [record("a", waiting("ContainerCreating"), None)];
        let init = [record("i", waiting("PodInitializing"), None)];
        let conditions = conditions(&p, "Pending", true, &init, &app, now);
        let find = |kind: &str| conditions.iter().find(|c| c.type_ == kind).unwrap().clone();
        assert_eq!(find("PodReadyToStartContainers").status, "True");
        assert_eq!(
            find("Initialized").message.as_deref(),
            Some("containers with incomplete status: [i]")
        );
        assert_eq!(
            find("Ready").message.as_deref(),
            Some("containers with unready status: [a]")
        );
        assert_eq!(find("PodScheduled").status, "True");
    }
}
