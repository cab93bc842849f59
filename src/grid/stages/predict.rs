//! A predict task: deploy one member's four networks (the CASNs, then the ASANs at the
//! checkpoint `deploy` picks), record what it deployed and how healthy each net is, and segment
//! the test cases.

use std::path::Path;

use super::super::plan::{Work, ASAN_NETS};
use super::super::records::DeployedRecord;
use super::super::spec::Deploy;
use super::super::task::{relative, write_json, Task};
use super::member_state;
use crate::error::{Error, Result};
use crate::infer::pipeline::{Deployed, InferOptions};
use crate::train::checkpoint::read_state;
use crate::train::config::EpochRecord;
use crate::train::deploy::run_deployment;
use crate::train::health::assess;
use crate::train::run_dir::{read_lines, run_checkpoint, RunDir, Which};

pub(crate) fn predict(
    task: &Task<'_>,
    test: &Path,
    cases: &[String],
    deploy: Deploy,
    options: InferOptions,
) -> Result<()> {
    let member = task.index;
    // Each network with the validation records of its epochs, for its health.
    let casn = |i: usize| -> Result<(Deployed, Vec<EpochRecord>)> {
        let stage = task.parent(i)?;
        let Work::Casn { config } = &stage.work else {
            return Err(Error::Internal(format!(
                "parent {i} of predict is not CASN"
            )));
        };
        let run = task.store.task_dir(&stage.id, 0).join("run");
        let best = task.store.stored(&run_checkpoint(&run, Which::Best)?)?;
        let deployed = Deployed {
            config: (**config).clone(),
            checkpoint: task.store.root.join(best),
            source: run.clone(),
        };
        Ok((deployed, run_history(&run)?))
    };
    let asan = task.parent(2)?;
    let asan_net = |net: usize| -> Result<(Deployed, Vec<EpochRecord>)> {
        let which = member * ASAN_NETS.len() + net;
        let configs = match &asan.work {
            Work::Train { configs, .. } | Work::Update { configs, .. } => configs,
            other => return Err(Error::Internal(format!("predict after {other:?}"))),
        };
        // Which checkpoint is deployed (`deploy` in the job): by default a fixed-weight
        // run's best validation epoch, as `awsnet predict` does, and a search's final
        // parent, so the deployed model is one the search chose.
        let (checkpoint, history) = match &asan.work {
            Work::Train { .. } => {
                let run = task.store.task_dir(&asan.id, which).join("run");
                let checkpoint = run_deployment(&run, &configs[which], deploy)?;
                let stored = task.store.root.join(task.store.stored(&checkpoint)?);
                (stored, run_history(&run)?)
            }
            _ => {
                let (_, parent) = member_state(task, asan, which)?;
                let checkpoint = task.store.root.join(parent.deployed(deploy));
                (checkpoint, [parent.warmup, parent.history].concat())
            }
        };
        let deployed = Deployed {
            config: configs[which].clone(),
            source: checkpoint.clone(),
            checkpoint,
        };
        Ok((deployed, history))
    };
    let nets = [casn(0)?, casn(1)?, asan_net(0)?, asan_net(1)?];
    let deployed = nets
        .iter()
        .map(|(d, history)| {
            let epoch = read_state(&d.checkpoint)?.epoch;
            Ok(DeployedRecord {
                net: d.config.net,
                checkpoint: relative(&task.store.root, &d.checkpoint),
                epoch,
                health: assess(history, epoch, d.config.score()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let networks = nets.map(|(d, _)| d);
    let out = task.dir();
    write_json(&out.join("deployed.json"), &deployed)?;
    task.engine
        .predict(networks, test, cases, options, &out.join("pred"))
}

/// The progress lines of every epoch of the `awsnet train` run `run`.
fn run_history(run: &Path) -> Result<Vec<EpochRecord>> {
    let dir = RunDir::new(run);
    let epochs = dir.epoch_of(Which::Latest)?.unwrap_or(0);
    read_lines(&dir.progress(), epochs)
}
