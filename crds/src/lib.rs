//! Meshlet's API crate: SMI types for every published version, conversion
//! between them, the CRD manifests generated from them, and the contract
//! (ports, annotations, wire types, metric names) shared by operator, webhook
//! and proxy.
#![forbid(unsafe_code)]

pub mod contract;
