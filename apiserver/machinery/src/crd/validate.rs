//! Validation of a custom resource against its structural schema, as apiextensions-apiserver
//! runs kube-openapi's schema validator (with CRD validation ratcheting on updates) and turns
//! its results into field errors; plus the checks of embedded resources
//! (`x-kubernetes-embedded-resource`) and of `x-kubernetes-list-type` sets and maps.
//!
//! Pure: reads the schema and the objects only. CEL rules are not evaluated here.

use std::cell::RefCell;
use std::collections::HashMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use regex::Regex;
use serde_json::{Map, Value};

use super::formats;
use crate::field::{BadValue, ErrorType, FieldError, Path, go_quote};
use crate::validation::{
    is_dns1035_label, parse_group_version, validate_object_meta_accessor, validate_path_segment_name,
};

/// The kube-openapi error codes apiextensions maps to field error types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Code {
    InvalidType,
    Required,
    TooLong,
    MaxItems,
    TooManyProperties,
    Enum,
    Other,
}

/// One kube-openapi error.
#[derive(Clone, Debug)]
enum OpenApiError {
    /// An `errors.Validation`: a path (`name`), a value and a message.
    Validation {
        code: Code,
        name: String,
        value: BadValue,
        /// The limit (`Valid`) of length and count errors.
        limit: i64,
        /// The actual count (`Value`) of count errors.
        actual: i64,
        /// The allowed values of an enum error.
        values: Vec<Value>,
        message: String,
    },
    /// Any other error (anyOf, oneOf, allOf, not): reported at the root with its message.
    Other(String),
}

impl OpenApiError {
    fn message(&self) -> &str {
        match self {
            OpenApiError::Validation { message, .. } | OpenApiError::Other(message) => message,
        }
    }

    fn simple(code: Code, name: &str, value: BadValue, message: String) -> OpenApiError {
        OpenApiError::Validation {
            code,
            name: name.to_owned(),
            value,
            limit: -1,
            actual: -1,
            values: Vec::new(),
            message,
        }
    }

    /// apiextensions' `kubeOpenAPIResultToFieldErrors` for one error.
    fn into_field_error(self, root: &Path) -> FieldError {
        match self {
            OpenApiError::Validation {
                code,
                name,
                value,
                limit,
                actual,
                values,
                message,
            } => {
                let path = if name.is_empty() || name == "." {
                    root.clone()
                } else {
                    root.child(name.strip_prefix('.').unwrap_or(&name))
                };
                match code {
                    Code::Required => FieldError::required(&path, ""),
                    Code::Enum => {
                        let quoted: Vec<String> = values
                            .iter()
                            .map(|v| match v {
                                Value::String(s) => go_quote(s),
                                other => go_quote(&other.to_string()),
                            })
                            .collect();
                        let detail = if quoted.is_empty() {
                            String::new()
                        } else {
                            format!("supported values: {}", quoted.join(", "))
                        };
                        FieldError {
                            error_type: ErrorType::NotSupported,
                            field: path.to_string(),
                            bad_value: value,
                            detail,
                        }
                    }
                    Code::TooLong => FieldError {
                        error_type: ErrorType::TooLong,
                        field: path.to_string(),
                        bad_value: BadValue::Str("<value omitted>".into()),
                        detail: too_long_detail(limit),
                    },
                    Code::MaxItems | Code::TooManyProperties => FieldError {
                        error_type: ErrorType::TooMany,
                        field: path.to_string(),
                        bad_value: if actual >= 0 {
                            BadValue::Plain(actual.to_string())
                        } else {
                            BadValue::Omitted
                        },
                        detail: too_many_detail(limit),
                    },
                    Code::InvalidType => FieldError::type_invalid(&path, value, message),
                    Code::Other => FieldError::invalid(&path, value, message),
                }
            }
            OpenApiError::Other(message) => FieldError {
                error_type: ErrorType::Invalid,
                // A nil *field.Path renders as "<nil>".
                field: if root.as_str().is_empty() {
                    "<nil>".to_owned()
                } else {
                    root.to_string()
                },
                bad_value: BadValue::Str(String::new()),
                detail: message,
            },
        }
    }
}

fn too_long_detail(max: i64) -> String {
    match max {
        1 => "may not be more than 1 byte".to_owned(),
        m if m >= 0 => format!("may not be more than {m} bytes"),
        _ => "value is too long".to_owned(),
    }
}

fn too_many_detail(max: i64) -> String {
    match max {
        1 => "must have at most 1 item".to_owned(),
        m if m >= 0 => format!("must have at most {m} items"),
        _ => "has too many items".to_owned(),
    }
}

/// A kube-openapi `Result`: errors (deduplicated by message), warnings and the match count
/// that `anyOf`/`oneOf` use to pick the best failing branch.
#[derive(Debug, Default)]
struct Outcome {
    errors: Vec<OpenApiError>,
    warnings: Vec<OpenApiError>,
    matches: u32,
}

impl Outcome {
    fn error(error: OpenApiError) -> Outcome {
        Outcome {
            errors: vec![error],
            ..Outcome::default()
        }
    }

    fn add_error(&mut self, error: OpenApiError) {
        if !self.errors.iter().any(|e| e.message() == error.message()) {
            self.errors.push(error);
        }
    }

    fn add_warning(&mut self, error: OpenApiError) {
        if !self.warnings.iter().any(|e| e.message() == error.message()) {
            self.warnings.push(error);
        }
    }

    fn merge(&mut self, other: Outcome) {
        for e in other.errors {
            self.add_error(e);
        }
        for w in other.warnings {
            self.add_warning(w);
        }
        self.matches += other.matches;
    }

    fn merge_as_warnings(&mut self, other: Outcome) {
        for e in other.errors.into_iter().chain(other.warnings) {
            self.add_warning(e);
        }
        self.matches += other.matches;
    }

    fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`).
pub fn go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let scientific = format!("{value:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else {
        return scientific;
    };
    let exponent: i32 = exponent.parse().unwrap_or(0);
    // strconv's shortest %g: exponent form when exp < -4 || exp >= 6.
    if !(-4..6).contains(&exponent) {
        return go_exponent(mantissa, exponent);
    }
    format!("{value}")
}

fn go_exponent(mantissa: &str, exponent: i32) -> String {
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// A JSON number as kube-openapi sees it after the decoder: `int64` when it fits, else
/// `float64`.
#[derive(Clone, Copy, Debug)]
enum Num {
    Int(i64),
    Float(f64),
}

fn num_of(value: &Value) -> Option<Num> {
    let Value::Number(n) = value else { return None };
    match n.as_i64() {
        Some(i) => Some(Num::Int(i)),
        None => n.as_f64().map(Num::Float),
    }
}

impl Num {
    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    fn render(self) -> String {
        match self {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => go_float(f),
        }
    }
}

/// The field error value of a datum: strings quoted, numbers and booleans as Go prints them,
/// the rest as JSON.
fn bad_value(value: &Value) -> BadValue {
    match value {
        Value::String(s) => BadValue::Str(s.clone()),
        Value::Bool(b) => BadValue::Plain(b.to_string()),
        Value::Number(_) => BadValue::Plain(num_of(value).map_or_else(String::new, Num::render)),
        Value::Null => BadValue::Str(String::new()),
        other => BadValue::Json(other.clone()),
    }
}

/// The field error value of a decoded JSON value, as upstream renders it.
pub fn bad_value_of(value: &Value) -> BadValue {
    match value {
        Value::Null => BadValue::Json(Value::Null),
        other => bad_value(other),
    }
}

/// The JSON-schema type name of a datum.
fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::String(_) => "string",
        Value::Number(_) => match num_of(value) {
            Some(Num::Int(_)) => "integer",
            _ => "number",
        },
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The types a schema allows (`x-kubernetes-int-or-string` is integer or string).
pub(crate) fn schema_types(schema: &JSONSchemaProps) -> Vec<&str> {
    if schema.x_kubernetes_int_or_string == Some(true) {
        return vec!["integer", "string"];
    }
    match schema.type_.as_deref() {
        Some(t) if !t.is_empty() => vec![t],
        _ => Vec::new(),
    }
}

/// The schema of a list's items, when it has one schema for all of them.
pub(crate) fn items_schema(schema: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match &schema.items {
        Some(JSONSchemaPropsOrArray::Schema(s)) => Some(s),
        _ => None,
    }
}

/// The schema of a map's values (`additionalProperties` with a schema).
pub(crate) fn additional_schema(schema: &JSONSchemaProps) -> Option<&JSONSchemaProps> {
    match &schema.additional_properties {
        Some(JSONSchemaPropsOrBool::Schema(s)) => Some(s),
        _ => None,
    }
}

/// kube-openapi's schema validator over one schema (and its ratcheting variant on updates).
struct Validator {
    regexes: RefCell<HashMap<String, Result<Regex, String>>>,
}

impl Validator {
    fn new() -> Validator {
        Validator {
            regexes: RefCell::new(HashMap::new()),
        }
    }

    /// `SchemaValidator.Validate` with ratcheting: errors of a value equal to its correlated
    /// old value become warnings.
    fn validate(&self, schema: &JSONSchemaProps, data: &Value, old: Option<&Value>, path: &str) -> Outcome {
        let outcome = self.validate_plain(schema, data, old, path);
        if !outcome.is_valid() && old == Some(data) {
            let mut ratcheted = Outcome::default();
            ratcheted.merge_as_warnings(outcome);
            return ratcheted;
        }
        outcome
    }

    fn validate_plain(
        &self,
        schema: &JSONSchemaProps,
        data: &Value,
        old: Option<&Value>,
        path: &str,
    ) -> Outcome {
        let mut result = Outcome::default();
        let types = schema_types(schema);
        // The format as written (messages name it so), if upstream validates it.
        let format = schema
            .format
            .as_deref()
            .filter(|f| formats::supported(f).is_some());
        let nullable = schema.nullable == Some(true);
        if data.is_null() {
            if let Some(r) = type_check(&types, nullable, format, data, path) {
                result.merge(r);
            }
            if let Some(r) = self.enum_check(schema, data, path) {
                result.merge(r);
            }
            return result;
        }
        // The validators in kube-openapi's order, each counted when it applies.
        if !types.is_empty() || format.is_some() {
            result.merge(
                type_check(&types, nullable, format, data, path).unwrap_or_else(|| Outcome {
                    matches: 1,
                    ..Outcome::default()
                }),
            );
            result.matches += 1;
        }
        result.merge(self.schema_props(schema, data, path));
        result.matches += 1;
        if let Value::String(s) = data {
            if let Some(r) = self.string_check(schema, s, path) {
                result.merge(r);
            }
            result.matches += 1;
            if let Some(f) = &format {
                if !formats::supported(f).is_some_and(|normalized| formats::validates(&normalized, s)) {
                    result.merge(Outcome::error(invalid_type(path, f, BadValue::Str(s.clone()))));
                }
                result.matches += 1;
            }
        }
        if let Some(n) = num_of(data) {
            result.merge(number_check(schema, n, path));
            result.matches += 1;
        }
        if let Value::Array(items) = data {
            result.merge(self.slice_check(schema, items, old, path));
            result.matches += 1;
        }
        if let Some(r) = self.enum_check(schema, data, path) {
            result.merge(r);
        }
        result.matches += 1;
        if let Value::Object(map) = data {
            result.merge(self.object_check(schema, map, old, path));
            result.matches += 1;
        }
        result.matches += 1;
        result
    }

    fn enum_check(&self, schema: &JSONSchemaProps, data: &Value, path: &str) -> Option<Outcome> {
        let values: Vec<Value> = schema.enum_.iter().flatten().map(|v| v.0.clone()).collect();
        if values.is_empty() || values.iter().any(|allowed| enum_matches(data, allowed)) {
            return None;
        }
        let message = format!(
            "{path} in body should be one of [{}]",
            values.iter().map(go_value).collect::<Vec<_>>().join(" ")
        );
        Some(Outcome::error(OpenApiError::Validation {
            code: Code::Enum,
            name: path.to_owned(),
            value: if data.is_null() {
                BadValue::Json(Value::Null)
            } else {
                bad_value(data)
            },
            limit: -1,
            actual: -1,
            values,
            message,
        }))
    }

    fn regex(&self, pattern: &str) -> Result<Regex, String> {
        if let Some(found) = self.regexes.borrow().get(pattern) {
            return found.clone();
        }
        let compiled = Regex::new(pattern).map_err(|e| e.to_string());
        self.regexes
            .borrow_mut()
            .insert(pattern.to_owned(), compiled.clone());
        compiled
    }

    fn string_check(&self, schema: &JSONSchemaProps, s: &str, path: &str) -> Option<Outcome> {
        let length = s.chars().count() as i64;
        if let Some(max) = schema.max_length
            && length > max
        {
            return Some(Outcome::error(OpenApiError::Validation {
                code: Code::TooLong,
                name: path.to_owned(),
                value: BadValue::Str(s.to_owned()),
                limit: max,
                actual: -1,
                values: Vec::new(),
                message: format!("{path} in body should be at most {max} chars long"),
            }));
        }
        if let Some(min) = schema.min_length
            && length < min
        {
            return Some(Outcome::error(OpenApiError::simple(
                Code::Other,
                path,
                BadValue::Str(s.to_owned()),
                format!("{path} in body should be at least {min} chars long"),
            )));
        }
        if let Some(pattern) = schema.pattern.as_deref().filter(|p| !p.is_empty()) {
            let failure = match self.regex(pattern) {
                Ok(re) if re.is_match(s) => None,
                Ok(_) => Some(pattern.to_owned()),
                Err(e) => Some(format!("{pattern}, but pattern is invalid: {e}")),
            };
            if let Some(shown) = failure {
                return Some(Outcome::error(OpenApiError::simple(
                    Code::Other,
                    path,
                    BadValue::Str(s.to_owned()),
                    format!("{path} in body should match '{shown}'"),
                )));
            }
        }
        None
    }

    fn slice_check(
        &self,
        schema: &JSONSchemaProps,
        items: &[Value],
        old: Option<&Value>,
        path: &str,
    ) -> Outcome {
        let mut result = Outcome::default();
        if let Some(item_schema) = items_schema(schema) {
            let old_items = old.and_then(Value::as_array);
            for (i, item) in items.iter().enumerate() {
                let old_item = old_items.and_then(|olds| correlate_item(schema, item, olds));
                result.merge(self.validate(item_schema, item, old_item, &format!("{path}[{i}]")));
            }
        }
        let size = items.len() as i64;
        if let Some(min) = schema.min_items
            && size < min
        {
            result.add_error(OpenApiError::simple(
                Code::Other,
                path,
                BadValue::Plain(size.to_string()),
                format!("{path} in body should have at least {min} items"),
            ));
        }
        if let Some(max) = schema.max_items
            && size > max
        {
            result.add_error(OpenApiError::Validation {
                code: Code::MaxItems,
                name: path.to_owned(),
                value: BadValue::Plain(size.to_string()),
                limit: max,
                actual: size,
                values: Vec::new(),
                message: format!("{path} in body should have at most {max} items"),
            });
        }
        if schema.unique_items == Some(true)
            && items
                .iter()
                .enumerate()
                .any(|(i, a)| items[..i].iter().any(|b| a == b))
        {
            result.add_error(OpenApiError::simple(
                Code::Other,
                path,
                BadValue::Str(String::new()),
                format!("{path} in body shouldn't contain duplicates"),
            ));
        }
        result.matches += 1;
        result
    }

    fn object_check(
        &self,
        schema: &JSONSchemaProps,
        map: &Map<String, Value>,
        old: Option<&Value>,
        path: &str,
    ) -> Outcome {
        let mut result = Outcome::default();
        let size = map.len() as i64;
        if let Some(min) = schema.min_properties
            && size < min
        {
            result.add_error(OpenApiError::simple(
                Code::Other,
                path,
                BadValue::Plain(size.to_string()),
                format!("{path} in body should have at least {min} properties"),
            ));
        }
        if let Some(max) = schema.max_properties
            && size > max
        {
            result.add_error(OpenApiError::Validation {
                code: Code::TooManyProperties,
                name: path.to_owned(),
                value: BadValue::Plain(size.to_string()),
                limit: max,
                actual: size,
                values: Vec::new(),
                message: format!("{path} in body should have at most {max} properties"),
            });
        }
        let properties = schema.properties.as_ref();
        let old_map = old.and_then(Value::as_object);
        let child_path = |key: &str| {
            if path.is_empty() {
                key.to_owned()
            } else {
                format!("{path}.{key}")
            }
        };
        match &schema.additional_properties {
            Some(JSONSchemaPropsOrBool::Bool(false)) => {
                for key in map.keys() {
                    if !properties.is_some_and(|p| p.contains_key(key)) {
                        result.add_error(OpenApiError::simple(
                            Code::Other,
                            path,
                            BadValue::Str(key.clone()),
                            format!("{path}.{key} in body is a forbidden property"),
                        ));
                    }
                }
            }
            Some(JSONSchemaPropsOrBool::Schema(additional)) => {
                for (key, value) in map {
                    if !properties.is_some_and(|p| p.contains_key(key)) {
                        let old_value = old_map.and_then(|m| m.get(key));
                        result.merge(self.validate(additional, value, old_value, &format!("{path}.{key}")));
                    }
                }
            }
            _ => {}
        }
        for (name, property) in properties.into_iter().flatten() {
            if let Some(value) = map.get(name) {
                let old_value = old_map.and_then(|m| m.get(name));
                result.merge(self.validate(property, value, old_value, &child_path(name)));
            }
        }
        for required in schema.required.iter().flatten() {
            if !map.contains_key(required) {
                let name = format!("{path}.{required}");
                let message = format!("{name} in body is required");
                result.add_error(OpenApiError::simple(
                    Code::Required,
                    &name,
                    BadValue::Str(String::new()),
                    message,
                ));
            }
        }
        result
    }

    /// allOf, anyOf, oneOf and not, as kube-openapi's `schemaPropsValidator`.
    fn schema_props(&self, schema: &JSONSchemaProps, data: &Value, path: &str) -> Outcome {
        let mut main = Outcome::default();
        if let Some(any_of) = schema.any_of.as_ref().filter(|v| !v.is_empty()) {
            let mut best: Option<Outcome> = None;
            let mut first_success: Option<Outcome> = None;
            for sub in any_of {
                let result = self.validate_plain(sub, data, None, path);
                if result.is_valid() {
                    best = None;
                    first_success = Some(result);
                    break;
                }
                if best.as_ref().is_none_or(|b| result.matches > b.matches) {
                    best = Some(result);
                }
            }
            if first_success.is_none() {
                main.add_error(OpenApiError::Other(format!(
                    "{} must validate at least one schema (anyOf)",
                    go_quote(path)
                )));
            }
            if let Some(b) = best {
                main.merge(b);
            } else if let Some(s) = first_success {
                main.merge(s);
            }
        }
        if let Some(one_of) = schema.one_of.as_ref().filter(|v| !v.is_empty()) {
            let mut best: Option<Outcome> = None;
            let mut first_success: Option<Outcome> = None;
            let mut validated = 0;
            for sub in one_of {
                let result = self.validate_plain(sub, data, None, path);
                if result.is_valid() {
                    validated += 1;
                    best = None;
                    if first_success.is_none() {
                        first_success = Some(result);
                    }
                    continue;
                }
                if validated == 0 && best.as_ref().is_none_or(|b| result.matches > b.matches) {
                    best = Some(result);
                }
            }
            if validated != 1 {
                let additional = if validated == 0 {
                    "Found none valid".to_owned()
                } else {
                    format!("Found {validated} valid alternatives")
                };
                main.add_error(OpenApiError::Other(format!(
                    "{} must validate one and only one schema (oneOf). {additional}",
                    go_quote(path)
                )));
                if let Some(b) = best {
                    main.merge(b);
                }
            } else if let Some(s) = first_success {
                main.merge(s);
            }
        }
        if let Some(all_of) = schema.all_of.as_ref().filter(|v| !v.is_empty()) {
            let mut validated = 0;
            for sub in all_of {
                let result = self.validate_plain(sub, data, None, path);
                if result.is_valid() {
                    validated += 1;
                }
                main.merge(result);
            }
            if validated != all_of.len() {
                let additional = if validated == 0 { ". None validated" } else { "" };
                main.add_error(OpenApiError::Other(format!(
                    "{} must validate all the schemas (allOf){additional}",
                    go_quote(path)
                )));
            }
        }
        if let Some(not) = &schema.not
            && self.validate_plain(not, data, None, path).is_valid()
        {
            main.add_error(OpenApiError::Other(format!(
                "{} must not validate the schema (not)",
                go_quote(path)
            )));
        }
        main.matches += 1;
        main
    }
}

/// The old element a new list element correlates with for ratcheting: only the elements of
/// `x-kubernetes-list-type: map` lists, by their keys.
fn correlate_item<'a>(schema: &JSONSchemaProps, item: &Value, olds: &'a [Value]) -> Option<&'a Value> {
    if schema.x_kubernetes_list_type.as_deref() != Some("map") {
        return None;
    }
    let keys = schema.x_kubernetes_list_map_keys.as_deref().unwrap_or_default();
    let key_of = |v: &Value| -> Option<Vec<Option<Value>>> {
        let object = v.as_object()?;
        Some(keys.iter().map(|k| object.get(k).cloned()).collect())
    };
    let wanted = key_of(item)?;
    olds.iter().find(|old| key_of(old).as_ref() == Some(&wanted))
}

fn invalid_type(path: &str, type_name: &str, value: BadValue) -> OpenApiError {
    let message = match &value {
        BadValue::Str(s) => format!("{path} in body must be of type {type_name}: {}", go_quote(s)),
        _ => format!("{path} in body must be of type {type_name}"),
    };
    OpenApiError::simple(Code::InvalidType, path, value, message)
}

/// kube-openapi's `typeValidator`; `None` when the value passes.
fn type_check(
    types: &[&str],
    nullable: bool,
    format: Option<&str>,
    data: &Value,
    path: &str,
) -> Option<Outcome> {
    if data.is_null() {
        if !types.is_empty() && !types.contains(&"null") && !nullable {
            return Some(Outcome::error(invalid_type(
                path,
                &types.join(","),
                BadValue::Str("null".into()),
            )));
        }
        return None;
    }
    let kind = type_of(data);
    // The Go format of the decoded value: int64 for integers, float64 for floats.
    let value_format = match kind {
        "integer" => "int64",
        "number" => "float64",
        _ => "",
    };
    let is_float_int = kind == "number"
        && num_of(data).is_some_and(|n| {
            let f = n.as_f64();
            f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0
        })
        && types.contains(&"integer");
    let is_int_float = kind == "integer" && types.contains(&"number");
    let stringish = matches!(kind, "string" | "array");
    if let Some(format) = format
        && !stringish
        && !(types.contains(&kind) || value_format == format || is_float_int || is_int_float)
    {
        return Some(Outcome::error(invalid_type(
            path,
            format,
            BadValue::Str(value_format.to_owned()),
        )));
    }
    if !(types.contains(&"number") || types.contains(&"integer")) && format.is_some() && stringish {
        return None;
    }
    if !(types.contains(&kind) || is_float_int || is_int_float) {
        return Some(Outcome::error(invalid_type(
            path,
            &types.join(","),
            BadValue::Str(kind.to_owned()),
        )));
    }
    None
}

/// kube-openapi's `numberValidator`: multipleOf, minimum, maximum (in that order).
fn number_check(schema: &JSONSchemaProps, n: Num, path: &str) -> Outcome {
    let mut result = Outcome::default();
    let value = BadValue::Plain(n.render());
    if let Some(factor) = schema.multiple_of {
        let failure = match n {
            Num::Int(i) => {
                let f = factor as i64;
                if f <= 0 {
                    Some(format!(
                        "factor MultipleOf declared for {path} must be positive: {f}"
                    ))
                } else if i % f != 0 {
                    Some(format!("{path} in body should be a multiple of {f}"))
                } else {
                    None
                }
            }
            Num::Float(x) => {
                if factor <= 0.0 {
                    Some(format!(
                        "factor MultipleOf declared for {path} must be positive: {}",
                        go_float(factor)
                    ))
                } else {
                    let mult = if factor < 1.0 {
                        1.0 / factor * x
                    } else {
                        x / factor
                    };
                    (mult.fract() != 0.0 || mult.is_infinite())
                        .then(|| format!("{path} in body should be a multiple of {}", go_float(factor)))
                }
            }
        };
        if let Some(message) = failure {
            result.add_error(OpenApiError::simple(Code::Other, path, value.clone(), message));
        }
    }
    if let Some(min) = schema.minimum {
        let exclusive = schema.exclusive_minimum == Some(true);
        let (below, shown) = match n {
            Num::Int(i) => {
                let m = min as i64;
                (if exclusive { i <= m } else { i < m }, m.to_string())
            }
            Num::Float(x) => (if exclusive { x <= min } else { x < min }, go_float(min)),
        };
        if below {
            let relation = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            result.add_error(OpenApiError::simple(
                Code::Other,
                path,
                value.clone(),
                format!("{path} in body should be {relation} {shown}"),
            ));
        }
    }
    if let Some(max) = schema.maximum {
        let exclusive = schema.exclusive_maximum == Some(true);
        let (above, shown) = match n {
            Num::Int(i) => {
                let m = max as i64;
                (if exclusive { i >= m } else { i > m }, m.to_string())
            }
            Num::Float(x) => (if exclusive { x >= max } else { x > max }, go_float(max)),
        };
        if above {
            let relation = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            result.add_error(OpenApiError::simple(
                Code::Other,
                path,
                value,
                format!("{path} in body should be {relation} {shown}"),
            ));
        }
    }
    result.matches += 1;
    result
}

/// kube-openapi's enum comparison: the datum converted to the enum value's Go type, then
/// deep equality (a float datum truncates to an integer enum value, as Go's conversion does).
fn enum_matches(data: &Value, allowed: &Value) -> bool {
    match (data, allowed) {
        (Value::Null, _) => false,
        (Value::Number(_), Value::Number(_)) => match (num_of(data), num_of(allowed)) {
            (Some(d), Some(Num::Int(a))) => match d {
                Num::Int(i) => i == a,
                Num::Float(f) => f as i64 == a,
            },
            (Some(d), Some(Num::Float(a))) => d.as_f64() == a,
            _ => false,
        },
        // Go converts an integer to the string of its code point.
        (Value::Number(_), Value::String(s)) => match num_of(data) {
            Some(Num::Int(i)) => u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .is_some_and(|c| s.chars().eq(std::iter::once(c))),
            _ => false,
        },
        _ => data == allowed,
    }
}

/// Go's `%v` of a decoded JSON value.
fn go_value(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(_) => num_of(value).map_or_else(String::new, Num::render),
        Value::Array(items) => format!("[{}]", items.iter().map(go_value).collect::<Vec<_>>().join(" ")),
        Value::Object(map) => format!(
            "map[{}]",
            map.iter()
                .map(|(k, v)| format!("{k}:{}", go_value(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// apiextensions' `ValidateCustomResource`/`ValidateCustomResourceUpdate`: the schema
/// validator's errors as field errors under `root` (ratcheted against `old` on updates).
pub fn validate_against_schema(
    schema: &JSONSchemaProps,
    object: &Value,
    old: Option<&Value>,
    root: &Path,
) -> Vec<FieldError> {
    let validator = Validator::new();
    let outcome = validator.validate(schema, object, old, "");
    outcome
        .errors
        .into_iter()
        .map(|e| e.into_field_error(root))
        .collect()
}

/// apiextensions' `objectmeta.Validate`: every `x-kubernetes-embedded-resource` object needs
/// `apiVersion` and `kind`, and its metadata must be valid.
pub fn validate_embedded_resources(schema: &JSONSchemaProps, object: &Value, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match object {
        Value::Object(map) => {
            if schema.x_kubernetes_embedded_resource == Some(true) {
                errs.extend(validate_embedded_resource(map, path));
            }
            for (key, value) in map {
                if let Some(property) = schema.properties.as_ref().and_then(|p| p.get(key)) {
                    errs.extend(validate_embedded_resources(property, value, &path.child(key)));
                } else if let Some(additional) = additional_schema(schema) {
                    errs.extend(validate_embedded_resources(additional, value, &path.key(key)));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = items_schema(schema) {
                for (i, item) in items.iter().enumerate() {
                    errs.extend(validate_embedded_resources(item_schema, item, &path.index(i)));
                }
            }
        }
        _ => {}
    }
    errs
}

fn validate_embedded_resource(map: &Map<String, Value>, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !map.contains_key("apiVersion") {
        errs.push(FieldError::required(&path.child("apiVersion"), ""));
    }
    if !map.contains_key("kind") {
        errs.push(FieldError::required(&path.child("kind"), ""));
    }
    for (key, value) in map {
        match key.as_str() {
            "apiVersion" => match value.as_str() {
                None => errs.push(FieldError::invalid(
                    &path.child("apiVersion"),
                    bad_value(value),
                    "must be a string",
                )),
                Some("") => errs.push(FieldError::invalid(
                    &path.child("apiVersion"),
                    "",
                    "must not be empty",
                )),
                Some(api_version) => {
                    if parse_group_version(api_version).is_none() {
                        errs.push(FieldError::invalid(
                            &path.child("apiVersion"),
                            api_version,
                            format!("unexpected GroupVersion string: {api_version}"),
                        ));
                    }
                }
            },
            "kind" => match value.as_str() {
                None => errs.push(FieldError::invalid(
                    &path.child("kind"),
                    bad_value(value),
                    "must be a string",
                )),
                Some("") => errs.push(FieldError::invalid(&path.child("kind"), "", "must not be empty")),
                Some(kind) => {
                    let problems = is_dns1035_label(&kind.to_lowercase());
                    if !problems.is_empty() {
                        errs.push(FieldError::invalid(
                            &path.child("kind"),
                            kind,
                            format!(
                                "may have mixed case, but should otherwise match: {}",
                                problems.join(",")
                            ),
                        ));
                    }
                }
            },
            "metadata" => match serde_json::from_value::<ObjectMeta>(value.clone()) {
                Err(e) => errs.push(FieldError::invalid(
                    &path.child("metadata"),
                    bad_value(value),
                    e.to_string(),
                )),
                Ok(mut meta) => {
                    if meta.name.as_deref().unwrap_or_default().is_empty() {
                        meta.name = Some("fakename".to_owned());
                    }
                    let namespaced = !meta.namespace.as_deref().unwrap_or_default().is_empty();
                    errs.extend(validate_object_meta_accessor(
                        &meta,
                        namespaced,
                        validate_path_segment_name,
                        &path.child("metadata"),
                    ));
                }
            },
            _ => {}
        }
    }
    errs
}

/// apiextensions' `ValidateListSetsAndMaps`: items of `x-kubernetes-list-type: set` lists are
/// unique, and those of `map` lists are objects with unique keys.
pub fn validate_list_sets_and_maps(
    schema: &JSONSchemaProps,
    object: &Map<String, Value>,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(additional) = additional_schema(schema) {
        for (key, value) in object {
            errs.extend(list_sets_and_maps_value(additional, value, &path.key(key)));
        }
    }
    if let Some(properties) = &schema.properties {
        for (key, value) in object {
            if let Some(property) = properties.get(key) {
                errs.extend(list_sets_and_maps_value(property, value, &path.child(key)));
            }
        }
    }
    errs
}

fn list_sets_and_maps_value(schema: &JSONSchemaProps, value: &Value, path: &Path) -> Vec<FieldError> {
    match value {
        Value::Array(items) => list_sets_and_maps_array(schema, items, path),
        Value::Object(map) => validate_list_sets_and_maps(schema, map, path),
        _ => Vec::new(),
    }
}

fn list_sets_and_maps_array(schema: &JSONSchemaProps, items: &[Value], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match schema.x_kubernetes_list_type.as_deref() {
        Some("set") => {
            for i in non_unique(items) {
                errs.push(FieldError::duplicate(&path.index(i), bad_value(&items[i])));
            }
        }
        Some("map") => errs.extend(validate_list_map(schema, items, path)),
        _ => {}
    }
    if let Some(item_schema) = items_schema(schema) {
        for (i, item) in items.iter().enumerate() {
            errs.extend(list_sets_and_maps_value(item_schema, item, &path.index(i)));
        }
    }
    errs
}

/// The indices of the second occurrence of every repeated value.
fn non_unique(items: &[Value]) -> Vec<usize> {
    let mut seen: Vec<(&Value, usize)> = Vec::new();
    let mut repeated = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match seen.iter_mut().find(|(v, _)| json_equal(v, item)) {
            Some((_, times)) => {
                *times += 1;
                if *times == 2 {
                    repeated.push(i);
                }
            }
            None => seen.push((item, 1)),
        }
    }
    repeated
}

/// Equality of decoded values as Go's map keys and JSON encodings compare them.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (num_of(a), num_of(b)) {
        (Some(Num::Int(x)), Some(Num::Int(y))) => x == y,
        (Some(Num::Float(x)), Some(Num::Float(y))) => x == y,
        (Some(_), Some(_)) => false,
        _ => a == b,
    }
}

fn validate_list_map(schema: &JSONSchemaProps, items: &[Value], path: &Path) -> Vec<FieldError> {
    for (i, item) in items.iter().enumerate() {
        if !item.is_null() && !item.is_object() {
            return vec![FieldError::invalid(
                &path.index(i),
                bad_value(item),
                "must be an object for an array of list-type map",
            )];
        }
    }
    if items.len() <= 1 {
        return Vec::new();
    }
    let key_fields = schema.x_kubernetes_list_map_keys.as_deref().unwrap_or_default();
    if let [key_field] = key_fields {
        // An unspecified key is its own value, distinct from every JSON value.
        let keys: Vec<Option<&Value>> = items
            .iter()
            .map(|item| item.as_object().and_then(|o| o.get(key_field)))
            .collect();
        let mut seen: Vec<(Option<&Value>, usize)> = Vec::new();
        let mut errs = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let found = seen.iter_mut().find(|(k, _)| match (k, key) {
                (Some(a), Some(b)) => json_equal(a, b),
                (None, None) => true,
                _ => false,
            });
            match found {
                Some((_, times)) => {
                    *times += 1;
                    if *times == 2 {
                        let mut shown = Map::new();
                        if let Some(k) = key {
                            shown.insert(key_field.clone(), (*k).clone());
                        }
                        errs.push(FieldError::duplicate(
                            &path.index(i),
                            BadValue::Json(Value::Object(shown)),
                        ));
                    }
                }
                None => seen.push((*key, 1)),
            }
        }
        return errs;
    }
    let keys: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut key = Map::new();
            if let Some(object) = item.as_object() {
                for field in key_fields {
                    if let Some(v) = object.get(field) {
                        key.insert(field.clone(), v.clone());
                    }
                }
            }
            Value::Object(key)
        })
        .collect();
    non_unique(&keys)
        .into_iter()
        .map(|i| FieldError::duplicate(&path.index(i), BadValue::Json(keys[i].clone())))
        .collect()
}

/// Whether an error blocks CEL evaluation (upstream's `hasBlockingErr`).
pub fn is_blocking(error: &FieldError) -> bool {
    matches!(
        error.error_type,
        ErrorType::NotSupported
            | ErrorType::Required
            | ErrorType::TooLong
            | ErrorType::TooMany
            | ErrorType::TypeInvalid
    )
}

/// The error that stands for the CEL rules skipped because of blocking errors.
pub fn rules_not_checked() -> FieldError {
    FieldError {
        error_type: ErrorType::Invalid,
        field: "<nil>".to_owned(),
        bad_value: BadValue::Json(Value::Null),
        detail: "some validation rules were not checked because the object was invalid; correct the existing errors to complete validation".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::needless_pass_by_value
    )]

    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;

    fn schema(value: Value) -> JSONSchemaProps {
        serde_json::from_value(value).unwrap()
    }

    fn errors(schema: &JSONSchemaProps, object: &Value, old: Option<&Value>) -> BTreeSet<String> {
        validate_against_schema(schema, object, old, &Path::root())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Upstream's table (apiextensions-apiserver pkg/apiserver/validation TestValidateCustomResource):
    /// a schema, objects that pass, and objects with the set of errors they give.
    fn check(schema_json: Value, valid: &[Value], failing: &[(Value, &[&str])]) {
        let schema = schema(schema_json);
        for object in valid {
            assert_eq!(errors(&schema, object, None), BTreeSet::new(), "{object}");
        }
        for (object, expected) in failing {
            let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(errors(&schema, object, None), expected, "{object}");
        }
    }

    fn field_schema(field: Value) -> Value {
        json!({"type": "object", "properties": {"field": field}})
    }

    #[test]
    fn not_nullable() {
        check(
            field_schema(json!({"type": "object"})),
            &[json!({}), json!({"field": {}})],
            &[
                (
                    json!({"field": "foo"}),
                    &[r#"field: Invalid value: "string": field in body must be of type object: "string""#],
                ),
                (
                    json!({"field": 42}),
                    &[r#"field: Invalid value: "integer": field in body must be of type object: "integer""#],
                ),
                (
                    json!({"field": true}),
                    &[r#"field: Invalid value: "boolean": field in body must be of type object: "boolean""#],
                ),
                (
                    json!({"field": 1.2}),
                    &[r#"field: Invalid value: "number": field in body must be of type object: "number""#],
                ),
                (
                    json!({"field": []}),
                    &[r#"field: Invalid value: "array": field in body must be of type object: "array""#],
                ),
                (
                    json!({"field": null}),
                    &[r#"field: Invalid value: "null": field in body must be of type object: "null""#],
                ),
            ],
        );
    }

    #[test]
    fn nullable() {
        check(
            field_schema(json!({"type": "object", "nullable": true})),
            &[json!({}), json!({"field": {}}), json!({"field": null})],
            &[
                (
                    json!({"field": "foo"}),
                    &[r#"field: Invalid value: "string": field in body must be of type object: "string""#],
                ),
                (
                    json!({"field": []}),
                    &[r#"field: Invalid value: "array": field in body must be of type object: "array""#],
                ),
            ],
        );
        check(
            field_schema(json!({"nullable": true})),
            &[
                json!({}),
                json!({"field": {}}),
                json!({"field": null}),
                json!({"field": "foo"}),
                json!({"field": 42}),
                json!({"field": true}),
                json!({"field": 1.2}),
                json!({"field": []}),
            ],
            &[],
        );
    }

    #[test]
    fn int_or_string() {
        check(
            field_schema(json!({"x-kubernetes-int-or-string": true})),
            &[json!({}), json!({"field": 42}), json!({"field": "foo"})],
            &[
                (
                    json!({"field": null}),
                    &[
                        r#"field: Invalid value: "null": field in body must be of type integer,string: "null""#,
                    ],
                ),
                (
                    json!({"field": true}),
                    &[
                        r#"field: Invalid value: "boolean": field in body must be of type integer,string: "boolean""#,
                    ],
                ),
                (
                    json!({"field": 1.2}),
                    &[
                        r#"field: Invalid value: "number": field in body must be of type integer,string: "number""#,
                    ],
                ),
                (
                    json!({"field": {}}),
                    &[
                        r#"field: Invalid value: "object": field in body must be of type integer,string: "object""#,
                    ],
                ),
                (
                    json!({"field": []}),
                    &[
                        r#"field: Invalid value: "array": field in body must be of type integer,string: "array""#,
                    ],
                ),
            ],
        );
        check(
            field_schema(json!({"x-kubernetes-int-or-string": true, "nullable": true})),
            &[json!({"field": null}), json!({"field": 42})],
            &[(
                json!({"field": true}),
                &[
                    r#"field: Invalid value: "boolean": field in body must be of type integer,string: "boolean""#,
                ],
            )],
        );
    }

    #[test]
    fn int_or_string_with_any_of_and_all_of() {
        check(
            field_schema(json!({
                "nullable": true,
                "x-kubernetes-int-or-string": true,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            })),
            &[
                json!({}),
                json!({"field": null}),
                json!({"field": 42}),
                json!({"field": "foo"}),
            ],
            &[
                (
                    json!({"field": true}),
                    &[
                        r#"<nil>: Invalid value: "": "field" must validate at least one schema (anyOf)"#,
                        r#"field: Invalid value: "boolean": field in body must be of type integer,string: "boolean""#,
                        r#"field: Invalid value: "boolean": field in body must be of type integer: "boolean""#,
                    ],
                ),
                (
                    json!({"field": 1.2}),
                    &[
                        r#"<nil>: Invalid value: "": "field" must validate at least one schema (anyOf)"#,
                        r#"field: Invalid value: "number": field in body must be of type integer,string: "number""#,
                        r#"field: Invalid value: "number": field in body must be of type integer: "number""#,
                    ],
                ),
            ],
        );
        check(
            field_schema(json!({
                "nullable": true,
                "x-kubernetes-int-or-string": true,
                "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}],
            })),
            &[
                json!({}),
                json!({"field": null}),
                json!({"field": 42}),
                json!({"field": "foo"}),
            ],
            &[(
                json!({"field": []}),
                &[
                    r#"<nil>: Invalid value: "": "field" must validate all the schemas (allOf). None validated"#,
                    r#"<nil>: Invalid value: "": "field" must validate at least one schema (anyOf)"#,
                    r#"field: Invalid value: "array": field in body must be of type integer,string: "array""#,
                    r#"field: Invalid value: "array": field in body must be of type integer: "array""#,
                ],
            )],
        );
    }

    #[test]
    fn required_and_enum() {
        check(
            json!({
                "type": "object",
                "required": ["field"],
                "properties": {"field": {"type": "object", "required": ["nested"], "properties": {"nested": {}}}},
            }),
            &[],
            &[
                (json!({"test": "a"}), &["field: Required value"]),
                (json!({"field": {}}), &["field.nested: Required value"]),
            ],
        );
        check(
            field_schema(json!({
                "type": "object",
                "required": ["nestedint", "nestedstring"],
                "properties": {
                    "nestedint": {"type": "integer", "enum": [1, 2]},
                    "nestedstring": {"type": "string", "enum": ["a", "b"]},
                },
            })),
            &[],
            &[
                (
                    json!({"field": {}}),
                    &[
                        "field.nestedint: Required value",
                        "field.nestedstring: Required value",
                    ],
                ),
                (
                    json!({"field": {"nestedint": "x", "nestedstring": true}}),
                    &[
                        r#"field.nestedint: Invalid value: "string": field.nestedint in body must be of type integer: "string""#,
                        r#"field.nestedint: Unsupported value: "x": supported values: "1", "2""#,
                        r#"field.nestedstring: Invalid value: "boolean": field.nestedstring in body must be of type string: "boolean""#,
                        r#"field.nestedstring: Unsupported value: true: supported values: "a", "b""#,
                    ],
                ),
            ],
        );
    }

    #[test]
    fn counts_and_lengths() {
        check(
            json!({"type": "object", "properties": {"fieldX": {"type": "object", "maxProperties": 2}}}),
            &[json!({"fieldX": {"a": true}})],
            &[(
                json!({"fieldX": {"a": true, "b": true, "c": true}}),
                &["fieldX: Too many: 3: must have at most 2 items"],
            )],
        );
        check(
            json!({"type": "object", "properties": {"fieldX": {"type": "array", "maxItems": 2}}}),
            &[],
            &[(
                json!({"fieldX": ["a", "b", "c"]}),
                &["fieldX: Too many: 3: must have at most 2 items"],
            )],
        );
        check(
            json!({"type": "object", "properties": {"fieldX": {"type": "string", "maxLength": 2}}}),
            &[json!({"fieldX": "äö"})],
            &[(
                json!({"fieldX": "abc"}),
                &["fieldX: Too long: may not be more than 2 bytes"],
            )],
        );
        check(
            json!({"type": "object", "properties": {
                "s": {"type": "string", "minLength": 2, "pattern": "^a"},
                "l": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "o": {"type": "object", "minProperties": 1},
            }}),
            &[json!({"s": "ab", "l": ["x"], "o": {"k": 1}})],
            &[
                (
                    json!({"s": "b", "l": [], "o": {}}),
                    &[
                        r#"s: Invalid value: "b": s in body should be at least 2 chars long"#,
                        "l: Invalid value: 0: l in body should have at least 1 items",
                        "o: Invalid value: 0: o in body should have at least 1 properties",
                    ],
                ),
                (
                    json!({"s": "bc", "l": [1]}),
                    &[
                        r#"s: Invalid value: "bc": s in body should match '^a'"#,
                        r#"l[0]: Invalid value: "integer": l[0] in body must be of type string: "integer""#,
                    ],
                ),
            ],
        );
    }

    #[test]
    fn formats() {
        check(
            json!({"type": "object", "properties": {"fieldX": {"type": "string", "format": "k8s-long-name"}}}),
            &[json!({"fieldX": "a.b"})],
            &[(
                json!({"fieldX": "a.-"}),
                &[r#"fieldX: Invalid value: "a.-": fieldX in body must be of type k8s-long-name: "a.-""#],
            )],
        );
        check(
            json!({"type": "object", "properties": {"fieldX": {"type": "string", "format": "k8s-short-name"}}}),
            &[],
            &[(
                json!({"fieldX": "a-"}),
                &[r#"fieldX: Invalid value: "a-": fieldX in body must be of type k8s-short-name: "a-""#],
            )],
        );
        check(
            json!({"type": "object", "properties": {
                "d": {"type": "string", "format": "date-time"},
                "i": {"type": "integer", "format": "int32"},
                "u": {"type": "string", "format": "something-unknown"},
            }}),
            &[json!({"d": "2024-01-02T03:04:05Z", "i": 9_999_999_999_i64, "u": "anything"})],
            &[(
                json!({"d": "yesterday"}),
                &[r#"d: Invalid value: "yesterday": d in body must be of type date-time: "yesterday""#],
            )],
        );
    }

    #[test]
    fn bounds() {
        check(
            json!({"type": "object", "properties": {
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                "ratio": {"type": "number", "exclusiveMaximum": true, "maximum": 1.5, "multipleOf": 0.5},
                "step": {"type": "integer", "multipleOf": 3},
            }}),
            &[
                json!({"replicas": 10, "ratio": 1.0, "step": 9}),
                json!({"replicas": 2.0}),
            ],
            &[
                (
                    json!({"replicas": 11}),
                    &["replicas: Invalid value: 11: replicas in body should be less than or equal to 10"],
                ),
                (
                    json!({"replicas": 0}),
                    &["replicas: Invalid value: 0: replicas in body should be greater than or equal to 1"],
                ),
                (
                    json!({"replicas": "3"}),
                    &[
                        r#"replicas: Invalid value: "string": replicas in body must be of type integer: "string""#,
                    ],
                ),
                (
                    json!({"replicas": 2.5}),
                    &[
                        r#"replicas: Invalid value: "number": replicas in body must be of type integer: "number""#,
                    ],
                ),
                (
                    json!({"ratio": 1.5}),
                    &["ratio: Invalid value: 1.5: ratio in body should be less than 1.5"],
                ),
                (
                    json!({"ratio": 0.7}),
                    &["ratio: Invalid value: 0.7: ratio in body should be a multiple of 0.5"],
                ),
                (
                    json!({"step": 4}),
                    &["step: Invalid value: 4: step in body should be a multiple of 3"],
                ),
            ],
        );
    }

    #[test]
    fn additional_properties_paths_use_dots() {
        check(
            json!({"type": "object", "properties": {"labels": {"type": "object", "additionalProperties": {"type": "string"}}}}),
            &[json!({"labels": {"a": "b"}})],
            &[(
                json!({"labels": {"a": 1}}),
                &[
                    r#"labels.a: Invalid value: "integer": labels.a in body must be of type string: "integer""#,
                ],
            )],
        );
    }

    #[test]
    fn ratcheting_keeps_unchanged_invalid_values() {
        let schema = schema(json!({"type": "object", "properties": {
            "a": {"type": "string", "maxLength": 1},
            "b": {"type": "string", "maxLength": 1},
            "m": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"], "items": {
                "type": "object", "properties": {"k": {"type": "string"}, "v": {"type": "integer", "maximum": 1}}}},
        }}));
        let old = json!({"a": "xx", "b": "y", "m": [{"k": "1", "v": 5}]});
        let new = json!({"a": "xx", "b": "yy", "m": [{"k": "2", "v": 5}, {"k": "1", "v": 5}]});
        assert_eq!(
            errors(&schema, &new, Some(&old)),
            BTreeSet::from([
                "b: Too long: may not be more than 1 byte".to_owned(),
                "m[0].v: Invalid value: 5: m[0].v in body should be less than or equal to 1".to_owned(),
            ])
        );
    }

    fn list_errors(schema: &JSONSchemaProps, object: &Value) -> Vec<String> {
        validate_list_sets_and_maps(schema, object.as_object().unwrap(), &Path::root())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn list_sets_and_maps() {
        // Cases of upstream's pkg/apiserver/schema/listtype TestValidateListSetsAndMaps.
        let set = schema(json!({"type": "object", "properties": {"field": {
            "type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}));
        assert_eq!(
            list_errors(&set, &json!({"field": ["a", "b", "a", "a"]})),
            vec![r#"field[2]: Duplicate value: "a""#]
        );
        assert!(list_errors(&set, &json!({"field": ["a", "b"]})).is_empty());
        let map = schema(json!({"type": "object", "properties": {"field": {
            "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
            "items": {"type": "object", "properties": {"k": {"type": "string"}}}}}}));
        assert_eq!(
            list_errors(
                &map,
                &json!({"field": [{"k": "a", "v": 1}, {"k": "a", "v": 2}, {"v": 3}, {}]})
            ),
            vec![
                r#"field[1]: Duplicate value: {"k":"a"}"#,
                "field[3]: Duplicate value: {}"
            ]
        );
        assert_eq!(
            list_errors(&map, &json!({"field": [{"k": "a"}, 1]})),
            vec!["field[1]: Invalid value: 1: must be an object for an array of list-type map"]
        );
        let multi = schema(json!({"type": "object", "properties": {"field": {
            "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["a", "b"],
            "items": {"type": "object"}}}}));
        assert_eq!(
            list_errors(
                &multi,
                &json!({"field": [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"b": "x", "a": 1}]})
            ),
            vec![r#"field[2]: Duplicate value: {"a":1,"b":"x"}"#]
        );
    }

    #[test]
    fn embedded_resources() {
        let schema = schema(json!({"type": "object", "properties": {"template": {
            "type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}}));
        let errs: Vec<String> = validate_embedded_resources(
            &schema,
            &json!({"template": {"kind": "Foo_Bar", "metadata": {"name": "Bad_Name"}}}),
            &Path::root(),
        )
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            errs,
            vec![
                "template.apiVersion: Required value".to_owned(),
                r#"template.kind: Invalid value: "Foo_Bar": may have mixed case, but should otherwise match: a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"#.to_owned(),
            ]
        );
        assert!(
            validate_embedded_resources(
                &schema,
                &json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}}),
                &Path::root()
            )
            .is_empty()
        );
    }

    #[test]
    fn go_floats() {
        for (value, shown) in [
            (1.5, "1.5"),
            (10.0, "10"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e21, "-2.5e+21"),
        ] {
            assert_eq!(go_float(value), shown);
        }
    }
}
