//! Answers to TrafficMetrics queries, computed from the window's per-pod
//! increases and the caches: a resource's metrics are the inbound (served,
//! server side) traffic of its meshed pods; its edges are client-side
//! outbound traffic — `to` what its pods called, `from` the resources whose
//! pods called it; a TrafficSplit's are the outbound traffic to its backends.
//! Built as v1alpha2 (v1alpha1 is the same minus `side`/`backend`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Pod};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta, Time};
use kube::ResourceExt;
use meshlet_crds::metrics::v1alpha1::Direction as EdgeDirection;
use meshlet_crds::metrics::v1alpha2::{
    Backend, Edge, Metric, Side, TrafficMetrics, TrafficMetricsList,
};
use meshlet_crds::metrics::UNIT_MILLISECONDS;
use meshlet_crds::quantity::Quantity;
use meshlet_crds::split::v1alpha4::TrafficSplit;

use super::counters::{Counts, Direction, SeriesKey};
use super::window::PodKey;
use super::workloads::Kind;
use crate::config::index::SERVICE_NAME_LABEL;
use crate::config::outbound::is_meshed;

/// A query that names something that does not exist (the message says what).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

/// Everything a query reads, at one instant.
pub struct View {
    /// Pods (meshed or not).
    pub pods: Vec<Arc<Pod>>,
    /// EndpointSlices (to find the pods behind a destination service).
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
    /// Namespaces.
    pub namespaces: Vec<Arc<Namespace>>,
    /// TrafficSplits.
    pub traffic_splits: Vec<Arc<TrafficSplit>>,
    /// Per pod, the increase of each series over the window.
    pub increases: HashMap<PodKey, HashMap<SeriesKey, Counts>>,
    /// End of the window.
    pub timestamp: Time,
    /// Length of the window, as a Go duration.
    pub window: String,
}

/// A Go duration for `d` (`30s`, `1m30s`, `500ms`).
pub fn go_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// The five SMI metrics of `c`. Latencies are in ms, `0` without responses.
pub fn metrics_of(c: &Counts) -> Vec<Metric> {
    let milli = |v: f64| Quantity::from_milli((v.max(0.0) * 1000.0).round() as u64);
    let latency = |q: f64| Metric {
        name: format!("p{}_response_latency", (q * 100.0).round() as u32),
        unit: Some(UNIT_MILLISECONDS.into()),
        value: milli(c.latency_quantile(q).unwrap_or(0.0)),
    };
    vec![
        latency(0.99),
        latency(0.9),
        latency(0.5),
        Metric {
            name: "success_count".into(),
            unit: None,
            value: milli(c.success.round()),
        },
        Metric {
            name: "failure_count".into(),
            unit: None,
            value: milli(c.failure.round()),
        },
    ]
}

fn pod_key(p: &Pod) -> PodKey {
    PodKey {
        namespace: p.namespace().unwrap_or_default(),
        name: p.name_any(),
    }
}

impl View {
    fn item(
        &self,
        resource: ObjectReference,
        edge: Option<Edge>,
        counts: &Counts,
    ) -> TrafficMetrics {
        TrafficMetrics {
            api_version: meshlet_crds::metrics::v1alpha2::API_VERSION.into(),
            kind: "TrafficMetrics".into(),
            metadata: ObjectMeta {
                name: resource.name.clone(),
                namespace: resource.namespace.clone(),
                ..Default::default()
            },
            timestamp: self.timestamp.clone(),
            window: self.window.clone(),
            resource,
            edge,
            backend: None,
            metrics: metrics_of(counts),
        }
    }

    /// A list of `items` about `resource`.
    pub fn list(
        &self,
        resource: ObjectReference,
        items: Vec<TrafficMetrics>,
    ) -> TrafficMetricsList {
        TrafficMetricsList {
            api_version: meshlet_crds::metrics::v1alpha2::API_VERSION.into(),
            kind: "TrafficMetricsList".into(),
            metadata: ListMeta::default(),
            resource,
            selector: None,
            items,
        }
    }

    fn meshed_pods(&self) -> impl Iterator<Item = &Pod> {
        self.pods.iter().map(|p| &**p).filter(|p| is_meshed(p))
    }

    /// Names of the objects of `kind` with meshed pods in `namespace`
    /// (every namespace when `None`), as (namespace, name).
    fn names(&self, kind: Kind, namespace: Option<&str>) -> BTreeSet<(String, String)> {
        match kind {
            Kind::Namespace => self
                .namespaces
                .iter()
                .map(|n| (String::new(), n.name_any()))
                .collect(),
            Kind::TrafficSplit => self
                .traffic_splits
                .iter()
                .filter(|s| namespace.is_none_or(|ns| s.namespace().as_deref() == Some(ns)))
                .map(|s| (s.namespace().unwrap_or_default(), s.name_any()))
                .collect(),
            _ => self
                .meshed_pods()
                .filter(|p| namespace.is_none_or(|ns| p.namespace().as_deref() == Some(ns)))
                .filter_map(|p| Some((p.namespace().unwrap_or_default(), kind.owner_of(p)?)))
                .collect(),
        }
    }

    fn not_found(&self, kind: Kind, namespace: &str, name: &str) -> NotFound {
        NotFound(match kind {
            Kind::Namespace => format!("namespaces {name:?} not found"),
            Kind::TrafficSplit => {
                format!("trafficsplits {name:?} not found in namespace {namespace:?}")
            }
            _ => format!(
                "{} {name:?} not found in namespace {namespace:?}: no meshed pod belongs to it",
                kind.plural()
            ),
        })
    }

    /// The pods of object `name` of `kind` in `namespace`, with their increases.
    fn pods_of<'a>(
        &'a self,
        kind: Kind,
        namespace: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a Pod, Option<&'a HashMap<SeriesKey, Counts>>)> + 'a {
        self.meshed_pods()
            .filter(move |p| {
                (kind == Kind::Namespace || p.namespace().as_deref() == Some(namespace))
                    && kind.owner_of(p).as_deref() == Some(name)
            })
            .map(|p| (p, self.increases.get(&pod_key(p))))
    }

    fn split(&self, namespace: &str, name: &str) -> Option<&TrafficSplit> {
        self.traffic_splits
            .iter()
            .find(|s| s.namespace().as_deref() == Some(namespace) && s.name_any() == name)
            .map(|s| &**s)
    }

    /// Outbound counts of every meshed pod towards `namespace/service`.
    fn sent_to(&self, namespace: &str, service: &str) -> Counts {
        let mut total = Counts::default();
        for series in self.increases.values() {
            for (k, c) in series {
                if k.direction == Direction::Outbound
                    && k.dst_namespace == namespace
                    && k.dst_service == service
                {
                    total.add(c);
                }
            }
        }
        total
    }

    /// Metrics of one object.
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Result<TrafficMetrics, NotFound> {
        let reference = kind.reference(namespace, name);
        if kind == Kind::TrafficSplit {
            let split = self
                .split(namespace, name)
                .ok_or_else(|| self.not_found(kind, namespace, name))?;
            let mut total = Counts::default();
            for b in &split.spec.backends {
                total.add(&self.sent_to(namespace, &b.service));
            }
            return Ok(self.item(reference, None, &total));
        }
        if !self.names(kind, Some(namespace)).contains(&(
            if kind.namespaced() {
                namespace.to_string()
            } else {
                String::new()
            },
            name.to_string(),
        )) {
            return Err(self.not_found(kind, namespace, name));
        }
        let mut total = Counts::default();
        for (_, series) in self.pods_of(kind, namespace, name) {
            for (k, c) in series.into_iter().flatten() {
                if k.direction == Direction::Inbound {
                    total.add(c);
                }
            }
        }
        Ok(self.item(reference, None, &total))
    }

    /// Metrics of every object of `kind` in `namespace` (all when `None`).
    pub fn list_kind(&self, kind: Kind, namespace: Option<&str>) -> TrafficMetricsList {
        let items = self
            .names(kind, namespace)
            .into_iter()
            .filter_map(|(ns, name)| self.get(kind, &ns, &name).ok())
            .collect();
        let resource = ObjectReference {
            api_version: Some(kind.api_version().into()),
            kind: Some(kind.kind().into()),
            namespace: namespace.map(str::to_string),
            ..Default::default()
        };
        self.list(resource, items)
    }

    /// The pods behind `namespace/service`, from its EndpointSlices.
    fn pods_behind(&self, namespace: &str, service: &str) -> Vec<&Pod> {
        let by_name: HashMap<(&str, &str), &Pod> = self
            .pods
            .iter()
            .map(|p| {
                (
                    (
                        p.metadata.namespace.as_deref().unwrap_or_default(),
                        p.metadata.name.as_deref().unwrap_or_default(),
                    ),
                    &**p,
                )
            })
            .collect();
        self.endpoint_slices
            .iter()
            .filter(|s| {
                s.metadata.namespace.as_deref() == Some(namespace)
                    && s.labels().get(SERVICE_NAME_LABEL).map(String::as_str) == Some(service)
            })
            .flat_map(|s| s.endpoints.iter())
            .filter_map(|e| e.target_ref.as_ref())
            .filter(|r| r.kind.as_deref() == Some("Pod"))
            .filter_map(|r| by_name.get(&(namespace, r.name.as_deref()?)).copied())
            .collect()
    }

    /// The object of `kind` a call to `namespace/service` reached: the one
    /// owner of the pods behind the service, else (none or several) the
    /// Service itself, since the proxy's series do not say which pod answered.
    fn destination(&self, kind: Kind, namespace: &str, service: &str) -> ObjectReference {
        if kind == Kind::Namespace {
            return kind.reference("", namespace);
        }
        let owners: BTreeSet<String> = self
            .pods_behind(namespace, service)
            .into_iter()
            .filter_map(|p| kind.owner_of(p))
            .collect();
        match owners.len() {
            1 => kind.reference(namespace, owners.first().expect("one")),
            _ => ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Service".into()),
                namespace: Some(namespace.into()),
                name: Some(service.into()),
                ..Default::default()
            },
        }
    }

    /// The edges of one object: `to` per destination its pods called and
    /// `from` per source whose pods called it, both measured client side.
    pub fn edges(
        &self,
        kind: Kind,
        namespace: &str,
        name: &str,
    ) -> Result<TrafficMetricsList, NotFound> {
        let reference = kind.reference(namespace, name);
        if kind == Kind::TrafficSplit {
            return self.split_edges(namespace, name, reference);
        }
        self.get(kind, namespace, name)?;
        let key = |r: &ObjectReference| {
            (
                r.kind.clone().unwrap_or_default(),
                r.namespace.clone().unwrap_or_default(),
                r.name.clone().unwrap_or_default(),
            )
        };
        let mut to: BTreeMap<(String, String, String), (ObjectReference, Counts)> = BTreeMap::new();
        let mut from: BTreeMap<(String, String, String), (ObjectReference, Counts)> =
            BTreeMap::new();
        let mut destinations: HashMap<(String, String), ObjectReference> = HashMap::new();
        let mut resolve = |ns: &str, svc: &str| {
            destinations
                .entry((ns.to_string(), svc.to_string()))
                .or_insert_with(|| self.destination(kind, ns, svc))
                .clone()
        };
        for pod in self.meshed_pods() {
            let Some(series) = self.increases.get(&pod_key(pod)) else {
                continue;
            };
            let source = kind
                .owner_of(pod)
                .map(|owner| kind.reference(&pod.namespace().unwrap_or_default(), &owner));
            let is_self = source.as_ref().is_some_and(|s| key(s) == key(&reference));
            for (k, c) in series {
                if k.direction != Direction::Outbound || k.dst_service.is_empty() {
                    continue;
                }
                let dst = resolve(&k.dst_namespace, &k.dst_service);
                if is_self {
                    to.entry(key(&dst))
                        .or_insert_with(|| (dst.clone(), Counts::default()))
                        .1
                        .add(c);
                }
                if key(&dst) == key(&reference) {
                    if let Some(src) = &source {
                        from.entry(key(src))
                            .or_insert_with(|| (src.clone(), Counts::default()))
                            .1
                            .add(c);
                    }
                }
            }
        }
        let edge = |direction, resource| {
            Some(Edge {
                direction,
                side: Some(Side::Client),
                resource,
            })
        };
        let items = to
            .into_values()
            .map(|(r, c)| self.item(reference.clone(), edge(EdgeDirection::To, r), &c))
            .chain(
                from.into_values()
                    .map(|(r, c)| self.item(reference.clone(), edge(EdgeDirection::From, r), &c)),
            )
            .collect();
        Ok(self.list(reference, items))
    }

    /// A split's edges: one item per backend, the traffic meshed clients
    /// sent to it, with the backend's apex, name and weight.
    fn split_edges(
        &self,
        namespace: &str,
        name: &str,
        reference: ObjectReference,
    ) -> Result<TrafficMetricsList, NotFound> {
        let split = self
            .split(namespace, name)
            .ok_or_else(|| self.not_found(Kind::TrafficSplit, namespace, name))?;
        let items = split
            .spec
            .backends
            .iter()
            .map(|b| {
                let counts = self.sent_to(namespace, &b.service);
                let backend_ref = ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Service".into()),
                    namespace: Some(namespace.into()),
                    name: Some(b.service.clone()),
                    ..Default::default()
                };
                let mut item = self.item(
                    reference.clone(),
                    Some(Edge {
                        direction: EdgeDirection::To,
                        side: Some(Side::Client),
                        resource: backend_ref,
                    }),
                    &counts,
                );
                item.backend = Some(Backend {
                    apex: split.spec.service.clone(),
                    leaf: b.service.clone(),
                    weight: b.weight,
                });
                item
            })
            .collect();
        Ok(self.list(reference, items))
    }
}
