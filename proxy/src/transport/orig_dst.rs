//! The original destination of a connection redirected by iptables
//! (`SO_ORIGINAL_DST`), read through socket2's safe wrapper.

use std::net::SocketAddr;
use tokio::net::TcpStream;

/// Returns where the client meant to connect, or `None` when the connection
/// was not redirected (the original destination is the listener itself, or
/// the kernel has no NAT entry for it).
pub fn original_destination(stream: &TcpStream) -> Option<SocketAddr> {
    let local = stream.local_addr().ok()?;
    let sock = socket2::SockRef::from(stream);
    let orig = if local.is_ipv4() {
        sock.original_dst_v4()
    } else {
        sock.original_dst_v6()
    }
    .ok()?
    .as_socket()?;
    (orig != local).then_some(orig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_direct_connection_is_not_redirected() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        assert_eq!(original_destination(&server), None);
    }
}
