//! Meshlet's control plane: watches SMI objects and the Kubernetes objects
//! they refer to, computes each proxy's configuration, streams it to the
//! proxies, and reports misconfigured SMI objects as Events.
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod context;
pub mod events;
pub mod http;
pub mod identity;
pub mod leader;
pub mod metrics;
pub mod state;
pub mod status;
pub mod stream;
pub mod telemetry;
pub mod trafficmetrics;

pub mod fixtures;

/// Everything that can go wrong in the operator, by cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A watch on the Kubernetes API failed.
    #[error("watching {kind}: {source}")]
    Watch {
        /// The kind watched.
        kind: &'static str,
        /// The watcher's error.
        source: kube::runtime::watcher::Error,
    },
    /// A socket could not be bound or accepted on.
    #[error("{what}: {source}")]
    Io {
        /// What the socket is for.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A config stream subscriber could not be authenticated.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// A config stream subscriber asked for something that does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A config stream request was malformed; the message names the field.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The TrafficMetrics API could not start; the message names the flag or file.
    #[error("metrics API: {0}")]
    MetricsApi(String),
    /// The identity CA could not be loaded or set up.
    #[error("identity: {0}")]
    Identity(#[from] identity::CaError),
}

/// Result with the operator's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
