//! The bounded in-memory window: per pod, the scrapes of the last
//! `window` plus the one just before it (the baseline), so the increase of
//! every counter over the window is `newest - baseline`. Memory per pod is
//! at most `window / interval + 2` scrapes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::counters::Counts;
use super::counters::{Scrape, SeriesKey};

/// Which pod incarnation: namespace, name and IP (a new IP is a new window).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PodKey {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

#[derive(Debug, Default)]
struct PodWindow {
    ip: String,
    scrapes: VecDeque<(Instant, Arc<Scrape>)>,
}

/// Every meshed pod's recent scrapes.
#[derive(Debug)]
pub struct Windows {
    window: Duration,
    pods: RwLock<HashMap<PodKey, PodWindow>>,
}

impl Windows {
    /// Empty windows of length `window`.
    pub fn new(window: Duration) -> Self {
        Windows {
            window,
            pods: RwLock::default(),
        }
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Records a scrape of `pod` (at `ip`) taken at `at`.
    pub fn record(&self, pod: PodKey, ip: &str, at: Instant, scrape: Scrape) {
        let mut pods = self.pods.write().expect("not poisoned");
        let w = pods.entry(pod).or_default();
        if w.ip != ip {
            // Same name, new pod (a StatefulSet replica): start over.
            w.ip = ip.to_string();
            w.scrapes.clear();
        }
        w.scrapes.push_back((at, Arc::new(scrape)));
        prune(&mut w.scrapes, at, self.window);
    }

    /// Drops every pod not in `live` (deleted, unmeshed, lost its IP), and
    /// scrapes that fell out of the window.
    pub fn retain(&self, live: &HashMap<PodKey, String>, now: Instant) {
        let mut pods = self.pods.write().expect("not poisoned");
        pods.retain(|k, w| live.get(k).is_some_and(|ip| *ip == w.ip));
        for w in pods.values_mut() {
            prune(&mut w.scrapes, now, self.window);
        }
    }

    /// How many pods and scrapes are held (for the operator's metrics and tests).
    pub fn size(&self) -> (usize, usize) {
        let pods = self.pods.read().expect("not poisoned");
        (pods.len(), pods.values().map(|w| w.scrapes.len()).sum())
    }

    /// Per pod, the increase of each series over the window ending `now`.
    /// A pod needs two scrapes in reach to have an increase; a pod whose
    /// newest scrape is older than the window (scrapes failing) has none.
    pub fn increases(&self, now: Instant) -> HashMap<PodKey, HashMap<SeriesKey, Counts>> {
        let pods = self.pods.read().expect("not poisoned");
        pods.iter()
            .filter_map(|(k, w)| Some((k.clone(), increase(&w.scrapes, now, self.window)?)))
            .collect()
    }
}

/// Keeps the scrapes inside the window and one before it (the baseline).
fn prune(scrapes: &mut VecDeque<(Instant, Arc<Scrape>)>, now: Instant, window: Duration) {
    let start = now.checked_sub(window);
    while let (Some(start), Some((second, _))) = (start, scrapes.get(1)) {
        if *second <= start {
            scrapes.pop_front();
        } else {
            break;
        }
    }
}

fn increase(
    scrapes: &VecDeque<(Instant, Arc<Scrape>)>,
    now: Instant,
    window: Duration,
) -> Option<HashMap<SeriesKey, Counts>> {
    let (newest_at, newest) = scrapes.back()?;
    if now.saturating_duration_since(*newest_at) > window {
        return None;
    }
    let start = now.checked_sub(window);
    // The newest scrape at or before the window's start, else the oldest.
    let (_, baseline) = scrapes
        .iter()
        .rev()
        .find(|(at, _)| start.is_some_and(|s| *at <= s))
        .or(scrapes.front())?;
    if Arc::ptr_eq(baseline, newest) {
        return None;
    }
    Some(
        newest
            .iter()
            .map(|(key, counts)| {
                let inc = match baseline.get(key) {
                    Some(then) => counts.increase_since(then),
                    // A series born inside the window: all of it is new.
                    None => counts.clone(),
                };
                (key.clone(), inc)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::counters::Direction;
    use super::*;

    fn inbound(success: f64) -> Scrape {
        let mut s = Scrape::new();
        s.insert(
            SeriesKey {
                direction: Direction::Inbound,
                dst_namespace: String::new(),
                dst_service: String::new(),
            },
            Counts {
                success,
                ..Default::default()
            },
        );
        s
    }

    fn pod(name: &str) -> PodKey {
        PodKey {
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    fn success(w: &Windows, now: Instant, p: &str) -> Option<f64> {
        w.increases(now)
            .get(&pod(p))
            .map(|s| s.values().map(|c| c.success).sum())
    }

    #[test]
    fn increase_over_the_window_with_a_baseline_and_bounded_memory() {
        let w = Windows::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        w.record(pod("a"), "10.0.0.1", at(0), inbound(100.0));
        assert_eq!(success(&w, at(0), "a"), None, "one scrape has no increase");
        for (i, total) in [(10, 110.0), (20, 130.0), (30, 160.0), (40, 200.0)] {
            w.record(pod("a"), "10.0.0.1", at(i), inbound(total));
        }
        // Window (10, 40]: baseline is the scrape at 10 s.
        assert_eq!(success(&w, at(40), "a"), Some(90.0));
        // Held: baseline at 10 plus 20, 30, 40.
        assert_eq!(w.size(), (1, 4));
        for i in 5..100 {
            w.record(pod("a"), "10.0.0.1", at(i * 10), inbound(i as f64));
        }
        assert!(w.size().1 <= 30 / 10 + 2, "{:?}", w.size());
        // Stale: no scrape for longer than the window.
        assert_eq!(success(&w, at(990 + 31), "a"), None);
    }

    #[test]
    fn new_ip_restarts_and_vanished_pods_drop_out() {
        let w = Windows::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        w.record(pod("a"), "10.0.0.1", at(0), inbound(5.0));
        w.record(pod("b"), "10.0.0.2", at(0), inbound(5.0));
        w.record(pod("a"), "10.0.0.1", at(10), inbound(9.0));
        w.record(pod("b"), "10.0.0.2", at(10), inbound(9.0));
        assert_eq!(success(&w, at(10), "a"), Some(4.0));
        w.record(pod("a"), "10.0.0.9", at(20), inbound(1.0));
        assert_eq!(
            success(&w, at(20), "a"),
            None,
            "a new incarnation starts over"
        );
        let live = HashMap::from([(pod("a"), "10.0.0.9".to_string())]);
        w.retain(&live, at(20));
        assert_eq!(w.size(), (1, 1));
        assert_eq!(success(&w, at(20), "b"), None);
    }
}
