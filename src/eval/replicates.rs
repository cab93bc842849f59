//! One method trained several times from different seeds: its per-case metrics averaged over
//! the replicates, which is what a paired test across methods then compares (the seed's noise
//! averaged out of each case), and the spread of the replicates' own means.
//!
//! Averages: Dice and Jaccard over every replicate; a distance over the replicates where it is
//! defined (a replicate whose prediction is empty has none), absent when none has it; voxel
//! counts rounded to the nearest voxel; a prediction counts as empty only if every replicate's
//! is. The files named are the first replicate's.

use super::evaluate::CaseEvaluation;
use super::metrics::MaskMetrics;
use crate::error::{Error, Result};

/// Case by case, the mean of `replicates` (each one replicate's evaluation of the same cases
/// and targets, in the same order).
pub fn mean_per_case(replicates: &[Vec<CaseEvaluation>]) -> Result<Vec<CaseEvaluation>> {
    let Some(first) = replicates.first() else {
        return Err(Error::Internal("no replicate to average".into()));
    };
    let mut out = Vec::with_capacity(first.len());
    for (i, case) in first.iter().enumerate() {
        let mut targets = Vec::with_capacity(case.targets.len());
        for (t, (target, _)) in case.targets.iter().enumerate() {
            let each = replicates
                .iter()
                .map(|r| match r.get(i).and_then(|c| c.targets.get(t)) {
                    Some((got, metrics)) if r[i].case == case.case && got == target => Ok(metrics),
                    _ => Err(Error::Internal(format!(
                        "replicates evaluated different cases or targets (case {})",
                        case.case
                    ))),
                })
                .collect::<Result<Vec<&MaskMetrics>>>()?;
            targets.push((*target, mean_metrics(&each)));
        }
        out.push(CaseEvaluation {
            targets,
            ..case.clone()
        });
    }
    Ok(out)
}

fn mean_metrics(each: &[&MaskMetrics]) -> MaskMetrics {
    let n = each.len() as f64;
    let mean = |f: fn(&MaskMetrics) -> f64| each.iter().map(|m| f(m)).sum::<f64>() / n;
    let defined = |f: fn(&MaskMetrics) -> Option<f64>| {
        let values: Vec<f64> = each.iter().filter_map(|m| f(m)).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
    };
    let count = |f: fn(&MaskMetrics) -> u64| {
        (each.iter().map(|m| f(m) as f64).sum::<f64>() / n).round() as u64
    };
    MaskMetrics {
        dice: mean(|m| m.dice),
        jaccard: mean(|m| m.jaccard),
        hd: defined(|m| m.hd),
        hd95: defined(|m| m.hd95),
        assd: defined(|m| m.assd),
        asd_pred_to_gt: defined(|m| m.asd_pred_to_gt),
        asd_gt_to_pred: defined(|m| m.asd_gt_to_pred),
        pred_voxels: count(|m| m.pred_voxels),
        gt_voxels: count(|m| m.gt_voxels),
        intersection_voxels: count(|m| m.intersection_voxels),
        pred_empty: each.iter().all(|m| m.pred_empty),
        gt_empty: each.iter().all(|m| m.gt_empty),
    }
}

/// Mean and sample standard deviation (n − 1) of the replicates' means of one metric; the
/// deviation is absent for a single replicate.
pub fn spread(means: &[f64]) -> (f64, Option<f64>) {
    let n = means.len() as f64;
    let mean = means.iter().sum::<f64>() / n;
    let sd = (means.len() > 1)
        .then(|| (means.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (mean, sd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::labels::Target;

    fn metrics(dice: f64, hd: Option<f64>, pred_voxels: u64) -> MaskMetrics {
        MaskMetrics {
            dice,
            jaccard: dice / (2.0 - dice),
            hd,
            hd95: hd,
            assd: hd,
            asd_pred_to_gt: hd,
            asd_gt_to_pred: hd,
            pred_voxels,
            gt_voxels: 10,
            intersection_voxels: 0,
            pred_empty: pred_voxels == 0,
            gt_empty: false,
        }
    }

    fn case(id: &str, file: &str, m: MaskMetrics) -> CaseEvaluation {
        CaseEvaluation {
            case: id.into(),
            prediction_file: file.into(),
            reference_file: "gd".into(),
            spacing: [1.0; 3],
            targets: vec![(Target::Scar, m)],
        }
    }

    #[test]
    fn cases_average_over_replicates_and_keep_the_first_files() {
        let a = vec![case("c1", "r1/c1", metrics(0.5, Some(4.0), 9))];
        let b = vec![case("c1", "r2/c1", metrics(0.7, None, 0))];
        let c = vec![case("c1", "r3/c1", metrics(0.9, Some(2.0), 12))];
        let mean = mean_per_case(&[a, b, c]).unwrap();
        let m = &mean[0].targets[0].1;
        assert!((m.dice - 0.7).abs() < 1e-12);
        // The empty prediction has no distance: the mean is over the other two.
        assert_eq!(m.hd, Some(3.0));
        assert_eq!(m.pred_voxels, 7);
        assert!(!m.pred_empty);
        assert_eq!(mean[0].prediction_file, "r1/c1");
    }

    #[test]
    fn replicates_of_other_cases_are_refused() {
        let a = vec![case("c1", "f", metrics(0.5, None, 1))];
        let b = vec![case("c2", "f", metrics(0.5, None, 1))];
        assert!(mean_per_case(&[a, b]).is_err());
        assert!(mean_per_case(&[]).is_err());
    }

    #[test]
    fn spread_is_the_sample_deviation() {
        let (mean, sd) = spread(&[0.6, 0.7, 0.8]);
        assert!((mean - 0.7).abs() < 1e-12);
        assert!((sd.unwrap() - 0.1).abs() < 1e-12);
        assert_eq!(spread(&[0.4]), (0.4, None));
    }
}
