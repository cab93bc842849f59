//! Segmentation losses (§3.1 Eq. 1, §3.2 Eq. 3–4).
//!
//! - Soft Dice (Eq. 1), per sample and class: `1 − (2·Σ p·g + ε) / (Σ p + Σ g + ε)` over the
//!   pixels, with p the softmax probability and g the one-hot target, averaged over the
//!   foreground classes and the samples; with `dice_batch` the sums run over the batch's
//!   pixels, one Dice per class (nnU-Net's batch Dice). The released code instead sums over the classes,
//!   background included: `dice_sum` and `dice_background` (each its own option).
//! - Cross-entropy: the mean over pixels of `−log softmax(logits)[target]`.
//! - Hybrid (Eq. 3): `Dice + λ_CE · CE`, λ_CE = 0.25. The released code uses 0.2 before the
//!   search and 0 during it; the training config chooses λ_CE per phase
//!   (`loss.ce_weight_auto`), this module takes the epoch's value.
//! - Deep supervision (Eq. 4): `Σ_l α_l · L_l` over the heads, with Σ α_l = 1.

use burn::config::Config;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

use super::fused_loss::hybrid_fused;
use crate::model::fast_ops::{log_softmax_classes, softmax_classes};
use crate::model::flex_bridge::{route, Route};

#[derive(Config, Debug, PartialEq)]
pub struct LossConfig {
    /// ε of the soft Dice: keeps classes absent from a sample and its prediction from dividing
    /// 0 by 0.
    #[config(default = 1e-5)]
    pub dice_smooth: f64,
    /// Count the background class in the Dice (the released code does; the paper does not).
    #[config(default = false)]
    pub dice_background: bool,
    /// Sum the counted classes' Dice losses (the released code) rather than average them.
    #[config(default = false)]
    pub dice_sum: bool,
    /// One Dice per class over the whole batch (nnU-Net's batch Dice) instead of one per
    /// sample: a slice without the class then adds its false positives to the batch's Dice
    /// rather than scoring 0 or 1 on its own.
    #[config(default = false)]
    pub dice_batch: bool,
    /// λ_CE.
    #[config(default = 0.25)]
    pub ce_weight: f64,
}

/// One-hot `[batch, classes, h, w]` of integer labels `[batch, h, w]`.
pub fn one_hot<B: Backend>(target: Tensor<B, 3, Int>, classes: usize) -> Tensor<B, 4> {
    let planes = (0..classes)
        .map(|c| target.clone().equal_elem(c as i64).float().unsqueeze_dim(1))
        .collect();
    Tensor::cat(planes, 1)
}

/// Soft multi-class Dice loss of `logits` `[batch, classes, h, w]` against `target`.
pub fn soft_dice<B: Backend>(
    logits: Tensor<B, 4>,
    target: Tensor<B, 3, Int>,
    config: &LossConfig,
) -> Tensor<B, 1> {
    let [batch, classes, h, w] = logits.dims();
    let probs = softmax_classes(logits);
    let truth = one_hot(target, classes);
    // Reduce over pixels first and drop the background class from the small [groups, classes]
    // result: slicing the class axis of full-size maps is slow on the CPU backend.
    let sums = |t: Tensor<B, 4>| {
        let per_sample = t
            .reshape([batch, classes, h * w])
            .sum_dim(2)
            .reshape([batch, classes]);
        if config.dice_batch {
            per_sample.sum_dim(0)
        } else {
            per_sample
        }
    };
    let inter = sums(probs.clone() * truth.clone());
    let total = sums(probs + truth);
    let dice = (inter * 2.0 + config.dice_smooth) / (total + config.dice_smooth);
    let first = usize::from(!config.dice_background && classes > 1);
    let loss = dice.narrow(1, first, classes - first).mean().neg() + 1.0;
    if config.dice_sum {
        // Σ_c (1 − D_c) averaged over samples: k times the mean over k classes.
        loss * (classes - first) as f64
    } else {
        loss
    }
}

/// Mean pixel-wise cross-entropy of `logits` against `target`.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 4>, target: Tensor<B, 3, Int>) -> Tensor<B, 1> {
    let [_, classes, _, _] = logits.dims();
    let log_p = log_softmax_classes(logits);
    let picked = (log_p * one_hot(target, classes)).sum_dim(1);
    picked.mean().neg()
}

/// `Dice + λ_CE · CE` of one head.
pub fn hybrid<B: Backend>(
    logits: Tensor<B, 4>,
    target: Tensor<B, 3, Int>,
    config: &LossConfig,
) -> Tensor<B, 1> {
    if route(&logits) == Route::AutodiffFlex {
        return hybrid_fused(logits, target, config);
    }
    let dice = soft_dice(logits.clone(), target.clone(), config);
    if config.ce_weight == 0.0 {
        return dice;
    }
    dice + cross_entropy(logits, target) * config.ce_weight
}

/// `Σ_l α_l · hybrid(head_l)`: one weight per head, in the heads' order (coarse to fine).
pub fn deep_supervision<B: Backend>(
    heads: &[Tensor<B, 4>],
    target: Tensor<B, 3, Int>,
    alpha: &[f64],
    config: &LossConfig,
) -> Tensor<B, 1> {
    assert_eq!(
        heads.len(),
        alpha.len(),
        "one supervision weight per head is required"
    );
    heads
        .iter()
        .zip(alpha)
        .map(|(h, &a)| hybrid(h.clone(), target.clone(), config) * a)
        .reduce(|x, y| x + y)
        .expect("at least one head")
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    type B = Flex;

    /// One sample, two classes, two pixels labelled [0, 1]. Logits (ln 3, 0) then (0, ln 3):
    /// softmax (0.75, 0.25) and (0.25, 0.75), so each class has Σp·g = 0.75, Σp = 1, Σg = 1.
    fn pair() -> (Tensor<B, 4>, Tensor<B, 3, Int>) {
        let device = Default::default();
        let l3 = 3f32.ln();
        // [batch 1, classes 2, h 1, w 2]
        let logits = Tensor::from_data(
            TensorData::new(vec![l3, 0.0, 0.0, l3], [1, 2, 1, 2]),
            &device,
        );
        let target = Tensor::from_data(TensorData::new(vec![0i64, 1], [1, 1, 2]), &device);
        (logits, target)
    }

    fn value(t: Tensor<B, 1>) -> f64 {
        t.into_scalar() as f64
    }

    #[test]
    fn hand_computed_losses() {
        let (logits, target) = pair();
        let config = LossConfig::new().with_dice_smooth(0.0);
        // Dice per class = 2·0.75 / 2 = 0.75, with or without the background class.
        let fg = value(soft_dice(logits.clone(), target.clone(), &config));
        let all = value(soft_dice(
            logits.clone(),
            target.clone(),
            &config.clone().with_dice_background(true),
        ));
        assert!(
            (fg - 0.25).abs() < 1e-6 && (all - 0.25).abs() < 1e-6,
            "{fg} {all}"
        );
        // CE = −ln 0.75 at both pixels.
        let ce = value(cross_entropy(logits.clone(), target.clone()));
        assert!((ce - -(0.75f64.ln())).abs() < 1e-6, "{ce}");
        let h = value(hybrid(logits, target, &config));
        assert!((h - (0.25 + 0.25 * -(0.75f64.ln()))).abs() < 1e-6, "{h}");
    }

    #[test]
    fn background_and_sum_options_change_the_dice_reduction() {
        let device = Default::default();
        // Uniform logits over 3 classes, every pixel labelled 0: the background class is
        // predicted at 1/3 everywhere, the absent classes too.
        let logits = Tensor::<B, 4>::zeros([1, 3, 2, 2], &device);
        let target = Tensor::<B, 3, Int>::zeros([1, 2, 2], &device);
        let config = LossConfig::new().with_dice_smooth(1.0);
        // Background: Σp·g = 4/3, Σp + Σg = 4/3 + 4 → (8/3 + 1)/(16/3 + 1) = 11/19.
        // Absent classes: Σp·g = 0, Σp = 4/3 → 1/(4/3 + 1) = 3/7.
        let fg = value(soft_dice(logits.clone(), target.clone(), &config));
        assert!((fg - (1.0 - 3.0 / 7.0)).abs() < 1e-6, "{fg}");
        let all = value(soft_dice(
            logits.clone(),
            target.clone(),
            &config.clone().with_dice_background(true),
        ));
        let want = 1.0 - (11.0 / 19.0 + 2.0 * 3.0 / 7.0) / 3.0;
        assert!((all - want).abs() < 1e-6, "{all} vs {want}");
        // Summed as released: Σ_c (1 − D_c) over the counted classes.
        let config = config.with_dice_sum(true);
        let fg_sum = value(soft_dice(logits.clone(), target.clone(), &config));
        assert!((fg_sum - 2.0 * (1.0 - 3.0 / 7.0)).abs() < 1e-6, "{fg_sum}");
        let all_sum = value(soft_dice(
            logits,
            target,
            &config.with_dice_background(true),
        ));
        let want = (1.0 - 11.0 / 19.0) + 2.0 * (1.0 - 3.0 / 7.0);
        assert!((all_sum - want).abs() < 1e-6, "{all_sum} vs {want}");
    }

    /// Two one-pixel samples, classes {0, 1}: the first labelled 1 and predicting it with 0.75,
    /// the second labelled 0 and predicting 1 with 0.25. Per sample, class 1's Dice is
    /// 2·0.75/1.75 and then (absent from both truth and a hard prediction) ε/(0.25 + ε) ≈ 0;
    /// over the batch it is one Dice, 2·0.75/(0.75 + 0.25 + 1).
    #[test]
    fn batch_dice_pools_the_batch_before_dividing() {
        let device = Default::default();
        let l3 = 3f32.ln();
        // [batch 2, classes 2, h 1, w 1]: logits (0, ln 3) then (ln 3, 0).
        let logits = Tensor::<B, 4>::from_data(
            TensorData::new(vec![0.0, l3, l3, 0.0], [2, 2, 1, 1]),
            &device,
        );
        let target =
            Tensor::<B, 3, Int>::from_data(TensorData::new(vec![1i64, 0], [2, 1, 1]), &device);
        let config = LossConfig::new().with_dice_smooth(0.0);
        let per_sample = value(soft_dice(logits.clone(), target.clone(), &config));
        let want = 1.0 - (2.0 * 0.75 / 1.75 + 0.0) / 2.0;
        assert!((per_sample - want).abs() < 1e-6, "{per_sample} vs {want}");
        let batch = value(soft_dice(logits, target, &config.with_dice_batch(true)));
        let want = 1.0 - 2.0 * 0.75 / 2.0;
        assert!((batch - want).abs() < 1e-6, "{batch} vs {want}");
    }

    #[test]
    fn deep_supervision_weights_each_head() {
        let (logits, target) = pair();
        let device = Default::default();
        let flat = Tensor::<B, 4>::zeros([1, 2, 1, 2], &device);
        let config = LossConfig::new();
        let heads = [logits.clone(), flat.clone(), logits.clone(), flat.clone()];
        let alpha = [0.1, 0.2, 0.3, 0.4];
        let total = value(deep_supervision(&heads, target.clone(), &alpha, &config));
        let a = value(hybrid(logits, target.clone(), &config));
        let b = value(hybrid(flat, target, &config));
        assert!((total - (0.4 * a + 0.6 * b)).abs() < 1e-6, "{total}");
    }

    /// On the autodiff CPU backend `hybrid` takes the fused kernel; it must agree with the
    /// reference formulation in value and in the gradient of the logits.
    #[test]
    fn fused_hybrid_matches_the_reference() {
        use burn::backend::Autodiff;
        use burn::tensor::Tolerance;
        type A = Autodiff<Flex>;
        let device = Default::default();
        let values: Vec<f32> = (0..2 * 3 * 4 * 5)
            .map(|i| ((i * 37 % 29) as f32 - 14.0) / 5.0)
            .collect();
        let labels: Vec<i64> = (0..2 * 4 * 5).map(|i| (i * 7 % 3) as i64).collect();
        let target = Tensor::<A, 3, Int>::from_data(TensorData::new(labels, [2, 4, 5]), &device);
        let options = [(false, false), (true, false), (false, true), (true, true)];
        for ((background, sum), batch) in options.into_iter().flat_map(|o| [(o, false), (o, true)])
        {
            let config = LossConfig::new()
                .with_dice_background(background)
                .with_dice_sum(sum)
                .with_dice_batch(batch);
            let run = |fused: bool| {
                let logits = Tensor::<A, 4>::from_data(
                    TensorData::new(values.clone(), [2, 3, 4, 5]),
                    &device,
                )
                .require_grad();
                let loss = if fused {
                    hybrid(logits.clone(), target.clone(), &config)
                } else {
                    soft_dice(logits.clone(), target.clone(), &config)
                        + cross_entropy(logits.clone(), target.clone()) * config.ce_weight
                };
                let grads = loss.backward();
                (
                    loss.inner().into_data(),
                    logits.grad(&grads).unwrap().into_data(),
                )
            };
            let ((l1, g1), (l2, g2)) = (run(true), run(false));
            l1.assert_approx_eq(&l2, Tolerance::<f32>::absolute(1e-5));
            g1.assert_approx_eq(&g2, Tolerance::<f32>::absolute(1e-6));
        }
    }
}
