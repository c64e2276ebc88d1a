//! The `token` subresource of serviceaccounts (TokenRequest, upstream's
//! `pkg/registry/core/serviceaccount/storage/token.go`), and [`StoreObjects`], the store
//! lookups service account token authentication uses.
//!
//! Signing and claims belong to `satoken`; deciding identities belongs to `authn`.

use std::sync::Arc;

use http::StatusCode;
use rudder_machinery::field::{FieldError, Path};
use serde_json::{Value, json};
use warp::reply::Response;

use super::{Target, output};
use crate::authn::{BoundKind, BoundObjects, ObjectState};
use crate::http::BodyStream;
use crate::object;
use crate::registry::Registries;
use crate::satoken::{self, Binding, Claims, ObjectRef};
use crate::status::{ApiError, GroupResource};
use crate::store::GenericStore;

const GROUP: &str = "authentication.k8s.io";
const KIND: &str = "TokenRequest";
/// The default `spec.expirationSeconds` (upstream's `SetDefaults_TokenRequestSpec`).
const DEFAULT_EXPIRATION_SECONDS: i64 = 60 * 60;
/// The shortest token lifetime (upstream's `MinTokenAgeSec`).
const MIN_EXPIRATION_SECONDS: i64 = 10 * 60;
/// The longest token lifetime.
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// `POST .../serviceaccounts/{name}/token`.
pub(super) async fn create(target: &Target<'_>, body: BodyStream) -> Result<Response, ApiError> {
    let mut request = target.object_body(body, &format!("{GROUP}/v1"), KIND).await?;
    let name = target.name.as_str();
    let namespace = target.namespace.as_str();
    let invalid = |field: &str, value: &str, detail: &str| {
        let error = FieldError::invalid(
            &Path::new("metadata").child(field),
            Value::String(value.to_owned()),
            detail,
        );
        ApiError::invalid(GROUP, KIND, name, &[error])
    };
    let body_name = object::name(&request).to_owned();
    if !body_name.is_empty() && body_name != name {
        return Err(invalid(
            "name",
            &body_name,
            "must match the service account name if specified",
        ));
    }
    let body_namespace = object::namespace(&request).to_owned();
    if !body_namespace.is_empty() && body_namespace != namespace {
        return Err(invalid(
            "namespace",
            &body_namespace,
            "must match the service account namespace if specified",
        ));
    }

    let registry = target.api.registry.current();
    let resource = |name: &str| {
        registry
            .find("", "v1", name)
            .ok_or_else(|| ApiError::internal(format!("the {name} resource is not registered")))
    };
    let store = &target.api.store;
    let account = store.get(&target.resource, namespace, name)?;
    let account_uid = object::uid(&account).to_owned();
    let request_uid = object::uid(&request).to_owned();
    if !request_uid.is_empty() && request_uid != account_uid {
        return Err(ApiError::conflict(
            GroupResource {
                group: GROUP,
                resource: KIND,
            },
            name,
            &format!(
                "the UID in the token request ({request_uid}) does not match the UID of the service account ({account_uid})"
            ),
        ));
    }

    let issuer = &target.api.tokens;
    let spec = request.get("spec").cloned().unwrap_or_else(|| json!({}));
    let mut audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|auds| auds.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences = issuer.audiences().to_vec();
    }
    let expiration_seconds = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
        Some(value) => value.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!(
                "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: json: cannot unmarshal {value} into Go struct field TokenRequestSpec.spec.expirationSeconds of type int64"
            ))
        })?,
    };
    let now = jiff::Timestamp::now().as_second();

    let mut errors = Vec::new();
    let expiration_path = Path::new("spec").child("expirationSeconds");
    if expiration_seconds < MIN_EXPIRATION_SECONDS {
        errors.push(FieldError::invalid(
            &expiration_path,
            json!(expiration_seconds),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration_seconds > MAX_EXPIRATION_SECONDS {
        errors.push(FieldError::invalid(
            &expiration_path,
            json!(expiration_seconds),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(GROUP, KIND, "", &errors));
    }

    let mut binding = Binding::default();
    let bound_ref = spec.get("boundObjectRef").filter(|r| r.is_object());
    if let Some(bound) = bound_ref {
        let text = |field: &str| bound.get(field).and_then(Value::as_str).unwrap_or("").to_owned();
        let (api_version, kind, ref_name, ref_uid) =
            (text("apiVersion"), text("kind"), text("name"), text("uid"));
        let (group, version) = match api_version.rsplit_once('/') {
            Some((group, version)) => (group.to_owned(), version.to_owned()),
            None => (String::new(), api_version.clone()),
        };
        let uid = match (group.as_str(), kind.as_str()) {
            ("", "Pod") => {
                let pod = store.get(&*resource("pods")?, namespace, &ref_name)?;
                let pod_account = pod
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if pod_account != name {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token for serviceaccount {name:?} to pod running with different serviceaccount name."
                    )));
                }
                let node_name = pod
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if !node_name.is_empty() {
                    // A missing node still leaves its name in the claims.
                    let node = store.get_opt(&*resource("nodes")?, "", node_name)?;
                    binding.node = Some(ObjectRef {
                        name: node_name.to_owned(),
                        uid: node
                            .as_ref()
                            .map(|n| object::uid(n).to_owned())
                            .unwrap_or_default(),
                    });
                }
                let uid = object::uid(&pod).to_owned();
                binding.pod = Some(ObjectRef {
                    name: ref_name.clone(),
                    uid: uid.clone(),
                });
                uid
            }
            ("", "Node") => {
                let node = store.get(&*resource("nodes")?, "", &ref_name)?;
                let uid = object::uid(&node).to_owned();
                binding.node = Some(ObjectRef {
                    name: ref_name.clone(),
                    uid: uid.clone(),
                });
                uid
            }
            ("", "Secret") => {
                let secret = store.get(&*resource("secrets")?, namespace, &ref_name)?;
                let uid = object::uid(&secret).to_owned();
                binding.secret = Some(ObjectRef {
                    name: ref_name.clone(),
                    uid: uid.clone(),
                });
                uid
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token to object of type {group}/{version}, Kind={kind}"
                )));
            }
        };
        if !ref_uid.is_empty() && ref_uid != uid {
            return Err(ApiError::conflict(
                GroupResource {
                    group: &group,
                    resource: &kind,
                },
                &ref_name,
                &format!(
                    "the UID in the bound object reference ({ref_uid}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
    }

    // Upstream's --service-account-extend-token-expiration (on by default): the kubelet's
    // pod-bound tokens for the API server live a year and warn after the requested hour.
    let mut expiry = expiration_seconds;
    let mut warn_after = 0;
    let for_api_server = audiences.iter().all(|a| issuer.audiences().contains(a));
    if binding.pod.is_some() && expiration_seconds == satoken::WARN_ONLY_EXPIRATION_SECONDS && for_api_server
    {
        warn_after = expiration_seconds;
        expiry = satoken::EXTENDED_EXPIRATION_SECONDS;
    }
    let claims = Claims::new(
        issuer.issuer(),
        namespace,
        name,
        &account_uid,
        binding,
        audiences.clone(),
        now,
        expiry,
        warn_after,
        crate::util::new_uid(),
    );
    let token = issuer.sign(&claims).map_err(ApiError::internal)?;

    object::set_type_meta(&mut request, &format!("{GROUP}/v1"), KIND);
    if let Some(meta) = object::meta_mut(&mut request) {
        meta.insert("name".into(), Value::String(name.to_owned()));
        meta.insert("namespace".into(), Value::String(namespace.to_owned()));
        meta.insert("uid".into(), Value::String(account_uid));
        meta.insert("creationTimestamp".into(), Value::String(rfc3339(now)));
    }
    request["spec"] = json!({
        "audiences": audiences,
        "expirationSeconds": expiration_seconds,
        "boundObjectRef": bound_ref.map_or(Value::Null, |bound| {
            // The typed BoundObjectReference: its four fields, empty ones omitted.
            let fields = ["kind", "apiVersion", "name", "uid"]
                .into_iter()
                .filter_map(|field| {
                    let value = bound.get(field).and_then(Value::as_str).filter(|v| !v.is_empty())?;
                    Some((field.to_owned(), Value::String(value.to_owned())))
                })
                .collect();
            Value::Object(fields)
        }),
    });
    request["status"] = json!({
        "token": token,
        "expirationTimestamp": rfc3339(now.saturating_add(expiration_seconds)),
    });
    Ok(output::respond(StatusCode::CREATED, &request, &target.output))
}

fn rfc3339(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The objects service account tokens name, read from the store.
pub struct StoreObjects {
    registry: Arc<Registries>,
    store: GenericStore,
}

impl StoreObjects {
    /// Lookups over `storage` (reads only: no admission, no hooks).
    pub fn new(registry: Arc<Registries>, storage: rudder_storage::Store) -> Self {
        StoreObjects {
            registry,
            store: GenericStore::new(storage, crate::admission::Admission::default()),
        }
    }
}

impl BoundObjects for StoreObjects {
    fn lookup(&self, kind: BoundKind, namespace: &str, name: &str) -> Result<Option<ObjectState>, String> {
        let resource = match kind {
            BoundKind::ServiceAccount => "serviceaccounts",
            BoundKind::Pod => "pods",
            BoundKind::Secret => "secrets",
            BoundKind::Node => "nodes",
        };
        let resource = self
            .registry
            .current()
            .find("", "v1", resource)
            .ok_or_else(|| format!("the {resource} resource is not registered"))?;
        let object = self
            .store
            .get_opt(&resource, namespace, name)
            .map_err(|err| err.message)?;
        Ok(object.map(|object| ObjectState {
            uid: object::uid(&object).to_owned(),
            deletion_timestamp: object::deletion_timestamp(&object)
                .and_then(|at| at.parse::<jiff::Timestamp>().ok())
                .map(|at| at.as_second()),
        }))
    }

    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<crate::bootstrap_token::SecretState>, String> {
        use base64::Engine;
        let resource = self
            .registry
            .current()
            .find("", "v1", "secrets")
            .ok_or_else(|| "the secrets resource is not registered".to_owned())?;
        let Some(object) = self
            .store
            .get_opt(&resource, namespace, name)
            .map_err(|err| err.message)?
        else {
            return Ok(None);
        };
        let data = object
            .get("data")
            .and_then(|d| d.as_object())
            .into_iter()
            .flatten()
            .filter_map(|(key, value)| {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(value.as_str()?)
                    .ok()?;
                Some((key.clone(), decoded))
            })
            .collect();
        Ok(Some(crate::bootstrap_token::SecretState {
            type_: object
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_owned(),
            data,
            deleting: object::deletion_timestamp(&object).is_some(),
        }))
    }
}
