//! Runs the control-plane processes and makes sure none outlives the test.
//!
//! Two layers: [`ServerProcess`] kills and reaps its child on drop (normal
//! return and panics), and a [`Watchdog`] covers the cases where drop never
//! runs — a `static` shared environment at process exit, `abort`, SIGKILL of
//! the test binary. The watchdog is a tiny `sh` that reads the servers' PIDs
//! from a pipe whose only writer is the test process; when that process is
//! gone the pipe reaches EOF, and the watchdog kills the PIDs and removes the
//! environment's directory. (`PR_SET_PDEATHSIG` would need `unsafe`
//! `pre_exec`; this needs nothing.)

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};

use anyhow::{Context, Result};

/// Kills the recorded PIDs once its stdin closes, then removes `$1`.
const WATCHDOG_SCRIPT: &str = r#"
pids=""
while read -r pid; do pids="$pids $pid"; done
[ -n "$pids" ] && kill -9 $pids 2>/dev/null
sleep 1
rm -rf -- "$1"
"#;

/// Guards the processes of one environment against orphaning.
pub struct Watchdog {
    child: Child,
    /// Only ever `None` in tests that simulate the test process dying.
    pipe: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts a watchdog that removes `dir` after killing what it watches.
    pub fn spawn(dir: &Path) -> Result<Watchdog> {
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("meshlet-testenv-watchdog")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C aimed at `cargo test` must not
            // kill the watchdog before it has done its job.
            .process_group(0)
            .spawn()
            .context("starting the watchdog (/bin/sh)")?;
        let pipe = child.stdin.take();
        Ok(Watchdog { child, pipe })
    }

    fn watch(&mut self, pid: u32) -> Result<()> {
        let pipe = self
            .pipe
            .as_mut()
            .context("the watchdog's pipe is closed")?;
        writeln!(pipe, "{pid}").context("telling the watchdog about a process")
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // The servers were already killed and reaped by their own drops;
        // stop the watchdog before it acts on PIDs that may be reused.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One running server (etcd, kube-apiserver, ...) with its output in a log file.
pub struct ServerProcess {
    name: String,
    child: Child,
    log_path: PathBuf,
}

impl ServerProcess {
    /// Starts `binary` with `args`, stdout and stderr appended to `log_path`,
    /// and registers it with `watchdog`.
    pub fn spawn(
        name: &str,
        binary: &Path,
        args: &[String],
        log_path: &Path,
        watchdog: &mut Watchdog,
    ) -> Result<ServerProcess> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Keep terminal signals for the test binary; the watchdog and
            // our drop decide when servers stop.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name} ({})", binary.display()))?;
        let process = ServerProcess {
            name: name.to_string(),
            child,
            log_path: log_path.to_path_buf(),
        };
        // If this fails the process is still killed by our own drop.
        watchdog.watch(process.child.id())?;
        Ok(process)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The exit status if the process has already stopped.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `lines` lines of the process's log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path, lines)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // SIGKILL: the data dir is thrown away, so a graceful stop buys nothing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `lines` lines of a file (reads at most the final 64 KiB).
pub fn log_tail(path: &Path, lines: usize) -> String {
    const MAX: u64 = 64 * 1024;
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(MAX)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn alive(pid: u32) -> bool {
        // A zombie still has a /proc entry; check its state too.
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    }

    fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if cond() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    #[test]
    fn drop_kills_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let mut watchdog = Watchdog::spawn(dir.path()).unwrap();
        let server = ServerProcess::spawn(
            "sleeper",
            Path::new("/bin/sleep"),
            &["600".to_string()],
            &dir.path().join("sleeper.log"),
            &mut watchdog,
        )
        .unwrap();
        let pid = server.child.id();
        assert!(alive(pid));
        drop(server);
        assert!(!alive(pid));
    }

    #[test]
    fn watchdog_kills_servers_and_removes_the_dir_when_its_pipe_closes() {
        // Simulate the test process dying: close the pipe without our drops.
        let dir = tempfile::tempdir().unwrap().keep();
        let mut watchdog = Watchdog::spawn(&dir).unwrap();
        let mut sleeper = Command::new("/bin/sleep").arg("600").spawn().unwrap();
        let pid = sleeper.id();
        watchdog.watch(pid).unwrap();
        drop(watchdog.pipe.take());
        assert!(
            wait_until(|| sleeper.try_wait().unwrap().is_some()),
            "watchdog did not kill the server"
        );
        assert!(
            wait_until(|| !dir.exists()),
            "watchdog did not remove the dir"
        );
        assert!(watchdog.child.wait().unwrap().success());
    }

    #[test]
    fn log_tail_returns_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.log");
        std::fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(log_tail(&path, 2), "c\nd");
        assert_eq!(log_tail(&path, 10), "a\nb\nc\nd");
        assert!(log_tail(&dir.path().join("missing"), 3).contains("no log"));
    }
}
