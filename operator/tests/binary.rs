//! The `meshlet-operator` binary: flag errors name the flag; against a real
//! API server (KUBECONFIG) it elects itself leader, gets ready and serves
//! metrics, creates its identity CA's Secret and ConfigMap, and serves the
//! config port over TLS only.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use common::*;
use hyper::StatusCode;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use meshlet_crds::contract::annotations::{PART_OF_LABEL, PART_OF_VALUE};
use meshlet_crds::contract::identity::{ISSUER_SECRET, TRUST_ANCHORS_CONFIGMAP, TRUST_ANCHORS_KEY};

const BIN: &str = env!("CARGO_BIN_EXE_meshlet-operator");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.1 GET; (status line, body).
fn get(port: u16, path: &str) -> std::io::Result<(String, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    Ok((
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    ))
}

#[test]
fn bad_flags_are_named() {
    let out = Command::new(BIN)
        .args(["--trust-domain", "Bad Domain"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--trust-domain"), "{err}");
    let out = Command::new(BIN)
        .args(["--cert-lifetime", "30s"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--cert-lifetime") && err.contains("at least one minute"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["--config-addr", "nowhere"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config-addr"));
}

#[tokio::test]
async fn runs_against_the_api_server_and_leads() -> Result<()> {
    let env = env().await?;
    let client = env.client();
    let system = Namespace {
        metadata: ObjectMeta {
            name: Some("meshlet-system".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &system)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let (config_port, admin_port) = (free_port(), free_port());
    let mut child = Command::new(BIN)
        .env("KUBECONFIG", env.kubeconfig_path())
        .args([
            "--config-addr",
            &format!("127.0.0.1:{config_port}"),
            "--admin-addr",
            &format!("127.0.0.1:{admin_port}"),
            "--pod-name",
            "operator-test-0",
            "--log",
            "warn",
        ])
        .stdout(Stdio::null())
        .spawn()?;
    let result = async {
        eventually("/readyz", Duration::from_secs(30), || async {
            Ok(get(admin_port, "/readyz")
                .ok()
                .filter(|(status, _)| status.contains(" 200 "))
                .map(|_| ()))
        })
        .await?;
        let leases: Api<Lease> = Api::namespaced(client.clone(), "meshlet-system");
        eventually(
            "the Lease held by this replica",
            Duration::from_secs(30),
            || async {
                let lease = leases.get_opt("meshlet-operator").await?;
                let holder = lease.and_then(|l| l.spec).and_then(|s| s.holder_identity);
                Ok((holder.as_deref() == Some("operator-test-0")).then_some(()))
            },
        )
        .await?;
        let (_, metrics) = get(admin_port, "/metrics")?;
        assert!(metrics.contains("meshlet_operator_leader 1"), "{metrics}");
        // First start: the identity CA made its issuer Secret and anchors
        // ConfigMap in the install namespace, labelled as Meshlet's.
        let cm = Api::<ConfigMap>::namespaced(client.clone(), "meshlet-system")
            .get(TRUST_ANCHORS_CONFIGMAP)
            .await?;
        let labels = cm.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(PART_OF_LABEL).map(String::as_str),
            Some(PART_OF_VALUE)
        );
        let anchors = cm.data.unwrap_or_default()[TRUST_ANCHORS_KEY].clone();
        Api::<Secret>::namespaced(client.clone(), "meshlet-system")
            .get(ISSUER_SECRET)
            .await?;
        // The config port speaks TLS only, with a certificate from that
        // anchor; the config stream refuses a subscriber without a token.
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], config_port));
        let refused = subscribe_to(addr, &anchors, "a", "b", None).await?;
        assert_eq!(refused.err().map(|e| e.0), Some(StatusCode::UNAUTHORIZED));
        let (status, _) =
            get(config_port, "/v1/proxy-config?namespace=a&pod=b").unwrap_or_default();
        assert!(
            !status.contains("HTTP/1.1"),
            "plain HTTP must not be served: {status}"
        );
        anyhow::Ok(())
    }
    .await;
    child.kill()?;
    child.wait()?;
    result
}
