//! TrafficSplit: weighted choice between backend services, restricted to
//! requests matching the split's HTTP matches when it has any.

pub mod matches;

pub use matches::{CompiledMatch, RequestView};

/// Picks an index with probability proportional to its weight, given a
/// uniform `roll` in `0..sum(weights)`. `None` when every weight is zero.
pub fn choose_weighted(weights: impl Iterator<Item = u32> + Clone, roll: u64) -> Option<usize> {
    let mut acc = 0u64;
    for (i, w) in weights.enumerate() {
        acc += u64::from(w);
        if roll < acc {
            return Some(i);
        }
    }
    None
}

/// Like [`choose_weighted`] with a random roll.
pub fn choose_random(weights: impl Iterator<Item = u32> + Clone) -> Option<usize> {
    let total: u64 = weights.clone().map(u64::from).sum();
    if total == 0 {
        return None;
    }
    choose_weighted(weights, fastrand::u64(..total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_map_to_weight_ranges() {
        let w = [1u32, 0, 3];
        assert_eq!(choose_weighted(w.iter().copied(), 0), Some(0));
        assert_eq!(choose_weighted(w.iter().copied(), 1), Some(2));
        assert_eq!(choose_weighted(w.iter().copied(), 3), Some(2));
        assert_eq!(choose_weighted(w.iter().copied(), 4), None);
        assert_eq!(choose_random([0u32, 0].iter().copied()), None);
    }

    #[test]
    fn random_choice_follows_weights() {
        let w = [90u32, 10];
        let n = 20_000;
        let first = (0..n)
            .filter(|_| choose_random(w.iter().copied()) == Some(0))
            .count();
        let share = first as f64 / n as f64;
        assert!((share - 0.9).abs() < 0.02, "{share}");
    }
}
