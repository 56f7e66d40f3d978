//! The `meshlet-proxy` binary end to end: static config file, readiness,
//! and draining on SIGTERM.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn binary_serves_a_static_config_and_drains_on_sigterm() {
    let up = Upstream::start("from-binary").await;
    let dir = std::env::temp_dir().join(format!("meshlet-proxy-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_path = dir.join("proxy.yaml");
    std::fs::write(
        &config_path,
        format!(
            "outbound:\n  services:\n  - name: web\n    namespace: ns\n    authorities: [\"web.ns.svc.cluster.local:80\"]\n    ports:\n    - port: 80\n      endpoints:\n      - addr: \"{}\"\n",
            up.addr
        ),
    )
    .unwrap();
    let (outbound, inbound, admin) = (free_port(), free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshlet-proxy"))
        .args(["run", "--config"])
        .arg(&config_path)
        .args(["--outbound-addr", &format!("127.0.0.1:{outbound}")])
        .args(["--inbound-addr", &format!("127.0.0.1:{inbound}")])
        .args(["--admin-addr", &format!("127.0.0.1:{admin}")])
        .args(["--drain-timeout-secs", "5"])
        .env("MESHLET_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let admin_addr = format!("127.0.0.1:{admin}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin_get(admin_addr, "/ready").await.0 != 200 {
        assert!(Instant::now() < deadline, "proxy never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let outbound_addr = format!("127.0.0.1:{outbound}").parse().unwrap();
    let client = h1_client();
    assert_eq!(
        get(&client, outbound_addr, "web.ns.svc.cluster.local", "/").await,
        (200, "from-binary".into())
    );

    let slow = tokio::spawn(async move {
        get(
            &h1_client(),
            outbound_addr,
            "web.ns.svc.cluster.local",
            "/sleep/700",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        slow.await.unwrap(),
        (200, "from-binary".into()),
        "in-flight request dropped"
    );
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let _ = std::fs::remove_dir_all(dir);
}
