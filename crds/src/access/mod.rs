//! `access.smi-spec.io` TrafficTarget: one module per published version, and
//! the conversion between them (hub: [`v1alpha3`], the newest).

pub mod convert;
pub mod v1alpha1;
pub mod v1alpha2;
pub mod v1alpha3;

/// The API group.
pub const GROUP: &str = "access.smi-spec.io";
/// Every served version, oldest first; the last one is the hub and storage version.
pub const VERSIONS: &[&str] = &["v1alpha1", "v1alpha2", "v1alpha3"];
