//! One training epoch and one validation pass of a network on prepared samples.
//!
//! Every random choice of an epoch — the shuffle and each sample's augmentation — derives from
//! one epoch seed, so an epoch reruns bit-identically (burn's own random stream is not used
//! here).

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::ValidationDice;
use super::loss::{deep_supervision, LossConfig};
use super::samples::Sample;
use crate::data::augment::{augment, AugmentConfig, AugmentParams};
use crate::model::unet::UNet;
use crate::progress::Progress;
use crate::seed;

/// What one epoch does besides the data.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochSettings {
    pub batch_size: usize,
    pub learning_rate: f64,
    /// Deep-supervision weights, coarse to fine (one per head).
    pub alpha: Vec<f64>,
    pub loss: LossConfig,
    pub augment: AugmentConfig,
    /// The epoch's seed: shuffle and augmentation derive from it.
    pub seed: u64,
}

/// The input and target tensors of a batch of samples.
pub fn batch_tensors<B: Backend>(
    samples: &[&Sample],
    device: &B::Device,
) -> (Tensor<B, 4>, Tensor<B, 3, Int>) {
    let n = samples.len();
    let channels = samples[0].channels.len();
    let (h, w) = samples[0].classes.dim();
    let mut images = Vec::with_capacity(n * channels * h * w);
    let mut classes = Vec::with_capacity(n * h * w);
    for s in samples {
        for c in &s.channels {
            images.extend(c.iter().copied());
        }
        classes.extend(s.classes.iter().map(|&k| i64::from(k)));
    }
    (
        Tensor::from_data(TensorData::new(images, [n, channels, h, w]), device),
        Tensor::from_data(TensorData::new(classes, [n, h, w]), device),
    )
}

/// The epoch's samples in its shuffled order, each augmented with its own seed.
pub(super) fn shuffled_augmented(samples: &[Sample], settings: &EpochSettings) -> Vec<Sample> {
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed::derive(
        settings.seed,
        "shuffle",
        0,
    )));
    order
        .iter()
        .map(|&i| {
            let s = &samples[i];
            let params = AugmentParams::sample(
                &settings.augment,
                s.channels.len(),
                seed::derive(settings.seed, "augment", i as u64),
            );
            let labels = s.classes.mapv(u16::from);
            let (channels, labels) = augment(&s.channels, Some(&labels), &params);
            Sample {
                channels,
                classes: labels.expect("labels were given").mapv(|c| c as u8),
                ..s.clone()
            }
        })
        .collect()
}

/// Train `model` for one epoch; returns it with the mean loss over batches.
pub fn train_epoch<B, O>(
    mut model: UNet<B>,
    optimizer: &mut O,
    samples: &[Sample],
    settings: &EpochSettings,
    device: &B::Device,
    progress: &dyn Progress,
) -> (UNet<B>, f64)
where
    B: AutodiffBackend,
    O: Optimizer<UNet<B>, B>,
{
    let augmented = shuffled_augmented(samples, settings);
    let mut total = 0.0;
    let mut batches = 0usize;
    for chunk in augmented.chunks(settings.batch_size.max(1)) {
        let refs: Vec<&Sample> = chunk.iter().collect();
        let (x, y) = batch_tensors::<B>(&refs, device);
        let heads = model.forward(x);
        let loss = deep_supervision(&heads, y, &settings.alpha, &settings.loss);
        total += loss.clone().into_scalar().elem::<f64>();
        batches += 1;
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(settings.learning_rate, model, grads);
        progress.advance(chunk.len() as u64);
    }
    (model, total / batches.max(1) as f64)
}

/// Validation Dice of class `class` of `model` on `samples`.
pub fn validate<B: AutodiffBackend>(
    model: &UNet<B>,
    samples: &[Sample],
    class: u8,
    batch_size: usize,
    device: &B::Device,
) -> ValidationDice {
    let inner = model.valid();
    let mut scores = Vec::with_capacity(samples.len());
    let (mut all_inter, mut all_sum) = (0usize, 0usize);
    let mut per_case: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
    for chunk in samples.chunks(batch_size.max(1)) {
        let refs: Vec<&Sample> = chunk.iter().collect();
        let (x, _) = batch_tensors::<B::InnerBackend>(&refs, device);
        let logits = inner.forward(x).pop().expect("a prediction head");
        let predicted = logits.argmax(1).squeeze_dim::<3>(1);
        let data = predicted.into_data();
        let values: Vec<i64> = data.convert::<i64>().to_vec().expect("integer predictions");
        let per = chunk[0].classes.len();
        for (s, pred) in chunk.iter().zip(values.chunks(per)) {
            let (mut inter, mut p, mut g) = (0usize, 0usize, 0usize);
            for (&truth, &guess) in s.classes.iter().zip(pred) {
                let (t, q) = (truth == class, guess == i64::from(class));
                inter += usize::from(t && q);
                p += usize::from(q);
                g += usize::from(t);
            }
            scores.push(dice(inter, p + g));
            all_inter += inter;
            all_sum += p + g;
            let case = per_case.entry(s.case.as_str()).or_default();
            case.0 += inter;
            case.1 += p + g;
        }
    }
    ValidationDice {
        per_slice: scores.iter().sum::<f64>() / scores.len().max(1) as f64,
        pooled: dice(all_inter, all_sum),
        per_case: per_case.values().map(|&(i, s)| dice(i, s)).sum::<f64>()
            / per_case.len().max(1) as f64,
    }
}

fn dice(intersection: usize, sum: usize) -> f64 {
    if sum == 0 {
        1.0
    } else {
        2.0 * intersection as f64 / sum as f64
    }
}
