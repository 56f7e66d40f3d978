//! Runs the iptables commands (the only part of init that touches the
//! kernel, through the `iptables` binary).

use super::{Command, Kind};
use std::process::{Command as Process, Output};

fn run(binary: &str, args: &[String]) -> std::io::Result<Output> {
    Process::new(binary).args(args).output()
}

fn with_flag(args: &[String], from: &str, to: &str) -> Vec<String> {
    args.iter()
        .map(|a| if a == from { to.to_string() } else { a.clone() })
        .collect()
}

/// Runs `commands` with `binary` (e.g. `iptables`, `iptables-legacy`).
pub fn apply(binary: &str, commands: &[Command]) -> anyhow::Result<()> {
    for c in commands {
        match c.kind {
            Kind::CreateChain => {
                let out = run(binary, &c.args)?;
                let exists = String::from_utf8_lossy(&out.stderr).contains("exists");
                if !out.status.success() && !exists {
                    anyhow::bail!("{c}: {}", String::from_utf8_lossy(&out.stderr).trim());
                }
            }
            Kind::AppendOnce => {
                let check = with_flag(&c.args, "-A", "-C");
                if run(binary, &check)?.status.success() {
                    tracing::info!(rule = %c, "already present");
                    continue;
                }
                let out = run(binary, &c.args)?;
                if !out.status.success() {
                    anyhow::bail!("{c}: {}", String::from_utf8_lossy(&out.stderr).trim());
                }
            }
            Kind::Run => {
                let out = run(binary, &c.args)?;
                if !out.status.success() {
                    anyhow::bail!("{c}: {}", String::from_utf8_lossy(&out.stderr).trim());
                }
            }
        }
        tracing::info!(rule = %c, "applied");
    }
    Ok(())
}
