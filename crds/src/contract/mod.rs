//! The contract between Meshlet's parts: one definition of each port,
//! annotation, label, identity scheme, wire type and metric name. Operator,
//! webhook and proxy import these; a change here is a versioned change.

pub mod annotations;
pub mod config;
pub mod identity;
pub mod install;
pub mod metrics;
pub mod ports;
pub mod proxy_env;
