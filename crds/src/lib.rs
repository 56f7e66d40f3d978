//! Meshlet's API crate: SMI types for every published version, conversion
//! between them, the CRD manifests generated from them, and the contract
//! (ports, annotations, wire types, metric names) shared by operator, webhook
//! and proxy.
#![forbid(unsafe_code)]

pub mod access;
pub mod contract;
pub mod conversion;
pub mod manifests;
pub mod metrics;
pub mod quantity;
pub mod schema;
pub mod specs;
pub mod split;
