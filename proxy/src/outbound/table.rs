//! The outbound routing table compiled from a config: destination lookup by
//! `ip:port` or authority, splits, routes and endpoints.

use crate::balance::{EndpointRegistry, RetryBudget, Weighted};
use crate::metrics::RequestMetricsCache;
use crate::split::{self, CompiledMatch, RequestView};
use meshlet_crds::contract::config::{
    AppProtocol, Endpoint, OutboundConfig, OutlierPolicy, RetryPolicy, ServiceRef,
};
use meshlet_crds::contract::identity::SpiffeId;
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A service port: index into [`Table::services`] and port number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    /// Service index.
    pub service: usize,
    /// Service port.
    pub port: u16,
}

/// A compiled service.
#[derive(Debug)]
pub struct ServiceEntry {
    /// Service name.
    pub name: String,
    /// Service namespace.
    pub namespace: String,
    ports: Vec<PortEntry>,
    split: Option<SplitEntry>,
    routes: Vec<RouteEntry>,
    timeout: Option<Duration>,
    /// Outlier ejection policy of its endpoints.
    pub outlier: OutlierPolicy,
}

#[derive(Debug)]
struct PortEntry {
    port: u16,
    protocol: AppProtocol,
    endpoints: Vec<Weighted>,
    tls: PortTls,
    /// The `server_id` metric label of `tls`, formatted once per config
    /// rather than per request.
    server_id: Option<Arc<str>>,
}

/// Whether every endpoint of a port is reached over mesh mTLS (metric
/// labels are chosen per backend port, before an endpoint is picked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortTls {
    /// Some endpoint is not meshed (or the port has none).
    Plaintext,
    /// All meshed; `Some` when they share one identity.
    Mtls(Option<SpiffeId>),
}

/// The identity to expect from a meshed endpoint; `None` when it is not
/// meshed or the operator does not know its identity (then it gets
/// plaintext). An identity that does not parse is an error naming `field`.
pub fn endpoint_identity(e: &Endpoint, field: &str) -> Result<Option<SpiffeId>, String> {
    match (&e.identity, e.meshed) {
        (Some(id), true) => id
            .parse()
            .map(Some)
            .map_err(|err| format!("{field}.identity: {err}")),
        _ => Ok(None),
    }
}

/// A split backend: service index, weight, root port → backend port.
type BackendEntry = (usize, u32, Vec<(u16, u16)>);

#[derive(Debug)]
struct SplitEntry {
    backends: Vec<BackendEntry>,
    matches: Vec<CompiledMatch>,
}

#[derive(Debug)]
struct RouteEntry {
    name: String,
    matches: Vec<CompiledMatch>,
    timeout: Option<Duration>,
    retry: Option<Arc<(RetryPolicy, RetryBudget)>>,
}

/// The policy that applies to one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoutePolicy<'a> {
    /// Index of the matched route in its service, `None` when none matched.
    pub index: Option<usize>,
    /// Route name, empty when no route matched.
    pub name: &'a str,
    /// Time allowed until response headers.
    pub timeout: Option<Duration>,
    /// Retry policy and its budget.
    pub retry: Option<&'a (RetryPolicy, RetryBudget)>,
}

/// What outbound request metric labels depend on: the root service, its
/// matched route, the backend chosen, and whether mesh TLS is on.
pub type RequestMetricsKey = (usize, Option<usize>, Target, bool);

/// The compiled outbound table.
#[derive(Debug, Default)]
pub struct Table {
    services: Vec<ServiceEntry>,
    by_addr: foldhash::HashMap<SocketAddr, Target>,
    by_authority: foldhash::HashMap<String, Target>,
    identities: foldhash::HashMap<SocketAddr, SpiffeId>,
    /// Request metric series of this config's routes and backends.
    pub request_metrics: RequestMetricsCache<RequestMetricsKey>,
}

fn compile_matches(
    ms: &[meshlet_crds::contract::config::HttpMatch],
    field: &str,
) -> Result<Vec<CompiledMatch>, String> {
    ms.iter()
        .enumerate()
        .map(|(i, m)| CompiledMatch::compile(m, &format!("{field}[{i}]")))
        .collect()
}

/// Normalises an authority to `host:port` in lower case (port 80 when
/// missing), borrowing when it already is. Used when a config is compiled;
/// [`Table::by_authority`] looks up per request without it.
pub fn normalize_authority(a: &str) -> Cow<'_, str> {
    let a = a.trim();
    let has_port = match a.rfind(':') {
        Some(i) => !a.ends_with(']') && a[i + 1..].bytes().all(|b| b.is_ascii_digit()),
        None => false,
    };
    let lower = !a.bytes().any(|b| b.is_ascii_uppercase());
    match (has_port, lower) {
        (true, true) => Cow::Borrowed(a),
        (true, false) => Cow::Owned(a.to_ascii_lowercase()),
        (false, _) => Cow::Owned(format!("{}:80", a.to_ascii_lowercase())),
    }
}

impl Table {
    /// Compiles `cfg`, reusing endpoint state from `registry`. Errors name
    /// the offending field.
    pub fn build(cfg: &OutboundConfig, registry: &EndpointRegistry) -> Result<Self, String> {
        let mut t = Table::default();
        let mut by_ref: HashMap<ServiceRef, usize> = HashMap::new();
        for (i, s) in cfg.services.iter().enumerate() {
            let key = ServiceRef {
                name: s.name.clone(),
                namespace: s.namespace.clone(),
            };
            if by_ref.insert(key, i).is_some() {
                return Err(format!(
                    "outbound.services[{i}]: duplicate service {}/{}",
                    s.namespace, s.name
                ));
            }
        }
        for (i, s) in cfg.services.iter().enumerate() {
            let field = format!("outbound.services[{i}]({}/{})", s.namespace, s.name);
            let mut ports = Vec::with_capacity(s.ports.len());
            for (pi, p) in s.ports.iter().enumerate() {
                let mut ids = Vec::with_capacity(p.endpoints.len());
                for (ei, e) in p.endpoints.iter().enumerate() {
                    let efield = format!("{field}.ports[{pi}].endpoints[{ei}]");
                    let id = endpoint_identity(e, &efield)?;
                    if let Some(id) = &id {
                        match t.identities.get(&e.addr) {
                            Some(other) if other != id => {
                                return Err(format!(
                                    "{efield}: {} is listed elsewhere with identity {other}, here with {id}",
                                    e.addr
                                ))
                            }
                            _ => {
                                t.identities.insert(e.addr, id.clone());
                            }
                        }
                    }
                    ids.push(id);
                }
                let tls = if ids.is_empty() || ids.iter().any(Option::is_none) {
                    PortTls::Plaintext
                } else {
                    let first = ids[0].clone();
                    PortTls::Mtls(first.filter(|f| ids.iter().all(|i| i.as_ref() == Some(f))))
                };
                let server_id = match &tls {
                    PortTls::Mtls(Some(id)) => Some(Arc::from(id.to_string())),
                    _ => None,
                };
                ports.push(PortEntry {
                    server_id,
                    port: p.port,
                    protocol: p.protocol,
                    endpoints: p
                        .endpoints
                        .iter()
                        .map(|e| Weighted {
                            endpoint: registry.get(e.addr),
                            weight: e.weight,
                        })
                        .collect(),
                    tls,
                });
            }
            for ip in &s.cluster_ips {
                for p in &s.ports {
                    t.by_addr.insert(
                        SocketAddr::new(*ip, p.port),
                        Target {
                            service: i,
                            port: p.port,
                        },
                    );
                }
            }
            for a in &s.authorities {
                let a = normalize_authority(a);
                let port = a
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| format!("{field}.authorities: bad authority {a:?}"))?;
                let target = Target { service: i, port };
                // Clients leave out port 80 (`Host: web`): that spelling
                // is a key too, so a lookup never has to allocate one.
                if let Some(host) = a.strip_suffix(":80") {
                    t.by_authority.insert(host.to_string(), target);
                }
                t.by_authority.insert(a.into_owned(), target);
            }
            let split = s
                .split
                .as_ref()
                .map(|sp| -> Result<SplitEntry, String> {
                    let backends = sp
                        .backends
                        .iter()
                        .enumerate()
                        .map(|(j, b)| {
                            let idx = *by_ref.get(&b.service).ok_or_else(|| {
                                format!(
                                    "{field}.split.backends[{j}].service: {}/{} is not in outbound.services",
                                    b.service.namespace, b.service.name
                                )
                            })?;
                            let map = b.ports.iter().map(|m| (m.port, m.backend_port)).collect();
                            Ok((idx, b.weight, map))
                        })
                        .collect::<Result<_, String>>()?;
                    Ok(SplitEntry {
                        backends,
                        matches: compile_matches(&sp.matches, &format!("{field}.split.matches"))?,
                    })
                })
                .transpose()?;
            let routes = s
                .routes
                .iter()
                .enumerate()
                .map(|(j, r)| -> Result<RouteEntry, String> {
                    Ok(RouteEntry {
                        name: r.name.clone(),
                        matches: compile_matches(
                            &r.matches,
                            &format!("{field}.routes[{j}].matches"),
                        )?,
                        timeout: r.timeout_ms.map(Duration::from_millis),
                        retry: r.retry.as_ref().map(|p| {
                            Arc::new((
                                p.clone(),
                                RetryBudget::new(p.budget_ratio, p.min_retries_per_second),
                            ))
                        }),
                    })
                })
                .collect::<Result<_, _>>()?;
            t.services.push(ServiceEntry {
                name: s.name.clone(),
                namespace: s.namespace.clone(),
                ports,
                split,
                routes,
                timeout: s.timeout_ms.map(Duration::from_millis),
                outlier: s.outlier.clone().unwrap_or_default(),
            });
        }
        Ok(t)
    }

    /// The service at `ip:port` (a cluster IP).
    pub fn by_addr(&self, addr: SocketAddr) -> Option<Target> {
        self.by_addr.get(&addr).copied()
    }

    /// The service named by a Host header or `:authority`.
    pub fn by_authority(&self, authority: &str) -> Option<Target> {
        let a = authority.trim();
        if a.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_authority.get(&a.to_ascii_lowercase())
        } else {
            self.by_authority.get(a)
        }
        .copied()
    }

    /// The compiled service.
    pub fn service(&self, i: usize) -> &ServiceEntry {
        &self.services[i]
    }

    fn port(&self, t: Target) -> Option<&PortEntry> {
        self.services[t.service]
            .ports
            .iter()
            .find(|p| p.port == t.port)
    }

    /// The endpoints of a service port (empty when the port is unknown).
    pub fn endpoints(&self, t: Target) -> &[Weighted] {
        self.port(t).map_or(&[], |p| &p.endpoints)
    }

    /// Whether a service port's endpoints are reached over mesh mTLS.
    pub fn tls(&self, t: Target) -> PortTls {
        self.port(t).map_or(PortTls::Plaintext, |p| p.tls.clone())
    }

    /// For a service port reached over mesh mTLS, its `server_id` label
    /// (`None` inside when the endpoints' identities differ); `None` when
    /// plaintext.
    pub fn mtls_server_id(&self, t: Target) -> Option<Option<&Arc<str>>> {
        let p = self.port(t)?;
        matches!(p.tls, PortTls::Mtls(_)).then_some(p.server_id.as_ref())
    }

    /// The identity expected at a meshed endpoint address.
    pub fn server_identity(&self, addr: SocketAddr) -> Option<&SpiffeId> {
        self.identities.get(&addr)
    }

    /// Whether the port skips protocol detection.
    pub fn is_opaque(&self, t: Target) -> bool {
        self.port(t)
            .is_some_and(|p| p.protocol == AppProtocol::Opaque)
    }

    /// Applies the root service's split: the backend to use. `req` is `None`
    /// for TCP, which only splits when the split has no HTTP matches.
    pub fn choose_backend(&self, root: Target, req: Option<&RequestView<'_>>) -> Target {
        let Some(sp) = &self.services[root.service].split else {
            return root;
        };
        if !sp.matches.is_empty() {
            let matched = req.is_some_and(|r| sp.matches.iter().any(|m| m.matches(r)));
            if !matched {
                return root;
            }
        }
        match split::choose_random(sp.backends.iter().map(|b| b.1)) {
            Some(i) => {
                let (svc, _, map) = &sp.backends[i];
                let port = map
                    .iter()
                    .find(|(from, _)| *from == root.port)
                    .map_or(root.port, |(_, to)| *to);
                Target {
                    service: *svc,
                    port,
                }
            }
            None => root,
        }
    }

    /// The route policy for a request to service `svc` (first match wins;
    /// the service's timeout applies when no route matches or sets one).
    pub fn route(&self, svc: usize, req: &RequestView<'_>) -> RoutePolicy<'_> {
        let s = &self.services[svc];
        let route = s
            .routes
            .iter()
            .enumerate()
            .find(|(_, r)| r.matches.is_empty() || r.matches.iter().any(|m| m.matches(req)));
        match route {
            Some((i, r)) => RoutePolicy {
                index: Some(i),
                name: &r.name,
                timeout: r.timeout.or(s.timeout),
                retry: r.retry.as_deref(),
            },
            None => RoutePolicy {
                timeout: s.timeout,
                ..Default::default()
            },
        }
    }

    /// Every endpoint address in the table.
    pub fn endpoint_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.services
            .iter()
            .flat_map(|s| s.ports.iter())
            .flat_map(|p| p.endpoints.iter().map(|w| w.endpoint.addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlet_crds::contract::config::*;

    fn svc(name: &str, ip: &str, ep_port: u16) -> Service {
        Service {
            name: name.into(),
            namespace: "ns".into(),
            cluster_ips: vec![ip.parse().unwrap()],
            authorities: vec![format!("{name}.ns.svc.cluster.local:80")],
            ports: vec![ServicePort {
                port: 80,
                endpoints: vec![Endpoint {
                    addr: SocketAddr::from(([127, 0, 0, 1], ep_port)),
                    meshed: false,
                    identity: None,
                    zone: None,
                    labels: Default::default(),
                    weight: 1,
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn looks_up_by_cluster_ip_and_authority() {
        let cfg = OutboundConfig {
            services: vec![svc("a", "10.0.0.1", 1), svc("b", "10.0.0.2", 2)],
        };
        let t = Table::build(&cfg, &EndpointRegistry::default()).unwrap();
        let b = t.by_addr("10.0.0.2:80".parse().unwrap()).unwrap();
        assert_eq!(t.service(b.service).name, "b");
        assert_eq!(t.by_authority("B.ns.svc.cluster.local"), Some(b));
        assert_eq!(t.by_authority("b.ns.svc.cluster.local:81"), None);
        assert_eq!(t.by_authority("b.ns.svc.cluster.local"), Some(b));
        assert_eq!(t.by_authority(" b.ns.svc.cluster.local:80 "), Some(b));
        assert_eq!(t.endpoints(b)[0].endpoint.addr.port(), 2);
    }

    #[test]
    fn split_matches_restrict_the_split() {
        let mut root = svc("root", "10.0.0.1", 1);
        root.split = Some(Split {
            name: "s".into(),
            backends: vec![SplitBackend {
                service: ServiceRef {
                    name: "canary".into(),
                    namespace: "ns".into(),
                },
                weight: 1,
                ports: vec![],
            }],
            matches: vec![HttpMatch {
                path_regex: Some("/canary.*".into()),
                ..Default::default()
            }],
        });
        let cfg = OutboundConfig {
            services: vec![root, svc("canary", "10.0.0.2", 2)],
        };
        let t = Table::build(&cfg, &EndpointRegistry::default()).unwrap();
        let root = t.by_addr("10.0.0.1:80".parse().unwrap()).unwrap();
        let h = http::HeaderMap::new();
        let view = |p: &'static str| RequestView {
            method: &http::Method::GET,
            path: p,
            headers: &h,
        };
        assert_eq!(t.choose_backend(root, Some(&view("/other"))), root);
        assert_eq!(t.choose_backend(root, None), root);
        assert_eq!(t.choose_backend(root, Some(&view("/canary/1"))).service, 1);
    }

    #[test]
    fn unknown_split_backend_is_an_error_naming_the_field() {
        let mut root = svc("root", "10.0.0.1", 1);
        root.split = Some(Split {
            backends: vec![SplitBackend {
                service: ServiceRef {
                    name: "nope".into(),
                    namespace: "ns".into(),
                },
                weight: 1,
                ports: vec![],
            }],
            ..Default::default()
        });
        let e = Table::build(
            &OutboundConfig {
                services: vec![root],
            },
            &EndpointRegistry::default(),
        )
        .unwrap_err();
        assert!(e.contains("split.backends[0].service"), "{e}");
    }

    #[test]
    fn meshed_endpoints_carry_their_identity() {
        let mut a = svc("a", "10.0.0.1", 1);
        let ep = &mut a.ports[0].endpoints[0];
        ep.meshed = true;
        ep.identity = Some("spiffe://cluster.local/ns/ns/sa/a".into());
        let mut b = svc("b", "10.0.0.2", 2);
        b.ports[0].endpoints[0].identity = Some("spiffe://cluster.local/ns/ns/sa/b".into());
        let cfg = OutboundConfig {
            services: vec![a, b],
        };
        let t = Table::build(&cfg, &EndpointRegistry::default()).unwrap();
        let ta = t.by_addr("10.0.0.1:80".parse().unwrap()).unwrap();
        let tb = t.by_addr("10.0.0.2:80".parse().unwrap()).unwrap();
        let id: SpiffeId = "spiffe://cluster.local/ns/ns/sa/a".parse().unwrap();
        assert_eq!(t.tls(ta), PortTls::Mtls(Some(id.clone())));
        // An identity on an endpoint that is not meshed does not make it mTLS.
        assert_eq!(t.tls(tb), PortTls::Plaintext);
        assert_eq!(t.server_identity("127.0.0.1:1".parse().unwrap()), Some(&id));
        assert_eq!(t.server_identity("127.0.0.1:2".parse().unwrap()), None);
    }

    #[test]
    fn a_bad_identity_names_the_field() {
        let mut a = svc("a", "10.0.0.1", 1);
        a.ports[0].endpoints[0].meshed = true;
        a.ports[0].endpoints[0].identity = Some("spiffe://x/ns/a".into());
        let e = Table::build(
            &OutboundConfig { services: vec![a] },
            &EndpointRegistry::default(),
        )
        .unwrap_err();
        assert!(e.contains("ports[0].endpoints[0].identity"), "{e}");
    }

    #[test]
    fn authorities_default_to_port_80() {
        assert_eq!(normalize_authority("Web.NS"), "web.ns:80");
        assert_eq!(normalize_authority("web:8080"), "web:8080");
        assert_eq!(normalize_authority("[::1]"), "[::1]:80");
        assert_eq!(normalize_authority(" WEB:81 "), "web:81");
        assert!(matches!(
            normalize_authority("web:81"),
            Cow::Borrowed("web:81")
        ));
    }
}
