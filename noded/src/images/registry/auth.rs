//! Registry credentials and challenges: the `WWW-Authenticate` header (Bearer
//! realm/service/scope, Basic), and the kubelet's docker keyring built from a pod's
//! `imagePullSecrets` (`kubernetes.io/dockerconfigjson` and `kubernetes.io/dockercfg`
//! Secrets), matched against an image's repository as the kubelet's credentialprovider
//! does. Pure parsing and matching: it performs no I/O.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use serde::Deserialize;

/// One credential: what `docker login` stores for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// An authentication challenge from a registry's 401 response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// Token auth: ask `realm` for a token for `service` and `scope`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic {
        realm: Option<String>,
    },
}

/// The challenges of a `WWW-Authenticate` header value (RFC 7235: a scheme followed by
/// comma-separated `key=value` or `key="quoted value"` parameters; several challenges may
/// share one header). Unknown schemes are skipped.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut rest = header.trim();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() {
            break;
        }
        let scheme_end = rest
            .find(|c: char| c.is_whitespace() || c == ',')
            .unwrap_or(rest.len());
        let scheme = rest[..scheme_end].to_ascii_lowercase();
        rest = rest[scheme_end..].trim_start();
        let mut params: BTreeMap<String, String> = BTreeMap::new();
        // Parameters until the next token that is not followed by '=' (the next scheme).
        loop {
            rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
            let Some(eq) = rest.find('=') else { break };
            let key = &rest[..eq];
            if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == ',') {
                break;
            }
            let key = key.to_ascii_lowercase();
            let after = &rest[eq + 1..];
            let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut end = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[end.min(quoted.len())..])
            } else {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            };
            params.insert(key, value);
            rest = remainder;
        }
        match scheme.as_str() {
            "bearer" => {
                if let Some(realm) = params.remove("realm") {
                    out.push(Challenge::Bearer {
                        realm,
                        service: params.remove("service"),
                        scope: params.remove("scope"),
                    });
                }
            }
            "basic" => out.push(Challenge::Basic {
                realm: params.remove("realm"),
            }),
            _ => {}
        }
        if scheme.is_empty() {
            break;
        }
    }
    out
}

/// A `~/.docker/config.json` `auths` entry (and a `.dockercfg` entry).
#[derive(Deserialize, Default)]
struct DockerConfigEntry {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// base64 of `username:password`; overrides the two fields when present.
    #[serde(default)]
    auth: String,
}

#[derive(Deserialize, Default)]
struct DockerConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, DockerConfigEntry>,
}

/// Why a pull secret cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("invalid docker config in secret {secret:?}: {reason}")]
    Invalid { secret: String, reason: String },
}

/// The kubelet's `BasicDockerKeyring`: credential locations (`host[:port][/path]`, host
/// parts may be globs) -> credentials, looked up most specific first.
#[derive(Debug, Default)]
pub struct Keyring {
    creds: BTreeMap<String, Vec<AuthConfig>>,
}

const DEFAULT_REGISTRY_HOST: &str = "index.docker.io";

impl Keyring {
    /// The keyring of a pod's pull secrets, as `MakeDockerKeyring` builds it: Secrets of
    /// other types, or without their key, are ignored; unparsable configs are errors.
    pub fn from_secrets(secrets: &[Secret]) -> Result<Keyring, KeyringError> {
        let mut keyring = Keyring::default();
        for secret in secrets {
            let name = secret.metadata.name.clone().unwrap_or_default();
            let data = secret.data.as_ref();
            let invalid = |reason: String| KeyringError::Invalid {
                secret: name.clone(),
                reason,
            };
            match secret.type_.as_deref() {
                Some("kubernetes.io/dockerconfigjson") => {
                    let Some(bytes) = data
                        .and_then(|d| d.get(".dockerconfigjson"))
                        .filter(|b| !b.0.is_empty())
                    else {
                        continue;
                    };
                    let config: DockerConfigJson =
                        serde_json::from_slice(&bytes.0).map_err(|e| invalid(e.to_string()))?;
                    keyring.add(config.auths).map_err(invalid)?;
                }
                Some("kubernetes.io/dockercfg") => {
                    let Some(bytes) = data.and_then(|d| d.get(".dockercfg")).filter(|b| !b.0.is_empty())
                    else {
                        continue;
                    };
                    let config: BTreeMap<String, DockerConfigEntry> =
                        serde_json::from_slice(&bytes.0).map_err(|e| invalid(e.to_string()))?;
                    keyring.add(config).map_err(invalid)?;
                }
                _ => {}
            }
        }
        Ok(keyring)
    }

    fn add(&mut self, entries: BTreeMap<String, DockerConfigEntry>) -> Result<(), String> {
        for (location, entry) in entries {
            let (mut username, mut password) = (entry.username, entry.password);
            if !entry.auth.is_empty() {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(entry.auth.trim())
                    .map_err(|e| format!("auth of {location:?}: {e}"))?;
                let decoded = String::from_utf8_lossy(&decoded).into_owned();
                let Some((user, pass)) = decoded.split_once(':') else {
                    return Err(
                        "unable to parse auth field, must be formatted as base64(username:password)"
                            .to_owned(),
                    );
                };
                username = user.to_owned();
                password = pass.trim_matches('\0').to_owned();
            }
            let schemeless = location
                .strip_prefix("https://")
                .or_else(|| location.strip_prefix("http://"))
                .unwrap_or(&location);
            let (host, path) = match schemeless.find('/') {
                Some(slash) => (&schemeless[..slash], &schemeless[slash..]),
                None => (schemeless, ""),
            };
            // `/v1/` and `/v2/` mean the registry itself, as the docker client treats them.
            let path = if path.starts_with("/v1/") || path.starts_with("/v2/") {
                &path[3..]
            } else {
                path
            };
            let key = if path.is_empty() || path == "/" {
                host.to_owned()
            } else {
                format!("{host}{path}")
            };
            self.creds
                .entry(key)
                .or_default()
                .push(AuthConfig { username, password });
        }
        Ok(())
    }

    /// The credentials for a repository (`docker.io/library/busybox`,
    /// `127.0.0.1:5000/team/app`), most specific location first.
    pub fn lookup(&self, repository: &str) -> Vec<AuthConfig> {
        let mut out = Vec::new();
        for (key, creds) in self.creds.iter().rev() {
            if urls_match(key, repository) {
                out.extend(creds.iter().cloned());
            }
        }
        if out.is_empty()
            && is_default_registry_match(repository)
            && let Some(creds) = self.creds.get(DEFAULT_REGISTRY_HOST)
        {
            out.extend(creds.iter().cloned());
        }
        out
    }
}

fn is_default_registry_match(image: &str) -> bool {
    let Some((first, _)) = image.split_once('/') else {
        return !image.is_empty();
    };
    if first.is_empty() {
        return false;
    }
    first == "docker.io" || first == DEFAULT_REGISTRY_HOST || !first.contains(['.', ':'])
}

/// `host[:port]` and `/path` of a schemeless URL.
fn split_schemeless(url: &str) -> (&str, &str) {
    match url.find('/') {
        Some(slash) => (&url[..slash], &url[slash..]),
        None => (url, ""),
    }
}

/// Host parts and port, as Go's `net.SplitHostPort` then `strings.Split(host, ".")`.
fn host_parts(host: &str) -> (Vec<&str>, &str) {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') || name.ends_with(']') => (name, port),
        _ => (host, ""),
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    (name.split('.').collect(), port)
}

/// The kubelet's `URLsMatch`: same port, same number of host parts each matching its
/// glob, and the glob's path a prefix of the target's.
fn urls_match(glob: &str, target: &str) -> bool {
    let (glob_host, glob_path) = split_schemeless(glob);
    let (target_host, target_path) = split_schemeless(target);
    let (glob_parts, glob_port) = host_parts(glob_host);
    let (target_parts, target_port) = host_parts(target_host);
    glob_port == target_port
        && glob_parts.len() == target_parts.len()
        && target_path.starts_with(glob_path)
        && glob_parts
            .iter()
            .zip(&target_parts)
            .all(|(glob, part)| glob_match(glob, part))
}

/// `filepath.Match` for one host part: `*` (any run), `?` (one character) and
/// `[...]` classes are rare in hosts; `*` and `?` are supported, brackets match literally.
fn glob_match(glob: &str, text: &str) -> bool {
    let glob: Vec<char> = glob.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if g < glob.len() && (glob[g] == '?' || glob[g] == text[t]) {
            g += 1;
            t += 1;
        } else if g < glob.len() && glob[g] == '*' {
            star = Some((g, t));
            g += 1;
        } else if let Some((star_g, star_t)) = star {
            g = star_g + 1;
            t = star_t + 1;
            star = Some((star_g, star_t + 1));
        } else {
            return false;
        }
    }
    glob[g..].iter().all(|c| *c == '*')
}

/// The `Authorization` value for Basic auth.
pub fn basic_authorization(auth: &AuthConfig) -> String {
    let raw = format!("{}:{}", auth.username, auth.password);
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use k8s_openapi::ByteString;

    #[test]
    fn challenges_are_parsed() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        assert_eq!(
            parse_challenges(header),
            [Challenge::Bearer {
                realm: "https://auth.docker.io/token".to_owned(),
                service: Some("registry.docker.io".to_owned()),
                scope: Some("repository:library/busybox:pull".to_owned()),
            }]
        );
        assert_eq!(
            parse_challenges(r#"Basic realm="Registry Realm""#),
            [Challenge::Basic {
                realm: Some("Registry Realm".to_owned())
            }]
        );
        // Several challenges in one header, unquoted values, escapes and odd spacing.
        assert_eq!(
            parse_challenges(r#"Negotiate, bearer  realm=http://127.0.0.1/t , scope="a\"b", Basic realm=x"#),
            [
                Challenge::Bearer {
                    realm: "http://127.0.0.1/t".to_owned(),
                    service: None,
                    scope: Some("a\"b".to_owned()),
                },
                Challenge::Basic {
                    realm: Some("x".to_owned())
                },
            ]
        );
        assert!(
            parse_challenges("Bearer service=x").is_empty(),
            "no realm, no token auth"
        );
        assert!(parse_challenges("").is_empty());
    }

    fn secret(name: &str, type_: &str, key: &str, json: &str) -> Secret {
        Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(name.to_owned()),
                ..Default::default()
            },
            type_: Some(type_.to_owned()),
            data: Some(BTreeMap::from([(
                key.to_owned(),
                ByteString(json.as_bytes().to_vec()),
            )])),
            ..Default::default()
        }
    }

    #[test]
    fn keyring_matches_as_the_kubelet_does() {
        let auth = base64::engine::general_purpose::STANDARD.encode("carol:c-pass");
        let secrets = [
            secret(
                "json",
                "kubernetes.io/dockerconfigjson",
                ".dockerconfigjson",
                &format!(
                    r#"{{"auths": {{
                        "127.0.0.1:5000": {{"username": "alice", "password": "a-pass"}},
                        "https://quay.io/team": {{"auth": "{auth}"}},
                        "*.example.com": {{"username": "dave", "password": "d"}},
                        "https://index.docker.io/v1/": {{"username": "hub", "password": "h"}}
                    }}}}"#
                ),
            ),
            secret(
                "cfg",
                "kubernetes.io/dockercfg",
                ".dockercfg",
                r#"{"quay.io": {"username": "bob", "password": "b-pass", "email": "b@x"}}"#,
            ),
            secret("opaque", "Opaque", ".dockerconfigjson", "not json"),
        ];
        let keyring = Keyring::from_secrets(&secrets).unwrap();
        let users =
            |repo: &str| -> Vec<String> { keyring.lookup(repo).into_iter().map(|a| a.username).collect() };
        assert_eq!(users("127.0.0.1:5000/busybox"), ["alice"]);
        assert!(users("127.0.0.1:5001/busybox").is_empty(), "ports must match");
        assert_eq!(users("quay.io/team/app"), ["carol", "bob"], "most specific first");
        assert_eq!(users("quay.io/other/app"), ["bob"]);
        assert_eq!(users("registry.example.com/app"), ["dave"]);
        assert!(
            users("a.registry.example.com/app").is_empty(),
            "globs match one part"
        );
        assert_eq!(users("docker.io/library/busybox"), ["hub"]);
        assert_eq!(keyring.lookup("quay.io/team/app")[0].password, "c-pass");

        let bad = secret("bad", "kubernetes.io/dockerconfigjson", ".dockerconfigjson", "{");
        assert!(Keyring::from_secrets(&[bad]).is_err());
        assert_eq!(
            basic_authorization(&AuthConfig {
                username: "a".into(),
                password: "b".into()
            }),
            "Basic YTpi"
        );
    }
}
