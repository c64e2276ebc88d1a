//! The registry client against an in-process fake registry: token auth (a Bearer challenge
//! answered by a token realm that wants Basic credentials), a Docker manifest list resolved
//! to this node's platform, blobs behind a redirect, digests verified, and the image tagged
//! by name and repo digest in the store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use rudder_noded::images::registry::{AuthConfig, PullError, RegistryClient, RegistryConfig};
use rudder_noded::images::testimage::{ArchiveImage, LayerBuilder, config_json};
use rudder_noded::images::{Reference, Store, host_platform, sha256_digest};

const TOKEN: &str = "opaque-token";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(Default)]
struct Fake {
    /// path -> (content type, body)
    content: HashMap<String, (String, Vec<u8>)>,
    /// Requests seen: (path, authorization).
    log: Vec<(String, Option<String>)>,
}

fn respond(status: StatusCode, headers: &[(&str, String)], body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response.body(Full::new(Bytes::from(body))).unwrap()
}

async fn serve(
    fake: Arc<Mutex<Fake>>,
    port: u16,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let auth = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut fake = fake.lock().unwrap();
    fake.log.push((request.uri().to_string(), auth.clone()));
    if path == "/token" {
        let query = request.uri().query().unwrap_or("");
        // alice:secret
        if auth.as_deref() != Some("Basic YWxpY2U6c2VjcmV0")
            || !query.contains("scope=repository%3Ateam%2Fapp%3Apull")
            || !query.contains("service=fake")
        {
            return Ok(respond(StatusCode::UNAUTHORIZED, &[], Vec::new()));
        }
        return Ok(respond(
            StatusCode::OK,
            &[],
            format!(r#"{{"token": "{TOKEN}"}}"#).into_bytes(),
        ));
    }
    if let Some(rest) = path.strip_prefix("/storage/") {
        // Blob downloads redirected to another host carry no credentials.
        if auth.is_some() {
            return Ok(respond(
                StatusCode::BAD_REQUEST,
                &[],
                b"credentials sent to storage".to_vec(),
            ));
        }
        let key = format!("/v2/team/app/blobs/{rest}");
        return Ok(match fake.content.get(&key) {
            Some((_, body)) => respond(StatusCode::OK, &[], body.clone()),
            None => respond(StatusCode::NOT_FOUND, &[], Vec::new()),
        });
    }
    if auth.as_deref() != Some(&format!("Bearer {TOKEN}")) {
        let challenge = format!(
            r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake",scope="repository:team/app:pull""#
        );
        return Ok(respond(
            StatusCode::UNAUTHORIZED,
            &[("www-authenticate", challenge)],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec(),
        ));
    }
    if path.contains("/blobs/") && fake.content.contains_key(&path) {
        let digest = path.rsplit('/').next().unwrap().to_owned();
        return Ok(respond(
            StatusCode::TEMPORARY_REDIRECT,
            // Another host name for the same server: storage elsewhere.
            &[("location", format!("http://localhost:{port}/storage/{digest}"))],
            Vec::new(),
        ));
    }
    Ok(match fake.content.get(&path) {
        Some((content_type, body)) => respond(
            StatusCode::OK,
            &[("content-type", content_type.clone())],
            body.clone(),
        ),
        None => respond(
            StatusCode::NOT_FOUND,
            &[],
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec(),
        ),
    })
}

async fn start(fake: Arc<Mutex<Fake>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let fake = fake.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| serve(fake.clone(), port, request));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len()})
}

/// The fake registry's `team/app:1`: a Docker manifest list with a foreign platform first.
fn populate(fake: &mut Fake) -> (String, String, String) {
    let mut layer = LayerBuilder::new();
    layer
        .file("hello.txt", 0o644, b"hello from the registry")
        .unwrap();
    let layer = layer.finish().unwrap();
    let image = ArchiveImage::new("team/app:1", vec![layer.clone()]);
    let config = config_json(&image);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor("application/vnd.docker.container.image.v1+json", &config),
        "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar", &layer)],
    }))
    .unwrap();
    let (os, arch) = host_platform();
    let mut foreign = descriptor(DOCKER_MANIFEST, b"{}");
    foreign["platform"] = serde_json::json!({"os": "linux", "architecture": "s390x-not-this"});
    let mut own = descriptor(DOCKER_MANIFEST, &manifest);
    own["platform"] = serde_json::json!({"os": os, "architecture": arch});
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [foreign, own],
    }))
    .unwrap();
    let put = |fake: &mut Fake, path: String, content_type: &str, body: &[u8]| {
        fake.content
            .insert(path, (content_type.to_owned(), body.to_vec()));
    };
    put(fake, "/v2/team/app/manifests/1".into(), DOCKER_LIST, &list);
    put(
        fake,
        format!("/v2/team/app/manifests/{}", sha256_digest(&manifest)),
        DOCKER_MANIFEST,
        &manifest,
    );
    put(
        fake,
        format!("/v2/team/app/blobs/{}", sha256_digest(&config)),
        "application/octet-stream",
        &config,
    );
    put(
        fake,
        format!("/v2/team/app/blobs/{}", sha256_digest(&layer)),
        "application/octet-stream",
        &layer,
    );
    (
        sha256_digest(&list),
        sha256_digest(&manifest),
        sha256_digest(&config),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_through_token_auth_a_manifest_list_and_redirects() {
    let fake = Arc::new(Mutex::new(Fake::default()));
    let (list_digest, manifest_digest, config_digest) = populate(&mut fake.lock().unwrap());
    let port = start(fake.clone()).await;
    let host = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let client = RegistryClient::new(RegistryConfig {
        insecure: vec![host.clone()],
    });
    let reference = Reference::parse_docker_ref(&format!("{host}/team/app:1")).unwrap();

    // Without credentials the token realm refuses.
    let err = client.pull(&store, &reference, &[]).await.unwrap_err();
    assert!(
        matches!(err, PullError::Resolve { .. })
            && err.to_string().contains("failed to fetch anonymous token"),
        "{err}"
    );
    assert!(store.image(&reference.to_string()).is_err());

    let wrong = AuthConfig {
        username: "alice".into(),
        password: "wrong".into(),
    };
    let right = AuthConfig {
        username: "alice".into(),
        password: "secret".into(),
    };
    let pulled = client.pull(&store, &reference, &[wrong, right]).await.unwrap();
    assert_eq!(pulled.repo_digest, format!("{host}/team/app@{list_digest}"));
    assert_eq!(
        pulled.image.manifest_digest, manifest_digest,
        "this platform's manifest"
    );
    assert_eq!(pulled.image.config_digest, config_digest);
    let mut names = pulled.image.names.clone();
    names.sort();
    assert_eq!(
        names,
        [
            format!("{host}/team/app:1"),
            format!("{host}/team/app@{list_digest}")
        ]
    );
    let stored = store.image(&format!("{host}/team/app:1")).unwrap();
    assert_eq!(stored.config_digest, config_digest);
    {
        let fake = fake.lock().unwrap();
        assert!(
            fake.log.iter().any(|(path, _)| path.starts_with("/storage/")),
            "blobs came through the redirect"
        );
    }

    // A missing tag is containerd's "not found".
    let missing = Reference::parse_docker_ref(&format!("{host}/team/app:2")).unwrap();
    let right = AuthConfig {
        username: "alice".into(),
        password: "secret".into(),
    };
    let err = client
        .pull(&store, &missing, std::slice::from_ref(&right))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("failed to resolve reference \"{missing}\": {missing}: not found")
    );

    // Content that does not match its digest never lands in the store.
    let bad = Reference::parse_docker_ref(&format!("{host}/team/app:bad")).unwrap();
    {
        let mut fake = fake.lock().unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "digest": sha256_digest(b"expected"), "size": 8},
            "layers": [],
        }))
        .unwrap();
        fake.content.insert(
            "/v2/team/app/manifests/bad".into(),
            (DOCKER_MANIFEST.into(), manifest),
        );
        fake.content.insert(
            format!("/v2/team/app/blobs/{}", sha256_digest(b"expected")),
            ("application/octet-stream".into(), b"tampered".to_vec()),
        );
    }
    let err = client.pull(&store, &bad, &[right]).await.unwrap_err();
    assert!(err.to_string().contains("content digest mismatch"), "{err}");
    assert!(!store.has_blob(&sha256_digest(b"expected")));
    assert!(store.image(&bad.to_string()).is_err());
}
