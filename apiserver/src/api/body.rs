//! Request bodies: read with upstream's size limit, decoded from JSON or YAML.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::Value;

use crate::api::negotiation::BodyFormat;
use crate::http::BodyStream;
use crate::status::ApiError;

/// kube-apiserver's `--max-request-body-bytes` default: 3 MiB.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Reads the whole body; 413 beyond [`MAX_BODY_BYTES`].
pub async fn read(mut body: BodyStream) -> Result<Bytes, ApiError> {
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|err| ApiError::bad_request(format!("error reading the request body: {err}")))?;
        if out.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::too_large(MAX_BODY_BYTES));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// Decodes a JSON, YAML or protobuf document into a JSON value.
pub fn decode(bytes: &[u8], format: BodyFormat) -> Result<Value, ApiError> {
    match format {
        BodyFormat::Protobuf => rudder_machinery::protobuf::decode(bytes)
            .map(|(_, _, value)| value)
            .map_err(|err| ApiError::bad_request(err.to_string())),
        BodyFormat::Json => serde_json::from_slice(bytes).map_err(|err| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {err}"))
        }),
        BodyFormat::Yaml => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| ApiError::bad_request("error converting YAML to JSON: the body is not UTF-8"))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|err| ApiError::bad_request(format!("error converting YAML to JSON: {err}")))
        }
    }
}

/// Decodes the body of a create or update: an object of `api_version`/`kind`, which may
/// leave both out.
pub fn decode_object(
    bytes: &[u8],
    format: BodyFormat,
    api_version: &str,
    kind: &str,
) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("Object 'Kind' is missing in ''"));
    }
    let mut object = decode(bytes, format)?;
    let Some(map) = object.as_object_mut() else {
        return Err(ApiError::bad_request(format!(
            "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}",
            json_type(&object)
        )));
    };
    let body_version = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let body_kind = map.get("kind").and_then(Value::as_str).unwrap_or("").to_owned();
    if !body_version.is_empty() && body_version != api_version {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({body_version}) does not match the expected API version ({api_version})"
        )));
    }
    if !body_kind.is_empty() && body_kind != kind {
        let version = api_version.rsplit('/').next().unwrap_or(api_version);
        return Err(ApiError::bad_request(format!(
            "{body_kind} in version {version:?} cannot be handled as a {kind}: no kind {body_kind:?} is registered for version {api_version:?}"
        )));
    }
    map.insert("apiVersion".into(), Value::String(api_version.to_owned()));
    map.insert("kind".into(), Value::String(kind.to_owned()));
    Ok(object)
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_json_and_yaml_objects() {
        let yaml = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n";
        let object = decode_object(yaml, BodyFormat::Yaml, "v1", "ConfigMap").unwrap();
        assert_eq!(object["metadata"]["name"], "a");
        let bare = decode_object(
            br#"{"metadata":{"name":"a"}}"#,
            BodyFormat::Json,
            "v1",
            "ConfigMap",
        )
        .unwrap();
        assert_eq!(
            bare["kind"], "ConfigMap",
            "apiVersion and kind default to the endpoint's"
        );
        let wrong = decode_object(
            br#"{"apiVersion":"apps/v1","kind":"ConfigMap"}"#,
            BodyFormat::Json,
            "v1",
            "ConfigMap",
        );
        assert_eq!(
            wrong.unwrap_err().message,
            "the API version in the data (apps/v1) does not match the expected API version (v1)"
        );
        assert_eq!(
            decode_object(b"{", BodyFormat::Json, "v1", "ConfigMap")
                .unwrap_err()
                .code
                .as_u16(),
            400
        );
        assert_eq!(
            decode_object(b"[1]", BodyFormat::Json, "v1", "ConfigMap")
                .unwrap_err()
                .code
                .as_u16(),
            400
        );
    }
}
