//! What a grid cost: every task records its own wall and CPU seconds when it ends
//! (`RUN/compute/<stage id>-<index>.json`), whichever executor ran it, and the statistics stage
//! gathers them per stage and per method into `RUN/results/compute.json`, so a reader can weigh
//! a method's accuracy against its cost (an auto-weighted epoch trains K children).
//!
//! These numbers vary from run to run: they are in no manifest and never in `summary.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::{Plan, Work};
use crate::atomic;
use crate::error::{Error, Result};

/// One task's cost (its latest successful attempt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskCost {
    pub stage: String,
    pub index: usize,
    /// A held worker (index = worker slot) of the search beginning with `stage`.
    #[serde(default)]
    pub held: bool,
    pub wall_seconds: f64,
    /// User + system time of the process, all threads.
    pub cpu_seconds: f64,
    pub device: String,
}

fn path(run: &Path, stage: &str, index: usize, held: bool) -> PathBuf {
    let name = if held {
        format!("{stage}-held-{index}.json")
    } else {
        format!("{stage}-{index}.json")
    };
    run.join("compute").join(name)
}

/// Record `cost` for its task.
pub fn record(run: &Path, cost: &TaskCost) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(cost)
        .map_err(|e| Error::Internal(format!("encoding a task's cost: {e}")))?;
    let dir = run.join("compute");
    std::fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
    atomic::write_bytes(&path(run, &cost.stage, cost.index, cost.held), &bytes)
}

/// User + system CPU seconds this process has used so far.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given; zeroed is a valid rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage for the calling process.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// The summed cost of some tasks.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Totals {
    pub tasks: usize,
    pub wall_seconds_total: f64,
    pub cpu_seconds_total: f64,
}

/// Recorded costs per method (the shared CASN stages as `casn`) and per stage label.
#[derive(Debug, Default)]
pub struct Costs {
    pub methods: BTreeMap<String, Totals>,
    pub stages: BTreeMap<String, Totals>,
}

impl Totals {
    fn add(&mut self, cost: &TaskCost) {
        self.tasks += 1;
        self.wall_seconds_total += cost.wall_seconds;
        self.cpu_seconds_total += cost.cpu_seconds;
    }
}

/// Gather the recorded costs of `plan`'s tasks into `RUN/results/compute.json`.
pub fn write_summary(plan: &Plan, run: &Path) -> Result<PathBuf> {
    let Costs { methods, stages } = gather(plan, run);
    let document = serde_json::json!({
        "note": "wall and CPU seconds of each task's latest successful run, as the tasks recorded them",
        "methods": methods,
        "stages": stages,
    });
    let mut bytes = serde_json::to_vec_pretty(&document)
        .map_err(|e| Error::Internal(format!("encoding compute.json: {e}")))?;
    bytes.push(b'\n');
    let results = run.join("results");
    std::fs::create_dir_all(&results).map_err(|e| Error::write(&results, e))?;
    let out = results.join("compute.json");
    atomic::write_bytes(&out, &bytes)?;
    Ok(out)
}

/// The costs `plan`'s tasks recorded (a task that recorded none counts for nothing).
pub fn gather(plan: &Plan, run: &Path) -> Costs {
    let mut stages: BTreeMap<String, Totals> = BTreeMap::new();
    let mut methods: BTreeMap<String, Totals> = BTreeMap::new();
    for stage in &plan.stages {
        let held_first = matches!(stage.work, Work::Sample { .. });
        for index in 0..stage.tasks {
            for held in [false, true] {
                if held && !held_first {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(path(run, &stage.id, index, held)) else {
                    continue;
                };
                let Ok(cost) = serde_json::from_str::<TaskCost>(&text) else {
                    continue;
                };
                let label = match (&stage.work, held) {
                    (Work::Sample { .. }, true) => stage.held_label(),
                    _ => stage.label.clone(),
                };
                // The shared CASN stages are counted once, as `casn`; the out-of-fold ones
                // (`casn_coarse/fold1of4`), shared by the methods with that many folds, as
                // `casn_folds`.
                let method = match (&stage.work, label.split_once('/')) {
                    (Work::Casn { .. }, Some(_)) => "casn_folds".into(),
                    (Work::Casn { .. }, None) => "casn".into(),
                    (_, Some((method, _))) => method.to_string(),
                    (_, None) => label.clone(),
                };
                stages.entry(label).or_default().add(&cost);
                methods.entry(method).or_default().add(&cost);
            }
        }
    }
    Costs { methods, stages }
}
