//! Helpers for Meshlet's end-to-end suite on kind.
//!
//! The cluster comes from `make kind-up`; tests reach it through its
//! kubeconfig ([`cluster`]), work in a namespace of their own
//! ([`namespace`]), wait with deadlines ([`wait`]) and print what the cluster
//! saw when something fails ([`diagnose`]).
#![forbid(unsafe_code)]

pub mod cluster;
pub mod diagnose;
pub mod mesh;
pub mod namespace;
pub mod scenario;
pub mod wait;
