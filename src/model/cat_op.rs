//! Concatenation along the channel axis, the decoder's skip join, routed on burn's CPU backend to
//! an op whose backward hands each input a contiguous gradient.
//!
//! Why: burn's concatenation backward gives each input a strided slice of the gradient, and every
//! later element-wise op on it — including burn adding it to the same tensor's other gradient —
//! then runs on the CPU backend's slow strided path.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::flex_bridge::{
    contiguous, dims, flex_tensor, from_primitive, primitive, record, route, values,
    AutodiffFlexTensor, Route,
};

/// `[a, b]` along axis 1 of `[B, C, H, W]` tensors.
pub fn cat_channels<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 4> {
    match route(&a) {
        Route::Burn => Tensor::cat(vec![a, b], 1),
        Route::Flex => from_primitive(flex_cat(&primitive(a), &primitive(b))),
        Route::AutodiffFlex => from_primitive(autodiff_cat(primitive(a), primitive(b))),
    }
}

/// Sizes of one sample's block in each input.
fn blocks(a: &FlexTensor, b: &FlexTensor) -> (usize, usize, [usize; 4]) {
    let [batch, ca, h, w] = dims(a);
    let [batch_b, cb, hb, wb] = dims(b);
    assert_eq!(
        [batch, h, w],
        [batch_b, hb, wb],
        "cat_channels: shapes differ"
    );
    (ca * h * w, cb * h * w, [batch, ca + cb, h, w])
}

fn flex_cat(a: &FlexTensor, b: &FlexTensor) -> FlexTensor {
    let (a, b) = (contiguous(a), contiguous(b));
    let (block_a, block_b, out_dims) = blocks(&a, &b);
    let mut out = Vec::with_capacity(out_dims.iter().product());
    for (xa, xb) in values(&a).chunks(block_a).zip(values(&b).chunks(block_b)) {
        out.extend_from_slice(xa);
        out.extend_from_slice(xb);
    }
    flex_tensor(out, out_dims)
}

#[derive(Debug)]
struct CatBackward;

impl Backward<Flex, 2> for CatBackward {
    /// Channels of each input, for splitting the gradient.
    type State = (usize, usize);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_a, node_b] = ops.parents;
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let [batch, _, h, w] = dims(&grad);
        let (ca, cb) = ops.state;
        let (block_a, block_b) = (ca * h * w, cb * h * w);
        let mut grad_a = Vec::with_capacity(batch * block_a);
        let mut grad_b = Vec::with_capacity(batch * block_b);
        for sample in values(&grad).chunks(block_a + block_b) {
            grad_a.extend_from_slice(&sample[..block_a]);
            grad_b.extend_from_slice(&sample[block_a..]);
        }
        if let Some(node) = node_a {
            grads.register::<Flex>(node.id, flex_tensor(grad_a, [batch, ca, h, w]));
        }
        if let Some(node) = node_b {
            grads.register::<Flex>(node.id, flex_tensor(grad_b, [batch, cb, h, w]));
        }
    }
}

fn autodiff_cat(a: AutodiffFlexTensor, b: AutodiffFlexTensor) -> AutodiffFlexTensor {
    let output = flex_cat(&a.primitive, &b.primitive);
    let channels = (dims::<4>(&a.primitive)[1], dims::<4>(&b.primitive)[1]);
    record(CatBackward, [&a, &b], &[], |_| channels, output)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flex_bridge::AutodiffFlex;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn matches_burns_cat_forward_and_backward() {
        let device = Default::default();
        // Seeded draws while no seeded model build runs in another test thread.
        let _stream = crate::model::unet::random_stream();
        AutodiffFlex::seed(&device, 9);
        let a = Tensor::<AutodiffFlex, 4>::random([2, 3, 4, 5], Distribution::Default, &device);
        let b = Tensor::<AutodiffFlex, 4>::random([2, 2, 4, 5], Distribution::Default, &device);
        let g = Tensor::<AutodiffFlex, 4>::random([2, 5, 4, 5], Distribution::Default, &device);
        let run = |ours: bool| {
            let a = Tensor::<AutodiffFlex, 4>::from_data(a.to_data(), &device).require_grad();
            let b = Tensor::<AutodiffFlex, 4>::from_data(b.to_data(), &device).require_grad();
            let y = if ours {
                cat_channels(a.clone(), b.clone())
            } else {
                Tensor::cat(vec![a.clone(), b.clone()], 1)
            };
            let grads = (y.clone() * g.clone()).sum().backward();
            [
                y.inner().into_data(),
                a.grad(&grads).unwrap().into_data(),
                b.grad(&grads).unwrap().into_data(),
            ]
        };
        for (x, y) in run(true).iter().zip(run(false)) {
            x.assert_approx_eq(&y, Tolerance::<f32>::absolute(0.0));
        }
    }
}
