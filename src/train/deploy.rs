//! Which checkpoint of a trained network is deployed, for `awsnet predict` and the grid's
//! predict stage alike.
//!
//! The choice matters for auto-weighted schedules: in the paper's 150 fixed + 50 DAS epochs,
//! the best validation epoch may well be a fixed-weight one, and deploying it would test a
//! model that never used the weights the search chose. By default a search is therefore
//! deployed at its final parent, and a fixed-weight run at its best validation epoch.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::config::{EpochKind, EpochRecord, TrainConfig};
use super::run_dir::{read_lines, run_checkpoint, RunDir, Which};
use crate::error::{Error, Result};

/// Which checkpoint of a trained network predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
#[value(rename_all = "snake_case")]
pub enum Deploy {
    /// A fixed-weight run's best validation epoch; an auto-weighted run's final parent.
    #[default]
    Default,
    /// The last epoch.
    Latest,
    /// The best validation epoch of the whole schedule.
    Best,
    /// The best validation epoch among the auto-weighted ones (fixed-weight runs: `best`).
    BestAuto,
}

/// The best of `(epoch, score)` pairs in epoch order: strictly better replaces, so ties keep
/// the earlier epoch, as `awsnet train`'s best pointer does.
pub fn best_of<T>(items: impl IntoIterator<Item = (T, f64)>) -> Option<T> {
    items
        .into_iter()
        .fold(None::<(T, f64)>, |best, (item, score)| match best {
            Some((b, s)) if s >= score => Some((b, s)),
            _ => Some((item, score)),
        })
        .map(|(item, _)| item)
}

/// The checkpoint directory `deploy` picks in the `awsnet train` run `run` (trained with
/// `config`).
pub fn run_deployment(run: &Path, config: &TrainConfig, deploy: Deploy) -> Result<PathBuf> {
    let auto = |record: &EpochRecord| {
        record.epoch >= 1 && config.epoch_kind(record.epoch - 1) == EpochKind::Auto
    };
    match deploy {
        Deploy::Latest => run_checkpoint(run, Which::Latest),
        Deploy::Best => run_checkpoint(run, Which::Best),
        Deploy::Default if config.weighting.as_ref().is_some_and(|w| w.is_search()) => {
            run_checkpoint(run, Which::Latest)
        }
        Deploy::Default => run_checkpoint(run, Which::Best),
        Deploy::BestAuto => {
            let dir = RunDir::new(run);
            let epochs = dir.epoch_of(Which::Latest)?.unwrap_or(0);
            let records: Vec<EpochRecord> = read_lines(&dir.progress(), epochs)?;
            let score = config.score();
            let Some(epoch) = best_of(
                records
                    .iter()
                    .filter(|r| auto(r))
                    .map(|r| (r.epoch, r.validation().score(score))),
            ) else {
                return run_checkpoint(run, Which::Best);
            };
            let checkpoint = dir.epoch_dir(epoch);
            if !checkpoint.is_dir() {
                return Err(Error::Dataset {
                    path: run.to_path_buf(),
                    problem: format!(
                        "the best auto-weighted epoch is {epoch}, whose checkpoint this run did \
                         not keep (`awsnet train` keeps its latest and best epochs; a grid \
                         keeps every auto-weighted epoch): deploy `latest` or `best`"
                    ),
                });
            }
            Ok(checkpoint)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::das::weighting::{WeightingConfig, WeightingKind};
    use crate::train::run_dir::write_lines;

    /// A run of 4 epochs (2 fixed, then 2 DAS when `search`) with these validation scores,
    /// keeping the checkpoints of `kept` epochs, its pointers on the latest and the best.
    fn run(dir: &Path, search: bool, scores: [f64; 4], kept: &[u64]) -> TrainConfig {
        let config: TrainConfig = serde_json::from_value(serde_json::json!({
            "data": "d", "net": "scar", "epochs": 4,
            "geometry": { "crop": [64, 64], "margin": 3, "input": [32, 32] },
        }))
        .unwrap();
        let config = TrainConfig {
            weighting: search.then(|| WeightingConfig {
                kind: WeightingKind::Das,
                epochs_fixed: 2,
                ..WeightingConfig::default()
            }),
            ..config
        };
        let records: Vec<EpochRecord> = (1..=4)
            .map(|epoch| EpochRecord {
                epoch,
                loss: 1.0,
                val_dice: scores[epoch as usize - 1],
                val_dice_pooled: 0.0,
                val_dice_per_case: 0.0,
                val_found: None,
                alpha: Vec::new(),
                seconds: 0.0,
            })
            .collect();
        let run = RunDir::new(dir);
        std::fs::create_dir_all(dir).unwrap();
        write_lines(&run.progress(), &records).unwrap();
        for &epoch in kept {
            std::fs::create_dir_all(run.epoch_dir(epoch)).unwrap();
        }
        let best = best_of(records.iter().map(|r| (r.epoch, r.val_dice))).unwrap();
        run.point(Which::Best, best).unwrap();
        run.point(Which::Latest, 4).unwrap();
        config
    }

    #[test]
    fn each_choice_deploys_the_epoch_it_names() {
        let tmp = tempfile::tempdir().unwrap();
        let epoch = |p: PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
        // A search whose best epoch is a fixed-weight one (2), its best DAS epoch 3.
        let dir = tmp.path().join("das");
        let config = run(&dir, true, [0.5, 0.9, 0.8, 0.7], &[2, 3, 4]);
        let table = [
            (Deploy::Default, "epoch-0004"),
            (Deploy::Latest, "epoch-0004"),
            (Deploy::Best, "epoch-0002"),
            (Deploy::BestAuto, "epoch-0003"),
        ];
        for (deploy, want) in table {
            let got = epoch(run_deployment(&dir, &config, deploy).unwrap());
            assert_eq!(got, want, "{deploy:?}");
        }
        // Fixed weights throughout: the default is the best epoch, and so is best_auto.
        let dir = tmp.path().join("fixed");
        let config = run(&dir, false, [0.5, 0.9, 0.8, 0.7], &[2, 4]);
        for deploy in [Deploy::Default, Deploy::Best, Deploy::BestAuto] {
            let got = epoch(run_deployment(&dir, &config, deploy).unwrap());
            assert_eq!(got, "epoch-0002", "{deploy:?}");
        }
    }

    #[test]
    fn a_best_auto_epoch_that_was_not_kept_is_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let config = run(tmp.path(), true, [0.5, 0.9, 0.8, 0.7], &[2, 4]);
        let err = run_deployment(tmp.path(), &config, Deploy::BestAuto)
            .unwrap_err()
            .to_string();
        assert!(err.contains("best auto-weighted epoch is 3"), "{err}");
    }

    #[test]
    fn the_best_is_the_first_of_equal_scores() {
        assert_eq!(best_of([(1, 0.5), (2, 0.7), (3, 0.7), (4, 0.6)]), Some(2));
        assert_eq!(best_of(Vec::<(u64, f64)>::new()), None);
    }
}
