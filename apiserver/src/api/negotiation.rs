//! Content negotiation: what the client sends (`Content-Type`) and what it accepts
//! (`Accept`, with q-values), as kube-apiserver negotiates them.

use crate::status::ApiError;

/// Media types objects can be written in.
pub const SUPPORTED_OUTPUT: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
/// Media types request bodies can be read from.
pub const SUPPORTED_INPUT: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];
/// Media types of PATCH bodies.
pub const SUPPORTED_PATCH: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// A parsed media type with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct MediaType {
    /// `type/subtype`, lower case.
    pub essence: String,
    /// Parameters other than `q`, with lower-case names.
    pub params: Vec<(String, String)>,
    /// The quality (1.0 when absent).
    pub quality: f32,
}

impl MediaType {
    /// Parses one media range (`application/json;as=Table;v=v1;g=meta.k8s.io;q=0.9`).
    pub fn parse(text: &str) -> Option<MediaType> {
        let mut parts = text.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        if essence.is_empty() || !essence.contains('/') {
            return None;
        }
        let mut params = Vec::new();
        let mut quality = 1.0;
        for part in parts {
            let Some((key, value)) = part.split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim().trim_matches('"').to_owned();
            if key == "q" {
                quality = value.parse().unwrap_or(0.0);
            } else {
                params.push((key, value));
            }
        }
        Some(MediaType {
            essence,
            params,
            quality,
        })
    }

    /// The parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the range covers JSON (`application/json`, `application/*`, `*/*`).
    fn covers_json(&self) -> bool {
        matches!(
            self.essence.as_str(),
            "application/json" | "application/*" | "*/*"
        )
    }
}

/// Parses an `Accept` header into media ranges, best first (stable for equal quality).
pub fn accept_list(accept: Option<&str>) -> Vec<MediaType> {
    let mut list: Vec<MediaType> = accept
        .unwrap_or("")
        .split(',')
        .filter_map(MediaType::parse)
        .filter(|m| m.quality > 0.0)
        .collect();
    list.sort_by(|a, b| {
        b.quality
            .partial_cmp(&a.quality)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    list
}

/// How a response is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// JSON (pretty-printed when asked).
    Json {
        /// Indented output.
        pretty: bool,
    },
    /// YAML.
    Yaml,
    /// Kubernetes protobuf, for kinds that have a message (others fall back to JSON).
    Protobuf,
}

/// What a response carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// The object (or list) itself.
    None,
    /// Only metadata: `PartialObjectMetadata(List)` of meta.k8s.io/v1 (or v1beta1).
    PartialMetadata {
        /// `v1` or `v1beta1`.
        beta: bool,
    },
    /// A `Table` of meta.k8s.io/v1 (or v1beta1): the columns and cells of the resource's
    /// printer, as `kubectl get` asks for them. Served as JSON or YAML only (a Table has no
    /// protobuf message upstream).
    Table {
        /// `v1` or `v1beta1`.
        beta: bool,
        /// What each row carries of its object (the `includeObject` query parameter).
        include: IncludeObject,
    },
}

/// `TableOptions.includeObject`: what a Table row embeds of its object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// The object's `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the query parameter as upstream's `asTable` does.
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value.unwrap_or_default() {
            "" | "Metadata" => Ok(Self::Metadata),
            "None" => Ok(Self::None),
            "Object" => Ok(Self::Object),
            other => Err(ApiError::bad_request(format!(
                "unrecognized includeObject value: {other:?}"
            ))),
        }
    }
}

/// The negotiated output of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Output {
    /// The encoding.
    pub encoding: Encoding,
    /// The transformation.
    pub transform: Transform,
}

impl Output {
    /// The `Content-Type` of the response.
    pub fn content_type(&self) -> &'static str {
        match (self.encoding, self.transform) {
            (Encoding::Json { .. }, Transform::None) => "application/json",
            (Encoding::Yaml, Transform::None) => "application/yaml",
            (Encoding::Json { .. }, Transform::PartialMetadata { beta: false }) => {
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
            }
            (Encoding::Json { .. }, Transform::PartialMetadata { beta: true }) => {
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1"
            }
            (Encoding::Yaml, Transform::PartialMetadata { .. }) => "application/yaml",
            // Upstream writes transformed responses with the plain media type of the serializer.
            (Encoding::Json { .. }, Transform::Table { .. }) => "application/json",
            (Encoding::Yaml, Transform::Table { .. }) => "application/yaml",
            (Encoding::Protobuf, _) => rudder_machinery::protobuf::MEDIA_TYPE,
        }
    }
}

/// Chooses the output for a response from the `Accept` header. `pretty` comes from the
/// `pretty` query parameter or the user agent.
pub fn negotiate_output(accept: Option<&str>, pretty: bool) -> Result<Output, ApiError> {
    let list = accept_list(accept);
    if list.is_empty() {
        return Ok(Output {
            encoding: Encoding::Json { pretty },
            transform: Transform::None,
        });
    }
    for media in &list {
        let encoding = match media.essence.as_str() {
            _ if media.covers_json() => Encoding::Json { pretty },
            "application/yaml" => Encoding::Yaml,
            "application/vnd.kubernetes.protobuf" => Encoding::Protobuf,
            _ => continue,
        };
        let transform = match media.param("as") {
            None => Transform::None,
            Some("PartialObjectMetadata" | "PartialObjectMetadataList")
                if media.param("g") == Some("meta.k8s.io") =>
            {
                match media.param("v") {
                    Some("v1") => Transform::PartialMetadata { beta: false },
                    Some("v1beta1") => Transform::PartialMetadata { beta: true },
                    _ => continue,
                }
            }
            // Tables exist in JSON and YAML only (upstream's `AllowsMediaTypeTransform`).
            Some("Table") if media.param("g") == Some("meta.k8s.io") && encoding != Encoding::Protobuf => {
                match media.param("v") {
                    Some("v1") => Transform::Table {
                        beta: false,
                        include: IncludeObject::Metadata,
                    },
                    Some("v1beta1") => Transform::Table {
                        beta: true,
                        include: IncludeObject::Metadata,
                    },
                    _ => continue,
                }
            }
            // Other transformations are not served: try the next range.
            Some(_) => continue,
        };
        return Ok(Output { encoding, transform });
    }
    Err(ApiError::not_acceptable(SUPPORTED_OUTPUT))
}

/// The body format of a create or update, from `Content-Type` (JSON when absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
    /// Kubernetes protobuf.
    Protobuf,
}

/// The body format of a create, update or delete request.
pub fn negotiate_input(content_type: Option<&str>) -> Result<BodyFormat, ApiError> {
    let Some(raw) = content_type.filter(|c| !c.trim().is_empty()) else {
        return Ok(BodyFormat::Json);
    };
    match MediaType::parse(raw).map(|m| m.essence).as_deref() {
        Some("application/json") => Ok(BodyFormat::Json),
        Some("application/yaml") => Ok(BodyFormat::Yaml),
        Some("application/vnd.kubernetes.protobuf") => Ok(BodyFormat::Protobuf),
        _ => Err(ApiError::unsupported_media_type(raw, SUPPORTED_INPUT)),
    }
}

/// The patch formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchFormat {
    /// RFC 6902.
    Json,
    /// RFC 7386.
    Merge,
    /// Strategic merge patch.
    Strategic,
    /// Server-side apply.
    Apply,
}

/// The patch format of a PATCH request.
pub fn negotiate_patch(content_type: Option<&str>) -> Result<PatchFormat, ApiError> {
    let raw = content_type.unwrap_or("");
    match MediaType::parse(raw).map(|m| m.essence).as_deref() {
        Some("application/json-patch+json") => Ok(PatchFormat::Json),
        Some("application/merge-patch+json") => Ok(PatchFormat::Merge),
        Some("application/strategic-merge-patch+json") => Ok(PatchFormat::Strategic),
        Some("application/apply-patch+yaml") => Ok(PatchFormat::Apply),
        _ => Err(ApiError::unsupported_media_type(raw, SUPPORTED_PATCH)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_gets_tables() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        let output = negotiate_output(Some(accept), false).unwrap();
        assert_eq!(
            output.transform,
            Transform::Table {
                beta: false,
                include: IncludeObject::Metadata
            }
        );
        assert_eq!(output.encoding, Encoding::Json { pretty: false });
        assert_eq!(output.content_type(), "application/json");
        let beta = "application/json;as=Table;v=v1beta1;g=meta.k8s.io";
        assert_eq!(
            negotiate_output(Some(beta), false).unwrap().transform,
            Transform::Table {
                beta: true,
                include: IncludeObject::Metadata
            }
        );
        let yaml = negotiate_output(Some("application/yaml;as=Table;v=v1;g=meta.k8s.io"), false).unwrap();
        assert_eq!(
            (yaml.encoding, yaml.transform, yaml.content_type()),
            (
                Encoding::Yaml,
                Transform::Table {
                    beta: false,
                    include: IncludeObject::Metadata
                },
                "application/yaml"
            )
        );
        let any = negotiate_output(Some("*/*;as=Table;v=v1;g=meta.k8s.io"), false).unwrap();
        assert_eq!(
            any.transform,
            Transform::Table {
                beta: false,
                include: IncludeObject::Metadata
            }
        );
    }

    #[test]
    fn tables_have_no_protobuf_or_other_versions() {
        let accept = "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json";
        let output = negotiate_output(Some(accept), false).unwrap();
        assert_eq!(output.transform, Transform::None);
        assert_eq!(output.encoding, Encoding::Json { pretty: false });
        for accept in [
            "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
            "application/json;as=Table;v=v2;g=meta.k8s.io",
            "application/json;as=Table;v=v1;g=other.k8s.io",
        ] {
            assert_eq!(
                negotiate_output(Some(accept), false).unwrap_err().code.as_u16(),
                406,
                "{accept}"
            );
        }
    }

    #[test]
    fn metadata_informers_get_partial_metadata() {
        let accept = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
        assert_eq!(
            negotiate_output(Some(accept), false).unwrap().transform,
            Transform::PartialMetadata { beta: false }
        );
    }

    #[test]
    fn quality_values_order_choices() {
        let output = negotiate_output(Some("application/json;q=0.5, application/yaml"), false).unwrap();
        assert_eq!(output.encoding, Encoding::Yaml);
        assert!(negotiate_output(Some("text/html"), false).is_err());
        assert_eq!(
            negotiate_output(Some("*/*"), true).unwrap().encoding,
            Encoding::Json { pretty: true }
        );
    }

    #[test]
    fn input_types() {
        assert_eq!(negotiate_input(None).unwrap(), BodyFormat::Json);
        assert_eq!(
            negotiate_input(Some("application/yaml; charset=utf-8")).unwrap(),
            BodyFormat::Yaml
        );
        assert_eq!(
            negotiate_input(Some("text/plain")).unwrap_err().code.as_u16(),
            415
        );
        assert_eq!(
            negotiate_patch(Some("application/merge-patch+json")).unwrap(),
            PatchFormat::Merge
        );
        assert_eq!(
            negotiate_patch(Some("application/json"))
                .unwrap_err()
                .code
                .as_u16(),
            415
        );
    }
}
