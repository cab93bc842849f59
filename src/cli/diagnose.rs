//! `awsnet diagnose` (what a trained checkpoint does on its validation and test slices, in
//! each batch-normalisation mode) and `awsnet export-schedule` (a fixed-weight schedule's exact
//! batches, for training the same network elsewhere).

use std::fmt::Write as _;
use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use clap::Args;

use super::output::{print_json, print_out};
use awsnet::infer::casn_rois::casn_locator;
use awsnet::train::config::TrainConfig;
use awsnet::train::deploy::Deploy;
use awsnet::train::diagnose::{diagnose_run, Diagnosis, Scored};
use awsnet::train::export::export_schedule;

type Cpu = Autodiff<Flex>;

#[derive(Args)]
pub struct DiagnoseArgs {
    /// An `awsnet train` run directory (a grid's: RUN/stages/<stage>/task-N/run)
    run: PathBuf,
    /// Which checkpoint: as `awsnet predict --deploy`
    #[arg(long, value_enum, default_value_t = Deploy::Default)]
    deploy: Deploy,
    /// Also score these cases of the run's data directory (comma-separated ids)
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    test_cases: Vec<String>,
    /// Print one JSON document instead of a table
    #[arg(long)]
    json: bool,
}

pub fn run(args: &DiagnoseArgs) -> anyhow::Result<()> {
    let (checkpoint, diagnosis) = diagnose_run::<Cpu>(
        &args.run,
        args.deploy,
        &args.test_cases,
        &Default::default(),
        casn_locator::<Cpu>,
    )?;
    if args.json {
        return print_json(&serde_json::json!({
            "checkpoint": checkpoint,
            "diagnosis": diagnosis,
        }));
    }
    print_out(&table(&checkpoint, &diagnosis))
}

fn table(checkpoint: &std::path::Path, d: &Diagnosis) -> String {
    let mut t = format!(
        "checkpoint {}\nvalidation: {} cases, {} slices, {} with the class; test: {} cases\n\n",
        checkpoint.display(),
        d.validation_cases,
        d.validation_slices,
        d.validation_lesion_slices,
        d.test_cases
    );
    t.push_str("mode         set         per-slice  pooled  per-case  found px  pred %  truth %  gate means\n");
    let mut row = |mode: &str, set: &str, s: &Scored| {
        let gates: Vec<String> = s.gate_means.iter().map(|g| format!("{g:.3}")).collect();
        let _ = writeln!(
            t,
            "{mode:<12} {set:<10} {:>10.3} {:>7.3} {:>9.3} {:>9} {:>7.2} {:>8.2}  {}",
            s.per_slice,
            s.pooled,
            s.per_case,
            s.found,
            100.0 * s.predicted_share,
            100.0 * s.truth_share,
            gates.join(" ")
        );
    };
    for m in &d.modes {
        let mode = serde_json::to_value(m.mode)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        row(&mode, "validation", &m.validation);
        if let Some(test) = &m.test {
            row(&mode, "test", test);
        }
    }
    t
}

#[derive(Args)]
pub struct ExportArgs {
    /// Training configuration (as `awsnet train --config`), fixed weights only
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// A new or empty directory
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Cases of the config's data directory to write as the test set (comma-separated ids)
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    test_cases: Vec<String>,
}

pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let config = TrainConfig::read(&args.config)?;
    let manifest = export_schedule::<Cpu>(
        &config,
        &args.test_cases,
        &args.out,
        &Default::default(),
        casn_locator::<Cpu>,
    )?;
    let batches: usize = manifest.epochs.iter().map(|e| e.batches.len()).sum();
    print_out(&format!(
        "wrote {} epochs ({batches} batches), {} validation and {} test slices to {}\n",
        manifest.epochs.len(),
        manifest.sets.get("validation").map_or(0, |s| s.n),
        manifest.sets.get("test").map_or(0, |s| s.n),
        args.out.display()
    ))
}
