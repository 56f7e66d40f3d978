//! A real Kubernetes control plane on 127.0.0.1 for integration tests.
//!
//! Like controller-runtime's envtest: [`TestEnv::start`] runs etcd and
//! kube-apiserver (optionally kube-controller-manager) from the binaries
//! `make k8s-bins` builds, on free loopback ports, with freshly generated
//! certificates in a fresh temp dir, and stops everything on drop.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let env = meshlet_testenv::shared().await?; // one per test binary
//! let ns = env.create_namespace("my-test").await?;
//! let client = env.client(); // bound to this test's runtime
//! # Ok(()) }
//! ```
//!
//! What the API server is set up for:
//! - RBAC (+ Node) authorization; the admin user is in `system:masters`.
//! - Front-proxy (requestheader) certificates, so aggregated API servers can
//!   authenticate the requests kube-apiserver proxies to them.
//! - The default admission plugins, which include the mutating and
//!   validating webhook plugins; webhooks and CRD conversion webhooks on
//!   `https://127.0.0.1:<port>` with a `caBundle` are reachable.
//! - Without the controller manager nobody creates ServiceAccounts, so the
//!   `ServiceAccount` admission plugin is disabled and Pods can be created in
//!   new namespaces. With it, the plugin is on and the `default` account,
//!   garbage collection and the other controllers work.
#![forbid(unsafe_code)]

pub mod binaries;
pub mod certs;
pub mod json_server;
pub mod kubeconfig;
pub mod ports;
pub mod process;
pub mod readiness;
pub mod servers;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use tokio::sync::OnceCell;

pub use binaries::{Binaries, K8S_VERSION};
use certs::Pki;
use kubeconfig::AdminCredentials;
use process::{ServerProcess, Watchdog};
use servers::{start_apiserver, start_controller_manager, start_etcd};

/// Options for [`TestEnv`]; see [`TestEnv::builder`].
#[derive(Clone, Debug)]
pub struct TestEnvBuilder {
    controller_manager: bool,
    apiserver_args: Vec<String>,
    timeout: Duration,
}

impl Default for TestEnvBuilder {
    fn default() -> Self {
        TestEnvBuilder {
            controller_manager: false,
            apiserver_args: Vec::new(),
            timeout: Duration::from_secs(90),
        }
    }
}

impl TestEnvBuilder {
    /// Also run kube-controller-manager (ServiceAccounts and their `default`
    /// account, garbage collection, namespace deletion, Deployments → Pods).
    pub fn controller_manager(mut self, enabled: bool) -> Self {
        self.controller_manager = enabled;
        self
    }

    /// An extra kube-apiserver flag (`--name=value`); later flags win.
    pub fn apiserver_arg(mut self, arg: impl Into<String>) -> Self {
        self.apiserver_args.push(arg.into());
        self
    }

    /// How long each server may take to become ready (default 90 s, generous
    /// for loaded 2-core CI machines; a quiet machine needs a few seconds).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts the control plane.
    pub async fn start(self) -> Result<TestEnv> {
        TestEnv::start_with(self).await
    }
}

/// A running control plane. Dropping it kills the processes and removes its
/// directory.
pub struct TestEnv {
    // Drop order matters: servers first (newest first), then the watchdog,
    // then the directory.
    controller_manager: Option<ServerProcess>,
    apiserver: ServerProcess,
    _etcd: ServerProcess,
    _watchdog: Watchdog,
    credentials: AdminCredentials,
    kubeconfig_path: PathBuf,
    startup: Duration,
    dir: tempfile::TempDir,
}

impl TestEnv {
    /// Options: controller manager, extra API server flags, timeout.
    pub fn builder() -> TestEnvBuilder {
        TestEnvBuilder::default()
    }

    /// etcd + kube-apiserver with default options.
    pub async fn start() -> Result<TestEnv> {
        TestEnvBuilder::default().start().await
    }

    async fn start_with(options: TestEnvBuilder) -> Result<TestEnv> {
        let began = Instant::now();
        let binaries = Binaries::locate()?;
        let dir = tempfile::Builder::new()
            .prefix("meshlet-testenv-")
            .tempdir()
            .context("creating the environment's temp dir")?;
        let mut watchdog = Watchdog::spawn(dir.path())?;
        let pki = Pki::generate()?;
        let files = pki.write_to(dir.path())?;

        let (etcd, etcd_port) =
            start_etcd(&binaries, dir.path(), &mut watchdog, options.timeout).await?;
        let (apiserver, credentials) = start_apiserver(
            &binaries,
            dir.path(),
            &files,
            &pki,
            etcd_port,
            &options,
            &mut watchdog,
        )
        .await?;

        let kubeconfig_path = dir.path().join("kubeconfig");
        credentials.write_kubeconfig(&kubeconfig_path)?;

        let controller_manager = if options.controller_manager {
            Some(start_controller_manager(
                &binaries,
                dir.path(),
                &files,
                &kubeconfig_path,
                &mut watchdog,
            )?)
        } else {
            None
        };

        Ok(TestEnv {
            controller_manager,
            apiserver,
            _etcd: etcd,
            _watchdog: watchdog,
            credentials,
            kubeconfig_path,
            startup: began.elapsed(),
            dir,
        })
    }

    /// A new client for the admin user. Call it inside the Tokio runtime that
    /// will use the client (each `#[tokio::test]` has its own runtime, and a
    /// client is tied to the runtime it was built in).
    pub fn client(&self) -> kube::Client {
        let config = self
            .client_config()
            .expect("the generated admin credentials are valid");
        kube::Client::try_from(config).expect("building a kube client (inside a Tokio runtime?)")
    }

    /// The admin client's configuration, e.g. to change timeouts or impersonate.
    pub fn client_config(&self) -> Result<kube::Config> {
        self.credentials.client_config()
    }

    /// The admin kubeconfig file (certificates inline), for kubectl or other tools.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// `https://127.0.0.1:<port>`.
    pub fn server_url(&self) -> &str {
        &self.credentials.server_url
    }

    /// The cluster CA (signs the API server's serving certificate), PEM.
    pub fn ca_pem(&self) -> &str {
        &self.credentials.ca_pem
    }

    /// The environment's directory: certificates, kubeconfig, logs, etcd data.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// kube-apiserver's log file.
    pub fn apiserver_log(&self) -> &Path {
        self.apiserver.log_path()
    }

    /// How long [`TestEnv::start`] took, certificates to `/readyz`.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Whether kube-controller-manager runs in this environment.
    pub fn has_controller_manager(&self) -> bool {
        self.controller_manager.is_some()
    }

    /// Creates a namespace named `<prefix>-<random suffix>` and returns its name,
    /// so tests sharing one environment do not see each other's objects.
    pub async fn create_namespace(&self, prefix: &str) -> Result<String> {
        let namespaces: Api<Namespace> = Api::all(self.client());
        let namespace = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{prefix}-")),
                ..Default::default()
            },
            ..Default::default()
        };
        let created = namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("creating a namespace with prefix {prefix:?}"))?;
        created
            .metadata
            .name
            .context("the API server returned a namespace without a name")
    }
}

/// One control plane (etcd + kube-apiserver) per test binary, started on
/// first use. Processes stop when the test binary exits (statics are never
/// dropped; the watchdog cleans up). Use [`TestEnv::client`] in each test for
/// a client bound to that test's runtime, and [`TestEnv::create_namespace`] to
/// keep tests apart.
pub async fn shared() -> Result<&'static TestEnv> {
    static SHARED: OnceCell<TestEnv> = OnceCell::const_new();
    SHARED.get_or_try_init(TestEnv::start).await
}

/// Like [`shared`], with kube-controller-manager running too.
pub async fn shared_with_controller_manager() -> Result<&'static TestEnv> {
    static SHARED: OnceCell<TestEnv> = OnceCell::const_new();
    SHARED
        .get_or_try_init(|| TestEnv::builder().controller_manager(true).start())
        .await
}
