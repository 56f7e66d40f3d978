//! The issuer Secret and the trust anchors ConfigMap in the install
//! namespace: loaded, or created when missing (create-only: an existing
//! object is never overwritten), then watched so that replacing the Secret
//! rotates the issuer and editing the ConfigMap changes the trusted anchors
//! without a restart. Nothing here deletes anything.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use meshlet_crds::contract::annotations::{COMPONENT_LABEL, PART_OF_LABEL, PART_OF_VALUE};
use meshlet_crds::contract::identity::{ISSUER_SECRET, TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY};
use serde::de::DeserializeOwned;

use super::issuer::{CA_CRT, TLS_CRT, TLS_KEY};
use super::{Ca, CaError, Issuer, IssuerPem, TrustBundle};
use crate::metrics::Metrics;

fn labels() -> BTreeMap<String, String> {
    [
        (PART_OF_LABEL.to_string(), PART_OF_VALUE.to_string()),
        (COMPONENT_LABEL.to_string(), "operator".to_string()),
    ]
    .into()
}

fn kube_error(what: impl Into<String>) -> impl FnOnce(kube::Error) -> CaError {
    let what = what.into();
    move |source| CaError::Kube { what, source }
}

/// The issuer in `secret`; errors name the missing or bad key.
pub fn issuer_of_secret(secret: &Secret) -> Result<Issuer, CaError> {
    let data = secret.data.clone().unwrap_or_default();
    let text = |key: &'static str| -> Result<String, CaError> {
        let bytes = data.get(key).ok_or(CaError::Secret {
            key,
            why: "missing".into(),
        })?;
        String::from_utf8(bytes.0.clone()).map_err(|_| CaError::Secret {
            key,
            why: "not UTF-8 PEM text".into(),
        })
    };
    Issuer::from_pem(IssuerPem {
        tls_crt: text(TLS_CRT)?,
        tls_key: text(TLS_KEY)?,
        ca_crt: text(CA_CRT)?,
    })
}

/// The bundle in `cm`; errors name the ConfigMap and key.
pub fn bundle_of_config_map(cm: &ConfigMap) -> Result<TrustBundle, CaError> {
    let what = format!("ConfigMap {TRUST_ANCHORS_CONFIGMAP} key {TRUST_ANCHORS_KEY}");
    let pem = cm
        .data
        .as_ref()
        .and_then(|d| d.get(TRUST_ANCHORS_KEY))
        .ok_or_else(|| CaError::Bundle(format!("{what}: missing")))?;
    TrustBundle::parse(pem, &what).map_err(CaError::Bundle)
}

/// Creates `obj` unless it exists; `Ok(false)` when it already did (the
/// existing one is left alone).
async fn create_only<K>(api: &Api<K>, obj: &K, what: &str) -> Result<bool, CaError>
where
    K: Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(kube_error(format!("creating {what}"))(e)),
    }
}

/// The issuer from the Secret in `namespace`; when there is none, a new
/// self-signed anchor-issuer, stored there.
pub async fn load_or_create_issuer(
    client: &Client,
    namespace: &str,
    trust_domain: &str,
) -> Result<Issuer, CaError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let what = format!("Secret {namespace}/{ISSUER_SECRET}");
    let read = || async {
        api.get_opt(ISSUER_SECRET)
            .await
            .map_err(kube_error(format!("reading {what}")))
    };
    if let Some(secret) = read().await? {
        tracing::info!(secret = %what, "using the existing identity issuer");
        return issuer_of_secret(&secret);
    }
    let issuer = Issuer::generate(trust_domain)?;
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(ISSUER_SECRET.into()),
            namespace: Some(namespace.into()),
            labels: Some(labels()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(issuer.pem().to_secret_data()),
        ..Default::default()
    };
    if create_only(&api, &secret, &what).await? {
        tracing::info!(secret = %what, "generated a new trust anchor and issuer");
        return Ok(issuer);
    }
    // Another replica created it first: use theirs.
    let secret = read()
        .await?
        .ok_or_else(|| CaError::Bundle(format!("{what} vanished")))?;
    issuer_of_secret(&secret)
}

/// The trusted bundle from the ConfigMap in `namespace`; when there is
/// none, one made of the issuer's `ca.crt`, stored there.
pub async fn load_or_create_bundle(
    client: &Client,
    namespace: &str,
    issuer: &Issuer,
) -> Result<TrustBundle, CaError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let what = format!("ConfigMap {namespace}/{TRUST_ANCHORS_CONFIGMAP}");
    let read = || async {
        api.get_opt(TRUST_ANCHORS_CONFIGMAP)
            .await
            .map_err(kube_error(format!("reading {what}")))
    };
    if let Some(cm) = read().await? {
        return bundle_of_config_map(&cm);
    }
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(TRUST_ANCHORS_CONFIGMAP.into()),
            namespace: Some(namespace.into()),
            labels: Some(labels()),
            ..Default::default()
        },
        data: Some([(TRUST_ANCHORS_KEY.to_string(), issuer.pem().ca_crt.clone())].into()),
        ..Default::default()
    };
    if create_only(&api, &cm, &what).await? {
        tracing::info!(configmap = %what, "created the trust anchors bundle from the issuer's ca.crt");
    }
    let cm = read()
        .await?
        .ok_or_else(|| CaError::Bundle(format!("{what} vanished")))?;
    bundle_of_config_map(&cm)
}

fn by_name(name: &str) -> watcher::Config {
    watcher::Config::default().fields(&format!("metadata.name={name}"))
}

/// Reloads the issuer whenever the Secret changes; a Secret with bad
/// content is logged and counted, and the current issuer kept.
pub async fn watch_issuer(client: Client, namespace: String, ca: Arc<Ca>, metrics: Arc<Metrics>) {
    let api: Api<Secret> = Api::namespaced(client, &namespace);
    let mut secrets = watcher(api, by_name(ISSUER_SECRET))
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(event) = secrets.next().await {
        let secret = match event {
            Ok(secret) => secret,
            Err(error) => {
                metrics.watch_error("Secret");
                tracing::warn!(%error, "watching the issuer Secret");
                continue;
            }
        };
        match issuer_of_secret(&secret) {
            Ok(issuer) if issuer.pem() == ca.issuer().pem() => {}
            Ok(issuer) => {
                tracing::info!(
                    namespace,
                    "the issuer Secret changed: signing with the new issuer"
                );
                ca.set_issuer(issuer);
            }
            Err(error) => {
                metrics.identity_load_errors.inc();
                tracing::error!(%error, "the issuer Secret changed to something unusable; still signing with the previous issuer");
            }
        }
    }
}

/// Reloads the trusted bundle whenever the ConfigMap changes; bad content
/// is logged and counted, and the current bundle kept.
pub async fn watch_bundle(client: Client, namespace: String, ca: Arc<Ca>, metrics: Arc<Metrics>) {
    let api: Api<ConfigMap> = Api::namespaced(client, &namespace);
    let mut maps = watcher(api, by_name(TRUST_ANCHORS_CONFIGMAP))
        .default_backoff()
        .applied_objects()
        .boxed();
    while let Some(event) = maps.next().await {
        let cm = match event {
            Ok(cm) => cm,
            Err(error) => {
                metrics.watch_error("ConfigMap");
                tracing::warn!(%error, "watching the trust anchors ConfigMap");
                continue;
            }
        };
        match bundle_of_config_map(&cm) {
            Ok(bundle) => {
                if bundle.pem() != ca.bundle().pem() {
                    tracing::info!(
                        namespace,
                        anchors = bundle.certs().len(),
                        "the trust anchors bundle changed"
                    );
                }
                ca.set_bundle(bundle);
            }
            Err(error) => {
                metrics.identity_load_errors.inc();
                tracing::error!(%error, "the trust anchors ConfigMap changed to something unusable; keeping the previous bundle");
            }
        }
    }
}
