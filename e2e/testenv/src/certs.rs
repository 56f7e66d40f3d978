//! Generates the certificates and keys one control plane needs, fresh per instance.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// Names the serving certificate answers to: loopback, plus the in-cluster
/// names of the `kubernetes` Service (harmless here, expected by clients that
/// read the cluster's own kubeconfig).
const SERVING_NAMES: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// The common name kube-apiserver's front-proxy client certificate carries;
/// aggregated API servers accept request headers only from this name.
pub const FRONT_PROXY_CLIENT_NAME: &str = "front-proxy-client";

/// The admin user in the generated kubeconfig (group `system:masters`).
pub const ADMIN_USER: &str = "meshlet-testenv-admin";

/// A PEM certificate and its PEM (PKCS#8) private key.
#[derive(Clone)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Every certificate and key of one control plane, in memory.
pub struct Pki {
    /// Cluster CA: signs the serving and client certificates.
    pub ca: CertAndKey,
    /// DER of the cluster CA, for clients' trust roots.
    pub ca_der: Vec<u8>,
    /// kube-apiserver's serving certificate.
    pub serving: CertAndKey,
    /// Admin client certificate (group `system:masters`).
    pub admin: CertAndKey,
    /// Front-proxy CA: aggregated API servers trust request headers signed by it.
    pub front_proxy_ca: CertAndKey,
    /// The client certificate kube-apiserver presents when proxying to aggregated APIs.
    pub front_proxy_client: CertAndKey,
    /// Service-account token signing key (private) and its public half.
    pub service_account_key_pem: String,
    pub service_account_pub_pem: String,
}

/// Where [`Pki::write_to`] put each file.
pub struct PkiFiles {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub admin_cert: PathBuf,
    pub admin_key: PathBuf,
    pub front_proxy_ca_cert: PathBuf,
    pub front_proxy_client_cert: PathBuf,
    pub front_proxy_client_key: PathBuf,
    pub service_account_key: PathBuf,
    pub service_account_pub: PathBuf,
}

impl Pki {
    /// Generates a fresh set (ECDSA P-256 keys: fast to make, accepted everywhere).
    pub fn generate() -> Result<Pki> {
        let ca_key = KeyPair::generate().context("generating the CA key")?;
        let ca = CertifiedIssuer::self_signed(ca_params("meshlet-testenv-ca")?, ca_key)
            .context("self-signing the CA")?;
        let fp_key = KeyPair::generate().context("generating the front-proxy CA key")?;
        let front_proxy =
            CertifiedIssuer::self_signed(ca_params("meshlet-testenv-front-proxy-ca")?, fp_key)
                .context("self-signing the front-proxy CA")?;

        let serving = leaf(
            &ca,
            "kube-apiserver",
            &[],
            SERVING_NAMES,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
        .context("issuing the kube-apiserver serving certificate")?;
        let admin = leaf(
            &ca,
            ADMIN_USER,
            &["system:masters"],
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
        .context("issuing the admin client certificate")?;
        let front_proxy_client = leaf(
            &front_proxy,
            FRONT_PROXY_CLIENT_NAME,
            &[],
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
        .context("issuing the front-proxy client certificate")?;

        let sa_key = KeyPair::generate().context("generating the service-account key")?;

        Ok(Pki {
            ca: CertAndKey {
                cert_pem: ca.pem(),
                key_pem: ca.key().serialize_pem(),
            },
            ca_der: ca.der().to_vec(),
            serving,
            admin,
            front_proxy_ca: CertAndKey {
                cert_pem: front_proxy.pem(),
                key_pem: front_proxy.key().serialize_pem(),
            },
            front_proxy_client,
            service_account_key_pem: sa_key.serialize_pem(),
            service_account_pub_pem: sa_key.public_key_pem(),
        })
    }

    /// Writes every file into `dir` (private keys readable by the owner only).
    pub fn write_to(&self, dir: &Path) -> Result<PkiFiles> {
        let files = PkiFiles {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            admin_cert: dir.join("admin.crt"),
            admin_key: dir.join("admin.key"),
            front_proxy_ca_cert: dir.join("front-proxy-ca.crt"),
            front_proxy_client_cert: dir.join("front-proxy-client.crt"),
            front_proxy_client_key: dir.join("front-proxy-client.key"),
            service_account_key: dir.join("sa.key"),
            service_account_pub: dir.join("sa.pub"),
        };
        write(&files.ca_cert, &self.ca.cert_pem, false)?;
        write(&files.ca_key, &self.ca.key_pem, true)?;
        write(&files.serving_cert, &self.serving.cert_pem, false)?;
        write(&files.serving_key, &self.serving.key_pem, true)?;
        write(&files.admin_cert, &self.admin.cert_pem, false)?;
        write(&files.admin_key, &self.admin.key_pem, true)?;
        write(
            &files.front_proxy_ca_cert,
            &self.front_proxy_ca.cert_pem,
            false,
        )?;
        write(
            &files.front_proxy_client_cert,
            &self.front_proxy_client.cert_pem,
            false,
        )?;
        write(
            &files.front_proxy_client_key,
            &self.front_proxy_client.key_pem,
            true,
        )?;
        write(
            &files.service_account_key,
            &self.service_account_key_pem,
            true,
        )?;
        write(
            &files.service_account_pub,
            &self.service_account_pub_pem,
            false,
        )?;
        Ok(files)
    }
}

fn ca_params(common_name: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name(common_name, &[]);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn leaf(
    issuer: &CertifiedIssuer<'_, KeyPair>,
    common_name: &str,
    organizations: &[&str],
    subject_alt_names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertAndKey> {
    // rcgen turns names that parse as IP addresses into IP SANs.
    let sans: Vec<String> = subject_alt_names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans)?;
    params.distinguished_name = name(common_name, organizations);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![usage];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn name(common_name: &str, organizations: &[&str]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    for org in organizations {
        dn.push(DnType::OrganizationName, *org);
    }
    dn
}

fn write(path: &Path, contents: &str, private: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mode = if private { 0o600 } else { 0o644 };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_distinct_and_pem_encoded() {
        let pki = Pki::generate().unwrap();
        for pem in [
            &pki.ca.cert_pem,
            &pki.serving.cert_pem,
            &pki.admin.cert_pem,
            &pki.front_proxy_ca.cert_pem,
            &pki.front_proxy_client.cert_pem,
        ] {
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
        }
        assert_ne!(pki.ca.cert_pem, pki.front_proxy_ca.cert_pem);
        assert_ne!(pki.ca.key_pem, pki.serving.key_pem);
        assert!(pki.service_account_pub_pem.contains("PUBLIC KEY"));
    }

    #[test]
    fn write_to_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate().unwrap();
        let files = pki.write_to(dir.path()).unwrap();
        assert!(files.admin_key.exists());
        assert!(pki.write_to(dir.path()).is_err());
    }
}
