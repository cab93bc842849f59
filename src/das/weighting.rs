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
//! The search kinds (`norl`, `genetic`, `das`) train `epochs_fixed` epochs with α = softmax(β₀)
//! first, then every further epoch is auto-weighted: K children of the parent, each trained one
//! epoch with its own α, the best by validation Dice becoming the parent. β₀ is
//! `controller.initial_beta`, moved per layer by a uniform draw in ±`beta_jitter` (seeded by the
//! run seed): ensemble members differ in that draw and in their seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

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

/// Which validation Dice is a child's score (the reward's ε).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoreDice {
    /// Mean over validation slices, a slice empty in both counting 1 (the released code).
    #[default]
    PerSlice,
    /// Mean over validation cases of the Dice of each case's slices together.
    PerCase,
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

/// The `weighting` section of a train config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeightingConfig {
    pub kind: WeightingKind,
    /// α for `fixed`.
    pub alpha: Option<[f64; LAYERS]>,
    /// Per-epoch factor of the hidden heads' weight for `decay`.
    pub decay_rate: f64,
    /// Epochs with α = softmax(β₀) before the auto-weighted ones (search kinds).
    pub epochs_fixed: u64,
    /// K: children per auto-weighted epoch (search kinds).
    pub samples: usize,
    pub score: ScoreDice,
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
            samples: 10,
            score: ScoreDice::default(),
            beta_jitter: 0.0,
            controller: ControllerConfig::default(),
            genetic: GeneticConfig::default(),
        }
    }
}

/// The search's state between epochs, saved in every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightingState {
    /// The parent's β.
    pub beta: [f64; LAYERS],
    /// `das`: the controller; `norl`: a controller whose policy stays uniform.
    pub controller: Option<ControllerState>,
    /// `genetic`: the population to train next.
    pub population: Vec<[f64; LAYERS]>,
    /// `gradient`: β with its optimiser moments.
    #[serde(default)]
    pub learned: Option<LearnedBeta>,
}

/// β and its Adam moments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

    /// One Adam step (β₁ 0.9, β₂ 0.999, ε 1e-5: burn's defaults, which the network's Adam uses).
    pub fn step(&mut self, grad: [f64; LAYERS], learning_rate: f64) {
        self.steps += 1;
        let t = self.steps.min(i32::MAX as u64) as i32;
        for (l, g) in grad.into_iter().enumerate() {
            self.first[l] = 0.9 * self.first[l] + 0.1 * g;
            self.second[l] = 0.999 * self.second[l] + 0.001 * g * g;
            let m_hat = self.first[l] / (1.0 - 0.9f64.powi(t));
            let v_hat = self.second[l] / (1.0 - 0.999f64.powi(t));
            self.beta[l] -= learning_rate * m_hat / (v_hat.sqrt() + 1e-5);
        }
    }
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
    pub fn is_search(&self) -> bool {
        matches!(
            self.kind,
            WeightingKind::Norl | WeightingKind::Genetic | WeightingKind::Das
        )
    }

    /// Records in `weighting.jsonl` after `epochs` epochs: one per auto-weighted epoch of a
    /// search, one per epoch of `gradient`.
    pub fn logged_epochs(&self, epochs: u64) -> u64 {
        match self.kind {
            WeightingKind::Gradient => epochs,
            _ if self.is_search() => epochs.saturating_sub(self.epochs_fixed),
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
        if !self.is_search() && self.epochs_fixed != defaults.epochs_fixed {
            return unused("epochs_fixed", "`norl`, `genetic` and `das`");
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
        let controller = match self.kind {
            WeightingKind::Das => Some(ControllerState {
                beta,
                ..controller::init(&self.controller, controller_seed)
            }),
            WeightingKind::Norl => Some(ControllerState {
                beta,
                theta: [[0.0; ACTIONS]; LAYERS],
                ..controller::init(&self.controller, controller_seed)
            }),
            _ => None,
        };
        let population = if self.kind == WeightingKind::Genetic {
            let mut rng = ChaCha8Rng::seed_from_u64(seed::derive(run_seed, "population", 0));
            let normal = Normal::new(0.0, self.genetic.initial_sd).expect("validated sd");
            (0..self.samples)
                .map(|j| {
                    if j == 0 {
                        beta
                    } else {
                        std::array::from_fn(|l| beta[l] + normal.sample(&mut rng))
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        WeightingState {
            beta,
            controller,
            population,
            learned: (self.kind == WeightingKind::Gradient).then(|| LearnedBeta::new(beta)),
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
            | WeightingKind::Gradient => softmax(&state.beta),
        }
    }

    /// The children of an auto-weighted epoch, reproducible from `epoch_seed`.
    pub fn candidates(&self, state: &WeightingState, epoch_seed: u64) -> Vec<Candidate> {
        match (&state.controller, self.kind) {
            (Some(controller), _) => {
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
            (None, WeightingKind::Genetic) => state
                .population
                .iter()
                .enumerate()
                .map(|(index, beta)| Candidate {
                    index,
                    beta: *beta,
                    alpha: softmax(beta),
                    actions: None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Closes an auto-weighted epoch from the children's scores (any non-empty subset of the
    /// candidates): the next state, the index of the child that becomes the parent, and the
    /// epoch's record for `weighting.jsonl`.
    pub fn conclude(
        &self,
        state: &WeightingState,
        candidates: &[Candidate],
        scores: &[Score],
        epoch_seed: u64,
    ) -> Result<(WeightingState, usize, serde_json::Value)> {
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
        match (&state.controller, self.kind) {
            (Some(controller), kind) => {
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
                let conclude = match kind {
                    // No policy learning: only the best child is kept.
                    WeightingKind::Norl => controller::select_best,
                    _ => controller::update,
                };
                let (next, record) =
                    conclude(controller, &self.controller, candidates.len(), &results)?;
                let chosen = record.chosen;
                let mut record = to_json(&record)?;
                record["weighting"] = serde_json::json!(kind);
                Ok((
                    WeightingState {
                        beta: next.beta,
                        controller: Some(next),
                        population: Vec::new(),
                        learned: None,
                    },
                    chosen,
                    record,
                ))
            }
            (None, WeightingKind::Genetic) => self.next_generation(state, &scored, epoch_seed),
            _ => Err(Error::Internal(format!(
                "{:?} has no auto-weighted epochs",
                self.kind
            ))),
        }
    }

    /// Selection, crossover and mutation on the population's β.
    fn next_generation(
        &self,
        state: &WeightingState,
        scored: &[(&Candidate, f64)],
        epoch_seed: u64,
    ) -> Result<(WeightingState, usize, serde_json::Value)> {
        if scored.is_empty() {
            return Err(Error::invalid(
                "genetic generation",
                "no child of the population reported a score",
            ));
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
        let record = serde_json::json!({
            "weighting": WeightingKind::Genetic,
            "samples": scored.iter().map(|(c, dice)| serde_json::json!({
                "index": c.index, "beta": c.beta, "alpha": c.alpha, "dice": dice,
            })).collect::<Vec<_>>(),
            "missing": state.population.len().saturating_sub(scored.len()),
            "chosen": best.index,
            "beta": best.beta,
            "next_population": population,
        });
        Ok((
            WeightingState {
                beta: best.beta,
                controller: None,
                population,
                learned: None,
            },
            best.index,
            record,
        ))
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value)
        .map_err(|e| Error::Internal(format!("encoding a weighting record: {e}")))
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
        assert_ne!(a.beta, b.beta);
        assert_eq!(a, weighting.initial_state(1));
        for (beta, start) in a.beta.iter().zip([0.5, 0.5, 0.5, 1.0]) {
            assert!((beta - start).abs() <= 0.1);
        }
        assert_eq!(
            config(WeightingKind::Das).initial_state(9).beta,
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
            let (next, chosen, record) = weighting
                .conclude(&state, &candidates, &scores, 11)
                .unwrap();
            assert_eq!(chosen, 3, "best Dice");
            assert_eq!(next.beta, candidates[3].beta);
            let before = state.controller.unwrap().theta;
            let after = next.controller.unwrap().theta;
            assert_eq!(before != after, learns, "{kind:?}");
            if kind == WeightingKind::Norl {
                assert_eq!(before, [[0.0; ACTIONS]; LAYERS]);
                let zeros = [[0.0; ACTIONS]; LAYERS];
                assert_eq!(record["theta"], serde_json::json!(zeros));
            }
            assert_eq!(record["samples"].as_array().unwrap().len(), 4);
        }
    }

    /// Adam's first step moves each β by the learning rate against its gradient's sign
    /// (m̂ = g, v̂ = g², so the step is lr·g/(|g| + ε)).
    #[test]
    fn learned_beta_first_adam_step_by_hand() {
        let mut learned = LearnedBeta::new([0.5, 0.5, 0.5, 1.0]);
        learned.step([2.0, -0.5, 0.0, 1e-3], 0.01);
        let expected = [
            0.5 - 0.01 * 2.0 / (2.0 + 1e-5),
            0.5 + 0.01 * 0.5 / (0.5 + 1e-5),
            0.5,
            1.0 - 0.01 * 1e-3 / (1e-3 + 1e-5),
        ];
        for (b, e) in learned.beta.iter().zip(expected) {
            assert!((b - e).abs() < 1e-12, "{:?}", learned.beta);
        }
        assert_eq!(learned.steps, 1);
        assert_eq!(learned.alpha(), softmax(&learned.beta));
    }

    #[test]
    fn genetic_generation_keeps_the_better_half_and_is_reproducible() {
        let weighting = config(WeightingKind::Genetic);
        let state = weighting.initial_state(5);
        assert_eq!(state.population.len(), 4);
        let candidates = weighting.candidates(&state, 8);
        let dice = [0.2, 0.9, 0.5, 0.1];
        let scores: Vec<Score> = dice
            .iter()
            .enumerate()
            .map(|(index, &dice)| Score { index, dice })
            .collect();
        let (next, chosen, _) = weighting.conclude(&state, &candidates, &scores, 8).unwrap();
        assert_eq!(chosen, 1);
        assert_eq!(next.beta, candidates[1].beta);
        assert_eq!(next.population.len(), 4);
        // Survivors, best first: children 1 and 2.
        assert_eq!(next.population[0], candidates[1].beta);
        assert_eq!(next.population[1], candidates[2].beta);
        let again = weighting
            .conclude(&state, &candidates, &scores, 8)
            .unwrap()
            .0;
        assert_eq!(again, next);
        // With one score missing the generation still forms, from what was reported.
        let (partial, chosen, _) = weighting
            .conclude(&state, &candidates, &scores[..3], 8)
            .unwrap();
        assert_eq!((chosen, partial.population.len()), (1, 4));
        assert!(weighting.conclude(&state, &candidates, &[], 8).is_err());
    }
}
