//! One training epoch and one validation pass of a network on prepared samples.
//!
//! Every random choice of an epoch — the shuffle and each sample's augmentation — derives from
//! one epoch seed, so an epoch reruns bit-identically (burn's own random stream is not used
//! here).

use super::batches::{plan_batches, BatchSettings};
use super::config::ValidationDice;
use super::loss::{deep_supervision, LossConfig};
use super::samples::Sample;
use crate::data::augment::{augment, AugmentConfig, AugmentParams};
use crate::model::unet::UNet;
use crate::progress::Progress;
use crate::seed;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};

/// What one epoch does besides the data.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochSettings {
    /// Batch size, epoch length and foreground oversampling.
    pub batches: BatchSettings,
    /// The class whose presence makes a sample foreground for oversampling.
    pub foreground_class: u8,
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

/// The epoch's batches ([`plan_batches`]), each sample augmented with its own seed: by sample
/// when an epoch is at most one pass (as the paper's schedule always drew them), by place in
/// the epoch when samples repeat.
pub(super) fn epoch_batches(samples: &[Sample], settings: &EpochSettings) -> Vec<Vec<Sample>> {
    let foreground: Vec<bool> = samples
        .iter()
        .map(|s| s.classes.iter().any(|&k| k == settings.foreground_class))
        .collect();
    let plan = plan_batches(&foreground, &settings.batches, settings.seed);
    let by_place = plan.iter().map(Vec::len).sum::<usize>() > samples.len();
    let mut place = 0u64;
    plan.iter()
        .map(|batch| {
            batch
                .iter()
                .map(|&i| {
                    let stream = if by_place { place } else { i as u64 };
                    place += 1;
                    augmented(
                        &samples[i],
                        &settings.augment,
                        seed::derive(settings.seed, "augment", stream),
                    )
                })
                .collect()
        })
        .collect()
}

fn augmented(s: &Sample, config: &AugmentConfig, seed: u64) -> Sample {
    let params = AugmentParams::sample(config, s.channels.len(), seed);
    let labels = s.classes.mapv(u16::from);
    let (channels, labels) = augment(&s.channels, Some(&labels), &params);
    Sample {
        channels,
        classes: labels.expect("labels were given").mapv(|c| c as u8),
        ..s.clone()
    }
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
    let mut total = 0.0;
    let mut batches = 0usize;
    for chunk in epoch_batches(samples, settings) {
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
    let mut tally = DiceTally::new(class);
    for chunk in samples.chunks(batch_size.max(1)) {
        let refs: Vec<&Sample> = chunk.iter().collect();
        let (x, _) = batch_tensors::<B::InnerBackend>(&refs, device);
        let logits = inner.forward(x).pop().expect("a prediction head");
        tally.add_batch(chunk, &predicted_classes(logits));
    }
    tally.dice()
}

/// The argmax class of each pixel of `[batch, classes, h, w]` logits, samples one after the
/// other.
pub fn predicted_classes<B: Backend>(logits: Tensor<B, 4>) -> Vec<i64> {
    let predicted = logits.argmax(1).squeeze_dim::<3>(1);
    predicted
        .into_data()
        .convert::<i64>()
        .to_vec()
        .expect("integer predictions")
}

/// Counts of one class's overlap between predictions and samples, slice by slice: every
/// validation Dice is computed from them.
#[derive(Debug, Clone, Default)]
pub struct DiceTally {
    class: u8,
    per_slice: Vec<f64>,
    inter: usize,
    sum: usize,
    per_case: std::collections::BTreeMap<String, (usize, usize)>,
    /// Pixels predicted as the class on slices whose truth shows it.
    found: u64,
    /// Slices whose truth shows the class.
    lesion_slices: usize,
}

impl DiceTally {
    pub fn new(class: u8) -> Self {
        DiceTally {
            class,
            ..Default::default()
        }
    }

    /// Count a batch: `predicted` holds each sample's classes one after the other.
    pub fn add_batch(&mut self, samples: &[Sample], predicted: &[i64]) {
        let per = samples.first().map_or(0, |s| s.classes.len());
        for (s, pred) in samples.iter().zip(predicted.chunks(per.max(1))) {
            self.add(s, pred);
        }
    }

    pub fn add(&mut self, sample: &Sample, predicted: &[i64]) {
        let class = self.class;
        let (mut inter, mut p, mut g) = (0usize, 0usize, 0usize);
        for (&truth, &guess) in sample.classes.iter().zip(predicted) {
            let (t, q) = (truth == class, guess == i64::from(class));
            inter += usize::from(t && q);
            p += usize::from(q);
            g += usize::from(t);
        }
        self.per_slice.push(dice(inter, p + g));
        self.inter += inter;
        self.sum += p + g;
        let case = self.per_case.entry(sample.case.clone()).or_default();
        case.0 += inter;
        case.1 += p + g;
        if g > 0 {
            self.lesion_slices += 1;
            self.found += p as u64;
        }
    }

    pub fn dice(&self) -> ValidationDice {
        ValidationDice {
            per_slice: self.per_slice.iter().sum::<f64>() / self.per_slice.len().max(1) as f64,
            pooled: dice(self.inter, self.sum),
            per_case: self
                .per_case
                .values()
                .map(|&(i, s)| dice(i, s))
                .sum::<f64>()
                / self.per_case.len().max(1) as f64,
            found: self.found,
            lesion_slices: self.lesion_slices,
        }
    }
}

fn dice(intersection: usize, sum: usize) -> f64 {
    if sum == 0 {
        1.0
    } else {
        2.0 * intersection as f64 / sum as f64
    }
}
