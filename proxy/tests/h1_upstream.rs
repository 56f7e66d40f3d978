//! The proxy's own HTTP/1 client against upstreams that answer in every
//! way HTTP/1 allows (and some it does not): scripted raw-socket servers
//! on loopback, real clients through a real proxy.

mod common;

use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const HOST: &str = "web";

/// What a scripted upstream does after answering.
#[derive(Clone, Copy)]
enum Then {
    /// Waits for the next request on the connection.
    KeepOpen,
    /// Closes the connection.
    Close,
    /// Keeps the connection open, unread, for a while, then closes it.
    Linger(Duration),
}

/// A raw upstream: for each request head (request index over all
/// connections) the bytes to answer and what to do next.
struct Scripted {
    addr: std::net::SocketAddr,
    conns: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Scripted {
    async fn start<F>(answer: F) -> Self
    where
        F: Fn(&str, usize) -> (Vec<u8>, Then) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let answer = Arc::new(answer);
        let (c, r) = (conns.clone(), requests.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let (answer, r) = (answer.clone(), r.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let Some(head) = read_head(&mut s, &mut buf).await else {
                            return;
                        };
                        let i = r.fetch_add(1, Ordering::SeqCst);
                        let (bytes, then) = answer(&head, i);
                        if s.write_all(&bytes).await.is_err() {
                            return;
                        }
                        match then {
                            Then::KeepOpen => {}
                            Then::Close => return,
                            Then::Linger(d) => {
                                tokio::time::sleep(d).await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        Self {
            addr,
            conns,
            requests,
            task,
        }
    }
}

/// Reads one request head (bodies are skipped by their content-length).
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            buf.drain(..end + 4);
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            while buf.len() < length {
                let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..length);
            return Some(head);
        }
        let n = s.read(&mut chunk).await.ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn proxy_to(up: &Scripted) -> meshlet_proxy::Proxy {
    start_proxy(
        config(vec![service("web", "10.96.0.1", &[up.addr])]),
        None,
        None,
    )
    .await
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn close_delimited_and_chunked_responses_arrive_whole() {
    let up = Scripted::start(|head, _| {
        if head.starts_with("GET /close") {
            (b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec(), Then::Close)
        } else if head.starts_with("GET /http10") {
            (b"HTTP/1.0 200 OK\r\n\r\nold style".to_vec(), Then::Close)
        } else {
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-sum: 12\r\n\r\n"
                    .to_vec(),
                Then::KeepOpen,
            )
        }
    })
    .await;
    let proxy = proxy_to(&up).await;
    let client = h1_client();
    for _ in 0..3 {
        assert_eq!(
            get(&client, proxy.outbound_addr, HOST, "/close").await,
            (200, "until the end".into())
        );
        assert_eq!(
            get(&client, proxy.outbound_addr, HOST, "/http10").await,
            (200, "old style".into())
        );
        assert_eq!(
            get(&client, proxy.outbound_addr, HOST, "/chunked").await,
            (200, "hello, world".into())
        );
    }
    // Close-delimited answers end their connection; the chunked ones keep
    // one alive: at most 6 + 1 connections for 9 requests.
    let conns = up.conns.load(Ordering::SeqCst);
    assert!(conns <= 7, "{conns} connections");
}

#[tokio::test]
async fn interim_responses_are_skipped_and_head_bodies_not_awaited() {
    let up = Scripted::start(|head, _| {
        if head.starts_with("HEAD") {
            // A length, and no body: the next response follows at once.
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n".to_vec(),
                Then::KeepOpen,
            )
        } else {
            let mut r =
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
                    .to_vec();
            r.extend(ok("final"));
            (r, Then::KeepOpen)
        }
    })
    .await;
    let proxy = proxy_to(&up).await;
    let client = h1_client();
    for _ in 0..3 {
        assert_eq!(
            get(&client, proxy.outbound_addr, HOST, "/").await,
            (200, "final".into())
        );
        let req = http::Request::head(format!("http://{}/", proxy.outbound_addr))
            .header("host", HOST)
            .body(http_body_util::Empty::new())
            .unwrap();
        let rsp = tokio::time::timeout(Duration::from_secs(5), client.request(req))
            .await
            .expect("HEAD answered without waiting for a body")
            .unwrap();
        assert_eq!(rsp.status(), 200);
        assert_eq!(rsp.headers()["content-length"], "100");
    }
    assert_eq!(
        up.conns.load(Ordering::SeqCst),
        1,
        "one connection carried all six"
    );
}

#[tokio::test]
async fn broken_responses_become_502_and_the_proxy_carries_on() {
    let broken: Vec<&'static [u8]> = vec![
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        b"HTTP/1.1 20",
        b"",
    ];
    let cases = broken.len();
    let up = Scripted::start(move |head, _| {
        let i: usize = head
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_start_matches('/')
            .parse()
            .unwrap_or(usize::MAX);
        match broken.get(i) {
            Some(bytes) => (bytes.to_vec(), Then::Close),
            None => (ok("fine"), Then::KeepOpen),
        }
    })
    .await;
    let proxy = proxy_to(&up).await;
    let client = h1_client();
    for i in 0..cases {
        let (status, body) = get(&client, proxy.outbound_addr, HOST, &format!("/{i}")).await;
        assert_eq!(status, 502, "case {i}: {body}");
        assert_eq!(
            get(&client, proxy.outbound_addr, HOST, "/ok").await,
            (200, "fine".into())
        );
    }
    // An oversized head: 502, not unbounded buffering.
    let big = Scripted::start(|_, _| {
        let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..2000 {
            r.extend(format!("x-filler-{i}: {}\r\n", "a".repeat(60)).as_bytes());
        }
        (r, Then::Close)
    })
    .await;
    let proxy = proxy_to(&big).await;
    assert_eq!(get(&client, proxy.outbound_addr, HOST, "/").await.0, 502);
}

#[tokio::test]
async fn broken_bodies_cut_the_client_off_and_the_connection_is_not_reused() {
    let up = Scripted::start(|head, _| {
        if head.starts_with("GET /short") {
            // Fewer bytes than promised, then the close.
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc".to_vec(),
                Then::Close,
            )
        } else if head.starts_with("GET /badchunk") {
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
                    .to_vec(),
                Then::KeepOpen,
            )
        } else {
            (ok("fine"), Then::KeepOpen)
        }
    })
    .await;
    let proxy = proxy_to(&up).await;
    let client = h1_client();
    for path in ["/short", "/badchunk"] {
        let (status, body) = get(&client, proxy.outbound_addr, HOST, path).await;
        assert!(
            status == 0 || (status == 200 && body.len() < 10),
            "{path}: a broken body must not look complete: {status} {body:?}"
        );
        assert_eq!(
            get(&client, proxy.outbound_addr, HOST, "/ok").await,
            (200, "fine".into())
        );
    }
}

#[tokio::test]
async fn ambiguous_or_closing_responses_are_not_reused() {
    let up = Scripted::start(|head, _| {
        if head.starts_with("GET /both") {
            // Content-Length and chunked: chunked wins; never reused.
            (
                b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec(),
                Then::KeepOpen,
            )
        } else if head.starts_with("GET /close") {
            (b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok".to_vec(), Then::KeepOpen)
        } else {
            (b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec(), Then::KeepOpen)
        }
    })
    .await;
    let proxy = proxy_to(&up).await;
    let client = h1_client();
    for path in ["/both", "/close", "/http10"] {
        let before = up.conns.load(Ordering::SeqCst);
        for _ in 0..3 {
            assert_eq!(
                get(&client, proxy.outbound_addr, HOST, path).await,
                (200, "ok".into()),
                "{path}"
            );
        }
        assert_eq!(
            up.conns.load(Ordering::SeqCst) - before,
            3,
            "{path}: a connection per request"
        );
    }
}

#[tokio::test]
async fn idle_connections_the_server_closed_are_not_used() {
    // Answers keep-alive, then closes 50 ms later.
    let up = Scripted::start(|_, _| (ok("fresh"), Then::Linger(Duration::from_millis(50)))).await;
    let proxy = proxy_to(&up).await;
    let client = h1_client();
    for i in 0..5 {
        assert_eq!(
            get(&client, proxy.outbound_addr, HOST, "/").await,
            (200, "fresh".into()),
            "request {i}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(
        up.requests.load(Ordering::SeqCst),
        5,
        "no request was lost on a closed connection"
    );
}

/// A server that answers `answer` as soon as a request head is in and reads
/// nothing of the body; then keeps the connection for `linger` (unread), or
/// closes it at once.
fn early_answerer(
    listener: TcpListener,
    answer: &'static [u8],
    linger: Option<Duration>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let serve = async move {
                let mut buf = [0u8; 1024];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                }
                let _ = s.write_all(answer).await;
                if let Some(d) = linger {
                    tokio::time::sleep(d).await;
                }
            };
            match linger {
                Some(_) => drop(tokio::spawn(serve)),
                None => serve.await,
            }
        }
    })
}

/// Sends a request head declaring a `size`-byte body through `proxy`, then
/// the body from a task that keeps its write side open (a client that
/// half-closes is gone); returns the read side and that task.
async fn upload(
    proxy: &meshlet_proxy::Proxy,
    method: &str,
    size: usize,
) -> (tokio::net::tcp::OwnedReadHalf, tokio::task::JoinHandle<()>) {
    let s = TcpStream::connect(proxy.outbound_addr).await.unwrap();
    let (r, mut w) = s.into_split();
    w.write_all(
        format!("{method} /upload HTTP/1.1\r\nhost: {HOST}\r\ncontent-length: {size}\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..size / chunk.len() {
            if w.write_all(&chunk).await.is_err() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    (r, writer)
}

#[tokio::test]
async fn an_early_response_reaches_the_client_while_its_body_is_refused() {
    // Answers 413 as soon as the head arrives, reads nothing of the body.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = early_answerer(
        listener,
        b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 8\r\n\r\ntoo big!",
        Some(Duration::from_secs(3)),
    );
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[addr])]),
        None,
        None,
    )
    .await;
    let (mut r, writer) = upload(&proxy, "POST", 64 * 1024 * 1024).await;
    let mut got = Vec::new();
    read_until(&mut r, &mut got, b"too big!").await;
    assert!(
        got.starts_with(b"HTTP/1.1 413"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    writer.abort();
    server.abort();
}

#[tokio::test]
async fn a_reason_phrase_of_the_servers_own_is_passed_on() {
    let up = Scripted::start(|_, _| {
        (
            b"HTTP/1.1 404 Not Here\r\ncontent-length: 0\r\n\r\n".to_vec(),
            Then::KeepOpen,
        )
    })
    .await;
    let proxy = proxy_to(&up).await;
    let (mut r, mut w) = TcpStream::connect(proxy.outbound_addr)
        .await
        .unwrap()
        .into_split();
    w.write_all(format!("GET / HTTP/1.1\r\nhost: {HOST}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut got = Vec::new();
    read_until(&mut r, &mut got, b"\r\n\r\n").await;
    assert!(
        got.starts_with(b"HTTP/1.1 404 Not Here\r\n"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

/// Reads from `s` until `want` has arrived (10 s at most).
async fn read_until(s: &mut tokio::net::tcp::OwnedReadHalf, got: &mut Vec<u8>, want: &[u8]) {
    let mut buf = [0u8; 4096];
    let read = async {
        while !got.windows(want.len()).any(|w| w == want) {
            let n = s.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before {:?}: {:?}",
                String::from_utf8_lossy(want),
                String::from_utf8_lossy(got)
            );
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no {:?} in {:?}",
                String::from_utf8_lossy(want),
                String::from_utf8_lossy(got)
            )
        });
}

#[tokio::test]
async fn a_server_streaming_both_ways_gets_the_rest_of_the_request() {
    // Answers at once with a chunked body that echoes the request body as
    // it arrives: the request must keep flowing after the response began.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let (length, mut body) = loop {
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0);
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .split("content-length: ")
                    .nth(1)
                    .unwrap()
                    .split("\r\n")
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                break (length, buf[end + 4..].to_vec());
            }
        };
        s.write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .await
            .unwrap();
        let mut echoed = 0;
        loop {
            if !body.is_empty() {
                s.write_all(format!("{:x}\r\n", body.len()).as_bytes())
                    .await
                    .unwrap();
                s.write_all(&body).await.unwrap();
                s.write_all(b"\r\n").await.unwrap();
                echoed += body.len();
                body.clear();
            }
            if echoed == length {
                s.write_all(b"0\r\n\r\n").await.unwrap();
                tokio::time::sleep(Duration::from_secs(2)).await;
                return;
            }
            let n = s.read(&mut chunk).await.unwrap();
            assert!(n > 0, "request body cut off after {echoed} bytes");
            body.extend_from_slice(&chunk[..n]);
        }
    });
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[addr])]),
        None,
        None,
    )
    .await;
    let s = TcpStream::connect(proxy.outbound_addr).await.unwrap();
    let (mut r, mut w) = s.into_split();
    w.write_all(
        format!("POST /duplex HTTP/1.1\r\nhost: {HOST}\r\ncontent-length: 15\r\n\r\nping1")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    read_until(&mut r, &mut got, b"ping1").await;
    w.write_all(b"ping2").await.unwrap();
    read_until(&mut r, &mut got, b"ping2").await;
    w.write_all(b"ping3").await.unwrap();
    read_until(&mut r, &mut got, b"ping3").await;
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    server.abort();
}

#[tokio::test]
async fn an_early_answer_survives_the_server_closing_on_the_body() {
    // Answers 401 as soon as the head arrives and closes without reading
    // the body: the proxy's writes then fail, but the answer came first.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = early_answerer(
        listener,
        b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope",
        None,
    );
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[addr])]),
        None,
        None,
    )
    .await;
    for i in 0..5 {
        let (mut r, writer) = upload(&proxy, "PUT", 8 * 1024 * 1024).await;
        let mut got = Vec::new();
        read_until(&mut r, &mut got, b"\r\n\r\n").await;
        assert!(
            got.starts_with(b"HTTP/1.1 401"),
            "round {i}: {:?}",
            String::from_utf8_lossy(&got)
        );
        writer.abort();
    }
    server.abort();
}

#[tokio::test]
async fn a_request_with_no_host_goes_as_http10_and_its_connection_is_not_kept() {
    // An HTTP/1.0 client may send no Host: routed by the fallback
    // destination, it must not reach the server as an HTTP/1.1 request
    // without one (which servers refuse).
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let s2 = seen.clone();
    let up = Scripted::start(move |head, _| {
        s2.lock()
            .unwrap()
            .push(head.lines().next().unwrap_or("").to_string());
        (ok("old"), Then::KeepOpen)
    })
    .await;
    let proxy = start_proxy(
        config(vec![service("web", "10.96.0.1", &[up.addr])]),
        Some("10.96.0.1:80"),
        None,
    )
    .await;
    for _ in 0..2 {
        let mut s = TcpStream::connect(proxy.outbound_addr).await.unwrap();
        s.write_all(b"GET /legacy HTTP/1.0\r\n\r\n").await.unwrap();
        let mut got = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        let got = String::from_utf8_lossy(&got);
        assert!(
            got.starts_with("HTTP/1.0 200") && got.ends_with("old"),
            "{got:?}"
        );
    }
    assert_eq!(
        *seen.lock().unwrap(),
        ["GET /legacy HTTP/1.0", "GET /legacy HTTP/1.0"]
    );
    assert_eq!(up.conns.load(Ordering::SeqCst), 2, "not kept");
}
