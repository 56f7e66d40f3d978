//! `meshlet-testserver serve|get`: see the library docs.

use anyhow::Context;
use clap::{Parser, Subcommand};
use meshlet_testserver::{client, server};
use std::process::ExitCode;
use std::time::Duration;

/// The Meshlet proxy's readiness on its admin port
/// (`contract::ports::PROXY_ADMIN_PORT`, `PROXY_READY_PATH`), never redirected.
const PROXY_READY_URL: &str = "http://127.0.0.1:4191/ready";

#[derive(Parser)]
#[command(
    version,
    about = "Tiny HTTP server and client for Meshlet's end-to-end tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer every request 200 with JSON {pod, version, method, path}.
    Serve {
        /// TCP port to listen on (all addresses).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Version reported in each reply.
        #[arg(long = "version-label", env = "VERSION", default_value = "v1")]
        version: String,
        /// Pod name reported in each reply.
        #[arg(long, env = "POD_NAME", default_value = "")]
        pod_name: String,
    },
    /// Fetch each URL COUNT times and print status codes and versions seen.
    Get {
        /// http://host[:port][/path], one or more
        #[arg(required = true)]
        urls: Vec<String>,
        /// How many requests, each on a fresh connection.
        #[arg(long, default_value_t = 1)]
        count: usize,
        /// Every response must have this status, else exit 1.
        #[arg(long, default_value_t = 200)]
        expect_status: u16,
        /// Seconds each request may take.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
        /// First retry each URL for up to this many seconds until it answers
        /// EXPECT_STATUS once; then COUNT requests that must all succeed.
        #[arg(long, default_value_t = 0)]
        wait_ready: u64,
        /// First wait up to this many seconds for the pod's Meshlet proxy to
        /// be ready (its admin `/ready` on localhost): a meshed client that
        /// starts before its proxy has a config would not be routed yet.
        #[arg(long, default_value_t = 0)]
        wait_proxy: u64,
        /// HTTP method of every request.
        #[arg(long, default_value = "GET")]
        method: String,
        /// Request header `Name: value` (repeatable).
        #[arg(long = "header")]
        headers: Vec<String>,
        /// Milliseconds to pause between requests.
        #[arg(long, default_value_t = 0)]
        interval_ms: u64,
        /// Print `CHANGE <unix ms> <version>` whenever the answering version
        /// changes (to time a TrafficSplit weight shift).
        #[arg(long)]
        print_changes: bool,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("meshlet-testserver: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            port,
            version,
            pod_name,
        } => {
            let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
                .await
                .with_context(|| format!("--port {port}: cannot listen"))?;
            println!("serving on :{port} as pod={pod_name:?} version={version:?}");
            let identity = server::Identity {
                pod: pod_name,
                version,
            };
            // As PID 1 in a container, SIGTERM is ignored unless handled.
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = server::run(listener, identity) => r.context("serving")?,
                _ = term.recv() => println!("SIGTERM: exiting"),
                _ = tokio::signal::ctrl_c() => println!("interrupted: exiting"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Get {
            urls,
            count,
            expect_status,
            timeout,
            wait_ready,
            wait_proxy,
            method,
            headers,
            interval_ms,
            print_changes,
        } => {
            anyhow::ensure!(count > 0, "--count must be at least 1");
            let targets = urls
                .iter()
                .map(|u| {
                    let mut t = client::Target::parse(u)?.with_method(&method)?;
                    for h in &headers {
                        t = t.with_header(h)?;
                    }
                    Ok(t)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            if wait_proxy > 0 {
                let ready = client::Target::parse(PROXY_READY_URL)?;
                let within = Duration::from_secs(wait_proxy);
                match client::wait_ready(&ready, 200, within).await {
                    Ok(took) => println!("PROXY READY after {} ms", took.as_millis()),
                    Err(last) => {
                        println!("PROXY NOT READY within {within:?}: {last:?}");
                        return Ok(ExitCode::FAILURE);
                    }
                }
            }
            let options = client::RunOptions {
                count,
                timeout: Duration::from_secs(timeout),
                interval: Duration::from_millis(interval_ms),
                print_changes,
            };
            let mut failed = 0;
            for (url, target) in urls.iter().zip(&targets) {
                if wait_ready > 0 {
                    let within = Duration::from_secs(wait_ready);
                    match client::wait_ready(target, expect_status, within).await {
                        Ok(took) => println!("READY {url} after {} ms", took.as_millis()),
                        Err(last) => println!("NOT READY {url} within {within:?}: {last:?}"),
                    }
                }
                println!("START {} {url}", client::unix_ms());
                let summary = client::run_with(target, &options).await;
                println!("END {} {url}", client::unix_ms());
                print!("GET {url} x{count}\n{summary}");
                if summary.all_status(expect_status) {
                    println!("OK {url}: all {count} answered {expect_status}");
                } else {
                    println!("FAIL {url}: expected every request to answer {expect_status}");
                    failed += 1;
                }
            }
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
