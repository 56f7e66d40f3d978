//! `kubectl-meshlet`: the same program as `meshlet`, under kubectl's plugin
//! naming, so `kubectl meshlet check` works once it is on the PATH.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    meshlet_cli::main()
}
