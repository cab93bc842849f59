//! One auto-weighted epoch, run in one process: K children of the parent network — each a copy
//! of its weights and of its optimizer state — trained for one epoch with their own α, validated,
//! and handed to the weighting search (`das::weighting`) to pick the next parent.
//!
//! All children see the same batches and the same augmentations (the epoch seed), so they differ
//! in α alone. Children are trained one after another and only the best so far is kept in
//! memory. A child whose loss diverges is left out, as a missing sample. The grid runner will run
//! the same pieces — [`train_child`] per array task, the search's `conclude` in a reducer.

use burn::tensor::backend::AutodiffBackend;

use super::checkpoint::{fork, AdamOf};
use super::epoch::{train_epoch, validate, EpochSettings, ValidationDice};
use super::samples::Sample;
use crate::das::weighting::{Candidate, Score, ScoreDice, WeightingConfig, WeightingState};
use crate::error::{Error, Result};
use crate::model::unet::{UNet, UNetConfig};

/// A trained child.
pub struct Child<B: AutodiffBackend> {
    pub model: UNet<B>,
    pub optimizer: AdamOf<B>,
    pub loss: f64,
    pub dice: ValidationDice,
}

/// What an auto-weighted epoch leaves: the new parent and the search's next state and record.
pub struct AutoOutcome<B: AutodiffBackend> {
    pub parent: Child<B>,
    pub alpha: Vec<f64>,
    pub state: WeightingState,
    pub record: serde_json::Value,
}

/// The validation Dice a child is scored by.
pub fn score_of(dice: &ValidationDice, which: ScoreDice) -> f64 {
    match which {
        ScoreDice::PerSlice => dice.per_slice,
        ScoreDice::PerCase => dice.per_case,
    }
}

/// Everything a child's epoch needs besides its candidate.
pub struct ChildJob<'a, B: AutodiffBackend> {
    pub parent: &'a UNet<B>,
    pub optimizer: &'a AdamOf<B>,
    pub model_config: &'a UNetConfig,
    pub train: &'a [Sample],
    pub validation: &'a [Sample],
    /// The epoch's settings; α is replaced by the candidate's.
    pub settings: &'a EpochSettings,
    pub class: u8,
    pub device: &'a B::Device,
}

/// Train one child of the parent with the candidate's α for one epoch and validate it; None
/// when its loss diverged (the search then counts it as missing).
pub fn train_child<B: AutodiffBackend>(
    job: &ChildJob<'_, B>,
    candidate: &Candidate,
    progress: &indicatif::ProgressBar,
) -> Option<Child<B>> {
    let model = fork(job.parent, job.model_config, job.device);
    let mut optimizer = job.optimizer.clone();
    let settings = EpochSettings {
        alpha: candidate.alpha.to_vec(),
        ..job.settings.clone()
    };
    let (model, loss) = train_epoch(
        model,
        &mut optimizer,
        job.train,
        &settings,
        job.device,
        progress,
    );
    if !loss.is_finite() {
        tracing::warn!(
            child = candidate.index,
            alpha = ?candidate.alpha,
            "the child's loss became {loss}; it is left out of this epoch's search"
        );
        return None;
    }
    let dice = validate(
        &model,
        job.validation,
        job.class,
        job.settings.batch_size,
        job.device,
    );
    Some(Child {
        model,
        optimizer,
        loss,
        dice,
    })
}

/// One auto-weighted epoch: every candidate trained, the search concluded, the chosen child
/// returned as the next parent.
pub fn auto_epoch<B: AutodiffBackend>(
    job: &ChildJob<'_, B>,
    weighting: &WeightingConfig,
    state: &WeightingState,
    epoch_seed: u64,
    progress: &indicatif::ProgressBar,
) -> Result<AutoOutcome<B>> {
    let candidates = weighting.candidates(state, epoch_seed);
    let mut scores = Vec::with_capacity(candidates.len());
    let mut best: Option<(usize, Child<B>)> = None;
    for candidate in &candidates {
        let Some(child) = train_child(job, candidate, progress) else {
            continue;
        };
        let dice = score_of(&child.dice, weighting.score);
        tracing::info!(
            child = candidate.index,
            alpha = ?candidate.alpha,
            dice,
            loss = child.loss,
            "child trained"
        );
        scores.push(Score {
            index: candidate.index,
            dice,
        });
        // Ties keep the earlier child, as the search does.
        let better = best
            .as_ref()
            .is_none_or(|(_, b)| dice > score_of(&b.dice, weighting.score));
        if better {
            best = Some((candidate.index, child));
        }
    }
    let Some((index, parent)) = best else {
        return Err(Error::Internal(format!(
            "the loss of every one of the {} children diverged; lower the learning rate",
            candidates.len()
        )));
    };
    let (next, chosen, record) = weighting.conclude(state, &candidates, &scores, epoch_seed)?;
    if index != chosen {
        return Err(Error::Internal(format!(
            "the search chose child {chosen} but child {index} scored best"
        )));
    }
    let alpha = candidates
        .iter()
        .find(|c| c.index == chosen)
        .map(|c| c.alpha.to_vec())
        .expect("the chosen child is a candidate");
    Ok(AutoOutcome {
        parent,
        alpha,
        state: next,
        record,
    })
}
