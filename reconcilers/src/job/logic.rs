//! The job controller's pure rules (upstream: pkg/controller/job's indexed_job_utils.go,
//! backoff_utils.go, pod_failure_policy.go and success_policy.go): completion index intervals,
//! the pod failure backoff, pod failure policy and success policy matching, and the facts read
//! from a job's pods. No I/O and no clock: callers pass `now`.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobSpec, PodFailurePolicy, SuccessPolicy};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The finalizer that keeps a job's pods until they are counted in its status.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The annotation and label holding a pod's completion index.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// How many counted failures an index had before this pod.
pub const INDEX_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-failure-count";
/// How many ignored failures an index had before this pod.
pub const INDEX_IGNORED_FAILURE_COUNT: &str = "batch.kubernetes.io/job-index-ignored-failure-count";
/// The first pod failure backoff (upstream's DefaultJobPodFailureBackOff).
pub const FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// The longest pod failure backoff (upstream's MaxJobPodFailureBackOff).
pub const MAX_FAILURE_BACKOFF: Duration = Duration::from_secs(600);

/// The pod's phase, or "".
pub fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// Whether the pod carries the tracking finalizer.
pub fn has_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == TRACKING_FINALIZER)
}

/// The pod's completion index, if it has a valid one.
pub fn completion_index(pod: &Pod) -> Option<i32> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(COMPLETION_INDEX)?
        .parse::<i32>()
        .ok()
        .filter(|i| *i >= 0)
}

/// The completion index if it is below `completions`.
pub fn valid_index(pod: &Pod, completions: i32) -> Option<i32> {
    completion_index(pod).filter(|i| *i < completions)
}

fn annotation_count(pod: &Pod, key: &str) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|v| (0..=i64::from(i32::MAX)).contains(v))
        .and_then(|v| i32::try_from(v).ok())
        .unwrap_or(0)
}

/// The index failure count the pod was created with.
pub fn index_failure_count(pod: &Pod) -> i32 {
    annotation_count(pod, INDEX_FAILURE_COUNT)
}

/// The counted and ignored failures of the pod's index before it.
pub fn index_absolute_failure_count(pod: &Pod) -> i32 {
    index_failure_count(pod).saturating_add(annotation_count(pod, INDEX_IGNORED_FAILURE_COUNT))
}

/// Whether the job's pods are indexed.
pub fn is_indexed(job: &Job) -> bool {
    spec(job).completion_mode.as_deref() == Some("Indexed")
}

/// The job's spec (empty if missing).
pub fn spec(job: &Job) -> &JobSpec {
    static EMPTY: std::sync::OnceLock<JobSpec> = std::sync::OnceLock::new();
    job.spec
        .as_ref()
        .unwrap_or_else(|| EMPTY.get_or_init(JobSpec::default))
}

/// Whether failed pods are replaced only once they are terminal (not while terminating).
pub fn only_replace_failed(job: &Job) -> bool {
    let spec = spec(job);
    spec.pod_replacement_policy.as_deref() == Some("Failed") || spec.pod_failure_policy.is_some()
}

/// Upstream's isPodFailed: Failed, or (unless only failed pods are replaced) deleted before
/// succeeding.
pub fn is_pod_failed(pod: &Pod, job: &Job) -> bool {
    if phase(pod) == "Failed" {
        return true;
    }
    if only_replace_failed(job) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && phase(pod) != "Succeeded"
}

/// What a pod failure policy rule does with a failed pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyAction {
    /// Fails the whole job.
    FailJob,
    /// Not counted towards the backoff limits.
    Ignore,
    /// Counted as usual.
    Count,
    /// Fails the pod's index.
    FailIndex,
}

/// What matching a failed pod against the pod failure policy says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyMatch {
    /// The job failure message of a FailJob rule.
    pub fail_job: Option<String>,
    /// Whether the failure counts towards the backoff limits.
    pub count: bool,
    /// The matched action.
    pub action: Option<PolicyAction>,
}

fn terminated_matching<'a>(
    statuses: &'a [ContainerStatus],
    container: Option<&str>,
    operator: &str,
    values: &[i32],
) -> Option<(&'a ContainerStatus, i32)> {
    statuses.iter().find_map(|status| {
        let code = status.state.as_ref()?.terminated.as_ref()?.exit_code;
        if container.is_some_and(|c| c != status.name) || code == 0 {
            return None;
        }
        let matched = match operator {
            "In" => values.contains(&code),
            "NotIn" => !values.contains(&code),
            _ => false,
        };
        matched.then_some((status, code))
    })
}

/// Upstream's matchPodFailurePolicy.
pub fn match_pod_failure_policy(policy: Option<&PodFailurePolicy>, pod: &Pod) -> PolicyMatch {
    let mut result = PolicyMatch {
        fail_job: None,
        count: true,
        action: None,
    };
    let Some(policy) = policy else {
        return result;
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let status = pod.status.clone().unwrap_or_default();
    for (index, rule) in policy.rules.iter().enumerate() {
        let described = if let Some(req) = &rule.on_exit_codes {
            let container = req.container_name.as_deref();
            let found = terminated_matching(
                status.container_statuses.as_deref().unwrap_or_default(),
                container,
                &req.operator,
                &req.values,
            )
            .or_else(|| {
                terminated_matching(
                    status.init_container_statuses.as_deref().unwrap_or_default(),
                    container,
                    &req.operator,
                    &req.values,
                )
            });
            found.map(|(c, code)| {
                format!(
                    "Container {} for pod {namespace}/{name} failed with exit code {code} matching {} rule at index {index}",
                    c.name, rule.action
                )
            })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            status.conditions.iter().flatten().find_map(|condition| {
                patterns
                    .iter()
                    .any(|p| {
                        p.type_ == condition.type_
                            && p.status.as_deref().unwrap_or("True") == condition.status
                    })
                    .then(|| {
                        format!(
                            "Pod {namespace}/{name} has condition {} matching {} rule at index {index}",
                            condition.type_, rule.action
                        )
                    })
            })
        } else {
            None
        };
        let Some(message) = described else {
            continue;
        };
        match rule.action.as_str() {
            "Ignore" => {
                result.count = false;
                result.action = Some(PolicyAction::Ignore);
                return result;
            }
            "FailIndex" => {
                result.action = Some(PolicyAction::FailIndex);
                return result;
            }
            "Count" => {
                result.action = Some(PolicyAction::Count);
                return result;
            }
            "FailJob" => {
                result.fail_job = Some(message);
                result.action = Some(PolicyAction::FailJob);
                return result;
            }
            _ => {}
        }
    }
    result
}

/// Ordered, disjoint, non-adjacent intervals of completion indexes (upstream's
/// orderedIntervals), as in `status.completedIndexes` ("1,3-5,7").
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Intervals(pub Vec<(i32, i32)>);

impl Intervals {
    /// Parses `text`, ignoring corrupt intervals and indexes at or above `completions`.
    pub fn parse(text: &str, completions: i32) -> Intervals {
        let mut result: Vec<(i32, i32)> = Vec::new();
        if text.is_empty() {
            return Intervals(result);
        }
        for part in text.split(',') {
            let mut limits = part.split('-');
            let Some(Ok(first)) = limits.next().map(str::parse::<i32>) else {
                continue;
            };
            if first >= completions {
                break;
            }
            let last = match limits.next() {
                Some(text) => match text.parse::<i32>() {
                    Ok(last) => last.min(completions - 1),
                    Err(_) => continue,
                },
                None => first,
            };
            match result.last_mut() {
                Some(previous) if previous.1 == first - 1 => previous.1 = last,
                _ => result.push((first, last)),
            }
        }
        Intervals(result)
    }

    /// These intervals with the indexes of `sorted` (in increasing order) added.
    pub fn with_indexes(&self, sorted: &[i32]) -> Intervals {
        self.merge(&Intervals(sorted.iter().map(|i| (*i, *i)).collect()))
    }

    /// The union of two interval lists.
    pub fn merge(&self, other: &Intervals) -> Intervals {
        let mut all: Vec<(i32, i32)> = self.0.iter().chain(other.0.iter()).copied().collect();
        all.sort_by_key(|iv| iv.0);
        let mut result: Vec<(i32, i32)> = Vec::new();
        for interval in all {
            match result.last_mut() {
                Some(last) if interval.0 <= last.1.saturating_add(1) => last.1 = last.1.max(interval.1),
                _ => result.push(interval),
            }
        }
        Intervals(result)
    }

    /// How many indexes.
    pub fn total(&self) -> i32 {
        self.0.iter().map(|(a, b)| b - a + 1).sum()
    }

    /// Whether `index` is in.
    pub fn has(&self, index: i32) -> bool {
        self.0.iter().any(|(a, b)| (*a..=*b).contains(&index))
    }

    /// Upstream's serialization: `a`, `a,b` for two, `a-b` for longer runs.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (first, last) in &self.0 {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(&first.to_string());
            if last > first {
                out.push(if *last == first + 1 { ',' } else { '-' });
                out.push_str(&last.to_string());
            }
        }
        out
    }
}

/// Upstream's matchSuccessPolicy: the message of the first rule met.
pub fn match_success_policy(
    policy: Option<&SuccessPolicy>,
    completions: i32,
    succeeded: &Intervals,
) -> Option<String> {
    let policy = policy?;
    if succeeded.0.is_empty() {
        return None;
    }
    for (index, rule) in policy.rules.iter().enumerate() {
        let met = if let Some(indexes) = &rule.succeeded_indexes {
            let required = Intervals::parse(indexes, completions);
            if required.0.is_empty() {
                continue;
            }
            let contained: i32 = required
                .0
                .iter()
                .flat_map(|r| {
                    succeeded
                        .0
                        .iter()
                        .map(move |s| (r.1.min(s.1) - r.0.max(s.0) + 1).max(0))
                })
                .sum();
            contained == required.total() || rule.succeeded_count.is_some_and(|c| contained >= c)
        } else {
            rule.succeeded_count.is_some_and(|c| succeeded.total() >= c)
        };
        if met {
            return Some(format!("Matched rules at index {index}"));
        }
    }
    None
}

/// When a finished pod finished: its containers' last finish, else its Ready=False
/// transition, else its deletion less the grace period, else its creation.
pub fn finished_time(pod: &Pod) -> Timestamp {
    if let Some(at) = containers_finished(pod) {
        return at;
    }
    let status = pod.status.as_ref();
    if let Some(at) = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "False"))
        .and_then(|c| c.last_transition_time.as_ref())
    {
        return at.0;
    }
    if let Some(deleted) = &pod.metadata.deletion_timestamp {
        let grace = pod.metadata.deletion_grace_period_seconds.unwrap_or(0);
        return deleted.0 - SignedDuration::from_secs(grace);
    }
    pod.metadata
        .creation_timestamp
        .as_ref()
        .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
}

fn containers_finished(pod: &Pod) -> Option<Timestamp> {
    let status = pod.status.as_ref()?;
    let mut latest: Option<Timestamp> = None;
    let mut consider = |s: &ContainerStatus| -> bool {
        match s
            .state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .and_then(|t| t.finished_at.as_ref())
        {
            Some(at) => {
                latest = Some(latest.map_or(at.0, |l| l.max(at.0)));
                true
            }
            None => false,
        }
    };
    for s in status.container_statuses.iter().flatten() {
        if !consider(s) {
            return None;
        }
    }
    let sidecars: BTreeSet<&str> = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| c.name.as_str())
        .collect();
    for s in status
        .init_container_statuses
        .iter()
        .flatten()
        .filter(|s| sidecars.contains(s.name.as_str()))
    {
        if !consider(s) {
            return None;
        }
    }
    latest
}

/// The failures since the last success, for the pod failure backoff (upstream's
/// backoffRecord).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackoffRecord {
    /// Failed pods since the last succeeded one.
    pub failures_after_last_success: i32,
    /// When the last of them failed.
    pub last_failure: Option<Timestamp>,
}

impl BackoffRecord {
    /// The record after `succeeded` and `failed` newly finished pods.
    pub fn next(&self, succeeded: &[&Pod], failed: &[&Pod]) -> BackoffRecord {
        let mut failed_times: Vec<Timestamp> = failed.iter().map(|p| finished_time(p)).collect();
        failed_times.sort();
        let last_success = succeeded.iter().map(|p| finished_time(p)).max();
        match last_success {
            None => match failed_times.last() {
                None => self.clone(),
                Some(last) => BackoffRecord {
                    failures_after_last_success: self
                        .failures_after_last_success
                        .saturating_add(i32::try_from(failed_times.len()).unwrap_or(i32::MAX)),
                    last_failure: Some(*last),
                },
            },
            Some(success) => {
                let mut record = BackoffRecord::default();
                for at in failed_times.iter().rev() {
                    if *at <= success {
                        break;
                    }
                    if record.last_failure.is_none() {
                        record.last_failure = Some(*at);
                    }
                    record.failures_after_last_success += 1;
                }
                record
            }
        }
    }

    /// How long until a new pod may be created at `now`.
    pub fn remaining(&self, now: Timestamp) -> Duration {
        match self.last_failure {
            Some(at) => remaining_for(self.failures_after_last_success, at, now),
            None => Duration::ZERO,
        }
    }
}

/// The backoff left after `failures` consecutive failures, the last at `last`: 10 s doubled
/// per further failure, at most 10 min.
pub fn remaining_for(failures: i32, last: Timestamp, now: Timestamp) -> Duration {
    if failures <= 0 {
        return Duration::ZERO;
    }
    let mut backoff = FAILURE_BACKOFF;
    for _ in 1..failures {
        backoff = backoff.saturating_mul(2);
        if backoff >= MAX_FAILURE_BACKOFF {
            backoff = MAX_FAILURE_BACKOFF;
            break;
        }
    }
    let elapsed = now.duration_since(last);
    let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
    backoff.saturating_sub(elapsed)
}

/// Upstream's podGenerateNameWithIndex: `<job>-<index>-`, the job name cut to fit.
pub fn generate_name_with_index(job: &str, index: i32) -> String {
    const MAX_GENERATED_NAME_LENGTH: usize = 58;
    let suffix = format!("-{index}-");
    let prefix = format!("{job}{suffix}");
    if prefix.len() > MAX_GENERATED_NAME_LENGTH {
        let keep = MAX_GENERATED_NAME_LENGTH.saturating_sub(suffix.len());
        let cut: String = job.chars().take(keep).collect();
        return format!("{cut}{suffix}");
    }
    prefix
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn intervals_parse_render_and_merge_like_upstream() {
        let parsed = Intervals::parse("0,2-4,5,9", 8);
        assert_eq!(parsed.0, vec![(0, 0), (2, 5)]);
        assert_eq!(parsed.render(), "0,2-5");
        assert_eq!(Intervals::parse("1,x,3", 10).render(), "1,3");
        let merged = parsed.with_indexes(&[1, 6, 7]);
        assert_eq!(merged.render(), "0-7");
        assert_eq!(merged.total(), 8);
        assert_eq!(Intervals::parse("3,4", 10).render(), "3,4");
        assert!(merged.has(6));
        assert!(!parsed.has(1));
    }

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_ten_minutes() {
        let now = Timestamp::from_second(10_000).unwrap();
        assert_eq!(remaining_for(1, now, now), Duration::from_secs(10));
        assert_eq!(remaining_for(3, now, now), Duration::from_secs(40));
        assert_eq!(remaining_for(30, now, now), Duration::from_secs(600));
        let earlier = Timestamp::from_second(9_995).unwrap();
        assert_eq!(remaining_for(1, earlier, now), Duration::from_secs(5));
        assert_eq!(remaining_for(0, earlier, now), Duration::ZERO);
    }

    fn finished(phase: &str, code: i32, at: &str) -> Pod {
        pod(
            json!({"metadata": {"name": "p", "namespace": "ns"}, "status": {"phase": phase,
            "containerStatuses": [{"name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": code, "finishedAt": at}}}]}}),
        )
    }

    #[test]
    fn a_success_resets_the_backoff() {
        let f1 = finished("Failed", 1, "2024-01-01T00:00:10Z");
        let f2 = finished("Failed", 1, "2024-01-01T00:00:30Z");
        let s = finished("Succeeded", 0, "2024-01-01T00:00:20Z");
        let record = BackoffRecord::default().next(&[], &[&f1]);
        assert_eq!(record.failures_after_last_success, 1);
        let record = record.next(&[&s], &[&f2]);
        assert_eq!(record.failures_after_last_success, 1);
        assert_eq!(record.last_failure, Some("2024-01-01T00:00:30Z".parse().unwrap()));
        assert_eq!(record.next(&[&s], &[]), BackoffRecord::default());
    }

    #[test]
    fn pod_failure_policy_rules_in_order() {
        let policy: PodFailurePolicy = serde_json::from_value(json!({"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
            {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [42]}},
        ]}))
        .unwrap();
        let failed = finished("Failed", 42, "2024-01-01T00:00:10Z");
        let matched = match_pod_failure_policy(Some(&policy), &failed);
        assert_eq!(
            matched.fail_job.as_deref(),
            Some("Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1")
        );
        assert_eq!(matched.action, Some(PolicyAction::FailJob));
        let other = finished("Failed", 3, "2024-01-01T00:00:10Z");
        assert_eq!(
            match_pod_failure_policy(Some(&policy), &other).action,
            Some(PolicyAction::Count)
        );
        let mut disrupted = other.clone();
        disrupted.status.as_mut().unwrap().conditions = Some(vec![
            serde_json::from_value(json!({"type": "DisruptionTarget", "status": "True"})).unwrap(),
        ]);
        let ignored = match_pod_failure_policy(Some(&policy), &disrupted);
        assert!(!ignored.count);
        assert_eq!(ignored.action, Some(PolicyAction::Ignore));
        assert!(match_pod_failure_policy(None, &other).count);
    }

    #[test]
    fn success_policy_by_indexes_and_count() {
        let policy: SuccessPolicy = serde_json::from_value(json!({"rules": [
            {"succeededIndexes": "0-2", "succeededCount": 2},
            {"succeededCount": 4},
        ]}))
        .unwrap();
        let none = Intervals::parse("0,5", 10);
        assert_eq!(match_success_policy(Some(&policy), 10, &none), None);
        let two = Intervals::parse("0,2", 10);
        assert_eq!(
            match_success_policy(Some(&policy), 10, &two).as_deref(),
            Some("Matched rules at index 0")
        );
        let four = Intervals::parse("5-8", 10);
        assert_eq!(
            match_success_policy(Some(&policy), 10, &four).as_deref(),
            Some("Matched rules at index 1")
        );
    }

    #[test]
    fn indexed_generate_names() {
        assert_eq!(generate_name_with_index("pi", 3), "pi-3-");
        let long = "a".repeat(60);
        let name = generate_name_with_index(&long, 12);
        assert_eq!(name.len(), 58);
        assert!(name.ends_with("a-12-"));
    }
}
