//! Seeded percentile bootstrap of the mean difference.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Resamples drawn by default: enough for the 2.5th and 97.5th percentiles to be stable to about
/// a hundredth of a standard error.
pub const DEFAULT_RESAMPLES: usize = 10_000;
/// Most resamples accepted: a hundred million means take minutes and 800 MB; more is a typo.
pub const MAX_RESAMPLES: usize = 10_000_000;

/// The 95 % percentile-bootstrap interval of mean(d): `resamples` times, draw n differences with
/// replacement and take their mean; the interval runs from the 2.5th to the 97.5th percentile
/// (linear interpolation) of those means. The same `seed` gives the same interval.
/// `None` for fewer than 2 differences, a resample count outside 1..=[`MAX_RESAMPLES`], or
/// values too large for their mean to be finite.
pub fn mean_ci95(d: &[f64], resamples: usize, seed: u64) -> Option<(f64, f64)> {
    let n = d.len();
    if n < 2 || !(1..=MAX_RESAMPLES).contains(&resamples) {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| d[rng.random_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    if means.iter().any(|m| !m.is_finite()) {
        return None;
    }
    let low = crate::eval::metrics::percentile(&mut means, 2.5);
    let high = crate::eval::metrics::percentile(&mut means, 97.5);
    Some((low, high))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_is_seeded_and_brackets_the_mean() {
        let d = [0.1, -0.05, 0.2, 0.15, 0.0, 0.3, -0.1, 0.12];
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        let a = mean_ci95(&d, 2000, 7).unwrap();
        assert_eq!(a, mean_ci95(&d, 2000, 7).unwrap());
        assert_ne!(a, mean_ci95(&d, 2000, 8).unwrap());
        assert!(a.0 < mean && mean < a.1, "{a:?} vs {mean}");
        // The interval cannot leave the range of the data.
        assert!(a.0 >= -0.1 && a.1 <= 0.3);
    }

    #[test]
    fn constant_differences_give_a_point_interval() {
        assert_eq!(mean_ci95(&[0.25; 6], 500, 1), Some((0.25, 0.25)));
        assert_eq!(mean_ci95(&[0.25], 500, 1), None);
    }
}
