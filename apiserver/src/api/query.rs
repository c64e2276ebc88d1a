//! Query parameters: list, watch, get, write and delete options, validated and reported as
//! kube-apiserver reports them; label and field selectors turned into a filter.

use std::sync::Arc;
use std::time::Duration;

use rudder_machinery::field::{ErrorList, FieldError, Path};
use rudder_machinery::selectors::{fields, labels};
use serde_json::Value;

use crate::object;
use crate::registry::Resource;
use crate::status::ApiError;
use crate::store::{DeleteOptions, Filter, Propagation};

/// The decoded query string.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Decodes a raw query string.
    pub fn parse(raw: &str) -> Query {
        Query {
            pairs: form_urlencoded::parse(raw.as_bytes()).into_owned().collect(),
        }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present at all.
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A boolean parameter, parsed as Go's `strconv.ParseBool`.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name).map(|value| parse_bool(name, value)).transpose()
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .map(|value| {
                value.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("strconv.ParseInt: parsing {value:?}: invalid syntax"))
                })
            })
            .transpose()
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" | "" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "invalid value for {name}: strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

/// Whether output should be indented: `?pretty`, or a browser or curl as user agent.
pub fn pretty(query: &Query, user_agent: Option<&str>) -> bool {
    if let Some(value) = query.get("pretty").filter(|v| !v.is_empty()) {
        return parse_bool("pretty", value).unwrap_or(false);
    }
    user_agent
        .is_some_and(|ua| ua.starts_with("curl") || ua.starts_with("Wget") || ua.starts_with("Mozilla/5.0"))
}

/// `dryRun`: only `All` is valid.
pub fn dry_run(query: &Query, options_kind: &str) -> Result<bool, ApiError> {
    let errors = dry_run_errors(query);
    if !errors.is_empty() {
        return Err(ApiError::invalid("meta.k8s.io", options_kind, "", &errors));
    }
    Ok(query.has("dryRun"))
}

/// Upstream's `ValidateDryRun`.
pub fn dry_run_errors(query: &Query) -> ErrorList {
    query
        .all("dryRun")
        .into_iter()
        .filter(|value| *value != "All")
        .map(|value| FieldError::not_supported(&Path::new("dryRun"), value, &["All"]))
        .collect()
}

/// Parsed list and watch parameters.
#[derive(Clone, Debug, Default)]
pub struct ListParams {
    /// `labelSelector`.
    pub label_selector: String,
    /// `fieldSelector`.
    pub field_selector: String,
    /// `watch`.
    pub watch: bool,
    /// `allowWatchBookmarks`.
    pub allow_bookmarks: bool,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
    /// `timeoutSeconds`.
    pub timeout: Option<Duration>,
    /// `limit`.
    pub limit: usize,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `sendInitialEvents`.
    pub send_initial_events: Option<bool>,
}

/// Parses and validates list (or watch) parameters.
pub fn list_params(query: &Query, watch: bool) -> Result<ListParams, ApiError> {
    let params = ListParams {
        label_selector: query.get("labelSelector").unwrap_or("").to_owned(),
        field_selector: query.get("fieldSelector").unwrap_or("").to_owned(),
        watch: watch || query.bool("watch")?.unwrap_or(false),
        allow_bookmarks: query.bool("allowWatchBookmarks")?.unwrap_or(false),
        resource_version: query.get("resourceVersion").map(str::to_owned),
        resource_version_match: query
            .get("resourceVersionMatch")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        timeout: query
            .int("timeoutSeconds")?
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s.unsigned_abs())),
        limit: query
            .int("limit")?
            .filter(|l| *l > 0)
            .map_or(0, |l| usize::try_from(l).unwrap_or(usize::MAX)),
        continue_token: query.get("continue").filter(|c| !c.is_empty()).map(str::to_owned),
        send_initial_events: query.bool("sendInitialEvents")?,
    };
    let errors = validate_list_params(&params);
    if !errors.is_empty() {
        return Err(ApiError::invalid("meta.k8s.io", "ListOptions", "", &errors));
    }
    if params.continue_token.is_some()
        && params
            .resource_version
            .as_deref()
            .is_some_and(|rv| !rv.is_empty())
    {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    Ok(params)
}

/// Upstream's `ValidateListOptions`.
fn validate_list_params(params: &ListParams) -> ErrorList {
    let mut errors = ErrorList::new();
    let path = Path::new("resourceVersionMatch");
    let rv = params.resource_version.as_deref().unwrap_or("");
    if params.watch {
        if params.send_initial_events.is_some()
            && params.resource_version_match.as_deref() != Some("NotOlderThan")
        {
            errors.push(FieldError::forbidden(
                &path,
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if let Some(m) = params.resource_version_match.as_deref() {
            if params.send_initial_events.is_none() {
                errors.push(FieldError::forbidden(
                    &path,
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                ));
            }
            if m != "NotOlderThan" {
                errors.push(FieldError::not_supported(&path, m, &["NotOlderThan"]));
            }
            if params.continue_token.is_some() {
                errors.push(FieldError::forbidden(
                    &path,
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
        }
        return errors;
    }
    if let Some(m) = params.resource_version_match.as_deref() {
        if rv.is_empty() {
            errors.push(FieldError::forbidden(
                &path,
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if params.continue_token.is_some() {
            errors.push(FieldError::forbidden(
                &path,
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if m != "Exact" && m != "NotOlderThan" {
            errors.push(FieldError::not_supported(
                &path,
                m,
                &["Exact", "NotOlderThan", ""],
            ));
        }
        if m == "Exact" && rv == "0" {
            errors.push(FieldError::forbidden(
                &path,
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if params.send_initial_events.is_some() {
        errors.push(FieldError::forbidden(
            &Path::new("sendInitialEvents"),
            "sendInitialEvents is forbidden for list",
        ));
    }
    errors
}

/// The fields every kind can be selected by.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// The filter of a label and a field selector (`None` when both select everything).
pub fn filter(
    resource: &Resource,
    label_selector: &str,
    field_selector: &str,
) -> Result<Option<Filter>, ApiError> {
    let labels =
        labels::Selector::parse(label_selector).map_err(|err| ApiError::bad_request(err.to_string()))?;
    let fields =
        fields::Selector::parse(field_selector).map_err(|err| ApiError::bad_request(err.to_string()))?;
    let ops = resource.ops().cloned();
    let supported = ops.as_ref().map(|o| o.supported_fields()).unwrap_or_default();
    for (field, _, _) in fields.terms() {
        if COMMON_FIELDS.contains(&field) || supported.iter().any(|s| s == field) {
            continue;
        }
        let message = if supported.is_empty() {
            format!("{field:?} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"")
        } else {
            format!("field label not supported: {field}")
        };
        return Err(ApiError::bad_request(message));
    }
    if labels.is_empty() && fields.is_empty() {
        return Ok(None);
    }
    let needs_kind_fields = fields
        .terms()
        .any(|(field, _, _)| !COMMON_FIELDS.contains(&field));
    let filter = move |object: &Value| {
        if !labels.is_empty() && !labels.matches(&object::labels(object)) {
            return false;
        }
        if fields.is_empty() {
            return true;
        }
        let kind_fields = match (needs_kind_fields, &ops) {
            (true, Some(ops)) => ops.selectable_fields(object),
            _ => Vec::new(),
        };
        fields.matches(&|field| match field {
            "metadata.name" => Some(object::name(object).to_owned()),
            "metadata.namespace" => Some(object::namespace(object).to_owned()),
            other => kind_fields
                .iter()
                .find(|(f, _)| *f == other)
                .map(|(_, v)| v.clone()),
        })
    };
    Ok(Some(Arc::new(filter)))
}

/// Delete options from the body (JSON or YAML `DeleteOptions`) or, without a body, from the
/// query.
pub fn delete_options(query: &Query, body: Option<&Value>) -> Result<DeleteOptions, ApiError> {
    let mut options = DeleteOptions {
        dry_run: dry_run(query, "DeleteOptions")?,
        ..Default::default()
    };
    let (grace, propagation, orphan) = match body {
        Some(body) => {
            if !body.is_object() {
                return Err(ApiError::bad_request(
                    "the body of a delete must be a DeleteOptions object",
                ));
            }
            options.precondition_uid = body
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(str::to_owned);
            options.precondition_resource_version = body
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if body
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| !d.is_empty())
            {
                options.dry_run = true;
            }
            (
                body.get("gracePeriodSeconds").and_then(Value::as_i64),
                body.get("propagationPolicy")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                body.get("orphanDependents").and_then(Value::as_bool),
            )
        }
        None => (
            query.int("gracePeriodSeconds")?,
            query
                .get("propagationPolicy")
                .filter(|p| !p.is_empty())
                .map(str::to_owned),
            query.bool("orphanDependents")?,
        ),
    };
    let mut errors = ErrorList::new();
    options.grace_period = grace;
    options.orphan_dependents = orphan;
    if let Some(policy) = propagation {
        options.propagation = match policy.as_str() {
            "Orphan" => Some(Propagation::Orphan),
            "Background" => Some(Propagation::Background),
            "Foreground" => Some(Propagation::Foreground),
            other => {
                errors.push(FieldError::not_supported(
                    &Path::new("propagationPolicy"),
                    other,
                    &["Foreground", "Background", "Orphan", "nil"],
                ));
                None
            }
        };
    }
    if orphan.is_some() && options.propagation.is_some() {
        errors.push(FieldError::invalid(
            &Path::new("propagationPolicy"),
            propagation_name(options.propagation),
            "orphanDependents and deletionPropagation cannot be both set",
        ));
    }
    if grace.is_some_and(|g| g < 0) {
        // Negative grace periods mean "now" upstream.
        options.grace_period = Some(0);
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid("meta.k8s.io", "DeleteOptions", "", &errors));
    }
    Ok(options)
}

fn propagation_name(policy: Option<Propagation>) -> &'static str {
    match policy {
        Some(Propagation::Orphan) => "Orphan",
        Some(Propagation::Background) => "Background",
        Some(Propagation::Foreground) => "Foreground",
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_option_validation_matches_upstream() {
        let err = list_params(&Query::parse("resourceVersionMatch=Exact"), false).unwrap_err();
        assert_eq!(
            err.message,
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
        );
        let err = list_params(&Query::parse("resourceVersion=5&continue=abc"), false).unwrap_err();
        assert_eq!(
            err.message,
            "specifying resource version is not allowed when using continue"
        );
        let ok = list_params(
            &Query::parse("watch=1&allowWatchBookmarks=true&timeoutSeconds=30&limit=5"),
            false,
        )
        .unwrap();
        assert!(ok.watch && ok.allow_bookmarks && ok.limit == 5);
        assert_eq!(ok.timeout, Some(Duration::from_secs(30)));
        assert!(list_params(&Query::parse("watch=maybe"), false).is_err());
        assert!(list_params(&Query::parse("sendInitialEvents=true"), true).is_err());
        assert!(
            list_params(
                &Query::parse("sendInitialEvents=true&resourceVersionMatch=NotOlderThan"),
                true
            )
            .is_ok()
        );
    }

    #[test]
    fn delete_options_from_query_and_body() {
        let options = delete_options(
            &Query::parse("gracePeriodSeconds=0&propagationPolicy=Foreground"),
            None,
        )
        .unwrap();
        assert_eq!(
            (options.grace_period, options.propagation),
            (Some(0), Some(Propagation::Foreground))
        );
        let body = serde_json::json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": "u"}, "propagationPolicy": "Orphan"});
        let options = delete_options(&Query::default(), Some(&body)).unwrap();
        assert_eq!(options.precondition_uid.as_deref(), Some("u"));
        assert_eq!(options.propagation, Some(Propagation::Orphan));
        let bad = delete_options(&Query::parse("propagationPolicy=Sideways"), None).unwrap_err();
        assert_eq!(bad.code.as_u16(), 422);
        assert!(dry_run(&Query::parse("dryRun=All"), "CreateOptions").unwrap());
        assert_eq!(
            dry_run(&Query::parse("dryRun=Some"), "CreateOptions")
                .unwrap_err()
                .code
                .as_u16(),
            422
        );
    }

    #[test]
    fn curl_gets_pretty_output() {
        assert!(pretty(&Query::default(), Some("curl/8.0")));
        assert!(!pretty(&Query::parse("pretty=false"), Some("curl/8.0")));
        assert!(!pretty(&Query::default(), Some("kubectl/v1.32.4")));
    }
}
