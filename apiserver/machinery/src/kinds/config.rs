//! The strategies of the configuration kinds: ConfigMap, Secret and ServiceAccount.
//!
//! Ports `SetDefaults_Secret`, the `stringData` merge of `Convert_v1_Secret_To_core_Secret`,
//! pkg/registry/core/{configmap,secret,serviceaccount}/strategy.go and `ValidateConfigMap*`,
//! `ValidateSecret*`, `ValidateServiceAccount*` of pkg/apis/core/validation/validation.go,
//! including the per-type rules of secrets (required keys, well-formed docker config JSON with
//! Go's `encoding/json` error messages) and the 1 MiB size limit.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Secret, ServiceAccount};

use super::core_shared::{meta_path, str_of};
use crate::field::{ErrorList, FieldError, Path};
use crate::strategy::KindStrategy;
use crate::validation::{
    is_config_map_key, name_is_dns_subdomain, validate_object_meta, validate_object_meta_update,
    validate_service_account_name,
};

/// The summed size limit of a Secret's or ConfigMap's data (`core.MaxSecretSize`).
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;

/// `Opaque`: arbitrary user data.
pub const SECRET_TYPE_OPAQUE: &str = "Opaque";
/// A service account token.
pub const SECRET_TYPE_SERVICE_ACCOUNT_TOKEN: &str = "kubernetes.io/service-account-token";
/// A legacy `~/.dockercfg`.
pub const SECRET_TYPE_DOCKERCFG: &str = "kubernetes.io/dockercfg";
/// A `~/.docker/config.json`.
pub const SECRET_TYPE_DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
/// Basic authentication credentials.
pub const SECRET_TYPE_BASIC_AUTH: &str = "kubernetes.io/basic-auth";
/// SSH credentials.
pub const SECRET_TYPE_SSH_AUTH: &str = "kubernetes.io/ssh-auth";
/// A TLS certificate and key.
pub const SECRET_TYPE_TLS: &str = "kubernetes.io/tls";

const SERVICE_ACCOUNT_NAME_KEY: &str = "kubernetes.io/service-account.name";
const DOCKER_CONFIG_KEY: &str = ".dockercfg";
const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
const BASIC_AUTH_USERNAME_KEY: &str = "username";
const BASIC_AUTH_PASSWORD_KEY: &str = "password";
const SSH_AUTH_PRIVATE_KEY: &str = "ssh-privatekey";
const TLS_CERT_KEY: &str = "tls.crt";
const TLS_PRIVATE_KEY_KEY: &str = "tls.key";
const ENFORCE_MOUNTABLE_SECRETS_ANNOTATION: &str = "kubernetes.io/enforce-mountable-secrets";
const IMMUTABLE_MSG: &str = "field is immutable when `immutable` is set";

fn key_errors(path: &Path, key: &str) -> ErrorList {
    is_config_map_key(key)
        .into_iter()
        .map(|msg| FieldError::invalid(&path.key(key), key, msg))
        .collect()
}

// ConfigMap

fn validate_config_map(cm: &ConfigMap) -> ErrorList {
    let mut errs = validate_object_meta(&cm.metadata, true, name_is_dns_subdomain, &meta_path());
    let data_path = Path::new("data");
    let mut total = 0usize;
    for (key, value) in cm.data.iter().flatten() {
        errs.extend(key_errors(&data_path, key));
        if cm.binary_data.as_ref().is_some_and(|b| b.contains_key(key)) {
            errs.push(FieldError::invalid(
                &data_path.key(key),
                key.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += value.len();
    }
    let binary_path = Path::new("binaryData");
    for (key, value) in cm.binary_data.iter().flatten() {
        errs.extend(key_errors(&binary_path, key));
        total += value.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&Path::new(""), MAX_SECRET_SIZE));
    }
    errs
}

/// The rules of an object whose old version is `immutable`: it stays immutable, and none of
/// `fields` (name, whether it changed) may change.
fn immutable_errors(
    new_immutable: Option<bool>,
    old_immutable: Option<bool>,
    fields: &[(&str, bool)],
) -> ErrorList {
    let mut errs = ErrorList::new();
    if old_immutable == Some(true) {
        if new_immutable != Some(true) {
            errs.push(FieldError::forbidden(&Path::new("immutable"), IMMUTABLE_MSG));
        }
        for (field, changed) in fields {
            if *changed {
                errs.push(FieldError::forbidden(&Path::new(field), IMMUTABLE_MSG));
            }
        }
    }
    errs
}

/// An empty map is left out, as upstream's encoder leaves out an empty `omitempty` map.
fn drop_empty_map<V>(map: &mut Option<BTreeMap<String, V>>) {
    if map.as_ref().is_some_and(BTreeMap::is_empty) {
        *map = None;
    }
}

impl KindStrategy for ConfigMap {
    /// `SetDefaults_ConfigMap` only makes `data` a non-nil empty map, which is never written.
    fn apply_defaults(&mut self) {
        drop_empty_map(&mut self.data);
        drop_empty_map(&mut self.binary_data);
    }

    fn validate(&self) -> ErrorList {
        validate_config_map(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        errs.extend(immutable_errors(
            self.immutable,
            old.immutable,
            &[
                ("data", self.data != old.data),
                ("binaryData", self.binary_data != old.binary_data),
            ],
        ));
        errs.extend(validate_config_map(self));
        errs
    }
}

// Secret

fn secret_type(secret: &Secret) -> &str {
    str_of(&secret.type_)
}

fn validate_secret(secret: &Secret) -> ErrorList {
    let mut errs = validate_object_meta(&secret.metadata, true, name_is_dns_subdomain, &meta_path());
    let data_path = Path::new("data");
    let empty = BTreeMap::new();
    let data: &BTreeMap<String, ByteString> = secret.data.as_ref().unwrap_or(&empty);
    let mut total = 0usize;
    for (key, value) in data {
        errs.extend(key_errors(&data_path, key));
        total += value.0.len();
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long(&data_path, MAX_SECRET_SIZE));
    }
    match secret_type(secret) {
        SECRET_TYPE_SERVICE_ACCOUNT_TOKEN => {
            let name = secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(SERVICE_ACCOUNT_NAME_KEY))
                .map_or("", String::as_str);
            if name.is_empty() {
                errs.push(FieldError::required(
                    &meta_path().child("annotations").key(SERVICE_ACCOUNT_NAME_KEY),
                    "",
                ));
            }
        }
        SECRET_TYPE_DOCKERCFG | SECRET_TYPE_DOCKER_CONFIG_JSON => {
            let key = if secret_type(secret) == SECRET_TYPE_DOCKERCFG {
                DOCKER_CONFIG_KEY
            } else {
                DOCKER_CONFIG_JSON_KEY
            };
            match data.get(key) {
                None => errs.push(FieldError::required(&data_path.key(key), "")),
                Some(bytes) => {
                    if let Err(msg) = go_json::unmarshal_object(&bytes.0) {
                        errs.push(FieldError::invalid(
                            &data_path.key(key),
                            "<secret contents redacted>",
                            msg,
                        ));
                    }
                }
            }
        }
        SECRET_TYPE_BASIC_AUTH
            if !data.contains_key(BASIC_AUTH_USERNAME_KEY) && !data.contains_key(BASIC_AUTH_PASSWORD_KEY) =>
        {
            errs.push(FieldError::required(&data_path.key(BASIC_AUTH_USERNAME_KEY), ""));
            errs.push(FieldError::required(&data_path.key(BASIC_AUTH_PASSWORD_KEY), ""));
        }
        SECRET_TYPE_SSH_AUTH if data.get(SSH_AUTH_PRIVATE_KEY).is_none_or(|v| v.0.is_empty()) => {
            errs.push(FieldError::required(&data_path.key(SSH_AUTH_PRIVATE_KEY), ""));
        }
        SECRET_TYPE_TLS => {
            if !data.contains_key(TLS_CERT_KEY) {
                errs.push(FieldError::required(&data_path.key(TLS_CERT_KEY), ""));
            }
            if !data.contains_key(TLS_PRIVATE_KEY_KEY) {
                errs.push(FieldError::required(&data_path.key(TLS_PRIVATE_KEY_KEY), ""));
            }
        }
        _ => {}
    }
    errs
}

impl KindStrategy for Secret {
    fn apply_defaults(&mut self) {
        // `stringData` is write-only: conversion merges it into `data`, overwriting.
        if let Some(string_data) = self.string_data.take().filter(|m| !m.is_empty()) {
            let data = self.data.get_or_insert_with(BTreeMap::new);
            for (key, value) in string_data {
                data.insert(key, ByteString(value.into_bytes()));
            }
        }
        drop_empty_map(&mut self.data);
        if secret_type(self).is_empty() {
            self.type_ = Some(SECRET_TYPE_OPAQUE.to_owned());
        }
    }

    fn prepare_for_update(&mut self, old: &Self) {
        if secret_type(self).is_empty() {
            self.type_.clone_from(&old.type_);
        }
    }

    fn validate(&self) -> ErrorList {
        validate_secret(self)
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        if secret_type(self) != secret_type(old) {
            errs.push(FieldError::invalid(
                &Path::new("type"),
                secret_type(self),
                crate::validation::FIELD_IMMUTABLE_ERROR_MSG,
            ));
        }
        errs.extend(immutable_errors(
            self.immutable,
            old.immutable,
            &[("data", self.data != old.data)],
        ));
        errs.extend(validate_secret(self));
        errs
    }

    fn selectable_fields(&self) -> Vec<(&'static str, String)> {
        vec![("type", secret_type(self).to_owned())]
    }

    const SELECTABLE_FIELDS: &'static [&'static str] = &["type"];
}

// ServiceAccount

fn clean_secret_references(sa: &mut ServiceAccount) {
    for secret in sa.secrets.iter_mut().flatten() {
        *secret = ObjectReference {
            name: secret.name.take(),
            ..Default::default()
        };
    }
}

impl KindStrategy for ServiceAccount {
    fn prepare_for_create(&mut self) {
        clean_secret_references(self);
    }

    fn prepare_for_update(&mut self, _old: &Self) {
        clean_secret_references(self);
    }

    fn validate(&self) -> ErrorList {
        validate_object_meta(&self.metadata, true, validate_service_account_name, &meta_path())
    }

    fn validate_update(&self, old: &Self) -> ErrorList {
        let mut errs = validate_object_meta_update(&self.metadata, &old.metadata, &meta_path());
        errs.extend(self.validate());
        errs
    }

    /// Upstream skips the warning on an update when the old object had the annotation too;
    /// warnings here see only the new object, so it is repeated.
    fn warnings(&self) -> Vec<String> {
        let annotated = self
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(ENFORCE_MOUNTABLE_SECRETS_ANNOTATION));
        if annotated {
            return vec![format!(
                "metadata.annotations[{ENFORCE_MOUNTABLE_SECRETS_ANNOTATION}]: deprecated in v1.32+; prefer separate namespaces to isolate access to mounted secrets"
            )];
        }
        Vec::new()
    }
}

/// What Go's `json.Unmarshal(data, &map[string]interface{}{})` reports, with its messages.
mod go_json {
    #[derive(Clone, Copy, PartialEq)]
    enum Frame {
        Object,
        Array,
    }

    /// Where the scanner is, as the states of Go's `encoding/json` scanner. `key` tells a
    /// string that is an object key (followed by `:`) from a value.
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        BeginValue,
        BeginValueOrEmpty,
        BeginKeyOrEmpty,
        BeginKey,
        AfterKey,
        EndValue,
        InString { key: bool },
        InStringEsc { key: bool },
        InStringEscU { key: bool, seen: u8 },
        Neg,
        Zero,
        Digits,
        Dot,
        DotDigits,
        Exp,
        ExpSign,
        ExpDigits,
        Literal { word: &'static [u8], next: usize },
    }

    /// Go's `quoteChar`: the byte as a rune, quoted with single quotes.
    fn quote_char(c: u8) -> String {
        match c {
            b'\'' => "'\\''".to_owned(),
            b'"' => "'\"'".to_owned(),
            _ => {
                let inner = match char::from(c) {
                    '\u{7}' => "\\a".to_owned(),
                    '\u{8}' => "\\b".to_owned(),
                    '\u{c}' => "\\f".to_owned(),
                    '\n' => "\\n".to_owned(),
                    '\r' => "\\r".to_owned(),
                    '\t' => "\\t".to_owned(),
                    '\u{b}' => "\\v".to_owned(),
                    '\\' => "\\\\".to_owned(),
                    ch if c < 0x20 || c == 0x7f => format!("\\x{:02x}", u32::from(ch)),
                    ch if (0x80..0xa0).contains(&c) || c == 0xad => format!("\\u{:04x}", u32::from(ch)),
                    ch => ch.to_string(),
                };
                format!("'{inner}'")
            }
        }
    }

    fn is_space(c: u8) -> bool {
        matches!(c, b' ' | b'\t' | b'\r' | b'\n')
    }

    fn syntax(c: u8, context: &str) -> String {
        format!("invalid character {} {context}", quote_char(c))
    }

    /// Checks `data` as Go's decoder does; `Err` carries Go's message.
    pub fn unmarshal_object(data: &[u8]) -> Result<(), String> {
        let mut scanner = Scanner {
            stack: Vec::new(),
            state: State::BeginValue,
            done: false,
        };
        for &c in data {
            scanner.step(c)?;
        }
        let complete = scanner.done
            || (scanner.stack.is_empty()
                && matches!(
                    scanner.state,
                    State::Zero | State::Digits | State::DotDigits | State::ExpDigits
                ));
        if !complete {
            return Err("unexpected end of JSON input".to_owned());
        }
        let first = data.iter().copied().find(|c| !is_space(*c));
        let kind = match first {
            Some(b'{' | b'n') => return Ok(()),
            Some(b'[') => "array",
            Some(b'"') => "string",
            Some(b't' | b'f') => "bool",
            _ => "number",
        };
        Err(format!(
            "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
        ))
    }

    struct Scanner {
        stack: Vec<Frame>,
        state: State,
        /// The top-level value is complete.
        done: bool,
    }

    impl Scanner {
        /// The end of a value: back to its container, or the end of the input.
        fn end_value(&mut self) {
            if self.stack.is_empty() {
                self.done = true;
            }
            self.state = State::EndValue;
        }

        fn begin_value(&mut self, c: u8) -> Result<(), String> {
            self.state = match c {
                b'{' => {
                    self.stack.push(Frame::Object);
                    State::BeginKeyOrEmpty
                }
                b'[' => {
                    self.stack.push(Frame::Array);
                    State::BeginValueOrEmpty
                }
                b'"' => State::InString { key: false },
                b'-' => State::Neg,
                b'0' => State::Zero,
                b'1'..=b'9' => State::Digits,
                b't' => State::Literal {
                    word: b"true",
                    next: 1,
                },
                b'f' => State::Literal {
                    word: b"false",
                    next: 1,
                },
                b'n' => State::Literal {
                    word: b"null",
                    next: 1,
                },
                _ => return Err(syntax(c, "looking for beginning of value")),
            };
            Ok(())
        }

        /// After a complete value: a separator, a closer, or (at the top) only spaces.
        fn after_value(&mut self, c: u8) -> Result<(), String> {
            if is_space(c) {
                self.state = State::EndValue;
                return Ok(());
            }
            match self.stack.last().copied() {
                None => Err(syntax(c, "after top-level value")),
                Some(Frame::Object) => match c {
                    b',' => {
                        self.state = State::BeginKey;
                        Ok(())
                    }
                    b'}' => {
                        self.stack.pop();
                        self.end_value();
                        Ok(())
                    }
                    _ => Err(syntax(c, "after object key:value pair")),
                },
                Some(Frame::Array) => match c {
                    b',' => {
                        self.state = State::BeginValue;
                        Ok(())
                    }
                    b']' => {
                        self.stack.pop();
                        self.end_value();
                        Ok(())
                    }
                    _ => Err(syntax(c, "after array element")),
                },
            }
        }

        fn after_number(&mut self, c: u8) -> Result<(), String> {
            if self.stack.is_empty() {
                self.done = true;
            }
            self.after_value(c)
        }

        fn end_string(&mut self, key: bool) {
            if key {
                self.state = State::AfterKey;
            } else {
                self.end_value();
            }
        }

        fn step(&mut self, c: u8) -> Result<(), String> {
            let ws_state = matches!(
                self.state,
                State::BeginValue
                    | State::BeginValueOrEmpty
                    | State::BeginKeyOrEmpty
                    | State::BeginKey
                    | State::AfterKey
            );
            if is_space(c) && ws_state {
                return Ok(());
            }
            match self.state {
                State::BeginValue => self.begin_value(c),
                State::BeginValueOrEmpty => {
                    if c == b']' {
                        self.stack.pop();
                        self.end_value();
                        return Ok(());
                    }
                    self.begin_value(c)
                }
                State::BeginKeyOrEmpty | State::BeginKey => {
                    if c == b'}' && self.state == State::BeginKeyOrEmpty {
                        self.stack.pop();
                        self.end_value();
                        return Ok(());
                    }
                    if c != b'"' {
                        return Err(syntax(c, "looking for beginning of object key string"));
                    }
                    self.state = State::InString { key: true };
                    Ok(())
                }
                State::AfterKey => {
                    if c != b':' {
                        return Err(syntax(c, "after object key"));
                    }
                    self.state = State::BeginValue;
                    Ok(())
                }
                State::EndValue => self.after_value(c),
                State::InString { key } => {
                    match c {
                        b'"' => self.end_string(key),
                        b'\\' => self.state = State::InStringEsc { key },
                        c if c < 0x20 => return Err(syntax(c, "in string literal")),
                        _ => {}
                    }
                    Ok(())
                }
                State::InStringEsc { key } => {
                    self.state = match c {
                        b'b' | b'f' | b'n' | b'r' | b't' | b'\\' | b'/' | b'"' => State::InString { key },
                        b'u' => State::InStringEscU { key, seen: 0 },
                        _ => return Err(syntax(c, "in string escape code")),
                    };
                    Ok(())
                }
                State::InStringEscU { key, seen } => {
                    if !c.is_ascii_hexdigit() {
                        return Err(syntax(c, "in \\u hexadecimal character escape"));
                    }
                    self.state = if seen == 3 {
                        State::InString { key }
                    } else {
                        State::InStringEscU { key, seen: seen + 1 }
                    };
                    Ok(())
                }
                State::Neg => {
                    self.state = match c {
                        b'0' => State::Zero,
                        b'1'..=b'9' => State::Digits,
                        _ => return Err(syntax(c, "in numeric literal")),
                    };
                    Ok(())
                }
                State::Zero | State::Digits => match c {
                    b'0'..=b'9' if self.state == State::Digits => Ok(()),
                    b'.' => {
                        self.state = State::Dot;
                        Ok(())
                    }
                    b'e' | b'E' => {
                        self.state = State::Exp;
                        Ok(())
                    }
                    _ => self.after_number(c),
                },
                State::Dot => {
                    if !c.is_ascii_digit() {
                        return Err(syntax(c, "after decimal point in numeric literal"));
                    }
                    self.state = State::DotDigits;
                    Ok(())
                }
                State::DotDigits => match c {
                    b'0'..=b'9' => Ok(()),
                    b'e' | b'E' => {
                        self.state = State::Exp;
                        Ok(())
                    }
                    _ => self.after_number(c),
                },
                State::Exp | State::ExpSign => {
                    self.state = match c {
                        b'+' | b'-' if self.state == State::Exp => State::ExpSign,
                        b'0'..=b'9' => State::ExpDigits,
                        _ => return Err(syntax(c, "in exponent of numeric literal")),
                    };
                    Ok(())
                }
                State::ExpDigits => {
                    if c.is_ascii_digit() {
                        return Ok(());
                    }
                    self.after_number(c)
                }
                State::Literal { word, next } => {
                    let expected = word.get(next).copied().unwrap_or_default();
                    if c != expected {
                        let context = match word {
                            b"true" => "in literal true",
                            b"false" => "in literal false",
                            _ => "in literal null",
                        };
                        return Err(syntax(
                            c,
                            &format!("{context} (expecting {})", quote_char(expected)),
                        ));
                    }
                    if next + 1 == word.len() {
                        self.end_value();
                    } else {
                        self.state = State::Literal { word, next: next + 1 };
                    }
                    Ok(())
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::unmarshal_object;

        #[test]
        fn messages_match_go() {
            let cases: &[(&str, Option<&str>)] = &[
                (r#"{"auths": {"r": {"auth": "x"}}}"#, None),
                ("null", None),
                (" {} ", None),
                ("", Some("unexpected end of JSON input")),
                ("{", Some("unexpected end of JSON input")),
                (
                    "[1, 2]",
                    Some("json: cannot unmarshal array into Go value of type map[string]interface {}"),
                ),
                (
                    "12",
                    Some("json: cannot unmarshal number into Go value of type map[string]interface {}"),
                ),
                (
                    "\"s\"",
                    Some("json: cannot unmarshal string into Go value of type map[string]interface {}"),
                ),
                (
                    "true",
                    Some("json: cannot unmarshal bool into Go value of type map[string]interface {}"),
                ),
                ("x", Some("invalid character 'x' looking for beginning of value")),
                (
                    "{a",
                    Some("invalid character 'a' looking for beginning of object key string"),
                ),
                (r#"{"a" 1}"#, Some("invalid character '1' after object key")),
                (
                    r#"{"a":1 "b"}"#,
                    Some("invalid character '\"' after object key:value pair"),
                ),
                ("[1 2]", Some("invalid character '2' after array element")),
                ("{} x", Some("invalid character 'x' after top-level value")),
                (
                    r#"{"a":tru}"#,
                    Some("invalid character '}' in literal true (expecting 'e')"),
                ),
                (r#"{"a":-x}"#, Some("invalid character 'x' in numeric literal")),
                (
                    r#"{"a":1.}"#,
                    Some("invalid character '}' after decimal point in numeric literal"),
                ),
                (
                    r#"{"a":"\q"}"#,
                    Some("invalid character 'q' in string escape code"),
                ),
                (
                    "{\"a\":\"\n\"}",
                    Some("invalid character '\\n' in string literal"),
                ),
                (
                    "{'a':1}",
                    Some("invalid character '\\'' looking for beginning of object key string"),
                ),
            ];
            for (input, expected) in cases {
                assert_eq!(
                    unmarshal_object(input.as_bytes()).err().as_deref(),
                    *expected,
                    "{input:?}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::core_shared::testing::{create, create_errors, fields, update_errors, warnings};
    use crate::strategy::UpdateTarget;

    fn stored(kind: &str, object: serde_json::Value) -> serde_json::Value {
        let mut v = create(kind, object).unwrap();
        v["metadata"]["resourceVersion"] = json!("1");
        v
    }

    #[test]
    fn secret_defaults_and_string_data() {
        let out = create(
            "Secret",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"},
                   "data": {"a": "eA==", "b": "eQ=="}, "stringData": {"b": "zz", "c": "w"}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "s", "namespace": "ns"},
                "data": {"a": "eA==", "b": "eno=", "c": "dw=="},
                "type": "Opaque"
            })
        );
        assert_eq!(fields("Secret", &out), [("type", "Opaque".to_owned())]);
    }

    #[test]
    fn secret_validation() {
        let meta = json!({"name": "s", "namespace": "ns"});
        let big = "a".repeat(super::MAX_SECRET_SIZE + 1);
        let cases = [
            (
                json!({"metadata": {"name": "S", "namespace": "ns"}, "data": {"bad key": ""}}),
                vec![
                    "metadata.name: Invalid value: \"S\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                    "data[bad key]: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ],
            ),
            (
                json!({"metadata": meta, "stringData": {"k": big}}),
                vec!["data: Too long: may not be more than 1048576 bytes"],
            ),
            (
                json!({"metadata": meta, "type": "kubernetes.io/service-account-token"}),
                vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
            ),
            (
                json!({"metadata": meta, "type": "kubernetes.io/dockercfg"}),
                vec!["data[.dockercfg]: Required value"],
            ),
            (
                json!({"metadata": meta, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{\"auths\": "}}),
                vec![
                    "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": unexpected end of JSON input",
                ],
            ),
            (
                json!({"metadata": meta, "type": "kubernetes.io/dockerconfigjson", "stringData": {".dockerconfigjson": "{\"auths\": {}}"}}),
                vec![],
            ),
            (
                json!({"metadata": meta, "type": "kubernetes.io/basic-auth"}),
                vec!["data[username]: Required value", "data[password]: Required value"],
            ),
            (
                json!({"metadata": meta, "type": "kubernetes.io/basic-auth", "stringData": {"password": ""}}),
                vec![],
            ),
            (
                json!({"metadata": meta, "type": "kubernetes.io/ssh-auth", "stringData": {"ssh-privatekey": ""}}),
                vec!["data[ssh-privatekey]: Required value"],
            ),
            (
                json!({"metadata": meta, "type": "kubernetes.io/tls", "stringData": {"tls.key": "k"}}),
                vec!["data[tls.crt]: Required value"],
            ),
            (json!({"metadata": meta, "type": "example.com/custom"}), vec![]),
        ];
        for (object, expected) in cases {
            assert_eq!(create_errors("Secret", object.clone()), expected, "{object}");
        }
    }

    #[test]
    fn secret_updates() {
        let old = stored(
            "Secret",
            json!({"metadata": {"name": "s", "namespace": "ns"}, "data": {"a": "eA=="}, "immutable": true}),
        );
        let mut new = old.clone();
        new["type"] = json!("kubernetes.io/basic-auth");
        new["data"] = json!({"a": "eQ=="});
        new["immutable"] = json!(false);
        assert_eq!(
            update_errors("Secret", new, &old, UpdateTarget::Main),
            [
                "type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable",
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set",
                "data[username]: Required value",
                "data[password]: Required value",
            ]
        );
        // Without a type the update keeps the old one; metadata may change.
        let mut new = old.clone();
        new.as_object_mut().unwrap().remove("type");
        new["metadata"]["labels"] = json!({"a": "b"});
        assert!(update_errors("Secret", new, &old, UpdateTarget::Main).is_empty());
    }

    #[test]
    fn config_map_validation() {
        let meta = json!({"name": "c", "namespace": "ns"});
        let half = "a".repeat(super::MAX_SECRET_SIZE / 2 + 1);
        let cases = [
            (
                json!({"metadata": meta, "data": {"k": "v"}, "binaryData": {"b": "AAE="}}),
                vec![],
            ),
            (
                json!({"metadata": meta, "data": {"k": "v", "..": ""}, "binaryData": {"k": "AAE=", "a/b": ""}}),
                vec![
                    "data[..]: Invalid value: \"..\": must not be '..'",
                    "data[k]: Invalid value: \"k\": duplicate of key present in binaryData",
                    "binaryData[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ],
            ),
            (
                json!({"metadata": meta, "data": {"a": half, "b": half}}),
                vec![": Too long: may not be more than 1048576 bytes"],
            ),
            (
                json!({"metadata": {"name": "c"}}),
                vec!["metadata.namespace: Required value"],
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(create_errors("ConfigMap", object.clone()), expected, "{object}");
        }
    }

    #[test]
    fn config_map_immutability() {
        let old = stored(
            "ConfigMap",
            json!({"metadata": {"name": "c", "namespace": "ns"}, "data": {"k": "v"}, "immutable": true}),
        );
        let mut new = old.clone();
        new["data"]["k"] = json!("w");
        new["binaryData"] = json!({"b": "AA=="});
        assert_eq!(
            update_errors("ConfigMap", new, &old, UpdateTarget::Main),
            [
                "data: Forbidden: field is immutable when `immutable` is set",
                "binaryData: Forbidden: field is immutable when `immutable` is set",
            ]
        );
        let mut new = old.clone();
        new["metadata"]["labels"] = json!({"x": "y"});
        assert!(update_errors("ConfigMap", new, &old, UpdateTarget::Main).is_empty());
        let mutable = stored(
            "ConfigMap",
            json!({"metadata": {"name": "c", "namespace": "ns"}, "data": {"k": "v"}}),
        );
        let mut new = mutable.clone();
        new["data"]["k"] = json!("w");
        new["immutable"] = json!(true);
        assert!(update_errors("ConfigMap", new, &mutable, UpdateTarget::Main).is_empty());
    }

    #[test]
    fn empty_maps_are_left_out() {
        let out = create(
            "ConfigMap",
            json!({"metadata": {"name": "c", "namespace": "ns"}, "data": {}, "binaryData": {}, "immutable": true}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}, "immutable": true})
        );
        let mut old = out;
        old["metadata"]["resourceVersion"] = json!("1");
        let mut new = old.clone();
        new["data"] = json!({});
        assert!(update_errors("ConfigMap", new, &old, UpdateTarget::Main).is_empty());
    }

    #[test]
    fn service_accounts() {
        let out = create(
            "ServiceAccount",
            json!({"metadata": {"name": "sa", "namespace": "ns"},
                   "secrets": [{"name": "tok", "namespace": "ns", "uid": "u", "kind": "Secret"}]}),
        )
        .unwrap();
        assert_eq!(out["secrets"], json!([{"name": "tok"}]));
        assert_eq!(
            create_errors(
                "ServiceAccount",
                json!({"metadata": {"name": "SA", "namespace": "ns"}})
            ),
            [
                "metadata.name: Invalid value: \"SA\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        assert_eq!(
            warnings(
                "ServiceAccount",
                &json!({"metadata": {"name": "sa", "annotations": {"kubernetes.io/enforce-mountable-secrets": "true"}}})
            ),
            [
                "metadata.annotations[kubernetes.io/enforce-mountable-secrets]: deprecated in v1.32+; prefer separate namespaces to isolate access to mounted secrets"
            ]
        );
    }
}
