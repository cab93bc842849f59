//! One safe door to the `gemm` crate's SIMD matrix product, for row-major `f32` operands given as
//! slices with explicit strides.

use gemm::Parallelism;

/// A read-only matrix view: `rows × cols` elements at `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// A dense row-major matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a dense row-major `cols × rows` matrix, without copying.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride: 1,
            col_stride: rows,
        }
    }

    /// Whether every element the view addresses lies inside its slice (overflow counts as no).
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || last_index(self.rows, self.row_stride, self.cols, self.col_stride)
                .is_some_and(|last| last < self.data.len())
    }
}

/// `(rows − 1)·row_stride + (cols − 1)·col_stride`, or None on overflow.
fn last_index(rows: usize, row_stride: usize, cols: usize, col_stride: usize) -> Option<usize> {
    (rows - 1)
        .checked_mul(row_stride)?
        .checked_add((cols - 1).checked_mul(col_stride)?)
}

/// Threads to give gemm itself for `tasks` independent products running side by side: all of
/// rayon's when there are fewer tasks than threads to spread them over, else one.
pub fn gemm_threads(tasks: usize) -> usize {
    let threads = rayon::current_num_threads();
    if tasks < threads {
        threads
    } else {
        1
    }
}

/// `dst = lhs · rhs`, or `dst += lhs · rhs` when `accumulate`. `dst` is `lhs.rows × rhs.cols`,
/// row-major with row stride `dst_row_stride`. `threads > 1` lets gemm split the work with rayon.
///
/// # Panics
/// When the shapes disagree or a view reaches past its slice: callers size them, so that is a
/// bug, and the check is what makes the unsafe call below sound.
pub fn matmul(
    dst: &mut [f32],
    dst_row_stride: usize,
    lhs: MatRef<'_>,
    rhs: MatRef<'_>,
    accumulate: bool,
    threads: usize,
) {
    let (m, k, n) = (lhs.rows, lhs.cols, rhs.cols);
    assert_eq!(rhs.rows, k, "matmul: inner dimensions differ");
    assert!(
        lhs.fits() && rhs.fits(),
        "matmul: operand view out of bounds"
    );
    assert!(
        m == 0 || n == 0 || last_index(m, dst_row_stride, n, 1).is_some_and(|l| l < dst.len()),
        "matmul: destination too small"
    );
    // Overlapping destination rows would be written by several gemm threads at once.
    assert!(
        m <= 1 || dst_row_stride >= n,
        "matmul: destination rows overlap"
    );
    if m == 0 || n == 0 {
        return;
    }
    let parallelism = if threads > 1 {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: every element each view addresses lies inside its slice (checked above, with
    // overflow refused), destination rows do not overlap, `dst` is borrowed mutably so nothing
    // else aliases it, and the operands are plain f32.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.data.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|l| a[i * k + l] * b[l * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn products_match_the_definition_with_and_without_transposed_views() {
        let (m, k, n) = (5, 7, 9);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.5).collect();
        let expected = naive(&a, &b, m, k, n);

        let mut c = vec![0.0; m * n];
        matmul(
            &mut c,
            n,
            MatRef::row_major(&a, m, k),
            MatRef::row_major(&b, k, n),
            false,
            1,
        );
        assert_eq!(c, expected);

        // bᵀ stored row-major as n × k, read back as k × n.
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let mut c2 = vec![1.0; m * n];
        matmul(
            &mut c2,
            n,
            MatRef::row_major(&a, m, k),
            MatRef::transposed(&bt, k, n),
            true,
            2,
        );
        let plus_one: Vec<f32> = expected.iter().map(|v| v + 1.0).collect();
        assert_eq!(c2, plus_one);
    }
}
