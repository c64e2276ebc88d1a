//! The string formats a CRD schema's `format` may name, as apiextensions-apiserver supports
//! them: formats outside upstream's list are ignored (stripped before validation), the others
//! are checked as kube-openapi's `strfmt.Default` registry checks them.
//!
//! Pure string predicates; nothing here knows schemas or field errors.

use regex::Regex;
use std::sync::OnceLock;

use crate::validation::{parse_cidr_sloppy, parse_ip_sloppy};

/// The normalized name (dashes removed, as go-openapi normalizes) of a format upstream
/// validates, or `None` for a format it strips (`int32`, `int64`, `float`, `double`, unknown).
pub fn supported(format: &str) -> Option<String> {
    const SUPPORTED: &[&str] = &[
        "bsonobjectid",
        "uri",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "cidr",
        "mac",
        "uuid",
        "uuid3",
        "uuid4",
        "uuid5",
        "isbn",
        "isbn10",
        "isbn13",
        "creditcard",
        "ssn",
        "hexcolor",
        "rgbcolor",
        "byte",
        "password",
        "date",
        "duration",
        "datetime",
        "k8sshortname",
        "k8slongname",
    ];
    let normalized = format.replace('-', "");
    SUPPORTED.contains(&normalized.as_str()).then_some(normalized)
}

fn regex(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
}

fn matches(cell: &'static OnceLock<Option<Regex>>, pattern: &str, value: &str) -> bool {
    regex(cell, pattern).is_some_and(|re| re.is_match(value))
}

/// Whether `value` is valid for the (normalized, supported) format `format`.
pub fn validates(format: &str, value: &str) -> bool {
    static UUID: OnceLock<Option<Regex>> = OnceLock::new();
    static UUID3: OnceLock<Option<Regex>> = OnceLock::new();
    static UUID4: OnceLock<Option<Regex>> = OnceLock::new();
    static UUID5: OnceLock<Option<Regex>> = OnceLock::new();
    static HOSTNAME: OnceLock<Option<Regex>> = OnceLock::new();
    static SHORT: OnceLock<Option<Regex>> = OnceLock::new();
    static LONG: OnceLock<Option<Regex>> = OnceLock::new();
    static SSN: OnceLock<Option<Regex>> = OnceLock::new();
    static HEX: OnceLock<Option<Regex>> = OnceLock::new();
    static RGB: OnceLock<Option<Regex>> = OnceLock::new();
    static BSON: OnceLock<Option<Regex>> = OnceLock::new();
    static MAC: OnceLock<Option<Regex>> = OnceLock::new();
    match format {
        "uuid" => matches(
            &UUID,
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
            value,
        ),
        "uuid3" => matches(
            &UUID3,
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}$",
            value,
        ),
        "uuid4" => matches(
            &UUID4,
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
            value,
        ),
        "uuid5" => matches(
            &UUID5,
            r"(?i)^[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}$",
            value,
        ),
        "hostname" => {
            matches(
                &HOSTNAME,
                r"^([a-zA-Z0-9\p{S}\p{L}]((-?[a-zA-Z0-9\p{S}\p{L}]{0,62})?)|([a-zA-Z0-9\p{S}\p{L}](([a-zA-Z0-9-\p{S}\p{L}]{0,61}[a-zA-Z0-9\p{S}\p{L}])?)(\.)){1,}([a-zA-Z\p{L}]){2,63})$",
                value,
            ) && value.len() <= 255
                && value.split('.').all(|part| part.len() <= 63)
        }
        "k8sshortname" => value.len() <= 63 && matches(&SHORT, r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", value),
        "k8slongname" => {
            value.len() <= 253
                && matches(
                    &LONG,
                    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                    value,
                )
        }
        "date" => is_date(value),
        "datetime" => is_date_time(value),
        "duration" => is_duration(value),
        "byte" => is_base64(value),
        "password" => true,
        "ipv4" => parse_ip_sloppy(value).is_some() && value.contains('.'),
        "ipv6" => parse_ip_sloppy(value).is_some() && value.contains(':'),
        "cidr" => parse_cidr_sloppy(value).is_some(),
        "mac" => matches(
            &MAC,
            r"^(?:[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){5}|[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){7}|[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){19}|[0-9a-fA-F]{4}(?:\.[0-9a-fA-F]{4}){2}|[0-9a-fA-F]{4}(?:\.[0-9a-fA-F]{4}){3}|[0-9a-fA-F]{4}(?:\.[0-9a-fA-F]{4}){9})$",
            value,
        ),
        "bsonobjectid" => matches(&BSON, r"^[0-9a-fA-F]{24}$", value),
        "ssn" => matches(&SSN, r"^\d{3}[- ]?\d{2}[- ]?\d{4}$", value),
        "hexcolor" => matches(&HEX, r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$", value),
        "rgbcolor" => matches(
            &RGB,
            r"^rgb\(\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*,\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*\)$",
            value,
        ),
        "email" => is_email(value),
        "uri" => is_request_uri(value),
        "isbn" => is_isbn10(value) || is_isbn13(value),
        "isbn10" => is_isbn10(value),
        "isbn13" => is_isbn13(value),
        "creditcard" => is_credit_card(value),
        _ => false,
    }
}

/// Go's `time.Parse("2006-01-02", s)`: four-digit year, two-digit month and day, a real date.
pub fn is_date(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = value.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())
            .flatten()
    };
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    if !(1..=12).contains(&month) || day == 0 {
        return false;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    day <= days
}

/// strfmt's `IsDateTime`: a date, a `T` (any case), then `hh:mm:ss[.frac](Z|±hh:mm)`.
pub fn is_date_time(value: &str) -> bool {
    static TIME: OnceLock<Option<Regex>> = OnceLock::new();
    if value.len() < 4 {
        return false;
    }
    let lower = value.to_lowercase();
    let parts: Vec<&str> = lower.split('t').collect();
    if parts.len() < 2 || !is_date(parts[0]) {
        return false;
    }
    let Some(re) = regex(
        &TIME,
        r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))$",
    ) else {
        return false;
    };
    // Go's pattern is anchored with `^` on the second part.
    let Some(caps) = re.captures(parts[1]) else {
        return false;
    };
    if caps.get(0).map(|m| m.start()) != Some(0) {
        return false;
    }
    let field = |i: usize| caps.get(i).map_or("", |m| m.as_str());
    field(1) <= "23" && field(2) <= "59" && field(3) <= "59"
}

/// strfmt's `ParseDuration` succeeds: Go's `time.ParseDuration`, or numbers followed by
/// unit words (`3 days`, `1 hour`).
pub fn is_duration(value: &str) -> bool {
    static WORDS: OnceLock<Option<Regex>> = OnceLock::new();
    if is_go_duration(value) {
        return true;
    }
    let Some(re) = regex(&WORDS, r"((\d+)\s*([A-Za-zµ]+))") else {
        return false;
    };
    const UNITS: &[&[&str]] = &[
        &["ns", "nano"],
        &["us", "µs", "micro"],
        &["ms", "milli"],
        &["s", "sec"],
        &["m", "min"],
        &["h", "hr", "hour"],
        &["d", "day"],
        &["w", "wk", "week"],
    ];
    re.captures_iter(value).any(|caps| {
        let unit = caps.get(3).map_or("", |m| m.as_str()).trim().to_lowercase();
        UNITS.iter().any(|variants| {
            let last = variants.len() - 1;
            variants.iter().enumerate().any(|(i, variant)| {
                (i == last && unit.starts_with(variant)) || unit.eq_ignore_ascii_case(variant)
            })
        })
    })
}

/// Go's `time.ParseDuration` accepts `value`.
pub fn is_go_duration(value: &str) -> bool {
    let mut rest = value;
    if let Some(stripped) = rest.strip_prefix(['-', '+']) {
        rest = stripped;
    }
    if rest == "0" {
        return true;
    }
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let mut consumed = int_len;
        let mut frac_len = 0;
        if rest.as_bytes().get(consumed) == Some(&b'.') {
            consumed += 1;
            frac_len = rest[consumed..].bytes().take_while(u8::is_ascii_digit).count();
            consumed += frac_len;
        }
        if int_len == 0 && frac_len == 0 {
            return false;
        }
        rest = &rest[consumed..];
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        if !matches!(unit, "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h") {
            return false;
        }
        rest = &rest[unit_len..];
    }
    true
}

/// govalidator's `IsBase64`: standard alphabet with padding, length a multiple of four.
pub fn is_base64(value: &str) -> bool {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(value).is_ok() && value.len().is_multiple_of(4)
}

/// Go's `mail.ParseAddress` accepts `value` with a non-empty address (the common forms:
/// `local@domain` and `Name <local@domain>`).
pub fn is_email(value: &str) -> bool {
    let value = value.trim();
    let address = match (value.rfind('<'), value.strip_suffix('>')) {
        (Some(open), Some(inner)) => &inner[open + 1..],
        _ => value,
    };
    let Some((local, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let atext = |c: char| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let dot_atom = |s: &str| !s.is_empty() && s.split('.').all(|p| !p.is_empty() && p.chars().all(atext));
    let local_ok = dot_atom(local) || (local.len() >= 2 && local.starts_with('"') && local.ends_with('"'));
    let domain_ok = dot_atom(domain) || (domain.starts_with('[') && domain.ends_with(']'));
    local_ok && domain_ok
}

/// govalidator's `IsRequestURI` (Go's `url.ParseRequestURI`): an absolute URI with a scheme,
/// or an absolute path.
pub fn is_request_uri(value: &str) -> bool {
    if value.is_empty() || value.contains(|c: char| c.is_ascii_control() || c == ' ') {
        return false;
    }
    if value.starts_with('/') {
        return true;
    }
    let Some((scheme, _)) = value.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn isbn_digits(value: &str) -> String {
    value.chars().filter(|c| *c != '-' && *c != ' ').collect()
}

/// govalidator's `IsISBN10`.
pub fn is_isbn10(value: &str) -> bool {
    let digits: Vec<char> = isbn_digits(value).chars().collect();
    if digits.len() != 10
        || !digits[..9].iter().all(char::is_ascii_digit)
        || !(digits[9].is_ascii_digit() || digits[9] == 'X')
    {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let v = if *c == 'X' {
                10
            } else {
                c.to_digit(10).unwrap_or(0)
            };
            (i as u32 + 1) * v
        })
        .sum();
    sum.is_multiple_of(11)
}

/// govalidator's `IsISBN13`.
pub fn is_isbn13(value: &str) -> bool {
    let digits: Vec<u32> = isbn_digits(value)
        .chars()
        .filter_map(|c| c.to_digit(10))
        .collect();
    if digits.len() != 13 || isbn_digits(value).len() != 13 {
        return false;
    }
    let sum: u32 = digits[..12]
        .iter()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { *d } else { d * 3 })
        .sum();
    (10 - sum % 10) % 10 == digits[12]
}

/// govalidator's `IsCreditCard`: the known card patterns (non-digits ignored) and the Luhn
/// checksum.
pub fn is_credit_card(value: &str) -> bool {
    static CARD: OnceLock<Option<Regex>> = OnceLock::new();
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    if !matches(
        &CARD,
        r"^(?:4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]|2720)[0-9]{12}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])[0-9]{11}|(?:2131|1800|35\d{3})\d{11}|6[27][0-9]{14})$",
        &digits,
    ) {
        return false;
    }
    let mut sum = 0;
    let mut double = false;
    for c in digits.chars().rev() {
        let mut d = c.to_digit(10).unwrap_or(0);
        if double {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
        double = !double;
    }
    sum % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_formats_upstream_does_not_validate() {
        assert_eq!(supported("date-time").as_deref(), Some("datetime"));
        assert_eq!(supported("int32"), None);
        assert_eq!(supported("int64"), None);
        assert_eq!(supported("double"), None);
        assert_eq!(supported("k8s-short-name").as_deref(), Some("k8sshortname"));
    }

    #[test]
    fn validates_like_strfmt() {
        let cases: &[(&str, &str, bool)] = &[
            ("date", "2006-01-02", true),
            ("date", "2006-02-30", false),
            ("date", "2006-1-02", false),
            ("datetime", "2014-12-15T19:30:20.000Z", true),
            ("datetime", "2014-12-15t19:30:20+01:00", true),
            ("datetime", "2014-12-15T25:30:20Z", false),
            ("datetime", "2014-12-15", false),
            ("uuid", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", true),
            ("uuid", "6BA7B8109DAD11D180B400C04FD430C8", true),
            ("uuid", "not-a-uuid", false),
            ("byte", "aGVsbG8=", true),
            ("byte", "aGVsbG8", false),
            ("ipv4", "10.0.0.1", true),
            ("ipv4", "::1", false),
            ("ipv6", "::1", true),
            ("cidr", "10.0.0.0/8", true),
            ("cidr", "10.0.0.0", false),
            ("hostname", "example.com", true),
            ("hostname", "-bad", false),
            ("k8sshortname", "my-name", true),
            ("k8sshortname", "My-name", false),
            ("k8slongname", "a.b-c.d", true),
            ("duration", "1h30m", true),
            ("duration", "3 days", true),
            ("duration", "soon", false),
            ("email", "user@example.com", true),
            ("email", "no-at-sign", false),
            ("uri", "https://example.com/x", true),
            ("uri", "relative/path", false),
            ("mac", "00:1a:2b:3c:4d:5e", true),
            ("hexcolor", "#fff", true),
            ("isbn10", "0321751043", true),
            ("isbn13", "978-0321751041", true),
            ("creditcard", "4111 1111 1111 1111", true),
            ("creditcard", "4111 1111 1111 1112", false),
            ("ssn", "123-45-6789", true),
            ("bsonobjectid", "507f1f77bcf86cd799439011", true),
            ("password", "anything", true),
        ];
        for (format, value, valid) in cases {
            assert_eq!(validates(format, value), *valid, "{format} {value}");
        }
    }
}
