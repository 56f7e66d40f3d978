//! A namespace of the test's own, deleted when the test is done.

use anyhow::Context;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use std::time::{SystemTime, UNIX_EPOCH};

/// A namespace named `<prefix>-<unique suffix>`, labelled as an e2e namespace.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    pub async fn create(client: &Client, prefix: &str) -> anyhow::Result<Self> {
        Self::create_with(client, prefix, &[]).await
    }

    /// A namespace labelled `meshlet.dev/inject=enabled`: its pods are meshed.
    pub async fn create_meshed(client: &Client, prefix: &str) -> anyhow::Result<Self> {
        Self::create_with(client, prefix, &[("meshlet.dev/inject", "enabled")]).await
    }

    /// Like [`TestNamespace::create`], with extra labels.
    pub async fn create_with(
        client: &Client,
        prefix: &str,
        extra_labels: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
        let name = format!(
            "{prefix}-{:x}",
            (nanos ^ std::process::id() as u128) & 0xff_ffff
        );
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    [("meshlet.dev/e2e", prefix)]
                        .iter()
                        .chain(extra_labels)
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        Ok(Self {
            name,
            client: client.clone(),
        })
    }

    /// Start deleting the namespace (and everything in it); does not wait.
    pub async fn delete(self) -> anyhow::Result<()> {
        Api::<Namespace>::all(self.client)
            .delete(&self.name, &DeleteParams::background())
            .await
            .with_context(|| format!("deleting namespace {}", self.name))?;
        Ok(())
    }
}
