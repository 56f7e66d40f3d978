//! The resource kinds the metrics API serves and which resource of each
//! kind a pod belongs to (its namespace, its controller: Deployment via the
//! ReplicaSet's pod-template-hash, StatefulSet, DaemonSet), read from the
//! pod cache alone, so no Deployment watch is needed.

use k8s_openapi::api::core::v1::{ObjectReference, Pod};

/// A kind served under `metrics.smi-spec.io`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `namespaces` (cluster-scoped).
    Namespace,
    /// `pods`.
    Pod,
    /// `deployments`.
    Deployment,
    /// `daemonsets`.
    DaemonSet,
    /// `statefulsets`.
    StatefulSet,
    /// `trafficsplits`: metrics of the traffic sent to the split's backends.
    TrafficSplit,
}

impl Kind {
    /// Every kind, in the order discovery lists them.
    pub const ALL: [Kind; 6] = [
        Kind::Namespace,
        Kind::Pod,
        Kind::Deployment,
        Kind::DaemonSet,
        Kind::StatefulSet,
        Kind::TrafficSplit,
    ];

    /// The resource name in URLs.
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Namespace => "namespaces",
            Kind::Pod => "pods",
            Kind::Deployment => "deployments",
            Kind::DaemonSet => "daemonsets",
            Kind::StatefulSet => "statefulsets",
            Kind::TrafficSplit => "trafficsplits",
        }
    }

    /// The kind of the measured object.
    pub fn kind(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Pod => "Pod",
            Kind::Deployment => "Deployment",
            Kind::DaemonSet => "DaemonSet",
            Kind::StatefulSet => "StatefulSet",
            Kind::TrafficSplit => "TrafficSplit",
        }
    }

    /// The apiVersion of the measured object.
    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Namespace | Kind::Pod => "v1",
            Kind::Deployment | Kind::DaemonSet | Kind::StatefulSet => "apps/v1",
            Kind::TrafficSplit => "split.smi-spec.io/v1alpha4",
        }
    }

    /// The kind named `plural` in a URL.
    pub fn from_plural(plural: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == plural)
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        self != Kind::Namespace
    }

    /// A reference to the object `name` (in `namespace`) of this kind.
    pub fn reference(self, namespace: &str, name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some(self.api_version().into()),
            kind: Some(self.kind().into()),
            namespace: self.namespaced().then(|| namespace.to_string()),
            name: Some(name.to_string()),
            ..Default::default()
        }
    }

    /// The name of the object of this kind `pod` belongs to, if any
    /// (TrafficSplits contain no pods).
    pub fn owner_of(self, pod: &Pod) -> Option<String> {
        let meta = &pod.metadata;
        match self {
            Kind::Namespace => meta.namespace.clone(),
            Kind::Pod => meta.name.clone(),
            Kind::TrafficSplit => None,
            Kind::Deployment | Kind::DaemonSet | Kind::StatefulSet => {
                let owner = meta
                    .owner_references
                    .iter()
                    .flatten()
                    .find(|o| o.controller == Some(true))?;
                match (self, owner.kind.as_str()) {
                    (Kind::Deployment, "ReplicaSet") => {
                        let hash = meta.labels.as_ref()?.get("pod-template-hash")?;
                        owner
                            .name
                            .strip_suffix(&format!("-{hash}"))
                            .map(str::to_string)
                    }
                    (Kind::DaemonSet, "DaemonSet") | (Kind::StatefulSet, "StatefulSet") => {
                        Some(owner.name.clone())
                    }
                    _ => None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn pod(owner_kind: &str, owner: &str, hash: Option<&str>) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some("p".into());
        p.metadata.namespace = Some("ns".into());
        p.metadata.labels = hash.map(|h| [("pod-template-hash".to_string(), h.to_string())].into());
        p.metadata.owner_references = Some(vec![OwnerReference {
            kind: owner_kind.into(),
            name: owner.into(),
            controller: Some(true),
            ..Default::default()
        }]);
        p
    }

    #[test]
    fn owners_by_kind() {
        let p = pod("ReplicaSet", "web-v1-7d4b9c", Some("7d4b9c"));
        assert_eq!(Kind::Deployment.owner_of(&p).as_deref(), Some("web-v1"));
        assert_eq!(Kind::StatefulSet.owner_of(&p), None);
        assert_eq!(Kind::Pod.owner_of(&p).as_deref(), Some("p"));
        assert_eq!(Kind::Namespace.owner_of(&p).as_deref(), Some("ns"));
        // A bare ReplicaSet (no hash label) is no Deployment.
        assert_eq!(
            Kind::Deployment.owner_of(&pod("ReplicaSet", "rs", None)),
            None
        );
        let s = pod("StatefulSet", "db", None);
        assert_eq!(Kind::StatefulSet.owner_of(&s).as_deref(), Some("db"));
        assert_eq!(Kind::from_plural("daemonsets"), Some(Kind::DaemonSet));
        assert_eq!(Kind::from_plural("services"), None);
    }
}
