//! `awsnet run JOB`, `awsnet resume RUN`, `awsnet status RUN`: plan an experiment grid, run it
//! with the local executor, and show where a run stands.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::output::{print_json, print_out};
use awsnet::backend::DeviceChoice;
use awsnet::grid::backend::BackendKind;
use awsnet::grid::exec::local::{run_plan, LocalOptions};
use awsnet::grid::exec::lock::{Holder, RunLock};
use awsnet::grid::exec::slurm::records::Records;
use awsnet::grid::history::retire;
use awsnet::grid::inputs::Inputs;
use awsnet::grid::plan::{plan, Plan};
use awsnet::grid::spec::{Backend, JobSpec};
use awsnet::grid::status::HealthFlag;
use awsnet::grid::status::{stage_status, StageStatus};
use awsnet::grid::store::RunStore;
use awsnet::stop::{OnSignals, Stop};

#[derive(Args)]
pub struct RunArgs {
    /// The job spec (JSON; see jobs/README.md)
    job: PathBuf,
    /// Run directory [default: results/<job name>]
    #[arg(long, value_name = "DIR")]
    run: Option<PathBuf>,
    /// Data directory: the `root` of a job that splits one directory, else the base of its
    /// relative `train` and `test` directories [default: the job file's directory]
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Override a field of the job: --set scale.epochs=3 --set methods.pam_das.weighting=norl
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// Print the plan (stages, tasks, dependencies, what is done) and run nothing
    #[arg(long)]
    dry_run: bool,
    /// With --dry-run: the whole plan as JSON
    #[arg(long)]
    json: bool,
    /// Nightly retraining: when the run directory holds this job's run over other data (or
    /// other settings), re-plan it in place: stages the change does not touch are reused,
    /// only the rest runs, the previous results move to RUN/history/ and tonight's report
    /// compares with them. Nothing changed: nothing runs
    #[arg(long)]
    if_changed: bool,
    #[command(flatten)]
    exec: ExecArgs,
}

/// Where and how tasks run.
#[derive(Args)]
pub struct ExecArgs {
    /// Run on this machine, or queue on Slurm [default: the job's backend.kind]
    #[arg(long, value_enum)]
    backend: Option<BackendKind>,
    /// Tasks at a time [default: backend.workers, else the number of cores]
    #[arg(long)]
    workers: Option<usize>,
    /// cpu, cuda or cuda:N, for every task of a local run (on Slurm: cuda where the backend
    /// asks for GPUs)
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

#[derive(Args)]
pub struct ResumeArgs {
    /// A run directory `awsnet run` made
    run: PathBuf,
    #[command(flatten)]
    exec: ExecArgs,
}

#[derive(Args)]
pub struct CancelArgs {
    /// A run directory a running `awsnet run` or `resume` drives
    run: PathBuf,
}

#[derive(Args)]
pub struct StatusArgs {
    /// A run directory `awsnet run` made
    run: PathBuf,
    /// One JSON document instead of a table
    #[arg(long)]
    json: bool,
}

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    // Before the lock exists, so `awsnet cancel` never finds a driver that would die of it.
    let stop = OnSignals::install();
    // `--backend` is `--set backend.kind=…` given first, so `--set backend.mem=…` applies to it.
    let mut overrides = Vec::new();
    if let Some(kind) = args.exec.backend {
        overrides.push(format!("backend.kind={}", kind.name()));
    }
    overrides.extend(args.set.iter().cloned());
    let mut job = JobSpec::read(&args.job, &overrides)?;
    match &args.data {
        Some(dir) => job.data.relocate(dir),
        None => job.data.resolve(args.job.parent().unwrap_or(Path::new(""))),
    }
    let inputs = Inputs::gather(&job.data, job.seed)?;
    let plan = plan(&job, &inputs)?;
    let run_dir = args
        .run
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&job.name));
    let store = RunStore::new(&run_dir);
    if args.dry_run {
        if args.json {
            return print_json(&plan);
        }
        let status = stage_status(&plan, &store)?;
        print_out(&render(&plan, &run_dir, &status))?;
        if let Backend::Slurm(settings) = &plan.job.backend {
            let script = super::slurm::write_scripts(&plan, &store, settings)?;
            print_out(&format!(
                "sbatch scripts written, nothing queued: {}\n",
                script.display()
            ))?;
        }
        return Ok(());
    }
    std::fs::create_dir_all(&run_dir).map_err(|e| awsnet::Error::Write {
        path: run_dir.clone(),
        io: e,
    })?;
    let _lock = RunLock::acquire(&run_dir)?;
    match store.read_plan() {
        Ok(existing)
            if existing.run != plan.run
                && args.if_changed
                && existing.job.name == plan.job.name =>
        {
            if super::slurm::active_jobs(&store.root)? > 0 {
                anyhow::bail!(awsnet::Error::InvalidArgument {
                    field: "--if-changed".into(),
                    problem: format!(
                        "the previous run in {} still has Slurm jobs queued or running; let \
                         them finish or `awsnet cancel` it first",
                        run_dir.display()
                    ),
                });
            }
            let kept = retire(&store, &existing)?;
            store.write_plan(&plan)?;
            print_out(&format!(
                "the data or the job changed since run {}: re-planned as {}; unchanged stages \
                 are reused; the previous results are in {}\n",
                short(&existing.run),
                short(&plan.run),
                kept.display()
            ))?;
        }
        Ok(existing) if existing.run != plan.run => anyhow::bail!(awsnet::Error::InvalidArgument {
            field: "--run".into(),
            problem: format!(
                "{} holds another grid's run ({}); choose another run directory, or `awsnet \
                 resume` that run",
                run_dir.display(),
                short(&existing.run)
            ),
        }),
        Ok(_) => {}
        Err(_) if !store.plan_file().exists() => store.write_plan(&plan)?,
        Err(e) => return Err(e.into()),
    }
    execute(&plan, &store, &args.exec, &stop)
}

pub fn resume(args: &ResumeArgs) -> anyhow::Result<()> {
    let stop = OnSignals::install();
    let store = RunStore::new(&args.run);
    let mut plan = store.read_plan()?;
    plan.job.backend = plan.job.backend.clone().with_kind(args.exec.backend);
    let _lock = RunLock::acquire(&args.run)?;
    execute(&plan, &store, &args.exec, &stop)
}

/// Ask the driver of a run to stop: it starts no more tasks, and its running tasks save at their
/// next safe point and exit.
pub fn cancel(args: &CancelArgs) -> anyhow::Result<()> {
    if let Some(records) = Records::read(&args.run)? {
        return super::slurm::cancel(&args.run, &records);
    }
    let lock = args.run.join("lock");
    let holder = Holder::read(&lock);
    if let Some(other) = holder.as_ref().and_then(Holder::elsewhere) {
        return Err(awsnet::Error::InvalidArgument {
            field: "RUN".into(),
            problem: format!(
                "{} is being run from host {other}: cancel it there (its lock: {})",
                args.run.display(),
                lock.display()
            ),
        }
        .into());
    }
    let Some(holder) = holder.filter(Holder::running) else {
        return print_out(&format!("nothing is running {}\n", args.run.display()));
    };
    let pid = holder.pid;
    // SAFETY: SIGTERM to the process the run's lock names, checked above to be that process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while holder.running() && lock.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    print_out(&format!(
        "cancelled {} (process {pid}); `awsnet resume {}` continues it\n",
        args.run.display(),
        args.run.display()
    ))
}

pub fn status(args: &StatusArgs) -> anyhow::Result<()> {
    let store = RunStore::new(&args.run);
    let plan = store.read_plan()?;
    let stages = stage_status(&plan, &store)?;
    let health = awsnet::grid::status::health(&plan, &store)?;
    if let Some(records) = Records::read(&args.run)? {
        return super::slurm::status(&plan, &store, &stages, &health, &records, args.json);
    }
    if args.json {
        return print_json(
            &serde_json::json!({ "run": plan.run, "stages": stages, "health": health }),
        );
    }
    print_out(&(render(&plan, &args.run, &stages) + &render_health(&health)))
}

/// The networks that did not learn, a line each (nothing when all did).
pub fn render_health(health: &[HealthFlag]) -> String {
    health
        .iter()
        .map(|flag| format!("⚠ {}\n", flag.describe()))
        .collect()
}

fn execute(plan: &Plan, store: &RunStore, exec: &ExecArgs, stop: &dyn Stop) -> anyhow::Result<()> {
    let workers = match &plan.job.backend {
        Backend::Slurm(settings) => return super::slurm::queue(plan, store, settings),
        Backend::Local { workers } => workers,
    };
    let active = super::slurm::active_jobs(&store.root)?;
    if active > 0 {
        anyhow::bail!(awsnet::Error::InvalidArgument {
            field: "--backend".into(),
            problem: format!(
                "{active} tasks of this run are still queued or running on Slurm; wait for \
                 them, or `awsnet cancel {}` first",
                store.root.display()
            ),
        });
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = exec.workers.or(*workers).unwrap_or(cores).max(1);
    let options = LocalOptions {
        exe: std::env::current_exe().context("locating the awsnet binary")?,
        workers,
        threads: (cores / workers).max(1),
        device: exec.device.to_string(),
    };
    let progress = awsnet::progress::parts_for_stderr(&plan.job.name);
    let report = run_plan(plan, store, &options, progress.as_ref(), stop)?;
    if report.cancelled {
        anyhow::bail!(awsnet::Error::Stopped {
            saved: format!(
                "running tasks saved their progress; `awsnet resume {}` continues",
                store.root.display()
            ),
        });
    }
    if !report.failed.is_empty() || !report.blocked.is_empty() {
        let mut text = format!("{} of {} tasks failed", report.failed.len(), report.ran);
        for f in &report.failed {
            let code = f.code.map_or("a signal".into(), |c| format!("exit {c}"));
            text += &format!(
                "\n  {}[{}] ({code}): log {}",
                f.label,
                f.index,
                f.log.display()
            );
        }
        if !report.blocked.is_empty() {
            text += &format!(
                "\n  not started (a stage before them failed): {}",
                report.blocked.join(", ")
            );
        }
        text += &format!(
            "\nfix the cause, then `awsnet resume {}` runs what is missing",
            store.root.display()
        );
        anyhow::bail!(text);
    }
    let results = store.root.join("results");
    let report_md = results.join("report.md");
    let report_line = if report_md.exists() {
        format!("report: {}", report_md.display())
    } else {
        format!(
            "report: none (see the stats task's log; `awsnet report {}` retries)",
            store.root.display()
        )
    };
    print_out(&format!(
        "{} tasks run, {} already done\nsummary: {}\ncompute: {}\n{report_line}\n",
        report.ran,
        report.already_done,
        results.join("summary.json").display(),
        results.join("compute.json").display()
    ))
}

/// The first 12 hex digits of an id, as people quote them.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

fn render(plan: &Plan, dir: &Path, stages: &[StageStatus]) -> String {
    use std::fmt::Write as _;
    let inputs = &plan.inputs;
    let mut t = String::new();
    let tasks: usize = stages.iter().map(|s| s.tasks).sum();
    let done: usize = stages.iter().map(|s| s.done).sum();
    let _ = writeln!(t, "run {} in {}", short(&plan.run), dir.display());
    let _ = writeln!(
        t,
        "cases: {} training ({} for validation: {}), {} test",
        inputs.train.ids.len(),
        inputs.validation.len(),
        inputs.validation.join(", "),
        inputs.test.ids.len()
    );
    let width = stages
        .iter()
        .map(|s| s.label.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        t,
        "{:12}  {:width$}  {:>6}  {:>6}  after",
        "stage", "label", "tasks", "done"
    );
    for s in stages {
        let after = if s.after.len() > 3 {
            format!("{} stages", s.after.len())
        } else {
            s.after.join(", ")
        };
        let _ = writeln!(
            t,
            "{:12}  {:width$}  {:>6}  {:>6}  {after}",
            short(&s.id),
            s.label,
            s.tasks,
            s.done
        );
        for (index, why) in &s.damaged {
            let _ = writeln!(t, "{:12}  task {index} reruns: {why}", "");
        }
    }
    let _ = writeln!(t, "{} stages, {tasks} tasks, {done} done", stages.len());
    t
}
