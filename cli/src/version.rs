//! `meshlet version`: the CLI's version, and the cluster's control plane and
//! Kubernetes versions when it can reach them.

use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use meshlet_crds::contract::install;

use crate::cli::VersionArgs;
use crate::kubeargs::KubeArgs;

/// The version of a Deployment's first container image (its tag), if any.
pub fn image_tag(deployment: &Deployment) -> Option<String> {
    let image = deployment
        .spec
        .as_ref()?
        .template
        .spec
        .as_ref()?
        .containers
        .first()?
        .image
        .clone()?;
    let tail = image.rsplit('/').next().unwrap_or(&image);
    tail.split_once(':').map(|(_, tag)| tag.to_string())
}

/// Runs `meshlet version`.
pub async fn run(kube: &KubeArgs, args: &VersionArgs) -> anyhow::Result<()> {
    println!("Client version: {}", crate::VERSION);
    if args.client {
        return Ok(());
    }
    let (client, _) = match kube.client().await {
        Ok(c) => c,
        Err(e) => {
            println!("Server: unavailable ({e:#})");
            return Ok(());
        }
    };
    match client.apiserver_version().await {
        Ok(info) => println!("Kubernetes version: {}", info.git_version),
        Err(e) => {
            println!("Server: unreachable ({e})");
            return Ok(());
        }
    }
    let deployments: Api<Deployment> = Api::namespaced(client, install::NAMESPACE);
    match deployments.get_opt(install::OPERATOR_SERVICE).await {
        Ok(Some(d)) => println!(
            "Control plane version: {}",
            image_tag(&d).unwrap_or_else(|| "unknown".into())
        ),
        Ok(None) => println!("Control plane: not installed"),
        Err(e) => println!("Control plane: cannot read ({e})"),
    }
    Ok(())
}
