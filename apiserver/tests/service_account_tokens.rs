//! Bound service account tokens end to end in-process: TokenRequest on
//! `serviceaccounts/token`, the tokens as bearer credentials, TokenReview, and the tokens'
//! death with the pod they are bound to.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine;
use common::TestServer;
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{Value, json};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

async fn post(server: &TestServer, path: &str, body: &Value) -> (u16, Value) {
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .unwrap();
    let (status, text) = server.request(request).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// A client that trusts the cluster CA and presents only `token`.
async fn token_client(server: &TestServer, token: &str) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(server.running().kubeconfig()).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    config.auth_info = Default::default();
    config.auth_info.token = Some(token.to_owned().into());
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn setup(server: &TestServer) -> (String, String) {
    let accounts: Api<ServiceAccount> = Api::namespaced(server.client.clone(), "default");
    let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "robot"}})).unwrap();
    let account = accounts.create(&PostParams::default(), &account).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "app"},
        "spec": {"serviceAccountName": "robot", "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    let pod = pods.create(&PostParams::default(), &pod).await.unwrap();
    (account.metadata.uid.unwrap(), pod.metadata.uid.unwrap())
}

const TOKEN_PATH: &str = "/api/v1/namespaces/default/serviceaccounts/robot/token";

fn token_request(spec: &Value) -> Value {
    json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_bound_tokens_authenticate_until_the_pod_goes() {
    let server = TestServer::start().await;
    let (account_uid, pod_uid) = setup(&server).await;

    let (status, issued) = post(
        &server,
        TOKEN_PATH,
        &token_request(&json!({
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "app", "uid": pod_uid},
        })),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    assert_eq!(issued["kind"], "TokenRequest");
    assert_eq!(issued["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(issued["metadata"]["name"], "robot");
    assert_eq!(issued["metadata"]["namespace"], "default");
    assert_eq!(issued["metadata"]["uid"], account_uid.as_str());
    assert_eq!(issued["spec"]["audiences"], json!([ISSUER]));
    assert_eq!(issued["spec"]["expirationSeconds"], 3600);
    let token = issued["status"]["token"].as_str().unwrap().to_owned();
    let expires: jiff::Timestamp = issued["status"]["expirationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let lifetime = expires.as_second() - jiff::Timestamp::now().as_second();
    assert!((3590..=3600).contains(&lifetime), "{lifetime}");
    let claims = claims(&token);
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], "system:serviceaccount:default:robot");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert_eq!(
        claims["kubernetes.io"]["pod"],
        json!({"name": "app", "uid": pod_uid})
    );
    assert_eq!(
        claims["kubernetes.io"]["serviceaccount"],
        json!({"name": "robot", "uid": account_uid})
    );

    // The token is a credential: who am I, and a read (Rudder authorizes every user).
    let client = token_client(&server, &token).await;
    let review = client
        .request_text(
            http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
                .header("content-type", "application/json")
                .body(
                    serde_json::to_vec(
                        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
                    )
                    .unwrap(),
                )
                .unwrap(),
        )
        .await
        .unwrap();
    let review: Value = serde_json::from_str(&review).unwrap();
    let user = &review["status"]["userInfo"];
    assert_eq!(user["username"], "system:serviceaccount:default:robot");
    assert_eq!(user["uid"], account_uid.as_str());
    assert_eq!(
        user["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    assert_eq!(
        user["extra"]["authentication.kubernetes.io/pod-name"],
        json!(["app"])
    );
    assert_eq!(
        user["extra"]["authentication.kubernetes.io/pod-uid"],
        json!([pod_uid])
    );
    assert_eq!(
        user["extra"]["authentication.kubernetes.io/credential-id"],
        json!([format!("JTI={}", claims["jti"].as_str().unwrap())])
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert_eq!(pods.get("app").await.unwrap().metadata.uid.unwrap(), pod_uid);

    // TokenReview: the server's audiences by default, or the requested ones.
    let (status, reviewed) = post(
        &server,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}),
    )
    .await;
    assert_eq!(status, 201, "{reviewed}");
    assert_eq!(reviewed["status"]["authenticated"], true);
    assert_eq!(reviewed["status"]["audiences"], json!([ISSUER]));
    assert_eq!(
        reviewed["status"]["user"]["username"],
        "system:serviceaccount:default:robot"
    );
    let (_, reviewed) = post(
        &server,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "spec": {"token": token, "audiences": ["vault"]}}),
    )
    .await;
    assert_eq!(reviewed["status"].get("authenticated"), None, "{reviewed}");
    assert_eq!(
        reviewed["status"]["error"],
        format!("token audiences [\"{ISSUER}\"] is invalid for the target audiences [\"vault\"]")
    );

    // Deleting the pod invalidates its tokens.
    let admin_pods: Api<Pod> = Api::namespaced(server.client.clone(), "default");
    admin_pods
        .delete("app", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    match pods.get("app").await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 401);
            assert_eq!(status.message, "Unauthorized");
            assert_eq!(status.reason, "Unauthorized");
        }
        other => panic!("expected 401, got {other:?}"),
    }
    let (_, reviewed) = post(
        &server,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}),
    )
    .await;
    assert_eq!(
        reviewed["status"],
        json!({"user": {}, "error": "service account token has been invalidated"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_are_validated_as_upstream() {
    let server = TestServer::start().await;
    let (_, pod_uid) = setup(&server).await;

    let (status, error) = post(
        &server,
        TOKEN_PATH,
        &token_request(&json!({"expirationSeconds": 60})),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(
        error["message"],
        "TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
    );
    let (status, error) = post(
        &server,
        TOKEN_PATH,
        &token_request(&json!({"expirationSeconds": 4_294_967_297_i64})),
    )
    .await;
    assert_eq!(status, 422, "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .ends_with("may not specify a duration larger than 2^32 seconds"),
        "{error}"
    );

    let (status, error) = post(
        &server,
        TOKEN_PATH,
        &token_request(
            &json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "app", "uid": "wrong"}}),
        ),
    )
    .await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(
        error["message"],
        "Operation cannot be fulfilled on Pod \"app\": the UID in the bound object reference (wrong) does not match the UID in record. The object might have been deleted and then recreated"
    );
    assert_eq!(error["details"]["kind"], "Pod");

    let (status, error) = post(
        &server,
        TOKEN_PATH,
        &token_request(
            &json!({"boundObjectRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"}}),
        ),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(
        error["message"],
        "cannot bind token to object of type apps/v1, Kind=Deployment"
    );

    let (status, error) = post(
        &server,
        TOKEN_PATH,
        &token_request(&json!({"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "missing"}})),
    )
    .await;
    assert_eq!(status, 404, "{error}");
    assert_eq!(error["message"], "pods \"missing\" not found");

    let (status, error) = post(
        &server,
        "/api/v1/namespaces/default/serviceaccounts/nobody/token",
        &token_request(&json!({})),
    )
    .await;
    assert_eq!(status, 404, "{error}");
    assert_eq!(error["message"], "serviceaccounts \"nobody\" not found");

    // The kubelet's 3607 s pod-bound tokens are extended to a year, stale after the hour.
    let (status, issued) = post(
        &server,
        TOKEN_PATH,
        &token_request(&json!({
            "expirationSeconds": 3607,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "app", "uid": pod_uid},
        })),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    let claims = claims(issued["status"]["token"].as_str().unwrap());
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 365 * 24 * 3600);
    assert_eq!(claims["kubernetes.io"]["warnafter"].as_i64().unwrap() - iat, 3607);
    let expires: jiff::Timestamp = issued["status"]["expirationTimestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3597..=3607).contains(&(expires.as_second() - iat)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_the_token_subresource() {
    let server = TestServer::start().await;
    let (status, body) = server.get_raw("/api/v1").await;
    assert_eq!(status, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    let token = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "serviceaccounts/token")
        .unwrap();
    assert_eq!(
        *token,
        json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true,
               "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]})
    );

    // Service account issuer discovery.
    let (status, body) = server.get_raw("/.well-known/openid-configuration").await;
    assert_eq!(status, 200, "{body}");
    let config: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["issuer"], ISSUER);
    let jwks_uri = config["jwks_uri"].as_str().unwrap();
    assert!(
        jwks_uri.starts_with("https://")
            && jwks_uri.ends_with(&format!(":{}/openid/v1/jwks", server.running().address().port())),
        "{jwks_uri}"
    );
    assert_eq!(config["id_token_signing_alg_values_supported"], json!(["ES256"]));
    let (status, body) = server.get_raw("/openid/v1/jwks").await;
    assert_eq!(status, 200, "{body}");
    let jwks: Value = serde_json::from_str(&body).unwrap();
    let (account_uid, _) = setup(&server).await;
    let (_, issued) = post(&server, TOKEN_PATH, &token_request(&json!({}))).await;
    assert_eq!(issued["metadata"]["uid"], account_uid.as_str());
    let token = issued["status"]["token"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], header["kid"]);
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    let _ = server.stop().await;
}
