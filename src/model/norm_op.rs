//! Batch normalisation (+ ReLU) as the U-Net uses it, routed to one fused CPU kernel
//! (`kernels::batch_norm`) on burn's CPU backend and to the element-wise formulation of
//! `fast_ops::batch_norm` elsewhere (CUDA).
//!
//! Why: as a chain of burn tensor ops, a normalisation costs about ten full passes over the
//! activation forward and as many again in the backward graph; fused it is one forward and two
//! backward. The parameters and running statistics are burn's `BatchNorm`'s, updated with the
//! same momentum rule, so checkpoints are unchanged.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::nn::BatchNorm;
use burn::tensor::activation::relu as relu_op;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::fast_ops::batch_norm;
use super::flex_bridge::{
    contiguous, dims, flex_tensor, from_primitive, kept, primitive, record, route, values,
    AutodiffFlexTensor, Route,
};
use crate::kernels::batch_norm::{self as kernel, Affine, NormShape, Saved};

/// `relu(batch_norm(x))` when `relu`, else `batch_norm(x)`: batch statistics (and a running
/// statistics update) while autodiff is on, running statistics otherwise — burn's semantics.
pub fn batch_norm_act<B: Backend>(
    norm: &BatchNorm<B>,
    x: Tensor<B, 4>,
    relu: bool,
) -> Tensor<B, 4> {
    // The route decides the mode as burn does: autodiff backends normalise with batch
    // statistics, plain ones with the running statistics.
    match route(&x) {
        Route::AutodiffFlex => train_fused(norm, x, relu),
        Route::Flex => {
            let device = x.device();
            let mean = vector(norm.running_mean.value().to_device(&device));
            let var = vector(norm.running_var.value().to_device(&device));
            let gamma = vector(norm.gamma.val());
            let beta = vector(norm.beta.val());
            let affine = Affine::new(&gamma, &beta, &mean, &var, norm.epsilon);
            let x: FlexTensor = contiguous(&primitive(x));
            let shape = shape_of(&x);
            from_primitive(flex_tensor(
                kernel::apply(values(&x), &affine, &shape, relu),
                dims::<4>(&x),
            ))
        }
        Route::Burn => {
            let y = batch_norm(norm, x);
            if relu {
                relu_op(y)
            } else {
                y
            }
        }
    }
}

fn vector<B: Backend>(t: Tensor<B, 1>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("batch norm parameters are f32")
}

fn shape_of(x: &FlexTensor) -> NormShape {
    let [batch, channels, h, w] = dims(x);
    NormShape {
        batch,
        channels,
        pixels: h * w,
    }
}

fn train_fused<B: Backend>(norm: &BatchNorm<B>, x: Tensor<B, 4>, relu: bool) -> Tensor<B, 4> {
    let device = x.device();
    let (y, mean, var) = autodiff_forward(
        primitive(x),
        primitive(norm.gamma.val()),
        primitive(norm.beta.val()),
        norm.epsilon,
        relu,
    );
    let channels = mean.len();
    let as_tensor =
        |v: Vec<f32>| Tensor::<B, 1>::from_data(TensorData::new(v, [channels]), &device);
    let m = norm.momentum;
    let running_mean = norm.running_mean.value_sync().to_device(&device);
    let running_var = norm.running_var.value_sync().to_device(&device);
    norm.running_mean
        .update((running_mean.mul_scalar(1.0 - m) + as_tensor(mean).mul_scalar(m)).detach());
    norm.running_var
        .update((running_var.mul_scalar(1.0 - m) + as_tensor(var).mul_scalar(m)).detach());
    from_primitive(y)
}

#[derive(Debug)]
struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    type State = (NodeId, Saved);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let (x_state, saved) = ops.state;
        let x = kept(checkpointer, x_state);
        let shape = shape_of(&x);
        let result = kernel::backward(values(&x), values(&grad), &saved, &shape);
        let channels = shape.channels;
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex_tensor(result.input, dims::<4>(&x)));
        }
        if let Some(node) = node_gamma {
            grads.register::<Flex>(node.id, flex_tensor(result.gamma, [channels]));
        }
        if let Some(node) = node_beta {
            grads.register::<Flex>(node.id, flex_tensor(result.beta, [channels]));
        }
    }
}

/// The normalised (+ ReLU) output, and the batch mean and variance for the running statistics.
fn autodiff_forward(
    x: AutodiffFlexTensor,
    gamma: AutodiffFlexTensor,
    beta: AutodiffFlexTensor,
    epsilon: f64,
    relu: bool,
) -> (AutodiffFlexTensor, Vec<f32>, Vec<f32>) {
    let input = contiguous(&x.primitive);
    let shape = shape_of(&input);
    let (mean, var) = kernel::channel_stats(values(&input), &shape);
    let gamma_values = values(&contiguous(&gamma.primitive)).to_vec();
    let beta_values = values(&contiguous(&beta.primitive)).to_vec();
    let affine = Affine::new(&gamma_values, &beta_values, &mean, &var, epsilon);
    let output = flex_tensor(
        kernel::apply(values(&input), &affine, &shape, relu),
        dims::<4>(&input),
    );
    let saved = Saved {
        affine,
        mean: mean.clone(),
        var: var.clone(),
        gamma: gamma_values,
        epsilon,
        relu,
    };
    let y = record(
        NormBackward,
        [&x, &gamma, &beta],
        &[0],
        |ids| (ids[0], saved),
        output,
    );
    (y, mean, var)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flex_bridge::AutodiffFlex;
    use burn::module::AutodiffModule;
    use burn::nn::BatchNormConfig;
    use burn::tensor::{Distribution, Tolerance};

    /// The fused route agrees with burn's own BatchNorm + ReLU: output, gradients of the input
    /// and of γ and β, running statistics, and the inference path.
    #[test]
    fn matches_burns_batch_norm_and_relu() {
        let device = Default::default();
        // Seeded draws while no seeded model build runs in another test thread.
        let _stream = crate::model::unet::random_stream();
        AutodiffFlex::seed(&device, 11);
        let x = Tensor::<AutodiffFlex, 4>::random([3, 4, 5, 6], Distribution::Default, &device)
            .mul_scalar(3.0);
        let g = Tensor::<AutodiffFlex, 4>::random([3, 4, 5, 6], Distribution::Default, &device);
        let tolerance = Tolerance::<f32>::absolute(1e-4);
        for relu in [true, false] {
            let ours: BatchNorm<AutodiffFlex> = BatchNormConfig::new(4).init(&device);
            let theirs: BatchNorm<AutodiffFlex> = BatchNormConfig::new(4).init(&device);
            let xs = Tensor::<AutodiffFlex, 4>::from_data(x.to_data(), &device).require_grad();
            let xt = Tensor::<AutodiffFlex, 4>::from_data(x.to_data(), &device).require_grad();
            let y1 = batch_norm_act(&ours, xs.clone(), relu);
            let y2 = theirs.forward(xt.clone());
            let y2 = if relu { relu_op(y2) } else { y2 };
            let g1 = (y1.clone() * g.clone()).sum().backward();
            let g2 = (y2.clone() * g.clone()).sum().backward();
            y1.inner()
                .into_data()
                .assert_approx_eq(&y2.inner().into_data(), tolerance);
            let pairs = [(
                xs.grad(&g1).unwrap().into_data(),
                xt.grad(&g2).unwrap().into_data(),
            )];
            for (a, b) in pairs {
                a.assert_approx_eq(&b, tolerance);
            }
            ours.gamma
                .val()
                .grad(&g1)
                .unwrap()
                .into_data()
                .assert_approx_eq(
                    &theirs.gamma.val().grad(&g2).unwrap().into_data(),
                    tolerance,
                );
            ours.beta
                .val()
                .grad(&g1)
                .unwrap()
                .into_data()
                .assert_approx_eq(&theirs.beta.val().grad(&g2).unwrap().into_data(), tolerance);
            let (ours, theirs) = (ours.valid(), theirs.valid());
            ours.running_var
                .value()
                .into_data()
                .assert_approx_eq(&theirs.running_var.value().into_data(), tolerance);
            let yi1 = batch_norm_act(&ours, x.clone().inner(), relu);
            let yi2 = theirs.forward(x.clone().inner());
            let yi2 = if relu { relu_op(yi2) } else { yi2 };
            yi1.into_data()
                .assert_approx_eq(&yi2.into_data(), tolerance);
        }
    }
}
