//! The TrafficMetrics APIServices: one check line per API version the
//! operator registers, because each is a separate APIService that can be
//! missing or unavailable on its own — `meshlet stat deploy|pod|ns` reads
//! v1alpha1, `meshlet stat ts` and `meshlet canary` read v1alpha2.

use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::Api;
use meshlet_crds::contract::install;
use meshlet_crds::metrics::{self, v1alpha1, v1alpha2};

use super::Check;
use crate::metrics_api::apiservice_problem;

/// A TrafficMetrics API version and the commands that read it, for hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsVersion {
    /// Its apiVersion (`metrics.smi-spec.io/v1alpha1`), from the contract.
    pub api_version: &'static str,
    /// The `meshlet` commands that need it.
    pub read_by: &'static str,
}

/// Every TrafficMetrics version the operator registers an APIService for
/// (the contract's `metrics::SERVED_VERSIONS`, which a test holds this
/// list to), oldest first.
pub const METRICS_VERSIONS: &[MetricsVersion] = &[
    MetricsVersion {
        api_version: v1alpha1::API_VERSION,
        read_by: "meshlet stat deploy/pod/ns",
    },
    MetricsVersion {
        api_version: v1alpha2::API_VERSION,
        read_by: "meshlet stat ts and meshlet canary",
    },
];

impl MetricsVersion {
    /// The APIService name, `<version>.<group>`, as the operator names it.
    pub fn apiservice(&self) -> String {
        let (group, version) = self
            .api_version
            .split_once('/')
            .unwrap_or((metrics::GROUP, self.api_version));
        format!("{version}.{group}")
    }
}

/// One check per TrafficMetrics APIService, in [`METRICS_VERSIONS`] order.
pub async fn checks(client: &kube::Client) -> Vec<Check> {
    let mut checks = Vec::new();
    for version in METRICS_VERSIONS {
        checks.push(check(client, version).await);
    }
    checks
}

async fn check(client: &kube::Client, version: &MetricsVersion) -> Check {
    let name = version.apiservice();
    let title = format!("APIService {name} (TrafficMetrics) is Available");
    let api: Api<APIService> = Api::all(client.clone());
    match api.get_opt(&name).await {
        Ok(Some(service)) => match apiservice_problem(&service) {
            None => Check::pass(title, None),
            Some(problem) => Check::fail(
                title,
                problem,
                format!(
                    "the operator serves it (needed by {}): kubectl -n {} logs deploy/{}",
                    version.read_by,
                    install::NAMESPACE,
                    install::OPERATOR_SERVICE
                ),
            ),
        },
        Ok(None) => Check::fail(
            title,
            "not registered",
            format!(
                "install with the TrafficMetrics API enabled (chart value metricsApi.enabled=true); needed by {}",
                version.read_by
            ),
        ),
        Err(e) => Check::fail(
            title,
            e.to_string(),
            "check your permissions to read APIServices",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics_api::{apiservice_of, resource_path, split_edges_path};

    /// Exactly the versions the operator registers (the contract) are checked.
    #[test]
    fn checks_every_served_version() {
        let checked: Vec<String> = METRICS_VERSIONS.iter().map(|v| v.apiservice()).collect();
        let served: Vec<String> = metrics::SERVED_VERSIONS
            .iter()
            .map(|(v, _)| format!("{v}.{}", metrics::GROUP))
            .collect();
        assert_eq!(checked, served);
    }

    /// The checked APIServices are the ones the CLI's readers ask about.
    #[test]
    fn names_cover_what_stat_and_canary_read() {
        let names: Vec<String> = METRICS_VERSIONS.iter().map(|v| v.apiservice()).collect();
        assert_eq!(
            names,
            [
                "v1alpha1.metrics.smi-spec.io",
                "v1alpha2.metrics.smi-spec.io"
            ]
        );
        for path in [
            resource_path("deployments", "shop", None),
            split_edges_path("shop", "web"),
        ] {
            let read = apiservice_of(&path);
            assert!(names.iter().any(|n| n == read), "{path} reads {read}");
        }
    }
}
