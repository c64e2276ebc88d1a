//! The request pipeline: warp glue, authentication, routing of the non-resource endpoints,
//! metrics and a tracing span per request.
//!
//! Every request enters [`filter`], which extracts what the pipeline needs and calls
//! [`handle`]. Errors become responses only through [`ApiError`].

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes};
use futures_util::{Stream, TryStreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use tracing::Instrument;
use warp::Filter;
use warp::filters::path::FullPath;
use warp::reply::Response;

use crate::Shared;
use crate::authn::{PeerIdentity, UserInfo};
use crate::metrics::RequestLabels;
use crate::request_info::RequestInfo;
use crate::status::ApiError;

/// A request body, as a stream of chunks.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, warp::Error>> + Send>>;

/// Everything the pipeline knows about a request.
pub struct ApiRequest {
    /// The HTTP method.
    pub method: Method,
    /// The parsed path.
    pub info: RequestInfo,
    /// The raw query string.
    pub query: String,
    /// The request headers.
    pub headers: HeaderMap,
    /// The authenticated user.
    pub user: UserInfo,
    /// The body, not yet read.
    pub body: BodyStream,
    /// The connection's upgrade, when the client asked for one.
    pub upgrade: Option<PendingUpgrade>,
}

/// A client's pending connection upgrade, taken out of the hyper request by the TLS layer so
/// it can travel through warp (whose extensions must be `Clone`); whoever answers 101 takes it.
#[derive(Clone)]
pub struct PendingUpgrade(Arc<std::sync::Mutex<Option<hyper::upgrade::OnUpgrade>>>);

impl PendingUpgrade {
    pub fn new(upgrade: hyper::upgrade::OnUpgrade) -> Self {
        PendingUpgrade(Arc::new(std::sync::Mutex::new(Some(upgrade))))
    }

    /// The upgrade, once.
    pub fn take(&self) -> Option<hyper::upgrade::OnUpgrade> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

/// Paths that anonymous requests may reach (`cacerts`: the cluster CA, public by nature, which
/// agents pin against the hash in their join token before trusting it, as k3s serves it).
const PUBLIC_ROOTS: &[&str] = &["healthz", "livez", "readyz", "version", "cacerts"];
/// Non-resource paths used as metric labels; others are labelled "other".
const KNOWN_ROOTS: &[&str] = &[
    "healthz",
    "livez",
    "readyz",
    "version",
    "cacerts",
    "metrics",
    "api",
    "apis",
    "openapi",
    ".well-known",
    "openid",
];

/// The warp filter that feeds every request into [`handle`].
pub fn filter(shared: Arc<Shared>) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<PeerIdentity>())
        .and(warp::ext::optional::<PendingUpgrade>())
        .and(warp::body::stream())
        .then(
            move |method, path: FullPath, query, headers, peer, upgrade, body| {
                let body = box_body(body);
                handle(
                    shared.clone(),
                    method,
                    path.as_str().to_owned(),
                    RequestParts {
                        query,
                        headers,
                        peer,
                        upgrade,
                    },
                    body,
                )
            },
        )
        .recover(|rejection: warp::Rejection| async move {
            tracing::warn!(?rejection, "request rejected before reaching the handler");
            Ok::<_, Infallible>(ApiError::internal("the request could not be read").into_response())
        })
        .unify()
}

fn box_body<S, B>(body: S) -> BodyStream
where
    S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf,
{
    Box::pin(body.map_ok(|mut chunk| {
        let len = chunk.remaining();
        chunk.copy_to_bytes(len)
    }))
}

/// What a request brings besides its method, path and body.
struct RequestParts {
    query: String,
    headers: HeaderMap,
    peer: Option<PeerIdentity>,
    upgrade: Option<PendingUpgrade>,
}

async fn handle(
    shared: Arc<Shared>,
    method: Method,
    path: String,
    incoming: RequestParts,
    body: BodyStream,
) -> Response {
    let RequestParts {
        query,
        headers,
        peer,
        upgrade,
    } = incoming;
    let started = Instant::now();
    let info = RequestInfo::parse(&method, &path, &query);
    let span = tracing::info_span!(
        "request",
        verb = %info.verb,
        path = %path,
        user = tracing::field::Empty,
        code = tracing::field::Empty,
    );
    let labels = metric_labels(&info);
    async move {
        let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let response = match shared.authn.authenticate(peer.as_ref(), authorization) {
            Err(err) => {
                tracing::debug!(error = %err, "authentication failed");
                ApiError::unauthorized().into_response()
            }
            Ok(user) => {
                tracing::Span::current().record("user", user.name.as_str());
                let request = ApiRequest {
                    method,
                    info,
                    query,
                    headers,
                    user,
                    body,
                    upgrade,
                };
                route(&shared, request).await
            }
        };
        let code = response.status().as_u16();
        tracing::Span::current().record("code", code);
        tracing::debug!(elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "served");
        shared.metrics.observe_request(&labels, code, started.elapsed());
        response
    }
    .instrument(span)
    .await
}

async fn route(shared: &Shared, request: ApiRequest) -> Response {
    let path = request.info.path.trim_end_matches('/');
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let root = segments.next().unwrap_or_default();
    let rest = segments.next().filter(|r| !r.is_empty());
    if !PUBLIC_ROOTS.contains(&root) && request.user.is_anonymous() {
        return ApiError::unauthorized().into_response();
    }
    if let Some(response) = crate::openapi::serve_with(
        &shared.api.registry.current(),
        &request.method,
        &request.info.path,
        &request.query,
        &request.headers,
    ) {
        return response;
    }
    match (root, rest) {
        ("version", None) => json(&crate::version::info()),
        ("cacerts", None) if request.method == Method::GET => text(StatusCode::OK, shared.ca_pem.clone()),
        ("healthz" | "livez" | "readyz", check) => {
            let endpoint = match root {
                "healthz" => &shared.healthz,
                "livez" => &shared.livez,
                _ => &shared.readyz,
            };
            let result = endpoint.serve(check, &request.query);
            text(result.status, result.body)
        }
        ("metrics", None) => {
            let body = shared
                .metrics
                .render(shared.store.open_watches(), shared.store.current_revision());
            let mut response = Response::new(body.into());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            response
        }
        ("api" | "apis", _) => crate::api::serve(&shared.api, request).await,
        // Service account issuer discovery, as upstream's OpenIDMetadataServer.
        (".well-known", Some("openid-configuration")) if request.method == Method::GET => {
            let jwks_uri = format!("https://{}/openid/v1/jwks", shared.api.server_address);
            discovery_document(
                &shared.api.tokens.openid_configuration(&jwks_uri),
                "application/json",
            )
        }
        ("openid", Some("v1/jwks")) if request.method == Method::GET => {
            discovery_document(&shared.api.tokens.jwks(), "application/jwk-set+json")
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n".to_owned()),
    }
}

fn metric_labels(info: &RequestInfo) -> RequestLabels {
    if info.is_resource_request {
        return RequestLabels {
            verb: info.verb.to_ascii_uppercase(),
            group: info.api_group.clone(),
            version: info.api_version.clone(),
            resource: info.resource.clone(),
            subresource: info.subresource.clone(),
            scope: info.scope().to_owned(),
            path: String::new(),
        };
    }
    let root = info
        .path
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or_default();
    RequestLabels {
        verb: info.verb.to_ascii_uppercase(),
        path: if KNOWN_ROOTS.contains(&root) {
            format!("/{root}")
        } else {
            "other".to_owned()
        },
        ..Default::default()
    }
}

/// A service account issuer discovery document, cacheable as upstream serves it.
fn discovery_document(value: &impl serde::Serialize, content_type: &'static str) -> Response {
    let mut response = json(value);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(cache) = HeaderValue::from_str(&format!(
        "public, max-age={}",
        crate::satoken::DISCOVERY_MAX_AGE_SECONDS
    )) {
        headers.insert(header::CACHE_CONTROL, cache);
    }
    response
}

/// A JSON response.
pub fn json(value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = Response::new(body.into());
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            response
        }
        Err(err) => ApiError::internal(err).into_response(),
    }
}

/// A plain-text response, as Go's net/http writes them.
pub fn text(status: StatusCode, body: String) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    response
}
