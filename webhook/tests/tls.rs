//! The HTTPS server over real sockets: it answers /healthz over TLS trusted
//! through the published caBundle, and swaps in a renewed certificate
//! (generated, or re-read from files) without a restart.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use meshlet_webhook::certs::SelfSignedCa;
use meshlet_webhook::inject::InjectorSettings;
use meshlet_webhook::namespaces::Namespaces;
use meshlet_webhook::run::{self, CertSource, Config};
use meshlet_webhook::trust_anchors::TrustAnchors;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(certs: CertSource, renew_before: Duration) -> Config {
    Config {
        settings: InjectorSettings::default(),
        certs,
        register: None,
        mutating_name: String::new(),
        validating_name: String::new(),
        // Nothing to patch: this test has no API server.
        patch_ca_bundles: false,
        renew_before,
        check_every: Duration::from_millis(200),
    }
}

/// A client that is never used (no registration, no caBundle patching).
fn unused_client() -> kube::Client {
    let config = kube::Config::new("https://127.0.0.1:9".parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

/// GET /healthz over TLS trusting `ca_pem`; returns the leaf certificate
/// and the response.
async fn healthz(port: u16, ca_pem: &str) -> Result<(Vec<u8>, String)> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert?)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let mut tls = connector
        .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
        .await?;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = String::new();
    tls.read_to_string(&mut response).await?;
    Ok((leaf, response))
}

#[tokio::test]
async fn generated_certificate_is_served_and_renewed_before_expiry() -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    // Valid 4 s, renewed when under 3 s are left: renewed about every second.
    let certs = CertSource::SelfSigned {
        names: vec!["127.0.0.1".into()],
        validity: Duration::from_secs(4),
        ca_validity: Duration::from_secs(3600),
    };
    let running = run::start_with(
        config(certs, Duration::from_secs(3)),
        unused_client(),
        listener,
        Namespaces::Fixed(Default::default()),
        TrustAnchors::Fixed(None),
    )
    .await?;
    let (first, response) = healthz(port, &running.ca_pem).await?;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // Same CA (caBundle unchanged), new leaf.
    let (second, response) = healthz(port, &running.ca_pem).await?;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_ne!(first, second, "the certificate was not renewed");
    Ok(())
}

#[tokio::test]
async fn certificate_files_are_reread_when_they_change() -> Result<()> {
    let dir = tempfile_dir()?;
    let ca = SelfSignedCa::generate(Duration::from_secs(3600))?;
    let write = |cert: &meshlet_webhook::certs::ServingCert| -> Result<()> {
        std::fs::write(dir.join("tls.crt"), &cert.cert_pem)?;
        std::fs::write(dir.join("tls.key"), &cert.key_pem)?;
        std::fs::write(dir.join("ca.crt"), &cert.ca_pem)?;
        Ok(())
    };
    write(&ca.issue(&["127.0.0.1".into()], Duration::from_secs(3600))?)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let certs = CertSource::Files {
        cert: dir.join("tls.crt"),
        key: dir.join("tls.key"),
        ca: Some(dir.join("ca.crt")),
    };
    let running = run::start_with(
        config(certs, Duration::from_secs(60)),
        unused_client(),
        listener,
        Namespaces::Fixed(Default::default()),
        TrustAnchors::Fixed(None),
    )
    .await?;
    assert_eq!(running.ca_pem, ca.pem());
    let (first, _) = healthz(port, &ca.pem()).await?;
    write(&ca.issue(&["127.0.0.1".into()], Duration::from_secs(3600))?)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (leaf, response) = healthz(port, &ca.pem()).await?;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        if leaf != first {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the new files were not picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("meshlet-webhook-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[tokio::test]
async fn ca_rollover_publishes_old_and_new_ca_before_serving_the_new_certificate() -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    // The CA itself is valid 5 s and renewed when under 3 s are left (every
    // 2 s); the leaf alone would last.
    let certs = CertSource::SelfSigned {
        names: vec!["127.0.0.1".into()],
        validity: Duration::from_secs(60),
        ca_validity: Duration::from_secs(5),
    };
    let running = run::start_with(
        config(certs, Duration::from_secs(3)),
        unused_client(),
        listener,
        Namespaces::Fixed(Default::default()),
        TrustAnchors::Fixed(None),
    )
    .await?;
    let old_ca = running.ca_pem.clone();
    healthz(port, &old_ca).await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while running.current_ca_bundle() == old_ca {
        assert!(
            std::time::Instant::now() < deadline,
            "the CA was not renewed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bundle = running.current_ca_bundle();
    // Old and new CA, so callers holding either bundle keep working.
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 2, "{bundle}");
    let (_, response) = healthz(port, &bundle).await?;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    // The served certificate is from the new CA: the old one alone fails.
    assert!(healthz(port, &old_ca).await.is_err());
    Ok(())
}
