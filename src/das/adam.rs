//! Adam on a handful of plain numbers: the one hand-written optimiser step, used for the
//! controller's logits θ (§3.2.1, Eq. 8 "applied with Adam") and for β of the `gradient`
//! comparator. The networks themselves use burn's Adam.
//!
//! The arithmetic is PyTorch's: `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, bias-corrected, and
//! `x ← x − lr·m̂/(√v̂ + ε)`.

/// β₁ and β₂ of every hand-written Adam here (PyTorch's and burn's defaults).
const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;

/// ε of the controller's Adam (PyTorch's default, as in the released code).
pub const EPSILON_TORCH: f64 = 1e-8;
/// ε of burn's Adam, which the networks train with: β of `gradient` is trained beside them and
/// uses the same.
pub const EPSILON_BURN: f64 = 1e-5;

/// One Adam step on `params` against `grad`, updating `first`, `second` and `steps`.
///
/// # Panics
/// If the four slices differ in length: a bug in the caller.
pub fn step(
    params: &mut [f64],
    grad: &[f64],
    first: &mut [f64],
    second: &mut [f64],
    steps: &mut u64,
    learning_rate: f64,
    epsilon: f64,
) {
    assert!(
        grad.len() == params.len() && first.len() == params.len() && second.len() == params.len(),
        "Adam: parameters, gradient and moments differ in length"
    );
    *steps += 1;
    let t = (*steps).min(i32::MAX as u64) as i32;
    for i in 0..params.len() {
        let g = grad[i];
        first[i] = BETA1 * first[i] + (1.0 - BETA1) * g;
        second[i] = BETA2 * second[i] + (1.0 - BETA2) * g * g;
        let m_hat = first[i] / (1.0 - BETA1.powi(t));
        let v_hat = second[i] / (1.0 - BETA2.powi(t));
        params[i] -= learning_rate * m_hat / (v_hat.sqrt() + epsilon);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first step moves each number by the learning rate against its gradient's sign
    /// (m̂ = g, v̂ = g², so the step is lr·g/(|g| + ε)); a zero gradient moves nothing.
    #[test]
    fn first_step_by_hand() {
        let mut x = [0.5, 0.5, 0.5, 1.0];
        let (mut m, mut v, mut t) = ([0.0; 4], [0.0; 4], 0);
        step(
            &mut x,
            &[2.0, -0.5, 0.0, 1e-3],
            &mut m,
            &mut v,
            &mut t,
            0.01,
            1e-5,
        );
        let expected = [
            0.5 - 0.01 * 2.0 / (2.0 + 1e-5),
            0.5 + 0.01 * 0.5 / (0.5 + 1e-5),
            0.5,
            1.0 - 0.01 * 1e-3 / (1e-3 + 1e-5),
        ];
        for (a, e) in x.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{x:?}");
        }
        assert_eq!(t, 1);
    }

    /// Three steps on f(x) = x² from x = 1 with lr 0.1, worked by hand from Kingma & Ba's
    /// Algorithm 1: x = 0.9, 0.800412229, 0.701586273.
    #[test]
    fn three_steps_on_a_parabola() {
        let mut x = [1.0];
        let (mut m, mut v, mut t) = ([0.0], [0.0], 0);
        let mut seen = Vec::new();
        for _ in 0..3 {
            let g = [2.0 * x[0]];
            step(&mut x, &g, &mut m, &mut v, &mut t, 0.1, EPSILON_TORCH);
            seen.push(x[0]);
        }
        for (a, e) in seen.iter().zip([0.9, 0.800_412_229, 0.701_586_273]) {
            assert!((a - e).abs() < 1e-8, "{seen:?}");
        }
    }
}
