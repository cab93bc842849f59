//! The hybrid segmentation loss `soft Dice + λ·cross-entropy` (Eq. 3; with λ = 0 the soft Dice
//! of Eq. 1 the CASNs train on) on `B × C × P` logits and `B × P` class labels, with its
//! gradient with respect to the logits, in two passes.
//!
//! With `p = softmax(z)` over classes and one-hot truth `t`:
//! - Dice per sample and class `D = (2·Σ p·t + ε) / (Σ (p + t) + ε)`; the loss is `1 − mean D`
//!   over the samples and the counted classes (background optional), or with `dice_sum` the
//!   sum over counted classes of `1 − D`, averaged over the samples (`k·(1 − mean D)` for k
//!   counted classes);
//! - cross-entropy `−mean log p[label]` over all pixels;
//! - `∂L/∂z_c = p_c (g_c − Σ_k p_k g_k) + λ (p_c − t_c)/(B·P)`, where `g = ∂L_Dice/∂p` is
//!   `−(2 t (S + ε) − (2 I + ε)) / (n (S + ε)²)` for counted classes (n: the batch times the
//!   counted classes for a mean, the batch for a sum).
//!
//! The definition matches `train::loss::{soft_dice, cross_entropy}`, which stay the reference.

use rayon::prelude::*;

/// Batch, classes, pixels per plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LossShape {
    pub batch: usize,
    pub classes: usize,
    pub pixels: usize,
}

/// The loss's settings, as `train::loss::LossConfig`.
#[derive(Clone, Copy, Debug)]
pub struct HybridSettings {
    pub dice_smooth: f64,
    pub dice_background: bool,
    /// Sum the counted classes' Dice losses instead of averaging them.
    pub dice_sum: bool,
    /// One Dice per class over the whole batch instead of one per sample.
    pub dice_batch: bool,
    pub ce_weight: f64,
}

/// The loss value and its gradient with respect to the logits.
pub struct LossAndGrad {
    pub loss: f64,
    pub grad: Vec<f32>,
}

/// Softmax over classes of one sample's `C × P` logits, written into `probs`; returns each
/// pixel's log-sum-exp, for an exact log-probability.
fn softmax(logits: &[f32], classes: usize, pixels: usize, probs: &mut [f32]) -> Vec<f32> {
    let mut log_sum_exp = vec![0.0f32; pixels];
    for px in 0..pixels {
        let max = (0..classes)
            .map(|c| logits[c * pixels + px])
            .fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0f32;
        for c in 0..classes {
            let e = (logits[c * pixels + px] - max).exp();
            probs[c * pixels + px] = e;
            sum += e;
        }
        for c in 0..classes {
            probs[c * pixels + px] /= sum;
        }
        log_sum_exp[px] = max + sum.ln();
    }
    log_sum_exp
}

/// Per class of one Dice group (a sample, or the whole batch): Σ p·t, Σ p and Σ t.
#[derive(Clone, Copy, Default)]
struct Sums {
    inter: f64,
    prob: f64,
    truth: f64,
}

/// Softmax probabilities of one sample and its per-class sums.
fn sample_sums(
    z: &[f32],
    label: &[i64],
    classes: usize,
    pixels: usize,
) -> (Vec<f32>, Vec<Sums>, f64) {
    let mut p = vec![0.0f32; classes * pixels];
    let log_sum_exp = softmax(z, classes, pixels, &mut p);
    let mut sums = vec![Sums::default(); classes];
    for (c, s) in sums.iter_mut().enumerate() {
        let plane = &p[c * pixels..(c + 1) * pixels];
        for (&pv, &l) in plane.iter().zip(label) {
            s.prob += pv as f64;
            if l as usize == c {
                s.inter += pv as f64;
                s.truth += 1.0;
            }
        }
    }
    let ce = (0..pixels)
        .map(|px| -(z[label[px] as usize * pixels + px] - log_sum_exp[px]) as f64)
        .sum();
    (p, sums, ce)
}

/// Loss and gradient. `labels` holds one class index per pixel, each `< classes` (checked: the
/// training samples are built with classes in range, so a bad label here is a bug, not input).
pub fn hybrid(
    logits: &[f32],
    labels: &[i64],
    shape: &LossShape,
    settings: &HybridSettings,
) -> LossAndGrad {
    let (classes, pixels) = (shape.classes, shape.pixels);
    assert_eq!(
        logits.len(),
        shape.batch * classes * pixels,
        "loss: logits length"
    );
    assert_eq!(labels.len(), shape.batch * pixels, "loss: labels length");
    assert!(
        labels.iter().all(|&l| l >= 0 && (l as usize) < classes),
        "loss: a label outside 0..{classes}"
    );
    let first = usize::from(!settings.dice_background && classes > 1);
    // Dice groups: each sample, or the batch as one (`dice_batch`).
    let groups = if settings.dice_batch { 1 } else { shape.batch };
    // The Dice term is `k − Σ D / n`: k = 1 and n = groups × counted classes for a mean,
    // k = the counted classes and n = groups for a sum.
    let (k, counted) = if settings.dice_sum {
        ((classes - first) as f64, groups as f64)
    } else {
        (1.0, (groups * (classes - first)) as f64)
    };
    let ce_scale = settings.ce_weight / (shape.batch * pixels) as f64;
    let eps = settings.dice_smooth;

    let per_sample: Vec<(Vec<f32>, Vec<Sums>, f64)> = logits
        .par_chunks(classes * pixels)
        .zip(labels.par_chunks(pixels))
        .map(|(z, label)| sample_sums(z, label, classes, pixels))
        .collect();
    let mut batch_sums = vec![Sums::default(); classes];
    for (_, sums, _) in &per_sample {
        for (b, s) in batch_sums.iter_mut().zip(sums) {
            b.inter += s.inter;
            b.prob += s.prob;
            b.truth += s.truth;
        }
    }
    // ∂L_Dice/∂p per group and class: a constant for pixels of another class, plus a second
    // constant where the pixel is of this class.
    let terms = |sums: &[Sums]| {
        let mut dice = 0.0f64;
        let mut g_other = vec![0.0f64; classes];
        let mut g_own = vec![0.0f64; classes];
        for c in first..classes {
            let total = sums[c].prob + sums[c].truth + eps;
            dice += (2.0 * sums[c].inter + eps) / total;
            g_other[c] = (2.0 * sums[c].inter + eps) / (counted * total * total);
            g_own[c] = g_other[c] - 2.0 / (counted * total);
        }
        (dice, g_other, g_own)
    };
    let batch_terms = settings.dice_batch.then(|| terms(&batch_sums));

    let mut grad = vec![0.0f32; logits.len()];
    let dice_of: Vec<f64> = grad
        .par_chunks_mut(classes * pixels)
        .zip(&per_sample)
        .zip(labels.par_chunks(pixels))
        .map(|((grad, (p, sums, _)), label)| {
            let own_terms;
            let (dice, g_other, g_own) = match &batch_terms {
                Some(t) => t,
                None => {
                    own_terms = terms(sums);
                    &own_terms
                }
            };
            for px in 0..pixels {
                let l = label[px] as usize;
                let g = |c: usize| if c == l { g_own[c] } else { g_other[c] };
                let dot: f64 = (0..classes).map(|c| p[c * pixels + px] as f64 * g(c)).sum();
                for c in 0..classes {
                    let pc = p[c * pixels + px] as f64;
                    let truth = if c == l { 1.0 } else { 0.0 };
                    grad[c * pixels + px] = (pc * (g(c) - dot) + ce_scale * (pc - truth)) as f32;
                }
            }
            *dice
        })
        .collect();
    let dice_sum: f64 = match &batch_terms {
        Some((dice, _, _)) => *dice,
        None => dice_of.iter().sum(),
    };
    let ce_sum: f64 = per_sample.iter().map(|s| s.2).sum();
    let loss = k - dice_sum / counted + settings.ce_weight * ce_sum / (shape.batch * pixels) as f64;
    LossAndGrad { loss, grad }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss_only(logits: &[f32], labels: &[i64], shape: &LossShape, s: &HybridSettings) -> f64 {
        hybrid(logits, labels, shape, s).loss
    }

    #[test]
    fn hand_value_and_finite_difference_gradient() {
        // Two classes, two pixels: logits (ln 3, 0) and (0, ln 3), labels 0 and 1. Each
        // pixel's true class has probability 0.75: Dice per class 2·0.75/2 = 0.75, CE = −ln 0.75.
        let l3 = 3f32.ln();
        let shape = LossShape {
            batch: 1,
            classes: 2,
            pixels: 2,
        };
        let settings = HybridSettings {
            dice_smooth: 0.0,
            dice_background: false,
            dice_sum: false,
            dice_batch: false,
            ce_weight: 0.25,
        };
        let logits = [l3, 0.0, 0.0, l3];
        let value = loss_only(&logits, &[0, 1], &shape, &settings);
        let expected = 0.25 + 0.25 * -(0.75f64.ln());
        assert!((value - expected).abs() < 1e-6, "{value} vs {expected}");

        let shape = LossShape {
            batch: 2,
            classes: 3,
            pixels: 5,
        };
        let logits: Vec<f32> = (0..30).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
        let labels: Vec<i64> = (0..10).map(|i| (i * 5 % 3) as i64).collect();
        let options = [(false, false), (true, false), (false, true), (true, true)];
        for ((background, dice_sum), dice_batch) in
            options.into_iter().flat_map(|o| [(o, false), (o, true)])
        {
            let settings = HybridSettings {
                dice_smooth: 1e-5,
                dice_background: background,
                dice_sum,
                dice_batch,
                ce_weight: 0.25,
            };
            let grad = hybrid(&logits, &labels, &shape, &settings).grad;
            for i in 0..30 {
                let h = 1e-3f32;
                let mut up = logits.clone();
                up[i] += h;
                let mut down = logits.clone();
                down[i] -= h;
                let numeric = (loss_only(&up, &labels, &shape, &settings)
                    - loss_only(&down, &labels, &shape, &settings))
                    / (2.0 * h as f64);
                assert!(
                    (numeric - grad[i] as f64).abs() < 1e-3,
                    "logit {i}: {numeric} vs {}",
                    grad[i]
                );
            }
        }
    }
}
