//! The attention gate's product: every channel of `skip` (`B × C × P`) multiplied by the
//! one-channel map `alpha` (`B × 1 × P`), and its gradients
//! `d skip = g · alpha`, `d alpha = Σ_c g · skip`.

use rayon::prelude::*;

/// Batch, channels of `skip`, pixels per plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GateShape {
    pub batch: usize,
    pub channels: usize,
    pub pixels: usize,
}

impl GateShape {
    fn check(&self, skip: usize, alpha: usize) {
        assert_eq!(
            skip,
            self.batch * self.channels * self.pixels,
            "gate: skip length"
        );
        assert_eq!(alpha, self.batch * self.pixels, "gate: alpha length");
    }
}

pub fn forward(skip: &[f32], alpha: &[f32], shape: &GateShape) -> Vec<f32> {
    shape.check(skip.len(), alpha.len());
    let p = shape.pixels;
    let mut out = vec![0.0; skip.len()];
    out.par_chunks_mut(p)
        .zip(skip.par_chunks(p))
        .enumerate()
        .for_each(|(plane, (o, s))| {
            let a = &alpha[(plane / shape.channels) * p..][..p];
            for ((o, &s), &a) in o.iter_mut().zip(s).zip(a) {
                *o = s * a;
            }
        });
    out
}

/// `(d skip, d alpha)` given the output gradient `grad`.
pub fn backward(
    skip: &[f32],
    alpha: &[f32],
    grad: &[f32],
    shape: &GateShape,
) -> (Vec<f32>, Vec<f32>) {
    shape.check(skip.len(), alpha.len());
    assert_eq!(grad.len(), skip.len(), "gate: gradient length");
    let grad_skip = forward(grad, alpha, shape);
    let (c, p) = (shape.channels, shape.pixels);
    let mut grad_alpha = vec![0.0f32; alpha.len()];
    grad_alpha
        .par_chunks_mut(p)
        .enumerate()
        .for_each(|(b, da)| {
            for ch in 0..c {
                let offset = (b * c + ch) * p;
                let (g, s) = (&grad[offset..offset + p], &skip[offset..offset + p]);
                for ((d, &g), &s) in da.iter_mut().zip(g).zip(s) {
                    *d += g * s;
                }
            }
        });
    (grad_skip, grad_alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_and_gradients_by_hand() {
        // One sample, two channels, two pixels.
        let shape = GateShape {
            batch: 1,
            channels: 2,
            pixels: 2,
        };
        let skip = [1.0, 2.0, 3.0, 4.0];
        let alpha = [0.5, 0.25];
        assert_eq!(forward(&skip, &alpha, &shape), vec![0.5, 0.5, 1.5, 1.0]);
        let grad = [1.0, 1.0, 2.0, -1.0];
        let (ds, da) = backward(&skip, &alpha, &grad, &shape);
        assert_eq!(ds, vec![0.5, 0.25, 1.0, -0.25]);
        // pixel 0: 1·1 + 2·3 = 7; pixel 1: 1·2 − 1·4 = −2
        assert_eq!(da, vec![7.0, -2.0]);
    }
}
