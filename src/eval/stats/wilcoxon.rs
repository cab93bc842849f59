//! Wilcoxon signed-rank test, two-sided, matching `scipy.stats.wilcoxon` with its defaults
//! (SciPy ≥ 1.13: `zero_method="wilcox"`, `correction=False`, `method="auto"`).
//!
//! - Differences d = a − b. Zero differences are dropped before ranking; the remaining |d| get
//!   average ranks where they tie. R+ and R− sum the ranks of positive and negative differences;
//!   the statistic is W = min(R+, R−).
//! - The p-value's method depends on n, the number of pairs *including* zero differences:
//!   1. n > 50: normal approximation, z = (R+ − m(m+1)/4) / σ with m the non-zero count and
//!      σ² = m(m+1)(2m+1)/24 − Σ(t³ − t)/48 over tie groups of size t; no continuity correction;
//!      p = 2·Φ(−|z|).
//!   2. otherwise, with no ties and no zeros: the exact null distribution of R+ (all 2ⁿ sign
//!      patterns equally likely); p = min(1, 2·min(P(R+ ≤ r), P(R+ ≥ r))).
//!   3. otherwise, n ≤ 13: an exact permutation test over all 2ⁿ sign flips of d (zeros
//!      included, ranks kept), same two-sided rule.
//!   4. otherwise: the normal approximation of 1.
//! - With every difference zero there is nothing to rank and the test is undefined.

use statrs::distribution::{ContinuousCDF, Normal};

use super::ttest::Undefined;

/// How the p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Exact,
    Permutation,
    Normal,
}

impl Method {
    pub const fn name(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Permutation => "permutation",
            Method::Normal => "normal",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wilcoxon {
    /// W = min(R+, R−).
    pub w: f64,
    pub r_plus: f64,
    pub r_minus: f64,
    pub p: f64,
    pub method: Method,
    /// Pairs whose difference is zero (dropped from the ranks).
    pub zeros: usize,
}

/// Largest n for the exact distribution (SciPy's switch to the normal approximation).
const EXACT_MAX: usize = 50;
/// Largest n for the sign-flip permutation test (2¹³ = 8192 patterns).
const PERMUTATION_MAX: usize = 13;

pub fn wilcoxon_signed_rank(d: &[f64]) -> Result<Wilcoxon, Undefined> {
    let n = d.len();
    if d.iter().any(|x| !x.is_finite()) {
        return Err("a difference is not finite".into());
    }
    let zeros = d.iter().filter(|&&x| x == 0.0).count();
    if zeros == n {
        return Err(if n == 0 {
            "no pairs".into()
        } else {
            "all differences are zero: nothing to rank".into()
        });
    }
    let ranks = signed_ranks(d);
    let r_plus: f64 = ranks.iter().filter(|r| r.positive).map(|r| r.rank).sum();
    let r_minus: f64 = ranks.iter().filter(|r| !r.positive).map(|r| r.rank).sum();
    let ties = tie_sizes(&ranks);
    let has_ties = ties.iter().any(|&t| t > 1);

    let (p, method) = if n > EXACT_MAX {
        (normal_p(r_plus, ranks.len(), &ties), Method::Normal)
    } else if !has_ties && zeros == 0 {
        (exact_p(r_plus, n), Method::Exact)
    } else if n <= PERMUTATION_MAX {
        (permutation_p(&ranks, r_plus), Method::Permutation)
    } else {
        (normal_p(r_plus, ranks.len(), &ties), Method::Normal)
    };
    Ok(Wilcoxon {
        w: r_plus.min(r_minus),
        r_plus,
        r_minus,
        p,
        method,
        zeros,
    })
}

/// The rank of one non-zero difference's magnitude, and its sign.
#[derive(Debug, Clone, Copy)]
struct SignedRank {
    abs: f64,
    rank: f64,
    positive: bool,
}

/// Average ranks (1-based) of |d| over the non-zero differences, sorted by |d|.
fn signed_ranks(d: &[f64]) -> Vec<SignedRank> {
    let mut v: Vec<SignedRank> = d
        .iter()
        .filter(|&&x| x != 0.0)
        .map(|&x| SignedRank {
            abs: x.abs(),
            rank: 0.0,
            positive: x > 0.0,
        })
        .collect();
    v.sort_by(|a, b| a.abs.total_cmp(&b.abs));
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1].abs == v[i].abs {
            j += 1;
        }
        // Positions i..=j share the mean of ranks i+1..=j+1.
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for r in &mut v[i..=j] {
            r.rank = rank;
        }
        i = j + 1;
    }
    v
}

/// Sizes of the groups of equal |d| among sorted signed ranks.
fn tie_sizes(ranks: &[SignedRank]) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut i = 0;
    while i < ranks.len() {
        let j = ranks[i..]
            .iter()
            .take_while(|r| r.abs == ranks[i].abs)
            .count();
        sizes.push(j);
        i += j;
    }
    sizes
}

fn normal_p(r_plus: f64, m: usize, ties: &[usize]) -> f64 {
    let m = m as f64;
    let mean = m * (m + 1.0) / 4.0;
    let tie_term: f64 = ties.iter().map(|&t| (t as f64).powi(3) - t as f64).sum();
    let sigma = ((m * (m + 1.0) * (2.0 * m + 1.0) - tie_term / 2.0) / 24.0).sqrt();
    let z = (r_plus - mean) / sigma;
    let std_normal = Normal::standard();
    (2.0 * std_normal.sf(z.abs())).min(1.0)
}

/// Two-sided exact p for integer R+ = `r_plus` among n untied, non-zero differences.
fn exact_p(r_plus: f64, n: usize) -> f64 {
    // counts[s] = number of sign patterns whose positive ranks sum to s; at most C(50, 25)
    // ≈ 1.3e14 per entry, exact in u64.
    let max = n * (n + 1) / 2;
    let mut counts = vec![0u64; max + 1];
    counts[0] = 1;
    for rank in 1..=n {
        for s in (rank..=max).rev() {
            counts[s] += counts[s - rank];
        }
    }
    let total = 2f64.powi(n as i32);
    let r = r_plus.round() as usize;
    let at_most: u64 = counts[..=r.min(max)].iter().sum();
    let at_least: u64 = counts[r.min(max)..].iter().sum();
    (2.0 * (at_most.min(at_least) as f64) / total).min(1.0)
}

/// Two-sided p from all 2ⁿ sign flips of the differences (the zero ones flip to themselves).
fn permutation_p(ranks: &[SignedRank], r_plus: f64) -> f64 {
    // Each pattern of the non-zero signs occurs 2^zeros times; that factor cancels.
    let patterns = 1u32 << ranks.len();
    let tolerance = 100.0 * f64::EPSILON * r_plus.abs();
    let (mut at_most, mut at_least) = (0u64, 0u64);
    for pattern in 0..patterns {
        let stat: f64 = ranks
            .iter()
            .enumerate()
            .filter(|(i, _)| pattern & (1 << i) != 0)
            .map(|(_, r)| r.rank)
            .sum();
        at_most += u64::from(stat <= r_plus + tolerance);
        at_least += u64::from(stat >= r_plus - tolerance);
    }
    (2.0 * at_most.min(at_least) as f64 / f64::from(patterns)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diffs(a: &[f64], b: &[f64]) -> Vec<f64> {
        a.iter().zip(b).map(|(x, y)| x - y).collect()
    }

    /// Hollander & Wolfe (1973, p. 29), the depression-scale example of R's `wilcox.test`:
    /// paired, no ties, n = 9, V = R+ = 40; one-sided p = 0.01953, so two-sided p = 0.039062.
    #[test]
    // 3.14 is a measurement in the published data, not an approximation of π.
    #[allow(clippy::approx_constant)]
    fn exact_matches_hollander_wolfe() {
        let x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30];
        let y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];
        let r = wilcoxon_signed_rank(&diffs(&x, &y)).unwrap();
        assert_eq!(r.method, Method::Exact);
        assert_eq!((r.r_plus, r.r_minus, r.w), (40.0, 5.0, 5.0));
        assert!((r.p - 0.0390625).abs() < 1e-12, "{r:?}");
    }

    /// Student's sleep data (ties and one zero, n = 10): every non-zero difference is negative,
    /// so R+ = 0 and only the all-negative patterns (2 of 2¹⁰, counting the zero's flip) reach
    /// it: p = 2 · 2/1024. SciPy 1.17 `wilcoxon(g1, g2)` gives statistic 0.0, p 0.00390625.
    #[test]
    fn permutation_handles_ties_and_zeros() {
        let g1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
        let g2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];
        let r = wilcoxon_signed_rank(&diffs(&g1, &g2)).unwrap();
        assert_eq!(r.method, Method::Permutation);
        assert_eq!(r.zeros, 1);
        assert_eq!(r.w, 0.0);
        assert!((r.p - 0.00390625).abs() < 1e-12, "{r:?}");
    }

    /// Every branch of SciPy's method choice, against `scipy.stats.wilcoxon(d)` (SciPy 1.17.1).
    #[test]
    fn matches_scipy_in_every_branch() {
        let d60: Vec<f64> = (0..60).map(|i| ((i * 37) % 101) as f64 - 44.75).collect();
        let d30_ties: Vec<f64> = (0..30).map(|i| ((i * 13) % 31) as f64 - 12.5).collect();
        let d30: Vec<f64> = (0..30).map(|i| ((i * 13) % 31) as f64 - 11.75).collect();
        let d20 = [
            -0.2, 0.15, -0.05, 0.3, 0.1, -0.1, 0.25, 0.05, -0.15, 0.2, 0.0, -0.2, 0.15, -0.05, 0.3,
            0.1, -0.1, 0.25, 0.05, -0.15,
        ];
        let table: [(&[f64], Method, f64, f64); 4] = [
            (&d60, Method::Normal, 757.0, 0.24477543370760457),
            (&d30_ties, Method::Normal, 168.0, 0.18448254216768634),
            (&d30, Method::Exact, 150.0, 0.09194962680339813),
            (&d20, Method::Normal, 67.0, 0.2580932481894861),
        ];
        for (d, method, w, p) in table {
            let r = wilcoxon_signed_rank(d).unwrap();
            assert_eq!((r.method, r.w), (method, w), "n = {}", d.len());
            // statrs' erfc and SciPy's differ in the 11th digit.
            assert!(
                (r.p - p).abs() < 1e-9 * p,
                "n = {}: {} vs {p}",
                d.len(),
                r.p
            );
        }
    }

    #[test]
    fn average_ranks_for_ties() {
        let ranks = signed_ranks(&[-2.0, 1.0, 2.0, 0.0, 3.0]);
        let got: Vec<(f64, bool)> = ranks.iter().map(|r| (r.rank, r.positive)).collect();
        assert_eq!(
            got,
            vec![(1.0, true), (2.5, false), (2.5, true), (4.0, true)]
        );
    }

    #[test]
    fn all_zero_differences_are_undefined() {
        assert!(wilcoxon_signed_rank(&[0.0; 5]).is_err());
        assert!(wilcoxon_signed_rank(&[]).is_err());
    }
}
