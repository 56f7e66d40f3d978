//! The containers and volume the injector adds: the traffic-redirect init
//! step, the proxy, and the projected ServiceAccount token the proxy proves
//! its identity with.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction,
    ObjectFieldSelector, Probe, ProjectedVolumeSource, ResourceRequirements, SeccompProfile,
    SecurityContext, ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use meshlet_crds::contract::{identity, ports};

use super::overrides::Overrides;
use super::InjectorSettings;

/// Name of the injected proxy container.
pub const PROXY_CONTAINER: &str = "meshlet-proxy";
/// Name of the injected traffic-redirect init container.
pub const INIT_CONTAINER: &str = "meshlet-init";
/// Name of the projected token volume.
pub const IDENTITY_VOLUME: &str = "meshlet-identity";

// The proxy's environment: one definition in the contract.
use meshlet_crds::contract::proxy_env::{
    IDENTITY_TOKEN_FILE as ENV_IDENTITY_TOKEN_FILE, INBOUND_SKIP_PORTS as ENV_INBOUND_SKIP_PORTS,
    LOG as ENV_LOG, OPERATOR_ADDR as ENV_OPERATOR_ADDR,
    OUTBOUND_SKIP_PORTS as ENV_OUTBOUND_SKIP_PORTS, POD_DEPLOYMENT as ENV_POD_DEPLOYMENT,
    POD_IP as ENV_POD_IP, POD_NAME as ENV_POD_NAME, POD_NAMESPACE as ENV_POD_NAMESPACE,
    PROXY_UID as ENV_PROXY_UID, SERVICE_ACCOUNT as ENV_SERVICE_ACCOUNT,
    TRUST_ANCHORS as ENV_TRUST_ANCHORS, TRUST_DOMAIN as ENV_TRUST_DOMAIN,
};

/// Name of the proxy's admin port on the container.
const ADMIN_PORT_NAME: &str = "meshlet-admin";
/// Name of the proxy's inbound port on the container.
const INBOUND_PORT_NAME: &str = "meshlet-inbound";

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn env_field(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn capabilities(add: &[&str]) -> Capabilities {
    Capabilities {
        add: (!add.is_empty()).then(|| add.iter().map(|c| c.to_string()).collect()),
        drop: Some(vec!["ALL".into()]),
    }
}

fn admin_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(ADMIN_PORT_NAME.into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

fn resources(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> ResourceRequirements {
    let map = |pairs: &[(&str, &str)]| {
        (!pairs.is_empty()).then(|| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect::<BTreeMap<_, _>>()
        })
    };
    ResourceRequirements {
        requests: map(requests),
        limits: map(limits),
        ..Default::default()
    }
}

fn port_list(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The redirect step: `meshlet-proxy init`, as root with NET_ADMIN and
/// NET_RAW only (iptables needs both), nothing else.
pub fn init_container(settings: &InjectorSettings, overrides: &Overrides) -> Container {
    let mut env_vars = vec![env(ENV_PROXY_UID, ports::PROXY_UID.to_string())];
    if !overrides.skip_inbound_ports.is_empty() {
        env_vars.push(env(
            ENV_INBOUND_SKIP_PORTS,
            port_list(&overrides.skip_inbound_ports),
        ));
    }
    if !overrides.skip_outbound_ports.is_empty() {
        env_vars.push(env(
            ENV_OUTBOUND_SKIP_PORTS,
            port_list(&overrides.skip_outbound_ports),
        ));
    }
    Container {
        name: INIT_CONTAINER.into(),
        image: Some(
            settings
                .init_image
                .clone()
                .unwrap_or_else(|| proxy_image(settings, overrides)),
        ),
        image_pull_policy: settings.image_pull_policy.clone(),
        args: Some(vec!["init".into()]),
        env: Some(env_vars),
        resources: Some(resources(
            &[("cpu", "10m"), ("memory", "10Mi")],
            &[("memory", "32Mi")],
        )),
        security_context: Some(SecurityContext {
            run_as_user: Some(0),
            run_as_non_root: Some(false),
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(capabilities(&["NET_ADMIN", "NET_RAW"])),
            seccomp_profile: Some(runtime_default()),
            ..Default::default()
        }),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..Default::default()
    }
}

fn proxy_image(settings: &InjectorSettings, overrides: &Overrides) -> String {
    overrides
        .proxy_image
        .clone()
        .unwrap_or_else(|| settings.proxy_image.clone())
}

/// The proxy. As a native sidecar (`native = true`) it is an init container
/// with `restartPolicy: Always` and a startup probe, so the kubelet starts
/// the init containers after it only once it listens.
pub fn proxy_container(
    settings: &InjectorSettings,
    overrides: &Overrides,
    native: bool,
    deployment: Option<&str>,
) -> Container {
    let r = &settings.resources;
    let pick = |o: &Option<String>, d: &Option<String>| o.clone().or_else(|| d.clone());
    let quantities = |pairs: [(&str, Option<String>); 2]| {
        let map: BTreeMap<String, Quantity> = pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), Quantity(v))))
            .collect();
        (!map.is_empty()).then_some(map)
    };
    let proxy_resources = ResourceRequirements {
        requests: quantities([
            ("cpu", pick(&overrides.cpu_request, &r.cpu_request)),
            ("memory", pick(&overrides.memory_request, &r.memory_request)),
        ]),
        limits: quantities([
            ("cpu", pick(&overrides.cpu_limit, &r.cpu_limit)),
            ("memory", pick(&overrides.memory_limit, &r.memory_limit)),
        ]),
        ..Default::default()
    };

    let token_dir = std::path::Path::new(identity::TOKEN_PATH)
        .parent()
        .and_then(|p| p.to_str())
        .expect("TOKEN_PATH has a parent directory")
        .to_string();
    Container {
        name: PROXY_CONTAINER.into(),
        image: Some(proxy_image(settings, overrides)),
        image_pull_policy: settings.image_pull_policy.clone(),
        args: Some(vec!["run".into()]),
        env: Some(
            vec![
                env_field(ENV_POD_NAME, "metadata.name"),
                env_field(ENV_POD_NAMESPACE, "metadata.namespace"),
                env_field(ENV_POD_IP, "status.podIP"),
                env_field(ENV_SERVICE_ACCOUNT, "spec.serviceAccountName"),
                env(ENV_OPERATOR_ADDR, settings.operator_addr.clone()),
                env(ENV_LOG, overrides.log_level.unwrap_or(&settings.log_level)),
                env(ENV_IDENTITY_TOKEN_FILE, identity::TOKEN_PATH),
                env(ENV_TRUST_DOMAIN, settings.trust_domain.clone()),
            ]
            .into_iter()
            .chain(deployment.map(|d| env(ENV_POD_DEPLOYMENT, d)))
            .chain(
                (!settings.trust_anchors_pem.is_empty())
                    .then(|| env(ENV_TRUST_ANCHORS, settings.trust_anchors_pem.clone())),
            )
            .collect(),
        ),
        ports: Some(vec![
            ContainerPort {
                name: Some(ADMIN_PORT_NAME.into()),
                container_port: ports::PROXY_ADMIN_PORT.into(),
                protocol: Some("TCP".into()),
                ..Default::default()
            },
            ContainerPort {
                name: Some(INBOUND_PORT_NAME.into()),
                container_port: ports::PROXY_INBOUND_PORT.into(),
                protocol: Some("TCP".into()),
                ..Default::default()
            },
        ]),
        resources: Some(proxy_resources),
        security_context: Some(SecurityContext {
            run_as_user: Some(ports::PROXY_UID.into()),
            run_as_group: Some(ports::PROXY_UID.into()),
            run_as_non_root: Some(true),
            privileged: Some(false),
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            capabilities: Some(capabilities(&[])),
            seccomp_profile: Some(runtime_default()),
            ..Default::default()
        }),
        readiness_probe: Some(admin_probe(ports::PROXY_READY_PATH, 5, 3)),
        liveness_probe: Some(admin_probe(ports::PROXY_LIVE_PATH, 10, 3)),
        startup_probe: native.then(|| admin_probe(ports::PROXY_LIVE_PATH, 1, 120)),
        volume_mounts: Some(vec![VolumeMount {
            name: IDENTITY_VOLUME.into(),
            mount_path: token_dir,
            read_only: Some(true),
            ..Default::default()
        }]),
        restart_policy: native.then(|| "Always".into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    }
}

/// The projected ServiceAccount token for the Meshlet audience, mounted by
/// the proxy at [`identity::TOKEN_PATH`].
pub fn identity_volume() -> Volume {
    let file = std::path::Path::new(identity::TOKEN_PATH)
        .file_name()
        .and_then(|f| f.to_str())
        .expect("TOKEN_PATH names a file")
        .to_string();
    Volume {
        name: IDENTITY_VOLUME.into(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some(identity::TOKEN_AUDIENCE.into()),
                    expiration_seconds: Some(identity::TOKEN_EXPIRATION_SECONDS),
                    path: file,
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}
