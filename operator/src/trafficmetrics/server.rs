//! The HTTPS server of `metrics.smi-spec.io`: TLS with the front-proxy
//! client certificate required, discovery (APIGroup, APIResourceList),
//! TrafficMetrics and TrafficMetricsList as JSON, errors as `Status`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use meshlet_crds::metrics::{v1alpha1, v1alpha2, GROUP};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::auth::{self, Access, FrontProxy};
use super::query::{go_duration, NotFound, View};
use super::routes::{self, Route, Version};
use super::window::Windows;
use super::workloads::Kind;
use crate::http::Body;
use crate::state::Stores;

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server reads.
pub struct MetricsApi {
    /// Client for SubjectAccessReviews.
    pub client: Client,
    /// Caches.
    pub stores: Stores,
    /// Scraped windows.
    pub windows: Arc<Windows>,
    /// Front-proxy settings.
    pub front_proxy: FrontProxy,
    /// Check each request with a SubjectAccessReview.
    pub authorize: bool,
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())).boxed())
        .expect("a valid response")
}

/// A Kubernetes `Status` error response.
pub fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    json_response(
        code,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code.as_u16(),
        }),
    )
}

fn discovery(version: Version) -> Value {
    let resources: Vec<Value> = Kind::ALL
        .iter()
        .flat_map(|k| {
            let base = json!({
                "name": k.plural(),
                "singularName": "",
                "namespaced": k.namespaced(),
                "kind": "TrafficMetrics",
                "verbs": ["get", "list"],
            });
            let mut edges = base.clone();
            edges["name"] = format!("{}/edges", k.plural()).into();
            [base, edges]
        })
        .collect();
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": format!("{GROUP}/{}", version.as_str()),
        "resources": resources,
    })
}

fn api_group() -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{GROUP}/{v}"), "version": v});
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [gv("v1alpha2"), gv("v1alpha1")],
        "preferredVersion": gv("v1alpha2"),
    })
}

fn list_json(version: Version, list: v1alpha2::TrafficMetricsList) -> Value {
    match version {
        Version::V1alpha2 => serde_json::to_value(list),
        Version::V1alpha1 => serde_json::to_value(v1alpha1::TrafficMetricsList {
            api_version: v1alpha1::API_VERSION.into(),
            kind: list.kind,
            metadata: list.metadata,
            resource: list.resource,
            selector: list.selector,
            items: list.items.into_iter().map(Into::into).collect(),
        }),
    }
    .expect("serializable")
}

fn item_json(version: Version, item: v1alpha2::TrafficMetrics) -> Value {
    match version {
        Version::V1alpha2 => serde_json::to_value(item),
        Version::V1alpha1 => serde_json::to_value(v1alpha1::TrafficMetrics::from(item)),
    }
    .expect("serializable")
}

impl MetricsApi {
    fn view(&self) -> View {
        View {
            pods: self.stores.pods.state(),
            endpoint_slices: self.stores.endpoint_slices.state(),
            namespaces: self.stores.namespaces.state(),
            traffic_splits: self.stores.traffic_splits.state(),
            increases: self.windows.increases(Instant::now()),
            timestamp: Time(k8s_openapi::jiff::Timestamp::now()),
            window: go_duration(self.windows.window()),
        }
    }

    /// Answers one request that came over a verified front-proxy connection.
    pub async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        if req.method() != http::Method::GET {
            return status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "only get and list are supported on metrics.smi-spec.io",
            );
        }
        let Some(user) = self.front_proxy.user(req.headers()) else {
            return status(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "no user in the front-proxy headers (requestheader-username-headers)",
            );
        };
        let route = match routes::parse(req.uri().path()) {
            Ok(route) => route,
            Err(message) => return status(StatusCode::NOT_FOUND, "NotFound", &message),
        };
        if let Some(query) = req.uri().query() {
            let selector = query
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .any(|(k, v)| k == "labelSelector" && !v.is_empty());
            if selector {
                return status(StatusCode::BAD_REQUEST, "BadRequest", "labelSelector: not supported by Meshlet's metrics.smi-spec.io yet; list without it");
            }
        }
        if self.authorize {
            if let Some(access) = access(&route) {
                if let Err(message) = auth::authorize(&self.client, &user, &access).await {
                    return status(StatusCode::FORBIDDEN, "Forbidden", &message);
                }
            }
        }
        let not_found = |NotFound(m)| status(StatusCode::NOT_FOUND, "NotFound", &m);
        match route {
            Route::Group => json_response(StatusCode::OK, &api_group()),
            Route::Resources(v) => json_response(StatusCode::OK, &discovery(v)),
            Route::List {
                version,
                kind,
                namespace,
            } => {
                let list = self.view().list_kind(kind, namespace.as_deref());
                json_response(StatusCode::OK, &list_json(version, list))
            }
            Route::Get {
                version,
                kind,
                namespace,
                name,
            } => match self.view().get(kind, &namespace, &name) {
                Ok(item) => json_response(StatusCode::OK, &item_json(version, item)),
                Err(e) => not_found(e),
            },
            Route::Edges {
                version,
                kind,
                namespace,
                name,
            } => match self.view().edges(kind, &namespace, &name) {
                Ok(list) => json_response(StatusCode::OK, &list_json(version, list)),
                Err(e) => not_found(e),
            },
        }
    }
}

/// What `route` reads, for authorization; discovery needs none.
fn access(route: &Route) -> Option<Access> {
    let (verb, version, kind, namespace, name, sub) = match route {
        Route::Group | Route::Resources(_) => return None,
        Route::List {
            version,
            kind,
            namespace,
        } => (
            "list",
            version,
            kind,
            namespace.clone().unwrap_or_default(),
            String::new(),
            "",
        ),
        Route::Get {
            version,
            kind,
            namespace,
            name,
        } => ("get", version, kind, namespace.clone(), name.clone(), ""),
        Route::Edges {
            version,
            kind,
            namespace,
            name,
        } => (
            "get",
            version,
            kind,
            namespace.clone(),
            name.clone(),
            "edges",
        ),
    };
    Some(Access {
        verb,
        version: version.as_str().into(),
        resource: kind.plural().into(),
        subresource: sub.into(),
        namespace,
        name,
    })
}

/// Serves on `listener` until dropped. A connection whose client
/// certificate is not the front proxy's gets 401 on every request.
pub async fn serve(listener: TcpListener, acceptor: TlsAcceptor, api: Arc<MetricsApi>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "metrics API accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (acceptor, api, builder) = (acceptor.clone(), api.clone(), builder.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "metrics API TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let verdict = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                Some(leaf) => api.front_proxy.allows(leaf),
                None => Err("no client certificate".to_string()),
            };
            if let Err(reason) = &verdict {
                tracing::info!(%peer, %reason, "metrics API caller is not the front proxy");
            }
            let service = service_fn(move |req| {
                let (api, verdict) = (api.clone(), verdict.clone());
                async move {
                    let rsp = match verdict {
                        Ok(()) => api.handle(req).await,
                        Err(reason) => status(
                            StatusCode::UNAUTHORIZED,
                            "Unauthorized",
                            &format!(
                                "only kube-apiserver's front proxy may call this server: {reason}"
                            ),
                        ),
                    };
                    Ok::<_, Infallible>(rsp)
                }
            });
            if let Err(error) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%peer, %error, "metrics API connection ended with an error");
            }
        });
    }
}
