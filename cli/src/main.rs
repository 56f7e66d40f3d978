//! `meshlet`: Meshlet's command line.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    meshlet_cli::main()
}
