//! `meshlet completion SHELL`: the shell completion script, from clap.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionArgs};

/// Writes the completion script for `args.shell` to standard output.
pub fn run(args: &CompletionArgs) {
    let mut command = Cli::command();
    clap_complete::generate(args.shell, &mut command, "meshlet", &mut std::io::stdout());
}
