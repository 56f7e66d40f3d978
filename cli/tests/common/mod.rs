//! Shared test helpers: the SMI CRDs on the test API server.

#![allow(dead_code)]

use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::Api;
use meshlet_crds::manifests::{self, CrdRender};

/// Server-side applies every SMI CRD in `render` and waits until each is Established.
pub async fn apply_crds(client: &kube::Client, render: CrdRender) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in manifests::all(render) {
        let name = crd.metadata.name.clone().context("CRD without a name")?;
        api.patch(
            &name,
            &PatchParams::apply("meshlet-cli-test").force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("applying CRD {name}"))?;
    }
    for crd in manifests::all(render) {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let found = api.get(&name).await?;
            let established = found.status.and_then(|s| s.conditions).is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "CRD {name} not Established in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Waits until every SMI CRD is Established.
pub async fn wait_established(client: &kube::Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in manifests::all(CrdRender::Full) {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let found = api.get(&name).await?;
            let established = found.status.and_then(|s| s.conditions).is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if established {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "CRD {name} not Established in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}
