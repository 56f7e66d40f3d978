//! A tiny HTTP backend (`serve`) and client (`get`) for end-to-end tests.
//!
//! The server answers every request 200 with a JSON [`Reply`] naming the pod,
//! the configured version and the request path; the client fetches a URL
//! several times and summarises status codes and versions, so a test can
//! check reachability and, later, how traffic splits across versions.
#![forbid(unsafe_code)]

pub mod client;
pub mod reply;
pub mod server;
pub mod summary;

pub use reply::Reply;
