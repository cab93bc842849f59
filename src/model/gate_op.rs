//! The PAM gate's product `skip · alpha` (alpha one channel, broadcast over skip's channels),
//! routed to `kernels::gate` on burn's CPU backend and to burn's element-wise product elsewhere.
//!
//! Why: burn computes the broadcast product and its gradient on a strided path, and the gradient
//! arriving from the decoder's concatenation is itself a strided slice; the fused op reads each
//! operand once, contiguously.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

use super::flex_bridge::{
    contiguous, dims, flex_tensor, from_primitive, kept, primitive, record, route, values,
    AutodiffFlexTensor, Route,
};
use crate::kernels::gate::{self, GateShape};

/// `skip` (`[B, C, H, W]`) times `alpha` (`[B, 1, H, W]`) for every channel.
pub fn gate_product<B: Backend>(skip: Tensor<B, 4>, alpha: Tensor<B, 4>) -> Tensor<B, 4> {
    match route(&skip) {
        Route::Burn => {
            let channels = skip.dims()[1];
            skip * alpha.repeat_dim(1, channels)
        }
        Route::Flex => from_primitive(flex_forward(primitive(skip), primitive(alpha))),
        Route::AutodiffFlex => from_primitive(autodiff_forward(primitive(skip), primitive(alpha))),
    }
}

fn shape_of(skip: &FlexTensor, alpha: &FlexTensor) -> GateShape {
    let [batch, channels, h, w] = dims(skip);
    let alpha_dims: [usize; 4] = dims(alpha);
    assert_eq!(alpha_dims, [batch, 1, h, w], "gate: alpha shape");
    GateShape {
        batch,
        channels,
        pixels: h * w,
    }
}

fn flex_forward(skip: FlexTensor, alpha: FlexTensor) -> FlexTensor {
    let (skip, alpha) = (contiguous(&skip), contiguous(&alpha));
    let shape = shape_of(&skip, &alpha);
    flex_tensor(
        gate::forward(values(&skip), values(&alpha), &shape),
        dims::<4>(&skip),
    )
}

#[derive(Debug)]
struct GateBackward;

impl Backward<Flex, 2> for GateBackward {
    type State = (NodeId, NodeId);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_skip, node_alpha] = ops.parents;
        let grad = contiguous(&grads.consume::<Flex>(&ops.node));
        let (skip_state, alpha_state) = ops.state;
        let skip = kept(checkpointer, skip_state);
        let alpha = kept(checkpointer, alpha_state);
        let shape = shape_of(&skip, &alpha);
        let (d_skip, d_alpha) =
            gate::backward(values(&skip), values(&alpha), values(&grad), &shape);
        if let Some(node) = node_skip {
            grads.register::<Flex>(node.id, flex_tensor(d_skip, dims::<4>(&skip)));
        }
        if let Some(node) = node_alpha {
            grads.register::<Flex>(node.id, flex_tensor(d_alpha, dims::<4>(&alpha)));
        }
    }
}

fn autodiff_forward(skip: AutodiffFlexTensor, alpha: AutodiffFlexTensor) -> AutodiffFlexTensor {
    let output = flex_forward(skip.primitive.clone(), alpha.primitive.clone());
    record(
        GateBackward,
        [&skip, &alpha],
        &[0, 1],
        |ids| (ids[0], ids[1]),
        output,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::flex_bridge::AutodiffFlex;
    use burn::tensor::{Distribution, Tolerance};

    #[test]
    fn matches_burns_broadcast_product() {
        let device = Default::default();
        // Seeded draws while no seeded model build runs in another test thread.
        let _stream = crate::model::unet::random_stream();
        AutodiffFlex::seed(&device, 3);
        let s = Tensor::<AutodiffFlex, 4>::random([2, 3, 4, 5], Distribution::Default, &device);
        let a = Tensor::<AutodiffFlex, 4>::random([2, 1, 4, 5], Distribution::Default, &device);
        let g = Tensor::<AutodiffFlex, 4>::random([2, 3, 4, 5], Distribution::Default, &device);
        let run = |ours: bool| {
            let skip = Tensor::<AutodiffFlex, 4>::from_data(s.to_data(), &device).require_grad();
            let alpha = Tensor::<AutodiffFlex, 4>::from_data(a.to_data(), &device).require_grad();
            let y = if ours {
                gate_product(skip.clone(), alpha.clone())
            } else {
                skip.clone() * alpha.clone()
            };
            let grads = (y.clone() * g.clone()).sum().backward();
            [
                y.inner().into_data(),
                skip.grad(&grads).unwrap().into_data(),
                alpha.grad(&grads).unwrap().into_data(),
            ]
        };
        for (x, y) in run(true).iter().zip(run(false)) {
            x.assert_approx_eq(&y, Tolerance::<f32>::absolute(1e-5));
        }
    }
}
