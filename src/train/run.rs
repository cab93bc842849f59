//! `awsnet train`: one network's whole schedule on one machine — CASN or ASAN, with fixed
//! deep-supervision weights or chosen per epoch by a `weighting` (`das::weighting`, whose
//! auto-weighted epochs `super::auto` runs).
//!
//! The run directory holds, nnU-Net style:
//! - `config.json`: the configuration the run was started with;
//! - `checkpoints/epoch-NNNN/`: checkpoints (see [`super::checkpoint`]), kept while a pointer
//!   names them;
//! - `checkpoint_latest.json`, `checkpoint_best.json`: pointers (`{"epoch", "path"}`) to the
//!   latest epoch and to the one with the best validation Dice so far; each is replaced by one
//!   atomic write, so a crash never leaves a half-replaced checkpoint;
//! - `progress.jsonl`: one JSON line per epoch (loss, validation Dice, α, seconds);
//! - `weighting.jsonl`: with a searching or learning weighting, one JSON line per auto-weighted
//!   (or learning) epoch: samples, scores, the choice and the search's state.
//!
//! A run that stopped (crash, preemption) continues with `resume`: it reloads
//! the latest checkpoint and trains the remaining epochs, with the same result as a run that never
//! stopped; raising `epochs` in the config and resuming extends a finished run. Any other change
//! to the config is refused on resume, and starting over a directory that holds a run is refused
//! unless resuming.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use serde::{Deserialize, Serialize};

use super::auto::{auto_epoch, score_of, ChildJob};
use super::checkpoint::{load_checkpoint, save_checkpoint, AdamOf, TrainState};
use super::epoch::{train_epoch, validate, EpochSettings, ValidationDice};
use super::learned_alpha::train_epoch_learning_alpha;
use super::loss::LossConfig;
use super::samples::{Network, Sample, SampleGeometry};
use crate::atomic;
use crate::das::weighting::{WeightingConfig, WeightingState};
use crate::data::augment::AugmentConfig;
use crate::data::cases::{load_all, Case};
use crate::error::{Error, Result};
use crate::model::asan::asan_config;
use crate::model::casn::stage_config;
use crate::model::unet::UNetConfig;
use crate::seed;

/// Everything `awsnet train` reads from its `--config` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Directory of MyoPS cases with labels (relative paths are taken from the config file's
    /// directory).
    pub data: PathBuf,
    /// Case ids held out for validation; empty: the last fifth of the cases (at least one).
    #[serde(default)]
    pub validation_cases: Vec<String>,
    /// `casn_coarse`, `casn_fine`, `scar` (ASAN-S) or `scar_edema` (ASAN-P).
    pub net: Network,
    #[serde(default = "default_base")]
    pub base_filters: usize,
    /// PAM gates; default on for ASAN, off for CASN.
    #[serde(default)]
    pub pam: Option<bool>,
    /// Four supervision heads; default on for ASAN, off for CASN.
    #[serde(default)]
    pub deep_supervision: Option<bool>,
    pub geometry: SampleGeometry,
    pub epochs: u64,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_lr")]
    pub learning_rate: f64,
    /// Supervision weights, coarse to fine; default 0.25 each. One value without deep
    /// supervision.
    #[serde(default)]
    pub alpha: Option<Vec<f64>>,
    #[serde(default)]
    pub loss: LossSettings,
    #[serde(default)]
    pub augment: AugmentConfig,
    #[serde(default)]
    pub seed: u64,
    /// How α is chosen per epoch (`das::weighting`); absent: `alpha` throughout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weighting: Option<WeightingConfig>,
}

/// The loss fields of a config file; unset fields take the network's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossSettings {
    pub dice_smooth: Option<f64>,
    pub dice_background: Option<bool>,
    /// λ_CE; default 0.25 for ASAN (Eq. 3), 0 for CASN (Dice only, Eq. 1).
    pub ce_weight: Option<f64>,
}

fn default_base() -> usize {
    32
}
fn default_batch() -> usize {
    16
}
fn default_lr() -> f64 {
    1e-3
}

impl TrainConfig {
    /// Read and check a config file.
    pub fn read(path: &Path) -> Result<TrainConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
        let mut config: TrainConfig = serde_json::from_str(&text)
            .map_err(|e| Error::input(path, format!("not a train config: {e}")))?;
        if config.data.is_relative() {
            if let Some(dir) = path.parent() {
                config.data = dir.join(&config.data);
            }
        }
        // Stored absolute in the run's config.json, so the run can be resumed from anywhere.
        if let Ok(absolute) = config.data.canonicalize() {
            config.data = absolute;
        }
        config.validate().map_err(|e| match e {
            Error::InvalidArgument { field, problem } => {
                Error::input(path, format!("field {field}: {problem}"))
            }
            other => other,
        })?;
        Ok(config)
    }

    /// Check every field's domain, naming the field.
    pub fn validate(&self) -> Result<()> {
        let [h, w] = self.geometry.input;
        if h == 0 || w == 0 || h % 16 != 0 || w % 16 != 0 {
            return Err(Error::invalid(
                "geometry.input",
                format!("{h}×{w}: both sides must be positive multiples of 16 (four poolings)"),
            ));
        }
        if self.geometry.crop.contains(&0) {
            return Err(Error::invalid("geometry.crop", "sides must be positive"));
        }
        if self.epochs == 0 {
            return Err(Error::invalid("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::invalid("batch_size", "must be at least 1"));
        }
        if self.base_filters == 0 {
            return Err(Error::invalid("base_filters", "must be at least 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::invalid("learning_rate", "must be a positive number"));
        }
        for (field, value) in [
            ("loss.dice_smooth", self.loss.dice_smooth),
            ("loss.ce_weight", self.loss.ce_weight),
        ] {
            if value.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
                return Err(Error::invalid(field, "must be a non-negative number"));
            }
        }
        let alpha = self.alpha();
        if alpha.iter().sum::<f64>() <= 0.0 {
            return Err(Error::invalid(
                "alpha",
                "at least one weight must be positive",
            ));
        }
        let heads = if self.deep_supervision() { 4 } else { 1 };
        if alpha.len() != heads || alpha.iter().any(|a| !a.is_finite() || *a < 0.0) {
            return Err(Error::invalid(
                "alpha",
                format!("{alpha:?}: need {heads} non-negative weights (one per supervision head)"),
            ));
        }
        if let Some(weighting) = &self.weighting {
            if !self.deep_supervision() {
                return Err(Error::invalid(
                    "weighting",
                    "weights four supervision heads; this network has deep supervision off",
                ));
            }
            if self.alpha.is_some() {
                return Err(Error::invalid(
                    "alpha",
                    "give fixed weights as weighting.alpha (kind `fixed`) when a weighting is set",
                ));
            }
            weighting.validate(self.epochs)?;
        }
        self.augment.validate()
    }

    fn is_asan(&self) -> bool {
        self.net.asan().is_some()
    }

    pub fn pam(&self) -> bool {
        self.pam.unwrap_or(self.is_asan())
    }

    pub fn deep_supervision(&self) -> bool {
        self.deep_supervision.unwrap_or(self.is_asan())
    }

    /// Deep-supervision weights in use.
    pub fn alpha(&self) -> Vec<f64> {
        match &self.alpha {
            Some(a) => a.clone(),
            None if self.deep_supervision() => vec![0.25; 4],
            None => vec![1.0],
        }
    }

    pub fn model(&self) -> UNetConfig {
        let base = match self.net.asan() {
            Some(_) => asan_config(self.base_filters, true, true),
            None => stage_config(self.base_filters),
        };
        base.with_pam(self.pam())
            .with_deep_supervision(self.deep_supervision())
    }

    fn loss(&self) -> LossConfig {
        let d = LossConfig::new();
        let ce = if self.is_asan() { d.ce_weight } else { 0.0 };
        LossConfig::new()
            .with_dice_smooth(self.loss.dice_smooth.unwrap_or(d.dice_smooth))
            .with_dice_background(self.loss.dice_background.unwrap_or(d.dice_background))
            .with_ce_weight(self.loss.ce_weight.unwrap_or(ce))
    }
}

/// One line of `progress.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: u64,
    pub loss: f64,
    /// Validation Dice of the pathology class, per slice (empty/empty = 1) and pooled.
    pub val_dice: f64,
    pub val_dice_pooled: f64,
    /// Mean over validation cases of each case's pooled Dice.
    #[serde(default)]
    pub val_dice_per_case: f64,
    /// The deep-supervision weights the epoch's model trained with (for `gradient`, where α
    /// moves within the epoch, its value at the end).
    #[serde(default)]
    pub alpha: Vec<f64>,
    pub seconds: f64,
}

impl EpochRecord {
    /// The epoch's validation Dice, every way it was measured.
    pub fn validation(&self) -> ValidationDice {
        ValidationDice {
            per_slice: self.val_dice,
            pooled: self.val_dice_pooled,
            per_case: self.val_dice_per_case,
        }
    }
}

/// Split cases into training and validation samples as the config says.
pub fn split_samples(config: &TrainConfig, cases: &[Case]) -> Result<(Vec<Sample>, Vec<Sample>)> {
    let ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    for v in &config.validation_cases {
        if !ids.contains(&v.as_str()) {
            return Err(Error::invalid(
                "validation_cases",
                format!("{v} is not a case of {}", config.data.display()),
            ));
        }
    }
    let held_out: Vec<&str> = if config.validation_cases.is_empty() {
        let n = cases.len().div_ceil(5).min(cases.len().saturating_sub(1));
        ids[ids.len() - n..].to_vec()
    } else {
        config.validation_cases.iter().map(String::as_str).collect()
    };
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for case in cases {
        let samples = config.net.samples(case, &config.geometry);
        if held_out.contains(&case.id.as_str()) {
            val.extend(samples);
        } else {
            train.extend(samples);
        }
    }
    if train.is_empty() {
        return Err(Error::Dataset {
            path: config.data.clone(),
            problem: "no labelled slice showing the LV left for training".into(),
        });
    }
    if val.is_empty() {
        tracing::warn!("no validation slices: validating on the training slices");
        val = train.clone();
    }
    Ok((train, val))
}

/// Where a run keeps its pieces.
pub struct RunDir {
    pub root: PathBuf,
}

/// A pointer file naming the checkpoint directory of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointPointer {
    epoch: u64,
    /// Relative to the run directory.
    path: PathBuf,
}

/// Which checkpoint of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Latest,
    Best,
}

impl RunDir {
    fn pointer(&self, which: Which) -> PathBuf {
        self.root.join(match which {
            Which::Latest => "checkpoint_latest.json",
            Which::Best => "checkpoint_best.json",
        })
    }

    fn epoch_dir(&self, epoch: u64) -> PathBuf {
        self.root
            .join("checkpoints")
            .join(format!("epoch-{epoch:04}"))
    }

    /// The checkpoint directory `which` points at, if the run has one.
    pub fn checkpoint(&self, which: Which) -> Result<Option<PathBuf>> {
        let path = self.pointer(which);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
        let pointer: CheckpointPointer = serde_json::from_str(&text)
            .map_err(|e| Error::input(&path, format!("not a checkpoint pointer: {e}")))?;
        Ok(Some(self.root.join(pointer.path)))
    }

    /// Point `which` at `epoch`'s checkpoint: one atomic file write, so a reader sees the old
    /// or the new checkpoint, never a mixture.
    fn point(&self, which: Which, epoch: u64) -> Result<()> {
        let pointer = CheckpointPointer {
            epoch,
            path: PathBuf::from("checkpoints").join(format!("epoch-{epoch:04}")),
        };
        let bytes = serde_json::to_vec_pretty(&pointer)
            .map_err(|e| Error::Internal(format!("encoding a checkpoint pointer: {e}")))?;
        atomic::write_bytes(&self.pointer(which), &bytes)
    }

    /// Remove epoch checkpoints neither pointer names.
    fn prune(&self) -> Result<()> {
        let keep: Vec<PathBuf> = [Which::Latest, Which::Best]
            .into_iter()
            .filter_map(|w| self.checkpoint(w).transpose())
            .collect::<Result<_>>()?;
        let dir = self.root.join("checkpoints");
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::read(&dir, e))? {
            let path = entry.map_err(|e| Error::read(&dir, e))?.path();
            if path.is_dir() && !keep.contains(&path) {
                std::fs::remove_dir_all(&path).map_err(|e| Error::write(&path, e))?;
            }
        }
        Ok(())
    }

    pub fn progress(&self) -> PathBuf {
        self.root.join("progress.jsonl")
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    /// One JSON line per auto-weighted epoch: the search's samples, scores and choice.
    pub fn weighting_log(&self) -> PathBuf {
        self.root.join("weighting.jsonl")
    }
}

/// The checkpoint directory of a finished or running `awsnet train` run.
pub fn run_checkpoint(run: &Path, which: Which) -> Result<PathBuf> {
    RunDir {
        root: run.to_path_buf(),
    }
    .checkpoint(which)?
    .ok_or_else(|| Error::Dataset {
        path: run.to_path_buf(),
        problem: "no checkpoint: not an awsnet train run, or one that has not finished an epoch"
            .into(),
    })
}

/// Train as `config` says into `out`, continuing a stopped run when `resume` is set.
pub fn train_run<B: AutodiffBackend>(
    config: &TrainConfig,
    out: &Path,
    resume: bool,
    device: &B::Device,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<EpochRecord>> {
    let dir = RunDir {
        root: out.to_path_buf(),
    };
    let latest = dir.checkpoint(Which::Latest)?;
    let has_run = latest.is_some();
    if has_run && !resume {
        return Err(Error::invalid(
            "--out",
            format!(
                "{} already holds a training run; pass --resume to continue it or choose another directory",
                out.display()
            ),
        ));
    }
    let cases = load_all(&config.data)?;
    let (train, val) = split_samples(config, &cases)?;
    tracing::info!(train = train.len(), validation = val.len(), "samples");
    std::fs::create_dir_all(out).map_err(|e| Error::write(out, e))?;

    let model_config = config.model();
    let weighting = config.weighting.as_ref();
    let (mut model, mut optimizer, mut history, mut search, mut search_log, start) = if has_run {
        let saved =
            std::fs::read_to_string(dir.config()).map_err(|e| Error::read(dir.config(), e))?;
        let mut saved: TrainConfig = serde_json::from_str(&saved)
            .map_err(|e| Error::input(dir.config(), format!("not a train config: {e}")))?;
        // Resuming may extend a run; everything else must be as it started.
        saved.epochs = config.epochs;
        if &saved != config {
            return Err(Error::invalid(
                "--config",
                format!(
                    "differs from the configuration {} was started with ({}); resume with that one",
                    out.display(),
                    dir.config().display()
                ),
            ));
        }
        let latest = latest.as_deref().expect("a run has a latest");
        let ck = load_checkpoint::<B>(latest, device)?;
        let history = read_lines(&dir.progress(), ck.state.epoch)?;
        let search = match weighting {
            Some(_) => Some(
                serde_json::from_value::<WeightingState>(ck.state.extra["weighting"].clone())
                    .map_err(|e| Error::input(latest, format!("no weighting state: {e}")))?,
            ),
            None => None,
        };
        let auto_done = weighting.map_or(0, |w| w.logged_epochs(ck.state.epoch));
        let search_log = if auto_done > 0 {
            read_lines(&dir.weighting_log(), auto_done)?
        } else {
            Vec::new()
        };
        (
            ck.model,
            ck.optimizer,
            history,
            search,
            search_log,
            ck.state.epoch,
        )
    } else {
        let bytes = serde_json::to_vec_pretty(config)
            .map_err(|e| Error::Internal(format!("encoding the config: {e}")))?;
        atomic::write_bytes(&dir.config(), &bytes)?;
        let model = model_config.init_seeded::<B>(seed::derive(config.seed, "init", 0), device);
        let optimizer: AdamOf<B> = burn::optim::AdamConfig::new().init();
        let search = weighting.map(|w| w.initial_state(config.seed));
        (model, optimizer, Vec::new(), search, Vec::new(), 0)
    };

    let steps_per_epoch = |epoch: u64| match weighting {
        Some(w) if w.is_auto(epoch) => (w.samples * train.len()) as u64,
        _ => train.len() as u64,
    };
    progress.set_length((start..config.epochs).map(steps_per_epoch).sum());
    let class = config.net.scored_class();
    for epoch in start..config.epochs {
        let started = Instant::now();
        let mut settings = EpochSettings {
            batch_size: config.batch_size,
            learning_rate: config.learning_rate,
            alpha: config.alpha(),
            loss: config.loss(),
            augment: config.augment,
            seed: seed::derive(config.seed, "epoch", epoch),
        };
        let (loss, dice, alpha) = match (weighting, search.as_ref()) {
            (Some(w), Some(state)) if w.is_auto(epoch) => {
                let job = ChildJob {
                    parent: &model,
                    optimizer: &optimizer,
                    model_config: &model_config,
                    train: &train,
                    validation: &val,
                    settings: &settings,
                    class,
                    device,
                };
                let outcome = auto_epoch(&job, w, state, settings.seed, progress)?;
                let mut record = outcome.record;
                record["epoch"] = serde_json::json!(epoch + 1);
                search_log.push(record);
                search = Some(outcome.state);
                model = outcome.parent.model;
                optimizer = outcome.parent.optimizer;
                (outcome.parent.loss, outcome.parent.dice, outcome.alpha)
            }
            (Some(w), Some(state)) if state.learned.is_some() => {
                let learned = state.learned.clone().expect("checked");
                let (next, loss, learned) = train_epoch_learning_alpha(
                    model,
                    &mut optimizer,
                    &train,
                    &settings,
                    learned,
                    device,
                    progress,
                );
                model = next;
                if !loss.is_finite() {
                    return Err(Error::Internal(format!(
                        "the loss became {loss} in epoch {}; lower the learning rate",
                        epoch + 1
                    )));
                }
                let alpha = learned.alpha();
                search_log.push(serde_json::json!({
                    "epoch": epoch + 1,
                    "weighting": w.kind,
                    "beta": learned.beta,
                    "alpha": alpha,
                }));
                search = Some(WeightingState {
                    beta: learned.beta,
                    learned: Some(learned),
                    ..state.clone()
                });
                let dice = validate(&model, &val, class, config.batch_size, device);
                (loss, dice, alpha.to_vec())
            }
            (weighting, state) => {
                if let (Some(w), Some(state)) = (weighting, state) {
                    settings.alpha = w.fixed_alpha(state, epoch).to_vec();
                }
                let (next, loss) =
                    train_epoch(model, &mut optimizer, &train, &settings, device, progress);
                model = next;
                if !loss.is_finite() {
                    return Err(Error::Internal(format!(
                        "the loss became {loss} in epoch {}; lower the learning rate",
                        epoch + 1
                    )));
                }
                let dice = validate(&model, &val, class, config.batch_size, device);
                (loss, dice, settings.alpha)
            }
        };
        let record = EpochRecord {
            epoch: epoch + 1,
            loss,
            val_dice: dice.per_slice,
            val_dice_pooled: dice.pooled,
            val_dice_per_case: dice.per_case,
            alpha: alpha.clone(),
            seconds: started.elapsed().as_secs_f64(),
        };
        tracing::info!(
            epoch = record.epoch,
            loss = record.loss,
            val_dice = record.val_dice,
            seconds = record.seconds,
            "epoch done"
        );
        let score = |r: &EpochRecord| match weighting {
            Some(w) => score_of(&r.validation(), w.score),
            None => r.val_dice,
        };
        let best_so_far = history.iter().all(|r| score(r) < score(&record));
        history.push(record);
        let state = TrainState {
            epoch: epoch + 1,
            seed: config.seed,
            alpha,
            extra: match &search {
                Some(state) => serde_json::json!({ "weighting": state }),
                None => serde_json::Value::Null,
            },
        };
        // The epoch's checkpoint is complete on disk before any pointer names it, and `latest`
        // moves last: a run that dies anywhere here resumes from the previous epoch and redoes
        // this one, with the same result.
        let epoch_dir = dir.epoch_dir(epoch + 1);
        let named = dir.checkpoint(Which::Best)?.as_ref() == Some(&epoch_dir);
        if !named {
            if epoch_dir.exists() {
                // Left by an attempt that died before pointing at it.
                std::fs::remove_dir_all(&epoch_dir).map_err(|e| Error::write(&epoch_dir, e))?;
            }
            save_checkpoint(&epoch_dir, &model_config, &model, &optimizer, &state)?;
        }
        // Else a pointer already names this epoch's complete checkpoint, written by an attempt
        // that died before moving `latest`: the redone epoch has the same bytes.
        if best_so_far {
            dir.point(Which::Best, epoch + 1)?;
        }
        write_lines(&dir.progress(), &history)?;
        if !search_log.is_empty() {
            write_lines(&dir.weighting_log(), &search_log)?;
        }
        dir.point(Which::Latest, epoch + 1)?;
        dir.prune()?;
    }
    Ok(history)
}

/// A JSON-lines file holding `records`, replaced atomically.
fn write_lines<T: Serialize>(path: &Path, records: &[T]) -> Result<()> {
    let mut text = String::new();
    for r in records {
        let line = serde_json::to_string(r)
            .map_err(|e| Error::Internal(format!("encoding {}: {e}", path.display())))?;
        text.push_str(&line);
        text.push('\n');
    }
    atomic::write_bytes(path, text.as_bytes())
}

/// The first `count` records of a JSON-lines file.
fn read_lines<T: serde::de::DeserializeOwned>(path: &Path, count: u64) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().take(count as usize) {
        out.push(
            serde_json::from_str(line)
                .map_err(|e| Error::input(path, format!("line {}: {e}", i + 1)))?,
        );
    }
    if (out.len() as u64) < count {
        return Err(Error::input(
            path,
            format!("{} records where the checkpoint needs {count}", out.len()),
        ));
    }
    Ok(out)
}
