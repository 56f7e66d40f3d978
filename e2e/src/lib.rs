//! Helpers for Meshlet's end-to-end suite on kind.
#![forbid(unsafe_code)]
