//! Which training samples make up each batch of an epoch.
//!
//! Two questions decide how much a small data set trains, so both are config fields:
//!
//! - **How long an epoch is** ([`EpochLength`]). The paper's epoch is one pass over the
//!   training slices: on MyoPS (102 slices, batch 16) that is 7 updates, 1,400 over its 200
//!   epochs, but six phantom cases of 4–5 slices at batch 8 give 3–4 updates an epoch, and a
//!   30-epoch schedule then stops after about 100 updates, before the pathology nets have
//!   learned. As in nnU-Net, an epoch may instead be a number of full batches, drawn from passes
//!   over the samples reshuffled one after the other, so every sample is seen equally often:
//!   a fixed number, or (the default) at least a number, a pass where that is longer.
//! - **Foreground oversampling**. Scar is absent from many slices; a batch of such slices
//!   teaches only "predict nothing". As nnU-Net does (a third of each batch), the last
//!   `⌈fraction · batch⌉` places of each batch are filled with slices that show the scored
//!   class when the shuffle put one without it there.
//!
//! Both draws derive from the epoch's seed, so an epoch's batches are a function of it.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::seed;

/// How many batches one epoch trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochLength {
    /// One pass over the training samples, the last batch possibly short (the paper's epoch).
    Pass,
    /// This many full batches (nnU-Net: 250), drawn from consecutive reshuffled passes.
    Batches(u64),
    /// One pass, or this many full batches where a pass is shorter (the default, 7: what a
    /// pass over MyoPS's 102 training slices at batch 16 is, so the paper's schedule keeps
    /// its length and a smaller data set trains as long).
    MinBatches(u64),
}

impl EpochLength {
    /// Samples an epoch trains on, `n` training samples in batches of `batch`.
    pub fn samples(self, n: usize, batch: usize) -> usize {
        let batch = batch.max(1);
        match self {
            EpochLength::Pass => n,
            EpochLength::Batches(b) => b as usize * batch,
            EpochLength::MinBatches(b) if n.div_ceil(batch) >= b as usize => n,
            EpochLength::MinBatches(b) => b as usize * batch,
        }
    }

    pub fn validate(self) -> Result<()> {
        if matches!(self, EpochLength::Batches(0) | EpochLength::MinBatches(0)) {
            return Err(Error::invalid(
                "epoch_length",
                "0 batches trains nothing: give at least one, or \"pass\"",
            ));
        }
        Ok(())
    }
}

/// What shapes an epoch's batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchSettings {
    pub batch_size: usize,
    pub length: EpochLength,
    /// Share of each batch (its last places) that must show the foreground class.
    pub foreground_fraction: f64,
}

/// Check a foreground fraction's domain, naming `field`.
pub fn check_fraction(field: &str, fraction: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(Error::invalid(
            field,
            format!("{fraction} is not a share of a batch in [0, 1]"),
        ));
    }
    Ok(())
}

/// The batches of one epoch as indices into the training samples; `foreground[i]` says whether
/// sample i shows the scored class. Deterministic in `epoch_seed`.
pub fn plan_batches(
    foreground: &[bool],
    settings: &BatchSettings,
    epoch_seed: u64,
) -> Vec<Vec<usize>> {
    let n = foreground.len();
    let batch = settings.batch_size.max(1);
    if n == 0 {
        return Vec::new();
    }
    let total = settings.length.samples(n, batch);
    let mut rng = ChaCha8Rng::seed_from_u64(seed::derive(epoch_seed, "shuffle", 0));
    let mut stream = Vec::with_capacity(total + n);
    while stream.len() < total {
        let mut pass: Vec<usize> = (0..n).collect();
        pass.shuffle(&mut rng);
        stream.extend(pass);
    }
    stream.truncate(total);
    let mut batches: Vec<Vec<usize>> = stream.chunks(batch).map(<[usize]>::to_vec).collect();
    let with: Vec<usize> = (0..n).filter(|&i| foreground[i]).collect();
    if settings.foreground_fraction > 0.0 && !with.is_empty() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed::derive(epoch_seed, "foreground", 0));
        for b in &mut batches {
            let forced = (settings.foreground_fraction * b.len() as f64).ceil() as usize;
            let from = b.len() - forced.min(b.len());
            for slot in &mut b[from..] {
                if !foreground[*slot] {
                    *slot = with[rng.random_range(0..with.len())];
                }
            }
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(batch_size: usize, length: EpochLength, fraction: f64) -> BatchSettings {
        BatchSettings {
            batch_size,
            length,
            foreground_fraction: fraction,
        }
    }

    fn counts(batches: &[Vec<usize>], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for i in batches.iter().flatten() {
            c[*i] += 1;
        }
        c
    }

    #[test]
    fn a_pass_shows_every_sample_once_the_last_batch_short() {
        let fg = [false; 10];
        let batches = plan_batches(&fg, &settings(4, EpochLength::Pass, 0.0), 3);
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [4, 4, 2]);
        assert_eq!(counts(&batches, 10), vec![1; 10]);
        assert_eq!(
            batches,
            plan_batches(&fg, &settings(4, EpochLength::Pass, 0.0), 3)
        );
        assert_ne!(
            batches,
            plan_batches(&fg, &settings(4, EpochLength::Pass, 0.0), 4)
        );
    }

    #[test]
    fn fixed_batches_are_full_and_spread_evenly_over_the_samples() {
        let fg = [false; 6];
        let batches = plan_batches(&fg, &settings(4, EpochLength::Batches(9), 0.0), 1);
        assert_eq!(batches.len(), 9);
        assert!(batches.iter().all(|b| b.len() == 4));
        // 36 places over 6 samples: six whole passes.
        assert_eq!(counts(&batches, 6), vec![6; 6]);
    }

    #[test]
    fn a_minimum_is_a_pass_where_a_pass_is_long_enough() {
        let fg = [false; 10];
        let at_least = |b| settings(4, EpochLength::MinBatches(b), 0.0);
        // Ten samples at batch 4 are three batches: a minimum of 3 is the paper's pass.
        assert_eq!(
            plan_batches(&fg, &at_least(3), 8),
            plan_batches(&fg, &settings(4, EpochLength::Pass, 0.0), 8)
        );
        // A minimum of 5: five full batches, every sample twice.
        let five = plan_batches(&fg, &at_least(5), 8);
        assert_eq!(five.len(), 5);
        assert!(five.iter().all(|b| b.len() == 4));
        assert_eq!(counts(&five, 10), vec![2; 10]);
    }

    #[test]
    fn oversampling_fills_the_last_places_with_foreground() {
        // Samples 0 and 7 of ten show the class.
        let fg: Vec<bool> = (0..10).map(|i| i == 0 || i == 7).collect();
        let batches = plan_batches(&fg, &settings(6, EpochLength::Batches(20), 1.0 / 3.0), 5);
        for b in &batches {
            assert!(b[4..].iter().all(|&i| fg[i]), "{b:?}");
        }
        // Without oversampling the shuffle alone decides.
        let plain = plan_batches(&fg, &settings(6, EpochLength::Batches(20), 0.0), 5);
        let share = |bs: &[Vec<usize>]| {
            bs.iter().flatten().filter(|&&i| fg[i]).count() as f64 / (bs.len() * 6) as f64
        };
        assert!((share(&plain) - 0.2).abs() < 1e-9, "{}", share(&plain));
        assert!(share(&batches) >= 1.0 / 3.0);
        // No foreground anywhere: nothing to oversample, the plain batches stand.
        let none = [false; 10];
        assert_eq!(
            plan_batches(&none, &settings(6, EpochLength::Batches(20), 0.5), 5),
            plan_batches(&none, &settings(6, EpochLength::Batches(20), 0.0), 5)
        );
    }

    #[test]
    fn bad_lengths_and_fractions_are_refused_by_name() {
        for zero in [EpochLength::Batches(0), EpochLength::MinBatches(0)] {
            let err = zero.validate().unwrap_err().to_string();
            assert!(err.contains("epoch_length"), "{err}");
        }
        let err = check_fraction("foreground_oversampling", 1.5)
            .unwrap_err()
            .to_string();
        assert!(err.contains("foreground_oversampling"), "{err}");
        let parsed: EpochLength = serde_json::from_str("{\"batches\": 12}").unwrap();
        assert_eq!(parsed, EpochLength::Batches(12));
        let parsed: EpochLength = serde_json::from_str("\"pass\"").unwrap();
        assert_eq!(parsed, EpochLength::Pass);
    }
}
