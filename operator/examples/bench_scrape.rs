//! Cost of the TrafficMetrics scraper: N fake pods (HTTP servers on
//! 127.0.x.y exposing the real proxy `Metrics` with inbound series and
//! outbound series to 10 services), scraped in rounds by the operator's
//! scraper; prints the round time, the per-scrape cost, the window's size,
//! the cost of a query over every pod, and the RSS the window adds.
//!
//! `cargo run --release --example bench_scrape -- [pods]` (default 1000).

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::runtime::{reflector, watcher};
use meshlet_crds::contract::metrics as names;
use meshlet_operator::trafficmetrics::scraper::{self, ScrapeSettings, ScrapeStats};
use meshlet_operator::trafficmetrics::Windows;
use meshlet_proxy::metrics::{Metrics, PeerId, RequestLabels};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

fn labels(direction: &'static str, service: &str) -> RequestLabels {
    RequestLabels {
        direction,
        dst_namespace: if service.is_empty() {
            String::new()
        } else {
            "bench".into()
        },
        dst_service: service.into(),
        route: String::new(),
        tls: "true",
        peer_id: PeerId::None,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let pods: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1000);
    let port = 4191 + (std::process::id() % 1000) as u16 + 20000;
    let (reader, mut writer) = reflector::store::<Pod>();
    for i in 0..pods {
        let ip = format!("127.0.{}.{}", 1 + i / 250, 2 + i % 250);
        let m = Arc::new(Metrics::new(&[(names::NAMESPACE, "bench".into())]));
        // Some traffic so every series and bucket line exists.
        for status in [200u16, 503] {
            m.response(
                labels(names::DIRECTION_INBOUND, ""),
                status,
                Duration::from_millis(3),
            );
            for s in 0..10 {
                m.response(
                    labels(names::DIRECTION_OUTBOUND, &format!("svc-{s}")),
                    status,
                    Duration::from_millis(7),
                );
            }
        }
        let listener = tokio::net::TcpListener::bind((ip.as_str(), port)).await?;
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let m = m.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |_| {
                        let body = Bytes::from(m.encode());
                        async move { Ok::<_, Infallible>(hyper::Response::new(Full::new(body))) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("pod-{i}"), "namespace": "bench", "labels": {"meshlet.dev/meshed": "true"}},
        }))?;
        pod.status = Some(PodStatus {
            pod_ip: Some(ip),
            ..Default::default()
        });
        writer.apply_watcher_event(&watcher::Event::Apply(pod));
    }
    let body = fetch(port).await?;
    let body_len = body.len();
    // Parsing alone (the operator's CPU per scrape, without the fake
    // proxies' encoding, which shares this process).
    let t = Instant::now();
    for _ in 0..200 {
        std::hint::black_box(meshlet_operator::trafficmetrics::counters::from_text(
            &body,
        )?);
    }
    let parse = t.elapsed() / 200;
    let windows = Windows::new(Duration::from_secs(30));
    let settings = ScrapeSettings {
        interval: Duration::from_secs(10),
        timeout: Duration::from_secs(2),
        concurrency: 32,
        port,
    };
    let stats = ScrapeStats::default();
    let rss_before = rss_kib();
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        scraper::round(&reader, &windows, &settings, &stats).await;
        rounds.push(t.elapsed());
    }
    let rss_after = rss_kib();
    let t = Instant::now();
    let increases = windows.increases(Instant::now());
    let query = t.elapsed();
    rounds.sort();
    let median = rounds[rounds.len() / 2];
    println!(
        "bench_scrape: {pods} pods, {body_len} B of /metrics each, concurrency {}",
        settings.concurrency
    );
    println!(
        "  parse of one /metrics body: {:.0} µs",
        parse.as_secs_f64() * 1e6
    );
    println!(
        "  scrapes ok {} failed {}",
        stats.ok.load(Ordering::Relaxed),
        stats.failed.load(Ordering::Relaxed)
    );
    println!(
        "  round (all pods) median {:.1} ms, max {:.1} ms; {:.0} µs per pod (fake proxies encoding in the same process included)",
        median.as_secs_f64() * 1e3,
        rounds.last().unwrap().as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e6 / pods as f64
    );
    println!(
        "  window: {:?} (pods, scrapes held); RSS +{} KiB after 5 rounds",
        windows.size(),
        rss_after.saturating_sub(rss_before)
    );
    println!(
        "  increases over every pod ({} pods): {:.2} ms",
        increases.len(),
        query.as_secs_f64() * 1e3
    );
    Ok(())
}

/// One fake pod's /metrics body.
async fn fetch(port: u16) -> anyhow::Result<String> {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.1.2", port)).await?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut buf = Vec::new();
    tcp.read_to_end(&mut buf).await?;
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
    Ok(String::from_utf8_lossy(&buf[head_end..]).into_owned())
}
