//! The batch/v1 CronJob: defaults, registry strategy and validation, with the cron schedule
//! parser upstream validates schedules with.
//!
//! Ports `SetDefaults_CronJob` with the generated job-template defaults (pkg/apis/batch/v1),
//! pkg/registry/batch/cronjob/strategy.go (status reset, generation, status kept, the status
//! strategy that validates nothing, warnings), the CronJob half of pkg/apis/batch/validation
//! (`ValidateCronJobCreate` / `Update`: schedule, `TZ` rules, time zone, concurrency policy,
//! job template, history limits, the 52-character name limit), and the parts of
//! github.com/robfig/cron/v3 `ParseStandard` (and Go's `time.ParseDuration` /
//! `time.LoadLocation`) whose error messages reach clients.

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, CronJobStatus, JobSpec};

use super::job::{default_job_spec_nested, job_spec_warnings, validate_job_spec_common};
use super::pod_spec::{PodValidationOptions, drop_disabled_template_fields, str_of};
use super::time_zones::is_known_time_zone;
use super::workload_shared::{bump_generation, dns_label_name_warning, meta_path, selector_bad};
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{
    name_is_dns_subdomain, validate_nonnegative_field, validate_object_meta, validate_object_meta_update,
};

const CONCURRENCY_POLICIES: &[&str] = &["Allow", "Forbid", "Replace"];
/// The longest CronJob name: job names get an 11-character suffix and must stay DNS labels.
const MAX_CRON_JOB_NAME_LENGTH: usize = 63 - 11;

// ---------------------------------------------------------------------------------------------
// Cron schedules (robfig/cron/v3)
// ---------------------------------------------------------------------------------------------

/// The bounds of a cron field, with its names.
struct Bounds {
    min: u64,
    max: u64,
    names: &'static [(&'static str, u64)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

/// Go's `strconv.Atoi`, with its error text.
fn go_atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {s:?}: invalid syntax"));
    }
    s.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: value out of range"))
}

/// robfig's `mustParseInt`.
fn parse_int(expr: &str) -> Result<u64, String> {
    let num = go_atoi(expr).map_err(|err| format!("failed to parse int from {expr}: {err}"))?;
    u64::try_from(num).map_err(|_| format!("negative number ({num}) not allowed: {expr}"))
}

/// robfig's `parseIntOrName`.
fn parse_int_or_name(expr: &str, bounds: &Bounds) -> Result<u64, String> {
    let lower = expr.to_lowercase();
    if let Some((_, value)) = bounds.names.iter().find(|(name, _)| *name == lower) {
        return Ok(*value);
    }
    parse_int(expr)
}

/// robfig's `getRange`: `number | number "-" number [ "/" number ]`.
fn check_range(expr: &str, bounds: &Bounds) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let (start, mut end) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        (bounds.min, bounds.max)
    } else {
        let start = parse_int_or_name(low_and_high[0], bounds)?;
        let end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], bounds)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = parse_int(range_and_step[1])?;
            if single {
                end = bounds.max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < bounds.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            bounds.min
        ));
    }
    if end > bounds.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            bounds.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

/// robfig's `getField`: a comma-separated list of ranges (empty items skipped).
fn check_field(field: &str, bounds: &Bounds) -> Result<(), String> {
    field
        .split(',')
        .filter(|r| !r.is_empty())
        .try_for_each(|r| check_range(r, bounds))
}

/// Go's `strconv.Quote` for the ASCII text durations are made of.
fn go_quote(s: &str) -> String {
    format!("{s:?}")
}

/// Go's `time.ParseDuration`, for its errors.
fn parse_go_duration(orig: &str) -> Result<(), String> {
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(rest) = s.strip_prefix(['-', '+']) {
        neg = s.starts_with('-');
        s = rest;
    }
    if s == "0" {
        return Ok(());
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u128 = 1 << 63;
    let mut total: u128 = 0;
    while !s.is_empty() {
        let first = s.as_bytes()[0];
        if !(first == b'.' || first.is_ascii_digit()) {
            return Err(invalid());
        }
        let digits = s.bytes().take_while(u8::is_ascii_digit).count();
        let mut value: u128 = 0;
        for b in s[..digits].bytes() {
            value = value * 10 + u128::from(b - b'0');
            if value > LIMIT {
                return Err(invalid());
            }
        }
        s = &s[digits..];
        let pre = digits > 0;
        let mut post = false;
        let mut fraction: u128 = 0;
        let mut scale: u128 = 1;
        if let Some(rest) = s.strip_prefix('.') {
            s = rest;
            let fraction_digits = s.bytes().take_while(u8::is_ascii_digit).count();
            for b in s[..fraction_digits].bytes() {
                if fraction < LIMIT / 10 {
                    fraction = fraction * 10 + u128::from(b - b'0');
                    scale *= 10;
                }
            }
            s = &s[fraction_digits..];
            post = fraction_digits > 0;
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let unit = &s[..unit_len];
        s = &s[unit_len..];
        let nanos: u128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(unit),
                    go_quote(orig)
                ));
            }
        };
        let mut v = value
            .checked_mul(nanos)
            .filter(|v| *v <= LIMIT)
            .ok_or_else(invalid)?;
        if fraction > 0 {
            v += fraction * nanos / scale;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if !neg && total > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(())
}

/// Go's `time.LoadLocation` (with kube-apiserver's embedded tzdata), for its errors.
fn load_location(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        return Ok(());
    }
    if name.contains("..") || name.starts_with('/') || name.starts_with('\\') {
        return Err("time: invalid location name".to_owned());
    }
    if is_known_time_zone(name) {
        return Ok(());
    }
    Err(format!("unknown time zone {name}"))
}

/// Upstream's `ParseCronScheduleWithPanicRecovery`: robfig/cron's `ParseStandard` (five
/// fields or a descriptor, with an optional `TZ=` / `CRON_TZ=` prefix).
pub fn parse_cron_schedule(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".to_owned());
    }
    let mut spec = spec;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let Some(space) = spec.find(' ') else {
            // Upstream slices with the index of a missing space and recovers the panic.
            return Err("invalid schedule format: runtime error: slice bounds out of range [:-1]".to_owned());
        };
        let eq = spec.find('=').unwrap_or(0);
        let name = spec.get(eq + 1..space).unwrap_or_default();
        load_location(name).map_err(|err| format!("provided bad location {name}: {err}"))?;
        spec = spec[space..].trim();
    }
    if spec.starts_with('@') {
        return match spec {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight" | "@hourly" => Ok(()),
            _ => match spec.strip_prefix("@every ") {
                Some(duration) => parse_go_duration(duration)
                    .map_err(|err| format!("failed to parse duration {spec}: {err}")),
                None => Err(format!("unrecognized descriptor: {spec}")),
            },
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    for (field, bounds) in fields.iter().zip([&MINUTES, &HOURS, &DOM, &MONTHS, &DOW]) {
        check_field(field, bounds)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Defaults and validation
// ---------------------------------------------------------------------------------------------

/// `SetObjectDefaults_CronJob`: concurrencyPolicy Allow, suspend false, history limits 3 and
/// 1, the job template's nested defaults; plus what Go always prints (`metadata: {}` of the
/// job template, `status: {}`).
pub fn default_cron_job(cron_job: &mut CronJob) {
    let spec = cron_job.spec.get_or_insert_with(Default::default);
    if str_of(&spec.concurrency_policy).is_empty() {
        spec.concurrency_policy = Some("Allow".to_owned());
    }
    spec.suspend.get_or_insert(false);
    spec.successful_jobs_history_limit.get_or_insert(3);
    spec.failed_jobs_history_limit.get_or_insert(1);
    spec.job_template.metadata.get_or_insert_with(Default::default);
    default_job_spec_nested(spec.job_template.spec.get_or_insert_with(Default::default));
    cron_job.status.get_or_insert_with(Default::default);
}

/// Upstream's `validateScheduleFormat`.
fn validate_schedule_format(
    schedule: &str,
    allow_tz: bool,
    time_zone: Option<&String>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Err(err) = parse_cron_schedule(schedule) {
        errs.push(FieldError::invalid(path, schedule, err));
    }
    let has_tz = schedule.contains("TZ");
    if allow_tz && has_tz && time_zone.is_some() {
        errs.push(FieldError::invalid(
            path,
            schedule,
            "cannot use both timeZone field and TZ or CRON_TZ in schedule",
        ));
    } else if !allow_tz && has_tz {
        errs.push(FieldError::invalid(
            path,
            schedule,
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ));
    }
    errs
}

/// A component of an IANA zone name (`^[A-Za-z\.\-_0-9+]{1,14}$`).
fn valid_time_zone_part(part: &str) -> bool {
    (1..=14).contains(&part.len())
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'))
}

/// Upstream's `validateTimeZone`.
fn validate_time_zone(time_zone: Option<&String>, path: &Path) -> ErrorList {
    let Some(zone) = time_zone else {
        return Vec::new();
    };
    if zone.is_empty() {
        return vec![FieldError::invalid(
            path,
            "",
            "timeZone must be nil or non-empty string",
        )];
    }
    for part in zone.split('/') {
        if part == "." || part == ".." || part.starts_with('-') || !valid_time_zone_part(part) {
            return vec![FieldError::invalid(
                path,
                zone.as_str(),
                format!("unknown time zone {zone}"),
            )];
        }
    }
    let mut errs = ErrorList::new();
    if zone.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            path,
            zone.as_str(),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if let Err(err) = load_location(zone) {
        errs.push(FieldError::invalid(path, zone.as_str(), err));
    }
    errs
}

/// Upstream's `ValidateJobTemplateSpec`.
fn validate_job_template_spec(spec: &JobSpec, path: &Path, opts: &PodValidationOptions) -> ErrorList {
    let spec_path = path.child("spec");
    let mut errs = validate_job_spec_common(spec, &spec_path, opts);
    if let Some(selector) = &spec.selector {
        errs.push(FieldError::invalid(
            &spec_path.child("selector"),
            selector_bad(Some(selector)),
            "`selector` will be auto-generated",
        ));
    }
    if spec.manual_selector == Some(true) {
        errs.push(FieldError::not_supported(
            &spec_path.child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    errs
}

/// Upstream's `validateCronJobSpec`.
pub fn validate_cron_job_spec(
    spec: &CronJobSpec,
    old: Option<&CronJobSpec>,
    path: &Path,
    opts: &PodValidationOptions,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if spec.schedule.is_empty() {
        errs.push(FieldError::required(&path.child("schedule"), ""));
    } else {
        let allow_tz = old.is_some_and(|o| o.schedule.contains("TZ"));
        errs.extend(validate_schedule_format(
            &spec.schedule,
            allow_tz,
            spec.time_zone.as_ref(),
            &path.child("schedule"),
        ));
    }
    if let Some(deadline) = spec.starting_deadline_seconds {
        errs.extend(validate_nonnegative_field(
            deadline,
            &path.child("startingDeadlineSeconds"),
        ));
    }
    if old.is_none_or(|o| o.time_zone != spec.time_zone) {
        errs.extend(validate_time_zone(
            spec.time_zone.as_ref(),
            &path.child("timeZone"),
        ));
    }
    let policy_path = path.child("concurrencyPolicy");
    match str_of(&spec.concurrency_policy) {
        "" => errs.push(FieldError::required(&policy_path, "")),
        policy if CONCURRENCY_POLICIES.contains(&policy) => {}
        policy => errs.push(FieldError::not_supported(
            &policy_path,
            policy,
            CONCURRENCY_POLICIES,
        )),
    }
    errs.extend(validate_job_template_spec(
        &spec.job_template.spec.clone().unwrap_or_default(),
        &path.child("jobTemplate"),
        opts,
    ));
    for (name, limit) in [
        ("successfulJobsHistoryLimit", spec.successful_jobs_history_limit),
        ("failedJobsHistoryLimit", spec.failed_jobs_history_limit),
    ] {
        if let Some(limit) = limit {
            errs.extend(validate_nonnegative_field(i64::from(limit), &path.child(name)));
        }
    }
    errs
}

fn pod_template_of(cron_job: &CronJob) -> Option<&k8s_openapi::api::core::v1::PodTemplateSpec> {
    cron_job
        .spec
        .as_ref()
        .and_then(|s| s.job_template.spec.as_ref())
        .map(|s| &s.template)
}

impl KindStrategy for CronJob {
    fn apply_defaults(&mut self) {
        default_cron_job(self);
    }

    fn prepare_for_create(&mut self) {
        self.status = Some(CronJobStatus::default());
        self.metadata.generation = Some(1);
        if let Some(spec) = self.spec.as_mut().and_then(|s| s.job_template.spec.as_mut()) {
            drop_disabled_template_fields(&mut spec.template, None);
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        self.status.clone_from(&old.status);
        let old_template = pod_template_of(old);
        if let Some(spec) = self.spec.as_mut().and_then(|s| s.job_template.spec.as_mut()) {
            drop_disabled_template_fields(&mut spec.template, old_template);
        }
        let changed = self.spec != old.spec;
        bump_generation(&mut self.metadata, &old.metadata, changed);
    }

    fn prepare_for_status_update(&mut self, old: &Self) {
        self.spec.clone_from(&old.spec);
    }

    fn validate(&self) -> ErrorList {
        let opts = PodValidationOptions::for_template(None);
        let mut errs = validate_object_meta(&self.metadata, true, name_is_dns_subdomain, &meta_path());
        errs.extend(validate_cron_job_spec(
            &self.spec.clone().unwrap_or_default(),
            None,
            &Path::new("spec"),
            &opts,
        ));
        let name = str_of(&self.metadata.name);
        if name.len() > MAX_CRON_JOB_NAME_LENGTH {
            errs.push(FieldError::invalid(
                &meta_path().child("name"),
                name,
                "must be no more than 52 characters",
            ));
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let opts = PodValidationOptions::for_template(pod_template_of(old));
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        errs.extend(validate_cron_job_spec(
            &self.spec.clone().unwrap_or_default(),
            Some(&old.spec.clone().unwrap_or_default()),
            &Path::new("spec"),
            &opts,
        ));
        errs
    }

    fn warnings(&self) -> Vec<String> {
        let spec = self.spec.clone().unwrap_or_default();
        let mut warnings: Vec<String> = dns_label_name_warning(&self.metadata).into_iter().collect();
        warnings.extend(job_spec_warnings(
            &Path::new("spec").child("jobTemplate").child("spec"),
            &spec.job_template.spec.clone().unwrap_or_default(),
        ));
        if spec.schedule.contains("TZ") {
            warnings.push(
                "cannot use TZ or CRON_TZ in spec.spec.schedule, use timeZone instead, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details"
                    .to_owned(),
            );
        }
        warnings
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::super::workload_shared::testing::{Gvk, defaulted_pod_spec, stored};
    use super::parse_cron_schedule;
    use crate::strategy::UpdateTarget;

    const CRON: Gvk = Gvk("batch", "v1", "CronJob");

    fn cron_job() -> Value {
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {
                "schedule": "*/1 * * * *",
                "jobTemplate": {"spec": {"template": {"spec": {
                    "containers": [{"name": "c", "image": "busybox:1.36"}],
                    "restartPolicy": "OnFailure"
                }}}}
            }
        })
    }

    #[test]
    fn defaults_like_kube_apiserver() {
        assert_eq!(
            CRON.created(cron_job()),
            json!({
                "apiVersion": "batch/v1", "kind": "CronJob",
                "metadata": {"name": "hello", "namespace": "default", "generation": 1},
                "spec": {
                    "concurrencyPolicy": "Allow",
                    "failedJobsHistoryLimit": 1,
                    "jobTemplate": {
                        "metadata": {},
                        "spec": {"template": {
                            "metadata": {},
                            "spec": defaulted_pod_spec("busybox:1.36", "IfNotPresent", "OnFailure")
                        }}
                    },
                    "schedule": "*/1 * * * *",
                    "successfulJobsHistoryLimit": 3,
                    "suspend": false
                },
                "status": {}
            })
        );
    }

    #[test]
    fn cron_schedules_like_robfig() {
        for ok in [
            "* * * * *",
            "0 0 * * 0",
            "@hourly",
            "@every 1h30m",
            "*/15 9-17 * JAN-dec mon-fri",
            "5,10,,15 * ? * *",
            "CRON_TZ=America/New_York 0 * * * *",
            "TZ=UTC @daily",
        ] {
            assert_eq!(parse_cron_schedule(ok), Ok(()), "{ok}");
        }
        for (bad, err) in [
            ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
            ("61 * * * *", "end of range (61) above maximum (59): 61"),
            ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
            (
                "5-2 * * * *",
                "beginning of range (5) beyond end of range (2): 5-2",
            ),
            ("*/0 * * * *", "step of range should be a positive number: */0"),
            ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
            ("*/2/3 * * * *", "too many slashes: */2/3"),
            (
                "a * * * *",
                "failed to parse int from a: strconv.Atoi: parsing \"a\": invalid syntax",
            ),
            ("*/-1 * * * *", "negative number (-1) not allowed: -1"),
            ("@often", "unrecognized descriptor: @often"),
            (
                "@every 5x",
                "failed to parse duration @every 5x: time: unknown unit \"x\" in duration \"5x\"",
            ),
            (
                "@every 5",
                "failed to parse duration @every 5: time: missing unit in duration \"5\"",
            ),
            (
                "TZ=0",
                "invalid schedule format: runtime error: slice bounds out of range [:-1]",
            ),
            (
                "TZ=Mars/Olympus * * * * *",
                "provided bad location Mars/Olympus: unknown time zone Mars/Olympus",
            ),
        ] {
            assert_eq!(parse_cron_schedule(bad), Err(err.to_owned()), "{bad}");
        }
    }

    fn check(mutate: impl Fn(&mut Value), expected: &[&str]) {
        let mut c = cron_job();
        mutate(&mut c);
        assert_eq!(CRON.create_errors(c), expected);
    }

    #[test]
    fn validation() {
        check(
            |c| c["spec"]["schedule"] = json!(""),
            &["spec.schedule: Required value"],
        );
        check(
            |c| c["spec"]["schedule"] = json!("every minute"),
            &[
                "spec.schedule: Invalid value: \"every minute\": expected exactly 5 fields, found 2: [every minute]",
            ],
        );
        check(
            |c| c["spec"]["schedule"] = json!("TZ=UTC * * * * *"),
            &[
                "spec.schedule: Invalid value: \"TZ=UTC * * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ],
        );
        check(
            |c| c["spec"]["schedule"] = json!("TZ=0"),
            &[
                "spec.schedule: Invalid value: \"TZ=0\": invalid schedule format: runtime error: slice bounds out of range [:-1]",
                "spec.schedule: Invalid value: \"TZ=0\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ],
        );
        check(|c| c["spec"]["timeZone"] = json!("Europe/Berlin"), &[]);
        check(
            |c| c["spec"]["timeZone"] = json!(""),
            &["spec.timeZone: Invalid value: \"\": timeZone must be nil or non-empty string"],
        );
        check(
            |c| c["spec"]["timeZone"] = json!("Europe/Nowhere"),
            &["spec.timeZone: Invalid value: \"Europe/Nowhere\": unknown time zone Europe/Nowhere"],
        );
        check(
            |c| c["spec"]["timeZone"] = json!("America/Argentina/Buenos_Aires_City"),
            &[
                "spec.timeZone: Invalid value: \"America/Argentina/Buenos_Aires_City\": unknown time zone America/Argentina/Buenos_Aires_City",
            ],
        );
        check(
            |c| c["spec"]["timeZone"] = json!("local"),
            &[
                "spec.timeZone: Invalid value: \"local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
                "spec.timeZone: Invalid value: \"local\": unknown time zone local",
            ],
        );
        check(
            |c| {
                c["spec"]["concurrencyPolicy"] = json!("Sometimes");
                c["spec"]["startingDeadlineSeconds"] = json!(-1);
                c["spec"]["successfulJobsHistoryLimit"] = json!(-1);
            },
            &[
                "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0",
                "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
                "spec.successfulJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
            ],
        );
        check(
            |c| {
                c["spec"]["jobTemplate"]["spec"]["selector"] = json!({"matchLabels": {"a": "b"}});
                c["spec"]["jobTemplate"]["spec"]["manualSelector"] = json!(true);
                c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
            },
            &[
                "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
                "spec.jobTemplate.spec.selector: Invalid value: {\"matchLabels\":{\"a\":\"b\"}}: `selector` will be auto-generated",
                "spec.jobTemplate.spec.manualSelector: Unsupported value: true: supported values: \"nil\", \"false\"",
            ],
        );
        check(
            |c| c["metadata"]["name"] = json!("a-name-that-is-longer-than-fifty-two-characters-in-total"),
            &[
                "metadata.name: Invalid value: \"a-name-that-is-longer-than-fifty-two-characters-in-total\": must be no more than 52 characters",
            ],
        );
    }

    #[test]
    fn updates() {
        let old = stored(CRON.created(cron_job()));
        let mut new = old.clone();
        new["spec"]["schedule"] = json!("0 * * * *");
        new["status"] = json!({"lastScheduleTime": "2025-01-01T00:00:00Z"});
        let out = CRON.updated(new, &old, UpdateTarget::Main);
        assert_eq!(out["metadata"]["generation"], json!(2));
        assert_eq!(out["status"], json!({}));

        // Legacy objects with TZ in their schedule may keep it, but not with a timeZone.
        let mut legacy = old.clone();
        legacy["spec"]["schedule"] = json!("TZ=UTC 0 * * * *");
        let mut new = legacy.clone();
        new["spec"]["suspend"] = json!(true);
        assert_eq!(
            CRON.update_errors(new.clone(), &legacy, UpdateTarget::Main),
            Vec::<String>::new()
        );
        assert_eq!(
            CRON.warnings(&new),
            [
                "cannot use TZ or CRON_TZ in spec.spec.schedule, use timeZone instead, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details"
            ]
        );
        new["spec"]["timeZone"] = json!("UTC");
        assert_eq!(
            CRON.update_errors(new, &legacy, UpdateTarget::Main),
            [
                "spec.schedule: Invalid value: \"TZ=UTC 0 * * * *\": cannot use both timeZone field and TZ or CRON_TZ in schedule"
            ]
        );

        // Long names are tolerated on update; the status endpoint keeps the spec.
        let mut status = old.clone();
        status["spec"]["suspend"] = json!(true);
        status["status"] = json!({"lastScheduleTime": "2025-01-01T00:00:00Z"});
        let out = CRON.updated(status, &old, UpdateTarget::Status);
        assert_eq!(out["spec"]["suspend"], json!(false));
        assert_eq!(out["status"], json!({"lastScheduleTime": "2025-01-01T00:00:00Z"}));
    }
}
