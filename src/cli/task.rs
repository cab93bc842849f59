//! `awsnet task RUN --stage ID --index I`: one task of a planned grid (what executors run).

use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use clap::Args;

use awsnet::backend::{check_cuda, DeviceChoice};
use awsnet::engine::BurnEngine;
use awsnet::grid::compute;
use awsnet::grid::held::run_worker;
use awsnet::grid::task::{run_task, Outcome};
use awsnet::stop::OnSignals;

#[derive(Args)]
pub struct TaskArgs {
    /// The run directory (holds plan.json)
    run: PathBuf,
    /// Stage id (from plan.json or `awsnet run --dry-run`)
    #[arg(long)]
    stage: String,
    /// Task index within the stage
    #[arg(long)]
    index: usize,
    /// cpu, cuda or cuda:N
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// Run as held worker INDEX of the DAS search beginning with sample stage ID: train this
    /// slot's child (and any unclaimed one) each epoch, and the update once, until the search
    /// is done (what Slurm's das_mode held runs)
    #[arg(long)]
    held: bool,
    /// With --held: seconds without a heartbeat after which a worker counts as lost
    #[arg(long, default_value_t = 120, requires = "held")]
    stale_seconds: u64,
}

impl TaskArgs {
    fn run_on(
        &self,
        engine: &dyn awsnet::grid::engine::Engine,
        stop: &OnSignals,
    ) -> awsnet::Result<Outcome> {
        if self.held {
            run_worker(
                &self.run,
                &self.stage,
                self.index,
                engine,
                stop,
                std::time::Duration::from_secs(self.stale_seconds),
            )?;
            Ok(Outcome::Ran)
        } else {
            run_task(&self.run, &self.stage, self.index, engine)
        }
    }
}

pub fn run(args: &TaskArgs) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    if run_on_device(args)? == Outcome::AlreadyDone {
        // Its cost was recorded by the run that did it.
        tracing::info!(
            "stage {} task {}: already done (its manifest verifies); nothing to do",
            args.stage,
            args.index
        );
        return Ok(());
    }
    // The task's cost, for results/compute.json; never part of its outputs.
    compute::record(
        &args.run,
        &compute::TaskCost {
            stage: args.stage.clone(),
            index: args.index,
            held: args.held,
            wall_seconds: started.elapsed().as_secs_f64(),
            cpu_seconds: compute::cpu_seconds(),
            device: args.device.to_string(),
        },
    )?;
    Ok(())
}

fn run_on_device(args: &TaskArgs) -> anyhow::Result<Outcome> {
    match args.device {
        DeviceChoice::Cpu => {
            let stop = OnSignals::install();
            let engine = BurnEngine::<Autodiff<Flex>>::new(Default::default(), &stop);
            Ok(args.run_on(&engine, &stop)?)
        }
        DeviceChoice::Cuda(index) => {
            check_cuda(index)?;
            run_cuda(args, index)
        }
    }
}

#[cfg(feature = "cuda")]
fn run_cuda(args: &TaskArgs, index: usize) -> anyhow::Result<Outcome> {
    use burn::backend::cuda::CudaDevice;
    use burn::backend::Cuda;
    let stop = awsnet::stop::OnSignals::install();
    let engine = BurnEngine::<Autodiff<Cuda>>::new(CudaDevice::new(index), &stop);
    Ok(args.run_on(&engine, &stop)?)
}

#[cfg(not(feature = "cuda"))]
fn run_cuda(_: &TaskArgs, _: usize) -> anyhow::Result<Outcome> {
    // check_cuda() has already refused: this build has no CUDA backend.
    Err(awsnet::Error::Internal("CUDA backend not built".into()).into())
}
