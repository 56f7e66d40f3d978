//! Inbound access decisions with SMI TrafficTarget semantics: access is
//! additive and denied by default; a client is allowed when its verified
//! identity is a source of a TrafficTarget for this pod and the traffic
//! matches one of that target's rules. Permissive mode allows everything;
//! kubelet probes (plaintext GETs of the pod's `httpGet` probe paths) are
//! allowed under default deny.

use super::policy::{is_ambiguous_path, InboundPolicy};
use super::Peer;
use crate::http::{full, Body};
use crate::split::RequestView;
use http::{header, HeaderValue, Response, StatusCode};
use meshlet_crds::contract::config::GRPC_HEALTH_CHECK_PATH;
use meshlet_crds::contract::metrics as names;

/// What is being decided on.
#[derive(Clone, Copy, Debug)]
pub enum Traffic<'a> {
    /// One HTTP request.
    Http(&'a RequestView<'a>),
    /// A whole TCP connection (opaque or not HTTP).
    Tcp,
}

/// The outcome of [`decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision<'p> {
    /// Let it through.
    Allow(Grant<'p>),
    /// Refuse it: 403 for HTTP, close for TCP.
    Deny(Denial),
}

/// Why traffic was allowed (for logs and tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant<'p> {
    /// Permissive mode.
    Permissive,
    /// A kubelet probe.
    Probe,
    /// The named TrafficTarget.
    Target(&'p str),
}

/// Why traffic was refused, one of the contract's deny reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// No TrafficTarget for this pod lists the client's identity.
    UnauthorizedSource,
    /// The client is listed, but none of its targets' rules match.
    NoMatchingRule,
    /// A plaintext client where only mTLS clients can be allowed.
    TlsRequired,
}

impl DenyReason {
    /// The value of the `reason` metric label (see `DENY_REASONS`).
    pub fn as_str(self) -> &'static str {
        let i = match self {
            DenyReason::UnauthorizedSource => 0,
            DenyReason::NoMatchingRule => 1,
            DenyReason::TlsRequired => 2,
        };
        names::DENY_REASONS[i]
    }
}

/// A refusal with a one-line explanation for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// Machine-readable reason.
    pub reason: DenyReason,
    /// What was refused and why, one line.
    pub message: String,
}

impl Denial {
    fn deny(reason: DenyReason, message: String) -> Decision<'static> {
        Decision::Deny(Denial { reason, message })
    }

    /// The 403 sent for a denied HTTP request: a one-line text/plain body
    /// `meshlet: denied: <message>`, the reason in `meshlet-proxy-error`.
    pub fn http_response(&self) -> Response<Body> {
        let mut rsp = Response::new(full(format!("meshlet: denied: {}\n", self.message)));
        *rsp.status_mut() = StatusCode::FORBIDDEN;
        let headers = rsp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            "meshlet-proxy-error",
            HeaderValue::from_static(self.reason.as_str()),
        );
        rsp
    }
}

/// Longest path quoted in a deny message.
const MAX_QUOTED_PATH: usize = 100;

/// Decides whether `peer` may send `traffic` to app port `port` under `policy`.
pub fn decide<'p>(
    policy: &'p InboundPolicy,
    peer: &Peer,
    port: u16,
    traffic: Traffic<'_>,
) -> Decision<'p> {
    if policy.permissive {
        return Decision::Allow(Grant::Permissive);
    }
    let Some(client) = peer.identity() else {
        if let Traffic::Http(req) = traffic {
            // The kubelet GETs HTTP probes and POSTs the gRPC health check.
            let probe_method = req.method == http::Method::GET
                || (req.method == http::Method::POST && req.path == GRPC_HEALTH_CHECK_PATH);
            if probe_method && policy.is_probe(port, req.path) {
                return Decision::Allow(Grant::Probe);
            }
        }
        return Denial::deny(
            DenyReason::TlsRequired,
            format!("plaintext client on port {port}; this pod admits only mTLS clients allowed by a TrafficTarget"),
        );
    };
    let mut listed = false;
    for target in policy.targets.iter().filter(|t| t.has_source(client)) {
        listed = true;
        let allowed = match traffic {
            Traffic::Http(req) => target.allows_request(port, req),
            Traffic::Tcp => target.allows_connection(port),
        };
        if allowed {
            return Decision::Allow(Grant::Target(&target.name));
        }
    }
    if !listed {
        return Denial::deny(
            DenyReason::UnauthorizedSource,
            format!("{client} is not a source of any TrafficTarget for this pod"),
        );
    }
    let mut targets: Vec<&str> = policy
        .targets
        .iter()
        .filter(|t| t.has_source(client))
        .map(|t| t.name.as_str())
        .collect();
    targets.dedup();
    let (what, why) = match traffic {
        Traffic::Http(req) => {
            let path = req.path.get(..MAX_QUOTED_PATH).unwrap_or(req.path);
            let why = if is_ambiguous_path(req.path) {
                " (paths with dot-segments or encoded slashes match no pathRegex)"
            } else {
                ""
            };
            (format!("{} {path}", req.method), why)
        }
        Traffic::Tcp => (format!("TCP port {port}"), ""),
    };
    Denial::deny(
        DenyReason::NoMatchingRule,
        format!(
            "{what} from {client} matches no rule of TrafficTarget {}{why}",
            targets.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlet_crds::contract::config::{
        HttpMatch, InboundConfig, InboundPolicy as Policy, ProbeRoute,
    };
    use meshlet_crds::contract::identity::SpiffeId;
    use std::collections::BTreeMap;

    fn id(sa: &str) -> String {
        format!("spiffe://cluster.local/ns/default/sa/{sa}")
    }

    fn mtls(sa: &str) -> Peer {
        Peer::Mtls(id(sa).parse::<SpiffeId>().unwrap())
    }

    fn m(name: &str, path: Option<&str>, methods: &[&str], headers: &[(&str, &str)]) -> HttpMatch {
        HttpMatch {
            name: Some(name.into()),
            path_regex: path.map(Into::into),
            methods: methods.iter().map(|s| s.to_string()).collect(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    /// The SMI traffic-access example (api-service with routes `api` and
    /// `metrics`), plus a header-filtered target and a TCPRoute on 3306.
    fn smi_example(permissive: bool) -> InboundPolicy {
        let api = m("api", Some("/api"), &["*"], &[]);
        let metrics = m("metrics", Some("/metrics"), &["GET"], &[]);
        let android = m(
            "android-insiders",
            None,
            &[],
            &[
                ("user-agent", ".*Android.*"),
                ("cookie", "^(.*?;)?(type=insider)(;.*)?$"),
            ],
        );
        InboundPolicy::build(&InboundConfig {
            permissive,
            policies: vec![
                Policy {
                    name: "api-service-api".into(),
                    sources: vec![id("website-service"), id("payments-service")],
                    http: vec![api],
                    tcp_ports: vec![],
                    ports: vec![],
                },
                Policy {
                    name: "api-service-metrics".into(),
                    sources: vec![id("prometheus")],
                    http: vec![metrics],
                    tcp_ports: vec![],
                    ports: vec![],
                },
                Policy {
                    name: "insiders".into(),
                    sources: vec![id("mobile-bff")],
                    http: vec![
                        android,
                        m(
                            "iphone",
                            Some("/api/.*"),
                            &["GET"],
                            &[("user-agent", ".*iPhone.*")],
                        ),
                    ],
                    tcp_ports: vec![],
                    ports: vec![],
                },
                Policy {
                    name: "mysql".into(),
                    sources: vec![id("website-service")],
                    http: vec![],
                    tcp_ports: vec![3306],
                    ports: vec![],
                },
                // A v1alpha2 target with `destination.port: 9090`.
                Policy {
                    name: "on-9090".into(),
                    sources: vec![id("port-bound")],
                    http: vec![],
                    tcp_ports: vec![],
                    ports: vec![9090],
                },
                Policy {
                    name: "all-ports".into(),
                    sources: vec![id("admin")],
                    http: vec![],
                    tcp_ports: vec![],
                    ports: vec![],
                },
            ],
            probes: vec![
                ProbeRoute {
                    port: 8080,
                    path: "/healthz".into(),
                },
                ProbeRoute {
                    port: 8080,
                    path: GRPC_HEALTH_CHECK_PATH.into(),
                },
            ],
            ..Default::default()
        })
        .unwrap()
    }

    fn http(
        p: &InboundPolicy,
        peer: &Peer,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<String, (DenyReason, String)> {
        let method: http::Method = method.parse().unwrap();
        let mut h = http::HeaderMap::new();
        for (k, v) in headers {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let view = RequestView {
            method: &method,
            path,
            headers: &h,
        };
        match decide(p, peer, 8080, Traffic::Http(&view)) {
            Decision::Allow(g) => Ok(format!("{g:?}")),
            Decision::Deny(d) => Err((d.reason, d.message)),
        }
    }

    fn reason<T>(r: Result<T, (DenyReason, String)>) -> Option<DenyReason> {
        r.err().map(|(r, _)| r)
    }

    #[test]
    fn smi_example_allows_exactly_its_table() {
        let p = smi_example(false);
        // The spec's table: website/payments → /api any method; prometheus → GET /metrics.
        for sa in ["website-service", "payments-service"] {
            for method in ["GET", "POST", "DELETE", "PATCH"] {
                assert_eq!(
                    http(&p, &mtls(sa), method, "/api", &[]),
                    Ok("Target(\"api-service-api\")".into())
                );
            }
        }
        assert!(http(&p, &mtls("prometheus"), "GET", "/metrics", &[]).is_ok());
        // Everything else is denied, with the right reason.
        let no_rule = Some(DenyReason::NoMatchingRule);
        assert_eq!(
            reason(http(&p, &mtls("prometheus"), "POST", "/metrics", &[])),
            no_rule
        );
        assert_eq!(
            reason(http(&p, &mtls("prometheus"), "GET", "/api", &[])),
            no_rule
        );
        assert_eq!(
            reason(http(&p, &mtls("website-service"), "GET", "/metrics", &[])),
            no_rule
        );
        // Anchored at both ends.
        assert_eq!(
            reason(http(&p, &mtls("website-service"), "GET", "/api/v1", &[])),
            no_rule
        );
        assert_eq!(
            reason(http(&p, &mtls("website-service"), "GET", "/v1/api", &[])),
            no_rule
        );
        assert_eq!(
            reason(http(&p, &mtls("prometheus"), "GET", "/metricsx", &[])),
            no_rule
        );
        assert_eq!(
            reason(http(&p, &mtls("stranger"), "GET", "/api", &[])),
            Some(DenyReason::UnauthorizedSource)
        );
    }

    #[test]
    fn dot_segments_never_match_a_path_rule() {
        let p = smi_example(false);
        let bff = mtls("mobile-bff");
        let ua = ("user-agent", "iPhone");
        assert!(http(&p, &bff, "GET", "/api/items", &[ua]).is_ok());
        let (r, msg) = http(&p, &bff, "GET", "/api/../admin", &[ua]).unwrap_err();
        assert_eq!(r, DenyReason::NoMatchingRule);
        assert!(msg.contains("dot-segments"), "{msg}");
        assert!(http(&p, &bff, "GET", "/api/%2e%2e/admin", &[ua]).is_err());
        // A match without a path regex is not about paths.
        let android = [("user-agent", "Android"), ("cookie", "type=insider")];
        assert!(http(&p, &bff, "GET", "/x/../y", &android).is_ok());
        // An all-traffic grant is not about paths.
        assert!(http(&p, &mtls("admin"), "GET", "/x/../y", &[]).is_ok());
    }

    #[test]
    fn header_filters_must_all_match() {
        let p = smi_example(false);
        let bff = mtls("mobile-bff");
        let ua = ("user-agent", "Mozilla/5.0 (Linux; Android 14)");
        assert!(http(
            &p,
            &bff,
            "PUT",
            "/any/path",
            &[ua, ("cookie", "a=1;type=insider")]
        )
        .is_ok());
        assert!(http(&p, &bff, "GET", "/", &[ua, ("cookie", "type=insider")]).is_ok());
        let no_rule = Some(DenyReason::NoMatchingRule);
        assert_eq!(
            reason(http(&p, &bff, "GET", "/", &[ua])),
            no_rule,
            "cookie missing"
        );
        assert_eq!(
            reason(http(
                &p,
                &bff,
                "GET",
                "/",
                &[ua, ("cookie", "type=outsider")]
            )),
            no_rule
        );
        assert_eq!(
            reason(http(
                &p,
                &bff,
                "GET",
                "/",
                &[("user-agent", "curl/8"), ("cookie", "type=insider")]
            )),
            no_rule
        );
    }

    #[test]
    fn tcp_ports_and_all_port_grants() {
        let p = smi_example(false);
        let tcp = |peer: &Peer, port| match decide(&p, peer, port, Traffic::Tcp) {
            Decision::Allow(_) => None,
            Decision::Deny(d) => Some(d.reason),
        };
        assert_eq!(tcp(&mtls("website-service"), 3306), None);
        assert_eq!(
            tcp(&mtls("website-service"), 3307),
            Some(DenyReason::NoMatchingRule)
        );
        // An HTTP-only grant opens no TCP port.
        assert_eq!(
            tcp(&mtls("prometheus"), 8080),
            Some(DenyReason::NoMatchingRule)
        );
        assert_eq!(tcp(&mtls("admin"), 1), None);
        assert_eq!(tcp(&mtls("admin"), 65535), None);
        assert_eq!(
            tcp(&mtls("nobody"), 3306),
            Some(DenyReason::UnauthorizedSource)
        );
        assert_eq!(tcp(&Peer::Plaintext, 3306), Some(DenyReason::TlsRequired));
        // The all-ports grant covers HTTP too.
        assert!(http(&p, &mtls("admin"), "DELETE", "/anything", &[]).is_ok());
    }

    #[test]
    fn a_destination_port_limits_the_whole_grant() {
        let p = smi_example(false);
        let peer = mtls("port-bound");
        let tcp = |port| matches!(decide(&p, &peer, port, Traffic::Tcp), Decision::Allow(_));
        assert!(tcp(9090));
        assert!(!tcp(8080));
        // `http` (port 8080 in this helper) is outside the grant's port.
        assert_eq!(
            reason(http(&p, &peer, "GET", "/", &[])),
            Some(DenyReason::NoMatchingRule)
        );
    }

    #[test]
    fn plaintext_is_denied_except_probes_and_permissive() {
        let p = smi_example(false);
        assert_eq!(
            http(&p, &Peer::Plaintext, "GET", "/healthz", &[]),
            Ok("Probe".into())
        );
        for (method, path) in [("POST", "/healthz"), ("GET", "/healthz/x"), ("GET", "/api")] {
            assert_eq!(
                reason(http(&p, &Peer::Plaintext, method, path, &[])),
                Some(DenyReason::TlsRequired),
                "{method} {path}"
            );
        }
        // The kubelet's gRPC probe: a POST of the health check.
        assert_eq!(
            http(&p, &Peer::Plaintext, "POST", GRPC_HEALTH_CHECK_PATH, &[]),
            Ok("Probe".into())
        );
        assert_eq!(
            reason(http(
                &p,
                &Peer::Plaintext,
                "POST",
                "/grpc.health.v1.Health/Watch",
                &[]
            )),
            Some(DenyReason::TlsRequired)
        );
        let open = smi_example(true);
        assert_eq!(
            http(&open, &Peer::Plaintext, "POST", "/x", &[]),
            Ok("Permissive".into())
        );
        assert_eq!(
            http(&open, &mtls("stranger"), "POST", "/x", &[]),
            Ok("Permissive".into())
        );
        assert_eq!(
            decide(&open, &Peer::Plaintext, 5432, Traffic::Tcp),
            Decision::Allow(Grant::Permissive)
        );
        // An empty policy denies everyone.
        let empty = InboundPolicy::default();
        assert_eq!(
            reason(http(&empty, &mtls("website-service"), "GET", "/", &[])),
            Some(DenyReason::UnauthorizedSource)
        );
    }

    #[test]
    fn messages_name_the_client_and_targets() {
        let p = smi_example(false);
        let (_, msg) = http(&p, &mtls("stranger"), "GET", "/api", &[]).unwrap_err();
        assert_eq!(
            msg,
            "spiffe://cluster.local/ns/default/sa/stranger is not a source of any TrafficTarget for this pod"
        );
        let (_, msg) = http(&p, &mtls("website-service"), "GET", "/admin", &[]).unwrap_err();
        assert_eq!(
            msg,
            "GET /admin from spiffe://cluster.local/ns/default/sa/website-service matches no rule of TrafficTarget api-service-api, mysql"
        );
        let long = format!("/{}", "a".repeat(500));
        let (_, msg) = http(&p, &mtls("website-service"), "GET", &long, &[]).unwrap_err();
        assert!(msg.len() < 250, "{msg}");
    }

    #[test]
    fn reasons_are_the_contracts_and_the_403_names_them() {
        for r in [
            DenyReason::UnauthorizedSource,
            DenyReason::NoMatchingRule,
            DenyReason::TlsRequired,
        ] {
            assert!(names::DENY_REASONS.contains(&r.as_str()));
        }
        let rsp = Denial {
            reason: DenyReason::TlsRequired,
            message: "plaintext".into(),
        }
        .http_response();
        assert_eq!(rsp.status(), StatusCode::FORBIDDEN);
        assert_eq!(rsp.headers()["meshlet-proxy-error"], "tls_required");
        assert!(rsp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
    }
}
