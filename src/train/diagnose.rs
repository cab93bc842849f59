//! What a trained checkpoint does on its validation (and test) slices, measured several ways:
//! the questions to ask of a net that learned worse than expected.
//!
//! - **Batch normalisation, three ways.** A net validates in eval mode, with the running
//!   statistics its training left. Those are an average over augmented training batches, and
//!   a one-channel BN (a PAM gate's) may sit far from what it sees on validation slices. The
//!   same weights are therefore also scored with running statistics re-estimated on the
//!   training slices as they are (no augmentation), and with each validation batch's own
//!   statistics. The mean of every PAM gate is reported per mode: a gate near 0 shuts its skip.
//! - **Validation scores, three ways** (`ValidationDice`): per slice with empty/empty = 1, pooled
//!   (nnU-Net's pseudo-Dice), per case; and the foreground the net predicts on slices that show
//!   the lesion, which is 0 when it has collapsed to predicting nothing.

use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::tensor::backend::{AutodiffBackend, Backend};
use serde::Serialize;

use super::checkpoint::load_checkpoint;
use super::config::{TrainConfig, ValidationDice};
use super::deploy::{run_deployment, Deploy};
use super::epoch::{batch_tensors, predicted_classes, DiceTally};
use super::run_dir::RunDir;
use super::samples::{LoadCasns, Sample};
use super::steps::Session;
use crate::data::cases::load_all;
use crate::error::{Error, Result};
use crate::model::unet::UNet;

/// A batch's predicted classes and its gates' means, however the net normalises.
type Forward<'a> = dyn Fn(&[Sample]) -> (Vec<i64>, Vec<f64>) + 'a;

/// Forward passes over the training slices that re-estimate the running statistics: with
/// burn's momentum of 0.1, 40 passes leave 0.9⁴⁰ ≈ 1.5 % of the old values.
const REESTIMATE_PASSES: usize = 40;
/// Training slices per forward pass when re-estimating (memory stays bounded at any scale).
const REESTIMATE_BATCH: usize = 64;

/// How batch normalisation normalises during a scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NormMode {
    /// Running statistics as training left them (what validation and inference use).
    Eval,
    /// Running statistics re-estimated on the unaugmented training slices.
    Reestimated,
    /// Each validation batch's own statistics.
    Batch,
}

/// One scoring of a set of slices.
#[derive(Debug, Clone, Serialize)]
pub struct Scored {
    pub per_slice: f64,
    pub pooled: f64,
    pub per_case: f64,
    /// Pixels predicted as the class on slices whose truth shows it.
    pub found: u64,
    /// Share of all pixels predicted as the class, and the truth's share.
    pub predicted_share: f64,
    pub truth_share: f64,
    /// Mean of each PAM gate over the slices, deepest first.
    pub gate_means: Vec<f64>,
}

/// The scorings of one mode.
#[derive(Debug, Clone, Serialize)]
pub struct ModeDiagnosis {
    pub mode: NormMode,
    pub validation: Scored,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<Scored>,
}

/// Everything [`diagnose`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub validation_cases: usize,
    pub validation_slices: usize,
    /// Validation slices whose truth shows the class.
    pub validation_lesion_slices: usize,
    pub test_cases: usize,
    pub modes: Vec<ModeDiagnosis>,
}

/// Score `model` on `validation` (and `test`, if any) in every [`NormMode`], the running
/// statistics re-estimated on `train`.
pub fn diagnose<B: AutodiffBackend>(
    model: &UNet<B>,
    sets: &Sets<'_>,
    class: u8,
    batch_size: usize,
    device: &B::Device,
) -> Diagnosis {
    let batch_size = batch_size.max(1);
    let score_all = |forward: &Forward<'_>| {
        let validation = score(sets.validation, class, batch_size, forward);
        let test = (!sets.test.is_empty()).then(|| score(sets.test, class, batch_size, forward));
        (validation, test)
    };
    let mut modes = Vec::with_capacity(3);
    // Eval first: the other two modes move the running statistics (burn's clones share them).
    let inner = model.valid();
    let (validation, test) = score_all(&|chunk| forward::<B::InnerBackend>(&inner, chunk, device));
    modes.push(ModeDiagnosis {
        mode: NormMode::Eval,
        validation,
        test,
    });
    let (validation, test) = score_all(&|chunk| forward::<B>(model, chunk, device));
    modes.push(ModeDiagnosis {
        mode: NormMode::Batch,
        validation,
        test,
    });
    for _ in 0..REESTIMATE_PASSES {
        for chunk in sets.train.chunks(REESTIMATE_BATCH) {
            // Training mode: batch statistics, and a running statistics update.
            let _ = forward::<B>(model, chunk, device);
        }
    }
    let inner = model.valid();
    let (validation, test) = score_all(&|chunk| forward::<B::InnerBackend>(&inner, chunk, device));
    modes.push(ModeDiagnosis {
        mode: NormMode::Reestimated,
        validation,
        test,
    });
    let cases: std::collections::BTreeSet<&str> =
        sets.validation.iter().map(|s| s.case.as_str()).collect();
    let test_cases: std::collections::BTreeSet<&str> =
        sets.test.iter().map(|s| s.case.as_str()).collect();
    Diagnosis {
        validation_cases: cases.len(),
        validation_slices: sets.validation.len(),
        validation_lesion_slices: sets
            .validation
            .iter()
            .filter(|s| s.classes.iter().any(|&k| k == class))
            .count(),
        test_cases: test_cases.len(),
        modes,
    }
}

/// The slices a diagnosis reads.
pub struct Sets<'a> {
    pub train: &'a [Sample],
    pub validation: &'a [Sample],
    /// May be empty.
    pub test: &'a [Sample],
}

/// Predicted classes of a batch and the mean of each of its gates.
fn forward<B: Backend>(
    model: &UNet<B>,
    chunk: &[Sample],
    device: &B::Device,
) -> (Vec<i64>, Vec<f64>) {
    let refs: Vec<&Sample> = chunk.iter().collect();
    let (x, _) = batch_tensors::<B>(&refs, device);
    let (mut heads, gates) = model.forward_with_gates(x);
    let logits = heads.pop().expect("a prediction head");
    let means = gates
        .into_iter()
        .map(|g| {
            let v: Vec<f32> = g.into_data().convert::<f32>().to_vec().expect("f32 gate");
            v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len().max(1) as f64
        })
        .collect();
    (predicted_classes(logits), means)
}

fn score(samples: &[Sample], class: u8, batch_size: usize, forward: &Forward<'_>) -> Scored {
    let mut tally = DiceTally::new(class);
    let (mut predicted, mut truth, mut pixels) = (0usize, 0usize, 0usize);
    let mut gate_sums: Vec<f64> = Vec::new();
    for chunk in samples.chunks(batch_size) {
        let (classes, gates) = forward(chunk);
        tally.add_batch(chunk, &classes);
        predicted += classes.iter().filter(|&&k| k == i64::from(class)).count();
        truth += chunk
            .iter()
            .map(|s| s.classes.iter().filter(|&&k| k == class).count())
            .sum::<usize>();
        pixels += classes.len();
        gate_sums.resize(gates.len(), 0.0);
        for (sum, g) in gate_sums.iter_mut().zip(gates) {
            *sum += g * chunk.len() as f64;
        }
    }
    let ValidationDice {
        per_slice,
        pooled,
        per_case,
        found,
        ..
    } = tally.dice();
    let n = samples.len().max(1) as f64;
    Scored {
        per_slice,
        pooled,
        per_case,
        found,
        predicted_share: predicted as f64 / pixels.max(1) as f64,
        truth_share: truth as f64 / pixels.max(1) as f64,
        gate_means: gate_sums.iter().map(|s| s / n).collect(),
    }
}

/// [`diagnose`] of the checkpoint `deploy` picks in the `awsnet train` run `run`; `test_cases`
/// are case ids of the run's data directory, their slices cut around the ground truth's LV;
/// `casns` loads the CASNs a `casn_rois` config names.
pub fn diagnose_run<B: AutodiffBackend>(
    run: &Path,
    deploy: Deploy,
    test_cases: &[String],
    device: &B::Device,
    casns: LoadCasns<B::Device>,
) -> Result<(PathBuf, Diagnosis)> {
    let dir = RunDir::new(run);
    let config = TrainConfig::read(&dir.config())?;
    let (train, validation) = Session::<B>::samples(&config, device, casns)?;
    let test = test_samples(&config, test_cases)?;
    let checkpoint = run_deployment(run, &config, deploy)?;
    let loaded = load_checkpoint::<B>(&checkpoint, &config.optimizer, device)?;
    let sets = Sets {
        train: &train,
        validation: &validation,
        test: &test,
    };
    let diagnosis = diagnose(
        &loaded.model,
        &sets,
        config.net.scored_class(),
        config.batch_size,
        device,
    );
    Ok((checkpoint, diagnosis))
}

/// The samples of the named cases of `config`'s data directory, cut around the ground truth's
/// LV, as the config's network reads them.
pub fn test_samples(config: &TrainConfig, ids: &[String]) -> Result<Vec<Sample>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let cases = load_all(&config.data)?;
    let mut out = Vec::new();
    for id in ids {
        let case = cases.iter().find(|c| &c.id == id).ok_or_else(|| {
            Error::invalid(
                "--test-cases",
                format!("{id} is not a case of {}", config.data.display()),
            )
        })?;
        if case.labels.is_none() {
            return Err(Error::invalid(
                "--test-cases",
                format!("{id} has no labels to score against"),
            ));
        }
        out.extend(
            config
                .net
                .samples(case, &config.geometry, &config.input_sequences()),
        );
    }
    Ok(out)
}
