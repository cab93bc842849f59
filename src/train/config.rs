//! What a training run is, without the means to run it: the train config (network, geometry,
//! schedule, loss and weighting fields), its validation, and the records a run writes per epoch.
//!
//! This room is burn-free on purpose: the grid planner, `infer` and reports read configs and
//! records without linking the model stack's types into their logic. `train::steps` turns a
//! config into networks, losses and optimisers.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::batches::{check_fraction, EpochLength};
use super::samples::{Network, SampleGeometry};
use crate::das::weighting::{ScoreDice, WeightingConfig};
use crate::data::augment::AugmentConfig;
use crate::data::cases::Sequence;
use crate::error::{Error, Result};

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
    /// Only these cases of `data` (training and validation); absent: every case there. A grid
    /// that splits one directory into training and test cases names its training cases here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cases: Option<Vec<String>>,
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
    /// How many batches an epoch trains: `{"min_batches": N}` (default 7), `{"batches": N}`,
    /// or `"pass"`, one pass over the training slices (the paper); `train::batches` says why.
    #[serde(default = "default_epoch_length")]
    pub epoch_length: EpochLength,
    /// Share of each batch given to slices that show the scored class (nnU-Net: a third);
    /// 0: the shuffle alone decides (the paper).
    #[serde(default = "default_foreground_oversampling")]
    pub foreground_oversampling: f64,
    #[serde(default = "default_lr")]
    pub learning_rate: f64,
    /// ASAN input sequences, in this order (Table 3 ablates them); default DE and T2 (§3.2:
    /// bSSFP is dropped after the CASN). CASN always reads C0, DE and T2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequences: Option<Vec<Sequence>>,
    /// Supervision weights, coarse to fine; default 0.25 each. One value without deep
    /// supervision.
    #[serde(default)]
    pub alpha: Option<Vec<f64>>,
    #[serde(default)]
    pub loss: LossSettings,
    /// The network's Adam.
    #[serde(default)]
    pub optimizer: OptimizerSettings,
    /// The PAM gates' inner width (ASAN): `half` the skip's channels (the paper's Eq. 10 with
    /// nothing more said), or `released` (the authors' code: 128/64/32/32 at base 32, BN after
    /// both projections).
    #[serde(default)]
    pub pam_width: PamWidth,
    #[serde(default)]
    pub augment: AugmentConfig,
    #[serde(default)]
    pub seed: u64,
    /// Which validation Dice scores an epoch (for the best epoch) and a DAS child (its reward).
    #[serde(default = "default_score")]
    pub score: ScoreDice,
    /// How α is chosen per epoch (`das::weighting`); absent: `alpha` throughout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weighting: Option<WeightingConfig>,
    /// Where an ASAN's training and validation slices get their ROI and LV mask: absent, the
    /// ground truth (the paper); set, trained CASNs, as at test time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub casn_rois: Option<CasnRois>,
}

/// Trained CASNs that find the LV of an ASAN's samples, the way `awsnet predict` finds it in a
/// test case: the coarse mask's box cuts the ROI, the fine mask masks it (Eq. 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasnRois {
    /// `awsnet train` run directory of the coarse CASN (relative: from the config file's
    /// directory); its best validation epoch is deployed, as `awsnet predict` deploys it.
    pub coarse: PathBuf,
    /// The fine CASN's run directory, likewise.
    pub fine: PathBuf,
    /// Box only the coarse mask's largest connected component (`--largest-component`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub largest_component: bool,
    /// Out-of-fold CASNs: each fold's pair, trained without its cases, finds the LV in them
    /// (CASNs find their own training cases almost perfectly, unlike a test case); cases in no
    /// fold take `coarse` and `fine`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folds: Vec<CasnFold>,
}

/// One fold of [`CasnRois::folds`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasnFold {
    pub coarse: PathBuf,
    pub fine: PathBuf,
    /// The case ids this fold's CASNs locate.
    pub cases: Vec<String>,
}

impl CasnRois {
    /// With relative run directories taken from `base`.
    pub fn rooted(&self, base: &Path) -> CasnRois {
        CasnRois {
            coarse: base.join(&self.coarse),
            fine: base.join(&self.fine),
            largest_component: self.largest_component,
            folds: self
                .folds
                .iter()
                .map(|f| CasnFold {
                    coarse: base.join(&f.coarse),
                    fine: base.join(&f.fine),
                    cases: f.cases.clone(),
                })
                .collect(),
        }
    }

    fn validate(&self) -> Result<()> {
        let mut seen = std::collections::BTreeMap::new();
        for (i, fold) in self.folds.iter().enumerate() {
            for case in &fold.cases {
                if let Some(first) = seen.insert(case, i) {
                    return Err(Error::invalid(
                        format!("casn_rois.folds[{i}].cases"),
                        format!("{case} is also in folds[{first}]; a case has one fold"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The loss fields of a config file; unset fields take the network's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossSettings {
    pub dice_smooth: Option<f64>,
    /// Count the background class in the Dice (the released code does; Eq. 1 does not).
    pub dice_background: Option<bool>,
    /// How the per-class Dice losses combine: `mean` (default; the paper's Eq. 1 averages) or
    /// `sum` (the released code), which also weighs Dice more against λ_CE·CE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dice_reduction: Option<DiceReduction>,
    /// Where the Dice's sums run: `sample` (each slice its own Dice, averaged: the paper's
    /// Eq. 1 read per sample) or `batch` (one Dice per class over the batch, nnU-Net's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dice_over: Option<DiceOver>,
    /// λ_CE; default 0.25 for ASAN (Eq. 3), 0 for CASN (Dice only, Eq. 1).
    pub ce_weight: Option<f64>,
    /// λ_CE in the auto-weighted epochs; default: `ce_weight` throughout, as the paper has it.
    /// The released code uses 0.2 before the search and 0 during it (`ce_weight` 0.2,
    /// `ce_weight_auto` 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ce_weight_auto: Option<f64>,
}

/// How the Dice losses of the counted classes combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiceReduction {
    #[default]
    Mean,
    Sum,
}

/// Over what the soft Dice's sums run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiceOver {
    Sample,
    Batch,
}

/// The network's Adam. The paper says Adam with lr 1e-3 (§4.2) and leaves the rest to PyTorch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerSettings {
    /// ε in Adam's denominator: default 1e-8, PyTorch's (the authors' framework); burn's own
    /// default is 1e-5.
    pub epsilon: f64,
    /// Give each auto-weighted phase a fresh Adam state when it starts (the released code
    /// builds a new optimiser there); default false: the fixed phase's moments carry on.
    pub reset_at_auto: bool,
}

impl Default for OptimizerSettings {
    fn default() -> Self {
        OptimizerSettings {
            epsilon: 1e-8,
            reset_at_auto: false,
        }
    }
}

/// The PAM gates' inner width (`model::pam`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PamWidth {
    #[default]
    Half,
    Released,
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
/// Pooled: a net that predicts nothing scores 0, not the share of lesion-free slices.
pub(crate) fn default_score() -> ScoreDice {
    ScoreDice::Pooled
}
/// At least MyoPS's pass (`train::batches`).
pub(crate) fn default_epoch_length() -> EpochLength {
    EpochLength::MinBatches(7)
}
/// nnU-Net's third of a batch.
pub(crate) fn default_foreground_oversampling() -> f64 {
    0.33
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
        if let (Some(casn), Some(dir)) = (&config.casn_rois, path.parent()) {
            config.casn_rois = Some(casn.rooted(dir));
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
        check_input("geometry.input", self.geometry.input)?;
        if self.geometry.crop.contains(&0) {
            return Err(Error::invalid("geometry.crop", "sides must be positive"));
        }
        if self.epochs == 0 {
            return Err(Error::invalid("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::invalid("batch_size", "must be at least 1"));
        }
        self.epoch_length.validate()?;
        check_fraction("foreground_oversampling", self.foreground_oversampling)?;
        if self.base_filters == 0 {
            return Err(Error::invalid("base_filters", "must be at least 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::invalid("learning_rate", "must be a positive number"));
        }
        for (field, value) in [
            ("loss.dice_smooth", self.loss.dice_smooth),
            ("loss.ce_weight", self.loss.ce_weight),
            ("loss.ce_weight_auto", self.loss.ce_weight_auto),
        ] {
            if value.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
                return Err(Error::invalid(field, "must be a non-negative number"));
            }
        }
        if !(self.optimizer.epsilon.is_finite() && self.optimizer.epsilon > 0.0) {
            return Err(Error::invalid(
                "optimizer.epsilon",
                "must be a positive number",
            ));
        }
        let searches = self.weighting.as_ref().is_some_and(|w| w.is_search());
        if self.optimizer.reset_at_auto && !searches {
            return Err(Error::invalid(
                "optimizer.reset_at_auto",
                "resets Adam when auto-weighted epochs start; this config has none (weighting \
                 `das`, `norl` or `genetic`)",
            ));
        }
        if self.loss.ce_weight_auto.is_some() && !searches {
            return Err(Error::invalid(
                "loss.ce_weight_auto",
                "is λ_CE in auto-weighted epochs; this config has none (weighting `das`, \
                 `norl` or `genetic`)",
            ));
        }
        if self.pam_width != PamWidth::Half && !(self.is_asan() && self.pam()) {
            return Err(Error::invalid(
                "pam_width",
                "shapes PAM gates; this network has none",
            ));
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
        check_sums_to_one("alpha", &alpha)?;
        if let Some(rois) = &self.casn_rois {
            if !self.is_asan() {
                return Err(Error::invalid(
                    "casn_rois",
                    "locates the ASANs' ROIs; a CASN trains on the ground truth's",
                ));
            }
            rois.validate()?;
        }
        if let Some(sequences) = &self.sequences {
            if !self.is_asan() {
                return Err(Error::invalid(
                    "sequences",
                    "chooses an ASAN's input; CASN always reads C0, DE and T2",
                ));
            }
            let distinct: std::collections::BTreeSet<_> = sequences.iter().collect();
            if sequences.is_empty() || distinct.len() != sequences.len() {
                return Err(Error::invalid(
                    "sequences",
                    format!("{sequences:?}: name one or more of C0, DE, T2, each once"),
                ));
            }
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

    /// The sequences the network reads, in channel order.
    pub fn input_sequences(&self) -> Vec<Sequence> {
        match (&self.sequences, self.is_asan()) {
            (Some(s), true) => s.clone(),
            (None, true) => vec![Sequence::DE, Sequence::T2],
            (_, false) => Sequence::ALL.to_vec(),
        }
    }

    /// Whether the network is an ASAN (its defaults differ from CASN's).
    pub fn is_asan(&self) -> bool {
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

    /// How a child or an epoch is scored.
    pub fn score(&self) -> ScoreDice {
        self.score
    }

    /// What kind of epoch epoch `epoch` (0-based) is.
    pub fn epoch_kind(&self, epoch: u64) -> EpochKind {
        match &self.weighting {
            Some(w) if w.is_auto(epoch) => EpochKind::Auto,
            Some(w) if w.kind == crate::das::weighting::WeightingKind::Gradient => {
                if w.in_warmup(epoch) {
                    EpochKind::Fixed
                } else {
                    EpochKind::LearningAlpha
                }
            }
            _ => EpochKind::Fixed,
        }
    }

    /// Training samples an epoch goes through (children included), for progress.
    pub fn steps_of_epoch(&self, epoch: u64, train_samples: usize) -> u64 {
        let one = self.epoch_length.samples(train_samples, self.batch_size) as u64;
        match (&self.weighting, self.epoch_kind(epoch)) {
            (Some(w), EpochKind::Auto) => w.samples as u64 * one,
            _ => one,
        }
    }
}

/// The seed of epoch `epoch` (0-based) of a run: its shuffle, augmentation and, in an
/// auto-weighted epoch, the children's draws derive from it.
pub fn epoch_seed(run_seed: u64, epoch: u64) -> u64 {
    crate::seed::derive(run_seed, "epoch", epoch)
}

/// A network input must pass four 2×2 poolings: both sides positive multiples of 16.
pub fn check_input(field: &str, [h, w]: [usize; 2]) -> Result<()> {
    if h == 0 || w == 0 || h % 16 != 0 || w % 16 != 0 {
        return Err(Error::invalid(
            field,
            format!("{h}×{w}: both sides must be positive multiples of 16 (four poolings)"),
        ));
    }
    Ok(())
}

/// Deep-supervision weights must sum to 1 (Eq. 4): other sums would scale the learning rate
/// silently.
pub fn check_sums_to_one(field: &str, alpha: &[f64]) -> Result<()> {
    let sum: f64 = alpha.iter().sum();
    if (sum - 1.0).abs() > 1e-6 {
        return Err(Error::invalid(
            field,
            format!("{alpha:?} sums to {sum}; the weights must sum to 1 (Eq. 4)"),
        ));
    }
    Ok(())
}

/// The three kinds of epoch a schedule is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochKind {
    /// One network trained with α fixed for the epoch (`equal`, `fixed`, `decay`, and the fixed
    /// phase of the searches).
    Fixed,
    /// One network trained with β learned alongside it (`gradient`).
    LearningAlpha,
    /// K children of the parent, one epoch each, and a search update (`das`, `norl`, `genetic`).
    Auto,
}

/// Dice of one class over validation samples, every way it is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidationDice {
    /// Mean per-slice Dice, a slice where prediction and truth are both empty counting 1
    /// (`ScoreDice::PerSlice`).
    pub per_slice: f64,
    /// Dice of all the slices' pixels pooled; 1 when the class is absent from both: the default
    /// score (`ScoreDice::Pooled`).
    pub pooled: f64,
    /// Mean over validation cases of the Dice of each case's slices pooled.
    pub per_case: f64,
    /// Pixels predicted as the class on the slices whose truth shows it: 0 with lesion slices
    /// present means the net found none of them (collapsed).
    pub found: u64,
    /// Validation slices whose truth shows the class.
    pub lesion_slices: usize,
}

impl ValidationDice {
    /// The Dice a child or an epoch is scored by.
    pub fn score(&self, which: ScoreDice) -> f64 {
        match which {
            ScoreDice::PerSlice => self.per_slice,
            ScoreDice::PerCase => self.per_case,
            ScoreDice::Pooled => self.pooled,
        }
    }
}

/// [`EpochRecord::val_found`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationFound {
    pub pixels: u64,
    pub lesion_slices: usize,
}

/// One line of `progress.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochRecord {
    pub epoch: u64,
    pub loss: f64,
    /// Validation Dice of the pathology class, per slice (empty/empty = 1) and pooled.
    pub val_dice: f64,
    pub val_dice_pooled: f64,
    /// Mean over validation cases of each case's pooled Dice.
    #[serde(default)]
    pub val_dice_per_case: f64,
    /// Pixels predicted as the class on validation slices whose truth shows it, and how many
    /// such slices there are: a net that finds none of them has collapsed. Absent in runs
    /// written before awsnet recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_found: Option<ValidationFound>,
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
            found: self.val_found.map_or(0, |f| f.pixels),
            lesion_slices: self.val_found.map_or(0, |f| f.lesion_slices),
        }
    }

    /// Whether this epoch's net predicted the class nowhere on validation slices that show it.
    pub fn collapsed(&self) -> bool {
        self.val_found
            .is_some_and(|f| f.lesion_slices > 0 && f.pixels == 0)
    }
}
