//! The webhooks against a real kube-apiserver (meshlet-testenv): the
//! webhook runs in-process on https://127.0.0.1:<port>, registers itself
//! (`--register` with a URL: both webhook configurations, and the SMI CRDs'
//! conversion pointed at its `/convert`) and publishes its self-signed CA as
//! caBundle. The API server then calls it for pods, SMI objects and
//! version conversion.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, ObjectMeta, PostParams};
use kube::{Api, Client};
use meshlet_crds::manifests::{self, CrdRender};
use meshlet_webhook::inject::InjectorSettings;
use meshlet_webhook::register::{Endpoint, Registration};
use meshlet_webhook::run::{self, CertSource, Config};
use meshlet_webhook::server::{quantile, App};
use serde_json::{json, Value};

/// The webhook, running on its own thread and runtime for the whole test binary.
struct Fixture {
    app: Arc<App>,
    port: u16,
    ca_pem: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                match start_webhook().await {
                    Ok((running, fixture)) => {
                        tx.send(Ok(fixture)).unwrap();
                        let _ = running.wait().await;
                    }
                    Err(e) => tx.send(Err(format!("{e:#}"))).unwrap(),
                }
            })
        });
        rx.recv()
            .unwrap()
            .unwrap_or_else(|e| panic!("starting the webhook fixture: {e}"))
    })
}

async fn install_crds(client: &Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crds = manifests::all(CrdRender::Full);
    for crd in &crds {
        match api.create(&PostParams::default(), crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => {
                return Err(e).with_context(|| format!("creating CRD {:?}", crd.metadata.name))
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap();
        loop {
            let established = api
                .get(&name)
                .await?
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if Instant::now() > deadline {
                bail!("CRD {name} not established");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

async fn start_webhook() -> Result<(run::Running, Fixture)> {
    let env = meshlet_testenv::shared().await?;
    let client = env.client();
    install_crds(&client).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let config = Config {
        settings: InjectorSettings {
            proxy_image: "meshlet/proxy:test".into(),
            proxy_version: "0.0.0-test".into(),
            native_sidecar: true,
            ..InjectorSettings::default()
        },
        certs: CertSource::SelfSigned {
            names: vec!["127.0.0.1".into()],
            validity: Duration::from_secs(24 * 3600),
            ca_validity: Duration::from_secs(48 * 3600),
        },
        register: Some(Registration {
            endpoint: Endpoint::Url(format!("https://127.0.0.1:{port}")),
            mesh_namespace: "meshlet-system".into(),
            inject_failure_policy: "Ignore".into(),
            validate_failure_policy: "Fail".into(),
            timeout_seconds: 5,
            name_suffix: String::new(),
        }),
        mutating_name: String::new(),
        validating_name: String::new(),
        patch_ca_bundles: true,
        renew_before: Duration::from_secs(3600),
        check_every: Duration::from_secs(3600),
    };
    put_trust_anchors(&client, &anchor_pem("meshlet test anchor 1")).await?;
    let running = run::start(config, client.clone(), listener).await?;
    let fixture = Fixture {
        app: running.app.clone(),
        port,
        ca_pem: running.ca_pem.clone(),
    };
    // The API server picks up webhook configurations asynchronously: wait
    // until a pod in a labelled namespace comes back injected.
    let ns = injected_namespace(&client, "warmup").await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    for attempt in 0.. {
        let pod = create_pod(
            &client,
            &ns,
            &format!("warmup-{attempt}"),
            BTreeMap::new(),
            false,
        )
        .await?;
        if init_names(&pod).contains(&"meshlet-proxy".to_string()) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the injection webhook was never called");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Same for the validating webhook.
    let deadline = Instant::now() + Duration::from_secs(60);
    for attempt in 0.. {
        let bad = split_v1alpha4(
            &format!("warmup-{attempt}"),
            json!([{"service": "a", "weight": 0}]),
        );
        if create(&client, &ns, &bad).await?.is_err() {
            break;
        }
        if Instant::now() > deadline {
            bail!("the validating webhook was never called");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok((running, fixture))
}

/// A self-signed CA certificate, as the operator's trust anchor would be.
fn anchor_pem(name: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.self_signed(&key).unwrap().pem()
}

/// Creates or replaces the trust anchors ConfigMap the operator would keep.
async fn put_trust_anchors(client: &Client, pem: &str) -> Result<()> {
    use meshlet_crds::contract::identity::{TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY};
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("meshlet-system".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e).context("creating meshlet-system"),
    }
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "meshlet-system");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(TRUST_ANCHORS_CONFIGMAP.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(TRUST_ANCHORS_KEY.into(), pem.into())])),
        ..Default::default()
    };
    maps.patch(
        TRUST_ANCHORS_CONFIGMAP,
        &kube::api::PatchParams::apply("meshlet-test").force(),
        &kube::api::Patch::Apply(&cm),
    )
    .await
    .context("applying the trust anchors ConfigMap")?;
    Ok(())
}

fn proxy_env(pod: &Pod, name: &str) -> Option<String> {
    pod.spec
        .as_ref()?
        .init_containers
        .as_ref()?
        .iter()
        .find(|c| c.name == "meshlet-proxy")?
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?
        .value
        .clone()
}

async fn injected_namespace(client: &Client, prefix: &str) -> Result<String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            generate_name: Some(format!("{prefix}-")),
            labels: Some(BTreeMap::from([(
                "meshlet.dev/inject".to_string(),
                "enabled".to_string(),
            )])),
            ..Default::default()
        },
        ..Default::default()
    };
    Ok(api
        .create(&PostParams::default(), &ns)
        .await?
        .metadata
        .name
        .unwrap())
}

async fn create_pod(
    client: &Client,
    ns: &str,
    name: &str,
    annotations: BTreeMap<String, String>,
    host_network: bool,
) -> Result<Pod> {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations, "labels": {"app": "web"}},
        "spec": {
            "hostNetwork": host_network,
            "containers": [{
                "name": "web", "image": "ghcr.io/example/web:1",
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}}
            }]
        }
    }))?;
    Ok(Api::<Pod>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &pod)
        .await?)
}

fn init_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .map(|cs| cs.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default()
}

fn api_for(client: &Client, ns: &str, api_version: &str, kind: &str) -> Api<DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap();
    let plural = match kind {
        "TrafficSplit" => "trafficsplits",
        "TrafficTarget" => "traffictargets",
        "HTTPRouteGroup" => "httproutegroups",
        other => panic!("unknown kind {other}"),
    };
    let resource = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: api_version.into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// Creates `obj`; `Err(message)` when the API server refuses it.
async fn create(client: &Client, ns: &str, obj: &Value) -> Result<Result<Value, String>> {
    let api = api_for(
        client,
        ns,
        obj["apiVersion"].as_str().unwrap(),
        obj["kind"].as_str().unwrap(),
    );
    let dynamic: DynamicObject = serde_json::from_value(obj.clone())?;
    match api.create(&PostParams::default(), &dynamic).await {
        Ok(created) => Ok(Ok(serde_json::to_value(created)?)),
        Err(kube::Error::Api(e)) => Ok(Err(e.message)),
        Err(e) => Err(e.into()),
    }
}

async fn get(
    client: &Client,
    ns: &str,
    api_version: &str,
    kind: &str,
    name: &str,
) -> Result<Value> {
    Ok(serde_json::to_value(
        api_for(client, ns, api_version, kind).get(name).await?,
    )?)
}

fn split_v1alpha4(name: &str, backends: Value) -> Value {
    json!({
        "apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
        "metadata": {"name": name},
        "spec": {"service": "web", "backends": backends}
    })
}

#[tokio::test]
async fn pod_in_an_injected_namespace_gets_the_proxy_and_the_init_step() -> Result<()> {
    fixture();
    let env = meshlet_testenv::shared().await?;
    let client = env.client();
    let ns = injected_namespace(&client, "inject").await?;
    let pod = create_pod(&client, &ns, "web", BTreeMap::new(), false).await?;

    assert_eq!(init_names(&pod), ["meshlet-init", "meshlet-proxy"]);
    let spec = pod.spec.as_ref().unwrap();
    let proxy = &spec.init_containers.as_ref().unwrap()[1];
    assert_eq!(proxy.restart_policy.as_deref(), Some("Always"));
    assert_eq!(proxy.image.as_deref(), Some("meshlet/proxy:test"));
    assert_eq!(
        proxy.security_context.as_ref().unwrap().run_as_user,
        Some(meshlet_crds::contract::ports::PROXY_UID.into())
    );
    // The app container and its probe are as written.
    assert_eq!(spec.containers.len(), 1);
    assert_eq!(spec.containers[0].name, "web");
    assert!(spec.containers[0].readiness_probe.is_some());
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("meshlet.dev/injected").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        annotations
            .get("meshlet.dev/proxy-version")
            .map(String::as_str),
        Some("0.0.0-test")
    );
    assert!(spec
        .volumes
        .iter()
        .flatten()
        .any(|v| v.name == "meshlet-identity"));
    let anchors = proxy_env(&pod, "MESHLET_TRUST_ANCHORS").unwrap_or_default();
    assert!(
        anchors.contains("-----BEGIN CERTIFICATE-----"),
        "the proxy gets the trust anchors: {anchors:?}"
    );
    assert_eq!(
        proxy_env(&pod, "MESHLET_TRUST_DOMAIN").as_deref(),
        Some("cluster.local")
    );
    Ok(())
}

#[tokio::test]
async fn an_edited_trust_anchors_bundle_reaches_new_pods() -> Result<()> {
    fixture();
    let env = meshlet_testenv::shared().await?;
    let client = env.client();
    let ns = injected_namespace(&client, "anchors").await?;
    // Rotation step 1: the bundle now holds the old and a new anchor.
    let first = proxy_env(
        &create_pod(&client, &ns, "before", BTreeMap::new(), false).await?,
        "MESHLET_TRUST_ANCHORS",
    )
    .context("no anchors on the first pod")?;
    let bundle = format!("{first}{}", anchor_pem("meshlet test anchor 2"));
    put_trust_anchors(&client, &bundle).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    for attempt in 0.. {
        let pod = create_pod(
            &client,
            &ns,
            &format!("after-{attempt}"),
            BTreeMap::new(),
            false,
        )
        .await?;
        if proxy_env(&pod, "MESHLET_TRUST_ANCHORS").as_deref() == Some(bundle.as_str()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("new pods never got the edited bundle");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    unreachable!()
}

#[tokio::test]
async fn opted_out_and_host_network_pods_are_left_alone() -> Result<()> {
    fixture();
    let env = meshlet_testenv::shared().await?;
    let client = env.client();
    let ns = injected_namespace(&client, "optout").await?;
    let opted_out = create_pod(
        &client,
        &ns,
        "legacy",
        BTreeMap::from([("meshlet.dev/inject".to_string(), "disabled".to_string())]),
        false,
    )
    .await?;
    assert_eq!(init_names(&opted_out), Vec::<String>::new());
    assert!(!opted_out
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key("meshlet.dev/injected"));
    let host = create_pod(&client, &ns, "agent", BTreeMap::new(), true).await?;
    assert_eq!(init_names(&host), Vec::<String>::new());

    // Not labelled: only a pod that asks for it is injected.
    let plain = env.create_namespace("plain").await?;
    assert!(
        init_names(&create_pod(&client, &plain, "a", BTreeMap::new(), false).await?).is_empty()
    );
    let asked = create_pod(
        &client,
        &plain,
        "b",
        BTreeMap::from([("meshlet.dev/inject".to_string(), "enabled".to_string())]),
        false,
    )
    .await?;
    assert_eq!(init_names(&asked), ["meshlet-init", "meshlet-proxy"]);

    // A bad override is refused with the annotation named.
    let err = create_pod(
        &client,
        &ns,
        "bad",
        BTreeMap::from([(
            "meshlet.dev/proxy-log-level".to_string(),
            "loud".to_string(),
        )]),
        false,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("meshlet.dev/proxy-log-level"), "{err}");
    Ok(())
}

/// Installed by manifests (no `--register`): the webhook only writes its
/// caBundle into the existing configurations and CRDs.
#[tokio::test]
async fn ca_bundle_is_written_into_installed_configurations_and_crds() -> Result<()> {
    use k8s_openapi::api::admissionregistration::v1::{
        MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
    };
    let fixture = fixture();
    let env = meshlet_testenv::shared().await?;
    let client = env.client();
    let suffix = env.create_namespace("cabundle").await?;
    // Configurations as manifests would install them: Service reference,
    // no caBundle, and selectors no object in this environment matches.
    let registration = Registration {
        endpoint: Endpoint::Service {
            namespace: "meshlet-system".into(),
            name: "meshlet-webhook".into(),
            port: 443,
        },
        mesh_namespace: "meshlet-system".into(),
        inject_failure_policy: "Ignore".into(),
        validate_failure_policy: "Ignore".into(),
        timeout_seconds: 1,
        name_suffix: format!("-{suffix}"),
    };
    let mut mutating = registration.mutating("");
    for w in mutating.webhooks.iter_mut().flatten() {
        w.client_config.ca_bundle = None;
        w.object_selector = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector {
                match_labels: Some(BTreeMap::from([("never".to_string(), suffix.clone())])),
                ..Default::default()
            },
        );
    }
    let mut validating = registration.validating("");
    for w in validating.webhooks.iter_mut().flatten() {
        w.client_config.ca_bundle = None;
        w.object_selector = mutating.webhooks.as_ref().unwrap()[0]
            .object_selector
            .clone();
    }
    let mutating_api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let validating_api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let mutating_name = mutating.metadata.name.clone().unwrap();
    let validating_name = validating.metadata.name.clone().unwrap();
    mutating_api
        .create(&PostParams::default(), &mutating)
        .await?;
    validating_api
        .create(&PostParams::default(), &validating)
        .await?;

    // The fixture's CA: the CRDs already carry it, so they stay as they are.
    let updated = meshlet_webhook::register::patch_ca_bundles(
        &client,
        &fixture.ca_pem,
        &mutating_name,
        &validating_name,
        None,
    )
    .await?;
    assert_eq!(updated, 2, "both configurations, no CRD");
    let bundle =
        |b: Option<&k8s_openapi::ByteString>| b.map(|b| String::from_utf8_lossy(&b.0).to_string());
    let got = mutating_api.get(&mutating_name).await?;
    assert_eq!(
        bundle(got.webhooks.unwrap()[0].client_config.ca_bundle.as_ref()),
        Some(fixture.ca_pem.clone())
    );
    let got = validating_api.get(&validating_name).await?;
    assert_eq!(
        bundle(got.webhooks.unwrap()[0].client_config.ca_bundle.as_ref()),
        Some(fixture.ca_pem.clone())
    );
    // Every converting CRD points at the fixture with its CA.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in meshlet_webhook::register::converting_crds() {
        let crd = crds.get(&name).await?;
        let config = crd
            .spec
            .conversion
            .unwrap()
            .webhook
            .unwrap()
            .client_config
            .unwrap();
        assert_eq!(
            bundle(config.ca_bundle.as_ref()),
            Some(fixture.ca_pem.clone()),
            "{name}"
        );
        assert_eq!(
            config.url,
            Some(format!("https://127.0.0.1:{}/convert", fixture.port)),
            "{name}"
        );
    }
    // Nothing left to do the second time.
    let again = meshlet_webhook::register::patch_ca_bundles(
        &client,
        &fixture.ca_pem,
        &mutating_name,
        &validating_name,
        None,
    )
    .await?;
    assert_eq!(again, 0);
    mutating_api
        .delete(&mutating_name, &Default::default())
        .await?;
    validating_api
        .delete(&validating_name, &Default::default())
        .await?;
    Ok(())
}

#[tokio::test]
async fn invalid_smi_objects_are_refused_with_the_field_named() -> Result<()> {
    fixture();
    let env = meshlet_testenv::shared().await?;
    let client = env.client();
    let ns = env.create_namespace("validate").await?;

    let dup = split_v1alpha4(
        "dup",
        json!([{"service": "a", "weight": 1}, {"service": "a", "weight": 1}]),
    );
    let err = create(&client, &ns, &dup).await?.unwrap_err();
    assert!(
        err.contains("spec.backends[1].service") && err.contains("already listed"),
        "{err}"
    );

    let zero = split_v1alpha4(
        "zero",
        json!([{"service": "a", "weight": 0}, {"service": "b", "weight": 0}]),
    );
    let err = create(&client, &ns, &zero).await?.unwrap_err();
    assert!(err.contains("spec.backends: every weight is 0"), "{err}");

    // v1alpha1 quantities: the webhook sees the object as written.
    let negative = json!({
        "apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit",
        "metadata": {"name": "negative"},
        "spec": {"service": "web", "backends": [{"service": "a", "weight": "1"}, {"service": "b", "weight": "-500m"}]}
    });
    let err = create(&client, &ns, &negative).await?.unwrap_err();
    assert!(err.contains("spec.backends[1].weight"), "{err}");

    let target = json!({
        "apiVersion": "access.smi-spec.io/v1alpha1", "kind": "TrafficTarget",
        "metadata": {"name": "elsewhere"},
        "destination": {"kind": "ServiceAccount", "name": "web", "namespace": "other"},
        "sources": [{"kind": "ServiceAccount", "name": "client"}],
        "specs": [{"kind": "HTTPRouteGroup", "name": "routes"}]
    });
    let err = create(&client, &ns, &target).await?.unwrap_err();
    assert!(err.contains("destination.namespace"), "{err}");

    let routes = json!({
        "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
        "metadata": {"name": "routes"},
        "spec": {"matches": [{"name": "api", "pathRegex": "/api/("}]}
    });
    let err = create(&client, &ns, &routes).await?.unwrap_err();
    assert!(err.contains("spec.matches[0].pathRegex"), "{err}");

    // And a valid one is admitted.
    let good = split_v1alpha4(
        "good",
        json!([{"service": "a", "weight": 90}, {"service": "b", "weight": 10}]),
    );
    create(&client, &ns, &good)
        .await?
        .map_err(anyhow::Error::msg)?;
    Ok(())
}

#[tokio::test]
async fn objects_convert_between_versions_through_the_webhook() -> Result<()> {
    fixture();
    let env = meshlet_testenv::shared().await?;
    let client = env.client();
    let ns = env.create_namespace("convert").await?;

    // Written as v1alpha1 (quantities), read as v1alpha4 (integers).
    let old = json!({
        "apiVersion": "split.smi-spec.io/v1alpha1", "kind": "TrafficSplit",
        "metadata": {"name": "old"},
        "spec": {"service": "web", "backends": [{"service": "web-v1", "weight": "900m"}, {"service": "web-v2", "weight": "100m"}]}
    });
    create(&client, &ns, &old)
        .await?
        .map_err(anyhow::Error::msg)?;
    let hub = get(
        &client,
        &ns,
        "split.smi-spec.io/v1alpha4",
        "TrafficSplit",
        "old",
    )
    .await?;
    assert_eq!(
        hub["spec"]["backends"],
        json!([{"service": "web-v1", "weight": 900}, {"service": "web-v2", "weight": 100}])
    );

    // Written as v1alpha4 with matches, read as v1alpha1 (no matches), and
    // back as v1alpha4 with nothing lost.
    let new = json!({
        "apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
        "metadata": {"name": "new"},
        "spec": {
            "service": "web",
            "matches": [{"kind": "HTTPRouteGroup", "name": "canary-users"}],
            "backends": [{"service": "web-v1", "weight": 1}, {"service": "web-v2", "weight": 3}]
        }
    });
    create(&client, &ns, &new)
        .await?
        .map_err(anyhow::Error::msg)?;
    let v1 = get(
        &client,
        &ns,
        "split.smi-spec.io/v1alpha1",
        "TrafficSplit",
        "new",
    )
    .await?;
    assert_eq!(v1["apiVersion"], json!("split.smi-spec.io/v1alpha1"));
    assert_eq!(
        v1["spec"]["backends"],
        json!([{"service": "web-v1", "weight": "1m"}, {"service": "web-v2", "weight": "3m"}])
    );
    assert!(v1["spec"].get("matches").is_none());
    let back = get(
        &client,
        &ns,
        "split.smi-spec.io/v1alpha4",
        "TrafficSplit",
        "new",
    )
    .await?;
    assert_eq!(back["spec"], new["spec"]);

    // TrafficTarget v1alpha1 (top-level fields) read as v1alpha3.
    let target = json!({
        "apiVersion": "access.smi-spec.io/v1alpha1", "kind": "TrafficTarget",
        "metadata": {"name": "t"},
        "destination": {"kind": "ServiceAccount", "name": "web"},
        "sources": [{"kind": "ServiceAccount", "name": "client"}],
        "specs": [{"kind": "HTTPRouteGroup", "name": "routes", "matches": ["api"]}]
    });
    create(&client, &ns, &target)
        .await?
        .map_err(anyhow::Error::msg)?;
    let v3 = get(
        &client,
        &ns,
        "access.smi-spec.io/v1alpha3",
        "TrafficTarget",
        "t",
    )
    .await?;
    assert_eq!(
        v3["spec"]["rules"],
        json!([{"kind": "HTTPRouteGroup", "name": "routes", "matches": ["api"]}])
    );
    Ok(())
}

/// The API server's own histogram of calls to the injection webhook
/// (`apiserver_admission_webhook_admission_duration_seconds`): upper bound
/// in seconds → cumulative count, summed over label sets.
async fn apiserver_webhook_histogram(client: &Client) -> Result<BTreeMap<String, f64>> {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new())?)
        .await?;
    let mut buckets = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) =
            line.strip_prefix("apiserver_admission_webhook_admission_duration_seconds_bucket{")
        else {
            continue;
        };
        if !rest.contains("name=\"inject.meshlet.dev\"") {
            continue;
        }
        let le = rest
            .split("le=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string();
        let count: f64 = line
            .rsplit(' ')
            .next()
            .unwrap_or("0")
            .parse()
            .unwrap_or(0.0);
        *buckets.entry(le).or_insert(0.0) += count;
    }
    Ok(buckets)
}

/// The smallest histogram bound under which at least `q` of the calls fell.
fn bucket_quantile(delta: &BTreeMap<String, f64>, q: f64) -> String {
    let total = delta.get("+Inf").copied().unwrap_or(0.0);
    let mut bounds: Vec<(f64, &String, f64)> = delta
        .iter()
        .filter(|(le, _)| le.as_str() != "+Inf")
        .map(|(le, count)| (le.parse().unwrap_or(f64::MAX), le, *count))
        .collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    bounds
        .into_iter()
        .find(|(_, _, count)| total > 0.0 && *count >= q * total)
        .map(|(_, le, _)| format!("≤ {} ms", le.parse::<f64>().unwrap_or(0.0) * 1000.0))
        .unwrap_or_else(|| "above the largest bucket".into())
}

#[tokio::test]
async fn admission_latency_over_200_pod_creations() -> Result<()> {
    let fixture = fixture();
    let env = meshlet_testenv::shared().await?;
    let client = env.client();
    let ns = injected_namespace(&client, "latency").await?;
    const PODS: usize = 200;
    let before = fixture.app.inject_latency.samples().len();
    let histogram_before = apiserver_webhook_histogram(&client).await?;
    let mut round_trips = Vec::with_capacity(PODS);
    for i in 0..PODS {
        let started = Instant::now();
        let pod = create_pod(&client, &ns, &format!("p{i}"), BTreeMap::new(), false).await?;
        round_trips.push(started.elapsed());
        assert_eq!(
            init_names(&pod),
            ["meshlet-init", "meshlet-proxy"],
            "pod {i}"
        );
    }
    // Other tests run in parallel: take the samples recorded since, which
    // include ours (every pod creation in the env is one sample).
    let samples = fixture.app.inject_latency.samples();
    let ours = &samples[before.min(samples.len())..];
    assert!(ours.len() >= PODS, "{} samples", ours.len());
    let p50 = quantile(ours, 0.50);
    let p99 = quantile(ours, 0.99);
    let rt50 = quantile(&round_trips, 0.50);
    let rt99 = quantile(&round_trips, 0.99);
    println!(
        "admission latency over {} /inject calls (webhook port {}): webhook p50 {:?}, p99 {:?}; pod create round trip through kube-apiserver p50 {:?}, p99 {:?}",
        ours.len(),
        fixture.port,
        p50,
        p99,
        rt50,
        rt99
    );
    let histogram_after = apiserver_webhook_histogram(&client).await?;
    let delta: BTreeMap<String, f64> = histogram_after
        .iter()
        .map(|(le, n)| {
            (
                le.clone(),
                n - histogram_before.get(le).copied().unwrap_or(0.0),
            )
        })
        .collect();
    println!(
        "as kube-apiserver measures the calls (TLS and HTTP included, its histogram buckets): {} calls, p50 {}, p99 {}",
        delta.get("+Inf").copied().unwrap_or(0.0),
        bucket_quantile(&delta, 0.5),
        bucket_quantile(&delta, 0.99)
    );
    println!("kube-apiserver histogram delta (le → cumulative calls): {delta:?}");
    assert!(delta.get("+Inf").copied().unwrap_or(0.0) >= PODS as f64);
    // The budget is 10 ms p99 (measured here and reported); this bound only
    // catches regressions like an API call per admission.
    assert!(p99 < Duration::from_millis(50), "webhook p99 {p99:?}");
    Ok(())
}
