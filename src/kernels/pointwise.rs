//! The 1×1 convolution (a per-pixel linear map of channels, optional bias) on NCHW `f32` slices,
//! with its gradients: one matrix product per sample, `Y_b = W · X_b + b`.
//!
//! - input gradient: `dX_b = Wᵀ · dY_b`;
//! - weight gradient: `dW = Σ_b dY_b · X_bᵀ`;
//! - bias gradient: `db = Σ_b Σ_p dY_b`.
//!
//! As in `conv3x3`, samples are spread over threads and the weight gradient is summed over
//! fixed chunks of samples, so results depend on the batch size only.

use rayon::prelude::*;

use super::matmul::{gemm_threads, matmul, MatRef};
use super::reduce::{sum_partials, WGRAD_CHUNK};

/// Batch, input and output channels, pixels per plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PointwiseShape {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub pixels: usize,
}

impl PointwiseShape {
    fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.pixels
    }

    fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.pixels
    }
}

/// Below this many channels on either side a matrix product degenerates (an outer product or
/// a matrix-vector product), and plain vector loops over the pixels are faster.
const NARROW_CHANNELS: usize = 4;

fn narrow(in_channels: usize, out_channels: usize) -> bool {
    in_channels.min(out_channels) <= NARROW_CHANNELS
}

/// `y = a·x` or `y += a·x`.
fn axpy(a: f32, x: &[f32], y: &mut [f32], accumulate: bool) {
    if accumulate {
        for (y, &x) in y.iter_mut().zip(x) {
            *y += a * x;
        }
    } else {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = a * x;
        }
    }
}

/// Σ x·y in eight f32 lanes (so it vectorises).
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail: f32 = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            lanes[l] += a[l] * b[l];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `W` (`C_out × C_in`) applied to every pixel of `input` (`B × C_in × P`), plus `bias`.
pub fn forward(
    input: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    shape: &PointwiseShape,
) -> Vec<f32> {
    let (ci, co, p) = (shape.in_channels, shape.out_channels, shape.pixels);
    assert_eq!(input.len(), shape.input_len(), "pointwise: input length");
    assert_eq!(weight.len(), co * ci, "pointwise: weight length");
    if let Some(bias) = bias {
        assert_eq!(bias.len(), co, "pointwise: bias length");
    }
    let mut output = vec![0.0; shape.output_len()];
    let threads = gemm_threads(shape.batch);
    output
        .par_chunks_mut(co * p)
        .zip(input.par_chunks(ci * p))
        .for_each(|(out, x)| {
            if let Some(bias) = bias {
                for (plane, &b) in out.chunks_mut(p).zip(bias) {
                    plane.fill(b);
                }
            }
            if narrow(ci, co) {
                for (o, plane) in out.chunks_mut(p).enumerate() {
                    for (i, xs) in x.chunks(p).enumerate() {
                        axpy(weight[o * ci + i], xs, plane, bias.is_some() || i > 0);
                    }
                }
                return;
            }
            matmul(
                out,
                p,
                MatRef::row_major(weight, co, ci),
                MatRef::row_major(x, ci, p),
                bias.is_some(),
                threads,
            );
        });
    output
}

/// The gradient with respect to the input.
pub fn input_grad(grad_output: &[f32], weight: &[f32], shape: &PointwiseShape) -> Vec<f32> {
    let (ci, co, p) = (shape.in_channels, shape.out_channels, shape.pixels);
    assert_eq!(
        grad_output.len(),
        shape.output_len(),
        "pointwise: gradient length"
    );
    let mut grad_input = vec![0.0; shape.input_len()];
    let threads = gemm_threads(shape.batch);
    grad_input
        .par_chunks_mut(ci * p)
        .zip(grad_output.par_chunks(co * p))
        .for_each(|(dx, dy)| {
            if narrow(ci, co) {
                for (i, plane) in dx.chunks_mut(p).enumerate() {
                    for (o, ys) in dy.chunks(p).enumerate() {
                        axpy(weight[o * ci + i], ys, plane, o > 0);
                    }
                }
                return;
            }
            matmul(
                dx,
                p,
                MatRef::transposed(weight, ci, co),
                MatRef::row_major(dy, co, p),
                false,
                threads,
            );
        });
    grad_input
}

/// The gradient with respect to the weight (`C_out × C_in`).
pub fn weight_grad(input: &[f32], grad_output: &[f32], shape: &PointwiseShape) -> Vec<f32> {
    let (ci, co, p) = (shape.in_channels, shape.out_channels, shape.pixels);
    assert_eq!(input.len(), shape.input_len(), "pointwise: input length");
    assert_eq!(
        grad_output.len(),
        shape.output_len(),
        "pointwise: gradient length"
    );
    let chunks = shape.batch.div_ceil(WGRAD_CHUNK);
    let threads = gemm_threads(chunks);
    let partials: Vec<Vec<f32>> = (0..chunks)
        .into_par_iter()
        .map(|chunk| {
            let mut acc = vec![0.0f32; co * ci];
            for b in chunk * WGRAD_CHUNK..((chunk + 1) * WGRAD_CHUNK).min(shape.batch) {
                if narrow(ci, co) {
                    let xs = &input[b * ci * p..(b + 1) * ci * p];
                    let ys = &grad_output[b * co * p..(b + 1) * co * p];
                    for (o, gy) in ys.chunks(p).enumerate() {
                        for (i, gx) in xs.chunks(p).enumerate() {
                            acc[o * ci + i] += dot(gy, gx);
                        }
                    }
                    continue;
                }
                matmul(
                    &mut acc,
                    ci,
                    MatRef::row_major(&grad_output[b * co * p..(b + 1) * co * p], co, p),
                    MatRef::transposed(&input[b * ci * p..(b + 1) * ci * p], p, ci),
                    true,
                    threads,
                );
            }
            acc
        })
        .collect();
    sum_partials(partials, co * ci)
}

/// The gradient with respect to the bias: the output gradient summed per channel.
pub fn bias_grad(grad_output: &[f32], shape: &PointwiseShape) -> Vec<f32> {
    let (co, p) = (shape.out_channels, shape.pixels);
    assert_eq!(
        grad_output.len(),
        shape.output_len(),
        "pointwise: gradient length"
    );
    (0..co)
        .into_par_iter()
        .map(|c| {
            (0..shape.batch)
                .map(|b| {
                    grad_output[(b * co + c) * p..(b * co + c + 1) * p]
                        .iter()
                        .map(|&v| v as f64)
                        .sum::<f64>()
                })
                .sum::<f64>() as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_case_by_hand() {
        // One sample, 2 input channels, 1 output channel, 2 pixels.
        let shape = PointwiseShape {
            batch: 1,
            in_channels: 2,
            out_channels: 1,
            pixels: 2,
        };
        let x = [1.0, 2.0, 3.0, 4.0]; // channel 0: [1, 2], channel 1: [3, 4]
        let w = [10.0, 100.0];
        assert_eq!(forward(&x, &w, Some(&[0.5]), &shape), vec![310.5, 420.5]);
        let dy = [1.0, -1.0];
        assert_eq!(
            input_grad(&dy, &w, &shape),
            vec![10.0, -10.0, 100.0, -100.0]
        );
        assert_eq!(weight_grad(&x, &dy, &shape), vec![-1.0, -1.0]);
        assert_eq!(bias_grad(&dy, &shape), vec![0.0]);
    }

    /// Both paths — vector loops for few channels, matrix products otherwise — against the
    /// definitions written out.
    #[test]
    fn narrow_and_wide_shapes_follow_the_definitions() {
        for (in_channels, out_channels) in [(6, 1), (2, 7), (6, 9)] {
            let shape = PointwiseShape {
                batch: 3,
                in_channels,
                out_channels,
                pixels: 21,
            };
            let (ci, co, p) = (in_channels, out_channels, 21);
            let x: Vec<f32> = (0..shape.input_len())
                .map(|i| (i % 11) as f32 - 5.0)
                .collect();
            let w: Vec<f32> = (0..ci * co).map(|i| (i % 7) as f32 * 0.5 - 1.0).collect();
            let dy: Vec<f32> = (0..shape.output_len())
                .map(|i| (i % 5) as f32 - 2.0)
                .collect();
            let at = |t: &[f32], channels: usize, b: usize, c: usize, px: usize| {
                t[(b * channels + c) * p + px]
            };
            let y = forward(&x, &w, None, &shape);
            let dx = input_grad(&dy, &w, &shape);
            let dw = weight_grad(&x, &dy, &shape);
            for b in 0..3 {
                for px in 0..p {
                    for o in 0..co {
                        let expected: f32 =
                            (0..ci).map(|i| w[o * ci + i] * at(&x, ci, b, i, px)).sum();
                        assert_eq!(at(&y, co, b, o, px), expected, "y, {ci}→{co}");
                    }
                    for i in 0..ci {
                        let expected: f32 =
                            (0..co).map(|o| w[o * ci + i] * at(&dy, co, b, o, px)).sum();
                        assert_eq!(at(&dx, ci, b, i, px), expected, "dx, {ci}→{co}");
                    }
                }
            }
            for o in 0..co {
                for i in 0..ci {
                    let expected: f32 = (0..3)
                        .flat_map(|b| (0..p).map(move |px| (b, px)))
                        .map(|(b, px)| at(&dy, co, b, o, px) * at(&x, ci, b, i, px))
                        .sum();
                    assert_eq!(dw[o * ci + i], expected, "dw, {ci}→{co}");
                }
            }
        }
    }

    #[test]
    fn batches_agree_with_sample_by_sample_results() {
        let shape = PointwiseShape {
            batch: 5,
            in_channels: 3,
            out_channels: 4,
            pixels: 7,
        };
        let x: Vec<f32> = (0..shape.input_len())
            .map(|i| (i % 13) as f32 - 6.0)
            .collect();
        let w: Vec<f32> = (0..12).map(|i| (i % 5) as f32 * 0.25).collect();
        let dy: Vec<f32> = (0..shape.output_len())
            .map(|i| (i % 7) as f32 - 3.0)
            .collect();
        let one = PointwiseShape { batch: 1, ..shape };
        let mut wsum = vec![0.0; 12];
        for b in 0..5 {
            let xb = &x[b * 21..(b + 1) * 21];
            let dyb = &dy[b * 28..(b + 1) * 28];
            assert_eq!(
                forward(xb, &w, None, &one)[..],
                forward(&x, &w, None, &shape)[b * 28..(b + 1) * 28]
            );
            for (s, v) in wsum.iter_mut().zip(weight_grad(xb, dyb, &one)) {
                *s += v;
            }
        }
        assert_eq!(weight_grad(&x, &dy, &shape), wsum);
    }
}
