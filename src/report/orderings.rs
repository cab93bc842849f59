//! Which of the paper's orderings a grid reproduces: each claim "b beats a" of the paper's
//! ablation (Table 1: base < PAM < PAM + DS < PAM + DAS < ensemble, and each variant with the
//! hybrid loss above the one without) and weighting comparison (Table 8: DAS above fixed,
//! decay, No-RL, genetic and gradient weights), checked on the grid's paired comparisons with
//! their Holm-adjusted p-values.
//!
//! Methods take their role from what they vary (their [`Variant`]), not from their names, so a
//! job may call them anything. A claim is checked only when the statistics family compares its
//! two methods (in either order) on the metric; otherwise it is listed as not compared.

use super::data::{MethodData, Variant};
use crate::eval::metrics::lower_is_better;

/// The level of significance a verdict uses, on Holm-adjusted p-values.
pub const ALPHA: f64 = 0.05;

/// The paper's claim that `better` beats `worse`, and what the grid found.
#[derive(Debug, Clone, PartialEq)]
pub struct Ordering {
    /// Where the paper makes the claim, e.g. "Table 1".
    pub source: &'static str,
    pub worse: String,
    pub better: String,
    pub metric: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// In the paper's direction with Holm-adjusted p below [`ALPHA`].
    Holds { diff: f64, p_holm: f64 },
    /// In the paper's direction, not significant.
    SameDirection { diff: f64, p_holm: Option<f64> },
    /// Against the paper's direction (or no difference); `p_holm` says how surely.
    Reversed { diff: f64, p_holm: Option<f64> },
    /// The statistics family has no comparison of the two on this metric.
    NotCompared,
}

impl Verdict {
    pub fn describe(&self) -> String {
        let p = |p: Option<f64>| p.map_or("–".into(), |p| format!("{p:.3}"));
        match *self {
            Verdict::Holds { diff, p_holm } => {
                format!("holds: {diff:+.3}, Holm p = {}", p(Some(p_holm)))
            }
            Verdict::SameDirection { diff, p_holm } => format!(
                "same direction, not significant: {diff:+.3}, Holm p = {}",
                p(p_holm)
            ),
            Verdict::Reversed { diff, p_holm } => {
                let surely = if p_holm.is_some_and(|p| p < ALPHA) {
                    "reversed, significant"
                } else {
                    "reversed, not significant"
                };
                format!("{surely}: {diff:+.3}, Holm p = {}", p(p_holm))
            }
            Verdict::NotCompared => "not compared (add the pair to statistics.comparisons)".into(),
        }
    }
}

/// A method's role in the paper's tables, from what it varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Base,
    Pam,
    PamDs,
    PamDsDcl,
    PamDas,
    PamDasDcl,
    Ensemble,
    /// A Table 8 comparator (PAM + deep supervision with another weighting).
    Comparator,
}

/// Table 1's pairs the paper compares directly, worse before better.
const TABLE_1: [(Role, Role); 7] = [
    (Role::Base, Role::Pam),
    (Role::Pam, Role::PamDs),
    (Role::PamDs, Role::PamDsDcl),
    (Role::PamDs, Role::PamDas),
    (Role::PamDas, Role::PamDasDcl),
    (Role::PamDsDcl, Role::PamDasDcl),
    (Role::PamDasDcl, Role::Ensemble),
];

fn role(v: &Variant) -> Option<Role> {
    if !v.default_sequences {
        return None;
    }
    let w = v.weighting.as_deref();
    Some(match (v.pam, v.deep_supervision, w, v.ensemble) {
        (false, false, _, false) => Role::Base,
        (true, false, _, false) => Role::Pam,
        (true, true, Some("equal") | None, false) if v.dcl => Role::PamDsDcl,
        (true, true, Some("equal") | None, false) => Role::PamDs,
        (true, true, Some("das"), false) if v.dcl => Role::PamDasDcl,
        (true, true, Some("das"), false) => Role::PamDas,
        (true, true, Some("das"), true) => Role::Ensemble,
        (true, true, Some(_), false) => Role::Comparator,
        _ => return None,
    })
}

/// The paper's orderings among `methods`, each checked per metric in `metrics` (higher is
/// better for overlaps, lower for distances) against `comparisons` (the summary's).
pub fn check(
    methods: &[MethodData],
    comparisons: &[serde_json::Value],
    metrics: &[String],
) -> Vec<Ordering> {
    let exactly = |r: Role| {
        methods
            .iter()
            .find(|m| role(&m.variant) == Some(r))
            .map(|m| m.name.as_str())
    };
    // A grid with the hybrid loss on everywhere (or off everywhere) lets one method stand
    // for both rows of a pair; a claim between a method and itself is then dropped.
    let resolve = |r: Role| {
        exactly(r).or_else(|| match r {
            Role::PamDs => exactly(Role::PamDsDcl),
            Role::PamDsDcl => exactly(Role::PamDs),
            Role::PamDas => exactly(Role::PamDasDcl),
            Role::PamDasDcl => exactly(Role::PamDas),
            _ => None,
        })
    };
    let mut claims: Vec<(&'static str, &str, &str)> = Vec::new();
    // Table 1's rows in order, each above the row before it that the grid has; then the
    // pairs the paper's text compares directly.
    let rows: Vec<&str> = [
        Role::Base,
        Role::Pam,
        Role::PamDs,
        Role::PamDsDcl,
        Role::PamDas,
        Role::PamDasDcl,
        Role::Ensemble,
    ]
    .into_iter()
    .filter_map(exactly)
    .collect();
    for pair in rows.windows(2) {
        add_claim(&mut claims, "Table 1", pair[0], pair[1]);
    }
    for (worse, better) in TABLE_1 {
        if let (Some(w), Some(b)) = (resolve(worse), resolve(better)) {
            add_claim(&mut claims, "Table 1", w, b);
        }
    }
    // Table 8: DAS (with the hybrid loss, as the paper trains it) over every other weighting.
    if let Some(das) = resolve(Role::PamDasDcl) {
        for m in methods {
            if role(&m.variant) == Some(Role::Comparator) {
                add_claim(&mut claims, "Table 8", m.name.as_str(), das);
            }
        }
    }
    let mut out = Vec::new();
    for metric in metrics {
        for &(source, worse, better) in &claims {
            out.push(Ordering {
                source,
                worse: worse.into(),
                better: better.into(),
                metric: metric.clone(),
                verdict: verdict(comparisons, worse, better, metric),
            });
        }
    }
    out
}

/// Add the claim `worse < better` unless it is already made or compares a method with itself.
fn add_claim<'a>(
    claims: &mut Vec<(&'static str, &'a str, &'a str)>,
    source: &'static str,
    worse: &'a str,
    better: &'a str,
) {
    let known = claims.iter().any(|&(_, w, b)| (w, b) == (worse, better));
    if worse != better && !known {
        claims.push((source, worse, better));
    }
}

/// Whether the comparison of `worse` and `better` on `metric` shows `better` ahead.
fn verdict(comparisons: &[serde_json::Value], worse: &str, better: &str, metric: &str) -> Verdict {
    let found = comparisons.iter().find_map(|c| {
        let (a, b) = (c["a"].as_str()?, c["b"].as_str()?);
        if c["metric"] != metric {
            return None;
        }
        // mean_diff is a − b; turn it into better − worse.
        let sign = if (a, b) == (better, worse) {
            1.0
        } else if (a, b) == (worse, better) {
            -1.0
        } else {
            return None;
        };
        Some((sign * c["mean_diff"].as_f64()?, c["p_t_holm"].as_f64()))
    });
    let Some((diff, p_holm)) = found else {
        return Verdict::NotCompared;
    };
    // For distances lower is better.
    let gain = if lower_is_better(metric) { -diff } else { diff };
    match p_holm {
        _ if gain <= 0.0 => Verdict::Reversed { diff, p_holm },
        Some(p) if p < ALPHA => Verdict::Holds { diff, p_holm: p },
        p_holm => Verdict::SameDirection { diff, p_holm },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn method(name: &str, pam: bool, ds: bool, weighting: Option<&str>, ens: bool) -> MethodData {
        MethodData {
            name: name.into(),
            variant: Variant {
                pam,
                deep_supervision: ds,
                dcl: true,
                weighting: weighting.map(str::to_string),
                ensemble: ens,
                sequences: "LGE + T2".into(),
                default_sequences: true,
            },
            eval: serde_json::Value::Null,
            members: Vec::new(),
            replicates: None,
            vote_vs_members: Vec::new(),
        }
    }

    fn compared(a: &str, b: &str, metric: &str, diff: f64, p_holm: f64) -> serde_json::Value {
        json!({ "a": a, "b": b, "metric": metric, "mean_diff": diff, "p_t_holm": p_holm })
    }

    #[test]
    fn claims_follow_roles_and_verdicts_follow_direction_and_holm_p() {
        let methods = [
            method("B", false, false, None, false),
            method("P+DS", true, true, Some("equal"), false),
            method("das", true, true, Some("das"), false),
            method("ens", true, true, Some("das"), true),
            method("gr", true, true, Some("gradient"), false),
        ];
        let comparisons = [
            // Against the first method (a = B): b − a in the paper's favour, significant.
            compared("B", "P+DS", "scar_dice", -0.10, 0.01),
            compared("das", "P+DS", "scar_dice", 0.02, 0.40),
            compared("das", "ens", "scar_dice", 0.01, 0.02),
            compared("das", "gr", "scar_hd95", 1.5, 0.30),
        ];
        let found = check(
            &methods,
            &comparisons,
            &["scar_dice".into(), "scar_hd95".into()],
        );
        let at = |worse: &str, better: &str, metric: &str| {
            found
                .iter()
                .find(|o| o.worse == worse && o.better == better && o.metric == metric)
                .unwrap_or_else(|| panic!("no claim {worse} < {better} on {metric}"))
                .verdict
        };
        assert!(matches!(
            at("B", "P+DS", "scar_dice"),
            Verdict::Holds { .. }
        ));
        assert!(matches!(
            at("P+DS", "das", "scar_dice"),
            Verdict::SameDirection { .. }
        ));
        // The ensemble is worse than DAS here, significantly.
        let reversed = at("das", "ens", "scar_dice");
        assert!(matches!(reversed, Verdict::Reversed { .. }));
        assert!(reversed.describe().starts_with("reversed, significant"));
        // A distance: DAS's larger HD95 is against the paper.
        assert!(matches!(
            at("gr", "das", "scar_hd95"),
            Verdict::Reversed { .. }
        ));
        assert_eq!(at("gr", "das", "scar_dice"), Verdict::NotCompared);
        // DAS over equal weights is claimed once per metric, though two rows of Table 1 say
        // it when one method stands for both the hybrid-loss and the Dice-only variants.
        let once = found
            .iter()
            .filter(|o| o.worse == "P+DS" && o.better == "das");
        assert_eq!(once.count(), 2);
        assert!(found
            .iter()
            .any(|o| o.source == "Table 8" && o.worse == "gr"));
        assert!(found.iter().all(|o| o.worse != o.better));
    }
}
