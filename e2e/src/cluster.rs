//! A client for the kind cluster `meshlet`.

use anyhow::Context;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::PathBuf;

/// The kubeconfig to use: `$KUBECONFIG` if set, else the one `make kind-up`
/// writes to `$MESHLET_CACHE/kind/kubeconfig` (`MESHLET_CACHE` defaults to
/// the repository's `.cache`).
pub fn kubeconfig_path() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBECONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("MESHLET_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache"));
    cache.join("kind/kubeconfig")
}

/// A client for the cluster, failing with a hint when there is none.
pub async fn client() -> anyhow::Result<Client> {
    let path = kubeconfig_path();
    let kubeconfig = Kubeconfig::read_from(&path).with_context(|| {
        format!(
            "reading kubeconfig {} (is the cluster up? run `make kind-up`)",
            path.display()
        )
    })?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("kubeconfig {}", path.display()))?;
    let client = Client::try_from(config).context("building the Kubernetes client")?;
    client
        .apiserver_version()
        .await
        .with_context(|| format!("API server of {} not answering", path.display()))?;
    Ok(client)
}
