//! Element-wise operations written so the CPU backend stays on its fast path.
//!
//! burn's `flex` backend runs an element-wise op between tensors of one shape on a fast
//! contiguous path, but falls to a slow strided loop when a `[1, C, 1, 1]` or `[B, 1, H, W]`
//! operand is broadcast over `[B, C, H, W]` — the shape of every BatchNorm, softmax and gate
//! product in a U-Net. Materialising the small operand with `repeat_dim` first costs one copy
//! and makes those ops several times faster. The results are the same computation, up to float
//! rounding order.

use burn::nn::BatchNorm;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// `v` (`[C]`) repeated to `shape` (`[B, C, H, W]`).
pub fn per_channel<B: Backend>(v: Tensor<B, 1>, shape: [usize; 4]) -> Tensor<B, 4> {
    let [b, c, h, w] = shape;
    v.reshape([1, c, 1, 1])
        .repeat_dim(0, b)
        .repeat_dim(2, h)
        .repeat_dim(3, w)
}

/// burn's `BatchNorm::forward` for 4-D input (batch statistics and running-statistics update
/// while autodiff is on, running statistics otherwise), with the normalisation folded into one
/// scale and one shift per channel, each materialised at full size.
pub fn batch_norm<B: Backend>(norm: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let shape = x.dims();
    let [b, c, h, w] = shape;
    let (mean, var) = if B::ad_enabled(&x.device()) {
        let n = (b * h * w) as f64;
        // Reducing the inner axes first keeps every step on contiguous memory; transposing
        // channels to the front would copy the whole activation.
        let channel_mean = |t: Tensor<B, 4>| {
            t.reshape([b, c, h * w])
                .sum_dim(2)
                .sum_dim(0)
                .reshape([c])
                .div_scalar(n)
        };
        let mean = channel_mean(x.clone());
        let centred = x.clone() - per_channel(mean.clone(), shape);
        let var = channel_mean(centred.square());
        let m = norm.momentum;
        let device = x.device();
        let running_mean = norm.running_mean.value_sync().to_device(&device);
        let running_var = norm.running_var.value_sync().to_device(&device);
        norm.running_mean.update(
            (running_mean.mul_scalar(1.0 - m) + mean.clone().detach().mul_scalar(m)).detach(),
        );
        norm.running_var.update(
            (running_var.mul_scalar(1.0 - m) + var.clone().detach().mul_scalar(m)).detach(),
        );
        (mean, var)
    } else {
        let device = x.device();
        (
            norm.running_mean.value().to_device(&device),
            norm.running_var.value().to_device(&device),
        )
    };
    let scale = norm.gamma.val() / var.add_scalar(norm.epsilon).sqrt();
    let shift = norm.beta.val() - mean * scale.clone();
    x * per_channel(scale, shape) + per_channel(shift, shape)
}

/// Softmax over the class axis (1) of `[B, C, H, W]`.
pub fn softmax_classes<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let c = x.dims()[1];
    let max = x.clone().max_dim(1).detach().repeat_dim(1, c);
    let e = (x - max).exp();
    let sum = e.clone().sum_dim(1).repeat_dim(1, c);
    e / sum
}

/// Log-softmax over the class axis (1) of `[B, C, H, W]`.
pub fn log_softmax_classes<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let c = x.dims()[1];
    let max = x.clone().max_dim(1).detach().repeat_dim(1, c);
    let shifted = x - max;
    let log_sum = shifted.clone().exp().sum_dim(1).log().repeat_dim(1, c);
    shifted - log_sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::module::AutodiffModule;
    use burn::nn::BatchNormConfig;
    use burn::tensor::activation::{log_softmax, softmax};
    use burn::tensor::TensorData;

    type B = Autodiff<Flex>;

    fn input() -> Tensor<B, 4> {
        let values: Vec<f32> = (0..2 * 3 * 4 * 5)
            .map(|i| ((i * 37 % 29) as f32 - 14.0) / 4.0)
            .collect();
        Tensor::from_data(TensorData::new(values, [2, 3, 4, 5]), &Default::default())
    }

    fn max_diff(a: Tensor<B, 4>, b: Tensor<B, 4>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    #[test]
    fn batch_norm_matches_burns_in_training_and_inference() {
        let device = Default::default();
        let ours: BatchNorm<B> = BatchNormConfig::new(3).init(&device);
        let theirs: BatchNorm<B> = BatchNormConfig::new(3).init(&device);
        for _ in 0..3 {
            let diff = max_diff(batch_norm(&ours, input()), theirs.forward(input()));
            assert!(diff < 1e-5, "training: {diff}");
        }
        let (ours, theirs) = (ours.valid(), theirs.valid());
        let x = input().inner();
        let diff: f32 = (batch_norm(&ours, x.clone()) - theirs.forward(x))
            .abs()
            .max()
            .into_scalar();
        assert!(diff < 1e-5, "inference (running statistics): {diff}");
    }

    #[test]
    fn softmaxes_match_burns() {
        assert!(max_diff(softmax_classes(input()), softmax(input(), 1)) < 1e-6);
        assert!(max_diff(log_softmax_classes(input()), log_softmax(input(), 1)) < 1e-5);
    }
}
