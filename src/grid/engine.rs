//! What grid tasks need from the model stack, as a trait: `crate::engine` implements it for
//! burn's backends, tests with stand-ins, so the grid itself holds no model code.

use std::path::Path;

use super::records::{ChildResult, ComputeRecord};
use crate::das::weighting::Candidate;
use crate::error::Result;
use crate::infer::pipeline::{Deployed, InferOptions};
use crate::train::checkpoint::TrainState;
use crate::train::config::TrainConfig;

/// What tasks need from the model stack.
pub trait Engine {
    /// Train `config` into the `awsnet train` run directory `run` up to `config.epochs`,
    /// continuing what is there.
    fn train(&self, config: &TrainConfig, run: &Path) -> Result<()>;

    /// Train one child of the parent checkpoint (with the parent's state replaced by `state`)
    /// for epoch `state.epoch` with the candidate's α; save it as a checkpoint in `out`. None
    /// when its loss diverged.
    fn sample(
        &self,
        config: &TrainConfig,
        parent: &Path,
        state: &TrainState,
        candidate: &Candidate,
        out: &Path,
    ) -> Result<Option<ChildResult>>;

    /// What computes on this engine (`device.json` of every task that trains or predicts).
    fn compute(&self) -> ComputeRecord;

    /// Segment the cases `ids` of directory `cases` into `<case>_pred.nii.gz` files in `out`.
    fn predict(
        &self,
        networks: [Deployed; 4],
        cases: &Path,
        ids: &[String],
        options: InferOptions,
        out: &Path,
    ) -> Result<()>;
}
