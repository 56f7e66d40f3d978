//! Transparent redirect for real: in a fresh network namespace, `meshlet-proxy
//! init` installs the iptables rules, an unprivileged client connects to a
//! cluster IP, the kernel redirects it to the proxy, and the proxy routes by
//! the original destination (SO_ORIGINAL_DST), not by the Host header; and a
//! client in a second namespace reaches the app through the inbound listener;
//! a destination outside the config is passed through without looping.
//! Needs root, `unshare`, `ip`, `iptables` and `setpriv` (all on the project's
//! machines); traffic stays inside the namespace the test creates.

use std::process::Command;

#[test]
fn iptables_redirect_and_original_destination_in_a_network_namespace() {
    let dir = std::env::temp_dir().join(format!("meshlet-redirect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("proxy.json");
    std::fs::write(
        &config,
        r#"{"outbound":{"services":[{"name":"web","namespace":"ns","clusterIps":["10.96.0.1"],
            "ports":[{"port":80,"endpoints":[{"addr":"127.0.0.1:18080"}]}]}]},
            "inbound":{"permissive":true}}"#,
    )
    .unwrap();
    let script = format!(
        r#"set -eu
ip link set lo up
ip link add v0 type veth peer name v1
ip addr add 10.0.0.2/24 dev v0
ip link set v0 up; ip link set v1 up
ip route add 10.96.0.0/16 dev v0
{loadgen} serve --addr 127.0.0.1:18080 & up=$!
MESHLET_LOG=warn {proxy} run --config {config} --admin-addr 127.0.0.1:4191 & px=$!
trap 'kill $up $px' EXIT
{proxy} init --proxy-uid 0 --iptables iptables
iptables -t nat -S MESHLET_OUTBOUND
for i in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/4191) 2>/dev/null && break; sleep 0.05; done
setpriv --reuid=65534 --regid=65534 --clear-groups bash -c '
  exec 3<>/dev/tcp/10.96.0.1/80
  printf "GET / HTTP/1.1\r\nHost: not-a-known-authority\r\nConnection: close\r\n\r\n" >&3
  timeout 5 cat <&3'
echo
# Inbound: a client in another namespace calls the pod IP; PREROUTING sends it
# to the inbound listener, which forwards to the app on 127.0.0.1:18080 (the
# app is not reachable on the pod IP itself).
mount -t tmpfs tmpfs /run
ip netns add client
ip link set v1 netns client
ip -n client addr add 10.0.0.3/24 dev v1
ip -n client link set v1 up
ip -n client link set lo up
# Outbound to a destination outside the config: passed through by the proxy,
# whose own connection is not redirected again (its UID is excluded).
ip netns exec client {loadgen} serve --addr 10.0.0.3:18081 & ext=$!
trap 'kill $up $px $ext' EXIT
for i in $(seq 1 100); do (exec 3<>/dev/tcp/10.0.0.3/18081) 2>/dev/null && break; sleep 0.05; done
echo
setpriv --reuid=65534 --regid=65534 --clear-groups bash -c '
  exec 3<>/dev/tcp/10.0.0.3/18081
  printf "GET / HTTP/1.1\r\nHost: external\r\nConnection: close\r\n\r\n" >&3
  timeout 5 cat <&3'
echo
exec 4<>/dev/tcp/127.0.0.1/4191
printf "GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n" >&4
timeout 5 cat <&4 | grep "^response_total" || true
echo
ip netns exec client bash -c '
  exec 3<>/dev/tcp/10.0.0.2/18080
  printf "GET / HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n" >&3
  timeout 5 cat <&3'
"#,
        loadgen = env!("CARGO_BIN_EXE_meshlet-loadgen"),
        proxy = env!("CARGO_BIN_EXE_meshlet-proxy"),
        config = config.display(),
    );
    let out = Command::new("unshare")
        .args(["-m", "-n", "bash", "-c", &script])
        .output()
        .expect("unshare must be installed (util-linux)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "script failed: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("-A MESHLET_OUTBOUND -m owner --uid-owner 0 -j RETURN"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(
        stdout.matches("HTTP/1.1 200 OK").count(),
        3,
        "outbound, passthrough and inbound: {stdout}\n{stderr}"
    );
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}\n{stderr}");
    // Both outbound requests went through the proxy: one to the service,
    // one passed through (empty destination labels).
    for needle in [
        r#"response_total{direction="outbound",dst_namespace="ns",dst_service="web",route="",tls="no_identity",status_code="200",classification="success"} 1"#,
        r#"response_total{direction="outbound",dst_namespace="",dst_service="",route="",tls="no_identity",status_code="200",classification="success"} 1"#,
    ] {
        assert!(
            stdout.contains(needle),
            "{needle} not in\n{stdout}\n{stderr}"
        );
    }
}
