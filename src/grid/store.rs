//! The run directory's record of finished work.
//!
//! Each task writes its outputs under `RUN/stages/<stage id>/<index>/`, then, last, a
//! `done.json` manifest with the sha256 of every output. A task counts as done iff its manifest
//! reads and every output it names still has that hash: a task that died before its manifest, or
//! whose output was damaged since, runs again.
//!
//! Checkpoints among a task's outputs are also kept in the run's content-addressed store
//! (`super::objects`), where the tasks that read them find them; the manifest lists them, and a
//! task whose stored checkpoint was damaged since is not done either.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::objects;
use super::plan::{task_path, Plan, Stage, Work};
use crate::atomic;
use crate::error::{Error, Result};

/// `done.json`: a finished task's outputs and their hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Output path relative to the task directory → sha256 (hex).
    pub outputs: BTreeMap<String, String>,
    /// Checkpoint directory (relative to the task directory) → its key in `RUN/store/`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checkpoints: BTreeMap<String, String>,
}

/// Where a run keeps its stages.
#[derive(Debug, Clone)]
pub struct RunStore {
    pub root: PathBuf,
}

/// Whether a task is done, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Done,
    /// No manifest: never finished.
    Missing,
    /// A manifest whose outputs no longer verify (named): the task reruns.
    Damaged(String),
}

impl RunStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunStore { root: root.into() }
    }

    pub fn plan_file(&self) -> PathBuf {
        self.root.join("plan.json")
    }

    /// Read `RUN/plan.json`.
    pub fn read_plan(&self) -> Result<Plan> {
        let path = self.plan_file();
        let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::input(&path, format!("not a plan: {e}")))
    }

    /// Write `RUN/plan.json` (atomically).
    pub fn write_plan(&self, plan: &Plan) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(plan)
            .map_err(|e| Error::Internal(format!("encoding the plan: {e}")))?;
        bytes.push(b'\n');
        atomic::write_bytes(&self.plan_file(), &bytes)
    }

    pub fn task_dir(&self, stage: &str, index: usize) -> PathBuf {
        self.root.join(task_path(stage, index))
    }

    fn manifest_path(&self, stage: &str, index: usize) -> PathBuf {
        self.task_dir(stage, index).join("done.json")
    }

    /// Record a task as done: keep each checkpoint among its outputs in the store, hash each
    /// output (relative to the task directory) and write the manifest atomically, last.
    pub fn finish(&self, stage: &str, index: usize, outputs: &[&str]) -> Result<Manifest> {
        let dir = self.task_dir(stage, index);
        let mut manifest = Manifest {
            outputs: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
        };
        for output in outputs {
            let Some((checkpoint, "manifest.json")) = output.rsplit_once('/') else {
                continue;
            };
            if objects::is_checkpoint(&dir.join(checkpoint)) {
                let key = objects::keep(&self.root, &dir.join(checkpoint))?;
                manifest.checkpoints.insert(checkpoint.to_string(), key);
            }
        }
        for output in outputs {
            let path = dir.join(output);
            manifest
                .outputs
                .insert((*output).to_string(), file_sha256(&path)?);
        }
        let bytes = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::Internal(format!("encoding a manifest: {e}")))?;
        atomic::write_bytes(&self.manifest_path(stage, index), &bytes)?;
        Ok(manifest)
    }

    /// For each task of `stage`, whether it needs no run: it is done, or it is a DAS child that
    /// never finished of an epoch whose update is done (the update went ahead without it and
    /// recorded it missing; training it now would change nothing downstream). A damaged child
    /// still reruns: the update may have chosen it as the next parent.
    pub fn settled(&self, plan: &Plan, stage: &Stage) -> Result<Vec<bool>> {
        let update_done = match stage.work {
            Work::Sample { .. } => match plan.stages.iter().find(|s| {
                matches!(s.work, Work::Update { .. }) && s.parents.first() == Some(&stage.id)
            }) {
                Some(update) => self.state(&update.id, 0)? == TaskState::Done,
                None => false,
            },
            _ => false,
        };
        (0..stage.tasks)
            .map(|index| {
                Ok(match self.state(&stage.id, index)? {
                    TaskState::Done => true,
                    TaskState::Missing => update_done,
                    TaskState::Damaged(_) => false,
                })
            })
            .collect()
    }

    /// The store's path (relative to the run directory) of the checkpoint in `dir`, keeping it
    /// there if it is not yet (a run begun before the store existed).
    pub fn stored(&self, dir: &Path) -> Result<PathBuf> {
        Ok(objects::object_path(&objects::keep(&self.root, dir)?))
    }

    /// Whether the task's manifest exists and every output it names verifies.
    pub fn state(&self, stage: &str, index: usize) -> Result<TaskState> {
        let path = self.manifest_path(stage, index);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TaskState::Missing),
            Err(e) => return Err(Error::read(&path, e)),
        };
        let Ok(manifest) = serde_json::from_str::<Manifest>(&text) else {
            return Ok(TaskState::Damaged("done.json is not a manifest".into()));
        };
        let dir = self.task_dir(stage, index);
        for (output, expected) in &manifest.outputs {
            let path = dir.join(output);
            match file_sha256(&path) {
                Ok(actual) if &actual == expected => {}
                Ok(_) => return Ok(TaskState::Damaged(format!("{output}: sha256 differs"))),
                Err(_) => return Ok(TaskState::Damaged(format!("{output}: unreadable"))),
            }
        }
        for (checkpoint, key) in &manifest.checkpoints {
            if let Err(problem) = objects::verify(&self.root, key, Some(&dir.join(checkpoint))) {
                return Ok(TaskState::Damaged(format!(
                    "{checkpoint}: its stored copy {}: {problem}",
                    objects::object_path(key).display()
                )));
            }
        }
        Ok(TaskState::Done)
    }
}

/// The sha256 (hex) of a file's bytes.
pub fn file_sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_done_only_while_its_outputs_verify() {
        let tmp = tempfile::tempdir().unwrap();
        let store = RunStore::new(tmp.path());
        let dir = store.task_dir("ab12", 3);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(store.state("ab12", 3).unwrap(), TaskState::Missing);
        std::fs::write(dir.join("eval.json"), b"{}").unwrap();
        store.finish("ab12", 3, &["eval.json"]).unwrap();
        assert_eq!(store.state("ab12", 3).unwrap(), TaskState::Done);

        std::fs::write(dir.join("eval.json"), b"{ }").unwrap();
        assert_eq!(
            store.state("ab12", 3).unwrap(),
            TaskState::Damaged("eval.json: sha256 differs".into())
        );
        std::fs::remove_file(dir.join("eval.json")).unwrap();
        assert_eq!(
            store.state("ab12", 3).unwrap(),
            TaskState::Damaged("eval.json: unreadable".into())
        );
        std::fs::write(dir.join("done.json"), b"half a manif").unwrap();
        assert!(matches!(
            store.state("ab12", 3).unwrap(),
            TaskState::Damaged(_)
        ));
    }
}
