//! The `meshlet` command line: install, check, inject, stat, canary,
//! completion, version. One module per command; `kubeargs` turns the
//! kubectl-style flags into a client.
#![forbid(unsafe_code)]

pub mod canary;
pub mod check;
pub mod cli;
pub mod completion;
pub mod duration;
pub mod inject;
pub mod install;
pub mod kubeargs;
pub mod metrics_api;
pub mod stat;
pub mod version;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

/// The CLI's version, which is also the proxy version it expects on meshed pods.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Parses the command line, runs the command, and maps errors to exit codes:
/// 0 success, 1 a failure the command reports (a failed check, a rolled-back
/// canary, an error), 2 bad usage (clap's own).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let kube = cli.kube;
    match cli.command {
        Command::Install(args) => install::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Check(args) => check::run(&kube, &args).await,
        Command::Inject(args) => inject::run(&kube, &args).map(|()| ExitCode::SUCCESS),
        Command::Stat(args) => stat::run(&kube, &args).await.map(|()| ExitCode::SUCCESS),
        Command::Canary(args) => canary::run(&kube, &args).await,
        Command::Completion(args) => {
            completion::run(&args);
            Ok(ExitCode::SUCCESS)
        }
        Command::Version(args) => version::run(&kube, &args).await.map(|()| ExitCode::SUCCESS),
    }
}
