//! What `awsnet eval` writes: per-case metrics and their aggregates, as JSON shaped like
//! nnU-Net's `summary.json` and as a per-case CSV that `awsnet stats` reads back.
//!
//! Aggregates per target and metric:
//! - `mean`, `median`, and `std` — the population standard deviation (divisor n, NumPy's
//!   `np.std` default), which is what "mean ± std" tables computed with NumPy report;
//! - `n_per_metric`: how many cases entered each aggregate;
//! - `empty_masks`: which cases had an empty prediction and/or reference. Cases where exactly
//!   one mask is empty have no surface distance and are left out of the distance aggregates
//!   (their Dice and Jaccard of 0 stay in); `left_out_of_distances` counts them.
//!
//! - `lesion_cases`: per target, the same aggregates over the cases whose reference shows the
//!   target only (`mean`, `std`, `n`): a lesion-free case scores Dice 1 or 0 on its own and
//!   moves a small test set's mean by a whole case's weight, so the means over the cases with a
//!   lesion say how well lesions are segmented;
//! - `lesion_free_cases`: per target, how many cases have no reference lesion, and which of
//!   them got a false positive (a non-empty prediction).
//!
//! An aggregate over no value is `null`. No NaN or infinity is ever written.

use serde_json::{json, Map, Value};

use super::evaluate::CaseEvaluation;
use super::metrics::MaskMetrics;
use crate::data::labels::Target;
use crate::error::{Error, Result};

/// Mean, spread and count of one metric over cases.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aggregate {
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub median: Option<f64>,
    pub n: usize,
}

impl Aggregate {
    /// Aggregate the values that exist; `None`s are left out.
    pub fn of(values: impl IntoIterator<Item = Option<f64>>) -> Self {
        let mut v: Vec<f64> = values.into_iter().flatten().collect();
        let n = v.len();
        if n == 0 {
            return Aggregate {
                mean: None,
                std: None,
                median: None,
                n,
            };
        }
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        v.sort_unstable_by(f64::total_cmp);
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Aggregate {
            mean: Some(mean),
            std: Some(var.sqrt()),
            median: Some(median),
            n,
        }
    }
}

/// The aggregate of `metric` for `target` over `cases`.
pub fn aggregate(cases: &[CaseEvaluation], target: Target, metric: &str) -> Aggregate {
    Aggregate::of(cases.iter().map(|c| {
        c.targets
            .iter()
            .find(|(t, _)| *t == target)
            .and_then(|(_, m)| m.get(metric).flatten())
    }))
}

/// The whole `awsnet eval` JSON document.
pub fn eval_json(cases: &[CaseEvaluation], targets: &[Target]) -> Result<Value> {
    let mut per_case = Vec::with_capacity(cases.len());
    for c in cases {
        let mut record = Map::new();
        record.insert("case".into(), json!(c.case));
        record.insert("prediction_file".into(), json!(c.prediction_file));
        record.insert("reference_file".into(), json!(c.reference_file));
        record.insert("spacing_mm".into(), json!(c.spacing));
        for (target, metrics) in &c.targets {
            let value = serde_json::to_value(metrics)
                .map_err(|e| Error::Internal(format!("serialising metrics: {e}")))?;
            record.insert(target.name().into(), value);
        }
        per_case.push(Value::Object(record));
    }

    let table = |pick: fn(&Aggregate) -> Value| -> Value {
        let mut by_target = Map::new();
        for &target in targets {
            let mut by_metric = Map::new();
            for metric in MaskMetrics::NAMES {
                by_metric.insert(metric.into(), pick(&aggregate(cases, target, metric)));
            }
            by_target.insert(target.name().into(), Value::Object(by_metric));
        }
        Value::Object(by_target)
    };

    let mut empty = Map::new();
    for &target in targets {
        let ids = |keep: fn(&MaskMetrics) -> bool| -> Vec<&str> {
            cases
                .iter()
                .filter(|c| c.targets.iter().any(|(t, m)| *t == target && keep(m)))
                .map(|c| c.case.as_str())
                .collect()
        };
        let pred_only = ids(|m| m.pred_empty && !m.gt_empty);
        let gt_only = ids(|m| !m.pred_empty && m.gt_empty);
        empty.insert(
            target.name().into(),
            json!({
                "both_empty": ids(|m| m.pred_empty && m.gt_empty),
                "prediction_empty_only": pred_only,
                "reference_empty_only": gt_only,
                "left_out_of_distances": pred_only.len() + gt_only.len(),
            }),
        );
    }

    let mut lesion = Map::new();
    let mut lesion_free = Map::new();
    for &target in targets {
        let with: Vec<CaseEvaluation> = cases
            .iter()
            .filter(|c| c.targets.iter().any(|(t, m)| *t == target && !m.gt_empty))
            .cloned()
            .collect();
        let (mut mean, mut std) = (Map::new(), Map::new());
        for metric in MaskMetrics::NAMES {
            let a = aggregate(&with, target, metric);
            mean.insert(metric.into(), json!(a.mean));
            std.insert(metric.into(), json!(a.std));
        }
        lesion.insert(
            target.name().into(),
            json!({ "n": with.len(), "mean": mean, "std": std }),
        );
        let free: Vec<&CaseEvaluation> = cases
            .iter()
            .filter(|c| c.targets.iter().any(|(t, m)| *t == target && m.gt_empty))
            .collect();
        let false_positive: Vec<&str> = free
            .iter()
            .filter(|c| c.targets.iter().any(|(t, m)| *t == target && !m.pred_empty))
            .map(|c| c.case.as_str())
            .collect();
        lesion_free.insert(
            target.name().into(),
            json!({ "n": free.len(), "false_positive": false_positive }),
        );
    }

    Ok(json!({
        "targets": targets.iter().map(|t| t.name()).collect::<Vec<_>>(),
        "metric_per_case": per_case,
        "mean": table(|a| json!(a.mean)),
        "std": table(|a| json!(a.std)),
        "median": table(|a| json!(a.median)),
        "n": cases.len(),
        "n_per_metric": table(|a| json!(a.n)),
        "empty_masks": Value::Object(empty),
        "lesion_cases": Value::Object(lesion),
        "lesion_free_cases": Value::Object(lesion_free),
    }))
}

/// Per-case CSV: `case,<target>_<metric>,…` with an empty cell where a distance does not exist.
pub fn eval_csv(cases: &[CaseEvaluation], targets: &[Target]) -> Result<Vec<u8>> {
    let csv_err = |e: csv::Error| Error::Internal(format!("writing CSV: {e}"));
    let mut out = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["case".to_string()];
    for target in targets {
        for metric in MaskMetrics::NAMES {
            header.push(format!("{}_{metric}", target.name()));
        }
        header.push(format!("{}_pred_voxels", target.name()));
        header.push(format!("{}_gt_voxels", target.name()));
    }
    out.write_record(&header).map_err(csv_err)?;
    for c in cases {
        let mut row = vec![c.case.clone()];
        for target in targets {
            let Some((_, m)) = c.targets.iter().find(|(t, _)| t == target) else {
                return Err(Error::Internal(format!(
                    "case {} lacks target {}",
                    c.case,
                    target.name()
                )));
            };
            for metric in MaskMetrics::NAMES {
                row.push(
                    m.get(metric)
                        .flatten()
                        .map_or(String::new(), |v| v.to_string()),
                );
            }
            row.push(m.pred_voxels.to_string());
            row.push(m.gt_voxels.to_string());
        }
        out.write_record(&row).map_err(csv_err)?;
    }
    out.into_inner()
        .map_err(|e| Error::Internal(format!("writing CSV: {e}")))
}

/// A plain-text table of means for the terminal: one row per target.
pub fn render_means(cases: &[CaseEvaluation], targets: &[Target]) -> String {
    let metrics = ["dice", "jaccard", "hd", "hd95", "assd"];
    let mut out = format!("{} cases\n{:<12}", cases.len(), "target");
    for m in metrics {
        out.push_str(&format!(" {m:>17}"));
    }
    out.push_str("  left out\n");
    for &target in targets {
        out.push_str(&format!("{:<12}", target.name()));
        for metric in metrics {
            let a = aggregate(cases, target, metric);
            let cell = match (a.mean, a.std) {
                (Some(m), Some(s)) => format!("{m:.3} ± {s:.3}"),
                _ => "-".into(),
            };
            out.push_str(&format!(" {cell:>17}"));
        }
        let left_out = cases
            .iter()
            .filter(|c| c.targets.iter().any(|(t, m)| *t == target && m.one_empty()))
            .count();
        out.push_str(&format!("  {left_out:>8}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_use_population_std_and_skip_missing_values() {
        let a = Aggregate::of([Some(1.0), None, Some(2.0), Some(4.0), Some(5.0)]);
        assert_eq!(a.n, 4);
        assert_eq!(a.mean, Some(3.0));
        // Deviations −2, −1, 1, 2: population variance 10/4.
        assert_eq!(a.std, Some(2.5f64.sqrt()));
        assert_eq!(a.median, Some(3.0));
        assert_eq!(
            Aggregate::of([Some(7.0), Some(1.0), Some(3.0)]).median,
            Some(3.0)
        );
        let none = Aggregate::of([None, None]);
        assert_eq!(
            (none.mean, none.std, none.median, none.n),
            (None, None, None, 0)
        );
    }
}
