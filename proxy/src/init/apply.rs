//! Runs the iptables commands (the only part of init that touches the
//! kernel, through the `iptables` binary).

use super::{Command, Kind};
use std::process::{Command as Process, Output};

fn run(binary: &str, args: &[String]) -> std::io::Result<Output> {
    Process::new(binary)
        .args(args)
        .output()
        .map_err(|e| std::io::Error::new(e.kind(), format!("--iptables {binary}: {e}")))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::{rules, RedirectSpec};

    /// A stand-in `iptables` that logs its arguments; chains already exist
    /// and `-C` finds a rule when `present` is set.
    fn fake_iptables(dir: &std::path::Path, present: bool) -> String {
        let log = dir.join("log");
        let script = dir.join("iptables");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$*\" >> {log}\ncase \"$*\" in\n  *' -N '*) echo 'iptables: Chain already exists.' >&2; exit 1;;\n  *' -C '*) exit {check};;\nesac\nexit 0\n",
                log = log.display(),
                check = if present { 0 } else { 1 },
            ),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .args(["+x", script.to_str().unwrap()])
            .status()
            .unwrap();
        script.to_string_lossy().into_owned()
    }

    fn spec() -> RedirectSpec {
        RedirectSpec {
            proxy_uid: 2102,
            inbound_port: 4143,
            outbound_port: 4140,
            inbound_skip_ports: vec!["4191".into()],
            outbound_skip_ports: vec![],
        }
    }

    #[test]
    fn applies_rules_tolerating_existing_chains_and_adding_jumps_once() {
        let dir = std::env::temp_dir().join(format!("meshlet-init-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for present in [false, true] {
            let _ = std::fs::remove_file(dir.join("log"));
            let bin = fake_iptables(&dir, present);
            apply(&bin, &rules(&spec())).unwrap();
            let log = std::fs::read_to_string(dir.join("log")).unwrap();
            assert!(log.contains("-t nat -N MESHLET_INBOUND"), "{log}");
            assert!(
                log.contains("-t nat -A MESHLET_OUTBOUND -p tcp -j REDIRECT --to-port 4140"),
                "{log}"
            );
            assert!(
                log.contains("-t nat -C PREROUTING -p tcp -j MESHLET_INBOUND"),
                "{log}"
            );
            let appended = log.contains("-t nat -A PREROUTING -p tcp -j MESHLET_INBOUND");
            assert_eq!(appended, !present, "{log}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_missing_binary_is_an_error_naming_the_flag() {
        let e = apply("/nonexistent/iptables", &rules(&spec())).unwrap_err();
        assert!(
            e.to_string().contains("--iptables /nonexistent/iptables"),
            "{e}"
        );
    }
}
