//! Nightly retraining in one run directory (`awsnet run JOB --if-changed`).
//!
//! Stage ids hash what a stage computes, the input cases' content included, so planning the
//! same job over tonight's data gives the same ids to every stage the new data does not touch:
//! those are found done in the store and reused, and only the rest runs. What changes is the
//! run as a whole (its id, plan and results): the previous run's `plan.json`, `results/` and
//! Slurm records move to `RUN/history/<its id>/` and `RUN/history/latest` names it, so
//! tonight's report can compare with it. Stage directories stay where they are.

use std::path::{Path, PathBuf};

use super::plan::Plan;
use super::store::RunStore;
use crate::atomic;
use crate::error::{Error, Result};

/// What a retired run keeps, relative to the run directory.
const KEPT: [&str; 3] = ["results", "slurm", "plan.json"];

/// Move the run `old` (whose plan the run directory holds) into `RUN/history/<id>/`; that
/// directory. Each move is a rename, `plan.json` last: a crash part-way leaves a run directory
/// that plans afresh.
pub fn retire(store: &RunStore, old: &Plan) -> Result<PathBuf> {
    let history = store.root.join("history");
    let dir = history.join(short(&old.run));
    std::fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
    for name in KEPT {
        let from = store.root.join(name);
        if !from.exists() {
            continue;
        }
        let to = dir.join(name);
        if to.exists() {
            // Retired before (the same data came back): keep the older copy's place.
            let _ = std::fs::remove_dir_all(&to).or_else(|_| std::fs::remove_file(&to));
        }
        std::fs::rename(&from, &to).map_err(|e| Error::write(&to, e))?;
    }
    atomic::write_bytes(
        &history.join("latest"),
        format!("{}\n", short(&old.run)).as_bytes(),
    )?;
    Ok(dir)
}

/// The results directory of the run retired last, if any (and if it has a summary).
pub fn previous_results(run: &Path) -> Option<PathBuf> {
    let history = run.join("history");
    let id = std::fs::read_to_string(history.join("latest")).ok()?;
    let results = history.join(id.trim()).join("results");
    results.join("summary.json").exists().then_some(results)
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::test_plans::two_methods;

    #[test]
    fn a_retired_run_keeps_its_results_and_is_the_previous_one() {
        let tmp = tempfile::tempdir().unwrap();
        let store = RunStore::new(tmp.path());
        let plan = two_methods();
        std::fs::create_dir_all(tmp.path().join("results")).unwrap();
        std::fs::write(tmp.path().join("results/summary.json"), b"{}").unwrap();
        std::fs::write(tmp.path().join("plan.json"), b"{}").unwrap();
        std::fs::create_dir_all(tmp.path().join("stages/abc/0")).unwrap();
        assert_eq!(previous_results(tmp.path()), None);
        let dir = retire(&store, &plan).unwrap();
        assert!(dir.join("results/summary.json").exists());
        assert!(dir.join("plan.json").exists());
        assert!(!tmp.path().join("plan.json").exists());
        assert!(tmp.path().join("stages/abc/0").exists(), "the store stays");
        assert_eq!(previous_results(tmp.path()), Some(dir.join("results")));
    }
}
