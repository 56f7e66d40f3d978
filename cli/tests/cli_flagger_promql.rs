//! The PromQL Flagger's `linkerd` provider sends (Flagger v1.36.1,
//! pkg/metrics/observers/linkerd.go, rendered as Flagger renders it),
//! evaluated by a real Prometheus (Debian's `prometheus` package) scraping,
//! on loopback, the proxy's own metrics code (`meshlet_proxy::metrics`, the
//! text the proxy's admin `/metrics` serves) with the scrape settings of
//! deploy/observability/prometheus-scrape.yaml (honor_labels).
//!
//! Traffic: the canary Deployment `podinfo` serves 90 successes at 5 ms and
//! 10 failures (503) at 200 ms; the primary `podinfo-primary` only
//! successes (Flagger's `deployment=~"podinfo"` is a full match, so the
//! primary must not count). Expected: success rate 90 (%), p99 190 ms
//! (histogram_quantile inside the (100, 200] bucket).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use meshlet_crds::contract::metrics as names;
use meshlet_proxy::metrics::{Metrics, PeerId, RequestLabels};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Flagger's queries, verbatim apart from whitespace.
const SUCCESS_RATE: &str = r#"sum( rate( response_total{ namespace="{{ namespace }}", deployment=~"{{ target }}", classification!="failure", direction="inbound" }[{{ interval }}] ) ) / sum( rate( response_total{ namespace="{{ namespace }}", deployment=~"{{ target }}", direction="inbound" }[{{ interval }}] ) ) * 100"#;
const DURATION: &str = r#"histogram_quantile( 0.99, sum( rate( response_latency_ms_bucket{ namespace="{{ namespace }}", deployment=~"{{ target }}", direction="inbound" }[{{ interval }}] ) ) by (le) )"#;

fn render(query: &str) -> String {
    query
        .replace("{{ namespace }}", "test")
        .replace("{{ target }}", "podinfo")
        .replace("{{ interval }}", "1m")
}

fn inbound() -> RequestLabels {
    RequestLabels::inbound("true", PeerId::None)
}

fn traffic(m: &Metrics, n: usize, status: u16, latency_ms: u64) {
    for _ in 0..n {
        m.request(&inbound());
        m.response(inbound(), status, Duration::from_millis(latency_ms));
    }
}

/// Serves `/metrics` of every proxy at once (one target, like a pod per
/// port would be) in the OpenMetrics text the proxy's admin port serves.
async fn serve(proxies: Vec<Arc<Metrics>>) -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let proxies = proxies.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                // One exposition per proxy; join them without their "# EOF".
                let mut body: String = proxies
                    .iter()
                    .map(|m| m.encode().replace("# EOF\n", ""))
                    .collect::<Vec<_>>()
                    .join("");
                body = dedupe_metadata(&body);
                body.push_str("# EOF\n");
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tcp.write_all(head.as_bytes()).await;
                let _ = tcp.write_all(body.as_bytes()).await;
            });
        }
    });
    Ok(port)
}

/// Two expositions concatenated repeat each family's `# HELP/# TYPE/#
/// UNIT` and split families; OpenMetrics wants each family once, its
/// samples together. Regroup the samples under one header per family.
fn dedupe_metadata(text: &str) -> String {
    let mut order: Vec<String> = Vec::new();
    let mut families: std::collections::HashMap<String, (Vec<String>, Vec<String>)> =
        Default::default();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let family = rest.split_whitespace().nth(1).unwrap_or("").to_string();
            current = family.clone();
            let entry = families.entry(family.clone()).or_default();
            if !order.contains(&family) {
                order.push(family);
            }
            if !entry.0.contains(&line.to_string()) {
                entry.0.push(line.to_string());
            }
        } else if !line.is_empty() {
            families
                .entry(current.clone())
                .or_default()
                .1
                .push(line.to_string());
        }
    }
    let mut out = String::new();
    for family in order {
        let (meta, samples) = &families[&family];
        for l in meta.iter().chain(samples) {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

async fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut response = String::new();
    tcp.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").context("no HTTP head")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .context("no status")?
        .parse()?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One value of an instant query, `None` while Prometheus has no result.
async fn query(port: u16, promql: &str) -> Result<Option<f64>> {
    let (status, body) =
        http_get(port, &format!("/api/v1/query?query={}", url_encode(promql))).await?;
    if status != 200 {
        bail!("query {promql}: HTTP {status}: {body}");
    }
    let json: Value = serde_json::from_str(&body)?;
    let result = json["data"]["result"].as_array().context("no result")?;
    match result.as_slice() {
        [] => Ok(None),
        [one] => Ok(one["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .filter(|v: &f64| v.is_finite())),
        many => bail!("query {promql}: {} series, Flagger expects one", many.len()),
    }
}

#[tokio::test]
async fn flaggers_linkerd_queries_return_the_canarys_success_rate_and_p99() -> Result<()> {
    let prometheus = which("prometheus").context(
        "Prometheus is not installed: apt-get install prometheus (Debian's package is what this test runs)",
    )?;
    let workload = |deployment: &str, pod: &str| {
        Arc::new(Metrics::new(&[
            (names::NAMESPACE, "test".into()),
            (names::DEPLOYMENT, deployment.into()),
            (names::POD, pod.into()),
        ]))
    };
    let canary = workload("podinfo", "podinfo-7c9d8-abcde");
    let primary = workload("podinfo-primary", "podinfo-primary-5d8f-fghij");
    // Create every series before the first scrape, so rate() sees the
    // whole batch below as an increase. The first values are in the same
    // 9:1 proportion as the batch: rate()'s extrapolation (capped where a
    // counter would reach zero) then scales every series alike, and the
    // ratios Flagger computes come out exact.
    traffic(&canary, 9, 200, 5);
    traffic(&canary, 1, 503, 200);
    traffic(&primary, 1, 200, 5);
    let target = serve(vec![canary.clone(), primary.clone()]).await?;

    let dir = tempfile::tempdir()?;
    let web = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n\
             - job_name: meshlet-proxy\n  honor_labels: true\n  scrape_interval: 1s\n\
             \x20 static_configs: [{{targets: ['127.0.0.1:{target}']}}]\n"
        ),
    )?;
    let mut child = tokio::process::Command::new(&prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log"))?)
        .kill_on_drop(true)
        .spawn()?;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let wait = |what: &'static str| async move {
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        Ok(())
    };
    // Ready, and the target scraped once.
    while query(web, "up{job=\"meshlet-proxy\"} == 1")
        .await
        .ok()
        .flatten()
        .is_none()
    {
        if let Some(status) = child.try_wait()? {
            bail!(
                "prometheus exited ({status}): {}",
                std::fs::read_to_string(dir.path().join("prometheus.log"))?
            );
        }
        wait("the first scrape").await?;
    }
    traffic(&canary, 90, 200, 5);
    traffic(&canary, 10, 503, 200);
    traffic(&primary, 50, 200, 5);

    let success = render(SUCCESS_RATE);
    let duration = render(DURATION);
    // Two more scrapes carry the batch.
    let started = std::time::Instant::now();
    let (rate, p99) = loop {
        let rate = query(web, &success).await?;
        let p99 = query(web, &duration).await?;
        if let (Some(r), Some(p)) = (rate, p99) {
            if (r - 90.0).abs() < 1e-6 || started.elapsed() > Duration::from_secs(20) {
                break (r, p);
            }
        }
        wait("the batch in Prometheus").await?;
    };
    println!("Flagger request-success-rate: {rate}\nFlagger request-duration (p99 ms): {p99}");
    assert!((rate - 90.0).abs() < 1e-6, "success rate {rate}, want 90");
    assert!((p99 - 190.0).abs() < 1e-6, "p99 {p99} ms, want 190");
    child.kill().await?;
    Ok(())
}

fn which(binary: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(binary))
        .find(|p| p.is_file())
}
