//! The config stream: subscribers grouped by workload with one bounded
//! `watch` slot each ([`registry`]), subscriber authentication
//! ([`auth`]), the stream endpoint ([`server`]) and the TLS config port
//! it shares with the certify endpoint ([`port`]).

pub mod auth;
pub mod port;
pub mod registry;
pub mod server;

pub use registry::{Registry, Snapshot};
