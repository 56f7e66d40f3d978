//! The config stream: subscribers grouped by workload with one bounded
//! `watch` slot each ([`registry`]), subscriber authentication
//! ([`auth`]), and the HTTP/2 server ([`server`]).

pub mod auth;
pub mod registry;
pub mod server;

pub use registry::{Registry, Snapshot};
