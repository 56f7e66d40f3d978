//! Scrapes every meshed pod's proxy admin `/metrics` (pod IP :
//! `PROXY_ADMIN_PORT`) on an interval into the [`Windows`]: many pods at
//! once up to a concurrency limit, each with a timeout, so one slow pod
//! cannot stall the rest; pods that disappear drop out of the window.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::Store;
use tokio::net::TcpStream;

use super::counters::{self, Scrape};
use super::window::{PodKey, Windows};
use crate::config::outbound::is_meshed;

/// Largest `/metrics` body read from a proxy.
const MAX_BODY: usize = 8 << 20;

/// How and how often to scrape.
#[derive(Clone, Debug)]
pub struct ScrapeSettings {
    /// Time between scrape rounds.
    pub interval: Duration,
    /// Longest a single scrape may take (connect, request, body).
    pub timeout: Duration,
    /// Scrapes in flight at once.
    pub concurrency: usize,
    /// The proxies' admin port.
    pub port: u16,
}

/// Counters of the scraper's own work.
#[derive(Debug, Default)]
pub struct ScrapeStats {
    /// Scrape rounds finished.
    pub rounds: AtomicU64,
    /// Successful scrapes.
    pub ok: AtomicU64,
    /// Failed scrapes (connect, timeout, status, parse).
    pub failed: AtomicU64,
    /// Duration of the last round, microseconds.
    pub last_round_micros: AtomicU64,
}

/// The meshed pods with an IP, by key.
pub fn targets(pods: &Store<Pod>) -> HashMap<PodKey, String> {
    pods.state()
        .iter()
        .filter(|p| is_meshed(p) && p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| {
            let ip = p
                .status
                .as_ref()?
                .pod_ip
                .clone()
                .filter(|ip| !ip.is_empty())?;
            let key = PodKey {
                namespace: p.metadata.namespace.clone()?,
                name: p.metadata.name.clone()?,
            };
            Some((key, ip))
        })
        .collect()
}

/// Scrapes forever.
pub async fn run(
    pods: Store<Pod>,
    windows: Arc<Windows>,
    settings: ScrapeSettings,
    stats: Arc<ScrapeStats>,
) {
    // No `wait_until_ready` here: kube-runtime's ready signal wakes only
    // the last of several concurrent waiters (the recompute loop waits on
    // it too), and a round over a not yet synced cache just finds fewer pods.
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        round(&pods, &windows, &settings, &stats).await;
    }
}

/// One round: every target once.
pub async fn round(
    pods: &Store<Pod>,
    windows: &Windows,
    settings: &ScrapeSettings,
    stats: &ScrapeStats,
) {
    let began = Instant::now();
    let live = targets(pods);
    tracing::trace!(targets = live.len(), "scrape round");
    windows.retain(&live, began);
    let results = futures::stream::iter(live)
        .map(|(pod, ip)| async move {
            let result = tokio::time::timeout(settings.timeout, scrape(&ip, settings.port)).await;
            (pod, ip, Instant::now(), result)
        })
        .buffer_unordered(settings.concurrency.max(1));
    let mut results = std::pin::pin!(results);
    while let Some((pod, ip, at, result)) = results.next().await {
        match result {
            Ok(Ok(scrape)) => {
                stats.ok.fetch_add(1, Ordering::Relaxed);
                windows.record(pod, &ip, at, scrape);
            }
            Ok(Err(error)) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(pod = %pod.name, namespace = %pod.namespace, %ip, %error, "scrape failed");
            }
            Err(_) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(pod = %pod.name, namespace = %pod.namespace, %ip, timeout = ?settings.timeout, "scrape timed out");
            }
        }
    }
    stats.rounds.fetch_add(1, Ordering::Relaxed);
    stats
        .last_round_micros
        .store(began.elapsed().as_micros() as u64, Ordering::Relaxed);
}

/// GET `http://ip:port/metrics` (HTTP/1.1, one connection) and parse it.
pub async fn scrape(ip: &str, port: u16) -> anyhow::Result<Scrape> {
    let host = if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    };
    let tcp = TcpStream::connect(&host).await?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    let conn = tokio::spawn(conn);
    let req = http::Request::get("/metrics")
        .header(http::header::HOST, &host)
        .header(http::header::ACCEPT, "text/plain")
        .body(Empty::<Bytes>::new())?;
    let rsp = sender.send_request(req).await?;
    anyhow::ensure!(rsp.status().is_success(), "status {}", rsp.status());
    let body = Limited::new(rsp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the body: {e}"))?
        .to_bytes();
    conn.abort();
    let text = std::str::from_utf8(&body)?;
    Ok(counters::from_text(text)?)
}
