//! `serve`: answer every request 200 with a JSON [`Reply`].

use crate::Reply;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Who this server says it is in each reply.
#[derive(Debug, Clone)]
pub struct Identity {
    pub pod: String,
    pub version: String,
}

/// Serve on `listener` until the task is dropped. Each connection runs in its
/// own task; a broken connection only ends that task.
pub async fn run(listener: TcpListener, identity: Identity) -> std::io::Result<()> {
    let identity = Arc::new(identity);
    loop {
        let (stream, _) = listener.accept().await?;
        let identity = identity.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, identity.clone()));
            // Errors here are client hang-ups; nothing to do about them.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    identity: Arc<Identity>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = Reply {
        pod: identity.pod.clone(),
        version: identity.version.clone(),
        method: req.method().to_string(),
        path: req
            .uri()
            .path_and_query()
            .map_or("/".to_string(), |p| p.to_string()),
    };
    let body = serde_json::to_vec(&reply).expect("a Reply always serialises");
    let response = Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static response parts are valid");
    Ok(response)
}
