//! Cell formatting shared by the printers: field access on JSON objects, upstream's
//! `duration.HumanDuration` and `translateTimestampSince`, label sets and selectors as
//! `k8s.io/apimachinery/pkg/labels` prints them, canonical quantities and container lists.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

static NULL: Value = Value::Null;

/// The value at `path` (`Null` when any step is missing).
pub(crate) fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    let mut current = value;
    for key in path {
        match current.get(key) {
            Some(next) => current = next,
            None => return &NULL,
        }
    }
    current
}

/// The string at `path` (empty when absent or not a string).
pub(crate) fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    at(value, path).as_str().unwrap_or("")
}

/// The string at `path`, when present.
pub(crate) fn opt_str<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).as_str()
}

/// The integer at `path` (0 when absent).
pub(crate) fn int_at(value: &Value, path: &[&str]) -> i64 {
    int_of(at(value, path)).unwrap_or(0)
}

/// An integer value (floats with an integral value count, as Go's decoder accepts them).
pub(crate) fn int_of(value: &Value) -> Option<i64> {
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i64)
    })
}

/// The boolean at `path`, when present.
pub(crate) fn opt_bool(value: &Value, path: &[&str]) -> Option<bool> {
    at(value, path).as_bool()
}

/// The array at `path` (empty when absent).
pub(crate) fn arr_at<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path).as_array().map_or(&[], Vec::as_slice)
}

/// The object at `path`, when present.
pub(crate) fn map_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    at(value, path).as_object()
}

/// Whether the field at `path` is present and not null.
pub(crate) fn present(value: &Value, path: &[&str]) -> bool {
    !at(value, path).is_null()
}

/// `metadata.name`.
pub(crate) fn name(object: &Value) -> &str {
    str_at(object, &["metadata", "name"])
}

/// A string cell.
pub(crate) fn cell(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

/// Microseconds in a second.
const MICROS: i64 = 1_000_000;

/// The Unix time of an RFC 3339 timestamp in microseconds (the precision of `MicroTime`);
/// Go's zero time counts as absent.
pub(crate) fn parse_time(text: &str) -> Option<i64> {
    /// `0001-01-01T00:00:00Z`, Go's zero `time.Time`.
    const GO_ZERO_TIME: i64 = -62_135_596_800;
    let timestamp: jiff::Timestamp = text.trim().parse().ok()?;
    if timestamp.as_second() == GO_ZERO_TIME && timestamp.subsec_nanosecond() == 0 {
        return None;
    }
    Some(timestamp.as_microsecond())
}

/// The time at `path` in Unix microseconds.
pub(crate) fn time_at(value: &Value, path: &[&str]) -> Option<i64> {
    opt_str(value, path).and_then(parse_time)
}

/// Upstream's `duration.HumanDuration` of a duration in seconds.
pub fn human_duration(seconds: i64) -> String {
    human_duration_micros(seconds.saturating_mul(MICROS))
}

/// Upstream's `duration.HumanDuration` of a duration in microseconds (Go's integer divisions
/// truncate toward zero, as Rust's do).
pub(crate) fn human_duration_micros(d: i64) -> String {
    let seconds = d / MICROS;
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The duration between two times in microseconds.
pub(crate) fn human_duration_between(start: i64, end: i64) -> String {
    human_duration_micros(end.saturating_sub(start))
}

/// Upstream's `translateTimestampSince` (`now` in Unix seconds): `<unknown>` for an absent
/// timestamp.
pub(crate) fn since(timestamp: Option<i64>, now: i64) -> String {
    match timestamp {
        Some(t) => human_duration_between(t, now.saturating_mul(MICROS)),
        None => "<unknown>".to_owned(),
    }
}

/// The AGE cell of an object: the time since `metadata.creationTimestamp`.
pub(crate) fn age(object: &Value, now: i64) -> Value {
    cell(since(time_at(object, &["metadata", "creationTimestamp"]), now))
}

/// The whole Unix second of a time in microseconds.
pub(crate) fn whole_second(micros: i64) -> i64 {
    micros.div_euclid(MICROS)
}

/// `labels.Set.String()`: `k=v` pairs, sorted, comma-separated.
pub(crate) fn label_set(labels: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// `labels.FormatLabels`: the label set, or `<none>`.
pub(crate) fn format_labels(labels: Option<&Map<String, Value>>) -> String {
    let text = label_set(labels);
    if text.is_empty() {
        "<none>".to_owned()
    } else {
        text
    }
}

/// A selector as `metav1.LabelSelectorAsSelector(...).String()` prints it; `None` when the
/// selector does not convert (unknown operator, missing or extra values). An absent selector
/// (`labels.Nothing()`) and an empty one (`labels.Everything()`) both print as "".
pub(crate) fn label_selector(selector: &Value) -> Option<String> {
    let Some(map) = selector.as_object() else {
        return Some(String::new());
    };
    let mut requirements: Vec<(String, String)> = Vec::new();
    for (key, value) in map
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        requirements.push((key.clone(), format!("{key}={}", value.as_str().unwrap_or(""))));
    }
    for expression in map
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = str_at(expression, &["key"]);
        let mut values: Vec<&str> = arr_at(expression, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let text = match str_at(expression, &["operator"]) {
            operator @ ("In" | "NotIn") => {
                if values.is_empty() {
                    return None;
                }
                values.sort_unstable();
                let word = if operator == "In" { "in" } else { "notin" };
                format!("{key} {word} ({})", values.join(","))
            }
            "Exists" if values.is_empty() => key.to_owned(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return None,
        };
        requirements.push((key.to_owned(), text));
    }
    // `internalSelector.Add` sorts the requirements by key.
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Some(
        requirements
            .into_iter()
            .map(|(_, text)| text)
            .collect::<Vec<_>>()
            .join(","),
    )
}

/// `metav1.FormatLabelSelector`: the selector, `<none>` when empty, `<error>` when invalid.
pub(crate) fn format_label_selector(selector: &Value) -> String {
    match label_selector(selector) {
        None => "<error>".to_owned(),
        Some(text) if text.is_empty() => "<none>".to_owned(),
        Some(text) => text,
    }
}

/// The gogo-protobuf `String()` of a `metav1.LabelSelector`, which a few printers print.
pub(crate) fn go_label_selector_string(selector: &Value) -> String {
    let mut expressions = String::from("[]LabelSelectorRequirement{");
    for expression in arr_at(selector, &["matchExpressions"]) {
        let values: Vec<&str> = arr_at(expression, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        expressions.push_str(&format!(
            "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
            str_at(expression, &["key"]),
            str_at(expression, &["operator"]),
            values.join(" ")
        ));
    }
    expressions.push('}');
    let mut labels: Vec<(&String, &str)> = map_at(selector, &["matchLabels"])
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    labels.sort();
    let mut map = String::from("map[string]string{");
    for (key, value) in labels {
        map.push_str(&format!("{key}: {value},"));
    }
    map.push('}');
    format!("&LabelSelector{{MatchLabels:{map},MatchExpressions:{expressions},}}")
}

/// A quantity as `resource.Quantity.String()` prints it (canonical form); "0" when absent.
pub(crate) fn quantity(value: &Value) -> String {
    match value {
        Value::String(text) => {
            crate::validation::canonical_quantity_string(text).unwrap_or_else(|_| text.clone())
        }
        Value::Number(number) => crate::validation::canonical_quantity_string(&number.to_string())
            .unwrap_or_else(|_| number.to_string()),
        _ => "0".to_owned(),
    }
}

/// An int-or-string as `intstr.IntOrString.String()` prints it.
pub(crate) fn int_or_string(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => int_of(other).unwrap_or(0).to_string(),
    }
}

/// `layoutContainerCells`: container names and images, comma-separated.
pub(crate) fn containers(list: &[Value]) -> (String, String) {
    let names: Vec<&str> = list.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = list.iter().map(|c| str_at(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// `sets.NewString(...).List()` joined: sorted, without duplicates.
pub(crate) fn sorted_set<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(",")
}

/// `listWithMoreString`: up to `max` items, then ` + N more...`; `<unset>` when empty.
pub(crate) fn list_with_more(items: &[String], max: usize) -> String {
    let shown = items.iter().take(max).cloned().collect::<Vec<_>>().join(",");
    if items.len() > max {
        return format!("{shown} + {} more...", items.len() - max);
    }
    if shown.is_empty() {
        "<unset>".to_owned()
    } else {
        shown
    }
}

/// `printBoolPtr`: `True`, `False` or `<unset>`.
pub(crate) fn bool_ptr(value: Option<bool>) -> String {
    match value {
        Some(true) => "True".to_owned(),
        Some(false) => "False".to_owned(),
        None => "<unset>".to_owned(),
    }
}

/// A load balancer status (`status.loadBalancer`) as the service and ingress printers show
/// it: the IPs or host names, sorted and unique (never clipped: the server prints wide).
pub(crate) fn load_balancer_ingress(status: &Value) -> String {
    sorted_set(arr_at(status, &["ingress"]).iter().filter_map(|ingress| {
        let ip = str_at(ingress, &["ip"]);
        let hostname = str_at(ingress, &["hostname"]);
        if !ip.is_empty() {
            Some(ip)
        } else if !hostname.is_empty() {
            Some(hostname)
        } else {
            None
        }
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn human_durations_like_upstream() {
        // k8s.io/apimachinery/pkg/util/duration TestHumanDuration and
        // TestHumanDurationBoundaries (a nanosecond there is a microsecond here).
        const S: i64 = 1_000_000;
        const MS: i64 = 1_000;
        const M: i64 = 60 * S;
        const H: i64 = 60 * M;
        const D: i64 = 24 * H;
        const Y: i64 = 365 * D;
        let cases = [
            (S, "1s"),
            (70 * S, "70s"),
            (190 * S, "3m10s"),
            (70 * M, "70m"),
            (47 * H, "47h"),
            (49 * H, "2d1h"),
            ((8 * 24 + 2) * H, "8d"),
            (367 * D, "367d"),
            (2 * Y + 25 * H, "2y1d"),
            (8 * Y + 2 * H, "8y"),
            (-2 * S, "<invalid>"),
            (-2 * S + 1, "0s"),
            (0, "0s"),
            (S - MS, "0s"),
            (2 * M - MS, "119s"),
            (2 * M, "2m"),
            (2 * M + S, "2m1s"),
            (10 * M - MS, "9m59s"),
            (10 * M, "10m"),
            (10 * M + S, "10m"),
            (3 * H - MS, "179m"),
            (3 * H, "3h"),
            (3 * H + M, "3h1m"),
            (8 * H - MS, "7h59m"),
            (8 * H, "8h"),
            (8 * H + 59 * M, "8h"),
            (2 * D - MS, "47h"),
            (2 * D, "2d"),
            (2 * D + H, "2d1h"),
            (8 * D - MS, "7d23h"),
            (8 * D, "8d"),
            (8 * D + 23 * H, "8d"),
            (2 * Y - MS, "729d"),
            (2 * Y, "2y"),
            (2 * Y + 23 * H, "2y"),
            (2 * Y + 23 * H + 59 * M, "2y"),
            (2 * Y + D - MS, "2y"),
            (2 * Y + D, "2y1d"),
            (3 * Y, "3y"),
            (7 * Y, "7y"),
            (8 * Y - MS, "7y364d"),
            (8 * Y, "8y"),
            (8 * Y + 364 * D, "8y"),
            (9 * Y, "9y"),
        ];
        for (micros, expected) in cases {
            assert_eq!(human_duration_micros(micros), expected, "{micros}us");
        }
        assert_eq!(human_duration(300), "5m");
    }

    #[test]
    fn selectors_print_like_apimachinery() {
        let selector = json!({
            "matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [
                {"key": "c", "operator": "In", "values": ["y", "x"]},
                {"key": "aa", "operator": "DoesNotExist"},
                {"key": "d", "operator": "Exists"},
                {"key": "e", "operator": "NotIn", "values": ["z"]},
            ],
        });
        assert_eq!(
            format_label_selector(&selector),
            "a=1,!aa,b=2,c in (x,y),d,e notin (z)"
        );
        assert_eq!(format_label_selector(&json!({})), "<none>");
        assert_eq!(format_label_selector(&Value::Null), "<none>");
        assert_eq!(
            format_label_selector(&json!({"matchExpressions": [{"key": "a", "operator": "Bad"}]})),
            "<error>"
        );
        assert_eq!(format_labels(json!({"b": "2", "a": "1"}).as_object()), "a=1,b=2");
        assert_eq!(format_labels(None), "<none>");
    }

    #[test]
    fn timestamps_and_quantities() {
        assert_eq!(parse_time("1970-01-01T00:01:00Z"), Some(60_000_000));
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(
            parse_time("2020-01-01T00:00:00.123456Z"),
            Some(1_577_836_800_123_456)
        );
        assert_eq!(
            since(parse_time("2020-01-01T00:00:00.5Z"), 1_577_836_800 + 180),
            "2m59s"
        );
        assert_eq!(quantity(&json!("1000m")), "1");
        assert_eq!(quantity(&json!("1024Mi")), "1Gi");
        assert_eq!(quantity(&Value::Null), "0");
    }
}
