//! Authentication: who is making a request.
//!
//! Identities come from a verified TLS client certificate (CN is the user, each O a group)
//! or from a bearer token listed in a static token file (`token,user,uid,"group1,group2"`, the
//! format of kube-apiserver's `--token-auth-file`). A request with neither is anonymous. This
//! module decides identity only; what an identity may do is decided elsewhere.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

/// The group every authenticated user belongs to.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The group of anonymous requests.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The user name of anonymous requests.
pub const ANONYMOUS_USER: &str = "system:anonymous";

/// An authenticated (or anonymous) user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name.
    pub name: String,
    /// A unique identifier, when the authenticator knows one.
    pub uid: String,
    /// Groups, including `system:authenticated` or `system:unauthenticated`.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The anonymous user.
    pub fn anonymous() -> Self {
        UserInfo {
            name: ANONYMOUS_USER.to_owned(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED_GROUP.to_owned()],
        }
    }

    /// Whether this is the anonymous user.
    pub fn is_anonymous(&self) -> bool {
        self.name == ANONYMOUS_USER
    }

    fn authenticated(name: &str, uid: &str, mut groups: Vec<String>) -> Self {
        if !groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            groups.push(AUTHENTICATED_GROUP.to_owned());
        }
        UserInfo {
            name: name.to_owned(),
            uid: uid.to_owned(),
            groups,
        }
    }
}

/// The identity of a verified TLS client certificate, attached to every request of its
/// connection.
#[derive(Clone, Debug)]
pub struct PeerIdentity(pub Arc<UserInfo>);

/// The user of a verified client certificate (DER), if it names one.
pub fn user_from_certificate(der: &[u8]) -> Option<UserInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?;
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .map(str::to_owned)
        .collect();
    Some(UserInfo::authenticated(name, "", groups))
}

/// Why a request could not be authenticated.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthnError {
    /// A bearer token was presented but is not known.
    #[error("invalid bearer token")]
    InvalidToken,
}

/// Errors loading the token file.
#[derive(Debug, Error)]
pub enum TokenFileError {
    /// The file could not be read.
    #[error("reading {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        error: std::io::Error,
    },
    /// A line is not `token,user,uid[,"groups"]`.
    #[error("{path}:{line}: expected token,user,uid[,\"group1,group2\"]")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
    },
}

/// Authenticates requests from their client certificate or bearer token.
#[derive(Debug, Default)]
pub struct Authenticator {
    tokens: HashMap<String, UserInfo>,
}

impl Authenticator {
    /// An authenticator with the tokens of a static token file.
    pub fn with_token_file(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|error| TokenFileError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let mut tokens = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let malformed = || TokenFileError::Malformed {
                path: path.to_path_buf(),
                line: index + 1,
            };
            let fields = parse_csv_line(line).ok_or_else(malformed)?;
            if fields.len() < 3 || fields[0].is_empty() || fields[1].is_empty() {
                return Err(malformed());
            }
            let groups = fields
                .get(3)
                .map(|groups| {
                    groups
                        .split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            tokens.insert(
                fields[0].clone(),
                UserInfo::authenticated(&fields[1], &fields[2], groups),
            );
        }
        Ok(Authenticator { tokens })
    }

    /// Decides who a request is. A verified certificate wins; then a bearer token; without
    /// either the request is anonymous.
    pub fn authenticate(
        &self,
        peer: Option<&PeerIdentity>,
        authorization: Option<&str>,
    ) -> Result<UserInfo, AuthnError> {
        if let Some(peer) = peer {
            return Ok(peer.0.as_ref().clone());
        }
        let Some(authorization) = authorization else {
            return Ok(UserInfo::anonymous());
        };
        let mut parts = authorization.trim().splitn(2, ' ');
        let scheme = parts.next().unwrap_or_default();
        let token = parts.next().unwrap_or_default().trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            // Other schemes are not ours to judge: like kube-apiserver, treat as no credentials.
            return Ok(UserInfo::anonymous());
        }
        self.tokens.get(token).cloned().ok_or(AuthnError::InvalidToken)
    }
}

/// Splits one CSV line into fields, honouring double quotes (`""` is a literal quote).
fn parse_csv_line(line: &str) -> Option<Vec<String>> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator(contents: &str) -> Authenticator {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, contents).unwrap();
        Authenticator::with_token_file(&path).unwrap()
    }

    #[test]
    fn token_file_users_and_groups() {
        let authn = authenticator("abc,alice,1001,\"dev,ops\"\n\nxyz,bob,1002\n");
        let alice = authn.authenticate(None, Some("Bearer abc")).unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.uid, "1001");
        assert_eq!(alice.groups, ["dev", "ops", AUTHENTICATED_GROUP]);
        let bob = authn.authenticate(None, Some("bearer  xyz")).unwrap();
        assert_eq!(bob.groups, [AUTHENTICATED_GROUP]);
        assert_eq!(
            authn.authenticate(None, Some("Bearer nope")),
            Err(AuthnError::InvalidToken)
        );
        assert!(authn.authenticate(None, None).unwrap().is_anonymous());
        assert!(
            authn
                .authenticate(None, Some("Basic Zm9vOmJhcg=="))
                .unwrap()
                .is_anonymous()
        );
    }

    #[test]
    fn certificate_identity_wins_over_a_token() {
        let authn = authenticator("abc,alice,1\n");
        let peer = PeerIdentity(Arc::new(UserInfo::authenticated(
            "admin",
            "",
            vec!["system:masters".into()],
        )));
        let user = authn.authenticate(Some(&peer), Some("Bearer wrong")).unwrap();
        assert_eq!(user.name, "admin");
        assert_eq!(user.groups, ["system:masters", AUTHENTICATED_GROUP]);
    }

    #[test]
    fn malformed_token_files_are_rejected() {
        for bad in ["onlytoken\n", "tok,\"unterminated\n", ",user,uid\n"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("tokens.csv");
            std::fs::write(&path, bad).unwrap();
            let err = Authenticator::with_token_file(&path).unwrap_err();
            assert!(
                matches!(err, TokenFileError::Malformed { line: 1, .. }),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(parse_csv_line(r#"a,"b,c","d""e""#).unwrap(), ["a", "b,c", "d\"e"]);
    }
}
