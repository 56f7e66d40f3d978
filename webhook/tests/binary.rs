//! The `meshlet-webhook` binary end to end against its own kube-apiserver:
//! flags, `--native-sidecar=auto` (the harness runs 1.34, so native),
//! self-signed certificate for 127.0.0.1, `--register` with a URL.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use serde_json::json;

/// Kills the child process on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Stands for the operator's anchor; the webhook only checks the PEM shape.
const ANCHOR_PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n";

/// Creates meshlet-system and the trust anchors ConfigMap the operator keeps.
async fn put_trust_anchors(client: &kube::Client) -> Result<()> {
    use meshlet_crds::contract::identity::{TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY};
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some("meshlet-system".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    namespaces.create(&PostParams::default(), &ns).await?;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "meshlet-system");
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(TRUST_ANCHORS_CONFIGMAP.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            TRUST_ANCHORS_KEY.to_string(),
            ANCHOR_PEM.to_string(),
        )])),
        ..Default::default()
    };
    maps.create(&PostParams::default(), &cm).await?;
    Ok(())
}

#[tokio::test]
async fn binary_registers_itself_and_injects_native_sidecars() -> Result<()> {
    let env = meshlet_testenv::TestEnv::start().await?;
    let client = env.client();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = env.dir().join("meshlet-webhook.log");
    let child = Command::new(env!("CARGO_BIN_EXE_meshlet-webhook"))
        .env("KUBECONFIG", env.kubeconfig_path())
        .args([
            &format!("--addr=127.0.0.1:{port}"),
            "--extra-san=127.0.0.1",
            "--register",
            &format!("--webhook-url=https://127.0.0.1:{port}"),
            "--native-sidecar=auto",
            "--proxy-image=meshlet/proxy:bin-test",
            "--log=info",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let mut running = Running(child);

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = namespaces
        .create(
            &PostParams::default(),
            &Namespace {
                metadata: ObjectMeta {
                    generate_name: Some("bin-".into()),
                    labels: Some(BTreeMap::from([(
                        "meshlet.dev/inject".to_string(),
                        "enabled".to_string(),
                    )])),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await?
        .metadata
        .name
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut anchors_created: Option<Instant> = None;
    for attempt in 0.. {
        if let Some(status) = running.0.try_wait()? {
            bail!(
                "meshlet-webhook exited ({status}):\n{}",
                std::fs::read_to_string(&log)?
            );
        }
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("p{attempt}")},
            "spec": {"containers": [{"name": "app", "image": "app"}]}
        }))?;
        // Without the operator's trust anchors ConfigMap, pods to inject are
        // refused with a message saying so; once it exists they get proxies.
        let pod = match pods.create(&PostParams::default(), &pod).await {
            Ok(pod) => pod,
            Err(kube::Error::Api(e)) if e.message.contains("no trust anchors") => {
                // The webhook's watch needs a moment to see a new ConfigMap.
                if let Some(at) = anchors_created {
                    assert!(at.elapsed() < Duration::from_secs(10), "still refused: {e}");
                } else {
                    put_trust_anchors(&client).await?;
                    anchors_created = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let init = pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.clone())
            .unwrap_or_default();
        if let Some(proxy) = init.iter().find(|c| c.name == "meshlet-proxy") {
            assert_eq!(proxy.restart_policy.as_deref(), Some("Always"));
            assert_eq!(proxy.image.as_deref(), Some("meshlet/proxy:bin-test"));
            assert_eq!(init[0].name, "meshlet-init");
            assert!(
                anchors_created.is_some(),
                "a pod was injected before the trust anchors existed"
            );
            let anchors = proxy
                .env
                .iter()
                .flatten()
                .find(|e| e.name == "MESHLET_TRUST_ANCHORS");
            assert!(anchors.and_then(|e| e.value.as_deref()) == Some(ANCHOR_PEM));
            // SIGTERM ends it cleanly.
            let pid = running.0.id().to_string();
            assert!(Command::new("kill")
                .args(["-TERM", &pid])
                .status()?
                .success());
            let stop_deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = running.0.try_wait()? {
                    assert!(status.success(), "exit after SIGTERM: {status}");
                    return Ok(());
                }
                if Instant::now() > stop_deadline {
                    bail!("meshlet-webhook did not stop on SIGTERM");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if Instant::now() > deadline {
            bail!(
                "pods were never injected; webhook log:\n{}",
                std::fs::read_to_string(&log)?
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    unreachable!()
}
