//! `awsnet predict`.

use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;

use super::output::print_out;
use awsnet::backend::{check_cuda, DeviceChoice};
use awsnet::data::cases::discover;
use awsnet::infer::pipeline::{load_pipeline, predict_cases, InferOptions};
use awsnet::train::deploy::Deploy;

#[derive(Args)]
pub struct PredictArgs {
    /// Directory with the four `awsnet train` runs: casn_coarse/, casn_fine/, scar/, scar_edema/
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Directory of MyoPS cases (C0, DE and T2 per case; labels are not needed)
    #[arg(long, value_name = "DIR")]
    cases: PathBuf,
    /// Where <case>_pred.nii.gz files are written (all at once when every case is done)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Remove scar components under 60 pixels and edema components under 200, per slice
    #[arg(long)]
    clean_small: bool,
    /// Box only the coarse LV mask's largest connected component when cutting the ROI, so a
    /// stray blob cannot stretch it (the paper boxes the whole mask)
    #[arg(long)]
    largest_component: bool,
    /// Which checkpoint of scar/ and scar_edema/ predicts: default (an auto-weighted run's
    /// final parent, a fixed-weight run's best validation epoch), latest, best, best_auto
    #[arg(long, value_enum, default_value = "default")]
    deploy: Deploy,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

pub fn run(args: &PredictArgs) -> anyhow::Result<()> {
    match args.device {
        DeviceChoice::Cpu => run_on::<Autodiff<Flex>>(args, &Default::default()),
        DeviceChoice::Cuda(index) => {
            check_cuda(index)?;
            run_cuda(args, index)
        }
    }
}

#[cfg(feature = "cuda")]
fn run_cuda(args: &PredictArgs, index: usize) -> anyhow::Result<()> {
    use burn::backend::cuda::CudaDevice;
    use burn::backend::Cuda;
    run_on::<Autodiff<Cuda>>(args, &CudaDevice::new(index))
}

#[cfg(not(feature = "cuda"))]
fn run_cuda(_: &PredictArgs, _: usize) -> anyhow::Result<()> {
    // check_cuda() has already refused: this build has no CUDA backend.
    Err(awsnet::Error::Internal("CUDA backend not built".into()).into())
}

fn run_on<B: AutodiffBackend>(
    args: &PredictArgs,
    training_device: &B::Device,
) -> anyhow::Result<()> {
    let pipeline = load_pipeline::<B>(&args.model, args.deploy, training_device)?;
    let device = training_device.clone();
    let cases = discover(&args.cases)?;
    let options = InferOptions {
        largest_component: args.largest_component,
        clean_small: args.clean_small,
    };
    let bar = awsnet::progress::for_stderr("predict", "cases");
    let written = predict_cases(
        &pipeline,
        &cases.iter().collect::<Vec<_>>(),
        options,
        &args.out,
        &device,
        bar.as_ref(),
    )?;
    bar.finish();
    print_out(&format!(
        "wrote {} label volumes to {}\n",
        written,
        args.out.display()
    ))
}
