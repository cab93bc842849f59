//! The records tasks leave for each other in the run directory: what a model task computed
//! on, a DAS child's result, where a member's network stands after an update, what a predict
//! task deployed, and where an evaluate task keeps each member's and replicate's files.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::spec::Deploy;
use crate::das::weighting::WeightingLine;
use crate::train::checkpoint::TrainState;
use crate::train::config::EpochRecord;
use crate::train::deploy::best_of;
use crate::train::health::HealthIssue;
use crate::train::samples::Network;

/// What computed a task's tensors (`device.json`): results repeat bit for bit only on the same
/// backend, device kind and CPU kernels, so the summary's provenance lists what the run used.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComputeRecord {
    /// burn's name for the backend (`autodiff<flex>`, …).
    pub backend: String,
    /// `cpu` or `cuda` (which GPU of a node does not change a result).
    pub device: String,
    /// On the CPU: which convolution kernels this CPU runs (`kernels::conv3x3::Kernel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_kernels: Option<String>,
}

/// The file a model task records its [`ComputeRecord`] in.
pub const DEVICE_FILE: &str = "device.json";

/// What a trained child reports (`result.json` of a sample task).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildResult {
    pub index: usize,
    pub loss: f64,
    pub record: EpochRecord,
}

/// Where a member's network stands after an update (`parents/<member>-<net>.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parent {
    /// The chosen child's checkpoint: `store/<key>`, relative to the run directory.
    pub checkpoint: PathBuf,
    /// The state to continue from (the search's state after the update).
    pub state: TrainState,
    /// Progress lines of the auto-weighted epochs so far.
    pub history: Vec<EpochRecord>,
    /// `weighting.jsonl` lines so far.
    pub lines: Vec<WeightingLine>,
    /// The best epoch of the fixed-weight warm-up.
    pub fixed_best: Option<Deployable>,
    /// Each auto-weighted epoch's chosen child, in order.
    pub auto: Vec<Deployable>,
    /// Progress lines of the fixed-weight warm-up, for the deployed net's health.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warmup: Vec<EpochRecord>,
}

/// A checkpoint that could be deployed, with its validation score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployable {
    /// `store/<key>`, relative to the run directory.
    pub checkpoint: PathBuf,
    pub epoch: u64,
    pub score: f64,
}

impl Parent {
    /// The checkpoint `deploy` picks (relative to the run directory).
    pub fn deployed(&self, deploy: Deploy) -> PathBuf {
        let best_of = |items: &mut dyn Iterator<Item = &Deployable>| {
            best_of(items.map(|c| (c.checkpoint.clone(), c.score)))
        };
        match deploy {
            Deploy::Default | Deploy::Latest => Some(self.checkpoint.clone()),
            Deploy::BestAuto => best_of(&mut self.auto.iter()),
            Deploy::Best => best_of(&mut self.fixed_best.iter().chain(&self.auto)),
        }
        .unwrap_or_else(|| self.checkpoint.clone())
    }
}

/// One network a predict task deployed (`deployed.json`, and per member in the summary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployedRecord {
    pub net: Network,
    /// `store/<key>`, relative to the run directory: the checkpoint by its content.
    pub checkpoint: PathBuf,
    /// Epochs the deployed network had trained.
    pub epoch: u64,
    /// How it failed to learn, if it did (`train::health`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health: Vec<HealthIssue>,
}

/// Where an evaluate task keeps member `member`'s own evaluation (`member1`, …).
pub fn member_dir(member: usize) -> String {
    format!("member{}", member + 1)
}

/// Where an evaluate task keeps replicate `replicate`'s votes and evaluation (`seed1`, …).
pub fn replicate_dir(replicate: usize) -> String {
    format!("seed{}", replicate + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(epoch: u64, score: f64) -> Deployable {
        Deployable {
            checkpoint: PathBuf::from(format!("e{epoch}")),
            epoch,
            score,
        }
    }

    #[test]
    fn deploy_picks_the_checkpoint_it_names() {
        let mut parent = Parent {
            warmup: Vec::new(),
            checkpoint: PathBuf::from("e4"),
            state: TrainState {
                epoch: 4,
                seed: 0,
                alpha: vec![0.25; 4],
                extra: None,
            },
            history: Vec::new(),
            lines: Vec::new(),
            fixed_best: Some(at(1, 0.5)),
            auto: vec![at(2, 0.4), at(3, 0.6), at(4, 0.6)],
        };
        let table = [
            (Deploy::Default, "e4"),
            (Deploy::Latest, "e4"),
            (Deploy::BestAuto, "e3"),
            (Deploy::Best, "e3"),
        ];
        for (deploy, expected) in table {
            assert_eq!(
                parent.deployed(deploy),
                PathBuf::from(expected),
                "{deploy:?}"
            );
        }
        // A warm-up epoch better than every auto-weighted one: `best` deploys a model that
        // never used DAS, which is why it is not the default.
        parent.fixed_best = Some(at(1, 0.9));
        assert_eq!(parent.deployed(Deploy::Best), PathBuf::from("e1"));
        assert_eq!(parent.deployed(Deploy::BestAuto), PathBuf::from("e3"));
    }
}
