//! Meshlet's webhooks: the mutating webhook that injects the proxy into
//! pods, the validating webhook for SMI objects, and the CRD conversion
//! webhook, with the serving certificate and caBundles they need.
#![forbid(unsafe_code)]

pub mod certs;
pub mod inject;
pub mod namespaces;
pub mod register;
pub mod review;
pub mod run;
pub mod server;
pub mod trust_anchors;
pub mod validate;
