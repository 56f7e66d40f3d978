//! Waits for a started server to become ready, or explains why it did not.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::ports::is_bind_conflict;
use crate::process::ServerProcess;

/// How a wait ended unsuccessfully.
#[derive(Debug)]
pub enum NotReady {
    /// The server exited because its port was taken: retry with new ports.
    PortTaken,
    /// Anything else; the message includes the server's log tail.
    Failed(anyhow::Error),
}

/// Polls `probe` until it returns `true`, the process exits, or `timeout` passes.
pub async fn wait_ready<F, Fut>(
    process: &mut ServerProcess,
    timeout: Duration,
    mut probe: F,
) -> Result<(), NotReady>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error: Option<anyhow::Error>;
    loop {
        if let Some(status) = process.exited() {
            let tail = process.log_tail(40);
            if is_bind_conflict(&tail) {
                return Err(NotReady::PortTaken);
            }
            return Err(NotReady::Failed(anyhow!(
                "{} exited ({status}) before becoming ready; last lines of {}:\n{tail}",
                process.name(),
                process.log_path().display()
            )));
        }
        match probe().await {
            Ok(true) => return Ok(()),
            Ok(false) => last_error = None,
            Err(e) => last_error = Some(e),
        }
        if Instant::now() >= deadline {
            let cause = last_error
                .map(|e| format!(" (last probe error: {e:#})"))
                .unwrap_or_default();
            return Err(NotReady::Failed(anyhow!(
                "{} not ready after {timeout:?}{cause}; last lines of {}:\n{}",
                process.name(),
                process.log_path().display(),
                process.log_tail(40)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET http://127.0.0.1:<port><path>` answers 200 (plain HTTP: etcd's
/// loopback client port). A tiny request by hand keeps an HTTP client
/// dependency out for one probe.
pub async fn http_ok(port: u16, path: &str) -> Result<bool> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut response)).await??;
    let status_line = String::from_utf8_lossy(&response);
    Ok(status_line.starts_with("HTTP/1.0 200") || status_line.starts_with("HTTP/1.1 200"))
}

/// `GET /readyz` through `client` answers `ok`.
pub async fn apiserver_ready(client: &kube::Client) -> Result<bool> {
    let request = http::Request::get("/readyz").body(Vec::new())?;
    let body = client.request_text(request).await?;
    Ok(body.trim() == "ok")
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::process::Watchdog;
    use std::path::Path;

    fn spawn_sh(dir: &Path, watchdog: &mut Watchdog, script: &str) -> ServerProcess {
        ServerProcess::spawn(
            "fake-server",
            Path::new("/bin/sh"),
            &["-c".to_string(), script.to_string()],
            &dir.join("fake.log"),
            watchdog,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_lost_port_race_asks_for_a_retry() {
        let dir = tempfile::tempdir().unwrap();
        let mut watchdog = Watchdog::spawn(dir.path()).unwrap();
        let mut server = spawn_sh(
            dir.path(),
            &mut watchdog,
            "echo 'listen tcp 127.0.0.1:1234: bind: address already in use' >&2; exit 1",
        );
        let result = wait_ready(&mut server, Duration::from_secs(10), || async { Ok(false) }).await;
        assert!(matches!(result, Err(NotReady::PortTaken)), "{result:?}");
    }

    #[tokio::test]
    async fn an_early_exit_reports_the_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut watchdog = Watchdog::spawn(dir.path()).unwrap();
        let mut server = spawn_sh(dir.path(), &mut watchdog, "echo 'bad flag --x' >&2; exit 3");
        let result = wait_ready(&mut server, Duration::from_secs(10), || async { Ok(false) }).await;
        let Err(NotReady::Failed(e)) = result else {
            panic!("expected a failure, got {result:?}");
        };
        let msg = e.to_string();
        assert!(msg.contains("fake-server exited"), "{msg}");
        assert!(msg.contains("bad flag --x"), "{msg}");
    }

    #[tokio::test]
    async fn a_timeout_reports_the_last_probe_error_and_log_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut watchdog = Watchdog::spawn(dir.path()).unwrap();
        let mut server = spawn_sh(dir.path(), &mut watchdog, "echo starting; exec sleep 600");
        let result = wait_ready(&mut server, Duration::from_millis(300), || async {
            Err(anyhow!("connection refused"))
        })
        .await;
        let Err(NotReady::Failed(e)) = result else {
            panic!("expected a timeout, got {result:?}");
        };
        let msg = e.to_string();
        assert!(msg.contains("not ready after"), "{msg}");
        assert!(msg.contains("connection refused"), "{msg}");
        assert!(msg.contains("starting"), "{msg}");
    }

    #[tokio::test]
    async fn http_ok_reads_the_status_line() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            for answer in ["HTTP/1.1 200 OK\r\n\r\n{}", "HTTP/1.1 503 No\r\n\r\n"] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 256];
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(answer.as_bytes()).await.unwrap();
            }
        });
        assert!(http_ok(port, "/health").await.unwrap());
        assert!(!http_ok(port, "/health").await.unwrap());
        server.await.unwrap();
    }
}
