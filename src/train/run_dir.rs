//! Where a training run lives and how its pieces are found, nnU-Net style:
//!
//! - `config.json`: the configuration the run was started with;
//! - `checkpoints/epoch-NNNN/`: checkpoints (see `train::checkpoint`), kept while a pointer
//!   names them;
//! - `checkpoint_latest.json`, `checkpoint_best.json`: pointers (`{"epoch", "path"}`) to the
//!   latest epoch and to the one with the best validation Dice so far; each is replaced by one
//!   atomic write, so a crash never leaves a half-replaced checkpoint;
//! - `progress.jsonl`: one [`EpochRecord`](super::config::EpochRecord) per epoch;
//! - `weighting.jsonl`: with a searching or learning weighting, one
//!   [`WeightingLine`](crate::das::weighting::WeightingLine) per auto-weighted (or learning)
//!   epoch.
//!
//! Burn-free: readers of a run (`infer`, the grid, reports) need paths and records, not models.

use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::atomic;
use crate::error::{Error, Result};

/// Where a run keeps its pieces.
pub struct RunDir {
    pub root: PathBuf,
}

/// A pointer file naming the checkpoint directory of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointPointer {
    epoch: u64,
    /// Relative to the run directory.
    path: PathBuf,
}

/// Which checkpoint of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Latest,
    Best,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    fn pointer(&self, which: Which) -> PathBuf {
        self.root.join(match which {
            Which::Latest => "checkpoint_latest.json",
            Which::Best => "checkpoint_best.json",
        })
    }

    /// The checkpoint directory of epoch `epoch` (1-based: epochs completed).
    pub fn epoch_dir(&self, epoch: u64) -> PathBuf {
        self.root
            .join("checkpoints")
            .join(format!("epoch-{epoch:04}"))
    }

    fn read_pointer(&self, which: Which) -> Result<Option<CheckpointPointer>> {
        let path = self.pointer(which);
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::read(&path, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::input(&path, format!("not a checkpoint pointer: {e}")))
    }

    /// The checkpoint directory `which` points at, if the run has one.
    pub fn checkpoint(&self, which: Which) -> Result<Option<PathBuf>> {
        Ok(self.read_pointer(which)?.map(|p| self.root.join(p.path)))
    }

    /// The epoch `which` points at, if the run has one.
    pub fn epoch_of(&self, which: Which) -> Result<Option<u64>> {
        Ok(self.read_pointer(which)?.map(|p| p.epoch))
    }

    /// Point `which` at `epoch`'s checkpoint: one atomic file write, so a reader sees the old
    /// or the new checkpoint, never a mixture.
    pub fn point(&self, which: Which, epoch: u64) -> Result<()> {
        let pointer = CheckpointPointer {
            epoch,
            path: PathBuf::from("checkpoints").join(format!("epoch-{epoch:04}")),
        };
        let bytes = serde_json::to_vec_pretty(&pointer)
            .map_err(|e| Error::Internal(format!("encoding a checkpoint pointer: {e}")))?;
        atomic::write_bytes(&self.pointer(which), &bytes)
    }

    /// Remove epoch checkpoints neither pointer names.
    pub fn prune(&self) -> Result<()> {
        let keep: Vec<PathBuf> = [Which::Latest, Which::Best]
            .into_iter()
            .filter_map(|w| self.checkpoint(w).transpose())
            .collect::<Result<_>>()?;
        let dir = self.root.join("checkpoints");
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::read(&dir, e))? {
            let path = entry.map_err(|e| Error::read(&dir, e))?.path();
            if path.is_dir() && !keep.contains(&path) {
                std::fs::remove_dir_all(&path).map_err(|e| Error::write(&path, e))?;
            }
        }
        Ok(())
    }

    pub fn progress(&self) -> PathBuf {
        self.root.join("progress.jsonl")
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    /// One JSON line per auto-weighted epoch: the search's samples, scores and choice.
    pub fn weighting_log(&self) -> PathBuf {
        self.root.join("weighting.jsonl")
    }
}

/// The checkpoint directory of a finished or running `awsnet train` run.
pub fn run_checkpoint(run: &Path, which: Which) -> Result<PathBuf> {
    RunDir::new(run)
        .checkpoint(which)?
        .ok_or_else(|| Error::Dataset {
            path: run.to_path_buf(),
            problem:
                "no checkpoint: not an awsnet train run, or one that has not finished an epoch"
                    .into(),
        })
}

/// A JSON-lines file holding `records`, replaced atomically.
pub fn write_lines<T: Serialize>(path: &Path, records: &[T]) -> Result<()> {
    let mut text = String::new();
    for r in records {
        let line = serde_json::to_string(r)
            .map_err(|e| Error::Internal(format!("encoding {}: {e}", path.display())))?;
        text.push_str(&line);
        text.push('\n');
    }
    atomic::write_bytes(path, text.as_bytes())
}

/// The first `count` records of a JSON-lines file.
pub fn read_lines<T: DeserializeOwned>(path: &Path, count: u64) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().take(count as usize) {
        out.push(
            serde_json::from_str(line)
                .map_err(|e| Error::input(path, format!("line {}: {e}", i + 1)))?,
        );
    }
    if (out.len() as u64) < count {
        return Err(Error::input(
            path,
            format!("{} records where the checkpoint needs {count}", out.len()),
        ));
    }
    Ok(out)
}
