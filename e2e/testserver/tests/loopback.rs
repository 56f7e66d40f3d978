//! The real server and client over a loopback socket.

use meshlet_testserver::{client, server, Reply};
use std::time::Duration;

async fn start(version: &str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let identity = server::Identity {
        pod: "pod-a".into(),
        version: version.into(),
    };
    tokio::spawn(server::run(listener, identity));
    port
}

#[tokio::test]
async fn client_counts_replies_from_the_server() {
    let port = start("v2").await;
    let target = client::Target::parse(&format!("http://127.0.0.1:{port}/x?y=1")).unwrap();
    let summary = client::run(&target, 3, Duration::from_secs(5)).await;
    assert!(summary.all_status(200), "{summary}");
    assert_eq!(summary.statuses[&200], 3);
    assert_eq!(summary.versions["v2"], 3);
}

#[tokio::test]
async fn reply_names_pod_version_and_path() {
    let port = start("v1").await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /hello?q=1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    let body = raw.split("\r\n\r\n").nth(1).unwrap();
    let reply: Reply = serde_json::from_str(body).unwrap();
    assert_eq!(
        reply,
        Reply {
            pod: "pod-a".into(),
            version: "v1".into(),
            method: "GET".into(),
            path: "/hello?q=1".into(),
        }
    );
}

#[tokio::test]
async fn wait_ready_returns_once_the_server_answers() {
    // Reserve a port, start the server on it only after a delay.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let identity = server::Identity {
            pod: "late".into(),
            version: "v1".into(),
        };
        server::run(listener, identity).await
    });
    let target = client::Target::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let took = client::wait_ready(&target, 200, Duration::from_secs(10))
        .await
        .expect("the server comes up");
    assert!(took >= Duration::from_millis(400), "{took:?}");
    // A wrong expectation is never met: the last outcome comes back.
    let last = client::wait_ready(&target, 404, Duration::from_millis(600))
        .await
        .unwrap_err();
    assert!(matches!(
        last,
        meshlet_testserver::summary::Outcome::Response { status: 200, .. }
    ));
}

#[tokio::test]
async fn unreachable_target_is_an_error_not_a_success() {
    // Bind then drop: the port is (almost certainly) closed now.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let target = client::Target::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let summary = client::run(&target, 2, Duration::from_secs(2)).await;
    assert!(!summary.all_status(200));
    assert_eq!(summary.errors.values().sum::<usize>(), 2, "{summary}");
}
