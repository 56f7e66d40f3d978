//! The SMI CustomResourceDefinitions, generated from the Rust types: every
//! version of each kind in one CRD, rendered either in full (every version
//! served, conversion by the Meshlet webhook) or with the storage version
//! alone (for an API server without the webhook, e.g. in tests).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, ServiceReference, WebhookClientConfig,
    WebhookConversion,
};
use kube::core::crd::merge_crds;
use kube::CustomResourceExt;

use crate::contract::install;
use crate::{access, specs, split};

/// Which render of the CRDs to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrdRender {
    /// Every published version served; the newest is stored; conversion by
    /// the Meshlet webhook (`meshlet-system/meshlet-webhook:443/convert`).
    Full,
    /// Only the storage (newest) version, no conversion webhook: installable
    /// on a bare API server.
    StorageOnly,
}

/// Header written at the top of every generated YAML file.
pub const YAML_HEADER: &str =
    "# Generated from the Rust types in crds/src by `make crds`. Do not edit.\n";

/// Every SMI CRD in `render`, in a stable order.
pub fn all(render: CrdRender) -> Vec<CustomResourceDefinition> {
    [
        merged(
            "TrafficSplit spreads traffic for a root service over backend services in proportion to their weights.",
            vec![
                split::v1alpha1::TrafficSplit::crd(),
                split::v1alpha2::TrafficSplit::crd(),
                split::v1alpha3::TrafficSplit::crd(),
                split::v1alpha4::TrafficSplit::crd(),
            ],
            render,
        ),
        merged(
            "TrafficTarget allows source identities to reach a destination identity on the listed routes; access is additive and denied by default.",
            vec![
                access::v1alpha1::TrafficTarget::crd(),
                access::v1alpha2::TrafficTarget::crd(),
                access::v1alpha3::TrafficTarget::crd(),
            ],
            render,
        ),
        merged(
            "HTTPRouteGroup names HTTP routes (path regex, methods, headers) that TrafficTargets and TrafficSplits reference.",
            vec![
                specs::v1alpha1::HttpRouteGroup::crd(),
                specs::v1alpha2::HttpRouteGroup::crd(),
                specs::v1alpha3::HttpRouteGroup::crd(),
                specs::v1alpha4::HttpRouteGroup::crd(),
            ],
            render,
        ),
        merged(
            "TCPRoute describes L4 TCP traffic (by port) that TrafficTargets reference.",
            vec![
                specs::v1alpha1::TcpRoute::crd(),
                specs::v1alpha2::TcpRoute::crd(),
                specs::v1alpha3::TcpRoute::crd(),
                specs::v1alpha4::TcpRoute::crd(),
            ],
            render,
        ),
        merged(
            "UDPRoute describes L4 UDP traffic (by port) that TrafficTargets reference.",
            vec![specs::v1alpha4::UdpRoute::crd()],
            render,
        ),
    ]
    .into()
}

/// Merges one CRD per version (oldest first; the last is stored) into one.
fn merged(
    description: &str,
    per_version: Vec<CustomResourceDefinition>,
    render: CrdRender,
) -> CustomResourceDefinition {
    let storage = per_version
        .last()
        .expect("at least one version")
        .spec
        .versions[0]
        .name
        .clone();
    let per_version = match render {
        CrdRender::Full => per_version,
        CrdRender::StorageOnly => per_version.into_iter().last().into_iter().collect(),
    };
    let multi = per_version.len() > 1;
    let mut crd = merge_crds(per_version, &storage).expect("versions of one kind merge");
    // Newest first, as `kubectl explain` and the upstream CRDs list them.
    crd.spec.versions.sort_by(|a, b| b.name.cmp(&a.name));
    for version in &mut crd.spec.versions {
        version.served = true;
        version.storage = version.name == storage;
        // The derived root carries the Rust struct's name and doc; say what
        // the kind is instead.
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            schema.title = None;
            schema.description = Some(description.to_string());
        }
    }
    if render == CrdRender::Full && multi {
        crd.spec.conversion = Some(CustomResourceConversion {
            strategy: "Webhook".into(),
            webhook: Some(WebhookConversion {
                client_config: Some(WebhookClientConfig {
                    service: Some(ServiceReference {
                        namespace: install::NAMESPACE.into(),
                        name: install::WEBHOOK_SERVICE.into(),
                        path: Some(install::CONVERT_PATH.into()),
                        port: Some(install::WEBHOOK_SERVICE_PORT.into()),
                    }),
                    ..Default::default()
                }),
                conversion_review_versions: vec!["v1".into()],
            }),
        });
    }
    crd
}

/// The file name of a CRD under `crds/yaml/`: `<plural>.<group>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!(
        "{}.yaml",
        crd.metadata
            .name
            .as_deref()
            .expect("generated CRDs are named")
    )
}

/// A CRD as the YAML checked in under `crds/yaml/`.
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    format!(
        "{YAML_HEADER}{}",
        serde_yaml::to_string(crd).expect("CRDs serialize to YAML")
    )
}

/// Every CRD in `render` as one multi-document YAML stream.
pub fn all_yaml(render: CrdRender) -> String {
    all(render)
        .iter()
        .map(|crd| {
            format!(
                "---\n{}",
                serde_yaml::to_string(crd).expect("CRDs serialize to YAML")
            )
        })
        .collect()
}
