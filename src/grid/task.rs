//! One task of a plan: `awsnet task RUN --stage ID --index I`, the one entry point every
//! executor runs.
//!
//! A task reads its parents' outputs from the run directory, writes its own under
//! `RUN/stages/<id>/<index>/`, and records them last in `done.json` (`super::store`). Training
//! tasks keep an `awsnet train` run directory there, so a task killed mid-way resumes from its
//! last epoch when it runs again, with the bytes an uninterrupted task would have written.
//!
//! What needs the model stack goes through [`Engine`] (implemented by `crate::engine` for burn's
//! backends): the grid itself holds no model code.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::engine::Engine;
use super::plan::{Plan, Stage, Work};
use super::records::DEVICE_FILE;
use super::stages::{das, evaluate, predict, report, stats};
use super::store::{RunStore, TaskState};
use crate::atomic;
use crate::error::{Error, Result};
use crate::infer::pipeline::InferOptions;
use crate::train::config::TrainConfig;

/// What `run_task` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ran,
    /// The task's manifest verified: nothing ran and nothing was touched.
    AlreadyDone,
}

/// Run task `index` of stage `stage_id` of the plan in `run`, unless it is done.
///
/// A done task is left alone rather than run again: a scheduler may start a task twice (a
/// requeue racing its end, a resume of a task that finished meanwhile), and a second run
/// would begin by clearing outputs that its dependents may be reading.
pub fn run_task(run: &Path, stage_id: &str, index: usize, engine: &dyn Engine) -> Result<Outcome> {
    let store = RunStore::new(run);
    let plan = store.read_plan()?;
    if plan.stage(stage_id).is_some_and(|s| index < s.tasks)
        && store.state(stage_id, index)? == TaskState::Done
    {
        return Ok(Outcome::AlreadyDone);
    }
    run_planned(&plan, &store, stage_id, index, engine)?;
    Ok(Outcome::Ran)
}

/// Run task `index` of stage `stage_id` of `plan`, whose run directory is `store`.
pub fn run_planned(
    plan: &Plan,
    store: &RunStore,
    stage_id: &str,
    index: usize,
    engine: &dyn Engine,
) -> Result<()> {
    let stage = plan.stage(stage_id).ok_or_else(|| {
        Error::invalid(
            "--stage",
            format!(
                "{stage_id} is not a stage of {}",
                store.plan_file().display()
            ),
        )
    })?;
    if index >= stage.tasks {
        return Err(Error::invalid(
            "--index",
            format!(
                "stage {} has {} tasks (0..{})",
                stage.label, stage.tasks, stage.tasks
            ),
        ));
    }
    let task = Task {
        plan,
        store,
        stage,
        index,
        engine,
    };
    task.run().map_err(|e| e.in_task(&stage.label, index))
}

/// One task being run: what every stage reads its inputs from and writes its outputs to.
pub(super) struct Task<'a> {
    pub(super) plan: &'a Plan,
    pub(super) store: &'a RunStore,
    pub(super) stage: &'a Stage,
    pub(super) index: usize,
    pub(super) engine: &'a dyn Engine,
}

impl Task<'_> {
    pub(super) fn dir(&self) -> PathBuf {
        self.store.task_dir(&self.stage.id, self.index)
    }

    pub(super) fn parent(&self, i: usize) -> Result<&Stage> {
        let id = self.stage.parents.get(i).ok_or_else(|| {
            Error::Internal(format!("stage {} has no parent {i}", self.stage.label))
        })?;
        self.plan
            .stage(id)
            .ok_or_else(|| Error::Internal(format!("parent {id} is not in the plan")))
    }

    fn run(&self) -> Result<()> {
        let dir = self.dir();
        let resumable = matches!(self.stage.work, Work::Casn { .. } | Work::Train { .. });
        if !resumable && dir.exists() {
            // Left by an attempt that died before its manifest: start over. Training tasks
            // instead continue their run directory from its last epoch.
            std::fs::remove_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
        if self.stage.work.computes() {
            write_json(&dir.join(DEVICE_FILE), &self.engine.compute())?;
        }
        match &self.stage.work {
            Work::Casn { config } => self.engine.train(config, &dir.join("run"))?,
            Work::Train { configs, until, .. } => {
                let config = TrainConfig {
                    epochs: *until,
                    ..self.rooted(&configs[self.index])?
                };
                self.engine.train(&config, &dir.join("run"))?;
            }
            Work::Sample { configs, epoch, .. } => das::sample(self, configs, *epoch)?,
            Work::Update { configs, epoch, .. } => das::update(self, configs, *epoch)?,
            Work::Predict {
                test,
                cases,
                deploy,
                largest_component,
                ..
            } => {
                let options = InferOptions {
                    largest_component: *largest_component,
                    clean_small: false,
                };
                predict::predict(self, test, cases, *deploy, options)?
            }
            Work::Evaluate {
                members,
                replicates,
                test,
                cases,
                targets,
                ..
            } => evaluate::evaluate(self, *members, *replicates, test, cases, targets)?,
            Work::Stats {
                methods,
                comparisons,
                metrics,
            } => {
                stats::stats(self, methods, comparisons, metrics)?;
                // Outside the task's outputs, but before its manifest: a stats task killed
                // before it is done reruns, and renders the report again.
                report::publish(self);
            }
        }
        let outputs = files_under(&dir)?;
        let names: Vec<&str> = outputs.iter().map(String::as_str).collect();
        self.store.finish(&self.stage.id, self.index, &names)?;
        Ok(())
    }

    /// `config` with the run directories its `casn_rois` name (relative to the run directory
    /// in the plan) made absolute, so they read from wherever the task runs.
    pub(super) fn rooted(&self, config: &TrainConfig) -> Result<TrainConfig> {
        let Some(rois) = &config.casn_rois else {
            return Ok(config.clone());
        };
        let root =
            std::path::absolute(&self.store.root).map_err(|e| Error::read(&self.store.root, e))?;
        Ok(TrainConfig {
            casn_rois: Some(rois.rooted(&root)),
            ..config.clone()
        })
    }
}

pub(super) fn relative(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

pub(super) fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    }
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::Internal(format!("encoding {}: {e}", path.display())))?;
    bytes.push(b'\n');
    atomic::write_bytes(path, &bytes)
}

/// Every file under `dir` (relative, sorted), `done.json` aside.
fn files_under(dir: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for entry in std::fs::read_dir(dir).map_err(|e| Error::read(dir, e))? {
            let path = entry.map_err(|e| Error::read(dir, e))?.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else {
                let rel = relative(root, &path).display().to_string();
                if rel != "done.json" {
                    out.push(rel);
                }
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}
