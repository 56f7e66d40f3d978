//! `meshlet-loadgen`: the benchmark's upstream server, open-loop load
//! generator, and report writer.
//!
//! The load generator avoids coordinated omission the way wrk2 does: every
//! request has an intended start time on a fixed schedule (rate ÷
//! connections per connection), and its latency is measured from that
//! intended time, so a stall is charged to every request it delays.
#![forbid(unsafe_code)]

use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "meshlet-loadgen",
    about = "Benchmark upstream, load generator and report"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve `200 ok` on HTTP/1.1 until killed.
    Serve {
        /// Listen address.
        #[arg(long)]
        addr: SocketAddr,
    },
    /// Send load and print one JSON result line.
    Load {
        /// Where to connect.
        #[arg(long)]
        target: SocketAddr,
        /// Host header.
        #[arg(long, default_value = "web.bench.svc.cluster.local")]
        host: String,
        /// Requests per second; 0 = as fast as possible (closed loop).
        #[arg(long)]
        rate: u64,
        /// Seconds of load.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Keep-alive connections.
        #[arg(long, default_value_t = 16)]
        connections: u64,
        /// Scenario name for the result.
        #[arg(long)]
        scenario: String,
        /// Proxy process ids whose peak RSS and CPU are recorded.
        #[arg(long, value_delimiter = ',')]
        pids: Vec<u32>,
    },
    /// Write a test CA and client/server mesh certificates (PEM) for the
    /// mTLS scenario: `ca.pem`, `{client,server}.pem` and `.key`, for
    /// `spiffe://cluster.local/ns/bench/sa/{client,server}`.
    Certs {
        /// Directory to write into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Turn JSON result lines into a table and `proxy.json`.
    Report {
        /// JSON lines written by `load` (with proxy figures merged in).
        #[arg(long)]
        input: PathBuf,
        /// Where to write the JSON list.
        #[arg(long)]
        output: PathBuf,
        /// The proxy's idle RSS in KB (measured before the first run).
        #[arg(long)]
        idle_rss_kb: Option<u64>,
        /// Exit non-zero when any run had errors (CI's zero-error check).
        #[arg(long)]
        fail_on_errors: bool,
        /// JSON lines of alternating max-rate rounds of `one-proxy` and
        /// `nginx`: the throughput-per-core comparison uses their totals.
        #[arg(long)]
        per_core: Option<PathBuf>,
    },
}

/// One measured run; the keys `proxy.json` must carry.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct RunResult {
    scenario: String,
    rate_rps: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    achieved_rps: f64,
    errors: u64,
    #[serde(default)]
    proxy_rss_kb_max: u64,
    #[serde(default)]
    proxy_cpu_percent: f64,
    /// Private (anonymous) resident memory at the end of the run, in KB; the
    /// rest of the RSS is the binary and libc, file-backed and shared.
    #[serde(default)]
    proxy_rss_anon_kb: u64,
}

impl RunResult {
    /// Requests per second of proxy CPU (one core fully busy = 100 %);
    /// `None` without a CPU figure.
    fn rps_per_core(&self) -> Option<f64> {
        (self.proxy_cpu_percent > 0.0).then(|| self.achieved_rps / (self.proxy_cpu_percent / 100.0))
    }
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Serve { addr } => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?
            .block_on(serve(addr)),
        Command::Load {
            target,
            host,
            rate,
            duration,
            connections,
            scenario,
            pids,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let cpu_before: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p)).collect();
            let t0 = Instant::now();
            let mut r = rt.block_on(load(
                target,
                host,
                rate,
                Duration::from_secs(duration),
                connections,
                scenario,
            ))?;
            let secs = t0.elapsed().as_secs_f64();
            r.proxy_rss_kb_max = pids
                .iter()
                .map(|p| status_kb(*p, "VmHWM:"))
                .max()
                .unwrap_or(0);
            r.proxy_rss_anon_kb = pids
                .iter()
                .map(|p| status_kb(*p, "RssAnon:"))
                .max()
                .unwrap_or(0);
            r.proxy_cpu_percent = pids
                .iter()
                .zip(cpu_before)
                .map(|(p, before)| {
                    (cpu_ticks(*p).saturating_sub(before)) as f64 / TICKS_PER_SEC / secs * 100.0
                })
                .fold(0.0, f64::max);
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
        }
        Command::Report {
            input,
            output,
            idle_rss_kb,
            fail_on_errors,
            per_core,
        } => {
            let runs = report(&input, &output)?;
            let rounds = per_core.as_deref().map(read_runs).transpose()?;
            budgets(&runs, idle_rss_kb, rounds.as_deref());
            let failed: Vec<String> = runs
                .iter()
                .filter(|r| r.errors > 0)
                .map(|r| format!("{} at {} rps: {} errors", r.scenario, r.rate_rps, r.errors))
                .collect();
            if fail_on_errors && !failed.is_empty() {
                anyhow::bail!("runs with errors: {}", failed.join("; "));
            }
            Ok(())
        }
        Command::Certs { out } => certs(&out),
    }
}

/// Mesh certificates for the benchmark, as the operator's CA would issue
/// them: URI SAN = SPIFFE ID, DNS SAN = its TLS server name.
fn certs(out: &std::path::Path) -> anyhow::Result<()> {
    use meshlet_crds::contract::identity::SpiffeId;
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
    };
    std::fs::create_dir_all(out)?;
    let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut ca = CertificateParams::default();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    std::fs::write(out.join("ca.pem"), ca.self_signed(&ca_key)?.pem())?;
    let issuer = Issuer::new(ca, ca_key);
    for name in ["client", "server"] {
        let id = SpiffeId::new("cluster.local", "bench", name)?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut p = CertificateParams::default();
        p.subject_alt_names = vec![
            SanType::URI(id.to_string().try_into()?),
            SanType::DnsName(id.tls_server_name().try_into()?),
        ];
        p.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        std::fs::write(
            out.join(format!("{name}.pem")),
            p.signed_by(&key, &issuer)?.pem(),
        )?;
        std::fs::write(out.join(format!("{name}.key")), key.serialize_pem())?;
    }
    Ok(())
}

/// Linux's USER_HZ; 100 on every mainstream configuration.
const TICKS_PER_SEC: f64 = 100.0;

/// A KB figure from `/proc/PID/status`, e.g. `VmHWM:` (peak RSS).
fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime
            // are fields 14 and 15 overall.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

async fn serve(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(|_req| async {
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn connect(
    target: SocketAddr,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

struct WorkerResult {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn load(
    target: SocketAddr,
    host: String,
    rate: u64,
    duration: Duration,
    connections: u64,
    scenario: String,
) -> anyhow::Result<RunResult> {
    let start = Instant::now() + Duration::from_millis(50);
    let end = start + duration;
    let mut tasks = Vec::new();
    for k in 0..connections {
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = WorkerResult {
                latencies_us: Vec::new(),
                errors: 0,
            };
            let mut sender = connect(target).await.ok();
            // Per-connection schedule: request j starts at start + (k + j·C)/rate.
            let interval =
                (rate > 0).then(|| Duration::from_secs_f64(connections as f64 / rate as f64));
            let offset =
                interval.map_or(Duration::ZERO, |i| i.mul_f64(k as f64 / connections as f64));
            let mut j: u32 = 0;
            loop {
                let intended = match interval {
                    Some(i) => start + offset + i * j,
                    None => Instant::now().max(start),
                };
                if intended >= end {
                    break;
                }
                // Early: wait for the slot, and measure from the actual send,
                // so the timer's millisecond granularity is not counted as
                // latency. Late (this connection is still behind on earlier
                // requests): measure from the intended time, so stalls are
                // charged to every request they delay (no coordinated
                // omission).
                let early = intended > Instant::now();
                let from = if early {
                    tokio::time::sleep_until(intended.into()).await;
                    Instant::now()
                } else {
                    intended
                };
                j += 1;
                let ok = async {
                    if sender.as_ref().is_none_or(|s| s.is_closed()) {
                        sender = Some(connect(target).await.ok()?);
                    }
                    let s = sender.as_mut()?;
                    s.ready().await.ok()?;
                    let req = http::Request::get("/")
                        .header("host", &host)
                        .body(Empty::new())
                        .ok()?;
                    let rsp = s.send_request(req).await.ok()?;
                    let ok = rsp.status().is_success();
                    rsp.into_body().collect().await.ok()?;
                    Some(ok)
                }
                .await;
                match ok {
                    Some(true) => out
                        .latencies_us
                        .push(from.elapsed().as_micros().min(u32::MAX as u128) as u32),
                    _ => {
                        out.errors += 1;
                        sender = None;
                    }
                }
            }
            out
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let r = t.await?;
        all.extend(r.latencies_us);
        errors += r.errors;
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        all[i] as f64 / 1000.0
    };
    Ok(RunResult {
        scenario,
        rate_rps: rate,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        max_ms: all.last().map_or(0.0, |m| *m as f64 / 1000.0),
        achieved_rps: all.len() as f64 / duration.as_secs_f64(),
        errors,
        proxy_rss_kb_max: 0,
        proxy_cpu_percent: 0.0,
        proxy_rss_anon_kb: 0,
    })
}

/// The cost of mesh mTLS: the two-proxy mTLS run against the plaintext
/// one at the same rate.
fn mtls_cost(runs: &[RunResult]) {
    let find = |name: &str, rate: u64| {
        runs.iter()
            .find(|r| r.scenario == name && r.rate_rps == rate)
    };
    let mut printed = false;
    for plain in runs
        .iter()
        .filter(|r| r.scenario == "two-proxies-plaintext")
    {
        let Some(tls) = find("two-proxies-mtls", plain.rate_rps) else {
            continue;
        };
        if !printed {
            println!("\nmTLS cost (two-proxies-mtls / two-proxies-plaintext):");
            printed = true;
        }
        let rate = if plain.rate_rps == 0 {
            "max".to_string()
        } else {
            plain.rate_rps.to_string()
        };
        println!(
            "  {rate:>5} rps: p50 x{:.2} ({:+.3} ms), p99 x{:.2} ({:+.3} ms), achieved x{:.2}, rss {:+} KB, cpu {:.1}% vs {:.1}%",
            tls.p50_ms / plain.p50_ms,
            tls.p50_ms - plain.p50_ms,
            tls.p99_ms / plain.p99_ms,
            tls.p99_ms - plain.p99_ms,
            tls.achieved_rps / plain.achieved_rps,
            tls.proxy_rss_kb_max as i64 - plain.proxy_rss_kb_max as i64,
            tls.proxy_cpu_percent,
            plain.proxy_cpu_percent,
        );
    }
}

fn read_runs(path: &std::path::Path) -> anyhow::Result<Vec<RunResult>> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?)
}

fn report(input: &std::path::Path, output: &std::path::Path) -> anyhow::Result<Vec<RunResult>> {
    let runs = read_runs(input)?;
    let direct = |rate: u64| {
        runs.iter()
            .find(|r| r.scenario == "direct" && r.rate_rps == rate)
    };
    println!(
        "{:<22} {:>8} {:>9} {:>9} {:>9} {:>11} {:>7} {:>9} {:>9} {:>6} {:>9} {:>9} {:>9}",
        "scenario",
        "rate",
        "p50 ms",
        "p99 ms",
        "max ms",
        "achieved",
        "errors",
        "rss KB",
        "anon KB",
        "cpu %",
        "rps/core",
        "p50/dir",
        "p99/dir"
    );
    for r in &runs {
        let (p50r, p99r) = match direct(r.rate_rps) {
            Some(d) if d.p50_ms > 0.0 && d.p99_ms > 0.0 => {
                (r.p50_ms / d.p50_ms, r.p99_ms / d.p99_ms)
            }
            _ => (f64::NAN, f64::NAN),
        };
        let rps_per_core = r.rps_per_core().unwrap_or(f64::NAN);
        let rate = if r.rate_rps == 0 {
            "max".to_string()
        } else {
            r.rate_rps.to_string()
        };
        println!(
            "{:<22} {:>8} {:>9.3} {:>9.3} {:>9.3} {:>11.1} {:>7} {:>9} {:>9} {:>6.1} {:>9.0} {:>9.2} {:>9.2}",
            r.scenario,
            rate,
            r.p50_ms,
            r.p99_ms,
            r.max_ms,
            r.achieved_rps,
            r.errors,
            r.proxy_rss_kb_max,
            r.proxy_rss_anon_kb,
            r.proxy_cpu_percent,
            rps_per_core,
            p50r,
            p99r
        );
    }
    mtls_cost(&runs);
    if let Some(dir) = output.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(output, serde_json::to_string_pretty(&runs)?)?;
    println!("wrote {}", output.display());
    Ok(runs)
}

/// The proxy budgets of the architecture (and issue #4), each checked
/// against this run's figures: met, or missed by how much. Timing figures
/// depend on the machine, so this informs; only errors can fail a run.
fn budgets(runs: &[RunResult], idle_rss_kb: Option<u64>, per_core_rounds: Option<&[RunResult]>) {
    let find = |scenario: &str, rate: u64| {
        runs.iter()
            .find(|r| r.scenario == scenario && r.rate_rps == rate)
    };
    let line = |ok: bool, what: String| {
        println!("  {} {what}", if ok { "met   " } else { "MISSED" });
    };
    println!("\nbudgets:");
    if let Some(kb) = idle_rss_kb {
        line(kb <= 3 * 1024, format!("idle RSS {kb} KB <= 3072 KB"));
    }
    if let Some(r) = find("two-proxies-mtls", 1000).or(find("two-proxies-plaintext", 1000)) {
        line(
            r.proxy_rss_kb_max <= 10 * 1024,
            format!(
                "peak RSS at 1,000 rps ({}) {} KB <= 10240 KB (goal 5120)",
                r.scenario, r.proxy_rss_kb_max
            ),
        );
    }
    if let Some(d) = find("direct", 1000) {
        for (scenario, hops) in [
            ("one-proxy", 1.0),
            ("two-proxies-plaintext", 2.0),
            ("two-proxies-mtls", 2.0),
        ] {
            if let Some(r) = find(scenario, 1000) {
                let added = r.p99_ms - d.p99_ms;
                line(
                    added <= 1.0,
                    format!("added p99 at 1,000 rps, {scenario}: {added:+.3} ms <= 1 ms ({:+.3} ms per hop)", added / hops),
                );
            }
        }
    }
    for r in runs
        .iter()
        .filter(|r| r.scenario.starts_with("two-proxies") && r.rate_rps == 5000)
    {
        line(
            r.errors == 0,
            format!("errors at 5,000 rps, {}: {}", r.scenario, r.errors),
        );
    }
    if let Some(rounds) = per_core_rounds {
        match per_core_vs_nginx(rounds) {
            Some(c) => line(
                c.ratio >= 1.0,
                format!(
                    "max throughput per core vs nginx: x{:.2} ({:.0} vs {:.0} rps/core; {} alternating 5 s rounds each, per-round ratios x{:.2}..x{:.2}, median x{:.2})",
                    c.ratio, c.proxy, c.nginx, c.rounds, c.min, c.max, c.median
                ),
            ),
            None => line(false, "max throughput per core vs nginx: no complete rounds".into()),
        }
    } else if let (Some(p), Some(n)) = (find("one-proxy", 0), find("nginx", 0)) {
        if let (Some(p), Some(n)) = (p.rps_per_core(), n.rps_per_core()) {
            line(
                p >= n,
                format!(
                    "max throughput per core vs nginx: x{:.2} ({p:.0} vs {n:.0} rps/core)",
                    p / n
                ),
            );
        }
    }
}

/// Throughput per core of the proxy against nginx's over alternating rounds.
struct PerCore {
    /// Total requests per CPU second, proxy over nginx.
    ratio: f64,
    proxy: f64,
    nginx: f64,
    rounds: usize,
    min: f64,
    median: f64,
    max: f64,
}

/// Compares `one-proxy` and `nginx` rounds (equal durations, in pairs):
/// total requests per CPU second of each, and the spread of the per-pair
/// ratios.
fn per_core_vs_nginx(rounds: &[RunResult]) -> Option<PerCore> {
    let of = |name: &str| -> Vec<&RunResult> {
        rounds
            .iter()
            .filter(|r| r.scenario == name && r.proxy_cpu_percent > 0.0)
            .collect()
    };
    let (p, n) = (of("one-proxy"), of("nginx"));
    let pairs = p.len().min(n.len());
    if pairs == 0 {
        return None;
    }
    let total = |rs: &[&RunResult]| {
        rs[..pairs].iter().map(|r| r.achieved_rps).sum::<f64>()
            / (rs[..pairs].iter().map(|r| r.proxy_cpu_percent).sum::<f64>() / 100.0)
    };
    let mut ratios: Vec<f64> = p
        .iter()
        .zip(&n)
        .filter_map(|(p, n)| Some(p.rps_per_core()? / n.rps_per_core()?))
        .collect();
    ratios.sort_by(f64::total_cmp);
    let (proxy, nginx) = (total(&p), total(&n));
    Some(PerCore {
        ratio: proxy / nginx,
        proxy,
        nginx,
        rounds: pairs,
        min: ratios[0],
        median: ratios[pairs / 2],
        max: ratios[pairs - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(scenario: &str, rps: f64, cpu: f64) -> RunResult {
        RunResult {
            scenario: scenario.into(),
            rate_rps: 0,
            p50_ms: 0.1,
            p99_ms: 0.2,
            max_ms: 1.0,
            achieved_rps: rps,
            errors: 0,
            proxy_rss_kb_max: 0,
            proxy_cpu_percent: cpu,
            proxy_rss_anon_kb: 0,
        }
    }

    #[test]
    fn per_core_compares_totals_of_alternating_rounds() {
        // Round 2 ran on a machine twice as fast: totals, not one pair.
        let rounds = [
            round("one-proxy", 10_000.0, 50.0),
            round("nginx", 8_000.0, 50.0),
            round("one-proxy", 40_000.0, 100.0),
            round("nginx", 30_000.0, 100.0),
            round("one-proxy", 1.0, 0.0), // no CPU figure: left out
        ];
        let c = per_core_vs_nginx(&rounds).unwrap();
        assert_eq!(c.rounds, 2);
        assert!((c.proxy - 50_000.0 / 1.5).abs() < 1e-6, "{}", c.proxy);
        assert!((c.nginx - 38_000.0 / 1.5).abs() < 1e-6, "{}", c.nginx);
        assert!((c.ratio - 50.0 / 38.0).abs() < 1e-9);
        assert!((c.min - 1.25).abs() < 1e-9 && (c.max - 40.0 / 30.0).abs() < 1e-9);
        assert!(per_core_vs_nginx(&rounds[..1]).is_none());
    }
}
