//! Power of two choices: pick two random available endpoints and keep the
//! one with the lower load (latency estimate × (in-flight + 1) ÷ weight).

use super::Endpoint;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// An endpoint with its weight in the current config.
#[derive(Clone, Debug)]
pub struct Weighted {
    /// The shared endpoint state.
    pub endpoint: Arc<Endpoint>,
    /// Relative weight (0 is treated as 1).
    pub weight: u32,
}

/// Picks an endpoint, skipping `exclude` (already failed for this request).
/// Ejected endpoints are skipped unless every endpoint is ejected (then all
/// are candidates: better a probably-failing try than a certain failure).
pub fn pick<'a>(endpoints: &'a [Weighted], exclude: &[SocketAddr]) -> Option<&'a Weighted> {
    let now = Instant::now();
    let allowed = |w: &&Weighted| !exclude.contains(&w.endpoint.addr);
    let available = |w: &&Weighted| allowed(w) && w.endpoint.is_available(now);
    let mut n = endpoints.iter().filter(available).count();
    let healthy_only = n > 0;
    if !healthy_only {
        n = endpoints.iter().filter(allowed).count();
    }
    let nth = |i: usize| {
        endpoints
            .iter()
            .filter(|w| {
                if healthy_only {
                    available(w)
                } else {
                    allowed(w)
                }
            })
            .nth(i)
    };
    match n {
        0 => None,
        1 => nth(0),
        _ => {
            let i = fastrand::usize(..n);
            let mut j = fastrand::usize(..n - 1);
            if j >= i {
                j += 1;
            }
            let (a, b) = (nth(i)?, nth(j)?);
            let (ca, cb) = (cost(a, now), cost(b, now));
            // Near-equal loads (e.g. fresh endpoints) are a coin toss, so
            // creation order does not bias the choice.
            if (ca - cb).abs() <= 0.01 * ca.max(cb) {
                return Some(if fastrand::bool() { a } else { b });
            }
            Some(if ca < cb { a } else { b })
        }
    }
}

fn cost(w: &Weighted, now: Instant) -> f64 {
    w.endpoint.load(now) / f64::from(w.weight.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn weighted(port: u16) -> Weighted {
        Weighted {
            endpoint: Arc::new(Endpoint::new(SocketAddr::from(([127, 0, 0, 1], port)))),
            weight: 1,
        }
    }

    #[test]
    fn prefers_the_faster_endpoint() {
        let eps = vec![weighted(1), weighted(2)];
        eps[0].endpoint.observe_latency(Duration::from_millis(200));
        eps[1].endpoint.observe_latency(Duration::from_millis(1));
        for _ in 0..50 {
            assert_eq!(pick(&eps, &[]).unwrap().endpoint.addr.port(), 2);
        }
    }

    #[test]
    fn skips_excluded_endpoints() {
        let eps = vec![weighted(1), weighted(2), weighted(3)];
        let ex = [eps[0].endpoint.addr, eps[1].endpoint.addr];
        for _ in 0..20 {
            assert_eq!(pick(&eps, &ex).unwrap().endpoint.addr.port(), 3);
        }
        let all: Vec<_> = eps.iter().map(|w| w.endpoint.addr).collect();
        assert!(pick(&eps, &all).is_none());
    }

    #[test]
    fn spreads_over_equal_endpoints() {
        let eps = vec![weighted(1), weighted(2), weighted(3)];
        let mut seen = [0; 3];
        for _ in 0..300 {
            seen[pick(&eps, &[]).unwrap().endpoint.addr.port() as usize - 1] += 1;
        }
        assert!(seen.iter().all(|n| *n > 30), "{seen:?}");
    }
}
