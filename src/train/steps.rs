//! Training in epoch-sized steps: the one code path `awsnet train` loops over and grid tasks
//! call one at a time.
//!
//! - [`Session::prepare`]: read the cases and split them (what every step of a run shares);
//! - [`Session::start`]: a fresh network, optimiser and weighting state (from a checkpoint
//!   instead: `train::checkpoint::load_checkpoint`);
//! - [`fixed_epoch`]: one epoch with α fixed for the epoch (`equal`, `fixed`, `decay`, and the
//!   searches' fixed phase);
//! - [`learning_alpha_epoch`]: one epoch of the `gradient` comparator, β learned alongside;
//! - [`sample`]: one child of an auto-weighted epoch (§3.2.1 step 2–3): a copy of the parent's
//!   weights and optimizer state trained one epoch with its own α, then validated;
//! - [`update`]: close an auto-weighted epoch from 1..K children's scores (Eq. 7–9 and the
//!   choice of the next parent), a pure function of numbers;
//! - [`auto_epoch`]: K samples and the update in one process, keeping only the best child in
//!   memory (what `awsnet train` runs).
//!
//! Every step is deterministic in (run seed, epoch): by default the children of an epoch see the
//! same batches and augmentations, so they differ in α alone (a paired comparison); with
//! `weighting.child_batches: own` (the released code) each child shuffles and augments with its
//! own seed, derived from the epoch's and its index.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;

use super::batches::BatchSettings;
use super::checkpoint::{fork, new_adam, AdamOf, StateExtra, TrainState};
use super::config::{
    epoch_seed, DiceOver, DiceReduction, EpochKind, EpochRecord, PamWidth, TrainConfig,
    ValidationDice, ValidationFound,
};
use super::epoch::{train_epoch, validate, EpochSettings};
use super::learned_alpha::train_epoch_learning_alpha;
use super::loss::LossConfig;
use super::samples::{split_samples, GroundTruthLv, LoadCasns, Sample};
use crate::das::weighting::{
    Candidate, ChildBatches, Conclusion, GradientRecord, Score, WeightingConfig, WeightingLine,
    WeightingState,
};
use crate::data::cases::load_all;
use crate::error::{Error, Result};
use crate::model::asan::asan_config;
use crate::model::casn::stage_config;
use crate::model::unet::{UNet, UNetConfig};
use crate::progress::Progress;
use crate::seed;

/// The network a config trains.
pub fn model_config(config: &TrainConfig) -> UNetConfig {
    let base = match config.net.asan() {
        Some(_) => UNetConfig {
            in_channels: config.input_sequences().len(),
            ..asan_config(config.base_filters, true, true)
        },
        None => stage_config(config.base_filters),
    };
    base.with_pam(config.pam())
        .with_pam_released(config.pam_width == PamWidth::Released)
        .with_deep_supervision(config.deep_supervision())
}

/// Over what the Dice's sums run when a config does not say.
pub const DEFAULT_DICE_OVER: DiceOver = DiceOver::Sample;

/// The loss a config trains with: λ_CE 0.25 for ASAN (Eq. 3), Dice only for CASN (Eq. 1),
/// unless the config says otherwise.
pub fn loss_config(config: &TrainConfig) -> LossConfig {
    let d = LossConfig::new();
    let ce = if config.is_asan() { d.ce_weight } else { 0.0 };
    LossConfig::new()
        .with_dice_smooth(config.loss.dice_smooth.unwrap_or(d.dice_smooth))
        .with_dice_background(config.loss.dice_background.unwrap_or(d.dice_background))
        .with_dice_sum(config.loss.dice_reduction == Some(DiceReduction::Sum))
        .with_dice_batch(config.loss.dice_over.unwrap_or(DEFAULT_DICE_OVER) == DiceOver::Batch)
        .with_ce_weight(config.loss.ce_weight.unwrap_or(ce))
}

/// A network in training: weights, optimiser and where its schedule stands.
pub struct Trainee<B: AutodiffBackend> {
    pub model: UNet<B>,
    pub optimizer: AdamOf<B>,
    /// Epochs completed, seed, α last trained with, the weighting's state.
    pub state: TrainState,
}

/// What every step of one run shares.
pub struct Session<'a, B: AutodiffBackend> {
    pub config: &'a TrainConfig,
    pub model_config: UNetConfig,
    pub loss: LossConfig,
    pub train: Vec<Sample>,
    pub validation: Vec<Sample>,
    pub device: &'a B::Device,
}

impl<'a, B: AutodiffBackend> Session<'a, B> {
    /// Read the config's cases and split them into training and validation samples.
    pub fn prepare(
        config: &'a TrainConfig,
        device: &'a B::Device,
        casns: LoadCasns<B::Device>,
    ) -> Result<Self> {
        let (train, validation) = Self::samples(config, device, casns)?;
        Ok(Self::with_samples(config, device, train, validation))
    }

    /// The config's training and validation samples, read from its cases; an ASAN's cut where
    /// its `casn_rois` find the LV (loaded by `casns`), if it names them, and where the ground
    /// truth has it if not.
    pub fn samples(
        config: &TrainConfig,
        device: &B::Device,
        casns: LoadCasns<B::Device>,
    ) -> Result<(Vec<Sample>, Vec<Sample>)> {
        let cases = load_all(&config.data)?;
        let (train, validation) = match config.casn_rois.as_ref().filter(|_| config.is_asan()) {
            Some(rois) => {
                let locator = casns(rois, &config.geometry, device)?;
                split_samples(config, &cases, locator.as_ref())?
            }
            None => split_samples(config, &cases, &GroundTruthLv(&config.geometry))?,
        };
        tracing::info!(
            train = train.len(),
            validation = validation.len(),
            "samples"
        );
        Ok((train, validation))
    }

    /// A session over samples already read (by [`Session::samples`] for this config).
    pub fn with_samples(
        config: &'a TrainConfig,
        device: &'a B::Device,
        train: Vec<Sample>,
        validation: Vec<Sample>,
    ) -> Self {
        Session {
            config,
            model_config: model_config(config),
            loss: loss_config(config),
            train,
            validation,
            device,
        }
    }

    /// A fresh network (seeded), a fresh Adam and the weighting's initial state.
    pub fn start(&self) -> Trainee<B> {
        let config = self.config;
        let model = self
            .model_config
            .init_seeded::<B>(seed::derive(config.seed, "init", 0), self.device);
        let optimizer = new_adam::<B>(&config.optimizer);
        Trainee {
            model,
            optimizer,
            state: TrainState {
                epoch: 0,
                seed: config.seed,
                alpha: config.alpha(),
                extra: config.weighting.as_ref().map(|w| StateExtra {
                    weighting: w.initial_state(config.seed),
                }),
            },
        }
    }

    /// The settings of epoch `epoch` (0-based) with the config's own α; λ_CE is the
    /// auto-weighted phase's in an auto-weighted epoch.
    pub(crate) fn settings(&self, epoch: u64) -> EpochSettings {
        let config = self.config;
        let mut loss = self.loss.clone();
        if let (EpochKind::Auto, Some(ce)) = (config.epoch_kind(epoch), config.loss.ce_weight_auto)
        {
            loss.ce_weight = ce;
        }
        EpochSettings {
            batches: BatchSettings {
                batch_size: config.batch_size,
                length: config.epoch_length,
                foreground_fraction: config.foreground_oversampling,
            },
            foreground_class: config.net.scored_class(),
            learning_rate: config.learning_rate,
            alpha: config.alpha(),
            loss,
            augment: config.augment,
            seed: epoch_seed(config.seed, epoch),
        }
    }

    fn validate(&self, model: &UNet<B>) -> ValidationDice {
        validate(
            model,
            &self.validation,
            self.config.net.scored_class(),
            self.config.batch_size,
            self.device,
        )
    }

    /// Training samples the remaining epochs go through, children included.
    pub fn steps_from(&self, epoch: u64) -> u64 {
        (epoch..self.config.epochs)
            .map(|e| self.config.steps_of_epoch(e, self.train.len()))
            .sum()
    }

    fn weighting(&self) -> Result<&'a WeightingConfig> {
        self.config
            .weighting
            .as_ref()
            .ok_or_else(|| Error::Internal("an auto-weighted step without a weighting".into()))
    }
}

/// What one epoch leaves: the network after it, its progress line and, for weightings that log,
/// its `weighting.jsonl` line.
pub struct Stepped<B: AutodiffBackend> {
    pub trainee: Trainee<B>,
    pub record: EpochRecord,
    pub line: Option<WeightingLine>,
}

/// The next epoch of `trainee`, whatever kind the schedule says it is.
pub fn epoch<B: AutodiffBackend>(
    session: &Session<'_, B>,
    trainee: Trainee<B>,
    progress: &dyn Progress,
) -> Result<Stepped<B>> {
    match session.config.epoch_kind(trainee.state.epoch) {
        EpochKind::Fixed => fixed_epoch(session, trainee, progress),
        EpochKind::LearningAlpha => learning_alpha_epoch(session, trainee, progress),
        EpochKind::Auto => auto_epoch(session, trainee, progress),
    }
}

fn diverged(loss: f64, epoch: u64) -> Result<()> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(Error::training(format!(
            "the loss became {loss} in epoch {}; lower the learning rate",
            epoch + 1
        )))
    }
}

/// The progress line of an epoch (or a child) that trained with `alpha`, timed from `started`.
pub fn record(
    epoch: u64,
    loss: f64,
    dice: ValidationDice,
    alpha: &[f64],
    started: Instant,
) -> EpochRecord {
    EpochRecord {
        epoch: epoch + 1,
        loss,
        val_dice: dice.per_slice,
        val_dice_pooled: dice.pooled,
        val_dice_per_case: dice.per_case,
        val_found: Some(ValidationFound {
            pixels: dice.found,
            lesion_slices: dice.lesion_slices,
        }),
        alpha: alpha.to_vec(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// One epoch with α fixed for the epoch: the config's, or the weighting's for this epoch.
pub fn fixed_epoch<B: AutodiffBackend>(
    session: &Session<'_, B>,
    trainee: Trainee<B>,
    progress: &dyn Progress,
) -> Result<Stepped<B>> {
    let started = Instant::now();
    let Trainee {
        model,
        mut optimizer,
        state,
    } = trainee;
    let epoch = state.epoch;
    let mut settings = session.settings(epoch);
    if let (Some(w), Some(ws)) = (&session.config.weighting, state.weighting()) {
        settings.alpha = w.fixed_alpha(ws, epoch).to_vec();
    }
    let (model, loss) = train_epoch(
        model,
        &mut optimizer,
        &session.train,
        &settings,
        session.device,
        progress,
    );
    let trained = Trainee {
        model,
        optimizer,
        state,
    };
    close_epoch(session, trained, loss, settings.alpha, started, None)
}

/// Close an epoch `trainee` has just trained (its state still at the epoch's start): refuse a
/// diverged loss, validate, count the epoch, and write its progress line.
fn close_epoch<B: AutodiffBackend>(
    session: &Session<'_, B>,
    mut trainee: Trainee<B>,
    loss: f64,
    alpha: Vec<f64>,
    started: Instant,
    line: Option<WeightingLine>,
) -> Result<Stepped<B>> {
    let epoch = trainee.state.epoch;
    diverged(loss, epoch)?;
    let dice = session.validate(&trainee.model);
    trainee.state.epoch += 1;
    trainee.state.alpha = alpha;
    Ok(Stepped {
        record: record(epoch, loss, dice, &trainee.state.alpha, started),
        trainee,
        line,
    })
}

/// One epoch of the `gradient` comparator: β trained by backpropagation with the network.
pub fn learning_alpha_epoch<B: AutodiffBackend>(
    session: &Session<'_, B>,
    trainee: Trainee<B>,
    progress: &dyn Progress,
) -> Result<Stepped<B>> {
    let started = Instant::now();
    let Trainee {
        model,
        mut optimizer,
        mut state,
    } = trainee;
    let epoch = state.epoch;
    let Some(WeightingState::Gradient(learned)) = state.weighting().cloned() else {
        return Err(Error::Internal(
            "a learning-α epoch without a gradient state".into(),
        ));
    };
    let (model, loss, learned) = train_epoch_learning_alpha(
        model,
        &mut optimizer,
        &session.train,
        &session.settings(epoch),
        learned,
        session.device,
        progress,
    );
    let alpha = learned.alpha();
    let line = WeightingLine::Gradient(GradientRecord {
        epoch: epoch + 1,
        beta: learned.beta,
        alpha,
    });
    state.extra = Some(StateExtra {
        weighting: WeightingState::Gradient(learned),
    });
    let trained = Trainee {
        model,
        optimizer,
        state,
    };
    close_epoch(session, trained, loss, alpha.to_vec(), started, Some(line))
}

/// A trained child of an auto-weighted epoch.
pub struct Child<B: AutodiffBackend> {
    pub model: UNet<B>,
    pub optimizer: AdamOf<B>,
    pub loss: f64,
    pub dice: ValidationDice,
}

/// The children the parent's next auto-weighted epoch trains, drawn from its state.
pub fn candidates<B: AutodiffBackend>(
    session: &Session<'_, B>,
    parent: &Trainee<B>,
) -> Result<Vec<Candidate>> {
    let state = parent
        .state
        .weighting()
        .ok_or_else(|| Error::Internal("an auto-weighted epoch without a state".into()))?;
    let seed = session.settings(parent.state.epoch).seed;
    Ok(session.weighting()?.candidates(state, seed))
}

/// Train one child of `parent` with the candidate's α for one epoch and validate it; None when
/// its loss diverged (the update then counts it as missing).
pub fn sample<B: AutodiffBackend>(
    session: &Session<'_, B>,
    parent: &Trainee<B>,
    candidate: &Candidate,
    progress: &dyn Progress,
) -> Option<Child<B>> {
    let model = fork(&parent.model, &session.model_config, session.device);
    let config = session.config;
    let first_auto = config.weighting.as_ref().map(|w| w.epochs_fixed) == Some(parent.state.epoch);
    let mut optimizer = if config.optimizer.reset_at_auto && first_auto {
        new_adam::<B>(&config.optimizer)
    } else {
        parent.optimizer.clone()
    };
    let epoch = session.settings(parent.state.epoch);
    let seed = match session.weighting().map(|w| w.child_batches) {
        Ok(ChildBatches::Own) => seed::derive(epoch.seed, "child", candidate.index as u64),
        _ => epoch.seed,
    };
    let settings = EpochSettings {
        alpha: candidate.alpha.to_vec(),
        seed,
        ..epoch
    };
    let (model, loss) = train_epoch(
        model,
        &mut optimizer,
        &session.train,
        &settings,
        session.device,
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
    let dice = session.validate(&model);
    Some(Child {
        model,
        optimizer,
        loss,
        dice,
    })
}

/// An auto-weighted epoch closed: which child becomes the parent, the state it continues from
/// (the search moved on) and the epoch's `weighting.jsonl` line.
pub struct Closed {
    pub chosen: usize,
    pub state: TrainState,
    pub line: WeightingLine,
}

/// Close the auto-weighted epoch that the parent in `parent` began, from the scores of the
/// children that arrived (`candidates` are all of them): what `awsnet train` and a grid's
/// update task both run.
pub fn update(
    weighting: &WeightingConfig,
    parent: &TrainState,
    candidates: &[Candidate],
    scores: &[Score],
) -> Result<Closed> {
    let state = parent
        .weighting()
        .ok_or_else(|| Error::Internal("an auto-weighted epoch without a search state".into()))?;
    let epoch = parent.epoch;
    let Conclusion {
        chosen,
        state,
        mut line,
    } = weighting.conclude(state, candidates, scores, epoch_seed(parent.seed, epoch))?;
    line.set_epoch(epoch + 1);
    let alpha = candidates
        .iter()
        .find(|c| c.index == chosen)
        .map(|c| c.alpha.to_vec())
        .ok_or_else(|| Error::Internal(format!("the search chose child {chosen}, no candidate")))?;
    Ok(Closed {
        chosen,
        state: parent.after_epoch(alpha, Some(state)),
        line,
    })
}

/// One auto-weighted epoch in one process: every candidate sampled in turn, only the best child
/// kept in memory, then the update; the chosen child becomes the trainee.
pub fn auto_epoch<B: AutodiffBackend>(
    session: &Session<'_, B>,
    parent: Trainee<B>,
    progress: &dyn Progress,
) -> Result<Stepped<B>> {
    let started = Instant::now();
    let weighting = session.weighting()?;
    let epoch = parent.state.epoch;
    let candidates = candidates(session, &parent)?;
    let mut scores = Vec::with_capacity(candidates.len());
    let mut best: Option<(usize, Child<B>)> = None;
    for candidate in &candidates {
        let Some(child) = sample(session, &parent, candidate, progress) else {
            continue;
        };
        let dice = child.dice.score(session.config.score);
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
        // Ties keep the earlier child, as the update does.
        let better = best
            .as_ref()
            .is_none_or(|(_, b)| dice > b.dice.score(session.config.score));
        if better {
            best = Some((candidate.index, child));
        }
    }
    let Some((index, child)) = best else {
        return Err(Error::training(format!(
            "the loss of every one of the {} children of epoch {} diverged; lower the learning rate",
            candidates.len(),
            epoch + 1
        )));
    };
    let closed = update(weighting, &parent.state, &candidates, &scores)?;
    if index != closed.chosen {
        return Err(Error::Internal(format!(
            "the search chose child {} but child {index} scored best",
            closed.chosen
        )));
    }
    Ok(Stepped {
        record: record(epoch, child.loss, child.dice, &closed.state.alpha, started),
        trainee: Trainee {
            model: child.model,
            optimizer: child.optimizer,
            state: closed.state,
        },
        line: Some(closed.line),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::phantom::{generate_case, PhantomConfig};
    use crate::train::samples::{Network, SampleGeometry};

    /// The network a config builds takes the samples that config makes: as many input
    /// channels, and a class for every target value.
    #[test]
    fn each_network_takes_its_samples() {
        let phantom = PhantomConfig {
            size: [64, 64],
            spacing: [3.6, 3.6, 14.0],
            ..PhantomConfig::default()
        };
        let case = (0..8)
            .map(|i| generate_case(&phantom, i))
            .find(|c| c.has_pathology)
            .expect("a case with pathology")
            .into_case();
        let geometry = SampleGeometry {
            crop: [48, 48],
            margin: 2,
            input: [32, 32],
        };
        for (net, sequences) in [
            (Network::CasnCoarse, None),
            (Network::CasnFine, None),
            (Network::Scar, None),
            (Network::ScarEdema, None),
            // Table 3: one sequence, or all three.
            (Network::ScarEdema, Some(vec!["LGE"])),
            (Network::Scar, Some(vec!["C0", "DE", "T2"])),
        ] {
            let mut config: TrainConfig = serde_json::from_value(serde_json::json!({
                "data": "unused", "net": net, "epochs": 1,
                "geometry": { "crop": [48, 48], "margin": 2, "input": [32, 32] },
            }))
            .unwrap();
            config.sequences = sequences
                .map(|s| serde_json::from_value(serde_json::json!(s)).expect("sequence names"));
            config.validate().unwrap();
            let model = model_config(&config);
            let samples = net.samples(&case, &geometry, &config.input_sequences());
            assert!(!samples.is_empty(), "{net:?}");
            for s in &samples {
                assert_eq!(s.channels.len(), model.in_channels, "{net:?}");
                assert!(
                    s.classes
                        .iter()
                        .all(|&k| usize::from(k) < model.out_channels),
                    "{net:?}"
                );
            }
        }
    }
}
