//! Authentication: who is making a request.
//!
//! Identities come from a verified TLS client certificate (CN is the user, each O a group),
//! from a bearer token listed in a static token file (`token,user,uid,"group1,group2"`, the
//! format of kube-apiserver's `--token-auth-file`), from a service account token signed by
//! this server or from a bootstrap token ([`crate::bootstrap_token`]). A request with none is
//! anonymous. This module decides identity only; what an
//! identity may do is decided elsewhere. It never reads the store: whether the objects a
//! service account token names still exist comes through [`BoundObjects`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use crate::satoken::{self, TokenIssuer};

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
    /// Extra attributes (a service account token's bound pod and credential id).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The anonymous user.
    pub fn anonymous() -> Self {
        UserInfo {
            name: ANONYMOUS_USER.to_owned(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED_GROUP.to_owned()],
            extra: BTreeMap::new(),
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
            extra: BTreeMap::new(),
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
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum AuthnError {
    /// A bearer token was presented but is not known.
    #[error("invalid bearer token")]
    InvalidToken,
    /// A service account token of this server that is no longer (or not) valid; the text is
    /// upstream's.
    #[error("{0}")]
    ServiceAccount(String),
}

/// Kinds of objects a service account token names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundKind {
    /// The service account itself.
    ServiceAccount,
    /// A pod the token is bound to.
    Pod,
    /// A secret the token is bound to.
    Secret,
    /// A node the token is bound to.
    Node,
}

/// What authentication needs to know of an object a token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectState {
    /// Its uid.
    pub uid: String,
    /// When its deletion was requested (Unix seconds), if it was.
    pub deletion_timestamp: Option<i64>,
}

/// Looks up the objects service account tokens name (the store, in the server).
pub trait BoundObjects: Send + Sync {
    /// The object of `kind` named `name` (in `namespace` unless a node); `Ok(None)` when it
    /// does not exist, `Err` with a message when it cannot be read.
    fn lookup(&self, kind: BoundKind, namespace: &str, name: &str) -> Result<Option<ObjectState>, String>;

    /// The Secret `namespace/name` (for bootstrap tokens); `Ok(None)` when it does not exist.
    fn secret(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> Result<Option<crate::bootstrap_token::SecretState>, String> {
        Ok(None)
    }
}

/// A bearer token's user and the requested audiences it is valid for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    /// The user.
    pub user: UserInfo,
    /// The audiences (empty when the server has none).
    pub audiences: Vec<String>,
}

/// Service account token authentication: the key and the lookups.
struct ServiceAccounts {
    issuer: Arc<TokenIssuer>,
    objects: Arc<dyn BoundObjects>,
}

impl std::fmt::Debug for ServiceAccounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccounts")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
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
    service_accounts: Option<ServiceAccounts>,
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
        Ok(Authenticator {
            tokens,
            service_accounts: None,
        })
    }

    /// Also accepts the service account tokens of `issuer`, checking the objects they name
    /// through `objects`.
    pub fn with_service_accounts(mut self, issuer: Arc<TokenIssuer>, objects: Arc<dyn BoundObjects>) -> Self {
        self.service_accounts = Some(ServiceAccounts { issuer, objects });
        self
    }

    /// The API server's audiences (those of its token issuer; none without one).
    pub fn api_audiences(&self) -> &[String] {
        self.service_accounts
            .as_ref()
            .map_or(&[], |sa| sa.issuer.audiences())
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
        self.authenticate_token(token, self.api_audiences())
            .map(|authenticated| authenticated.user)
    }

    /// Authenticates a bearer token for the `requested` audiences (the API server's own for
    /// requests; a TokenReview's), as upstream's union of token authenticators: the token
    /// file (audience-agnostic: valid for the requested audiences that are the server's),
    /// then service account tokens.
    pub fn authenticate_token(&self, token: &str, requested: &[String]) -> Result<Authenticated, AuthnError> {
        self.authenticate_token_at(token, requested, jiff::Timestamp::now().as_second())
    }

    fn authenticate_token_at(
        &self,
        token: &str,
        requested: &[String],
        now: i64,
    ) -> Result<Authenticated, AuthnError> {
        let api_audiences = self.api_audiences();
        if let Some(user) = self.tokens.get(token) {
            let audiences: Vec<String> = api_audiences
                .iter()
                .filter(|a| requested.contains(a))
                .cloned()
                .collect();
            if api_audiences.is_empty() || !audiences.is_empty() {
                return Ok(Authenticated {
                    user: user.clone(),
                    audiences,
                });
            }
        }
        let Some(service_accounts) = &self.service_accounts else {
            return Err(AuthnError::InvalidToken);
        };
        if let Some((id, secret)) = crate::bootstrap_token::parse(token) {
            // Bootstrap tokens are valid for the server's own audiences.
            let audiences: Vec<String> = api_audiences
                .iter()
                .filter(|a| requested.contains(a))
                .cloned()
                .collect();
            if !api_audiences.is_empty() && audiences.is_empty() {
                return Err(AuthnError::InvalidToken);
            }
            let stored = service_accounts
                .objects
                .secret(
                    crate::bootstrap_token::NAMESPACE,
                    &crate::bootstrap_token::secret_name(id),
                )
                .map_err(|_| AuthnError::InvalidToken)?
                .ok_or(AuthnError::InvalidToken)?;
            let (name, groups) =
                crate::bootstrap_token::user(id, secret, &stored, now).ok_or(AuthnError::InvalidToken)?;
            return Ok(Authenticated {
                user: UserInfo::authenticated(&name, "", groups),
                audiences,
            });
        }
        let verified = service_accounts
            .issuer
            .verify(token, requested, now)
            .map_err(|err| AuthnError::ServiceAccount(err.to_string()))?
            .ok_or(AuthnError::InvalidToken)?;
        let user = validate_bound_objects(
            &verified.kubernetes,
            &verified.jti,
            service_accounts.objects.as_ref(),
            now,
        )?;
        Ok(Authenticated {
            user,
            audiences: verified.audiences,
        })
    }
}

/// Upstream's validator: the service account must still exist with the claimed uid, and so
/// must a bound secret, pod or node; an object whose deletion was requested more than the
/// leeway ago no longer vouches for the token.
fn validate_bound_objects(
    claims: &satoken::KubernetesClaims,
    jti: &str,
    objects: &dyn BoundObjects,
    now: i64,
) -> Result<UserInfo, AuthnError> {
    let rejected = |text: String| AuthnError::ServiceAccount(text);
    let invalidated = || rejected("service account token has been invalidated".to_owned());
    let deleted_long_ago = |state: &ObjectState| {
        state
            .deletion_timestamp
            .is_some_and(|at| at < now - satoken::LEEWAY_SECONDS)
    };
    let namespace = claims.namespace.as_str();
    let account = &claims.serviceaccount;
    let state = objects
        .lookup(BoundKind::ServiceAccount, namespace, &account.name)
        .map_err(rejected)?
        .ok_or_else(|| rejected(format!("serviceaccounts {:?} not found", account.name)))?;
    if state.uid != account.uid {
        return Err(rejected(format!(
            "service account UID ({}) does not match claim ({})",
            state.uid, account.uid
        )));
    }
    if deleted_long_ago(&state) {
        return Err(rejected(format!(
            "service account {namespace}/{} has been deleted",
            account.name
        )));
    }
    // A bound secret, pod or node must still exist with the claimed uid.
    let check_bound = |kind: BoundKind, namespace: &str, bound: &satoken::ObjectRef, what: &str| {
        let state = objects
            .lookup(kind, namespace, &bound.name)
            .ok()
            .flatten()
            .ok_or_else(invalidated)?;
        if state.uid != bound.uid {
            return Err(rejected(format!(
                "{what} UID ({}) does not match service account {what} ref claim ({})",
                state.uid, bound.uid
            )));
        }
        if deleted_long_ago(&state) {
            return Err(invalidated());
        }
        Ok(())
    };
    let mut extra = BTreeMap::new();
    if let Some(secret) = &claims.secret {
        check_bound(BoundKind::Secret, namespace, secret, "secret")?;
    }
    if let Some(pod) = &claims.pod {
        check_bound(BoundKind::Pod, namespace, pod, "pod")?;
        if !pod.name.is_empty() && !pod.uid.is_empty() {
            extra.insert(satoken::POD_NAME_KEY.to_owned(), vec![pod.name.clone()]);
            extra.insert(satoken::POD_UID_KEY.to_owned(), vec![pod.uid.clone()]);
        }
    }
    if let Some(node) = &claims.node {
        if claims.pod.is_none() {
            check_bound(BoundKind::Node, "", node, "node")?;
        }
        if !node.name.is_empty() {
            extra.insert(satoken::NODE_NAME_KEY.to_owned(), vec![node.name.clone()]);
            if !node.uid.is_empty() {
                extra.insert(satoken::NODE_UID_KEY.to_owned(), vec![node.uid.clone()]);
            }
        }
    }
    if !jti.is_empty() {
        extra.insert(satoken::CREDENTIAL_ID_KEY.to_owned(), vec![format!("JTI={jti}")]);
    }
    Ok(UserInfo {
        name: satoken::username(namespace, &account.name),
        uid: account.uid.clone(),
        groups: vec![
            satoken::ALL_SERVICE_ACCOUNTS_GROUP.to_owned(),
            format!("system:serviceaccounts:{namespace}"),
            AUTHENTICATED_GROUP.to_owned(),
        ],
        extra,
    })
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

    /// Objects in memory: (kind, namespace, name) -> (uid, deletion time).
    #[derive(Default)]
    struct Objects(std::sync::Mutex<Vec<(BoundKind, String, String, ObjectState)>>);

    impl Objects {
        fn put(&self, kind: BoundKind, namespace: &str, name: &str, uid: &str, deleted: Option<i64>) {
            let mut objects = self.0.lock().unwrap();
            objects.retain(|(k, ns, n, _)| !(*k == kind && ns == namespace && n == name));
            objects.push((
                kind,
                namespace.into(),
                name.into(),
                ObjectState {
                    uid: uid.into(),
                    deletion_timestamp: deleted,
                },
            ));
        }

        fn remove(&self, kind: BoundKind, name: &str) {
            self.0
                .lock()
                .unwrap()
                .retain(|(k, _, n, _)| !(*k == kind && n == name));
        }
    }

    impl BoundObjects for Objects {
        fn lookup(
            &self,
            kind: BoundKind,
            namespace: &str,
            name: &str,
        ) -> Result<Option<ObjectState>, String> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .iter()
                .find(|(k, ns, n, _)| *k == kind && ns == namespace && n == name)
                .map(|(_, _, _, state)| state.clone()))
        }
    }

    fn service_account_setup() -> (Authenticator, Arc<TokenIssuer>, Arc<Objects>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer =
            Arc::new(TokenIssuer::new(&key.serialize_pem(), satoken::DEFAULT_ISSUER, Vec::new()).unwrap());
        let objects = Arc::new(Objects::default());
        objects.put(BoundKind::ServiceAccount, "ns", "sa", "sa-uid", None);
        objects.put(BoundKind::Pod, "ns", "p", "p-uid", None);
        let authn = authenticator("abc,alice,1\n").with_service_accounts(issuer.clone(), objects.clone());
        (authn, issuer, objects)
    }

    fn pod_token(issuer: &TokenIssuer, now: i64) -> String {
        let claims = satoken::Claims::new(
            issuer.issuer(),
            "ns",
            "sa",
            "sa-uid",
            satoken::Binding {
                pod: Some(satoken::ObjectRef {
                    name: "p".into(),
                    uid: "p-uid".into(),
                }),
                node: Some(satoken::ObjectRef {
                    name: "node-1".into(),
                    uid: "n-uid".into(),
                }),
                secret: None,
            },
            issuer.audiences().to_vec(),
            now,
            3600,
            0,
            "the-jti".into(),
        );
        issuer.sign(&claims).unwrap()
    }

    #[test]
    fn service_account_tokens_authenticate_as_the_account() {
        let (authn, issuer, _) = service_account_setup();
        let now = jiff::Timestamp::now().as_second();
        let user = authn
            .authenticate(None, Some(&format!("Bearer {}", pod_token(&issuer, now))))
            .unwrap();
        assert_eq!(user.name, "system:serviceaccount:ns:sa");
        assert_eq!(user.uid, "sa-uid");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                AUTHENTICATED_GROUP
            ]
        );
        let extra: Vec<(&str, &str)> = user
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v[0].as_str()))
            .collect();
        assert_eq!(
            extra,
            [
                ("authentication.kubernetes.io/credential-id", "JTI=the-jti"),
                ("authentication.kubernetes.io/node-name", "node-1"),
                ("authentication.kubernetes.io/node-uid", "n-uid"),
                ("authentication.kubernetes.io/pod-name", "p"),
                ("authentication.kubernetes.io/pod-uid", "p-uid"),
            ]
        );
        // The static token file still works beside it.
        assert_eq!(
            authn.authenticate(None, Some("Bearer abc")).unwrap().name,
            "alice"
        );
    }

    #[test]
    fn service_account_tokens_die_with_their_objects() {
        let (authn, issuer, objects) = service_account_setup();
        let now = 10_000;
        let token = pod_token(&issuer, now);
        let check = |at: i64| authn.authenticate_token_at(&token, issuer.audiences(), at);
        assert!(check(now).is_ok());

        // A pod being deleted vouches for its tokens for the leeway, then not.
        objects.put(BoundKind::Pod, "ns", "p", "p-uid", Some(now));
        assert!(check(now + 60).is_ok());
        let invalidated = AuthnError::ServiceAccount("service account token has been invalidated".into());
        assert_eq!(check(now + 61), Err(invalidated.clone()));
        objects.remove(BoundKind::Pod, "p");
        assert_eq!(check(now), Err(invalidated));
        objects.put(BoundKind::Pod, "ns", "p", "other-uid", None);
        assert_eq!(
            check(now),
            Err(AuthnError::ServiceAccount(
                "pod UID (other-uid) does not match service account pod ref claim (p-uid)".into()
            ))
        );
        objects.put(BoundKind::Pod, "ns", "p", "p-uid", None);
        objects.put(BoundKind::ServiceAccount, "ns", "sa", "new-uid", None);
        assert_eq!(
            check(now),
            Err(AuthnError::ServiceAccount(
                "service account UID (new-uid) does not match claim (sa-uid)".into()
            ))
        );
        objects.remove(BoundKind::ServiceAccount, "sa");
        assert_eq!(
            check(now),
            Err(AuthnError::ServiceAccount(
                "serviceaccounts \"sa\" not found".into()
            ))
        );
        objects.put(BoundKind::ServiceAccount, "ns", "sa", "sa-uid", None);
        assert_eq!(
            check(now + 3600 + 61),
            Err(AuthnError::ServiceAccount(
                "service account token has expired".into()
            ))
        );
    }

    #[test]
    fn node_bound_tokens_need_their_node() {
        let (authn, issuer, objects) = service_account_setup();
        let claims = satoken::Claims::new(
            issuer.issuer(),
            "ns",
            "sa",
            "sa-uid",
            satoken::Binding {
                node: Some(satoken::ObjectRef {
                    name: "node-1".into(),
                    uid: "n-uid".into(),
                }),
                ..Default::default()
            },
            issuer.audiences().to_vec(),
            10_000,
            3600,
            0,
            String::new(),
        );
        let token = issuer.sign(&claims).unwrap();
        let invalidated = AuthnError::ServiceAccount("service account token has been invalidated".into());
        assert_eq!(authn.authenticate_token_at(&token, &[], 10_000), Err(invalidated));
        objects.put(BoundKind::Node, "", "node-1", "n-uid", None);
        let user = authn.authenticate_token_at(&token, &[], 10_000).unwrap().user;
        assert_eq!(user.extra["authentication.kubernetes.io/node-name"], ["node-1"]);
        assert_eq!(user.extra["authentication.kubernetes.io/node-uid"], ["n-uid"]);
        assert!(
            !user
                .extra
                .contains_key("authentication.kubernetes.io/credential-id")
        );
        objects.put(BoundKind::Node, "", "node-1", "other", None);
        assert_eq!(
            authn.authenticate_token_at(&token, &[], 10_000),
            Err(AuthnError::ServiceAccount(
                "node UID (other) does not match service account node ref claim (n-uid)".into()
            ))
        );
    }

    #[test]
    fn token_file_tokens_only_serve_the_servers_audiences() {
        let (authn, _, _) = service_account_setup();
        let reviewed = authn
            .authenticate_token("abc", &[satoken::DEFAULT_ISSUER.to_owned(), "vault".into()])
            .unwrap();
        assert_eq!(reviewed.audiences, [satoken::DEFAULT_ISSUER]);
        assert_eq!(
            authn.authenticate_token("abc", &["vault".to_owned()]),
            Err(AuthnError::InvalidToken)
        );
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(parse_csv_line(r#"a,"b,c","d""e""#).unwrap(), ["a", "b,c", "d\"e"]);
    }
}
