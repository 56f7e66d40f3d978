//! The config stream endpoint, `GET /v1/proxy-config?namespace=NS&pod=POD`
//! with `Authorization: Bearer <projected ServiceAccount token>`: checks
//! the caller, finds its pod, subscribes it, and streams newline-delimited
//! `ConfigMessage` snapshots until the proxy goes away.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{ObjectRef, Store};
use meshlet_crds::contract::config::{CONFIG_STREAM_CONTENT_TYPE, CONFIG_STREAM_PATH};

use super::auth::Authenticator;
use super::registry::{Registry, Subscription};
use crate::config::Workload;
use crate::http::{text, Body};
use crate::metrics::Metrics;
use crate::{Error, Result};

pub use meshlet_crds::contract::config::{
    CONFIG_STREAM_NAMESPACE_PARAM as NAMESPACE_PARAM, CONFIG_STREAM_POD_PARAM as POD_PARAM,
};

/// Serves the config stream.
pub struct StreamServer {
    /// Subscriber groups.
    pub registry: Arc<Registry>,
    /// Pods, to find the subscriber's workload.
    pub pods: Store<Pod>,
    /// Subscriber authentication.
    pub auth: Authenticator,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// How long to wait for a pod the cache has not seen yet (a proxy can
    /// start before its pod's watch event reaches the operator).
    pub pod_wait: Duration,
}

/// The (namespace, pod) a subscriber names in its query.
pub fn parse_query(query: Option<&str>) -> Result<(String, String)> {
    let mut namespace = None;
    let mut pod = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            NAMESPACE_PARAM => namespace = Some(value),
            POD_PARAM => pod = Some(value),
            _ => {}
        }
    }
    let check = |name: &str, value: Option<&str>| -> Result<String> {
        let value = value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| Error::BadRequest(format!("query parameter {name:?} is required")))?;
        let valid = value.len() <= 253
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(Error::BadRequest(format!(
                "query parameter {name:?}: {value:?} is not a Kubernetes object name"
            )));
        }
        Ok(value.to_string())
    };
    Ok((check(NAMESPACE_PARAM, namespace)?, check(POD_PARAM, pod)?))
}

impl StreamServer {
    /// Answers one request (routed here by [`super::port`]).
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        if req.uri().path() != CONFIG_STREAM_PATH {
            return text(
                StatusCode::NOT_FOUND,
                format!("the config stream is at {CONFIG_STREAM_PATH}\n"),
            );
        }
        if req.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        }
        match self.subscribe(&req).await {
            Ok(subscription) => stream_response(subscription),
            Err(error) => {
                self.metrics.subscriptions_refused.inc();
                let status = match &error {
                    Error::BadRequest(_) => StatusCode::BAD_REQUEST,
                    Error::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
                    Error::NotFound(_) => StatusCode::NOT_FOUND,
                    Error::Kube(_) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::FORBIDDEN,
                };
                tracing::info!(uri = %req.uri(), %error, "config stream subscription refused");
                text(status, format!("{error}\n"))
            }
        }
    }

    async fn subscribe(&self, req: &Request<Incoming>) -> Result<Subscription> {
        let (namespace, pod_name) = parse_query(req.uri().query())?;
        let authorization = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let caller = self.auth.authenticate(authorization).await?;
        let refuse = |why: String| Err(Error::Unauthenticated(why));
        // Check what the token alone proves before looking for the pod, so
        // a caller learns nothing about pods it may not read.
        if let Some(caller) = &caller {
            if caller.namespace != namespace {
                return refuse(format!(
                    "the token is for namespace {}, not {namespace}",
                    caller.namespace
                ));
            }
            if caller.pod.as_ref().is_some_and(|p| *p != pod_name) {
                return refuse(format!(
                    "the token is bound to pod {}, not {pod_name}",
                    caller.pod.as_deref().unwrap_or_default()
                ));
            }
        }
        let pod = self.find_pod(&namespace, &pod_name).await?;
        let workload = Workload::of_pod(&pod);
        if let Some(caller) = caller {
            if caller.service_account != workload.service_account {
                return refuse(format!(
                    "the token is for ServiceAccount {}/{}, but pod {namespace}/{pod_name} runs as {}",
                    caller.namespace, caller.service_account, workload.service_account
                ));
            }
        }
        tracing::debug!(%namespace, pod = %pod_name, ?workload, "config stream subscribed");
        Ok(self.registry.subscribe(workload))
    }

    async fn find_pod(&self, namespace: &str, name: &str) -> Result<Arc<Pod>> {
        let key = ObjectRef::new(name).within(namespace);
        let deadline = Instant::now() + self.pod_wait;
        loop {
            if let Some(pod) = self.pods.get(&key) {
                return Ok(pod);
            }
            if Instant::now() >= deadline {
                return Err(Error::NotFound(format!("pod {namespace}/{name}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A 200 response whose body is the subscription's snapshots, one line each.
fn stream_response(subscription: Subscription) -> Response<Body> {
    let lines = futures::stream::unfold(subscription, |mut sub| async move {
        loop {
            sub.rx.changed().await.ok()?;
            let snapshot = sub.rx.borrow_and_update().clone();
            if let Some(snapshot) = snapshot {
                return Some((snapshot.line.clone(), sub));
            }
        }
    });
    let body = StreamBody::new(lines.map(|line: Bytes| Ok::<_, Infallible>(Frame::data(line))));
    Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, CONFIG_STREAM_CONTENT_TYPE)
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .body(BodyExt::boxed(body))
        .expect("a valid response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_namespace_and_pod() {
        assert_eq!(
            parse_query(Some("namespace=shop&pod=web-1&x=y")).unwrap(),
            ("shop".into(), "web-1".into())
        );
        let err = parse_query(Some("pod=web-1")).unwrap_err().to_string();
        assert!(err.contains("\"namespace\" is required"), "{err}");
        let err = parse_query(None).unwrap_err().to_string();
        assert!(err.contains("\"namespace\""), "{err}");
        let err = parse_query(Some("namespace=shop&pod=Web%201"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"pod\"") && err.contains("Web%201"), "{err}");
    }
}
