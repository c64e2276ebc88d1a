//! A joining node's credentials, as the kubelet's TLS bootstrap gets them: the join token
//! (`K10<sha256 of the cluster CA PEM>::<id>.<secret>`), the cluster CA read from the
//! server's `/cacerts` and trusted only when it matches the token's hash, and kubelet client
//! and serving certificates requested through the CertificateSigningRequest API and waited
//! for until signed.
//!
//! It stores nothing: the caller decides where credentials live and when they are reused.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{CertificateSigningRequest, CertificateSigningRequestSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::config::{AuthInfo, Cluster, Context, Kubeconfig, NamedAuthInfo, NamedCluster, NamedContext};
use thiserror::Error;

/// The signer of kubelet client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The signer of kubelet serving certificates.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// The group every node's certificate names as its organization.
const NODES_GROUP: &str = "system:nodes";

/// Errors joining a cluster.
#[derive(Debug, Error)]
pub enum CertificateError {
    #[error("invalid join token: {0}")]
    Token(&'static str),
    #[error("invalid server URL {0:?}")]
    ServerUrl(String),
    #[error("reading the cluster CA from {server}/cacerts: {source}")]
    FetchCa { server: String, source: kube::Error },
    #[error(
        "the CA certificate {server} serves does not match the join token (its sha256 is {served}, the token pins {pinned}); not trusting it"
    )]
    CaMismatch {
        server: String,
        served: String,
        pinned: String,
    },
    #[error("invalid PEM: {0}")]
    Pem(&'static str),
    #[error("API client: {0}")]
    Client(kube::Error),
    #[error("client configuration: {0}")]
    Config(#[from] kube::config::KubeconfigError),
    #[error("making a key or certificate request: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("certificate signing request {name}: {source}")]
    Api { name: String, source: kube::Error },
    #[error("certificate signing request {name} was {outcome}: {message}")]
    Refused {
        name: String,
        outcome: &'static str,
        message: String,
    },
    #[error("certificate signing request {name} not signed within {timeout:?}")]
    Timeout { name: String, timeout: Duration },
}

/// A join token: the CA hash it pins and the bootstrap token credentials (`<id>.<secret>`).
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// Hex sha256 of the cluster CA certificate PEM as `/cacerts` serves it.
    pub ca_hash: String,
    /// The bootstrap token, used as a bearer token until the node has its certificate.
    pub credentials: String,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken")
            .field("ca_hash", &self.ca_hash)
            .finish_non_exhaustive()
    }
}

impl std::str::FromStr for JoinToken {
    type Err = CertificateError;

    fn from_str(text: &str) -> Result<JoinToken, CertificateError> {
        let text = text.trim();
        let rest = text
            .strip_prefix("K10")
            .ok_or(CertificateError::Token("it does not begin with K10"))?;
        let (ca_hash, credentials) = rest
            .split_once("::")
            .ok_or(CertificateError::Token("no \"::\" after the CA hash"))?;
        if ca_hash.len() != 64 || !ca_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CertificateError::Token("the CA hash is not 64 hex digits"));
        }
        let valid_part = |part: &str, len: usize| {
            part.len() == len && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        match credentials.split_once('.') {
            Some((id, secret)) if valid_part(id, 6) && valid_part(secret, 16) => Ok(JoinToken {
                ca_hash: ca_hash.to_ascii_lowercase(),
                credentials: credentials.to_owned(),
            }),
            _ => Err(CertificateError::Token(
                "the credentials are not a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})",
            )),
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The cluster CA (PEM) `server` serves at `/cacerts`, read without verifying the server
/// (nothing is trusted yet) and accepted only when its hash is the one `token` pins.
pub async fn fetch_cluster_ca(server: &str, token: &JoinToken) -> Result<String, CertificateError> {
    let url = server
        .parse::<http::Uri>()
        .map_err(|_| CertificateError::ServerUrl(server.to_owned()))?;
    let mut config = kube::Config::new(url);
    config.accept_invalid_certs = true;
    let client = kube::Client::try_from(config).map_err(CertificateError::Client)?;
    let request = http::Request::get("/cacerts")
        .body(Vec::new())
        .map_err(|_| CertificateError::ServerUrl(server.to_owned()))?;
    let pem = client
        .request_text(request)
        .await
        .map_err(|source| CertificateError::FetchCa {
            server: server.to_owned(),
            source,
        })?;
    let served = sha256_hex(pem.as_bytes());
    if served != token.ca_hash {
        return Err(CertificateError::CaMismatch {
            server: server.to_owned(),
            served,
            pinned: token.ca_hash.clone(),
        });
    }
    Ok(pem)
}

/// Who a kubeconfig authenticates as.
pub enum Credentials<'a> {
    /// A bearer token.
    Token(&'a str),
    /// A client certificate and its key, PEM.
    Certificate { cert_pem: &'a str, key_pem: &'a str },
}

/// A kubeconfig for `server`, trusting `ca_pem`, as `user` (named `name` in it).
pub fn kubeconfig(server: &str, ca_pem: &str, name: &str, user: &Credentials<'_>) -> Kubeconfig {
    use base64::Engine;
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let auth_info = match user {
        Credentials::Token(token) => AuthInfo {
            token: Some((*token).to_owned().into()),
            ..AuthInfo::default()
        },
        Credentials::Certificate { cert_pem, key_pem } => AuthInfo {
            client_certificate_data: Some(encode(cert_pem)),
            client_key_data: Some(encode(key_pem).into()),
            ..AuthInfo::default()
        },
    };
    Kubeconfig {
        clusters: vec![NamedCluster {
            name: "rudder".into(),
            cluster: Some(Cluster {
                server: Some(server.to_owned()),
                certificate_authority_data: Some(encode(ca_pem)),
                ..Cluster::default()
            }),
            other: Default::default(),
        }],
        auth_infos: vec![NamedAuthInfo {
            name: name.to_owned(),
            auth_info: Some(auth_info),
            other: Default::default(),
        }],
        contexts: vec![NamedContext {
            name: "rudder".into(),
            context: Some(Context {
                cluster: "rudder".into(),
                user: Some(name.to_owned()),
                ..Context::default()
            }),
            other: Default::default(),
        }],
        current_context: Some("rudder".into()),
        api_version: Some("v1".into()),
        kind: Some("Config".into()),
        ..Kubeconfig::default()
    }
}

/// A client configuration from an in-memory kubeconfig.
pub async fn client_config(kubeconfig: Kubeconfig) -> Result<kube::Config, CertificateError> {
    Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await?)
}

/// A private key and a certificate request for it, PEM.
pub struct KeyAndRequest {
    pub key_pem: String,
    pub csr_pem: String,
}

impl std::fmt::Debug for KeyAndRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAndRequest")
            .field("csr_pem", &self.csr_pem)
            .finish_non_exhaustive()
    }
}

fn key_and_request(
    node_name: &str,
    names: &[String],
    ips: &[IpAddr],
) -> Result<KeyAndRequest, CertificateError> {
    use rcgen::{CertificateParams, DistinguishedName, DnType, SanType};
    let key = rcgen::KeyPair::generate()?;
    let mut params = CertificateParams::default();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::OrganizationName, NODES_GROUP);
    subject.push(DnType::CommonName, format!("system:node:{node_name}"));
    params.distinguished_name = subject;
    params.subject_alt_names = names
        .iter()
        .map(|name| Ok(SanType::DnsName(name.clone().try_into()?)))
        .chain(ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
        .collect::<Result<_, rcgen::Error>>()?;
    let request = params.serialize_request(&key)?;
    Ok(KeyAndRequest {
        key_pem: key.serialize_pem(),
        csr_pem: request.pem()?,
    })
}

/// A new key and its kubelet client certificate request (`CN=system:node:NAME`,
/// `O=system:nodes`, no subject alternative names).
pub fn client_request(node_name: &str) -> Result<KeyAndRequest, CertificateError> {
    key_and_request(node_name, &[], &[])
}

/// A new key and its kubelet serving certificate request: the node's host names and
/// addresses as subject alternative names.
pub fn serving_request(
    node_name: &str,
    names: &[String],
    ips: &[IpAddr],
) -> Result<KeyAndRequest, CertificateError> {
    key_and_request(node_name, names, ips)
}

/// The host names and IP addresses of a Node's status (the kubelet's serving certificate
/// names), each once.
pub fn node_names_and_ips(node: &k8s_openapi::api::core::v1::Node) -> (Vec<String>, Vec<IpAddr>) {
    let mut names: Vec<String> = Vec::new();
    let mut ips: Vec<IpAddr> = Vec::new();
    for address in node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
    {
        match address.address.parse::<IpAddr>() {
            Ok(ip) => {
                if !ips.contains(&ip) {
                    ips.push(ip);
                }
            }
            Err(_) => {
                if !names.contains(&address.address) {
                    names.push(address.address.clone());
                }
            }
        }
    }
    (names, ips)
}

/// Which kubelet certificate a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Client,
    Serving,
}

impl Purpose {
    fn signer(self) -> &'static str {
        match self {
            Purpose::Client => KUBELET_CLIENT_SIGNER,
            Purpose::Serving => KUBELET_SERVING_SIGNER,
        }
    }

    /// The usages of an ECDSA key's certificate (RSA keys would add key encipherment).
    fn usages(self) -> Vec<String> {
        let last = match self {
            Purpose::Client => "client auth",
            Purpose::Serving => "server auth",
        };
        vec!["digital signature".to_owned(), last.to_owned()]
    }
}

/// Creates a CertificateSigningRequest for `request` and waits up to `timeout` for the
/// certificate it is signed with (PEM). A denied or failed request is an error.
pub async fn request_certificate(
    client: kube::Client,
    purpose: Purpose,
    request: &KeyAndRequest,
    timeout: Duration,
) -> Result<String, CertificateError> {
    let api: Api<CertificateSigningRequest> = Api::all(client);
    let metadata = match purpose {
        // The kubelet's bootstrap names client requests after the key, so a retry with the
        // same key finds its request again.
        Purpose::Client => ObjectMeta {
            name: Some(format!(
                "node-csr-{}",
                &sha256_hex(request.csr_pem.as_bytes())[..32]
            )),
            ..ObjectMeta::default()
        },
        Purpose::Serving => ObjectMeta {
            generate_name: Some("csr-".into()),
            ..ObjectMeta::default()
        },
    };
    let object = CertificateSigningRequest {
        metadata,
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.csr_pem.as_bytes().to_vec()),
            signer_name: purpose.signer().to_owned(),
            usages: Some(purpose.usages()),
            ..CertificateSigningRequestSpec::default()
        },
        status: None,
    };
    let wanted = object.metadata.name.clone().unwrap_or_default();
    let api_error = |name: &str| {
        let name = name.to_owned();
        move |source| CertificateError::Api { name, source }
    };
    let created = match api.create(&PostParams::default(), &object).await {
        Ok(created) => created,
        Err(kube::Error::Api(status)) if status.code == 409 && !wanted.is_empty() => {
            api.get(&wanted).await.map_err(api_error(&wanted))?
        }
        Err(source) => return Err(api_error(&wanted)(source)),
    };
    let name = created.metadata.name.clone().unwrap_or_default();
    let done = |csr: Option<&CertificateSigningRequest>| csr.is_some_and(|csr| outcome(csr).is_some());
    let finished = tokio::time::timeout(timeout, kube::runtime::wait::await_condition(api, &name, done))
        .await
        .map_err(|_| CertificateError::Timeout {
            name: name.clone(),
            timeout,
        })?
        .map_err(|err| CertificateError::Api {
            name: name.clone(),
            source: kube::Error::Service(Box::new(err)),
        })?;
    match finished.as_ref().and_then(outcome) {
        Some(Ok(cert_pem)) => Ok(cert_pem),
        Some(Err((outcome, message))) => Err(CertificateError::Refused {
            name,
            outcome,
            message,
        }),
        None => Err(CertificateError::Refused {
            name,
            outcome: "deleted",
            message: "the request is gone".into(),
        }),
    }
}

/// The certificate of a signed request, or why it was refused; `None` while pending.
fn outcome(csr: &CertificateSigningRequest) -> Option<Result<String, (&'static str, String)>> {
    let status = csr.status.as_ref()?;
    for condition in status.conditions.iter().flatten() {
        let outcome = match condition.type_.as_str() {
            "Denied" => "denied",
            "Failed" => "failed",
            _ => continue,
        };
        if condition.status == "True" {
            let message = condition.message.clone().unwrap_or_default();
            return Some(Err((outcome, message)));
        }
    }
    let certificate = status.certificate.as_ref().filter(|c| !c.0.is_empty())?;
    Some(Ok(String::from_utf8_lossy(&certificate.0).into_owned()))
}

/// What a stored certificate says of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateFacts {
    pub common_name: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl CertificateFacts {
    /// The first certificate of a PEM chain.
    pub fn of(cert_pem: &str) -> Result<CertificateFacts, CertificateError> {
        use x509_parser::extensions::GeneralName;
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|_| CertificateError::Pem("certificate"))?;
        let cert = pem
            .parse_x509()
            .map_err(|_| CertificateError::Pem("certificate"))?;
        let time = |t: x509_parser::time::ASN1Time| {
            let seconds = u64::try_from(t.timestamp()).unwrap_or(0);
            SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
        };
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut dns_names = Vec::new();
        let mut ips = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => dns_names.push((*dns).to_owned()),
                    GeneralName::IPAddress(bytes) => match bytes.len() {
                        4 => ips.extend(<[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from)),
                        16 => ips.extend(<[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from)),
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        Ok(CertificateFacts {
            common_name,
            not_before: time(cert.validity().not_before),
            not_after: time(cert.validity().not_after),
            dns_names,
            ips,
        })
    }

    /// Whether the certificate is worth keeping at `now`: valid, with more than a fifth of
    /// its lifetime left (the kubelet rotates between 70% and 90% of it).
    pub fn fresh_at(&self, now: SystemTime) -> bool {
        let Ok(lifetime) = self.not_after.duration_since(self.not_before) else {
            return false;
        };
        match self.not_after.duration_since(now) {
            Ok(left) => now >= self.not_before && left > lifetime / 5,
            Err(_) => false,
        }
    }

    /// When to replace the certificate: `fraction` (the kubelet draws it between 0.7 and
    /// 0.9) of the way through its life.
    pub fn rotation_deadline(&self, fraction: f64) -> SystemTime {
        let lifetime = self.not_after.duration_since(self.not_before).unwrap_or_default();
        self.not_before + lifetime.mul_f64(fraction.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn join_tokens_parse_and_bad_ones_say_why() {
        let token: JoinToken = format!("K10{HASH}::abcdef.0123456789abcdef\n").parse().unwrap();
        assert_eq!(token.ca_hash, HASH);
        assert_eq!(token.credentials, "abcdef.0123456789abcdef");
        assert!(
            !format!("{token:?}").contains("abcdef.0123"),
            "no secret in Debug"
        );
        for (bad, why) in [
            ("abcdef.0123456789abcdef", "K10"),
            (&format!("K10{HASH}abcdef.0123456789abcdef"), "::"),
            ("K10abc::abcdef.0123456789abcdef", "64 hex"),
            (&format!("K10{HASH}::abcdef"), "bootstrap token"),
            (&format!("K10{HASH}::ABCDEF.0123456789abcdef"), "bootstrap token"),
        ] {
            let err = bad.parse::<JoinToken>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    fn subject(csr_pem: &str) -> (String, Vec<String>, Vec<String>) {
        let params = rcgen::CertificateSigningRequestParams::from_pem(csr_pem).unwrap();
        let dn = &params.params.distinguished_name;
        let text = |t: Option<&rcgen::DnValue>| match t {
            Some(rcgen::DnValue::Utf8String(s)) => s.clone(),
            Some(rcgen::DnValue::PrintableString(s)) => s.to_string(),
            other => format!("{other:?}"),
        };
        let sans = params
            .params
            .subject_alt_names
            .iter()
            .map(|san| format!("{san:?}"))
            .collect();
        (
            text(dn.get(&rcgen::DnType::CommonName)),
            vec![text(dn.get(&rcgen::DnType::OrganizationName))],
            sans,
        )
    }

    #[test]
    fn requests_name_the_node_and_its_addresses() {
        let client = client_request("n1").unwrap();
        let (cn, org, sans) = subject(&client.csr_pem);
        assert_eq!(cn, "system:node:n1");
        assert_eq!(org, ["system:nodes"]);
        assert!(sans.is_empty());
        let serving = serving_request("n1", &["n1".into()], &["192.168.79.2".parse().unwrap()]).unwrap();
        let (cn, _, sans) = subject(&serving.csr_pem);
        assert_eq!(cn, "system:node:n1");
        assert_eq!(sans.len(), 2, "{sans:?}");
        assert!(sans[1].contains("192.168.79.2"), "{sans:?}");
        assert_ne!(client.key_pem, serving.key_pem, "a new key each time");
    }

    #[test]
    fn kubeconfigs_round_trip_with_their_credentials() {
        let config = kubeconfig(
            "https://10.0.0.1:6443",
            "CA",
            "system:node:n1",
            &Credentials::Certificate {
                cert_pem: "CERT",
                key_pem: "KEY",
            },
        );
        let text = serde_json::to_string(&config).unwrap();
        let back = Kubeconfig::from_yaml(&text).unwrap();
        let user = back.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(user.client_certificate_data.as_deref(), Some("Q0VSVA=="));
        assert!(text.contains("S0VZ"), "the key is written: {text}");
        assert_eq!(back.current_context.as_deref(), Some("rudder"));
    }

    #[test]
    fn certificates_are_fresh_until_four_fifths_of_their_life() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["n1".to_owned(), "10.1.2.3".to_owned()]).unwrap();
        // 2000-01-01 to 2000-01-11: ten days.
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2000, 1, 11);
        let pem = params.self_signed(&key).unwrap().pem();
        let facts = CertificateFacts::of(&pem).unwrap();
        assert_eq!(facts.dns_names, ["n1"]);
        assert_eq!(facts.ips, ["10.1.2.3".parse::<IpAddr>().unwrap()]);
        let start = 946_684_800;
        let day = 86_400;
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        assert!(!facts.fresh_at(at(start - 1)));
        assert!(facts.fresh_at(at(start)));
        assert!(facts.fresh_at(at(start + 8 * day - 1)));
        assert!(!facts.fresh_at(at(start + 8 * day)));
        assert!(!facts.fresh_at(at(start + 20 * day)));
        assert_eq!(facts.rotation_deadline(0.7), at(start + 7 * day));
        assert_eq!(facts.rotation_deadline(0.9), at(start + 9 * day));
    }
}
