//! From a TrafficSplit backend (a Service) to the Deployments behind it:
//! those whose pod template carries every label of the Service's selector.
//! TrafficMetrics are per workload, not per Service, so a backend's metrics
//! are those of its Deployments.

use std::collections::BTreeMap;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;
use kube::Api;

/// Whether `labels` carry every key/value of a non-empty `selector`.
pub fn selects(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Names of the Deployments in `namespace` that `service` sends traffic to.
pub async fn deployments_of(
    client: &kube::Client,
    namespace: &str,
    service: &str,
) -> anyhow::Result<Vec<String>> {
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let svc = services
        .get_opt(service)
        .await
        .with_context(|| format!("reading Service {namespace}/{service}"))?
        .with_context(|| format!("backend Service {namespace}/{service} does not exist"))?;
    let selector = svc.spec.and_then(|s| s.selector).unwrap_or_default();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let list = deployments
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing Deployments in {namespace}"))?;
    Ok(list
        .items
        .into_iter()
        .filter(|d| {
            let labels = d
                .spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.labels.clone())
                .unwrap_or_default();
            selects(&selector, &labels)
        })
        .filter_map(|d| d.metadata.name)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_matching() {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        let selector = map(&[("app", "web"), ("track", "canary")]);
        assert!(selects(
            &selector,
            &map(&[("app", "web"), ("track", "canary"), ("x", "y")])
        ));
        assert!(!selects(&selector, &map(&[("app", "web")])));
        assert!(
            !selects(&map(&[]), &map(&[("app", "web")])),
            "an empty selector selects nothing"
        );
    }
}
