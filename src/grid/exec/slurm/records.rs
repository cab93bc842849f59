//! `RUN/slurm/jobs.json`: every job queued for a run, appended as each is queued (written
//! atomically after each `sbatch`), so a submission cut short leaves an exact record of what
//! is in the queue and a resubmission adds to it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::batch::TaskKey;
use crate::atomic;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Records {
    /// The Slurm job name of every job of the run.
    pub job_name: String,
    pub submissions: Vec<Submission>,
}

/// One queued job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Slurm's job id.
    pub job: String,
    pub stage: String,
    pub label: String,
    /// Task index = array index + offset.
    pub offset: usize,
    pub indices: Vec<usize>,
    /// Not an array: one task, index 0.
    pub reducer: bool,
    /// Held workers of the search beginning with `stage` (indices are worker slots).
    #[serde(default)]
    pub held: bool,
}

impl Submission {
    /// The Slurm id of task `index` (`123_4`, or `125` for a reducer).
    pub fn element(&self, index: usize) -> String {
        super::batch::element_of(&self.job, self.reducer, self.offset, index)
    }
}

impl Records {
    pub fn path(run: &Path) -> PathBuf {
        run.join("slurm").join("jobs.json")
    }

    /// The run's records, or None if nothing was ever queued for it.
    pub fn read(run: &Path) -> Result<Option<Records>> {
        let path = Self::path(run);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::read(&path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::input(&path, format!("not a record of Slurm jobs: {e}")))
    }

    pub fn write(&self, run: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::Internal(format!("encoding Slurm records: {e}")))?;
        bytes.push(b'\n');
        atomic::write_bytes(&Self::path(run), &bytes)
    }

    /// Each task's latest submission.
    pub fn latest(&self) -> BTreeMap<TaskKey, &Submission> {
        let mut latest = BTreeMap::new();
        for submission in &self.submissions {
            for &index in &submission.indices {
                latest.insert((submission.stage.clone(), index), submission);
            }
        }
        latest
    }

    /// Ids of the jobs queued, each once.
    pub fn job_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.submissions.iter().map(|s| s.job.clone()).collect();
        ids.dedup();
        ids
    }
}
