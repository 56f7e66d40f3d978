//! The inbound side: TrafficTargets resolved into the access policies of
//! their destination ServiceAccount. Access is additive and denied by
//! default, so whatever cannot be resolved (a missing route, an unknown
//! subject kind) allows nothing, and the reason is reported.

use std::collections::{BTreeSet, HashMap};

use kube::ResourceExt;
use meshlet_crds::access::v1alpha3::{IdentityBindingSubject, RuleKind, TrafficTarget};
use meshlet_crds::contract::annotations::CONVERSION_DATA;
use meshlet_crds::contract::config::{HttpMatch, InboundPolicy};
use meshlet_crds::contract::identity::SpiffeId;

use super::findings::reason;
use super::index::Index;
use super::matches::http_match;
use super::split::object_key;
use super::{Finding, MeshSettings};

fn finding(tt: &TrafficTarget, reason: &'static str, message: String) -> Finding {
    Finding {
        object: object_key(tt),
        reason,
        message,
    }
}

/// Policies by destination (namespace, ServiceAccount), each list sorted by name.
pub fn policies(
    index: &Index,
    settings: &MeshSettings,
    findings: &mut Vec<Finding>,
) -> HashMap<(String, String), Vec<InboundPolicy>> {
    let mut out: HashMap<(String, String), Vec<InboundPolicy>> = HashMap::new();
    for tt in index.targets.values() {
        let Some(destination) = destination(index, tt, findings) else {
            continue;
        };
        let resolved = resolve(index, settings, tt, findings);
        if !resolved.is_empty() {
            out.entry(destination).or_default().extend(resolved);
        }
    }
    for list in out.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name));
    }
    out
}

fn subject_namespace<'a>(tt: &'a TrafficTarget, s: &'a IdentityBindingSubject) -> &'a str {
    s.namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| tt.metadata.namespace.as_deref().unwrap_or_default())
}

fn destination(
    index: &Index,
    tt: &TrafficTarget,
    findings: &mut Vec<Finding>,
) -> Option<(String, String)> {
    let d = &tt.spec.destination;
    if d.kind != "ServiceAccount" {
        findings.push(finding(
            tt,
            reason::UNSUPPORTED_SUBJECT,
            format!(
                "spec.destination.kind: {:?} is not supported; use ServiceAccount",
                d.kind
            ),
        ));
        return None;
    }
    let namespace = subject_namespace(tt, d);
    let own = tt.metadata.namespace.as_deref().unwrap_or_default();
    if namespace != own {
        // A TrafficTarget may only open its own namespace's workloads (the
        // webhook refuses others; this holds when it was bypassed).
        findings.push(finding(
            tt,
            reason::CROSS_NAMESPACE_DESTINATION,
            format!("spec.destination.namespace: {namespace:?} differs from the TrafficTarget's namespace {own:?}; it allows nothing"),
        ));
        return None;
    }
    if !index
        .service_accounts
        .contains(&(namespace, d.name.as_str()))
    {
        findings.push(finding(
            tt,
            reason::DESTINATION_NOT_FOUND,
            format!(
                "spec.destination: ServiceAccount {namespace}/{} does not exist (yet)",
                d.name
            ),
        ));
    }
    Some((namespace.to_string(), d.name.clone()))
}

/// The `destination.port` of a TrafficTarget written as v1alpha1 or
/// v1alpha2. The stored (v1alpha3) object has no place for it, so version
/// conversion keeps it in the conversion-data annotation; SMI limits the
/// target to that port, so it limits the grant. Ignored once the annotation
/// no longer describes the object (it was edited in v1alpha3 since).
pub fn legacy_destination_port(tt: &TrafficTarget) -> Option<u16> {
    let stored: serde_json::Value =
        serde_json::from_str(tt.annotations().get(CONVERSION_DATA)?).ok()?;
    let pointer = match stored.get("apiVersion")?.as_str()?.rsplit('/').next()? {
        "v1alpha1" => "/destination/port",
        "v1alpha2" => "/spec/destination/port",
        _ => return None,
    };
    let port = u16::try_from(stored.pointer(pointer)?.as_u64()?).ok()?;
    let mut object = stored.clone();
    object["kind"] = "TrafficTarget".into();
    object["metadata"] = serde_json::json!({});
    let hub = meshlet_crds::conversion::to_hub_value(&object).ok()?;
    let current = serde_json::to_value(&tt.spec).ok()?;
    (hub.get("spec") == Some(&current)).then_some(port)
}

/// The policies one TrafficTarget grants: one for its HTTP rules, one for
/// its TCP rules (kept apart so an HTTP-only target never opens TCP ports).
fn resolve(
    index: &Index,
    settings: &MeshSettings,
    tt: &TrafficTarget,
    findings: &mut Vec<Finding>,
) -> Vec<InboundPolicy> {
    let namespace = tt.metadata.namespace.as_deref().unwrap_or_default();
    let mut sources = BTreeSet::new();
    for (i, s) in tt.spec.sources.iter().enumerate() {
        if s.kind != "ServiceAccount" {
            findings.push(finding(
                tt,
                reason::UNSUPPORTED_SUBJECT,
                format!(
                    "spec.sources[{i}].kind: {:?} is not supported; use ServiceAccount",
                    s.kind
                ),
            ));
            continue;
        }
        match SpiffeId::new(&settings.trust_domain, subject_namespace(tt, s), &s.name) {
            Ok(id) => {
                sources.insert(id.to_string());
            }
            Err(e) => findings.push(finding(
                tt,
                reason::UNSUPPORTED_SUBJECT,
                format!("spec.sources[{i}]: {e}"),
            )),
        }
    }
    let mut http: Vec<HttpMatch> = Vec::new();
    // None: no TCP rule; Some(empty): every port; Some(ports): those ports.
    let mut tcp: Option<BTreeSet<u16>> = None;
    let mut tcp_all = false;
    for (i, rule) in tt.spec.rules.iter().enumerate() {
        let field = format!("spec.rules[{i}]");
        let key = (namespace, rule.name.as_str());
        match rule.kind {
            RuleKind::HttpRouteGroup => {
                let Some(group) = index.http_route_groups.get(&key) else {
                    findings.push(finding(tt, reason::ROUTE_NOT_FOUND, format!("{field}: HTTPRouteGroup {namespace}/{} does not exist; the rule allows nothing until it does", rule.name)));
                    continue;
                };
                if rule.matches.is_empty() {
                    http.extend(group.spec.matches.iter().map(http_match));
                    continue;
                }
                for name in &rule.matches {
                    match group.spec.matches.iter().find(|m| &m.name == name) {
                        Some(m) => http.push(http_match(m)),
                        None => findings.push(finding(tt, reason::ROUTE_MATCH_NOT_FOUND, format!("{field}.matches: HTTPRouteGroup {namespace}/{} has no match named {name:?}; it allows nothing", rule.name))),
                    }
                }
            }
            RuleKind::TcpRoute => {
                let Some(route) = index.tcp_routes.get(&key) else {
                    findings.push(finding(tt, reason::ROUTE_NOT_FOUND, format!("{field}: TCPRoute {namespace}/{} does not exist; the rule allows nothing until it does", rule.name)));
                    continue;
                };
                if route.spec.matches.ports.is_empty() {
                    tcp_all = true;
                }
                tcp.get_or_insert_with(BTreeSet::new)
                    .extend(route.spec.matches.ports.iter().copied());
            }
            RuleKind::UdpRoute => {
                // The proxy carries TCP only; a UDP rule grants nothing, but a
                // missing route is still worth reporting.
                if !index.udp_routes.contains_key(&key) {
                    findings.push(finding(
                        tt,
                        reason::ROUTE_NOT_FOUND,
                        format!("{field}: UDPRoute {namespace}/{} does not exist", rule.name),
                    ));
                }
            }
        }
    }
    let ports: Vec<u16> = legacy_destination_port(tt).into_iter().collect();
    let mut policies = Vec::new();
    if !sources.is_empty() && !http.is_empty() {
        policies.push(InboundPolicy {
            name: tt.name_any(),
            sources: sources.iter().cloned().collect(),
            http,
            tcp_ports: Vec::new(),
            ports: ports.clone(),
        });
    }
    if let (false, Some(tcp_ports)) = (sources.is_empty(), tcp) {
        policies.push(InboundPolicy {
            name: tt.name_any(),
            sources: sources.iter().cloned().collect(),
            http: Vec::new(),
            // An empty list is the contract's "every port".
            tcp_ports: if tcp_all {
                Vec::new()
            } else {
                tcp_ports.into_iter().collect()
            },
            ports,
        });
    }
    if policies.is_empty() {
        findings.push(finding(
            tt,
            reason::NOTHING_ALLOWED,
            "no usable source and rule; this TrafficTarget allows nothing".into(),
        ));
    }
    policies
}
