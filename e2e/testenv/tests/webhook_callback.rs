//! kube-apiserver calls an admission webhook served by the test on
//! https://127.0.0.1:<port>, trusting it through the webhook's caBundle.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A webhook's CA (for the caBundle) and a TLS acceptor serving 127.0.0.1.
fn webhook_tls() -> Result<(String, tokio_rustls::TlsAcceptor)> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])?.signed_by(&key, &ca)?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(cert.der().to_vec())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )?;
    Ok((ca.pem(), tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

/// Reads one HTTP/1.1 request (headers + Content-Length body).
async fn read_request<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        anyhow::ensure!(n > 0, "connection closed mid-request");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let headers = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = headers
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .context("no content-length")?
                .trim()
                .parse()?;
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await?;
                anyhow::ensure!(n > 0, "connection closed mid-body");
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(buf[end + 4..end + 4 + length].to_vec());
        }
    }
}

/// Denies every object it is asked about, counting the calls.
async fn serve_denying_webhook(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    calls: Arc<AtomicUsize>,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let acceptor = acceptor.clone();
        let calls = calls.clone();
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(tcp).await else {
                return;
            };
            let Ok(body) = read_request(&mut tls).await else {
                return;
            };
            let review: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            calls.fetch_add(1, Ordering::SeqCst);
            let response = serde_json::json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": review["request"]["uid"],
                    "allowed": false,
                    "status": {"code": 403, "message": "denied by the testenv webhook"}
                }
            })
            .to_string();
            let reply = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{response}",
                response.len()
            );
            let _ = tls.write_all(reply.as_bytes()).await;
            let _ = tls.shutdown().await;
        });
    }
}

#[tokio::test]
async fn validating_webhook_on_loopback_is_called() -> Result<()> {
    let env = meshlet_testenv::shared().await?;
    let ns = env.create_namespace("webhook").await?;
    let client = env.client();

    let (ca_pem, acceptor) = webhook_tls()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let calls = Arc::new(AtomicUsize::new(0));
    let server = tokio::spawn(serve_denying_webhook(listener, acceptor, calls.clone()));

    // Only ConfigMaps labelled deny=yes in this test's namespace are sent.
    let webhook = ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(format!("{ns}-deny")),
            ..Default::default()
        },
        webhooks: Some(vec![ValidatingWebhook {
            name: "deny.testenv.meshlet.dev".into(),
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            failure_policy: Some("Fail".into()),
            timeout_seconds: Some(5),
            client_config: WebhookClientConfig {
                url: Some(format!("https://127.0.0.1:{port}/validate")),
                ca_bundle: Some(ByteString(ca_pem.into_bytes())),
                ..Default::default()
            },
            rules: Some(vec![RuleWithOperations {
                api_groups: Some(vec!["".into()]),
                api_versions: Some(vec!["v1".into()]),
                resources: Some(vec!["configmaps".into()]),
                operations: Some(vec!["CREATE".into()]),
                scope: Some("Namespaced".into()),
            }]),
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "kubernetes.io/metadata.name".to_string(),
                    ns.clone(),
                )])),
                ..Default::default()
            }),
            object_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("deny".to_string(), "yes".to_string())])),
                ..Default::default()
            }),
            ..Default::default()
        }]),
    };
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    configs.create(&PostParams::default(), &webhook).await?;

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
    let labelled = |name: &str| ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(BTreeMap::from([("deny".to_string(), "yes".to_string())])),
            ..Default::default()
        },
        ..Default::default()
    };
    // The API server picks up new webhook configurations asynchronously.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut attempt = 0;
    let err = loop {
        attempt += 1;
        match cms
            .create(
                &PostParams::default(),
                &labelled(&format!("denied-{attempt}")),
            )
            .await
        {
            Err(e) => break e,
            Ok(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await
            }
            Ok(_) => anyhow::bail!("the webhook was never called"),
        }
    };
    assert!(
        err.to_string().contains("denied by the testenv webhook"),
        "{err}"
    );
    assert!(calls.load(Ordering::SeqCst) >= 1);

    // Unlabelled objects are not sent to the webhook and are admitted.
    let before = calls.load(Ordering::SeqCst);
    cms.create(
        &PostParams::default(),
        &ConfigMap {
            metadata: ObjectMeta {
                name: Some("allowed".into()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(calls.load(Ordering::SeqCst), before);

    configs
        .delete(&format!("{ns}-deny"), &Default::default())
        .await?;
    server.abort();
    Ok(())
}
