//! A real Kubernetes control plane on 127.0.0.1 for integration tests.
#![forbid(unsafe_code)]
