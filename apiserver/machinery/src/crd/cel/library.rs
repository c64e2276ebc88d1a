//! The CEL environment of `x-kubernetes-validations`: cel-rust's standard library with the
//! optional types, strings and lists extensions, plus the Kubernetes CEL library functions of
//! k8s.io/apiserver/pkg/cel/library that CRDs use most (lists `isSorted`/`sum`/`min`/`max`/
//! `indexOf`/`lastIndexOf`, regex `find`/`findAll`, `url`, `sets`, `quantity`, `ip`, `cidr`), and the mapping of
//! evaluation errors to cel-go's texts.
//!
//! Built once per process; holds no per-request state.

// cel-rust's overload signature takes the arguments by value.
#![allow(clippy::needless_pass_by_value)]

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};

use cel::common::types::{INT_TYPE, LIST_TYPE, STRING_TYPE, Type};
use cel::common::value::{CowVal, Val};
use cel::objects::{Key, Map};
use cel::{Env, ExecutionError, Value};

use crate::validation::quantity::ParsedQuantity;

type Ret<'b, 'v> = Result<CowVal<'b, 'v>, ExecutionError>;

/// The shared environment.
pub(super) fn env() -> Arc<Env> {
    static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(build()));
    Arc::clone(&ENV)
}

fn build() -> Env {
    let mut env = Env::stdlib();
    // Each registration can only fail on a name clash, which the tests would show.
    let results = [
        env.add_extension(cel::extensions::strings),
        env.add_extension(cel::extensions::lists),
        env.add_member_overload("isSorted", "list_is_sorted", LIST_TYPE, vec![], is_sorted),
        env.add_member_overload("sum", "list_sum", LIST_TYPE, vec![], sum),
        env.add_member_overload("min", "list_min", LIST_TYPE, vec![], min),
        env.add_member_overload("max", "list_max", LIST_TYPE, vec![], max),
        env.add_member_overload("indexOf", "list_index_of", LIST_TYPE, vec![dyn_type()], index_of),
        env.add_member_overload(
            "lastIndexOf",
            "list_last_index_of",
            LIST_TYPE,
            vec![dyn_type()],
            last_index_of,
        ),
        env.add_member_overload("find", "string_find_string", STRING_TYPE, vec![STRING_TYPE], find),
        env.add_member_overload(
            "findAll",
            "string_find_all_string",
            STRING_TYPE,
            vec![STRING_TYPE],
            find_all,
        ),
        env.add_member_overload(
            "findAll",
            "string_find_all_string_int",
            STRING_TYPE,
            vec![STRING_TYPE, INT_TYPE],
            find_all_n,
        ),
        env.add_overload(
            "sets.contains",
            "list_sets_contains_list",
            vec![LIST_TYPE, LIST_TYPE],
            sets_contains,
        ),
        env.add_overload(
            "sets.equivalent",
            "list_sets_equivalent_list",
            vec![LIST_TYPE, LIST_TYPE],
            sets_equivalent,
        ),
        env.add_overload(
            "sets.intersects",
            "list_sets_intersects_list",
            vec![LIST_TYPE, LIST_TYPE],
            sets_intersects,
        ),
        env.add_overload("isURL", "is_url_string", vec![STRING_TYPE], is_url),
        env.add_overload("url", "string_to_url", vec![STRING_TYPE], to_url),
        env.add_member_overload("getScheme", "url_get_scheme", dyn_type(), vec![], url_scheme),
        env.add_member_overload("getHost", "url_get_host", dyn_type(), vec![], url_host),
        env.add_member_overload(
            "getHostname",
            "url_get_hostname",
            dyn_type(),
            vec![],
            url_hostname,
        ),
        env.add_member_overload("getPort", "url_get_port", dyn_type(), vec![], url_port),
        env.add_member_overload(
            "getEscapedPath",
            "url_get_escaped_path",
            dyn_type(),
            vec![],
            url_path,
        ),
        env.add_member_overload("getQuery", "url_get_query", dyn_type(), vec![], url_query),
        env.add_overload("ip", "string_to_ip", vec![STRING_TYPE], to_ip),
        env.add_overload("isIP", "is_ip", vec![STRING_TYPE], is_ip),
        env.add_overload(
            "ip.isCanonical",
            "ip_is_canonical",
            vec![STRING_TYPE],
            ip_is_canonical,
        ),
        env.add_member_overload("family", "ip_family", dyn_type(), vec![], ip_family),
        env.add_member_overload(
            "isUnspecified",
            "ip_is_unspecified",
            dyn_type(),
            vec![],
            ip_is_unspecified,
        ),
        env.add_member_overload("isLoopback", "ip_is_loopback", dyn_type(), vec![], ip_is_loopback),
        env.add_member_overload(
            "isLinkLocalMulticast",
            "ip_is_link_local_multicast",
            dyn_type(),
            vec![],
            ip_is_link_local_multicast,
        ),
        env.add_member_overload(
            "isLinkLocalUnicast",
            "ip_is_link_local_unicast",
            dyn_type(),
            vec![],
            ip_is_link_local_unicast,
        ),
        env.add_member_overload(
            "isGlobalUnicast",
            "ip_is_global_unicast",
            dyn_type(),
            vec![],
            ip_is_global_unicast,
        ),
        env.add_overload("cidr", "string_to_cidr", vec![STRING_TYPE], to_cidr),
        env.add_overload("isCIDR", "is_cidr", vec![STRING_TYPE], is_cidr),
        env.add_member_overload(
            "containsIP",
            "cidr_contains_ip",
            dyn_type(),
            vec![dyn_type()],
            cidr_contains_ip,
        ),
        env.add_member_overload(
            "containsCIDR",
            "cidr_contains_cidr",
            dyn_type(),
            vec![dyn_type()],
            cidr_contains_cidr,
        ),
        env.add_member_overload(
            "prefixLength",
            "cidr_prefix_length",
            dyn_type(),
            vec![],
            cidr_prefix_length,
        ),
        env.add_member_overload("ip", "cidr_ip", dyn_type(), vec![], cidr_ip),
        env.add_member_overload("masked", "cidr_masked", dyn_type(), vec![], cidr_masked),
        env.add_overload("quantity", "string_to_quantity", vec![STRING_TYPE], to_quantity),
        env.add_overload("isQuantity", "is_quantity_string", vec![STRING_TYPE], is_quantity),
        env.add_member_overload("sign", "quantity_sign", dyn_type(), vec![], quantity_sign),
        env.add_member_overload(
            "isInteger",
            "quantity_is_integer",
            dyn_type(),
            vec![],
            quantity_is_integer,
        ),
        env.add_member_overload(
            "asInteger",
            "quantity_as_integer",
            dyn_type(),
            vec![],
            quantity_as_integer,
        ),
        env.add_member_overload(
            "asApproximateFloat",
            "quantity_as_approximate_float",
            dyn_type(),
            vec![],
            quantity_as_float,
        ),
        env.add_member_overload(
            "compareTo",
            "quantity_compare_to",
            dyn_type(),
            vec![dyn_type()],
            quantity_compare,
        ),
        env.add_member_overload(
            "isLessThan",
            "quantity_less_than",
            dyn_type(),
            vec![dyn_type()],
            quantity_less,
        ),
        env.add_member_overload(
            "isGreaterThan",
            "quantity_greater_than",
            dyn_type(),
            vec![dyn_type()],
            quantity_greater,
        ),
    ];
    debug_assert!(results.iter().all(Result::is_ok), "{results:?}");
    env
}

fn dyn_type() -> Type {
    cel::common::types::DYN_TYPE
}

fn value(arg: &CowVal<'_, '_>) -> Result<Value, ExecutionError> {
    Value::try_from(arg.as_ref())
}

fn ret<'b, 'v>(v: Value) -> Ret<'b, 'v> {
    let boxed: Box<dyn Val> = Box::<dyn Val>::try_from(v)?;
    Ok(CowVal::Owned(boxed))
}

fn list(arg: &CowVal<'_, '_>) -> Result<Arc<Vec<Value>>, ExecutionError> {
    match value(arg)? {
        Value::List(items) => Ok(items),
        other => Err(ExecutionError::UnexpectedType {
            got: other.type_of().to_string(),
            want: "list".into(),
        }),
    }
}

fn string(arg: &CowVal<'_, '_>) -> Result<Arc<String>, ExecutionError> {
    match value(arg)? {
        Value::String(s) => Ok(s),
        other => Err(ExecutionError::UnexpectedType {
            got: other.type_of().to_string(),
            want: "string".into(),
        }),
    }
}

fn arg<'a, 'b, 'v>(args: &'a [CowVal<'b, 'v>], i: usize) -> Result<&'a CowVal<'b, 'v>, ExecutionError> {
    args.get(i).ok_or_else(ExecutionError::missing_argument_or_target)
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, ExecutionError> {
    a.partial_cmp(b)
        .ok_or_else(|| ExecutionError::ValuesNotComparable(a.clone(), b.clone()))
}

fn is_sorted<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let items = list(arg(&args, 0)?)?;
    for pair in items.windows(2) {
        if compare(&pair[0], &pair[1])? == std::cmp::Ordering::Greater {
            return ret(Value::Bool(false));
        }
    }
    ret(Value::Bool(true))
}

fn sum<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let items = list(arg(&args, 0)?)?;
    let mut total = match items.first() {
        Some(Value::Float(_)) => Value::Float(0.0),
        Some(Value::UInt(_)) => Value::UInt(0),
        _ => Value::Int(0),
    };
    for item in items.iter() {
        total = match (&total, item) {
            (Value::Int(a), Value::Int(b)) => Value::Int(
                a.checked_add(*b)
                    .ok_or_else(|| ExecutionError::Overflow("+", total.clone(), item.clone()))?,
            ),
            (Value::UInt(a), Value::UInt(b)) => Value::UInt(
                a.checked_add(*b)
                    .ok_or_else(|| ExecutionError::Overflow("+", total.clone(), item.clone()))?,
            ),
            (Value::Float(a), Value::Float(b)) => Value::Float(a + b),
            _ => {
                return Err(ExecutionError::no_such_overload(
                    "sum",
                    vec![item.type_of().to_string()],
                ));
            }
        };
    }
    ret(total)
}

fn extreme<'b, 'v>(args: Vec<CowVal<'b, 'v>>, name: &str, keep: std::cmp::Ordering) -> Ret<'b, 'v> {
    let items = list(arg(&args, 0)?)?;
    let mut best: Option<&Value> = None;
    for item in items.iter() {
        best = match best {
            Some(current) if compare(item, current)? != keep => Some(current),
            _ => Some(item),
        };
    }
    match best {
        Some(v) => ret(v.clone()),
        None => Err(ExecutionError::function_error(
            name,
            format!("{name}(list) argument must not be empty"),
        )),
    }
}

fn min<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    extreme(args, "min", std::cmp::Ordering::Less)
}

fn max<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    extreme(args, "max", std::cmp::Ordering::Greater)
}

fn position<'b, 'v>(args: &[CowVal<'b, 'v>], last: bool) -> Result<i64, ExecutionError> {
    let items = list(arg(args, 0)?)?;
    let needle = arg(args, 1)?;
    let found = |item: &Value| -> Result<bool, ExecutionError> {
        let boxed: Box<dyn Val> = Box::<dyn Val>::try_from(item.clone())?;
        Ok(boxed.equals(needle.as_ref()))
    };
    let mut result = -1;
    for (i, item) in items.iter().enumerate() {
        if found(item)? {
            result = i64::try_from(i).unwrap_or(i64::MAX);
            if !last {
                break;
            }
        }
    }
    Ok(result)
}

fn index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ret(Value::Int(position(&args, false)?))
}

fn last_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ret(Value::Int(position(&args, true)?))
}

fn regex(pattern: &str, function: &str) -> Result<regex::Regex, ExecutionError> {
    regex::Regex::new(pattern).map_err(|e| ExecutionError::function_error(function, e))
}

fn find<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let subject = string(arg(&args, 0)?)?;
    let re = regex(&string(arg(&args, 1)?)?, "find")?;
    let found = re
        .find(&subject)
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    ret(Value::from(found))
}

fn find_all_limit<'b, 'v>(args: &[CowVal<'b, 'v>], limit: Option<usize>) -> Ret<'b, 'v> {
    let subject = string(arg(args, 0)?)?;
    let re = regex(&string(arg(args, 1)?)?, "findAll")?;
    let matches = re
        .find_iter(&subject)
        .take(limit.unwrap_or(usize::MAX))
        .map(|m| Value::from(m.as_str().to_owned()))
        .collect();
    ret(Value::List(Arc::new(matches)))
}

fn find_all<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    find_all_limit(&args, None)
}

fn find_all_n<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let limit = match value(arg(&args, 2)?)? {
        Value::Int(n) if n < 0 => None,
        Value::Int(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        _ => None,
    };
    find_all_limit(&args, limit)
}

fn contains_all(haystack: &[Value], needles: &[Value]) -> bool {
    needles.iter().all(|n| haystack.contains(n))
}

fn sets_contains<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let (a, b) = (list(arg(&args, 0)?)?, list(arg(&args, 1)?)?);
    ret(Value::Bool(contains_all(&a, &b)))
}

fn sets_equivalent<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let (a, b) = (list(arg(&args, 0)?)?, list(arg(&args, 1)?)?);
    ret(Value::Bool(contains_all(&a, &b) && contains_all(&b, &a)))
}

fn sets_intersects<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let (a, b) = (list(arg(&args, 0)?)?, list(arg(&args, 1)?)?);
    ret(Value::Bool(b.iter().any(|n| a.contains(n))))
}

/// The parts of a URL that `url()` exposes, as Go's `url.Parse` splits an absolute URI or
/// an absolute path.
#[derive(Debug, Default, PartialEq, Eq)]
struct Url {
    scheme: String,
    host: String,
    path: String,
    query: String,
}

/// Parses like Go's `url.ParseRequestURI`: an absolute URI (`scheme://host/path?query`,
/// `scheme:opaque`) or an absolute path.
fn parse_url(text: &str) -> Option<Url> {
    if text.chars().any(|c| c.is_control() || c == ' ') || text.is_empty() {
        return None;
    }
    let (rest, query) = match text.split_once('?') {
        Some((r, q)) => (r, q.to_owned()),
        None => (text, String::new()),
    };
    if let Some(path) = rest.strip_prefix('/') {
        return Some(Url {
            path: format!("/{path}"),
            query,
            ..Url::default()
        });
    }
    let (scheme, after) = rest.split_once(':')?;
    let mut chars = scheme.chars();
    let valid_scheme = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return None;
    }
    let (host, path) = match after.strip_prefix("//") {
        Some(authority) => match authority.find('/') {
            Some(i) => (authority[..i].to_owned(), authority[i..].to_owned()),
            None => (authority.to_owned(), String::new()),
        },
        None if after.starts_with('/') => (String::new(), after.to_owned()),
        None => (String::new(), String::new()),
    };
    let host = host.rsplit_once('@').map_or(host.clone(), |(_, h)| h.to_owned());
    Some(Url {
        scheme: scheme.to_owned(),
        host,
        path,
        query,
    })
}

const URL_MARKER: &str = "__url__";

fn to_url<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let text = string(arg(&args, 0)?)?;
    if parse_url(&text).is_none() {
        return Err(ExecutionError::function_error(
            "url",
            format!("URL parse error during conversion from string: parse {text:?}: invalid URI for request"),
        ));
    }
    // A URL is carried as a one-entry map so that equality and printing stay simple.
    let map = std::collections::HashMap::from([(Key::from(URL_MARKER.to_owned()), Value::String(text))]);
    ret(Value::Map(Map { map: Arc::new(map) }))
}

fn is_url<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let text = string(arg(&args, 0)?)?;
    ret(Value::Bool(parse_url(&text).is_some()))
}

fn url_of(arg: &CowVal<'_, '_>) -> Result<Url, ExecutionError> {
    if let Value::Map(map) = value(arg)?
        && let Some(Value::String(text)) = map.map.get(&Key::from(URL_MARKER.to_owned()))
        && let Some(url) = parse_url(text)
    {
        return Ok(url);
    }
    Err(ExecutionError::no_such_overload("url", vec!["map".into()]))
}

fn split_host_port(host: &str) -> (String, String) {
    if let Some(rest) = host.strip_prefix('[')
        && let Some((ip, after)) = rest.split_once(']')
    {
        return (ip.to_owned(), after.strip_prefix(':').unwrap_or("").to_owned());
    }
    match host.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.to_owned()),
        None => (host.to_owned(), String::new()),
    }
}

fn url_part<'b, 'v>(args: &[CowVal<'b, 'v>], part: fn(Url) -> String) -> Ret<'b, 'v> {
    let url = url_of(arg(args, 0)?)?;
    ret(Value::from(part(url)))
}

fn url_scheme<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    url_part(&args, |u| u.scheme)
}

fn url_host<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    url_part(&args, |u| u.host)
}

fn url_hostname<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    url_part(&args, |u| split_host_port(&u.host).0)
}

fn url_port<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    url_part(&args, |u| split_host_port(&u.host).1)
}

fn url_path<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    url_part(&args, |u| u.path)
}

fn url_query<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    url_part(&args, |u| u.query)
}

/// cel-go's text of an evaluation error (what upstream puts before ` evaluating rule: `).
pub(super) fn error_text(error: &ExecutionError) -> String {
    match error {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::NoSuchOverload(_)
        | ExecutionError::UnexpectedType { .. }
        | ExecutionError::UnsupportedBinaryOperator(..)
        | ExecutionError::ValuesNotComparable(..)
        | ExecutionError::UnsupportedTargetType { .. }
        | ExecutionError::NotSupportedAsMethod { .. } => "no such overload".into(),
        ExecutionError::IndexOutOfBounds(index) => match index {
            Value::Int(i) => format!("index out of bounds: {i}"),
            Value::UInt(i) => format!("index out of bounds: {i}"),
            other => format!("index out of bounds: {other:?}"),
        },
        ExecutionError::DivisionByZero(_) => "division by zero".into(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".into(),
        ExecutionError::Overflow(..) => "integer overflow".into(),
        ExecutionError::FunctionError { message, .. } => message.clone(),
        ExecutionError::UndeclaredReference(name) => format!("no such attribute(s): {name}"),
        other => other.to_string(),
    }
}

const QUANTITY_MARKER: &str = "__quantity__";

fn parse_quantity(text: &str) -> Option<ParsedQuantity> {
    crate::validation::quantity::parse_quantity(text).ok()
}

fn to_quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let text = string(arg(&args, 0)?)?;
    let Some(quantity) = parse_quantity(&text) else {
        return Err(ExecutionError::function_error(
            "quantity",
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        ));
    };
    // A quantity is carried as a one-entry map of its canonical form, so that equal
    // quantities are equal values.
    let map = std::collections::HashMap::from([(
        Key::from(QUANTITY_MARKER.to_owned()),
        Value::from(quantity.canonical()),
    )]);
    ret(Value::Map(Map { map: Arc::new(map) }))
}

fn is_quantity<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let text = string(arg(&args, 0)?)?;
    ret(Value::Bool(parse_quantity(&text).is_some()))
}

fn quantity_of(arg: &CowVal<'_, '_>) -> Result<ParsedQuantity, ExecutionError> {
    if let Value::Map(map) = value(arg)?
        && let Some(Value::String(text)) = map.map.get(&Key::from(QUANTITY_MARKER.to_owned()))
        && let Some(quantity) = parse_quantity(text)
    {
        return Ok(quantity);
    }
    Err(ExecutionError::no_such_overload("quantity", vec!["map".into()]))
}

/// The value as an `i64`, when it is an integer that fits.
fn quantity_int(q: &ParsedQuantity) -> Option<i64> {
    let v = q.value();
    (q.is_integer() && v != i64::MAX && v != i64::MIN).then_some(v)
}

fn quantity_sign<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ret(Value::Int(i64::from(quantity_of(arg(&args, 0)?)?.sign())))
}

fn quantity_is_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ret(Value::Bool(quantity_int(&quantity_of(arg(&args, 0)?)?).is_some()))
}

fn quantity_as_integer<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    match quantity_int(&quantity_of(arg(&args, 0)?)?) {
        Some(v) => ret(Value::Int(v)),
        None => Err(ExecutionError::function_error(
            "asInteger",
            "cannot convert value to integer",
        )),
    }
}

fn quantity_as_float<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let q = quantity_of(arg(&args, 0)?)?;
    let nanos = q.scaled_value(crate::validation::quantity::NANO_SCALE);
    #[allow(clippy::cast_precision_loss)]
    let approximate = if nanos == i64::MAX || nanos == i64::MIN {
        q.value() as f64
    } else {
        nanos as f64 / 1e9
    };
    ret(Value::Float(approximate))
}

fn quantity_ordering(args: &[CowVal<'_, '_>]) -> Result<std::cmp::Ordering, ExecutionError> {
    Ok(quantity_of(arg(args, 0)?)?.cmp(&quantity_of(arg(args, 1)?)?))
}

fn quantity_compare<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ret(Value::Int(match quantity_ordering(&args)? {
        std::cmp::Ordering::Less => -1,
        std::cmp::Ordering::Equal => 0,
        std::cmp::Ordering::Greater => 1,
    }))
}

fn quantity_less<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ret(Value::Bool(quantity_ordering(&args)? == std::cmp::Ordering::Less))
}

fn quantity_greater<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ret(Value::Bool(
        quantity_ordering(&args)? == std::cmp::Ordering::Greater,
    ))
}

const IP_MARKER: &str = "__ip__";
const CIDR_MARKER: &str = "__cidr__";

/// Parses like upstream's `parseIPAddr` (Go's `netip.ParseAddr` without zones or
/// IPv4-mapped IPv6 addresses).
fn parse_ip(text: &str) -> Option<IpAddr> {
    let ip: IpAddr = text.parse().ok()?;
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => None,
        other => Some(other),
    }
}

/// Parses like upstream's `parseCIDR` (Go's `netip.ParsePrefix`; host bits may be set).
fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = text.split_once('/')?;
    let ip = parse_ip(addr)?;
    if bits.is_empty()
        || bits.len() > 3
        || !bits.bytes().all(|b| b.is_ascii_digit())
        || (bits.len() > 1 && bits.starts_with('0'))
    {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn marked(marker: &str, text: String) -> Value {
    let map = std::collections::HashMap::from([(Key::from(marker.to_owned()), Value::from(text))]);
    Value::Map(Map { map: Arc::new(map) })
}

fn marked_text(arg: &CowVal<'_, '_>, marker: &str) -> Result<Option<Arc<String>>, ExecutionError> {
    match value(arg)? {
        Value::Map(map) => match map.map.get(&Key::from(marker.to_owned())) {
            Some(Value::String(text)) => Ok(Some(text.clone())),
            _ => Ok(None),
        },
        _ => Ok(None),
    }
}

fn ip_of(arg: &CowVal<'_, '_>) -> Result<IpAddr, ExecutionError> {
    marked_text(arg, IP_MARKER)?
        .and_then(|t| parse_ip(&t))
        .ok_or_else(|| ExecutionError::no_such_overload("ip", vec!["map".into()]))
}

fn cidr_of(arg: &CowVal<'_, '_>) -> Result<(IpAddr, u8), ExecutionError> {
    marked_text(arg, CIDR_MARKER)?
        .and_then(|t| parse_cidr(&t))
        .ok_or_else(|| ExecutionError::no_such_overload("cidr", vec!["map".into()]))
}

fn to_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let text = string(arg(&args, 0)?)?;
    match parse_ip(&text) {
        Some(ip) => ret(marked(IP_MARKER, ip.to_string())),
        None => Err(ExecutionError::function_error(
            "ip",
            format!("IP Address {text:?} parse error during conversion from string"),
        )),
    }
}

fn is_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ret(Value::Bool(parse_ip(&string(arg(&args, 0)?)?).is_some()))
}

fn ip_is_canonical<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let text = string(arg(&args, 0)?)?;
    match parse_ip(&text) {
        Some(ip) => ret(Value::Bool(ip.to_string() == *text)),
        None => Err(ExecutionError::function_error(
            "ip.isCanonical",
            format!("IP Address {text:?} parse error during conversion from string"),
        )),
    }
}

fn ip_test<'b, 'v>(args: &[CowVal<'b, 'v>], test: fn(IpAddr) -> bool) -> Ret<'b, 'v> {
    ret(Value::Bool(test(ip_of(arg(args, 0)?)?)))
}

fn ip_family<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ret(Value::Int(if ip_of(arg(&args, 0)?)?.is_ipv4() { 4 } else { 6 }))
}

fn ip_is_unspecified<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ip_test(&args, |ip| ip.is_unspecified())
}

fn ip_is_loopback<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ip_test(&args, |ip| ip.is_loopback())
}

fn link_local_multicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => v6.octets()[0] == 0xff && v6.octets()[1] & 0x0f == 0x02,
    }
}

fn link_local_unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[..2] == [169, 254],
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}

fn ip_is_link_local_multicast<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ip_test(&args, link_local_multicast)
}

fn ip_is_link_local_unicast<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ip_test(&args, link_local_unicast)
}

/// Go's `IsGlobalUnicast`: not unspecified, loopback, multicast, link-local or the IPv4
/// broadcast address (private addresses are global unicast).
fn ip_is_global_unicast<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ip_test(&args, |ip| {
        let broadcast = matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
        !(ip.is_unspecified() || ip.is_loopback() || ip.is_multicast() || link_local_unicast(ip) || broadcast)
    })
}

fn to_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let text = string(arg(&args, 0)?)?;
    match parse_cidr(&text) {
        Some((ip, bits)) => ret(marked(CIDR_MARKER, format!("{ip}/{bits}"))),
        None => Err(ExecutionError::function_error(
            "cidr",
            format!(
                "network address parse error during conversion from string: netip.ParsePrefix({text:?}): invalid prefix"
            ),
        )),
    }
}

fn is_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ret(Value::Bool(parse_cidr(&string(arg(&args, 0)?)?).is_some()))
}

fn bits_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) << 96,
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn mask(bits: u8) -> u128 {
    if bits == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(bits))
    }
}

/// Whether `ip` is inside the prefix `net/bits`.
fn prefix_contains(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    net.is_ipv4() == ip.is_ipv4() && (bits_of(net) ^ bits_of(ip)) & mask(bits) == 0
}

fn ip_or_string(arg: &CowVal<'_, '_>) -> Result<IpAddr, ExecutionError> {
    if let Value::String(text) = value(arg)? {
        return parse_ip(&text).ok_or_else(|| {
            ExecutionError::function_error(
                "containsIP",
                format!("IP Address {text:?} parse error during conversion from string"),
            )
        });
    }
    ip_of(arg)
}

fn cidr_contains_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let (net, bits) = cidr_of(arg(&args, 0)?)?;
    let ip = ip_or_string(arg(&args, 1)?)?;
    ret(Value::Bool(prefix_contains(net, bits, ip)))
}

fn cidr_contains_cidr<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let (net, bits) = cidr_of(arg(&args, 0)?)?;
    let other = arg(&args, 1)?;
    let (other_net, other_bits) = match value(other)? {
        Value::String(text) => parse_cidr(&text).ok_or_else(|| {
            ExecutionError::function_error(
                "containsCIDR",
                format!("network address parse error during conversion from string: {text:?}"),
            )
        })?,
        _ => cidr_of(other)?,
    };
    ret(Value::Bool(
        other_bits >= bits && prefix_contains(net, bits, other_net),
    ))
}

fn cidr_prefix_length<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ret(Value::Int(i64::from(cidr_of(arg(&args, 0)?)?.1)))
}

fn cidr_ip<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    ret(marked(IP_MARKER, cidr_of(arg(&args, 0)?)?.0.to_string()))
}

fn cidr_masked<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Ret<'b, 'v> {
    let (net, bits) = cidr_of(arg(&args, 0)?)?;
    let masked = bits_of(net) & mask(bits);
    let ip = match net {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(u32::try_from(masked >> 96).unwrap_or(0))),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(masked)),
    };
    ret(marked(CIDR_MARKER, format!("{ip}/{bits}")))
}
