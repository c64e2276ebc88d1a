//! The JSONPath subset CRDs use (client-go's `jsonpath` as printer columns, selectable
//! fields and scale paths use it): fields (`.spec.replicas`, `['a.b']`), indices (`[0]`,
//! `[-1]`), wildcards (`[*]`) and filters (`[?(@.type=="Ready")]`, with `==` and `!=`
//! against strings, numbers and booleans, or existence). Nothing else lives here.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Filter {
        path: Vec<String>,
        test: Option<(bool, Value)>,
    },
}

/// Parses `{.a.b}` or `.a.b`.
fn parse(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let chars: Vec<char> = path.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let start = i;
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                if name == "*" {
                    steps.push(Step::All);
                } else if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
            }
            '[' => {
                let mut depth = 0;
                let start = i + 1;
                while i < chars.len() {
                    match chars[i] {
                        '[' => depth += 1,
                        ']' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                let inner: String = chars.get(start..i)?.iter().collect();
                i += 1;
                steps.push(bracket(inner.trim())?);
            }
            _ => return None,
        }
    }
    Some(steps)
}

fn unquote(text: &str) -> Option<String> {
    let text = text.trim();
    for quote in ['\'', '"'] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return Some(inner.to_owned());
        }
    }
    None
}

fn bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::All);
    }
    if let Some(name) = unquote(inner) {
        return Some(Step::Field(name));
    }
    if let Ok(index) = inner.parse::<i64>() {
        return Some(Step::Index(index));
    }
    let expression = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (left, test) = if let Some((l, r)) = expression.split_once("==") {
        (l, Some((true, literal(r)?)))
    } else if let Some((l, r)) = expression.split_once("!=") {
        (l, Some((false, literal(r)?)))
    } else {
        (expression, None)
    };
    let left = left.trim().strip_prefix('@')?;
    let path = left
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    Some(Step::Filter { path, test })
}

fn literal(text: &str) -> Option<Value> {
    let text = text.trim();
    if let Some(s) = unquote(text) {
        return Some(Value::String(s));
    }
    serde_json::from_str(text).ok()
}

fn get_fields<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, field| v.get(field.as_str()))
}

/// Every value `path` selects in `object` (missing keys select nothing); `None` when the
/// path does not parse.
pub fn find(object: &Value, path: &str) -> Option<Vec<Value>> {
    let steps = parse(path)?;
    let mut current = vec![object.clone()];
    for step in &steps {
        let mut next = Vec::new();
        for value in current {
            match step {
                Step::Field(name) => next.extend(value.get(name.as_str()).cloned()),
                Step::Index(index) => {
                    if let Some(items) = value.as_array() {
                        let len = items.len() as i64;
                        let at = if *index < 0 { len + index } else { *index };
                        if (0..len).contains(&at) {
                            next.extend(items.get(at as usize).cloned());
                        }
                    }
                }
                Step::All => match value {
                    Value::Array(items) => next.extend(items),
                    Value::Object(map) => next.extend(map.into_iter().map(|(_, v)| v)),
                    _ => {}
                },
                Step::Filter { path, test } => {
                    if let Some(items) = value.as_array() {
                        next.extend(
                            items
                                .iter()
                                .filter(|item| match (get_fields(item, path), test) {
                                    (Some(found), Some((equal, expected))) => {
                                        same_literal(found, expected) == *equal
                                    }
                                    (Some(_), None) => true,
                                    (None, Some((false, _))) => false,
                                    (None, _) => false,
                                })
                                .cloned(),
                        );
                    }
                }
            }
        }
        current = next;
    }
    Some(current)
}

fn same_literal(found: &Value, expected: &Value) -> bool {
    match (found, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => found == expected,
    }
}

/// The value at a simple dotted path (`.spec.replicas`).
pub fn simple_get<'a>(object: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.')
        .split('.')
        .try_fold(object, |v, field| v.get(field))
}

/// A value as client-go's JSONPath printer writes it (`fmt`'s `%v` of the decoded value for
/// scalars, JSON for maps and lists).
pub fn print(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_select_like_client_go() {
        let object = json!({"spec": {"replicas": 3, "a.b": "dotted"}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}
        ]}});
        assert_eq!(find(&object, ".spec.replicas").unwrap(), [json!(3)]);
        assert_eq!(find(&object, "{.spec['a.b']}").unwrap(), [json!("dotted")]);
        assert!(find(&object, ".spec.missing").unwrap().is_empty());
        assert_eq!(
            find(&object, r#".status.conditions[?(@.type=="Ready")].status"#).unwrap(),
            [json!("True")]
        );
        assert_eq!(
            find(&object, ".status.conditions[-1].type").unwrap(),
            [json!("Synced")]
        );
        assert_eq!(find(&object, ".status.conditions[*].type").unwrap().len(), 2);
        assert!(find(&object, "spec").is_none(), "paths start with a dot");
        assert_eq!(simple_get(&object, ".spec.replicas"), Some(&json!(3)));
    }
}
