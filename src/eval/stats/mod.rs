//! Paired comparisons of two methods on per-case values: paired t-test, Wilcoxon signed-rank,
//! a bootstrap interval of the mean difference, and Holm's correction across a family.
//!
//! Values are paired by case id, whatever order the files list them in. A case present in one
//! file only is an error unless the caller intersects (then the dropped cases are reported).
//! A case whose value is missing in either file (a distance with one empty mask) cannot be
//! paired and is dropped, and the comparison says which. Degenerate inputs — fewer than 2 pairs,
//! every difference zero, differences without spread — give `null` statistics with a `note`,
//! never NaN.

pub mod bootstrap;
pub mod holm;
pub mod samples;
pub mod ttest;
pub mod wilcoxon;

use serde::Serialize;

use self::samples::Samples;
use crate::error::{Error, Result};

/// How one comparison is computed.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareOptions {
    /// Drop cases present in one file only, instead of failing.
    pub intersect: bool,
    pub resamples: usize,
    /// Run seed; each metric's bootstrap stream derives from it.
    pub seed: u64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            intersect: false,
            resamples: bootstrap::DEFAULT_RESAMPLES,
            seed: 0,
        }
    }
}

/// One paired comparison, a − b.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Name of the first method.
    pub a: String,
    pub b: String,
    pub a_file: String,
    pub b_file: String,
    pub metric: String,
    /// Pairs that entered the tests.
    pub n: usize,
    pub mean_a: Option<f64>,
    pub mean_b: Option<f64>,
    pub mean_diff: Option<f64>,
    pub t: Option<f64>,
    pub df: Option<f64>,
    pub p_t: Option<f64>,
    /// `p_t` after Holm's correction across the family the comparison was run in.
    pub p_t_holm: Option<f64>,
    pub wilcoxon_w: Option<f64>,
    pub p_wilcoxon: Option<f64>,
    pub p_wilcoxon_holm: Option<f64>,
    /// `exact`, `permutation` or `normal`: see [`wilcoxon`].
    pub wilcoxon_method: Option<&'static str>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub bootstrap_resamples: usize,
    pub bootstrap_seed: u64,
    pub cases_only_in_a: Vec<String>,
    pub cases_only_in_b: Vec<String>,
    /// Cases dropped because a value was missing in either file.
    pub cases_with_missing_value: Vec<String>,
    pub note: Option<String>,
}

/// Compare `a` with `b` on their shared metric.
pub fn compare(a: &Samples, b: &Samples, options: &CompareOptions) -> Result<Comparison> {
    if !(1..=bootstrap::MAX_RESAMPLES).contains(&options.resamples) {
        return Err(Error::invalid(
            "--resamples",
            format!(
                "{} is outside 1..={}",
                options.resamples,
                bootstrap::MAX_RESAMPLES
            ),
        ));
    }
    let only = |x: &Samples, y: &Samples| -> Vec<String> {
        x.values
            .keys()
            .filter(|k| !y.values.contains_key(*k))
            .cloned()
            .collect()
    };
    let (only_a, only_b) = (only(a, b), only(b, a));
    if !options.intersect && (!only_a.is_empty() || !only_b.is_empty()) {
        let mut parts = Vec::new();
        if !only_a.is_empty() {
            parts.push(format!(
                "only in {}: {}",
                a.path.display(),
                only_a.join(", ")
            ));
        }
        if !only_b.is_empty() {
            parts.push(format!(
                "only in {}: {}",
                b.path.display(),
                only_b.join(", ")
            ));
        }
        return Err(Error::invalid(
            "--a/--b",
            format!(
                "the files do not hold the same cases ({}); pass --intersect to compare the shared ones",
                parts.join("; ")
            ),
        ));
    }
    let mut missing = Vec::new();
    let mut pairs = Vec::new();
    for (case, va) in &a.values {
        let Some(vb) = b.values.get(case) else {
            continue;
        };
        match (va, vb) {
            (Some(x), Some(y)) => pairs.push((*x, *y)),
            _ => missing.push(case.clone()),
        }
    }
    let seed = crate::seed::derive(options.seed, &format!("bootstrap:{}", a.metric), 0);
    let mut notes = Vec::new();
    if !missing.is_empty() {
        notes.push(format!(
            "{} case(s) left out for a missing value: {}",
            missing.len(),
            missing.join(", ")
        ));
    }
    let n = pairs.len();
    let mean = |v: &mut dyn Iterator<Item = f64>| {
        Some(v.sum::<f64>() / n as f64).filter(|m| n > 0 && m.is_finite())
    };
    let d: Vec<f64> = pairs.iter().map(|(x, y)| x - y).collect();

    let t = ttest::paired_t_test(&d).map_err(|why| notes.push(format!("t-test: {why}")));
    let w =
        wilcoxon::wilcoxon_signed_rank(&d).map_err(|why| notes.push(format!("Wilcoxon: {why}")));
    let ci = bootstrap::mean_ci95(&d, options.resamples, seed);
    if ci.is_none() {
        notes.push(if n < 2 {
            format!("bootstrap: needs at least 2 pairs, got {n}")
        } else {
            "bootstrap: the resampled means are not finite".into()
        });
    }
    let (t, w) = (t.ok(), w.ok());
    Ok(Comparison {
        a: a.name.clone(),
        b: b.name.clone(),
        a_file: a.path.display().to_string(),
        b_file: b.path.display().to_string(),
        metric: a.metric.clone(),
        n,
        mean_a: mean(&mut pairs.iter().map(|p| p.0)),
        mean_b: mean(&mut pairs.iter().map(|p| p.1)),
        mean_diff: mean(&mut d.iter().copied()),
        t: t.map(|t| t.t),
        df: t.map(|t| t.df),
        p_t: t.map(|t| t.p),
        p_t_holm: t.map(|t| t.p),
        wilcoxon_w: w.map(|w| w.w),
        p_wilcoxon: w.map(|w| w.p),
        p_wilcoxon_holm: w.map(|w| w.p),
        wilcoxon_method: w.map(|w| w.method.name()),
        ci_low: ci.map(|c| c.0),
        ci_high: ci.map(|c| c.1),
        bootstrap_resamples: options.resamples,
        bootstrap_seed: seed,
        cases_only_in_a: only_a,
        cases_only_in_b: only_b,
        cases_with_missing_value: missing,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    })
}

/// Which comparisons share one Holm correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Family {
    /// Every comparison of the run is one family.
    All,
    /// One family per metric.
    Metric,
    /// No correction: the `_holm` p-values equal the raw ones.
    None,
}

/// Fill `p_t_holm` and `p_wilcoxon_holm` of each comparison from its family's raw p-values.
pub fn apply_holm(comparisons: &mut [Comparison], family: Family) {
    let groups: Vec<Vec<usize>> = match family {
        Family::None => (0..comparisons.len()).map(|i| vec![i]).collect(),
        Family::All => vec![(0..comparisons.len()).collect()],
        Family::Metric => {
            let mut metrics: Vec<&str> = comparisons.iter().map(|c| c.metric.as_str()).collect();
            metrics.sort_unstable();
            metrics.dedup();
            metrics
                .iter()
                .map(|m| {
                    (0..comparisons.len())
                        .filter(|&i| comparisons[i].metric == *m)
                        .collect()
                })
                .collect()
        }
    };
    for group in groups {
        let p_t: Vec<Option<f64>> = group.iter().map(|&i| comparisons[i].p_t).collect();
        let p_w: Vec<Option<f64>> = group.iter().map(|&i| comparisons[i].p_wilcoxon).collect();
        let (adj_t, adj_w) = (holm::holm(&p_t), holm::holm(&p_w));
        for (k, &i) in group.iter().enumerate() {
            comparisons[i].p_t_holm = adj_t[k];
            comparisons[i].p_wilcoxon_holm = adj_w[k];
        }
    }
}

/// Run every comparison of a family and correct it: the library entry the grid reducer uses.
pub fn compare_family(
    pairs: &[(Samples, Samples)],
    family: Family,
    options: &CompareOptions,
) -> Result<Vec<Comparison>> {
    let mut out = pairs
        .iter()
        .map(|(a, b)| compare(a, b, options))
        .collect::<Result<Vec<_>>>()?;
    apply_holm(&mut out, family);
    Ok(out)
}
