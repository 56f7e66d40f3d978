//! Real processes in tests: the `meshlet-proxy` binary of this build, child
//! processes killed on drop, free loopback ports, and a plain HTTP/1.1 GET.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// A child process killed and reaped when dropped, so a failing test leaves
/// no orphans.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A plain HTTP/1.1 GET to `addr` with `Host: host`; (status code, body).
pub fn http_get(
    addr: std::net::SocketAddr,
    host: &str,
    path: &str,
) -> std::io::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((code, body.to_string()))
}

/// The binary `name` (`meshlet-proxy`, `meshlet-testserver`) of the same
/// build as the operator under test.
/// Cargo only builds binaries of the crate under test, so it is (re)built
/// here with the whole workspace's feature set: a no-op after `cargo test
/// --workspace`, and no second copy of every dependency in `target/`.
pub fn workspace_bin(name: &str) -> Result<PathBuf> {
    let operator = Path::new(env!("CARGO_BIN_EXE_meshlet-operator"));
    let profile_dir = operator.parent().context("operator binary directory")?;
    let target_dir = profile_dir.parent().context("target directory")?;
    let mut build = Command::new(env!("CARGO"));
    // `cargo test` runs this test with the package's CARGO_MANIFEST_DIR,
    // CARGO_PKG_* and the like set; build scripts (ring's, via cc) rerun
    // when those change, so passing them on would rebuild ring and all that
    // depends on it here, and again on the next plain `cargo test`.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|p| key.starts_with(p))
            || ["CARGO_PRIMARY_PACKAGE", "CARGO_TARGET_TMPDIR", "OUT_DIR"].contains(&&*key)
        {
            build.env_remove(&*key);
        }
    }
    build
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["build", "--workspace", "--all-targets"]);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build
        .status()
        .context("running cargo build --workspace --all-targets")?;
    let bin = profile_dir.join(name);
    if !status.success() || !bin.exists() {
        bail!(
            "the {name} binary is missing at {}: run `cargo build --workspace`",
            bin.display()
        );
    }
    Ok(bin)
}
