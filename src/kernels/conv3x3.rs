//! The 3×3 "same" convolution (stride 1, zero padding 1, no bias) on NCHW `f32` slices, with both
//! of its gradients: the operation that dominates U-Net training.
//!
//! All three are im2col + one matrix product per tile of image rows:
//! - forward: `Y_b = W · col(X_b)` with `W` seen as `C_out × 9·C_in`;
//! - input gradient: the forward pass with the kernel flipped and its channel axes swapped,
//!   `dX_b = W' · col(dY_b)`, exact for stride 1 and padding 1;
//! - weight gradient: `dW = Σ_b dY_b · col(X_b)ᵀ`.
//!
//! Samples are spread over rayon's threads, each with its own column buffer; tiles keep that
//! buffer near 1 MiB so it stays in cache between the copy and the product. The weight gradient
//! sums per-task partials in a fixed order of sample chunks, so results do not depend on the
//! threads' scheduling — only on the chunking, which depends on the shapes alone.
//!
//! On x86-64 CPUs with AVX2 and FMA, images wide enough go to the direct kernels of
//! `kernels::conv3x3_direct` instead ([`Kernel::for_forward`], [`Kernel::for_weight_grad`]): the
//! choice depends on the shape and the CPU only, so a run is reproducible on one machine.

use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
use super::conv3x3_direct;
use super::matmul::{gemm_threads, matmul, MatRef};
use super::reduce::{sum_partials, WGRAD_CHUNK};

/// Shapes of one convolution: batch, input and output channels, image height and width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub height: usize,
    pub width: usize,
}

/// `a · b · c`, refusing a product that does not fit in `usize`: the kernels size buffers and
/// check bounds with these products, so a wrapped one would make those checks pass wrongly.
fn product(a: usize, b: usize, c: usize) -> usize {
    a.checked_mul(b)
        .and_then(|ab| ab.checked_mul(c))
        .expect("conv3x3: shape too large to address")
}

impl ConvShape {
    fn pixels(&self) -> usize {
        product(self.height, self.width, 1)
    }

    fn input_len(&self) -> usize {
        product(self.batch, self.in_channels, self.pixels())
    }

    fn output_len(&self) -> usize {
        product(self.batch, self.out_channels, self.pixels())
    }

    fn weight_len(&self) -> usize {
        product(self.out_channels, self.in_channels, 9)
    }

    /// The same convolution run backwards: channels swapped.
    fn swapped(&self) -> ConvShape {
        ConvShape {
            in_channels: self.out_channels,
            out_channels: self.in_channels,
            ..*self
        }
    }
}

/// Column-buffer budget per tile, in elements (1 MiB of f32).
const TILE_ELEMENTS: usize = 1 << 18;

/// Image rows per tile for `channels` input channels.
fn tile_rows(channels: usize, shape: &ConvShape) -> usize {
    (TILE_ELEMENTS / (channels * 9 * shape.width).max(1)).clamp(1, shape.height)
}

/// Where one image's columns go in a column buffer: the buffer's row length, and the first
/// column (several images can sit side by side).
#[derive(Clone, Copy)]
struct ColumnBlock {
    row_len: usize,
    first: usize,
}

impl ColumnBlock {
    /// A buffer holding one tile of `tile` columns.
    fn single(tile: usize) -> Self {
        ColumnBlock {
            row_len: tile,
            first: 0,
        }
    }
}

/// Fills `col` (`9·channels` rows) with the 3×3 neighbourhoods of image rows
/// `row0 .. row0 + rows` of `image` (`channels × height × width`), zero outside the image: row
/// `c·9 + kh·3 + kw`, columns `block.first ..` hold the input shifted by `(kh − 1, kw − 1)`.
fn im2col(
    image: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    (row0, rows): (usize, usize),
    col: &mut [f32],
    block: ColumnBlock,
) {
    let tile = rows * width;
    for c in 0..channels {
        let plane = &image[c * height * width..(c + 1) * height * width];
        for k in 0..9 {
            let (kh, kw) = (k / 3, k % 3);
            let start = (c * 9 + k) * block.row_len + block.first;
            let out = &mut col[start..start + tile];
            for r in 0..rows {
                let dst = &mut out[r * width..(r + 1) * width];
                let src_row = (row0 + r + kh) as isize - 1;
                if src_row < 0 || src_row >= height as isize {
                    dst.fill(0.0);
                    continue;
                }
                let src = &plane[src_row as usize * width..(src_row as usize + 1) * width];
                // dst[w] = src[w + kw - 1]
                match kw {
                    0 => {
                        dst[0] = 0.0;
                        dst[1..].copy_from_slice(&src[..width - 1]);
                    }
                    1 => dst.copy_from_slice(src),
                    _ => {
                        dst[..width - 1].copy_from_slice(&src[1..]);
                        dst[width - 1] = 0.0;
                    }
                }
            }
        }
    }
}

/// The row tiles of an image: `(first row, rows)` pairs of at most `rows_per_tile` rows.
fn row_tiles(height: usize, rows_per_tile: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..height)
        .step_by(rows_per_tile)
        .map(move |row0| (row0, rows_per_tile.min(height - row0)))
}

/// `output = conv(input, weight)` for every sample. `weight` is `C_out × C_in × 3 × 3`.
fn forward_into(
    input: &[f32],
    weight: &[f32],
    shape: &ConvShape,
    output: &mut [f32],
    gemm_threads: usize,
) {
    let (ci, co, h, w) = (
        shape.in_channels,
        shape.out_channels,
        shape.height,
        shape.width,
    );
    let p = h * w;
    let k = ci * 9;
    let rows_per_tile = tile_rows(ci, shape);
    let lhs = MatRef::row_major(weight, co, k);
    output.par_chunks_mut(co * p).enumerate().for_each_init(
        || vec![0.0f32; k * rows_per_tile * w],
        |col, (b, out)| {
            let image = &input[b * ci * p..(b + 1) * ci * p];
            for (row0, rows) in row_tiles(h, rows_per_tile) {
                let tile = rows * w;
                let block = ColumnBlock::single(tile);
                im2col(image, ci, h, w, (row0, rows), col, block);
                matmul(
                    &mut out[row0 * w..],
                    p,
                    lhs,
                    MatRef::row_major(&col[..k * tile], k, tile),
                    false,
                    gemm_threads,
                );
            }
        },
    );
}

fn check(shape: &ConvShape, input: usize, weight: usize, output: usize) {
    assert!(
        shape.batch > 0
            && shape.height > 0
            && shape.width > 0
            && shape.in_channels > 0
            && shape.out_channels > 0,
        "conv3x3: empty shape {shape:?}"
    );
    assert_eq!(input, shape.input_len(), "conv3x3: input length");
    assert_eq!(weight, shape.weight_len(), "conv3x3: weight length");
    assert_eq!(output, shape.output_len(), "conv3x3: output length");
}

/// How a convolution is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// im2col + gemm: any CPU, any shape.
    Im2col,
    /// `kernels::conv3x3_direct`: x86-64 with AVX2 and FMA only.
    Direct,
}

impl Kernel {
    /// Which kernels this CPU computes convolutions with: results differ in their last bits
    /// between the two (they add in another order), so a result's provenance names it.
    pub fn on_this_cpu() -> &'static str {
        if Kernel::Direct.available() {
            "direct (AVX2+FMA) where at least 8 wide, im2col + gemm below"
        } else {
            "im2col + gemm"
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn available(self) -> bool {
        match self {
            Kernel::Im2col => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Direct => conv3x3_direct::available(),
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Direct => false,
        }
    }

    /// The faster kernel for the forward pass and the input gradient of `shape`.
    pub fn for_forward(shape: &ConvShape) -> Kernel {
        Self::direct_from(shape.width, Self::min_direct_width(false))
    }

    /// The faster kernel for the weight gradient of `shape`.
    pub fn for_weight_grad(shape: &ConvShape) -> Kernel {
        Self::direct_from(shape.width, Self::min_direct_width(true))
    }

    fn direct_from(width: usize, min_width: usize) -> Kernel {
        if width >= min_width && Kernel::Direct.available() {
            Kernel::Direct
        } else {
            Kernel::Im2col
        }
    }

    fn min_direct_width(weight_grad: bool) -> usize {
        #[cfg(target_arch = "x86_64")]
        return if weight_grad {
            conv3x3_direct::MIN_WEIGHT_GRAD_WIDTH
        } else {
            conv3x3_direct::MIN_WIDTH
        };
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = weight_grad;
            usize::MAX
        }
    }
}

/// Runs the forward pass with `kernel` into `output`.
fn forward_with(
    kernel: Kernel,
    input: &[f32],
    weight: &[f32],
    shape: &ConvShape,
    output: &mut [f32],
) {
    match kernel {
        Kernel::Im2col => forward_into(input, weight, shape, output, gemm_threads(shape.batch)),
        #[cfg(target_arch = "x86_64")]
        Kernel::Direct => conv3x3_direct::forward_into(input, weight, shape, output),
        #[cfg(not(target_arch = "x86_64"))]
        Kernel::Direct => panic!("conv3x3: the direct kernel needs x86-64"),
    }
}

/// The convolution: `input` is `B × C_in × H × W`, `weight` `C_out × C_in × 3 × 3`; returns
/// `B × C_out × H × W`.
pub fn forward(input: &[f32], weight: &[f32], shape: &ConvShape) -> Vec<f32> {
    forward_using(Kernel::for_forward(shape), input, weight, shape)
}

/// [`forward`] with a chosen kernel.
///
/// # Panics
/// When the lengths disagree with `shape`, or the kernel is not [`Kernel::available`].
pub fn forward_using(kernel: Kernel, input: &[f32], weight: &[f32], shape: &ConvShape) -> Vec<f32> {
    let mut output = vec![0.0; shape.output_len()];
    check(shape, input.len(), weight.len(), output.len());
    forward_with(kernel, input, weight, shape, &mut output);
    output
}

/// The gradient with respect to the input, given the gradient of the output.
pub fn input_grad(grad_output: &[f32], weight: &[f32], shape: &ConvShape) -> Vec<f32> {
    input_grad_using(Kernel::for_forward(shape), grad_output, weight, shape)
}

/// [`input_grad`] with a chosen kernel.
///
/// # Panics
/// When the lengths disagree with `shape`, or the kernel is not [`Kernel::available`].
pub fn input_grad_using(
    kernel: Kernel,
    grad_output: &[f32],
    weight: &[f32],
    shape: &ConvShape,
) -> Vec<f32> {
    let mut grad_input = vec![0.0; shape.input_len()];
    check(shape, grad_input.len(), weight.len(), grad_output.len());
    let (ci, co) = (shape.in_channels, shape.out_channels);
    // W'[i, o, kh, kw] = W[o, i, 2 − kh, 2 − kw]
    let mut flipped = vec![0.0; weight.len()];
    for o in 0..co {
        for i in 0..ci {
            for t in 0..9 {
                flipped[(i * co + o) * 9 + t] = weight[(o * ci + i) * 9 + (8 - t)];
            }
        }
    }
    forward_with(
        kernel,
        grad_output,
        &flipped,
        &shape.swapped(),
        &mut grad_input,
    );
    grad_input
}

/// Columns (pixels) one weight-gradient product should span at least: small images are
/// batched side by side to reach it, since a product over a few dozen pixels is mostly overhead.
const MIN_WGRAD_COLUMNS: usize = 256;

/// The gradient with respect to the weight, given the input and the gradient of the output.
pub fn weight_grad(input: &[f32], grad_output: &[f32], shape: &ConvShape) -> Vec<f32> {
    weight_grad_using(Kernel::for_weight_grad(shape), input, grad_output, shape)
}

/// [`weight_grad`] with a chosen kernel.
///
/// # Panics
/// When the lengths disagree with `shape`, or the kernel is not [`Kernel::available`].
pub fn weight_grad_using(
    kernel: Kernel,
    input: &[f32],
    grad_output: &[f32],
    shape: &ConvShape,
) -> Vec<f32> {
    check(shape, input.len(), shape.weight_len(), grad_output.len());
    match kernel {
        Kernel::Im2col => weight_grad_im2col(input, grad_output, shape),
        #[cfg(target_arch = "x86_64")]
        Kernel::Direct => conv3x3_direct::weight_grad(input, grad_output, shape),
        #[cfg(not(target_arch = "x86_64"))]
        Kernel::Direct => panic!("conv3x3: the direct kernel needs x86-64"),
    }
}

fn weight_grad_im2col(input: &[f32], grad_output: &[f32], shape: &ConvShape) -> Vec<f32> {
    let (ci, co, h, w) = (
        shape.in_channels,
        shape.out_channels,
        shape.height,
        shape.width,
    );
    let p = h * w;
    let k = ci * 9;
    let rows_per_tile = tile_rows(ci, shape);
    let whole_images = rows_per_tile == h;
    // Samples per task: fixed by the shape alone, so the summation order is too.
    let per_task = if whole_images {
        MIN_WGRAD_COLUMNS.div_ceil(p).max(WGRAD_CHUNK)
    } else {
        WGRAD_CHUNK
    }
    .min(shape.batch);
    let tasks = shape.batch.div_ceil(per_task);
    let gemm_threads = gemm_threads(tasks);
    let partials: Vec<Vec<f32>> = (0..tasks)
        .into_par_iter()
        .map(|task| {
            let samples = task * per_task..((task + 1) * per_task).min(shape.batch);
            let mut acc = vec![0.0f32; co * k];
            if whole_images {
                // All the task's samples side by side: one product over n·P columns.
                let n = samples.len();
                let mut col = vec![0.0f32; k * n * p];
                let mut grad = vec![0.0f32; co * n * p];
                for (j, b) in samples.enumerate() {
                    let block = ColumnBlock {
                        row_len: n * p,
                        first: j * p,
                    };
                    im2col(&input[b * ci * p..], ci, h, w, (0, h), &mut col, block);
                    for o in 0..co {
                        grad[o * n * p + j * p..][..p]
                            .copy_from_slice(&grad_output[(b * co + o) * p..][..p]);
                    }
                }
                matmul(
                    &mut acc,
                    k,
                    MatRef::row_major(&grad, co, n * p),
                    MatRef::transposed(&col, n * p, k),
                    true,
                    gemm_threads,
                );
                return acc;
            }
            let mut col = vec![0.0f32; k * rows_per_tile * w];
            for b in samples {
                let image = &input[b * ci * p..(b + 1) * ci * p];
                let grad = &grad_output[b * co * p..(b + 1) * co * p];
                for (row0, rows) in row_tiles(h, rows_per_tile) {
                    let tile = rows * w;
                    let block = ColumnBlock::single(tile);
                    im2col(image, ci, h, w, (row0, rows), &mut col, block);
                    let grad_tile = MatRef {
                        data: &grad[row0 * w..],
                        rows: co,
                        cols: tile,
                        row_stride: p,
                        col_stride: 1,
                    };
                    matmul(
                        &mut acc,
                        k,
                        grad_tile,
                        MatRef::transposed(&col[..k * tile], tile, k),
                        true,
                        gemm_threads,
                    );
                }
            }
            acc
        })
        .collect();
    sum_partials(partials, co * k)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution written out from its definition.
    fn naive_forward(x: &[f32], wt: &[f32], s: &ConvShape) -> Vec<f32> {
        let (h, w) = (s.height as isize, s.width as isize);
        let mut y = vec![0.0; s.output_len()];
        for b in 0..s.batch {
            for o in 0..s.out_channels {
                for r in 0..h {
                    for c in 0..w {
                        let mut sum = 0.0f64;
                        for i in 0..s.in_channels {
                            for kh in 0..3 {
                                for kw in 0..3 {
                                    let (rr, cc) = (r + kh - 1, c + kw - 1);
                                    if rr < 0 || rr >= h || cc < 0 || cc >= w {
                                        continue;
                                    }
                                    let xv = x[((b * s.in_channels + i) * s.height + rr as usize)
                                        * s.width
                                        + cc as usize];
                                    let wv = wt[((o * s.in_channels + i) * 3 + kh as usize) * 3
                                        + kw as usize];
                                    sum += (xv * wv) as f64;
                                }
                            }
                        }
                        y[((b * s.out_channels + o) * s.height + r as usize) * s.width
                            + c as usize] = sum as f32;
                    }
                }
            }
        }
        y
    }

    fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + salt * 104729) % 1013) as f32 / 1013.0) - 0.5)
            .collect()
    }

    fn assert_close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// Every kernel this CPU can run.
    fn kernels() -> Vec<Kernel> {
        [Kernel::Im2col, Kernel::Direct]
            .into_iter()
            .filter(|k| k.available())
            .collect()
    }

    /// Gradients checked through the adjoint identities: for any `g`,
    /// `<conv(x, w), g> = <x, input_grad(g, w)> = <w, weight_grad(x, g)>`. Shapes include
    /// channel counts that are not multiples of the direct kernel's block of 4, odd widths, and
    /// more than one weight-gradient chunk of samples.
    #[test]
    fn forward_matches_definition_and_gradients_are_its_adjoints() {
        let shapes = [
            (1, 1, 1, 1, 1),
            (3, 2, 5, 7, 4),
            (5, 40, 3, 33, 29),
            (3, 5, 6, 9, 17),
            (4, 3, 7, 16, 16),
            (1, 9, 4, 2, 40),
        ];
        for kernel in kernels() {
            for (batch, in_channels, out_channels, height, width) in shapes {
                let shape = ConvShape {
                    batch,
                    in_channels,
                    out_channels,
                    height,
                    width,
                };
                let x = values(shape.input_len(), 1);
                let wt = values(shape.weight_len(), 2);
                let g = values(shape.output_len(), 3);
                let y = forward_using(kernel, &x, &wt, &shape);
                let what = format!("{kernel:?} forward {shape:?}");
                assert_close(&y, &naive_forward(&x, &wt, &shape), &what);

                let dot = |a: &[f32], b: &[f32]| -> f64 {
                    a.iter()
                        .zip(b)
                        .map(|(p, q)| (*p as f64) * (*q as f64))
                        .sum()
                };
                let reference = dot(&y, &g);
                let dx = input_grad_using(kernel, &g, &wt, &shape);
                let dw = weight_grad_using(kernel, &x, &g, &shape);
                for (name, v) in [("input", dot(&x, &dx)), ("weight", dot(&wt, &dw))] {
                    assert!(
                        (v - reference).abs() <= 1e-3 * (1.0 + reference.abs()),
                        "{kernel:?} {name} gradient for {shape:?}: {v} vs {reference}"
                    );
                }
            }
        }
    }

    #[test]
    fn kernels_agree_on_a_u_net_layer_and_repeat_exactly() {
        let shape = ConvShape {
            batch: 5,
            in_channels: 16,
            out_channels: 8,
            height: 20,
            width: 24,
        };
        let x = values(shape.input_len(), 6);
        let wt = values(shape.weight_len(), 7);
        let g = values(shape.output_len(), 8);
        let reference = (
            forward_using(Kernel::Im2col, &x, &wt, &shape),
            input_grad_using(Kernel::Im2col, &g, &wt, &shape),
            weight_grad_using(Kernel::Im2col, &x, &g, &shape),
        );
        for kernel in kernels() {
            let run = || {
                (
                    forward_using(kernel, &x, &wt, &shape),
                    input_grad_using(kernel, &g, &wt, &shape),
                    weight_grad_using(kernel, &x, &g, &shape),
                )
            };
            let (y, dx, dw) = run();
            assert_close(&y, &reference.0, &format!("{kernel:?} forward"));
            assert_close(&dx, &reference.1, &format!("{kernel:?} input grad"));
            assert_close(&dw, &reference.2, &format!("{kernel:?} weight grad"));
            assert_eq!(run(), (y, dx, dw), "{kernel:?} repeats bit for bit");
        }
    }

    #[test]
    fn tiles_and_strips_smaller_than_the_image_give_the_same_result() {
        // 50 channels × 9 × width 600 exceed im2col's tile budget, so rows are tiled.
        let tiled = ConvShape {
            batch: 2,
            in_channels: 50,
            out_channels: 2,
            height: 6,
            width: 600,
        };
        assert!(tile_rows(tiled.in_channels, &tiled) < tiled.height);
        // 300 channels of width 41 make the direct kernel pad three rows at a time, the last strip
        // shorter (stale lines below it), with a partly filled slot at each row's end.
        let striped = ConvShape {
            batch: 2,
            in_channels: 300,
            out_channels: 5,
            height: 11,
            width: 41,
        };
        #[cfg(target_arch = "x86_64")]
        assert_eq!(conv3x3_direct::strip_rows(300, 41, 11), 3);
        for shape in [tiled, striped] {
            let x = values(shape.input_len(), 4);
            let wt = values(shape.weight_len(), 5);
            let expected = naive_forward(&x, &wt, &shape);
            for kernel in kernels() {
                let what = format!("{kernel:?} forward {shape:?}");
                assert_close(&forward_using(kernel, &x, &wt, &shape), &expected, &what);
            }
        }
    }
}
