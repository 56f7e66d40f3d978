//! `meshlet install`: prints the install manifests (placeholder until
//! deploy/meshlet.yaml lands).

use clap::Args;

/// The chart's options as flags.
#[derive(Args, Debug, Clone, Default)]
pub struct InstallValues {}

/// Runs `meshlet install`.
pub fn run(_args: &crate::cli::InstallArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
