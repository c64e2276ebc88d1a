//! Writes kubeconfig files that embed the cluster CA and a client certificate.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::files;

/// Credentials and endpoint of one kubeconfig.
#[derive(Debug)]
pub struct Kubeconfig<'a> {
    /// Cluster, context and user name prefix.
    pub name: &'a str,
    /// `https://host:port`.
    pub server: &'a str,
    /// PEM of the cluster CA.
    pub ca_pem: &'a str,
    /// The user's name in the file.
    pub user: &'a str,
    /// PEM of the client certificate.
    pub cert_pem: &'a str,
    /// PEM of the client key.
    pub key_pem: &'a str,
}

impl Kubeconfig<'_> {
    /// The kubeconfig as YAML.
    pub fn render(&self) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server}
  name: {name}
contexts:
- context:
    cluster: {name}
    user: {user}
  name: {name}
current-context: {name}
preferences: {{}}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
            name = self.name,
            server = self.server,
            user = self.user,
            ca = STANDARD.encode(self.ca_pem),
            cert = STANDARD.encode(self.cert_pem),
            key = STANDARD.encode(self.key_pem),
        )
    }

    /// Writes the kubeconfig to `path` with mode 0600.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        files::write_atomic(path, self.render().as_bytes(), 0o600)
    }
}
