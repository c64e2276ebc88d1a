//! The OpenAPI documents a default v1.35 kube-apiserver serves at `/openapi/v2` and
//! `/openapi/v3/<path>`, embedded in the binary.
//!
//! `hack/gen-apis.py` takes them from upstream's own generated specs (the k8s.io/kubernetes
//! module's `api/openapi-spec`), keeps only what a default server enables (the GA group
//! versions, their groups, `api`, `apis` and `version`; in v2, the paths of those and the
//! definitions and parameters they use), minifies them and compresses them with gzip. Each
//! document is decompressed on first use and kept.
//!
//! Hashes are what upstream's handlers compute (kube-openapi's `computeETag`): the SHA-512 of
//! the served JSON in upper-case hex. Upstream uses them as the `?hash=` of the v3 index and as
//! `ETag`s.

use std::io::Read;
use std::sync::{Arc, OnceLock};

use flate2::read::GzDecoder;
use thiserror::Error;

#[path = "generated/openapi/documents.rs"]
#[rustfmt::skip]
mod documents;

#[path = "generated/openapi/v2_protobuf.rs"]
#[rustfmt::skip]
mod v2_protobuf;

/// A document's JSON bytes and its hash.
pub type Document = (Arc<Vec<u8>>, &'static str);

/// An embedded document cannot be decompressed (a build defect: the tests decompress them all).
#[derive(Debug, Error)]
#[error("the embedded OpenAPI document {name} is corrupt: {source}")]
pub struct OpenApiError {
    /// `v2` or the v3 path.
    pub name: &'static str,
    /// The decompression failure.
    #[source]
    pub source: std::io::Error,
}

/// One embedded document (an entry of the generated table).
struct Embedded {
    /// The v3 path (empty for v2).
    path: &'static str,
    /// SHA-512 of the JSON, upper-case hex.
    hash: &'static str,
    /// Length of the JSON.
    len: usize,
    /// The JSON, gzip-compressed.
    gzip: &'static [u8],
    /// The JSON, once decompressed.
    json: OnceLock<Arc<Vec<u8>>>,
}

impl Embedded {
    const fn new(path: &'static str, hash: &'static str, len: usize, gzip: &'static [u8]) -> Self {
        Embedded {
            path,
            hash,
            len,
            gzip,
            json: OnceLock::new(),
        }
    }

    fn name(&self) -> &'static str {
        if self.path.is_empty() { "v2" } else { self.path }
    }

    fn document(&self) -> Result<Document, OpenApiError> {
        if let Some(json) = self.json.get() {
            return Ok((json.clone(), self.hash));
        }
        let mut json = Vec::with_capacity(self.len);
        let corrupt = |source| OpenApiError {
            name: self.name(),
            source,
        };
        GzDecoder::new(self.gzip)
            .read_to_end(&mut json)
            .map_err(corrupt)?;
        if json.len() != self.len {
            return Err(corrupt(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} bytes instead of {}", json.len(), self.len),
            )));
        }
        Ok((self.json.get_or_init(|| Arc::new(json)).clone(), self.hash))
    }
}

/// The v3 paths served (`api`, `api/v1`, `apis`, `apis/apps`, `apis/apps/v1`, ..., `version`),
/// in the order of upstream's index (sorted: it marshals a Go map).
pub fn v3_paths() -> impl Iterator<Item = &'static str> {
    documents::V3.iter().map(|d| d.path)
}

/// The v3 paths served with the hash of each document, without decompressing anything: what
/// the `/openapi/v3` index lists.
pub fn v3_hashes() -> impl Iterator<Item = (&'static str, &'static str)> {
    documents::V3.iter().map(|d| (d.path, d.hash))
}

/// The v3 document of a path (minified JSON) and its hash; `None` for a path not served.
pub fn v3_document(path: &str) -> Result<Option<Document>, OpenApiError> {
    match documents::V3.iter().find(|d| d.path == path) {
        Some(embedded) => embedded.document().map(Some),
        None => Ok(None),
    }
}

/// The v2 document (minified JSON) and its hash.
pub fn v2_document() -> Result<Document, OpenApiError> {
    documents::V2.document()
}

/// The v2 document in upstream's protobuf form (gnostic's `openapi.v2.Document`, converted
/// from the JSON by kube-openapi's `ToProtoBinary` at generation time) and the hash of the
/// JSON, which upstream serves it with as `ETag`.
pub fn v2_protobuf() -> Result<Document, OpenApiError> {
    v2_protobuf::V2_PROTOBUF.document()
}

/// The protobuf v2 document gzip-compressed, as embedded (the exact bytes of
/// [`v2_protobuf`]).
pub fn v2_protobuf_gzip() -> &'static [u8] {
    v2_protobuf::V2_PROTOBUF.gzip
}

/// The v2 document gzip-compressed, as embedded (the exact bytes of [`v2_document`]), for a
/// response with `Content-Encoding: gzip`.
pub fn v2_gzip() -> &'static [u8] {
    documents::V2.gzip
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;
    use crate::resources::GROUPS;

    fn is_ga(version: &str) -> bool {
        version
            .strip_prefix('v')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }

    fn parse(path: &str) -> Value {
        let (json, _) = v3_document(path).unwrap().unwrap();
        serde_json::from_slice(&json).unwrap()
    }

    /// Every `$ref` in a JSON value.
    fn refs(value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    match item {
                        Value::String(r) if key == "$ref" => {
                            out.insert(r.clone());
                        }
                        _ => refs(item, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
            _ => {}
        }
    }

    #[test]
    fn paths_are_every_ga_group_version_and_nothing_else() {
        let paths: Vec<_> = v3_paths().collect();
        let mut sorted = paths.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(paths, sorted, "upstream's index is sorted");

        let mut expected = BTreeSet::from(["api", "apis", "version"].map(str::to_owned));
        for group in GROUPS {
            let prefix = if group.name.is_empty() {
                "api".to_owned()
            } else {
                expected.insert(format!("apis/{}", group.name));
                format!("apis/{}", group.name)
            };
            for version in group.versions {
                expected.insert(format!("{prefix}/{version}"));
            }
        }
        let actual: BTreeSet<_> = paths.iter().map(|p| (*p).to_owned()).collect();
        assert_eq!(actual, expected);
        for path in [
            "api/v1",
            "apis/apps/v1",
            "apis/autoscaling/v2",
            "apis/apps",
            "apis",
        ] {
            assert!(paths.contains(&path), "{path}");
        }
        for path in &paths {
            let version = path.rsplit('/').next().unwrap();
            assert!(!version.contains("alpha") && !version.contains("beta"), "{path}");
            if path.split('/').count() == 3 || *path == "api/v1" {
                assert!(is_ga(version), "{path}");
            }
        }
        assert!(!paths.contains(&"apis/storagemigration.k8s.io"));
        assert!(!paths.contains(&"apis/internal.apiserver.k8s.io"));
    }

    #[test]
    fn every_v3_document_is_json_with_its_own_paths_and_resolvable_refs() {
        let hashes: BTreeSet<_> = v3_hashes().map(|(_, hash)| hash).collect();
        assert_eq!(hashes.len(), v3_paths().count(), "hashes are distinct");
        for (path, hash) in v3_hashes() {
            assert_eq!(hash.len(), 128, "{path}");
            assert!(
                hash.bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
            );
            let doc = parse(path);
            assert_eq!(doc["openapi"], "3.0.0", "{path}");
            let paths = doc["paths"].as_object().unwrap();
            assert!(!paths.is_empty(), "{path}");
            for p in paths.keys() {
                assert!(p.starts_with(&format!("/{path}/")), "{path}: {p}");
            }
            let schemas = doc["components"]["schemas"].as_object().unwrap();
            let mut found = BTreeSet::new();
            refs(&doc, &mut found);
            for r in found {
                let name = r.strip_prefix("#/components/schemas/").unwrap();
                assert!(schemas.contains_key(name), "{path}: {r}");
            }
        }
    }

    #[test]
    fn apps_v1_document_describes_deployments() {
        let doc = parse("apis/apps/v1");
        let deployment = &doc["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"][0]["kind"],
            "Deployment"
        );
        assert!(deployment["properties"]["spec"].is_object());
        assert!(doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"].is_object());
    }

    #[test]
    fn documents_are_decompressed_once() {
        let (first, hash) = v3_document("apis/batch/v1").unwrap().unwrap();
        let (second, again) = v3_document("apis/batch/v1").unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(hash, again);
        assert!(v3_document("apis/batch/v1beta1").unwrap().is_none());
        assert!(v3_document("apis/batch/v1/").unwrap().is_none());
        assert!(v3_document("").unwrap().is_none());
    }

    #[test]
    fn v2_has_ga_paths_and_their_definitions_only() {
        let (json, hash) = v2_document().unwrap();
        assert_eq!(hash.len(), 128);
        assert_ne!(Some(hash), v3_hashes().map(|(_, h)| h).next());
        let mut decoded = Vec::new();
        GzDecoder::new(v2_gzip()).read_to_end(&mut decoded).unwrap();
        assert_eq!(decoded, *json);

        let doc: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(doc["swagger"], "2.0");
        let definitions = doc["definitions"].as_object().unwrap();
        let deployment = &definitions["io.k8s.api.apps.v1.Deployment"];
        assert_eq!(
            deployment["x-kubernetes-group-version-kind"],
            serde_json::json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
        );
        assert!(definitions.contains_key("io.k8s.api.core.v1.Pod"));
        assert!(definitions.contains_key("io.k8s.apimachinery.pkg.apis.meta.v1.Patch"));
        for name in definitions.keys() {
            assert!(!name.contains(".v1beta") && !name.contains(".v1alpha"), "{name}");
        }
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.contains_key("/apis/apps/v1/namespaces/{namespace}/deployments"));
        assert!(paths.contains_key("/apis/apps/"));
        assert!(paths.contains_key("/version/"));
        for path in paths.keys() {
            assert!(!path.contains("alpha") && !path.contains("beta"), "{path}");
            assert!(!path.starts_with("/apis/storagemigration.k8s.io"), "{path}");
        }

        let mut found = BTreeSet::new();
        refs(&doc, &mut found);
        for r in found {
            let (section, name) = r.strip_prefix("#/").unwrap().split_once('/').unwrap();
            assert!(doc[section].get(name).is_some(), "{r}");
        }
    }

    /// The length-delimited fields of one protobuf message: (field number, bytes).
    fn fields(mut message: &[u8]) -> Vec<(u64, &[u8])> {
        use prost::encoding::{WireType, decode_key, decode_varint};
        let mut out = Vec::new();
        while !message.is_empty() {
            let (number, wire_type) = decode_key(&mut message).unwrap();
            match wire_type {
                WireType::LengthDelimited => {
                    let len = usize::try_from(decode_varint(&mut message).unwrap()).unwrap();
                    out.push((u64::from(number), &message[..len]));
                    message = &message[len..];
                }
                WireType::Varint => {
                    decode_varint(&mut message).unwrap();
                }
                other => panic!("unexpected wire type {other:?}"),
            }
        }
        out
    }

    #[test]
    fn v2_protobuf_is_converted_from_the_served_json() {
        let (json, hash) = v2_document().unwrap();
        let (pb, pb_hash) = v2_protobuf().unwrap();
        // Regenerating the JSON without the protobuf form fails here.
        assert_eq!(pb_hash, hash);
        let mut decoded = Vec::new();
        GzDecoder::new(v2_protobuf_gzip())
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, *pb);

        // gnostic's Document: swagger = 1, info = 2, paths = 8, definitions = 9 (each a
        // NamedSchema: name = 1, value = 2).
        let document = fields(&pb);
        assert_eq!(document[0], (1, &b"2.0"[..]));
        let definitions: Vec<&[u8]> = document
            .iter()
            .filter(|(n, _)| *n == 9)
            .flat_map(|(_, d)| fields(d))
            .map(|(n, named)| {
                assert_eq!(n, 1);
                fields(named)[0].1
            })
            .collect();
        let doc: Value = serde_json::from_slice(&json).unwrap();
        let names: Vec<&[u8]> = doc["definitions"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_bytes())
            .collect();
        assert_eq!(definitions, names);
        assert!(document.iter().any(|(n, _)| *n == 8));
    }
}
