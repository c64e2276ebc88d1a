//! `x-kubernetes-validations`: CEL rules of a structural schema compiled and evaluated as
//! apiextensions-apiserver does (`self`, `oldSelf` transition rules, `messageExpression`,
//! `reason`, `fieldPath`, cost limits), with upstream's error messages.
//!
//! Pure: evaluation reads only the objects it is given. [`Rules`] compiles a schema's rules
//! once; hold one per served CRD version and reuse it for every write.

mod check;
mod cost;
mod library;
mod value;

pub use value::RESERVED;

use std::collections::{BTreeMap, HashMap};

use cel::common::types::CelOptional as Optional;
use cel::common::value::Val;
use cel::{Context, ExecutionError, Program};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{JSONSchemaProps, ValidationRule};
use serde_json::Value;

use crate::field::{BadValue, ErrorType, FieldError, Path};
use cost::Shape;

/// Upstream's `PerCallLimit`: the cost one evaluation may reach.
pub const PER_CALL_LIMIT: u64 = 1_000_000;
/// Upstream's `RuntimeCELCostBudget`: the cost all rules may reach for one object.
pub const RUNTIME_BUDGET: u64 = 10_000_000;
/// Upstream's `StaticEstimatedCostLimit`: the estimated cost one rule may reach.
pub const STATIC_RULE_LIMIT: u64 = 10_000_000;
/// Upstream's `StaticEstimatedCRDCostLimit`: the estimated cost of a whole schema's rules.
pub const STATIC_SCHEMA_LIMIT: u64 = 100_000_000;
/// Upstream's `MaxEvaluatedMessageExpressionSizeBytes`.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

/// Evaluates every CEL rule of `schema` (at every level) against `object`, with `old` as
/// `oldSelf` on updates; returns one error per failed rule. Compiles the rules on each call:
/// callers that validate often hold a [`Rules`].
pub fn validate(schema: &JSONSchemaProps, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    Rules::new(schema).validate(object, old)
}

/// The compiled `x-kubernetes-validations` of one structural schema (a CRD version's
/// `openAPIV3Schema`, the custom resource's root).
#[derive(Debug)]
pub struct Rules {
    root: Option<Node>,
}

#[derive(Debug, Default)]
struct Node {
    /// The schema's `type` (what upstream puts in compile and evaluation errors).
    type_name: String,
    /// The schema at this node, kept for converting values (only where rules are).
    schema: Option<JSONSchemaProps>,
    resource_root: bool,
    rules: Vec<Compiled>,
    properties: BTreeMap<String, Node>,
    items: Option<Box<Node>>,
    additional: Option<Box<Node>>,
    all_of: Vec<Node>,
    /// `x-kubernetes-map-type` lets old values be matched by property.
    map_correlatable: bool,
    /// `x-kubernetes-list-map-keys` of a `map` list: items are matched by these keys.
    list_map_keys: Option<Vec<String>>,
}

#[derive(Debug)]
struct Compiled {
    rule: ValidationRule,
    /// `None` for an empty rule; `Err` with upstream's detail when it does not compile.
    program: Result<Option<Program>, String>,
    uses_old_self: bool,
    message: Option<Result<Program, String>>,
    field_path: Option<String>,
}

impl Rules {
    /// Compiles every rule of `schema`.
    pub fn new(schema: &JSONSchemaProps) -> Rules {
        Rules {
            root: build(schema, true),
        }
    }

    /// Whether the schema has no rules at all.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Evaluates the rules against `object` (a whole custom resource); `old` is the stored
    /// object on updates. Returns the errors in upstream's order and wording.
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
        self.evaluate(object, old).errors
    }

    /// Evaluates the rules like [`Rules::validate`], and also returns the warnings of
    /// ratcheting: on updates, a failed rule without `oldSelf` whose value (or nearest
    /// correlated ancestor) did not change is a warning (upstream's `Warning` header text),
    /// not an error.
    pub fn evaluate(&self, object: &Value, old: Option<&Value>) -> Outcome {
        let mut run = Run {
            budget: i64::try_from(RUNTIME_BUDGET).unwrap_or(i64::MAX),
            errors: Vec::new(),
            warnings: Vec::new(),
        };
        if let Some(root) = &self.root {
            root.validate(&Path::root(), object, old, false, &mut run);
        }
        Outcome {
            errors: run.errors,
            warnings: run.warnings,
        }
    }
}

/// What evaluating the rules found.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    /// The errors that refuse the write.
    pub errors: Vec<FieldError>,
    /// The ratcheted failures, as warnings.
    pub warnings: Vec<String>,
}

impl Run {
    /// Records a failed rule: ratcheted into a warning when the rule does not use `oldSelf`
    /// and the value did not change.
    fn report(&mut self, uses_old_self: bool, unchanged: bool, error: FieldError) {
        if !uses_old_self && unchanged {
            self.warnings.push(error.to_string());
        } else {
            self.errors.push(error);
        }
    }
}

fn has_rules(schema: &JSONSchemaProps) -> bool {
    schema
        .x_kubernetes_validations
        .as_ref()
        .is_some_and(|v| !v.is_empty())
        || value::items_schema(schema).is_some_and(has_rules)
        || value::additional_schema(schema).is_some_and(has_rules)
        || schema.properties.iter().flatten().any(|(_, p)| has_rules(p))
        || schema.all_of.iter().flatten().any(has_rules)
}

fn build(schema: &JSONSchemaProps, resource_root: bool) -> Option<Node> {
    if !has_rules(schema) {
        return None;
    }
    let rules: Vec<Compiled> = schema
        .x_kubernetes_validations
        .iter()
        .flatten()
        .map(|rule| compile(rule, schema, resource_root))
        .collect();
    let mut properties = BTreeMap::new();
    for (name, prop) in schema.properties.iter().flatten() {
        if let Some(node) = build(prop, prop.x_kubernetes_embedded_resource == Some(true)) {
            properties.insert(name.clone(), node);
        }
    }
    let child = |s: Option<&JSONSchemaProps>| {
        s.and_then(|s| build(s, s.x_kubernetes_embedded_resource == Some(true)))
            .map(Box::new)
    };
    Some(Node {
        type_name: schema.type_.clone().unwrap_or_default(),
        schema: (!rules.is_empty()).then(|| schema.clone()),
        resource_root,
        rules,
        properties,
        items: child(value::items_schema(schema)),
        additional: child(value::additional_schema(schema)),
        all_of: schema
            .all_of
            .iter()
            .flatten()
            .filter_map(|s| build(&merge_all_of(schema, s), resource_root))
            .collect(),
        map_correlatable: matches!(
            schema.x_kubernetes_map_type.as_deref(),
            None | Some("granular" | "atomic")
        ),
        list_map_keys: (schema.x_kubernetes_list_type.as_deref() == Some("map"))
            .then(|| schema.x_kubernetes_list_map_keys.clone().unwrap_or_default()),
    })
}

/// An `allOf` branch's rules over the node's own structure (upstream validates them against
/// the node's types).
fn merge_all_of(node: &JSONSchemaProps, branch: &JSONSchemaProps) -> JSONSchemaProps {
    let mut merged = node.clone();
    merged.x_kubernetes_validations = branch.x_kubernetes_validations.clone();
    merged.all_of = None;
    let mut properties = BTreeMap::new();
    for (name, prop) in branch.properties.iter().flatten() {
        if let Some(own) = node.properties.as_ref().and_then(|p| p.get(name)) {
            properties.insert(name.clone(), merge_all_of(own, prop));
        }
    }
    if let Some(own) = merged.properties.as_mut() {
        for (name, prop) in own.iter_mut() {
            match properties.remove(name) {
                Some(p) => *prop = p,
                None => strip_rules(prop),
            }
        }
    }
    merged
}

fn strip_rules(schema: &mut JSONSchemaProps) {
    schema.x_kubernetes_validations = None;
    schema.all_of = None;
    for prop in schema.properties.iter_mut().flatten() {
        strip_rules(prop.1);
    }
}

/// cel-go's rendering of parse errors (` | ` before the snippet lines).
fn parse_error_text(error: &cel::ParseErrors) -> String {
    error.to_string().replace("\n| ", "\n | ")
}

fn compile(rule: &ValidationRule, schema: &JSONSchemaProps, resource_root: bool) -> Compiled {
    let env = library::env();
    let mut compiled = Compiled {
        rule: rule.clone(),
        program: Ok(None),
        uses_old_self: false,
        message: None,
        field_path: None,
    };
    if rule.rule.trim().is_empty() {
        return compiled;
    }
    let program = match env.compile(&rule.rule) {
        Ok(p) => p,
        Err(e) => {
            compiled.program = Err(format!("compilation failed: {}", parse_error_text(&e)));
            return compiled;
        }
    };
    let optional_old_self = rule.optional_old_self == Some(true);
    if let Some(detail) = check::check(&program, schema, resource_root, optional_old_self) {
        compiled.program = Err(format!("compilation failed: {detail}"));
        return compiled;
    }
    if check::surely_not(&program, "bool") {
        compiled.program = Err("cel expression must evaluate to a bool".to_owned());
        return compiled;
    }
    compiled.uses_old_self = program.references().has_variable("oldSelf");
    compiled.program = Ok(Some(program));
    if let Some(source) = rule.message_expression.as_deref().filter(|s| !s.is_empty()) {
        compiled.message = Some(match env.compile(source) {
            Ok(p) => match check::check(&p, schema, resource_root, optional_old_self) {
                Some(detail) => Err(format!("messageExpression compilation failed: {detail}")),
                None if check::surely_not(&p, "string") => {
                    Err("messageExpression must evaluate to a string".to_owned())
                }
                None => Ok(p),
            },
            Err(e) => Err(format!(
                "messageExpression compilation failed: {}",
                parse_error_text(&e)
            )),
        });
    }
    if let Some(path) = rule.field_path.as_deref().filter(|p| !p.is_empty()) {
        compiled.field_path = field_path(path, schema).ok();
    }
    compiled
}

/// Upstream's `ValidFieldPath`: a JSON path of field (`.a`) and map key (`['b']`) accessors
/// that the schema declares, normalized to a field path.
fn field_path(json_path: &str, schema: &JSONSchemaProps) -> Result<String, String> {
    let mut path = Path::root();
    let mut current = schema;
    let mut rest = json_path;
    let step = |name: &str, current: &mut &JSONSchemaProps, path: &mut Path| -> Result<(), String> {
        if let Some(props) = current.properties.as_ref() {
            let next = props.get(name).ok_or("does not refer to a valid field")?;
            *path = path.child(name);
            *current = next;
        } else if let Some(values) = value::additional_schema(current) {
            *path = path.key(name);
            *current = values;
        } else {
            return Err("does not refer to a valid field".into());
        }
        Ok(())
    };
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            if end == 0 {
                return Err("unexpected end of JSON path".into());
            }
            step(&after[..end], &mut current, &mut path)?;
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix("['") {
            let end = after.find("']").ok_or("unexpected end of JSON path")?;
            let name = after[..end].replace("\\'", "'").replace("\\\\", "\\");
            step(&name, &mut current, &mut path)?;
            rest = &after[end + 2..];
        } else {
            return Err(format!("expected [ or . but got: {rest}"));
        }
    }
    Ok(path.to_string())
}

/// Whether the value is one upstream's `UnstructuredToVal` would bind (everything but null).
fn absent(value: &Value) -> bool {
    value.is_null()
}

/// The state of one validation: the remaining cost budget and what it found.
struct Run {
    budget: i64,
    errors: Vec<FieldError>,
    warnings: Vec<String>,
}

/// Upstream's deep equality of correlated values (`CachedDeepEqual`): `map` lists compare
/// items by their keys, whatever their order.
fn unchanged(object: &Value, old: &Value, node: &Node) -> bool {
    match (object, old, &node.list_map_keys) {
        (Value::Array(items), Value::Array(old_items), Some(_)) => {
            items.len() == old_items.len()
                && items.iter().all(|item| {
                    node.correlate_item(item, Some(old))
                        .is_some_and(|o| match &node.items {
                            Some(item_node) => unchanged(item, o, item_node),
                            None => item == o,
                        })
                })
        }
        _ => object == old,
    }
}

impl Node {
    /// Validates `object` at `path`; `old` is the correlated old value (for transition rules
    /// and ratcheting); `parent_unchanged` says whether the nearest correlated ancestor did
    /// not change (what decides ratcheting where `old` is absent).
    fn validate(
        &self,
        path: &Path,
        object: &Value,
        old: Option<&Value>,
        parent_unchanged: bool,
        run: &mut Run,
    ) {
        if run.budget < 0 || absent(object) {
            return;
        }
        let old = old.filter(|o| !absent(o));
        let unchanged = match old {
            Some(o) => unchanged(object, o, self),
            None => parent_unchanged,
        };
        self.validate_rules(path, object, old, unchanged, run);
        if run.budget < 0 {
            return;
        }
        for branch in &self.all_of {
            // Upstream does not ratchet allOf errors.
            branch.validate(path, object, old, false, run);
            if run.budget < 0 {
                return;
            }
        }
        match object {
            Value::Array(items) => {
                let Some(item_node) = &self.items else { return };
                for (i, item) in items.iter().enumerate() {
                    let old_item = self.correlate_item(item, old);
                    item_node.validate(&path.index(i), item, old_item, unchanged, run);
                    if run.budget < 0 {
                        return;
                    }
                }
            }
            Value::Object(fields) => {
                let old_fields = old.and_then(Value::as_object).filter(|_| self.map_correlatable);
                let child_parent = unchanged;
                if let Some(values) = &self.additional {
                    for (key, field) in fields {
                        let old_field = old_fields.and_then(|o| o.get(key));
                        values.validate(&path.key(key), field, old_field, child_parent, run);
                        if run.budget < 0 {
                            return;
                        }
                    }
                }
                for (key, field) in fields {
                    if let Some(node) = self.properties.get(key) {
                        let old_field = old_fields.and_then(|o| o.get(key));
                        // `apiVersion` and `kind` of the root are never ratcheted.
                        let ratchet = child_parent
                            && !(self.resource_root
                                && path.as_str().is_empty()
                                && (key == "apiVersion" || key == "kind"));
                        node.validate(&path.child(key), field, old_field, ratchet, run);
                        if run.budget < 0 {
                            return;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The old item with the same map keys, for `map` lists only.
    fn correlate_item<'a>(&self, item: &Value, old: Option<&'a Value>) -> Option<&'a Value> {
        let keys = self.list_map_keys.as_ref()?;
        let old_items = old?.as_array()?;
        old_items
            .iter()
            .find(|candidate| keys.iter().all(|k| candidate.get(k) == item.get(k)))
    }

    fn invalid(&self, path: &Path, detail: impl Into<String>) -> FieldError {
        FieldError::invalid(path, self.type_name.as_str(), detail)
    }

    fn validate_rules(
        &self,
        path: &Path,
        object: &Value,
        old: Option<&Value>,
        unchanged: bool,
        run: &mut Run,
    ) {
        let Some(schema) = &self.schema else { return };
        if self.rules.is_empty() {
            return;
        }
        if run.budget <= 0 {
            run.errors.push(self.invalid(path, "validation failed due to running out of cost budget, no further validation rules will be run"));
            run.budget = -1;
            return;
        }
        let env = library::env();
        let self_value = value::to_cel(object, schema, self.resource_root);
        let old_value = old.map(|o| value::to_cel(o, schema, self.resource_root));
        let mut shapes: HashMap<String, Shape> = HashMap::new();
        let shape = cost::value_shape(object);
        if let Some(o) = old {
            shapes.insert("oldSelf".into(), cost::value_shape(o));
        }
        shapes.insert("self".into(), shape);
        for compiled in &self.rules {
            let rule = &compiled.rule;
            let program = match &compiled.program {
                Err(detail) => {
                    run.errors
                        .push(self.invalid(path, format!("rule compile error: {detail}")));
                    continue;
                }
                Ok(None) => continue,
                Ok(Some(p)) => p,
            };
            let optional_old_self = rule.optional_old_self == Some(true);
            if compiled.uses_old_self && old_value.is_none() && !optional_old_self {
                continue;
            }
            let mut context = Context::with_env(env.clone());
            bind(&mut context, "self", &self_value);
            if compiled.uses_old_self {
                if optional_old_self {
                    let inner = old_value
                        .as_ref()
                        .and_then(|v| Box::<dyn Val>::try_from(v.clone()).ok());
                    let optional = match inner {
                        Some(v) => Optional::of(v),
                        None => Optional::none(),
                    };
                    context.add_variable_as_val("oldSelf", Box::new(optional));
                } else if let Some(old) = &old_value {
                    bind(&mut context, "oldSelf", old);
                }
            }
            let cost = cost::estimate(program.expression(), &shapes);
            if cost > PER_CALL_LIMIT {
                run.errors.push(self.invalid(
                    path,
                    format!(
                        "'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: {}",
                        rule_error_string(rule)
                    ),
                ));
                run.budget = -1;
                return;
            }
            let cost = i64::try_from(cost).unwrap_or(i64::MAX);
            if cost > run.budget {
                run.errors.push(self.invalid(path, "validation failed due to running out of cost budget, no further validation rules will be run"));
                run.budget = -1;
                return;
            }
            run.budget -= cost;
            let result = program.execute(&context);
            match result {
                Ok(cel::Value::Bool(true)) => continue,
                Ok(cel::Value::Bool(false)) => {}
                Ok(_) => {
                    run.errors.push(self.invalid(
                        path,
                        format!("no such overload evaluating rule: {}", rule_error_string(rule)),
                    ));
                    continue;
                }
                Err(e) => {
                    run.errors.push(self.evaluation_error(path, &e, rule));
                    continue;
                }
            }
            let error_path = match &compiled.field_path {
                Some(relative) if !relative.is_empty() => append_path(path, relative),
                _ => path.clone(),
            };
            let mut detail = None;
            if let Some(Ok(message)) = &compiled.message {
                let cost = cost::estimate(message.expression(), &shapes);
                if cost > PER_CALL_LIMIT {
                    run.errors.push(self.invalid(
                        &error_path,
                        format!(
                            "no further validation rules will be run due to call cost exceeds limit for messageExpression: {}",
                            crate::field::go_quote(rule.message_expression.as_deref().unwrap_or_default())
                        ),
                    ));
                    run.budget = -1;
                    return;
                }
                let cost = i64::try_from(cost).unwrap_or(i64::MAX);
                if cost > run.budget {
                    run.errors.push(self.invalid(&error_path, "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run"));
                    run.budget = -1;
                    return;
                }
                run.budget -= cost;
                // Errors, non-strings and unusable strings fall back to the message, as upstream.
                if let Ok(cel::Value::String(text)) = message.execute(&context) {
                    let trimmed = text.trim();
                    if !trimmed.is_empty() && trimmed.len() <= MAX_MESSAGE_BYTES && !trimmed.contains('\n') {
                        detail = Some(trimmed.to_owned());
                    }
                }
            }
            let detail = detail.unwrap_or_else(|| rule_message_or_default(rule));
            let bad_value = match self.type_name.as_str() {
                "object" | "array" => BadValue::Omitted,
                _ => BadValue::from(object.clone()),
            };
            run.report(
                compiled.uses_old_self,
                unchanged,
                error_for_reason(&error_path, bad_value, detail, rule.reason.as_deref()),
            );
        }
    }

    fn evaluation_error(&self, path: &Path, error: &ExecutionError, rule: &ValidationRule) -> FieldError {
        let text = library::error_text(error);
        if text.starts_with("no such overload") {
            self.invalid(
                path,
                format!(
                    "'{text}': call arguments did not match a supported operator, function or macro signature for rule: {}",
                    rule_error_string(rule)
                ),
            )
        } else {
            self.invalid(
                path,
                format!("{text} evaluating rule: {}", rule_error_string(rule)),
            )
        }
    }
}

fn bind(context: &mut Context<'_, '_>, name: &str, value: &cel::Value) {
    if let Ok(boxed) = Box::<dyn Val>::try_from(value.clone()) {
        context.add_variable_as_val(name, boxed);
    }
}

/// `path` followed by a normalized relative path (`spec.a[b]` after `spec` reads
/// `spec.spec.a[b]`, as upstream's `Child` with a dotted name does).
fn append_path(path: &Path, relative: &str) -> Path {
    path.child(relative)
}

fn rule_error_string(rule: &ValidationRule) -> String {
    match rule.message.as_deref().map(str::trim) {
        Some(message) if !message.is_empty() => message.to_owned(),
        _ => rule.rule.trim().to_owned(),
    }
}

fn rule_message_or_default(rule: &ValidationRule) -> String {
    match rule.message.as_deref() {
        Some(message) if !message.is_empty() => message.trim().to_owned(),
        _ => format!("failed rule: {}", rule_error_string(rule)),
    }
}

fn error_for_reason(path: &Path, value: BadValue, detail: String, reason: Option<&str>) -> FieldError {
    let mut error = match reason {
        Some("FieldValueForbidden") => FieldError::forbidden(path, detail),
        Some("FieldValueRequired") => FieldError::required(path, detail),
        Some("FieldValueDuplicate") => FieldError::duplicate(path, BadValue::Omitted),
        _ => FieldError::invalid(path, BadValue::Omitted, detail),
    };
    if matches!(error.error_type, ErrorType::Invalid | ErrorType::Duplicate) {
        error.bad_value = value;
    }
    error
}

/// The errors CRD validation reports for the rules of `schema` (an `openAPIV3Schema` at
/// `path`): rules and `messageExpression`s that do not compile, estimated costs over the
/// limits, `oldSelf` where old values cannot be correlated and `optionalOldSelf` without
/// `oldSelf`, with upstream's paths and messages.
pub fn compile_errors(schema: &JSONSchemaProps, path: &Path) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut total: u64 = 0;
    let scope = Scope {
        resource: true,
        cardinality: Some(1),
        uncorrelatable: None,
    };
    schema_compile_errors(schema, path, &scope, &mut total, &mut errors);
    if total > STATIC_SCHEMA_LIMIT {
        errors.push(FieldError::forbidden(
            path,
            cost_error_message(
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                total,
                STATIC_SCHEMA_LIMIT,
            ),
        ));
    }
    errors
}

struct Scope {
    /// The node is a resource (the root, or an embedded resource).
    resource: bool,
    /// How many values of this node one object may hold, when bounded.
    cardinality: Option<u64>,
    /// The list above this node whose items cannot be matched with old ones.
    uncorrelatable: Option<Path>,
}

/// How many children one value of `schema` may have, when bounded.
fn max_elements(schema: &JSONSchemaProps) -> Option<u64> {
    match schema.type_.as_deref() {
        Some("array") => schema.max_items.map(|m| u64::try_from(m).unwrap_or(0)),
        Some("object") if value::additional_schema(schema).is_some() => {
            schema.max_properties.map(|m| u64::try_from(m).unwrap_or(0))
        }
        _ => Some(1),
    }
}

/// A rule as Go's `json.Marshal` prints upstream's `ValidationRule` (fields in declaration
/// order, empty ones omitted).
fn rule_json(rule: &ValidationRule) -> BadValue {
    // Go escapes HTML characters in JSON strings.
    let quote = |s: &str| {
        serde_json::to_string(s)
            .unwrap_or_default()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026")
            .replace('\u{2028}', "\\u2028")
            .replace('\u{2029}', "\\u2029")
    };
    let mut fields = vec![format!("\"rule\":{}", quote(&rule.rule))];
    let optional = [
        ("message", &rule.message),
        ("messageExpression", &rule.message_expression),
        ("reason", &rule.reason),
        ("fieldPath", &rule.field_path),
    ];
    for (key, value) in optional {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            fields.push(format!("\"{key}\":{}", quote(v)));
        }
    }
    if let Some(b) = rule.optional_old_self {
        fields.push(format!("\"optionalOldSelf\":{b}"));
    }
    BadValue::Plain(format!("{{{}}}", fields.join(",")))
}

fn schema_compile_errors(
    schema: &JSONSchemaProps,
    path: &Path,
    scope: &Scope,
    total: &mut u64,
    errors: &mut Vec<FieldError>,
) {
    if let Some(rules) = schema.x_kubernetes_validations.as_ref().filter(|r| !r.is_empty()) {
        let shape = cost::schema_shape(schema);
        let shapes = HashMap::from([("self".to_owned(), shape.clone()), ("oldSelf".to_owned(), shape)]);
        let cardinality = scope
            .cardinality
            .unwrap_or_else(|| cost::unbounded_cardinality(schema));
        let rules_path = path.child("x-kubernetes-validations");
        for (i, rule) in rules.iter().enumerate() {
            let rule_path = rules_path.index(i);
            if rule.rule.trim().is_empty() {
                continue;
            }
            let compiled = compile(rule, schema, scope.resource);
            if let Ok(Some(program)) = &compiled.program {
                let expression_cost =
                    cost::estimate(program.expression(), &shapes).saturating_mul(cardinality);
                if expression_cost > STATIC_RULE_LIMIT {
                    errors.push(FieldError::forbidden(
                        &rule_path.child("rule"),
                        cost_error_message("estimated rule cost", expression_cost, STATIC_RULE_LIMIT),
                    ));
                }
                *total = total.saturating_add(expression_cost);
            }
            if let Err(detail) = &compiled.program {
                errors.push(FieldError::invalid(
                    &rule_path.child("rule"),
                    rule_json(rule),
                    detail.clone(),
                ));
            }
            match &compiled.message {
                Some(Err(detail)) => {
                    errors.push(FieldError::invalid(
                        &rule_path.child("messageExpression"),
                        rule_json(rule),
                        detail.clone(),
                    ));
                }
                Some(Ok(message)) => {
                    let message_cost = cost::estimate(message.expression(), &shapes);
                    if message_cost > STATIC_RULE_LIMIT {
                        errors.push(FieldError::forbidden(
                            &rule_path.child("messageExpression"),
                            cost_error_message(
                                "estimated messageExpression cost",
                                message_cost,
                                STATIC_RULE_LIMIT,
                            ),
                        ));
                    }
                    *total = total.saturating_add(message_cost);
                }
                None => {}
            }
            if compiled.program.is_err() {
                continue;
            }
            if compiled.uses_old_self {
                if let Some(uncorrelatable) = &scope.uncorrelatable {
                    errors.push(FieldError::invalid(
                        &rule_path.child("rule"),
                        rule.rule.as_str(),
                        format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {uncorrelatable}"),
                    ));
                }
            } else if let Some(optional) = rule.optional_old_self {
                errors.push(FieldError::invalid(
                    &rule_path.child("optionalOldSelf"),
                    optional,
                    "may not be set if oldSelf is not used in rule",
                ));
            }
        }
    }
    let child_cardinality = match (scope.cardinality, max_elements(schema)) {
        (Some(c), Some(m)) => Some(c.saturating_mul(m)),
        _ => None,
    };
    if let Some(values) = value::additional_schema(schema) {
        let child = Scope {
            resource: values.x_kubernetes_embedded_resource == Some(true),
            cardinality: child_cardinality,
            uncorrelatable: scope.uncorrelatable.clone(),
        };
        schema_compile_errors(values, &path.child("additionalProperties"), &child, total, errors);
    }
    for (name, prop) in schema.properties.iter().flatten() {
        let correlatable = matches!(
            schema.x_kubernetes_map_type.as_deref(),
            None | Some("granular" | "atomic")
        );
        let child = Scope {
            resource: prop.x_kubernetes_embedded_resource == Some(true),
            cardinality: child_cardinality,
            uncorrelatable: scope
                .uncorrelatable
                .clone()
                .or_else(|| (!correlatable).then(|| path.clone())),
        };
        schema_compile_errors(prop, &path.child("properties").key(name), &child, total, errors);
    }
    if let Some(items) = value::items_schema(schema) {
        let is_map_list = schema.x_kubernetes_list_type.as_deref() == Some("map");
        let child = Scope {
            resource: items.x_kubernetes_embedded_resource == Some(true),
            cardinality: child_cardinality,
            uncorrelatable: scope
                .uncorrelatable
                .clone()
                .or_else(|| (!is_map_list).then(|| path.clone())),
        };
        schema_compile_errors(items, &path.child("items"), &child, total, errors);
    }
}

/// Upstream's `getCostErrorMessage`.
fn cost_error_message(name: &str, cost: u64, limit: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let factor = cost as f64 / limit as f64;
    let factor = if factor > 100.0 {
        "more than 100x".to_owned()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{name} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::needless_pass_by_value
    )]

    use serde_json::json;

    use super::*;

    fn schema(value: Value) -> JSONSchemaProps {
        serde_json::from_value(value).unwrap()
    }

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    /// A schema whose `spec` has the given properties and rule.
    fn spec_rule(properties: Value, rule: Value) -> JSONSchemaProps {
        schema(json!({
            "type": "object",
            "properties": {"spec": {
                "type": "object",
                "properties": properties,
                "x-kubernetes-validations": [rule],
            }},
        }))
    }

    fn check(properties: Value, spec: Value, valid: &[&str], invalid: &[(&str, &str)]) {
        for rule in valid {
            let s = spec_rule(properties.clone(), json!({"rule": rule}));
            let errors = validate(&s, &json!({"spec": spec}), None);
            assert!(errors.is_empty(), "{rule}: {:?}", messages(&errors));
        }
        for (rule, expected) in invalid {
            let s = spec_rule(properties.clone(), json!({"rule": rule}));
            let errors = messages(&validate(&s, &json!({"spec": spec}), None));
            assert_eq!(errors.len(), 1, "{rule}: {errors:?}");
            assert!(
                errors[0].contains(expected),
                "{rule}: {errors:?} lacks {expected}"
            );
        }
    }

    #[test]
    fn types_follow_the_schema() {
        check(
            json!({
                "i": {"type": "integer"}, "d": {"type": "number"}, "s": {"type": "string"},
                "b": {"type": "boolean"}, "ios": {"x-kubernetes-int-or-string": true},
                "ios2": {"x-kubernetes-int-or-string": true},
                "l": {"type": "array", "items": {"type": "string"}},
                "m": {"type": "object", "additionalProperties": {"type": "integer"}},
                "o": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}},
                "namespace": {"type": "string"}, "x-y": {"type": "string"},
            }),
            json!({
                "i": 9_223_372_036_854_775_807_i64, "d": 1, "s": "abc", "b": true, "ios": 5, "ios2": "50%",
                "l": ["a", "b"], "m": {"k": 1}, "o": {"a": "x"}, "namespace": "ns", "x-y": "z",
            }),
            &[
                "type(self.i) == int",
                "type(self.d) == double",
                "self.d == 1.0",
                "self.s == 'abc' && self.b",
                "type(self.ios) == int && type(self.ios2) == string",
                "self.l == ['a', 'b'] && self.l.size() == 2",
                "self.m['k'] == 1 && 'k' in self.m",
                "has(self.o.a) && !has(self.o.b)",
                "self.__namespace__ == 'ns' && self.x__dash__y == 'z'",
                "self.all(k, k != '')",
            ],
            &[
                (
                    "self.i + 1 == 0",
                    "integer overflow evaluating rule: self.i + 1 == 0",
                ),
                ("1 / 0 == 1 / 0", "division by zero evaluating rule"),
                ("self.o.b == 'x'", "no such key: b evaluating rule"),
                ("self.l[5] == 'x'", "index out of bounds: 5"),
            ],
        );
    }

    #[test]
    fn failures_read_like_upstream() {
        let s = schema(json!({
            "type": "object",
            "properties": {"spec": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer", "x-kubernetes-validations": [
                        {"rule": "self >= 0", "message": "must be non-negative"},
                    ]},
                    "name": {"type": "string", "x-kubernetes-validations": [
                        {"rule": "self.startsWith('a')", "reason": "FieldValueForbidden"},
                    ]},
                    "min": {"type": "integer"},
                },
                "x-kubernetes-validations": [
                    {"rule": "self.min <= self.replicas"},
                    {"rule": "self.min <= self.replicas", "reason": "FieldValueRequired", "fieldPath": ".min",
                     "messageExpression": "'min ' + string(self.min) + ' exceeds replicas'"},
                    {"rule": "self.min <= self.replicas", "reason": "FieldValueDuplicate", "messageExpression": "''"},
                ],
            }},
        }));
        let errors = validate(
            &s,
            &json!({"spec": {"replicas": -1, "name": "b", "min": 3}}),
            None,
        );
        assert_eq!(
            messages(&errors),
            [
                "spec: Invalid value: failed rule: self.min <= self.replicas",
                "spec.min: Required value: min 3 exceeds replicas",
                "spec: Duplicate value",
                "spec.name: Forbidden: failed rule: self.startsWith('a')",
                "spec.replicas: Invalid value: -1: must be non-negative",
            ]
        );
        assert_eq!(errors[1].error_type.cause_type(), "FieldValueRequired");
        assert!(validate(&s, &json!({"spec": {"replicas": 3, "name": "a", "min": 1}}), None).is_empty());
    }

    #[test]
    fn message_expressions_fall_back_and_field_paths_point_inside() {
        let s = schema(json!({
            "type": "object",
            "properties": {"spec": {
                "type": "object",
                "properties": {
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "x": {"type": "integer"},
                },
                "x-kubernetes-validations": [
                    {"rule": "self.x > 0", "message": "x must be positive",
                     "messageExpression": "self.missing + 'x'", "fieldPath": ".labels['a.b']"},
                    {"rule": "self.x > 0", "messageExpression": "'   '"},
                    {"rule": "self.x > 0", "messageExpression": "'x is ' + string(self.x) + '  '", "fieldPath": ".x"},
                ],
            }},
        }));
        assert_eq!(
            messages(&validate(&s, &json!({"spec": {"x": 0}}), None)),
            [
                "spec.labels[a.b]: Invalid value: x must be positive",
                "spec: Invalid value: failed rule: self.x > 0",
                "spec.x: Invalid value: x is 0",
            ]
        );
    }

    #[test]
    fn items_additional_properties_and_root() {
        let s = schema(json!({
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.metadata.name.startsWith('x')", "message": "bad name"},
                {"rule": "!has(self.metadata.generateName) && self.kind == 'K' && self.apiVersion == 'x/v1'"},
            ],
            "properties": {
                "metadata": {"type": "object"},
                "list": {"type": "array", "items": {"type": "number",
                    "x-kubernetes-validations": [{"rule": "int(self) % 2 == 1", "message": "gotta be odd"}]}},
                "map": {"type": "object", "additionalProperties": {"type": "string",
                    "x-kubernetes-validations": [{"rule": "self.size() == 5", "message": "len must be 5"}]}},
            },
        }));
        let object = json!({
            "apiVersion": "x/v1", "kind": "K", "metadata": {"name": "y", "labels": {"a": "b"}},
            "list": [1, 2], "map": {"key": "value", "key2": "value2"},
        });
        assert_eq!(
            messages(&validate(&s, &object, None)),
            [
                "<root>: Invalid value: bad name".replace("<root>: ", ": "),
                "list[1]: Invalid value: 2: gotta be odd".into(),
                "map[key2]: Invalid value: \"value2\": len must be 5".into(),
            ]
        );
    }

    fn transition_schema(list_type: &str) -> JSONSchemaProps {
        schema(json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "immutable": {"type": "string", "x-kubernetes-validations": [
                        {"rule": "self == oldSelf", "message": "is immutable"}]},
                    "grow": {"type": "integer", "x-kubernetes-validations": [
                        {"rule": "!oldSelf.hasValue() || self >= oldSelf.value()", "optionalOldSelf": true,
                         "message": "may only grow"},
                        {"rule": "oldSelf.hasValue() || self < 10", "optionalOldSelf": true,
                         "message": "starts small"}]},
                    "items": {"type": "array", "x-kubernetes-list-type": list_type, "maxItems": 10,
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "properties": {
                            "name": {"type": "string", "maxLength": 10}, "value": {"type": "string", "maxLength": 10}},
                            "x-kubernetes-validations": [{"rule": "self.value == oldSelf.value",
                                "message": "value is immutable"}]}},
                }},
            },
        }))
    }

    #[test]
    fn transition_rules_need_a_correlated_old_value() {
        let s = transition_schema("map");
        let old = json!({"spec": {"immutable": "a", "grow": 5, "items": [{"name": "x", "value": "1"}]}});
        // Creation: no oldSelf, transition rules skipped, optional ones see none.
        let new = json!({"spec": {"immutable": "b", "grow": 50, "items": [{"name": "x", "value": "2"}]}});
        assert_eq!(
            messages(&validate(&s, &new, None)),
            ["spec.grow: Invalid value: 50: starts small"]
        );
        let new = json!({"spec": {"immutable": "b", "grow": 4,
            "items": [{"name": "y", "value": "9"}, {"name": "x", "value": "2"}]}});
        assert_eq!(
            messages(&validate(&s, &new, Some(&old))),
            [
                "spec.grow: Invalid value: 4: may only grow",
                "spec.immutable: Invalid value: \"b\": is immutable",
                "spec.items[1]: Invalid value: value is immutable",
            ]
        );
        // Atomic lists do not correlate items.
        let s = transition_schema("atomic");
        let new = json!({"spec": {"items": [{"name": "x", "value": "2"}]}});
        assert!(validate(&s, &new, Some(&old)).is_empty());
        let errors = compile_errors(&s, &Path::new("openAPIV3Schema"));
        assert_eq!(
            messages(&errors),
            [
                "openAPIV3Schema.properties[spec].properties[items].items.x-kubernetes-validations[0].rule: Invalid value: \"self.value == oldSelf.value\": oldSelf cannot be used on the uncorrelatable portion of the schema within openAPIV3Schema.properties[spec].properties[items]"
            ]
        );
    }

    #[test]
    fn unchanged_values_are_ratcheted() {
        let s = schema(json!({
            "type": "object",
            "properties": {
                "foo": {"type": "string", "x-kubernetes-validations": [
                    {"rule": "self == 'bar'", "message": "gotta be bar"}]},
                "list": {"type": "array", "items": {"type": "object", "properties": {
                    "bar": {"type": "string", "x-kubernetes-validations": [
                        {"rule": "self == 'baz'", "message": "gotta be baz"}]}}}},
                "other": {"type": "string"},
            },
        }));
        let old = json!({"foo": "baz", "list": [{"bar": "bar"}], "other": "a"});
        let new = json!({"foo": "baz", "list": [{"bar": "bar"}], "other": "b"});
        let outcome = Rules::new(&s).evaluate(&new, Some(&old));
        assert!(outcome.errors.is_empty(), "{outcome:?}");
        assert_eq!(
            outcome.warnings,
            [
                "foo: Invalid value: \"baz\": gotta be bar",
                "list[0].bar: Invalid value: \"bar\": gotta be baz",
            ]
        );
        // A changed atomic list is checked again, and so is a changed field.
        let new = json!({"foo": "qux", "list": [{"bar": "bar"}, {"bar": "baz"}]});
        assert_eq!(
            messages(&validate(&s, &new, Some(&old))),
            [
                "foo: Invalid value: \"qux\": gotta be bar",
                "list[0].bar: Invalid value: \"bar\": gotta be baz",
            ]
        );
    }

    #[test]
    fn compile_errors_read_like_upstream() {
        let s = schema(json!({
            "type": "object",
            "properties": {"spec": {"type": "object", "maxProperties": 3,
                "properties": {"a": {"type": "string", "maxLength": 10}},
                "x-kubernetes-validations": [
                    {"rule": "self.a == "},
                    {"rule": "foo == 1"},
                    {"rule": "self.a == 'x'", "optionalOldSelf": true},
                    {"rule": "true", "messageExpression": "'a' +"},
                    {"rule": "self.a == 'x' && self.b < 1"},
                    {"rule": "self.all(k, k == 'a') && has(self.a)"},
                    {"rule": "size(self.a)"},
                    {"rule": "true", "messageExpression": "size(self.a) > 1"},
                ]}},
        }));
        let errors = messages(&compile_errors(&s, &Path::new("openAPIV3Schema")));
        let base = "openAPIV3Schema.properties[spec].x-kubernetes-validations";
        assert_eq!(errors.len(), 7, "{errors:?}");
        assert_eq!(
            errors[5],
            format!(
                "{base}[6].rule: Invalid value: {{\"rule\":\"size(self.a)\"}}: cel expression must evaluate to a bool"
            )
        );
        assert_eq!(
            errors[6],
            format!(
                "{base}[7].messageExpression: Invalid value: {{\"rule\":\"true\",\"messageExpression\":\"size(self.a) \\u003e 1\"}}: messageExpression must evaluate to a string"
            )
        );
        assert_eq!(
            errors[4],
            format!(
                "{base}[4].rule: Invalid value: {{\"rule\":\"self.a == 'x' \\u0026\\u0026 self.b \\u003c 1\"}}: compilation failed: ERROR: <input>:1:22: undefined field 'b'\n | self.a == 'x' && self.b < 1\n | .....................^"
            )
        );
        assert!(errors[0].starts_with(&format!(
            "{base}[0].rule: Invalid value: {{\"rule\":\"self.a == \"}}: compilation failed: ERROR: <input>:1:"
        )), "{errors:?}");
        assert!(errors[1].contains("undeclared reference to 'foo'"), "{errors:?}");
        assert_eq!(
            errors[2],
            format!(
                "{base}[2].optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule"
            )
        );
        assert!(
            errors[3].starts_with(&format!("{base}[3].messageExpression: Invalid value: ")),
            "{errors:?}"
        );
        assert!(
            errors[3].contains("messageExpression compilation failed"),
            "{errors:?}"
        );
    }

    #[test]
    fn costs_are_limited() {
        // An unbounded list of unbounded strings checked with a regex on every item.
        let expensive = schema(json!({
            "type": "object",
            "properties": {"list": {"type": "array", "items": {"type": "string"},
                "x-kubernetes-validations": [{"rule": "self.all(x, x.matches('^[a-z]+$'))"}]}},
        }));
        let errors = messages(&compile_errors(&expensive, &Path::new("s")));
        assert!(
            errors.iter().any(|e| e.starts_with("s.properties[list].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of more than 100x")),
            "{errors:?}"
        );
        // The same rule with bounds is fine.
        let bounded = schema(json!({
            "type": "object",
            "properties": {"list": {"type": "array", "maxItems": 10, "items": {"type": "string", "maxLength": 64},
                "x-kubernetes-validations": [{"rule": "self.all(x, x.matches('^[a-z]+$'))"}]}},
        }));
        assert!(compile_errors(&bounded, &Path::new("s")).is_empty());
        // At runtime, a large object runs out of the per-call limit.
        let item = "a".repeat(1000);
        let big = json!({"list": vec![item; 20_000]});
        let errors = messages(&validate(&expensive, &big, None));
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].contains("no further validation rules will be run due to call cost exceeds limit for rule: self.all(x, x.matches('^[a-z]+$'))"),
            "{errors:?}"
        );
        // Functions of the data are sized by the data.
        let split = schema(json!({
            "type": "object",
            "properties": {"s": {"type": "string", "x-kubernetes-validations": [
                {"rule": "self.split(',').all(p, p.matches('^[a-z]+$'))"},
                {"rule": "!oldSelf.hasValue() || oldSelf.value().split(',').all(p, p.matches('^[a-z]+$'))",
                 "optionalOldSelf": true},
            ]}},
        }));
        let s = json!({"s": vec!["abc"; 1000].join(",")});
        let outcome = Rules::new(&split).evaluate(&s, Some(&s));
        assert_eq!(outcome, Outcome::default());
        let small = json!({"list": ["abc", "DEF"]});
        assert_eq!(
            messages(&validate(&expensive, &small, None)),
            ["list: Invalid value: failed rule: self.all(x, x.matches('^[a-z]+$'))"]
        );
    }

    #[test]
    fn kubernetes_library() {
        check(
            json!({
                "s": {"type": "string"}, "l": {"type": "array", "items": {"type": "integer"}},
                "u": {"type": "string"},
            }),
            json!({"s": "Hello World", "l": [1, 2, 3], "u": "https://example.com:80/path?query=val"}),
            &[
                "self.s.lowerAscii() == 'hello world' && self.s.upperAscii() == 'HELLO WORLD'",
                "self.s.split(' ') == ['Hello', 'World'] && ['a', 'b'].join('-') == 'a-b'",
                "self.s.indexOf('o') == 4 && self.s.replace('o', '0') == 'Hell0 W0rld'",
                "self.s.substring(6) == 'World' && '  x '.trim() == 'x'",
                "self.s.matches('^H.*d$') && self.s.find('[A-Z]') == 'H'",
                "self.s.findAll('[A-Z]') == ['H', 'W'] && self.s.findAll('o', 1) == ['o']",
                "self.l.isSorted() && self.l.sum() == 6 && self.l.min() == 1 && self.l.max() == 3",
                "self.l.indexOf(2) == 1 && [1, 2, 1].lastIndexOf(1) == 2",
                "sets.contains(self.l, [1, 2]) && sets.intersects(self.l, [3, 4]) && sets.equivalent([1, 2], [2, 1])",
                "isURL(self.u) && url(self.u).getScheme() == 'https' && url(self.u).getHost() == 'example.com:80'",
                "url(self.u).getHostname() == 'example.com' && url(self.u).getPort() == '80'",
                "url(self.u).getEscapedPath() == '/path' && url(self.u).getQuery() == 'query=val'",
                "!isURL('not a url')",
                "self.l.exists_one(x, x == 2) && self.l.map(x, x * 2) == [2, 4, 6] && self.l.filter(x, x > 1).size() == 2",
                "optional.of(1).hasValue() && optional.none().orValue(2) == 2",
                "quantity('200M').compareTo(quantity('0.2G')) == 0 && quantity('50M').compareTo(quantity('50Mi')) == -1",
                "quantity('150Mi').isGreaterThan(quantity('100Mi')) && quantity('50M').isLessThan(quantity('100M'))",
                "quantity('1') == quantity('1000m') && quantity('50k').asInteger() == 50000",
                "isQuantity('1.3Gi') && !isQuantity('200K') && !isQuantity('Three')",
                "quantity('50k').isInteger() && !quantity('9999999999999999999999999999999999999G').isInteger()",
                "isIP('127.0.0.1') && isIP('::1') && !isIP('127.0.0.256') && !isIP(':::1') && !isIP('::ffff:1.2.3.4')",
                "!isIP('fe80::1%eth0') && !isIP('1.01.1.1') && ip('127.0.0.1').family() == 4 && ip('::1').family() == 6",
                "ip.isCanonical('2001:db8::abcd') && !ip.isCanonical('2001:DB8::ABCD') && ip('::1').isLoopback()",
                "ip('169.254.169.254').isLinkLocalUnicast() && ip('ff02::1').isLinkLocalMulticast() && ip('0.0.0.0').isUnspecified()",
                "ip('192.168.0.1').isGlobalUnicast() && !ip('255.255.255.255').isGlobalUnicast() && !ip('ff00::1').isGlobalUnicast()",
                "isCIDR('192.168.0.0/16') && !isCIDR('192.168.0.0/33') && !isCIDR('::1/129') && cidr('::1/128').prefixLength() == 128",
                "cidr('192.168.0.0/16').containsIP('192.168.1.2') && !cidr('192.168.0.0/16').containsIP(ip('10.0.0.1'))",
                "cidr('192.168.0.0/16').containsCIDR('192.168.1.0/24') && !cidr('192.168.1.0/24').containsCIDR(cidr('192.168.0.0/16'))",
                "cidr('192.168.1.5/16').masked() == cidr('192.168.0.0/16') && cidr('192.168.1.5/16').ip() == ip('192.168.1.5')",
                "quantity('-1').sign() == -1 && quantity('1.5').asApproximateFloat() == 1.5",
            ],
            &[("[].min() == 1", "min(list) argument must not be empty")],
        );
    }

    #[test]
    fn rules_are_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Rules>();
    }
}
