//! Whether voting helped: an ensemble's vote against its own members, each evaluated alone on
//! the same test cases. The vote is compared with the member whose mean is best (a paired
//! t-test and Wilcoxon over the cases), so a reader sees whether the ensemble beats the best
//! single net it was built from, not only the baseline.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::metrics::lower_is_better;
use super::stats::samples::load_samples;
use super::stats::{compare, CompareOptions};
use crate::error::Result;

/// The vote against its members on one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteVsMembers {
    /// e.g. `scar_dice`.
    pub metric: String,
    /// The vote's mean over the test cases.
    pub vote: Option<f64>,
    /// Each member's mean, member 1 first.
    pub members: Vec<Option<f64>>,
    /// The member with the best mean (counting from 1).
    pub best_member: usize,
    /// Cases paired.
    pub n: usize,
    /// Mean of vote − best member over the paired cases.
    pub mean_diff: Option<f64>,
    /// Two-sided paired t-test and Wilcoxon signed-rank p of that difference.
    pub p_t: Option<f64>,
    pub p_wilcoxon: Option<f64>,
}

/// Compare the evaluation `vote` (an `eval.json`) with each of `members`' on each metric.
pub fn vote_vs_members(
    vote: &Path,
    members: &[PathBuf],
    metrics: &[String],
    options: &CompareOptions,
) -> Result<Vec<VoteVsMembers>> {
    let mut out = Vec::with_capacity(metrics.len());
    for metric in metrics {
        let voted = load_samples(vote, metric)?;
        let each = members
            .iter()
            .map(|m| load_samples(m, metric))
            .collect::<Result<Vec<_>>>()?;
        let means: Vec<Option<f64>> = each.iter().map(mean).collect();
        let lower = lower_is_better(metric);
        let best = means
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.map(|m| (i, if lower { -m } else { m })))
            // Ties keep the earlier member.
            .fold(None::<(usize, f64)>, |b, (i, m)| match b {
                Some((_, bm)) if bm >= m => b,
                _ => Some((i, m)),
            })
            .map_or(0, |(i, _)| i);
        let c = compare(&voted, &each[best], options)?;
        out.push(VoteVsMembers {
            metric: metric.clone(),
            vote: mean(&voted),
            members: means,
            best_member: best + 1,
            n: c.n,
            mean_diff: c.mean_diff,
            p_t: c.p_t,
            p_wilcoxon: c.p_wilcoxon,
        });
    }
    Ok(out)
}

fn mean(samples: &super::stats::samples::Samples) -> Option<f64> {
    let values: Vec<f64> = samples.values.values().flatten().copied().collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}
