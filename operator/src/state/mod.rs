//! The operator's view of the cluster: reflector caches of every watched
//! kind ([`stores`]) and the plain snapshot the config computation reads
//! ([`ClusterState`]).

pub mod stores;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use meshlet_crds::access::v1alpha3::TrafficTarget;
use meshlet_crds::specs::v1alpha4::{HttpRouteGroup, TcpRoute, UdpRoute};
use meshlet_crds::split::v1alpha4::TrafficSplit;

pub use stores::Stores;

/// A point-in-time copy of every watched object (shared, not cloned), read
/// by the pure config computation. Order carries no meaning.
#[derive(Clone, Default, Debug)]
pub struct ClusterState {
    /// Services.
    pub services: Vec<Arc<Service>>,
    /// EndpointSlices.
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
    /// Pods (trimmed to what the computation reads).
    pub pods: Vec<Arc<Pod>>,
    /// ServiceAccounts.
    pub service_accounts: Vec<Arc<ServiceAccount>>,
    /// Namespaces.
    pub namespaces: Vec<Arc<Namespace>>,
    /// TrafficSplits (storage version).
    pub traffic_splits: Vec<Arc<TrafficSplit>>,
    /// TrafficTargets (storage version).
    pub traffic_targets: Vec<Arc<TrafficTarget>>,
    /// HTTPRouteGroups (storage version).
    pub http_route_groups: Vec<Arc<HttpRouteGroup>>,
    /// TCPRoutes (storage version).
    pub tcp_routes: Vec<Arc<TcpRoute>>,
    /// UDPRoutes (storage version).
    pub udp_routes: Vec<Arc<UdpRoute>>,
}
