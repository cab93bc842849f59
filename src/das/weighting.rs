//! How an ASAN's deep-supervision weights α are chosen, epoch by epoch: the paper's DAS and the
//! comparators of its Tables 7 and 8, as one config section (`weighting` in a train config).
//!
//! | kind | α per epoch |
//! |---|---|
//! | `equal` | 0.25 for each head |
//! | `fixed` | the given `alpha` |
//! | `decay` | classic deep supervision: each of the three hidden heads gets `0.25·decay_rate^e` in epoch `e` (0-based), the final head the rest, so the companion losses fade out |
//! | `norl` | search without learning: K samples of β moves from a uniform policy, keep the best child |
//! | `genetic` | a population of K β vectors: the better half survives, children by uniform crossover of two survivors and Gaussian mutation |
//! | `gradient` | β trained by backpropagation with the network, on the training loss (`train::learned_alpha` says why that is weak) |
//! | `das` | REINFORCE over β moves (`controller`), keep the best child (default) |
//!
//! The search kinds (`norl`, `genetic`, `das`) train `epochs_fixed` epochs with fixed α first
//! (`warmup_alpha`: softmax(β₀) by default, or equal, or given weights), then every further
//! epoch is auto-weighted: K children of the parent, each trained one epoch with its own α, the
//! best by validation Dice becoming the parent. `gradient` may take the same fixed warm-up
//! (`epochs_fixed`; default none), so that it is compared with DAS like with like. β₀ is
//! `controller.initial_beta`, moved per layer by a uniform draw in ±`beta_jitter` (seeded by the
//! run seed): ensemble members differ in that draw and in their seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::adam;
use super::controller::{
    self, softmax, ControllerConfig, ControllerState, SampleResult, ACTIONS, LAYERS,
};
use crate::error::{Error, Result};
use crate::seed;

/// Which weighting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightingKind {
    Equal,
    Fixed,
    Decay,
    Norl,
    Genetic,
    Gradient,
    #[default]
    Das,
}

/// Which validation Dice scores an epoch (the best epoch) and a child (the reward's ε); the
/// paper says only "the Dice metric calculated on the validation set". A train config's
/// `score`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreDice {
    /// Mean over validation slices, a slice empty in both counting 1: a net that predicts
    /// nothing scores the share of lesion-free slices.
    PerSlice,
    /// Mean over validation cases of the Dice of each case's slices together.
    PerCase,
    /// The Dice of every validation slice's pixels pooled (nnU-Net's pseudo-Dice): a net that
    /// predicts nothing scores 0.
    Pooled,
}

/// Settings of the genetic search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneticConfig {
    /// Probability that a child's β on one layer is mutated.
    pub mutation_rate: f64,
    /// Standard deviation of a mutation.
    pub mutation_sd: f64,
    /// Standard deviation of the first population around β₀.
    pub initial_sd: f64,
}

impl Default for GeneticConfig {
    fn default() -> Self {
        GeneticConfig {
            mutation_rate: 0.5,
            mutation_sd: 0.15,
            initial_sd: 0.15,
        }
    }
}

/// α during the fixed warm-up of a search (or of `gradient`). The paper trains "with fixed
/// weights" first without saying which; β₀'s softmax is what the search then starts from.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarmupAlpha {
    /// softmax(β₀) (default).
    #[default]
    SoftmaxBeta,
    /// 0.25 for each head.
    Equal,
    /// These weights, coarse to fine; they must sum to 1 (Eq. 4).
    Given([f64; LAYERS]),
}

/// What the children of one auto-weighted epoch train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildBatches {
    /// The epoch's batches and augmentations, the same for every child: children differ in α
    /// alone, a paired comparison (default).
    #[default]
    Shared,
    /// Each child its own shuffle and augmentation (the released code), drawn from the epoch's
    /// seed and the child's index.
    Own,
}

/// The `weighting` section of a train config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeightingConfig {
    pub kind: WeightingKind,
    /// α for `fixed`.
    pub alpha: Option<[f64; LAYERS]>,
    /// Per-epoch factor of the hidden heads' weight for `decay`.
    pub decay_rate: f64,
    /// Epochs with fixed α (`warmup_alpha`) before the auto-weighted ones (search kinds) or
    /// before β starts learning (`gradient`).
    pub epochs_fixed: u64,
    /// α during those epochs.
    pub warmup_alpha: WarmupAlpha,
    /// Whether the K children of an auto-weighted epoch see the same batches.
    pub child_batches: ChildBatches,
    /// K: children per auto-weighted epoch (search kinds).
    pub samples: usize,
    /// Half-width of the uniform perturbation of β₀ (ensemble members).
    pub beta_jitter: f64,
    pub controller: ControllerConfig,
    pub genetic: GeneticConfig,
}

impl Default for WeightingConfig {
    fn default() -> Self {
        WeightingConfig {
            kind: WeightingKind::default(),
            alpha: None,
            decay_rate: 0.9,
            epochs_fixed: 0,
            warmup_alpha: WarmupAlpha::default(),
            child_batches: ChildBatches::default(),
            samples: 10,
            beta_jitter: 0.0,
            controller: ControllerConfig::default(),
            genetic: GeneticConfig::default(),
        }
    }
}

/// The weighting's state between epochs, saved in every checkpoint: one variant per shape of
/// state the kinds keep.
///
/// Saved in the shape it has always had (`{beta, controller, population, learned}`), so older
/// checkpoints resume and the same run writes the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "StateRecord", try_from = "StateRecord")]
pub enum WeightingState {
    /// `equal`, `fixed`, `decay`: nothing is searched; β₀ is kept for the record.
    Fixed { beta: [f64; LAYERS] },
    /// `das` and `norl`: the controller (for `norl` one whose policy stays uniform); its β is
    /// the parent's.
    Policy(Box<ControllerState>),
    /// `genetic`: the parent's β and the population to train next.
    Genetic {
        beta: [f64; LAYERS],
        population: Vec<[f64; LAYERS]>,
    },
    /// `gradient`: β with its optimiser moments.
    Gradient(LearnedBeta),
}

impl WeightingState {
    /// The parent's β: what α = softmax(β) is trained with outside the search epochs.
    pub fn beta(&self) -> [f64; LAYERS] {
        match self {
            WeightingState::Fixed { beta } | WeightingState::Genetic { beta, .. } => *beta,
            WeightingState::Policy(controller) => controller.beta,
            WeightingState::Gradient(learned) => learned.beta,
        }
    }
}

/// How [`WeightingState`] is written in a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateRecord {
    beta: [f64; LAYERS],
    controller: Option<ControllerState>,
    population: Vec<[f64; LAYERS]>,
    #[serde(default)]
    learned: Option<LearnedBeta>,
}

impl From<WeightingState> for StateRecord {
    fn from(state: WeightingState) -> Self {
        let beta = state.beta();
        let mut record = StateRecord {
            beta,
            controller: None,
            population: Vec::new(),
            learned: None,
        };
        match state {
            WeightingState::Fixed { .. } => {}
            WeightingState::Policy(controller) => record.controller = Some(*controller),
            WeightingState::Genetic { population, .. } => record.population = population,
            WeightingState::Gradient(learned) => record.learned = Some(learned),
        }
        record
    }
}

impl TryFrom<StateRecord> for WeightingState {
    type Error = String;

    fn try_from(record: StateRecord) -> std::result::Result<Self, String> {
        let parts = (
            record.controller,
            record.population.is_empty(),
            record.learned,
        );
        match parts {
            (None, true, None) => Ok(WeightingState::Fixed { beta: record.beta }),
            (Some(controller), true, None) => Ok(WeightingState::Policy(Box::new(controller))),
            (None, false, None) => Ok(WeightingState::Genetic {
                beta: record.beta,
                population: record.population,
            }),
            (None, true, Some(learned)) => Ok(WeightingState::Gradient(learned)),
            _ => Err(
                "a weighting state holds at most one of controller, population and learned".into(),
            ),
        }
    }
}

/// β and its Adam moments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedBeta {
    pub beta: [f64; LAYERS],
    pub first: [f64; LAYERS],
    pub second: [f64; LAYERS],
    pub steps: u64,
}

impl LearnedBeta {
    pub fn new(beta: [f64; LAYERS]) -> Self {
        LearnedBeta {
            beta,
            first: [0.0; LAYERS],
            second: [0.0; LAYERS],
            steps: 0,
        }
    }

    pub fn alpha(&self) -> [f64; LAYERS] {
        softmax(&self.beta)
    }

    /// One Adam step with burn's ε, which the network's Adam uses.
    pub fn step(&mut self, grad: [f64; LAYERS], learning_rate: f64) {
        adam::step(
            &mut self.beta,
            &grad,
            &mut self.first,
            &mut self.second,
            &mut self.steps,
            learning_rate,
            adam::EPSILON_BURN,
        );
    }
}

/// One line of `weighting.jsonl`: what one auto-weighted (or, for `gradient`, learning) epoch
/// decided, tagged by the weighting's kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "weighting", rename_all = "snake_case")]
pub enum WeightingLine {
    Das(controller::EpochRecord),
    Norl(controller::EpochRecord),
    Genetic(GeneticRecord),
    Gradient(GradientRecord),
}

impl WeightingLine {
    /// Number the line by the run's epoch (1-based).
    pub fn set_epoch(&mut self, epoch: u64) {
        match self {
            WeightingLine::Das(r) | WeightingLine::Norl(r) => r.epoch = epoch,
            WeightingLine::Genetic(r) => r.epoch = epoch,
            WeightingLine::Gradient(r) => r.epoch = epoch,
        }
    }
}

/// One generation of the genetic search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneticRecord {
    pub epoch: u64,
    pub samples: Vec<GeneticSample>,
    /// Indices of population members that reported no score.
    pub missing: Vec<usize>,
    pub chosen: usize,
    /// β of the next parent.
    pub beta: [f64; LAYERS],
    pub next_population: Vec<[f64; LAYERS]>,
}

/// One scored member of a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneticSample {
    pub index: usize,
    pub beta: [f64; LAYERS],
    pub alpha: [f64; LAYERS],
    pub dice: f64,
}

/// β and α after an epoch of the `gradient` comparator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GradientRecord {
    pub epoch: u64,
    pub beta: [f64; LAYERS],
    pub alpha: [f64; LAYERS],
}

/// What closing an auto-weighted epoch decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Conclusion {
    /// The state the next epoch starts from.
    pub state: WeightingState,
    /// Index of the child that becomes the parent.
    pub chosen: usize,
    /// The epoch's line for `weighting.jsonl` (numbered by the caller).
    pub line: WeightingLine,
}

/// One child to train in an auto-weighted epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub index: usize,
    pub beta: [f64; LAYERS],
    pub alpha: [f64; LAYERS],
    /// The policy's moves, for `das` and `norl`.
    pub actions: Option<[usize; LAYERS]>,
}

/// A trained child's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    pub index: usize,
    pub dice: f64,
}

impl WeightingConfig {
    /// Whether `epochs_fixed` means anything: the searches' and `gradient`'s warm-up.
    pub fn has_warmup(&self) -> bool {
        self.is_search() || self.kind == WeightingKind::Gradient
    }

    /// Whether epoch `epoch` (0-based) is in the fixed warm-up.
    pub fn in_warmup(&self, epoch: u64) -> bool {
        self.has_warmup() && epoch < self.epochs_fixed
    }

    pub fn is_search(&self) -> bool {
        matches!(
            self.kind,
            WeightingKind::Norl | WeightingKind::Genetic | WeightingKind::Das
        )
    }

    /// These settings for `kind`, with the fields `kind` does not read set to their defaults:
    /// how one shared section (a grid's `weighting`) serves methods of several kinds.
    pub fn for_kind(&self, kind: WeightingKind) -> WeightingConfig {
        let d = WeightingConfig::default();
        let mut out = WeightingConfig {
            kind,
            ..self.clone()
        };
        if !out.is_search() {
            // A grid's gradient comparator takes the warm-up only when its method asks.
            out.epochs_fixed = d.epochs_fixed;
            out.samples = d.samples;
            out.child_batches = d.child_batches;
        }
        if !out.has_warmup() {
            out.warmup_alpha = d.warmup_alpha;
        }
        if !matches!(kind, WeightingKind::Das | WeightingKind::Norl) {
            out.controller = ControllerConfig {
                initial_beta: self.controller.initial_beta,
                ..d.controller
            };
        }
        if kind != WeightingKind::Genetic {
            out.genetic = d.genetic;
        }
        if kind != WeightingKind::Decay {
            out.decay_rate = d.decay_rate;
        }
        if kind != WeightingKind::Fixed {
            out.alpha = None;
        }
        out
    }

    /// Records in `weighting.jsonl` after `epochs` epochs: one per auto-weighted epoch of a
    /// search, one per epoch of `gradient`.
    pub fn logged_epochs(&self, epochs: u64) -> u64 {
        match self.kind {
            _ if self.has_warmup() => epochs.saturating_sub(self.epochs_fixed),
            _ => 0,
        }
    }

    /// Whether epoch `epoch` (0-based) is auto-weighted.
    pub fn is_auto(&self, epoch: u64) -> bool {
        self.is_search() && epoch >= self.epochs_fixed
    }

    /// Checks the fields the kind uses, naming them.
    pub fn validate(&self, epochs: u64) -> Result<()> {
        let bad = |field: &str, problem: String| {
            Err(Error::invalid(format!("weighting.{field}"), problem))
        };
        match self.kind {
            WeightingKind::Fixed => match self.alpha {
                None => return bad("alpha", "`fixed` needs four weights".into()),
                Some(a)
                    if a.iter().any(|v| !v.is_finite() || *v < 0.0)
                        || a.iter().sum::<f64>() <= 0.0 =>
                {
                    return bad(
                        "alpha",
                        format!("{a:?}: need non-negative weights, not all zero"),
                    )
                }
                Some(a) if (a.iter().sum::<f64>() - 1.0).abs() > 1e-6 => {
                    return bad(
                        "alpha",
                        format!(
                            "{a:?} sums to {}; the weights must sum to 1 (Eq. 4)",
                            a.iter().sum::<f64>()
                        ),
                    )
                }
                _ => {}
            },
            WeightingKind::Decay
                if !(self.decay_rate.is_finite() && (0.0..=1.0).contains(&self.decay_rate)) =>
            {
                return bad("decay_rate", "must lie in [0, 1]".into());
            }
            _ => {}
        }
        if self.alpha.is_some() && self.kind != WeightingKind::Fixed {
            return bad("alpha", "only `fixed` takes weights".into());
        }
        // Fields the kind would ignore are refused, so a config never says more than it does.
        let defaults = WeightingConfig::default();
        let kind = serde_json::to_value(self.kind).unwrap_or_default();
        let unused = |field: &str, used_by: &str| {
            bad(
                field,
                format!("is not used by {kind}; only {used_by} take it"),
            )
        };
        if self.kind != WeightingKind::Decay && self.decay_rate != defaults.decay_rate {
            return unused("decay_rate", "`decay`");
        }
        if !self.has_warmup() && self.epochs_fixed != defaults.epochs_fixed {
            return unused("epochs_fixed", "`norl`, `genetic`, `das` and `gradient`");
        }
        if !self.has_warmup() && self.warmup_alpha != defaults.warmup_alpha {
            return unused("warmup_alpha", "`norl`, `genetic`, `das` and `gradient`");
        }
        if !self.is_search() && self.child_batches != defaults.child_batches {
            return unused("child_batches", "`norl`, `genetic` and `das`");
        }
        if let WarmupAlpha::Given(a) = self.warmup_alpha {
            if a.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return bad("warmup_alpha", format!("{a:?}: need non-negative weights"));
            }
            if (a.iter().sum::<f64>() - 1.0).abs() > 1e-6 {
                return bad(
                    "warmup_alpha",
                    format!(
                        "{a:?} sums to {}; the weights must sum to 1 (Eq. 4)",
                        a.iter().sum::<f64>()
                    ),
                );
            }
        }
        if self.kind == WeightingKind::Gradient && self.epochs_fixed >= epochs {
            return bad(
                "epochs_fixed",
                format!(
                    "{} leaves none of the {epochs} epochs to learn α in",
                    self.epochs_fixed
                ),
            );
        }
        if !self.is_search() && self.samples != defaults.samples {
            return unused("samples", "`norl`, `genetic` and `das`");
        }
        if self.kind != WeightingKind::Genetic && self.genetic != defaults.genetic {
            return unused("genetic", "`genetic`");
        }
        if !matches!(self.kind, WeightingKind::Das | WeightingKind::Norl)
            && self.controller
                != (ControllerConfig {
                    initial_beta: self.controller.initial_beta,
                    ..defaults.controller.clone()
                })
        {
            return unused(
                "controller",
                "`das` and `norl` (all kinds read `controller.initial_beta`)",
            );
        }
        if self.is_search() {
            if self.samples == 0 {
                return bad("samples", "must be at least 1".into());
            }
            if self.kind == WeightingKind::Genetic && self.samples < 2 {
                return bad("samples", "a genetic population needs at least 2".into());
            }
            if self.epochs_fixed >= epochs {
                return bad(
                    "epochs_fixed",
                    format!(
                        "{} leaves none of the {epochs} epochs to auto-weight",
                        self.epochs_fixed
                    ),
                );
            }
        }
        if !(self.beta_jitter.is_finite() && self.beta_jitter >= 0.0) {
            return bad("beta_jitter", "must be a non-negative number".into());
        }
        let g = &self.genetic;
        if !(0.0..=1.0).contains(&g.mutation_rate) {
            return bad("genetic.mutation_rate", "must lie in [0, 1]".into());
        }
        if !(g.mutation_sd.is_finite()
            && g.mutation_sd >= 0.0
            && g.initial_sd.is_finite()
            && g.initial_sd >= 0.0)
        {
            return bad(
                "genetic",
                "standard deviations must be non-negative numbers".into(),
            );
        }
        self.controller.validate().map_err(|e| match e {
            Error::InvalidArgument { field, problem } => {
                Error::invalid(format!("weighting.{field}"), problem)
            }
            other => other,
        })
    }

    /// The state a run starts from.
    pub fn initial_state(&self, run_seed: u64) -> WeightingState {
        let mut rng = ChaCha8Rng::seed_from_u64(seed::derive(run_seed, "initial-beta", 0));
        let beta: [f64; LAYERS] = std::array::from_fn(|l| {
            let u: f64 = rng.random_range(-1.0..=1.0);
            self.controller.initial_beta[l] + u * self.beta_jitter
        });
        let controller_seed = seed::derive(run_seed, "controller-init", 0);
        match self.kind {
            WeightingKind::Das => WeightingState::Policy(Box::new(ControllerState {
                beta,
                ..controller::init(&self.controller, controller_seed)
            })),
            WeightingKind::Norl => WeightingState::Policy(Box::new(ControllerState {
                beta,
                theta: [[0.0; ACTIONS]; LAYERS],
                ..controller::init(&self.controller, controller_seed)
            })),
            WeightingKind::Genetic => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed::derive(run_seed, "population", 0));
                let normal = Normal::new(0.0, self.genetic.initial_sd).expect("validated sd");
                let population = (0..self.samples)
                    .map(|j| {
                        if j == 0 {
                            beta
                        } else {
                            std::array::from_fn(|l| beta[l] + normal.sample(&mut rng))
                        }
                    })
                    .collect();
                WeightingState::Genetic { beta, population }
            }
            WeightingKind::Gradient => WeightingState::Gradient(LearnedBeta::new(beta)),
            WeightingKind::Equal | WeightingKind::Fixed | WeightingKind::Decay => {
                WeightingState::Fixed { beta }
            }
        }
    }

    /// α for a fixed-weight epoch (`epoch` 0-based).
    pub fn fixed_alpha(&self, state: &WeightingState, epoch: u64) -> [f64; LAYERS] {
        match self.kind {
            WeightingKind::Equal => [0.25; LAYERS],
            WeightingKind::Fixed => self.alpha.expect("validated: fixed has alpha"),
            WeightingKind::Decay => {
                let hidden = 0.25 * self.decay_rate.powi(epoch.min(i32::MAX as u64) as i32);
                [hidden, hidden, hidden, 1.0 - 3.0 * hidden]
            }
            WeightingKind::Norl
            | WeightingKind::Genetic
            | WeightingKind::Das
            | WeightingKind::Gradient => match self.warmup_alpha {
                WarmupAlpha::SoftmaxBeta => softmax(&state.beta()),
                WarmupAlpha::Equal => [0.25; LAYERS],
                WarmupAlpha::Given(alpha) => alpha,
            },
        }
    }

    /// The children of an auto-weighted epoch, reproducible from `epoch_seed`.
    pub fn candidates(&self, state: &WeightingState, epoch_seed: u64) -> Vec<Candidate> {
        match state {
            WeightingState::Policy(controller) => {
                controller::sample(controller, &self.controller, self.samples, epoch_seed)
                    .into_iter()
                    .map(|s| Candidate {
                        index: s.index,
                        beta: s.beta,
                        alpha: s.alpha,
                        actions: Some(s.actions),
                    })
                    .collect()
            }
            WeightingState::Genetic { population, .. } => population
                .iter()
                .enumerate()
                .map(|(index, beta)| Candidate {
                    index,
                    beta: *beta,
                    alpha: softmax(beta),
                    actions: None,
                })
                .collect(),
            WeightingState::Fixed { .. } | WeightingState::Gradient(_) => Vec::new(),
        }
    }

    /// Closes an auto-weighted epoch from the children's scores (any non-empty subset of the
    /// candidates): the next state, the child that becomes the parent, and the epoch's record.
    /// Children absent from `scores` (failed, diverged or lost) are recorded as missing.
    pub fn conclude(
        &self,
        state: &WeightingState,
        candidates: &[Candidate],
        scores: &[Score],
        epoch_seed: u64,
    ) -> Result<Conclusion> {
        let scored: Vec<(&Candidate, f64)> = scores
            .iter()
            .map(|s| {
                candidates
                    .iter()
                    .find(|c| c.index == s.index)
                    .map(|c| (c, s.dice))
                    .ok_or_else(|| {
                        Error::Internal(format!("a score for unknown sample {}", s.index))
                    })
            })
            .collect::<Result<_>>()?;
        match state {
            WeightingState::Policy(controller) => {
                self.conclude_policy(controller, candidates.len(), &scored)
            }
            WeightingState::Genetic { population, .. } => {
                self.next_generation(population.len(), &scored, epoch_seed)
            }
            WeightingState::Fixed { .. } | WeightingState::Gradient(_) => Err(Error::Internal(
                format!("{:?} has no auto-weighted epochs", self.kind),
            )),
        }
    }

    /// REINFORCE (`das`) or selection alone (`norl`).
    fn conclude_policy(
        &self,
        controller: &ControllerState,
        drawn: usize,
        scored: &[(&Candidate, f64)],
    ) -> Result<Conclusion> {
        let results: Vec<SampleResult> = scored
            .iter()
            .map(|(c, dice)| SampleResult {
                sample: controller::sample_with(
                    controller,
                    &self.controller,
                    c.index,
                    c.actions.expect("policy candidates have moves"),
                ),
                dice: *dice,
            })
            .collect();
        let (next, record) = match self.kind {
            // No policy learning: only the best child is kept.
            WeightingKind::Norl => {
                controller::select_best(controller, &self.controller, drawn, &results)?
            }
            _ => controller::update(controller, &self.controller, drawn, &results)?,
        };
        let chosen = record.chosen;
        let line = match self.kind {
            WeightingKind::Norl => WeightingLine::Norl(record),
            _ => WeightingLine::Das(record),
        };
        Ok(Conclusion {
            state: WeightingState::Policy(Box::new(next)),
            chosen,
            line,
        })
    }

    /// Selection, crossover and mutation on the population's β.
    fn next_generation(
        &self,
        drawn: usize,
        scored: &[(&Candidate, f64)],
        epoch_seed: u64,
    ) -> Result<Conclusion> {
        if scored.is_empty() {
            return Err(Error::training(format!(
                "none of the {drawn} members of the genetic population reported a score"
            )));
        }
        let mut ranked: Vec<&(&Candidate, f64)> = scored.iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.index.cmp(&b.0.index)));
        let survivors: Vec<[f64; LAYERS]> = ranked
            .iter()
            .take(self.samples.div_ceil(2).min(ranked.len()))
            .map(|(c, _)| c.beta)
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed::derive(epoch_seed, "genetic", 0));
        let normal = Normal::new(0.0, self.genetic.mutation_sd).expect("validated sd");
        let mut population = survivors.clone();
        while population.len() < self.samples {
            let a = survivors[rng.random_range(0..survivors.len())];
            let b = survivors[rng.random_range(0..survivors.len())];
            let child = std::array::from_fn(|l| {
                let gene = if rng.random_bool(0.5) { a[l] } else { b[l] };
                if rng.random_bool(self.genetic.mutation_rate) {
                    gene + normal.sample(&mut rng)
                } else {
                    gene
                }
            });
            population.push(child);
        }
        let best = ranked[0].0;
        let line = WeightingLine::Genetic(GeneticRecord {
            epoch: 0,
            samples: scored
                .iter()
                .map(|(c, dice)| GeneticSample {
                    index: c.index,
                    beta: c.beta,
                    alpha: c.alpha,
                    dice: *dice,
                })
                .collect(),
            missing: (0..drawn)
                .filter(|i| !scored.iter().any(|(c, _)| c.index == *i))
                .collect(),
            chosen: best.index,
            beta: best.beta,
            next_population: population.clone(),
        });
        Ok(Conclusion {
            state: WeightingState::Genetic {
                beta: best.beta,
                population,
            },
            chosen: best.index,
            line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: WeightingKind) -> WeightingConfig {
        WeightingConfig {
            kind,
            samples: 4,
            epochs_fixed: 1,
            ..WeightingConfig::default()
        }
    }

    #[test]
    fn fixed_weights_per_kind_and_epoch() {
        let beta0 = softmax(&[0.5, 0.5, 0.5, 1.0]);
        let fixed = WeightingConfig {
            alpha: Some([0.1, 0.2, 0.3, 0.4]),
            ..config(WeightingKind::Fixed)
        };
        let decay = WeightingConfig {
            decay_rate: 0.5,
            ..config(WeightingKind::Decay)
        };
        for (weighting, epoch, expected) in [
            (config(WeightingKind::Equal), 7, [0.25; 4]),
            (fixed, 3, [0.1, 0.2, 0.3, 0.4]),
            (decay.clone(), 0, [0.25, 0.25, 0.25, 0.25]),
            (decay, 2, [0.0625, 0.0625, 0.0625, 0.8125]),
            (config(WeightingKind::Das), 0, beta0),
            (config(WeightingKind::Genetic), 0, beta0),
        ] {
            let state = weighting.initial_state(1);
            assert_eq!(
                weighting.fixed_alpha(&state, epoch),
                expected,
                "{:?}",
                weighting.kind
            );
        }
    }

    #[test]
    fn ensemble_members_start_from_jittered_beta_within_bounds() {
        let weighting = WeightingConfig {
            beta_jitter: 0.1,
            ..config(WeightingKind::Das)
        };
        let (a, b) = (weighting.initial_state(1), weighting.initial_state(2));
        assert_ne!(a.beta(), b.beta());
        assert_eq!(a, weighting.initial_state(1));
        for (beta, start) in a.beta().iter().zip([0.5, 0.5, 0.5, 1.0]) {
            assert!((beta - start).abs() <= 0.1);
        }
        assert_eq!(
            config(WeightingKind::Das).initial_state(9).beta(),
            [0.5, 0.5, 0.5, 1.0]
        );
    }

    #[test]
    fn norl_keeps_its_uniform_policy_and_das_learns() {
        for (kind, learns) in [(WeightingKind::Norl, false), (WeightingKind::Das, true)] {
            let weighting = config(kind);
            let state = weighting.initial_state(3);
            let candidates = weighting.candidates(&state, 11);
            assert_eq!(candidates.len(), 4);
            let scores: Vec<Score> = candidates
                .iter()
                .map(|c| Score {
                    index: c.index,
                    dice: 0.1 * c.index as f64,
                })
                .collect();
            let done = weighting
                .conclude(&state, &candidates, &scores, 11)
                .unwrap();
            assert_eq!(done.chosen, 3, "best Dice");
            assert_eq!(done.state.beta(), candidates[3].beta);
            let theta = |s: &WeightingState| match s {
                WeightingState::Policy(c) => c.theta,
                other => panic!("not a policy state: {other:?}"),
            };
            let (before, after) = (theta(&state), theta(&done.state));
            assert_eq!(before != after, learns, "{kind:?}");
            let record = match (&done.line, kind) {
                (WeightingLine::Norl(r), WeightingKind::Norl) => r,
                (WeightingLine::Das(r), WeightingKind::Das) => r,
                (line, _) => panic!("{kind:?} wrote {line:?}"),
            };
            if kind == WeightingKind::Norl {
                assert_eq!(before, [[0.0; ACTIONS]; LAYERS]);
                assert_eq!(record.theta, [[0.0; ACTIONS]; LAYERS]);
            }
            assert_eq!(record.samples.len(), 4);
        }
    }

    /// A state is saved in one shape whatever its kind, reads back to the same variant, and
    /// a line carries its kind as the `weighting` tag.
    #[test]
    fn states_and_lines_round_trip_through_json() {
        for kind in [
            WeightingKind::Equal,
            WeightingKind::Das,
            WeightingKind::Norl,
            WeightingKind::Genetic,
            WeightingKind::Gradient,
        ] {
            let state = config(kind).initial_state(4);
            let json = serde_json::to_value(&state).unwrap();
            for field in ["beta", "controller", "population", "learned"] {
                assert!(json.get(field).is_some(), "{kind:?} lacks {field}: {json}");
            }
            let back: WeightingState = serde_json::from_value(json).unwrap();
            assert_eq!(back, state);
        }
        let line = WeightingLine::Gradient(GradientRecord {
            epoch: 3,
            beta: [0.0; 4],
            alpha: [0.25; 4],
        });
        let text = serde_json::to_string(&line).unwrap();
        assert!(
            text.starts_with(r#"{"weighting":"gradient","epoch":3"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<WeightingLine>(&text).unwrap(), line);
        let extra = text.replace(r#""epoch":3"#, r#""epoch":3,"surprise":1"#);
        assert!(serde_json::from_str::<WeightingLine>(&extra).is_err());
    }

    /// β of `gradient` takes burn's ε, like the network it is trained beside.
    #[test]
    fn learned_beta_steps_with_burns_epsilon() {
        let mut learned = LearnedBeta::new([0.5, 0.5, 0.5, 1.0]);
        learned.step([0.0, 0.0, 0.0, 1e-5], 0.01);
        // First step: lr·g/(|g| + ε) = 0.01·1e-5/(1e-5 + 1e-5).
        assert!(
            (learned.beta[3] - (1.0 - 0.005)).abs() < 1e-12,
            "{learned:?}"
        );
        assert_eq!(learned.beta[..3], [0.5; 3]);
        assert_eq!(learned.steps, 1);
        assert_eq!(learned.alpha(), softmax(&learned.beta));
    }

    #[test]
    fn genetic_generation_keeps_the_better_half_and_is_reproducible() {
        let weighting = config(WeightingKind::Genetic);
        let state = weighting.initial_state(5);
        let population = |s: &WeightingState| match s {
            WeightingState::Genetic { population, .. } => population.clone(),
            other => panic!("not a genetic state: {other:?}"),
        };
        assert_eq!(population(&state).len(), 4);
        let candidates = weighting.candidates(&state, 8);
        let dice = [0.2, 0.9, 0.5, 0.1];
        let scores: Vec<Score> = dice
            .iter()
            .enumerate()
            .map(|(index, &dice)| Score { index, dice })
            .collect();
        let done = weighting.conclude(&state, &candidates, &scores, 8).unwrap();
        assert_eq!(done.chosen, 1);
        assert_eq!(done.state.beta(), candidates[1].beta);
        let next = population(&done.state);
        assert_eq!(next.len(), 4);
        // Survivors, best first: children 1 and 2.
        assert_eq!(next[0], candidates[1].beta);
        assert_eq!(next[1], candidates[2].beta);
        let again = weighting.conclude(&state, &candidates, &scores, 8).unwrap();
        assert_eq!(again, done);
        // With one score missing the generation still forms, from what was reported, and the
        // record names the missing member.
        let partial = weighting
            .conclude(&state, &candidates, &scores[..3], 8)
            .unwrap();
        assert_eq!((partial.chosen, population(&partial.state).len()), (1, 4));
        match &partial.line {
            WeightingLine::Genetic(r) => assert_eq!(r.missing, vec![3]),
            line => panic!("{line:?}"),
        }
        let none = weighting.conclude(&state, &candidates, &[], 8).unwrap_err();
        assert_eq!(none.exit_code(), crate::error::EXIT_TRAINING, "{none}");
    }
}
