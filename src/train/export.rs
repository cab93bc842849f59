//! A fixed-weight training schedule written out sample by sample, so that another
//! implementation can train the same network on exactly the same batches
//! (`scripts/torch_asan.py` reads it): what measuring our learning against an independent
//! implementation needs, with nothing left to chance but the initial weights.
//!
//! The directory holds `manifest.json` ([`Manifest`]) and, per set of samples, two raw files:
//! `<set>.images.f32` (little-endian f32, N × C × H × W) and `<set>.classes.u8` (N × H × W).
//! The sets are `validation`, `test` and one `epoch-NNNN` per epoch: that epoch's training
//! samples in the order it trains them, augmented as it augments them, cut into batches of the
//! sizes listed. `init/` is the checkpoint of the initial weights awsnet trains from
//! (`train::checkpoint`'s format: `model.bin` holds the tensors `checkpoint.json` lists, in
//! order, as little-endian f32).

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;

use super::checkpoint::save_checkpoint;
use super::config::{EpochKind, TrainConfig};
use super::diagnose::test_samples;
use super::epoch::epoch_batches;
use super::samples::{LoadCasns, Sample};
use super::steps::Session;
use crate::atomic::StagedDir;
use crate::error::{Error, Result};

/// `manifest.json`.
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub model: ModelShape,
    pub loss: LossShape,
    /// The schedule's first α (each epoch lists its own).
    pub alpha: Vec<f64>,
    pub learning_rate: f64,
    pub epsilon: f64,
    pub batch_size: usize,
    pub scored_class: u8,
    pub sets: BTreeMap<String, SetShape>,
    pub epochs: Vec<EpochPlan>,
}

#[derive(Debug, Serialize)]
pub struct ModelShape {
    pub in_channels: usize,
    pub out_channels: usize,
    pub base_filters: usize,
    pub pam: bool,
    pub pam_released: bool,
    pub deep_supervision: bool,
}

#[derive(Debug, Serialize)]
pub struct LossShape {
    pub dice_smooth: f64,
    pub dice_background: bool,
    pub dice_sum: bool,
    pub dice_batch: bool,
    pub ce_weight: f64,
}

#[derive(Debug, Serialize)]
pub struct SetShape {
    pub n: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub cases: Vec<String>,
    pub slices: Vec<usize>,
}

#[derive(Debug, Serialize)]
pub struct EpochPlan {
    pub set: String,
    pub batches: Vec<usize>,
    pub alpha: Vec<f64>,
}

/// Write `config`'s samples and schedule into `out` (which must not hold files yet); its
/// `test_cases` become the test set; `casns` loads the CASNs a `casn_rois` config names.
pub fn export_schedule<B: AutodiffBackend>(
    config: &TrainConfig,
    test_cases: &[String],
    out: &Path,
    device: &B::Device,
    casns: LoadCasns<B::Device>,
) -> Result<Manifest> {
    if (0..config.epochs).any(|e| config.epoch_kind(e) != EpochKind::Fixed) {
        return Err(Error::invalid(
            "weighting",
            "an export mirrors fixed-weight schedules; this config searches or learns α",
        ));
    }
    if out.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        return Err(Error::invalid(
            "--out",
            format!("{} is not empty", out.display()),
        ));
    }
    let session = Session::<B>::prepare(config, device, casns)?;
    let test = test_samples(config, test_cases)?;
    let mut staged = StagedDir::new(out)?;
    let mut sets = BTreeMap::new();
    for (name, samples) in [("validation", &session.validation), ("test", &test)] {
        sets.insert(name.to_string(), write_set(&mut staged, name, samples)?);
    }
    let start = session.start();
    let state = start.state.clone();
    let mut epochs = Vec::with_capacity(config.epochs as usize);
    for epoch in 0..config.epochs {
        let mut settings = session.settings(epoch);
        if let (Some(w), Some(ws)) = (&config.weighting, state.weighting()) {
            settings.alpha = w.fixed_alpha(ws, epoch).to_vec();
        }
        let batches = epoch_batches(&session.train, &settings);
        let name = format!("epoch-{:04}", epoch + 1);
        let flat: Vec<Sample> = batches.iter().flatten().cloned().collect();
        sets.insert(name.clone(), write_set(&mut staged, &name, &flat)?);
        epochs.push(EpochPlan {
            set: name,
            batches: batches.iter().map(Vec::len).collect(),
            alpha: settings.alpha,
        });
    }
    let loss = &session.loss;
    let model = &session.model_config;
    let manifest = Manifest {
        model: ModelShape {
            in_channels: model.in_channels,
            out_channels: model.out_channels,
            base_filters: model.base_filters,
            pam: model.pam,
            pam_released: model.pam_released,
            deep_supervision: model.deep_supervision,
        },
        loss: LossShape {
            dice_smooth: loss.dice_smooth,
            dice_background: loss.dice_background,
            dice_sum: loss.dice_sum,
            dice_batch: loss.dice_batch,
            ce_weight: loss.ce_weight,
        },
        alpha: epochs.first().map(|e| e.alpha.clone()).unwrap_or_default(),
        learning_rate: config.learning_rate,
        epsilon: config.optimizer.epsilon,
        batch_size: config.batch_size,
        scored_class: config.net.scored_class(),
        sets,
        epochs,
    };
    let path = staged.file("manifest.json");
    let bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Internal(format!("encoding the manifest: {e}")))?;
    std::fs::write(&path, bytes).map_err(|e| Error::write(&path, e))?;
    staged.commit()?;
    // The initial weights, so the other implementation may start from the very same ones.
    save_checkpoint(
        &out.join("init"),
        &session.model_config,
        &start.model,
        &start.optimizer,
        &start.state,
    )?;
    Ok(manifest)
}

fn write_set(staged: &mut StagedDir, name: &str, samples: &[Sample]) -> Result<SetShape> {
    let (channels, (height, width)) = samples
        .first()
        .map_or((0, (0, 0)), |s| (s.channels.len(), s.classes.dim()));
    let mut images = Vec::with_capacity(samples.len() * channels * height * width * 4);
    let mut classes = Vec::with_capacity(samples.len() * height * width);
    for s in samples {
        for c in &s.channels {
            images.extend(c.iter().flat_map(|v| v.to_le_bytes()));
        }
        classes.extend(s.classes.iter().copied());
    }
    for (suffix, bytes) in [("images.f32", images), ("classes.u8", classes)] {
        let path = staged.file(&format!("{name}.{suffix}"));
        std::fs::write(&path, bytes).map_err(|e| Error::write(&path, e))?;
    }
    Ok(SetShape {
        n: samples.len(),
        channels,
        height,
        width,
        cases: samples.iter().map(|s| s.case.clone()).collect(),
        slices: samples.iter().map(|s| s.slice).collect(),
    })
}
