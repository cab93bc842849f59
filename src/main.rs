//! The `awsnet` command line: parse arguments, call the library, print results, and map errors to
//! exit codes (0 success, 1 internal failure, 2 the user's input or usage) in one place.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use awsnet::data::cases::{self, CaseReport};
use awsnet::data::inspect;
use awsnet::data::phantom::{self, PhantomConfig, PreviewRequest};
use awsnet::error::{EXIT_INTERNAL, EXIT_USER};
use awsnet::report::contact_sheet::ContactSheet;
use cli::output::{print_json, print_out};

#[derive(Parser)]
#[command(
    name = "awsnet",
    version,
    about = "AWSnet myocardial pathology segmentation: data, training, evaluation and experiment grids"
)]
struct Cli {
    /// Log lines (on stderr) as text, or as one JSON object per line for log collectors.
    /// Which lines: the AWSNET_LOG filter, e.g. `info`, `awsnet::grid=debug` (default `warn`).
    /// Grid tasks inherit both.
    #[arg(long, global = true, value_enum, env = "AWSNET_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Generate synthetic multi-sequence cases in the flat MyoPS layout
    Phantom(PhantomArgs),
    /// Print a NIfTI file's header and voxel statistics as JSON
    Inspect {
        /// A NIfTI-1 file (.nii or .nii.gz)
        file: PathBuf,
    },
    /// Discover and validate the MyoPS cases in a directory
    Cases {
        dir: PathBuf,
        /// Print one JSON document instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Per-case Dice, Jaccard, HD, HD95 and ASSD (mm) of predicted label volumes against references
    Eval(cli::eval::EvalArgs),
    /// Paired t-test, Wilcoxon signed-rank and bootstrap CI between two methods' per-case values
    Stats(cli::stats::StatsArgs),
    /// Paper-style tables (mean ± std, p-values) as Markdown, CSV or LaTeX
    Table(cli::table::TableArgs),
    /// Train one network of the pipeline (CASN coarse/fine, ASAN-S/P), locally
    Train(cli::train::TrainArgs),
    /// What a trained checkpoint does on its validation (and test) slices, in each batch-norm mode
    Diagnose(cli::diagnose::DiagnoseArgs),
    /// Write a fixed-weight schedule's exact batches, for training the same net elsewhere
    ExportSchedule(cli::diagnose::ExportArgs),
    /// Segment cases with trained networks into MyoPS-coded label volumes
    Predict(cli::predict::PredictArgs),
    /// Combine several models' label volumes per case by majority vote (ties: earliest input)
    Vote(cli::vote::VoteArgs),
    /// Run an experiment grid (jobs/*.json) here or queue it on Slurm; --dry-run shows its plan
    Run(cli::run::RunArgs),
    /// Run what is missing or failed of a grid's run directory
    Resume(cli::run::ResumeArgs),
    /// Where a grid's run stands, stage by stage
    Status(cli::run::StatusArgs),
    /// Stop the process running a grid; its tasks save at their next safe point
    Cancel(cli::run::CancelArgs),
    /// A finished grid's tables and figures: RUN/results/report.md (the grid writes it too)
    Report(cli::report::ReportArgs),
    /// One task of a planned grid (what executors run)
    Task(cli::task::TaskArgs),
}

#[derive(Args)]
struct PhantomArgs {
    /// Output directory (created if missing)
    #[arg(long)]
    out: PathBuf,
    /// Number of cases
    #[arg(long, default_value_t = PhantomConfig::default().cases)]
    cases: usize,
    /// Seed: the same seed gives the same bytes
    #[arg(long, default_value_t = PhantomConfig::default().seed)]
    seed: u64,
    /// In-plane size in pixels [default: 128 128]
    #[arg(long, num_args = 2, value_names = ["H", "W"])]
    size: Option<Vec<usize>>,
    /// Range of slices per case [default: 3 5]
    #[arg(long, num_args = 2, value_names = ["MIN", "MAX"])]
    slices: Option<Vec<usize>>,
    /// Voxel spacing in mm [default: 1.8 1.8 14]
    #[arg(long, num_args = 3, value_names = ["X", "Y", "Z"])]
    spacing: Option<Vec<f64>>,
    /// Id of the first case (myops_training_<id>)
    #[arg(long, default_value_t = PhantomConfig::default().first_id)]
    first_id: u32,
    /// How hard the lesions are to see, 0 to 1: lower scar/edema contrast to myocardium (60 %
    /// less at 1) and more noise (2.5x at 1); the anatomy stays the same
    #[arg(long, default_value_t = PhantomConfig::default().difficulty)]
    difficulty: f64,
    /// Also write a PNG contact sheet: one row per slice, columns C0, DE, T2, labels
    #[arg(long, value_name = "FILE.png")]
    preview: Option<PathBuf>,
    /// Replace files of the same names even if awsnet did not write them
    #[arg(long)]
    force: bool,
}

impl PhantomArgs {
    fn config(&self) -> PhantomConfig {
        let d = PhantomConfig::default();
        PhantomConfig {
            cases: self.cases,
            seed: self.seed,
            size: self.size.as_deref().map_or(d.size, |v| [v[0], v[1]]),
            slices: self.slices.as_deref().map_or(d.slices, |v| [v[0], v[1]]),
            spacing: self
                .spacing
                .as_deref()
                .map_or(d.spacing, |v| [v[0], v[1], v[2]]),
            first_id: self.first_id,
            difficulty: self.difficulty,
        }
    }
}

fn main() -> ExitCode {
    awsnet::memory::keep_freed_memory();
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit_code(&err))
        }
    }
}

/// The one place errors become exit codes.
fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(e) = err.downcast_ref::<awsnet::Error>() {
        return e.exit_code();
    }
    if err.downcast_ref::<UserError>().is_some() {
        return EXIT_USER;
    }
    EXIT_INTERNAL
}

/// A failure already explained on the output (e.g. invalid cases listed in a report).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UserError(String);

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AWSNET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: task logs and pipes get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    // The tasks an executor starts (local processes, Slurm jobs exporting the environment)
    // log the same way.
    let name = match format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    std::env::set_var("AWSNET_LOG_FORMAT", name);
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Phantom(args) => run_phantom(&args),
        Command::Inspect { file } => {
            let summary = inspect::inspect(&file)?;
            print_json(&summary)
        }
        Command::Cases { dir, json } => run_cases(&dir, json),
        Command::Eval(args) => cli::eval::run(&args),
        Command::Stats(args) => cli::stats::run(&args),
        Command::Table(args) => cli::table::run(&args),
        Command::Train(args) => cli::train::run(&args),
        Command::Predict(args) => cli::predict::run(&args),
        Command::Diagnose(args) => cli::diagnose::run(&args),
        Command::ExportSchedule(args) => cli::diagnose::export(&args),
        Command::Vote(args) => cli::vote::run(&args),
        Command::Run(args) => cli::run::run(&args),
        Command::Resume(args) => cli::run::resume(&args),
        Command::Status(args) => cli::run::status(&args),
        Command::Report(args) => cli::report::run(&args),
        Command::Cancel(args) => cli::run::cancel(&args),
        Command::Task(args) => cli::task::run(&args),
    }
}

fn run_phantom(args: &PhantomArgs) -> anyhow::Result<()> {
    let config = args.config();
    let bar = awsnet::progress::for_stderr("phantom", "cases");
    bar.set_total(config.cases as u64);
    let mut sheet = ContactSheet::new();
    let preview = args.preview.as_deref().map(|path| PreviewRequest {
        path,
        draw: &mut sheet,
    });
    let summary = phantom::write_phantoms(&config, &args.out, preview, args.force, bar.as_ref())?;
    let with_pathology = summary.cases.iter().filter(|c| c.has_pathology).count();
    let mut text = format!(
        "wrote {} cases ({} with pathology) to {}: {}×{} px, {:?} mm, seed {}\n",
        summary.cases.len(),
        with_pathology,
        summary.out.display(),
        config.size[0],
        config.size[1],
        config.spacing,
        config.seed
    );
    if let Some(p) = &summary.preview {
        text += &format!("preview: {}\n", p.display());
    }
    print_out(&text)
}

fn run_cases(dir: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let reports = cases::survey(dir)?;
    let invalid = reports.iter().filter(|r| !r.valid).count();
    if json {
        print_json(&serde_json::json!({
            "dir": dir.display().to_string(),
            "cases": reports,
            "valid": reports.len() - invalid,
            "invalid": invalid,
        }))?;
    } else {
        print_out(&case_table(&reports))?;
    }
    if invalid > 0 {
        return Err(UserError(format!(
            "{invalid} of {} cases in {} are invalid",
            reports.len(),
            dir.display()
        ))
        .into());
    }
    Ok(())
}

fn case_table(reports: &[CaseReport]) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let width = reports.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    let _ = writeln!(
        t,
        "{:width$}  {:>14}  {:>20}  {:>6}  labels",
        "id", "shape", "spacing (mm)", "slices"
    );
    for r in reports {
        let _ = match (&r.summary, &r.error) {
            (Some(s), _) => {
                let shape = format!("{}×{}×{}", s.shape[0], s.shape[1], s.shape[2]);
                let spacing = format!(
                    "{:.2}×{:.2}×{:.2}",
                    s.spacing[0], s.spacing[1], s.spacing[2]
                );
                let labels = if s.has_labels {
                    s.labels_present.join(", ")
                } else {
                    "(none: no gd file)".to_string()
                };
                writeln!(
                    t,
                    "{:width$}  {shape:>14}  {spacing:>20}  {:>6}  {labels}",
                    r.id, s.slices
                )
            }
            (None, Some(e)) => writeln!(t, "{:width$}  INVALID: {e}", r.id),
            (None, None) => writeln!(t, "{:width$}  INVALID", r.id),
        };
    }
    let invalid = reports.iter().filter(|r| !r.valid).count();
    let _ = writeln!(
        t,
        "{} cases: {} valid, {invalid} invalid",
        reports.len(),
        reports.len() - invalid
    );
    t
}
