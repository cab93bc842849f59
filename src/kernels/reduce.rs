//! Summing per-task partial results in a fixed order, so a parallel reduction gives the same
//! bits whatever the threads' timing.

/// Samples per rayon task in the weight gradients' reductions: fixed, so the summation order
/// depends on the shapes alone.
pub const WGRAD_CHUNK: usize = 2;

/// Element-wise sum of per-chunk partial results, in chunk order.
pub fn sum_partials(partials: Vec<Vec<f32>>, len: usize) -> Vec<f32> {
    let mut total = vec![0.0f32; len];
    for partial in &partials {
        for (t, v) in total.iter_mut().zip(partial) {
            *t += v;
        }
    }
    total
}
