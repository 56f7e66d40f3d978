//! Writes the admin kubeconfig and builds `kube` client configs from the same credentials.

use std::path::Path;

use anyhow::{Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::certs::{CertAndKey, ADMIN_USER};

/// The context (and cluster) name in the generated kubeconfig.
pub const CONTEXT: &str = "meshlet-testenv";

/// Everything a client needs to talk to the environment as admin.
#[derive(Clone)]
pub struct AdminCredentials {
    pub server_url: String,
    pub ca_pem: String,
    pub ca_der: Vec<u8>,
    pub client: CertAndKey,
}

impl AdminCredentials {
    /// A self-contained kubeconfig (certificates inline), usable by kubectl.
    pub fn kubeconfig_yaml(&self) -> String {
        let ca = STANDARD.encode(&self.ca_pem);
        let cert = STANDARD.encode(&self.client.cert_pem);
        let key = STANDARD.encode(&self.client.key_pem);
        let server = &self.server_url;
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: {CONTEXT}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {ADMIN_USER}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {CONTEXT}
  context:
    cluster: {CONTEXT}
    user: {ADMIN_USER}
    namespace: default
current-context: {CONTEXT}
"
        )
    }

    /// Writes [`Self::kubeconfig_yaml`] to `path` (owner-only: it holds a key).
    pub fn write_kubeconfig(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(self.kubeconfig_yaml().as_bytes())
            .with_context(|| format!("writing {}", path.display()))
    }

    /// A `kube::Config` for the admin user, built without touching the disk.
    pub fn client_config(&self) -> Result<kube::Config> {
        let url = self
            .server_url
            .parse()
            .with_context(|| format!("server URL {:?}", self.server_url))?;
        let mut config = kube::Config::new(url);
        config.default_namespace = "default".to_string();
        config.root_cert = Some(vec![self.ca_der.clone()]);
        // kube reads `*_data` the way kubeconfig stores them: base64 of the PEM.
        config.auth_info.client_certificate_data = Some(STANDARD.encode(&self.client.cert_pem));
        config.auth_info.client_key_data = Some(STANDARD.encode(&self.client.key_pem).into());
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certs::Pki;

    fn credentials() -> AdminCredentials {
        let pki = Pki::generate().unwrap();
        AdminCredentials {
            server_url: "https://127.0.0.1:6443".into(),
            ca_pem: pki.ca.cert_pem.clone(),
            ca_der: pki.ca_der.clone(),
            client: pki.admin.clone(),
        }
    }

    #[tokio::test]
    async fn kube_reads_the_written_kubeconfig() {
        let creds = credentials();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        creds.write_kubeconfig(&path).unwrap();
        let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        assert_eq!(config.cluster_url.to_string(), "https://127.0.0.1:6443/");
        assert_eq!(config.default_namespace, "default");
        let data = config.auth_info.client_certificate_data.unwrap();
        assert_eq!(
            STANDARD.decode(data).unwrap(),
            creds.client.cert_pem.as_bytes()
        );
    }

    #[test]
    fn client_config_trusts_the_ca() {
        let creds = credentials();
        let config = creds.client_config().unwrap();
        assert_eq!(config.root_cert.unwrap(), vec![creds.ca_der]);
        assert_eq!(config.cluster_url.host(), Some("127.0.0.1"));
    }
}
