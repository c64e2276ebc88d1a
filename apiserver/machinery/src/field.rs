//! Field errors, as k8s.io/apimachinery/pkg/util/validation/field reports them: a path
//! (`spec.containers[0].name`), an error type, the bad value and a detail. Their text is
//! what clients see in 422 `Invalid` responses, so it follows upstream's format exactly.

use std::fmt;

use serde_json::Value;

/// A path to a field: `spec.containers[0].ports[1].containerPort`, `metadata.labels[app]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Path {
    rendered: String,
}

impl Path {
    /// The root field `name`.
    pub fn new(name: &str) -> Path {
        Path {
            rendered: name.to_owned(),
        }
    }

    /// The empty path (for errors about the whole object).
    pub fn root() -> Path {
        Path::default()
    }

    /// A child field.
    pub fn child(&self, name: &str) -> Path {
        if self.rendered.is_empty() {
            return Path::new(name);
        }
        Path {
            rendered: format!("{}.{name}", self.rendered),
        }
    }

    /// A list element.
    pub fn index(&self, index: usize) -> Path {
        Path {
            rendered: format!("{}[{index}]", self.rendered),
        }
    }

    /// A map entry.
    pub fn key(&self, key: &str) -> Path {
        Path {
            rendered: format!("{}[{key}]", self.rendered),
        }
    }

    /// The rendered path.
    pub fn as_str(&self) -> &str {
        &self.rendered
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rendered)
    }
}

/// The kinds of field error, with the `StatusCause` reason each one becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// `FieldValueNotFound`.
    NotFound,
    /// `FieldValueRequired`.
    Required,
    /// `FieldValueDuplicate`.
    Duplicate,
    /// `FieldValueInvalid`.
    Invalid,
    /// `FieldValueNotSupported`.
    NotSupported,
    /// `FieldValueForbidden`.
    Forbidden,
    /// `FieldValueTooLong`.
    TooLong,
    /// `FieldValueTooMany`.
    TooMany,
    /// `InternalError`.
    Internal,
    /// `FieldValueTypeInvalid`.
    TypeInvalid,
}

impl ErrorType {
    /// The `StatusCause.reason` of this type.
    pub fn cause_type(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Internal => "InternalError",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    fn label(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid | ErrorType::TypeInvalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Internal => "Internal error",
        }
    }
}

/// The offending value of a field error.
#[derive(Clone, Debug, PartialEq)]
pub enum BadValue {
    /// Not shown.
    Omitted,
    /// A string, shown quoted.
    Str(String),
    /// A number or boolean, shown as is.
    Plain(String),
    /// Anything else, shown as JSON.
    Json(Value),
}

impl From<&str> for BadValue {
    fn from(value: &str) -> Self {
        BadValue::Str(value.to_owned())
    }
}

impl From<String> for BadValue {
    fn from(value: String) -> Self {
        BadValue::Str(value)
    }
}

impl From<&String> for BadValue {
    fn from(value: &String) -> Self {
        BadValue::Str(value.clone())
    }
}

macro_rules! plain_bad_value {
    ($($t:ty),*) => {$(
        impl From<$t> for BadValue {
            fn from(value: $t) -> Self {
                BadValue::Plain(value.to_string())
            }
        }
    )*};
}

plain_bad_value!(i32, i64, u32, u64, usize, f64, bool);

impl From<Value> for BadValue {
    fn from(value: Value) -> Self {
        match value {
            Value::String(s) => BadValue::Str(s),
            Value::Bool(b) => BadValue::Plain(b.to_string()),
            Value::Number(n) => BadValue::Plain(n.to_string()),
            other => BadValue::Json(other),
        }
    }
}

/// A bad value rendered as JSON (for lists, maps and structs).
pub fn json_value(value: &impl serde::Serialize) -> BadValue {
    BadValue::Json(serde_json::to_value(value).unwrap_or(Value::Null))
}

/// One validation error.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// What is wrong.
    pub error_type: ErrorType,
    /// The field's path.
    pub field: String,
    /// The offending value.
    pub bad_value: BadValue,
    /// More detail.
    pub detail: String,
}

impl FieldError {
    fn new(error_type: ErrorType, field: &Path, bad_value: BadValue, detail: impl Into<String>) -> Self {
        FieldError {
            error_type,
            field: field.to_string(),
            bad_value,
            detail: detail.into(),
        }
    }

    /// A required field is missing.
    pub fn required(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, BadValue::Str(String::new()), detail)
    }

    /// A value is invalid.
    pub fn invalid(field: &Path, value: impl Into<BadValue>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, field, value.into(), detail)
    }

    /// A value has the wrong type.
    pub fn type_invalid(field: &Path, value: impl Into<BadValue>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::TypeInvalid, field, value.into(), detail)
    }

    /// A value is not one of `valid`.
    pub fn not_supported(field: &Path, value: impl Into<BadValue>, valid: &[&str]) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| format!("{v:?}")).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, field, value.into(), detail)
    }

    /// A value is not allowed here.
    pub fn forbidden(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, field, BadValue::Str(String::new()), detail)
    }

    /// A value appears twice.
    pub fn duplicate(field: &Path, value: impl Into<BadValue>) -> Self {
        Self::new(ErrorType::Duplicate, field, value.into(), "")
    }

    /// A referenced value does not exist.
    pub fn not_found(field: &Path, value: impl Into<BadValue>) -> Self {
        Self::new(ErrorType::NotFound, field, value.into(), "")
    }

    /// A value is longer than `max` bytes.
    pub fn too_long(field: &Path, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        Self::new(
            ErrorType::TooLong,
            field,
            BadValue::Str("<value omitted>".into()),
            format!("may not be more than {max} {unit}"),
        )
    }

    /// A list has more than `max` items.
    pub fn too_many(field: &Path, actual: Option<usize>, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        let value = actual.map_or(BadValue::Omitted, BadValue::from);
        Self::new(
            ErrorType::TooMany,
            field,
            value,
            format!("must have at most {max} {unit}"),
        )
    }

    /// Something went wrong inside validation.
    pub fn internal(field: &Path, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Internal, field, BadValue::Json(Value::Null), detail)
    }

    /// The error without its field path (`StatusCause.message`).
    pub fn body(&self) -> String {
        let mut body = match self.error_type {
            ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong | ErrorType::Internal => {
                self.error_type.label().to_owned()
            }
            _ => match &self.bad_value {
                BadValue::Omitted => self.error_type.label().to_owned(),
                BadValue::Str(s) => format!("{}: {}", self.error_type.label(), go_quote(s)),
                BadValue::Plain(p) => format!("{}: {p}", self.error_type.label()),
                BadValue::Json(v) => format!("{}: {v}", self.error_type.label()),
            },
        };
        if !self.detail.is_empty() {
            body.push_str(": ");
            body.push_str(&self.detail);
        }
        body
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// A list of field errors.
pub type ErrorList = Vec<FieldError>;

/// Go's `strconv.Quote` (what `%q` prints): printable characters as they are, the C escapes,
/// `\xNN` for other ASCII controls, `\uNNNN` and `\UNNNNNNNN` for other unprintable ones.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
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
            c if go_is_print(c) => out.push(c),
            c if u32::from(c) < 0x80 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if u32::from(c) < 0x10000 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII
/// space (approximated: no controls, no other spaces, no format or private-use characters).
pub fn go_is_print(c: char) -> bool {
    c == ' '
        || !(c.is_control()
            || c.is_whitespace()
            || matches!(
                c,
                '\u{AD}'
                    | '\u{600}'..='\u{605}'
                    | '\u{61C}'
                    | '\u{6DD}'
                    | '\u{70F}'
                    | '\u{180E}'
                    | '\u{200B}'..='\u{200F}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{2060}'..='\u{2064}'
                    | '\u{2066}'..='\u{206F}'
                    | '\u{E000}'..='\u{F8FF}'
                    | '\u{FEFF}'
                    | '\u{FFF9}'..='\u{FFFB}'
                    | '\u{F0000}'..='\u{10FFFF}'
            ))
}

/// Upstream's aggregate rendering of an error list: one message as is, several in brackets,
/// duplicates dropped.
pub fn aggregate(errors: &[FieldError]) -> String {
    let mut messages: Vec<String> = Vec::new();
    for error in errors {
        let message = error.to_string();
        if !messages.contains(&message) {
            messages.push(message);
        }
    }
    match messages.len() {
        1 => messages.remove(0),
        _ => format!("[{}]", messages.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_upstream() {
        let containers = Path::new("spec").child("containers").index(0);
        assert_eq!(
            FieldError::required(&containers.child("name"), "").to_string(),
            "spec.containers[0].name: Required value"
        );
        assert_eq!(
            FieldError::invalid(&Path::new("metadata").child("name"), "Foo", "must be lowercase").to_string(),
            "metadata.name: Invalid value: \"Foo\": must be lowercase"
        );
        assert_eq!(
            FieldError::not_supported(
                &Path::new("spec").child("restartPolicy"),
                "Sometimes",
                &["Always", "Never"]
            )
            .to_string(),
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"Never\""
        );
        assert_eq!(
            FieldError::invalid(
                &containers.child("ports").index(0).child("containerPort"),
                70000,
                "must be between 1 and 65535, inclusive"
            )
            .body(),
            "Invalid value: 70000: must be between 1 and 65535, inclusive"
        );
        assert_eq!(
            FieldError::too_long(&Path::new("metadata").child("annotations"), 262144).body(),
            "Too long: may not be more than 262144 bytes"
        );
        assert_eq!(
            FieldError::too_many(&Path::new("x"), Some(3), 1).body(),
            "Too many: 3: must have at most 1 item"
        );
        assert_eq!(
            Path::new("metadata").child("labels").key("app").to_string(),
            "metadata.labels[app]"
        );
        assert_eq!(
            FieldError::required(&Path::new("spec"), "")
                .error_type
                .cause_type(),
            "FieldValueRequired"
        );
    }

    #[test]
    fn aggregates_like_upstream() {
        let a = FieldError::required(&Path::new("a"), "");
        let b = FieldError::required(&Path::new("b"), "");
        assert_eq!(aggregate(std::slice::from_ref(&a)), "a: Required value");
        assert_eq!(
            aggregate(&[a.clone(), b, a]),
            "[a: Required value, b: Required value]"
        );
    }
}
