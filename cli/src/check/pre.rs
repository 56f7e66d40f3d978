//! Pre-install checks: the API server answers, runs Kubernetes ≥ 1.29
//! (native sidecars), and this user may create what the install creates.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::Api;
use meshlet_webhook::inject::native_sidecars_supported;

use super::Check;

/// Cluster-scoped kinds the install creates: (API group, resource).
pub const INSTALL_RESOURCES: &[(&str, &str)] = &[
    ("", "namespaces"),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
    ),
    ("apiregistration.k8s.io", "apiservices"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
];

/// Runs the pre-install checks.
pub async fn checks(client: &kube::Client) -> Vec<Check> {
    let mut checks = Vec::new();
    let version = match client.apiserver_version().await {
        Ok(v) => v,
        Err(e) => {
            checks.push(Check::fail(
                "the Kubernetes API server is reachable",
                e.to_string(),
                "check --kubeconfig/--context and that the cluster is up (kubectl cluster-info)",
            ));
            return checks;
        }
    };
    checks.push(Check::pass(
        "the Kubernetes API server is reachable",
        Some(version.git_version.clone()),
    ));
    checks.push(version_check(
        &version.major,
        &version.minor,
        &version.git_version,
    ));
    for (group, resource) in INSTALL_RESOURCES {
        checks.push(can_create(client, group, resource).await);
    }
    checks
}

/// Kubernetes ≥ 1.29, where injected proxies run as native sidecars.
pub fn version_check(major: &str, minor: &str, git_version: &str) -> Check {
    let name = "Kubernetes is 1.29 or newer (native sidecars)";
    if native_sidecars_supported(major, minor) {
        Check::pass(name, Some(git_version.to_string()))
    } else {
        Check::fail(
            name,
            format!("the API server runs {git_version}"),
            "upgrade the cluster, or install with proxy native sidecars off (--native-sidecar false)",
        )
    }
}

async fn can_create(client: &kube::Client, group: &str, resource: &str) -> Check {
    let name = format!(
        "can create {resource}{}",
        if group.is_empty() {
            String::new()
        } else {
            format!(".{group}")
        }
    );
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.to_string()),
                resource: Some(resource.to_string()),
                verb: Some("create".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    match api.create(&PostParams::default(), &review).await {
        Ok(answer) if answer.status.as_ref().is_some_and(|s| s.allowed) => Check::pass(name, None),
        Ok(answer) => Check::fail(
            name,
            answer
                .status
                .and_then(|s| s.reason)
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "not allowed".into()),
            "install as a cluster administrator (cluster-admin)",
        ),
        Err(e) => Check::fail(name, e.to_string(), "check the API server's authorization"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(version_check("1", "29", "v1.29.0").ok);
        assert!(version_check("1", "34+", "v1.34.4").ok);
        let old = version_check("1", "28", "v1.28.9");
        assert!(!old.ok);
        assert_eq!(old.detail.as_deref(), Some("the API server runs v1.28.9"));
    }
}
