//! The running operator: the shared [`Context`] (client, caches, subscriber
//! registry, metrics) and [`start`], which wires the watchers, the
//! recompute loop, the config stream, the admin server, leader election and
//! the Events publisher together.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::runtime::events::Reporter;
use kube::Client;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Computed, Finding, MeshSettings};
use crate::identity::{self, Ca, IdentitySettings};
use crate::leader::LeaderSettings;
use crate::metrics::Metrics;
use crate::state::stores::Changes;
use crate::state::Stores;
use crate::stream::auth::Authenticator;
use crate::stream::port;
use crate::stream::server::StreamServer;
use crate::stream::Registry;
use crate::trafficmetrics::{self, TrafficMetricsSettings};
use crate::{admin, events, leader, status, Error, Result};

/// How the operator runs.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Mesh-wide settings for the computation.
    pub mesh: MeshSettings,
    /// Where the config stream listens (port 0: any free port).
    pub config_addr: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    pub admin_addr: SocketAddr,
    /// Wait after a change before recomputing, so a burst of changes costs
    /// one recompute.
    pub debounce: Duration,
    /// Check subscribers' ServiceAccount tokens (TokenReview).
    pub authenticate: bool,
    /// The identity CA (certify endpoint, the config port's TLS).
    pub identity: IdentitySettings,
    /// How long a subscriber's pod may be missing from the cache.
    pub pod_wait: Duration,
    /// Leader election; `None` makes this replica the leader at once.
    pub leader: Option<LeaderSettings>,
    /// The SMI TrafficMetrics API; `None`: not served.
    pub traffic_metrics: Option<TrafficMetricsSettings>,
    /// Name and instance reported on Events.
    pub reporter: Reporter,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mesh: MeshSettings::default(),
            config_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            debounce: Duration::from_millis(5),
            authenticate: true,
            identity: IdentitySettings::default(),
            pod_wait: Duration::from_secs(5),
            leader: None,
            traffic_metrics: None,
            reporter: Reporter {
                controller: "meshlet-operator".into(),
                instance: None,
            },
        }
    }
}

/// State shared by the operator's tasks.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Reflector caches.
    pub stores: Stores,
    /// Config stream subscribers.
    pub registry: Arc<Registry>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Change signal from the watchers.
    pub changes: Arc<Changes>,
    /// Settings.
    pub settings: Settings,
    /// Set once every cache is synced and the first configs are computed.
    pub ready: AtomicBool,
    /// The latest findings, for the Events publisher.
    pub findings: watch::Sender<Vec<Finding>>,
    /// Whether this replica leads (publishes Events).
    pub leader: watch::Receiver<bool>,
    /// Bumped after every recompute (the status writer follows it).
    pub recomputed: watch::Sender<u64>,
    /// The identity CA.
    pub ca: Arc<Ca>,
}

/// A started operator; dropping it stops every task.
pub struct Running {
    /// Where the config stream listens.
    pub config_addr: SocketAddr,
    /// Where the admin server listens.
    pub admin_addr: SocketAddr,
    /// The shared state.
    pub context: Arc<Context>,
    /// The TrafficMetrics API, when served.
    pub traffic_metrics: Option<TrafficMetricsHandle>,
    tasks: Vec<JoinHandle<()>>,
}

/// Where the TrafficMetrics API listens and what it holds.
pub struct TrafficMetricsHandle {
    /// Its HTTPS address.
    pub addr: SocketAddr,
    /// The CA of its serving certificate, PEM (the APIServices' caBundle).
    pub ca_pem: String,
    /// The scraped windows.
    pub windows: Arc<trafficmetrics::Windows>,
    /// Scrape counters.
    pub stats: Arc<trafficmetrics::ScrapeStats>,
}

impl Running {
    /// Waits until the caches are synced and the first configs computed.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.context.ready.load(Ordering::Acquire) {
            if Instant::now() > deadline {
                return Err(Error::NotFound(format!(
                    "operator not ready within {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Waits until any task ends (they do not, unless something broke).
    pub async fn join(mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        let _ = futures::future::select_all(tasks).await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn bind(addr: SocketAddr, what: &str) -> Result<(TcpListener, SocketAddr)> {
    let io = |source| Error::Io {
        what: format!("{what} on {addr}"),
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(io)?;
    let local = listener.local_addr().map_err(io)?;
    Ok((listener, local))
}

/// Starts everything on `client` with `settings`.
pub async fn start(client: Client, settings: Settings) -> Result<Running> {
    let (config_listener, config_addr) = bind(settings.config_addr, "config stream").await?;
    let (admin_listener, admin_addr) = bind(settings.admin_addr, "admin server").await?;
    let metrics = Arc::new(Metrics::default());
    let changes = Arc::new(Changes::default());
    let (stores, watchers) = Stores::start(client.clone(), changes.clone(), metrics.clone());
    let registry = Registry::new(metrics.clone());
    // Before any task is spawned, so a bad flag leaks no task.
    let traffic_metrics = match settings.traffic_metrics.clone() {
        Some(tm) => {
            let started = trafficmetrics::start(client.clone(), stores.clone(), tm)
                .await
                .map_err(|e| Error::MetricsApi(format!("{e:#}")))?;
            Some((
                started.tasks,
                TrafficMetricsHandle {
                    addr: started.addr,
                    ca_pem: started.ca_pem,
                    windows: started.windows,
                    stats: started.stats,
                },
            ))
        }
        None => None,
    };
    let identity = identity::start(
        &client,
        &settings.identity,
        &settings.mesh.trust_domain,
        registry.clone(),
        metrics.clone(),
    )
    .await?;
    let (leader_rx, elector) = match &settings.leader {
        Some(leader_settings) => {
            let (rx, fut) = leader::run(client.clone(), leader_settings.clone(), metrics.clone());
            (rx, Some(fut))
        }
        None => {
            metrics.leader.set(1);
            (watch::channel(true).1, None)
        }
    };
    let context = Arc::new(Context {
        client: client.clone(),
        stores: stores.clone(),
        registry: registry.clone(),
        metrics: metrics.clone(),
        changes,
        settings: settings.clone(),
        ready: AtomicBool::new(false),
        findings: watch::Sender::new(Vec::new()),
        leader: leader_rx,
        recomputed: watch::Sender::new(0),
        ca: identity.ca.clone(),
    });
    let auth = if settings.authenticate {
        Authenticator::token_review(client.clone())
    } else {
        Authenticator::Disabled
    };
    let stream = Arc::new(StreamServer {
        registry,
        pods: stores.pods.clone(),
        auth,
        metrics: metrics.clone(),
        pod_wait: settings.pod_wait,
    });
    let certifier = Arc::new(identity::certify::Certifier {
        ca: identity.ca.clone(),
        auth: Authenticator::token_review(client.clone()),
        metrics,
    });
    let mut tasks = vec![
        tokio::spawn(watchers),
        tokio::spawn(recompute_loop(context.clone())),
        tokio::spawn(port::serve(
            config_listener,
            identity.tls.clone(),
            stream,
            certifier,
        )),
        tokio::spawn(admin::serve(admin_listener, context.clone())),
        tokio::spawn(events::run(context.clone())),
        tokio::spawn(status::run(context.clone())),
    ];
    tasks.extend(identity.tasks.into_iter().map(tokio::spawn));
    if let Some(elector) = elector {
        tasks.push(tokio::spawn(elector));
    }
    let traffic_metrics = traffic_metrics.map(|(metrics_tasks, handle)| {
        tasks.extend(metrics_tasks.into_iter().map(tokio::spawn));
        handle
    });
    tracing::info!(%config_addr, %admin_addr, "meshlet-operator started");
    Ok(Running {
        config_addr,
        admin_addr,
        context,
        traffic_metrics,
        tasks,
    })
}

/// Recomputes every config after each (debounced) change and pushes the
/// ones that changed.
async fn recompute_loop(ctx: Arc<Context>) {
    ctx.stores.wait_ready().await;
    loop {
        let began = Instant::now();
        let first_change = ctx.changes.take();
        let computed = Arc::new(Computed::new(&ctx.stores.state(), &ctx.settings.mesh));
        let pushed = ctx.registry.publish(computed.clone());
        ctx.metrics.recomputes.inc();
        ctx.metrics
            .recompute_seconds
            .observe(began.elapsed().as_secs_f64());
        if let (true, Some(first)) = (pushed > 0, first_change) {
            ctx.metrics
                .propagation_seconds
                .observe(first.elapsed().as_secs_f64());
        }
        tracing::debug!(
            services = computed.services.len(),
            targets = ctx.stores.traffic_targets.len(),
            findings = computed.findings.len(),
            pushed,
            elapsed = ?began.elapsed(),
            "recomputed"
        );
        ctx.findings.send_if_modified(|current| {
            let changed = *current != computed.findings;
            if changed {
                current.clone_from(&computed.findings);
            }
            changed
        });
        ctx.recomputed.send_modify(|n| *n += 1);
        ctx.ready.store(true, Ordering::Release);
        ctx.changes.wait().await;
        tokio::time::sleep(ctx.settings.debounce).await;
    }
}
