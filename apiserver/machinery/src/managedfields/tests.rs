//! Tests of the field manager: scenarios run through the real upstream code (the Go program
//! in `testdata/oracle/`, whose output is `testdata/expected.json`) replayed here and compared
//! byte for byte (FieldsV1) and field for field (managedFields, objects, errors); and ports
//! of upstream's unit tests.

use serde_json::{Value, json};

use super::builtin::BuiltinTypes;
use super::fieldpath::Set;
use super::schema::TypeSource;
use super::{FieldManager, FieldManagerError};

const SCENARIOS: &str = include_str!("testdata/scenarios.json");
const EXPECTED: &str = include_str!("testdata/expected.json");

const UID: &str = "00000000-0000-0000-0000-000000000001";
const CREATED: &str = "2020-01-01T00:00:00Z";

fn set_meta(obj: &mut Value, name: &str, v: Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert(name.to_string(), v);
    }
}

/// Drops nulls (Go writes `null` for zero times, Rudder omits them) and managedFields.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| !v.is_null() && k.as_str() != "managedFields")
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

fn error_json(e: &FieldManagerError) -> Value {
    let status = e.status();
    let mut out = json!({
        "code": status["code"],
        "message": status["message"],
        "reason": status.get("reason").cloned().unwrap_or(json!("")),
    });
    if let Some(causes) = status.pointer("/details/causes") {
        out["causes"] = causes.clone();
    }
    out
}

/// Compares one step's result with upstream's; returns the differences.
fn check_step(
    name: &str,
    step: usize,
    actual: Result<&Value, &FieldManagerError>,
    expected: &Value,
) -> Vec<String> {
    let mut diffs = Vec::new();
    let at = format!("{name} step {step}");
    match (actual, expected.get("error")) {
        (Err(e), Some(want)) => {
            let mut got = error_json(e);
            let mut want = want.clone();
            // Upstream lists the causes of several managers in map order.
            for v in [&mut got, &mut want] {
                if let Some(causes) = v.get_mut("causes").and_then(Value::as_array_mut) {
                    causes.sort_by_key(|c| c.to_string());
                }
            }
            if got != want {
                diffs.push(format!("{at}: error\n  got:  {got}\n  want: {want}"));
            }
        }
        (Err(e), None) => diffs.push(format!("{at}: unexpected error {e}")),
        (Ok(_), Some(want)) => diffs.push(format!("{at}: expected error {want}")),
        (Ok(obj), None) => {
            let want_obj = &expected["object"];
            let got_fields = obj
                .pointer("/metadata/managedFields")
                .cloned()
                .unwrap_or(json!([]));
            let want_fields = want_obj
                .pointer("/metadata/managedFields")
                .cloned()
                .unwrap_or(json!([]));
            let raw: Vec<&str> = expected["fieldsV1"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let (got_fields, want_fields) = (
                got_fields.as_array().cloned().unwrap_or_default(),
                want_fields.as_array().cloned().unwrap_or_default(),
            );
            if got_fields.len() != want_fields.len() {
                diffs.push(format!(
                    "{at}: {} managedFields entries, want {}:\n  got:  {}\n  want: {}",
                    got_fields.len(),
                    want_fields.len(),
                    Value::Array(got_fields.clone()),
                    Value::Array(want_fields.clone())
                ));
            }
            for (i, (g, w)) in got_fields.iter().zip(want_fields.iter()).enumerate() {
                for key in [
                    "manager",
                    "operation",
                    "apiVersion",
                    "time",
                    "subresource",
                    "fieldsType",
                ] {
                    if g.get(key) != w.get(key) {
                        diffs.push(format!(
                            "{at}: entry {i} {key}: got {:?}, want {:?}",
                            g.get(key),
                            w.get(key)
                        ));
                    }
                }
                let bytes = Set::from_value(&g["fieldsV1"])
                    .map(|s| s.to_json())
                    .unwrap_or_default();
                if raw.get(i).copied() != Some(bytes.as_str()) {
                    diffs.push(format!(
                        "{at}: entry {i} FieldsV1\n  got:  {bytes}\n  want: {}",
                        raw.get(i).copied().unwrap_or("")
                    ));
                }
            }
            let got_view = BuiltinTypes::get().typed_view(obj).unwrap_or_else(|| obj.clone());
            let (got_obj, want_obj) = (normalize(&got_view), normalize(want_obj));
            if got_obj != want_obj {
                diffs.push(format!("{at}: object\n  got:  {got_obj}\n  want: {want_obj}"));
            }
        }
    }
    diffs
}

/// Replays every scenario of `testdata/scenarios.json` and compares with what upstream's
/// field manager produced for it (`testdata/expected.json`).
#[test]
fn scenarios_match_upstream() {
    let scenarios: Vec<Value> = serde_json::from_str(SCENARIOS).unwrap();
    let expected: Vec<Value> = serde_json::from_str(EXPECTED).unwrap();
    assert_eq!(scenarios.len(), expected.len());
    let mut diffs = Vec::new();
    for (scenario, expected) in scenarios.iter().zip(&expected) {
        let name = scenario["name"].as_str().unwrap();
        assert_eq!(expected["name"].as_str(), Some(name));
        let api_version = scenario["apiVersion"].as_str().unwrap();
        let kind = scenario["kind"].as_str().unwrap();
        let reset: Vec<(String, Vec<Vec<String>>)> = scenario
            .get("resetFields")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(v, paths)| (v.clone(), serde_json::from_value(paths.clone()).unwrap()))
                    .collect()
            })
            .unwrap_or_default();
        let mut live: Option<Value> = None;
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let now = format!("2021-01-01T00:00:{:02}Z", i + 1);
            let subresource = step.get("subresource").and_then(Value::as_str).unwrap_or("");
            let mut fm = FieldManager::builtin(api_version, kind).unwrap();
            if subresource.is_empty() {
                for (version, paths) in &reset {
                    let paths: Vec<Vec<&str>> = paths
                        .iter()
                        .map(|p| p.iter().map(String::as_str).collect())
                        .collect();
                    let paths: Vec<&[&str]> = paths.iter().map(Vec::as_slice).collect();
                    fm = fm.with_reset_fields(version, &paths);
                }
            } else {
                fm = fm.with_subresource(subresource);
            }
            let manager = step["manager"].as_str().unwrap();
            let object = step["object"].clone();
            let want = &expected["results"][i];
            match step["op"].as_str().unwrap() {
                op @ ("create" | "update") => {
                    let mut new = object;
                    let old = if op == "create" { None } else { live.as_ref() };
                    fm.update_no_errors(old, &mut new, manager, &now);
                    match old {
                        None => {
                            set_meta(&mut new, "uid", json!(UID));
                            set_meta(&mut new, "creationTimestamp", json!(CREATED));
                        }
                        Some(old) => {
                            set_meta(&mut new, "uid", old["metadata"]["uid"].clone());
                            set_meta(
                                &mut new,
                                "creationTimestamp",
                                old["metadata"]["creationTimestamp"].clone(),
                            );
                        }
                    }
                    diffs.extend(check_step(name, i + 1, Ok(&new), want));
                    live = Some(new);
                }
                "apply" => {
                    let force = step.get("force").and_then(Value::as_bool).unwrap_or(false);
                    match fm.apply(live.as_ref(), &object, manager, force, &now) {
                        Ok(mut result) => {
                            if live.is_none() {
                                set_meta(&mut result, "uid", json!(UID));
                                set_meta(&mut result, "creationTimestamp", json!(CREATED));
                            }
                            diffs.extend(check_step(name, i + 1, Ok(&result), want));
                            live = Some(result);
                        }
                        Err(e) => diffs.extend(check_step(name, i + 1, Err(&e), want)),
                    }
                }
                other => panic!("unknown op {other}"),
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
