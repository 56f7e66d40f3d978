//! The mesh's trust anchors for injected proxies: read from the ConfigMap the
//! operator keeps (`meshlet-trust-anchors`, key `ca-bundle.crt`) through a
//! watch cache, so each injected proxy starts able to verify the operator
//! and its peers, and an edited bundle reaches new pods at once.

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use meshlet_crds::contract::identity::{TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY};

/// Where the trust anchors come from.
#[derive(Clone)]
pub enum TrustAnchors {
    /// The cluster's ConfigMap, through a watch cache; a pod is refused
    /// while it is missing (a proxy without anchors could never get ready).
    Cluster {
        /// The cache (only the one ConfigMap).
        store: Store<ConfigMap>,
        /// The install namespace, for messages.
        namespace: String,
    },
    /// A fixed bundle, or none: proxies are injected without anchors
    /// (tests, and `meshlet inject` without a cluster).
    Fixed(Option<String>),
}

impl TrustAnchors {
    /// Starts watching the anchors ConfigMap in `namespace`.
    pub fn watch(client: Client, namespace: &str) -> TrustAnchors {
        let (store, writer) = reflector::store();
        let api: Api<ConfigMap> = Api::namespaced(client, namespace);
        let config =
            watcher::Config::default().fields(&format!("metadata.name={TRUST_ANCHORS_CONFIGMAP}"));
        let stream = reflector::reflector(writer, watcher(api, config))
            .default_backoff()
            .touched_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                if let Err(e) = item {
                    tracing::warn!(error = %e, "trust anchors watch");
                }
            }
        });
        TrustAnchors::Cluster {
            store,
            namespace: namespace.to_string(),
        }
    }

    /// The PEM bundle to give a new proxy: `Ok(None)` when this source has
    /// none by design, an error saying what to fix when the cluster's is
    /// missing or empty.
    pub fn current(&self) -> Result<Option<String>, String> {
        match self {
            TrustAnchors::Fixed(pem) => Ok(pem.clone()),
            TrustAnchors::Cluster { store, namespace } => store
                .state()
                .iter()
                .find_map(|cm| {
                    cm.data
                        .as_ref()?
                        .get(TRUST_ANCHORS_KEY)
                        .filter(|pem| pem.contains("-----BEGIN CERTIFICATE-----"))
                        .cloned()
                })
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "meshlet: no trust anchors: ConfigMap {namespace}/{TRUST_ANCHORS_CONFIGMAP} \
                         (key {TRUST_ANCHORS_KEY}) is missing or holds no certificate; \
                         meshlet-operator creates it on start: is it running?"
                    )
                }),
        }
    }
}
