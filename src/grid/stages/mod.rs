//! What each kind of stage does, one room per stage: `das` (a DAS child and the update that
//! closes an auto-weighted epoch), `predict`, `evaluate` (vote and score), `stats` (the
//! comparisons and summary.json) and `report` (the tables and the report people read). Training
//! and CASN tasks are one call of the `Engine` each, made by `super::task`.
//!
//! Each stage reads its parents' records (`super::records`) and writes its own through the
//! [`Task`] it is given; stages do not call each other.

use std::path::PathBuf;

use super::plan::{Stage, Work};
use super::records::{Deployable, Parent};
use super::task::Task;
use crate::error::{Error, Result};
use crate::train::checkpoint::read_state;
use crate::train::config::EpochRecord;
use crate::train::run_dir::{read_lines, run_checkpoint, RunDir, Which};

pub(super) mod das;
pub(super) mod evaluate;
pub(super) mod predict;
pub(super) mod report;
pub(super) mod stats;

/// Where member-net `which` of the ASAN stage `stage` stands: its checkpoint and state.
pub(super) fn member_state(
    task: &Task<'_>,
    stage: &Stage,
    which: usize,
) -> Result<(PathBuf, Parent)> {
    match &stage.work {
        Work::Train { configs, .. } => {
            let run = task.store.task_dir(&stage.id, which).join("run");
            let checkpoint = run_checkpoint(&run, Which::Latest)?;
            let state = read_state(&checkpoint)?;
            let best = run_checkpoint(&run, Which::Best)?;
            let best_epoch = read_state(&best)?.epoch;
            let warmup: Vec<EpochRecord> = read_lines(&RunDir::new(&run).progress(), state.epoch)?;
            let score = warmup
                .iter()
                .find(|r| r.epoch == best_epoch)
                .map_or(0.0, |r| r.validation().score(configs[which].score()));
            let parent = Parent {
                checkpoint: task.store.stored(&checkpoint)?,
                state,
                history: Vec::new(),
                lines: Vec::new(),
                fixed_best: Some(Deployable {
                    checkpoint: task.store.stored(&best)?,
                    epoch: best_epoch,
                    score,
                }),
                auto: Vec::new(),
                warmup,
            };
            Ok((task.store.root.join(&parent.checkpoint), parent))
        }
        Work::Update { .. } => {
            let path = task
                .store
                .task_dir(&stage.id, 0)
                .join("parents")
                .join(format!("{which}.json"));
            let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
            let parent: Parent = serde_json::from_str(&text)
                .map_err(|e| Error::input(&path, format!("not a parent record: {e}")))?;
            Ok((task.store.root.join(&parent.checkpoint), parent))
        }
        other => Err(Error::Internal(format!(
            "a search continues from a train or update stage, not {other:?}"
        ))),
    }
}
