//! The run directory's record of finished work.
//!
//! Each task writes its outputs under `RUN/stages/<stage id>/<index>/`, then, last, a
//! `done.json` manifest with the sha256 of every output. A task counts as done iff its manifest
//! reads and every output it names still has that hash: a task that died before its manifest, or
//! whose output was damaged since, runs again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::plan::{Plan, Stage, Work};
use crate::atomic;
use crate::error::{Error, Result};

/// `done.json`: a finished task's outputs and their hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Output path relative to the task directory → sha256 (hex).
    pub outputs: BTreeMap<String, String>,
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

    pub fn task_dir(&self, stage: &str, index: usize) -> PathBuf {
        self.root.join("stages").join(stage).join(index.to_string())
    }

    fn manifest_path(&self, stage: &str, index: usize) -> PathBuf {
        self.task_dir(stage, index).join("done.json")
    }

    /// Record a task as done: hash each output (relative to the task directory) and write the
    /// manifest atomically, last.
    pub fn finish(&self, stage: &str, index: usize, outputs: &[&str]) -> Result<Manifest> {
        let dir = self.task_dir(stage, index);
        let mut manifest = Manifest {
            outputs: BTreeMap::new(),
        };
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
