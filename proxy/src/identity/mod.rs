//! The proxy's workload identity: its certificate and the trust anchors
//! (swapped atomically for new handshakes), the key and CSR it generates,
//! the certify client that gets the certificate from the operator, and the
//! renewal loop. See `meshlet_crds::contract::identity` for the flow.

mod cert;
pub mod certify;
mod csr;
mod pem;
pub mod renew;
mod store;

pub use cert::{leaf_identity, leaf_not_after};
pub use csr::{new_key_and_csr, KeyAndCsr};
pub use pem::{parse_certs, parse_key};
pub use store::{tls_provider, LocalIdentity, MeshTls, OwnCert, TlsState, TlsStore};
