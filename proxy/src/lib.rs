//! Meshlet's sidecar proxy as a library: the binary and the integration
//! tests start the same [`Proxy`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod app;
pub mod balance;
pub mod config;
pub mod detect;
pub mod http;
pub mod identity;
pub mod inbound;
pub mod init;
pub mod metrics;
pub mod outbound;
pub mod settings;
pub mod split;
pub mod tcp;
pub mod transport;

pub use app::Proxy;
pub use config::ConfigStore;
pub use settings::Settings;
