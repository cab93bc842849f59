//! Two-sided paired t-test on differences d = a − b.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The paired t-test's statistic, degrees of freedom and two-sided p-value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    pub t: f64,
    pub df: f64,
    pub p: f64,
}

/// Why a test has no value.
pub type Undefined = String;

/// t = mean(d) / (sd(d) / √n) with the sample standard deviation, df = n − 1, and
/// p = 2·P(T_df > |t|). Undefined for n < 2 and for differences without spread (t would be
/// 0/0 or ±∞).
pub fn paired_t_test(d: &[f64]) -> Result<TTest, Undefined> {
    let n = d.len();
    if n < 2 {
        return Err(format!("the t-test needs at least 2 pairs, got {n}"));
    }
    // Equal differences have zero variance, though rounding in the mean can leave a tiny one:
    // test equality itself.
    if d.iter().all(|&x| x == d[0]) {
        return Err(if d[0] == 0.0 {
            "all differences are zero: the t statistic is undefined".into()
        } else {
            format!(
                "all differences equal {}: zero variance, the t statistic is undefined",
                d[0]
            )
        });
    }
    let nf = n as f64;
    let mean = d.iter().sum::<f64>() / nf;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (nf - 1.0);
    let t = mean / (var / nf).sqrt();
    if !t.is_finite() {
        return Err(format!(
            "t = {t}: the values are too large to compute with (mean {mean}, variance {var})"
        ));
    }
    let df = nf - 1.0;
    let dist = StudentsT::new(0.0, 1.0, df)
        .map_err(|e| format!("t distribution with {df} degrees of freedom: {e}"))?;
    let p = (2.0 * dist.sf(t.abs())).min(1.0);
    if !p.is_finite() {
        return Err(format!("the t distribution gave p = {p} for t = {t}"));
    }
    Ok(TTest { t, df, p })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Student's (1908) sleep data, as in R's `t.test(extra ~ group, data = sleep, paired =
    /// TRUE)`: t = −4.0621, df = 9, p-value = 0.002833.
    #[test]
    fn matches_the_sleep_data_textbook_result() {
        let g1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
        let g2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];
        let d: Vec<f64> = g1.iter().zip(g2).map(|(a, b)| a - b).collect();
        let r = paired_t_test(&d).unwrap();
        assert!((r.t - -4.0621).abs() < 5e-5, "{r:?}");
        assert_eq!(r.df, 9.0);
        assert!((r.p - 0.002833).abs() < 5e-7, "{r:?}");
    }

    #[test]
    fn degenerate_inputs_are_undefined_not_nan() {
        for d in [
            vec![],
            vec![0.3],
            vec![0.0, 0.0, 0.0],
            vec![0.1, 0.1, 0.1, 0.1],
        ] {
            let r = paired_t_test(&d);
            assert!(r.is_err(), "{d:?} gave {r:?}");
        }
    }
}
