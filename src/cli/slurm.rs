//! The Slurm side of `awsnet run`, `resume`, `status` and `cancel`: queue a plan, show a queued
//! run, cancel its jobs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;

use super::output::{print_json, print_out};
use awsnet::grid::backend::SlurmSettings;
use awsnet::grid::exec::slurm::records::Records;
use awsnet::grid::exec::slurm::scheduler::{
    parse_max_array_size, QueueRow, Scheduler, SlurmCli, SlurmState,
};
use awsnet::grid::exec::slurm::script::job_name;
use awsnet::grid::exec::slurm::{dry_run, log_of, submit, task_states};
use awsnet::grid::held::search_done;
use awsnet::grid::plan::Plan;
use awsnet::grid::status::HealthFlag;
use awsnet::grid::status::StageStatus;
use awsnet::grid::store::{RunStore, TaskState};

/// The awsnet binary the jobs run.
fn awsnet_binary(settings: &SlurmSettings) -> anyhow::Result<PathBuf> {
    match &settings.awsnet {
        Some(path) => Ok(path.clone()),
        None => std::env::current_exe().context("locating the awsnet binary"),
    }
}

/// Queue what is missing of `plan`; returns once everything is queued.
pub fn queue(plan: &Plan, store: &RunStore, settings: &SlurmSettings) -> anyhow::Result<()> {
    let scheduler = SlurmCli::default();
    let awsnet = awsnet_binary(settings)?;
    let submitted = submit(plan, store, settings, &scheduler, &awsnet)?;
    let records = Records::read(&store.root)?;
    let name = records.map(|r| r.job_name).unwrap_or_default();
    let text = if submitted.jobs == 0 {
        format!(
            "nothing to queue: {} tasks done, {} still queued\n",
            submitted.already_done, submitted.still_queued
        )
    } else {
        format!(
            "queued {} tasks in {} jobs named {name} ({} already done, {} still queued; {} Slurm calls)\n\
             `awsnet status {run}` shows where they are; the summary lands in {run}/results/summary.json\n",
            submitted.tasks,
            submitted.jobs,
            submitted.already_done,
            submitted.still_queued,
            scheduler.calls(),
            run = store.root.display()
        )
    };
    print_out(&text)
}

/// `--dry-run --backend slurm`: the scripts, written, nothing queued.
pub fn write_scripts(
    plan: &Plan,
    store: &RunStore,
    settings: &SlurmSettings,
) -> anyhow::Result<PathBuf> {
    // MaxArraySize where Slurm is at hand, else Slurm's default.
    let max_array = std::process::Command::new("scontrol")
        .args(["show", "config"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or(1001, |o| {
            parse_max_array_size(&String::from_utf8_lossy(&o.stdout))
        });
    Ok(dry_run(
        plan,
        store,
        settings,
        max_array,
        &awsnet_binary(settings)?,
    )?)
}

/// Whether any job of the run may still run: a local run must not race it.
pub fn active_jobs(run: &Path) -> anyhow::Result<usize> {
    let Some(records) = Records::read(run)? else {
        return Ok(0);
    };
    match task_states(&records, &SlurmCli::default()) {
        Ok(states) => Ok(states
            .values()
            .filter(|(_, row)| row.as_ref().is_some_and(|r| r.state.active()))
            .count()),
        // Copied off the cluster: no Slurm here, nothing of it can run here either.
        Err(awsnet::Error::Scheduler { .. }) if !slurm_here() => Ok(0),
        Err(e) => Err(e.into()),
    }
}

fn slurm_here() -> bool {
    std::process::Command::new("squeue")
        .arg("--version")
        .output()
        .is_ok()
}

/// `awsnet cancel` for a queued run: one `scancel --name`.
pub fn cancel(run: &Path, records: &Records) -> anyhow::Result<()> {
    SlurmCli::default().cancel(&records.job_name)?;
    print_out(&format!(
        "cancelled the jobs named {} ({} submissions); `awsnet resume {}` queues what is missing\n",
        records.job_name,
        records.submissions.len(),
        run.display()
    ))
}

/// A submitted task that is not done.
#[derive(Debug, Serialize)]
struct Pending {
    stage: String,
    label: String,
    index: usize,
    /// Slurm's id (`123_4`).
    id: String,
    /// Slurm's state, lower case; `ended` when Slurm no longer knows the job.
    state: String,
    reason: String,
    log: PathBuf,
    /// queued, running or failed (ended without a manifest).
    #[serde(skip)]
    group: &'static str,
}

/// `awsnet status` for a queued run: the manifests' counts with Slurm's states beside them.
pub fn status(
    plan: &Plan,
    store: &RunStore,
    stages: &[StageStatus],
    health: &[HealthFlag],
    records: &Records,
    json: bool,
) -> anyhow::Result<()> {
    let scheduler = SlurmCli::default();
    let states = task_states(records, &scheduler)?;
    let latest = records.latest();
    let mut pending: Vec<Pending> = Vec::new();
    for ((stage, index), (id, row)) in &states {
        let submission = latest[&(stage.clone(), *index)];
        // A held worker's job is done when its search is, not when its first child is.
        let finished = if submission.held {
            search_done(plan, store, stage)?
        } else {
            store.state(stage, *index)? == TaskState::Done
        };
        if finished {
            continue;
        }
        let (state, reason, group) = match row {
            Some(QueueRow { state, reason, .. }) => {
                let group = match state {
                    SlurmState::Running => "running",
                    s if s.active() => "queued",
                    _ => "failed",
                };
                (state.name().to_string(), reason.clone(), group)
            }
            None => ("ended".to_string(), String::new(), "failed"),
        };
        pending.push(Pending {
            stage: stage.clone(),
            label: submission.label.clone(),
            index: *index,
            id: id.clone(),
            state,
            reason,
            log: log_of(&store.root, submission, *index),
            group,
        });
    }
    if json {
        return print_json(&serde_json::json!({
            "run": plan.run,
            "stages": stages,
            "health": health,
            "slurm": {
                "job_name": records.job_name,
                "scheduler_calls": scheduler.calls(),
                "not_done": pending,
            },
        }));
    }
    let text = render(plan, &store.root, stages, &pending, &scheduler);
    print_out(&(text + &super::run::render_health(health)))
}

fn render(
    plan: &Plan,
    run: &Path,
    stages: &[StageStatus],
    pending: &[Pending],
    scheduler: &SlurmCli,
) -> String {
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for p in pending {
        *counts.entry((p.stage.as_str(), p.group)).or_default() += 1;
    }
    let mut t = String::new();
    let width = stages
        .iter()
        .map(|s| s.label.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let name = job_name(plan);
    let _ = writeln!(
        t,
        "run {} in {} (Slurm jobs named {name})",
        &name["awsnet-".len()..],
        run.display()
    );
    let _ = writeln!(
        t,
        "{:width$}  {:>6}  {:>6}  {:>7}  {:>7}  {:>6}",
        "stage", "tasks", "done", "queued", "running", "failed"
    );
    for s in stages {
        let n = |g: &str| counts.get(&(s.id.as_str(), g)).copied().unwrap_or(0);
        let _ = writeln!(
            t,
            "{:width$}  {:>6}  {:>6}  {:>7}  {:>7}  {:>6}",
            s.label,
            s.tasks,
            s.done,
            n("queued"),
            n("running"),
            n("failed")
        );
    }
    let failed: Vec<&Pending> = pending.iter().filter(|p| p.group == "failed").collect();
    let never: Vec<&Pending> = pending
        .iter()
        .filter(|p| p.reason == "DependencyNeverSatisfied")
        .collect();
    for p in &failed {
        let _ = writeln!(
            t,
            "failed: {}[{}] (Slurm {} {}): log {}",
            p.label,
            p.index,
            p.id,
            p.state,
            p.log.display()
        );
    }
    if !never.is_empty() {
        let _ = writeln!(
            t,
            "{} tasks wait on a failed task and will not start",
            never.len()
        );
    }
    if !failed.is_empty() || !never.is_empty() {
        let _ = writeln!(
            t,
            "fix the cause, then `awsnet resume {}` queues what failed and what waits on it",
            run.display()
        );
    }
    let _ = writeln!(t, "({} Slurm calls)", scheduler.calls());
    t
}
