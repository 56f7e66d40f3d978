//! kubectl's connection flags (`--kubeconfig`, `--context`, `-n`) and the
//! client and namespace they select.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The flags every command shares, as kubectl spells them.
#[derive(Args, Debug, Clone, Default)]
pub struct KubeArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace (default: the context's, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAME")]
    pub namespace: Option<String>,
}

impl KubeArgs {
    /// The client configuration these flags select.
    pub async fn config(&self) -> anyhow::Result<kube::Config> {
        let mut config = self.loaded_config().await?;
        // kube retries 429/503/504 up to 15 times with backoff (minutes):
        // right for controllers, wrong for a command someone waits on. An
        // unavailable aggregated API (503) must be reported at once.
        config.default_retry = false;
        Ok(config)
    }

    async fn loaded_config(&self) -> anyhow::Result<kube::Config> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .with_context(|| format!("--kubeconfig {}: cannot read it", path.display()))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .with_context(|| format!("--kubeconfig {}", path.display()))
            }
            None if self.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .context("--context: no such context in the kubeconfig"),
            None => kube::Config::infer()
                .await
                .context("no cluster configured: set --kubeconfig or KUBECONFIG"),
        }
    }

    /// A client and the namespace to work in (`-n`, else the context's).
    pub async fn client(&self) -> anyhow::Result<(kube::Client, String)> {
        let config = self.config().await?;
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = kube::Client::try_from(config).context("building the Kubernetes client")?;
        Ok((client, namespace))
    }
}
