//! Namespace labels and annotations for the injector: read from a watch
//! cache (kube-runtime reflector) so admission needs no API call, with a GET
//! when a namespace is newer than the cache.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};

use crate::inject::NamespaceInfo;

/// Where namespace information comes from.
#[derive(Clone)]
pub enum Namespaces {
    /// The cluster, through a watch cache.
    Cluster {
        /// The cache.
        store: Store<Namespace>,
        /// For namespaces the cache has not seen yet.
        client: Client,
    },
    /// A fixed set (tests).
    Fixed(BTreeMap<String, NamespaceInfo>),
}

impl Namespaces {
    /// Starts watching namespaces; the watch runs until the process ends.
    pub fn watch(client: Client) -> Namespaces {
        let (store, writer) = reflector::store();
        let api: Api<Namespace> = Api::all(client.clone());
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .touched_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                if let Err(e) = item {
                    tracing::warn!(error = %e, "namespace watch");
                }
            }
        });
        Namespaces::Cluster { store, client }
    }

    /// Labels and annotations of namespace `name` (empty when unknown).
    pub async fn get(&self, name: &str) -> NamespaceInfo {
        let from = |ns: &Namespace| NamespaceInfo {
            name: name.to_string(),
            labels: ns.metadata.labels.clone().unwrap_or_default(),
            annotations: ns.metadata.annotations.clone().unwrap_or_default(),
        };
        match self {
            Namespaces::Fixed(map) => map.get(name).cloned().unwrap_or_else(|| NamespaceInfo {
                name: name.to_string(),
                ..Default::default()
            }),
            Namespaces::Cluster { store, client } => {
                if let Some(ns) = store.get(&ObjectRef::new(name)) {
                    return from(&ns);
                }
                match Api::<Namespace>::all(client.clone()).get_opt(name).await {
                    Ok(Some(ns)) => from(&ns),
                    Ok(None) => NamespaceInfo {
                        name: name.to_string(),
                        ..Default::default()
                    },
                    Err(e) => {
                        tracing::warn!(namespace = name, error = %e, "reading namespace");
                        NamespaceInfo {
                            name: name.to_string(),
                            ..Default::default()
                        }
                    }
                }
            }
        }
    }
}
