//! The operator's identity CA against a real API server, over real TLS on
//! loopback: certify (happy path, other identity, bad tokens, garbage),
//! the issuer Secret and anchors ConfigMap (created on first start, reused
//! on the next, a user's Secret used as-is, bad content named), and the
//! documented trust-anchor rotation with a config stream subscriber.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _, Result};
use common::*;
use hyper::StatusCode;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use meshlet_crds::contract::annotations::{COMPONENT_LABEL, PART_OF_LABEL, PART_OF_VALUE};
use meshlet_crds::contract::identity::{
    CertifyRequest, CertifyResponse, IdentityErrorBody, SpiffeId, ISSUER_SECRET,
    TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY,
};
use meshlet_operator::context::{Running, Settings};
use meshlet_operator::fixtures::*;
use meshlet_operator::identity::{IdentitySettings, Issuer, IssuerPem};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::extensions::GeneralName;

const WAIT: Duration = Duration::from_secs(20);
const LIFETIME: Duration = Duration::from_secs(3600);

fn settings(namespace: &str) -> Settings {
    Settings {
        identity: IdentitySettings {
            namespace: namespace.into(),
            cert_lifetime: LIFETIME,
            ..IdentitySettings::default()
        },
        ..Settings::default()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A CSR (with a fresh key) for `id`'s SANs.
fn csr_for(id: &SpiffeId) -> String {
    csr_with(vec![
        SanType::URI(id.to_string().try_into().unwrap()),
        SanType::DnsName(id.tls_server_name().try_into().unwrap()),
    ])
}

fn csr_with(sans: Vec<SanType>) -> String {
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans;
    let key = KeyPair::generate().unwrap();
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(anchors_pem: &str) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(anchors_pem) {
        roots.add(cert).unwrap();
    }
    Arc::new(roots)
}

/// Verifies `chain_pem` against `anchors_pem` the way peers will: as a TLS
/// server named `id.tls_server_name()` and as a TLS client.
fn verify(chain_pem: &str, anchors_pem: &str, id: &SpiffeId) -> Result<()> {
    let chain = certs(chain_pem);
    let (leaf, intermediates) = chain.split_first().context("an empty chain")?;
    let server =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots(anchors_pem), provider())
            .build()?;
    server.verify_server_cert(
        leaf,
        intermediates,
        &ServerName::try_from(id.tls_server_name())?,
        &[],
        UnixTime::now(),
    )?;
    let client =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots(anchors_pem), provider())
            .build()?;
    client.verify_client_cert(leaf, intermediates, UnixTime::now())?;
    Ok(())
}

/// The URI SANs of the chain's leaf.
fn uri_sans(chain_pem: &str) -> Vec<String> {
    let der = certs(chain_pem).remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .collect()
}

/// POSTs a CSR with `token`; the parsed answer or (status, error).
async fn certify(
    op: &Running,
    anchors_pem: &str,
    token: Option<&str>,
    csr_pem: &str,
) -> Result<Result<CertifyResponse, (StatusCode, String)>> {
    let body = serde_json::to_string(&CertifyRequest {
        csr_pem: csr_pem.into(),
    })?;
    let (status, body) = certify_raw(op.config_addr, anchors_pem, token, body).await?;
    if status == StatusCode::OK {
        return Ok(Ok(serde_json::from_str(&body)?));
    }
    let error: IdentityErrorBody =
        serde_json::from_str(&body).with_context(|| format!("{status}: {body}"))?;
    Ok(Err((status, error.error)))
}

fn metric(op: &Running, line_start: &str) -> f64 {
    op.context
        .metrics
        .encode()
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn certify_signs_exactly_the_callers_identity() -> Result<()> {
    let env = env().await?;
    let client = env.client();
    let ns = env.create_namespace("certify").await?;
    create(&client, &ns, &service_account(&ns, "web")).await?;
    create(&client, &ns, &service_account(&ns, "admin")).await?;
    let id_ns = env.create_namespace("meshlet-id").await?;
    let op = operator(env, settings(&id_ns)).await?;
    let anchors = anchors(&op);
    let token = token(&client, &ns, "web", None, AUDIENCE).await?;
    let web = SpiffeId::new("cluster.local", &ns, "web")?;

    // Happy path: the leaf carries the identity, chains to the anchor as
    // server and client, and its lifetime and renewal point follow the
    // settings.
    let asked = now();
    let issued = certify(&op, &anchors, Some(&token), &csr_for(&web))
        .await?
        .map_err(|e| anyhow::anyhow!("refused: {e:?}"))?;
    verify(&issued.certificate_chain_pem, &anchors, &web)?;
    assert_eq!(
        uri_sans(&issued.certificate_chain_pem),
        vec![web.to_string()]
    );
    assert_eq!(
        certs(&issued.certificate_chain_pem).len(),
        1,
        "the issuer is the anchor: the chain is the leaf alone"
    );
    assert_eq!(issued.trust_anchors_pem, anchors);
    let lifetime = issued.expires_unix - asked;
    assert!(
        lifetime.abs_diff(LIFETIME.as_secs()) <= 5,
        "lifetime {lifetime} s, want {LIFETIME:?}"
    );
    let renew = issued.renew_after_unix - asked;
    assert!(
        renew.abs_diff(LIFETIME.as_secs() * 7 / 10) <= 5,
        "renew after {renew} s, want 70 % of {LIFETIME:?}"
    );
    let leaf = certs(&issued.certificate_chain_pem).remove(0);
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())?;
    assert!(!parsed.is_ca());
    let not_before = parsed.validity().not_before.timestamp() as u64;
    assert!(
        not_before < asked && asked - not_before <= 120,
        "backdated a little: {not_before} vs {asked}"
    );
    assert!(
        metric(
            &op,
            "meshlet_operator_certify_requests_total{result=\"issued\""
        ) >= 1.0
    );

    // A CSR for another ServiceAccount: 403, saying what was asked.
    let admin = SpiffeId::new("cluster.local", &ns, "admin")?;
    let (status, error) = certify(&op, &anchors, Some(&token), &csr_for(&admin))
        .await?
        .unwrap_err();
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert!(error.contains(&format!("URI:{admin}")), "{error}");
    assert!(
        error.contains(&format!("allowed: exactly URI:{web}")),
        "{error}"
    );
    let refused =
        "meshlet_operator_certify_requests_total{result=\"refused\",reason=\"wrong_identity\"}";
    assert_eq!(metric(&op, refused), 1.0);
    // Extra DNS names are refused too.
    let (status, error) = certify(
        &op,
        &anchors,
        Some(&token),
        &csr_with(vec![
            SanType::URI(web.to_string().try_into()?),
            SanType::DnsName("web.shop.svc".try_into()?),
        ]),
    )
    .await?
    .unwrap_err();
    assert_eq!(status, StatusCode::FORBIDDEN, "{error}");
    assert!(error.contains("DNS:web.shop.svc"), "{error}");
    assert_eq!(metric(&op, refused), 2.0);

    // Tokens: none, garbage, another audience → 401.
    let other_audience =
        common::token(&client, &ns, "web", None, "https://kubernetes.default.svc").await?;
    for (token, want) in [
        (None, "Bearer"),
        (Some("not-a-token"), ""),
        (Some(other_audience.as_str()), ""),
    ] {
        let (status, error) = certify(&op, &anchors, token, &csr_for(&web))
            .await?
            .unwrap_err();
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{error}");
        assert!(error.contains(want), "{error}");
    }
    assert_eq!(
        metric(
            &op,
            "meshlet_operator_certify_requests_total{result=\"refused\",reason=\"unauthenticated\"}"
        ),
        3.0
    );

    // Garbage CSR, garbage body → 400 naming the field.
    let (status, error) = certify(&op, &anchors, Some(&token), "hello")
        .await?
        .unwrap_err();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert!(error.starts_with("csrPem: "), "{error}");
    let (status, body) = certify_raw(
        op.config_addr,
        &anchors,
        Some(&token),
        "{\"csr\": 1}".into(),
    )
    .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("csrPem"), "{body}");
    Ok(())
}

async fn get_secret(client: &Client, ns: &str) -> Result<Secret> {
    Ok(Api::<Secret>::namespaced(client.clone(), ns)
        .get(ISSUER_SECRET)
        .await?)
}

async fn get_bundle(client: &Client, ns: &str) -> Result<ConfigMap> {
    Ok(Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get(TRUST_ANCHORS_CONFIGMAP)
        .await?)
}

fn ours(meta: &ObjectMeta) -> bool {
    let labels = meta.labels.clone().unwrap_or_default();
    labels.get(PART_OF_LABEL).map(String::as_str) == Some(PART_OF_VALUE)
        && labels.get(COMPONENT_LABEL).map(String::as_str) == Some("operator")
}

fn secret_text(secret: &Secret, key: &str) -> String {
    String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
}

#[tokio::test]
async fn first_start_creates_the_anchor_and_the_next_start_reuses_it() -> Result<()> {
    let env = env().await?;
    let client = env.client();
    let id_ns = env.create_namespace("meshlet-id").await?;
    let first = operator(env, settings(&id_ns)).await?;
    let secret = get_secret(&client, &id_ns).await?;
    let cm = get_bundle(&client, &id_ns).await?;
    assert!(ours(&secret.metadata) && ours(&cm.metadata));
    let anchor = secret_text(&secret, "ca.crt");
    assert_eq!(
        secret_text(&secret, "tls.crt"),
        anchor,
        "self-signed anchor-issuer"
    );
    assert_eq!(cm.data.as_ref().unwrap()[TRUST_ANCHORS_KEY], anchor);
    let anchor_der = certs(&anchor).remove(0);
    let (_, parsed) = x509_parser::parse_x509_certificate(anchor_der.as_ref())?;
    assert!(parsed.is_ca());
    assert_eq!(anchors(&first), anchor);
    drop(first);

    let second = operator(env, settings(&id_ns)).await?;
    assert_eq!(anchors(&second), anchor, "the same anchor after a restart");
    assert_eq!(second.context.ca.issuer().pem().tls_crt, anchor);
    let again = get_secret(&client, &id_ns).await?;
    assert_eq!(
        again.metadata.resource_version, secret.metadata.resource_version,
        "the Secret is not rewritten"
    );
    let cm_again = get_bundle(&client, &id_ns).await?;
    assert_eq!(
        cm_again.metadata.resource_version,
        cm.metadata.resource_version
    );
    // Its serving certificate chains to that anchor.
    connect_tls(second.config_addr, &anchor, &[b"h2"]).await?;
    Ok(())
}

/// A root CA and an intermediate issuer it signed (the shape a user with
/// their own PKI supplies).
fn root_and_intermediate() -> Result<(String, IssuerPem)> {
    let ca_params = |cn: &str| -> Result<CertificateParams> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(params)
    };
    let root_key = KeyPair::generate()?;
    let root = rcgen::CertifiedIssuer::self_signed(ca_params("user root")?, root_key)?;
    let inter_key = KeyPair::generate()?;
    let inter = ca_params("user intermediate")?.signed_by(&inter_key, &root)?;
    Ok((
        root.pem(),
        IssuerPem {
            tls_crt: inter.pem(),
            tls_key: inter_key.serialize_pem(),
            ca_crt: root.pem(),
        },
    ))
}

fn issuer_secret(ns: &str, pem: &IssuerPem) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(ISSUER_SECRET.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        data: Some(pem.to_secret_data()),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_user_supplied_issuer_is_used_as_is() -> Result<()> {
    let env = env().await?;
    let client = env.client();
    let ns = env.create_namespace("user-ca").await?;
    create(&client, &ns, &service_account(&ns, "web")).await?;
    let id_ns = env.create_namespace("meshlet-id").await?;
    let (root, pem) = root_and_intermediate()?;
    let secret = create(&client, &id_ns, &issuer_secret(&id_ns, &pem)).await?;
    let op = operator(env, settings(&id_ns)).await?;
    assert_eq!(
        anchors(&op),
        root,
        "the bundle is made of the user's ca.crt"
    );
    assert_eq!(
        get_secret(&client, &id_ns).await?.metadata.resource_version,
        secret.metadata.resource_version,
        "the user's Secret is never rewritten"
    );
    let token = token(&client, &ns, "web", None, AUDIENCE).await?;
    let web = SpiffeId::new("cluster.local", &ns, "web")?;
    let issued = certify(&op, &root, Some(&token), &csr_for(&web))
        .await?
        .map_err(|e| anyhow::anyhow!("refused: {e:?}"))?;
    let chain = certs(&issued.certificate_chain_pem);
    assert_eq!(chain.len(), 2, "leaf + the intermediate issuer");
    assert_eq!(chain[1], certs(&pem.tls_crt)[0]);
    verify(&issued.certificate_chain_pem, &root, &web)?;

    // A Secret with bad content is a startup error naming the key.
    let bad_ns = env.create_namespace("meshlet-id").await?;
    let bad = IssuerPem {
        tls_key: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into(),
        ..pem.clone()
    };
    create(&client, &bad_ns, &issuer_secret(&bad_ns, &bad)).await?;
    let err = match operator(env, settings(&bad_ns)).await {
        Ok(_) => bail!("an operator started with a broken issuer Secret"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains(ISSUER_SECRET) && err.contains("tls.key"),
        "{err}"
    );
    Ok(())
}

/// Sets the anchors ConfigMap's bundle (a user's edit).
async fn set_bundle(client: &Client, ns: &str, pem: &str) -> Result<()> {
    let patch = serde_json::json!({"data": {TRUST_ANCHORS_KEY: pem}});
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .patch(
            TRUST_ANCHORS_CONFIGMAP,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

/// Replaces the issuer Secret (a user's rotation step).
async fn set_issuer(client: &Client, ns: &str, pem: &IssuerPem) -> Result<()> {
    let api = Api::<Secret>::namespaced(client.clone(), ns);
    let mut secret = api.get(ISSUER_SECRET).await?;
    secret.data = Some(pem.to_secret_data());
    api.replace(ISSUER_SECRET, &PostParams::default(), &secret)
        .await?;
    Ok(())
}

#[tokio::test]
async fn trust_anchor_rotation_as_documented() -> Result<()> {
    let env = env().await?;
    let client = env.client();
    let ns = env.create_namespace("rotate").await?;
    create(&client, &ns, &service_account(&ns, "web")).await?;
    let pod = create(&client, &ns, &pod(&ns, "web-0", "web", true, &[8080])).await?;
    let id_ns = env.create_namespace("meshlet-id").await?;
    let op = operator(env, settings(&id_ns)).await?;
    let old = anchors(&op);
    let token = pod_token(&client, &ns, "web", &pod, AUDIENCE).await?;
    let web = SpiffeId::new("cluster.local", &ns, "web")?;
    let mut sub = subscribe(&op, &ns, "web-0", Some(&token))
        .await?
        .map_err(|e| anyhow::anyhow!("refused: {e:?}"))?;
    let first = sub.until(WAIT, |_| true).await?;
    assert_eq!(
        first.config.identity.trust_anchors_pem, old,
        "the bundle rides on every config"
    );
    let old_cert = certify(&op, &old, Some(&token), &csr_for(&web))
        .await?
        .map_err(|e| anyhow::anyhow!("refused: {e:?}"))?;

    // 1. Add the new anchor to the bundle: subscribers get both.
    let new_issuer = Issuer::generate("cluster.local")?;
    let new = new_issuer.pem().ca_crt.clone();
    let both = format!("{old}{new}");
    set_bundle(&client, &id_ns, &both).await?;
    let msg = sub
        .until(WAIT, |m| m.config.identity.trust_anchors_pem == both)
        .await?;
    assert_eq!(msg.config.identity.trust_anchors_pem, both);

    // 2. Replace the issuer Secret: new certificates chain to the new
    //    anchor (only), old ones still verify against the bundle.
    set_issuer(&client, &id_ns, new_issuer.pem()).await?;
    let new_cert = eventually("a certificate from the new issuer", WAIT, || async {
        let issued = certify(&op, &both, Some(&token), &csr_for(&web))
            .await?
            .map_err(|e| anyhow::anyhow!("refused: {e:?}"))?;
        Ok(verify(&issued.certificate_chain_pem, &new, &web)
            .is_ok()
            .then_some(issued))
    })
    .await?;
    assert!(verify(&new_cert.certificate_chain_pem, &old, &web).is_err());
    assert_eq!(new_cert.trust_anchors_pem, both);
    verify(&old_cert.certificate_chain_pem, &both, &web)?;
    verify(&new_cert.certificate_chain_pem, &both, &web)?;
    // The operator's own serving certificate moved to the new issuer too.
    eventually("serving certificate from the new issuer", WAIT, || async {
        Ok(connect_tls(op.config_addr, &new, &[b"h2"])
            .await
            .ok()
            .map(|_| ()))
    })
    .await?;

    // 3. After a certificate lifetime, remove the old anchor: subscribers
    //    get the new bundle alone, and old certificates stop verifying.
    set_bundle(&client, &id_ns, &new).await?;
    sub.until(WAIT, |m| m.config.identity.trust_anchors_pem == new)
        .await?;
    assert!(verify(&old_cert.certificate_chain_pem, &new, &web).is_err());
    verify(&new_cert.certificate_chain_pem, &new, &web)?;

    // Skipping step 1 (an issuer whose anchor is not trusted): the CA
    // refuses to sign, says why, and the gauge shows it.
    let stray = Issuer::generate("cluster.local")?;
    set_issuer(&client, &id_ns, stray.pem()).await?;
    let (status, error) = eventually("refusal while the anchor is untrusted", WAIT, || async {
        Ok(certify(&op, &new, Some(&token), &csr_for(&web))
            .await?
            .err())
    })
    .await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{error}");
    assert!(error.contains(TRUST_ANCHORS_CONFIGMAP), "{error}");
    assert_eq!(metric(&op, "meshlet_operator_identity_issuer_trusted"), 0.0);
    assert_eq!(
        metric(
            &op,
            "meshlet_operator_certify_requests_total{result=\"refused\",reason=\"anchor_not_trusted\"}"
        ),
        1.0
    );
    Ok(())
}
