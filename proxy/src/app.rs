//! Assembles the proxy: binds the outbound, inbound and admin listeners,
//! runs their accept loops, and drains them on shutdown.

use crate::balance::EndpointRegistry;
use crate::config::ConfigStore;
use crate::identity::TlsStore;
use crate::metrics::{Metrics, RequestMetrics};
use crate::settings::Settings;
use crate::transport::{Connector, MeshConnector};
use meshlet_crds::contract::metrics as names;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Passthrough destinations whose pools and state are kept.
pub const MAX_PASSTHROUGH_ENDPOINTS: usize = 256;

/// What every connection handler shares.
pub struct Ctx {
    /// The current config.
    pub store: Arc<ConfigStore>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Dials endpoints (mesh mTLS to meshed ones).
    pub connector: Arc<dyn Connector>,
    /// Trust anchors and this proxy's certificate.
    pub tls: Arc<TlsStore>,
    /// Run-time settings.
    pub settings: Settings,
    /// Connections to the local app, by port.
    pub local: EndpointRegistry,
    /// Destinations outside the config (passthrough), bounded.
    pub passthrough: EndpointRegistry,
    /// Request series of passthrough traffic (empty destination labels),
    /// made on first use so an idle proxy shows no such series.
    pub passthrough_metrics: OnceLock<RequestMetrics>,
    /// Cancelled when shutdown starts.
    pub shutdown: CancellationToken,
    /// Tracks connection tasks so shutdown can wait for them.
    pub tracker: TaskTracker,
}

/// A running proxy.
pub struct Proxy {
    /// Bound outbound address.
    pub outbound_addr: SocketAddr,
    /// Bound inbound address.
    pub inbound_addr: SocketAddr,
    /// Bound admin address.
    pub admin_addr: SocketAddr,
    ctx: Arc<Ctx>,
}

impl Proxy {
    /// Binds the listeners and starts serving with `store`'s config, without
    /// identity (plaintext everywhere).
    pub async fn start(settings: Settings, store: Arc<ConfigStore>) -> std::io::Result<Self> {
        Self::start_with_identity(settings, store, Arc::new(TlsStore::disabled())).await
    }

    /// Like [`start`](Self::start), with mesh mTLS from `tls`: meshed
    /// endpoints are dialed with mTLS, inbound mesh TLS is terminated, and
    /// trust anchors arriving in the config replace those in `tls`.
    pub async fn start_with_identity(
        settings: Settings,
        store: Arc<ConfigStore>,
        tls: Arc<TlsStore>,
    ) -> std::io::Result<Self> {
        let outbound = TcpListener::bind(settings.outbound_addr).await?;
        let inbound = TcpListener::bind(settings.inbound_addr).await?;
        let admin = TcpListener::bind(settings.admin_addr).await?;
        let w = &settings.workload;
        let metrics = Arc::new(Metrics::new(&[
            (names::NAMESPACE, w.namespace.clone()),
            (names::DEPLOYMENT, w.deployment.clone()),
            (names::POD, w.pod.clone()),
        ]));
        let lookup_store = store.clone();
        let connector = MeshConnector::new(
            tls.clone(),
            Arc::new(move |addr| lookup_store.load().outbound.server_identity(addr).cloned()),
        );
        let ctx = Arc::new(Ctx {
            store,
            metrics,
            connector: Arc::new(connector),
            tls,
            settings,
            local: EndpointRegistry::default(),
            passthrough: EndpointRegistry::default(),
            passthrough_metrics: OnceLock::new(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        let proxy = Proxy {
            outbound_addr: outbound.local_addr()?,
            inbound_addr: inbound.local_addr()?,
            admin_addr: admin.local_addr()?,
            ctx: ctx.clone(),
        };
        tokio::spawn(accept_loop(
            outbound,
            ctx.clone(),
            crate::outbound::serve_connection,
        ));
        tokio::spawn(accept_loop(
            inbound,
            ctx.clone(),
            crate::inbound::serve_connection,
        ));
        tokio::spawn(accept_loop(
            admin,
            ctx.clone(),
            crate::admin::serve_connection,
        ));
        if ctx.tls.is_enabled() {
            tokio::spawn(follow_trust_anchors(ctx.clone()));
        }
        tracing::info!(
            outbound = %proxy.outbound_addr,
            inbound = %proxy.inbound_addr,
            admin = %proxy.admin_addr,
            "proxy listening"
        );
        Ok(proxy)
    }

    /// The shared context (config store, metrics).
    pub fn ctx(&self) -> &Arc<Ctx> {
        &self.ctx
    }

    /// Stops accepting, lets connections finish their requests in flight,
    /// and waits up to `deadline`. Returns whether everything drained.
    pub async fn shutdown(&self, deadline: Duration) -> bool {
        self.ctx.shutdown.cancel();
        self.ctx.tracker.close();
        tokio::time::timeout(deadline, self.ctx.tracker.wait())
            .await
            .is_ok()
    }
}

/// Trust anchors pushed on the config stream replace the current ones for
/// new handshakes (anchor rotation reaches running proxies).
async fn follow_trust_anchors(ctx: Arc<Ctx>) {
    let mut changed = ctx.store.subscribe();
    loop {
        let snap = ctx.store.load();
        let pem = &snap.config.identity.trust_anchors_pem;
        if !pem.trim().is_empty() {
            match ctx.tls.set_anchors("config identity.trustAnchorsPem", pem) {
                Ok(true) => tracing::info!(
                    generation = snap.generation,
                    "trust anchors updated from config"
                ),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "trust anchors in config rejected; keeping the current ones")
                }
            }
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return },
            _ = ctx.shutdown.cancelled() => return,
        }
    }
}

async fn accept_loop<F, Fut>(listener: TcpListener, ctx: Arc<Ctx>, serve: F)
where
    F: Fn(Arc<Ctx>, TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = ctx.shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let _ = stream.set_nodelay(true);
                ctx.tracker.spawn(serve(ctx.clone(), stream));
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
