//! The cluster PKI: a CA and the certificates signed by it, kept as PEM files in one directory.
//!
//! First start creates everything; later starts load it and renew, with the same CA, any leaf
//! certificate that is missing, close to expiry, signed by another CA or (for the serving
//! certificate) missing a required subject alternative name. The service account signing key
//! pair (`sa.key`, `sa.pub`) lives here too; it is never rotated while valid, since replacing it
//! invalidates every issued token. Private keys are 0600. This module knows nothing of HTTP; it
//! only produces and checks files.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};
use thiserror::Error;
use time::OffsetDateTime;

use crate::files;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// Lifetime of the cluster CA.
pub const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
/// Lifetime of every leaf certificate.
pub const LEAF_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// Leaf certificates are renewed at start when they expire within this period.
const LEAF_RENEW_BEFORE: Duration = Duration::from_secs(90 * 24 * 60 * 60);
/// The CA is replaced (and every leaf with it) when it expires within this period.
const CA_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Errors of the PKI.
#[derive(Debug, Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        error: std::io::Error,
    },
    /// Generating or signing a key or certificate failed.
    #[error("generating {what}: {error}")]
    Generate {
        /// What was being generated.
        what: String,
        /// The failure.
        error: rcgen::Error,
    },
    /// A stored key or certificate cannot be parsed.
    #[error("{path} is not a valid PEM {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What it should have contained.
        what: &'static str,
    },
}

/// What a leaf certificate is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Usage {
    /// A TLS server certificate with these subject alternative names (DNS names or IPs).
    Server {
        /// The required subject alternative names.
        sans: Vec<String>,
    },
    /// A TLS client certificate: CN is the user, O the groups.
    Client,
}

/// A leaf certificate the PKI maintains.
#[derive(Clone, Debug)]
pub struct LeafSpec {
    /// File stem: the files are `<name>.crt` and `<name>.key`.
    pub name: String,
    /// Subject common name.
    pub common_name: String,
    /// Subject organizations.
    pub organizations: Vec<String>,
    /// Server or client.
    pub usage: Usage,
}

impl LeafSpec {
    /// A client certificate for `user` in `groups`.
    pub fn client(name: &str, user: &str, groups: &[&str]) -> Self {
        LeafSpec {
            name: name.to_owned(),
            common_name: user.to_owned(),
            organizations: groups.iter().map(|g| (*g).to_owned()).collect(),
            usage: Usage::Client,
        }
    }

    /// A server certificate valid for `sans`.
    pub fn server(name: &str, common_name: &str, sans: Vec<String>) -> Self {
        LeafSpec {
            name: name.to_owned(),
            common_name: common_name.to_owned(),
            organizations: Vec::new(),
            usage: Usage::Server { sans },
        }
    }
}

/// PEM-encoded certificate and key.
#[derive(Clone, Debug)]
pub struct CertKey {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
    /// Where the certificate is stored.
    pub cert_path: PathBuf,
    /// Where the key is stored.
    pub key_path: PathBuf,
}

/// The loaded PKI.
#[derive(Debug)]
pub struct Pki {
    /// The cluster CA.
    pub ca: CertKey,
    /// The leaf certificates, in the order of the specs.
    pub leaves: Vec<(LeafSpec, CertKey)>,
}

impl Pki {
    /// The leaf certificate named `name`.
    pub fn leaf(&self, name: &str) -> Option<&CertKey> {
        self.leaves
            .iter()
            .find(|(spec, _)| spec.name == name)
            .map(|(_, ck)| ck)
    }

    /// Loads the PKI in `dir`, creating or renewing whatever is needed for `specs`.
    pub fn ensure(dir: &Path, specs: &[LeafSpec]) -> Result<Pki, PkiError> {
        files::create_private_dir(dir).map_err(|error| PkiError::Io {
            path: dir.to_path_buf(),
            error,
        })?;
        let now = OffsetDateTime::now_utc();
        let ca_paths = paths(dir, "ca");
        let (ca, ca_renewed) = match load(&ca_paths)? {
            Some(ca) if remaining(&ca.cert_pem, now).is_some_and(|left| left > CA_RENEW_BEFORE) => {
                (ca, false)
            }
            existing => {
                if existing.is_some() {
                    tracing::warn!(
                        "cluster CA expires soon; creating a new one and reissuing every certificate"
                    );
                }
                (create_ca(&ca_paths, now)?, true)
            }
        };
        let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(|_| PkiError::Invalid {
            path: ca.key_path.clone(),
            what: "private key",
        })?;
        let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(|_| PkiError::Invalid {
            path: ca.cert_path.clone(),
            what: "certificate",
        })?;
        let mut leaves = Vec::with_capacity(specs.len());
        for spec in specs {
            let leaf_paths = paths(dir, &spec.name);
            let existing = if ca_renewed { None } else { load(&leaf_paths)? };
            let leaf = match existing {
                Some(leaf) if leaf_is_current(&leaf, spec, &ca, now) => leaf,
                existing => {
                    if existing.is_some() {
                        tracing::info!(certificate = %spec.name, "renewing certificate");
                    }
                    issue(&leaf_paths, spec, &issuer, now)?
                }
            };
            leaves.push((spec.clone(), leaf));
        }
        Ok(Pki { ca, leaves })
    }
}

/// The service account signing key (PKCS#8 PEM) in `dir`: `sa.key`, with its public key in
/// `sa.pub`. Created (ECDSA P-256) when missing or not a P-256 key; otherwise loaded as is.
pub fn ensure_service_account_key(dir: &Path) -> Result<String, PkiError> {
    files::create_private_dir(dir).map_err(|error| PkiError::Io {
        path: dir.to_path_buf(),
        error,
    })?;
    let key_path = dir.join("sa.key");
    let pub_path = dir.join("sa.pub");
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |error| PkiError::Io { path, error }
    };
    let existing = match std::fs::read_to_string(&key_path) {
        Ok(text) => KeyPair::from_pem(&text)
            .ok()
            .filter(|key| key.algorithm() == &rcgen::PKCS_ECDSA_P256_SHA256),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(io(&key_path)(error)),
    };
    let key = match existing {
        Some(key) => key,
        None => {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(generate("service account key"))?;
            files::write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600).map_err(io(&key_path))?;
            key
        }
    };
    let public = key.public_key_pem();
    if std::fs::read_to_string(&pub_path).ok().as_deref() != Some(public.as_str()) {
        files::write_atomic(&pub_path, public.as_bytes(), 0o644).map_err(io(&pub_path))?;
    }
    Ok(key.serialize_pem())
}

fn paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")))
}

fn load((cert_path, key_path): &(PathBuf, PathBuf)) -> Result<Option<CertKey>, PkiError> {
    let read = |path: &PathBuf| match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(PkiError::Io {
            path: path.clone(),
            error,
        }),
    };
    match (read(cert_path)?, read(key_path)?) {
        (Some(cert_pem), Some(key_pem)) => Ok(Some(CertKey {
            cert_pem,
            key_pem,
            cert_path: cert_path.clone(),
            key_path: key_path.clone(),
        })),
        _ => Ok(None),
    }
}

fn store(
    (cert_path, key_path): &(PathBuf, PathBuf),
    cert_pem: String,
    key_pem: String,
) -> Result<CertKey, PkiError> {
    let io = |path: &PathBuf| {
        let path = path.clone();
        move |error| PkiError::Io { path, error }
    };
    files::write_atomic(key_path, key_pem.as_bytes(), 0o600).map_err(io(key_path))?;
    files::write_atomic(cert_path, cert_pem.as_bytes(), 0o644).map_err(io(cert_path))?;
    Ok(CertKey {
        cert_pem,
        key_pem,
        cert_path: cert_path.clone(),
        key_path: key_path.clone(),
    })
}

fn generate(what: &str) -> impl Fn(rcgen::Error) -> PkiError + '_ {
    move |error| PkiError::Generate {
        what: what.to_owned(),
        error,
    }
}

fn create_ca(paths: &(PathBuf, PathBuf), now: OffsetDateTime) -> Result<CertKey, PkiError> {
    let key = KeyPair::generate().map_err(generate("CA key"))?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, format!("rudder-ca@{}", now.unix_timestamp()));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
    ];
    params.not_before = now - DAY;
    params.not_after = now + CA_LIFETIME;
    let cert = params.self_signed(&key).map_err(generate("CA certificate"))?;
    store(paths, cert.pem(), key.serialize_pem())
}

fn issue(
    paths: &(PathBuf, PathBuf),
    spec: &LeafSpec,
    issuer: &Issuer<'_, KeyPair>,
    now: OffsetDateTime,
) -> Result<CertKey, PkiError> {
    let what = format!("{} certificate", spec.name);
    let key = KeyPair::generate().map_err(generate(&what))?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    for org in &spec.organizations {
        name.push(DnType::OrganizationName, org.as_str());
    }
    name.push(DnType::CommonName, spec.common_name.as_str());
    params.distinguished_name = name;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - DAY;
    params.not_after = now + LEAF_LIFETIME;
    match &spec.usage {
        Usage::Server { sans } => {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.subject_alt_names = sans
                .iter()
                .map(|san| match san.parse::<IpAddr>() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => san.clone().try_into().map(SanType::DnsName),
                })
                .collect::<Result<_, _>>()
                .map_err(generate(&what))?;
        }
        Usage::Client => params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth],
    }
    let cert = params.signed_by(&key, issuer).map_err(generate(&what))?;
    store(paths, cert.pem(), key.serialize_pem())
}

/// How long until the certificate expires (`None` if it cannot be parsed or has expired).
fn remaining(cert_pem: &str, now: OffsetDateTime) -> Option<Duration> {
    let der = pem_der(cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    let left = cert.validity().not_after.timestamp() - now.unix_timestamp();
    u64::try_from(left).ok().map(Duration::from_secs)
}

/// Whether a stored leaf still fits its spec and its CA.
fn leaf_is_current(leaf: &CertKey, spec: &LeafSpec, ca: &CertKey, now: OffsetDateTime) -> bool {
    let (Some(der), Some(ca_der)) = (pem_der(&leaf.cert_pem), pem_der(&ca.cert_pem)) else {
        return false;
    };
    let (Ok((_, cert)), Ok((_, ca_cert))) = (
        x509_parser::parse_x509_certificate(&der),
        x509_parser::parse_x509_certificate(&ca_der),
    ) else {
        return false;
    };
    if KeyPair::from_pem(&leaf.key_pem).is_err() {
        return false;
    }
    let left = cert.validity().not_after.timestamp() - now.unix_timestamp();
    if left < i64::try_from(LEAF_RENEW_BEFORE.as_secs()).unwrap_or(i64::MAX) {
        return false;
    }
    if cert.verify_signature(Some(ca_cert.public_key())).is_err() {
        return false;
    }
    let subject = cert.subject();
    let common_name = subject.iter_common_name().next().and_then(|cn| cn.as_str().ok());
    let organizations: Vec<&str> = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .collect();
    if common_name != Some(spec.common_name.as_str()) || organizations != spec.organizations {
        return false;
    }
    match &spec.usage {
        Usage::Client => true,
        Usage::Server { sans } => {
            let Ok(Some(extension)) = cert.subject_alternative_name() else {
                return false;
            };
            let mut present: Vec<String> = Vec::new();
            for name in &extension.value.general_names {
                match name {
                    x509_parser::extensions::GeneralName::DNSName(dns) => present.push((*dns).to_owned()),
                    x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                        let ip = match bytes.len() {
                            4 => <[u8; 4]>::try_from(*bytes).ok().map(IpAddr::from),
                            16 => <[u8; 16]>::try_from(*bytes).ok().map(IpAddr::from),
                            _ => None,
                        };
                        present.extend(ip.map(|ip| ip.to_string()));
                    }
                    _ => {}
                }
            }
            sans.iter().all(|san| {
                let normalized = san
                    .parse::<IpAddr>()
                    .map_or_else(|_| san.clone(), |ip| ip.to_string());
                present.contains(&normalized)
            })
        }
    }
}

/// The DER of the first PEM block in `pem`.
pub fn pem_der(pem: &str) -> Option<Vec<u8>> {
    rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes())
        .ok()
        .map(|cert: rustls_pki_types::CertificateDer<'static>| cert.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(sans: &[&str]) -> Vec<LeafSpec> {
        vec![
            LeafSpec::server(
                "apiserver",
                "kube-apiserver",
                sans.iter().map(|s| (*s).to_owned()).collect(),
            ),
            LeafSpec::client("admin", "admin", &["system:masters"]),
        ]
    }

    #[test]
    fn creates_then_reuses_then_renews_on_new_sans() {
        let dir = tempfile::tempdir().unwrap();
        let first = Pki::ensure(dir.path(), &specs(&["localhost", "127.0.0.1"])).unwrap();
        let key_mode = std::fs::metadata(dir.path().join("ca.key")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&key_mode.permissions()) & 0o777,
            0o600
        );

        let second = Pki::ensure(dir.path(), &specs(&["localhost", "127.0.0.1"])).unwrap();
        assert_eq!(first.ca.cert_pem, second.ca.cert_pem);
        assert_eq!(
            first.leaf("apiserver").unwrap().cert_pem,
            second.leaf("apiserver").unwrap().cert_pem
        );

        let third = Pki::ensure(dir.path(), &specs(&["localhost", "127.0.0.1", "10.96.0.1"])).unwrap();
        assert_eq!(first.ca.cert_pem, third.ca.cert_pem, "the CA stays");
        assert_ne!(
            first.leaf("apiserver").unwrap().cert_pem,
            third.leaf("apiserver").unwrap().cert_pem
        );
        assert_eq!(
            first.leaf("admin").unwrap().cert_pem,
            third.leaf("admin").unwrap().cert_pem
        );
    }

    #[test]
    fn service_account_key_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_service_account_key(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join("sa.key")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        let public = std::fs::read_to_string(dir.path().join("sa.pub")).unwrap();
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
        assert_eq!(ensure_service_account_key(dir.path()).unwrap(), first);
        let key = KeyPair::from_pem(&first).unwrap();
        assert_eq!(key.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
        std::fs::write(dir.path().join("sa.key"), "garbage").unwrap();
        assert_ne!(ensure_service_account_key(dir.path()).unwrap(), first);
    }

    #[test]
    fn leaves_signed_by_another_ca_are_reissued() {
        let dir = tempfile::tempdir().unwrap();
        let first = Pki::ensure(dir.path(), &specs(&["localhost"])).unwrap();
        std::fs::remove_file(dir.path().join("ca.crt")).unwrap();
        let second = Pki::ensure(dir.path(), &specs(&["localhost"])).unwrap();
        assert_ne!(first.ca.cert_pem, second.ca.cert_pem);
        assert_ne!(
            first.leaf("admin").unwrap().cert_pem,
            second.leaf("admin").unwrap().cert_pem
        );
    }

    #[test]
    fn client_certificates_carry_user_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::ensure(dir.path(), &specs(&["localhost"])).unwrap();
        let der = pem_der(&pki.leaf("admin").unwrap().cert_pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let cn: Vec<_> = cert
            .subject()
            .iter_common_name()
            .map(|c| c.as_str().unwrap())
            .collect();
        let orgs: Vec<_> = cert
            .subject()
            .iter_organization()
            .map(|o| o.as_str().unwrap())
            .collect();
        assert_eq!((cn, orgs), (vec!["admin"], vec!["system:masters"]));
        let left = remaining(&pki.leaf("admin").unwrap().cert_pem, OffsetDateTime::now_utc()).unwrap();
        assert!(left > Duration::from_secs(364 * 24 * 3600) && left <= LEAF_LIFETIME);
        let ca_left = remaining(&pki.ca.cert_pem, OffsetDateTime::now_utc()).unwrap();
        assert!(ca_left > Duration::from_secs(9 * 365 * 24 * 3600));
    }
}
