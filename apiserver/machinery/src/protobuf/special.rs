//! The text forms of the special scalar types, as Go writes and reads them: `meta.v1.Time`
//! and `MicroTime` (RFC 3339 with seconds or microseconds) and `meta.v1.Duration` (Go's
//! `time.Duration` strings, `1h0m0s`).

use jiff::Timestamp;

/// The Unix seconds of Go's zero `time.Time` (January 1, year 1, UTC), written as `null`.
const ZERO_TIME_SECONDS: i64 = -62_135_596_800;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// Normalizes seconds and nanoseconds as Go's `time.Unix` does (nanoseconds in `0..1e9`).
fn normalize(seconds: i64, nanos: i32) -> (i64, i64) {
    let total = i128::from(seconds) * NANOS_PER_SECOND + i128::from(nanos);
    let seconds = total.div_euclid(NANOS_PER_SECOND);
    let nanos = total.rem_euclid(NANOS_PER_SECOND);
    (
        i64::try_from(seconds).unwrap_or(i64::MAX),
        i64::try_from(nanos).unwrap_or(0),
    )
}

/// Formats a timestamp as `metav1.Time` (`micro` false: `2006-01-02T15:04:05Z`) or
/// `metav1.MicroTime` (`micro` true: `2006-01-02T15:04:05.000000Z`) marshal it to JSON, in
/// UTC and truncated; `None` for Go's zero time.
pub(super) fn format_time(seconds: i64, nanos: i32, micro: bool) -> Result<Option<String>, String> {
    let (seconds, nanos) = normalize(seconds, nanos);
    if seconds == ZERO_TIME_SECONDS && nanos == 0 {
        return Ok(None);
    }
    let timestamp = Timestamp::from_second(seconds).map_err(|err| err.to_string())?;
    let base = timestamp.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(Some(if micro {
        format!("{base}.{:06}Z", nanos / 1000)
    } else {
        format!("{base}Z")
    }))
}

/// Parses an RFC 3339 timestamp (`metav1.Time`'s and `MicroTime`'s JSON) into Unix seconds
/// and nanoseconds (`0..1e9`).
pub(super) fn parse_time(text: &str) -> Result<(i64, i32), String> {
    let timestamp: Timestamp = text.parse().map_err(|err: jiff::Error| err.to_string())?;
    let (seconds, nanos) = normalize(timestamp.as_second(), timestamp.subsec_nanosecond());
    Ok((seconds, i32::try_from(nanos).unwrap_or(0)))
}

/// Whether Unix seconds and nanoseconds are Go's zero time.
pub(super) fn is_zero_time(seconds: i64, nanos: i32) -> bool {
    normalize(seconds, nanos) == (ZERO_TIME_SECONDS, 0)
}

/// Formats nanoseconds as Go's `time.Duration.String` does (`1h2m3.5s`, `1.5ms`, `0s`).
pub(super) fn format_duration(duration: i64) -> String {
    let negative = duration < 0;
    let value = duration.unsigned_abs();
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if value < 1_000_000_000 {
        let (precision, unit) = match value {
            0 => return "0s".to_string(),
            1..1_000 => (0, "ns"),
            1_000..1_000_000 => (3, "µs"),
            _ => (6, "ms"),
        };
        let (whole, fraction) = split_fraction(value, precision);
        out.push_str(&format!("{whole}{fraction}{unit}"));
    } else {
        let (seconds, fraction) = split_fraction(value, 9);
        let minutes = seconds / 60;
        let hours = minutes / 60;
        if hours > 0 {
            out.push_str(&format!("{hours}h"));
        }
        if minutes > 0 {
            out.push_str(&format!("{}m", minutes % 60));
        }
        out.push_str(&format!("{}{fraction}s", seconds % 60));
    }
    out
}

/// Splits `value / 10^precision` into the whole part and `.digits` without trailing zeros
/// (empty when the fraction is zero), as Go's `fmtFrac`.
fn split_fraction(value: u64, precision: u32) -> (u64, String) {
    let scale = 10u64.pow(precision);
    let fraction = value % scale;
    if fraction == 0 {
        return (value / scale, String::new());
    }
    let digits = format!("{fraction:0width$}", width = precision as usize);
    (value / scale, format!(".{}", digits.trim_end_matches('0')))
}

/// Parses a Go duration string (`300ms`, `-1.5h`, `2h45m`) as Go's `time.ParseDuration`.
pub(super) fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let mut rest = text;
    let mut negative = false;
    if let Some(stripped) = rest.strip_prefix('-') {
        negative = true;
        rest = stripped;
    } else if let Some(stripped) = rest.strip_prefix('+') {
        rest = stripped;
    }
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !rest.is_empty() {
        if !rest.starts_with(|c: char| c == '.' || c.is_ascii_digit()) {
            return Err(invalid());
        }
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let (int_part, after) = rest.split_at(digits);
        let mut whole: u64 = 0;
        for digit in int_part.bytes() {
            whole = whole
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                .filter(|v| *v <= LIMIT)
                .ok_or_else(invalid)?;
        }
        rest = after;
        let mut fraction: u64 = 0;
        let mut scale: f64 = 1.0;
        let mut has_fraction = false;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let digits = after_dot.len() - after_dot.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            let (frac_part, after) = after_dot.split_at(digits);
            has_fraction = !frac_part.is_empty();
            let mut overflow = false;
            for digit in frac_part.bytes() {
                if overflow {
                    continue;
                }
                match fraction
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u64::from(digit - b'0')))
                {
                    Some(v) if v <= LIMIT => {
                        fraction = v;
                        scale *= 10.0;
                    }
                    _ => overflow = true,
                }
            }
            rest = after;
        }
        if int_part.is_empty() && !has_fraction {
            return Err(invalid());
        }
        let unit_len = rest.len()
            - rest
                .trim_start_matches(|c: char| c != '.' && !c.is_ascii_digit())
                .len();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {text:?}"));
        }
        let (unit_text, after) = rest.split_at(unit_len);
        rest = after;
        let unit: u64 = match unit_text {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {unit_text:?} in duration {text:?}")),
        };
        if whole > LIMIT / unit {
            return Err(invalid());
        }
        let mut value = whole * unit;
        if fraction > 0 {
            // As Go: float arithmetic, truncated.
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let extra = (fraction as f64 * (unit as f64 / scale)) as u64;
            value = value
                .checked_add(extra)
                .filter(|v| *v <= LIMIT)
                .ok_or_else(invalid)?;
        }
        total = total
            .checked_add(value)
            .filter(|v| *v <= LIMIT)
            .ok_or_else(invalid)?;
    }
    if negative {
        return Ok(0i64.wrapping_sub_unsigned(total));
    }
    i64::try_from(total).map_err(|_| invalid())
}
