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
        for q in 0..n {
            if f[q].is_infinite() {
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
