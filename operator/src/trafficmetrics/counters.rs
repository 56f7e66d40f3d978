//! What the operator keeps of one scrape of a proxy: per series (direction
//! and destination), the success and failure response counts and the
//! cumulative latency buckets, read from the Linkerd-named metrics of the
//! contract. Counters add up, so scrapes subtract and series sum.

use std::collections::HashMap;

use meshlet_crds::contract::metrics as names;

use super::exposition::{self, ParseError, Sample};

/// Which traffic a series counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Requests the pod received (measured by its inbound proxy: server side).
    Inbound,
    /// Requests the pod sent (measured by its outbound proxy: client side).
    Outbound,
}

/// One series of a proxy: direction and destination service (empty inbound).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// Inbound or outbound.
    pub direction: Direction,
    /// Destination namespace (outbound).
    pub dst_namespace: String,
    /// Destination (backend) service actually called (outbound).
    pub dst_service: String,
}

/// Counts of one series: cumulative counters, or their increase over a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    /// Responses classified `success`.
    pub success: f64,
    /// Responses classified `failure`.
    pub failure: f64,
    /// Latency histogram: (upper bound in ms as `f64::to_bits`, ordered
    /// for non-negative bounds; cumulative count), sorted by bound. A
    /// vector, not a map: a window holds many of these.
    pub buckets: Vec<(u64, f64)>,
}

impl Counts {
    /// Adds `n` to the bucket with upper bound `le` (bits).
    pub fn add_to_bucket(&mut self, le: u64, n: f64) {
        match self.buckets.binary_search_by_key(&le, |(b, _)| *b) {
            Ok(i) => self.buckets[i].1 += n,
            Err(i) => self.buckets.insert(i, (le, n)),
        }
    }

    /// The cumulative count of the bucket with upper bound `le` (bits).
    pub fn bucket(&self, le: u64) -> Option<f64> {
        self.buckets
            .binary_search_by_key(&le, |(b, _)| *b)
            .ok()
            .map(|i| self.buckets[i].1)
    }

    /// Adds `other` to these counts.
    pub fn add(&mut self, other: &Counts) {
        self.success += other.success;
        self.failure += other.failure;
        for (le, n) in &other.buckets {
            self.add_to_bucket(*le, *n);
        }
    }

    /// The increase from `earlier` to `self`; a counter that went down was
    /// reset (the proxy restarted), and then its whole value is the increase.
    pub fn increase_since(&self, earlier: &Counts) -> Counts {
        let inc = |now: f64, then: f64| if now >= then { now - then } else { now };
        Counts {
            success: inc(self.success, earlier.success),
            failure: inc(self.failure, earlier.failure),
            buckets: self
                .buckets
                .iter()
                .map(|(le, n)| {
                    let then = earlier.bucket(*le).unwrap_or(0.0);
                    (*le, inc(*n, then))
                })
                .collect(),
        }
    }

    /// The `q` quantile (0..=1) of the latency in ms, interpolated linearly
    /// inside the bucket it falls in (as PromQL's `histogram_quantile`);
    /// `None` without observations. Above the highest finite bound, that
    /// bound is the answer.
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last().map(|(_, n)| *n).unwrap_or(0.0);
        if total <= 0.0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let (mut lower, mut below) = (0.0_f64, 0.0_f64);
        for (le, cumulative) in &self.buckets {
            let upper = f64::from_bits(*le);
            if *cumulative >= rank && *cumulative > below {
                if upper.is_infinite() {
                    return Some(lower);
                }
                let fraction = (rank - below) / (cumulative - below);
                return Some(lower + (upper - lower) * fraction);
            }
            if upper.is_finite() {
                lower = upper;
            }
            below = below.max(*cumulative);
        }
        Some(lower)
    }
}

/// Everything kept of one scrape: counts by series.
pub type Scrape = HashMap<SeriesKey, Counts>;

fn series_key(s: &Sample) -> Option<SeriesKey> {
    let direction = match s.label(names::DIRECTION)? {
        names::DIRECTION_INBOUND => Direction::Inbound,
        names::DIRECTION_OUTBOUND => Direction::Outbound,
        _ => return None,
    };
    let label = |n| s.label(n).unwrap_or_default().to_string();
    Some(SeriesKey {
        direction,
        dst_namespace: label(names::DST_NAMESPACE),
        dst_service: label(names::DST_SERVICE),
    })
}

/// Reads the response counters and latency buckets out of a proxy's
/// `/metrics` text, summed over the labels the API does not distinguish
/// (status code, route, TLS).
pub fn from_text(text: &str) -> Result<Scrape, ParseError> {
    let responses = names::RESPONSE_TOTAL;
    let bucket = format!("{}_bucket", names::RESPONSE_LATENCY_MS);
    let samples = exposition::parse(text, |n| n == responses || n == bucket)?;
    let mut scrape = Scrape::new();
    for s in samples {
        let Some(key) = series_key(&s) else { continue };
        if !s.value.is_finite() {
            continue;
        }
        let counts = scrape.entry(key).or_default();
        if s.name == responses {
            match s.label(names::CLASSIFICATION) {
                Some(names::CLASSIFICATION_SUCCESS) => counts.success += s.value,
                Some(names::CLASSIFICATION_FAILURE) => counts.failure += s.value,
                _ => {}
            }
        } else if let Some(le) = s.label("le").and_then(parse_bound) {
            counts.add_to_bucket(le.to_bits(), s.value);
        }
    }
    // Held in the window for its length: no spare capacity.
    for counts in scrape.values_mut() {
        counts.buckets.shrink_to_fit();
    }
    scrape.shrink_to_fit();
    Ok(scrape)
}

fn parse_bound(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        _ => text.parse().ok().filter(|b: &f64| *b >= 0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(pairs: &[(f64, f64)]) -> Counts {
        Counts {
            buckets: pairs.iter().map(|(le, n)| (le.to_bits(), *n)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn reads_linkerd_metrics_summed_over_status_codes() {
        let text = r#"
response_total{direction="inbound",status_code="200",classification="success",tls="true"} 10
response_total{direction="inbound",status_code="201",classification="success",tls="no_identity"} 5
response_total{direction="inbound",status_code="503",classification="failure",tls="true"} 2
response_total{direction="outbound",dst_namespace="shop",dst_service="web-v2",status_code="200",classification="success"} 4
response_latency_ms_bucket{direction="inbound",status_code="200",classification="success",le="1.0"} 3
response_latency_ms_bucket{direction="inbound",status_code="200",classification="success",le="+Inf"} 10
response_latency_ms_bucket{direction="inbound",status_code="503",classification="failure",le="1.0"} 0
response_latency_ms_bucket{direction="inbound",status_code="503",classification="failure",le="+Inf"} 2
request_total{direction="inbound"} 99
"#;
        let s = from_text(text).unwrap();
        let inbound = &s[&SeriesKey {
            direction: Direction::Inbound,
            dst_namespace: String::new(),
            dst_service: String::new(),
        }];
        assert_eq!((inbound.success, inbound.failure), (15.0, 2.0));
        assert_eq!(inbound.bucket(1.0f64.to_bits()).unwrap(), 3.0);
        assert_eq!(inbound.bucket(f64::INFINITY.to_bits()).unwrap(), 12.0);
        let out = &s[&SeriesKey {
            direction: Direction::Outbound,
            dst_namespace: "shop".into(),
            dst_service: "web-v2".into(),
        }];
        assert_eq!(out.success, 4.0);
    }

    #[test]
    fn increase_handles_counter_resets() {
        let then = Counts {
            success: 10.0,
            failure: 3.0,
            ..hist(&[(5.0, 8.0), (f64::INFINITY, 13.0)])
        };
        let now = Counts {
            success: 15.0,
            failure: 1.0, // restarted proxy
            ..hist(&[(5.0, 12.0), (f64::INFINITY, 16.0)])
        };
        let inc = now.increase_since(&then);
        assert_eq!((inc.success, inc.failure), (5.0, 1.0));
        assert_eq!(inc.bucket(5.0f64.to_bits()).unwrap(), 4.0);
        assert_eq!(inc.bucket(f64::INFINITY.to_bits()).unwrap(), 3.0);
    }

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        // 100 observations: 50 in (0,10], 40 in (10,20], 10 in (20,+Inf).
        let c = hist(&[(10.0, 50.0), (20.0, 90.0), (f64::INFINITY, 100.0)]);
        assert_eq!(c.latency_quantile(0.5), Some(10.0));
        assert_eq!(c.latency_quantile(0.25), Some(5.0));
        assert!((c.latency_quantile(0.7).unwrap() - 15.0).abs() < 1e-9);
        assert_eq!(c.latency_quantile(0.9), Some(20.0));
        // In the +Inf bucket: the highest finite bound.
        assert_eq!(c.latency_quantile(0.99), Some(20.0));
        assert_eq!(hist(&[]).latency_quantile(0.5), None);
        assert_eq!(hist(&[(10.0, 0.0)]).latency_quantile(0.5), None);
        // Empty leading buckets are skipped.
        let c = hist(&[(1.0, 0.0), (2.0, 0.0), (4.0, 4.0), (f64::INFINITY, 4.0)]);
        assert_eq!(c.latency_quantile(0.5), Some(3.0));
    }
}
