//! `awsnet eval`.

use std::path::PathBuf;

use clap::Args;

use super::output::{json_bytes, print_out, write_files};
use awsnet::data::labels::Target;
use awsnet::eval::evaluate::{evaluate_dirs, DEFAULT_TARGETS};
use awsnet::eval::summary::{eval_csv, eval_json, render_means};

#[derive(Args)]
pub struct EvalArgs {
    /// Directory of predicted label volumes (MyoPS codes)
    #[arg(long)]
    pred: PathBuf,
    /// Directory of reference label volumes; a flat MyoPS case folder works as it is
    #[arg(long)]
    gt: PathBuf,
    /// Write per-case metrics and their mean, std and median as JSON
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write per-case metrics as CSV (`case,<target>_<metric>,…`, readable by `awsnet stats`)
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Targets to evaluate: scar, scar_edema, myo, lv, lv_region
    #[arg(long, value_delimiter = ',', value_parser = parse_target,
          default_values_t = DEFAULT_TARGETS)]
    targets: Vec<Target>,
}

pub fn parse_target(name: &str) -> Result<Target, String> {
    Target::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
        format!("unknown target {name:?}; known: {}", known.join(", "))
    })
}

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let bar = awsnet::progress::for_stderr("eval", "cases");
    let cases = evaluate_dirs(&args.pred, &args.gt, &args.targets, bar.as_ref())?;
    bar.finish();

    let mut files = Vec::new();
    if let Some(path) = &args.json {
        files.push((
            path.clone(),
            json_bytes(&eval_json(&cases, &args.targets)?)?,
        ));
    }
    if let Some(path) = &args.csv {
        files.push((path.clone(), eval_csv(&cases, &args.targets)?));
    }
    write_files(&files)?;
    print_out(&render_means(&cases, &args.targets))
}
