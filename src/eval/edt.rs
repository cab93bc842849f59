//! Exact Euclidean distance transform with anisotropic voxel spacing.
//!
//! Felzenszwalb and Huttenlocher's separable algorithm ("Distance Transforms of Sampled
//! Functions", Theory of Computing 8, 2012): the squared distance to the nearest feature voxel is
//! a minimum of parabolas, and that minimum separates into one 1D lower-envelope pass per axis.
//! Each pass is linear in the number of voxels, so a whole transform is O(voxels × axes) and exact
//! (no chamfer approximation). Spacing enters as a per-axis scale of the parabolas, so distances
//! come out in millimetres.
//!
//! Works for arrays of any dimension; the metrics use it in 2D and 3D.

use ndarray::{ArrayD, ArrayViewD, Axis, Zip};

/// Distance in spacing units from every voxel to the nearest voxel where `features` is true.
///
/// A feature voxel has distance 0. With no feature voxel at all, every distance is `+inf`.
/// `spacing` has one positive, finite entry per axis of `features`.
pub fn distance_to_features(features: ArrayViewD<'_, bool>, spacing: &[f64]) -> ArrayD<f64> {
    let mut sq = squared_distance_to_features(features, spacing);
    sq.mapv_inplace(f64::sqrt);
    sq
}

/// The squared distances [`distance_to_features`] takes the root of.
pub fn squared_distance_to_features(
    features: ArrayViewD<'_, bool>,
    spacing: &[f64],
) -> ArrayD<f64> {
    assert_eq!(
        features.ndim(),
        spacing.len(),
        "one spacing per axis is required"
    );
    let mut field = features.mapv(|f| if f { 0.0 } else { f64::INFINITY });
    let longest = features.shape().iter().copied().max().unwrap_or(0);
    let mut scratch = Envelope::with_capacity(longest);
    let mut line = vec![0.0; longest];
    for (axis, &step) in spacing.iter().enumerate() {
        let n = features.shape()[axis];
        if n == 0 {
            continue;
        }
        for mut lane in field.lanes_mut(Axis(axis)) {
            // Lanes along inner axes are contiguous, along outer axes strided: copying each
            // into a buffer keeps the envelope pass on contiguous memory either way.
            for (dst, &src) in line.iter_mut().zip(lane.iter()) {
                *dst = src;
            }
            if line[..n].iter().all(|v| v.is_infinite()) {
                continue;
            }
            let out = scratch.transform(&line[..n], step * step);
            Zip::from(&mut lane).and(out).for_each(|d, &v| *d = v);
        }
    }
    field
}

/// Scratch space for the 1D lower envelope of parabolas, reused across lines.
struct Envelope {
    /// Sites (indices) of the parabolas in the lower envelope.
    sites: Vec<usize>,
    /// Boundaries between consecutive envelope parabolas, in index units.
    bounds: Vec<f64>,
    /// Output of the last transform.
    out: Vec<f64>,
}

impl Envelope {
    fn with_capacity(n: usize) -> Self {
        Envelope {
            sites: Vec::with_capacity(n),
            bounds: Vec::with_capacity(n + 1),
            out: Vec::with_capacity(n),
        }
    }

    /// d(p) = min_q (w·(p − q)² + f(q)) for every p, with w the squared spacing. `f` must hold
    /// at least one finite value.
    fn transform(&mut self, f: &[f64], w: f64) -> &[f64] {
        let n = f.len();
        self.sites.clear();
        self.bounds.clear();
        // Intersection of the parabolas rooted at q and v (v < q), in index units.
        let meet = |q: usize, v: usize| -> f64 {
            let (qf, vf) = (q as f64, v as f64);
            ((f[q] + w * qf * qf) - (f[v] + w * vf * vf)) / (2.0 * w * (qf - vf))
        };
        for (q, fq) in f.iter().enumerate() {
            if fq.is_infinite() {
                continue;
            }
            loop {
                match self.sites.last() {
                    None => {
                        self.sites.push(q);
                        self.bounds.push(f64::NEG_INFINITY);
                        break;
                    }
                    Some(&v) => {
                        let s = meet(q, v);
                        if s <= *self.bounds.last().expect("one bound per site") {
                            self.sites.pop();
                            self.bounds.pop();
                        } else {
                            self.sites.push(q);
                            self.bounds.push(s);
                            break;
                        }
                    }
                }
            }
        }
        self.bounds.push(f64::INFINITY);
        self.out.clear();
        self.out.resize(n, 0.0);
        let mut k = 0;
        for (p, d) in self.out.iter_mut().enumerate() {
            let pf = p as f64;
            while self.bounds[k + 1] < pf {
                k += 1;
            }
            let q = self.sites[k];
            let dq = pf - q as f64;
            *d = w * dq * dq + f[q];
        }
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Dimension, IxDyn};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn brute_force(features: &ArrayD<bool>, spacing: &[f64]) -> ArrayD<f64> {
        let points: Vec<Vec<usize>> = features
            .indexed_iter()
            .filter(|(_, &f)| f)
            .map(|(i, _)| i.slice().to_vec())
            .collect();
        ArrayD::from_shape_fn(features.raw_dim(), |p| {
            points
                .iter()
                .map(|q| {
                    q.iter()
                        .enumerate()
                        .map(|(a, &qa)| ((p[a] as f64 - qa as f64) * spacing[a]).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(f64::INFINITY, f64::min)
        })
    }

    fn random_mask(shape: &[usize], density: f64, rng: &mut ChaCha8Rng) -> ArrayD<bool> {
        ArrayD::from_shape_fn(IxDyn(shape), |_| rng.random_bool(density))
    }

    #[test]
    fn equals_brute_force_on_random_masks_2d_and_3d() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let cases: [(&[usize], &[f64]); 5] = [
            (&[13, 17], &[1.0, 1.0]),
            (&[16, 9], &[0.73, 2.5]),
            (&[7, 9, 5], &[1.25, 1.25, 14.0]),
            (&[5, 6, 7], &[3.0, 0.5, 1.0]),
            (&[1, 12, 3], &[1.0, 1.0, 1.0]),
        ];
        for (shape, spacing) in cases {
            for density in [0.01, 0.05, 0.3, 0.9] {
                let mask = random_mask(shape, density, &mut rng);
                let fast = distance_to_features(mask.view(), spacing);
                let slow = brute_force(&mask, spacing);
                for (f, s) in fast.iter().zip(slow.iter()) {
                    assert!(
                        (f == s) || (f - s).abs() < 1e-9,
                        "{shape:?} {spacing:?} {density}: {f} vs {s}"
                    );
                }
            }
        }
    }

    #[test]
    fn no_features_means_infinite_distance() {
        let mask = ArrayD::from_elem(IxDyn(&[4, 5]), false);
        let d = distance_to_features(mask.view(), &[1.0, 1.0]);
        assert!(d.iter().all(|v| v.is_infinite()));
    }

    #[test]
    fn hand_computed_anisotropic_distances() {
        // One feature at the centre of a 3×3 grid, spacing 2 (rows) × 3 (columns).
        let mut mask = ArrayD::from_elem(IxDyn(&[3, 3]), false);
        mask[[1, 1]] = true;
        let d = distance_to_features(mask.view(), &[2.0, 3.0]);
        let diag = 13f64.sqrt();
        let expect = [diag, 2.0, diag, 3.0, 0.0, 3.0, diag, 2.0, diag];
        for (got, want) in d.iter().zip(expect) {
            assert!((got - want).abs() < 1e-12, "{d:?}");
        }
    }
}
