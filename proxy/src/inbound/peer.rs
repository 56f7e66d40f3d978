//! Who is on the other end of an inbound connection, as far as the proxy
//! can prove it: the verified identity of an mTLS client, or nothing.

use meshlet_crds::contract::identity::SpiffeId;
use meshlet_crds::contract::metrics as names;

/// The client of an inbound connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// Mesh mTLS with a client certificate verified for this identity.
    Mtls(SpiffeId),
    /// No mesh TLS: an unmeshed client, the kubelet, or app-level TLS.
    Plaintext,
}

impl Peer {
    /// The client's verified identity, if any.
    pub fn identity(&self) -> Option<&SpiffeId> {
        match self {
            Peer::Mtls(id) => Some(id),
            Peer::Plaintext => None,
        }
    }

    /// Value of the `tls` metric label.
    pub fn tls_label(&self) -> &'static str {
        match self {
            Peer::Mtls(_) => "true",
            Peer::Plaintext => names::TLS_NO_IDENTITY,
        }
    }
}
