//! `get`: fetch a URL `count` times, one fresh connection each (so a Service
//! spreads them over its endpoints), and tally the outcomes; optionally with
//! a method and headers (route-matched splits and policies), a pause between
//! requests, and a line each time the answering version changes (to time a
//! weight shift).

use crate::summary::{Outcome, Summary};
use anyhow::{bail, Context};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;

/// A parsed `http://host[:port]/path` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub path: String,
    uri: Uri,
    method: Method,
    headers: Vec<(HeaderName, HeaderValue)>,
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
            method: Method::GET,
            headers: Vec::new(),
        })
    }

    /// Send `method` instead of GET (`--method`).
    pub fn with_method(mut self, method: &str) -> anyhow::Result<Self> {
        self.method = Method::from_bytes(method.as_bytes())
            .with_context(|| format!("--method {method:?} is not an HTTP method"))?;
        Ok(self)
    }

    /// Add a request header given as `Name: value` (`--header`).
    pub fn with_header(mut self, header: &str) -> anyhow::Result<Self> {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("--header {header:?}: expected \"Name: value\""))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .with_context(|| format!("--header {header:?}: bad header name"))?;
        let value = HeaderValue::from_str(value.trim())
            .with_context(|| format!("--header {header:?}: bad header value"))?;
        self.headers.push((name, value));
        Ok(self)
    }
}

/// How [`run_with`] paces and reports its requests.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// How many requests.
    pub count: usize,
    /// Bound of each request.
    pub timeout: Duration,
    /// Pause between requests.
    pub interval: Duration,
    /// Print `CHANGE <unix ms> <version>` whenever the answering version
    /// differs from the previous answer's (the time is when the request was
    /// sent), so a test can tell when a weight change took effect.
    pub print_changes: bool,
}

/// Milliseconds since the Unix epoch (the kind node and the test share the
/// host's clock).
pub fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Fetch `target` `count` times in sequence, each bounded by `timeout`.
pub async fn run(target: &Target, count: usize, timeout: Duration) -> Summary {
    run_with(
        target,
        &RunOptions {
            count,
            timeout,
            ..RunOptions::default()
        },
    )
    .await
}

/// Fetch `target` as `options` say and tally the outcomes.
pub async fn run_with(target: &Target, options: &RunOptions) -> Summary {
    let mut summary = Summary::default();
    let mut last: Option<String> = None;
    for i in 0..options.count {
        if i > 0 && !options.interval.is_zero() {
            tokio::time::sleep(options.interval).await;
        }
        let sent = unix_ms();
        let timeout = options.timeout;
        let outcome = match tokio::time::timeout(timeout, fetch(target)).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => Outcome::Error(format!("{e:#}")),
            Err(_) => Outcome::Error(format!("no response within {timeout:?}")),
        };
        if options.print_changes {
            let now = match &outcome {
                Outcome::Response { version, .. } => {
                    version.clone().unwrap_or_else(|| "<none>".into())
                }
                Outcome::Error(_) => "<error>".into(),
            };
            if last.as_ref() != Some(&now) {
                println!("CHANGE {sent} {now}");
                last = Some(now);
            }
        }
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
    let mut request = Request::builder()
        .method(target.method.clone())
        .uri(target.path.as_str())
        .header(hyper::header::HOST, authority);
    for (name, value) in &target.headers {
        request = request.header(name, value);
    }
    let request = request
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
    fn method_and_headers_are_checked() {
        let t = Target::parse("http://x/").unwrap();
        assert!(t.clone().with_method("POST").is_ok());
        assert!(t.clone().with_method("BAD METHOD").is_err());
        let t = t.with_header("x-canary: true").unwrap();
        assert_eq!(t.headers[0].0, "x-canary");
        assert_eq!(t.headers[0].1, "true");
        let e = Target::parse("http://x/")
            .unwrap()
            .with_header("no-colon")
            .unwrap_err();
        assert!(e.to_string().contains("--header"), "{e}");
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
