//! The part of cel-go's type checker that matters most for CRD authors, over cel-rust's
//! parsed expressions: references to undeclared variables and selections of fields that the
//! structural schema does not declare (`undefined field 'foo'`), with cel-go's error text
//! and position.
//!
//! Lenient where it cannot know: anything typed by a function call is not checked further.

use cel::Program;
use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;

use super::value::{additional_schema, escape, items_schema};

/// The static type of an expression, as far as this checker follows it.
#[derive(Clone, Copy)]
enum Ty<'a> {
    /// A value of a schema; `true` when it is a resource (root or embedded).
    Schema(&'a JSONSchemaProps, bool),
    /// The `metadata` of a resource: `name` and `generateName`.
    Meta,
    Unknown,
}

const NAMESPACES: &[&str] = &[
    "optional", "sets", "strings", "lists", "math", "cel", "base64", "ip",
];
const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];

/// The first error of `program` as cel-go's checker reports it (without the
/// `compilation failed: ` prefix), if any.
pub(super) fn check(
    program: &Program,
    schema: &JSONSchemaProps,
    resource_root: bool,
    optional_old_self: bool,
) -> Option<String> {
    let source = &program.source_info().source;
    let old_self = if optional_old_self {
        Ty::Unknown
    } else {
        Ty::Schema(schema, resource_root)
    };
    let mut scope: Vec<(String, Ty<'_>)> = vec![
        ("self".to_owned(), Ty::Schema(schema, resource_root)),
        ("oldSelf".to_owned(), old_self),
    ];
    let mut checker = Checker { error: None };
    checker.walk(program.expression(), &mut scope);
    let (id, message) = checker.error?;
    let offset = program
        .source_info()
        .offset_for(id)
        .map_or(0, |(start, _)| start as usize);
    Some(render(source, offset, &message))
}

/// cel-go's `ERROR: <input>:L:C: message` with the source line and a caret.
fn render(source: &str, offset: usize, message: &str) -> String {
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = source.get(line_start..offset).map_or(0, |s| s.chars().count());
    let text = source[line_start..].lines().next().unwrap_or_default();
    format!(
        "ERROR: <input>:{line}:{}: {message}\n | {text}\n | {}^",
        column + 1,
        ".".repeat(column)
    )
}

struct Checker {
    error: Option<(u64, String)>,
}

impl Checker {
    fn fail(&mut self, id: u64, message: String) -> Ty<'static> {
        if self.error.is_none() {
            self.error = Some((id, message));
        }
        Ty::Unknown
    }

    fn walk<'a>(&mut self, expr: &IdedExpr, scope: &mut Vec<(String, Ty<'a>)>) -> Ty<'a> {
        match &expr.expr {
            Expr::Ident(name) => {
                if let Some((_, ty)) = scope.iter().rev().find(|(n, _)| n == name) {
                    return *ty;
                }
                if TYPE_NAMES.contains(&name.as_str()) {
                    return Ty::Unknown;
                }
                self.fail(
                    expr.id,
                    format!("undeclared reference to '{name}' (in container '')"),
                )
            }
            Expr::Select(select) => {
                if matches!(&select.operand.expr, Expr::Ident(ns) if NAMESPACES.contains(&ns.as_str())) {
                    return Ty::Unknown;
                }
                let operand = self.walk(&select.operand, scope);
                self.select(expr.id, operand, &select.field)
            }
            Expr::Call(call) => {
                if let Some(t) = &call.target
                    && !matches!(&t.expr, Expr::Ident(ns) if NAMESPACES.contains(&ns.as_str()))
                {
                    self.walk(t, scope);
                }
                let args: Vec<Ty<'a>> = call.args.iter().map(|a| self.walk(a, scope)).collect();
                match (call.func_name.as_str(), args.first()) {
                    ("_[_]", Some(Ty::Schema(s, _))) => element(s),
                    _ => Ty::Unknown,
                }
            }
            Expr::List(list) => {
                for e in &list.elements {
                    self.walk(e, scope);
                }
                Ty::Unknown
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    match &entry.expr {
                        EntryExpr::MapEntry(e) => {
                            self.walk(&e.key, scope);
                            self.walk(&e.value, scope);
                        }
                        EntryExpr::StructField(f) => {
                            self.walk(&f.value, scope);
                        }
                    }
                }
                Ty::Unknown
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.walk(&f.value, scope);
                    }
                }
                Ty::Unknown
            }
            Expr::Comprehension(c) => {
                let range = self.walk(&c.iter_range, scope);
                self.walk(&c.accu_init, scope);
                let depth = scope.len();
                let (first, second) = match range {
                    Ty::Schema(s, _) if s.type_.as_deref() == Some("array") => (Ty::Unknown, element(s)),
                    Ty::Schema(s, _) => (Ty::Unknown, element(s)),
                    _ => (Ty::Unknown, Ty::Unknown),
                };
                match &c.iter_var2 {
                    // One variable: list elements, or map keys.
                    None => {
                        let ty = match range {
                            Ty::Schema(s, _) if s.type_.as_deref() == Some("array") => second,
                            _ => first,
                        };
                        scope.push((c.iter_var.clone(), ty));
                    }
                    Some(v2) => {
                        scope.push((c.iter_var.clone(), first));
                        scope.push((v2.clone(), second));
                    }
                }
                scope.push((c.accu_var.clone(), Ty::Unknown));
                self.walk(&c.loop_cond, scope);
                self.walk(&c.loop_step, scope);
                self.walk(&c.result, scope);
                scope.truncate(depth);
                Ty::Unknown
            }
            Expr::Literal(_) | Expr::Unspecified => Ty::Unknown,
        }
    }

    fn select<'a>(&mut self, id: u64, operand: Ty<'a>, field: &str) -> Ty<'a> {
        match operand {
            Ty::Meta => {
                if field == "name" || field == "generateName" {
                    Ty::Unknown
                } else {
                    self.fail(id, format!("undefined field '{field}'"))
                }
            }
            Ty::Schema(s, resource) => {
                if resource {
                    match field {
                        "apiVersion" | "kind" => return Ty::Unknown,
                        "metadata" => return Ty::Meta,
                        _ => {}
                    }
                }
                if let Some(values) = additional_schema(s) {
                    return Ty::Schema(values, values.x_kubernetes_embedded_resource == Some(true));
                }
                let Some(properties) = s.properties.as_ref() else {
                    return if resource {
                        self.fail(id, format!("undefined field '{field}'"))
                    } else {
                        Ty::Unknown
                    };
                };
                match properties
                    .iter()
                    .find(|(name, _)| escape(name).as_deref() == Some(field))
                {
                    Some((_, prop)) => Ty::Schema(prop, prop.x_kubernetes_embedded_resource == Some(true)),
                    None => self.fail(id, format!("undefined field '{field}'")),
                }
            }
            Ty::Unknown => Ty::Unknown,
        }
    }
}

fn element(schema: &JSONSchemaProps) -> Ty<'_> {
    match items_schema(schema).or_else(|| additional_schema(schema)) {
        Some(s) => Ty::Schema(s, s.x_kubernetes_embedded_resource == Some(true)),
        None => Ty::Unknown,
    }
}

/// Whether the expression's result is certainly not of `kind` (`bool` or `string`), judging by
/// its outermost form: literals, list and map literals, and operators whose result type is
/// fixed.
pub(super) fn surely_not(program: &Program, kind: &str) -> bool {
    use cel::common::ast::LiteralValue;
    let produced = match &program.expression().expr {
        Expr::Literal(LiteralValue::Boolean(_)) => "bool",
        Expr::Literal(LiteralValue::String(_)) => "string",
        Expr::Literal(LiteralValue::Null) => "null",
        Expr::Literal(_) => "number",
        Expr::List(_) => "list",
        Expr::Map(_) => "map",
        Expr::Call(call) => match call.func_name.as_str() {
            "_==_" | "_!=_" | "_<_" | "_<=_" | "_>_" | "_>=_" | "_&&_" | "_||_" | "!_" | "@in" | "has"
            | "startsWith" | "endsWith" | "contains" | "matches" | "isSorted" => "bool",
            "size" | "_-_" | "_*_" | "_/_" | "_%_" | "-_" | "int" | "double" => "number",
            "lowerAscii" | "upperAscii" | "trim" | "substring" | "replace" | "join" | "string" => "string",
            _ => return false,
        },
        Expr::Comprehension(_) | Expr::Ident(_) | Expr::Select(_) | Expr::Struct(_) | Expr::Unspecified => {
            return false;
        }
    };
    produced != kind
}
