//! A TLS identity (certificate chain and key) as a handle that can be replaced while the
//! server or client using it runs: a joining node starts its server before the cluster signed
//! its serving certificate (the kubelet's `serverTLSBootstrap`), and handshakes fail until one
//! is set, as the kubelet's "no serving certificate available for the kubelet"; certificates
//! rotate without restarting anything (connections made from then on present the new one).
//!
//! It owns only the current certificate; requesting one is [`crate::certificates`]' job.

use std::sync::{Arc, RwLock};

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate and key were refused.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("invalid PEM {0}")]
    Pem(&'static str),
    #[error(transparent)]
    Rustls(#[from] rustls::Error),
}

/// The certificate a server or client presents; clones share it.
#[derive(Clone, Default)]
pub struct TlsIdentity {
    current: Arc<RwLock<Option<Arc<CertifiedKey>>>>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("present", &self.is_present())
            .finish()
    }
}

impl TlsIdentity {
    /// A certificate (chain) and its key, PEM.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<TlsIdentity, IdentityError> {
        let serving = TlsIdentity::pending();
        serving.set_pem(cert_pem, key_pem)?;
        Ok(serving)
    }

    /// None yet: TLS handshakes fail until [`TlsIdentity::set_pem`].
    pub fn pending() -> TlsIdentity {
        TlsIdentity::default()
    }

    /// Replaces the certificate; connections from then on are served with it.
    pub fn set_pem(&self, cert_pem: &str, key_pem: &str) -> Result<(), IdentityError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| IdentityError::Pem("serving certificate"))?;
        if chain.is_empty() {
            return Err(IdentityError::Pem("serving certificate"));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|_| IdentityError::Pem("serving key"))?;
        let provider = rustls::crypto::ring::default_provider();
        let certified = CertifiedKey::from_der(chain, key, &provider)?;
        if let Ok(mut current) = self.current.write() {
            *current = Some(Arc::new(certified));
        }
        Ok(())
    }

    /// Whether a certificate is set.
    pub fn is_present(&self) -> bool {
        self.current.read().is_ok_and(|current| current.is_some())
    }
}

impl ResolvesServerCert for TlsIdentity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().ok()?.clone();
        if current.is_none() {
            tracing::debug!("no serving certificate available for the node server yet");
        }
        current
    }
}

impl ResolvesClientCert for TlsIdentity {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok()?.clone()
    }

    fn has_certs(&self) -> bool {
        self.is_present()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["n1".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn pending_until_set_and_shared_by_clones() {
        let serving = TlsIdentity::pending();
        let seen_by_server = serving.clone();
        assert!(!seen_by_server.is_present());
        let (cert, key) = pair();
        serving.set_pem(&cert, &key).unwrap();
        assert!(seen_by_server.is_present());
    }

    #[test]
    fn clients_present_the_latest_certificate() {
        let identity = TlsIdentity::pending();
        let client: &dyn ResolvesClientCert = &identity;
        assert!(!client.has_certs());
        assert!(client.resolve(&[], &[]).is_none());
        let (first, first_key) = pair();
        identity.set_pem(&first, &first_key).unwrap();
        let presented = client.resolve(&[], &[]).unwrap();
        let (second, second_key) = pair();
        identity.set_pem(&second, &second_key).unwrap();
        let rotated = client.resolve(&[], &[]).unwrap();
        assert_ne!(
            presented.cert[0], rotated.cert[0],
            "the rotated certificate is presented"
        );
    }

    #[test]
    fn mismatched_or_garbage_pem_is_refused() {
        let (cert, _) = pair();
        let (_, other_key) = pair();
        assert!(TlsIdentity::from_pem(&cert, &other_key).is_err());
        assert!(TlsIdentity::from_pem("junk", "junk").is_err());
        let serving = TlsIdentity::pending();
        assert!(serving.set_pem(&cert, &other_key).is_err());
        assert!(!serving.is_present(), "a refused pair leaves the previous one");
    }
}
