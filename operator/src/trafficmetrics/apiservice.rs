//! Registers the `v1alpha1.metrics.smi-spec.io` and
//! `v1alpha2.metrics.smi-spec.io` APIServices (server-side apply, field
//! manager `meshlet-operator`), pointing kube-apiserver at the operator's
//! Service with the serving CA as `caBundle`. Used with
//! `--register-apiservices`; an install may ship them as manifests instead.

use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::{
    APIService, APIServiceSpec, ServiceReference,
};
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, Patch, PatchParams};
use kube::{Api, Client};
use meshlet_crds::metrics::GROUP;

/// Field manager of everything the operator writes.
pub const FIELD_MANAGER: &str = "meshlet-operator";

/// The versions served, newest preferred (the contract's list).
pub use meshlet_crds::metrics::SERVED_VERSIONS as VERSIONS;

/// The Service kube-apiserver reaches the metrics API through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Port.
    pub port: i32,
}

impl ServiceRef {
    /// The DNS names kube-apiserver checks the serving certificate against.
    pub fn dns_names(&self) -> Vec<String> {
        vec![
            format!("{}.{}.svc", self.name, self.namespace),
            format!("{}.{}.svc.cluster.local", self.name, self.namespace),
        ]
    }
}

/// The APIService for `version`.
pub fn api_service(version: &str, priority: i32, service: &ServiceRef, ca_pem: &str) -> APIService {
    APIService {
        metadata: ObjectMeta {
            name: Some(format!("{version}.{GROUP}")),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_string(),
                    FIELD_MANAGER.to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        spec: Some(APIServiceSpec {
            group: Some(GROUP.into()),
            version: Some(version.into()),
            group_priority_minimum: 1000,
            version_priority: priority,
            ca_bundle: Some(ByteString(ca_pem.as_bytes().to_vec())),
            insecure_skip_tls_verify: None,
            service: Some(ServiceReference {
                namespace: Some(service.namespace.clone()),
                name: Some(service.name.clone()),
                port: Some(service.port),
            }),
        }),
        status: None,
    }
}

/// Creates or updates both APIServices.
pub async fn register(client: &Client, service: &ServiceRef, ca_pem: &str) -> kube::Result<()> {
    let api: Api<APIService> = Api::all(client.clone());
    for (version, priority) in VERSIONS {
        let mut svc = api_service(version, *priority, service, ca_pem);
        svc.metadata.managed_fields = None;
        let name = svc.metadata.name.clone().unwrap_or_default();
        let mut value = serde_json::to_value(&svc).expect("serializable");
        value["apiVersion"] = "apiregistration.k8s.io/v1".into();
        value["kind"] = "APIService".into();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(value),
        )
        .await?;
        tracing::info!(apiservice = %name, service = ?service, "APIService registered");
    }
    Ok(())
}
