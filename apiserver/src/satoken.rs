//! Service account tokens: the signing key, JWTs (ES256) in upstream's claim layout
//! (`pkg/serviceaccount/claims.go`), and their signature, issuer, audience and time checks
//! (`pkg/serviceaccount/jwt.go`).
//!
//! This module is pure: it never reads the store. Whether the objects a token names still
//! exist is decided by `authn`, through lookups it is given.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, EcdsaKeyPair, KeyPair as _};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// The issuer of service account tokens (kubeadm's and kind's `--service-account-issuer`).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// Clock skew tolerated on `nbf`, `exp` and `iat` (go-jose's `jwt.DefaultLeeway`).
pub const LEEWAY_SECONDS: i64 = 60;
/// The expiration the kubelet requests for projected tokens; such pod-bound tokens are
/// extended (upstream's `WarnOnlyBoundTokenExpirationSeconds`).
pub const WARN_ONLY_EXPIRATION_SECONDS: i64 = 60 * 60 + 7;
/// How long an extended token lives (upstream's `ExpirationExtensionSeconds`).
pub const EXTENDED_EXPIRATION_SECONDS: i64 = 24 * 365 * 60 * 60;
/// The prefix of service account user names.
pub const USERNAME_PREFIX: &str = "system:serviceaccount:";
/// The group of every service account.
pub const ALL_SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";
/// User extra: the name of the pod a token is bound to.
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
/// User extra: the uid of the pod a token is bound to.
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
/// User extra: the name of the node a token (or its pod) is bound to.
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
/// User extra: the uid of that node.
pub const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";
/// User extra: the credential id (`JTI=<jti>`).
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";

const ALGORITHM: &str = "ES256";
/// go-jose's error for a signature that does not verify.
const CRYPTO_FAILURE: &str = "go-jose/go-jose: error in cryptographic primitive";

/// Errors of the signing key and of signing.
#[derive(Debug, Error)]
pub enum KeyError {
    /// The key is not a PKCS#8 ECDSA P-256 private key.
    #[error("the service account key is not a PKCS#8 ECDSA P-256 private key")]
    Unsupported,
    /// Signing failed.
    #[error("failed to generate token: signing failed")]
    Signing,
    /// The claims could not be encoded.
    #[error("failed to generate token: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// `user:name` of a service account.
pub fn username(namespace: &str, name: &str) -> String {
    format!("{USERNAME_PREFIX}{namespace}:{name}")
}

/// A name and uid in the private claims.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRef {
    /// The object's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The object's uid.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// The private `kubernetes.io` claim. Fields are in the order go-jose writes them (sorted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaims {
    /// The service account's namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The node the token (or its pod) is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<ObjectRef>,
    /// The pod the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<ObjectRef>,
    /// The secret the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ObjectRef>,
    /// The service account.
    #[serde(default)]
    pub serviceaccount: ObjectRef,
    /// After this time (Unix seconds) an extended token is stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warnafter: Option<i64>,
}

/// The claims of a token. Fields are in the order go-jose writes them (sorted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Issuer.
    pub iss: String,
    /// Token id.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub jti: String,
    /// The private claims.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaims,
    /// Not before, Unix seconds.
    pub nbf: i64,
    /// Subject: `system:serviceaccount:NS:NAME`.
    pub sub: String,
}

/// What a token binds to, besides its service account.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Binding {
    /// A pod, and the node it runs on (name only when the node object is missing).
    pub pod: Option<ObjectRef>,
    /// The node of the pod, or the node the token is bound to.
    pub node: Option<ObjectRef>,
    /// A secret.
    pub secret: Option<ObjectRef>,
}

impl Claims {
    /// Upstream's `Claims`: a token for service account `namespace/name` (uid `uid`)
    /// issued `now`, valid `expiration_seconds`, stale after `warn_after` seconds if
    /// non-zero.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        issuer: &str,
        namespace: &str,
        name: &str,
        uid: &str,
        binding: Binding,
        audiences: Vec<String>,
        now: i64,
        expiration_seconds: i64,
        warn_after: i64,
        jti: String,
    ) -> Self {
        let node = if binding.pod.is_some() || binding.secret.is_none() {
            binding.node
        } else {
            None
        };
        Claims {
            aud: audiences,
            exp: now.saturating_add(expiration_seconds),
            iat: now,
            iss: issuer.to_owned(),
            jti,
            kubernetes: KubernetesClaims {
                namespace: namespace.to_owned(),
                node,
                pod: binding.pod,
                secret: binding.secret,
                serviceaccount: ObjectRef {
                    name: name.to_owned(),
                    uid: uid.to_owned(),
                },
                warnafter: (warn_after != 0).then(|| now.saturating_add(warn_after)),
            },
            nbf: now,
            sub: username(namespace, name),
        }
    }
}

/// The claims of a token whose signature, issuer, audiences and times were checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The token's `sub`.
    pub subject: String,
    /// The token's `jti` (may be empty).
    pub jti: String,
    /// The private claims.
    pub kubernetes: KubernetesClaims,
    /// The requested audiences the token is valid for.
    pub audiences: Vec<String>,
}

/// Why a token that names our issuer is rejected. The texts are upstream's.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    /// The key id names no key of ours.
    #[error("invalid signature, no keys found")]
    NoKeys,
    /// The signature does not verify (or the algorithm is not ours).
    #[error("{CRYPTO_FAILURE}")]
    Signature,
    /// No requested audience is among the token's.
    #[error("token audiences {token} is invalid for the target audiences {target}")]
    Audience {
        /// The token's audiences, as Go's `%q` prints them.
        token: String,
        /// The requested ones.
        target: String,
    },
    /// `exp` (plus leeway) has passed.
    #[error("service account token has expired")]
    Expired,
    /// `nbf` (minus leeway) is still ahead.
    #[error("service account token is not valid yet")]
    NotValidYet,
    /// `iat` (minus leeway) is still ahead.
    #[error("service account token is issued in the future")]
    IssuedInTheFuture,
    /// The claims cannot be decoded.
    #[error("service account token claims could not be validated due to unexpected validation error")]
    Claims,
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_quoted(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// The OIDC discovery document (`/.well-known/openid-configuration`), fields in upstream's
/// order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OpenIdConfiguration {
    /// The issuer.
    pub issuer: String,
    /// Where the key set is served.
    pub jwks_uri: String,
    /// `["id_token"]`.
    pub response_types_supported: Vec<String>,
    /// `["public"]`.
    pub subject_types_supported: Vec<String>,
    /// The algorithms of the keys.
    pub id_token_signing_alg_values_supported: Vec<String>,
}

/// One JSON Web Key, fields in go-jose's order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Jwk {
    /// `sig`.
    #[serde(rename = "use")]
    pub usage: String,
    /// `EC`.
    pub kty: String,
    /// The key id.
    pub kid: String,
    /// `P-256`.
    pub crv: String,
    /// `ES256`.
    pub alg: String,
    /// The point's x coordinate, base64url.
    pub x: String,
    /// Its y coordinate, base64url.
    pub y: String,
}

/// The key set (`/openid/v1/jwks`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// How long clients may cache the discovery documents (upstream's static key getter).
pub const DISCOVERY_MAX_AGE_SECONDS: u32 = 3600;

/// The service account key pair and the issuer and audiences of its tokens.
pub struct TokenIssuer {
    key: EcdsaKeyPair,
    key_id: String,
    issuer: String,
    audiences: Vec<String>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("key_id", &self.key_id)
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// An issuer signing with the PKCS#8 P-256 key `key_pem`; its tokens name `issuer`,
    /// and `audiences` are the API server's own (defaulted to `[issuer]` when empty).
    pub fn new(key_pem: &str, issuer: &str, audiences: Vec<String>) -> Result<Self, KeyError> {
        let pair = rcgen::KeyPair::from_pem(key_pem).map_err(|_| KeyError::Unsupported)?;
        if pair.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
            return Err(KeyError::Unsupported);
        }
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pair.serialized_der(),
            &rng,
        )
        .map_err(|_| KeyError::Unsupported)?;
        let spki = rcgen::PublicKeyData::subject_public_key_info(&pair);
        let key_id = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, &spki));
        let audiences = if audiences.is_empty() {
            vec![issuer.to_owned()]
        } else {
            audiences
        };
        Ok(TokenIssuer {
            key,
            key_id,
            issuer: issuer.to_owned(),
            audiences,
        })
    }

    /// The issuer (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The API server's audiences.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// The key id (`kid`): base64url of the SHA-256 of the public key's DER, as upstream.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The OIDC discovery document, its key set at `jwks_uri`.
    pub fn openid_configuration(&self, jwks_uri: &str) -> OpenIdConfiguration {
        OpenIdConfiguration {
            issuer: self.issuer.clone(),
            jwks_uri: jwks_uri.to_owned(),
            response_types_supported: vec!["id_token".to_owned()],
            subject_types_supported: vec!["public".to_owned()],
            id_token_signing_alg_values_supported: vec![ALGORITHM.to_owned()],
        }
    }

    /// The public key set that verifies this issuer's tokens.
    pub fn jwks(&self) -> JwkSet {
        // The uncompressed point: 0x04, then x and y, 32 bytes each.
        let point = self.key.public_key().as_ref();
        let coordinate = |range: std::ops::Range<usize>| {
            point
                .get(range)
                .map(|c| URL_SAFE_NO_PAD.encode(c))
                .unwrap_or_default()
        };
        JwkSet {
            keys: vec![Jwk {
                usage: "sig".to_owned(),
                kty: "EC".to_owned(),
                kid: self.key_id.clone(),
                crv: "P-256".to_owned(),
                alg: ALGORITHM.to_owned(),
                x: coordinate(1..33),
                y: coordinate(33..65),
            }],
        }
    }

    /// Signs `claims` as a compact JWS.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let header = serde_json::json!({"alg": ALGORITHM, "kid": self.key_id});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
        );
        let rng = ring::rand::SystemRandom::new();
        let signature = self
            .key
            .sign(&rng, signing_input.as_bytes())
            .map_err(|_| KeyError::Signing)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }

    /// Checks a bearer token as upstream's JWT authenticator does before it looks at the
    /// objects the token names. `Ok(None)`: not a token of this issuer (other
    /// authenticators may know it). `requested` are the audiences the caller needs (the API
    /// server's own when empty); `now` is Unix seconds.
    pub fn verify(
        &self,
        token: &str,
        requested: &[String],
        now: i64,
    ) -> Result<Option<VerifiedToken>, TokenError> {
        if token.trim_start().starts_with('{') {
            return Ok(None);
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts.as_slice() else {
            return Ok(None);
        };
        let Some(claims) = URL_SAFE_NO_PAD
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        else {
            return Ok(None);
        };
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Ok(None);
        }
        let Some(header) = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        else {
            return Ok(None);
        };
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return Ok(None);
        };
        let kid = header.get("kid").and_then(Value::as_str).unwrap_or("");
        if !kid.is_empty() && kid != self.key_id {
            return Err(TokenError::NoKeys);
        }
        if header.get("alg").and_then(Value::as_str) != Some(ALGORITHM) {
            return Err(TokenError::Signature);
        }
        let signed = token.rsplit_once('.').map_or(token, |(signed, _)| signed);
        signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            self.key.public_key().as_ref(),
        )
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| TokenError::Signature)?;

        let token_audiences = match claims.get("aud") {
            Some(Value::String(aud)) => vec![aud.clone()],
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        };
        let token_audiences = if token_audiences.is_empty() {
            self.audiences.clone()
        } else {
            token_audiences
        };
        let requested = if requested.is_empty() {
            self.audiences.as_slice()
        } else {
            requested
        };
        let wanted: BTreeSet<&str> = requested.iter().map(String::as_str).collect();
        let audiences: Vec<String> = token_audiences
            .iter()
            .filter(|a| wanted.contains(a.as_str()))
            .cloned()
            .collect();
        if audiences.is_empty() {
            return Err(TokenError::Audience {
                token: go_quoted(&token_audiences),
                target: go_quoted(requested),
            });
        }

        let time = |name: &str| -> Result<Option<i64>, TokenError> {
            match claims.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => n
                    .as_i64()
                    .or_else(|| n.as_f64().map(|f| f as i64))
                    .map(Some)
                    .ok_or(TokenError::Claims),
                Some(_) => Err(TokenError::Claims),
            }
        };
        let (nbf, exp, iat) = (time("nbf")?, time("exp")?, time("iat")?);
        if nbf.is_some_and(|nbf| now + LEEWAY_SECONDS < nbf) {
            return Err(TokenError::NotValidYet);
        }
        if exp.is_some_and(|exp| now - LEEWAY_SECONDS > exp) {
            return Err(TokenError::Expired);
        }
        if iat.is_some_and(|iat| now + LEEWAY_SECONDS < iat) {
            return Err(TokenError::IssuedInTheFuture);
        }
        let kubernetes = match claims.get("kubernetes.io") {
            None | Some(Value::Null) => KubernetesClaims::default(),
            Some(value) => serde_json::from_value(value.clone()).map_err(|_| TokenError::Claims)?,
        };
        let text = |name: &str| claims.get(name).and_then(Value::as_str).unwrap_or("").to_owned();
        Ok(Some(VerifiedToken {
            subject: text("sub"),
            jti: text("jti"),
            kubernetes,
            audiences,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn issuer() -> TokenIssuer {
        let key = rcgen::KeyPair::generate().unwrap();
        TokenIssuer::new(&key.serialize_pem(), DEFAULT_ISSUER, Vec::new()).unwrap()
    }

    fn pod_claims(issuer: &TokenIssuer, now: i64, expiration: i64) -> Claims {
        Claims::new(
            issuer.issuer(),
            "ns",
            "sa",
            "sa-uid",
            Binding {
                pod: Some(ObjectRef {
                    name: "p".into(),
                    uid: "p-uid".into(),
                }),
                node: Some(ObjectRef {
                    name: "n".into(),
                    uid: String::new(),
                }),
                secret: None,
            },
            issuer.audiences().to_vec(),
            now,
            expiration,
            0,
            "jti-1".into(),
        )
    }

    fn payload(token: &str) -> Value {
        let part = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    }

    #[test]
    fn claims_have_upstreams_layout() {
        let issuer = issuer();
        let token = issuer.sign(&pod_claims(&issuer, 1_000, 3600)).unwrap();
        let claims = payload(&token);
        assert_eq!(
            claims,
            serde_json::json!({
                "aud": [DEFAULT_ISSUER],
                "exp": 4600,
                "iat": 1000,
                "iss": DEFAULT_ISSUER,
                "jti": "jti-1",
                "kubernetes.io": {
                    "namespace": "ns",
                    "node": {"name": "n"},
                    "pod": {"name": "p", "uid": "p-uid"},
                    "serviceaccount": {"name": "sa", "uid": "sa-uid"},
                },
                "nbf": 1000,
                "sub": "system:serviceaccount:ns:sa",
            })
        );
        let header_part = token.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header_part).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], issuer.key_id());
        assert_eq!(issuer.key_id().len(), 43, "base64url of a SHA-256");
    }

    #[test]
    fn warnafter_is_set_only_when_asked() {
        let issuer = issuer();
        let claims = Claims::new(
            DEFAULT_ISSUER,
            "ns",
            "sa",
            "u",
            Binding::default(),
            vec!["a".into()],
            100,
            EXTENDED_EXPIRATION_SECONDS,
            WARN_ONLY_EXPIRATION_SECONDS,
            String::new(),
        );
        let value = payload(&issuer.sign(&claims).unwrap());
        assert_eq!(value["kubernetes.io"]["warnafter"], 100 + 3607);
        assert_eq!(value["exp"], 100 + EXTENDED_EXPIRATION_SECONDS);
        assert!(value.get("jti").is_none());
    }

    #[test]
    fn verifies_its_own_tokens() {
        let issuer = issuer();
        let token = issuer.sign(&pod_claims(&issuer, 1_000, 3600)).unwrap();
        let verified = issuer.verify(&token, &[], 1_010).unwrap().unwrap();
        assert_eq!(verified.subject, "system:serviceaccount:ns:sa");
        assert_eq!(verified.jti, "jti-1");
        assert_eq!(verified.audiences, [DEFAULT_ISSUER]);
        assert_eq!(verified.kubernetes.pod.unwrap().uid, "p-uid");
    }

    #[test]
    fn times_are_checked_with_a_minute_of_leeway() {
        let issuer = issuer();
        let token = issuer.sign(&pod_claims(&issuer, 1_000, 600)).unwrap();
        assert!(issuer.verify(&token, &[], 1_600 + 60).unwrap().is_some());
        assert_eq!(issuer.verify(&token, &[], 1_600 + 61), Err(TokenError::Expired));
        assert!(issuer.verify(&token, &[], 1_000 - 60).unwrap().is_some());
        assert_eq!(
            issuer.verify(&token, &[], 1_000 - 61),
            Err(TokenError::NotValidYet)
        );
        assert_eq!(
            TokenError::Expired.to_string(),
            "service account token has expired"
        );
    }

    #[test]
    fn audiences_must_intersect() {
        let issuer = issuer();
        let mut claims = pod_claims(&issuer, 1_000, 3600);
        claims.aud = vec!["vault".into(), "other".into()];
        let token = issuer.sign(&claims).unwrap();
        let err = issuer.verify(&token, &[], 1_000).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "token audiences [\"vault\" \"other\"] is invalid for the target audiences [\"{DEFAULT_ISSUER}\"]"
            )
        );
        let verified = issuer.verify(&token, &["other".into()], 1_000).unwrap().unwrap();
        assert_eq!(verified.audiences, ["other"]);
    }

    #[test]
    fn foreign_and_tampered_tokens() {
        let issuer = issuer();
        let other = issuer_with(DEFAULT_ISSUER);
        let token = other.sign(&pod_claims(&other, 1_000, 3600)).unwrap();
        assert_eq!(issuer.verify(&token, &[], 1_000), Err(TokenError::NoKeys));

        let elsewhere = issuer_with("https://elsewhere");
        let token = elsewhere.sign(&pod_claims(&elsewhere, 1_000, 3600)).unwrap();
        assert_eq!(
            issuer.verify(&token, &[], 1_000),
            Ok(None),
            "another issuer's token"
        );
        assert_eq!(issuer.verify("not-a-jwt", &[], 1_000), Ok(None));

        let token = issuer.sign(&pod_claims(&issuer, 1_000, 3600)).unwrap();
        let mut claims = payload(&token);
        claims["sub"] = "system:serviceaccount:kube-system:admin".into();
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
            parts[2]
        );
        assert_eq!(issuer.verify(&forged, &[], 1_000), Err(TokenError::Signature));
    }

    fn issuer_with(name: &str) -> TokenIssuer {
        let key = rcgen::KeyPair::generate().unwrap();
        TokenIssuer::new(&key.serialize_pem(), name, Vec::new()).unwrap()
    }

    #[test]
    fn the_key_set_verifies_the_tokens() {
        let issuer = issuer();
        let jwks = serde_json::to_value(issuer.jwks()).unwrap();
        let key = &jwks["keys"][0];
        assert_eq!(
            serde_json::to_string(&issuer.jwks().keys[0])
                .unwrap()
                .split(',')
                .next()
                .unwrap(),
            "{\"use\":\"sig\""
        );
        assert_eq!(
            (&key["kty"], &key["crv"], &key["alg"]),
            (&"EC".into(), &"P-256".into(), &"ES256".into())
        );
        assert_eq!(key["kid"], issuer.key_id());
        let mut point = vec![4u8];
        for c in ["x", "y"] {
            point.extend(URL_SAFE_NO_PAD.decode(key[c].as_str().unwrap()).unwrap());
        }
        let token = issuer.sign(&pod_claims(&issuer, 1_000, 3600)).unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point)
            .verify(signed.as_bytes(), &URL_SAFE_NO_PAD.decode(signature).unwrap())
            .unwrap();
        let config =
            serde_json::to_value(issuer.openid_configuration("https://10.0.0.1:6443/openid/v1/jwks"))
                .unwrap();
        assert_eq!(
            config,
            serde_json::json!({
                "issuer": DEFAULT_ISSUER,
                "jwks_uri": "https://10.0.0.1:6443/openid/v1/jwks",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
            })
        );
    }

    #[test]
    fn rejects_keys_other_than_p256() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert!(matches!(
            TokenIssuer::new(&key.serialize_pem(), DEFAULT_ISSUER, Vec::new()),
            Err(KeyError::Unsupported)
        ));
    }
}
