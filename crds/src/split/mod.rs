//! `split.smi-spec.io` TrafficSplit: one module per published version, and
//! the conversion between them (hub: [`v1alpha4`], the newest).

pub mod convert;
pub mod status;
pub mod v1alpha1;
pub mod v1alpha2;
pub mod v1alpha3;
pub mod v1alpha4;

/// The API group.
pub const GROUP: &str = "split.smi-spec.io";
/// Every served version, oldest first; the last one is the hub and storage version.
pub const VERSIONS: &[&str] = &["v1alpha1", "v1alpha2", "v1alpha3", "v1alpha4"];
