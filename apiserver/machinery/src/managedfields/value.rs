//! Values as structured-merge-diff sees them (sigs.k8s.io/structured-merge-diff/v6/value):
//! its total order and equality over JSON values (numbers before strings before booleans
//! before lists before maps before null; integers and floats compare numerically), the
//! human-readable form used in field paths (`value.ToString`, Go's `%v` and `%q`), and the
//! JSON writer of json-iterator's standard-library-compatible configuration that
//! structured-merge-diff uses to serialize FieldsV1 (HTML-safe strings, sorted map keys,
//! `strconv` float formatting).

use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

/// A number as structured-merge-diff holds it: Go `int64` or `float64`.
#[derive(Clone, Copy, Debug)]
enum Num {
    Int(i64),
    Float(f64),
}

fn num(n: &Number) -> Num {
    match n.as_i64() {
        Some(i) if !n.is_f64() => Num::Int(i),
        _ => Num::Float(n.as_f64().unwrap_or(0.0)),
    }
}

fn float_compare(l: f64, r: f64) -> Ordering {
    l.partial_cmp(&r).unwrap_or(Ordering::Equal)
}

/// Rank of a value's kind in structured-merge-diff's order.
fn rank(v: &Value) -> u8 {
    match v {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

/// `value.Compare`: the total order of values.
pub fn compare(lhs: &Value, rhs: &Value) -> Ordering {
    match (lhs, rhs) {
        (Value::Number(l), Value::Number(r)) => match (num(l), num(r)) {
            (Num::Int(a), Num::Int(b)) => a.cmp(&b),
            (Num::Int(a), Num::Float(b)) => float_compare(a as f64, b),
            (Num::Float(a), Num::Int(b)) => float_compare(a, b as f64),
            (Num::Float(a), Num::Float(b)) => float_compare(a, b),
        },
        (Value::String(l), Value::String(r)) => l.as_bytes().cmp(r.as_bytes()),
        (Value::Bool(l), Value::Bool(r)) => l.cmp(r),
        (Value::Array(l), Value::Array(r)) => {
            for (a, b) in l.iter().zip(r.iter()) {
                let c = compare(a, b);
                if c != Ordering::Equal {
                    return c;
                }
            }
            l.len().cmp(&r.len())
        }
        (Value::Object(l), Value::Object(r)) => map_compare(l, r),
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => rank(lhs).cmp(&rank(rhs)),
    }
}

/// `value.MapCompare`, including its peculiar handling of maps of different sizes: keys are
/// visited in lexical order, and the first key past the end of either map decides.
fn map_compare(lhs: &Map<String, Value>, rhs: &Map<String, Value>) -> Ordering {
    let (llen, rlen) = (lhs.len(), rhs.len());
    if llen == 0 && rlen == 0 {
        return Ordering::Equal;
    }
    let mut keys: Vec<&String> = lhs.keys().chain(rhs.keys()).collect();
    keys.sort();
    keys.dedup();
    for (i, key) in keys.into_iter().enumerate() {
        let c = if i == llen {
            Ordering::Less
        } else if i == rlen {
            Ordering::Greater
        } else {
            match (lhs.get(key), rhs.get(key)) {
                (None, _) => Ordering::Greater,
                (_, None) => Ordering::Less,
                (Some(l), Some(r)) => compare(l, r),
            }
        };
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

/// `value.Equals`: integers and floats are equal when numerically equal.
pub fn equals(lhs: &Value, rhs: &Value) -> bool {
    match (lhs, rhs) {
        (Value::Number(l), Value::Number(r)) => match (num(l), num(r)) {
            (Num::Int(a), Num::Int(b)) => a == b,
            (Num::Int(a), Num::Float(b)) | (Num::Float(b), Num::Int(a)) => a as f64 == b,
            (Num::Float(a), Num::Float(b)) => a == b,
        },
        (Value::String(l), Value::String(r)) => l == r,
        (Value::Bool(l), Value::Bool(r)) => l == r,
        (Value::Array(l), Value::Array(r)) => {
            l.len() == r.len() && l.iter().zip(r).all(|(a, b)| equals(a, b))
        }
        (Value::Object(l), Value::Object(r)) => {
            l.len() == r.len() && l.iter().all(|(k, v)| r.get(k).is_some_and(|o| equals(v, o)))
        }
        (Value::Null, Value::Null) => true,
        _ => false,
    }
}

/// Whether a value is a scalar (number, string or boolean).
pub fn is_scalar(v: &Value) -> bool {
    matches!(v, Value::Number(_) | Value::String(_) | Value::Bool(_))
}

/// `value.ToString`: how values appear in field paths (`[name="a"]`, `[=80]`).
pub fn to_smd_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Number(n) => match num(n) {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => go_format_float_v(f),
        },
        Value::String(s) => go_quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(to_smd_string).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", to_smd_string(v)))
            .collect(),
    }
}

/// Go's `%v` of a `float64` (`strconv.FormatFloat(f, 'g', -1, 64)`).
pub fn go_format_float_v(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".to_string()
        } else {
            "0".to_string()
        };
    }
    // Shortest digits and decimal exponent, from Rust's shortest round-trip formatting.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    // With the shortest precision, 'g' uses the exponent form when the exponent is below -4
    // or at least 6.
    if !(-4..6).contains(&exp) {
        return go_exponent(mantissa, exp);
    }
    format!("{f}")
}

fn go_exponent(mantissa: &str, exp: i32) -> String {
    let sign = if exp < 0 { '-' } else { '+' };
    let abs = exp.unsigned_abs();
    if abs < 10 {
        format!("{mantissa}e{sign}0{abs}")
    } else {
        format!("{mantissa}e{sign}{abs}")
    }
}

/// Go's `strconv.Quote` (the `%q` verb) for strings.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint`: graphic characters and the ASCII space.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32, 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x200b..=0x200f | 0x202a..=0x202e
        | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff | 0xfff9..=0xfffb | 0xe000..=0xf8ff | 0xfffe | 0xffff)
}

/// Appends `s` as a JSON string the way json-iterator's `Stream.WriteString` does (no HTML
/// escaping, non-ASCII bytes as they are).
pub fn write_json_string(out: &mut String, s: &str) {
    write_string(out, s, false);
}

/// Appends `s` as a JSON string with HTML-safe escaping (`<`, `>`, `&`, U+2028, U+2029), as
/// json-iterator's standard-library-compatible encoder writes string values.
pub fn write_json_string_html(out: &mut String, s: &str) {
    write_string(out, s, true);
}

fn write_string(out: &mut String, s: &str, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u00{:02x}", c as u32)),
            '<' | '>' | '&' if html => out.push_str(&format!("\\u00{:02x}", c as u32)),
            '\u{2028}' if html => out.push_str("\\u2028"),
            '\u{2029}' if html => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a value as json-iterator's standard-library-compatible `WriteVal` writes it:
/// compact, map keys sorted, strings HTML-safe, floats in `strconv` 'f' form (or 'e' below
/// 1e-6 and from 1e21), integers as integers.
pub fn write_json_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match num(n) {
            Num::Int(i) => out.push_str(&i.to_string()),
            Num::Float(f) => out.push_str(&jsoniter_float(f)),
        },
        Value::String(s) => write_json_string_html(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string_html(out, key);
                out.push(':');
                if let Some(item) = map.get(key) {
                    write_json_value(out, item);
                }
            }
            out.push('}');
        }
    }
}

/// json-iterator's `WriteFloat64`: `strconv.AppendFloat(f, fmt, -1, 64)` with fmt 'e' when
/// |f| < 1e-6 or |f| >= 1e21, else 'f'.
fn jsoniter_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let sci = format!("{f:e}");
        let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
        return go_exponent(mantissa, exp.parse().unwrap_or(0));
    }
    if f == 0.0 && f.is_sign_negative() {
        return "-0".to_string();
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn order_of_kinds_and_numbers() {
        let ordered = [
            json!(-1.5),
            json!(1),
            json!(2.0),
            json!(3),
            json!("a"),
            json!("b"),
            json!(false),
        ];
        for pair in ordered.windows(2) {
            assert_eq!(compare(&pair[0], &pair[1]), Ordering::Less, "{pair:?}");
        }
        assert_eq!(compare(&json!(true), &json!([])), Ordering::Less);
        assert_eq!(compare(&json!([1]), &json!({})), Ordering::Less);
        assert_eq!(compare(&json!({}), &json!(null)), Ordering::Less);
        assert_eq!(compare(&json!(80), &json!(80.0)), Ordering::Equal);
        assert!(equals(&json!(80), &json!(80.0)));
        assert!(!equals(&json!(80), &json!("80")));
        assert!(equals(&json!({"a": [1, 2]}), &json!({"a": [1.0, 2]})));
    }

    #[test]
    fn go_formatting() {
        let cases = [
            (1234567.0, "1.234567e+06"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e20, "1e+20"),
            (1e21, "1e+21"),
            (0.5, "0.5"),
            (-3.0, "-3"),
            (100000.0, "100000"),
            (80.0, "80"),
        ];
        for (f, want) in cases {
            assert_eq!(go_format_float_v(f), want, "{f}");
        }
        assert_eq!(go_quote("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(to_smd_string(&json!("x")), "\"x\"");
        assert_eq!(to_smd_string(&json!(80.0)), "80");
    }

    #[test]
    fn jsoniter_writer() {
        let mut out = String::new();
        write_json_value(
            &mut out,
            &json!({"b": 1, "a": "<&>", "c": [1.5, 1e21, 1e-7, 80.0]}),
        );
        assert_eq!(
            out,
            r#"{"a":"\u003c\u0026\u003e","b":1,"c":[1.5,1e+21,1e-07,80]}"#
        );
    }
}
