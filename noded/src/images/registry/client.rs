//! The registry HTTP client and the pull itself. It writes only through the store's
//! verified blob writes and tags the image once every blob is present.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

use super::auth::{AuthConfig, Challenge, basic_authorization, parse_challenges};
use crate::images::digest::sha256_digest;
use crate::images::refs::Target;
use crate::images::store::{
    MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, select_platform,
};
use crate::images::{Error, Image, Reference, Store};

const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json";
/// The largest manifest or index accepted.
const MAX_MANIFEST: usize = 4 << 20;
const MAX_TOKEN_RESPONSE: usize = 1 << 20;
/// How long to wait for a response's headers, and for each chunk of its body.
const TIMEOUT: Duration = Duration::from_secs(60);
const MAX_REDIRECTS: usize = 5;
/// Docker Hub's API host for `docker.io` references.
const DOCKER_HUB_HOST: &str = "registry-1.docker.io";

/// Registry settings of the node.
#[derive(Clone, Debug, Default)]
pub struct RegistryConfig {
    /// Registries (`host[:port]`) reached over plain HTTP.
    pub insecure: Vec<String>,
}

/// Why a pull failed; the texts follow containerd's, which the kubelet shows as is.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("failed to resolve reference \"{reference}\": {source}")]
    Resolve {
        reference: String,
        source: Box<PullError>,
    },
    #[error("{0}: not found")]
    NotFound(String),
    #[error("unexpected status from {method} request to {url}: {status}")]
    Status {
        method: &'static str,
        url: String,
        status: String,
    },
    #[error("pull access denied, repository does not exist or may require authorization: {0}")]
    AccessDenied(String),
    #[error("failed to fetch {kind} token: {source}")]
    Token {
        kind: &'static str,
        source: Box<PullError>,
    },
    #[error("failed to do request: {0}")]
    Request(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] Error),
}

/// A pulled image: its stored form and the digest its reference resolved to.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub image: Image,
    /// `repository@sha256:...` of what the reference resolved to (the repo digest).
    pub repo_digest: String,
}

/// A registry client; cheap to clone.
#[derive(Clone)]
pub struct RegistryClient {
    http: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    config: Arc<RegistryConfig>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("config", &self.config)
            .finish()
    }
}

impl RegistryClient {
    /// A client trusting the system's CA certificates (none found: HTTPS registries fail
    /// verification, plain-HTTP ones still work).
    pub fn new(config: RegistryConfig) -> RegistryClient {
        let provider = rustls::crypto::ring::default_provider();
        let builder = match hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
        {
            Ok(builder) => builder,
            Err(err) => {
                tracing::warn!(error = %err, "no CA certificates for registries; only plain-HTTP registries will work");
                let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .map(|b| {
                    b.with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth()
                });
                match tls {
                    Ok(tls) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls),
                    Err(_) => hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                        rustls::ClientConfig::builder()
                            .with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth(),
                    ),
                }
            }
        };
        let connector = builder.https_or_http().enable_http1().build();
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        RegistryClient {
            http,
            config: Arc::new(config),
        }
    }

    /// Pulls `reference` (normalised, with a tag or digest) into `store` for this node's
    /// platform, trying each credential in turn (none: anonymously) as the kubelet does.
    pub async fn pull(
        &self,
        store: &Arc<Store>,
        reference: &Reference,
        creds: &[AuthConfig],
    ) -> Result<Pulled, PullError> {
        if creds.is_empty() {
            return self.pull_with(store, reference, None).await;
        }
        let mut errors = Vec::new();
        for cred in creds {
            match self.pull_with(store, reference, Some(cred.clone())).await {
                Ok(pulled) => return Ok(pulled),
                Err(err) => errors.push(err),
            }
        }
        if errors.len() == 1
            && let Some(err) = errors.pop()
        {
            return Err(err);
        }
        // utilerrors.NewAggregate's text.
        let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Err(PullError::Invalid(format!("[{}]", texts.join(", "))))
    }

    async fn pull_with(
        &self,
        store: &Arc<Store>,
        reference: &Reference,
        cred: Option<AuthConfig>,
    ) -> Result<Pulled, PullError> {
        let mut session = Session::new(self, reference, cred);
        let target_ref = reference
            .digest()
            .or(reference.tag())
            .unwrap_or("latest")
            .to_owned();
        let (media_type, bytes) = session
            .manifest(&target_ref, reference.digest(), &reference.to_string())
            .await
            .map_err(|source| PullError::Resolve {
                reference: reference.to_string(),
                source: Box::new(source),
            })?;
        let (target_digest, target_size) = store.write_blob_bytes(&bytes)?;
        let target = Target {
            media_type: media_type.clone(),
            digest: target_digest.clone(),
            size: target_size,
        };
        let (manifest_digest, manifest_bytes) = match media_type.as_str() {
            MEDIA_OCI_INDEX | MEDIA_DOCKER_LIST => {
                let chosen = platform_manifest(&target_digest, &bytes)?;
                let digest = chosen.digest().to_string();
                let display = format!("{}@{digest}", reference.name());
                let (child_type, child) = session.manifest(&digest, Some(&digest), &display).await?;
                if child_type != MEDIA_OCI_MANIFEST && child_type != MEDIA_DOCKER_MANIFEST {
                    return Err(Error::UnsupportedMediaType(child_type).into());
                }
                store.write_blob(Some(&digest), &mut &child[..])?;
                (digest, child)
            }
            MEDIA_OCI_MANIFEST | MEDIA_DOCKER_MANIFEST => (target_digest.clone(), bytes),
            other => return Err(Error::UnsupportedMediaType(other.to_owned()).into()),
        };
        let manifest = ImageManifest::from_reader(&manifest_bytes[..])
            .map_err(Error::oci(format!("manifest {manifest_digest}")))?;
        let mut blobs: Vec<&Descriptor> = vec![manifest.config()];
        blobs.extend(manifest.layers());
        for blob in blobs {
            let digest = blob.digest().to_string();
            if !store.has_blob(&digest) {
                session.blob(store, &digest).await?;
            }
        }
        let repo_digest = format!("{}@{target_digest}", reference.name());
        let mut names = vec![repo_digest.clone()];
        if reference.digest().is_none() {
            names.push(reference.to_string());
        }
        // Every blob is present: resolving checks it before any name points at the image.
        store.resolve(&target)?;
        store.tag(&names, &target)?;
        tracing::info!(image = %reference, digest = %target_digest, "pulled image");
        Ok(Pulled {
            image: store.image(&repo_digest)?,
            repo_digest,
        })
    }
}

/// The manifest of an index or manifest list that this node runs.
pub fn platform_manifest(index_digest: &str, bytes: &[u8]) -> Result<Descriptor, Error> {
    let index = ImageIndex::from_reader(bytes).map_err(Error::oci(format!("index {index_digest}")))?;
    select_platform(index_digest, index.manifests()).cloned()
}

/// One pull's connection to one repository: scheme, host, auth state.
struct Session<'a> {
    client: &'a RegistryClient,
    scheme: &'static str,
    host: String,
    /// The registry as the reference names it (`docker.io`, `127.0.0.1:5000`).
    domain: String,
    repository: String,
    cred: Option<AuthConfig>,
    authorization: Option<String>,
    /// Whether HTTPS may still fall back to HTTP (loopback registries).
    fallback: bool,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
}

#[derive(Deserialize)]
struct MediaTypeOnly {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
}

#[derive(Deserialize)]
struct RegistryErrors {
    #[serde(default)]
    errors: Vec<RegistryErrorEntry>,
}

#[derive(Deserialize)]
struct RegistryErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

fn is_loopback(domain: &str) -> bool {
    let host = match domain.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => domain,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl<'a> Session<'a> {
    fn new(client: &'a RegistryClient, reference: &Reference, cred: Option<AuthConfig>) -> Session<'a> {
        let domain = reference.domain().to_owned();
        let host = if domain == "docker.io" {
            DOCKER_HUB_HOST.to_owned()
        } else {
            domain.clone()
        };
        let insecure = client.config.insecure.contains(&domain);
        Session {
            client,
            scheme: if insecure { "http" } else { "https" },
            fallback: !insecure && is_loopback(&domain),
            host,
            domain,
            repository: reference.path().to_owned(),
            cred,
            authorization: None,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}/v2/{}/{path}", self.scheme, self.host, self.repository)
    }

    /// Fetches a manifest or index by tag or digest; verifies it against `digest`.
    async fn manifest(
        &mut self,
        reference: &str,
        digest: Option<&str>,
        display: &str,
    ) -> Result<(String, Bytes), PullError> {
        let path = format!("manifests/{reference}");
        let response = self.get(&path, ACCEPT_MANIFESTS).await?;
        let url = self.url(&path);
        match response.status() {
            StatusCode::NOT_FOUND => {
                return Err(PullError::NotFound(display.to_owned()));
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                if self
                    .authorization
                    .as_deref()
                    .is_some_and(|a| a.starts_with("Bearer ")) =>
            {
                let status = response.status();
                let body = read_limited(response.into_body(), MAX_TOKEN_RESPONSE)
                    .await
                    .unwrap_or_default();
                let message = serde_json::from_slice::<RegistryErrors>(&body)
                    .ok()
                    .and_then(|e| e.errors.into_iter().next())
                    .map_or_else(
                        || status_text(status),
                        |e| format!("server message: {}: {}", e.code.to_lowercase(), e.message),
                    );
                return Err(PullError::AccessDenied(message));
            }
            status if !status.is_success() => {
                return Err(PullError::Status {
                    method: "GET",
                    url,
                    status: status_text(status),
                });
            }
            _ => {}
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_owned());
        let announced = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = read_limited(response.into_body(), MAX_MANIFEST).await?;
        let actual = sha256_digest(&bytes);
        for expected in digest.into_iter().chain(announced.as_deref()) {
            if expected.starts_with("sha256:") && expected != actual {
                return Err(Error::DigestMismatch {
                    expected: expected.to_owned(),
                    actual,
                }
                .into());
            }
        }
        let media_type = serde_json::from_slice::<MediaTypeOnly>(&bytes)
            .ok()
            .and_then(|m| m.media_type)
            .or(content_type)
            .unwrap_or_default();
        Ok((media_type, bytes))
    }

    /// Streams one blob into the store, verified against its digest.
    async fn blob(&mut self, store: &Arc<Store>, digest: &str) -> Result<(), PullError> {
        let path = format!("blobs/{digest}");
        let response = self.get(&path, "*/*").await?;
        if !response.status().is_success() {
            if response.status() == StatusCode::NOT_FOUND {
                return Err(PullError::NotFound(format!(
                    "{}/{}@{digest}",
                    self.domain, self.repository
                )));
            }
            return Err(PullError::Status {
                method: "GET",
                url: self.url(&path),
                status: status_text(response.status()),
            });
        }
        let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
        let writer_store = store.clone();
        let expected = digest.to_owned();
        let writer = tokio::task::spawn_blocking(move || {
            let mut reader = ChannelReader {
                receiver,
                current: Bytes::new(),
            };
            writer_store.write_blob(Some(&expected), &mut reader)
        });
        let mut body = response.into_body();
        let mut failure = None;
        loop {
            match tokio::time::timeout(TIMEOUT, body.frame()).await {
                Err(_) => {
                    failure = Some(PullError::Request(format!("reading {digest}: timed out")));
                    break;
                }
                Ok(None) => break,
                Ok(Some(Err(err))) => {
                    failure = Some(PullError::Request(format!("reading {digest}: {err}")));
                    break;
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data()
                        && sender.send(Ok(data)).await.is_err()
                    {
                        break;
                    }
                }
            }
        }
        if let Some(err) = &failure {
            let _ = sender.send(Err(std::io::Error::other(err.to_string()))).await;
        }
        drop(sender);
        let written = writer
            .await
            .map_err(|e| PullError::Request(format!("writing {digest}: {e}")))?;
        if let Some(err) = failure {
            return Err(err);
        }
        written?;
        Ok(())
    }

    /// GETs a path of the repository, authorising once on a 401 and following redirects.
    async fn get(&mut self, path: &str, accept: &str) -> Result<Response<Incoming>, PullError> {
        let mut authorised = false;
        loop {
            let url = self.url(path);
            let response = match self.send(&url, accept, self.authorization.clone()).await {
                Ok(response) => response,
                Err(err) if self.fallback && self.scheme == "https" => {
                    tracing::debug!(error = %err, host = %self.host, "HTTPS failed on a loopback registry; trying HTTP");
                    self.scheme = "http";
                    self.fallback = false;
                    continue;
                }
                Err(err) => return Err(err),
            };
            self.fallback = false;
            if response.status() == StatusCode::UNAUTHORIZED && !authorised {
                authorised = true;
                let challenges: Vec<Challenge> = response
                    .headers()
                    .get_all(header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(parse_challenges)
                    .collect();
                if self.authorise(&challenges).await? {
                    continue;
                }
            }
            return self.follow(response, accept).await;
        }
    }

    /// Follows redirects (blob downloads often point at storage elsewhere); credentials go
    /// only to the registry's own host.
    async fn follow(
        &self,
        mut response: Response<Incoming>,
        accept: &str,
    ) -> Result<Response<Incoming>, PullError> {
        let mut current: Uri = self
            .url("")
            .parse()
            .map_err(|e| PullError::Request(format!("{e}")))?;
        for _hop in 0..MAX_REDIRECTS {
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let Some(location) = response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Ok(response);
            };
            let next = resolve_location(&current, location)?;
            let same_host = next.authority().map(|a| a.as_str()) == Some(self.host.as_str());
            let auth = if same_host {
                self.authorization.clone()
            } else {
                None
            };
            response = self.send(&next.to_string(), accept, auth).await?;
            current = next;
        }
        Err(PullError::Request("stopped after too many redirects".to_owned()))
    }

    /// Obtains an `Authorization` for the challenges; false when none can be answered
    /// (the 401 then stands).
    async fn authorise(&mut self, challenges: &[Challenge]) -> Result<bool, PullError> {
        for challenge in challenges {
            match challenge {
                Challenge::Bearer {
                    realm,
                    service,
                    scope,
                } => {
                    let scope = scope
                        .clone()
                        .unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                    let token = self.token(realm, service.as_deref(), &scope).await?;
                    self.authorization = Some(format!("Bearer {token}"));
                    return Ok(true);
                }
                Challenge::Basic { .. } => {
                    if let Some(cred) = &self.cred
                        && !cred.username.is_empty()
                    {
                        self.authorization = Some(basic_authorization(cred));
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    async fn token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String, PullError> {
        let query = {
            let mut query = form_urlencoded::Serializer::new(String::new());
            if let Some(service) = service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", scope);
            query.finish()
        };
        let separator = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{separator}{query}");
        let (kind, auth) = match &self.cred {
            Some(cred) if !cred.username.is_empty() => ("basic", Some(basic_authorization(cred))),
            _ => ("anonymous", None),
        };
        let wrap = |source: PullError| PullError::Token {
            kind,
            source: Box::new(source),
        };
        let response = self.send(&url, "application/json", auth).await.map_err(wrap)?;
        if !response.status().is_success() {
            return Err(wrap(PullError::Status {
                method: "GET",
                url: realm.to_owned(),
                status: status_text(response.status()),
            }));
        }
        let body = read_limited(response.into_body(), MAX_TOKEN_RESPONSE)
            .await
            .map_err(wrap)?;
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| wrap(PullError::Invalid(format!("invalid token response: {e}"))))?;
        let token = if parsed.token.is_empty() {
            parsed.access_token
        } else {
            parsed.token
        };
        if token.is_empty() {
            return Err(wrap(PullError::Invalid(
                "the token response has no token".to_owned(),
            )));
        }
        Ok(token)
    }

    async fn send(
        &self,
        url: &str,
        accept: &str,
        authorization: Option<String>,
    ) -> Result<Response<Incoming>, PullError> {
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(url)
            .header(header::ACCEPT, accept)
            .header(header::USER_AGENT, concat!("rudder/", env!("CARGO_PKG_VERSION")));
        if let Some(authorization) = authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| PullError::Request(format!("GET {url}: {e}")))?;
        match tokio::time::timeout(TIMEOUT, self.client.http.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => Err(PullError::Request(format!(
                "Get \"{url}\": {}",
                error_chain(&err)
            ))),
            Err(_) => Err(PullError::Request(format!("Get \"{url}\": timed out"))),
        }
    }
}

/// `401 Unauthorized`, as Go's `resp.Status`.
fn status_text(status: StatusCode) -> String {
    format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or(""))
        .trim_end()
        .to_owned()
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

fn resolve_location(base: &Uri, location: &str) -> Result<Uri, PullError> {
    let invalid = |e: http::Error| PullError::Request(format!("invalid redirect {location:?}: {e}"));
    if location.starts_with("http://") || location.starts_with("https://") {
        return location
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(e.into()));
    }
    let mut parts = base.clone().into_parts();
    let path = if location.starts_with('/') {
        location.to_owned()
    } else {
        let base_path = base.path();
        let dir = base_path.rsplit_once('/').map_or("", |(dir, _)| dir);
        format!("{dir}/{location}")
    };
    parts.path_and_query = Some(
        path.parse()
            .map_err(|e: http::uri::InvalidUri| invalid(e.into()))?,
    );
    Uri::from_parts(parts).map_err(|e| invalid(e.into()))
}

async fn read_limited(mut body: Incoming, limit: usize) -> Result<Bytes, PullError> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(TIMEOUT, body.frame()).await {
            Err(_) => return Err(PullError::Request("reading the response: timed out".to_owned())),
            Ok(None) => return Ok(Bytes::from(out)),
            Ok(Some(Err(err))) => return Err(PullError::Request(format!("reading the response: {err}"))),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if out.len() + data.len() > limit {
                        return Err(PullError::Invalid(format!(
                            "the response is larger than {limit} bytes"
                        )));
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
}

/// A blocking reader over the chunks the async side receives.
struct ChannelReader {
    receiver: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::images::host_platform;

    #[test]
    fn manifest_lists_choose_this_platform() {
        let (os, arch) = host_platform();
        let digest = |n: u8| format!("sha256:{}", format!("{n:02x}").repeat(32));
        for media in [MEDIA_OCI_INDEX, MEDIA_DOCKER_LIST] {
            let child = if media == MEDIA_OCI_INDEX {
                MEDIA_OCI_MANIFEST
            } else {
                MEDIA_DOCKER_MANIFEST
            };
            let index = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media,
                "manifests": [
                    {"mediaType": child, "digest": digest(1), "size": 10,
                     "platform": {"os": "linux", "architecture": "s390x"}},
                    {"mediaType": child, "digest": digest(2), "size": 10,
                     "platform": {"os": "windows", "architecture": arch}},
                    {"mediaType": child, "digest": digest(3), "size": 10,
                     "platform": {"os": os, "architecture": arch}},
                ],
            });
            let bytes = serde_json::to_vec(&index).unwrap();
            let chosen = platform_manifest("sha256:idx", &bytes).unwrap();
            assert_eq!(chosen.digest().to_string(), digest(3), "{media}");
        }
        let foreign = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": MEDIA_OCI_MANIFEST, "digest": digest(1), "size": 1,
                           "platform": {"os": "linux", "architecture": "s390x"}}],
        });
        let err = platform_manifest("sha256:idx", &serde_json::to_vec(&foreign).unwrap()).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("no manifest for platform {os}/{arch}")),
            "{err}"
        );
    }

    #[test]
    fn loopback_registries_and_statuses() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("registry.example.com:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert_eq!(status_text(StatusCode::UNAUTHORIZED), "401 Unauthorized");
        let base: Uri = "https://r.example/v2/a/blobs/sha256:1".parse().unwrap();
        assert_eq!(
            resolve_location(&base, "/storage/x?sig=1").unwrap().to_string(),
            "https://r.example/storage/x?sig=1"
        );
        assert_eq!(
            resolve_location(&base, "https://cdn.example/y")
                .unwrap()
                .to_string(),
            "https://cdn.example/y"
        );
    }
}
