//! Holm's step-down correction for a family of tests.

/// Holm-adjusted p-values, in the input order. With m defined p-values sorted ascending,
/// p̃₍ᵢ₎ = min(1, max_{j ≤ i} (m − j + 1)·p₍ⱼ₎); undefined p-values stay undefined and do not
/// count towards m. Ties keep their input order.
pub fn holm(p: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_some()).collect();
    order.sort_by(|&i, &j| p[i].unwrap_or(1.0).total_cmp(&p[j].unwrap_or(1.0)));
    let m = order.len();
    let mut adjusted = vec![None; p.len()];
    let mut running = 0.0f64;
    for (rank, &i) in order.iter().enumerate() {
        let scaled = ((m - rank) as f64 * p[i].unwrap_or(1.0)).min(1.0);
        running = running.max(scaled);
        adjusted[i] = Some(running);
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_hand_computed_holm() {
        // m = 4: sorted 0.01, 0.02, 0.03, 0.04 → 0.04, 0.06, 0.06 (monotone), 0.06.
        let p = [Some(0.03), Some(0.01), None, Some(0.04), Some(0.02)];
        let got = holm(&p);
        let expect = [Some(0.06), Some(0.04), None, Some(0.06), Some(0.06)];
        for (g, e) in got.iter().zip(expect) {
            match (g, e) {
                (Some(g), Some(e)) => assert!((g - e).abs() < 1e-15, "{got:?}"),
                (None, None) => {}
                _ => panic!("{got:?}"),
            }
        }
        assert_eq!(holm(&[Some(0.6), Some(0.7)]), vec![Some(1.0), Some(1.0)]);
        assert_eq!(holm(&[Some(0.2)]), vec![Some(0.2)]);
    }
}
