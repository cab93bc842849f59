//! Where a run stands, stage by stage, as the store's manifests say.

use serde::{Deserialize, Serialize};

use super::plan::{Plan, Work};
use super::records::DeployedRecord;
use super::store::{RunStore, TaskState};
use crate::error::{Error, Result};
use crate::train::health::HealthIssue;
use crate::train::samples::Network;

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

/// A deployed network that failed to learn, named (the summary's `health` list). Not
/// `deny_unknown_fields`: serde cannot combine it with the flattened issue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthFlag {
    /// The method, or `casn` for the CASNs every method shares.
    pub method: String,
    /// Which of the method's replicates (0: the first, then absent).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replicate: usize,
    /// Counting from 1.
    pub member: usize,
    /// `casn_coarse`, `casn_fine`, `scar`, `scar_edema`.
    pub net: Network,
    #[serde(flatten)]
    pub issue: HealthIssue,
}

impl HealthFlag {
    /// "pam_ds member 1, scar: collapsed: …".
    pub fn describe(&self) -> String {
        let net = serde_json::to_value(self.net)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        let replicate = match self.replicate {
            0 => String::new(),
            r => format!(" (replicate {})", r + 1),
        };
        if self.method == "casn" {
            return format!("{net}: {}", self.issue.describe());
        }
        format!(
            "{}{replicate} member {}, {net}: {}",
            self.method,
            self.member,
            self.issue.describe()
        )
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Every issue of every network the finished predict tasks of `plan` deployed (each task's
/// `deployed.json`), in plan order: what `status`, the summary and the report flag. The CASNs
/// all methods share are named once, as method `casn`.
pub fn health(plan: &Plan, store: &RunStore) -> Result<Vec<HealthFlag>> {
    let mut flags = Vec::new();
    let mut casns = std::collections::BTreeSet::new();
    for stage in &plan.stages {
        let Work::Predict {
            method, replicate, ..
        } = &stage.work
        else {
            continue;
        };
        for member in 0..stage.tasks {
            if store.state(&stage.id, member)? != TaskState::Done {
                continue;
            }
            let path = store.task_dir(&stage.id, member).join("deployed.json");
            let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
            let nets: Vec<DeployedRecord> = serde_json::from_str(&text)
                .map_err(|e| Error::input(&path, format!("not a deployment record: {e}")))?;
            for record in nets {
                let shared = record.net.asan().is_none();
                if shared && !casns.insert(record.checkpoint.clone()) {
                    continue;
                }
                flags.extend(record.health.iter().map(|issue| HealthFlag {
                    method: if shared {
                        "casn".into()
                    } else {
                        method.clone()
                    },
                    replicate: if shared { 0 } else { *replicate },
                    member: if shared { 1 } else { member + 1 },
                    net: record.net,
                    issue: *issue,
                }));
            }
        }
    }
    Ok(flags)
}
