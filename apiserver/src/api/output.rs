//! Response bodies: objects, lists, statuses and watch events, encoded as negotiated.

use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};
use warp::reply::Response;

use crate::api::negotiation::{Encoding, IncludeObject, Output, Transform};
use crate::registry::Resource;
use crate::status::ApiError;
use crate::store::{ListResult, WatchEvent};

/// The group, version and kind a value declares, when protobuf can encode it.
fn protobuf_kind(value: &Value) -> Option<(String, String, String)> {
    let (api_version, kind) = crate::object::type_meta(value);
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    rudder_machinery::protobuf::supports(group, version, kind)
        .then(|| (group.to_owned(), version.to_owned(), kind.to_owned()))
}

/// Serializes `value` as negotiated; returns the bytes and their content type.
pub fn encode_with_type(value: &Value, output: &Output) -> Result<(Vec<u8>, &'static str), ApiError> {
    if output.encoding == Encoding::Protobuf {
        if let Some((group, version, kind)) = protobuf_kind(value) {
            let bytes = rudder_machinery::protobuf::encode(value, &group, &version, &kind)
                .map_err(ApiError::internal)?;
            return Ok((bytes, rudder_machinery::protobuf::MEDIA_TYPE));
        }
        let json = Output {
            encoding: Encoding::Json { pretty: false },
            transform: output.transform,
        };
        return Ok((encode(value, &json)?, json.content_type()));
    }
    Ok((encode(value, output)?, output.content_type()))
}

/// Serializes `value` as negotiated (protobuf only through [`encode_with_type`]).
pub fn encode(value: &Value, output: &Output) -> Result<Vec<u8>, ApiError> {
    match output.encoding {
        Encoding::Protobuf => encode_with_type(value, output).map(|(bytes, _)| bytes),
        Encoding::Json { pretty: false } => serde_json::to_vec(value).map_err(ApiError::internal),
        Encoding::Json { pretty: true } => {
            let mut out = serde_json::to_vec_pretty(value).map_err(ApiError::internal)?;
            out.push(b'\n');
            Ok(out)
        }
        Encoding::Yaml => serde_saphyr::to_string(value)
            .map(String::into_bytes)
            .map_err(ApiError::internal),
    }
}

/// A response with `status` and `value` encoded as negotiated.
pub fn respond(status: StatusCode, value: &Value, output: &Output) -> Response {
    match encode_with_type(value, output) {
        Ok((body, content_type)) => {
            let mut response = Response::new(body.into());
            *response.status_mut() = status;
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            response
        }
        Err(err) => err.into_response(),
    }
}

/// One object of `resource` as the client asked for it.
pub fn object(value: Value, resource: &Resource, output: &Output) -> Value {
    shaped(value, resource, output, true)
}

/// One object as the client asked for it; a Table carries its column definitions only when
/// `headers` is set (upstream's watch encoder sends them in the first event only).
fn shaped(value: Value, resource: &Resource, output: &Output, headers: bool) -> Value {
    match output.transform {
        Transform::None => value,
        Transform::PartialMetadata { beta } => partial(&value, beta),
        Transform::Table { beta, include } => {
            let resource_version = crate::object::resource_version(&value).to_owned();
            let rows = vec![table_row(&value, resource, beta, include, now())];
            table(
                beta,
                resource,
                json!({"resourceVersion": resource_version}),
                rows,
                headers,
            )
        }
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A `meta.k8s.io` `Table` of `rows` printed for `resource`.
fn table(beta: bool, resource: &Resource, metadata: Value, rows: Vec<Value>, headers: bool) -> Value {
    let columns = if headers {
        match resource.custom() {
            Some(custom) => Value::Array(custom.table_columns()),
            None => Value::Array(
                rudder_machinery::printers::columns(&resource.group, &resource.resource)
                    .iter()
                    .map(rudder_machinery::printers::Column::to_json)
                    .collect(),
            ),
        }
    } else {
        Value::Null
    };
    let api_version = if beta {
        "meta.k8s.io/v1beta1"
    } else {
        "meta.k8s.io/v1"
    };
    let mut table = Map::new();
    table.insert("kind".into(), Value::String("Table".into()));
    table.insert("apiVersion".into(), Value::String(api_version.into()));
    table.insert("metadata".into(), metadata);
    table.insert("columnDefinitions".into(), columns);
    table.insert("rows".into(), Value::Array(rows));
    Value::Object(table)
}

/// One `TableRow`: the printer's cells, its conditions and the embedded object.
fn table_row(value: &Value, resource: &Resource, beta: bool, include: IncludeObject, now: i64) -> Value {
    let mut row = Map::new();
    let cells = match resource.custom() {
        Some(custom) => custom.table_row(value, now),
        None => rudder_machinery::printers::row(&resource.group, &resource.resource, value, now),
    };
    row.insert("cells".into(), Value::Array(cells));
    let conditions = rudder_machinery::printers::row_conditions(&resource.group, &resource.resource, value);
    if !conditions.is_empty() {
        row.insert("conditions".into(), Value::Array(conditions));
    }
    let object = match include {
        IncludeObject::None => None,
        IncludeObject::Metadata => Some(partial(value, beta)),
        IncludeObject::Object => {
            let mut object = value.clone();
            if let Some(map) = object.as_object_mut() {
                map.entry("apiVersion")
                    .or_insert_with(|| Value::String(resource.api_version()));
                map.entry("kind")
                    .or_insert_with(|| Value::String(resource.kind.clone()));
            }
            Some(object)
        }
    };
    row.insert("object".into(), object.unwrap_or(Value::Null));
    Value::Object(row)
}

fn partial(value: &Value, beta: bool) -> Value {
    let metadata = value
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": if beta { "meta.k8s.io/v1beta1" } else { "meta.k8s.io/v1" },
        "metadata": metadata,
    })
}

/// A list of `resource` as the client asked for it. Items of built-in lists carry no
/// apiVersion or kind.
pub fn list(result: ListResult, resource: &Resource, output: &Output) -> Value {
    let api_version = resource.api_version();
    let list_kind = resource.list_kind();
    let mut metadata = Map::new();
    metadata.insert(
        "resourceVersion".into(),
        Value::String(result.resource_version.to_string()),
    );
    if let Some(token) = result.continue_token {
        metadata.insert("continue".into(), Value::String(token));
    }
    if let Some(remaining) = result.remaining {
        metadata.insert("remainingItemCount".into(), Value::from(remaining));
    }
    let (api_version, list_kind, items): (&str, &str, Vec<Value>) = match output.transform {
        Transform::Table { beta, include } => {
            let now = now();
            let rows = result
                .items
                .iter()
                .map(|item| table_row(item, resource, beta, include, now))
                .collect();
            return table(beta, resource, Value::Object(metadata), rows, true);
        }
        Transform::None => (
            &api_version,
            &list_kind,
            result
                .items
                .into_iter()
                .map(|mut item| {
                    if let Some(map) = item.as_object_mut() {
                        map.remove("apiVersion");
                        map.remove("kind");
                    }
                    item
                })
                .collect(),
        ),
        Transform::PartialMetadata { beta } => (
            if beta {
                "meta.k8s.io/v1beta1"
            } else {
                "meta.k8s.io/v1"
            },
            "PartialObjectMetadataList",
            result.items.iter().map(|item| partial(item, beta)).collect(),
        ),
    };
    json!({
        "kind": list_kind,
        "apiVersion": api_version,
        "metadata": metadata,
        "items": items,
    })
}

/// One encoded watch event of `resource`: a JSON line, or a length-prefixed protobuf frame.
/// `first` tells the first event of the watch.
pub fn watch_frame(
    event: WatchEvent,
    resource: &Resource,
    output: &Output,
    first: bool,
) -> Result<Vec<u8>, ApiError> {
    let value = watch_event(event, resource, output, first);
    if output.encoding == Encoding::Protobuf {
        let object = value.get("object").cloned().unwrap_or(Value::Null);
        let event_type = value.get("type").and_then(Value::as_str).unwrap_or("ERROR");
        if let Some((group, version, kind)) = protobuf_kind(&object) {
            return rudder_machinery::protobuf::encode_watch_event(
                event_type, &object, &group, &version, &kind,
            )
            .map_err(ApiError::internal);
        }
    }
    let mut bytes = serde_json::to_vec(&value).map_err(ApiError::internal)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// A watch event as a JSON value (`{"type": ..., "object": ...}`).
pub fn watch_event(event: WatchEvent, resource: &Resource, output: &Output, first: bool) -> Value {
    let api_version = resource.api_version();
    let kind = resource.kind.as_str();
    let (kind_name, object) = match event {
        WatchEvent::Added(o) => ("ADDED", shaped(o, resource, output, first)),
        WatchEvent::Modified(o) => ("MODIFIED", shaped(o, resource, output, first)),
        WatchEvent::Deleted(o) => ("DELETED", shaped(o, resource, output, first)),
        WatchEvent::Bookmark {
            resource_version,
            initial_events_end,
        } => {
            let mut metadata =
                json!({"resourceVersion": resource_version.to_string(), "creationTimestamp": null});
            if initial_events_end {
                metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
            }
            let bookmark = |api_version: &str, kind: &str| json!({"kind": kind, "apiVersion": api_version, "metadata": metadata});
            let object = match output.transform {
                Transform::None => bookmark(&api_version, kind),
                Transform::PartialMetadata { beta: false } => {
                    bookmark("meta.k8s.io/v1", "PartialObjectMetadata")
                }
                Transform::PartialMetadata { beta: true } => {
                    bookmark("meta.k8s.io/v1beta1", "PartialObjectMetadata")
                }
                // Upstream prints the bookmark's empty object as a row of the table.
                Transform::Table { .. } => shaped(bookmark(&api_version, kind), resource, output, first),
            };
            ("BOOKMARK", object)
        }
        WatchEvent::Error(error) => (
            "ERROR",
            serde_json::to_value(error.status()).unwrap_or(Value::Null),
        ),
    };
    json!({"type": kind_name, "object": object})
}

/// `Status` of a successful delete that returns no object.
pub fn success_status(group: &str, resource: &str, name: &str, uid: &str) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), Value::String(name.to_owned()));
    if !group.is_empty() {
        details.insert("group".into(), Value::String(group.to_owned()));
    }
    details.insert("kind".into(), Value::String(resource.to_owned()));
    if !uid.is_empty() {
        details.insert("uid".into(), Value::String(uid.to_owned()));
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_output() -> Output {
        Output {
            encoding: Encoding::Json { pretty: false },
            transform: Transform::None,
        }
    }

    #[test]
    fn lists_strip_item_type_meta_and_carry_list_meta() {
        let result = ListResult {
            items: vec![json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}})],
            resource_version: 12,
            continue_token: Some("tok".into()),
            remaining: Some(3),
        };
        let registry = crate::registry::Registry::builtin();
        let pods = registry.find("", "v1", "pods").unwrap();
        let list = list(result, &pods, &json_output());
        assert_eq!(
            list,
            json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "12", "continue": "tok", "remainingItemCount": 3}, "items": [{"metadata": {"name": "a"}}]})
        );
    }

    #[test]
    fn bookmarks_look_like_upstream() {
        let event = watch_event(
            WatchEvent::Bookmark {
                resource_version: 7,
                initial_events_end: true,
            },
            &crate::registry::Registry::builtin()
                .find("apps", "v1", "deployments")
                .unwrap(),
            &json_output(),
            true,
        );
        assert_eq!(
            event,
            json!({"type": "BOOKMARK", "object": {"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"resourceVersion": "7", "creationTimestamp": null, "annotations": {"k8s.io/initial-events-end": "true"}}}})
        );
    }
}
