//! Proxy injection as pure functions: given a Pod, its Namespace's labels
//! and annotations and the injector's settings, decide whether to inject
//! and build the JSONPatch that does it.
//!
//! # Where the injected containers go
//!
//! - **Native sidecar** (Kubernetes ≥ 1.29): `initContainers` becomes
//!   `[meshlet-init, meshlet-proxy, <the pod's own init containers>…]`.
//!   The redirect runs first, then the proxy starts (restartPolicy Always)
//!   and, thanks to its startup probe, listens before the pod's own init
//!   containers run, so *their* traffic is meshed too (a migration Job's
//!   init step can call a meshed database). The proxy also outlives the app
//!   containers on shutdown and does not keep Jobs from completing.
//! - **Regular container** (older clusters): the proxy is the *first*
//!   container, and `meshlet-init` is the *last* init container: there is no
//!   proxy yet while init containers run, so redirecting their traffic would
//!   break them; placed last, the pod's own init containers run with plain
//!   networking and only the app containers are meshed.
//!
//! # Minimal patch
//!
//! Only `add` operations, each at the narrowest path: one annotation key at
//! a time when the pod already has annotations, the whole map when it has
//! none; `…/0` and `…/1` inserts into an existing `initContainers` list;
//! `/-` appends to an existing `volumes` list. The app's containers, probes
//! and ports are never touched.

pub mod overrides;
pub mod sidecar;

use std::collections::BTreeMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::Pod;
use meshlet_crds::contract::annotations::{self as keys, AnnotationError, InjectMode};
use meshlet_crds::contract::{install, ports};
use serde_json::Value;

use overrides::Overrides;

/// Resources of the proxy container (Kubernetes quantities); `None` leaves
/// the field out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyResources {
    /// CPU request.
    pub cpu_request: Option<String>,
    /// Memory request.
    pub memory_request: Option<String>,
    /// CPU limit (none by default: throttling a proxy adds latency to every request).
    pub cpu_limit: Option<String>,
    /// Memory limit.
    pub memory_limit: Option<String>,
}

impl Default for ProxyResources {
    fn default() -> Self {
        ProxyResources {
            cpu_request: Some("10m".into()),
            memory_request: Some("16Mi".into()),
            cpu_limit: None,
            memory_limit: Some("64Mi".into()),
        }
    }
}

/// How the injector injects, fixed at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectorSettings {
    /// Default proxy image.
    pub proxy_image: String,
    /// Image of the redirect init step (`meshlet-proxy init`, which needs
    /// `iptables`); the proxy image when `None`.
    pub init_image: Option<String>,
    /// Proxy version recorded on the pod ([`keys::PROXY_VERSION`]).
    pub proxy_version: String,
    /// `imagePullPolicy` of the injected containers; the cluster default when `None`.
    pub image_pull_policy: Option<String>,
    /// Meshlet's own namespace, never injected.
    pub mesh_namespace: String,
    /// Inject the proxy as a native sidecar (restartable init container).
    pub native_sidecar: bool,
    /// Where the proxy finds the operator's config stream (`host:port`).
    pub operator_addr: String,
    /// Default proxy log level.
    pub log_level: String,
    /// Default proxy resources.
    pub resources: ProxyResources,
    /// Trust domain of workload identities.
    pub trust_domain: String,
    /// PEM bundle of trust anchors given to the proxy (none when empty);
    /// filled per admission from the cluster's anchors ConfigMap.
    pub trust_anchors_pem: String,
}

impl Default for InjectorSettings {
    fn default() -> Self {
        InjectorSettings {
            proxy_image: format!("meshlet/proxy:{}", env!("CARGO_PKG_VERSION")),
            init_image: None,
            proxy_version: env!("CARGO_PKG_VERSION").into(),
            image_pull_policy: None,
            mesh_namespace: install::NAMESPACE.into(),
            native_sidecar: true,
            operator_addr: format!(
                "{}:{}",
                install::service_dns_name(install::OPERATOR_SERVICE),
                ports::OPERATOR_CONFIG_PORT
            ),
            log_level: "info".into(),
            resources: ProxyResources::default(),
            trust_domain: meshlet_crds::contract::identity::DEFAULT_TRUST_DOMAIN.into(),
            trust_anchors_pem: String::new(),
        }
    }
}

/// Whether an API server of this version runs native sidecars (init
/// containers with `restartPolicy: Always`): on by default from 1.29.
/// `major`/`minor` as in `/version` (`"1"`, `"29+"`).
pub fn native_sidecars_supported(major: &str, minor: &str) -> bool {
    let number = |s: &str| s.trim_end_matches('+').parse::<u32>().unwrap_or(0);
    (number(major), number(minor)) >= (1, 29)
}

/// The namespace a pod is created in, as far as injection cares.
#[derive(Debug, Clone, Default)]
pub struct NamespaceInfo {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

/// Why a pod is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// It shares the node's network: redirecting would capture the node's traffic.
    HostNetwork,
    /// It already carries the proxy (re-invocation, or injected by `meshlet inject`).
    AlreadyInjected,
    /// It runs in Meshlet's own namespace.
    MeshNamespace,
    /// Its `meshlet.dev/inject` annotation says `disabled`.
    OptedOut,
    /// Neither the pod nor its namespace asks for injection.
    NotEnabled,
}

impl SkipReason {
    /// Short, log-friendly name.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::HostNetwork => "host-network",
            SkipReason::AlreadyInjected => "already-injected",
            SkipReason::MeshNamespace => "mesh-namespace",
            SkipReason::OptedOut => "opted-out",
            SkipReason::NotEnabled => "not-enabled",
        }
    }
}

/// The injector's answer for one pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Leave the pod as it is.
    Skip(SkipReason),
    /// Apply this patch.
    Inject(Patch),
}

/// A pod the injector refuses: an annotation it cannot read. The message
/// names the annotation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("meshlet injection: {0}")]
pub struct InjectError(#[from] pub AnnotationError);

/// Decides whether `pod` is injected and, if so, how.
pub fn decide(
    pod: &Pod,
    namespace: &NamespaceInfo,
    settings: &InjectorSettings,
) -> Result<Decision, InjectError> {
    let empty = BTreeMap::new();
    let annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    let spec = pod.spec.clone().unwrap_or_default();

    if spec.host_network == Some(true) {
        return Ok(Decision::Skip(SkipReason::HostNetwork));
    }
    if is_injected(pod) {
        return Ok(Decision::Skip(SkipReason::AlreadyInjected));
    }
    if namespace.name == settings.mesh_namespace {
        return Ok(Decision::Skip(SkipReason::MeshNamespace));
    }
    let pod_mode = annotations
        .get(keys::INJECT)
        .map(|v| v.parse::<InjectMode>())
        .transpose()?;
    let namespace_mode = namespace
        .labels
        .get(keys::INJECT)
        .or_else(|| namespace.annotations.get(keys::INJECT))
        .and_then(|v| v.parse::<InjectMode>().ok());
    match pod_mode.or(namespace_mode) {
        Some(InjectMode::Enabled) => {}
        Some(InjectMode::Disabled) => {
            let reason = if pod_mode == Some(InjectMode::Disabled) {
                SkipReason::OptedOut
            } else {
                SkipReason::NotEnabled
            };
            return Ok(Decision::Skip(reason));
        }
        None => return Ok(Decision::Skip(SkipReason::NotEnabled)),
    }
    let overrides = Overrides::from_annotations(annotations)?;
    Ok(Decision::Inject(patch(pod, settings, &overrides)))
}

/// Whether the pod already carries the proxy: the injected annotation, or a
/// container of the proxy's name (e.g. added by `meshlet inject`).
pub fn is_injected(pod: &Pod) -> bool {
    let annotated = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(keys::INJECTED));
    let spec = pod.spec.as_ref();
    let named = |list: Option<&Vec<k8s_openapi::api::core::v1::Container>>| {
        list.is_some_and(|cs| cs.iter().any(|c| c.name == sidecar::PROXY_CONTAINER))
    };
    annotated
        || named(spec.map(|s| &s.containers))
        || named(spec.and_then(|s| s.init_containers.as_ref()))
}

fn add(path: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(path.iter().copied()),
        value,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("Kubernetes types serialize")
}

/// Adds `entries` to the string map at `path` (annotations, labels): the
/// whole map when the pod has none, else one key at a time (keys it already
/// has are overwritten, which `add` allows).
fn add_map_entries(
    ops: &mut Vec<PatchOperation>,
    path: &str,
    existing: Option<&BTreeMap<String, String>>,
    entries: BTreeMap<String, String>,
) {
    match existing {
        None => ops.push(add(&["metadata", path], to_json(&entries))),
        Some(_) => {
            for (key, value) in entries {
                ops.push(add(&["metadata", path, &key], Value::String(value)));
            }
        }
    }
}

/// The JSONPatch that injects the proxy into `pod` (see the module docs for
/// the placement).
/// The Deployment that owns a pod, read the way Linkerd does: a ReplicaSet
/// owner named `<deployment>-<pod-template-hash>`. At admission the pod has
/// no name yet, so the ReplicaSet name comes from the owner reference.
pub fn owning_deployment(pod: &Pod) -> Option<String> {
    let hash = pod.metadata.labels.as_ref()?.get("pod-template-hash")?;
    let owner = pod
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.kind == "ReplicaSet")?;
    owner
        .name
        .strip_suffix(hash.as_str())?
        .strip_suffix('-')
        .filter(|d| !d.is_empty())
        .map(str::to_string)
}

pub fn patch(pod: &Pod, settings: &InjectorSettings, overrides: &Overrides) -> Patch {
    let spec = pod.spec.clone().unwrap_or_default();
    let native = settings.native_sidecar;
    let mut ops = Vec::new();

    let mut annotations = BTreeMap::from([
        (keys::INJECTED.to_string(), keys::INJECTED_TRUE.to_string()),
        (
            keys::PROXY_VERSION.to_string(),
            settings.proxy_version.clone(),
        ),
    ]);
    // With the proxy first among the containers, `kubectl logs/exec` would
    // pick it by default; point them back at the app.
    const DEFAULT_CONTAINER: &str = "kubectl.kubernetes.io/default-container";
    let existing = pod.metadata.annotations.as_ref();
    if !native && !existing.is_some_and(|a| a.contains_key(DEFAULT_CONTAINER)) {
        if let Some(first) = spec.containers.first() {
            annotations.insert(DEFAULT_CONTAINER.into(), first.name.clone());
        }
    }
    add_map_entries(&mut ops, "annotations", existing, annotations);
    add_map_entries(
        &mut ops,
        "labels",
        pod.metadata.labels.as_ref(),
        BTreeMap::from([(
            keys::MESHED_LABEL.to_string(),
            keys::MESHED_TRUE.to_string(),
        )]),
    );

    // The projected token needs a ServiceAccount. The API server's
    // ServiceAccount admission plugin sets `default` before webhooks run;
    // where it is off, say so explicitly (same meaning, and valid).
    if spec
        .service_account_name
        .as_deref()
        .unwrap_or("")
        .is_empty()
    {
        let account = spec
            .service_account
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        ops.push(add(&["spec", "serviceAccountName"], Value::String(account)));
    }

    let volume = to_json(&sidecar::identity_volume());
    match &spec.volumes {
        None => ops.push(add(&["spec", "volumes"], Value::Array(vec![volume]))),
        Some(_) => ops.push(add(&["spec", "volumes", "-"], volume)),
    }

    let init = to_json(&sidecar::init_container(settings, overrides));
    let deployment = owning_deployment(pod);
    let proxy = to_json(&sidecar::proxy_container(
        settings,
        overrides,
        native,
        deployment.as_deref(),
    ));
    match (&spec.init_containers, native) {
        (None, true) => ops.push(add(
            &["spec", "initContainers"],
            Value::Array(vec![init, proxy]),
        )),
        (Some(_), true) => {
            ops.push(add(&["spec", "initContainers", "0"], init));
            ops.push(add(&["spec", "initContainers", "1"], proxy));
        }
        (None, false) => {
            ops.push(add(&["spec", "initContainers"], Value::Array(vec![init])));
            ops.push(add(&["spec", "containers", "0"], proxy));
        }
        (Some(_), false) => {
            ops.push(add(&["spec", "initContainers", "-"], init));
            ops.push(add(&["spec", "containers", "0"], proxy));
        }
    }
    Patch(ops)
}

#[cfg(test)]
mod tests {
    #[test]
    fn native_sidecars_from_1_29() {
        use super::native_sidecars_supported as ok;
        assert!(ok("1", "29"));
        assert!(ok("1", "34"));
        assert!(ok("1", "30+"));
        assert!(ok("2", "0"));
        assert!(!ok("1", "28"));
        assert!(!ok("1", "28+"));
        assert!(!ok("", ""));
    }

    #[test]
    fn deployment_from_the_replicaset_owner() {
        use k8s_openapi::api::core::v1::Pod;
        let pod = |hash: &str, owner_kind: &str, owner: &str| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {
                    "labels": {"pod-template-hash": hash},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind,
                        "name": owner, "uid": "u"}]
                }
            }))
            .unwrap()
        };
        let deployment = super::owning_deployment;
        assert_eq!(
            deployment(&pod("5d8f", "ReplicaSet", "web-v1-5d8f")).as_deref(),
            Some("web-v1")
        );
        // A bare ReplicaSet (no Deployment naming), a StatefulSet, no owner.
        assert_eq!(deployment(&pod("5d8f", "ReplicaSet", "frontend")), None);
        assert_eq!(deployment(&pod("5d8f", "StatefulSet", "db-5d8f")), None);
        assert_eq!(deployment(&Pod::default()), None);
    }
}
