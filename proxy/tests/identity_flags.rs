//! The binary's identity flags: static mTLS between two `meshlet-proxy`
//! processes from `--identity-cert/--identity-key/--trust-anchors`, and
//! clear errors naming the flag or variable that is missing.

mod common;

use common::pki::{self, Ca};
use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn proxy() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_meshlet-proxy"));
    c.env("MESHLET_LOG", "warn")
        .env_remove("MESHLET_TRUST_ANCHORS")
        .env_remove("MESHLET_OPERATOR_ADDR");
    c
}

/// Runs the binary to its exit and returns its stderr.
fn fails(cmd: &mut Command) -> String {
    let out = cmd.stdout(Stdio::null()).output().unwrap();
    assert!(!out.status.success(), "it should have refused to start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

async fn wait_ready(admin: u16) {
    let start = Instant::now();
    loop {
        let (code, _) = admin_get(format!("127.0.0.1:{admin}").parse().unwrap(), "/ready").await;
        if code == 200 {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "not ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_binaries_speak_mtls_from_static_certificates() {
    let ca = Ca::new("mesh-ca");
    let app = Upstream::start("app").await;
    let dir = std::env::temp_dir().join(format!("meshlet-identity-flags-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let anchors = write(&dir, "ca.pem", &ca.pem);
    let mut files = Vec::new();
    for sa in ["client", "server"] {
        let c = ca.workload(&pki::spiffe("shop", sa));
        files.push((
            write(&dir, &format!("{sa}.pem"), &c.chain_pem),
            write(&dir, &format!("{sa}.key"), &c.key_pem),
        ));
    }
    let client_id = pki::spiffe("shop", "client");
    let server_cfg = write(
        &dir,
        "server.json",
        &format!(r#"{{"inbound":{{"policies":[{{"name":"t","sources":["{client_id}"]}}]}}}}"#),
    );
    let (s_in, s_admin) = (free_port(), free_port());
    let _server = Killed(
        proxy()
            .args(["run", "--config", &server_cfg])
            .args([
                "--identity-cert",
                &files[1].0,
                "--identity-key",
                &files[1].1,
            ])
            .args(["--trust-anchors", &anchors])
            .args(["--outbound-addr", &format!("127.0.0.1:{}", free_port())])
            .args(["--inbound-addr", &format!("127.0.0.1:{s_in}")])
            .args(["--admin-addr", &format!("127.0.0.1:{s_admin}")])
            .args(["--inbound-fallback-port", &app.addr.port().to_string()])
            .spawn()
            .unwrap(),
    );
    let client_cfg = write(
        &dir,
        "client.json",
        &format!(
            r#"{{"outbound":{{"services":[{{"name":"web","namespace":"shop","authorities":["web.shop:80"],
              "ports":[{{"port":80,"endpoints":[{{"addr":"127.0.0.1:{s_in}","meshed":true,
              "identity":"{}"}}]}}]}}]}}}}"#,
            pki::spiffe("shop", "server")
        ),
    );
    let (c_out, c_admin) = (free_port(), free_port());
    let _client = Killed(
        proxy()
            .args(["run", "--config", &client_cfg])
            .args([
                "--identity-cert",
                &files[0].0,
                "--identity-key",
                &files[0].1,
            ])
            .args(["--trust-anchors", &anchors])
            .args(["--outbound-addr", &format!("127.0.0.1:{c_out}")])
            .args(["--inbound-addr", &format!("127.0.0.1:{}", free_port())])
            .args(["--admin-addr", &format!("127.0.0.1:{c_admin}")])
            .spawn()
            .unwrap(),
    );
    wait_ready(s_admin).await;
    wait_ready(c_admin).await;
    let h1 = h1_client();
    let out = format!("127.0.0.1:{c_out}").parse().unwrap();
    assert_eq!(get(&h1, out, "web.shop", "/").await, (200, "app".into()));
    // Plaintext straight to the server proxy is refused by the policy that
    // the mTLS identity satisfied.
    let inbound = format!("127.0.0.1:{s_in}").parse().unwrap();
    assert_eq!(get(&h1, inbound, "web.shop", "/").await.0, 403);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_identity_inputs_are_named() {
    let ca = Ca::new("mesh-ca");
    let dir = std::env::temp_dir().join(format!("meshlet-identity-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = ca.workload(&pki::spiffe("shop", "web"));
    let (cert, key) = (
        write(&dir, "c.pem", &c.chain_pem),
        write(&dir, "c.key", &c.key_pem),
    );
    let cfg = write(&dir, "cfg.json", "{}");
    let err = fails(proxy().args([
        "run",
        "--config",
        &cfg,
        "--identity-cert",
        &cert,
        "--identity-key",
        &key,
    ]));
    assert!(err.contains("--identity-cert needs trust anchors"), "{err}");

    let err = fails(proxy().env("MESHLET_TRUST_ANCHORS", &ca.pem).args([
        "run",
        "--operator",
        "127.0.0.1:9",
        "--namespace",
        "shop",
    ]));
    assert!(err.contains("MESHLET_SERVICE_ACCOUNT"), "{err}");

    let err = fails(
        proxy()
            .env("MESHLET_TRUST_ANCHORS", &ca.pem)
            .args(["run", "--operator", "127.0.0.1:9", "--namespace", "shop"])
            .args(["--service-account", "web"]),
    );
    assert!(err.contains("MESHLET_IDENTITY_TOKEN_FILE"), "{err}");

    let err = fails(
        proxy()
            .env("MESHLET_TRUST_ANCHORS", "not pem")
            .args(["run", "--operator", "127.0.0.1:9", "--namespace", "shop"])
            .args(["--service-account", "web", "--token-file", &cfg]),
    );
    assert!(err.contains("MESHLET_TRUST_ANCHORS"), "{err}");

    let other = Ca::new("other");
    let anchors = write(&dir, "other.pem", &other.pem);
    let wrong_key = write(
        &dir,
        "wrong.key",
        &other.workload(&pki::spiffe("shop", "web")).key_pem,
    );
    let err = fails(
        proxy()
            .args(["run", "--config", &cfg, "--identity-cert", &cert])
            .args(["--identity-key", &wrong_key, "--trust-anchors", &anchors]),
    );
    assert!(err.contains("--identity-cert"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
