//! The Slurm executor: the whole DAG queued at once as sbatch jobs, one per stage, each task
//! running `awsnet task RUN --stage S --index I`, the same entry point the local executor runs.
//!
//! Fire and forget: [`submit`] returns once everything is queued; no process of ours waits for
//! the jobs. What finished is what the store's manifests say; what is queued, running or failed
//! is what one batched `squeue` says ([`task_states`]). A resubmission (`awsnet resume`) queues
//! what is neither done nor queued and wires it to what is still queued (`batch`). Every queued
//! job is recorded in `RUN/slurm/jobs.json` as soon as `sbatch` returns (`records`).

pub mod batch;
pub mod records;
pub mod scheduler;
pub mod script;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::error::{Error, Result};
use crate::grid::backend::{DasMode, SlurmSettings};
use crate::grid::plan::Plan;
use crate::grid::store::RunStore;
use batch::{expression, jobs, Job, TaskKey};
use records::{Records, Submission};
use scheduler::{QueueRow, Scheduler};
use script::{job_name, render, script_path, Context, Templates};

/// What a submission queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submitted {
    /// sbatch calls made.
    pub jobs: usize,
    pub tasks: usize,
    pub already_done: usize,
    /// Tasks of earlier submissions still in the queue (not queued again).
    pub still_queued: usize,
}

/// Queue every task of `plan` that is neither done nor queued.
pub fn submit(
    plan: &Plan,
    store: &RunStore,
    settings: &SlurmSettings,
    scheduler: &dyn Scheduler,
    awsnet: &Path,
) -> Result<Submitted> {
    let run_dir = absolute(&store.root)?;
    let templates = Templates::load(settings.templates.as_deref())?;
    let done = done_tasks(plan, store)?;
    let mut records = Records::read(&run_dir)?.unwrap_or_else(|| Records {
        job_name: job_name(plan),
        submissions: Vec::new(),
    });
    let states = task_states(&records, scheduler)?;
    let queued: BTreeMap<TaskKey, String> = states
        .into_iter()
        .filter(|(key, (_, row))| {
            !done.contains(key)
                && row
                    .as_ref()
                    .is_some_and(|r| r.state.active() && !r.never_runs())
        })
        .map(|(key, (id, _))| (key, id))
        .collect();
    let max_array = scheduler.max_array_size()?;
    let held = settings.das_mode() == DasMode::Held;
    let jobs = jobs(plan, &done, &queued, max_array, held);
    let context = Context {
        plan,
        settings,
        run_dir: &run_dir,
        awsnet,
    };
    prepare_dirs(&run_dir)?;
    let mut ids: Vec<String> = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let stage = &plan.stages[job.stage];
        let (label, path) = write_script(&templates, &context, job)?;
        let dependency = expression(&job.after, &|j, i| element(&ids[j], &jobs[j], i));
        let id = scheduler.submit(&path, dependency.as_deref())?;
        records.submissions.push(Submission {
            job: id.clone(),
            stage: stage.id.clone(),
            label,
            offset: job.offset,
            indices: job.indices.clone(),
            reducer: job.reducer,
            held: job.held,
        });
        // Recorded before the next sbatch: a submission cut short leaves an exact record.
        records.write(&run_dir)?;
        ids.push(id);
    }
    Ok(Submitted {
        jobs: jobs.len(),
        tasks: jobs.iter().map(|j| j.indices.len()).sum(),
        already_done: done.len(),
        still_queued: queued.len(),
    })
}

/// Write the scripts a submission would queue under `RUN/sbatch/`, and `RUN/sbatch/submit.sh`
/// with the `sbatch` calls (job ids as shell variables); queue nothing. Returns the script.
pub fn dry_run(
    plan: &Plan,
    store: &RunStore,
    settings: &SlurmSettings,
    max_array: usize,
    awsnet: &Path,
) -> Result<PathBuf> {
    let run_dir = absolute(&store.root)?;
    let templates = Templates::load(settings.templates.as_deref())?;
    let done = done_tasks(plan, store)?;
    let held = settings.das_mode() == DasMode::Held;
    let jobs = jobs(plan, &done, &BTreeMap::new(), max_array, held);
    let context = Context {
        plan,
        settings,
        run_dir: &run_dir,
        awsnet,
    };
    prepare_dirs(&run_dir)?;
    let mut submit = String::new();
    let tasks: usize = jobs.iter().map(|j| j.indices.len()).sum();
    let _ = writeln!(
        submit,
        "#!/bin/bash\n# What `awsnet run --backend slurm` queues for run {}: {} jobs, {tasks} tasks \
         ({} already done).\n# Each job waits for the tasks it reads (--dependency).\nset -euo pipefail\n",
        plan.run,
        jobs.len(),
        done.len()
    );
    for (n, job) in jobs.iter().enumerate() {
        let (label, path) = write_script(&templates, &context, job)?;
        let dependency = expression(&job.after, &|j, i| {
            element(&format!("${{j{j}}}"), &jobs[j], i)
        })
        .map(|d| format!(" --dependency={d}"))
        .unwrap_or_default();
        let _ = writeln!(
            submit,
            "j{n}=$(sbatch --parsable{dependency} {} | cut -d';' -f1)  # {}",
            script::shell_word(&path.to_string_lossy()),
            label
        );
    }
    let path = run_dir.join("sbatch").join("submit.sh");
    atomic::write_bytes(&path, submit.as_bytes())?;
    Ok(path)
}

/// Each submitted task's Slurm id and the scheduler's row for it (None: the scheduler no
/// longer knows the job). One `squeue` call, plus one `sacct` for forgotten jobs.
pub fn task_states(
    records: &Records,
    scheduler: &dyn Scheduler,
) -> Result<BTreeMap<TaskKey, (String, Option<QueueRow>)>> {
    if records.submissions.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut rows = scheduler.queue(&records.job_name)?;
    let known: BTreeSet<String> = rows
        .iter()
        .map(|r| r.id.split('_').next().unwrap_or("").to_string())
        .collect();
    let missing: Vec<String> = records
        .job_ids()
        .into_iter()
        .filter(|id| !known.contains(id))
        .collect();
    if !missing.is_empty() {
        // Finished jobs drop out of squeue after MinJobAge; accounting may still know them.
        rows.extend(
            scheduler
                .accounting(&missing)
                .into_iter()
                .filter(|r| missing.iter().any(|m| r.id.split('_').next() == Some(m))),
        );
    }
    let by_id: BTreeMap<&str, &QueueRow> = rows.iter().map(|r| (r.id.as_str(), r)).collect();
    Ok(records
        .latest()
        .into_iter()
        .map(|(key, submission)| {
            let id = submission.element(key.1);
            let row = by_id.get(id.as_str()).map(|r| (*r).clone());
            (key, (id, row))
        })
        .collect())
}

/// The log of a submitted task.
pub fn log_of(run_dir: &Path, submission: &Submission, index: usize) -> PathBuf {
    script::log_path(run_dir, &submission.label, submission.offset, index)
}

/// Tasks that need no run: their manifest verifies (or they are DAS children whose epoch's
/// update went ahead without them).
fn done_tasks(plan: &Plan, store: &RunStore) -> Result<BTreeSet<TaskKey>> {
    let mut done = BTreeSet::new();
    for stage in &plan.stages {
        if !store.root.join("stages").join(&stage.id).is_dir() {
            continue;
        }
        for (index, settled) in store.settled(plan, stage)?.into_iter().enumerate() {
            if settled {
                done.insert((stage.id.clone(), index));
            }
        }
    }
    Ok(done)
}

/// Render `job`'s script into `RUN/sbatch/`: its label and path.
fn write_script(
    templates: &Templates,
    context: &Context<'_>,
    job: &Job,
) -> Result<(String, PathBuf)> {
    let label = script::job_label(context.plan, job);
    let path = script_path(context.run_dir, &label, job.offset);
    atomic::write_bytes(&path, render(templates, context, job)?.as_bytes())?;
    Ok((label, path))
}

fn element(job_id: &str, job: &Job, index: usize) -> String {
    batch::element_id(job_id, job, index)
}

fn prepare_dirs(run_dir: &Path) -> Result<()> {
    for dir in ["sbatch", "logs", "slurm"] {
        let dir = run_dir.join(dir);
        std::fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
    }
    Ok(())
}

/// Jobs run on other nodes, from other working directories: every path they see is absolute.
fn absolute(path: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(path).map_err(|e| Error::write(path, e))?;
    path.canonicalize().map_err(|e| Error::read(path, e))
}
