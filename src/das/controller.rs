//! The REINFORCE controller of deep auto-weighted supervision: a policy over small moves of the
//! supervision logits β, sampled K times per auto-weighted epoch and updated from the validation
//! Dice the K trained children reach.
//!
//! - Policy: per supervision layer l, logits θ_l ∈ R³ and π_l = softmax(θ_l) over the moves
//!   Δβ ∈ {−step, 0, +step}; the layers draw independently, so the joint probability of a
//!   sample is `g = Π_l π_l(a_l)` and `log g = Σ_l log π_l(a_l)` (Eq. 5 → Eq. 6).
//! - A sample j: β_j = β + Δβ_j, α_j = softmax(β_j), the deep-supervision weights its child
//!   trains with.
//! - Reward `R_j = (ε_j + 0.04)³` for the child's validation Dice ε_j (Eq. 7).
//! - Baseline `B_t = (1 − γ)·B_{t−1} + γ·mean_j R_j` (Eq. 9); at the first update `B_{t−1}` is
//!   taken to be that epoch's mean reward, as the released code does (the paper leaves B_0 open).
//! - Update (Eq. 8, the ascent of Eq. 6 with the baseline subtracted from the reward): Adam
//!   descends `L(θ) = −(1/K) Σ_j (R_j − B_t) Σ_l log π_l(a_jl)`, whose gradient is
//!   `−(1/K) Σ_j (R_j − B_t)(onehot(a_jl) − π_l)` (K: the results received). The paper writes a
//!   plain step `θ + η·∇`; Adam as that step's optimiser is what the released code uses.
//! - The best child by ε (lowest index on ties) becomes the next parent, β included.
//!
//! Everything here is plain numbers and serialisable: the controller never sees a tensor, so a
//! reducer task on a cluster can run `update` on results gathered from K array tasks.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::adam;
use crate::error::{Error, Result};

/// Supervised layers (deep-supervision heads).
pub const LAYERS: usize = 4;
/// Moves per layer: −step, 0, +step.
pub const ACTIONS: usize = 3;

/// The controller's settings; defaults are the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControllerConfig {
    /// Learning rate of Adam on θ.
    pub learning_rate: f64,
    /// Baseline smoothing γ.
    pub gamma: f64,
    /// Size of a move of β.
    pub step: f64,
    /// Added to the Dice before cubing, in the reward.
    pub reward_offset: f64,
    /// Variance of the normal θ is drawn from.
    pub theta_init_variance: f64,
    /// Initial β.
    pub initial_beta: [f64; LAYERS],
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            learning_rate: 1e-3,
            gamma: 0.99,
            step: 0.15,
            reward_offset: 0.04,
            theta_init_variance: 0.001,
            initial_beta: [0.5, 0.5, 0.5, 1.0],
        }
    }
}

impl ControllerConfig {
    /// Checks every field's domain, naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, problem: &str| {
            Err(Error::InvalidArgument {
                field: format!("controller.{field}"),
                problem: problem.into(),
            })
        };
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate", "must be a positive number");
        }
        if !(0.0..=1.0).contains(&self.gamma) {
            return bad("gamma", "must lie in [0, 1]");
        }
        if !(self.step.is_finite() && self.step > 0.0) {
            return bad("step", "must be a positive number");
        }
        if !self.reward_offset.is_finite() {
            return bad("reward_offset", "must be a number");
        }
        if !(self.theta_init_variance.is_finite() && self.theta_init_variance >= 0.0) {
            return bad("theta_init_variance", "must be a non-negative number");
        }
        if self.initial_beta.iter().any(|b| !b.is_finite()) {
            return bad("initial_beta", "must be four numbers");
        }
        Ok(())
    }
}

/// Adam's moments for θ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adam {
    pub first: [[f64; ACTIONS]; LAYERS],
    pub second: [[f64; ACTIONS]; LAYERS],
    pub steps: u64,
}

/// The controller's whole state between epochs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerState {
    pub theta: [[f64; ACTIONS]; LAYERS],
    pub adam: Adam,
    /// The parent's β.
    pub beta: [f64; LAYERS],
    /// None before the first update.
    pub baseline: Option<f64>,
    /// Auto-weighted epochs completed.
    pub epoch: u64,
    /// One summary per completed update (the full records go to the run's JSON-lines log).
    #[serde(default)]
    pub history: Vec<UpdateSummary>,
}

/// What one update decided, kept in the state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateSummary {
    pub epoch: u64,
    pub mean_reward: f64,
    pub baseline: f64,
    pub best_dice: f64,
    pub chosen: usize,
    pub beta: [f64; LAYERS],
}

/// One draw of the policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub index: usize,
    /// Index into {−step, 0, +step} per layer.
    pub actions: [usize; LAYERS],
    pub beta: [f64; LAYERS],
    pub alpha: [f64; LAYERS],
}

/// What a trained child reports back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleResult {
    pub sample: Sample,
    /// Validation Dice of the network's pathology class.
    pub dice: f64,
}

/// One sample's line in the epoch record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleRecord {
    pub index: usize,
    pub actions: [usize; LAYERS],
    pub delta_beta: [f64; LAYERS],
    pub beta: [f64; LAYERS],
    pub alpha: [f64; LAYERS],
    pub dice: f64,
    pub reward: f64,
}

/// Everything one update did, for the JSON-lines log users read to see whether the policy moves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochRecord {
    /// The auto-weighted epoch this update closes (1-based).
    pub epoch: u64,
    /// θ after the update.
    pub theta: [[f64; ACTIONS]; LAYERS],
    /// π per layer after the update.
    pub policy: [[f64; ACTIONS]; LAYERS],
    /// Entropy of π per layer after the update, in nats (ln 3 ≈ 1.0986 is uniform).
    pub entropy: [f64; LAYERS],
    pub samples: Vec<SampleRecord>,
    /// Indices of drawn samples that reported no result.
    pub missing: Vec<usize>,
    pub baseline: f64,
    pub chosen: usize,
    /// β of the next parent.
    pub beta: [f64; LAYERS],
    pub learning_rate: f64,
}

/// Softmax of a small vector.
pub fn softmax<const N: usize>(v: &[f64; N]) -> [f64; N] {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: [f64; N] = std::array::from_fn(|i| (v[i] - max).exp());
    let sum: f64 = e.iter().sum();
    std::array::from_fn(|i| e[i] / sum)
}

/// ∂/∂θ log softmax(θ)[a] = onehot(a) − softmax(θ): the ∇_θ log p term of Eq. 6 and 8.
pub fn log_prob_gradient(theta: &[f64; ACTIONS], action: usize) -> [f64; ACTIONS] {
    let pi = softmax(theta);
    std::array::from_fn(|i| f64::from(u8::from(i == action)) - pi[i])
}

fn entropy(p: &[f64; ACTIONS]) -> f64 {
    -p.iter()
        .filter(|&&q| q > 0.0)
        .map(|q| q * q.ln())
        .sum::<f64>()
}

/// The reward of a validation Dice (Eq. 7: the cube sharpens the differences between children).
pub fn reward(dice: f64, config: &ControllerConfig) -> f64 {
    (dice + config.reward_offset).powi(3)
}

/// A fresh controller: θ drawn from N(0, variance) with `seed`, β the configured start.
pub fn init(config: &ControllerConfig, seed: u64) -> ControllerState {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0, config.theta_init_variance.sqrt()).expect("validated variance");
    ControllerState {
        theta: std::array::from_fn(|_| std::array::from_fn(|_| normal.sample(&mut rng))),
        adam: Adam {
            first: [[0.0; ACTIONS]; LAYERS],
            second: [[0.0; ACTIONS]; LAYERS],
            steps: 0,
        },
        beta: config.initial_beta,
        baseline: None,
        epoch: 0,
        history: Vec::new(),
    }
}

fn move_of(action: usize, config: &ControllerConfig) -> f64 {
    (action as f64 - 1.0) * config.step
}

/// The sample with these moves from the parent's β.
pub fn sample_with(
    state: &ControllerState,
    config: &ControllerConfig,
    index: usize,
    actions: [usize; LAYERS],
) -> Sample {
    let beta: [f64; LAYERS] = std::array::from_fn(|l| state.beta[l] + move_of(actions[l], config));
    Sample {
        index,
        actions,
        beta,
        alpha: softmax(&beta),
    }
}

/// K draws of the policy, reproducible from `seed`.
pub fn sample(
    state: &ControllerState,
    config: &ControllerConfig,
    k: usize,
    seed: u64,
) -> Vec<Sample> {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let policy: [[f64; ACTIONS]; LAYERS] = std::array::from_fn(|l| softmax(&state.theta[l]));
    (0..k)
        .map(|index| {
            let actions = std::array::from_fn(|l| {
                let u: f64 = rng.random();
                let mut acc = 0.0;
                policy[l]
                    .iter()
                    .position(|&p| {
                        acc += p;
                        u < acc
                    })
                    .unwrap_or(ACTIONS - 1)
            });
            sample_with(state, config, index, actions)
        })
        .collect()
}

/// Closes an auto-weighted epoch: rewards, baseline, one Adam step on θ, and the next parent.
/// `drawn` is how many samples were drawn (to record the missing ones); `results` may hold any
/// number from 1 to `drawn` of them. Returns the new state and the epoch's record.
pub fn update(
    state: &ControllerState,
    config: &ControllerConfig,
    drawn: usize,
    results: &[SampleResult],
) -> Result<(ControllerState, EpochRecord)> {
    conclude_epoch(state, config, drawn, results, true)
}

/// As [`update`] but without the policy step: rewards, baseline and the best child only (the
/// `norl` comparator). θ and Adam's moments stay as they were, in the state and in the record.
pub fn select_best(
    state: &ControllerState,
    config: &ControllerConfig,
    drawn: usize,
    results: &[SampleResult],
) -> Result<(ControllerState, EpochRecord)> {
    conclude_epoch(state, config, drawn, results, false)
}

fn conclude_epoch(
    state: &ControllerState,
    config: &ControllerConfig,
    drawn: usize,
    results: &[SampleResult],
    learn: bool,
) -> Result<(ControllerState, EpochRecord)> {
    if results.is_empty() {
        return Err(Error::training(format!(
            "none of the {drawn} samples of auto-weighted epoch {} reported a result",
            state.epoch + 1
        )));
    }
    for r in results {
        if !(r.dice.is_finite() && (0.0..=1.0).contains(&r.dice)) {
            return Err(Error::InvalidArgument {
                field: format!("dice of sample {}", r.sample.index),
                problem: format!("{} is not a Dice in [0, 1]", r.dice),
            });
        }
    }
    let rewards: Vec<f64> = results.iter().map(|r| reward(r.dice, config)).collect();
    let k = results.len() as f64;
    let mean_reward = rewards.iter().sum::<f64>() / k;
    let previous = state.baseline.unwrap_or(mean_reward);
    // Eq. 9.
    let baseline = (1.0 - config.gamma) * previous + config.gamma * mean_reward;

    // Eq. 8 as a loss to descend: L(θ) = −(1/K) Σ_j (R_j − B) Σ_l log π_l(a_jl).
    let mut grad = [[0.0f64; ACTIONS]; LAYERS];
    for (r, reward) in results.iter().zip(&rewards) {
        let advantage = reward - baseline;
        for (l, g) in grad.iter_mut().enumerate() {
            let d = log_prob_gradient(&state.theta[l], r.sample.actions[l]);
            for (g, d) in g.iter_mut().zip(d) {
                *g -= advantage * d / k;
            }
        }
    }
    let mut next = state.clone();
    if learn {
        adam_step(&mut next, &grad, config.learning_rate);
    }
    let best = results
        .iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| a.dice.total_cmp(&b.dice).then(j.cmp(i)))
        .map(|(i, _)| i)
        .expect("results is not empty");
    let chosen = &results[best].sample;
    next.beta = chosen.beta;
    next.baseline = Some(baseline);
    next.epoch += 1;
    next.history.push(UpdateSummary {
        epoch: next.epoch,
        mean_reward,
        baseline,
        best_dice: results[best].dice,
        chosen: chosen.index,
        beta: next.beta,
    });

    let policy: [[f64; ACTIONS]; LAYERS] = std::array::from_fn(|l| softmax(&next.theta[l]));
    let reported: Vec<usize> = results.iter().map(|r| r.sample.index).collect();
    let record = EpochRecord {
        epoch: next.epoch,
        theta: next.theta,
        policy,
        entropy: std::array::from_fn(|l| entropy(&policy[l])),
        samples: results
            .iter()
            .zip(&rewards)
            .map(|(r, &reward)| SampleRecord {
                index: r.sample.index,
                actions: r.sample.actions,
                delta_beta: std::array::from_fn(|l| move_of(r.sample.actions[l], config)),
                beta: r.sample.beta,
                alpha: r.sample.alpha,
                dice: r.dice,
                reward,
            })
            .collect(),
        missing: (0..drawn).filter(|i| !reported.contains(i)).collect(),
        baseline,
        chosen: chosen.index,
        beta: next.beta,
        learning_rate: config.learning_rate,
    };
    Ok((next, record))
}

/// One Adam step on θ, coordinate by coordinate over the 4 × 3 logits.
fn adam_step(state: &mut ControllerState, grad: &[[f64; ACTIONS]; LAYERS], learning_rate: f64) {
    adam::step(
        state.theta.as_flattened_mut(),
        grad.as_flattened(),
        state.adam.first.as_flattened_mut(),
        state.adam.second.as_flattened_mut(),
        &mut state.adam.steps,
        learning_rate,
        adam::EPSILON_TORCH,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(
        state: &ControllerState,
        config: &ControllerConfig,
        index: usize,
        actions: [usize; 4],
        dice: f64,
    ) -> SampleResult {
        SampleResult {
            sample: sample_with(state, config, index, actions),
            dice,
        }
    }

    #[test]
    fn log_softmax_gradient_matches_finite_differences() {
        let theta = [0.3, -1.2, 0.7];
        for action in 0..ACTIONS {
            let analytic = log_prob_gradient(&theta, action);
            for i in 0..ACTIONS {
                let h = 1e-6;
                let mut up = theta;
                up[i] += h;
                let mut down = theta;
                down[i] -= h;
                let numeric = (softmax(&up)[action].ln() - softmax(&down)[action].ln()) / (2.0 * h);
                assert!(
                    (numeric - analytic[i]).abs() < 1e-8,
                    "∂/∂θ{i} log π({action})"
                );
            }
        }
    }

    /// One update worked by hand: θ = 0 (π uniform), two samples, γ = 0.99, first epoch.
    #[test]
    fn one_update_by_hand() {
        let config = ControllerConfig::default();
        let mut state = init(&config, 1);
        state.theta = [[0.0; 3]; 4];
        let results = [
            result(&state, &config, 0, [2, 1, 1, 0], 0.6),
            result(&state, &config, 1, [0, 1, 1, 2], 0.2),
        ];
        let (next, record) = update(&state, &config, 2, &results).unwrap();
        let (r0, r1) = (0.64f64.powi(3), 0.24f64.powi(3));
        assert!((record.samples[0].reward - r0).abs() < 1e-12);
        // First epoch: B = (1 − γ)·mean + γ·mean = mean.
        let mean = (r0 + r1) / 2.0;
        assert!((record.baseline - mean).abs() < 1e-12);
        // Layer 0: sample 0 took +step (advantage > 0), sample 1 took −step (advantage < 0):
        // the gradient of L on θ_0 is −½[(r0 − B)(e2 − ⅓) + (r1 − B)(e0 − ⅓)], so the first Adam
        // step moves each coordinate by lr against its sign: +step up, −step down, 0 unchanged.
        let lr = config.learning_rate;
        assert!((next.theta[0][2] - lr).abs() < 1e-9, "{:?}", next.theta[0]);
        assert!((next.theta[0][0] + lr).abs() < 1e-9, "{:?}", next.theta[0]);
        assert!(next.theta[0][1].abs() < 1e-9, "{:?}", next.theta[0]);
        // Layers 1 and 2: both samples took 0, and the advantages cancel (they sum to zero).
        assert!(
            next.theta[1].iter().all(|t| t.abs() < 1e-9),
            "{:?}",
            next.theta[1]
        );
        // Parent: sample 0 (best Dice), its β = [0.65, 0.5, 0.5, 0.85].
        assert_eq!(record.chosen, 0);
        let expected_beta = [0.65, 0.5, 0.5, 0.85];
        for (b, e) in next.beta.iter().zip(expected_beta) {
            assert!((b - e).abs() < 1e-12);
        }
        assert_eq!(next.epoch, 1);
        assert!(record.missing.is_empty());
        assert_eq!(next.history.len(), 1);
        assert_eq!(
            (next.history[0].chosen, next.history[0].best_dice),
            (0, 0.6)
        );
    }

    #[test]
    fn missing_samples_are_recorded_and_no_results_is_an_error() {
        let config = ControllerConfig::default();
        let state = init(&config, 2);
        let drawn = sample(&state, &config, 4, 9);
        let results = [
            SampleResult {
                sample: drawn[1].clone(),
                dice: 0.5,
            },
            SampleResult {
                sample: drawn[3].clone(),
                dice: 0.7,
            },
        ];
        let (_, record) = update(&state, &config, 4, &results).unwrap();
        assert_eq!(record.missing, vec![0, 2]);
        assert_eq!(record.chosen, 3);
        let err = update(&state, &config, 4, &[]).unwrap_err();
        assert!(err.to_string().contains("none of the 4 samples"), "{err}");
    }

    #[test]
    fn sampling_is_reproducible_from_its_seed() {
        let config = ControllerConfig::default();
        let state = init(&config, 3);
        assert_eq!(init(&config, 3), state);
        assert_eq!(
            sample(&state, &config, 10, 5),
            sample(&state, &config, 10, 5)
        );
        assert_ne!(
            sample(&state, &config, 10, 5),
            sample(&state, &config, 10, 6)
        );
    }

    /// A bandit where moving layer 0's β up (+step) is clearly rewarded: with a usable learning
    /// rate the policy's probability of that move rises over the epochs.
    #[test]
    fn toy_bandit_policy_learns_the_rewarded_move() {
        let config = ControllerConfig {
            learning_rate: 0.05,
            ..ControllerConfig::default()
        };
        let mut state = init(&config, 4);
        let start = softmax(&state.theta[0])[2];
        for epoch in 0..60 {
            let drawn = sample(&state, &config, 8, crate::seed::derive(4, "bandit", epoch));
            let results: Vec<SampleResult> = drawn
                .into_iter()
                .map(|s| {
                    let dice = if s.actions[0] == 2 { 0.8 } else { 0.3 };
                    SampleResult { sample: s, dice }
                })
                .collect();
            state = update(&state, &config, 8, &results).unwrap().0;
        }
        let end = softmax(&state.theta[0])[2];
        assert!(
            end > 0.8 && end > start + 0.4,
            "π(+step) went from {start} to {end}"
        );
    }
}
