//! The node server's serving certificate as a handle that can be replaced while the server
//! runs: a joining node starts its server before the cluster signed its serving certificate
//! (the kubelet's `serverTLSBootstrap`), and handshakes fail until one is set, as the
//! kubelet's "no serving certificate available for the kubelet".
//!
//! It owns only the current certificate; requesting one is [`crate::certificates`]' job.

use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::ServerError;

/// The serving certificate the server presents; clones share it.
#[derive(Clone, Default)]
pub struct ServingCertificate {
    current: Arc<RwLock<Option<Arc<CertifiedKey>>>>,
}

impl std::fmt::Debug for ServingCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingCertificate")
            .field("present", &self.is_present())
            .finish()
    }
}

impl ServingCertificate {
    /// A certificate (chain) and its key, PEM.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<ServingCertificate, ServerError> {
        let serving = ServingCertificate::pending();
        serving.set_pem(cert_pem, key_pem)?;
        Ok(serving)
    }

    /// None yet: TLS handshakes fail until [`ServingCertificate::set_pem`].
    pub fn pending() -> ServingCertificate {
        ServingCertificate::default()
    }

    /// Replaces the certificate; connections from then on are served with it.
    pub fn set_pem(&self, cert_pem: &str, key_pem: &str) -> Result<(), ServerError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ServerError::Pem("serving certificate"))?;
        if chain.is_empty() {
            return Err(ServerError::Pem("serving certificate"));
        }
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| ServerError::Pem("serving key"))?;
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

impl ResolvesServerCert for ServingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let current = self.current.read().ok()?.clone();
        if current.is_none() {
            tracing::debug!("no serving certificate available for the node server yet");
        }
        current
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
        let serving = ServingCertificate::pending();
        let seen_by_server = serving.clone();
        assert!(!seen_by_server.is_present());
        let (cert, key) = pair();
        serving.set_pem(&cert, &key).unwrap();
        assert!(seen_by_server.is_present());
    }

    #[test]
    fn mismatched_or_garbage_pem_is_refused() {
        let (cert, _) = pair();
        let (_, other_key) = pair();
        assert!(ServingCertificate::from_pem(&cert, &other_key).is_err());
        assert!(ServingCertificate::from_pem("junk", "junk").is_err());
        let serving = ServingCertificate::pending();
        assert!(serving.set_pem(&cert, &other_key).is_err());
        assert!(!serving.is_present(), "a refused pair leaves the previous one");
    }
}
