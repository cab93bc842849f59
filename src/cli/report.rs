//! `awsnet report RUN`: the run's tables and figures as `RUN/results/report.md`.

use std::path::PathBuf;

use clap::Args;

use super::output::print_out;
use awsnet::grid::results::{gather, results_dir};
use awsnet::report::document::write_report;

#[derive(Args)]
pub struct ReportArgs {
    /// A run directory whose grid has finished (holds results/summary.json)
    run: PathBuf,
}

pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let data = gather(&args.run)?;
    let report = write_report(&data, &results_dir(&args.run))?;
    print_out(&format!("report: {}\n", report.display()))
}
