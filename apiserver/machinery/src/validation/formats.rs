//! String formats, as k8s.io/apimachinery/pkg/util/validation and pkg/api/validate/content
//! check them: DNS labels and subdomains, qualified names (label keys), label values, port
//! numbers and names, environment variable names, ConfigMap keys, and the message builders
//! (`regex_error`, `max_len_error`, ...) whose text clients see.
//!
//! Every `is_*` function returns the list of problems (empty when the value is valid); the
//! messages are byte-identical to upstream's, including the regex quoted in them. Upstream has
//! two `MaxLenError`s: util/validation's says "characters", validate/content's says "bytes";
//! each check here uses the one its upstream counterpart uses.

use crate::field::{ErrorList, FieldError, Path};

/// Maximum length of a DNS (RFC 1123) label.
pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
/// Maximum length of a DNS (RFC 1123) subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
/// Maximum length of a DNS (RFC 1035) label.
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
/// Maximum length of a label value.
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
/// Maximum length of the name part of a qualified name (label key).
pub const QUALIFIED_NAME_MAX_LENGTH: usize = 63;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_UNDERSCORE_FMT: &str =
    "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_UNDERSCORE_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const WILDCARD_DNS1123_SUBDOMAIN_FMT: &str =
    "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const WILDCARD_DNS1123_SUBDOMAIN_ERR_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character";
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const C_IDENTIFIER_FMT: &str = "[A-Za-z_][A-Za-z0-9_]*";
const C_IDENTIFIER_ERR_MSG: &str = "a valid C identifier must start with alphabetic character or '_', followed by a string of alphanumeric characters or '_'";
const PERCENT_FMT: &str = "[0-9]+%";
const PERCENT_ERR_MSG: &str = "a valid percent string must be a numeric string followed by an ending '%'";
const HTTP_HEADER_NAME_FMT: &str = "[-A-Za-z0-9]+";
const HTTP_HEADER_NAME_ERR_MSG: &str = "a valid HTTP header must consist of alphanumeric characters or '-'";
const ENV_VAR_NAME_FMT: &str = "[-._a-zA-Z][-._a-zA-Z0-9]*";
const ENV_VAR_NAME_ERR_MSG: &str = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit";
const RELAXED_ENV_VAR_NAME_ERR_MSG: &str =
    "a valid environment variable name must consist only of printable ASCII characters other than '='";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_ERR_MSG: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const HTTP_PATH_FMT: &str = "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+";

/// util/validation's "string too long" message: `must be no more than N characters`.
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// validate/content's "string too long" message: `must be no more than N bytes`.
pub fn max_len_error_bytes(length: usize) -> String {
    format!("must be no more than {length} bytes")
}

/// Explanation of a regex mismatch, with examples:
/// `msg (e.g. 'my-name',  or '123-abc', regex used for validation is '...')`.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(example);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(fmt);
    out.push_str("')");
    out
}

/// `must be non-empty`.
pub fn empty_error() -> String {
    "must be non-empty".to_owned()
}

/// `must be between LO and HI, inclusive`.
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// `must be greater than or equal to MIN`.
pub fn min_error(min: i64) -> String {
    format!("must be greater than or equal to {min}")
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, or with `first` deciding the first byte.
fn matches_label(value: &str, first: fn(u8) -> bool, middle: fn(u8) -> bool) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&f), Some(&l)) => first(f) && is_lower_alnum(l) && bytes[1..].iter().all(|&b| middle(b)),
        _ => false,
    }
}

fn is_dns1123_label_char(b: u8) -> bool {
    is_lower_alnum(b) || b == b'-'
}

fn matches_dns1123_label(value: &str) -> bool {
    matches_label(value, is_lower_alnum, is_dns1123_label_char)
}

fn matches_dns1123_subdomain(value: &str) -> bool {
    value.split('.').all(matches_dns1123_label)
}

fn matches_dns1123_label_with_underscore(value: &str) -> bool {
    let rest = value.strip_prefix('_').unwrap_or(value);
    matches_label(rest, is_lower_alnum, |b| is_dns1123_label_char(b) || b == b'_')
}

fn matches_dns1123_subdomain_with_underscore(value: &str) -> bool {
    value.split('.').all(matches_dns1123_label_with_underscore)
}

fn matches_dns1035_label(value: &str) -> bool {
    matches_label(value, |b| b.is_ascii_lowercase(), is_dns1123_label_char)
}

fn is_label_key_middle(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn matches_label_key_name(value: &str) -> bool {
    let bytes = value.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && bytes.iter().all(|&b| is_label_key_middle(b))
        }
        _ => false,
    }
}

/// Tests for a string that conforms to the definition of a label in DNS (RFC 1123).
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Tests for a string that conforms to the definition of a subdomain in DNS (RFC 1123).
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    dns1123_subdomain(value, max_len_error)
}

/// validate/content's variant of [`is_dns1123_subdomain`] (its length message says bytes).
fn content_dns1123_subdomain(value: &str) -> Vec<String> {
    dns1123_subdomain(value, max_len_error_bytes)
}

fn dns1123_subdomain(value: &str, max_len: fn(usize) -> String) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Like [`is_dns1123_subdomain`], but labels may start with and contain underscores.
pub fn is_dns1123_subdomain_with_underscore(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain_with_underscore(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_UNDERSCORE_ERR_MSG,
            DNS1123_SUBDOMAIN_UNDERSCORE_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Tests for a string that conforms to the definition of a label in DNS (RFC 1035).
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Tests for a wildcard subdomain (`*.example.com`, RFC 1034 section 4.3.3).
pub fn is_wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let ok = value.strip_prefix("*.").is_some_and(matches_dns1123_subdomain);
    if !ok {
        errs.push(regex_error(
            WILDCARD_DNS1123_SUBDOMAIN_ERR_MSG,
            WILDCARD_DNS1123_SUBDOMAIN_FMT,
            &["*.example.com"],
        ));
    }
    errs
}

/// Tests whether the value is a "qualified name" (a label key): an optional DNS subdomain
/// prefix and `/`, then a name of at most 63 characters.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                for msg in content_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    LABEL_KEY_ERR_MSG,
                    LABEL_KEY_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error_bytes(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_label_key_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                LABEL_KEY_ERR_MSG,
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Tests whether the value is a valid label value (empty, or a name of at most 63 bytes).
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error_bytes(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !matches_label_key_name(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Tests for a C identifier (format only, not length).
pub fn is_c_identifier(value: &str) -> Vec<String> {
    let bytes = value.as_bytes();
    let ok = bytes
        .first()
        .is_some_and(|&b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        return Vec::new();
    }
    vec![regex_error(
        C_IDENTIFIER_ERR_MSG,
        C_IDENTIFIER_FMT,
        &["my_name", "MY_NAME", "MyName"],
    )]
}

/// Tests that the argument is a valid, non-zero port number.
pub fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        return Vec::new();
    }
    vec![inclusive_range_error(1, 65535)]
}

/// Tests that the argument is in an inclusive range.
pub fn is_in_range(value: i64, min: i64, max: i64) -> Vec<String> {
    if value >= min && value <= max {
        return Vec::new();
    }
    vec![inclusive_range_error(min, max)]
}

/// Tests that the argument is a valid Unix GID.
pub fn is_valid_group_id(gid: i64) -> Vec<String> {
    is_in_range(gid, 0, i64::from(i32::MAX))
}

/// Tests that the argument is a valid Unix UID.
pub fn is_valid_user_id(uid: i64) -> Vec<String> {
    is_in_range(uid, 0, i64::from(i32::MAX))
}

/// Tests an IANA service name: at most 15 characters of `[-a-z0-9]`, at least one letter, no
/// leading, trailing or doubled hyphen.
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    if port.is_empty() || !port.bytes().all(is_dns1123_label_char) {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_owned());
    }
    if !port.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_owned());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_owned());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_owned());
    }
    errs
}

/// Tests that the string is a percentage (`[0-9]+%`).
pub fn is_valid_percent(percent: &str) -> Vec<String> {
    let ok = percent
        .strip_suffix('%')
        .is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        return Vec::new();
    }
    vec![regex_error(PERCENT_ERR_MSG, PERCENT_FMT, &["1%", "93%"])]
}

/// Tests an HTTP header name as Go's HTTP library accepts it.
pub fn is_http_header_name(value: &str) -> Vec<String> {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Vec::new();
    }
    vec![regex_error(
        HTTP_HEADER_NAME_ERR_MSG,
        HTTP_HEADER_NAME_FMT,
        &["X-Header-Name"],
    )]
}

fn has_ch_dir_prefix(value: &str) -> Vec<String> {
    if value == "." {
        vec!["must not be '.'".to_owned()]
    } else if value == ".." {
        vec!["must not be '..'".to_owned()]
    } else if value.starts_with("..") {
        vec!["must not start with '..'".to_owned()]
    } else {
        Vec::new()
    }
}

/// Tests an environment variable name (the strict form).
pub fn is_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let is_char = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_';
    let ok = value
        .as_bytes()
        .first()
        .is_some_and(|b| !b.is_ascii_digit() && is_char(*b))
        && value.bytes().all(is_char);
    if !ok {
        errs.push(regex_error(
            ENV_VAR_NAME_ERR_MSG,
            ENV_VAR_NAME_FMT,
            &["my.env-name", "MY_ENV.NAME", "MyEnvName1"],
        ));
    }
    errs.extend(has_ch_dir_prefix(value));
    errs
}

/// Tests an environment variable name (the relaxed form: printable ASCII except `=`).
pub fn is_relaxed_env_var_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.is_empty() {
        errs.push(format!("environment variable name {}", empty_error()));
    }
    if value.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
        errs.push(RELAXED_ENV_VAR_NAME_ERR_MSG.to_owned());
    }
    errs
}

/// Tests a key of a ConfigMap or Secret.
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if !ok {
        errs.push(regex_error(
            CONFIG_MAP_KEY_ERR_MSG,
            CONFIG_MAP_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    errs.extend(has_ch_dir_prefix(value));
    errs
}

/// Checks a fully qualified name: a DNS subdomain with at least three segments, no trailing
/// dot.
pub fn is_fully_qualified_name(path: &Path, name: &str) -> ErrorList {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let errs = is_dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![FieldError::invalid(path, name, errs.join(","))];
    }
    if name.split('.').count() < 3 {
        return vec![FieldError::invalid(
            path,
            name,
            "should be a domain with at least three segments separated by dots",
        )];
    }
    Vec::new()
}

/// Checks a fully qualified domain name: at least two segments, a trailing dot allowed.
pub fn is_fully_qualified_domain_name(path: &Path, name: &str) -> ErrorList {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let errs = is_dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![FieldError::invalid(path, name, errs.join(","))];
    }
    if name.split('.').count() < 2 {
        return vec![FieldError::invalid(
            path,
            name,
            "should be a domain with at least two segments separated by dots",
        )];
    }
    for label in name.split('.') {
        let errs = is_dns1123_label(label);
        if !errs.is_empty() {
            return vec![FieldError::invalid(path, label, errs.join(","))];
        }
    }
    Vec::new()
}

/// Checks a domain-prefixed path (`acme.io/foo`).
pub fn is_domain_prefixed_path(path: &Path, dp_path: &str) -> ErrorList {
    if dp_path.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let Some((host, rest)) = dp_path
        .split_once('/')
        .filter(|(h, r)| !h.is_empty() && !r.is_empty())
    else {
        return vec![FieldError::invalid(
            path,
            dp_path,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        )];
    };
    let mut errs: ErrorList = is_dns1123_subdomain(host)
        .into_iter()
        .map(|msg| FieldError::invalid(path, host, msg))
        .collect();
    let path_ok = rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&b));
    if !path_ok {
        errs.push(FieldError::invalid(
            path,
            rest,
            regex_error("Invalid path", HTTP_PATH_FMT, &[]),
        ));
    }
    errs
}

/// Checks a domain-prefixed key (`acme.io/foo`): a qualified name with a prefix.
pub fn is_domain_prefixed_key(path: &Path, key: &str) -> ErrorList {
    if key.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let errs: ErrorList = is_qualified_name(key)
        .into_iter()
        .map(|msg| FieldError::invalid(path, key, msg))
        .collect();
    if !errs.is_empty() {
        return errs;
    }
    if key.split('/').count() != 2 {
        return vec![FieldError::invalid(
            path,
            key,
            "must be a domain-prefixed key (such as \"acme.io/foo\")",
        )];
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    const KEY_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    fn check(f: fn(&str) -> Vec<String>, cases: &[(&str, &[&str])]) {
        for (value, expected) in cases {
            assert_eq!(f(value), expected.to_vec(), "value {value:?}");
        }
    }

    #[test]
    fn regex_error_has_upstreams_odd_spacing() {
        assert_eq!(
            regex_error("msg", "re", &["a", "b"]),
            "msg (e.g. 'a',  or 'b', regex used for validation is 're')"
        );
        assert_eq!(
            regex_error("msg", "re", &[]),
            "msg (regex used for validation is 're')"
        );
    }

    #[test]
    fn dns_labels_and_subdomains() {
        let long_label = "a".repeat(64);
        check(
            is_dns1123_label,
            &[
                ("a", &[]),
                ("my-name", &[]),
                ("123-abc", &[]),
                ("0", &[]),
                ("", &[LABEL_MSG]),
                ("-a", &[LABEL_MSG]),
                ("a-", &[LABEL_MSG]),
                ("A", &[LABEL_MSG]),
                ("a_b", &[LABEL_MSG]),
                ("a.b", &["must not contain dots"]),
                (&long_label, &["must be no more than 63 characters"]),
            ],
        );
        let long_sub = format!("{}.{}", "a".repeat(200), "b".repeat(60));
        check(
            is_dns1123_subdomain,
            &[
                ("example.com", &[]),
                ("a", &[]),
                ("a..b", &[SUBDOMAIN_MSG]),
                (".a", &[SUBDOMAIN_MSG]),
                ("a.", &[SUBDOMAIN_MSG]),
                ("Example.com", &[SUBDOMAIN_MSG]),
                ("", &[SUBDOMAIN_MSG]),
                (&long_sub, &["must be no more than 253 characters"]),
            ],
        );
        check(
            is_dns1035_label,
            &[
                ("abc-123", &[]),
                ("1abc", &[DNS1035_MSG]),
                ("a.b", &[DNS1035_MSG]),
            ],
        );
        check(
            is_dns1123_subdomain_with_underscore,
            &[("_tcp.example.com", &[]), ("a_b.c", &[])],
        );
        assert_eq!(is_dns1123_subdomain_with_underscore("a_").len(), 1);
        assert!(is_wildcard_dns1123_subdomain("*.example.com").is_empty());
        assert_eq!(is_wildcard_dns1123_subdomain("*.*.example.com").len(), 1);
    }

    #[test]
    fn qualified_names_and_label_values() {
        let long = "a".repeat(64);
        let long_prefixed = format!("example.com/{long}");
        check(
            is_qualified_name,
            &[
                ("app", &[]),
                ("app.kubernetes.io/name", &[]),
                ("MyName", &[]),
                (
                    "a/b/c",
                    &[
                        "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                    ],
                ),
                ("/a", &["prefix part must be non-empty"]),
                ("a/", &["name part must be non-empty", KEY_NAME_MSG]),
                ("", &["name part must be non-empty", KEY_NAME_MSG]),
                ("Ex.com/a", &[&format!("prefix part {SUBDOMAIN_MSG}")]),
                (&long_prefixed, &["name part must be no more than 63 bytes"]),
                ("-a", &[KEY_NAME_MSG]),
            ],
        );
        check(
            is_valid_label_value,
            &[
                ("", &[]),
                ("v1.2_3-x", &[]),
                ("-x", &[VALUE_MSG]),
                (&long, &["must be no more than 63 bytes"]),
            ],
        );
    }

    #[test]
    fn ports_keys_and_names() {
        assert!(is_valid_port_num(1).is_empty());
        assert_eq!(is_valid_port_num(0), ["must be between 1 and 65535, inclusive"]);
        assert_eq!(is_valid_port_num(65536).len(), 1);
        check(
            is_valid_port_name,
            &[
                ("http", &[]),
                ("h-2", &[]),
                (
                    "",
                    &[
                        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                        "must contain at least one letter (a-z)",
                    ],
                ),
                ("123", &["must contain at least one letter (a-z)"]),
                ("a--b", &["must not contain consecutive hyphens"]),
                ("-ab", &["must not begin or end with a hyphen"]),
                ("abcdefghijklmnop", &["must be no more than 15 characters"]),
                (
                    "HTTP",
                    &[
                        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                        "must contain at least one letter (a-z)",
                    ],
                ),
            ],
        );
        check(
            is_config_map_key,
            &[
                ("key.name", &[]),
                ("..a", &["must not start with '..'"]),
                (".", &["must not be '.'"]),
                (
                    "a b",
                    &[
                        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                    ],
                ),
            ],
        );
        check(is_env_var_name, &[("MY_VAR", &[]), ("my.env-name", &[])]);
        assert_eq!(is_env_var_name("1A").len(), 1);
        assert!(is_relaxed_env_var_name("1 A:").is_empty());
        assert_eq!(is_relaxed_env_var_name("A=B").len(), 1);
        check(is_c_identifier, &[("my_name", &[]), ("_x1", &[])]);
        assert_eq!(is_c_identifier("1x").len(), 1);
        check(is_valid_percent, &[("10%", &[])]);
        assert_eq!(is_valid_percent("%").len(), 1);
        check(is_http_header_name, &[("X-Header-Name", &[])]);
        assert_eq!(is_http_header_name("X_H").len(), 1);
    }

    #[test]
    fn domain_prefixed_names() {
        let p = Path::new("x");
        assert!(is_domain_prefixed_path(&p, "acme.io/foo").is_empty());
        assert_eq!(
            is_domain_prefixed_path(&p, "foo")[0].to_string(),
            "x: Invalid value: \"foo\": must be a domain-prefixed path (such as \"acme.io/foo\")"
        );
        assert!(is_domain_prefixed_key(&p, "acme.io/foo").is_empty());
        assert_eq!(is_domain_prefixed_key(&p, "foo").len(), 1);
        assert!(is_fully_qualified_name(&p, "a.b.c").is_empty());
        assert_eq!(is_fully_qualified_name(&p, "a.b").len(), 1);
        assert!(is_fully_qualified_domain_name(&p, "a.b.").is_empty());
    }
}
