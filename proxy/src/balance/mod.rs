//! Load balancing: per-endpoint state (latency estimate, load, ejection) and
//! the power-of-two-choices pick over it.

mod endpoint;
mod ewma;
mod outlier;
mod p2c;
mod retry_budget;

pub use endpoint::{Endpoint, EndpointRegistry, InFlight};
pub use ewma::PeakEwma;
pub use outlier::OutlierState;
pub use p2c::{pick, Weighted};
pub use retry_budget::RetryBudget;
