//! HTTP/1 Upgrade (WebSocket) and CONNECT: once upstream agrees, both
//! upgraded connections are joined and copied byte for byte.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Whether an HTTP/1 request asks to switch protocols or tunnel.
pub fn is_upgrade(req: &http::Request<hyper::body::Incoming>) -> bool {
    if req.method() == http::Method::CONNECT {
        return true;
    }
    req.headers().contains_key(http::header::UPGRADE)
        && req
            .headers()
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Whether upstream accepted the upgrade.
pub fn accepted(method: &http::Method, status: http::StatusCode) -> bool {
    status == http::StatusCode::SWITCHING_PROTOCOLS
        || (method == http::Method::CONNECT && status.is_success())
}

/// Joins the two upgraded connections in the background.
pub fn splice(client: OnUpgrade, server: OnUpgrade) {
    tokio::spawn(async move {
        let (client, server) = match tokio::try_join!(client, server) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut server = TokioIo::new(server);
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
            tracing::debug!(error = %e, "upgraded connection closed");
        }
    });
}
