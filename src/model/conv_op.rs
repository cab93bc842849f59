//! The 3×3 "same" convolution the U-Net uses everywhere, routed to our own CPU kernels
//! (`kernels::conv3x3`) when the backend is burn's CPU backend, with or without autodiff, and to
//! burn's `conv2d` on any other backend (CUDA).
//!
//! Why: burn-flex 0.21 computes the convolution's gradients through generic fallbacks (a
//! transposed convolution for the input, a strided copy of swapped axes for the weight) that took
//! most of a training step. The routing is decided by the backend's type at run time, which keeps
//! every model generic over `B: Backend` — no extra trait bound spreads through the code. The
//! parameters stay burn's `Conv2d` weights, so checkpoints are unchanged.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

use super::flex_bridge::{
    contiguous, dims, flex_tensor, from_primitive, primitive, route, values, AutodiffFlexTensor,
    Route,
};
use crate::kernels::conv3x3::{self, ConvShape};

/// `conv2d(x, weight)` with a 3×3 kernel, stride 1, padding 1 and no bias. `x` is
/// `[batch, in, H, W]`, `weight` `[out, in, 3, 3]`.
pub fn conv3x3_same<B: Backend>(x: Tensor<B, 4>, weight: Tensor<B, 4>) -> Tensor<B, 4> {
    match route(&x) {
        Route::Burn => conv2d(x, weight, None, ConvOptions::new([1, 1], [1, 1], [1, 1], 1)),
        Route::Flex => from_primitive(flex_forward(primitive(x), primitive(weight))),
        Route::AutodiffFlex => from_primitive(autodiff_forward(primitive(x), primitive(weight))),
    }
}

fn shape_of(x: &FlexTensor, weight: &FlexTensor) -> ConvShape {
    let ws: [usize; 4] = dims(weight);
    let [batch, in_channels, height, width] = dims(x);
    assert_eq!(
        [ws[1], ws[2], ws[3]],
        [in_channels, 3, 3],
        "conv3x3_same: weight {ws:?} for {in_channels} input channels"
    );
    ConvShape {
        batch,
        in_channels,
        out_channels: ws[0],
        height,
        width,
    }
}

fn flex_forward(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
    let (x, weight) = (contiguous(&x), contiguous(&weight));
    let shape = shape_of(&x, &weight);
    let y = conv3x3::forward(values(&x), values(&weight), &shape);
    flex_tensor(
        y,
        [shape.batch, shape.out_channels, shape.height, shape.width],
    )
}

#[derive(Debug)]
struct Conv3x3Backward;

impl Backward<Flex, 2> for Conv3x3Backward {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let (x_state, weight_state) = ops.state;
        let x = contiguous(&checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        let weight = contiguous(&checkpointer.retrieve_node_output::<FlexTensor>(weight_state));
        let shape = shape_of(&x, &weight);
        if let Some(node) = node_x {
            let dx = conv3x3::input_grad(values(&grad), values(&weight), &shape);
            grads.register::<Flex>(
                node.id,
                flex_tensor(
                    dx,
                    [shape.batch, shape.in_channels, shape.height, shape.width],
                ),
            );
        }
        if let Some(node) = node_weight {
            let dw = conv3x3::weight_grad(values(&x), values(&grad), &shape);
            grads.register::<Flex>(
                node.id,
                flex_tensor(dw, [shape.out_channels, shape.in_channels, 3, 3]),
            );
        }
    }
}

fn autodiff_forward(x: AutodiffFlexTensor, weight: AutodiffFlexTensor) -> AutodiffFlexTensor {
    match Conv3x3Backward
        .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            prep.finish(
                (x_state, weight_state),
                flex_forward(x.primitive, weight.primitive),
            )
        }
        OpsKind::UnTracked(prep) => prep.finish(flex_forward(x.primitive, weight.primitive)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flex_bridge::AutodiffFlex;
    use burn::tensor::{Distribution, Tolerance};

    /// Our route and burn's own conv2d agree, forward and in both gradients.
    #[test]
    fn matches_burn_conv2d_forward_and_backward() {
        let device = Default::default();
        <AutodiffFlex as Backend>::seed(&device, 7);
        let x = Tensor::<AutodiffFlex, 4>::random([3, 4, 9, 6], Distribution::Default, &device);
        let w = Tensor::<AutodiffFlex, 4>::random([5, 4, 3, 3], Distribution::Default, &device);
        let g = Tensor::<AutodiffFlex, 4>::random([3, 5, 9, 6], Distribution::Default, &device);

        let run = |ours: bool| {
            let (x, w) = (x.clone().require_grad(), w.clone().require_grad());
            let y = if ours {
                conv3x3_same(x.clone(), w.clone())
            } else {
                conv2d(
                    x.clone(),
                    w.clone(),
                    None,
                    ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
                )
            };
            let grads = (y.clone() * g.clone()).sum().backward();
            (
                y.inner(),
                x.grad(&grads).expect("x grad"),
                w.grad(&grads).expect("w grad"),
            )
        };
        let (y1, dx1, dw1) = run(true);
        let (y2, dx2, dw2) = run(false);
        let tolerance = Tolerance::<f32>::absolute(1e-4);
        y1.into_data()
            .assert_approx_eq(&y2.clone().into_data(), tolerance);
        dx1.into_data()
            .assert_approx_eq(&dx2.into_data(), tolerance);
        dw1.into_data()
            .assert_approx_eq(&dw2.into_data(), tolerance);

        // The plain CPU backend takes the same kernel.
        let plain = conv3x3_same(x.inner(), w.inner());
        plain
            .into_data()
            .assert_approx_eq(&y2.into_data(), tolerance);
    }
}
