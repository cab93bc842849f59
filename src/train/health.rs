//! Whether a trained network learned: the failures a table of means would hide, read off the
//! validation records of its epochs.
//!
//! - **Collapsed**: the deployed checkpoint predicts the scored class nowhere on the validation
//!   slices whose truth shows it. A net that has learned to predict nothing scores 0 on every
//!   case with a lesion, and a reader of a mean would take that for a weak method.
//! - **Never improved**: no epoch after the first scored better than the first — the score of a
//!   net that has barely trained — so what is deployed is as good as untrained.
//!
//! A diverged net (a NaN or infinite loss) is not assessed here: its training stops with an
//! error naming the epoch, and its task fails.

use serde::{Deserialize, Serialize};

use super::config::EpochRecord;
use crate::das::weighting::ScoreDice;

/// One way a network failed to learn.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "issue", deny_unknown_fields)]
pub enum HealthIssue {
    /// The deployed epoch found the class on none of the `lesion_slices` validation slices
    /// that show it.
    Collapsed { epoch: u64, lesion_slices: usize },
    /// The deployed epoch's validation score is no better than epoch 1's.
    NeverImproved {
        epoch: u64,
        first: f64,
        deployed: f64,
    },
}

impl HealthIssue {
    /// A sentence for status lines and reports.
    pub fn describe(&self) -> String {
        match self {
            HealthIssue::Collapsed {
                epoch,
                lesion_slices,
            } => format!(
                "collapsed: epoch {epoch} predicts the class on none of the {lesion_slices} \
                 validation slices that show it"
            ),
            HealthIssue::NeverImproved {
                epoch: 1, first, ..
            } => format!(
                "never improved: no later epoch scored better on validation than epoch 1 \
                 ({first:.3}), which is deployed"
            ),
            HealthIssue::NeverImproved {
                epoch,
                first,
                deployed,
            } => format!(
                "never improved: epoch {epoch} scores {deployed:.3} on validation, no better \
                 than epoch 1 ({first:.3})"
            ),
        }
    }
}

/// The issues of a network whose epochs validated as `history` (epoch 1 first, any subset of
/// later epochs after it) and which deploys epoch `deployed`, scored by `score`.
pub fn assess(history: &[EpochRecord], deployed: u64, score: ScoreDice) -> Vec<HealthIssue> {
    let mut issues = Vec::new();
    let Some(record) = history.iter().find(|r| r.epoch == deployed) else {
        return issues;
    };
    if record.collapsed() {
        issues.push(HealthIssue::Collapsed {
            epoch: deployed,
            lesion_slices: record.validation().lesion_slices,
        });
    }
    let first = history.iter().find(|r| r.epoch == 1);
    if let Some(first) = first.filter(|_| history.len() > 1) {
        let (a, b) = (
            first.validation().score(score),
            record.validation().score(score),
        );
        if b <= a {
            issues.push(HealthIssue::NeverImproved {
                epoch: deployed,
                first: a,
                deployed: b,
            });
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::config::ValidationFound;

    fn record(epoch: u64, dice: f64, found: u64) -> EpochRecord {
        EpochRecord {
            epoch,
            loss: 1.0,
            val_dice: dice,
            val_dice_pooled: dice,
            val_dice_per_case: dice,
            val_found: Some(ValidationFound {
                pixels: found,
                lesion_slices: 5,
            }),
            alpha: Vec::new(),
            seconds: 0.0,
        }
    }

    #[test]
    fn each_failure_is_named_with_its_epoch() {
        let pooled = ScoreDice::Pooled;
        let learned = [record(1, 0.0, 0), record(2, 0.4, 90), record(3, 0.7, 120)];
        assert_eq!(assess(&learned, 3, pooled), vec![]);
        // Deploying the untrained first epoch of the same run: both failures.
        assert_eq!(
            assess(&learned, 1, pooled),
            vec![
                HealthIssue::Collapsed {
                    epoch: 1,
                    lesion_slices: 5
                },
                HealthIssue::NeverImproved {
                    epoch: 1,
                    first: 0.0,
                    deployed: 0.0
                }
            ]
        );
        let flat = [record(1, 0.0, 0), record(2, 0.0, 0), record(3, 0.0, 0)];
        let issues = assess(&flat, 3, pooled);
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert!(issues[0].describe().contains("none of the 5"));
        // A run learned and then lost it: collapsed at the end, though it once improved.
        let lost = [record(1, 0.1, 3), record(2, 0.6, 80), record(3, 0.2, 0)];
        assert_eq!(
            assess(&lost, 3, pooled),
            vec![HealthIssue::Collapsed {
                epoch: 3,
                lesion_slices: 5
            }]
        );
        // Records written before awsnet counted what was found: nothing to say about collapse.
        let mut old = record(3, 0.2, 0);
        old.val_found = None;
        assert_eq!(assess(&[record(1, 0.1, 3), old], 3, pooled), vec![]);
    }
}
