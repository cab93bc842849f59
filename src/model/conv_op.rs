//! The U-Net's convolutions — 3×3 "same" without bias, and 1×1 with or without bias — routed to
//! our own CPU kernels (`kernels::conv3x3`, `kernels::pointwise`) when the backend is burn's CPU
//! backend, with or without autodiff, and to burn's `conv2d` on any other backend (CUDA).
//!
//! Why: burn-flex 0.21 computes the convolution's gradients through generic fallbacks (a
//! transposed convolution for the input, a strided copy of swapped axes for the weight) that took
//! most of a training step. The routing is decided by the backend's type at run time, which keeps
//! every model generic over `B: Backend` — no extra trait bound spreads through the code. The
//! parameters stay burn's `Conv2d` weights, so checkpoints are unchanged.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::nn::conv::Conv2d;
use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;

use super::flex_bridge::{
    contiguous, dims, flex_tensor, from_primitive, kept, primitive, record, route, values,
    AutodiffFlexTensor, Route,
};
use crate::kernels::conv3x3::{self, ConvShape};
use crate::kernels::pointwise::{self, PointwiseShape};

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
        let x = kept(checkpointer, x_state);
        let weight = kept(checkpointer, weight_state);
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
    let output = flex_forward(x.primitive.clone(), weight.primitive.clone());
    record(
        Conv3x3Backward,
        [&x, &weight],
        &[0, 1],
        |ids| (ids[0], ids[1]),
        output,
    )
}

/// A 1×1 `Conv2d` (stride 1, no padding, bias or not) applied to `x`.
pub fn conv1x1<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let weight = conv.weight.val();
    let [_, _, kh, kw] = weight.dims();
    assert_eq!([kh, kw], [1, 1], "conv1x1: {kh}×{kw} kernel");
    let bias = conv.bias.as_ref().map(|b| b.val());
    match route(&x) {
        Route::Burn => conv.forward(x),
        Route::Flex => from_primitive(pointwise_forward(
            primitive(x),
            primitive(weight),
            bias.map(primitive).as_ref(),
        )),
        Route::AutodiffFlex => {
            let (x, weight) = (primitive(x), primitive(weight));
            from_primitive(match bias {
                Some(bias) => pointwise_with_bias(x, weight, primitive(bias)),
                None => pointwise_no_bias(x, weight),
            })
        }
    }
}

fn pointwise_shape(x: &FlexTensor, weight: &FlexTensor) -> PointwiseShape {
    let [batch, in_channels, h, w] = dims(x);
    let ws: [usize; 4] = dims(weight);
    assert_eq!(
        ws[1], in_channels,
        "conv1x1: weight {ws:?} for {in_channels} channels"
    );
    PointwiseShape {
        batch,
        in_channels,
        out_channels: ws[0],
        pixels: h * w,
    }
}

fn pointwise_forward(x: FlexTensor, weight: FlexTensor, bias: Option<&FlexTensor>) -> FlexTensor {
    let (x, weight) = (contiguous(&x), contiguous(&weight));
    let bias = bias.map(contiguous);
    let shape = pointwise_shape(&x, &weight);
    let [batch, _, h, w] = dims(&x);
    let y = pointwise::forward(
        values(&x),
        values(&weight),
        bias.as_ref().map(values),
        &shape,
    );
    flex_tensor(y, [batch, shape.out_channels, h, w])
}

/// Registers the input and weight gradients of a 1×1 convolution; returns the output gradient
/// and shape for the bias.
fn pointwise_grads(
    node_x: Option<NodeId>,
    node_weight: Option<NodeId>,
    x_state: NodeId,
    weight_state: NodeId,
    grad: FlexTensor,
    grads: &mut Gradients,
    checkpointer: &mut Checkpointer,
) -> (FlexTensor, PointwiseShape) {
    let grad = contiguous(&grad);
    let x = kept(checkpointer, x_state);
    let weight = kept(checkpointer, weight_state);
    let shape = pointwise_shape(&x, &weight);
    if let Some(id) = node_x {
        let dx = pointwise::input_grad(values(&grad), values(&weight), &shape);
        grads.register::<Flex>(id, flex_tensor(dx, dims::<4>(&x)));
    }
    if let Some(id) = node_weight {
        let dw = pointwise::weight_grad(values(&x), values(&grad), &shape);
        grads.register::<Flex>(id, flex_tensor(dw, dims::<4>(&weight)));
    }
    (grad, shape)
}

#[derive(Debug)]
struct PointwiseNoBiasBackward;

impl Backward<Flex, 2> for PointwiseNoBiasBackward {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents.map(|n| n.map(|n| n.id));
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state) = ops.state;
        pointwise_grads(
            node_x,
            node_weight,
            x_state,
            weight_state,
            grad,
            grads,
            checkpointer,
        );
    }
}

#[derive(Debug)]
struct PointwiseBiasBackward;

impl Backward<Flex, 3> for PointwiseBiasBackward {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents.map(|n| n.map(|n| n.id));
        let grad = grads.consume::<Flex>(&ops.node);
        let (x_state, weight_state) = ops.state;
        let (grad, shape) = pointwise_grads(
            node_x,
            node_weight,
            x_state,
            weight_state,
            grad,
            grads,
            checkpointer,
        );
        if let Some(id) = node_bias {
            let db = pointwise::bias_grad(values(&grad), &shape);
            grads.register::<Flex>(id, flex_tensor(db, [shape.out_channels]));
        }
    }
}

fn pointwise_no_bias(x: AutodiffFlexTensor, weight: AutodiffFlexTensor) -> AutodiffFlexTensor {
    let output = pointwise_forward(x.primitive.clone(), weight.primitive.clone(), None);
    record(
        PointwiseNoBiasBackward,
        [&x, &weight],
        &[0, 1],
        |ids| (ids[0], ids[1]),
        output,
    )
}

fn pointwise_with_bias(
    x: AutodiffFlexTensor,
    weight: AutodiffFlexTensor,
    bias: AutodiffFlexTensor,
) -> AutodiffFlexTensor {
    let output = pointwise_forward(
        x.primitive.clone(),
        weight.primitive.clone(),
        Some(&bias.primitive),
    );
    record(
        PointwiseBiasBackward,
        [&x, &weight, &bias],
        &[0, 1],
        |ids| (ids[0], ids[1]),
        output,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flex_bridge::AutodiffFlex;
    use burn::module::AutodiffModule;
    use burn::tensor::{Distribution, Tolerance};

    /// Our route and burn's own conv2d agree, forward and in both gradients.
    #[test]
    fn matches_burn_conv2d_forward_and_backward() {
        let device = Default::default();
        // Seeded draws while no seeded model build runs in another test thread.
        let _stream = crate::model::unet::random_stream();
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

    /// The 1×1 route agrees with burn's `Conv2d`, with and without bias, in every gradient.
    #[test]
    fn pointwise_matches_burn_conv2d() {
        use burn::nn::conv::Conv2dConfig;
        let device = Default::default();
        // Seeded draws while no seeded model build runs in another test thread.
        let _stream = crate::model::unet::random_stream();
        AutodiffFlex::seed(&device, 5);
        let x = Tensor::<AutodiffFlex, 4>::random([3, 4, 5, 2], Distribution::Default, &device);
        let g = Tensor::<AutodiffFlex, 4>::random([3, 6, 5, 2], Distribution::Default, &device);
        let tolerance = Tolerance::<f32>::absolute(1e-4);
        for bias in [true, false] {
            let conv: Conv2d<AutodiffFlex> = Conv2dConfig::new([4, 6], [1, 1])
                .with_bias(bias)
                .init(&device);
            let run = |ours: bool| {
                let x = Tensor::<AutodiffFlex, 4>::from_data(x.to_data(), &device).require_grad();
                let y = if ours {
                    conv1x1(&conv, x.clone())
                } else {
                    conv.forward(x.clone())
                };
                let grads = (y.clone() * g.clone()).sum().backward();
                let mut out = vec![
                    y.inner().into_data(),
                    x.grad(&grads).unwrap().into_data(),
                    conv.weight.val().grad(&grads).unwrap().into_data(),
                ];
                if let Some(b) = &conv.bias {
                    out.push(b.val().grad(&grads).unwrap().into_data());
                }
                out
            };
            for (a, b) in run(true).iter().zip(run(false)) {
                a.assert_approx_eq(&b, tolerance);
            }
            conv1x1(&conv.valid(), x.clone().inner())
                .into_data()
                .assert_approx_eq(
                    &conv.valid().forward(x.clone().inner()).into_data(),
                    tolerance,
                );
        }
    }
}
