//! The JSON body every `serve` response carries.

use serde::{Deserialize, Serialize};

/// What the server says about itself and the request it answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// `POD_NAME` of the serving pod (empty outside Kubernetes).
    pub pod: String,
    /// The configured version label, e.g. `v1` or `v2` for canary tests.
    pub version: String,
    /// Request method.
    pub method: String,
    /// Request path and query, as received.
    pub path: String,
}
