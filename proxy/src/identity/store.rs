//! The TLS material every new handshake reads: the trust anchors, the
//! proxy's own certificate and the rustls configs built from them, in one
//! atomically swapped snapshot. Connections already established keep the
//! config they started with, so a swap (renewal, anchor rotation) never
//! disturbs traffic in flight.

use super::cert::{leaf_identity, leaf_not_after};
use super::pem::parse_certs;
use meshlet_crds::contract::identity::{SpiffeId, ALPN_H2, ALPN_HTTP1, ALPN_OPAQUE};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

/// The crypto provider used everywhere (ring, as in the rest of the
/// workspace).
pub fn tls_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Who this proxy is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalIdentity {
    /// The SPIFFE ID its certificate carries.
    pub id: SpiffeId,
    /// The SNI peers send to reach it (`SpiffeId::tls_server_name`).
    pub server_name: String,
}

impl LocalIdentity {
    /// The identity `id`.
    pub fn new(id: SpiffeId) -> Self {
        let server_name = id.tls_server_name();
        Self { id, server_name }
    }
}

/// The proxy's own certificate chain and key.
pub struct OwnCert {
    /// Leaf first, then intermediates.
    pub chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    /// When the leaf expires.
    pub not_after: SystemTime,
}

impl std::fmt::Debug for OwnCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnCert")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// rustls configs for mesh mTLS with the current certificate and anchors.
#[derive(Debug)]
pub struct MeshTls {
    /// The certificate they present.
    pub cert: Arc<OwnCert>,
    client_h1: Arc<ClientConfig>,
    client_h2: Arc<ClientConfig>,
    client_opaque: Arc<ClientConfig>,
    /// Terminates mesh TLS: requires a client certificate chaining to the
    /// anchors; ALPN h2, http/1.1 or opaque.
    pub server: Arc<ServerConfig>,
}

impl MeshTls {
    /// The client config offering exactly `alpn`.
    pub fn client(&self, alpn: &[u8]) -> Arc<ClientConfig> {
        match alpn {
            ALPN_H2 => self.client_h2.clone(),
            ALPN_HTTP1 => self.client_h1.clone(),
            _ => self.client_opaque.clone(),
        }
    }
}

/// One consistent snapshot of the TLS material.
#[derive(Debug, Default)]
pub struct TlsState {
    /// The anchors bundle as PEM (empty when identity is disabled).
    pub anchors_pem: String,
    /// Verifies the operator (server auth only; ALPN h2, http/1.1).
    pub operator: Option<Arc<ClientConfig>>,
    /// Mesh mTLS, once a certificate is present.
    pub mesh: Option<MeshTls>,
}

/// Holds the current [`TlsState`].
#[derive(Debug, Default)]
pub struct TlsStore {
    local: Option<LocalIdentity>,
    current: arc_swap::ArcSwap<TlsState>,
    /// Serialises writers, so an anchor update and a renewal cannot lose
    /// each other's change.
    write: Mutex<Inputs>,
    changed: tokio::sync::watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Inputs {
    roots: Option<Arc<RootCertStore>>,
    cert: Option<Arc<OwnCert>>,
    version: u64,
}

fn roots_from_pem(what: &str, pem: &str) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for (i, c) in parse_certs(what, pem)?.into_iter().enumerate() {
        roots
            .add(c)
            .map_err(|e| format!("{what}: certificate {i} is not a usable anchor: {e}"))?;
    }
    Ok(Arc::new(roots))
}

fn client_builder() -> rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier> {
    ClientConfig::builder_with_provider(tls_provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("ring supports TLS 1.3")
}

fn server_verifier(roots: &Arc<RootCertStore>) -> Result<Arc<WebPkiServerVerifier>, String> {
    WebPkiServerVerifier::builder_with_provider(roots.clone(), tls_provider())
        .build()
        .map_err(|e| format!("trust anchors: {e}"))
}

fn build(roots: &Arc<RootCertStore>, cert: Option<&Arc<OwnCert>>) -> Result<TlsState, String> {
    let mut operator = client_builder()
        .with_webpki_verifier(server_verifier(roots)?)
        .with_no_client_auth();
    operator.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    let mesh = match cert {
        None => None,
        Some(cert) => {
            let client = client_builder()
                .with_webpki_verifier(server_verifier(roots)?)
                .with_client_auth_cert(cert.chain.clone(), cert.key.clone_key())
                .map_err(|e| format!("own certificate: {e}"))?;
            let with_alpn = |alpn: &[u8]| {
                let mut c = client.clone();
                c.alpn_protocols = vec![alpn.to_vec()];
                Arc::new(c)
            };
            let verifier =
                WebPkiClientVerifier::builder_with_provider(roots.clone(), tls_provider())
                    .build()
                    .map_err(|e| format!("trust anchors: {e}"))?;
            let mut server = ServerConfig::builder_with_provider(tls_provider())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("ring supports TLS 1.3")
                .with_client_cert_verifier(verifier)
                .with_single_cert(cert.chain.clone(), cert.key.clone_key())
                .map_err(|e| format!("own certificate: {e}"))?;
            server.alpn_protocols =
                vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec(), ALPN_OPAQUE.to_vec()];
            Some(MeshTls {
                cert: cert.clone(),
                client_h1: with_alpn(ALPN_HTTP1),
                client_h2: with_alpn(ALPN_H2),
                client_opaque: with_alpn(ALPN_OPAQUE),
                server: Arc::new(server),
            })
        }
    };
    Ok(TlsState {
        anchors_pem: String::new(),
        operator: Some(Arc::new(operator)),
        mesh,
    })
}

impl TlsStore {
    /// Identity disabled: no anchors, no certificate, plaintext everywhere.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Identity `local` (or, without one, only verification of the
    /// operator), trusting the PEM bundle `anchors_pem`; `what` names the
    /// input in errors.
    pub fn new(
        local: Option<LocalIdentity>,
        what: &str,
        anchors_pem: &str,
    ) -> Result<Self, String> {
        let store = Self {
            local,
            ..Self::default()
        };
        store.update(
            |inputs| {
                inputs.roots = Some(roots_from_pem(what, anchors_pem)?);
                Ok(true)
            },
            Some(anchors_pem),
        )?;
        Ok(store)
    }

    /// Who this proxy is; `None` when identity is disabled.
    pub fn local(&self) -> Option<&LocalIdentity> {
        self.local.as_ref()
    }

    /// Whether this proxy has an identity (then it needs a certificate).
    pub fn is_enabled(&self) -> bool {
        self.local.is_some()
    }

    /// The current snapshot.
    pub fn load(&self) -> Arc<TlsState> {
        self.current.load_full()
    }

    /// Whether a certificate is present and not expired (readiness).
    pub fn has_valid_cert(&self) -> bool {
        self.load()
            .mesh
            .as_ref()
            .is_some_and(|m| m.cert.not_after > SystemTime::now())
    }

    /// Notified with a counter after every change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn update(
        &self,
        change: impl FnOnce(&mut Inputs) -> Result<bool, String>,
        anchors_pem: Option<&str>,
    ) -> Result<bool, String> {
        let mut inputs = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = Inputs {
            roots: inputs.roots.clone(),
            cert: inputs.cert.clone(),
            version: inputs.version,
        };
        if !change(&mut next)? {
            return Ok(false);
        }
        let roots = next.roots.as_ref().ok_or("no trust anchors configured")?;
        let mut state = build(roots, next.cert.as_ref())?;
        state.anchors_pem = anchors_pem
            .map(str::to_string)
            .unwrap_or_else(|| self.current.load().anchors_pem.clone());
        next.version += 1;
        *inputs = next;
        self.current.store(Arc::new(state));
        self.changed.send_replace(inputs.version);
        Ok(true)
    }

    /// Trusts exactly the anchors in `pem` from now on (new handshakes).
    /// Returns whether anything changed; a bad bundle is an error and the
    /// current anchors stay.
    pub fn set_anchors(&self, what: &str, pem: &str) -> Result<bool, String> {
        if self.load().anchors_pem == pem {
            return Ok(false);
        }
        let roots = roots_from_pem(what, pem)?;
        self.update(
            |inputs| {
                inputs.roots = Some(roots);
                Ok(true)
            },
            Some(pem),
        )
    }

    /// Presents `chain` (leaf first) with `key` on new handshakes. The
    /// leaf must carry this proxy's identity and match the key.
    pub fn set_certificate(
        &self,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<(), String> {
        let leaf = chain.first().ok_or("certificate chain is empty")?;
        let id = leaf_identity(leaf)?;
        if let Some(local) = &self.local {
            if id != local.id {
                return Err(format!(
                    "certificate is for {id}, but this proxy is {}",
                    local.id
                ));
            }
        }
        let not_after = leaf_not_after(leaf)?;
        let cert = Arc::new(OwnCert {
            chain,
            key,
            not_after,
        });
        self.update(
            |inputs| {
                inputs.cert = Some(cert);
                Ok(true)
            },
            None,
        )
        .map(|_| ())
    }
}
