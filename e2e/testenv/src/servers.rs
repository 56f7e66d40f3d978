//! Starts etcd, kube-apiserver and kube-controller-manager with the flags a
//! loopback test control plane needs, retrying when a port was taken.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::binaries::Binaries;
use crate::certs::{self, Pki, PkiFiles};
use crate::kubeconfig::AdminCredentials;
use crate::ports;
use crate::process::{ServerProcess, Watchdog};
use crate::readiness::{self, NotReady};
use crate::TestEnvBuilder;

/// How often a start is retried when a server lost the race for its port.
const PORT_ATTEMPTS: usize = 5;

/// The Service IP range (no Services are routed here; it must just not clash).
const SERVICE_CIDR: &str = "10.0.0.0/24";

/// etcd on a free client port (plain HTTP on loopback), ready; returns the port.
pub async fn start_etcd(
    binaries: &Binaries,
    dir: &Path,
    watchdog: &mut Watchdog,
    timeout: Duration,
) -> Result<(ServerProcess, u16)> {
    for attempt in 1..=PORT_ATTEMPTS {
        let client_port = ports::free_port()?;
        let peer_port = ports::free_port()?;
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let data_dir = dir.join(format!("etcd-data-{attempt}"));
        let args = vec![
            "--name=testenv".to_string(),
            format!("--data-dir={}", data_dir.display()),
            format!("--listen-client-urls={client_url}"),
            format!("--advertise-client-urls={client_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=testenv={peer_url}"),
            // The data is thrown away with the environment.
            "--unsafe-no-fsync=true".to_string(),
            "--log-level=warn".to_string(),
        ];
        let mut etcd = ServerProcess::spawn(
            "etcd",
            &binaries.etcd,
            &args,
            &dir.join("etcd.log"),
            watchdog,
        )?;
        match readiness::wait_ready(&mut etcd, timeout, || {
            readiness::http_ok(client_port, "/health")
        })
        .await
        {
            Ok(()) => return Ok((etcd, client_port)),
            Err(NotReady::PortTaken) => continue,
            Err(NotReady::Failed(e)) => return Err(e),
        }
    }
    bail!("etcd lost the race for a free port {PORT_ATTEMPTS} times")
}

/// kube-apiserver on a free port against `etcd_port`, answering `/readyz`.
pub async fn start_apiserver(
    binaries: &Binaries,
    dir: &Path,
    files: &PkiFiles,
    pki: &Pki,
    etcd_port: u16,
    options: &TestEnvBuilder,
    watchdog: &mut Watchdog,
) -> Result<(ServerProcess, AdminCredentials)> {
    let p = |path: &Path| path.display().to_string();
    for _ in 0..PORT_ATTEMPTS {
        let port = ports::free_port()?;
        let server_url = format!("https://127.0.0.1:{port}");
        let mut args = vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".to_string(),
            format!("--secure-port={port}"),
            format!("--cert-dir={}", dir.join("apiserver-certs").display()),
            format!("--tls-cert-file={}", p(&files.serving_cert)),
            format!("--tls-private-key-file={}", p(&files.serving_key)),
            format!("--client-ca-file={}", p(&files.ca_cert)),
            "--authorization-mode=Node,RBAC".to_string(),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_string(),
            format!(
                "--service-account-key-file={}",
                p(&files.service_account_pub)
            ),
            format!(
                "--service-account-signing-key-file={}",
                p(&files.service_account_key)
            ),
            // Aggregated APIs: kube-apiserver proxies with this client
            // certificate, and publishes the CA and header names in
            // kube-system/extension-apiserver-authentication.
            format!(
                "--requestheader-client-ca-file={}",
                p(&files.front_proxy_ca_cert)
            ),
            format!(
                "--requestheader-allowed-names={}",
                certs::FRONT_PROXY_CLIENT_NAME
            ),
            "--requestheader-username-headers=X-Remote-User".to_string(),
            "--requestheader-group-headers=X-Remote-Group".to_string(),
            "--requestheader-extra-headers-prefix=X-Remote-Extra-".to_string(),
            format!(
                "--proxy-client-cert-file={}",
                p(&files.front_proxy_client_cert)
            ),
            format!(
                "--proxy-client-key-file={}",
                p(&files.front_proxy_client_key)
            ),
            // The `kubernetes` Service's endpoints would be 127.0.0.1, which
            // Endpoints validation rejects (an error every 10 s); nothing
            // in-cluster needs them here.
            "--endpoint-reconciler-type=none".to_string(),
            "--allow-privileged=true".to_string(),
            "--profiling=false".to_string(),
        ];
        if !options.controller_manager {
            args.push("--disable-admission-plugins=ServiceAccount".to_string());
        }
        args.extend(options.apiserver_args.iter().cloned());

        let credentials = AdminCredentials {
            server_url,
            ca_pem: pki.ca.cert_pem.clone(),
            ca_der: pki.ca_der.clone(),
            client: pki.admin.clone(),
        };
        let client = kube::Client::try_from(credentials.client_config()?)
            .context("building the readiness client")?;
        let mut apiserver = ServerProcess::spawn(
            "kube-apiserver",
            &binaries.kube_apiserver,
            &args,
            &dir.join("kube-apiserver.log"),
            watchdog,
        )?;
        match readiness::wait_ready(&mut apiserver, options.timeout, || {
            readiness::apiserver_ready(&client)
        })
        .await
        {
            Ok(()) => return Ok((apiserver, credentials)),
            Err(NotReady::PortTaken) => continue,
            Err(NotReady::Failed(e)) => return Err(e),
        }
    }
    bail!("kube-apiserver lost the race for a free port {PORT_ATTEMPTS} times")
}

/// kube-controller-manager as admin; not waited for (tests wait for its effects).
pub fn start_controller_manager(
    binaries: &Binaries,
    dir: &Path,
    files: &PkiFiles,
    kubeconfig: &Path,
    watchdog: &mut Watchdog,
) -> Result<ServerProcess> {
    let p = |path: &Path| path.display().to_string();
    let args = vec![
        format!("--kubeconfig={}", p(kubeconfig)),
        // No HTTPS endpoint: nothing scrapes it, and no port can collide.
        "--secure-port=0".to_string(),
        "--leader-elect=false".to_string(),
        format!("--root-ca-file={}", p(&files.ca_cert)),
        format!(
            "--service-account-private-key-file={}",
            p(&files.service_account_key)
        ),
        format!("--cluster-signing-cert-file={}", p(&files.ca_cert)),
        format!("--cluster-signing-key-file={}", p(&files.ca_key)),
        format!("--service-cluster-ip-range={SERVICE_CIDR}"),
    ];
    // Readiness shows in the API (e.g. a namespace's `default`
    // ServiceAccount appears); tests wait for what they need.
    ServerProcess::spawn(
        "kube-controller-manager",
        &binaries.kube_controller_manager,
        &args,
        &dir.join("kube-controller-manager.log"),
        watchdog,
    )
}
