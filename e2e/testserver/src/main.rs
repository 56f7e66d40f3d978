//! `meshlet-testserver serve|get`: see the library docs.

use anyhow::Context;
use clap::{Parser, Subcommand};
use meshlet_testserver::{client, server};
use std::process::ExitCode;
use std::time::Duration;

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
        } => {
            anyhow::ensure!(count > 0, "--count must be at least 1");
            let targets = urls
                .iter()
                .map(|u| client::Target::parse(u))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut failed = 0;
            for (url, target) in urls.iter().zip(&targets) {
                if wait_ready > 0 {
                    let within = Duration::from_secs(wait_ready);
                    match client::wait_ready(target, expect_status, within).await {
                        Ok(took) => println!("READY {url} after {} ms", took.as_millis()),
                        Err(last) => println!("NOT READY {url} within {within:?}: {last:?}"),
                    }
                }
                let summary = client::run(target, count, Duration::from_secs(timeout)).await;
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
