//! Cron schedules as robfig/cron v3's standard parser reads them (the library upstream's
//! CronJob controller uses): five fields (minute, hour, day of month, month, day of week) with
//! lists, ranges, steps, `*`/`?` and month and weekday names, the `@yearly`, `@monthly`,
//! `@weekly`, `@daily`, `@hourly` and `@every` descriptors, an optional `TZ=`/`CRON_TZ=`
//! prefix, the error messages robfig returns, and `Next` with its day-of-month/day-of-week and
//! daylight saving rules. No I/O beyond reading the zone database.

use std::time::Duration;

use k8s_openapi::jiff::civil::{Date, DateTime};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{SignedDuration, Timestamp, Zoned};

/// The bit robfig sets for a `*` or `?` field, which changes how day fields combine.
const STAR: u64 = 1 << 63;

/// A parsed schedule.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// Fields, evaluated in `zone`.
    Spec(Spec),
    /// `@every <duration>`: a fixed period, in whole seconds.
    Every(Duration),
}

/// The fields of a spec schedule as bit sets.
#[derive(Clone, Debug)]
pub struct Spec {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    zone: TimeZone,
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
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

/// Loads a zone as Go's `time.LoadLocation`: "" and "UTC" are UTC.
pub fn load_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() || name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    if name == "Local" {
        return Ok(TimeZone::system());
    }
    TimeZone::get(name).map_err(|_| format!("unknown time zone {name}"))
}

fn all(bounds: &Bounds) -> u64 {
    bits(bounds.min, bounds.max, 1) | STAR
}

fn bits(min: u32, max: u32, step: u32) -> u64 {
    if step == 1 {
        return (!(u64::MAX << (max + 1))) & (u64::MAX << min);
    }
    let mut out = 0;
    let mut i = min;
    while i <= max {
        out |= 1 << i;
        i += step;
    }
    out
}

fn must_parse_int(expr: &str) -> Result<u32, String> {
    let n: i64 = expr.parse().map_err(|_| {
        format!("failed to parse int from {expr}: strconv.Atoi: parsing {expr:?}: invalid syntax")
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    u32::try_from(n).map_err(|_| format!("failed to parse int from {expr}: value out of range"))
}

fn parse_int_or_name(expr: &str, bounds: &Bounds) -> Result<u32, String> {
    let lower = expr.to_lowercase();
    if let Some((_, value)) = bounds.names.iter().find(|(name, _)| *name == lower) {
        return Ok(*value);
    }
    must_parse_int(expr)
}

fn range(expr: &str, bounds: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;
    let mut extra = 0;
    let start;
    let mut end;
    if low_and_high[0] == "*" || low_and_high[0] == "?" {
        start = bounds.min;
        end = bounds.max;
        extra = STAR;
    } else {
        start = parse_int_or_name(low_and_high[0], bounds)?;
        end = match low_and_high.len() {
            1 => start,
            2 => parse_int_or_name(low_and_high[1], bounds)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            if single {
                end = bounds.max;
            }
            if step > 1 {
                extra = 0;
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
    Ok(bits(start, end, step) | extra)
}

fn field(text: &str, bounds: &Bounds) -> Result<u64, String> {
    text.split(',')
        .try_fold(0, |acc, expr| range(expr, bounds).map(|b| acc | b))
}

/// Parses a Go duration such as `1h30m` or `90s` (for `@every`).
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

/// Parses `spec` as robfig/cron's standard parser (`cron.ParseStandard`).
pub fn parse(spec: &str) -> Result<Schedule, String> {
    if spec.is_empty() {
        return Err("empty spec string".to_owned());
    }
    let mut spec = spec;
    let mut zone = TimeZone::UTC;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let space = spec.find(' ').unwrap_or(spec.len());
        let equals = spec.find('=').unwrap_or(0);
        let name = spec.get(equals + 1..space).unwrap_or("");
        zone = load_zone(name).map_err(|err| format!("provided bad location {name}: {err}"))?;
        spec = spec[space..].trim();
    }
    if spec.starts_with('@') {
        return descriptor(spec, &zone);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    Ok(Schedule::Spec(Spec {
        minute: field(fields[0], &MINUTES)?,
        hour: field(fields[1], &HOURS)?,
        dom: field(fields[2], &DOM)?,
        month: field(fields[3], &MONTHS)?,
        dow: field(fields[4], &DOW)?,
        zone,
    }))
}

fn descriptor(text: &str, zone: &TimeZone) -> Result<Schedule, String> {
    let spec = |minute, hour, dom, month, dow| {
        Ok(Schedule::Spec(Spec {
            minute,
            hour,
            dom,
            month,
            dow,
            zone: zone.clone(),
        }))
    };
    match text {
        "@yearly" | "@annually" => spec(1, 1, 1 << DOM.min, 1 << MONTHS.min, all(&DOW)),
        "@monthly" => spec(1, 1, 1 << DOM.min, all(&MONTHS), all(&DOW)),
        "@weekly" => spec(1, 1, all(&DOM), all(&MONTHS), 1 << DOW.min),
        "@daily" | "@midnight" => spec(1, 1, all(&DOM), all(&MONTHS), all(&DOW)),
        "@hourly" => spec(1, all(&HOURS), all(&DOM), all(&MONTHS), all(&DOW)),
        _ => match text.strip_prefix("@every ") {
            Some(duration) => {
                let every = go_duration(duration).ok_or_else(|| {
                    format!("failed to parse duration {text}: time: invalid duration {duration:?}")
                })?;
                // Rounded down to whole seconds, at least one.
                Ok(Schedule::Every(Duration::from_secs(every.as_secs().max(1))))
            }
            None => Err(format!("unrecognized descriptor: {text}")),
        },
    }
}

impl Schedule {
    /// The first activation strictly after `t`, or `None` if there is none in five years.
    pub fn next(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Every(period) => {
                let whole = Timestamp::from_second(t.as_second()).ok()?;
                whole.checked_add(SignedDuration::try_from(*period).ok()?).ok()
            }
            Schedule::Spec(spec) => spec.next(t),
        }
    }
}

fn has(set: u64, value: i8) -> bool {
    u32::try_from(value).is_ok_and(|v| v < 64 && set & (1 << v) != 0)
}

fn at(zone: &TimeZone, date: Date, hour: i8, minute: i8) -> Option<Zoned> {
    DateTime::from_parts(date, k8s_openapi::jiff::civil::time(hour, minute, 0, 0))
        .to_zoned(zone.clone())
        .ok()
}

/// Go's `time.Date` normalization of (year, month, day) with month or day overflow.
fn go_date(year: i16, month: i8, day: i8) -> Option<Date> {
    let months = i32::from(year) * 12 + i32::from(month) - 1;
    let (year, month) = (months.div_euclid(12), months.rem_euclid(12) + 1);
    let first = Date::new(i16::try_from(year).ok()?, i8::try_from(month).ok()?, 1).ok()?;
    first
        .checked_add(SignedDuration::from_hours(24 * i64::from(day - 1)))
        .ok()
}

impl Spec {
    fn day_matches(&self, t: &Zoned) -> bool {
        let dom = has(self.dom, t.day());
        let dow = has(self.dow, t.weekday().to_sunday_zero_offset());
        if self.dom & STAR != 0 || self.dow & STAR != 0 {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// robfig's `SpecSchedule.Next`.
    fn next(&self, t: Timestamp) -> Option<Timestamp> {
        let zone = &self.zone;
        // The upcoming whole second.
        let start = Timestamp::from_second(t.as_second().checked_add(1)?).ok()?;
        let mut t = start.to_zoned(zone.clone());
        let mut added = false;
        let year_limit = t.year() + 5;
        'wrap: loop {
            if t.year() > year_limit {
                return None;
            }
            while !has(self.month, t.month()) {
                if !added {
                    added = true;
                    t = at(zone, go_date(t.year(), t.month(), 1)?, 0, 0)?;
                }
                t = at(
                    zone,
                    go_date(t.year(), t.month() + 1, t.day())?,
                    t.hour(),
                    t.minute(),
                )?;
                if t.month() == 1 {
                    continue 'wrap;
                }
            }
            while !self.day_matches(&t) {
                if !added {
                    added = true;
                    t = at(zone, t.date(), 0, 0)?;
                }
                t = at(
                    zone,
                    go_date(t.year(), t.month(), t.day() + 1)?,
                    t.hour(),
                    t.minute(),
                )?;
                // Stay at midnight across daylight saving changes.
                if t.hour() != 0 {
                    let shift = if t.hour() > 12 {
                        24 - i64::from(t.hour())
                    } else {
                        -i64::from(t.hour())
                    };
                    t = t.checked_add(SignedDuration::from_hours(shift)).ok()?;
                }
                if t.day() == 1 {
                    continue 'wrap;
                }
            }
            while !has(self.hour, t.hour()) {
                if !added {
                    added = true;
                    t = at(zone, t.date(), t.hour(), 0)?;
                }
                t = t.checked_add(SignedDuration::from_hours(1)).ok()?;
                if t.hour() == 0 {
                    continue 'wrap;
                }
            }
            while !has(self.minute, t.minute()) {
                if !added {
                    added = true;
                    let whole = t.timestamp().as_second().div_euclid(60) * 60;
                    t = Timestamp::from_second(whole).ok()?.to_zoned(zone.clone());
                }
                t = t.checked_add(SignedDuration::from_mins(1)).ok()?;
                if t.minute() == 0 {
                    continue 'wrap;
                }
            }
            // The seconds field of a standard schedule is 0.
            if t.second() != 0 {
                added = true;
                let whole = t.timestamp().as_second().div_euclid(60) * 60 + 60;
                t = Timestamp::from_second(whole).ok()?.to_zoned(zone.clone());
                continue 'wrap;
            }
            return Some(t.timestamp());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn next(spec: &str, from: &str) -> String {
        parse(spec).unwrap().next(ts(from)).unwrap().to_string()
    }

    #[test]
    fn standard_fields_ranges_steps_and_names() {
        assert_eq!(
            next("*/1 * * * *", "2024-03-01T10:00:00Z"),
            "2024-03-01T10:01:00Z"
        );
        assert_eq!(
            next("*/15 * * * *", "2024-03-01T10:07:30Z"),
            "2024-03-01T10:15:00Z"
        );
        assert_eq!(next("5 4 * * *", "2024-03-01T10:00:00Z"), "2024-03-02T04:05:00Z");
        assert_eq!(
            next("0 0 1 jan *", "2024-03-01T10:00:00Z"),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            next("30 6-16/4 * * 1-5", "2024-03-01T15:00:00Z"),
            "2024-03-04T06:30:00Z"
        );
        assert_eq!(
            next("0 9 * * MON", "2024-03-01T10:00:00Z"),
            "2024-03-04T09:00:00Z"
        );
        assert_eq!(next("0 0 31 * *", "2024-04-01T00:00:00Z"), "2024-05-31T00:00:00Z");
        assert_eq!(next("0 0 29 2 *", "2024-03-01T00:00:00Z"), "2028-02-29T00:00:00Z");
        assert_eq!(
            next("1,2,3 * * * *", "2024-03-01T10:02:00Z"),
            "2024-03-01T10:03:00Z"
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_unless_one_is_a_star() {
        // Both restricted: either matches (the 13th or a Friday).
        assert_eq!(next("0 0 13 * 5", "2024-03-01T10:00:00Z"), "2024-03-08T00:00:00Z");
        // A star day of week: only the day of month.
        assert_eq!(next("0 0 13 * *", "2024-03-01T10:00:00Z"), "2024-03-13T00:00:00Z");
        // `*/2` is not a star.
        assert_eq!(
            next("0 0 13 * */2", "2024-03-01T10:00:00Z"),
            "2024-03-02T00:00:00Z"
        );
    }

    #[test]
    fn descriptors_and_every() {
        assert_eq!(next("@hourly", "2024-03-01T10:00:00Z"), "2024-03-01T11:00:00Z");
        assert_eq!(next("@daily", "2024-03-01T10:00:00Z"), "2024-03-02T00:00:00Z");
        assert_eq!(next("@weekly", "2024-03-01T10:00:00Z"), "2024-03-03T00:00:00Z");
        assert_eq!(next("@monthly", "2024-03-01T10:00:00Z"), "2024-04-01T00:00:00Z");
        assert_eq!(next("@yearly", "2024-03-01T10:00:00Z"), "2025-01-01T00:00:00Z");
        assert_eq!(
            next("@every 90s", "2024-03-01T10:00:00.5Z"),
            "2024-03-01T10:01:30Z"
        );
    }

    #[test]
    fn time_zones_and_daylight_saving() {
        assert_eq!(
            next("TZ=Europe/Berlin 0 9 * * *", "2024-03-01T10:00:00Z"),
            "2024-03-02T08:00:00Z"
        );
        assert_eq!(
            next("CRON_TZ=America/New_York 30 2 * * *", "2024-03-09T12:00:00Z"),
            // 02:30 does not exist on 10 March; robfig moves on to the next day's 02:30 EDT.
            "2024-03-11T06:30:00Z"
        );
        assert_eq!(
            parse("TZ=Mars/Olympus * * * * *").unwrap_err(),
            "provided bad location Mars/Olympus: unknown time zone Mars/Olympus"
        );
    }

    #[test]
    fn robfig_errors() {
        assert_eq!(parse("").unwrap_err(), "empty spec string");
        assert_eq!(
            parse("* * * *").unwrap_err(),
            "expected exactly 5 fields, found 4: [* * * *]"
        );
        assert_eq!(
            parse("60 * * * *").unwrap_err(),
            "end of range (60) above maximum (59): 60"
        );
        assert_eq!(
            parse("* * 0 * *").unwrap_err(),
            "beginning of range (0) below minimum (1): 0"
        );
        assert_eq!(
            parse("5-1 * * * *").unwrap_err(),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
        assert_eq!(
            parse("*/0 * * * *").unwrap_err(),
            "step of range should be a positive number: */0"
        );
        assert_eq!(
            parse("@fortnightly").unwrap_err(),
            "unrecognized descriptor: @fortnightly"
        );
        assert!(
            parse("0 0 30 2 *")
                .unwrap()
                .next(ts("2024-01-01T00:00:00Z"))
                .is_none()
        );
    }
}
