//! `awsnet train`: one network's whole schedule on one machine, as a loop over the epoch-sized
//! steps of `train::steps` — the same steps grid tasks run one at a time.
//!
//! The run directory's layout is `train::run_dir`'s. A run that stopped (crash, preemption)
//! continues with `resume`: it reloads the latest checkpoint and trains the remaining epochs,
//! with the same result as a run that never stopped; raising `epochs` in the config and resuming
//! extends a finished run. Any other change to the config is refused on resume, and starting
//! over a directory that holds a run is refused unless resuming.

use std::path::Path;

use burn::tensor::backend::AutodiffBackend;

use super::checkpoint::{load_checkpoint, save_checkpoint};
use super::config::{EpochRecord, TrainConfig};
use super::run_dir::{read_lines, write_lines, RunDir, Which};
use super::samples::LoadCasns;
use super::steps::{self, Session, Trainee};
use crate::atomic;
use crate::das::weighting::WeightingLine;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::stop::Stop;

/// What a run has written so far, besides its checkpoints.
struct Logs {
    history: Vec<EpochRecord>,
    lines: Vec<WeightingLine>,
}

/// Train as `config` says into `out`, continuing a stopped run when `resume` is set; `casns`
/// loads the CASNs a `casn_rois` config names.
pub fn train_run<B: AutodiffBackend>(
    config: &TrainConfig,
    out: &Path,
    resume: bool,
    device: &B::Device,
    casns: LoadCasns<B::Device>,
    progress: &dyn Progress,
    stop: &dyn Stop,
) -> Result<Vec<EpochRecord>> {
    let dir = RunDir::new(out);
    let latest = dir.checkpoint(Which::Latest)?;
    if latest.is_some() && !resume {
        return Err(Error::invalid(
            "--out",
            format!(
                "{} already holds a training run; pass --resume to continue it or choose another directory",
                out.display()
            ),
        ));
    }
    let session = Session::<B>::prepare(config, device, casns)?;
    std::fs::create_dir_all(out).map_err(|e| Error::write(out, e))?;
    let (mut trainee, mut logs) = match latest {
        Some(latest) => reopen(&session, &dir, &latest)?,
        None => {
            let bytes = serde_json::to_vec_pretty(config)
                .map_err(|e| Error::Internal(format!("encoding the config: {e}")))?;
            atomic::write_bytes(&dir.config(), &bytes)?;
            let logs = Logs {
                history: Vec::new(),
                lines: Vec::new(),
            };
            (session.start(), logs)
        }
    };

    progress.set_total(session.steps_from(trainee.state.epoch));
    while trainee.state.epoch < config.epochs {
        let stepped = steps::epoch(&session, trainee, progress)?;
        trainee = stepped.trainee;
        let record = stepped.record;
        tracing::info!(
            epoch = record.epoch,
            loss = record.loss,
            val_dice = record.val_dice,
            seconds = record.seconds,
            "epoch done"
        );
        let score = |r: &EpochRecord| r.validation().score(config.score());
        let best_so_far = logs.history.iter().all(|r| score(r) < score(&record));
        logs.history.push(record);
        logs.lines.extend(stepped.line);
        commit_epoch(&session, &dir, &trainee, &logs, best_so_far)?;
        // The epoch is saved: the one safe point to stop at.
        if stop.requested() && trainee.state.epoch < config.epochs {
            return Err(Error::Stopped {
                saved: format!(
                    "epoch {} is saved; run it again (awsnet train --resume) to continue",
                    trainee.state.epoch
                ),
            });
        }
    }
    Ok(logs.history)
}

/// Reload a run from its latest checkpoint, refusing a config other than the one it started
/// with (apart from `epochs`, which may grow).
fn reopen<B: AutodiffBackend>(
    session: &Session<'_, B>,
    dir: &RunDir,
    latest: &Path,
) -> Result<(Trainee<B>, Logs)> {
    let config = session.config;
    let saved = std::fs::read_to_string(dir.config()).map_err(|e| Error::read(dir.config(), e))?;
    let mut saved: TrainConfig = serde_json::from_str(&saved)
        .map_err(|e| Error::input(dir.config(), format!("not a train config: {e}")))?;
    saved.epochs = config.epochs;
    if &saved != config {
        return Err(Error::invalid(
            "--config",
            format!(
                "differs from the configuration {} was started with ({}); resume with that one",
                dir.root.display(),
                dir.config().display()
            ),
        ));
    }
    let ck = load_checkpoint::<B>(latest, &session.config.optimizer, session.device)?;
    if config.weighting.is_some() && ck.state.weighting().is_none() {
        return Err(Error::input(latest, "no weighting state in the checkpoint"));
    }
    let epoch = ck.state.epoch;
    let history = read_lines(&dir.progress(), epoch)?;
    let logged = config
        .weighting
        .as_ref()
        .map_or(0, |w| w.logged_epochs(epoch));
    let lines = if logged > 0 {
        read_lines(&dir.weighting_log(), logged)?
    } else {
        Vec::new()
    };
    let trainee = Trainee {
        model: ck.model,
        optimizer: ck.optimizer,
        state: ck.state,
    };
    Ok((trainee, Logs { history, lines }))
}

/// Save the epoch just trained and move the pointers.
///
/// The epoch's checkpoint is complete on disk before any pointer names it, and `latest` moves
/// last: a run that dies anywhere here resumes from the previous epoch and redoes this one, with
/// the same result.
fn commit_epoch<B: AutodiffBackend>(
    session: &Session<'_, B>,
    dir: &RunDir,
    trainee: &Trainee<B>,
    logs: &Logs,
    best_so_far: bool,
) -> Result<()> {
    let epoch = trainee.state.epoch;
    let epoch_dir = dir.epoch_dir(epoch);
    let named = dir.checkpoint(Which::Best)?.as_ref() == Some(&epoch_dir);
    if !named {
        if epoch_dir.exists() {
            // Left by an attempt that died before pointing at it.
            std::fs::remove_dir_all(&epoch_dir).map_err(|e| Error::write(&epoch_dir, e))?;
        }
        save_checkpoint(
            &epoch_dir,
            &session.model_config,
            &trainee.model,
            &trainee.optimizer,
            &trainee.state,
        )?;
    }
    // Else a pointer already names this epoch's complete checkpoint, written by an attempt
    // that died before moving `latest`: the redone epoch has the same bytes.
    if best_so_far {
        dir.point(Which::Best, epoch)?;
    }
    write_lines(&dir.progress(), &logs.history)?;
    if !logs.lines.is_empty() {
        write_lines(&dir.weighting_log(), &logs.lines)?;
    }
    dir.point(Which::Latest, epoch)?;
    dir.prune()
}
