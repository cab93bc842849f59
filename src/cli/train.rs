//! `awsnet train`.

use std::fmt::Write as _;
use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use clap::Args;

use super::output::print_out;
use awsnet::backend::{check_cuda, DeviceChoice};
use awsnet::infer::casn_rois::casn_locator;
use awsnet::stop::OnSignals;
use awsnet::train::checkpoint::read_state;
use awsnet::train::config::{EpochRecord, TrainConfig};
use awsnet::train::deploy::{run_deployment, Deploy};
use awsnet::train::health::assess;
use awsnet::train::run::train_run;

#[derive(Args)]
pub struct TrainArgs {
    /// Training configuration (JSON; see the README)
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// Run directory [default: results/<config file name without .json>]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Continue the run in the output directory from its latest checkpoint
    #[arg(long)]
    resume: bool,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let config = TrainConfig::read(&args.config)?;
    let out = args.out.clone().unwrap_or_else(|| {
        let stem = args.config.file_stem().unwrap_or_default();
        PathBuf::from("results").join(stem)
    });
    let bar = awsnet::progress::for_stderr("train", "samples");
    // SIGTERM or SIGUSR2: finish the epoch, save it, exit 4; `--resume` continues from there.
    let stop = OnSignals::install();
    let history = match args.device {
        DeviceChoice::Cpu => train_run::<Autodiff<Flex>>(
            &config,
            &out,
            args.resume,
            &Default::default(),
            casn_locator::<Autodiff<Flex>>,
            bar.as_ref(),
            &stop,
        )?,
        DeviceChoice::Cuda(index) => {
            check_cuda(index)?;
            train_cuda(&config, &out, args.resume, index, bar.as_ref(), &stop)?
        }
    };
    bar.finish();
    let mut text = summary(&history, &out);
    // What `awsnet predict` would deploy, and whether that net learned.
    let deployed = run_deployment(&out, &config, Deploy::Default)?;
    let epoch = read_state(&deployed)?.epoch;
    let _ = writeln!(text, "deployed by default: epoch {epoch}");
    for issue in assess(&history, epoch, config.score()) {
        let _ = writeln!(text, "⚠ {}", issue.describe());
    }
    print_out(&text)
}

#[cfg(feature = "cuda")]
fn train_cuda(
    config: &TrainConfig,
    out: &std::path::Path,
    resume: bool,
    index: usize,
    bar: &dyn awsnet::progress::Progress,
    stop: &dyn awsnet::stop::Stop,
) -> awsnet::Result<Vec<EpochRecord>> {
    use burn::backend::cuda::CudaDevice;
    use burn::backend::Cuda;
    train_run::<Autodiff<Cuda>>(
        config,
        out,
        resume,
        &CudaDevice::new(index),
        casn_locator::<Autodiff<Cuda>>,
        bar,
        stop,
    )
}

#[cfg(not(feature = "cuda"))]
fn train_cuda(
    _: &TrainConfig,
    _: &std::path::Path,
    _: bool,
    _: usize,
    _: &dyn awsnet::progress::Progress,
    _: &dyn awsnet::stop::Stop,
) -> awsnet::Result<Vec<EpochRecord>> {
    // check_cuda() has already refused: this build has no CUDA backend.
    Err(awsnet::Error::Internal("CUDA backend not built".into()))
}

fn summary(history: &[EpochRecord], out: &std::path::Path) -> String {
    let mut text = String::from("epoch      loss  val Dice  (pooled)   seconds\n");
    for r in history {
        text.push_str(&format!(
            "{:>5} {:>9.4} {:>9.4} {:>9.4} {:>9.1}\n",
            r.epoch, r.loss, r.val_dice, r.val_dice_pooled, r.seconds
        ));
    }
    text.push_str(&format!("run directory: {}\n", out.display()));
    text
}
