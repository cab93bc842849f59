//! Where a run stands, stage by stage, as the store's manifests say.

use serde::Serialize;

use super::plan::Plan;
use super::store::{RunStore, TaskState};
use crate::error::Result;

/// One stage's tasks by state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageStatus {
    pub id: String,
    pub label: String,
    pub tasks: usize,
    pub done: usize,
    /// Tasks whose manifest no longer verifies (they run again), with the reason.
    pub damaged: Vec<(usize, String)>,
    /// Labels of the stages this one waits for.
    pub after: Vec<String>,
}

/// The state of every stage of `plan` in `store`.
pub fn stage_status(plan: &Plan, store: &RunStore) -> Result<Vec<StageStatus>> {
    let label_of = |id: &str| {
        plan.stage(id)
            .map_or_else(|| id.to_string(), |s| s.label.clone())
    };
    plan.stages
        .iter()
        .map(|stage| {
            let mut done = 0;
            let mut damaged = Vec::new();
            // A stage directory that does not exist has no finished task: skip the per-task
            // look-ups (a paper-scale plan has thousands of tasks not yet run).
            if store.root.join("stages").join(&stage.id).is_dir() {
                for index in 0..stage.tasks {
                    match store.state(&stage.id, index)? {
                        TaskState::Done => done += 1,
                        TaskState::Missing => {}
                        TaskState::Damaged(why) => damaged.push((index, why)),
                    }
                }
            }
            Ok(StageStatus {
                id: stage.id.clone(),
                label: stage.label.clone(),
                tasks: stage.tasks,
                done,
                damaged,
                after: stage.parents.iter().map(|p| label_of(p)).collect(),
            })
        })
        .collect()
}
