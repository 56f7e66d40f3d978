//! The operator's config port (`OPERATOR_CONFIG_PORT`): TLS with the
//! operator's serving certificate, then by path the certify endpoint or
//! the config stream.

use std::sync::Arc;

use meshlet_crds::contract::identity::CERTIFY_PATH;
use tokio::net::TcpListener;

use super::server::StreamServer;
use crate::http;
use crate::identity::certify::Certifier;

/// Serves the config port on `listener` until dropped.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    stream: Arc<StreamServer>,
    certifier: Arc<Certifier>,
) {
    http::serve_tls(listener, tls, move |req| {
        let stream = stream.clone();
        let certifier = certifier.clone();
        async move {
            if req.uri().path() == CERTIFY_PATH {
                certifier.handle(req).await
            } else {
                stream.handle(req).await
            }
        }
    })
    .await
}
