//! The 3×3 "same" convolution computed directly, without im2col, on x86-64 CPUs with AVX2 and
//! FMA. `kernels::conv3x3` sends images at least [`MIN_WIDTH`] (forward and input gradient) or
//! [`MIN_WEIGHT_GRAD_WIDTH`] (weight gradient) pixels wide here when the CPU has both features.
//!
//! Why: im2col copies every input nine times and gemm then packs that copy again. At the U-Net's
//! small channel counts (2–64) those copies cost about as much as the arithmetic, which held
//! demo-scale training to half of what the cores can do.
//!
//! How: each image is copied once into zero-bordered planes of `(H + 2) × (W + 2)` per channel.
//! Read as one flat run of `W + 2`-wide lines, tap `(kh, kw)` of output position
//! `p = y·(W + 2) + x` is input position `p + kh·(W + 2) + kw`, a fixed shift. Eight neighbouring
//! outputs are then one unaligned load and one FMA per tap and output channel, with no index
//! arithmetic. The two positions per line that land on the border are computed and dropped.
//! - forward: a register block of 4 output channels × 16 positions (8 accumulators) runs over
//!   every input channel and tap;
//! - weight gradient: a block of 4 output channels × the 3 taps of one kernel row (12
//!   accumulators) runs over the positions 8 at a time; the 8 lanes are added up at the end.
//!
//! Every sum runs in an order fixed by the shapes, never by the threads' timing.

use std::arch::x86_64::{
    __m256, _mm256_broadcast_ss, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps,
    _mm256_storeu_ps,
};

use rayon::prelude::*;

use super::conv3x3::ConvShape;
use super::reduce::{sum_partials, WGRAD_CHUNK};

/// Narrowest image the forward kernel is used for: below it, the positions thrown away on the
/// border and the short lines make im2col + gemm faster.
pub const MIN_WIDTH: usize = 8;

/// Narrowest image the weight-gradient kernel is used for (measured with
/// `cargo bench --bench conv_kernels`).
pub const MIN_WEIGHT_GRAD_WIDTH: usize = 16;

/// Output channels per register block.
const CO_BLOCK: usize = 4;
/// Slots (registers of 8 outputs) per forward register block.
const SLOTS: usize = 2;
/// f32 lanes in an AVX register.
const LANES: usize = 8;
/// Positions per weight-gradient pass, sized so a block's gradient rows stay in L1.
const WGRAD_SPAN: usize = 512;
/// Elements after each padded plane, so the furthest loads stay inside it: a forward slot's
/// last lane reaches 7 past its row's start, a weight-gradient pass up to 9 past the last
/// position (its 8 lanes, shifted by tap kw ≤ 2, from a row length rounded up to 8).
const SLACK: usize = 3 * LANES;
/// Bytes of padded input per strip: a strip's rows are computed for every output channel
/// before the next strip is padded, so it should stay in the L2 cache.
const STRIP_BYTES: usize = 256 << 10;
/// Pairs per band: every block of output channels is computed over one band before the next,
/// so the band's input (`C_in` planes × a few lines) stays in cache between blocks.
const BAND: usize = 16;

/// Whether this CPU can run the kernels (the answer is cached by the standard library).
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// Where a padded image's values lie.
#[derive(Clone, Copy, Debug)]
struct Padded {
    height: usize,
    width: usize,
    /// Length of one padded line, `W + 2`.
    line: usize,
    /// Elements per padded channel plane, slack included.
    plane: usize,
}

impl Padded {
    fn new(height: usize, width: usize) -> Self {
        let line = width + 2;
        Padded {
            height,
            width,
            line,
            plane: (height + 2) * line + SLACK,
        }
    }

    /// Elements of `channels` padded planes. Checked, since every bound below is derived from
    /// it: a wrapped product would let a too-small buffer pass the checks.
    fn elements(&self, channels: usize) -> usize {
        channels
            .checked_mul(self.plane)
            .expect("conv3x3_direct: shape too large to address")
    }

    /// Output positions, border columns included.
    fn positions(&self) -> usize {
        self.height * self.line
    }

    /// Writes rows `first .. first + height` of `image` (`channels × image_height × W`), and
    /// the rows just above and below them (zero outside the image), into `padded`
    /// (`channels × plane`). Border columns are never written, so a zeroed buffer can be reused.
    fn fill_rows(&self, image: &[f32], image_height: usize, first: usize, padded: &mut [f32]) {
        let pixels = image_height * self.width;
        for (src, dst) in image
            .chunks_exact(pixels)
            .zip(padded.chunks_exact_mut(self.plane))
        {
            for line in 0..self.height + 2 {
                let dst = &mut dst[line * self.line + 1..][..self.width];
                match (first + line).checked_sub(1) {
                    Some(y) if y < image_height => {
                        dst.copy_from_slice(&src[y * self.width..][..self.width])
                    }
                    _ => dst.fill(0.0),
                }
            }
        }
    }
}

/// The weights regrouped per block of 4 output channels, `[block][c_in][tap][4]`, with zeros
/// for the channels past the last.
fn pack_weights(weight: &[f32], shape: &ConvShape) -> Vec<f32> {
    let (ci, co) = (shape.in_channels, shape.out_channels);
    let mut packed = vec![0.0; co.div_ceil(CO_BLOCK) * ci * 9 * CO_BLOCK];
    for o in 0..co {
        for i in 0..ci {
            for t in 0..9 {
                packed[((o / CO_BLOCK * ci + i) * 9 + t) * CO_BLOCK + o % CO_BLOCK] =
                    weight[(o * ci + i) * 9 + t];
            }
        }
    }
    packed
}

/// Every sample's input in padded planes, `batch × C_in × plane`.
fn pad_batch(input: &[f32], channels: usize, layout: &Padded, batch: usize) -> Vec<f32> {
    let per_image = layout.elements(channels);
    let mut padded = vec![0.0; layout.elements(channels * batch)];
    let pixels = layout.height * layout.width;
    padded
        .par_chunks_mut(per_image)
        .zip(input.par_chunks(channels * pixels))
        .for_each(|(dst, src)| layout.fill_rows(src, layout.height, 0, dst));
    padded
}

/// Eight horizontally neighbouring output positions of one image row, or fewer at the row's end:
/// what one register computes.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Flat position in the padded plane of the tap (0, 0) of the first output.
    input: usize,
    /// Offset of the first output in an output plane.
    output: usize,
    /// Outputs kept: 8, fewer at the end of a row, 0 for a filler.
    valid: usize,
}

/// The slots of a strip of rows starting at image row `first`, in pairs, one pair per register
/// block. Pairs run along a row and, for narrow images, across rows, so no block is half empty
/// unless the strip has one slot.
fn slot_pairs(layout: &Padded, first: usize) -> Vec<[Slot; SLOTS]> {
    let slots: Vec<Slot> = (0..layout.height)
        .flat_map(|y| {
            (0..layout.width).step_by(LANES).map(move |x| Slot {
                input: y * layout.line + x,
                output: (first + y) * layout.width + x,
                valid: LANES.min(layout.width - x),
            })
        })
        .collect();
    slots
        .chunks(SLOTS)
        .map(|group| {
            std::array::from_fn(|i| {
                group.get(i).copied().unwrap_or(Slot {
                    valid: 0,
                    ..group[0]
                })
            })
        })
        .collect()
}

/// Image rows per strip for `channels` input channels of `width` pixels.
pub(super) fn strip_rows(channels: usize, width: usize, height: usize) -> usize {
    let line_bytes = channels * (width + 2) * std::mem::size_of::<f32>();
    (STRIP_BYTES / line_bytes)
        .saturating_sub(2)
        .clamp(1, height)
}

/// `output = conv(input, weight)`: `input` is `B × C_in × H × W`, `weight` `C_out × C_in × 3 × 3`,
/// `output` `B × C_out × H × W`; the caller checks the lengths (`conv3x3` does).
///
/// # Panics
/// When the CPU lacks AVX2 or FMA.
pub fn forward_into(input: &[f32], weight: &[f32], shape: &ConvShape, output: &mut [f32]) {
    assert!(available(), "conv3x3_direct: the CPU lacks AVX2 or FMA");
    let (ci, co, height) = (shape.in_channels, shape.out_channels, shape.height);
    let pixels = height * shape.width;
    let packed = pack_weights(weight, shape);
    // Images are padded a strip of rows at a time, so the padded copy is read back from cache
    // rather than memory. All strips share one plane size; a shorter last strip leaves the
    // previous strip's values in the lines below it, which only the lanes of a row's last slot
    // past the image's width reach, and those are never stored.
    let rows = strip_rows(ci, shape.width, height);
    let strip = Padded::new(rows, shape.width);
    let strips: Vec<(usize, Padded, Vec<[Slot; SLOTS]>)> = (0..height)
        .step_by(rows)
        .map(|first| {
            let layout = Padded {
                height: rows.min(height - first),
                ..strip
            };
            (first, layout, slot_pairs(&layout, first))
        })
        .collect();
    // Split each image's output channels into groups only when there are too few images to
    // keep every thread busy (inference on one slice); the results do not depend on it.
    let blocks = co.div_ceil(CO_BLOCK);
    let groups = rayon::current_num_threads()
        .div_ceil(shape.batch)
        .clamp(1, blocks);
    let group_channels = blocks.div_ceil(groups) * CO_BLOCK;
    output
        .par_chunks_mut(co * pixels)
        .zip(input.par_chunks(ci * pixels))
        .for_each_init(
            || vec![0.0f32; strip.elements(ci)],
            |padded, (out, image)| {
                for (first, layout, pairs) in &strips {
                    layout.fill_rows(image, height, *first, padded);
                    let padded = &*padded;
                    out.par_chunks_mut(group_channels * pixels)
                        .enumerate()
                        .for_each(|(group, out)| {
                            let first_block = group * group_channels / CO_BLOCK;
                            let count = (out.len() / pixels).div_ceil(CO_BLOCK);
                            let weights = &packed[first_block * ci * 9 * CO_BLOCK..]
                                [..count * ci * 9 * CO_BLOCK];
                            forward_blocks(padded, layout, ci, weights, pairs, pixels, out);
                        });
                }
            },
        );
}

/// The slots `pairs` of consecutive output channels of one image (`out`, whole planes of
/// `pixels`) from a padded strip of its input; `weights` holds their blocks' packed weights.
fn forward_blocks(
    image: &[f32],
    layout: &Padded,
    channels: usize,
    weights: &[f32],
    pairs: &[[Slot; SLOTS]],
    pixels: usize,
    out: &mut [f32],
) {
    let block_weights = channels * 9 * CO_BLOCK;
    let out_channels = out.len() / pixels;
    assert_eq!(image.len(), layout.elements(channels));
    assert_eq!(out.len(), out_channels * pixels);
    assert_eq!(
        weights.len(),
        out_channels.div_ceil(CO_BLOCK) * block_weights
    );
    // The furthest load: the last lane of tap (2, 2) of the furthest slot in the last channel;
    // the furthest store: the end of the furthest slot in the last plane.
    let last_input = pairs.iter().flatten().map(|s| s.input).max().unwrap_or(0);
    let furthest = (channels - 1) * layout.plane + last_input + 2 * layout.line + 2 + LANES - 1;
    assert!(
        furthest < image.len(),
        "conv3x3_direct: padded plane too short"
    );
    assert!(
        pairs.iter().flatten().all(|s| s.output + s.valid <= pixels),
        "conv3x3_direct: slot outside the image"
    );
    for band in pairs.chunks(BAND) {
        for (block, out) in out.chunks_mut(CO_BLOCK * pixels).enumerate() {
            // SAFETY: the features were checked by `forward_into`; every load is at most
            // `furthest` (checked above) into `image`; weight reads stay inside this block's
            // `channels·36`; stores go to the slots' valid outputs in the block's
            // `out.len() / pixels` planes, inside `out` (checked above).
            unsafe {
                forward_kernel(
                    image.as_ptr(),
                    layout,
                    channels,
                    weights[block * block_weights..].as_ptr(),
                    band,
                    out.as_mut_ptr(),
                    (pixels, out.len() / pixels),
                )
            }
        }
    }
}

/// The slot pairs `pairs` of 4 output channels, `planes` of which (1–4) are stored in `out`,
/// planes of `pixels` each.
#[target_feature(enable = "avx2,fma")]
unsafe fn forward_kernel(
    image: *const f32,
    layout: &Padded,
    channels: usize,
    weights: *const f32,
    pairs: &[[Slot; SLOTS]],
    out: *mut f32,
    (pixels, planes): (usize, usize),
) {
    let (plane, line) = (layout.plane, layout.line);
    for slots in pairs {
        let mut acc = [[_mm256_setzero_ps(); SLOTS]; CO_BLOCK];
        for c in 0..channels {
            let base = image.add(c * plane);
            let w = weights.add(c * 9 * CO_BLOCK);
            for kh in 0..3 {
                for kw in 0..3 {
                    let tap = base.add(kh * line + kw);
                    let x: [__m256; SLOTS] =
                        std::array::from_fn(|i| _mm256_loadu_ps(tap.add(slots[i].input)));
                    let wk = w.add((kh * 3 + kw) * CO_BLOCK);
                    for (o, acc) in acc.iter_mut().enumerate() {
                        let wv = _mm256_broadcast_ss(&*wk.add(o));
                        for i in 0..SLOTS {
                            acc[i] = _mm256_fmadd_ps(wv, x[i], acc[i]);
                        }
                    }
                }
            }
        }
        for (o, acc) in acc.iter().enumerate().take(planes) {
            for (slot, &value) in slots.iter().zip(acc) {
                let dst = out.add(o * pixels + slot.output);
                if slot.valid == LANES {
                    _mm256_storeu_ps(dst, value);
                } else {
                    let mut lanes = [0.0f32; LANES];
                    _mm256_storeu_ps(lanes.as_mut_ptr(), value);
                    std::ptr::copy_nonoverlapping(lanes.as_ptr(), dst, slot.valid);
                }
            }
        }
    }
}

/// The gradient with respect to the weight (`C_out × C_in × 3 × 3`), given the input and the
/// gradient of the output; the caller checks the lengths (`conv3x3` does).
///
/// # Panics
/// When the CPU lacks AVX2 or FMA.
pub fn weight_grad(input: &[f32], grad_output: &[f32], shape: &ConvShape) -> Vec<f32> {
    assert!(available(), "conv3x3_direct: the CPU lacks AVX2 or FMA");
    let (ci, co) = (shape.in_channels, shape.out_channels);
    let layout = Padded::new(shape.height, shape.width);
    let pixels = shape.height * shape.width;
    let row_len = layout.positions().next_multiple_of(LANES);
    let blocks = co.div_ceil(CO_BLOCK);
    let chunks = shape.batch.div_ceil(WGRAD_CHUNK);
    let partials: Vec<Vec<f32>> = (0..chunks)
        .into_par_iter()
        .map(|chunk| {
            let samples = chunk * WGRAD_CHUNK..((chunk + 1) * WGRAD_CHUNK).min(shape.batch);
            let padded = pad_batch(
                &input[samples.start * ci * pixels..samples.end * ci * pixels],
                ci,
                &layout,
                samples.len(),
            );
            let per_block: Vec<Vec<f32>> = (0..blocks)
                .into_par_iter()
                .map_init(
                    || vec![0.0f32; CO_BLOCK * row_len],
                    |grad_rows, block| {
                        let channels = block * CO_BLOCK..((block + 1) * CO_BLOCK).min(co);
                        let mut acc = vec![0.0f32; ci * 3 * CO_BLOCK * 3 * LANES];
                        // Border positions are never written, so they stay zero from the
                        // buffer's allocation. Rows past a last block's channels may hold
                        // another block's values: they only feed accumulators dropped below.
                        for (j, b) in samples.clone().enumerate() {
                            for (k, o) in channels.clone().enumerate() {
                                let src = &grad_output[(b * co + o) * pixels..][..pixels];
                                for (y, line) in src.chunks_exact(shape.width).enumerate() {
                                    grad_rows[k * row_len + y * layout.line..][..shape.width]
                                        .copy_from_slice(line);
                                }
                            }
                            let image = &padded[j * layout.elements(ci)..][..layout.elements(ci)];
                            weight_grad_block(image, &layout, ci, grad_rows, row_len, &mut acc);
                        }
                        acc
                    },
                )
                .collect();
            let mut partial = vec![0.0f32; co * ci * 9];
            for (block, acc) in per_block.iter().enumerate() {
                for (i, kh, k, kw) in wgrad_acc_order(ci) {
                    let o = block * CO_BLOCK + k;
                    if o < co {
                        let lanes = &acc[(((i * 3 + kh) * CO_BLOCK + k) * 3 + kw) * LANES..];
                        partial[(o * ci + i) * 9 + kh * 3 + kw] = lanes[..LANES].iter().sum();
                    }
                }
            }
            partial
        })
        .collect();
    sum_partials(partials, co * ci * 9)
}

/// `(c_in, kh, output channel in block, kw)` in the order the accumulators are laid out.
fn wgrad_acc_order(ci: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    (0..ci).flat_map(|i| {
        (0..3).flat_map(move |kh| {
            (0..CO_BLOCK).flat_map(move |k| (0..3).map(move |kw| (i, kh, k, kw)))
        })
    })
}

/// Adds one image's contribution to a block's accumulators `acc`
/// (`[c_in][kh][4][kw][8 lanes]`), from its padded input and its output-gradient rows
/// (`4 × row_len`, zero on border positions).
fn weight_grad_block(
    image: &[f32],
    layout: &Padded,
    channels: usize,
    grad_rows: &[f32],
    row_len: usize,
    acc: &mut [f32],
) {
    assert_eq!(image.len(), layout.elements(channels));
    assert_eq!(grad_rows.len(), CO_BLOCK * row_len);
    assert_eq!(acc.len(), channels * 3 * CO_BLOCK * 3 * LANES);
    assert!(row_len.is_multiple_of(LANES) && row_len >= layout.positions());
    let furthest = (channels - 1) * layout.plane + row_len - 1 + 2 * layout.line + 2;
    assert!(
        furthest < image.len(),
        "conv3x3_direct: padded plane too short"
    );
    let group = CO_BLOCK * 3 * LANES;
    for start in (0..row_len).step_by(WGRAD_SPAN) {
        let span = WGRAD_SPAN.min(row_len - start);
        for c in 0..channels {
            for kh in 0..3 {
                let offset = c * layout.plane + start + kh * layout.line;
                // SAFETY: the features were checked by `weight_grad`; input loads reach at most
                // `furthest` (checked above), gradient loads stay below `4·row_len`, and the
                // accumulator group lies inside `acc`.
                unsafe {
                    weight_grad_kernel(
                        image.as_ptr().add(offset),
                        grad_rows.as_ptr().add(start),
                        row_len,
                        span,
                        acc.as_mut_ptr().add((c * 3 + kh) * group),
                    )
                }
            }
        }
    }
}

/// Adds `Σ_p grad[k][p] · x[p + kw]` over `span` positions (a multiple of 8), in 8 lanes, to the
/// accumulators `acc` (`[4][kw][8]`) of one input channel and kernel row; `grad` holds 4 rows of
/// `row_len`.
#[target_feature(enable = "avx2,fma")]
unsafe fn weight_grad_kernel(
    x: *const f32,
    grad: *const f32,
    row_len: usize,
    span: usize,
    acc: *mut f32,
) {
    let mut sums: [[__m256; 3]; CO_BLOCK] = [[_mm256_setzero_ps(); 3]; CO_BLOCK];
    for (k, sums) in sums.iter_mut().enumerate() {
        for (kw, sum) in sums.iter_mut().enumerate() {
            *sum = _mm256_loadu_ps(acc.add((k * 3 + kw) * LANES));
        }
    }
    for p in (0..span).step_by(LANES) {
        let x0 = _mm256_loadu_ps(x.add(p));
        let x1 = _mm256_loadu_ps(x.add(p + 1));
        let x2 = _mm256_loadu_ps(x.add(p + 2));
        for (k, sums) in sums.iter_mut().enumerate() {
            let g = _mm256_loadu_ps(grad.add(k * row_len + p));
            sums[0] = _mm256_fmadd_ps(g, x0, sums[0]);
            sums[1] = _mm256_fmadd_ps(g, x1, sums[1]);
            sums[2] = _mm256_fmadd_ps(g, x2, sums[2]);
        }
    }
    for (k, sums) in sums.iter().enumerate() {
        for (kw, sum) in sums.iter().enumerate() {
            _mm256_storeu_ps(acc.add((k * 3 + kw) * LANES), *sum);
        }
    }
}
