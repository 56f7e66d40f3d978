//! Lookup tables over a [`ClusterState`], built once per computation so
//! that every lookup is O(1) and the whole computation stays linear in the
//! number of objects.

use std::collections::{BTreeMap, HashMap, HashSet};

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use meshlet_crds::access::v1alpha3::TrafficTarget;
use meshlet_crds::specs::v1alpha4::{HttpRouteGroup, TcpRoute, UdpRoute};
use meshlet_crds::split::v1alpha4::TrafficSplit;

use crate::state::ClusterState;

/// The label EndpointSlice controllers set to the Service's name.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// (namespace, name).
pub type Key<'a> = (&'a str, &'a str);

fn key<K: kube::Resource>(o: &K) -> Key<'_> {
    (
        o.meta().namespace.as_deref().unwrap_or_default(),
        o.meta().name.as_deref().unwrap_or_default(),
    )
}

/// Lookup tables borrowed from a [`ClusterState`].
#[derive(Debug, Default)]
pub struct Index<'a> {
    /// Services, ordered by (namespace, name).
    pub services: BTreeMap<Key<'a>, &'a Service>,
    /// EndpointSlices by the (namespace, name) of their Service.
    pub slices: HashMap<Key<'a>, Vec<&'a EndpointSlice>>,
    /// Pods by (namespace, name).
    pub pods: HashMap<Key<'a>, &'a Pod>,
    /// ServiceAccounts that exist.
    pub service_accounts: HashSet<Key<'a>>,
    /// TrafficSplits by their root service's (namespace, name), oldest first.
    pub splits_by_root: BTreeMap<Key<'a>, Vec<&'a TrafficSplit>>,
    /// TrafficTargets, ordered by (namespace, name).
    pub targets: BTreeMap<Key<'a>, &'a TrafficTarget>,
    /// HTTPRouteGroups by (namespace, name).
    pub http_route_groups: HashMap<Key<'a>, &'a HttpRouteGroup>,
    /// TCPRoutes by (namespace, name).
    pub tcp_routes: HashMap<Key<'a>, &'a TcpRoute>,
    /// UDPRoutes by (namespace, name).
    pub udp_routes: HashMap<Key<'a>, &'a UdpRoute>,
}

impl<'a> Index<'a> {
    /// Indexes `state`.
    pub fn new(state: &'a ClusterState) -> Index<'a> {
        let mut slices: HashMap<Key<'a>, Vec<&'a EndpointSlice>> = HashMap::new();
        for slice in &state.endpoint_slices {
            let Some(service) = slice.labels().get(SERVICE_NAME_LABEL) else {
                continue;
            };
            let namespace = slice.metadata.namespace.as_deref().unwrap_or_default();
            slices
                .entry((namespace, service.as_str()))
                .or_default()
                .push(slice);
        }
        let mut splits_by_root: BTreeMap<Key<'a>, Vec<&'a TrafficSplit>> = BTreeMap::new();
        for split in &state.traffic_splits {
            let namespace = split.metadata.namespace.as_deref().unwrap_or_default();
            splits_by_root
                .entry((namespace, split.spec.service.as_str()))
                .or_default()
                .push(split);
        }
        for splits in splits_by_root.values_mut() {
            // The oldest split wins; the name breaks ties so the choice is stable.
            splits.sort_by(|a, b| {
                let age = |s: &TrafficSplit| s.metadata.creation_timestamp.clone().map(|t| t.0);
                age(a)
                    .cmp(&age(b))
                    .then_with(|| a.name_any().cmp(&b.name_any()))
            });
        }
        Index {
            services: state.services.iter().map(|s| (key(&**s), &**s)).collect(),
            slices,
            pods: state.pods.iter().map(|p| (key(&**p), &**p)).collect(),
            service_accounts: state.service_accounts.iter().map(|s| key(&**s)).collect(),
            splits_by_root,
            targets: state
                .traffic_targets
                .iter()
                .map(|t| (key(&**t), &**t))
                .collect(),
            http_route_groups: state
                .http_route_groups
                .iter()
                .map(|r| (key(&**r), &**r))
                .collect(),
            tcp_routes: state.tcp_routes.iter().map(|r| (key(&**r), &**r)).collect(),
            udp_routes: state.udp_routes.iter().map(|r| (key(&**r), &**r)).collect(),
        }
    }
}
