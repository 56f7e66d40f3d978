//! The harness against a real etcd + kube-apiserver: objects, CRDs, aggregation
//! prerequisites, and independent environments side by side.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use meshlet_testenv::{shared, Binaries, TestEnv};

fn config_map(name: &str, key: &str, value: &str) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(key.to_string(), value.to_string())])),
        ..Default::default()
    }
}

async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        let last = f().await;
        if let Ok(Some(v)) = last {
            return Ok(v);
        }
        if Instant::now() > deadline {
            anyhow::bail!("{what}: not within {timeout:?} (last: {:?})", last.err());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn config_map_round_trip_in_own_namespace() -> Result<()> {
    let env = shared().await?;
    eprintln!("shared control plane started in {:?}", env.startup_time());
    let ns = env.create_namespace("configmap").await?;
    assert!(ns.starts_with("configmap-"), "{ns}");
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), &ns);
    cms.create(
        &PostParams::default(),
        &config_map("greeting", "hello", "world"),
    )
    .await?;
    let read = cms.get("greeting").await?;
    assert_eq!(read.data.unwrap()["hello"], "world");
    // Another namespace does not see it.
    let other = env.create_namespace("configmap").await?;
    assert_ne!(ns, other);
    let other_cms: Api<ConfigMap> = Api::namespaced(env.client(), &other);
    assert!(other_cms.get_opt("greeting").await?.is_none());
    Ok(())
}

const WIDGET_CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.testenv.meshlet.dev
spec:
  group: testenv.meshlet.dev
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
"#;

#[tokio::test]
async fn crd_and_custom_object() -> Result<()> {
    let env = shared().await?;
    let client = env.client();
    let crd: CustomResourceDefinition = serde_yaml::from_str(WIDGET_CRD)?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await?;
    eventually("CRD established", Duration::from_secs(30), || async {
        let crd = crds.get("widgets.testenv.meshlet.dev").await?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        Ok(established.then_some(()))
    })
    .await?;

    let ns = env.create_namespace("crd").await?;
    let gvk = GroupVersionKind::gvk("testenv.meshlet.dev", "v1", "Widget");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
    // The CRD may be established a moment before its endpoint serves.
    let widget: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "testenv.meshlet.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"size": 3}
    }))?;
    eventually("widget created", Duration::from_secs(30), || async {
        match widgets.create(&PostParams::default(), &widget).await {
            Ok(w) => Ok(Some(w)),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(None),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    let read = widgets.get("w1").await?;
    assert_eq!(read.data["spec"]["size"], 3);

    // The schema is enforced: the API server validates, it does not just store.
    let invalid: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "testenv.meshlet.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w2"},
        "spec": {"size": 0}
    }))?;
    let err = widgets
        .create(&PostParams::default(), &invalid)
        .await
        .expect_err("size 0 violates minimum 1");
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 422),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn aggregated_api_prerequisites() -> Result<()> {
    let env = shared().await?;
    // kubectl with the written kubeconfig reaches the API.
    let kubectl = Binaries::locate()?.dir.join("kubectl");
    let output = tokio::process::Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(env.kubeconfig_path())
        .args(["get", "--raw", "/api"])
        .output()
        .await
        .with_context(|| format!("running {}", kubectl.display()))?;
    assert!(
        output.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let api: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(api["kind"], "APIVersions", "{api}");

    // kube-apiserver publishes the front-proxy CA and header names for
    // aggregated API servers (written shortly after start).
    let cms: Api<ConfigMap> = Api::namespaced(env.client(), "kube-system");
    let data = eventually(
        "extension-apiserver-authentication has requestheader settings",
        Duration::from_secs(30),
        || async {
            let cm = cms.get_opt("extension-apiserver-authentication").await?;
            let data = cm.and_then(|c| c.data).unwrap_or_default();
            Ok(data
                .contains_key("requestheader-client-ca-file")
                .then_some(data))
        },
    )
    .await?;
    let front_proxy_ca = std::fs::read_to_string(env.dir().join("front-proxy-ca.crt"))?;
    assert_eq!(
        data["requestheader-client-ca-file"].trim(),
        front_proxy_ca.trim()
    );
    assert!(data["requestheader-allowed-names"].contains("front-proxy-client"));
    assert!(data["requestheader-username-headers"].contains("X-Remote-User"));
    assert_eq!(data["client-ca-file"].trim(), env.ca_pem().trim());
    Ok(())
}

#[tokio::test]
async fn unauthenticated_clients_are_not_admins() -> Result<()> {
    let env = shared().await?;
    // Same CA, no client certificate: anonymous, which RBAC lets read
    // /version but not ConfigMaps.
    let mut config = env.client_config()?;
    config.auth_info = Default::default();
    let anonymous = Client::try_from(config)?;
    anonymous.apiserver_version().await?;
    let cms: Api<ConfigMap> = Api::namespaced(anonymous, "kube-system");
    let err = cms
        .list(&Default::default())
        .await
        .expect_err("anonymous list");
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 403),
        "{err}"
    );
    Ok(())
}

fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

/// PIDs of processes whose command line mentions `needle`.
fn pids_mentioning(needle: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(needle) && process_alive(pid) {
                pids.push(pid);
            }
        }
    }
    pids
}

#[tokio::test]
async fn two_environments_side_by_side_then_cleaned_up() -> Result<()> {
    let (a, b) = tokio::join!(TestEnv::start(), TestEnv::start());
    let (a, b) = (a?, b?);
    eprintln!(
        "two concurrent starts: {:?} and {:?}",
        a.startup_time(),
        b.startup_time()
    );
    assert_ne!(a.server_url(), b.server_url());
    assert_ne!(a.dir(), b.dir());
    assert_ne!(a.ca_pem(), b.ca_pem());

    for (env, value) in [(&a, "a"), (&b, "b")] {
        let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
        cms.create(&PostParams::default(), &config_map("which", "env", value))
            .await?;
    }
    for (env, value) in [(&a, "a"), (&b, "b")] {
        let cms: Api<ConfigMap> = Api::namespaced(env.client(), "default");
        assert_eq!(cms.get("which").await?.data.unwrap()["env"], value);
    }

    // Credentials of one environment are not accepted by the other.
    let mut cross = a.client_config()?;
    cross.cluster_url = b.server_url().parse()?;
    let cross = Client::try_from(cross)?;
    assert!(cross.apiserver_version().await.is_err());

    // Dropping an environment stops its processes and removes its directory.
    let dir = a.dir().to_path_buf();
    let pids = pids_mentioning(&dir.display().to_string());
    assert!(
        pids.len() >= 2,
        "etcd and kube-apiserver of {dir:?}: {pids:?}"
    );
    drop(a);
    assert!(!dir.exists(), "{dir:?} still exists");
    let left: Vec<u32> = pids.into_iter().filter(|p| process_alive(*p)).collect();
    assert!(left.is_empty(), "processes left running: {left:?}");
    // The other one is unaffected.
    b.client().apiserver_version().await?;
    Ok(())
}
