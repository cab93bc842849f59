//! `awsnet run JOB`: plan an experiment grid and show it.

use std::path::PathBuf;

use clap::Args;

use super::output::{print_json, print_out};
use awsnet::grid::inputs::Inputs;
use awsnet::grid::plan::plan;
use awsnet::grid::spec::JobSpec;
use awsnet::grid::status::{stage_status, StageStatus};
use awsnet::grid::store::RunStore;

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
}

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let mut job = JobSpec::read(&args.job, &args.set)?;
    match &args.data {
        Some(dir) => job.data.relocate(dir),
        None => job
            .data
            .resolve(args.job.parent().unwrap_or(std::path::Path::new(""))),
    }
    let inputs = Inputs::gather(&job.data, job.seed)?;
    let plan = plan(&job, &inputs)?;
    let run_dir = args
        .run
        .clone()
        .unwrap_or_else(|| PathBuf::from("results").join(&job.name));
    let store = RunStore::new(&run_dir);
    if !args.dry_run {
        anyhow::bail!(awsnet::Error::InvalidArgument {
            field: "--dry-run".into(),
            problem: "this version plans grids but cannot run them yet (the local executor \
                      comes next); pass --dry-run to see the plan"
                .into(),
        });
    }
    if args.json {
        return print_json(&plan);
    }
    let status = stage_status(&plan, &store)?;
    print_out(&render(&plan.run, &run_dir, &inputs, &status))
}

fn render(run: &str, dir: &std::path::Path, inputs: &Inputs, stages: &[StageStatus]) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let tasks: usize = stages.iter().map(|s| s.tasks).sum();
    let done: usize = stages.iter().map(|s| s.done).sum();
    let _ = writeln!(t, "run {} in {}", &run[..12], dir.display());
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
            &s.id[..12],
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
