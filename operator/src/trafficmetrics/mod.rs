//! The SMI TrafficMetrics aggregated API (`metrics.smi-spec.io` v1alpha1
//! and v1alpha2), served by the operator itself: it scrapes every meshed
//! proxy's admin `/metrics` into a bounded window ([`scraper`],
//! [`window`]) and answers kube-apiserver's proxied requests over TLS
//! ([`server`]) with success/failure counts and latency percentiles.

pub mod apiservice;
pub mod auth;
pub mod counters;
pub mod exposition;
pub mod query;
pub mod routes;
pub mod scraper;
pub mod server;
pub mod tls;
pub mod window;
pub mod workloads;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use kube::Client;
use tokio::net::TcpListener;

pub use apiservice::ServiceRef;
pub use scraper::{ScrapeSettings, ScrapeStats};
pub use tls::ServingSource;
pub use window::Windows;

use crate::state::Stores;

/// How the metrics API runs.
#[derive(Clone, Debug)]
pub struct TrafficMetricsSettings {
    /// Where the HTTPS server listens.
    pub addr: SocketAddr,
    /// Scraping.
    pub scrape: ScrapeSettings,
    /// Length of the window the metrics cover.
    pub window: Duration,
    /// The serving certificate.
    pub serving: ServingSource,
    /// Register the APIServices, pointing at this Service.
    pub register: Option<ServiceRef>,
    /// Check every request with a SubjectAccessReview.
    pub authorize: bool,
}

impl TrafficMetricsSettings {
    /// Defaults: 10 s scrapes, 30 s window, 2 s timeout, 32 in flight.
    pub fn new(addr: SocketAddr, serving: ServingSource) -> Self {
        TrafficMetricsSettings {
            addr,
            scrape: ScrapeSettings {
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(2),
                concurrency: 32,
                port: meshlet_crds::contract::ports::PROXY_ADMIN_PORT,
            },
            window: Duration::from_secs(30),
            serving,
            register: None,
            authorize: true,
        }
    }
}

/// A started metrics API.
pub struct Started {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The CA of its serving certificate, PEM (the APIServices' caBundle).
    pub ca_pem: String,
    /// The scraped windows.
    pub windows: Arc<Windows>,
    /// Scrape counters.
    pub stats: Arc<ScrapeStats>,
    /// The scraper, the server and the registration, to be spawned.
    pub tasks: Vec<BoxFuture<'static, ()>>,
}

/// Binds the port and prepares the tasks; errors name the flag or file.
pub async fn start(
    client: Client,
    stores: Stores,
    settings: TrafficMetricsSettings,
) -> anyhow::Result<Started> {
    use anyhow::Context as _;
    anyhow::ensure!(
        settings.window >= settings.scrape.interval,
        "--metrics-window ({:?}) must be at least --scrape-interval ({:?})",
        settings.window,
        settings.scrape.interval
    );
    let serving = settings.serving.load()?;
    let listener = TcpListener::bind(settings.addr)
        .await
        .with_context(|| format!("metrics API on {}", settings.addr))?;
    let addr = listener.local_addr()?;
    let windows = Arc::new(Windows::new(settings.window));
    let stats = Arc::new(ScrapeStats::default());
    let mut tasks: Vec<BoxFuture<'static, ()>> = vec![scraper::run(
        stores.pods.clone(),
        windows.clone(),
        settings.scrape.clone(),
        stats.clone(),
    )
    .boxed()];
    let ca_pem = serving.ca_pem.clone();
    let (serve_client, serve_windows) = (client.clone(), windows.clone());
    let authorize = settings.authorize;
    tasks.push(
        async move {
            // The front proxy's CA is published by kube-apiserver; wait for it.
            let front_proxy = loop {
                match auth::FrontProxy::load(&serve_client).await {
                    Ok(fp) => break fp,
                    Err(error) => {
                        tracing::error!(
                            error = format!("{error:#}"),
                            "metrics API waits for the front-proxy settings"
                        );
                        tokio::time::sleep(Duration::from_secs(10)).await;
                    }
                }
            };
            let config = match tls::server_config(&serving, &front_proxy.client_ca_pem) {
                Ok(config) => config,
                Err(error) => {
                    tracing::error!(error = format!("{error:#}"), "metrics API cannot serve");
                    return futures::future::pending().await;
                }
            };
            let api = Arc::new(server::MetricsApi {
                client: serve_client,
                stores,
                windows: serve_windows,
                front_proxy,
                authorize,
            });
            tracing::info!(%addr, "metrics.smi-spec.io API serving");
            server::serve(
                listener,
                tokio_rustls::TlsAcceptor::from(Arc::new(config)),
                api,
            )
            .await
        }
        .boxed(),
    );
    if let Some(service) = settings.register.clone() {
        let ca = ca_pem.clone();
        tasks.push(
            async move {
                while let Err(error) = apiservice::register(&client, &service, &ca).await {
                    tracing::warn!(%error, "registering the metrics APIServices failed; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
                futures::future::pending::<()>().await
            }
            .boxed(),
        );
    }
    Ok(Started {
        addr,
        ca_pem,
        windows,
        stats,
        tasks,
    })
}

/// The metrics API's default port.
pub const DEFAULT_PORT: u16 = meshlet_crds::contract::ports::OPERATOR_METRICS_API_PORT;

/// Parses a duration flag: a number with a unit `ms`, `s`, `m` or `h`
/// (`10s`, `500ms`, `1m`); a bare number is seconds. Must be above zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().map_err(|_| {
        format!("{text:?}: expected a whole number with a unit ms, s, m or h (`10s`)")
    })?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m or h)")),
    };
    if d.is_zero() {
        return Err(format!("{text:?}: must be above zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("0s").unwrap_err().contains("above zero"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("s").is_err());
    }
}
