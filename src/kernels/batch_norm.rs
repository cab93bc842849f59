//! Batch normalisation of `B × C × P` activations (P pixels per channel plane), optionally
//! followed by ReLU, as one pass forward and two passes backward.
//!
//! Training mode normalises with the batch's own statistics (biased variance, as PyTorch and
//! burn), so the input gradient carries the terms through the mean and variance:
//! with `x̂ = (x − μ)/σ`, `g = dy · 1[y > 0]` and N = B·P values per channel,
//! `dβ = Σ g`, `dγ = Σ g·x̂`, `dx = γ/σ · (g − dβ/N − x̂·dγ/N)`.
//!
//! Channel statistics are summed in f64, one channel per task, in a fixed order: the results do
//! not depend on the number of threads.

use rayon::prelude::*;

/// Shape of the activation: batch, channels, pixels per channel plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormShape {
    pub batch: usize,
    pub channels: usize,
    pub pixels: usize,
}

impl NormShape {
    fn len(&self) -> usize {
        self.batch * self.channels * self.pixels
    }

    fn count(&self) -> f64 {
        (self.batch * self.pixels) as f64
    }

    /// The planes of channel `c`, one per sample.
    fn planes<'a>(&self, x: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (channels, pixels) = (self.channels, self.pixels);
        (0..self.batch)
            .map(move |b| &x[(b * channels + c) * pixels..(b * channels + c + 1) * pixels])
    }
}

/// Σ f(v) over `values` in eight f32 lanes (so the loop vectorises), then the lanes in f64.
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut lanes = [0.0f32; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f(v);
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|&v| f(v) as f64).sum();
    lanes.iter().map(|&l| l as f64).sum::<f64>() + tail
}

/// Per-channel mean and biased variance.
pub fn channel_stats(x: &[f32], shape: &NormShape) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), shape.len(), "batch_norm: input length");
    let n = shape.count();
    (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let sum: f64 = shape.planes(x, c).map(|plane| lane_sum(plane, |v| v)).sum();
            let mean = (sum / n) as f32;
            let squares: f64 = shape
                .planes(x, c)
                .map(|plane| lane_sum(plane, |v| (v - mean) * (v - mean)))
                .sum();
            (mean, (squares / n) as f32)
        })
        .unzip()
}

/// The per-channel affine map a normalisation amounts to: `y = x·scale + shift`.
#[derive(Clone, Debug)]
pub struct Affine {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
}

impl Affine {
    /// `scale = γ/√(var + ε)`, `shift = β − μ·scale`.
    pub fn new(gamma: &[f32], beta: &[f32], mean: &[f32], var: &[f32], epsilon: f64) -> Self {
        let scale: Vec<f32> = gamma
            .iter()
            .zip(var)
            .map(|(&g, &v)| g / (v + epsilon as f32).sqrt())
            .collect();
        let shift = beta
            .iter()
            .zip(mean)
            .zip(&scale)
            .map(|((&b, &m), &s)| b - m * s)
            .collect();
        Affine { scale, shift }
    }
}

/// `y = x·scale + shift` per channel, then ReLU when asked.
pub fn apply(x: &[f32], affine: &Affine, shape: &NormShape, relu: bool) -> Vec<f32> {
    assert_eq!(x.len(), shape.len(), "batch_norm: input length");
    let mut y = vec![0.0; x.len()];
    y.par_chunks_mut(shape.pixels)
        .zip(x.par_chunks(shape.pixels))
        .enumerate()
        .for_each(|(plane, (out, input))| {
            let c = plane % shape.channels;
            let (s, t) = (affine.scale[c], affine.shift[c]);
            if relu {
                for (o, &v) in out.iter_mut().zip(input) {
                    *o = (v * s + t).max(0.0);
                }
            } else {
                for (o, &v) in out.iter_mut().zip(input) {
                    *o = v * s + t;
                }
            }
        });
    y
}

/// What the backward pass needs from a training-mode forward pass.
#[derive(Clone, Debug)]
pub struct Saved {
    pub affine: Affine,
    pub mean: Vec<f32>,
    pub var: Vec<f32>,
    pub gamma: Vec<f32>,
    pub epsilon: f64,
    pub relu: bool,
}

/// Gradients of a training-mode normalisation (+ ReLU).
pub struct Grads {
    pub input: Vec<f32>,
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

pub fn backward(x: &[f32], grad_output: &[f32], saved: &Saved, shape: &NormShape) -> Grads {
    assert_eq!(x.len(), shape.len(), "batch_norm: input length");
    assert_eq!(
        grad_output.len(),
        shape.len(),
        "batch_norm: gradient length"
    );
    let inv_std: Vec<f32> = saved
        .var
        .iter()
        .map(|&v| 1.0 / (v + saved.epsilon as f32).sqrt())
        .collect();
    // The ReLU passed the gradient where the forward output was positive; recomputing that
    // output with the same expression gives the same mask bit for bit.
    let relu = saved.relu;
    let gate = move |v: f32, g: f32, scale: f32, shift: f32| -> f32 {
        if relu && v * scale + shift <= 0.0 {
            0.0
        } else {
            g
        }
    };
    let (grad_beta, grad_gamma): (Vec<f32>, Vec<f32>) = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let (scale, shift, mean) =
                (saved.affine.scale[c], saved.affine.shift[c], saved.mean[c]);
            let (mut sum_g, mut sum_gx) = (0.0f64, 0.0f64);
            for (xs, gs) in shape.planes(x, c).zip(shape.planes(grad_output, c)) {
                let mut lanes_g = [0.0f32; 8];
                let mut lanes_gx = [0.0f32; 8];
                let (xc, gc) = (xs.chunks_exact(8), gs.chunks_exact(8));
                let (x_tail, g_tail) = (xc.remainder(), gc.remainder());
                for (xv, gv) in xc.zip(gc) {
                    for l in 0..8 {
                        let g = gate(xv[l], gv[l], scale, shift);
                        lanes_g[l] += g;
                        lanes_gx[l] += g * (xv[l] - mean);
                    }
                }
                for (&v, &g) in x_tail.iter().zip(g_tail) {
                    let g = gate(v, g, scale, shift);
                    lanes_g[0] += g;
                    lanes_gx[0] += g * (v - mean);
                }
                sum_g += lanes_g.iter().map(|&v| v as f64).sum::<f64>();
                sum_gx += lanes_gx.iter().map(|&v| v as f64).sum::<f64>();
            }
            (sum_g as f32, (sum_gx * inv_std[c] as f64) as f32)
        })
        .unzip();
    let n = shape.count() as f32;
    let mut grad_input = vec![0.0; x.len()];
    grad_input
        .par_chunks_mut(shape.pixels)
        .zip(
            x.par_chunks(shape.pixels)
                .zip(grad_output.par_chunks(shape.pixels)),
        )
        .enumerate()
        .for_each(|(plane, (out, (xs, gs)))| {
            let c = plane % shape.channels;
            let (scale, shift, mean, inv) = (
                saved.affine.scale[c],
                saved.affine.shift[c],
                saved.mean[c],
                inv_std[c],
            );
            let k = saved.gamma[c] * inv;
            let (mean_g, mean_gx) = (grad_beta[c] / n, grad_gamma[c] / n);
            for ((o, &v), &g) in out.iter_mut().zip(xs).zip(gs) {
                let x_hat = (v - mean) * inv;
                *o = k * (gate(v, g, scale, shift) - mean_g - x_hat * mean_gx);
            }
        });
    Grads {
        input: grad_input,
        gamma: grad_gamma,
        beta: grad_beta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + salt * 104729) % 1013) as f32 / 1013.0) - 0.5)
            .collect()
    }

    /// The training-mode forward pass as a function of x, γ and β, for finite differences.
    fn loss(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        g: &[f32],
        shape: &NormShape,
        relu: bool,
    ) -> f64 {
        let (mean, var) = channel_stats(x, shape);
        let affine = Affine::new(gamma, beta, &mean, &var, 1e-5);
        apply(x, &affine, shape, relu)
            .iter()
            .zip(g)
            .map(|(y, g)| (*y as f64) * (*g as f64))
            .sum()
    }

    #[test]
    fn statistics_and_normalisation_follow_the_definition() {
        // One channel, values 1..4 over two samples: mean 2.5, biased variance 1.25.
        let shape = NormShape {
            batch: 2,
            channels: 1,
            pixels: 2,
        };
        let x = [1.0, 2.0, 3.0, 4.0];
        let (mean, var) = channel_stats(&x, &shape);
        assert_eq!((mean[0], var[0]), (2.5, 1.25));
        let affine = Affine::new(&[2.0], &[0.5], &mean, &var, 0.0);
        let y = apply(&x, &affine, &shape, true);
        let expected: Vec<f32> = x
            .iter()
            .map(|v| (2.0 * (v - 2.5) / 1.25f32.sqrt() + 0.5).max(0.0))
            .collect();
        for (a, b) in y.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-6, "{y:?} vs {expected:?}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let shape = NormShape {
            batch: 3,
            channels: 2,
            pixels: 5,
        };
        for relu in [false, true] {
            let x = values(shape.len(), 1);
            let gamma = vec![1.3, -0.7];
            let beta = vec![0.2, 0.1];
            let g = values(shape.len(), 2);
            let (mean, var) = channel_stats(&x, &shape);
            let saved = Saved {
                affine: Affine::new(&gamma, &beta, &mean, &var, 1e-5),
                mean,
                var,
                gamma: gamma.clone(),
                epsilon: 1e-5,
                relu,
            };
            let grads = backward(&x, &g, &saved, &shape);
            let h = 1e-3f32;
            let numeric = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / (2.0 * h as f64);
            for i in [0, 7, 13, 29] {
                let d = numeric(&|e| {
                    let mut xe = x.clone();
                    xe[i] += e;
                    loss(&xe, &gamma, &beta, &g, &shape, relu)
                });
                assert!(
                    (d - grads.input[i] as f64).abs() < 2e-3,
                    "dx[{i}] {d} vs {}",
                    grads.input[i]
                );
            }
            for c in 0..2 {
                let dg = numeric(&|e| {
                    let mut ge = gamma.clone();
                    ge[c] += e;
                    loss(&x, &ge, &beta, &g, &shape, relu)
                });
                let db = numeric(&|e| {
                    let mut be = beta.clone();
                    be[c] += e;
                    loss(&x, &gamma, &be, &g, &shape, relu)
                });
                assert!(
                    (dg - grads.gamma[c] as f64).abs() < 2e-3,
                    "dγ[{c}] {dg} vs {}",
                    grads.gamma[c]
                );
                assert!(
                    (db - grads.beta[c] as f64).abs() < 2e-3,
                    "dβ[{c}] {db} vs {}",
                    grads.beta[c]
                );
            }
        }
    }
}
