//! `get`: fetch a URL `count` times, one fresh connection each (so a Service
//! spreads them over its endpoints), and tally the outcomes.

use crate::summary::{Outcome, Summary};
use anyhow::{bail, Context};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;

/// A parsed `http://host[:port]/path` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub path: String,
    uri: Uri,
}

impl Target {
    /// Parse a URL; only plain `http` is supported (the mesh adds TLS).
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("URL {url:?} is not valid"))?;
        match uri.scheme_str() {
            Some("http") => {}
            other => bail!("URL {url:?}: scheme must be http, got {other:?}"),
        }
        let host = uri
            .host()
            .with_context(|| format!("URL {url:?} has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(80);
        let path = uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.to_string());
        Ok(Self {
            host,
            port,
            path,
            uri,
        })
    }
}

/// Fetch `target` `count` times in sequence, each bounded by `timeout`.
pub async fn run(target: &Target, count: usize, timeout: Duration) -> Summary {
    let mut summary = Summary::default();
    for _ in 0..count {
        let outcome = match tokio::time::timeout(timeout, fetch(target)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Outcome::Error(format!("{e:#}")),
            Err(_) => Outcome::Error(format!("no response within {timeout:?}")),
        };
        summary.add(outcome);
    }
    summary
}

/// Fetch `target` until it answers `expected` (then return how long that
/// took) or `within` passes (then return the last outcome). For the window
/// right after a Service appears, before every node has its rules: with the
/// node's fast-fail route a too-early connection fails at once.
pub async fn wait_ready(
    target: &Target,
    expected: u16,
    within: Duration,
) -> Result<Duration, Outcome> {
    let start = std::time::Instant::now();
    loop {
        let left = within.saturating_sub(start.elapsed());
        let outcome =
            match tokio::time::timeout(left.max(Duration::from_millis(1)), fetch(target)).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(e)) => Outcome::Error(format!("{e:#}")),
                Err(_) => Outcome::Error(format!("no response within {within:?}")),
            };
        if matches!(outcome, Outcome::Response { status, .. } if status == expected) {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= within {
            return Err(outcome);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn fetch(target: &Target) -> anyhow::Result<Outcome> {
    let stream = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .with_context(|| format!("connect to {}:{}", target.host, target.port))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake")?;
    let driver = tokio::spawn(conn);
    let authority = target
        .uri
        .authority()
        .map_or(target.host.clone(), |a| a.to_string());
    let request = Request::get(target.path.as_str())
        .header(hyper::header::HOST, authority)
        .body(Empty::<Bytes>::new())
        .context("building the request")?;
    let response = sender
        .send_request(request)
        .await
        .context("sending the request")?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading the body")?
        .to_bytes();
    driver.abort();
    let json = serde_json::from_slice::<serde_json::Value>(&body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|v| v.get(name)?.as_str().map(str::to_string))
    };
    Ok(Outcome::Response {
        status,
        version: field("version"),
        pod: field("pod"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_path() {
        let t = Target::parse("http://web.ns.svc.cluster.local:8080/a?b=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("web.ns.svc.cluster.local", 8080, "/a?b=1")
        );
        let t = Target::parse("http://10.96.0.10").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
    }

    #[test]
    fn rejects_other_schemes_and_garbage() {
        assert!(Target::parse("https://x/")
            .unwrap_err()
            .to_string()
            .contains("scheme"));
        assert!(Target::parse("not a url").is_err());
        assert!(Target::parse("/just/a/path").is_err());
    }
}
